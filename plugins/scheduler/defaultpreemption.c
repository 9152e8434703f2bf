/*  DefaultPreemption - post-filter: when no node fits a pod, find nodes
    where deleting pods of lower priority (never equal or higher) makes
    it fit, as Kubernetes' defaultpreemption plugin does. On each node
    every lower-priority pod is taken out; if the pod then fits, the most
    important of them (higher priority, then the older) are given back one
    by one while it still fits, and the rest are the victims. The node
    whose victims' highest priority is lowest wins, then the smallest sum
    of priorities, then the fewest victims, then the node whose most
    important victim started last (PodDisruptionBudgets are not read).
    The host deletes the victims and nominates the node; a pod with
    preemptionPolicy Never preempts nothing. */
#include "core.pb-c.h"
#include "sched_plugin.h"
#include <limits.h>

SCHED_PLAIN_CREATE ("DefaultPreemption")

//  One node's victims, most important first.
typedef struct {
    const zube_sched_node_t *node;
    size_t count;
    const zube_sched_pod_t **victims;
    int32_t highest;
    int64_t sum;
} s_candidate_t;

static bool
s_terminating (const zube_sched_pod_t *pod)
{
    const Zube__Pod *object = pod->pod;
    return object && object->metadata && object->metadata->deletion_timestamp &&
           *object->metadata->deletion_timestamp;
}

//  Kubernetes' MoreImportantPod: higher priority, then started earlier.
static int
s_importance_compare (const void *a_, const void *b_)
{
    const zube_sched_pod_t *a = *(const zube_sched_pod_t *const *)a_;
    const zube_sched_pod_t *b = *(const zube_sched_pod_t *const *)b_;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    return a->created_ms < b->created_ms ? -1 : a->created_ms > b->created_ms;
}

//  Kubernetes' PodEligibleToPreemptOthers: Never does not preempt, nor a
//  pod whose nominated node still has lower-priority pods terminating.
static bool
s_eligible (const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod)
{
    const Zube__Pod *object = pod->pod;
    const Zube__PodSpec *spec = object ? object->spec : NULL;
    if (spec && spec->preemption_policy && strcmp (spec->preemption_policy, "Never") == 0)
        return false;
    const char *nominated =
        object && object->status && object->status->nominated_node_name
            ? object->status->nominated_node_name
            : "";
    for (size_t n = 0; *nominated && n < cycle->node_count; n++) {
        const zube_sched_node_t *node = cycle->nodes[n];
        if (strcmp (node->name, nominated) != 0 || !ZUBE_SCHED_HAS (node, assigned))
            continue;
        for (size_t i = 0; i < node->assigned_count; i++)
            if (node->assigned[i]->priority < pod->priority &&
                s_terminating (node->assigned[i]))
                return false;
    }
    return true;
}

//  The fewest victims on node (Kubernetes' SelectVictimsOnNode); false
//  when deleting every lower-priority pod does not make room either.
static bool
s_victims_on (const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
              const zube_sched_node_t *node, s_candidate_t *candidate)
{
    size_t count = 0;
    const zube_sched_pod_t **lower = calloc (node->assigned_count + 1, sizeof *lower);
    if (!lower)
        return false;
    for (size_t i = 0; i < node->assigned_count; i++)
        if (node->assigned[i]->priority < pod->priority)
            lower[count++] = node->assigned[i];
    if (!count ||
        cycle->filter_without (cycle, pod, node, lower, count) != ZUBE_SCHED_SUCCESS) {
        free (lower);
        return false;
    }
    qsort (lower, count, sizeof *lower, s_importance_compare);
    //  Reprieve the most important first: pod i is given back when the
    //  pod still fits without the victims so far and the pods after i
    const zube_sched_pod_t **victims = calloc (count, sizeof *victims);
    const zube_sched_pod_t **out = calloc (count, sizeof *out);
    if (!victims || !out) {
        free (victims), free (out), free (lower);
        return false;
    }
    size_t victim_count = 0;
    for (size_t i = 0; i < count; i++) {
        size_t out_count = 0;
        for (size_t j = 0; j < victim_count; j++)
            out[out_count++] = victims[j];
        for (size_t j = i + 1; j < count; j++)
            out[out_count++] = lower[j];
        if (cycle->filter_without (cycle, pod, node, out, out_count) !=
            ZUBE_SCHED_SUCCESS)
            victims[victim_count++] = lower[i];
    }
    free (out);
    free (lower);
    candidate->node = node;
    candidate->count = victim_count;
    candidate->victims = victims;
    candidate->highest = victim_count ? victims[0]->priority : INT32_MIN;
    candidate->sum = 0;
    for (size_t i = 0; i < victim_count; i++)
        candidate->sum += (int64_t)victims[i]->priority + (int64_t)INT32_MAX + 1;
    return true;
}

//  Kubernetes' pickOneNodeForPreemption order: true when a beats b.
static bool
s_better (const s_candidate_t *a, const s_candidate_t *b)
{
    if (a->highest != b->highest)
        return a->highest < b->highest;
    if (a->sum != b->sum)
        return a->sum < b->sum;
    if (a->count != b->count)
        return a->count < b->count;
    //  The latest start time of the most important victims
    int64_t a_start = a->count ? a->victims[0]->created_ms : 0;
    int64_t b_start = b->count ? b->victims[0]->created_ms : 0;
    return a_start > b_start;
}

static zube_sched_code_t
s_post_filter (void *self, const zube_sched_cycle_t *cycle, void *cycle_data,
               const zube_sched_pod_t *pod, char *nominated, size_t nominated_size)
{
    (void)self, (void)cycle_data;
    if (!ZUBE_SCHED_HAS (cycle, preempt) || !cycle->filter_without || !cycle->preempt)
        return ZUBE_SCHED_UNSCHEDULABLE;
    if (!s_eligible (cycle, pod))
        return ZUBE_SCHED_UNSCHEDULABLE;
    s_candidate_t best = {0};
    for (size_t n = 0; n < cycle->node_count; n++) {
        const zube_sched_node_t *node = cycle->nodes[n];
        s_candidate_t candidate = {0};
        if (!ZUBE_SCHED_HAS (node, assigned) ||
            !s_victims_on (cycle, pod, node, &candidate))
            continue;
        if (!best.node || s_better (&candidate, &best)) {
            free (best.victims);
            best = candidate;
        } else
            free (candidate.victims);
    }
    if (!best.node)
        return ZUBE_SCHED_UNSCHEDULABLE;
    zube_sched_code_t code = ZUBE_SCHED_SUCCESS;
    for (size_t i = 0; i < best.count && code == ZUBE_SCHED_SUCCESS; i++)
        if (cycle->preempt (cycle, best.victims[i]) != 0)
            code = ZUBE_SCHED_ERROR;
    if (code == ZUBE_SCHED_SUCCESS)
        snprintf (nominated, nominated_size, "%s", best.node->name);
    free (best.victims);
    return code;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "DefaultPreemption",
    .create = s_create,
    .destroy = sched_plain_destroy,
    .post_filter = s_post_filter,
};

ZUBE_PLUGIN_DEFINE (.name = "defaultpreemption", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "post-filter: preempts lower-priority pods",
                    .ops = &s_ops)
