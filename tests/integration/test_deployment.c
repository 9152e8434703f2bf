/*  test_deployment - the deployment and replicaset controllers against a
    real broker, apiserver, scheduler and a zubelet hosting hollow nodes:
    a Deployment of 10 scales to 30 and back to 10 (one ReplicaSet, its
    revision 1); a rolling update (25% / 25%) never has fewer than
    replicas - maxUnavailable ready pods nor more than replicas + maxSurge
    (a watcher checks after every event) and ends with a second
    ReplicaSet at revision 2; zubectl rollout status, history, undo (back
    to the first template, now revision 3) and restart; Recreate scales
    the old pods away before any new one is made. */
#include "../zt_ctrl.h"

static zt_ctrl_env_t s_env;

static void
s_create_deployment (const char *name, int replicas, const char *strategy)
{
    char yaml[1200];
    snprintf (yaml, sizeof yaml,
              "apiVersion: apps/v1\nkind: Deployment\n"
              "metadata: {name: %s, namespace: default}\n"
              "spec:\n  replicas: %d\n  selector: {matchLabels: {app: %s}}\n"
              "  strategy: {type: %s}\n"
              "  template:\n    metadata: {labels: {app: %s}}\n"
              "    spec: {containers: [{name: c, image: 'busybox:1'}]}\n",
              name, replicas, name, strategy, name);
    zt_cluster_create_yaml (&s_env.cluster, "deployments", "default",
                            &zube__deployment__descriptor, yaml, NULL);
}

static void
s_patch (const char *name, const char *patch)
{
    zt_cluster_patch (&s_env.cluster, "deployments", "default", name, patch);
}

static Zube__Deployment *
s_get (const char *name)
{
    return (Zube__Deployment *)zt_ctrl_get (&s_env.cluster, "deployments", "default",
                                            name);
}

//  Waits until the Deployment is rolled out at replicas (kubectl's
//  rollout status done).
static bool
s_wait_complete (const char *name, int replicas, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    do {
        Zube__Deployment *d = s_get (name);
        const Zube__DeploymentStatus *st = d ? d->status : NULL;
        bool done = st && st->observed_generation >= d->metadata->generation &&
                    st->updated_replicas == replicas && st->replicas == replicas &&
                    st->available_replicas == replicas;
        if (d)
            protobuf_c_message_free_unpacked (&d->base, NULL);
        if (done)
            return true;
        zube_bus_poll (s_env.cluster.bus, 100);
    } while (zt_now_ms () < until);
    return false;
}

//  The ReplicaSets of app=name (labels of the template).
static zube_api_list_t *
s_replicasets (const char *name)
{
    char selector[128];
    snprintf (selector, sizeof selector, "app=%s", name);
    return zt_cluster_list (&s_env.cluster, "replicasets", "default", selector);
}

static const char *
s_annotation (const Zube__ObjectMeta *meta, const char *key)
{
    for (size_t i = 0; meta && i < meta->n_annotations; i++)
        if (!strcmp (meta->annotations[i]->key, key))
            return meta->annotations[i]->value;
    return NULL;
}

static zt_run_t
s_zubectl (const char *first, ...)
{
    va_list args;
    va_start (args, first);
    zt_run_t result = zt_run_capture_va (
        60000,
        (const char *[]){zt_program ("zubectl"), "--broker", s_env.cluster.endpoint,
                         "--insecure", first, NULL},
        args);
    va_end (args);
    return result;
}

static void
test_scale_10_30_10 (void)
{
    zt_watcher_t watcher;
    ZT_ASSERT (zt_watcher_start (&watcher, &s_env.cluster, "default", "app=web"));
    s_create_deployment ("web", 10, "RollingUpdate");
    bool ten = zt_watcher_wait (&watcher, 10, true, 30000);
    ZT_ASSERT_MSG (ten, "10 ready pods expected, %lld active", (long long)watcher.active);
    ZT_ASSERT (s_wait_complete ("web", 10, 20000));
    s_patch ("web", "{\"spec\":{\"replicas\":30}}");
    bool thirty = zt_watcher_wait (&watcher, 30, true, 40000);
    int64_t max = watcher.max_active;
    ZT_ASSERT_MSG (thirty, "30 ready pods expected, %lld active",
                   (long long)watcher.active);
    ZT_ASSERT (s_wait_complete ("web", 30, 20000));
    s_patch ("web", "{\"spec\":{\"replicas\":10}}");
    bool back = zt_watcher_wait (&watcher, 10, true, 40000);
    zt_watcher_stop (&watcher);
    ZT_ASSERT_MSG (back, "back to 10 expected");
    ZT_ASSERT_INT_EQ (max, 30);
    ZT_ASSERT (s_wait_complete ("web", 10, 20000));
    zube_api_list_t *sets = s_replicasets ("web");
    ZT_ASSERT (sets && sets->count == 1);
    Zube__ReplicaSet *rs = (Zube__ReplicaSet *)sets->items[0];
    ZT_ASSERT_STR_EQ (s_annotation (rs->metadata, "deployment.kubernetes.io/revision"),
                      "1");
    ZT_ASSERT (strncmp (rs->metadata->name, "web-", 4) == 0);
    bool hash_label = false;
    for (size_t i = 0; i < rs->metadata->n_labels; i++)
        hash_label |= !strcmp (rs->metadata->labels[i]->key, "pod-template-hash");
    ZT_ASSERT (hash_label);
    zube_api_list_destroy (&sets);
    Zube__Deployment *d = s_get ("web");
    ZT_ASSERT_STR_EQ (s_annotation (d->metadata, "deployment.kubernetes.io/revision"),
                      "1");
    bool available = false;
    for (size_t i = 0; i < d->status->n_conditions; i++)
        available |= !strcmp (d->status->conditions[i]->type, "Available") &&
                     !strcmp (d->status->conditions[i]->status, "True");
    protobuf_c_message_free_unpacked (&d->base, NULL);
    ZT_ASSERT (available);
}

static void
test_rolling_update (void)
{
    zt_watcher_t watcher;
    ZT_ASSERT (zt_watcher_start (&watcher, &s_env.cluster, "default", "app=web"));
    ZT_ASSERT (zt_watcher_wait (&watcher, 10, true, 20000));
    //  25% of 10: maxUnavailable 2 (down), maxSurge 3 (up)
    watcher.min_ready = INT64_MAX;
    watcher.max_active = 0;
    s_patch ("web", "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\","
                    "\"image\":\"busybox:2\"}]}}}}");
    bool done = s_wait_complete ("web", 10, 60000);
    zt_watcher_wait (&watcher, 10, true, 20000);
    int64_t min_ready = watcher.min_ready, max_active = watcher.max_active;
    zt_watcher_stop (&watcher);
    printf ("# rolling update: min ready %lld, max active %lld\n", (long long)min_ready,
            (long long)max_active);
    ZT_ASSERT_MSG (done, "the rolling update did not complete");
    ZT_ASSERT_MSG (min_ready >= 8, "only %lld ready pods at one moment (< 10 - 2)",
                   (long long)min_ready);
    ZT_ASSERT_MSG (max_active <= 13, "%lld pods at one moment (> 10 + 3)",
                   (long long)max_active);
    zube_api_list_t *sets = s_replicasets ("web");
    ZT_ASSERT (sets && sets->count == 2);
    int at_zero = 0, revision_two = 0;
    for (size_t i = 0; i < sets->count; i++) {
        Zube__ReplicaSet *rs = (Zube__ReplicaSet *)sets->items[i];
        at_zero += rs->spec->replicas == 0;
        revision_two +=
            !strcmp (s_annotation (rs->metadata, "deployment.kubernetes.io/revision"),
                     "2") &&
            rs->spec->replicas == 10;
    }
    zube_api_list_destroy (&sets);
    ZT_ASSERT_INT_EQ (at_zero, 1);
    ZT_ASSERT_INT_EQ (revision_two, 1);
}

static void
test_rollout_commands (void)
{
    zt_run_t result =
        s_zubectl ("rollout", "status", "deployment/web", "--timeout", "60", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "deployment \"web\" successfully rolled out");
    zt_run_free (&result);
    result = s_zubectl ("rollout", "history", "deployment/web", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "REVISION  CHANGE-CAUSE\n1         <none>\n2");
    zt_run_free (&result);
    //  Undo: the first template again, as revision 3 of the first set
    result = s_zubectl ("rollout", "undo", "deployment/web", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "deployment.apps/web rolled back");
    zt_run_free (&result);
    result = s_zubectl ("rollout", "status", "deployment/web", "--timeout", "60", NULL);
    ZT_ASSERT_EXIT (result, 0);
    zt_run_free (&result);
    ZT_ASSERT (s_wait_complete ("web", 10, 30000));
    Zube__Deployment *d = s_get ("web");
    ZT_ASSERT_STR_EQ (d->spec->template_->spec->containers[0]->image, "busybox:1");
    ZT_ASSERT_STR_EQ (s_annotation (d->metadata, "deployment.kubernetes.io/revision"),
                      "3");
    protobuf_c_message_free_unpacked (&d->base, NULL);
    zube_api_list_t *sets = s_replicasets ("web");
    ZT_ASSERT (sets && sets->count == 2);
    for (size_t i = 0; i < sets->count; i++) {
        Zube__ReplicaSet *rs = (Zube__ReplicaSet *)sets->items[i];
        const char *image = rs->spec->template_->spec->containers[0]->image;
        const char *revision =
            s_annotation (rs->metadata, "deployment.kubernetes.io/revision");
        if (!strcmp (image, "busybox:1")) {
            ZT_ASSERT_STR_EQ (revision, "3");
            ZT_ASSERT_INT_EQ (rs->spec->replicas, 10);
        } else
            ZT_ASSERT_INT_EQ (rs->spec->replicas, 0);
    }
    zube_api_list_destroy (&sets);
    //  Nothing earlier to go to
    result = s_zubectl ("rollout", "undo", "deployment/web", "--to-revision", "9", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "unable to find specified revision 9 in history");
    zt_run_free (&result);
    //  Restart: a new template (restartedAt), a third ReplicaSet
    result = s_zubectl ("rollout", "restart", "deployment/web", NULL);
    ZT_ASSERT_EXIT (result, 0);
    zt_run_free (&result);
    ZT_ASSERT (s_wait_complete ("web", 10, 60000));
    sets = s_replicasets ("web");
    ZT_ASSERT (sets && sets->count == 3);
    zube_api_list_destroy (&sets);
}

static void
test_recreate (void)
{
    s_create_deployment ("batch", 4, "Recreate");
    ZT_ASSERT (s_wait_complete ("batch", 4, 30000));
    zt_watcher_t watcher;
    ZT_ASSERT (zt_watcher_start (&watcher, &s_env.cluster, "default", "app=batch"));
    watcher.max_active = 0;
    s_patch ("batch",
             "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\","
             "\"image\":\"busybox:2\"}]}}}}");
    bool done = s_wait_complete ("batch", 4, 60000);
    zt_watcher_wait (&watcher, 4, true, 20000);
    int64_t max = watcher.max_active;
    zt_watcher_stop (&watcher);
    ZT_ASSERT (done);
    ZT_ASSERT_MSG (max <= 4, "%lld pods at once under Recreate", (long long)max);
}

int
main (void)
{
    const char *flags[] = {"--controllers", "replicaset,deployment",
                           "--leader-elect=false", NULL};
    if (zt_ctrl_env_start (&s_env, "deployment", 8, flags)) {
        ZT_RUN (test_scale_10_30_10);
        ZT_RUN (test_rolling_update);
        ZT_RUN (test_rollout_commands);
        ZT_RUN (test_recreate);
    }
    return zt_ctrl_env_finish (&s_env);
}
