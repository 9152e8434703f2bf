/*  sched_pods - what InterPodAffinity and PodTopologySpread share: label
    selectors (metav1.LabelSelector) over pod views, matchLabelKeys and
    mismatchLabelKeys, and the pods assigned to a node (header only, as
    sched_plugin.h). */
#ifndef SCHED_PODS_H_INCLUDED
#define SCHED_PODS_H_INCLUDED

#include "core.pb-c.h"
#include "sched_plugin.h"

//  metav1.LabelSelectorAsSelector: NULL matches nothing, {} everything.
static inline bool
sched_selector_matches (const Zube__LabelSelector *selector,
                        const zube_sched_label_t *labels, size_t count)
{
    if (!selector)
        return false;
    for (size_t i = 0; i < selector->n_match_labels; i++) {
        const char *key = selector->match_labels[i]->key;
        const char *want = selector->match_labels[i]->value;
        const char *have = sched_label (labels, count, key ? key : "");
        if (!have || strcmp (have, want ? want : "") != 0)
            return false;
    }
    for (size_t i = 0; i < selector->n_match_expressions; i++) {
        const Zube__LabelSelectorRequirement *r = selector->match_expressions[i];
        const char *op = r->operator_ ? r->operator_ : "";
        const char *have = sched_label (labels, count, r->key ? r->key : "");
        if (strcmp (op, "Exists") == 0) {
            if (!have)
                return false;
            continue;
        }
        if (strcmp (op, "DoesNotExist") == 0) {
            if (have)
                return false;
            continue;
        }
        bool in = false;
        for (size_t j = 0; have && j < r->n_values; j++)
            if (strcmp (r->values[j], have) == 0)
                in = true;
        if (strcmp (op, "In") == 0 ? !in : strcmp (op, "NotIn") == 0 ? in : true)
            return false;
    }
    return true;
}

//  matchLabelKeys (mismatch false): other has each key with the value
//  pod has; mismatchLabelKeys (mismatch true): it has none of them with
//  that value. Keys pod lacks are ignored, as Kubernetes does.
static inline bool
sched_label_keys_match (char *const *keys, size_t key_count, const zube_sched_pod_t *pod,
                        const zube_sched_pod_t *other, bool mismatch)
{
    for (size_t i = 0; i < key_count; i++) {
        const char *mine = sched_label (pod->labels, pod->label_count, keys[i]);
        if (!mine)
            continue;
        const char *theirs = sched_label (other->labels, other->label_count, keys[i]);
        bool same = theirs && strcmp (mine, theirs) == 0;
        if (same == mismatch)
            return false;
    }
    return true;
}

static inline const Zube__PodSpec *
sched_pod_spec (const zube_sched_pod_t *pod)
{
    const Zube__Pod *object = pod->pod;
    return object ? object->spec : NULL;
}

//  True when the host lists the pods on each node (node.assigned).
static inline bool
sched_has_assigned (const zube_sched_cycle_t *cycle)
{
    return cycle->node_count == 0 ||
           ZUBE_SCHED_HAS (cycle->nodes[0], assigned_with_affinity);
}

#endif
