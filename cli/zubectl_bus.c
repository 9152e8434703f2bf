/*  zubectl bus - commands answered by the broker itself: services, ping. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "bus.pb-c.h"
#include "zubectl.h"

//  Comma-joined strings, in a buffer that grows.
typedef struct {
    char *text;
    size_t length;
} s_join_t;

static void
s_join_add (s_join_t *join, const char *item)
{
    char *grown = NULL;
    if (asprintf (&grown, "%s%s%s", join->text ? join->text : "", join->text ? "," : "",
                  item && *item ? item : "-")
        < 0)
        return;
    free (join->text);
    join->text = grown;
    join->length = strlen (grown);
}

static void
s_print_services_table (zubectl_t *self, Zube__BusServicesReply *reply)
{
    bool wide = self->output_format == ZUBECTL_OUTPUT_WIDE;
    zube_cli_table_t *table = zube_cli_table_new (wide ? 8 : 4);
    if (wide)
        zube_cli_table_addv (table, "SERVICE", "INSTANCES", "IN-FLIGHT", "WAITING",
                             "INSTANCE-NAMES", "SENDERS", "HANDLED", "IDLE");
    else
        zube_cli_table_addv (table, "SERVICE", "INSTANCES", "IN-FLIGHT", "WAITING");
    for (size_t i = 0; i < reply->n_services; i++) {
        Zube__BusService *service = reply->services[i];
        uint64_t in_flight = 0;
        s_join_t names = {0}, senders = {0}, handled = {0}, idle = {0};
        for (size_t j = 0; j < service->n_instances; j++) {
            Zube__BusInstance *instance = service->instances[j];
            in_flight += instance->in_flight;
            char number[32];
            s_join_add (&names, instance->instance);
            s_join_add (&senders, instance->sender);
            snprintf (number, sizeof number, "%" PRIu64, instance->handled);
            s_join_add (&handled, number);
            s_join_add (&idle, zube_cli_duration_format (instance->idle_ms, number, sizeof number));
        }
        char instances_text[32], in_flight_text[32], waiting_text[32];
        snprintf (instances_text, sizeof instances_text, "%zu", service->n_instances);
        snprintf (in_flight_text, sizeof in_flight_text, "%" PRIu64, in_flight);
        snprintf (waiting_text, sizeof waiting_text, "%" PRIu32, service->waiting);
        const char *name = service->name ? service->name : "";
        if (wide)
            zube_cli_table_addv (table, name, instances_text, in_flight_text, waiting_text,
                                 names.text ? names.text : "<none>",
                                 senders.text ? senders.text : "<none>",
                                 handled.text ? handled.text : "<none>",
                                 idle.text ? idle.text : "<none>");
        else
            zube_cli_table_addv (table, name, instances_text, in_flight_text, waiting_text);
        free (names.text);
        free (senders.text);
        free (handled.text);
        free (idle.text);
    }
    if (reply->n_services)
        zube_cli_table_print (table, stdout);
    else
        //  kubectl says "No resources found" on stderr, keeping stdout clean.
        fprintf (stderr, "No services registered.\n");
    zube_cli_table_destroy (&table);

    char uptime[32];
    zube_cli_duration_format ((int64_t) reply->uptime_ms, uptime, sizeof uptime);
    printf ("%sBroker %s at %s (%s), up %s\n", reply->n_services ? "\n" : "",
            reply->version ? reply->version : "unknown", zubectl_endpoint (self),
            reply->secure ? "secure" : "insecure", uptime);
    Zube__BusCounters empty = ZUBE__BUS_COUNTERS__INIT;
    Zube__BusCounters *counters = reply->counters ? reply->counters : &empty;
    printf ("Counters: routed=%" PRIu64 " replied=%" PRIu64 " dropped=%" PRIu64
            " expired=%" PRIu64 " unauthorized=%" PRIu64 " events=%" PRIu64
            " oversized=%" PRIu64 " instance-deaths=%" PRIu64 "\n",
            counters->routed, counters->replied, counters->dropped, counters->expired,
            counters->unauthorized, counters->events, counters->oversized,
            counters->instance_deaths);
}

int
zubectl_bus_services (zubectl_t *self, const zubectl_command_t *command, int argc,
                      char **argv)
{
    char *args[argc + 1];
    int count = zubectl_parse (self, command, NULL, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count > 1) {
        zube_cli_error ("\"%s\" takes at most one argument (a service name prefix)",
                        self->command_path);
        return 1;
    }
    Zube__BusServicesRequest request = ZUBE__BUS_SERVICES_REQUEST__INIT;
    if (count == 1)
        request.service_prefix = args[0];
    Zube__BusServicesReply *reply = NULL;
    if (zubectl_call (self, "bus", "services", &request.base,
                      &zube__bus_services_reply__descriptor, (ProtobufCMessage **) &reply)
        != 0)
        return 1;
    int rc = 0;
    if (self->output_format == ZUBECTL_OUTPUT_YAML || self->output_format == ZUBECTL_OUTPUT_JSON)
        rc = zubectl_print_message (self, &reply->base) == 0 ? 0 : 1;
    else
        s_print_services_table (self, reply);
    zube__bus_services_reply__free_unpacked (reply, NULL);
    return rc;
}

int
zubectl_bus_ping (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    long count_pings = 4;
    long size = 64;
    int64_t interval_ms = 500;
    zube_cli_flag_t flags[] = {
        {.name = "count", .short_name = 'c', .type = ZUBE_CLI_INT, .value = &count_pings,
         .value_name = "N", .help = "Number of round trips (default 4)"},
        {.name = "interval", .short_name = 'i', .type = ZUBE_CLI_DURATION, .value = &interval_ms,
         .value_name = "DURATION", .help = "Pause between round trips (default 500ms)"},
        {.name = "size", .short_name = 's', .type = ZUBE_CLI_INT, .value = &size,
         .value_name = "BYTES", .help = "Payload bytes in each echo (default 64)"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\": \"%s\" takes none", args[0],
                        self->command_path);
        return 1;
    }
    if (count_pings < 1 || size < 0 || size > 1024 * 1024) {
        zube_cli_error ("--count must be at least 1 and --size between 0 and 1048576");
        return 1;
    }
    zube_bus_t *bus = zubectl_connect (self);
    if (!bus)
        return 1;
    uint8_t *data = malloc (size ? size : 1);
    for (long i = 0; i < size; i++)
        data[i] = (uint8_t) ('a' + i % 26);
    int timeout_ms = zubectl_timeout_ms (self);
    printf ("PING %s (bus/ping, %ld bytes)\n", zubectl_endpoint (self), size);
    fflush (stdout);
    long received = 0, sent = 0;
    double min_ms = 0, max_ms = 0, sum_ms = 0;
    for (long seq = 1; seq <= count_pings && !zsys_interrupted; seq++) {
        Zube__BusEcho echo = ZUBE__BUS_ECHO__INIT;
        echo.has_data = true;
        echo.data.data = data;
        echo.data.len = (size_t) size;
        echo.has_sent_ns = true;
        echo.sent_ns = (uint64_t) zube_cli_now_ns ();
        size_t packed_size = zube__bus_echo__get_packed_size (&echo);
        uint8_t *packed = malloc (packed_size ? packed_size : 1);
        zube__bus_echo__pack (&echo, packed);
        zube_bus_reply_t *reply = NULL;
        int64_t start = zube_cli_now_ns ();
        int rc = zube_bus_call (bus, "bus", "ping", packed, packed_size, timeout_ms, &reply);
        double rtt_ms = (zube_cli_now_ns () - start) / 1e6;
        free (packed);
        sent++;
        if (rc != 0 || reply->status != ZUBE_OK) {
            printf ("seq=%ld: no reply (%s%s%s)\n", seq,
                    zube_status_reason (reply ? reply->status : ZUBE_UNAVAILABLE),
                    reply && reply->error ? ": " : "", reply && reply->error ? reply->error : "");
        }
        else {
            Zube__BusEcho *answer =
                zube__bus_echo__unpack (NULL, reply->payload_size, reply->payload);
            bool intact = answer && answer->data.len == (size_t) size
                          && (size == 0 || memcmp (answer->data.data, data, size) == 0);
            if (answer)
                zube__bus_echo__free_unpacked (answer, NULL);
            if (!intact)
                printf ("seq=%ld: the reply does not carry the data sent\n", seq);
            else {
                received++;
                if (received == 1 || rtt_ms < min_ms)
                    min_ms = rtt_ms;
                if (rtt_ms > max_ms)
                    max_ms = rtt_ms;
                sum_ms += rtt_ms;
                printf ("%ld bytes from broker: seq=%ld time=%.3f ms\n", size, seq, rtt_ms);
            }
        }
        fflush (stdout);
        zube_bus_reply_destroy (&reply);
        if (seq < count_pings) {
            int64_t until = zube_cli_now_ns () + interval_ms * 1000000;
            while (!zsys_interrupted && zube_cli_now_ns () < until) {
                int left_ms = (int) ((until - zube_cli_now_ns ()) / 1000000);
                if (zube_bus_poll (bus, left_ms > 0 ? left_ms : 0) < 0)
                    break;
            }
        }
    }
    free (data);
    printf ("\n--- %s ping statistics ---\n", zubectl_endpoint (self));
    printf ("%ld sent, %ld received, %.0f%% lost", sent, received,
            sent ? 100.0 * (sent - received) / sent : 0.0);
    if (received)
        printf (", rtt min/avg/max = %.3f/%.3f/%.3f ms", min_ms, sum_ms / received, max_ms);
    printf ("\n");
    return received == sent && sent > 0 ? 0 : 1;
}
