/*  test_daemonset - the daemonset controller against a real broker,
    apiserver, scheduler and zubelets of hollow nodes: a DaemonSet with a
    nodeSelector gets one pod on each of 5 labelled nodes (pinned through
    node affinity matchFields, bound by the scheduler, with the daemon
    tolerations; status counted); a new labelled node gets one; a node
    labelled out of the selector loses its pod; a node tainted NoSchedule
    gets no pod of a new DaemonSet but keeps the old one's, and loses it
    when tainted NoExecute; a template change rolls every pod over; the controller's
   Events show in zubectl get events and describe. */
#include "../zt_ctrl.h"

static zt_cluster_t s_cluster;
static pid_t s_zubelet;
static pid_t s_late;
static pid_t s_scheduler;
static pid_t s_manager;

static const char *s_manager_flags[] = {"--controllers", "daemonset", NULL};

static void
s_patch_node (const char *name, const char *patch)
{
    zube_api_error_t error;
    ZT_ASSERT_MSG (zube_api_patch (s_cluster.api, "nodes", NULL, name, NULL, patch, NULL,
                                   false, NULL, &error) == ZUBE_OK,
                   "patch node %s: %.600s", name, error.message);
}

static void
s_create_ds (const char *name, const char *image)
{
    char yaml[1024];
    snprintf (yaml, sizeof yaml,
              "apiVersion: apps/v1\nkind: DaemonSet\n"
              "metadata: {name: %s, namespace: default}\n"
              "spec:\n  selector: {matchLabels: {app: %s}}\n"
              "  template:\n    metadata: {labels: {app: %s}}\n"
              "    spec:\n      nodeSelector: {ds: \"yes\"}\n"
              "      containers: [{name: c, image: %s}]\n",
              name, name, name, image);
    zt_cluster_create_yaml (&s_cluster, "daemonsets", "default",
                            &zube__daemon_set__descriptor, yaml, NULL);
}

//  The node a daemon pod is for (nodeName, else the affinity's pin)
static const char *
s_target (const Zube__Pod *pod)
{
    if (pod->spec->node_name && *pod->spec->node_name)
        return pod->spec->node_name;
    Zube__Affinity *affinity = pod->spec->affinity;
    Zube__NodeSelector *required =
        affinity && affinity->node_affinity
            ? affinity->node_affinity->required_during_scheduling_ignored_during_execution
            : NULL;
    if (required && required->n_node_selector_terms == 1 &&
        required->node_selector_terms[0]->n_match_fields == 1 &&
        required->node_selector_terms[0]->match_fields[0]->n_values == 1)
        return required->node_selector_terms[0]->match_fields[0]->values[0];
    return "?";
}

static int
s_compare (const void *a, const void *b)
{
    return strcmp (*(char *const *)a, *(char *const *)b);
}

//  "node,node,..." (sorted) of the DaemonSet's live pods; with running,
//  only those Running on the node they are for.
static void
s_nodes_of (const char *app, bool running, char *buf, size_t size)
{
    char selector[128];
    snprintf (selector, sizeof selector, "app=%s", app);
    zube_api_list_t *list = NULL;
    zube_api_list (
        s_cluster.api, "pods",
        &(zube_api_list_options_t){.namespace = "default", .label_selector = selector},
        &list, NULL);
    const char *names[64];
    size_t count = 0;
    for (size_t i = 0; list && i < list->count && count < 64; i++) {
        Zube__Pod *pod = (Zube__Pod *)list->items[i];
        if (pod->metadata->deletion_timestamp && *pod->metadata->deletion_timestamp)
            continue;
        if (running &&
            !(pod->status && pod->status->phase &&
              !strcmp (pod->status->phase, "Running") &&
              !strcmp (pod->spec->node_name ? pod->spec->node_name : "", s_target (pod))))
            continue;
        names[count++] = s_target (pod);
    }
    qsort (names, count, sizeof names[0], s_compare);
    buf[0] = 0;
    for (size_t i = 0; i < count; i++)
        snprintf (buf + strlen (buf), size - strlen (buf), "%s%s", i ? "," : "",
                  names[i]);
    zube_api_list_destroy (&list);
}

static bool
s_wait_nodes (const char *app, bool running, const char *want, int timeout_ms)
{
    char have[1024] = "";
    int64_t until = zt_now_ms () + timeout_ms;
    do {
        s_nodes_of (app, running, have, sizeof have);
        if (!strcmp (have, want))
            return true;
        zube_bus_poll (s_cluster.bus, 200);
    } while (zt_now_ms () < until);
    printf ("# %s: pods on [%s], want [%s]\n", app, have, want);
    return false;
}

static Zube__DaemonSet *
s_get_ds (const char *name)
{
    return (Zube__DaemonSet *)zt_ctrl_get (&s_cluster, "daemonsets", "default", name);
}

//  Waits until the status says desired = current = ready = updated = n,
//  misscheduled 0, at the current generation.
static bool
s_wait_status (const char *name, int n, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    do {
        Zube__DaemonSet *ds = s_get_ds (name);
        Zube__DaemonSetStatus *status = ds ? ds->status : NULL;
        bool done = status && status->desired_number_scheduled == n &&
                    status->current_number_scheduled == n && status->number_ready == n &&
                    status->updated_number_scheduled == n &&
                    status->number_misscheduled == 0 && status->number_available == n &&
                    status->observed_generation == ds->metadata->generation;
        if (!done && status && zt_now_ms () + 200 >= until)
            printf ("# %s status: desired %d current %d ready %d updated %d misscheduled "
                    "%d\n",
                    name, status->desired_number_scheduled,
                    status->current_number_scheduled, status->number_ready,
                    status->updated_number_scheduled, status->number_misscheduled);
        if (ds)
            protobuf_c_message_free_unpacked (&ds->base, NULL);
        if (done)
            return true;
        zube_bus_poll (s_cluster.bus, 200);
    } while (zt_now_ms () < until);
    return false;
}

#define S_FIVE "ds-0001,ds-0002,ds-0003,ds-0004,ds-0005"

static void
test_one_per_node (void)
{
    for (int i = 1; i <= 5; i++) {
        char name[32];
        snprintf (name, sizeof name, "ds-%04d", i);
        s_patch_node (name, "{\"metadata\":{\"labels\":{\"ds\":\"yes\"}}}");
    }
    s_create_ds ("agent", "busybox");
    ZT_ASSERT (s_wait_nodes ("agent", true, S_FIVE, 40000));
    ZT_ASSERT_MSG (s_wait_status ("agent", 5, 20000), "status not 5 everywhere");
    //  How the pods look
    zube_api_list_t *list = NULL;
    zube_api_list (
        s_cluster.api, "pods",
        &(zube_api_list_options_t){.namespace = "default", .label_selector = "app=agent"},
        &list, NULL);
    ZT_ASSERT (list && list->count == 5);
    Zube__Pod *pod = list && list->count ? (Zube__Pod *)list->items[0] : NULL;
    if (pod) {
        ZT_ASSERT_STR_EQ (pod->metadata->owner_references[0]->kind, "DaemonSet");
        ZT_ASSERT (pod->metadata->owner_references[0]->controller);
        ZT_ASSERT (strcmp (s_target (pod), "?") != 0);
        int daemon = 0;
        for (size_t i = 0; i < pod->spec->n_tolerations; i++) {
            Zube__Toleration *t = pod->spec->tolerations[i];
            if ((!strcmp (t->key, "node.kubernetes.io/unreachable") ||
                 !strcmp (t->key, "node.kubernetes.io/not-ready")) &&
                !strcmp (t->effect, "NoExecute"))
                ZT_ASSERT_MSG (!t->has_toleration_seconds,
                               "a daemon pod got tolerationSeconds");
            if (!strcmp (t->key, "node.kubernetes.io/unschedulable") &&
                !strcmp (t->effect, "NoSchedule"))
                daemon++;
        }
        ZT_ASSERT_INT_EQ (daemon, 1);
    }
    zube_api_list_destroy (&list);
}

static void
test_new_node (void)
{
    char log[700], state[700];
    snprintf (state, sizeof state, "%s/zubelet-late", s_cluster.dir);
    snprintf (log, sizeof log, "%s/zubelet-late.log", s_cluster.dir);
    char *argv[] = {(char *)zt_program ("zubelet"),
                    "--bus",
                    s_cluster.endpoint,
                    "--insecure",
                    "--node-name",
                    "late-0001",
                    "--state-dir",
                    state,
                    NULL};
    s_late = zt_spawn_tied (argv, log);
    ZT_ASSERT (zt_ctrl_wait_exists (&s_cluster, "nodes", NULL, "late-0001", true, 20000));
    //  Not labelled yet: no pod
    s_patch_node ("late-0001", "{\"metadata\":{\"labels\":{\"ds\":\"yes\"}}}");
    ZT_ASSERT (s_wait_nodes ("agent", true, S_FIVE ",late-0001", 30000));
    ZT_ASSERT_MSG (s_wait_status ("agent", 6, 20000), "status not 6 everywhere");
}

static void
test_labelled_out (void)
{
    s_patch_node ("ds-0005", "{\"metadata\":{\"labels\":{\"ds\":\"no\"}}}");
    ZT_ASSERT (s_wait_nodes ("agent", false, "ds-0001,ds-0002,ds-0003,ds-0004,late-0001",
                             30000));
    ZT_ASSERT_MSG (s_wait_status ("agent", 5, 20000), "status not 5 after the relabel");
}

static void
test_taints (void)
{
    s_patch_node ("ds-0004",
                  "{\"spec\":{\"taints\":[{\"key\":\"dedicated\",\"value\":\"db\","
                  "\"effect\":\"NoSchedule\"}]}}");
    s_create_ds ("second", "busybox");
    ZT_ASSERT (s_wait_nodes ("second", true, "ds-0001,ds-0002,ds-0003,late-0001", 30000));
    ZT_ASSERT_MSG (s_wait_status ("second", 4, 20000), "second: status not 4");
    //  The old DaemonSet's pod stays on the NoSchedule node...
    char have[512];
    s_nodes_of ("agent", false, have, sizeof have);
    ZT_ASSERT_STR_EQ (have, "ds-0001,ds-0002,ds-0003,ds-0004,late-0001");
    //  ...and goes when the taint is NoExecute
    s_patch_node ("ds-0004",
                  "{\"spec\":{\"taints\":[{\"key\":\"dedicated\",\"value\":\"db\","
                  "\"effect\":\"NoExecute\"}]}}");
    ZT_ASSERT (s_wait_nodes ("agent", false, "ds-0001,ds-0002,ds-0003,late-0001", 30000));
    ZT_ASSERT_MSG (s_wait_status ("agent", 4, 20000), "agent: status not 4");
}

static void
test_rolling_update (void)
{
    Zube__DaemonSet *ds = s_get_ds ("agent");
    ZT_ASSERT (ds != NULL);
    int64_t generation = ds ? ds->metadata->generation : 0;
    if (ds)
        protobuf_c_message_free_unpacked (&ds->base, NULL);
    zube_api_error_t error;
    ZT_ASSERT_MSG (
        zube_api_patch (s_cluster.api, "daemonsets", "default", "agent", NULL,
                        "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
                        "\"c\",\"image\":\"busybox:2\"}]}}}}",
                        NULL, false, NULL, &error) == ZUBE_OK,
        "patch: %.600s", error.message);
    ZT_ASSERT_MSG (s_wait_status ("agent", 4, 60000), "the update did not roll over");
    zube_api_list_t *list = NULL;
    zube_api_list (
        s_cluster.api, "pods",
        &(zube_api_list_options_t){.namespace = "default", .label_selector = "app=agent"},
        &list, NULL);
    int updated = 0;
    for (size_t i = 0; list && i < list->count; i++) {
        Zube__Pod *pod = (Zube__Pod *)list->items[i];
        if (!(pod->metadata->deletion_timestamp && *pod->metadata->deletion_timestamp))
            updated += !strcmp (pod->spec->containers[0]->image, "busybox:2");
    }
    zube_api_list_destroy (&list);
    ZT_ASSERT_INT_EQ (updated, 4);
    ds = s_get_ds ("agent");
    ZT_ASSERT (ds && ds->metadata->generation > generation);
    if (ds)
        protobuf_c_message_free_unpacked (&ds->base, NULL);
}

static zt_run_t
s_zubectl (const char *first, ...)
{
    const char *head[] = {zt_program ("zubectl"), "--broker", s_cluster.endpoint,
                          "--insecure",           first,      NULL};
    va_list args;
    va_start (args, first);
    zt_run_t result = zt_run_capture_va (20000, head, args);
    va_end (args);
    return result;
}

//  The controller's Events through zubectl: get events (kubectl's
//  columns, no NAME), and the Events section of describe
static void
test_events (void)
{
    zt_run_t run = s_zubectl ("get", "events", NULL);
    ZT_ASSERT_INT_EQ (run.status, 0);
    const char *out = run.out ? run.out : "";
    ZT_ASSERT_MSG (strncmp (out, "LAST SEEN", 9) == 0, "header: %.200s", out);
    ZT_ASSERT (strstr (out, "TYPE") && strstr (out, "REASON") && strstr (out, "OBJECT") &&
               strstr (out, "MESSAGE") && !strstr (out, "NAME "));
    ZT_ASSERT_MSG (strstr (out, "daemonset/agent") && strstr (out, "SuccessfulCreate") &&
                       strstr (out, "Created pod: agent-"),
                   "get events: %.600s", out);
    zt_run_free (&run);
    run = s_zubectl ("describe", "daemonset", "agent", NULL);
    ZT_ASSERT_INT_EQ (run.status, 0);
    out = run.out ? run.out : "";
    const char *events = strstr (out, "Events:");
    ZT_ASSERT_MSG (events && strstr (events, "SuccessfulCreate") &&
                       strstr (events, "daemonset-controller"),
                   "describe: %.800s", out);
    zt_run_free (&run);
    run = s_zubectl ("get", "daemonsets", NULL);
    ZT_ASSERT_MSG (run.out && strstr (run.out, "NODE SELECTOR") &&
                       strstr (run.out, "ds=yes"),
                   "get daemonsets: %.400s", run.out ? run.out : "");
    zt_run_free (&run);
}

static bool
s_setup (char *why, size_t size)
{
    if (!zt_cluster_start (&s_cluster, &(zt_cluster_options_t){.tag = "daemonset"})) {
        snprintf (why, size, "%.300s", s_cluster.why);
        return false;
    }
    s_zubelet = zt_ctrl_zubelet (&s_cluster, 5, "ds-");
    s_scheduler = zt_ctrl_scheduler (&s_cluster);
    s_manager = zt_ctrl_start (&s_cluster, "controller-manager.log", s_manager_flags);
    if (!zt_ctrl_wait_ready (&s_cluster, 30000)) {
        snprintf (why, size, "the controller-manager did not become ready");
        return false;
    }
    if (!zt_ctrl_wait_exists (&s_cluster, "nodes", NULL, "ds-0005", true, 20000)) {
        snprintf (why, size, "the hollow nodes did not register");
        return false;
    }
    return true;
}

int
main (void)
{
    char why[512];
    bool ready = s_setup (why, sizeof why);
    if (ready) {
        ZT_RUN (test_one_per_node);
        ZT_RUN (test_new_node);
        ZT_RUN (test_labelled_out);
        ZT_RUN (test_taints);
        ZT_RUN (test_rolling_update);
        ZT_RUN (test_events);
    } else
        printf ("not ok 1 - setup\n# %s\n", why);
    bool failed = !ready || zt_failed_count > 0;
    if (failed)
        zt_cluster_log_tail (&s_cluster, "controller-manager.log", 40);
    zt_stop (s_manager, SIGTERM, 10000);
    if (s_scheduler > 0)
        zt_stop (s_scheduler, SIGTERM, 10000);
    if (s_zubelet > 0)
        zt_stop (s_zubelet, SIGTERM, 10000);
    if (s_late > 0)
        zt_stop (s_late, SIGTERM, 10000);
    zt_cluster_stop (&s_cluster, failed);
    if (!ready) {
        printf ("1..1\n");
        return 1;
    }
    return zt_done ();
}
