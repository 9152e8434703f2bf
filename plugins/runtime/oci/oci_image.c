/*  oci_image - the image store of the oci runtime plugin.

    Layout under the store's dir (docs/runtime-oci.md, "Image store"):
    blobs/sha256/<hex> (every blob as imported, its digest verified),
    layers/<hex>/ (a layer blob unpacked with overlayfs whiteouts, shared
    read-only by every container of every image that has it), refs (a
    JSON object: normalized name -> manifest digest) and tmp/ (staging,
    emptied at open). A file appears under its final name only by
    rename, so a crash mid-import leaves nothing half-written in place.

    A container's rootfs is container_dir/rootfs: an overlay mount
    (lowerdir = the image's layers, upper and work in container_dir)
    when the process may mount overlayfs, else the layers applied one
    after another onto a plain directory (the copy). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci_image_private.h"
#include "zube_json_private.h"

#define S_JSON_MAX (8 * 1024 * 1024)

typedef struct {
    char *name;
    char *manifest;
} s_ref_t;

struct oci_image_store_t {
    char *dir;
    s_ref_t *refs;
    size_t ref_count;
    const char *last_mode;
    //  ZUBE_OCI_ROOTFS=copy in the environment: never overlay (tests, bench)
    bool copy_only;
};

static const char *s_media_index[] = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json", NULL};
static const char *s_media_manifest[] = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json", NULL};
static const char *s_media_layer[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", NULL};

static bool
s_in (const char *value, const char **list)
{
    for (size_t i = 0; value && list[i]; i++)
        if (strcmp (value, list[i]) == 0)
            return true;
    return false;
}

//  ---------------------------------------------------------------------
//  Small helpers

static const char *
s_json_string (const zube_json_t *object, const char *key)
{
    const zube_json_t *value = object ? zube_json_get (object, key) : NULL;
    return value && value->type == ZUBE_JSON_STRING ? value->text : NULL;
}

static int64_t
s_json_int (const zube_json_t *object, const char *key)
{
    const zube_json_t *value = object ? zube_json_get (object, key) : NULL;
    if (!value || value->type != ZUBE_JSON_NUMBER)
        return -1;
    char *end;
    long long n = strtoll (value->text, &end, 10);
    return *end || n < 0 ? -1 : n;
}

static const zube_json_t *
s_json_array (const zube_json_t *object, const char *key)
{
    const zube_json_t *value = object ? zube_json_get (object, key) : NULL;
    return value && value->type == ZUBE_JSON_ARRAY ? value : NULL;
}

static char *
s_read_file (const char *path, size_t max, size_t *size_p, char *err, size_t err_size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        oci_image_fail (err, err_size, "cannot read %s: %s", path, strerror (errno));
        return NULL;
    }
    char *data = malloc (max + 1);
    size_t size = data ? fread (data, 1, max + 1, file) : 0;
    fclose (file);
    if (!data || size > max) {
        free (data);
        oci_image_fail (err, err_size, "%s: larger than %zu bytes", path, max);
        return NULL;
    }
    data[size] = '\0';
    *size_p = size;
    return data;
}

static zube_json_t *
s_read_json (const char *path, char *err, size_t err_size)
{
    size_t size;
    char *text = s_read_file (path, S_JSON_MAX, &size, err, err_size);
    if (!text)
        return NULL;
    char why[256];
    zube_json_t *json = zube_json_parse (text, size, why, sizeof why);
    free (text);
    if (!json)
        oci_image_fail (err, err_size, "%s: invalid JSON: %s", path, why);
    return json;
}

//  A digest's hex part, or NULL when digest is not "sha256:<64 hex>".
static const char *
s_digest_hex (const char *digest)
{
    if (!digest || strncmp (digest, "sha256:", 7) != 0 || strlen (digest) != 71)
        return NULL;
    for (const char *at = digest + 7; *at; at++)
        if (!((*at >= '0' && *at <= '9') || (*at >= 'a' && *at <= 'f')))
            return NULL;
    return digest + 7;
}

static bool
s_exists (const char *path)
{
    struct stat st;
    return lstat (path, &st) == 0;
}

//  ---------------------------------------------------------------------
//  Refs

static s_ref_t *
s_ref_find (oci_image_store_t *self, const char *name)
{
    for (size_t i = 0; i < self->ref_count; i++)
        if (strcmp (self->refs[i].name, name) == 0)
            return &self->refs[i];
    return NULL;
}

static int
s_ref_set (oci_image_store_t *self, const char *name, const char *manifest)
{
    s_ref_t *ref = s_ref_find (self, name);
    if (ref) {
        char *copy = strdup (manifest);
        if (!copy)
            return -1;
        free (ref->manifest);
        ref->manifest = copy;
        return 0;
    }
    s_ref_t *refs = realloc (self->refs, (self->ref_count + 1) * sizeof *refs);
    if (!refs)
        return -1;
    self->refs = refs;
    //  kept sorted by name, so the list and the file read in name order
    size_t at = 0;
    while (at < self->ref_count && strcmp (self->refs[at].name, name) < 0)
        at++;
    memmove (&self->refs[at + 1], &self->refs[at], (self->ref_count - at) * sizeof *refs);
    self->refs[at].name = strdup (name);
    self->refs[at].manifest = strdup (manifest);
    self->ref_count++;
    return self->refs[at].name && self->refs[at].manifest ? 0 : -1;
}

static int
s_refs_save (oci_image_store_t *self, char *err, size_t err_size)
{
    char path[PATH_MAX], temp[PATH_MAX];
    snprintf (path, sizeof path, "%s/refs", self->dir);
    snprintf (temp, sizeof temp, "%s/refs.tmp", self->dir);
    FILE *file = fopen (temp, "w");
    if (!file)
        return oci_image_fail (err, err_size, "cannot write %s: %s", temp, strerror (errno));
    //  names and digests were validated: nothing in them needs escaping
    fputs ("{", file);
    for (size_t i = 0; i < self->ref_count; i++)
        fprintf (file, "%s\n  \"%s\": \"%s\"", i ? "," : "", self->refs[i].name,
                 self->refs[i].manifest);
    fputs ("\n}\n", file);
    bool ok = fflush (file) == 0 && fsync (fileno (file)) == 0;
    ok = fclose (file) == 0 && ok;
    if (!ok || rename (temp, path) != 0)
        return oci_image_fail (err, err_size, "cannot write %s: %s", path, strerror (errno));
    return 0;
}

static int
s_refs_load (oci_image_store_t *self, char *err, size_t err_size)
{
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/refs", self->dir);
    if (!s_exists (path))
        return 0;
    zube_json_t *json = s_read_json (path, err, err_size);
    if (!json)
        return -1;
    int rc = 0;
    if (json->type != ZUBE_JSON_OBJECT)
        rc = oci_image_fail (err, err_size, "%s: not a JSON object", path);
    for (size_t i = 0; rc == 0 && i < json->count; i++) {
        const zube_json_t *value = json->members[i].value;
        if (value->type != ZUBE_JSON_STRING || !s_digest_hex (value->text))
            rc = oci_image_fail (err, err_size, "%s: \"%s\" is not a manifest digest", path,
                                 json->members[i].key);
        else if (s_ref_set (self, json->members[i].key, value->text) != 0)
            rc = oci_image_fail (err, err_size, "out of memory");
    }
    zube_json_free (&json);
    return rc;
}

//  ---------------------------------------------------------------------
//  Store

oci_image_store_t *
oci_image_store_open (const char *dir, char *err, size_t err_size)
{
    if (sodium_init () < 0) {
        oci_image_fail (err, err_size, "libsodium failed to initialize");
        return NULL;
    }
    if (oci_image_mkdirs (dir) != 0) {
        oci_image_fail (err, err_size, "image store: cannot create %s: %s", dir,
                        strerror (errno));
        return NULL;
    }
    //  libarchive refuses to unpack through a symlink, so the store's own
    //  path must not hold one
    char real[PATH_MAX];
    if (!realpath (dir, real)) {
        oci_image_fail (err, err_size, "image store: %s: %s", dir, strerror (errno));
        return NULL;
    }
    static const char *subdirs[] = {"blobs/sha256", "layers", "tmp", NULL};
    char path[PATH_MAX + 32];
    for (size_t i = 0; subdirs[i]; i++) {
        snprintf (path, sizeof path, "%s/%s", real, subdirs[i]);
        if (oci_image_mkdirs (path) != 0) {
            oci_image_fail (err, err_size, "image store: cannot create %s: %s", path,
                            strerror (errno));
            return NULL;
        }
    }
    snprintf (path, sizeof path, "%s/tmp/.probe", real);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        oci_image_fail (err, err_size, "image store: %s is not writable: %s", real,
                        strerror (errno));
        return NULL;
    }
    close (fd);
    unlink (path);
    oci_image_store_t *self = calloc (1, sizeof *self);
    if (!self || !(self->dir = strdup (real))) {
        free (self);
        oci_image_fail (err, err_size, "out of memory");
        return NULL;
    }
    const char *mode = getenv ("ZUBE_OCI_ROOTFS");
    self->copy_only = mode && strcmp (mode, "copy") == 0;
    //  what a crashed import left behind
    snprintf (path, sizeof path, "%s/tmp", real);
    DIR *d = opendir (path);
    for (struct dirent *e; d && (e = readdir (d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char stale[PATH_MAX * 2];
        snprintf (stale, sizeof stale, "%s/%s", path, e->d_name);
        oci_image_remove_tree (stale);
    }
    if (d)
        closedir (d);
    if (s_refs_load (self, err, err_size) != 0) {
        oci_image_store_close (&self);
        return NULL;
    }
    return self;
}

void
oci_image_store_close (oci_image_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    oci_image_store_t *self = *self_p;
    for (size_t i = 0; i < self->ref_count; i++) {
        free (self->refs[i].name);
        free (self->refs[i].manifest);
    }
    free (self->refs);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Import

static void
s_blob_path (oci_image_store_t *self, const char *digest, char *path, size_t size)
{
    snprintf (path, size, "%s/blobs/sha256/%s", self->dir, s_digest_hex (digest));
}

//  Copies the file from into the store's blobs, verifying it against
//  digest (and size when >= 0). digest NULL: the blob is named by its
//  hash, written into got_digest (72 bytes).
static int
s_blob_import (oci_image_store_t *self, const char *from, const char *digest, int64_t size,
               const char *what, char *got_digest, char *err, size_t err_size)
{
    if (digest && !s_digest_hex (digest))
        return oci_image_fail (err, err_size, "%s: unsupported digest \"%s\" (sha256 only)",
                               what, digest);
    //  A blob already stored is only read and hashed (a preload directory
    //  imported again at every start writes nothing).
    char temp[PATH_MAX], stored[PATH_MAX];
    bool have = false;
    if (digest) {
        s_blob_path (self, digest, stored, sizeof stored);
        have = s_exists (stored);
    }
    snprintf (temp, sizeof temp, "%s/tmp/blob-XXXXXX", self->dir);
    int fd = have ? -1 : mkstemp (temp);
    if (!have && fd < 0)
        return oci_image_fail (err, err_size, "cannot write %s: %s", temp, strerror (errno));
    if (fd >= 0)
        close (fd);
    if (have)
        temp[0] = '\0';
    char hex[65];
    uint64_t got_size;
    if (oci_image_copy_hashed (from, have ? NULL : temp, hex, &got_size, err, err_size) != 0) {
        unlink (temp);
        return -1;
    }
    if (digest && strcmp (hex, s_digest_hex (digest)) != 0) {
        unlink (temp);
        return oci_image_fail (err, err_size, "%s %s digest mismatch: got sha256:%s", what,
                               digest, hex);
    }
    if (size >= 0 && got_size != (uint64_t) size) {
        unlink (temp);
        return oci_image_fail (err, err_size, "%s %s size mismatch: %llu bytes, the descriptor says %lld",
                               what, digest ? digest : "", (unsigned long long) got_size,
                               (long long) size);
    }
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/blobs/sha256/%s", self->dir, hex);
    if (!have && (chmod (temp, 0444) != 0 || rename (temp, path) != 0)) {
        unlink (temp);
        return oci_image_fail (err, err_size, "cannot write %s: %s", path, strerror (errno));
    }
    if (got_digest)
        snprintf (got_digest, 72, "sha256:%s", hex);
    return 0;
}

//  Unpacks a stored layer blob into the cache, unless already there.
static int
s_layer_unpack (oci_image_store_t *self, const char *digest, char *err, size_t err_size)
{
    char path[PATH_MAX], temp[PATH_MAX], blob[PATH_MAX], what[96];
    snprintf (path, sizeof path, "%s/layers/%s", self->dir, s_digest_hex (digest));
    if (s_exists (path))
        return 0;
    snprintf (temp, sizeof temp, "%s/tmp/layer-XXXXXX", self->dir);
    if (!mkdtemp (temp))
        return oci_image_fail (err, err_size, "cannot create %s: %s", temp, strerror (errno));
    chmod (temp, 0755);
    s_blob_path (self, digest, blob, sizeof blob);
    snprintf (what, sizeof what, "layer %s", digest);
    if (oci_image_unpack (blob, temp, OCI_LAYER_OVERLAY, what, err, err_size) != 0) {
        oci_image_remove_tree (temp);
        return -1;
    }
    if (rename (temp, path) != 0) {
        int saved = errno;
        oci_image_remove_tree (temp);
        if (saved == EEXIST || saved == ENOTEMPTY)
            return 0;
        return oci_image_fail (err, err_size, "cannot create %s: %s", path, strerror (saved));
    }
    return 0;
}

//  Imports the layers and config a stored manifest names.
static int
s_manifest_children (oci_image_store_t *self, const char *layout, const zube_json_t *manifest,
                     char *err, size_t err_size)
{
    const zube_json_t *config = zube_json_get (manifest, "config");
    const zube_json_t *layers = s_json_array (manifest, "layers");
    if (!config || config->type != ZUBE_JSON_OBJECT || !layers)
        return oci_image_fail (err, err_size, "manifest has no config or no layers");
    char from[PATH_MAX];
    const char *digest = s_json_string (config, "digest");
    if (!s_digest_hex (digest))
        return oci_image_fail (err, err_size, "config: unsupported digest \"%s\"",
                               digest ? digest : "");
    snprintf (from, sizeof from, "%s/blobs/sha256/%s", layout, s_digest_hex (digest));
    if (s_blob_import (self, from, digest, s_json_int (config, "size"), "config", NULL, err,
                       err_size) != 0)
        return -1;
    //  Each layer's uncompressed sha256 must be the config's diff id, as
    //  containerd checks on unpack (once: a cached layer was checked).
    char path[PATH_MAX];
    s_blob_path (self, digest, path, sizeof path);
    zube_json_t *image_config = s_read_json (path, err, err_size);
    if (!image_config)
        return -1;
    const zube_json_t *diff_ids = s_json_array (zube_json_get (image_config, "rootfs"), "diff_ids");
    int rc = 0;
    if (!diff_ids || diff_ids->count != layers->count)
        rc = oci_image_fail (err, err_size,
                             "config %s: rootfs.diff_ids has %zu entries for %zu layers", digest,
                             diff_ids ? diff_ids->count : 0, layers->count);
    for (size_t i = 0; rc == 0 && i < layers->count; i++) {
        const zube_json_t *layer = layers->items[i];
        const char *media = s_json_string (layer, "mediaType");
        digest = s_json_string (layer, "digest");
        if (!s_in (media, s_media_layer)) {
            rc = oci_image_fail (err, err_size, "layer %s: unsupported media type \"%s\"",
                                 digest ? digest : "", media ? media : "");
            break;
        }
        if (!s_digest_hex (digest)) {
            rc = oci_image_fail (err, err_size, "layer: unsupported digest \"%s\"",
                                 digest ? digest : "");
            break;
        }
        snprintf (from, sizeof from, "%s/blobs/sha256/%s", layout, s_digest_hex (digest));
        if (s_blob_import (self, from, digest, s_json_int (layer, "size"), "layer", NULL, err,
                           err_size) != 0) {
            rc = -1;
            break;
        }
        snprintf (path, sizeof path, "%s/layers/%s", self->dir, s_digest_hex (digest));
        const zube_json_t *diff_id = diff_ids->items[i];
        char hex[65];
        if (!s_exists (path)) {
            s_blob_path (self, digest, path, sizeof path);
            if (oci_image_diff_id (path, hex, err, err_size) != 0)
                rc = -1;
            else if (diff_id->type != ZUBE_JSON_STRING || !s_digest_hex (diff_id->text)
                     || strcmp (hex, s_digest_hex (diff_id->text)) != 0)
                rc = oci_image_fail (err, err_size,
                                     "layer %s diff_id mismatch: its content is sha256:%s, the "
                                     "config says %s",
                                     digest, hex,
                                     diff_id->type == ZUBE_JSON_STRING ? diff_id->text : "?");
        }
        if (rc == 0)
            rc = s_layer_unpack (self, digest, err, err_size);
    }
    zube_json_free (&image_config);
    return rc;
}

//  The platform an index entry is for matches this machine (or says none).
static bool
s_platform_ok (const zube_json_t *descriptor)
{
    const zube_json_t *platform = zube_json_get (descriptor, "platform");
    if (!platform)
        return true;
#if defined(__x86_64__)
    const char *arch = "amd64";
#elif defined(__aarch64__)
    const char *arch = "arm64";
#else
    const char *arch = "";
#endif
    const char *os = s_json_string (platform, "os");
    const char *architecture = s_json_string (platform, "architecture");
    return (!os || strcmp (os, "linux") == 0) && (!architecture || strcmp (architecture, arch) == 0);
}

//  Imports a descriptor of an OCI layout (a manifest, or an index whose
//  entry for this platform is imported); the manifest's digest into
//  manifest_digest (72 bytes).
static int
s_descriptor_import (oci_image_store_t *self, const char *layout, const zube_json_t *descriptor,
                     int depth, char *manifest_digest, char *err, size_t err_size)
{
    const char *media = s_json_string (descriptor, "mediaType");
    const char *digest = s_json_string (descriptor, "digest");
    if (!s_digest_hex (digest))
        return oci_image_fail (err, err_size, "manifest: unsupported digest \"%s\"",
                               digest ? digest : "");
    bool index = s_in (media, s_media_index);
    if (!index && !s_in (media, s_media_manifest))
        return oci_image_fail (err, err_size, "%s: unsupported media type \"%s\"", digest,
                               media ? media : "");
    if (depth > 4)
        return oci_image_fail (err, err_size, "%s: indexes nested too deep", digest);
    char from[PATH_MAX];
    snprintf (from, sizeof from, "%s/blobs/sha256/%s", layout, s_digest_hex (digest));
    if (s_blob_import (self, from, digest, s_json_int (descriptor, "size"),
                       index ? "index" : "manifest", NULL, err, err_size) != 0)
        return -1;
    char path[PATH_MAX];
    s_blob_path (self, digest, path, sizeof path);
    zube_json_t *json = s_read_json (path, err, err_size);
    if (!json)
        return -1;
    int rc = 0;
    if (index) {
        const zube_json_t *manifests = s_json_array (json, "manifests");
        const zube_json_t *chosen = NULL;
        for (size_t i = 0; manifests && !chosen && i < manifests->count; i++)
            if (s_platform_ok (manifests->items[i]))
                chosen = manifests->items[i];
        rc = chosen ? s_descriptor_import (self, layout, chosen, depth + 1, manifest_digest, err,
                                           err_size)
                    : oci_image_fail (err, err_size,
                                      "index %s: no manifest for this platform (linux)", digest);
    }
    else {
        rc = s_manifest_children (self, layout, json, err, err_size);
        if (rc == 0)
            snprintf (manifest_digest, 72, "%s", digest);
    }
    zube_json_free (&json);
    return rc;
}

//  Adds name (normalized) -> manifest; the first one into ref.
static int
s_name_add (oci_image_store_t *self, const char *name, const char *manifest, char *ref,
            size_t ref_size, bool *named_p, char *err, size_t err_size)
{
    char normal[512];
    if (oci_image_normalize_ref (name, normal, sizeof normal, err, err_size) != 0)
        return -1;
    if (strchr (normal, '@'))
        return oci_image_fail (err, err_size, "image name \"%s\": a digest is not a name", name);
    if (s_ref_set (self, normal, manifest) != 0)
        return oci_image_fail (err, err_size, "out of memory");
    if (!*named_p && ref && ref_size)
        snprintf (ref, ref_size, "%s", normal);
    *named_p = true;
    return 0;
}

static int
s_import_oci_layout (oci_image_store_t *self, const char *layout, char *ref, size_t ref_size,
                     bool *named_p, char *err, size_t err_size)
{
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/oci-layout", layout);
    zube_json_t *marker = s_read_json (path, err, err_size);
    if (!marker)
        return -1;
    const char *version = s_json_string (marker, "imageLayoutVersion");
    int rc = version ? 0
                     : oci_image_fail (err, err_size, "%s: no imageLayoutVersion: not an OCI layout",
                                       path);
    zube_json_free (&marker);
    if (rc != 0)
        return -1;
    snprintf (path, sizeof path, "%s/index.json", layout);
    zube_json_t *index = s_read_json (path, err, err_size);
    if (!index)
        return -1;
    const zube_json_t *manifests = s_json_array (index, "manifests");
    if (!manifests || manifests->count == 0)
        rc = oci_image_fail (err, err_size, "%s: no manifests", path);
    for (size_t i = 0; rc == 0 && i < manifests->count; i++) {
        const zube_json_t *descriptor = manifests->items[i];
        if (!s_platform_ok (descriptor))
            continue;
        char manifest[72];
        rc = s_descriptor_import (self, layout, descriptor, 0, manifest, err, err_size);
        const zube_json_t *notes = zube_json_get (descriptor, "annotations");
        //  containerd writes the full name apart from the OCI ref.name,
        //  which often holds the tag only
        const char *name = s_json_string (notes, "io.containerd.image.name");
        if (!name)
            name = s_json_string (notes, "org.opencontainers.image.ref.name");
        if (rc == 0 && name)
            rc = s_name_add (self, name, manifest, ref, ref_size, named_p, err, err_size);
    }
    zube_json_free (&index);
    return rc;
}

//  A docker-archive (docker save): manifest.json lists each image's
//  config file, layer files and RepoTags. Blobs are not always named by
//  digest there, so a layer is verified against the config's diff_ids
//  (its uncompressed sha256), and an OCI manifest is written for it.
static int
s_import_docker (oci_image_store_t *self, const char *archive, char *ref, size_t ref_size,
                 bool *named_p, char *err, size_t err_size)
{
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/manifest.json", archive);
    zube_json_t *list = s_read_json (path, err, err_size);
    if (!list)
        return -1;
    int rc = 0;
    if (list->type != ZUBE_JSON_ARRAY || list->count == 0)
        rc = oci_image_fail (err, err_size, "%s: not a list of images", path);
    for (size_t i = 0; rc == 0 && i < list->count; i++) {
        const zube_json_t *image = list->items[i];
        const char *config_file = s_json_string (image, "Config");
        const zube_json_t *layers = s_json_array (image, "Layers");
        const zube_json_t *tags = s_json_array (image, "RepoTags");
        if (!config_file || !layers || strstr (config_file, "..")) {
            rc = oci_image_fail (err, err_size, "%s: image %zu has no Config or no Layers", path,
                                 i);
            break;
        }
        char from[PATH_MAX * 2], config_digest[72];
        snprintf (from, sizeof from, "%s/%s", archive, config_file);
        //  the config's file name is its digest ("<hex>.json" or
        //  "blobs/sha256/<hex>")
        const char *base = strrchr (config_file, '/');
        base = base ? base + 1 : config_file;
        char named[80] = "";
        if (strlen (base) >= 64 && (base[64] == '\0' || strcmp (base + 64, ".json") == 0))
            snprintf (named, sizeof named, "sha256:%.64s", base);
        if (s_blob_import (self, from, s_digest_hex (named) ? named : NULL, -1, "config",
                           config_digest, err, err_size) != 0) {
            rc = -1;
            break;
        }
        char blob[PATH_MAX];
        s_blob_path (self, config_digest, blob, sizeof blob);
        zube_json_t *config = s_read_json (blob, err, err_size);
        const zube_json_t *diff_ids = config ? s_json_array (zube_json_get (config, "rootfs"), "diff_ids") : NULL;
        if (config && (!diff_ids || diff_ids->count != layers->count))
            rc = oci_image_fail (err, err_size, "config %s: rootfs.diff_ids does not match the %zu layers",
                                 config_digest, layers->count);
        else if (!config)
            rc = -1;
        uint64_t config_size = 0;
        struct stat st;
        if (stat (blob, &st) == 0)
            config_size = (uint64_t) st.st_size;
        size_t cap = 512 + layers->count * 256;
        char *manifest = rc == 0 ? malloc (cap) : NULL;
        size_t used = 0;
        if (rc == 0 && !manifest)
            rc = oci_image_fail (err, err_size, "out of memory");
        if (rc == 0)
            used = (size_t) snprintf (manifest, cap,
                                      "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":"
                                      "{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                                      "\"digest\":\"%s\",\"size\":%llu},\"layers\":[",
                                      s_media_manifest[0], config_digest,
                                      (unsigned long long) config_size);
        for (size_t l = 0; rc == 0 && l < layers->count; l++) {
            const zube_json_t *file = layers->items[l];
            const zube_json_t *diff_id = diff_ids->items[l];
            if (file->type != ZUBE_JSON_STRING || strstr (file->text, "..")
                || diff_id->type != ZUBE_JSON_STRING || !s_digest_hex (diff_id->text)) {
                rc = oci_image_fail (err, err_size, "%s: image %zu: layer %zu is invalid", path, i, l);
                break;
            }
            snprintf (from, sizeof from, "%s/%s", archive, file->text);
            const char *lbase = strstr (file->text, "blobs/sha256/");
            char lnamed[80] = "";
            if (lbase)
                snprintf (lnamed, sizeof lnamed, "sha256:%s", lbase + 13);
            char digest[72], hex[65];
            if (s_blob_import (self, from, s_digest_hex (lnamed) ? lnamed : NULL, -1, "layer",
                               digest, err, err_size) != 0) {
                rc = -1;
                break;
            }
            s_blob_path (self, digest, blob, sizeof blob);
            if (oci_image_diff_id (blob, hex, err, err_size) != 0) {
                rc = -1;
                break;
            }
            if (strcmp (hex, s_digest_hex (diff_id->text)) != 0) {
                rc = oci_image_fail (err, err_size,
                                     "layer %s digest mismatch: got sha256:%s, the config's diff_id is %s",
                                     file->text, hex, diff_id->text);
                break;
            }
            if (s_layer_unpack (self, digest, err, err_size) != 0) {
                rc = -1;
                break;
            }
            bool plain = strcmp (hex, s_digest_hex (digest)) == 0;
            stat (blob, &st);
            used += (size_t) snprintf (manifest + used, cap - used,
                                       "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%llu}",
                                       l ? "," : "", s_media_layer[plain ? 0 : 1], digest,
                                       (unsigned long long) st.st_size);
        }
        zube_json_free (&config);
        char manifest_digest[72];
        if (rc == 0) {
            used += (size_t) snprintf (manifest + used, cap - used, "]}");
            snprintf (path, sizeof path, "%s/tmp/manifest-XXXXXX", self->dir);
            int fd = mkstemp (path);
            bool ok = fd >= 0 && write (fd, manifest, used) == (ssize_t) used;
            if (fd >= 0)
                close (fd);
            rc = ok ? s_blob_import (self, path, NULL, -1, "manifest", manifest_digest, err,
                                     err_size)
                    : oci_image_fail (err, err_size, "cannot write %s: %s", path, strerror (errno));
            unlink (path);
            snprintf (path, sizeof path, "%s/manifest.json", archive);
        }
        free (manifest);
        size_t tag_count = tags ? tags->count : 0;
        for (size_t t = 0; rc == 0 && t < tag_count; t++)
            rc = tags->items[t]->type == ZUBE_JSON_STRING
                     ? s_name_add (self, tags->items[t]->text, manifest_digest, ref, ref_size,
                                   named_p, err, err_size)
                     : oci_image_fail (err, err_size, "%s: a RepoTag is not a string", path);
    }
    zube_json_free (&list);
    return rc;
}

static int
s_import_dir (oci_image_store_t *self, const char *dir, char *ref, size_t ref_size, char *err,
              size_t err_size)
{
    char path[PATH_MAX];
    bool named = false;
    int rc;
    snprintf (path, sizeof path, "%s/manifest.json", dir);
    //  docker 25 writes both; manifest.json has the full names
    if (s_exists (path))
        rc = s_import_docker (self, dir, ref, ref_size, &named, err, err_size);
    else {
        snprintf (path, sizeof path, "%s/oci-layout", dir);
        if (!s_exists (path))
            return oci_image_fail (err, err_size,
                                   "%s: neither an OCI image layout (no oci-layout) nor a "
                                   "docker-archive (no manifest.json)",
                                   dir);
        rc = s_import_oci_layout (self, dir, ref, ref_size, &named, err, err_size);
    }
    if (rc == 0 && !named)
        rc = oci_image_fail (err, err_size,
                             "%s: the image has no name (org.opencontainers.image.ref.name "
                             "annotation or RepoTags)",
                             dir);
    return rc;
}

int
oci_image_import (oci_image_store_t *self, const char *path, char *ref, size_t ref_size,
                  char *err, size_t err_size)
{
    if (ref && ref_size)
        ref[0] = '\0';
    struct stat st;
    if (stat (path, &st) != 0)
        return oci_image_fail (err, err_size, "cannot import %s: %s", path, strerror (errno));
    int rc;
    if (S_ISDIR (st.st_mode))
        rc = s_import_dir (self, path, ref, ref_size, err, err_size);
    else {
        char staging[PATH_MAX];
        snprintf (staging, sizeof staging, "%s/tmp/import-XXXXXX", self->dir);
        if (!mkdtemp (staging))
            return oci_image_fail (err, err_size, "cannot create %s: %s", staging,
                                   strerror (errno));
        char what[PATH_MAX + 16];
        snprintf (what, sizeof what, "image archive %s", path);
        rc = oci_image_unpack (path, staging, OCI_LAYER_PLAIN, what, err, err_size);
        if (rc == 0)
            rc = s_import_dir (self, staging, ref, ref_size, err, err_size);
        oci_image_remove_tree (staging);
    }
    if (rc == 0)
        rc = s_refs_save (self, err, err_size);
    else {
        //  names added before the failure stay out of the saved refs
        char ignored[256];
        for (size_t i = 0; i < self->ref_count; i++) {
            free (self->refs[i].name);
            free (self->refs[i].manifest);
        }
        self->ref_count = 0;
        s_refs_load (self, ignored, sizeof ignored);
    }
    return rc;
}

//  ---------------------------------------------------------------------
//  Lookup

static zube_json_t *
s_blob_json (oci_image_store_t *self, const char *digest, char *err, size_t err_size)
{
    char path[PATH_MAX];
    if (!s_digest_hex (digest)) {
        oci_image_fail (err, err_size, "invalid digest \"%s\"", digest ? digest : "");
        return NULL;
    }
    s_blob_path (self, digest, path, sizeof path);
    return s_read_json (path, err, err_size);
}

//  The length of a normalized name without its tag ("a/b:1" -> 3).
static size_t
s_repo_length (const char *name)
{
    const char *slash = strrchr (name, '/');
    const char *colon = strrchr (slash ? slash : name, ':');
    return colon ? (size_t) (colon - name) : strlen (name);
}

//  The manifest digest ref names, or NULL. ref may be a name (any form),
//  name@sha256:<manifest digest>, or an image id (sha256:<config digest>,
//  as container statuses report it).
static const char *
s_resolve (oci_image_store_t *self, const char *ref)
{
    if (s_digest_hex (ref)) {
        for (size_t i = 0; i < self->ref_count; i++) {
            char why[256];
            zube_json_t *manifest = s_blob_json (self, self->refs[i].manifest, why, sizeof why);
            const char *config = s_json_string (zube_json_get (manifest, "config"), "digest");
            bool match = config && strcmp (config, ref) == 0;
            zube_json_free (&manifest);
            if (match)
                return self->refs[i].manifest;
        }
        return NULL;
    }
    char normal[512], why[256];
    if (oci_image_normalize_ref (ref, normal, sizeof normal, why, sizeof why) != 0)
        return NULL;
    char *at = strchr (normal, '@');
    if (!at) {
        s_ref_t *found = s_ref_find (self, normal);
        return found ? found->manifest : NULL;
    }
    //  repository@digest: a name of that repository with that manifest
    *at = '\0';
    size_t repo = s_repo_length (normal);
    for (size_t i = 0; i < self->ref_count; i++)
        if (strcmp (self->refs[i].manifest, at + 1) == 0
            && s_repo_length (self->refs[i].name) == repo
            && strncmp (self->refs[i].name, normal, repo) == 0)
            return self->refs[i].manifest;
    return NULL;
}

bool
oci_image_exists (oci_image_store_t *self, const char *ref, char *id, size_t id_size)
{
    const char *manifest_digest = s_resolve (self, ref);
    if (!manifest_digest)
        return false;
    if (id && id_size) {
        char why[256];
        zube_json_t *manifest = s_blob_json (self, manifest_digest, why, sizeof why);
        const char *config = s_json_string (zube_json_get (manifest, "config"), "digest");
        snprintf (id, id_size, "%s", config ? config : "");
        zube_json_free (&manifest);
    }
    return true;
}

//  ---------------------------------------------------------------------
//  Rootfs

static char **
s_strings (const zube_json_t *array, size_t *count_p)
{
    *count_p = 0;
    if (!array || array->type != ZUBE_JSON_ARRAY || array->count == 0)
        return NULL;
    char **strings = calloc (array->count + 1, sizeof *strings);
    for (size_t i = 0; strings && i < array->count; i++)
        if (array->items[i]->type == ZUBE_JSON_STRING)
            strings[(*count_p)++] = strdup (array->items[i]->text);
    return strings;
}

static char *
s_strdup_or_null (const char *text)
{
    return text && *text ? strdup (text) : NULL;
}

void
oci_image_config_free (oci_image_config_t *config)
{
    if (!config)
        return;
    for (size_t i = 0; i < config->entrypoint_count; i++)
        free (config->entrypoint[i]);
    for (size_t i = 0; i < config->cmd_count; i++)
        free (config->cmd[i]);
    for (size_t i = 0; i < config->env_count; i++)
        free (config->env[i]);
    free (config->entrypoint);
    free (config->cmd);
    free (config->env);
    free (config->working_dir);
    free (config->user);
    free (config->stop_signal);
    memset (config, 0, sizeof *config);
}

static void
s_config_fill (const zube_json_t *image_config, oci_image_config_t *config)
{
    const zube_json_t *c = zube_json_get (image_config, "config");
    memset (config, 0, sizeof *config);
    if (!c || c->type != ZUBE_JSON_OBJECT)
        return;
    config->entrypoint = s_strings (zube_json_get (c, "Entrypoint"), &config->entrypoint_count);
    config->cmd = s_strings (zube_json_get (c, "Cmd"), &config->cmd_count);
    config->env = s_strings (zube_json_get (c, "Env"), &config->env_count);
    config->working_dir = s_strdup_or_null (s_json_string (c, "WorkingDir"));
    config->user = s_strdup_or_null (s_json_string (c, "User"));
    config->stop_signal = s_strdup_or_null (s_json_string (c, "StopSignal"));
}

//  Mounts overlayfs with the layers (top first) as lower dirs.
static int
s_mount_overlay (oci_image_store_t *self, const zube_json_t *layers, const char *container_dir,
                 const char *rootfs)
{
    //  "," and ":" separate mount options and lower dirs
    if (self->copy_only || geteuid () != 0 || strpbrk (self->dir, ",:")
        || strpbrk (container_dir, ",:"))
        return -1;
    char upper[PATH_MAX + 16], work[PATH_MAX + 16];
    snprintf (upper, sizeof upper, "%s/upper", container_dir);
    snprintf (work, sizeof work, "%s/work", container_dir);
    if (mkdir (upper, 0755) != 0 && errno != EEXIST)
        return -1;
    if (mkdir (work, 0700) != 0 && errno != EEXIST)
        return -1;
    //  the mount data is one page at most
    char data[4096];
    size_t used = (size_t) snprintf (data, sizeof data, "lowerdir=");
    for (size_t i = layers->count; i-- > 0;) {
        const char *hex = s_digest_hex (s_json_string (layers->items[i], "digest"));
        used += (size_t) snprintf (data + used, used < sizeof data ? sizeof data - used : 0,
                                   "%s%s/layers/%s", i + 1 < layers->count ? ":" : "",
                                   self->dir, hex ? hex : "");
    }
    used += (size_t) snprintf (data + used, used < sizeof data ? sizeof data - used : 0,
                               ",upperdir=%s,workdir=%s", upper, work);
    if (used >= sizeof data)
        return -1;
    //  a single layer needs an upper dir too (overlayfs wants two layers)
    return mount ("overlay", rootfs, "overlay", 0, data);
}

int
oci_image_prepare_rootfs (oci_image_store_t *self, const char *ref,
                          const char *container_dir, char *rootfs, size_t rootfs_size,
                          oci_image_config_t *config, char *err, size_t err_size)
{
    if (config)
        memset (config, 0, sizeof *config);
    const char *manifest_digest = s_resolve (self, ref);
    if (!manifest_digest)
        return oci_image_fail (err, err_size, "image \"%s\" not found in the node's image store",
                               ref);
    zube_json_t *manifest = s_blob_json (self, manifest_digest, err, err_size);
    if (!manifest)
        return -1;
    const zube_json_t *layers = s_json_array (manifest, "layers");
    const char *config_digest = s_json_string (zube_json_get (manifest, "config"), "digest");
    zube_json_t *image_config = s_blob_json (self, config_digest, err, err_size);
    int rc = image_config && layers ? 0 : -1;
    if (rc == 0 && !layers)
        rc = oci_image_fail (err, err_size, "manifest %s has no layers", manifest_digest);
    char path[PATH_MAX], real[PATH_MAX];
    snprintf (path, sizeof path, "%s/rootfs", container_dir);
    if (rc == 0 && (oci_image_mkdirs (container_dir) != 0 || (mkdir (path, 0755) != 0 && errno != EEXIST)))
        rc = oci_image_fail (err, err_size, "cannot create %s: %s", path, strerror (errno));
    //  overlayfs keeps the upper and work paths as given: make them absolute
    if (rc == 0 && !realpath (container_dir, real))
        rc = oci_image_fail (err, err_size, "%s: %s", container_dir, strerror (errno));
    if (rc == 0) {
        container_dir = real;
        if (snprintf (path, sizeof path, "%s/rootfs", real) >= (int) sizeof path)
            rc = oci_image_fail (err, err_size, "%s: path too long", real);
    }
    if (rc == 0 && s_mount_overlay (self, layers, container_dir, path) == 0)
        self->last_mode = "overlay";
    else if (rc == 0) {
        //  the copy: every layer applied in order onto rootfs
        char upper[PATH_MAX + 16];
        snprintf (upper, sizeof upper, "%s/upper", container_dir);
        oci_image_remove_tree (upper);
        snprintf (upper, sizeof upper, "%s/work", container_dir);
        oci_image_remove_tree (upper);
        for (size_t i = 0; rc == 0 && i < layers->count; i++) {
            const char *digest = s_json_string (layers->items[i], "digest");
            char blob[PATH_MAX], what[96];
            if (!s_digest_hex (digest)) {
                rc = oci_image_fail (err, err_size, "manifest %s: invalid layer digest",
                                     manifest_digest);
                break;
            }
            s_blob_path (self, digest, blob, sizeof blob);
            snprintf (what, sizeof what, "layer %s", digest);
            rc = oci_image_unpack (blob, path, OCI_LAYER_FLATTEN, what, err, err_size);
        }
        self->last_mode = "copy";
        if (rc != 0)
            oci_image_release_rootfs (self, container_dir);
    }
    if (rc == 0) {
        snprintf (rootfs, rootfs_size, "%s", path);
        if (config)
            s_config_fill (image_config, config);
    }
    zube_json_free (&manifest);
    zube_json_free (&image_config);
    return rc;
}

int
oci_image_release_rootfs (oci_image_store_t *self, const char *container_dir)
{
    static const char *parts[] = {"rootfs", "upper", "work", NULL};
    char path[PATH_MAX];
    int rc = 0;
    snprintf (path, sizeof path, "%s/rootfs", container_dir);
    //  a mount may be stacked (a failed earlier release): unmount all
    while (umount2 (path, MNT_DETACH) == 0)
        ;
    for (size_t i = 0; parts[i]; i++) {
        snprintf (path, sizeof path, "%s/%s", container_dir, parts[i]);
        if (oci_image_remove_tree (path) != 0)
            rc = -1;
    }
    return rc;
}

const char *
oci_image_last_rootfs_mode (oci_image_store_t *self)
{
    return self->last_mode ? self->last_mode : "";
}

//  ---------------------------------------------------------------------
//  Listing, preload, removal

int
oci_image_list (oci_image_store_t *self, oci_image_fn *fn, void *arg)
{
    //  refs are sorted by name; an image is listed once, at its first name
    const char **names = calloc (self->ref_count + 1, sizeof *names);
    if (!names)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < self->ref_count; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp (self->refs[j].manifest, self->refs[i].manifest) == 0;
        if (seen)
            continue;
        size_t count = 0;
        for (size_t j = i; j < self->ref_count; j++)
            if (strcmp (self->refs[j].manifest, self->refs[i].manifest) == 0)
                names[count++] = self->refs[j].name;
        char why[256];
        zube_json_t *manifest = s_blob_json (self, self->refs[i].manifest, why, sizeof why);
        const zube_json_t *config = zube_json_get (manifest, "config");
        const zube_json_t *layers = s_json_array (manifest, "layers");
        uint64_t size = config ? (uint64_t) s_json_int (config, "size") : 0;
        for (size_t l = 0; layers && l < layers->count; l++) {
            int64_t one = s_json_int (layers->items[l], "size");
            size += one > 0 ? (uint64_t) one : 0;
        }
        const char *id = s_json_string (config, "digest");
        oci_image_info_t info = {
            .names = names, .names_count = count, .id = id ? id : "", .size = size};
        if (manifest && fn (arg, &info) != 0)
            rc = 1;
        zube_json_free (&manifest);
    }
    free (names);
    return rc < 0 ? -1 : 0;
}

static int
s_compare_names (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

int
oci_image_preload_dir (oci_image_store_t *self, const char *dir, char *err, size_t err_size)
{
    DIR *d = opendir (dir);
    if (!d)
        return oci_image_fail (err, err_size, "image preload directory %s: %s", dir,
                               strerror (errno));
    char **names = NULL;
    size_t count = 0;
    for (struct dirent *e; (e = readdir (d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char **more = realloc (names, (count + 1) * sizeof *names);
        if (!more)
            break;
        names = more;
        if ((names[count] = strdup (e->d_name)) != NULL)
            count++;
    }
    closedir (d);
    if (count)
        qsort (names, count, sizeof *names, s_compare_names);
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        char path[PATH_MAX], why[512];
        snprintf (path, sizeof path, "%s/%s", dir, names[i]);
        if (oci_image_import (self, path, NULL, 0, why, sizeof why) != 0) {
            oci_image_fail (err, err_size, "%s: %s", path, why);
            failed++;
        }
        free (names[i]);
    }
    free (names);
    return failed;
}


//  The digests (hex) the remaining refs use: manifests, configs, layers.
typedef struct {
    char (*hex)[65];
    size_t count;
    size_t cap;
} s_keep_t;

static void
s_keep_add (s_keep_t *keep, const char *digest)
{
    const char *hex = s_digest_hex (digest);
    if (!hex)
        return;
    if (keep->count == keep->cap) {
        size_t cap = keep->cap ? keep->cap * 2 : 32;
        char (*grown)[65] = realloc (keep->hex, cap * sizeof *grown);
        if (!grown)
            return;
        keep->hex = grown;
        keep->cap = cap;
    }
    memcpy (keep->hex[keep->count++], hex, 65);
}

static bool
s_keep_has (const s_keep_t *keep, const char *hex)
{
    for (size_t i = 0; i < keep->count; i++)
        if (strcmp (keep->hex[i], hex) == 0)
            return true;
    return false;
}

//  Removes the entries of dir (blobs/sha256 or layers) not in keep.
static void
s_collect (oci_image_store_t *self, const char *subdir, const s_keep_t *keep)
{
    char dir[PATH_MAX];
    snprintf (dir, sizeof dir, "%s/%s", self->dir, subdir);
    DIR *d = opendir (dir);
    for (struct dirent *e; d && (e = readdir (d)) != NULL;) {
        if (e->d_name[0] == '.' || s_keep_has (keep, e->d_name))
            continue;
        char path[PATH_MAX + 256];
        snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
        oci_image_remove_tree (path);
    }
    if (d)
        closedir (d);
}

int
oci_image_remove (oci_image_store_t *self, const char *ref, char *err, size_t err_size)
{
    char normal[512];
    if (oci_image_normalize_ref (ref, normal, sizeof normal, err, err_size) != 0)
        return -1;
    s_ref_t *found = s_ref_find (self, normal);
    if (!found)
        return oci_image_fail (err, err_size, "image \"%s\" not found in the node's image store",
                               ref);
    size_t at = (size_t) (found - self->refs);
    free (found->name);
    free (found->manifest);
    memmove (&self->refs[at], &self->refs[at + 1], (self->ref_count - at - 1) * sizeof *found);
    self->ref_count--;
    if (s_refs_save (self, err, err_size) != 0)
        return -1;
    //  what no remaining image uses goes: blobs and unpacked layers
    s_keep_t keep = {0};
    for (size_t i = 0; i < self->ref_count; i++) {
        char why[256];
        zube_json_t *manifest = s_blob_json (self, self->refs[i].manifest, why, sizeof why);
        if (!manifest) {
            //  unreadable: keep everything rather than guess
            free (keep.hex);
            return 0;
        }
        s_keep_add (&keep, self->refs[i].manifest);
        s_keep_add (&keep, s_json_string (zube_json_get (manifest, "config"), "digest"));
        const zube_json_t *layers = s_json_array (manifest, "layers");
        for (size_t l = 0; layers && l < layers->count; l++)
            s_keep_add (&keep, s_json_string (layers->items[l], "digest"));
        zube_json_free (&manifest);
    }
    s_collect (self, "blobs/sha256", &keep);
    s_collect (self, "layers", &keep);
    free (keep.hex);
    return 0;
}
