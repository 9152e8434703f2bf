/*  NodeResourcesFit - filter: the node has room for the pod's requests
    (CPU, memory, ephemeral storage, extended resources, pod count);
    score: LeastAllocated (spread, the default), MostAllocated (pack) or
    RequestedToCapacityRatio (a shape), as Kubernetes' noderesources
    plugin with its scoringStrategy args:

        args:
          scoringStrategy:
            type: MostAllocated
            resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]
            requestedToCapacityRatio:
              shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]
          ignoredResources: [example.com/foo] */
#include "sched_plugin.h"

#define S_MAX_RESOURCES 8
#define S_MAX_SHAPE 16
#define S_MAX_IGNORED 8

typedef enum { S_LEAST, S_MOST, S_RATIO } s_strategy_t;

typedef struct {
    s_strategy_t strategy;
    size_t resource_count;
    char resources[S_MAX_RESOURCES][128];
    sched_kind_t kinds[S_MAX_RESOURCES];
    int64_t weights[S_MAX_RESOURCES];
    size_t shape_count;
    int64_t utilization[S_MAX_SHAPE];
    int64_t shape_score[S_MAX_SHAPE];
    size_t ignored_count;
    char ignored[S_MAX_IGNORED][128];
} s_self_t;

//  "scoringStrategy.resources.3.weight": index 3 and rest "weight".
static bool
s_indexed (const char *key, const char *prefix, size_t *index_p, const char **rest_p)
{
    size_t length = strlen (prefix);
    if (strncmp (key, prefix, length) != 0 || key[length] != '.')
        return false;
    char *end = NULL;
    unsigned long index = strtoul (key + length + 1, &end, 10);
    if (end == key + length + 1 || (*end && *end != '.'))
        return false;
    *index_p = index;
    *rest_p = *end ? end + 1 : "";
    return true;
}

static bool
s_configure (s_self_t *self, const zube_sched_args_t *args, char *error,
             size_t error_size)
{
    for (size_t i = 0; i < args->count; i++) {
        const char *key = args->keys[i], *value = args->values[i], *rest;
        size_t index;
        long number;
        if (strcmp (key, "scoringStrategy.type") == 0) {
            if (strcmp (value, "LeastAllocated") == 0)
                self->strategy = S_LEAST;
            else if (strcmp (value, "MostAllocated") == 0)
                self->strategy = S_MOST;
            else if (strcmp (value, "RequestedToCapacityRatio") == 0)
                self->strategy = S_RATIO;
            else {
                snprintf (
                    error, error_size,
                    "%s.%s: Unsupported value: \"%s\": supported values: "
                    "\"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\"",
                    args->field, key, value);
                return false;
            }
        } else if (s_indexed (key, "scoringStrategy.resources", &index, &rest)) {
            if (index >= S_MAX_RESOURCES) {
                snprintf (error, error_size, "%s.%s: at most %d resources", args->field,
                          key, S_MAX_RESOURCES);
                return false;
            }
            if (index >= self->resource_count)
                self->resource_count = index + 1;
            if (strcmp (rest, "name") == 0)
                snprintf (self->resources[index], sizeof self->resources[index], "%s",
                          value);
            else if (strcmp (rest, "weight") == 0) {
                if (!sched_args_int (args, key, value, 1, 100, &number, error,
                                     error_size))
                    return false;
                self->weights[index] = number;
            } else {
                snprintf (error, error_size, "%s.%s: unknown field", args->field, key);
                return false;
            }
        } else if (s_indexed (key, "scoringStrategy.requestedToCapacityRatio.shape",
                              &index, &rest)) {
            if (index >= S_MAX_SHAPE) {
                snprintf (error, error_size, "%s.%s: at most %d shape points",
                          args->field, key, S_MAX_SHAPE);
                return false;
            }
            if (index >= self->shape_count)
                self->shape_count = index + 1;
            if (strcmp (rest, "utilization") == 0) {
                if (!sched_args_int (args, key, value, 0, 100, &number, error,
                                     error_size))
                    return false;
                self->utilization[index] = number;
            } else if (strcmp (rest, "score") == 0) {
                if (!sched_args_int (args, key, value, 0, 10, &number, error, error_size))
                    return false;
                self->shape_score[index] = number * 10;
            } else {
                snprintf (error, error_size, "%s.%s: unknown field", args->field, key);
                return false;
            }
        } else if (s_indexed (key, "ignoredResources", &index, &rest) && !*rest &&
                   index < S_MAX_IGNORED) {
            if (index >= self->ignored_count)
                self->ignored_count = index + 1;
            snprintf (self->ignored[index], sizeof self->ignored[index], "%s", value);
        } else {
            snprintf (error, error_size, "%s.%s: unknown field", args->field, key);
            return false;
        }
    }
    for (size_t i = 0; i < self->resource_count; i++) {
        if (!self->resources[i][0]) {
            snprintf (error, error_size,
                      "%s.scoringStrategy.resources.%zu.name: Required value",
                      args->field, i);
            return false;
        }
        if (!self->weights[i])
            self->weights[i] = 1;
    }
    for (size_t i = 1; i < self->shape_count; i++)
        if (self->utilization[i] <= self->utilization[i - 1]) {
            snprintf (
                error, error_size,
                "%s.scoringStrategy.requestedToCapacityRatio.shape.%zu.utilization: "
                "Invalid value: utilization values must be sorted in increasing order",
                args->field, i);
            return false;
        }
    if (self->strategy == S_RATIO && !self->shape_count) {
        snprintf (error, error_size,
                  "%s.scoringStrategy.requestedToCapacityRatio.shape: Required value",
                  args->field);
        return false;
    }
    return true;
}

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
    if (!s_configure (self, args, error, error_size)) {
        free (self);
        return NULL;
    }
    if (!self->resource_count) {
        self->resource_count = 2;
        snprintf (self->resources[0], sizeof self->resources[0], "cpu");
        snprintf (self->resources[1], sizeof self->resources[1], "memory");
        self->weights[0] = self->weights[1] = 1;
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

static bool
s_ignored (const s_self_t *self, const char *name)
{
    for (size_t i = 0; i < self->ignored_count; i++)
        if (strcmp (self->ignored[i], name) == 0)
            return true;
    return false;
}

//  Appends "Insufficient <name>" to the reasons.
static void
s_insufficient (char *reason, size_t reason_size, size_t *used_p, const char *name)
{
    if (*used_p >= reason_size)
        return;
    int n = snprintf (reason + *used_p, reason_size - *used_p, "%sInsufficient %s",
                      *used_p ? "\n" : "", name);
    if (n > 0)
        *used_p += (size_t)n;
}

static zube_sched_code_t
s_filter (void *self_, void *cycle_data, const zube_sched_pod_t *pod,
          const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    s_self_t *self = self_;
    (void)cycle_data;
    size_t used = 0;
    if ((int64_t)node->pod_count + 1 > node->allocatable.pods) {
        used = (size_t)snprintf (reason, reason_size, "Too many pods");
        if (used >= reason_size)
            used = reason_size - 1;
    }
    const zube_sched_resources_t *want = &pod->requests;
    if (want->milli_cpu > 0 &&
        want->milli_cpu > node->allocatable.milli_cpu - node->requested.milli_cpu)
        s_insufficient (reason, reason_size, &used, "cpu");
    if (want->memory > 0 &&
        want->memory > node->allocatable.memory - node->requested.memory)
        s_insufficient (reason, reason_size, &used, "memory");
    if (want->ephemeral_storage > 0 &&
        want->ephemeral_storage >
            node->allocatable.ephemeral_storage - node->requested.ephemeral_storage)
        s_insufficient (reason, reason_size, &used, "ephemeral-storage");
    for (size_t i = 0; i < want->scalar_count; i++) {
        const zube_sched_scalar_t *scalar = &want->scalars[i];
        if (scalar->milli <= 0 || s_ignored (self, scalar->name))
            continue;
        if (scalar->milli > sched_resource (&node->allocatable, scalar->name) -
                                sched_resource (&node->requested, scalar->name))
            s_insufficient (reason, reason_size, &used, scalar->name);
    }
    return used ? ZUBE_SCHED_UNSCHEDULABLE : ZUBE_SCHED_SUCCESS;
}

//  The shape's score at utilization (0..100), linear between points.
static int64_t
s_shape (const s_self_t *self, int64_t utilization)
{
    if (utilization <= self->utilization[0])
        return self->shape_score[0];
    for (size_t i = 1; i < self->shape_count; i++)
        if (utilization <= self->utilization[i])
            return self->shape_score[i - 1] +
                   (self->shape_score[i] - self->shape_score[i - 1]) *
                       (utilization - self->utilization[i - 1]) /
                       (self->utilization[i] - self->utilization[i - 1]);
    return self->shape_score[self->shape_count - 1];
}

static zube_sched_code_t
s_score (void *self_, void *cycle_data, const zube_sched_pod_t *pod,
         const zube_sched_node_t *node, int64_t *score)
{
    s_self_t *self = self_;
    (void)cycle_data;
    int64_t total = 0, weights = 0;
    for (size_t i = 0; i < self->resource_count; i++) {
        const char *name = self->resources[i];
        sched_kind_t kind = self->kinds[i];
        int64_t allocatable = sched_resource_of (&node->allocatable, kind, name);
        if (allocatable <= 0)
            continue;
        bool nonzero = kind == SCHED_CPU || kind == SCHED_MEMORY;
        int64_t requested = nonzero
                                ? sched_resource_of (&node->score_requested, kind, name) +
                                      sched_resource_of (&pod->score_requests, kind, name)
                                : sched_resource_of (&node->requested, kind, name) +
                                      sched_resource_of (&pod->requests, kind, name);
        int64_t resource_score;
        if (self->strategy == S_LEAST)
            resource_score =
                requested > allocatable
                    ? 0
                    : (allocatable - requested) * ZUBE_SCHED_MAX_SCORE / allocatable;
        else {
            if (requested > allocatable)
                requested = allocatable;
            resource_score = requested * ZUBE_SCHED_MAX_SCORE / allocatable;
            if (self->strategy == S_RATIO)
                resource_score = s_shape (self, resource_score);
        }
        total += resource_score * self->weights[i];
        weights += self->weights[i];
    }
    *score = weights ? total / weights : 0;
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "NodeResourcesFit",
    //  A pod bound or changed frees nothing (Kubernetes' registers Pod/Delete)
    .events = ZUBE_SCHED_EVENT_NODE_ADD | ZUBE_SCHED_EVENT_NODE_UPDATE |
              ZUBE_SCHED_EVENT_POD_DELETE,
    .create = s_create,
    .destroy = s_destroy,
    .filter = s_filter,
    .score = s_score,
};

ZUBE_PLUGIN_DEFINE (
        .name = "noderesourcesfit", .version = "0.1.0", .kind = ZUBE_PLUGIN_SCHEDULER,
        .description = "filter and score: resource requests against allocatable",
        .ops = &s_ops)
