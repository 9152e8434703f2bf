/*  test_garbagecollector - the garbage collector with the replicaset
    controller, a scheduler and a zubelet of hollow nodes: deleting a
    ReplicaSet (background) deletes its pods; with propagationPolicy Orphan
    the pods stay, without their ownerReference; with Foreground the
    ReplicaSet stays (foregroundDeletion) until its pods are gone; an
    object whose only owner never existed is deleted, one with a live
    owner and a gone one only loses the reference to the gone one; a
    deleted Job's pods (with the job-tracking finalizer) all go. */
#include "../zt_workloads.h"
#include "batch.pb-c.h"

static zt_workloads_t s_env;
static pid_t s_scheduler;

static const char *s_manager_flags[] = {"--controllers",
                                        "replicaset,garbagecollector,job", NULL};

static zube_api_list_t *
s_pods (const char *app)
{
    char selector[128];
    snprintf (selector, sizeof selector, "app=%s", app);
    return zt_cluster_list (&s_env.cluster, "pods", "default", selector);
}

static size_t
s_pod_count (const char *app)
{
    zube_api_list_t *list = s_pods (app);
    size_t count = list ? list->count : 0;
    zube_api_list_destroy (&list);
    return count;
}

//  A ReplicaSet of app with replicas running pods.
static void
s_replicaset (const char *app, int replicas)
{
    char yaml[1024];
    snprintf (yaml, sizeof yaml,
              "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: %s}\n"
              "spec:\n  replicas: %d\n  selector: {matchLabels: {app: %s}}\n"
              "  template:\n    metadata: {labels: {app: %s}}\n"
              "    spec: {terminationGracePeriodSeconds: 1, containers: [{name: c, "
              "image: busybox}]}\n",
              app, replicas, app, app);
    zt_cluster_create_yaml (&s_env.cluster, "replicasets", "default",
                            &zube__replica_set__descriptor, yaml, NULL);
    zt_watcher_t watcher;
    char selector[128];
    snprintf (selector, sizeof selector, "app=%s", app);
    ZT_ASSERT (zt_watcher_start (&watcher, &s_env.cluster, "default", selector));
    bool made = zt_watcher_wait (&watcher, replicas, true, 30000);
    zt_watcher_stop (&watcher);
    ZT_ASSERT_MSG (made, "%s: %d ready pods expected", app, replicas);
}

static void
s_delete_rs (const char *name, const char *policy)
{
    zube_api_delete_options_t options = {.grace_period_seconds = -1,
                                         .propagation_policy = policy};
    zube_api_error_t error;
    ZT_ASSERT_MSG (zube_api_delete (s_env.cluster.api, "replicasets", "default", name,
                                    &options, NULL, &error) == ZUBE_OK,
                   "delete %s: %.500s", name, error.message);
}

static bool
s_wait_pods (const char *app, size_t want)
{
    int64_t until = zt_now_ms () + 30000;
    while (s_pod_count (app) != want && zt_now_ms () < until)
        zube_bus_poll (s_env.cluster.bus, 100);
    return s_pod_count (app) == want;
}

static void
test_background (void)
{
    s_replicaset ("bg", 3);
    s_delete_rs ("bg", NULL);
    ZT_ASSERT_MSG (s_wait_pods ("bg", 0), "%zu pods of the deleted ReplicaSet remain",
                   s_pod_count ("bg"));
}

static void
test_orphan (void)
{
    s_replicaset ("keep", 3);
    s_delete_rs ("keep", "Orphan");
    ZT_ASSERT_MSG (zt_ctrl_wait_exists (&s_env.cluster, "replicasets", "default", "keep",
                                        false, 30000),
                   "the ReplicaSet was not deleted");
    //  Its pods stay, let go
    bool orphaned = false;
    int64_t until = zt_now_ms () + 20000;
    while (!orphaned && zt_now_ms () < until) {
        zube_api_list_t *pods = s_pods ("keep");
        orphaned = pods && pods->count == 3;
        for (size_t i = 0; orphaned && i < pods->count; i++) {
            Zube__Pod *pod = (Zube__Pod *)pods->items[i];
            orphaned = pod->metadata->n_owner_references == 0 &&
                       !pod->metadata->deletion_timestamp;
        }
        zube_api_list_destroy (&pods);
        zube_bus_poll (s_env.cluster.bus, 100);
    }
    ZT_ASSERT_MSG (orphaned, "the pods were not orphaned (%zu left)",
                   s_pod_count ("keep"));
    //  And stay so: nothing deletes an object without owners
    zube_bus_poll (s_env.cluster.bus, 1000);
    ZT_ASSERT_INT_EQ (s_pod_count ("keep"), 3);
}

static void
test_foreground (void)
{
    s_replicaset ("fg", 2);
    s_delete_rs ("fg", "Foreground");
    //  The ReplicaSet stays while its pods do; when it is gone, so are they
    bool seen_waiting = false, gone = false;
    size_t left_when_gone = 99;
    int64_t until = zt_now_ms () + 40000;
    while (!gone && zt_now_ms () < until) {
        Zube__ReplicaSet *rs = (Zube__ReplicaSet *)zt_ctrl_get (
            &s_env.cluster, "replicasets", "default", "fg");
        if (rs) {
            seen_waiting |= rs->metadata->deletion_timestamp &&
                            rs->metadata->n_finalizers == 1 &&
                            !strcmp (rs->metadata->finalizers[0], "foregroundDeletion");
            protobuf_c_message_free_unpacked (&rs->base, NULL);
        } else {
            gone = true;
            left_when_gone = s_pod_count ("fg");
        }
        zube_bus_poll (s_env.cluster.bus, 50);
    }
    ZT_ASSERT_MSG (gone, "the ReplicaSet was not deleted");
    ZT_ASSERT_MSG (seen_waiting, "no foregroundDeletion finalizer seen");
    ZT_ASSERT_INT_EQ (left_when_gone, 0);
}

static void
test_dangling_owners (void)
{
    zt_cluster_create_yaml (&s_env.cluster, "services", "default",
                            &zube__service__descriptor,
                            "apiVersion: v1\nkind: Service\nmetadata: {name: owner}\n"
                            "spec: {ports: [{port: 80}]}\n",
                            NULL);
    Zube__Service *owner =
        (Zube__Service *)zt_ctrl_get (&s_env.cluster, "services", "default", "owner");
    ZT_ASSERT (owner);
    char yaml[1500];
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: half\n"
              "  ownerReferences:\n"
              "  - {apiVersion: apps/v1, kind: ReplicaSet, name: ghost, uid: "
              "0000-ghost}\n"
              "  - {apiVersion: v1, kind: Service, name: owner, uid: %s}\n",
              owner->metadata->uid);
    protobuf_c_message_free_unpacked (&owner->base, NULL);
    zt_cluster_create_yaml (&s_env.cluster, "configmaps", "default",
                            &zube__config_map__descriptor, yaml, NULL);
    zt_cluster_create_yaml (
        &s_env.cluster, "configmaps", "default", &zube__config_map__descriptor,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: orphaned\n"
        "  ownerReferences:\n"
        "  - {apiVersion: apps/v1, kind: ReplicaSet, name: ghost, uid: "
        "0000-ghost}\n",
        NULL);
    ZT_ASSERT_MSG (zt_ctrl_wait_exists (&s_env.cluster, "configmaps", "default",
                                        "orphaned", false, 20000),
                   "the ConfigMap whose owner never existed stays");
    bool trimmed = false;
    int64_t until = zt_now_ms () + 20000;
    while (!trimmed && zt_now_ms () < until) {
        Zube__ConfigMap *cm = (Zube__ConfigMap *)zt_ctrl_get (
            &s_env.cluster, "configmaps", "default", "half");
        ZT_ASSERT_MSG (cm, "the ConfigMap with a live owner was deleted");
        trimmed = cm->metadata->n_owner_references == 1 &&
                  !strcmp (cm->metadata->owner_references[0]->name, "owner");
        protobuf_c_message_free_unpacked (&cm->base, NULL);
        zube_bus_poll (s_env.cluster.bus, 100);
    }
    ZT_ASSERT_MSG (trimmed, "the gone owner's reference stays");
    //  Its owner goes: it goes
    ZT_ASSERT_INT_EQ (zube_api_delete (s_env.cluster.api, "services", "default", "owner",
                                       NULL, NULL, NULL),
                      ZUBE_OK);
    ZT_ASSERT_MSG (zt_ctrl_wait_exists (&s_env.cluster, "configmaps", "default", "half",
                                        false, 20000),
                   "the ConfigMap stays after its last owner went");
}

//  A Job's pods carry the job-tracking finalizer: deleting the Job
//  (background) still deletes them all (the garbage collector deletes, the
//  job controller lets the finalizer go).
static void
test_job_pods (void)
{
    zt_cluster_create_yaml (&s_env.cluster, "jobs", "default", &zube__job__descriptor,
                            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: batch}\n"
                            "spec:\n  parallelism: 2\n  completions: 4\n"
                            "  template:\n    metadata: {labels: {app: batch}}\n"
                            "    spec: {restartPolicy: Never, containers: [{name: c, "
                            "image: busybox}]}\n",
                            NULL);
    zt_watcher_t watcher;
    ZT_ASSERT (zt_watcher_start (&watcher, &s_env.cluster, "default", "app=batch"));
    bool running = zt_watcher_wait (&watcher, 2, true, 30000);
    zt_watcher_stop (&watcher);
    ZT_ASSERT_MSG (running, "the Job's two pods do not run");
    ZT_ASSERT_INT_EQ (
        zube_api_delete (s_env.cluster.api, "jobs", "default", "batch", NULL, NULL, NULL),
        ZUBE_OK);
    ZT_ASSERT_MSG (s_wait_pods ("batch", 0), "%zu pods of the deleted Job remain",
                   s_pod_count ("batch"));
}

int
main (void)
{
    if (zt_workloads_start (&s_env, "garbagecollector", 2, s_manager_flags)) {
        s_scheduler = zt_ctrl_scheduler (&s_env.cluster);
        ZT_RUN (test_background);
        ZT_RUN (test_orphan);
        ZT_RUN (test_foreground);
        ZT_RUN (test_dangling_owners);
        ZT_RUN (test_job_pods);
        zt_stop (s_scheduler, SIGTERM, 10000);
    }
    return zt_workloads_finish (&s_env);
}
