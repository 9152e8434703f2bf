/*  test_sched_preempt - ImageLocality and DefaultPreemption on an
    in-memory node cache (no bus): the node holding the pod's image wins;
    preemption picks the lowest-priority victims on the best node, never
    pods of equal or higher priority, nominates the node, and a pod with
    preemptionPolicy Never preempts nothing. The plugins are the shared
    objects just built ($ZUBE_BUILDDIR/plugins). */
#include "zs_sched.h"
#include "zube/codec.h"
#include "zube_test.h"
#include "zt_sched.h"
#include <czmq.h>

static zs_registry_t *s_registry;

//  A node with cpu, memory, 110 pods and status.images (YAML flow).
static void
s_node (zs_cache_t *cache, const char *name, const char *cpu, const char *images)
{
    char yaml[2048];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: %s}\n"
              "status: {allocatable: {cpu: '%s', memory: 16Gi, pods: '110'}, "
              "images: %s}\n",
              name, cpu, images ? images : "[]");
    zt_sched_node_add (cache, yaml);
}

//  A pod with one container asking for cpu, at priority, image image.
static zs_pod_t *
s_pod (const char *name, const char *cpu, int priority, const char *image,
       const char *more)
{
    char yaml[2048];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: %s, namespace: default, uid: uid-%s, "
              "creationTimestamp: '2026-01-01T00:00:00Z'}\n"
              "spec: {priority: %d, %s containers: [{name: c, image: '%s', "
              "resources: {requests: {cpu: '%s', memory: 1Mi}}}]}\n",
              name, name, priority, more ? more : "", image, cpu);
    return zt_sched_pod (yaml);
}

//  A pod already running on node.
static void
s_running (zs_cache_t *cache, const char *name, const char *node, const char *cpu,
           int priority)
{
    zs_pod_t *pod = s_pod (name, cpu, priority, "busybox", NULL);
    ZT_ASSERT (zs_cache_pod_add (cache, pod, node, false) == 0);
    zs_pod_destroy (&pod);
}

static zs_profile_t *
s_profile (const char *yaml)
{
    return zt_sched_profile (s_registry, yaml);
}

static void
test_image_locality (void)
{
    zs_cache_t *cache = zs_cache_new ();
    //  Only ImageLocality scores, so the image decides
    zs_profile_t *profile = s_profile ("apiVersion: kubescheduler.config.k8s.io/v1\n"
                                       "kind: KubeSchedulerConfiguration\n"
                                       "profiles:\n"
                                       "- schedulerName: default-scheduler\n"
                                       "  plugins:\n"
                                       "    score:\n"
                                       "      disabled: [{name: '*'}]\n"
                                       "      enabled: [{name: ImageLocality}]\n");
    s_node (cache, "bare", "4", NULL);
    s_node (cache, "cached", "4",
            "[{names: ['docker.io/library/big:latest', 'big:latest'], "
            "sizeBytes: 524288000}]");
    s_node (cache, "other", "4", "[{names: ['small:1'], sizeBytes: 1048576}]");
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf (name, sizeof name, "p%d", i);
        //  "big" is normalized to "big:latest"
        zs_pod_t *pod = s_pod (name, "100m", 0, "big", NULL);
        zs_result_t result;
        ZT_ASSERT (zs_profile_schedule (profile, cache, pod, &result) == 0);
        ZT_ASSERT_STR_EQ (result.node->name, "cached");
        zs_pod_destroy (&pod);
    }
    char *text = NULL;
    //  The explain report shows the score: 500 MB on 1 of 3 nodes is
    //  166 MB of the 23..1000 MB range: 100 * (166 - 23) / 977 = 14
    zs_pod_t *pod = s_pod ("q", "100m", 0, "big:latest", NULL);
    text = zs_profile_explain (profile, cache, pod, 3);
    ZT_ASSERT (text);
    ZT_ASSERT_MSG (strstr (text, "cached") && strstr (text, "14"), "%s", text);
    free (text);
    zs_pod_destroy (&pod);
    zs_profile_destroy (&profile);
    //  In the default profile with weight 1
    profile = s_profile (NULL);
    char *described = zs_profile_describe (profile);
    ZT_ASSERT_MSG (strstr (described, "ImageLocality*1"), "%s", described);
    free (described);
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

//  Three full nodes: n1 runs priorities 1, 5, 10; n2 runs 2 and 3; n3
//  one pod of 100. A 2-cpu pod of priority 50 fits n1 without 1 and 5
//  (10 is reprieved) and n2 without 2 (3 is reprieved): n2 wins, its
//  highest victim being the lowest.
static zs_cache_t *
s_full_cluster (void)
{
    zs_cache_t *cache = zs_cache_new ();
    s_node (cache, "n1", "4", NULL);
    s_node (cache, "n2", "4", NULL);
    s_node (cache, "n3", "4", NULL);
    s_running (cache, "a", "n1", "1", 1);
    s_running (cache, "b", "n1", "1", 5);
    s_running (cache, "c", "n1", "2", 10);
    s_running (cache, "d", "n2", "2", 2);
    s_running (cache, "e", "n2", "2", 3);
    s_running (cache, "f", "n3", "4", 100);
    return cache;
}

//  Schedules a pod NAME asking for cpu at priority (more: more of its
//  spec); answers the nominated node ("" none) and the victims' names,
//  comma-separated, most important first, in victims.
static const char *
s_preempt (zs_profile_t *profile, zs_cache_t *cache, const char *name, const char *cpu,
           int priority, const char *more, char *victims, size_t size)
{
    static char nominated[256];
    zs_pod_t *pod = s_pod (name, cpu, priority, "busybox", more);
    zs_result_t result;
    ZT_ASSERT (zs_profile_schedule (profile, cache, pod, &result) == 1);
    snprintf (nominated, sizeof nominated, "%s", result.nominated);
    size_t used = 0;
    victims[0] = 0;
    for (size_t i = 0; i < result.victim_count && used < size; i++)
        used += (size_t)snprintf (victims + used, size - used, "%s%s", i ? "," : "",
                                  result.victims[i]->view.name);
    if (!nominated[0])
        ZT_ASSERT (result.victim_count == 0);
    zs_result_clear (&result);
    zs_pod_destroy (&pod);
    return nominated;
}

static void
test_preemption_picks_lowest (void)
{
    zs_cache_t *cache = s_full_cluster ();
    zs_profile_t *profile = s_profile (NULL);
    char victims[256];
    ZT_ASSERT_STR_EQ (
        s_preempt (profile, cache, "high", "2", 50, NULL, victims, sizeof victims), "n2");
    ZT_ASSERT_STR_EQ (victims, "d");
    //  Room for 3 cpu: n1 without 10 and 1 (5 is reprieved) or n2 without
    //  both: n2's highest victim (3) is lower than n1's (10)
    ZT_ASSERT_STR_EQ (
        s_preempt (profile, cache, "bigger", "3", 50, NULL, victims, sizeof victims),
        "n2");
    ZT_ASSERT_STR_EQ (victims, "e,d");
    //  Once the victims are gone the pod is placed there
    ZT_ASSERT (zs_cache_pod_remove (cache, "default/d"));
    zs_pod_t *pod = s_pod ("high", "2", 50, "busybox", NULL);
    zs_result_t result;
    ZT_ASSERT (zs_profile_schedule (profile, cache, pod, &result) == 0);
    ZT_ASSERT_STR_EQ (result.node->name, "n2");
    zs_pod_destroy (&pod);
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

static void
test_preemption_spares_equal_and_higher (void)
{
    zs_cache_t *cache = s_full_cluster ();
    zs_profile_t *profile = s_profile (NULL);
    char victims[256];
    //  Priority 2: only a (1) on n1 is lower, and 1 cpu is not enough;
    //  d (2, equal) and e (3) on n2 are never victims
    ZT_ASSERT_STR_EQ (
        s_preempt (profile, cache, "two", "2", 2, NULL, victims, sizeof victims), "");
    //  1 cpu at priority 2: a goes, nothing of priority 2 or more
    ZT_ASSERT_STR_EQ (
        s_preempt (profile, cache, "one", "1", 2, NULL, victims, sizeof victims), "n1");
    ZT_ASSERT_STR_EQ (victims, "a");
    //  All of n3 is priority 100: a 4-cpu pod of 99 can only empty n1
    //  (1, 5, 10 out) or n2 (2, 3 out): n2, never n3
    ZT_ASSERT_STR_EQ (
        s_preempt (profile, cache, "four", "4", 99, NULL, victims, sizeof victims), "n2");
    ZT_ASSERT_STR_EQ (victims, "e,d");
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

static void
test_preemption_policy_never (void)
{
    zs_cache_t *cache = s_full_cluster ();
    zs_profile_t *profile = s_profile (NULL);
    char victims[256];
    ZT_ASSERT_STR_EQ (s_preempt (profile, cache, "polite", "2", 50,
                                 "preemptionPolicy: Never,", victims, sizeof victims),
                      "");
    ZT_ASSERT_STR_EQ (victims, "");
    //  Without DefaultPreemption nothing is preempted either
    zs_profile_t *off = s_profile ("apiVersion: kubescheduler.config.k8s.io/v1\n"
                                   "kind: KubeSchedulerConfiguration\n"
                                   "profiles:\n"
                                   "- plugins:\n"
                                   "    postFilter:\n"
                                   "      disabled: [{name: DefaultPreemption}]\n");
    ZT_ASSERT_STR_EQ (
        s_preempt (off, cache, "high", "2", 50, NULL, victims, sizeof victims), "");
    ZT_ASSERT_STR_EQ (
        s_preempt (profile, cache, "high", "2", 50, NULL, victims, sizeof victims), "n2");
    zs_profile_destroy (&off);
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

//  A pod nominated to a node where lower-priority pods are still being
//  deleted waits for them instead of preempting again
static void
test_preemption_waits_for_terminating (void)
{
    zs_cache_t *cache = s_full_cluster ();
    zs_profile_t *profile = s_profile (NULL);
    zs_pod_t *terminating =
        zt_sched_pod ("metadata: {name: t, namespace: default, uid: uid-t, "
                      "deletionTimestamp: '2026-01-01T00:00:01Z'}\n"
                      "spec: {priority: 1, containers: [{name: c, image: busybox}]}\n");
    ZT_ASSERT (zs_cache_pod_add (cache, terminating, "n2", false) == 0);
    zs_pod_destroy (&terminating);
    zs_pod_t *pod =
        zt_sched_pod ("metadata: {name: high, namespace: default, uid: uid-high}\n"
                      "spec: {priority: 50, containers: [{name: c, image: busybox, "
                      "resources: {requests: {cpu: '2'}}}]}\n"
                      "status: {nominatedNodeName: n2}\n");
    zs_result_t result;
    ZT_ASSERT (zs_profile_schedule (profile, cache, pod, &result) == 1);
    ZT_ASSERT_STR_EQ (result.nominated, "");
    ZT_ASSERT (result.victim_count == 0);
    zs_pod_destroy (&pod);
    //  Not nominated yet: it preempts (t takes no cpu and stays)
    char victims[256];
    ZT_ASSERT_STR_EQ (
        s_preempt (profile, cache, "high", "2", 50, NULL, victims, sizeof victims), "n2");
    ZT_ASSERT_STR_EQ (victims, "d");
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

int
main (void)
{
    s_registry = zs_registry_new (NULL);
    ZT_RUN (test_image_locality);
    ZT_RUN (test_preemption_picks_lowest);
    ZT_RUN (test_preemption_spares_equal_and_higher);
    ZT_RUN (test_preemption_policy_never);
    ZT_RUN (test_preemption_waits_for_terminating);
    zs_registry_destroy (&s_registry);
    return zt_done ();
}
