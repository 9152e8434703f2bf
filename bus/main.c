/*  zube-broker - the zube bus broker.

    Parses flags, loads the YAML config (flags override it), starts the
    broker, runs it until SIGINT or SIGTERM, tears it down. Exit codes:
    0 after a clean shutdown, 1 for bad flags or config, 2 when an endpoint
    cannot be bound.
*/
#define _GNU_SOURCE
#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "zube_broker.h"
#include "zube/bus.h"
#include "zube/log.h"
#include "zube/version.h"

#define S_EXIT_USAGE 1
#define S_EXIT_BIND 2

//  Everything the flags and the config file can set. Strings are owned.
typedef struct {
    char *bind;
    char *publish_bind;
    char *events_bind;
    char *certs;
    bool insecure;
    long heartbeat_ms;
    long long max_message_size;
    long hwm;
    long long max_waiting;
    long cpu;                   //  -1: not pinned
    char *log_level;
} s_options_t;

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "Usage: zube-broker --bind ENDPOINT (--certs DIR | --insecure) [options]\n"
        "\n"
        "Routes zube bus requests to services and fans out events.\n"
        "\n"
        "  --bind EP               request endpoint (ROUTER) [" ZUBE_BUS_DEFAULT_ENDPOINT "]\n"
        "  --publish-bind EP       where publishers connect (XSUB) [request port + 1]\n"
        "  --events-bind EP        where subscribers connect (XPUB) [request port + 2]\n"
        "  --certs DIR             CurveZMQ: admit only the keys in DIR/public\n"
        "  --insecure              no authentication, every sender is \"anonymous\"\n"
        "  --heartbeat MS          heartbeat interval [1000]\n"
        "  --max-message-size N    largest frame in bytes [4194304]\n"
        "  --hwm N                 send and receive high-water marks [100000]\n"
        "  --max-waiting N         requests waiting per service without instance [10000]\n"
        "  --cpu N                 run the broker's threads on CPU N only [any CPU]\n"
        "  --config FILE           YAML config (bind, publishBind, eventsBind, certs,\n"
        "                          insecure, heartbeatMs, maxMessageSize, hwm,\n"
        "                          maxWaiting, cpu, logLevel); flags override it\n"
        "  --log-level LEVEL       debug, info, warn, error, off [info]\n"
        "  --version               print the version\n"
        "  --help                  print this help\n");
}

static bool
s_parse_long (const char *text, long long min, long long max, long long *value)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll (text, &end, 10);
    if (errno || *end || parsed < min || parsed > max)
        return false;
    *value = parsed;
    return true;
}

static bool
s_parse_bool (const char *text, bool *value)
{
    const char *yes [] = {"true", "True", "TRUE", "yes", "on", "1"};
    const char *no [] = {"false", "False", "FALSE", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes [0]; i++) {
        if (streq (text, yes [i])) {
            *value = true;
            return true;
        }
        if (streq (text, no [i])) {
            *value = false;
            return true;
        }
    }
    return false;
}

static void
s_set_string (char **field, const char *value)
{
    free (*field);
    *field = value ? strdup (value) : NULL;
}

//  Applies one setting, from a flag (name "--bind") or the config file
//  (name "bind"); prints an error naming it and returns -1 when invalid.
static int
s_option_set (s_options_t *options, const char *key, const char *shown, const char *value)
{
    long long number;
    if (streq (key, "bind"))
        s_set_string (&options->bind, value);
    else
    if (streq (key, "publishBind"))
        s_set_string (&options->publish_bind, value);
    else
    if (streq (key, "eventsBind"))
        s_set_string (&options->events_bind, value);
    else
    if (streq (key, "certs"))
        s_set_string (&options->certs, value);
    else
    if (streq (key, "insecure")) {
        if (!s_parse_bool (value, &options->insecure)) {
            fprintf (stderr, "zube-broker: %s: expected true or false, got \"%s\"\n", shown, value);
            return -1;
        }
    }
    else
    if (streq (key, "heartbeatMs")) {
        if (!s_parse_long (value, 10, 600000, &number)) {
            fprintf (stderr, "zube-broker: %s: expected milliseconds between 10 and 600000, "
                     "got \"%s\"\n", shown, value);
            return -1;
        }
        options->heartbeat_ms = number;
    }
    else
    if (streq (key, "maxMessageSize")) {
        if (!s_parse_long (value, 1024, 1LL << 30, &number)) {
            fprintf (stderr, "zube-broker: %s: expected bytes between 1024 and 1073741824, "
                     "got \"%s\"\n", shown, value);
            return -1;
        }
        options->max_message_size = number;
    }
    else
    if (streq (key, "hwm")) {
        if (!s_parse_long (value, 1, INT_MAX, &number)) {
            fprintf (stderr, "zube-broker: %s: expected a positive number of messages, "
                     "got \"%s\"\n", shown, value);
            return -1;
        }
        options->hwm = number;
    }
    else
    if (streq (key, "maxWaiting")) {
        if (!s_parse_long (value, 1, 100000000, &number)) {
            fprintf (stderr, "zube-broker: %s: expected a positive number of requests, "
                     "got \"%s\"\n", shown, value);
            return -1;
        }
        options->max_waiting = number;
    }
    else
    if (streq (key, "cpu")) {
        cpu_set_t allowed;
        if (!s_parse_long (value, 0, CPU_SETSIZE - 1, &number)
            || sched_getaffinity (0, sizeof allowed, &allowed) != 0
            || !CPU_ISSET ((int) number, &allowed)) {
            fprintf (stderr, "zube-broker: %s: expected the number of a CPU this process may "
                     "run on (0..%ld here), got \"%s\"\n", shown,
                     sysconf (_SC_NPROCESSORS_ONLN) - 1, value);
            return -1;
        }
        options->cpu = number;
    }
    else
    if (streq (key, "logLevel")) {
        if (zube_log_level_parse (value) < 0) {
            fprintf (stderr, "zube-broker: %s: expected debug, info, warn, error or off, "
                     "got \"%s\"\n", shown, value);
            return -1;
        }
        s_set_string (&options->log_level, value);
    }
    else {
        fprintf (stderr, "zube-broker: unknown %s \"%s\"\n",
                 *shown == '-' ? "flag" : "config key", shown);
        return -1;
    }
    return 0;
}

//  The config file is one flat YAML mapping of scalars.
static int
s_config_load (s_options_t *options, const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "zube-broker: --config: cannot read %s: %s\n", path, strerror (errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_parser_initialize (&parser);
    yaml_parser_set_input_file (&parser, file);
    int rc = 0, depth = 0;
    char *key = NULL;
    bool done = false;
    while (!done && rc == 0) {
        yaml_event_t event;
        if (!yaml_parser_parse (&parser, &event)) {
            fprintf (stderr, "zube-broker: --config: %s: %s at line %zu\n", path,
                     parser.problem ? parser.problem : "invalid YAML",
                     parser.problem_mark.line + 1);
            rc = -1;
            break;
        }
        switch (event.type) {
            case YAML_STREAM_END_EVENT:
                done = true;
                break;
            case YAML_MAPPING_START_EVENT:
                if (++depth > 1) {
                    fprintf (stderr, "zube-broker: --config: %s: key \"%s\" must be a "
                             "scalar\n", path, key ? key : "");
                    rc = -1;
                }
                break;
            case YAML_MAPPING_END_EVENT:
                depth--;
                break;
            case YAML_SEQUENCE_START_EVENT:
                fprintf (stderr, "zube-broker: --config: %s: key \"%s\" must be a scalar\n",
                         path, key ? key : "");
                rc = -1;
                break;
            case YAML_SCALAR_EVENT: {
                const char *text = (const char *) event.data.scalar.value;
                if (depth != 1) {
                    if (*text) {
                        fprintf (stderr, "zube-broker: --config: %s: expected a mapping "
                                 "of settings\n", path);
                        rc = -1;
                    }
                }
                else
                if (!key)
                    key = strdup (text);
                else {
                    char shown [300];
                    snprintf (shown, sizeof shown, "%s (in %s)", key, path);
                    //  A null scalar (`key:` or `key: ~`) leaves the default
                    bool null_value = !*text || streq (text, "~") || streq (text, "null");
                    if (!null_value && s_option_set (options, key, shown, text) != 0)
                        rc = -1;
                    zstr_free (&key);
                }
                break;
            }
            default:
                break;
        }
        yaml_event_delete (&event);
    }
    zstr_free (&key);
    yaml_parser_delete (&parser);
    fclose (file);
    return rc;
}

static const struct {
    const char *flag;
    const char *key;
} s_flags [] = {
    {"--bind", "bind"},
    {"--publish-bind", "publishBind"},
    {"--events-bind", "eventsBind"},
    {"--certs", "certs"},
    {"--heartbeat", "heartbeatMs"},
    {"--max-message-size", "maxMessageSize"},
    {"--hwm", "hwm"},
    {"--max-waiting", "maxWaiting"},
    {"--cpu", "cpu"},
    {"--log-level", "logLevel"},
    {"--config", NULL},
};

static void
s_options_free (s_options_t *options)
{
    free (options->bind);
    free (options->publish_bind);
    free (options->events_bind);
    free (options->certs);
    free (options->log_level);
}

//  Returns -1 after printing an error, 0 to run, 1 when --help or
//  --version was answered.
static int
s_options_parse (s_options_t *options, int argc, char *argv [])
{
    //  First pass: --help, --version and --config, so flags can override
    //  the file whatever their order
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            s_usage (stdout);
            return 1;
        }
        if (streq (argv [i], "--version")) {
            printf ("zube-broker %s\n", ZUBE_VERSION_STRING);
            return 1;
        }
        if (streq (argv [i], "--config") && i + 1 < argc)
            config = argv [i + 1];
        else
        if (strncmp (argv [i], "--config=", 9) == 0)
            config = argv [i] + 9;
    }
    if (config && s_config_load (options, config) != 0)
        return -1;

    bool flag_certs = false, flag_insecure = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        if (streq (arg, "--insecure")) {
            flag_insecure = true;
            continue;
        }
        const char *equals = strchr (arg, '=');
        size_t name_size = equals ? (size_t) (equals - arg) : strlen (arg);
        size_t index;
        for (index = 0; index < sizeof s_flags / sizeof s_flags [0]; index++)
            if (strlen (s_flags [index].flag) == name_size
                && strncmp (s_flags [index].flag, arg, name_size) == 0)
                break;
        if (index == sizeof s_flags / sizeof s_flags [0]) {
            fprintf (stderr, "zube-broker: unknown flag \"%s\" (see --help)\n", arg);
            return -1;
        }
        const char *value = equals ? equals + 1 : (i + 1 < argc ? argv [++i] : NULL);
        if (!value) {
            fprintf (stderr, "zube-broker: %s needs a value\n", s_flags [index].flag);
            return -1;
        }
        if (!s_flags [index].key)
            continue;           //  --config, loaded above
        if (streq (s_flags [index].flag, "--certs"))
            flag_certs = true;
        if (s_option_set (options, s_flags [index].key, s_flags [index].flag, value) != 0)
            return -1;
    }
    if (flag_certs && flag_insecure) {
        fprintf (stderr, "zube-broker: --certs and --insecure exclude each other\n");
        return -1;
    }
    //  A flag overrides the config file's choice of security
    if (flag_insecure) {
        s_set_string (&options->certs, NULL);
        options->insecure = true;
    }
    if (flag_certs)
        options->insecure = false;
    if (options->certs && options->insecure) {
        fprintf (stderr, "zube-broker: certs and insecure exclude each other (in %s)\n",
                 config ? config : "flags");
        return -1;
    }
    if (!options->certs && !options->insecure) {
        fprintf (stderr, "zube-broker: one of --certs DIR or --insecure is required\n");
        return -1;
    }
    return 0;
}

int
main (int argc, char *argv [])
{
    zube_log_set_component ("broker");
    s_options_t options = {.cpu = -1};
    int rc = s_options_parse (&options, argc, argv);
    if (rc != 0) {
        s_options_free (&options);
        return rc > 0 ? 0 : S_EXIT_USAGE;
    }
    if (options.log_level)
        zube_log_set_level ((zube_log_level_t) zube_log_level_parse (options.log_level));

    //  The broker's I/O thread does the TCP work for both ends of every
    //  request and is its busiest thread: with cores to spare, a second
    //  one takes half the connections (not with --cpu, where both would
    //  share one CPU). ZSYS_IO_THREADS still decides.
    if (!getenv ("ZSYS_IO_THREADS") && options.cpu < 0 && sysconf (_SC_NPROCESSORS_ONLN) >= 4)
        zsys_set_io_threads (2);
    //  With --cpu the main thread and libzmq's I/O threads share one CPU:
    //  every message crosses from one to the other, and on the same CPU
    //  that is a context switch, not a wake-up of another (idle) CPU.
    //  Set before the first socket, which starts the I/O threads.
    if (options.cpu >= 0) {
        cpu_set_t only;
        CPU_ZERO (&only);
        CPU_SET ((int) options.cpu, &only);
        if (sched_setaffinity (0, sizeof only, &only) != 0) {
            fprintf (stderr, "zube-broker: --cpu %ld: %s\n", options.cpu, strerror (errno));
            s_options_free (&options);
            return S_EXIT_USAGE;
        }
        zsys_thread_affinity_cpu_add ((int) options.cpu);
    }
    //  czmq's handler turns SIGINT and SIGTERM into zsys_interrupted
    zsys_init ();
    zube_broker_config_t config = {
        .bind = options.bind,
        .publish_bind = options.publish_bind,
        .events_bind = options.events_bind,
        .certs_dir = options.certs,
        .insecure = options.insecure,
        .heartbeat_ms = (int) options.heartbeat_ms,
        .max_message_size = (size_t) options.max_message_size,
        .hwm = (int) options.hwm,
        .max_waiting = (size_t) options.max_waiting,
    };
    zube_broker_t *broker = zube_broker_new (&config);
    if (!broker) {
        s_options_free (&options);
        return S_EXIT_USAGE;
    }
    char error [1024];
    if (zube_broker_bind (broker, error, sizeof error) != 0) {
        zube_log_error ("msg=\"%s\"", error);
        fprintf (stderr, "zube-broker: %s\n", error);
        zube_broker_destroy (&broker);
        s_options_free (&options);
        return S_EXIT_BIND;
    }
    zube_broker_run (broker);
    zube_broker_destroy (&broker);
    s_options_free (&options);
    return 0;
}
