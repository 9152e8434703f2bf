/*  nodelifecycle - Kubernetes' node lifecycle controller and its taint
    eviction controller (kube-controller-manager's nodelifecycle and
    tainteviction) as one plugin.

    Node health. Every node-monitor-period (5 s) the key "@monitor" runs
    Kubernetes' monitorNodeHealth: a node is healthy while its Lease
    (kube-node-lease/<node>) or its Ready condition's lastHeartbeatTime
    changes; the time of the last change is this controller's own clock
    (the probe timestamp), so clocks of nodes do not matter. A node not
    heard of for node-monitor-grace-period (40 s) gets its conditions set
    to Unknown (reason NodeStatusUnknown, "Kubelet stopped posting node
    status.") and its pods marked not Ready. Then the taints follow the
    Ready condition: node.kubernetes.io/unreachable (Unknown) or not-ready
    (False), NoSchedule at once and NoExecute through a per-zone rate
    limiter (one node per 1/qps seconds, burst 1): node-eviction-rate 0.1
    in a healthy zone, secondary-node-eviction-rate 0.01 in a partially
    disrupted one (more than 2 nodes and at least unhealthy-zone-threshold
    55% not ready) of more than large-cluster-size-threshold (50) nodes,
    none in a smaller one; a fully disrupted zone (no node ready) keeps
    the normal rate unless every zone is fully disrupted: then nothing is
    tainted NoExecute and those taints are removed (the control plane is
    the likelier culprit). A node Ready again loses the taints at once.

    Taint eviction. A pod key ("<namespace>/<name>") is synced whenever
    the pod or the NoExecute taints of its node change: a pod that does
    not tolerate every NoExecute taint is deleted at once; one that does
    is deleted after the least tolerationSeconds of the tolerations used,
    counted from the taints' timeAdded (or from when this controller first
    saw the pod there); a toleration without tolerationSeconds keeps it
    forever. */
#include "coordination.pb-c.h"
#include "node_util.h"

#define S_MONITOR_KEY "@monitor"
#define S_NODE_LEASE_NAMESPACE "kube-node-lease"
#define S_ZONE_LABEL "topology.kubernetes.io/zone"
#define S_REGION_LABEL "topology.kubernetes.io/region"

typedef enum { S_ZONE_NORMAL, S_ZONE_PARTIAL, S_ZONE_FULL } s_zone_state_t;

static const char *const s_zone_state_names[] = {"Normal", "PartialDisruption",
                                                 "FullDisruption"};

//  A zone's tally of one pass and its NoExecute tainting limiter
typedef struct {
    char *name;
    int ready;
    int not_ready;
    s_zone_state_t state;
    bool seen;
    double qps;
    double tokens;
    int64_t last_ms;
} s_zone_t;

typedef struct {
    const zube_ctrl_host_t *host;
    int64_t grace_ms;
    int64_t period_ms;
    double eviction_qps;
    double secondary_qps;
    double unhealthy_threshold;
    int large_cluster;
    //  node name -> probe time (monotonic ms); text: last lease renewTime
    //  and Ready heartbeat seen, joined
    zn_map_t health;
    //  pod key -> when first seen on a NoExecute-tainted node (wall ms)
    zn_map_t first_seen;
    s_zone_t *zones;
    size_t zone_count;
    int64_t pass;
} s_self_t;

static const char *const s_watches[] = {"nodes", "pods", "leases", NULL};

static int64_t
s_mono_ms (s_self_t *self)
{
    return self->host->base->monotonic_ns (self->host->base) / 1000000;
}

static int64_t
s_wall_ms (s_self_t *self)
{
    return self->host->base->time_ms (self->host->base);
}

static bool
s_setting_ms (const zube_ctrl_host_t *host, const char *key, int64_t *value, char *error,
              size_t error_size)
{
    const char *text = host->base->config_get (host->base, key);
    if (!text)
        return true;
    int64_t ms = zn_parse_duration_ms (text);
    if (ms <= 0) {
        snprintf (error, error_size,
                  "nodelifecycle: %s: expected a duration (\"40s\"), got \"%s\"", key,
                  text);
        return false;
    }
    *value = ms;
    return true;
}

static bool
s_setting_number (const zube_ctrl_host_t *host, const char *key, double *value,
                  double max, char *error, size_t error_size)
{
    const char *text = host->base->config_get (host->base, key);
    if (!text)
        return true;
    char *end = NULL;
    double number = strtod (text, &end);
    if (end == text || *end || number < 0 || number > max) {
        snprintf (error, error_size,
                  "nodelifecycle: %s: expected a number 0..%g, got \"%s\"", key, max,
                  text);
        return false;
    }
    *value = number;
    return true;
}

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    *self = (s_self_t){.host = host,
                       .grace_ms = 40000,
                       .period_ms = 5000,
                       .eviction_qps = 0.1,
                       .secondary_qps = 0.01,
                       .unhealthy_threshold = 0.55,
                       .large_cluster = 50};
    double large = self->large_cluster;
    if (!s_setting_ms (host, "node-monitor-grace-period", &self->grace_ms, error,
                       error_size) ||
        !s_setting_ms (host, "node-monitor-period", &self->period_ms, error,
                       error_size) ||
        !s_setting_number (host, "node-eviction-rate", &self->eviction_qps, 1e6, error,
                           error_size) ||
        !s_setting_number (host, "secondary-node-eviction-rate", &self->secondary_qps,
                           1e6, error, error_size) ||
        !s_setting_number (host, "unhealthy-zone-threshold", &self->unhealthy_threshold,
                           1, error, error_size) ||
        !s_setting_number (host, "large-cluster-size-threshold", &large, 1e9, error,
                           error_size)) {
        free (self);
        return NULL;
    }
    self->large_cluster = (int)large;
    host->base->log (host->base, ZUBE_LOG_INFO,
                     "msg=\"node lifecycle\" grace_ms=%" PRId64 " period_ms=%" PRId64
                     " eviction_qps=%g secondary_qps=%g",
                     self->grace_ms, self->period_ms, self->eviction_qps,
                     self->secondary_qps);
    host->enqueue (host, S_MONITOR_KEY);
    return self;
}

static void
s_destroy (void *arg)
{
    s_self_t *self = arg;
    zn_map_clear (&self->health);
    zn_map_clear (&self->first_seen);
    for (size_t i = 0; i < self->zone_count; i++)
        free (self->zones[i].name);
    free (self->zones);
    free (self);
}

//  ---------------------------------------------------------------------
//  Event handlers: pods whose node's NoExecute taints may matter

static bool
s_has_no_execute (const Zube__Node *node)
{
    for (size_t i = 0; node && node->spec && i < node->spec->n_taints; i++)
        if (zc_streq (node->spec->taints[i]->effect, "NoExecute"))
            return true;
    return false;
}

static bool
s_no_execute_equal (const Zube__Node *a, const Zube__Node *b)
{
    size_t na = 0, nb = 0;
    for (size_t i = 0; a->spec && i < a->spec->n_taints; i++)
        na += zc_streq (a->spec->taints[i]->effect, "NoExecute");
    for (size_t i = 0; b->spec && i < b->spec->n_taints; i++) {
        const Zube__Taint *taint = b->spec->taints[i];
        if (!zc_streq (taint->effect, "NoExecute"))
            continue;
        nb++;
        const Zube__Taint *same = zn_taint (a, taint->key, "NoExecute");
        if (!same ||
            !zc_streq (same->value ? same->value : "", taint->value ? taint->value : ""))
            return false;
    }
    return na == nb;
}

static void
s_enqueue_pod (s_self_t *self, const Zube__Pod *pod)
{
    if (!pod->metadata || zc_empty (pod->spec ? pod->spec->node_name : NULL))
        return;
    const Zube__Node *node = (const Zube__Node *)self->host->get (
        self->host, "nodes", NULL, pod->spec->node_name);
    if (!s_has_no_execute (node))
        return;
    char key[512];
    if (zube_ctrl_key (pod->metadata->namespace_, pod->metadata->name, key, sizeof key) >
        0)
        self->host->enqueue (self->host, key);
}

static void
s_enqueue_node_pods (s_self_t *self, const Zube__Node *node)
{
    if (!node->metadata || !node->metadata->name)
        return;
    size_t count = 0;
    const ProtobufCMessage **pods = self->host->list_index (
        self->host, "pods", ZUBE_CTRL_INDEX_NODE_NAME, node->metadata->name, &count);
    for (size_t i = 0; i < count; i++) {
        const Zube__Pod *pod = (const Zube__Pod *)pods[i];
        char key[512];
        if (pod->metadata && zube_ctrl_key (pod->metadata->namespace_,
                                            pod->metadata->name, key, sizeof key) > 0)
            self->host->enqueue (self->host, key);
    }
    self->host->free_list (self->host, pods);
}

static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    if (strcmp (resource, "pods") == 0)
        s_enqueue_pod (self, (const Zube__Pod *)object);
    else if (strcmp (resource, "nodes") == 0 &&
             s_has_no_execute ((const Zube__Node *)object))
        s_enqueue_node_pods (self, (const Zube__Node *)object);
}

static void
s_on_update (void *arg, const char *resource, const ProtobufCMessage *old_object,
             const ProtobufCMessage *new_object)
{
    s_self_t *self = arg;
    if (strcmp (resource, "pods") == 0)
        s_enqueue_pod (self, (const Zube__Pod *)new_object);
    else if (strcmp (resource, "nodes") == 0 &&
             !s_no_execute_equal ((const Zube__Node *)old_object,
                                  (const Zube__Node *)new_object))
        s_enqueue_node_pods (self, (const Zube__Node *)new_object);
}

static void
s_on_delete (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    const Zube__Pod *pod = (const Zube__Pod *)object;
    char key[512];
    if (strcmp (resource, "pods") == 0 && pod->metadata &&
        zube_ctrl_key (pod->metadata->namespace_, pod->metadata->name, key, sizeof key) >
            0)
        zn_map_remove (&self->first_seen, key);
}

//  ---------------------------------------------------------------------
//  Node health

//  Sets every condition the kubelet posts (and a missing Ready) to
//  Unknown, as Kubernetes' tryUpdateNodeHealth does; the node's status
//  is written through the status subresource; *updated_p: the node as
//  stored (the caller's), so the taints are written at its
//  resourceVersion in the same pass.
static zube_status_t
s_mark_unknown (s_self_t *self, const Zube__Node *cached, bool never_posted,
                Zube__Node **updated_p)
{
    Zube__Node *node = (Zube__Node *)zc_copy (&cached->base, &zube__node__descriptor);
    if (!node)
        return ZUBE_INTERNAL;
    if (!node->status) {
        node->status = malloc (sizeof *node->status);
        if (!node->status) {
            zc_free (node);
            return ZUBE_INTERNAL;
        }
        zube__node_status__init (node->status);
    }
    Zube__NodeStatus *status = node->status;
    const char *reason = never_posted ? "NodeStatusNeverUpdated" : "NodeStatusUnknown";
    const char *message = never_posted ? "Kubelet never posted node status."
                                       : "Kubelet stopped posting node status.";
    char now[40];
    zc_now_rfc3339 (now, sizeof now);
    static const char *const types[] = {"Ready", "MemoryPressure", "DiskPressure",
                                        "PIDPressure"};
    zube_status_t answer = ZUBE_OK;
    for (size_t t = 0; t < 4 && answer == ZUBE_OK; t++) {
        Zube__NodeCondition *condition = NULL;
        for (size_t i = 0; i < status->n_conditions; i++)
            if (zc_streq (status->conditions[i]->type, types[t]))
                condition = status->conditions[i];
        if (!condition) {
            if (t > 0)
                continue; //  only Ready is made when missing
            Zube__NodeCondition **grown =
                realloc (status->conditions, (status->n_conditions + 1) * sizeof *grown);
            condition = malloc (sizeof *condition);
            if (grown)
                status->conditions = grown;
            if (!grown || !condition) {
                free (condition);
                answer = ZUBE_INTERNAL;
                break;
            }
            zube__node_condition__init (condition);
            condition->type = strdup (types[t]);
            status->conditions[status->n_conditions++] = condition;
        }
        if (zc_streq (condition->status, "Unknown"))
            continue;
        free (condition->status);
        free (condition->reason);
        free (condition->message);
        free (condition->last_transition_time);
        condition->status = strdup ("Unknown");
        condition->reason = strdup (reason);
        condition->message = strdup (message);
        condition->last_transition_time = strdup (now);
    }
    char text[512] = "";
    if (answer == ZUBE_OK)
        answer = self->host->update (self->host, "nodes", &node->base, "status",
                                     (ProtobufCMessage **)updated_p, text, sizeof text);
    if (answer != ZUBE_OK)
        self->host->base->log (
            self->host->base, ZUBE_LOG_WARN,
            "msg=\"cannot mark the node Unknown\" node=%s error=\"%s\"",
            cached->metadata->name, text);
    zc_free (node);
    return answer;
}

//  Kubernetes' MarkPodsNotReady: the Ready condition of the node's pods
//  goes False, so Services stop sending them traffic.
static void
s_mark_pods_not_ready (s_self_t *self, const char *node_name)
{
    size_t count = 0;
    const ProtobufCMessage **pods = self->host->list_index (
        self->host, "pods", ZUBE_CTRL_INDEX_NODE_NAME, node_name, &count);
    char now[40];
    zc_now_rfc3339 (now, sizeof now);
    for (size_t i = 0; i < count; i++) {
        const Zube__Pod *cached = (const Zube__Pod *)pods[i];
        if (!zc_pod_ready (cached))
            continue;
        Zube__Pod *pod = (Zube__Pod *)zc_copy (&cached->base, &zube__pod__descriptor);
        if (!pod)
            break;
        for (size_t c = 0; c < pod->status->n_conditions; c++) {
            Zube__PodCondition *condition = pod->status->conditions[c];
            if (!zc_streq (condition->type, "Ready"))
                continue;
            free (condition->status);
            free (condition->last_transition_time);
            condition->status = strdup ("False");
            condition->last_transition_time = strdup (now);
        }
        char text[512] = "";
        if (self->host->update (self->host, "pods", &pod->base, "status", NULL, text,
                                sizeof text) != ZUBE_OK)
            self->host->base->log (
                self->host->base, ZUBE_LOG_WARN,
                "msg=\"cannot mark the pod not ready\" pod=%s/%s error=\"%s\"",
                pod->metadata->namespace_, pod->metadata->name, text);
        zc_free (pod);
    }
    self->host->free_list (self->host, pods);
}

//  Probes the node: answers its Ready status after this pass ("True",
//  "False", "Unknown", or NULL when it never posted one and is in grace);
//  *updated_p: the node as written when it was marked Unknown.
static const char *
s_probe (s_self_t *self, const Zube__Node *node, int64_t now, Zube__Node **updated_p)
{
    const char *name = node->metadata->name;
    zn_entry_t *entry = zn_map_put (&self->health, name);
    const Zube__NodeCondition *ready = zn_condition (node, "Ready");
    const char *status = ready ? ready->status : NULL;
    if (!entry)
        return status;
    const Zube__Lease *lease = (const Zube__Lease *)self->host->get (
        self->host, "leases", S_NODE_LEASE_NAMESPACE, name);
    char seen[256];
    snprintf (seen, sizeof seen, "%s|%s",
              lease && lease->spec && lease->spec->renew_time ? lease->spec->renew_time
                                                              : "",
              ready && ready->last_heartbeat_time ? ready->last_heartbeat_time : "");
    bool fresh = entry->mark == 0;
    if (zn_entry_set_text (entry, seen) || fresh)
        entry->value = now;
    entry->mark = self->pass;
    if (now - entry->value < self->grace_ms || zc_streq (status, "Unknown"))
        return status;
    bool was_ready = zc_streq (status, "True");
    if (s_mark_unknown (self, node, ready == NULL, updated_p) != ZUBE_OK)
        return status;
    self->host->base->log (
        self->host->base, ZUBE_LOG_INFO,
        "msg=\"node not heard of: Ready Unknown\" node=%s silent_ms=%" PRId64, name,
        now - entry->value);
    self->host->event (self->host, &node->base, ZUBE_CTRL_EVENT_NORMAL, "NodeNotReady",
                       "Node %s status is now: NodeNotReady", name);
    if (was_ready)
        s_mark_pods_not_ready (self, name);
    return "Unknown";
}

static s_zone_t *
s_zone (s_self_t *self, const Zube__Node *node)
{
    const char *region = zc_label (node->metadata, S_REGION_LABEL);
    const char *zone = zc_label (node->metadata, S_ZONE_LABEL);
    char name[512];
    snprintf (name, sizeof name, "%s:%s", region ? region : "", zone ? zone : "");
    for (size_t i = 0; i < self->zone_count; i++)
        if (strcmp (self->zones[i].name, name) == 0)
            return &self->zones[i];
    s_zone_t *grown = realloc (self->zones, (self->zone_count + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    self->zones = grown;
    s_zone_t *made = &self->zones[self->zone_count];
    *made = (s_zone_t){.name = strdup (name), .qps = self->eviction_qps, .tokens = 1};
    if (!made->name)
        return NULL;
    self->zone_count++;
    return made;
}

//  Kubernetes' ComputeZoneState and the limiter each state gets.
static void
s_zone_settle (s_self_t *self, s_zone_t *zone, int64_t now)
{
    s_zone_state_t state = S_ZONE_NORMAL;
    int size = zone->ready + zone->not_ready;
    if (zone->ready == 0 && zone->not_ready > 0)
        state = S_ZONE_FULL;
    else if (zone->not_ready > 2 &&
             (double)zone->not_ready / (double)size >= self->unhealthy_threshold)
        state = S_ZONE_PARTIAL;
    double qps = self->eviction_qps;
    if (state == S_ZONE_PARTIAL)
        qps = size > self->large_cluster ? self->secondary_qps : 0;
    if (state != zone->state)
        self->host->base->log (
            self->host->base, ZUBE_LOG_INFO,
            "msg=\"zone state\" zone=\"%s\" state=%s ready=%d not_ready=%d "
            "qps=%g",
            zone->name, s_zone_state_names[state], zone->ready, zone->not_ready, qps);
    zone->state = state;
    if (qps != zone->qps) {
        zone->qps = qps;
        zone->tokens = qps > 0 ? 1 : 0;
        zone->last_ms = now;
    }
}

//  Takes a token of the zone's limiter (burst 1); else answers how long
//  until one is due (-1: never at this rate).
static int64_t
s_zone_take (s_zone_t *zone, int64_t now)
{
    if (zone->qps <= 0)
        return -1;
    if (zone->last_ms)
        zone->tokens += (double)(now - zone->last_ms) * zone->qps / 1000.0;
    if (zone->tokens > 1)
        zone->tokens = 1;
    zone->last_ms = now;
    if (zone->tokens >= 1) {
        zone->tokens -= 1;
        return 0;
    }
    return (int64_t)((1 - zone->tokens) * 1000.0 / zone->qps) + 1;
}

//  Kubernetes' node-lifecycle taints: key of the taint Ready status wants
static const char *
s_wanted_key (const char *ready)
{
    if (zc_streq (ready, "False"))
        return ZN_TAINT_NOT_READY;
    if (zc_streq (ready, "Unknown"))
        return ZN_TAINT_UNREACHABLE;
    return NULL;
}

static bool
s_ours (const Zube__Taint *taint)
{
    return zc_streq (taint->key, ZN_TAINT_NOT_READY) ||
           zc_streq (taint->key, ZN_TAINT_UNREACHABLE);
}

//  Writes the node's taints so that ours are exactly no_schedule and
//  no_execute (keys, or NULL for none), others kept.
static zube_status_t
s_write_taints (s_self_t *self, const Zube__Node *cached, const char *no_schedule,
                const char *no_execute)
{
    Zube__Node *node = (Zube__Node *)zc_copy (&cached->base, &zube__node__descriptor);
    if (!node)
        return ZUBE_INTERNAL;
    if (!node->spec) {
        node->spec = malloc (sizeof *node->spec);
        if (!node->spec) {
            zc_free (node);
            return ZUBE_INTERNAL;
        }
        zube__node_spec__init (node->spec);
    }
    Zube__NodeSpec *spec = node->spec;
    size_t kept = 0;
    for (size_t i = 0; i < spec->n_taints; i++) {
        Zube__Taint *taint = spec->taints[i];
        bool keep =
            !s_ours (taint) ||
            (zc_streq (taint->effect, "NoSchedule") &&
             zc_streq (taint->key, no_schedule)) ||
            (zc_streq (taint->effect, "NoExecute") && zc_streq (taint->key, no_execute));
        if (keep) {
            spec->taints[kept++] = taint;
            if (zc_streq (taint->key, no_schedule) &&
                zc_streq (taint->effect, "NoSchedule"))
                no_schedule = NULL;
            else if (zc_streq (taint->key, no_execute) &&
                     zc_streq (taint->effect, "NoExecute"))
                no_execute = NULL;
        } else
            zc_free (taint);
    }
    spec->n_taints = kept;
    Zube__Taint **grown = realloc (spec->taints, (kept + 2) * sizeof *grown);
    if (!grown) {
        zc_free (node);
        return ZUBE_INTERNAL;
    }
    spec->taints = grown;
    char now[40];
    zc_now_rfc3339 (now, sizeof now);
    const char *add[2][2] = {{no_schedule, "NoSchedule"}, {no_execute, "NoExecute"}};
    for (size_t a = 0; a < 2; a++) {
        if (!add[a][0])
            continue;
        Zube__Taint *taint = malloc (sizeof *taint);
        if (!taint)
            break;
        zube__taint__init (taint);
        taint->key = strdup (add[a][0]);
        taint->effect = strdup (add[a][1]);
        taint->time_added = strdup (now);
        spec->taints[spec->n_taints++] = taint;
    }
    char text[512] = "";
    zube_status_t status = self->host->update (self->host, "nodes", &node->base, NULL,
                                               NULL, text, sizeof text);
    if (status != ZUBE_OK)
        self->host->base->log (
            self->host->base, ZUBE_LOG_WARN,
            "msg=\"cannot write the node's taints\" node=%s error=\"%s\"",
            cached->metadata->name, text);
    zc_free (node);
    return status;
}

//  One node's taints after its pass: answers the delay until a token of
//  its zone would allow a NoExecute taint it waits for (0: none waiting).
static int64_t
s_taint_node (s_self_t *self, const Zube__Node *node, const char *ready, s_zone_t *zone,
              bool all_disrupted, int64_t now)
{
    const char *want = s_wanted_key (ready);
    const char *have_schedule = NULL, *have_execute = NULL;
    bool extra = false;
    for (size_t i = 0; node->spec && i < node->spec->n_taints; i++) {
        const Zube__Taint *taint = node->spec->taints[i];
        if (!s_ours (taint))
            continue;
        const char **slot = zc_streq (taint->effect, "NoSchedule")  ? &have_schedule
                            : zc_streq (taint->effect, "NoExecute") ? &have_execute
                                                                    : NULL;
        if (!slot || *slot)
            extra = true; //  a duplicate or an effect of ours we never set
        else
            *slot = taint->key;
    }
    const char *no_execute = want;
    int64_t wait = 0;
    if (!want || all_disrupted)
        no_execute = NULL;
    else if (!have_execute) {
        //  A new NoExecute taint takes a token; swapping not-ready and
        //  unreachable does not (Kubernetes' SwapNodeControllerTaint)
        int64_t due = zone ? s_zone_take (zone, now) : 0;
        if (due != 0) {
            no_execute = NULL;
            wait = due;
        }
    }
    bool same = !extra &&
                zc_streq (have_schedule ? have_schedule : "", want ? want : "") &&
                zc_streq (have_execute ? have_execute : "", no_execute ? no_execute : "");
    if (same)
        return wait;
    if (s_write_taints (self, node, want, no_execute) != ZUBE_OK) {
        if (no_execute && !have_execute && zone)
            zone->tokens += 1; //  the token was not used
        return wait ? wait : self->period_ms;
    }
    if (no_execute && !zc_streq (have_execute, no_execute))
        self->host->base->log (self->host->base, ZUBE_LOG_INFO,
                               "msg=\"node tainted NoExecute\" node=%s taint=%s",
                               node->metadata->name, no_execute);
    else if (!no_execute && have_execute)
        self->host->base->log (self->host->base, ZUBE_LOG_INFO,
                               "msg=\"node NoExecute taint removed\" node=%s taint=%s",
                               node->metadata->name, have_execute);
    return wait;
}

//  Kubernetes' monitorNodeHealth and doNoExecuteTaintingPass.
static zube_status_t
s_monitor (s_self_t *self)
{
    int64_t now = s_mono_ms (self);
    self->pass++;
    size_t count = 0;
    const ProtobufCMessage **nodes =
        self->host->list (self->host, "nodes", NULL, NULL, &count);
    const char **ready = count ? calloc (count, sizeof *ready) : NULL;
    s_zone_t **zone_of = count ? calloc (count, sizeof *zone_of) : NULL;
    Zube__Node **written = count ? calloc (count, sizeof *written) : NULL;
    if (count && (!ready || !zone_of || !written)) {
        free (ready);
        free (zone_of);
        free (written);
        self->host->free_list (self->host, nodes);
        self->host->enqueue_after (self->host, S_MONITOR_KEY, self->period_ms);
        return ZUBE_OK;
    }
    for (size_t z = 0; z < self->zone_count; z++)
        self->zones[z].ready = self->zones[z].not_ready = 0;
    for (size_t i = 0; i < count; i++) {
        const Zube__Node *node = (const Zube__Node *)nodes[i];
        if (!node->metadata || !node->metadata->name)
            continue;
        ready[i] = s_probe (self, node, now, &written[i]);
        zone_of[i] = s_zone (self, node);
        if (zone_of[i]) {
            if (zc_streq (ready[i], "True"))
                zone_of[i]->ready++;
            else
                zone_of[i]->not_ready++;
        }
    }
    zn_map_sweep (&self->health, self->pass);
    bool all_disrupted = false;
    size_t live_zones = 0, full_zones = 0;
    for (size_t z = 0; z < self->zone_count; z++) {
        s_zone_t *zone = &self->zones[z];
        if (zone->ready + zone->not_ready == 0)
            continue;
        s_zone_settle (self, zone, now);
        live_zones++;
        full_zones += zone->state == S_ZONE_FULL;
    }
    all_disrupted = live_zones > 0 && full_zones == live_zones;
    int64_t next = self->period_ms;
    for (size_t i = 0; i < count; i++) {
        const Zube__Node *node = written[i] ? written[i] : (const Zube__Node *)nodes[i];
        if (!node->metadata || !node->metadata->name)
            continue;
        int64_t wait =
            s_taint_node (self, node, ready[i], zone_of[i], all_disrupted, now);
        if (wait > 0 && wait < next)
            next = wait;
    }
    for (size_t i = 0; i < count; i++)
        zc_free (written[i]);
    free (written);
    free (ready);
    free (zone_of);
    self->host->free_list (self->host, nodes);
    self->host->enqueue_after (self->host, S_MONITOR_KEY, next);
    return ZUBE_OK;
}

//  ---------------------------------------------------------------------
//  Taint eviction

static zube_status_t
s_evict (s_self_t *self, const Zube__Pod *pod, const char *key, char *error,
         size_t error_size)
{
    zube_ctrl_delete_options_t options = {.struct_size = sizeof options,
                                          .uid = pod->metadata->uid};
    self->host->event (self->host, &pod->base, ZUBE_CTRL_EVENT_NORMAL,
                       "TaintManagerEviction", "Marking for deletion Pod %s", key);
    zube_status_t status =
        self->host->delete_ (self->host, "pods", pod->metadata->namespace_,
                             pod->metadata->name, &options, error, error_size);
    zn_map_remove (&self->first_seen, key);
    self->host->base->log (self->host->base, ZUBE_LOG_INFO,
                           "msg=\"pod evicted\" pod=%s node=%s status=%d", key,
                           pod->spec->node_name, (int)status);
    return status == ZUBE_NOT_FOUND || status == ZUBE_CONFLICT ? ZUBE_OK : status;
}

static zube_status_t
s_sync_pod (s_self_t *self, const char *key, char *error, size_t error_size)
{
    char namespace_[256], name[256];
    if (zube_ctrl_split_key (key, namespace_, name, sizeof name) != 0)
        return ZUBE_OK;
    const Zube__Pod *pod =
        (const Zube__Pod *)self->host->get (self->host, "pods", namespace_, name);
    const Zube__Node *node = pod && pod->spec && !zc_empty (pod->spec->node_name)
                                 ? (const Zube__Node *)self->host->get (
                                       self->host, "nodes", NULL, pod->spec->node_name)
                                 : NULL;
    if (!pod || zc_deleting (pod->metadata) || !s_has_no_execute (node)) {
        zn_map_remove (&self->first_seen, key);
        return ZUBE_OK;
    }
    //  Kubernetes' GetMatchingTolerations and getMinTolerationTime
    int64_t min_seconds = INT64_MAX;
    int64_t latest_added = 0;
    bool all_added = true;
    for (size_t i = 0; i < node->spec->n_taints; i++) {
        const Zube__Taint *taint = node->spec->taints[i];
        if (!zc_streq (taint->effect, "NoExecute"))
            continue;
        const Zube__Toleration *used =
            zn_toleration_for (pod->spec->tolerations, pod->spec->n_tolerations, taint);
        if (!used)
            return s_evict (self, pod, key, error, error_size);
        if (used->has_toleration_seconds && used->toleration_seconds < min_seconds)
            min_seconds = used->toleration_seconds > 0 ? used->toleration_seconds : 0;
        int64_t added = zc_parse_time (taint->time_added);
        if (added <= 0)
            all_added = false;
        else if (added > latest_added)
            latest_added = added;
    }
    if (min_seconds == INT64_MAX) {
        zn_map_remove (&self->first_seen, key);
        return ZUBE_OK; //  tolerated forever
    }
    int64_t wall = s_wall_ms (self);
    zn_entry_t *seen = zn_map_put (&self->first_seen, key);
    if (seen && seen->value == 0)
        seen->value = wall;
    int64_t start = all_added && latest_added ? latest_added * 1000
                    : seen                    ? seen->value
                                              : wall;
    int64_t due = start + min_seconds * 1000;
    if (due <= wall)
        return s_evict (self, pod, key, error, error_size);
    self->host->enqueue_after (self->host, key, due - wall);
    return ZUBE_OK;
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    if (strcmp (key, S_MONITOR_KEY) == 0)
        return s_monitor (self);
    return s_sync_pod (self, key, error, error_size);
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "nodelifecycle",
    .watches = s_watches,
    //  One: its zone and eviction state is shared by every key's sync and
    //  not audited for interleaving (Kubernetes runs one monitor loop)
    .workers = 1,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .on_delete = s_on_delete,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "nodelifecycle", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_CONTROLLER, .ops = &s_ops,
                    .description =
                        "node health, NoExecute taints and taint-based eviction")
