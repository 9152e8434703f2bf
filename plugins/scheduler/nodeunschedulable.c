/*  NodeUnschedulable - a cordoned node (spec.unschedulable) takes only
    pods that tolerate node.kubernetes.io/unschedulable:NoSchedule. */
#include "sched_plugin.h"

SCHED_PLAIN_CREATE ("NodeUnschedulable")

static zube_sched_code_t
s_filter (void *self, void *cycle_data, const zube_sched_pod_t *pod,
          const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    (void)self, (void)cycle_data;
    if (!node->unschedulable)
        return ZUBE_SCHED_SUCCESS;
    const zube_sched_taint_t taint = {.key = "node.kubernetes.io/unschedulable",
                                      .value = "",
                                      .effect = ZUBE_SCHED_NO_SCHEDULE};
    if (sched_tolerated (pod, &taint))
        return ZUBE_SCHED_SUCCESS;
    snprintf (reason, reason_size, "node(s) were unschedulable");
    return ZUBE_SCHED_UNRESOLVABLE;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "NodeUnschedulable",
    .events = ZUBE_SCHED_EVENT_NODE_ADD | ZUBE_SCHED_EVENT_NODE_UPDATE,
    .create = s_create,
    .destroy = sched_plain_destroy,
    .filter = s_filter,
};

ZUBE_PLUGIN_DEFINE (.name = "nodeunschedulable", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "filter: cordoned nodes (spec.unschedulable)",
                    .ops = &s_ops)
