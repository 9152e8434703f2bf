/*  RoundRobin - a research baseline: nodes take pods in turn, in the order
    of the node list; the next pod goes to the first feasible node after
    the last one chosen. Enable it as the only score plugin of a profile. */
#include "sched_plugin.h"

typedef struct {
    uint32_t next;
} s_self_t;

static void *
s_create (const zube_host_t *host, const zube_sched_args_t *args, char *error,
          size_t error_size)
{
    (void)host;
    if (!sched_args_none (args, "RoundRobin", error, error_size))
        return NULL;
    s_self_t *self = calloc (1, sizeof *self);
    if (!self)
        snprintf (error, error_size, "out of memory");
    return self;
}

static void
s_destroy (void *self)
{
    free (self);
}

static zube_sched_code_t
s_normalize (void *self_, void *cycle_data, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, int64_t *scores, size_t count)
{
    s_self_t *self = self_;
    (void)cycle_data, (void)pod;
    size_t chosen = 0;
    uint64_t best = UINT64_MAX;
    for (size_t i = 0; i < count; i++) {
        //  Distance forward from the cursor, wrapping around
        uint64_t distance = nodes[i]->index >= self->next
                                ? nodes[i]->index - self->next
                                : (uint64_t)nodes[i]->index + UINT32_MAX - self->next;
        if (distance < best)
            best = distance, chosen = i;
    }
    for (size_t i = 0; i < count; i++)
        scores[i] = i == chosen ? ZUBE_SCHED_MAX_SCORE : 0;
    //  The turn passes on even if another scorer outweighs this choice
    if (count)
        self->next = nodes[chosen]->index + 1;
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "RoundRobin",
    .create = s_create,
    .destroy = s_destroy,
    .normalize = s_normalize,
};

ZUBE_PLUGIN_DEFINE (.name = "roundrobin", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER, .description = "score: nodes in turn",
                    .ops = &s_ops)
