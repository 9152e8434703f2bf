/*  zube - a local cluster on one machine: certificates, up, down, status.

    Everything of one cluster lives under one folder (default
    ~/.zube/cluster):

        DIR/certs/        the certificate directory (zube certs create)
        DIR/zubeconfig    the client config zubectl reads (zube-config(5))
        DIR/logs/         one log file per process (broker.log)
        DIR/run/          pid files: broker.pid, and zube.pid while `zube up`
                          supervises in the foreground

    `zube up` starts the broker (later issues add the apiserver, scheduler,
    controllers and agents), waits until it answers, and either supervises
    it in the foreground (restarting it with back-off; Ctrl-C stops it) or
    leaves it running (--detach). `zube down` stops whatever `up` started. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>
#include "bus.pb-c.h"
#include "zube/zube.h"
#include "zube/bus.h"
#include "zube/certs.h"
#include "zube/config.h"
#include "zube_cli.h"

#define ZUBE_DEFAULT_PORT 7400
#define ZUBE_STOP_TIMEOUT_MS 10000
#define ZUBE_READY_TIMEOUT_MS 30000
#define ZUBE_RESTART_MIN_MS 1000
#define ZUBE_RESTART_MAX_MS 30000
//  A broker that ran this long before dying is restarted without delay.
#define ZUBE_RESTART_RESET_MS 60000

typedef struct zube_command_s zube_command_t;
typedef int (zube_handler_fn) (const zube_command_t *command, int argc, char **argv);

struct zube_command_s {
    const char *name;
    const char *summary;
    const char *usage;
    const char *description;
    zube_handler_fn *handler;
    const zube_command_t *subcommands;
};

//  Paths of one cluster.
typedef struct {
    char dir[PATH_MAX];
    char certs[PATH_MAX + 16];
    char config[PATH_MAX + 16];
    char logs[PATH_MAX + 16];
    char run[PATH_MAX + 16];
    char broker_log[PATH_MAX + 32];
    char broker_pid[PATH_MAX + 32];
    char supervisor_pid[PATH_MAX + 32];
} zube_cluster_t;

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
    zsys_interrupted = 1;
}

static void
s_catch_signals (void)
{
    //  Our own handlers, not czmq's: Ctrl-C must stop the broker we
    //  started, not only break a poll.
    zsys_handler_set (NULL);
    struct sigaction action = {.sa_handler = s_on_signal};
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGHUP, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
}

//  Sleeps up to ms, returning early on a signal.
static void
s_nap (int ms)
{
    struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000};
    nanosleep (&pause, NULL);
}

static int
s_cluster_paths (zube_cluster_t *cluster, const char *dir, bool create)
{
    char home_dir[PATH_MAX];
    if (!dir) {
        const char *home = getenv ("HOME");
        if (!home || !*home) {
            zube_cli_error ("$HOME is not set: name the cluster folder with --dir DIR");
            return -1;
        }
        snprintf (home_dir, sizeof home_dir, "%s/.zube/cluster", home);
        dir = home_dir;
    }
    if (create && zube_cli_mkdir_p (dir, 0755) != 0) {
        zube_cli_error ("cannot create %s: %s", dir, strerror (errno));
        return -1;
    }
    //  Absolute, so the commands we print work from any folder.
    if (!realpath (dir, cluster->dir))
        snprintf (cluster->dir, sizeof cluster->dir, "%s", dir);
    snprintf (cluster->certs, sizeof cluster->certs, "%s/certs", cluster->dir);
    snprintf (cluster->config, sizeof cluster->config, "%s/zubeconfig", cluster->dir);
    snprintf (cluster->logs, sizeof cluster->logs, "%s/logs", cluster->dir);
    snprintf (cluster->run, sizeof cluster->run, "%s/run", cluster->dir);
    snprintf (cluster->broker_log, sizeof cluster->broker_log, "%s/broker.log", cluster->logs);
    snprintf (cluster->broker_pid, sizeof cluster->broker_pid, "%s/broker.pid", cluster->run);
    snprintf (cluster->supervisor_pid, sizeof cluster->supervisor_pid, "%s/zube.pid",
              cluster->run);
    if (create
        && (zube_cli_mkdir_p (cluster->logs, 0755) != 0
            || zube_cli_mkdir_p (cluster->run, 0755) != 0)) {
        zube_cli_error ("cannot create %s/{logs,run}: %s", cluster->dir, strerror (errno));
        return -1;
    }
    return 0;
}

//  The pid in a pid file if that process still runs (and is what the file
//  says it is), else -1.
static pid_t
s_running (const char *pid_path, const char *needle)
{
    pid_t pid = zube_cli_pidfile_read (pid_path);
    return zube_cli_process_alive (pid, needle) ? pid : -1;
}

//  One round trip to bus/ping with the cluster's client config; the
//  round trip time in *rtt_ms.
static int
s_ping (zube_bus_t *bus, int timeout_ms, double *rtt_ms)
{
    Zube__BusEcho echo = ZUBE__BUS_ECHO__INIT;
    uint8_t packed[32];
    size_t size = zube__bus_echo__pack (&echo, packed);
    zube_bus_reply_t *reply = NULL;
    int64_t start = zube_cli_now_ns ();
    int rc = zube_bus_call (bus, "bus", "ping", packed, size, timeout_ms, &reply);
    if (rtt_ms)
        *rtt_ms = (zube_cli_now_ns () - start) / 1e6;
    if (rc == 0 && reply->status != ZUBE_OK)
        rc = -1;
    zube_bus_reply_destroy (&reply);
    return rc;
}

static zube_bus_t *
s_connect (const char *config_path, zube_config_t **config_p)
{
    char error[1024];
    zube_config_t *config = zube_config_load (config_path, error, sizeof error);
    if (!config || zube_config_check (config, error, sizeof error) != 0) {
        zube_cli_error ("%s", error);
        zube_config_destroy (&config);
        return NULL;
    }
    zube_bus_config_t bus_config;
    zube_config_bus_config (config, &bus_config);
    zube_bus_t *bus = zube_bus_new (&bus_config);
    if (!bus) {
        zube_cli_error ("cannot open a connection to %s", bus_config.endpoint);
        zube_config_destroy (&config);
        return NULL;
    }
    *config_p = config;
    return bus;
}

static void
s_print_log_tail (const char *path, int lines)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return;
    char *ring[64] = {0};
    int count = 0;
    char line[1024];
    while (fgets (line, sizeof line, file)) {
        free (ring[count % 64]);
        ring[count % 64] = strdup (line);
        count++;
    }
    fclose (file);
    int first = count > lines ? count - lines : 0;
    if (count)
        fprintf (stderr, "%s ends with:\n", path);
    for (int i = first; i < count; i++)
        fprintf (stderr, "  %s", ring[i % 64]);
    for (int i = 0; i < 64; i++)
        free (ring[i]);
}

static const char *
s_broker_program (char *buf, size_t size)
{
    const char *path = zube_cli_sibling_program ("zube-broker", buf, size);
    return path ? path : "zube-broker";
}

static pid_t
s_start_broker (zube_cluster_t *cluster, const char *program, int port, bool insecure)
{
    char bind[64];
    snprintf (bind, sizeof bind, "tcp://127.0.0.1:%d", port);
    char *argv[8];
    int argc = 0;
    argv[argc++] = (char *) program;
    argv[argc++] = "--bind";
    argv[argc++] = bind;
    if (insecure)
        argv[argc++] = "--insecure";
    else {
        argv[argc++] = "--certs";
        argv[argc++] = cluster->certs;
    }
    argv[argc] = NULL;
    pid_t pid = zube_cli_spawn (argv, cluster->broker_log);
    if (pid < 0)
        zube_cli_error ("cannot start %s: %s%s", program, strerror (errno),
                        strchr (program, '/') ? "" : " (not beside zube, nor in $PATH)");
    else
    if (zube_cli_pidfile_write (cluster->broker_pid, pid) != 0)
        fprintf (stderr, "zube: warning: cannot write %s: %s\n", cluster->broker_pid,
                 strerror (errno));
    return pid;
}

//  Waits until the broker answers a ping. 0, or -1 (it died, or did not
//  answer in time, or we were interrupted).
static int
s_wait_ready (zube_cluster_t *cluster, pid_t pid)
{
    zube_config_t *config = NULL;
    zube_bus_t *bus = s_connect (cluster->config, &config);
    if (!bus)
        return -1;
    int rc = -1;
    int64_t deadline = zube_cli_now_ns () + (int64_t) ZUBE_READY_TIMEOUT_MS * 1000000;
    while (!s_stop && zube_cli_now_ns () < deadline) {
        if (!zube_cli_process_alive (pid, NULL)) {
            int status = 0;
            waitpid (pid, &status, WNOHANG);
            zube_cli_error ("zube-broker exited during start-up");
            s_print_log_tail (cluster->broker_log, 12);
            break;
        }
        if (s_ping (bus, 500, NULL) == 0) {
            rc = 0;
            break;
        }
    }
    if (rc != 0 && !s_stop && zube_cli_process_alive (pid, NULL)) {
        zube_cli_error ("zube-broker (pid %d) did not answer within %d s", (int) pid,
                        ZUBE_READY_TIMEOUT_MS / 1000);
        s_print_log_tail (cluster->broker_log, 12);
    }
    zube_bus_destroy (&bus);
    zube_config_destroy (&config);
    return rc;
}

static void
s_stop_broker (zube_cluster_t *cluster, pid_t pid)
{
    if (pid > 0 && zube_cli_process_stop (pid, ZUBE_STOP_TIMEOUT_MS) != 0)
        fprintf (stderr, "zube: warning: broker pid %d survived SIGKILL\n", (int) pid);
    unlink (cluster->broker_pid);
}

//  Foreground: restart the broker with back-off whenever it dies, until a
//  signal; then stop it.
static int
s_supervise (zube_cluster_t *cluster, const char *program, pid_t pid, int port, bool insecure)
{
    if (zube_cli_pidfile_write (cluster->supervisor_pid, getpid ()) != 0)
        fprintf (stderr, "zube: warning: cannot write %s: %s\n", cluster->supervisor_pid,
                 strerror (errno));
    int backoff_ms = ZUBE_RESTART_MIN_MS;
    int64_t started = zube_cli_now_ns ();
    while (!s_stop) {
        int status = 0;
        pid_t done = pid > 0 ? waitpid (pid, &status, WNOHANG) : -1;
        if (pid > 0 && done == 0) {
            s_nap (200);
            continue;
        }
        int64_t ran_ms = (zube_cli_now_ns () - started) / 1000000;
        if (ran_ms >= ZUBE_RESTART_RESET_MS)
            backoff_ms = ZUBE_RESTART_MIN_MS;
        if (pid > 0) {
            if (WIFSIGNALED (status))
                printf ("zube: broker (pid %d) killed by signal %d after %.1f s; restarting in %.1f s\n",
                        (int) pid, WTERMSIG (status), ran_ms / 1000.0, backoff_ms / 1000.0);
            else
                printf ("zube: broker (pid %d) exited with status %d after %.1f s; restarting in %.1f s\n",
                        (int) pid, WEXITSTATUS (status), ran_ms / 1000.0, backoff_ms / 1000.0);
            fflush (stdout);
        }
        for (int waited = 0; waited < backoff_ms && !s_stop; waited += 100)
            s_nap (100);
        if (s_stop) {
            pid = -1;
            break;
        }
        backoff_ms = backoff_ms * 2 > ZUBE_RESTART_MAX_MS ? ZUBE_RESTART_MAX_MS : backoff_ms * 2;
        started = zube_cli_now_ns ();
        pid = s_start_broker (cluster, program, port, insecure);
        if (pid > 0) {
            printf ("zube: broker restarted (pid %d)\n", (int) pid);
            fflush (stdout);
        }
    }
    printf ("\nzube: stopping the broker%s\n", pid > 0 ? "" : " (not running)");
    fflush (stdout);
    s_stop_broker (cluster, pid);
    unlink (cluster->supervisor_pid);
    printf ("zube: stopped\n");
    return 0;
}

static int
s_write_client_config (zube_cluster_t *cluster, int port, bool insecure)
{
    zube_config_t *config = zube_config_new ();
    char endpoint[64], error[1024];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    zube_config_set_broker (config, endpoint);
    zube_config_set_insecure (config, insecure);
    if (!insecure) {
        //  Relative, so the folder can be moved or mounted elsewhere.
        zube_config_set_certs_dir (config, "certs");
        zube_config_set_name (config, "admin");
    }
    int rc = zube_config_save (config, cluster->config, error, sizeof error);
    if (rc != 0)
        zube_cli_error ("%s", error);
    zube_config_destroy (&config);
    return rc;
}

static int
s_create_certs (const char *dir, const char *name)
{
    char error[1024];
    if (zube_certs_create (dir, name, error, sizeof error) != 0) {
        zube_cli_error ("cannot create the certificate \"%s\" in %s: %s", name, dir, error);
        return -1;
    }
    return 0;
}

//  Prints the usage of a command and its flags.
static void
s_command_help (const zube_command_t *command, const zube_cli_flag_t *flags)
{
    printf ("%s.\n", command->summary);
    if (command->description)
        printf ("\n%s\n", command->description);
    printf ("\nUsage:\n  zube %s\n", command->usage);
    if (flags) {
        const zube_cli_flag_t *tables[] = {flags, NULL};
        zube_cli_print_flags (stdout, "Flags", tables);
    }
}

//  Parses a command's flags; ZUBE_CLI_HELP after printing its help.
static int
s_parse (const zube_command_t *command, const char *path, const zube_cli_flag_t *flags,
         int argc, char **argv, char **positional)
{
    const zube_cli_flag_t *tables[] = {flags, NULL};
    int count = zube_cli_parse (path, tables, argc, argv, positional, false);
    if (count == ZUBE_CLI_HELP)
        s_command_help (command, flags);
    return count;
}

static int
s_up (const zube_command_t *command, int argc, char **argv)
{
    const char *dir = NULL;
    bool detach = false, insecure = false;
    long port = ZUBE_DEFAULT_PORT;
    zube_cli_flag_t flags[] = {
        {.name = "dir", .type = ZUBE_CLI_STRING, .value = &dir, .value_name = "DIR",
         .help = "The cluster's folder (default ~/.zube/cluster)"},
        {.name = "detach", .short_name = 'd', .type = ZUBE_CLI_BOOL, .value = &detach,
         .help = "Leave the cluster running in the background and return"},
        {.name = "insecure", .type = ZUBE_CLI_BOOL, .value = &insecure,
         .help = "Run the bus without CurveZMQ (no certificates)"},
        {.name = "port", .short_name = 'p', .type = ZUBE_CLI_INT, .value = &port,
         .value_name = "PORT",
         .help = "Broker port on 127.0.0.1 (default 7400; events use PORT+1 and PORT+2)"},
        {0}};
    char *args[argc + 1];
    int count = s_parse (command, "zube up", flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\"", args[0]);
        return 1;
    }
    if (port < 1 || port > 65533) {
        zube_cli_error ("--port must be between 1 and 65533");
        return 1;
    }
    zube_cluster_t cluster;
    if (s_cluster_paths (&cluster, dir, true) != 0)
        return 1;
    pid_t running = s_running (cluster.supervisor_pid, "zube");
    if (running < 0)
        running = s_running (cluster.broker_pid, "zube-broker");
    if (running > 0) {
        zube_cli_error ("a cluster already runs in %s (pid %d): stop it with "
                        "\"zube down --dir %s\"", cluster.dir, (int) running, cluster.dir);
        return 1;
    }
    if (!insecure
        && (s_create_certs (cluster.certs, "broker") != 0
            || s_create_certs (cluster.certs, "admin") != 0))
        return 1;
    if (s_write_client_config (&cluster, (int) port, insecure) != 0)
        return 1;

    char program_buf[PATH_MAX];
    const char *program = s_broker_program (program_buf, sizeof program_buf);
    pid_t pid = s_start_broker (&cluster, program, (int) port, insecure);
    if (pid < 0)
        return 1;
    if (s_wait_ready (&cluster, pid) != 0) {
        s_stop_broker (&cluster, pid);
        return 1;
    }
    printf ("zube: broker running (pid %d) at tcp://127.0.0.1:%ld, %s\n", (int) pid, port,
            insecure ? "insecure" : "secure (CurveZMQ)");
    printf ("  cluster folder: %s\n", cluster.dir);
    printf ("  client config:  %s\n", cluster.config);
    printf ("  broker log:     %s\n", cluster.broker_log);
    printf ("\nTry:\n  zubectl --config %s bus services\n", cluster.config);
    if (detach) {
        printf ("Stop it with:\n  zube down --dir %s\n", cluster.dir);
        return 0;
    }
    printf ("Stop it with Ctrl-C here, or \"zube down --dir %s\".\n\n", cluster.dir);
    fflush (stdout);
    char program_copy[PATH_MAX];
    snprintf (program_copy, sizeof program_copy, "%s", program);
    return s_supervise (&cluster, program_copy, pid, (int) port, insecure);
}

static int
s_down (const zube_command_t *command, int argc, char **argv)
{
    const char *dir = NULL;
    zube_cli_flag_t flags[] = {
        {.name = "dir", .type = ZUBE_CLI_STRING, .value = &dir, .value_name = "DIR",
         .help = "The cluster's folder (default ~/.zube/cluster)"},
        {0}};
    char *args[argc + 1];
    int count = s_parse (command, "zube down", flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\"", args[0]);
        return 1;
    }
    zube_cluster_t cluster;
    if (s_cluster_paths (&cluster, dir, false) != 0)
        return 1;
    bool stopped_any = false;
    int rc = 0;
    //  A supervisor first, or it would restart the broker we stop.
    pid_t supervisor = s_running (cluster.supervisor_pid, "zube");
    if (supervisor > 0) {
        printf ("zube: stopping the supervisor (pid %d)\n", (int) supervisor);
        if (zube_cli_process_stop (supervisor, ZUBE_STOP_TIMEOUT_MS + 5000) != 0) {
            zube_cli_error ("the supervisor (pid %d) did not stop", (int) supervisor);
            rc = 1;
        }
        stopped_any = true;
    }
    unlink (cluster.supervisor_pid);
    pid_t broker = s_running (cluster.broker_pid, "zube-broker");
    if (broker > 0) {
        printf ("zube: stopping the broker (pid %d)\n", (int) broker);
        if (zube_cli_process_stop (broker, ZUBE_STOP_TIMEOUT_MS) != 0) {
            zube_cli_error ("the broker (pid %d) did not stop", (int) broker);
            rc = 1;
        }
        stopped_any = true;
    }
    unlink (cluster.broker_pid);
    if (!stopped_any)
        printf ("zube: nothing runs in %s\n", cluster.dir);
    else
    if (rc == 0)
        printf ("zube: stopped\n");
    return rc;
}

static int
s_status (const zube_command_t *command, int argc, char **argv)
{
    const char *dir = NULL;
    zube_cli_flag_t flags[] = {
        {.name = "dir", .type = ZUBE_CLI_STRING, .value = &dir, .value_name = "DIR",
         .help = "The cluster's folder (default ~/.zube/cluster)"},
        {0}};
    char *args[argc + 1];
    int count = s_parse (command, "zube status", flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\"", args[0]);
        return 1;
    }
    zube_cluster_t cluster;
    if (s_cluster_paths (&cluster, dir, false) != 0)
        return 1;
    printf ("Cluster folder: %s\n", cluster.dir);
    zube_cli_table_t *table = zube_cli_table_new (3);
    zube_cli_table_addv (table, "COMPONENT", "PID", "STATUS");
    pid_t supervisor = s_running (cluster.supervisor_pid, "zube");
    pid_t broker = s_running (cluster.broker_pid, "zube-broker");
    char pid_text[32], status_text[512];
    if (supervisor > 0) {
        snprintf (pid_text, sizeof pid_text, "%d", (int) supervisor);
        zube_cli_table_addv (table, "supervisor", pid_text, "running (zube up in the foreground)");
    }
    bool healthy = false;
    if (broker > 0) {
        snprintf (pid_text, sizeof pid_text, "%d", (int) broker);
        zube_config_t *config = NULL;
        //  Quiet: an unreachable broker is reported in the table.
        zube_log_level_t level = zube_log_get_level ();
        zube_log_set_level (ZUBE_LOG_OFF);
        zube_bus_t *bus = access (cluster.config, R_OK) == 0 ? s_connect (cluster.config, &config)
                                                               : NULL;
        double rtt_ms = 0;
        if (bus && s_ping (bus, 2000, &rtt_ms) == 0) {
            snprintf (status_text, sizeof status_text, "running, answers at %s (%.2f ms)",
                      zube_config_broker (config), rtt_ms);
            healthy = true;
        }
        else
            snprintf (status_text, sizeof status_text, "running, but does not answer at %s",
                      config ? zube_config_broker (config) : "(no client config)");
        zube_log_set_level (level);
        zube_bus_destroy (&bus);
        zube_config_destroy (&config);
        zube_cli_table_addv (table, "broker", pid_text, status_text);
    }
    else
        zube_cli_table_addv (table, "broker", "-", "stopped");
    zube_cli_table_print (table, stdout);
    zube_cli_table_destroy (&table);
    if (healthy)
        printf ("\nClient config: %s\n", cluster.config);
    return healthy ? 0 : 1;
}

static int
s_certs_create (const zube_command_t *command, int argc, char **argv)
{
    const char *dir = NULL;
    zube_cli_flag_t flags[] = {
        {.name = "dir", .type = ZUBE_CLI_STRING, .value = &dir, .value_name = "DIR",
         .help = "The certificate directory (default ~/.zube/cluster/certs)"},
        {0}};
    char *args[argc + 1];
    int count = s_parse (command, "zube certs create", flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    char default_dir[PATH_MAX];
    if (!dir) {
        const char *home = getenv ("HOME");
        if (!home || !*home) {
            zube_cli_error ("$HOME is not set: name the directory with --dir DIR");
            return 1;
        }
        snprintf (default_dir, sizeof default_dir, "%s/.zube/cluster/certs", home);
        dir = default_dir;
    }
    for (int i = 0; i < count; i++)
        if (!zube_certs_name_valid (args[i])) {
            zube_cli_error ("\"%s\" is not a valid certificate name (lower-case letters, digits, "
                            "'.', '-' and '_', at most 253 characters)", args[i]);
            return 1;
        }
    //  The broker's certificate always, then the peers named.
    if (s_create_certs (dir, "broker") != 0)
        return 1;
    char path[PATH_MAX + 64], secret[PATH_MAX + 64];
    printf ("broker: %s\n", zube_certs_public_path (dir, "broker", path, sizeof path));
    for (int i = 0; i < count; i++) {
        if (strcmp (args[i], "broker") == 0)
            continue;
        if (s_create_certs (dir, args[i]) != 0)
            return 1;
        printf ("%s: %s (secret: %s)\n", args[i],
                zube_certs_public_path (dir, args[i], path, sizeof path),
                zube_certs_secret_path (dir, args[i], secret, sizeof secret));
    }
    return 0;
}

static const zube_command_t s_certs_commands[] = {
    {.name = "create",
     .summary = "Create the broker's certificate and those of the peers named",
     .usage = "certs create [--dir DIR] NAME...",
     .description = "Creates DIR (and public/, private/) if needed, the broker's keypair, and one\n"
                    "keypair per NAME. An existing certificate is kept.",
     .handler = s_certs_create},
    {0}};

static const zube_command_t s_commands[] = {
    {.name = "up",
     .summary = "Start a local cluster and supervise it (or leave it running with --detach)",
     .usage = "up [--dir DIR] [--detach] [--insecure] [--port PORT]",
     .description = "Creates DIR, the certificates (broker, admin) and the client config\n"
                    "DIR/zubeconfig, starts zube-broker with its log in DIR/logs, and waits\n"
                    "until it answers. In the foreground it restarts the broker with back-off\n"
                    "when it dies, until Ctrl-C; with --detach it returns and leaves the\n"
                    "broker's pid in DIR/run/broker.pid.",
     .handler = s_up},
    {.name = "down",
     .summary = "Stop what \"zube up\" started",
     .usage = "down [--dir DIR]",
     .description = "Stops the supervisor and the broker (SIGTERM, then SIGKILL after 10 s)\n"
                    "and removes their pid files. Nothing running is not an error.",
     .handler = s_down},
    {.name = "status",
     .summary = "Show what runs in a local cluster",
     .usage = "status [--dir DIR]",
     .description = "Lists the cluster's processes and pings the broker. Exits 0 when the\n"
                    "broker runs and answers, 1 otherwise.",
     .handler = s_status},
    {.name = "certs",
     .summary = "Manage the cluster's certificates",
     .usage = "certs create [--dir DIR] NAME...",
     .subcommands = s_certs_commands},
    {0}};

static void
s_print_commands (const char *title, const zube_command_t *commands)
{
    printf ("\n%s:\n", title);
    for (const zube_command_t *command = commands; command->name; command++)
        printf ("  %-8s %s\n", command->name, command->summary);
}

static void
s_top_help (void)
{
    printf ("zube runs a zube cluster on this machine: all its processes, with everything\n"
            "they keep under one folder (default ~/.zube/cluster). See zube(1), zube(7).\n");
    s_print_commands ("Commands", s_commands);
    printf ("\nUsage:\n  zube COMMAND [flags]\n\n"
            "Use \"zube COMMAND --help\" for more information about a command.\n");
}

static int
s_dispatch (const zube_command_t *commands, const char *parent, int argc, char **argv)
{
    const zube_command_t *command = NULL;
    for (const zube_command_t *c = commands; c->name; c++)
        if (strcmp (c->name, argv[0]) == 0)
            command = c;
    if (!command) {
        zube_cli_error ("unknown command \"%s\" for \"%s\"", argv[0], parent);
        fprintf (stderr, "Run '%s --help' for usage.\n", parent);
        return 1;
    }
    if (command->handler)
        return command->handler (command, argc - 1, argv + 1);
    char path[128];
    snprintf (path, sizeof path, "%s %s", parent, command->name);
    if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
        || strcmp (argv[1], "help") == 0) {
        printf ("%s.\n\nUsage:\n  zube %s\n", command->summary, command->usage);
        s_print_commands ("Commands", command->subcommands);
        return argc < 2 ? 1 : 0;
    }
    return s_dispatch (command->subcommands, path, argc - 1, argv + 1);
}

int
main (int argc, char **argv)
{
    zube_log_set_component ("zube");
    const char *level = getenv ("ZUBE_LOG_LEVEL");
    int parsed = level ? zube_log_level_parse (level) : -1;
    zube_log_set_level (parsed >= 0 ? (zube_log_level_t) parsed : ZUBE_LOG_ERROR);
    s_catch_signals ();
    if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
        || strcmp (argv[1], "help") == 0) {
        s_top_help ();
        return argc < 2 ? 1 : 0;
    }
    if (strcmp (argv[1], "version") == 0 || strcmp (argv[1], "--version") == 0) {
        printf ("zube %s\n", ZUBE_VERSION_STRING);
        return 0;
    }
    return s_dispatch (s_commands, "zube", argc - 1, argv + 1) ? 1 : 0;
}
