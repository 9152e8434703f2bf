/*  replicaset - Kubernetes' ReplicaSet controller
    (pkg/controller/replicaset/replica_set.go) as a plugin.

    A ReplicaSet's key is synced when it changes or when one of its pods
    does. Sync claims the active pods of its namespace: pods it controls
    whose labels no longer match are released (its ownerReference
    removed), orphans that match are adopted (ownerReference with
    controller: true); pods another controller owns are left alone. Then,
    unless creations or deletions it asked for are still unseen in the
    cache (Kubernetes' expectations), it makes or deletes the difference
    to spec.replicas, at most burstReplicas (500) per sync: creations in
    slow-start batches of 1, 2, 4, ... that stop at the first failure;
    deletions of the pods Kubernetes ranks first (unassigned, pending,
    not ready, lower pod-deletion-cost, doubled up on a node, ready for
    less time, more restarts, newer). Finally status: replicas,
    fullyLabeledReplicas, readyReplicas, availableReplicas (ready for
    minReadySeconds), observedGeneration, and the ReplicaFailure
    condition while creating or deleting fails.

    Settings (--controller-arg replicaset.KEY=VALUE): burstReplicas. */
#define _GNU_SOURCE
#include "apps.pb-c.h"
#include "ctrl_util.h"

#define S_DEFAULT_BURST 500
#define S_DELETION_COST "controller.kubernetes.io/pod-deletion-cost"

typedef struct {
    const zube_ctrl_host_t *host;
    zc_expectations_t expectations;
    int64_t burst;
} s_self_t;

static const char *const s_watches[] = {"replicasets.apps", "pods", NULL};

static bool
s_is_rs (const char *resource)
{
    return zc_streq (resource, "replicasets.apps");
}

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->host = host;
    self->burst = S_DEFAULT_BURST;
    if (!zc_setting_int (host, "burstReplicas", 1, INT64_MAX, "a positive number",
                         &self->burst, error, error_size)) {
        free (self);
        return NULL;
    }
    return self;
}

static void
s_destroy (void *arg)
{
    s_self_t *self = arg;
    zc_expectations_clear (&self->expectations);
    free (self);
}

//  The ReplicaSet a controller reference names, if it still is that one.
static const Zube__ReplicaSet *
s_resolve (s_self_t *self, const char *namespace_, const Zube__OwnerReference *ref)
{
    return (const Zube__ReplicaSet *)zc_resolve (self->host, "replicasets.apps",
                                                 "ReplicaSet", namespace_, ref);
}

//  Enqueues every ReplicaSet of the pod's namespace whose selector matches
//  it (an orphan looking for an owner).
static void
s_enqueue_matching (s_self_t *self, const Zube__Pod *pod)
{
    size_t count = 0;
    const ProtobufCMessage **list = self->host->list (
        self->host, "replicasets.apps", pod->metadata->namespace_, NULL, &count);
    for (size_t i = 0; i < count; i++) {
        const Zube__ReplicaSet *rs = (const Zube__ReplicaSet *)list[i];
        if (!rs->spec || !rs->spec->selector ||
            self->host->selector_matches (self->host, &rs->spec->selector->base,
                                          &pod->base) != 1)
            continue;
        char key[600];
        zc_key_of (rs->metadata, key, sizeof key);
        self->host->enqueue (self->host, key);
    }
    self->host->free_list (self->host, list);
}

static void
s_pod_deleted (s_self_t *self, const Zube__Pod *pod)
{
    const Zube__ReplicaSet *rs =
        s_resolve (self, pod->metadata->namespace_, zc_controller_of (pod->metadata));
    if (!rs)
        return;
    char key[600], pod_key[600];
    zc_key_of (rs->metadata, key, sizeof key);
    zc_key_of (pod->metadata, pod_key, sizeof pod_key);
    zc_expectations_deletion_observed (&self->expectations, key, pod_key);
    self->host->enqueue (self->host, key);
}

static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    if (s_is_rs (resource)) {
        char key[600];
        zc_key_of (((const Zube__ReplicaSet *)object)->metadata, key, sizeof key);
        self->host->enqueue (self->host, key);
        return;
    }
    const Zube__Pod *pod = (const Zube__Pod *)object;
    if (!pod->metadata)
        return;
    if (zc_deleting (pod->metadata)) {
        //  A restarted controller sees a pod already being deleted
        s_pod_deleted (self, pod);
        return;
    }
    const Zube__OwnerReference *ref = zc_controller_of (pod->metadata);
    if (ref) {
        const Zube__ReplicaSet *rs = s_resolve (self, pod->metadata->namespace_, ref);
        if (!rs)
            return;
        char key[600];
        zc_key_of (rs->metadata, key, sizeof key);
        zc_expectations_creation_observed (&self->expectations, key);
        self->host->enqueue (self->host, key);
        return;
    }
    s_enqueue_matching (self, pod);
}

static bool
s_labels_equal (const Zube__ObjectMeta *a, const Zube__ObjectMeta *b)
{
    if (a->n_labels != b->n_labels)
        return false;
    for (size_t i = 0; i < a->n_labels; i++)
        if (!zc_streq (zc_label (b, a->labels[i]->key), a->labels[i]->value))
            return false;
    return true;
}

static void
s_on_update (void *arg, const char *resource, const ProtobufCMessage *old_object,
             const ProtobufCMessage *new_object)
{
    s_self_t *self = arg;
    if (s_is_rs (resource)) {
        s_on_add (arg, resource, new_object);
        return;
    }
    const Zube__Pod *old_pod = (const Zube__Pod *)old_object;
    const Zube__Pod *pod = (const Zube__Pod *)new_object;
    if (!pod->metadata || !old_pod->metadata)
        return;
    if (zc_streq (pod->metadata->resource_version, old_pod->metadata->resource_version))
        return;
    bool labels_changed = !s_labels_equal (old_pod->metadata, pod->metadata);
    if (zc_deleting (pod->metadata)) {
        s_pod_deleted (self, pod);
        if (labels_changed)
            s_pod_deleted (self, old_pod);
        return;
    }
    const Zube__OwnerReference *ref = zc_controller_of (pod->metadata);
    const Zube__OwnerReference *old_ref = zc_controller_of (old_pod->metadata);
    bool ref_changed =
        !(ref && old_ref && zc_streq (ref->uid, old_ref->uid)) && (ref || old_ref);
    char key[600];
    if (ref_changed && old_ref) {
        const Zube__ReplicaSet *old_rs =
            s_resolve (self, old_pod->metadata->namespace_, old_ref);
        if (old_rs) {
            zc_key_of (old_rs->metadata, key, sizeof key);
            self->host->enqueue (self->host, key);
        }
    }
    if (ref) {
        const Zube__ReplicaSet *rs = s_resolve (self, pod->metadata->namespace_, ref);
        if (!rs)
            return;
        zc_key_of (rs->metadata, key, sizeof key);
        self->host->enqueue (self->host, key);
        //  Becomes available minReadySeconds after it became ready
        int32_t min_ready = rs->spec ? rs->spec->min_ready_seconds : 0;
        if (min_ready > 0 && !zc_pod_ready (old_pod) && zc_pod_ready (pod))
            self->host->enqueue_after (self->host, key, (int64_t)min_ready * 1000);
        return;
    }
    if (labels_changed || ref_changed)
        s_enqueue_matching (self, pod);
}

static void
s_on_delete (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    if (s_is_rs (resource)) {
        char key[600];
        zc_key_of (((const Zube__ReplicaSet *)object)->metadata, key, sizeof key);
        zc_expectations_delete (&self->expectations, key);
        self->host->enqueue (self->host, key);
        return;
    }
    const Zube__Pod *pod = (const Zube__Pod *)object;
    if (pod->metadata)
        s_pod_deleted (self, pod);
}

//  ---------------------------------------------------------------------
//  Claiming pods (Kubernetes' PodControllerRefManager)

typedef struct {
    const Zube__Pod **items;
    size_t count;
} s_pods_t;

//  The active pods of the ReplicaSet after adoption and release.
static zube_status_t
s_claim (s_self_t *self, const Zube__ReplicaSet *rs, s_pods_t *claimed, char *error,
         size_t error_size)
{
    size_t count = 0;
    const ProtobufCMessage **all =
        self->host->list (self->host, "pods", rs->metadata->namespace_, NULL, &count);
    claimed->items = calloc (count + 1, sizeof *claimed->items);
    claimed->count = 0;
    if (!claimed->items) {
        self->host->free_list (self->host, all);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    bool deleting = zc_deleting (rs->metadata);
    zube_status_t result = ZUBE_OK;
    for (size_t i = 0; i < count; i++) {
        const Zube__Pod *pod = (const Zube__Pod *)all[i];
        if (!pod->metadata || !zc_pod_active (pod))
            continue;
        const Zube__OwnerReference *ref = zc_controller_of (pod->metadata);
        int matches = self->host->selector_matches (self->host, &rs->spec->selector->base,
                                                    &pod->base);
        if (ref) {
            if (!zc_streq (ref->uid, rs->metadata->uid))
                continue;
            if (matches == 1) {
                claimed->items[claimed->count++] = pod;
                continue;
            }
            if (deleting)
                continue;
            zube_status_t status = zc_write_owner (
                self->host, "pods", &pod->base, &zube__pod__descriptor, "apps/v1",
                "ReplicaSet", rs->metadata, false, NULL, error, error_size);
            if (status != ZUBE_OK && status != ZUBE_NOT_FOUND)
                result = status;
            continue;
        }
        if (deleting || matches != 1)
            continue;
        zube_status_t status = zc_write_owner (
            self->host, "pods", &pod->base, &zube__pod__descriptor, "apps/v1",
            "ReplicaSet", rs->metadata, true, NULL, error, error_size);
        if (status == ZUBE_OK)
            claimed->items[claimed->count++] = pod;
        else if (status != ZUBE_NOT_FOUND)
            result = status;
    }
    self->host->free_list (self->host, all);
    return result;
}

//  ---------------------------------------------------------------------
//  Scaling

static int32_t
s_desired (const Zube__ReplicaSet *rs)
{
    return rs->spec && rs->spec->has_replicas ? rs->spec->replicas : 1;
}

static zube_status_t
s_create_pod (s_self_t *self, const Zube__ReplicaSet *rs, char *error, size_t error_size)
{
    Zube__PodTemplateSpec *template_ = (Zube__PodTemplateSpec *)zc_copy (
        &rs->spec->template_->base, &zube__pod_template_spec__descriptor);
    if (!template_) {
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    Zube__ObjectMeta empty = ZUBE__OBJECT_META__INIT;
    Zube__ObjectMeta *meta = template_->metadata ? template_->metadata : &empty;
    char generate[300];
    snprintf (generate, sizeof generate, "%.250s-", rs->metadata->name);
    zube_status_t status =
        zc_create_pod (self->host, &rs->base, "apps/v1", "ReplicaSet", meta,
                       template_->spec, generate, error, error_size);
    zc_free (template_);
    return status;
}

//  Kubernetes' ActivePodsWithRanks ordering: true when a goes (is deleted)
//  before b.
typedef struct {
    const Zube__Pod *pod;
    int rank;
} s_ranked_t;

static int
s_phase_order (const Zube__Pod *pod)
{
    const char *phase = pod->status ? pod->status->phase : NULL;
    return zc_streq (phase, "Pending")   ? 0
           : zc_streq (phase, "Unknown") ? 1
           : zc_streq (phase, "Running") ? 2
                                         : 0;
}

static int64_t
s_deletion_cost (const Zube__Pod *pod)
{
    const char *cost = zc_annotation (pod->metadata, S_DELETION_COST);
    return cost ? strtoll (cost, NULL, 10) : 0;
}

static int32_t
s_restarts (const Zube__Pod *pod)
{
    int32_t max = 0;
    for (size_t i = 0; pod->status && i < pod->status->n_container_statuses; i++)
        if (pod->status->container_statuses[i]->restart_count > max)
            max = pod->status->container_statuses[i]->restart_count;
    return max;
}

static int
s_rank_compare (const void *a_arg, const void *b_arg)
{
    const s_ranked_t *a = a_arg, *b = b_arg;
    const Zube__Pod *pa = a->pod, *pb = b->pod;
    //  1. unassigned < assigned
    bool a_bound = pa->spec && !zc_empty (pa->spec->node_name);
    bool b_bound = pb->spec && !zc_empty (pb->spec->node_name);
    if (a_bound != b_bound)
        return a_bound ? 1 : -1;
    //  2. Pending < Unknown < Running
    int a_phase = s_phase_order (pa), b_phase = s_phase_order (pb);
    if (a_phase != b_phase)
        return a_phase - b_phase;
    //  3. not ready < ready
    bool a_ready = zc_pod_ready (pa), b_ready = zc_pod_ready (pb);
    if (a_ready != b_ready)
        return a_ready ? 1 : -1;
    //  4. lower pod-deletion-cost first
    int64_t a_cost = s_deletion_cost (pa), b_cost = s_deletion_cost (pb);
    if (a_cost != b_cost)
        return a_cost < b_cost ? -1 : 1;
    //  5. doubled up (more pods of this set on its node) first
    if (a->rank != b->rank)
        return a->rank > b->rank ? -1 : 1;
    //  6. ready for less time first
    if (a_ready && b_ready) {
        int64_t a_since =
            zc_parse_time (zc_pod_condition (pa, "Ready")->last_transition_time);
        int64_t b_since =
            zc_parse_time (zc_pod_condition (pb, "Ready")->last_transition_time);
        if (a_since != b_since)
            return a_since > b_since ? -1 : 1;
    }
    //  7. more restarts first
    int32_t a_restarts = s_restarts (pa), b_restarts = s_restarts (pb);
    if (a_restarts != b_restarts)
        return a_restarts > b_restarts ? -1 : 1;
    //  8. newer first
    int64_t a_created = zc_parse_time (pa->metadata->creation_timestamp);
    int64_t b_created = zc_parse_time (pb->metadata->creation_timestamp);
    if (a_created != b_created)
        return a_created > b_created ? -1 : 1;
    return strcmp (pa->metadata->name ? pa->metadata->name : "",
                   pb->metadata->name ? pb->metadata->name : "");
}

//  The pods on the same node as pod, among claimed (its node's rank).
static int
s_colocated (const s_pods_t *claimed, const Zube__Pod *pod)
{
    const char *node = pod->spec ? pod->spec->node_name : NULL;
    if (zc_empty (node))
        return 0;
    int count = 0;
    for (size_t i = 0; i < claimed->count; i++) {
        const Zube__PodSpec *spec = claimed->items[i]->spec;
        if (spec && zc_streq (spec->node_name, node))
            count++;
    }
    return count;
}

static zube_status_t
s_scale_down (s_self_t *self, const Zube__ReplicaSet *rs, const char *key,
              const s_pods_t *claimed, size_t diff, char *error, size_t error_size)
{
    s_ranked_t *ranked = calloc (claimed->count, sizeof *ranked);
    char **keys = calloc (diff, sizeof *keys);
    if (!ranked || !keys) {
        free (ranked), free (keys);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    for (size_t i = 0; i < claimed->count; i++) {
        ranked[i].pod = claimed->items[i];
        ranked[i].rank = s_colocated (claimed, claimed->items[i]);
    }
    qsort (ranked, claimed->count, sizeof *ranked, s_rank_compare);
    for (size_t i = 0; i < diff; i++) {
        char pod_key[600];
        zc_key_of (ranked[i].pod->metadata, pod_key, sizeof pod_key);
        keys[i] = strdup (pod_key);
    }
    zc_expectations_expect (&self->expectations, key, 0, (const char *const *)keys, diff);
    zube_status_t result = ZUBE_OK;
    for (size_t i = 0; i < diff; i++) {
        const Zube__ObjectMeta *meta = ranked[i].pod->metadata;
        char why[1024] = "";
        zube_status_t status = self->host->delete_ (self->host, "pods", meta->namespace_,
                                                    meta->name, NULL, why, sizeof why);
        if (status == ZUBE_OK)
            self->host->event (self->host, &rs->base, ZUBE_CTRL_EVENT_NORMAL,
                               "SuccessfulDelete", "Deleted pod: %s", meta->name);
        else if (status != ZUBE_NOT_FOUND) {
            //  Will not be seen: expect it no longer
            zc_expectations_deletion_observed (&self->expectations, key, keys[i]);
            self->host->event (self->host, &rs->base, ZUBE_CTRL_EVENT_WARNING,
                               "FailedDelete", "Error deleting: %s", why);
            snprintf (error, error_size, "deleting pod %s: %s", meta->name, why);
            result = status;
        }
    }
    for (size_t i = 0; i < diff; i++)
        free (keys[i]);
    free (keys);
    free (ranked);
    return result;
}

//  Kubernetes' manageReplicas
static zube_status_t
s_manage (s_self_t *self, const Zube__ReplicaSet *rs, const char *key,
          const s_pods_t *claimed, char *error, size_t error_size)
{
    int64_t diff = (int64_t)claimed->count - s_desired (rs);
    if (diff < 0) {
        int64_t wanted = -diff < self->burst ? -diff : self->burst;
        zc_expectations_expect (&self->expectations, key, wanted, NULL, 0);
        int64_t done = 0, batch = 1;
        zube_status_t result = ZUBE_OK;
        //  Slow start: batches of 1, 2, 4, ... until one fails
        while (done < wanted && result == ZUBE_OK) {
            int64_t size = batch < wanted - done ? batch : wanted - done;
            for (int64_t i = 0; i < size; i++) {
                zube_status_t status = s_create_pod (self, rs, error, error_size);
                if (status != ZUBE_OK) {
                    //  Not made, will not be seen
                    zc_expectations_creation_observed (&self->expectations, key);
                    result = status;
                }
            }
            done += size;
            batch *= 2;
        }
        //  Skipped after a failure: not expected either
        for (int64_t i = done; i < wanted; i++)
            zc_expectations_creation_observed (&self->expectations, key);
        return result;
    }
    if (diff > 0) {
        size_t count = (size_t)(diff < self->burst ? diff : self->burst);
        return s_scale_down (self, rs, key, claimed, count, error, error_size);
    }
    return ZUBE_OK;
}

//  ---------------------------------------------------------------------
//  Status

static bool
s_template_labels_match (const Zube__ReplicaSet *rs, const Zube__Pod *pod)
{
    const Zube__ObjectMeta *template_meta =
        rs->spec->template_ ? rs->spec->template_->metadata : NULL;
    for (size_t i = 0; template_meta && i < template_meta->n_labels; i++)
        if (!zc_streq (zc_label (pod->metadata, template_meta->labels[i]->key),
                       template_meta->labels[i]->value))
            return false;
    return true;
}

static const Zube__ReplicaSetCondition *
s_condition (const Zube__ReplicaSetStatus *status, const char *type)
{
    for (size_t i = 0; status && i < status->n_conditions; i++)
        if (zc_streq (status->conditions[i]->type, type))
            return status->conditions[i];
    return NULL;
}

static zube_status_t
s_update_status (s_self_t *self, const Zube__ReplicaSet *rs, const s_pods_t *claimed,
                 zube_status_t manage_status, const char *manage_error, char *error,
                 size_t error_size)
{
    int64_t now = (int64_t)time (NULL);
    int32_t min_ready = rs->spec->min_ready_seconds;
    int32_t fully = 0, ready = 0, available = 0;
    for (size_t i = 0; i < claimed->count; i++) {
        const Zube__Pod *pod = claimed->items[i];
        if (s_template_labels_match (rs, pod))
            fully++;
        if (zc_pod_ready (pod))
            ready++;
        if (zc_pod_available (pod, min_ready, now))
            available++;
    }
    int32_t replicas = (int32_t)claimed->count;
    const Zube__ReplicaSetStatus *old = rs->status;
    const Zube__ReplicaSetCondition *failure = s_condition (old, "ReplicaFailure");
    bool failing = manage_status != ZUBE_OK && manage_status != ZUBE_CONFLICT;
    bool same = old && old->replicas == replicas &&
                old->fully_labeled_replicas == fully && old->ready_replicas == ready &&
                old->available_replicas == available &&
                old->observed_generation == rs->metadata->generation &&
                (failure != NULL) == failing;
    if (same)
        return ZUBE_OK;
    Zube__ReplicaSet *copy =
        (Zube__ReplicaSet *)zc_copy (&rs->base, &zube__replica_set__descriptor);
    if (!copy) {
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    if (!copy->status) {
        copy->status = malloc (sizeof *copy->status);
        if (!copy->status) {
            zc_free (copy);
            snprintf (error, error_size, "out of memory");
            return ZUBE_INTERNAL;
        }
        zube__replica_set_status__init (copy->status);
    }
    Zube__ReplicaSetStatus *status = copy->status;
    status->has_replicas = status->has_fully_labeled_replicas = 1;
    status->has_ready_replicas = status->has_available_replicas = 1;
    status->has_observed_generation = 1;
    status->replicas = replicas;
    status->fully_labeled_replicas = fully;
    status->ready_replicas = ready;
    status->available_replicas = available;
    status->observed_generation = rs->metadata->generation;
    //  ReplicaFailure: set while managing fails, removed after
    Zube__ReplicaSetCondition condition = ZUBE__REPLICA_SET_CONDITION__INIT;
    Zube__ReplicaSetCondition **saved = status->conditions;
    size_t saved_count = status->n_conditions;
    Zube__ReplicaSetCondition **conditions = calloc (saved_count + 1, sizeof *conditions);
    char stamp[40], message[1024];
    size_t count = 0;
    for (size_t i = 0; conditions && i < saved_count; i++)
        if (!zc_streq (saved[i]->type, "ReplicaFailure"))
            conditions[count++] = saved[i];
    if (conditions && failing) {
        zc_now_rfc3339 (stamp, sizeof stamp);
        snprintf (message, sizeof message, "%s", manage_error);
        condition.type = "ReplicaFailure";
        condition.status = "True";
        condition.reason =
            strstr (manage_error, "deleting") ? "FailedDelete" : "FailedCreate";
        condition.message = message;
        condition.last_transition_time = failure && failure->last_transition_time
                                             ? failure->last_transition_time
                                             : stamp;
        conditions[count++] = &condition;
    }
    if (conditions) {
        status->conditions = conditions;
        status->n_conditions = count;
    }
    zube_status_t result = self->host->update (
        self->host, "replicasets.apps", &copy->base, "status", NULL, error, error_size);
    status->conditions = saved;
    status->n_conditions = saved_count;
    free (conditions);
    zc_free (copy);
    return result;
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    char namespace_[256], name[256];
    if (zube_ctrl_split_key (key, namespace_, name, sizeof name) != 0)
        return ZUBE_OK;
    const Zube__ReplicaSet *rs = (const Zube__ReplicaSet *)self->host->get (
        self->host, "replicasets.apps", namespace_, name);
    if (!rs || !rs->metadata) {
        zc_expectations_delete (&self->expectations, key);
        return ZUBE_OK;
    }
    if (!rs->spec || !rs->spec->selector ||
        (rs->spec->selector->n_match_labels == 0 &&
         rs->spec->selector->n_match_expressions == 0)) {
        self->host->event (self->host, &rs->base, ZUBE_CTRL_EVENT_WARNING,
                           "InvalidSelector", "spec.selector: Required value");
        return ZUBE_OK;
    }
    const char *problem =
        zc_selector_problem (self->host, &rs->spec->selector->base,
                             rs->spec->template_ ? &rs->spec->template_->base : NULL);
    if (problem) {
        self->host->event (self->host, &rs->base, ZUBE_CTRL_EVENT_WARNING,
                           "InvalidSelector", "%s", problem);
        return ZUBE_OK;
    }
    bool needs_sync = zc_expectations_satisfied (&self->expectations, key);
    s_pods_t claimed = {0};
    zube_status_t status = s_claim (self, rs, &claimed, error, error_size);
    zube_status_t manage_status = ZUBE_OK;
    char manage_error[1024] = "";
    if (status == ZUBE_OK && needs_sync && !zc_deleting (rs->metadata))
        manage_status =
            s_manage (self, rs, key, &claimed, manage_error, sizeof manage_error);
    zube_status_t status_update = s_update_status (self, rs, &claimed, manage_status,
                                                   manage_error, error, error_size);
    //  Pods become available minReadySeconds after they are ready
    int32_t min_ready = rs->spec->min_ready_seconds;
    if (min_ready > 0 && rs->status &&
        rs->status->ready_replicas == (int32_t)claimed.count &&
        rs->status->available_replicas != (int32_t)claimed.count)
        self->host->enqueue_after (self->host, key, (int64_t)min_ready * 1000);
    free (claimed.items);
    if (manage_status != ZUBE_OK) {
        snprintf (error, error_size, "%s", manage_error);
        return manage_status;
    }
    if (status != ZUBE_OK)
        return status;
    return status_update;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "replicaset",
    .watches = s_watches,
    //  --concurrent-replicaset-syncs. Safe to interleave: expectations
    //  are looked up by key at every use, nothing kept across host calls
    .workers = 5,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .on_delete = s_on_delete,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "replicaset", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_CONTROLLER, .ops = &s_ops,
                    .description = "ReplicaSets: keeps spec.replicas pods running")
