/*  lmdb - the embedded store plugin: one LMDB environment in a directory.

    URL `lmdb` (the default directory) or `lmdb:DIR`. Three named
    databases hold everything:

        objects   key -> mod revision (8 bytes, big-endian) + value
        events    revision (8 bytes, big-endian) -> event header + key + value
        meta      "format", "revision", "compacted" -> 8 bytes, big-endian

    A batch of writes is one LMDB write transaction, committed with LMDB's
    default full sync, so an answered txn_commit is on disk. Each group of
    the batch is checked before any of it is written, so a group whose
    compare fails writes nothing and takes no revision: revisions have no
    gaps. LMDB
    serialises writers across processes, so several apiservers on one
    machine can share a directory.

    The map grows by doubling when a write finds it full.

    LMDB must not open one environment twice in a process (its locks are
    per process), yet the apiserver opens its store twice: one backend
    for its commit thread, one for the reads of its bus thread. Backends
    on the same directory therefore share one MDB_env (a process-wide
    list, reference counted); LMDB lets one thread write while others
    read. Each backend keeps its own read transaction. Growing the map
    needs no transaction active in the process: every operation holds the
    shared env's lock for reading, growing holds it for writing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <limits.h>
#include <pthread.h>
#include <unistd.h>
#include "zube/store.h"

#define S_FORMAT 1
#define S_DEFAULT_MAP_SIZE ((size_t) 1 << 30)
#define S_MAX_MAP_SIZE ((size_t) 1 << 40)
#define S_OBJECT_HEADER 8
#define S_EVENT_HEADER 16
#define S_DEFAULT_PREALLOCATE ((size_t) 16 << 20)
//  The smallest extension s_preallocate makes.
#define S_PREALLOCATE_MIN ((size_t) 1 << 20)

//  One environment, shared by the backends open on its directory.
typedef struct s_shared_t {
    char *path; //  realpath of the directory
    MDB_env *env;
    MDB_dbi objects;
    MDB_dbi events;
    MDB_dbi meta;
    int references;
    pthread_rwlock_t resize;
    struct s_shared_t *next;
} s_shared_t;

static pthread_mutex_t s_shared_lock = PTHREAD_MUTEX_INITIALIZER;
static s_shared_t *s_shared_list = NULL;

struct zube_store_backend_t {
    const zube_host_t *host;
    s_shared_t *shared;
    char *dir;
    MDB_env *env;
    MDB_dbi objects;
    MDB_dbi events;
    MDB_dbi meta;
    //  One read transaction, reset between reads and renewed for the next.
    MDB_txn *reader;
    size_t map_size;
    unsigned int max_readers;
    //  Zeros written ahead of the last page at most (0: none); see
    //  s_preallocate.
    size_t preallocate;
    char error[512];
};

static void
s_put_u64 (unsigned char *to, uint64_t value)
{
    for (int i = 7; i >= 0; i--, value >>= 8)
        to[i] = (unsigned char) (value & 0xff);
}

static uint64_t
s_get_u64 (const unsigned char *from)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | from[i];
    return value;
}

static zube_status_t
s_fail (zube_store_backend_t *self, zube_status_t status, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static zube_status_t
s_fail (zube_store_backend_t *self, zube_status_t status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof self->error, format, args);
    va_end (args);
    return status;
}

//  Maps an LMDB or errno code to a status, recording where it happened.
static zube_status_t
s_mdb_fail (zube_store_backend_t *self, int rc, const char *where)
{
    zube_status_t status = ZUBE_INTERNAL;
    if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EBADF || rc == EIO || rc == EAGAIN || rc == ENOMEM
        || rc == MDB_READERS_FULL || rc == EACCES || rc == EROFS)
        status = ZUBE_UNAVAILABLE;
    else if (rc == MDB_BAD_VALSIZE)
        status = ZUBE_BAD_REQUEST;
    s_fail (self, status, "lmdb %s: %s: %s", self->dir, where, mdb_strerror (rc));
    if (status == ZUBE_INTERNAL)
        self->host->log (self->host, ZUBE_LOG_ERROR, "msg=\"lmdb failure\" dir=%s where=%s error=\"%s\"",
                         self->dir, where, mdb_strerror (rc));
    return status;
}

static bool
s_key_valid (zube_store_backend_t *self, const char *key)
{
    if (!self->env || !key || !*key)
        return false;
    return strlen (key) <= (size_t) mdb_env_get_maxkeysize (self->env);
}

//  Begins a transaction, adopting a map another process grew.
static int
s_txn_begin (zube_store_backend_t *self, unsigned int flags, MDB_txn **txn_p)
{
    int rc = mdb_txn_begin (self->env, NULL, flags, txn_p);
    if (rc == MDB_MAP_RESIZED) {
        if (self->reader) {
            mdb_txn_abort (self->reader);
            self->reader = NULL;
        }
        //  Adopting the new size needs no transaction active in this
        //  process: from the shared lock held for reading to writing
        if (self->shared) {
            pthread_rwlock_unlock (&self->shared->resize);
            pthread_rwlock_wrlock (&self->shared->resize);
        }
        rc = mdb_env_set_mapsize (self->env, 0);
        if (self->shared) {
            pthread_rwlock_unlock (&self->shared->resize);
            pthread_rwlock_rdlock (&self->shared->resize);
        }
        if (rc == 0) {
            MDB_envinfo info;
            mdb_env_info (self->env, &info);
            self->map_size = info.me_mapsize;
            rc = mdb_txn_begin (self->env, NULL, flags, txn_p);
        }
    }
    return rc;
}

static int
s_read_begin (zube_store_backend_t *self, MDB_txn **txn_p)
{
    if (!self->env)
        return EBADF;
    if (self->reader) {
        int rc = mdb_txn_renew (self->reader);
        if (rc == 0) {
            *txn_p = self->reader;
            return 0;
        }
        mdb_txn_abort (self->reader);
        self->reader = NULL;
    }
    int rc = s_txn_begin (self, MDB_RDONLY, &self->reader);
    if (rc != 0) {
        self->reader = NULL;
        return rc;
    }
    *txn_p = self->reader;
    return 0;
}

static void
s_read_end (zube_store_backend_t *self)
{
    if (self->reader)
        mdb_txn_reset (self->reader);
}

//  A meta value (0 when absent).
static int
s_meta_get (zube_store_backend_t *self, MDB_txn *txn, const char *name, int64_t *value_p)
{
    MDB_val key = {.mv_size = strlen (name), .mv_data = (void *) name}, data;
    int rc = mdb_get (txn, self->meta, &key, &data);
    *value_p = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0 && data.mv_size != 8)
        return MDB_CORRUPTED;
    if (rc == 0)
        *value_p = (int64_t) s_get_u64 (data.mv_data);
    return rc;
}

static int
s_meta_put (zube_store_backend_t *self, MDB_txn *txn, const char *name, int64_t value)
{
    unsigned char bytes[8];
    s_put_u64 (bytes, (uint64_t) value);
    MDB_val key = {.mv_size = strlen (name), .mv_data = (void *) name};
    MDB_val data = {.mv_size = 8, .mv_data = bytes};
    return mdb_put (txn, self->meta, &key, &data, 0);
}

//  ---------------------------------------------------------------------
//  Opening

//  "lmdb" -> the default directory; "lmdb:DIR" -> DIR. malloc'd.
static char *
s_url_dir (const zube_store_backend_t *self, const char *url, char *error, size_t error_size)
{
    char *dir = NULL;
    if (strncmp (url, "lmdb:", 5) == 0 && url[5])
        return strdup (url + 5);
    if (strcmp (url, "lmdb") != 0 && strcmp (url, "lmdb:") != 0) {
        snprintf (error, error_size, "expected lmdb or lmdb:DIR, found %s", url);
        return NULL;
    }
    const char *configured = self->host->config_get (self->host, "dir");
    const char *data_dir = getenv ("ZUBE_DATA_DIR");
    const char *home = getenv ("HOME");
    int rc;
    if (configured && *configured)
        rc = asprintf (&dir, "%s", configured);
    else if (data_dir && *data_dir)
        rc = asprintf (&dir, "%s/store", data_dir);
    else if (geteuid () == 0 || !home || !*home)
        rc = asprintf (&dir, "/var/lib/zube/store");
    else
        rc = asprintf (&dir, "%s/.zube/store", home);
    return rc < 0 ? NULL : dir;
}

static int
s_mkdirs (const char *dir)
{
    char path[4096];
    if (snprintf (path, sizeof path, "%s", dir) >= (int) sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *slash = path + 1; *slash; slash++)
        if (*slash == '/') {
            *slash = 0;
            if (mkdir (path, 0700) != 0 && errno != EEXIST)
                return -1;
            *slash = '/';
        }
    if (mkdir (path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static void
s_fsync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync (fd);
        close (fd);
    }
}

//  "1073741824", "512M", "4G" -> bytes; 0 if not a size.
static size_t
s_parse_size (const char *text)
{
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull (text, &end, 10);
    if (errno || end == text)
        return 0;
    switch (*end) {
        case 'K': value <<= 10, end++; break;
        case 'M': value <<= 20, end++; break;
        case 'G': value <<= 30, end++; break;
        case 'T': value <<= 40, end++; break;
        default: break;
    }
    if (*end == 'i')
        end++;
    return *end ? 0 : (size_t) value;
}

//  Sets preallocate from "0" or a size from 1M to 1G; false if neither.
static bool
s_option_preallocate (zube_store_backend_t *self, const char *value)
{
    size_t size = strcmp (value, "0") == 0 ? 0 : s_parse_size (value);
    if (size != 0 && (size < S_PREALLOCATE_MIN || size > ((size_t) 1 << 30)))
        return false;
    if (size == 0 && strcmp (value, "0") != 0)
        return false;
    self->preallocate = size;
    return true;
}

//  Applies one "key=value" setting; false (with error) if unknown or bad.
static bool
s_option (zube_store_backend_t *self, const char *option, char *error, size_t error_size)
{
    const char *equals = strchr (option, '=');
    size_t name_len = equals ? (size_t) (equals - option) : strlen (option);
    const char *value = equals ? equals + 1 : "";
    if (name_len == 8 && strncmp (option, "map_size", 8) == 0) {
        self->map_size = s_parse_size (value);
        if (self->map_size < (1 << 20) || self->map_size > S_MAX_MAP_SIZE) {
            snprintf (error, error_size, "option map_size: expected 1M to 1T, found \"%s\"", value);
            return false;
        }
        return true;
    }
    if (name_len == 11 && strncmp (option, "max_readers", 11) == 0) {
        char *end = NULL;
        long readers = strtol (value, &end, 10);
        if (!*value || *end || readers < 1 || readers > 65536) {
            snprintf (error, error_size, "option max_readers: expected 1 to 65536, found \"%s\"",
                      value);
            return false;
        }
        self->max_readers = (unsigned int) readers;
        return true;
    }
    if (name_len == 11 && strncmp (option, "preallocate", 11) == 0) {
        if (s_option_preallocate (self, value))
            return true;
        snprintf (error, error_size, "option preallocate: expected 0 or 1M to 1G, found \"%s\"",
                  value);
        return false;
    }
    snprintf (error, error_size,
              "unknown option \"%.*s\" (lmdb knows map_size, max_readers, preallocate)",
              (int) name_len, option);
    return false;
}

//  Opens the environment in self->dir and its databases, creating them
//  in a new directory.
static int
s_env_open (zube_store_backend_t *self, const char **where)
{
    *where = "mdb_env_create";
    int rc = mdb_env_create (&self->env);
    if (rc != 0) {
        self->env = NULL;
        return rc;
    }
    mdb_env_set_maxdbs (self->env, 4);
    mdb_env_set_mapsize (self->env, self->map_size);
    if (self->max_readers)
        mdb_env_set_maxreaders (self->env, self->max_readers);
    *where = "mdb_env_open";
    //  MDB_NOTLS: read transactions belong to backends, not threads.
    //  Not MDB_WRITEMAP: it saves the pwrite of each dirty page but costs
    //  more than it saves here (each msync write-protects the map again,
    //  so every page a commit touches faults into ext4 once more): raw
    //  batches of 32 ran at 27-38k/s with it, 50-58k/s without, on the
    //  same machine at the same time. Durability is LMDB's default: data
    //  synced, then the meta page written and synced.
    rc = mdb_env_open (self->env, self->dir, MDB_NOTLS, 0600);
    if (rc != 0)
        goto failed;
    MDB_envinfo info;
    mdb_env_info (self->env, &info);
    self->map_size = info.me_mapsize;
    //  Readers a crashed process left behind would pin old pages forever.
    int dead = 0;
    mdb_reader_check (self->env, &dead);

    MDB_txn *txn;
    *where = "begin";
    rc = s_txn_begin (self, 0, &txn);
    if (rc != 0)
        goto failed;
    *where = "open databases";
    if ((rc = mdb_dbi_open (txn, "objects", MDB_CREATE, &self->objects)) != 0
        || (rc = mdb_dbi_open (txn, "events", MDB_CREATE, &self->events)) != 0
        || (rc = mdb_dbi_open (txn, "meta", MDB_CREATE, &self->meta)) != 0) {
        mdb_txn_abort (txn);
        goto failed;
    }
    int64_t format = 0;
    *where = "read format";
    rc = s_meta_get (self, txn, "format", &format);
    if (rc == 0 && format == 0)
        rc = s_meta_put (self, txn, "format", S_FORMAT);
    else if (rc == 0 && format != S_FORMAT) {
        *where = "format (this store was written by another zube version)";
        rc = MDB_VERSION_MISMATCH;
    }
    if (rc != 0) {
        mdb_txn_abort (txn);
        goto failed;
    }
    *where = "commit";
    rc = mdb_txn_commit (txn);
    if (rc != 0)
        goto failed;
    s_fsync_dir (self->dir);
    return 0;
failed:
    mdb_env_close (self->env);
    self->env = NULL;
    return rc;
}

static void
s_close (zube_store_backend_t **backend_p)
{
    if (!backend_p || !*backend_p)
        return;
    zube_store_backend_t *self = *backend_p;
    if (self->reader)
        mdb_txn_abort (self->reader);
    if (self->shared) {
        pthread_mutex_lock (&s_shared_lock);
        s_shared_t *shared = self->shared;
        if (--shared->references == 0) {
            for (s_shared_t **at = &s_shared_list; *at; at = &(*at)->next)
                if (*at == shared) {
                    *at = shared->next;
                    break;
                }
            if (shared->env)
                mdb_env_close (shared->env);
            pthread_rwlock_destroy (&shared->resize);
            free (shared->path);
            free (shared);
        }
        pthread_mutex_unlock (&s_shared_lock);
    }
    else if (self->env)
        mdb_env_close (self->env);
    free (self->dir);
    free (self);
    *backend_p = NULL;
}

static zube_status_t
s_open (const zube_host_t *host, const char *url, const char *const *options,
        zube_store_backend_t **backend_p, char *error, size_t error_size)
{
    *backend_p = NULL;
    zube_store_backend_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    self->host = host;
    self->map_size = S_DEFAULT_MAP_SIZE;
    const char *configured = host->config_get (host, "map_size");
    if (configured && (self->map_size = s_parse_size (configured)) < (1 << 20))
        self->map_size = S_DEFAULT_MAP_SIZE;
    self->preallocate = S_DEFAULT_PREALLOCATE;
    configured = host->config_get (host, "preallocate");
    if (configured && !s_option_preallocate (self, configured))
        self->preallocate = S_DEFAULT_PREALLOCATE;
    self->dir = s_url_dir (self, url ? url : "", error, error_size);
    if (!self->dir) {
        s_close (&self);
        return ZUBE_BAD_REQUEST;
    }
    for (size_t i = 0; options && options[i]; i++)
        if (!s_option (self, options[i], error, error_size)) {
            s_close (&self);
            return ZUBE_BAD_REQUEST;
        }
    if (s_mkdirs (self->dir) != 0) {
        snprintf (error, error_size, "cannot create %s: %s", self->dir, strerror (errno));
        s_close (&self);
        return ZUBE_UNAVAILABLE;
    }
    char path[PATH_MAX];
    if (!realpath (self->dir, path)) {
        snprintf (error, error_size, "cannot resolve %s: %s", self->dir, strerror (errno));
        s_close (&self);
        return ZUBE_UNAVAILABLE;
    }
    pthread_mutex_lock (&s_shared_lock);
    s_shared_t *shared = s_shared_list;
    while (shared && strcmp (shared->path, path) != 0)
        shared = shared->next;
    if (shared) {
        shared->references++;
        self->shared = shared;
        self->env = shared->env;
        self->objects = shared->objects;
        self->events = shared->events;
        self->meta = shared->meta;
        MDB_envinfo info;
        mdb_env_info (self->env, &info);
        self->map_size = info.me_mapsize;
        pthread_mutex_unlock (&s_shared_lock);
        *backend_p = self;
        return ZUBE_OK;
    }
    const char *where = "";
    int rc = s_env_open (self, &where);
    shared = rc == 0 ? calloc (1, sizeof *shared) : NULL;
    if (shared && !(shared->path = strdup (path))) {
        free (shared);
        shared = NULL;
    }
    if (rc == 0 && !shared) {
        pthread_mutex_unlock (&s_shared_lock);
        snprintf (error, error_size, "out of memory");
        s_close (&self);
        return ZUBE_INTERNAL;
    }
    if (rc != 0) {
        pthread_mutex_unlock (&s_shared_lock);
        snprintf (error, error_size, "%s: %s: %s", self->dir, where, mdb_strerror (rc));
        s_close (&self);
        return rc == MDB_VERSION_MISMATCH || rc == MDB_INVALID ? ZUBE_INTERNAL : ZUBE_UNAVAILABLE;
    }
    pthread_rwlock_init (&shared->resize, NULL);
    shared->env = self->env;
    shared->objects = self->objects;
    shared->events = self->events;
    shared->meta = self->meta;
    shared->references = 1;
    shared->next = s_shared_list;
    s_shared_list = shared;
    self->shared = shared;
    pthread_mutex_unlock (&s_shared_lock);
    host->log (host, ZUBE_LOG_INFO, "msg=\"store opened\" dir=%s map_size=%zu", self->dir,
               self->map_size);
    *backend_p = self;
    return ZUBE_OK;
}

static const char *
s_errmsg (zube_store_backend_t *self)
{
    return self->error;
}

//  ---------------------------------------------------------------------
//  Reads

static zube_status_t
s_get (zube_store_backend_t *self, const char *key, zube_store_kv_fn *fn, void *arg)
{
    if (!self->env)
        return s_fail (self, ZUBE_UNAVAILABLE, "lmdb %s: not open (a restore failed)", self->dir);
    if (!s_key_valid (self, key))
        return s_fail (self, ZUBE_BAD_REQUEST, "lmdb: invalid key (empty or over %d bytes)",
                       mdb_env_get_maxkeysize (self->env));
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return s_mdb_fail (self, rc, "begin read");
    MDB_val k = {.mv_size = strlen (key), .mv_data = (void *) key}, data;
    rc = mdb_get (txn, self->objects, &k, &data);
    zube_status_t status = ZUBE_OK;
    if (rc == MDB_NOTFOUND)
        status = s_fail (self, ZUBE_NOT_FOUND, "%s not found", key);
    else if (rc != 0)
        status = s_mdb_fail (self, rc, "get");
    else if (data.mv_size < S_OBJECT_HEADER)
        status = s_mdb_fail (self, MDB_CORRUPTED, "get");
    else if (fn) {
        zube_store_kv_t kv = {.key = key,
                              .key_size = k.mv_size,
                              .value = (const char *) data.mv_data + S_OBJECT_HEADER,
                              .value_size = data.mv_size - S_OBJECT_HEADER,
                              .mod_revision = (int64_t) s_get_u64 (data.mv_data)};
        fn (arg, &kv);
    }
    s_read_end (self);
    return status;
}

static bool
s_has_prefix (const MDB_val *key, const char *prefix, size_t prefix_len)
{
    return key->mv_size >= prefix_len && memcmp (key->mv_data, prefix, prefix_len) == 0;
}

static zube_status_t
s_range (zube_store_backend_t *self, const zube_store_range_t *range, zube_store_kv_fn *fn,
         void *arg, zube_store_range_result_t *result)
{
    *result = (zube_store_range_result_t) {0};
    const char *prefix = range && range->prefix ? range->prefix : "";
    size_t prefix_len = strlen (prefix);
    const char *after = range ? range->after_key : NULL;
    size_t limit = range ? range->limit : 0;
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return s_mdb_fail (self, rc, "begin read");
    zube_status_t status = ZUBE_OK;
    MDB_cursor *cursor = NULL;
    if ((rc = s_meta_get (self, txn, "revision", &result->revision)) != 0
        || (rc = mdb_cursor_open (txn, self->objects, &cursor)) != 0) {
        status = s_mdb_fail (self, rc, "range");
        goto done;
    }
    //  Start at the prefix, or just past after_key when that is further.
    const char *start = after && strcmp (after, prefix) >= 0 ? after : prefix;
    size_t max_key = (size_t) mdb_env_get_maxkeysize (self->env);
    MDB_val key = {.mv_size = strlen (start), .mv_data = (void *) start}, data;
    if (key.mv_size > max_key) {
        status = s_fail (self, ZUBE_BAD_REQUEST, "lmdb: range start over %zu bytes", max_key);
        goto done;
    }
    rc = key.mv_size ? mdb_cursor_get (cursor, &key, &data, MDB_SET_RANGE)
                     : mdb_cursor_get (cursor, &key, &data, MDB_FIRST);
    if (rc == 0 && start == after && key.mv_size == strlen (after)
        && memcmp (key.mv_data, after, key.mv_size) == 0)
        rc = mdb_cursor_get (cursor, &key, &data, MDB_NEXT);
    char key_text[1024];
    while (rc == 0 && s_has_prefix (&key, prefix, prefix_len)) {
        if (limit && result->count == limit) {
            result->more = true;
            break;
        }
        if (data.mv_size < S_OBJECT_HEADER || key.mv_size >= sizeof key_text) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy (key_text, key.mv_data, key.mv_size);
        key_text[key.mv_size] = 0;
        zube_store_kv_t kv = {.key = key_text,
                              .key_size = key.mv_size,
                              .value = (const char *) data.mv_data + S_OBJECT_HEADER,
                              .value_size = data.mv_size - S_OBJECT_HEADER,
                              .mod_revision = (int64_t) s_get_u64 (data.mv_data)};
        result->count++;
        bool stop = fn && fn (arg, &kv) != 0;
        rc = mdb_cursor_get (cursor, &key, &data, MDB_NEXT);
        if (stop) {
            result->more = rc == 0 && s_has_prefix (&key, prefix, prefix_len);
            break;
        }
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        status = s_mdb_fail (self, rc, "range");
done:
    if (cursor)
        mdb_cursor_close (cursor);
    s_read_end (self);
    return status;
}

static zube_status_t
s_revision (zube_store_backend_t *self, int64_t *revision_p, int64_t *compacted_p)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return s_mdb_fail (self, rc, "begin read");
    int64_t revision = 0, compacted = 0;
    if ((rc = s_meta_get (self, txn, "revision", &revision)) == 0)
        rc = s_meta_get (self, txn, "compacted", &compacted);
    s_read_end (self);
    if (rc != 0)
        return s_mdb_fail (self, rc, "revision");
    if (revision_p)
        *revision_p = revision;
    if (compacted_p)
        *compacted_p = compacted;
    return ZUBE_OK;
}

static zube_status_t
s_events (zube_store_backend_t *self, int64_t since, size_t limit, zube_store_event_fn *fn,
          void *arg, int64_t *revision_p)
{
    if (since < 0)
        return s_fail (self, ZUBE_BAD_REQUEST, "lmdb: events since %" PRId64 ": negative", since);
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return s_mdb_fail (self, rc, "begin read");
    zube_status_t status = ZUBE_OK;
    MDB_cursor *cursor = NULL;
    int64_t revision = 0, compacted = 0;
    if ((rc = s_meta_get (self, txn, "revision", &revision)) != 0
        || (rc = s_meta_get (self, txn, "compacted", &compacted)) != 0
        || (rc = mdb_cursor_open (txn, self->events, &cursor)) != 0) {
        status = s_mdb_fail (self, rc, "events");
        goto done;
    }
    if (revision_p)
        *revision_p = revision;
    if (since < compacted) {
        status = s_fail (self, ZUBE_GONE,
                         "events since %" PRId64 " are compacted (oldest available: since %" PRId64 ")",
                         since, compacted);
        goto done;
    }
    unsigned char first[8];
    s_put_u64 (first, (uint64_t) since + 1);
    MDB_val key = {.mv_size = 8, .mv_data = first}, data;
    size_t count = 0;
    char key_text[1024];
    for (rc = mdb_cursor_get (cursor, &key, &data, MDB_SET_RANGE);
         rc == 0 && (!limit || count < limit);
         rc = mdb_cursor_get (cursor, &key, &data, MDB_NEXT)) {
        const unsigned char *bytes = data.mv_data;
        if (key.mv_size != 8 || data.mv_size < S_EVENT_HEADER) {
            rc = MDB_CORRUPTED;
            break;
        }
        size_t key_size = ((size_t) bytes[4] << 24) | ((size_t) bytes[5] << 16)
                        | ((size_t) bytes[6] << 8) | bytes[7];
        if (key_size >= sizeof key_text || S_EVENT_HEADER + key_size > data.mv_size) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy (key_text, bytes + S_EVENT_HEADER, key_size);
        key_text[key_size] = 0;
        zube_store_event_t event = {
            .type = (zube_store_event_type_t) bytes[0],
            .revision = (int64_t) s_get_u64 (key.mv_data),
            .prev_revision = (int64_t) s_get_u64 (bytes + 8),
            .key = key_text,
            .key_size = key_size,
            .value = bytes + S_EVENT_HEADER + key_size,
            .value_size = data.mv_size - S_EVENT_HEADER - key_size};
        count++;
        if (fn && fn (arg, &event) != 0) {
            rc = 0;
            break;
        }
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        status = s_mdb_fail (self, rc, "events");
done:
    if (cursor)
        mdb_cursor_close (cursor);
    s_read_end (self);
    return status;
}

//  ---------------------------------------------------------------------
//  Writes

//  The key's mod revision in txn (0 if absent or not a valid key).
static int64_t
s_mod_revision (zube_store_backend_t *self, MDB_txn *txn, const char *key)
{
    if (!s_key_valid (self, key))
        return 0;
    MDB_val k = {.mv_size = strlen (key), .mv_data = (void *) key}, data;
    if (mdb_get (txn, self->objects, &k, &data) != 0 || data.mv_size < S_OBJECT_HEADER)
        return 0;
    return (int64_t) s_get_u64 (data.mv_data);
}

static int
s_append_event (zube_store_backend_t *self, MDB_txn *txn, int64_t revision,
                zube_store_event_type_t type, int64_t prev_revision, const char *key,
                size_t key_size, const void *value, size_t value_size)
{
    unsigned char number[8];
    s_put_u64 (number, (uint64_t) revision);
    MDB_val k = {.mv_size = 8, .mv_data = number};
    MDB_val data = {.mv_size = S_EVENT_HEADER + key_size + value_size};
    int rc = mdb_put (txn, self->events, &k, &data, MDB_RESERVE | MDB_APPEND);
    if (rc != 0)
        return rc;
    unsigned char *bytes = data.mv_data;
    memset (bytes, 0, S_EVENT_HEADER);
    bytes[0] = (unsigned char) type;
    bytes[4] = (unsigned char) (key_size >> 24);
    bytes[5] = (unsigned char) (key_size >> 16);
    bytes[6] = (unsigned char) (key_size >> 8);
    bytes[7] = (unsigned char) key_size;
    s_put_u64 (bytes + 8, (uint64_t) prev_revision);
    memcpy (bytes + S_EVENT_HEADER, key, key_size);
    if (value_size)
        memcpy (bytes + S_EVENT_HEADER + key_size, value, value_size);
    return 0;
}

//  Applies one operation in txn. A failed check sets *group_status and
//  answers 0; a nonzero answer is an LMDB failure that ends the batch.
static int
s_apply (zube_store_backend_t *self, MDB_txn *txn, const zube_store_op_t *op,
         int64_t *revision, zube_store_result_t *result, zube_status_t *group_status)
{
    if (!s_key_valid (self, op->key)
        || (op->type != ZUBE_STORE_PUT && op->type != ZUBE_STORE_DELETE)
        || (op->type == ZUBE_STORE_PUT && op->value_size && !op->value)
        || op->expect_revision < ZUBE_STORE_ANY_REVISION) {
        s_fail (self, ZUBE_BAD_REQUEST,
                "lmdb: invalid operation on \"%.64s\" (empty or too long key, unknown type, "
                "or missing value)", op->key ? op->key : "(null)");
        *group_status = ZUBE_BAD_REQUEST;
        return 0;
    }
    size_t key_size = strlen (op->key);
    MDB_val k = {.mv_size = key_size, .mv_data = (void *) op->key}, current;
    int rc = mdb_get (txn, self->objects, &k, &current);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    bool exists = rc == 0;
    if (exists && current.mv_size < S_OBJECT_HEADER)
        return MDB_CORRUPTED;
    int64_t mod_revision = exists ? (int64_t) s_get_u64 (current.mv_data) : 0;
    if (op->expect_revision != ZUBE_STORE_ANY_REVISION && op->expect_revision != mod_revision) {
        *group_status = ZUBE_CONFLICT;
        return 0;
    }
    if (op->type == ZUBE_STORE_DELETE && !exists) {
        *group_status = ZUBE_NOT_FOUND;
        return 0;
    }
    int64_t next = *revision + 1;
    if (op->type == ZUBE_STORE_PUT) {
        MDB_val data = {.mv_size = S_OBJECT_HEADER + op->value_size};
        if ((rc = mdb_put (txn, self->objects, &k, &data, MDB_RESERVE)) != 0)
            return rc;
        s_put_u64 (data.mv_data, (uint64_t) next);
        if (op->value_size)
            memcpy ((char *) data.mv_data + S_OBJECT_HEADER, op->value, op->value_size);
        rc = s_append_event (self, txn, next,
                             exists ? ZUBE_STORE_EVENT_MODIFIED : ZUBE_STORE_EVENT_ADDED,
                             mod_revision, op->key, key_size, op->value, op->value_size);
    }
    else {
        //  The event carries the last value; copy it out of the page first,
        //  as the writes below may reuse a dirty page.
        size_t last_size = current.mv_size - S_OBJECT_HEADER;
        void *last = malloc (last_size ? last_size : 1);
        if (!last)
            return ENOMEM;
        memcpy (last, (char *) current.mv_data + S_OBJECT_HEADER, last_size);
        rc = s_append_event (self, txn, next, ZUBE_STORE_EVENT_DELETED, mod_revision, op->key,
                             key_size, last, last_size);
        free (last);
        if (rc == 0)
            rc = mdb_del (txn, self->objects, &k, NULL);
    }
    if (rc != 0)
        return rc;
    *revision = next;
    *result = (zube_store_result_t) {.status = ZUBE_OK, .revision = next};
    return 0;
}

//  The checks of s_apply for a group of count operations, without writing:
//  each compare sees the operations before it in the group. Sets
//  *group_status on the first that fails; answers an LMDB failure.
static int
s_check_group (zube_store_backend_t *self, MDB_txn *txn, const zube_store_op_t *ops,
               size_t count, int64_t revision, zube_status_t *group_status)
{
    if (count == 1)
        return 0; //  s_apply checks a lone operation before it writes
    for (size_t i = 0; i < count && *group_status == ZUBE_OK; i++) {
        const zube_store_op_t *op = &ops[i];
        if (!s_key_valid (self, op->key)
            || (op->type != ZUBE_STORE_PUT && op->type != ZUBE_STORE_DELETE)
            || (op->type == ZUBE_STORE_PUT && op->value_size && !op->value)
            || op->expect_revision < ZUBE_STORE_ANY_REVISION) {
            *group_status = ZUBE_BAD_REQUEST;
            break;
        }
        //  The key as the earlier operations of the group left it
        bool known = false, exists = false;
        int64_t mod_revision = 0;
        for (size_t j = i; j-- > 0;)
            if (strcmp (ops[j].key, op->key) == 0) {
                known = true;
                exists = ops[j].type == ZUBE_STORE_PUT;
                //  operation j of the group takes revision + j + 1
                mod_revision = exists ? revision + (int64_t) j + 1 : 0;
                break;
            }
        if (!known) {
            MDB_val k = {.mv_size = strlen (op->key), .mv_data = (void *) op->key}, current;
            int rc = mdb_get (txn, self->objects, &k, &current);
            if (rc != 0 && rc != MDB_NOTFOUND)
                return rc;
            exists = rc == 0;
            if (exists && current.mv_size < S_OBJECT_HEADER)
                return MDB_CORRUPTED;
            mod_revision = exists ? (int64_t) s_get_u64 (current.mv_data) : 0;
        }
        if (op->expect_revision != ZUBE_STORE_ANY_REVISION
            && op->expect_revision != mod_revision) {
            *group_status = ZUBE_CONFLICT;
            break;
        }
        if (op->type == ZUBE_STORE_DELETE && !exists)
            *group_status = ZUBE_NOT_FOUND;
    }
    return 0;
}

//  Writes zeros past the end of the data file, ahead of the pages the
//  next writes take, and syncs them once. A commit's fdatasync then only
//  overwrites blocks the file already has, with no new size or extent to
//  journal: on this project's ext4 test machine an fdatasync of 32 KiB in
//  place took 0.2-1 ms where the same at the end of the file took
//  1.3-4 ms, and a batch of creates grows the file at every commit.
//  (fallocate would not do: ext4 journals the conversion of its unwritten
//  extents on the first write.) Called inside the write transaction, so
//  LMDB's writer lock keeps every other writer off the file meanwhile;
//  what lies past the last page belongs to no one, so a crash halfway
//  leaves nothing to repair. Each extension doubles what is used, from
//  1 MiB up to preallocate at a time, and never past the map.
static void
s_preallocate (zube_store_backend_t *self)
{
    static const unsigned char zeros[64 * 1024];
    MDB_envinfo info;
    MDB_stat stat;
    mdb_filehandle_t fd;
    struct stat file;
    if (self->preallocate == 0 || mdb_env_info (self->env, &info) != 0
        || mdb_env_stat (self->env, &stat) != 0 || mdb_env_get_fd (self->env, &fd) != 0
        || fstat (fd, &file) != 0)
        return;
    size_t used = (info.me_last_pgno + 1) * (size_t) stat.ms_psize;
    size_t step = used < S_PREALLOCATE_MIN ? S_PREALLOCATE_MIN : used;
    if (step > self->preallocate)
        step = self->preallocate;
    size_t size = (size_t) file.st_size;
    if (size > used + step / 2)
        return;
    size_t target = used + step;
    if (target > info.me_mapsize)
        target = info.me_mapsize;
    if (target <= size)
        return;
    size_t at = size;
    while (at < target) {
        size_t chunk = target - at < sizeof zeros ? target - at : sizeof zeros;
        ssize_t wrote = pwrite (fd, zeros, chunk, (off_t) at);
        if (wrote <= 0)
            break;
        at += (size_t) wrote;
    }
    if (at < target || fdatasync (fd) != 0) {
        //  Out of space, most likely: give the space back and write as
        //  LMDB does, growing the file at each commit
        int error = errno;
        if (ftruncate (fd, (off_t) size) != 0)
            error = errno;
        self->preallocate = 0;
        self->host->log (self->host, ZUBE_LOG_WARN,
                         "msg=\"cannot preallocate the store, writing without\" dir=%s "
                         "error=\"%s\"",
                         self->dir, strerror (error));
    }
}

//  One attempt at the batch; an LMDB failure aborts everything and is
//  answered as is (the caller grows the map on MDB_MAP_FULL and retries).
static int
s_commit_once (zube_store_backend_t *self, const zube_store_op_t *ops, size_t count,
               zube_store_result_t *results, const char **where, size_t *written_p)
{
    MDB_txn *txn;
    *where = "begin write";
    int rc = s_txn_begin (self, 0, &txn);
    if (rc != 0)
        return rc;
    s_preallocate (self);
    int64_t start = 0;
    *where = "read revision";
    if ((rc = s_meta_get (self, txn, "revision", &start)) != 0) {
        mdb_txn_abort (txn);
        return rc;
    }
    int64_t revision = start;
    size_t written = 0;
    for (size_t first = 0; first < count;) {
        size_t end = first + 1;
        if (ops[first].group)
            while (end < count && ops[end].group == ops[first].group)
                end++;
        //  No nested transaction per group (each begin copies and clears
        //  a dirty list: it cost more than the writes): a group is checked
        //  first, each compare seeing the ops before it in the group, and
        //  written only when every check passed; a write that fails then
        //  is an LMDB failure, which ends the whole batch.
        zube_status_t group_status = ZUBE_OK;
        *where = "check group";
        rc = s_check_group (self, txn, ops + first, end - first, revision, &group_status);
        int64_t next = revision;
        *where = "write";
        for (size_t i = first; i < end && group_status == ZUBE_OK && rc == 0; i++)
            rc = s_apply (self, txn, &ops[i], &next, &results[i], &group_status);
        if (rc == 0 && group_status == ZUBE_OK) {
            written += end - first;
            revision = next;
        }
        else if (rc == 0)
            for (size_t i = first; i < end; i++)
                results[i] = (zube_store_result_t) {
                    .status = group_status,
                    .revision = s_mod_revision (self, txn, ops[i].key)};
        if (rc != 0) {
            mdb_txn_abort (txn);
            return rc;
        }
        first = end;
    }
    if (revision == start) {
        mdb_txn_abort (txn);
        *written_p = 0;
        return 0;
    }
    *where = "write revision";
    if ((rc = s_meta_put (self, txn, "revision", revision)) != 0) {
        mdb_txn_abort (txn);
        return rc;
    }
    //  LMDB's default commit writes and fsyncs: the batch is durable when
    //  this returns 0.
    *where = "commit";
    rc = mdb_txn_commit (txn);
    *written_p = rc == 0 ? written : 0;
    return rc;
}

//  Doubles the map; false when it is at its ceiling or LMDB refuses.
static bool
s_grow (zube_store_backend_t *self)
{
    if (self->map_size >= S_MAX_MAP_SIZE)
        return false;
    if (self->reader) {
        mdb_txn_abort (self->reader);
        self->reader = NULL;
    }
    //  No transaction may be active in the process: the shared lock,
    //  held for reading by the caller, is taken for writing meanwhile
    pthread_rwlock_unlock (&self->shared->resize);
    pthread_rwlock_wrlock (&self->shared->resize);
    MDB_envinfo info;
    mdb_env_info (self->env, &info);
    size_t size = info.me_mapsize > self->map_size ? info.me_mapsize : self->map_size * 2;
    int rc = mdb_env_set_mapsize (self->env, size);
    pthread_rwlock_unlock (&self->shared->resize);
    pthread_rwlock_rdlock (&self->shared->resize);
    if (rc != 0)
        return false;
    self->map_size = size;
    self->host->log (self->host, ZUBE_LOG_INFO, "msg=\"store map grown\" dir=%s map_size=%zu",
                     self->dir, size);
    return true;
}

static zube_status_t
s_txn_commit (zube_store_backend_t *self, const zube_store_op_t *ops, size_t count,
              zube_store_result_t *results)
{
    if (count == 0)
        return ZUBE_OK;
    if (!ops || !results)
        return s_fail (self, ZUBE_BAD_REQUEST, "lmdb: txn_commit without ops or results");
    if (!self->env)
        return s_fail (self, ZUBE_UNAVAILABLE, "lmdb %s: not open (a restore failed)", self->dir);
    const char *where = "";
    size_t written = 0;
    int rc;
    while ((rc = s_commit_once (self, ops, count, results, &where, &written)) == MDB_MAP_FULL
           && s_grow (self))
        ;
    if (rc != 0) {
        zube_status_t status = s_mdb_fail (self, rc, where);
        for (size_t i = 0; i < count; i++)
            results[i] = (zube_store_result_t) {.status = status};
        return status;
    }
    self->host->counter_add (self->host, "store_txn_total", 1);
    self->host->counter_add (self->host, "store_writes_total", written);
    if (written < count)
        self->host->counter_add (self->host, "store_failed_ops_total", count - written);
    return ZUBE_OK;
}

static zube_status_t
s_compact (zube_store_backend_t *self, int64_t revision)
{
    if (!self->env)
        return s_fail (self, ZUBE_UNAVAILABLE, "lmdb %s: not open (a restore failed)", self->dir);
    MDB_txn *txn;
    int rc = s_txn_begin (self, 0, &txn);
    if (rc != 0)
        return s_mdb_fail (self, rc, "begin write");
    int64_t current = 0, compacted = 0;
    if ((rc = s_meta_get (self, txn, "revision", &current)) != 0
        || (rc = s_meta_get (self, txn, "compacted", &compacted)) != 0) {
        mdb_txn_abort (txn);
        return s_mdb_fail (self, rc, "compact");
    }
    if (revision > current) {
        mdb_txn_abort (txn);
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "lmdb: compact to %" PRId64 ": beyond the current revision %" PRId64,
                       revision, current);
    }
    if (revision <= compacted) {
        mdb_txn_abort (txn);
        return ZUBE_OK;
    }
    MDB_cursor *cursor;
    if ((rc = mdb_cursor_open (txn, self->events, &cursor)) != 0) {
        mdb_txn_abort (txn);
        return s_mdb_fail (self, rc, "compact");
    }
    MDB_val key, data;
    size_t dropped = 0;
    for (rc = mdb_cursor_get (cursor, &key, &data, MDB_FIRST);
         rc == 0 && key.mv_size == 8 && (int64_t) s_get_u64 (key.mv_data) <= revision;
         rc = mdb_cursor_get (cursor, &key, &data, MDB_NEXT)) {
        if ((rc = mdb_cursor_del (cursor, 0)) != 0)
            break;
        dropped++;
    }
    mdb_cursor_close (cursor);
    if (rc == 0 || rc == MDB_NOTFOUND)
        rc = s_meta_put (self, txn, "compacted", revision);
    if (rc != 0) {
        mdb_txn_abort (txn);
        return s_mdb_fail (self, rc, "compact");
    }
    if ((rc = mdb_txn_commit (txn)) != 0)
        return s_mdb_fail (self, rc, "commit compaction");
    self->host->counter_add (self->host, "store_events_compacted_total", dropped);
    return ZUBE_OK;
}

//  ---------------------------------------------------------------------
//  Snapshot and restore

static zube_status_t
s_snapshot (zube_store_backend_t *self, int fd)
{
    if (!self->env)
        return s_fail (self, ZUBE_UNAVAILABLE, "lmdb %s: not open (a restore failed)", self->dir);
    int rc = mdb_env_copyfd2 (self->env, fd, MDB_CP_COMPACT);
    if (rc != 0)
        return s_mdb_fail (self, rc, "snapshot");
    return ZUBE_OK;
}

//  Copies fd to path until EOF and syncs it; 0 or an errno.
static int
s_copy_in (int fd, const char *path)
{
    int out = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        return errno;
    char buffer[65536];
    int rc = 0;
    while (true) {
        ssize_t got = read (fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = errno;
            break;
        }
        if (got == 0)
            break;
        for (ssize_t done = 0; done < got;) {
            ssize_t put = write (out, buffer + done, (size_t) (got - done));
            if (put < 0 && errno == EINTR)
                continue;
            if (put < 0) {
                rc = errno;
                break;
            }
            done += put;
        }
        if (rc)
            break;
    }
    if (rc == 0 && fsync (out) != 0)
        rc = errno;
    if (close (out) != 0 && rc == 0)
        rc = errno;
    return rc;
}

//  Opens the copy read-only and checks it is a zube store of our format.
static int
s_check_snapshot (const char *path, const char **where)
{
    MDB_env *env;
    *where = "check snapshot";
    int rc = mdb_env_create (&env);
    if (rc != 0)
        return rc;
    mdb_env_set_maxdbs (env, 4);
    if ((rc = mdb_env_open (env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600)) != 0) {
        *where = "check snapshot (not an LMDB file)";
        mdb_env_close (env);
        return rc;
    }
    MDB_txn *txn;
    MDB_dbi meta, dbi;
    if ((rc = mdb_txn_begin (env, NULL, MDB_RDONLY, &txn)) == 0) {
        *where = "check snapshot (not a zube store)";
        if ((rc = mdb_dbi_open (txn, "meta", 0, &meta)) == 0
            && (rc = mdb_dbi_open (txn, "objects", 0, &dbi)) == 0
            && (rc = mdb_dbi_open (txn, "events", 0, &dbi)) == 0) {
            MDB_val key = {.mv_size = 6, .mv_data = "format"}, data;
            rc = mdb_get (txn, meta, &key, &data);
            if (rc == 0 && (data.mv_size != 8 || s_get_u64 (data.mv_data) != S_FORMAT)) {
                *where = "check snapshot (written by another zube version)";
                rc = MDB_VERSION_MISMATCH;
            }
        }
        mdb_txn_abort (txn);
    }
    mdb_env_close (env);
    return rc;
}

static zube_status_t
s_restore (zube_store_backend_t *self, int fd)
{
    if (self->shared && self->shared->references > 1)
        return s_fail (self, ZUBE_UNAVAILABLE,
                       "lmdb %s: restore: the store is open more than once in this process",
                       self->dir);
    char *incoming = NULL, *data_file = NULL;
    if (asprintf (&incoming, "%s/restore.mdb.tmp", self->dir) < 0)
        return s_fail (self, ZUBE_INTERNAL, "out of memory");
    if (asprintf (&data_file, "%s/data.mdb", self->dir) < 0) {
        free (incoming);
        return s_fail (self, ZUBE_INTERNAL, "out of memory");
    }
    zube_status_t status = ZUBE_OK;
    const char *where = "";
    int rc = s_copy_in (fd, incoming);
    if (rc != 0) {
        status = s_fail (self, ZUBE_UNAVAILABLE, "lmdb %s: restore: writing %s: %s", self->dir,
                         incoming, strerror (rc));
        unlink (incoming);
        goto done;
    }
    if ((rc = s_check_snapshot (incoming, &where)) != 0) {
        status = s_fail (self, ZUBE_BAD_REQUEST, "lmdb %s: restore: %s: %s", self->dir, where,
                         mdb_strerror (rc));
        unlink (incoming);
        goto done;
    }
    //  The check passed: from here the old store is replaced.
    if (self->reader) {
        mdb_txn_abort (self->reader);
        self->reader = NULL;
    }
    if (self->env) {
        mdb_env_close (self->env);
        self->env = NULL;
    }
    if (rename (incoming, data_file) != 0) {
        rc = errno;
        unlink (incoming);
        status = s_fail (self, ZUBE_UNAVAILABLE, "lmdb %s: restore: rename: %s", self->dir,
                         strerror (rc));
    }
    s_fsync_dir (self->dir);
    rc = s_env_open (self, &where);
    if (self->shared) {
        self->shared->env = self->env;
        self->shared->objects = self->objects;
        self->shared->events = self->events;
        self->shared->meta = self->meta;
    }
    if (rc != 0) {
        status = s_fail (self, ZUBE_INTERNAL, "lmdb %s: reopen after restore: %s: %s", self->dir,
                         where, mdb_strerror (rc));
        goto done;
    }
    if (status == ZUBE_OK)
        self->host->log (self->host, ZUBE_LOG_INFO, "msg=\"store restored\" dir=%s", self->dir);
done:
    free (incoming);
    free (data_file);
    return status;
}

//  ---------------------------------------------------------------------

//  ---------------------------------------------------------------------
//  Every operation runs with the shared env's lock held for reading (see
//  the top of the file); restore is alone by contract.

#define S_LOCKED(call) \
    do { \
        pthread_rwlock_rdlock (&self->shared->resize); \
        zube_status_t locked_status = call; \
        pthread_rwlock_unlock (&self->shared->resize); \
        return locked_status; \
    } while (0)

static zube_status_t
s_get_locked (zube_store_backend_t *self, const char *key, zube_store_kv_fn *fn, void *arg)
{
    S_LOCKED (s_get (self, key, fn, arg));
}

static zube_status_t
s_range_locked (zube_store_backend_t *self, const zube_store_range_t *range,
                zube_store_kv_fn *fn, void *arg, zube_store_range_result_t *result)
{
    S_LOCKED (s_range (self, range, fn, arg, result));
}

static zube_status_t
s_txn_commit_locked (zube_store_backend_t *self, const zube_store_op_t *ops, size_t count,
                     zube_store_result_t *results)
{
    S_LOCKED (s_txn_commit (self, ops, count, results));
}

static zube_status_t
s_revision_locked (zube_store_backend_t *self, int64_t *revision_p, int64_t *compacted_p)
{
    S_LOCKED (s_revision (self, revision_p, compacted_p));
}

static zube_status_t
s_events_locked (zube_store_backend_t *self, int64_t since, size_t limit,
                 zube_store_event_fn *fn, void *arg, int64_t *revision_p)
{
    S_LOCKED (s_events (self, since, limit, fn, arg, revision_p));
}

static zube_status_t
s_compact_locked (zube_store_backend_t *self, int64_t revision)
{
    S_LOCKED (s_compact (self, revision));
}

static zube_status_t
s_snapshot_locked (zube_store_backend_t *self, int fd)
{
    S_LOCKED (s_snapshot (self, fd));
}

static zube_plugin_rc_t
s_init (const zube_host_t *host, char *error, size_t error_size)
{
    if (!ZUBE_HOST_HAS (host, monotonic_ns)) {
        snprintf (error, error_size, "host table version %u is too old (need %d)",
                  host->version, ZUBE_HOST_VERSION);
        return ZUBE_PLUGIN_ERROR;
    }
    return ZUBE_PLUGIN_OK;
}

static const zube_store_ops_t s_ops = {
    .struct_size = sizeof (zube_store_ops_t),
    .open = s_open,
    .close = s_close,
    .errmsg = s_errmsg,
    .get = s_get_locked,
    .range = s_range_locked,
    .txn_commit = s_txn_commit_locked,
    .revision = s_revision_locked,
    .events = s_events_locked,
    .compact = s_compact_locked,
    .snapshot = s_snapshot_locked,
    .restore = s_restore,
};

ZUBE_PLUGIN_DEFINE (.name = "lmdb",
                    .version = ZUBE_VERSION_STRING,
                    .kind = ZUBE_PLUGIN_STORE,
                    .description = "embedded store on LMDB (lmdb or lmdb:DIR)",
                    .ops = &s_ops,
                    .init = s_init)
