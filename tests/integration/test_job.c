/*  test_job - the job controller against a real broker, apiserver and a
    zubelet hosting hollow nodes with the sim runtime. The test binds the
    Job's pods itself (no scheduler runs), so it can make exactly the pods
    it chooses fail: before binding every Nth pod it sets the sim
    annotation exit-code. Cases: completions 20 / parallelism 5 with every
    5th pod failing ends Complete with exactly 20 successes and never more
    than 5 active pods; a FailJob exit-code rule ends Failed with reason
    PodFailurePolicy; an Indexed Job gets one success per index (after a
    failure of one index) and completedIndexes; backoffLimit, deadline,
    suspend/resume, ttlSecondsAfterFinished; tracking with the finalizer
    (a pod deleted right after it succeeded still counts); Events. */
#include "../zt_workloads.h"
#include "batch.pb-c.h"

static zt_workloads_t s_env;

static const char *s_manager_flags[] = {"--controllers",
                                        "job",
                                        "--controller-arg",
                                        "job.backoffBase=100ms",
                                        "--controller-arg",
                                        "job.backoffMax=1s",
                                        NULL};

static Zube__Job *
s_get_job (const char *name)
{
    return (Zube__Job *)zt_ctrl_get (&s_env.cluster, "jobs", "default", name);
}

static const Zube__JobCondition *
s_condition (const Zube__Job *job, const char *type)
{
    for (size_t i = 0; job && job->status && i < job->status->n_conditions; i++)
        if (!strcmp (job->status->conditions[i]->type, type) &&
            !strcmp (job->status->conditions[i]->status, "True"))
            return job->status->conditions[i];
    return NULL;
}

static zube_api_list_t *
s_job_pods (const char *job)
{
    char selector[300];
    snprintf (selector, sizeof selector, "batch.kubernetes.io/job-name=%s", job);
    return zt_cluster_list (&s_env.cluster, "pods", "default", selector);
}

static const char *
s_phase (const Zube__Pod *pod)
{
    return pod->status && pod->status->phase ? pod->status->phase : "";
}

//  The test's scheduler: binds the job's pending pods round robin over
//  the four nodes; every fail_every-th pod (0: none) first gets
//  exit-code fail_code. *bound_p and *failing_p count.
typedef struct {
    const char *job;
    int fail_every;
    const char *fail_code;
    //  Indexed: fail the first pod of this index (-1: none)
    int fail_index;
    int bound;
    int failing;
    bool index_failed;
} s_pump_t;

static void
s_pump (s_pump_t *pump)
{
    zube_api_list_t *pods = s_job_pods (pump->job);
    for (size_t i = 0; pods && i < pods->count; i++) {
        Zube__Pod *pod = (Zube__Pod *)pods->items[i];
        if ((pod->spec->node_name && *pod->spec->node_name) ||
            pod->metadata->deletion_timestamp)
            continue;
        pump->bound++;
        bool fail = pump->fail_every > 0 && pump->bound % pump->fail_every == 0;
        const char *index = NULL;
        for (size_t a = 0; a < pod->metadata->n_annotations; a++)
            if (!strcmp (pod->metadata->annotations[a]->key,
                         "batch.kubernetes.io/job-completion-index"))
                index = pod->metadata->annotations[a]->value;
        if (pump->fail_index >= 0 && !pump->index_failed && index &&
            atoi (index) == pump->fail_index) {
            fail = true;
            pump->index_failed = true;
        }
        if (fail) {
            char patch[200];
            snprintf (
                patch, sizeof patch,
                "{\"metadata\":{\"annotations\":{\"sim.zube.io/exit-code\":\"%s\"}}}",
                pump->fail_code ? pump->fail_code : "1");
            ZT_ASSERT_INT_EQ (zube_api_patch (s_env.cluster.api, "pods", "default",
                                              pod->metadata->name, NULL, patch, NULL,
                                              false, NULL, NULL),
                              ZUBE_OK);
            pump->failing++;
        }
        char node[32];
        snprintf (node, sizeof node, "sim-%04d", 1 + pump->bound % 4);
        zube_api_error_t error;
        ZT_ASSERT_MSG (zube_api_bind (s_env.cluster.api, "default", pod->metadata->name,
                                      node, &error) == ZUBE_OK,
                       "bind %.200s: %.700s", pod->metadata->name, error.message);
    }
    zube_api_list_destroy (&pods);
}

//  Pumps until the job has condition type True; the job then, or NULL.
static Zube__Job *
s_run_until (s_pump_t *pump, const char *type, zt_watcher_t *watcher, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    do {
        s_pump (pump);
        Zube__Job *job = s_get_job (pump->job);
        if (s_condition (job, type))
            return job;
        if (job)
            protobuf_c_message_free_unpacked (&job->base, NULL);
        if (watcher)
            zt_watcher_poll (watcher, 50);
        else
            zube_bus_poll (s_env.cluster.bus, 50);
    } while (zt_now_ms () < until);
    return NULL;
}

static void
s_create_job (const char *yaml)
{
    zt_cluster_create_yaml (&s_env.cluster, "jobs", "default", &zube__job__descriptor,
                            yaml, NULL);
}

//  True when an Event with reason about the object exists.
static bool
s_has_event (const char *object, const char *reason)
{
    zube_api_list_t *events = NULL;
    zube_api_list (s_env.cluster.api, "events",
                   &(zube_api_list_options_t){.namespace = "default"}, &events, NULL);
    bool found = false;
    for (size_t i = 0; events && i < events->count && !found; i++) {
        Zube__Event *event = (Zube__Event *)events->items[i];
        found = event->involved_object && event->involved_object->name &&
                !strcmp (event->involved_object->name, object) && event->reason &&
                !strcmp (event->reason, reason);
    }
    zube_api_list_destroy (&events);
    return found;
}

static bool
s_wait_event (const char *object, const char *reason)
{
    int64_t until = zt_now_ms () + 10000;
    while (!s_has_event (object, reason) && zt_now_ms () < until)
        zube_bus_poll (s_env.cluster.bus, 100);
    return s_has_event (object, reason);
}

static void
test_completions_with_failures (void)
{
    zt_watcher_t watcher;
    ZT_ASSERT (zt_watcher_start (&watcher, &s_env.cluster, "default",
                                 "batch.kubernetes.io/job-name=work"));
    watcher.limit = 5;
    s_create_job ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: work}\n"
                  "spec:\n  completions: 20\n  parallelism: 5\n"
                  "  template:\n    metadata:\n      annotations:\n"
                  "        sim.zube.io/run-duration: 300ms\n"
                  "    spec: {restartPolicy: Never, containers: [{name: c, image: "
                  "busybox}]}\n");
    s_pump_t pump = {.job = "work", .fail_every = 5, .fail_index = -1};
    Zube__Job *job = s_run_until (&pump, "Complete", &watcher, 60000);
    int64_t max_active = watcher.max_active, over = watcher.over_limit;
    zt_watcher_stop (&watcher);
    ZT_ASSERT_MSG (job, "not Complete after 60 s (%d pods bound, %d failing)", pump.bound,
                   pump.failing);
    printf ("# %d pods, %d made to fail, max %lld active\n", pump.bound, pump.failing,
            (long long)max_active);
    ZT_ASSERT_INT_EQ (job->status->succeeded, 20);
    ZT_ASSERT_INT_EQ (job->status->failed, pump.failing);
    ZT_ASSERT_INT_EQ (job->status->active, 0);
    ZT_ASSERT (pump.failing >= 4);
    ZT_ASSERT (job->status->start_time && job->status->completion_time);
    ZT_ASSERT_MSG (over == 0 && max_active <= 5, "more than 5 active pods (%lld)",
                   (long long)max_active);
    protobuf_c_message_free_unpacked (&job->base, NULL);
    //  Exactly 20 pods Succeeded, no more made
    zube_api_list_t *pods = s_job_pods ("work");
    int succeeded = 0, failed = 0;
    for (size_t i = 0; pods && i < pods->count; i++) {
        const char *phase = s_phase ((Zube__Pod *)pods->items[i]);
        succeeded += !strcmp (phase, "Succeeded");
        failed += !strcmp (phase, "Failed");
    }
    size_t count = pods ? pods->count : 0;
    zube_api_list_destroy (&pods);
    ZT_ASSERT_INT_EQ (succeeded, 20);
    ZT_ASSERT_INT_EQ (failed, pump.failing);
    ZT_ASSERT_INT_EQ (count, (size_t)(20 + pump.failing));
    ZT_ASSERT (s_wait_event ("work", "Completed"));
    ZT_ASSERT (s_wait_event ("work", "SuccessfulCreate"));
}

static void
test_fail_job_rule (void)
{
    s_create_job ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: fatal}\n"
                  "spec:\n  completions: 3\n  parallelism: 1\n  backoffLimit: 10\n"
                  "  podFailurePolicy:\n    rules:\n"
                  "    - {action: Ignore, onExitCodes: {operator: In, values: [7]}}\n"
                  "    - {action: FailJob, onExitCodes: {containerName: c, operator: In, "
                  "values: [42]}}\n"
                  "  template:\n    metadata:\n      annotations:\n"
                  "        sim.zube.io/run-duration: 200ms\n"
                  "    spec: {restartPolicy: Never, containers: [{name: c, image: "
                  "busybox}]}\n");
    //  The first pod exits 7 (ignored), the second 42 (FailJob)
    s_pump_t pump = {.job = "fatal", .fail_every = 1, .fail_code = "7", .fail_index = -1};
    int64_t until = zt_now_ms () + 20000;
    while (pump.bound < 1 && zt_now_ms () < until) {
        s_pump (&pump);
        zube_bus_poll (s_env.cluster.bus, 50);
    }
    ZT_ASSERT_INT_EQ (pump.bound, 1);
    pump.fail_code = "42";
    Zube__Job *job = s_run_until (&pump, "Failed", NULL, 30000);
    ZT_ASSERT_MSG (job, "not Failed (%d pods bound)", pump.bound);
    const Zube__JobCondition *failed = s_condition (job, "Failed");
    ZT_ASSERT_STR_EQ (failed->reason, "PodFailurePolicy");
    ZT_ASSERT_STR_CONTAINS (failed->message, "exit code 42");
    //  The ignored failure does not count
    ZT_ASSERT_INT_EQ (job->status->failed, 1);
    ZT_ASSERT_INT_EQ (job->status->succeeded, 0);
    ZT_ASSERT (!job->status->completion_time);
    protobuf_c_message_free_unpacked (&job->base, NULL);
    ZT_ASSERT (s_wait_event ("fatal", "PodFailurePolicy"));
}

static void
test_indexed (void)
{
    s_create_job ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: idx}\n"
                  "spec:\n  completions: 5\n  parallelism: 2\n"
                  "  completionMode: Indexed\n"
                  "  template:\n    metadata:\n      annotations:\n"
                  "        sim.zube.io/run-duration: 200ms\n"
                  "    spec: {restartPolicy: Never, containers: [{name: c, image: "
                  "busybox}]}\n");
    s_pump_t pump = {.job = "idx", .fail_index = 2};
    Zube__Job *job = s_run_until (&pump, "Complete", NULL, 40000);
    ZT_ASSERT_MSG (job, "not Complete (%d pods bound)", pump.bound);
    ZT_ASSERT (pump.index_failed);
    ZT_ASSERT_INT_EQ (job->status->succeeded, 5);
    ZT_ASSERT_INT_EQ (job->status->failed, 1);
    ZT_ASSERT_STR_EQ (job->status->completed_indexes, "0-4");
    protobuf_c_message_free_unpacked (&job->base, NULL);
    zube_api_list_t *pods = s_job_pods ("idx");
    int per_index[5] = {0};
    for (size_t i = 0; pods && i < pods->count; i++) {
        Zube__Pod *pod = (Zube__Pod *)pods->items[i];
        const char *index = NULL;
        for (size_t a = 0; a < pod->metadata->n_annotations; a++)
            if (!strcmp (pod->metadata->annotations[a]->key,
                         "batch.kubernetes.io/job-completion-index"))
                index = pod->metadata->annotations[a]->value;
        ZT_ASSERT (index);
        int n = atoi (index);
        ZT_ASSERT (n >= 0 && n < 5);
        char hostname[32];
        snprintf (hostname, sizeof hostname, "idx-%d", n);
        ZT_ASSERT_STR_EQ (pod->spec->hostname, hostname);
        bool has_env = false;
        for (size_t e = 0; e < pod->spec->containers[0]->n_env; e++)
            has_env |= !strcmp (pod->spec->containers[0]->env[e]->name,
                                "JOB_COMPLETION_INDEX") &&
                       !strcmp (pod->spec->containers[0]->env[e]->value, index);
        ZT_ASSERT (has_env);
        if (!strcmp (s_phase (pod), "Succeeded"))
            per_index[n]++;
    }
    size_t count = pods ? pods->count : 0;
    zube_api_list_destroy (&pods);
    for (int i = 0; i < 5; i++)
        ZT_ASSERT_MSG (per_index[i] == 1, "index %d succeeded %d times", i, per_index[i]);
    ZT_ASSERT_INT_EQ (count, 6);
}

static void
test_backoff_limit (void)
{
    s_create_job ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: doomed}\n"
                  "spec:\n  backoffLimit: 2\n"
                  "  template:\n    metadata:\n      annotations:\n"
                  "        sim.zube.io/run-duration: 100ms\n"
                  "        sim.zube.io/exit-code: \"1\"\n"
                  "    spec: {restartPolicy: Never, containers: [{name: c, image: "
                  "busybox}]}\n");
    s_pump_t pump = {.job = "doomed", .fail_index = -1};
    Zube__Job *job = s_run_until (&pump, "Failed", NULL, 30000);
    ZT_ASSERT_MSG (job, "not Failed (%d pods bound)", pump.bound);
    ZT_ASSERT_STR_EQ (s_condition (job, "Failed")->reason, "BackoffLimitExceeded");
    ZT_ASSERT_INT_EQ (job->status->failed, 3);
    ZT_ASSERT_INT_EQ (pump.bound, 3);
    protobuf_c_message_free_unpacked (&job->base, NULL);
    ZT_ASSERT (s_wait_event ("doomed", "BackoffLimitExceeded"));
}

static int
s_active_pods (const char *job)
{
    zube_api_list_t *pods = s_job_pods (job);
    int active = 0;
    for (size_t i = 0; pods && i < pods->count; i++)
        active += zt_watch_active ((Zube__Pod *)pods->items[i]);
    zube_api_list_destroy (&pods);
    return active;
}

static void
test_deadline (void)
{
    s_create_job ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: slow}\n"
                  "spec:\n  parallelism: 2\n  completions: 4\n"
                  "  activeDeadlineSeconds: 2\n"
                  "  template:\n    spec: {restartPolicy: Never, containers: [{name: c, "
                  "image: busybox}]}\n");
    s_pump_t pump = {.job = "slow", .fail_index = -1};
    Zube__Job *job = s_run_until (&pump, "Failed", NULL, 30000);
    ZT_ASSERT_MSG (job, "not Failed by its deadline");
    ZT_ASSERT_STR_EQ (s_condition (job, "Failed")->reason, "DeadlineExceeded");
    protobuf_c_message_free_unpacked (&job->base, NULL);
    int64_t until = zt_now_ms () + 20000;
    while (s_active_pods ("slow") > 0 && zt_now_ms () < until)
        zube_bus_poll (s_env.cluster.bus, 100);
    ZT_ASSERT_INT_EQ (s_active_pods ("slow"), 0);
}

static void
test_suspend_and_ttl (void)
{
    s_create_job ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: later}\n"
                  "spec:\n  suspend: true\n  ttlSecondsAfterFinished: 1\n"
                  "  template:\n    metadata:\n      annotations:\n"
                  "        sim.zube.io/run-duration: 200ms\n"
                  "    spec: {restartPolicy: Never, containers: [{name: c, image: "
                  "busybox}]}\n");
    s_pump_t pump = {.job = "later", .fail_index = -1};
    Zube__Job *job = s_run_until (&pump, "Suspended", NULL, 20000);
    ZT_ASSERT_MSG (job, "no Suspended condition");
    ZT_ASSERT (!job->status->start_time);
    protobuf_c_message_free_unpacked (&job->base, NULL);
    //  A while suspended: no pod made
    for (int i = 0; i < 10; i++) {
        s_pump (&pump);
        zube_bus_poll (s_env.cluster.bus, 100);
    }
    ZT_ASSERT_INT_EQ (pump.bound, 0);
    ZT_ASSERT_INT_EQ (s_active_pods ("later"), 0);
    ZT_ASSERT_INT_EQ (zube_api_patch (s_env.cluster.api, "jobs", "default", "later", NULL,
                                      "{\"spec\":{\"suspend\":false}}", NULL, false, NULL,
                                      NULL),
                      ZUBE_OK);
    job = s_run_until (&pump, "Complete", NULL, 20000);
    ZT_ASSERT_MSG (job, "not Complete after resuming");
    ZT_ASSERT_INT_EQ (pump.bound, 1);
    protobuf_c_message_free_unpacked (&job->base, NULL);
    ZT_ASSERT (s_wait_event ("later", "Resumed"));
    //  ttlSecondsAfterFinished: 1; deleted in the foreground, so without a
    //  garbage collector running here it stays with its finalizer
    int64_t until = zt_now_ms () + 20000;
    bool deleted = false;
    while (!deleted && zt_now_ms () < until) {
        job = s_get_job ("later");
        deleted = !job || (job->metadata->deletion_timestamp &&
                           job->metadata->n_finalizers == 1 &&
                           !strcmp (job->metadata->finalizers[0], "foregroundDeletion"));
        if (job)
            protobuf_c_message_free_unpacked (&job->base, NULL);
        zube_bus_poll (s_env.cluster.bus, 100);
    }
    ZT_ASSERT_MSG (deleted, "the finished Job was not deleted after its ttl");
}

//  Tracking with the batch.kubernetes.io/job-tracking finalizer: pods
//  carry it until counted, so a pod deleted right after it succeeded still
//  counts, and no pod keeps it once the Job is done.
static void
test_tracking_finalizer (void)
{
    s_create_job ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: tracked}\n"
                  "spec:\n  completions: 3\n  parallelism: 3\n"
                  "  template:\n    metadata:\n      annotations:\n"
                  "        sim.zube.io/run-duration: 300ms\n"
                  "    spec: {restartPolicy: Never, containers: [{name: c, image: "
                  "busybox}]}\n");
    s_pump_t pump = {.job = "tracked", .fail_index = -1};
    bool seen_finalizer = false;
    int deleted = 0;
    Zube__Job *job = NULL;
    int64_t until = zt_now_ms () + 40000;
    while (!job && zt_now_ms () < until) {
        s_pump (&pump);
        zube_api_list_t *pods = s_job_pods ("tracked");
        for (size_t i = 0; pods && i < pods->count; i++) {
            Zube__Pod *pod = (Zube__Pod *)pods->items[i];
            for (size_t f = 0; f < pod->metadata->n_finalizers; f++)
                seen_finalizer |= !strcmp (pod->metadata->finalizers[f],
                                           "batch.kubernetes.io/job-tracking");
            //  Deleted as soon as it succeeded
            if (!strcmp (s_phase (pod), "Succeeded") &&
                !pod->metadata->deletion_timestamp &&
                zube_api_delete (s_env.cluster.api, "pods", "default",
                                 pod->metadata->name, &(zube_api_delete_options_t){0},
                                 NULL, NULL) == ZUBE_OK)
                deleted++;
        }
        zube_api_list_destroy (&pods);
        job = s_get_job ("tracked");
        if (job && !s_condition (job, "Complete")) {
            protobuf_c_message_free_unpacked (&job->base, NULL);
            job = NULL;
        }
        zube_bus_poll (s_env.cluster.bus, 50);
    }
    ZT_ASSERT_MSG (job, "not Complete (%d pods bound, %d deleted)", pump.bound, deleted);
    ZT_ASSERT_INT_EQ (job->status->succeeded, 3);
    ZT_ASSERT_INT_EQ (job->status->failed, 0);
    ZT_ASSERT (!job->status->uncounted_terminated_pods ||
               (job->status->uncounted_terminated_pods->n_succeeded == 0 &&
                job->status->uncounted_terminated_pods->n_failed == 0));
    protobuf_c_message_free_unpacked (&job->base, NULL);
    ZT_ASSERT (seen_finalizer);
    ZT_ASSERT (deleted >= 1);
    //  Counted though deleted: no pod made again
    ZT_ASSERT_INT_EQ (pump.bound, 3);
    //  Nothing keeps the finalizer; the deleted pods are gone
    until = zt_now_ms () + 20000;
    bool released = false;
    while (!released && zt_now_ms () < until) {
        zube_api_list_t *pods = s_job_pods ("tracked");
        released = true;
        for (size_t i = 0; pods && i < pods->count; i++)
            released &= ((Zube__Pod *)pods->items[i])->metadata->n_finalizers == 0 &&
                        !((Zube__Pod *)pods->items[i])->metadata->deletion_timestamp;
        zube_api_list_destroy (&pods);
        zube_bus_poll (s_env.cluster.bus, 100);
    }
    ZT_ASSERT_MSG (released, "a pod keeps the tracking finalizer or is stuck deleting");
}

//  A tracked pod whose Job is deleted loses the finalizer, so deleting it
//  is not blocked forever.
static void
test_orphan_pod_released (void)
{
    s_create_job ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: gone}\n"
                  "spec:\n  template:\n    spec: {restartPolicy: Never, containers: "
                  "[{name: c, image: busybox}]}\n");
    s_pump_t pump = {.job = "gone", .fail_index = -1};
    int64_t until = zt_now_ms () + 20000;
    while (pump.bound < 1 && zt_now_ms () < until) {
        s_pump (&pump);
        zube_bus_poll (s_env.cluster.bus, 50);
    }
    ZT_ASSERT_INT_EQ (pump.bound, 1);
    zube_api_list_t *pods = s_job_pods ("gone");
    ZT_ASSERT (pods && pods->count == 1);
    char pod[256];
    snprintf (pod, sizeof pod, "%s", ((Zube__Pod *)pods->items[0])->metadata->name);
    zube_api_list_destroy (&pods);
    ZT_ASSERT_INT_EQ (
        zube_api_delete (s_env.cluster.api, "jobs", "default", "gone", NULL, NULL, NULL),
        ZUBE_OK);
    ZT_ASSERT (
        zt_ctrl_wait_exists (&s_env.cluster, "jobs", "default", "gone", false, 10000));
    ZT_ASSERT_INT_EQ (zube_api_delete (s_env.cluster.api, "pods", "default", pod,
                                       &(zube_api_delete_options_t){0}, NULL, NULL),
                      ZUBE_OK);
    ZT_ASSERT_MSG (
        zt_ctrl_wait_exists (&s_env.cluster, "pods", "default", pod, false, 20000),
        "the pod of the deleted Job kept its finalizer");
}

int
main (void)
{
    if (zt_workloads_start (&s_env, "job", 4, s_manager_flags)) {
        ZT_RUN (test_completions_with_failures);
        ZT_RUN (test_fail_job_rule);
        ZT_RUN (test_indexed);
        ZT_RUN (test_backoff_limit);
        ZT_RUN (test_deadline);
        ZT_RUN (test_suspend_and_ttl);
        ZT_RUN (test_tracking_finalizer);
        ZT_RUN (test_orphan_pod_released);
    }
    return zt_workloads_finish (&s_env);
}
