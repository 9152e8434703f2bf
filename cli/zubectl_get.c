/*  zubectl get - list objects as kubectl prints them: a table with each
    kind's own columns (-o wide adds more), the objects as YAML or JSON (a
    `kind: List` for several), or their names; -w then prints every change
    from the apiserver's events on the bus (api/<resource>), repairing gaps
    with `watch since`. */
#define _GNU_SOURCE
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include "zube/selector.h"
#include "apps.pb-c.h"
#include "batch.pb-c.h"
#include "core.pb-c.h"
#include "zubectl.h"

#define S_CELLS 16
#define S_CELL_SIZE 1024

typedef struct {
    char text[S_CELLS][S_CELL_SIZE];
    int count;
} s_row_t;

static void
s_cell (s_row_t *row, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_cell (s_row_t *row, const char *format, ...)
{
    if (row->count >= S_CELLS)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (row->text[row->count++], S_CELL_SIZE, format, args);
    va_end (args);
}

static const char *
s_or (const char *text, const char *fallback)
{
    return text && *text ? text : fallback;
}

//  Appends item to a comma-separated cell.
static void
s_join (char *buf, size_t size, const char *item)
{
    size_t used = strlen (buf);
    snprintf (buf + used, size - used, "%s%s", used ? "," : "", item);
}

static int
s_compare_strings (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

//  "k=v,k2=v2" sorted by key, as --show-labels prints them.
static void
s_labels_text (const Zube__ObjectMeta *meta, char *buf, size_t size)
{
    buf[0] = 0;
    size_t count = meta ? meta->n_labels : 0;
    if (!count) {
        snprintf (buf, size, "<none>");
        return;
    }
    char **pairs = calloc (count, sizeof *pairs);
    for (size_t i = 0; pairs && i < count; i++)
        if (asprintf (&pairs[i], "%s=%s", s_or (meta->labels[i]->key, ""),
                      s_or (meta->labels[i]->value, ""))
            < 0)
            pairs[i] = NULL;
    if (pairs)
        qsort (pairs, count, sizeof *pairs, s_compare_strings);
    for (size_t i = 0; pairs && i < count; i++) {
        if (pairs[i])
            s_join (buf, size, pairs[i]);
        free (pairs[i]);
    }
    free (pairs);
}

static void
s_selector_text (const Zube__LabelSelector *selector, char *buf, size_t size)
{
    buf[0] = 0;
    zube_selector_t *parsed = NULL;
    char error[256];
    if (selector && zube_selector_from_message (selector, &parsed, error, sizeof error) == 0) {
        char *text = zube_selector_string (parsed);
        snprintf (buf, size, "%s", text && *text ? text : "<none>");
        free (text);
        zube_selector_destroy (&parsed);
    }
    else
        snprintf (buf, size, "<none>");
}

static void
s_containers_text (const Zube__PodTemplateSpec *template, char *names, char *images,
                   size_t size)
{
    names[0] = images[0] = 0;
    const Zube__PodSpec *spec = template ? template->spec : NULL;
    for (size_t i = 0; spec && i < spec->n_containers; i++) {
        s_join (names, size, s_or (spec->containers[i]->name, ""));
        s_join (images, size, s_or (spec->containers[i]->image, ""));
    }
}

//  ---------------------------------------------------------------------
//  Columns per kind

const char *
zubectl_pod_status (const Zube__Pod *pod, int *ready_p, int *total_p, int *restarts_p)
{
    static char reason[256];
    const Zube__PodStatus *status = pod->status;
    const Zube__PodSpec *spec = pod->spec;
    snprintf (reason, sizeof reason, "%s", s_or (status ? status->phase : NULL, "Pending"));
    if (status && status->reason && *status->reason)
        snprintf (reason, sizeof reason, "%s", status->reason);
    int ready = 0, restarts = 0;
    for (size_t i = status ? status->n_container_statuses : 0; i-- > 0;) {
        const Zube__ContainerStatus *container = status->container_statuses[i];
        restarts += container->restart_count;
        const Zube__ContainerState *state = container->state;
        if (state && state->waiting && state->waiting->reason && *state->waiting->reason)
            snprintf (reason, sizeof reason, "%s", state->waiting->reason);
        else
        if (state && state->terminated && state->terminated->reason && *state->terminated->reason)
            snprintf (reason, sizeof reason, "%s", state->terminated->reason);
        else
        if (state && state->terminated) {
            if (state->terminated->signal)
                snprintf (reason, sizeof reason, "Signal:%d", state->terminated->signal);
            else
                snprintf (reason, sizeof reason, "ExitCode:%d", state->terminated->exit_code);
        }
        else
        if (container->ready && state && state->running)
            ready++;
    }
    if (pod->metadata && pod->metadata->deletion_timestamp && *pod->metadata->deletion_timestamp)
        snprintf (reason, sizeof reason, "%s",
                  status && status->reason && strcmp (status->reason, "NodeLost") == 0
                      ? "Unknown"
                      : "Terminating");
    if (ready_p)
        *ready_p = ready;
    if (total_p)
        *total_p = spec ? (int) spec->n_containers : 0;
    if (restarts_p)
        *restarts_p = restarts;
    return reason;
}

static void
s_pod_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__Pod *pod = (const Zube__Pod *) object;
    int ready = 0, total = 0, restarts = 0;
    const char *status = zubectl_pod_status (pod, &ready, &total, &restarts);
    char age[32];
    s_cell (row, "%d/%d", ready, total);
    s_cell (row, "%s", status);
    s_cell (row, "%d", restarts);
    s_cell (row, "%s", zubectl_age (pod->metadata ? pod->metadata->creation_timestamp : NULL,
                                    age, sizeof age));
    if (!wide)
        return;
    s_cell (row, "%s", s_or (pod->status ? pod->status->pod_ip : NULL, "<none>"));
    s_cell (row, "%s", s_or (pod->spec ? pod->spec->node_name : NULL, "<none>"));
    s_cell (row, "%s", s_or (pod->status ? pod->status->nominated_node_name : NULL, "<none>"));
    size_t gates = pod->spec ? pod->spec->n_readiness_gates : 0;
    if (!gates)
        s_cell (row, "<none>");
    else {
        size_t met = 0;
        for (size_t g = 0; g < gates; g++)
            for (size_t c = 0; pod->status && c < pod->status->n_conditions; c++)
                if (pod->spec->readiness_gates[g]->condition_type
                    && pod->status->conditions[c]->type
                    && strcmp (pod->spec->readiness_gates[g]->condition_type,
                               pod->status->conditions[c]->type)
                           == 0
                    && s_or (pod->status->conditions[c]->status, "")[0] == 'T')
                    met++;
        s_cell (row, "%zu/%zu", met, gates);
    }
}

static void
s_node_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__Node *node = (const Zube__Node *) object;
    const Zube__NodeStatus *status = node->status;
    char text[S_CELL_SIZE] = "Unknown";
    for (size_t i = 0; status && i < status->n_conditions; i++)
        if (status->conditions[i]->type && strcmp (status->conditions[i]->type, "Ready") == 0)
            snprintf (text, sizeof text, "%s",
                      strcmp (s_or (status->conditions[i]->status, ""), "True") == 0 ? "Ready"
                                                                                     : "NotReady");
    if (node->spec && node->spec->unschedulable)
        s_join (text, sizeof text, "SchedulingDisabled");
    s_cell (row, "%s", text);
    text[0] = 0;
    const Zube__ObjectMeta *meta = node->metadata;
    for (size_t i = 0; meta && i < meta->n_labels; i++) {
        const char *key = s_or (meta->labels[i]->key, "");
        if (strncmp (key, "node-role.kubernetes.io/", 24) == 0 && key[24])
            s_join (text, sizeof text, key + 24);
        else
        if (strcmp (key, "kubernetes.io/role") == 0 && meta->labels[i]->value)
            s_join (text, sizeof text, meta->labels[i]->value);
    }
    s_cell (row, "%s", s_or (text, "<none>"));
    char age[32];
    s_cell (row, "%s", zubectl_age (meta ? meta->creation_timestamp : NULL, age, sizeof age));
    const Zube__NodeSystemInfo *info = status ? status->node_info : NULL;
    s_cell (row, "%s", s_or (info ? info->kubelet_version : NULL, ""));
    if (!wide)
        return;
    const char *internal = NULL, *external = NULL;
    for (size_t i = 0; status && i < status->n_addresses; i++) {
        const char *type = s_or (status->addresses[i]->type, "");
        if (!internal && strcmp (type, "InternalIP") == 0)
            internal = status->addresses[i]->address;
        if (!external && strcmp (type, "ExternalIP") == 0)
            external = status->addresses[i]->address;
    }
    s_cell (row, "%s", s_or (internal, "<none>"));
    s_cell (row, "%s", s_or (external, "<none>"));
    s_cell (row, "%s", s_or (info ? info->os_image : NULL, "<unknown>"));
    s_cell (row, "%s", s_or (info ? info->kernel_version : NULL, "<unknown>"));
    s_cell (row, "%s", s_or (info ? info->container_runtime_version : NULL, "<unknown>"));
}

static void
s_workload_wide (const Zube__PodTemplateSpec *template, const Zube__LabelSelector *selector,
                 s_row_t *row)
{
    char names[S_CELL_SIZE], images[S_CELL_SIZE], text[S_CELL_SIZE];
    s_containers_text (template, names, images, sizeof names);
    s_cell (row, "%s", s_or (names, "<none>"));
    s_cell (row, "%s", s_or (images, "<none>"));
    s_selector_text (selector, text, sizeof text);
    s_cell (row, "%s", text);
}

static void
s_deployment_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__Deployment *deployment = (const Zube__Deployment *) object;
    const Zube__DeploymentSpec *spec = deployment->spec;
    const Zube__DeploymentStatus *status = deployment->status;
    int desired = spec && spec->has_replicas ? spec->replicas : 1;
    char age[32];
    s_cell (row, "%d/%d", status ? status->ready_replicas : 0, desired);
    s_cell (row, "%d", status ? status->updated_replicas : 0);
    s_cell (row, "%d", status ? status->available_replicas : 0);
    s_cell (row, "%s", zubectl_age (deployment->metadata ? deployment->metadata->creation_timestamp
                                                         : NULL,
                                    age, sizeof age));
    if (wide)
        s_workload_wide (spec ? spec->template_ : NULL, spec ? spec->selector : NULL, row);
}

static void
s_replicaset_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__ReplicaSet *set = (const Zube__ReplicaSet *) object;
    const Zube__ReplicaSetSpec *spec = set->spec;
    const Zube__ReplicaSetStatus *status = set->status;
    char age[32];
    s_cell (row, "%d", spec && spec->has_replicas ? spec->replicas : 1);
    s_cell (row, "%d", status ? status->replicas : 0);
    s_cell (row, "%d", status ? status->ready_replicas : 0);
    s_cell (row, "%s", zubectl_age (set->metadata ? set->metadata->creation_timestamp : NULL, age,
                                    sizeof age));
    if (wide)
        s_workload_wide (spec ? spec->template_ : NULL, spec ? spec->selector : NULL, row);
}

void
zubectl_service_ports (const Zube__ServiceSpec *spec, char *buf, size_t size)
{
    buf[0] = 0;
    for (size_t i = 0; spec && i < spec->n_ports; i++) {
        const Zube__ServicePort *port = spec->ports[i];
        char item[128];
        if (port->node_port)
            snprintf (item, sizeof item, "%d:%d/%s", port->port, port->node_port,
                      s_or (port->protocol, "TCP"));
        else
            snprintf (item, sizeof item, "%d/%s", port->port, s_or (port->protocol, "TCP"));
        s_join (buf, size, item);
    }
    if (!buf[0])
        snprintf (buf, size, "<none>");
}

static void
s_service_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__Service *service = (const Zube__Service *) object;
    const Zube__ServiceSpec *spec = service->spec;
    const char *type = s_or (spec ? spec->type : NULL, "ClusterIP");
    char text[S_CELL_SIZE] = "";
    s_cell (row, "%s", type);
    s_cell (row, "%s", s_or (spec ? spec->cluster_ip : NULL, "<none>"));
    if (strcmp (type, "ExternalName") == 0)
        snprintf (text, sizeof text, "%s", s_or (spec ? spec->external_name : NULL, ""));
    else {
        const Zube__LoadBalancerStatus *lb = service->status ? service->status->load_balancer : NULL;
        for (size_t i = 0; lb && i < lb->n_ingress; i++)
            s_join (text, sizeof text, s_or (lb->ingress[i]->ip, s_or (lb->ingress[i]->hostname, "")));
        for (size_t i = 0; spec && i < spec->n_external_ips; i++)
            s_join (text, sizeof text, spec->external_ips[i]);
        if (!text[0])
            snprintf (text, sizeof text, "%s",
                      strcmp (type, "LoadBalancer") == 0 ? "<pending>" : "<none>");
    }
    s_cell (row, "%s", text);
    zubectl_service_ports (spec, text, sizeof text);
    s_cell (row, "%s", text);
    char age[32];
    s_cell (row, "%s", zubectl_age (service->metadata ? service->metadata->creation_timestamp : NULL,
                                    age, sizeof age));
    if (!wide)
        return;
    text[0] = 0;
    for (size_t i = 0; spec && i < spec->n_selector; i++) {
        char pair[512];
        snprintf (pair, sizeof pair, "%s=%s", s_or (spec->selector[i]->key, ""),
                  s_or (spec->selector[i]->value, ""));
        s_join (text, sizeof text, pair);
    }
    s_cell (row, "%s", s_or (text, "<none>"));
}

static void
s_namespace_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__Namespace *namespace = (const Zube__Namespace *) object;
    char age[32];
    s_cell (row, "%s", s_or (namespace->status ? namespace->status->phase : NULL, "Active"));
    s_cell (row, "%s", zubectl_age (namespace->metadata ? namespace->metadata->creation_timestamp
                                                        : NULL,
                                    age, sizeof age));
}

const char *
zubectl_job_status (const Zube__Job *job)
{
    const Zube__JobStatus *status = job->status;
    if (job->metadata && job->metadata->deletion_timestamp && *job->metadata->deletion_timestamp)
        return "Terminating";
    static const char *order[] = {"Failed", "Complete", "FailureTarget", "SuccessCriteriaMet",
                                  "Suspended"};
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++)
        for (size_t i = 0; status && i < status->n_conditions; i++)
            if (status->conditions[i]->type && strcmp (status->conditions[i]->type, order[o]) == 0
                && strcmp (s_or (status->conditions[i]->status, ""), "True") == 0)
                return strcmp (order[o], "FailureTarget") == 0 ? "FailureTarget" : order[o];
    return "Running";
}

static void
s_job_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__Job *job = (const Zube__Job *) object;
    const Zube__JobSpec *spec = job->spec;
    const Zube__JobStatus *status = job->status;
    int succeeded = status ? status->succeeded : 0;
    s_cell (row, "%s", zubectl_job_status (job));
    if (spec && spec->has_completions)
        s_cell (row, "%d/%d", succeeded, spec->completions);
    else
    if (spec && spec->has_parallelism && spec->parallelism > 1)
        s_cell (row, "%d/1 of %d", succeeded, spec->parallelism);
    else
        s_cell (row, "%d/1", succeeded);
    char text[64] = "";
    int64_t start = zubectl_parse_time (status ? status->start_time : NULL);
    if (start >= 0) {
        int64_t end = zubectl_parse_time (status->completion_time);
        zubectl_human_duration ((end >= 0 ? end : (int64_t) time (NULL)) - start, text, sizeof text);
    }
    s_cell (row, "%s", text);
    s_cell (row, "%s", zubectl_age (job->metadata ? job->metadata->creation_timestamp : NULL, text,
                                    sizeof text));
    if (wide)
        s_workload_wide (spec ? spec->template_ : NULL, spec ? spec->selector : NULL, row);
}

static void
s_configmap_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__ConfigMap *map = (const Zube__ConfigMap *) object;
    char age[32];
    s_cell (row, "%zu", map->n_data + map->n_binary_data);
    s_cell (row, "%s", zubectl_age (map->metadata ? map->metadata->creation_timestamp : NULL, age,
                                    sizeof age));
}

static void
s_secret_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__Secret *secret = (const Zube__Secret *) object;
    char age[32];
    s_cell (row, "%s", s_or (secret->type, "Opaque"));
    s_cell (row, "%zu", secret->n_data);
    s_cell (row, "%s", zubectl_age (secret->metadata ? secret->metadata->creation_timestamp : NULL,
                                    age, sizeof age));
}

static void
s_serviceaccount_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__ServiceAccount *account = (const Zube__ServiceAccount *) object;
    char age[32];
    s_cell (row, "%zu", account->n_secrets);
    s_cell (row, "%s", zubectl_age (account->metadata ? account->metadata->creation_timestamp : NULL,
                                    age, sizeof age));
}

static void
s_daemonset_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__DaemonSet *set = (const Zube__DaemonSet *) object;
    const Zube__DaemonSetSpec *spec = set->spec;
    const Zube__DaemonSetStatus *status = set->status;
    char text[S_CELL_SIZE] = "";
    s_cell (row, "%d", status ? status->desired_number_scheduled : 0);
    s_cell (row, "%d", status ? status->current_number_scheduled : 0);
    s_cell (row, "%d", status ? status->number_ready : 0);
    s_cell (row, "%d", status ? status->updated_number_scheduled : 0);
    s_cell (row, "%d", status ? status->number_available : 0);
    const Zube__PodSpec *pod = spec && spec->template_ ? spec->template_->spec : NULL;
    for (size_t i = 0; pod && i < pod->n_node_selector; i++) {
        char pair[512];
        snprintf (pair, sizeof pair, "%s=%s", s_or (pod->node_selector[i]->key, ""),
                  s_or (pod->node_selector[i]->value, ""));
        s_join (text, sizeof text, pair);
    }
    s_cell (row, "%s", s_or (text, "<none>"));
    s_cell (row, "%s", zubectl_age (set->metadata ? set->metadata->creation_timestamp : NULL, text,
                                    sizeof text));
    if (wide)
        s_workload_wide (spec ? spec->template_ : NULL, spec ? spec->selector : NULL, row);
}

//  kubectl's printEvent: LAST SEEN ("5s", or "5s (x3 over 2m)" for a
//  repeated Event), TYPE, REASON, OBJECT (kind/name), MESSAGE; wide adds
//  SUBOBJECT, SOURCE, FIRST SEEN, COUNT and NAME. Events have no NAME
//  column of their own.
static void
s_event_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    const Zube__Event *event = (const Zube__Event *) object;
    const Zube__ObjectReference *involved = event->involved_object;
    char last[32], first[32], kind[128] = "";
    const char *last_time = s_or (event->last_timestamp, s_or (event->event_time,
                                  event->metadata ? event->metadata->creation_timestamp : NULL));
    const char *first_time = s_or (event->first_timestamp, s_or (event->event_time, last_time));
    zubectl_age (last_time, last, sizeof last);
    zubectl_age (first_time, first, sizeof first);
    if (event->series && event->series->count > 1)
        s_cell (row, "%s (x%d over %s)", zubectl_age (event->series->last_observed_time, last,
                                                      sizeof last),
                event->series->count, first);
    else if (event->count > 1)
        s_cell (row, "%s (x%d over %s)", last, event->count, first);
    else
        s_cell (row, "%s", last);
    s_cell (row, "%s", s_or (event->type, "Normal"));
    s_cell (row, "%s", s_or (event->reason, ""));
    for (size_t i = 0; involved && involved->kind && involved->kind[i] && i + 1 < sizeof kind; i++)
        kind[i] = (char) tolower ((unsigned char) involved->kind[i]), kind[i + 1] = 0;
    s_cell (row, "%s/%s", kind, s_or (involved ? involved->name : NULL, ""));
    s_cell (row, "%s", s_or (event->message, ""));
    if (!wide)
        return;
    s_cell (row, "%s", s_or (involved ? involved->field_path : NULL, ""));
    const Zube__EventSource *source = event->source;
    if (source && source->host && *source->host)
        s_cell (row, "%s, %s", s_or (source->component, ""), source->host);
    else
        s_cell (row, "%s", s_or (source ? source->component : NULL,
                                 s_or (event->reporting_component, "")));
    s_cell (row, "%s", first);
    s_cell (row, "%d", event->count > 0 ? event->count : 1);
    s_cell (row, "%s", s_or (event->metadata ? event->metadata->name : NULL, ""));
}

static void
s_generic_row (const ProtobufCMessage *object, bool wide, s_row_t *row)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    char age[32];
    s_cell (row, "%s", zubectl_age (meta ? meta->creation_timestamp : NULL, age, sizeof age));
}

typedef void (s_row_fn) (const ProtobufCMessage *object, bool wide, s_row_t *row);

typedef struct {
    const char *kind;
    //  Columns after NAME, then those -o wide adds ('|'-separated).
    const char *columns;
    const char *wide_columns;
    s_row_fn *row;
    //  No NAME column (Events: kubectl shows the involved object instead)
    bool no_name;
} s_printer_t;

static const s_printer_t s_printers[] = {
    {.kind = "Pod", .columns = "READY|STATUS|RESTARTS|AGE",
     .wide_columns = "IP|NODE|NOMINATED NODE|READINESS GATES", .row = s_pod_row},
    {.kind = "Node", .columns = "STATUS|ROLES|AGE|VERSION",
     .wide_columns = "INTERNAL-IP|EXTERNAL-IP|OS-IMAGE|KERNEL-VERSION|CONTAINER-RUNTIME",
     .row = s_node_row},
    {.kind = "Deployment", .columns = "READY|UP-TO-DATE|AVAILABLE|AGE",
     .wide_columns = "CONTAINERS|IMAGES|SELECTOR", .row = s_deployment_row},
    {.kind = "ReplicaSet", .columns = "DESIRED|CURRENT|READY|AGE",
     .wide_columns = "CONTAINERS|IMAGES|SELECTOR", .row = s_replicaset_row},
    {.kind = "Service", .columns = "TYPE|CLUSTER-IP|EXTERNAL-IP|PORT(S)|AGE",
     .wide_columns = "SELECTOR", .row = s_service_row},
    {.kind = "Namespace", .columns = "STATUS|AGE", .row = s_namespace_row},
    {.kind = "Job", .columns = "STATUS|COMPLETIONS|DURATION|AGE",
     .wide_columns = "CONTAINERS|IMAGES|SELECTOR", .row = s_job_row},
    {.kind = "ConfigMap", .columns = "DATA|AGE", .row = s_configmap_row},
    {.kind = "Secret", .columns = "TYPE|DATA|AGE", .row = s_secret_row},
    {.kind = "ServiceAccount", .columns = "SECRETS|AGE", .row = s_serviceaccount_row},
    {.kind = "DaemonSet", .columns = "DESIRED|CURRENT|READY|UP-TO-DATE|AVAILABLE|NODE SELECTOR|AGE",
     .wide_columns = "CONTAINERS|IMAGES|SELECTOR", .row = s_daemonset_row},
    {.kind = "Event", .columns = "LAST SEEN|TYPE|REASON|OBJECT|MESSAGE",
     .wide_columns = "SUBOBJECT|SOURCE|FIRST SEEN|COUNT|NAME", .row = s_event_row,
     .no_name = true},
};

static const s_printer_t s_generic_printer = {.kind = "", .columns = "AGE", .row = s_generic_row};

static const s_printer_t *
s_printer (const zube_kind_t *kind)
{
    for (size_t i = 0; i < sizeof s_printers / sizeof s_printers[0]; i++)
        if (strcmp (s_printers[i].kind, kind->kind) == 0)
            return &s_printers[i];
    return &s_generic_printer;
}

//  ---------------------------------------------------------------------
//  The get command

typedef struct {
    zubectl_t *self;
    bool all_namespaces;
    bool show_labels;
    bool no_headers;
    bool kind_prefix;       //  NAME as "pod/web" (several resource types)
} s_options_t;

static void
s_split_columns (const char *columns, s_row_t *row)
{
    if (!columns)
        return;
    char copy[512];
    snprintf (copy, sizeof copy, "%s", columns);
    char *save = NULL;
    for (char *token = strtok_r (copy, "|", &save); token; token = strtok_r (NULL, "|", &save))
        s_cell (row, "%s", token);
}

static void
s_header (const s_options_t *options, const zube_kind_t *kind, s_row_t *row)
{
    const s_printer_t *printer = s_printer (kind);
    row->count = 0;
    if (options->all_namespaces && kind->namespaced)
        s_cell (row, "NAMESPACE");
    if (!printer->no_name)
        s_cell (row, "NAME");
    s_split_columns (printer->columns, row);
    if (options->self->output_format == ZUBECTL_OUTPUT_WIDE)
        s_split_columns (printer->wide_columns, row);
    if (options->show_labels)
        s_cell (row, "LABELS");
}

static void
s_row (const s_options_t *options, const zube_kind_t *kind, const ProtobufCMessage *object,
       s_row_t *row)
{
    const s_printer_t *printer = s_printer (kind);
    row->count = 0;
    if (options->all_namespaces && kind->namespaced)
        s_cell (row, "%s", zubectl_object_namespace (object));
    if (options->kind_prefix && !printer->no_name) {
        char kind_name[128];
        s_cell (row, "%s/%s", zubectl_kind_name (kind, kind_name, sizeof kind_name),
                zubectl_object_name (object));
    }
    else if (!printer->no_name)
        s_cell (row, "%s", zubectl_object_name (object));
    printer->row (object, options->self->output_format == ZUBECTL_OUTPUT_WIDE, row);
    if (options->show_labels) {
        char labels[S_CELL_SIZE];
        s_labels_text (zube_object_meta (object), labels, sizeof labels);
        s_cell (row, "%s", labels);
    }
}

static void
s_table_add_row (zube_cli_table_t **table_p, const s_row_t *row)
{
    if (!*table_p)
        *table_p = zube_cli_table_new (row->count);
    const char *cells[S_CELLS];
    for (int i = 0; i < row->count; i++)
        cells[i] = row->text[i];
    zube_cli_table_add (*table_p, cells);
}

//  One object found, with its kind.
typedef struct {
    const zube_kind_t *kind;
    ProtobufCMessage *object;
} s_found_t;

typedef struct {
    s_found_t *items;
    size_t count, cap;
} s_found_list_t;

static void
s_found_add (s_found_list_t *list, const zube_kind_t *kind, ProtobufCMessage *object)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        s_found_t *grown = realloc (list->items, cap * sizeof *grown);
        if (!grown) {
            protobuf_c_message_free_unpacked (object, NULL);
            return;
        }
        list->items = grown;
        list->cap = cap;
    }
    zubectl_object_set_type (object, kind);
    list->items[list->count++] = (s_found_t) {.kind = kind, .object = object};
}

static void
s_found_free (s_found_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        protobuf_c_message_free_unpacked (list->items[i].object, NULL);
    free (list->items);
    list->items = NULL;
    list->count = list->cap = 0;
}

//  Writes text with every line indented by indent spaces (the first by
//  first_prefix instead, when given), and suffix at the end of the last.
static void
s_print_indented (const char *text, int indent, const char *first_prefix, const char *suffix)
{
    bool first = true;
    while (*text) {
        const char *end = strchr (text, '\n');
        size_t length = end ? (size_t) (end - text) : strlen (text);
        if (first && first_prefix)
            fputs (first_prefix, stdout);
        else
        if (length)
            printf ("%*s", indent, "");
        fwrite (text, 1, length, stdout);
        text += length + (end ? 1 : 0);
        bool last = true;
        for (const char *rest = text; *rest && last; rest++)
            last = *rest == '\n';
        if (last && suffix)
            fputs (suffix, stdout);
        fputc ('\n', stdout);
        first = false;
        if (last)
            break;
    }
}

//  kubectl's List of several objects: apiVersion v1, kind List.
static int
s_print_list (zubectl_t *self, const s_found_list_t *found)
{
    bool yaml = self->output_format == ZUBECTL_OUTPUT_YAML;
    if (yaml)
        printf ("apiVersion: v1\nitems:%s\n", found->count ? "" : " []");
    else
        printf ("{\n    \"apiVersion\": \"v1\",\n    \"items\": [%s", found->count ? "\n" : "");
    for (size_t i = 0; i < found->count; i++) {
        char *text = yaml ? zube_codec_encode_yaml (found->items[i].object)
                          : zube_codec_encode_json (found->items[i].object, true);
        if (!text) {
            zube_cli_error ("cannot encode %s \"%s\"", found->items[i].kind->kind,
                            zubectl_object_name (found->items[i].object));
            return -1;
        }
        if (yaml)
            s_print_indented (text, 2, "- ", NULL);
        else
            s_print_indented (text, 8, "        ", i + 1 < found->count ? "," : NULL);
        free (text);
    }
    if (yaml)
        printf ("kind: List\nmetadata:\n  resourceVersion: \"\"\n");
    else
        printf ("%s],\n    \"kind\": \"List\",\n    \"metadata\": {\n"
                "        \"resourceVersion\": \"\"\n    }\n}\n",
                found->count ? "    " : "");
    return 0;
}

static int
s_print_objects (zubectl_t *self, const s_options_t *options, const s_found_list_t *found,
                 bool single)
{
    if (self->output_format == ZUBECTL_OUTPUT_YAML || self->output_format == ZUBECTL_OUTPUT_JSON) {
        if (single && found->count == 1)
            return zubectl_print_message (self, found->items[0].object);
        return s_print_list (self, found);
    }
    if (self->output_format == ZUBECTL_OUTPUT_NAME) {
        for (size_t i = 0; i < found->count; i++) {
            char kind_name[128];
            printf ("%s/%s\n", zubectl_kind_name (found->items[i].kind, kind_name, sizeof kind_name),
                    zubectl_object_name (found->items[i].object));
        }
        return 0;
    }
    //  One table per kind, in the order the kinds were asked for.
    bool printed = false;
    for (size_t i = 0; i < found->count;) {
        const zube_kind_t *kind = found->items[i].kind;
        zube_cli_table_t *table = NULL;
        s_row_t row;
        if (!options->no_headers) {
            s_header (options, kind, &row);
            s_table_add_row (&table, &row);
        }
        for (; i < found->count && found->items[i].kind == kind; i++) {
            s_row (options, kind, found->items[i].object, &row);
            s_table_add_row (&table, &row);
        }
        if (printed)
            printf ("\n");
        zube_cli_table_print (table, stdout);
        zube_cli_table_destroy (&table);
        printed = true;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Watch

typedef struct {
    zubectl_t *self;
    const s_options_t *options;
    const zube_kind_t *kind;
    const char *namespace;          //  NULL: every namespace
    zube_selector_t *labels;
    zube_field_selector_t *fields;
    char **names;
    int name_count;
    char topic[128];
    char last[64];                  //  the newest resourceVersion handled
    bool gap;
    bool header_printed;
} s_watch_t;

static void
s_watch_print (s_watch_t *watch, const ProtobufCMessage *object)
{
    zubectl_t *self = watch->self;
    if (watch->kind->namespaced && watch->namespace
        && strcmp (zubectl_object_namespace (object), watch->namespace) != 0)
        return;
    if (watch->labels && !zube_selector_matches_object (watch->labels, object))
        return;
    if (watch->fields && !zube_field_selector_matches (watch->fields, object))
        return;
    if (watch->name_count) {
        bool named = false;
        for (int i = 0; i < watch->name_count && !named; i++)
            named = strcmp (watch->names[i], zubectl_object_name (object)) == 0;
        if (!named)
            return;
    }
    if (self->output_format == ZUBECTL_OUTPUT_YAML) {
        char *text = zube_codec_encode_yaml (object);
        if (text)
            printf ("---\n%s", text);
        free (text);
    }
    else
    if (self->output_format == ZUBECTL_OUTPUT_JSON) {
        char *text = zube_codec_encode_json (object, true);
        if (text)
            fputs (text, stdout);
        free (text);
    }
    else
    if (self->output_format == ZUBECTL_OUTPUT_NAME) {
        char kind_name[128];
        printf ("%s/%s\n", zubectl_kind_name (watch->kind, kind_name, sizeof kind_name),
                zubectl_object_name (object));
    }
    else {
        zube_cli_table_t *table = NULL;
        s_row_t row;
        if (!watch->header_printed && !watch->options->no_headers) {
            s_header (watch->options, watch->kind, &row);
            s_table_add_row (&table, &row);
            watch->header_printed = true;
        }
        s_row (watch->options, watch->kind, object, &row);
        s_table_add_row (&table, &row);
        zube_cli_table_print (table, stdout);
        zube_cli_table_destroy (&table);
    }
    fflush (stdout);
}

static void
s_watch_event (s_watch_t *watch, const Zube__WatchEvent *event)
{
    if (!event->resource_version || zubectl_rv_compare (event->resource_version, watch->last) <= 0)
        return;
    if (event->type && strcmp (event->type, "BOOKMARK") == 0) {
        snprintf (watch->last, sizeof watch->last, "%s", event->resource_version);
        return;
    }
    ProtobufCMessage *object = protobuf_c_message_unpack (watch->kind->descriptor, NULL,
                                                          event->object.len, event->object.data);
    snprintf (watch->last, sizeof watch->last, "%s", event->resource_version);
    if (!object)
        return;
    zubectl_object_set_type (object, watch->kind);
    s_watch_print (watch, object);
    protobuf_c_message_free_unpacked (object, NULL);
}

static void
s_on_event (zube_bus_t *bus, const char *topic, const uint8_t *payload, size_t payload_size,
            void *arg)
{
    s_watch_t *watch = (s_watch_t *) arg;
    if (strcmp (topic, watch->topic) != 0)
        return;
    Zube__WatchEvent *event = zube__watch_event__unpack (NULL, payload_size, payload);
    if (!event)
        return;
    if (event->prev_resource_version && *event->prev_resource_version
        && zubectl_rv_compare (event->prev_resource_version, watch->last) > 0)
        //  Missed something: the main loop asks `watch since` (no call
        //  from inside a callback).
        watch->gap = true;
    else
        s_watch_event (watch, event);
    zube__watch_event__free_unpacked (event, NULL);
}

static void
s_watch_catch_up (s_watch_t *watch, zube_api_t *api)
{
    for (int rounds = 0; rounds < 100; rounds++) {
        Zube__WatchEventBatch *batch = NULL;
        zube_api_error_t error;
        if (zube_api_watch_since (api, watch->kind->resource, watch->namespace, watch->last,
                                  &batch, &error)
            != ZUBE_OK)
            return;
        char before[64];
        snprintf (before, sizeof before, "%s", watch->last);
        for (size_t i = 0; i < batch->n_events; i++)
            s_watch_event (watch, batch->events[i]);
        if (batch->resource_version && zubectl_rv_compare (batch->resource_version, watch->last) > 0)
            snprintf (watch->last, sizeof watch->last, "%s", batch->resource_version);
        bool more = batch->n_events > 0 && strcmp (before, watch->last) != 0;
        zube__watch_event_batch__free_unpacked (batch, NULL);
        if (!more)
            return;
    }
}

static int
s_watch (zubectl_t *self, s_watch_t *watch, const char *since)
{
    zube_api_t *api = zubectl_api (self);
    zube_bus_t *bus = zubectl_connect (self);
    if (!api || !bus)
        return 1;
    snprintf (watch->last, sizeof watch->last, "%s", since ? since : "0");
    watch->gap = true;
    int64_t deadline =
        self->request_timeout_ms > 0 ? zube_cli_now_ns () + self->request_timeout_ms * 1000000 : -1;
    while (!zsys_interrupted) {
        if (watch->gap) {
            watch->gap = false;
            s_watch_catch_up (watch, api);
        }
        int wait_ms = 200;
        if (deadline > 0) {
            int64_t left = (deadline - zube_cli_now_ns ()) / 1000000;
            if (left <= 0)
                break;
            if (left < wait_ms)
                wait_ms = (int) left;
        }
        if (zube_bus_poll (bus, wait_ms) < 0)
            break;
    }
    return 0;
}

//  ---------------------------------------------------------------------

static void
s_no_resources (zubectl_t *self, const s_options_t *options, bool namespaced)
{
    if (options->all_namespaces || !namespaced)
        fprintf (stderr, "No resources found\n");
    else
        fprintf (stderr, "No resources found in %s namespace.\n", zubectl_namespace (self));
}

int
zubectl_get (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    s_options_t options = {.self = self};
    const char *label_selector = NULL, *field_selector = NULL;
    bool watch = false, ignore_not_found = false;
    zube_cli_flag_t flags[] = {
        {.name = "all-namespaces", .short_name = 'A', .type = ZUBE_CLI_BOOL,
         .value = &options.all_namespaces,
         .help = "List the objects of every namespace (NAMESPACE column first)"},
        {.name = "selector", .short_name = 'l', .type = ZUBE_CLI_STRING, .value = &label_selector,
         .value_name = "SELECTOR", .help = "Label selector: app=web, tier!=db, env in (a,b), !canary"},
        {.name = "field-selector", .type = ZUBE_CLI_STRING, .value = &field_selector,
         .value_name = "SELECTOR", .help = "Field selector: metadata.name=web, spec.nodeName=node-1, status.phase!=Running"},
        {.name = "watch", .short_name = 'w', .type = ZUBE_CLI_BOOL, .value = &watch,
         .help = "After listing, print each change until interrupted"},
        {.name = "show-labels", .type = ZUBE_CLI_BOOL, .value = &options.show_labels,
         .help = "Add a LABELS column"},
        {.name = "no-headers", .type = ZUBE_CLI_BOOL, .value = &options.no_headers,
         .help = "Print tables without their header line"},
        {.name = "ignore-not-found", .type = ZUBE_CLI_BOOL, .value = &ignore_not_found,
         .help = "A named object that does not exist is no error"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count == 0) {
        fprintf (stderr, "You must specify the type of resource to get. Use \"zubectl api-resources\" "
                         "for a complete list of supported resources.\n\n");
        zube_cli_error ("Required resource not specified.\nUse \"zubectl explain <resource>\" for a "
                        "detailed description of that resource (e.g. zubectl explain pods).\n"
                        "See 'zubectl get -h' for help and examples");
        return 1;
    }
    //  RESOURCE[,RESOURCE] NAME..., or TYPE/NAME...
    const zube_kind_t *kinds[32];
    const char *names_of[64];
    const zube_kind_t *kinds_of[64];
    int kind_count = 0, name_count = 0;
    bool slash_form = strchr (args[0], '/') != NULL;
    if (slash_form) {
        for (int i = 0; i < count && name_count < 64; i++) {
            char *slash = strchr (args[i], '/');
            if (!slash) {
                zube_cli_error ("there is no need to specify a resource type as a separate "
                                "argument when passing arguments in resource/name form "
                                "(e.g. 'zubectl get resource/<resource_name>' instead of "
                                "'zubectl get resource resource/<resource_name>'");
                return 1;
            }
            *slash = 0;
            const zube_kind_t *kind = zubectl_kind (args[i]);
            if (!kind)
                return 1;
            kinds_of[name_count] = kind;
            names_of[name_count++] = slash + 1;
        }
    }
    else {
        char *save = NULL;
        for (char *token = strtok_r (args[0], ",", &save); token && kind_count < 32;
             token = strtok_r (NULL, ",", &save)) {
            const zube_kind_t *kind = zubectl_kind (token);
            if (!kind)
                return 1;
            kinds[kind_count++] = kind;
        }
        if (count > 1 && kind_count > 1) {
            zube_cli_error ("arguments in resource/name form must have a single resource and name");
            return 1;
        }
        for (int i = 1; i < count && name_count < 64; i++) {
            kinds_of[name_count] = kinds[0];
            names_of[name_count++] = args[i];
        }
    }
    if (watch && (kind_count > 1 || (slash_form && name_count > 1))) {
        zube_cli_error ("you may only specify a single resource type");
        return 1;
    }
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return 1;
    const char *namespace = zubectl_namespace (self);
    int rc = 0;
    s_found_list_t found = {0};
    char list_rv[64] = "";
    options.kind_prefix = kind_count > 1 || (slash_form && name_count > 1);
    if (name_count > 0) {
        for (int i = 0; i < name_count; i++) {
            ProtobufCMessage *object = NULL;
            zube_api_error_t error;
            const zube_kind_t *kind = kinds_of[i];
            if (zube_api_get (api, kind->resource, kind->namespaced ? namespace : NULL, names_of[i],
                              &object, &error)
                == ZUBE_OK) {
                Zube__ObjectMeta *meta = zube_object_meta (object);
                if (meta && meta->resource_version
                    && zubectl_rv_compare (meta->resource_version, list_rv) > 0)
                    snprintf (list_rv, sizeof list_rv, "%s", meta->resource_version);
                s_found_add (&found, kind, object);
            }
            else
            if (!(ignore_not_found && error.status == ZUBE_NOT_FOUND)) {
                zubectl_print_api_error (self, &error, NULL);
                rc = 1;
            }
        }
    }
    else
        for (int k = 0; k < kind_count; k++) {
            const zube_kind_t *kind = kinds[k];
            zube_api_list_options_t list_options = {
                .namespace = kind->namespaced && !options.all_namespaces ? namespace : NULL,
                .label_selector = label_selector,
                .field_selector = field_selector};
            zube_api_list_t *list = NULL;
            zube_api_error_t error;
            if (zube_api_list (api, kind->resource, &list_options, &list, &error) != ZUBE_OK) {
                zubectl_print_api_error (self, &error, NULL);
                s_found_free (&found);
                return 1;
            }
            for (size_t i = 0; i < list->count; i++) {
                s_found_add (&found, kind, list->items[i]);
                list->items[i] = NULL;
            }
            if (list->resource_version)
                snprintf (list_rv, sizeof list_rv, "%s", list->resource_version);
            zube_api_list_destroy (&list);
        }
    bool single = name_count == 1;
    if (found.count == 0 && name_count == 0 && !watch) {
        if (self->output_format == ZUBECTL_OUTPUT_YAML || self->output_format == ZUBECTL_OUTPUT_JSON)
            s_print_list (self, &found);
        else
            s_no_resources (self, &options, kind_count == 1 ? kinds[0]->namespaced : true);
    }
    else
    if (found.count && s_print_objects (self, &options, &found, single) != 0)
        rc = 1;
    else
    if (watch && found.count == 0 && name_count == 0 && self->output_format != ZUBECTL_OUTPUT_YAML
        && self->output_format != ZUBECTL_OUTPUT_JSON)
        s_no_resources (self, &options, kinds[0]->namespaced);
    fflush (stdout);
    if (watch && (rc == 0 || name_count == 0)) {
        s_watch_t state = {.self = self,
                           .options = &options,
                           .kind = kind_count ? kinds[0] : kinds_of[0],
                           .header_printed = found.count > 0 || options.no_headers};
        state.namespace = state.kind->namespaced && !options.all_namespaces ? namespace : NULL;
        char error[512];
        if (label_selector
            && zube_selector_parse (label_selector, &state.labels, error, sizeof error) != 0) {
            zube_cli_error ("%s", error);
            rc = 1;
        }
        if (rc == 0 && field_selector
            && zube_field_selector_parse (field_selector, state.kind->resource, &state.fields, error,
                                          sizeof error)
                   != 0) {
            zube_cli_error ("%s", error);
            rc = 1;
        }
        state.names = (char **) names_of;
        state.name_count = name_count;
        snprintf (state.topic, sizeof state.topic, "api/%s", state.kind->resource);
        zube_bus_t *bus = zubectl_connect (self);
        if (rc == 0 && bus && zube_bus_subscribe (bus, state.topic, s_on_event, &state) == 0) {
            rc = s_watch (self, &state, list_rv);
            zube_bus_unsubscribe (bus, state.topic);
        }
        else
        if (rc == 0) {
            zube_cli_error ("cannot subscribe to %s", state.topic);
            rc = 1;
        }
        zube_selector_destroy (&state.labels);
        zube_field_selector_destroy (&state.fields);
    }
    s_found_free (&found);
    return rc;
}
