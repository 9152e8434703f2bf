/*  NodeLabelPreference - an example scheduler plugin: nodes that carry a
    label score higher. Builds with the installed headers alone:

        make            # cc ... $(pkg-config --cflags zube-plugin)
        zube-scheduler --plugin-path . --config profile.yaml ...

    args: {label: "disktype", value: "ssd"} (value optional: any value). */
#include "zube/scheduler.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char label[256];
    char value[256];
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
        if (strcmp (args->keys[i], "label") == 0)
            snprintf (self->label, sizeof self->label, "%s", args->values[i]);
        else if (strcmp (args->keys[i], "value") == 0)
            snprintf (self->value, sizeof self->value, "%s", args->values[i]);
        else {
            snprintf (error, error_size, "%s.%s: unknown field (label, value)",
                      args->field, args->keys[i]);
            free (self);
            return NULL;
        }
    }
    if (!self->label[0]) {
        snprintf (error, error_size, "%s.label: Required value", args->field);
        free (self);
        return NULL;
    }
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
    (void)cycle_data, (void)pod;
    *score = 0;
    for (size_t i = 0; i < node->label_count; i++)
        if (strcmp (node->labels[i].key, self->label) == 0 &&
            (!self->value[0] || strcmp (node->labels[i].value, self->value) == 0))
            *score = ZUBE_SCHED_MAX_SCORE;
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "NodeLabelPreference",
    .events = ZUBE_SCHED_EVENT_NODE_ADD | ZUBE_SCHED_EVENT_NODE_UPDATE,
    .create = s_create,
    .destroy = s_destroy,
    .score = s_score,
};

ZUBE_PLUGIN_DEFINE (.name = "nodelabelpreference", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "score: nodes with a label first", .ops = &s_ops)
