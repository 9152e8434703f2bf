/*  NodeResourcesBalancedAllocation - score: nodes whose CPU and memory
    would be used in equal fractions after placing the pod score higher:
    (1 - standard deviation of the fractions) * 100, as Kubernetes'
    balanced allocation (args: resources [{name, weight}], cpu and memory
    by default). */
#include "sched_plugin.h"
#include <math.h>

#define S_MAX_RESOURCES 8

typedef struct {
    size_t resource_count;
    char resources[S_MAX_RESOURCES][128];
    sched_kind_t kinds[S_MAX_RESOURCES];
} s_self_t;

static void *
s_create (const zube_host_t *host, const zube_sched_args_t *args, char *error,
          size_t error_size)
{
    (void)host;
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < args->count; i++) {
        const char *key = args->keys[i];
        char *end = NULL;
        unsigned long index =
            strncmp (key, "resources.", 10) == 0 ? strtoul (key + 10, &end, 10) : 0;
        if (!end || end == key + 10 || index >= S_MAX_RESOURCES ||
            (strcmp (end, ".name") != 0 && strcmp (end, ".weight") != 0)) {
            snprintf (error, error_size, "%s.%s: unknown field", args->field, key);
            free (self);
            return NULL;
        }
        if (index >= self->resource_count)
            self->resource_count = index + 1;
        if (strcmp (end, ".name") == 0)
            snprintf (self->resources[index], sizeof self->resources[index], "%s",
                      args->values[i]);
    }
    if (!self->resource_count) {
        self->resource_count = 2;
        snprintf (self->resources[0], sizeof self->resources[0], "cpu");
        snprintf (self->resources[1], sizeof self->resources[1], "memory");
    }
    for (size_t i = 0; i < self->resource_count; i++)
        self->kinds[i] = sched_kind (self->resources[i]);
    return self;
}

static void
s_destroy (void *self)
{
    free (self);
}

static zube_sched_code_t
s_score (void *self_, void *cycle_data, const zube_sched_pod_t *pod,
         const zube_sched_node_t *node, int64_t *score)
{
    s_self_t *self = self_;
    (void)cycle_data;
    double fractions[S_MAX_RESOURCES];
    size_t count = 0;
    double sum = 0;
    for (size_t i = 0; i < self->resource_count; i++) {
        sched_kind_t kind = self->kinds[i];
        const char *name = self->resources[i];
        int64_t allocatable = sched_resource_of (&node->allocatable, kind, name);
        if (allocatable <= 0)
            continue;
        int64_t requested = sched_resource_of (&node->requested, kind, name) +
                            sched_resource_of (&pod->requests, kind, name);
        double fraction = (double)requested / (double)allocatable;
        if (fraction > 1)
            fraction = 1;
        fractions[count++] = fraction;
        sum += fraction;
    }
    double deviation = 0;
    if (count == 2)
        deviation = fabs (fractions[0] - fractions[1]) / 2;
    else if (count > 2) {
        double mean = sum / (double)count, squares = 0;
        for (size_t i = 0; i < count; i++)
            squares += (fractions[i] - mean) * (fractions[i] - mean);
        deviation = sqrt (squares / (double)count);
    }
    *score = (int64_t)((1 - deviation) * ZUBE_SCHED_MAX_SCORE);
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "NodeResourcesBalancedAllocation",
    .events = ZUBE_SCHED_EVENT_NODE_ADD | ZUBE_SCHED_EVENT_POD_DELETE,
    .create = s_create,
    .destroy = s_destroy,
    .score = s_score,
};

ZUBE_PLUGIN_DEFINE (.name = "noderesourcesbalancedallocation", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "score: balanced CPU and memory use", .ops = &s_ops)
