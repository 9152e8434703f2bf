/*  zube_store - the store backend interface: the operation table of
    plugins of kind ZUBE_PLUGIN_STORE (DESIGN.md section 4).

    A store maps keys (`/registry/pods/<namespace>/<name>`, NUL-terminated
    strings) to opaque values (packed protobuf) and keeps one cluster-wide
    revision: a strictly increasing integer, starting at 1 for the first
    write. Every successful write (one put or one delete) takes the next
    revision, becomes the key's mod revision, and appends exactly one event
    to the store's event log. The apiserver uses the mod revision as the
    object's resourceVersion and the event log for watch.

    Writes go through txn_commit, which takes a batch of operations and
    commits all of them in ONE backend transaction (one fsync: group
    commit). Consecutive operations with the same nonzero `group` form a
    group that commits or fails as a whole; an operation with group 0 is a
    group by itself. Each operation has a compare on its key's current mod
    revision (0: the key must not exist; ZUBE_STORE_ANY_REVISION: no
    compare). A group whose compare fails does not stop the others: each
    operation gets its own result.

    Reads hand their data to a callback (zube_store_kv_fn); the memory is
    valid only during the call, so a backend can hand out its own pages.
    A backend object is used by one thread at a time.

    This header is part of the plugin SDK: types and the table only; the
    host side (loading a store by URL) is zube/store_client.h. */
#ifndef ZUBE_STORE_H_INCLUDED
#define ZUBE_STORE_H_INCLUDED

#include "zube/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

//  A backend's own state, opaque to the host.
typedef struct zube_store_backend_t zube_store_backend_t;

//  expect_revision for "write whatever the key's state".
#define ZUBE_STORE_ANY_REVISION ((int64_t) -1)

typedef enum {
    ZUBE_STORE_PUT = 1,
    ZUBE_STORE_DELETE = 2
} zube_store_op_type_t;

//  One write in a txn_commit batch.
typedef struct {
    zube_store_op_type_t type;
    const char *key;
    //  PUT only; value may be NULL when value_size is 0.
    const void *value;
    size_t value_size;
    //  The key's mod revision must equal this for the write to happen;
    //  0: the key must not exist; ZUBE_STORE_ANY_REVISION: no compare.
    int64_t expect_revision;
    //  0: this operation is a group by itself. Otherwise consecutive
    //  operations with the same value commit or fail together.
    uint32_t group;
} zube_store_op_t;

//  The outcome of one operation.
//  status: ZUBE_OK (written), ZUBE_CONFLICT (a compare in its group
//  failed), ZUBE_NOT_FOUND (its group deletes a key that does not exist),
//  ZUBE_BAD_REQUEST (its group has an invalid operation: empty or too long
//  key, unknown type). Every operation of a failed group carries the
//  group's status, so the caller sees at once which requests lost.
//  revision: when OK, the revision this write took (the key's new mod
//  revision); otherwise the key's mod revision before the batch (0: the
//  key does not exist), so the caller can tell which compare failed.
typedef struct {
    zube_status_t status;
    int64_t revision;
} zube_store_result_t;

//  A key and its value, as handed to a zube_store_kv_fn.
typedef struct {
    const char *key;
    size_t key_size;
    const void *value;
    size_t value_size;
    int64_t mod_revision;
} zube_store_kv_t;

typedef enum {
    ZUBE_STORE_EVENT_ADDED = 1,
    ZUBE_STORE_EVENT_MODIFIED = 2,
    ZUBE_STORE_EVENT_DELETED = 3
} zube_store_event_type_t;

//  One entry of the event log: exactly one per successful write.
typedef struct {
    zube_store_event_type_t type;
    //  The write's revision.
    int64_t revision;
    //  The key's mod revision before this write (0 for ADDED).
    int64_t prev_revision;
    const char *key;
    size_t key_size;
    //  ADDED, MODIFIED: the value written. DELETED: the last value the key
    //  had, as Kubernetes' DELETED watch event carries it.
    const void *value;
    size_t value_size;
} zube_store_event_t;

//  Called once per item; return 0 to go on, nonzero to stop early.
typedef int (zube_store_kv_fn) (void *arg, const zube_store_kv_t *kv);
typedef int (zube_store_event_fn) (void *arg, const zube_store_event_t *event);

//  A range read: keys that start with prefix, in byte order.
typedef struct {
    //  "" for every key.
    const char *prefix;
    //  Pagination: only keys strictly after this one (the last key of the
    //  previous page); NULL to start at the prefix.
    const char *after_key;
    //  At most this many keys; 0 for all.
    size_t limit;
} zube_store_range_t;

typedef struct {
    //  The store's revision at the moment of the read (the list's
    //  resourceVersion).
    int64_t revision;
    //  Keys in the prefix remain after the last one handed out.
    bool more;
    //  Keys handed to the callback.
    size_t count;
} zube_store_range_result_t;

//  ---------------------------------------------------------------------
//  The operation table. Every operation answers a zube_status_t; on a
//  failure other than the documented outcomes (OK, NOT_FOUND, CONFLICT,
//  GONE, ...) it answers ZUBE_UNAVAILABLE (the backend cannot be reached
//  or is out of space: retry later) or ZUBE_INTERNAL (a bug or a corrupt
//  store), and errmsg tells why. Tables grow only by appending.
typedef struct {
    //  sizeof (zube_store_ops_t) as the plugin was compiled.
    uint32_t struct_size;

    //  Opens the store named by url ("lmdb", "lmdb:DIR", "redis://...").
    //  options: NULL or a NULL-terminated array of "key=value" strings the
    //  backend understands; an unknown key is ZUBE_BAD_REQUEST. The new
    //  backend keeps host for logging and metrics. On failure, writes the
    //  reason into error and leaves *backend_p NULL.
    zube_status_t (*open) (const zube_host_t *host, const char *url,
                           const char *const *options,
                           zube_store_backend_t **backend_p,
                           char *error, size_t error_size);
    //  Closes the backend and nulls *backend_p. Everything acknowledged is
    //  already durable, so close only releases resources.
    void (*close) (zube_store_backend_t **backend_p);
    //  Text of the last failure of an operation on backend ("" if none).
    const char *(*errmsg) (zube_store_backend_t *backend);

    //  The key's value and mod revision, handed to fn once; NOT_FOUND if
    //  the key does not exist.
    zube_status_t (*get) (zube_store_backend_t *backend, const char *key,
                          zube_store_kv_fn *fn, void *arg);
    //  The keys of range->prefix in byte order, from one consistent read.
    zube_status_t (*range) (zube_store_backend_t *backend,
                            const zube_store_range_t *range,
                            zube_store_kv_fn *fn, void *arg,
                            zube_store_range_result_t *result);
    //  Commits ops[0..count) in one durable backend transaction, groups
    //  as described above, each op's compare seeing the effect of the ops
    //  before it in the batch. Fills results[0..count). Answers ZUBE_OK
    //  when the transaction committed (whatever the groups' outcomes),
    //  and only after it is durable; any other answer means nothing of the
    //  batch was written.
    zube_status_t (*txn_commit) (zube_store_backend_t *backend,
                                 const zube_store_op_t *ops, size_t count,
                                 zube_store_result_t *results);
    //  The current revision (0 in an empty store) and the revision the
    //  event log is compacted to (0 if never).
    zube_status_t (*revision) (zube_store_backend_t *backend,
                               int64_t *revision_p, int64_t *compacted_p);
    //  The events with revision > since, oldest first, at most limit of
    //  them (0: all). GONE if since < the compacted revision (events after
    //  it are no longer all there). *revision_p gets the store's revision
    //  at the read, so the caller knows whether it has caught up.
    zube_status_t (*events) (zube_store_backend_t *backend, int64_t since,
                             size_t limit, zube_store_event_fn *fn, void *arg,
                             int64_t *revision_p);
    //  Drops the events with revision <= revision. A revision at or below
    //  the compacted one is OK and does nothing; one above the current
    //  revision is BAD_REQUEST.
    zube_status_t (*compact) (zube_store_backend_t *backend, int64_t revision);
    //  Writes a consistent copy of the whole store (objects, events,
    //  revisions) to fd, in the backend's own format. fd may be a file or
    //  a pipe; it is not closed.
    zube_status_t (*snapshot) (zube_store_backend_t *backend, int fd);
    //  Replaces the whole store with a snapshot read from fd (until EOF).
    //  The snapshot is checked before anything is replaced: on failure the
    //  store is unchanged. Other users of the same store must be stopped.
    zube_status_t (*restore) (zube_store_backend_t *backend, int fd);
} zube_store_ops_t;

//  The ABI 1 table: the host refuses a store plugin whose table is smaller.
#define ZUBE_STORE_OPS_SIZE_V1 (offsetof (zube_store_ops_t, restore) + sizeof (void (*) (void)))

#ifdef __cplusplus
}
#endif
#endif
