/*  InterPodAffinity - podAffinity and podAntiAffinity (Kubernetes'
    interpodaffinity plugin). A term matches the pods its labelSelector
    selects in its namespaces (the owner's namespace when it lists none;
    an empty namespaceSelector {} is every namespace), and names a
    topology domain by topologyKey. Filter: every required affinity term
    needs a matching pod in the node's domain (or, for the first pod of a
    group, no matching pod anywhere and the pod matching its own terms);
    no required anti-affinity term may have a matching pod in the node's
    domain; and no pod already placed may have a required anti-affinity
    term that matches the incoming pod in the node's domain (the
    symmetric check). Score: the preferred terms' weights, both ways (the
    pod's terms over the pods around, and the placed pods' preferred
    terms and required affinity terms, weight 1, over the pod), summed per
    domain, scaled to 0..100. The pods come from node.assigned.

    A pod without terms of its own is only concerned by placed pods that
    have some: the filter by those with required anti-affinity, the score
    by those with any term. The host lists the nodes that have such pods
    (cycle->required_anti_affinity_nodes, affinity_nodes, Kubernetes'
    HavePodsWithRequiredAntiAffinityList and HavePodsWithAffinityList), so
    for such a pod the plugin looks at those nodes only, and skips when
    there are none; a host without the lists makes it look at every node. */
#include "sched_pods.h"

SCHED_PLAIN_CREATE ("InterPodAffinity")

//  Kubernetes' hardPodAffinityWeight default.
#define S_HARD_AFFINITY_WEIGHT 1

//  A topology domain (topologyKey, value) and a number for it.
typedef struct {
    const char *key;
    const char *value;
    int64_t number;
} s_pair_t;

typedef struct {
    size_t count, capacity;
    s_pair_t *pairs;
} s_pairs_t;

typedef struct {
    s_pairs_t affinity;      //  pods matching the pod's required affinity terms
    s_pairs_t anti_affinity; //  pods matching its required anti-affinity terms
    s_pairs_t existing_anti; //  domains placed pods' anti-affinity forbid
    bool self_match;         //  the pod matches all its required affinity terms
    //  The cycle's nodes, to tell a node copy without some pods
    //  (preemption's filter_without) by its generation.
    const zube_sched_node_t *const *nodes;
    size_t node_count;
    s_pairs_t score; //  preferred weights per domain
    bool oom;
} s_state_t;

static void
s_pairs_add (s_pairs_t *pairs, const char *key, const char *value, int64_t number,
             bool *oom)
{
    for (size_t i = 0; i < pairs->count; i++)
        if (strcmp (pairs->pairs[i].key, key) == 0 &&
            strcmp (pairs->pairs[i].value, value) == 0) {
            pairs->pairs[i].number += number;
            return;
        }
    if (pairs->count == pairs->capacity) {
        size_t capacity = pairs->capacity ? pairs->capacity * 2 : 8;
        s_pair_t *grown = realloc (pairs->pairs, capacity * sizeof *grown);
        if (!grown) {
            *oom = true;
            return;
        }
        pairs->pairs = grown;
        pairs->capacity = capacity;
    }
    pairs->pairs[pairs->count++] = (s_pair_t){key, value, number};
}

static int64_t
s_pairs_get (const s_pairs_t *pairs, const char *key, const char *value)
{
    for (size_t i = 0; i < pairs->count; i++)
        if (strcmp (pairs->pairs[i].key, key) == 0 &&
            strcmp (pairs->pairs[i].value, value) == 0)
            return pairs->pairs[i].number;
    return 0;
}

static void
s_cycle_free (void *self, void *cycle_data)
{
    (void)self;
    s_state_t *state = cycle_data;
    if (!state)
        return;
    free (state->affinity.pairs);
    free (state->anti_affinity.pairs);
    free (state->existing_anti.pairs);
    free (state->score.pairs);
    free (state);
}

//  Does term, written in owner's spec, select target?
static bool
s_term_matches (const Zube__PodAffinityTerm *term, const zube_sched_pod_t *owner,
                const zube_sched_pod_t *target)
{
    if (!term)
        return false;
    const Zube__LabelSelector *all = term->namespace_selector;
    bool every_namespace =
        all && all->n_match_labels == 0 && all->n_match_expressions == 0;
    if (!every_namespace) {
        bool in = term->n_namespaces == 0 && !all &&
                  strcmp (owner->namespace_, target->namespace_) == 0;
        for (size_t i = 0; i < term->n_namespaces; i++)
            if (strcmp (term->namespaces[i], target->namespace_) == 0)
                in = true;
        if (!in)
            return false;
    }
    if (!sched_selector_matches (term->label_selector, target->labels,
                                 target->label_count))
        return false;
    return sched_label_keys_match (term->match_label_keys, term->n_match_label_keys,
                                   owner, target, false) &&
           sched_label_keys_match (term->mismatch_label_keys, term->n_mismatch_label_keys,
                                   owner, target, true);
}

static const char *
s_key (const Zube__PodAffinityTerm *term)
{
    return term && term->topology_key ? term->topology_key : "";
}

static const Zube__PodAffinity *
s_affinity (const zube_sched_pod_t *pod)
{
    const Zube__PodSpec *spec = sched_pod_spec (pod);
    return spec && spec->affinity ? spec->affinity->pod_affinity : NULL;
}

static const Zube__PodAntiAffinity *
s_anti_affinity (const zube_sched_pod_t *pod)
{
    const Zube__PodSpec *spec = sched_pod_spec (pod);
    return spec && spec->affinity ? spec->affinity->pod_anti_affinity : NULL;
}

//  Adds number to the domain of term on node, when node has its key.
static void
s_count (s_pairs_t *pairs, const Zube__PodAffinityTerm *term,
         const zube_sched_node_t *node, int64_t number, bool *oom)
{
    const char *value = sched_label (node->labels, node->label_count, s_key (term));
    if (value)
        s_pairs_add (pairs, s_key (term), value, number, oom);
}

//  How many required (anti-)affinity terms the pod has.
static size_t
s_required (const zube_sched_pod_t *pod, bool anti)
{
    const Zube__PodAffinity *affinity = s_affinity (pod);
    const Zube__PodAntiAffinity *anti_affinity = s_anti_affinity (pod);
    if (anti)
        return anti_affinity
                   ? anti_affinity->n_required_during_scheduling_ignored_during_execution
                   : 0;
    return affinity ? affinity->n_required_during_scheduling_ignored_during_execution : 0;
}

//  Adds sign for other on node to the filter's counts.
static void
s_count_pod (s_state_t *state, const zube_sched_pod_t *pod, const zube_sched_pod_t *other,
             const zube_sched_node_t *node, int64_t sign)
{
    const Zube__PodAffinity *affinity = s_affinity (pod);
    const Zube__PodAntiAffinity *anti = s_anti_affinity (pod);
    size_t required = s_required (pod, false), required_anti = s_required (pod, true);
    //  Kubernetes counts a pod only when it matches every term.
    bool all = required > 0;
    for (size_t t = 0; t < required && all; t++)
        all = s_term_matches (
            affinity->required_during_scheduling_ignored_during_execution[t], pod, other);
    for (size_t t = 0; all && t < required; t++)
        s_count (&state->affinity,
                 affinity->required_during_scheduling_ignored_during_execution[t], node,
                 sign, &state->oom);
    for (size_t t = 0; t < required_anti; t++) {
        const Zube__PodAffinityTerm *term =
            anti->required_during_scheduling_ignored_during_execution[t];
        if (s_term_matches (term, pod, other))
            s_count (&state->anti_affinity, term, node, sign, &state->oom);
    }
    const Zube__PodAntiAffinity *theirs = s_anti_affinity (other);
    for (size_t t = 0;
         theirs && t < theirs->n_required_during_scheduling_ignored_during_execution;
         t++) {
        const Zube__PodAffinityTerm *term =
            theirs->required_during_scheduling_ignored_during_execution[t];
        if (s_term_matches (term, other, pod))
            s_count (&state->existing_anti, term, node, sign, &state->oom);
    }
}

//  True when the host lists the nodes with pods with affinity terms.
static bool
s_has_lists (const zube_sched_cycle_t *cycle)
{
    return ZUBE_SCHED_HAS (cycle, required_anti_affinity_nodes);
}

//  The filter's counts over every pod of every node (only the pods with
//  affinity terms, on the nodes listed as having them, for a pod without
//  terms of its own).
static void
s_filter_counts (s_state_t *state, const zube_sched_cycle_t *cycle,
                 const zube_sched_pod_t *pod)
{
    const Zube__PodAffinity *affinity = s_affinity (pod);
    size_t required = s_required (pod, false);
    bool terms = required || s_required (pod, true);
    bool listed = !terms && s_has_lists (cycle);
    size_t node_count =
        listed ? cycle->required_anti_affinity_node_count : cycle->node_count;
    const zube_sched_node_t *const *nodes =
        listed ? cycle->required_anti_affinity_nodes : cycle->nodes;
    for (size_t n = 0; n < node_count; n++) {
        const zube_sched_node_t *node = nodes[n];
        //  Without terms of its own only pods with affinity matter
        size_t limit = terms ? node->assigned_count : node->assigned_with_affinity;
        for (size_t p = 0; p < limit; p++) {
            const zube_sched_pod_t *other = node->assigned[p];
            s_count_pod (state, pod, other, node, 1);
        }
    }
    state->self_match = true;
    for (size_t t = 0; t < required && state->self_match; t++)
        state->self_match = s_term_matches (
            affinity->required_during_scheduling_ignored_during_execution[t], pod, pod);
    state->nodes = cycle->nodes;
    state->node_count = cycle->node_count;
}

static zube_sched_code_t
s_pre_filter (void *self, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
              void **cycle_data, char *reason, size_t reason_size)
{
    (void)self;
    if (!sched_has_assigned (cycle)) {
        snprintf (reason, reason_size,
                  "InterPodAffinity: the host lists no pods per node");
        return ZUBE_SCHED_ERROR;
    }
    bool terms = s_required (pod, false) || s_required (pod, true);
    //  No terms, and no placed pod's required anti-affinity to respect
    if (!terms && s_has_lists (cycle) && !cycle->required_anti_affinity_node_count)
        return ZUBE_SCHED_SKIP;
    s_state_t *state = calloc (1, sizeof *state);
    if (state)
        s_filter_counts (state, cycle, pod);
    if (!state || state->oom) {
        s_cycle_free (NULL, state);
        snprintf (reason, reason_size, "InterPodAffinity: out of memory");
        return ZUBE_SCHED_ERROR;
    }
    *cycle_data = state;
    return terms || state->existing_anti.count ? ZUBE_SCHED_SUCCESS : ZUBE_SCHED_SKIP;
}

static bool
s_satisfies_affinity (const s_state_t *state, const Zube__PodAffinity *affinity,
                      const zube_sched_node_t *node)
{
    size_t required =
        affinity ? affinity->n_required_during_scheduling_ignored_during_execution : 0;
    bool pods_exist = true;
    for (size_t t = 0; t < required; t++) {
        const char *key =
            s_key (affinity->required_during_scheduling_ignored_during_execution[t]);
        const char *value = sched_label (node->labels, node->label_count, key);
        if (!value)
            return false;
        if (s_pairs_get (&state->affinity, key, value) <= 0)
            pods_exist = false;
    }
    if (pods_exist)
        return true;
    //  The first of a group: no pod matches anywhere, and it matches itself
    for (size_t i = 0; i < state->affinity.count; i++)
        if (state->affinity.pairs[i].number > 0)
            return false;
    return state->self_match;
}

static bool
s_in_counted_domain (const s_pairs_t *pairs, const zube_sched_node_t *node)
{
    for (size_t i = 0; i < pairs->count; i++) {
        const char *value =
            sched_label (node->labels, node->label_count, pairs->pairs[i].key);
        if (value && pairs->pairs[i].number > 0 &&
            strcmp (value, pairs->pairs[i].value) == 0)
            return true;
    }
    return false;
}

static bool
s_listed (const zube_sched_node_t *node, const zube_sched_pod_t *pod)
{
    for (size_t i = 0; i < node->assigned_count; i++)
        if (node->assigned[i] == pod)
            return true;
    return false;
}

static bool
s_pairs_dup (s_pairs_t *pairs)
{
    s_pair_t *copy = malloc ((pairs->count + 1) * sizeof *copy);
    if (copy && pairs->count)
        memcpy (copy, pairs->pairs, pairs->count * sizeof *copy);
    pairs->pairs = copy;
    pairs->capacity = pairs->count;
    return copy != NULL;
}

static zube_sched_code_t s_check (const s_state_t *state, const zube_sched_pod_t *pod,
                                  const zube_sched_node_t *node, char *reason,
                                  size_t reason_size);

//  A copy of a node without some of its pods (preemption's
//  filter_without): the counts without the pods it lacks.
static zube_sched_code_t
s_filter_without (const s_state_t *state, const zube_sched_pod_t *pod,
                  const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    const zube_sched_node_t *original = state->nodes[node->index];
    s_state_t local = *state;
    local.oom = false;
    bool copied = s_pairs_dup (&local.affinity);
    copied = s_pairs_dup (&local.anti_affinity) && copied;
    copied = s_pairs_dup (&local.existing_anti) && copied;
    for (size_t p = 0; copied && p < original->assigned_count; p++)
        if (!s_listed (node, original->assigned[p]))
            s_count_pod (&local, pod, original->assigned[p], original, -1);
    zube_sched_code_t code = ZUBE_SCHED_ERROR;
    if (copied && !local.oom)
        code = s_check (&local, pod, node, reason, reason_size);
    else
        snprintf (reason, reason_size, "InterPodAffinity: out of memory");
    free (local.affinity.pairs);
    free (local.anti_affinity.pairs);
    free (local.existing_anti.pairs);
    return code;
}

static zube_sched_code_t
s_filter (void *self, void *cycle_data, const zube_sched_pod_t *pod,
          const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    (void)self;
    const s_state_t *state = cycle_data;
    if (node->index < state->node_count &&
        state->nodes[node->index]->generation != node->generation)
        return s_filter_without (state, pod, node, reason, reason_size);
    return s_check (state, pod, node, reason, reason_size);
}

static zube_sched_code_t
s_check (const s_state_t *state, const zube_sched_pod_t *pod,
         const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    if (!s_satisfies_affinity (state, s_affinity (pod), node)) {
        snprintf (reason, reason_size, "node(s) didn't match pod affinity rules");
        return ZUBE_SCHED_UNRESOLVABLE;
    }
    if (s_in_counted_domain (&state->anti_affinity, node)) {
        snprintf (reason, reason_size, "node(s) didn't match pod anti-affinity rules");
        return ZUBE_SCHED_UNSCHEDULABLE;
    }
    if (s_in_counted_domain (&state->existing_anti, node)) {
        snprintf (reason, reason_size,
                  "node(s) didn't satisfy existing pods anti-affinity rules");
        return ZUBE_SCHED_UNSCHEDULABLE;
    }
    return ZUBE_SCHED_SUCCESS;
}

//  Adds sign * weight for each weighted term of owner that selects target
//  to the term's domain on node.
static void
s_weigh (s_state_t *state, Zube__WeightedPodAffinityTerm *const *terms, size_t count,
         int64_t sign, const zube_sched_pod_t *owner, const zube_sched_pod_t *target,
         const zube_sched_node_t *node)
{
    for (size_t t = 0; t < count; t++) {
        const Zube__PodAffinityTerm *term = terms[t]->pod_affinity_term;
        if (terms[t]->weight && s_term_matches (term, owner, target))
            s_count (&state->score, term, node, sign * terms[t]->weight, &state->oom);
    }
}

//  Kubernetes' processExistingPod: the pod's preferred terms over other,
//  and other's preferred terms and required affinity over the pod.
static void
s_score_pod (s_state_t *state, const zube_sched_pod_t *pod, const zube_sched_pod_t *other,
             const zube_sched_node_t *node)
{
    const Zube__PodAffinity *affinity = s_affinity (pod);
    const Zube__PodAntiAffinity *anti = s_anti_affinity (pod);
    if (affinity)
        s_weigh (state, affinity->preferred_during_scheduling_ignored_during_execution,
                 affinity->n_preferred_during_scheduling_ignored_during_execution, 1, pod,
                 other, node);
    if (anti)
        s_weigh (state, anti->preferred_during_scheduling_ignored_during_execution,
                 anti->n_preferred_during_scheduling_ignored_during_execution, -1, pod,
                 other, node);
    const Zube__PodAffinity *their_affinity = s_affinity (other);
    const Zube__PodAntiAffinity *their_anti = s_anti_affinity (other);
    if (their_affinity) {
        for (size_t t = 0;
             t < their_affinity->n_required_during_scheduling_ignored_during_execution;
             t++) {
            const Zube__PodAffinityTerm *term =
                their_affinity->required_during_scheduling_ignored_during_execution[t];
            if (s_term_matches (term, other, pod))
                s_count (&state->score, term, node, S_HARD_AFFINITY_WEIGHT, &state->oom);
        }
        s_weigh (state,
                 their_affinity->preferred_during_scheduling_ignored_during_execution,
                 their_affinity->n_preferred_during_scheduling_ignored_during_execution,
                 1, other, pod, node);
    }
    if (their_anti)
        s_weigh (state, their_anti->preferred_during_scheduling_ignored_during_execution,
                 their_anti->n_preferred_during_scheduling_ignored_during_execution, -1,
                 other, pod, node);
}

//  True when the pod has preferred (anti-)affinity terms.
static bool
s_preferred (const zube_sched_pod_t *pod)
{
    const Zube__PodAffinity *affinity = s_affinity (pod);
    const Zube__PodAntiAffinity *anti = s_anti_affinity (pod);
    return (affinity && affinity->n_preferred_during_scheduling_ignored_during_execution) ||
           (anti && anti->n_preferred_during_scheduling_ignored_during_execution);
}

static zube_sched_code_t
s_pre_score (void *self, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, size_t count, void **cycle_data)
{
    (void)self, (void)nodes, (void)count;
    if (!sched_has_assigned (cycle))
        return ZUBE_SCHED_SKIP;
    //  Without preferred terms of its own only the placed pods' terms
    //  score (Kubernetes' PreScore)
    bool mine = s_preferred (pod);
    bool listed = !mine && s_has_lists (cycle);
    if (listed && !cycle->affinity_node_count)
        return ZUBE_SCHED_SKIP;
    if (!*cycle_data)
        *cycle_data = calloc (1, sizeof (s_state_t));
    s_state_t *state = *cycle_data;
    if (!state)
        return ZUBE_SCHED_SKIP;
    size_t node_count = listed ? cycle->affinity_node_count : cycle->node_count;
    const zube_sched_node_t *const *scored = listed ? cycle->affinity_nodes : cycle->nodes;
    for (size_t n = 0; n < node_count; n++) {
        const zube_sched_node_t *node = scored[n];
        size_t limit = mine ? node->assigned_count : node->assigned_with_affinity;
        for (size_t p = 0; p < limit; p++)
            s_score_pod (state, pod, node->assigned[p], node);
    }
    return state->score.count && !state->oom ? ZUBE_SCHED_SUCCESS : ZUBE_SCHED_SKIP;
}

static zube_sched_code_t
s_score (void *self, void *cycle_data, const zube_sched_pod_t *pod,
         const zube_sched_node_t *node, int64_t *score)
{
    (void)self, (void)pod;
    const s_state_t *state = cycle_data;
    *score = 0;
    for (size_t i = 0; i < state->score.count; i++) {
        const s_pair_t *pair = &state->score.pairs[i];
        const char *value = sched_label (node->labels, node->label_count, pair->key);
        if (value && strcmp (value, pair->value) == 0)
            *score += pair->number;
    }
    return ZUBE_SCHED_SUCCESS;
}

//  Kubernetes' NormalizeScore: (score - min) / (max - min), 0 when all equal.
static zube_sched_code_t
s_normalize (void *self, void *cycle_data, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, int64_t *scores, size_t count)
{
    (void)self, (void)cycle_data, (void)pod, (void)nodes;
    int64_t min = 0, max = 0;
    for (size_t i = 0; i < count; i++) {
        if (i == 0 || scores[i] < min)
            min = scores[i];
        if (i == 0 || scores[i] > max)
            max = scores[i];
    }
    for (size_t i = 0; i < count; i++)
        scores[i] =
            max > min ? ZUBE_SCHED_MAX_SCORE * (scores[i] - min) / (max - min) : 0;
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "InterPodAffinity",
    .events = ZUBE_SCHED_EVENT_NODE_ADD | ZUBE_SCHED_EVENT_NODE_UPDATE |
              ZUBE_SCHED_EVENT_POD_DELETE | ZUBE_SCHED_EVENT_POD_UPDATE,
    .create = s_create,
    .destroy = sched_plain_destroy,
    .pre_filter = s_pre_filter,
    .filter = s_filter,
    .pre_score = s_pre_score,
    .score = s_score,
    .normalize = s_normalize,
    .cycle_free = s_cycle_free,
};

ZUBE_PLUGIN_DEFINE (.name = "interpodaffinity", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "filter and score: podAffinity and podAntiAffinity",
                    .ops = &s_ops)
