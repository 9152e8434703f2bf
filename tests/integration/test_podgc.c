/*  test_podgc - the pod garbage collector with a zubelet of hollow nodes:
    pods bound to a node that is deleted are deleted after the quarantine
    (1 s here), pods of live nodes stay; terminated pods beyond the
    threshold (3 here) are deleted oldest first, running ones never. */
#include "../zt_workloads.h"

static zt_workloads_t s_env;

static const char *s_manager_flags[] = {"--controllers",
                                        "podgc",
                                        "--controller-arg",
                                        "podgc.terminatedPodGCThreshold=3",
                                        "--controller-arg",
                                        "podgc.orphanQuarantine=1s",
                                        NULL};

static void
s_pod (const char *name, const char *node, const char *run)
{
    char yaml[800];
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n"
              "  annotations: {sim.zube.io/run-duration: \"%s\"}\n"
              "spec: {nodeName: %s, restartPolicy: Never, containers: [{name: c, image: "
              "busybox}]}\n",
              name, run, node);
    zt_cluster_create_yaml (&s_env.cluster, "pods", "default", &zube__pod__descriptor,
                            yaml, NULL);
}

static bool
s_exists (const char *pod)
{
    return zt_ctrl_wait_exists (&s_env.cluster, "pods", "default", pod, true, 1);
}

static void
test_orphaned_pods (void)
{
    //  A node no zubelet runs: its pods stay Pending until it goes
    zt_cluster_create_yaml (&s_env.cluster, "nodes", NULL, &zube__node__descriptor,
                            "apiVersion: v1\nkind: Node\nmetadata: {name: ghost}\n",
                            NULL);
    s_pod ("on-ghost-1", "ghost", "forever");
    s_pod ("on-ghost-2", "ghost", "forever");
    s_pod ("on-live", "sim-0001", "forever");
    zube_bus_poll (s_env.cluster.bus, 1500);
    ZT_ASSERT (s_exists ("on-ghost-1") && s_exists ("on-ghost-2"));
    ZT_ASSERT_INT_EQ (
        zube_api_delete (s_env.cluster.api, "nodes", NULL, "ghost", NULL, NULL, NULL),
        ZUBE_OK);
    ZT_ASSERT_MSG (zt_ctrl_wait_exists (&s_env.cluster, "pods", "default", "on-ghost-1",
                                        false, 20000) &&
                       zt_ctrl_wait_exists (&s_env.cluster, "pods", "default",
                                            "on-ghost-2", false, 20000),
                   "the pods of the deleted node stay");
    ZT_ASSERT (s_exists ("on-live"));
}

static int
s_phase_count (const char *phase)
{
    zube_api_list_t *pods = NULL;
    zube_api_list (s_env.cluster.api, "pods",
                   &(zube_api_list_options_t){.namespace = "default"}, &pods, NULL);
    int count = 0;
    for (size_t i = 0; pods && i < pods->count; i++) {
        Zube__Pod *pod = (Zube__Pod *)pods->items[i];
        count += pod->status && pod->status->phase && !strcmp (pod->status->phase, phase);
    }
    zube_api_list_destroy (&pods);
    return count;
}

static void
test_terminated_threshold (void)
{
    //  Two old ones, then three newer (creation times are in seconds)
    s_pod ("done-1", "sim-0001", "100ms");
    s_pod ("done-2", "sim-0002", "100ms");
    zube_bus_poll (s_env.cluster.bus, 1100);
    s_pod ("done-3", "sim-0001", "100ms");
    s_pod ("done-4", "sim-0002", "100ms");
    s_pod ("done-5", "sim-0001", "100ms");
    //  Until the two oldest are gone
    ZT_ASSERT_MSG (
        zt_ctrl_wait_exists (&s_env.cluster, "pods", "default", "done-1", false, 30000) &&
            zt_ctrl_wait_exists (&s_env.cluster, "pods", "default", "done-2", false,
                                 30000),
        "the oldest terminated pods stay (%d Succeeded)", s_phase_count ("Succeeded"));
    int64_t until = zt_now_ms () + 20000;
    while (s_phase_count ("Succeeded") != 3 && zt_now_ms () < until)
        zube_bus_poll (s_env.cluster.bus, 100);
    ZT_ASSERT_INT_EQ (s_phase_count ("Succeeded"), 3);
    ZT_ASSERT (s_exists ("done-3") && s_exists ("done-4") && s_exists ("done-5"));
    //  The running pod is not terminated: kept
    ZT_ASSERT (s_exists ("on-live"));
}

int
main (void)
{
    if (zt_workloads_start (&s_env, "podgc", 2, s_manager_flags)) {
        ZT_RUN (test_orphaned_pods);
        ZT_RUN (test_terminated_threshold);
    }
    return zt_workloads_finish (&s_env);
}
