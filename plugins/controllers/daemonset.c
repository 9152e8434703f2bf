/*  daemonset - Kubernetes' daemon set controller (pkg/controller/daemon):
    one pod of the DaemonSet on every node that should run it.

    A node should run the daemon pod when the template's nodeName (if any)
    is the node, the template's nodeSelector and required node affinity
    match it, and the pod (with the tolerations every daemon pod gets, see
    below) tolerates its NoSchedule and NoExecute taints; a pod already
    there keeps running while it tolerates the NoExecute ones
    (nodeShouldRunDaemonPod). Each sync creates the missing pods, deletes
    failed ones, the surplus of a node (the oldest stays) and the pods of
    nodes that should not run one, then rolls pods of an older template
    (label controller-revision-hash) over at most maxUnavailable (1)
    unavailable nodes at a time (RollingUpdate; OnDelete leaves them), and
    writes the status counts.

    Placement: a new pod gets a required node affinity term matchFields
    metadata.name In [node] (ReplaceDaemonSetPodNodeNameNodeAffinity,
    Kubernetes' way since 1.12), so the scheduler binds it and accounts
    for its resources; with the setting placement=nodeName it gets
    spec.nodeName instead and skips the scheduler, as before 1.12.
    Daemon pods get the tolerations Kubernetes adds
    (AddOrUpdateDaemonPodTolerations): not-ready and unreachable
    NoExecute without tolerationSeconds, disk-pressure, memory-pressure,
    pid-pressure and unschedulable NoSchedule, and network-unavailable
    NoSchedule for hostNetwork pods.

    Not done: ControllerRevision objects (the hash label stands in, so no
    rollback history), adoption of matching orphan pods, maxSurge (treated
    as 0), and slow-start batches (the missing pods are created at once,
    at most burstReplicas 250 per sync). */
#include "apps.pb-c.h"
#include "node_util.h"

#define S_HASH_LABEL "controller-revision-hash"
#define S_BURST 250

typedef struct {
    const zube_ctrl_host_t *host;
    zc_expectations_t expectations;
    bool place_by_name;
} s_self_t;

static const char *const s_watches[] = {"daemonsets.apps", "pods", "nodes", NULL};

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    const char *placement = host->base->config_get (host->base, "placement");
    if (placement && !zc_streq (placement, "affinity") &&
        !zc_streq (placement, "nodeName")) {
        snprintf (
            error, error_size,
            "daemonset: placement: expected \"affinity\" or \"nodeName\", got \"%s\"",
            placement);
        return NULL;
    }
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->host = host;
    self->place_by_name = zc_streq (placement, "nodeName");
    return self;
}

static void
s_destroy (void *arg)
{
    s_self_t *self = arg;
    zc_expectations_clear (&self->expectations);
    free (self);
}

//  ---------------------------------------------------------------------
//  Event handlers

static void
s_enqueue_all (s_self_t *self)
{
    size_t count = 0;
    const ProtobufCMessage **sets =
        self->host->list (self->host, "daemonsets.apps", NULL, NULL, &count);
    for (size_t i = 0; i < count; i++) {
        const Zube__DaemonSet *ds = (const Zube__DaemonSet *)sets[i];
        char key[512];
        if (zube_ctrl_key (ds->metadata->namespace_, ds->metadata->name, key,
                           sizeof key) > 0)
            self->host->enqueue (self->host, key);
    }
    self->host->free_list (self->host, sets);
}

//  The key of the DaemonSet controlling the pod, false when none.
static bool
s_owner_key (const Zube__Pod *pod, char *key, size_t size)
{
    const Zube__OwnerReference *ref = zc_controller_of (pod->metadata);
    return ref && zc_streq (ref->kind, "DaemonSet") &&
           zube_ctrl_key (pod->metadata->namespace_, ref->name, key, size) > 0;
}

static bool
s_labels_taints_equal (const Zube__Node *a, const Zube__Node *b)
{
    const Zube__ObjectMeta *ma = a->metadata, *mb = b->metadata;
    size_t la = ma ? ma->n_labels : 0, lb = mb ? mb->n_labels : 0;
    if (la != lb)
        return false;
    for (size_t i = 0; i < lb; i++)
        if (!zc_streq (zc_label (ma, mb->labels[i]->key), mb->labels[i]->value))
            return false;
    size_t ta = a->spec ? a->spec->n_taints : 0, tb = b->spec ? b->spec->n_taints : 0;
    if (ta != tb)
        return false;
    for (size_t i = 0; i < tb; i++) {
        const Zube__Taint *taint = b->spec->taints[i];
        const Zube__Taint *same = zn_taint (a, taint->key, taint->effect);
        if (!same ||
            !zc_streq (same->value ? same->value : "", taint->value ? taint->value : ""))
            return false;
    }
    return true;
}

static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    char key[512];
    if (strcmp (resource, "nodes") == 0)
        s_enqueue_all (self);
    else if (strcmp (resource, "pods") == 0) {
        if (s_owner_key ((const Zube__Pod *)object, key, sizeof key)) {
            zc_expectations_creation_observed (&self->expectations, key);
            self->host->enqueue (self->host, key);
        }
    } else {
        const Zube__DaemonSet *ds = (const Zube__DaemonSet *)object;
        if (zube_ctrl_key (ds->metadata->namespace_, ds->metadata->name, key,
                           sizeof key) > 0)
            self->host->enqueue (self->host, key);
    }
}

static void
s_on_update (void *arg, const char *resource, const ProtobufCMessage *old_object,
             const ProtobufCMessage *new_object)
{
    s_self_t *self = arg;
    char key[512];
    if (strcmp (resource, "nodes") == 0) {
        if (!s_labels_taints_equal ((const Zube__Node *)old_object,
                                    (const Zube__Node *)new_object))
            s_enqueue_all (self);
    } else if (strcmp (resource, "pods") == 0) {
        if (s_owner_key ((const Zube__Pod *)old_object, key, sizeof key))
            self->host->enqueue (self->host, key);
        if (s_owner_key ((const Zube__Pod *)new_object, key, sizeof key))
            self->host->enqueue (self->host, key);
    } else
        s_on_add (arg, resource, new_object);
}

static void
s_on_delete (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    char key[512], pod_key[512];
    if (strcmp (resource, "nodes") == 0)
        s_enqueue_all (self);
    else if (strcmp (resource, "pods") == 0) {
        const Zube__Pod *pod = (const Zube__Pod *)object;
        if (s_owner_key (pod, key, sizeof key) &&
            zube_ctrl_key (pod->metadata->namespace_, pod->metadata->name, pod_key,
                           sizeof pod_key) > 0) {
            zc_expectations_deletion_observed (&self->expectations, key, pod_key);
            self->host->enqueue (self->host, key);
        }
    } else
        s_on_add (arg, resource, object);
}

//  ---------------------------------------------------------------------
//  Which nodes, which pods

//  Kubernetes' AddOrUpdateDaemonPodTolerations
static const char *const s_daemon_tolerations[][2] = {
    {ZN_TAINT_NOT_READY, "NoExecute"},           {ZN_TAINT_UNREACHABLE, "NoExecute"},
    {ZN_TAINT_DISK_PRESSURE, "NoSchedule"},      {ZN_TAINT_MEMORY_PRESSURE, "NoSchedule"},
    {ZN_TAINT_PID_PRESSURE, "NoSchedule"},       {ZN_TAINT_UNSCHEDULABLE, "NoSchedule"},
    {ZN_TAINT_NETWORK_UNAVAILABLE, "NoSchedule"}};
#define S_DAEMON_TOLERATIONS 7

static size_t
s_daemon_toleration_count (const Zube__PodSpec *spec)
{
    return spec->has_host_network && spec->host_network ? S_DAEMON_TOLERATIONS
                                                        : S_DAEMON_TOLERATIONS - 1;
}

//  The template's tolerations plus the daemon ones, pointers into
//  storage (at least n_tolerations + S_DAEMON_TOLERATIONS entries).
static size_t
s_tolerations (const Zube__PodSpec *spec, Zube__Toleration *storage,
               Zube__Toleration **list)
{
    size_t count = 0;
    for (size_t i = 0; i < spec->n_tolerations; i++)
        list[count++] = spec->tolerations[i];
    for (size_t d = 0; d < s_daemon_toleration_count (spec); d++) {
        Zube__Toleration *t = &storage[d];
        zube__toleration__init (t);
        t->key = (char *)s_daemon_tolerations[d][0];
        t->operator_ = "Exists";
        t->effect = (char *)s_daemon_tolerations[d][1];
        list[count++] = t;
    }
    return count;
}

//  Kubernetes' NodeShouldRunDaemonPod: *should_run (a new pod goes
//  there) and *should_continue (a pod there stays).
static void
s_should_run (const Zube__DaemonSet *ds, const Zube__Node *node, bool *should_run,
              bool *should_continue)
{
    const Zube__PodSpec *spec = ds->spec->template_->spec;
    *should_run = *should_continue = false;
    if (!spec || (!zc_empty (spec->node_name) &&
                  !zc_streq (spec->node_name, node->metadata->name)))
        return;
    if (!zn_node_fits (spec, node))
        return;
    Zube__Toleration storage[S_DAEMON_TOLERATIONS];
    Zube__Toleration **list =
        calloc (spec->n_tolerations + S_DAEMON_TOLERATIONS, sizeof *list);
    if (!list)
        return;
    size_t count = s_tolerations (spec, storage, list);
    *should_continue = zn_tolerates_taints (list, count, node, "NoExecute", "NoExecute");
    *should_run = *should_continue &&
                  zn_tolerates_taints (list, count, node, "NoSchedule", "NoExecute");
    free (list);
}

//  The node a daemon pod is for: spec.nodeName, else the name its
//  required node affinity's matchFields pins (GetTargetNodeName).
static const char *
s_target_node (const Zube__Pod *pod)
{
    if (!pod->spec)
        return NULL;
    if (!zc_empty (pod->spec->node_name))
        return pod->spec->node_name;
    const Zube__Affinity *affinity = pod->spec->affinity;
    const Zube__NodeSelector *required =
        affinity && affinity->node_affinity
            ? affinity->node_affinity->required_during_scheduling_ignored_during_execution
            : NULL;
    for (size_t t = 0; required && t < required->n_node_selector_terms; t++) {
        const Zube__NodeSelectorTerm *term = required->node_selector_terms[t];
        for (size_t f = 0; f < term->n_match_fields; f++) {
            const Zube__NodeSelectorRequirement *req = term->match_fields[f];
            if (zc_streq (req->key, "metadata.name") && zc_streq (req->operator_, "In") &&
                req->n_values == 1)
                return req->values[0];
        }
    }
    return NULL;
}

//  FNV-1a of the packed template: the controller-revision-hash label.
static void
s_template_hash (const Zube__PodTemplateSpec *template_, char *buf, size_t size)
{
    size_t packed = protobuf_c_message_get_packed_size (&template_->base);
    uint8_t *data = malloc (packed ? packed : 1);
    uint32_t hash = 2166136261u;
    if (data) {
        protobuf_c_message_pack (&template_->base, data);
        for (size_t i = 0; i < packed; i++)
            hash = (hash ^ data[i]) * 16777619u;
        free (data);
    }
    snprintf (buf, size, "%08x", hash);
}

//  ---------------------------------------------------------------------
//  Writes

static bool
s_add_label (Zube__ObjectMeta *meta, const char *key, const char *value)
{
    Zube__ObjectMeta__LabelsEntry **grown =
        realloc (meta->labels, (meta->n_labels + 1) * sizeof *grown);
    Zube__ObjectMeta__LabelsEntry *entry = malloc (sizeof *entry);
    if (grown)
        meta->labels = grown;
    if (!grown || !entry) {
        free (entry);
        return false;
    }
    zube__object_meta__labels_entry__init (entry);
    entry->key = strdup (key);
    entry->value = strdup (value);
    meta->labels[meta->n_labels++] = entry;
    return entry->key && entry->value;
}

//  The pod spec's affinity pinned to node, as
//  ReplaceDaemonSetPodNodeNameNodeAffinity does (the required terms
//  replaced, the preferred kept).
static bool
s_pin_affinity (Zube__PodSpec *spec, const char *node)
{
    if (!spec->affinity) {
        spec->affinity = malloc (sizeof *spec->affinity);
        if (!spec->affinity)
            return false;
        zube__affinity__init (spec->affinity);
    }
    Zube__Affinity *affinity = spec->affinity;
    if (!affinity->node_affinity) {
        affinity->node_affinity = malloc (sizeof *affinity->node_affinity);
        if (!affinity->node_affinity)
            return false;
        zube__node_affinity__init (affinity->node_affinity);
    }
    Zube__NodeAffinity *node_affinity = affinity->node_affinity;
    zc_free (node_affinity->required_during_scheduling_ignored_during_execution);
    node_affinity->required_during_scheduling_ignored_during_execution = NULL;
    Zube__NodeSelector *required = calloc (1, sizeof *required);
    Zube__NodeSelectorTerm *term = calloc (1, sizeof *term);
    Zube__NodeSelectorRequirement *req = calloc (1, sizeof *req);
    Zube__NodeSelectorTerm **terms = calloc (1, sizeof *terms);
    Zube__NodeSelectorRequirement **fields = calloc (1, sizeof *fields);
    char **values = calloc (1, sizeof *values);
    if (!required || !term || !req || !terms || !fields || !values) {
        free (required), free (term), free (req), free (terms), free (fields),
            free (values);
        return false;
    }
    zube__node_selector__init (required);
    zube__node_selector_term__init (term);
    zube__node_selector_requirement__init (req);
    req->key = strdup ("metadata.name");
    req->operator_ = strdup ("In");
    values[0] = strdup (node);
    req->values = values;
    req->n_values = 1;
    fields[0] = req;
    term->match_fields = fields;
    term->n_match_fields = 1;
    terms[0] = term;
    required->node_selector_terms = terms;
    required->n_node_selector_terms = 1;
    node_affinity->required_during_scheduling_ignored_during_execution = required;
    return req->key && req->operator_ && values[0];
}

static bool
s_add_daemon_tolerations (Zube__PodSpec *spec)
{
    size_t wanted = s_daemon_toleration_count (spec);
    for (size_t d = 0; d < wanted; d++) {
        bool have = false;
        for (size_t i = 0; i < spec->n_tolerations && !have; i++)
            have = zc_streq (spec->tolerations[i]->key, s_daemon_tolerations[d][0]) &&
                   zc_streq (spec->tolerations[i]->effect, s_daemon_tolerations[d][1]);
        if (have)
            continue;
        Zube__Toleration **grown =
            realloc (spec->tolerations, (spec->n_tolerations + 1) * sizeof *grown);
        Zube__Toleration *t = malloc (sizeof *t);
        if (grown)
            spec->tolerations = grown;
        if (!grown || !t) {
            free (t);
            return false;
        }
        zube__toleration__init (t);
        t->key = strdup (s_daemon_tolerations[d][0]);
        t->operator_ = strdup ("Exists");
        t->effect = strdup (s_daemon_tolerations[d][1]);
        spec->tolerations[spec->n_tolerations++] = t;
    }
    return true;
}

static zube_status_t
s_create_pod (s_self_t *self, const Zube__DaemonSet *ds, const char *node,
              const char *hash, char *error, size_t error_size)
{
    Zube__PodTemplateSpec *template_ = (Zube__PodTemplateSpec *)zc_copy (
        &ds->spec->template_->base, &zube__pod_template_spec__descriptor);
    if (template_ && !template_->metadata) {
        template_->metadata = malloc (sizeof *template_->metadata);
        if (template_->metadata)
            zube__object_meta__init (template_->metadata);
    }
    Zube__ObjectMeta *meta = template_ ? template_->metadata : NULL;
    Zube__PodSpec *spec = template_ ? template_->spec : NULL;
    bool built = meta && spec && s_add_label (meta, S_HASH_LABEL, hash) &&
                 s_add_daemon_tolerations (spec);
    if (built && self->place_by_name) {
        free (spec->node_name);
        built = (spec->node_name = strdup (node)) != NULL;
    } else if (built)
        built = s_pin_affinity (spec, node);
    if (!built) {
        zc_free (template_);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    char generate[300];
    snprintf (generate, sizeof generate, "%.250s-", ds->metadata->name);
    zube_status_t status = zc_create_pod (self->host, &ds->base, "apps/v1", "DaemonSet",
                                          meta, spec, generate, error, error_size);
    zc_free (template_);
    return status;
}

static zube_status_t
s_delete_pod (s_self_t *self, const Zube__DaemonSet *ds, const Zube__Pod *pod,
              char *error, size_t error_size)
{
    zube_ctrl_delete_options_t options = {.struct_size = sizeof options,
                                          .uid = pod->metadata->uid};
    zube_status_t status =
        self->host->delete_ (self->host, "pods", pod->metadata->namespace_,
                             pod->metadata->name, &options, error, error_size);
    if (status == ZUBE_OK)
        self->host->event (self->host, &ds->base, ZUBE_CTRL_EVENT_NORMAL,
                           "SuccessfulDelete", "Deleted pod: %s", pod->metadata->name);
    else if (status != ZUBE_NOT_FOUND && status != ZUBE_CONFLICT)
        self->host->event (self->host, &ds->base, ZUBE_CTRL_EVENT_WARNING, "FailedDelete",
                           "Error deleting: %s", error);
    return status == ZUBE_NOT_FOUND || status == ZUBE_CONFLICT ? ZUBE_OK : status;
}

//  ---------------------------------------------------------------------
//  Sync

//  A node's state in one sync
typedef struct {
    const Zube__Node *node;
    bool should_run;
    bool should_continue;
    const Zube__Pod *pod; //  the live pod that stays (the oldest)
} s_slot_t;

typedef struct {
    const Zube__Pod **items;
    size_t count;
    size_t capacity;
} s_podlist_t;

static bool
s_push (s_podlist_t *list, const Zube__Pod *pod)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        const Zube__Pod **grown = realloc (list->items, capacity * sizeof *grown);
        if (!grown)
            return false;
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = pod;
    return true;
}

static bool
s_pod_failed (const Zube__Pod *pod)
{
    return pod->status && zc_streq (pod->status->phase, "Failed");
}

static bool
s_older (const Zube__Pod *a, const Zube__Pod *b)
{
    int order =
        strcmp (a->metadata->creation_timestamp ? a->metadata->creation_timestamp : "",
                b->metadata->creation_timestamp ? b->metadata->creation_timestamp : "");
    return order < 0 || (order == 0 && strcmp (a->metadata->name, b->metadata->name) < 0);
}

static zube_status_t
s_write_status (s_self_t *self, const Zube__DaemonSet *ds,
                const Zube__DaemonSetStatus *want, char *error, size_t error_size)
{
    const Zube__DaemonSetStatus *have = ds->status;
    if (have && have->desired_number_scheduled == want->desired_number_scheduled &&
        have->current_number_scheduled == want->current_number_scheduled &&
        have->number_misscheduled == want->number_misscheduled &&
        have->number_ready == want->number_ready &&
        have->updated_number_scheduled == want->updated_number_scheduled &&
        have->number_available == want->number_available &&
        have->number_unavailable == want->number_unavailable &&
        have->observed_generation == want->observed_generation)
        return ZUBE_OK;
    Zube__DaemonSet *copy =
        (Zube__DaemonSet *)zc_copy (&ds->base, &zube__daemon_set__descriptor);
    if (!copy)
        return ZUBE_INTERNAL;
    Zube__DaemonSetStatus *saved = copy->status;
    Zube__DaemonSetStatus status = *want;
    if (saved) {
        status.conditions = saved->conditions;
        status.n_conditions = saved->n_conditions;
        status.has_collision_count = saved->has_collision_count;
        status.collision_count = saved->collision_count;
    }
    copy->status = &status;
    zube_status_t answer = self->host->update (self->host, "daemonsets.apps", &copy->base,
                                               "status", NULL, error, error_size);
    copy->status = saved;
    zc_free (copy);
    return answer == ZUBE_NOT_FOUND ? ZUBE_OK : answer;
}

//  The pods to delete by the rolling update: those of an older template,
//  the unavailable ones freely, the available ones while fewer than
//  maxUnavailable desired nodes are unavailable (Kubernetes' rollingUpdate
//  with maxSurge 0).
static void
s_rolling_update (const Zube__DaemonSet *ds, s_slot_t *slots, size_t count,
                  const char *hash, int32_t desired, int64_t now_s, s_podlist_t *doomed)
{
    const Zube__DaemonSetUpdateStrategy *strategy = ds->spec->update_strategy;
    if (strategy && zc_streq (strategy->type, "OnDelete"))
        return;
    const Zube__IntOrString *max = strategy && strategy->rolling_update
                                       ? strategy->rolling_update->max_unavailable
                                       : NULL;
    int32_t max_unavailable = 1;
    if (max && !zc_empty (max->str_val)) {
        double percent = strtod (max->str_val, NULL);
        double scaled = percent * desired / 100.0;
        max_unavailable = (int32_t)scaled + ((double)(int32_t)scaled < scaled);
    } else if (max && max->has_int_val)
        max_unavailable = max->int_val;
    if (max_unavailable < 1)
        max_unavailable = 1;
    int32_t min_ready = ds->spec->min_ready_seconds;
    int32_t unavailable = 0;
    for (size_t i = 0; i < count; i++)
        if (slots[i].should_run &&
            (!slots[i].pod || !zc_pod_available (slots[i].pod, min_ready, now_s)))
            unavailable++;
    for (size_t i = 0; i < count; i++) {
        const Zube__Pod *pod = slots[i].pod;
        if (!slots[i].should_run || !pod ||
            zc_streq (zc_label (pod->metadata, S_HASH_LABEL), hash))
            continue;
        if (!zc_pod_available (pod, min_ready, now_s))
            s_push (doomed, pod);
        else if (unavailable < max_unavailable) {
            s_push (doomed, pod);
            unavailable++;
        }
    }
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    char namespace_[256], name[256];
    if (zube_ctrl_split_key (key, namespace_, name, sizeof name) != 0)
        return ZUBE_OK;
    const Zube__DaemonSet *ds = (const Zube__DaemonSet *)self->host->get (
        self->host, "daemonsets.apps", namespace_, name);
    if (!ds) {
        zc_expectations_delete (&self->expectations, key);
        return ZUBE_OK;
    }
    if (zc_deleting (ds->metadata) || !ds->spec || !ds->spec->template_ ||
        !ds->spec->template_->spec || !ds->metadata->uid)
        return ZUBE_OK;
    char hash[16];
    s_template_hash (ds->spec->template_, hash, sizeof hash);
    int64_t now_s = self->host->base->time_ms (self->host->base) / 1000;
    size_t node_count = 0, pod_count = 0;
    const ProtobufCMessage **nodes =
        self->host->list (self->host, "nodes", NULL, NULL, &node_count);
    const ProtobufCMessage **pods =
        self->host->list_index (self->host, "pods", ZUBE_CTRL_INDEX_CONTROLLER_UID,
                                ds->metadata->uid, &pod_count);
    s_slot_t *slots = node_count ? calloc (node_count, sizeof *slots) : NULL;
    zn_map_t index = {0};
    s_podlist_t doomed = {0};
    zube_status_t status = ZUBE_OK;
    if (node_count && !slots) {
        status = ZUBE_INTERNAL;
        goto done;
    }
    for (size_t i = 0; i < node_count; i++) {
        slots[i].node = (const Zube__Node *)nodes[i];
        s_should_run (ds, slots[i].node, &slots[i].should_run, &slots[i].should_continue);
        zn_entry_t *entry = zn_map_put (&index, slots[i].node->metadata->name);
        if (entry)
            entry->value = (int64_t)i;
    }
    //  Each live pod to its node: the oldest stays, the rest and the
    //  failed ones go, and unscheduled pods of nodes gone
    for (size_t p = 0; p < pod_count; p++) {
        const Zube__Pod *pod = (const Zube__Pod *)pods[p];
        if (zc_deleting (pod->metadata))
            continue;
        const char *target = s_target_node (pod);
        zn_entry_t *entry = target ? zn_map_find (&index, target) : NULL;
        if (!entry) {
            if (!pod->spec || zc_empty (pod->spec->node_name))
                s_push (&doomed, pod);
            continue;
        }
        s_slot_t *slot = &slots[entry->value];
        if (s_pod_failed (pod)) {
            s_push (&doomed, pod);
            self->host->event (
                self->host, &ds->base, ZUBE_CTRL_EVENT_WARNING, "FailedDaemonPod",
                "Found failed daemon pod %s/%s on node %s, will try to kill it",
                pod->metadata->namespace_, pod->metadata->name, target);
        } else if (!slot->pod)
            slot->pod = pod;
        else if (s_older (pod, slot->pod)) {
            s_push (&doomed, slot->pod);
            slot->pod = pod;
        } else
            s_push (&doomed, pod);
    }
    Zube__DaemonSetStatus want = ZUBE__DAEMON_SET_STATUS__INIT;
    const char **create = node_count ? calloc (node_count, sizeof *create) : NULL;
    size_t create_count = 0;
    for (size_t i = 0; i < node_count; i++) {
        s_slot_t *slot = &slots[i];
        if (slot->should_run) {
            want.desired_number_scheduled++;
            if (!slot->pod && create)
                create[create_count++] = slot->node->metadata->name;
        }
        if (!slot->pod)
            continue;
        if (!slot->should_continue) {
            s_push (&doomed, slot->pod);
            want.number_misscheduled++;
            continue;
        }
        if (!slot->should_run) {
            want.number_misscheduled++;
            continue;
        }
        want.current_number_scheduled++;
        if (zc_pod_ready (slot->pod))
            want.number_ready++;
        if (zc_pod_available (slot->pod, ds->spec->min_ready_seconds, now_s))
            want.number_available++;
        if (zc_streq (zc_label (slot->pod->metadata, S_HASH_LABEL), hash))
            want.updated_number_scheduled++;
    }
    want.number_unavailable = want.desired_number_scheduled - want.number_available;
    want.has_current_number_scheduled = want.has_number_misscheduled = true;
    want.has_desired_number_scheduled = want.has_number_ready = true;
    want.has_updated_number_scheduled = want.has_number_available = true;
    want.has_number_unavailable = want.has_observed_generation = true;
    want.observed_generation = ds->metadata->generation;
    if (zc_expectations_satisfied (&self->expectations, key)) {
        if (create_count == 0 && doomed.count == 0)
            s_rolling_update (ds, slots, node_count, hash, want.desired_number_scheduled,
                              now_s, &doomed);
        if (create_count > S_BURST)
            create_count = S_BURST;
        char **doomed_keys =
            doomed.count ? calloc (doomed.count, sizeof *doomed_keys) : NULL;
        size_t doomed_keyed = 0;
        for (size_t d = 0; doomed_keys && d < doomed.count; d++) {
            char pod_key[512];
            const Zube__ObjectMeta *meta = doomed.items[d]->metadata;
            if (zube_ctrl_key (meta->namespace_, meta->name, pod_key, sizeof pod_key) > 0)
                doomed_keys[doomed_keyed++] = strdup (pod_key);
        }
        zc_expectations_expect (&self->expectations, key, (int64_t)create_count,
                                (const char *const *)doomed_keys, doomed_keyed);
        for (size_t d = 0; d < doomed_keyed; d++)
            free (doomed_keys[d]);
        free (doomed_keys);
        for (size_t c = 0; c < create_count; c++) {
            char text[512] = "";
            if (s_create_pod (self, ds, create[c], hash, text, sizeof text) != ZUBE_OK) {
                zc_expectations_creation_observed (&self->expectations, key);
                snprintf (error, error_size, "creating a pod for node %s: %s", create[c],
                          text);
                status = ZUBE_UNAVAILABLE;
            }
        }
        for (size_t d = 0; d < doomed.count; d++) {
            char text[512] = "", pod_key[512];
            const Zube__ObjectMeta *meta = doomed.items[d]->metadata;
            if (s_delete_pod (self, ds, doomed.items[d], text, sizeof text) != ZUBE_OK) {
                if (zube_ctrl_key (meta->namespace_, meta->name, pod_key,
                                   sizeof pod_key) > 0)
                    zc_expectations_deletion_observed (&self->expectations, key, pod_key);
                snprintf (error, error_size, "deleting pod %s: %s", meta->name, text);
                status = ZUBE_UNAVAILABLE;
            }
        }
    }
    free (create);
    zube_status_t written = s_write_status (self, ds, &want, error, error_size);
    if (status == ZUBE_OK)
        status = written;
    //  Pods waiting for minReadySeconds to count as available
    if (status == ZUBE_OK && ds->spec->min_ready_seconds > 0 &&
        want.number_available < want.number_ready)
        self->host->enqueue_after (self->host, key,
                                   (int64_t)ds->spec->min_ready_seconds * 1000);
done:
    free (doomed.items);
    zn_map_clear (&index);
    free (slots);
    self->host->free_list (self->host, pods);
    self->host->free_list (self->host, nodes);
    return status;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "daemonset",
    .watches = s_watches,
    //  One: not yet audited for syncs that interleave at host calls
    //  (Kubernetes' --concurrent-daemonset-syncs is 2)
    .workers = 1,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .on_delete = s_on_delete,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "daemonset", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_CONTROLLER, .ops = &s_ops,
                    .description = "one pod of a DaemonSet on every eligible node")
