/*  test_oci_image - the oci runtime's image store (plugins/runtime/oci/
    oci_image.c): imports of the test image made by
    scripts/make-test-image.sh (OCI layout, its tar, docker-archive),
    digest verification, whiteouts and opaque directories of a two-layer
    image built here, path traversal in layers, rootfs preparation and
    release (overlay as root, the copy always), ref normalization. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>
#include <sys/mount.h>
#include <sys/xattr.h>

#include "../zube_test.h"
#include "../zube_testproc.h"
#include "oci_image.h"

static char *s_dir;            //  this run's temp dir
static char s_layout[600];     //  the test image as an OCI layout dir
static char s_oci_tar[600];    //  ... as a tar of that layout
static char s_docker_tar[600]; //  ... as a docker-archive
static bool s_root;

static void
s_path (char *out, size_t size, const char *name)
{
    snprintf (out, size, "%s/%s", s_dir, name);
}

static bool
s_exists (const char *path)
{
    struct stat st;
    return lstat (path, &st) == 0;
}

static bool
s_mounted_under (const char *dir)
{
    FILE *file = fopen ("/proc/self/mountinfo", "r");
    char line[4096];
    bool found = false;
    while (file && fgets (line, sizeof line, file))
        if (strstr (line, dir))
            found = true;
    if (file)
        fclose (file);
    return found;
}

static oci_image_store_t *
s_store (const char *name)
{
    char dir[600], err[512];
    s_path (dir, sizeof dir, name);
    oci_image_store_t *store = oci_image_store_open (dir, err, sizeof err);
    ZT_ASSERT_MSG (store, "open %s: %s", dir, err);
    return store;
}

static void
s_file_sha (const char *path, char *digest)
{
    FILE *file = fopen (path, "rb");
    ZT_ASSERT (file);
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    unsigned char buffer[65536], hash[32];
    size_t got;
    while ((got = fread (buffer, 1, sizeof buffer, file)) > 0)
        crypto_hash_sha256_update (&state, buffer, got);
    fclose (file);
    crypto_hash_sha256_final (&state, hash);
    strcpy (digest, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf (digest + 7 + 2 * i, "%02x", hash[i]);
}

//  ---------------------------------------------------------------------
//  Building images in the test

typedef struct {
    const char *path;
    char type;   //  'f' file, 'd' dir, 'l' symlink, 'h' hard link
    const char *data;   //  file content or link target
} s_entry_t;

//  Layers the test builds are gzip, or zstd when this is set.
static bool s_zstd;
//  s_make_layout writes a wrong diff id for its first layer.
static bool s_bad_diff_id;

static void
s_write_tar (const char *path, const s_entry_t *entries)
{
    struct archive *writer = archive_write_new ();
    archive_write_set_format_pax_restricted (writer);
    if (s_zstd)
        archive_write_add_filter_zstd (writer);
    else
        archive_write_add_filter_gzip (writer);
    ZT_ASSERT (archive_write_open_filename (writer, path) == ARCHIVE_OK);
    for (const s_entry_t *e = entries; e->path; e++) {
        struct archive_entry *entry = archive_entry_new ();
        archive_entry_set_pathname (entry, e->path);
        archive_entry_set_mtime (entry, 0, 0);
        if (e->type == 'd') {
            archive_entry_set_filetype (entry, AE_IFDIR);
            archive_entry_set_perm (entry, 0755);
        }
        else if (e->type == 'l') {
            archive_entry_set_filetype (entry, AE_IFLNK);
            archive_entry_set_symlink (entry, e->data);
            archive_entry_set_perm (entry, 0777);
        }
        else if (e->type == 'h') {
            archive_entry_set_filetype (entry, AE_IFREG);
            archive_entry_set_hardlink (entry, e->data);
            archive_entry_set_perm (entry, 0644);
        }
        else {
            archive_entry_set_filetype (entry, AE_IFREG);
            archive_entry_set_perm (entry, 0644);
            archive_entry_set_size (entry, e->data ? (la_int64_t) strlen (e->data) : 0);
        }
        ZT_ASSERT (archive_write_header (writer, entry) == ARCHIVE_OK);
        if (e->type == 'f' && e->data)
            archive_write_data (writer, e->data, strlen (e->data));
        archive_entry_free (entry);
    }
    archive_write_close (writer);
    archive_write_free (writer);
}

//  Moves file into layout's blobs under its digest; digest and size out.
static void
s_blob (const char *layout, const char *file, char *digest, long *size)
{
    struct stat st;
    ZT_ASSERT (stat (file, &st) == 0);
    *size = (long) st.st_size;
    s_file_sha (file, digest);
    char path[1200];
    snprintf (path, sizeof path, "%s/blobs/sha256/%s", layout, digest + 7);
    ZT_ASSERT (rename (file, path) == 0);
}

static void
s_write_text (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    ZT_ASSERT (file);
    fputs (text, file);
    fclose (file);
}

//  An OCI layout named name (a dir under the run's dir) whose layers are
//  the given entry lists, in order.
static void
s_make_layout (const char *name, const char *ref, const s_entry_t *const *layers,
               size_t layer_count, char *layout, size_t layout_size)
{
    s_path (layout, layout_size, name);
    char path[1200], digest[80], layers_json[4096] = "", diff_ids[4096] = "";
    snprintf (path, sizeof path, "mkdir -p %s/blobs/sha256", layout);
    ZT_ASSERT (system (path) == 0);
    for (size_t i = 0; i < layer_count; i++) {
        snprintf (path, sizeof path, "%s/layer%zu.tar.gz", s_dir, i);
        s_write_tar (path, layers[i]);
        //  the diff id: the sha256 of the uncompressed tar
        char cmd[1400], plain[1200];
        snprintf (plain, sizeof plain, "%s/layer%zu.tar", s_dir, i);
        snprintf (cmd, sizeof cmd, "%s -dc %s > %s", s_zstd ? "zstd -q" : "gzip", path, plain);
        ZT_ASSERT (system (cmd) == 0);
        s_file_sha (plain, digest);
        unlink (plain);
        if (s_bad_diff_id && i == 0)
            memset (digest + 7, '0', 64);
        snprintf (diff_ids + strlen (diff_ids), sizeof diff_ids - strlen (diff_ids), "%s\"%s\"",
                  i ? "," : "", digest);
        long size;
        s_blob (layout, path, digest, &size);
        snprintf (layers_json + strlen (layers_json), sizeof layers_json - strlen (layers_json),
                  "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+%s\","
                  "\"digest\":\"%s\",\"size\":%ld}",
                  i ? "," : "", s_zstd ? "zstd" : "gzip", digest, size);
    }
    char text[8192];
    snprintf (path, sizeof path, "%s/config", s_dir);
    snprintf (text, sizeof text,
              "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":"
              "[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],\"Env\":[\"A=1\",\"B=2\"],"
              "\"WorkingDir\":\"/w\",\"User\":\"65534\",\"StopSignal\":\"SIGQUIT\"},"
              "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
              diff_ids);
    s_write_text (path, text);
    char config_digest[80];
    long config_size;
    s_blob (layout, path, config_digest, &config_size);
    snprintf (path, sizeof path, "%s/manifest", s_dir);
    snprintf (text, sizeof text,
              "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
              "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
              "\"digest\":\"%s\",\"size\":%ld},\"layers\":[%s]}",
              config_digest, config_size, layers_json);
    s_write_text (path, text);
    long manifest_size;
    s_blob (layout, path, digest, &manifest_size);
    snprintf (path, sizeof path, "%s/oci-layout", layout);
    s_write_text (path, "{\"imageLayoutVersion\":\"1.0.0\"}");
    snprintf (path, sizeof path, "%s/index.json", layout);
    snprintf (text, sizeof text,
              "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
              "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%ld,"
              "\"annotations\":{\"org.opencontainers.image.ref.name\":\"%s\"}}]}",
              digest, manifest_size, ref);
    s_write_text (path, text);
}

//  ---------------------------------------------------------------------
//  Cases

static void
test_ref_normalize (void)
{
    static const char *cases[][2] = {
        {"busybox", "docker.io/library/busybox:latest"},
        {"busybox:1.36", "docker.io/library/busybox:1.36"},
        {"library/busybox", "docker.io/library/busybox:latest"},
        {"docker.io/busybox", "docker.io/library/busybox:latest"},
        {"index.docker.io/foo/bar:2", "docker.io/foo/bar:2"},
        {"foo/bar", "docker.io/foo/bar:latest"},
        {"zube.test/busybox:1", "zube.test/busybox:1"},
        {"localhost/x", "localhost/x:latest"},
        {"localhost:5000/a/b", "localhost:5000/a/b:latest"},
        {"registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"},
        {"busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "docker.io/library/busybox@sha256:"
         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
    };
    char out[512], err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ZT_ASSERT_MSG (oci_image_normalize_ref (cases[i][0], out, sizeof out, err, sizeof err) == 0,
                       "%s: %s", cases[i][0], err);
        ZT_ASSERT_STR_EQ (out, cases[i][1]);
    }
    ZT_ASSERT (oci_image_normalize_ref ("BusyBox", out, sizeof out, err, sizeof err) != 0);
    ZT_ASSERT_STR_CONTAINS (err, "must be lowercase");
    ZT_ASSERT (oci_image_normalize_ref ("a//b", out, sizeof out, err, sizeof err) != 0);
    ZT_ASSERT (oci_image_normalize_ref ("busybox:bad/tag!", out, sizeof out, err, sizeof err) != 0);
    ZT_ASSERT (oci_image_normalize_ref ("busybox@sha256:12", out, sizeof out, err, sizeof err) != 0);
    ZT_ASSERT_STR_CONTAINS (err, "bad digest");
    ZT_ASSERT (oci_image_normalize_ref ("", out, sizeof out, err, sizeof err) != 0);
}

static int
s_list_one (void *arg, const oci_image_info_t *image)
{
    char *out = arg;
    snprintf (out + strlen (out), 1024 - strlen (out), "%s %zu %s %s;", image->names[0],
              image->names_count, image->id, image->size > 1000000 ? "big" : "small");
    return 0;
}

//  same_manifest: the store holds the layout's own manifest (a
//  docker-archive's is written on import)
static void
s_check_test_image (oci_image_store_t *store, bool same_manifest)
{
    char id[128];
    ZT_ASSERT (oci_image_exists (store, "zube.test/busybox:1", id, sizeof id));
    ZT_ASSERT (strncmp (id, "sha256:", 7) == 0 && strlen (id) == 71);
    ZT_ASSERT (!oci_image_exists (store, "zube.test/busybox:2", NULL, 0));
    ZT_ASSERT (!oci_image_exists (store, "busybox", NULL, 0));
    //  by image id, and by repository@manifest digest
    ZT_ASSERT (oci_image_exists (store, id, NULL, 0));
    char cmd[800], digest[80] = "", by_digest[200];
    snprintf (cmd, sizeof cmd, "grep -o 'sha256:[0-9a-f]*' %s/index.json", s_layout);
    FILE *pipe = popen (cmd, "r");
    ZT_ASSERT (pipe && fgets (digest, sizeof digest, pipe));
    pclose (pipe);
    digest[strcspn (digest, "\n")] = '\0';
    snprintf (by_digest, sizeof by_digest, "zube.test/busybox@%s", digest);
    ZT_ASSERT_MSG (oci_image_exists (store, by_digest, NULL, 0) == same_manifest, "%s",
                   by_digest);
    snprintf (by_digest, sizeof by_digest, "zube.test/other@%s", digest);
    ZT_ASSERT (!oci_image_exists (store, by_digest, NULL, 0));
    char listed[1024] = "", expected[1024];
    ZT_ASSERT_INT_EQ (oci_image_list (store, s_list_one, listed), 0);
    snprintf (expected, sizeof expected, "zube.test/busybox:1 1 %s big;", id);
    ZT_ASSERT_STR_EQ (listed, expected);
}

static void
test_import_oci_layout (void)
{
    oci_image_store_t *store = s_store ("store-layout");
    char ref[256], err[512];
    ZT_ASSERT_MSG (oci_image_import (store, s_layout, ref, sizeof ref, err, sizeof err) == 0,
                   "import: %s", err);
    ZT_ASSERT_STR_EQ (ref, "zube.test/busybox:1");
    s_check_test_image (store, true);
    oci_image_store_close (&store);
    //  the refs survive a reopen
    store = s_store ("store-layout");
    s_check_test_image (store, true);
    oci_image_store_close (&store);
}

static void
test_import_oci_archive (void)
{
    oci_image_store_t *store = s_store ("store-oci-tar");
    char ref[256], err[512];
    ZT_ASSERT_MSG (oci_image_import (store, s_oci_tar, ref, sizeof ref, err, sizeof err) == 0,
                   "import: %s", err);
    ZT_ASSERT_STR_EQ (ref, "zube.test/busybox:1");
    s_check_test_image (store, true);
    //  staging is gone
    char tmp[600];
    s_path (tmp, sizeof tmp, "store-oci-tar/tmp");
    DIR *d = opendir (tmp);
    ZT_ASSERT (d);
    int count = 0;
    for (struct dirent *e; (e = readdir (d)) != NULL;)
        count += e->d_name[0] != '.';
    closedir (d);
    ZT_ASSERT_INT_EQ (count, 0);
    oci_image_store_close (&store);
}

static void
test_import_docker_archive (void)
{
    oci_image_store_t *store = s_store ("store-docker");
    char ref[256], err[512], id_docker[128], id_oci[128];
    ZT_ASSERT_MSG (oci_image_import (store, s_docker_tar, ref, sizeof ref, err, sizeof err) == 0,
                   "import: %s", err);
    ZT_ASSERT_STR_EQ (ref, "zube.test/busybox:1");
    s_check_test_image (store, false);
    ZT_ASSERT (oci_image_exists (store, ref, id_docker, sizeof id_docker));
    oci_image_store_close (&store);
    //  the same config: the same image id as the OCI layout's
    store = s_store ("store-layout");
    ZT_ASSERT (oci_image_exists (store, ref, id_oci, sizeof id_oci));
    ZT_ASSERT_STR_EQ (id_docker, id_oci);
    oci_image_store_close (&store);
}

static void
test_digest_mismatch (void)
{
    char copy[600], cmd[1400], err[512];
    s_path (copy, sizeof copy, "corrupt");
    snprintf (cmd, sizeof cmd, "cp -R %s %s", s_layout, copy);
    ZT_ASSERT (system (cmd) == 0);
    //  the biggest blob is the layer: flip one byte in its middle
    snprintf (cmd, sizeof cmd, "ls -S %s/blobs/sha256 | head -1", copy);
    FILE *pipe = popen (cmd, "r");
    char hex[80] = "";
    ZT_ASSERT (pipe && fgets (hex, sizeof hex, pipe));
    pclose (pipe);
    hex[strcspn (hex, "\n")] = '\0';
    char blob[1200];
    snprintf (blob, sizeof blob, "%s/blobs/sha256/%s", copy, hex);
    FILE *file = fopen (blob, "r+b");
    ZT_ASSERT (file);
    fseek (file, 1000, SEEK_SET);
    int c = fgetc (file);
    fseek (file, 1000, SEEK_SET);
    fputc (c ^ 0x5a, file);
    fclose (file);
    oci_image_store_t *store = s_store ("store-corrupt");
    ZT_ASSERT (oci_image_import (store, copy, NULL, 0, err, sizeof err) != 0);
    char expected[200];
    snprintf (expected, sizeof expected, "layer sha256:%s digest mismatch: got sha256:", hex);
    ZT_ASSERT_STR_CONTAINS (err, expected);
    ZT_ASSERT (!oci_image_exists (store, "zube.test/busybox:1", NULL, 0));
    char listed[1024] = "";
    oci_image_list (store, s_list_one, listed);
    ZT_ASSERT_STR_EQ (listed, "");
    oci_image_store_close (&store);
    //  a corrupt docker-archive layer: named against its diff id
    char docker[600];
    s_path (docker, sizeof docker, "corrupt-docker");
    snprintf (cmd, sizeof cmd,
              "mkdir -p %s && tar -C %s -xf %s && f=$(ls %s/*/layer.tar) && "
              "printf 'X' | dd of=$f bs=1 seek=5000 conv=notrunc 2>/dev/null",
              docker, docker, s_docker_tar, docker);
    ZT_ASSERT (system (cmd) == 0);
    store = s_store ("store-corrupt");
    ZT_ASSERT (oci_image_import (store, docker, NULL, 0, err, sizeof err) != 0);
    ZT_ASSERT_STR_CONTAINS (err, "layer.tar digest mismatch: got sha256:");
    ZT_ASSERT (!oci_image_exists (store, "zube.test/busybox:1", NULL, 0));
    oci_image_store_close (&store);
}

static const s_entry_t s_lower[] = {
    {"a/", 'd', NULL},          {"a/keep", 'f', "keep"}, {"a/gone", 'f', "gone"},
    {"a/gonedir/", 'd', NULL},  {"a/gonedir/x", 'f', "x"}, {"o/", 'd', NULL},
    {"o/old", 'f', "old"},      {"o/sub/", 'd', NULL},  {"o/sub/deep", 'f', "deep"},
    {"top", 'f', "top1"},       {NULL, 0, NULL}};
static const s_entry_t s_upper[] = {
    {"a/", 'd', NULL},          {"a/.wh.gone", 'f', ""}, {"a/.wh.gonedir", 'f', ""},
    {"o/", 'd', NULL},          {"o/.wh..wh..opq", 'f', ""}, {"o/new", 'f', "new"},
    {"top", 'f', "top2"},       {"./b/c", 'f', "c"},    {NULL, 0, NULL}};

static void
s_check_whiteouts (const char *rootfs)
{
    char path[1200], text[64] = "";
    snprintf (path, sizeof path, "%s/a/keep", rootfs);
    ZT_ASSERT_MSG (s_exists (path), "%s missing", path);
    snprintf (path, sizeof path, "%s/a/gone", rootfs);
    ZT_ASSERT_MSG (!s_exists (path), "%s still there", path);
    snprintf (path, sizeof path, "%s/a/gonedir", rootfs);
    ZT_ASSERT_MSG (!s_exists (path), "%s still there", path);
    snprintf (path, sizeof path, "%s/a/.wh.gone", rootfs);
    ZT_ASSERT (!s_exists (path));
    snprintf (path, sizeof path, "%s/o/old", rootfs);
    ZT_ASSERT_MSG (!s_exists (path), "opaque dir: %s still there", path);
    snprintf (path, sizeof path, "%s/o/sub", rootfs);
    ZT_ASSERT_MSG (!s_exists (path), "opaque dir: %s still there", path);
    snprintf (path, sizeof path, "%s/o/new", rootfs);
    ZT_ASSERT (s_exists (path));
    snprintf (path, sizeof path, "%s/b/c", rootfs);
    ZT_ASSERT (s_exists (path));
    snprintf (path, sizeof path, "%s/top", rootfs);
    FILE *file = fopen (path, "r");
    ZT_ASSERT (file && fgets (text, sizeof text, file));
    fclose (file);
    ZT_ASSERT_STR_EQ (text, "top2");
}

static void
s_whiteouts_in (const char *store_name, const char *mode)
{
    char layout[600], err[512], rootfs[1024], container[600];
    const s_entry_t *layers[] = {s_lower, s_upper};
    s_make_layout ("layout-wh", "zube.test/wh:1", layers, 2, layout, sizeof layout);
    oci_image_store_t *store = s_store (store_name);
    ZT_ASSERT_MSG (oci_image_import (store, layout, NULL, 0, err, sizeof err) == 0, "import: %s",
                   err);
    s_path (container, sizeof container, "c-wh");
    oci_image_config_t config;
    ZT_ASSERT_MSG (oci_image_prepare_rootfs (store, "zube.test/wh:1", container, rootfs,
                                             sizeof rootfs, &config, err, sizeof err)
                       == 0,
                   "prepare: %s", err);
    ZT_ASSERT_STR_EQ (oci_image_last_rootfs_mode (store), mode);
    ZT_ASSERT_INT_EQ (config.entrypoint_count, 2);
    ZT_ASSERT_STR_EQ (config.entrypoint[1], "-c");
    ZT_ASSERT_INT_EQ (config.cmd_count, 1);
    ZT_ASSERT_INT_EQ (config.env_count, 2);
    ZT_ASSERT_STR_EQ (config.working_dir, "/w");
    ZT_ASSERT_STR_EQ (config.user, "65534");
    ZT_ASSERT_STR_EQ (config.stop_signal, "SIGQUIT");
    oci_image_config_free (&config);
    s_check_whiteouts (rootfs);
    ZT_ASSERT_INT_EQ (oci_image_release_rootfs (store, container), 0);
    ZT_ASSERT (!s_mounted_under (container));
    oci_image_store_close (&store);
}

static void
test_whiteouts_copy (void)
{
    setenv ("ZUBE_OCI_ROOTFS", "copy", 1);
    s_whiteouts_in ("store-wh-copy", "copy");
    unsetenv ("ZUBE_OCI_ROOTFS");
}

//  zstd layers (application/vnd.oci.image.layer.v1.tar+zstd) unpack as
//  gzip ones do
static void
test_zstd_layers (void)
{
    s_zstd = true;
    setenv ("ZUBE_OCI_ROOTFS", "copy", 1);
    s_whiteouts_in ("store-zstd", "copy");
    unsetenv ("ZUBE_OCI_ROOTFS");
    s_zstd = false;
}

static void
test_whiteouts_overlay (void)
{
    s_whiteouts_in ("store-wh-overlay", "overlay");
    //  the cached upper layer holds overlayfs whiteouts
    char path[1200];
    snprintf (path, sizeof path, "ls -d %s/store-wh-overlay/layers/*/a/gone", s_dir);
    FILE *pipe = popen (path, "r");
    //  the lower layer has a file a/gone, the upper a whiteout there
    char found[1200] = "";
    bool whiteout = false;
    while (pipe && !whiteout && fgets (found, sizeof found, pipe)) {
        found[strcspn (found, "\n")] = '\0';
        struct stat st;
        whiteout = lstat (found, &st) == 0 && S_ISCHR (st.st_mode) && st.st_rdev == 0;
    }
    if (pipe)
        pclose (pipe);
    ZT_ASSERT_MSG (whiteout, "no 0:0 character device a/gone in the layer cache");
    char opaque[8] = "";
    //  <layer>/a/gone -> <layer>/o
    found[strlen (found) - strlen ("a/gone")] = '\0';
    snprintf (path, sizeof path, "%so", found);
    ZT_ASSERT_INT_EQ (lgetxattr (path, "trusted.overlay.opaque", opaque, sizeof opaque), 1);
    ZT_ASSERT (opaque[0] == 'y');
}

static void
s_refused (const char *name, const s_entry_t *entries, const char *needle)
{
    char layout[600], err[512];
    const s_entry_t *layers[] = {entries};
    s_make_layout (name, "zube.test/evil:1", layers, 1, layout, sizeof layout);
    oci_image_store_t *store = s_store ("store-evil");
    ZT_ASSERT_MSG (oci_image_import (store, layout, NULL, 0, err, sizeof err) != 0,
                   "%s imported", name);
    ZT_ASSERT_STR_CONTAINS (err, needle);
    ZT_ASSERT (!oci_image_exists (store, "zube.test/evil:1", NULL, 0));
    oci_image_store_close (&store);
}

static void
test_path_traversal (void)
{
    char victim[600], target[700];
    s_path (victim, sizeof victim, "victim");
    mkdir (victim, 0755);
    //  "../" climbing out of the layer dir
    s_entry_t dotdot[] = {{"ok", 'f', "x"}, {"../../../victim/pwned", 'f', "evil"}, {NULL, 0, NULL}};
    s_refused ("layout-dotdot", dotdot, "entry \"../../../victim/pwned\" escapes the layer");
    //  through a symlink the same layer made (absolute, then relative)
    snprintf (target, sizeof target, "%s", victim);
    s_entry_t abs_link[] = {{"link", 'l', target}, {"link/pwned", 'f', "evil"}, {NULL, 0, NULL}};
    s_refused ("layout-abslink", abs_link, "through the symlink \"link\"");
    s_entry_t rel_link[] = {{"up", 'l', "../../../../.."}, {"up/tmp/pwned", 'f', "evil"},
                            {NULL, 0, NULL}};
    s_refused ("layout-rellink", rel_link, "through the symlink \"up\"");
    //  a hard link to a file outside
    s_entry_t hard[] = {{"h", 'h', "../../../../../etc/passwd"}, {NULL, 0, NULL}};
    s_refused ("layout-hardlink", hard, "escapes the layer");
    //  a whiteout reached through a symlink
    s_entry_t wh[] = {{"w", 'l', target}, {"w/.wh.keep", 'f', ""}, {NULL, 0, NULL}};
    s_refused ("layout-whlink", wh, "through the symlink \"w\"");
    snprintf (target, sizeof target, "%s/pwned", victim);
    ZT_ASSERT_MSG (!s_exists (target), "%s was written", target);
    snprintf (target, sizeof target, "%s/keep", victim);
    ZT_ASSERT (!s_exists (target));
    ZT_ASSERT (!s_exists ("/tmp/pwned"));
    //  an absolute path inside a layer is relative to the layer
    s_entry_t absolute[] = {{"/abs/file", 'f', "fine"}, {NULL, 0, NULL}};
    char layout[600], err[512];
    const s_entry_t *layers[] = {absolute};
    s_make_layout ("layout-abs", "zube.test/abs:1", layers, 1, layout, sizeof layout);
    oci_image_store_t *store = s_store ("store-evil");
    ZT_ASSERT_MSG (oci_image_import (store, layout, NULL, 0, err, sizeof err) == 0, "%s", err);
    ZT_ASSERT (!s_exists ("/abs/file"));
    oci_image_store_close (&store);
}

static void
s_prepare_release (const char *mode)
{
    oci_image_store_t *store = s_store ("store-layout");
    char container[600], rootfs[1024], err[512], path[1200];
    s_path (container, sizeof container, "c-busybox");
    mkdir (container, 0755);
    oci_image_config_t config;
    ZT_ASSERT_MSG (oci_image_prepare_rootfs (store, "zube.test/busybox:1", container, rootfs,
                                             sizeof rootfs, &config, err, sizeof err)
                       == 0,
                   "prepare: %s", err);
    ZT_ASSERT_STR_EQ (oci_image_last_rootfs_mode (store), mode);
    ZT_ASSERT_INT_EQ (config.cmd_count, 1);
    ZT_ASSERT_STR_EQ (config.cmd[0], "sh");
    oci_image_config_free (&config);
    snprintf (path, sizeof path, "%s/rootfs", container);
    ZT_ASSERT_STR_EQ (rootfs, path);
    ZT_ASSERT_INT_EQ (s_mounted_under (container), strcmp (mode, "overlay") == 0);
    snprintf (path, sizeof path, "%s/bin/sh", rootfs);
    ZT_ASSERT (s_exists (path));
    snprintf (path, sizeof path, "%s/www/index.html", rootfs);
    ZT_ASSERT (s_exists (path));
    //  a write lands in this container only
    snprintf (path, sizeof path, "%s/etc/passwd", rootfs);
    FILE *file = fopen (path, "a");
    ZT_ASSERT (file);
    fputs ("x:x:1:1::/:/bin/sh\n", file);
    fclose (file);
    ZT_ASSERT_INT_EQ (oci_image_release_rootfs (store, container), 0);
    ZT_ASSERT (!s_mounted_under (container));
    static const char *parts[] = {"rootfs", "upper", "work"};
    for (int i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s", container, parts[i]);
        ZT_ASSERT_MSG (!s_exists (path), "%s left", path);
    }
    ZT_ASSERT (s_exists (container));
    ZT_ASSERT_INT_EQ (oci_image_release_rootfs (store, container), 0);
    //  the shared layer was not changed by the container's write
    snprintf (path, sizeof path, "grep -q '^x:' %s/store-layout/layers/*/etc/passwd", s_dir);
    ZT_ASSERT (system (path) != 0);
    //  a missing image
    ZT_ASSERT (oci_image_prepare_rootfs (store, "nope", container, rootfs, sizeof rootfs,
                                         &config, err, sizeof err)
               != 0);
    ZT_ASSERT_STR_EQ (err, "image \"nope\" not found in the node's image store");
    oci_image_store_close (&store);
}

static void
test_prepare_release_overlay (void)
{
    s_prepare_release ("overlay");
}

static void
test_prepare_release_copy (void)
{
    setenv ("ZUBE_OCI_ROOTFS", "copy", 1);
    s_prepare_release ("copy");
    unsetenv ("ZUBE_OCI_ROOTFS");
}

static void
test_bad_input (void)
{
    char err[512], path[600];
    //  an unusable store dir names the dir
    ZT_ASSERT (!oci_image_store_open ("/proc/version/images", err, sizeof err));
    ZT_ASSERT_STR_CONTAINS (err, "/proc/version/images");
    oci_image_store_t *store = s_store ("store-bad");
    //  neither layout nor archive
    s_path (path, sizeof path, "empty-dir");
    mkdir (path, 0755);
    ZT_ASSERT (oci_image_import (store, path, NULL, 0, err, sizeof err) != 0);
    ZT_ASSERT_STR_CONTAINS (err, "neither an OCI image layout");
    //  not a tar
    s_path (path, sizeof path, "not-a-tar");
    s_write_text (path, "hello, this is not a tar archive at all\n");
    ZT_ASSERT (oci_image_import (store, path, NULL, 0, err, sizeof err) != 0);
    ZT_ASSERT_STR_CONTAINS (err, "not-a-tar");
    //  a missing file
    ZT_ASSERT (oci_image_import (store, "/nonexistent.tar", NULL, 0, err, sizeof err) != 0);
    ZT_ASSERT_STR_CONTAINS (err, "/nonexistent.tar");
    //  malformed JSON in the index
    char copy[600], cmd[1400];
    s_path (copy, sizeof copy, "badjson");
    snprintf (cmd, sizeof cmd, "cp -R %s %s && printf '{\"manifests\": [' > %s/index.json",
              s_layout, copy, copy);
    ZT_ASSERT (system (cmd) == 0);
    ZT_ASSERT (oci_image_import (store, copy, NULL, 0, err, sizeof err) != 0);
    ZT_ASSERT_STR_CONTAINS (err, "index.json: invalid JSON");
    oci_image_store_close (&store);
}

static void
test_preload_dir (void)
{
    char dir[600], cmd[1600], err[512];
    s_path (dir, sizeof dir, "preload");
    snprintf (cmd, sizeof cmd,
              "mkdir -p %s && cp %s %s/1-oci.tar && cp %s %s/2-docker.tar && echo junk > "
              "%s/3-junk.tar",
              dir, s_oci_tar, dir, s_docker_tar, dir, dir);
    ZT_ASSERT (system (cmd) == 0);
    oci_image_store_t *store = s_store ("store-preload");
    ZT_ASSERT_INT_EQ (oci_image_preload_dir (store, dir, err, sizeof err), 1);
    ZT_ASSERT_STR_CONTAINS (err, "3-junk.tar");
    ZT_ASSERT (oci_image_exists (store, "zube.test/busybox:1", NULL, 0));
    ZT_ASSERT_INT_EQ (oci_image_preload_dir (store, "/nonexistent", err, sizeof err), -1);
    oci_image_store_close (&store);
}

//  A layout whose index.json names an image index with a manifest per
//  platform: the one for this machine is imported (the other's blobs are
//  not even in the layout).
static void
test_diff_id_mismatch (void)
{
    char layout[600], err[512];
    s_entry_t files[] = {{"hello", 'f', "world"}, {NULL, 0, NULL}};
    const s_entry_t *layers[] = {files};
    s_bad_diff_id = true;
    s_make_layout ("layout-diffid", "zube.test/diffid:1", layers, 1, layout, sizeof layout);
    s_bad_diff_id = false;
    oci_image_store_t *store = s_store ("store-diffid");
    ZT_ASSERT (oci_image_import (store, layout, NULL, 0, err, sizeof err) != 0);
    ZT_ASSERT_STR_CONTAINS (err, "diff_id mismatch: its content is sha256:");
    ZT_ASSERT_STR_CONTAINS (err, "the config says sha256:0000");
    ZT_ASSERT (!oci_image_exists (store, "zube.test/diffid:1", NULL, 0));
    oci_image_store_close (&store);
}

static void
test_index_platforms (void)
{
    char layout[600], err[512], path[1200], text[2048];
    s_entry_t files[] = {{"hello", 'f', "world"}, {NULL, 0, NULL}};
    const s_entry_t *layers[] = {files};
    s_make_layout ("layout-index", "zube.test/multi:1", layers, 1, layout, sizeof layout);
    //  the manifest s_make_layout wrote, from its index.json
    snprintf (path, sizeof path, "grep -o 'sha256:[0-9a-f]*' %s/index.json", layout);
    FILE *pipe = popen (path, "r");
    char manifest[80] = "";
    ZT_ASSERT (pipe && fgets (manifest, sizeof manifest, pipe));
    pclose (pipe);
    manifest[strcspn (manifest, "\n")] = '\0';
    snprintf (path, sizeof path, "%s/blobs/sha256/%s", layout, manifest + 7);
    struct stat st;
    ZT_ASSERT (stat (path, &st) == 0);
#if defined(__aarch64__)
    const char *here = "arm64", *other = "amd64";
#else
    const char *here = "amd64", *other = "arm64";
#endif
    snprintf (text, sizeof text,
              "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
              "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
              "\"digest\":\"sha256:%064d\",\"size\":10,\"platform\":{\"architecture\":"
              "\"%s\",\"os\":\"linux\"}},{\"mediaType\":"
              "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%ld,"
              "\"platform\":{\"architecture\":\"%s\",\"os\":\"linux\"}}]}",
              0, other, manifest, (long) st.st_size, here);
    snprintf (path, sizeof path, "%s/nested-index", s_dir);
    s_write_text (path, text);
    char index_digest[80];
    long index_size;
    s_blob (layout, path, index_digest, &index_size);
    snprintf (path, sizeof path, "%s/index.json", layout);
    snprintf (text, sizeof text,
              "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
              "\"application/vnd.oci.image.index.v1+json\",\"digest\":\"%s\",\"size\":%ld,"
              "\"annotations\":{\"io.containerd.image.name\":\"zube.test/multi:1\","
              "\"org.opencontainers.image.ref.name\":\"1\"}}]}",
              index_digest, index_size);
    s_write_text (path, text);
    oci_image_store_t *store = s_store ("store-index");
    char ref[256];
    ZT_ASSERT_MSG (oci_image_import (store, layout, ref, sizeof ref, err, sizeof err) == 0,
                   "import: %s", err);
    //  the containerd name wins over the tag-only ref.name
    ZT_ASSERT_STR_EQ (ref, "zube.test/multi:1");
    char by_digest[200];
    snprintf (by_digest, sizeof by_digest, "zube.test/multi@%s", manifest);
    ZT_ASSERT_MSG (oci_image_exists (store, by_digest, NULL, 0), "%s", by_digest);
    oci_image_store_close (&store);
}

static int
s_count_entries (const char *store, const char *sub)
{
    char path[1200];
    snprintf (path, sizeof path, "%s/%s/%s", s_dir, store, sub);
    DIR *d = opendir (path);
    int count = 0;
    for (struct dirent *e; d && (e = readdir (d)) != NULL;)
        count += e->d_name[0] != '.';
    if (d)
        closedir (d);
    return count;
}

static void
test_remove (void)
{
    char layout[600], err[512];
    const s_entry_t *layers[] = {s_lower, s_upper};
    s_make_layout ("layout-rm", "zube.test/rm:1", layers, 2, layout, sizeof layout);
    oci_image_store_t *store = s_store ("store-rm");
    ZT_ASSERT_MSG (oci_image_import (store, s_layout, NULL, 0, err, sizeof err) == 0, "%s", err);
    ZT_ASSERT_MSG (oci_image_import (store, layout, NULL, 0, err, sizeof err) == 0, "%s", err);
    //  busybox: index-less manifest, config, 1 layer; rm: manifest, config, 2 layers
    ZT_ASSERT_INT_EQ (s_count_entries ("store-rm", "layers"), 3);
    ZT_ASSERT_INT_EQ (s_count_entries ("store-rm", "blobs/sha256"), 7);
    ZT_ASSERT_INT_EQ (oci_image_remove (store, "zube.test/rm:1", err, sizeof err), 0);
    ZT_ASSERT (!oci_image_exists (store, "zube.test/rm:1", NULL, 0));
    ZT_ASSERT (oci_image_exists (store, "zube.test/busybox:1", NULL, 0));
    ZT_ASSERT_INT_EQ (s_count_entries ("store-rm", "layers"), 1);
    ZT_ASSERT_INT_EQ (s_count_entries ("store-rm", "blobs/sha256"), 3);
    ZT_ASSERT (oci_image_remove (store, "zube.test/rm:1", err, sizeof err) != 0);
    ZT_ASSERT_STR_EQ (err, "image \"zube.test/rm:1\" not found in the node's image store");
    //  what is left still runs
    char container[600], rootfs[1024];
    s_path (container, sizeof container, "c-rm");
    ZT_ASSERT_MSG (oci_image_prepare_rootfs (store, "zube.test/busybox:1", container, rootfs,
                                             sizeof rootfs, NULL, err, sizeof err)
                       == 0,
                   "%s", err);
    ZT_ASSERT_INT_EQ (oci_image_release_rootfs (store, container), 0);
    ZT_ASSERT_INT_EQ (oci_image_remove (store, "zube.test/busybox:1", err, sizeof err), 0);
    ZT_ASSERT_INT_EQ (s_count_entries ("store-rm", "layers"), 0);
    ZT_ASSERT_INT_EQ (s_count_entries ("store-rm", "blobs/sha256"), 0);
    oci_image_store_close (&store);
}

int
main (void)
{
    s_root = geteuid () == 0;
    s_dir = zt_tempdir ("oci-image");
    const char *srcdir = getenv ("ZUBE_SRCDIR");
    char cmd[2048];
    snprintf (s_layout, sizeof s_layout, "%s/image", s_dir);
    snprintf (s_oci_tar, sizeof s_oci_tar, "%s/image-oci.tar", s_dir);
    snprintf (s_docker_tar, sizeof s_docker_tar, "%s/image-docker.tar", s_dir);
    snprintf (cmd, sizeof cmd,
              "S=%s/scripts/make-test-image.sh; $S %s && $S -f oci-archive %s && "
              "$S -f docker-archive %s",
              srcdir ? srcdir : ".", s_layout, s_oci_tar, s_docker_tar);
    bool have_image = access ("/bin/busybox", X_OK) == 0 && system (cmd) == 0;
    ZT_RUN (test_ref_normalize);
    if (have_image) {
        ZT_RUN (test_import_oci_layout);
        ZT_RUN (test_import_oci_archive);
        ZT_RUN (test_import_docker_archive);
        ZT_RUN (test_digest_mismatch);
        ZT_RUN (test_prepare_release_copy);
        if (s_root)
            ZT_RUN (test_prepare_release_overlay);
        else
            zt_skip ("test_prepare_release_overlay", "overlayfs needs root");
        ZT_RUN (test_bad_input);
        ZT_RUN (test_preload_dir);
        ZT_RUN (test_remove);
    }
    else
        zt_skip ("test_import_*", "no test image: busybox-static not installed");
    ZT_RUN (test_whiteouts_copy);
    if (access ("/usr/bin/zstd", X_OK) == 0)
        ZT_RUN (test_zstd_layers);
    else
        zt_skip ("test_zstd_layers", "zstd(1) is not installed");
    if (s_root)
        ZT_RUN (test_whiteouts_overlay);
    else
        zt_skip ("test_whiteouts_overlay", "overlayfs needs root");
    ZT_RUN (test_path_traversal);
    ZT_RUN (test_index_platforms);
    ZT_RUN (test_diff_id_mismatch);
    zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
