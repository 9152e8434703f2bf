/*  test_kinds - the kinds registry, and the schema conventions the generic
    codec relies on (schemas/meta.proto's header, docs/schemas.md). */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "zube/kinds.h"
#include "../zube_test.h"
#include "meta.pb-c.h"

//  ---------------------------------------------------------------------
//  The naming rule: snake_case -> lowerCamel, with these acronyms
//  upper-cased when they are not the first part.

static const char *s_acronyms[][2] = {
    {"ip", "IP"}, {"ips", "IPs"}, {"cidr", "CIDR"}, {"cidrs", "CIDRs"},
    {"pid", "PID"}, {"ipc", "IPC"},
};

//  Writes the JSON name of a snake_case field name into `out`; false if
//  the name is not well-formed snake_case.
static bool
s_json_name (const char *snake, char *out, size_t size)
{
    size_t len = strlen (snake);
    if (len == 0 || len >= size || !islower ((unsigned char) snake[0])
        || snake[len - 1] == '_' || strstr (snake, "__"))
        return false;
    for (const char *c = snake; *c; c++)
        if (!islower ((unsigned char) *c) && !isdigit ((unsigned char) *c) && *c != '_')
            return false;
    size_t o = 0;
    bool first = true;
    const char *part = snake;
    while (*part) {
        size_t part_len = strcspn (part, "_");
        const char *upper = NULL;
        for (size_t a = 0; !first && a < sizeof s_acronyms / sizeof s_acronyms[0]; a++)
            if (strlen (s_acronyms[a][0]) == part_len
                && strncmp (s_acronyms[a][0], part, part_len) == 0)
                upper = s_acronyms[a][1];
        if (upper)
            memcpy (out + o, upper, part_len);
        else {
            memcpy (out + o, part, part_len);
            if (!first)
                out[o] = (char) toupper ((unsigned char) out[o]);
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
    ZT_ASSERT (zube_kinds_count () >= 8);
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
        ZT_ASSERT_MSG (zube_kind_by_resource (kind->resource) == kind, "%s", kind->resource);
        ZT_ASSERT_MSG (zube_kind_by_resource (kind->singular) == kind, "%s", kind->singular);
        ZT_ASSERT_MSG (zube_kind_by_resource (kind->kind) == kind, "%s", kind->kind);
        //  Every short name.
        const char *s = kind->short_names;
        while (*s) {
            size_t len = strcspn (s, ",");
            snprintf (name, sizeof name, "%.*s", (int) len, s);
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
            *c = (char) toupper ((unsigned char) *c);
        ZT_ASSERT_MSG (zube_kind_by_resource (name) == kind, "%s", name);
    }
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("po")->kind, "Pod");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("svc")->kind, "Service");
    ZT_ASSERT_STR_EQ (zube_kind_by_resource ("ns")->kind, "Namespace");
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
            snprintf (api_version, sizeof api_version, "%s/%s", kind->group, kind->version);
        else
            snprintf (api_version, sizeof api_version, "%s", kind->version);
        ZT_ASSERT_STR_EQ (kind->api_version, api_version);
        ZT_ASSERT_STR_EQ (kind->descriptor->short_name, kind->kind);
        //  No two kinds answer to the same name.
        for (size_t j = 0; j < i; j++) {
            const zube_kind_t *other = zube_kind_at (j);
            ZT_ASSERT_MSG (strcmp (other->resource, kind->resource) != 0
                               || strcmp (other->group, kind->group) != 0,
                           "%s twice", kind->resource);
            ZT_ASSERT_MSG (zube_kind_by_resource (kind->resource) == kind,
                           "%s shadowed", kind->resource);
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
                const char *name, ProtobufCType type, const ProtobufCMessageDescriptor *msg)
{
    const ProtobufCFieldDescriptor *field = s_field (descriptor, id);
    ZT_ASSERT_MSG (field, "%s has no field %u", descriptor->name, id);
    ZT_ASSERT_MSG (strcmp (field->name, name) == 0, "%s field %u is %s, expected %s",
                   descriptor->name, id, field->name, name);
    ZT_ASSERT_MSG (field->type == type, "%s.%s has the wrong type", descriptor->name, name);
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
    s_collect (&zube__status__descriptor);
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
            ZT_ASSERT_MSG (islower ((unsigned char) json[0]), "%s.%s", d->name, name);
            for (const char *c = json; *c; c++)
                ZT_ASSERT_MSG (isalnum ((unsigned char) *c), "%s.%s -> %s", d->name,
                               name, json);
            //  No scalar is "required": proto2 presence is the point.
            ZT_ASSERT_MSG (d->fields[f].label != PROTOBUF_C_LABEL_REQUIRED,
                           "%s.%s is required", d->name, name);
        }
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
    return zt_done ();
}
