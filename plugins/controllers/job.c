/*  job - Kubernetes' Job controller (pkg/controller/job/job_controller.go)
    as a plugin, with the ttl-after-finished controller folded in.

    A Job's key is synced when it changes or one of its pods does. Sync
    reads the pods the Job controls (controller ownerReference with the
    Job's uid), counts them, decides whether the Job is done, and
    otherwise keeps min (parallelism, what is left) pods active:

    - Counting, as Kubernetes tracks Jobs since 1.26: every pod is made
      with the finalizer batch.kubernetes.io/job-tracking; a finished pod
      is first listed in status.uncountedTerminatedPods (an Indexed
      success also in completedIndexes), then loses the finalizer, then
      moves into status.succeeded / failed; so a finished pod deleted at
      once still counts, once. Indexed Jobs count one success per index.
      A tracked pod whose Job is gone loses the finalizer.
    - podFailurePolicy: each failed pod is judged by the first rule that
      matches its containers' exit codes (onExitCodes, In or NotIn, zero
      exit codes never match) or its conditions (onPodConditions): FailJob
      fails the Job (reason PodFailurePolicy), Ignore leaves the pod out of
      status.failed and of the back-off limit, Count counts it.
    - Failing: failed > backoffLimit (reason BackoffLimitExceeded; with
      restartPolicy OnFailure the restarts of active pods count too), or
      active longer than activeDeadlineSeconds (DeadlineExceeded). A failed
      or completed Job's active pods are deleted.
    - Back-off: after failures, new pods wait base * 2^(failures since the
      last success - 1), at most the maximum, from the last failure
      (Kubernetes' backoffRecord, here worked out from the pods' finish
      times so a restart loses nothing).
    - suspend: active pods deleted, condition Suspended; resuming resets
      startTime. ttlSecondsAfterFinished: the finished Job is deleted
      (propagationPolicy Foreground) that long after it finished.

    Settings (--controller-arg job.KEY=VALUE): backoffBase (10s) and
    backoffMax (6m), Go durations, so tests can shorten the back-off. */
#define _GNU_SOURCE
#include "batch.pb-c.h"
#include "ctrl_duration.h"
#include "ctrl_util.h"

#define S_DEFAULT_BACKOFF_MS 10000
#define S_DEFAULT_BACKOFF_MAX_MS 360000
#define S_INDEX_ANNOTATION "batch.kubernetes.io/job-completion-index"
#define S_TRACKING "batch.kubernetes.io/job-tracking"
//  Keys of tracked pods whose Job is gone
#define S_ORPHAN_PREFIX "orphan-pod:"
#define S_KEY_SIZE 600
//  Kubernetes' MaxPodCreateDeletePerSync
#define S_MAX_PER_SYNC 500

typedef struct {
    const zube_ctrl_host_t *host;
    zc_expectations_t expectations;
    int64_t backoff_ms;
    int64_t backoff_max_ms;
} s_self_t;

static const char *const s_watches[] = {"jobs.batch", "pods", NULL};

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->host = host;
    self->backoff_ms = S_DEFAULT_BACKOFF_MS;
    self->backoff_max_ms = S_DEFAULT_BACKOFF_MAX_MS;
    const char *expected = "a positive duration such as \"10s\"";
    if (!zc_setting_ms (host, "backoffBase", 1, expected, &self->backoff_ms, error,
                        error_size) ||
        !zc_setting_ms (host, "backoffMax", 1, expected, &self->backoff_max_ms, error,
                        error_size)) {
        free (self);
        return NULL;
    }
    return self;
}

static void
s_destroy (void *arg)
{
    s_self_t *self = arg;
    zc_expectations_clear (&self->expectations);
    free (self);
}

static bool
s_has_tracking (const Zube__Pod *pod)
{
    for (size_t i = 0; i < pod->metadata->n_finalizers; i++)
        if (zc_streq (pod->metadata->finalizers[i], S_TRACKING))
            return true;
    return false;
}

//  The key of the Job controlling pod, "" when none in the cache.
static void
s_job_key_of_pod (s_self_t *self, const Zube__Pod *pod, char *key, size_t size)
{
    key[0] = 0;
    const Zube__Job *job = (const Zube__Job *)zc_resolve (
        self->host, "jobs.batch", "Job", pod->metadata->namespace_,
        zc_controller_of (pod->metadata));
    if (job)
        zc_key_of (job->metadata, key, size);
}

//  What a pod event tells the Job controlling the pod: a creation or a
//  deletion seen (expectations), and a reason to sync.
typedef enum { S_SEEN_CREATION, S_SEEN_DELETION, S_SEEN_CHANGE } s_seen_t;

static void
s_pod_seen (s_self_t *self, const Zube__Pod *pod, s_seen_t seen)
{
    char key[S_KEY_SIZE], pod_key[S_KEY_SIZE];
    if (!pod->metadata)
        return;
    s_job_key_of_pod (self, pod, key, sizeof key);
    if (!key[0]) {
        //  A tracked pod whose Job is gone: its finalizer must go
        const Zube__OwnerReference *ref = zc_controller_of (pod->metadata);
        if (ref && zc_streq (ref->kind, "Job") && s_has_tracking (pod)) {
            zc_key_of (pod->metadata, pod_key, sizeof pod_key);
            char orphan_key[S_KEY_SIZE + 16];
            snprintf (orphan_key, sizeof orphan_key, S_ORPHAN_PREFIX "%s", pod_key);
            self->host->enqueue (self->host, orphan_key);
        }
        return;
    }
    if (seen == S_SEEN_DELETION) {
        zc_key_of (pod->metadata, pod_key, sizeof pod_key);
        zc_expectations_deletion_observed (&self->expectations, key, pod_key);
    } else if (seen == S_SEEN_CREATION)
        zc_expectations_creation_observed (&self->expectations, key);
    self->host->enqueue (self->host, key);
}

static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    if (zc_streq (resource, "jobs.batch")) {
        char key[S_KEY_SIZE];
        zc_key_of (((const Zube__Job *)object)->metadata, key, sizeof key);
        self->host->enqueue (self->host, key);
        return;
    }
    const Zube__Pod *pod = (const Zube__Pod *)object;
    s_pod_seen (self, pod,
                pod->metadata && zc_deleting (pod->metadata) ? S_SEEN_DELETION
                                                             : S_SEEN_CREATION);
}

static void
s_on_update (void *arg, const char *resource, const ProtobufCMessage *old_object,
             const ProtobufCMessage *new_object)
{
    if (zc_streq (resource, "jobs.batch")) {
        s_on_add (arg, resource, new_object);
        return;
    }
    const Zube__Pod *old_pod = (const Zube__Pod *)old_object;
    const Zube__Pod *pod = (const Zube__Pod *)new_object;
    bool deleted = pod->metadata && zc_deleting (pod->metadata) &&
                   !(old_pod->metadata && zc_deleting (old_pod->metadata));
    s_pod_seen (arg, pod, deleted ? S_SEEN_DELETION : S_SEEN_CHANGE);
}

static void
s_on_delete (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    if (zc_streq (resource, "jobs.batch")) {
        char key[S_KEY_SIZE];
        zc_key_of (((const Zube__Job *)object)->metadata, key, sizeof key);
        zc_expectations_delete (&self->expectations, key);
        return;
    }
    s_pod_seen (self, (const Zube__Pod *)object, S_SEEN_DELETION);
}

//  ---------------------------------------------------------------------
//  Reading pods

//  Milliseconds since the epoch of an RFC 3339 time with its fraction, 0
//  when empty or unreadable.
static int64_t
s_time_ms (const char *text)
{
    int64_t seconds = zc_parse_time (text);
    if (!seconds)
        return 0;
    const char *dot = strchr (text, '.');
    int64_t ms = 0;
    if (dot)
        for (int i = 1, scale = 100; i <= 3 && dot[i] >= '0' && dot[i] <= '9';
             i++, scale /= 10)
            ms += (dot[i] - '0') * scale;
    return seconds * 1000 + ms;
}

static const char *
s_phase (const Zube__Pod *pod)
{
    return pod->status && pod->status->phase ? pod->status->phase : "";
}

//  When the pod finished: its containers' latest finishedAt, else its
//  creation.
static int64_t
s_finished_ms (const Zube__Pod *pod)
{
    int64_t latest = 0;
    for (size_t i = 0; pod->status && i < pod->status->n_container_statuses; i++) {
        const Zube__ContainerState *state = pod->status->container_statuses[i]->state;
        if (state && state->terminated) {
            int64_t at = s_time_ms (state->terminated->finished_at);
            if (at > latest)
                latest = at;
        }
    }
    return latest ? latest : s_time_ms (pod->metadata->creation_timestamp);
}

//  The completion index of a pod of an Indexed Job, -1 when none.
static int
s_index_of (const Zube__Pod *pod)
{
    const char *text = zc_annotation (pod->metadata, S_INDEX_ANNOTATION);
    if (zc_empty (text))
        return -1;
    char *end = NULL;
    long index = strtol (text, &end, 10);
    return end && !*end && index >= 0 && index < 1000000 ? (int)index : -1;
}

//  podFailurePolicy: the action of the first rule matching a failed pod
//  ("Count" when none matches), and a message for FailJob.
static const char *
s_failure_action (const Zube__Job *job, const Zube__Pod *pod, char *message,
                  size_t message_size)
{
    const Zube__PodFailurePolicy *policy = job->spec->pod_failure_policy;
    for (size_t r = 0; policy && r < policy->n_rules; r++) {
        const Zube__PodFailurePolicyRule *rule = policy->rules[r];
        const Zube__PodFailurePolicyOnExitCodesRequirement *codes = rule->on_exit_codes;
        if (codes) {
            bool in = !zc_streq (codes->operator_, "NotIn");
            for (size_t c = 0; pod->status && c < pod->status->n_container_statuses;
                 c++) {
                const Zube__ContainerStatus *status = pod->status->container_statuses[c];
                const Zube__ContainerState *state = status->state;
                if (!state || !state->terminated || state->terminated->exit_code == 0)
                    continue;
                if (!zc_empty (codes->container_name) &&
                    !zc_streq (codes->container_name, status->name))
                    continue;
                int32_t code = state->terminated->exit_code;
                bool listed = false;
                for (size_t v = 0; v < codes->n_values; v++)
                    listed |= codes->values[v] == code;
                if (listed == in) {
                    snprintf (message, message_size,
                              "Container %s for pod %s/%s failed with exit code %d "
                              "matching %s rule at index %zu",
                              status->name ? status->name : "", pod->metadata->namespace_,
                              pod->metadata->name, code,
                              rule->action ? rule->action : "Count", r);
                    return rule->action ? rule->action : "Count";
                }
            }
        }
        for (size_t p = 0; p < rule->n_on_pod_conditions; p++) {
            const Zube__PodFailurePolicyOnPodConditionsPattern *pattern =
                rule->on_pod_conditions[p];
            const Zube__PodCondition *condition = zc_pod_condition (pod, pattern->type);
            const char *want = zc_empty (pattern->status) ? "True" : pattern->status;
            if (condition && zc_streq (condition->status, want)) {
                snprintf (message, message_size,
                          "Pod %s/%s has condition %s matching %s rule at index %zu",
                          pod->metadata->namespace_, pod->metadata->name, pattern->type,
                          rule->action ? rule->action : "Count", r);
                return rule->action ? rule->action : "Count";
            }
        }
    }
    return "Count";
}

//  What sync learns from the Job's pods.
typedef struct {
    const Zube__Pod **active;
    size_t active_count;
    int32_t ready;
    int32_t terminating;
    int32_t succeeded;
    int32_t failed;
    int32_t restarts;
    //  Back-off: failures after the last success, and the last failure
    int32_t failures_after_success;
    int64_t last_failure_ms;
    //  podFailurePolicy FailJob
    bool fail_job;
    char fail_message[512];
    //  Indexed: per index, 1 when succeeded, 2 when an active pod has it
    uint8_t *indexes;
    int32_t completions;
    //  Tracking: status.uncountedTerminatedPods as it should become,
    //  whether it changes, the pods whose finalizer can go, and the counts
    //  with the uncounted ones (what decisions use)
    const char **u_succeeded;
    size_t u_succeeded_count;
    const char **u_failed;
    size_t u_failed_count;
    bool u_changed;
    const Zube__Pod **unfinalize;
    size_t unfinalize_count;
    int32_t succeeded_total;
    int32_t failed_total;
} s_pods_t;

static void
s_pods_free (s_pods_t *pods)
{
    free (pods->active);
    free (pods->indexes);
    free (pods->u_succeeded);
    free (pods->u_failed);
    free (pods->unfinalize);
}

static bool
s_listed (char *const *list, size_t count, const char *uid)
{
    for (size_t i = 0; i < count; i++)
        if (zc_streq (list[i], uid))
            return true;
    return false;
}

//  Marks the indexes of an interval list ("1,3-5") that are below
//  completions.
static void
s_parse_indexes (const char *text, uint8_t *indexes, int32_t completions)
{
    for (const char *c = text; c && *c;) {
        char *end = NULL;
        long first = strtol (c, &end, 10), last = first;
        if (end == c)
            return;
        if (*end == '-') {
            c = end + 1;
            last = strtol (c, &end, 10);
            if (end == c)
                return;
        }
        for (long i = first; i <= last && i < completions; i++)
            if (i >= 0)
                indexes[i] = 1;
        c = *end == ',' ? end + 1 : end;
        if (*c && *c != ',' && (*c < '0' || *c > '9'))
            return;
    }
}

static bool
s_indexed (const Zube__Job *job)
{
    return zc_streq (job->spec->completion_mode, "Indexed");
}

//  Reads the Job's pods. Counting follows Kubernetes' tracking with the
//  batch.kubernetes.io/job-tracking finalizer: a finished pod that still
//  has it and is not yet in status.uncountedTerminatedPods is added there
//  (an Indexed success also to completedIndexes); one already there loses
//  the finalizer; a listed uid whose pod no longer has it (or is gone)
//  moves into status.succeeded / failed. So every finished pod is counted
//  once, even when it is deleted right after.
static zube_status_t
s_count (s_self_t *self, const Zube__Job *job, s_pods_t *pods, char *error,
         size_t error_size)
{
    memset (pods, 0, sizeof *pods);
    size_t count = 0;
    const ProtobufCMessage **list = self->host->list_index (
        self->host, "pods", ZUBE_CTRL_INDEX_CONTROLLER_UID, job->metadata->uid, &count);
    bool indexed = s_indexed (job) && job->spec->has_completions;
    const Zube__JobStatus *status = job->status;
    const Zube__UncountedTerminatedPods *uncounted =
        status ? status->uncounted_terminated_pods : NULL;
    size_t cached_s = uncounted ? uncounted->n_succeeded : 0;
    size_t cached_f = uncounted ? uncounted->n_failed : 0;
    pods->completions = job->spec->has_completions ? job->spec->completions : 0;
    pods->active = calloc (count + 1, sizeof *pods->active);
    pods->indexes = indexed ? calloc ((size_t)pods->completions + 1, 1) : NULL;
    pods->u_succeeded = calloc (count + cached_s + 1, sizeof *pods->u_succeeded);
    pods->u_failed = calloc (count + cached_f + 1, sizeof *pods->u_failed);
    pods->unfinalize = calloc (count + 1, sizeof *pods->unfinalize);
    if (!pods->active || (indexed && !pods->indexes) || !pods->u_succeeded ||
        !pods->u_failed || !pods->unfinalize) {
        self->host->free_list (self->host, list);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    if (indexed && status)
        s_parse_indexes (status->completed_indexes, pods->indexes, pods->completions);
    int32_t moved_s = 0, moved_f = 0;
    //  Listed uids: kept while their pod still has the finalizer
    for (int pass = 0; pass < 2; pass++) {
        char *const *cached = pass ? (uncounted ? uncounted->failed : NULL)
                                   : (uncounted ? uncounted->succeeded : NULL);
        size_t cached_count = pass ? cached_f : cached_s;
        for (size_t u = 0; u < cached_count; u++) {
            bool held = false;
            for (size_t i = 0; i < count && !held; i++) {
                const Zube__Pod *pod = (const Zube__Pod *)list[i];
                held = pod->metadata && zc_streq (pod->metadata->uid, cached[u]) &&
                       s_has_tracking (pod);
            }
            if (held && pass)
                pods->u_failed[pods->u_failed_count++] = cached[u];
            else if (held)
                pods->u_succeeded[pods->u_succeeded_count++] = cached[u];
            else {
                pods->u_changed = true;
                *(pass ? &moved_f : &moved_s) += 1;
            }
        }
    }
    int64_t last_success_ms = 0;
    for (size_t i = 0; i < count; i++) {
        const Zube__Pod *pod = (const Zube__Pod *)list[i];
        if (!pod->metadata ||
            !zc_streq (pod->metadata->namespace_, job->metadata->namespace_))
            continue;
        int index = indexed ? s_index_of (pod) : -1;
        bool in_range = index >= 0 && index < pods->completions;
        bool tracked = s_has_tracking (pod);
        const char *uid = pod->metadata->uid;
        if (zc_streq (s_phase (pod), "Succeeded")) {
            if (tracked && uncounted && s_listed (uncounted->succeeded, cached_s, uid))
                pods->unfinalize[pods->unfinalize_count++] = pod;
            else if (tracked) {
                pods->u_succeeded[pods->u_succeeded_count++] = uid;
                pods->u_changed = true;
                if (in_range)
                    pods->indexes[index] = 1;
            }
            int64_t at = s_finished_ms (pod);
            if (at > last_success_ms)
                last_success_ms = at;
        } else if (zc_streq (s_phase (pod), "Failed")) {
            char message[512];
            const char *action = s_failure_action (job, pod, message, sizeof message);
            if (zc_streq (action, "FailJob") && !pods->fail_job) {
                pods->fail_job = true;
                snprintf (pods->fail_message, sizeof pods->fail_message, "%s", message);
            }
            if (tracked && (zc_streq (action, "Ignore") ||
                            (uncounted && s_listed (uncounted->failed, cached_f, uid))))
                pods->unfinalize[pods->unfinalize_count++] = pod;
            else if (tracked) {
                pods->u_failed[pods->u_failed_count++] = uid;
                pods->u_changed = true;
            }
        } else if (zc_deleting (pod->metadata)) {
            //  Deleted before it finished: not counted, let go
            pods->terminating++;
            if (tracked)
                pods->unfinalize[pods->unfinalize_count++] = pod;
        } else {
            pods->active[pods->active_count++] = pod;
            if (zc_pod_ready (pod))
                pods->ready++;
            for (size_t c = 0; pod->status && c < pod->status->n_container_statuses; c++)
                pods->restarts += pod->status->container_statuses[c]->restart_count;
            if (in_range && pods->indexes[index] == 0)
                pods->indexes[index] = 2;
        }
    }
    //  Failures after the last success, for the back-off
    for (size_t i = 0; i < count; i++) {
        const Zube__Pod *pod = (const Zube__Pod *)list[i];
        if (!pod->metadata || !zc_streq (s_phase (pod), "Failed"))
            continue;
        char message[512];
        if (zc_streq (s_failure_action (job, pod, message, sizeof message), "Ignore"))
            continue;
        int64_t at = s_finished_ms (pod);
        if (at > last_success_ms)
            pods->failures_after_success++;
        if (at > pods->last_failure_ms)
            pods->last_failure_ms = at;
    }
    pods->failed = (status ? status->failed : 0) + moved_f;
    pods->failed_total = pods->failed + (int32_t)pods->u_failed_count;
    if (indexed) {
        for (int32_t i = 0; i < pods->completions; i++)
            if (pods->indexes[i] == 1)
                pods->succeeded++;
        pods->succeeded_total = pods->succeeded;
    } else {
        pods->succeeded = (status ? status->succeeded : 0) + moved_s;
        pods->succeeded_total = pods->succeeded + (int32_t)pods->u_succeeded_count;
    }
    self->host->free_list (self->host, list);
    return ZUBE_OK;
}

//  Removes the tracking finalizer of a cached pod (a JSON patch testing
//  it is still where it was).
static zube_status_t
s_unfinalize (s_self_t *self, const Zube__Pod *pod, char *error, size_t error_size)
{
    for (size_t i = 0; i < pod->metadata->n_finalizers; i++) {
        if (!zc_streq (pod->metadata->finalizers[i], S_TRACKING))
            continue;
        char patch[300];
        snprintf (patch, sizeof patch,
                  "[{\"op\":\"test\",\"path\":\"/metadata/finalizers/%zu\",\"value\":"
                  "\"" S_TRACKING "\"},{\"op\":\"remove\",\"path\":\"/metadata/"
                  "finalizers/%zu\"}]",
                  i, i);
        zube_status_t status = self->host->patch (
            self->host, "pods", pod->metadata->namespace_, pod->metadata->name, NULL,
            "application/json-patch+json", patch, NULL, NULL, error, error_size);
        return status == ZUBE_NOT_FOUND ? ZUBE_OK : status;
    }
    return ZUBE_OK;
}

static zube_status_t
s_unfinalize_all (s_self_t *self, const Zube__Pod *const *victims, size_t count,
                  char *error, size_t error_size)
{
    zube_status_t result = ZUBE_OK;
    for (size_t i = 0; i < count; i++) {
        zube_status_t status = s_unfinalize (self, victims[i], error, error_size);
        if (status != ZUBE_OK)
            result = status;
    }
    return result;
}

//  "1,3-5,7" of the succeeded indexes.
static void
s_completed_indexes (const s_pods_t *pods, char *buf, size_t size)
{
    size_t length = 0;
    buf[0] = 0;
    for (int32_t i = 0; pods->indexes && i < pods->completions; i++) {
        if (pods->indexes[i] != 1)
            continue;
        int32_t last = i;
        while (last + 1 < pods->completions && pods->indexes[last + 1] == 1)
            last++;
        int n = last > i ? snprintf (buf + length, size - length, "%s%d-%d",
                                     length ? "," : "", i, last)
                         : snprintf (buf + length, size - length, "%s%d",
                                     length ? "," : "", i);
        if (n < 0 || (size_t)n >= size - length)
            return;
        length += (size_t)n;
        i = last;
    }
}

//  ---------------------------------------------------------------------
//  Managing pods

static zube_status_t
s_create_pod (s_self_t *self, const Zube__Job *job, int index, char *error,
              size_t error_size)
{
    if (!job->spec->template_) {
        snprintf (error, error_size, "spec.template: Required value");
        return ZUBE_INVALID;
    }
    Zube__PodTemplateSpec *template_ = (Zube__PodTemplateSpec *)zc_copy (
        &job->spec->template_->base, &zube__pod_template_spec__descriptor);
    Zube__ObjectMeta *meta = template_ ? template_->metadata : NULL;
    if (!meta) {
        meta = calloc (1, sizeof *meta);
        if (template_ && meta) {
            zube__object_meta__init (meta);
            template_->metadata = meta;
        }
    }
    if (!template_ || !meta || !template_->spec) {
        zc_free (template_);
        snprintf (error, error_size,
                  template_ ? "spec.template.spec: Required value" : "out of memory");
        return template_ ? ZUBE_INVALID : ZUBE_INTERNAL;
    }
    char generate[300], index_text[16], hostname[300];
    snprintf (index_text, sizeof index_text, "%d", index);
    if (index >= 0)
        snprintf (generate, sizeof generate, "%.200s-%d-", job->metadata->name, index);
    else
        snprintf (generate, sizeof generate, "%.250s-", job->metadata->name);
    //  Indexed: the index as annotation, env JOB_COMPLETION_INDEX, and
    //  the hostname <job>-<index>, as Kubernetes' addCompletionIndex*
    Zube__EnvVar env = ZUBE__ENV_VAR__INIT;
    env.name = "JOB_COMPLETION_INDEX";
    env.value = index_text;
    Zube__EnvVar ***saved_env = NULL;
    size_t n_containers = template_->spec->n_containers;
    Zube__EnvVar **env_lists[n_containers + 1];
    if (index >= 0) {
        zc_set_annotation (meta, S_INDEX_ANNOTATION, index_text);
        if (zc_empty (template_->spec->hostname)) {
            snprintf (hostname, sizeof hostname, "%.62s-%d", job->metadata->name, index);
            free (template_->spec->hostname);
            template_->spec->hostname = strdup (hostname);
        }
        for (size_t c = 0; c < n_containers; c++) {
            Zube__Container *container = template_->spec->containers[c];
            Zube__EnvVar **grown =
                realloc (container->env, (container->n_env + 1) * sizeof *grown);
            if (!grown)
                continue;
            container->env = grown;
            container->env[container->n_env++] = &env;
            env_lists[c] = grown;
        }
        saved_env = env_lists;
    }
    char **finalizers =
        realloc (meta->finalizers, (meta->n_finalizers + 1) * sizeof *finalizers);
    if (finalizers) {
        meta->finalizers = finalizers;
        meta->finalizers[meta->n_finalizers] = strdup (S_TRACKING);
        if (meta->finalizers[meta->n_finalizers])
            meta->n_finalizers++;
    }
    zube_status_t status = zc_create_pod (self->host, &job->base, "batch/v1", "Job", meta,
                                          template_->spec, generate, error, error_size);
    //  The env entry is on the stack: take it out before freeing
    for (size_t c = 0; saved_env && c < n_containers; c++) {
        Zube__Container *container = template_->spec->containers[c];
        if (container->n_env && container->env[container->n_env - 1] == &env)
            container->n_env--;
    }
    zc_free (template_);
    return status;
}

//  Deletes pods (expected as deletions of key), with events.
static zube_status_t
s_delete_pods (s_self_t *self, const Zube__Job *job, const char *key,
               const Zube__Pod *const *victims, size_t count, char *error,
               size_t error_size)
{
    if (!count)
        return ZUBE_OK;
    char **keys = calloc (count, sizeof *keys);
    if (!keys) {
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    for (size_t i = 0; i < count; i++) {
        char pod_key[S_KEY_SIZE];
        zc_key_of (victims[i]->metadata, pod_key, sizeof pod_key);
        keys[i] = strdup (pod_key);
    }
    zc_expectations_expect (&self->expectations, key, 0, (const char *const *)keys,
                            count);
    zube_status_t result = ZUBE_OK;
    for (size_t i = 0; i < count; i++) {
        const Zube__ObjectMeta *meta = victims[i]->metadata;
        char why[1024] = "";
        zube_ctrl_delete_options_t options = {.struct_size = sizeof options,
                                              .uid = meta->uid};
        zube_status_t status = self->host->delete_ (
            self->host, "pods", meta->namespace_, meta->name, &options, why, sizeof why);
        if (status == ZUBE_OK)
            self->host->event (self->host, &job->base, ZUBE_CTRL_EVENT_NORMAL,
                               "SuccessfulDelete", "Deleted pod: %s", meta->name);
        else if (status != ZUBE_NOT_FOUND) {
            zc_expectations_deletion_observed (&self->expectations, key, keys[i]);
            self->host->event (self->host, &job->base, ZUBE_CTRL_EVENT_WARNING,
                               "FailedDelete", "Error deleting: %s", why);
            snprintf (error, error_size, "deleting pod %s: %s", meta->name, why);
            result = status;
        }
    }
    for (size_t i = 0; i < count; i++)
        free (keys[i]);
    free (keys);
    return result;
}

//  Newest first, not ready before ready: the pods to delete when there
//  are too many (Kubernetes' ActivePods order, roughly).
static int
s_victim_compare (const void *a_arg, const void *b_arg)
{
    const Zube__Pod *a = *(const Zube__Pod *const *)a_arg;
    const Zube__Pod *b = *(const Zube__Pod *const *)b_arg;
    bool a_ready = zc_pod_ready (a), b_ready = zc_pod_ready (b);
    if (a_ready != b_ready)
        return a_ready ? 1 : -1;
    int64_t a_created = s_time_ms (a->metadata->creation_timestamp);
    int64_t b_created = s_time_ms (b->metadata->creation_timestamp);
    if (a_created != b_created)
        return a_created > b_created ? -1 : 1;
    return strcmp (b->metadata->name ? b->metadata->name : "",
                   a->metadata->name ? a->metadata->name : "");
}

//  Kubernetes' manageJob: creates or deletes the difference to the active
//  pods wanted; *wait_ms_p > 0 when creation waits out the back-off.
static zube_status_t
s_manage (s_self_t *self, const Zube__Job *job, const char *key, s_pods_t *pods,
          int64_t now_ms, int64_t *wait_ms_p, char *error, size_t error_size)
{
    const Zube__JobSpec *spec = job->spec;
    int32_t parallelism = spec->has_parallelism ? spec->parallelism : 1;
    int32_t wanted;
    if (!spec->has_completions)
        //  Work queue: once one succeeded, no new pods
        wanted = pods->succeeded_total > 0 ? 0 : parallelism;
    else {
        int32_t left = spec->completions - pods->succeeded_total;
        wanted = left < parallelism ? left : parallelism;
    }
    if (wanted < 0)
        wanted = 0;
    //  Terminating pods hold their place with podReplacementPolicy Failed
    int32_t active = (int32_t)pods->active_count;
    int32_t occupied = active;
    if (zc_streq (spec->pod_replacement_policy, "Failed"))
        occupied += pods->terminating;
    if (active > wanted) {
        qsort (pods->active, pods->active_count, sizeof *pods->active, s_victim_compare);
        int32_t excess = active - wanted;
        return s_delete_pods (self, job, key, pods->active,
                              (size_t)(excess < S_MAX_PER_SYNC ? excess : S_MAX_PER_SYNC),
                              error, error_size);
    }
    int32_t diff = wanted - occupied;
    if (diff <= 0)
        return ZUBE_OK;
    if (diff > S_MAX_PER_SYNC)
        diff = S_MAX_PER_SYNC; //  the rest on the next sync (the new pods' events)
    if (pods->failures_after_success > 0) {
        int64_t delay = self->backoff_ms;
        for (int32_t i = 1;
             i < pods->failures_after_success && delay < self->backoff_max_ms; i++)
            delay *= 2;
        if (delay > self->backoff_max_ms)
            delay = self->backoff_max_ms;
        int64_t ready_at = pods->last_failure_ms + delay;
        if (ready_at > now_ms) {
            *wait_ms_p = ready_at - now_ms;
            return ZUBE_OK;
        }
    }
    //  Indexed: the lowest indexes neither succeeded nor active
    int indexes[diff];
    int32_t count = 0;
    if (s_indexed (job) && pods->indexes) {
        for (int32_t i = 0; i < pods->completions && count < diff; i++)
            if (pods->indexes[i] == 0)
                indexes[count++] = i;
    } else
        for (; count < diff; count++)
            indexes[count] = -1;
    zc_expectations_expect (&self->expectations, key, count, NULL, 0);
    zube_status_t result = ZUBE_OK;
    int32_t done = 0, batch = 1;
    //  Slow start, as Kubernetes: batches of 1, 2, 4, ... until one fails
    while (done < count && result == ZUBE_OK) {
        int32_t size = batch < count - done ? batch : count - done;
        for (int32_t i = 0; i < size; i++) {
            zube_status_t status =
                s_create_pod (self, job, indexes[done + i], error, error_size);
            if (status != ZUBE_OK) {
                zc_expectations_creation_observed (&self->expectations, key);
                result = status;
            }
        }
        done += size;
        batch *= 2;
    }
    for (int32_t i = done; i < count; i++)
        zc_expectations_creation_observed (&self->expectations, key);
    return result;
}

//  ---------------------------------------------------------------------
//  Status

static const Zube__JobCondition *
s_condition (const Zube__Job *job, const char *type)
{
    for (size_t i = 0; job->status && i < job->status->n_conditions; i++)
        if (zc_streq (job->status->conditions[i]->type, type))
            return job->status->conditions[i];
    return NULL;
}

static bool
s_condition_true (const Zube__Job *job, const char *type)
{
    const Zube__JobCondition *condition = s_condition (job, type);
    return condition && zc_streq (condition->status, "True");
}

//  What the status should become.
typedef struct {
    const s_pods_t *pods;
    bool start;         //  set startTime now
    bool clear_start;   //  suspended: no startTime
    bool complete;      //  condition Complete, completionTime
    const char *failed; //  condition Failed with this reason
    char failed_message[600];
    int suspended; //  1: Suspended True, -1: Suspended False (resumed)
} s_outcome_t;

//  Sets a condition of an own JobStatus (status changes keep
//  lastTransitionTime unless the status flips).
static int
s_set_condition (Zube__JobStatus *status, const char *type, const char *value,
                 const char *reason, const char *message, const char *now)
{
    Zube__JobCondition *condition = NULL;
    for (size_t i = 0; i < status->n_conditions; i++)
        if (zc_streq (status->conditions[i]->type, type))
            condition = status->conditions[i];
    if (!condition) {
        Zube__JobCondition **grown =
            realloc (status->conditions, (status->n_conditions + 1) * sizeof *grown);
        if (!grown)
            return -1;
        status->conditions = grown;
        condition = malloc (sizeof *condition);
        if (!condition)
            return -1;
        zube__job_condition__init (condition);
        status->conditions[status->n_conditions++] = condition;
    }
    if (!zc_streq (condition->status, value)) {
        free (condition->last_transition_time);
        condition->last_transition_time = strdup (now);
    }
    const char *values[] = {type, value, reason, message, now};
    char **fields[] = {&condition->type, &condition->status, &condition->reason,
                       &condition->message, &condition->last_probe_time};
    for (size_t i = 0; i < 5; i++) {
        free (*fields[i]);
        *fields[i] = values[i] ? strdup (values[i]) : NULL;
    }
    return 0;
}

static zube_status_t
s_write_status (s_self_t *self, const Zube__Job *job, const s_outcome_t *outcome,
                char *error, size_t error_size)
{
    const s_pods_t *pods = outcome->pods;
    const Zube__JobStatus *old = job->status;
    char completed[4096] = "";
    s_completed_indexes (pods, completed, sizeof completed);
    bool same =
        old && old->active == (int32_t)pods->active_count && old->ready == pods->ready &&
        old->succeeded == pods->succeeded && old->failed == pods->failed &&
        old->terminating == pods->terminating &&
        (!pods->indexes ||
         zc_streq (old->completed_indexes ? old->completed_indexes : "", completed)) &&
        !pods->u_changed && !outcome->start && !outcome->clear_start &&
        !outcome->complete && !outcome->failed && outcome->suspended == 0;
    if (same)
        return ZUBE_OK;
    Zube__Job *copy = (Zube__Job *)zc_copy (&job->base, &zube__job__descriptor);
    if (copy && !copy->status) {
        copy->status = malloc (sizeof *copy->status);
        if (copy->status)
            zube__job_status__init (copy->status);
    }
    if (!copy || !copy->status) {
        zc_free (copy);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    Zube__JobStatus *status = copy->status;
    char now[40];
    zc_now_rfc3339 (now, sizeof now);
    status->has_active = status->has_ready = status->has_succeeded = 1;
    status->has_failed = status->has_terminating = 1;
    status->active = (int32_t)pods->active_count;
    status->ready = pods->ready;
    status->succeeded = pods->succeeded;
    status->failed = pods->failed;
    status->terminating = pods->terminating;
    //  The lists borrow the cache's strings: put back before the free
    Zube__UncountedTerminatedPods uncounted = ZUBE__UNCOUNTED_TERMINATED_PODS__INIT;
    Zube__UncountedTerminatedPods *saved_uncounted = status->uncounted_terminated_pods;
    uncounted.succeeded = (char **)pods->u_succeeded;
    uncounted.n_succeeded = pods->u_succeeded_count;
    uncounted.failed = (char **)pods->u_failed;
    uncounted.n_failed = pods->u_failed_count;
    status->uncounted_terminated_pods = &uncounted;
    if (pods->indexes) {
        free (status->completed_indexes);
        status->completed_indexes = strdup (completed);
    }
    if (outcome->start || outcome->clear_start) {
        free (status->start_time);
        status->start_time = outcome->start ? strdup (now) : NULL;
    }
    int rc = 0;
    if (outcome->suspended > 0)
        rc |= s_set_condition (status, "Suspended", "True", "JobSuspended",
                               "Job suspended", now);
    else if (outcome->suspended < 0)
        rc |= s_set_condition (status, "Suspended", "False", "JobResumed", "Job resumed",
                               now);
    if (outcome->complete) {
        rc |= s_set_condition (status, "SuccessCriteriaMet", "True", "CompletionsReached",
                               "Reached expected number of succeeded pods", now);
        rc |= s_set_condition (status, "Complete", "True", "CompletionsReached",
                               "Reached expected number of succeeded pods", now);
        free (status->completion_time);
        status->completion_time = strdup (now);
    }
    if (outcome->failed) {
        rc |= s_set_condition (status, "FailureTarget", "True", outcome->failed,
                               outcome->failed_message, now);
        rc |= s_set_condition (status, "Failed", "True", outcome->failed,
                               outcome->failed_message, now);
    }
    zube_status_t result = ZUBE_INTERNAL;
    if (rc == 0)
        result = self->host->update (self->host, "jobs.batch", &copy->base, "status",
                                     NULL, error, error_size);
    else
        snprintf (error, error_size, "out of memory");
    status->uncounted_terminated_pods = saved_uncounted;
    zc_free (copy);
    return result;
}

//  ---------------------------------------------------------------------
//  Sync

//  A finished Job: deleted ttlSecondsAfterFinished after it finished
//  (Kubernetes' ttlafterfinished controller).
static zube_status_t
s_finished (s_self_t *self, const Zube__Job *job, const char *key, int64_t now_ms,
            char *error, size_t error_size)
{
    if (!job->spec->has_ttl_seconds_after_finished || zc_deleting (job->metadata))
        return ZUBE_OK;
    const Zube__JobCondition *done = s_condition_true (job, "Complete")
                                         ? s_condition (job, "Complete")
                                         : s_condition (job, "Failed");
    int64_t finished_ms = s_time_ms (job->status->completion_time);
    if (!finished_ms && done)
        finished_ms = s_time_ms (done->last_transition_time);
    int64_t due_ms = finished_ms + (int64_t)job->spec->ttl_seconds_after_finished * 1000;
    if (due_ms > now_ms) {
        self->host->enqueue_after (self->host, key, due_ms - now_ms);
        return ZUBE_OK;
    }
    zube_ctrl_delete_options_t options = {.struct_size = sizeof options,
                                          .uid = job->metadata->uid,
                                          .propagation_policy = "Foreground"};
    zube_status_t status =
        self->host->delete_ (self->host, "jobs.batch", job->metadata->namespace_,
                             job->metadata->name, &options, error, error_size);
    return status == ZUBE_NOT_FOUND ? ZUBE_OK : status;
}

//  A tracked pod whose Job the cache does not have: the finalizer goes
//  once the apiserver confirms the Job is gone (Kubernetes' orphan pod
//  handling).
static zube_status_t
s_release_orphan (s_self_t *self, const char *pod_key, char *error, size_t error_size)
{
    char namespace_[256], name[256];
    if (zube_ctrl_split_key (pod_key, namespace_, name, sizeof name) != 0)
        return ZUBE_OK;
    const Zube__Pod *pod =
        (const Zube__Pod *)self->host->get (self->host, "pods", namespace_, name);
    const Zube__OwnerReference *ref = pod ? zc_controller_of (pod->metadata) : NULL;
    if (!ref || !s_has_tracking (pod))
        return ZUBE_OK;
    if (ZUBE_CTRL_HAS (self->host, get_live)) {
        ProtobufCMessage *live = NULL;
        zube_status_t status =
            self->host->get_live (self->host, "jobs.batch", namespace_, ref->name,
                                  &zube__job__descriptor, &live, error, error_size);
        bool same = status == ZUBE_OK && ((Zube__Job *)live)->metadata &&
                    zc_streq (((Zube__Job *)live)->metadata->uid, ref->uid);
        zc_free (live);
        if (same)
            return ZUBE_OK; //  the cache lags: the Job's own sync counts it
        if (status != ZUBE_OK && status != ZUBE_NOT_FOUND)
            return status;
    }
    return s_unfinalize (self, pod, error, error_size);
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    char namespace_[256], name[256];
    if (strncmp (key, S_ORPHAN_PREFIX, strlen (S_ORPHAN_PREFIX)) == 0)
        return s_release_orphan (self, key + strlen (S_ORPHAN_PREFIX), error, error_size);
    if (zube_ctrl_split_key (key, namespace_, name, sizeof name) != 0)
        return ZUBE_OK;
    const Zube__Job *job =
        (const Zube__Job *)self->host->get (self->host, "jobs.batch", namespace_, name);
    if (!job || !job->metadata || !job->spec) {
        zc_expectations_delete (&self->expectations, key);
        return ZUBE_OK;
    }
    int64_t now_ms = self->host->base->time_ms (self->host->base);
    if (s_condition_true (job, "Complete") || s_condition_true (job, "Failed")) {
        //  Counting is over: no pod keeps the finalizer
        size_t count = 0;
        const ProtobufCMessage **list =
            self->host->list_index (self->host, "pods", ZUBE_CTRL_INDEX_CONTROLLER_UID,
                                    job->metadata->uid, &count);
        zube_status_t released = ZUBE_OK;
        for (size_t i = 0; i < count; i++) {
            zube_status_t status =
                s_unfinalize (self, (const Zube__Pod *)list[i], error, error_size);
            if (status != ZUBE_OK)
                released = status;
        }
        self->host->free_list (self->host, list);
        zube_status_t status = s_finished (self, job, key, now_ms, error, error_size);
        return released != ZUBE_OK ? released : status;
    }
    bool satisfied = zc_expectations_satisfied (&self->expectations, key);
    s_pods_t pods;
    zube_status_t status = s_count (self, job, &pods, error, error_size);
    if (status != ZUBE_OK) {
        s_pods_free (&pods);
        return status;
    }
    s_outcome_t outcome = {.pods = &pods};
    const Zube__JobSpec *spec = job->spec;
    bool suspended = spec->has_suspend && spec->suspend;
    bool has_start = job->status && !zc_empty (job->status->start_time);
    int64_t start_ms = has_start ? s_time_ms (job->status->start_time) : now_ms;
    if (suspended) {
        outcome.clear_start = has_start;
        if (!s_condition_true (job, "Suspended")) {
            outcome.suspended = 1;
            self->host->event (self->host, &job->base, ZUBE_CTRL_EVENT_NORMAL,
                               "Suspended", "Job suspended");
        }
    } else {
        outcome.start = !has_start;
        if (s_condition_true (job, "Suspended")) {
            outcome.suspended = -1;
            self->host->event (self->host, &job->base, ZUBE_CTRL_EVENT_NORMAL, "Resumed",
                               "Job resumed");
        }
    }
    //  Failed?
    int32_t backoff_limit = spec->has_backoff_limit ? spec->backoff_limit : 6;
    bool on_failure = spec->template_ && spec->template_->spec &&
                      zc_streq (spec->template_->spec->restart_policy, "OnFailure");
    if (pods.fail_job) {
        outcome.failed = "PodFailurePolicy";
        snprintf (outcome.failed_message, sizeof outcome.failed_message, "%s",
                  pods.fail_message);
    } else if (pods.failed_total > backoff_limit ||
               (on_failure && (backoff_limit == 0 ? pods.restarts > 0
                                                  : pods.restarts >= backoff_limit))) {
        outcome.failed = "BackoffLimitExceeded";
        snprintf (outcome.failed_message, sizeof outcome.failed_message,
                  "Job has reached the specified backoff limit");
    } else if (!suspended && spec->has_active_deadline_seconds && has_start &&
               now_ms - start_ms >= spec->active_deadline_seconds * 1000) {
        outcome.failed = "DeadlineExceeded";
        snprintf (outcome.failed_message, sizeof outcome.failed_message,
                  "Job was active longer than specified deadline");
    }
    //  Complete?
    if (!outcome.failed) {
        if (spec->has_completions)
            outcome.complete = pods.succeeded_total >= spec->completions;
        else
            outcome.complete = pods.succeeded_total > 0 && pods.active_count == 0;
    }
    //  The end is written once every finished pod is counted (nothing
    //  uncounted is left); until then the pods go and counting goes on
    bool counted = pods.u_succeeded_count == 0 && pods.u_failed_count == 0;
    bool ending = outcome.failed || outcome.complete;
    zube_status_t manage = ZUBE_OK;
    char manage_error[1024] = "";
    int64_t wait_ms = 0;
    if (ending || suspended) {
        //  Nothing runs any more
        if (satisfied && !zc_deleting (job->metadata))
            manage = s_delete_pods (self, job, key, pods.active, pods.active_count,
                                    manage_error, sizeof manage_error);
        if (!counted) {
            outcome.failed = NULL;
            outcome.complete = false;
        } else if (outcome.failed)
            self->host->event (self->host, &job->base, ZUBE_CTRL_EVENT_WARNING,
                               outcome.failed, "%s", outcome.failed_message);
        else if (outcome.complete)
            self->host->event (self->host, &job->base, ZUBE_CTRL_EVENT_NORMAL,
                               "Completed", "Job completed");
    } else if (satisfied && !zc_deleting (job->metadata))
        manage = s_manage (self, job, key, &pods, now_ms, &wait_ms, manage_error,
                           sizeof manage_error);
    status = s_write_status (self, job, &outcome, error, error_size);
    //  Finalizers go only once the status lists the pods (durably: the
    //  cached status the uids were read from)
    if (status == ZUBE_OK && pods.unfinalize_count) {
        zube_status_t released = s_unfinalize_all (
            self, pods.unfinalize, pods.unfinalize_count, error, error_size);
        if (released != ZUBE_OK)
            status = released;
    }
    if (wait_ms > 0)
        self->host->enqueue_after (self->host, key, wait_ms);
    //  Wake up at the deadline
    if (!ending && !suspended && spec->has_active_deadline_seconds) {
        int64_t due = start_ms + spec->active_deadline_seconds * 1000 - now_ms;
        self->host->enqueue_after (self->host, key, due > 0 ? due : 1);
    }
    s_pods_free (&pods);
    if (manage != ZUBE_OK) {
        snprintf (error, error_size, "%s", manage_error);
        return manage;
    }
    return status;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "job",
    .watches = s_watches,
    //  --concurrent-job-syncs. Safe to interleave: expectations are
    //  looked up by key at every use, nothing kept across host calls
    .workers = 5,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .on_delete = s_on_delete,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "job", .version = "0.1.0", .kind = ZUBE_PLUGIN_CONTROLLER,
                    .ops = &s_ops,
                    .description = "Jobs: pods run to completion, with back-off, "
                                   "deadlines, Indexed mode and podFailurePolicy")
