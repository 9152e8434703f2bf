/*  zubelet - the node agent: private types shared by its source files.

    One process hosts one node or thousands of simulated ("hollow") nodes.
    Everything runs on one thread in one loop (zubelet.c): the bus
    connection (zube_bus_poll), the runtime's tick deadline and a timer
    heap. Nodes are compact structs in one array (node.c registers them,
    renews their leases, reports their status); pods are records kept
    only for the pods bound to this process's nodes (pod.c drives them
    through the runtime and reports their status). Pod events reach the
    process through one subscription to the node topics of its nodes
    (zubelet.c and docs/node-shapes.md say how gaps are repaired). */
#ifndef ZUBELET_H_INCLUDED
#define ZUBELET_H_INCLUDED

#include "zube/api.h"
#include "zube/bus.h"
#include "zube/plugin_host.h"
#include "zube/runtime.h"
#include "zube/runtime_client.h"
#include "core.pb-c.h"
#include "coordination.pb-c.h"
#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZL_LEASE_NAMESPACE "kube-node-lease"
//  Who may call logs and exec (the apiserver's default admin bindings)
#define ZL_ADMIN_IDENTITIES "admin,anonymous"
//  The Node annotation naming the bus service of its node agent
#define ZL_SERVICE_ANNOTATION "zube.io/node-agent-service"
//  --runtime-option flags at most
#define ZL_RUNTIME_OPTIONS_MAX 16

typedef struct _zubelet_t zubelet_t;
typedef struct zl_hprobe_t zl_hprobe_t;
typedef struct zl_exec_t zl_exec_t;
typedef struct zl_timer_t zl_timer_t;
typedef void (zl_timer_fn) (zubelet_t *self, zl_timer_t *timer);

//  A timer of the heap, embedded in the struct it wakes (node, pod).
struct zl_timer_t {
    int64_t when;       //  monotonic ms
    uint32_t slot;      //  heap index + 1; 0 when not queued
    zl_timer_fn *fn;
};

//  ---------------------------------------------------------------------
//  Node shapes (shapes.c, docs/node-shapes.md)

typedef struct {
    char *name;         //  resource name: cpu, memory, nvidia.com/gpu
    int64_t capacity;   //  milli
    int64_t reserved;   //  milli, subtracted for allocatable
    bool binary;        //  format with Ki/Mi/Gi
} zl_resource_t;

typedef struct {
    char *key;
    char *value;
} zl_label_t;

typedef struct {
    char *key;
    char *value;
    char *effect;
} zl_taint_t;

typedef struct {
    char *name;             //  node.kubernetes.io/instance-type
    int64_t count;          //  -1 when not given
    int64_t weight;         //  -1 when not given
    zl_resource_t *resources;
    size_t resource_count;
    char **zones;           //  round robin over the shape's nodes
    size_t zone_count;
    char *region;
    char *arch;
    zl_label_t *labels;
    size_t label_count;
    zl_taint_t *taints;
    size_t taint_count;
    //  Precomputed JSON fragments (shapes_prepare)
    char *capacity_json;
    char *allocatable_json;
    char *labels_json;      //  "" or ,"k":"v",...
    char *taints_json;      //  [] or [{...}]
} zl_shape_t;

typedef struct {
    zl_shape_t *shapes;
    size_t count;
} zl_shapes_t;

//  Parses the YAML text of a shapes file. NULL with error "FILE:LINE:
//  shapes[i].field: why" on a malformed file.
zl_shapes_t *zl_shapes_parse (const char *text, const char *origin, char *error,
                              size_t error_size);
zl_shapes_t *zl_shapes_load (const char *path, char *error, size_t error_size);
//  The built-in shape: cpu, memory from the host when host is true.
zl_shapes_t *zl_shapes_default (bool host);
void zl_shapes_destroy (zl_shapes_t **self_p);
//  Which shape node i of n gets (counts first, then weights); -1 with
//  error when the counts do not fit n.
int zl_shapes_assign (zl_shapes_t *self, size_t n, uint16_t *shape_of, uint32_t *ordinal_of,
                      char *error, size_t error_size);
//  Nodes the counts ask for when no --nodes is given (0: no counts).
size_t zl_shapes_total (zl_shapes_t *self);
//  Fills the JSON fragments of every shape.
int zl_shapes_prepare (zl_shapes_t *self);

//  ---------------------------------------------------------------------
//  Nodes (node.c)

typedef enum {
    ZL_NODE_NEW = 0,
    ZL_NODE_REGISTERING,
    ZL_NODE_READY
} zl_node_state_t;

typedef struct {
    char *name;
    uint32_t index;
    uint32_t ordinal;       //  index among the nodes of its shape (zones)
    uint16_t shape;
    uint8_t state;
    bool lease_in_flight;
    bool status_in_flight;
    bool lease_exists;      //  created (else the first renewal creates it)
    uint8_t lease_retries;  //  conflicts in a row
    //  Last revision applied from node/<name>/pods
    int64_t pods_rv;
    int64_t registered_s;   //  wall seconds: conditions' transition time
    int64_t last_renew_ms;  //  monotonic, last renewal acknowledged
    //  The Lease as last read or written (packed): a renewal updates it
    //  at its resourceVersion, keeping what other writers put there
    uint8_t *lease_data;
    uint32_t lease_size;
    uint32_t pod_count;
    zl_timer_t lease_timer;
    zl_timer_t status_timer;
} zl_node_t;

//  ---------------------------------------------------------------------
//  Pods (pod.c)

typedef struct {
    bool valid;
    int exit_code;
    char reason[64];
    char message[512];
    int64_t started_ms;
    int64_t finished_ms;
    char id[ZUBE_RUNTIME_ID_MAX];
} zl_terminated_t;

typedef struct {
    int64_t next_ms;        //  monotonic: next run (0: not armed)
    int successes;
    int failures;
    bool ok;
    bool in_flight;         //  a host probe (prober.c) runs
} zl_probe_state_t;

typedef struct {
    char *name;
    bool init;
    bool sidecar;           //  init with restartPolicy Always (Kubernetes 1.29)
    bool ever_started;      //  sidecar: started once, the next init may go
    uint32_t index;
    //  The current instance ("" when none)
    char id[ZUBE_RUNTIME_ID_MAX];
    zube_runtime_container_state_t state;
    int64_t started_ms;
    int64_t finished_ms;
    zl_terminated_t term;   //  of the current instance, when EXITED
    char *image_id;
    uint32_t restart_count;
    zl_terminated_t last;   //  lastState
    //  Waiting reason and message when there is no running instance
    char waiting_reason[32];
    char *waiting_message;
    int64_t backoff_ms;     //  the next back-off
    int64_t next_start_ms;  //  wall ms: not before (back-off)
    bool done;              //  exited and will not be restarted
    bool ready;
    bool started;
    int64_t running_since_mono;
    zl_probe_state_t probes[3]; //  liveness, readiness, startup
} zl_container_t;

enum { ZL_COND_SCHEDULED, ZL_COND_INITIALIZED, ZL_COND_CONTAINERS_READY, ZL_COND_READY,
       ZL_COND_COUNT };

typedef struct zl_pod_t_ {
    char *key;              //  namespace/name
    char *uid;
    zl_node_t *node;
    Zube__Pod *pod;         //  the newest state seen
    int64_t rv;
    char sandbox_id[ZUBE_RUNTIME_ID_MAX];
    char ip[64];
    bool sandbox_failed;
    char *sandbox_error;
    int64_t sandbox_retry_ms;
    zl_container_t *containers; //  init containers first, then app ones
    size_t init_count;
    size_t container_count;
    //  Terminating
    bool deleting;          //  deletionTimestamp seen
    bool gone;              //  no longer in the API
    bool stop_sent;
    int64_t stop_deadline_ms;
    bool sandbox_removed;
    bool delete_in_flight;
    bool finished;          //  phase Succeeded or Failed reported
    //  Status
    int64_t start_time_s;
    uint8_t cond_status[ZL_COND_COUNT];  //  0 unknown, 1 False, 2 True
    int64_t cond_time_s[ZL_COND_COUNT];
    uint8_t *sent;          //  the last status written (packed)
    size_t sent_size;
    bool status_in_flight;
    bool status_dirty;
    int64_t last_write_ms;  //  monotonic
    int refs;               //  calls in flight that point here
    bool dead;              //  forgotten; freed when refs reaches 0
    bool init_failed;       //  an init container failed, restartPolicy Never
    bool deadline_exceeded; //  ran past spec.activeDeadlineSeconds: killed, Failed
    bool sidecars_stopping; //  the main containers are done: sidecars stop for good
    bool mains_stop_sent;   //  terminating: main containers first, then sidecars
    zl_timer_t sync_timer;
    zl_timer_t status_timer;
    struct zl_pod_t_ *next, *prev;  //  every record, live or terminating
} zl_pod_t;

//  ---------------------------------------------------------------------
//  The agent

typedef struct {
    zube_bus_config_t bus;
    const char *runtime;
    //  The runtime's own options ("key=value", NULL-terminated; may be NULL)
    const char *const *runtime_options;
    const char *state_dir;
    const char *node_name;      //  one node
    const char *prefix;         //  or count nodes prefix0001..
    size_t count;
    zl_shapes_t *shapes;        //  borrowed
    bool host_shape;
    int lease_duration_s;
    int64_t renew_interval_ms;
    int64_t status_report_ms;
    int64_t backoff_base_ms;
    int64_t backoff_max_ms;
    int64_t status_min_interval_ms;
    int connect_timeout_ms;
    const char *admin_identities;   //  comma-separated, prefixes end in *
    int64_t exec_idle_timeout_ms;   //  an exec session nobody polls is closed then
    size_t exec_max_sessions;
} zubelet_config_t;

typedef struct {
    uint64_t renewals;
    uint64_t renew_errors;
    uint64_t renew_late;        //  acknowledged more than interval + 1 s after the last
    uint64_t renew_conflicts;   //  a renewal met a newer Lease: re-read, retried
    int64_t renew_max_gap_ms;
    uint64_t status_writes;
    uint64_t status_conflicts;
    uint64_t pod_events;
    uint64_t repairs;
    uint64_t gaps;
    uint64_t relists;
} zl_stats_t;

struct _zubelet_t {
    zubelet_config_t config;
    zube_bus_t *bus;
    zube_api_t *api;
    char identity[96];          //  this zubelet's id (state dir)
    //  Runtime
    zube_plugin_host_t *plugins;
    zube_runtime_t *runtime;
    int64_t tick_at;            //  monotonic ms, INT64_MAX: none
    //  Nodes
    zl_node_t *nodes;
    size_t node_count;
    zhashx_t *node_by_name;     //  name -> zl_node_t *
    size_t registering;         //  registrations in flight
    size_t next_register;       //  next node to start registering
    size_t registered;
    int64_t lease_epoch;        //  monotonic ms: phase 0 of the renewals
    //  Pods
    zhashx_t *pods;             //  namespace/name -> zl_pod_t * (live ones)
    zl_pod_t *pod_list;         //  owns every record
    zhashx_t *pod_by_sandbox;   //  sandbox id -> zl_pod_t *
    zhashx_t *adoptable;        //  pod uid -> sandbox id (strdup), until synced
    char topic[300];            //  the subscription prefix
    int64_t watermark;          //  every pod event of ours up to here is applied
    bool synced;                //  the first list is applied
    bool repair_in_flight;
    bool repair_again;
    bool relist_needed;
    zl_timer_t resync_timer;
    zl_timer_t stats_timer;
    //  Timers
    zl_timer_t **heap;
    size_t heap_count;
    size_t heap_capacity;
    zl_stats_t stats;
    bool closing;               //  destroying: callbacks start nothing
    char service[300];          //  our bus service (server.c)
    //  Host probes in flight (prober.c)
    zl_hprobe_t **hprobes;
    size_t hprobe_count;
    size_t hprobe_capacity;
    //  Interactive exec sessions (exec.c)
    zl_exec_t **execs;
    size_t exec_count;
    bool fatal;                 //  stop with an error (conflict)
    char fatal_error[1024];
};

//  zubelet.c
zubelet_t *zubelet_new (const zubelet_config_t *config, char *error, size_t error_size);
void zubelet_destroy (zubelet_t **self_p);
//  Lists, adopts, registers, then loops until interrupted; 0 or the
//  exit code of a failure.
int zubelet_run (zubelet_t *self, char *error, size_t error_size);

int64_t zl_now_mono (void);
int64_t zl_now_wall_ms (void);
//  RFC 3339 with seconds ("2024-05-01T10:00:00Z") or microseconds
void zl_format_time (int64_t wall_ms, char *buf, size_t size);
void zl_format_micro_time (int64_t wall_us, char *buf, size_t size);
int64_t zl_parse_time_ms (const char *text);
void zl_timer_set (zubelet_t *self, zl_timer_t *timer, int64_t when);
void zl_timer_cancel (zubelet_t *self, zl_timer_t *timer);
//  The runtime wants a tick as soon as the loop comes round.
void zl_runtime_poke (zubelet_t *self);
//  Appends JSON-escaped text.
void zl_json_string (char **buf, size_t *size, size_t *used, const char *text);
//  An async API call whose ObjectReply is unpacked as kind_desc; with
//  kind_desc NULL the callback gets the ObjectReply itself (its
//  resourceVersion, the object not decoded).
typedef void (zl_done_fn) (zubelet_t *self, zube_status_t status, ProtobufCMessage *object,
                           const zube_api_error_t *error, void *arg);
int zl_call (zubelet_t *self, const char *method, const ProtobufCMessage *request,
             const ProtobufCMessageDescriptor *kind_desc, zl_done_fn *fn, void *arg);

//  node.c
void zl_node_start_registrations (zubelet_t *self);
void zl_node_address (zubelet_t *self, zl_node_t *node, char *buf, size_t size);
//  volumes.c: the pod as the runtime gets it (packed into *packed_p, to be
//  freed): configMap and secret volumes written under the state dir and
//  turned into read-only hostPath volumes, env values from ConfigMaps and
//  Secrets resolved. -1 with error (e.g. configmap "x" not found).
int zl_pod_view_pack (zubelet_t *self, const Zube__Pod *pod, uint8_t **packed_p,
                      size_t *size_p, char *error, size_t error_size);
//  Removes what zl_pod_view_pack wrote for the pod uid.
void zl_pod_volumes_remove (zubelet_t *self, const char *uid);
int zl_node_check_conflicts (zubelet_t *self, char *error, size_t error_size);
//  Writes the status of every registered node now (status.images changed).
void zl_node_status_refresh (zubelet_t *self);

//  pod.c
void zl_pod_apply (zubelet_t *self, zl_node_t *node, const char *type,
                   Zube__Pod **pod_p, int64_t rv);
void zl_pod_runtime_event (zubelet_t *self, const zube_runtime_container_status_t *status);
//  After the first list: removes sandboxes of pods that are gone.
void zl_pod_adoption_done (zubelet_t *self);
//  After a relist: pods not seen since mark are gone.
void zl_pod_forget_unseen (zubelet_t *self, zhashx_t *seen);
void zl_pod_destroy_all (zubelet_t *self);
//  The record of pod namespace/name on one of our nodes, or NULL.
zl_pod_t *zl_pod_find (zubelet_t *self, const char *pod_namespace, const char *name);

//  A host probe's outcome; drops the reference the probe held on p.
void zl_pod_probe_done (zubelet_t *self, zl_pod_t *p, const char *container_id, int kind,
                        bool success, const char *message);

//  prober.c: httpGet and tcpSocket probes run by the zubelet, non-blocking
//  0 when started (the outcome comes through zl_pod_probe_done), -1 with
//  message when it cannot be run.
int zl_prober_start (zubelet_t *self, zl_pod_t *p, const zl_container_t *c, int kind,
                     const Zube__Probe *spec, int64_t timeout_ms, char *message,
                     size_t message_size);
bool zl_prober_active (zubelet_t *self);
//  Advances every probe whose socket is ready; fails those past timeout.
void zl_prober_run (zubelet_t *self);
void zl_prober_destroy (zubelet_t *self);

//  exec.c: interactive exec sessions (node.exec.start, node.exec.io)
#define ZL_EXEC_IDLE_TIMEOUT_MS 30000
#define ZL_EXEC_MAX_SESSIONS 16
void zl_exec_start (zubelet_t *self, zube_bus_request_t *request);
void zl_exec_io (zubelet_t *self, zube_bus_request_t *request);
bool zl_exec_active (zubelet_t *self);
//  Moves every session's bytes, answers waiting polls, closes idle ones.
void zl_exec_run (zubelet_t *self);
void zl_exec_destroy (zubelet_t *self);
//  server.c helpers exec.c shares: the authorization, the node and the
//  pod (NULL after answering), the container (NULL after answering).
zl_pod_t *zl_server_request_pod (zubelet_t *self, zube_bus_request_t *request,
                                 const char *verb, const char *subresource,
                                 const char *node_name, const char *pod_namespace,
                                 const char *pod_name);
zl_node_t *zl_server_request_node (zubelet_t *self, zube_bus_request_t *request,
                                   const char *verb, const char *what, const char *node_name);
zl_container_t *zl_server_container (zube_bus_request_t *request, zl_pod_t *p,
                                     const char *name);

//  server.c: the node service (logs, exec), docs/node-agent.md
//  The service name: node/<name> for one node, node/<prefix>* for many.
const char *zl_server_name (zubelet_t *self);
int zl_server_start (zubelet_t *self, char *error, size_t error_size);
//  Whether identity is one of config.admin_identities.
bool zl_server_is_admin (const char *list, const char *identity);

#endif
