/*  sched_plugin - small helpers the scheduler plugins share (header only:
    each plugin is its own shared object and links nothing of libzube). */
#ifndef SCHED_PLUGIN_H_INCLUDED
#define SCHED_PLUGIN_H_INCLUDED

#include "zube/scheduler.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The value of label key, or NULL when the labels do not have it.
static inline const char *
sched_label (const zube_sched_label_t *labels, size_t count, const char *key)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp (labels[i].key, key) == 0)
            return labels[i].value;
    return NULL;
}

//  Kubernetes' Toleration.ToleratesTaint.
static inline bool
sched_tolerates (const zube_sched_toleration_t *toleration,
                 const zube_sched_taint_t *taint)
{
    if (toleration->effect != ZUBE_SCHED_EFFECT_ALL &&
        toleration->effect != taint->effect)
        return false;
    const char *key = toleration->key ? toleration->key : "";
    if (*key && strcmp (key, taint->key) != 0)
        return false;
    if (toleration->op == ZUBE_SCHED_TOLERATE_EXISTS)
        return true;
    if (!*key)
        return false;
    const char *a = toleration->value ? toleration->value : "";
    const char *b = taint->value ? taint->value : "";
    return strcmp (a, b) == 0;
}

static inline bool
sched_tolerated (const zube_sched_pod_t *pod, const zube_sched_taint_t *taint)
{
    for (size_t i = 0; i < pod->toleration_count; i++)
        if (sched_tolerates (&pod->tolerations[i], taint))
            return true;
    return false;
}

//  The amount of resource name in r ("cpu", "memory",
//  "ephemeral-storage", "pods" or an extended resource), 0 when absent.
static inline int64_t
sched_resource (const zube_sched_resources_t *r, const char *name)
{
    if (strcmp (name, "cpu") == 0)
        return r->milli_cpu;
    if (strcmp (name, "memory") == 0)
        return r->memory;
    if (strcmp (name, "ephemeral-storage") == 0)
        return r->ephemeral_storage;
    if (strcmp (name, "pods") == 0)
        return r->pods;
    for (size_t i = 0; i < r->scalar_count; i++)
        if (strcmp (r->scalars[i].name, name) == 0)
            return r->scalars[i].milli;
    return 0;
}

//  A resource name resolved once, so per-node lookups need no strcmp:
//  SCHED_CPU.. for the named ones, SCHED_SCALAR for extended resources.
typedef enum {
    SCHED_CPU,
    SCHED_MEMORY,
    SCHED_EPHEMERAL,
    SCHED_PODS,
    SCHED_SCALAR
} sched_kind_t;

static inline sched_kind_t
sched_kind (const char *name)
{
    if (strcmp (name, "cpu") == 0)
        return SCHED_CPU;
    if (strcmp (name, "memory") == 0)
        return SCHED_MEMORY;
    if (strcmp (name, "ephemeral-storage") == 0)
        return SCHED_EPHEMERAL;
    if (strcmp (name, "pods") == 0)
        return SCHED_PODS;
    return SCHED_SCALAR;
}

static inline int64_t
sched_resource_of (const zube_sched_resources_t *r, sched_kind_t kind, const char *name)
{
    switch (kind) {
    case SCHED_CPU:
        return r->milli_cpu;
    case SCHED_MEMORY:
        return r->memory;
    case SCHED_EPHEMERAL:
        return r->ephemeral_storage;
    case SCHED_PODS:
        return r->pods;
    default:
        return sched_resource (r, name);
    }
}

//  A whole number arg in [min, max]; false with error naming the field.
static inline bool
sched_args_int (const zube_sched_args_t *args, const char *key, const char *value,
                long min, long max, long *value_p, char *error, size_t error_size)
{
    char *end = NULL;
    long number = value ? strtol (value, &end, 10) : 0;
    if (!value || !*value || *end || number < min || number > max) {
        snprintf (error, error_size,
                  "%s.%s: expected a whole number from %ld to %ld, got \"%s\"",
                  args->field, key, min, max, value ? value : "");
        return false;
    }
    *value_p = number;
    return true;
}

//  A plugin that takes no args refuses any it is given.
static inline bool
sched_args_none (const zube_sched_args_t *args, const char *plugin, char *error,
                 size_t error_size)
{
    if (!args || args->count == 0)
        return true;
    snprintf (error, error_size, "%s.%s: unknown field (%s takes no args)", args->field,
              args->keys[0], plugin);
    return false;
}

//  A plugin instance that holds nothing but the host.
typedef struct {
    const zube_host_t *host;
} sched_plain_t;

static inline void *
sched_plain_create (const zube_host_t *host, const zube_sched_args_t *args,
                    const char *plugin, char *error, size_t error_size)
{
    if (!sched_args_none (args, plugin, error, error_size))
        return NULL;
    sched_plain_t *self = calloc (1, sizeof *self);
    if (!self)
        snprintf (error, error_size, "out of memory");
    else
        self->host = host;
    return self;
}

static inline void
sched_plain_destroy (void *self)
{
    free (self);
}

//  Defines s_create for a plugin without args.
#define SCHED_PLAIN_CREATE(plugin)                                                       \
    static void *s_create (const zube_host_t *host, const zube_sched_args_t *args,       \
                           char *error, size_t error_size)                               \
    {                                                                                    \
        return sched_plain_create (host, args, plugin, error, error_size);               \
    }

//  Kubernetes' DefaultNormalizeScore: scales scores to 0..100 by the
//  highest; reverse turns the scale around (fewer is better).
static inline void
sched_normalize_default (int64_t *scores, size_t count, bool reverse)
{
    int64_t max = 0;
    for (size_t i = 0; i < count; i++)
        if (scores[i] > max)
            max = scores[i];
    for (size_t i = 0; i < count; i++) {
        if (max == 0)
            scores[i] = reverse ? ZUBE_SCHED_MAX_SCORE : 0;
        else {
            int64_t score = ZUBE_SCHED_MAX_SCORE * scores[i] / max;
            scores[i] = reverse ? ZUBE_SCHED_MAX_SCORE - score : score;
        }
    }
}

#endif
