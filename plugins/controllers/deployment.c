/*  deployment - Kubernetes' Deployment controller (pkg/controller/deployment)
    as a plugin.

    A Deployment owns ReplicaSets, one per pod template it has had: the
    new one carries the current template with label pod-template-hash (a
    hash of the template, Kubernetes' encoding) added to its selector and
    template; the older ones are scaled down as the new one comes up.
    Sync claims the ReplicaSets of the namespace (adoption and release
    through controller ownerReferences, as for pods), then:

    - a scaling event (spec.replicas differs from the desired-replicas
      annotation of its active ReplicaSets) or a paused Deployment: scale
      proportionally (Kubernetes' scale(): the active or latest one alone,
      or every active one by its share of max-replicas);
    - RollingUpdate: grow the new ReplicaSet while the total stays within
      replicas + maxSurge, shrink old ones (unhealthy pods first) while the
      available pods stay at least replicas - maxUnavailable (25% and 25%
      by default, surge rounded up, unavailable down, never both 0);
    - Recreate: scale every old ReplicaSet to 0, wait until their pods are
      gone, then create or scale the new one.

    Revisions: the new ReplicaSet's deployment.kubernetes.io/revision is
    one more than the highest old one, and the Deployment gets the same
    annotation; old ReplicaSets at 0 beyond revisionHistoryLimit (10) are
    deleted, oldest revision first. Status: replicas, updatedReplicas,
    readyReplicas, availableReplicas, unavailableReplicas,
    observedGeneration, collisionCount, and the Available and Progressing
    conditions (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated,
    NewReplicaSetAvailable, ProgressDeadlineExceeded). Rollback is a
    client's change of the template (zubectl rollout undo), as in
    apps/v1. */
#define _GNU_SOURCE
#include "apps.pb-c.h"
#include "ctrl_util.h"
#include <math.h>

#define S_REVISION "deployment.kubernetes.io/revision"
#define S_DESIRED "deployment.kubernetes.io/desired-replicas"
#define S_MAX "deployment.kubernetes.io/max-replicas"
#define S_HASH "pod-template-hash"
#define S_CHANGE_CAUSE "kubernetes.io/change-cause"

typedef struct {
    const zube_ctrl_host_t *host;
} s_self_t;

static const char *const s_watches[] = {"deployments.apps", "replicasets.apps", "pods",
                                        NULL};

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    s_self_t *self = calloc (1, sizeof *self);
    if (!self)
        snprintf (error, error_size, "out of memory");
    else
        self->host = host;
    return self;
}

static void
s_destroy (void *self)
{
    free (self);
}

static const Zube__Deployment *
s_resolve (s_self_t *self, const char *namespace_, const Zube__OwnerReference *ref)
{
    return (const Zube__Deployment *)zc_resolve (self->host, "deployments.apps",
                                                 "Deployment", namespace_, ref);
}

static void
s_enqueue (s_self_t *self, const Zube__Deployment *d)
{
    char key[600];
    zc_key_of (d->metadata, key, sizeof key);
    self->host->enqueue (self->host, key);
}

//  The Deployments whose selector matches an orphan ReplicaSet.
static void
s_enqueue_matching (s_self_t *self, const Zube__ReplicaSet *rs)
{
    size_t count = 0;
    const ProtobufCMessage **list = self->host->list (
        self->host, "deployments.apps", rs->metadata->namespace_, NULL, &count);
    for (size_t i = 0; i < count; i++) {
        const Zube__Deployment *d = (const Zube__Deployment *)list[i];
        if (d->spec && d->spec->selector &&
            self->host->selector_matches (self->host, &d->spec->selector->base,
                                          &rs->base) == 1)
            s_enqueue (self, d);
    }
    self->host->free_list (self->host, list);
}

static void
s_rs_changed (s_self_t *self, const Zube__ReplicaSet *rs)
{
    if (!rs->metadata)
        return;
    const Zube__OwnerReference *ref = zc_controller_of (rs->metadata);
    if (ref) {
        const Zube__Deployment *d = s_resolve (self, rs->metadata->namespace_, ref);
        if (d)
            s_enqueue (self, d);
        return;
    }
    if (!zc_deleting (rs->metadata))
        s_enqueue_matching (self, rs);
}

//  A pod gone: a Recreate Deployment may wait for exactly that.
static void
s_pod_gone (s_self_t *self, const Zube__Pod *pod)
{
    if (!pod->metadata)
        return;
    const Zube__ReplicaSet *rs = (const Zube__ReplicaSet *)zc_resolve (
        self->host, "replicasets.apps", "ReplicaSet", pod->metadata->namespace_,
        zc_controller_of (pod->metadata));
    if (!rs)
        return;
    const Zube__Deployment *d =
        s_resolve (self, rs->metadata->namespace_, zc_controller_of (rs->metadata));
    if (d && d->spec && d->spec->strategy &&
        zc_streq (d->spec->strategy->type, "Recreate"))
        s_enqueue (self, d);
}

static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    if (zc_streq (resource, "deployments.apps"))
        s_enqueue (self, (const Zube__Deployment *)object);
    else if (zc_streq (resource, "replicasets.apps"))
        s_rs_changed (self, (const Zube__ReplicaSet *)object);
}

static void
s_on_update (void *arg, const char *resource, const ProtobufCMessage *old_object,
             const ProtobufCMessage *new_object)
{
    s_self_t *self = arg;
    if (zc_streq (resource, "pods")) {
        const Zube__Pod *pod = (const Zube__Pod *)new_object;
        if (!zc_pod_active (pod))
            s_pod_gone (self, pod);
        return;
    }
    if (zc_streq (resource, "replicasets.apps")) {
        const Zube__ReplicaSet *old_rs = (const Zube__ReplicaSet *)old_object;
        const Zube__ReplicaSet *rs = (const Zube__ReplicaSet *)new_object;
        const Zube__OwnerReference *old_ref =
            old_rs->metadata ? zc_controller_of (old_rs->metadata) : NULL;
        const Zube__OwnerReference *ref =
            rs->metadata ? zc_controller_of (rs->metadata) : NULL;
        if (old_ref && (!ref || !zc_streq (old_ref->uid, ref->uid)))
            s_rs_changed (self, old_rs);
        s_rs_changed (self, rs);
        return;
    }
    s_on_add (arg, resource, new_object);
}

static void
s_on_delete (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    if (zc_streq (resource, "pods"))
        s_pod_gone (self, (const Zube__Pod *)object);
    else if (zc_streq (resource, "replicasets.apps")) {
        const Zube__ReplicaSet *rs = (const Zube__ReplicaSet *)object;
        const Zube__Deployment *d = rs->metadata
                                        ? s_resolve (self, rs->metadata->namespace_,
                                                     zc_controller_of (rs->metadata))
                                        : NULL;
        if (d)
            s_enqueue (self, d);
    } else
        s_enqueue (self, (const Zube__Deployment *)object);
}

//  ---------------------------------------------------------------------
//  Numbers (Kubernetes' deployment util)

static int32_t
s_replicas (const Zube__Deployment *d)
{
    return d->spec && d->spec->has_replicas ? d->spec->replicas : 1;
}

static int32_t
s_rs_replicas (const Zube__ReplicaSet *rs)
{
    return rs && rs->spec && rs->spec->has_replicas ? rs->spec->replicas : 0;
}

//  Available pods of a ReplicaSet for the rolling update's arithmetic:
//  never more than its spec.replicas. Right after it was scaled down its
//  status still counts the pods about to go; Kubernetes' controller
//  trusts that number and can take too many down when the status lags.
static int32_t
s_rs_available (const Zube__ReplicaSet *rs)
{
    int32_t available = rs && rs->status ? rs->status->available_replicas : 0;
    return available < s_rs_replicas (rs) ? available : s_rs_replicas (rs);
}

static bool
s_rolling (const Zube__Deployment *d)
{
    return !(d->spec->strategy && zc_streq (d->spec->strategy->type, "Recreate"));
}

//  An IntOrString scaled against total ("25%" of 10 -> 2.5), rounded up
//  or down.
static int32_t
s_int_or_percent (const Zube__IntOrString *value, int32_t total, bool round_up,
                  int32_t fallback)
{
    if (!value)
        return fallback;
    if (!zc_empty (value->str_val)) {
        double percent = strtod (value->str_val, NULL);
        double scaled = percent * total / 100.0;
        return (int32_t)(round_up ? ceil (scaled) : floor (scaled));
    }
    return value->has_int_val ? value->int_val : fallback;
}

//  Kubernetes' ResolveFenceposts: surge up, unavailable down, never both 0.
static void
s_fenceposts (const Zube__Deployment *d, int32_t *surge, int32_t *unavailable)
{
    *surge = *unavailable = 0;
    if (!s_rolling (d))
        return;
    const Zube__RollingUpdateDeployment *rolling =
        d->spec->strategy ? d->spec->strategy->rolling_update : NULL;
    int32_t replicas = s_replicas (d);
    *surge = s_int_or_percent (rolling ? rolling->max_surge : NULL, replicas, true,
                               (int32_t)ceil (replicas * 0.25));
    *unavailable = s_int_or_percent (rolling ? rolling->max_unavailable : NULL, replicas,
                                     false, (int32_t)floor (replicas * 0.25));
    if (*surge == 0 && *unavailable == 0)
        *unavailable = 1;
}

static int32_t
s_max_unavailable (const Zube__Deployment *d)
{
    int32_t surge, unavailable;
    s_fenceposts (d, &surge, &unavailable);
    if (!s_rolling (d) || s_replicas (d) == 0)
        return 0;
    return unavailable > s_replicas (d) ? s_replicas (d) : unavailable;
}

static int32_t
s_max_surge (const Zube__Deployment *d)
{
    int32_t surge, unavailable;
    s_fenceposts (d, &surge, &unavailable);
    return s_rolling (d) ? surge : 0;
}

static int64_t
s_revision (const Zube__ObjectMeta *meta)
{
    const char *text = zc_annotation (meta, S_REVISION);
    return text ? strtoll (text, NULL, 10) : 0;
}

//  ---------------------------------------------------------------------
//  Templates: hash and equality ignoring pod-template-hash

static int
s_entry_compare (const void *a, const void *b)
{
    const Zube__ObjectMeta__LabelsEntry *const *x = a, *const *y = b;
    return strcmp ((*x)->key ? (*x)->key : "", (*y)->key ? (*y)->key : "");
}

//  The template packed in a canonical form: pod-template-hash dropped,
//  labels and annotations sorted. malloc'd, NULL when out of memory.
static uint8_t *
s_canonical (const Zube__PodTemplateSpec *template_, size_t *size_p)
{
    Zube__PodTemplateSpec *copy = (Zube__PodTemplateSpec *)zc_copy (
        &template_->base, &zube__pod_template_spec__descriptor);
    if (!copy)
        return NULL;
    Zube__ObjectMeta *meta = copy->metadata;
    if (meta) {
        for (size_t i = 0; i < meta->n_labels; i++)
            if (zc_streq (meta->labels[i]->key, S_HASH)) {
                Zube__ObjectMeta__LabelsEntry *entry = meta->labels[i];
                meta->labels[i] = meta->labels[--meta->n_labels];
                free (entry->key), free (entry->value), free (entry);
                break;
            }
        if (meta->n_labels > 1)
            qsort (meta->labels, meta->n_labels, sizeof *meta->labels, s_entry_compare);
        if (meta->n_annotations > 1)
            qsort (meta->annotations, meta->n_annotations, sizeof *meta->annotations,
                   s_entry_compare);
        if (meta->n_labels == 0) {
            free (meta->labels);
            meta->labels = NULL;
        }
    }
    size_t size = protobuf_c_message_get_packed_size (&copy->base);
    uint8_t *data = malloc (size ? size : 1);
    if (data)
        protobuf_c_message_pack (&copy->base, data);
    zc_free (copy);
    *size_p = size;
    return data;
}

static bool
s_same_template (const Zube__PodTemplateSpec *a, const Zube__PodTemplateSpec *b)
{
    if (!a || !b)
        return false;
    size_t a_size = 0, b_size = 0;
    uint8_t *a_data = s_canonical (a, &a_size);
    uint8_t *b_data = s_canonical (b, &b_size);
    bool same =
        a_data && b_data && a_size == b_size && memcmp (a_data, b_data, a_size) == 0;
    free (a_data), free (b_data);
    return same;
}

//  Kubernetes' ComputeHash: FNV-1a 32 of the template (with the collision
//  count), its decimal digits encoded with rand.SafeEncodeString.
static void
s_template_hash (const Zube__PodTemplateSpec *template_, int32_t collision_count,
                 char *hash, size_t size)
{
    static const char alphanums[] = "bcdfghjklmnpqrstvwxz2456789";
    size_t length = 0;
    uint8_t *data = s_canonical (template_, &length);
    uint32_t sum = 2166136261u;
    for (size_t i = 0; data && i < length; i++) {
        sum ^= data[i];
        sum *= 16777619u;
    }
    free (data);
    if (collision_count > 0) {
        uint32_t count = (uint32_t)collision_count;
        for (int i = 0; i < 4; i++) {
            sum ^= (uint8_t)(count >> (8 * i));
            sum *= 16777619u;
        }
    }
    char digits[16];
    snprintf (digits, sizeof digits, "%u", sum);
    size_t i = 0;
    for (; digits[i] && i + 1 < size; i++)
        hash[i] = alphanums[(unsigned char)digits[i] % (sizeof alphanums - 1)];
    hash[i] = 0;
}

//  ---------------------------------------------------------------------
//  The ReplicaSets of a Deployment

typedef struct {
    Zube__ReplicaSet **items; //  own copies, current as far as we know
    size_t count;
} s_rs_list_t;

static void
s_rs_list_clear (s_rs_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        zc_free (list->items[i]);
    free (list->items);
    list->items = NULL;
    list->count = 0;
}

//  Kubernetes' getReplicaSetsForDeployment: own copies of the claimed ones.
static zube_status_t
s_claim (s_self_t *self, const Zube__Deployment *d, s_rs_list_t *list, char *error,
         size_t error_size)
{
    size_t count = 0;
    const ProtobufCMessage **all = self->host->list (
        self->host, "replicasets.apps", d->metadata->namespace_, NULL, &count);
    list->items = calloc (count + 1, sizeof *list->items);
    list->count = 0;
    if (!list->items) {
        self->host->free_list (self->host, all);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    bool deleting = zc_deleting (d->metadata);
    zube_status_t result = ZUBE_OK;
    for (size_t i = 0; i < count; i++) {
        const Zube__ReplicaSet *rs = (const Zube__ReplicaSet *)all[i];
        if (!rs->metadata)
            continue;
        const Zube__OwnerReference *ref = zc_controller_of (rs->metadata);
        int matches = self->host->selector_matches (self->host, &d->spec->selector->base,
                                                    &rs->base);
        if (ref && !zc_streq (ref->uid, d->metadata->uid))
            continue;
        if (ref && matches == 1) {
            Zube__ReplicaSet *copy =
                (Zube__ReplicaSet *)zc_copy (&rs->base, &zube__replica_set__descriptor);
            if (copy)
                list->items[list->count++] = copy;
            continue;
        }
        if (deleting || zc_deleting (rs->metadata) || (!ref && matches != 1))
            continue;
        Zube__ReplicaSet *written = NULL;
        zube_status_t status = zc_write_owner (
            self->host, "replicasets.apps", &rs->base, &zube__replica_set__descriptor,
            "apps/v1", "Deployment", d->metadata, !ref,
            ref ? NULL : (ProtobufCMessage **)&written, error, error_size);
        if (written)
            list->items[list->count++] = written;
        if (status != ZUBE_OK && status != ZUBE_NOT_FOUND)
            result = status;
    }
    self->host->free_list (self->host, all);
    return result;
}

//  Oldest first (creationTimestamp, then name), as Kubernetes'
//  ReplicaSetsByCreationTimestamp.
static int
s_by_creation (const void *a_arg, const void *b_arg)
{
    const Zube__ReplicaSet *a = *(Zube__ReplicaSet *const *)a_arg;
    const Zube__ReplicaSet *b = *(Zube__ReplicaSet *const *)b_arg;
    int64_t at = zc_parse_time (a->metadata->creation_timestamp);
    int64_t bt = zc_parse_time (b->metadata->creation_timestamp);
    if (at != bt)
        return at < bt ? -1 : 1;
    return strcmp (a->metadata->name, b->metadata->name);
}

//  Writes spec.replicas and the desired and max annotations of rs (own
//  copy, replaced by what was stored). Kubernetes' scaleReplicaSet.
static zube_status_t
s_scale_rs (s_self_t *self, const Zube__Deployment *d, Zube__ReplicaSet **rs_p,
            int32_t replicas, char *error, size_t error_size)
{
    Zube__ReplicaSet *rs = *rs_p;
    char desired[16], max[16];
    snprintf (desired, sizeof desired, "%d", s_replicas (d));
    snprintf (max, sizeof max, "%d", s_replicas (d) + s_max_surge (d));
    int32_t old = s_rs_replicas (rs);
    bool same = old == replicas &&
                zc_streq (zc_annotation (rs->metadata, S_DESIRED), desired) &&
                zc_streq (zc_annotation (rs->metadata, S_MAX), max);
    if (same)
        return ZUBE_OK;
    rs->spec->has_replicas = 1;
    rs->spec->replicas = replicas;
    if (zc_set_annotation (rs->metadata, S_DESIRED, desired) != 0 ||
        zc_set_annotation (rs->metadata, S_MAX, max) != 0) {
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    ProtobufCMessage *written = NULL;
    zube_status_t status = self->host->update (self->host, "replicasets.apps", &rs->base,
                                               NULL, &written, error, error_size);
    if (status != ZUBE_OK)
        return status;
    zc_free (rs);
    *rs_p = (Zube__ReplicaSet *)written;
    if (old != replicas)
        self->host->event (self->host, &d->base, ZUBE_CTRL_EVENT_NORMAL,
                           "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d",
                           replicas > old ? "up" : "down", (*rs_p)->metadata->name, old,
                           replicas);
    return ZUBE_OK;
}

//  ---------------------------------------------------------------------
//  The new ReplicaSet and revisions

typedef struct {
    Zube__ReplicaSet *new_rs; //  in list, or NULL
    s_rs_list_t *list;
    int32_t collision_count;
    bool created;
} s_state_t;

static bool
s_is_new (const s_state_t *state, const Zube__ReplicaSet *rs)
{
    return state->new_rs == rs;
}

//  Kubernetes' NewRSNewReplicas
static int32_t
s_new_rs_replicas (const Zube__Deployment *d, const s_rs_list_t *list,
                   int32_t new_replicas)
{
    if (!s_rolling (d))
        return s_replicas (d);
    int32_t current = 0;
    for (size_t i = 0; i < list->count; i++)
        current += s_rs_replicas (list->items[i]);
    int32_t max_total = s_replicas (d) + s_max_surge (d);
    if (current >= max_total)
        return new_replicas;
    int32_t up = max_total - current;
    if (up > s_replicas (d) - new_replicas)
        up = s_replicas (d) - new_replicas;
    return new_replicas + up;
}

static void
s_copy_annotations (Zube__ObjectMeta *to, const Zube__ObjectMeta *from)
{
    for (size_t i = 0; i < from->n_annotations; i++) {
        const char *key = from->annotations[i]->key;
        if (zc_streq (key, S_REVISION) || zc_streq (key, S_DESIRED) ||
            zc_streq (key, S_MAX) ||
            zc_streq (key, "kubectl.kubernetes.io/last-applied-configuration") ||
            zc_streq (key, "deployment.kubernetes.io/revision-history"))
            continue;
        zc_set_annotation (to, key, from->annotations[i]->value);
    }
}

//  Creates the new ReplicaSet for the current template.
static zube_status_t
s_create_new_rs (s_self_t *self, const Zube__Deployment *d, s_state_t *state,
                 int64_t revision, char *error, size_t error_size)
{
    char hash[32];
    s_template_hash (d->spec->template_, state->collision_count, hash, sizeof hash);
    Zube__ReplicaSet rs = ZUBE__REPLICA_SET__INIT;
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    Zube__ReplicaSetSpec spec = ZUBE__REPLICA_SET_SPEC__INIT;
    Zube__OwnerReference ref;
    Zube__OwnerReference *refs[] = {&ref};
    zc_controller_ref (&ref, "apps/v1", "Deployment", d->metadata);
    Zube__PodTemplateSpec *template_ = (Zube__PodTemplateSpec *)zc_copy (
        &d->spec->template_->base, &zube__pod_template_spec__descriptor);
    Zube__LabelSelector *selector = (Zube__LabelSelector *)zc_copy (
        &d->spec->selector->base, &zube__label_selector__descriptor);
    char name[300];
    snprintf (name, sizeof name, "%.240s-%s", d->metadata->name, hash);
    zube_status_t status = ZUBE_INTERNAL;
    if (!template_ || !selector) {
        snprintf (error, error_size, "out of memory");
        goto done;
    }
    if (!template_->metadata) {
        template_->metadata = malloc (sizeof *template_->metadata);
        if (!template_->metadata)
            goto done;
        zube__object_meta__init (template_->metadata);
    }
    //  The hash label: on the template, the selector and the ReplicaSet
    Zube__ObjectMeta__LabelsEntry label = ZUBE__OBJECT_META__LABELS_ENTRY__INIT;
    label.key = S_HASH;
    label.value = hash;
    Zube__ObjectMeta *tmeta = template_->metadata;
    Zube__ObjectMeta__LabelsEntry **labels = calloc (tmeta->n_labels + 1, sizeof *labels);
    Zube__LabelSelector__MatchLabelsEntry match =
        ZUBE__LABEL_SELECTOR__MATCH_LABELS_ENTRY__INIT;
    match.key = S_HASH;
    match.value = hash;
    Zube__LabelSelector__MatchLabelsEntry **matches =
        calloc (selector->n_match_labels + 1, sizeof *matches);
    if (!labels || !matches) {
        free (labels), free (matches);
        snprintf (error, error_size, "out of memory");
        goto done;
    }
    size_t label_count = 0;
    for (size_t i = 0; i < tmeta->n_labels; i++)
        if (!zc_streq (tmeta->labels[i]->key, S_HASH))
            labels[label_count++] = tmeta->labels[i];
    labels[label_count++] = &label;
    for (size_t i = 0; i < selector->n_match_labels; i++)
        matches[i] = selector->match_labels[i];
    matches[selector->n_match_labels] = &match;
    Zube__ObjectMeta__LabelsEntry **saved_labels = tmeta->labels;
    size_t saved_label_count = tmeta->n_labels;
    Zube__LabelSelector__MatchLabelsEntry **saved_matches = selector->match_labels;
    size_t saved_match_count = selector->n_match_labels;
    tmeta->labels = labels;
    tmeta->n_labels = label_count;
    selector->match_labels = matches;
    selector->n_match_labels = saved_match_count + 1;

    char revision_text[24], desired[16], max[16];
    snprintf (revision_text, sizeof revision_text, "%lld", (long long)revision);
    snprintf (desired, sizeof desired, "%d", s_replicas (d));
    snprintf (max, sizeof max, "%d", s_replicas (d) + s_max_surge (d));
    rs.api_version = "apps/v1";
    rs.kind = "ReplicaSet";
    meta.name = name;
    meta.namespace_ = d->metadata->namespace_;
    meta.labels = labels;
    meta.n_labels = label_count;
    meta.owner_references = refs;
    meta.n_owner_references = 1;
    rs.metadata = &meta;
    int32_t replicas = s_new_rs_replicas (d, state->list, 0);
    spec.has_replicas = 1;
    spec.replicas = replicas;
    spec.has_min_ready_seconds = 1;
    spec.min_ready_seconds = d->spec->min_ready_seconds;
    spec.selector = selector;
    spec.template_ = template_;
    rs.spec = &spec;
    //  Annotations: the Deployment's, then revision, desired, max
    Zube__ObjectMeta *annotated = malloc (sizeof *annotated);
    if (annotated) {
        zube__object_meta__init (annotated);
        s_copy_annotations (annotated, d->metadata);
        zc_set_annotation (annotated, S_REVISION, revision_text);
        zc_set_annotation (annotated, S_DESIRED, desired);
        zc_set_annotation (annotated, S_MAX, max);
        meta.annotations = annotated->annotations;
        meta.n_annotations = annotated->n_annotations;
    }
    ProtobufCMessage *created = NULL;
    status = self->host->create (self->host, "replicasets.apps", d->metadata->namespace_,
                                 &rs.base, &created, error, error_size);
    tmeta->labels = saved_labels;
    tmeta->n_labels = saved_label_count;
    selector->match_labels = saved_matches;
    selector->n_match_labels = saved_match_count;
    free (labels), free (matches);
    if (annotated)
        zc_free (annotated);
    if (status == ZUBE_OK) {
        state->new_rs = (Zube__ReplicaSet *)created;
        state->list->items[state->list->count++] = state->new_rs;
        state->created = true;
        self->host->event (self->host, &d->base, ZUBE_CTRL_EVENT_NORMAL,
                           "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d",
                           name, replicas);
    } else if (status == ZUBE_ALREADY_EXISTS) {
        //  A ReplicaSet of that name with another template: a hash
        //  collision; the next hash differs (status.collisionCount)
        const Zube__ReplicaSet *other = (const Zube__ReplicaSet *)self->host->get (
            self->host, "replicasets.apps", d->metadata->namespace_, name);
        if (!other || !s_same_template (other->spec ? other->spec->template_ : NULL,
                                        d->spec->template_))
            state->collision_count++;
        snprintf (error, error_size, "replica set %s exists already (collision %d)", name,
                  state->collision_count);
        status = ZUBE_CONFLICT;
    }
done:
    zc_free (template_);
    zc_free (selector);
    return status;
}

//  Kubernetes' getAllReplicaSetsAndSyncRevision: finds the new ReplicaSet
//  (the oldest one with the current template), brings its revision to
//  max(old) + 1, makes it when create says so, and stamps the revision on
//  the Deployment.
static zube_status_t
s_sync_revision (s_self_t *self, const Zube__Deployment *d, s_state_t *state, bool create,
                 char *error, size_t error_size)
{
    qsort (state->list->items, state->list->count, sizeof *state->list->items,
           s_by_creation);
    state->new_rs = NULL;
    for (size_t i = 0; i < state->list->count && !state->new_rs; i++) {
        Zube__ReplicaSet *rs = state->list->items[i];
        if (rs->spec && s_same_template (rs->spec->template_, d->spec->template_))
            state->new_rs = rs;
    }
    int64_t max_old = 0;
    for (size_t i = 0; i < state->list->count; i++)
        if (!s_is_new (state, state->list->items[i]) &&
            s_revision (state->list->items[i]->metadata) > max_old)
            max_old = s_revision (state->list->items[i]->metadata);
    int64_t revision = max_old + 1;
    zube_status_t status = ZUBE_OK;
    if (state->new_rs) {
        Zube__ReplicaSet *rs = state->new_rs;
        if (s_revision (rs->metadata) < revision) {
            char text[24];
            snprintf (text, sizeof text, "%lld", (long long)revision);
            s_copy_annotations (rs->metadata, d->metadata);
            zc_set_annotation (rs->metadata, S_REVISION, text);
            ProtobufCMessage *written = NULL;
            status = self->host->update (self->host, "replicasets.apps", &rs->base, NULL,
                                         &written, error, error_size);
            if (status != ZUBE_OK)
                return status;
            for (size_t i = 0; i < state->list->count; i++)
                if (state->list->items[i] == rs)
                    state->list->items[i] = (Zube__ReplicaSet *)written;
            zc_free (rs);
            state->new_rs = (Zube__ReplicaSet *)written;
        } else
            revision = s_revision (rs->metadata);
    } else if (create) {
        status = s_create_new_rs (self, d, state, revision, error, error_size);
        if (status != ZUBE_OK)
            return status;
    } else
        return ZUBE_OK;
    //  The Deployment's own revision annotation
    char text[24];
    snprintf (text, sizeof text, "%lld", (long long)revision);
    if (zc_streq (zc_annotation (d->metadata, S_REVISION), text))
        return ZUBE_OK;
    Zube__Deployment *copy =
        (Zube__Deployment *)zc_copy (&d->base, &zube__deployment__descriptor);
    if (!copy || zc_set_annotation (copy->metadata, S_REVISION, text) != 0) {
        zc_free (copy);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    status = self->host->update (self->host, "deployments.apps", &copy->base, NULL, NULL,
                                 error, error_size);
    zc_free (copy);
    //  The update comes back through the informer and syncs again
    return status;
}

//  ---------------------------------------------------------------------
//  Scaling (Kubernetes' scale (), for scaling events and paused ones)

static bool
s_scaling_event (const Zube__Deployment *d, const s_state_t *state)
{
    for (size_t i = 0; i < state->list->count; i++) {
        const Zube__ReplicaSet *rs = state->list->items[i];
        if (s_rs_replicas (rs) <= 0 && !s_is_new (state, rs))
            continue;
        const char *desired = zc_annotation (rs->metadata, S_DESIRED);
        if (desired && strtol (desired, NULL, 10) != s_replicas (d))
            return true;
    }
    return false;
}

static zube_status_t
s_scale (s_self_t *self, const Zube__Deployment *d, s_state_t *state, char *error,
         size_t error_size)
{
    s_rs_list_t *list = state->list;
    size_t active = 0;
    Zube__ReplicaSet **one = NULL;
    for (size_t i = 0; i < list->count; i++)
        if (s_rs_replicas (list->items[i]) > 0) {
            active++;
            one = &list->items[i];
        }
    //  One active (or none: the newest) takes it all
    if (active <= 1) {
        Zube__ReplicaSet **target = one;
        if (!target && list->count)
            target = state->new_rs ? NULL : &list->items[list->count - 1];
        for (size_t i = 0; !target && i < list->count; i++)
            if (list->items[i] == state->new_rs)
                target = &list->items[i];
        if (!target)
            return ZUBE_OK;
        bool is_new = *target == state->new_rs;
        zube_status_t status =
            s_scale_rs (self, d, target, s_replicas (d), error, error_size);
        if (is_new)
            state->new_rs = *target;
        return status;
    }
    //  The new one saturated: the old ones go to 0
    if (state->new_rs && s_rs_replicas (state->new_rs) == s_replicas (d) &&
        state->new_rs->status &&
        state->new_rs->status->available_replicas == s_replicas (d)) {
        for (size_t i = 0; i < list->count; i++)
            if (list->items[i] != state->new_rs && s_rs_replicas (list->items[i]) > 0) {
                zube_status_t status =
                    s_scale_rs (self, d, &list->items[i], 0, error, error_size);
                if (status != ZUBE_OK)
                    return status;
            }
        return ZUBE_OK;
    }
    if (!s_rolling (d))
        return ZUBE_OK;
    //  Proportional: each active one by its share of max-replicas
    int32_t current = 0;
    for (size_t i = 0; i < list->count; i++)
        current += s_rs_replicas (list->items[i]);
    int32_t allowed = s_replicas (d) > 0 ? s_replicas (d) + s_max_surge (d) : 0;
    int32_t to_add = allowed - current;
    if (to_add == 0)
        return ZUBE_OK;
    int32_t *sizes = calloc (list->count, sizeof *sizes);
    size_t *order = calloc (list->count, sizeof *order);
    if (!sizes || !order) {
        free (sizes), free (order);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    //  Larger first; newer first when growing, older first when shrinking
    for (size_t i = 0; i < list->count; i++)
        order[i] = i;
    for (size_t i = 1; i < list->count; i++)
        for (size_t j = i; j > 0; j--) {
            const Zube__ReplicaSet *a = list->items[order[j - 1]],
                                   *b = list->items[order[j]];
            int cmp = s_rs_replicas (a) != s_rs_replicas (b)
                          ? (s_rs_replicas (a) < s_rs_replicas (b) ? 1 : -1)
                          : s_by_creation (&a, &b) * (to_add > 0 ? -1 : 1);
            if (cmp <= 0)
                break;
            size_t t = order[j - 1];
            order[j - 1] = order[j];
            order[j] = t;
        }
    int32_t added = 0;
    int32_t deployment_replicas = s_replicas (d) + s_max_surge (d);
    for (size_t n = 0; n < list->count; n++) {
        const Zube__ReplicaSet *rs = list->items[order[n]];
        int32_t replicas = s_rs_replicas (rs);
        int32_t proportion = 0;
        if (replicas > 0 && to_add != added) {
            const char *max_text = zc_annotation (rs->metadata, S_MAX);
            int32_t annotated = max_text ? (int32_t)strtol (max_text, NULL, 10)
                                         : (d->status ? d->status->replicas : 0);
            int32_t fraction = s_replicas (d) == 0 || annotated <= 0
                                   ? -replicas
                                   : (int32_t)lround ((double)replicas *
                                                      deployment_replicas / annotated) -
                                         replicas;
            int32_t left = to_add - added;
            proportion = to_add > 0 ? (fraction < left ? fraction : left)
                                    : (fraction > left ? fraction : left);
        }
        sizes[order[n]] = replicas + proportion;
        added += proportion;
    }
    if (list->count && to_add != added) {
        sizes[order[0]] += to_add - added;
        if (sizes[order[0]] < 0)
            sizes[order[0]] = 0;
    }
    zube_status_t status = ZUBE_OK;
    for (size_t i = 0; i < list->count && status == ZUBE_OK; i++) {
        bool is_new = list->items[i] == state->new_rs;
        status = s_scale_rs (self, d, &list->items[i], sizes[i], error, error_size);
        if (is_new)
            state->new_rs = list->items[i];
    }
    free (sizes), free (order);
    return status;
}

//  ---------------------------------------------------------------------
//  Status

static const Zube__DeploymentCondition *
s_condition (const Zube__DeploymentStatus *status, const char *type)
{
    for (size_t i = 0; status && i < status->n_conditions; i++)
        if (zc_streq (status->conditions[i]->type, type))
            return status->conditions[i];
    return NULL;
}

typedef struct {
    const char *type;
    const char *status;
    const char *reason;
    char message[512];
} s_cond_t;

//  The status as it should be now; *progress the Progressing condition to
//  set (type NULL: keep what is there).
static void
s_calculate (const Zube__Deployment *d, const s_state_t *state,
             Zube__DeploymentStatus *out, s_cond_t *available)
{
    const s_rs_list_t *list = state->list;
    int32_t replicas = 0, ready = 0, avail = 0, total = 0;
    for (size_t i = 0; i < list->count; i++) {
        const Zube__ReplicaSet *rs = list->items[i];
        total += s_rs_replicas (rs);
        if (!rs->status)
            continue;
        replicas += rs->status->replicas;
        ready += rs->status->ready_replicas;
        avail += rs->status->available_replicas;
    }
    out->has_observed_generation = out->has_replicas = out->has_updated_replicas = 1;
    out->has_ready_replicas = out->has_available_replicas =
        out->has_unavailable_replicas = 1;
    out->observed_generation = d->metadata->generation;
    out->replicas = replicas;
    out->updated_replicas =
        state->new_rs && state->new_rs->status ? state->new_rs->status->replicas : 0;
    out->ready_replicas = ready;
    out->available_replicas = avail;
    out->unavailable_replicas = total - avail > 0 ? total - avail : 0;
    if (state->collision_count) {
        out->has_collision_count = 1;
        out->collision_count = state->collision_count;
    }
    bool enough = avail >= s_replicas (d) - s_max_unavailable (d);
    available->type = "Available";
    available->status = enough ? "True" : "False";
    available->reason =
        enough ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable";
    snprintf (available->message, sizeof available->message, "%s",
              enough ? "Deployment has minimum availability."
                     : "Deployment does not have minimum availability.");
}

static bool
s_complete (const Zube__Deployment *d, const Zube__DeploymentStatus *status)
{
    return status->updated_replicas == s_replicas (d) &&
           status->replicas == s_replicas (d) &&
           status->available_replicas == s_replicas (d) &&
           status->observed_generation >= d->metadata->generation;
}

static bool
s_progressing (const Zube__Deployment *d, const Zube__DeploymentStatus *now)
{
    const Zube__DeploymentStatus *was = d->status;
    if (!was)
        return true;
    int32_t old_was = was->replicas - was->updated_replicas;
    int32_t old_now = now->replicas - now->updated_replicas;
    return now->updated_replicas > was->updated_replicas || old_now < old_was ||
           now->ready_replicas > was->ready_replicas ||
           now->available_replicas > was->available_replicas;
}

//  Sets or replaces one condition in conds (max 4); keeps
//  lastTransitionTime when the status did not change.
static void
s_set_condition (Zube__DeploymentCondition *storage, Zube__DeploymentCondition **conds,
                 size_t *count, const Zube__DeploymentStatus *old, const s_cond_t *cond,
                 char *stamp)
{
    const Zube__DeploymentCondition *was = s_condition (old, cond->type);
    Zube__DeploymentCondition *c = &storage[*count];
    zube__deployment_condition__init (c);
    c->type = (char *)cond->type;
    c->status = (char *)cond->status;
    c->reason = (char *)cond->reason;
    c->message = (char *)cond->message;
    c->last_update_time = stamp;
    c->last_transition_time = was && zc_streq (was->status, cond->status) &&
                                      !zc_empty (was->last_transition_time)
                                  ? was->last_transition_time
                                  : stamp;
    //  Same reason and message: keep lastUpdateTime (no write for nothing)
    if (was && zc_streq (was->reason, cond->reason) &&
        zc_streq (was->message, cond->message) && zc_streq (was->status, cond->status) &&
        !zc_empty (was->last_update_time))
        c->last_update_time = was->last_update_time;
    conds[(*count)++] = c;
}

static bool
s_status_equal (const Zube__DeploymentStatus *a, const Zube__DeploymentStatus *b)
{
    if (!a || !b)
        return false;
    if (a->observed_generation != b->observed_generation || a->replicas != b->replicas ||
        a->updated_replicas != b->updated_replicas ||
        a->ready_replicas != b->ready_replicas ||
        a->available_replicas != b->available_replicas ||
        a->unavailable_replicas != b->unavailable_replicas ||
        a->collision_count != b->collision_count || a->n_conditions != b->n_conditions)
        return false;
    for (size_t i = 0; i < a->n_conditions; i++) {
        const Zube__DeploymentCondition *x = a->conditions[i];
        const Zube__DeploymentCondition *y = s_condition (b, x->type);
        if (!y || !zc_streq (x->status, y->status) || !zc_streq (x->reason, y->reason) ||
            !zc_streq (x->message, y->message) ||
            !zc_streq (x->last_update_time, y->last_update_time))
            return false;
    }
    return true;
}

//  Kubernetes' syncRolloutStatus (with_progress) or syncDeploymentStatus.
static zube_status_t
s_sync_status (s_self_t *self, const Zube__Deployment *d, const s_state_t *state,
               bool with_progress, char *error, size_t error_size)
{
    Zube__DeploymentStatus status = ZUBE__DEPLOYMENT_STATUS__INIT;
    s_cond_t available;
    s_calculate (d, state, &status, &available);
    char stamp[40];
    zc_now_rfc3339 (stamp, sizeof stamp);
    Zube__DeploymentCondition storage[4];
    Zube__DeploymentCondition *conds[4];
    size_t count = 0;
    s_set_condition (storage, conds, &count, d->status, &available, stamp);
    const Zube__DeploymentCondition *was = s_condition (d->status, "Progressing");
    s_cond_t progress = {0};
    const char *name = state->new_rs ? state->new_rs->metadata->name : "";
    int32_t deadline =
        d->spec->has_progress_deadline_seconds ? d->spec->progress_deadline_seconds : 600;
    bool paused = d->spec->has_paused && d->spec->paused;
    if (with_progress && !paused) {
        progress.type = "Progressing";
        if (s_complete (d, &status)) {
            progress.status = "True";
            progress.reason = "NewReplicaSetAvailable";
            snprintf (progress.message, sizeof progress.message,
                      "ReplicaSet \"%s\" has successfully progressed.", name);
        } else if (state->created) {
            progress.status = "True";
            progress.reason = "NewReplicaSetCreated";
            snprintf (progress.message, sizeof progress.message,
                      "Created new replica set \"%s\"", name);
        } else if (s_progressing (d, &status) || !was) {
            progress.status = "True";
            progress.reason = "ReplicaSetUpdated";
            snprintf (progress.message, sizeof progress.message,
                      "ReplicaSet \"%s\" is progressing.", name);
        } else if (was && !zc_streq (was->reason, "NewReplicaSetAvailable") &&
                   zc_parse_time (was->last_update_time) + deadline <=
                       (int64_t)time (NULL)) {
            progress.status = "False";
            progress.reason = "ProgressDeadlineExceeded";
            snprintf (progress.message, sizeof progress.message,
                      "ReplicaSet \"%s\" has timed out progressing.", name);
        }
    } else if (paused) {
        progress.type = "Progressing";
        progress.status = "Unknown";
        progress.reason = "DeploymentPaused";
        snprintf (progress.message, sizeof progress.message, "Deployment is paused");
    }
    if (progress.type && progress.status) {
        //  A progressing deployment moves lastUpdateTime on
        s_set_condition (storage, conds, &count, d->status, &progress, stamp);
        if (zc_streq (progress.reason, "ReplicaSetUpdated") && s_progressing (d, &status))
            storage[count - 1].last_update_time = stamp;
    } else if (was) {
        Zube__DeploymentCondition *c = &storage[count];
        *c = *was;
        c->base = storage[0].base;
        conds[count++] = c;
    }
    status.conditions = conds;
    status.n_conditions = count;
    //  Requeue to notice the deadline
    if (with_progress && !paused && !s_complete (d, &status)) {
        char key[600];
        zc_key_of (d->metadata, key, sizeof key);
        self->host->enqueue_after (self->host, key, (int64_t)deadline * 1000 + 1000);
    }
    if (s_status_equal (&status, d->status))
        return ZUBE_OK;
    Zube__Deployment *copy =
        (Zube__Deployment *)zc_copy (&d->base, &zube__deployment__descriptor);
    if (!copy) {
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    //  Only this controller writes the status: no resourceVersion
    //  precondition (the revision annotation written in this sync made
    //  the cached one stale)
    free (copy->metadata->resource_version);
    copy->metadata->resource_version = NULL;
    Zube__DeploymentStatus *saved = copy->status;
    copy->status = &status;
    zube_status_t result = self->host->update (
        self->host, "deployments.apps", &copy->base, "status", NULL, error, error_size);
    copy->status = saved;
    zc_free (copy);
    return result;
}

//  ---------------------------------------------------------------------
//  Rollouts

static int
s_by_revision (const void *a_arg, const void *b_arg)
{
    const Zube__ReplicaSet *a = *(Zube__ReplicaSet *const *)a_arg;
    const Zube__ReplicaSet *b = *(Zube__ReplicaSet *const *)b_arg;
    int64_t ar = s_revision (a->metadata), br = s_revision (b->metadata);
    if (ar != br)
        return ar < br ? -1 : 1;
    return s_by_creation (a_arg, b_arg);
}

//  Kubernetes' cleanupDeployment: old ReplicaSets at 0 beyond
//  revisionHistoryLimit, oldest revision first.
static zube_status_t
s_cleanup (s_self_t *self, const Zube__Deployment *d, const s_state_t *state)
{
    if (!d->spec->has_revision_history_limit)
        return ZUBE_OK;
    size_t cleanable = 0;
    Zube__ReplicaSet **old = calloc (state->list->count + 1, sizeof *old);
    if (!old)
        return ZUBE_INTERNAL;
    for (size_t i = 0; i < state->list->count; i++)
        if (!s_is_new (state, state->list->items[i]) &&
            !zc_deleting (state->list->items[i]->metadata))
            old[cleanable++] = state->list->items[i];
    int64_t diff = (int64_t)cleanable - d->spec->revision_history_limit;
    qsort (old, cleanable, sizeof *old, s_by_revision);
    for (int64_t i = 0; i < diff; i++) {
        const Zube__ReplicaSet *rs = old[i];
        if ((rs->status && rs->status->replicas != 0) || s_rs_replicas (rs) != 0 ||
            (rs->status && rs->metadata->generation > rs->status->observed_generation))
            continue;
        char why[512];
        zube_ctrl_delete_options_t options = {.struct_size = sizeof options,
                                              .uid = rs->metadata->uid};
        self->host->delete_ (self->host, "replicasets.apps", rs->metadata->namespace_,
                             rs->metadata->name, &options, why, sizeof why);
    }
    free (old);
    return ZUBE_OK;
}

//  A rollout step done: old ReplicaSets cleaned up once the Deployment
//  is complete, and the status synced (the end of Kubernetes'
//  rolloutRolling and rolloutRecreate).
static zube_status_t
s_finish_rollout (s_self_t *self, const Zube__Deployment *d, s_state_t *state,
                  char *error, size_t error_size)
{
    Zube__DeploymentStatus now = ZUBE__DEPLOYMENT_STATUS__INIT;
    s_cond_t ignored;
    s_calculate (d, state, &now, &ignored);
    if (s_complete (d, &now))
        s_cleanup (self, d, state);
    return s_sync_status (self, d, state, true, error, error_size);
}

//  Kubernetes' rolloutRolling
static zube_status_t
s_rollout_rolling (s_self_t *self, const Zube__Deployment *d, s_state_t *state,
                   char *error, size_t error_size)
{
    zube_status_t status =
        state->new_rs ? ZUBE_OK
                      : s_sync_revision (self, d, state, true, error, error_size);
    if (status != ZUBE_OK)
        return status;
    s_rs_list_t *list = state->list;
    int32_t desired = s_replicas (d);
    //  reconcileNewReplicaSet
    Zube__ReplicaSet **new_slot = NULL;
    for (size_t i = 0; i < list->count; i++)
        if (list->items[i] == state->new_rs)
            new_slot = &list->items[i];
    if (new_slot && s_rs_replicas (*new_slot) != desired) {
        int32_t target = s_rs_replicas (*new_slot) > desired
                             ? desired
                             : s_new_rs_replicas (d, list, s_rs_replicas (*new_slot));
        if (target != s_rs_replicas (*new_slot)) {
            status = s_scale_rs (self, d, new_slot, target, error, error_size);
            state->new_rs = *new_slot;
            if (status != ZUBE_OK)
                return status;
            return s_sync_status (self, d, state, true, error, error_size);
        }
    }
    //  reconcileOldReplicaSets
    int32_t old_pods = 0, all_pods = 0;
    for (size_t i = 0; i < list->count; i++) {
        all_pods += s_rs_replicas (list->items[i]);
        if (list->items[i] != state->new_rs)
            old_pods += s_rs_replicas (list->items[i]);
    }
    bool scaled = false;
    if (old_pods > 0) {
        int32_t min_available = desired - s_max_unavailable (d);
        int32_t new_unavailable =
            state->new_rs ? s_rs_replicas (state->new_rs) - s_rs_available (state->new_rs)
                          : 0;
        int32_t max_scaled_down = all_pods - min_available - new_unavailable;
        if (max_scaled_down > 0) {
            //  cleanupUnhealthyReplicas: old ones' unavailable pods first
            int32_t cleaned = 0;
            for (size_t i = 0; i < list->count && cleaned < max_scaled_down; i++) {
                Zube__ReplicaSet **rs = &list->items[i];
                if (*rs == state->new_rs || s_rs_replicas (*rs) == 0)
                    continue;
                int32_t unhealthy = s_rs_replicas (*rs) - s_rs_available (*rs);
                if (unhealthy <= 0)
                    continue;
                int32_t down = unhealthy < max_scaled_down - cleaned
                                   ? unhealthy
                                   : max_scaled_down - cleaned;
                status = s_scale_rs (self, d, rs, s_rs_replicas (*rs) - down, error,
                                     error_size);
                if (status != ZUBE_OK)
                    return status;
                cleaned += down;
                scaled = true;
            }
            //  scaleDownOldReplicaSetsForRollingUpdate
            int32_t available = 0;
            for (size_t i = 0; i < list->count; i++)
                available += s_rs_available (list->items[i]);
            int32_t total_down = available - min_available;
            int32_t done = 0;
            for (size_t i = 0; i < list->count && done < total_down; i++) {
                Zube__ReplicaSet **rs = &list->items[i];
                if (*rs == state->new_rs || s_rs_replicas (*rs) == 0)
                    continue;
                int32_t down = s_rs_replicas (*rs) < total_down - done
                                   ? s_rs_replicas (*rs)
                                   : total_down - done;
                status = s_scale_rs (self, d, rs, s_rs_replicas (*rs) - down, error,
                                     error_size);
                if (status != ZUBE_OK)
                    return status;
                done += down;
                scaled = true;
            }
        }
    }
    if (scaled)
        return s_sync_status (self, d, state, true, error, error_size);
    return s_finish_rollout (self, d, state, error, error_size);
}

//  Any pod of an old ReplicaSet not yet gone (terminating ones count).
static bool
s_old_pods_running (s_self_t *self, const s_state_t *state)
{
    for (size_t i = 0; i < state->list->count; i++) {
        const Zube__ReplicaSet *rs = state->list->items[i];
        if (s_is_new (state, rs))
            continue;
        if (rs->status && rs->status->replicas > 0)
            return true;
        size_t count = 0;
        const ProtobufCMessage **pods =
            self->host->list_index (self->host, "pods", ZUBE_CTRL_INDEX_CONTROLLER_UID,
                                    rs->metadata->uid, &count);
        bool running = false;
        for (size_t p = 0; p < count && !running; p++) {
            running = !zc_pod_terminated ((const Zube__Pod *)pods[p]);
        }
        self->host->free_list (self->host, pods);
        if (running)
            return true;
    }
    return false;
}

//  Kubernetes' rolloutRecreate
static zube_status_t
s_rollout_recreate (s_self_t *self, const Zube__Deployment *d, s_state_t *state,
                    char *error, size_t error_size)
{
    zube_status_t status = ZUBE_OK;
    bool scaled = false;
    for (size_t i = 0; i < state->list->count; i++) {
        Zube__ReplicaSet **rs = &state->list->items[i];
        if (*rs == state->new_rs || s_rs_replicas (*rs) == 0)
            continue;
        status = s_scale_rs (self, d, rs, 0, error, error_size);
        if (status != ZUBE_OK)
            return status;
        scaled = true;
    }
    if (scaled || s_old_pods_running (self, state))
        return s_sync_status (self, d, state, true, error, error_size);
    if (!state->new_rs) {
        status = s_sync_revision (self, d, state, true, error, error_size);
        if (status != ZUBE_OK)
            return status;
    }
    for (size_t i = 0; i < state->list->count; i++)
        if (state->list->items[i] == state->new_rs) {
            status = s_scale_rs (self, d, &state->list->items[i], s_replicas (d), error,
                                 error_size);
            state->new_rs = state->list->items[i];
            if (status != ZUBE_OK)
                return status;
        }
    return s_finish_rollout (self, d, state, error, error_size);
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    char namespace_[256], name[256];
    if (zube_ctrl_split_key (key, namespace_, name, sizeof name) != 0)
        return ZUBE_OK;
    const Zube__Deployment *d = (const Zube__Deployment *)self->host->get (
        self->host, "deployments.apps", namespace_, name);
    if (!d || !d->metadata || !d->spec)
        return ZUBE_OK;
    if (!d->spec->selector || (d->spec->selector->n_match_labels == 0 &&
                               d->spec->selector->n_match_expressions == 0)) {
        self->host->event (
            self->host, &d->base, ZUBE_CTRL_EVENT_WARNING, "SelectorRequired",
            "This deployment has an empty selector: it would select all pods");
        return ZUBE_OK;
    }
    const char *problem =
        zc_selector_problem (self->host, &d->spec->selector->base,
                             d->spec->template_ ? &d->spec->template_->base : NULL);
    if (problem) {
        self->host->event (self->host, &d->base, ZUBE_CTRL_EVENT_WARNING,
                           "InvalidSelector", "%s", problem);
        return ZUBE_OK;
    }
    s_rs_list_t list = {0};
    zube_status_t status = s_claim (self, d, &list, error, error_size);
    s_state_t state = {.list = &list,
                       .collision_count = d->status && d->status->has_collision_count
                                              ? d->status->collision_count
                                              : 0};
    if (status != ZUBE_OK) {
        s_rs_list_clear (&list);
        return status;
    }
    //  The new ReplicaSet, if there is one, with its revision in order
    status = s_sync_revision (self, d, &state, false, error, error_size);
    bool paused = d->spec->has_paused && d->spec->paused;
    if (status != ZUBE_OK)
        ;
    else if (zc_deleting (d->metadata))
        status = s_sync_status (self, d, &state, false, error, error_size);
    else if (paused || s_scaling_event (d, &state)) {
        status = s_scale (self, d, &state, error, error_size);
        if (status == ZUBE_OK && paused)
            s_cleanup (self, d, &state);
        if (status == ZUBE_OK)
            status = s_sync_status (self, d, &state, false, error, error_size);
    } else if (s_rolling (d))
        status = s_rollout_rolling (self, d, &state, error, error_size);
    else
        status = s_rollout_recreate (self, d, &state, error, error_size);
    //  A collision found: remembered in status for the next hash
    if (status == ZUBE_CONFLICT && d->status &&
        state.collision_count != d->status->collision_count)
        s_sync_status (self, d, &state, false, error, error_size);
    s_rs_list_clear (&list);
    return status;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "deployment",
    .watches = s_watches,
    //  --concurrent-deployment-syncs. Safe to interleave: no state
    //  beyond the sync's locals
    .workers = 5,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .on_delete = s_on_delete,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "deployment", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_CONTROLLER, .ops = &s_ops,
                    .description =
                        "Deployments: rolling updates and rollbacks of ReplicaSets")
