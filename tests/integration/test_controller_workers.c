/*  test_controller_workers - zube-controller-manager runs as many syncs of
    a controller at once as its worker count, and keeps Kubernetes'
    workqueue guarantees meanwhile. The test controller of
    tests/plugins/ctrlprobe.c syncs the ConfigMaps of a namespace: each
    sync asks the apiserver (a call in which other syncs run) until it has
    seen another sync in flight, re-reads the cached object it holds, and
    writes the value of data.v it read into an annotation. With 4 workers
    syncs overlap (the plugin's and the host's counts), with 1 they never
    do; a key is never synced twice at once, and updates made while their
    key syncs are all synced after (every annotation ends equal to the
    last value), also across a swap of the plugin. Bad worker counts are
    refused with the setting or Kubernetes' flag named. */
#include "../zt_ctrl.h"

#define S_MAPS 24

static zt_cluster_t s_cluster;

static void
s_create (const char *resource, const ProtobufCMessageDescriptor *descriptor,
          const char *namespace_, const char *yaml)
{
    zt_cluster_create_yaml (&s_cluster, resource, namespace_, descriptor, yaml, NULL);
}

static void
s_make_maps (const char *namespace_)
{
    char yaml[256];
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", namespace_);
    s_create ("namespaces", &zube__namespace__descriptor, NULL, yaml);
    for (int i = 0; i < S_MAPS; i++) {
        snprintf (yaml, sizeof yaml,
                  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: map-%02d}\n"
                  "data: {v: \"0\"}\n",
                  i);
        s_create ("configmaps", &zube__config_map__descriptor, namespace_, yaml);
    }
}

//  Sets data.v of every map to value.
static void
s_set_all (const char *namespace_, int value)
{
    char patch[64], name[32];
    snprintf (patch, sizeof patch, "{\"data\":{\"v\":\"%d\"}}", value);
    for (int i = 0; i < S_MAPS; i++) {
        snprintf (name, sizeof name, "map-%02d", i);
        zt_cluster_patch (&s_cluster, "configmaps", namespace_, name, patch);
    }
}

//  Maps whose annotation is not yet value
static int
s_unseen (const char *namespace_, int value)
{
    zube_api_list_t *list = zt_cluster_list (&s_cluster, "configmaps", namespace_, NULL);
    if (!list)
        return S_MAPS;
    char wanted[16];
    snprintf (wanted, sizeof wanted, "%d", value);
    int seen = 0;
    for (size_t i = 0; i < list->count; i++) {
        const Zube__ObjectMeta *meta = ((Zube__ConfigMap *)list->items[i])->metadata;
        for (size_t a = 0; meta && a < meta->n_annotations; a++)
            if (!strcmp (meta->annotations[a]->key, "probe.zube.io/seen") &&
                !strcmp (meta->annotations[a]->value, wanted))
                seen++;
    }
    zube_api_list_destroy (&list);
    return S_MAPS - seen;
}

//  Waits until every map's annotation says value; answers the maps left.
static int
s_wait_seen (const char *namespace_, int value)
{
    int left = S_MAPS;
    int64_t until = zt_now_ms () + 60000;
    while ((left = s_unseen (namespace_, value)) > 0 && zt_now_ms () < until)
        zube_bus_poll (s_cluster.bus, 100);
    return left;
}

//  The plugin's report: max in flight, overlaps, syncs (-1 each unread).
static void
s_report (const char *path, long *max_p, long *overlaps_p, long *syncs_p)
{
    *max_p = *overlaps_p = *syncs_p = -1;
    char *text = zt_read_file (path);
    if (text)
        sscanf (text, "max=%ld overlaps=%ld syncs=%ld", max_p, overlaps_p, syncs_p);
    free (text);
}

//  A controller-manager running ctrlprobe alone on namespace_ with
//  workers workers, reporting to report.
static pid_t
s_start (const char *namespace_, const char *workers, const char *report,
         const char *tries)
{
    static char plugins[700], arg_ns[200], arg_report[900], arg_workers[100],
        arg_tries[100];
    snprintf (plugins, sizeof plugins, "%s/tests/plugins",
              getenv ("ZUBE_BUILDDIR") ? getenv ("ZUBE_BUILDDIR") : "..");
    snprintf (arg_ns, sizeof arg_ns, "ctrlprobe.namespace=%s", namespace_);
    snprintf (arg_report, sizeof arg_report, "ctrlprobe.report=%s", report);
    snprintf (arg_workers, sizeof arg_workers, "ctrlprobe.workers=%s", workers);
    snprintf (arg_tries, sizeof arg_tries, "ctrlprobe.tries=%s", tries);
    const char *flags[] = {"--controllers",
                           "ctrlprobe",
                           "--plugin-path",
                           plugins,
                           "--leader-elect",
                           "false",
                           "--controller-arg",
                           arg_ns,
                           "--controller-arg",
                           arg_report,
                           "--controller-arg",
                           arg_workers,
                           "--controller-arg",
                           arg_tries,
                           NULL};
    char log[64];
    snprintf (log, sizeof log, "manager-%s.log", namespace_);
    return zt_ctrl_start (&s_cluster, log, flags);
}

static bool
s_stop (pid_t manager)
{
    int status = zt_stop (manager, SIGTERM, 20000);
    return WIFEXITED (status) && WEXITSTATUS (status) == 0;
}

static void
test_four_workers (void)
{
    char report[700];
    snprintf (report, sizeof report, "%s/report-a", s_cluster.dir);
    s_make_maps ("probe-a");
    pid_t manager = s_start ("probe-a", "4", report, "10");
    ZT_ASSERT_MSG (zt_ctrl_wait_ready (&s_cluster, 30000),
                   "the controller-manager did not become ready");
    ZT_ASSERT_INT_EQ (s_wait_seen ("probe-a", 0), 0);
    //  Updates while keys sync: each is synced after (dirty keys)
    for (int value = 1; value <= 3; value++)
        s_set_all ("probe-a", value);
    ZT_ASSERT_INT_EQ (s_wait_seen ("probe-a", 3), 0);
    long max = 0, overlaps = 0, syncs = 0;
    s_report (report, &max, &overlaps, &syncs);
    printf ("# 4 workers: %ld syncs, at most %ld at once, %ld overlaps of a key\n", syncs,
            max, overlaps);
    ZT_ASSERT_MSG (max >= 2 && max <= 4, "syncs at once: %ld (4 workers)", max);
    ZT_ASSERT_INT_EQ (overlaps, 0);
    ZT_ASSERT_MSG (syncs >= 2 * S_MAPS, "syncs: %ld", syncs);
    //  The host counts the same, and shows the count in use
    char *stats = zt_ctrl_stats (&s_cluster, 5000);
    ZT_ASSERT_MSG (stats && zt_sched_stat (stats, "workers") == 4, "stats: %s",
                   stats ? stats : "(none)");
    ZT_ASSERT_MSG (zt_sched_stat (stats, "max_in_flight") >= 2, "stats: %s", stats);
    free (stats);
    zt_run_t list =
        zt_ctrl_zubectl (&s_cluster, "plugin", "list", "--service", "controllers", NULL);
    ZT_ASSERT_EXIT (list, 0);
    ZT_ASSERT_STR_CONTAINS (list.out, "workers=4");
    zt_run_free (&list);

    //  Swap while syncs run: the old instance's syncs end first, the new
    //  one resyncs every key; no key twice at once, none lost
    char file[700];
    snprintf (file, sizeof file, "%s/tests/plugins/.libs/ctrlprobe.so",
              getenv ("ZUBE_BUILDDIR") ? getenv ("ZUBE_BUILDDIR") : "..");
    s_set_all ("probe-a", 4);
    zt_run_t swap = zt_ctrl_zubectl (&s_cluster, "plugin", "swap", file, "--service",
                                     "controllers", NULL);
    ZT_ASSERT_EXIT (swap, 0);
    zt_run_free (&swap);
    s_set_all ("probe-a", 5);
    ZT_ASSERT_INT_EQ (s_wait_seen ("probe-a", 5), 0);
    s_report (report, &max, &overlaps, &syncs);
    ZT_ASSERT_INT_EQ (overlaps, 0);
    ZT_ASSERT_MSG (syncs >= S_MAPS, "syncs after the swap: %ld", syncs);
    ZT_ASSERT_MSG (s_stop (manager), "the controller-manager did not stop cleanly");
}

static void
test_one_worker (void)
{
    char report[700];
    snprintf (report, sizeof report, "%s/report-b", s_cluster.dir);
    s_make_maps ("probe-b");
    pid_t manager = s_start ("probe-b", "1", report, "3");
    ZT_ASSERT_MSG (zt_ctrl_wait_ready (&s_cluster, 30000),
                   "the controller-manager did not become ready");
    ZT_ASSERT_INT_EQ (s_wait_seen ("probe-b", 0), 0);
    s_set_all ("probe-b", 1);
    s_set_all ("probe-b", 2);
    ZT_ASSERT_INT_EQ (s_wait_seen ("probe-b", 2), 0);
    long max = 0, overlaps = 0, syncs = 0;
    s_report (report, &max, &overlaps, &syncs);
    printf ("# 1 worker: %ld syncs, at most %ld at once, %ld overlaps of a key\n", syncs,
            max, overlaps);
    ZT_ASSERT_INT_EQ (max, 1);
    ZT_ASSERT_INT_EQ (overlaps, 0);
    char *stats = zt_ctrl_stats (&s_cluster, 5000);
    ZT_ASSERT_MSG (stats && zt_sched_stat (stats, "workers") == 1 &&
                       zt_sched_stat (stats, "max_in_flight") == 1,
                   "stats: %s", stats ? stats : "(none)");
    free (stats);
    ZT_ASSERT_MSG (s_stop (manager), "the controller-manager did not stop cleanly");
}

//  zube-controller-manager with --controllers controller and flag value
//  exits 1 with expected in its error.
static void
s_refused (const char *controller, const char *flag, const char *value,
           const char *expected)
{
    char *argv[] = {(char *)zt_program ("zube-controller-manager"),
                    "--bus",
                    s_cluster.endpoint,
                    "--insecure",
                    "--leader-elect",
                    "false",
                    "--controllers",
                    (char *)controller,
                    (char *)flag,
                    (char *)value,
                    NULL};
    zt_run_t result = zt_run_capture (20000, argv);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, expected);
    zt_run_free (&result);
}

static void
test_bad_worker_counts (void)
{
    const char *arg = "--controller-arg";
    s_refused ("serviceaccount", arg, "serviceaccount.workers=0",
               "serviceaccount.workers=0: expected a whole number from 1 to 64");
    s_refused ("serviceaccount", arg, "serviceaccount.workers=65", "from 1 to 64");
    s_refused ("serviceaccount", arg, "serviceaccount.workers=two", "from 1 to 64");
    //  A plugin that declares one worker was not made safe for more
    s_refused ("serviceaccount", arg, "serviceaccount.workers=3",
               "the serviceaccount plugin runs one sync at a time");
    //  Kubernetes' flag names, checked as flags and mapped to the setting
    s_refused ("garbagecollector", "--concurrent-gc-syncs", "0",
               "--concurrent-gc-syncs: expected a whole number from 1 to 64");
    s_refused ("daemonset", "--concurrent-daemonset-syncs", "2",
               "daemonset.workers=2: the daemonset plugin runs one sync at a time");
}

int
main (void)
{
    if (!zt_cluster_start (&s_cluster, &(zt_cluster_options_t){.tag = "ctrlworkers"})) {
        printf ("not ok 1 - setup\n# %s\n1..1\n", s_cluster.why);
        zt_cluster_stop (&s_cluster, true);
        return 1;
    }
    ZT_RUN (test_four_workers);
    ZT_RUN (test_one_worker);
    ZT_RUN (test_bad_worker_counts);
    bool failed = zt_failed_count > 0;
    if (failed) {
        zt_cluster_log_tail (&s_cluster, "manager-probe-a.log", 30);
        zt_cluster_log_tail (&s_cluster, "manager-probe-b.log", 30);
    }
    zt_cluster_stop (&s_cluster, failed);
    return zt_done ();
}
