#define _GNU_SOURCE
/*  test_runtime_oci - the oci runtime plugin (oci.so) with real runc, CNI
    plugins and the busybox test image (scripts/make-test-image.sh),
    driven through zube_runtime_open as the zubelet drives it: a pod runs
    busybox and its logs are readable, exit codes and reasons, exec exit
    codes, an OOM kill, two pods talking over their pod IPs, a stop with
    SIGTERM then SIGKILL, bad input (missing image, unknown command,
    unwritable state dir), a close and reopen adopting what runs, and 50
    pods removed leaving no mount, netns, veth, cgroup or IP allocation.

    Needs root, runc and the CNI plugins; skips with the reason otherwise.
    Its network is its own: a bridge zt<pid> with 10.213.<n>.0/24, removed
    at the end; traffic stays inside it.

    The same cases run with crun as test_runtime_crun: this file built
    with ZT_OCI_RUNTIME "crun" (tests/oci.inc), which skips when crun is
    not installed. */
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "zube/codec.h"
#include "zube/runtime_client.h"
#include "core.pb-c.h"
#include "../zube_test.h"
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zt_cluster.h"
#include "../zt_oci.h"

#define S_IMAGE ZT_OCI_IMAGE

//  The low-level runtime under test (the plugin's runtime option)
#ifndef ZT_OCI_RUNTIME
#    define ZT_OCI_RUNTIME "runc"
#endif

static char *s_dir;
static char s_state[512];
static char s_bridge[16];
static char s_cidr[32];
static char s_cgroup[64];
static zube_plugin_host_t *s_plugins;
static zube_runtime_t *s_runtime;

//  ---------------------------------------------------------------------
//  Helpers

static bool
s_open (void)
{
    char state[600], bridge[64], cidr[64], cgroup[100];
    snprintf (state, sizeof state, "state_dir=%s", s_state);
    snprintf (bridge, sizeof bridge, "bridge=%s", s_bridge);
    snprintf (cidr, sizeof cidr, "pod_cidr=%s", s_cidr);
    snprintf (cgroup, sizeof cgroup, "cgroup_parent=%s", s_cgroup);
    const char *options[] = {state,  bridge, cidr, cgroup, "log_max_size=8192",
                             "runtime=" ZT_OCI_RUNTIME, NULL};
    char *error = NULL;
    s_runtime = zube_runtime_open (s_plugins, "oci", options, &error);
    if (!s_runtime)
        printf ("# open: %s\n", error ? error : "?");
    free (error);
    return s_runtime != NULL;
}

//  A pod from YAML, packed; its uid is its name.
static uint8_t *
s_pod (const char *yaml, size_t *size_p)
{
    ProtobufCMessage *message = NULL;
    zube_codec_error_t error;
    if (zube_codec_decode (yaml, strlen (yaml), &zube__pod__descriptor, &message, &error) != 0) {
        char line[512];
        printf ("# pod: %s\n", zube_codec_error_format (&error, line, sizeof line));
        return NULL;
    }
    size_t size = protobuf_c_message_get_packed_size (message);
    uint8_t *packed = malloc (size);
    protobuf_c_message_pack (message, packed);
    protobuf_c_message_free_unpacked (message, NULL);
    *size_p = size;
    return packed;
}

static zube_status_t
s_run_pod (const char *name, const char *yaml, char *sandbox, size_t sandbox_size)
{
    size_t size = 0;
    uint8_t *packed = s_pod (yaml, &size);
    if (!packed)
        return ZUBE_BAD_REQUEST;
    zube_runtime_sandbox_config_t config = {.struct_size = sizeof config,
                                            .node_name = "n1",
                                            .pod_namespace = "default",
                                            .pod_name = name,
                                            .pod_uid = name,
                                            .pod = packed,
                                            .pod_size = size};
    zube_status_t status = zube_runtime_run_sandbox (s_runtime, &config, sandbox, sandbox_size);
    free (packed);
    return status;
}

static zube_status_t
s_start (const char *sandbox, const char *name, bool init, uint32_t index, char *id)
{
    zube_runtime_container_config_t config = {
        .struct_size = sizeof config, .name = name, .init = init, .index = index};
    zube_status_t status = zube_runtime_create_container (s_runtime, sandbox, &config, id,
                                                          ZUBE_RUNTIME_ID_MAX);
    if (status != ZUBE_OK)
        return status;
    return zube_runtime_start_container (s_runtime, id);
}

//  Ticks until the container exited (at most timeout_ms); its status.
static bool
s_wait_exit (const char *id, int timeout_ms, zube_runtime_container_status_t *status)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        zube_runtime_tick (s_runtime, NULL, NULL);
        *status = (zube_runtime_container_status_t) {.struct_size = sizeof *status};
        if (zube_runtime_container_status (s_runtime, id, status) == ZUBE_OK
            && status->state == ZUBE_RUNTIME_CONTAINER_EXITED)
            return true;
        usleep (20000);
    }
    return false;
}

typedef struct {
    char text[8192];
    size_t used;
} s_text_t;

static int
s_collect (void *arg, const char *data, size_t size, bool stderr_stream)
{
    (void) stderr_stream;
    s_text_t *text = arg;
    size_t room = sizeof text->text - 1 - text->used;
    size_t take = size < room ? size : room;
    memcpy (text->text + text->used, data, take);
    text->used += take;
    text->text[text->used] = 0;
    return 0;
}

static int
s_exec (const char *id, const char *const *argv, s_text_t *out)
{
    int code = -1;
    *out = (s_text_t) {.used = 0};
    zube_status_t status = zube_runtime_exec (s_runtime, id, argv, NULL, 0, 10000, s_collect,
                                              out, &code);
    return status == ZUBE_OK ? code : -1000 - (int) status;
}

static void
s_remove_pod (const char *sandbox)
{
    zube_runtime_stop_sandbox (s_runtime, sandbox, 0);
    zube_status_t status = zube_runtime_remove_sandbox (s_runtime, sandbox);
    if (status != ZUBE_OK)
        printf ("# remove %s: %s\n", sandbox, zube_runtime_error (s_runtime));
}

//  Entries of a directory (dirs_only: its subdirectories), dot files aside.
static int
s_count_entries (const char *path, bool dirs_only)
{
    DIR *dir = opendir (path);
    if (!dir)
        return 0;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (entry->d_name[0] != '.' && (!dirs_only || entry->d_type == DT_DIR))
            count++;
    closedir (dir);
    return count;
}

//  Mounts whose mount point is under our temporary directory.
static int
s_count_mounts (void)
{
    char *mounts = zt_read_file ("/proc/self/mountinfo");
    int count = 0;
    for (char *at = mounts; at && (at = strstr (at, s_dir)); at++)
        count++;
    free (mounts);
    return count;
}

typedef struct {
    int mounts;
    int veths;      //  ports of our bridge
    int cgroups;    //  memory cgroups under our parent
    int ips;        //  host-local allocations
    int netns;
} s_counts_t;

static s_counts_t
s_counts (void)
{
    char path[700];
    s_counts_t counts = {.mounts = s_count_mounts ()};
    snprintf (path, sizeof path, "/sys/class/net/%s/brif", s_bridge);
    counts.veths = s_count_entries (path, false);
    snprintf (path, sizeof path, "/sys/fs/cgroup/memory/%s", s_cgroup);
    counts.cgroups = s_count_entries (path, true);
    snprintf (path, sizeof path, "%s/cni/networks/zube", s_state);
    counts.ips = s_count_entries (path, false);
    //  last_reserved_ip.0 and lock stay: they are not allocations
    snprintf (path, sizeof path, "%s/cni/networks/zube/lock", s_state);
    counts.ips -= access (path, F_OK) == 0;
    snprintf (path, sizeof path, "%s/cni/networks/zube/last_reserved_ip.0", s_state);
    counts.ips -= access (path, F_OK) == 0;
    //  Network namespaces held by this test's runtime: nsfs mounts under
    //  its own directory (other tests, run in parallel, hold their own)
    char *mounts = zt_read_file ("/proc/self/mountinfo");
    for (char *line = mounts; line && *line;) {
        char *end = strchr (line, '\n');
        if (end)
            *end = '\0';
        if (strstr (line, " - nsfs ") && strstr (line, s_dir))
            counts.netns++;
        line = end ? end + 1 : NULL;
    }
    free (mounts);
    return counts;
}

//  ---------------------------------------------------------------------
//  Cases

static void
test_run_and_logs (void)
{
    char sandbox[ZUBE_RUNTIME_ID_MAX], id[ZUBE_RUNTIME_ID_MAX];
    ZT_ASSERT_INT_EQ (s_run_pod ("logs", "metadata: {name: logs, namespace: default, uid: logs}\n"
                                         "spec:\n  containers:\n  - name: app\n"
                                         "    image: " S_IMAGE "\n"
                                         "    command: [sh, -c, 'echo hello $(POD); echo to-err >&2; "
                                         "sleep 0.2; echo pod=$POD ip=$IP; exit 3']\n"
                                         "    env:\n    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n"
                                         "    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n",
                                 sandbox, sizeof sandbox),
                      ZUBE_OK);
    zube_runtime_sandbox_status_t sandbox_status = {.struct_size = sizeof sandbox_status};
    ZT_ASSERT_INT_EQ (zube_runtime_sandbox_status (s_runtime, sandbox, &sandbox_status), ZUBE_OK);
    ZT_ASSERT_MSG (strncmp (sandbox_status.ip, "10.213.", 7) == 0, "pod IP %s",
                   sandbox_status.ip);
    zube_status_t status = s_start (sandbox, "app", false, 0, id);
    ZT_ASSERT_MSG (status == ZUBE_OK, "start: %s", zube_runtime_error (s_runtime));
    zube_runtime_container_status_t st;
    ZT_ASSERT (s_wait_exit (id, 10000, &st));
    ZT_ASSERT_INT_EQ (st.exit_code, 3);
    ZT_ASSERT_STR_EQ (st.reason, "Error");
    ZT_ASSERT (st.started_ms > 0 && st.finished_ms >= st.started_ms);
    s_text_t logs = {.used = 0};
    zube_runtime_logs_options_t options = {.struct_size = sizeof options, .tail_lines = -1};
    ZT_ASSERT_INT_EQ (zube_runtime_logs (s_runtime, id, &options, s_collect, &logs), ZUBE_OK);
    //  $(POD) is expanded by Kubernetes only in command/args when POD is
    //  a container env var: here it is, so "hello logs"
    char expected[200];
    snprintf (expected, sizeof expected, "pod=logs ip=%s\n", sandbox_status.ip);
    ZT_ASSERT_MSG (strstr (logs.text, "hello logs\n") && strstr (logs.text, "to-err\n")
                       && strstr (logs.text, expected),
                   "logs: %s", logs.text);
    options.tail_lines = 1;
    logs = (s_text_t) {.used = 0};
    ZT_ASSERT_INT_EQ (zube_runtime_logs (s_runtime, id, &options, s_collect, &logs), ZUBE_OK);
    ZT_ASSERT_STR_EQ (logs.text, expected);
    //  The file is in CRI format
    char *file = NULL;
    char pattern[700];
    snprintf (pattern, sizeof pattern, "%s/sandboxes/%s/logs/app/0.log", s_state, sandbox);
    file = zt_read_file (pattern);
    ZT_ASSERT_MSG (file && strstr (file, " stderr F to-err\n") && strstr (file, "Z stdout F "),
                   "log file %s: %s", pattern, file ? file : "(none)");
    free (file);
    s_remove_pod (sandbox);
}

static void
test_exit_codes_and_exec (void)
{
    char sandbox[ZUBE_RUNTIME_ID_MAX], done[ZUBE_RUNTIME_ID_MAX], app[ZUBE_RUNTIME_ID_MAX];
    ZT_ASSERT_INT_EQ (s_run_pod ("ex", "metadata: {name: ex, namespace: default, uid: ex}\n"
                                       "spec:\n  initContainers:\n  - name: setup\n"
                                       "    image: " S_IMAGE "\n    command: ['true']\n"
                                       "  containers:\n  - name: app\n    image: " S_IMAGE "\n"
                                       "    command: [sleep, '3600']\n"
                                       "    workingDir: /tmp\n"
                                       "    livenessProbe: {exec: {command: [test, -d, /tmp]}}\n"
                                       "    readinessProbe: {exec: {command: [test, -d, /nope]}}\n"
                                       "    startupProbe: {httpGet: {port: 80}}\n",
                                 sandbox, sizeof sandbox),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_start (sandbox, "setup", true, 0, done), ZUBE_OK);
    zube_runtime_container_status_t st;
    ZT_ASSERT (s_wait_exit (done, 10000, &st));
    ZT_ASSERT_INT_EQ (st.exit_code, 0);
    ZT_ASSERT_STR_EQ (st.reason, "Completed");
    ZT_ASSERT (st.init);
    ZT_ASSERT_INT_EQ (s_start (sandbox, "app", false, 0, app), ZUBE_OK);
    s_text_t out;
    ZT_ASSERT_INT_EQ (s_exec (app, (const char *[]) {"sh", "-c", "pwd; hostname; exit 7", NULL},
                              &out),
                      7);
    ZT_ASSERT_STR_EQ (out.text, "/tmp\nex\n");
    ZT_ASSERT_INT_EQ (s_exec (app, (const char *[]) {"true", NULL}, &out), 0);
    //  Probes: exec ones run here, httpGet ones are the host's
    bool success = false;
    char message[256] = "";
    ZT_ASSERT_MSG (zube_runtime_probe (s_runtime, app, ZUBE_RUNTIME_PROBE_LIVENESS, 5000,
                                       &success, message, sizeof message)
                       == ZUBE_OK,
                   "probe: %s", zube_runtime_error (s_runtime));
    ZT_ASSERT_MSG (success, "liveness: %s", message);
    ZT_ASSERT_INT_EQ (zube_runtime_probe (s_runtime, app, ZUBE_RUNTIME_PROBE_READINESS, 5000,
                                          &success, message, sizeof message),
                      ZUBE_OK);
    ZT_ASSERT (!success);
    ZT_ASSERT_INT_EQ (zube_runtime_probe (s_runtime, app, ZUBE_RUNTIME_PROBE_STARTUP, 5000,
                                          &success, message, sizeof message),
                      ZUBE_UNAVAILABLE);
    ZT_ASSERT_INT_EQ (s_exec (app, (const char *[]) {"no-such-command", NULL}, &out), 127);
    ZT_ASSERT_MSG (strstr (out.text, "no-such-command"), "exec error: %s", out.text);
    //  Stop: sleep as pid 1 ignores SIGTERM; SIGKILL after the grace
    ZT_ASSERT_INT_EQ (zube_runtime_stop_container (s_runtime, app, 300), ZUBE_OK);
    ZT_ASSERT (s_wait_exit (app, 10000, &st));
    ZT_ASSERT_INT_EQ (st.exit_code, 137);
    ZT_ASSERT_STR_EQ (st.reason, "Error");
    ZT_ASSERT (zube_runtime_exec (s_runtime, app, (const char *[]) {"true", NULL}, NULL, 0, 1000,
                                  s_collect, &out, &(int) {0})
               == ZUBE_CONFLICT);
    s_remove_pod (sandbox);
}

//  Reads fd until EOF (or EIO, a pty whose command is gone) into text.
static void
s_read_all (int fd, s_text_t *text)
{
    *text = (s_text_t) {.used = 0};
    int64_t until = zt_now_ms () + 10000;
    while (zt_now_ms () < until && text->used < sizeof text->text - 1) {
        struct pollfd poll_fd = {.fd = fd, .events = POLLIN};
        if (poll (&poll_fd, 1, 100) <= 0)
            continue;
        ssize_t n = read (fd, text->text + text->used, sizeof text->text - 1 - text->used);
        if (n <= 0)
            break;
        text->used += (size_t) n;
    }
    text->text[text->used] = 0;
}

//  Ticks exec_wait until the session's command exited; its code or -1.
static int
s_exec_wait (const char *session)
{
    int64_t until = zt_now_ms () + 10000;
    while (zt_now_ms () < until) {
        bool exited = false;
        int code = -1;
        if (zube_runtime_exec_wait (s_runtime, session, &exited, &code) != ZUBE_OK)
            return -1;
        if (exited)
            return code;
        usleep (20000);
    }
    return -1;
}

//  Interactive exec sessions: stdin through a pipe, a pty, and a close
//  that kills the command
static void
test_exec_sessions (void)
{
    char sandbox[ZUBE_RUNTIME_ID_MAX], app[ZUBE_RUNTIME_ID_MAX], session[ZUBE_RUNTIME_ID_MAX];
    ZT_ASSERT_INT_EQ (s_run_pod ("sess", "metadata: {name: sess, namespace: default, uid: sess}\n"
                                         "spec:\n  containers:\n  - name: app\n"
                                         "    image: " S_IMAGE "\n    command: [sleep, '3600']\n"
                                         "    workingDir: /tmp\n",
                                 sandbox, sizeof sandbox),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_start (sandbox, "app", false, 0, app), ZUBE_OK);
    //  stdin piped: cat gives it back, stderr apart, the exit code
    zube_runtime_exec_config_t config = {
        .struct_size = sizeof config,
        .argv = (const char *[]) {"sh", "-c", "cat; pwd >&2; exit 4", NULL},
        .stdin = true};
    zube_runtime_exec_io_t io = {.struct_size = sizeof io};
    zube_status_t status = zube_runtime_exec_start (s_runtime, app, &config, &io, session,
                                                    sizeof session);
    ZT_ASSERT_MSG (status == ZUBE_OK, "exec_start: %s", zube_runtime_error (s_runtime));
    ZT_ASSERT (io.stdin_fd >= 0 && io.stdout_fd >= 0 && io.stderr_fd >= 0);
    ZT_ASSERT (write (io.stdin_fd, "hello\n", 6) == 6);
    close (io.stdin_fd);
    s_text_t out, err;
    s_read_all (io.stdout_fd, &out);
    s_read_all (io.stderr_fd, &err);
    ZT_ASSERT_STR_EQ (out.text, "hello\n");
    ZT_ASSERT_STR_EQ (err.text, "/tmp\n");
    ZT_ASSERT_INT_EQ (s_exec_wait (session), 4);
    close (io.stdout_fd);
    close (io.stderr_fd);
    ZT_ASSERT_INT_EQ (zube_runtime_exec_close (s_runtime, session), ZUBE_OK);
    //  a tty of 30 x 100: the command sees a pts and the size (set once
    //  the pty came: the command waits for a line first)
    config = (zube_runtime_exec_config_t) {
        .struct_size = sizeof config,
        .argv = (const char *[]) {"sh", "-c", "read x; tty; stty size; exit 6", NULL},
        .stdin = true,
        .tty = true,
        .columns = 100,
        .rows = 30};
    io = (zube_runtime_exec_io_t) {.struct_size = sizeof io};
    status = zube_runtime_exec_start (s_runtime, app, &config, &io, session, sizeof session);
    ZT_ASSERT_MSG (status == ZUBE_OK, "exec_start tty: %s", zube_runtime_error (s_runtime));
    ZT_ASSERT (io.stdout_fd >= 0 && io.stderr_fd < 0 && io.stdin_fd >= 0);
    ZT_ASSERT (write (io.stdin_fd, "go\r", 3) == 3);
    s_read_all (io.stdout_fd, &out);
    ZT_ASSERT_MSG (strstr (out.text, "/dev/pts/") && strstr (out.text, "30 100"), "tty: %s",
                   out.text);
    ZT_ASSERT_INT_EQ (s_exec_wait (session), 6);
    close (io.stdin_fd);
    close (io.stdout_fd);
    ZT_ASSERT_INT_EQ (zube_runtime_exec_close (s_runtime, session), ZUBE_OK);
    //  a close kills a command that still runs
    config = (zube_runtime_exec_config_t) {.struct_size = sizeof config,
                                           .argv = (const char *[]) {"sleep", "1002", NULL}};
    io = (zube_runtime_exec_io_t) {.struct_size = sizeof io};
    ZT_ASSERT_INT_EQ (zube_runtime_exec_start (s_runtime, app, &config, &io, session,
                                               sizeof session),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_runtime_exec_close (s_runtime, session), ZUBE_OK);
    close (io.stdout_fd);
    close (io.stderr_fd);
    s_text_t ps;
    ZT_ASSERT_INT_EQ (s_exec (app, (const char *[]) {"ps", NULL}, &ps), 0);
    ZT_ASSERT_MSG (!strstr (ps.text, "sleep 1002"), "the closed session's command runs: %s",
                   ps.text);
    //  an unknown session, a command that does not exist
    ZT_ASSERT_INT_EQ (zube_runtime_exec_close (s_runtime, session), ZUBE_NOT_FOUND);
    config = (zube_runtime_exec_config_t) {
        .struct_size = sizeof config, .argv = (const char *[]) {"/no/such", NULL}, .tty = true};
    ZT_ASSERT (zube_runtime_exec_start (s_runtime, app, &config, &io, session, sizeof session)
               != ZUBE_OK);
    //  runc names it; crun writes why on the pty, and exits 1
    ZT_ASSERT_STR_CONTAINS (zube_runtime_error (s_runtime),
                            strcmp (ZT_OCI_RUNTIME, "runc") == 0 ? "/no/such" : "exit");
    s_remove_pod (sandbox);
}

//  Volumes shared by two containers, securityContext, cgroup limits, log
//  rotation, and a hostNetwork pod
static void
test_spec (void)
{
    char host_dir[600], yaml[2048];
    snprintf (host_dir, sizeof host_dir, "%s/hostdata", s_dir);
    mkdir (host_dir, 0755);
    char file[700];
    snprintf (file, sizeof file, "%s/greeting", host_dir);
    ZT_ASSERT (zt_write_file (file, "from-the-host\n"));
    snprintf (yaml, sizeof yaml,
              "metadata: {name: spec, namespace: default, uid: spec}\n"
              "spec:\n"
              "  securityContext: {runAsUser: 1000, runAsGroup: 3000}\n"
              "  containers:\n"
              "  - name: writer\n    image: " S_IMAGE "\n"
              "    command: [sh, -c, 'echo shared > /data/x; id -u; id -g; cat /host/greeting; "
              "touch /rootfile 2>/dev/null && echo writable || echo read-only; "
              "i=0; while [ $i -lt 120 ]; do echo line-$i-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; "
              "i=$((i+1)); done']\n"
              "    securityContext: {readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}\n"
              "    resources: {limits: {cpu: 250m, memory: 64Mi}}\n"
              "    volumeMounts: [{name: data, mountPath: /data}, {name: host, mountPath: /host, "
              "readOnly: true}]\n"
              "  - name: reader\n    image: " S_IMAGE "\n"
              "    command: [sh, -c, 'cat /data/x; grep CapEff /proc/self/status']\n"
              "    securityContext: {runAsUser: 0}\n"
              "    volumeMounts: [{name: data, mountPath: /data}]\n"
              "  volumes: [{name: data, emptyDir: {}}, {name: host, hostPath: {path: %s}}]\n",
              host_dir);
    char sandbox[ZUBE_RUNTIME_ID_MAX], writer[ZUBE_RUNTIME_ID_MAX], reader[ZUBE_RUNTIME_ID_MAX];
    ZT_ASSERT_INT_EQ (s_run_pod ("spec", yaml, sandbox, sizeof sandbox), ZUBE_OK);
    ZT_ASSERT_MSG (s_start (sandbox, "writer", false, 0, writer) == ZUBE_OK, "writer: %s",
                   zube_runtime_error (s_runtime));
    //  The cgroup has the limits while it runs (or ran)
    char path[700];
    snprintf (path, sizeof path, "/sys/fs/cgroup/memory/%s/%s/memory.limit_in_bytes", s_cgroup,
              writer);
    char *limit = zt_read_file (path);
    snprintf (path, sizeof path, "/sys/fs/cgroup/cpu/%s/%s/cpu.cfs_quota_us", s_cgroup,
              writer);
    char *quota = zt_read_file (path);
    zube_runtime_container_status_t st;
    ZT_ASSERT (s_wait_exit (writer, 10000, &st));
    ZT_ASSERT_MSG (limit && atoll (limit) == 64 * 1024 * 1024, "memory limit %s",
                   limit ? limit : "(none)");
    ZT_ASSERT_MSG (quota && atoll (quota) == 25000, "cpu quota %s", quota ? quota : "(none)");
    free (limit);
    free (quota);
    ZT_ASSERT_INT_EQ (st.exit_code, 0);
    s_text_t logs = {.used = 0};
    zube_runtime_logs_options_t options = {.struct_size = sizeof options, .tail_lines = 1};
    ZT_ASSERT_INT_EQ (zube_runtime_logs (s_runtime, writer, &options, s_collect, &logs), ZUBE_OK);
    ZT_ASSERT_STR_EQ (logs.text, "line-119-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
    //  Rotated past 8 KiB: the first lines are in <attempt>.log.1
    snprintf (path, sizeof path, "%s/sandboxes/%s/logs/writer/0.log.1", s_state, sandbox);
    ZT_ASSERT_MSG (access (path, F_OK) == 0, "%s is missing", path);
    options.tail_lines = -1;
    logs = (s_text_t) {.used = 0};
    ZT_ASSERT_INT_EQ (zube_runtime_logs (s_runtime, writer, &options, s_collect, &logs), ZUBE_OK);
    ZT_ASSERT_MSG (strstr (logs.text, "1000\n3000\nfrom-the-host\nread-only\n"),
                   "writer: %.300s", logs.text);
    ZT_ASSERT_MSG (s_start (sandbox, "reader", false, 1, reader) == ZUBE_OK, "reader: %s",
                   zube_runtime_error (s_runtime));
    ZT_ASSERT (s_wait_exit (reader, 10000, &st));
    logs = (s_text_t) {.used = 0};
    zube_runtime_logs (s_runtime, reader, &options, s_collect, &logs);
    //  The reader runs as root with the default capabilities
    ZT_ASSERT_MSG (strstr (logs.text, "shared\nCapEff:\t00000000a80425fb\n"), "reader: %s",
                   logs.text);
    s_remove_pod (sandbox);
    //  hostNetwork: no pod IP, the host's interfaces
    ZT_ASSERT_INT_EQ (s_run_pod ("hostnet", "metadata: {name: hostnet, namespace: default, "
                                            "uid: hostnet}\n"
                                            "spec:\n  hostNetwork: true\n  containers:\n"
                                            "  - name: c\n    image: " S_IMAGE "\n"
                                            "    command: [cat, /proc/net/dev]\n",
                                 sandbox, sizeof sandbox),
                      ZUBE_OK);
    zube_runtime_sandbox_status_t sandbox_status = {.struct_size = sizeof sandbox_status};
    ZT_ASSERT_INT_EQ (zube_runtime_sandbox_status (s_runtime, sandbox, &sandbox_status), ZUBE_OK);
    ZT_ASSERT_STR_EQ (sandbox_status.ip, "");
    ZT_ASSERT_INT_EQ (s_start (sandbox, "c", false, 0, writer), ZUBE_OK);
    ZT_ASSERT (s_wait_exit (writer, 10000, &st));
    logs = (s_text_t) {.used = 0};
    zube_runtime_logs (s_runtime, writer, &options, s_collect, &logs);
    ZT_ASSERT_MSG (strstr (logs.text, s_bridge), "the host's interfaces (%s) are not seen: %.400s",
                   s_bridge, logs.text);
    s_remove_pod (sandbox);
}

static void
test_oom_killed (void)
{
    char sandbox[ZUBE_RUNTIME_ID_MAX], id[ZUBE_RUNTIME_ID_MAX];
    ZT_ASSERT_INT_EQ (
        s_run_pod ("oom", "metadata: {name: oom, namespace: default, uid: oom}\n"
                          "spec:\n  containers:\n  - name: hog\n    image: " S_IMAGE "\n"
                          "    command: [sh, -c, 'x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; "
                          "while true; do x=$x$x; done']\n"
                          "    resources: {limits: {memory: 16Mi}}\n",
                   sandbox, sizeof sandbox),
        ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_start (sandbox, "hog", false, 0, id), ZUBE_OK);
    zube_runtime_container_status_t st;
    ZT_ASSERT (s_wait_exit (id, 20000, &st));
    ZT_ASSERT_INT_EQ (st.exit_code, 137);
    ZT_ASSERT_STR_EQ (st.reason, "OOMKilled");
    s_remove_pod (sandbox);
}

//  iptables nat rules that name the port
static int
s_count_dnat_rules (int port)
{
    zt_run_t run = zt_run_capture (10000, (char *const[]) {"/usr/sbin/iptables", "-w", "-t", "nat",
                                                          "-S", NULL});
    char needle[32];
    snprintf (needle, sizeof needle, "--dport %d ", port);
    int count = 0;
    for (char *at = run.out; at && (at = strstr (at, needle)); at++)
        count++;
    zt_run_free (&run);
    return count;
}

static void
test_pods_talk (void)
{
    char server[ZUBE_RUNTIME_ID_MAX], client[ZUBE_RUNTIME_ID_MAX], httpd[ZUBE_RUNTIME_ID_MAX],
        wget[ZUBE_RUNTIME_ID_MAX], web_yaml[512];
    //  A hostPort through portmap: its DNAT rules come and go with the pod
    int host_port = zt_free_port (1);
    snprintf (web_yaml, sizeof web_yaml,
              "metadata: {name: web, namespace: default, uid: web}\n"
              "spec:\n  containers:\n  - name: httpd\n    image: " S_IMAGE "\n"
              "    command: [httpd, -f, -p, '80', -h, /www]\n"
              "    ports: [{containerPort: 80, hostPort: %d}]\n",
              host_port);
    int rules_before = s_count_dnat_rules (host_port);
    ZT_ASSERT_INT_EQ (s_run_pod ("web", web_yaml, server, sizeof server), ZUBE_OK);
    ZT_ASSERT_MSG (s_count_dnat_rules (host_port) > rules_before, "no DNAT rule for hostPort %d",
                   host_port);
    ZT_ASSERT_INT_EQ (s_start (server, "httpd", false, 0, httpd), ZUBE_OK);
    zube_runtime_sandbox_status_t web = {.struct_size = sizeof web};
    ZT_ASSERT_INT_EQ (zube_runtime_sandbox_status (s_runtime, server, &web), ZUBE_OK);
    char yaml[1024];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: cli, namespace: default, uid: cli}\n"
              "spec:\n  containers:\n  - name: wget\n    image: " S_IMAGE "\n"
              "    command: [sh, -c, 'for i in 1 2 3 4 5 6 7 8 9 10; do "
              "wget -q -O - http://%s/ && exit 0; sleep 0.2; done; exit 1']\n",
              web.ip);
    ZT_ASSERT_INT_EQ (s_run_pod ("cli", yaml, client, sizeof client), ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_start (client, "wget", false, 0, wget), ZUBE_OK);
    zube_runtime_container_status_t st;
    ZT_ASSERT (s_wait_exit (wget, 20000, &st));
    s_text_t logs = {.used = 0};
    zube_runtime_logs_options_t options = {.struct_size = sizeof options, .tail_lines = -1};
    zube_runtime_logs (s_runtime, wget, &options, s_collect, &logs);
    ZT_ASSERT_MSG (st.exit_code == 0, "wget exited %d: %s", st.exit_code, logs.text);
    ZT_ASSERT_MSG (strlen (logs.text) > 0, "no page");
    //  The host reaches the pod IP too (the zubelet's prober does)
    char url[128];
    snprintf (url, sizeof url, "http://%s/", web.ip);
    zt_run_t run = zt_run_capture (10000,
                          (char *const[]) {"/bin/busybox", "wget", "-q", "-O", "-", url, NULL});
    ZT_ASSERT_MSG (run.status == 0, "host wget %s: %d", url, run.status);
    zt_run_free (&run);
    //  and the hostPort on the bridge's address (the host's own)
    char gateway[64];
    snprintf (gateway, sizeof gateway, "%s", web.ip);
    strcpy (strrchr (gateway, '.'), ".1");
    snprintf (url, sizeof url, "http://%s:%d/", gateway, host_port);
    run = zt_run_capture (10000,
                          (char *const[]) {"/bin/busybox", "wget", "-q", "-O", "-", url, NULL});
    ZT_ASSERT_MSG (run.status == 0, "host wget %s (hostPort): %d", url, run.status);
    zt_run_free (&run);
    s_remove_pod (client);
    s_remove_pod (server);
    ZT_ASSERT_INT_EQ (s_count_dnat_rules (host_port), rules_before);
}

static void
test_bad_input (void)
{
    char sandbox[ZUBE_RUNTIME_ID_MAX], id[ZUBE_RUNTIME_ID_MAX];
    ZT_ASSERT_INT_EQ (s_run_pod ("bad", "metadata: {name: bad, namespace: default, uid: bad}\n"
                                        "spec:\n  containers:\n  - name: nope\n"
                                        "    image: zube.test/missing:1\n"
                                        "  - name: cmd\n    image: " S_IMAGE "\n"
                                        "    command: [/no/such/program]\n"
                                        "  - name: vol\n    image: " S_IMAGE "\n"
                                        "    volumeMounts: [{name: cm, mountPath: /cm}]\n"
                                        "  volumes: [{name: cm, configMap: {name: x}}]\n",
                                 sandbox, sizeof sandbox),
                      ZUBE_OK);
    zube_runtime_container_config_t config = {
        .struct_size = sizeof config, .name = "nope", .index = 0};
    ZT_ASSERT_INT_EQ (zube_runtime_create_container (s_runtime, sandbox, &config, id, sizeof id),
                      ZUBE_BAD_REQUEST);
    ZT_ASSERT_STR_CONTAINS (zube_runtime_error (s_runtime), "zube.test/missing:1");
    //  An unknown command: StartError, 128, runc's message
    zube_status_t status = s_start (sandbox, "cmd", false, 1, id);
    ZT_ASSERT (status != ZUBE_OK);
    zube_runtime_container_status_t st = {.struct_size = sizeof st};
    ZT_ASSERT_INT_EQ (zube_runtime_container_status (s_runtime, id, &st), ZUBE_OK);
    ZT_ASSERT_INT_EQ (st.state, ZUBE_RUNTIME_CONTAINER_EXITED);
    ZT_ASSERT_INT_EQ (st.exit_code, 128);
    ZT_ASSERT_STR_EQ (st.reason, "StartError");
    ZT_ASSERT_MSG (strstr (st.message, "/no/such/program"), "message: %s", st.message);
    //  A volume kind the runtime cannot fill yet: named
    config = (zube_runtime_container_config_t) {
        .struct_size = sizeof config, .name = "vol", .index = 2};
    ZT_ASSERT (zube_runtime_create_container (s_runtime, sandbox, &config, id, sizeof id)
               != ZUBE_OK);
    ZT_ASSERT_STR_CONTAINS (zube_runtime_error (s_runtime), "configMap");
    //  A malformed pod message
    zube_runtime_sandbox_config_t bad = {.struct_size = sizeof bad,
                                         .node_name = "n1",
                                         .pod_namespace = "default",
                                         .pod_name = "junk",
                                         .pod_uid = "junk",
                                         .pod = "\xff\xff\xff",
                                         .pod_size = 3};
    ZT_ASSERT_INT_EQ (zube_runtime_run_sandbox (s_runtime, &bad, id, sizeof id),
                      ZUBE_BAD_REQUEST);
    s_remove_pod (sandbox);
    //  An unwritable state dir: open fails, naming it
    char options_dir[600];
    snprintf (options_dir, sizeof options_dir, "state_dir=/proc/zube-no/state");
    char *error = NULL;
    zube_runtime_t *runtime = zube_runtime_open (
        s_plugins, "oci", (const char *[]) {options_dir, NULL}, &error);
    ZT_ASSERT (!runtime);
    ZT_ASSERT_MSG (error && strstr (error, "/proc/zube-no"), "error: %s", error ? error : "");
    free (error);
    error = NULL;
    runtime = zube_runtime_open (s_plugins, "oci", (const char *[]) {"colour=blue", NULL}, &error);
    ZT_ASSERT (!runtime);
    ZT_ASSERT_MSG (error && strstr (error, "colour"), "error: %s", error ? error : "");
    free (error);
}

typedef struct {
    int count;
    char ids[64][ZUBE_RUNTIME_ID_MAX];
    int running;
} s_list_t;

static int
s_list_container (void *arg, const zube_runtime_container_status_t *st)
{
    s_list_t *list = arg;
    if (list->count < 64)
        snprintf (list->ids[list->count], ZUBE_RUNTIME_ID_MAX, "%s", st->id);
    list->count++;
    list->running += st->state == ZUBE_RUNTIME_CONTAINER_RUNNING;
    return 0;
}

static void
test_reopen_adopts (void)
{
    char sandbox[ZUBE_RUNTIME_ID_MAX], id[ZUBE_RUNTIME_ID_MAX];
    ZT_ASSERT_INT_EQ (s_run_pod ("keep", "metadata: {name: keep, namespace: default, uid: keep}\n"
                                         "spec:\n  containers:\n  - name: app\n"
                                         "    image: " S_IMAGE "\n"
                                         "    command: [sh, -c, 'trap \"exit 4\" TERM; echo before; while true; do sleep 0.1; done']\n",
                                 sandbox, sizeof sandbox),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_start (sandbox, "app", false, 0, id), ZUBE_OK);
    zube_runtime_sandbox_status_t before = {.struct_size = sizeof before};
    ZT_ASSERT_INT_EQ (zube_runtime_sandbox_status (s_runtime, sandbox, &before), ZUBE_OK);
    zube_runtime_close (&s_runtime);
    ZT_ASSERT (s_open ());
    zube_runtime_sandbox_status_t after = {.struct_size = sizeof after};
    ZT_ASSERT_INT_EQ (zube_runtime_sandbox_status (s_runtime, sandbox, &after), ZUBE_OK);
    ZT_ASSERT_STR_EQ (after.ip, before.ip);
    ZT_ASSERT_STR_EQ (after.pod_name, "keep");
    s_list_t list = {0};
    zube_runtime_list_containers (s_runtime, sandbox, s_list_container, &list);
    ZT_ASSERT_INT_EQ (list.count, 1);
    ZT_ASSERT_INT_EQ (list.running, 1);
    ZT_ASSERT_STR_EQ (list.ids[0], id);
    //  It still runs and its exit is still seen after the reopen
    s_text_t out;
    ZT_ASSERT_INT_EQ (s_exec (id, (const char *[]) {"sh", "-c", "kill 1", NULL}, &out), 0);
    zube_runtime_container_status_t st;
    ZT_ASSERT (s_wait_exit (id, 10000, &st));
    ZT_ASSERT_INT_EQ (st.exit_code, 4);
    s_remove_pod (sandbox);
}

static void
test_no_leaks (void)
{
    s_counts_t before = s_counts ();
    char sandboxes[50][ZUBE_RUNTIME_ID_MAX];
    for (int i = 0; i < 50; i++) {
        char name[32], yaml[512], id[ZUBE_RUNTIME_ID_MAX];
        snprintf (name, sizeof name, "leak%d", i);
        snprintf (yaml, sizeof yaml,
                  "metadata: {name: %s, namespace: default, uid: %s}\n"
                  "spec:\n  containers:\n  - name: app\n    image: " S_IMAGE "\n"
                  "    command: [sleep, '3600']\n"
                  "    volumeMounts: [{name: scratch, mountPath: /scratch}]\n"
                  "  volumes: [{name: scratch, emptyDir: {}}]\n",
                  name, name);
        ZT_ASSERT_MSG (s_run_pod (name, yaml, sandboxes[i], sizeof sandboxes[i]) == ZUBE_OK,
                       "pod %d: %s", i, zube_runtime_error (s_runtime));
        ZT_ASSERT_MSG (s_start (sandboxes[i], "app", false, 0, id) == ZUBE_OK, "start %d: %s",
                       i, zube_runtime_error (s_runtime));
    }
    s_counts_t during = s_counts ();
    ZT_ASSERT_INT_EQ (during.veths, before.veths + 50);
    ZT_ASSERT_INT_EQ (during.cgroups, before.cgroups + 50);
    ZT_ASSERT_INT_EQ (during.ips, before.ips + 50);
    ZT_ASSERT_INT_EQ (during.netns, before.netns + 50);
    ZT_ASSERT_MSG (during.mounts >= before.mounts + 50, "mounts %d -> %d", before.mounts,
                   during.mounts);
    for (int i = 0; i < 50; i++)
        s_remove_pod (sandboxes[i]);
    s_counts_t after = s_counts ();
    ZT_ASSERT_INT_EQ (after.mounts, before.mounts);
    ZT_ASSERT_INT_EQ (after.veths, before.veths);
    ZT_ASSERT_INT_EQ (after.cgroups, before.cgroups);
    ZT_ASSERT_INT_EQ (after.ips, before.ips);
    ZT_ASSERT_INT_EQ (after.netns, before.netns);
    char path[700];
    snprintf (path, sizeof path, "%s/sandboxes", s_state);
    ZT_ASSERT_INT_EQ (s_count_entries (path, false), 0);
    snprintf (path, sizeof path, "%s/containers", s_state);
    ZT_ASSERT_INT_EQ (s_count_entries (path, false), 0);
}

//  ---------------------------------------------------------------------

static bool
s_setup (void)
{
    s_dir = zt_tempdir ("oci");
    snprintf (s_state, sizeof s_state, "%s/state", s_dir);
    snprintf (s_bridge, sizeof s_bridge, "zt%d", (int) (getpid () % 100000));
    zt_oci_free_subnet ("10.213", s_cidr, sizeof s_cidr);
    snprintf (s_cgroup, sizeof s_cgroup, "zube-test-%d", (int) getpid ());
    char images[700];
    snprintf (images, sizeof images, "%s/images", s_state);
    if (!zt_oci_import_test_image (s_dir, images))
        return false;
    s_plugins = zube_plugin_host_new ();
    return s_open ();
}

//  What a failed case left is removed through the runtime, then the rest.
static void
s_teardown (void)
{
    if (s_runtime)
        zt_oci_remove_all (s_runtime);
    zube_runtime_close (&s_runtime);
    zube_plugin_host_destroy (&s_plugins);
    zt_oci_cleanup (s_cgroup, s_bridge, s_dir);
    free (s_dir);
}

int
main (void)
{
    const char *why = zt_oci_skip_reason ();
    if (!why && strcmp (ZT_OCI_RUNTIME, "runc") != 0
        && access ("/usr/bin/" ZT_OCI_RUNTIME, X_OK) != 0
        && access ("/usr/sbin/" ZT_OCI_RUNTIME, X_OK) != 0)
        why = ZT_OCI_RUNTIME " is not installed (scripts/setup.sh installs it)";
    if (why) {
        printf ("1..0 # SKIP %s\n", why);
        return 0;
    }
    if (!s_setup ()) {
        printf ("not ok 1 - setup\n1..1\n");
        s_teardown ();
        return 1;
    }
    ZT_RUN (test_run_and_logs);
    ZT_RUN (test_exit_codes_and_exec);
    ZT_RUN (test_exec_sessions);
    ZT_RUN (test_spec);
    ZT_RUN (test_oom_killed);
    ZT_RUN (test_pods_talk);
    ZT_RUN (test_bad_input);
    ZT_RUN (test_reopen_adopts);
    ZT_RUN (test_no_leaks);
    s_teardown ();
    return zt_done ();
}
