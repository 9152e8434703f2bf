/*  oci_image_layer - unpacking image layers and hashing blobs.

    A layer is a tar (plain, gzip or zstd: libarchive detects the filter)
    applied onto a directory. Three modes: OVERLAY unpacks one layer into
    its own directory of the shared cache, turning whiteouts into
    overlayfs whiteouts (a .wh.NAME entry becomes a 0:0 character device
    NAME, a .wh..wh..opq entry the trusted.overlay.opaque xattr of its
    directory); FLATTEN applies a layer onto the layers below it in one
    directory (the copy rootfs), deleting what whiteouts name; PLAIN
    extracts an archive as it is (an image tarball into a staging dir).

    No entry may write outside its directory: a path with a ".." part,
    a hard link to one, and an entry whose parent is reached through a
    symlink are refused with the entry named; absolute paths are taken
    relative to the directory, as tar does. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "oci_image_private.h"

int
oci_image_fail (char *err, size_t err_size, const char *format, ...)
{
    if (err && err_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, err_size, format, args);
        va_end (args);
    }
    return -1;
}

//  ---------------------------------------------------------------------
//  Hashing

static void
s_hex (const unsigned char *hash, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < crypto_hash_sha256_BYTES; i++) {
        hex[2 * i] = digits[hash[i] >> 4];
        hex[2 * i + 1] = digits[hash[i] & 15];
    }
    hex[2 * crypto_hash_sha256_BYTES] = '\0';
}

int
oci_image_copy_hashed (const char *from, const char *to, char *hex, uint64_t *size_p,
                       char *err, size_t err_size)
{
    int in = open (from, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (in < 0)
        return oci_image_fail (err, err_size, "cannot read %s: %s", from, strerror (errno));
    //  a blob is a file: not a device or a pipe an archive's symlink
    //  might point at (endless /dev/zero)
    struct stat st;
    if (fstat (in, &st) != 0 || !S_ISREG (st.st_mode)) {
        close (in);
        return oci_image_fail (err, err_size, "%s is not a regular file", from);
    }
    int out = -1;
    if (to) {
        out = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0) {
            int saved = errno;
            close (in);
            return oci_image_fail (err, err_size, "cannot write %s: %s", to, strerror (saved));
        }
    }
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    uint64_t size = 0;
    unsigned char buffer[65536];
    int rc = 0;
    while (rc == 0) {
        ssize_t got = read (in, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = oci_image_fail (err, err_size, "cannot read %s: %s", from, strerror (errno));
            break;
        }
        if (got == 0)
            break;
        crypto_hash_sha256_update (&state, buffer, (unsigned long long) got);
        size += (uint64_t) got;
        for (ssize_t done = 0; out >= 0 && done < got;) {
            ssize_t put = write (out, buffer + done, (size_t) (got - done));
            if (put < 0 && errno == EINTR)
                continue;
            if (put < 0) {
                rc = oci_image_fail (err, err_size, "cannot write %s: %s", to, strerror (errno));
                break;
            }
            done += put;
        }
    }
    close (in);
    if (out >= 0 && close (out) != 0 && rc == 0)
        rc = oci_image_fail (err, err_size, "cannot write %s: %s", to, strerror (errno));
    if (rc == 0) {
        unsigned char hash[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_final (&state, hash);
        s_hex (hash, hex);
        if (size_p)
            *size_p = size;
    }
    return rc;
}

//  The sha256 of a blob's uncompressed bytes (a layer's diff id).
int
oci_image_diff_id (const char *path, char *hex, char *err, size_t err_size)
{
    struct archive *reader = archive_read_new ();
    archive_read_support_filter_all (reader);
    archive_read_support_format_raw (reader);
    struct archive_entry *entry;
    int rc = 0;
    if (archive_read_open_filename (reader, path, 65536) != ARCHIVE_OK
        || archive_read_next_header (reader, &entry) != ARCHIVE_OK) {
        rc = oci_image_fail (err, err_size, "cannot read %s: %s", path,
                             archive_error_string (reader));
        archive_read_free (reader);
        return rc;
    }
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    char buffer[65536];
    la_ssize_t got;
    while ((got = archive_read_data (reader, buffer, sizeof buffer)) > 0)
        crypto_hash_sha256_update (&state, (unsigned char *) buffer, (unsigned long long) got);
    if (got < 0)
        rc = oci_image_fail (err, err_size, "cannot read %s: %s", path,
                             archive_error_string (reader));
    else {
        unsigned char hash[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_final (&state, hash);
        s_hex (hash, hex);
    }
    archive_read_free (reader);
    return rc;
}

//  ---------------------------------------------------------------------
//  Removing trees

static int
s_remove_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (flag == FTW_DP)
        return rmdir (path) == 0 || errno == ENOENT ? 0 : -1;
    return unlink (path) == 0 || errno == ENOENT ? 0 : -1;
}

int
oci_image_remove_tree (const char *path)
{
    struct stat st;
    if (lstat (path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR (st.st_mode))
        return unlink (path);
    return nftw (path, s_remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

//  Removes what dir holds, keeping dir itself (an opaque whiteout).
static int
s_empty_dir (const char *dir)
{
    char path[PATH_MAX];
    int rc = 0;
    struct stat st;
    if (lstat (dir, &st) != 0 || !S_ISDIR (st.st_mode))
        return 0;
    DIR *d = opendir (dir);
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir (d)) != NULL;) {
        if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
            continue;
        if (snprintf (path, sizeof path, "%s/%s", dir, e->d_name) >= (int) sizeof path
            || oci_image_remove_tree (path) != 0)
            rc = -1;
    }
    closedir (d);
    return rc;
}

//  ---------------------------------------------------------------------
//  Unpacking

//  Cleans an entry's path: leading "/" and "./" parts dropped, "." parts
//  skipped; -1 when a part is "..". out is "" for the root itself.
static int
s_clean_path (const char *name, char *out, size_t out_size)
{
    size_t used = 0;
    out[0] = '\0';
    const char *at = name;
    while (*at) {
        while (*at == '/')
            at++;
        const char *end = strchr (at, '/');
        size_t len = end ? (size_t) (end - at) : strlen (at);
        if (len == 0)
            break;
        if (len == 2 && at[0] == '.' && at[1] == '.')
            return -1;
        if (!(len == 1 && at[0] == '.')) {
            if (used + len + 2 > out_size)
                return -1;
            if (used)
                out[used++] = '/';
            memcpy (out + used, at, len);
            used += len;
            out[used] = '\0';
        }
        at += len;
    }
    return 0;
}

//  0 when no directory on the way from dest to rel's last part is a
//  symlink (a missing part is fine: it will be created as a directory);
//  else -1 with the symlink's path in link.
static int
s_check_parents (const char *dest, const char *rel, char *link, size_t link_size)
{
    char path[PATH_MAX];
    size_t base = (size_t) snprintf (path, sizeof path, "%s/", dest);
    const char *at = rel;
    const char *slash;
    while ((slash = strchr (at, '/')) != NULL) {
        size_t upto = (size_t) (slash - rel);
        if (base + upto >= sizeof path)
            return -1;
        memcpy (path + base, rel, upto);
        path[base + upto] = '\0';
        struct stat st;
        if (lstat (path, &st) != 0)
            return 0;
        if (S_ISLNK (st.st_mode)) {
            snprintf (link, link_size, "%.*s", (int) upto, rel);
            return -1;
        }
        at = slash + 1;
    }
    return 0;
}

int
oci_image_mkdirs (const char *path)
{
    char buffer[PATH_MAX];
    if (snprintf (buffer, sizeof buffer, "%s", path) >= (int) sizeof buffer) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *slash = strchr (buffer + 1, '/'); slash; slash = strchr (slash + 1, '/')) {
        *slash = '\0';
        if (mkdir (buffer, 0755) != 0 && errno != EEXIST)
            return -1;
        *slash = '/';
    }
    return mkdir (buffer, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

//  A whiteout entry (rel's last part starts with ".wh.").
static int
s_whiteout (const char *dest, const char *rel, oci_layer_mode_t mode, const char *what,
            char *err, size_t err_size)
{
    const char *slash = strrchr (rel, '/');
    const char *base = slash ? slash + 1 : rel;
    char parent[PATH_MAX];
    if (slash)
        snprintf (parent, sizeof parent, "%s/%.*s", dest, (int) (slash - rel), rel);
    else
        snprintf (parent, sizeof parent, "%s", dest);
    const char *name = base + 4;
    bool opaque = strcmp (name, ".wh..opq") == 0;
    if (!opaque && strncmp (name, ".wh.", 4) == 0)
        return 0;   //  other aufs metadata (.wh..wh.plnk, ...): nothing to apply
    if (!opaque && (name[0] == '\0' || strcmp (name, ".") == 0 || strcmp (name, "..") == 0))
        return oci_image_fail (err, err_size, "%s: entry \"%s\" is an invalid whiteout", what,
                               rel);
    char target[PATH_MAX + 256];
    if (snprintf (target, sizeof target, "%s/%s", parent, name) >= (int) sizeof target)
        return oci_image_fail (err, err_size, "%s: entry \"%s\": path too long", what, rel);
    if (mode == OCI_LAYER_FLATTEN) {
        if (opaque)
            return s_empty_dir (parent) == 0
                       ? 0
                       : oci_image_fail (err, err_size, "%s: cannot empty %s: %s", what, parent,
                                         strerror (errno));
        return oci_image_remove_tree (target) == 0
                   ? 0
                   : oci_image_fail (err, err_size, "%s: cannot remove %s: %s", what, target,
                                     strerror (errno));
    }
    if (oci_image_mkdirs (parent) != 0)
        return oci_image_fail (err, err_size, "%s: cannot create %s: %s", what, parent,
                               strerror (errno));
    if (opaque) {
        if (lsetxattr (parent, "trusted.overlay.opaque", "y", 1, 0) == 0)
            return 0;
        if (errno != EPERM && errno != ENOTSUP)
            return oci_image_fail (err, err_size, "%s: cannot mark %s opaque: %s", what, parent,
                                   strerror (errno));
    }
    else {
        oci_image_remove_tree (target);
        if (mknod (target, S_IFCHR | 0, makedev (0, 0)) == 0)
            return 0;
        if (errno != EPERM)
            return oci_image_fail (err, err_size, "%s: cannot create whiteout %s: %s", what,
                                   target, strerror (errno));
    }
    //  Not root: keep the entry as a plain marker file. Such a layer is
    //  not usable as an overlay lower dir; the store copies then.
    char marker[PATH_MAX + 256];
    if (snprintf (marker, sizeof marker, "%s/%s", parent, base) >= (int) sizeof marker)
        return oci_image_fail (err, err_size, "%s: entry \"%s\": path too long", what, rel);
    int fd = open (marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return oci_image_fail (err, err_size, "%s: cannot create %s: %s", what, marker,
                               strerror (errno));
    close (fd);
    return 0;
}

int
oci_image_unpack (const char *archive_path, const char *dest, oci_layer_mode_t mode,
                  const char *what, char *err, size_t err_size)
{
    struct archive *reader = archive_read_new ();
    archive_read_support_filter_all (reader);
    archive_read_support_format_tar (reader);
    archive_read_support_format_gnutar (reader);
    struct archive *writer = archive_write_disk_new ();
    int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_UNLINK
              | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
    if (mode != OCI_LAYER_PLAIN)
        flags |= ARCHIVE_EXTRACT_XATTR | (geteuid () == 0 ? ARCHIVE_EXTRACT_OWNER : 0);
    archive_write_disk_set_options (writer, flags);
    int rc = 0;
    if (archive_read_open_filename (reader, archive_path, 65536) != ARCHIVE_OK) {
        rc = oci_image_fail (err, err_size, "%s: cannot read %s: %s", what, archive_path,
                             archive_error_string (reader));
        goto done;
    }
    struct archive_entry *entry;
    char rel[PATH_MAX];
    char full[PATH_MAX * 2];
    char link[PATH_MAX];
    for (;;) {
        int got = archive_read_next_header (reader, &entry);
        if (got == ARCHIVE_EOF)
            break;
        if (got < ARCHIVE_WARN) {
            rc = oci_image_fail (err, err_size, "%s: not a valid tar archive: %s", what,
                                 archive_error_string (reader));
            goto done;
        }
        //  a copy: setting the entry's path below frees libarchive's
        char name[PATH_MAX];
        const char *entry_name = archive_entry_pathname (entry);
        snprintf (name, sizeof name, "%s", entry_name ? entry_name : "");
        if (!entry_name || s_clean_path (name, rel, sizeof rel) != 0) {
            rc = oci_image_fail (err, err_size,
                                 "%s: entry \"%s\" escapes the layer (a \"..\" in its path)",
                                 what, name);
            goto done;
        }
        if (rel[0] == '\0')
            continue;   //  the root itself: dest already exists
        if (s_check_parents (dest, rel, link, sizeof link) != 0) {
            rc = oci_image_fail (err, err_size,
                                 "%s: entry \"%s\" escapes the layer (through the symlink \"%s\")",
                                 what, name, link);
            goto done;
        }
        const char *base = strrchr (rel, '/');
        base = base ? base + 1 : rel;
        if (mode != OCI_LAYER_PLAIN && strncmp (base, ".wh.", 4) == 0) {
            if (s_whiteout (dest, rel, mode, what, err, err_size) != 0) {
                rc = -1;
                goto done;
            }
            continue;
        }
        snprintf (full, sizeof full, "%s/%s", dest, rel);
        archive_entry_set_pathname (entry, full);
        const char *hardlink = archive_entry_hardlink (entry);
        if (hardlink) {
            char target[PATH_MAX];
            if (s_clean_path (hardlink, target, sizeof target) != 0 || target[0] == '\0'
                || s_check_parents (dest, target, link, sizeof link) != 0) {
                rc = oci_image_fail (err, err_size,
                                     "%s: hard link \"%s\" -> \"%s\" escapes the layer", what,
                                     name, hardlink);
                goto done;
            }
            snprintf (full, sizeof full, "%s/%s", dest, target);
            archive_entry_set_hardlink (entry, full);
        }
        if (archive_write_header (writer, entry) < ARCHIVE_WARN) {
            rc = oci_image_fail (err, err_size, "%s: cannot unpack \"%s\": %s", what, name,
                                 archive_error_string (writer));
            goto done;
        }
        const void *block;
        size_t size;
        la_int64_t offset;
        while ((got = archive_read_data_block (reader, &block, &size, &offset)) == ARCHIVE_OK)
            if (archive_write_data_block (writer, block, size, offset) < ARCHIVE_WARN) {
                got = ARCHIVE_FATAL;
                break;
            }
        if (got != ARCHIVE_EOF) {
            rc = oci_image_fail (err, err_size, "%s: cannot unpack \"%s\": %s", what, name,
                                 archive_error_string (got == ARCHIVE_FATAL ? writer : reader));
            goto done;
        }
        if (archive_write_finish_entry (writer) < ARCHIVE_WARN) {
            rc = oci_image_fail (err, err_size, "%s: cannot unpack \"%s\": %s", what, name,
                                 archive_error_string (writer));
            goto done;
        }
    }
done:
    if (archive_write_close (writer) < ARCHIVE_WARN && rc == 0)
        rc = oci_image_fail (err, err_size, "%s: cannot finish unpacking: %s", what,
                             archive_error_string (writer));
    archive_write_free (writer);
    archive_read_free (reader);
    return rc;
}
