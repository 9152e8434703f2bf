/*  zubectl scheduler stats|metrics: what zube-scheduler counts (its bus
    service "scheduler"): attempts by result, pods bound, bind errors,
    queue depths, cache sizes; as JSON (stats) or Prometheus text
    (metrics). explain and config apply are not built yet (issue 5). */
#include "zubectl.h"
#include <czmq.h>

static int
s_scheduler_call (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv,
                  const char *method)
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
    zube_bus_t *bus = zubectl_connect (self);
    if (!bus)
        return 1;
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (bus, "scheduler", method, NULL, 0, zubectl_timeout_ms (self), &reply);
    if (rc != 0 || reply->status != ZUBE_OK) {
        if (reply && reply->status == ZUBE_UNAVAILABLE)
            zube_cli_error ("no zube-scheduler answers on the bus at %s",
                            zubectl_endpoint (self));
        else
            zubectl_print_server_error (reply ? reply->status : ZUBE_UNAVAILABLE,
                                        reply && reply->error ? reply->error : "no answer");
        zube_bus_reply_destroy (&reply);
        return 1;
    }
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
    {0}};
