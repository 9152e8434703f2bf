/*  zube-controller-manager - runs the controller plugins
    (docs/controllers.md, zube-controller-manager(1)).

    Parses flags, reads the client config (--kubeconfig), loads the
    controllers --controllers enables, connects, runs until SIGINT or
    SIGTERM (or until it loses the leader lease), tears down in reverse.
    Exit codes: 0 after a clean shutdown, 1 for bad flags or
    configuration, 2 when the bus cannot be used at start or the leader
    lease was lost. */
#define _GNU_SOURCE
#include "zcm.h"
#include "zube/config.h"
#include "zube/leader.h"
#include "zube/log.h"
#include "zube/version.h"
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EXIT_USAGE 1
#define S_EXIT_START 2
#define S_MAX_SETTINGS 64

typedef struct {
    const char *bus;
    const char *certs;
    const char *name;
    bool insecure;
    const char *kubeconfig;
    const char *controllers;
    const char *plugin_path;
    const char *log_level;
    const char *leader_elect;
    const char *lease_duration;
    const char *renew_deadline;
    const char *retry_period;
    const char *lease_namespace;
    const char *lease_name;
    const char *identity;
    const char *settings[S_MAX_SETTINGS];
    size_t setting_count;
} s_options_t;

static void
s_usage (FILE *stream)
{
    fprintf (
        stream,
        "Usage: zube-controller-manager (--certs DIR --name NAME | --insecure |\n"
        "                                --kubeconfig FILE) [options]\n"
        "\n"
        "Runs the controller plugins: each watches the cluster through shared\n"
        "informers and moves it towards what its objects ask for.\n"
        "\n"
        "  --bus EP                 broker endpoint [" ZUBE_BUS_DEFAULT_ENDPOINT "]\n"
        "  --certs DIR              certificate directory (CurveZMQ)\n"
        "  --name NAME              this peer's certificate name in DIR\n"
        "                           [controller-manager]\n"
        "  --insecure               connect without CurveZMQ\n"
        "  --kubeconfig FILE        client config (zube-config(5)); flags override it\n"
        "  --controllers LIST       controllers to run: '*' all found, 'foo' on,\n"
        "                           '-foo' off [*]\n"
        "  --controller-arg N.K=V   setting K of controller N (repeatable)\n"
        "  --plugin-path DIRS       more directories to find plugins in (colon\n"
        "                           separated)\n"
        "  --leader-elect BOOL      elect one active instance through a Lease [true]\n"
        "  --leader-elect-lease-duration DUR    [15s]\n"
        "  --leader-elect-renew-deadline DUR    [10s]\n"
        "  --leader-elect-retry-period DUR      [2s]\n"
        "  --leader-elect-resource-namespace NS [kube-system]\n"
        "  --leader-elect-resource-name NAME    [kube-controller-manager]\n"
        "  --identity ID            the lease holder's identity [HOST_PID]\n"
        "  --log-level LEVEL        debug, info, warn, error, off [info]\n"
        "  --version                print the version\n"
        "  --help                   print this help\n");
}

static int
s_options_parse (s_options_t *options, int argc, char *argv[])
{
    static const char *with_value[] = {"--bus",
                                       "--certs",
                                       "--name",
                                       "--kubeconfig",
                                       "--controllers",
                                       "--plugin-path",
                                       "--log-level",
                                       "--leader-elect",
                                       "--leader-elect-lease-duration",
                                       "--leader-elect-renew-deadline",
                                       "--leader-elect-retry-period",
                                       "--leader-elect-resource-namespace",
                                       "--leader-elect-resource-name",
                                       "--identity",
                                       "--controller-arg"};
    const size_t count = sizeof with_value / sizeof with_value[0];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (streq (arg, "--help") || streq (arg, "-h")) {
            s_usage (stdout);
            return 1;
        }
        if (streq (arg, "--version")) {
            printf ("zube-controller-manager %s\n", ZUBE_VERSION_STRING);
            return 1;
        }
        if (streq (arg, "--insecure")) {
            options->insecure = true;
            continue;
        }
        const char *equals = strchr (arg, '=');
        size_t name_size = equals ? (size_t)(equals - arg) : strlen (arg);
        size_t index;
        for (index = 0; index < count; index++)
            if (strlen (with_value[index]) == name_size &&
                strncmp (with_value[index], arg, name_size) == 0)
                break;
        if (index == count) {
            fprintf (stderr,
                     "zube-controller-manager: unknown flag \"%s\" (see --help)\n", arg);
            return -1;
        }
        const char *value = equals ? equals + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value || (!*value && !streq (with_value[index], "--controllers"))) {
            fprintf (stderr, "zube-controller-manager: %s needs a value\n",
                     with_value[index]);
            return -1;
        }
        if (streq (with_value[index], "--controller-arg")) {
            if (options->setting_count == S_MAX_SETTINGS) {
                fprintf (stderr,
                         "zube-controller-manager: more than %d --controller-arg\n",
                         S_MAX_SETTINGS);
                return -1;
            }
            options->settings[options->setting_count++] = value;
            continue;
        }
        const char **slots[] = {&options->bus,
                                &options->certs,
                                &options->name,
                                &options->kubeconfig,
                                &options->controllers,
                                &options->plugin_path,
                                &options->log_level,
                                &options->leader_elect,
                                &options->lease_duration,
                                &options->renew_deadline,
                                &options->retry_period,
                                &options->lease_namespace,
                                &options->lease_name,
                                &options->identity};
        *slots[index] = value;
    }
    if (options->log_level && zube_log_level_parse (options->log_level) < 0) {
        fprintf (stderr,
                 "zube-controller-manager: --log-level: expected debug, info, warn, "
                 "error or off, got \"%s\"\n",
                 options->log_level);
        return -1;
    }
    if (options->leader_elect && !streq (options->leader_elect, "true") &&
        !streq (options->leader_elect, "false")) {
        fprintf (stderr,
                 "zube-controller-manager: --leader-elect: expected true or false, got "
                 "\"%s\"\n",
                 options->leader_elect);
        return -1;
    }
    const char *durations[][2] = {
        {"--leader-elect-lease-duration", options->lease_duration},
        {"--leader-elect-renew-deadline", options->renew_deadline},
        {"--leader-elect-retry-period", options->retry_period}};
    for (size_t i = 0; i < 3; i++)
        if (durations[i][1] && zube_leader_duration_ms (durations[i][1]) <= 0) {
            fprintf (stderr,
                     "zube-controller-manager: %s: expected a duration such as 15s or "
                     "500ms, got \"%s\"\n",
                     durations[i][0], durations[i][1]);
            return -1;
        }
    if (options->insecure && options->certs) {
        fprintf (stderr, "zube-controller-manager: --insecure excludes --certs\n");
        return -1;
    }
    if (!options->insecure && !options->certs && !options->kubeconfig) {
        fprintf (stderr, "zube-controller-manager: one of --certs DIR, --insecure or "
                         "--kubeconfig FILE is required\n");
        return -1;
    }
    return 0;
}

int
main (int argc, char *argv[])
{
    zube_log_set_component ("zube-controller-manager");
    s_options_t options = {0};
    int rc = s_options_parse (&options, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : S_EXIT_USAGE;
    if (options.log_level)
        zube_log_set_level ((zube_log_level_t)zube_log_level_parse (options.log_level));
    char error[2048];
    zube_config_t *client = zube_config_for_service (
        options.kubeconfig, "--kubeconfig", options.bus, options.insecure, options.certs,
        options.name ? options.name : "controller-manager", error, sizeof error);
    if (!client) {
        fprintf (stderr, "zube-controller-manager: %s\n", error);
        return S_EXIT_USAGE;
    }
    zsys_init ();
    zcm_config_t config = {
        .controllers = options.controllers,
        .plugin_path = options.plugin_path,
        .settings = options.settings,
        .setting_count = options.setting_count,
        .leader_elect = !options.leader_elect || streq (options.leader_elect, "true"),
        .lease_duration_ms =
            options.lease_duration ? zube_leader_duration_ms (options.lease_duration) : 0,
        .renew_deadline_ms =
            options.renew_deadline ? zube_leader_duration_ms (options.renew_deadline) : 0,
        .retry_period_ms =
            options.retry_period ? zube_leader_duration_ms (options.retry_period) : 0,
        .lease_namespace = options.lease_namespace ? options.lease_namespace
                                                   : ZUBE_LEADER_DEFAULT_NAMESPACE,
        .lease_name = options.lease_name ? options.lease_name : "kube-controller-manager",
        .identity = options.identity,
    };
    zube_config_bus_config (client, &config.bus);
    zcm_manager_t *manager = zcm_manager_new (&config, error, sizeof error);
    if (!manager) {
        fprintf (stderr, "zube-controller-manager: %s\n", error);
        bool start = strstr (error, "cannot connect") != NULL;
        zube_config_destroy (&client);
        return start ? S_EXIT_START : S_EXIT_USAGE;
    }
    zube_log_info ("msg=\"starting\" broker=%s", zube_config_broker (client));
    rc = zcm_manager_run (manager, &zsys_interrupted, error, sizeof error);
    if (rc != 0)
        zube_log_error ("msg=\"stopped\" error=\"%s\"", error);
    else {
        //  A clean stop hands the lease over (the signal's flag would
        //  make every bus call fail at once)
        zsys_interrupted = 0;
        zcm_manager_release (manager);
    }
    zcm_manager_destroy (&manager);
    zube_config_destroy (&client);
    return rc == 0 ? 0 : S_EXIT_START;
}
