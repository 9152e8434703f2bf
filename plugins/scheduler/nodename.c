/*  NodeName - a pod that names its node (spec.nodeName) fits that node
    only (Kubernetes' nodename plugin). */
#include "sched_plugin.h"

SCHED_PLAIN_CREATE ("NodeName")

static zube_sched_code_t
s_pre_filter (void *self, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
              void **cycle_data, char *reason, size_t reason_size)
{
    (void)self, (void)cycle, (void)cycle_data, (void)reason, (void)reason_size;
    return pod->node_name && *pod->node_name ? ZUBE_SCHED_SUCCESS : ZUBE_SCHED_SKIP;
}

static zube_sched_code_t
s_filter (void *self, void *cycle_data, const zube_sched_pod_t *pod,
          const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    (void)self, (void)cycle_data;
    if (strcmp (pod->node_name, node->name) == 0)
        return ZUBE_SCHED_SUCCESS;
    snprintf (reason, reason_size, "node(s) didn't match the requested node name");
    return ZUBE_SCHED_UNRESOLVABLE;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "NodeName",
    .events = ZUBE_SCHED_EVENT_NODE_ADD,
    .create = s_create,
    .destroy = sched_plain_destroy,
    .pre_filter = s_pre_filter,
    .filter = s_filter,
};

ZUBE_PLUGIN_DEFINE (.name = "nodename", .version = "0.1.0", .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "filter: spec.nodeName", .ops = &s_ops)
