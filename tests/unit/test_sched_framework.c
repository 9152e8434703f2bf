/*  test_sched_framework - zube-scheduler's framework, built-in plugins,
    profiles and queue on an in-memory node cache (no bus): each plugin's
    semantics on small clusters, the unschedulable message, spread against
    pack, profile errors naming the field, queue order and back-off. The
    plugins are the shared objects just built ($ZUBE_BUILDDIR/plugins). */
#include "zs_sched.h"
#include "zube/codec.h"
#include "zube_test.h"
#include "zt_sched.h"
#include <czmq.h>

static zs_registry_t *s_registry;

//  A node NAME with cpu, memory, 110 pods, labels and taints (YAML flow).
static void
s_node (zs_cache_t *cache, const char *name, const char *cpu, const char *memory,
        const char *labels, const char *taints)
{
    char yaml[2048];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: %s, labels: %s}\n"
              "spec: {taints: %s}\n"
              "status: {allocatable: {cpu: '%s', memory: '%s', pods: '110'}}\n",
              name, labels ? labels : "{}", taints ? taints : "[]", cpu, memory);
    zt_sched_node_add (cache, yaml);
}

static zs_pod_t *
s_pod (const char *name, const char *spec)
{
    char yaml[4096];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: %s, namespace: default, uid: uid-%s, "
              "creationTimestamp: '2026-01-01T00:00:00Z'}\n"
              "spec: %s\n",
              name, name, spec);
    return zt_sched_pod (yaml);
}

static char *
s_containers (const char *cpu, const char *memory)
{
    return zsys_sprintf ("{containers: [{name: c, image: i, resources: {requests: "
                         "{cpu: '%s', memory: '%s'}}}]}",
                         cpu, memory);
}

static zs_profile_t *
s_profile (const char *yaml)
{
    return zt_sched_profile (s_registry, yaml);
}

//  Schedules a pod; answers the node's name (static) or NULL with the
//  message in message.
static const char *
s_schedule (zs_profile_t *profile, zs_cache_t *cache, zs_pod_t *pod, char *message,
            size_t size)
{
    static char node[256];
    zs_result_t result;
    int rc = zs_profile_schedule (profile, cache, pod, &result);
    ZT_ASSERT (rc >= 0);
    if (rc == 1) {
        zs_diagnosis_message (&result.diagnosis, message, size);
        return NULL;
    }
    ZT_ASSERT (result.host_bind);
    snprintf (node, sizeof node, "%s", result.node->name);
    return node;
}

//  Schedules a pod from spec and frees it; the node name or NULL.
static const char *
s_place (zs_profile_t *profile, zs_cache_t *cache, const char *name, const char *spec,
         char *message, size_t size)
{
    zs_pod_t *pod = s_pod (name, spec);
    const char *node = s_schedule (profile, cache, pod, message, size);
    zs_pod_destroy (&pod);
    return node;
}

static void
test_resource_fit (void)
{
    zs_cache_t *cache = zs_cache_new ();
    zs_profile_t *profile = s_profile (NULL);
    s_node (cache, "small", "1", "4Gi", NULL, NULL);
    s_node (cache, "medium", "2", "4Gi", NULL, NULL);
    s_node (cache, "large", "4", "4Gi", NULL, NULL);
    char message[512] = "";
    char *spec = s_containers ("3", "1Gi");
    const char *node = s_place (profile, cache, "p1", spec, message, sizeof message);
    ZT_ASSERT_STR_EQ (node, "large");
    zstr_free (&spec);
    //  large has 1 cpu left now: 2 cpu fits medium only
    spec = s_containers ("2", "1Gi");
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "p2", spec, message, sizeof message),
                      "medium");
    zstr_free (&spec);
    spec = s_containers ("8", "1Gi");
    ZT_ASSERT (!s_place (profile, cache, "p3", spec, message, sizeof message));
    ZT_ASSERT_STR_EQ (message, "0/3 nodes are available: 3 Insufficient cpu.");
    zstr_free (&spec);
    spec = s_containers ("8", "100Gi");
    ZT_ASSERT (!s_place (profile, cache, "p4", spec, message, sizeof message));
    ZT_ASSERT_STR_EQ (
        message, "0/3 nodes are available: 3 Insufficient cpu, 3 Insufficient memory.");
    zstr_free (&spec);
    //  A deleted pod gives its room back
    ZT_ASSERT (zs_cache_pod_remove (cache, "default/p1"));
    spec = s_containers ("3", "1Gi");
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "p5", spec, message, sizeof message),
                      "large");
    zstr_free (&spec);
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

static void
test_taints (void)
{
    zs_cache_t *cache = zs_cache_new ();
    zs_profile_t *profile = s_profile (NULL);
    s_node (cache, "tainted", "4", "8Gi", NULL,
            "[{key: gpu, value: 'yes', effect: NoSchedule}]");
    s_node (cache, "preferred-not", "4", "8Gi", NULL,
            "[{key: slow, value: 'true', effect: PreferNoSchedule}]");
    s_node (cache, "clean", "4", "8Gi", NULL, NULL);
    char message[512];
    char *spec = s_containers ("100m", "100Mi");
    //  Equal nodes otherwise: the PreferNoSchedule taint loses, NoSchedule never fits
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf (name, sizeof name, "plain-%d", i);
        ZT_ASSERT_STR_EQ (s_place (profile, cache, name, spec, message, sizeof message),
                          "clean");
    }
    zstr_free (&spec);
    spec = zsys_sprintf (
        "{containers: [{name: c, image: i, resources: {requests: {cpu: '3900m'}}}], "
        "tolerations: [{key: gpu, operator: Equal, value: 'yes', effect: NoSchedule}]}");
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "tolerant", spec, message, sizeof message),
                      "tainted");
    zstr_free (&spec);
    spec = s_containers ("3900m", "100Mi");
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "big", spec, message, sizeof message),
                      "preferred-not");
    ZT_ASSERT (!s_place (profile, cache, "big-2", spec, message, sizeof message));
    ZT_ASSERT_STR_EQ (message, "0/3 nodes are available: 1 node(s) had untolerated taint "
                               "{gpu: yes}, 2 Insufficient cpu.");
    zstr_free (&spec);
    //  Exists with no key tolerates everything
    spec = zsys_sprintf (
        "{containers: [{name: c, image: i}], tolerations: [{operator: Exists}]}");
    ZT_ASSERT (s_place (profile, cache, "any", spec, message, sizeof message));
    zstr_free (&spec);
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

static void
test_node_affinity (void)
{
    zs_cache_t *cache = zs_cache_new ();
    zs_profile_t *profile = s_profile (NULL);
    s_node (cache, "a", "4", "8Gi", "{zone: z1, cores: '8', disk: ssd}", NULL);
    s_node (cache, "b", "4", "8Gi", "{zone: z2, cores: '16'}", NULL);
    s_node (cache, "c", "4", "8Gi", "{zone: z3, cores: '32'}", NULL);
    char message[512];
    struct {
        const char *expression;
        const char *node; //  the only node that fits; NULL: none
    } cases[] = {
        {"{key: zone, operator: In, values: [z2]}", "b"},
        {"{key: zone, operator: NotIn, values: [z1, z3]}", "b"},
        {"{key: disk, operator: Exists}", "a"},
        {"{key: cores, operator: Gt, values: ['20']}", "c"},
        {"{key: cores, operator: Lt, values: ['10']}", "a"},
        {"{key: zone, operator: In, values: [z9]}", NULL},
        {"{key: cores, operator: Gt, values: [many]}", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *spec = zsys_sprintf (
            "{containers: [{name: c, image: i}], affinity: {nodeAffinity: "
            "{requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: "
            "[{matchExpressions: [%s]}]}}}}",
            cases[i].expression);
        char name[16];
        snprintf (name, sizeof name, "aff-%zu", i);
        const char *node = s_place (profile, cache, name, spec, message, sizeof message);
        if (cases[i].node)
            ZT_ASSERT_MSG (node && streq (node, cases[i].node), "%s: got %s, expected %s",
                           cases[i].expression, node ? node : "none", cases[i].node);
        else {
            ZT_ASSERT_MSG (!node, "%s: got %s", cases[i].expression, node);
            ZT_ASSERT_STR_EQ (message, "0/3 nodes are available: 3 node(s) didn't match "
                                       "Pod's node affinity/selector.");
        }
        zstr_free (&spec);
    }
    //  DoesNotExist, matchFields, nodeSelector
    char *spec = zsys_sprintf (
        "{containers: [{name: c, image: i}], affinity: {nodeAffinity: "
        "{requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: "
        "[{matchExpressions: [{key: disk, operator: DoesNotExist}], matchFields: "
        "[{key: metadata.name, operator: In, values: [c]}]}]}}}}");
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "fields", spec, message, sizeof message),
                      "c");
    zstr_free (&spec);
    spec = zsys_sprintf ("{containers: [{name: c, image: i}], nodeSelector: {zone: z1}}");
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "selector", spec, message, sizeof message),
                      "a");
    zstr_free (&spec);
    //  Preferred: the heavier matching term wins over equal resources
    spec = zsys_sprintf ("{containers: [{name: c, image: i}], affinity: {nodeAffinity: "
                         "{preferredDuringSchedulingIgnoredDuringExecution: ["
                         "{weight: 10, preference: {matchExpressions: [{key: zone, "
                         "operator: In, values: [z1]}]}},"
                         "{weight: 90, preference: {matchExpressions: [{key: zone, "
                         "operator: In, values: [z3]}]}}"
                         "]}}}");
    ZT_ASSERT_STR_EQ (
        s_place (profile, cache, "preferred", spec, message, sizeof message), "c");
    zstr_free (&spec);
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

static void
test_node_ports (void)
{
    zs_cache_t *cache = zs_cache_new ();
    zs_profile_t *profile = s_profile (NULL);
    s_node (cache, "a", "4", "8Gi", NULL, NULL);
    s_node (cache, "b", "4", "8Gi", NULL, NULL);
    char message[512];
    const char *spec = "{containers: [{name: c, image: i, ports: [{containerPort: 80, "
                       "hostPort: 8080}]}]}";
    char first[64];
    snprintf (first, sizeof first, "%s",
              s_place (profile, cache, "web-1", spec, message, sizeof message));
    const char *second = s_place (profile, cache, "web-2", spec, message, sizeof message);
    ZT_ASSERT (second && !streq (first, second));
    ZT_ASSERT (!s_place (profile, cache, "web-3", spec, message, sizeof message));
    ZT_ASSERT_STR_EQ (message,
                      "0/2 nodes are available: 2 node(s) didn't have free ports for "
                      "the requested pod ports.");
    //  UDP on the same port is another port
    ZT_ASSERT (s_place (
        profile, cache, "dns",
        "{containers: [{name: c, image: i, ports: [{containerPort: 53, hostPort: "
        "8080, protocol: UDP}]}]}",
        message, sizeof message));
    //  The port is free again once its pod is gone
    ZT_ASSERT (zs_cache_pod_remove (cache, "default/web-1"));
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "web-4", spec, message, sizeof message),
                      first);
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

static void
test_unschedulable_node (void)
{
    zs_cache_t *cache = zs_cache_new ();
    zs_profile_t *profile = s_profile (NULL);
    zt_sched_node_add (cache, "metadata: {name: cordoned}\nspec: {unschedulable: true}\n"
                       "status: {allocatable: {cpu: '4', memory: 8Gi, pods: '110'}}\n");
    char message[512];
    ZT_ASSERT (!s_place (profile, cache, "p", "{containers: [{name: c, image: i}]}",
                         message, sizeof message));
    ZT_ASSERT_STR_EQ (message, "0/1 nodes are available: 1 node(s) were unschedulable.");
    ZT_ASSERT_STR_EQ (
        s_place (
            profile, cache, "q",
            "{containers: [{name: c, image: i}], nodeName: cordoned, "
            "tolerations: [{key: node.kubernetes.io/unschedulable, operator: Exists}]}",
            message, sizeof message),
        "cordoned");
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

//  Extended resources, init containers (the larger of the two counts),
//  pod overhead, NoExecute taints and the pod-count limit
static void
test_requests_edge_cases (void)
{
    zs_cache_t *cache = zs_cache_new ();
    zs_profile_t *profile = s_profile (NULL);
    zt_sched_node_add (cache, "metadata: {name: gpu}\n"
                       "status: {allocatable: {cpu: '4', memory: 8Gi, pods: '2', "
                       "nvidia.com/gpu: '2'}}\n");
    s_node (cache, "plain", "4", "8Gi", NULL,
            "[{key: evict, value: now, effect: NoExecute}]");
    char message[512];
    const char *two_gpus = "{containers: [{name: c, image: i, resources: {requests: "
                           "{nvidia.com/gpu: '2'}}}]}";
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "g1", two_gpus, message, sizeof message),
                      "gpu");
    ZT_ASSERT (!s_place (profile, cache, "g2", two_gpus, message, sizeof message));
    ZT_ASSERT_STR_EQ (message,
                      "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 "
                      "node(s) had untolerated taint {evict: now}.");
    //  An init container asking for 3 CPU counts, not the 100m after it
    zs_pod_t *pod =
        s_pod ("init", "{initContainers: [{name: i, image: i, resources: {requests: "
                       "{cpu: '3'}}}], containers: [{name: c, image: i, resources: "
                       "{requests: {cpu: 100m}}}], overhead: {cpu: 250m}}");
    ZT_ASSERT_INT_EQ (pod->view.requests.milli_cpu, 3250);
    zs_pod_destroy (&pod);
    //  Limits stand for missing requests; no request scores as 100m, 200Mi
    pod = s_pod ("limits", "{containers: [{name: c, image: i, resources: {limits: "
                           "{cpu: 500m, memory: 1Gi}}}, {name: d, image: i}]}");
    ZT_ASSERT_INT_EQ (pod->view.requests.milli_cpu, 500);
    ZT_ASSERT_INT_EQ (pod->view.requests.memory, 1024LL * 1024 * 1024);
    ZT_ASSERT_INT_EQ (pod->view.score_requests.milli_cpu, 600);
    zs_pod_destroy (&pod);
    //  Each node counts once, for the first filter that rejects it (in
    //  Kubernetes' filter order); two pods fill the gpu node's pod count;
    //  tolerating NoExecute opens plain
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "small",
                               "{containers: [{name: c, image: i}], "
                               "nodeSelector: {kubernetes.io/hostname: x}}",
                               message, sizeof message)
                          ? "placed"
                          : message,
                      "0/2 nodes are available: 1 node(s) didn't match Pod's node "
                      "affinity/selector, 1 node(s) had untolerated taint {evict: now}.");
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "second",
                               "{containers: [{name: c, image: i}], "
                               "nodeName: gpu}",
                               message, sizeof message),
                      "gpu");
    ZT_ASSERT (!s_place (profile, cache, "third",
                         "{containers: [{name: c, image: i}], "
                         "nodeName: gpu}",
                         message, sizeof message));
    ZT_ASSERT_STR_CONTAINS (message, "1 Too many pods");
    ZT_ASSERT_STR_EQ (s_place (profile, cache, "tolerant",
                               "{containers: [{name: c, image: i}], "
                               "tolerations: [{key: evict, operator: "
                               "Exists, effect: NoExecute}]}",
                               message, sizeof message),
                      "plain");
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

//  Counts nodes holding at least one pod after placing count pods.
static size_t
s_spread (zs_profile_t *profile, size_t count)
{
    zs_cache_t *cache = zs_cache_new ();
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf (name, sizeof name, "n%d", i);
        s_node (cache, name, "8", "16Gi", NULL, NULL);
    }
    char message[256];
    char *spec = s_containers ("500m", "512Mi");
    for (size_t i = 0; i < count; i++) {
        char name[16];
        snprintf (name, sizeof name, "p%zu", i);
        ZT_ASSERT (s_place (profile, cache, name, spec, message, sizeof message));
    }
    zstr_free (&spec);
    size_t used = 0;
    for (size_t i = 0; i < zs_cache_node_count (cache); i++)
        used += zs_cache_nodes (cache)[i]->pod_count > 0;
    zs_cache_destroy (&cache);
    return used;
}

static void
test_least_versus_most (void)
{
    zs_profile_t *spread = s_profile (NULL);
    ZT_ASSERT_INT_EQ (s_spread (spread, 8), 4);
    zs_profile_destroy (&spread);
    zs_profile_t *pack = s_profile (
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "profiles:\n- schedulerName: packer\n"
        "  plugins: {score: {disabled: [{name: NodeResourcesBalancedAllocation}]}}\n"
        "  pluginConfig:\n  - name: NodeResourcesFit\n"
        "    args: {scoringStrategy: {type: MostAllocated}}\n");
    ZT_ASSERT_STR_EQ (zs_profile_name (pack), "packer");
    ZT_ASSERT_INT_EQ (s_spread (pack, 8), 1);
    zs_profile_destroy (&pack);
    //  RequestedToCapacityRatio shaped like MostAllocated packs too
    zs_profile_t *ratio = s_profile (
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "profiles:\n- plugins: {score: {disabled: [{name: "
        "NodeResourcesBalancedAllocation}]}}\n"
        "  pluginConfig:\n  - name: NodeResourcesFit\n"
        "    args: {scoringStrategy: {type: RequestedToCapacityRatio, "
        "requestedToCapacityRatio: "
        "{shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]}}}\n");
    ZT_ASSERT_INT_EQ (s_spread (ratio, 8), 1);
    zs_profile_destroy (&ratio);
}

static void
test_round_robin_and_random (void)
{
    const char *base = "apiVersion: kubescheduler.config.k8s.io/v1\n"
                       "kind: KubeSchedulerConfiguration\nprofiles:\n- plugins:\n"
                       "    score: {disabled: [{name: '*'}], enabled: [{name: %s}]}\n";
    char *yaml = zsys_sprintf (base, "RoundRobin");
    zs_profile_t *profile = s_profile (yaml);
    zstr_free (&yaml);
    zs_cache_t *cache = zs_cache_new ();
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf (name, sizeof name, "n%d", i);
        s_node (cache, name, "8", "16Gi", NULL, NULL);
    }
    char message[256];
    const char *expected[] = {"n0", "n1", "n2", "n0", "n1"};
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf (name, sizeof name, "rr-%d", i);
        ZT_ASSERT_STR_EQ (s_place (profile, cache, name,
                                   "{containers: [{name: c, image: i}]}", message,
                                   sizeof message),
                          expected[i]);
    }
    zs_profile_destroy (&profile);
    yaml = zsys_sprintf (base, "Random");
    profile = s_profile (yaml);
    zstr_free (&yaml);
    int seen[3] = {0};
    for (int i = 0; i < 60; i++) {
        char name[16];
        snprintf (name, sizeof name, "rnd-%d", i);
        const char *node =
            s_place (profile, cache, name, "{containers: [{name: c, image: i}]}", message,
                     sizeof message);
        ZT_ASSERT (node);
        seen[node[1] - '0']++;
    }
    ZT_ASSERT_MSG (seen[0] && seen[1] && seen[2], "random used %d/%d/%d", seen[0],
                   seen[1], seen[2]);
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

static void
test_profile_errors (void)
{
    const char *head = "apiVersion: kubescheduler.config.k8s.io/v1\n"
                       "kind: KubeSchedulerConfiguration\nprofiles:\n";
    struct {
        const char *profiles;
        const char *error;
    } cases[] = {
        {"- plugins: {filter: {enabled: [{name: NoSuchPlugin}]}}\n",
         "profiles[0].plugins.filter.enabled[0].name: unknown plugin \"NoSuchPlugin\""},
        {"- plugins: {score: {enabled: [{name: NodeResourcesFit, weight: 101}]}}\n",
         "profiles[0].plugins.score.enabled[0].weight: Invalid value: 101"},
        {"- pluginConfig: [{name: NodeResourcesFit, args: {scoringStrategy: {type: "
         "Fastest}}}]\n",
         "profiles[0].pluginConfig[0].args.scoringStrategy.type: Unsupported value: "
         "\"Fastest\""},
        {"- pluginConfig: [{name: NodePorts, args: {foo: 1}}]\n",
         "profiles[0].pluginConfig[0].args.foo: unknown field"},
        {"- schedulerName: a\n- schedulerName: a\n",
         "profiles[1].schedulerName: Duplicate value: \"a\""},
        {"- percentageOfNodesToScore: 101\n", "profiles[0].percentageOfNodesToScore"},
        {"- plugins: {filter: {enabled: [{name: PrioritySort}]}}\n",
         "does not implement filter"},
        {"- plugins: {queueSort: {disabled: [{name: '*'}]}}\n", "plugins.queueSort"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *yaml = zsys_sprintf ("%s%s", head, cases[i].profiles);
        zs_profiles_t profiles;
        char error[800] = "";
        ZT_ASSERT_MSG (
            zs_profiles_load (s_registry, yaml, &profiles, error, sizeof error) != 0,
            "accepted: %s", cases[i].profiles);
        ZT_ASSERT_STR_CONTAINS (error, cases[i].error);
        zstr_free (&yaml);
    }
    //  apiVersion and unknown fields
    zs_profiles_t profiles;
    char error[800];
    ZT_ASSERT (zs_profiles_load (s_registry,
                                 "apiVersion: v1\nkind: KubeSchedulerConfiguration\n",
                                 &profiles, error, sizeof error) != 0);
    ZT_ASSERT_STR_CONTAINS (error, "apiVersion: Unsupported value: \"v1\"");
    ZT_ASSERT (
        zs_profiles_load (s_registry,
                          "apiVersion: kubescheduler.config.k8s.io/v1\nprofilez: []\n",
                          &profiles, error, sizeof error) != 0);
    ZT_ASSERT_STR_CONTAINS (error, "profilez");
    //  Two profiles, one process
    ZT_ASSERT (
        zs_profiles_load (s_registry,
                          "apiVersion: kubescheduler.config.k8s.io/v1\nkind: "
                          "KubeSchedulerConfiguration\n"
                          "profiles: [{schedulerName: one}, {schedulerName: two}]\n",
                          &profiles, error, sizeof error) == 0);
    ZT_ASSERT_INT_EQ (profiles.count, 2);
    ZT_ASSERT (zs_profiles_find (&profiles, "two"));
    ZT_ASSERT (!zs_profiles_find (&profiles, "default-scheduler"));
    zs_profiles_clear (&profiles);
}

//  Only changes a pod could fit by count as node updates
static void
test_node_changes (void)
{
    zs_cache_t *cache = zs_cache_new ();
    const char *yaml = "metadata: {name: n, labels: {a: b}}\n"
                       "status: {allocatable: {cpu: '4', pods: '110'}, conditions: "
                       "[{type: Ready, status: 'True', lastHeartbeatTime: '%s'}]}\n";
    const char *times[] = {"2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z"};
    int expected[] = {1, 0};
    for (int i = 0; i < 2; i++) {
        char *text = zsys_sprintf (yaml, times[i]);
        ProtobufCMessage *node = NULL;
        ZT_ASSERT (zube_codec_decode (text, strlen (text), &zube__node__descriptor, &node,
                                      NULL) == 0);
        ZT_ASSERT_INT_EQ (zs_cache_node_set (cache, (Zube__Node *)node), expected[i]);
        protobuf_c_message_free_unpacked (node, NULL);
        zstr_free (&text);
    }
    zt_sched_node_add (cache, "metadata: {name: n, labels: {a: c}}\n"
                       "status: {allocatable: {cpu: '4', pods: '110'}}\n");
    ProtobufCMessage *node = NULL;
    const char *cordoned =
        "metadata: {name: n, labels: {a: c}}\nspec: {unschedulable: true}\n"
        "status: {allocatable: {cpu: '4', pods: '110'}}\n";
    ZT_ASSERT (zube_codec_decode (cordoned, strlen (cordoned), &zube__node__descriptor,
                                  &node, NULL) == 0);
    ZT_ASSERT_INT_EQ (zs_cache_node_set (cache, (Zube__Node *)node), 1);
    protobuf_c_message_free_unpacked (node, NULL);
    ZT_ASSERT_INT_EQ (zs_cache_node_count (cache), 1);
    zs_cache_node_remove (cache, "n");
    ZT_ASSERT_INT_EQ (zs_cache_node_count (cache), 0);
    zs_cache_destroy (&cache);
}

//  A node with status.images (YAML flow list).
static void
s_imaged (zs_cache_t *cache, const char *name, const char *images)
{
    char *yaml = zsys_sprintf ("metadata: {name: %s}\n"
                               "status: {allocatable: {cpu: '4', pods: '110'}, "
                               "images: %s}\n",
                               name, images);
    zt_sched_node_add (cache, yaml);
    zstr_free (&yaml);
}

//  The node count of image on node's view (-1: the node does not list it).
static int
s_holders (zs_cache_t *cache, const char *node, const char *image)
{
    zs_cache_nodes (cache);
    const zube_sched_node_t *view = zs_cache_node (cache, node);
    ZT_ASSERT (view && ZUBE_SCHED_HAS (view, images));
    for (size_t i = 0; i < view->image_count; i++) {
        if (i)
            ZT_ASSERT (strcmp (view->images[i - 1].name, view->images[i].name) < 0);
        if (streq (view->images[i].name, image))
            return (int)view->images[i].node_count;
    }
    return -1;
}

#define S_MB (1024LL * 1024)

//  Kubernetes' imagelocality score of a node for the images (normalized)
//  of a pod's containers: each held image's size scaled by the share of
//  the total nodes holding it, summed, clamped to 23 MB .. 1000 MB per
//  container, onto 0..100.
static int64_t
s_kubernetes_score (const int64_t *sizes, const int *holders, size_t containers,
                    int total)
{
    int64_t sum = 0;
    for (size_t i = 0; i < containers; i++)
        if (sizes[i] > 0)
            sum += (int64_t)((double)sizes[i] * (double)holders[i] / (double)total);
    int64_t min = 23 * S_MB, max = 1000 * S_MB * (int64_t)containers;
    sum = sum < min ? min : sum > max ? max : sum;
    return 100 * (sum - min) / (max - min);
}

//  ImageLocality's score of every node for pod, by node index.
static void
s_image_scores (zs_cache_t *cache, zs_pod_t *pod, int64_t *scores)
{
    char error[256];
    const zube_sched_ops_t *ops =
        zs_registry_get (s_registry, "ImageLocality", error, sizeof error);
    ZT_ASSERT_MSG (ops, "%s", error);
    zube_sched_args_t args = {.struct_size = sizeof args, .json = "{}", .field = "args"};
    void *plugin = ops->create (NULL, &args, error, sizeof error);
    ZT_ASSERT (plugin);
    zube_sched_cycle_t cycle = {.struct_size = sizeof cycle};
    zs_cache_cycle_fill (cache, &cycle);
    void *data = NULL;
    ZT_ASSERT_INT_EQ (ops->pre_score (plugin, &cycle, &pod->view, cycle.nodes,
                                      cycle.node_count, &data),
                      ZUBE_SCHED_SUCCESS);
    for (size_t i = 0; i < cycle.node_count; i++)
        ZT_ASSERT_INT_EQ (ops->score (plugin, data, &pod->view, cycle.nodes[i], &scores[i]),
                          ZUBE_SCHED_SUCCESS);
    ops->cycle_free (plugin, data);
    ops->destroy (plugin);
}

static int64_t
s_score_of (zs_cache_t *cache, const int64_t *scores, const char *node)
{
    return scores[zs_cache_node (cache, node)->index];
}

static void
test_image_counts (void)
{
    zs_cache_t *cache = zs_cache_new ();
    //  Names normalized (":latest" for none), one entry per name, sorted
    s_imaged (cache, "a",
              "[{names: ['docker.io/library/big:1', 'big:1'], sizeBytes: 629145600}, "
              "{names: [side, 'side:latest'], sizeBytes: 314572800}]");
    s_imaged (cache, "b", "[{names: ['big:1'], sizeBytes: 629145600}]");
    s_imaged (cache, "c", "[]");
    const zube_sched_node_t *a = zs_cache_node (cache, "a");
    ZT_ASSERT_INT_EQ (a->image_count, 3);
    ZT_ASSERT_STR_EQ (a->images[0].name, "big:1");
    ZT_ASSERT_STR_EQ (a->images[1].name, "docker.io/library/big:1");
    ZT_ASSERT_STR_EQ (a->images[2].name, "side:latest");
    ZT_ASSERT_INT_EQ (a->images[2].size_bytes, 314572800);
    ZT_ASSERT_INT_EQ (s_holders (cache, "a", "big:1"), 2);
    ZT_ASSERT_INT_EQ (s_holders (cache, "b", "big:1"), 2);
    ZT_ASSERT_INT_EQ (s_holders (cache, "a", "side:latest"), 1);
    ZT_ASSERT_INT_EQ (zs_cache_node (cache, "c")->image_count, 0);
    //  A node added, one removed, one updated: every holder's count follows
    s_imaged (cache, "d", "[{names: ['big:1', 'side:latest'], sizeBytes: 629145600}]");
    ZT_ASSERT_INT_EQ (s_holders (cache, "a", "big:1"), 3);
    ZT_ASSERT_INT_EQ (s_holders (cache, "a", "side:latest"), 2);
    zs_cache_node_remove (cache, "b");
    ZT_ASSERT_INT_EQ (s_holders (cache, "a", "big:1"), 2);
    ZT_ASSERT_INT_EQ (s_holders (cache, "d", "big:1"), 2);
    s_imaged (cache, "a", "[{names: ['side:latest'], sizeBytes: 314572800}]");
    ZT_ASSERT_INT_EQ (s_holders (cache, "a", "big:1"), -1);
    ZT_ASSERT_INT_EQ (s_holders (cache, "d", "big:1"), 1);
    ZT_ASSERT_INT_EQ (s_holders (cache, "d", "side:latest"), 2);
    //  A node update that keeps its images changes no count
    s_imaged (cache, "a", "[{names: ['side:latest'], sizeBytes: 314572800}]");
    ZT_ASSERT_INT_EQ (s_holders (cache, "a", "side:latest"), 2);
    //  Back: a holds big:1 and side, b big:1, c nothing, d both
    s_imaged (cache, "a",
              "[{names: ['big:1'], sizeBytes: 629145600}, "
              "{names: [side], sizeBytes: 314572800}]");
    s_imaged (cache, "b", "[{names: ['big:1'], sizeBytes: 629145600}]");
    ZT_ASSERT_INT_EQ (s_holders (cache, "b", "big:1"), 3);

    //  Scores as Kubernetes computes them, for a pod of the two images
    //  ("side" is "side:latest")
    zs_pod_t *pod = s_pod ("p", "{containers: [{name: c1, image: 'big:1'}, "
                                "{name: c2, image: side}]}");
    int64_t scores[8];
    s_image_scores (cache, pod, scores);
    int64_t sizes_a[] = {629145600, 314572800}, sizes_b[] = {629145600, 0},
            sizes_d[] = {629145600, 629145600};
    int holders[] = {3, 2};
    ZT_ASSERT_INT_EQ (s_score_of (cache, scores, "a"),
                      s_kubernetes_score (sizes_a, holders, 2, 4));
    ZT_ASSERT_INT_EQ (s_score_of (cache, scores, "b"),
                      s_kubernetes_score (sizes_b, holders, 2, 4));
    ZT_ASSERT_INT_EQ (s_score_of (cache, scores, "c"), 0);
    ZT_ASSERT_INT_EQ (s_score_of (cache, scores, "d"),
                      s_kubernetes_score (sizes_d, holders, 2, 4));
    //  (600 MB * 3/4 + 300 MB * 2/4 - 23) / (2000 - 23) MB
    ZT_ASSERT_INT_EQ (s_score_of (cache, scores, "a"), 29);
    //  A fifth node without them lowers every share
    s_imaged (cache, "e", "[{names: ['other:1'], sizeBytes: 1048576}]");
    s_image_scores (cache, pod, scores);
    ZT_ASSERT_INT_EQ (s_score_of (cache, scores, "a"),
                      s_kubernetes_score (sizes_a, holders, 2, 5));
    ZT_ASSERT (s_score_of (cache, scores, "a") < 29);
    zs_pod_destroy (&pod);
    zs_cache_destroy (&cache);
}

static void
test_nodes_to_find (void)
{
    ZT_ASSERT_INT_EQ (zs_nodes_to_find (50, 0), 50);
    ZT_ASSERT_INT_EQ (zs_nodes_to_find (1000, 0), 420);
    ZT_ASSERT_INT_EQ (zs_nodes_to_find (5000, 0), 500);
    ZT_ASSERT_INT_EQ (zs_nodes_to_find (100000, 0), 5000);
    ZT_ASSERT_INT_EQ (zs_nodes_to_find (5000, 1), 100);
    ZT_ASSERT_INT_EQ (zs_nodes_to_find (5000, 100), 5000);
}

static void
test_queue (void)
{
    zs_profile_t *profile = s_profile (NULL);
    zs_queue_t *queue = zs_queue_new (profile, 1000, 10000);
    zs_pod_t *low = s_pod ("low", "{containers: [{name: c, image: i}], priority: 1}");
    zs_pod_t *high = s_pod ("high", "{containers: [{name: c, image: i}], priority: 100}");
    zs_queue_add (queue, &low, profile, 0);
    zs_queue_add (queue, &high, profile, 0);
    zs_qpod_t *first = zs_queue_pop (queue);
    ZT_ASSERT_STR_EQ (first->pod->view.name, "high");
    //  Back-off: 1 s, then 2 s, capped at 10 s
    zs_queue_backoff (queue, first, 0);
    ZT_ASSERT_INT_EQ (zs_queue_flush (queue, 500), 500);
    zs_qpod_t *second = zs_queue_pop (queue);
    ZT_ASSERT_STR_EQ (second->pod->view.name, "low");
    ZT_ASSERT (!zs_queue_pop (queue));
    zs_queue_flush (queue, 1000);
    first = zs_queue_pop (queue);
    ZT_ASSERT_STR_EQ (first->pod->view.name, "high");
    zs_queue_backoff (queue, first, 1000);
    ZT_ASSERT_INT_EQ (zs_queue_flush (queue, 1000), 2000);
    //  Unschedulable until a node event it cares about
    zs_queue_unschedulable (queue, second, ZUBE_SCHED_EVENT_NODE_ADD, 0);
    ZT_ASSERT_INT_EQ (zs_queue_unschedulable_count (queue), 1);
    zs_queue_event (queue, ZUBE_SCHED_EVENT_POD_DELETE, 5000);
    ZT_ASSERT_INT_EQ (zs_queue_unschedulable_count (queue), 1);
    zs_queue_event (queue, ZUBE_SCHED_EVENT_NODE_ADD, 5000);
    ZT_ASSERT_INT_EQ (zs_queue_unschedulable_count (queue), 0);
    ZT_ASSERT_INT_EQ (zs_queue_active (queue), 1);
    //  Removal while in flight is kept until it lands
    second = zs_queue_pop (queue);
    zs_queue_remove (queue, "default/low");
    ZT_ASSERT (second->gone);
    zs_queue_backoff (queue, second, 5000);
    ZT_ASSERT (!zs_queue_lookup (queue, "default/low"));
    zs_queue_destroy (&queue);
    zs_profile_destroy (&profile);
}

//  Unschedulable pods wake on the events they wait for, each once, the
//  others staying (the list they are kept in loses none).
static void
test_queue_events (void)
{
    zs_profile_t *profile = s_profile (NULL);
    zs_queue_t *queue = zs_queue_new (profile, 1000, 10000);
    uint32_t waits[] = {ZUBE_SCHED_EVENT_NODE_ADD, ZUBE_SCHED_EVENT_POD_UPDATE,
                        ZUBE_SCHED_EVENT_POD_DELETE | ZUBE_SCHED_EVENT_POD_UPDATE,
                        ZUBE_SCHED_EVENT_NODE_UPDATE};
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf (name, sizeof name, "u%d", i);
        zs_pod_t *pod = s_pod (name, "{containers: [{name: c, image: i}]}");
        zs_queue_add (queue, &pod, profile, 0);
        zs_queue_unschedulable (queue, zs_queue_pop (queue), waits[i], 0);
    }
    ZT_ASSERT_INT_EQ (zs_queue_unschedulable_count (queue), 4);
    //  An assigned pod appeared: u1 and u2 move on, after their back-off
    zs_queue_event (queue, ZUBE_SCHED_EVENT_POD_UPDATE, 5000);
    ZT_ASSERT_INT_EQ (zs_queue_unschedulable_count (queue), 2);
    ZT_ASSERT_INT_EQ (zs_queue_active (queue), 2);
    ZT_ASSERT_INT_EQ (zs_queue_lookup (queue, "default/u1")->state, ZS_ACTIVE);
    ZT_ASSERT_INT_EQ (zs_queue_lookup (queue, "default/u2")->state, ZS_ACTIVE);
    ZT_ASSERT_INT_EQ (zs_queue_lookup (queue, "default/u0")->state, ZS_UNSCHEDULABLE);
    zs_queue_event (queue, ZUBE_SCHED_EVENT_POD_UPDATE, 5000);
    ZT_ASSERT_INT_EQ (zs_queue_active (queue), 2);
    //  A removed unschedulable pod leaves the list; the last wakes alone
    zs_queue_remove (queue, "default/u0");
    ZT_ASSERT_INT_EQ (zs_queue_unschedulable_count (queue), 1);
    zs_queue_event (queue, ZUBE_SCHED_EVENT_NODE_UPDATE, 5000);
    ZT_ASSERT_INT_EQ (zs_queue_unschedulable_count (queue), 0);
    ZT_ASSERT_INT_EQ (zs_queue_active (queue), 3);
    zs_queue_destroy (&queue);
    zs_profile_destroy (&profile);
}

int
main (void)
{
    s_registry = zs_registry_new (NULL);
    ZT_RUN (test_resource_fit);
    ZT_RUN (test_taints);
    ZT_RUN (test_node_affinity);
    ZT_RUN (test_node_ports);
    ZT_RUN (test_unschedulable_node);
    ZT_RUN (test_requests_edge_cases);
    ZT_RUN (test_least_versus_most);
    ZT_RUN (test_round_robin_and_random);
    ZT_RUN (test_profile_errors);
    ZT_RUN (test_node_changes);
    ZT_RUN (test_image_counts);
    ZT_RUN (test_nodes_to_find);
    ZT_RUN (test_queue);
    ZT_RUN (test_queue_events);
    zs_registry_destroy (&s_registry);
    return zt_done ();
}
