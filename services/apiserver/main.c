/*  zube-apiserver - the bus service "api".

    Parses flags, loads the client config (where the broker is and who we
    are there), opens the store and the policy, serves until SIGINT or
    SIGTERM, tears down in reverse. Exit codes: 0 after a clean shutdown,
    1 for bad flags or config, 2 when the store, the policy or the bus
    cannot be opened. */
#define _GNU_SOURCE
#include "apiserver.h"
#include "zube/config.h"
#include "zube/log.h"
#include "zube/version.h"
#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_EXIT_USAGE 1
#define S_EXIT_START 2

typedef struct {
    zube_service_flags_t service;
    const char *store;
    const char *data_dir;
    const char *policy;
    long long window;
    bool single_thread;
    int bookmark_interval_ms;
} s_options_t;

static void
s_usage (FILE *stream)
{
    fprintf (
        stream,
        "Usage: zube-apiserver (--certs DIR --name NAME | --insecure | --config FILE) "
        "[options]\n"
        "\n"
        "Serves the bus service \"api\": cluster state in a store, watch, backup.\n"
        "\n"
        "  --bus EP             broker endpoint [" ZUBE_BUS_DEFAULT_ENDPOINT "]\n"
        "  --certs DIR          certificate directory (CurveZMQ)\n"
        "  --name NAME          this peer's certificate name in DIR\n"
        "  --insecure           connect without CurveZMQ\n"
        "  --config FILE        client config (zube-config(5)): broker, certsDir, name,\n"
        "                       insecure; flags override it\n"
        "  --store URL          lmdb:DIR, redis://HOST:PORT[/DB], "
        "etcd://HOST:PORT[,...]\n"
        "                       [lmdb:DATA-DIR/store]\n"
        "  --data-dir DIR       where the default lmdb store lives [./zube-data]\n"
        "  --policy FILE        authorization policy (YAML) [built-in]\n"
        "  --window N           events kept in memory for watch [100000]\n"
        "  --bookmark-interval SECONDS  BOOKMARK events to idle watches and\n"
        "                       topics this often; 0: none [60]\n"
        "  --commit-thread on|off  commit on a thread of its own while the next\n"
        "                       batch is gathered [on]\n"
        "  --log-level LEVEL    debug, info, warn, error, off [info]\n"
        "  --version            print the version\n"
        "  --help               print this help\n");
}

static bool
s_window_valid (const char *value)
{
    char *end = NULL;
    errno = 0;
    long long window = strtoll (value, &end, 10);
    return !errno && !*end && window >= 1 && window <= 100000000;
}

static bool
s_on_off_valid (const char *value)
{
    return streq (value, "on") || streq (value, "off");
}

//  Seconds, fractions allowed (tests shorten it)
static bool
s_bookmark_interval_valid (const char *value)
{
    char *end = NULL;
    errno = 0;
    double seconds = strtod (value, &end);
    return !errno && !*end && seconds >= 0 && seconds <= 86400;
}

static int
s_options_parse (s_options_t *options, int argc, char *argv[])
{
    const char *window = NULL, *commit_thread = NULL, *bookmark_interval = NULL;
    zube_service_flags_init (&options->service, "--config");
    const zube_flag_t flags[] = {
        {.name = "--store", .value = &options->store},
        {.name = "--data-dir", .value = &options->data_dir},
        {.name = "--policy", .value = &options->policy},
        {.name = "--window",
         .value = &window,
         .valid = s_window_valid,
         .expected = "a number of events between 1 and 100000000"},
        {.name = "--commit-thread",
         .value = &commit_thread,
         .valid = s_on_off_valid,
         .expected = "on or off"},
        {.name = "--bookmark-interval",
         .value = &bookmark_interval,
         .valid = s_bookmark_interval_valid,
         .expected = "seconds between 0 and 86400"},
        {.name = NULL},
    };
    const zube_flag_t *const tables[] = {&options->service.rows[0], flags, NULL};
    int rc = zube_flags_parse ("zube-apiserver", tables, s_usage, argc, argv);
    if (rc != 0)
        return rc;
    if (window)
        options->window = strtoll (window, NULL, 10);
    if (commit_thread)
        options->single_thread = streq (commit_thread, "off");
    if (bookmark_interval) {
        double seconds = strtod (bookmark_interval, NULL);
        options->bookmark_interval_ms = seconds == 0 ? -1 : (int)(seconds * 1000 + 0.5);
        if (options->bookmark_interval_ms == 0)
            options->bookmark_interval_ms = 1;
    }
    return zube_service_flags_check (&options->service, "zube-apiserver", true, true);
}

int
main (int argc, char *argv[])
{
    zube_log_set_component ("apiserver");
    s_options_t options = {.window = 100000, .data_dir = "./zube-data"};
    int rc = s_options_parse (&options, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : S_EXIT_USAGE;
    zube_service_flags_set_log_level (&options.service);

    //  Where the broker is and who we are: the config file, then flags
    char error[2048];
    zube_config_t *config =
        zube_service_flags_client (&options.service, NULL, error, sizeof error);
    if (!config) {
        fprintf (stderr, "zube-apiserver: %s\n", error);
        return S_EXIT_USAGE;
    }
    char *store_url = NULL;
    if (options.store)
        store_url = strdup (options.store);
    else {
        if (mkdir (options.data_dir, 0700) != 0 && errno != EEXIST) {
            fprintf (stderr, "zube-apiserver: --data-dir: cannot create %s: %s\n",
                     options.data_dir, strerror (errno));
            zube_config_destroy (&config);
            return S_EXIT_START;
        }
        if (asprintf (&store_url, "lmdb:%s/store", options.data_dir) < 0)
            store_url = NULL;
    }

    //  czmq's handler turns SIGINT and SIGTERM into zsys_interrupted
    zsys_init ();
    zube_apiserver_config_t server_config = {
        .store_url = store_url,
        .policy_path = options.policy,
        .window = (size_t)options.window,
        .single_thread = options.single_thread,
        .bookmark_interval_ms = options.bookmark_interval_ms,
    };
    zube_config_bus_config (config, &server_config.bus);
    zube_apiserver_t *server = zube_apiserver_new (&server_config, error, sizeof error);
    if (!server) {
        zube_log_error ("msg=\"cannot start\" error=\"%s\"", error);
        fprintf (stderr, "zube-apiserver: %s\n", error);
        free (store_url);
        zube_config_destroy (&config);
        return S_EXIT_START;
    }
    zube_apiserver_run (server);
    zube_apiserver_destroy (&server);
    free (store_url);
    zube_config_destroy (&config);
    return 0;
}
