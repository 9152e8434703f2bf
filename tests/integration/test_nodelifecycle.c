/*  test_nodelifecycle - the nodelifecycle controller against a real
    broker, apiserver, scheduler, replicaset controller and two zubelets
    of hollow nodes (short settings: grace 4 s, leases renewed every
    second): the zubelet of one node is stopped (SIGSTOP), so its Lease is
    no longer renewed: the node goes Ready Unknown with the unreachable
    taints (NoSchedule and NoExecute) within grace + 5 s of the Lease's
    last renewTime (issue 6, by the times the controller wrote), a pod
    that does not tolerate the taint is evicted at once, one tolerating it
    for 4 s after those (its eviction Event no earlier than the taint's
    timeAdded + 4 s), one tolerating it forever stays, and the
    ReplicaSet's pods there are replaced by pods Running on the other
    nodes; the zubelet continued, the node is Ready again and the taints
    are gone. Two of six nodes stop: NoExecute taints one limiter token
    apart. Then every node stops: full disruption, no NoExecute taint.
    The apiserver's DefaultTolerationSeconds is checked on the way. */
#define _GNU_SOURCE
#include "../zt_ctrl.h"
#include "coordination.pb-c.h"
#include <time.h>

static zt_cluster_t s_cluster;
static pid_t s_alive;
static pid_t s_dead;
static pid_t s_pair;
static pid_t s_scheduler;
static pid_t s_manager;

#define S_DEAD_NODE "dead-0001"
#define S_GRACE_MS 4000

static const char *s_manager_flags[] = {"--controllers",
                                        "nodelifecycle,replicaset",
                                        "--controller-arg",
                                        "nodelifecycle.node-monitor-grace-period=4s",
                                        "--controller-arg",
                                        "nodelifecycle.node-monitor-period=500ms",
                                        "--controller-arg",
                                        "nodelifecycle.node-eviction-rate=0.2",
                                        NULL};

static pid_t
s_zubelet (int count, const char *prefix)
{
    char nodes[16], state[700], log[700];
    snprintf (nodes, sizeof nodes, "%d", count);
    snprintf (state, sizeof state, "%s/zubelet-%s", s_cluster.dir, prefix);
    snprintf (log, sizeof log, "%s/zubelet-%s.log", s_cluster.dir, prefix);
    char *argv[] = {(char *)zt_program ("zubelet"),
                    "--bus",
                    s_cluster.endpoint,
                    "--insecure",
                    "--nodes",
                    nodes,
                    "--node-name-prefix",
                    (char *)prefix,
                    "--state-dir",
                    state,
                    "--node-status-update-frequency",
                    "1s",
                    NULL};
    return zt_spawn_tied (argv, log);
}

static Zube__Node *
s_node (const char *name)
{
    return (Zube__Node *)zt_ctrl_get (&s_cluster, "nodes", NULL, name);
}

static const char *
s_ready (const Zube__Node *node)
{
    for (size_t i = 0; node && node->status && i < node->status->n_conditions; i++)
        if (!strcmp (node->status->conditions[i]->type, "Ready"))
            return node->status->conditions[i]->status;
    return NULL;
}

static bool
s_has_taint (const Zube__Node *node, const char *key, const char *effect)
{
    for (size_t i = 0; node && node->spec && i < node->spec->n_taints; i++)
        if (!strcmp (node->spec->taints[i]->key, key) &&
            !strcmp (node->spec->taints[i]->effect, effect))
            return true;
    return false;
}

//  Waits until the node's Ready status is ready and it has (tainted) or
//  has not the unreachable taints of both effects.
static bool
s_wait_node (const char *name, const char *ready, bool tainted, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    do {
        Zube__Node *node = s_node (name);
        bool done =
            node && s_ready (node) && !strcmp (s_ready (node), ready) &&
            s_has_taint (node, "node.kubernetes.io/unreachable", "NoExecute") ==
                tainted &&
            s_has_taint (node, "node.kubernetes.io/unreachable", "NoSchedule") == tainted;
        if (node)
            protobuf_c_message_free_unpacked (&node->base, NULL);
        if (done)
            return true;
        zube_bus_poll (s_cluster.bus, 100);
    } while (zt_now_ms () < until);
    return false;
}

static void
s_pod_on (const char *name, const char *node, const char *tolerations)
{
    char yaml[1024];
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: Pod\n"
              "metadata: {name: %s, namespace: default, labels: {test: nlc}}\n"
              "spec:\n  nodeName: %s\n  containers: [{name: c, image: busybox}]\n%s",
              name, node, tolerations);
    zt_cluster_create_yaml (&s_cluster, "pods", "default", &zube__pod__descriptor, yaml,
                            NULL);
}

//  Gone, or marked for deletion
static bool
s_evicted (const char *name)
{
    Zube__Pod *pod = (Zube__Pod *)zt_ctrl_get (&s_cluster, "pods", "default", name);
    bool evicted =
        !pod || (pod->metadata->deletion_timestamp && *pod->metadata->deletion_timestamp);
    if (pod)
        protobuf_c_message_free_unpacked (&pod->base, NULL);
    return evicted;
}

static bool
s_wait_running (const char *name, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    do {
        Zube__Pod *pod = (Zube__Pod *)zt_ctrl_get (&s_cluster, "pods", "default", name);
        bool running = pod && pod->status && pod->status->phase &&
                       !strcmp (pod->status->phase, "Running");
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        if (running)
            return true;
        zube_bus_poll (s_cluster.bus, 100);
    } while (zt_now_ms () < until);
    return false;
}

//  Counts the ReplicaSet's active pods: on the dead node, and Running on
//  the others.
static void
s_count_web (int *on_dead, int *running_elsewhere, int *active)
{
    *on_dead = *running_elsewhere = *active = 0;
    zube_api_list_t *list = NULL;
    zube_api_list (
        s_cluster.api, "pods",
        &(zube_api_list_options_t){.namespace = "default", .label_selector = "app=web"},
        &list, NULL);
    for (size_t i = 0; list && i < list->count; i++) {
        Zube__Pod *pod = (Zube__Pod *)list->items[i];
        if (pod->metadata->deletion_timestamp && *pod->metadata->deletion_timestamp)
            continue;
        (*active)++;
        const char *node = pod->spec->node_name;
        if (node && !strcmp (node, S_DEAD_NODE))
            (*on_dead)++;
        else if (node && *node && pod->status && pod->status->phase &&
                 !strcmp (pod->status->phase, "Running"))
            (*running_elsewhere)++;
    }
    zube_api_list_destroy (&list);
}

static void
test_default_toleration_seconds (void)
{
    s_pod_on ("defaults", "alive-0001", "");
    Zube__Pod *pod = (Zube__Pod *)zt_ctrl_get (&s_cluster, "pods", "default", "defaults");
    ZT_ASSERT (pod != NULL);
    int found = 0;
    for (size_t i = 0; pod && i < pod->spec->n_tolerations; i++) {
        Zube__Toleration *t = pod->spec->tolerations[i];
        if ((!strcmp (t->key, "node.kubernetes.io/not-ready") ||
             !strcmp (t->key, "node.kubernetes.io/unreachable")) &&
            !strcmp (t->effect, "NoExecute") && !strcmp (t->operator_, "Exists") &&
            t->has_toleration_seconds && t->toleration_seconds == 300)
            found++;
    }
    ZT_ASSERT_INT_EQ (found, 2);
    if (pod)
        protobuf_c_message_free_unpacked (&pod->base, NULL);
}

//  Holds (NoSchedule taint test/hold) or releases every node but the one
//  about to die, so the ReplicaSet's pods all land there
static void
s_hold_others (bool hold)
{
    static const char *const others[] = {"alive-0001", "alive-0002", "alive-0003",
                                         "pair-0001", "pair-0002"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        zube_api_error_t error;
        const char *patch = hold ? "{\"spec\":{\"taints\":[{\"key\":\"test/hold\","
                                   "\"effect\":\"NoSchedule\"}]}}"
                                 : "{\"spec\":{\"taints\":null}}";
        ZT_ASSERT_MSG (zube_api_patch (s_cluster.api, "nodes", NULL, others[i], NULL,
                                       patch, NULL, false, NULL, &error) == ZUBE_OK,
                       "patch %s: %.400s", others[i], error.message);
    }
}

//  The NoExecute taint's timeAdded of a node, 0 when it has none
static int64_t
s_no_execute_added (const char *name)
{
    Zube__Node *node = s_node (name);
    int64_t added = 0;
    for (size_t i = 0; node && node->spec && i < node->spec->n_taints; i++) {
        Zube__Taint *taint = node->spec->taints[i];
        if (!strcmp (taint->key, "node.kubernetes.io/unreachable") &&
            !strcmp (taint->effect, "NoExecute"))
            added = zt_time_ms (taint->time_added) / 1000;
    }
    if (node)
        protobuf_c_message_free_unpacked (&node->base, NULL);
    return added;
}

static void
test_unreachable_node (void)
{
    //  A ReplicaSet whose pods all land on the node about to die
    s_hold_others (true);
    zt_cluster_create_yaml (
        &s_cluster, "replicasets", "default", &zube__replica_set__descriptor,
        "apiVersion: apps/v1\nkind: ReplicaSet\n"
        "metadata: {name: web, namespace: default}\n"
        "spec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n"
        "  template:\n    metadata: {labels: {app: web}}\n"
        "    spec:\n      containers: [{name: c, image: busybox}]\n"
        "      tolerations:\n"
        "      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: "
        "NoExecute,"
        " tolerationSeconds: 1}\n"
        "      affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution:"
        " [{weight: 100, preference: {matchExpressions: [{key: kubernetes.io/hostname,"
        " operator: In, values: [" S_DEAD_NODE "]}]}}]}}\n",
        NULL);
    //  Not tolerating the taint (the value differs), tolerating it 4 s,
    //  tolerating it forever
    s_pod_on ("intolerant", S_DEAD_NODE,
              "  tolerations: [{key: node.kubernetes.io/unreachable, operator: Equal,"
              " value: other, effect: NoExecute}]\n");
    s_pod_on ("patient", S_DEAD_NODE,
              "  tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists,"
              " effect: NoExecute, tolerationSeconds: 4}]\n");
    s_pod_on ("stubborn", S_DEAD_NODE,
              "  tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists,"
              " effect: NoExecute}]\n");
    ZT_ASSERT (s_wait_running ("intolerant", 30000));
    ZT_ASSERT (s_wait_running ("patient", 30000));
    ZT_ASSERT (s_wait_running ("stubborn", 30000));
    int on_dead = 0, elsewhere = 0, active = 0;
    int64_t until = zt_now_ms () + 30000;
    do {
        zube_bus_poll (s_cluster.bus, 200);
        s_count_web (&on_dead, &elsewhere, &active);
    } while (on_dead < 3 && zt_now_ms () < until);
    s_hold_others (false);
    printf ("# web: %d on %s, %d Running elsewhere\n", on_dead, S_DEAD_NODE, elsewhere);
    ZT_ASSERT_MSG (on_dead == 3, "the ReplicaSet's pods are not all on %s", S_DEAD_NODE);
    ZT_ASSERT_MSG (s_wait_node (S_DEAD_NODE, "True", false, 10000),
                   "the node is not Ready");

    //  Heartbeats stop
    ZT_ASSERT_INT_EQ (kill (s_dead, SIGSTOP), 0);
    int64_t stopped = zt_now_ms ();
    ZT_ASSERT_MSG (s_wait_node (S_DEAD_NODE, "Unknown", true, 4000 + 5000 + 20000),
                   "no Ready Unknown and unreachable taints");
    printf ("# Unknown and tainted %.1f s after the stop (grace 4 s)\n",
            (double)(zt_now_ms () - stopped) / 1000.0);
    Zube__Node *node = s_node (S_DEAD_NODE);
    int64_t unknown_ms = 0;
    for (size_t i = 0; node && i < node->status->n_conditions; i++)
        if (!strcmp (node->status->conditions[i]->type, "Ready")) {
            ZT_ASSERT_STR_EQ (node->status->conditions[i]->reason, "NodeStatusUnknown");
            ZT_ASSERT_STR_EQ (node->status->conditions[i]->message,
                              "Kubelet stopped posting node status.");
            unknown_ms = zt_time_ms (node->status->conditions[i]->last_transition_time);
        }
    if (node)
        protobuf_c_message_free_unpacked (&node->base, NULL);
    //  Issue 6: NotReady and tainted within grace + 5 s of the last
    //  heartbeat, by the times the controller wrote (whole seconds,
    //  truncated) against the Lease's last renewTime; and not before the
    //  grace period ran out (a second of truncation allowed)
    int64_t tainted_ms = s_no_execute_added (S_DEAD_NODE) * 1000;
    Zube__Lease *lease =
        (Zube__Lease *)zt_ctrl_get (&s_cluster, "leases", "kube-node-lease", S_DEAD_NODE);
    int64_t renewed_ms = lease && lease->spec ? zt_time_ms (lease->spec->renew_time) : 0;
    if (lease)
        protobuf_c_message_free_unpacked (&lease->base, NULL);
    printf ("# Ready Unknown %.1f s, NoExecute taint %.1f s after the last renewal\n",
            (double)(unknown_ms - renewed_ms) / 1000.0,
            (double)(tainted_ms - renewed_ms) / 1000.0);
    ZT_ASSERT_MSG (renewed_ms && unknown_ms && tainted_ms,
                   "no renewTime, Ready lastTransitionTime or taint timeAdded");
    ZT_ASSERT_MSG (unknown_ms - renewed_ms <= S_GRACE_MS + 5000,
                   "Ready Unknown %lld ms after the last renewal, past grace + 5 s",
                   (long long)(unknown_ms - renewed_ms));
    ZT_ASSERT_MSG (tainted_ms - renewed_ms <= S_GRACE_MS + 5000,
                   "tainted %lld ms after the last renewal, past grace + 5 s",
                   (long long)(tainted_ms - renewed_ms));
    ZT_ASSERT_MSG (
        unknown_ms > renewed_ms + S_GRACE_MS - 1000,
        "Ready Unknown %lld ms after the last renewal, within the grace period",
        (long long)(unknown_ms - renewed_ms));
    bool intolerant = false;
    until = zt_now_ms () + 15000;
    while (!intolerant && zt_now_ms () < until) {
        intolerant = s_evicted ("intolerant");
        zube_bus_poll (s_cluster.bus, 100);
    }
    ZT_ASSERT_MSG (intolerant, "the pod without a matching toleration was not evicted");
    bool patient = false;
    until = zt_now_ms () + 30000;
    while (!patient && zt_now_ms () < until) {
        patient = s_evicted ("patient");
        zube_bus_poll (s_cluster.bus, 100);
    }
    ZT_ASSERT_MSG (patient, "the pod tolerating 4 s was not evicted");
    //  The replacements run on the live nodes
    until = zt_now_ms () + 30000;
    do {
        zube_bus_poll (s_cluster.bus, 200);
        s_count_web (&on_dead, &elsewhere, &active);
    } while ((on_dead || elsewhere < 3) && zt_now_ms () < until);
    printf ("# after eviction web: %d on %s, %d Running elsewhere\n", on_dead,
            S_DEAD_NODE, elsewhere);
    ZT_ASSERT_INT_EQ (on_dead, 0);
    ZT_ASSERT_INT_EQ (elsewhere, 3);
    ZT_ASSERT_MSG (!s_evicted ("stubborn"), "the pod tolerating forever was evicted");
    //  The eviction is an Event of the pod
    zube_api_list_t *events = NULL;
    zube_api_list (
        s_cluster.api, "events",
        &(zube_api_list_options_t){.namespace = "default",
                                   .field_selector = "involvedObject.name=patient"},
        &events, NULL);
    int64_t evicted_ms = 0;
    for (size_t i = 0; events && i < events->count; i++) {
        const Zube__Event *event = (const Zube__Event *)events->items[i];
        if (!strcmp (event->reason, "TaintManagerEviction"))
            evicted_ms = zt_time_ms (event->first_timestamp);
    }
    zube_api_list_destroy (&events);
    ZT_ASSERT_MSG (evicted_ms, "no TaintManagerEviction event (with a time) for the pod");
    //  Evicted after its tolerationSeconds, counted (as Kubernetes does)
    //  from the taint's timeAdded: both whole seconds, so exactly
    printf ("# the pod tolerating 4 s evicted %.1f s after the taint\n",
            (double)(evicted_ms - tainted_ms) / 1000.0);
    ZT_ASSERT_MSG (evicted_ms >= tainted_ms + 4000,
                   "the pod tolerating 4 s was evicted %lld ms after the taint",
                   (long long)(evicted_ms - tainted_ms));

    //  Heartbeats again: Ready, untainted
    ZT_ASSERT_INT_EQ (kill (s_dead, SIGCONT), 0);
    ZT_ASSERT_MSG (s_wait_node (S_DEAD_NODE, "True", false, 20000),
                   "the node came back but stays Unknown or tainted");
    ZT_ASSERT_MSG (!s_evicted ("stubborn"), "the pod tolerating forever was evicted");
}

//  Two of six nodes silent: the zone stays Normal (not more than 2 down),
//  so both are tainted NoExecute, one token of the limiter (0.2 nodes/s
//  here, burst 1) apart: timeAdded at least 4 s apart.
static void
test_rate_limited (void)
{
    ZT_ASSERT_INT_EQ (kill (s_pair, SIGSTOP), 0);
    int64_t first = 0, second = 0;
    int64_t until = zt_now_ms () + 40000;
    while ((!first || !second) && zt_now_ms () < until) {
        first = s_no_execute_added ("pair-0001");
        second = s_no_execute_added ("pair-0002");
        zube_bus_poll (s_cluster.bus, 200);
    }
    kill (s_pair, SIGCONT);
    printf ("# NoExecute taints %lld s apart\n", (long long)(second - first));
    ZT_ASSERT_MSG (first && second, "the two silent nodes were not both tainted");
    ZT_ASSERT_MSG (llabs (second - first) >= 4,
                   "tainted %lld s apart, the limiter allows one per 5 s",
                   (long long)llabs (second - first));
    ZT_ASSERT_MSG (s_wait_node ("pair-0001", "True", false, 20000), "pair-0001 not back");
    ZT_ASSERT_MSG (s_wait_node ("pair-0002", "True", false, 20000), "pair-0002 not back");
}

//  Every node silent: the one zone is fully disrupted, so the nodes get
//  the NoSchedule taint only, and NoExecute taints put on the first ones
//  while others were still Ready are taken off again.
static void
test_full_disruption (void)
{
    ZT_ASSERT_INT_EQ (kill (s_alive, SIGSTOP), 0);
    ZT_ASSERT_INT_EQ (kill (s_dead, SIGSTOP), 0);
    ZT_ASSERT_INT_EQ (kill (s_pair, SIGSTOP), 0);
    static const char *const names[] = {"alive-0001", "alive-0002", "alive-0003",
                                        S_DEAD_NODE,  "pair-0001",  "pair-0002"};
    bool settled = false;
    int64_t until = zt_now_ms () + 40000;
    while (!settled && zt_now_ms () < until) {
        settled = true;
        for (size_t i = 0; i < sizeof names / sizeof names[0] && settled; i++) {
            Zube__Node *node = s_node (names[i]);
            settled =
                node && s_ready (node) && !strcmp (s_ready (node), "Unknown") &&
                s_has_taint (node, "node.kubernetes.io/unreachable", "NoSchedule") &&
                !s_has_taint (node, "node.kubernetes.io/unreachable", "NoExecute");
            if (node)
                protobuf_c_message_free_unpacked (&node->base, NULL);
        }
        zube_bus_poll (s_cluster.bus, 200);
    }
    kill (s_alive, SIGCONT);
    kill (s_dead, SIGCONT);
    kill (s_pair, SIGCONT);
    ZT_ASSERT_MSG (settled,
                   "not every node Unknown with NoSchedule and without NoExecute");
    ZT_ASSERT_MSG (!s_evicted ("stubborn"), "the pod tolerating forever was evicted");
    ZT_ASSERT_MSG (s_wait_node ("alive-0001", "True", false, 20000),
                   "the nodes did not come back");
}

//  A bad setting stops the start, naming the setting and the value
static void
test_bad_settings (void)
{
    zt_run_t run = zt_run_capture (
        20000, (char *[]){(char *)zt_program ("zube-controller-manager"), "--bus",
                          s_cluster.endpoint, "--insecure", "--controllers",
                          "nodelifecycle,daemonset", "--controller-arg",
                          "nodelifecycle.node-monitor-grace-period=soon", NULL});
    ZT_ASSERT_INT_EQ (run.status, 1);
    ZT_ASSERT_MSG (run.err && strstr (run.err, "node-monitor-grace-period") &&
                       strstr (run.err, "\"soon\""),
                   "stderr: %.400s", run.err ? run.err : "");
    zt_run_free (&run);
    run = zt_run_capture (
        20000, (char *[]){(char *)zt_program ("zube-controller-manager"), "--bus",
                          s_cluster.endpoint, "--insecure", "--controllers", "daemonset",
                          "--controller-arg", "daemonset.placement=anywhere", NULL});
    ZT_ASSERT_INT_EQ (run.status, 1);
    ZT_ASSERT_MSG (run.err && strstr (run.err, "placement") &&
                       strstr (run.err, "anywhere"),
                   "stderr: %.400s", run.err ? run.err : "");
    zt_run_free (&run);
}

static bool
s_setup (char *why, size_t size)
{
    if (!zt_cluster_start (&s_cluster, &(zt_cluster_options_t){.tag = "nodelifecycle"})) {
        snprintf (why, size, "%.300s", s_cluster.why);
        return false;
    }
    s_alive = s_zubelet (3, "alive-");
    s_dead = s_zubelet (1, "dead-");
    s_pair = s_zubelet (2, "pair-");
    s_scheduler = zt_ctrl_scheduler (&s_cluster);
    s_manager = zt_ctrl_start (&s_cluster, "controller-manager.log", s_manager_flags);
    if (!zt_ctrl_wait_ready (&s_cluster, 30000)) {
        zt_cluster_log_tail (&s_cluster, "controller-manager.log", 30);
        snprintf (why, size, "the controller-manager did not become ready");
        return false;
    }
    return zt_ctrl_wait_exists (&s_cluster, "nodes", NULL, S_DEAD_NODE, true, 20000) &&
           zt_ctrl_wait_exists (&s_cluster, "nodes", NULL, "alive-0003", true, 20000) &&
           zt_ctrl_wait_exists (&s_cluster, "nodes", NULL, "pair-0002", true, 20000);
}

int
main (void)
{
    char why[512];
    bool ready = s_setup (why, sizeof why);
    if (ready) {
        ZT_RUN (test_default_toleration_seconds);
        ZT_RUN (test_unreachable_node);
        ZT_RUN (test_rate_limited);
        ZT_RUN (test_full_disruption);
        ZT_RUN (test_bad_settings);
    } else
        printf ("not ok 1 - setup\n# %s\n", why);
    bool failed = !ready || zt_failed_count > 0;
    if (failed)
        zt_cluster_log_tail (&s_cluster, "controller-manager.log", 40);
    if (s_alive > 0)
        kill (s_alive, SIGCONT);
    if (s_dead > 0)
        kill (s_dead, SIGCONT);
    if (s_pair > 0)
        kill (s_pair, SIGCONT);
    zt_stop (s_manager, SIGTERM, 10000);
    if (s_scheduler > 0)
        zt_stop (s_scheduler, SIGTERM, 10000);
    if (s_alive > 0)
        zt_stop (s_alive, SIGTERM, 10000);
    if (s_dead > 0)
        zt_stop (s_dead, SIGTERM, 10000);
    if (s_pair > 0)
        zt_stop (s_pair, SIGTERM, 10000);
    zt_cluster_stop (&s_cluster, failed);
    if (!ready) {
        printf ("1..1\n");
        return 1;
    }
    return zt_done ();
}
