/*  apiserver_private - what the apiserver's files share: the server
    object, the kind table, the pending write and the event window.

    apiserver.c   the server: bus handlers, dispatch by method, errors, stats
    registry.c    the generic resource registry (every verb, every kind)
    writer.c      group commit of the pending writes
    watch.c       event log follower, window, watch, publisher lease
    backup.c      backup and restore through the store's snapshot */
#ifndef ZUBE_APISERVER_PRIVATE_H_INCLUDED
#define ZUBE_APISERVER_PRIVATE_H_INCLUDED

#include "api.pb-c.h"
#include "apiserver.h"
#include "authz.h"
#include "core.pb-c.h"
#include "meta.pb-c.h"
#include "strategy.h"
#include "zube/bus.h"
#include "zube/kinds.h"
#include "zube/plugin_host.h"
#include "zube/status.h"
#include "zube/store_client.h"
#include <czmq.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

//  Objects larger than this are refused (etcd's default request limit).
#define API_MAX_OBJECT_SIZE (1536 * 1024)
//  Events per watch reply.
#define API_WATCH_MAX_EVENTS 10000
//  Bytes a WatchEvent adds around its object and names (type, resource,
//  revision, field tags and lengths), counted against API_LIST_MAX_BYTES.
#define API_WATCH_EVENT_OVERHEAD 64
//  Bytes a list item adds around its object (tag and length).
#define API_LIST_ITEM_OVERHEAD 8
//  List replies stop short of the bus message limit (and say continue).
#define API_LIST_MAX_BYTES (3 * 1024 * 1024)
//  Writes per group commit.
#define API_BATCH_MAX 4096
//  Internal retries of a write that lost a race it did not ask for.
#define API_RETRIES 5
#define API_LEASE_KEY "/registry/zube/publisher-lease"
#define API_LEASE_RENEW_MS 1000
#define API_LEASE_EXPIRE_MS 5000
#define API_FOLLOW_MS 25
//  A parked watch is answered this long before its caller's deadline.
#define API_WATCH_MARGIN_MS 500
//  Watches waiting for an event at most; beyond, a watch is answered at
//  once (as without timeoutSeconds).
#define API_WATCH_PARKED_MAX 10000
//  BOOKMARK events on the bus, by default (Kubernetes sends them about
//  once a minute).
#define API_BOOKMARK_INTERVAL_MS 60000

typedef enum {
    API_VERB_CREATE = 0,
    API_VERB_GET,
    API_VERB_LIST,
    API_VERB_UPDATE,
    API_VERB_PATCH,
    API_VERB_DELETE,
    API_VERB_WATCH,
    API_VERB_BACKUP,
    API_VERB_RESTORE,
    API_VERB_STATS,
    API_VERB_COUNT
} api_verb_t;

//  What the apiserver needs of a kind, found once through its descriptor.
typedef struct {
    const zube_kind_t *kind;
    size_t resource_size;
    //  Offsets of the ObjectMeta *, spec and status pointers in the
    //  message (-1 when the kind has no such field) and metadata's
    //  field number (for the resourceVersion suffix).
    int metadata_offset;
    uint32_t metadata_id;
    int spec_offset;
    int status_offset;
    //  Offsets of the api_version and kind strings (-1: none).
    int api_version_offset;
    int kind_offset;
    //  The resource as Kubernetes names it in messages: "pods",
    //  "deployments.apps".
    char qualified[96];
    bool is_pod;
    bool is_namespace;
    //  Has the scale subresource (api_scale_supported)
    bool scalable;
    //  Last revision published on api/<resource>, as followed.
    int64_t topic_rv;
    //  Revision of the last BOOKMARK published there.
    int64_t bookmark_rv;
} api_kind_t;

typedef struct _api_pending_t api_pending_t;
typedef struct _api_watch_t api_watch_t;
typedef struct _api_backup_t api_backup_t;

//  One write waiting for the next group commit. The request stays
//  unpacked so a write that lost a race can be prepared again.
struct _api_pending_t {
    zube_bus_request_t *request;
    api_verb_t verb;
    const api_kind_t *kind;
    ProtobufCMessage *message; //  the unpacked bus request
    int attempts;
    //  The store operation.
    zube_store_op_type_t op;
    char key[320];
    uint8_t *value; //  owned, packed (no resourceVersion)
    size_t value_size;
    int64_t expect;
    //  Conflict is the answer (the client named a resourceVersion, or
    //  the key must be new); else a conflict retries.
    bool conflict_final;
    //  DELETE: the object as it was, answered with the delete's revision.
    uint8_t *reply;
    size_t reply_size;
    const char *name;
    //  Its key has a write queued or in flight: prepared again once the
    //  batch in flight is answered (api_writer_key_busy)
    bool wait;
    bool deferred;
    bool busy_key; //  its key is counted in busy_keys
    api_pending_t *next;
};

struct _zube_apiserver_t {
    zube_bus_t *bus;
    zube_plugin_host_t *plugins;
    zube_store_t *store;
    zube_authz_t *authz;
    char store_scheme[32];
    char instance[128];

    api_kind_t *kinds;
    size_t kind_count;

    //  Writer: the batch being gathered, retries for the next one, and a
    //  free list of pending slots.
    api_pending_t *pending;
    api_pending_t **pending_tail;
    size_t pending_count;
    api_pending_t *retry;
    api_pending_t *free_slots;
    zube_store_op_t *ops;
    zube_store_result_t *results;
    size_t ops_size;
    //  Writes waiting for their key (see api_pending_t.wait), and the
    //  keys of every write queued or in flight -> count
    api_pending_t *waiting;
    api_pending_t **waiting_tail;
    zhashx_t *busy_keys;
    //  The commit thread: it owns commit_store and commits the batch in
    //  flight while this thread gathers and prepares the next one.
    //  Everything below lock is shared with it.
    zube_store_t *commit_store;
    bool single_thread; //  --commit-thread off
    pthread_t committer;
    bool committer_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t done;
    bool submitted;
    bool completed;
    bool stopping;
    size_t inflight_count;
    zube_status_t commit_status;
    char commit_error[512];
    api_pending_t *inflight;
    //  Waits in a row for the batch in flight with nothing received
    //  meanwhile (bus thread only; writer.c).
    unsigned idle_waits;

    api_watch_t *watch;
    api_backup_t *backup;
    //  BOOKMARK events every this often (0: none).
    int64_t bookmark_interval_ms;

    //  Namespace name -> "Active" or "Terminating" (static strings),
    //  kept by the follower.
    zhashx_t *namespaces;

    //  Scratch buffers reused by every reply.
    uint8_t *scratch;
    size_t scratch_size;
    uint8_t *scratch2;
    size_t scratch2_size;

    //  Counters.
    uint64_t requests[API_VERB_COUNT];
    uint64_t errors;
    uint64_t batches;
    uint64_t batched_writes;
    uint64_t max_batch;
    uint64_t retries;
    //  Microseconds the store took over the group commits, in all (each
    //  txn_commit, durable when it returns), and over the last one (set
    //  by the thread that ran it, read once it is done).
    uint64_t commit_us;
    int64_t commit_took_us;
};

//  ---------------------------------------------------------------------
//  apiserver.c: kinds, errors, helpers

const api_kind_t *api_kind_by_resource (zube_apiserver_t *self, const char *resource);
//  The same for a request, answering NotFound itself when there is none.
const api_kind_t *api_registry_kind (zube_apiserver_t *self, zube_bus_request_t *request,
                                     const char *resource);
//  The kind whose resource is the key's second part ("/registry/pods/...").
const api_kind_t *api_kind_by_key (zube_apiserver_t *self, const char *key,
                                   size_t key_size);
Zube__ObjectMeta *api_meta (const api_kind_t *kind, const ProtobufCMessage *object);
//  The object's metadata, created if missing.
Zube__ObjectMeta *api_meta_ensure (const api_kind_t *kind, ProtobufCMessage *object);
ProtobufCMessage **api_field (const ProtobufCMessage *object, int offset);
//  Grows a scratch buffer to at least size; the buffer.
uint8_t *api_scratch (uint8_t **buffer, size_t *capacity, size_t size);
//  Writes the object bytes with resourceVersion rv appended as a second
//  metadata field (protobuf merges repeated message fields) into *out;
//  returns the size.
size_t api_with_rv (const api_kind_t *kind, const void *value, size_t size, int64_t rv,
                    uint8_t *out);
//  A revision (>= 0) in decimal into buf (>= 21 bytes); its length.
size_t api_format_rv (char *buf, int64_t rv);
//  Upper bound of what api_with_rv adds.
#define API_RV_SUFFIX_MAX 32
//  Answers an ObjectReply with the object value (stored form) at rv.
void api_reply_object (zube_apiserver_t *self, zube_bus_request_t *request,
                       const api_kind_t *kind, const void *value, size_t size,
                       int64_t rv);
//  Answers an ObjectReply holding object (packed, as handed out).
void api_reply_packed (zube_apiserver_t *self, zube_bus_request_t *request,
                       const char *kind_name, const char *api_version,
                       const uint8_t *object, size_t object_size, int64_t rv);
//  Answers a Kubernetes Status error. name may be NULL; causes only for
//  ZUBE_INVALID. message printf-style.
void api_reply_error (zube_apiserver_t *self, zube_bus_request_t *request,
                      zube_status_t status, const api_kind_t *kind, const char *name,
                      const zube_field_errors_t *causes, const char *format, ...)
    __attribute__ ((format (printf, 7, 8)));
//  Kubernetes' standard messages.
void api_reply_not_found (zube_apiserver_t *self, zube_bus_request_t *request,
                          const api_kind_t *kind, const char *name);
void api_reply_conflict (zube_apiserver_t *self, zube_bus_request_t *request,
                         const api_kind_t *kind, const char *name);
//  The authorization check; answers FORBIDDEN itself and returns false.
bool api_authorize (zube_apiserver_t *self, zube_bus_request_t *request, const char *verb,
                    const api_kind_t *kind, const char *subresource, const char *ns,
                    const char *name, const ProtobufCMessage *object,
                    const ProtobufCMessage *old);
int api_key (const api_kind_t *kind, const char *ns, const char *name, char *buf,
             size_t size);
//  RFC 3339 UTC timestamp of now + offset seconds into buf (>= 21 bytes).
void api_timestamp (char *buf, size_t size, int64_t offset_seconds);
//  A random UUID v4 into buf (>= 37 bytes); n random name characters.
void api_uuid (char *buf);
void api_random_suffix (char *buf, size_t n);
//  Sets a string field (frees the old value).
void api_set_string (char **field, const char *value);
//  Parses a resourceVersion ("" or NULL: 0); -1 when not a number.
int64_t api_parse_rv (const char *text);

//  ---------------------------------------------------------------------
//  registry.c: the verbs

void api_registry_create (zube_apiserver_t *self, zube_bus_request_t *request);
void api_registry_get (zube_apiserver_t *self, zube_bus_request_t *request);
void api_registry_list (zube_apiserver_t *self, zube_bus_request_t *request);
void api_registry_update (zube_apiserver_t *self, zube_bus_request_t *request);
void api_registry_patch (zube_apiserver_t *self, zube_bus_request_t *request);
void api_registry_delete (zube_apiserver_t *self, zube_bus_request_t *request);
//  Prepares (again) the store operation of a pending write. Returns true
//  when it was queued, false when it was answered (error, dry run, no-op).
bool api_registry_prepare (zube_apiserver_t *self, api_pending_t *pending);
//  Creates the default namespaces in an empty store.
int api_registry_bootstrap (zube_apiserver_t *self);

//  ---------------------------------------------------------------------
//  writer.c: group commit

//  The writer's state, without a commit thread.
void api_writer_init (zube_apiserver_t *self);
//  Opens the commit thread's own store handle and starts it; without it
//  (-1) every commit runs on the bus thread.
int api_writer_start (zube_apiserver_t *self, const char *store_url);
//  Waits for the batch in flight, answers it, stops the commit thread and
//  closes its store (before a restore, and at exit).
void api_writer_stop (zube_apiserver_t *self);
//  True when a batch is in flight; answers it first when its commit is
//  done, waiting up to wait_us for that.
bool api_writer_busy (zube_apiserver_t *self, int wait_us);
//  True (and pending->wait set) when pending's key has a write queued or
//  in flight: the caller answers nothing and returns false from prepare.
bool api_writer_key_busy (zube_apiserver_t *self, api_pending_t *pending);
//  Prepares pending and queues it, parks it (wait) or releases it.
void api_writer_submit (zube_apiserver_t *self, api_pending_t *pending);
api_pending_t *api_writer_slot (zube_apiserver_t *self);
void api_writer_release (zube_apiserver_t *self, api_pending_t *pending);
//  Queues a prepared write for the next commit.
void api_writer_queue (zube_apiserver_t *self, api_pending_t *pending);
//  Hands everything queued to the commit thread as one transaction when
//  it is idle (or, without one, commits and answers at once).
void api_writer_flush (zube_apiserver_t *self);
void api_writer_destroy (zube_apiserver_t *self);

//  ---------------------------------------------------------------------
//  watch.c: follower, window, watch, publisher

api_watch_t *api_watch_new (zube_apiserver_t *self, size_t window);
void api_watch_destroy (api_watch_t **watch_p);
//  Reads the store's event log up to its current revision into the
//  window, and publishes what the lease lets this instance publish.
void api_watch_follow (zube_apiserver_t *self);
//  Timers: follow every API_FOLLOW_MS, lease every second. Returns ms
//  until the next timer.
int api_watch_tick (zube_apiserver_t *self);
void api_watch_handle (zube_apiserver_t *self, zube_bus_request_t *request);
//  Gives the lease up (last published revision recorded) at shutdown.
void api_watch_release (zube_apiserver_t *self);
//  Starts over from the store's current revision (after a restore).
void api_watch_reset (zube_apiserver_t *self);
int64_t api_watch_revision (zube_apiserver_t *self);
bool api_watch_publisher (zube_apiserver_t *self);

//  ---------------------------------------------------------------------
//  scale.c: the scale subresource

//  True when kind's spec has replicas and a LabelSelector selector and
//  its status replicas (deployments, replicasets).
bool api_scale_supported (const api_kind_t *kind);
//  True when request is a get, update or patch of the scale subresource.
bool api_scale_wanted (zube_bus_request_t *request);
//  The Scale of object at rv (new, the caller frees it); -1: no memory.
int api_scale_of (const api_kind_t *kind, const ProtobufCMessage *object, int64_t rv,
                  Zube__Scale **scale_p);
//  Answers an ObjectReply holding the Scale of the stored object value.
void api_scale_reply (zube_apiserver_t *self, zube_bus_request_t *request,
                      const api_kind_t *kind, const void *value, size_t size, int64_t rv);
//  A copy of old with spec.replicas set (NULL: no memory).
ProtobufCMessage *api_scale_apply (const api_kind_t *kind, const ProtobufCMessage *old,
                                   int32_t replicas);

//  ---------------------------------------------------------------------
//  backup.c

api_backup_t *api_backup_new (void);
void api_backup_destroy (api_backup_t **backup_p);
void api_backup_handle (zube_apiserver_t *self, zube_bus_request_t *request);
void api_restore_handle (zube_apiserver_t *self, zube_bus_request_t *request);

#endif
