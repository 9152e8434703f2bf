/*  zube_scheduler - the scheduling framework's plugin interface: the
    operation table of plugins of kind ZUBE_PLUGIN_SCHEDULER (DESIGN.md
    sections 5 and 6, docs/scheduler.md).

    A scheduler plugin implements any subset of Kubernetes' extension
    points: queue sort, pre-filter, filter, post-filter, pre-score, score,
    normalize, reserve/unreserve, permit, pre-bind, bind, post-bind. The
    host (zube-scheduler) makes one plugin instance per profile that
    enables it (create, with the profile's pluginConfig args), runs the
    cycle, and destroys the instance when the profile goes away.

        static zube_sched_code_t
        s_filter (void *self, void *cycle_data, const zube_sched_pod_t *pod,
                  const zube_sched_node_t *node, char *reason, size_t reason_size)
        {
            if (!node->unschedulable)
                return ZUBE_SCHED_SUCCESS;
            snprintf (reason, reason_size, "node(s) were unschedulable");
            return ZUBE_SCHED_UNRESOLVABLE;
        }
        static const zube_sched_ops_t s_ops = {
            .struct_size = sizeof (zube_sched_ops_t),
            .framework_name = "NodeUnschedulable",
            .create = s_create, .destroy = s_destroy,
            .filter = s_filter,
        };
        ZUBE_PLUGIN_DEFINE (.name = "nodeunschedulable", .version = "0.1.0",
                            .kind = ZUBE_PLUGIN_SCHEDULER, .ops = &s_ops,
                            .description = "filters out unschedulable nodes")

    Speed. filter and score run once per pod and node, so they get a
    pre-digested C view of both (zube_sched_pod_t, zube_sched_node_t):
    requests in milli-CPU and bytes, allocatable and requested totals kept
    incrementally by the host's node cache, labels, taints, tolerations,
    host ports, zone. Plugins that need more read the full objects through
    pod->pod and node->node (const Zube__Pod * and const Zube__Node * of
    core.pb-c.h; read them, never modify, free or keep them). A plugin
    that has nothing to do for a pod answers ZUBE_SCHED_SKIP from
    pre_filter (or pre_score) and its filter (or score) is not called for
    that pod at all. filter and score may be called for different nodes
    from several threads at once: they must only read self, cycle_data,
    pod and node.

    ABI. Every struct here that begins with struct_size grows only by
    appending; a plugin checks ZUBE_SCHED_HAS () before reading a field
    the host gained later, and the host reads no operation past the
    plugin's ops struct_size. zube_sched_resources_t and the small
    element structs (label, taint, toleration, port, scalar) are fixed:
    changing them bumps ZUBE_ABI_VERSION.

    Threads, lifetimes: every operation except filter and score is called
    on the scheduler's one loop thread; filter may run on a pool of
    threads when the profile filters many nodes (KubeSchedulerConfiguration
    parallelism). Everything handed to an operation
    is valid during the call only (a pod view also until the pod's cycle
    ends: reserve to unreserve or post_bind). */
#ifndef ZUBE_SCHEDULER_H_INCLUDED
#define ZUBE_SCHEDULER_H_INCLUDED

#include "zube/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Scores are 0..ZUBE_SCHED_MAX_SCORE after normalize (Kubernetes'
//  MaxNodeScore); a profile weighs each score plugin 1..100.
#define ZUBE_SCHED_MAX_SCORE 100
#define ZUBE_SCHED_MAX_WEIGHT 100

//  What an operation answers (Kubernetes' framework.Code).
typedef enum {
    ZUBE_SCHED_SUCCESS = 0,
    //  Filter, pre-filter, reserve, permit: the pod does not fit (here);
    //  preemption might help.
    ZUBE_SCHED_UNSCHEDULABLE = 1,
    //  The same, but preemption cannot help (a node selector, a taint).
    ZUBE_SCHED_UNRESOLVABLE = 2,
    //  Permit: wait (at most *wait_ms) until the plugin allows or rejects.
    ZUBE_SCHED_WAIT = 3,
    //  Pre-filter, pre-score: nothing to do for this pod, do not call
    //  filter or score for it. Bind: not mine, ask the next binder.
    ZUBE_SCHED_SKIP = 4,
    //  Something broke (not the pod's fault); reason says what.
    ZUBE_SCHED_ERROR = -1
} zube_sched_code_t;

//  Resource amounts: CPU in milli-CPU, memory and ephemeral storage in
//  bytes, pods as a count; extended resources ("nvidia.com/gpu") as
//  scalars, in milli units like CPU (a request of 2 GPUs is 2000).
typedef struct {
    const char *name;
    int64_t milli;
} zube_sched_scalar_t;

typedef struct {
    int64_t milli_cpu;
    int64_t memory;
    int64_t ephemeral_storage;
    int64_t pods;
    size_t scalar_count;
    const zube_sched_scalar_t *scalars;
} zube_sched_resources_t;

typedef struct {
    const char *key;
    const char *value;
} zube_sched_label_t;

typedef enum {
    ZUBE_SCHED_EFFECT_ALL = 0, //  a toleration with no effect
    ZUBE_SCHED_NO_SCHEDULE = 1,
    ZUBE_SCHED_PREFER_NO_SCHEDULE = 2,
    ZUBE_SCHED_NO_EXECUTE = 3
} zube_sched_effect_t;

typedef struct {
    const char *key;
    const char *value;
    zube_sched_effect_t effect;
} zube_sched_taint_t;

typedef enum {
    ZUBE_SCHED_TOLERATE_EQUAL = 0,
    ZUBE_SCHED_TOLERATE_EXISTS = 1
} zube_sched_toleration_op_t;

typedef struct {
    //  NULL or "" with EXISTS: every key.
    const char *key;
    const char *value;
    zube_sched_toleration_op_t op;
    zube_sched_effect_t effect;
} zube_sched_toleration_t;

typedef enum {
    ZUBE_SCHED_TCP = 0,
    ZUBE_SCHED_UDP = 1,
    ZUBE_SCHED_SCTP = 2
} zube_sched_protocol_t;

//  A host port a pod asks for, or one a node has in use. host_ip ""
//  means every address (0.0.0.0).
typedef struct {
    const char *host_ip;
    int32_t port;
    zube_sched_protocol_t protocol;
} zube_sched_port_t;

//  A pod as filter and score see it.
typedef struct {
    uint32_t struct_size;
    const char *namespace_;
    const char *name;
    const char *uid;
    const char *scheduler_name;
    //  spec.nodeName ("" for a pod the scheduler places).
    const char *node_name;
    int32_t priority;
    //  metadata.creationTimestamp, milliseconds since the epoch.
    int64_t created_ms;
    //  What the pod needs: max (init containers, sum of containers)
    //  plus overhead, as Kubernetes' resource fit computes it.
    zube_sched_resources_t requests;
    //  The same for scoring, with 100m CPU and 200 MiB for a container
    //  that asks for none (Kubernetes' non-zero requests).
    zube_sched_resources_t score_requests;
    size_t label_count;
    const zube_sched_label_t *labels;
    //  spec.nodeSelector.
    size_t node_selector_count;
    const zube_sched_label_t *node_selector;
    size_t toleration_count;
    const zube_sched_toleration_t *tolerations;
    //  Host ports of its containers (hostPort > 0 only).
    size_t port_count;
    const zube_sched_port_t *ports;
    //  const Zube__Pod * (core.pb-c.h), the whole object.
    const void *pod;
} zube_sched_pod_t;

//  An image on a node (node->images).
typedef struct {
    const char *name;
    int64_t size_bytes;
    //  How many nodes of the snapshot hold an image of this name.
    uint32_t node_count;
} zube_sched_image_t;

//  A node as filter and score see it, with what the pods on it (assumed
//  ones included) take. The fields every filter reads come first, so a
//  filter pass over many nodes touches as few cache lines as it can.
typedef struct {
    uint32_t struct_size;
    //  Its position in the cycle's node list, 0..node_count-1.
    uint32_t index;
    //  spec.unschedulable.
    bool unschedulable;
    uint32_t pod_count;
    size_t taint_count;
    const zube_sched_taint_t *taints;
    zube_sched_resources_t allocatable;
    zube_sched_resources_t requested;
    //  Requests with the non-zero defaults (for scoring).
    zube_sched_resources_t score_requested;
    const char *name;
    //  Label topology.kubernetes.io/zone, "" when it has none.
    const char *zone;
    size_t label_count;
    const zube_sched_label_t *labels;
    //  Host ports its pods use.
    size_t port_count;
    const zube_sched_port_t *ports;
    //  Changes whenever anything above changes.
    uint64_t generation;
    //  const Zube__Node * (core.pb-c.h), the whole object.
    const void *node;
    //  Appended (check ZUBE_SCHED_HAS (node, assigned)): the pods on the
    //  node (assumed ones included), as pod views with namespace, labels
    //  and the whole object, for plugins that look at the pods around
    //  (InterPodAffinity, PodTopologySpread). In no particular order.
    size_t assigned_count;
    const zube_sched_pod_t *const *assigned;
    //  The first assigned_with_affinity of assigned are the pods with a
    //  podAffinity or podAntiAffinity, so a plugin that only needs those
    //  (the pod itself has no terms) reads no others.
    size_t assigned_with_affinity;
    //  Appended (check ZUBE_SCHED_HAS (node, images)): the images the node
    //  holds (status.images, one entry per name, normalized with ":latest"
    //  for an untagged name), sorted by name for bsearch, each with the
    //  number of nodes of the snapshot that hold it (Kubernetes'
    //  ImageStateSummary), kept incrementally by the host's node cache, so
    //  ImageLocality scores a node without looking at any other. image_count
    //  0 and images NULL when the host does not fill them.
    size_t image_count;
    const zube_sched_image_t *images;
} zube_sched_node_t;

//  What a scheduling cycle knows besides the pod: every node of the
//  snapshot the cycle runs on (feasible or not).
typedef struct {
    uint32_t struct_size;
    const zube_host_t *host;
    //  A number that grows by one per cycle.
    uint64_t cycle;
    size_t node_count;
    const zube_sched_node_t *const *nodes;
    //  The profile's schedulerName.
    const char *profile;
    //  Appended for preemption (check ZUBE_SCHED_HAS (cycle, preempt));
    //  set during post_filter only, NULL elsewhere.
    //  filter_without: the profile's filters (with this cycle's pre-filter
    //  data) for pod on node as if the removed pods were not on it (their
    //  requests, host ports and entries in node->assigned taken out).
    //  SUCCESS when the pod would fit; it changes nothing.
    zube_sched_code_t (*filter_without) (const void *cycle, const zube_sched_pod_t *pod,
                                         const zube_sched_node_t *node,
                                         const zube_sched_pod_t *const *removed,
                                         size_t removed_count);
    //  preempt: victim is to be deleted. The host deletes every victim
    //  through the apiserver (with the victim's grace period) when
    //  post_filter answers SUCCESS with a nominated node, and not at all
    //  when it answers anything else. -1 on no memory.
    int (*preempt) (const void *cycle, const zube_sched_pod_t *victim);
    //  The host's own, for the two above.
    void *host_data;
    //  Appended (check ZUBE_SCHED_HAS (cycle, affinity_nodes)): the nodes
    //  with at least one assigned pod that has a podAffinity or
    //  podAntiAffinity term (Kubernetes' HavePodsWithAffinityList), and
    //  those with at least one pod with a required podAntiAffinity term
    //  (HavePodsWithRequiredAntiAffinityList), so InterPodAffinity looks
    //  at those nodes only when the incoming pod has no terms of its own.
    //  Kept incrementally by the host's node cache; NULL with a count of 0
    //  when there are none.
    size_t affinity_node_count;
    const zube_sched_node_t *const *affinity_nodes;
    size_t required_anti_affinity_node_count;
    const zube_sched_node_t *const *required_anti_affinity_nodes;
} zube_sched_cycle_t;

//  A plugin's pluginConfig args: the JSON text as written, and the same
//  flattened into dotted paths with list indexes ("scoringStrategy.type",
//  "scoringStrategy.resources.0.name"), scalars only, in document order.
typedef struct {
    uint32_t struct_size;
    //  "{}" when the profile gives none.
    const char *json;
    size_t count;
    const char *const *keys;
    const char *const *values;
    //  Where the args are, for error texts:
    //  "profiles[0].pluginConfig[1].args".
    const char *field;
} zube_sched_args_t;

//  The events after which a pod a plugin rejected may fit (Kubernetes'
//  EnqueueExtensions); an unschedulable pod goes back to the active queue
//  on any event one of its rejecting plugins names. 0: every event.
#define ZUBE_SCHED_EVENT_NODE_ADD (1u << 0)
#define ZUBE_SCHED_EVENT_NODE_UPDATE (1u << 1)
#define ZUBE_SCHED_EVENT_POD_DELETE (1u << 2)
#define ZUBE_SCHED_EVENT_POD_UPDATE (1u << 3)

//  What a plugin may ask of the framework besides its operations
//  (Kubernetes' framework.Handle): the pods waiting at permit, allowed or
//  rejected by name of the plugin that made them wait, and the objects
//  the scheduler watches. The host hands it to set_handle (below) right
//  after create; the table and host_data stay valid, at the same address,
//  until the instance is destroyed. Every function is called on the loop
//  thread only (never from filter or score), from any operation or from
//  queue_less.
typedef struct zube_sched_handle_t zube_sched_handle_t;

//  One waiting pod: its view (valid while it waits) and the node it is
//  assumed on. Answer false to stop.
typedef bool (zube_sched_waiting_fn) (const zube_sched_pod_t *pod, const char *node_name,
                                      void *arg);
//  One object: const Zube__Pod * for "pods", const Zube__PodGroup *
//  (zube.pb-c.h) for "podgroups"; node_name is where the scheduler's
//  cache holds a pod: bound, or assumed by this scheduler (binding, or
//  waiting at permit), "" while pending or for other kinds. Answer false
//  to stop.
typedef bool (zube_sched_object_fn) (const void *object, const char *node_name,
                                     void *arg);

struct zube_sched_handle_t {
    uint32_t struct_size;
    //  Every pod of the profile that waits at permit, in no particular
    //  order. fn may call allow and reject.
    void (*each_waiting) (const zube_sched_handle_t *handle, zube_sched_waiting_fn *fn,
                          void *arg);
    //  The pod (found by namespace and name; the uid must match when both
    //  have one) no longer waits for plugin (its framework_name). When no plugin
    //  holds it any more it is allowed: the host runs pre-bind and bind
    //  once the current operation has returned. 0, or -1 when the pod
    //  does not wait for that plugin.
    int (*allow) (const zube_sched_handle_t *handle, const zube_sched_pod_t *pod,
                  const char *plugin);
    //  Rejects a waiting pod: once the current operation has returned
    //  the host unreserves every plugin, forgets the assumed pod, requeues
    //  it with back-off and reports PodScheduled=False naming plugin and
    //  reason. 0, or -1 when the pod does not wait.
    int (*reject) (const zube_sched_handle_t *handle, const zube_sched_pod_t *pod,
                   const char *plugin, const char *reason);
    //  The objects the scheduler watches of resource ("pods" or
    //  "podgroups") in namespace (NULL: all) labelled label_key=
    //  label_value (label_key NULL: every object), through the watch
    //  cache's label index. Pods that ended (Succeeded, Failed) or are
    //  being deleted are left out.
    void (*each_object) (const zube_sched_handle_t *handle, const char *resource,
                         const char *namespace_, const char *label_key,
                         const char *label_value, zube_sched_object_fn *fn, void *arg);
    //  One object of resource by namespace and name, NULL when absent.
    //  Valid until the current operation returns.
    const void *(*get_object) (const zube_sched_handle_t *handle, const char *resource,
                               const char *namespace_, const char *name);
    //  A pending pod of this scheduler goes to the active queue (after its
    //  back-off) instead of waiting for a cluster event (Kubernetes'
    //  PodActivator): the siblings a gang needs.
    void (*activate) (const zube_sched_handle_t *handle, const char *namespace_,
                      const char *name);
    //  The host's own.
    void *host_data;
};

typedef struct {
    //  sizeof (zube_sched_ops_t) as the plugin was compiled.
    uint32_t struct_size;
    //  The name profiles use ("NodeResourcesFit").
    const char *framework_name;
    //  ZUBE_SCHED_EVENT_* bits, see above.
    uint32_t events;

    //  A new instance for one profile (required). Checks args: an unknown
    //  or bad one fails with error naming args->field and the key. NULL on
    //  failure.
    void *(*create) (const zube_host_t *host, const zube_sched_args_t *args, char *error,
                     size_t error_size);
    void (*destroy) (void *self);

    //  Queue sort: true when a goes before b. One per profile.
    bool (*queue_less) (void *self, const zube_sched_pod_t *a, const zube_sched_pod_t *b);

    //  Pre-filter: once per cycle; may leave data for filter (and later
    //  points) in *cycle_data, which cycle_free releases when the cycle
    //  ends. SKIP: filter is not called for this pod.
    zube_sched_code_t (*pre_filter) (void *self, const zube_sched_cycle_t *cycle,
                                     const zube_sched_pod_t *pod, void **cycle_data,
                                     char *reason, size_t reason_size);
    //  Filter: does the pod fit the node? When not, reason gets why, in
    //  kube-scheduler's words ("Insufficient cpu"); several reasons are
    //  separated by '\n'. Nodes rejected for one reason are counted
    //  together in the unschedulable message.
    zube_sched_code_t (*filter) (void *self, void *cycle_data,
                                 const zube_sched_pod_t *pod,
                                 const zube_sched_node_t *node, char *reason,
                                 size_t reason_size);
    //  Post-filter: called when no node fits. May free room (preemption)
    //  and answer SUCCESS with the node it nominates written into
    //  nominated; the pod is then retried later.
    zube_sched_code_t (*post_filter) (void *self, const zube_sched_cycle_t *cycle,
                                      void *cycle_data, const zube_sched_pod_t *pod,
                                      char *nominated, size_t nominated_size);
    //  Pre-score: once per cycle with the feasible nodes; SKIP: score is
    //  not called for this pod.
    zube_sched_code_t (*pre_score) (void *self, const zube_sched_cycle_t *cycle,
                                    const zube_sched_pod_t *pod,
                                    const zube_sched_node_t *const *nodes, size_t count,
                                    void **cycle_data);
    //  Score: 0..ZUBE_SCHED_MAX_SCORE unless normalize maps it there.
    zube_sched_code_t (*score) (void *self, void *cycle_data, const zube_sched_pod_t *pod,
                                const zube_sched_node_t *node, int64_t *score);
    //  Normalize: scores[i] belongs to nodes[i]; leaves them in
    //  0..ZUBE_SCHED_MAX_SCORE.
    zube_sched_code_t (*normalize) (void *self, void *cycle_data,
                                    const zube_sched_pod_t *pod,
                                    const zube_sched_node_t *const *nodes,
                                    int64_t *scores, size_t count);
    //  Reserve: the pod is assumed on the node. A failure unreserves
    //  every plugin and requeues the pod.
    zube_sched_code_t (*reserve) (void *self, void *cycle_data,
                                  const zube_sched_pod_t *pod,
                                  const zube_sched_node_t *node, char *reason,
                                  size_t reason_size);
    //  Unreserve: undo reserve (a later point failed, or the bind did).
    void (*unreserve) (void *self, void *cycle_data, const zube_sched_pod_t *pod,
                       const char *node_name);
    //  Permit: SUCCESS, UNSCHEDULABLE (rejects) or WAIT (at most *wait_ms,
    //  capped at 15 minutes as in Kubernetes). A waiting pod stays assumed
    //  and reserved on its node, its binding held, while the loop goes on
    //  with the next pod; it is bound once every plugin that made it wait
    //  calls handle->allow, and rejected (unreserve, requeue with
    //  back-off) when one calls handle->reject or its wait_ms passes.
    zube_sched_code_t (*permit) (void *self, void *cycle_data,
                                 const zube_sched_pod_t *pod, const char *node_name,
                                 int64_t *wait_ms, char *reason, size_t reason_size);
    //  Pre-bind: last chance to refuse before the binding is written.
    zube_sched_code_t (*pre_bind) (void *self, void *cycle_data,
                                   const zube_sched_pod_t *pod, const char *node_name,
                                   char *reason, size_t reason_size);
    //  Bind: SKIP lets the next binder (finally the host's binding
    //  subresource) do it; SUCCESS means the plugin bound the pod.
    zube_sched_code_t (*bind) (void *self, void *cycle_data, const zube_sched_pod_t *pod,
                               const char *node_name, char *reason, size_t reason_size);
    //  Post-bind: the binding is written.
    void (*post_bind) (void *self, void *cycle_data, const zube_sched_pod_t *pod,
                       const char *node_name);
    //  Frees what pre_filter or pre_score left in cycle_data.
    void (*cycle_free) (void *self, void *cycle_data);
    //  Appended (the host calls it when the plugin's struct_size has it):
    //  the instance's handle, once, right after create and before any
    //  other operation; valid until destroy. A plugin that waits at
    //  permit keeps it to allow or reject the pods it holds.
    void (*set_handle) (void *self, const zube_sched_handle_t *handle);
} zube_sched_ops_t;

//  The ABI 1 table: the host refuses a scheduler plugin whose table is
//  smaller.
#define ZUBE_SCHED_OPS_SIZE_V1                                                           \
    (offsetof (zube_sched_ops_t, cycle_free) + sizeof (void (*) (void)))

//  True when a struct the host handed over (pod, node, cycle, args) is new
//  enough to have member.
#define ZUBE_SCHED_HAS(object, member)                                                   \
    ((object)->struct_size >=                                                            \
     offsetof (__typeof__ (*(object)), member) + sizeof ((object)->member))

//  A plugin's arg by flattened key, NULL when absent.
static inline const char *
zube_sched_args_get (const zube_sched_args_t *args, const char *key)
{
    for (size_t i = 0; args && i < args->count; i++) {
        const char *a = args->keys[i], *b = key;
        while (*a && *a == *b)
            a++, b++;
        if (*a == *b)
            return args->values[i];
    }
    return NULL;
}

#ifdef __cplusplus
}
#endif
#endif
