/*  zube_certs - the cluster's CurveZMQ certificate directory.

    Creates the broker's and peers' keypairs (czmq zcert) in the layout
    docs/security.md describes, with private material readable by its owner
    only, and maps admitted public keys to certificate names for the broker.
*/
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "zube/certs.h"
#include "zube/log.h"

#define S_NAME_MAX 253
#define S_BROKER "broker"

bool
zube_certs_name_valid (const char *name)
{
    if (!name)
        return false;
    size_t length = strlen (name);
    if (length < 1 || length > S_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = name [i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '-' && c != '_')
            return false;
        //  Starts with a letter or digit and ends with one or '-' (so
        //  "nodes-sim-", the identity of the nodes sim-*, is a name); this
        //  also keeps "." and ".." out of paths.
        if (i == 0 && !alnum)
            return false;
        if (i == length - 1 && !alnum && c != '-')
            return false;
    }
    return true;
}

static const char *
s_path (char *buf, size_t buf_size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int size = vsnprintf (buf, buf_size, format, args);
    va_end (args);
    return (size < 0 || (size_t) size >= buf_size) ? NULL : buf;
}

const char *
zube_certs_public_path (const char *dir, const char *name, char *buf, size_t buf_size)
{
    if (!dir || !name || !buf)
        return NULL;
    if (streq (name, S_BROKER))
        return s_path (buf, buf_size, "%s/%s.cert", dir, name);
    return s_path (buf, buf_size, "%s/public/%s.cert", dir, name);
}

const char *
zube_certs_secret_path (const char *dir, const char *name, char *buf, size_t buf_size)
{
    if (!dir || !name || !buf)
        return NULL;
    if (streq (name, S_BROKER))
        return s_path (buf, buf_size, "%s/%s.cert_secret", dir, name);
    return s_path (buf, buf_size, "%s/private/%s.cert_secret", dir, name);
}

//  Creates path with mode 0700 if missing; a directory that holds secrets
//  (tighten) is set to 0700 even when it already existed.
static int
s_dir_ensure (const char *path, bool tighten, char *error, size_t error_size)
{
    if (mkdir (path, 0700) == 0)
        return chmod (path, 0700) == 0 ? 0 : (snprintf (error, error_size,
                      "cannot chmod %s: %s", path, strerror (errno)), -1);
    struct stat st;
    if (errno != EEXIST || stat (path, &st) != 0 || !S_ISDIR (st.st_mode)) {
        snprintf (error, error_size, "cannot create directory %s: %s", path,
                  strerror (errno == EEXIST ? ENOTDIR : errno));
        return -1;
    }
    if (tighten && (st.st_mode & 077) && chmod (path, 0700) != 0) {
        snprintf (error, error_size, "cannot chmod %s: %s", path, strerror (errno));
        return -1;
    }
    return 0;
}

static bool
s_file_exists (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

int
zube_certs_create (const char *dir, const char *name, char *error, size_t error_size)
{
    char scratch [8];
    if (!error) {
        error = scratch;
        error_size = sizeof scratch;
    }
    if (!dir || !*dir) {
        snprintf (error, error_size, "no certificate directory given");
        return -1;
    }
    if (!zube_certs_name_valid (name)) {
        snprintf (error, error_size, "invalid certificate name \"%s\": use [a-z0-9._-], "
                  "starting with a letter or digit and ending with one or '-'", name ? name : "");
        return -1;
    }
    char public_dir [PATH_MAX], private_dir [PATH_MAX];
    char public_path [PATH_MAX], secret_path [PATH_MAX];
    if (!s_path (public_dir, sizeof public_dir, "%s/public", dir)
        || !s_path (private_dir, sizeof private_dir, "%s/private", dir)
        || !zube_certs_public_path (dir, name, public_path, sizeof public_path)
        || !zube_certs_secret_path (dir, name, secret_path, sizeof secret_path)) {
        snprintf (error, error_size, "certificate directory path too long: %s", dir);
        return -1;
    }
    if (s_dir_ensure (dir, true, error, error_size)
        || s_dir_ensure (public_dir, false, error, error_size)
        || s_dir_ensure (private_dir, true, error, error_size))
        return -1;

    bool has_public = s_file_exists (public_path);
    bool has_secret = s_file_exists (secret_path);
    if (has_public && has_secret)
        return 0;               //  Idempotent: an existing keypair is kept
    if (has_public && !has_secret) {
        //  Making a new keypair would silently change an admitted key
        snprintf (error, error_size, "%s exists but %s is missing: remove the "
                  "public certificate to make a new keypair", public_path, secret_path);
        return -1;
    }
    zcert_t *cert = NULL;
    if (has_secret) {
        //  The secret certificate holds both keys: restore the public one
        cert = zcert_load (secret_path);
        if (!cert) {
            snprintf (error, error_size, "cannot read %s", secret_path);
            return -1;
        }
    }
    else {
        cert = zcert_new ();
        if (!cert) {
            snprintf (error, error_size, "cannot generate a CURVE keypair");
            return -1;
        }
        zcert_set_meta (cert, "name", "%s", name);
    }
    //  zcert_save_secret resets the process umask to czmq's default:
    //  put the caller's back afterwards
    mode_t umask_saved = umask (077);
    int rc = 0;
    if (!has_secret) {
        //  zcert writes with the process umask; make the file 0600 first
        int fd = open (secret_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || close (fd) != 0 || zcert_save_secret (cert, secret_path) != 0
            || chmod (secret_path, 0600) != 0) {
            snprintf (error, error_size, "cannot write %s: %s", secret_path, strerror (errno));
            rc = -1;
        }
    }
    if (rc == 0 && zcert_save_public (cert, public_path) != 0) {
        snprintf (error, error_size, "cannot write %s: %s", public_path, strerror (errno));
        rc = -1;
    }
    if (rc == 0)
        chmod (public_path, 0644);
    umask (umask_saved);
    zcert_destroy (&cert);
    return rc;
}


//  --------------------------------------------------------------------------
//  zube_certs_names: public key -> certificate name

struct _zube_certs_names_t {
    char *public_dir;           //  DIR/public
    zhashx_t *names;            //  Z85 key -> name (strings, owned)
    struct timespec loaded_mtime;
};

static int
s_names_load (zube_certs_names_t *self)
{
    DIR *handle = opendir (self->public_dir);
    if (!handle)
        return -1;
    struct stat st;
    if (stat (self->public_dir, &st) == 0)
        self->loaded_mtime = st.st_mtim;
    zhashx_purge (self->names);
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if (length <= 5 || strcmp (entry->d_name + length - 5, ".cert") != 0)
            continue;
        char path [PATH_MAX];
        if (!s_path (path, sizeof path, "%s/%s", self->public_dir, entry->d_name))
            continue;
        zcert_t *cert = zcert_load (path);
        if (!cert)
            continue;
        char stem [S_NAME_MAX + 1] = "";
        if (length - 5 <= S_NAME_MAX)
            snprintf (stem, sizeof stem, "%.*s", (int) (length - 5), entry->d_name);
        const char *name = zcert_meta (cert, "name");
        if (!zube_certs_name_valid (name))
            name = stem;
        if (zube_certs_name_valid (name))
            zhashx_update (self->names, zcert_public_txt (cert), (void *) name);
        else
            zube_log_warn ("msg=\"certificate skipped: no valid name\" path=%s", path);
        zcert_destroy (&cert);
    }
    closedir (handle);
    return 0;
}

zube_certs_names_t *
zube_certs_names_new (const char *dir)
{
    if (!dir)
        return NULL;
    zube_certs_names_t *self = (zube_certs_names_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->public_dir = zsys_sprintf ("%s/public", dir);
    self->names = zhashx_new ();
    if (!self->public_dir || !self->names) {
        zube_certs_names_destroy (&self);
        return NULL;
    }
    zhashx_set_duplicator (self->names, (zhashx_duplicator_fn *) strdup);
    zhashx_set_destructor (self->names, (zhashx_destructor_fn *) zstr_free);
    if (s_names_load (self) != 0) {
        zube_log_error ("msg=\"cannot read certificate directory\" path=%s error=\"%s\"",
                        self->public_dir, strerror (errno));
        zube_certs_names_destroy (&self);
        return NULL;
    }
    return self;
}

void
zube_certs_names_destroy (zube_certs_names_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_certs_names_t *self = *self_p;
    zhashx_destroy (&self->names);
    zstr_free (&self->public_dir);
    free (self);
    *self_p = NULL;
}

const char *
zube_certs_names_lookup (zube_certs_names_t *self, const char *public_key)
{
    if (!self || !public_key)
        return NULL;
    const char *name = (const char *) zhashx_lookup (self->names, public_key);
    if (name)
        return name;
    struct stat st;
    if (stat (self->public_dir, &st) == 0
        && (st.st_mtim.tv_sec != self->loaded_mtime.tv_sec
            || st.st_mtim.tv_nsec != self->loaded_mtime.tv_nsec)) {
        s_names_load (self);
        name = (const char *) zhashx_lookup (self->names, public_key);
    }
    return name;
}

size_t
zube_certs_names_size (zube_certs_names_t *self)
{
    return self ? zhashx_size (self->names) : 0;
}
