/*  zube_runtime_client - opens a container runtime plugin and calls it.

    The host side of runtime plugins (zube/runtime.h), for the zubelet and
    the tests. The plugin is loaded by name ("sim" loads sim.so, "oci"
    oci.so) through the caller's zube_plugin_host_t (or found there, if
    already loaded) and held busy until the runtime is closed.

        zube_runtime_t *runtime = zube_runtime_open (plugins, "sim",
            (const char *[]) {"state_dir=/var/lib/zubelet", NULL}, &error);
        char id[ZUBE_RUNTIME_ID_MAX];
        zube_status_t status = zube_runtime_run_sandbox (runtime, &config,
                                                         id, sizeof id);
        int64_t next_ms = zube_runtime_tick (runtime, on_event, self);
        zube_runtime_close (&runtime);

    Every call answers the backend's status; zube_runtime_error () has the
    text of the last failure. Like the backend, a zube_runtime_t is used by
    one thread at a time. */
#ifndef ZUBE_RUNTIME_CLIENT_H_INCLUDED
#define ZUBE_RUNTIME_CLIENT_H_INCLUDED

#include "zube/plugin_host.h"
#include "zube/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zube_runtime_t zube_runtime_t;

//  Opens the runtime plugin NAME. options: NULL, or a NULL-terminated
//  "key=value" array passed to the backend (state_dir=DIR, ...). NULL on
//  failure, with *error_p (malloc'd) naming the runtime and the cause.
zube_runtime_t *zube_runtime_open (zube_plugin_host_t *plugins, const char *name,
                                   const char *const *options, char **error_p);
//  The same, but the backend is handed HOST instead of the plugin's own
//  host table: a mock host (a fake clock, counters the test reads), as
//  collectd's plugin tests do. The plugin is still loaded and checked by
//  PLUGINS; HOST must outlive the runtime.
zube_runtime_t *zube_runtime_open_host (zube_plugin_host_t *plugins, const char *name,
                                        const zube_host_t *host,
                                        const char *const *options, char **error_p);
//  Closes the backend (what it runs keeps running: adoption) and releases
//  the plugin; nulls *self_p.
void zube_runtime_close (zube_runtime_t **self_p);

//  The plugin's name ("sim").
const char *zube_runtime_name (zube_runtime_t *self);
//  The text of the last failure ("" if none).
const char *zube_runtime_error (zube_runtime_t *self);
//  The plugin behind the runtime.
zube_plugin_handle_t *zube_runtime_plugin (zube_runtime_t *self);

//  The operations of zube_runtime_ops_t, one for one.
zube_status_t zube_runtime_run_sandbox (zube_runtime_t *self,
                                        const zube_runtime_sandbox_config_t *config, char *id,
                                        size_t id_size);
zube_status_t zube_runtime_stop_sandbox (zube_runtime_t *self, const char *id, int64_t grace_ms);
zube_status_t zube_runtime_remove_sandbox (zube_runtime_t *self, const char *id);
zube_status_t zube_runtime_sandbox_status (zube_runtime_t *self, const char *id,
                                           zube_runtime_sandbox_status_t *status);
//  node_name NULL: every sandbox.
zube_status_t zube_runtime_list_sandboxes (zube_runtime_t *self, const char *node_name,
                                           zube_runtime_sandbox_fn *fn, void *arg);
zube_status_t zube_runtime_create_container (zube_runtime_t *self, const char *sandbox_id,
                                             const zube_runtime_container_config_t *config,
                                             char *id, size_t id_size);
zube_status_t zube_runtime_start_container (zube_runtime_t *self, const char *id);
zube_status_t zube_runtime_stop_container (zube_runtime_t *self, const char *id,
                                           int64_t grace_ms);
zube_status_t zube_runtime_remove_container (zube_runtime_t *self, const char *id);
zube_status_t zube_runtime_container_status (zube_runtime_t *self, const char *id,
                                             zube_runtime_container_status_t *status);
//  sandbox_id NULL: every container.
zube_status_t zube_runtime_list_containers (zube_runtime_t *self, const char *sandbox_id,
                                            zube_runtime_container_fn *fn, void *arg);
//  What changed since the last tick, through fn (may be NULL); answers in
//  how many milliseconds the runtime wants the next tick (-1: none due).
int64_t zube_runtime_tick (zube_runtime_t *self, zube_runtime_event_fn *fn, void *arg);
//  UNAVAILABLE when the plugin runs no probes (the host runs them then).
zube_status_t zube_runtime_probe (zube_runtime_t *self, const char *container_id,
                                  zube_runtime_probe_kind_t kind, int64_t timeout_ms,
                                  bool *success_p, char *message, size_t message_size);
//  options may be NULL (every line of the current instance). NOT_IMPLEMENTED
//  when the plugin has no logs.
zube_status_t zube_runtime_logs (zube_runtime_t *self, const char *container_id,
                                 const zube_runtime_logs_options_t *options,
                                 zube_runtime_output_fn *fn, void *arg);
//  NOT_IMPLEMENTED when the plugin has no exec.
zube_status_t zube_runtime_exec (zube_runtime_t *self, const char *container_id,
                                 const char *const *argv, const void *stdin_data,
                                 size_t stdin_size, int64_t timeout_ms,
                                 zube_runtime_output_fn *fn, void *arg, int *exit_code_p);
//  NOT_IMPLEMENTED when the plugin has no image store (sim).
zube_status_t zube_runtime_image_import (zube_runtime_t *self, const char *path, char *ref,
                                         size_t ref_size);
zube_status_t zube_runtime_image_list (zube_runtime_t *self, zube_runtime_image_fn *fn,
                                       void *arg);
//  Interactive exec sessions; NOT_IMPLEMENTED when the plugin has none
//  (sim).
zube_status_t zube_runtime_exec_start (zube_runtime_t *self, const char *container_id,
                                       const zube_runtime_exec_config_t *config,
                                       zube_runtime_exec_io_t *io, char *session,
                                       size_t session_size);
zube_status_t zube_runtime_exec_resize (zube_runtime_t *self, const char *session,
                                        uint16_t columns, uint16_t rows);
zube_status_t zube_runtime_exec_wait (zube_runtime_t *self, const char *session,
                                      bool *exited_p, int *exit_code_p);
zube_status_t zube_runtime_exec_close (zube_runtime_t *self, const char *session);

//  "CREATED", "RUNNING", "EXITED", "UNKNOWN" (CRI's names without the
//  CONTAINER_ prefix); "READY", "NOTREADY" for sandboxes.
const char *zube_runtime_container_state_name (zube_runtime_container_state_t state);
const char *zube_runtime_sandbox_state_name (zube_runtime_sandbox_state_t state);
//  "liveness", "readiness", "startup".
const char *zube_runtime_probe_kind_name (zube_runtime_probe_kind_t kind);

#ifdef __cplusplus
}
#endif
#endif
