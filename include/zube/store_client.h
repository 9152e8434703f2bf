/*  zube_store_client - opens a store by URL and calls its backend.

    The host side of store plugins (zube/store.h), for the apiserver, the
    benchmark and the tests. The URL's scheme names the plugin: "lmdb" or
    "lmdb:DIR" loads lmdb.so, "redis://HOST:PORT[/DB]" redis.so,
    "etcd://HOST:PORT[,HOST:PORT...]" etcd.so. The plugin is loaded through
    the caller's zube_plugin_host_t (or found there, if already loaded) and
    held busy until the store is closed.

        zube_store_t *store = zube_store_open (plugins, "lmdb:/var/lib/zube",
                                               NULL, &error);
        int64_t revision;
        zube_status_t status = zube_store_put (store, "/registry/pods/ns/a",
                                               bytes, size, 0, &revision);
        zube_store_close (&store);

    Every call answers the backend's status; zube_store_error () has the
    text of the last failure. */
#ifndef ZUBE_STORE_CLIENT_H_INCLUDED
#define ZUBE_STORE_CLIENT_H_INCLUDED

#include "zube/plugin_host.h"
#include "zube/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zube_store_t zube_store_t;

//  The plugin name of URL ("lmdb:/x" -> "lmdb", "redis://h:1" -> "redis")
//  into name; -1 if URL has no valid scheme.
int zube_store_url_plugin (const char *url, char *name, size_t name_size);

//  Opens the store named by URL. options: NULL, or a NULL-terminated
//  "key=value" array passed to the backend. NULL on failure, with
//  *error_p (malloc'd) naming the URL and the cause.
zube_store_t *zube_store_open (zube_plugin_host_t *plugins, const char *url,
                               const char *const *options, char **error_p);
//  Closes the backend and releases the plugin; nulls *self_p.
void zube_store_close (zube_store_t **self_p);

const char *zube_store_url (zube_store_t *self);
//  The text of the last failure ("" if none).
const char *zube_store_error (zube_store_t *self);
//  The plugin behind the store.
zube_plugin_handle_t *zube_store_plugin (zube_store_t *self);

//  The key's value (malloc'd into *value_p, NUL-terminated beyond *size_p
//  for convenience; the caller frees) and mod revision; NOT_FOUND if absent.
//  value_p, size_p and mod_revision_p may each be NULL.
zube_status_t zube_store_get (zube_store_t *self, const char *key, void **value_p,
                              size_t *size_p, int64_t *mod_revision_p);
zube_status_t zube_store_range (zube_store_t *self, const zube_store_range_t *range,
                                zube_store_kv_fn *fn, void *arg,
                                zube_store_range_result_t *result);
//  Group commit: see zube_store_ops_t.txn_commit.
zube_status_t zube_store_txn_commit (zube_store_t *self, const zube_store_op_t *ops,
                                     size_t count, zube_store_result_t *results);
//  One conditional put, as a batch of one. On OK, *revision_p is the new
//  mod revision; on CONFLICT, the key's current one (0: absent).
zube_status_t zube_store_put (zube_store_t *self, const char *key, const void *value,
                              size_t value_size, int64_t expect_revision,
                              int64_t *revision_p);
//  One conditional delete, as a batch of one.
zube_status_t zube_store_delete (zube_store_t *self, const char *key,
                                 int64_t expect_revision, int64_t *revision_p);
zube_status_t zube_store_revision (zube_store_t *self, int64_t *revision_p,
                                   int64_t *compacted_p);
zube_status_t zube_store_events (zube_store_t *self, int64_t since, size_t limit,
                                 zube_store_event_fn *fn, void *arg,
                                 int64_t *revision_p);
zube_status_t zube_store_compact (zube_store_t *self, int64_t revision);
zube_status_t zube_store_snapshot (zube_store_t *self, int fd);
zube_status_t zube_store_restore (zube_store_t *self, int fd);
//  The same, to and from a file (written to PATH.tmp, synced, renamed).
zube_status_t zube_store_snapshot_file (zube_store_t *self, const char *path);
zube_status_t zube_store_restore_file (zube_store_t *self, const char *path);

//  "ADDED", "MODIFIED", "DELETED" (Kubernetes' watch event types).
const char *zube_store_event_type_name (zube_store_event_type_t type);

#ifdef __cplusplus
}
#endif
#endif
