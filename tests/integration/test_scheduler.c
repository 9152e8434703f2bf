/*  test_scheduler - zube-scheduler against a real zube-broker,
    zube-apiserver and a zubelet hosting hollow nodes: pending pods are
    bound once each, a pod no node fits gets PodScheduled=False with
    kube-scheduler's message and a FailedScheduling Event, a pod waiting
    for a node is bound once a fitting node is added, one waiting for its
    podAffinity partner once the partner is bound, a second profile in
    the same process places its own pods, and a bad configuration stops
    the scheduler at start with the field named. */
#include "../zt_cluster.h"
#include "core.pb-c.h"
#include "scheduler.pb-c.h"
#include "zube/certs.h"
#include "zube/codec.h"
#include <czmq.h>

static zt_cluster_t s_cluster;
static pid_t s_zubelet;
static pid_t s_scheduler;
static char s_config[600];

static const char *s_profiles =
    "apiVersion: kubescheduler.config.k8s.io/v1\n"
    "kind: KubeSchedulerConfiguration\n"
    "profiles:\n"
    "- schedulerName: default-scheduler\n"
    "- schedulerName: packer\n"
    "  plugins:\n"
    "    score:\n"
    "      disabled: [{name: NodeResourcesBalancedAllocation}]\n"
    "  pluginConfig:\n"
    "  - name: NodeResourcesFit\n"
    "    args: {scoringStrategy: {type: MostAllocated}}\n"
    "- schedulerName: remote\n"
    "  plugins:\n"
    "    multiPoint: {enabled: [{name: RemotePolicy, weight: 10}]}\n"
    "  pluginConfig:\n"
    "  - name: RemotePolicy\n"
    "    args: {policy: odd-only, timeoutMs: 2000}\n"
    "- schedulerName: python\n"
    "  plugins:\n"
    "    multiPoint: {enabled: [{name: RemotePolicy, weight: 10}]}\n"
    "  pluginConfig:\n"
    "  - name: RemotePolicy\n"
    "    args: {policy: py-odd, timeoutMs: 5000}\n";

static void
s_create_pod (const char *name, const char *spec)
{
    char yaml[2048];
    snprintf (
        yaml, sizeof yaml,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: default}\nspec: %s\n",
        name, spec);
    zt_cluster_create_yaml (&s_cluster, "pods", "default", &zube__pod__descriptor, yaml,
                            NULL);
}

static Zube__Pod *
s_get_pod (const char *name)
{
    ProtobufCMessage *pod = NULL;
    zube_api_get (s_cluster.api, "pods", "default", name, &pod, NULL);
    return (Zube__Pod *)pod;
}

//  The pod once it has a node (NULL after timeout_ms).
static Zube__Pod *
s_wait_bound (const char *name, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        Zube__Pod *pod = s_get_pod (name);
        if (pod && pod->spec && pod->spec->node_name && *pod->spec->node_name)
            return pod;
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        zube_bus_poll (s_cluster.bus, 50);
    }
    return NULL;
}

static Zube__PodCondition *
s_condition (Zube__Pod *pod, const char *type)
{
    for (size_t i = 0; pod->status && i < pod->status->n_conditions; i++)
        if (streq (pod->status->conditions[i]->type, type))
            return pod->status->conditions[i];
    return NULL;
}

//  The pod once its PodScheduled condition is False.
static Zube__Pod *
s_wait_unschedulable (const char *name, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        Zube__Pod *pod = s_get_pod (name);
        Zube__PodCondition *condition = pod ? s_condition (pod, "PodScheduled") : NULL;
        if (condition && streq (condition->status, "False"))
            return pod;
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        zube_bus_poll (s_cluster.bus, 50);
    }
    return NULL;
}

//  The scheduler's stats (JSON text, malloc'd), NULL when it does not answer.
static char *
s_stats_on (zube_bus_t *bus)
{
    return zt_sched_stats (bus, 2000);
}

static char *
s_stats (void)
{
    return s_stats_on (s_cluster.bus);
}

static long
s_stat (const char *text, const char *key)
{
    return zt_sched_stat (text, key);
}

static void
test_binds_pending_pods (void)
{
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf (name, sizeof name, "web-%02d", i);
        s_create_pod (name, "{containers: [{name: c, image: pause, resources: {requests: "
                            "{cpu: 100m, memory: 64Mi}}}]}");
    }
    int nodes_used = 0;
    char seen[8][64] = {{0}};
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf (name, sizeof name, "web-%02d", i);
        Zube__Pod *pod = s_wait_bound (name, 20000);
        ZT_ASSERT_MSG (pod, "%s was not bound", name);
        Zube__PodCondition *scheduled = s_condition (pod, "PodScheduled");
        ZT_ASSERT_MSG (scheduled && streq (scheduled->status, "True"),
                       "%s: no PodScheduled", name);
        bool known = false;
        for (int j = 0; j < nodes_used; j++)
            known |= streq (seen[j], pod->spec->node_name);
        if (!known && nodes_used < 8)
            snprintf (seen[nodes_used++], sizeof seen[0], "%s", pod->spec->node_name);
        protobuf_c_message_free_unpacked (&pod->base, NULL);
    }
    //  The default profile spreads (LeastAllocated, balanced)
    ZT_ASSERT_MSG (nodes_used == 4, "20 pods on %d of 4 nodes", nodes_used);
    //  Bound once each: no binding was refused
    char *stats = s_stats ();
    ZT_ASSERT_MSG (stats, "the scheduler does not answer stats");
    ZT_ASSERT_MSG (s_stat (stats, "bound") >= 20 && s_stat (stats, "bindErrors") == 0,
                   "%s", stats);
    free (stats);
    //  The same through zubectl, and the Prometheus text
    zt_run_t result = zt_run_capture (
        20000, (char *[]){(char *)zt_program ("zubectl"), "--broker", s_cluster.endpoint,
                          "--insecure", "scheduler", "stats", NULL});
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "\"nodes\": 4");
    zt_run_free (&result);
    result = zt_run_capture (20000, (char *[]){(char *)zt_program ("zubectl"), "--broker",
                                               s_cluster.endpoint, "--insecure",
                                               "scheduler", "metrics", NULL});
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out,
                            "scheduler_schedule_attempts_total{result=\"scheduled\"}");
    ZT_ASSERT_STR_CONTAINS (result.out,
                            "scheduler_pod_scheduling_duration_seconds_count 20\n");
    ZT_ASSERT_STR_CONTAINS (result.out,
                            "scheduler_framework_extension_point_duration_seconds_count"
                            "{extension_point=\"Filter\",profile=\"default-scheduler\"}");
    zt_run_free (&result);
}

static void
test_unschedulable_message (void)
{
    s_create_pod ("huge", "{containers: [{name: c, image: pause, resources: {requests: "
                          "{cpu: '64'}}}]}");
    Zube__Pod *pod = s_wait_unschedulable ("huge", 20000);
    ZT_ASSERT_MSG (pod, "huge did not get PodScheduled=False");
    Zube__PodCondition *condition = s_condition (pod, "PodScheduled");
    ZT_ASSERT_STR_EQ (condition->reason, "Unschedulable");
    ZT_ASSERT_STR_EQ (condition->message, "0/4 nodes are available: 4 Insufficient cpu.");
    ZT_ASSERT (!pod->spec->node_name || !*pod->spec->node_name);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    //  The Event, on the pod
    bool found = false;
    int64_t until = zt_now_ms () + 10000;
    while (!found && zt_now_ms () < until) {
        zube_api_list_t *list = NULL;
        if (zube_api_list (s_cluster.api, "events",
                           &(zube_api_list_options_t){.namespace = "default"}, &list,
                           NULL) == ZUBE_OK) {
            for (size_t i = 0; i < list->count; i++) {
                Zube__Event *event = (Zube__Event *)list->items[i];
                if (event->involved_object &&
                    streq (event->involved_object->name, "huge") &&
                    streq (event->reason, "FailedScheduling"))
                    found = streq (event->message,
                                   "0/4 nodes are available: 4 Insufficient cpu.") &&
                            streq (event->type, "Warning");
            }
            zube_api_list_destroy (&list);
        }
        if (!found)
            zube_bus_poll (s_cluster.bus, 100);
    }
    ZT_ASSERT_MSG (found, "no FailedScheduling event for huge");
    //  zubectl scheduler explain: each filter over every node, and scores
    zt_run_t result = zt_run_capture (
        20000, (char *[]){(char *)zt_program ("zubectl"), "--broker", s_cluster.endpoint,
                          "--insecure", "scheduler", "explain", "huge", NULL});
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "NodeResourcesFit                 rejected 4: 4 "
                                        "Insufficient cpu");
    ZT_ASSERT_STR_CONTAINS (result.out,
                            "NodeAffinity                     nothing to check");
    ZT_ASSERT_STR_CONTAINS (result.out, "Feasible: 0 of 4 nodes");
    zt_run_free (&result);
    result = zt_run_capture (20000,
                             (char *[]){(char *)zt_program ("zubectl"), "--broker",
                                        s_cluster.endpoint, "--insecure", "scheduler",
                                        "explain", "pod/web-00", "-n", "default", NULL});
    ZT_ASSERT_EXIT (result, 0);
    //  (a bound pod names its node: NodeName keeps that one)
    ZT_ASSERT_STR_CONTAINS (result.out,
                            "rejected 3: 3 node(s) didn't match the requested node "
                            "name");
    ZT_ASSERT_STR_CONTAINS (result.out, "Feasible: 1 of 4 nodes");
    ZT_ASSERT_STR_CONTAINS (result.out, "TaintToleration*3");
    ZT_ASSERT_STR_CONTAINS (result.out, "NodeAffinity*2(skipped)");
    zt_run_free (&result);
    result = zt_run_capture (
        20000, (char *[]){(char *)zt_program ("zubectl"), "--broker", s_cluster.endpoint,
                          "--insecure", "scheduler", "explain", "nosuchpod", NULL});
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "NotFound");
    zt_run_free (&result);
}

//  Creates a node from YAML, then writes its status through the status
//  subresource (as a node agent does: create ignores status).
static void
s_create_node (zube_api_t *api, const char *yaml)
{
    ProtobufCMessage *node = NULL;
    ZT_ASSERT (zube_codec_decode (yaml, strlen (yaml), &zube__node__descriptor, &node,
                                  NULL) == 0);
    zube_api_error_t error;
    ProtobufCMessage *created = NULL;
    zube_status_t status =
        zube_api_create (api, "nodes", NULL, node, false, &created, &error);
    ZT_ASSERT_MSG (status == ZUBE_OK, "create node: %.800s", error.message);
    Zube__NodeStatus *wanted = ((Zube__Node *)node)->status;
    ((Zube__Node *)node)->status = ((Zube__Node *)created)->status;
    ((Zube__Node *)created)->status = wanted;
    status = zube_api_update (api, "nodes", NULL, created, "status", false, NULL, &error);
    protobuf_c_message_free_unpacked (node, NULL);
    protobuf_c_message_free_unpacked (created, NULL);
    ZT_ASSERT_MSG (status == ZUBE_OK, "node status: %.800s", error.message);
}

static void
test_requeue_on_node_add (void)
{
    s_create_pod ("waits", "{containers: [{name: c, image: pause}], nodeSelector: "
                           "{disktype: ssd}}");
    Zube__Pod *pod = s_wait_unschedulable ("waits", 20000);
    ZT_ASSERT_MSG (pod, "waits did not get PodScheduled=False");
    ZT_ASSERT_STR_CONTAINS (s_condition (pod, "PodScheduled")->message,
                            "4 node(s) didn't match Pod's node affinity/selector");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    //  A node that fits arrives: the pod leaves the unschedulable queue
    const char *yaml = "apiVersion: v1\nkind: Node\nmetadata: {name: fast-1, labels: "
                       "{disktype: ssd}}\nstatus: {allocatable: {cpu: '2', memory: 4Gi, "
                       "pods: '10'}}\n";
    s_create_node (s_cluster.api, yaml);
    pod = s_wait_bound ("waits", 20000);
    ZT_ASSERT_MSG (pod, "waits was not bound after fast-1 was added");
    ZT_ASSERT_STR_EQ (pod->spec->node_name, "fast-1");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

//  A pod whose required podAffinity no pod satisfies yet is bound once
//  such a pod is bound (the scheduler's POD_UPDATE event, Kubernetes'
//  AssignedPodAdd), not after the 5-minute flush.
static void
test_requeue_on_pod_bound (void)
{
    s_create_pod ("follower",
                  "{containers: [{name: c, image: pause}], affinity: {podAffinity: "
                  "{requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: "
                  "{matchLabels: {app: leader}}, topologyKey: kubernetes.io/hostname}]}}}");
    Zube__Pod *pod = s_wait_unschedulable ("follower", 20000);
    ZT_ASSERT_MSG (pod, "follower did not get PodScheduled=False");
    ZT_ASSERT_STR_CONTAINS (s_condition (pod, "PodScheduled")->message,
                            "node(s) didn't match pod affinity rules");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    //  Its own status update (PodScheduled=False) queues it once more,
    //  after a 1 s back-off: let that attempt pass, so only the binding
    //  of the leader can wake it (no assertion depends on this wait)
    int64_t until = zt_now_ms () + 3000;
    while (zt_now_ms () < until)
        zube_bus_poll (s_cluster.bus, 100);
    //  On a node with the topology key (fast-1 has none)
    const char *yaml =
        "apiVersion: v1\nkind: Pod\nmetadata: {name: leader, namespace: default, "
        "labels: {app: leader}}\nspec: {containers: [{name: c, image: pause}], "
        "affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
        "{nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, "
        "operator: Exists}]}]}}}}\n";
    zt_cluster_create_yaml (&s_cluster, "pods", "default", &zube__pod__descriptor, yaml,
                            NULL);
    Zube__Pod *leader = s_wait_bound ("leader", 20000);
    ZT_ASSERT_MSG (leader, "leader was not bound");
    pod = s_wait_bound ("follower", 20000);
    ZT_ASSERT_MSG (pod, "follower was not bound after leader was");
    ZT_ASSERT_STR_EQ (pod->spec->node_name, leader->spec->node_name);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    protobuf_c_message_free_unpacked (&leader->base, NULL);
}

static void
test_second_profile_packs (void)
{
    //  The default profile spread web-*; packer puts its pods together
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf (name, sizeof name, "packed-%d", i);
        s_create_pod (name, "{schedulerName: packer, nodeSelector: "
                            "{node.kubernetes.io/instance-type: zube-sim}, "
                            "containers: [{name: c, image: pause, resources: {requests: "
                            "{cpu: 500m, memory: 64Mi}}}]}");
        Zube__Pod *pod = s_wait_bound (name, 20000);
        ZT_ASSERT_MSG (pod, "%s was not bound", name);
        static char first[64];
        if (i == 0)
            snprintf (first, sizeof first, "%s", pod->spec->node_name);
        else
            ZT_ASSERT_MSG (streq (first, pod->spec->node_name), "%s on %s, %s on %s",
                           name, pod->spec->node_name, "packed-0", first);
        protobuf_c_message_free_unpacked (&pod->base, NULL);
    }
    //  A schedulerName no profile has is left alone
    s_create_pod ("other",
                  "{schedulerName: someone-else, containers: [{name: c, image: pause}]}");
    zube_bus_poll (s_cluster.bus, 1000);
    Zube__Pod *pod = s_get_pod ("other");
    ZT_ASSERT (pod);
    ZT_ASSERT (!pod->spec->node_name || !*pod->spec->node_name);
    ZT_ASSERT (!s_condition (pod, "PodScheduled"));
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

//  A policy served on the bus (here by the test's own connection): nodes
//  whose name ends in an odd digit fit, the highest number scores best.
static int s_policy_calls;

static void
s_policy (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    (void)bus, (void)arg;
    s_policy_calls++;
    Zube__PolicyRequest *ask = (Zube__PolicyRequest *)zube_bus_request_unpack_or_reject (
        request, &zube__policy_request__descriptor);
    if (!ask)
        return;
    bool score = streq (zube_bus_request_method (request), "score");
    size_t count = ask->n_nodes;
    protobuf_c_boolean *feasible = calloc (count + 1, sizeof *feasible);
    char **reasons = calloc (count + 1, sizeof *reasons);
    int64_t *scores = calloc (count + 1, sizeof *scores);
    for (size_t i = 0; i < count; i++) {
        const char *name = ask->nodes[i]->name;
        char last = name[strlen (name) - 1];
        feasible[i] = last == '1' || last == '3';
        reasons[i] = feasible[i] ? "" : "node(s) had an even number";
        scores[i] = last == '3' ? 100 : 0;
    }
    if (score) {
        Zube__PolicyScoreReply reply = ZUBE__POLICY_SCORE_REPLY__INIT;
        reply.n_scores = count;
        reply.scores = scores;
        zube_bus_respond_msg (request, &reply.base);
    } else {
        Zube__PolicyFilterReply reply = ZUBE__POLICY_FILTER_REPLY__INIT;
        reply.n_feasible = count;
        reply.feasible = feasible;
        reply.n_reasons = count;
        reply.reasons = reasons;
        zube_bus_respond_msg (request, &reply.base);
    }
    free (feasible);
    free (reasons);
    free (scores);
    protobuf_c_message_free_unpacked (&ask->base, NULL);
}

static void
test_remote_policy (void)
{
    ZT_ASSERT (
        zube_bus_serve (s_cluster.bus, "scheduler.policy/odd-only", s_policy, NULL) == 0);
    s_create_pod ("remote-1",
                  "{schedulerName: remote, containers: [{name: c, image: pause}]}");
    Zube__Pod *pod = s_wait_bound ("remote-1", 20000);
    ZT_ASSERT_MSG (pod, "remote-1 was not bound");
    ZT_ASSERT_STR_EQ (pod->spec->node_name, "sim-0003");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    ZT_ASSERT (s_policy_calls >= 2);
    //  The policy's reasons count in the message
    s_create_pod ("remote-2",
                  "{schedulerName: remote, nodeSelector: {kubernetes.io/hostname: "
                  "sim-0002}, containers: [{name: c, image: pause}]}");
    pod = s_wait_unschedulable ("remote-2", 20000);
    ZT_ASSERT_MSG (pod, "remote-2 did not get PodScheduled=False");
    ZT_ASSERT_STR_CONTAINS (s_condition (pod, "PodScheduled")->message,
                            "node(s) had an even number");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    //  No policy on the bus: the pod waits, the message names it
    ZT_ASSERT (zube_bus_unserve (s_cluster.bus, "scheduler.policy/odd-only") == 0);
    s_create_pod ("remote-3",
                  "{schedulerName: remote, containers: [{name: c, image: pause}]}");
    pod = s_wait_unschedulable ("remote-3", 20000);
    ZT_ASSERT_MSG (pod, "remote-3 did not get PodScheduled=False");
    ZT_ASSERT_STR_CONTAINS (s_condition (pod, "PodScheduled")->message,
                            "scheduler.policy/odd-only filter");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

//  examples/scheduler/policy.py, the Python policy (pyzmq and the schemas
//  protoc generates), served on the bus and used by profile "python"
static void
test_python_policy (void)
{
    //  Debian's python3 has the Debian modules; another first on PATH may not
    char python_path[1024] = "";
    const char *found = access ("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
                                                               : zt_which ("python3");
    if (found)
        snprintf (python_path, sizeof python_path, "%s", found);
    const char *python = python_path[0] ? python_path : NULL;
    zt_run_t probe = {.status = -1};
    if (python && zt_which ("protoc"))
        probe = zt_run_capture (
            20000, (char *[]){(char *)python, "-c", "import zmq, google.protobuf", NULL});
    if (probe.status != 0) {
        zt_run_free (&probe);
        printf ("# SKIP: python3 with zmq and google.protobuf, and protoc, are needed\n");
        return;
    }
    zt_run_free (&probe);
    const char *srcdir = getenv ("ZUBE_SRCDIR");
    char script[700], log[700];
    snprintf (script, sizeof script, "%s/examples/scheduler/policy.py",
              srcdir ? srcdir : "..");
    snprintf (log, sizeof log, "%s/policy.log", s_cluster.dir);
    pid_t policy =
        zt_spawn_tied ((char *[]){(char *)python, script, "--broker", s_cluster.endpoint,
                                  "--name", "py-odd", NULL},
                       log);
    ZT_ASSERT (policy > 0);
    s_create_pod ("python-1",
                  "{schedulerName: python, containers: [{name: c, image: pause}]}");
    Zube__Pod *pod = s_wait_bound ("python-1", 30000);
    bool odd = pod && pod->spec->node_name &&
               strchr ("13579", pod->spec->node_name[strlen (pod->spec->node_name) - 1]);
    char node[64];
    snprintf (node, sizeof node, "%s",
              pod && pod->spec->node_name ? pod->spec->node_name : "(none)");
    if (pod)
        protobuf_c_message_free_unpacked (&pod->base, NULL);
    if (!odd)
        zt_log_tail (log, 20);
    ZT_ASSERT_MSG (odd, "python-1 on %s, not a node the Python policy lets through",
                   node);
    s_create_pod ("python-2",
                  "{schedulerName: python, nodeSelector: {kubernetes.io/hostname: "
                  "sim-0002}, containers: [{name: c, image: pause}]}");
    pod = s_wait_unschedulable ("python-2", 30000);
    ZT_ASSERT_MSG (pod, "python-2 did not get PodScheduled=False");
    ZT_ASSERT_STR_CONTAINS (s_condition (pod, "PodScheduled")->message,
                            "node(s) are even (python policy)");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    zt_stop (policy, SIGTERM, 5000);
}

static void
test_bad_config (void)
{
    char path[700];
    snprintf (path, sizeof path, "%s/bad.yaml", s_cluster.dir);
    ZT_WRITE_FILE (path,
                   "apiVersion: kubescheduler.config.k8s.io/v1\n"
                   "kind: KubeSchedulerConfiguration\n"
                   "profiles:\n- plugins: {score: {enabled: [{name: NodeResourcesFit, "
                   "weight: 1000}]}}\n");
    zt_run_t result = zt_run_capture (
        20000, (char *[]){(char *)zt_program ("zube-scheduler"), "--insecure", "--bus",
                          s_cluster.endpoint, "--config", path, NULL});
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err,
                            "profiles[0].plugins.score.enabled[0].weight: Invalid "
                            "value: 1000");
    zt_run_free (&result);
    ZT_WRITE_FILE (path, "apiVersion: kubescheduler.config.k8s.io/v1\n"
                         "kind: KubeSchedulerConfiguration\n"
                         "profiles:\n- plugins: {filter: {enabled: [{name: Nope}]}}\n");
    result = zt_run_capture (20000, (char *[]){(char *)zt_program ("zube-scheduler"),
                                               "--check", "--config", path, NULL});
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err,
                            "profiles[0].plugins.filter.enabled[0].name: unknown "
                            "plugin \"Nope\"");
    zt_run_free (&result);
}

//  Last: SIGTERM stops it cleanly (exit 0, no sanitizer report).
static void
test_clean_stop (void)
{
    ZT_ASSERT (zt_process_alive (s_scheduler));
    int status = zt_stop (s_scheduler, SIGTERM, 10000);
    s_scheduler = 0;
    ZT_ASSERT_MSG (WIFEXITED (status) && WEXITSTATUS (status) == 0, "exit status %d",
                   status);
    char path[700];
    snprintf (path, sizeof path, "%s/scheduler.log", s_cluster.dir);
    char *log = zt_read_file (path);
    ZT_ASSERT_MSG (log && !strstr (log, "ERROR: AddressSanitizer") &&
                       !strstr (log, "runtime error:"),
                   "sanitizer report in %s", path);
    free (log);
}

//  A scheduler whose binds the apiserver refuses (its identity may watch
//  but not bind): every failed bind forgets the assumed pod and requeues
//  it with back-off, so it is tried again; a scheduler allowed to bind
//  then binds it.
static void
test_bind_failure_requeue (void)
{
    char *keys = zt_tempdir ("schedcerts");
    char certs[512], policy[512], text[256], log[600];
    snprintf (certs, sizeof certs, "%s/certs", keys);
    snprintf (policy, sizeof policy, "%s/policy.yaml", keys);
    const char *names[] = {"broker", "apiserver", "admin", "scheduler", "watcher"};
    for (int i = 0; i < 5; i++)
        ZT_ASSERT_MSG (zube_certs_create (certs, names[i], text, sizeof text) == 0, "%s",
                       text);
    ZT_ASSERT (zt_write_file (policy, "roles:\n"
                                      "- name: watcher\n"
                                      "  rules:\n"
                                      "  - verbs: [get, list, watch]\n"
                                      "    resources: ['*']\n"
                                      "  - verbs: [create, update]\n"
                                      "    resources: [pods/status, events, leases]\n"
                                      "- name: scheduler\n"
                                      "  rules:\n"
                                      "  - verbs: [get, list, watch]\n"
                                      "    resources: ['*']\n"
                                      "  - verbs: [create]\n"
                                      "    resources: [pods/binding, events, leases]\n"
                                      "  - verbs: [update, patch]\n"
                                      "    resources: [pods/status, events, leases]\n"
                                      "bindings:\n"
                                      "- identities: [admin]\n"
                                      "  role: admin\n"
                                      "- identities: [watcher]\n"
                                      "  role: watcher\n"
                                      "- identities: [scheduler]\n"
                                      "  role: scheduler\n"));
    const char *args[] = {"--policy", policy, NULL};
    zt_cluster_t secure;
    bool up =
        zt_cluster_start (&secure, &(zt_cluster_options_t){.tag = "sched-authz",
                                                           .certs = certs,
                                                           .client_name = "admin",
                                                           .apiserver_args = args,
                                                           .ready_timeout_ms = 15000});
    ZT_ASSERT_MSG (up, "the secure apiserver did not start: %s", secure.why);
    //  One node, written by the test (no zubelet)
    s_create_node (secure.api,
                   "apiVersion: v1\nkind: Node\nmetadata: {name: lonely}\n"
                   "status: {allocatable: {cpu: '2', memory: 4Gi, pods: '10'}}\n");
    snprintf (log, sizeof log, "%s/watcher.log", secure.dir);
    pid_t watcher = zt_spawn_tied ((char *[]){(char *)zt_program ("zube-scheduler"),
                                              "--bus", secure.endpoint, "--certs", certs,
                                              "--name", "watcher", NULL},
                                   log);
    ProtobufCMessage *pod = NULL;
    const char *pod_yaml =
        "apiVersion: v1\nkind: Pod\nmetadata: {name: refused, namespace: "
        "default}\nspec: {containers: [{name: c, image: pause}]}\n";
    ZT_ASSERT (zube_codec_decode (pod_yaml, strlen (pod_yaml), &zube__pod__descriptor,
                                  &pod, NULL) == 0);
    ZT_ASSERT (zube_api_create (secure.api, "pods", "default", pod, false, NULL, NULL) ==
               ZUBE_OK);
    protobuf_c_message_free_unpacked (pod, NULL);
    //  Refused, forgotten, retried after its back-off (1 s, then 2 s)
    long errors = 0, cached = -1;
    int64_t until = zt_now_ms () + 20000;
    while (errors < 2 && zt_now_ms () < until) {
        char *stats = s_stats_on (secure.bus);
        errors = s_stat (stats, "bindErrors");
        cached = s_stat (stats, "pods");
        free (stats);
        zube_bus_poll (secure.bus, 200);
    }
    ZT_ASSERT_MSG (errors >= 2, "the refused bind was not retried (%ld bind errors)",
                   errors);
    ZT_ASSERT_MSG (cached == 0, "the scheduler still holds the refused pod (%ld pods)",
                   cached);
    zt_stop (watcher, SIGTERM, 10000);
    //  A scheduler that may bind places it
    snprintf (log, sizeof log, "%s/scheduler.log", secure.dir);
    pid_t scheduler =
        zt_spawn_tied ((char *[]){(char *)zt_program ("zube-scheduler"), "--bus",
                                  secure.endpoint, "--certs", certs, NULL},
                       log);
    bool bound = false;
    until = zt_now_ms () + 20000;
    while (!bound && zt_now_ms () < until) {
        ProtobufCMessage *got = NULL;
        if (zube_api_get (secure.api, "pods", "default", "refused", &got, NULL) ==
            ZUBE_OK) {
            Zube__Pod *p = (Zube__Pod *)got;
            bound = p->spec && p->spec->node_name && streq (p->spec->node_name, "lonely");
            protobuf_c_message_free_unpacked (got, NULL);
        }
        if (!bound)
            zube_bus_poll (secure.bus, 100);
    }
    zt_stop (scheduler, SIGTERM, 10000);
    zt_cluster_stop (&secure, !bound);
    zt_rmtree (keys);
    free (keys);
    ZT_ASSERT_MSG (bound, "the pod was not bound by the scheduler allowed to bind");
}

static bool
s_setup (char *why, size_t size)
{
    if (!zt_cluster_start (&s_cluster, &(zt_cluster_options_t){.tag = "scheduler"})) {
        snprintf (why, size, "%.400s", s_cluster.why);
        return false;
    }
    snprintf (s_config, sizeof s_config, "%s/scheduler.yaml", s_cluster.dir);
    if (!zt_write_file (s_config, s_profiles)) {
        snprintf (why, size, "cannot write %.400s", s_config);
        return false;
    }
    //  Ready: the scheduler answers and holds the 4 nodes
    return zt_sched_start (&s_cluster, 4, "sim-", NULL, s_config, &s_zubelet, &s_scheduler,
                           why, size);
}

int
main (void)
{
    char why[512];
    if (!s_setup (why, sizeof why)) {
        printf ("not ok 1 - setup\n# %s\n1..1\n", why);
        zt_sched_stop (&s_cluster, s_zubelet, s_scheduler, true, 0);
        return 1;
    }
    ZT_RUN (test_binds_pending_pods);
    ZT_RUN (test_unschedulable_message);
    ZT_RUN (test_requeue_on_node_add);
    ZT_RUN (test_requeue_on_pod_bound);
    ZT_RUN (test_second_profile_packs);
    ZT_RUN (test_remote_policy);
    ZT_RUN (test_python_policy);
    ZT_RUN (test_bad_config);
    ZT_RUN (test_clean_stop);
    ZT_RUN (test_bind_failure_requeue);
    zt_sched_stop (&s_cluster, s_zubelet, s_scheduler, false, 30);
    return zt_done ();
}
