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
    const char *bus;
    const char *certs;
    const char *name;
    bool insecure;
    const char *config;
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
    const char *log_level;
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
        "                                  pod_cidr, bridge, runc, cni_path, cgroup_parent,\n"
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

static int
s_options_parse (s_options_t *options, int argc, char *argv[])
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (streq (arg, "--help") || streq (arg, "-h")) {
            s_usage (stdout);
            return 1;
        }
        if (streq (arg, "--version")) {
            printf ("zubelet %s\n", ZUBE_VERSION_STRING);
            return 1;
        }
        if (streq (arg, "--insecure")) {
            options->insecure = true;
            continue;
        }
        static const char *with_value[] = {"--bus",
                                           "--certs",
                                           "--name",
                                           "--config",
                                           "--runtime",
                                           "--node-name",
                                           "--nodes",
                                           "--node-name-prefix",
                                           "--node-shapes",
                                           "--state-dir",
                                           "--lease-duration-seconds",
                                           "--node-status-update-frequency",
                                           "--node-status-report-frequency",
                                           "--crash-loop-backoff-base",
                                           "--crash-loop-backoff-max",
                                           "--connect-timeout",
                                           "--log-level",
                                           "--admin-identities",
                                           "--runtime-option"};
        const char *equals = strchr (arg, '=');
        size_t name_size = equals ? (size_t)(equals - arg) : strlen (arg);
        size_t index;
        for (index = 0; index < sizeof with_value / sizeof with_value[0]; index++)
            if (strlen (with_value[index]) == name_size &&
                strncmp (with_value[index], arg, name_size) == 0)
                break;
        if (index == sizeof with_value / sizeof with_value[0]) {
            fprintf (stderr, "zubelet: unknown flag \"%s\" (see --help)\n", arg);
            return -1;
        }
        const char *flag = with_value[index];
        const char *value = equals ? equals + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value || !*value) {
            fprintf (stderr, "zubelet: %s needs a value\n", flag);
            return -1;
        }
        int64_t ms = 0;
        if (index >= 11 && index <= 15) {
            ms = s_duration_ms (value);
            if (ms <= 0) {
                fprintf (stderr,
                         "zubelet: %s: expected a duration above 0 such as 500ms, 10s or 5m, "
                         "got \"%s\"\n",
                         flag, value);
                return -1;
            }
        }
        char *end = NULL;
        switch (index) {
        case 0: options->bus = value; break;
        case 1: options->certs = value; break;
        case 2: options->name = value; break;
        case 3: options->config = value; break;
        case 4: options->runtime = value; break;
        case 5: options->node_name = value; break;
        case 6:
            errno = 0;
            options->nodes = strtoll (value, &end, 10);
            if (errno || *end || options->nodes < 1 || options->nodes > 1000000) {
                fprintf (stderr,
                         "zubelet: --nodes: expected a number of nodes between 1 and 1000000, "
                         "got \"%s\"\n",
                         value);
                return -1;
            }
            break;
        case 7: options->prefix = value; break;
        case 8: options->shapes = value; break;
        case 9: options->state_dir = value; break;
        case 10:
            errno = 0;
            options->lease_duration_s = strtoll (value, &end, 10);
            if (errno || *end || options->lease_duration_s < 1 ||
                options->lease_duration_s > 3600) {
                fprintf (stderr,
                         "zubelet: --lease-duration-seconds: expected 1..3600, got \"%s\"\n",
                         value);
                return -1;
            }
            break;
        case 11: options->renew_ms = ms; break;
        case 12: options->report_ms = ms; break;
        case 13: options->backoff_base_ms = ms; break;
        case 14: options->backoff_max_ms = ms; break;
        case 15: options->connect_timeout_ms = ms; break;
        case 16:
            if (zube_log_level_parse (value) < 0) {
                fprintf (stderr,
                         "zubelet: --log-level: expected debug, info, warn, error or off, "
                         "got \"%s\"\n",
                         value);
                return -1;
            }
            options->log_level = value;
            break;
        case 17: options->admin_identities = value; break;
        case 18:
            if (!strchr (value, '=') ||
                options->runtime_option_count == ZL_RUNTIME_OPTIONS_MAX) {
                fprintf (stderr,
                         "zubelet: --runtime-option: expected KEY=VALUE (at most %d), got "
                         "\"%s\"\n",
                         ZL_RUNTIME_OPTIONS_MAX, value);
                return -1;
            }
            options->runtime_options[options->runtime_option_count++] = value;
            break;
        }
    }
    if (options->insecure && (options->certs || options->name)) {
        fprintf (stderr, "zubelet: --insecure excludes --certs and --name\n");
        return -1;
    }
    if ((options->certs != NULL) != (options->name != NULL)) {
        fprintf (stderr, "zubelet: --certs and --name go together\n");
        return -1;
    }
    if (!options->insecure && !options->certs && !options->config) {
        fprintf (stderr, "zubelet: one of --certs DIR --name NAME, --insecure or "
                         "--config FILE is required\n");
        return -1;
    }
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
    if (options.log_level)
        zube_log_set_level ((zube_log_level_t)zube_log_level_parse (options.log_level));

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
        zube_config_for_service (options.config, "--config", options.bus, options.insecure,
                                 options.certs, options.name, error, sizeof error);
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
