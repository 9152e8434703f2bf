/*  PodTopologySpread - spec.topologySpreadConstraints (Kubernetes'
    podtopologyspread plugin). A DoNotSchedule constraint filters: the
    pods its labelSelector (and matchLabelKeys) matches in the pod's
    namespace are counted per value of topologyKey over the nodes that
    have the key and match the pod's nodeSelector; a node is refused when
    its domain's count plus the pod itself exceeds the smallest count by
    more than maxSkew (a smallest count of 0 while fewer than minDomains
    domains exist), and a node without the key is refused outright. A
    ScheduleAnyway constraint scores: fewer matching pods in the node's
    domain score higher, weighted by log (domains + 2) per constraint.
    The pods come from node.assigned (scheduler.h). No default
    constraints (a pod without constraints is skipped). */
#include "sched_pods.h"
#include <math.h>

SCHED_PLAIN_CREATE ("PodTopologySpread")

#define S_NO_KEY_REASON                                                                  \
    "node(s) didn't match pod topology spread constraints (missing required label)"
#define S_SKEW_REASON "node(s) didn't match pod topology spread constraints"

typedef struct {
    const Zube__TopologySpreadConstraint *spec;
    const char *key;
    bool hard;
    int64_t max_skew;
    //  Domains (topologyKey values, borrowed from node labels) and the
    //  matching pods in each.
    size_t domain_count;
    const char **domains;
    int64_t *counts;
    //  The domain of each node of the cycle (by index), domain_count when
    //  the node was not counted.
    size_t *node_domain;
    //  The matching pods each node of the cycle holds (by index).
    int64_t *node_matching;
    //  While counting: domains by value, an open-addressed hash table
    //  (SIZE_MAX: free), so per-node keys (hostname) stay linear.
    size_t *slots;
    size_t mask;
    int64_t min;
    int64_t self_match;
    double weight;
} s_constraint_t;

typedef struct {
    size_t count;
    size_t hard_count;
    size_t node_count;
    //  The cycle's nodes, to tell a node copy without some pods
    //  (preemption's filter_without) by its generation.
    const zube_sched_node_t *const *nodes;
    s_constraint_t *constraints;
} s_state_t;

static void
s_cycle_free (void *self, void *cycle_data)
{
    (void)self;
    s_state_t *state = cycle_data;
    if (!state)
        return;
    for (size_t i = 0; i < state->count; i++) {
        free (state->constraints[i].domains);
        free (state->constraints[i].counts);
        free (state->constraints[i].node_domain);
        free (state->constraints[i].node_matching);
        free (state->constraints[i].slots);
    }
    free (state->constraints);
    free (state);
}

static bool
s_counts (const s_constraint_t *c, const zube_sched_pod_t *pod,
          const zube_sched_pod_t *other)
{
    if (strcmp (other->namespace_, pod->namespace_) != 0)
        return false;
    //  Terminating pods do not count (Kubernetes' countPodsMatchSelector)
    const Zube__Pod *object = other->pod;
    if (object && object->metadata && object->metadata->deletion_timestamp &&
        *object->metadata->deletion_timestamp)
        return false;
    if (!sched_selector_matches (c->spec->label_selector, other->labels,
                                 other->label_count))
        return false;
    return sched_label_keys_match (c->spec->match_label_keys, c->spec->n_match_label_keys,
                                   pod, other, false);
}

static int64_t
s_node_matching (const s_constraint_t *c, const zube_sched_pod_t *pod,
                 const zube_sched_node_t *node)
{
    int64_t matching = 0;
    for (size_t p = 0; p < node->assigned_count; p++)
        matching += s_counts (c, pod, node->assigned[p]);
    return matching;
}

//  True when the node has every key of the constraints of one kind
//  (hard or soft) and matches the pod's nodeSelector (nodeAffinityPolicy
//  Honor, for the selector).
static bool
s_node_eligible (const s_state_t *state, bool hard, const zube_sched_pod_t *pod,
                 const zube_sched_node_t *node)
{
    for (size_t i = 0; i < state->count; i++)
        if (state->constraints[i].hard == hard &&
            !sched_label (node->labels, node->label_count, state->constraints[i].key))
            return false;
    for (size_t i = 0; i < pod->node_selector_count; i++) {
        const char *have =
            sched_label (node->labels, node->label_count, pod->node_selector[i].key);
        if (!have || strcmp (have, pod->node_selector[i].value) != 0)
            return false;
    }
    return true;
}

//  The node's domain (value: its topologyKey label); domain_count when
//  it has none counted.
static size_t
s_domain_find (const s_state_t *state, const s_constraint_t *c,
               const zube_sched_node_t *node, const char *value)
{
    if (node->index < state->node_count)
        return c->node_domain[node->index];
    for (size_t i = 0; i < c->domain_count; i++)
        if (strcmp (c->domains[i], value) == 0)
            return i;
    return c->domain_count;
}

//  The index of domain value, added when new.
static size_t
s_domain_index (s_constraint_t *c, const char *value)
{
    uint64_t hash = 14695981039346656037ull;
    for (const char *p = value; *p; p++)
        hash = (hash ^ (unsigned char)*p) * 1099511628211ull;
    for (size_t i = hash & c->mask;; i = (i + 1) & c->mask) {
        if (c->slots[i] == SIZE_MAX) {
            c->slots[i] = c->domain_count;
            c->domains[c->domain_count] = value;
            return c->domain_count++;
        }
        if (strcmp (c->domains[c->slots[i]], value) == 0)
            return c->slots[i];
    }
}

//  Counts matching pods per domain for every constraint, over all nodes.
static s_state_t *
s_state_new (const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod)
{
    const Zube__PodSpec *spec = sched_pod_spec (pod);
    size_t count = spec ? spec->n_topology_spread_constraints : 0;
    s_state_t *state = calloc (1, sizeof *state);
    if (!state ||
        !(state->constraints = calloc (count + 1, sizeof *state->constraints))) {
        free (state);
        return NULL;
    }
    state->count = count;
    state->node_count = cycle->node_count;
    state->nodes = cycle->nodes;
    for (size_t i = 0; i < count; i++) {
        s_constraint_t *c = &state->constraints[i];
        c->spec = spec->topology_spread_constraints[i];
        c->key = c->spec->topology_key ? c->spec->topology_key : "";
        c->hard = !c->spec->when_unsatisfiable ||
                  strcmp (c->spec->when_unsatisfiable, "ScheduleAnyway") != 0;
        c->max_skew =
            c->spec->has_max_skew && c->spec->max_skew > 0 ? c->spec->max_skew : 1;
        c->domains = calloc (cycle->node_count + 1, sizeof *c->domains);
        c->counts = calloc (cycle->node_count + 1, sizeof *c->counts);
        c->node_domain = calloc (cycle->node_count + 1, sizeof *c->node_domain);
        c->node_matching = calloc (cycle->node_count + 1, sizeof *c->node_matching);
        for (c->mask = 15; c->mask < 2 * cycle->node_count; c->mask = c->mask * 2 + 1)
            ;
        c->slots = malloc ((c->mask + 1) * sizeof *c->slots);
        if (c->slots)
            memset (c->slots, 0xff, (c->mask + 1) * sizeof *c->slots);
        if (!c->domains || !c->counts || !c->node_domain || !c->node_matching ||
            !c->slots) {
            s_cycle_free (NULL, state);
            return NULL;
        }
        state->hard_count += c->hard;
        c->self_match = sched_selector_matches (c->spec->label_selector, pod->labels,
                                                pod->label_count);
    }
    for (size_t n = 0; n < cycle->node_count; n++) {
        const zube_sched_node_t *node = cycle->nodes[n];
        bool eligible[2] = {s_node_eligible (state, false, pod, node),
                            s_node_eligible (state, true, pod, node)};
        for (size_t i = 0; i < count; i++) {
            s_constraint_t *c = &state->constraints[i];
            c->node_domain[n] = SIZE_MAX;
            if (!eligible[c->hard])
                continue;
            const char *value = sched_label (node->labels, node->label_count, c->key);
            size_t d = s_domain_index (c, value);
            c->node_domain[n] = d;
            c->node_matching[n] = s_node_matching (c, pod, node);
            c->counts[d] += c->node_matching[n];
        }
    }
    for (size_t i = 0; i < count; i++) {
        s_constraint_t *c = &state->constraints[i];
        c->min = c->domain_count ? c->counts[0] : 0;
        for (size_t d = 1; d < c->domain_count; d++)
            if (c->counts[d] < c->min)
                c->min = c->counts[d];
        if (c->spec->has_min_domains && (size_t)c->spec->min_domains > c->domain_count)
            c->min = 0;
        c->weight = log ((double)c->domain_count + 2);
        free (c->slots);
        c->slots = NULL;
        for (size_t n = 0; n < cycle->node_count; n++)
            if (c->node_domain[n] == SIZE_MAX)
                c->node_domain[n] = c->domain_count;
    }
    return state;
}

static zube_sched_code_t
s_pre_filter (void *self, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
              void **cycle_data, char *reason, size_t reason_size)
{
    (void)self;
    const Zube__PodSpec *spec = sched_pod_spec (pod);
    if (!spec || spec->n_topology_spread_constraints == 0)
        return ZUBE_SCHED_SKIP;
    if (!sched_has_assigned (cycle)) {
        snprintf (reason, reason_size,
                  "PodTopologySpread: the host lists no pods per node");
        return ZUBE_SCHED_ERROR;
    }
    s_state_t *state = s_state_new (cycle, pod);
    if (!state) {
        snprintf (reason, reason_size, "PodTopologySpread: out of memory");
        return ZUBE_SCHED_ERROR;
    }
    *cycle_data = state;
    return state->hard_count ? ZUBE_SCHED_SUCCESS : ZUBE_SCHED_SKIP;
}

static zube_sched_code_t
s_filter (void *self, void *cycle_data, const zube_sched_pod_t *pod,
          const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    (void)self, (void)pod;
    const s_state_t *state = cycle_data;
    for (size_t i = 0; i < state->count; i++) {
        const s_constraint_t *c = &state->constraints[i];
        if (!c->hard)
            continue;
        const char *value = sched_label (node->labels, node->label_count, c->key);
        if (!value) {
            snprintf (reason, reason_size, S_NO_KEY_REASON);
            return ZUBE_SCHED_UNRESOLVABLE;
        }
        size_t d = s_domain_find (state, c, node, value);
        int64_t matching = d < c->domain_count ? c->counts[d] : 0;
        int64_t min = c->min;
        //  A copy without some pods (preemption): count its pods again
        size_t n = node->index;
        if (n < state->node_count && d < c->domain_count &&
            state->nodes[n]->generation != node->generation) {
            matching += s_node_matching (c, pod, node) - c->node_matching[n];
            if (matching < min)
                min = matching;
        }
        if (matching + c->self_match - min > c->max_skew) {
            snprintf (reason, reason_size, S_SKEW_REASON);
            return ZUBE_SCHED_UNSCHEDULABLE;
        }
    }
    return ZUBE_SCHED_SUCCESS;
}

static zube_sched_code_t
s_pre_score (void *self, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, size_t count, void **cycle_data)
{
    (void)self, (void)nodes, (void)count;
    const Zube__PodSpec *spec = sched_pod_spec (pod);
    if (!spec || spec->n_topology_spread_constraints == 0 || !sched_has_assigned (cycle))
        return ZUBE_SCHED_SKIP;
    if (!*cycle_data)
        *cycle_data = s_state_new (cycle, pod);
    s_state_t *state = *cycle_data;
    if (!state || state->hard_count == state->count)
        return ZUBE_SCHED_SKIP;
    return ZUBE_SCHED_SUCCESS;
}

//  The raw score: the matching pods in the node's domains, weighted; -1
//  for a node that lacks a key (it scores 0).
static int64_t
s_raw_score (const s_state_t *state, const zube_sched_node_t *node)
{
    double score = 0;
    for (size_t i = 0; i < state->count; i++) {
        const s_constraint_t *c = &state->constraints[i];
        if (c->hard)
            continue;
        const char *value = sched_label (node->labels, node->label_count, c->key);
        if (!value)
            return -1;
        size_t d = s_domain_find (state, c, node, value);
        double matching = d < c->domain_count ? (double)c->counts[d] : 0;
        score += matching * c->weight + (double)(c->max_skew - 1);
    }
    return llround (score);
}

static zube_sched_code_t
s_score (void *self, void *cycle_data, const zube_sched_pod_t *pod,
         const zube_sched_node_t *node, int64_t *score)
{
    (void)self, (void)pod;
    *score = s_raw_score (cycle_data, node);
    return ZUBE_SCHED_SUCCESS;
}

//  Kubernetes' NormalizeScore: the fewest matching pods score 100.
static zube_sched_code_t
s_normalize (void *self, void *cycle_data, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, int64_t *scores, size_t count)
{
    (void)self, (void)cycle_data, (void)pod, (void)nodes;
    int64_t min = INT64_MAX, max = 0;
    for (size_t i = 0; i < count; i++) {
        if (scores[i] < 0)
            continue;
        if (scores[i] < min)
            min = scores[i];
        if (scores[i] > max)
            max = scores[i];
    }
    for (size_t i = 0; i < count; i++) {
        if (scores[i] < 0)
            scores[i] = 0;
        else if (max == 0)
            scores[i] = ZUBE_SCHED_MAX_SCORE;
        else
            scores[i] = ZUBE_SCHED_MAX_SCORE * (max + min - scores[i]) / max;
    }
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "PodTopologySpread",
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

ZUBE_PLUGIN_DEFINE (.name = "podtopologyspread", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "filter and score: spec.topologySpreadConstraints",
                    .ops = &s_ops)
