/*  remote - RemotePolicy, the plugin built into zube-scheduler that asks a
    policy served by another process on the bus (any language: a Python
    process with pyzmq will do) to filter and score, in one request per
    cycle for all nodes at once:

        pluginConfig:
        - name: RemotePolicy
          args: {policy: bin-packer, timeoutMs: 1000}

    calls service "scheduler.policy/bin-packer", method "filter" (every
    node of the cycle) at pre-filter and "score" (the feasible nodes) at
    pre-score; filter and score then read the answers. The calls go through
    a connection of their own, so nothing else runs on the scheduler's
    connection in the middle of a cycle. schemas/scheduler.proto has the
    messages; docs/scheduler.md the protocol. */
#define _GNU_SOURCE
#include "scheduler.pb-c.h"
#include "zs_sched.h"
#include "zube/bus.h"
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

//  The connection policies are called through (set by the service; NULL:
//  RemotePolicy cannot be created, as in the unit tests and the bench).
static zube_bus_t *s_bus;

void
zs_remote_set_bus (zube_bus_t *bus)
{
    s_bus = bus;
}

typedef struct {
    char service[300];
    int timeout_ms;
} s_self_t;

//  Verdicts and scores of one cycle, by node index.
typedef struct {
    size_t count;
    bool *feasible;
    char **reasons;
    int64_t *scores;
} s_cycle_t;

static void *
s_create (const zube_host_t *host, const zube_sched_args_t *args, char *error,
          size_t error_size)
{
    (void)host;
    if (!s_bus) {
        snprintf (error, error_size,
                  "%s: RemotePolicy needs zube-scheduler's bus connection", args->field);
        return NULL;
    }
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->timeout_ms = 1000;
    for (size_t i = 0; i < args->count; i++) {
        const char *key = args->keys[i], *value = args->values[i];
        if (streq (key, "policy"))
            snprintf (self->service, sizeof self->service, "scheduler.policy/%s", value);
        else if (streq (key, "timeoutMs")) {
            char *end = NULL;
            long ms = strtol (value, &end, 10);
            if (*end || ms < 1 || ms > 60000) {
                snprintf (error, error_size,
                          "%s.timeoutMs: Invalid value: \"%s\": must be from 1 to 60000",
                          args->field, value);
                free (self);
                return NULL;
            }
            self->timeout_ms = (int)ms;
        } else {
            snprintf (error, error_size, "%s.%s: unknown field (policy, timeoutMs)",
                      args->field, key);
            free (self);
            return NULL;
        }
    }
    if (!self->service[0]) {
        snprintf (error, error_size, "%s.policy: Required value", args->field);
        free (self);
        return NULL;
    }
    return self;
}

static void
s_destroy (void *self)
{
    free (self);
}

static void
s_cycle_free (void *self, void *cycle_data)
{
    (void)self;
    s_cycle_t *cycle = cycle_data;
    if (!cycle)
        return;
    for (size_t i = 0; cycle->reasons && i < cycle->count; i++)
        free (cycle->reasons[i]);
    free (cycle->reasons);
    free (cycle->feasible);
    free (cycle->scores);
    free (cycle);
}

static s_cycle_t *
s_cycle (void **cycle_data, size_t count)
{
    s_cycle_t *cycle = *cycle_data;
    if (!cycle) {
        cycle = calloc (1, sizeof *cycle);
        if (!cycle)
            return NULL;
        cycle->count = count;
        cycle->feasible = calloc (count + 1, sizeof *cycle->feasible);
        cycle->reasons = calloc (count + 1, sizeof *cycle->reasons);
        cycle->scores = calloc (count + 1, sizeof *cycle->scores);
        *cycle_data = cycle;
        if (!cycle->feasible || !cycle->reasons || !cycle->scores)
            return NULL;
    }
    return cycle;
}

//  Packs the request for nodes; the caller frees the result.
static uint8_t *
s_request (const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
           const zube_sched_node_t *const *nodes, size_t count, size_t *size_p)
{
    Zube__PolicyRequest request = ZUBE__POLICY_REQUEST__INIT;
    request.profile = (char *)cycle->profile;
    request.pod = (Zube__Pod *)pod->pod;
    Zube__PolicyNode *items = calloc (count + 1, sizeof *items);
    Zube__PolicyNode **pointers = calloc (count + 1, sizeof *pointers);
    uint8_t *data = NULL;
    if (items && pointers) {
        for (size_t i = 0; i < count; i++) {
            const zube_sched_node_t *node = nodes[i];
            const Zube__Node *object = node->node;
            zube__policy_node__init (&items[i]);
            items[i].name = (char *)node->name;
            //  Labels and taints as the node object has them
            if (object && object->metadata) {
                items[i].n_labels = object->metadata->n_labels;
                items[i].labels =
                    (Zube__PolicyNode__LabelsEntry **)object->metadata->labels;
            }
            if (object && object->spec) {
                items[i].n_taints = object->spec->n_taints;
                items[i].taints = object->spec->taints;
            }
            items[i].has_unschedulable = 1;
            items[i].unschedulable = node->unschedulable;
            items[i].has_allocatable_milli_cpu = items[i].has_allocatable_memory = 1;
            items[i].has_allocatable_pods = items[i].has_requested_milli_cpu = 1;
            items[i].has_requested_memory = items[i].has_pod_count = 1;
            items[i].allocatable_milli_cpu = node->allocatable.milli_cpu;
            items[i].allocatable_memory = node->allocatable.memory;
            items[i].allocatable_pods = node->allocatable.pods;
            items[i].requested_milli_cpu = node->requested.milli_cpu;
            items[i].requested_memory = node->requested.memory;
            items[i].pod_count = (int32_t)node->pod_count;
            pointers[i] = &items[i];
        }
        request.n_nodes = count;
        request.nodes = pointers;
        *size_p = zube__policy_request__get_packed_size (&request);
        data = malloc (*size_p ? *size_p : 1);
        if (data)
            zube__policy_request__pack (&request, data);
    }
    free (items);
    free (pointers);
    return data;
}

//  One call to the policy; the reply's payload or NULL with reason.
static zube_bus_reply_t *
s_call (s_self_t *self, const char *method, const zube_sched_cycle_t *cycle,
        const zube_sched_pod_t *pod, const zube_sched_node_t *const *nodes, size_t count,
        char *reason, size_t reason_size)
{
    size_t size = 0;
    uint8_t *data = s_request (cycle, pod, nodes, count, &size);
    if (!data) {
        snprintf (reason, reason_size, "out of memory");
        return NULL;
    }
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (s_bus, self->service, method, data, size, self->timeout_ms,
                            &reply);
    free (data);
    if (rc != 0 || reply->status != ZUBE_OK) {
        snprintf (reason, reason_size, "%s %s: %s", self->service, method,
                  reply && reply->error ? reply->error : "no answer");
        zube_bus_reply_destroy (&reply);
        return NULL;
    }
    return reply;
}

static zube_sched_code_t
s_pre_filter (void *self_, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
              void **cycle_data, char *reason, size_t reason_size)
{
    s_self_t *self = self_;
    s_cycle_t *verdicts = s_cycle (cycle_data, cycle->node_count);
    if (!verdicts) {
        snprintf (reason, reason_size, "out of memory");
        return ZUBE_SCHED_ERROR;
    }
    zube_bus_reply_t *reply = s_call (self, "filter", cycle, pod, cycle->nodes,
                                      cycle->node_count, reason, reason_size);
    if (!reply)
        return ZUBE_SCHED_ERROR;
    Zube__PolicyFilterReply *answer =
        zube__policy_filter_reply__unpack (NULL, reply->payload_size, reply->payload);
    zube_bus_reply_destroy (&reply);
    if (!answer || answer->n_feasible != cycle->node_count) {
        snprintf (reason, reason_size, "%s filter: expected %zu verdicts, got %zu",
                  self->service, cycle->node_count, answer ? answer->n_feasible : 0);
        if (answer)
            zube__policy_filter_reply__free_unpacked (answer, NULL);
        return ZUBE_SCHED_ERROR;
    }
    for (size_t i = 0; i < cycle->node_count; i++) {
        verdicts->feasible[i] = answer->feasible[i];
        const char *why = i < answer->n_reasons ? answer->reasons[i] : NULL;
        if (!answer->feasible[i])
            verdicts->reasons[i] = strdup (why && *why ? why : self->service);
    }
    zube__policy_filter_reply__free_unpacked (answer, NULL);
    return ZUBE_SCHED_SUCCESS;
}

static zube_sched_code_t
s_filter (void *self, void *cycle_data, const zube_sched_pod_t *pod,
          const zube_sched_node_t *node, char *reason, size_t reason_size)
{
    (void)self, (void)pod;
    s_cycle_t *verdicts = cycle_data;
    if (!verdicts || node->index >= verdicts->count || verdicts->feasible[node->index])
        return ZUBE_SCHED_SUCCESS;
    snprintf (reason, reason_size, "%s",
              verdicts->reasons[node->index] ? verdicts->reasons[node->index]
                                             : "RemotePolicy");
    return ZUBE_SCHED_UNSCHEDULABLE;
}

static zube_sched_code_t
s_pre_score (void *self_, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, size_t count, void **cycle_data)
{
    s_self_t *self = self_;
    s_cycle_t *data = s_cycle (cycle_data, cycle->node_count);
    char reason[512];
    zube_bus_reply_t *reply =
        data ? s_call (self, "score", cycle, pod, nodes, count, reason, sizeof reason)
             : NULL;
    if (!reply)
        return ZUBE_SCHED_SKIP;
    Zube__PolicyScoreReply *answer =
        zube__policy_score_reply__unpack (NULL, reply->payload_size, reply->payload);
    zube_bus_reply_destroy (&reply);
    if (!answer || answer->n_scores != count) {
        if (answer)
            zube__policy_score_reply__free_unpacked (answer, NULL);
        return ZUBE_SCHED_SKIP;
    }
    for (size_t i = 0; i < count; i++)
        if (nodes[i]->index < data->count) {
            int64_t score = answer->scores[i];
            data->scores[nodes[i]->index] = score < 0 ? 0
                                            : score > ZUBE_SCHED_MAX_SCORE
                                                ? ZUBE_SCHED_MAX_SCORE
                                                : score;
        }
    zube__policy_score_reply__free_unpacked (answer, NULL);
    return ZUBE_SCHED_SUCCESS;
}

static zube_sched_code_t
s_score (void *self, void *cycle_data, const zube_sched_pod_t *pod,
         const zube_sched_node_t *node, int64_t *score)
{
    (void)self, (void)pod;
    s_cycle_t *data = cycle_data;
    *score = data && node->index < data->count ? data->scores[node->index] : 0;
    return ZUBE_SCHED_SUCCESS;
}

const zube_sched_ops_t zs_remote_policy_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "RemotePolicy",
    .create = s_create,
    .destroy = s_destroy,
    .pre_filter = s_pre_filter,
    .filter = s_filter,
    .pre_score = s_pre_score,
    .score = s_score,
    .cycle_free = s_cycle_free,
};
