/*  NodePorts - a pod's host ports must be free on the node: the same port
    and protocol conflict when either address is 0.0.0.0 or both are equal
    (Kubernetes' nodeports plugin). */
#include "sched_plugin.h"

SCHED_PLAIN_CREATE ("NodePorts")

static zube_sched_code_t
s_pre_filter (void *self, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
              void **cycle_data, char *reason, size_t reason_size)
{
    (void)self, (void)cycle, (void)cycle_data, (void)reason, (void)reason_size;
    return pod->port_count ? ZUBE_SCHED_SUCCESS : ZUBE_SCHED_SKIP;
}

static bool
s_any_address (const char *ip)
{
    return !ip || !*ip || strcmp (ip, "0.0.0.0") == 0 || strcmp (ip, "::") == 0;
}

static bool
s_conflict (const zube_sched_port_t *a, const zube_sched_port_t *b)
{
    if (a->port != b->port || a->protocol != b->protocol)
        return false;
    return s_any_address (a->host_ip) || s_any_address (b->host_ip) ||
           strcmp (a->host_ip, b->host_ip) == 0;
}

static zube_sched_code_t
s_filter (void *self, void *cycle_data, const zube_sched_pod_t *pod,
          const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    (void)self, (void)cycle_data;
    for (size_t i = 0; i < pod->port_count; i++)
        for (size_t j = 0; j < node->port_count; j++)
            if (s_conflict (&pod->ports[i], &node->ports[j])) {
                snprintf (reason, reason_size,
                          "node(s) didn't have free ports for the requested pod ports");
                return ZUBE_SCHED_UNSCHEDULABLE;
            }
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "NodePorts",
    .events = ZUBE_SCHED_EVENT_NODE_ADD | ZUBE_SCHED_EVENT_POD_DELETE,
    .create = s_create,
    .destroy = sched_plain_destroy,
    .pre_filter = s_pre_filter,
    .filter = s_filter,
};

ZUBE_PLUGIN_DEFINE (.name = "nodeports", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "filter: free host ports", .ops = &s_ops)
