/*  zube-scheduler - binds pending pods to nodes through a pipeline of
    scheduler plugins (docs/scheduler.md, zube-scheduler(1)).

    Parses flags, reads the KubeSchedulerConfiguration (--config) and the
    client config (--kubeconfig), builds the profiles, connects, runs until
    SIGINT or SIGTERM, tears down in reverse. Exit codes: 0 after a clean
    shutdown, 1 for bad flags or configuration (the error names the
    field), 2 when the bus cannot be used at start. */
#define _GNU_SOURCE
#include "scheduler.h"
#include "zube/api.h"
#include "zube/config.h"
#include "zube/leader.h"
#include "zube/log.h"
#include "zube/version.h"
#include <czmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EXIT_USAGE 1
#define S_EXIT_START 2

typedef struct {
    zube_service_flags_t service;
    zube_leader_flags_t leader;
    const char *config;
    const char *plugin_path;
    bool check;
} s_options_t;

static void
s_usage (FILE *stream)
{
    fprintf (
        stream,
        "Usage: zube-scheduler (--certs DIR --name NAME | --insecure | --kubeconfig "
        "FILE)\n"
        "                      [options]\n"
        "\n"
        "Binds pending pods to nodes through the scheduler plugins of its profiles.\n"
        "\n"
        "  --bus EP             broker endpoint [" ZUBE_BUS_DEFAULT_ENDPOINT "]\n"
        "  --certs DIR          certificate directory (CurveZMQ)\n"
        "  --name NAME          this peer's certificate name in DIR [scheduler]\n"
        "  --insecure           connect without CurveZMQ\n"
        "  --kubeconfig FILE    client config (zube-config(5)); flags override it\n"
        "  --config FILE        KubeSchedulerConfiguration (zube-scheduler-config(5))\n"
        "                       [one profile, default-scheduler, Kubernetes' defaults]\n"
        "  --plugin-path DIRS   more directories to load plugins from (colon separated)\n"
        "  --check              check --config and exit (0: valid)\n"
        "  --leader-elect BOOL  only the holder of a Lease schedules [true]\n"
        "  --leader-elect-lease-duration DUR    [15s]\n"
        "  --leader-elect-renew-deadline DUR    [10s]\n"
        "  --leader-elect-retry-period DUR      [2s]\n"
        "  --leader-elect-resource-namespace NS [kube-system]\n"
        "  --leader-elect-resource-name NAME    [kube-scheduler]\n"
        "  --identity ID        the lease holder's identity [HOST_PID]\n"
        "  --log-level LEVEL    debug, info, warn, error, off [info]\n"
        "  --version            print the version\n"
        "  --help               print this help\n");
}

//  ---------------------------------------------------------------------
//  Leader election on a thread with its own connection (the scheduler's
//  loop does not know about it): main waits until it leads; a lost lease
//  interrupts the loop.

typedef struct {
    zube_bus_config_t bus;
    zube_leader_config_t leader;
    volatile int state;    //  zube_leader_state_t
    volatile int stop;     //  set by main: release and end
    volatile int failed;   //  could not start (error says why)
    char error[512];
} s_elector_t;

static void *
s_elector_run (void *arg)
{
    s_elector_t *self = arg;
    zube_bus_t *bus = zube_bus_new (&self->bus);
    zube_api_t *api = bus ? zube_api_new (bus) : NULL;
    zube_leader_t *leader =
        api ? zube_leader_new (api, &self->leader, self->error, sizeof self->error) : NULL;
    if (!leader) {
        if (!self->error[0])
            snprintf (self->error, sizeof self->error, "cannot connect to the broker");
        self->failed = 1;
    }
    while (leader && !self->stop) {
        int64_t next = 100;
        self->state = zube_leader_tick (leader, &next);
        if (self->state == ZUBE_LEADER_LOST) {
            zsys_interrupted = 1;
            break;
        }
        if (zube_bus_poll (bus, next < 0 || next > 100 ? 100 : (int)next) < 0)
            zclock_sleep (50); //  interrupted: main is stopping
    }
    if (leader && self->stop)
        zube_leader_release (leader);
    zube_leader_destroy (&leader);
    zube_api_destroy (&api);
    zube_bus_destroy (&bus);
    return NULL;
}

static int
s_options_parse (s_options_t *options, int argc, char *argv[])
{
    zube_service_flags_init (&options->service, "--kubeconfig");
    zube_leader_flags_init (&options->leader);
    const zube_flag_t flags[] = {
        {.name = "--config", .value = &options->config},
        {.name = "--plugin-path", .value = &options->plugin_path},
        {.name = "--check", .set = &options->check},
        {.name = NULL},
    };
    const zube_flag_t *const tables[] = {&options->service.rows[0],
                                         &options->leader.rows[0], flags, NULL};
    int rc = zube_flags_parse ("zube-scheduler", tables, s_usage, argc, argv);
    if (rc != 0)
        return rc;
    return zube_service_flags_check (&options->service, "zube-scheduler", false,
                                     !options->check);
}

int
main (int argc, char *argv[])
{
    zube_log_set_component ("zube-scheduler");
    s_options_t options = {0};
    int rc = s_options_parse (&options, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : S_EXIT_USAGE;
    zube_service_flags_set_log_level (&options.service);

    char *config_text = NULL;
    if (options.config && !(config_text = zs_read_file (options.config))) {
        fprintf (stderr, "zube-scheduler: --config: cannot read %s\n", options.config);
        return S_EXIT_USAGE;
    }
    char error[2048];
    if (options.check) {
        zs_registry_t *registry = zs_registry_new (options.plugin_path);
        zs_profiles_t profiles;
        rc = registry ? zs_profiles_load (registry, config_text, &profiles, error,
                                          sizeof error)
                      : -1;
        if (rc == 0) {
            for (size_t i = 0; i < profiles.count; i++) {
                char *text = zs_profile_describe (profiles.profiles[i]);
                printf ("%s: %s\n", zs_profile_name (profiles.profiles[i]),
                        text ? text : "");
                free (text);
            }
            zs_profiles_clear (&profiles);
        } else
            fprintf (stderr, "zube-scheduler: --config %s: %s\n",
                     options.config ? options.config : "(default)", error);
        zs_registry_destroy (&registry);
        free (config_text);
        return rc == 0 ? 0 : S_EXIT_USAGE;
    }

    zube_config_t *client =
        zube_service_flags_client (&options.service, "scheduler", error, sizeof error);
    if (!client) {
        fprintf (stderr, "zube-scheduler: %s\n", error);
        free (config_text);
        return S_EXIT_USAGE;
    }

    zsys_init ();
    zs_scheduler_config_t config = {.config_text = config_text,
                                    .plugin_path = options.plugin_path};
    zube_config_bus_config (client, &config.bus);

    zs_scheduler_t *scheduler = zs_scheduler_new (&config, error, sizeof error);
    if (!scheduler) {
        fprintf (stderr, "zube-scheduler: %s\n", error);
        bool bad_config = !strstr (error, "cannot connect");
        zube_config_destroy (&client);
        free (config_text);
        return bad_config ? S_EXIT_USAGE : S_EXIT_START;
    }
    //  Leader election once the configuration is known good: a standby
    //  waits here
    char identity[256];
    if (options.leader.identity)
        snprintf (identity, sizeof identity, "%s", options.leader.identity);
    else {
        char host[200] = "localhost";
        gethostname (host, sizeof host - 1);
        snprintf (identity, sizeof identity, "%s_%d", host, (int)getpid ());
    }
    s_elector_t elector = {
        .bus = config.bus,
        .leader = {.namespace_ = options.leader.namespace_,
                   .name = options.leader.name ? options.leader.name : "kube-scheduler",
                   .identity = identity,
                   .lease_duration_ms =
                       options.leader.lease_duration
                           ? zube_leader_duration_ms (options.leader.lease_duration)
                           : 0,
                   .renew_deadline_ms =
                       options.leader.renew_deadline
                           ? zube_leader_duration_ms (options.leader.renew_deadline)
                           : 0,
                   .retry_period_ms =
                       options.leader.retry_period
                           ? zube_leader_duration_ms (options.leader.retry_period)
                           : 0}};
    bool elect = !options.leader.elect || streq (options.leader.elect, "true");
    pthread_t elector_thread;
    if (elect) {
        if (pthread_create (&elector_thread, NULL, s_elector_run, &elector) != 0) {
            fprintf (stderr, "zube-scheduler: cannot start the leader election thread\n");
            zs_scheduler_destroy (&scheduler);
            zube_config_destroy (&client);
            free (config_text);
            return S_EXIT_START;
        }
        zube_log_info ("msg=\"waiting for the leader lease\" identity=%s", identity);
        while (!zsys_interrupted && !elector.failed && elector.state != ZUBE_LEADER_LEADING)
            zclock_sleep (50);
        if (elector.failed || zsys_interrupted) {
            if (elector.failed)
                fprintf (stderr, "zube-scheduler: leader election: %s\n", elector.error);
            zsys_interrupted = 0;
            elector.stop = 1;
            pthread_join (elector_thread, NULL);
            zs_scheduler_destroy (&scheduler);
            zube_config_destroy (&client);
            free (config_text);
            return elector.failed ? S_EXIT_USAGE : 0;
        }
    }
    zube_log_info ("msg=\"starting\" broker=%s", zube_config_broker (client));
    rc = zs_scheduler_run (scheduler, &zsys_interrupted, error, sizeof error);
    if (rc != 0)
        zube_log_error ("msg=\"stopped\" error=\"%s\"", error);
    if (elect) {
        //  The thread releases the lease on a clean stop
        bool lost = elector.state == ZUBE_LEADER_LOST;
        if (lost)
            zube_log_error ("msg=\"stopped: leader election lost\" identity=%s", identity);
        zsys_interrupted = 0;
        elector.stop = 1;
        pthread_join (elector_thread, NULL);
        if (lost)
            rc = -1;
    }
    zs_scheduler_destroy (&scheduler);
    zube_config_destroy (&client);
    free (config_text);
    return rc == 0 ? 0 : S_EXIT_START;
}
