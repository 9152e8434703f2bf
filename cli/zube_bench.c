/*  zube-bench - benchmarks of zube's moving parts, one mode per subcommand.

    Mode `bus`: request/reply throughput and latency through a real
    zube-broker (an echo service on its own zube_bus_t in a thread, a
    client keeping K calls in flight with zube_bus_call_async), then the
    same workload over a bare ZeroMQ DEALER/ROUTER pair without the broker,
    the upper bound the broker is measured against. Each side gets a
    warm-up first. Prints a table, or with --json exactly one JSON object
    holding every figure, among them what each side cost per request in
    context switches and CPU time (the bench's process and the broker's,
    from /proc): on a shared machine these move far less with the load
    than the rates do. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <czmq.h>
#include <zmq.h>
#include "zube/zube.h"
#include "zube/bus.h"
#include "bus.pb-c.h"
#include "zube_cli.h"
#include "zube_bench.h"

#define BENCH_SERVICE "bench.echo"
#define BENCH_TIMEOUT_MS 30000
#define BENCH_WARMUP_NS (500LL * 1000000)
//  Without --requests: enough for about this long on the broker side.
#define BENCH_TARGET_NS (2500LL * 1000000)
//  The warm-up ends after BENCH_WARMUP_NS or this many requests.
#define BENCH_WARMUP_MAX 1000000

//  The figures of one side of the comparison.
typedef struct {
    size_t requests;        //  completed (ok + errors)
    size_t errors;
    double seconds;
    double rps;
    double p50_us, p90_us, p99_us, p999_us, max_us, mean_us;
} bench_result_t;

//  Shared by every run of one side: the workload and where latencies go.
typedef struct {
    size_t requests;
    size_t in_flight;
    size_t payload_bytes;
    uint8_t *payload;
    int64_t *latencies_ns;      //  one per completed request
    size_t completed;
    size_t errors;
} bench_run_t;

//  What a process has cost so far: the context switches of all its
//  threads (voluntary: it slept; involuntary: it was preempted) and its
//  CPU time.
typedef struct {
    uint64_t voluntary;
    uint64_t involuntary;
    double cpu_seconds;
} bench_usage_t;

static void
s_usage_read (pid_t pid, bench_usage_t *usage)
{
    *usage = (bench_usage_t) {0};
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *tasks = opendir (path);
    struct dirent *entry;
    while (tasks && (entry = readdir (tasks))) {
        if (entry->d_name[0] == '.')
            continue;
        char status_path[PATH_MAX], line[256];
        snprintf (status_path, sizeof status_path, "%s/%s/status", path, entry->d_name);
        FILE *status = fopen (status_path, "r");
        unsigned long long value;
        while (status && fgets (line, sizeof line, status)) {
            if (sscanf (line, "voluntary_ctxt_switches: %llu", &value) == 1)
                usage->voluntary += value;
            else if (sscanf (line, "nonvoluntary_ctxt_switches: %llu", &value) == 1)
                usage->involuntary += value;
        }
        if (status)
            fclose (status);
    }
    if (tasks)
        closedir (tasks);
    //  utime and stime, the 14th and 15th fields, after the parenthesised name.
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *stat = fopen (path, "r");
    char buffer[1024];
    size_t size = stat ? fread (buffer, 1, sizeof buffer - 1, stat) : 0;
    if (stat)
        fclose (stat);
    buffer[size] = 0;
    char *fields = strrchr (buffer, ')');
    unsigned long long user = 0, system = 0;
    if (fields && sscanf (fields + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                          &user, &system) == 2)
        usage->cpu_seconds = (double) (user + system) / sysconf (_SC_CLK_TCK);
}

//  The cost per completed request between two readings.
typedef struct {
    double csw;             //  voluntary + involuntary
    double csw_voluntary;
    double cpu_us;
} bench_cost_t;

static bench_cost_t
s_cost (const bench_usage_t *before, const bench_usage_t *after, size_t requests)
{
    double count = requests ? (double) requests : 1;
    uint64_t voluntary = after->voluntary - before->voluntary;
    uint64_t involuntary = after->involuntary - before->involuntary;
    return (bench_cost_t) {
        .csw = (voluntary + involuntary) / count,
        .csw_voluntary = voluntary / count,
        .cpu_us = (after->cpu_seconds - before->cpu_seconds) * 1e6 / count,
    };
}

static int
s_compare_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static double
s_percentile_us (const int64_t *sorted, size_t count, double fraction)
{
    if (count == 0)
        return 0;
    size_t rank = (size_t) ceil (fraction * (double) count);
    if (rank < 1)
        rank = 1;
    if (rank > count)
        rank = count;
    return sorted[rank - 1] / 1000.0;
}

static void
s_summarize (bench_run_t *run, int64_t elapsed_ns, bench_result_t *result)
{
    size_t ok = run->completed - run->errors;
    qsort (run->latencies_ns, ok, sizeof (int64_t), s_compare_int64);
    double sum = 0;
    for (size_t i = 0; i < ok; i++)
        sum += (double) run->latencies_ns[i];
    *result = (bench_result_t) {
        .requests = run->completed,
        .errors = run->errors,
        .seconds = elapsed_ns / 1e9,
        .rps = elapsed_ns > 0 ? ok / (elapsed_ns / 1e9) : 0,
        .p50_us = s_percentile_us (run->latencies_ns, ok, 0.50),
        .p90_us = s_percentile_us (run->latencies_ns, ok, 0.90),
        .p99_us = s_percentile_us (run->latencies_ns, ok, 0.99),
        .p999_us = s_percentile_us (run->latencies_ns, ok, 0.999),
        .max_us = ok ? run->latencies_ns[ok - 1] / 1000.0 : 0,
        .mean_us = ok ? sum / ok / 1000.0 : 0,
    };
}

//  --------------------------------------------------------------------------
//  Through the broker

typedef struct {
    atomic_bool stop;
    atomic_bool ready;
    atomic_bool failed;
    const char *endpoint;
    bool no_batching;
    pthread_t thread;
} echo_service_t;

static void
s_echo_handler (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    size_t size = 0;
    const uint8_t *payload = zube_bus_request_payload (request, &size);
    zube_bus_respond (request, ZUBE_OK, NULL, payload, size);
}

static void *
s_echo_service_thread (void *arg)
{
    echo_service_t *service = arg;
    zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t) {
        .endpoint = service->endpoint, .insecure = true, .no_batching = service->no_batching});
    if (!bus || zube_bus_serve (bus, BENCH_SERVICE, s_echo_handler, NULL) != 0) {
        atomic_store (&service->failed, true);
        zube_bus_destroy (&bus);
        return NULL;
    }
    atomic_store (&service->ready, true);
    while (!atomic_load (&service->stop) && !zsys_interrupted)
        if (zube_bus_poll (bus, 50) < 0)
            break;
    zube_bus_destroy (&bus);
    return NULL;
}

//  One call in flight: where its latency goes.
typedef struct {
    bench_run_t *run;
    int64_t start_ns;
    size_t next_free;
} broker_slot_t;

typedef struct {
    bench_run_t *run;
    broker_slot_t *slots;
    size_t free_head;       //  index of a free slot, or SIZE_MAX
    size_t in_flight;
    size_t sent;
    int64_t stop_sending;
} broker_client_t;

static broker_client_t *s_broker_client;

static void s_broker_reply (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg);

//  Keeps run->in_flight calls going. Called from the reply callback too, as
//  an asynchronous client does: the calls a pass of the loop starts leave
//  together (in one batch when the broker reads them).
static void
s_broker_fill (zube_bus_t *bus, broker_client_t *client)
{
    bench_run_t *run = client->run;
    if (client->sent >= run->requests || zube_cli_now_ns () >= client->stop_sending)
        return;
    while (client->free_head != SIZE_MAX && client->sent < run->requests) {
        size_t index = client->free_head;
        broker_slot_t *slot = &client->slots[index];
        client->free_head = slot->next_free;
        slot->start_ns = zube_cli_now_ns ();
        client->in_flight++;
        client->sent++;
        if (!zube_bus_call_async (bus, BENCH_SERVICE, "echo", run->payload, run->payload_bytes,
                                  BENCH_TIMEOUT_MS, s_broker_reply, slot)) {
            //  Not queued: the callback will not come.
            run->errors++;
            run->completed++;
            client->in_flight--;
            slot->next_free = client->free_head;
            client->free_head = index;
            break;
        }
    }
}

static void
s_broker_reply (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg)
{
    broker_client_t *client = s_broker_client;
    if (!client) {
        //  A late outcome after an interrupted run: its slot is gone.
        zube_bus_reply_destroy (&reply);
        return;
    }
    broker_slot_t *slot = arg;
    bench_run_t *run = slot->run;
    int64_t latency = zube_cli_now_ns () - slot->start_ns;
    bool ok = reply->status == ZUBE_OK && reply->payload_size == run->payload_bytes;
    if (ok)
        run->latencies_ns[run->completed - run->errors] = latency;
    else
        run->errors++;
    run->completed++;
    zube_bus_reply_destroy (&reply);
    size_t index = (size_t) (slot - client->slots);
    slot->next_free = client->free_head;
    client->free_head = index;
    client->in_flight--;
    s_broker_fill (bus, client);
}

//  Runs until `requests` completed, or until max_ns passed (then waits for
//  those in flight). Returns the elapsed time.
static int64_t
s_broker_run (zube_bus_t *bus, bench_run_t *run, int64_t max_ns)
{
    broker_client_t client = {.run = run, .free_head = SIZE_MAX};
    client.slots = calloc (run->in_flight, sizeof *client.slots);
    for (size_t i = 0; i < run->in_flight; i++) {
        client.slots[i] = (broker_slot_t) {.run = run, .next_free = client.free_head};
        client.free_head = i;
    }
    s_broker_client = &client;
    run->completed = run->errors = 0;
    int64_t start = zube_cli_now_ns ();
    client.stop_sending = max_ns > 0 ? start + max_ns : INT64_MAX;
    while (run->completed < client.sent || client.sent < run->requests) {
        bool may_send = client.sent < run->requests && zube_cli_now_ns () < client.stop_sending;
        if (!may_send && run->completed == client.sent)
            break;
        s_broker_fill (bus, &client);
        if (zube_bus_poll (bus, 100) < 0)
            break;
    }
    int64_t elapsed = zube_cli_now_ns () - start;
    s_broker_client = NULL;
    free (client.slots);
    return elapsed;
}

//  --------------------------------------------------------------------------
//  Bare ZeroMQ: ROUTER echo thread, DEALER client

typedef struct {
    void *context;
    char endpoint[64];
    atomic_bool stop;
    atomic_bool failed;
    atomic_bool ready;
    pthread_t thread;
} raw_echo_t;

static void
s_raw_socket_options (void *socket)
{
    int hwm = 100000, linger = 0;
    zmq_setsockopt (socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (socket, ZMQ_LINGER, &linger, sizeof linger);
}

static void *
s_raw_echo_thread (void *arg)
{
    raw_echo_t *echo = arg;
    void *router = zmq_socket (echo->context, ZMQ_ROUTER);
    s_raw_socket_options (router);
    if (!router || zmq_bind (router, echo->endpoint) != 0) {
        atomic_store (&echo->failed, true);
        if (router)
            zmq_close (router);
        return NULL;
    }
    atomic_store (&echo->ready, true);
    zmq_pollitem_t item = {.socket = router, .events = ZMQ_POLLIN};
    while (!atomic_load (&echo->stop)) {
        if (zmq_poll (&item, 1, 50) <= 0)
            continue;
        //  Echo every ready message: [identity][frames...] back as is.
        while (true) {
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, router, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&frame);
                break;
            }
            bool more = zmq_msg_more (&frame);
            zmq_msg_send (&frame, router, more ? ZMQ_SNDMORE : 0);
            while (more) {
                zmq_msg_init (&frame);
                zmq_msg_recv (&frame, router, 0);
                more = zmq_msg_more (&frame);
                zmq_msg_send (&frame, router, more ? ZMQ_SNDMORE : 0);
            }
        }
    }
    zmq_close (router);
    return NULL;
}

static int64_t
s_raw_run (void *dealer, bench_run_t *run, int64_t max_ns, int64_t *start_ns)
{
    run->completed = run->errors = 0;
    size_t sent = 0;
    int64_t start = zube_cli_now_ns ();
    int64_t stop_sending = max_ns > 0 ? start + max_ns : INT64_MAX;
    zmq_pollitem_t item = {.socket = dealer, .events = ZMQ_POLLIN};
    int64_t last_progress = start;
    while (true) {
        bool may_send = sent < run->requests && zube_cli_now_ns () < stop_sending;
        if (!may_send && run->completed == sent)
            break;
        while (may_send && sent - run->completed < run->in_flight && sent < run->requests) {
            //  [sequence][payload], like the bus's [header][payload].
            uint64_t sequence = sent;
            start_ns[sequence] = zube_cli_now_ns ();
            if (zmq_send (dealer, &sequence, sizeof sequence, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
                break;
            zmq_send (dealer, run->payload, run->payload_bytes, 0);
            sent++;
        }
        int rc = zmq_poll (&item, 1, 100);
        if (rc < 0 && errno != EINTR)
            break;
        if (zsys_interrupted)
            break;
        while (true) {
            uint64_t sequence = 0;
            int size = zmq_recv (dealer, &sequence, sizeof sequence, ZMQ_DONTWAIT);
            if (size < 0)
                break;
            zmq_msg_t body;
            zmq_msg_init (&body);
            zmq_msg_recv (&body, dealer, 0);
            bool ok = size == sizeof sequence && sequence < sent
                      && zmq_msg_size (&body) == run->payload_bytes;
            zmq_msg_close (&body);
            if (ok)
                run->latencies_ns[run->completed - run->errors] =
                    zube_cli_now_ns () - start_ns[sequence];
            else
                run->errors++;
            run->completed++;
            last_progress = zube_cli_now_ns ();
        }
        if (zube_cli_now_ns () - last_progress > (int64_t) BENCH_TIMEOUT_MS * 1000000) {
            run->errors += sent - run->completed;
            run->completed = sent;
            break;
        }
    }
    return zube_cli_now_ns () - start;
}

//  --------------------------------------------------------------------------
//  The mode

static void
s_rmtree (const char *dir)
{
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/broker.log", dir);
    unlink (path);
    rmdir (dir);
}

static void
s_print_row (zube_cli_table_t *table, const char *name, bench_result_t *result)
{
    char requests[32], seconds[32], rps[32], p50[32], p99[32], p999[32], max[32], errors[32];
    snprintf (requests, sizeof requests, "%zu", result->requests);
    snprintf (seconds, sizeof seconds, "%.2f", result->seconds);
    snprintf (rps, sizeof rps, "%.0f", result->rps);
    snprintf (p50, sizeof p50, "%.1f", result->p50_us);
    snprintf (p99, sizeof p99, "%.1f", result->p99_us);
    snprintf (p999, sizeof p999, "%.1f", result->p999_us);
    snprintf (max, sizeof max, "%.1f", result->max_us);
    snprintf (errors, sizeof errors, "%zu", result->errors);
    zube_cli_table_addv (table, name, requests, seconds, rps, p50, p99, p999, max, errors);
}

static void
s_json_side (const char *prefix, bench_result_t *result)
{
    printf ("  \"%s_rps\": %.1f,\n", prefix, result->rps);
    printf ("  \"%s_p50_us\": %.1f,\n", prefix, result->p50_us);
    printf ("  \"%s_p90_us\": %.1f,\n", prefix, result->p90_us);
    printf ("  \"%s_p99_us\": %.1f,\n", prefix, result->p99_us);
    printf ("  \"%s_p999_us\": %.1f,\n", prefix, result->p999_us);
    printf ("  \"%s_max_us\": %.1f,\n", prefix, result->max_us);
    printf ("  \"%s_mean_us\": %.1f,\n", prefix, result->mean_us);
    printf ("  \"%s_seconds\": %.3f,\n", prefix, result->seconds);
    printf ("  \"%s_completed\": %zu,\n", prefix, result->requests);
    printf ("  \"%s_errors\": %zu,\n", prefix, result->errors);
}

static int
s_bench_bus (int argc, char **argv)
{
    long requests = 0, in_flight = 100, payload_bytes = 256, broker_cpu = -1;
    bool json = false, no_batch = false;
    const char *broker_binary = NULL;
    zube_cli_flag_t flags[] = {
        {.name = "requests", .short_name = 'n', .type = ZUBE_CLI_INT, .value = &requests,
         .value_name = "N",
         .help = "Requests per side (default: as many as take ~2.5 s through the broker)"},
        {.name = "in-flight", .short_name = 'k', .type = ZUBE_CLI_INT, .value = &in_flight,
         .value_name = "K", .help = "Requests kept in flight (default 100)"},
        {.name = "payload", .type = ZUBE_CLI_INT, .value = &payload_bytes, .value_name = "BYTES",
         .help = "Payload bytes per request and reply (default 256)"},
        {.name = "json", .type = ZUBE_CLI_BOOL, .value = &json,
         .help = "Print one JSON object with every figure instead of a table"},
        {.name = "no-batch", .type = ZUBE_CLI_BOOL, .value = &no_batch,
         .help = "The broker side without batches: every request and reply its own message"},
        {.name = "broker-cpu", .type = ZUBE_CLI_INT, .value = &broker_cpu, .value_name = "N",
         .help = "Start the broker with --cpu N: its threads on CPU N only (default: any CPU)"},
        {.name = "broker-binary", .type = ZUBE_CLI_STRING, .value = &broker_binary,
         .value_name = "PATH",
         .help = "The zube-broker to start (default: beside zube-bench, else in $PATH)"},
        {0}};
    const zube_cli_flag_t *tables[] = {flags, NULL};
    char *args[argc + 1];
    int count = zube_cli_parse ("zube-bench bus", tables, argc, argv, args, false);
    if (count == ZUBE_CLI_HELP) {
        printf ("Request/reply throughput and latency through zube-broker, against a bare\n"
                "ZeroMQ DEALER/ROUTER pair.\n\nUsage:\n  zube-bench bus [flags]\n");
        zube_cli_print_flags (stdout, "Flags", tables);
        return 0;
    }
    if (count < 0)
        return 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\"", args[0]);
        return 1;
    }
    if (requests < 0 || requests > 100000000 || in_flight < 1 || in_flight > 100000
        || payload_bytes < 0 || payload_bytes > 1024 * 1024) {
        zube_cli_error ("--requests must be 0..100000000, --in-flight 1..100000 and --payload "
                        "0..1048576");
        return 1;
    }
    if (broker_cpu < -1 || broker_cpu >= sysconf (_SC_NPROCESSORS_ONLN)) {
        zube_cli_error ("--broker-cpu must be 0..%ld", sysconf (_SC_NPROCESSORS_ONLN) - 1);
        return 1;
    }

    //  The broker, on free loopback ports, in a temporary folder.
    char dir_template[] = "/tmp/zube-bench-XXXXXX";
    char *dir = mkdtemp (dir_template);
    if (!dir) {
        zube_cli_error ("cannot create a temporary folder: %s", strerror (errno));
        return 1;
    }
    char program_buf[PATH_MAX], log_path[PATH_MAX], endpoint[64];
    const char *program = broker_binary;
    if (!program)
        program = zube_cli_sibling_program ("zube-broker", program_buf, sizeof program_buf);
    if (!program)
        program = "zube-broker";
    snprintf (log_path, sizeof log_path, "%s/broker.log", dir);
    int port = zube_cli_free_ports (3);
    int raw_port = zube_cli_free_ports (1);
    if (port < 0 || raw_port < 0) {
        zube_cli_error ("no free loopback ports");
        s_rmtree (dir);
        return 1;
    }
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    char cpu_text[24];
    snprintf (cpu_text, sizeof cpu_text, "%ld", broker_cpu);
    char *broker_argv[] = {(char *) program, "--insecure", "--bind", endpoint,
                           broker_cpu >= 0 ? "--cpu" : NULL, cpu_text, NULL};
    pid_t broker = zube_cli_spawn (broker_argv, log_path);
    if (broker < 0) {
        zube_cli_error ("cannot start %s: %s", program, strerror (errno));
        s_rmtree (dir);
        return 1;
    }

    int rc = 1;
    bench_run_t run = {
        .requests = (size_t) requests,
        .in_flight = (size_t) in_flight,
        .payload_bytes = (size_t) payload_bytes,
    };
    run.payload = malloc (run.payload_bytes ? run.payload_bytes : 1);
    for (size_t i = 0; i < run.payload_bytes; i++)
        run.payload[i] = (uint8_t) (i * 31 + 7);
    bench_result_t broker_result = {0}, raw_result = {0};
    bench_cost_t broker_bench_cost = {0}, broker_process_cost = {0}, raw_cost = {0};
    size_t warmup_broker = 0, warmup_raw = 0;
    bool auto_requests = requests == 0;
    char broker_version[64] = "unknown";

    echo_service_t service = {.endpoint = endpoint, .no_batching = no_batch};
    atomic_init (&service.stop, false);
    atomic_init (&service.ready, false);
    atomic_init (&service.failed, false);
    zube_bus_t *bus = NULL;
    bool service_started = false;
    raw_echo_t raw = {.context = NULL};
    void *dealer = NULL;
    bool raw_started = false;
    int64_t *start_ns = NULL;

    //  The client; the first call waits in the broker until the echo
    //  service registered, so it also tells that everything is up.
    bus = zube_bus_new (&(zube_bus_config_t) {
        .endpoint = endpoint, .insecure = true, .no_batching = no_batch});
    if (!bus) {
        zube_cli_error ("cannot open a bus connection to %s", endpoint);
        goto cleanup;
    }
    if (pthread_create (&service.thread, NULL, s_echo_service_thread, &service) != 0) {
        zube_cli_error ("cannot start the echo service thread");
        goto cleanup;
    }
    service_started = true;
    {
        zube_bus_reply_t *reply = NULL;
        int call_rc = -1;
        int64_t deadline = zube_cli_now_ns () + 20LL * 1000000000;
        while (!zsys_interrupted && zube_cli_now_ns () < deadline) {
            if (!zube_cli_process_alive (broker, NULL))
                break;
            call_rc = zube_bus_call (bus, BENCH_SERVICE, "echo", "x", 1, 1000, &reply);
            if (call_rc == 0 && reply->status == ZUBE_OK)
                break;
            zube_bus_reply_destroy (&reply);
            call_rc = -1;
        }
        zube_bus_reply_destroy (&reply);
        if (call_rc != 0 || atomic_load (&service.failed)) {
            zube_cli_error ("the broker (%s) or the echo service did not come up; see %s",
                            program, log_path);
            char *tail = NULL;
            if (asprintf (&tail, "tail -5 '%s' >&2", log_path) > 0 && system (tail) < 0) {
            }
            free (tail);
            goto cleanup;
        }
        Zube__BusInfoRequest info_request = ZUBE__BUS_INFO_REQUEST__INIT;
        Zube__BusInfoReply *info = NULL;
        char error[256];
        if (zube_bus_call_msg (bus, "bus", "info", &info_request.base,
                               &zube__bus_info_reply__descriptor, 5000,
                               (ProtobufCMessage **) &info, error, sizeof error)
                == ZUBE_OK
            && info) {
            snprintf (broker_version, sizeof broker_version, "%s",
                      info->version ? info->version : "unknown");
        }
        if (info)
            zube__bus_info_reply__free_unpacked (info, NULL);
    }

    //  Warm-up through the broker; it also sizes the run when --requests
    //  was not given.
    {
        size_t capacity = BENCH_WARMUP_MAX;
        if (!auto_requests && run.requests > capacity)
            capacity = run.requests;
        run.latencies_ns = malloc (capacity * sizeof (int64_t));
        run.requests = BENCH_WARMUP_MAX;
        int64_t elapsed = s_broker_run (bus, &run, BENCH_WARMUP_NS);
        warmup_broker = run.completed;
        if (auto_requests) {
            double rate = elapsed > 0 ? run.completed / (elapsed / 1e9) : 1000;
            double wanted = rate * (BENCH_TARGET_NS / 1e9);
            run.requests = wanted < 1000 ? 1000 : wanted > 10000000 ? 10000000 : (size_t) wanted;
            if (run.requests > capacity) {
                free (run.latencies_ns);
                run.latencies_ns = malloc (run.requests * sizeof (int64_t));
            }
        }
        else
            run.requests = (size_t) requests;
    }
    if (!run.latencies_ns) {
        zube_cli_error ("out of memory");
        goto cleanup;
    }
    if (!json) {
        printf ("zube-bench bus: %zu requests per side, %zu in flight, %zu-byte payloads, "
                "batching %s%s%s\n",
                run.requests, run.in_flight, run.payload_bytes, no_batch ? "off" : "on",
                broker_cpu >= 0 ? ", broker on CPU " : "", broker_cpu >= 0 ? cpu_text : "");
        fflush (stdout);
    }
    {
        bench_usage_t self_before, self_after, broker_before, broker_after;
        s_usage_read (getpid (), &self_before);
        s_usage_read (broker, &broker_before);
        int64_t elapsed = s_broker_run (bus, &run, 0);
        s_usage_read (getpid (), &self_after);
        s_usage_read (broker, &broker_after);
        s_summarize (&run, elapsed, &broker_result);
        broker_bench_cost = s_cost (&self_before, &self_after, run.completed);
        broker_process_cost = s_cost (&broker_before, &broker_after, run.completed);
    }
    atomic_store (&service.stop, true);
    pthread_join (service.thread, NULL);
    service_started = false;
    zube_bus_destroy (&bus);

    //  The same over bare ZeroMQ.
    raw.context = zmq_ctx_new ();
    atomic_init (&raw.stop, false);
    atomic_init (&raw.failed, false);
    atomic_init (&raw.ready, false);
    snprintf (raw.endpoint, sizeof raw.endpoint, "tcp://127.0.0.1:%d", raw_port);
    if (pthread_create (&raw.thread, NULL, s_raw_echo_thread, &raw) != 0) {
        zube_cli_error ("cannot start the raw echo thread");
        goto cleanup;
    }
    raw_started = true;
    while (!atomic_load (&raw.ready) && !atomic_load (&raw.failed))
        usleep (1000);
    if (atomic_load (&raw.failed)) {
        zube_cli_error ("cannot bind %s", raw.endpoint);
        goto cleanup;
    }
    dealer = zmq_socket (raw.context, ZMQ_DEALER);
    s_raw_socket_options (dealer);
    if (zmq_connect (dealer, raw.endpoint) != 0) {
        zube_cli_error ("cannot connect to %s", raw.endpoint);
        goto cleanup;
    }
    start_ns = malloc (run.requests * sizeof *start_ns);
    if (!start_ns) {
        zube_cli_error ("out of memory");
        goto cleanup;
    }
    {
        size_t measured = run.requests;
        run.requests = measured < BENCH_WARMUP_MAX ? measured : BENCH_WARMUP_MAX;
        s_raw_run (dealer, &run, BENCH_WARMUP_NS, start_ns);
        warmup_raw = run.completed;
        run.requests = measured;
        bench_usage_t before, after;
        s_usage_read (getpid (), &before);
        int64_t elapsed = s_raw_run (dealer, &run, 0, start_ns);
        s_usage_read (getpid (), &after);
        s_summarize (&run, elapsed, &raw_result);
        raw_cost = s_cost (&before, &after, run.completed);
    }
    if (zsys_interrupted) {
        zube_cli_error ("interrupted");
        goto cleanup;
    }

    double ratio = raw_result.rps > 0 ? broker_result.rps / raw_result.rps : 0;
    if (json) {
        printf ("{\n  \"mode\": \"bus\",\n");
        printf ("  \"requests\": %zu,\n  \"in_flight\": %zu,\n  \"payload_bytes\": %zu,\n",
                run.requests, run.in_flight, run.payload_bytes);
        printf ("  \"batching\": %s,\n", no_batch ? "false" : "true");
        if (broker_cpu >= 0)
            printf ("  \"broker_cpu\": %ld,\n", broker_cpu);
        else
            printf ("  \"broker_cpu\": null,\n");
        printf ("  \"warmup_broker_requests\": %zu,\n  \"warmup_raw_requests\": %zu,\n",
                warmup_broker, warmup_raw);
        s_json_side ("broker", &broker_result);
        s_json_side ("raw", &raw_result);
        //  Per request: "broker_*" the bench's process and the broker's
        //  together, "broker_process_*" the broker's alone.
        printf ("  \"broker_csw_per_request\": %.3f,\n",
                broker_bench_cost.csw + broker_process_cost.csw);
        printf ("  \"broker_csw_voluntary_per_request\": %.3f,\n",
                broker_bench_cost.csw_voluntary + broker_process_cost.csw_voluntary);
        printf ("  \"broker_cpu_us_per_request\": %.2f,\n",
                broker_bench_cost.cpu_us + broker_process_cost.cpu_us);
        printf ("  \"broker_process_csw_per_request\": %.3f,\n", broker_process_cost.csw);
        printf ("  \"broker_process_csw_voluntary_per_request\": %.3f,\n",
                broker_process_cost.csw_voluntary);
        printf ("  \"broker_process_cpu_us_per_request\": %.2f,\n", broker_process_cost.cpu_us);
        printf ("  \"raw_csw_per_request\": %.3f,\n", raw_cost.csw);
        printf ("  \"raw_csw_voluntary_per_request\": %.3f,\n", raw_cost.csw_voluntary);
        printf ("  \"raw_cpu_us_per_request\": %.2f,\n", raw_cost.cpu_us);
        printf ("  \"broker_version\": ");
        zube_cli_json_string (stdout, broker_version);
        printf (",\n  \"cpus\": %ld,\n", sysconf (_SC_NPROCESSORS_ONLN));
        printf ("  \"ratio\": %.4f\n}\n", ratio);
    }
    else {
        zube_cli_table_t *table = zube_cli_table_new (9);
        zube_cli_table_addv (table, "PATH", "REQUESTS", "SECONDS", "RPS", "P50(us)", "P99(us)",
                             "P99.9(us)", "MAX(us)", "ERRORS");
        s_print_row (table, "broker (zube_bus)", &broker_result);
        s_print_row (table, "raw DEALER/ROUTER", &raw_result);
        printf ("\n");
        zube_cli_table_print (table, stdout);
        zube_cli_table_destroy (&table);
        printf ("\nper request: broker path %.2f context switches (%.2f voluntary; broker "
                "process %.2f), %.1f us CPU (broker process %.1f); raw %.2f context switches "
                "(%.2f voluntary), %.1f us CPU\n",
                broker_bench_cost.csw + broker_process_cost.csw,
                broker_bench_cost.csw_voluntary + broker_process_cost.csw_voluntary,
                broker_process_cost.csw, broker_bench_cost.cpu_us + broker_process_cost.cpu_us,
                broker_process_cost.cpu_us, raw_cost.csw, raw_cost.csw_voluntary,
                raw_cost.cpu_us);
        printf ("ratio broker/raw: %.3f (target >= 0.5); warm-up %zu + %zu requests; "
                "broker %s, %ld CPUs\n",
                ratio, warmup_broker, warmup_raw, broker_version,
                sysconf (_SC_NPROCESSORS_ONLN));
    }
    rc = broker_result.errors || raw_result.errors ? 1 : 0;
    if (rc)
        zube_cli_error ("%zu broker and %zu raw requests failed", broker_result.errors,
                        raw_result.errors);

cleanup:
    if (service_started) {
        atomic_store (&service.stop, true);
        pthread_join (service.thread, NULL);
    }
    zube_bus_destroy (&bus);
    if (dealer)
        zmq_close (dealer);
    if (raw_started) {
        atomic_store (&raw.stop, true);
        pthread_join (raw.thread, NULL);
    }
    if (raw.context)
        zmq_ctx_term (raw.context);
    zube_cli_process_stop (broker, 5000);
    s_rmtree (dir);
    free (start_ns);
    free (run.latencies_ns);
    free (run.payload);
    return rc;
}

typedef struct {
    const char *name;
    const char *summary;
    int (*handler) (int argc, char **argv);
} bench_mode_t;

static const bench_mode_t s_modes[] = {
    {.name = "bus",
     .summary = "Request/reply through zube-broker against bare ZeroMQ DEALER/ROUTER",
     .handler = s_bench_bus},
    {.name = "api",
     .summary = "Pod creates, updates, gets and watch latency through zube-apiserver",
     .handler = zube_bench_api},
    {.name = "sched",
     .summary = "Pods bound per second by zube-scheduler on hollow nodes, and its loop alone",
     .handler = zube_bench_sched},
    {.name = "runtime",
     .summary = "Pod start latency of the oci runtime (runc, CNI) against bare runc run",
     .handler = zube_bench_runtime},
    {0}};

static void
s_help (FILE *out)
{
    fprintf (out, "zube-bench measures zube's moving parts; see zube-bench(1).\n\nModes:\n");
    for (const bench_mode_t *mode = s_modes; mode->name; mode++)
        fprintf (out, "  %-7s %s\n", mode->name, mode->summary);
    fprintf (out, "\nUsage:\n  zube-bench MODE [flags]\n\n"
                  "Use \"zube-bench MODE --help\" for a mode's flags.\n");
}

int
main (int argc, char **argv)
{
    zube_log_set_component ("zube-bench");
    const char *level = getenv ("ZUBE_LOG_LEVEL");
    int parsed = level ? zube_log_level_parse (level) : -1;
    zube_log_set_level (parsed >= 0 ? (zube_log_level_t) parsed : ZUBE_LOG_ERROR);
    signal (SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "--help") == 0
        || strcmp (argv[1], "help") == 0) {
        s_help (stdout);
        return argc < 2 ? 1 : 0;
    }
    for (const bench_mode_t *mode = s_modes; mode->name; mode++)
        if (strcmp (mode->name, argv[1]) == 0)
            return mode->handler (argc - 2, argv + 2);
    zube_cli_error ("unknown mode \"%s\" for \"zube-bench\"", argv[1]);
    fprintf (stderr, "Run 'zube-bench --help' for usage.\n");
    return 1;
}
