/*  zube_controller - the controller plugin interface: the operation table of
    plugins of kind ZUBE_PLUGIN_CONTROLLER (DESIGN.md sections 1 and 5,
    docs/controllers.md, zube-controller-plugin(3)).

    A controller is Kubernetes' controller pattern as a plugin: it names the
    resources it watches, the host (zube-controller-manager) runs one shared
    informer per resource for all its controllers, calls the controller's
    event handlers for every change so they can enqueue keys, and calls sync
    for each key its work queue hands out. sync compares the desired state
    (read from the informer caches) with the actual one and writes the
    difference through the API; an error answer puts the key back with
    per-key exponential back-off.

        static const char *const s_watches[] = {"namespaces", "serviceaccounts", NULL};

        static void
        s_on_add (void *self, const char *resource, const ProtobufCMessage *object)
        {
            my_t *my = self;
            const Zube__ObjectMeta *meta = ((const Zube__Namespace *)object)->metadata;
            my->host->enqueue (my->host, strcmp (resource, "namespaces") == 0
                                             ? meta->name : meta->namespace_);
        }

        static zube_status_t
        s_sync (void *self, const char *key, char *error, size_t error_size)
        {
            my_t *my = self;
            if (!my->host->get (my->host, "namespaces", NULL, key))
                return ZUBE_OK;               //  gone: nothing to do
            ...
            return my->host->create (my->host, "serviceaccounts", key,
                                     &account.base, NULL, error, error_size);
        }

        static const zube_ctrl_ops_t s_ops = {
            .struct_size = sizeof (zube_ctrl_ops_t),
            .framework_name = "serviceaccount",
            .watches = s_watches,
            .create = s_create, .destroy = s_destroy,
            .on_add = s_on_add, .on_update = s_on_update, .on_delete = s_on_delete,
            .sync = s_sync,
        };
        ZUBE_PLUGIN_DEFINE (.name = "serviceaccount", .version = "0.1.0",
                            .kind = ZUBE_PLUGIN_CONTROLLER, .ops = &s_ops,
                            .description = "a default ServiceAccount per namespace")

    Objects. Objects cross the boundary as ProtobufCMessage * of zube's
    schema messages (core.pb-c.h, apps.pb-c.h, ...). A plugin never links
    libzube: it compiles in the generated code of the schemas it uses (as
    plugins/controllers/controllers.inc shows) and links libprotobuf-c.
    Objects from the caches are the host's: cast them to the struct of
    their kind (the layouts are the same generated code) and read them;
    never modify, free or keep them, and never compare their descriptor
    pointers with the plugin's own. Objects the plugin writes are built
    with its own generated code and stay its own; objects a write answers
    (created_p, ...) are unpacked with the descriptor of the object the
    plugin passed in and belong to the plugin
    (protobuf_c_message_free_unpacked (object, NULL)).

    Threads and lifetimes. Plugin code never runs concurrently: one lock
    per controller-manager is held while any handler, sync, create or
    destroy runs, so a controller needs no locks. Handlers run on the loop
    thread while an informer applies an event: they must only look and
    enqueue, never write. Syncs run on the controller's worker threads,
    `workers` of them (0: 1; --controller-arg NAME.workers=N overrides),
    each with its own connection to the apiserver. With more than one
    worker, the host releases the lock inside create, update, patch,
    delete_, get_live and any_live (the yield points): while the call
    waits, other syncs of this and other controllers run, and handlers
    may run and change the plugin's state, so state kept across a host
    call must be looked up again after it (never keep a pointer or an
    iterator into the plugin's own tables across one). A plugin that is
    not safe for that declares workers 1: the host then keeps the lock
    through its host calls, nothing runs beside its syncs, and a larger
    count is refused. An object from a cache read (get, list) stays valid
    until the sync (or the handler) that read it returns, across yield
    points too (the cache may hold a newer one by then). Everything else
    the host hands to an operation is valid for that call only. event
    never waits and is no yield point.

    Semantics the host guarantees, as Kubernetes' workqueue does: a key is
    queued at most once; a key added while its sync runs is synced again
    after that sync ends (never twice at once); keys are synced only while
    this controller-manager holds the leader lease, and only after every
    watched informer has synced its first list.

    ABI. Every struct here that begins with struct_size grows only by
    appending; a plugin checks ZUBE_CTRL_HAS () before calling a host
    function added later, and the host reads no operation past the
    plugin's ops struct_size. */
#ifndef ZUBE_CONTROLLER_H_INCLUDED
#define ZUBE_CONTROLLER_H_INCLUDED

#include "zube/plugin.h"
#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

//  At most this many resources per controller.
#define ZUBE_CTRL_MAX_WATCHES 16

//  Kubernetes' DefaultControllerRateLimiter (per key; the overall bucket
//  limiter of 10 qps / 100 burst is not applied).
#define ZUBE_CTRL_BACKOFF_BASE_MS 5
#define ZUBE_CTRL_BACKOFF_MAX_MS 1000000

//  The cache indexes list_index knows.
//  Pods by spec.nodeName ("" : pods bound to no node).
#define ZUBE_CTRL_INDEX_NODE_NAME "spec.nodeName"
//  Objects by the uid of any of their metadata.ownerReferences.
#define ZUBE_CTRL_INDEX_OWNER_UID "metadata.ownerReferences.uid"
//  Objects by the uid of their controller owner (controller: true) only.
#define ZUBE_CTRL_INDEX_CONTROLLER_UID "metadata.ownerReferences.controller.uid"

//  Event types (core/v1 Event.type).
#define ZUBE_CTRL_EVENT_NORMAL "Normal"
#define ZUBE_CTRL_EVENT_WARNING "Warning"

//  Options of a delete. Zero (or NULL) means: no preconditions, the
//  object's own grace period, the resource's default propagation.
typedef struct {
    uint32_t struct_size;
    //  Preconditions: delete only while the object has this uid and this
    //  resourceVersion (NULL: any). Conflict when they do not hold.
    const char *uid;
    const char *resource_version;
    //  NULL, "Orphan", "Background" or "Foreground".
    const char *propagation_policy;
    //  With has_grace_period: the grace period in seconds (0: now).
    bool has_grace_period;
    int64_t grace_period_seconds;
} zube_ctrl_delete_options_t;

typedef struct zube_ctrl_host_t zube_ctrl_host_t;

//  The host's function table of one controller instance, handed to create
//  and valid until destroy returns. Every function takes the table first.
//  Writes answer ZUBE_OK or the API's status (ZUBE_CONFLICT, ZUBE_NOT_FOUND,
//  ZUBE_ALREADY_EXISTS, ZUBE_INVALID, ZUBE_UNAVAILABLE, ...) with the
//  apiserver's message written into message (at most message_size bytes;
//  message may be NULL).
struct zube_ctrl_host_t {
    //  sizeof (zube_ctrl_host_t) as the host was compiled.
    uint32_t struct_size;
    //  The generic host table of zube/plugin.h: log, log_enabled,
    //  config_get (the controller's settings), counter_add, time_ms,
    //  monotonic_ns.
    const zube_host_t *base;
    //  The controller's name ("replicaset") and this controller-manager's
    //  identity (the Event source's host, the lease holder).
    const char *name;
    const char *identity;

    //  --- the informer caches (only of resources the controller watches;
    //  resource is spelled as in ops->watches).

    //  One object, NULL when absent (namespace NULL for cluster-scoped).
    const ProtobufCMessage *(*get) (const zube_ctrl_host_t *host, const char *resource,
                                    const char *namespace_, const char *name);
    //  By cache key "<namespace>/<name>" or "<name>".
    const ProtobufCMessage *(*get_by_key) (const zube_ctrl_host_t *host,
                                           const char *resource, const char *key);
    //  Lists answer a malloc'd array of *count_p pointers into the cache,
    //  sorted by key (free the array with host->free_list, not the
    //  objects); NULL with *count_p 0 when nothing matches.
    //  namespace_ NULL: every namespace. label_selector: Kubernetes'
    //  string syntax ("app=web,tier in (a,b)"), NULL: everything; a bad
    //  selector answers NULL with *count_p 0 and a warning logged.
    const ProtobufCMessage **(*list) (const zube_ctrl_host_t *host, const char *resource,
                                      const char *namespace_, const char *label_selector,
                                      size_t *count_p);
    //  The same with a LabelSelector message (const Zube__LabelSelector *,
    //  matchLabels and matchExpressions). As Kubernetes' controllers do, a
    //  NULL or empty selector matches nothing here (a ReplicaSet without a
    //  selector owns no pods).
    const ProtobufCMessage **(*list_selector) (const zube_ctrl_host_t *host,
                                               const char *resource,
                                               const char *namespace_,
                                               const ProtobufCMessage *label_selector,
                                               size_t *count_p);
    //  Through an index (ZUBE_CTRL_INDEX_*): the objects whose indexed
    //  field is value.
    const ProtobufCMessage **(*list_index) (const zube_ctrl_host_t *host,
                                            const char *resource, const char *index,
                                            const char *value, size_t *count_p);
    void (*free_list) (const zube_ctrl_host_t *host, const ProtobufCMessage **list);
    //  1 when the LabelSelector message matches the object's labels, 0 when
    //  not (a NULL or empty selector: 0), -1 when the selector is invalid.
    int (*selector_matches) (const zube_ctrl_host_t *host,
                             const ProtobufCMessage *label_selector,
                             const ProtobufCMessage *object);

    //  --- writes through the apiserver (synchronous, on the calling
    //  worker's own connection, identity system:kube-controller-manager;
    //  yield points with more than one worker, see Threads above).

    //  Creates object (its kind's message) in namespace_. *created_p (when
    //  created_p is not NULL and the answer is OK): the object as stored.
    zube_status_t (*create) (const zube_ctrl_host_t *host, const char *resource,
                             const char *namespace_, const ProtobufCMessage *object,
                             ProtobufCMessage **created_p, char *message,
                             size_t message_size);
    //  Replaces the object named by its metadata (resourceVersion, when set,
    //  must be current: else ZUBE_CONFLICT). subresource NULL: the object
    //  (status ignored); "status": status only; "scale": object is a Scale.
    zube_status_t (*update) (const zube_ctrl_host_t *host, const char *resource,
                             const ProtobufCMessage *object, const char *subresource,
                             ProtobufCMessage **updated_p, char *message,
                             size_t message_size);
    //  patch_type: NULL or "application/merge-patch+json",
    //  "application/strategic-merge-patch+json", "application/json-patch+json";
    //  patch is JSON text. reply_descriptor: the plugin's descriptor of the
    //  kind, to unpack *patched_p (both may be NULL).
    zube_status_t (*patch) (const zube_ctrl_host_t *host, const char *resource,
                            const char *namespace_, const char *name,
                            const char *subresource, const char *patch_type,
                            const char *patch,
                            const ProtobufCMessageDescriptor *reply_descriptor,
                            ProtobufCMessage **patched_p, char *message,
                            size_t message_size);
    //  options may be NULL.
    zube_status_t (*delete_) (const zube_ctrl_host_t *host, const char *resource,
                              const char *namespace_, const char *name,
                              const zube_ctrl_delete_options_t *options, char *message,
                              size_t message_size);

    //  --- Events, as Kubernetes' event recorder: an Event about object
    //  (any kind with metadata) of type ZUBE_CTRL_EVENT_NORMAL or _WARNING.
    //  The same (object, type, reason, message) again within 10 minutes
    //  bumps the count and lastTimestamp of one Event instead of making
    //  another. Written without waiting; a failure is logged, not answered.
    void (*event) (const zube_ctrl_host_t *host, const ProtobufCMessage *object,
                   const char *type, const char *reason, const char *format, ...)
        __attribute__ ((format (printf, 5, 6)));

    //  --- the controller's work queue.

    //  Adds key now (nothing when it is already queued).
    void (*enqueue) (const zube_ctrl_host_t *host, const char *key);
    //  Adds key after delay_ms (the earliest of several delays wins).
    void (*enqueue_after) (const zube_ctrl_host_t *host, const char *key,
                           int64_t delay_ms);
    //  Adds key after the key's back-off: 5 ms doubling per requeue up to
    //  1000 s (Kubernetes' ItemExponentialFailureRateLimiter).
    void (*enqueue_rate_limited) (const zube_ctrl_host_t *host, const char *key);
    //  Resets the key's back-off (the host does it after a sync answers OK).
    void (*forget) (const zube_ctrl_host_t *host, const char *key);
    //  How often the key was requeued rate-limited since it was forgotten.
    int (*requeues) (const zube_ctrl_host_t *host, const char *key);

    //  --- appended after ABI 1 (check with ZUBE_CTRL_HAS).

    //  One object read from the apiserver itself, not the cache, as
    //  Kubernetes' garbage collector confirms an owner is gone before it
    //  deletes dependents (the cache may lag). resource may be any kind
    //  the apiserver serves, watched or not. ZUBE_OK with *object_p (when
    //  object_p and descriptor are not NULL) unpacked with descriptor (the
    //  plugin's, of the kind), the plugin's to free; ZUBE_NOT_FOUND when
    //  absent.
    zube_status_t (*get_live) (const zube_ctrl_host_t *host, const char *resource,
                               const char *namespace_, const char *name,
                               const ProtobufCMessageDescriptor *descriptor,
                               ProtobufCMessage **object_p, char *message,
                               size_t message_size);
    //  Appended: whether the apiserver holds any object of resource in
    //  namespace_ (NULL: any namespace), read live with a list of one, not
    //  from the cache (which may lag). *any_p false and ZUBE_OK when there
    //  is none; another status, with message, when it cannot tell.
    zube_status_t (*any_live) (const zube_ctrl_host_t *host, const char *resource,
                               const char *namespace_, bool *any_p, char *message,
                               size_t message_size);
};

//  True when the host's table is new enough to have member.
#define ZUBE_CTRL_HAS(host, member)                                                      \
    ((host)->struct_size >=                                                              \
         offsetof (zube_ctrl_host_t, member) + sizeof ((host)->member) &&                \
     (host)->member != NULL)

typedef struct {
    //  sizeof (zube_ctrl_ops_t) as the plugin was compiled.
    uint32_t struct_size;
    //  Kubernetes' controller name, as --controllers names it
    //  ("replicaset", "deployment", "serviceaccount").
    const char *framework_name;
    //  The resources the controller watches, NULL-terminated, spelled as
    //  zube_kind_by_resource knows them ("pods", "replicasets.apps",
    //  "deployments"); at most ZUBE_CTRL_MAX_WATCHES. The first is the
    //  controller's primary resource (see on_add).
    const char *const *watches;
    //  Syncs it may run at once (0: 1), each on a worker thread; more
    //  than 1 only if the plugin is safe for syncs that interleave at
    //  host calls (see Threads above).
    uint32_t workers;

    //  A new instance (required), with the host table it keeps. NULL on
    //  failure, with error written (the load fails, a swap leaves the old
    //  instance running).
    void *(*create) (const zube_ctrl_host_t *host, char *error, size_t error_size);
    //  Frees the instance (required). No sync runs then.
    void (*destroy) (void *self);

    //  Event handlers, each may be NULL. A NULL handler of the primary
    //  resource enqueues the object's own key ("<namespace>/<name>" or
    //  "<name>"); a NULL handler of any other resource does nothing.
    //  After create (and after a swap) the host calls on_add for every
    //  object already cached, so a new instance resyncs everything.
    void (*on_add) (void *self, const char *resource, const ProtobufCMessage *object);
    void (*on_update) (void *self, const char *resource,
                       const ProtobufCMessage *old_object,
                       const ProtobufCMessage *new_object);
    //  object: the last state known.
    void (*on_delete) (void *self, const char *resource, const ProtobufCMessage *object);

    //  Brings the object named key to its desired state (required). ZUBE_OK:
    //  done (the key's back-off is forgotten). Anything else: the key is
    //  requeued rate-limited and error (when written) is logged.
    zube_status_t (*sync) (void *self, const char *key, char *error, size_t error_size);
} zube_ctrl_ops_t;

//  The ABI 1 table: the host refuses a controller plugin whose table is
//  smaller.
#define ZUBE_CTRL_OPS_SIZE_V1                                                            \
    (offsetof (zube_ctrl_ops_t, sync) + sizeof (void (*) (void)))

//  "<namespace>/<name>" or "<name>" of an object's metadata into buf;
//  the length, or -1 when it does not fit.
static inline int
zube_ctrl_key (const char *namespace_, const char *name, char *buf, size_t size)
{
    size_t length = 0;
    if (namespace_ && *namespace_) {
        for (const char *c = namespace_; *c; c++)
            if (length + 1 < size)
                buf[length++] = *c;
            else
                return -1;
        if (length + 1 >= size)
            return -1;
        buf[length++] = '/';
    }
    for (const char *c = name ? name : ""; *c; c++)
        if (length + 1 < size)
            buf[length++] = *c;
        else
            return -1;
    if (size == 0)
        return -1;
    buf[length] = 0;
    return (int)length;
}

//  Splits key into namespace_ (empty for cluster-scoped) and name, each at
//  most size bytes; -1 when a part does not fit.
static inline int
zube_ctrl_split_key (const char *key, char *namespace_, char *name, size_t size)
{
    const char *slash = key;
    while (*slash && *slash != '/')
        slash++;
    size_t ns_length = *slash ? (size_t)(slash - key) : 0;
    const char *rest = *slash ? slash + 1 : key;
    size_t name_length = 0;
    while (rest[name_length])
        name_length++;
    if (ns_length >= size || name_length >= size)
        return -1;
    for (size_t i = 0; i < ns_length; i++)
        namespace_[i] = key[i];
    namespace_[ns_length] = 0;
    for (size_t i = 0; i <= name_length; i++)
        name[i] = rest[i];
    return 0;
}

#ifdef __cplusplus
}
#endif
#endif
