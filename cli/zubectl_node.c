/*  zubectl logs / exec - ask the node agent that runs a pod.

    The pod's spec.nodeName comes from the apiserver; the node's agent
    answers on the bus service its Node names in the annotation
    zube.io/node-agent-service (node/<node> when there is none), with
    the node name in the request (docs/node-agent.md). Errors are
    kubectl's: a pod with several containers needs -c, a pod without a
    node or a completed pod cannot be exec'd into, and a node agent
    that does not answer is named. */
#include "zubectl.h"
#include "node.pb-c.h"
#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_SERVICE_ANNOTATION "zube.io/node-agent-service"
#define S_FOLLOW_INTERVAL_US 500000

//  The pod, and the bus service of its node's agent; NULL after printing
//  the error.
static Zube__Pod *
s_pod_and_service (zubectl_t *self, const char *name, char *service, size_t service_size)
{
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return NULL;
    ProtobufCMessage *object = NULL;
    zube_api_error_t error;
    if (zube_api_get (api, "pods", zubectl_namespace (self), name, &object, &error) != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return NULL;
    }
    Zube__Pod *pod = (Zube__Pod *)object;
    const char *node = pod->spec ? pod->spec->node_name : NULL;
    if (!node || !*node) {
        char message[600];
        snprintf (message, sizeof message, "pod %s does not have a host assigned", name);
        zubectl_print_server_error (ZUBE_BAD_REQUEST, message);
        protobuf_c_message_free_unpacked (object, NULL);
        return NULL;
    }
    zubectl_node_service (self, node, false, service, service_size);
    return pod;
}

int
zubectl_node_service (zubectl_t *self, const char *node, bool must_exist, char *service,
                      size_t service_size)
{
    snprintf (service, service_size, "node/%s", node);
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return -1;
    ProtobufCMessage *node_object = NULL;
    zube_api_error_t error;
    if (zube_api_get (api, "nodes", NULL, node, &node_object, &error) != ZUBE_OK) {
        if (!must_exist)
            return 0;
        zubectl_print_api_error (self, &error, NULL);
        return -1;
    }
    Zube__ObjectMeta *meta = ((Zube__Node *)node_object)->metadata;
    for (size_t i = 0; meta && i < meta->n_annotations; i++)
        if (streq (meta->annotations[i]->key, S_SERVICE_ANNOTATION) &&
            meta->annotations[i]->value && *meta->annotations[i]->value)
            snprintf (service, service_size, "%s", meta->annotations[i]->value);
    protobuf_c_message_free_unpacked (node_object, NULL);
    return 0;
}

//  -c CONTAINER, or the pod's only container; NULL after printing
//  kubectl's error.
static const char *
s_container (const Zube__Pod *pod, const char *container)
{
    const Zube__PodSpec *spec = pod->spec;
    if (container) {
        for (size_t i = 0; spec && i < spec->n_containers + spec->n_init_containers; i++) {
            const Zube__Container *c = i < spec->n_containers
                                           ? spec->containers[i]
                                           : spec->init_containers[i - spec->n_containers];
            if (c->name && streq (c->name, container))
                return container;
        }
        zube_cli_error ("container %s is not valid for pod %s", container,
                        pod->metadata->name);
        return NULL;
    }
    if (spec && spec->n_containers == 1)
        return spec->containers[0]->name;
    char names[1000] = "", inits[1000] = "";
    for (size_t i = 0; spec && i < spec->n_containers + spec->n_init_containers; i++) {
        bool init = i >= spec->n_containers;
        const Zube__Container *c =
            init ? spec->init_containers[i - spec->n_containers] : spec->containers[i];
        char *list = init ? inits : names;
        size_t used = strlen (list);
        snprintf (list + used, sizeof names - used, "%s%s", used ? " " : "",
                  c->name ? c->name : "");
    }
    zube_cli_error ("a container name must be specified for pod %s, choose one of: [%s]%s%s%s",
                    pod->metadata->name, names,
                    inits[0] ? " or one of the init containers: [" : "", inits,
                    inits[0] ? "]" : "");
    return NULL;
}

ProtobufCMessage *
zubectl_node_call (zubectl_t *self, const char *service, const char *method, const char *node,
                   const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_desc,
                   int timeout_ms)
{
    zube_bus_t *bus = zubectl_connect (self);
    if (!bus)
        return NULL;
    size_t size = protobuf_c_message_get_packed_size (request);
    uint8_t *packed = malloc (size ? size : 1);
    if (!packed) {
        zube_cli_error ("out of memory");
        return NULL;
    }
    protobuf_c_message_pack (request, packed);
    zube_bus_reply_t *reply = NULL;
    if (timeout_ms <= 0)
        timeout_ms = zubectl_timeout_ms (self);
    int rc = zube_bus_call (bus, service, method, packed, size, timeout_ms, &reply);
    free (packed);
    ProtobufCMessage *message = NULL;
    if (rc != 0) {
        char timeout_text[32];
        zube_cli_duration_format (timeout_ms, timeout_text, sizeof timeout_text);
        if (!zube_bus_connected (bus))
            zube_cli_error ("unable to connect to the broker at %s: no answer within %s",
                            zubectl_endpoint (self), timeout_text);
        else
            zube_cli_error ("the node agent of node \"%s\" is unreachable: no answer from bus "
                            "service %s within %s (%s%s%s)",
                            node, service, timeout_text,
                            zube_status_reason (reply ? reply->status : ZUBE_UNAVAILABLE),
                            reply && reply->error ? ": " : "",
                            reply && reply->error ? reply->error : "");
    } else if (reply->status != ZUBE_OK)
        zubectl_print_server_error (reply->status, reply->error);
    else {
        message = protobuf_c_message_unpack (reply_desc, NULL, reply->payload_size,
                                             reply->payload);
        if (!message)
            zube_cli_error ("the reply of %s/%s is not a valid %s", service, method,
                            reply_desc->name);
    }
    zube_bus_reply_destroy (&reply);
    return message;
}

int
zubectl_logs (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *container = NULL;
    bool previous = false, follow = false;
    long tail = -1, limit_bytes = -1;
    int64_t since_ms = 0;
    zube_cli_flag_t flags[] = {
        {.name = "container", .short_name = 'c', .type = ZUBE_CLI_STRING, .value = &container,
         .value_name = "NAME", .help = "Print the logs of this container"},
        {.name = "previous", .short_name = 'p', .type = ZUBE_CLI_BOOL, .value = &previous,
         .help = "Print the logs of the previous terminated instance of the container"},
        {.name = "tail", .type = ZUBE_CLI_INT, .value = &tail, .value_name = "N",
         .help = "Lines of recent log to display (-1: all)"},
        {.name = "since", .type = ZUBE_CLI_DURATION, .value = &since_ms, .value_name = "D",
         .help = "Only logs newer than a relative duration like 5s, 2m or 3h"},
        {.name = "limit-bytes", .type = ZUBE_CLI_INT, .value = &limit_bytes, .value_name = "N",
         .help = "Maximum bytes of logs to return"},
        {.name = "follow", .short_name = 'f', .type = ZUBE_CLI_BOOL, .value = &follow,
         .help = "Keep printing the log while the container runs"},
        {0}};
    char *args[argc + 1];
    int parsed = zubectl_parse_one (self, command, flags, argc, argv, args, "pod name");
    if (parsed <= 0)
        return parsed < 0 ? 1 : 0;
    if (follow && previous) {
        zube_cli_error ("only one of --follow and --previous may be given");
        return 1;
    }
    char service[300];
    Zube__Pod *pod = s_pod_and_service (self, args[0], service, sizeof service);
    if (!pod)
        return 1;
    int rc = 1;
    const char *name = s_container (pod, container);
    Zube__NodeLogsRequest request = ZUBE__NODE_LOGS_REQUEST__INIT;
    request.node_name = pod->spec->node_name;
    request.namespace_ = (char *)zubectl_namespace (self);
    request.pod = args[0];
    request.container = (char *)name;
    request.has_previous = previous;
    request.previous = previous;
    request.has_tail_lines = tail >= 0;
    request.tail_lines = tail;
    request.has_limit_bytes = limit_bytes >= 0;
    request.limit_bytes = limit_bytes;
    request.has_since_seconds = since_ms > 0;
    request.since_seconds = (since_ms + 999) / 1000;
    while (name) {
        Zube__NodeLogsReply *reply = (Zube__NodeLogsReply *)zubectl_node_call (
            self, service, "logs", pod->spec->node_name, &request.base,
            &zube__node_logs_reply__descriptor, 0);
        if (!reply)
            break;
        if (reply->has_data && reply->data.len)
            fwrite (reply->data.data, 1, reply->data.len, stdout);
        fflush (stdout);
        bool more = follow && reply->running;
        request.has_offset = true;
        request.offset = reply->size;
        zube__node_logs_reply__free_unpacked (reply, NULL);
        if (!more) {
            rc = 0;
            break;
        }
        usleep (S_FOLLOW_INTERVAL_US);
        if (zsys_interrupted) {
            rc = 0;
            break;
        }
    }
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    return rc;
}

//  All of standard input (for -i)
static uint8_t *
s_read_stdin (size_t *size_p)
{
    size_t size = 0, capacity = 4096;
    uint8_t *data = malloc (capacity);
    while (data) {
        size_t n = fread (data + size, 1, capacity - size, stdin);
        size += n;
        if (n == 0)
            break;
        if (size == capacity) {
            uint8_t *grown = realloc (data, capacity * 2);
            if (!grown) {
                free (data);
                return NULL;
            }
            data = grown;
            capacity *= 2;
        }
    }
    *size_p = size;
    return data;
}

int
zubectl_exec (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *container = NULL;
    bool interactive = false;
    zube_cli_flag_t flags[] = {
        {.name = "container", .short_name = 'c', .type = ZUBE_CLI_STRING, .value = &container,
         .value_name = "NAME", .help = "Run the command in this container"},
        {.name = "stdin", .short_name = 'i', .type = ZUBE_CLI_BOOL, .value = &interactive,
         .help = "Pass standard input to the command (read to its end first)"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count < 1) {
        zube_cli_error ("expected a pod name and a command: zubectl exec POD -- COMMAND "
                        "[ARG...]");
        return 1;
    }
    if (count < 2) {
        zube_cli_error ("you must specify at least one command for the container");
        return 1;
    }
    char service[300];
    Zube__Pod *pod = s_pod_and_service (self, args[0], service, sizeof service);
    if (!pod)
        return 1;
    const char *phase = pod->status && pod->status->phase ? pod->status->phase : "";
    if (streq (phase, "Succeeded") || streq (phase, "Failed")) {
        zube_cli_error ("cannot exec into a container in a completed pod; current phase is %s",
                        phase);
        protobuf_c_message_free_unpacked (&pod->base, NULL);
        return 1;
    }
    const char *name = s_container (pod, container);
    if (!name) {
        protobuf_c_message_free_unpacked (&pod->base, NULL);
        return 1;
    }
    Zube__NodeExecRequest request = ZUBE__NODE_EXEC_REQUEST__INIT;
    request.node_name = pod->spec->node_name;
    request.namespace_ = (char *)zubectl_namespace (self);
    request.pod = args[0];
    request.container = (char *)name;
    request.n_command = (size_t)(count - 1);
    request.command = args + 1;
    uint8_t *input = NULL;
    size_t input_size = 0;
    if (interactive) {
        input = s_read_stdin (&input_size);
        request.has_stdin = true;
        request.stdin.data = input;
        request.stdin.len = input_size;
    }
    int rc = 1;
    Zube__NodeExecReply *reply = (Zube__NodeExecReply *)zubectl_node_call (
        self, service, "exec", pod->spec->node_name, &request.base,
        &zube__node_exec_reply__descriptor, 0);
    if (reply) {
        if (reply->stdout.len)
            fwrite (reply->stdout.data, 1, reply->stdout.len, stdout);
        fflush (stdout);
        if (reply->stderr.len)
            fwrite (reply->stderr.data, 1, reply->stderr.len, stderr);
        rc = reply->exit_code;
        if (rc != 0)
            fprintf (stderr, "command terminated with exit code %d\n", rc);
        zube__node_exec_reply__free_unpacked (reply, NULL);
    }
    free (input);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    if (rc > 1) {
        //  kubectl exec exits with the command's code, and zubectl's main
        //  folds every handler result into 0 or 1: end here, after what
        //  main would release
        zube_api_destroy (&self->api);
        zube_bus_destroy (&self->bus);
        zube_config_destroy (&self->config);
        fflush (stdout);
        exit (rc > 255 ? 255 : rc);
    }
    return rc;
}
