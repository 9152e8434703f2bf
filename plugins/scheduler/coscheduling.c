/*  Coscheduling - gang scheduling: the pods of a pod group are bound all
    together or not at all (the scheduler-plugins project's coscheduling
    plugin, simplified; docs/scheduler.md).

    A pod joins group NAME of its namespace with the label
    scheduling.x-k8s.io/pod-group: NAME (scheduling.zube.io/pod-group, the
    name docs/schemas.md gave first, works too). The group's minMember is
    the PodGroup NAME's spec.minMember (zube.io/v1alpha1) when that object
    exists, else the pod's annotation scheduling.x-k8s.io/min-member.

    - Queue sort: priority, then the group's creation time (the PodGroup's,
      else the oldest member seen), then the group's name, so a group's
      pods come out of the queue together.
    - Pre-filter: refuses a pod whose group has fewer than minMember pods,
      or whose group was rejected less than 3 s ago (scheduler-plugins'
      denied-group cache), so a gang that cannot fit does not churn.
    - Permit: waits while fewer than minMember of the group are placed
      (assumed, waiting or bound), waking the pending siblings; the one
      that completes the group allows every waiting sibling.
    - Post-filter, unreserve: one member that cannot be placed, or is
      unreserved (rejected, timed out, failed to bind), rejects the
      group's waiting pods at once.

    It keeps no state that matters across a swap: groups are recounted
    from the scheduler's caches each time; the creation times and denials
    it remembers are hints. */
#define _GNU_SOURCE
#include "core.pb-c.h"
#include "sched_plugin.h"
#include "zube.pb-c.h"
#include <stdint.h>
#include <time.h>

#define S_LABEL "scheduling.x-k8s.io/pod-group"
#define S_LABEL_ZUBE "scheduling.zube.io/pod-group"
#define S_MIN_MEMBER "scheduling.x-k8s.io/min-member"
#define S_DENY_MS 3000
//  Remembered groups untouched this long are forgotten
#define S_FORGET_MS (10 * 60 * 1000)

typedef struct {
    char *key; //  "namespace/name"
    int64_t created_ms;
    int64_t denied_until_ms;
    int64_t used_ms;
} s_group_t;

typedef struct {
    const zube_host_t *host;
    const zube_sched_handle_t *handle;
    int64_t wait_ms;
    s_group_t *groups;
    size_t group_count;
    size_t group_capacity;
} s_self_t;

//  A pod's group: the label's key and value, and "namespace/name".
typedef struct {
    const char *label;
    const char *name;
    char key[512];
} s_pod_group_t;

static int64_t
s_now_ms (s_self_t *self)
{
    if (self->host && ZUBE_HOST_HAS (self->host, monotonic_ns))
        return self->host->monotonic_ns (self->host) / 1000000;
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool
s_group_of (const zube_sched_pod_t *pod, s_pod_group_t *group)
{
    group->label = S_LABEL;
    group->name = sched_label (pod->labels, pod->label_count, S_LABEL);
    if (!group->name || !*group->name) {
        group->label = S_LABEL_ZUBE;
        group->name = sched_label (pod->labels, pod->label_count, S_LABEL_ZUBE);
    }
    if (!group->name || !*group->name)
        return false;
    snprintf (group->key, sizeof group->key, "%s/%s",
              pod->namespace_ ? pod->namespace_ : "default", group->name);
    return true;
}

static bool
s_in_group (const zube_sched_pod_t *pod, const s_pod_group_t *group)
{
    s_pod_group_t other;
    return s_group_of (pod, &other) && strcmp (other.key, group->key) == 0;
}

//  The remembered entry of a group, made when absent (NULL: no memory).
static s_group_t *
s_remember (s_self_t *self, const char *key)
{
    int64_t now = s_now_ms (self);
    for (size_t i = 0; i < self->group_count; i++)
        if (strcmp (self->groups[i].key, key) == 0) {
            self->groups[i].used_ms = now;
            return &self->groups[i];
        }
    //  Forget the long unused before growing
    for (size_t i = 0; i < self->group_count;) {
        if (now - self->groups[i].used_ms > S_FORGET_MS) {
            free (self->groups[i].key);
            self->groups[i] = self->groups[--self->group_count];
        } else
            i++;
    }
    if (self->group_count == self->group_capacity) {
        size_t capacity = self->group_capacity ? self->group_capacity * 2 : 16;
        s_group_t *grown = realloc (self->groups, capacity * sizeof *grown);
        if (!grown)
            return NULL;
        self->groups = grown;
        self->group_capacity = capacity;
    }
    s_group_t *group = &self->groups[self->group_count];
    *group = (s_group_t){.key = strdup (key), .created_ms = INT64_MAX, .used_ms = now};
    if (!group->key)
        return NULL;
    self->group_count++;
    return group;
}

static const Zube__PodGroup *
s_pod_group (s_self_t *self, const zube_sched_pod_t *pod, const s_pod_group_t *group)
{
    if (!self->handle || !ZUBE_SCHED_HAS (self->handle, get_object))
        return NULL;
    return self->handle->get_object (self->handle, "podgroups", pod->namespace_,
                                     group->name);
}

static const char *
s_annotation (const zube_sched_pod_t *pod, const char *key)
{
    const Zube__Pod *object = pod->pod;
    const Zube__ObjectMeta *meta = object ? object->metadata : NULL;
    for (size_t i = 0; meta && i < meta->n_annotations; i++)
        if (meta->annotations[i]->key && strcmp (meta->annotations[i]->key, key) == 0)
            return meta->annotations[i]->value;
    return NULL;
}

//  The group's minMember: the PodGroup's, else the pod's annotation; 0
//  when neither says (why tells).
static long
s_min_member (s_self_t *self, const zube_sched_pod_t *pod, const s_pod_group_t *group,
              char *why, size_t why_size)
{
    const Zube__PodGroup *pod_group = s_pod_group (self, pod, group);
    if (pod_group && pod_group->spec && pod_group->spec->has_min_member &&
        pod_group->spec->min_member > 0)
        return pod_group->spec->min_member;
    const char *text = s_annotation (pod, S_MIN_MEMBER);
    char *end = NULL;
    long number = text ? strtol (text, &end, 10) : 0;
    if (text && *text && !*end && number > 0)
        return number;
    if (text)
        snprintf (why, why_size,
                  "pod group %s: annotation " S_MIN_MEMBER
                  " is \"%s\", not a whole number above 0",
                  group->name, text);
    else
        snprintf (why, why_size,
                  "pod group %s not found (no PodGroup %s and no " S_MIN_MEMBER
                  " annotation)",
                  group->name, group->name);
    return 0;
}

static int64_t
s_wait_ms (s_self_t *self, const zube_sched_pod_t *pod, const s_pod_group_t *group)
{
    const Zube__PodGroup *pod_group = s_pod_group (self, pod, group);
    if (pod_group && pod_group->spec && pod_group->spec->has_schedule_timeout_seconds &&
        pod_group->spec->schedule_timeout_seconds > 0)
        return (int64_t)pod_group->spec->schedule_timeout_seconds * 1000;
    return self->wait_ms;
}

//  Counting a group's pods through the handle.
typedef struct {
    size_t pods;
    size_t placed;
    const char *uid;
    bool self_placed;
    s_self_t *plugin;
    bool activate;
} s_count_t;

static bool
s_count_one (const void *object, const char *node_name, void *arg)
{
    s_count_t *count = arg;
    const Zube__Pod *pod = object;
    count->pods++;
    bool placed = node_name && *node_name;
    const char *uid = pod->metadata && pod->metadata->uid ? pod->metadata->uid : "";
    if (placed) {
        count->placed++;
        count->self_placed |= count->uid && *uid && strcmp (uid, count->uid) == 0;
    } else if (count->activate && ZUBE_SCHED_HAS (count->plugin->handle, activate))
        count->plugin->handle->activate (count->plugin->handle, pod->metadata->namespace_,
                                         pod->metadata->name);
    return true;
}

//  The group's pods and how many of them are placed (the pod itself
//  counted placed); activate: wake the pending ones.
static s_count_t
s_count (s_self_t *self, const zube_sched_pod_t *pod, const s_pod_group_t *group,
         bool activate)
{
    s_count_t count = {.uid = pod->uid, .plugin = self, .activate = activate};
    if (self->handle && ZUBE_SCHED_HAS (self->handle, each_object))
        self->handle->each_object (self->handle, "pods", pod->namespace_, group->label,
                                   group->name, s_count_one, &count);
    return count;
}

//  Allowing or rejecting a group's waiting pods.
typedef struct {
    s_self_t *self;
    const s_pod_group_t *group;
    const zube_sched_pod_t *except;
    const char *reject; //  NULL: allow
} s_settle_t;

static bool
s_settle_one (const zube_sched_pod_t *pod, const char *node_name, void *arg)
{
    (void)node_name;
    s_settle_t *settle = arg;
    const zube_sched_handle_t *handle = settle->self->handle;
    if (pod == settle->except || !s_in_group (pod, settle->group))
        return true;
    if (settle->reject)
        handle->reject (handle, pod, "Coscheduling", settle->reject);
    else
        handle->allow (handle, pod, "Coscheduling");
    return true;
}

static void
s_settle (s_self_t *self, const s_pod_group_t *group, const zube_sched_pod_t *except,
          const char *reject)
{
    if (!self->handle || !ZUBE_SCHED_HAS (self->handle, each_waiting))
        return;
    s_settle_t settle = {self, group, except, reject};
    self->handle->each_waiting (self->handle, s_settle_one, &settle);
}

static void
s_deny (s_self_t *self, const s_pod_group_t *group)
{
    s_group_t *remembered = s_remember (self, group->key);
    if (remembered)
        remembered->denied_until_ms = s_now_ms (self) + S_DENY_MS;
}

static void *
s_create (const zube_host_t *host, const zube_sched_args_t *args, char *error,
          size_t error_size)
{
    long seconds = 60;
    for (size_t i = 0; args && i < args->count; i++) {
        if (strcmp (args->keys[i], "permitWaitingTimeSeconds") == 0) {
            if (!sched_args_int (args, args->keys[i], args->values[i], 1, 900, &seconds,
                                 error, error_size))
                return NULL;
        } else {
            snprintf (
                error, error_size,
                "%s.%s: unknown field (Coscheduling takes permitWaitingTimeSeconds)",
                args->field, args->keys[i]);
            return NULL;
        }
    }
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->host = host;
    self->wait_ms = (int64_t)seconds * 1000;
    return self;
}

static void
s_destroy (void *self_)
{
    s_self_t *self = self_;
    for (size_t i = 0; i < self->group_count; i++)
        free (self->groups[i].key);
    free (self->groups);
    free (self);
}

static void
s_set_handle (void *self_, const zube_sched_handle_t *handle)
{
    ((s_self_t *)self_)->handle = handle;
}

//  The creation time a pod sorts by: its group's, else its own.
static int64_t
s_sort_time (s_self_t *self, const zube_sched_pod_t *pod, const s_pod_group_t *group,
             bool grouped)
{
    if (!grouped)
        return pod->created_ms;
    const Zube__PodGroup *pod_group = s_pod_group (self, pod, group);
    if (pod_group && pod_group->metadata && pod_group->metadata->creation_timestamp) {
        //  RFC 3339 in whole seconds, UTC
        struct tm tm = {0};
        const char *end =
            strptime (pod_group->metadata->creation_timestamp, "%Y-%m-%dT%H:%M:%S", &tm);
        if (end)
            return (int64_t)timegm (&tm) * 1000;
    }
    s_group_t *remembered = s_remember (self, group->key);
    if (!remembered)
        return pod->created_ms;
    if (pod->created_ms < remembered->created_ms)
        remembered->created_ms = pod->created_ms;
    return remembered->created_ms;
}

static bool
s_queue_less (void *self_, const zube_sched_pod_t *a, const zube_sched_pod_t *b)
{
    s_self_t *self = self_;
    if (a->priority != b->priority)
        return a->priority > b->priority;
    s_pod_group_t group_a, group_b;
    bool grouped_a = s_group_of (a, &group_a), grouped_b = s_group_of (b, &group_b);
    int64_t time_a = s_sort_time (self, a, &group_a, grouped_a);
    int64_t time_b = s_sort_time (self, b, &group_b, grouped_b);
    if (time_a != time_b)
        return time_a < time_b;
    //  The group's name, or the pod's own for a pod of no group
    char name_a[512], name_b[512];
    snprintf (name_a, sizeof name_a, "%s/%s", a->namespace_ ? a->namespace_ : "",
              grouped_a ? group_a.name : a->name);
    snprintf (name_b, sizeof name_b, "%s/%s", b->namespace_ ? b->namespace_ : "",
              grouped_b ? group_b.name : b->name);
    int order = strcmp (name_a, name_b);
    if (order != 0)
        return order < 0;
    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms;
    return strcmp (a->name, b->name) < 0;
}

static zube_sched_code_t
s_pre_filter (void *self_, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
              void **cycle_data, char *reason, size_t reason_size)
{
    (void)cycle, (void)cycle_data;
    s_self_t *self = self_;
    s_pod_group_t group;
    if (!s_group_of (pod, &group))
        return ZUBE_SCHED_SKIP;
    long min = s_min_member (self, pod, &group, reason, reason_size);
    if (min == 0)
        return ZUBE_SCHED_UNRESOLVABLE;
    s_group_t *remembered = s_remember (self, group.key);
    if (remembered && remembered->denied_until_ms > s_now_ms (self)) {
        snprintf (reason, reason_size,
                  "pod group %s was rejected less than %ds ago: not scheduling its "
                  "pods yet",
                  group.name, S_DENY_MS / 1000);
        return ZUBE_SCHED_UNSCHEDULABLE;
    }
    s_count_t count = s_count (self, pod, &group, false);
    if (count.pods < (size_t)min) {
        snprintf (reason, reason_size, "pod group %s has %zu pods, minMember %ld",
                  group.name, count.pods, min);
        return ZUBE_SCHED_UNRESOLVABLE;
    }
    //  Nothing to filter
    return ZUBE_SCHED_SKIP;
}

static zube_sched_code_t
s_post_filter (void *self_, const zube_sched_cycle_t *cycle, void *cycle_data,
               const zube_sched_pod_t *pod, char *nominated, size_t nominated_size)
{
    (void)cycle, (void)cycle_data, (void)nominated, (void)nominated_size;
    s_self_t *self = self_;
    s_pod_group_t group;
    if (!s_group_of (pod, &group))
        return ZUBE_SCHED_UNSCHEDULABLE;
    char why[256];
    long min = s_min_member (self, pod, &group, why, sizeof why);
    s_count_t count = s_count (self, pod, &group, false);
    //  A group that has its minMember placed already loses nothing
    if (min > 0 && count.placed >= (size_t)min)
        return ZUBE_SCHED_UNSCHEDULABLE;
    char reason[512];
    snprintf (reason, sizeof reason, "pod group %s: member %s cannot be placed",
              group.name, pod->name);
    s_settle (self, &group, pod, reason);
    s_deny (self, &group);
    return ZUBE_SCHED_UNSCHEDULABLE;
}

static void
s_unreserve (void *self_, void *cycle_data, const zube_sched_pod_t *pod,
             const char *node_name)
{
    (void)cycle_data, (void)node_name;
    s_self_t *self = self_;
    s_pod_group_t group;
    if (!s_group_of (pod, &group))
        return;
    char reason[512];
    snprintf (reason, sizeof reason, "pod group %s: member %s was unreserved", group.name,
              pod->name);
    s_settle (self, &group, pod, reason);
    s_deny (self, &group);
}

static zube_sched_code_t
s_permit (void *self_, void *cycle_data, const zube_sched_pod_t *pod,
          const char *node_name, int64_t *wait_ms, char *reason, size_t reason_size)
{
    (void)cycle_data, (void)node_name;
    s_self_t *self = self_;
    s_pod_group_t group;
    if (!s_group_of (pod, &group))
        return ZUBE_SCHED_SUCCESS;
    long min = s_min_member (self, pod, &group, reason, reason_size);
    if (min == 0)
        return ZUBE_SCHED_UNRESOLVABLE;
    s_count_t count = s_count (self, pod, &group, true);
    size_t placed = count.placed + !count.self_placed;
    if (placed >= (size_t)min) {
        s_settle (self, &group, pod, NULL);
        return ZUBE_SCHED_SUCCESS;
    }
    *wait_ms = s_wait_ms (self, pod, &group);
    snprintf (reason, reason_size, "pod group %s has %zu of minMember %ld pods placed",
              group.name, placed, min);
    return ZUBE_SCHED_WAIT;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "Coscheduling",
    .create = s_create,
    .destroy = s_destroy,
    .queue_less = s_queue_less,
    .pre_filter = s_pre_filter,
    .post_filter = s_post_filter,
    .reserve = NULL,
    .unreserve = s_unreserve,
    .permit = s_permit,
    .set_handle = s_set_handle,
};

ZUBE_PLUGIN_DEFINE (.name = "coscheduling", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "gang scheduling: a pod group binds all together or "
                                   "not at all",
                    .ops = &s_ops)
