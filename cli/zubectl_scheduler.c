/*  zubectl scheduler stats|metrics|config apply: what zube-scheduler
    counts (its bus service "scheduler"): attempts by result, pods bound,
    bind errors, queue depths, cache sizes, as JSON (stats) or Prometheus
    text (metrics); how it sees one pod (explain); and a new
    KubeSchedulerConfiguration for the running scheduler (config apply). */
#include "api.pb-c.h"
#include "zube.pb-c.h"
#include "zube/codec.h"
#include "zubectl.h"
#include <czmq.h>

static int
s_scheduler_call (zubectl_t *self, const zubectl_command_t *command, int argc,
                  char **argv, const char *method)
{
    char *args[argc + 1];
    int count = zubectl_parse (self, command, NULL, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\": \"%s\" takes none", args[0],
                        self->command_path);
        return 1;
    }
    zube_bus_reply_t *reply = zubectl_service_call (self, "scheduler", method, NULL, 0);
    if (!reply)
        return 1;
    fwrite (reply->payload, 1, reply->payload_size, stdout);
    if (!reply->payload_size || reply->payload[reply->payload_size - 1] != '\n')
        putchar ('\n');
    zube_bus_reply_destroy (&reply);
    return 0;
}

static int
s_stats (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    return s_scheduler_call (self, command, argc, argv, "stats");
}

static int
s_metrics (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    return s_scheduler_call (self, command, argc, argv, "metrics");
}

static int
s_config_apply (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *file = NULL;
    zube_cli_flag_t flags[] = {{.name = "filename",
                                .short_name = 'f',
                                .type = ZUBE_CLI_STRING,
                                .value = &file,
                                .value_name = "FILE",
                                .help = "A KubeSchedulerConfiguration (YAML or JSON)"},
                               {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count > 0 || !file) {
        zube_cli_error ("\"%s\" takes -f FILE and no argument", self->command_path);
        return 1;
    }
    char *text = NULL;
    FILE *stream = fopen (file, "r");
    size_t size = 0;
    if (stream) {
        FILE *memory = open_memstream (&text, &size);
        char chunk[4096];
        size_t n;
        while (memory && (n = fread (chunk, 1, sizeof chunk, stream)) > 0)
            fwrite (chunk, 1, n, memory);
        if (memory)
            fclose (memory);
        fclose (stream);
    }
    if (!text) {
        zube_cli_error ("%s: cannot read it", file);
        return 1;
    }
    ProtobufCMessage *config = NULL;
    zube_codec_error_t codec_error;
    int rc = zube_codec_decode (text, strlen (text),
                                &zube__kube_scheduler_configuration__descriptor, &config,
                                &codec_error);
    free (text);
    if (rc != 0) {
        char line[1024];
        zube_cli_error ("%s: %s", file,
                        zube_codec_error_format (&codec_error, line, sizeof line));
        return 1;
    }
    size_t packed_size = protobuf_c_message_get_packed_size (config);
    uint8_t *data = malloc (packed_size ? packed_size : 1);
    zube_bus_reply_t *reply = NULL;
    if (data) {
        protobuf_c_message_pack (config, data);
        reply =
            zubectl_service_call (self, "scheduler", "config.apply", data, packed_size);
    }
    free (data);
    protobuf_c_message_free_unpacked (config, NULL);
    if (!reply)
        return 1;
    zube_bus_reply_destroy (&reply);
    printf ("scheduler configuration %s applied\n", file);
    return 0;
}

static int
s_explain (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    char *args[argc + 1];
    int count = zubectl_parse (self, command, NULL, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count != 1) {
        zube_cli_error ("\"%s\" takes one pod name", self->command_path);
        return 1;
    }
    const char *name = strncmp (args[0], "pod/", 4) == 0 ? args[0] + 4 : args[0];
    Zube__GetRequest request = ZUBE__GET_REQUEST__INIT;
    request.resource = "pods";
    request.namespace_ = (char *)zubectl_namespace (self);
    request.name = (char *)name;
    size_t size = zube__get_request__get_packed_size (&request);
    uint8_t *data = malloc (size ? size : 1);
    if (!data)
        return 1;
    zube__get_request__pack (&request, data);
    zube_bus_reply_t *reply =
        zubectl_service_call (self, "scheduler", "explain", data, size);
    free (data);
    if (!reply)
        return 1;
    fwrite (reply->payload, 1, reply->payload_size, stdout);
    zube_bus_reply_destroy (&reply);
    return 0;
}

static const zubectl_command_t s_config_commands[] = {
    {.name = "apply",
     .summary = "Give the running zube-scheduler a new configuration",
     .usage = "scheduler config apply -f FILE [flags]",
     .description =
         "Replaces the running scheduler's profiles (plugins, weights, args) with "
         "those of FILE, a KubeSchedulerConfiguration, between two scheduling "
         "cycles, without a restart. An invalid file is refused with the field "
         "named, and the running profiles stay.",
     .examples = "  zubectl scheduler config apply -f examples/scheduler/profiles.yaml",
     .handler = s_config_apply},
    {0}};

const zubectl_command_t zubectl_scheduler_commands[] = {
    {.name = "stats",
     .summary = "Show zube-scheduler's counters and queue depths (JSON)",
     .usage = "scheduler stats [flags]",
     .description = "Asks zube-scheduler (bus service \"scheduler\") for its counters: "
                    "scheduling attempts by result, pods bound, bind errors, the active, "
                    "back-off and unschedulable queues, binds in flight, nodes and pods "
                    "in its cache.",
     .examples = "  zubectl scheduler stats",
     .handler = s_stats},
    {.name = "metrics",
     .summary = "Show zube-scheduler's metrics in Prometheus text format",
     .usage = "scheduler metrics [flags]",
     .examples = "  zubectl scheduler metrics",
     .handler = s_metrics},
    {.name = "explain",
     .summary =
         "Show how the scheduler sees a pod: each filter's verdicts, the best scores",
     .usage = "scheduler explain POD [-n NAMESPACE] [flags]",
     .description =
         "Runs the pod's profile over every node as zube-scheduler sees them now, "
         "without placing the pod: how many nodes each filter plugin rejects and "
         "why, how many are feasible, and each score plugin's score for the best "
         "five.",
     .examples = "  zubectl scheduler explain web -n demo",
     .handler = s_explain},
    {.name = "config",
     .summary = "Change the running scheduler's configuration",
     .usage = "scheduler config SUBCOMMAND",
     .subcommands = s_config_commands},
    {0}};
