/*  zube-scheduler's internals: the node cache (cache.c), the scheduling
    framework and its profiles (framework.c, config.c), the queues
    (queue.c) and the service around them (scheduler.c). The framework and
    the cache know nothing of the bus, so the unit tests and
    `zube-bench sched --loop-only` run them on an in-memory snapshot.
    docs/scheduler.md describes the design. */
#ifndef ZS_SCHED_H_INCLUDED
#define ZS_SCHED_H_INCLUDED

#include "core.pb-c.h"
#include "zube.pb-c.h"
#include "zube/scheduler.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  ---------------------------------------------------------------------
//  Pods and nodes as plugins see them (cache.c)

typedef struct _zs_pod_t zs_pod_t;
struct _zs_pod_t {
    zube_sched_pod_t view;
    //  An own copy of the object the view points into.
    Zube__Pod *object;
    //  "<namespace>/<name>"
    char *key;
    uint64_t resource_version;
    zube_sched_label_t *labels;
    zube_sched_label_t *node_selector;
    zube_sched_toleration_t *tolerations;
    zube_sched_port_t *ports;
    zube_sched_scalar_t *scalars;
    zube_sched_scalar_t *score_scalars;
    //  Holders besides the first (zs_pod_ref)
    unsigned references;
};

//  A digest of pod (copied: pod may go away). NULL on no memory.
zs_pod_t *zs_pod_new (const Zube__Pod *pod);
//  One more holder of the same digest (answers it); each holder lets go
//  with zs_pod_destroy, the last one frees it. A digest never changes once
//  made, so the queue, a cycle and the cache share one.
zs_pod_t *zs_pod_ref (zs_pod_t *self);
void zs_pod_destroy (zs_pod_t **self_p);
//  RFC 3339 to milliseconds since the epoch (0 when unreadable).
int64_t zs_time_ms (const char *text);

typedef struct _zs_node_t zs_node_t;
typedef struct _zs_cache_t zs_cache_t;

zs_cache_t *zs_cache_new (void);
void zs_cache_destroy (zs_cache_t **self_p);
//  Adds or replaces a node (copied). 1 when what scheduling reads of it
//  (labels, taints, allocatable, unschedulable) is new or changed, 0 when
//  not, -1 on no memory.
int zs_cache_node_set (zs_cache_t *self, const Zube__Node *node);
void zs_cache_node_remove (zs_cache_t *self, const char *name);
//  The nodes that exist, in a stable order (index = view.index).
size_t zs_cache_node_count (zs_cache_t *self);
const zube_sched_node_t *const *zs_cache_nodes (zs_cache_t *self);
const zube_sched_node_t *zs_cache_node (zs_cache_t *self, const char *name);
//  What a cycle reads of the cache: node_count and nodes, and the nodes
//  with pods with (anti-)affinity terms (affinity_nodes,
//  required_anti_affinity_nodes). The views' images (node_count of each)
//  are brought up to date here, and by zs_cache_nodes and zs_cache_node.
void zs_cache_cycle_fill (zs_cache_t *self, zube_sched_cycle_t *cycle);
//  Accounts pod (key pod->key) on node: its requests and ports, replacing
//  what the same key held before (on any node); the cache keeps a
//  reference to pod (zs_pod_ref) for node.assigned. assumed: placed by
//  this scheduler, binding not yet seen. 0, or -1 on no memory.
int zs_cache_pod_add (zs_cache_t *self, zs_pod_t *pod, const char *node, bool assumed);
//  A bound version (object) of a pod the cache holds as key on node: when
//  what plugins read of it that may change (labels, deletion timestamp)
//  is what the cache holds, the pod counts as bound (no longer assumed)
//  and the answer is true; false: the caller adds object anew.
bool zs_cache_pod_confirm (zs_cache_t *self, const char *key, const char *node,
                           const Zube__Pod *object);
//  Forgets the pod; false when the cache did not hold it.
bool zs_cache_pod_remove (zs_cache_t *self, const char *key);
//  The node the cache holds the pod on (NULL: none); *assumed_p says how.
const char *zs_cache_pod_node (zs_cache_t *self, const char *key, bool *assumed_p);
size_t zs_cache_pod_count (zs_cache_t *self);

//  ---------------------------------------------------------------------
//  Plugins and profiles (framework.c)

typedef struct _zs_registry_t zs_registry_t;
typedef struct _zs_profile_t zs_profile_t;

//  Finds plugins by framework name ("NodeResourcesFit" is
//  noderesourcesfit.so) through a zube_plugin_host_t; path: more
//  directories to search first (NULL: none).
zs_registry_t *zs_registry_new (const char *path);
void zs_registry_destroy (zs_registry_t **self_p);
//  The plugin's table, loading it the first time; NULL with error.
const zube_sched_ops_t *zs_registry_get (zs_registry_t *self, const char *name,
                                         char *error, size_t error_size);
const zube_host_t *zs_registry_host (zs_registry_t *self, const char *name);
//  Loads the plugin file at path (checked as any plugin) under its
//  framework name; its descriptor's name, or NULL with error (also when a
//  plugin of that framework name is loaded already).
const char *zs_registry_load (zs_registry_t *self, const char *path, char *error,
                              size_t error_size);
//  Loads path in place of the loaded plugin with the same framework name
//  (*name_p); answers the old handle, which the caller releases once
//  nothing uses it, or gives back with zs_registry_unswap (which unloads
//  the new one). NULL with error.
typedef struct _zube_plugin_handle_t zs_handle_t;
zs_handle_t *zs_registry_swap (zs_registry_t *self, const char *path, const char **name_p,
                               char *error, size_t error_size);
void zs_registry_unswap (zs_registry_t *self, const char *name, zs_handle_t *old);
void zs_registry_release (zs_registry_t *self, zs_handle_t **handle_p);
//  A plugin compiled into the host (no file): found by its framework name
//  before any file, created with a NULL host table.
void zs_registry_add_builtin (zs_registry_t *self, const zube_sched_ops_t *ops);
//  RemotePolicy (remote.c): asks "scheduler.policy/<name>" on the bus;
//  needs the connection to call through, set before profiles are built.
extern const zube_sched_ops_t zs_remote_policy_ops;
typedef struct _zube_bus_t zs_bus_t;
void zs_remote_set_bus (zs_bus_t *bus);
//  Unloads the plugin (the caller checks no profile uses it); -1: not loaded.
int zs_registry_unload (zs_registry_t *self, const char *name);
typedef void (zs_registry_each_fn) (const char *name, const zube_plugin_t *descriptor,
                                    const char *path, void *arg);
void zs_registry_each (zs_registry_t *self, zs_registry_each_fn *fn, void *arg);

//  Kubernetes' default profile: plugin and score weight (0: not a score
//  plugin there).
typedef struct {
    const char *name;
    int weight;
} zs_default_plugin_t;
extern const zs_default_plugin_t zs_default_plugins[];
#define ZS_DEFAULT_SCHEDULER_NAME "default-scheduler"

//  Builds a profile from its configuration: the defaults, changed by
//  plugins.<point>.enabled/disabled, pluginConfig args. field: where it
//  is ("profiles[0]"). NULL with error naming the field.
zs_profile_t *zs_profile_new (zs_registry_t *registry,
                              const Zube__KubeSchedulerProfile *config, const char *field,
                              int percentage_of_nodes_to_score, char *error,
                              size_t error_size);
void zs_profile_destroy (zs_profile_t **self_p);
const char *zs_profile_name (zs_profile_t *self);
//  True when the profile has an instance of the plugin (framework name).
bool zs_profile_uses (zs_profile_t *self, const char *plugin);
bool zs_profile_less (zs_profile_t *self, const zs_pod_t *a, const zs_pod_t *b);
//  Time spent per extension point group over all cycles of a profile.
typedef enum {
    ZS_TIME_PRE_FILTER,
    ZS_TIME_FILTER,
    ZS_TIME_SCORE,
    ZS_TIME_BIND_POINTS,
    ZS_TIME_COUNT
} zs_time_point_t;
extern const char *const zs_time_point_names[ZS_TIME_COUNT];
typedef struct {
    uint64_t cycles;
    uint64_t ns[ZS_TIME_COUNT];
} zs_timings_t;
void zs_profile_timings (zs_profile_t *self, zs_timings_t *timings);
//  "filter: NodeName, ...; score: NodeResourcesFit*1, ..." for logs.
char *zs_profile_describe (zs_profile_t *self);

//  Why nodes were rejected: reason texts and how many nodes gave each.
#define ZS_MAX_REASONS 32
typedef struct {
    size_t node_count;
    size_t evaluated;
    size_t feasible;
    size_t reason_count;
    struct {
        char text[192];
        size_t nodes;
    } reasons[ZS_MAX_REASONS];
    //  Events that may make the pod fit (ZUBE_SCHED_EVENT_*).
    uint32_t events;
    //  A pre-filter or other plugin's error.
    char error[256];
} zs_diagnosis_t;

//  The outcome of one scheduling attempt.
typedef struct {
    //  The node chosen, NULL when none fits.
    const zube_sched_node_t *node;
    //  The pod needs binding by the host (no bind plugin did it).
    bool host_bind;
    zs_diagnosis_t diagnosis;
    //  No node fits, but a post-filter plugin (preemption) nominated
    //  this one ("" none) once victims (own copies) are deleted.
    char nominated[256];
    size_t victim_count;
    zs_pod_t **victims;
} zs_result_t;
//  Frees the victims a result holds.
void zs_result_clear (zs_result_t *result);

//  One cycle for pod on the cache's nodes: pre-filter, filter (from a
//  round-robin start, stopping at percentageOfNodesToScore), post-filter,
//  pre-score, score, normalize, weighted sum, best node (ties at random),
//  then assume in the cache, reserve, permit, pre-bind and bind plugins.
//  0 when placed (result->node; the pod is assumed); 1 when no node fits
//  or a plugin refused (the diagnosis says why; nothing assumed); -1 on
//  an error.
int zs_profile_schedule (zs_profile_t *self, zs_cache_t *cache, zs_pod_t *pod,
                         zs_result_t *result);
//  A report of how the profile sees pod now (malloc'd text, NULL on no
//  memory): every filter plugin over every node (how many it rejects and
//  why), the feasible count, and the top best nodes' score per plugin.
//  Nothing is assumed or bound; stateful plugins (RoundRobin, Random) do
//  move on, as in a cycle.
char *zs_profile_explain (zs_profile_t *self, zs_cache_t *cache, zs_pod_t *pod,
                          size_t top);
//  After a failed binding: unreserve plugins, forget the assumed pod.
void zs_profile_unreserve (zs_profile_t *self, zs_cache_t *cache, zs_pod_t *pod,
                           const char *node);
void zs_profile_post_bind (zs_profile_t *self, zs_pod_t *pod, const char *node);
//  kube-scheduler's message: "0/5 nodes are available: 3 Insufficient cpu,
//  2 node(s) had untolerated taint {k: v}. preemption: ..."
void zs_diagnosis_message (const zs_diagnosis_t *diagnosis, char *buf, size_t size);
//  How many nodes a cycle looks at (Kubernetes' numFeasibleNodesToFind).
size_t zs_nodes_to_find (size_t all, int percentage);

//  ---------------------------------------------------------------------
//  Configuration (config.c)

typedef struct {
    size_t count;
    zs_profile_t **profiles;
    int64_t initial_backoff_ms;
    int64_t max_backoff_ms;
} zs_profiles_t;

//  Profiles from a KubeSchedulerConfiguration YAML text (NULL: the default
//  profile alone). 0, or -1 with error naming the field.
int zs_profiles_load (zs_registry_t *registry, const char *text, zs_profiles_t *profiles,
                      char *error, size_t error_size);
//  The same from the decoded configuration (NULL: the defaults).
int zs_profiles_build (zs_registry_t *registry,
                       const Zube__KubeSchedulerConfiguration *config,
                       zs_profiles_t *profiles, char *error, size_t error_size);
//  The whole file (malloc'd, NUL-terminated), or NULL when unreadable.
char *zs_read_file (const char *path);
//  Decodes and checks apiVersion and kind; NULL with error.
Zube__KubeSchedulerConfiguration *zs_config_decode (const char *text, char *error,
                                                    size_t error_size);
void zs_profiles_clear (zs_profiles_t *profiles);
zs_profile_t *zs_profiles_find (zs_profiles_t *profiles, const char *scheduler_name);
//  pluginConfig args (compact JSON) flattened into dotted keys, for
//  zube_sched_args_t. 0, or -1 when the JSON is bad.
typedef struct {
    size_t count;
    char **keys;
    char **values;
} zs_flat_t;
int zs_flatten_json (const char *json, zs_flat_t *flat, char *error, size_t error_size);
void zs_flat_clear (zs_flat_t *flat);

//  ---------------------------------------------------------------------
//  Queues (queue.c): active (queue sort), back-off, unschedulable

typedef enum { ZS_ACTIVE = 1, ZS_BACKOFF, ZS_UNSCHEDULABLE, ZS_IN_FLIGHT } zs_qstate_t;

typedef struct {
    zs_pod_t *pod;
    zs_profile_t *profile;
    zs_qstate_t state;
    int attempts;
    int64_t backoff_until_ms;
    int64_t unschedulable_since_ms;
    uint32_t events;
    //  Deleted or bound elsewhere while in flight: drop when it lands.
    bool gone;
    size_t heap_index;
    //  When the scheduler first queued it (monotonic ms), for latency.
    int64_t queued_ms;
} zs_qpod_t;

typedef struct _zs_queue_t zs_queue_t;

zs_queue_t *zs_queue_new (zs_profile_t *sort, int64_t initial_backoff_ms,
                          int64_t max_backoff_ms);
void zs_queue_destroy (zs_queue_t **self_p);
//  A new pending pod, or a newer version of one (takes pod). A pod in
//  flight keeps its copy until it lands.
void zs_queue_add (zs_queue_t *self, zs_pod_t **pod_p, zs_profile_t *profile,
                   int64_t now_ms);
//  The pod is gone (deleted, bound, no longer ours).
void zs_queue_remove (zs_queue_t *self, const char *key);
zs_qpod_t *zs_queue_lookup (zs_queue_t *self, const char *key);
//  The next active pod, now in flight; NULL when none.
zs_qpod_t *zs_queue_pop (zs_queue_t *self);
//  An in-flight pod is done (bound): forgets it.
void zs_queue_done (zs_queue_t *self, zs_qpod_t *qpod);
//  An in-flight pod failed: back-off queue (1 s doubling to 10 s).
void zs_queue_backoff (zs_queue_t *self, zs_qpod_t *qpod, int64_t now_ms);
//  No node fits: unschedulable until one of events happens.
void zs_queue_unschedulable (zs_queue_t *self, zs_qpod_t *qpod, uint32_t events,
                             int64_t now_ms);
//  New profiles: every pod takes its profile by schedulerName from
//  profiles (a pod whose profile is gone leaves the queue; one in flight
//  is dropped when it lands), and the active queue is sorted by sort.
void zs_queue_reprofile (zs_queue_t *self, zs_profiles_t *profiles, zs_profile_t *sort);
//  A cluster event: unschedulable pods it may help move on.
void zs_queue_event (zs_queue_t *self, uint32_t event, int64_t now_ms);
//  Back-off expired and long-unschedulable (5 min) pods become active.
//  Answers ms until the next back-off ends (-1: none).
int64_t zs_queue_flush (zs_queue_t *self, int64_t now_ms);
size_t zs_queue_active (zs_queue_t *self);
size_t zs_queue_backoff_count (zs_queue_t *self);
size_t zs_queue_unschedulable_count (zs_queue_t *self);

#endif
