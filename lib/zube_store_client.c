/*  zube_store_client - opens a store by URL and calls its backend.

    A thin layer over the plugin's operation table: it maps the URL to a
    plugin, keeps the plugin busy while the store is open, answers
    NOT_IMPLEMENTED for optional operations a plugin lacks, and keeps the
    text of the last failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "zube/store_client.h"

struct _zube_store_t {
    zube_plugin_handle_t *plugin;
    const zube_store_ops_t *ops;
    zube_store_backend_t *backend;
    char *url;
    char error[512];
};

int
zube_store_url_plugin (const char *url, char *name, size_t name_size)
{
    if (!url || !name || name_size == 0)
        return -1;
    size_t len = strcspn (url, ":");
    if (len == 0 || len >= name_size)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = url[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return -1;
    }
    memcpy (name, url, len);
    name[len] = 0;
    return 0;
}

zube_store_t *
zube_store_open (zube_plugin_host_t *plugins, const char *url,
                 const char *const *options, char **error_p)
{
    char name[65];
    if (zube_store_url_plugin (url, name, sizeof name) != 0) {
        if (error_p) {
            free (*error_p);
            if (asprintf (error_p, "store %s: not a store URL (expected lmdb[:DIR], "
                          "redis://HOST:PORT[/DB] or etcd://HOST:PORT[,...])",
                          url ? url : "(null)") < 0)
                *error_p = NULL;
        }
        return NULL;
    }
    zube_plugin_handle_t *plugin = zube_plugin_host_lookup (plugins, name);
    if (plugin && zube_plugin_handle_descriptor (plugin)->kind != ZUBE_PLUGIN_STORE)
        plugin = NULL;
    if (!plugin) {
        char *reason = NULL;
        plugin = zube_plugin_host_load (plugins, name, ZUBE_PLUGIN_STORE, &reason);
        if (!plugin) {
            if (error_p) {
                free (*error_p);
                if (asprintf (error_p, "store %s: %s", url, reason ? reason : "cannot load") < 0)
                    *error_p = NULL;
            }
            free (reason);
            return NULL;
        }
    }
    zube_store_t *self = calloc (1, sizeof *self);
    if (!self || !(self->url = strdup (url))) {
        free (self);
        if (error_p) {
            free (*error_p);
            *error_p = strdup ("store: out of memory");
        }
        return NULL;
    }
    self->plugin = plugin;
    self->ops = zube_plugin_handle_ops (plugin);
    char reason[512] = "";
    zube_status_t status = self->ops->open (zube_plugin_handle_host (plugin), url, options,
                                            &self->backend, reason, sizeof reason);
    if (status != ZUBE_OK || !self->backend) {
        reason[sizeof reason - 1] = 0;
        if (error_p) {
            free (*error_p);
            if (asprintf (error_p, "store %s: %s: %s", url, zube_status_reason (status),
                          reason[0] ? reason : "open failed") < 0)
                *error_p = NULL;
        }
        if (self->backend)
            self->ops->close (&self->backend);
        free (self->url);
        free (self);
        return NULL;
    }
    zube_plugin_handle_acquire (plugin);
    return self;
}

void
zube_store_close (zube_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_store_t *self = *self_p;
    self->ops->close (&self->backend);
    zube_plugin_handle_release (self->plugin);
    free (self->url);
    free (self);
    *self_p = NULL;
}

const char *
zube_store_url (zube_store_t *self)
{
    return self->url;
}

const char *
zube_store_error (zube_store_t *self)
{
    return self->error;
}

zube_plugin_handle_t *
zube_store_plugin (zube_store_t *self)
{
    return self->plugin;
}

//  Records the backend's text for a failed call; passes status through.
static zube_status_t
s_outcome (zube_store_t *self, zube_status_t status)
{
    if (status == ZUBE_OK)
        return status;
    const char *text = self->ops->errmsg (self->backend);
    snprintf (self->error, sizeof self->error, "%s", text && *text ? text
                                                     : zube_status_reason (status));
    return status;
}

static zube_status_t
s_not_implemented (zube_store_t *self, const char *operation)
{
    snprintf (self->error, sizeof self->error, "store %s: %s is not implemented by %s",
              self->url, operation, zube_plugin_handle_descriptor (self->plugin)->name);
    return ZUBE_NOT_IMPLEMENTED;
}

typedef struct {
    void *value;
    size_t size;
    int64_t mod_revision;
    bool out_of_memory;
} s_get_t;

static int
s_get_copy (void *arg, const zube_store_kv_t *kv)
{
    s_get_t *get = arg;
    get->value = malloc (kv->value_size + 1);
    if (!get->value) {
        get->out_of_memory = true;
        return 1;
    }
    if (kv->value_size)
        memcpy (get->value, kv->value, kv->value_size);
    ((char *) get->value)[kv->value_size] = 0;
    get->size = kv->value_size;
    get->mod_revision = kv->mod_revision;
    return 0;
}

zube_status_t
zube_store_get (zube_store_t *self, const char *key, void **value_p, size_t *size_p,
                int64_t *mod_revision_p)
{
    s_get_t get = {0};
    zube_status_t status = self->ops->get (self->backend, key, s_get_copy, &get);
    if (status == ZUBE_OK && get.out_of_memory) {
        snprintf (self->error, sizeof self->error, "store %s: out of memory", self->url);
        status = ZUBE_INTERNAL;
    }
    else
        s_outcome (self, status);
    if (status != ZUBE_OK) {
        free (get.value);
        get = (s_get_t) {0};
    }
    if (value_p)
        *value_p = get.value;
    else
        free (get.value);
    if (size_p)
        *size_p = get.size;
    if (mod_revision_p)
        *mod_revision_p = get.mod_revision;
    return status;
}

zube_status_t
zube_store_range (zube_store_t *self, const zube_store_range_t *range, zube_store_kv_fn *fn,
                  void *arg, zube_store_range_result_t *result)
{
    zube_store_range_result_t ignored;
    return s_outcome (self, self->ops->range (self->backend, range, fn, arg,
                                              result ? result : &ignored));
}

zube_status_t
zube_store_txn_commit (zube_store_t *self, const zube_store_op_t *ops, size_t count,
                       zube_store_result_t *results)
{
    return s_outcome (self, self->ops->txn_commit (self->backend, ops, count, results));
}

zube_status_t
zube_store_put (zube_store_t *self, const char *key, const void *value, size_t value_size,
                int64_t expect_revision, int64_t *revision_p)
{
    zube_store_op_t op = {.type = ZUBE_STORE_PUT,
                          .key = key,
                          .value = value,
                          .value_size = value_size,
                          .expect_revision = expect_revision};
    zube_store_result_t result = {0};
    zube_status_t status = zube_store_txn_commit (self, &op, 1, &result);
    if (status == ZUBE_OK)
        status = result.status;
    if (revision_p)
        *revision_p = result.revision;
    return status;
}

zube_status_t
zube_store_delete (zube_store_t *self, const char *key, int64_t expect_revision,
                   int64_t *revision_p)
{
    zube_store_op_t op = {
        .type = ZUBE_STORE_DELETE, .key = key, .expect_revision = expect_revision};
    zube_store_result_t result = {0};
    zube_status_t status = zube_store_txn_commit (self, &op, 1, &result);
    if (status == ZUBE_OK)
        status = result.status;
    if (revision_p)
        *revision_p = result.revision;
    return status;
}

zube_status_t
zube_store_revision (zube_store_t *self, int64_t *revision_p, int64_t *compacted_p)
{
    int64_t revision = 0, compacted = 0;
    zube_status_t status = self->ops->revision (self->backend, &revision, &compacted);
    if (revision_p)
        *revision_p = revision;
    if (compacted_p)
        *compacted_p = compacted;
    return s_outcome (self, status);
}

zube_status_t
zube_store_events (zube_store_t *self, int64_t since, size_t limit, zube_store_event_fn *fn,
                   void *arg, int64_t *revision_p)
{
    int64_t revision = 0;
    zube_status_t status = self->ops->events (self->backend, since, limit, fn, arg, &revision);
    if (revision_p)
        *revision_p = revision;
    return s_outcome (self, status);
}

zube_status_t
zube_store_compact (zube_store_t *self, int64_t revision)
{
    return s_outcome (self, self->ops->compact (self->backend, revision));
}

zube_status_t
zube_store_snapshot (zube_store_t *self, int fd)
{
    if (!self->ops->snapshot)
        return s_not_implemented (self, "snapshot");
    return s_outcome (self, self->ops->snapshot (self->backend, fd));
}

zube_status_t
zube_store_restore (zube_store_t *self, int fd)
{
    if (!self->ops->restore)
        return s_not_implemented (self, "restore");
    return s_outcome (self, self->ops->restore (self->backend, fd));
}

zube_status_t
zube_store_snapshot_file (zube_store_t *self, const char *path)
{
    char *tmp = NULL;
    if (asprintf (&tmp, "%s.tmp", path) < 0) {
        snprintf (self->error, sizeof self->error, "store %s: out of memory", self->url);
        return ZUBE_INTERNAL;
    }
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf (self->error, sizeof self->error, "snapshot %s: %s", tmp, strerror (errno));
        free (tmp);
        return ZUBE_UNAVAILABLE;
    }
    zube_status_t status = zube_store_snapshot (self, fd);
    if (status == ZUBE_OK && fsync (fd) != 0) {
        snprintf (self->error, sizeof self->error, "snapshot %s: fsync: %s", tmp,
                  strerror (errno));
        status = ZUBE_UNAVAILABLE;
    }
    if (close (fd) != 0 && status == ZUBE_OK) {
        snprintf (self->error, sizeof self->error, "snapshot %s: close: %s", tmp,
                  strerror (errno));
        status = ZUBE_UNAVAILABLE;
    }
    if (status == ZUBE_OK && rename (tmp, path) != 0) {
        snprintf (self->error, sizeof self->error, "snapshot %s: rename: %s", path,
                  strerror (errno));
        status = ZUBE_UNAVAILABLE;
    }
    if (status != ZUBE_OK)
        unlink (tmp);
    free (tmp);
    return status;
}

zube_status_t
zube_store_restore_file (zube_store_t *self, const char *path)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int code = errno;
        snprintf (self->error, sizeof self->error, "restore %s: %s", path, strerror (code));
        return code == ENOENT ? ZUBE_NOT_FOUND : ZUBE_UNAVAILABLE;
    }
    zube_status_t status = zube_store_restore (self, fd);
    close (fd);
    return status;
}

const char *
zube_store_event_type_name (zube_store_event_type_t type)
{
    switch (type) {
        case ZUBE_STORE_EVENT_ADDED:
            return "ADDED";
        case ZUBE_STORE_EVENT_MODIFIED:
            return "MODIFIED";
        case ZUBE_STORE_EVENT_DELETED:
            return "DELETED";
    }
    return "UNKNOWN";
}
