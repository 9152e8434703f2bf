/*  zt_cluster - a zube-broker and a zube-apiserver for a test, and the
    other chores of multi-process tests, in one place.

    Built on zube_testproc.h. A zt_cluster_t is a broker on a free port and
    (unless options say broker_only) an apiserver behind it, both children
    that die with the test (PR_SET_PDEATHSIG), in a temporary directory of
    their own or one the test gives, with the test's own bus connection and
    api client; zt_cluster_wait_api waits until the apiserver answers, and
    either process can be killed and started again on the same port and
    store. zt_run_capture runs a program to its end (or a timeout) with
    its stdout and stderr captured.

        zt_cluster_t cluster;
        ZT_ASSERT_MSG (zt_cluster_start (&cluster, &(zt_cluster_options_t){
                           .window = 5}), "%s", cluster.why);
        ... zube_api_get (cluster.api, ...) ...
        zt_cluster_stop (&cluster, false);

    Spawns, kills and waits happen on the test's main thread: a tied child
    dies when the thread that forked it ends. */
#ifndef ZT_CLUSTER_H_INCLUDED
#define ZT_CLUSTER_H_INCLUDED

#include "zube_test.h"
#include "zube_testproc.h"

#include "zube/api.h"
#include "zube/bus.h"
#include "zube/codec.h"
#include "core.pb-c.h"
#include <sys/prctl.h>

//  --------------------------------------------------------------------------
//  Processes

//  zt_spawn, except that the child is killed when this test process dies:
//  a crashed test leaves no broker, apiserver or service behind it.
static inline pid_t
zt_spawn_tied (char *const argv[], const char *log_path)
{
    return zt_spawn_ex (argv, log_path, true);
}

//  The port of "tcp://host:port" (0 for an endpoint without one).
static inline int
zt_endpoint_port (const char *endpoint)
{
    const char *colon = strrchr (endpoint, ':');
    return colon ? atoi (colon + 1) : 0;
}

//  Starts a tied zube-broker bound at endpoint (tcp://127.0.0.1:port);
//  certs NULL: --insecure; heartbeat_ms, hwm 0: the broker's defaults.
//  Waits until the port answers; -1 when it does not (the broker killed).
static inline pid_t
zt_broker_start (const char *endpoint, const char *certs, int heartbeat_ms, int hwm,
                 const char *log_path)
{
    char heartbeat[16], hwm_text[16];
    snprintf (heartbeat, sizeof heartbeat, "%d", heartbeat_ms);
    snprintf (hwm_text, sizeof hwm_text, "%d", hwm);
    char *argv[12];
    int argc = 0;
    argv[argc++] = (char *) zt_program ("zube-broker");
    if (certs) {
        argv[argc++] = "--certs";
        argv[argc++] = (char *) certs;
    }
    else
        argv[argc++] = "--insecure";
    argv[argc++] = "--bind";
    argv[argc++] = (char *) endpoint;
    if (heartbeat_ms > 0) {
        argv[argc++] = "--heartbeat";
        argv[argc++] = heartbeat;
    }
    if (hwm > 0) {
        argv[argc++] = "--hwm";
        argv[argc++] = hwm_text;
    }
    argv[argc] = NULL;
    pid_t pid = zt_spawn_tied (argv, log_path);
    if (pid > 0 && !zt_wait_port (zt_endpoint_port (endpoint), 5000)) {
        zt_stop (pid, SIGKILL, 1000);
        return -1;
    }
    return pid;
}

//  Alive, and not a zombie (a process that is not our child, or not yet
//  waited for).
static inline bool
zt_process_alive (pid_t pid)
{
    if (pid <= 0)
        return false;
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    char *stat = zt_read_file (path);
    char *paren = stat ? strrchr (stat, ')') : NULL;
    bool alive = paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
    free (stat);
    return alive;
}

//  The last lines of a file, as TAP comments (nothing if it is unreadable).
static inline void
zt_log_tail (const char *path, int lines)
{
    char *text = zt_read_file (path);
    if (!text)
        return;
    const char *start = text + strlen (text);
    int seen = 0;
    while (start > text && seen <= lines)
        if (*--start == '\n')
            seen++;
    if (*start == '\n')
        start++;
    printf ("# --- last lines of %s\n", path);
    for (const char *line = start; *line;) {
        size_t span = strcspn (line, "\n");
        printf ("#   %.*s\n", (int) span, line);
        line += span + (line[span] == '\n');
    }
    fflush (stdout);
    free (text);
}

//  Writes text to path; false when it cannot.
static inline bool
zt_write_file (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    if (!file)
        return false;
    bool written = fputs (text, file) >= 0;
    return fclose (file) == 0 && written;
}

#define ZT_WRITE_FILE(path, text)                                             \
    ZT_ASSERT_MSG (zt_write_file ((path), (text)), "cannot write %s", (path))

//  Milliseconds since the epoch of an RFC 3339 UTC time as Kubernetes
//  writes them: "2024-05-01T10:00:00Z", or with a fraction of any length
//  (".123456Z", read to the millisecond); 0 when empty or unreadable.
static inline int64_t
zt_time_ms (const char *text)
{
    struct tm tm = {0};
    int consumed = 0;
    if (!text
        || sscanf (text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) < 6
        || !consumed)
        return 0;
    int64_t ms = 0;
    const char *digit = text + consumed;
    if (*digit == '.')
        for (int scale = 100; *++digit >= '0' && *digit <= '9'; scale /= 10)
            ms += (*digit - '0') * scale;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t) timegm (&tm) * 1000 + ms;
}

//  --------------------------------------------------------------------------
//  Running a program to its end

typedef struct {
    int status; //  exit code, or 128 + signal; -1 when it could not run
    char *out;
    char *err;
} zt_run_t;

static inline void
zt_run_free (zt_run_t *result)
{
    free (result->out);
    free (result->err);
    result->out = result->err = NULL;
}

//  Starts argv[0] with argv, stdout and stderr into out_path and err_path
//  (truncated), stdin from /dev/null. Returns the pid, or -1.
static inline pid_t
zt_run_start (char *const argv[], const char *out_path, const char *err_path)
{
    fflush (stdout);
    pid_t pid = fork ();
    if (pid == 0) {
        int out = open (out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open (err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null_fd = open ("/dev/null", O_RDONLY);
        dup2 (out, STDOUT_FILENO);
        dup2 (err, STDERR_FILENO);
        dup2 (null_fd, STDIN_FILENO);
        execv (argv[0], argv);
        _exit (127);
    }
    return pid;
}

//  Waits for pid, killing it (SIGKILL) after timeout_ms. Answers its exit
//  code, or 128 + the signal that ended it.
static inline int
zt_run_wait (pid_t pid, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    int status = 0;
    int64_t deadline = zt_now_ms () + timeout_ms;
    while (waitpid (pid, &status, WNOHANG) != pid) {
        if (zt_now_ms () > deadline) {
            kill (pid, SIGKILL);
            waitpid (pid, &status, 0);
            break;
        }
        usleep (5000);
    }
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

//  Runs argv[0] with argv to its end, killed after timeout_ms; its stdout
//  and stderr are captured apart (through files that are removed after).
static inline zt_run_t
zt_run_capture (int timeout_ms, char *const argv[])
{
    zt_run_t result = {.status = -1};
    char out_path[] = "/tmp/zube-test-run-XXXXXX";
    char err_path[] = "/tmp/zube-test-run-XXXXXX";
    int out = mkstemp (out_path);
    int err = mkstemp (err_path);
    if (out >= 0 && err >= 0) {
        result.status = zt_run_wait (zt_run_start (argv, out_path, err_path), timeout_ms);
        result.out = zt_read_file (out_path);
        result.err = zt_read_file (err_path);
    }
    if (out >= 0) {
        close (out);
        unlink (out_path);
    }
    if (err >= 0) {
        close (err);
        unlink (err_path);
    }
    return result;
}

//  zt_run_capture of head (NULL-terminated) followed by the arguments of
//  tail (NULL-terminated), for a test's own varargs wrapper.
static inline zt_run_t
zt_run_capture_va (int timeout_ms, const char *const head[], va_list tail)
{
    char *argv[64];
    int argc = 0;
    for (; head[argc] && argc < 63; argc++)
        argv[argc] = (char *) head[argc];
    const char *arg;
    while (argc < 63 && (arg = va_arg (tail, const char *)))
        argv[argc++] = (char *) arg;
    argv[argc] = NULL;
    return zt_run_capture (timeout_ms, argv);
}

//  A man page of the source tree ("zubectl.1", below $ZUBE_SRCDIR/man, else
//  ../man) rendered as `man -l` shows it to a user, 80 columns, warnings
//  on: its text in out, the warnings in err. Status -1 when man is not
//  installed.
static inline zt_run_t
zt_man_render (const char *page)
{
    const char *man = zt_which ("man");
    if (!man)
        return (zt_run_t){.status = -1};
    char program[1024], path[1024];
    snprintf (program, sizeof program, "%s", man);
    const char *srcdir = getenv ("ZUBE_SRCDIR");
    snprintf (path, sizeof path, "%s/man/%s", srcdir ? srcdir : "..", page);
    char *argv[] = {"/usr/bin/env", "MANWIDTH=80", program, "--warnings", "-l", path, NULL};
    return zt_run_capture (60000, argv);
}

//  Fails the case unless result exited with code, showing what it printed.
#define ZT_ASSERT_EXIT(result, code)                                          \
    ZT_ASSERT_MSG ((result).status == (code),                                 \
                   "exit %d, expected %d; stdout:\n%s\nstderr:\n%s",          \
                   (result).status, (code), (result).out ? (result).out : "", \
                   (result).err ? (result).err : "")

//  --------------------------------------------------------------------------
//  A cluster: broker and apiserver

typedef struct _zt_cluster_t zt_cluster_t;
typedef bool (zt_cluster_ready_fn) (zt_cluster_t *cluster);

//  Every field may stay 0. Strings and arrays are borrowed: they must live
//  as long as the cluster (the apiserver is started again from them).
typedef struct {
    //  The directory of logs, store and data; NULL: a new temporary one
    //  ("/tmp/zube-test-<tag>-XXXXXX"), removed by zt_cluster_stop.
    const char *dir;
    const char *tag;
    //  The apiserver's --store; NULL: lmdb in <dir>/store.
    const char *store;
    //  The apiserver's --data-dir, a name in dir (made); NULL: none.
    const char *data_dir;
    //  --window of the apiserver; 0: its default.
    int window;
    //  A certificates directory (zube_certs_create); NULL: --insecure.
    //  With certs the apiserver runs as "apiserver" and the test's own
    //  connection as client_name.
    const char *certs;
    const char *client_name;
    //  More apiserver flags, NULL-terminated.
    const char *const *apiserver_args;
    //  A whole other program in the apiserver's place (an in-test fake):
    //  argv, NULL-terminated; the other apiserver options do not apply.
    const char *const *apiserver_argv;
    //  No apiserver at all, and no connection of the test's: a broker.
    bool broker_only;
    //  The broker's port on 127.0.0.1 (it binds port + 1, + 2 too), for a
    //  test that must name the endpoint first; 0: free ones are found.
    int port;
    //  The broker's --heartbeat and --hwm; 0: its defaults.
    int heartbeat_ms;
    int hwm;
    //  The heartbeat of the test's own connection; 0: the default.
    int client_heartbeat_ms;
    //  Log file names in dir; NULL: "broker.log", "apiserver.log". The
    //  same name for both is fine (both append).
    const char *broker_log;
    const char *apiserver_log;
    //  How long zt_cluster_start waits for the apiserver; 0: 20 s.
    int ready_timeout_ms;
    //  The deadline of the test's api client's calls; 0: 10 s.
    int api_timeout_ms;
    //  Ready when this answers true; NULL: a get of namespace "default"
    //  answers OK (the apiserver has made its default namespaces).
    zt_cluster_ready_fn *ready;
} zt_cluster_options_t;

struct _zt_cluster_t {
    zt_cluster_options_t options;
    char dir[256];
    bool own_dir;
    int port; //  the broker's; it also binds port + 1, + 2
    char endpoint[64];
    char store[700];
    char data_dir[600];
    char broker_log[600];
    char apiserver_log[600];
    pid_t broker;
    pid_t apiserver;
    //  The test's own connection: readiness probes and checks.
    zube_bus_t *bus;
    zube_api_t *api;
    //  What went wrong, when a call answered false.
    char why[400];
};

//  A new connection to the cluster's broker: config's fields, with the
//  endpoint, and insecure or the certs, filled in. config may be NULL.
static inline zube_bus_t *
zt_cluster_bus_new (const zt_cluster_t *cluster, const zube_bus_config_t *config)
{
    zube_bus_config_t copy = config ? *config : (zube_bus_config_t){0};
    copy.endpoint = cluster->endpoint;
    if (!copy.certs_dir && !copy.insecure) {
        copy.certs_dir = cluster->options.certs;
        copy.insecure = cluster->options.certs == NULL;
    }
    return zube_bus_new (&copy);
}

static inline bool
zt_cluster_default_ready (zt_cluster_t *cluster)
{
    ProtobufCMessage *ns = NULL;
    zube_status_t status =
        zube_api_get (cluster->api, "namespaces", NULL, "default", &ns, NULL);
    if (ns)
        protobuf_c_message_free_unpacked (ns, NULL);
    return status == ZUBE_OK;
}

//  Prints the last lines of log name (in the cluster's dir).
static inline void
zt_cluster_log_tail (const zt_cluster_t *cluster, const char *name, int lines)
{
    char path[600];
    snprintf (path, sizeof path, "%s/%s", cluster->dir, name);
    zt_log_tail (path, lines);
}

//  Waits until the apiserver answers (options.ready), for up to
//  timeout_ms, keeping the test's connection alive. False, with the
//  apiserver log's tail printed and why set, when it exits first or time
//  runs out.
static inline bool
zt_cluster_wait_api (zt_cluster_t *cluster, int timeout_ms)
{
    zt_cluster_ready_fn *ready =
        cluster->options.ready ? cluster->options.ready : zt_cluster_default_ready;
    int api_timeout = cluster->options.api_timeout_ms > 0 ? cluster->options.api_timeout_ms
                                                          : 10000;
    int64_t until = zt_now_ms () + timeout_ms;
    while (true) {
        zube_api_set_timeout (cluster->api, 1000);
        bool answers = ready (cluster);
        zube_api_set_timeout (cluster->api, api_timeout);
        if (answers)
            return true;
        if (cluster->apiserver > 0
            && waitpid (cluster->apiserver, NULL, WNOHANG) == cluster->apiserver) {
            cluster->apiserver = 0;
            zt_log_tail (cluster->apiserver_log, 20);
            snprintf (cluster->why, sizeof cluster->why,
                      "zube-apiserver exited before it was ready (log %.300s)",
                      cluster->apiserver_log);
            return false;
        }
        if (zt_now_ms () > until) {
            zt_log_tail (cluster->apiserver_log, 20);
            snprintf (cluster->why, sizeof cluster->why,
                      "zube-apiserver not ready within %d ms (log %.300s)", timeout_ms,
                      cluster->apiserver_log);
            return false;
        }
        zube_bus_poll (cluster->bus, 50);
    }
}

//  Starts one more apiserver as configured, without waiting for it; the
//  caller owns the pid (zt_stop it).
static inline pid_t
zt_cluster_spawn_apiserver (zt_cluster_t *cluster)
{
    const zt_cluster_options_t *options = &cluster->options;
    if (options->apiserver_argv)
        return zt_spawn_tied ((char *const *) options->apiserver_argv,
                              cluster->apiserver_log);
    char window[16];
    snprintf (window, sizeof window, "%d", options->window);
    const char *argv[64];
    int argc = 0;
    argv[argc++] = zt_program ("zube-apiserver");
    argv[argc++] = "--bus";
    argv[argc++] = cluster->endpoint;
    if (options->certs) {
        argv[argc++] = "--certs";
        argv[argc++] = options->certs;
        argv[argc++] = "--name";
        argv[argc++] = "apiserver";
    }
    else
        argv[argc++] = "--insecure";
    argv[argc++] = "--store";
    argv[argc++] = cluster->store;
    if (cluster->data_dir[0]) {
        argv[argc++] = "--data-dir";
        argv[argc++] = cluster->data_dir;
    }
    if (options->window > 0) {
        argv[argc++] = "--window";
        argv[argc++] = window;
    }
    for (int i = 0; options->apiserver_args && options->apiserver_args[i] && argc < 63; i++)
        argv[argc++] = options->apiserver_args[i];
    argv[argc] = NULL;
    return zt_spawn_tied ((char *const *) argv, cluster->apiserver_log);
}

//  Starts the apiserver (again, after zt_cluster_kill_apiserver: same
//  store, data and port) and waits until it answers.
static inline bool
zt_cluster_start_apiserver (zt_cluster_t *cluster)
{
    cluster->apiserver = zt_cluster_spawn_apiserver (cluster);
    if (cluster->apiserver <= 0) {
        cluster->apiserver = 0;
        snprintf (cluster->why, sizeof cluster->why, "cannot start %.300s",
                  zt_program ("zube-apiserver"));
        return false;
    }
    int timeout = cluster->options.ready_timeout_ms > 0 ? cluster->options.ready_timeout_ms
                                                        : 20000;
    return zt_cluster_wait_api (cluster, timeout);
}

//  Stops the apiserver with sig (SIGKILL: a crash); answers its wait status.
static inline int
zt_cluster_kill_apiserver (zt_cluster_t *cluster, int sig)
{
    int status = cluster->apiserver > 0 ? zt_stop (cluster->apiserver, sig, 5000) : -1;
    cluster->apiserver = 0;
    return status;
}

//  kill -<sig> of the apiserver, started again at once; true when it
//  answers again.
static inline bool
zt_cluster_restart_apiserver (zt_cluster_t *cluster, int sig)
{
    zt_cluster_kill_apiserver (cluster, sig);
    return zt_cluster_start_apiserver (cluster);
}

//  Starts the broker (again, after zt_cluster_kill_broker: the same port).
static inline bool
zt_cluster_start_broker (zt_cluster_t *cluster)
{
    const zt_cluster_options_t *options = &cluster->options;
    cluster->broker = zt_broker_start (cluster->endpoint, options->certs,
                                       options->heartbeat_ms, options->hwm,
                                       cluster->broker_log);
    if (cluster->broker > 0)
        return true;
    cluster->broker = 0;
    zt_log_tail (cluster->broker_log, 20);
    snprintf (cluster->why, sizeof cluster->why, "cannot start %.300s",
              zt_program ("zube-broker"));
    return false;
}

static inline int
zt_cluster_kill_broker (zt_cluster_t *cluster, int sig)
{
    int status = cluster->broker > 0 ? zt_stop (cluster->broker, sig, 3000) : -1;
    cluster->broker = 0;
    return status;
}

//  Stops what runs and closes the test's connection; when failed, prints
//  the logs' tails and keeps a directory of its own (else removed).
static inline void
zt_cluster_stop (zt_cluster_t *cluster, bool failed)
{
    if (failed && cluster->dir[0]) {
        zt_log_tail (cluster->apiserver_log, 30);
        zt_log_tail (cluster->broker_log, 10);
    }
    zube_api_destroy (&cluster->api);
    zube_bus_destroy (&cluster->bus);
    if (cluster->apiserver > 0) {
        int status = zt_cluster_kill_apiserver (cluster, SIGTERM);
        if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0))
            printf ("# apiserver exit status %d\n", status);
    }
    zt_cluster_kill_broker (cluster, SIGTERM);
    if (cluster->own_dir && cluster->dir[0]) {
        if (failed)
            printf ("# kept %s\n", cluster->dir);
        else
            zt_rmtree (cluster->dir);
    }
    cluster->dir[0] = 0;
    cluster->own_dir = false;
}

//  Decodes yaml as a descriptor message and creates it in namespace
//  through the test's connection; asserts both worked. With created_p,
//  the object as stored (the caller frees it).
static inline void
zt_cluster_create_yaml (zt_cluster_t *cluster, const char *resource, const char *namespace,
                        const ProtobufCMessageDescriptor *descriptor, const char *yaml,
                        ProtobufCMessage **created_p)
{
    ProtobufCMessage *object = NULL;
    zube_codec_error_t codec_error;
    ZT_ASSERT_MSG (zube_codec_decode (yaml, strlen (yaml), descriptor, &object,
                                      &codec_error) == 0,
                   "%s", codec_error.message);
    zube_api_error_t error;
    zube_status_t status = zube_api_create (cluster->api, resource, namespace, object,
                                            false, created_p, &error);
    protobuf_c_message_free_unpacked (object, NULL);
    ZT_ASSERT_MSG (status == ZUBE_OK, "create %s: %.800s", resource, error.message);
}

//  The objects of resource in namespace whose labels match selector (all
//  with NULL) through the test's connection; NULL when the list fails.
//  The caller destroys the list.
static inline zube_api_list_t *
zt_cluster_list (zt_cluster_t *cluster, const char *resource, const char *namespace,
                 const char *selector)
{
    zube_api_list_t *list = NULL;
    zube_api_list (
        cluster->api, resource,
        &(zube_api_list_options_t){.namespace = namespace, .label_selector = selector},
        &list, NULL);
    return list;
}

//  Patches namespace/name of resource with the merge patch patch through
//  the test's connection; asserts it worked.
static inline void
zt_cluster_patch (zt_cluster_t *cluster, const char *resource, const char *namespace,
                  const char *name, const char *patch)
{
    zube_api_error_t error;
    ZT_ASSERT_MSG (zube_api_patch (cluster->api, resource, namespace, name, NULL, patch,
                                   NULL, false, NULL, &error) == ZUBE_OK,
                   "patch %s %s: %.800s", resource, name, error.message);
}

//  What service's method (called without a payload) answers, as text
//  (NULL when it does not answer ZUBE_OK within timeout_ms; the caller
//  frees it).
static inline char *
zt_bus_call_text (zube_bus_t *bus, const char *service, const char *method, int timeout_ms)
{
    zube_bus_reply_t *reply = NULL;
    char *text = NULL;
    if (zube_bus_call (bus, service, method, NULL, 0, timeout_ms, &reply) == 0
        && reply->status == ZUBE_OK) {
        text = calloc (1, reply->payload_size + 1);
        if (text)
            memcpy (text, reply->payload, reply->payload_size);
    }
    zube_bus_reply_destroy (&reply);
    return text;
}

//  Waits until pod namespace/name is bound: its node into node, "" after
//  timeout_ms. -1 when the pod does not exist, else 0.
static inline int
zt_cluster_wait_bound (zt_cluster_t *cluster, const char *namespace, const char *name,
                       char *node, size_t size, int timeout_ms)
{
    node[0] = 0;
    int64_t until = zt_now_ms () + timeout_ms;
    do {
        ProtobufCMessage *object = NULL;
        if (zube_api_get (cluster->api, "pods", namespace, name, &object, NULL) != ZUBE_OK)
            return -1;
        Zube__Pod *pod = (Zube__Pod *)object;
        if (pod->spec && pod->spec->node_name)
            snprintf (node, size, "%s", pod->spec->node_name);
        protobuf_c_message_free_unpacked (object, NULL);
        if (node[0])
            return 0;
        zube_bus_poll (cluster->bus, 50);
    } while (zt_now_ms () < until);
    return 0;
}

//  Starts the broker on free ports, the test's connection, and the
//  apiserver, and waits until it answers. False with why set (and what
//  started still running: zt_cluster_stop it, as after true).
static inline bool
zt_cluster_start (zt_cluster_t *cluster, const zt_cluster_options_t *options)
{
    *cluster = (zt_cluster_t){.options = options ? *options : (zt_cluster_options_t){0}};
    options = &cluster->options;
    if (options->dir)
        snprintf (cluster->dir, sizeof cluster->dir, "%s", options->dir);
    else {
        char *dir = zt_tempdir (options->tag ? options->tag : "cluster");
        if (!dir) {
            snprintf (cluster->why, sizeof cluster->why, "no temporary directory");
            return false;
        }
        snprintf (cluster->dir, sizeof cluster->dir, "%s", dir);
        free (dir);
        cluster->own_dir = true;
    }
    snprintf (cluster->broker_log, sizeof cluster->broker_log, "%s/%s", cluster->dir,
              options->broker_log ? options->broker_log : "broker.log");
    snprintf (cluster->apiserver_log, sizeof cluster->apiserver_log, "%s/%s",
              cluster->dir, options->apiserver_log ? options->apiserver_log : "apiserver.log");
    if (options->store)
        snprintf (cluster->store, sizeof cluster->store, "%s", options->store);
    else
        snprintf (cluster->store, sizeof cluster->store, "lmdb:%s/store", cluster->dir);
    if (options->data_dir) {
        snprintf (cluster->data_dir, sizeof cluster->data_dir, "%s/%s", cluster->dir,
                  options->data_dir);
        mkdir (cluster->data_dir, 0700);
    }
    cluster->port = options->port > 0 ? options->port : zt_free_port (3);
    snprintf (cluster->endpoint, sizeof cluster->endpoint, "tcp://127.0.0.1:%d",
              cluster->port);
    if (!zt_cluster_start_broker (cluster))
        return false;
    if (options->broker_only)
        return true;
    cluster->bus = zt_cluster_bus_new (
        cluster, &(zube_bus_config_t){.name = options->certs ? options->client_name : NULL,
                                      .heartbeat_ms = options->client_heartbeat_ms});
    cluster->api = cluster->bus ? zube_api_new (cluster->bus) : NULL;
    if (!cluster->api) {
        snprintf (cluster->why, sizeof cluster->why, "no connection to %s",
                  cluster->endpoint);
        return false;
    }
    zube_api_set_timeout (cluster->api,
                          options->api_timeout_ms > 0 ? options->api_timeout_ms : 10000);
    if (!options->apiserver_argv && access (zt_program ("zube-apiserver"), X_OK) != 0) {
        snprintf (cluster->why, sizeof cluster->why, "zube-apiserver is not built (%.300s)",
                  zt_program ("zube-apiserver"));
        return false;
    }
    return zt_cluster_start_apiserver (cluster);
}


//  --------------------------------------------------------------------------
//  A simulated node pool and a scheduler

//  The scheduler's stats as text (NULL when it does not answer within
//  timeout_ms; the caller frees it).
static inline char *
zt_sched_stats (zube_bus_t *bus, int timeout_ms)
{
    return zt_bus_call_text (bus, "scheduler", "stats", timeout_ms);
}

//  The number under key in the stats text (-1 when text or key is missing).
static inline long
zt_sched_stat (const char *text, const char *key)
{
    char quoted[64];
    snprintf (quoted, sizeof quoted, "\"%s\": ", key);
    const char *at = text ? strstr (text, quoted) : NULL;
    return at ? strtol (at + strlen (quoted), NULL, 10) : -1;
}

//  Spawns, tied to the test, a zubelet simulating nodes nodes named
//  prefix0.. (log level zubelet_log_level unless NULL) and a
//  zube-scheduler (with the config file config unless NULL), both on
//  cluster's bus, logging to zubelet.log and scheduler.log in its
//  directory; then waits until the scheduler holds the nodes. False with
//  why set when it does not within 30 s (the pids are set either way).
static inline bool
zt_sched_start (zt_cluster_t *cluster, int nodes, const char *prefix,
                const char *zubelet_log_level, const char *config, pid_t *zubelet_p,
                pid_t *scheduler_p, char *why, size_t size)
{
    char state[700], log[700], count[16];
    snprintf (state, sizeof state, "%s/zubelet", cluster->dir);
    snprintf (log, sizeof log, "%s/zubelet.log", cluster->dir);
    snprintf (count, sizeof count, "%d", nodes);
    char *zubelet_argv[16] = {(char *)zt_program ("zubelet"), "--bus", cluster->endpoint,
                              "--insecure", "--nodes", count, "--node-name-prefix",
                              (char *)prefix, "--state-dir", state};
    if (zubelet_log_level) {
        zubelet_argv[10] = "--log-level";
        zubelet_argv[11] = (char *)zubelet_log_level;
    }
    *zubelet_p = zt_spawn_tied (zubelet_argv, log);
    snprintf (log, sizeof log, "%s/scheduler.log", cluster->dir);
    char *scheduler_argv[8] = {(char *)zt_program ("zube-scheduler"), "--bus",
                               cluster->endpoint, "--insecure"};
    if (config) {
        scheduler_argv[4] = "--config";
        scheduler_argv[5] = (char *)config;
    }
    *scheduler_p = zt_spawn_tied (scheduler_argv, log);
    int64_t until = zt_now_ms () + 30000;
    while (zt_now_ms () < until) {
        char *stats = zt_sched_stats (cluster->bus, 2000);
        long held = zt_sched_stat (stats, "nodes");
        free (stats);
        if (held == nodes)
            return true;
        zube_bus_poll (cluster->bus, 100);
    }
    zt_cluster_log_tail (cluster, "scheduler.log", 20);
    zt_cluster_log_tail (cluster, "zubelet.log", 20);
    snprintf (why, size, "the scheduler did not become ready with %d nodes", nodes);
    return false;
}

//  Stops the scheduler and the zubelet of zt_sched_start, then the
//  cluster. After a failed setup (setup_failed) they are killed at once;
//  else stopped with SIGTERM, with the scheduler log's last log_lines
//  lines printed first when a test failed.
static inline void
zt_sched_stop (zt_cluster_t *cluster, pid_t zubelet, pid_t scheduler, bool setup_failed,
               int log_lines)
{
    bool failed = setup_failed || zt_failed_count > 0;
    if (failed && !setup_failed)
        zt_cluster_log_tail (cluster, "scheduler.log", log_lines);
    if (scheduler > 0)
        zt_stop (scheduler, setup_failed ? SIGKILL : SIGTERM, setup_failed ? 1000 : 5000);
    if (zubelet > 0)
        zt_stop (zubelet, setup_failed ? SIGKILL : SIGTERM, setup_failed ? 1000 : 10000);
    zt_cluster_stop (cluster, failed);
}

#endif
