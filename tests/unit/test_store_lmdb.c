/*  test_store_lmdb - what only the lmdb store plugin does: its URL forms,
    options and default directory, growing a full map, snapshots through a
    pipe, and its counters. What every backend does is in
    tests/integration/test_store_conformance.c. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include "zube/plugin_host.h"
#include "zube/store_client.h"
//  zt_rmtree's snprintf into a fixed buffer trips -Wformat-truncation when
//  GCC inlines it here; the paths involved are short.
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zube_testproc.h"
#include "../zube_test.h"

static zube_plugin_host_t *s_plugins;
static char *s_dir;

#define S_ASSERT_CONTAINS(haystack, needle)                                   \
    do {                                                                      \
        const char *s_h_ = (haystack), *s_needle_ = (needle);                 \
        if (!s_h_ || !strstr (s_h_, s_needle_))                               \
            ZT_FAIL ("%s == \"%s\" does not contain \"%s\"", #haystack,       \
                     s_h_ ? s_h_ : "(null)", s_needle_);                      \
    } while (0)

static zube_store_t *
s_open (const char *url, const char *const *options)
{
    char *error = NULL;
    zube_store_t *store = zube_store_open (s_plugins, url, options, &error);
    ZT_ASSERT_MSG (store, "cannot open %s: %s", url, error ? error : "?");
    return store;
}

static char *
s_open_error (const char *url, const char *const *options)
{
    char *error = NULL;
    zube_store_t *store = zube_store_open (s_plugins, url, options, &error);
    bool opened = store != NULL;
    zube_store_close (&store);
    ZT_ASSERT_MSG (!opened, "%s opened, expected a failure", url);
    ZT_ASSERT (error);
    return error;
}

static void
test_url_forms_and_default_directory (void)
{
    char *error = s_open_error ("lmdbx", NULL);
    S_ASSERT_CONTAINS (error, "plugin lmdbx");
    free (error);

    //  Bare "lmdb": $ZUBE_DATA_DIR/store.
    setenv ("ZUBE_DATA_DIR", s_dir, 1);
    zube_store_t *store = s_open ("lmdb", NULL);
    ZT_ASSERT_INT_EQ (zube_store_put (store, "/registry/a", "1", 1, 0, NULL), ZUBE_OK);
    zube_store_close (&store);
    unsetenv ("ZUBE_DATA_DIR");
    char path[600];
    snprintf (path, sizeof path, "%s/store/data.mdb", s_dir);
    ZT_ASSERT_MSG (access (path, F_OK) == 0, "%s missing", path);

    //  The plugin's "dir" configuration wins over the environment.
    char configured[600];
    snprintf (configured, sizeof configured, "%s/configured", s_dir);
    zube_plugin_host_set_config (s_plugins, "lmdb", "dir", configured);
    store = s_open ("lmdb:", NULL);
    zube_store_close (&store);
    zube_plugin_host_set_config (s_plugins, "lmdb", "dir", NULL);
    snprintf (path, sizeof path, "%s/data.mdb", configured);
    ZT_ASSERT_MSG (access (path, F_OK) == 0, "%s missing", path);

    //  lmdb:DIR creates missing parents.
    char url[600];
    snprintf (url, sizeof url, "lmdb:%s/deep/er/db", s_dir);
    store = s_open (url, NULL);
    ZT_ASSERT_INT_EQ (zube_store_put (store, "/registry/b", "2", 1, 0, NULL), ZUBE_OK);
    zube_store_close (&store);
}

static void
test_options (void)
{
    char url[600];
    snprintf (url, sizeof url, "lmdb:%s/options", s_dir);
    const char *unknown[] = {"nosync=1", NULL};
    char *error = s_open_error (url, unknown);
    S_ASSERT_CONTAINS (error, "unknown option \"nosync\"");
    free (error);
    const char *bad_size[] = {"map_size=12", NULL};
    error = s_open_error (url, bad_size);
    S_ASSERT_CONTAINS (error, "option map_size: expected 1M to 1T, found \"12\"");
    free (error);
    const char *bad_preallocate[] = {"preallocate=4K", NULL};
    error = s_open_error (url, bad_preallocate);
    S_ASSERT_CONTAINS (error, "option preallocate: expected 0 or 1M to 1G, found \"4K\"");
    free (error);
    const char *good[] = {"map_size=64M", "max_readers=16", "preallocate=0", NULL};
    zube_store_t *store = s_open (url, good);
    zube_store_close (&store);
}

//  A map of 1 MiB filled with 8 MiB: every write still succeeds.
static void
test_full_map_grows (void)
{
    char url[600];
    snprintf (url, sizeof url, "lmdb:%s/grow", s_dir);
    const char *small[] = {"map_size=1M", NULL};
    zube_store_t *store = s_open (url, small);
    zube_plugin_handle_t *plugin = zube_store_plugin (store);
    uint64_t writes_before = zube_plugin_handle_counter (plugin, "store_writes_total");
    size_t size = 64 * 1024;
    char *value = malloc (size);
    memset (value, 'v', size);
    for (int i = 0; i < 128; i++) {
        char key[64];
        snprintf (key, sizeof key, "/registry/big/%03d", i);
        int64_t revision = 0;
        zube_status_t status = zube_store_put (store, key, value, size, 0, &revision);
        ZT_ASSERT_MSG (status == ZUBE_OK, "write %d: %s", i, zube_store_error (store));
        ZT_ASSERT_INT_EQ (revision, i + 1);
    }
    void *got = NULL;
    size_t got_size = 0;
    ZT_ASSERT_INT_EQ (zube_store_get (store, "/registry/big/127", &got, &got_size, NULL), ZUBE_OK);
    ZT_ASSERT_INT_EQ (got_size, size);
    ZT_ASSERT (memcmp (got, value, size) == 0);
    free (got);
    free (value);
    ZT_ASSERT_INT_EQ (zube_plugin_handle_counter (plugin, "store_writes_total") - writes_before,
                      128);
    zube_store_close (&store);
}

static off_t
s_data_size (const char *dir)
{
    char path[600];
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    struct stat file;
    ZT_ASSERT_MSG (stat (path, &file) == 0, "%s missing", path);
    return file.st_size;
}

//  Writes 3 MiB in 64 KiB values through a store that preallocates and
//  one that does not: the first file runs ahead of what is written by
//  half a step at least, the second stops at its last page; both
//  read back what was written, through the zeros too.
static void
test_preallocate (void)
{
    const char *variants[][2] = {{"preallocate=16M", NULL}, {"preallocate=0", NULL}};
    off_t sizes[2];
    for (int variant = 0; variant < 2; variant++) {
        char dir[600], url[620];
        snprintf (dir, sizeof dir, "%s/preallocate-%d", s_dir, variant);
        snprintf (url, sizeof url, "lmdb:%s", dir);
        zube_store_t *store = s_open (url, variants[variant]);
        size_t size = 64 * 1024;
        char *value = malloc (size);
        for (int i = 0; i < 48; i++) {
            char key[64];
            snprintf (key, sizeof key, "/registry/big/%03d", i);
            memset (value, 'a' + i % 26, size);
            ZT_ASSERT_INT_EQ (zube_store_put (store, key, value, size, 0, NULL), ZUBE_OK);
        }
        sizes[variant] = s_data_size (dir);
        void *got = NULL;
        size_t got_size = 0;
        ZT_ASSERT_INT_EQ (zube_store_get (store, "/registry/big/047", &got, &got_size, NULL),
                          ZUBE_OK);
        memset (value, 'a' + 47 % 26, size);
        ZT_ASSERT_INT_EQ (got_size, size);
        ZT_ASSERT (memcmp (got, value, size) == 0);
        free (got);
        free (value);
        zube_store_close (&store);
        //  Reopened: the zeros past the last page are nobody's
        store = s_open (url, variants[variant]);
        ZT_ASSERT_INT_EQ (zube_store_get (store, "/registry/big/000", &got, &got_size, NULL),
                          ZUBE_OK);
        ZT_ASSERT_INT_EQ (got_size, size);
        free (got);
        int64_t revision = 0;
        ZT_ASSERT_INT_EQ (zube_store_put (store, "/registry/big/new", "x", 1, 0, &revision),
                          ZUBE_OK);
        ZT_ASSERT_INT_EQ (revision, 49);
        zube_store_close (&store);
    }
    ZT_ASSERT_MSG (sizes[0] >= sizes[1] + (1 << 19),
                   "preallocated %jd bytes, not preallocated %jd", (intmax_t) sizes[0],
                   (intmax_t) sizes[1]);
    //  Each value is stored twice: the object and its event
    ZT_ASSERT_MSG (sizes[1] >= 2 * 48 * 64 * 1024 && sizes[1] < 8 * 1024 * 1024,
                   "not preallocated: %jd bytes for 2 x 3 MiB", (intmax_t) sizes[1]);
}

typedef struct {
    int fd;
    char *data;
    size_t size;
} s_drain_t;

static void *
s_drain (void *arg)
{
    s_drain_t *drain = arg;
    size_t cap = 1 << 16;
    drain->data = malloc (cap);
    ssize_t got;
    while ((got = read (drain->fd, drain->data + drain->size, cap - drain->size)) > 0) {
        drain->size += got;
        if (drain->size == cap)
            drain->data = realloc (drain->data, cap *= 2);
    }
    return NULL;
}

//  A snapshot streams through a pipe (as `zubectl backup` will carry it),
//  and the bytes restore another store.
static void
test_snapshot_through_a_pipe (void)
{
    char url[600], copy_url[600];
    snprintf (url, sizeof url, "lmdb:%s/source", s_dir);
    snprintf (copy_url, sizeof copy_url, "lmdb:%s/copy", s_dir);
    zube_store_t *store = s_open (url, NULL);
    for (int i = 0; i < 50; i++) {
        char key[64];
        snprintf (key, sizeof key, "/registry/pods/ns/p%02d", i);
        ZT_ASSERT_INT_EQ (zube_store_put (store, key, key, strlen (key), 0, NULL), ZUBE_OK);
    }
    int fds[2];
    ZT_ASSERT (pipe (fds) == 0);
    s_drain_t drain = {.fd = fds[0]};
    pthread_t reader;
    pthread_create (&reader, NULL, s_drain, &drain);
    zube_status_t status = zube_store_snapshot (store, fds[1]);
    close (fds[1]);
    pthread_join (reader, NULL);
    close (fds[0]);
    zube_store_close (&store);
    ZT_ASSERT_MSG (status == ZUBE_OK, "snapshot failed");
    ZT_ASSERT (drain.size > 0);

    zube_store_t *copy = s_open (copy_url, NULL);
    ZT_ASSERT (pipe (fds) == 0);
    ZT_ASSERT_INT_EQ (write (fds[1], drain.data, drain.size), drain.size);
    close (fds[1]);
    free (drain.data);
    status = zube_store_restore (copy, fds[0]);
    close (fds[0]);
    ZT_ASSERT_MSG (status == ZUBE_OK, "restore: %s", zube_store_error (copy));
    int64_t revision = 0;
    zube_store_revision (copy, &revision, NULL);
    ZT_ASSERT_INT_EQ (revision, 50);
    void *value = NULL;
    ZT_ASSERT_INT_EQ (zube_store_get (copy, "/registry/pods/ns/p49", &value, NULL, NULL), ZUBE_OK);
    ZT_ASSERT_STR_EQ ((char *) value, "/registry/pods/ns/p49");
    free (value);
    zube_store_close (&copy);
}

static void
test_invalid_keys (void)
{
    char url[600];
    snprintf (url, sizeof url, "lmdb:%s/keys", s_dir);
    zube_store_t *store = s_open (url, NULL);
    char long_key[600];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = 0;
    ZT_ASSERT_INT_EQ (zube_store_put (store, long_key, "x", 1, 0, NULL), ZUBE_BAD_REQUEST);
    ZT_ASSERT_INT_EQ (zube_store_get (store, long_key, NULL, NULL, NULL), ZUBE_BAD_REQUEST);
    ZT_ASSERT_INT_EQ (zube_store_get (store, "", NULL, NULL, NULL), ZUBE_BAD_REQUEST);
    ZT_ASSERT_INT_EQ (zube_store_events (store, -1, 0, NULL, NULL, NULL), ZUBE_BAD_REQUEST);
    int64_t revision = -1;
    zube_store_revision (store, &revision, NULL);
    ZT_ASSERT_INT_EQ (revision, 0);
    zube_store_close (&store);
}

int
main (void)
{
    s_plugins = zube_plugin_host_new ();
    s_dir = zt_tempdir ("lmdb");
    ZT_RUN (test_url_forms_and_default_directory);
    ZT_RUN (test_options);
    ZT_RUN (test_full_map_grows);
    ZT_RUN (test_preallocate);
    ZT_RUN (test_snapshot_through_a_pipe);
    ZT_RUN (test_invalid_keys);
    zube_plugin_host_destroy (&s_plugins);
    zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
