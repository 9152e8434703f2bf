/*  test_scheduler_gang - gang scheduling (Coscheduling, waiting at permit)
    in zube-scheduler against a real zube-broker, zube-apiserver and a
    zubelet hosting 4 hollow nodes of 4 CPUs: a gang of 4 whose PodGroup
    says minMember 4 binds all 4; a gang whose pods arrive one at a time
    binds when the last arrives; pods waiting at permit are rejected, unreserved and
    requeued when a new configuration is applied and when a member is
    deleted; a gang of 6 with minMember 6 of which only 4 fit binds none,
    reports PodScheduled=False naming the pod group and leaves nothing
    assumed in the scheduler's cache. */
#include "../zt_cluster.h"
#include "core.pb-c.h"
#include "zube.pb-c.h"
#include "zube/codec.h"
#include <czmq.h>

static zt_cluster_t s_cluster;
static pid_t s_zubelet;
static pid_t s_scheduler;

static const char *s_config_text =
    "apiVersion: kubescheduler.config.k8s.io/v1\n"
    "kind: KubeSchedulerConfiguration\n"
    "podInitialBackoffSeconds: 1\n"
    "podMaxBackoffSeconds: 2\n"
    "profiles:\n"
    "- schedulerName: gang\n"
    "  plugins:\n"
    "    queueSort: {enabled: [{name: Coscheduling}], disabled: [{name: '*'}]}\n"
    "    multiPoint: {enabled: [{name: Coscheduling}]}\n"
    "  pluginConfig:\n"
    "  - name: Coscheduling\n"
    "    args: {permitWaitingTimeSeconds: 60}\n";
static char s_config[700];

//  A pod of group asking for cpu, with the min-member annotation (none
//  when min is 0), for scheduler (the test's profile "gang" unless said).
static void
s_create_pod_for (const char *name, const char *group, int min, const char *cpu,
                  const char *scheduler)
{
    char yaml[2048], annotations[128] = "{}";
    if (min > 0)
        snprintf (annotations, sizeof annotations,
                  "{scheduling.x-k8s.io/min-member: '%d'}", min);
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: Pod\n"
              "metadata: {name: %s, namespace: default,\n"
              "  labels: {scheduling.x-k8s.io/pod-group: %s},\n"
              "  annotations: %s}\n"
              "spec: {schedulerName: %s, containers: [{name: c, image: busybox,\n"
              "  resources: {requests: {cpu: '%s'}}}]}\n",
              name, group, annotations, scheduler, cpu);
    zt_cluster_create_yaml (&s_cluster, "pods", "default", &zube__pod__descriptor, yaml,
                            NULL);
}

static void
s_create_pod (const char *name, const char *group, int min, const char *cpu)
{
    s_create_pod_for (name, group, min, cpu, "gang");
}

static Zube__Pod *
s_get_pod (const char *name)
{
    ProtobufCMessage *pod = NULL;
    zube_api_get (s_cluster.api, "pods", "default", name, &pod, NULL);
    return (Zube__Pod *)pod;
}

//  The message of the pod's PodScheduled=False condition (malloc'd), or
//  NULL; *bound set when it has a node.
static char *
s_unschedulable (const char *name, bool *bound)
{
    Zube__Pod *pod = s_get_pod (name);
    char *message = NULL;
    *bound = pod && pod->spec && pod->spec->node_name && *pod->spec->node_name;
    for (size_t i = 0; pod && pod->status && i < pod->status->n_conditions; i++) {
        Zube__PodCondition *condition = pod->status->conditions[i];
        if (streq (condition->type, "PodScheduled") && condition->status &&
            streq (condition->status, "False"))
            message = strdup (condition->message ? condition->message : "");
    }
    if (pod)
        protobuf_c_message_free_unpacked (&pod->base, NULL);
    return message;
}

//  Waits until the pod is PodScheduled=False; its message (malloc'd).
static char *
s_wait_unschedulable (const char *name, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        bool bound = false;
        char *message = s_unschedulable (name, &bound);
        if (message || bound)
            return message;
        zube_bus_poll (s_cluster.bus, 50);
    }
    return NULL;
}

//  The scheduler's stats field key (-1 when it does not answer).
static long
s_stat (const char *key)
{
    char *text = zt_sched_stats (s_cluster.bus, 2000);
    long value = zt_sched_stat (text, key);
    free (text);
    return value;
}

static void
s_wait_all_bound (const char *prefix, int count)
{
    for (int i = 0; i < count; i++) {
        char name[64], node[256];
        snprintf (name, sizeof name, "%s-%d", prefix, i);
        ZT_ASSERT_INT_EQ (
            zt_cluster_wait_bound (&s_cluster, "default", name, node, sizeof node, 15000),
            0);
        ZT_ASSERT_MSG (node[0], "%s was not bound", name);
    }
}

static void
test_gang_of_four_binds (void)
{
    //  minMember from the PodGroup alone (the pods have no annotation); the
    //  scheduler sees it before the pods (one event stream, in order)
    zt_cluster_create_yaml (&s_cluster, "podgroups", "default",
                            &zube__pod_group__descriptor,
                            "apiVersion: zube.io/v1alpha1\nkind: PodGroup\n"
                            "metadata: {name: four, namespace: default}\n"
                            "spec: {minMember: 4}\n",
                            NULL);
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf (name, sizeof name, "four-%d", i);
        s_create_pod (name, "four", 0, "1");
    }
    s_wait_all_bound ("four", 4);
    ZT_ASSERT_INT_EQ (s_stat ("waitingAtPermit"), 0);
}

static void
test_gang_arriving_one_at_a_time (void)
{
    char name[64];
    for (int i = 0; i < 2; i++) {
        snprintf (name, sizeof name, "late-%d", i);
        s_create_pod (name, "late", 3, "1");
        char *message = s_wait_unschedulable (name, 15000);
        ZT_ASSERT_MSG (message, "%s is neither unschedulable nor bound", name);
        char expected[64];
        snprintf (expected, sizeof expected, "pod group late has %d pods, minMember 3",
                  i + 1);
        ZT_ASSERT_STR_CONTAINS (message, expected);
        free (message);
    }
    s_create_pod ("late-2", "late", 3, "1");
    s_wait_all_bound ("late", 3);
}

//  Waits until the scheduler has count pods waiting at permit.
static void
s_wait_waiting (long count)
{
    int64_t until = zt_now_ms () + 15000;
    long waiting = -1;
    while (zt_now_ms () < until && (waiting = s_stat ("waitingAtPermit")) != count)
        zube_bus_poll (s_cluster.bus, 50);
    ZT_ASSERT_INT_EQ (waiting, count);
}

//  Waits until the pod's PodScheduled=False message has text; never bound.
static void
s_wait_message (const char *name, const char *text)
{
    int64_t until = zt_now_ms () + 15000;
    char *message = NULL;
    bool bound = false;
    while (zt_now_ms () < until) {
        free (message);
        message = s_unschedulable (name, &bound);
        ZT_ASSERT_MSG (!bound, "%s was bound", name);
        if (message && strstr (message, text))
            break;
        zube_bus_poll (s_cluster.bus, 50);
    }
    ZT_ASSERT_MSG (message && strstr (message, text), "%s: \"%s\", expected \"%s\"", name,
                   message ? message : "(no PodScheduled=False)", text);
    free (message);
}

static void
test_waiting_pods_on_config_apply_and_delete (void)
{
    //  The third member belongs to no scheduler of ours: the group exists
    //  whole, so the two others pass pre-filter and wait at permit
    s_create_pod_for ("hold-2", "hold", 3, "1", "nobody");
    s_create_pod ("hold-0", "hold", 3, "1");
    s_create_pod ("hold-1", "hold", 3, "1");
    s_wait_waiting (2);
    //  A new configuration: the old instances let them go
    zt_run_t result =
        zt_run_capture (30000, (char *[]){(char *)zt_program ("zubectl"), "--broker",
                                          s_cluster.endpoint, "--insecure", "scheduler",
                                          "config", "apply", "-f", s_config, NULL});
    ZT_ASSERT_EXIT (result, 0);
    zt_run_free (&result);
    s_wait_message ("hold-0", "the scheduler configuration changed");
    s_wait_message ("hold-1", "the scheduler configuration changed");
    //  Back after their back-off, waiting again under the new profile
    s_wait_waiting (2);
    //  One is deleted: the other is rejected by its unreserve
    zube_api_delete_options_t now = {.grace_period_seconds = 0};
    ZT_ASSERT_INT_EQ (
        zube_api_delete (s_cluster.api, "pods", "default", "hold-1", &now, NULL, NULL),
        ZUBE_OK);
    s_wait_message ("hold-0", "pod group hold: member hold-1 was unreserved");
    s_wait_waiting (0);
}

static void
test_gang_that_cannot_fit_binds_nothing (void)
{
    //  2 or 3 of the 4 CPUs of each node are left: one 2-CPU pod fits
    //  per node at most
    for (int i = 0; i < 6; i++) {
        char name[64];
        snprintf (name, sizeof name, "six-%d", i);
        s_create_pod (name, "six", 6, "2");
    }
    //  Until every pod reports the group's failure and the cache holds
    //  only the 7 bound pods; no pod of the six may have a node meanwhile
    int64_t until = zt_now_ms () + 20000;
    int reported = 0;
    long pods = -1;
    bool rejected_at_permit = false;
    while (zt_now_ms () < until && (reported < 6 || pods != 7)) {
        reported = 0;
        for (int i = 0; i < 6; i++) {
            char name[64];
            bool bound = false;
            snprintf (name, sizeof name, "six-%d", i);
            char *message = s_unschedulable (name, &bound);
            ZT_ASSERT_MSG (!bound, "%s of a gang that cannot fit was bound", name);
            if (message && (strstr (message, "pod group six") ||
                            strstr (message, "Insufficient cpu")))
                reported++;
            if (message && strstr (message, "rejected at permit by Coscheduling"))
                rejected_at_permit = true;
            free (message);
        }
        pods = s_stat ("pods");
        zube_bus_poll (s_cluster.bus, 100);
    }
    ZT_ASSERT_INT_EQ (reported, 6);
    ZT_ASSERT_INT_EQ (pods, 7);
    ZT_ASSERT_MSG (rejected_at_permit, "no pod says Coscheduling rejected it at permit");
    ZT_ASSERT_INT_EQ (s_stat ("binding"), 0);
    ZT_ASSERT_INT_EQ (s_stat ("waitingAtPermit"), 0);
}

static bool
s_setup (char *why, size_t size)
{
    if (!zt_cluster_start (&s_cluster, &(zt_cluster_options_t){.tag = "sched-gang"})) {
        snprintf (why, size, "%.400s", s_cluster.why);
        return false;
    }
    snprintf (s_config, sizeof s_config, "%s/scheduler.yaml", s_cluster.dir);
    if (!zt_write_file (s_config, s_config_text)) {
        snprintf (why, size, "cannot write %.400s", s_config);
        return false;
    }
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
    ZT_RUN (test_gang_of_four_binds);
    ZT_RUN (test_gang_arriving_one_at_a_time);
    ZT_RUN (test_waiting_pods_on_config_apply_and_delete);
    ZT_RUN (test_gang_that_cannot_fit_binds_nothing);
    zt_sched_stop (&s_cluster, s_zubelet, s_scheduler, false, 40);
    return zt_done ();
}
