/*  scheduler - zube-scheduler's service: informers on nodes and pods feed
    the node cache and the queue; the loop pops pods, runs their profile's
    cycle, and binds through the apiserver's binding subresource without
    waiting (many binds in flight). A failed bind un-assumes the pod and
    requeues it with back-off; a pod no node fits gets PodScheduled=False
    (reason Unschedulable, kube-scheduler's message) and a FailedScheduling
    Event, and waits for a cluster event that may help. A pod a permit
    plugin holds stays in flight, assumed, until its profile hands it back
    between two cycles: allowed (bound as any other) or rejected (requeued
    with back-off, PodScheduled=False naming the plugin). */
#define _GNU_SOURCE
#include "scheduler.h"
#include "zs_permit.h"
#include "api.pb-c.h"
#include "zube/api.h"
#include "zube/informer.h"
#include "zube/log.h"
#include "zube/plugin_host.h"
#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Pods scheduled between two polls of the bus, at most
#define S_BATCH 256
#define S_MAX_IN_FLIGHT 4096
#define S_LATENCY_BUCKETS 14
static const int64_t s_latency_bounds_ms[S_LATENCY_BUCKETS] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 60000};

struct _zs_scheduler_t {
    zs_scheduler_config_t config;
    zube_bus_t *bus;
    zube_api_t *api;
    zs_registry_t *registry;
    zs_profiles_t profiles;
    zs_cache_t *cache;
    zs_queue_t *queue;
    zube_informer_t *nodes;
    zube_informer_t *pods;
    //  For plugins (Coscheduling), through their handle
    zube_informer_t *podgroups;
    //  RemotePolicy's own connection: its calls run no other callback
    zube_bus_t *policy_bus;
    //  The configuration the profiles were built from (NULL: defaults)
    Zube__KubeSchedulerConfiguration *kube_config;
    size_t in_flight;
    zs_scheduler_stats_t stats;
    //  Queued -> bound latency histogram (ms upper bounds, then +Inf)
    uint64_t latency_buckets[S_LATENCY_BUCKETS + 1];
    double latency_sum_s;
};

typedef struct {
    zs_scheduler_t *scheduler;
    zs_qpod_t *qpod;
    char *node;
} s_bind_t;

static int64_t
s_now_ms (void)
{
    return zclock_mono ();
}

static void
s_node_event (zs_scheduler_t *self, uint32_t event)
{
    zs_queue_event (self->queue, event, s_now_ms ());
}

static void
s_node_added (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer;
    zs_scheduler_t *self = arg;
    zs_cache_node_set (self->cache, (const Zube__Node *)object);
    s_node_event (self, ZUBE_SCHED_EVENT_NODE_ADD);
}

static void
s_node_updated (zube_informer_t *informer, const ProtobufCMessage *old_object,
                const ProtobufCMessage *new_object, void *arg)
{
    (void)informer, (void)old_object;
    zs_scheduler_t *self = arg;
    //  Heartbeats and conditions change nothing a pod could fit by
    if (zs_cache_node_set (self->cache, (const Zube__Node *)new_object) == 1)
        s_node_event (self, ZUBE_SCHED_EVENT_NODE_UPDATE);
}

static void
s_node_deleted (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer;
    zs_scheduler_t *self = arg;
    const Zube__Node *node = (const Zube__Node *)object;
    if (node->metadata && node->metadata->name)
        zs_cache_node_remove (self->cache, node->metadata->name);
}

static bool
s_terminal (const Zube__Pod *pod)
{
    const char *phase = pod->status ? pod->status->phase : NULL;
    return phase && (streq (phase, "Succeeded") || streq (phase, "Failed"));
}

//  A pod deleted while it waits at permit is rejected (Kubernetes'
//  RejectWaitingPod on delete): its siblings learn it at unreserve.
static void
s_waiting_reject (zs_scheduler_t *self, const char *key, const char *message)
{
    for (size_t i = 0; i < self->profiles.count; i++)
        zs_profile_waiting_reject (self->profiles.profiles[i], key, message);
}

//  Any version of a pod: on a node it counts in the cache; pending and
//  ours it is queued (unless the cache already holds it: assumed). Most
//  events are status updates of bound pods, which change nothing the
//  cache counts: they are recognised before any copy is made.
static void
s_pod_seen (zs_scheduler_t *self, const Zube__Pod *object)
{
    const Zube__ObjectMeta *meta = object->metadata;
    const Zube__PodSpec *spec = object->spec;
    if (!meta || !meta->name)
        return;
    char key[600];
    snprintf (key, sizeof key, "%s/%s", meta->namespace_ ? meta->namespace_ : "default",
              meta->name);
    const char *node = spec && spec->node_name ? spec->node_name : "";
    bool assumed = false;
    const char *held = zs_cache_pod_node (self->cache, key, &assumed);
    if (*node) {
        zs_queue_remove (self->queue, key);
        if (s_terminal (object)) {
            if (zs_cache_pod_remove (self->cache, key))
                s_node_event (self, ZUBE_SCHED_EVENT_POD_DELETE);
            return;
        }
        //  Requests of a bound pod do not change; its labels may
        if (zs_cache_pod_confirm (self->cache, key, node, object)) {
            //  The binding of a pod assumed here: an assigned pod appeared
            if (held && assumed)
                s_node_event (self, ZUBE_SCHED_EVENT_POD_UPDATE);
            return;
        }
        //  An assigned pod appeared or changed (ZUBE_SCHED_EVENT_POD_UPDATE):
        //  pods waiting for it (InterPodAffinity, PodTopologySpread) may fit
        zs_pod_t *pod = zs_pod_new (object);
        if (pod && zs_cache_pod_add (self->cache, pod, node, false) == 0)
            s_node_event (self, ZUBE_SCHED_EVENT_POD_UPDATE);
        zs_pod_destroy (&pod);
        return;
    }
    const char *scheduler_name = spec && spec->scheduler_name && *spec->scheduler_name
                                     ? spec->scheduler_name
                                     : ZS_DEFAULT_SCHEDULER_NAME;
    zs_profile_t *profile = zs_profiles_find (&self->profiles, scheduler_name);
    bool deleting = meta->deletion_timestamp && *meta->deletion_timestamp;
    if (deleting && held && assumed)
        s_waiting_reject (self, key, "the pod is being deleted");
    if (!profile || deleting || s_terminal (object) || held)
        return;
    zs_pod_t *pod = zs_pod_new (object);
    if (pod)
        zs_queue_add (self->queue, &pod, profile, s_now_ms ());
}

static void
s_pod_added (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer;
    s_pod_seen (arg, (const Zube__Pod *)object);
}

static void
s_pod_updated (zube_informer_t *informer, const ProtobufCMessage *old_object,
               const ProtobufCMessage *new_object, void *arg)
{
    (void)informer, (void)old_object;
    s_pod_seen (arg, (const Zube__Pod *)new_object);
}

static void
s_pod_deleted (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer;
    zs_scheduler_t *self = arg;
    const Zube__ObjectMeta *meta = ((const Zube__Pod *)object)->metadata;
    if (!meta || !meta->name)
        return;
    char key[600];
    snprintf (key, sizeof key, "%s/%s", meta->namespace_ ? meta->namespace_ : "default",
              meta->name);
    zs_queue_remove (self->queue, key);
    s_waiting_reject (self, key, "the pod was deleted");
    bool assumed = false;
    if (zs_cache_pod_node (self->cache, key, &assumed) && !assumed) {
        zs_cache_pod_remove (self->cache, key);
        s_node_event (self, ZUBE_SCHED_EVENT_POD_DELETE);
    }
}

//  ---------------------------------------------------------------------
//  What plugins reach through their handle: the watch caches and the queue

typedef struct {
    zs_scheduler_t *self;
    bool pods;
    zube_sched_object_fn *fn;
    void *arg;
} s_each_t;

//  One object for s_lister_each; false to stop.
static bool
s_each_one (s_each_t *each, const ProtobufCMessage *object)
{
    if (!each->pods)
        return each->fn (object, "", each->arg);
    const Zube__Pod *pod = (const Zube__Pod *)object;
    const Zube__ObjectMeta *meta = pod->metadata;
    if (!meta || !meta->name || s_terminal (pod) ||
        (meta->deletion_timestamp && *meta->deletion_timestamp))
        return true;
    const char *node =
        pod->spec && pod->spec->node_name && *pod->spec->node_name ? pod->spec->node_name
                                                                   : NULL;
    if (!node) {
        char key[600];
        snprintf (key, sizeof key, "%s/%s",
                  meta->namespace_ ? meta->namespace_ : "default", meta->name);
        bool assumed = false;
        node = zs_cache_pod_node (each->self->cache, key, &assumed);
    }
    return each->fn (object, node ? node : "", each->arg);
}

static zube_informer_t *
s_lister_informer (zs_scheduler_t *self, const char *resource)
{
    if (streq (resource, "pods"))
        return self->pods;
    if (streq (resource, "podgroups"))
        return self->podgroups;
    return NULL;
}

static void
s_lister_each (void *arg, const char *resource, const char *namespace_,
               const char *label_key, const char *label_value, zube_sched_object_fn *fn,
               void *fn_arg)
{
    zs_scheduler_t *self = arg;
    zube_informer_t *informer = s_lister_informer (self, resource);
    if (!informer)
        return;
    size_t count = 0;
    const ProtobufCMessage **objects =
        label_key ? zube_informer_list_label (informer, label_key,
                                              label_value ? label_value : "", &count)
        : namespace_ ? zube_informer_list_namespace (informer, namespace_, &count)
                     : zube_informer_list (informer, &count);
    s_each_t each = {self, informer == self->pods, fn, fn_arg};
    for (size_t i = 0; i < count; i++) {
        //  Pods and pod groups both begin with api_version, kind, metadata
        const Zube__ObjectMeta *meta = ((const Zube__Pod *)objects[i])->metadata;
        const char *in = meta && meta->namespace_ ? meta->namespace_ : "default";
        if (namespace_ && !streq (in, namespace_))
            continue;
        if (!s_each_one (&each, objects[i]))
            break;
    }
    free (objects);
}

static const void *
s_lister_get (void *arg, const char *resource, const char *namespace_, const char *name)
{
    zs_scheduler_t *self = arg;
    zube_informer_t *informer = s_lister_informer (self, resource);
    return informer ? zube_informer_get (informer, namespace_, name) : NULL;
}

//  An unschedulable pod of ours goes to the active queue (after its
//  back-off) as if it had changed. One that is active, backing off or in
//  flight gets its turn anyway: a gang's permit asks for every pending
//  sibling each time, and that costs a lookup.
static void
s_lister_activate (void *arg, const char *namespace_, const char *name)
{
    zs_scheduler_t *self = arg;
    char key[600];
    snprintf (key, sizeof key, "%s/%s", namespace_, name);
    zs_qpod_t *qpod = zs_queue_lookup (self->queue, key);
    if (!qpod || qpod->state != ZS_UNSCHEDULABLE)
        return;
    const ProtobufCMessage *object =
        self->pods ? zube_informer_get (self->pods, namespace_, name) : NULL;
    zs_pod_t *pod = object ? zs_pod_new ((const Zube__Pod *)object) : NULL;
    if (pod)
        zs_queue_add (self->queue, &pod, qpod->profile, s_now_ms ());
}

zs_scheduler_t *
zs_scheduler_new (const zs_scheduler_config_t *config, char *error, size_t error_size)
{
    zs_scheduler_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->registry = zs_registry_new (config->plugin_path);
    self->cache = zs_cache_new ();
    if (!self->registry || !self->cache) {
        snprintf (error, error_size, "out of memory");
        zs_scheduler_destroy (&self);
        return NULL;
    }
    zs_registry_set_lister (self->registry, &(zs_lister_t){.each = s_lister_each,
                                                           .get = s_lister_get,
                                                           .activate = s_lister_activate,
                                                           .arg = self});
    //  Policies served on the bus, through a connection of their own
    self->policy_bus = zube_bus_new (&config->bus);
    if (self->policy_bus) {
        zs_remote_set_bus (self->policy_bus);
        zs_registry_add_builtin (self->registry, &zs_remote_policy_ops);
    }
    if (config->config_text && !(self->kube_config = zs_config_decode (
                                     config->config_text, error, error_size))) {
        zs_scheduler_destroy (&self);
        return NULL;
    }
    if (zs_profiles_build (self->registry, self->kube_config, &self->profiles, error,
                           error_size) != 0) {
        zs_scheduler_destroy (&self);
        return NULL;
    }
    self->queue =
        zs_queue_new (self->profiles.profiles[0], self->profiles.initial_backoff_ms,
                      self->profiles.max_backoff_ms);
    self->bus = zube_bus_new (&config->bus);
    self->api = self->bus ? zube_api_new (self->bus) : NULL;
    if (!self->queue || !self->bus || !self->api) {
        snprintf (error, error_size, "cannot connect to the broker at %s",
                  config->bus.endpoint ? config->bus.endpoint
                                       : ZUBE_BUS_DEFAULT_ENDPOINT);
        zs_scheduler_destroy (&self);
        return NULL;
    }
    for (size_t i = 0; i < self->profiles.count; i++) {
        char *text = zs_profile_describe (self->profiles.profiles[i]);
        zube_log_info ("msg=\"profile\" schedulerName=%s plugins=\"%s\"",
                       zs_profile_name (self->profiles.profiles[i]), text ? text : "");
        free (text);
    }
    return self;
}

void
zs_scheduler_destroy (zs_scheduler_t **self_p)
{
    zs_scheduler_t *self = *self_p;
    if (!self)
        return;
    zube_informer_destroy (&self->podgroups);
    zube_informer_destroy (&self->pods);
    zube_informer_destroy (&self->nodes);
    //  Binds still in flight are answered into nothing once the bus goes
    zube_api_destroy (&self->api);
    zube_bus_destroy (&self->bus);
    zs_queue_destroy (&self->queue);
    zs_cache_destroy (&self->cache);
    zs_profiles_clear (&self->profiles);
    zs_registry_destroy (&self->registry);
    zs_remote_set_bus (NULL);
    zube_bus_destroy (&self->policy_bus);
    if (self->kube_config)
        protobuf_c_message_free_unpacked (&self->kube_config->base, NULL);
    free (self);
    *self_p = NULL;
}

void
zs_scheduler_stats (zs_scheduler_t *self, zs_scheduler_stats_t *stats)
{
    *stats = self->stats;
    stats->active = zs_queue_active (self->queue);
    stats->backoff = zs_queue_backoff_count (self->queue);
    stats->unschedulable_queue = zs_queue_unschedulable_count (self->queue);
    stats->in_flight = self->in_flight;
}

//  ---------------------------------------------------------------------
//  Binding

static void
s_bind_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
             const zube_api_error_t *error, void *arg)
{
    (void)api;
    s_bind_t *bind = arg;
    zs_scheduler_t *self = bind->scheduler;
    zs_qpod_t *qpod = bind->qpod;
    self->in_flight--;
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
    if (status == ZUBE_OK) {
        self->stats.bound++;
        int64_t latency = s_now_ms () - qpod->queued_ms;
        size_t bucket = 0;
        while (bucket < S_LATENCY_BUCKETS && latency > s_latency_bounds_ms[bucket])
            bucket++;
        self->latency_buckets[bucket]++;
        self->latency_sum_s += (double)latency / 1000.0;
        zs_profile_post_bind (qpod->profile, qpod->pod, bind->node);
        zs_queue_done (self->queue, qpod);
    } else {
        self->stats.bind_errors++;
        zube_log_warn ("msg=\"bind failed\" pod=%s node=%s reason=%s error=\"%s\"",
                       qpod->pod->key, bind->node, error ? error->reason : "",
                       error ? error->message : "");
        zs_profile_unreserve (qpod->profile, self->cache, qpod->pod, bind->node);
        if (status == ZUBE_NOT_FOUND || status == ZUBE_CONFLICT)
            //  Gone, or bound by someone else: the informer says which
            zs_queue_done (self->queue, qpod);
        else
            zs_queue_backoff (self->queue, qpod, s_now_ms ());
    }
    free (bind->node);
    free (bind);
}

static int
s_bind (zs_scheduler_t *self, zs_qpod_t *qpod, const char *node)
{
    s_bind_t *bind = calloc (1, sizeof *bind);
    if (!bind || !(bind->node = strdup (node))) {
        free (bind);
        return -1;
    }
    bind->scheduler = self;
    bind->qpod = qpod;
    Zube__Binding binding = ZUBE__BINDING__INIT;
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    Zube__ObjectReference target = ZUBE__OBJECT_REFERENCE__INIT;
    binding.api_version = "v1";
    binding.kind = "Binding";
    meta.name = (char *)qpod->pod->view.name;
    meta.namespace_ = (char *)qpod->pod->view.namespace_;
    meta.uid = (char *)qpod->pod->view.uid;
    binding.metadata = &meta;
    target.api_version = "v1";
    target.kind = "Node";
    target.name = (char *)node;
    binding.target = &target;
    uint8_t buffer[1024];
    size_t size = protobuf_c_message_get_packed_size (&binding.base);
    uint8_t *data = size <= sizeof buffer ? buffer : malloc (size);
    if (!data) {
        free (bind->node);
        free (bind);
        return -1;
    }
    protobuf_c_message_pack (&binding.base, data);
    Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
    request.resource = "pods";
    request.namespace_ = meta.namespace_;
    request.subresource = "binding";
    request.name = meta.name;
    request.field_manager = "zube-scheduler";
    request.has_object = 1;
    request.object.len = size;
    request.object.data = data;
    int rc =
        zube_api_call_async (self->api, "create", &request.base, NULL, s_bind_done, bind);
    if (data != buffer)
        free (data);
    if (rc != 0) {
        free (bind->node);
        free (bind);
        return -1;
    }
    self->in_flight++;
    return 0;
}

//  ---------------------------------------------------------------------
//  Unschedulable pods

static void
s_write_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
              const zube_api_error_t *error, void *arg)
{
    (void)api, (void)arg;
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
    if (status != ZUBE_OK && status != ZUBE_CONFLICT && status != ZUBE_NOT_FOUND)
        zube_log_warn ("msg=\"status or event write failed\" error=\"%s\"",
                       error ? error->message : "");
}

static void
s_rfc3339 (char *buf, size_t size)
{
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
s_send_object (zs_scheduler_t *self, const char *method, const char *resource,
               const char *namespace, const char *name, const char *subresource,
               const ProtobufCMessage *object)
{
    size_t size = protobuf_c_message_get_packed_size (object);
    uint8_t *data = malloc (size ? size : 1);
    if (!data)
        return -1;
    protobuf_c_message_pack (object, data);
    int rc;
    if (streq (method, "update")) {
        Zube__UpdateRequest request = ZUBE__UPDATE_REQUEST__INIT;
        request.resource = (char *)resource;
        request.namespace_ = (char *)namespace;
        request.name = (char *)name;
        request.subresource = (char *)subresource;
        request.field_manager = "zube-scheduler";
        request.has_object = 1;
        request.object.len = size;
        request.object.data = data;
        rc = zube_api_call_async (self->api, "update", &request.base, NULL, s_write_done,
                                  NULL);
    } else {
        Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
        request.resource = (char *)resource;
        request.namespace_ = (char *)namespace;
        request.field_manager = "zube-scheduler";
        request.has_object = 1;
        request.object.len = size;
        request.object.data = data;
        rc = zube_api_call_async (self->api, "create", &request.base, NULL, s_write_done,
                                  NULL);
    }
    free (data);
    return rc;
}

//  Deletes the victims preemption chose, each with its own grace period,
//  only while it still is the pod that was chosen (uid precondition).
static void
s_delete_victims (zs_scheduler_t *self, zs_pod_t *pod, const zs_result_t *result)
{
    for (size_t i = 0; i < result->victim_count; i++) {
        const zube_sched_pod_t *victim = &result->victims[i]->view;
        Zube__DeleteRequest request = ZUBE__DELETE_REQUEST__INIT;
        Zube__Preconditions preconditions = ZUBE__PRECONDITIONS__INIT;
        preconditions.uid = (char *)victim->uid;
        request.resource = "pods";
        request.namespace_ = (char *)victim->namespace_;
        request.name = (char *)victim->name;
        request.preconditions = victim->uid && *victim->uid ? &preconditions : NULL;
        zube_log_info ("msg=\"preempting\" pod=%s victim=%s/%s node=%s", pod->key,
                       victim->namespace_, victim->name, result->nominated);
        if (zube_api_call_async (self->api, "delete", &request.base, NULL, s_write_done,
                                 NULL) != 0)
            zube_log_warn ("msg=\"preemption delete failed\" victim=%s/%s",
                           victim->namespace_, victim->name);
    }
}

//  PodScheduled=False, Unschedulable, message; and an Event. Only when
//  the condition's message changes, so a pod that keeps failing the same
//  way writes nothing more.
static void
s_report_unschedulable (zs_scheduler_t *self, zs_pod_t *pod, const char *message,
                        const char *nominated)
{
    Zube__Pod *object = pod->object;
    bool had_status = object->status != NULL;
    if (!had_status) {
        static Zube__PodStatus empty = ZUBE__POD_STATUS__INIT;
        object->status = &empty;
    }
    Zube__PodStatus *status = object->status;
    Zube__PodCondition *existing = NULL;
    for (size_t i = 0; i < status->n_conditions; i++)
        if (status->conditions[i]->type &&
            streq (status->conditions[i]->type, "PodScheduled"))
            existing = status->conditions[i];
    bool same = existing && existing->status && streq (existing->status, "False") &&
                existing->message && streq (existing->message, message);
    char *had_nominated = status->nominated_node_name;
    bool same_nominated =
        !*nominated || (had_nominated && streq (had_nominated, nominated));
    if (!same_nominated) {
        //  status.nominatedNodeName, written with the condition below
        status->nominated_node_name = (char *)nominated;
        same = false;
    }
    if (!same) {
        char now[64];
        s_rfc3339 (now, sizeof now);
        Zube__PodCondition condition = ZUBE__POD_CONDITION__INIT;
        condition.type = "PodScheduled";
        condition.status = "False";
        condition.reason = "Unschedulable";
        condition.message = (char *)message;
        condition.last_transition_time = now;
        Zube__PodCondition **conditions = status->conditions;
        size_t count = status->n_conditions;
        Zube__PodCondition **with = calloc (count + 1, sizeof *with);
        if (with) {
            size_t n = 0;
            for (size_t i = 0; i < count; i++)
                if (conditions[i] != existing)
                    with[n++] = conditions[i];
            with[n++] = &condition;
            status->conditions = with;
            status->n_conditions = n;
            s_send_object (self, "update", "pods", pod->view.namespace_, pod->view.name,
                           "status", &object->base);
            status->conditions = conditions;
            status->n_conditions = count;
            free (with);
        }
        status->nominated_node_name = had_nominated;
        //  The Event, as kube-scheduler records it
        Zube__Event event = ZUBE__EVENT__INIT;
        Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
        Zube__ObjectReference involved = ZUBE__OBJECT_REFERENCE__INIT;
        Zube__EventSource source = ZUBE__EVENT_SOURCE__INIT;
        char name[512];
        snprintf (name, sizeof name, "%.250s.%llx", pod->view.name,
                  (unsigned long long)zclock_time () * 1000000ULL +
                      (uint64_t)(zclock_usecs () % 1000000));
        event.api_version = "v1";
        event.kind = "Event";
        meta.name = name;
        meta.namespace_ = (char *)pod->view.namespace_;
        event.metadata = &meta;
        involved.kind = "Pod";
        involved.api_version = "v1";
        involved.namespace_ = (char *)pod->view.namespace_;
        involved.name = (char *)pod->view.name;
        involved.uid = (char *)pod->view.uid;
        event.involved_object = &involved;
        event.reason = "FailedScheduling";
        event.message = (char *)message;
        event.type = "Warning";
        source.component = "default-scheduler";
        event.source = &source;
        event.reporting_component = "default-scheduler";
        event.first_timestamp = now;
        event.last_timestamp = now;
        event.has_count = 1;
        event.count = 1;
        s_send_object (self, "create", "events", pod->view.namespace_, NULL, NULL,
                       &event.base);
    }
    if (!had_status)
        object->status = NULL;
}

//  ---------------------------------------------------------------------
//  The loop

//  ---------------------------------------------------------------------
//  The bus service "scheduler": stats (JSON) and metrics (Prometheus
//  text). It is served once the caches are synced, so a caller that gets
//  an answer knows pods are being scheduled.

//  The latency histogram and the per-point timings, Prometheus style.
static void
s_metrics_more (zs_scheduler_t *self, FILE *out)
{
    fprintf (out, "# TYPE scheduler_pod_scheduling_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= S_LATENCY_BUCKETS; i++) {
        cumulative += self->latency_buckets[i];
        if (i < S_LATENCY_BUCKETS)
            fprintf (
                out,
                "scheduler_pod_scheduling_duration_seconds_bucket{le=\"%g\"} %" PRIu64
                "\n",
                (double)s_latency_bounds_ms[i] / 1000.0, cumulative);
        else
            fprintf (
                out,
                "scheduler_pod_scheduling_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64
                "\n",
                cumulative);
    }
    fprintf (out, "scheduler_pod_scheduling_duration_seconds_sum %.6f\n",
             self->latency_sum_s);
    fprintf (out, "scheduler_pod_scheduling_duration_seconds_count %" PRIu64 "\n",
             cumulative);
    fprintf (out,
             "# TYPE scheduler_framework_extension_point_duration_seconds summary\n");
    for (size_t p = 0; p < self->profiles.count; p++) {
        zs_timings_t timings;
        zs_profile_timings (self->profiles.profiles[p], &timings);
        for (int t = 0; t < ZS_TIME_COUNT; t++) {
            fprintf (out,
                     "scheduler_framework_extension_point_duration_seconds_sum{extension_"
                     "point="
                     "\"%s\",profile=\"%s\"} %.6f\n",
                     zs_time_point_names[t], zs_profile_name (self->profiles.profiles[p]),
                     (double)timings.ns[t] / 1e9);
            fprintf (out,
                     "scheduler_framework_extension_point_duration_seconds_count{"
                     "extension_point="
                     "\"%s\",profile=\"%s\"} %" PRIu64 "\n",
                     zs_time_point_names[t], zs_profile_name (self->profiles.profiles[p]),
                     timings.cycles);
        }
    }
}

static char *
s_stats_text (zs_scheduler_t *self, bool prometheus)
{
    zs_scheduler_stats_t stats;
    zs_scheduler_stats (self, &stats);
    size_t nodes = zs_cache_node_count (self->cache);
    if (prometheus)
        return zsys_sprintf (
            "# TYPE scheduler_schedule_attempts_total counter\n"
            "scheduler_schedule_attempts_total{result=\"scheduled\"} %" PRIu64 "\n"
            "scheduler_schedule_attempts_total{result=\"unschedulable\"} %" PRIu64 "\n"
            "scheduler_schedule_attempts_total{result=\"error\"} %" PRIu64 "\n"
            "# TYPE scheduler_pods_bound_total counter\n"
            "scheduler_pods_bound_total %" PRIu64 "\n"
            "# TYPE scheduler_bind_errors_total counter\n"
            "scheduler_bind_errors_total %" PRIu64 "\n"
            "# TYPE scheduler_pending_pods gauge\n"
            "scheduler_pending_pods{queue=\"active\"} %zu\n"
            "scheduler_pending_pods{queue=\"backoff\"} %zu\n"
            "scheduler_pending_pods{queue=\"unschedulable\"} %zu\n"
            "scheduler_pending_pods{queue=\"binding\"} %zu\n"
            "# TYPE scheduler_cache_size gauge\n"
            "scheduler_cache_size{type=\"nodes\"} %zu\n"
            "scheduler_cache_size{type=\"pods\"} %zu\n",
            stats.scheduled, stats.unschedulable, stats.errors, stats.bound,
            stats.bind_errors, stats.active, stats.backoff, stats.unschedulable_queue,
            stats.in_flight, nodes, zs_cache_pod_count (self->cache));
    size_t waiting = 0;
    for (size_t i = 0; i < self->profiles.count; i++)
        waiting += zs_profile_waiting_count (self->profiles.profiles[i]);
    return zsys_sprintf (
        "{\"attempts\": %" PRIu64 ", \"scheduled\": %" PRIu64
        ", \"unschedulable\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"bound\": %" PRIu64
        ", \"bindErrors\": %" PRIu64 ", \"activeQueue\": %zu, \"backoffQueue\": %zu"
        ", \"unschedulableQueue\": %zu, \"binding\": %zu"
        ", \"waitingAtPermit\": %zu"
        ", \"nodes\": %zu, \"pods\": %zu, \"profiles\": %zu}",
        stats.attempts, stats.scheduled, stats.unschedulable, stats.errors, stats.bound,
        stats.bind_errors, stats.active, stats.backoff, stats.unschedulable_queue,
        stats.in_flight, waiting, nodes, zs_cache_pod_count (self->cache),
        self->profiles.count);
}

//  ---------------------------------------------------------------------
//  Changes while running: a new configuration, and plugins loaded,
//  swapped and unloaded (DESIGN.md section 5). Requests are handled inside
//  zube_bus_poll, so always between two scheduling cycles.

static bool
s_pending_again (const char *key, const ProtobufCMessage *object, void *arg)
{
    (void)key;
    const Zube__Pod *pod = (const Zube__Pod *)object;
    if (!pod->spec || !pod->spec->node_name || !*pod->spec->node_name)
        s_pod_seen (arg, pod);
    return true;
}

static void s_waiting_drain_all (zs_scheduler_t *self);

//  New profiles from config (NULL: the defaults), in place of the running
//  ones, which keep running when the new ones cannot be built.
static int
s_apply (zs_scheduler_t *self, const Zube__KubeSchedulerConfiguration *config,
         char *error, size_t error_size)
{
    zs_profiles_t fresh;
    if (zs_profiles_build (self->registry, config, &fresh, error, error_size) != 0)
        return -1;
    //  Pods waiting at permit belong to the old plugin instances: they are
    //  rejected (unreserved by those instances) and scheduled again
    for (size_t i = 0; i < self->profiles.count; i++)
        zs_profile_waiting_reject (self->profiles.profiles[i], NULL,
                                   "the scheduler configuration changed");
    s_waiting_drain_all (self);
    zs_queue_reprofile (self->queue, &fresh, fresh.profiles[0]);
    zs_profiles_t old = self->profiles;
    self->profiles = fresh;
    zs_profiles_clear (&old);
    //  Pending pods of a profile that is new now are ours from here on
    if (self->pods)
        zube_informer_each (self->pods, s_pending_again, self);
    for (size_t i = 0; i < self->profiles.count; i++) {
        char *text = zs_profile_describe (self->profiles.profiles[i]);
        zube_log_info ("msg=\"profile applied\" schedulerName=%s plugins=\"%s\"",
                       zs_profile_name (self->profiles.profiles[i]), text ? text : "");
        free (text);
    }
    return 0;
}

static void
s_config_apply (zs_scheduler_t *self, zube_bus_request_t *request)
{
    Zube__KubeSchedulerConfiguration *config =
        (Zube__KubeSchedulerConfiguration *)zube_bus_request_unpack_or_reject (
            request, &zube__kube_scheduler_configuration__descriptor);
    if (!config)
        return;
    char error[1024];
    if (!config->api_version ||
        !streq (config->api_version, "kubescheduler.config.k8s.io/v1") || !config->kind ||
        !streq (config->kind, "KubeSchedulerConfiguration"))
        zube_bus_respond_error (
            request, ZUBE_BAD_REQUEST,
            "expected apiVersion kubescheduler.config.k8s.io/v1 and kind "
            "KubeSchedulerConfiguration");
    else if (s_apply (self, config, error, sizeof error) != 0)
        zube_bus_respond_error (request, ZUBE_BAD_REQUEST, "%s", error);
    else {
        if (self->kube_config)
            protobuf_c_message_free_unpacked (&self->kube_config->base, NULL);
        self->kube_config = config;
        config = NULL;
        zube_bus_respond (request, ZUBE_OK, NULL, NULL, 0);
    }
    if (config)
        protobuf_c_message_free_unpacked (&config->base, NULL);
}

typedef struct {
    zs_scheduler_t *scheduler;
    Zube__PluginList *list;
} s_list_t;

static void
s_list_one (const char *name, const zube_plugin_t *descriptor, const char *path,
            void *arg)
{
    s_list_t *listing = arg;
    zs_scheduler_t *self = listing->scheduler;
    Zube__PluginList *list = listing->list;
    Zube__Plugin **items = realloc (list->items, (list->n_items + 1) * sizeof *items);
    Zube__Plugin *plugin = calloc (1, sizeof *plugin);
    Zube__ObjectMeta *meta = calloc (1, sizeof *meta);
    Zube__PluginSpec *spec = calloc (1, sizeof *spec);
    Zube__PluginStatus *status = calloc (1, sizeof *status);
    if (items)
        list->items = items;
    if (!items || !plugin || !meta || !spec || !status) {
        free (plugin), free (meta), free (spec), free (status);
        return;
    }
    zube__plugin__init (plugin);
    zube__object_meta__init (meta);
    zube__plugin_spec__init (spec);
    zube__plugin_status__init (status);
    plugin->api_version = strdup ("zube.io/v1alpha1");
    plugin->kind = strdup ("Plugin");
    meta->name = strdup (name);
    spec->service = strdup (ZS_SERVICE);
    spec->plugin_kind = strdup ("scheduler");
    spec->name = strdup (descriptor->name);
    spec->path = strdup (path);
    spec->version = strdup (descriptor->version);
    status->phase = strdup ("Loaded");
    status->has_abi_version = 1;
    status->abi_version = (int32_t)descriptor->abi_version;
    status->version = strdup (descriptor->version);
    //  Which profiles use it
    char used[1024] = "";
    size_t length = 0;
    for (size_t i = 0; i < self->profiles.count; i++)
        if (zs_profile_uses (self->profiles.profiles[i], name) && length < sizeof used)
            length += (size_t)snprintf (used + length, sizeof used - length, "%s%s",
                                        length ? "," : "",
                                        zs_profile_name (self->profiles.profiles[i]));
    status->message = strdup (used);
    plugin->metadata = meta;
    plugin->spec = spec;
    plugin->status = status;
    list->items[list->n_items++] = plugin;
}

//  The plugin's framework name or file from a Plugin request.
static const char *
s_plugin_arg (Zube__Plugin *plugin, bool path)
{
    if (!plugin->spec)
        return NULL;
    const char *value = path ? plugin->spec->path : plugin->spec->name;
    return value && *value ? value : NULL;
}

static void
s_plugins (zs_scheduler_t *self, zube_bus_request_t *request, const char *method)
{
    if (streq (method, "plugins.list")) {
        Zube__PluginList list = ZUBE__PLUGIN_LIST__INIT;
        list.api_version = "zube.io/v1alpha1";
        list.kind = "PluginList";
        s_list_t listing = {self, &list};
        zs_registry_each (self->registry, s_list_one, &listing);
        zube_bus_respond_msg (request, &list.base);
        list.api_version = list.kind = NULL;
        Zube__PluginList *owned = malloc (sizeof *owned);
        if (owned) {
            *owned = list;
            zube__plugin_list__free_unpacked (owned, NULL);
        }
        return;
    }
    Zube__Plugin *plugin = (Zube__Plugin *)zube_bus_request_unpack_or_reject (
        request, &zube__plugin__descriptor);
    if (!plugin)
        return;
    char error[1024];
    if (streq (method, "plugins.load")) {
        const char *path = s_plugin_arg (plugin, true);
        const char *loaded =
            path ? zs_registry_load (self->registry, path, error, sizeof error) : NULL;
        if (!path)
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                    "spec.path: Required value");
        else if (!loaded)
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST, "%s", error);
        else {
            zube_log_info ("msg=\"plugin loaded\" plugin=%s path=%s", loaded, path);
            zube_bus_respond (request, ZUBE_OK, NULL, NULL, 0);
        }
    } else if (streq (method, "plugins.swap")) {
        const char *path = s_plugin_arg (plugin, true);
        const char *name = NULL;
        zs_handle_t *old =
            path ? zs_registry_swap (self->registry, path, &name, error, sizeof error)
                 : NULL;
        if (!path)
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                    "spec.path: Required value");
        else if (!old)
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST, "%s", error);
        else {
            //  The names live in the handles: copy before one goes
            char plugin_name[128];
            snprintf (plugin_name, sizeof plugin_name, "%s", name);
            char why[1024];
            if (s_apply (self, self->kube_config, why, sizeof why) != 0) {
                zs_registry_unswap (self->registry, plugin_name, old);
                zube_log_warn ("msg=\"swap refused\" plugin=%s path=%s error=\"%s\"",
                               plugin_name, path, why);
                zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                        "%s: refused, the running plugin stays: %s", path,
                                        why);
            } else {
                zs_registry_release (self->registry, &old);
                zube_log_info ("msg=\"plugin swapped\" plugin=%s path=%s", plugin_name,
                               path);
                zube_bus_respond (request, ZUBE_OK, NULL, NULL, 0);
            }
        }
    } else if (streq (method, "plugins.unload")) {
        const char *name = s_plugin_arg (plugin, false);
        const char *user = NULL;
        for (size_t i = 0; name && i < self->profiles.count; i++)
            if (zs_profile_uses (self->profiles.profiles[i], name))
                user = zs_profile_name (self->profiles.profiles[i]);
        if (!name)
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                    "spec.name: Required value");
        else if (user)
            zube_bus_respond_error (request, ZUBE_CONFLICT,
                                    "plugin \"%s\" is in use by profile \"%s\"", name,
                                    user);
        else if (zs_registry_unload (self->registry, name) != 0)
            zube_bus_respond_error (request, ZUBE_NOT_FOUND,
                                    "plugin \"%s\" is not loaded", name);
        else
            zube_bus_respond (request, ZUBE_OK, NULL, NULL, 0);
    } else
        zube_bus_respond_error (request, ZUBE_NOT_FOUND,
                                "scheduler: unknown method \"%s\"", method);
    protobuf_c_message_free_unpacked (&plugin->base, NULL);
}

//  explain: a GetRequest naming the pod; the report as text.
static void
s_explain (zs_scheduler_t *self, zube_bus_request_t *request)
{
    Zube__GetRequest *get = (Zube__GetRequest *)zube_bus_request_unpack_or_reject (
        request, &zube__get_request__descriptor);
    if (!get)
        return;
    const char *namespace =
        get->namespace_ && *get->namespace_ ? get->namespace_ : "default";
    const ProtobufCMessage *object =
        get->name ? zube_informer_get (self->pods, namespace, get->name) : NULL;
    zs_pod_t *pod = object ? zs_pod_new ((const Zube__Pod *)object) : NULL;
    zs_profile_t *profile =
        pod ? zs_profiles_find (&self->profiles, pod->view.scheduler_name) : NULL;
    char *text = profile ? zs_profile_explain (profile, self->cache, pod, 5) : NULL;
    if (!object)
        zube_bus_respond_error (request, ZUBE_NOT_FOUND,
                                "pods \"%s\" not found in namespace "
                                "\"%s\"",
                                get->name ? get->name : "", namespace);
    else if (pod && !profile)
        zube_bus_respond_error (
            request, ZUBE_NOT_FOUND,
            "pod %s has schedulerName \"%s\", which no profile of this "
            "scheduler has",
            pod->key, pod->view.scheduler_name);
    else if (!text)
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
    else
        zube_bus_respond (request, ZUBE_OK, NULL, text, strlen (text));
    free (text);
    zs_pod_destroy (&pod);
    protobuf_c_message_free_unpacked (&get->base, NULL);
}

static void
s_serve (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    (void)bus;
    zs_scheduler_t *self = arg;
    const char *method = zube_bus_request_method (request);
    bool change = streq (method, "config.apply") || streq (method, "plugins.load") ||
                  streq (method, "plugins.swap") || streq (method, "plugins.unload");
    if (change && !zube_plugin_host_may_change (zube_bus_request_sender (request))) {
        zube_bus_respond_error (request, ZUBE_FORBIDDEN, "%s may not call scheduler/%s",
                                zube_bus_request_sender (request), method);
        return;
    }
    if (streq (method, "config.apply")) {
        s_config_apply (self, request);
        return;
    }
    if (streq (method, "explain")) {
        s_explain (self, request);
        return;
    }
    if (strncmp (method, "plugins.", 8) == 0) {
        s_plugins (self, request, method);
        return;
    }
    if (!streq (method, "stats") && !streq (method, "metrics")) {
        zube_bus_respond_error (
            request, ZUBE_NOT_FOUND,
            "scheduler: unknown method \"%s\" (stats, metrics, explain, "
            "config.apply, plugins.list, plugins.load, plugins.swap, "
            "plugins.unload)",
            method);
        return;
    }
    char *text = s_stats_text (self, streq (method, "metrics"));
    char *all = NULL;
    size_t size = 0;
    FILE *out = text ? open_memstream (&all, &size) : NULL;
    if (out) {
        fputs (text, out);
        if (streq (method, "metrics"))
            s_metrics_more (self, out);
        fclose (out);
    }
    zstr_free (&text);
    if (!all) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        return;
    }
    zube_bus_respond (request, ZUBE_OK, NULL, all, strlen (all));
    free (all);
}

//  A pod placed on node that permit let through: bound by a plugin
//  already, or now through the binding subresource.
static void
s_placed (zs_scheduler_t *self, zs_qpod_t *qpod, const char *node, bool host_bind)
{
    self->stats.scheduled++;
    if (!host_bind) {
        self->stats.bound++;
        zs_profile_post_bind (qpod->profile, qpod->pod, node);
        zs_queue_done (self->queue, qpod);
    } else if (s_bind (self, qpod, node) != 0) {
        zs_profile_unreserve (qpod->profile, self->cache, qpod->pod, node);
        zs_queue_backoff (self->queue, qpod, s_now_ms ());
    }
}

//  The pods of profile whose wait at permit ended: the allowed ones are
//  bound, the rejected ones requeued with back-off and reported.
static void
s_waiting_drain (zs_scheduler_t *self, zs_profile_t *profile)
{
    zs_waited_t waited;
    while (zs_profile_waiting_next (profile, self->cache, s_now_ms (), &waited)) {
        zs_qpod_t *qpod = zs_queue_lookup (self->queue, waited.pod->key);
        if (!qpod || qpod->pod != waited.pod || qpod->state != ZS_IN_FLIGHT) {
            zube_log_error ("msg=\"waiting pod not in flight\" pod=%s", waited.pod->key);
            continue;
        }
        if (waited.allowed) {
            zube_log_debug ("msg=\"allowed at permit\" pod=%s node=%s", qpod->pod->key,
                            waited.node);
            s_placed (self, qpod, waited.node, waited.host_bind);
            continue;
        }
        self->stats.unschedulable++;
        zube_log_info ("msg=\"rejected at permit\" pod=%s node=%s reason=\"%s\"",
                       qpod->pod->key, waited.node, waited.message);
        if (!qpod->gone)
            s_report_unschedulable (self, qpod->pod, waited.message, "");
        zs_queue_backoff (self->queue, qpod, s_now_ms ());
    }
}

static void
s_waiting_drain_all (zs_scheduler_t *self)
{
    for (size_t i = 0; i < self->profiles.count; i++)
        s_waiting_drain (self, self->profiles.profiles[i]);
}

//  Schedules one popped pod.
static void
s_schedule_one (zs_scheduler_t *self, zs_qpod_t *qpod)
{
    if (qpod->gone) {
        zs_queue_done (self->queue, qpod);
        return;
    }
    zs_result_t result;
    zs_profile_t *profile = qpod->profile;
    int rc = zs_profile_schedule (profile, self->cache, qpod->pod, &result);
    self->stats.attempts++;
    if (rc == 0)
        s_placed (self, qpod, result.node->name, result.host_bind);
    if (rc == 0 || rc == ZS_SCHEDULE_WAITING) {
        //  Permit plugins may have allowed or rejected waiting pods
        s_waiting_drain (self, profile);
        return;
    }
    if (rc < 0) {
        self->stats.errors++;
        zs_queue_backoff (self->queue, qpod, s_now_ms ());
        return;
    }
    self->stats.unschedulable++;
    char message[2048];
    zs_diagnosis_message (&result.diagnosis, message, sizeof message);
    zube_log_info ("msg=\"unschedulable\" pod=%s reason=\"%s\"", qpod->pod->key, message);
    if (result.nominated[0])
        s_delete_victims (self, qpod->pod, &result);
    s_report_unschedulable (self, qpod->pod, message, result.nominated);
    zs_result_clear (&result);
    zs_queue_unschedulable (self->queue, qpod, result.diagnosis.events, s_now_ms ());
    //  Post-filter plugins may have rejected waiting pods (a gang's)
    s_waiting_drain (self, profile);
}

int
zs_scheduler_run (zs_scheduler_t *self, volatile int *interrupted, char *error,
                  size_t error_size)
{
    self->nodes = zube_informer_new (
        self->bus, &(zube_informer_config_t){.resource = "nodes",
                                             .on_add = s_node_added,
                                             .on_update = s_node_updated,
                                             .on_delete = s_node_deleted,
                                             .arg = self});
    self->pods = zube_informer_new (self->bus,
                                    &(zube_informer_config_t){.resource = "pods",
                                                              .on_add = s_pod_added,
                                                              .on_update = s_pod_updated,
                                                              .on_delete = s_pod_deleted,
                                                              .arg = self});
    self->podgroups = zube_informer_new (
        self->bus, &(zube_informer_config_t){.resource = "podgroups", .arg = self});
    if (!self->nodes || !self->pods || !self->podgroups ||
        zube_informer_start (self->nodes) != 0 || zube_informer_start (self->pods) != 0 ||
        zube_informer_start (self->podgroups) != 0) {
        snprintf (error, error_size, "cannot watch nodes, pods and podgroups");
        return -1;
    }
    zube_log_info ("msg=\"running\" profiles=%zu", self->profiles.count);
    bool serving = false;
    while (!*interrupted) {
        int64_t next = zs_queue_flush (self->queue, s_now_ms ());
        bool ready = zube_informer_has_synced (self->nodes) &&
                     zube_informer_has_synced (self->pods) &&
                     zube_informer_has_synced (self->podgroups);
        int timeout = 100;
        for (size_t i = 0; i < self->profiles.count; i++) {
            int64_t due = zs_profile_waiting_due (self->profiles.profiles[i], s_now_ms ());
            if (due >= 0 && (next < 0 || due < next))
                next = due;
        }
        if (ready && zs_queue_active (self->queue) && self->in_flight < S_MAX_IN_FLIGHT)
            timeout = 0;
        else if (next >= 0 && next < timeout)
            timeout = (int)next;
        zube_bus_poll (self->bus, timeout);
        //  Keep the policies' connection alive between cycles
        if (self->policy_bus)
            zube_bus_poll (self->policy_bus, 0);
        if (!ready)
            continue;
        //  Waits that timed out, or that a bind failure's unreserve ended
        s_waiting_drain_all (self);
        if (!serving) {
            serving = true;
            if (zube_bus_serve (self->bus, ZS_SERVICE, s_serve, self) != 0)
                zube_log_warn ("msg=\"cannot serve\" service=" ZS_SERVICE);
            zube_log_info ("msg=\"synced\" nodes=%zu pods=%zu",
                           zs_cache_node_count (self->cache),
                           zs_cache_pod_count (self->cache));
        }
        for (int i = 0; i < S_BATCH && self->in_flight < S_MAX_IN_FLIGHT; i++) {
            zs_qpod_t *qpod = zs_queue_pop (self->queue);
            if (!qpod)
                break;
            s_schedule_one (self, qpod);
        }
    }
    zube_log_info ("msg=\"stopping\" attempts=%" PRIu64 " bound=%" PRIu64,
                   self->stats.attempts, self->stats.bound);
    return 0;
}
