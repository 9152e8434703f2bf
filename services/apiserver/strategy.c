/*  strategy - the per-kind part of the apiserver: defaults, and what
    create, update and a status update may change.

    Defaults are Kubernetes' SetDefaults_* functions for the kinds zube
    stores (pkg/apis/core/v1, apps/v1 and batch/v1 defaults.go in Kubernetes), plus the
    DefaultTolerationSeconds admission plugin for pods. The prepare
    functions are the registry strategies' PrepareForCreate and
    PrepareForUpdate; they work on any kind through the descriptors,
    swapping whole fields between the new object and a copy of the old.
    Validation is in strategy_validate.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strategy_private.h"
#include "zube/selector.h"

//  ---------------------------------------------------------------------
//  Field errors

void
zube_field_errors_add (zube_field_errors_t *errors, const char *type, const char *field,
                       const char *format, ...)
{
    if (!errors)
        return;
    if (errors->count < ZUBE_FIELD_ERRORS_MAX) {
        zube_field_error_t *error = &errors->errors[errors->count];
        snprintf (error->type, sizeof error->type, "%s", type ? type : "");
        snprintf (error->field, sizeof error->field, "%s", field ? field : "");
        char detail[sizeof error->message];
        va_list args;
        va_start (args, format);
        vsnprintf (detail, sizeof detail, format, args);
        va_end (args);
        size_t used = (size_t)snprintf (error->message, sizeof error->message,
                                        "%s: ", field ? field : "");
        if (used < sizeof error->message)
            snprintf (error->message + used, sizeof error->message - used, "%s", detail);
    }
    errors->count++;
}

//  ---------------------------------------------------------------------
//  Helpers

void *
strategy_message_new (const ProtobufCMessageDescriptor *descriptor)
{
    ProtobufCMessage *message = malloc (descriptor->sizeof_message);
    if (message)
        protobuf_c_message_init (descriptor, message);
    return message;
}

ProtobufCMessage *
strategy_message_copy (const ProtobufCMessage *message)
{
    if (!message)
        return NULL;
    size_t size = protobuf_c_message_get_packed_size (message);
    uint8_t *data = malloc (size ? size : 1);
    if (!data)
        return NULL;
    protobuf_c_message_pack (message, data);
    ProtobufCMessage *copy =
        protobuf_c_message_unpack (message->descriptor, NULL, size, data);
    free (data);
    return copy;
}

bool
strategy_set_string (char **field, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = strdup (value)))
        return false;
    free (*field);
    *field = copy;
    return true;
}

static const ProtobufCFieldDescriptor *
s_field (const ProtobufCMessage *object, const char *name)
{
    return protobuf_c_message_descriptor_get_field_by_name (object->descriptor, name);
}

Zube__ObjectMeta *
strategy_meta (const ProtobufCMessage *object)
{
    if (!object)
        return NULL;
    const ProtobufCFieldDescriptor *field = s_field (object, "metadata");
    if (!field || field->type != PROTOBUF_C_TYPE_MESSAGE ||
        field->descriptor != &zube__object_meta__descriptor)
        return NULL;
    return *(Zube__ObjectMeta **)((char *)object + field->offset);
}

bool
strategy_is (const zube_kind_t *kind, const ProtobufCMessageDescriptor *descriptor)
{
    return kind && kind->descriptor == descriptor;
}

bool
strategy_selector_matches_labels (const Zube__LabelSelector *selector,
                                  const Zube__ObjectMeta *meta)
{
    zube_selector_t *sel = NULL;
    if (zube_selector_from_message (selector, &sel, NULL, 0))
        return false;
    bool yes = zube_selector_matches_meta (sel, meta);
    zube_selector_destroy (&sel);
    return yes;
}

//  The bytes a field takes in its message (the value, not the quantifier)
static size_t
s_field_size (const ProtobufCFieldDescriptor *field)
{
    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return sizeof (void *);
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof (protobuf_c_boolean);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof (ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof (void *);
    }
    return 0;
}

static void
s_swap_bytes (char *a, char *b, size_t size)
{
    char tmp[32];
    while (size) {
        size_t n = size < sizeof tmp ? size : sizeof tmp;
        memcpy (tmp, a, n);
        memcpy (a, b, n);
        memcpy (b, tmp, n);
        a += n;
        b += n;
        size -= n;
    }
}

//  Swaps one field (value and presence) between two messages of a type
static void
s_swap_field (ProtobufCMessage *a, ProtobufCMessage *b,
              const ProtobufCFieldDescriptor *field)
{
    s_swap_bytes ((char *)a + field->offset, (char *)b + field->offset,
                  s_field_size (field));
    if (field->quantifier_offset) {
        size_t size = field->label == PROTOBUF_C_LABEL_REPEATED
                          ? sizeof (size_t)
                          : sizeof (protobuf_c_boolean);
        s_swap_bytes ((char *)a + field->quantifier_offset,
                      (char *)b + field->quantifier_offset, size);
    }
}

//  ---------------------------------------------------------------------
//  Defaults

static void
s_default_string (char **field, const char *value)
{
    if (!*field || !**field)
        strategy_set_string (field, value);
}

static void
s_default_probe (Zube__Probe *probe)
{
    if (!probe)
        return;
    if (!probe->has_timeout_seconds) {
        probe->has_timeout_seconds = true;
        probe->timeout_seconds = 1;
    }
    if (!probe->has_period_seconds) {
        probe->has_period_seconds = true;
        probe->period_seconds = 10;
    }
    if (!probe->has_success_threshold) {
        probe->has_success_threshold = true;
        probe->success_threshold = 1;
    }
    if (!probe->has_failure_threshold) {
        probe->has_failure_threshold = true;
        probe->failure_threshold = 3;
    }
    if (probe->http_get) {
        s_default_string (&probe->http_get->path, "/");
        s_default_string (&probe->http_get->scheme, "HTTP");
    }
}

//  Always for ":latest" or no tag, IfNotPresent otherwise (a digest too)
static const char *
s_pull_policy (const char *image)
{
    if (!image)
        return "Always";
    if (strchr (image, '@'))
        return "IfNotPresent";
    const char *slash = strrchr (image, '/');
    const char *colon = strrchr (slash ? slash : image, ':');
    if (!colon || strcmp (colon + 1, "latest") == 0)
        return "Always";
    return "IfNotPresent";
}

static void
s_default_container (Zube__Container *container, bool host_network)
{
    s_default_string (&container->image_pull_policy, s_pull_policy (container->image));
    s_default_string (&container->termination_message_path, "/dev/termination-log");
    s_default_string (&container->termination_message_policy, "File");
    for (size_t i = 0; i < container->n_ports; i++) {
        Zube__ContainerPort *port = container->ports[i];
        s_default_string (&port->protocol, "TCP");
        //  defaultHostNetworkPorts
        if (host_network && (!port->has_host_port || port->host_port == 0)) {
            port->has_host_port = true;
            port->host_port = port->container_port;
        }
    }
    for (size_t i = 0; i < container->n_env; i++) {
        Zube__EnvVar *env = container->env[i];
        if (env->value_from && env->value_from->field_ref)
            s_default_string (&env->value_from->field_ref->api_version, "v1");
    }
    s_default_probe (container->liveness_probe);
    s_default_probe (container->readiness_probe);
    s_default_probe (container->startup_probe);
}

static void
s_default_mode (protobuf_c_boolean *has, int32_t *mode)
{
    if (!*has) {
        *has = true;
        *mode = 0644;
    }
}

static void
s_default_volume (Zube__Volume *volume)
{
    if (!volume->host_path && !volume->empty_dir && !volume->secret &&
        !volume->persistent_volume_claim && !volume->downward_api &&
        !volume->config_map && !volume->projected)
        volume->empty_dir =
            strategy_message_new (&zube__empty_dir_volume_source__descriptor);
    if (volume->secret)
        s_default_mode (&volume->secret->has_default_mode, &volume->secret->default_mode);
    if (volume->config_map)
        s_default_mode (&volume->config_map->has_default_mode,
                        &volume->config_map->default_mode);
    if (volume->downward_api)
        s_default_mode (&volume->downward_api->has_default_mode,
                        &volume->downward_api->default_mode);
    if (volume->projected)
        s_default_mode (&volume->projected->has_default_mode,
                        &volume->projected->default_mode);
    if (volume->host_path && !volume->host_path->type)
        strategy_set_string (&volume->host_path->type, "");
}

static void
s_default_pod_spec (Zube__PodSpec *spec)
{
    if (!spec)
        return;
    s_default_string (&spec->dns_policy, "ClusterFirst");
    s_default_string (&spec->restart_policy, "Always");
    s_default_string (&spec->scheduler_name, "default-scheduler");
    if (!spec->has_termination_grace_period_seconds) {
        spec->has_termination_grace_period_seconds = true;
        spec->termination_grace_period_seconds = 30;
    }
    if (!spec->security_context)
        spec->security_context =
            strategy_message_new (&zube__pod_security_context__descriptor);
    //  The deprecated serviceAccount and serviceAccountName mirror each other
    if ((!spec->service_account_name || !*spec->service_account_name) &&
        spec->service_account && *spec->service_account)
        strategy_set_string (&spec->service_account_name, spec->service_account);
    bool host_network = spec->has_host_network && spec->host_network;
    for (size_t i = 0; i < spec->n_init_containers; i++)
        s_default_container (spec->init_containers[i], host_network);
    for (size_t i = 0; i < spec->n_containers; i++)
        s_default_container (spec->containers[i], host_network);
    for (size_t i = 0; i < spec->n_volumes; i++)
        s_default_volume (spec->volumes[i]);
}

static void
s_default_template (Zube__PodTemplateSpec *template)
{
    if (template)
        s_default_pod_spec (template->spec);
}

//  SetDefaults_Pod: requests default to limits where only limits are set
static void
s_default_requests (Zube__ResourceRequirements *resources)
{
    if (!resources || !resources->n_limits)
        return;
    for (size_t i = 0; i < resources->n_limits; i++) {
        const Zube__ResourceRequirements__LimitsEntry *limit = resources->limits[i];
        bool found = false;
        for (size_t r = 0; r < resources->n_requests && !found; r++)
            found = strcmp (resources->requests[r]->key, limit->key) == 0;
        if (found || !limit->value)
            continue;
        Zube__ResourceRequirements__RequestsEntry **grown =
            realloc (resources->requests,
                     (resources->n_requests + 1) * sizeof *resources->requests);
        if (!grown)
            return;
        resources->requests = grown;
        Zube__ResourceRequirements__RequestsEntry *entry = strategy_message_new (
            &zube__resource_requirements__requests_entry__descriptor);
        if (!entry)
            return;
        entry->key = strdup (limit->key);
        entry->value = (Zube__Quantity *)strategy_message_copy (&limit->value->base);
        if (!entry->key || !entry->value) {
            protobuf_c_message_free_unpacked (&entry->base, NULL);
            return;
        }
        resources->requests[resources->n_requests++] = entry;
    }
}

static bool
s_has_toleration (const Zube__PodSpec *spec, const char *key)
{
    for (size_t i = 0; i < spec->n_tolerations; i++) {
        const Zube__Toleration *t = spec->tolerations[i];
        bool any_key = !t->key || !*t->key;
        bool matches_key = any_key || strcmp (t->key, key) == 0;
        bool effect_ok =
            !t->effect || !*t->effect || strcmp (t->effect, "NoExecute") == 0;
        if (matches_key && effect_ok)
            return true;
    }
    return false;
}

//  The DefaultTolerationSeconds admission plugin: NoExecute tolerations
//  for not-ready and unreachable nodes, 300 s, unless the pod has its own
static void
s_default_tolerations (Zube__PodSpec *spec)
{
    static const char *const keys[] = {"node.kubernetes.io/not-ready",
                                       "node.kubernetes.io/unreachable"};
    for (size_t k = 0; k < 2; k++) {
        if (s_has_toleration (spec, keys[k]))
            continue;
        Zube__Toleration **grown =
            realloc (spec->tolerations, (spec->n_tolerations + 1) * sizeof *grown);
        if (!grown)
            return;
        spec->tolerations = grown;
        Zube__Toleration *t = strategy_message_new (&zube__toleration__descriptor);
        if (!t)
            return;
        t->key = strdup (keys[k]);
        t->operator_ = strdup ("Exists");
        t->effect = strdup ("NoExecute");
        t->has_toleration_seconds = true;
        t->toleration_seconds = 300;
        spec->tolerations[spec->n_tolerations++] = t;
    }
}

static void
s_default_pod (Zube__Pod *pod)
{
    Zube__PodSpec *spec = pod->spec;
    if (!spec)
        return;
    for (size_t i = 0; i < spec->n_containers; i++)
        s_default_requests (spec->containers[i]->resources);
    for (size_t i = 0; i < spec->n_init_containers; i++)
        s_default_requests (spec->init_containers[i]->resources);
    if (!spec->has_enable_service_links) {
        spec->has_enable_service_links = true;
        spec->enable_service_links = true;
    }
    s_default_pod_spec (spec);
    s_default_tolerations (spec);
}

static void
s_default_service (Zube__Service *service)
{
    Zube__ServiceSpec *spec = service->spec;
    if (!spec)
        return;
    s_default_string (&spec->session_affinity, "None");
    s_default_string (&spec->type, "ClusterIP");
    if (strcmp (spec->session_affinity, "None") == 0 && spec->session_affinity_config) {
        protobuf_c_message_free_unpacked (&spec->session_affinity_config->base, NULL);
        spec->session_affinity_config = NULL;
    }
    if (strcmp (spec->session_affinity, "ClientIP") == 0) {
        if (!spec->session_affinity_config)
            spec->session_affinity_config =
                strategy_message_new (&zube__session_affinity_config__descriptor);
        if (spec->session_affinity_config && !spec->session_affinity_config->client_ip)
            spec->session_affinity_config->client_ip =
                strategy_message_new (&zube__client_ipconfig__descriptor);
        Zube__ClientIPConfig *client_ip = spec->session_affinity_config
                                              ? spec->session_affinity_config->client_ip
                                              : NULL;
        if (client_ip && !client_ip->has_timeout_seconds) {
            client_ip->has_timeout_seconds = true;
            client_ip->timeout_seconds = 10800;
        }
    }
    for (size_t i = 0; i < spec->n_ports; i++) {
        Zube__ServicePort *port = spec->ports[i];
        s_default_string (&port->protocol, "TCP");
        bool unset = !port->target_port ||
                     (!port->target_port->str_val && (!port->target_port->has_int_val ||
                                                      port->target_port->int_val == 0));
        if (unset) {
            if (!port->target_port)
                port->target_port =
                    strategy_message_new (&zube__int_or_string__descriptor);
            if (port->target_port) {
                port->target_port->has_int_val = true;
                port->target_port->int_val = port->port;
            }
        }
    }
    bool node_ports =
        strcmp (spec->type, "NodePort") == 0 || strcmp (spec->type, "LoadBalancer") == 0;
    if (node_ports)
        s_default_string (&spec->external_traffic_policy, "Cluster");
    if (strcmp (spec->type, "ExternalName") != 0)
        s_default_string (&spec->internal_traffic_policy, "Cluster");
    if (strcmp (spec->type, "LoadBalancer") == 0 &&
        !spec->has_allocate_load_balancer_node_ports) {
        spec->has_allocate_load_balancer_node_ports = true;
        spec->allocate_load_balancer_node_ports = true;
    }
}

static Zube__IntOrString *
s_percent (const char *value)
{
    Zube__IntOrString *v = strategy_message_new (&zube__int_or_string__descriptor);
    if (v)
        v->str_val = strdup (value);
    return v;
}

static Zube__IntOrString *
s_int (int32_t value)
{
    Zube__IntOrString *v = strategy_message_new (&zube__int_or_string__descriptor);
    if (v) {
        v->has_int_val = true;
        v->int_val = value;
    }
    return v;
}

static void
s_default_int32 (protobuf_c_boolean *has, int32_t *field, int32_t value)
{
    if (!*has) {
        *has = true;
        *field = value;
    }
}

static void
s_default_deployment (Zube__Deployment *deployment)
{
    Zube__DeploymentSpec *spec = deployment->spec;
    if (!spec)
        return;
    s_default_int32 (&spec->has_replicas, &spec->replicas, 1);
    if (!spec->strategy)
        spec->strategy = strategy_message_new (&zube__deployment_strategy__descriptor);
    if (spec->strategy) {
        s_default_string (&spec->strategy->type, "RollingUpdate");
        if (strcmp (spec->strategy->type, "RollingUpdate") == 0) {
            if (!spec->strategy->rolling_update)
                spec->strategy->rolling_update =
                    strategy_message_new (&zube__rolling_update_deployment__descriptor);
            Zube__RollingUpdateDeployment *rolling = spec->strategy->rolling_update;
            if (rolling && !rolling->max_unavailable)
                rolling->max_unavailable = s_percent ("25%");
            if (rolling && !rolling->max_surge)
                rolling->max_surge = s_percent ("25%");
        }
    }
    s_default_int32 (&spec->has_revision_history_limit, &spec->revision_history_limit,
                     10);
    s_default_int32 (&spec->has_progress_deadline_seconds,
                     &spec->progress_deadline_seconds, 600);
    s_default_template (spec->template_);
}

static void
s_default_daemon_set (Zube__DaemonSet *daemon_set)
{
    Zube__DaemonSetSpec *spec = daemon_set->spec;
    if (!spec)
        return;
    if (!spec->update_strategy)
        spec->update_strategy =
            strategy_message_new (&zube__daemon_set_update_strategy__descriptor);
    if (spec->update_strategy) {
        s_default_string (&spec->update_strategy->type, "RollingUpdate");
        if (strcmp (spec->update_strategy->type, "RollingUpdate") == 0) {
            if (!spec->update_strategy->rolling_update)
                spec->update_strategy->rolling_update =
                    strategy_message_new (&zube__rolling_update_daemon_set__descriptor);
            Zube__RollingUpdateDaemonSet *rolling = spec->update_strategy->rolling_update;
            if (rolling && !rolling->max_unavailable)
                rolling->max_unavailable = s_int (1);
            if (rolling && !rolling->max_surge)
                rolling->max_surge = s_int (0);
        }
    }
    s_default_int32 (&spec->has_revision_history_limit, &spec->revision_history_limit,
                     10);
    s_default_template (spec->template_);
}

static void
s_default_job (Zube__Job *job)
{
    Zube__JobSpec *spec = job->spec;
    if (!spec)
        return;
    if (!spec->has_completions && !spec->has_parallelism) {
        spec->has_completions = true;
        spec->completions = 1;
    }
    s_default_int32 (&spec->has_parallelism, &spec->parallelism, 1);
    s_default_int32 (&spec->has_backoff_limit, &spec->backoff_limit,
                     spec->has_backoff_limit_per_index ? 2147483647 : 6);
    s_default_string (&spec->completion_mode, "NonIndexed");
    if (!spec->has_suspend) {
        spec->has_suspend = true;
        spec->suspend = false;
    }
    s_default_string (&spec->pod_replacement_policy,
                      spec->pod_failure_policy ? "Failed" : "TerminatingOrFailed");
    if (!spec->has_manual_selector) {
        spec->has_manual_selector = true;
        spec->manual_selector = false;
    }
    //  A job without labels takes its template's
    Zube__ObjectMeta *meta = job->metadata;
    Zube__ObjectMeta *template_meta = spec->template_ ? spec->template_->metadata : NULL;
    if (meta && meta->n_labels == 0 && template_meta && template_meta->n_labels) {
        Zube__ObjectMeta *copy =
            (Zube__ObjectMeta *)strategy_message_copy (&template_meta->base);
        if (copy) {
            s_swap_field (&meta->base, &copy->base,
                          protobuf_c_message_descriptor_get_field_by_name (
                              &zube__object_meta__descriptor, "labels"));
            protobuf_c_message_free_unpacked (&copy->base, NULL);
        }
    }
    s_default_template (spec->template_);
}

static void
s_map_set_label (Zube__ObjectMeta *meta, const char *key, const char *value)
{
    for (size_t i = 0; i < meta->n_labels; i++)
        if (strcmp (meta->labels[i]->key, key) == 0) {
            strategy_set_string (&meta->labels[i]->value, value);
            return;
        }
    Zube__ObjectMeta__LabelsEntry **grown =
        realloc (meta->labels, (meta->n_labels + 1) * sizeof *grown);
    if (!grown)
        return;
    meta->labels = grown;
    Zube__ObjectMeta__LabelsEntry *entry =
        strategy_message_new (&zube__object_meta__labels_entry__descriptor);
    if (!entry)
        return;
    entry->key = strdup (key);
    entry->value = strdup (value);
    meta->labels[meta->n_labels++] = entry;
}

static void
s_default_namespace (Zube__Namespace *ns)
{
    //  The kubernetes.io/metadata.name label always names the namespace
    if (ns->metadata && ns->metadata->name && *ns->metadata->name)
        s_map_set_label (ns->metadata, "kubernetes.io/metadata.name", ns->metadata->name);
    if (ns->status)
        s_default_string (&ns->status->phase, "Active");
}

static void
s_default_node (Zube__Node *node)
{
    Zube__NodeStatus *status = node->status;
    if (!status || status->n_allocatable || !status->n_capacity)
        return;
    Zube__NodeStatus *copy = (Zube__NodeStatus *)strategy_message_copy (&status->base);
    if (!copy)
        return;
    //  allocatable defaults to capacity: the copy's capacity entries move
    //  over (map entries of both fields have the same layout)
    status->allocatable = (Zube__NodeStatus__AllocatableEntry **)copy->capacity;
    status->n_allocatable = copy->n_capacity;
    for (size_t i = 0; i < status->n_allocatable; i++)
        status->allocatable[i]->base.descriptor =
            &zube__node_status__allocatable_entry__descriptor;
    copy->capacity = NULL;
    copy->n_capacity = 0;
    protobuf_c_message_free_unpacked (&copy->base, NULL);
}

static void
s_default_secret (Zube__Secret *secret)
{
    s_default_string (&secret->type, "Opaque");
    //  stringData is written into data and never stored
    for (size_t i = 0; i < secret->n_string_data; i++) {
        const Zube__Secret__StringDataEntry *source = secret->string_data[i];
        const char *value = source->value ? source->value : "";
        Zube__Secret__DataEntry *target = NULL;
        for (size_t d = 0; d < secret->n_data && !target; d++)
            if (strcmp (secret->data[d]->key, source->key) == 0)
                target = secret->data[d];
        if (!target) {
            Zube__Secret__DataEntry **grown =
                realloc (secret->data, (secret->n_data + 1) * sizeof *grown);
            if (!grown)
                return;
            secret->data = grown;
            target = strategy_message_new (&zube__secret__data_entry__descriptor);
            if (!target || !(target->key = strdup (source->key))) {
                free (target);
                return;
            }
            secret->data[secret->n_data++] = target;
        }
        uint8_t *bytes = malloc (strlen (value) + 1);
        if (!bytes)
            return;
        memcpy (bytes, value, strlen (value));
        free (target->value.data);
        target->has_value = true;
        target->value.data = bytes;
        target->value.len = strlen (value);
    }
    for (size_t i = 0; i < secret->n_string_data; i++)
        protobuf_c_message_free_unpacked (&secret->string_data[i]->base, NULL);
    free (secret->string_data);
    secret->string_data = NULL;
    secret->n_string_data = 0;
}

static void
s_default_endpoint_slice (Zube__EndpointSlice *slice)
{
    for (size_t i = 0; i < slice->n_ports; i++)
        s_default_string (&slice->ports[i]->protocol, "TCP");
}

void
zube_strategy_default (const zube_kind_t *kind, ProtobufCMessage *object)
{
    if (!kind || !object || object->descriptor != kind->descriptor)
        return;
    if (kind->descriptor == &zube__pod__descriptor)
        s_default_pod ((Zube__Pod *)object);
    else if (kind->descriptor == &zube__service__descriptor)
        s_default_service ((Zube__Service *)object);
    else if (kind->descriptor == &zube__deployment__descriptor)
        s_default_deployment ((Zube__Deployment *)object);
    else if (kind->descriptor == &zube__replica_set__descriptor) {
        Zube__ReplicaSet *rs = (Zube__ReplicaSet *)object;
        if (rs->spec) {
            s_default_int32 (&rs->spec->has_replicas, &rs->spec->replicas, 1);
            s_default_template (rs->spec->template_);
        }
    } else if (kind->descriptor == &zube__daemon_set__descriptor)
        s_default_daemon_set ((Zube__DaemonSet *)object);
    else if (kind->descriptor == &zube__job__descriptor)
        s_default_job ((Zube__Job *)object);
    else if (kind->descriptor == &zube__namespace__descriptor)
        s_default_namespace ((Zube__Namespace *)object);
    else if (kind->descriptor == &zube__node__descriptor)
        s_default_node ((Zube__Node *)object);
    else if (kind->descriptor == &zube__secret__descriptor)
        s_default_secret ((Zube__Secret *)object);
    else if (kind->descriptor == &zube__endpoint_slice__descriptor)
        s_default_endpoint_slice ((Zube__EndpointSlice *)object);
}

//  ---------------------------------------------------------------------
//  Prepare

static ProtobufCMessage **
s_message_field (ProtobufCMessage *object, const char *name,
                 const ProtobufCFieldDescriptor **field_p)
{
    const ProtobufCFieldDescriptor *field = s_field (object, name);
    if (!field || field->type != PROTOBUF_C_TYPE_MESSAGE ||
        field->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    if (field_p)
        *field_p = field;
    return (ProtobufCMessage **)((char *)object + field->offset);
}

//  The pod's QoS class as Kubernetes computes it for the containers
static const char *
s_qos_class (const Zube__PodSpec *spec)
{
    bool any = false, guaranteed = true;
    for (size_t i = 0; spec && i < spec->n_containers + spec->n_init_containers; i++) {
        const Zube__Container *c = i < spec->n_containers
                                       ? spec->containers[i]
                                       : spec->init_containers[i - spec->n_containers];
        const Zube__ResourceRequirements *r = c->resources;
        size_t n_req = r ? r->n_requests : 0, n_lim = r ? r->n_limits : 0;
        if (n_req || n_lim)
            any = true;
        //  Guaranteed: cpu and memory limits, and requests equal to them
        for (const char *const *name = (const char *const[]){"cpu", "memory", NULL};
             *name; name++) {
            const Zube__Quantity *limit = NULL, *request = NULL;
            for (size_t l = 0; l < n_lim; l++)
                if (strcmp (r->limits[l]->key, *name) == 0)
                    limit = r->limits[l]->value;
            for (size_t q = 0; q < n_req; q++)
                if (strcmp (r->requests[q]->key, *name) == 0)
                    request = r->requests[q]->value;
            if (!limit || (request && request->milli_value != limit->milli_value))
                guaranteed = false;
        }
    }
    if (!any)
        return "BestEffort";
    return guaranteed ? "Guaranteed" : "Burstable";
}

//  Job: the selector the job controller owns, unless manualSelector
static void
s_job_selector (Zube__Job *job)
{
    Zube__JobSpec *spec = job->spec;
    if (!spec || (spec->has_manual_selector && spec->manual_selector) || spec->selector)
        return;
    const char *name = job->metadata && job->metadata->name ? job->metadata->name : "";
    const char *uid = job->metadata ? job->metadata->uid : NULL;
    if (!spec->template_)
        spec->template_ = strategy_message_new (&zube__pod_template_spec__descriptor);
    if (!spec->template_)
        return;
    if (!spec->template_->metadata)
        spec->template_->metadata = strategy_message_new (&zube__object_meta__descriptor);
    Zube__ObjectMeta *labels = spec->template_->metadata;
    if (!labels)
        return;
    s_map_set_label (labels, "batch.kubernetes.io/job-name", name);
    s_map_set_label (labels, "job-name", name);
    if (uid && *uid) {
        s_map_set_label (labels, "batch.kubernetes.io/controller-uid", uid);
        s_map_set_label (labels, "controller-uid", uid);
    }
    spec->selector = strategy_message_new (&zube__label_selector__descriptor);
    if (!spec->selector)
        return;
    spec->selector->match_labels = calloc (1, sizeof *spec->selector->match_labels);
    Zube__LabelSelector__MatchLabelsEntry *entry =
        strategy_message_new (&zube__label_selector__match_labels_entry__descriptor);
    if (!spec->selector->match_labels || !entry) {
        free (entry);
        return;
    }
    bool by_uid = uid && *uid;
    entry->key = strdup (by_uid ? "batch.kubernetes.io/controller-uid"
                                : "batch.kubernetes.io/job-name");
    entry->value = strdup (by_uid ? uid : name);
    spec->selector->match_labels[0] = entry;
    spec->selector->n_match_labels = 1;
}

void
zube_strategy_prepare_create (const zube_kind_t *kind, ProtobufCMessage *object)
{
    if (!kind || !object || object->descriptor != kind->descriptor)
        return;
    if (kind->has_status) {
        const ProtobufCFieldDescriptor *field = NULL;
        ProtobufCMessage **status = s_message_field (object, "status", &field);
        if (status && *status) {
            protobuf_c_message_free_unpacked (*status, NULL);
            *status = NULL;
        }
        if (status && kind->descriptor == &zube__pod__descriptor) {
            Zube__PodStatus *pod_status =
                strategy_message_new (&zube__pod_status__descriptor);
            if (pod_status) {
                pod_status->phase = strdup ("Pending");
                pod_status->qos_class =
                    strdup (s_qos_class (((Zube__Pod *)object)->spec));
            }
            *status = &pod_status->base;
        }
        if (status && kind->descriptor == &zube__namespace__descriptor) {
            Zube__NamespaceStatus *ns_status =
                strategy_message_new (&zube__namespace_status__descriptor);
            if (ns_status)
                ns_status->phase = strdup ("Active");
            *status = &ns_status->base;
        }
    }
    if (kind->descriptor == &zube__job__descriptor)
        s_job_selector ((Zube__Job *)object);
    Zube__ObjectMeta *meta = strategy_meta (object);
    if (meta) {
        meta->has_generation = true;
        meta->generation = 1;
    }
}

void
zube_strategy_prepare_update (const zube_kind_t *kind, ProtobufCMessage *object,
                              const ProtobufCMessage *old)
{
    if (!kind || !object || !old || object->descriptor != old->descriptor)
        return;
    //  The main resource does not write status
    const ProtobufCFieldDescriptor *status_field = s_field (object, "status");
    if (kind->has_status && status_field) {
        ProtobufCMessage *old_copy = strategy_message_copy (old);
        if (old_copy) {
            s_swap_field (object, old_copy, status_field);
            protobuf_c_message_free_unpacked (old_copy, NULL);
        }
    }
    Zube__ObjectMeta *meta = strategy_meta (object);
    const Zube__ObjectMeta *old_meta = strategy_meta (old);
    if (!meta)
        return;
    int64_t generation = old_meta && old_meta->has_generation ? old_meta->generation : 1;
    if (s_field (object, "spec") && zube_strategy_spec_changed (object, old))
        generation++;
    meta->has_generation = true;
    meta->generation = generation;
}

void
zube_strategy_prepare_status_update (const zube_kind_t *kind, ProtobufCMessage *object,
                                     const ProtobufCMessage *old)
{
    (void)kind;
    if (!object || !old || object->descriptor != old->descriptor)
        return;
    ProtobufCMessage *old_copy = strategy_message_copy (old);
    if (!old_copy)
        return;
    //  The new object's resourceVersion is what the update is conditional
    //  on: keep it
    Zube__ObjectMeta *meta = strategy_meta (object);
    Zube__ObjectMeta *copy_meta = strategy_meta (old_copy);
    if (meta && copy_meta) {
        char *rv = meta->resource_version;
        meta->resource_version = copy_meta->resource_version;
        copy_meta->resource_version = rv;
    }
    const ProtobufCMessageDescriptor *descriptor = object->descriptor;
    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
        if (strcmp (field->name, "status") != 0)
            s_swap_field (object, old_copy, field);
    }
    protobuf_c_message_free_unpacked (old_copy, NULL);
}

//  Packs a shallow copy with metadata, status, apiVersion and kind left out
static uint8_t *
s_pack_spec (const ProtobufCMessage *object, size_t *size_p)
{
    const ProtobufCMessageDescriptor *descriptor = object->descriptor;
    ProtobufCMessage *shallow = malloc (descriptor->sizeof_message);
    if (!shallow)
        return NULL;
    memcpy (shallow, object, descriptor->sizeof_message);
    static const char *const skip[] = {"metadata", "status", "api_version", "kind"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
        const ProtobufCFieldDescriptor *field = s_field (object, skip[i]);
        if (field && field->label != PROTOBUF_C_LABEL_REPEATED &&
            (field->type == PROTOBUF_C_TYPE_MESSAGE ||
             field->type == PROTOBUF_C_TYPE_STRING))
            *(void **)((char *)shallow + field->offset) = NULL;
    }
    size_t size = protobuf_c_message_get_packed_size (shallow);
    uint8_t *data = malloc (size ? size : 1);
    if (data)
        protobuf_c_message_pack (shallow, data);
    free (shallow);
    *size_p = size;
    return data;
}

bool
zube_strategy_spec_changed (const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    if (!a || !b)
        return a != b;
    if (a->descriptor != b->descriptor)
        return true;
    size_t size_a = 0, size_b = 0;
    uint8_t *pa = s_pack_spec (a, &size_a);
    uint8_t *pb = s_pack_spec (b, &size_b);
    //  Out of memory: say changed, the safe answer for generation
    bool changed = !pa || !pb || size_a != size_b || memcmp (pa, pb, size_a) != 0;
    free (pa);
    free (pb);
    return changed;
}
