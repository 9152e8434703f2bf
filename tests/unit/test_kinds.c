/*  test_kinds - the kinds registry, and the schema conventions the generic
    codec relies on (schemas/meta.proto's header, docs/schemas.md). */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../zube_test.h"
#include "api.pb-c.h"
#include "meta.pb-c.h"
#include "zube.pb-c.h"
#include "zube/kinds.h"

//  ---------------------------------------------------------------------
//  The naming rule: snake_case -> lowerCamel, with these acronyms
//  upper-cased when they are not the first part.

static const char *s_acronyms[][2] = {
    {"ip", "IP"},       {"ips", "IPs"}, {"cidr", "CIDR"},
    {"cidrs", "CIDRs"}, {"pid", "PID"}, {"ipc", "IPC"},
};

//  Writes the JSON name of a snake_case field name into `out`; false if
//  the name is not well-formed snake_case.
static bool
s_json_name (const char *snake, char *out, size_t size)
{
    size_t len = strlen (snake);
    if (len == 0 || len >= size || !islower ((unsigned char)snake[0]) ||
        snake[len - 1] == '_' || strstr (snake, "__"))
        return false;
    for (const char *c = snake; *c; c++)
        if (!islower ((unsigned char)*c) && !isdigit ((unsigned char)*c) && *c != '_')
            return false;
    size_t o = 0;
    bool first = true;
    const char *part = snake;
    while (*part) {
        size_t part_len = strcspn (part, "_");
        const char *upper = NULL;
        for (size_t a = 0; !first && a < sizeof s_acronyms / sizeof s_acronyms[0]; a++)
            if (strlen (s_acronyms[a][0]) == part_len &&
                strncmp (s_acronyms[a][0], part, part_len) == 0)
                upper = s_acronyms[a][1];
        if (upper)
            memcpy (out + o, upper, part_len);
        else {
            memcpy (out + o, part, part_len);
            if (!first)
                out[o] = (char)toupper ((unsigned char)out[o]);
        }
        o += part_len;
        first = false;
        part += part_len;
        if (*part == '_')
            part++;
    }
    out[o] = 0;
    return true;
}

//  Kubernetes JSON names the rule cannot produce (docs/schemas.md, "Names
//  outside the rule"). A NULL message means: this field name, in any
//  message.
static const struct {
    const char *message;
    const char *field;
    const char *json;
} s_outside_rule[] = {
    {NULL, "image_id", "imageID"},         {NULL, "container_id", "containerID"},
    {NULL, "provider_id", "providerID"},   {NULL, "machine_id", "machineID"},
    {NULL, "system_uuid", "systemUUID"},   {NULL, "boot_id", "bootID"},
    {NULL, "downward_api", "downwardAPI"}, {NULL, "enable_https", "enableHTTPS"},
    {"DaemonEndpoint", "port", "Port"},
};

//  The JSON name of a field, as the codec must write it.
static void
s_field_json_name (const ProtobufCMessageDescriptor *message,
                   const ProtobufCFieldDescriptor *field, char *out, size_t size)
{
    for (size_t i = 0; i < sizeof s_outside_rule / sizeof s_outside_rule[0]; i++)
        if (strcmp (s_outside_rule[i].field, field->name) == 0 &&
            (!s_outside_rule[i].message ||
             strcmp (s_outside_rule[i].message, message->short_name) == 0)) {
            snprintf (out, size, "%s", s_outside_rule[i].json);
            return;
        }
    if (!s_json_name (field->name, out, size))
        out[0] = 0;
}

static void
test_naming_rule (void)
{
    static const char *cases[][2] = {
        {"pod_ip", "podIP"},
        {"cluster_ips", "clusterIPs"},
        {"host_pid", "hostPID"},
        {"host_ipc", "hostIPC"},
        {"pod_cidr", "podCIDR"},
        {"pod_cidrs", "podCIDRs"},
        {"external_ips", "externalIPs"},
        {"load_balancer_ip", "loadBalancerIP"},
        {"http_get", "httpGet"},
        {"tcp_socket", "tcpSocket"},
        {"ip_families", "ipFamilies"},
        {"api_version", "apiVersion"},
        {"required_during_scheduling_ignored_during_execution",
         "requiredDuringSchedulingIgnoredDuringExecution"},
    };
    char json[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ZT_ASSERT (s_json_name (cases[i][0], json, sizeof json));
        ZT_ASSERT_STR_EQ (json, cases[i][1]);
    }
    ZT_ASSERT (!s_json_name ("_x", json, sizeof json));
    ZT_ASSERT (!s_json_name ("x_", json, sizeof json));
    ZT_ASSERT (!s_json_name ("a__b", json, sizeof json));
    ZT_ASSERT (!s_json_name ("podIP", json, sizeof json));
}

//  ---------------------------------------------------------------------
//  Lookups

static void
test_every_kind_by_api_version_and_kind (void)
{
    static const char *expected[][2] = {
        {"v1", "Namespace"},
        {"v1", "Pod"},
        {"v1", "Node"},
        {"v1", "Service"},
        {"discovery.k8s.io/v1", "EndpointSlice"},
        {"v1", "ServiceAccount"},
        {"v1", "ConfigMap"},
        {"v1", "Secret"},
        {"v1", "Event"},
        {"apps/v1", "ReplicaSet"},
        {"apps/v1", "Deployment"},
        {"apps/v1", "DaemonSet"},
        {"batch/v1", "Job"},
        {"coordination.k8s.io/v1", "Lease"},
        {"zube.io/v1alpha1", "Plugin"},
        {"zube.io/v1alpha1", "SchedulerProfile"},
        {"zube.io/v1alpha1", "PodGroup"},
    };
    size_t expected_count = sizeof expected / sizeof expected[0];
    ZT_ASSERT_INT_EQ (zube_kinds_count (), expected_count);
    for (size_t i = 0; i < expected_count; i++)
        ZT_ASSERT_MSG (zube_kind_lookup (expected[i][0], expected[i][1]), "%s %s missing",
                       expected[i][0], expected[i][1]);
    for (size_t i = 0; i < zube_kinds_count (); i++) {
        const zube_kind_t *kind = zube_kind_at (i);
        ZT_ASSERT (kind);
        ZT_ASSERT (zube_kind_lookup (kind->api_version, kind->kind) == kind);
        ZT_ASSERT (zube_kind_lookup (NULL, kind->kind) == kind);
    }
    ZT_ASSERT (zube_kind_at (zube_kinds_count ()) == NULL);
}

static void
test_every_kind_by_resource (void)
{
    char name[256];
    for (size_t i = 0; i < zube_kinds_count (); i++) {
        const zube_kind_t *kind = zube_kind_at (i);
        ZT_ASSERT_MSG (zube_kind_by_resource (kind->resource) == kind, "%s",
                       kind->resource);
        ZT_ASSERT_MSG (zube_kind_by_resource (kind->singular) == kind, "%s",
                       kind->singular);
        ZT_ASSERT_MSG (zube_kind_by_resource (kind->kind) == kind, "%s", kind->kind);
        //  Every short name.
        const char *s = kind->short_names;
        while (*s) {
            size_t len = strcspn (s, ",");
            snprintf (name, sizeof name, "%.*s", (int)len, s);
            ZT_ASSERT_MSG (zube_kind_by_resource (name) == kind, "short name %s", name);
            s += len;
            if (*s == ',')
                s++;
        }
        //  Group-qualified forms.
        if (*kind->group) {
            snprintf (name, sizeof name, "%s.%s", kind->resource, kind->group);
            ZT_ASSERT_MSG (zube_kind_by_resource (name) == kind, "%s", name);
            snprintf (name, sizeof name, "%s.%s", kind->singular, kind->group);
            ZT_ASSERT_MSG (zube_kind_by_resource (name) == kind, "%s", name);
            snprintf (name, sizeof name, "%s.%s.%s", kind->resource, kind->version,
                      kind->group);
            ZT_ASSERT_MSG (zube_kind_by_resource (name) == kind, "%s", name);
            snprintf (name, sizeof name, "%s.nosuchgroup", kind->resource);
            ZT_ASSERT_MSG (zube_kind_by_resource (name) == NULL, "%s", name);
        }
        //  kubectl is case-insensitive about resource names.
        snprintf (name, sizeof name, "%s", kind->resource);
        for (char *c = name; *c; c++)
            *c = (char)toupper ((unsigned char)*c);
        ZT_ASSERT_MSG (zube_kind_by_resource (name) == kind, "%s", name);
    }
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("po")->kind, "Pod");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("svc")->kind, "Service");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("ns")->kind, "Namespace");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("deploy")->kind, "Deployment");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("deployments.apps")->kind, "Deployment");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("Deployment.apps")->kind, "Deployment");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("deployments.v1.apps")->kind, "Deployment");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("endpointslices.discovery.k8s.io")->kind,
                      "EndpointSlice");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("leases.coordination.k8s.io")->kind,
                      "Lease");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("rs")->kind, "ReplicaSet");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("ds")->kind, "DaemonSet");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("jobs.batch")->kind, "Job");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("pg")->kind, "PodGroup");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("plugins.zube.io")->kind, "Plugin");
    ZT_ASSERT (zube_kind_by_resource ("pods")->namespaced);
    ZT_ASSERT (zube_kind_by_resource ("nodes")->namespaced == false);
    ZT_ASSERT (zube_kind_by_resource ("namespaces")->namespaced == false);
    ZT_ASSERT (zube_kind_by_resource ("configmaps")->has_status == false);
}

static void
test_every_kind_by_descriptor (void)
{
    for (size_t i = 0; i < zube_kinds_count (); i++) {
        const zube_kind_t *kind = zube_kind_at (i);
        ZT_ASSERT (kind->descriptor && kind->list_descriptor);
        ZT_ASSERT (zube_kind_by_descriptor (kind->descriptor) == kind);
        ZT_ASSERT (zube_kind_by_descriptor (kind->list_descriptor) == kind);
    }
    ZT_ASSERT (zube_kind_by_descriptor (&zube__object_meta__descriptor) == NULL);
    ZT_ASSERT (zube_kind_by_descriptor (NULL) == NULL);
}

static void
test_unknown_names (void)
{
    ZT_ASSERT (zube_kind_lookup ("v1", "Pods") == NULL);
    ZT_ASSERT (zube_kind_lookup ("apps/v1", "Pod") == NULL);
    ZT_ASSERT (zube_kind_lookup ("v1", "pod") == NULL);
    ZT_ASSERT (zube_kind_lookup ("v1", NULL) == NULL);
    ZT_ASSERT (zube_kind_lookup (NULL, "Widget") == NULL);
    ZT_ASSERT (zube_kind_by_resource ("widgets") == NULL);
    ZT_ASSERT (zube_kind_by_resource ("") == NULL);
    ZT_ASSERT (zube_kind_by_resource (NULL) == NULL);
    ZT_ASSERT (zube_kind_by_resource ("pod.apps") == NULL);
    ZT_ASSERT (zube_kind_by_resource ("p") == NULL);
    ZT_ASSERT (zube_kind_by_resource ("podsx") == NULL);
}

static void
test_table_is_consistent (void)
{
    for (size_t i = 0; i < zube_kinds_count (); i++) {
        const zube_kind_t *kind = zube_kind_at (i);
        char api_version[128];
        if (*kind->group)
            snprintf (api_version, sizeof api_version, "%s/%s", kind->group,
                      kind->version);
        else
            snprintf (api_version, sizeof api_version, "%s", kind->version);
        ZT_ASSERT_STR_EQ (kind->api_version, api_version);
        ZT_ASSERT_STR_EQ (kind->descriptor->short_name, kind->kind);
        //  No two kinds answer to the same name.
        for (size_t j = 0; j < i; j++) {
            const zube_kind_t *other = zube_kind_at (j);
            ZT_ASSERT_MSG (strcmp (other->resource, kind->resource) != 0 ||
                               strcmp (other->group, kind->group) != 0,
                           "%s twice", kind->resource);
            ZT_ASSERT_MSG (zube_kind_by_resource (kind->resource) == kind, "%s shadowed",
                           kind->resource);
        }
    }
}

//  ---------------------------------------------------------------------
//  Schema conventions

static const ProtobufCFieldDescriptor *
s_field (const ProtobufCMessageDescriptor *descriptor, unsigned id)
{
    return protobuf_c_message_descriptor_get_field (descriptor, id);
}

static void
s_assert_field (const ProtobufCMessageDescriptor *descriptor, unsigned id,
                const char *name, ProtobufCType type,
                const ProtobufCMessageDescriptor *msg)
{
    const ProtobufCFieldDescriptor *field = s_field (descriptor, id);
    ZT_ASSERT_MSG (field, "%s has no field %u", descriptor->name, id);
    ZT_ASSERT_MSG (strcmp (field->name, name) == 0, "%s field %u is %s, expected %s",
                   descriptor->name, id, field->name, name);
    ZT_ASSERT_MSG (field->type == type, "%s.%s has the wrong type", descriptor->name,
                   name);
    ZT_ASSERT_MSG (!msg || field->descriptor == msg, "%s.%s is not a %s",
                   descriptor->name, name, msg->name);
}

static void
test_object_descriptors (void)
{
    for (size_t i = 0; i < zube_kinds_count (); i++) {
        const zube_kind_t *kind = zube_kind_at (i);
        const ProtobufCMessageDescriptor *d = kind->descriptor;
        s_assert_field (d, 1, "api_version", PROTOBUF_C_TYPE_STRING, NULL);
        s_assert_field (d, 2, "kind", PROTOBUF_C_TYPE_STRING, NULL);
        s_assert_field (d, 3, "metadata", PROTOBUF_C_TYPE_MESSAGE,
                        &zube__object_meta__descriptor);
        const ProtobufCFieldDescriptor *spec = s_field (d, 4);
        ZT_ASSERT_MSG (!spec || strcmp (spec->name, "spec") == 0, "%s field 4", d->name);
        const ProtobufCFieldDescriptor *status = s_field (d, 5);
        ZT_ASSERT_MSG (!status || strcmp (status->name, "status") == 0, "%s field 5",
                       d->name);
        ZT_ASSERT_MSG (kind->has_status == (status != NULL), "%s has_status", d->name);
        for (unsigned f = 0; f < d->n_fields; f++)
            ZT_ASSERT_MSG (d->fields[f].label != PROTOBUF_C_LABEL_REQUIRED,
                           "%s.%s is required", d->name, d->fields[f].name);
    }
}

static void
test_list_descriptors (void)
{
    for (size_t i = 0; i < zube_kinds_count (); i++) {
        const zube_kind_t *kind = zube_kind_at (i);
        const ProtobufCMessageDescriptor *d = kind->list_descriptor;
        char name[128];
        snprintf (name, sizeof name, "%sList", kind->kind);
        ZT_ASSERT_STR_EQ (d->short_name, name);
        ZT_ASSERT_INT_EQ (d->n_fields, 4);
        s_assert_field (d, 1, "api_version", PROTOBUF_C_TYPE_STRING, NULL);
        s_assert_field (d, 2, "kind", PROTOBUF_C_TYPE_STRING, NULL);
        s_assert_field (d, 3, "metadata", PROTOBUF_C_TYPE_MESSAGE,
                        &zube__list_meta__descriptor);
        s_assert_field (d, 4, "items", PROTOBUF_C_TYPE_MESSAGE, kind->descriptor);
        ZT_ASSERT (s_field (d, 4)->label == PROTOBUF_C_LABEL_REPEATED);
    }
}

//  Every message reachable from a kind, each once.
#define S_MAX_MESSAGES 1024
static const ProtobufCMessageDescriptor *s_seen[S_MAX_MESSAGES];
static size_t s_seen_count;

static void
s_collect (const ProtobufCMessageDescriptor *descriptor)
{
    for (size_t i = 0; i < s_seen_count; i++)
        if (s_seen[i] == descriptor)
            return;
    ZT_ASSERT (s_seen_count < S_MAX_MESSAGES);
    s_seen[s_seen_count++] = descriptor;
    for (unsigned f = 0; f < descriptor->n_fields; f++)
        if (descriptor->fields[f].type == PROTOBUF_C_TYPE_MESSAGE)
            s_collect (descriptor->fields[f].descriptor);
}

static void
s_collect_all (void)
{
    s_seen_count = 0;
    for (size_t i = 0; i < zube_kinds_count (); i++) {
        s_collect (zube_kind_at (i)->descriptor);
        s_collect (zube_kind_at (i)->list_descriptor);
    }
    //  Messages no kind reaches: the config file and the bus verbs.
    static const ProtobufCMessageDescriptor *roots[] = {
        &zube__status__descriptor,
        &zube__kube_scheduler_configuration__descriptor,
        &zube__create_request__descriptor,
        &zube__get_request__descriptor,
        &zube__list_request__descriptor,
        &zube__update_request__descriptor,
        &zube__patch_request__descriptor,
        &zube__delete_request__descriptor,
        &zube__watch_request__descriptor,
        &zube__binding__descriptor,
        &zube__scale__descriptor,
        &zube__delete_options__descriptor,
        &zube__list_options__descriptor,
        &zube__object_reply__descriptor,
        &zube__list_reply__descriptor,
        &zube__watch_event_batch__descriptor,
        &zube__error_reply__descriptor,
    };
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++)
        s_collect (roots[i]);
}

static void
test_field_names_follow_the_rule (void)
{
    s_collect_all ();
    ZT_ASSERT (s_seen_count > 20);
    char json[256];
    for (size_t i = 0; i < s_seen_count; i++) {
        const ProtobufCMessageDescriptor *d = s_seen[i];
        for (unsigned f = 0; f < d->n_fields; f++) {
            const char *name = d->fields[f].name;
            ZT_ASSERT_MSG (s_json_name (name, json, sizeof json),
                           "%s.%s is not snake_case", d->name, name);
            ZT_ASSERT_MSG (islower ((unsigned char)json[0]), "%s.%s", d->name, name);
            for (const char *c = json; *c; c++)
                ZT_ASSERT_MSG (isalnum ((unsigned char)*c), "%s.%s -> %s", d->name, name,
                               json);
            //  No scalar is "required": proto2 presence is the point.
            ZT_ASSERT_MSG (d->fields[f].label != PROTOBUF_C_LABEL_REQUIRED,
                           "%s.%s is required", d->name, name);
        }
    }
}

//  Every table entry names a field that exists.
static void
test_outside_rule_table_is_current (void)
{
    s_collect_all ();
    for (size_t t = 0; t < sizeof s_outside_rule / sizeof s_outside_rule[0]; t++) {
        bool found = false;
        for (size_t i = 0; i < s_seen_count && !found; i++) {
            const ProtobufCMessageDescriptor *d = s_seen[i];
            if (s_outside_rule[t].message &&
                strcmp (s_outside_rule[t].message, d->short_name) != 0)
                continue;
            for (unsigned f = 0; f < d->n_fields; f++)
                if (strcmp (d->fields[f].name, s_outside_rule[t].field) == 0)
                    found = true;
        }
        ZT_ASSERT_MSG (found, "%s is in no schema", s_outside_rule[t].field);
    }
}

//  ---------------------------------------------------------------------
//  Example manifests: every key in examples/manifests/<kind>.yaml is a
//  field of the kind's schema, under its JSON name, with a value of the
//  right shape. (The codec's round-trip test then checks the values.)

static bool
s_is_map_entry (const ProtobufCMessageDescriptor *d)
{
    size_t len = strlen (d->short_name);
    return d->n_fields == 2 && len > 5 &&
           strcmp (d->short_name + len - 5, "Entry") == 0 &&
           strcmp (d->fields[0].name, "key") == 0 &&
           strcmp (d->fields[1].name, "value") == 0;
}

static void s_check_message (yaml_document_t *doc, yaml_node_t *node,
                             const ProtobufCMessageDescriptor *d, const char *path);

static const char *
s_scalar (yaml_node_t *node, const char *path)
{
    ZT_ASSERT_MSG (node->type == YAML_SCALAR_NODE, "%s: expected a scalar", path);
    return (const char *)node->data.scalar.value;
}

static void
s_check_singular (yaml_document_t *doc, yaml_node_t *node,
                  const ProtobufCFieldDescriptor *field, const char *path)
{
    const char *text;
    char *end;
    switch (field->type) {
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *d = field->descriptor;
        if (d == &zube__raw_extension__descriptor)
            return;
        if (d == &zube__quantity__descriptor || d == &zube__int_or_string__descriptor) {
            s_scalar (node, path);
            return;
        }
        s_check_message (doc, node, d, path);
        return;
    }
    case PROTOBUF_C_TYPE_BOOL:
        text = s_scalar (node, path);
        ZT_ASSERT_MSG (strcmp (text, "true") == 0 || strcmp (text, "false") == 0,
                       "%s: \"%s\" is not a bool", path, text);
        return;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        text = s_scalar (node, path);
        errno = 0;
        (void)strtod (text, &end);
        ZT_ASSERT_MSG (*text && !*end && !errno, "%s: \"%s\" is not a number", path,
                       text);
        return;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_ENUM:
        s_scalar (node, path);
        return;
    case PROTOBUF_C_TYPE_BYTES:
        text = s_scalar (node, path);
        ZT_ASSERT_MSG (strspn (text,
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789+/=") == strlen (text),
                       "%s: not base64", path);
        return;
    default:
        text = s_scalar (node, path);
        errno = 0;
        (void)strtoll (text, &end, 10);
        ZT_ASSERT_MSG (*text && !*end && !errno, "%s: \"%s\" is not an integer", path,
                       text);
        return;
    }
}

static void
s_check_message (yaml_document_t *doc, yaml_node_t *node,
                 const ProtobufCMessageDescriptor *d, const char *path)
{
    ZT_ASSERT_MSG (node->type == YAML_MAPPING_NODE, "%s: expected a mapping (%s)", path,
                   d->short_name);
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        const char *key = s_scalar (yaml_document_get_node (doc, pair->key), path);
        yaml_node_t *value = yaml_document_get_node (doc, pair->value);
        char sub[512], json[256];
        snprintf (sub, sizeof sub, "%s.%s", path, key);
        const ProtobufCFieldDescriptor *field = NULL;
        for (unsigned f = 0; f < d->n_fields && !field; f++) {
            s_field_json_name (d, &d->fields[f], json, sizeof json);
            if (strcmp (json, key) == 0)
                field = &d->fields[f];
        }
        ZT_ASSERT_MSG (field, "%s: no such field in %s", sub, d->short_name);
        if (field->label != PROTOBUF_C_LABEL_REPEATED) {
            s_check_singular (doc, value, field, sub);
            continue;
        }
        if (field->type == PROTOBUF_C_TYPE_MESSAGE &&
            s_is_map_entry (field->descriptor)) {
            ZT_ASSERT_MSG (value->type == YAML_MAPPING_NODE, "%s: expected a map", sub);
            const ProtobufCFieldDescriptor *value_field =
                &((const ProtobufCMessageDescriptor *)field->descriptor)->fields[1];
            for (yaml_node_pair_t *entry = value->data.mapping.pairs.start;
                 entry < value->data.mapping.pairs.top; entry++) {
                char entry_path[700];
                snprintf (entry_path, sizeof entry_path, "%s[%s]", sub,
                          s_scalar (yaml_document_get_node (doc, entry->key), sub));
                s_check_singular (doc, yaml_document_get_node (doc, entry->value),
                                  value_field, entry_path);
            }
            continue;
        }
        ZT_ASSERT_MSG (value->type == YAML_SEQUENCE_NODE, "%s: expected a list", sub);
        for (yaml_node_item_t *item = value->data.sequence.items.start;
             item < value->data.sequence.items.top; item++) {
            char item_path[700];
            snprintf (item_path, sizeof item_path, "%s[%d]", sub,
                      (int)(item - value->data.sequence.items.start));
            s_check_singular (doc, yaml_document_get_node (doc, *item), field, item_path);
        }
    }
}

//  Checks the one document of `path` against `kind`.
static void
s_check_manifest (const char *path, const zube_kind_t *kind)
{
    FILE *file = fopen (path, "rb");
    ZT_ASSERT_MSG (file, "%s: cannot open", path);
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize (&parser);
    yaml_parser_set_input_file (&parser, file);
    bool parsed = yaml_parser_load (&parser, &doc);
    yaml_parser_delete (&parser);
    fclose (file);
    ZT_ASSERT_MSG (parsed, "%s: not YAML", path);
    //  Catch a failure here so the document is freed first, then fail
    //  the case through the harness's own jump.
    char failure[sizeof zt_failure] = "";
    jmp_buf case_jump;
    memcpy (case_jump, zt_case_jump, sizeof case_jump);
    if (setjmp (zt_case_jump) == 0) {
        yaml_node_t *root = yaml_document_get_root_node (&doc);
        ZT_ASSERT_MSG (root, "%s: empty", path);
        s_check_message (&doc, root, kind->descriptor, path);
        yaml_node_t *api_version = NULL, *kind_node = NULL;
        for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
             pair < root->data.mapping.pairs.top; pair++) {
            const char *key =
                (const char *)yaml_document_get_node (&doc, pair->key)->data.scalar.value;
            if (strcmp (key, "apiVersion") == 0)
                api_version = yaml_document_get_node (&doc, pair->value);
            if (strcmp (key, "kind") == 0)
                kind_node = yaml_document_get_node (&doc, pair->value);
        }
        ZT_ASSERT_MSG (api_version && kind_node, "%s: no apiVersion or kind", path);
        ZT_ASSERT_STR_EQ ((const char *)api_version->data.scalar.value,
                          kind->api_version);
        ZT_ASSERT_STR_EQ ((const char *)kind_node->data.scalar.value, kind->kind);
    } else
        snprintf (failure, sizeof failure, "%s", zt_failure);
    memcpy (zt_case_jump, case_jump, sizeof case_jump);
    yaml_document_delete (&doc);
    if (failure[0])
        ZT_FAIL ("%.900s", failure);
}

static void
test_example_manifests (void)
{
    const char *srcdir = getenv ("ZUBE_SRCDIR");
    ZT_ASSERT_MSG (srcdir, "ZUBE_SRCDIR is not set");
    for (size_t i = 0; i < zube_kinds_count (); i++) {
        const zube_kind_t *kind = zube_kind_at (i);
        char path[1024];
        int n = snprintf (path, sizeof path, "%s/examples/manifests/", srcdir);
        for (const char *c = kind->kind; *c && n < (int)sizeof path - 6; c++)
            path[n++] = (char)tolower ((unsigned char)*c);
        snprintf (path + n, sizeof path - n, ".yaml");
        s_check_manifest (path, kind);
    }
}

int
main (void)
{
    ZT_RUN (test_naming_rule);
    ZT_RUN (test_every_kind_by_api_version_and_kind);
    ZT_RUN (test_every_kind_by_resource);
    ZT_RUN (test_every_kind_by_descriptor);
    ZT_RUN (test_unknown_names);
    ZT_RUN (test_table_is_consistent);
    ZT_RUN (test_object_descriptors);
    ZT_RUN (test_list_descriptors);
    ZT_RUN (test_field_names_follow_the_rule);
    ZT_RUN (test_outside_rule_table_is_current);
    if (getenv ("ZUBE_SRCDIR"))
        ZT_RUN (test_example_manifests);
    else
        zt_skip ("test_example_manifests", "ZUBE_SRCDIR is not set");
    return zt_done ();
}
