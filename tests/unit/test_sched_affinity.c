/*  test_sched_affinity - InterPodAffinity and PodTopologySpread in the
    default profile on an in-memory node cache (no bus): required
    anti-affinity across zones and its unschedulable message, the
    symmetric check of placed pods' anti-affinity, required affinity
    co-locating, preferred affinity moving the choice, topology spread
    with DoNotSchedule (skew refuses a node that has room, nodes without
    the key are out, matchLabelKeys, minDomains), ScheduleAnyway (scores
    only), an anti-affinity term's namespaces, the cache's list of
    pods per node and its lists of nodes with pods with affinity terms. The plugins are the
    shared objects just built ($ZUBE_BUILDDIR/plugins). */
#include "zs_sched.h"
#include "zube/codec.h"
#include "zube_test.h"
#include "zt_sched.h"
#include <czmq.h>

static zs_registry_t *s_registry;
static zs_profile_t *s_default;
//  What preemption answered for the last pod no node fit: the nominated
//  node and the victims' names, comma-separated.
static char s_nominated[256], s_victims[256];

//  A node NAME with CPU cores and 8Gi, labels given as YAML flow.
static void
s_add (zs_cache_t *cache, const char *name, const char *cpu, const char *labels)
{
    char *yaml =
        zsys_sprintf ("metadata: {name: %s, labels: %s}\n"
                      "status: {allocatable: {cpu: '%s', memory: 8Gi, pods: '110'}}\n",
                      name, labels, cpu);
    zt_sched_node_add (cache, yaml);
    zstr_free (&yaml);
}

//  Schedules pod NAME (namespace ns, labels and spec extras as YAML flow
//  fragments) asking for cpu; the node's name (static) or NULL with
//  kube-scheduler's message in message.
static const char *
s_run (zs_cache_t *cache, const char *ns, const char *name, const char *labels,
       const char *cpu, const char *extra, char *message, size_t size)
{
    static char node[256];
    char *yaml =
        zsys_sprintf ("metadata: {name: %s, namespace: %s, uid: uid-%s, labels: %s, "
                      "creationTimestamp: '2026-01-01T00:00:00Z'}\n"
                      "spec: {containers: [{name: c, image: i, resources: {requests: "
                      "{cpu: '%s', memory: 64Mi}}}]%s%s}\n",
                      name, ns, name, labels, cpu, *extra ? ", " : "", extra);
    zs_pod_t *pod = zt_sched_pod (yaml);
    zstr_free (&yaml);
    zs_result_t result;
    int rc = zs_profile_schedule (s_default, cache, pod, &result);
    zs_pod_destroy (&pod);
    ZT_ASSERT_MSG (rc >= 0, "%s: %s", name, result.diagnosis.error);
    if (rc == 1) {
        zs_diagnosis_message (&result.diagnosis, message, size);
        snprintf (s_nominated, sizeof s_nominated, "%s", result.nominated);
        size_t used = 0;
        s_victims[0] = 0;
        for (size_t i = 0; i < result.victim_count && used < sizeof s_victims; i++)
            used += (size_t)snprintf (s_victims + used, sizeof s_victims - used, "%s%s",
                                      i ? "," : "", result.victims[i]->view.name);
        zs_result_clear (&result);
        return NULL;
    }
    snprintf (node, sizeof node, "%s", result.node->name);
    return node;
}

#define S_PLACE(cache, name, labels, cpu, extra)                                         \
    s_run (cache, "default", name, labels, cpu, extra, message, sizeof message)

static const char *
s_zone_of (zs_cache_t *cache, const char *node)
{
    ZT_ASSERT_MSG (node, "not placed: %s", "");
    const zube_sched_node_t *view = zs_cache_node (cache, node);
    ZT_ASSERT (view);
    return view->zone;
}

//  Required anti-affinity to the pods labelled app: app, per zone.
#define S_ANTI_ZONE(app)                                                                 \
    "affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "      \
    "[{labelSelector: {matchLabels: {app: " app "}}, "                                   \
    "topologyKey: topology.kubernetes.io/zone}]}}"
#define S_WEB_ANTI S_ANTI_ZONE ("web")

static void
test_anti_affinity (void)
{
    zs_cache_t *cache = zs_cache_new ();
    s_add (cache, "a1", "4", "{topology.kubernetes.io/zone: z1}");
    s_add (cache, "a2", "4", "{topology.kubernetes.io/zone: z1}");
    s_add (cache, "b1", "4", "{topology.kubernetes.io/zone: z2}");
    s_add (cache, "c1", "4", "{topology.kubernetes.io/zone: z3}");
    char message[512] = "";
    //  Each web pod lands in a zone no web pod has
    char seen[3][8] = {"", "", ""};
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf (name, sizeof name, "web-%d", i);
        const char *zone =
            s_zone_of (cache, S_PLACE (cache, name, "{app: web}", "100m", S_WEB_ANTI));
        for (int j = 0; j < i; j++)
            ZT_ASSERT_MSG (strcmp (seen[j], zone) != 0, "%s twice in %s", name, zone);
        snprintf (seen[i], sizeof seen[i], "%s", zone);
    }
    //  Every zone has one: the fourth is refused everywhere, with the reason
    ZT_ASSERT (!S_PLACE (cache, "web-3", "{app: web}", "100m", S_WEB_ANTI));
    ZT_ASSERT_STR_EQ (
        message,
        "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules.");
    //  A web pod of another namespace is not counted
    ZT_ASSERT (s_run (cache, "other", "web-x", "{app: web}", "100m", S_WEB_ANTI, message,
                      sizeof message));
    //  A pod without the term is refused by the placed pods' own terms (symmetry)
    ZT_ASSERT (!S_PLACE (cache, "plain-web", "{app: web}", "100m", ""));
    ZT_ASSERT_STR_EQ (message,
                      "0/4 nodes are available: 4 node(s) didn't satisfy existing "
                      "pods anti-affinity rules.");
    //  while a pod of another app fits
    ZT_ASSERT (S_PLACE (cache, "api", "{app: api}", "100m", ""));
    //  Gone from a zone, the zone is free again
    ZT_ASSERT (zs_cache_pod_remove (cache, "default/web-1"));
    ZT_ASSERT_STR_EQ (
        s_zone_of (cache, S_PLACE (cache, "web-4", "{app: web}", "100m", S_WEB_ANTI)),
        seen[1]);
    zs_cache_destroy (&cache);
}

//  One node n1 with its hostname label.
static zs_cache_t *
s_one_node (void)
{
    zs_cache_t *cache = zs_cache_new ();
    s_add (cache, "n1", "4", "{kubernetes.io/hostname: n1}");
    return cache;
}

static void
test_existing_anti_affinity_by_host (void)
{
    zs_cache_t *cache = s_one_node ();
    char message[512] = "";
    const char *loner =
        "affinity: {podAntiAffinity: "
        "{requiredDuringSchedulingIgnoredDuringExecution: "
        "[{labelSelector: {matchExpressions: [{key: app, operator: In, "
        "values: [noisy, loud]}]}, topologyKey: kubernetes.io/hostname}]}}";
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "loner", "{app: quiet}", "100m", loner), "n1");
    ZT_ASSERT (!S_PLACE (cache, "noisy", "{app: loud}", "100m", ""));
    ZT_ASSERT_STR_EQ (message,
                      "0/1 nodes are available: 1 node(s) didn't satisfy existing "
                      "pods anti-affinity rules.");
    s_add (cache, "n2", "4", "{kubernetes.io/hostname: n2}");
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "noisy-2", "{app: noisy}", "100m", ""), "n2");
    zs_cache_destroy (&cache);
}

#define S_WITH_DB(kind)                                                                  \
    "affinity: {podAffinity: {" kind ": "                                                \
    "[{labelSelector: {matchLabels: {app: db}}, topologyKey: "                           \
    "topology.kubernetes.io/zone}]}}"

static void
test_affinity_required (void)
{
    zs_cache_t *cache = zs_cache_new ();
    s_add (cache, "a", "8", "{topology.kubernetes.io/zone: z1}");
    s_add (cache, "b1", "2", "{topology.kubernetes.io/zone: z2}");
    s_add (cache, "b2", "2", "{topology.kubernetes.io/zone: z2}");
    s_add (cache, "c", "8", "{topology.kubernetes.io/zone: z3}");
    char message[512] = "";
    //  No db anywhere and the pod is no db: nothing satisfies the term
    ZT_ASSERT (!S_PLACE (cache, "early", "{app: api}", "100m",
                         S_WITH_DB ("requiredDuringSchedulingIgnoredDuringExecution")));
    ZT_ASSERT_STR_EQ (
        message, "0/4 nodes are available: 4 node(s) didn't match pod affinity rules.");
    ZT_ASSERT_STR_EQ (s_zone_of (cache, S_PLACE (cache, "db", "{app: db}", "100m",
                                                 "nodeSelector: {topology.kubernetes.io/"
                                                 "zone: z2}")),
                      "z2");
    //  The emptier nodes a and c lose to the zone of the db
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf (name, sizeof name, "api-%d", i);
        ZT_ASSERT_STR_EQ (
            s_zone_of (
                cache,
                S_PLACE (cache, name, "{app: api}", "500m",
                         S_WITH_DB ("requiredDuringSchedulingIgnoredDuringExecution"))),
            "z2");
    }
    //  The first of a group that selects itself may go anywhere; the next follow
    const char *group =
        "affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
        "[{labelSelector: {matchLabels: {app: cache}}, "
        "topologyKey: topology.kubernetes.io/zone}]}}";
    const char *zone =
        s_zone_of (cache, S_PLACE (cache, "cache-0", "{app: cache}", "100m", group));
    char first[8];
    snprintf (first, sizeof first, "%s", zone);
    for (int i = 1; i < 4; i++) {
        char name[16];
        snprintf (name, sizeof name, "cache-%d", i);
        ZT_ASSERT_STR_EQ (
            s_zone_of (cache, S_PLACE (cache, name, "{app: cache}", "100m", group)),
            first);
    }
    zs_cache_destroy (&cache);
}

static void
test_affinity_preferred (void)
{
    zs_cache_t *cache = zs_cache_new ();
    s_add (cache, "a", "4", "{topology.kubernetes.io/zone: z1}");
    s_add (cache, "b", "4", "{topology.kubernetes.io/zone: z2}");
    char message[512] = "";
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "db", "{app: db}", "500m",
                               "nodeSelector: {topology.kubernetes.io/zone: z2}"),
                      "b");
    //  Without a preference the emptier node a wins; with one, the db's zone
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "plain", "{app: api}", "100m", ""), "a");
    const char *prefer = "affinity: {podAffinity: "
                         "{preferredDuringSchedulingIgnoredDuringExecution: "
                         "[{weight: 100, podAffinityTerm: {labelSelector: {matchLabels: "
                         "{app: db}}, topologyKey: topology.kubernetes.io/zone}}]}}";
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf (name, sizeof name, "near-%d", i);
        ZT_ASSERT_STR_EQ (S_PLACE (cache, name, "{app: api}", "100m", prefer), "b");
    }
    //  A preferred anti-affinity to the api pods, now mostly on b, wins a
    const char *avoid = "affinity: {podAntiAffinity: "
                        "{preferredDuringSchedulingIgnoredDuringExecution: "
                        "[{weight: 100, podAffinityTerm: {labelSelector: {matchLabels: "
                        "{app: api}}, topologyKey: topology.kubernetes.io/zone}}]}}";
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "far", "{app: batch}", "2", avoid), "a");
    zs_cache_destroy (&cache);
}

#define S_SPREAD(when)                                                                   \
    "topologySpreadConstraints: [{maxSkew: 1, topologyKey: "                             \
    "topology.kubernetes.io/zone, "                                                      \
    "whenUnsatisfiable: " when ", labelSelector: {matchLabels: {app: spread}}}]"

//  A large zone z1 the resource scores prefer, two one-core zones, and a
//  large node without a zone.
static zs_cache_t *
s_spread_cluster (void)
{
    zs_cache_t *cache = zs_cache_new ();
    s_add (cache, "big", "64", "{topology.kubernetes.io/zone: z1}");
    s_add (cache, "small-2", "1", "{topology.kubernetes.io/zone: z2}");
    s_add (cache, "small-3", "1", "{topology.kubernetes.io/zone: z3}");
    s_add (cache, "nozone", "64", "{}");
    return cache;
}

static void
test_spread_do_not_schedule (void)
{
    zs_cache_t *cache = s_spread_cluster ();
    char message[512] = "";
    int in[4] = {0, 0, 0, 0};
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf (name, sizeof name, "s-%d", i);
        const char *zone = s_zone_of (cache, S_PLACE (cache, name, "{app: spread}", "1",
                                                      S_SPREAD ("DoNotSchedule")));
        ZT_ASSERT (zone[0] == 'z');
        in[zone[1] - '0']++;
    }
    ZT_ASSERT (in[1] == 1 && in[2] == 1 && in[3] == 1);
    //  1/1/1: a fourth may make z1 2 (skew 1), a fifth may not
    ZT_ASSERT_STR_EQ (
        S_PLACE (cache, "s-3", "{app: spread}", "1", S_SPREAD ("DoNotSchedule")), "big");
    ZT_ASSERT (!S_PLACE (cache, "s-4", "{app: spread}", "1", S_SPREAD ("DoNotSchedule")));
    ZT_ASSERT_STR_EQ (
        message, "0/4 nodes are available: 1 node(s) didn't match pod topology spread "
                 "constraints, 1 node(s) didn't match pod topology spread constraints "
                 "(missing required label), 2 Insufficient cpu.");
    //  Pods the selector does not match are not held back
    ZT_ASSERT (S_PLACE (cache, "other", "{app: other}", "1", ""));
    zs_cache_destroy (&cache);
}

static void
test_spread_schedule_anyway (void)
{
    zs_cache_t *cache = s_spread_cluster ();
    char message[512] = "";
    //  Without a constraint the large nodes win
    const char *plain = S_PLACE (cache, "plain", "{app: plain}", "100m", "");
    ZT_ASSERT (plain && (streq (plain, "big") || streq (plain, "nozone")));
    //  The spread score sends the 2nd and 3rd pods to the small zones
    int in[4] = {0, 0, 0, 0};
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf (name, sizeof name, "s-%d", i);
        const char *node =
            S_PLACE (cache, name, "{app: spread}", "1", S_SPREAD ("ScheduleAnyway"));
        ZT_ASSERT_MSG (node, "%s: %s", name, message);
        const char *zone = s_zone_of (cache, node);
        if (zone[0] == 'z')
            in[zone[1] - '0']++;
    }
    ZT_ASSERT_MSG (in[2] == 1 && in[3] == 1, "z2 %d z3 %d", in[2], in[3]);
    //  Beyond maxSkew it still schedules: scores only
    for (int i = 3; i < 6; i++) {
        char name[16];
        snprintf (name, sizeof name, "s-%d", i);
        ZT_ASSERT (
            S_PLACE (cache, name, "{app: spread}", "1", S_SPREAD ("ScheduleAnyway")));
    }
    zs_cache_destroy (&cache);
}

static void
test_spread_match_label_keys_and_min_domains (void)
{
    zs_cache_t *cache = zs_cache_new ();
    s_add (cache, "big", "64", "{topology.kubernetes.io/zone: z1}");
    s_add (cache, "small-2", "4", "{topology.kubernetes.io/zone: z2}");
    s_add (cache, "small-3", "4", "{topology.kubernetes.io/zone: z3}");
    char message[512] = "";
    const char *by_version =
        "topologySpreadConstraints: [{maxSkew: 1, topologyKey: "
        "topology.kubernetes.io/zone, "
        "whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: spread}}, "
        "matchLabelKeys: [version]}]";
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf (name, sizeof name, "v1-%d", i);
        ZT_ASSERT (S_PLACE (cache, name, "{app: spread, version: v1}", "1", by_version));
    }
    //  v1 is 2/1/1: a v1 pod may not go to z1, a v2 pod (0/0/0) may
    const char *v1 =
        S_PLACE (cache, "v1-4", "{app: spread, version: v1}", "1", by_version);
    ZT_ASSERT (v1 && !streq (v1, "big"));
    ZT_ASSERT_STR_EQ (
        S_PLACE (cache, "v2-0", "{app: spread, version: v2}", "1", by_version), "big");
    zs_cache_destroy (&cache);

    //  Two zones but minDomains 3: the smallest count is taken as 0
    cache = zs_cache_new ();
    s_add (cache, "big", "64", "{topology.kubernetes.io/zone: z1}");
    s_add (cache, "small", "1", "{topology.kubernetes.io/zone: z2}");
    const char *min3 = "topologySpreadConstraints: [{maxSkew: 1, minDomains: 3, "
                       "topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: "
                       "DoNotSchedule, labelSelector: {matchLabels: {app: m}}}]";
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "m-0", "{app: m}", "1", min3), "big");
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "m-1", "{app: m}", "1", min3), "small");
    ZT_ASSERT (!S_PLACE (cache, "m-2", "{app: m}", "1", min3));
    ZT_ASSERT_STR_CONTAINS (message,
                            "1 node(s) didn't match pod topology spread constraints");
    //  Without minDomains 1/1 lets z1 take one more
    const char *min0 = "topologySpreadConstraints: [{maxSkew: 1, "
                       "topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: "
                       "DoNotSchedule, labelSelector: {matchLabels: {app: m}}}]";
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "m-3", "{app: m}", "1", min0), "big");
    zs_cache_destroy (&cache);
}

static void
test_anti_affinity_namespaces (void)
{
    zs_cache_t *cache = s_one_node ();
    char message[512] = "";
    ZT_ASSERT (
        s_run (cache, "other", "db", "{app: db}", "100m", "", message, sizeof message));
    const char *own = "affinity: {podAntiAffinity: "
                      "{requiredDuringSchedulingIgnoredDuringExecution: "
                      "[{labelSelector: {matchLabels: {app: db}}, "
                      "topologyKey: kubernetes.io/hostname}]}}";
    const char *listed =
        "affinity: {podAntiAffinity: "
        "{requiredDuringSchedulingIgnoredDuringExecution: "
        "[{labelSelector: {matchLabels: {app: db}}, namespaces: [other], "
        "topologyKey: kubernetes.io/hostname}]}}";
    //  The db of namespace other is not in the default namespace's view
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "a", "{app: a}", "100m", own), "n1");
    ZT_ASSERT (!S_PLACE (cache, "b", "{app: b}", "100m", listed));
    ZT_ASSERT_STR_EQ (
        message,
        "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules.");
    zs_cache_destroy (&cache);
}

//  Terminating pods do not count in a spread
static void
test_spread_skips_terminating (void)
{
    zs_cache_t *cache = zs_cache_new ();
    s_add (cache, "a", "64", "{topology.kubernetes.io/zone: z1}");
    s_add (cache, "b", "4", "{topology.kubernetes.io/zone: z2}");
    char message[512] = "";
    const char *dying = "{app: spread}, deletionTimestamp: '2026-01-01T00:01:00Z'";
    const char *in_z1 = "nodeSelector: {topology.kubernetes.io/zone: z1}";
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "dying-0", dying, "100m", in_z1), "a");
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "dying-1", dying, "100m", in_z1), "a");
    ZT_ASSERT_STR_EQ (
        S_PLACE (cache, "s", "{app: spread}", "1", S_SPREAD ("DoNotSchedule")), "a");
    zs_cache_destroy (&cache);
}

//  One pod per host: the domain per node path, many domains
static void
test_spread_by_host (void)
{
    zs_cache_t *cache = zs_cache_new ();
    char message[512] = "";
    for (int i = 0; i < 40; i++) {
        char name[16], labels[64];
        snprintf (name, sizeof name, "h%d", i);
        snprintf (labels, sizeof labels, "{kubernetes.io/hostname: %s}", name);
        s_add (cache, name, i == 0 ? "64" : "4", labels);
    }
    const char *by_host = "topologySpreadConstraints: [{maxSkew: 1, "
                          "topologyKey: kubernetes.io/hostname, whenUnsatisfiable: "
                          "DoNotSchedule, labelSelector: {matchLabels: {app: h}}}]";
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf (name, sizeof name, "p%d", i);
        ZT_ASSERT (S_PLACE (cache, name, "{app: h}", "1", by_host));
    }
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf (name, sizeof name, "h%d", i);
        ZT_ASSERT_INT_EQ (zs_cache_node (cache, name)->assigned_count, 1);
    }
    zs_cache_destroy (&cache);
}

//  Preemption sees the pods it would evict gone from both plugins' counts
static void
test_preemption (void)
{
    zs_cache_t *cache = s_one_node ();
    char message[512] = "";
    ZT_ASSERT (S_PLACE (cache, "noisy-0", "{app: noisy}", "100m", ""));
    ZT_ASSERT (S_PLACE (cache, "noisy-1", "{app: noisy}", "100m", ""));
    ZT_ASSERT (S_PLACE (cache, "quiet", "{app: quiet}", "100m", ""));
    const char *avoid = "priority: 100, affinity: {podAntiAffinity: "
                        "{requiredDuringSchedulingIgnoredDuringExecution: "
                        "[{labelSelector: {matchLabels: {app: noisy}}, "
                        "topologyKey: kubernetes.io/hostname}]}}";
    ZT_ASSERT (!S_PLACE (cache, "important", "{app: vip}", "100m", avoid));
    ZT_ASSERT_STR_EQ (s_nominated, "n1");
    ZT_ASSERT_STR_CONTAINS (s_victims, "noisy-0");
    ZT_ASSERT_STR_CONTAINS (s_victims, "noisy-1");
    ZT_ASSERT (!strstr (s_victims, "quiet"));
    zs_cache_destroy (&cache);

    //  z1 holds two spread pods, z2 (tainted) none: only evicting both
    //  lets a third into z1 within maxSkew 1
    cache = zs_cache_new ();
    s_add (cache, "a", "4", "{topology.kubernetes.io/zone: z1}");
    char *yaml =
        zsys_sprintf ("metadata: {name: b, labels: {topology.kubernetes.io/zone: z2}}\n"
                      "spec: {taints: [{key: k, value: v, effect: NoSchedule}]}\n"
                      "status: {allocatable: {cpu: '4', memory: 8Gi, pods: '110'}}\n");
    ProtobufCMessage *node = NULL;
    zube_codec_error_t error;
    ZT_ASSERT (zube_codec_decode (yaml, strlen (yaml), &zube__node__descriptor, &node,
                                  &error) == 0);
    ZT_ASSERT (zs_cache_node_set (cache, (Zube__Node *)node) >= 0);
    protobuf_c_message_free_unpacked (node, NULL);
    zstr_free (&yaml);
    ZT_ASSERT (S_PLACE (cache, "x0", "{app: spread}", "100m", ""));
    ZT_ASSERT (S_PLACE (cache, "x1", "{app: spread}", "100m", ""));
    ZT_ASSERT (!S_PLACE (cache, "high", "{app: spread}", "100m",
                         "priority: 100, " S_SPREAD ("DoNotSchedule")));
    ZT_ASSERT_STR_EQ (s_nominated, "a");
    ZT_ASSERT_STR_CONTAINS (s_victims, "x0");
    ZT_ASSERT_STR_CONTAINS (s_victims, "x1");
    zs_cache_destroy (&cache);
}

static void
test_cache_lists_pods (void)
{
    zs_cache_t *cache = zs_cache_new ();
    s_add (cache, "n", "4", "{}");
    char message[512] = "";
    ZT_ASSERT (S_PLACE (cache, "p1", "{app: x}", "100m", ""));
    ZT_ASSERT (S_PLACE (cache, "p2", "{app: y}", "100m", ""));
    const zube_sched_node_t *node = zs_cache_node (cache, "n");
    ZT_ASSERT (ZUBE_SCHED_HAS (node, assigned));
    ZT_ASSERT_INT_EQ (node->assigned_count, 2);
    ZT_ASSERT (zs_cache_pod_remove (cache, "default/p1"));
    ZT_ASSERT_INT_EQ (node->assigned_count, 1);
    ZT_ASSERT_STR_EQ (node->assigned[0]->name, "p2");
    ZT_ASSERT_STR_EQ (node->assigned[0]->labels[0].value, "y");
    //  Pods with pod affinity terms come first
    const char *anti = "affinity: {podAntiAffinity: "
                       "{requiredDuringSchedulingIgnoredDuringExecution: "
                       "[{labelSelector: {matchLabels: {app: none}}, topologyKey: k}]}}";
    ZT_ASSERT (S_PLACE (cache, "p3", "{app: z}", "100m", ""));
    ZT_ASSERT (S_PLACE (cache, "a1", "{app: a}", "100m", anti));
    ZT_ASSERT (S_PLACE (cache, "a2", "{app: a}", "100m", anti));
    ZT_ASSERT_INT_EQ (node->assigned_count, 4);
    ZT_ASSERT_INT_EQ (node->assigned_with_affinity, 2);
    ZT_ASSERT (zs_cache_pod_remove (cache, "default/a1"));
    ZT_ASSERT_INT_EQ (node->assigned_with_affinity, 1);
    ZT_ASSERT_STR_EQ (node->assigned[0]->name, "a2");
    ZT_ASSERT (zs_cache_pod_remove (cache, "default/p2"));
    ZT_ASSERT_STR_EQ (node->assigned[0]->name, "a2");
    ZT_ASSERT_STR_EQ (node->assigned[1]->name, "p3");
    ZT_ASSERT (zs_cache_pod_remove (cache, "default/a2"));
    ZT_ASSERT_INT_EQ (node->assigned_with_affinity, 0);
    ZT_ASSERT_INT_EQ (node->assigned_count, 1);
    ZT_ASSERT_STR_EQ (node->assigned[0]->name, "p3");
    zs_cache_destroy (&cache);
}

//  How many nodes the cache lists as having pods with affinity terms
//  (anti: with a required anti-affinity term); *has: whether node is one.
static size_t
s_listed (zs_cache_t *cache, bool anti, const char *node, bool *has)
{
    zube_sched_cycle_t cycle = {.struct_size = sizeof cycle};
    zs_cache_cycle_fill (cache, &cycle);
    ZT_ASSERT (ZUBE_SCHED_HAS (&cycle, required_anti_affinity_nodes));
    size_t count =
        anti ? cycle.required_anti_affinity_node_count : cycle.affinity_node_count;
    const zube_sched_node_t *const *nodes =
        anti ? cycle.required_anti_affinity_nodes : cycle.affinity_nodes;
    ZT_ASSERT (count ? nodes != NULL : nodes == NULL);
    *has = false;
    for (size_t i = 0; i < count; i++) {
        ZT_ASSERT (nodes[i] == zs_cache_node (cache, nodes[i]->name));
        if (streq (nodes[i]->name, node))
            *has = true;
    }
    return count;
}

//  A pod held on node (bound, or on a node not known yet).
static void
s_hold (zs_cache_t *cache, const char *name, const char *node, const char *labels,
        const char *extra)
{
    char *yaml = zsys_sprintf ("metadata: {name: %s, namespace: default, labels: %s}\n"
                               "spec: {containers: [{name: c, image: i}]%s%s}\n",
                               name, labels, *extra ? ", " : "", extra);
    zs_pod_t *pod = zt_sched_pod (yaml);
    zstr_free (&yaml);
    ZT_ASSERT (zs_cache_pod_add (cache, pod, node, false) == 0);
    zs_pod_destroy (&pod);
}

#define S_FRIEND_OF_API                                                                  \
    "affinity: {podAffinity: {preferredDuringSchedulingIgnoredDuringExecution: "         \
    "[{weight: 100, podAffinityTerm: {labelSelector: {matchLabels: {app: api}}, "        \
    "topologyKey: topology.kubernetes.io/zone}}]}}"
#define S_NOT_NOISY S_ANTI_ZONE ("noisy")

//  The cache's lists of nodes with pods with affinity terms follow pods
//  and nodes; a pod without terms is judged by the listed nodes' pods.
static void
test_affinity_node_lists (void)
{
    zs_cache_t *cache = zs_cache_new ();
    s_add (cache, "a", "8", "{topology.kubernetes.io/zone: z1}");
    s_add (cache, "b", "8", "{topology.kubernetes.io/zone: z2}");
    s_add (cache, "c", "8", "{topology.kubernetes.io/zone: z3}");
    bool has = false;
    char message[512] = "";
    ZT_ASSERT (S_PLACE (cache, "plain", "{app: x}", "100m", ""));
    ZT_ASSERT_INT_EQ (s_listed (cache, false, "a", &has), 0);
    ZT_ASSERT_INT_EQ (s_listed (cache, true, "a", &has), 0);
    s_hold (cache, "friend", "b", "{app: f}", S_FRIEND_OF_API);
    ZT_ASSERT_INT_EQ (s_listed (cache, false, "b", &has), 1);
    ZT_ASSERT (has);
    ZT_ASSERT_INT_EQ (s_listed (cache, true, "b", &has), 0);
    s_hold (cache, "guard", "c", "{app: g}", S_NOT_NOISY);
    ZT_ASSERT_INT_EQ (s_listed (cache, false, "c", &has), 2);
    ZT_ASSERT (has);
    ZT_ASSERT_INT_EQ (s_listed (cache, true, "c", &has), 1);
    ZT_ASSERT (has);
    //  Pods without terms: an api pod goes where the friend prefers it,
    //  noisy pods stay out of the guard's zone
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "api", "{app: api}", "100m", ""), "b");
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf (name, sizeof name, "noisy-%d", i);
        const char *node = S_PLACE (cache, name, "{app: noisy}", "1", "");
        ZT_ASSERT_MSG (node && !streq (node, "c"), "%s on %s", name,
                       node ? node : message);
    }
    //  The guard gone, its node leaves both lists and takes noisy pods
    ZT_ASSERT (zs_cache_pod_remove (cache, "default/guard"));
    ZT_ASSERT_INT_EQ (s_listed (cache, true, "c", &has), 0);
    ZT_ASSERT_INT_EQ (s_listed (cache, false, "c", &has), 1);
    ZT_ASSERT (!has);
    ZT_ASSERT_STR_EQ (S_PLACE (cache, "noisy-c", "{app: noisy}", "1", ""), "c");
    //  A node is listed only while it exists, with its pods
    s_hold (cache, "early", "later", "{app: e}", S_NOT_NOISY);
    ZT_ASSERT_INT_EQ (s_listed (cache, true, "later", &has), 0);
    s_add (cache, "later", "8", "{topology.kubernetes.io/zone: z4}");
    ZT_ASSERT_INT_EQ (s_listed (cache, true, "later", &has), 1);
    ZT_ASSERT (has);
    ZT_ASSERT_INT_EQ (s_listed (cache, false, "later", &has), 2);
    ZT_ASSERT (has);
    zs_cache_node_remove (cache, "later");
    ZT_ASSERT_INT_EQ (s_listed (cache, true, "later", &has), 0);
    ZT_ASSERT_INT_EQ (s_listed (cache, false, "b", &has), 1);
    ZT_ASSERT (has);
    ZT_ASSERT (zs_cache_pod_remove (cache, "default/friend"));
    ZT_ASSERT_INT_EQ (s_listed (cache, false, "b", &has), 0);
    zs_cache_destroy (&cache);
}

int
main (void)
{
    s_registry = zs_registry_new (NULL);
    zs_profiles_t profiles;
    char error[1024];
    ZT_ASSERT_MSG (zs_profiles_load (s_registry, NULL, &profiles, error, sizeof error) ==
                       0,
                   "%.900s", error);
    s_default = profiles.profiles[0];
    char *describe = zs_profile_describe (s_default);
    ZT_ASSERT_MSG (strstr (describe, "PodTopologySpread*2") &&
                       strstr (describe, "InterPodAffinity*2"),
                   "default profile: %s", describe);
    free (describe);
    ZT_RUN (test_cache_lists_pods);
    ZT_RUN (test_affinity_node_lists);
    ZT_RUN (test_anti_affinity);
    ZT_RUN (test_existing_anti_affinity_by_host);
    ZT_RUN (test_affinity_required);
    ZT_RUN (test_affinity_preferred);
    ZT_RUN (test_spread_do_not_schedule);
    ZT_RUN (test_spread_schedule_anyway);
    ZT_RUN (test_spread_match_label_keys_and_min_domains);
    ZT_RUN (test_anti_affinity_namespaces);
    ZT_RUN (test_spread_by_host);
    ZT_RUN (test_spread_skips_terminating);
    ZT_RUN (test_preemption);
    zs_profiles_clear (&profiles);
    zs_registry_destroy (&s_registry);
    return zt_done ();
}
