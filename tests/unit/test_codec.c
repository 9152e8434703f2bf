/*  test_codec - the generic YAML/JSON <-> protobuf-c codec.

    Names, every scalar type, round trips through YAML and JSON compared
    as packed bytes, every decoding error with its document, line, column
    and field path, the limits (aliases, size, depth), and every example
    manifest in examples/manifests through the kinds registry. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../zube_test.h"
#include "apps.pb-c.h"
#include "bus.pb-c.h"
#include "core.pb-c.h"
#include "meta.pb-c.h"
#include "zube.pb-c.h"
#include "zube/codec.h"
#include "zube/kinds.h"

//  ZT_ASSERT_STR_CONTAINS in zube_test.h shadows its needle inside ZT_FAIL
#define S_ASSERT_CONTAINS(haystack, needle)                                              \
    do {                                                                                 \
        const char *s_h_ = (haystack), *s_needle_ = (needle);                            \
        if (!s_h_ || !strstr (s_h_, s_needle_))                                          \
            ZT_FAIL ("\"%s\" does not contain \"%s\"", s_h_ ? s_h_ : "(null)",           \
                     s_needle_);                                                         \
    } while (0)

//  ---------------------------------------------------------------------
//  Helpers

static ProtobufCMessage *
s_decode (const char *text, const ProtobufCMessageDescriptor *descriptor)
{
    ProtobufCMessage *msg = NULL;
    zube_codec_error_t error;
    if (zube_codec_decode (text, strlen (text), descriptor, &msg, &error)) {
        char line[1024];
        ZT_FAIL ("decode failed: %s",
                 zube_codec_error_format (&error, line, sizeof line));
    }
    ZT_ASSERT (msg != NULL);
    return msg;
}

//  Decoding must fail; returns the error
static zube_codec_error_t
s_decode_error (const char *text, const ProtobufCMessageDescriptor *descriptor)
{
    ProtobufCMessage *msg = NULL;
    zube_codec_error_t error;
    int rc = zube_codec_decode (text, strlen (text), descriptor, &msg, &error);
    if (rc == 0) {
        protobuf_c_message_free_unpacked (msg, NULL);
        ZT_FAIL ("decode succeeded, expected an error");
    }
    ZT_ASSERT (msg == NULL);
    return error;
}

static zube_codec_error_t
s_objects_error (const char *text)
{
    zube_codec_object_t *objects = (zube_codec_object_t *)1;
    size_t count = 42;
    zube_codec_error_t error;
    int rc = zube_codec_decode_objects (text, strlen (text), &objects, &count, &error);
    if (rc == 0) {
        zube_codec_objects_free (&objects, count);
        ZT_FAIL ("decode_objects succeeded, expected an error");
    }
    ZT_ASSERT (objects == (zube_codec_object_t *)1);
    ZT_ASSERT_INT_EQ (count, 42);
    return error;
}

#define S_ASSERT_ERROR(error, doc, ln, col, path, text)                                  \
    do {                                                                                 \
        char s_line_[1024];                                                              \
        zube_codec_error_format (&(error), s_line_, sizeof s_line_);                     \
        ZT_ASSERT_MSG ((error).document == (doc) && (error).line == (ln) &&              \
                           (error).column == (col),                                      \
                       "position %d/%d/%d, expected %d/%d/%d: %.600s", (error).document, \
                       (error).line, (error).column, doc, ln, col, s_line_);             \
        ZT_ASSERT_MSG (strcmp ((error).field, (path)) == 0,                              \
                       "field \"%.200s\", expected \"%s\": %.600s", (error).field, path, \
                       s_line_);                                                         \
        S_ASSERT_CONTAINS ((error).message, text);                                       \
    } while (0)

static bool
s_packed_equal (const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t size_a = protobuf_c_message_get_packed_size (a);
    size_t size_b = protobuf_c_message_get_packed_size (b);
    if (size_a != size_b)
        return false;
    uint8_t *packed_a = malloc (size_a + 1), *packed_b = malloc (size_b + 1);
    protobuf_c_message_pack (a, packed_a);
    protobuf_c_message_pack (b, packed_b);
    bool equal = memcmp (packed_a, packed_b, size_a) == 0;
    free (packed_a);
    free (packed_b);
    return equal;
}

//  Encodes msg as YAML, compact JSON and pretty JSON; each must decode
//  back to the same packed bytes, and re-encode to the same text.
static void
s_assert_round_trip (const ProtobufCMessage *msg)
{
    for (int format = 0; format < 3; format++) {
        char *text = format == 0 ? zube_codec_encode_yaml (msg)
                                 : zube_codec_encode_json (msg, format == 2);
        ZT_ASSERT_MSG (text != NULL, "encoding %d failed", format);
        ProtobufCMessage *back = NULL;
        zube_codec_error_t error;
        if (zube_codec_decode (text, strlen (text), msg->descriptor, &back, &error)) {
            char line[1024];
            ZT_FAIL ("re-decoding format %d failed: %.300s\n%.400s", format,
                     zube_codec_error_format (&error, line, sizeof line), text);
        }
        bool equal = s_packed_equal (msg, back);
        char *again = format == 0 ? zube_codec_encode_yaml (back)
                                  : zube_codec_encode_json (back, format == 2);
        bool stable = again && strcmp (again, text) == 0;
        protobuf_c_message_free_unpacked (back, NULL);
        if (!equal || !stable) {
            fprintf (stderr, "%s\n---\n%s\n", text, again ? again : "(null)");
            free (text);
            free (again);
            ZT_FAIL ("format %d: %s", format,
                     !equal ? "packed bytes differ" : "re-encoding differs");
        }
        free (text);
        free (again);
    }
}

static const char *
s_name_of (const ProtobufCMessageDescriptor *descriptor, const char *field)
{
    const ProtobufCFieldDescriptor *found =
        protobuf_c_message_descriptor_get_field_by_name (descriptor, field);
    ZT_ASSERT_MSG (found, "no field %s in %s", field, descriptor->name);
    return zube_codec_json_name (found);
}

//  ---------------------------------------------------------------------
//  Names

static void
test_json_names (void)
{
    ZT_ASSERT_STR_EQ (s_name_of (&zube__pod_status__descriptor, "pod_ip"), "podIP");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__pod_status__descriptor, "pod_ips"), "podIPs");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__pod_status__descriptor, "host_ip"), "hostIP");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__pod_status__descriptor, "host_ips"), "hostIPs");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__service_spec__descriptor, "cluster_ip"),
                      "clusterIP");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__service_spec__descriptor, "cluster_ips"),
                      "clusterIPs");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__service_spec__descriptor, "external_ips"),
                      "externalIPs");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__service_spec__descriptor, "load_balancer_ip"),
                      "loadBalancerIP");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__pod_spec__descriptor, "host_pid"), "hostPID");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__pod_spec__descriptor, "host_ipc"), "hostIPC");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__node_spec__descriptor, "pod_cidr"), "podCIDR");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__node_spec__descriptor, "pod_cidrs"), "podCIDRs");
    ZT_ASSERT_STR_EQ (
        s_name_of (&zube__object_meta__descriptor, "deletion_grace_period_seconds"),
        "deletionGracePeriodSeconds");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__object_meta__descriptor, "name"), "name");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__pod__descriptor, "api_version"), "apiVersion");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__probe__descriptor, "http_get"), "httpGet");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__probe__descriptor, "tcp_socket"), "tcpSocket");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__security_context__descriptor, "se_linux_options"),
                      "seLinuxOptions");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__service_spec__descriptor, "ip_families"),
                      "ipFamilies");
    //  The names outside the rule (docs/schemas.md)
    ZT_ASSERT_STR_EQ (s_name_of (&zube__container_status__descriptor, "image_id"),
                      "imageID");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__container_status__descriptor, "container_id"),
                      "containerID");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__node_spec__descriptor, "provider_id"),
                      "providerID");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__node_system_info__descriptor, "machine_id"),
                      "machineID");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__node_system_info__descriptor, "system_uuid"),
                      "systemUUID");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__node_system_info__descriptor, "boot_id"),
                      "bootID");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__volume__descriptor, "downward_api"),
                      "downwardAPI");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__volume_projection__descriptor, "downward_api"),
                      "downwardAPI");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__extender__descriptor, "enable_https"),
                      "enableHTTPS");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__daemon_endpoint__descriptor, "port"), "Port");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__container_port__descriptor, "container_port"),
                      "containerPort");
    //  Only DaemonEndpoint's port is capitalised
    ZT_ASSERT_STR_EQ (s_name_of (&zube__grpcaction__descriptor, "port"), "port");
    //  Bus messages are outside the kinds registry
    ZT_ASSERT_STR_EQ (s_name_of (&zube__bus_header__descriptor, "correlation_id"),
                      "correlationId");
    ZT_ASSERT_STR_EQ (s_name_of (&zube__bus_header__descriptor, "deadline_ms"),
                      "deadlineMs");

    //  And back: the same pointer the descriptor holds
    const ProtobufCFieldDescriptor *field =
        zube_codec_field_by_json_name (&zube__pod_status__descriptor, "podIP");
    ZT_ASSERT (field != NULL);
    ZT_ASSERT_STR_EQ (field->name, "pod_ip");
    ZT_ASSERT (zube_codec_field_by_json_name (&zube__pod_status__descriptor, "podIp") ==
               NULL);
    ZT_ASSERT (zube_codec_field_by_json_name (&zube__pod_status__descriptor, "pod_ip") ==
               NULL);
    ZT_ASSERT (zube_codec_field_by_json_name (&zube__pod_status__descriptor, "") == NULL);
    field = zube_codec_field_by_json_name (&zube__daemon_endpoint__descriptor, "Port");
    ZT_ASSERT (field && strcmp (field->name, "port") == 0);
    //  Names are cached: the same string every time
    ZT_ASSERT (s_name_of (&zube__pod_status__descriptor, "pod_ip") ==
               s_name_of (&zube__pod_status__descriptor, "pod_ip"));
}

//  ---------------------------------------------------------------------
//  Types

static void
test_scalars (void)
{
    Zube__BusHeader *header =
        (Zube__BusHeader *)s_decode ("version: BUS_VERSION_1\n"
                                     "kind: BUS_REQUEST\n"
                                     "service: api\n"
                                     "correlationId: 18446744073709551615\n"
                                     "deadlineMs: 0\n"
                                     "status: STATUS_NOT_FOUND\n"
                                     "route: AAEC/w==\n"
                                     "sequence: 0x10\n"
                                     "attempt: 4294967295\n",
                                     &zube__bus_header__descriptor);
    ZT_ASSERT (header->has_version &&
               header->version == ZUBE__BUS_VERSION__BUS_VERSION_1);
    ZT_ASSERT (header->has_kind && header->kind == ZUBE__BUS_KIND__BUS_REQUEST);
    ZT_ASSERT_STR_EQ (header->service, "api");
    ZT_ASSERT (header->has_correlation_id && header->correlation_id == UINT64_MAX);
    ZT_ASSERT (header->has_deadline_ms); //  an explicit zero is present
    ZT_ASSERT_INT_EQ (header->deadline_ms, 0);
    ZT_ASSERT (header->has_status &&
               header->status == ZUBE__STATUS_CODE__STATUS_NOT_FOUND);
    ZT_ASSERT (header->has_route);
    ZT_ASSERT_INT_EQ (header->route.len, 4);
    ZT_ASSERT (memcmp (header->route.data, "\x00\x01\x02\xff", 4) == 0);
    ZT_ASSERT_INT_EQ (header->sequence, 16);
    ZT_ASSERT_INT_EQ (header->attempt, UINT32_MAX);
    ZT_ASSERT (!header->has_heartbeat_ms);
    ZT_ASSERT (header->error == NULL);
    s_assert_round_trip (&header->base);

    char *yaml = zube_codec_encode_yaml (&header->base);
    ZT_ASSERT_STR_EQ (yaml, "version: BUS_VERSION_1\n"
                            "kind: BUS_REQUEST\n"
                            "service: api\n"
                            "correlationId: 18446744073709551615\n"
                            "deadlineMs: 0\n"
                            "status: STATUS_NOT_FOUND\n"
                            "sequence: 16\n"
                            "route: AAEC/w==\n"
                            "attempt: 4294967295\n");
    free (yaml);
    protobuf_c_message_free_unpacked (&header->base, NULL);

    //  int64 limits, and a float
    Zube__ObjectMeta *meta = (Zube__ObjectMeta *)s_decode (
        "generation: -9223372036854775808\ndeletionGracePeriodSeconds: "
        "9223372036854775807\n",
        &zube__object_meta__descriptor);
    ZT_ASSERT (meta->generation == INT64_MIN);
    ZT_ASSERT (meta->deletion_grace_period_seconds == INT64_MAX);
    s_assert_round_trip (&meta->base);
    protobuf_c_message_free_unpacked (&meta->base, NULL);

    Zube__ClientConnectionConfiguration *connection =
        (Zube__ClientConnectionConfiguration *)s_decode (
            "{\"qps\": 50.5, \"burst\": 100}",
            &zube__client_connection_configuration__descriptor);
    ZT_ASSERT (connection->has_qps && connection->qps == 50.5f);
    s_assert_round_trip (&connection->base);
    protobuf_c_message_free_unpacked (&connection->base, NULL);
    connection = (Zube__ClientConnectionConfiguration *)s_decode (
        "qps: 1e3\n", &zube__client_connection_configuration__descriptor);
    ZT_ASSERT (connection->qps == 1000.0f);
    protobuf_c_message_free_unpacked (&connection->base, NULL);
    connection = (Zube__ClientConnectionConfiguration *)s_decode (
        "qps: 0.1\n", &zube__client_connection_configuration__descriptor);
    char *json = zube_codec_encode_json (&connection->base, false);
    ZT_ASSERT_STR_EQ (json, "{\"qps\":0.1}");
    free (json);
    protobuf_c_message_free_unpacked (&connection->base, NULL);
}

static void
test_strings (void)
{
    //  A string field takes quoted scalars, and plain ones that are not
    //  numbers, booleans or null; YAML 1.1's yes/no/on/off are strings.
    Zube__EnvVar *env = (Zube__EnvVar *)s_decode ("name: yes\nvalue: \"80\"\n",
                                                  &zube__env_var__descriptor);
    ZT_ASSERT_STR_EQ (env->name, "yes");
    ZT_ASSERT_STR_EQ (env->value, "80");
    char *yaml = zube_codec_encode_yaml (&env->base);
    ZT_ASSERT_STR_EQ (yaml, "name: \"yes\"\nvalue: \"80\"\n");
    free (yaml);
    protobuf_c_message_free_unpacked (&env->base, NULL);

    static const char *accepted[][2] = {
        {"value: on", "on"},       {"value: off", "off"},
        {"value: 'true'", "true"}, {"value: !!str 80", "80"},
        {"value: 1.2.3", "1.2.3"}, {"value: \"\"", ""},
        {"value: 80m", "80m"},     {"value: 0x", "0x"},
        {"value: ''", ""},         {"value: |\n  a\n  b\n", "a\nb\n"},
        {"value: héllo", "héllo"}, {"{\"value\": \"\\u00e9\\ud83d\\ude00\\n\"}", "é😀\n"},
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        env = (Zube__EnvVar *)s_decode (accepted[i][0], &zube__env_var__descriptor);
        ZT_ASSERT_MSG (env->value && strcmp (env->value, accepted[i][1]) == 0,
                       "%s gave \"%s\"", accepted[i][0],
                       env->value ? env->value : "(null)");
        s_assert_round_trip (&env->base);
        protobuf_c_message_free_unpacked (&env->base, NULL);
    }
    //  null is absent
    static const char *absent[] = {"value:", "value: ~", "value: null",
                                   "{\"value\": null}", "value: Null"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        env = (Zube__EnvVar *)s_decode (absent[i], &zube__env_var__descriptor);
        ZT_ASSERT_MSG (env->value == NULL, "%s", absent[i]);
        char *text = zube_codec_encode_json (&env->base, false);
        ZT_ASSERT_STR_EQ (text, "{}");
        free (text);
        protobuf_c_message_free_unpacked (&env->base, NULL);
    }
    static const char *rejected[][2] = {
        {"value: 80", "expected a string, got a number (80)"},
        {"value: 1.5", "expected a string, got a number (1.5)"},
        {"value: true", "expected a string, got a boolean (true)"},
        {"value: False", "expected a string, got a boolean (False)"},
        {"value: 0x1F", "expected a string, got a number (0x1F)"},
        {"value: .inf", "expected a string, got a number (.inf)"},
        {"value: [a]", "expected a string, got a sequence"},
        {"value: {a: b}", "expected a string, got a mapping"},
        {"{\"value\": 80}", "expected a string, got a number (80)"},
        {"{\"value\": true}", "expected a string, got a boolean (true)"},
        {"value: \"a\\0b\"", "NUL"},
    };
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        zube_codec_error_t error =
            s_decode_error (rejected[i][0], &zube__env_var__descriptor);
        ZT_ASSERT_STR_EQ (error.field, "value");
        S_ASSERT_CONTAINS (error.message, rejected[i][1]);
    }
}

static void
test_booleans (void)
{
    Zube__VolumeMount *mount = (Zube__VolumeMount *)s_decode (
        "readOnly: false\n", &zube__volume_mount__descriptor);
    ZT_ASSERT (mount->has_read_only && !mount->read_only); //  explicit false is kept
    char *yaml = zube_codec_encode_yaml (&mount->base);
    ZT_ASSERT_STR_EQ (yaml, "readOnly: false\n");
    free (yaml);
    protobuf_c_message_free_unpacked (&mount->base, NULL);
    mount = (Zube__VolumeMount *)s_decode ("{\"readOnly\":true}",
                                           &zube__volume_mount__descriptor);
    ZT_ASSERT (mount->has_read_only && mount->read_only);
    protobuf_c_message_free_unpacked (&mount->base, NULL);

    static const char *rejected[] = {"readOnly: yes",
                                     "readOnly: on",
                                     "readOnly: 1",
                                     "readOnly: \"true\"",
                                     "{\"readOnly\": \"true\"}",
                                     "readOnly: [true]"};
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        zube_codec_error_t error =
            s_decode_error (rejected[i], &zube__volume_mount__descriptor);
        S_ASSERT_CONTAINS (error.message, "expected a boolean (true or false)");
        ZT_ASSERT_STR_EQ (error.field, "readOnly");
    }
}

static void
test_integers (void)
{
    static const struct {
        const char *text;
        int32_t value;
    } cases[] = {
        {"containerPort: 80", 80},
        {"containerPort: -2147483648", INT32_MIN},
        {"containerPort: 2147483647", INT32_MAX},
        {"containerPort: +7", 7},
        {"containerPort: 0o17", 15},
        {"containerPort: 0x1f", 31},
        {"containerPort: 007", 7},
        {"{\"containerPort\": -0}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Zube__ContainerPort *port = (Zube__ContainerPort *)s_decode (
            cases[i].text, &zube__container_port__descriptor);
        ZT_ASSERT_MSG (port->has_container_port && port->container_port == cases[i].value,
                       "%s", cases[i].text);
        s_assert_round_trip (&port->base);
        protobuf_c_message_free_unpacked (&port->base, NULL);
    }
    static const char *rejected[][2] = {
        {"containerPort: 2147483648",
         "integer 2147483648 is out of range for int32 (-2147483648 to 2147483647)"},
        {"containerPort: -2147483649", "out of range for int32"},
        {"containerPort: 99999999999999999999999", "out of range for int32"},
        {"containerPort: 1.0", "expected an integer, got a number (1.0)"},
        {"containerPort: 1e3", "expected an integer, got a number (1e3)"},
        {"containerPort: \"80\"", "expected an integer, got a string"},
        {"containerPort: http", "expected an integer, got a string"},
        {"containerPort: true", "expected an integer, got a boolean"},
        {"{\"containerPort\": 80.5}", "expected an integer, got a number (80.5)"},
    };
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        zube_codec_error_t error =
            s_decode_error (rejected[i][0], &zube__container_port__descriptor);
        S_ASSERT_ERROR (error, 1, 1, rejected[i][0][0] == '{' ? 19 : 16, "containerPort",
                        rejected[i][1]);
    }
    //  Unsigned and 64-bit ranges
    zube_codec_error_t error =
        s_decode_error ("deadlineMs: -1", &zube__bus_header__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 13, "deadlineMs",
                    "integer -1 is out of range for uint32");
    error = s_decode_error ("deadlineMs: 4294967296", &zube__bus_header__descriptor);
    S_ASSERT_CONTAINS (error.message, "out of range for uint32");
    error = s_decode_error ("correlationId: 18446744073709551616",
                            &zube__bus_header__descriptor);
    S_ASSERT_CONTAINS (error.message, "out of range for uint64");
    error = s_decode_error ("generation: 9223372036854775808",
                            &zube__object_meta__descriptor);
    S_ASSERT_CONTAINS (error.message, "out of range for int64");
    error = s_decode_error ("generation: -9223372036854775809",
                            &zube__object_meta__descriptor);
    S_ASSERT_CONTAINS (error.message, "out of range for int64");
}

static void
test_enums (void)
{
    Zube__BusHeader *header = (Zube__BusHeader *)s_decode ("{\"kind\":\"BUS_EVENT\"}",
                                                           &zube__bus_header__descriptor);
    ZT_ASSERT (header->has_kind && header->kind == ZUBE__BUS_KIND__BUS_EVENT);
    char *json = zube_codec_encode_json (&header->base, false);
    ZT_ASSERT_STR_EQ (json, "{\"kind\":\"BUS_EVENT\"}");
    free (json);
    //  A value the descriptor does not name is written as its number
    header->kind = (Zube__BusKind)99;
    json = zube_codec_encode_json (&header->base, false);
    ZT_ASSERT_STR_EQ (json, "{\"kind\":99}");
    free (json);
    protobuf_c_message_free_unpacked (&header->base, NULL);

    zube_codec_error_t error =
        s_decode_error ("service: api\nkind: BUS_FOO\n", &zube__bus_header__descriptor);
    S_ASSERT_ERROR (error, 1, 2, 7, "kind",
                    "unsupported value \"BUS_FOO\": supported values: "
                    "\"BUS_KIND_UNSPECIFIED\", \"BUS_REQUEST\"");
    error = s_decode_error ("kind: 1\n", &zube__bus_header__descriptor);
    S_ASSERT_CONTAINS (error.message, "unsupported value \"1\"");
    error = s_decode_error ("kind: [BUS_EVENT]\n", &zube__bus_header__descriptor);
    S_ASSERT_CONTAINS (error.message, "expected a string, got a sequence");
}

static void
test_bytes (void)
{
    Zube__Secret *secret = (Zube__Secret *)s_decode (
        "apiVersion: v1\nkind: Secret\ndata:\n  a: aGVsbG8=\n  b: \"\"\n  c: aGk=\n  d: "
        "YWJj\n  e: |\n    aGVs\n    bG8=\n",
        &zube__secret__descriptor);
    ZT_ASSERT_INT_EQ (secret->n_data, 5);
    ZT_ASSERT_STR_EQ (secret->data[0]->key, "a");
    ZT_ASSERT_INT_EQ (secret->data[0]->value.len, 5);
    ZT_ASSERT (memcmp (secret->data[0]->value.data, "hello", 5) == 0);
    ZT_ASSERT_INT_EQ (secret->data[1]->value.len, 0);
    ZT_ASSERT (secret->data[1]->has_value);
    ZT_ASSERT (memcmp (secret->data[2]->value.data, "hi", 2) == 0);
    ZT_ASSERT (memcmp (secret->data[3]->value.data, "abc", 3) == 0);
    ZT_ASSERT (memcmp (secret->data[4]->value.data, "hello", 5) == 0);
    char *json = zube_codec_encode_json (&secret->base, false);
    ZT_ASSERT_STR_EQ (json, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"data\":{\"a\":"
                            "\"aGVsbG8=\",\"b\":\"\","
                            "\"c\":\"aGk=\",\"d\":\"YWJj\",\"e\":\"aGVsbG8=\"}}");
    free (json);
    protobuf_c_message_free_unpacked (&secret->base, NULL);

    static const char *rejected[][2] = {
        {"data:\n  key: aGVsbG8\n", "illegal base64 data at input byte 7"},
        {"data:\n  key: aGVsbG8==\n", "illegal base64 data at input byte 8"},
        {"data:\n  key: aGV*bG8=\n", "illegal base64 data at input byte 3"},
        {"data:\n  key: a===\n", "illegal base64 data at input byte 1"},
        {"data:\n  key: aGk=aGk=\n", "illegal base64 data at input byte 4"},
        {"data:\n  key: 1234\n", "expected a base64 string, got a number (1234)"},
    };
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        zube_codec_error_t error =
            s_decode_error (rejected[i][0], &zube__secret__descriptor);
        S_ASSERT_ERROR (error, 1, 2, 8, "data[key]", rejected[i][1]);
    }
}

static void
test_maps (void)
{
    Zube__ObjectMeta *meta = (Zube__ObjectMeta *)s_decode (
        "labels:\n  app: web\n  \"on\": \"yes\"\n  tier:\n  80: http\n  empty: \"\"\n",
        &zube__object_meta__descriptor);
    ZT_ASSERT_INT_EQ (meta->n_labels, 5);
    ZT_ASSERT_STR_EQ (meta->labels[0]->key, "app");
    ZT_ASSERT_STR_EQ (meta->labels[0]->value, "web");
    ZT_ASSERT_STR_EQ (meta->labels[1]->key, "on");
    ZT_ASSERT_STR_EQ (meta->labels[1]->value, "yes");
    //  A null value in a map is the zero value, as in Kubernetes
    ZT_ASSERT_STR_EQ (meta->labels[2]->key, "tier");
    ZT_ASSERT_STR_EQ (meta->labels[2]->value, "");
    //  Keys are strings, whatever they look like
    ZT_ASSERT_STR_EQ (meta->labels[3]->key, "80");
    char *yaml = zube_codec_encode_yaml (&meta->base);
    ZT_ASSERT_STR_EQ (yaml, "labels:\n  app: web\n  \"on\": \"yes\"\n  tier: \"\"\n  "
                            "\"80\": http\n  empty: \"\"\n");
    free (yaml);
    s_assert_round_trip (&meta->base);
    protobuf_c_message_free_unpacked (&meta->base, NULL);

    //  Empty maps and sequences are absent
    meta = (Zube__ObjectMeta *)s_decode ("labels: {}\nfinalizers: []\n",
                                         &zube__object_meta__descriptor);
    ZT_ASSERT_INT_EQ (meta->n_labels, 0);
    ZT_ASSERT_INT_EQ (meta->n_finalizers, 0);
    char *json = zube_codec_encode_json (&meta->base, false);
    ZT_ASSERT_STR_EQ (json, "{}");
    free (json);
    protobuf_c_message_free_unpacked (&meta->base, NULL);

    zube_codec_error_t error =
        s_decode_error ("labels: [a, b]\n", &zube__object_meta__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 9, "labels", "expected a mapping, got a sequence");
    error = s_decode_error ("labels:\n  app: [a]\n", &zube__object_meta__descriptor);
    S_ASSERT_ERROR (error, 1, 2, 8, "labels[app]", "expected a string, got a sequence");
    error = s_decode_error ("labels:\n  ? [a]\n  : b\n", &zube__object_meta__descriptor);
    S_ASSERT_ERROR (error, 1, 2, 5, "labels", "expected a string key, got a sequence");
}

static void
test_repeated (void)
{
    Zube__Container *container = (Zube__Container *)s_decode (
        "name: app\ncommand: [sh, -c, 'echo hi']\nargs:\n- a\n-\n- ''\nports:\n- "
        "containerPort: 80\n-\n- name: x\n",
        &zube__container__descriptor);
    ZT_ASSERT_INT_EQ (container->n_command, 3);
    ZT_ASSERT_STR_EQ (container->command[2], "echo hi");
    //  A null item is the zero value
    ZT_ASSERT_INT_EQ (container->n_args, 3);
    ZT_ASSERT_STR_EQ (container->args[1], "");
    ZT_ASSERT_INT_EQ (container->n_ports, 3);
    ZT_ASSERT (!container->ports[1]->has_container_port && !container->ports[1]->name);
    ZT_ASSERT_STR_EQ (container->ports[2]->name, "x");
    protobuf_c_message_free_unpacked (&container->base, NULL);

    zube_codec_error_t error =
        s_decode_error ("command: sh\n", &zube__container__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 10, "command", "expected a sequence, got a string");
    error = s_decode_error ("ports:\n- containerPort: 80\n- containerPort: x\n",
                            &zube__container__descriptor);
    S_ASSERT_ERROR (error, 1, 3, 18, "ports[1].containerPort",
                    "expected an integer, got a string");
    error = s_decode_error ("ports:\n- 80\n", &zube__container__descriptor);
    S_ASSERT_ERROR (error, 1, 2, 3, "ports[0]", "expected a mapping, got a number (80)");
}

static void
test_quantity_fields (void)
{
    Zube__ResourceRequirements *resources = (Zube__ResourceRequirements *)s_decode (
        "requests:\n  cpu: 500m\n  memory: 128Mi\n  nvidia.com/gpu: 1\n  half: 0.5\n  "
        "kilo: 1e3\n"
        "limits: {\"cpu\": 2, \"memory\": \"1Gi\", \"small\": 0.001}\n",
        &zube__resource_requirements__descriptor);
    ZT_ASSERT_INT_EQ (resources->n_requests, 5);
    static const struct {
        const char *string;
        int64_t milli;
    } requests[] = {{"500m", 500},
                    {"128Mi", INT64_C (134217728000)},
                    {"1", 1000},
                    {"0.5", 500},
                    {"1e3", 1000000}};
    for (size_t i = 0; i < 5; i++) {
        ZT_ASSERT_STR_EQ (resources->requests[i]->value->string, requests[i].string);
        ZT_ASSERT (resources->requests[i]->value->has_milli_value);
        ZT_ASSERT_INT_EQ (resources->requests[i]->value->milli_value, requests[i].milli);
    }
    ZT_ASSERT_INT_EQ (resources->limits[0]->value->milli_value, 2000);
    ZT_ASSERT_INT_EQ (resources->limits[1]->value->milli_value, INT64_C (1073741824000));
    ZT_ASSERT_INT_EQ (resources->limits[2]->value->milli_value, 1);
    //  Written as Kubernetes writes a Quantity: always a string
    char *json = zube_codec_encode_json (&resources->base, false);
    ZT_ASSERT_STR_EQ (
        json,
        "{\"limits\":{\"cpu\":\"2\",\"memory\":\"1Gi\",\"small\":\"0.001\"},"
        "\"requests\":{\"cpu\":\"500m\",\"memory\":\"128Mi\",\"nvidia.com/gpu\":\"1\","
        "\"half\":\"0.5\",\"kilo\":\"1e3\"}}");
    free (json);
    s_assert_round_trip (&resources->base);
    protobuf_c_message_free_unpacked (&resources->base, NULL);

    //  A Quantity with only milli_value set (built by a program)
    Zube__Quantity quantity = ZUBE__QUANTITY__INIT;
    quantity.has_milli_value = 1;
    quantity.milli_value = 1500;
    Zube__EmptyDirVolumeSource empty_dir = ZUBE__EMPTY_DIR_VOLUME_SOURCE__INIT;
    empty_dir.size_limit = &quantity;
    char *yaml = zube_codec_encode_yaml (&empty_dir.base);
    ZT_ASSERT_STR_EQ (yaml, "sizeLimit: 1500m\n");
    free (yaml);

    zube_codec_error_t error = s_decode_error ("requests:\n  cpu: 12x\n",
                                               &zube__resource_requirements__descriptor);
    S_ASSERT_ERROR (error, 1, 2, 8, "requests[cpu]", "invalid quantity \"12x\"");
    error = s_decode_error ("requests:\n  memory: 100E\n",
                            &zube__resource_requirements__descriptor);
    S_ASSERT_ERROR (error, 1, 2, 11, "requests[memory]",
                    "invalid quantity \"100E\": too large");
    error = s_decode_error ("requests:\n  cpu: true\n",
                            &zube__resource_requirements__descriptor);
    S_ASSERT_CONTAINS (error.message,
                       "expected a quantity (such as 500m, 128Mi, 2), got a boolean");
    error = s_decode_error ("requests:\n  cpu: {a: 1}\n",
                            &zube__resource_requirements__descriptor);
    S_ASSERT_CONTAINS (error.message,
                       "expected a quantity (such as 500m, 128Mi, 2), got a mapping");
}

static void
test_int_or_string (void)
{
    Zube__RollingUpdateDeployment *rolling = (Zube__RollingUpdateDeployment *)s_decode (
        "maxSurge: 25%\nmaxUnavailable: 0\n",
        &zube__rolling_update_deployment__descriptor);
    ZT_ASSERT_STR_EQ (rolling->max_surge->str_val, "25%");
    ZT_ASSERT (!rolling->max_surge->has_int_val);
    ZT_ASSERT (rolling->max_unavailable->has_int_val &&
               rolling->max_unavailable->int_val == 0);
    char *yaml = zube_codec_encode_yaml (&rolling->base);
    ZT_ASSERT_STR_EQ (yaml, "maxUnavailable: 0\nmaxSurge: 25%\n");
    free (yaml);
    s_assert_round_trip (&rolling->base);
    protobuf_c_message_free_unpacked (&rolling->base, NULL);

    Zube__TCPSocketAction *tcp = (Zube__TCPSocketAction *)s_decode (
        "port: \"8080\"\n", &zube__tcpsocket_action__descriptor);
    ZT_ASSERT_STR_EQ (tcp->port->str_val, "8080");
    yaml = zube_codec_encode_yaml (&tcp->base);
    ZT_ASSERT_STR_EQ (yaml, "port: \"8080\"\n");
    free (yaml);
    protobuf_c_message_free_unpacked (&tcp->base, NULL);

    zube_codec_error_t error =
        s_decode_error ("port: 1.5\n", &zube__tcpsocket_action__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 7, "port",
                    "expected an integer or a string, got a number (1.5)");
    error = s_decode_error ("port: 2147483648\n", &zube__tcpsocket_action__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 7, "port", "out of range for int32");
    error = s_decode_error ("port: [80]\n", &zube__tcpsocket_action__descriptor);
    S_ASSERT_CONTAINS (error.message, "expected an integer or a string, got a sequence");
}

static void
test_raw_extension (void)
{
    const char *yaml_in = "name: NodeResourcesFit\n"
                          "args:\n"
                          "  scoringStrategy:\n"
                          "    type: MostAllocated\n"
                          "    resources:\n"
                          "    - {name: cpu, weight: 1}\n"
                          "    - name: \"memory\\t\"\n"
                          "      weight: +2\n"
                          "  flags: [true, false, ~, 1.5, 0x10, .5, 'yes', yes]\n"
                          "  empty: {}\n";
    Zube__SchedulerPluginConfig *config = (Zube__SchedulerPluginConfig *)s_decode (
        yaml_in, &zube__scheduler_plugin_config__descriptor);
    ZT_ASSERT_STR_EQ (
        config->args->json,
        "{\"scoringStrategy\":{\"type\":\"MostAllocated\",\"resources\":[{\"name\":"
        "\"cpu\","
        "\"weight\":1},{\"name\":\"memory\\t\",\"weight\":2}]},"
        "\"flags\":[true,false,null,1.5,16,0.5,\"yes\",\"yes\"],\"empty\":{}}");
    //  Written back as the structure, not as a string
    char *yaml = zube_codec_encode_yaml (&config->base);
    ZT_ASSERT_STR_EQ (yaml, "name: NodeResourcesFit\n"
                            "args:\n"
                            "  scoringStrategy:\n"
                            "    type: MostAllocated\n"
                            "    resources:\n"
                            "    - name: cpu\n"
                            "      weight: 1\n"
                            "    - name: \"memory\\t\"\n"
                            "      weight: 2\n"
                            "  flags:\n"
                            "  - true\n"
                            "  - false\n"
                            "  - null\n"
                            "  - 1.5\n"
                            "  - 16\n"
                            "  - 0.5\n"
                            "  - \"yes\"\n"
                            "  - \"yes\"\n"
                            "  empty: {}\n");
    free (yaml);
    s_assert_round_trip (&config->base);
    protobuf_c_message_free_unpacked (&config->base, NULL);

    //  Scalars and sequences are RawExtensions too
    config = (Zube__SchedulerPluginConfig *)s_decode (
        "args: 42", &zube__scheduler_plugin_config__descriptor);
    ZT_ASSERT_STR_EQ (config->args->json, "42");
    s_assert_round_trip (&config->base);
    protobuf_c_message_free_unpacked (&config->base, NULL);

    zube_codec_error_t error =
        s_decode_error ("args:\n  a: 1\n  b:\n    c: 1\n    c: 2\n",
                        &zube__scheduler_plugin_config__descriptor);
    S_ASSERT_ERROR (error, 1, 5, 5, "args.b.c",
                    "duplicate field \"c\" (first set at line 4)");
    error =
        s_decode_error ("args: {a: .inf}\n", &zube__scheduler_plugin_config__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 11, "args.a", "cannot be written in JSON");

    //  Invalid JSON set by a program fails the encoding
    Zube__RawExtension raw = ZUBE__RAW_EXTENSION__INIT;
    raw.json = "{not json";
    Zube__SchedulerPluginConfig bad = ZUBE__SCHEDULER_PLUGIN_CONFIG__INIT;
    bad.args = &raw;
    ZT_ASSERT (zube_codec_encode_yaml (&bad.base) == NULL);
    ZT_ASSERT (zube_codec_encode_json (&bad.base, true) == NULL);
}

static void
test_json_output (void)
{
    Zube__ObjectMeta *meta = (Zube__ObjectMeta *)s_decode (
        "name: web\nlabels:\n  app: web\nfinalizers: [a, \"b\\\"c\"]\nannotations: {}\n",
        &zube__object_meta__descriptor);
    char *json = zube_codec_encode_json (&meta->base, true);
    ZT_ASSERT_STR_EQ (json, "{\n"
                            "    \"name\": \"web\",\n"
                            "    \"labels\": {\n"
                            "        \"app\": \"web\"\n"
                            "    },\n"
                            "    \"finalizers\": [\n"
                            "        \"a\",\n"
                            "        \"b\\\"c\"\n"
                            "    ]\n"
                            "}\n");
    free (json);
    json = zube_codec_encode_json (&meta->base, false);
    ZT_ASSERT_STR_EQ (json, "{\"name\":\"web\",\"labels\":{\"app\":\"web\"},"
                            "\"finalizers\":[\"a\",\"b\\\"c\"]}");
    free (json);
    protobuf_c_message_free_unpacked (&meta->base, NULL);

    //  An empty message
    Zube__ObjectMeta empty = ZUBE__OBJECT_META__INIT;
    json = zube_codec_encode_json (&empty.base, true);
    ZT_ASSERT_STR_EQ (json, "{}\n");
    free (json);
    char *yaml = zube_codec_encode_yaml (&empty.base);
    ZT_ASSERT_STR_EQ (yaml, "{}\n");
    free (yaml);
    ZT_ASSERT (zube_codec_encode_yaml (NULL) == NULL);
}

static void
test_yaml_features (void)
{
    //  Anchors, aliases, merge keys, flow style, comments, explicit start
    const char *text = "--- # a comment\n"
                       "base: &base\n"
                       "  name: web\n"
                       "  namespace: default\n"
                       "metadata:\n"
                       "  <<: *base\n"
                       "  namespace: prod\n"
                       "  labels: &labels {app: web}\n"
                       "  annotations: *labels\n";
    zube_codec_error_t error = s_decode_error (text, &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 2, 1, "base", "unknown field \"base\"");

    Zube__Pod *pod = (Zube__Pod *)s_decode ("metadata:\n"
                                            "  <<: {name: web, namespace: default}\n"
                                            "  namespace: prod\n"
                                            "  labels: &labels {app: web}\n"
                                            "  annotations: *labels\n"
                                            "...\n",
                                            &zube__pod__descriptor);
    ZT_ASSERT_STR_EQ (pod->metadata->name, "web");
    ZT_ASSERT_STR_EQ (pod->metadata->namespace_, "prod");
    ZT_ASSERT_INT_EQ (pod->metadata->n_annotations, 1);
    ZT_ASSERT_STR_EQ (pod->metadata->annotations[0]->value, "web");
    protobuf_c_message_free_unpacked (&pod->base, NULL);

    //  A JSON document with a byte order mark, and an empty document
    const char bom_json[] = "\xef\xbb\xbf  {\"metadata\": {\"name\": \"web\"}}\n";
    pod = (Zube__Pod *)s_decode (bom_json, &zube__pod__descriptor);
    ZT_ASSERT_STR_EQ (pod->metadata->name, "web");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    static const char *empties[] = {"", "# nothing\n", "---\n", "~\n", "  \n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        pod = (Zube__Pod *)s_decode (empties[i], &zube__pod__descriptor);
        ZT_ASSERT (pod->metadata == NULL);
        protobuf_c_message_free_unpacked (&pod->base, NULL);
    }
    error = s_decode_error ("metadata: {}\n---\nmetadata: {}\n", &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 2, 2, 1, "", "expected one document, found another");
    error = s_decode_error ("[1, 2]", &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 1, "", "expected a mapping, got a sequence");
    error = s_decode_error ("metadata: *nowhere\n", &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 11, "", "unknown anchor \"nowhere\"");
    error = s_decode_error ("metadata: &a\n  labels: *a\n", &zube__pod__descriptor);
    S_ASSERT_CONTAINS (error.message, "unknown anchor \"a\"");
    error = s_decode_error ("metadata:\n  <<: [a]\n", &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 2, 8, "", "a merge key (<<) needs a mapping");
}

//  ---------------------------------------------------------------------
//  Errors

static void
test_error_unknown_field (void)
{
    const char *text = "apiVersion: v1\n"
                       "kind: Pod\n"
                       "metadata:\n"
                       "  name: web\n"
                       "spec:\n"
                       "  containers:\n"
                       "  - name: app\n"
                       "    imagee: nginx\n";
    zube_codec_error_t error = s_decode_error (text, &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 8, 5, "spec.containers[0].imagee",
                    "unknown field \"imagee\"");
    char line[1024];
    ZT_ASSERT_STR_EQ (zube_codec_error_format (&error, line, sizeof line),
                      "document 1, line 8, column 5: spec.containers[0].imagee: unknown "
                      "field \"imagee\"");
    //  Names are case-sensitive, and proto names are not JSON names
    error =
        s_decode_error ("{\"metadata\": {\"Name\": \"web\"}}", &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 15, "metadata.Name", "unknown field \"Name\"");
    error = s_decode_error ("api_version: v1\n", &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 1, "api_version", "unknown field \"api_version\"");
    error = s_decode_error ("metadata:\n  [a]: b\n", &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 2, 3, "metadata", "expected a field name, got a sequence");
    //  A key holding a NUL matches no field
    error = s_decode_error ("{\"metadata\": {\"name\\u0000x\": \"a\"}}",
                            &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 15, "metadata.name", "unknown field \"name\"");
    //  Small buffers truncate the formatted error safely
    char small[12];
    zube_codec_error_format (&error, small, sizeof small);
    ZT_ASSERT_STR_EQ (small, "document 1,");
}

static void
test_error_wrong_type (void)
{
    const char *text = "apiVersion: v1\n"
                       "kind: Namespace\n"
                       "metadata: {name: a}\n"
                       "---\n"
                       "apiVersion: v1\n"
                       "kind: Pod\n"
                       "metadata:\n"
                       "  name: web\n"
                       "spec:\n"
                       "  containers:\n"
                       "  - name: app\n"
                       "    image:\n"
                       "    - nginx\n";
    zube_codec_error_t error = s_objects_error (text);
    S_ASSERT_ERROR (error, 2, 13, 5, "spec.containers[0].image",
                    "expected a string, got a sequence");
    char line[1024];
    ZT_ASSERT_STR_EQ (zube_codec_error_format (&error, line, sizeof line),
                      "document 2, line 13, column 5: spec.containers[0].image: expected "
                      "a string, got a sequence");

    //  The classic: a number where Kubernetes wants a string
    text = "apiVersion: apps/v1\n"
           "kind: Deployment\n"
           "spec:\n"
           "  template:\n"
           "    spec:\n"
           "      containers:\n"
           "      - name: app\n"
           "        env:\n"
           "        - name: PORT\n"
           "          value: 8080\n";
    error = s_objects_error (text);
    S_ASSERT_ERROR (error, 1, 10, 18, "spec.template.spec.containers[0].env[0].value",
                    "expected a string, got a number (8080)");
    error = s_decode_error ("metadata: web\n", &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 11, "metadata", "expected a mapping, got a string");
}

static void
test_error_yaml_syntax (void)
{
    const char *text = "apiVersion: v1\n"
                       "kind: Pod\n"
                       "metadata:\n"
                       "  name: web\n"
                       " labels: {}\n";
    zube_codec_error_t error = s_decode_error (text, &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 5, 2, "", "did not find expected key");
    S_ASSERT_CONTAINS (error.message,
                       "(while parsing a block mapping started at line 1, column 1)");

    error = s_decode_error ("metadata:\n  name: \"web\n", &zube__pod__descriptor);
    ZT_ASSERT_INT_EQ (error.document, 1);
    S_ASSERT_CONTAINS (error.message, "while scanning a quoted scalar");
    ZT_ASSERT_INT_EQ (error.line, 3);

    //  In the third document of a stream
    text = "apiVersion: v1\nkind: Namespace\n---\napiVersion: v1\nkind: "
           "Namespace\n---\nkind: [\n";
    error = s_objects_error (text);
    ZT_ASSERT_INT_EQ (error.document, 3);
    ZT_ASSERT_INT_EQ (error.line, 8);
    S_ASSERT_CONTAINS (error.message, "while parsing a flow");

    //  Tabs for indentation, and invalid UTF-8
    error = s_decode_error ("metadata:\n\tname: web\n", &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 2, 1, "", "found character that cannot start any token");
    error = s_decode_error ("metadata:\n  name: w\xff\n", &zube__pod__descriptor);
    ZT_ASSERT_INT_EQ (error.line, 2);
    ZT_ASSERT_INT_EQ (error.column, 10);
    S_ASSERT_CONTAINS (error.message, "invalid");
}

static void
test_error_json_syntax (void)
{
    static const struct {
        const char *text;
        int line;
        int column;
        const char *message;
    } cases[] = {
        {"{\"metadata\": {\"name\": \"web\",}}", 1, 29,
         "invalid character '}' looking for beginning of object key string"},
        {"{\n  \"metadata\": {\n    \"name\" \"web\"\n  }\n}", 3, 12,
         "invalid character '\"' after object key"},
        {"{\"metadata\": {\"name\": \"web\"}", 1, 29, "unexpected end of JSON input"},
        {"{\"metadata\": [1,]}", 1, 17,
         "invalid character ']' looking for beginning of value"},
        {"{\"metadata\": {\"name\": \"web\"} x}", 1, 30,
         "invalid character 'x' after object key:value pair"},
        {"{\"a\": [1 2]}", 1, 10, "invalid character '2' after array element"},
        {"{\"a\": tru}", 1, 10, "invalid character '}' in literal true (expecting 'e')"},
        {"{\"a\": 01}", 1, 8, "invalid character '1' after object key:value pair"},
        {"{\"a\": -}", 1, 8, "invalid character '}' in numeric literal"},
        {"{\"a\": 1.}", 1, 9,
         "invalid character '}' after decimal point in numeric literal"},
        {"{\"a\": \"\\x\"}", 1, 9, "invalid character 'x' in string escape code"},
        {"{\"a\": \"\t\"}", 1, 8, "invalid character '\\x09' in string literal"},
        {"{\"a\": \"\\u12\"}", 1, 12, "in \\u hexadecimal character escape"},
        {"{\"a\": \"\xc3\x28\"}", 1, 8, "invalid UTF-8 in string literal"},
        {"{'a': 1}", 1, 2,
         "invalid character ''' looking for beginning of object key string"},
        {"[", 1, 2, "unexpected end of JSON input"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zube_codec_error_t error = s_decode_error (cases[i].text, &zube__pod__descriptor);
        S_ASSERT_ERROR (error, 1, cases[i].line, cases[i].column, "", cases[i].message);
    }
    //  A stream of JSON objects; the second is broken
    zube_codec_error_t error =
        s_objects_error ("{\"apiVersion\": \"v1\", \"kind\": "
                         "\"Namespace\"}\n{\"apiVersion\": \"v1\", \"kind\": }\n");
    S_ASSERT_ERROR (error, 2, 2, 30, "",
                    "invalid character '}' looking for beginning of value");
}

static void
test_error_duplicate_key (void)
{
    zube_codec_error_t error =
        s_decode_error ("metadata:\n  name: a\n  labels:\n    app: x\n    app: y\n",
                        &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 5, 5, "metadata.labels[app]",
                    "duplicate key \"app\" (first set at line 4)");
    error = s_decode_error ("metadata:\n  name: a\n  namespace: b\n  name: c\n",
                            &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 4, 3, "metadata.name",
                    "duplicate field \"name\" (first set at line 2)");
    error = s_decode_error ("{\"metadata\": {\"name\": \"a\", \"name\": \"b\"}}",
                            &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 28, "metadata.name",
                    "duplicate field \"name\" (first set at line 1)");
    //  A null value still counts as set
    error = s_decode_error ("metadata:\n  name:\n  name: b\n", &zube__pod__descriptor);
    S_ASSERT_ERROR (error, 1, 3, 3, "metadata.name", "duplicate field \"name\"");
}

static char *
s_billion_laughs (int levels)
{
    size_t size = 256 + (size_t)levels * 80;
    char *text = malloc (size);
    size_t used = (size_t)snprintf (text, size,
                                    "name: NodeResourcesFit\nargs:\n  l0: &l0 [lol, lol, "
                                    "lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < levels; i++)
        used += (size_t)snprintf (
            text + used, size - used,
            "  l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
            i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    return text;
}

static void
test_error_alias_bomb (void)
{
    //  Ten levels of ten aliases each: 10^10 nodes if expanded. The
    //  eighth alias of level 4 crosses the budget: 110 + 1110 + 11110 +
    //  8 * 11111 > 100000.
    char *text = s_billion_laughs (10);
    zube_codec_error_t error =
        s_decode_error (text, &zube__scheduler_plugin_config__descriptor);
    free (text);
    S_ASSERT_ERROR (error, 1, 7, 47, "",
                    "aliases expand to more than the budget of 100000 nodes");

    //  Three levels (about 1100 nodes) are fine, except with a lower budget
    text = s_billion_laughs (3);
    Zube__SchedulerPluginConfig *config = (Zube__SchedulerPluginConfig *)s_decode (
        text, &zube__scheduler_plugin_config__descriptor);
    ZT_ASSERT (config->args && strlen (config->args->json) > 3000);
    protobuf_c_message_free_unpacked (&config->base, NULL);
    zube_codec_limits_t limits = {.max_alias_nodes = 500};
    ProtobufCMessage *msg = NULL;
    ZT_ASSERT_INT_EQ (zube_codec_decode_with_limits (
                          text, strlen (text), &zube__scheduler_plugin_config__descriptor,
                          &limits, &msg, &error),
                      -1);
    S_ASSERT_CONTAINS (error.message, "budget of 500 nodes");
    free (text);

    //  Through the objects API too
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: &a {a: b}\n  "
           "annotations: *a\n"
           "x0: &x0 [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]\n"
           "x1: &x1 "
           "[*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,"
           "*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0,*x0]\n"
           "x2: &x2 "
           "[*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,"
           "*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1,*x1]\n"
           "x3: &x3 "
           "[*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,"
           "*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2,*x2]\n";
    error = s_objects_error (text);
    ZT_ASSERT_INT_EQ (error.document, 1);
    ZT_ASSERT_INT_EQ (error.line, 9);
    S_ASSERT_CONTAINS (error.message, "budget of 100000 nodes");
}

static void
test_error_document_size (void)
{
    //  A ConfigMap with one 4 MiB value
    size_t big = 4 * 1024 * 1024;
    char *text = malloc (big + 256);
    size_t used = (size_t)sprintf (
        text, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  blob: ");
    memset (text + used, 'x', big);
    used += big;
    strcpy (text + used, "\n");
    zube_codec_error_t error = s_objects_error (text);
    ZT_ASSERT_INT_EQ (error.document, 1);
    ZT_ASSERT_INT_EQ (error.line, 5);
    S_ASSERT_CONTAINS (error.message,
                       "document is larger than the limit of 3145728 bytes");

    //  A higher limit takes it
    zube_codec_limits_t limits = {.max_document_size = 8 * 1024 * 1024};
    zube_codec_object_t *objects = NULL;
    size_t count = 0;
    ZT_ASSERT_INT_EQ (zube_codec_decode_objects_with_limits (text, strlen (text), &limits,
                                                             &objects, &count, &error),
                      0);
    ZT_ASSERT_INT_EQ (count, 1);
    Zube__ConfigMap *config_map = (Zube__ConfigMap *)objects[0].message;
    ZT_ASSERT_INT_EQ (strlen (config_map->data[0]->value), big);
    zube_codec_objects_free (&objects, count);
    ZT_ASSERT (objects == NULL);

    //  The limit is per document: a small one first, the big one second
    char *stream = malloc (big + 512);
    used = (size_t)sprintf (
        stream, "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n%s", text);
    error = s_objects_error (stream);
    ZT_ASSERT_INT_EQ (error.document, 2);
    S_ASSERT_CONTAINS (error.message, "larger than the limit");
    free (stream);

    //  JSON, and a lower limit
    used = (size_t)sprintf (text, "{\"data\": {\"blob\": \"");
    memset (text + used, 'y', big);
    strcpy (text + used + big, "\"}}");
    error = s_decode_error (text, &zube__config_map__descriptor);
    S_ASSERT_CONTAINS (error.message,
                       "document is larger than the limit of 3145728 bytes");
    limits = (zube_codec_limits_t){.max_document_size = 100};
    ProtobufCMessage *msg = NULL;
    const char *small = "metadata: {name: a}\ndata: {a: "
                        "\"01234567890123456789012345678901234567890123456789012345678901"
                        "23456789012345678901234567890123456789\"}\n";
    ZT_ASSERT_INT_EQ (zube_codec_decode_with_limits (small, strlen (small),
                                                     &zube__config_map__descriptor,
                                                     &limits, &msg, &error),
                      -1);
    S_ASSERT_CONTAINS (error.message, "larger than the limit of 100 bytes");
    free (text);
}

static void
test_error_depth (void)
{
    //  101 nested sequences in a RawExtension, in YAML flow and in JSON
    char text[1024];
    size_t used = (size_t)sprintf (text, "args: ");
    for (int i = 0; i < 101; i++)
        text[used++] = '[';
    for (int i = 0; i < 101; i++)
        text[used++] = ']';
    text[used] = 0;
    zube_codec_error_t error =
        s_decode_error (text, &zube__scheduler_plugin_config__descriptor);
    //  The document's mapping is level 1, so level 101 is the 100th bracket
    S_ASSERT_ERROR (error, 1, 1, 106, "",
                    "nesting is deeper than the limit of 100 levels");

    used = (size_t)sprintf (text, "{\"args\": ");
    for (int i = 0; i < 100; i++)
        text[used++] = '[';
    for (int i = 0; i < 100; i++)
        text[used++] = ']';
    text[used++] = '}';
    text[used] = 0;
    error = s_decode_error (text, &zube__scheduler_plugin_config__descriptor);
    S_ASSERT_ERROR (error, 1, 1, 109, "",
                    "nesting is deeper than the limit of 100 levels");

    //  99 levels below the top are fine
    used = (size_t)sprintf (text, "args: ");
    for (int i = 0; i < 99; i++)
        text[used++] = '[';
    for (int i = 0; i < 99; i++)
        text[used++] = ']';
    text[used] = 0;
    ProtobufCMessage *msg = s_decode (text, &zube__scheduler_plugin_config__descriptor);
    protobuf_c_message_free_unpacked (msg, NULL);

    //  Aliases cannot stack nesting past the limit either
    zube_codec_limits_t limits = {.max_depth = 5};
    const char *stacked = "args:\n  a: &a [[[1]]]\n  b: [[*a]]\n";
    ZT_ASSERT_INT_EQ (
        zube_codec_decode_with_limits (stacked, strlen (stacked),
                                       &zube__scheduler_plugin_config__descriptor,
                                       &limits, &msg, &error),
        -1);
    S_ASSERT_CONTAINS (error.message, "deeper than the limit of 5 levels");
}

static void
test_error_objects (void)
{
    zube_codec_error_t error = s_objects_error ("apiVersion: v1\nmetadata: {name: a}\n");
    S_ASSERT_ERROR (error, 1, 1, 1, "kind", "missing field \"kind\"");
    error = s_objects_error ("---\nkind: Pod\nmetadata: {name: a}\n");
    S_ASSERT_ERROR (error, 1, 2, 1, "apiVersion", "missing field \"apiVersion\"");
    error = s_objects_error (
        "apiVersion: v1\nkind: Pod\n---\napiVersion: apps/v1\nkind: Pod\n");
    S_ASSERT_ERROR (error, 2, 5, 7, "kind",
                    "no matches for kind \"Pod\" in version \"apps/v1\"");
    error = s_objects_error ("apiVersion: v1\nkind: Widget\n");
    S_ASSERT_ERROR (error, 1, 2, 7, "kind",
                    "no matches for kind \"Widget\" in version \"v1\"");
    error = s_objects_error ("apiVersion: 1\nkind: Pod\n");
    S_ASSERT_ERROR (error, 1, 1, 13, "apiVersion", "expected a string, got a number (1)");
    error = s_objects_error ("apiVersion: v1\nkind: \"\"\n");
    S_ASSERT_ERROR (error, 1, 2, 7, "kind", "kind may not be empty");
    error = s_objects_error ("- apiVersion: v1\n  kind: Pod\n");
    S_ASSERT_ERROR (
        error, 1, 1, 1, "",
        "expected an object (a mapping with apiVersion and kind), got a sequence");
    error = s_objects_error ("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  "
                             "kind: Pod\n  spec: {nodeName: 1}\n");
    S_ASSERT_ERROR (error, 1, 6, 20, "items[0].spec.nodeName",
                    "expected a string, got a number (1)");
    error = s_objects_error ("apiVersion: v1\nkind: List\nextra: 1\n");
    S_ASSERT_ERROR (error, 1, 3, 1, "extra", "unknown field \"extra\"");
}

static void
test_objects (void)
{
    const char *text = "# a stream\n"
                       "apiVersion: v1\n"
                       "kind: Namespace\n"
                       "metadata:\n"
                       "  name: shop\n"
                       "---\n"
                       "---\n"
                       "# only a comment\n"
                       "---\n"
                       "apiVersion: apps/v1\n"
                       "kind: Deployment\n"
                       "metadata: {name: web, namespace: shop}\n"
                       "spec: {replicas: 0}\n"
                       "---\n"
                       "apiVersion: v1\n"
                       "kind: List\n"
                       "items:\n"
                       "- apiVersion: v1\n"
                       "  kind: ConfigMap\n"
                       "  metadata: {name: a}\n"
                       "- apiVersion: v1\n"
                       "  kind: Secret\n"
                       "  metadata: {name: b}\n"
                       "---\n"
                       "apiVersion: v1\n"
                       "kind: PodList\n"
                       "metadata: {resourceVersion: \"7\"}\n"
                       "items:\n"
                       "- metadata: {name: p}\n"
                       "...\n";
    zube_codec_object_t *objects = NULL;
    size_t count = 0;
    zube_codec_error_t error;
    int rc = zube_codec_decode_objects (text, strlen (text), &objects, &count, &error);
    char line[1024];
    ZT_ASSERT_MSG (rc == 0, "%s", zube_codec_error_format (&error, line, sizeof line));
    ZT_ASSERT_INT_EQ (count, 5);
    ZT_ASSERT_STR_EQ (objects[0].kind->kind, "Namespace");
    ZT_ASSERT_INT_EQ (objects[0].document, 1);
    ZT_ASSERT_INT_EQ (objects[0].line, 2);
    ZT_ASSERT_STR_EQ (objects[1].kind->kind, "Deployment");
    ZT_ASSERT_INT_EQ (objects[1].document, 4);
    ZT_ASSERT_INT_EQ (objects[1].line, 10);
    Zube__Deployment *deployment = (Zube__Deployment *)objects[1].message;
    ZT_ASSERT (deployment->base.descriptor == &zube__deployment__descriptor);
    ZT_ASSERT (deployment->spec->has_replicas && deployment->spec->replicas == 0);
    ZT_ASSERT_STR_EQ (objects[2].kind->kind, "ConfigMap");
    ZT_ASSERT_INT_EQ (objects[2].document, 5);
    ZT_ASSERT_INT_EQ (objects[2].line, 18);
    ZT_ASSERT_STR_EQ (objects[3].kind->kind, "Secret");
    //  A typed list's items take the list's kind
    ZT_ASSERT_STR_EQ (objects[4].kind->kind, "Pod");
    Zube__Pod *pod = (Zube__Pod *)objects[4].message;
    ZT_ASSERT_STR_EQ (pod->api_version, "v1");
    ZT_ASSERT_STR_EQ (pod->kind, "Pod");
    ZT_ASSERT_STR_EQ (pod->metadata->name, "p");
    char *yaml = zube_codec_encode_yaml (&deployment->base);
    ZT_ASSERT_STR_EQ (yaml, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: "
                            "web\n  namespace: shop\n"
                            "spec:\n  replicas: 0\n");
    free (yaml);
    zube_codec_objects_free (&objects, count);
    ZT_ASSERT (objects == NULL);

    //  Nothing at all
    rc = zube_codec_decode_objects ("# empty\n", 8, &objects, &count, &error);
    ZT_ASSERT_INT_EQ (rc, 0);
    ZT_ASSERT_INT_EQ (count, 0);
    ZT_ASSERT (objects == NULL);
    zube_codec_objects_free (&objects, count);

    //  All or nothing: a good object, then a bad one
    error = s_objects_error ("apiVersion: v1\nkind: Namespace\n---\napiVersion: "
                             "v1\nkind: Namespace\nspec: 1\n");
    S_ASSERT_ERROR (error, 2, 6, 7, "spec", "expected a mapping, got a number (1)");

    //  JSON values one after another
    text = "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": "
           "\"a\"}}\n"
           "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"apiVersion\": "
           "\"v1\", \"kind\": \"Namespace\"}]}";
    rc = zube_codec_decode_objects (text, strlen (text), &objects, &count, &error);
    ZT_ASSERT_MSG (rc == 0, "%s", zube_codec_error_format (&error, line, sizeof line));
    ZT_ASSERT_INT_EQ (count, 2);
    ZT_ASSERT_INT_EQ (objects[1].document, 2);
    ZT_ASSERT_INT_EQ (objects[1].line, 2);
    zube_codec_objects_free (&objects, count);
}

//  ---------------------------------------------------------------------
//  Example manifests

static char *
s_read_file (const char *path, size_t *size_p)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    fseek (file, 0, SEEK_SET);
    char *data = malloc ((size_t)size + 1);
    if (data && fread (data, 1, (size_t)size, file) != (size_t)size) {
        free (data);
        data = NULL;
    }
    fclose (file);
    if (data) {
        data[size] = 0;
        *size_p = (size_t)size;
    }
    return data;
}

static int
s_compare_names (const void *a, const void *b)
{
    return strcmp (*(char *const *)a, *(char *const *)b);
}

//  Every object in text re-encodes to YAML and JSON and decodes back
//  through the objects API to the same kind and packed bytes.
static void
s_assert_objects_round_trip (const char *path, zube_codec_object_t *objects, size_t count)
{
    for (size_t i = 0; i < count; i++)
        for (int format = 0; format < 3; format++) {
            char *text = format == 0
                             ? zube_codec_encode_yaml (objects[i].message)
                             : zube_codec_encode_json (objects[i].message, format == 2);
            ZT_ASSERT_MSG (text, "%.200s: encoding failed", path);
            zube_codec_object_t *back = NULL;
            size_t back_count = 0;
            zube_codec_error_t error;
            char line[1024];
            if (zube_codec_decode_objects (text, strlen (text), &back, &back_count,
                                           &error))
                ZT_FAIL ("%.200s: format %d: %.300s\n%.300s", path, format,
                         zube_codec_error_format (&error, line, sizeof line), text);
            bool same = back_count == 1 && back[0].kind == objects[i].kind &&
                        s_packed_equal (objects[i].message, back[0].message);
            zube_codec_objects_free (&back, back_count);
            if (!same) {
                fprintf (stderr, "%s\n", text);
                free (text);
                ZT_FAIL ("%.200s: object %zu differs after format %d", path, i, format);
            }
            free (text);
        }
}

static void
s_check_known_values (const char *name, zube_codec_object_t *objects, size_t count)
{
    if (strcmp (name, "deployment.yaml") == 0) {
        ZT_ASSERT_INT_EQ (count, 1);
        Zube__Deployment *deployment = (Zube__Deployment *)objects[0].message;
        ZT_ASSERT_INT_EQ (deployment->spec->replicas, 3);
        Zube__Container *nginx = deployment->spec->template_->spec->containers[0];
        ZT_ASSERT_STR_EQ (nginx->name, "nginx");
        Zube__ResourceRequirements *resources = nginx->resources;
        ZT_ASSERT_STR_EQ (resources->requests[0]->key, "cpu");
        ZT_ASSERT_INT_EQ (resources->requests[0]->value->milli_value, 500);
        ZT_ASSERT_STR_EQ (resources->requests[1]->key, "memory");
        ZT_ASSERT_INT_EQ (resources->requests[1]->value->milli_value,
                          INT64_C (128) * 1024 * 1024 * 1000);
        ZT_ASSERT_INT_EQ (resources->limits[0]->value->milli_value, 1000);
        ZT_ASSERT_STR_EQ (deployment->spec->strategy->rolling_update->max_surge->str_val,
                          "25%");
        ZT_ASSERT_INT_EQ (
            deployment->spec->strategy->rolling_update->max_unavailable->int_val, 0);
        ZT_ASSERT_INT_EQ (nginx->ports[1]->container_port, 9113);
        ZT_ASSERT_STR_EQ (nginx->liveness_probe->http_get->port->str_val, "http");
    } else if (strcmp (name, "secret.yaml") == 0) {
        Zube__Secret *secret = (Zube__Secret *)objects[0].message;
        ZT_ASSERT_STR_EQ (secret->data[0]->key, "USERNAME");
        ZT_ASSERT_INT_EQ (secret->data[0]->value.len, 5);
        ZT_ASSERT (memcmp (secret->data[0]->value.data, "admin", 5) == 0);
        ZT_ASSERT (secret->has_immutable && secret->immutable);
    } else if (strcmp (name, "node.yaml") == 0) {
        Zube__Node *node = (Zube__Node *)objects[0].message;
        ZT_ASSERT_STR_EQ (node->status->capacity[0]->key, "cpu");
        ZT_ASSERT_INT_EQ (node->status->capacity[0]->value->milli_value, 4000);
        ZT_ASSERT_INT_EQ (node->status->allocatable[0]->value->milli_value, 3800);
        ZT_ASSERT_INT_EQ (node->status->daemon_endpoints->kubelet_endpoint->port, 10250);
    }
}

//  Random damage to every example manifest (truncation, flipped bytes,
//  YAML and JSON punctuation spliced in), in YAML and JSON: decoding
//  either fails with a message or gives objects that re-encode and
//  decode again. Under AddressSanitizer this also checks that failed
//  documents free everything.
static void
test_mutations (void)
{
    const char *srcdir = getenv ("ZUBE_SRCDIR");
    char directory[4096];
    snprintf (directory, sizeof directory, "%s/examples/manifests",
              srcdir ? srcdir : ".");
    DIR *dir = opendir (directory);
    ZT_ASSERT_MSG (dir, "cannot open %.300s", directory);
    char *inputs[128];
    size_t sizes[128];
    size_t n_inputs = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)) && n_inputs + 2 <= 128) {
        size_t length = strlen (entry->d_name);
        if (length <= 5 || strcmp (entry->d_name + length - 5, ".yaml") != 0)
            continue;
        char path[8192];
        snprintf (path, sizeof path, "%s/%s", directory, entry->d_name);
        inputs[n_inputs] = s_read_file (path, &sizes[n_inputs]);
        ZT_ASSERT (inputs[n_inputs]);
        //  The same objects as JSON
        zube_codec_object_t *objects = NULL;
        size_t count = 0;
        ZT_ASSERT (zube_codec_decode_objects (inputs[n_inputs], sizes[n_inputs], &objects,
                                              &count, NULL) == 0);
        n_inputs++;
        char *json = zube_codec_encode_json (objects[0].message, true);
        zube_codec_objects_free (&objects, count);
        inputs[n_inputs] = json;
        sizes[n_inputs++] = strlen (json);
    }
    closedir (dir);
    ZT_ASSERT (n_inputs > 0);

    static const char *splices[] = {"&a ", "*a",   "<<: ", "---\n",  "[",      "]",  "{",
                                    "}",   ": ",   "- ",   "\"",     "'",      "\n", "  ",
                                    "~",   "null", "1e3",  "!!str ", "\xff",   ",",  "#",
                                    "|\n", "? ",   "500m", "-1",     "\\u0000"};
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char *buffer = malloc (1 << 20);
    size_t decoded = 0;
    for (int iteration = 0; iteration < 3000; iteration++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        size_t which = seed % n_inputs;
        size_t length = sizes[which];
        memcpy (buffer, inputs[which], length);
        for (int m = 0; m < 1 + (int)(seed >> 60) % 3; m++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            size_t at = length ? (seed >> 8) % length : 0;
            if (seed % 3 == 0)
                buffer[at] = (char)(seed >> 32);
            else if (seed % 3 == 1 && m == 0)
                length = at;
            else {
                const char *splice =
                    splices[(seed >> 40) % (sizeof splices / sizeof *splices)];
                size_t splice_length = strlen (splice);
                memmove (buffer + at + splice_length, buffer + at, length - at);
                memcpy (buffer + at, splice, splice_length);
                length += splice_length;
            }
        }
        zube_codec_object_t *objects = NULL;
        size_t count = 0;
        zube_codec_error_t error;
        if (zube_codec_decode_objects (buffer, length, &objects, &count, &error)) {
            ZT_ASSERT (error.message[0] != 0);
            continue;
        }
        decoded++;
        for (size_t i = 0; i < count; i++)
            for (int format = 0; format < 2; format++) {
                char *text = format ? zube_codec_encode_json (objects[i].message, false)
                                    : zube_codec_encode_yaml (objects[i].message);
                ZT_ASSERT (text);
                zube_codec_object_t *back = NULL;
                size_t back_count = 0;
                int rc = zube_codec_decode_objects (text, strlen (text), &back,
                                                    &back_count, &error);
                bool same = rc == 0 && back_count == 1 &&
                            s_packed_equal (objects[i].message, back[0].message);
                zube_codec_objects_free (&back, back_count);
                ZT_ASSERT_MSG (same, "mutation %d: re-decoding differs: %.300s\n%.400s",
                               iteration, error.message, text);
                free (text);
            }
        zube_codec_objects_free (&objects, count);
    }
    free (buffer);
    for (size_t i = 0; i < n_inputs; i++)
        free (inputs[i]);
    ZT_ASSERT (decoded > 0);
}

static void
test_example_manifests (void)
{
    const char *srcdir = getenv ("ZUBE_SRCDIR");
    char directory[4096];
    snprintf (directory, sizeof directory, "%s/examples/manifests",
              srcdir ? srcdir : ".");
    DIR *dir = opendir (directory);
    ZT_ASSERT_MSG (dir, "cannot open %.300s", directory);
    char *names[256];
    size_t n_names = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)) && n_names < 256) {
        size_t length = strlen (entry->d_name);
        if (length > 5 && strcmp (entry->d_name + length - 5, ".yaml") == 0)
            names[n_names++] = strdup (entry->d_name);
    }
    closedir (dir);
    qsort (names, n_names, sizeof *names, s_compare_names);
    ZT_ASSERT_MSG (n_names >= (size_t)14, "only %zu manifests in %.300s", n_names,
                   directory);

    bool seen_kind[256] = {false};
    for (size_t i = 0; i < n_names; i++) {
        char path[8192];
        snprintf (path, sizeof path, "%s/%s", directory, names[i]);
        size_t size = 0;
        char *text = s_read_file (path, &size);
        ZT_ASSERT_MSG (text, "cannot read %.300s", path);
        zube_codec_object_t *objects = NULL;
        size_t count = 0;
        zube_codec_error_t error;
        char line[1024];
        int rc = zube_codec_decode_objects (text, size, &objects, &count, &error);
        free (text);
        ZT_ASSERT_MSG (rc == 0, "%.200s: %.500s", path,
                       zube_codec_error_format (&error, line, sizeof line));
        ZT_ASSERT_MSG (count >= 1, "%.300s: no objects", path);
        for (size_t k = 0; k < count; k++)
            for (size_t j = 0; j < zube_kinds_count () && j < 256; j++)
                if (zube_kind_at (j) == objects[k].kind)
                    seen_kind[j] = true;
        s_assert_objects_round_trip (path, objects, count);
        s_check_known_values (names[i], objects, count);
        zube_codec_objects_free (&objects, count);
        free (names[i]);
        names[i] = NULL;
    }
    //  One manifest per kind
    for (size_t j = 0; j < zube_kinds_count () && j < 256; j++)
        ZT_ASSERT_MSG (seen_kind[j], "no example manifest for %s",
                       zube_kind_at (j)->kind);
}

int
main (void)
{
    ZT_RUN (test_json_names);
    ZT_RUN (test_scalars);
    ZT_RUN (test_strings);
    ZT_RUN (test_booleans);
    ZT_RUN (test_integers);
    ZT_RUN (test_enums);
    ZT_RUN (test_bytes);
    ZT_RUN (test_maps);
    ZT_RUN (test_repeated);
    ZT_RUN (test_quantity_fields);
    ZT_RUN (test_int_or_string);
    ZT_RUN (test_raw_extension);
    ZT_RUN (test_json_output);
    ZT_RUN (test_yaml_features);
    ZT_RUN (test_error_unknown_field);
    ZT_RUN (test_error_wrong_type);
    ZT_RUN (test_error_yaml_syntax);
    ZT_RUN (test_error_json_syntax);
    ZT_RUN (test_error_duplicate_key);
    ZT_RUN (test_error_alias_bomb);
    ZT_RUN (test_error_document_size);
    ZT_RUN (test_error_depth);
    ZT_RUN (test_error_objects);
    ZT_RUN (test_objects);
    ZT_RUN (test_example_manifests);
    ZT_RUN (test_mutations);
    return zt_done ();
}
