#define _GNU_SOURCE
/*  test_plugin_host - the plugin loader against the test plugins of
    tests/plugins/: a good one, and one broken in each way the loader must
    catch (wrong ABI, too small a descriptor, no descriptor symbol, failing
    init), each refused with an error naming the file and the cause. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include "zube/plugin_host.h"
#include "zube/runtime_client.h"
#include "zube/store_client.h"
#include "../zube_test.h"
//  zt_rmtree's snprintf into a fixed buffer trips -Wformat-truncation when
//  GCC inlines it here; the paths involved are short.
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zube_testproc.h"

//  ZT_ASSERT_STR_CONTAINS names its needle zt_n_, which ZT_FAIL's own
//  zt_n_ shadows, so it does not compile; this one does the same.
#define S_ASSERT_CONTAINS(haystack, needle)                                   \
    do {                                                                      \
        const char *s_h_ = (haystack), *s_needle_ = (needle);                 \
        if (!s_h_ || !strstr (s_h_, s_needle_))                               \
            ZT_FAIL ("%s == \"%s\" does not contain \"%s\"", #haystack,       \
                     s_h_ ? s_h_ : "(null)", s_needle_);                      \
    } while (0)

static char s_plugin_dir[512];

static zube_plugin_host_t *
s_loader (void)
{
    zube_plugin_host_t *loader = zube_plugin_host_new ();
    ZT_ASSERT (loader);
    zube_plugin_host_set_path (loader, s_plugin_dir);
    return loader;
}

//  Loads NAME as a store plugin, expecting failure; returns the error.
static char *
s_load_error (const char *name, zube_plugin_kind_t kind)
{
    zube_plugin_host_t *loader = s_loader ();
    char *error = NULL;
    zube_plugin_handle_t *handle = zube_plugin_host_load (loader, name, kind, &error);
    bool loaded = handle != NULL;
    size_t size = zube_plugin_host_size (loader);
    zube_plugin_host_destroy (&loader);
    ZT_ASSERT_MSG (!loaded, "%s loaded, expected a failure", name);
    ZT_ASSERT_INT_EQ (size, 0);
    ZT_ASSERT (error);
    return error;
}

static void
test_good_plugin_loads_and_inits (void)
{
    zube_plugin_host_t *loader = s_loader ();
    zube_plugin_host_set_config (loader, "zt_good", "answer", "42");
    char *error = NULL;
    zube_plugin_handle_t *handle =
        zube_plugin_host_load (loader, "zt_good", ZUBE_PLUGIN_STORE, &error);
    ZT_ASSERT_MSG (handle, "load failed: %s", error ? error : "?");
    const zube_plugin_t *descriptor = zube_plugin_handle_descriptor (handle);
    ZT_ASSERT_STR_EQ (descriptor->name, "zt_good");
    ZT_ASSERT_STR_EQ (descriptor->version, "1.0.0");
    ZT_ASSERT_INT_EQ (descriptor->kind, ZUBE_PLUGIN_STORE);
    ZT_ASSERT_INT_EQ (descriptor->abi_version, ZUBE_ABI_VERSION);
    S_ASSERT_CONTAINS (zube_plugin_handle_path (handle), "zt_good.so");
    ZT_ASSERT (zube_plugin_handle_ops (handle) == descriptor->ops);
    ZT_ASSERT_INT_EQ (zube_plugin_handle_counter (handle, "init_calls"), 1);
    ZT_ASSERT_INT_EQ (zube_plugin_handle_counter (handle, "answer_seen"), 1);
    ZT_ASSERT_INT_EQ (zube_plugin_handle_counter (handle, "clock_ok"), 1);
    ZT_ASSERT_INT_EQ (zube_plugin_handle_counter (handle, "never_raised"), 0);
    ZT_ASSERT (zube_plugin_host_lookup (loader, "zt_good") == handle);
    ZT_ASSERT (zube_plugin_host_lookup (loader, "zt_other") == NULL);
    ZT_ASSERT_INT_EQ (zube_plugin_host_size (loader), 1);

    //  The host table the plugin got: sized and versioned, config live.
    const zube_host_t *host = zube_plugin_handle_host (handle);
    ZT_ASSERT_INT_EQ (host->struct_size, sizeof (zube_host_t));
    ZT_ASSERT_INT_EQ (host->version, ZUBE_HOST_VERSION);
    ZT_ASSERT_STR_EQ (host->config_get (host, "answer"), "42");
    zube_plugin_host_set_config (loader, "zt_good", "answer", "43");
    ZT_ASSERT_STR_EQ (host->config_get (host, "answer"), "43");
    zube_plugin_host_set_config (loader, "zt_good", "answer", NULL);
    ZT_ASSERT (host->config_get (host, "answer") == NULL);
    zube_plugin_host_set_config (loader, "zt_other", "answer", "1");
    ZT_ASSERT (host->config_get (host, "answer") == NULL);
    host->counter_add (host, "hits", 2);
    host->counter_add (host, "hits", 3);
    ZT_ASSERT_INT_EQ (zube_plugin_handle_counter (handle, "hits"), 5);
    ZT_ASSERT (host->log_enabled (host, ZUBE_LOG_ERROR));

    ZT_ASSERT_INT_EQ (zube_plugin_host_unload (loader, &handle), 0);
    ZT_ASSERT (handle == NULL);
    ZT_ASSERT_INT_EQ (zube_plugin_host_size (loader), 0);
    zube_plugin_host_destroy (&loader);
    ZT_ASSERT (loader == NULL);
}

static void
test_unload_calls_fini (void)
{
    char *dir = zt_tempdir ("plugin");
    char marker[600];
    snprintf (marker, sizeof marker, "%s/fini", dir);
    zube_plugin_host_t *loader = s_loader ();
    zube_plugin_host_set_config (loader, "zt_good", "marker", marker);
    zube_plugin_handle_t *handle =
        zube_plugin_host_load (loader, "zt_good", ZUBE_PLUGIN_STORE, NULL);
    ZT_ASSERT (handle);
    ZT_ASSERT (access (marker, F_OK) != 0);
    ZT_ASSERT_INT_EQ (zube_plugin_host_unload (loader, &handle), 0);
    bool fini_ran = access (marker, F_OK) == 0;
    zube_plugin_host_destroy (&loader);
    zt_rmtree (dir);
    free (dir);
    ZT_ASSERT (fini_ran);
}

static void
test_destroy_unloads_everything (void)
{
    char *dir = zt_tempdir ("plugin");
    char marker[600];
    snprintf (marker, sizeof marker, "%s/fini", dir);
    zube_plugin_host_t *loader = s_loader ();
    zube_plugin_host_set_config (loader, "zt_good", "marker", marker);
    //  The same file twice: two instances, each with its own host table.
    zube_plugin_handle_t *first = zube_plugin_host_load (loader, "zt_good", ZUBE_PLUGIN_STORE, NULL);
    zube_plugin_handle_t *second = zube_plugin_host_load (loader, "zt_good", ZUBE_PLUGIN_STORE, NULL);
    ZT_ASSERT (first && second && first != second);
    ZT_ASSERT (zube_plugin_handle_host (first) != zube_plugin_handle_host (second));
    ZT_ASSERT (zube_plugin_host_lookup (loader, "zt_good") == second);
    ZT_ASSERT_INT_EQ (zube_plugin_host_size (loader), 2);
    zube_plugin_host_destroy (&loader);
    bool fini_ran = access (marker, F_OK) == 0;
    zt_rmtree (dir);
    free (dir);
    ZT_ASSERT (fini_ran);
}

static void
test_unload_refused_while_busy (void)
{
    zube_plugin_host_t *loader = s_loader ();
    zube_plugin_handle_t *handle =
        zube_plugin_host_load (loader, "zt_good", ZUBE_PLUGIN_STORE, NULL);
    ZT_ASSERT (handle);
    zube_plugin_handle_acquire (handle);
    errno = 0;
    ZT_ASSERT_INT_EQ (zube_plugin_host_unload (loader, &handle), -1);
    ZT_ASSERT_INT_EQ (errno, EBUSY);
    ZT_ASSERT (handle != NULL);
    ZT_ASSERT_INT_EQ (zube_plugin_host_size (loader), 1);
    zube_plugin_handle_release (handle);
    ZT_ASSERT_INT_EQ (zube_plugin_host_unload (loader, &handle), 0);
    zube_plugin_host_destroy (&loader);
}

static void
test_wrong_abi_version_refused (void)
{
    char *error = s_load_error ("zt_bad_abi", ZUBE_PLUGIN_STORE);
    char expected[128];
    snprintf (expected, sizeof expected, "abi_version: expected %d, found %d",
              ZUBE_ABI_VERSION, ZUBE_ABI_VERSION + 1);
    S_ASSERT_CONTAINS (error, "zt_bad_abi.so: descriptor ");
    S_ASSERT_CONTAINS (error, expected);
    free (error);
}

static void
test_too_small_descriptor_refused (void)
{
    char *error = s_load_error ("zt_small", ZUBE_PLUGIN_STORE);
    char expected[128];
    snprintf (expected, sizeof expected,
              "descriptor struct_size: expected at least %zu, found %zu",
              (size_t) ZUBE_PLUGIN_DESCRIPTOR_SIZE_V1, 2 * sizeof (uint32_t) + sizeof (char *));
    S_ASSERT_CONTAINS (error, "zt_small.so: ");
    S_ASSERT_CONTAINS (error, expected);
    free (error);
}

static void
test_missing_symbol_refused (void)
{
    char *error = s_load_error ("zt_no_symbol", ZUBE_PLUGIN_STORE);
    S_ASSERT_CONTAINS (error, "zt_no_symbol.so: missing symbol zube_plugin_descriptor");
    free (error);
}

static void
test_failing_init_refused (void)
{
    char *error = s_load_error ("zt_init_fails", ZUBE_PLUGIN_STORE);
    S_ASSERT_CONTAINS (error, "zt_init_fails.so: init failed: ");
    S_ASSERT_CONTAINS (error, "refusing to start: the test said so");
    free (error);
}

static void
test_wrong_kind_refused (void)
{
    char *error = s_load_error ("zt_good", ZUBE_PLUGIN_SCHEDULER);
    S_ASSERT_CONTAINS (error, "zt_good.so: descriptor kind: expected scheduler, found store");
    free (error);
}

static void
test_not_found_names_the_search_path (void)
{
    char *error = s_load_error ("zt_nowhere", ZUBE_PLUGIN_STORE);
    S_ASSERT_CONTAINS (error, "plugin zt_nowhere: zt_nowhere.so not found in ");
    S_ASSERT_CONTAINS (error, s_plugin_dir);
    free (error);
}

static void
test_invalid_name_refused (void)
{
    char *error = s_load_error ("Not A Name", ZUBE_PLUGIN_STORE);
    S_ASSERT_CONTAINS (error, "invalid name");
    free (error);
}

static void
test_not_a_shared_object_refused (void)
{
    char *dir = zt_tempdir ("plugin");
    char path[600];
    snprintf (path, sizeof path, "%s/garbage.so", dir);
    FILE *file = fopen (path, "w");
    ZT_ASSERT (file);
    fputs ("this is not an ELF file\n", file);
    fclose (file);
    zube_plugin_host_t *loader = zube_plugin_host_new ();
    zube_plugin_host_set_path (loader, dir);
    char *error = NULL;
    zube_plugin_handle_t *handle =
        zube_plugin_host_load (loader, "garbage", ZUBE_PLUGIN_STORE, &error);
    zube_plugin_host_destroy (&loader);
    zt_rmtree (dir);
    free (dir);
    ZT_ASSERT (!handle);
    S_ASSERT_CONTAINS (error, "garbage.so: cannot load: ");
    free (error);
}

static void
test_plugin_path_environment (void)
{
    setenv ("ZUBE_PLUGIN_PATH", s_plugin_dir, 1);
    zube_plugin_host_t *loader = zube_plugin_host_new ();
    char *error = NULL;
    char *path = zube_plugin_host_find (loader, "zt_good", &error);
    zube_plugin_handle_t *handle =
        zube_plugin_host_load (loader, "zt_good", ZUBE_PLUGIN_STORE, &error);
    bool loaded = handle != NULL;
    zube_plugin_host_destroy (&loader);
    unsetenv ("ZUBE_PLUGIN_PATH");
    ZT_ASSERT_MSG (loaded, "%s", error ? error : "?");
    S_ASSERT_CONTAINS (path, s_plugin_dir);
    free (path);
    free (error);
}

static void
test_load_by_file_path (void)
{
    zube_plugin_host_t *loader = s_loader ();
    char *path = zube_plugin_host_find (loader, "zt_good", NULL);
    zube_plugin_host_destroy (&loader);
    ZT_ASSERT (path);
    loader = zube_plugin_host_new ();
    zube_plugin_handle_t *handle = zube_plugin_host_load (loader, path, ZUBE_PLUGIN_STORE, NULL);
    bool loaded = handle != NULL;
    zube_plugin_host_destroy (&loader);
    free (path);
    ZT_ASSERT (loaded);
}

//  The checks on descriptors built in memory, for the cases no test
//  plugin covers.
static zube_status_t
s_stub_open (const zube_host_t *host, const char *url, const char *const *options,
             zube_store_backend_t **backend_p, char *error, size_t error_size)
{
    return ZUBE_NOT_IMPLEMENTED;
}

static void
test_check_descriptor_fields (void)
{
    zube_store_ops_t ops = {.struct_size = sizeof ops, .open = s_stub_open};
    zube_plugin_t descriptor = {.struct_size = sizeof descriptor,
                                .abi_version = ZUBE_ABI_VERSION,
                                .name = "mem",
                                .version = "1",
                                .kind = ZUBE_PLUGIN_STORE,
                                .ops = &ops};
    char error[512];
    ZT_ASSERT_INT_EQ (zube_plugin_check_descriptor (&descriptor, "mem.so", ZUBE_PLUGIN_STORE,
                                                    error, sizeof error), -1);
    ZT_ASSERT_STR_EQ (error, "mem.so: store ops close: expected a function, found NULL");

    ops.struct_size = 8;
    zube_plugin_check_descriptor (&descriptor, "mem.so", ZUBE_PLUGIN_STORE, error, sizeof error);
    S_ASSERT_CONTAINS (error, "mem.so: store ops struct_size: expected at least ");

    descriptor.ops = NULL;
    zube_plugin_check_descriptor (&descriptor, "mem.so", ZUBE_PLUGIN_STORE, error, sizeof error);
    ZT_ASSERT_STR_EQ (error, "mem.so: descriptor ops: expected a store operation table, found NULL");

    descriptor.kind = ZUBE_PLUGIN_KIND_NONE;
    zube_plugin_check_descriptor (&descriptor, "mem.so", ZUBE_PLUGIN_STORE, error, sizeof error);
    ZT_ASSERT_STR_EQ (error, "mem.so: descriptor kind: expected store, found 0");

    descriptor.kind = ZUBE_PLUGIN_STORE;
    descriptor.name = "../evil";
    zube_plugin_check_descriptor (&descriptor, "mem.so", ZUBE_PLUGIN_STORE, error, sizeof error);
    S_ASSERT_CONTAINS (error, "mem.so: descriptor name: expected [a-z0-9_-]+, found \"../evil\"");

    descriptor.name = "mem";
    descriptor.version = NULL;
    zube_plugin_check_descriptor (&descriptor, "mem.so", ZUBE_PLUGIN_STORE, error, sizeof error);
    ZT_ASSERT_STR_EQ (error, "mem.so: descriptor version: expected a string, found NULL");

    ZT_ASSERT_INT_EQ (zube_plugin_check_descriptor (NULL, "mem.so", ZUBE_PLUGIN_STORE, error,
                                                    sizeof error), -1);
    S_ASSERT_CONTAINS (error, "returned NULL");
    ZT_ASSERT_STR_EQ (zube_plugin_kind_name (ZUBE_PLUGIN_CONTROLLER), "controller");
    ZT_ASSERT_STR_EQ (zube_plugin_kind_name ((zube_plugin_kind_t) 99), "none");
}

//  A runtime table is checked like a store's: size first, then every
//  required operation by name; probe, logs and exec may be missing.
static zube_status_t
s_stub_runtime_open (const zube_host_t *host, const char *const *options,
                     zube_runtime_backend_t **backend_p, char *error, size_t error_size)
{
    *backend_p = NULL;
    snprintf (error, error_size, "stub runtime runs nothing");
    return ZUBE_UNAVAILABLE;
}

static void
s_stub_runtime_close (zube_runtime_backend_t **backend_p)
{
    *backend_p = NULL;
}

static const char *
s_stub_runtime_errmsg (zube_runtime_backend_t *backend)
{
    return "";
}

static void
test_check_runtime_descriptor (void)
{
    zube_runtime_ops_t ops = {.struct_size = sizeof ops,
                              .open = s_stub_runtime_open,
                              .close = s_stub_runtime_close,
                              .errmsg = s_stub_runtime_errmsg};
    zube_plugin_t descriptor = {.struct_size = sizeof descriptor,
                                .abi_version = ZUBE_ABI_VERSION,
                                .name = "rt",
                                .version = "1",
                                .kind = ZUBE_PLUGIN_RUNTIME,
                                .ops = &ops};
    char error[512];
    ZT_ASSERT_INT_EQ (zube_plugin_check_descriptor (&descriptor, "rt.so", ZUBE_PLUGIN_RUNTIME,
                                                    error, sizeof error), -1);
    ZT_ASSERT_STR_EQ (error, "rt.so: runtime ops run_sandbox: expected a function, found NULL");

    //  Every required operation present (any function will do for the
    //  check), the optional ones absent: accepted.
    void (*any) (void) = (void (*) (void)) s_stub_runtime_close;
    void (**slot) (void) = (void (**) (void)) &ops.run_sandbox;
    void (**end) (void) = (void (**) (void)) &ops.probe;
    for (; slot < end; slot++)
        *slot = any;
    ZT_ASSERT_INT_EQ (zube_plugin_check_descriptor (&descriptor, "rt.so", ZUBE_PLUGIN_RUNTIME,
                                                    error, sizeof error), 0);

    ops.tick = NULL;
    zube_plugin_check_descriptor (&descriptor, "rt.so", ZUBE_PLUGIN_RUNTIME, error, sizeof error);
    ZT_ASSERT_STR_EQ (error, "rt.so: runtime ops tick: expected a function, found NULL");

    ops.struct_size = offsetof (zube_runtime_ops_t, probe);
    zube_plugin_check_descriptor (&descriptor, "rt.so", ZUBE_PLUGIN_RUNTIME, error, sizeof error);
    S_ASSERT_CONTAINS (error, "rt.so: runtime ops struct_size: expected at least ");

    //  A runtime where a store is asked for: the kind is named.
    zube_plugin_check_descriptor (&descriptor, "rt.so", ZUBE_PLUGIN_STORE, error, sizeof error);
    ZT_ASSERT_STR_EQ (error, "rt.so: descriptor kind: expected store, found runtime");
}

//  A store plugin asked for as a runtime is refused by kind, and the
//  runtime client names the runtime in its error.
static void
test_runtime_open_wrong_kind (void)
{
    zube_plugin_host_t *loader = s_loader ();
    char *error = NULL;
    zube_runtime_t *runtime = zube_runtime_open (loader, "zt_good", NULL, &error);
    bool opened = runtime != NULL;
    zube_runtime_close (&runtime);
    zube_plugin_host_destroy (&loader);
    ZT_ASSERT (!opened);
    ZT_ASSERT (error);
    S_ASSERT_CONTAINS (error, "runtime zt_good: ");
    S_ASSERT_CONTAINS (error, "descriptor kind: expected runtime, found store");
    free (error);
}

//  The store client reports a backend's open failure with the URL and text.
static void
test_store_open_reports_backend_error (void)
{
    zube_plugin_host_t *loader = s_loader ();
    char *error = NULL;
    zube_store_t *store = zube_store_open (loader, "zt_good:somewhere", NULL, &error);
    ZT_ASSERT (!store);
    char expected[256];
    snprintf (expected, sizeof expected, "store zt_good:somewhere: %s: zt_good:somewhere stores nothing",
              zube_status_reason (ZUBE_NOT_IMPLEMENTED));
    S_ASSERT_CONTAINS (error, expected);
    zube_plugin_handle_t *handle = zube_plugin_host_lookup (loader, "zt_good");
    ZT_ASSERT (handle);
    ZT_ASSERT_INT_EQ (zube_plugin_handle_counter (handle, "open_calls"), 1);
    //  Not kept busy by a store that never opened.
    ZT_ASSERT_INT_EQ (zube_plugin_host_unload (loader, &handle), 0);
    free (error);
    error = NULL;
    ZT_ASSERT (!zube_store_open (loader, "Bad Scheme://x", NULL, &error));
    S_ASSERT_CONTAINS (error, "not a store URL");
    free (error);
    error = NULL;
    ZT_ASSERT (!zube_store_open (loader, "zt_nowhere:x", NULL, &error));
    S_ASSERT_CONTAINS (error, "store zt_nowhere:x: plugin zt_nowhere: zt_nowhere.so not found");
    free (error);
    zube_plugin_host_destroy (&loader);

    char name[16];
    ZT_ASSERT_INT_EQ (zube_store_url_plugin ("lmdb", name, sizeof name), 0);
    ZT_ASSERT_STR_EQ (name, "lmdb");
    ZT_ASSERT_INT_EQ (zube_store_url_plugin ("lmdb:/var/lib/zube", name, sizeof name), 0);
    ZT_ASSERT_STR_EQ (name, "lmdb");
    ZT_ASSERT_INT_EQ (zube_store_url_plugin ("redis://127.0.0.1:6379/2", name, sizeof name), 0);
    ZT_ASSERT_STR_EQ (name, "redis");
    ZT_ASSERT_INT_EQ (zube_store_url_plugin ("etcd://a:1,b:2", name, sizeof name), 0);
    ZT_ASSERT_STR_EQ (name, "etcd");
    ZT_ASSERT_INT_EQ (zube_store_url_plugin (":x", name, sizeof name), -1);
    ZT_ASSERT_INT_EQ (zube_store_url_plugin ("../x:y", name, sizeof name), -1);
}

int
main (void)
{
    const char *builddir = getenv ("ZUBE_BUILDDIR");
    snprintf (s_plugin_dir, sizeof s_plugin_dir, "%s/tests/plugins", builddir ? builddir : ".");
    unsetenv ("ZUBE_PLUGIN_PATH");
    ZT_RUN (test_good_plugin_loads_and_inits);
    ZT_RUN (test_unload_calls_fini);
    ZT_RUN (test_destroy_unloads_everything);
    ZT_RUN (test_unload_refused_while_busy);
    ZT_RUN (test_wrong_abi_version_refused);
    ZT_RUN (test_too_small_descriptor_refused);
    ZT_RUN (test_missing_symbol_refused);
    ZT_RUN (test_failing_init_refused);
    ZT_RUN (test_wrong_kind_refused);
    ZT_RUN (test_not_found_names_the_search_path);
    ZT_RUN (test_invalid_name_refused);
    ZT_RUN (test_not_a_shared_object_refused);
    ZT_RUN (test_plugin_path_environment);
    ZT_RUN (test_load_by_file_path);
    ZT_RUN (test_check_descriptor_fields);
    ZT_RUN (test_store_open_reports_backend_error);
    ZT_RUN (test_check_runtime_descriptor);
    ZT_RUN (test_runtime_open_wrong_kind);
    return zt_done ();
}
