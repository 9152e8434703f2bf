/*  PrioritySort - the default queue sort: higher spec.priority first, then
    the older pod (Kubernetes' queuesort.PrioritySort). */
#include "sched_plugin.h"

SCHED_PLAIN_CREATE ("PrioritySort")

static bool
s_queue_less (void *self, const zube_sched_pod_t *a, const zube_sched_pod_t *b)
{
    (void)self;
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->created_ms < b->created_ms;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "PrioritySort",
    .create = s_create,
    .destroy = sched_plain_destroy,
    .queue_less = s_queue_less,
};

ZUBE_PLUGIN_DEFINE (.name = "prioritysort", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "queue sort: priority, then creation time",
                    .ops = &s_ops)
