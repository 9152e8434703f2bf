/*  Random - a research baseline: every feasible node is equally likely.
    Enable it as the only score plugin of a profile. */
#include "sched_plugin.h"

typedef struct {
    uint64_t state;
} s_self_t;

static void *
s_create (const zube_host_t *host, const zube_sched_args_t *args, char *error,
          size_t error_size)
{
    if (!sched_args_none (args, "Random", error, error_size))
        return NULL;
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->state = (uint64_t)host->monotonic_ns (host) | 1;
    return self;
}

static void
s_destroy (void *self)
{
    free (self);
}

//  xorshift64*: fast, and good enough to pick a node.
static uint64_t
s_next (s_self_t *self)
{
    self->state ^= self->state >> 12;
    self->state ^= self->state << 25;
    self->state ^= self->state >> 27;
    return self->state * 2685821657736338717ULL;
}

static zube_sched_code_t
s_normalize (void *self_, void *cycle_data, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, int64_t *scores, size_t count)
{
    (void)cycle_data, (void)pod, (void)nodes;
    size_t chosen = count ? (size_t)(s_next (self_) % count) : 0;
    for (size_t i = 0; i < count; i++)
        scores[i] = i == chosen ? ZUBE_SCHED_MAX_SCORE : 0;
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "Random",
    .create = s_create,
    .destroy = s_destroy,
    .normalize = s_normalize,
};

ZUBE_PLUGIN_DEFINE (.name = "random", .version = "0.1.0", .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "score: a uniformly random feasible node",
                    .ops = &s_ops)
