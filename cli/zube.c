/*  zube - a local cluster on one machine: certificates, up, down, status.

    Everything of one cluster lives under one folder (default
    ~/.zube/cluster):

        DIR/certs/        the certificate directory (zube certs create)
        DIR/config    the client config zubectl reads (zube-config(5))
        DIR/data/         the apiserver's data: the LMDB store (data/store),
                          or a Redis or etcd server's files (data/redis,
                          data/etcd) when `up` starts one
        DIR/logs/         one log file per process (broker.log, ...)
        DIR/run/          pid files: one per process, and zube.pid while
                          `zube up` supervises in the foreground

    `zube up` starts the cluster's processes in order (the store server
    when it starts one, the broker, the apiserver, the scheduler, the node
    agents; later issues add the controllers), waits until each answers, and
    either supervises them in the foreground (restarting each with its own
    back-off; Ctrl-C stops them) or leaves them running (--detach).
    `zube down` stops whatever `up` started, last started first. */
#define _GNU_SOURCE
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <sys/socket.h>
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
#include "api.pb-c.h"
#include "bus.pb-c.h"
#include "zube/zube.h"
#include "zube/bus.h"
#include "zube/certs.h"
#include "zube/config.h"
#include "zube/store_client.h"
#include "zube/runtime_client.h"
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

//  One process of the cluster, as `up` starts it and the supervisor keeps
//  it running. Components start in table order and stop in reverse.
typedef struct s_component_s s_component_t;
typedef int (s_ready_fn) (s_component_t *component, const char *config_path);

struct s_component_s {
    const char *name;    //  "broker": run/broker.pid, logs/broker.log
    const char *program; //  what `ps` shows, to recognise it in a pid file
    char path[PATH_MAX]; //  the program as started
    char *argv[32];
    int argc;
    char log[PATH_MAX + 32];
    char pid_file[PATH_MAX + 32];
    s_ready_fn *ready;
    int port; //  for s_port_ready
    char name_buf[64];
    //  A zubelet: the node whose registration says it is ready.
    char node[256];
    //  Its certificate's name (created by up unless --insecure).
    const char *cert;
    pid_t pid;
    int64_t started_ns;
    int backoff_ms;
    int64_t restart_at_ns;
    bool enabled;
};

//  Every process `up` may start, in start order; `down` looks for all.
enum { S_REDIS, S_ETCD, S_BROKER, S_APISERVER, S_SCHEDULER, S_CONTROLLER_MANAGER,
       S_FIXED_COUNT };
//  Zubelets come after the fixed components, one per process.
#define S_COMPONENT_MAX 64

//  Paths and settings of one cluster.
typedef struct {
    char dir[PATH_MAX];
    char certs[PATH_MAX + 16];
    char config[PATH_MAX + 16];
    char logs[PATH_MAX + 16];
    char run[PATH_MAX + 16];
    char data[PATH_MAX + 16];
    char supervisor_pid[PATH_MAX + 32];
    int port;
    bool insecure;
    char store_url[PATH_MAX + 64];
    long nodes;
    long sim_nodes;
    const char *node_shapes;
    const char *runtime;
    int oci_nodes;          //  zubelets planned with oci so far (pod ranges)
    //  Strings the argv of the components point into.
    char strings[256 * 1024];
    size_t strings_used;
    s_component_t components[S_COMPONENT_MAX];
    int count;
} zube_cluster_t;

static const char *
s_cluster_string (zube_cluster_t *cluster, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static const char *
s_cluster_string (zube_cluster_t *cluster, const char *format, ...)
{
    char *buf = cluster->strings + cluster->strings_used;
    size_t room = sizeof cluster->strings - cluster->strings_used;
    va_list args;
    va_start (args, format);
    int length = vsnprintf (buf, room, format, args);
    va_end (args);
    //  The table is sized for the largest cluster up starts (64 processes).
    assert (length >= 0 && (size_t) length < room);
    cluster->strings_used += (size_t) length + 1;
    return buf;
}

static void
s_component_arg (s_component_t *component, const char *arg)
{
    assert (component->argc < 31);
    component->argv[component->argc++] = (char *) arg;
    component->argv[component->argc] = NULL;
}

//  The component called name (a zubelet's), added if it is not there yet;
//  NULL when the table is full.
static s_component_t *
s_component_add (zube_cluster_t *cluster, const char *name, const char *program)
{
    for (int i = 0; i < cluster->count; i++)
        if (strcmp (cluster->components[i].name, name) == 0)
            return &cluster->components[i];
    if (cluster->count >= S_COMPONENT_MAX)
        return NULL;
    s_component_t *component = &cluster->components[cluster->count++];
    memset (component, 0, sizeof *component);
    snprintf (component->name_buf, sizeof component->name_buf, "%s", name);
    component->name = component->name_buf;
    component->program = program;
    snprintf (component->log, sizeof component->log, "%s/%s.log", cluster->logs, name);
    snprintf (component->pid_file, sizeof component->pid_file, "%s/%s.pid", cluster->run, name);
    component->pid = -1;
    return component;
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
    snprintf (cluster->config, sizeof cluster->config, "%s/config", cluster->dir);
    snprintf (cluster->logs, sizeof cluster->logs, "%s/logs", cluster->dir);
    snprintf (cluster->run, sizeof cluster->run, "%s/run", cluster->dir);
    snprintf (cluster->data, sizeof cluster->data, "%s/data", cluster->dir);
    snprintf (cluster->supervisor_pid, sizeof cluster->supervisor_pid, "%s/zube.pid",
              cluster->run);
    static const struct {
        const char *name;
        const char *program;
    } names[S_FIXED_COUNT] = {[S_REDIS] = {"redis", "redis-server"},
                                  [S_ETCD] = {"etcd", "etcd"},
                                  [S_BROKER] = {"broker", "zube-broker"},
                                  [S_APISERVER] = {"apiserver", "zube-apiserver"},
                                  [S_SCHEDULER] = {"scheduler", "zube-scheduler"},
                                  [S_CONTROLLER_MANAGER] = {"controller-manager",
                                                            "zube-controller-manager"}};
    for (int i = 0; i < S_FIXED_COUNT; i++) {
        s_component_t *component = &cluster->components[i];
        component->name = names[i].name;
        component->program = names[i].program;
        snprintf (component->log, sizeof component->log, "%s/%s.log", cluster->logs,
                  component->name);
        snprintf (component->pid_file, sizeof component->pid_file, "%s/%s.pid", cluster->run,
                  component->name);
        component->pid = -1;
    }
    cluster->count = S_FIXED_COUNT;
    //  Zubelets a cluster started earlier, found by their pid files, so
    //  down and status see them whatever flags started them.
    struct dirent **entries = NULL;
    int found = scandir (cluster->run, &entries, NULL, alphasort);
    for (int i = 0; i < found; i++) {
        const char *file = entries[i]->d_name;
        size_t length = strlen (file);
        if (strncmp (file, "zubelet-", 8) == 0 && length > 12 && length <= 60
            && strcmp (file + length - 4, ".pid") == 0) {
            char name[64];
            snprintf (name, sizeof name, "%.*s", (int) (length - 4), file);
            s_component_add (cluster, name, "zubelet");
        }
        free (entries[i]);
    }
    free (entries);
    if (create
        && (zube_cli_mkdir_p (cluster->logs, 0755) != 0
            || zube_cli_mkdir_p (cluster->run, 0755) != 0
            || zube_cli_mkdir_p (cluster->data, 0700) != 0)) {
        zube_cli_error ("cannot create %s/{logs,run,data}: %s", cluster->dir, strerror (errno));
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

static bool
s_port_open (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    int rc = connect (fd, (struct sockaddr *) &addr, sizeof addr);
    close (fd);
    return rc == 0;
}

//  0 if port on 127.0.0.1 can be bound now, else -1 with errno set.
static int
s_port_free (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    int rc = bind (fd, (struct sockaddr *) &addr, sizeof addr);
    int error = errno;
    close (fd);
    errno = error;
    return rc;
}

//  Every port the cluster will listen on must be free before anything
//  starts, so a taken one is named instead of a process dying on it.
static int
s_check_ports (zube_cluster_t *cluster)
{
    struct {
        int offset;
        const char *what;
        bool used;
    } ports[] = {
        {0, "the broker's requests", true},
        {1, "the broker's publishers", true},
        {2, "the broker's subscribers", true},
        {3, "the store server", cluster->components[S_REDIS].enabled
                                    || cluster->components[S_ETCD].enabled},
        {4, "etcd's peers", cluster->components[S_ETCD].enabled},
    };
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        if (!ports[i].used)
            continue;
        int port = cluster->port + ports[i].offset;
        if (s_port_free (port) != 0) {
            zube_cli_error ("port %d (%s) on 127.0.0.1 is not free: %s; choose another base "
                            "port with --port",
                            port, ports[i].what,
                            errno == EADDRINUSE ? "already in use" : strerror (errno));
            return -1;
        }
    }
    return 0;
}

static int
s_port_ready (s_component_t *component, const char *config_path)
{
    (void) config_path;
    return s_port_open (component->port) ? 0 : -1;
}

//  The broker is ready when it answers a ping.
static int
s_broker_ready (s_component_t *component, const char *config_path)
{
    (void) component;
    zube_config_t *config = NULL;
    zube_bus_t *bus = s_connect (config_path, &config);
    if (!bus)
        return -1;
    int rc = s_ping (bus, 500, NULL);
    zube_bus_destroy (&bus);
    zube_config_destroy (&config);
    return rc;
}

//  0 when service answers method (with payload) OK, or NotFound when
//  not_found counts as an answer; -1 otherwise.
static int
s_service_answers (const char *config_path, const char *service, const char *method,
                   const void *payload, size_t size, bool not_found)
{
    zube_config_t *config = NULL;
    zube_bus_t *bus = s_connect (config_path, &config);
    if (!bus)
        return -1;
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (bus, service, method, payload, size, 500, &reply);
    if (rc == 0 && reply->status != ZUBE_OK && !(not_found && reply->status == ZUBE_NOT_FOUND))
        rc = -1;
    zube_bus_reply_destroy (&reply);
    zube_bus_destroy (&bus);
    zube_config_destroy (&config);
    return rc;
}

//  The apiserver is ready when it answers a read (any answer from the
//  service itself, even NotFound, means it serves).
static int
s_apiserver_ready (s_component_t *component, const char *config_path)
{
    (void) component;
    Zube__GetRequest request = ZUBE__GET_REQUEST__INIT;
    request.resource = "namespaces";
    request.name = "default";
    uint8_t packed[64];
    size_t size = zube__get_request__pack (&request, packed);
    return s_service_answers (config_path, "api", "get", packed, size, true);
}

//  The scheduler is ready when it answers `stats` (it serves once its
//  node and pod caches are synced).
static int
s_scheduler_ready (s_component_t *component, const char *config_path)
{
    (void) component;
    return s_service_answers (config_path, "scheduler", "stats", NULL, 0, false);
}

//  The controller-manager is ready when it answers `stats` (a standby
//  answers too: readiness is not leadership).
static int
s_controller_manager_ready (s_component_t *component, const char *config_path)
{
    (void) component;
    return s_service_answers (config_path, "controllers", "stats", NULL, 0, false);
}

//  A zubelet is ready when its (last) node is registered.
static int
s_zubelet_ready (s_component_t *component, const char *config_path)
{
    Zube__GetRequest request = ZUBE__GET_REQUEST__INIT;
    request.resource = "nodes";
    request.name = component->node;
    uint8_t packed[512];
    size_t size = zube__get_request__pack (&request, packed);
    return s_service_answers (config_path, "api", "get", packed, size, false);
}

//  A zubelet process: one node (node_name), or count hollow nodes named
//  prefix0001.. (prefix set); certificate identity as authz.h expects.
static int
s_plan_zubelet (zube_cluster_t *cluster, const char *name, const char *node_name,
                const char *prefix, long count)
{
    s_component_t *component = s_component_add (cluster, name, "zubelet");
    if (!component) {
        zube_cli_error ("too many processes in one cluster (at most %d)", S_COMPONENT_MAX);
        return -1;
    }
    if (!zube_cli_sibling_program ("zubelet", component->path, sizeof component->path))
        snprintf (component->path, sizeof component->path, "zubelet");
    s_component_arg (component, component->path);
    s_component_arg (component, "--bus");
    s_component_arg (component, s_cluster_string (cluster, "tcp://127.0.0.1:%d", cluster->port));
    if (cluster->insecure)
        s_component_arg (component, "--insecure");
    else {
        s_component_arg (component, "--certs");
        s_component_arg (component, cluster->certs);
        component->cert = node_name ? s_cluster_string (cluster, "node-%s", node_name)
                                    : s_cluster_string (cluster, "nodes-%s", prefix);
        s_component_arg (component, "--name");
        s_component_arg (component, component->cert);
    }
    //  Hollow nodes are always sim; a real node's oci runtime gets a pod
    //  range of its own (10.88.<n>.0/24 on the shared bridge zube0)
    bool oci = node_name && strcmp (cluster->runtime, "oci") == 0;
    s_component_arg (component, "--runtime");
    s_component_arg (component, oci ? "oci" : "sim");
    if (oci) {
        s_component_arg (component, "--runtime-option");
        s_component_arg (component, s_cluster_string (cluster, "pod_cidr=10.88.%d.0/24",
                                                      cluster->oci_nodes++ % 256));
    }
    if (node_name) {
        s_component_arg (component, "--node-name");
        s_component_arg (component, node_name);
        snprintf (component->node, sizeof component->node, "%s", node_name);
    }
    else {
        s_component_arg (component, "--nodes");
        s_component_arg (component, s_cluster_string (cluster, "%ld", count));
        s_component_arg (component, "--node-name-prefix");
        s_component_arg (component, prefix);
        int width = 4;
        for (long n = count; n >= 10000; n /= 10)
            width++;
        snprintf (component->node, sizeof component->node, "%s%0*ld", prefix, width, count);
    }
    s_component_arg (component, "--state-dir");
    s_component_arg (component, s_cluster_string (cluster, "%s/%s", cluster->data, name));
    if (cluster->node_shapes) {
        s_component_arg (component, "--node-shapes");
        s_component_arg (component, cluster->node_shapes);
    }
    component->ready = s_zubelet_ready;
    component->enabled = true;
    return 0;
}

//  The zubelets of the flags: --nodes N processes of one node each
//  (node-1 ...), and one process for --sim-nodes N hollow nodes (sim-0001 ...).
static int
s_plan_nodes (zube_cluster_t *cluster)
{
    if (cluster->nodes > S_COMPONENT_MAX - S_FIXED_COUNT - 1) {
        zube_cli_error ("--nodes %ld: at most %d node processes; use --sim-nodes for more",
                        cluster->nodes, S_COMPONENT_MAX - S_FIXED_COUNT - 1);
        return -1;
    }
    for (long i = 1; i <= cluster->nodes; i++) {
        char name[64], node[32];
        snprintf (node, sizeof node, "node-%ld", i);
        snprintf (name, sizeof name, "zubelet-%s", node);
        if (s_plan_zubelet (cluster, name, s_cluster_string (cluster, "%s", node), NULL, 0) != 0)
            return -1;
    }
    if (cluster->sim_nodes > 0
        && s_plan_zubelet (cluster, "zubelet-sim", NULL, "sim-", cluster->sim_nodes) != 0)
        return -1;
    return 0;
}

static int
s_write_text (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    if (!file)
        return -1;
    int rc = fputs (text, file) < 0 ? -1 : 0;
    if (fclose (file) != 0)
        rc = -1;
    return rc;
}

//  A Redis that acknowledges a write only once it is on disk: the
//  apiserver's group commit relies on it (docs/api-protocol.md).
static int
s_plan_redis (zube_cluster_t *cluster, int port)
{
    s_component_t *component = &cluster->components[S_REDIS];
    const char *dir = s_cluster_string (cluster, "%s/redis", cluster->data);
    if (zube_cli_mkdir_p (dir, 0700) != 0) {
        zube_cli_error ("cannot create %s: %s", dir, strerror (errno));
        return -1;
    }
    const char *conf = s_cluster_string (cluster, "%s/redis.conf", dir);
    char text[PATH_MAX + 512];
    snprintf (text, sizeof text,
              "# written by zube up: the store of the cluster in %s\n"
              "bind 127.0.0.1\nport %d\nprotected-mode yes\ndir %s\n"
              "appendonly yes\nappendfsync always\nsave \"\"\ndaemonize no\n",
              cluster->dir, port, dir);
    if (s_write_text (conf, text) != 0) {
        zube_cli_error ("cannot write %s: %s", conf, strerror (errno));
        return -1;
    }
    snprintf (component->path, sizeof component->path, "redis-server");
    s_component_arg (component, component->path);
    s_component_arg (component, conf);
    component->port = port;
    component->ready = s_port_ready;
    component->enabled = true;
    snprintf (cluster->store_url, sizeof cluster->store_url, "redis://127.0.0.1:%d", port);
    return 0;
}

static int
s_plan_etcd (zube_cluster_t *cluster, int port)
{
    s_component_t *component = &cluster->components[S_ETCD];
    const char *dir = s_cluster_string (cluster, "%s/etcd", cluster->data);
    const char *client_url = s_cluster_string (cluster, "http://127.0.0.1:%d", port);
    const char *peer_url = s_cluster_string (cluster, "http://127.0.0.1:%d", port + 1);
    const char *initial = s_cluster_string (cluster, "zube=%s", peer_url);
    snprintf (component->path, sizeof component->path, "etcd");
    const char *args[] = {component->path, "--name", "zube", "--data-dir", dir,
                          "--listen-client-urls", client_url, "--advertise-client-urls",
                          client_url, "--listen-peer-urls", peer_url,
                          "--initial-advertise-peer-urls", peer_url, "--initial-cluster",
                          initial, NULL};
    for (int i = 0; args[i]; i++)
        s_component_arg (component, args[i]);
    component->port = port;
    component->ready = s_port_ready;
    component->enabled = true;
    snprintf (cluster->store_url, sizeof cluster->store_url, "etcd://127.0.0.1:%d", port);
    return 0;
}

//  The components of a cluster and their command lines, from the flags.
//  store: "lmdb" (default), "lmdb:DIR", "redis" or "etcd" (a server
//  started here, ports PORT+3 and PORT+4), or a redis:// or etcd:// URL
//  of a server that already runs.
static int
s_plan (zube_cluster_t *cluster, const char *store)
{
    int port = cluster->port;
    if (!store || strcmp (store, "lmdb") == 0)
        snprintf (cluster->store_url, sizeof cluster->store_url, "lmdb:%s/store",
                  cluster->data);
    else
    if (strcmp (store, "redis") == 0) {
        if (s_plan_redis (cluster, port + 3) != 0)
            return -1;
    }
    else
    if (strcmp (store, "etcd") == 0) {
        if (s_plan_etcd (cluster, port + 3) != 0)
            return -1;
    }
    else {
        char plugin[32];
        if (zube_store_url_plugin (store, plugin, sizeof plugin) != 0) {
            zube_cli_error ("--store \"%s\" is not a store: use lmdb, lmdb:DIR, redis, etcd, "
                            "redis://HOST:PORT[/DB] or etcd://HOST:PORT[,HOST:PORT...]",
                            store);
            return -1;
        }
        snprintf (cluster->store_url, sizeof cluster->store_url, "%s", store);
    }

    s_component_t *broker = &cluster->components[S_BROKER];
    if (!zube_cli_sibling_program ("zube-broker", broker->path, sizeof broker->path))
        snprintf (broker->path, sizeof broker->path, "zube-broker");
    s_component_arg (broker, broker->path);
    s_component_arg (broker, "--bind");
    s_component_arg (broker, s_cluster_string (cluster, "tcp://127.0.0.1:%d", port));
    if (cluster->insecure)
        s_component_arg (broker, "--insecure");
    else {
        s_component_arg (broker, "--certs");
        s_component_arg (broker, cluster->certs);
    }
    broker->ready = s_broker_ready;
    broker->enabled = true;

    s_component_t *apiserver = &cluster->components[S_APISERVER];
    if (!zube_cli_sibling_program ("zube-apiserver", apiserver->path, sizeof apiserver->path))
        snprintf (apiserver->path, sizeof apiserver->path, "zube-apiserver");
    s_component_arg (apiserver, apiserver->path);
    s_component_arg (apiserver, "--bus");
    s_component_arg (apiserver, s_cluster_string (cluster, "tcp://127.0.0.1:%d", port));
    if (cluster->insecure)
        s_component_arg (apiserver, "--insecure");
    else {
        s_component_arg (apiserver, "--certs");
        s_component_arg (apiserver, cluster->certs);
        s_component_arg (apiserver, "--name");
        s_component_arg (apiserver, "apiserver");
    }
    s_component_arg (apiserver, "--store");
    s_component_arg (apiserver, cluster->store_url);
    s_component_arg (apiserver, "--data-dir");
    s_component_arg (apiserver, cluster->data);
    apiserver->ready = s_apiserver_ready;
    apiserver->enabled = true;

    //  The scheduler, as identity "scheduler" (the apiserver's default
    //  authorization policy gives it binding, pod status and events)
    s_component_t *scheduler = &cluster->components[S_SCHEDULER];
    if (zube_cli_sibling_program ("zube-scheduler", scheduler->path, sizeof scheduler->path)) {
        s_component_arg (scheduler, scheduler->path);
        s_component_arg (scheduler, "--bus");
        s_component_arg (scheduler, s_cluster_string (cluster, "tcp://127.0.0.1:%d", port));
        if (cluster->insecure)
            s_component_arg (scheduler, "--insecure");
        else {
            s_component_arg (scheduler, "--certs");
            s_component_arg (scheduler, cluster->certs);
            s_component_arg (scheduler, "--name");
            s_component_arg (scheduler, "scheduler");
            scheduler->cert = "scheduler";
        }
        scheduler->ready = s_scheduler_ready;
        scheduler->enabled = true;
    }

    //  The controller-manager, as identity "controller-manager" (the
    //  apiserver's default policy has its role)
    s_component_t *manager = &cluster->components[S_CONTROLLER_MANAGER];
    if (zube_cli_sibling_program ("zube-controller-manager", manager->path,
                                  sizeof manager->path)) {
        s_component_arg (manager, manager->path);
        s_component_arg (manager, "--bus");
        s_component_arg (manager, s_cluster_string (cluster, "tcp://127.0.0.1:%d", port));
        if (cluster->insecure)
            s_component_arg (manager, "--insecure");
        else {
            s_component_arg (manager, "--certs");
            s_component_arg (manager, cluster->certs);
            s_component_arg (manager, "--name");
            s_component_arg (manager, "controller-manager");
            manager->cert = "controller-manager";
        }
        manager->ready = s_controller_manager_ready;
        manager->enabled = true;
    }
    return s_plan_nodes (cluster);
}

static pid_t
s_component_start (s_component_t *component)
{
    component->pid = zube_cli_spawn (component->argv, component->log);
    component->started_ns = zube_cli_now_ns ();
    if (component->pid < 0)
        zube_cli_error ("cannot start %s: %s%s", component->path, strerror (errno),
                        strchr (component->path, '/') ? "" : " (not beside zube, nor in $PATH)");
    else
    if (zube_cli_pidfile_write (component->pid_file, component->pid) != 0)
        fprintf (stderr, "zube: warning: cannot write %s: %s\n", component->pid_file,
                 strerror (errno));
    return component->pid;
}

//  Waits until the component answers. 0, or -1 (it died, or did not
//  answer in time, or we were interrupted).
static int
s_component_wait_ready (s_component_t *component, const char *config_path)
{
    int64_t deadline = zube_cli_now_ns () + (int64_t) ZUBE_READY_TIMEOUT_MS * 1000000;
    while (!s_stop && zube_cli_now_ns () < deadline) {
        int status = 0;
        if (waitpid (component->pid, &status, WNOHANG) == component->pid
            || !zube_cli_process_alive (component->pid, NULL)) {
            zube_cli_error ("%s exited during start-up", component->program);
            s_print_log_tail (component->log, 12);
            component->pid = -1;
            return -1;
        }
        if (component->ready (component, config_path) == 0)
            return 0;
        s_nap (100);
    }
    if (!s_stop) {
        zube_cli_error ("%s (pid %d) did not answer within %d s", component->program,
                        (int) component->pid, ZUBE_READY_TIMEOUT_MS / 1000);
        s_print_log_tail (component->log, 12);
    }
    return -1;
}

static void
s_component_stop (s_component_t *component)
{
    if (component->pid > 0 && zube_cli_process_stop (component->pid, ZUBE_STOP_TIMEOUT_MS) != 0)
        fprintf (stderr, "zube: warning: %s pid %d survived SIGKILL\n", component->name,
                 (int) component->pid);
    component->pid = -1;
    unlink (component->pid_file);
}

static void
s_cluster_stop (zube_cluster_t *cluster)
{
    for (int i = cluster->count - 1; i >= 0; i--)
        if (cluster->components[i].enabled)
            s_component_stop (&cluster->components[i]);
}

//  Foreground: restart each component with its own back-off whenever it
//  dies, until a signal; then stop them all, last started first.
static int
s_supervise (zube_cluster_t *cluster)
{
    if (zube_cli_pidfile_write (cluster->supervisor_pid, getpid ()) != 0)
        fprintf (stderr, "zube: warning: cannot write %s: %s\n", cluster->supervisor_pid,
                 strerror (errno));
    for (int i = 0; i < cluster->count; i++)
        cluster->components[i].backoff_ms = ZUBE_RESTART_MIN_MS;
    while (!s_stop) {
        int64_t now = zube_cli_now_ns ();
        for (int i = 0; i < cluster->count && !s_stop; i++) {
            s_component_t *component = &cluster->components[i];
            if (!component->enabled)
                continue;
            if (component->pid > 0) {
                int status = 0;
                if (waitpid (component->pid, &status, WNOHANG) != component->pid)
                    continue;
                int64_t ran_ms = (now - component->started_ns) / 1000000;
                if (ran_ms >= ZUBE_RESTART_RESET_MS)
                    component->backoff_ms = ZUBE_RESTART_MIN_MS;
                if (WIFSIGNALED (status))
                    printf ("zube: %s (pid %d) killed by signal %d after %.1f s; "
                            "restarting in %.1f s\n",
                            component->name, (int) component->pid, WTERMSIG (status),
                            ran_ms / 1000.0, component->backoff_ms / 1000.0);
                else
                    printf ("zube: %s (pid %d) exited with status %d after %.1f s; "
                            "restarting in %.1f s\n",
                            component->name, (int) component->pid, WEXITSTATUS (status),
                            ran_ms / 1000.0, component->backoff_ms / 1000.0);
                fflush (stdout);
                component->pid = -1;
                component->restart_at_ns = now + (int64_t) component->backoff_ms * 1000000;
                component->backoff_ms = component->backoff_ms * 2 > ZUBE_RESTART_MAX_MS
                                            ? ZUBE_RESTART_MAX_MS
                                            : component->backoff_ms * 2;
            }
            else
            if (now >= component->restart_at_ns && s_component_start (component) > 0) {
                printf ("zube: %s restarted (pid %d)\n", component->name, (int) component->pid);
                fflush (stdout);
            }
        }
        s_nap (200);
    }
    printf ("\nzube: stopping the cluster\n");
    fflush (stdout);
    s_cluster_stop (cluster);
    unlink (cluster->supervisor_pid);
    printf ("zube: stopped\n");
    return 0;
}

static int
s_write_client_config (zube_cluster_t *cluster)
{
    zube_config_t *config = zube_config_new ();
    char endpoint[64], error[1024];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", cluster->port);
    zube_config_set_broker (config, endpoint);
    zube_config_set_insecure (config, cluster->insecure);
    if (!cluster->insecure) {
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

//  The first component of the cluster in dir that still runs, or NULL.
static s_component_t *
s_cluster_running (zube_cluster_t *cluster)
{
    for (int i = 0; i < cluster->count; i++) {
        s_component_t *component = &cluster->components[i];
        component->pid = s_running (component->pid_file, component->program);
        if (component->pid > 0)
            return component;
    }
    return NULL;
}

//  Whether real containers can run here: root, runc and the CNI plugins.
static bool
s_oci_usable (void)
{
    if (geteuid () != 0)
        return false;
    if (access ("/usr/sbin/runc", X_OK) != 0 && access ("/usr/bin/runc", X_OK) != 0
        && access ("/usr/local/sbin/runc", X_OK) != 0 && access ("/usr/local/bin/runc", X_OK) != 0)
        return false;
    return access ("/usr/lib/cni/bridge", X_OK) == 0 || access ("/opt/cni/bin/bridge", X_OK) == 0
           || access ("/usr/libexec/cni/bridge", X_OK) == 0;
}

static int
s_up (const zube_command_t *command, int argc, char **argv)
{
    const char *dir = NULL, *store = NULL, *node_shapes = NULL, *runtime = NULL;
    bool detach = false, insecure = false;
    long port = ZUBE_DEFAULT_PORT, nodes = 1, sim_nodes = 0;
    zube_cli_flag_t flags[] = {
        {.name = "dir", .type = ZUBE_CLI_STRING, .value = &dir, .value_name = "DIR",
         .help = "The cluster's folder (default ~/.zube/cluster)"},
        {.name = "detach", .short_name = 'd', .type = ZUBE_CLI_BOOL, .value = &detach,
         .help = "Leave the cluster running in the background and return"},
        {.name = "insecure", .type = ZUBE_CLI_BOOL, .value = &insecure,
         .help = "Run the bus without CurveZMQ (no certificates)"},
        {.name = "port", .short_name = 'p', .type = ZUBE_CLI_INT, .value = &port,
         .value_name = "PORT",
         .help = "Broker port on 127.0.0.1 (default 7400; events use PORT+1 and PORT+2,\n"
                 "a store server started here PORT+3 and PORT+4)"},
        {.name = "store", .type = ZUBE_CLI_STRING, .value = &store, .value_name = "STORE",
         .help = "lmdb (default: DIR/data/store), lmdb:PATH, redis or etcd (a server\n"
                 "started here), or redis://HOST:PORT[/DB], etcd://HOST:PORT[,...]"},
        {.name = "nodes", .type = ZUBE_CLI_INT, .value = &nodes, .value_name = "N",
         .help = "Node agents, one zubelet process each: node-1 .. node-N (default 1)"},
        {.name = "sim-nodes", .type = ZUBE_CLI_INT, .value = &sim_nodes, .value_name = "N",
         .help = "Hollow nodes sim-0001 .. in one more zubelet process (default 0)"},
        {.name = "node-shapes", .type = ZUBE_CLI_STRING, .value = &node_shapes,
         .value_name = "FILE", .help = "What the nodes look like (zubelet(1), docs/node-shapes.md)"},
        {.name = "runtime", .type = ZUBE_CLI_STRING, .value = &runtime, .value_name = "NAME",
         .help = "The zubelets' runtime plugin: sim or oci (default: oci as root with runc\n"
                 "and the CNI plugins installed, else sim; --sim-nodes are always sim)"},
        {0}};
    char *args[argc + 1];
    int count = s_parse (command, "zube up", flags, argc, argv, args);
    if (!runtime)
        runtime = s_oci_usable () ? "oci" : "sim";
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\"", args[0]);
        return 1;
    }
    if (port < 1 || port > 65530) {
        zube_cli_error ("--port must be between 1 and 65530");
        return 1;
    }
    static zube_cluster_t cluster;
    memset (&cluster, 0, sizeof cluster);
    if (s_cluster_paths (&cluster, dir, true) != 0)
        return 1;
    pid_t running = s_running (cluster.supervisor_pid, "zube");
    s_component_t *component = s_cluster_running (&cluster);
    if (running > 0 || component) {
        zube_cli_error ("a cluster already runs in %s (pid %d): stop it with "
                        "\"zube down --dir %s\"", cluster.dir,
                        (int) (running > 0 ? running : component->pid), cluster.dir);
        return 1;
    }
    if (nodes < 0 || sim_nodes < 0 || sim_nodes > 1000000) {
        zube_cli_error ("--nodes and --sim-nodes must be 0 or more (--sim-nodes at most 1000000)");
        return 1;
    }
    if (strcmp (runtime, "sim") != 0 && strcmp (runtime, "oci") != 0) {
        zube_cli_error ("--runtime \"%s\": expected sim or oci", runtime);
        return 1;
    }
    char shapes_path[PATH_MAX];
    if (node_shapes) {
        if (!realpath (node_shapes, shapes_path)) {
            zube_cli_error ("--node-shapes %s: %s", node_shapes, strerror (errno));
            return 1;
        }
        node_shapes = shapes_path;
    }
    cluster.port = (int) port;
    cluster.insecure = insecure;
    cluster.nodes = nodes;
    cluster.sim_nodes = sim_nodes;
    cluster.node_shapes = node_shapes;
    cluster.runtime = runtime;
    if (s_plan (&cluster, store) != 0 || s_check_ports (&cluster) != 0)
        return 1;
    if (!insecure
        && (s_create_certs (cluster.certs, "broker") != 0
            || s_create_certs (cluster.certs, "admin") != 0
            || s_create_certs (cluster.certs, "apiserver") != 0))
        return 1;
    for (int i = S_SCHEDULER; i < cluster.count && !insecure; i++)
        if (cluster.components[i].cert && s_create_certs (cluster.certs, cluster.components[i].cert) != 0)
            return 1;
    if (s_write_client_config (&cluster) != 0)
        return 1;

    for (int i = 0; i < cluster.count; i++) {
        component = &cluster.components[i];
        if (!component->enabled)
            continue;
        if (s_component_start (component) < 0
            || s_component_wait_ready (component, cluster.config) != 0) {
            s_cluster_stop (&cluster);
            return 1;
        }
    }
    printf ("zube: cluster running at tcp://127.0.0.1:%ld, %s, store %s\n", port,
            insecure ? "insecure" : "secure (CurveZMQ)", cluster.store_url);
    for (int i = 0; i < cluster.count; i++) {
        component = &cluster.components[i];
        if (component->enabled)
            printf ("  %-18s pid %-7d log %s\n", component->name, (int) component->pid,
                    component->log);
    }
    const char *not_yet[] = {"zube-scheduler", "zube-controller-manager"};
    //  (each is started whenever it is built)
    for (size_t i = 0; i < sizeof not_yet / sizeof not_yet[0]; i++) {
        char path[PATH_MAX];
        if (!zube_cli_sibling_program (not_yet[i], path, sizeof path))
            printf ("  %-18s not started: %s is not built yet\n",
                    not_yet[i] + 5, not_yet[i]);
    }
    printf ("  cluster folder: %s\n", cluster.dir);
    printf ("  client config:  %s\n", cluster.config);
    printf ("\nTry:\n  zubectl --config %s get namespaces\n", cluster.config);
    if (detach) {
        printf ("Stop it with:\n  zube down --dir %s\n", cluster.dir);
        return 0;
    }
    printf ("Stop it with Ctrl-C here, or \"zube down --dir %s\".\n\n", cluster.dir);
    fflush (stdout);
    return s_supervise (&cluster);
}

typedef struct {
    char ids[256][ZUBE_RUNTIME_ID_MAX];
    int count;
} s_sandbox_ids_t;

static int
s_sandbox_id (void *arg, const zube_runtime_sandbox_status_t *sandbox)
{
    s_sandbox_ids_t *ids = (s_sandbox_ids_t *) arg;
    if (ids->count < 256)
        snprintf (ids->ids[ids->count++], ZUBE_RUNTIME_ID_MAX, "%s", sandbox->id);
    return 0;
}

//  The zubelets keep their pods running when they stop (adoption); the
//  cluster going down takes the oci ones along: every zubelet state with
//  an oci runtime in it (DATA/<zubelet>/runtime) has its sandboxes
//  removed: containers, network namespaces, IPs.
static int
s_down_oci_pods (zube_cluster_t *cluster)
{
    DIR *data = opendir (cluster->data);
    if (!data)
        return 0;
    int rc = 0;
    struct dirent *entry;
    zube_plugin_host_t *plugins = NULL;
    while ((entry = readdir (data))) {
        char state[PATH_MAX + 300], conflist[PATH_MAX + 400];
        snprintf (state, sizeof state, "%s/%s/runtime", cluster->data, entry->d_name);
        snprintf (conflist, sizeof conflist, "%s/cni/zube.conflist", state);
        if (entry->d_name[0] == '.' || access (conflist, R_OK) != 0)
            continue;
        if (!plugins && !(plugins = zube_plugin_host_new ()))
            break;
        char option[PATH_MAX + 320];
        snprintf (option, sizeof option, "state_dir=%s", state);
        char *error = NULL;
        zube_runtime_t *runtime =
            zube_runtime_open (plugins, "oci", (const char *[]) {option, NULL}, &error);
        if (!runtime) {
            zube_cli_error ("the pods of %s stay: %s", entry->d_name, error ? error : "");
            free (error);
            rc = 1;
            continue;
        }
        static s_sandbox_ids_t ids;
        ids.count = 0;
        zube_runtime_list_sandboxes (runtime, NULL, s_sandbox_id, &ids);
        if (ids.count)
            printf ("zube: removing the %d pod(s) of the %s (oci)\n", ids.count,
                    entry->d_name);
        for (int i = 0; i < ids.count; i++) {
            zube_runtime_stop_sandbox (runtime, ids.ids[i], 0);
            if (zube_runtime_remove_sandbox (runtime, ids.ids[i]) != ZUBE_OK) {
                zube_cli_error ("sandbox %s of %s: %s", ids.ids[i], entry->d_name,
                                zube_runtime_error (runtime));
                rc = 1;
            }
        }
        zube_runtime_close (&runtime);
    }
    closedir (data);
    zube_plugin_host_destroy (&plugins);
    return rc;
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
    static zube_cluster_t cluster;
    memset (&cluster, 0, sizeof cluster);
    if (s_cluster_paths (&cluster, dir, false) != 0)
        return 1;
    bool stopped_any = false;
    int rc = 0;
    //  A supervisor first, or it would restart what we stop; it stops its
    //  components itself.
    pid_t supervisor = s_running (cluster.supervisor_pid, "zube");
    if (supervisor > 0) {
        printf ("zube: stopping the supervisor (pid %d)\n", (int) supervisor);
        if (zube_cli_process_stop (supervisor, ZUBE_STOP_TIMEOUT_MS * 4 + 5000)
            != 0) {
            zube_cli_error ("the supervisor (pid %d) did not stop", (int) supervisor);
            rc = 1;
        }
        stopped_any = true;
    }
    unlink (cluster.supervisor_pid);
    for (int i = cluster.count - 1; i >= 0; i--) {
        s_component_t *component = &cluster.components[i];
        pid_t pid = s_running (component->pid_file, component->program);
        if (pid > 0) {
            printf ("zube: stopping the %s (pid %d)\n", component->name, (int) pid);
            if (zube_cli_process_stop (pid, ZUBE_STOP_TIMEOUT_MS) != 0) {
                zube_cli_error ("the %s (pid %d) did not stop", component->name, (int) pid);
                rc = 1;
            }
            stopped_any = true;
        }
        unlink (component->pid_file);
    }
    if (s_down_oci_pods (&cluster) != 0)
        rc = 1;
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
    static zube_cluster_t cluster;
    memset (&cluster, 0, sizeof cluster);
    if (s_cluster_paths (&cluster, dir, false) != 0)
        return 1;
    printf ("Cluster folder: %s\n", cluster.dir);
    zube_cli_table_t *table = zube_cli_table_new (3);
    zube_cli_table_addv (table, "COMPONENT", "PID", "STATUS");
    pid_t supervisor = s_running (cluster.supervisor_pid, "zube");
    char pid_text[32], status_text[512];
    if (supervisor > 0) {
        snprintf (pid_text, sizeof pid_text, "%d", (int) supervisor);
        zube_cli_table_addv (table, "supervisor", pid_text, "running (zube up in the foreground)");
    }
    //  Quiet: an unreachable service is reported in the table.
    zube_log_level_t level = zube_log_get_level ();
    zube_log_set_level (ZUBE_LOG_OFF);
    bool have_config = access (cluster.config, R_OK) == 0;
    bool healthy = true, any = false;
    for (int i = 0; i < cluster.count; i++) {
        s_component_t *component = &cluster.components[i];
        pid_t pid = s_running (component->pid_file, component->program);
        bool required = i == S_BROKER || i == S_APISERVER || i >= S_FIXED_COUNT;
        if (pid <= 0) {
            if (required) {
                zube_cli_table_addv (table, component->name, "-", "stopped");
                healthy = false;
            }
            continue;
        }
        any = true;
        snprintf (pid_text, sizeof pid_text, "%d", (int) pid);
        if (i == S_BROKER && have_config) {
            zube_config_t *config = NULL;
            zube_bus_t *bus = s_connect (cluster.config, &config);
            double rtt_ms = 0;
            if (bus && s_ping (bus, 2000, &rtt_ms) == 0)
                snprintf (status_text, sizeof status_text, "running, answers at %s (%.2f ms)",
                          zube_config_broker (config), rtt_ms);
            else {
                snprintf (status_text, sizeof status_text,
                          "running, but does not answer at %s",
                          config ? zube_config_broker (config) : "(no client config)");
                healthy = false;
            }
            zube_bus_destroy (&bus);
            zube_config_destroy (&config);
        }
        else
        if (i == S_APISERVER && have_config) {
            if (s_apiserver_ready (component, cluster.config) == 0)
                snprintf (status_text, sizeof status_text, "running, serves \"api\"");
            else {
                snprintf (status_text, sizeof status_text, "running, but does not answer");
                healthy = false;
            }
        }
        else
        if (i == S_SCHEDULER && have_config) {
            if (s_scheduler_ready (component, cluster.config) == 0)
                snprintf (status_text, sizeof status_text, "running, serves \"scheduler\"");
            else {
                snprintf (status_text, sizeof status_text, "running, but does not answer");
                healthy = false;
            }
        }
        else
        if (i == S_CONTROLLER_MANAGER && have_config) {
            if (s_controller_manager_ready (component, cluster.config) == 0)
                snprintf (status_text, sizeof status_text, "running, serves \"controllers\"");
            else {
                snprintf (status_text, sizeof status_text, "running, but does not answer");
                healthy = false;
            }
        }
        else
            snprintf (status_text, sizeof status_text, "running");
        zube_cli_table_addv (table, component->name, pid_text, status_text);
    }
    zube_log_set_level (level);
    zube_cli_table_print (table, stdout);
    zube_cli_table_destroy (&table);
    healthy = healthy && any;
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
                            "'.', '-' and '_', starting with a letter or digit, at most 253 "
                            "characters)",
                            args[i]);
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
     .usage = "up [--dir DIR] [--detach] [--insecure] [--port PORT] [--store STORE]",
     .description = "Creates DIR, the certificates (broker, admin, apiserver) and the client\n"
                    "config DIR/config, then starts, each with its log in DIR/logs and\n"
                    "its pid in DIR/run: a redis-server (appendfsync always) or etcd when\n"
                    "--store redis or etcd asks for one, zube-broker, and zube-apiserver on\n"
                    "the store; it waits until each answers. In the foreground it restarts\n"
                    "any that dies, with back-off, until Ctrl-C; with --detach it returns.",
     .handler = s_up},
    {.name = "down",
     .summary = "Stop what \"zube up\" started",
     .usage = "down [--dir DIR]",
     .description = "Stops the supervisor and every process of the cluster, last started\n"
                    "first (SIGTERM, then SIGKILL after 10 s), and removes their pid files.\n"
                    "Nothing running is not an error.",
     .handler = s_down},
    {.name = "status",
     .summary = "Show what runs in a local cluster",
     .usage = "status [--dir DIR]",
     .description = "Lists the cluster's processes, pings the broker and asks the apiserver.\n"
                    "Exits 0 when the broker and the apiserver run and answer, 1 otherwise.",
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
