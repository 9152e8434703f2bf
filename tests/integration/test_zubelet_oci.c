#define _GNU_SOURCE
/*  test_zubelet_oci - the zubelet with the oci runtime against a real
    zube-broker and zube-apiserver: pods of the busybox test image through
    their phases with restartPolicy Never, OnFailure and Always, an init
    container's failure blocking the app container, a failing liveness
    probe restarting its container, a readiness probe toggling Ready, an
    httpGet readiness probe run by the zubelet against the pod IP, logs
    and exec (exit code) through zubectl, configMap and secret volumes and
    env (written and resolved by the zubelet), and a zubelet killed with -9
    while 20 pods run, restarted: the same 20 containers, no duplicate.
    Every pod is deleted at the end and nothing of them may stay.

    Needs root, runc and the CNI plugins; skips with the reason otherwise.
    Its network: bridge zu<pid> with 10.214.<n>.0/24, removed at the end. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zt_cluster.h"
#include "../zt_oci.h"
#include <dirent.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "zube/api.h"
#include "zube/codec.h"
#include "zube/runtime_client.h"
#include "core.pb-c.h"

#define S_IMAGE ZT_OCI_IMAGE
#define S_NODE "oci-n1"

static zt_cluster_t s_cluster;
static char *s_dir;             //  the zubelet's state and the images
static char s_state[600];
static char s_images[600];
static char s_option_state[700];
static char s_option_bridge[64];
static char s_option_cidr[64];
static char s_option_cgroup[100];
static char s_option_images[700];
static char s_bridge[16];
static char s_cgroup[64];
static pid_t s_zubelet;
static int s_zubelet_starts;

static bool
s_zubelet_start (void)
{
    char log[700];
    snprintf (log, sizeof log, "%s/zubelet-%d.log", s_dir, s_zubelet_starts++);
    char *argv[] = {(char *) zt_program ("zubelet"),
                    "--bus",
                    s_cluster.endpoint,
                    "--insecure",
                    "--runtime",
                    "oci",
                    "--node-name",
                    S_NODE,
                    "--state-dir",
                    s_state,
                    "--crash-loop-backoff-base",
                    "500ms",
                    "--crash-loop-backoff-max",
                    "2s",
                    "--exec-idle-timeout",
                    "2s",
                    "--runtime-option",
                    s_option_bridge,
                    "--runtime-option",
                    s_option_cidr,
                    "--runtime-option",
                    s_option_cgroup,
                    "--runtime-option",
                    s_option_images,
                    NULL};
    s_zubelet = zt_spawn (argv, log);
    return s_zubelet > 0;
}

static void
s_create_pod (const char *yaml)
{
    ProtobufCMessage *pod = NULL;
    zube_codec_error_t codec_error;
    ZT_ASSERT_MSG (zube_codec_decode (yaml, strlen (yaml), &zube__pod__descriptor, &pod,
                                      &codec_error) == 0,
                   "bad pod yaml: %s", codec_error.message);
    zube_api_error_t error;
    zube_status_t status = zube_api_create (s_cluster.api, "pods", "default", pod, false, NULL,
                                            &error);
    protobuf_c_message_free_unpacked (pod, NULL);
    ZT_ASSERT_MSG (status == ZUBE_OK, "create pod: %.900s", error.message);
}

static Zube__Pod *
s_pod (const char *name)
{
    ProtobufCMessage *object = NULL;
    zube_api_error_t error;
    if (zube_api_get (s_cluster.api, "pods", "default", name, &object, &error) != ZUBE_OK)
        return NULL;
    return (Zube__Pod *) object;
}

static void
s_pod_free (Zube__Pod *pod)
{
    if (pod)
        protobuf_c_message_free_unpacked (&pod->base, NULL);
}

typedef bool (s_pod_test_fn) (const Zube__Pod *pod, const void *arg);

//  Polls the pod until test answers true; the pod (caller frees) or NULL.
static Zube__Pod *
s_wait (const char *name, s_pod_test_fn *test, const void *arg, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        Zube__Pod *pod = s_pod (name);
        if (pod && test (pod, arg))
            return pod;
        s_pod_free (pod);
        usleep (100000);
    }
    return NULL;
}

static bool
s_phase_is (const Zube__Pod *pod, const void *phase)
{
    return pod->status && pod->status->phase && strcmp (pod->status->phase, phase) == 0;
}

static const Zube__ContainerStatus *
s_container (const Zube__Pod *pod, bool init, size_t index)
{
    if (!pod->status)
        return NULL;
    size_t count = init ? pod->status->n_init_container_statuses
                        : pod->status->n_container_statuses;
    if (index >= count)
        return NULL;
    return init ? pod->status->init_container_statuses[index]
                : pod->status->container_statuses[index];
}

static bool
s_restarted (const Zube__Pod *pod, const void *count)
{
    const Zube__ContainerStatus *c = s_container (pod, false, 0);
    return c && c->restart_count >= *(const int *) count;
}

static bool
s_ready_is (const Zube__Pod *pod, const void *value)
{
    for (size_t i = 0; pod->status && i < pod->status->n_conditions; i++)
        if (strcmp (pod->status->conditions[i]->type, "Ready") == 0)
            return strcmp (pod->status->conditions[i]->status, value) == 0;
    return false;
}

static zt_run_t
s_zubectl (const char *first, ...)
{
    va_list args;
    va_start (args, first);
    zt_run_t result = zt_run_capture_va (
        30000,
        (const char *[]) {zt_program ("zubectl"), "--broker", s_cluster.endpoint, "--insecure",
                          "--request-timeout", "20s", first, NULL},
        args);
    va_end (args);
    return result;
}

static void
s_delete_pod (const char *name)
{
    zube_api_error_t error;
    zube_api_delete (s_cluster.api, "pods", "default", name, NULL, NULL, &error);
}

static bool
s_gone (const char *name, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        Zube__Pod *pod = s_pod (name);
        if (!pod)
            return true;
        s_pod_free (pod);
        usleep (100000);
    }
    return false;
}

static int
s_count_dir (const char *path)
{
    DIR *dir = opendir (path);
    if (!dir)
        return 0;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        count += entry->d_name[0] != '.';
    closedir (dir);
    return count;
}

//  ---------------------------------------------------------------------
//  Cases

static void
test_restart_policies (void)
{
    s_create_pod ("metadata: {name: never}\nspec:\n  nodeName: " S_NODE "\n"
                  "  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n"
                  "  containers:\n  - {name: c, image: " S_IMAGE ", command: [sh, -c, 'exit 3']}\n");
    s_create_pod ("metadata: {name: onfailure}\nspec:\n  nodeName: " S_NODE "\n"
                  "  restartPolicy: OnFailure\n  terminationGracePeriodSeconds: 1\n"
                  "  containers:\n  - {name: c, image: " S_IMAGE ", command: ['true']}\n");
    s_create_pod ("metadata: {name: always}\nspec:\n  nodeName: " S_NODE "\n"
                  "  terminationGracePeriodSeconds: 1\n"
                  "  containers:\n  - {name: c, image: " S_IMAGE ", command: [sh, -c, 'echo run; exit 0']}\n");
    Zube__Pod *pod = s_wait ("never", s_phase_is, "Failed", 30000);
    ZT_ASSERT_MSG (pod, "never did not fail");
    const Zube__ContainerStatus *c = s_container (pod, false, 0);
    ZT_ASSERT (c && c->state && c->state->terminated);
    ZT_ASSERT_INT_EQ (c->state->terminated->exit_code, 3);
    ZT_ASSERT_STR_EQ (c->state->terminated->reason, "Error");
    ZT_ASSERT_MSG (c->container_id && strncmp (c->container_id, "oci://", 6) == 0, "id %s",
                   c->container_id ? c->container_id : "");
    ZT_ASSERT_MSG (pod->status->pod_ip && strncmp (pod->status->pod_ip, "10.214.", 7) == 0,
                   "podIP %s", pod->status->pod_ip ? pod->status->pod_ip : "");
    s_pod_free (pod);
    pod = s_wait ("onfailure", s_phase_is, "Succeeded", 30000);
    ZT_ASSERT_MSG (pod, "onfailure did not succeed");
    c = s_container (pod, false, 0);
    ZT_ASSERT_INT_EQ (c->restart_count, 0);
    ZT_ASSERT_STR_EQ (c->state->terminated->reason, "Completed");
    s_pod_free (pod);
    int two = 2;
    pod = s_wait ("always", s_restarted, &two, 30000);
    ZT_ASSERT_MSG (pod, "always was not restarted twice");
    s_pod_free (pod);
    //  logs --previous of the exited instance
    zt_run_t r = s_zubectl ("logs", "always", "--previous", NULL);
    ZT_ASSERT_MSG (r.status == 0 && r.out && strstr (r.out, "run"), "logs: %d %s %s", r.status,
                   r.out ? r.out : "", r.err ? r.err : "");
    zt_run_free (&r);
    s_delete_pod ("never");
    s_delete_pod ("onfailure");
    s_delete_pod ("always");
    ZT_ASSERT (s_gone ("never", 20000) && s_gone ("onfailure", 20000) && s_gone ("always", 20000));
}

static void
test_init_failure_blocks (void)
{
    s_create_pod ("metadata: {name: initfail}\nspec:\n  nodeName: " S_NODE "\n"
                  "  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n"
                  "  initContainers:\n  - {name: setup, image: " S_IMAGE ", command: [sh, -c, 'exit 2']}\n"
                  "  containers:\n  - {name: app, image: " S_IMAGE ", command: [sleep, '3600']}\n");
    Zube__Pod *pod = s_wait ("initfail", s_phase_is, "Failed", 30000);
    ZT_ASSERT_MSG (pod, "initfail did not fail");
    const Zube__ContainerStatus *init = s_container (pod, true, 0);
    ZT_ASSERT (init && init->state && init->state->terminated);
    ZT_ASSERT_INT_EQ (init->state->terminated->exit_code, 2);
    const Zube__ContainerStatus *app = s_container (pod, false, 0);
    ZT_ASSERT (app && app->state);
    ZT_ASSERT_MSG (!app->state->running && !app->state->terminated, "the app container ran");
    ZT_ASSERT (!app->container_id || !*app->container_id);
    s_pod_free (pod);
    s_delete_pod ("initfail");
    ZT_ASSERT (s_gone ("initfail", 20000));
}

static void
test_probes (void)
{
    //  Liveness: healthy for a second, then not
    s_create_pod ("metadata: {name: sick}\nspec:\n  nodeName: " S_NODE "\n"
                  "  terminationGracePeriodSeconds: 1\n"
                  "  containers:\n  - name: c\n    image: " S_IMAGE "\n"
                  "    command: [sh, -c, 'touch /tmp/ok; sleep 1; rm /tmp/ok; sleep 3600']\n"
                  "    livenessProbe: {exec: {command: [test, -f, /tmp/ok]}, periodSeconds: 1, "
                  "failureThreshold: 1}\n");
    //  Readiness: ready for two seconds, then not
    s_create_pod ("metadata: {name: flaky}\nspec:\n  nodeName: " S_NODE "\n"
                  "  terminationGracePeriodSeconds: 1\n"
                  "  containers:\n  - name: c\n    image: " S_IMAGE "\n"
                  "    command: [sh, -c, 'touch /tmp/ready; sleep 3; rm /tmp/ready; sleep 3600']\n"
                  "    readinessProbe: {exec: {command: [test, -f, /tmp/ready]}, periodSeconds: 1}\n");
    //  httpGet readiness: the zubelet's prober against the pod IP
    s_create_pod ("metadata: {name: web}\nspec:\n  nodeName: " S_NODE "\n"
                  "  terminationGracePeriodSeconds: 1\n"
                  "  containers:\n  - name: httpd\n    image: " S_IMAGE "\n"
                  "    command: [httpd, -f, -p, '8080', -h, /www]\n"
                  "    ports: [{containerPort: 8080, name: http}]\n"
                  "    readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}\n");
    int one = 1;
    Zube__Pod *pod = s_wait ("sick", s_restarted, &one, 30000);
    ZT_ASSERT_MSG (pod, "sick was not restarted by its liveness probe");
    const Zube__ContainerStatus *c = s_container (pod, false, 0);
    ZT_ASSERT (c->last_state && c->last_state->terminated);
    ZT_ASSERT_INT_EQ (c->last_state->terminated->exit_code, 137);
    s_pod_free (pod);
    pod = s_wait ("flaky", s_ready_is, "True", 20000);
    ZT_ASSERT_MSG (pod, "flaky never became Ready");
    s_pod_free (pod);
    pod = s_wait ("flaky", s_ready_is, "False", 20000);
    ZT_ASSERT_MSG (pod, "flaky did not lose Ready");
    s_pod_free (pod);
    pod = s_wait ("web", s_ready_is, "True", 20000);
    ZT_ASSERT_MSG (pod, "web never became Ready (httpGet to the pod IP)");
    s_pod_free (pod);
    //  exec: the command's exit code and output
    zt_run_t r = s_zubectl ("exec", "web", "--", "sh", "-c", "echo hi; exit 5", NULL);
    ZT_ASSERT_MSG (r.status == 5 && r.out && strstr (r.out, "hi"), "exec: %d %s %s", r.status,
                   r.out ? r.out : "", r.err ? r.err : "");
    zt_run_free (&r);
    s_delete_pod ("sick");
    s_delete_pod ("flaky");
    s_delete_pod ("web");
    ZT_ASSERT (s_gone ("sick", 20000) && s_gone ("flaky", 20000) && s_gone ("web", 20000));
}

//  zubectl exec -i/-t: a session on the node agent, stdin streamed, a pty
static void
s_exec_interactive (void)
{
    Zube__Pod *pod = s_wait ("shell", s_phase_is, "Running", 30000);
    ZT_ASSERT_MSG (pod, "pod shell is not Running");
    s_pod_free (pod);
    char command[2048];
    snprintf (command, sizeof command,
              "echo hello | %s --broker %s --insecure exec -i shell -- cat",
              zt_program ("zubectl"), s_cluster.endpoint);
    zt_run_t r = zt_run_capture (30000, (char *const[]) {"/bin/sh", "-c", command, NULL});
    ZT_ASSERT_MSG (r.status == 0 && r.out && strcmp (r.out, "hello\n") == 0, "exec -i: %d [%s] %s",
                   r.status, r.out ? r.out : "", r.err ? r.err : "");
    zt_run_free (&r);
    r = s_zubectl ("exec", "-i", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
                   NULL);
    ZT_ASSERT_MSG (r.status == 3 && r.out && strcmp (r.out, "out\n") == 0 && r.err
                       && strstr (r.err, "err\ncommand terminated with exit code 3\n"),
                   "exec -i exit: %d [%s] [%s]", r.status, r.out ? r.out : "",
                   r.err ? r.err : "");
    zt_run_free (&r);
    //  -t without a terminal: kubectl's warning, then on without one
    r = s_zubectl ("exec", "-t", "shell", "--", "sh", "-c", "tty; exit 0", NULL);
    ZT_ASSERT_MSG (r.err && strstr (r.err, "Unable to use a TTY - input is not a terminal or "
                                           "the right kind of file"),
                   "exec -t warning: %s", r.err ? r.err : "");
    ZT_ASSERT_MSG (r.out && strstr (r.out, "not a tty"), "exec -t without a terminal: %s",
                   r.out ? r.out : "");
    zt_run_free (&r);
    //  -it inside a pty of ours: a shell, its answers, its exit code
    int master = -1;
    pid_t child = forkpty (&master, NULL, NULL, &(struct winsize) {.ws_col = 100, .ws_row = 30});
    if (child == 0) {
        execl (zt_program ("zubectl"), "zubectl", "--broker", s_cluster.endpoint, "--insecure",
               "exec", "-it", "shell", "--", "sh", NULL);
        _exit (127);
    }
    ZT_ASSERT (child > 0);
    int status = -1;
    const char *input = "tty; stty size; echo $((6*7))\rexit 5\r";
    ZT_ASSERT (write (master, input, strlen (input)) == (ssize_t) strlen (input));
    char seen[8192];
    size_t used = 0;
    int64_t until = zt_now_ms () + 30000;
    while (zt_now_ms () < until && used < sizeof seen - 1) {
        struct pollfd fd = {.fd = master, .events = POLLIN};
        if (poll (&fd, 1, 200) <= 0) {
            if (waitpid (child, &status, WNOHANG) == child) {
                child = 0;
                break;
            }
            continue;
        }
        ssize_t n = read (master, seen + used, sizeof seen - 1 - used);
        if (n <= 0)
            break;
        used += (size_t) n;
    }
    seen[used] = 0;
    if (child > 0)
        waitpid (child, &status, 0);
    close (master);
    ZT_ASSERT_MSG (strstr (seen, "\n42\r") || strstr (seen, "\r\n42"), "no 42 in: %s", seen);
    ZT_ASSERT_MSG (strstr (seen, "/dev/pts/"), "tty is not a pts: %s", seen);
    ZT_ASSERT_MSG (strstr (seen, "30 100"), "stty size is not 30 100: %s", seen);
    ZT_ASSERT_MSG (WIFEXITED (status) && WEXITSTATUS (status) == 5,
                   "exec -it exit status %d: %s", status, seen);
    //  A zubectl killed mid-session: its command is killed once the
    //  session was idle past --exec-idle-timeout (2s here)
    char log[700];
    snprintf (log, sizeof log, "%s/zubectl-killed.log", s_dir);
    pid_t zubectl = zt_spawn ((char *const[]) {(char *) zt_program ("zubectl"), "--broker",
                                               s_cluster.endpoint, "--insecure", "exec", "-i",
                                               "shell", "--", "sleep", "1001", NULL},
                              log);
    ZT_ASSERT (zubectl > 0);
    bool running = false;
    for (int i = 0; i < 100 && !running; i++) {
        r = s_zubectl ("exec", "shell", "--", "ps", NULL);
        running = r.out && strstr (r.out, "sleep 1001");
        zt_run_free (&r);
        if (!running)
            usleep (100000);
    }
    ZT_ASSERT_MSG (running, "the session's command never ran");
    kill (zubectl, SIGKILL);
    waitpid (zubectl, NULL, 0);
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        r = s_zubectl ("exec", "shell", "--", "ps", NULL);
        gone = r.status == 0 && r.out && !strstr (r.out, "sleep 1001");
        zt_run_free (&r);
        if (!gone)
            usleep (100000);
    }
    ZT_ASSERT_MSG (gone, "the command of a dead zubectl's session still runs");
}

static void
test_exec_interactive (void)
{
    s_create_pod ("metadata: {name: shell, namespace: default}\n"
                  "spec:\n  nodeName: " S_NODE "\n  terminationGracePeriodSeconds: 1\n"
                  "  containers:\n  - name: sh\n"
                  "    image: " S_IMAGE "\n    command: [sleep, '3600']\n");
    s_exec_interactive ();
    s_delete_pod ("shell");
    ZT_ASSERT (s_gone ("shell", 30000));
}

//  An image imported through zubectl (the node service, the runtime's
//  image_import) runs; image list shows it; a missing one is
//  ErrImageNeverPull with pull policy Never
static void
test_image_import (void)
{
    char script[600], archive[700];
    snprintf (script, sizeof script, "%s/scripts/make-test-image.sh", getenv ("ZUBE_SRCDIR"));
    snprintf (archive, sizeof archive, "%s/other.tar", s_dir);
    zt_run_t r = zt_run_capture (60000, (char *const[]) {"/bin/sh", script, "-f", "oci-archive",
                                                        "-n", "zube.test/other:2", archive,
                                                        NULL});
    ZT_ASSERT_MSG (r.status == 0, "make-test-image.sh: %s", r.err ? r.err : "");
    zt_run_free (&r);
    r = s_zubectl ("image", "import", archive, "--node", S_NODE, NULL);
    ZT_ASSERT_MSG (r.status == 0, "import: %s %s", r.out ? r.out : "", r.err ? r.err : "");
    zt_run_free (&r);
    r = s_zubectl ("image", "list", "--node", S_NODE, NULL);
    ZT_ASSERT_MSG (r.status == 0 && r.out && strstr (r.out, "zube.test/other:2")
                       && strstr (r.out, "zube.test/busybox:1"),
                   "list: %s %s", r.out ? r.out : "", r.err ? r.err : "");
    zt_run_free (&r);
    s_create_pod ("metadata: {name: other}\nspec:\n  nodeName: " S_NODE "\n"
                  "  restartPolicy: Never\n"
                  "  containers:\n  - {name: c, image: 'zube.test/other:2', command: ['true']}\n");
    s_create_pod ("metadata: {name: absent}\nspec:\n  nodeName: " S_NODE "\n"
                  "  containers:\n  - {name: c, image: 'zube.test/absent:1', "
                  "imagePullPolicy: Never}\n");
    Zube__Pod *pod = s_wait ("other", s_phase_is, "Succeeded", 30000);
    ZT_ASSERT_MSG (pod, "the imported image did not run");
    s_pod_free (pod);
    int64_t until = zt_now_ms () + 20000;
    bool waiting = false;
    while (!waiting && zt_now_ms () < until) {
        pod = s_pod ("absent");
        const Zube__ContainerStatus *c = pod ? s_container (pod, false, 0) : NULL;
        waiting = c && c->state && c->state->waiting && c->state->waiting->reason
                  && strcmp (c->state->waiting->reason, "ErrImageNeverPull") == 0;
        s_pod_free (pod);
        if (!waiting)
            usleep (100000);
    }
    ZT_ASSERT_MSG (waiting, "absent is not waiting with ErrImageNeverPull");
    s_delete_pod ("other");
    s_delete_pod ("absent");
    ZT_ASSERT (s_gone ("other", 20000) && s_gone ("absent", 20000));
}

static bool
s_running (const Zube__Pod *pod, const void *arg)
{
    (void) arg;
    const Zube__ContainerStatus *c = s_container (pod, false, 0);
    return s_phase_is (pod, "Running") && c && c->state && c->state->running;
}

static void
test_zubelet_kill_adopts (void)
{
    enum { N = 20 };
    char ids[N][128];
    for (int i = 0; i < N; i++) {
        char yaml[512];
        snprintf (yaml, sizeof yaml,
                  "metadata: {name: keep%d}\nspec:\n  nodeName: " S_NODE "\n"
                  "  terminationGracePeriodSeconds: 1\n"
                  "  containers:\n  - {name: c, image: " S_IMAGE ", command: [sleep, '3600']}\n",
                  i);
        s_create_pod (yaml);
    }
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf (name, sizeof name, "keep%d", i);
        Zube__Pod *pod = s_wait (name, s_running, NULL, 60000);
        ZT_ASSERT_MSG (pod, "%s is not running", name);
        snprintf (ids[i], sizeof ids[i], "%s", s_container (pod, false, 0)->container_id);
        s_pod_free (pod);
    }
    kill (s_zubelet, SIGKILL);
    waitpid (s_zubelet, NULL, 0);
    ZT_ASSERT (s_zubelet_start ());
    char runc_root[700];
    snprintf (runc_root, sizeof runc_root, "%s/runtime/runc", s_state);
    //  Give the new zubelet time to adopt and write its first statuses;
    //  then every pod still runs the same container, started once
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf (name, sizeof name, "keep%d", i);
        Zube__Pod *pod = s_wait (name, s_running, NULL, 30000);
        ZT_ASSERT (pod);
        const Zube__ContainerStatus *c = s_container (pod, false, 0);
        ZT_ASSERT_STR_EQ (c->container_id, ids[i]);
        ZT_ASSERT_INT_EQ (c->restart_count, 0);
        s_pod_free (pod);
    }
    sleep (2);
    zt_run_t r = zt_run_capture (10000, (char *const[]) {"/usr/sbin/runc", "--root", runc_root,
                                                        "list", "-q", NULL});
    int count = 0;
    for (const char *c = r.out; c && *c; c++)
        count += *c == '\n';
    zt_run_free (&r);
    ZT_ASSERT_INT_EQ (count, N);
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf (name, sizeof name, "keep%d", i);
        Zube__Pod *pod = s_pod (name);
        ZT_ASSERT (pod && s_container (pod, false, 0));
        ZT_ASSERT_STR_EQ (s_container (pod, false, 0)->container_id, ids[i]);
        s_pod_free (pod);
        s_delete_pod (name);
    }
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf (name, sizeof name, "keep%d", i);
        ZT_ASSERT_MSG (s_gone (name, 30000), "%s was not deleted", name);
    }
}

static bool
s_message_has (const Zube__Pod *pod, const void *text)
{
    return pod->status && pod->status->message && strstr (pod->status->message, text);
}

//  configMap and secret volumes and env from them, which the zubelet writes
//  and resolves before the runtime sees the pod (docs/node-agent.md): the
//  container reads the values and the files and cannot write the files; a
//  pod whose ConfigMap is missing waits with Kubernetes' message and starts
//  once the ConfigMap is created; the written files go with the pod
static void
test_config_volumes (void)
{
    char file[700];
    snprintf (file, sizeof file, "%s/config.yaml", s_dir);
    ZT_WRITE_FILE (file,
                   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"
                              "data: {greeting: hello, app.conf: \"port=80\\n\"}\n"
                              "---\napiVersion: v1\nkind: Secret\nmetadata: {name: sec}\n"
                   "stringData: {password: s3cret}\n");
    zt_run_t r = s_zubectl ("apply", "-f", file, NULL);
    ZT_ASSERT_MSG (r.status == 0, "apply: %s", r.err ? r.err : "");
    zt_run_free (&r);
    s_create_pod (
        "metadata: {name: config}\nspec:\n  nodeName: " S_NODE "\n  restartPolicy: Never\n"
        "  containers:\n  - name: c\n    image: " S_IMAGE "\n"
        "    command: [sh, -c, 'echo G=$G P=$P C=$C_greeting; cat /etc/cfg/app.conf /etc/sec/pw;"
        " echo; ls /etc/sec; touch /etc/cfg/new 2>/dev/null || echo read-only']\n"
        "    env:\n    - {name: G, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}\n"
        "    - {name: P, valueFrom: {secretKeyRef: {name: sec, key: password}}}\n"
        "    envFrom: [{prefix: C_, configMapRef: {name: cfg}}]\n"
        "    volumeMounts: [{name: c, mountPath: /etc/cfg}, {name: s, mountPath: /etc/sec}]\n"
        "  volumes:\n  - {name: c, configMap: {name: cfg}}\n"
        "  - {name: s, secret: {secretName: sec, items: [{key: password, path: pw}]}}\n");
    s_create_pod ("metadata: {name: later}\nspec:\n  nodeName: " S_NODE "\n"
                  "  terminationGracePeriodSeconds: 1\n"
                  "  containers:\n  - {name: c, image: " S_IMAGE ", command: [sleep, '600'],"
                  " volumeMounts: [{name: v, mountPath: /v}]}\n"
                  "  volumes: [{name: v, configMap: {name: later}}]\n");
    Zube__Pod *pod = s_wait ("config", s_phase_is, "Succeeded", 30000);
    ZT_ASSERT_MSG (pod, "config did not succeed");
    s_pod_free (pod);
    r = s_zubectl ("logs", "config", NULL);
    ZT_ASSERT_MSG (r.status == 0 && r.out && strstr (r.out, "G=hello P=s3cret C=hello") &&
                       strstr (r.out, "port=80") && strstr (r.out, "s3cret\npw\nread-only"),
                   "logs: %s %s", r.out ? r.out : "", r.err ? r.err : "");
    zt_run_free (&r);
    //  The missing ConfigMap holds the other pod back, named in its status
    pod = s_wait ("later", s_message_has, "configmap \"later\" not found", 30000);
    ZT_ASSERT_MSG (pod, "later does not say its configmap is missing");
    ZT_ASSERT (s_phase_is (pod, "Pending"));
    s_pod_free (pod);
    ZT_WRITE_FILE (file, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later}\n"
                         "data: {k: v}\n");
    r = s_zubectl ("apply", "-f", file, NULL);
    zt_run_free (&r);
    pod = s_wait ("later", s_phase_is, "Running", 30000);
    ZT_ASSERT_MSG (pod, "later did not start once its configmap exists");
    s_pod_free (pod);
    char path[700];
    snprintf (path, sizeof path, "%s/volumes", s_state);
    ZT_ASSERT_INT_EQ (s_count_dir (path), 2);
    s_delete_pod ("config");
    s_delete_pod ("later");
    ZT_ASSERT (s_gone ("config", 20000) && s_gone ("later", 20000));
    ZT_ASSERT_INT_EQ (s_count_dir (path), 0);
}

//  After every pod is gone: nothing of them stays
static void
test_nothing_left (void)
{
    char path[700];
    snprintf (path, sizeof path, "%s/runtime/sandboxes", s_state);
    ZT_ASSERT_INT_EQ (s_count_dir (path), 0);
    snprintf (path, sizeof path, "%s/runtime/containers", s_state);
    ZT_ASSERT_INT_EQ (s_count_dir (path), 0);
    snprintf (path, sizeof path, "/sys/class/net/%s/brif", s_bridge);
    ZT_ASSERT_INT_EQ (s_count_dir (path), 0);
    char *mounts = zt_read_file ("/proc/self/mountinfo");
    ZT_ASSERT_MSG (!mounts || !strstr (mounts, s_dir), "a mount under %s is left", s_dir);
    free (mounts);
}

//  The zubelet stops cleanly on SIGTERM, and none of its runs reported a
//  sanitizer error (ASan builds) or a crash
static void
test_zubelet_logs_clean (void)
{
    ZT_ASSERT_INT_EQ (zt_stop (s_zubelet, SIGTERM, 20000), 0);
    s_zubelet = 0;
    for (int i = 0; i < s_zubelet_starts; i++) {
        char path[700];
        snprintf (path, sizeof path, "%s/zubelet-%d.log", s_dir, i);
        char *log = zt_read_file (path);
        ZT_ASSERT_MSG (log, "no log %s", path);
        bool bad = strstr (log, "Sanitizer") || strstr (log, "runtime error:");
        free (log);
        ZT_ASSERT_MSG (!bad, "%s has a sanitizer report", path);
    }
}

//  ---------------------------------------------------------------------

static bool
s_setup (void)
{
    s_dir = zt_tempdir ("zloci");
    snprintf (s_state, sizeof s_state, "%s/state", s_dir);
    snprintf (s_images, sizeof s_images, "%s/images", s_dir);
    snprintf (s_bridge, sizeof s_bridge, "zu%d", (int) (getpid () % 100000));
    snprintf (s_cgroup, sizeof s_cgroup, "zube-test-%d", (int) getpid ());
    snprintf (s_option_state, sizeof s_option_state, "state_dir=%s/runtime", s_state);
    snprintf (s_option_bridge, sizeof s_option_bridge, "bridge=%s", s_bridge);
    char cidr[32];
    zt_oci_free_subnet ("10.214", cidr, sizeof cidr);
    snprintf (s_option_cidr, sizeof s_option_cidr, "pod_cidr=%s", cidr);
    snprintf (s_option_cgroup, sizeof s_option_cgroup, "cgroup_parent=%s", s_cgroup);
    snprintf (s_option_images, sizeof s_option_images, "image_dir=%s", s_images);
    if (!zt_oci_import_test_image (s_dir, s_images))
        return false;
    if (!zt_cluster_start (&s_cluster, &(zt_cluster_options_t) {.tag = "zloci-cluster"})) {
        printf ("# cluster: %s\n", s_cluster.why);
        return false;
    }
    return s_zubelet_start ();
}

//  The zubelet stops; whatever a failed case left is removed through the
//  runtime itself; then the cgroup parents, the bridge, the directories.
static void
s_teardown (bool failed)
{
    if (s_zubelet > 0)
        zt_stop (s_zubelet, SIGTERM, 10000);
    if (failed) {
        char log[700];
        snprintf (log, sizeof log, "%s/zubelet-%d.log", s_dir, s_zubelet_starts - 1);
        zt_log_tail (log, 30);
    }
    zt_cluster_stop (&s_cluster, failed);
    zube_plugin_host_t *plugins = zube_plugin_host_new ();
    const char *options[] = {s_option_state, s_option_bridge, s_option_cidr, s_option_cgroup,
                             s_option_images, NULL};
    char *error = NULL;
    zube_runtime_t *runtime = zube_runtime_open (plugins, "oci", options, &error);
    if (runtime) {
        zt_oci_remove_all (runtime);
        zube_runtime_close (&runtime);
    }
    free (error);
    zube_plugin_host_destroy (&plugins);
    zt_oci_cleanup (s_cgroup, s_bridge, s_dir);
    free (s_dir);
}

int
main (void)
{
    const char *why = zt_oci_skip_reason ();
    if (why) {
        printf ("1..0 # SKIP %s\n", why);
        return 0;
    }
    if (!s_setup ()) {
        printf ("not ok 1 - setup\n1..1\n");
        s_teardown (true);
        return 1;
    }
    ZT_RUN (test_restart_policies);
    ZT_RUN (test_init_failure_blocks);
    ZT_RUN (test_probes);
    ZT_RUN (test_exec_interactive);
    ZT_RUN (test_image_import);
    ZT_RUN (test_zubelet_kill_adopts);
    ZT_RUN (test_config_volumes);
    ZT_RUN (test_nothing_left);
    ZT_RUN (test_zubelet_logs_clean);
    int rc = zt_done ();
    s_teardown (rc != 0);
    return rc;
}
