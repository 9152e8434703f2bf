/*  zube_runtime_client - opens a container runtime plugin and calls it.

    A thin layer over the plugin's operation table, shaped like
    zube_store_client: it loads the plugin by name, keeps it busy while the
    runtime is open, answers for the optional operations a plugin lacks
    (probe, logs, exec, the image store), and keeps the text of the last failure. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zube/runtime_client.h"

struct _zube_runtime_t {
    zube_plugin_handle_t *plugin;
    const zube_runtime_ops_t *ops;
    zube_runtime_backend_t *backend;
    char error[512];
};

static void
s_set_open_error (char **error_p, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_set_open_error (char **error_p, const char *format, ...)
{
    if (!error_p)
        return;
    va_list args;
    va_start (args, format);
    char *text = NULL;
    if (vasprintf (&text, format, args) < 0)
        text = NULL;
    va_end (args);
    free (*error_p);
    *error_p = text;
}

zube_runtime_t *
zube_runtime_open_host (zube_plugin_host_t *plugins, const char *name,
                        const zube_host_t *host, const char *const *options, char **error_p)
{
    if (!plugins || !name) {
        s_set_open_error (error_p, "runtime %s: no plugin host or name",
                          name ? name : "(null)");
        return NULL;
    }
    zube_plugin_handle_t *plugin = zube_plugin_host_lookup (plugins, name);
    if (plugin && zube_plugin_handle_descriptor (plugin)->kind != ZUBE_PLUGIN_RUNTIME)
        plugin = NULL;
    if (!plugin) {
        char *reason = NULL;
        plugin = zube_plugin_host_load (plugins, name, ZUBE_PLUGIN_RUNTIME, &reason);
        if (!plugin) {
            s_set_open_error (error_p, "runtime %s: %s", name, reason ? reason : "cannot load");
            free (reason);
            return NULL;
        }
    }
    zube_runtime_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_set_open_error (error_p, "runtime %s: out of memory", name);
        return NULL;
    }
    self->plugin = plugin;
    self->ops = zube_plugin_handle_ops (plugin);
    char reason[512] = "";
    zube_status_t status =
        self->ops->open (host ? host : zube_plugin_handle_host (plugin), options,
                         &self->backend, reason, sizeof reason);
    if (status != ZUBE_OK || !self->backend) {
        reason[sizeof reason - 1] = 0;
        s_set_open_error (error_p, "runtime %s: %s: %s", name, zube_status_reason (status),
                          reason[0] ? reason : "open failed");
        if (self->backend)
            self->ops->close (&self->backend);
        free (self);
        return NULL;
    }
    zube_plugin_handle_acquire (plugin);
    return self;
}

zube_runtime_t *
zube_runtime_open (zube_plugin_host_t *plugins, const char *name,
                   const char *const *options, char **error_p)
{
    return zube_runtime_open_host (plugins, name, NULL, options, error_p);
}

void
zube_runtime_close (zube_runtime_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_runtime_t *self = *self_p;
    self->ops->close (&self->backend);
    zube_plugin_handle_release (self->plugin);
    free (self);
    *self_p = NULL;
}

const char *
zube_runtime_name (zube_runtime_t *self)
{
    return zube_plugin_handle_descriptor (self->plugin)->name;
}

const char *
zube_runtime_error (zube_runtime_t *self)
{
    return self->error;
}

zube_plugin_handle_t *
zube_runtime_plugin (zube_runtime_t *self)
{
    return self->plugin;
}

//  Records the backend's text for a failed call; passes status through.
static zube_status_t
s_outcome (zube_runtime_t *self, zube_status_t status)
{
    if (status == ZUBE_OK)
        return status;
    const char *text = self->ops->errmsg (self->backend);
    snprintf (self->error, sizeof self->error, "%s",
              text && *text ? text : zube_status_reason (status));
    return status;
}

//  True when the plugin's table is long enough to hold MEMBER and has it.
#define S_HAS_OP(self, member)                                                \
    ((self)->ops->struct_size >= offsetof (zube_runtime_ops_t, member)       \
                                     + sizeof ((self)->ops->member)           \
     && (self)->ops->member != NULL)

static zube_status_t
s_missing (zube_runtime_t *self, zube_status_t status, const char *operation)
{
    snprintf (self->error, sizeof self->error, "runtime %s: %s is not implemented",
              zube_runtime_name (self), operation);
    return status;
}

zube_status_t
zube_runtime_run_sandbox (zube_runtime_t *self, const zube_runtime_sandbox_config_t *config,
                          char *id, size_t id_size)
{
    return s_outcome (self, self->ops->run_sandbox (self->backend, config, id, id_size));
}

zube_status_t
zube_runtime_stop_sandbox (zube_runtime_t *self, const char *id, int64_t grace_ms)
{
    return s_outcome (self, self->ops->stop_sandbox (self->backend, id, grace_ms));
}

zube_status_t
zube_runtime_remove_sandbox (zube_runtime_t *self, const char *id)
{
    return s_outcome (self, self->ops->remove_sandbox (self->backend, id));
}

zube_status_t
zube_runtime_sandbox_status (zube_runtime_t *self, const char *id,
                             zube_runtime_sandbox_status_t *status)
{
    return s_outcome (self, self->ops->sandbox_status (self->backend, id, status));
}

zube_status_t
zube_runtime_list_sandboxes (zube_runtime_t *self, const char *node_name,
                             zube_runtime_sandbox_fn *fn, void *arg)
{
    return s_outcome (self, self->ops->list_sandboxes (self->backend, node_name, fn, arg));
}

zube_status_t
zube_runtime_create_container (zube_runtime_t *self, const char *sandbox_id,
                               const zube_runtime_container_config_t *config, char *id,
                               size_t id_size)
{
    return s_outcome (self, self->ops->create_container (self->backend, sandbox_id, config,
                                                         id, id_size));
}

zube_status_t
zube_runtime_start_container (zube_runtime_t *self, const char *id)
{
    return s_outcome (self, self->ops->start_container (self->backend, id));
}

zube_status_t
zube_runtime_stop_container (zube_runtime_t *self, const char *id, int64_t grace_ms)
{
    return s_outcome (self, self->ops->stop_container (self->backend, id, grace_ms));
}

zube_status_t
zube_runtime_remove_container (zube_runtime_t *self, const char *id)
{
    return s_outcome (self, self->ops->remove_container (self->backend, id));
}

zube_status_t
zube_runtime_container_status (zube_runtime_t *self, const char *id,
                               zube_runtime_container_status_t *status)
{
    return s_outcome (self, self->ops->container_status (self->backend, id, status));
}

zube_status_t
zube_runtime_list_containers (zube_runtime_t *self, const char *sandbox_id,
                              zube_runtime_container_fn *fn, void *arg)
{
    return s_outcome (self, self->ops->list_containers (self->backend, sandbox_id, fn, arg));
}

static void
s_ignore_event (void *arg, const zube_runtime_event_t *event)
{
    (void) arg;
    (void) event;
}

int64_t
zube_runtime_tick (zube_runtime_t *self, zube_runtime_event_fn *fn, void *arg)
{
    return self->ops->tick (self->backend, fn ? fn : s_ignore_event, arg);
}

zube_status_t
zube_runtime_probe (zube_runtime_t *self, const char *container_id,
                    zube_runtime_probe_kind_t kind, int64_t timeout_ms, bool *success_p,
                    char *message, size_t message_size)
{
    bool success = false;
    char ignored[8];
    if (!message || message_size == 0) {
        message = ignored;
        message_size = sizeof ignored;
    }
    message[0] = 0;
    zube_status_t status;
    if (!S_HAS_OP (self, probe))
        status = s_missing (self, ZUBE_UNAVAILABLE, "probe");
    else
        status = s_outcome (self, self->ops->probe (self->backend, container_id, kind,
                                                    timeout_ms, &success, message,
                                                    message_size));
    if (success_p)
        *success_p = status == ZUBE_OK && success;
    return status;
}

zube_status_t
zube_runtime_logs (zube_runtime_t *self, const char *container_id,
                   const zube_runtime_logs_options_t *options, zube_runtime_output_fn *fn,
                   void *arg)
{
    if (!S_HAS_OP (self, logs))
        return s_missing (self, ZUBE_NOT_IMPLEMENTED, "logs");
    zube_runtime_logs_options_t all = {.struct_size = sizeof all, .tail_lines = -1};
    return s_outcome (self, self->ops->logs (self->backend, container_id,
                                             options ? options : &all, fn, arg));
}

zube_status_t
zube_runtime_exec (zube_runtime_t *self, const char *container_id, const char *const *argv,
                   const void *stdin_data, size_t stdin_size, int64_t timeout_ms,
                   zube_runtime_output_fn *fn, void *arg, int *exit_code_p)
{
    if (!S_HAS_OP (self, exec))
        return s_missing (self, ZUBE_NOT_IMPLEMENTED, "exec");
    int exit_code = -1;
    zube_status_t status =
        s_outcome (self, self->ops->exec (self->backend, container_id, argv, stdin_data,
                                          stdin_size, timeout_ms, fn, arg, &exit_code));
    if (exit_code_p)
        *exit_code_p = exit_code;
    return status;
}

zube_status_t
zube_runtime_image_import (zube_runtime_t *self, const char *path, char *ref, size_t ref_size)
{
    if (!S_HAS_OP (self, image_import))
        return s_missing (self, ZUBE_NOT_IMPLEMENTED, "image_import");
    return s_outcome (self, self->ops->image_import (self->backend, path, ref, ref_size));
}

zube_status_t
zube_runtime_image_list (zube_runtime_t *self, zube_runtime_image_fn *fn, void *arg)
{
    if (!S_HAS_OP (self, image_list))
        return s_missing (self, ZUBE_NOT_IMPLEMENTED, "image_list");
    return s_outcome (self, self->ops->image_list (self->backend, fn, arg));
}

zube_status_t
zube_runtime_exec_start (zube_runtime_t *self, const char *container_id,
                         const zube_runtime_exec_config_t *config, zube_runtime_exec_io_t *io,
                         char *session, size_t session_size)
{
    if (!S_HAS_OP (self, exec_start))
        return s_missing (self, ZUBE_NOT_IMPLEMENTED, "exec_start");
    return s_outcome (self, self->ops->exec_start (self->backend, container_id, config, io,
                                                   session, session_size));
}

zube_status_t
zube_runtime_exec_resize (zube_runtime_t *self, const char *session, uint16_t columns,
                          uint16_t rows)
{
    if (!S_HAS_OP (self, exec_resize))
        return s_missing (self, ZUBE_NOT_IMPLEMENTED, "exec_resize");
    return s_outcome (self, self->ops->exec_resize (self->backend, session, columns, rows));
}

zube_status_t
zube_runtime_exec_wait (zube_runtime_t *self, const char *session, bool *exited_p,
                        int *exit_code_p)
{
    if (!S_HAS_OP (self, exec_wait))
        return s_missing (self, ZUBE_NOT_IMPLEMENTED, "exec_wait");
    return s_outcome (self, self->ops->exec_wait (self->backend, session, exited_p, exit_code_p));
}

zube_status_t
zube_runtime_exec_close (zube_runtime_t *self, const char *session)
{
    if (!S_HAS_OP (self, exec_close))
        return s_missing (self, ZUBE_NOT_IMPLEMENTED, "exec_close");
    return s_outcome (self, self->ops->exec_close (self->backend, session));
}

const char *
zube_runtime_container_state_name (zube_runtime_container_state_t state)
{
    switch (state) {
        case ZUBE_RUNTIME_CONTAINER_CREATED:
            return "CREATED";
        case ZUBE_RUNTIME_CONTAINER_RUNNING:
            return "RUNNING";
        case ZUBE_RUNTIME_CONTAINER_EXITED:
            return "EXITED";
        case ZUBE_RUNTIME_CONTAINER_UNKNOWN:
            break;
    }
    return "UNKNOWN";
}

const char *
zube_runtime_sandbox_state_name (zube_runtime_sandbox_state_t state)
{
    return state == ZUBE_RUNTIME_SANDBOX_READY ? "READY" : "NOTREADY";
}

const char *
zube_runtime_probe_kind_name (zube_runtime_probe_kind_t kind)
{
    switch (kind) {
        case ZUBE_RUNTIME_PROBE_LIVENESS:
            return "liveness";
        case ZUBE_RUNTIME_PROBE_READINESS:
            return "readiness";
        case ZUBE_RUNTIME_PROBE_STARTUP:
            return "startup";
    }
    return "unknown";
}
