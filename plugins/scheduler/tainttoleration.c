/*  TaintToleration - filter: a node's NoSchedule and NoExecute taints must
    all be tolerated; score: fewer untolerated PreferNoSchedule taints is
    better (Kubernetes' tainttoleration plugin). */
#include "sched_plugin.h"

SCHED_PLAIN_CREATE ("TaintToleration")

static zube_sched_code_t
s_filter (void *self, void *cycle_data, const zube_sched_pod_t *pod,
          const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    (void)self, (void)cycle_data;
    for (size_t i = 0; i < node->taint_count; i++) {
        const zube_sched_taint_t *taint = &node->taints[i];
        if (taint->effect == ZUBE_SCHED_PREFER_NO_SCHEDULE ||
            sched_tolerated (pod, taint))
            continue;
        snprintf (reason, reason_size, "node(s) had untolerated taint {%s: %s}",
                  taint->key, taint->value ? taint->value : "");
        return ZUBE_SCHED_UNRESOLVABLE;
    }
    return ZUBE_SCHED_SUCCESS;
}

//  Only the pod's tolerations with effect PreferNoSchedule or none count.
static bool
s_prefer_tolerated (const zube_sched_pod_t *pod, const zube_sched_taint_t *taint)
{
    for (size_t i = 0; i < pod->toleration_count; i++) {
        const zube_sched_toleration_t *toleration = &pod->tolerations[i];
        if ((toleration->effect == ZUBE_SCHED_EFFECT_ALL ||
             toleration->effect == ZUBE_SCHED_PREFER_NO_SCHEDULE) &&
            sched_tolerates (toleration, taint))
            return true;
    }
    return false;
}

static zube_sched_code_t
s_score (void *self, void *cycle_data, const zube_sched_pod_t *pod,
         const zube_sched_node_t *node, int64_t *score)
{
    (void)self, (void)cycle_data;
    int64_t count = 0;
    for (size_t i = 0; i < node->taint_count; i++)
        if (node->taints[i].effect == ZUBE_SCHED_PREFER_NO_SCHEDULE &&
            !s_prefer_tolerated (pod, &node->taints[i]))
            count++;
    *score = count;
    return ZUBE_SCHED_SUCCESS;
}

static zube_sched_code_t
s_normalize (void *self, void *cycle_data, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, int64_t *scores, size_t count)
{
    (void)self, (void)cycle_data, (void)pod, (void)nodes;
    sched_normalize_default (scores, count, true);
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "TaintToleration",
    .events = ZUBE_SCHED_EVENT_NODE_ADD | ZUBE_SCHED_EVENT_NODE_UPDATE,
    .create = s_create,
    .destroy = sched_plain_destroy,
    .filter = s_filter,
    .score = s_score,
    .normalize = s_normalize,
};

ZUBE_PLUGIN_DEFINE (.name = "tainttoleration", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "filter and score: taints and tolerations",
                    .ops = &s_ops)
