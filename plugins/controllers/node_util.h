/*  node_util - what the nodelifecycle and daemonset controller plugins
    share (static inline, each plugin compiles its own copy): Kubernetes'
    taint and toleration matching (v1helper), required node affinity and
    nodeSelector against a node, a duration setting ("40s", "500ms",
    "2m"), and a small string map. */
#ifndef ZUBE_NODE_UTIL_H_INCLUDED
#define ZUBE_NODE_UTIL_H_INCLUDED

#include "ctrl_util.h"
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>

#define ZN_TAINT_NOT_READY "node.kubernetes.io/not-ready"
#define ZN_TAINT_UNREACHABLE "node.kubernetes.io/unreachable"
#define ZN_TAINT_UNSCHEDULABLE "node.kubernetes.io/unschedulable"
#define ZN_TAINT_DISK_PRESSURE "node.kubernetes.io/disk-pressure"
#define ZN_TAINT_MEMORY_PRESSURE "node.kubernetes.io/memory-pressure"
#define ZN_TAINT_PID_PRESSURE "node.kubernetes.io/pid-pressure"
#define ZN_TAINT_NETWORK_UNAVAILABLE "node.kubernetes.io/network-unavailable"

//  Kubernetes' Toleration.ToleratesTaint.
static inline bool
zn_tolerates (const Zube__Toleration *toleration, const Zube__Taint *taint)
{
    if (!zc_empty (toleration->effect) && !zc_streq (toleration->effect, taint->effect))
        return false;
    if (!zc_empty (toleration->key) && !zc_streq (toleration->key, taint->key))
        return false;
    const char *op = toleration->operator_;
    if (zc_empty (op) || zc_streq (op, "Equal")) {
        const char *a = toleration->value ? toleration->value : "";
        const char *b = taint->value ? taint->value : "";
        return strcmp (a, b) == 0;
    }
    return zc_streq (op, "Exists");
}

//  The first toleration of the list that tolerates taint, NULL when none.
static inline const Zube__Toleration *
zn_toleration_for (Zube__Toleration *const *tolerations, size_t count,
                   const Zube__Taint *taint)
{
    for (size_t i = 0; i < count; i++)
        if (zn_tolerates (tolerations[i], taint))
            return tolerations[i];
    return NULL;
}

//  True when every taint of the node with one of the effects (NULL: any
//  effect) is tolerated (TolerationsTolerateTaintsWithFilter).
static inline bool
zn_tolerates_taints (Zube__Toleration *const *tolerations, size_t count,
                     const Zube__Node *node, const char *effect_a, const char *effect_b)
{
    const Zube__NodeSpec *spec = node->spec;
    for (size_t i = 0; spec && i < spec->n_taints; i++) {
        const Zube__Taint *taint = spec->taints[i];
        if (effect_a && !zc_streq (taint->effect, effect_a) &&
            !zc_streq (taint->effect, effect_b))
            continue;
        if (!zn_toleration_for (tolerations, count, taint))
            return false;
    }
    return true;
}

static inline const Zube__Taint *
zn_taint (const Zube__Node *node, const char *key, const char *effect)
{
    for (size_t i = 0; node->spec && i < node->spec->n_taints; i++)
        if (zc_streq (node->spec->taints[i]->key, key) &&
            zc_streq (node->spec->taints[i]->effect, effect))
            return node->spec->taints[i];
    return NULL;
}

static inline const Zube__NodeCondition *
zn_condition (const Zube__Node *node, const char *type)
{
    for (size_t i = 0; node->status && i < node->status->n_conditions; i++)
        if (zc_streq (node->status->conditions[i]->type, type))
            return node->status->conditions[i];
    return NULL;
}

//  One NodeSelectorRequirement against a value (label or field); present
//  false when the node has no such label.
static inline bool
zn_requirement_matches (const Zube__NodeSelectorRequirement *req, const char *value)
{
    const char *op = req->operator_;
    if (zc_streq (op, "Exists"))
        return value != NULL;
    if (zc_streq (op, "DoesNotExist"))
        return value == NULL;
    if (zc_streq (op, "In") || zc_streq (op, "NotIn")) {
        bool in = false;
        for (size_t i = 0; value && i < req->n_values; i++)
            if (zc_streq (req->values[i], value))
                in = true;
        return zc_streq (op, "In") ? in : !in;
    }
    if (zc_streq (op, "Gt") || zc_streq (op, "Lt")) {
        if (!value || req->n_values != 1)
            return false;
        char *end = NULL;
        errno = 0;
        long long have = strtoll (value, &end, 10);
        if (errno || !end || *end)
            return false;
        long long want = strtoll (req->values[0], &end, 10);
        if (!end || *end)
            return false;
        return zc_streq (op, "Gt") ? have > want : have < want;
    }
    return false;
}

//  A NodeSelectorTerm: every expression (labels) and field (metadata.name)
//  matches; an empty term matches nothing (Kubernetes).
static inline bool
zn_term_matches (const Zube__NodeSelectorTerm *term, const Zube__Node *node)
{
    if (term->n_match_expressions == 0 && term->n_match_fields == 0)
        return false;
    for (size_t i = 0; i < term->n_match_expressions; i++) {
        const Zube__NodeSelectorRequirement *req = term->match_expressions[i];
        if (!zn_requirement_matches (req, zc_label (node->metadata, req->key)))
            return false;
    }
    for (size_t i = 0; i < term->n_match_fields; i++) {
        const Zube__NodeSelectorRequirement *req = term->match_fields[i];
        const char *value = zc_streq (req->key, "metadata.name") && node->metadata
                                ? node->metadata->name
                                : NULL;
        if (!zn_requirement_matches (req, value))
            return false;
    }
    return true;
}

//  spec.nodeSelector and the required node affinity of a pod spec against
//  a node (Kubernetes' GetRequiredNodeAffinity.Match).
static inline bool
zn_node_fits (const Zube__PodSpec *spec, const Zube__Node *node)
{
    for (size_t i = 0; i < spec->n_node_selector; i++)
        if (!zc_streq (zc_label (node->metadata, spec->node_selector[i]->key),
                       spec->node_selector[i]->value))
            return false;
    const Zube__NodeAffinity *affinity =
        spec->affinity ? spec->affinity->node_affinity : NULL;
    const Zube__NodeSelector *required =
        affinity ? affinity->required_during_scheduling_ignored_during_execution : NULL;
    if (!required)
        return true;
    for (size_t i = 0; i < required->n_node_selector_terms; i++)
        if (zn_term_matches (required->node_selector_terms[i], node))
            return true;
    return false;
}

//  A duration setting: "40s", "500ms", "2m", "1h", or plain seconds.
//  -1 when unreadable.
static inline int64_t
zn_parse_duration_ms (const char *text)
{
    if (zc_empty (text))
        return -1;
    char *end = NULL;
    errno = 0;
    double value = strtod (text, &end);
    if (errno || end == text || value < 0)
        return -1;
    double scale = 1000;
    if (zc_streq (end, "ms"))
        scale = 1;
    else if (zc_streq (end, "s") || !*end)
        scale = 1000;
    else if (zc_streq (end, "m"))
        scale = 60000;
    else if (zc_streq (end, "h"))
        scale = 3600000;
    else
        return -1;
    return (int64_t)(value * scale);
}

//  ---------------------------------------------------------------------
//  A string -> int64 map (chained, grows), for per-node and per-pod
//  bookkeeping of thousands of keys.

typedef struct zn_entry_t {
    struct zn_entry_t *next;
    char *key;
    int64_t value;
    int64_t mark;
    char *text; //  a string the owner keeps with the key (may be NULL)
} zn_entry_t;

typedef struct {
    zn_entry_t **buckets;
    size_t bucket_count;
    size_t count;
} zn_map_t;

static inline uint64_t
zn_hash (const char *key)
{
    uint64_t hash = UINT64_C (1469598103934665603);
    for (const char *c = key; *c; c++)
        hash = (hash ^ (uint8_t)*c) * UINT64_C (1099511628211);
    return hash;
}

static inline zn_entry_t *
zn_map_find (const zn_map_t *self, const char *key)
{
    if (!self->bucket_count)
        return NULL;
    for (zn_entry_t *e = self->buckets[zn_hash (key) % self->bucket_count]; e;
         e = e->next)
        if (strcmp (e->key, key) == 0)
            return e;
    return NULL;
}

//  The entry of key, made (value 0) when absent; NULL when out of memory.
static inline zn_entry_t *
zn_map_put (zn_map_t *self, const char *key)
{
    zn_entry_t *found = zn_map_find (self, key);
    if (found)
        return found;
    if (self->count >= self->bucket_count) {
        size_t count = self->bucket_count ? self->bucket_count * 2 : 64;
        zn_entry_t **buckets = calloc (count, sizeof *buckets);
        if (!buckets)
            return NULL;
        for (size_t b = 0; b < self->bucket_count; b++)
            for (zn_entry_t *e = self->buckets[b], *next; e; e = next) {
                next = e->next;
                size_t at = zn_hash (e->key) % count;
                e->next = buckets[at];
                buckets[at] = e;
            }
        free (self->buckets);
        self->buckets = buckets;
        self->bucket_count = count;
    }
    zn_entry_t *entry = calloc (1, sizeof *entry);
    if (!entry || !(entry->key = strdup (key))) {
        free (entry);
        return NULL;
    }
    size_t at = zn_hash (key) % self->bucket_count;
    entry->next = self->buckets[at];
    self->buckets[at] = entry;
    self->count++;
    return entry;
}

static inline void
zn_map_remove (zn_map_t *self, const char *key)
{
    if (!self->bucket_count)
        return;
    for (zn_entry_t **at = &self->buckets[zn_hash (key) % self->bucket_count]; *at;
         at = &(*at)->next)
        if (strcmp ((*at)->key, key) == 0) {
            zn_entry_t *gone = *at;
            *at = gone->next;
            free (gone->key);
            free (gone->text);
            free (gone);
            self->count--;
            return;
        }
}

//  Removes every entry whose mark is not mark.
static inline void
zn_map_sweep (zn_map_t *self, int64_t mark)
{
    for (size_t b = 0; b < self->bucket_count; b++)
        for (zn_entry_t **at = &self->buckets[b]; *at;) {
            zn_entry_t *e = *at;
            if (e->mark == mark) {
                at = &e->next;
                continue;
            }
            *at = e->next;
            free (e->key);
            free (e->text);
            free (e);
            self->count--;
        }
}

static inline void
zn_map_clear (zn_map_t *self)
{
    zn_map_sweep (self, INT64_MIN);
    for (size_t b = 0; b < self->bucket_count; b++)
        for (zn_entry_t *e = self->buckets[b], *next; e; e = next) {
            next = e->next;
            free (e->key);
            free (e->text);
            free (e);
        }
    free (self->buckets);
    *self = (zn_map_t){0};
}

//  Sets entry->text to a copy of text (NULL clears); false when unchanged.
static inline bool
zn_entry_set_text (zn_entry_t *entry, const char *text)
{
    if ((!entry->text && !text) ||
        (entry->text && text && strcmp (entry->text, text) == 0))
        return false;
    free (entry->text);
    entry->text = text ? strdup (text) : NULL;
    return true;
}

#endif
