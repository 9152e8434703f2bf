/*  NodeAffinity - filter: spec.nodeSelector and the required node affinity
    (terms ORed, expressions ANDed; In, NotIn, Exists, DoesNotExist, Gt,
    Lt; matchFields on metadata.name); score: the summed weights of the
    preferred terms a node matches, scaled to 0..100 (Kubernetes'
    nodeaffinity plugin). Reads the pod's affinity from the full object. */
#include "core.pb-c.h"
#include "sched_plugin.h"
#include <errno.h>

SCHED_PLAIN_CREATE ("NodeAffinity")

static const Zube__NodeAffinity *
s_affinity (const zube_sched_pod_t *pod)
{
    const Zube__Pod *object = pod->pod;
    if (!object || !object->spec || !object->spec->affinity)
        return NULL;
    return object->spec->affinity->node_affinity;
}

static bool
s_integer (const char *text, long long *value_p)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    errno = 0;
    *value_p = strtoll (text, &end, 10);
    return !errno && !*end;
}

static bool
s_requirement_matches (const Zube__NodeSelectorRequirement *requirement,
                       const char *value)
{
    const char *op = requirement->operator_ ? requirement->operator_ : "";
    if (strcmp (op, "Exists") == 0)
        return value != NULL;
    if (strcmp (op, "DoesNotExist") == 0)
        return value == NULL;
    if (strcmp (op, "In") == 0 || strcmp (op, "NotIn") == 0) {
        bool in = false;
        for (size_t i = 0; value && i < requirement->n_values; i++)
            if (strcmp (requirement->values[i], value) == 0)
                in = true;
        return op[0] == 'I' ? in : !in;
    }
    if (strcmp (op, "Gt") == 0 || strcmp (op, "Lt") == 0) {
        long long have, bound;
        if (requirement->n_values != 1 || !s_integer (value, &have) ||
            !s_integer (requirement->values[0], &bound))
            return false;
        return op[0] == 'G' ? have > bound : have < bound;
    }
    return false;
}

static bool
s_term_matches (const Zube__NodeSelectorTerm *term, const zube_sched_node_t *node)
{
    if (!term || (term->n_match_expressions == 0 && term->n_match_fields == 0))
        return false;
    for (size_t i = 0; i < term->n_match_expressions; i++) {
        const Zube__NodeSelectorRequirement *requirement = term->match_expressions[i];
        const char *key = requirement->key ? requirement->key : "";
        if (!s_requirement_matches (requirement,
                                    sched_label (node->labels, node->label_count, key)))
            return false;
    }
    for (size_t i = 0; i < term->n_match_fields; i++) {
        const Zube__NodeSelectorRequirement *requirement = term->match_fields[i];
        const char *key = requirement->key ? requirement->key : "";
        const char *value = strcmp (key, "metadata.name") == 0 ? node->name : NULL;
        if (!s_requirement_matches (requirement, value))
            return false;
    }
    return true;
}

static const Zube__NodeSelector *
s_required (const zube_sched_pod_t *pod)
{
    const Zube__NodeAffinity *affinity = s_affinity (pod);
    return affinity ? affinity->required_during_scheduling_ignored_during_execution
                    : NULL;
}

static zube_sched_code_t
s_pre_filter (void *self, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
              void **cycle_data, char *reason, size_t reason_size)
{
    (void)self, (void)cycle, (void)cycle_data, (void)reason, (void)reason_size;
    const Zube__NodeSelector *required = s_required (pod);
    bool constrained =
        pod->node_selector_count || (required && required->n_node_selector_terms);
    return constrained ? ZUBE_SCHED_SUCCESS : ZUBE_SCHED_SKIP;
}

static zube_sched_code_t
s_filter (void *self, void *cycle_data, const zube_sched_pod_t *pod,
          const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    (void)self, (void)cycle_data;
    bool fits = true;
    for (size_t i = 0; fits && i < pod->node_selector_count; i++) {
        const char *value =
            sched_label (node->labels, node->label_count, pod->node_selector[i].key);
        fits = value && strcmp (value, pod->node_selector[i].value) == 0;
    }
    const Zube__NodeSelector *required = s_required (pod);
    if (fits && required && required->n_node_selector_terms) {
        fits = false;
        for (size_t i = 0; !fits && i < required->n_node_selector_terms; i++)
            fits = s_term_matches (required->node_selector_terms[i], node);
    }
    if (fits)
        return ZUBE_SCHED_SUCCESS;
    snprintf (reason, reason_size, "node(s) didn't match Pod's node affinity/selector");
    return ZUBE_SCHED_UNRESOLVABLE;
}

static zube_sched_code_t
s_pre_score (void *self, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, size_t count, void **cycle_data)
{
    (void)self, (void)cycle, (void)nodes, (void)count, (void)cycle_data;
    const Zube__NodeAffinity *affinity = s_affinity (pod);
    return affinity && affinity->n_preferred_during_scheduling_ignored_during_execution
               ? ZUBE_SCHED_SUCCESS
               : ZUBE_SCHED_SKIP;
}

static zube_sched_code_t
s_score (void *self, void *cycle_data, const zube_sched_pod_t *pod,
         const zube_sched_node_t *node, int64_t *score)
{
    (void)self, (void)cycle_data;
    const Zube__NodeAffinity *affinity = s_affinity (pod);
    int64_t total = 0;
    for (size_t i = 0;
         i < affinity->n_preferred_during_scheduling_ignored_during_execution; i++) {
        const Zube__PreferredSchedulingTerm *term =
            affinity->preferred_during_scheduling_ignored_during_execution[i];
        if (term->weight > 0 && s_term_matches (term->preference, node))
            total += term->weight;
    }
    *score = total;
    return ZUBE_SCHED_SUCCESS;
}

static zube_sched_code_t
s_normalize (void *self, void *cycle_data, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, int64_t *scores, size_t count)
{
    (void)self, (void)cycle_data, (void)pod, (void)nodes;
    sched_normalize_default (scores, count, false);
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "NodeAffinity",
    .events = ZUBE_SCHED_EVENT_NODE_ADD | ZUBE_SCHED_EVENT_NODE_UPDATE,
    .create = s_create,
    .destroy = sched_plain_destroy,
    .pre_filter = s_pre_filter,
    .filter = s_filter,
    .pre_score = s_pre_score,
    .score = s_score,
    .normalize = s_normalize,
};

ZUBE_PLUGIN_DEFINE (.name = "nodeaffinity", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "filter and score: nodeSelector and node affinity",
                    .ops = &s_ops)
