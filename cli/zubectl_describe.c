/*  zubectl describe - a readable page per object, as kubectl describe
    prints it: name, namespace, labels, annotations, the kind's own
    details (pods, nodes, deployments, services; other kinds show their
    spec and status as YAML), and the events that involve the object. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zube/selector.h"
#include "apps.pb-c.h"
#include "zubectl.h"

#define S_WIDTH 18

static void
s_field (int indent, const char *label, const char *value)
{
    char key[128];
    snprintf (key, sizeof key, "%s:", label);
    //  A label wider than the column still gets two spaces, as kubectl's
    //  tabwriter gives it.
    int width = S_WIDTH - indent;
    if ((int) strlen (key) + 2 > width)
        width = (int) strlen (key) + 2;
    printf ("%*s%-*s%s\n", indent, "", width, key, value && *value ? value : "<none>");
}

static void
s_fieldf (int indent, const char *label, const char *format, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_fieldf (int indent, const char *label, const char *format, ...)
{
    char value[2048];
    va_list args;
    va_start (args, format);
    vsnprintf (value, sizeof value, format, args);
    va_end (args);
    s_field (indent, label, value);
}

typedef struct {
    const char *key;
    const char *value;
} s_pair_t;

static int
s_pair_compare (const void *a, const void *b)
{
    return strcmp (((const s_pair_t *) a)->key, ((const s_pair_t *) b)->key);
}

//  A map as kubectl prints labels: one key=value per line, sorted.
static void
s_map (const char *label, ProtobufCMessage *const *entries, size_t count, bool annotations)
{
    if (!count) {
        s_field (0, label, "<none>");
        return;
    }
    s_pair_t *pairs = calloc (count, sizeof *pairs);
    if (!pairs)
        return;
    for (size_t i = 0; i < count; i++) {
        //  Every map entry message is {key, value} strings here.
        const Zube__ObjectMeta__LabelsEntry *entry = (const Zube__ObjectMeta__LabelsEntry *) entries[i];
        pairs[i].key = entry->key ? entry->key : "";
        pairs[i].value = entry->value ? entry->value : "";
    }
    qsort (pairs, count, sizeof *pairs, s_pair_compare);
    char key[64];
    snprintf (key, sizeof key, "%s:", label);
    for (size_t i = 0; i < count; i++) {
        printf ("%-*s%s%s%s\n", S_WIDTH, i == 0 ? key : "", pairs[i].key, annotations ? ": " : "=",
                pairs[i].value);
    }
    free (pairs);
}

static void
s_conditions (const char *title, size_t count, const char *const *types,
              const char *const *statuses)
{
    printf ("%s:\n", title);
    if (!count) {
        printf ("  <none>\n");
        return;
    }
    zube_cli_table_t *table = zube_cli_table_new (2);
    zube_cli_table_addv (table, "  Type", "Status");
    zube_cli_table_addv (table, "  ----", "------");
    for (size_t i = 0; i < count; i++) {
        char type[256];
        snprintf (type, sizeof type, "  %s", types[i] ? types[i] : "");
        zube_cli_table_addv (table, type, statuses[i] ? statuses[i] : "");
    }
    zube_cli_table_print (table, stdout);
    zube_cli_table_destroy (&table);
}

static void
s_describe_pod (const Zube__Pod *pod)
{
    const Zube__PodSpec *spec = pod->spec;
    const Zube__PodStatus *status = pod->status;
    s_fieldf (0, "Priority", "%d", spec ? spec->priority : 0);
    s_field (0, "Service Account", spec && spec->service_account_name ? spec->service_account_name : "default");
    s_field (0, "Node", spec && spec->node_name ? spec->node_name : "<none>");
    s_field (0, "Start Time", status ? status->start_time : NULL);
    s_field (0, "Status", status && status->phase ? status->phase : "Pending");
    s_field (0, "IP", status ? status->pod_ip : NULL);
    printf ("Containers:\n");
    for (size_t i = 0; spec && i < spec->n_containers; i++) {
        const Zube__Container *container = spec->containers[i];
        printf ("  %s:\n", container->name ? container->name : "");
        s_field (4, "Image", container->image);
        char ports[512] = "";
        for (size_t p = 0; p < container->n_ports; p++) {
            char item[64];
            snprintf (item, sizeof item, "%s%d/%s", p ? ", " : "", container->ports[p]->container_port,
                      container->ports[p]->protocol ? container->ports[p]->protocol : "TCP");
            strncat (ports, item, sizeof ports - strlen (ports) - 1);
        }
        s_field (4, "Port", ports);
        const Zube__ContainerStatus *cs = NULL;
        for (size_t s = 0; status && s < status->n_container_statuses; s++)
            if (status->container_statuses[s]->name && container->name
                && strcmp (status->container_statuses[s]->name, container->name) == 0)
                cs = status->container_statuses[s];
        const Zube__ContainerState *state = cs ? cs->state : NULL;
        if (state && state->running) {
            s_field (4, "State", "Running");
            s_field (6, "Started", state->running->started_at);
        }
        else
        if (state && state->terminated) {
            s_field (4, "State", "Terminated");
            s_field (6, "Reason", state->terminated->reason);
            s_fieldf (6, "Exit Code", "%d", state->terminated->exit_code);
        }
        else {
            s_field (4, "State", "Waiting");
            s_field (6, "Reason", state && state->waiting ? state->waiting->reason : NULL);
        }
        s_field (4, "Ready", cs && cs->ready ? "True" : "False");
        s_fieldf (4, "Restart Count", "%d", cs ? cs->restart_count : 0);
        if (!container->n_env)
            s_field (4, "Environment", "<none>");
        else
            printf ("    Environment:\n");
        for (size_t e = 0; e < container->n_env; e++)
            printf ("      %s:  %s\n", container->env[e]->name ? container->env[e]->name : "",
                    container->env[e]->value ? container->env[e]->value : "");
    }
    size_t count = status ? status->n_conditions : 0;
    const char *types[64], *statuses[64];
    for (size_t i = 0; i < count && i < 64; i++) {
        types[i] = status->conditions[i]->type;
        statuses[i] = status->conditions[i]->status;
    }
    s_conditions ("Conditions", count < 64 ? count : 64, types, statuses);
    s_field (0, "QoS Class", status ? status->qos_class : NULL);
    char selector[1024] = "";
    for (size_t i = 0; spec && i < spec->n_node_selector; i++) {
        size_t used = strlen (selector);
        snprintf (selector + used, sizeof selector - used, "%s%s=%s", used ? "," : "",
                  spec->node_selector[i]->key ? spec->node_selector[i]->key : "",
                  spec->node_selector[i]->value ? spec->node_selector[i]->value : "");
    }
    s_field (0, "Node-Selectors", selector);
}

static void
s_describe_node (const Zube__Node *node)
{
    const Zube__NodeSpec *spec = node->spec;
    const Zube__NodeStatus *status = node->status;
    char taints[1024] = "";
    for (size_t i = 0; spec && i < spec->n_taints; i++) {
        size_t used = strlen (taints);
        snprintf (taints + used, sizeof taints - used, "%s%s%s%s:%s", used ? "," : "",
                  spec->taints[i]->key ? spec->taints[i]->key : "",
                  spec->taints[i]->value ? "=" : "", spec->taints[i]->value ? spec->taints[i]->value : "",
                  spec->taints[i]->effect ? spec->taints[i]->effect : "");
    }
    s_field (0, "Taints", taints);
    s_field (0, "Unschedulable", spec && spec->unschedulable ? "true" : "false");
    size_t count = status ? status->n_conditions : 0;
    const char *types[64], *statuses[64];
    for (size_t i = 0; i < count && i < 64; i++) {
        types[i] = status->conditions[i]->type;
        statuses[i] = status->conditions[i]->status;
    }
    s_conditions ("Conditions", count < 64 ? count : 64, types, statuses);
    printf ("Addresses:\n");
    for (size_t i = 0; status && i < status->n_addresses; i++)
        printf ("  %s:  %s\n", status->addresses[i]->type ? status->addresses[i]->type : "",
                status->addresses[i]->address ? status->addresses[i]->address : "");
    printf ("Capacity:\n");
    for (size_t i = 0; status && i < status->n_capacity; i++)
        printf ("  %s:  %s\n", status->capacity[i]->key ? status->capacity[i]->key : "",
                status->capacity[i]->value && status->capacity[i]->value->string
                    ? status->capacity[i]->value->string
                    : "");
    printf ("Allocatable:\n");
    for (size_t i = 0; status && i < status->n_allocatable; i++)
        printf ("  %s:  %s\n", status->allocatable[i]->key ? status->allocatable[i]->key : "",
                status->allocatable[i]->value && status->allocatable[i]->value->string
                    ? status->allocatable[i]->value->string
                    : "");
    const Zube__NodeSystemInfo *info = status ? status->node_info : NULL;
    printf ("System Info:\n");
    s_field (2, "Kernel Version", info ? info->kernel_version : NULL);
    s_field (2, "OS Image", info ? info->os_image : NULL);
    s_field (2, "Container Runtime Version", info ? info->container_runtime_version : NULL);
    s_field (2, "Kubelet Version", info ? info->kubelet_version : NULL);
    s_field (0, "PodCIDR", spec ? spec->pod_cidr : NULL);
}

static void
s_describe_deployment (const Zube__Deployment *deployment)
{
    const Zube__DeploymentSpec *spec = deployment->spec;
    const Zube__DeploymentStatus *status = deployment->status;
    char selector[1024] = "<none>";
    zube_selector_t *parsed = NULL;
    char error[256];
    if (spec && spec->selector
        && zube_selector_from_message (spec->selector, &parsed, error, sizeof error) == 0) {
        char *text = zube_selector_string (parsed);
        if (text)
            snprintf (selector, sizeof selector, "%s", text);
        free (text);
        zube_selector_destroy (&parsed);
    }
    s_field (0, "Selector", selector);
    s_fieldf (0, "Replicas", "%d desired | %d updated | %d total | %d available | %d unavailable",
              spec && spec->has_replicas ? spec->replicas : 1, status ? status->updated_replicas : 0,
              status ? status->replicas : 0, status ? status->available_replicas : 0,
              status ? status->unavailable_replicas : 0);
    s_field (0, "StrategyType",
             spec && spec->strategy && spec->strategy->type ? spec->strategy->type : "RollingUpdate");
    s_fieldf (0, "MinReadySeconds", "%d", spec ? spec->min_ready_seconds : 0);
    printf ("Pod Template:\n");
    const Zube__PodSpec *pod = spec && spec->template_ ? spec->template_->spec : NULL;
    printf ("  Containers:\n");
    for (size_t i = 0; pod && i < pod->n_containers; i++) {
        printf ("   %s:\n", pod->containers[i]->name ? pod->containers[i]->name : "");
        s_field (4, "Image", pod->containers[i]->image);
    }
    size_t count = status ? status->n_conditions : 0;
    const char *types[64], *statuses[64];
    for (size_t i = 0; i < count && i < 64; i++) {
        types[i] = status->conditions[i]->type;
        statuses[i] = status->conditions[i]->status;
    }
    s_conditions ("Conditions", count < 64 ? count : 64, types, statuses);
}

static void
s_describe_service (const Zube__Service *service)
{
    const Zube__ServiceSpec *spec = service->spec;
    char text[1024] = "";
    for (size_t i = 0; spec && i < spec->n_selector; i++) {
        size_t used = strlen (text);
        snprintf (text + used, sizeof text - used, "%s%s=%s", used ? "," : "",
                  spec->selector[i]->key ? spec->selector[i]->key : "",
                  spec->selector[i]->value ? spec->selector[i]->value : "");
    }
    s_field (0, "Selector", text);
    s_field (0, "Type", spec && spec->type ? spec->type : "ClusterIP");
    s_field (0, "IP", spec ? spec->cluster_ip : NULL);
    for (size_t i = 0; spec && i < spec->n_ports; i++) {
        const Zube__ServicePort *port = spec->ports[i];
        s_fieldf (0, "Port", "%s  %d/%s", port->name ? port->name : "<unset>", port->port,
                  port->protocol ? port->protocol : "TCP");
        const Zube__IntOrString *target = port->target_port;
        if (target && target->str_val)
            s_fieldf (0, "TargetPort", "%s/%s", target->str_val, port->protocol ? port->protocol : "TCP");
        else
            s_fieldf (0, "TargetPort", "%d/%s", target ? target->int_val : port->port,
                      port->protocol ? port->protocol : "TCP");
        if (port->node_port)
            s_fieldf (0, "NodePort", "%s  %d/%s", port->name ? port->name : "<unset>", port->node_port,
                      port->protocol ? port->protocol : "TCP");
    }
    s_field (0, "Session Affinity", spec && spec->session_affinity ? spec->session_affinity : "None");
}

//  Other kinds: everything but apiVersion, kind and metadata, as YAML.
static void
s_describe_generic (const ProtobufCMessage *object)
{
    char *yaml = zube_codec_encode_yaml (object);
    if (!yaml)
        return;
    bool skipping = false;
    for (char *line = yaml; *line;) {
        char *end = strchr (line, '\n');
        size_t length = end ? (size_t) (end - line) : strlen (line);
        bool top = length && line[0] != ' ' && line[0] != '-';
        if (top)
            skipping = strncmp (line, "apiVersion:", 11) == 0 || strncmp (line, "kind:", 5) == 0
                       || strncmp (line, "metadata:", 9) == 0;
        if (!skipping && top && length > 1) {
            //  "spec:" -> "Spec:", as kubectl capitalises sections.
            printf ("%c%.*s\n", line[0] >= 'a' && line[0] <= 'z' ? line[0] - 32 : line[0],
                    (int) length - 1, line + 1);
        }
        else
        if (!skipping)
            printf ("%.*s\n", (int) length, line);
        line += length + (end ? 1 : 0);
    }
    free (yaml);
}

static void
s_events (zubectl_t *self, const zube_kind_t *kind, const ProtobufCMessage *object)
{
    zube_api_t *api = zubectl_api (self);
    const zube_kind_t *event_kind = zube_kind_lookup ("v1", "Event");
    zube_api_list_t *list = NULL;
    zube_api_error_t error;
    zube_api_list_options_t options = {
        .namespace = kind->namespaced ? zubectl_object_namespace (object) : NULL};
    const char *name = zubectl_object_name (object);
    Zube__ObjectMeta *meta = zube_object_meta (object);
    if (!api || !event_kind
        || zube_api_list (api, event_kind->resource, &options, &list, &error) != ZUBE_OK) {
        printf ("Events:            <none>\n");
        return;
    }
    zube_cli_table_t *table = zube_cli_table_new (5);
    zube_cli_table_addv (table, "  Type", "Reason", "Age", "From", "Message");
    zube_cli_table_addv (table, "  ----", "------", "----", "----", "-------");
    size_t shown = 0;
    for (size_t i = 0; i < list->count; i++) {
        const Zube__Event *event = (const Zube__Event *) list->items[i];
        const Zube__ObjectReference *involved = event->involved_object;
        if (!involved || !involved->name || strcmp (involved->name, name) != 0)
            continue;
        if (involved->kind && strcmp (involved->kind, kind->kind) != 0)
            continue;
        if (involved->uid && *involved->uid && meta && meta->uid && strcmp (involved->uid, meta->uid) != 0)
            continue;
        char type[64], age[32], age_text[96], from[256];
        snprintf (type, sizeof type, "  %s", event->type ? event->type : "Normal");
        const char *when = event->last_timestamp && *event->last_timestamp ? event->last_timestamp
                           : event->event_time && *event->event_time       ? event->event_time
                           : event->metadata ? event->metadata->creation_timestamp : NULL;
        zubectl_age (when, age, sizeof age);
        if (event->count > 1 && event->first_timestamp) {
            char first[32];
            snprintf (age_text, sizeof age_text, "%s (x%d over %s)", age, event->count,
                      zubectl_age (event->first_timestamp, first, sizeof first));
        }
        else
            snprintf (age_text, sizeof age_text, "%s", age);
        snprintf (from, sizeof from, "%s",
                  event->source && event->source->component ? event->source->component
                  : event->reporting_component             ? event->reporting_component
                                                            : "");
        zube_cli_table_addv (table, type, event->reason ? event->reason : "", age_text, from,
                             event->message ? event->message : "");
        shown++;
    }
    if (shown) {
        printf ("Events:\n");
        zube_cli_table_print (table, stdout);
    }
    else
        printf ("Events:            <none>\n");
    zube_cli_table_destroy (&table);
    zube_api_list_destroy (&list);
}

static void
s_describe (zubectl_t *self, const zube_kind_t *kind, const ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    s_field (0, "Name", zubectl_object_name (object));
    if (kind->namespaced)
        s_field (0, "Namespace", zubectl_object_namespace (object));
    if (meta) {
        s_map ("Labels", (ProtobufCMessage *const *) meta->labels, meta->n_labels, false);
        //  The last-applied configuration is long and says nothing new.
        size_t shown = 0;
        ProtobufCMessage *annotations[meta->n_annotations + 1];
        for (size_t i = 0; i < meta->n_annotations; i++)
            if (!meta->annotations[i]->key
                || strcmp (meta->annotations[i]->key, ZUBECTL_LAST_APPLIED) != 0)
                annotations[shown++] = (ProtobufCMessage *) meta->annotations[i];
        s_map ("Annotations", annotations, shown, true);
        s_field (0, "CreationTimestamp", meta->creation_timestamp);
        if (meta->deletion_timestamp && *meta->deletion_timestamp)
            s_field (0, "DeletionTimestamp", meta->deletion_timestamp);
    }
    if (strcmp (kind->kind, "Pod") == 0)
        s_describe_pod ((const Zube__Pod *) object);
    else
    if (strcmp (kind->kind, "Node") == 0)
        s_describe_node ((const Zube__Node *) object);
    else
    if (strcmp (kind->kind, "Deployment") == 0)
        s_describe_deployment ((const Zube__Deployment *) object);
    else
    if (strcmp (kind->kind, "Service") == 0)
        s_describe_service ((const Zube__Service *) object);
    else
    if (strcmp (kind->kind, "Namespace") == 0) {
        const Zube__Namespace *namespace = (const Zube__Namespace *) object;
        s_field (0, "Status",
                 namespace->status && namespace->status->phase ? namespace->status->phase : "Active");
    }
    else
    if (strcmp (kind->kind, "Event") != 0)
        s_describe_generic (object);
    if (strcmp (kind->kind, "Event") != 0)
        s_events (self, kind, object);
}

int
zubectl_describe (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *label_selector = NULL;
    bool all_namespaces = false;
    zube_cli_flag_t flags[] = {
        {.name = "selector", .short_name = 'l', .type = ZUBE_CLI_STRING, .value = &label_selector,
         .value_name = "SELECTOR", .help = "Describe the objects with matching labels"},
        {.name = "all-namespaces", .short_name = 'A', .type = ZUBE_CLI_BOOL, .value = &all_namespaces,
         .help = "Without names: the objects of every namespace"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count == 0) {
        zube_cli_error ("You must specify the type of resource to describe. Use \"zubectl "
                        "api-resources\" for a complete list of supported resources.");
        return 1;
    }
    char *slash = strchr (args[0], '/');
    const char *single_name = NULL;
    if (slash) {
        *slash = 0;
        single_name = slash + 1;
    }
    const zube_kind_t *kind = zubectl_kind (args[0]);
    if (!kind)
        return 1;
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return 1;
    const char *namespace = kind->namespaced ? zubectl_namespace (self) : NULL;
    int rc = 0, printed = 0;
    zube_api_error_t error;
    int name_count = single_name ? 1 : count - 1;
    for (int i = 0; i < name_count; i++) {
        const char *name = single_name ? single_name : args[i + 1];
        ProtobufCMessage *object = NULL;
        if (zube_api_get (api, kind->resource, namespace, name, &object, &error) != ZUBE_OK) {
            zubectl_print_api_error (self, &error, NULL);
            rc = 1;
            continue;
        }
        if (printed++)
            printf ("\n\n");
        s_describe (self, kind, object);
        protobuf_c_message_free_unpacked (object, NULL);
    }
    if (name_count == 0) {
        zube_api_list_options_t options = {
            .namespace = kind->namespaced && !all_namespaces ? namespace : NULL,
            .label_selector = label_selector};
        zube_api_list_t *list = NULL;
        if (zube_api_list (api, kind->resource, &options, &list, &error) != ZUBE_OK) {
            zubectl_print_api_error (self, &error, NULL);
            return 1;
        }
        for (size_t i = 0; i < list->count; i++) {
            if (printed++)
                printf ("\n\n");
            s_describe (self, kind, list->items[i]);
        }
        if (list->count == 0) {
            if (kind->namespaced && !all_namespaces)
                fprintf (stderr, "No resources found in %s namespace.\n", namespace);
            else
                fprintf (stderr, "No resources found\n");
        }
        zube_api_list_destroy (&list);
    }
    return rc;
}
