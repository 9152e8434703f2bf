/*  manager - zube-controller-manager's core: the controller plugins, one
    shared informer per watched resource (with owner-uid indexes beside
    it), a work queue per controller, the host function table the plugins
    call, Kubernetes' event recorder, and the bus service "controllers".

    Threads (docs/controllers.md, Threads). The loop thread runs the
    informers' connection (events, requests to the service) and the
    leader election; each controller has `workers` worker threads that
    sync its queued keys while this instance leads. One lock per manager
    (the big lock) serialises all plugin code and every touch of the
    caches and queues: the loop waits on its sockets without it and takes
    it to apply informer events (the informer's guard hook) and to serve;
    a worker holds it while it runs plugin code. A controller with more
    than one worker releases it inside the host calls that talk to the
    apiserver (create, update, patch, delete_, get_live, any_live), each
    worker on a connection of its own, so other syncs and informer events
    run meanwhile; cached objects its sync read stay valid, because
    objects the caches let go of wait in a graveyard until every sync
    that started before is over. A controller with one worker keeps the
    lock through its host calls: nothing runs beside its sync, as before
    (plugins not checked for interleaving stay safe). */
#define _GNU_SOURCE
#include "api.pb-c.h"
#include "core.pb-c.h"
#include "zcm.h"
#include "zube.pb-c.h"
#include "zube/api.h"
#include "zube/informer.h"
#include "zube/kinds.h"
#include "zube/leader.h"
#include "zube/log.h"
#include "zube/plugin_host.h"
#include "zube/selector.h"
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  An idle worker wakes this often to keep its connection's heartbeats
#define S_WORKER_IDLE_MS 1000
//  Event aggregation: entries kept, and how long a repeat is aggregated
#define S_EVENT_CACHE_MAX 4096
#define S_EVENT_WINDOW_MS (10 * 60 * 1000)

typedef struct _s_informer_t s_informer_t;
typedef struct _s_ctrl_t s_ctrl_t;

struct _s_informer_t {
    zcm_manager_t *manager;
    const zube_kind_t *kind;
    zube_informer_t *informer;
    //  uid -> zhashx set of cache keys
    zhashx_t *owners;
    zhashx_t *controllers;
};

//  The table a plugin instance calls; first, so the host pointer the
//  plugin passes back is the instance's.
typedef struct {
    zube_ctrl_host_t table;
    s_ctrl_t *ctrl;
} s_ctrl_host_t;

typedef struct {
    const char *declared; //  the plugin's spelling (in its ops)
    s_informer_t *informer;
} s_watch_t;

//  A worker thread of a controller, with its own apiserver connection
//  (opened at its first write: zube_bus_t is not thread-safe).
typedef struct {
    s_ctrl_t *ctrl;
    pthread_t thread;
    zube_bus_t *bus;
    zube_api_t *api;
    //  In a sync, and the graveyard's epoch when it began
    bool syncing;
    uint64_t epoch;
} s_worker_t;

//  A cached object the informer let go of while a sync might hold it.
typedef struct {
    uint64_t epoch;
    ProtobufCMessage *object;
} s_retired_t;

struct _s_ctrl_t {
    zcm_manager_t *manager;
    char *name;
    zube_plugin_handle_t *handle;
    const zube_ctrl_ops_t *ops;
    void *instance;
    s_ctrl_host_t *host;
    s_watch_t watches[ZUBE_CTRL_MAX_WATCHES];
    size_t watch_count;
    zcm_queue_t *queue;
    //  Resync every cached object once the informers have synced
    bool resync_pending;
    uint64_t syncs;
    uint64_t sync_errors;
    //  Workers: the count in use (host calls release the lock when it is
    //  over 1), the threads (while the manager runs)
    uint32_t workers;
    s_worker_t *pool;
    size_t pool_size;
    //  Syncs running now, and the most ever at once
    size_t in_flight;
    size_t max_in_flight;
    //  paused: no new sync starts (swap, unload); stopping: workers end
    bool paused;
    bool stopping;
    pthread_cond_t wake; //  work, a pause lifted, stop
    pthread_cond_t idle; //  in_flight fell to 0
};

typedef struct {
    char name[300];
    char namespace_[256];
    int32_t count;
    int64_t last_ms;
    char first_timestamp[40];
} s_event_entry_t;

struct _zcm_manager_t {
    zcm_config_t config;
    char identity[256];
    zube_bus_t *bus;     //  informers and the service
    zube_bus_t *api_bus; //  writes
    zube_api_t *api;
    zube_plugin_host_t *plugins;
    zhashx_t *informers; //  kind resource -> s_informer_t
    s_ctrl_t **ctrls;
    size_t ctrl_count;
    size_t next_ctrl; //  round robin
    zhashx_t *events; //  aggregation key -> s_event_entry_t
    zube_leader_t *leader;
    bool serving;
    uint64_t event_writes;
    //  The big lock, and what it guards besides the caches and queues
    pthread_mutex_t lock;
    bool running;
    bool leading;
    //  Syncs running (all controllers), the graveyard (s_retired_t,
    //  oldest first) and its epoch, bumped per object retired
    size_t syncing;
    zlistx_t *graveyard;
    uint64_t epoch;
    //  name -> uint32_t * workers from --controller-arg NAME.workers
    zhashx_t *workers;
};

//  The manager whose lock this thread holds, how deeply, and the worker
//  this thread is (NULL on the loop thread)
static __thread zcm_manager_t *t_held;
static __thread int t_depth;
static __thread s_worker_t *t_worker;

static void
s_lock (zcm_manager_t *self)
{
    if (t_held == self) {
        t_depth++;
        return;
    }
    assert (!t_held);
    pthread_mutex_lock (&self->lock);
    t_held = self;
    t_depth = 1;
}

static void
s_unlock (zcm_manager_t *self)
{
    assert (t_held == self && t_depth > 0);
    if (--t_depth == 0) {
        t_held = NULL;
        pthread_mutex_unlock (&self->lock);
    }
}

//  Waits on cond, the lock released meanwhile (held exactly once);
//  timeout_ms < 0: until signalled.
static void
s_wait (zcm_manager_t *self, pthread_cond_t *cond, int64_t timeout_ms)
{
    assert (t_held == self && t_depth == 1);
    if (timeout_ms < 0) {
        pthread_cond_wait (cond, &self->lock);
        return;
    }
    struct timespec until;
    clock_gettime (CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait (cond, &self->lock, &until);
}

static void
s_free_key (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static int64_t
s_now_ms (void)
{
    return zclock_mono ();
}

//  ---------------------------------------------------------------------
//  Objects of either side of the boundary

//  The metadata of any object with a "metadata" field: a plugin's objects
//  have their own descriptors, which zube_object_meta does not accept.
static const Zube__ObjectMeta *
s_meta (const ProtobufCMessage *object)
{
    if (!object || !object->descriptor)
        return NULL;
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (object->descriptor, "metadata");
    if (!field || field->type != PROTOBUF_C_TYPE_MESSAGE ||
        field->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return *(const Zube__ObjectMeta *const *)((const char *)object + field->offset);
}

static const zube_kind_t *
s_kind_of (const ProtobufCMessage *object)
{
    const char *name = object && object->descriptor ? object->descriptor->name : NULL;
    for (size_t i = 0; name && i < zube_kinds_count (); i++) {
        const zube_kind_t *kind = zube_kind_at (i);
        if (kind->descriptor && streq (kind->descriptor->name, name))
            return kind;
    }
    return NULL;
}

//  object re-made with descriptor (pack, unpack): between the plugin's
//  generated code and the host's. NULL on bad bytes or no memory.
static ProtobufCMessage *
s_convert (const ProtobufCMessage *object, const ProtobufCMessageDescriptor *descriptor)
{
    size_t size = protobuf_c_message_get_packed_size (object);
    uint8_t *data = malloc (size ? size : 1);
    if (!data)
        return NULL;
    protobuf_c_message_pack (object, data);
    ProtobufCMessage *copy = protobuf_c_message_unpack (descriptor, NULL, size, data);
    free (data);
    return copy;
}

static void
s_object_key (const Zube__ObjectMeta *meta, char *key, size_t size)
{
    if (zube_ctrl_key (meta ? meta->namespace_ : NULL, meta ? meta->name : NULL, key,
                       size) < 0)
        key[0] = 0;
}

//  ---------------------------------------------------------------------
//  Owner indexes

static void
s_index_add (zhashx_t *index, const char *uid, const char *key)
{
    if (!uid || !*uid)
        return;
    zhashx_t *keys = zhashx_lookup (index, uid);
    if (!keys) {
        keys = zhashx_new ();
        if (!keys)
            return;
        zhashx_insert (index, uid, keys);
    }
    zhashx_update (keys, key, (void *)1);
}

static void
s_index_remove (zhashx_t *index, const char *uid, const char *key)
{
    zhashx_t *keys = uid && *uid ? zhashx_lookup (index, uid) : NULL;
    if (!keys)
        return;
    zhashx_delete (keys, key);
    if (zhashx_size (keys) == 0)
        zhashx_delete (index, uid);
}

static void
s_index_object (s_informer_t *self, const ProtobufCMessage *object, bool add)
{
    const Zube__ObjectMeta *meta = s_meta (object);
    if (!meta || meta->n_owner_references == 0)
        return;
    char key[600];
    s_object_key (meta, key, sizeof key);
    for (size_t i = 0; i < meta->n_owner_references; i++) {
        const Zube__OwnerReference *owner = meta->owner_references[i];
        bool controller = owner->has_controller && owner->controller;
        if (add) {
            s_index_add (self->owners, owner->uid, key);
            if (controller)
                s_index_add (self->controllers, owner->uid, key);
        } else {
            s_index_remove (self->owners, owner->uid, key);
            if (controller)
                s_index_remove (self->controllers, owner->uid, key);
        }
    }
}

static void
s_index_destructor (void **item_p)
{
    zhashx_t *keys = *item_p;
    zhashx_destroy (&keys);
    *item_p = NULL;
}

//  ---------------------------------------------------------------------
//  The graveyard: cached objects an informer replaced or deleted stay
//  allocated while a sync that started before may still hold them (it
//  read them, then released the lock in a host call). Epochs only grow,
//  so the graveyard is in epoch order: the objects of epochs no running
//  sync started before are freed from its head.

static void
s_graveyard_sweep (zcm_manager_t *self)
{
    uint64_t oldest = UINT64_MAX;
    for (size_t c = 0; self->syncing && c < self->ctrl_count; c++) {
        s_ctrl_t *ctrl = self->ctrls[c];
        for (size_t w = 0; w < ctrl->pool_size; w++)
            if (ctrl->pool[w].syncing && ctrl->pool[w].epoch < oldest)
                oldest = ctrl->pool[w].epoch;
    }
    s_retired_t *retired;
    while ((retired = zlistx_first (self->graveyard)) && retired->epoch <= oldest) {
        zlistx_detach_cur (self->graveyard);
        protobuf_c_message_free_unpacked (retired->object, NULL);
        free (retired);
    }
}

//  The informers' retire hook (under the lock, on the loop thread)
static void
s_informer_retire (zube_informer_t *informer, ProtobufCMessage *object, void *arg)
{
    (void)informer;
    zcm_manager_t *self = ((s_informer_t *)arg)->manager;
    if (!self->syncing) {
        protobuf_c_message_free_unpacked (object, NULL);
        return;
    }
    s_retired_t *retired = malloc (sizeof *retired);
    if (!retired) {
        //  Leaked rather than freed under a sync that may hold it
        zube_log_error ("msg=\"out of memory: a cached object leaked\"");
        return;
    }
    retired->epoch = ++self->epoch;
    retired->object = object;
    zlistx_add_end (self->graveyard, retired);
}

//  The informers' guard hook: cache changes and handlers under the lock
static void
s_informer_guard (zube_informer_t *informer, bool enter, void *arg)
{
    (void)informer;
    zcm_manager_t *self = ((s_informer_t *)arg)->manager;
    if (enter)
        s_lock (self);
    else
        s_unlock (self);
}

//  ---------------------------------------------------------------------
//  Informers, shared

static bool
s_ready (s_ctrl_t *ctrl)
{
    for (size_t i = 0; i < ctrl->watch_count; i++)
        if (!zube_informer_has_synced (ctrl->watches[i].informer->informer))
            return false;
    return ctrl->instance != NULL;
}

//  Wakes a worker of ctrl when a key may be due (the lock held).
static void
s_wake (s_ctrl_t *ctrl)
{
    if (ctrl->pool_size)
        pthread_cond_signal (&ctrl->wake);
}

static void
s_enqueue_own_key (s_ctrl_t *ctrl, const ProtobufCMessage *object)
{
    char key[600];
    s_object_key (s_meta (object), key, sizeof key);
    if (key[0]) {
        zcm_queue_add (ctrl->queue, key);
        s_wake (ctrl);
    }
}

//  Calls the handler of every controller watching informer; kind: 0 add,
//  1 update, 2 delete.
static void
s_dispatch (s_informer_t *informer, int kind, const ProtobufCMessage *old_object,
            const ProtobufCMessage *object)
{
    zcm_manager_t *self = informer->manager;
    for (size_t c = 0; c < self->ctrl_count; c++) {
        s_ctrl_t *ctrl = self->ctrls[c];
        if (!ctrl->instance)
            continue;
        for (size_t w = 0; w < ctrl->watch_count; w++) {
            if (ctrl->watches[w].informer != informer)
                continue;
            const char *resource = ctrl->watches[w].declared;
            const zube_ctrl_ops_t *ops = ctrl->ops;
            if (kind == 0 && ops->on_add)
                ops->on_add (ctrl->instance, resource, object);
            else if (kind == 1 && ops->on_update)
                ops->on_update (ctrl->instance, resource, old_object, object);
            else if (kind == 2 && ops->on_delete)
                ops->on_delete (ctrl->instance, resource, object);
            else if (w == 0)
                s_enqueue_own_key (ctrl, object);
        }
    }
}

static void
s_informer_added (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer;
    s_index_object (arg, object, true);
    s_dispatch (arg, 0, NULL, object);
}

static void
s_informer_updated (zube_informer_t *informer, const ProtobufCMessage *old_object,
                    const ProtobufCMessage *new_object, void *arg)
{
    (void)informer;
    s_index_object (arg, old_object, false);
    s_index_object (arg, new_object, true);
    s_dispatch (arg, 1, old_object, new_object);
}

static void
s_informer_deleted (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer;
    s_index_object (arg, object, false);
    s_dispatch (arg, 2, NULL, object);
}

static void
s_informer_destroy (s_informer_t **self_p)
{
    s_informer_t *self = *self_p;
    if (!self)
        return;
    zube_informer_destroy (&self->informer);
    zhashx_destroy (&self->owners);
    zhashx_destroy (&self->controllers);
    free (self);
    *self_p = NULL;
}

static void
s_informer_destructor (void **item_p)
{
    s_informer_destroy ((s_informer_t **)item_p);
}

//  The shared informer of resource, made and started on first use.
static s_informer_t *
s_informer_for (zcm_manager_t *self, const char *resource, char *error, size_t error_size)
{
    const zube_kind_t *kind = zube_kind_by_resource (resource);
    if (!kind) {
        snprintf (error, error_size, "watches: unknown resource \"%s\"", resource);
        return NULL;
    }
    s_informer_t *informer = zhashx_lookup (self->informers, kind->resource);
    if (informer)
        return informer;
    informer = calloc (1, sizeof *informer);
    if (!informer) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    informer->manager = self;
    informer->kind = kind;
    informer->owners = zhashx_new ();
    informer->controllers = zhashx_new ();
    if (informer->owners && informer->controllers) {
        zhashx_set_destructor (informer->owners, s_index_destructor);
        zhashx_set_destructor (informer->controllers, s_index_destructor);
        informer->informer = zube_informer_new (
            self->bus, &(zube_informer_config_t){.resource = kind->resource,
                                                 .on_add = s_informer_added,
                                                 .on_update = s_informer_updated,
                                                 .on_delete = s_informer_deleted,
                                                 .arg = informer});
    }
    if (informer->informer)
        zube_informer_set_guard (informer->informer, s_informer_guard, s_informer_retire,
                                 informer);
    if (!informer->informer || zube_informer_start (informer->informer) != 0) {
        snprintf (error, error_size, "cannot watch %s", kind->resource);
        s_informer_destroy (&informer);
        return NULL;
    }
    zhashx_insert (self->informers, kind->resource, informer);
    return informer;
}

//  ---------------------------------------------------------------------
//  The host table: cache reads

static s_ctrl_t *
s_ctrl (const zube_ctrl_host_t *host)
{
    return ((const s_ctrl_host_t *)host)->ctrl;
}

//  The informer of a resource the controller watches, NULL (logged) if
//  it does not watch it.
static s_informer_t *
s_watched (const zube_ctrl_host_t *host, const char *resource)
{
    s_ctrl_t *ctrl = s_ctrl (host);
    for (size_t i = 0; resource && i < ctrl->watch_count; i++)
        if (streq (ctrl->watches[i].declared, resource))
            return ctrl->watches[i].informer;
    const zube_kind_t *kind = resource ? zube_kind_by_resource (resource) : NULL;
    for (size_t i = 0; kind && i < ctrl->watch_count; i++)
        if (ctrl->watches[i].informer->kind == kind)
            return ctrl->watches[i].informer;
    zube_log_warn ("msg=\"cache read of a resource not watched\" controller=%s "
                   "resource=%s",
                   ctrl->name, resource ? resource : "(null)");
    return NULL;
}

static const ProtobufCMessage *
s_host_get (const zube_ctrl_host_t *host, const char *resource, const char *namespace_,
            const char *name)
{
    s_informer_t *informer = s_watched (host, resource);
    if (!informer || !name)
        return NULL;
    return zube_informer_get (informer->informer,
                              namespace_ && *namespace_ ? namespace_ : NULL, name);
}

static const ProtobufCMessage *
s_host_get_by_key (const zube_ctrl_host_t *host, const char *resource, const char *key)
{
    s_informer_t *informer = s_watched (host, resource);
    return informer && key ? zube_informer_get_by_key (informer->informer, key) : NULL;
}

static const ProtobufCMessage **
s_host_list (const zube_ctrl_host_t *host, const char *resource, const char *namespace_,
             const char *label_selector, size_t *count_p)
{
    *count_p = 0;
    s_informer_t *informer = s_watched (host, resource);
    if (!informer)
        return NULL;
    if (namespace_ && !*namespace_)
        namespace_ = NULL;
    if (!label_selector || !*label_selector)
        return namespace_ ? zube_informer_list_namespace (informer->informer, namespace_,
                                                          count_p)
                          : zube_informer_list (informer->informer, count_p);
    zube_selector_t *selector = NULL;
    char error[256];
    if (zube_selector_parse (label_selector, &selector, error, sizeof error) != 0) {
        zube_log_warn ("msg=\"bad label selector\" controller=%s selector=\"%s\" "
                       "error=\"%s\"",
                       s_ctrl (host)->name, label_selector, error);
        return NULL;
    }
    const ProtobufCMessage **list =
        zube_informer_list_selector (informer->informer, namespace_, selector, count_p);
    zube_selector_destroy (&selector);
    return list;
}

static zube_selector_t *
s_selector (const zube_ctrl_host_t *host, const ProtobufCMessage *label_selector)
{
    zube_selector_t *selector = NULL;
    char error[256];
    if (zube_selector_from_message ((const Zube__LabelSelector *)label_selector,
                                    &selector, error, sizeof error) != 0) {
        zube_log_warn ("msg=\"bad label selector\" controller=%s error=\"%s\"",
                       s_ctrl (host)->name, error);
        return NULL;
    }
    return selector;
}

static const ProtobufCMessage **
s_host_list_selector (const zube_ctrl_host_t *host, const char *resource,
                      const char *namespace_, const ProtobufCMessage *label_selector,
                      size_t *count_p)
{
    *count_p = 0;
    s_informer_t *informer = s_watched (host, resource);
    zube_selector_t *selector =
        informer && label_selector ? s_selector (host, label_selector) : NULL;
    if (!selector)
        return NULL;
    const ProtobufCMessage **list = zube_informer_list_selector (
        informer->informer, namespace_ && *namespace_ ? namespace_ : NULL, selector,
        count_p);
    zube_selector_destroy (&selector);
    return list;
}

static const ProtobufCMessage **
s_host_list_index (const zube_ctrl_host_t *host, const char *resource, const char *index,
                   const char *value, size_t *count_p)
{
    *count_p = 0;
    s_informer_t *informer = s_watched (host, resource);
    if (!informer || !index || !value)
        return NULL;
    if (streq (index, ZUBE_CTRL_INDEX_NODE_NAME))
        return zube_informer_list_node (informer->informer, value, count_p);
    zhashx_t *by_uid = streq (index, ZUBE_CTRL_INDEX_OWNER_UID) ? informer->owners
                       : streq (index, ZUBE_CTRL_INDEX_CONTROLLER_UID)
                           ? informer->controllers
                           : NULL;
    if (!by_uid) {
        zube_log_warn ("msg=\"unknown index\" controller=%s index=%s",
                       s_ctrl (host)->name, index);
        return NULL;
    }
    zhashx_t *keys = zhashx_lookup (by_uid, value);
    if (!keys)
        return NULL;
    zlistx_t *sorted = zhashx_keys (keys);
    if (!sorted)
        return NULL;
    zlistx_set_comparator (sorted, (zlistx_comparator_fn *)strcmp);
    zlistx_sort (sorted);
    const ProtobufCMessage **list = calloc (zlistx_size (sorted) + 1, sizeof *list);
    for (const char *key = zlistx_first (sorted); list && key;
         key = zlistx_next (sorted)) {
        const ProtobufCMessage *object =
            zube_informer_get_by_key (informer->informer, key);
        if (object)
            list[(*count_p)++] = object;
    }
    zlistx_destroy (&sorted);
    if (list && *count_p == 0) {
        free (list);
        list = NULL;
    }
    return list;
}

static void
s_host_free_list (const zube_ctrl_host_t *host, const ProtobufCMessage **list)
{
    (void)host;
    free (list);
}

static int
s_host_selector_matches (const zube_ctrl_host_t *host,
                         const ProtobufCMessage *label_selector,
                         const ProtobufCMessage *object)
{
    if (!label_selector)
        return 0;
    zube_selector_t *selector = s_selector (host, label_selector);
    if (!selector)
        return -1;
    const Zube__ObjectMeta *meta = s_meta (object);
    bool matches = meta && zube_selector_matches_meta (selector, meta);
    zube_selector_destroy (&selector);
    return matches ? 1 : 0;
}

//  ---------------------------------------------------------------------
//  The host table: writes

//  The connection ctrl's host call talks to the apiserver on: the calling
//  worker's own (opened at its first call), or the manager's on the loop
//  thread (a plugin's create, a handler). NULL, with message, when the
//  worker's cannot be opened.
static zube_api_t *
s_api (s_ctrl_t *ctrl, char *message, size_t message_size)
{
    s_worker_t *worker = t_worker;
    if (!worker)
        return ctrl->manager->api;
    if (!worker->api) {
        worker->bus = zube_bus_new (&ctrl->manager->config.bus);
        worker->api = worker->bus ? zube_api_new (worker->bus) : NULL;
        if (!worker->api) {
            zube_bus_destroy (&worker->bus);
            if (message && message_size)
                snprintf (message, message_size,
                          "controller %s: cannot open a worker's connection to the "
                          "broker",
                          ctrl->name);
            return NULL;
        }
    }
    return worker->api;
}

//  A call to the apiserver from a host function: on the connection of
//  s_api; a worker of a controller with more than one worker releases the
//  lock meanwhile, so other syncs and informer events run (a yield point).
typedef struct {
    s_ctrl_t *ctrl;
    zube_api_t *api;
    bool yielded;
} s_call_t;

//  False, with message, when there is no connection to call on.
static bool
s_call_begin (s_call_t *call, const zube_ctrl_host_t *host, char *message,
              size_t message_size)
{
    s_ctrl_t *ctrl = s_ctrl (host);
    zcm_manager_t *self = ctrl->manager;
    *call = (s_call_t){.ctrl = ctrl, .api = s_api (ctrl, message, message_size)};
    if (!call->api)
        return false;
    if (t_worker && ctrl->workers > 1 && t_held == self) {
        assert (t_depth == 1);
        t_held = NULL;
        t_depth = 0;
        pthread_mutex_unlock (&self->lock);
        call->yielded = true;
    }
    return true;
}

static void
s_call_end (s_call_t *call)
{
    if (call->yielded)
        s_lock (call->ctrl->manager);
}

static zube_status_t
s_answer (zube_status_t status, const zube_api_error_t *error, char *message,
          size_t message_size)
{
    if (message && message_size)
        snprintf (message, message_size, "%s", status == ZUBE_OK ? "" : error->message);
    return status;
}

static const zube_kind_t *
s_write_kind (const char *resource, char *message, size_t message_size)
{
    const zube_kind_t *kind = resource ? zube_kind_by_resource (resource) : NULL;
    if (!kind && message && message_size)
        snprintf (message, message_size, "the server doesn't have a resource type \"%s\"",
                  resource ? resource : "");
    return kind;
}

//  The answer handed to the plugin, with its own descriptor.
static void
s_hand_over (ProtobufCMessage *answer, const ProtobufCMessageDescriptor *descriptor,
             ProtobufCMessage **object_p)
{
    if (object_p)
        *object_p = answer && descriptor ? s_convert (answer, descriptor) : NULL;
    if (answer)
        protobuf_c_message_free_unpacked (answer, NULL);
}

static zube_status_t
s_host_create (const zube_ctrl_host_t *host, const char *resource, const char *namespace_,
               const ProtobufCMessage *object, ProtobufCMessage **created_p,
               char *message, size_t message_size)
{
    if (created_p)
        *created_p = NULL;
    const zube_kind_t *kind = s_write_kind (resource, message, message_size);
    if (!kind)
        return ZUBE_NOT_FOUND;
    ProtobufCMessage *mine = object ? s_convert (object, kind->descriptor) : NULL;
    if (!mine) {
        snprintf (message, message_size, "%s: no object, or not a %s", resource,
                  kind->kind);
        return ZUBE_BAD_REQUEST;
    }
    zube_api_error_t error;
    ProtobufCMessage *answer = NULL;
    s_call_t call;
    if (!s_call_begin (&call, host, message, message_size)) {
        protobuf_c_message_free_unpacked (mine, NULL);
        return ZUBE_UNAVAILABLE;
    }
    zube_status_t status = zube_api_create (call.api, kind->resource, namespace_, mine,
                                            false, created_p ? &answer : NULL, &error);
    s_call_end (&call);
    protobuf_c_message_free_unpacked (mine, NULL);
    s_hand_over (answer, object->descriptor, created_p);
    return s_answer (status, &error, message, message_size);
}

static zube_status_t
s_host_update (const zube_ctrl_host_t *host, const char *resource,
               const ProtobufCMessage *object, const char *subresource,
               ProtobufCMessage **updated_p, char *message, size_t message_size)
{
    if (updated_p)
        *updated_p = NULL;
    const zube_kind_t *kind = s_write_kind (resource, message, message_size);
    if (!kind)
        return ZUBE_NOT_FOUND;
    const ProtobufCMessageDescriptor *descriptor =
        subresource && streq (subresource, "scale") ? &zube__scale__descriptor
                                                    : kind->descriptor;
    ProtobufCMessage *mine = object ? s_convert (object, descriptor) : NULL;
    if (!mine) {
        snprintf (message, message_size, "%s: no object to update", resource);
        return ZUBE_BAD_REQUEST;
    }
    zube_api_error_t error;
    ProtobufCMessage *answer = NULL;
    s_call_t call;
    if (!s_call_begin (&call, host, message, message_size)) {
        protobuf_c_message_free_unpacked (mine, NULL);
        return ZUBE_UNAVAILABLE;
    }
    zube_status_t status =
        zube_api_update (call.api, kind->resource, NULL, mine, subresource, false,
                         updated_p ? &answer : NULL, &error);
    s_call_end (&call);
    protobuf_c_message_free_unpacked (mine, NULL);
    s_hand_over (answer, object->descriptor, updated_p);
    return s_answer (status, &error, message, message_size);
}

static zube_status_t
s_host_patch (const zube_ctrl_host_t *host, const char *resource, const char *namespace_,
              const char *name, const char *subresource, const char *patch_type,
              const char *patch, const ProtobufCMessageDescriptor *reply_descriptor,
              ProtobufCMessage **patched_p, char *message, size_t message_size)
{
    if (patched_p)
        *patched_p = NULL;
    const zube_kind_t *kind = s_write_kind (resource, message, message_size);
    if (!kind)
        return ZUBE_NOT_FOUND;
    zube_api_error_t error;
    ProtobufCMessage *answer = NULL;
    s_call_t call;
    if (!s_call_begin (&call, host, message, message_size))
        return ZUBE_UNAVAILABLE;
    zube_status_t status =
        zube_api_patch (call.api, kind->resource, namespace_, name, patch_type, patch,
                        subresource, false, &answer, &error);
    s_call_end (&call);
    s_hand_over (answer, reply_descriptor, patched_p);
    return s_answer (status, &error, message, message_size);
}

static zube_status_t
s_host_delete (const zube_ctrl_host_t *host, const char *resource, const char *namespace_,
               const char *name, const zube_ctrl_delete_options_t *options, char *message,
               size_t message_size)
{
    const zube_kind_t *kind = s_write_kind (resource, message, message_size);
    if (!kind)
        return ZUBE_NOT_FOUND;
    zube_api_delete_options_t api_options = {.grace_period_seconds = -1};
    if (options) {
        api_options.uid = options->uid;
        api_options.resource_version = options->resource_version;
        api_options.propagation_policy = options->propagation_policy;
        if (options->has_grace_period)
            api_options.grace_period_seconds = options->grace_period_seconds;
    }
    zube_api_error_t error;
    ProtobufCMessage *answer = NULL;
    s_call_t call;
    if (!s_call_begin (&call, host, message, message_size))
        return ZUBE_UNAVAILABLE;
    zube_status_t status = zube_api_delete (call.api, kind->resource, namespace_, name,
                                            &api_options, &answer, &error);
    s_call_end (&call);
    if (answer)
        protobuf_c_message_free_unpacked (answer, NULL);
    return s_answer (status, &error, message, message_size);
}

static zube_status_t
s_host_get_live (const zube_ctrl_host_t *host, const char *resource,
                 const char *namespace_, const char *name,
                 const ProtobufCMessageDescriptor *descriptor,
                 ProtobufCMessage **object_p, char *message, size_t message_size)
{
    if (object_p)
        *object_p = NULL;
    const zube_kind_t *kind = s_write_kind (resource, message, message_size);
    if (!kind)
        return ZUBE_NOT_FOUND;
    zube_api_error_t error;
    ProtobufCMessage *answer = NULL;
    s_call_t call;
    if (!s_call_begin (&call, host, message, message_size))
        return ZUBE_UNAVAILABLE;
    zube_status_t status =
        zube_api_get (call.api, kind->resource, namespace_, name, &answer, &error);
    s_call_end (&call);
    s_hand_over (answer, descriptor, object_p);
    return s_answer (status, &error, message, message_size);
}

static zube_status_t
s_host_any_live (const zube_ctrl_host_t *host, const char *resource,
                 const char *namespace_, bool *any_p, char *message, size_t message_size)
{
    *any_p = false;
    const zube_kind_t *kind = s_write_kind (resource, message, message_size);
    if (!kind)
        return ZUBE_NOT_FOUND;
    zube_api_error_t error;
    zube_api_list_t *list = NULL;
    s_call_t call;
    if (!s_call_begin (&call, host, message, message_size))
        return ZUBE_UNAVAILABLE;
    zube_status_t status = zube_api_list (
        call.api, kind->resource,
        &(zube_api_list_options_t){.namespace = namespace_, .limit = 1}, &list, &error);
    s_call_end (&call);
    if (list)
        *any_p = list->count > 0;
    zube_api_list_destroy (&list);
    return s_answer (status, &error, message, message_size);
}

//  ---------------------------------------------------------------------
//  The host table: Events

static void
s_write_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
              const zube_api_error_t *error, void *arg)
{
    (void)api, (void)arg;
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
    if (status != ZUBE_OK)
        zube_log_warn ("msg=\"event write failed\" reason=%s error=\"%s\"",
                       error ? error->reason : "", error ? error->message : "");
}

static void
s_timestamp (char *buf, size_t size)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    strftime (buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
s_event_send (s_ctrl_t *ctrl, const char *method, const char *namespace_,
              const char *name, const ProtobufCMessage *object, const char *patch)
{
    Zube__CreateRequest create = ZUBE__CREATE_REQUEST__INIT;
    Zube__PatchRequest patch_request = ZUBE__PATCH_REQUEST__INIT;
    uint8_t *data = NULL;
    const ProtobufCMessage *request;
    zcm_manager_t *self = ctrl->manager;
    if (object) {
        size_t size = protobuf_c_message_get_packed_size (object);
        data = malloc (size ? size : 1);
        if (!data)
            return;
        protobuf_c_message_pack (object, data);
        create.resource = "events";
        create.namespace_ = (char *)namespace_;
        create.field_manager = "zube-controller-manager";
        create.has_object = 1;
        create.object.len = size;
        create.object.data = data;
        request = &create.base;
    } else {
        patch_request.resource = "events";
        patch_request.namespace_ = (char *)namespace_;
        patch_request.name = (char *)name;
        patch_request.patch_type = "application/merge-patch+json";
        patch_request.has_patch = 1;
        patch_request.patch.data = (uint8_t *)patch;
        patch_request.patch.len = strlen (patch);
        request = &patch_request.base;
    }
    zube_api_t *api = s_api (ctrl, NULL, 0);
    if (api && zube_api_call_async (api, method, request, NULL, s_write_done, NULL) == 0)
        self->event_writes++;
    free (data);
}

static void
s_event_trim (zcm_manager_t *self, int64_t now)
{
    if (zhashx_size (self->events) < S_EVENT_CACHE_MAX)
        return;
    zlistx_t *old = zlistx_new ();
    if (!old)
        return;
    zlistx_set_destructor (old, s_free_key);
    for (s_event_entry_t *entry = zhashx_first (self->events); entry;
         entry = zhashx_next (self->events))
        if (now - entry->last_ms > S_EVENT_WINDOW_MS)
            zlistx_add_end (old, strdup (zhashx_cursor (self->events)));
    for (const char *key = zlistx_first (old); key; key = zlistx_next (old))
        zhashx_delete (self->events, key);
    zlistx_destroy (&old);
    //  Still full of recent ones: start over (only aggregation is lost)
    if (zhashx_size (self->events) >= S_EVENT_CACHE_MAX)
        zhashx_purge (self->events);
}

static void
s_host_event (const zube_ctrl_host_t *host, const ProtobufCMessage *object,
              const char *type, const char *reason, const char *format, ...)
{
    s_ctrl_t *ctrl = s_ctrl (host);
    zcm_manager_t *self = ctrl->manager;
    const Zube__ObjectMeta *meta = s_meta (object);
    const zube_kind_t *kind = s_kind_of (object);
    if (!meta || !meta->name || !kind || !type || !reason || !format)
        return;
    char text[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    const char *namespace_ =
        meta->namespace_ && *meta->namespace_ ? meta->namespace_ : "default";
    char key[2048];
    snprintf (key, sizeof key, "%s|%s/%s|%s|%s|%s|%s", ctrl->name, namespace_, meta->name,
              meta->uid ? meta->uid : "", type, reason, text);
    int64_t now = s_now_ms ();
    char stamp[40];
    s_timestamp (stamp, sizeof stamp);
    s_event_entry_t *entry = zhashx_lookup (self->events, key);
    if (entry && now - entry->last_ms <= S_EVENT_WINDOW_MS) {
        entry->count++;
        entry->last_ms = now;
        char patch[256];
        snprintf (patch, sizeof patch, "{\"count\":%d,\"lastTimestamp\":\"%s\"}",
                  entry->count, stamp);
        s_event_send (ctrl, "patch", entry->namespace_, entry->name, NULL, patch);
        return;
    }
    s_event_trim (self, now);
    entry = calloc (1, sizeof *entry);
    if (!entry)
        return;
    struct timespec wall;
    clock_gettime (CLOCK_REALTIME, &wall);
    snprintf (entry->name, sizeof entry->name, "%.240s.%" PRIx64, meta->name,
              (uint64_t)wall.tv_sec * 1000000000u + (uint64_t)wall.tv_nsec);
    snprintf (entry->namespace_, sizeof entry->namespace_, "%s", namespace_);
    snprintf (entry->first_timestamp, sizeof entry->first_timestamp, "%s", stamp);
    entry->count = 1;
    entry->last_ms = now;
    zhashx_update (self->events, key, entry);

    char component[160];
    snprintf (component, sizeof component, "%s-controller", ctrl->name);
    Zube__Event event = ZUBE__EVENT__INIT;
    Zube__ObjectMeta event_meta = ZUBE__OBJECT_META__INIT;
    Zube__ObjectReference involved = ZUBE__OBJECT_REFERENCE__INIT;
    Zube__EventSource source = ZUBE__EVENT_SOURCE__INIT;
    event.api_version = "v1";
    event.kind = "Event";
    event_meta.name = entry->name;
    event_meta.namespace_ = entry->namespace_;
    event.metadata = &event_meta;
    involved.api_version = (char *)kind->api_version;
    involved.kind = (char *)kind->kind;
    involved.name = meta->name;
    involved.namespace_ = meta->namespace_;
    involved.uid = meta->uid;
    involved.resource_version = meta->resource_version;
    event.involved_object = &involved;
    event.reason = (char *)reason;
    event.message = text;
    event.type = (char *)type;
    source.component = component;
    source.host = self->identity;
    event.source = &source;
    event.first_timestamp = entry->first_timestamp;
    event.last_timestamp = stamp;
    event.has_count = 1;
    event.count = 1;
    event.reporting_component = component;
    event.reporting_instance = self->identity;
    s_event_send (ctrl, "create", entry->namespace_, NULL, &event.base, NULL);
}

//  ---------------------------------------------------------------------
//  The host table: the work queue

static void
s_host_enqueue (const zube_ctrl_host_t *host, const char *key)
{
    zcm_queue_add (s_ctrl (host)->queue, key);
    s_wake (s_ctrl (host));
}

static void
s_host_enqueue_after (const zube_ctrl_host_t *host, const char *key, int64_t delay_ms)
{
    zcm_queue_add_after (s_ctrl (host)->queue, key, delay_ms, s_now_ms ());
    s_wake (s_ctrl (host));
}

static void
s_host_enqueue_rate_limited (const zube_ctrl_host_t *host, const char *key)
{
    zcm_queue_add_rate_limited (s_ctrl (host)->queue, key, s_now_ms ());
    s_wake (s_ctrl (host));
}

static void
s_host_forget (const zube_ctrl_host_t *host, const char *key)
{
    zcm_queue_forget (s_ctrl (host)->queue, key);
}

static int
s_host_requeues (const zube_ctrl_host_t *host, const char *key)
{
    return zcm_queue_requeues (s_ctrl (host)->queue, key);
}

static s_ctrl_host_t *
s_ctrl_host_new (s_ctrl_t *ctrl, zube_plugin_handle_t *handle)
{
    s_ctrl_host_t *host = calloc (1, sizeof *host);
    if (!host)
        return NULL;
    host->ctrl = ctrl;
    host->table = (zube_ctrl_host_t){
        .struct_size = sizeof (zube_ctrl_host_t),
        .base = zube_plugin_handle_host (handle),
        .name = ctrl->name,
        .identity = ctrl->manager->identity,
        .get = s_host_get,
        .get_by_key = s_host_get_by_key,
        .list = s_host_list,
        .list_selector = s_host_list_selector,
        .list_index = s_host_list_index,
        .free_list = s_host_free_list,
        .selector_matches = s_host_selector_matches,
        .create = s_host_create,
        .update = s_host_update,
        .patch = s_host_patch,
        .delete_ = s_host_delete,
        .event = s_host_event,
        .enqueue = s_host_enqueue,
        .enqueue_after = s_host_enqueue_after,
        .enqueue_rate_limited = s_host_enqueue_rate_limited,
        .forget = s_host_forget,
        .requeues = s_host_requeues,
        .get_live = s_host_get_live,
        .any_live = s_host_any_live,
    };
    return host;
}

//  ---------------------------------------------------------------------
//  Workers

static void s_sync_one (s_worker_t *worker, char *key);

//  A worker: syncs ctrl's keys while the manager leads, the controller is
//  ready and not paused; waits (the lock released) for work otherwise.
static void *
s_worker_run (void *arg)
{
    s_worker_t *worker = arg;
    s_ctrl_t *ctrl = worker->ctrl;
    zcm_manager_t *self = ctrl->manager;
    t_worker = worker;
    s_lock (self);
    while (!ctrl->stopping) {
        char *key = NULL;
        int64_t due = -1;
        if (self->leading && !ctrl->paused && s_ready (ctrl)) {
            due = zcm_queue_flush (ctrl->queue, s_now_ms ());
            key = zcm_queue_pop (ctrl->queue);
        }
        if (key) {
            s_sync_one (worker, key);
            if (zcm_queue_length (ctrl->queue))
                s_wake (ctrl);
        }
        //  Replies to Events written (asynchronously), heartbeats: the
        //  worker's own connection, without the lock
        if (worker->bus) {
            s_unlock (self);
            zube_bus_poll (worker->bus, 0);
            s_lock (self);
        }
        //  A key added while the lock was released above is not missed
        bool work = self->leading && !ctrl->paused && s_ready (ctrl) &&
                    zcm_queue_length (ctrl->queue);
        if (!key && !work && !ctrl->stopping) {
            bool replies = worker->bus && zube_bus_in_flight (worker->bus);
            int64_t wait = replies ? 10 : S_WORKER_IDLE_MS;
            s_wait (self, &ctrl->wake, due >= 0 && due < wait ? due : wait);
        }
    }
    s_unlock (self);
    t_worker = NULL;
    return NULL;
}

//  Starts ctrl's workers (the lock held, the manager running).
static void
s_workers_start (s_ctrl_t *ctrl)
{
    if (ctrl->pool_size || !ctrl->manager->running)
        return;
    ctrl->pool = calloc (ctrl->workers, sizeof *ctrl->pool);
    if (!ctrl->pool) {
        zube_log_error ("msg=\"out of memory: no workers\" controller=%s", ctrl->name);
        return;
    }
    ctrl->stopping = false;
    for (size_t w = 0; w < ctrl->workers; w++) {
        s_worker_t *worker = &ctrl->pool[w];
        worker->ctrl = ctrl;
        if (pthread_create (&worker->thread, NULL, s_worker_run, worker) != 0) {
            zube_log_error ("msg=\"cannot start a worker\" controller=%s worker=%zu",
                            ctrl->name, w);
            break;
        }
        ctrl->pool_size++;
    }
}

//  Stops ctrl's workers once their syncs are over (the lock held exactly
//  once; released while joining them).
static void
s_workers_stop (s_ctrl_t *ctrl)
{
    zcm_manager_t *self = ctrl->manager;
    if (!ctrl->pool_size && !ctrl->pool)
        return;
    ctrl->stopping = true;
    pthread_cond_broadcast (&ctrl->wake);
    size_t count = ctrl->pool_size;
    s_unlock (self);
    for (size_t w = 0; w < count; w++)
        pthread_join (ctrl->pool[w].thread, NULL);
    s_lock (self);
    for (size_t w = 0; w < count; w++) {
        zube_api_destroy (&ctrl->pool[w].api);
        zube_bus_destroy (&ctrl->pool[w].bus);
    }
    free (ctrl->pool);
    ctrl->pool = NULL;
    ctrl->pool_size = 0;
    ctrl->stopping = false;
}

//  Stops every worker (the lock held once): their syncs end first.
static void
s_workers_stop_all (zcm_manager_t *self)
{
    self->running = false;
    self->leading = false;
    for (size_t i = 0; i < self->ctrl_count; i++)
        s_workers_stop (self->ctrls[i]);
}

//  No sync of ctrl starts after this, and none runs when it returns (the
//  lock held exactly once; released while waiting). s_unpause undoes it.
static void
s_pause (s_ctrl_t *ctrl)
{
    ctrl->paused = true;
    while (ctrl->in_flight)
        s_wait (ctrl->manager, &ctrl->idle, -1);
}

static void
s_unpause (s_ctrl_t *ctrl)
{
    ctrl->paused = false;
    pthread_cond_broadcast (&ctrl->wake);
}

//  ---------------------------------------------------------------------
//  Controllers

static void
s_ctrl_destroy (s_ctrl_t **self_p)
{
    s_ctrl_t *self = *self_p;
    if (!self)
        return;
    if (self->pool)
        s_workers_stop (self);
    if (self->instance)
        self->ops->destroy (self->instance);
    if (self->handle)
        zube_plugin_host_unload (self->manager->plugins, &self->handle);
    free (self->host);
    zcm_queue_destroy (&self->queue);
    pthread_cond_destroy (&self->wake);
    pthread_cond_destroy (&self->idle);
    free (self->name);
    free (self);
    *self_p = NULL;
}

//  The worker count of a controller: its ops' (0: 1), or NAME.workers of
//  --controller-arg. A plugin that declares 1 has not been made safe for
//  syncs that interleave: more is refused for it.
static int
s_workers_of (zcm_manager_t *self, const zube_ctrl_ops_t *ops, uint32_t *workers_p,
              char *error, size_t error_size)
{
    uint32_t declared = ops->workers ? ops->workers : 1;
    uint32_t *wanted = zhashx_lookup (self->workers, ops->framework_name);
    if (wanted && *wanted > 1 && declared == 1) {
        snprintf (error, error_size,
                  "--controller-arg %s.workers=%u: the %s plugin runs one sync at a "
                  "time (it declares workers 1)",
                  ops->framework_name, *wanted, ops->framework_name);
        return -1;
    }
    *workers_p = wanted ? *wanted : declared;
    if (*workers_p > ZCM_WORKERS_MAX)
        *workers_p = ZCM_WORKERS_MAX;
    return 0;
}

//  An instance of the plugin in handle, its watches resolved into
//  watches/count. Fills error and answers -1 when the plugin cannot run.
static int
s_instance_new (zcm_manager_t *self, s_ctrl_t *ctrl, zube_plugin_handle_t *handle,
                void **instance_p, s_ctrl_host_t **host_p, s_watch_t *watches,
                size_t *count_p, char *error, size_t error_size)
{
    const zube_ctrl_ops_t *ops = zube_plugin_handle_ops (handle);
    size_t count = 0;
    for (; ops->watches && ops->watches[count]; count++) {
        if (count == ZUBE_CTRL_MAX_WATCHES) {
            snprintf (error, error_size, "%s: watches: more than %d resources",
                      ops->framework_name, ZUBE_CTRL_MAX_WATCHES);
            return -1;
        }
        watches[count].declared = ops->watches[count];
        watches[count].informer =
            s_informer_for (self, ops->watches[count], error, error_size);
        if (!watches[count].informer)
            return -1;
    }
    if (count == 0) {
        snprintf (error, error_size, "%s: watches: at least one resource is required",
                  ops->framework_name);
        return -1;
    }
    *count_p = count;
    s_ctrl_host_t *host = s_ctrl_host_new (ctrl, handle);
    if (!host) {
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    char why[512] = "";
    void *instance = ops->create (&host->table, why, sizeof why);
    if (!instance) {
        snprintf (error, error_size, "%s: create failed: %s", ops->framework_name,
                  why[0] ? why : "(no reason given)");
        free (host);
        return -1;
    }
    *instance_p = instance;
    *host_p = host;
    return 0;
}

static s_ctrl_t *
s_ctrl_new (void)
{
    s_ctrl_t *ctrl = calloc (1, sizeof *ctrl);
    if (!ctrl)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&ctrl->wake, &attr);
    pthread_cond_init (&ctrl->idle, &attr);
    pthread_condattr_destroy (&attr);
    return ctrl;
}

//  Loads the controller plugin file or name; answers the new controller,
//  or NULL with error. A name already running is refused.
static s_ctrl_t *
s_ctrl_load (zcm_manager_t *self, const char *file, char *error, size_t error_size)
{
    char *why = NULL;
    zube_plugin_handle_t *handle =
        zube_plugin_host_load (self->plugins, file, ZUBE_PLUGIN_CONTROLLER, &why);
    if (!handle) {
        snprintf (error, error_size, "%s", why ? why : "cannot load");
        free (why);
        return NULL;
    }
    const zube_ctrl_ops_t *ops = zube_plugin_handle_ops (handle);
    for (size_t i = 0; i < self->ctrl_count; i++)
        if (streq (self->ctrls[i]->name, ops->framework_name)) {
            snprintf (error, error_size,
                      "controller \"%s\" is already running (swap replaces it)",
                      ops->framework_name);
            zube_plugin_host_unload (self->plugins, &handle);
            return NULL;
        }
    uint32_t workers = 1;
    if (s_workers_of (self, ops, &workers, error, error_size) != 0) {
        zube_plugin_host_unload (self->plugins, &handle);
        return NULL;
    }
    s_ctrl_t **grown = realloc (self->ctrls, (self->ctrl_count + 1) * sizeof *grown);
    s_ctrl_t *ctrl = s_ctrl_new ();
    if (grown)
        self->ctrls = grown;
    if (!grown || !ctrl || !(ctrl->name = strdup (ops->framework_name)) ||
        !(ctrl->queue =
              zcm_queue_new (ZUBE_CTRL_BACKOFF_BASE_MS, ZUBE_CTRL_BACKOFF_MAX_MS))) {
        snprintf (error, error_size, "out of memory");
        zube_plugin_host_unload (self->plugins, &handle);
        s_ctrl_destroy (&ctrl);
        return NULL;
    }
    ctrl->manager = self;
    ctrl->ops = ops;
    if (s_instance_new (self, ctrl, handle, &ctrl->instance, &ctrl->host, ctrl->watches,
                        &ctrl->watch_count, error, error_size) != 0) {
        zube_plugin_host_unload (self->plugins, &handle);
        s_ctrl_destroy (&ctrl);
        return NULL;
    }
    ctrl->handle = handle;
    ctrl->resync_pending = true;
    ctrl->workers = workers;
    self->ctrls[self->ctrl_count++] = ctrl;
    s_workers_start (ctrl);
    zube_log_info ("msg=\"controller started\" controller=%s path=%s workers=%u",
                   ctrl->name, zube_plugin_handle_path (handle), ctrl->workers);
    return ctrl;
}

static s_ctrl_t *
s_ctrl_find (zcm_manager_t *self, const char *name, size_t *index_p)
{
    for (size_t i = 0; name && i < self->ctrl_count; i++)
        if (streq (self->ctrls[i]->name, name)) {
            if (index_p)
                *index_p = i;
            return self->ctrls[i];
        }
    return NULL;
}

//  Replaces the running controller of the same name with the plugin in
//  file, between two syncs; the new instance resyncs every cached key.
//  The old one keeps running when the new one cannot start.
static int
s_ctrl_swap (zcm_manager_t *self, const char *file, char *name, size_t name_size,
             char *error, size_t error_size)
{
    char *why = NULL;
    zube_plugin_handle_t *handle =
        zube_plugin_host_load (self->plugins, file, ZUBE_PLUGIN_CONTROLLER, &why);
    if (!handle) {
        snprintf (error, error_size, "%s", why ? why : "cannot load");
        free (why);
        return -1;
    }
    const zube_ctrl_ops_t *ops = zube_plugin_handle_ops (handle);
    snprintf (name, name_size, "%s", ops->framework_name);
    s_ctrl_t *ctrl = s_ctrl_find (self, ops->framework_name, NULL);
    if (!ctrl) {
        snprintf (error, error_size, "controller \"%s\" is not running (load it)",
                  ops->framework_name);
        zube_plugin_host_unload (self->plugins, &handle);
        return -1;
    }
    void *instance = NULL;
    s_ctrl_host_t *host = NULL;
    s_watch_t watches[ZUBE_CTRL_MAX_WATCHES];
    size_t count = 0;
    uint32_t workers = 1;
    if (s_workers_of (self, ops, &workers, error, error_size) != 0 ||
        s_instance_new (self, ctrl, handle, &instance, &host, watches, &count, error,
                        error_size) != 0) {
        zube_plugin_host_unload (self->plugins, &handle);
        return -1;
    }
    //  The syncs in flight end first, then the workers (their count may
    //  change): nothing is lost (keys stay queued), nothing runs twice
    s_pause (ctrl);
    s_workers_stop (ctrl);
    ctrl->ops->destroy (ctrl->instance);
    zube_plugin_host_unload (self->plugins, &ctrl->handle);
    free (ctrl->host);
    ctrl->handle = handle;
    ctrl->ops = ops;
    ctrl->instance = instance;
    ctrl->host = host;
    memcpy (ctrl->watches, watches, sizeof watches);
    ctrl->watch_count = count;
    ctrl->resync_pending = true;
    ctrl->workers = workers;
    s_unpause (ctrl);
    s_workers_start (ctrl);
    return 0;
}

static int
s_ctrl_unload (zcm_manager_t *self, const char *name)
{
    size_t index;
    s_ctrl_t *ctrl = s_ctrl_find (self, name, &index);
    if (!ctrl)
        return -1;
    //  Its syncs in flight end first (others may run while this waits:
    //  look the controller up again after)
    s_pause (ctrl);
    s_workers_stop (ctrl);
    if (!s_ctrl_find (self, name, &index))
        return -1;
    self->ctrls[index] = self->ctrls[--self->ctrl_count];
    s_ctrl_destroy (&ctrl);
    zube_log_info ("msg=\"controller stopped\" controller=%s", name);
    return 0;
}

static bool
s_resync_one (const char *key, const ProtobufCMessage *object, void *arg)
{
    (void)key;
    void **pair = arg;
    s_ctrl_t *ctrl = pair[0];
    const s_watch_t *watch = pair[1];
    if (ctrl->ops->on_add)
        ctrl->ops->on_add (ctrl->instance, watch->declared, object);
    else if (watch == &ctrl->watches[0])
        s_enqueue_own_key (ctrl, object);
    return true;
}

//  on_add for every cached object, as after a (re)start
static void
s_resync (s_ctrl_t *ctrl)
{
    ctrl->resync_pending = false;
    for (size_t i = 0; i < ctrl->watch_count; i++) {
        void *pair[2] = {ctrl, &ctrl->watches[i]};
        zube_informer_each (ctrl->watches[i].informer->informer, s_resync_one, pair);
    }
}

bool
zcm_controller_enabled (const char *list, const char *name)
{
    if (!list || !*list)
        list = "*";
    bool star = false;
    const char *word = list;
    while (*word) {
        size_t length = strcspn (word, ",");
        while (length && (*word == ' ')) {
            word++;
            length--;
        }
        size_t name_length = strlen (name);
        if (length == 1 && *word == '*')
            star = true;
        else if (length == name_length && strncmp (word, name, length) == 0)
            return true;
        else if (length == name_length + 1 && *word == '-' &&
                 strncmp (word + 1, name, name_length) == 0)
            return false;
        word += length;
        if (*word == ',')
            word++;
    }
    return star;
}

//  Every directory the plugin loader searches, in its order
static zlistx_t *
s_plugin_dirs (const char *plugin_path)
{
    zlistx_t *dirs = zlistx_new ();
    if (!dirs)
        return NULL;
    zlistx_set_destructor (dirs, s_free_key);
    const char *lists[2] = {plugin_path, getenv ("ZUBE_PLUGIN_PATH")};
    for (size_t l = 0; l < 2; l++) {
        const char *dir = lists[l];
        while (dir && *dir) {
            size_t length = strcspn (dir, ":");
            if (length)
                zlistx_add_end (dirs, strndup (dir, length));
            dir += length;
            if (*dir == ':')
                dir++;
        }
    }
    const char *builddir = getenv ("ZUBE_BUILDDIR");
    char *dir = NULL;
    if (builddir && *builddir && asprintf (&dir, "%s/plugins", builddir) >= 0)
        zlistx_add_end (dirs, dir);
    char self_path[PATH_MAX];
    ssize_t length = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    if (length > 0) {
        self_path[length] = 0;
        char *slash = strrchr (self_path, '/');
        if (slash) {
            *slash = 0;
            size_t dir_length = strlen (self_path);
            if (dir_length >= 6 && streq (self_path + dir_length - 6, "/.libs"))
                self_path[dir_length - 6] = 0;
            char probe[PATH_MAX + 32];
            snprintf (probe, sizeof probe, "%s/Makefile", self_path);
            if (access (probe, R_OK) == 0 &&
                asprintf (&dir, "%s/plugins", self_path) >= 0)
                zlistx_add_end (dirs, dir);
        }
    }
    zlistx_add_end (dirs, strdup (ZUBE_PLUGINDIR));
    return dirs;
}

//  Starts every controller plugin found that --controllers enables; a
//  name the list turns on by name must be found.
static int
s_start_controllers (zcm_manager_t *self, char *error, size_t error_size)
{
    zlistx_t *dirs = s_plugin_dirs (self->config.plugin_path);
    zhashx_t *seen = zhashx_new ();
    if (!dirs || !seen) {
        zlistx_destroy (&dirs);
        zhashx_destroy (&seen);
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    int rc = 0;
    for (const char *dir = zlistx_first (dirs); dir && rc == 0;
         dir = zlistx_next (dirs)) {
        for (int libs = 0; libs < 2 && rc == 0; libs++) {
            char path[PATH_MAX];
            snprintf (path, sizeof path, "%s%s", dir, libs ? "/.libs" : "");
            DIR *listing = opendir (path);
            struct dirent *entry;
            while (listing && rc == 0 && (entry = readdir (listing))) {
                size_t length = strlen (entry->d_name);
                if (length < 4 || !streq (entry->d_name + length - 3, ".so"))
                    continue;
                char file[PATH_MAX + 256];
                snprintf (file, sizeof file, "%s/%s", path, entry->d_name);
                char *why = NULL;
                zube_plugin_handle_t *handle = zube_plugin_host_load (
                    self->plugins, file, ZUBE_PLUGIN_CONTROLLER, &why);
                free (why); //  not a controller plugin: not ours
                if (!handle)
                    continue;
                const zube_ctrl_ops_t *ops = zube_plugin_handle_ops (handle);
                char name[256];
                snprintf (name, sizeof name, "%s", ops->framework_name);
                zube_plugin_host_unload (self->plugins, &handle);
                if (zhashx_lookup (seen, name) ||
                    !zcm_controller_enabled (self->config.controllers, name))
                    continue;
                zhashx_insert (seen, name, (void *)1);
                if (!s_ctrl_load (self, file, error, error_size))
                    rc = -1;
            }
            if (listing)
                closedir (listing);
        }
    }
    //  Names turned on explicitly must exist
    const char *word = self->config.controllers ? self->config.controllers : "";
    while (rc == 0 && *word) {
        size_t length = strcspn (word, ",");
        char name[256];
        snprintf (name, sizeof name, "%.*s", (int)(length < 255 ? length : 255), word);
        if (name[0] && name[0] != '-' && !streq (name, "*") &&
            !zhashx_lookup (seen, name)) {
            snprintf (error, error_size,
                      "--controllers: controller \"%s\" not found (no controller plugin "
                      "with that name in the plugin path)",
                      name);
            rc = -1;
        }
        word += length;
        if (*word == ',')
            word++;
    }
    zlistx_destroy (&dirs);
    zhashx_destroy (&seen);
    return rc;
}

//  ---------------------------------------------------------------------
//  The service

typedef struct {
    const char *name;
    const char *path;
    const char *version;
    uint32_t abi_version;
    char message[256];
} s_listed_t;

static void
s_list_reply (zcm_manager_t *self, zube_bus_request_t *request)
{
    Zube__PluginList list = ZUBE__PLUGIN_LIST__INIT;
    list.api_version = "zube.io/v1alpha1";
    list.kind = "PluginList";
    size_t count = self->ctrl_count;
    Zube__Plugin *plugins = calloc (count + 1, sizeof *plugins);
    Zube__ObjectMeta *metas = calloc (count + 1, sizeof *metas);
    Zube__PluginSpec *specs = calloc (count + 1, sizeof *specs);
    Zube__PluginStatus *statuses = calloc (count + 1, sizeof *statuses);
    Zube__Plugin **items = calloc (count + 1, sizeof *items);
    char (*messages)[256] = calloc (count + 1, sizeof *messages);
    if (!plugins || !metas || !specs || !statuses || !items || !messages) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        s_ctrl_t *ctrl = self->ctrls[i];
        const zube_plugin_t *descriptor = zube_plugin_handle_descriptor (ctrl->handle);
        zube__plugin__init (&plugins[i]);
        zube__object_meta__init (&metas[i]);
        zube__plugin_spec__init (&specs[i]);
        zube__plugin_status__init (&statuses[i]);
        plugins[i].api_version = "zube.io/v1alpha1";
        plugins[i].kind = "Plugin";
        metas[i].name = ctrl->name;
        specs[i].service = ZCM_SERVICE;
        specs[i].plugin_kind = "controller";
        specs[i].name = (char *)descriptor->name;
        specs[i].path = (char *)zube_plugin_handle_path (ctrl->handle);
        specs[i].version = (char *)descriptor->version;
        statuses[i].phase = "Loaded";
        statuses[i].has_abi_version = 1;
        statuses[i].abi_version = (int32_t)descriptor->abi_version;
        statuses[i].version = (char *)descriptor->version;
        snprintf (messages[i], sizeof messages[i],
                  "workers=%u queue=%zu syncs=%" PRIu64 " errors=%" PRIu64, ctrl->workers,
                  zcm_queue_length (ctrl->queue) + zcm_queue_waiting (ctrl->queue),
                  ctrl->syncs, ctrl->sync_errors);
        statuses[i].message = messages[i];
        plugins[i].metadata = &metas[i];
        plugins[i].spec = &specs[i];
        plugins[i].status = &statuses[i];
        items[i] = &plugins[i];
    }
    list.n_items = count;
    list.items = items;
    zube_bus_respond_msg (request, &list.base);
done:
    free (plugins), free (metas), free (specs), free (statuses), free (items);
    free (messages);
}

static const char *
s_plugin_arg (Zube__Plugin *plugin, bool path)
{
    if (!plugin->spec)
        return NULL;
    const char *value = path ? plugin->spec->path : plugin->spec->name;
    if (path && (!value || !*value))
        value = plugin->spec->name;
    return value && *value ? value : NULL;
}

static void
s_plugins (zcm_manager_t *self, zube_bus_request_t *request, const char *method)
{
    if (streq (method, "plugins.list")) {
        s_list_reply (self, request);
        return;
    }
    Zube__Plugin *plugin = (Zube__Plugin *)zube_bus_request_unpack_or_reject (
        request, &zube__plugin__descriptor);
    if (!plugin)
        return;
    char error[1024];
    if (streq (method, "plugins.load")) {
        const char *path = s_plugin_arg (plugin, true);
        s_ctrl_t *ctrl = path ? s_ctrl_load (self, path, error, sizeof error) : NULL;
        if (!path)
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                    "spec.path: Required value");
        else if (!ctrl)
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST, "%s", error);
        else
            zube_bus_respond (request, ZUBE_OK, NULL, NULL, 0);
    } else if (streq (method, "plugins.swap")) {
        const char *path = s_plugin_arg (plugin, true);
        char name[256] = "";
        if (!path)
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                    "spec.path: Required value");
        else if (s_ctrl_swap (self, path, name, sizeof name, error, sizeof error) != 0) {
            zube_log_warn ("msg=\"swap refused\" path=%s error=\"%s\"", path, error);
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                    "%s: refused, the running controller stays: %s", path,
                                    error);
        } else {
            zube_log_info ("msg=\"controller swapped\" controller=%s path=%s", name,
                           path);
            zube_bus_respond (request, ZUBE_OK, NULL, NULL, 0);
        }
    } else if (streq (method, "plugins.unload")) {
        const char *name = s_plugin_arg (plugin, false);
        if (!name)
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                    "spec.name: Required value");
        else if (s_ctrl_unload (self, name) != 0)
            zube_bus_respond_error (request, ZUBE_NOT_FOUND,
                                    "controller \"%s\" is not running", name);
        else
            zube_bus_respond (request, ZUBE_OK, NULL, NULL, 0);
    } else
        zube_bus_respond_error (request, ZUBE_NOT_FOUND,
                                "controllers: unknown method \"%s\"", method);
    protobuf_c_message_free_unpacked (&plugin->base, NULL);
}

//  stats: JSON, one object per controller, for tests and people.
static char *
s_stats_text (zcm_manager_t *self)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    fprintf (out,
             "{\"identity\": \"%s\", \"leader\": %s, \"event_writes\": %" PRIu64
             ", \"controllers\": {",
             self->identity,
             !self->leader || zube_leader_is_leader (self->leader) ? "true" : "false",
             self->event_writes);
    for (size_t i = 0; i < self->ctrl_count; i++) {
        s_ctrl_t *ctrl = self->ctrls[i];
        fprintf (out,
                 "%s\"%s\": {\"queue\": %zu, \"waiting\": %zu, \"syncs\": %" PRIu64
                 ", \"errors\": %" PRIu64 ", \"ready\": %s, \"workers\": %u"
                 ", \"in_flight\": %zu, \"max_in_flight\": %zu}",
                 i ? ", " : "", ctrl->name, zcm_queue_length (ctrl->queue),
                 zcm_queue_waiting (ctrl->queue), ctrl->syncs, ctrl->sync_errors,
                 s_ready (ctrl) ? "true" : "false", ctrl->workers, ctrl->in_flight,
                 ctrl->max_in_flight);
    }
    fprintf (out, "}}\n");
    fclose (out);
    return text;
}

static void s_serve_locked (zcm_manager_t *self, zube_bus_request_t *request);

//  Requests to the service, on the loop thread, under the lock.
static void
s_serve (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    (void)bus;
    zcm_manager_t *self = arg;
    s_lock (self);
    s_serve_locked (self, request);
    s_unlock (self);
}

static void
s_serve_locked (zcm_manager_t *self, zube_bus_request_t *request)
{
    const char *method = zube_bus_request_method (request);
    if (strncmp (method, "plugins.", 8) == 0) {
        if (!streq (method, "plugins.list") &&
            !zube_plugin_host_may_change (zube_bus_request_sender (request))) {
            zube_bus_respond_error (request, ZUBE_FORBIDDEN,
                                    "%s may not call controllers/%s",
                                    zube_bus_request_sender (request), method);
            return;
        }
        s_plugins (self, request, method);
        return;
    }
    if (!streq (method, "stats")) {
        zube_bus_respond_error (
            request, ZUBE_NOT_FOUND,
            "controllers: unknown method \"%s\" (stats, plugins.list, "
            "plugins.load, plugins.swap, plugins.unload)",
            method);
        return;
    }
    char *text = s_stats_text (self);
    if (!text) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        return;
    }
    zube_bus_respond (request, ZUBE_OK, NULL, text, strlen (text));
    free (text);
}

//  ---------------------------------------------------------------------
//  The manager

//  --controller-arg NAME.workers=N: a whole number from 1 to ZCM_WORKERS_MAX.
static int
s_workers_setting (zcm_manager_t *self, const char *name, const char *value, char *error,
                   size_t error_size)
{
    char *end = NULL;
    errno = 0;
    long workers = strtol (value, &end, 10);
    if (!*value || *end || errno || workers < 1 || workers > ZCM_WORKERS_MAX) {
        snprintf (error, error_size,
                  "--controller-arg %s.workers=%s: expected a whole number from 1 to %d",
                  name, value, ZCM_WORKERS_MAX);
        return -1;
    }
    uint32_t *held = malloc (sizeof *held);
    if (!held) {
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    *held = (uint32_t)workers;
    zhashx_update (self->workers, name, held);
    return 0;
}

zcm_manager_t *
zcm_manager_new (const zcm_config_t *config, char *error, size_t error_size)
{
    zcm_manager_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->config = *config;
    if (config->identity)
        snprintf (self->identity, sizeof self->identity, "%s", config->identity);
    else {
        char host[200] = "localhost";
        gethostname (host, sizeof host - 1);
        snprintf (self->identity, sizeof self->identity, "%s_%d", host, (int)getpid ());
    }
    pthread_mutex_init (&self->lock, NULL);
    self->plugins = zube_plugin_host_new ();
    self->informers = zhashx_new ();
    self->events = zhashx_new ();
    self->graveyard = zlistx_new ();
    self->workers = zhashx_new ();
    if (!self->plugins || !self->informers || !self->events || !self->graveyard ||
        !self->workers) {
        snprintf (error, error_size, "out of memory");
        zcm_manager_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->informers, s_informer_destructor);
    zhashx_set_destructor (self->events, s_free_key);
    zhashx_set_destructor (self->workers, s_free_key);
    if (config->plugin_path)
        zube_plugin_host_set_path (self->plugins, config->plugin_path);
    for (size_t i = 0; i < config->setting_count; i++) {
        //  NAME.KEY=VALUE
        const char *setting = config->settings[i];
        const char *dot = strchr (setting, '.');
        const char *equals = dot ? strchr (dot, '=') : NULL;
        if (!dot || !equals || dot == setting || equals == dot + 1) {
            snprintf (error, error_size,
                      "--controller-arg: expected NAME.KEY=VALUE, got \"%s\"", setting);
            zcm_manager_destroy (&self);
            return NULL;
        }
        char *name = strndup (setting, (size_t)(dot - setting));
        char *key = strndup (dot + 1, (size_t)(equals - dot - 1));
        int rc = name && key && streq (key, "workers")
                     ? s_workers_setting (self, name, equals + 1, error, error_size)
                     : 0;
        if (name && key && rc == 0)
            zube_plugin_host_set_config (self->plugins, name, key, equals + 1);
        free (name);
        free (key);
        if (rc != 0) {
            zcm_manager_destroy (&self);
            return NULL;
        }
    }
    self->bus = zube_bus_new (&config->bus);
    self->api_bus = zube_bus_new (&config->bus);
    self->api = self->api_bus ? zube_api_new (self->api_bus) : NULL;
    if (!self->bus || !self->api) {
        snprintf (error, error_size, "cannot connect to the broker at %s",
                  config->bus.endpoint ? config->bus.endpoint
                                       : ZUBE_BUS_DEFAULT_ENDPOINT);
        zcm_manager_destroy (&self);
        return NULL;
    }
    if (config->leader_elect) {
        self->leader =
            zube_leader_new (self->api,
                             &(zube_leader_config_t){
                                 .namespace_ = config->lease_namespace,
                                 .name = config->lease_name,
                                 .identity = self->identity,
                                 .lease_duration_ms = config->lease_duration_ms,
                                 .renew_deadline_ms = config->renew_deadline_ms,
                                 .retry_period_ms = config->retry_period_ms,
                             },
                             error, error_size);
        if (!self->leader) {
            zcm_manager_destroy (&self);
            return NULL;
        }
    }
    if (s_start_controllers (self, error, error_size) != 0) {
        zcm_manager_destroy (&self);
        return NULL;
    }
    return self;
}

void
zcm_manager_destroy (zcm_manager_t **self_p)
{
    zcm_manager_t *self = *self_p;
    if (!self)
        return;
    s_lock (self);
    s_workers_stop_all (self);
    while (self->ctrl_count)
        s_ctrl_destroy (&self->ctrls[--self->ctrl_count]);
    s_unlock (self);
    free (self->ctrls);
    //  No sync runs: the graveyard goes, then the caches
    s_retired_t *retired;
    while (self->graveyard && (retired = zlistx_detach (self->graveyard, NULL))) {
        protobuf_c_message_free_unpacked (retired->object, NULL);
        free (retired);
    }
    zlistx_destroy (&self->graveyard);
    zhashx_destroy (&self->workers);
    zhashx_destroy (&self->informers);
    zhashx_destroy (&self->events);
    zube_leader_destroy (&self->leader);
    zube_api_destroy (&self->api);
    zube_bus_destroy (&self->api_bus);
    zube_bus_destroy (&self->bus);
    zube_plugin_host_destroy (&self->plugins);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

//  One sync of key (popped by worker, which frees it), the lock held.
static void
s_sync_one (s_worker_t *worker, char *key)
{
    s_ctrl_t *ctrl = worker->ctrl;
    zcm_manager_t *self = ctrl->manager;
    worker->syncing = true;
    worker->epoch = self->epoch;
    self->syncing++;
    if (++ctrl->in_flight > ctrl->max_in_flight)
        ctrl->max_in_flight = ctrl->in_flight;
    char error[1024] = "";
    zube_status_t status = ctrl->ops->sync (ctrl->instance, key, error, sizeof error);
    worker->syncing = false;
    self->syncing--;
    if (--ctrl->in_flight == 0)
        pthread_cond_broadcast (&ctrl->idle);
    ctrl->syncs++;
    if (status == ZUBE_OK)
        zcm_queue_forget (ctrl->queue, key);
    else {
        ctrl->sync_errors++;
        zube_log_warn ("msg=\"sync failed, requeued\" controller=%s key=%s reason=%s "
                       "error=\"%s\"",
                       ctrl->name, key, zube_status_reason (status), error);
        zcm_queue_add_rate_limited (ctrl->queue, key, s_now_ms ());
    }
    zcm_queue_done (ctrl->queue, key);
    free (key);
    s_graveyard_sweep (self);
}

int
zcm_manager_run (zcm_manager_t *self, volatile int *interrupted, char *error,
                 size_t error_size)
{
    zube_log_info ("msg=\"running\" identity=%s controllers=%zu leader_elect=%s",
                   self->identity, self->ctrl_count, self->leader ? "true" : "false");
    s_lock (self);
    self->running = true;
    for (size_t i = 0; i < self->ctrl_count; i++)
        s_workers_start (self->ctrls[i]);
    s_unlock (self);
    int rc = 0;
    while (!*interrupted) {
        int64_t now = s_now_ms ();
        int timeout = 100;
        bool leading = true;
        if (self->leader) {
            int64_t next = -1;
            zube_leader_state_t state = zube_leader_tick (self->leader, &next);
            if (state == ZUBE_LEADER_LOST) {
                snprintf (error, error_size, "leader election lost (lease %s/%s)",
                          self->config.lease_namespace, self->config.lease_name);
                rc = -1;
                break;
            }
            leading = state == ZUBE_LEADER_LEADING;
            if (next >= 0 && next < timeout)
                timeout = (int)next;
        }
        s_lock (self);
        self->leading = leading;
        for (size_t i = 0; i < self->ctrl_count; i++) {
            s_ctrl_t *ctrl = self->ctrls[i];
            int64_t due = zcm_queue_flush (ctrl->queue, now);
            if (due >= 0 && due < timeout)
                timeout = (int)due;
            if (!leading || !s_ready (ctrl))
                continue;
            if (ctrl->resync_pending)
                s_resync (ctrl);
            if (zcm_queue_length (ctrl->queue))
                pthread_cond_broadcast (&ctrl->wake);
        }
        s_unlock (self);
        if (!self->serving) {
            self->serving = true;
            if (zube_bus_serve (self->bus, ZCM_SERVICE, s_serve, self) != 0)
                zube_log_warn ("msg=\"cannot serve\" service=" ZCM_SERVICE);
        }
        //  Without the lock: what arrives takes it (the informers' guard,
        //  s_serve) while the workers sync
        zube_bus_poll (self->bus, timeout);
        zube_bus_poll (self->api_bus, 0);
    }
    zube_log_info ("msg=\"stopping\" identity=%s", self->identity);
    s_lock (self);
    s_workers_stop_all (self);
    s_unlock (self);
    return rc;
}

void
zcm_manager_release (zcm_manager_t *self)
{
    if (!self->leader || !zube_leader_is_leader (self->leader))
        return;
    zube_api_set_timeout (self->api, 2000);
    zube_leader_release (self->leader);
}
