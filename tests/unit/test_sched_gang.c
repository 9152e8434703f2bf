/*  test_sched_gang - waiting at permit and the Coscheduling plugin on an
    in-memory node cache (no bus), and filtering on threads: a gang waits
    until its last member is placed and is then allowed at once; a gang
    that cannot fit is rejected whole and leaves nothing assumed; a wait
    that times out, a deleted waiting pod and an unreserved member reject
    the siblings; minMember from a PodGroup object or the annotation; the
    queue keeps a group's pods together; and the same nodes are picked
    with one thread or several. The test's lister stands in for the
    scheduler's watch caches. */
#include "zs_permit.h"
#include "zube/codec.h"
#include "zube_test.h"
#include <czmq.h>

//  After zube_test.h, whose macros it uses
#include "zt_sched.h"

static zs_registry_t *s_registry;

//  What the handle's each_object, get_object and activate see
static struct {
    zs_cache_t *cache;
    zs_pod_t *pods[64];
    size_t pod_count;
    Zube__PodGroup *groups[4];
    size_t group_count;
    size_t activated;
} s_world;

static const char *
s_meta_label (const Zube__ObjectMeta *meta, const char *key)
{
    for (size_t i = 0; meta && i < meta->n_labels; i++)
        if (streq (meta->labels[i]->key, key))
            return meta->labels[i]->value;
    return NULL;
}

static void
s_lister_each (void *arg, const char *resource, const char *namespace_,
               const char *label_key, const char *label_value, zube_sched_object_fn *fn,
               void *fn_arg)
{
    (void)arg;
    if (!streq (resource, "pods"))
        return;
    for (size_t i = 0; i < s_world.pod_count; i++) {
        zs_pod_t *pod = s_world.pods[i];
        const char *value =
            label_key ? s_meta_label (pod->object->metadata, label_key) : NULL;
        if (namespace_ && !streq (namespace_, pod->view.namespace_))
            continue;
        if (label_key && (!value || !streq (value, label_value)))
            continue;
        bool assumed;
        const char *node = zs_cache_pod_node (s_world.cache, pod->key, &assumed);
        if (!fn (pod->object, node ? node : "", fn_arg))
            return;
    }
}

static const void *
s_lister_get (void *arg, const char *resource, const char *namespace_, const char *name)
{
    (void)arg;
    for (size_t i = 0; streq (resource, "podgroups") && i < s_world.group_count; i++) {
        const Zube__ObjectMeta *meta = s_world.groups[i]->metadata;
        if (streq (meta->name, name) && streq (meta->namespace_, namespace_))
            return s_world.groups[i];
    }
    return NULL;
}

static void
s_lister_activate (void *arg, const char *namespace_, const char *name)
{
    (void)arg, (void)namespace_, (void)name;
    s_world.activated++;
}

static void
s_world_reset (void)
{
    for (size_t i = 0; i < s_world.pod_count; i++)
        zs_pod_destroy (&s_world.pods[i]);
    for (size_t i = 0; i < s_world.group_count; i++)
        protobuf_c_message_free_unpacked (&s_world.groups[i]->base, NULL);
    zs_cache_destroy (&s_world.cache);
    memset (&s_world, 0, sizeof s_world);
    s_world.cache = zs_cache_new ();
    ZT_ASSERT (s_world.cache);
}

static void
s_node (const char *name, const char *cpu)
{
    char yaml[1024];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: %s}\n"
              "status: {allocatable: {cpu: '%s', memory: 8Gi, pods: '110'}}\n",
              name, cpu);
    zt_sched_node_add (s_world.cache, yaml);
}

//  A pod of group (NULL: none) asking for cpu; min > 0 adds the
//  min-member annotation. The world keeps it.
static zs_pod_t *
s_pod (const char *name, const char *group, int min, const char *cpu, int second)
{
    char labels[256] = "{}", annotations[256] = "{}", yaml[2048];
    if (group)
        snprintf (labels, sizeof labels, "{scheduling.x-k8s.io/pod-group: %s}", group);
    if (min > 0)
        snprintf (annotations, sizeof annotations,
                  "{scheduling.x-k8s.io/min-member: '%d'}", min);
    snprintf (yaml, sizeof yaml,
              "metadata: {name: %s, namespace: default, uid: uid-%s, labels: %s,\n"
              "  annotations: %s, creationTimestamp: '2026-01-01T00:00:%02dZ'}\n"
              "spec: {containers: [{name: c, image: i, resources: {requests: {cpu: "
              "'%s'}}}]}\n",
              name, name, labels, annotations, second, cpu);
    zs_pod_t *pod = zt_sched_pod (yaml);
    ZT_ASSERT (s_world.pod_count < 64);
    s_world.pods[s_world.pod_count++] = pod;
    return pod;
}

//  count pods GROUP-0.. of group, each asking for cpu, into pods.
static void
s_gang (const char *group, int count, int min, const char *cpu, zs_pod_t **pods)
{
    for (int i = 0; i < count; i++) {
        char name[64];
        snprintf (name, sizeof name, "%s-%d", group, i);
        pods[i] = s_pod (name, group, min, cpu, i);
    }
}

static void
s_pod_group (const char *name, int min, const char *created)
{
    char yaml[512];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: %s, namespace: default, creationTimestamp: '%s'}\n"
              "spec: {minMember: %d}\n",
              name, created, min);
    ProtobufCMessage *object = NULL;
    zube_codec_error_t error;
    ZT_ASSERT_MSG (zube_codec_decode (yaml, strlen (yaml), &zube__pod_group__descriptor,
                                      &object, &error) == 0,
                   "podgroup: %s (%s)", error.message, error.field);
    s_world.groups[s_world.group_count++] = (Zube__PodGroup *)object;
}

static const char *s_gang_profile =
    "apiVersion: kubescheduler.config.k8s.io/v1\n"
    "kind: KubeSchedulerConfiguration\n"
    "profiles:\n"
    "- plugins:\n"
    "    queueSort: {enabled: [{name: Coscheduling}], disabled: [{name: '*'}]}\n"
    "    multiPoint: {enabled: [{name: Coscheduling}]}\n"
    "  pluginConfig:\n"
    "  - name: Coscheduling\n"
    "    args: {permitWaitingTimeSeconds: 30}\n";

//  Schedules pod: ZS_SCHEDULE_WAITING, 0 (placed and let through) or 1
//  (message filled).
static int
s_schedule (zs_profile_t *profile, zs_pod_t *pod, char *message, size_t size)
{
    zs_result_t result;
    int rc = zs_profile_schedule (profile, s_world.cache, pod, &result);
    ZT_ASSERT (rc >= 0);
    if (rc == 1)
        zs_diagnosis_message (&result.diagnosis, message, size);
    zs_result_clear (&result);
    return rc;
}

//  Hands back every ended wait; counts allowed and rejected, the last
//  rejection's message in message.
static void
s_drain (zs_profile_t *profile, int64_t now_ms, size_t *allowed, size_t *rejected,
         char *message, size_t size)
{
    zs_waited_t waited;
    *allowed = *rejected = 0;
    while (zs_profile_waiting_next (profile, s_world.cache, now_ms, &waited)) {
        ZT_ASSERT (waited.pod);
        if (waited.allowed) {
            ZT_ASSERT (waited.host_bind);
            (*allowed)++;
        } else {
            (*rejected)++;
            snprintf (message, size, "%s", waited.message);
        }
    }
}

static size_t
s_assumed (void)
{
    size_t count = 0;
    for (size_t i = 0; i < s_world.pod_count; i++) {
        bool assumed = false;
        if (zs_cache_pod_node (s_world.cache, s_world.pods[i]->key, &assumed) && assumed)
            count++;
    }
    return count;
}

static void
test_gang_waits_then_binds (void)
{
    s_world_reset ();
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf (name, sizeof name, "node-%d", i);
        s_node (name, "4");
    }
    zs_profile_t *profile = zt_sched_profile (s_registry, s_gang_profile);
    zs_pod_t *pods[4];
    s_gang ("g", 4, 4, "1", pods);
    char message[1024] = "";
    size_t allowed, rejected;
    for (int i = 0; i < 3; i++) {
        ZT_ASSERT_INT_EQ (s_schedule (profile, pods[i], message, sizeof message),
                          ZS_SCHEDULE_WAITING);
        s_drain (profile, 0, &allowed, &rejected, message, sizeof message);
        ZT_ASSERT_INT_EQ (allowed + rejected, 0);
    }
    //  Waiting pods stay assumed, the loop went on; siblings were woken
    ZT_ASSERT_INT_EQ (zs_profile_waiting_count (profile), 3);
    ZT_ASSERT_INT_EQ (s_assumed (), 3);
    ZT_ASSERT (s_world.activated > 0);
    ZT_ASSERT_INT_EQ (zs_profile_waiting_due (profile, 0) > 0, 1);
    char *explained = zs_profile_explain (profile, s_world.cache, pods[0], 3);
    ZT_ASSERT (explained);
    bool says = strstr (explained, "Waiting at permit, assumed on node-") &&
                strstr (explained, "for Coscheduling (");
    ZT_ASSERT_MSG (says, "explain: %.500s", explained);
    free (explained);
    //  The last one passes and lets the three others go
    ZT_ASSERT_INT_EQ (s_schedule (profile, pods[3], message, sizeof message), 0);
    ZT_ASSERT_INT_EQ (zs_profile_waiting_due (profile, 0), 0);
    s_drain (profile, 0, &allowed, &rejected, message, sizeof message);
    ZT_ASSERT_INT_EQ (allowed, 3);
    ZT_ASSERT_INT_EQ (rejected, 0);
    ZT_ASSERT_INT_EQ (zs_profile_waiting_count (profile), 0);
    ZT_ASSERT_INT_EQ (zs_profile_waiting_due (profile, 0), -1);
    ZT_ASSERT_INT_EQ (s_assumed (), 4);
    //  A pod of no group is not held
    zs_pod_t *loner = s_pod ("loner", NULL, 0, "1", 9);
    ZT_ASSERT_INT_EQ (s_schedule (profile, loner, message, sizeof message), 0);
    zs_profile_destroy (&profile);
}

static void
test_gang_that_cannot_fit_binds_nothing (void)
{
    s_world_reset ();
    //  Room for 4 of the 6
    s_node ("node-0", "2");
    s_node ("node-1", "2");
    zs_profile_t *profile = zt_sched_profile (s_registry, s_gang_profile);
    zs_pod_t *pods[6];
    s_gang ("big", 6, 6, "1", pods);
    char message[1024] = "";
    size_t allowed, rejected;
    for (int i = 0; i < 4; i++)
        ZT_ASSERT_INT_EQ (s_schedule (profile, pods[i], message, sizeof message),
                          ZS_SCHEDULE_WAITING);
    ZT_ASSERT_INT_EQ (s_assumed (), 4);
    //  The fifth fits nowhere: its post-filter rejects the waiting four
    ZT_ASSERT_INT_EQ (s_schedule (profile, pods[4], message, sizeof message), 1);
    ZT_ASSERT_STR_CONTAINS (message, "Insufficient cpu");
    s_drain (profile, 0, &allowed, &rejected, message, sizeof message);
    ZT_ASSERT_INT_EQ (allowed, 0);
    ZT_ASSERT_INT_EQ (rejected, 4);
    ZT_ASSERT_STR_CONTAINS (message, "rejected at permit by Coscheduling");
    ZT_ASSERT_STR_CONTAINS (message, "pod group big: member big-4 cannot be placed");
    ZT_ASSERT_INT_EQ (s_assumed (), 0);
    ZT_ASSERT_INT_EQ (zs_cache_pod_count (s_world.cache), 0);
    ZT_ASSERT_INT_EQ (zs_profile_waiting_count (profile), 0);
    zs_profile_destroy (&profile);
}

static void
test_timeout_and_unreserve_reject_the_group (void)
{
    s_world_reset ();
    s_node ("node-0", "8");
    zs_profile_t *profile = zt_sched_profile (s_registry, s_gang_profile);
    zs_pod_t *a = s_pod ("t-a", "t", 3, "1", 1);
    zs_pod_t *b = s_pod ("t-b", "t", 3, "1", 2);
    s_pod ("t-c", "t", 3, "1", 3);
    char message[1024] = "";
    size_t allowed, rejected;
    ZT_ASSERT_INT_EQ (s_schedule (profile, a, message, sizeof message),
                      ZS_SCHEDULE_WAITING);
    ZT_ASSERT_INT_EQ (s_schedule (profile, b, message, sizeof message),
                      ZS_SCHEDULE_WAITING);
    //  Past the 30 s of permitWaitingTimeSeconds (a clock given, not waited)
    s_drain (profile, INT64_MAX / 2, &allowed, &rejected, message, sizeof message);
    ZT_ASSERT_INT_EQ (allowed, 0);
    ZT_ASSERT_INT_EQ (rejected, 2);
    ZT_ASSERT_INT_EQ (s_assumed (), 0);

    //  A deleted waiting pod: its unreserve rejects its sibling
    s_world_reset ();
    s_node ("node-0", "8");
    zs_profile_destroy (&profile);
    profile = zt_sched_profile (s_registry, s_gang_profile);
    a = s_pod ("d-a", "d", 3, "1", 1);
    b = s_pod ("d-b", "d", 3, "1", 2);
    s_pod ("d-c", "d", 3, "1", 3);
    ZT_ASSERT_INT_EQ (s_schedule (profile, a, message, sizeof message),
                      ZS_SCHEDULE_WAITING);
    ZT_ASSERT_INT_EQ (s_schedule (profile, b, message, sizeof message),
                      ZS_SCHEDULE_WAITING);
    ZT_ASSERT (zs_profile_waiting_reject (profile, "default/d-a", "the pod was deleted"));
    ZT_ASSERT (!zs_profile_waiting_reject (profile, "default/nobody", "x"));
    zs_waited_t waited;
    ZT_ASSERT (zs_profile_waiting_next (profile, s_world.cache, 0, &waited));
    ZT_ASSERT (waited.pod == a && !waited.allowed);
    ZT_ASSERT_STR_EQ (waited.message, "the pod was deleted");
    ZT_ASSERT (zs_profile_waiting_next (profile, s_world.cache, 0, &waited));
    ZT_ASSERT (waited.pod == b && !waited.allowed);
    ZT_ASSERT_STR_CONTAINS (waited.message, "member d-a was unreserved");
    ZT_ASSERT (!zs_profile_waiting_next (profile, s_world.cache, 0, &waited));
    ZT_ASSERT_INT_EQ (s_assumed (), 0);
    zs_profile_destroy (&profile);
}

static void
test_min_member_sources (void)
{
    s_world_reset ();
    s_node ("node-0", "8");
    zs_profile_t *profile = zt_sched_profile (s_registry, s_gang_profile);
    char message[1024] = "";
    //  Fewer pods than minMember exist: refused before any filter
    zs_pod_t *few = s_pod ("few-0", "few", 3, "1", 1);
    s_pod ("few-1", "few", 3, "1", 2);
    ZT_ASSERT_INT_EQ (s_schedule (profile, few, message, sizeof message), 1);
    ZT_ASSERT_STR_CONTAINS (message, "pod group few has 2 pods, minMember 3");
    //  No PodGroup and no annotation
    zs_pod_t *lost = s_pod ("lost", "nowhere", 0, "1", 1);
    ZT_ASSERT_INT_EQ (s_schedule (profile, lost, message, sizeof message), 1);
    ZT_ASSERT_STR_CONTAINS (message, "pod group nowhere not found");
    //  The PodGroup's minMember wins over the annotation
    s_pod_group ("pg", 2, "2026-01-01T00:00:00Z");
    zs_pod_t *first = s_pod ("pg-0", "pg", 5, "1", 1);
    zs_pod_t *second = s_pod ("pg-1", "pg", 5, "1", 2);
    ZT_ASSERT_INT_EQ (s_schedule (profile, first, message, sizeof message),
                      ZS_SCHEDULE_WAITING);
    ZT_ASSERT_INT_EQ (s_schedule (profile, second, message, sizeof message), 0);
    size_t allowed, rejected;
    s_drain (profile, 0, &allowed, &rejected, message, sizeof message);
    ZT_ASSERT_INT_EQ (allowed, 1);
    ZT_ASSERT_INT_EQ (rejected, 0);
    zs_profile_destroy (&profile);
    //  Bad args are named
    zs_profiles_t profiles;
    ZT_ASSERT (zs_profiles_load (s_registry,
                                 "apiVersion: kubescheduler.config.k8s.io/v1\n"
                                 "kind: KubeSchedulerConfiguration\n"
                                 "profiles:\n- plugins:\n"
                                 "    queueSort: {enabled: [{name: Coscheduling}], "
                                 "disabled: [{name: '*'}]}\n"
                                 "  pluginConfig:\n  - name: Coscheduling\n"
                                 "    args: {permitWaitingTimeSeconds: 0}\n",
                                 &profiles, message, sizeof message) != 0);
    ZT_ASSERT_STR_CONTAINS (message,
                            "profiles[0].pluginConfig[0].args.permitWaitingTimeSeconds");
}

static void
test_queue_keeps_groups_together (void)
{
    s_world_reset ();
    zs_profile_t *profile = zt_sched_profile (s_registry, s_gang_profile);
    zs_queue_t *queue = zs_queue_new (profile, 1000, 10000);
    //  Created interleaved: a-0, b-0, a-1, b-1, then a pod of no group
    //  and a high-priority one
    const char *names[] = {"a-0", "b-0", "a-1", "b-1"};
    for (int i = 0; i < 4; i++) {
        char yaml[1024];
        snprintf (yaml, sizeof yaml,
                  "metadata: {name: %s, namespace: default, labels: "
                  "{scheduling.x-k8s.io/pod-group: %c}, creationTimestamp: "
                  "'2026-01-01T00:00:%02dZ'}\nspec: {}\n",
                  names[i], names[i][0], i + 1);
        zs_pod_t *pod = zt_sched_pod (yaml);
        zs_queue_add (queue, &pod, profile, 0);
    }
    zs_pod_t *solo =
        zt_sched_pod ("metadata: {name: solo, namespace: default, "
                      "creationTimestamp: '2026-01-01T00:00:09Z'}\nspec: {}\n");
    zs_queue_add (queue, &solo, profile, 0);
    zs_pod_t *urgent = zt_sched_pod ("metadata: {name: urgent, namespace: default, "
                                     "creationTimestamp: '2026-01-01T00:00:30Z'}\n"
                                     "spec: {priority: 1000}\n");
    zs_queue_add (queue, &urgent, profile, 0);
    const char *expected[] = {"urgent", "a-0", "a-1", "b-0", "b-1", "solo"};
    for (int i = 0; i < 6; i++) {
        zs_qpod_t *qpod = zs_queue_pop (queue);
        ZT_ASSERT (qpod);
        ZT_ASSERT_STR_EQ (qpod->pod->view.name, expected[i]);
        zs_queue_done (queue, qpod);
    }
    zs_queue_destroy (&queue);
    zs_profile_destroy (&profile);
}

//  The nodes one profile picks for 40 pods on 1500 nodes of which some
//  fit, some are full and some are tainted; the last pods fit nowhere.
static void
s_picks (int parallelism, char picks[40][64], char *messages, size_t size)
{
    zs_cache_t *cache = zs_cache_new ();
    for (int i = 0; i < 1500; i++) {
        char yaml[1024];
        snprintf (yaml, sizeof yaml,
                  "metadata: {name: n-%04d}\n"
                  "spec: {taints: %s}\n"
                  "status: {allocatable: {cpu: '%d', memory: 8Gi, pods: '110'}}\n",
                  i, i % 7 == 0 ? "[{key: k, value: v, effect: NoSchedule}]" : "[]",
                  i % 5 == 0 ? 1 : 2 + i % 3);
        zt_sched_node_add (cache, yaml);
    }
    char config[512];
    snprintf (config, sizeof config,
              "apiVersion: kubescheduler.config.k8s.io/v1\n"
              "kind: KubeSchedulerConfiguration\n"
              "parallelism: %d\n"
              "profiles:\n- percentageOfNodesToScore: 20\n",
              parallelism);
    zs_profile_t *profile = zt_sched_profile (s_registry, config);
    ZT_ASSERT_INT_EQ (zs_profile_parallelism (profile), parallelism);
    zs_profile_set_seed (profile, 42);
    size_t used = 0;
    for (int i = 0; i < 40; i++) {
        char yaml[1024];
        snprintf (yaml, sizeof yaml,
                  "metadata: {name: p-%d, namespace: default}\n"
                  "spec: {containers: [{name: c, image: i, resources: {requests: "
                  "{cpu: '%s'}}}]}\n",
                  i, i < 36 ? "1500m" : "5");
        zs_pod_t *pod = zt_sched_pod (yaml);
        zs_result_t result;
        int rc = zs_profile_schedule (profile, cache, pod, &result);
        ZT_ASSERT (rc == 0 || rc == 1);
        snprintf (picks[i], 64, "%s", rc == 0 ? result.node->name : "-");
        if (rc == 1 && used + 512 < size) {
            used += (size_t)snprintf (messages + used, size - used,
                                      "%zu evaluated: ", result.diagnosis.evaluated);
            zs_diagnosis_message (&result.diagnosis, messages + used, size - used);
            used = strlen (messages);
        }
        zs_result_clear (&result);
        zs_pod_destroy (&pod);
    }
    zs_profile_destroy (&profile);
    zs_cache_destroy (&cache);
}

static void
test_parallel_filter_picks_the_same_nodes (void)
{
    if (sysconf (_SC_NPROCESSORS_ONLN) < 2) {
        zt_skip ("test_parallel_filter_picks_the_same_nodes", "one CPU");
        return;
    }
    size_t was = zs_parallel_min_nodes;
    //  Every cycle on the pool, however few nodes it wants
    zs_parallel_min_nodes = 1;
    static char one[40][64], two[40][64];
    static char one_messages[8192], two_messages[8192];
    s_picks (1, one, one_messages, sizeof one_messages);
    s_picks (2, two, two_messages, sizeof two_messages);
    zs_parallel_min_nodes = was;
    for (int i = 0; i < 40; i++)
        ZT_ASSERT_MSG (streq (one[i], two[i]),
                       "pod %d: %.60s with 1 thread, %.60s with 2", i, one[i], two[i]);
    ZT_ASSERT (!streq (one[0], "-"));
    ZT_ASSERT_STR_EQ (one[39], "-");
    ZT_ASSERT (strstr (one_messages, "Insufficient cpu"));
    ZT_ASSERT_MSG (streq (one_messages, two_messages), "1 thread: %.400s; 2: %.400s",
                   one_messages, two_messages);
    //  parallelism must be above 0
    zs_profiles_t profiles;
    char error[512];
    ZT_ASSERT (zs_profiles_load (s_registry,
                                 "apiVersion: kubescheduler.config.k8s.io/v1\n"
                                 "kind: KubeSchedulerConfiguration\nparallelism: 0\n",
                                 &profiles, error, sizeof error) != 0);
    ZT_ASSERT_STR_CONTAINS (error, "parallelism: Invalid value: 0");
}

int
main (void)
{
    s_registry = zs_registry_new (NULL);
    zs_registry_set_lister (s_registry, &(zs_lister_t){.each = s_lister_each,
                                                       .get = s_lister_get,
                                                       .activate = s_lister_activate});
    ZT_RUN (test_gang_waits_then_binds);
    ZT_RUN (test_gang_that_cannot_fit_binds_nothing);
    ZT_RUN (test_timeout_and_unreserve_reject_the_group);
    ZT_RUN (test_min_member_sources);
    ZT_RUN (test_queue_keeps_groups_together);
    ZT_RUN (test_parallel_filter_picks_the_same_nodes);
    s_world_reset ();
    zs_cache_destroy (&s_world.cache);
    zs_registry_destroy (&s_registry);
    return zt_done ();
}
