/*  zube_plugin - the plugin ABI: one header for every kind of plugin.

    A plugin is a shared object that exports exactly one symbol,

        const zube_plugin_t *zube_plugin_descriptor (void);

    a function returning the address of a const descriptor: its size, the
    ABI version it was built for, name, version, kind and the operation
    table of its kind. The host dlopens the file (RTLD_NOW | RTLD_LOCAL),
    calls that function, checks the descriptor field by field, and only
    then calls init with the host's function table (zube_host_t).

        static const zube_store_ops_t s_ops = {
            .struct_size = sizeof (zube_store_ops_t),
            .open = s_open,
            ...
        };
        ZUBE_PLUGIN_DEFINE (
            .name = "lmdb",
            .version = "0.1.0",
            .kind = ZUBE_PLUGIN_STORE,
            .description = "embedded store on LMDB",
            .ops = &s_ops,
            .init = s_init)

    Rules (docs/plugins.md says the same at greater length):

    - Plugins never link against libzube. Everything they may ask of the
      host is in the zube_host_t table they are handed; the headers they
      include give them types, enums and macros only. Build a plugin with
      -Wl,--no-undefined and `pkg-config --cflags zube-plugin`.
    - Every struct shared across the boundary begins with its own size,
      and grows only by appending fields at the end. Nothing is removed,
      reordered or retyped while ZUBE_ABI_VERSION stays the same; a
      change that is not an append bumps ZUBE_ABI_VERSION, and the host
      refuses plugins built for another ABI.
    - A reader checks the size before touching an appended field: the host
      checks each plugin struct_size, a plugin checks host->struct_size
      with ZUBE_HOST_HAS () before calling a function the host gained later.
    - zube_plugin_descriptor runs before any check, so it must do nothing
      but return the address of a const object. No ELF constructors with
      side effects either: they run at dlopen, before the checks.
    - A plugin keeps no mutable global state. Everything it owns hangs off
      the objects its operations create, each of which is handed the host
      table it was created with. So one file can be loaded twice (as a
      hot swap to the same version does) without the copies meeting.
    - Operations do not block the host's loop longer than their work
      requires, never call exit or abort on a runtime error, and report
      failures as status codes with a text (see each kind's table).
    - Everything a plugin allocated is freed by the plugin; memory handed
      to a callback is valid only during that call.
    - Durable state lives in the host's API objects or the plugin's
      backend, never only in plugin memory: a swap or restart loses it.
*/
#ifndef ZUBE_PLUGIN_H_INCLUDED
#define ZUBE_PLUGIN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "zube/version.h"
#include "zube/log.h"
#include "zube/status.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The exported symbol's name, as the loader looks it up.
#define ZUBE_PLUGIN_DESCRIPTOR_SYMBOL "zube_plugin_descriptor"

//  Kinds of plugin. Each kind has its own operation table in its own
//  header (store.h now; scheduler, controller, runtime and cloud later).
//  Zero is no kind, so a zeroed descriptor is refused.
typedef enum {
    ZUBE_PLUGIN_KIND_NONE = 0,
    ZUBE_PLUGIN_STORE = 1,
    ZUBE_PLUGIN_SCHEDULER = 2,
    ZUBE_PLUGIN_CONTROLLER = 3,
    ZUBE_PLUGIN_RUNTIME = 4,
    ZUBE_PLUGIN_CLOUD = 5,
    ZUBE_PLUGIN_KIND_COUNT
} zube_plugin_kind_t;

//  What a plugin's generic hooks answer (init; later kinds' handlers that
//  may pass a request on). DECLINED from init means "not for this host":
//  the load fails without it being an error of the plugin.
typedef enum {
    ZUBE_PLUGIN_OK = 0,
    ZUBE_PLUGIN_DECLINED = 1,
    ZUBE_PLUGIN_ERROR = -1
} zube_plugin_rc_t;

//  ---------------------------------------------------------------------
//  The host's function table, handed to the plugin at init and to every
//  object the plugin creates. Every function takes the table itself first,
//  so the host knows which plugin is calling. Version 1 is below; later
//  versions append functions (informer caches, bus calls, timers, ...)
//  and bump ZUBE_HOST_VERSION.

#define ZUBE_HOST_VERSION 1

typedef struct zube_host_t zube_host_t;
struct zube_host_t {
    //  sizeof (zube_host_t) as the host was compiled; see ZUBE_HOST_HAS.
    uint32_t struct_size;
    //  ZUBE_HOST_VERSION as the host was compiled.
    uint32_t version;

    //  One log line, key=value, as zube_log () writes it; the host adds
    //  plugin=<name>. The format should be "msg=\"...\" key=value ...".
    void (*log) (const zube_host_t *host, zube_log_level_t level,
                 const char *format, ...) __attribute__ ((format (printf, 3, 4)));
    //  True when a line at this level would be written (skip costly
    //  formatting otherwise).
    bool (*log_enabled) (const zube_host_t *host, zube_log_level_t level);

    //  The value of KEY in this plugin's configuration, or NULL when it is
    //  not set. The string belongs to the host; copy it to keep it.
    const char *(*config_get) (const zube_host_t *host, const char *key);

    //  Adds DELTA to the counter NAME (Prometheus style, e.g.
    //  "store_txn_total"); the host labels it with the plugin's name.
    //  Safe to call from any thread.
    void (*counter_add) (const zube_host_t *host, const char *name, uint64_t delta);

    //  Wall-clock time in milliseconds since the Unix epoch.
    int64_t (*time_ms) (const zube_host_t *host);
    //  Monotonic time in nanoseconds, for durations.
    int64_t (*monotonic_ns) (const zube_host_t *host);
};

//  True when the host's table is new enough to have MEMBER.
#define ZUBE_HOST_HAS(host, member)                                           \
    ((host)->struct_size >= offsetof (zube_host_t, member) + sizeof ((host)->member) \
     && (host)->member != NULL)

//  ---------------------------------------------------------------------
//  The descriptor.

typedef struct zube_plugin_t zube_plugin_t;
struct zube_plugin_t {
    //  sizeof (zube_plugin_t) as the plugin was compiled.
    uint32_t struct_size;
    //  ZUBE_ABI_VERSION as the plugin was compiled.
    uint32_t abi_version;
    //  Short name, [a-z0-9_-]+; the file is NAME.so.
    const char *name;
    //  The plugin's own version, free text ("0.1.0").
    const char *version;
    zube_plugin_kind_t kind;
    //  One line for `zubectl plugin list`.
    const char *description;
    //  The kind's operation table (const zube_store_ops_t * for a store).
    //  Every operation table begins with uint32_t struct_size.
    const void *ops;
    //  Called once after the checks, before any operation; NULL if there
    //  is nothing to do. On failure, write the reason into error (at most
    //  error_size bytes) and answer ZUBE_PLUGIN_ERROR or DECLINED; the
    //  host then unloads the plugin without calling fini.
    zube_plugin_rc_t (*init) (const zube_host_t *host, char *error, size_t error_size);
    //  Called once before dlclose, after every object the plugin created
    //  is gone; NULL if there is nothing to do.
    void (*fini) (const zube_host_t *host);
};

//  The size of the descriptor at ABI 1: the host reads no field past it
//  unless struct_size says the plugin has it.
#define ZUBE_PLUGIN_DESCRIPTOR_SIZE_V1 (offsetof (zube_plugin_t, fini) + sizeof (void (*) (void)))

//  The one symbol a plugin exports.
__attribute__ ((visibility ("default"))) const zube_plugin_t *zube_plugin_descriptor (void);

//  Defines zube_plugin_descriptor with struct_size and abi_version filled
//  in; the arguments are the rest of the designated initializers.
#define ZUBE_PLUGIN_DEFINE(...)                                               \
    const zube_plugin_t *zube_plugin_descriptor (void)                        \
    {                                                                         \
        static const zube_plugin_t s_zube_plugin_descriptor = {               \
            .struct_size = sizeof (zube_plugin_t),                            \
            .abi_version = ZUBE_ABI_VERSION,                                  \
            __VA_ARGS__};                                                     \
        return &s_zube_plugin_descriptor;                                     \
    }

#ifdef __cplusplus
}
#endif
#endif
