/*  zt_plugin - tiny plugins for the loader's tests (tests/unit/test_plugin_host.c).

    One source, built five times with a different ZT_VARIANT: a good store
    plugin, and four broken ones, each of which the loader must refuse with
    its own error. Like every plugin, it links nothing of libzube. */
#include <stdio.h>
#include <string.h>
#include "zube/store.h"

#define ZT_GOOD 1
#define ZT_BAD_ABI 2
#define ZT_SMALL 3
#define ZT_NO_SYMBOL 4
#define ZT_INIT_FAILS 5

#ifndef ZT_VARIANT
#error "build with -DZT_VARIANT=ZT_..."
#endif

static zube_status_t
s_open (const zube_host_t *host, const char *url, const char *const *options,
        zube_store_backend_t **backend_p, char *error, size_t error_size)
{
    host->counter_add (host, "open_calls", 1);
    snprintf (error, error_size, "%s stores nothing", url);
    *backend_p = NULL;
    return ZUBE_NOT_IMPLEMENTED;
}

static void
s_close (zube_store_backend_t **backend_p)
{
    *backend_p = NULL;
}

static const char *
s_errmsg (zube_store_backend_t *backend)
{
    return "not implemented";
}

static zube_status_t
s_get (zube_store_backend_t *backend, const char *key, zube_store_kv_fn *fn, void *arg)
{
    return ZUBE_NOT_IMPLEMENTED;
}

static zube_status_t
s_range (zube_store_backend_t *backend, const zube_store_range_t *range,
         zube_store_kv_fn *fn, void *arg, zube_store_range_result_t *result)
{
    return ZUBE_NOT_IMPLEMENTED;
}

static zube_status_t
s_txn_commit (zube_store_backend_t *backend, const zube_store_op_t *ops, size_t count,
              zube_store_result_t *results)
{
    return ZUBE_NOT_IMPLEMENTED;
}

static zube_status_t
s_revision (zube_store_backend_t *backend, int64_t *revision_p, int64_t *compacted_p)
{
    return ZUBE_NOT_IMPLEMENTED;
}

static zube_status_t
s_events (zube_store_backend_t *backend, int64_t since, size_t limit,
          zube_store_event_fn *fn, void *arg, int64_t *revision_p)
{
    return ZUBE_NOT_IMPLEMENTED;
}

static zube_status_t
s_compact (zube_store_backend_t *backend, int64_t revision)
{
    return ZUBE_NOT_IMPLEMENTED;
}

//  Unused by the variants whose descriptor is broken before it.
__attribute__ ((unused)) static const zube_store_ops_t s_ops = {
    .struct_size = sizeof (zube_store_ops_t),
    .open = s_open,
    .close = s_close,
    .errmsg = s_errmsg,
    .get = s_get,
    .range = s_range,
    .txn_commit = s_txn_commit,
    .revision = s_revision,
    .events = s_events,
    .compact = s_compact,
};

//  Reads its configuration and counts, so the test sees the host table work.
__attribute__ ((unused)) static zube_plugin_rc_t
s_init (const zube_host_t *host, char *error, size_t error_size)
{
    if (ZT_VARIANT == ZT_INIT_FAILS) {
        snprintf (error, error_size, "refusing to start: the test said so");
        return ZUBE_PLUGIN_ERROR;
    }
    if (!ZUBE_HOST_HAS (host, monotonic_ns)) {
        snprintf (error, error_size, "host table too old");
        return ZUBE_PLUGIN_ERROR;
    }
    host->counter_add (host, "init_calls", 1);
    const char *answer = host->config_get (host, "answer");
    if (answer && strcmp (answer, "42") == 0)
        host->counter_add (host, "answer_seen", 1);
    if (host->time_ms (host) > 0 && host->monotonic_ns (host) > 0)
        host->counter_add (host, "clock_ok", 1);
    if (host->log_enabled (host, ZUBE_LOG_DEBUG))
        host->log (host, ZUBE_LOG_DEBUG, "msg=\"zt plugin initialised\"");
    return ZUBE_PLUGIN_OK;
}

//  Leaves a marker file where the test says, so it can see fini ran.
__attribute__ ((unused)) static void
s_fini (const zube_host_t *host)
{
    const char *marker = host->config_get (host, "marker");
    if (marker) {
        FILE *file = fopen (marker, "w");
        if (file) {
            fputs ("fini\n", file);
            fclose (file);
        }
    }
}

#if ZT_VARIANT == ZT_GOOD || ZT_VARIANT == ZT_INIT_FAILS
ZUBE_PLUGIN_DEFINE (.name = ZT_NAME, .version = "1.0.0", .kind = ZUBE_PLUGIN_STORE,
                    .description = "loader test plugin", .ops = &s_ops, .init = s_init,
                    .fini = s_fini)

#elif ZT_VARIANT == ZT_BAD_ABI
//  Built for a future ABI.
const zube_plugin_t *
zube_plugin_descriptor (void)
{
    static const zube_plugin_t descriptor = {
        .struct_size = sizeof (zube_plugin_t), .abi_version = ZUBE_ABI_VERSION + 1,
        .name = ZT_NAME, .version = "1.0.0", .kind = ZUBE_PLUGIN_STORE, .ops = &s_ops,
        .init = s_init, .fini = s_fini};
    return &descriptor;
}

#elif ZT_VARIANT == ZT_SMALL
//  Built against a header whose descriptor ended after the name.
typedef struct {
    uint32_t struct_size;
    uint32_t abi_version;
    const char *name;
} zt_old_descriptor_t;

const zube_plugin_t *
zube_plugin_descriptor (void)
{
    static const zt_old_descriptor_t descriptor = {
        .struct_size = sizeof (zt_old_descriptor_t), .abi_version = ZUBE_ABI_VERSION,
        .name = ZT_NAME};
    return (const zube_plugin_t *) &descriptor;
}

#elif ZT_VARIANT == ZT_NO_SYMBOL
//  Exports a function, but not the one the loader looks for.
__attribute__ ((visibility ("default"))) const zube_plugin_t *
zube_plugin_describe (void)
{
    return NULL;
}
#endif
