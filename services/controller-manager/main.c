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

//  kube-controller-manager's --concurrent-*-syncs flags: the worker count
//  of one controller each, as --controller-arg NAME.workers=N sets it.
static const struct {
    const char *flag;
    const char *controller;
} s_concurrent[] = {
    {"--concurrent-deployment-syncs", "deployment"},
    {"--concurrent-replicaset-syncs", "replicaset"},
    {"--concurrent-job-syncs", "job"},
    {"--concurrent-service-endpoint-syncs", "endpointslice"},
    {"--concurrent-namespace-syncs", "namespace"},
    {"--concurrent-gc-syncs", "garbagecollector"},
    {"--concurrent-daemonset-syncs", "daemonset"},
};
#define S_CONCURRENT (sizeof s_concurrent / sizeof s_concurrent[0])

typedef struct {
    zube_service_flags_t service;
    zube_leader_flags_t leader;
    const char *controllers;
    const char *plugin_path;
    const char *settings[S_MAX_SETTINGS + S_CONCURRENT];
    size_t setting_count;
    const char *concurrent[S_CONCURRENT];
    char concurrent_settings[S_CONCURRENT][80];
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
        "  --controller-arg N.K=V   setting K of controller N (repeatable);\n"
        "                           N.workers=COUNT: its syncs at once (1..64)\n"
        "  --concurrent-deployment-syncs, --concurrent-replicaset-syncs,\n"
        "  --concurrent-job-syncs, --concurrent-service-endpoint-syncs,\n"
        "  --concurrent-namespace-syncs, --concurrent-gc-syncs,\n"
        "  --concurrent-daemonset-syncs COUNT\n"
        "                           Kubernetes' names of N.workers for deployment,\n"
        "                           replicaset, job, endpointslice, namespace,\n"
        "                           garbagecollector, daemonset [their plugins']\n"
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

static bool
s_valid_workers (const char *value)
{
    char *end = NULL;
    long count = strtol (value, &end, 10);
    return *value && !*end && count >= 1 && count <= ZCM_WORKERS_MAX;
}

static int
s_options_parse (s_options_t *options, int argc, char *argv[])
{
    zube_service_flags_init (&options->service, "--kubeconfig");
    zube_leader_flags_init (&options->leader);
    const zube_flag_t flags[] = {
        {.name = "--controllers", .value = &options->controllers, .empty_ok = true},
        {.name = "--controller-arg",
         .list = options->settings,
         .list_count = &options->setting_count,
         .list_max = S_MAX_SETTINGS},
        {.name = "--plugin-path", .value = &options->plugin_path},
        {.name = NULL},
    };
    zube_flag_t concurrent[S_CONCURRENT + 1] = {{.name = NULL}};
    for (size_t i = 0; i < S_CONCURRENT; i++)
        concurrent[i] = (zube_flag_t){.name = s_concurrent[i].flag,
                                      .value = &options->concurrent[i],
                                      .valid = s_valid_workers,
                                      .expected = "a whole number from 1 to 64"};
    const zube_flag_t *const tables[] = {
        &options->service.rows[0], &options->leader.rows[0], flags, concurrent, NULL};
    int rc = zube_flags_parse ("zube-controller-manager", tables, s_usage, argc, argv);
    if (rc != 0)
        return rc;
    //  After the --controller-arg ones: the flag wins
    for (size_t i = 0; i < S_CONCURRENT; i++) {
        if (!options->concurrent[i])
            continue;
        snprintf (options->concurrent_settings[i], sizeof options->concurrent_settings[i],
                  "%s.workers=%s", s_concurrent[i].controller, options->concurrent[i]);
        options->settings[options->setting_count++] = options->concurrent_settings[i];
    }
    return zube_service_flags_check (&options->service, "zube-controller-manager", false,
                                     true);
}

int
main (int argc, char *argv[])
{
    zube_log_set_component ("zube-controller-manager");
    s_options_t options = {0};
    int rc = s_options_parse (&options, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : S_EXIT_USAGE;
    zube_service_flags_set_log_level (&options.service);
    char error[2048];
    zube_config_t *client = zube_service_flags_client (
        &options.service, "controller-manager", error, sizeof error);
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
        .leader_elect = !options.leader.elect || streq (options.leader.elect, "true"),
        .lease_duration_ms = options.leader.lease_duration
                                 ? zube_leader_duration_ms (options.leader.lease_duration)
                                 : 0,
        .renew_deadline_ms = options.leader.renew_deadline
                                 ? zube_leader_duration_ms (options.leader.renew_deadline)
                                 : 0,
        .retry_period_ms = options.leader.retry_period
                               ? zube_leader_duration_ms (options.leader.retry_period)
                               : 0,
        .lease_namespace = options.leader.namespace_ ? options.leader.namespace_
                                                     : ZUBE_LEADER_DEFAULT_NAMESPACE,
        .lease_name =
            options.leader.name ? options.leader.name : "kube-controller-manager",
        .identity = options.leader.identity,
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
