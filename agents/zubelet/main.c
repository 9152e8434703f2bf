/*  zubelet - the node agent.

    Parses flags, loads the client config and the node shapes, opens the
    runtime and the bus, runs until SIGINT or SIGTERM (nodes, leases and
    pods stay; the runtime keeps running pods for adoption), tears down in
    reverse. Exit codes: 0 after a clean shutdown, 1 for bad flags, config
    or shapes file, 2 when the runtime, the bus or the apiserver cannot be
    used at start, or a node name is held by another live zubelet. */
#define _GNU_SOURCE
#include "zubelet.h"
#include "zube/config.h"
#include "zube/log.h"
#include "zube/version.h"
#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_EXIT_USAGE 1
#define S_EXIT_START 2

typedef struct {
    zube_service_flags_t service;
    const char *runtime;
    const char *node_name;
    long long nodes;
    const char *prefix;
    const char *shapes;
    const char *state_dir;
    long long lease_duration_s;
    int64_t renew_ms;
    int64_t report_ms;
    int64_t backoff_base_ms;
    int64_t backoff_max_ms;
    int64_t connect_timeout_ms;
    int64_t exec_idle_timeout_ms;
    long long exec_max_sessions;
    const char *admin_identities;
    //  --runtime-option KEY=VALUE, in order, NULL-terminated
    const char *runtime_options[ZL_RUNTIME_OPTIONS_MAX + 1];
    size_t runtime_option_count;
} s_options_t;

static void
s_usage (FILE *stream)
{
    fprintf (
        stream,
        "Usage: zubelet (--certs DIR --name NAME | --insecure | --config FILE) [options]\n"
        "\n"
        "The node agent: registers its node(s), renews their leases, runs the pods bound\n"
        "to them through a runtime plugin and reports their status.\n"
        "\n"
        "  --bus EP                        broker endpoint [" ZUBE_BUS_DEFAULT_ENDPOINT "]\n"
        "  --certs DIR                     certificate directory (CurveZMQ)\n"
        "  --name NAME                     this peer's certificate name in DIR\n"
        "                                  (node-<node> or nodes-<prefix>)\n"
        "  --insecure                      connect without CurveZMQ\n"
        "  --config FILE                   client config (zube-config(5)); flags override it\n"
        "  --runtime NAME                  runtime plugin: sim or oci [sim]\n"
        "  --runtime-option KEY=VALUE      an option of the runtime plugin (repeatable; oci:\n"
        "                                  pod_cidr, bridge, runtime, cni_path, cgroup_parent,\n"
        "                                  image_dir, log_max_size; zubelet(1))\n"
        "  --node-name NAME                host one node [the host name]\n"
        "  --nodes N                       host N hollow nodes PREFIX0001.. instead\n"
        "  --node-name-prefix P            their name prefix [sim-]\n"
        "  --node-shapes FILE              what the nodes look like (docs/node-shapes.md)\n"
        "  --state-dir DIR                 the zubelet's and the runtime's state [./zubelet-state]\n"
        "  --lease-duration-seconds N      leaseDurationSeconds of the node leases [40]\n"
        "  --node-status-update-frequency D  lease renew interval [10s]\n"
        "  --node-status-report-frequency D  node status report interval [5m]\n"
        "  --crash-loop-backoff-base D     first restart back-off, doubling [10s]\n"
        "  --crash-loop-backoff-max D      back-off cap [5m]\n"
        "  --connect-timeout D             wait at start for the broker and apiserver [30s]\n"
        "  --log-level LEVEL               debug, info, warn, error, off [info]\n"
        "  --exec-idle-timeout D           an interactive exec session its client has not\n"
        "                                  polled for this long is closed, its command\n"
        "                                  killed [30s]\n"
        "  --exec-max-sessions N           interactive exec sessions at once [16]\n"
        "  --admin-identities LIST         who may call logs and exec on node/<name>:\n"
        "                                  names or prefixes ending in * [admin,anonymous]\n"
        "  --version                       print the version\n"
        "  --help                          print this help\n"
        "\n"
        "Durations: 500ms, 10s, 5m, 1h (a plain number is seconds).\n");
}

//  "500ms", "10s", "1m30s", "2" (seconds): milliseconds, or -1
static int64_t
s_duration_ms (const char *text)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    double plain = strtod (text, &end);
    if (!errno && end && !*end)
        return plain < 0 ? -1 : (int64_t)(plain * 1000);
    double total = 0;
    const char *at = text;
    while (*at) {
        errno = 0;
        double value = strtod (at, &end);
        if (errno || end == at || value < 0)
            return -1;
        at = end;
        double unit;
        if (strncmp (at, "ms", 2) == 0)
            unit = 1, at += 2;
        else if (*at == 'h')
            unit = 3600000, at++;
        else if (*at == 'm')
            unit = 60000, at++;
        else if (*at == 's')
            unit = 1000, at++;
        else
            return -1;
        total += value * unit;
    }
    return total > 1e15 ? -1 : (int64_t)total;
}

static bool
s_duration_valid (const char *value)
{
    return s_duration_ms (value) > 0;
}

static bool
s_nodes_valid (const char *value)
{
    char *end = NULL;
    errno = 0;
    long long nodes = strtoll (value, &end, 10);
    return !errno && !*end && nodes >= 1 && nodes <= 1000000;
}

static bool
s_exec_sessions_valid (const char *value)
{
    char *end = NULL;
    errno = 0;
    long long sessions = strtoll (value, &end, 10);
    return !errno && !*end && sessions >= 1 && sessions <= 1000;
}

static bool
s_lease_duration_valid (const char *value)
{
    char *end = NULL;
    errno = 0;
    long long seconds = strtoll (value, &end, 10);
    return !errno && !*end && seconds >= 1 && seconds <= 3600;
}

static bool
s_runtime_option_valid (const char *value)
{
    return strchr (value, '=') != NULL;
}

#define S_DURATION_EXPECTED "a duration above 0 such as 500ms, 10s or 5m"
#define S_STRING(x) S_STRING_ (x)
#define S_STRING_(x) #x

static int
s_options_parse (s_options_t *options, int argc, char *argv[])
{
    const char *nodes = NULL, *lease_duration = NULL;
    //  The durations, in the order of duration_ms below
    const char *durations[6] = {NULL};
    int64_t *duration_ms[6] = {&options->renew_ms,        &options->report_ms,
                               &options->backoff_base_ms, &options->backoff_max_ms,
                               &options->connect_timeout_ms, &options->exec_idle_timeout_ms};
    const char *exec_max_sessions = NULL;
    zube_service_flags_init (&options->service, "--config");
    const zube_flag_t flags[] = {
        {.name = "--runtime", .value = &options->runtime},
        {.name = "--node-name", .value = &options->node_name},
        {.name = "--nodes",
         .value = &nodes,
         .valid = s_nodes_valid,
         .expected = "a number of nodes between 1 and 1000000"},
        {.name = "--node-name-prefix", .value = &options->prefix},
        {.name = "--node-shapes", .value = &options->shapes},
        {.name = "--state-dir", .value = &options->state_dir},
        {.name = "--lease-duration-seconds",
         .value = &lease_duration,
         .valid = s_lease_duration_valid,
         .expected = "1..3600"},
        {.name = "--node-status-update-frequency",
         .value = &durations[0],
         .valid = s_duration_valid,
         .expected = S_DURATION_EXPECTED},
        {.name = "--node-status-report-frequency",
         .value = &durations[1],
         .valid = s_duration_valid,
         .expected = S_DURATION_EXPECTED},
        {.name = "--crash-loop-backoff-base",
         .value = &durations[2],
         .valid = s_duration_valid,
         .expected = S_DURATION_EXPECTED},
        {.name = "--crash-loop-backoff-max",
         .value = &durations[3],
         .valid = s_duration_valid,
         .expected = S_DURATION_EXPECTED},
        {.name = "--connect-timeout",
         .value = &durations[4],
         .valid = s_duration_valid,
         .expected = S_DURATION_EXPECTED},
        {.name = "--exec-idle-timeout",
         .value = &durations[5],
         .valid = s_duration_valid,
         .expected = S_DURATION_EXPECTED},
        {.name = "--exec-max-sessions",
         .value = &exec_max_sessions,
         .valid = s_exec_sessions_valid,
         .expected = "a number of sessions between 1 and 1000"},
        {.name = "--admin-identities", .value = &options->admin_identities},
        {.name = "--runtime-option",
         .list = options->runtime_options,
         .list_count = &options->runtime_option_count,
         .list_max = ZL_RUNTIME_OPTIONS_MAX,
         .valid = s_runtime_option_valid,
         .expected = "KEY=VALUE (at most " S_STRING (ZL_RUNTIME_OPTIONS_MAX) ")"},
        {.name = NULL},
    };
    const zube_flag_t *const tables[] = {&options->service.rows[0], flags, NULL};
    int rc = zube_flags_parse ("zubelet", tables, s_usage, argc, argv);
    if (rc != 0)
        return rc;
    if (nodes)
        options->nodes = strtoll (nodes, NULL, 10);
    if (lease_duration)
        options->lease_duration_s = strtoll (lease_duration, NULL, 10);
    if (exec_max_sessions)
        options->exec_max_sessions = strtoll (exec_max_sessions, NULL, 10);
    for (size_t i = 0; i < 6; i++)
        if (durations[i])
            *duration_ms[i] = s_duration_ms (durations[i]);
    if (zube_service_flags_check (&options->service, "zubelet", true, true) != 0)
        return -1;
    if (options->node_name && (options->nodes || options->prefix)) {
        fprintf (stderr, "zubelet: --node-name excludes --nodes and --node-name-prefix\n");
        return -1;
    }
    if (options->prefix && !options->nodes && !options->shapes) {
        fprintf (stderr, "zubelet: --node-name-prefix needs --nodes (or --node-shapes)\n");
        return -1;
    }
    if (options->renew_ms && options->renew_ms >= options->lease_duration_s * 1000) {
        fprintf (stderr,
                 "zubelet: --node-status-update-frequency must be shorter than "
                 "--lease-duration-seconds\n");
        return -1;
    }
    return 0;
}

static bool
s_name_ok (const char *name)
{
    size_t length = strlen (name);
    if (!length || length > 253 || name[0] == '-' || name[0] == '.' ||
        name[length - 1] == '-' || name[length - 1] == '.')
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
            return false;
    return true;
}

int
main (int argc, char *argv[])
{
    zube_log_set_component ("zubelet");
    s_options_t options = {.runtime = "sim",
                           .state_dir = "./zubelet-state",
                           .lease_duration_s = 40};
    int rc = s_options_parse (&options, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : S_EXIT_USAGE;
    zube_service_flags_set_log_level (&options.service);

    //  Which nodes
    char host[256] = "";
    const char *prefix = options.prefix ? options.prefix : "sim-";
    if (!options.node_name && !options.nodes) {
        //  (becomes hollow nodes if a shapes file gives every shape a count)
        if (gethostname (host, sizeof host - 1) != 0 || !host[0])
            snprintf (host, sizeof host, "localhost");
        for (char *c = host; *c; c++)
            *c = (char)tolower ((unsigned char)*c);
        options.node_name = host;
    }
    char probe[300];
    snprintf (probe, sizeof probe, "%s1", prefix);
    if ((options.nodes || options.prefix) && !s_name_ok (probe)) {
        fprintf (stderr,
                 "zubelet: --node-name-prefix: \"%s\" does not make valid node names "
                 "(lowercase a-z, 0-9, '-', '.', starting alphanumeric)\n",
                 prefix);
        return S_EXIT_USAGE;
    }

    //  What they look like
    char error[2048];
    zl_shapes_t *shapes = NULL;
    if (options.shapes) {
        shapes = zl_shapes_load (options.shapes, error, sizeof error);
        if (!shapes) {
            fprintf (stderr, "zubelet: --node-shapes: %s\n", error);
            return S_EXIT_USAGE;
        }
        if (!options.nodes && options.node_name == host) {
            //  No --nodes: as many hollow nodes as the counts say
            options.nodes = (long long)zl_shapes_total (shapes);
            if (!options.nodes) {
                fprintf (stderr, "zubelet: --node-shapes %s: give every shape a count, or "
                                 "say how many nodes with --nodes\n",
                         options.shapes);
                zl_shapes_destroy (&shapes);
                return S_EXIT_USAGE;
            }
        }
    } else
        shapes = zl_shapes_default (options.nodes == 0 && strcmp (options.runtime, "sim") != 0);
    if (!options.nodes && !s_name_ok (options.node_name)) {
        fprintf (stderr,
                 "zubelet: --node-name: \"%s\" is not a valid node name (a lowercase RFC 1123 "
                 "subdomain: a-z, 0-9, '-' and '.', starting and ending alphanumeric)\n",
                 options.node_name);
        zl_shapes_destroy (&shapes);
        return S_EXIT_USAGE;
    }

    if (!shapes || zl_shapes_prepare (shapes) != 0) {
        fprintf (stderr, "zubelet: out of memory\n");
        zl_shapes_destroy (&shapes);
        return S_EXIT_START;
    }

    //  Where the broker is and who we are: the config file, then flags
    zube_config_t *config =
        zube_service_flags_client (&options.service, NULL, error, sizeof error);
    if (!config) {
        fprintf (stderr, "zubelet: %s\n", error);
        zl_shapes_destroy (&shapes);
        return S_EXIT_USAGE;
    }

    //  czmq's handler turns SIGINT and SIGTERM into zsys_interrupted
    zsys_init ();
    zubelet_config_t zconfig = {
        .runtime = options.runtime,
        .runtime_options = options.runtime_options,
        .state_dir = options.state_dir,
        .node_name = options.nodes ? NULL : options.node_name,
        .prefix = prefix,
        .count = (size_t)options.nodes,
        .shapes = shapes,
        .host_shape = options.nodes == 0 && !options.shapes && strcmp (options.runtime, "sim") != 0,
        .lease_duration_s = (int)options.lease_duration_s,
        .renew_interval_ms = options.renew_ms ? options.renew_ms : 10000,
        .status_report_ms = options.report_ms ? options.report_ms : 5 * 60 * 1000,
        .backoff_base_ms = options.backoff_base_ms ? options.backoff_base_ms : 10000,
        .backoff_max_ms = options.backoff_max_ms ? options.backoff_max_ms : 5 * 60 * 1000,
        .status_min_interval_ms = 250,
        .admin_identities = options.admin_identities ? options.admin_identities
                                                      : ZL_ADMIN_IDENTITIES,
        .connect_timeout_ms =
            options.connect_timeout_ms ? (int)options.connect_timeout_ms : 30000,
        .exec_idle_timeout_ms = options.exec_idle_timeout_ms ? options.exec_idle_timeout_ms
                                                             : ZL_EXEC_IDLE_TIMEOUT_MS,
        .exec_max_sessions = options.exec_max_sessions ? (size_t)options.exec_max_sessions
                                                       : ZL_EXEC_MAX_SESSIONS,
    };
    if (zconfig.renew_interval_ms >= zconfig.lease_duration_s * 1000) {
        fprintf (stderr, "zubelet: --node-status-update-frequency must be shorter than "
                         "--lease-duration-seconds\n");
        zube_config_destroy (&config);
        zl_shapes_destroy (&shapes);
        return S_EXIT_USAGE;
    }
    zube_config_bus_config (config, &zconfig.bus);
    zubelet_t *zubelet = zubelet_new (&zconfig, error, sizeof error);
    if (!zubelet) {
        zube_log_error ("msg=\"cannot start\" error=\"%s\"", error);
        fprintf (stderr, "zubelet: %s\n", error);
        zube_config_destroy (&config);
        zl_shapes_destroy (&shapes);
        return S_EXIT_START;
    }
    zube_log_info ("msg=\"starting\" nodes=%zu runtime=%s broker=%s identity=%s",
                   options.nodes ? (size_t)options.nodes : 1, options.runtime,
                   zube_config_broker (config), zubelet->identity);
    rc = zubelet_run (zubelet, error, sizeof error);
    if (rc != 0) {
        zube_log_error ("msg=\"stopped\" error=\"%s\"", error);
        fprintf (stderr, "zubelet: %s\n", error);
    }
    zubelet_destroy (&zubelet);
    zube_config_destroy (&config);
    zl_shapes_destroy (&shapes);
    return rc;
}
