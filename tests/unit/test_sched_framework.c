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
    ZT_RUN (test_nodes_to_find);
    ZT_RUN (test_queue);
    zs_registry_destroy (&s_registry);
    return zt_done ();
}
