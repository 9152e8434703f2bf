/*  oci - the real container runtime (oci.so): runc, CNI, OCI images.

    A sandbox is a network namespace held by a bind mount (no pause
    process), wired by the CNI plugins (bridge with host-local IPAM on the
    pod CIDR, lo brought up, portmap for hostPorts); a hostNetwork pod uses the
    host's. A container is an OCI bundle (config.json from the pod spec
    and the image config, rootfs from the image store) run by runc in the
    sandbox's network namespace with namespaces of its own for mounts,
    pids, IPC and the hostname.

    Each container has a shim (oci_proc.c): a process of its own session
    that runs `runc run --detach`, is the subreaper of the container's init,
    writes its stdout and stderr to the log file and its exit status to
    an exit file. So the zubelet holds nothing a restart would lose: what
    this plugin knows is in files under state_dir, and open () reads them
    back (adoption). tick () reports exits by looking for the exit files
    of running containers.

    State under state_dir:
      runc/                    runc --root
      sandboxes/<id>/          sandbox (key=value), pod.pb, netns, hosts,
                               volumes/<name>/, logs/<container>/<n>.log
      containers/<id>/         container (key=value), config.json,
                               rootfs, pid, exit
      cni/zube.conflist        the generated network config
      cni/networks/            host-local's allocations
      images/                  the image store (oci_image.h)
    docs/runtime-oci.md. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "zube/runtime.h"
#include "core.pb-c.h"
#include "oci.h"
#include "oci_image.h"

#define S_ID_BYTES 8
#define S_TICK_MS 100
#define S_REMOVE_WAIT_MS 5000
#define S_RUNC_TIMEOUT_MS 60000
#define S_DEFAULT_LOG_MAX (10 * 1024 * 1024)
#define S_EXIT_START_ERROR 128
#define S_UNSHARE "/usr/bin/unshare"

typedef struct s_sandbox_t s_sandbox_t;
typedef struct s_exec_t s_exec_t;

//  An interactive exec session
struct s_exec_t {
    char id[ZUBE_RUNTIME_ID_MAX];
    pid_t helper;
    int control;            //  its close kills the command
    int pty;                //  our copy of the pty master (tty), or -1
    bool exited;
    int exit_code;
    char pid_file[4400];
};

typedef struct {
    char id[ZUBE_RUNTIME_ID_MAX];
    s_sandbox_t *sandbox;
    char *name;
    bool init;
    uint32_t index;
    uint32_t attempt;
    zube_runtime_container_state_t state;
    int64_t created_ms;
    int64_t started_ms;
    int64_t finished_ms;
    int exit_code;
    char reason[64];
    char message[512];
    char *image;
    char *image_id;
    pid_t pid;
    pid_t shim_pid;
    int stop_signal;
    int64_t kill_at;        //  monotonic ms: SIGKILL then (0: not stopping)
    bool rootfs_prepared;
    char cwd[1024];         //  its working directory (crun exec does not take it)
    char dir[4200];
    char log_path[4400];
} s_container_t;

struct s_sandbox_t {
    char id[ZUBE_RUNTIME_ID_MAX];
    char *node_name;
    char *pod_namespace;
    char *pod_name;
    char *pod_uid;
    char ip[64];
    zube_runtime_sandbox_state_t state;
    int64_t created_ms;
    bool host_network;
    bool network_ready;     //  CNI ADD done (DEL owed)
    Zube__Pod *pod;
    char dir[4200];
    char netns[4300];
    char log_dir[4300];
};

struct zube_runtime_backend_t {
    const zube_host_t *host;
    char error[2048];
    char *state_dir;
    char *runtime;          //  the runtime option: runc, crun or a path
    char *runc;             //  the low-level runtime's binary (runc or crun)
    char *runc_root;
    bool crun;              //  the binary is crun (its --version says so)
    //  How runc/crun is run, up to its subcommand (oci.h)
    const char *runtime_argv[OCI_RUNTIME_ARGV_MAX + 1];
    size_t runtime_argc;
    char *cni_path;
    char *bridge;
    char *pod_cidr;
    char *cgroup_parent;
    char *image_dir;
    char *image_preload;    //  a directory imported at open
    int64_t log_max_size;
    oci_cni_t cni;
    char cni_data_dir[4200];
    char cni_conflist[4200];
    oci_image_store_t *images;
    s_sandbox_t **sandboxes;
    size_t sandbox_count;
    size_t sandbox_capacity;
    s_container_t **containers;
    size_t container_count;
    size_t container_capacity;
    //  Interactive exec sessions
    s_exec_t **execs;
    size_t exec_count;
    size_t exec_capacity;
    //  Containers whose state changed on their own, reported at tick
    char (*events)[ZUBE_RUNTIME_ID_MAX];
    size_t event_count;
    size_t event_capacity;
};

typedef zube_runtime_backend_t s_oci_t;

//  ---------------------------------------------------------------------
//  Helpers

static zube_status_t
s_fail (s_oci_t *self, zube_status_t status, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static zube_status_t
s_fail (s_oci_t *self, zube_status_t status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof self->error, format, args);
    va_end (args);
    return status;
}

static void
s_log (s_oci_t *self, zube_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_log (s_oci_t *self, zube_log_level_t level, const char *format, ...)
{
    if (!ZUBE_HOST_HAS (self->host, log))
        return;
    char line[2048];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    self->host->log (self->host, level, "%s", line);
}

static void
s_copy (char *to, size_t size, const char *from)
{
    snprintf (to, size, "%s", from ? from : "");
}

static void
s_new_id (char *id, size_t size)
{
    unsigned char bytes[S_ID_BYTES];
    if (getrandom (bytes, sizeof bytes, 0) != (ssize_t) sizeof bytes) {
        uint64_t fallback = (uint64_t) oci_wall_ms () * 1000003u ^ (uint64_t) getpid ();
        memcpy (bytes, &fallback, sizeof bytes);
    }
    char *at = id;
    for (size_t i = 0; i < sizeof bytes && (size_t) (at - id) + 3 <= size; i++)
        at += sprintf (at, "%02x", bytes[i]);
}

static bool
s_push (void **items_p, size_t *count_p, size_t *capacity_p, size_t item_size, const void *item)
{
    if (*count_p == *capacity_p) {
        size_t capacity = *capacity_p ? *capacity_p * 2 : 16;
        void *items = realloc (*items_p, capacity * item_size);
        if (!items)
            return false;
        *items_p = items;
        *capacity_p = capacity;
    }
    memcpy ((char *) *items_p + *count_p * item_size, item, item_size);
    (*count_p)++;
    return true;
}

static s_sandbox_t *
s_sandbox_find (s_oci_t *self, const char *id)
{
    for (size_t i = 0; id && i < self->sandbox_count; i++)
        if (strcmp (self->sandboxes[i]->id, id) == 0)
            return self->sandboxes[i];
    return NULL;
}

static s_container_t *
s_container_find (s_oci_t *self, const char *id)
{
    for (size_t i = 0; id && i < self->container_count; i++)
        if (strcmp (self->containers[i]->id, id) == 0)
            return self->containers[i];
    return NULL;
}

static const Zube__Container *
s_container_spec (const s_sandbox_t *sandbox, bool init, uint32_t index)
{
    const Zube__PodSpec *spec = sandbox->pod ? sandbox->pod->spec : NULL;
    if (!spec)
        return NULL;
    if (init)
        return index < spec->n_init_containers ? spec->init_containers[index] : NULL;
    return index < spec->n_containers ? spec->containers[index] : NULL;
}

static void
s_event (s_oci_t *self, const s_container_t *container)
{
    for (size_t i = 0; i < self->event_count; i++)
        if (strcmp (self->events[i], container->id) == 0)
            return;
    char id[ZUBE_RUNTIME_ID_MAX];
    s_copy (id, sizeof id, container->id);
    s_push ((void **) &self->events, &self->event_count, &self->event_capacity, sizeof id, id);
}

//  The runtime's command line with args (NULL-terminated) into argv, cut
//  to size entries.
static void
s_runtime_command (s_oci_t *self, const char *const *args, const char **argv, size_t size)
{
    size_t count = 0;
    for (size_t i = 0; i < self->runtime_argc && count + 1 < size; i++)
        argv[count++] = self->runtime_argv[i];
    for (size_t i = 0; args && args[i] && count + 1 < size; i++)
        argv[count++] = args[i];
    argv[count] = NULL;
}

//  runc with args; its stderr (trimmed) into error on failure.
static int
s_runc (s_oci_t *self, const char *const *args, char *error, size_t error_size)
{
    const char *argv[OCI_RUNTIME_ARGV_MAX + 16];
    s_runtime_command (self, args, argv, sizeof argv / sizeof argv[0]);
    oci_buf_t err = {0};
    bool timed_out = false;
    int status = oci_run (argv, NULL, NULL, 0, NULL, &err, S_RUNC_TIMEOUT_MS, &timed_out);
    int rc = 0;
    if (status < 0 || timed_out || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        if (error) {
            const char *text = err.data ? err.data : "";
            if (status < 0)
                snprintf (error, error_size, "cannot run %s: %s", self->runc, strerror (errno));
            else
                snprintf (error, error_size, "%s %s: %s", self->crun ? "crun" : "runc", args[0],
                          *text ? text : timed_out ? "timed out" : "failed");
            size_t length = strlen (error);
            while (length && (error[length - 1] == '\n' || error[length - 1] == ' '))
                error[--length] = 0;
        }
        rc = -1;
    }
    oci_buf_free (&err);
    return rc;
}

//  runc's error lines look like `time="..." level=error msg="..."`: keep
//  the message.
static void
s_runc_message (const char *text, char *out, size_t size)
{
    const char *msg = strstr (text, "msg=\"");
    if (!msg) {
        s_copy (out, size, text);
    } else {
        msg += 5;
        size_t used = 0;
        for (const char *c = msg; *c && *c != '\n' && used + 1 < size; c++) {
            if (*c == '\\' && c[1]) {
                c++;
                out[used++] = *c;
                continue;
            }
            if (*c == '"')
                break;
            out[used++] = *c;
        }
        out[used] = 0;
    }
    size_t length = strlen (out);
    while (length && (out[length - 1] == '\n' || out[length - 1] == ' '))
        out[--length] = 0;
}

//  ---------------------------------------------------------------------
//  Persistence: one key=value file per sandbox and per container

static int
s_sandbox_save (s_oci_t *self, s_sandbox_t *sandbox)
{
    oci_buf_t buf = {0};
    oci_buf_printf (&buf,
                    "id=%s\nnode=%s\nnamespace=%s\nname=%s\nuid=%s\nip=%s\nstate=%d\n"
                    "created_ms=%" PRId64 "\nhost_network=%d\nnetwork_ready=%d\n",
                    sandbox->id, sandbox->node_name, sandbox->pod_namespace, sandbox->pod_name,
                    sandbox->pod_uid, sandbox->ip, (int) sandbox->state, sandbox->created_ms,
                    sandbox->host_network, sandbox->network_ready);
    char path[4400];
    snprintf (path, sizeof path, "%s/sandbox", sandbox->dir);
    int rc = buf.failed ? -1 : oci_write_file (path, buf.data, buf.used, 0600);
    if (rc != 0)
        s_log (self, ZUBE_LOG_WARN, "msg=\"cannot save the sandbox\" sandbox=%s error=\"%s\"",
               sandbox->id, strerror (errno));
    oci_buf_free (&buf);
    return rc;
}

static int
s_container_save (s_oci_t *self, s_container_t *container)
{
    oci_buf_t buf = {0};
    oci_buf_printf (&buf,
                    "id=%s\nsandbox=%s\nname=%s\ninit=%d\nindex=%" PRIu32 "\nattempt=%" PRIu32
                    "\ncreated_ms=%" PRId64 "\nstarted_ms=%" PRId64 "\npid=%d\nshim_pid=%d\n"
                    "image=%s\nimage_id=%s\nstop_signal=%d\nrootfs=%d\ncwd=%s\n",
                    container->id, container->sandbox->id, container->name, container->init,
                    container->index, container->attempt, container->created_ms,
                    container->started_ms, (int) container->pid, (int) container->shim_pid,
                    container->image ? container->image : "",
                    container->image_id ? container->image_id : "", container->stop_signal,
                    container->rootfs_prepared, container->cwd);
    //  A container that never ran keeps why (StartError)
    if (container->state == ZUBE_RUNTIME_CONTAINER_EXITED && !container->pid)
        oci_buf_printf (&buf, "failed_ms=%" PRId64 "\nreason=%s\nmessage=%s\n",
                        container->finished_ms, container->reason, container->message);
    char path[4400];
    snprintf (path, sizeof path, "%s/container", container->dir);
    int rc = buf.failed ? -1 : oci_write_file (path, buf.data, buf.used, 0600);
    if (rc != 0)
        s_log (self, ZUBE_LOG_WARN,
               "msg=\"cannot save the container\" container=%s error=\"%s\"", container->id,
               strerror (errno));
    oci_buf_free (&buf);
    return rc;
}

//  Whether pid is still a shim (after a reboot the number may be
//  anyone's): its name is zube-shim.
static bool
s_shim_alive (pid_t pid)
{
    if (pid <= 0)
        return false;
    char path[64], name[32] = "";
    snprintf (path, sizeof path, "/proc/%d/comm", (int) pid);
    FILE *file = fopen (path, "re");
    if (!file)
        return false;
    bool alive = fgets (name, sizeof name, file) && strncmp (name, "zube-shim", 9) == 0;
    fclose (file);
    return alive;
}

//  The exit file the shim wrote: fills the EXITED state; false when there
//  is none yet.
static bool
s_read_exit (s_container_t *container)
{
    char path[4400];
    snprintf (path, sizeof path, "%s/exit", container->dir);
    char *text = oci_read_file (path, NULL);
    if (!text)
        return false;
    char value[64];
    int code = oci_kv_get (text, "exit_code", value, sizeof value) ? atoi (value) : 255;
    int signal_number = oci_kv_get (text, "signal", value, sizeof value) ? atoi (value) : 0;
    int64_t oom = oci_kv_get (text, "oom_kills", value, sizeof value) ? atoll (value) : 0;
    int64_t finished = oci_kv_get (text, "finished_ms", value, sizeof value) ? atoll (value)
                                                                              : oci_wall_ms ();
    free (text);
    container->state = ZUBE_RUNTIME_CONTAINER_EXITED;
    container->exit_code = code;
    container->finished_ms = finished;
    container->kill_at = 0;
    container->message[0] = 0;
    if (oom > 0 && signal_number == SIGKILL)
        s_copy (container->reason, sizeof container->reason, "OOMKilled");
    else
        s_copy (container->reason, sizeof container->reason, code == 0 ? "Completed" : "Error");
    return true;
}

//  The shim is gone without an exit file: the container exited with an
//  unknown code (255).

static void
s_shim_lost (s_container_t *container)
{
    container->state = ZUBE_RUNTIME_CONTAINER_EXITED;
    container->exit_code = 255;
    container->finished_ms = oci_wall_ms ();
    s_copy (container->reason, sizeof container->reason, "Error");
    s_copy (container->message, sizeof container->message,
            "the container's shim exited without recording its exit code");
}

//  ---------------------------------------------------------------------
//  Records

static void
s_sandbox_free (s_sandbox_t *sandbox)
{
    if (!sandbox)
        return;
    free (sandbox->node_name);
    free (sandbox->pod_namespace);
    free (sandbox->pod_name);
    free (sandbox->pod_uid);
    if (sandbox->pod)
        zube__pod__free_unpacked (sandbox->pod, NULL);
    free (sandbox);
}

static void
s_container_free (s_container_t *container)
{
    if (!container)
        return;
    free (container->name);
    free (container->image);
    free (container->image_id);
    free (container);
}

static void
s_container_forget (s_oci_t *self, s_container_t *container)
{
    for (size_t i = 0; i < self->container_count; i++)
        if (self->containers[i] == container) {
            self->containers[i] = self->containers[--self->container_count];
            break;
        }
    for (size_t i = 0; i < self->event_count; i++)
        if (strcmp (self->events[i], container->id) == 0) {
            memcpy (self->events[i], self->events[--self->event_count], ZUBE_RUNTIME_ID_MAX);
            break;
        }
    s_container_free (container);
}

static void
s_sandbox_forget (s_oci_t *self, s_sandbox_t *sandbox)
{
    for (size_t i = 0; i < self->sandbox_count; i++)
        if (self->sandboxes[i] == sandbox) {
            self->sandboxes[i] = self->sandboxes[--self->sandbox_count];
            break;
        }
    s_sandbox_free (sandbox);
}

static void
s_sandbox_paths (s_oci_t *self, s_sandbox_t *sandbox)
{
    snprintf (sandbox->dir, sizeof sandbox->dir, "%s/sandboxes/%s", self->state_dir, sandbox->id);
    snprintf (sandbox->netns, sizeof sandbox->netns, "%s/netns", sandbox->dir);
    snprintf (sandbox->log_dir, sizeof sandbox->log_dir, "%s/logs", sandbox->dir);
}

static void
s_container_paths (s_oci_t *self, s_container_t *container)
{
    snprintf (container->dir, sizeof container->dir, "%s/containers/%s", self->state_dir,
              container->id);
    snprintf (container->log_path, sizeof container->log_path, "%s/%s/%" PRIu32 ".log",
              container->sandbox->log_dir, container->name, container->attempt);
}

//  ---------------------------------------------------------------------
//  Open, recovery, close

static zube_status_t
s_option (s_oci_t *self, const char *option)
{
    static const struct {
        const char *key;
        size_t offset;
    } keys[] = {
        {"state_dir", offsetof (s_oci_t, state_dir)},
        {"runtime", offsetof (s_oci_t, runtime)},
        {"runc", offsetof (s_oci_t, runtime)},
        {"cni_path", offsetof (s_oci_t, cni_path)},
        {"bridge", offsetof (s_oci_t, bridge)},
        {"pod_cidr", offsetof (s_oci_t, pod_cidr)},
        {"cgroup_parent", offsetof (s_oci_t, cgroup_parent)},
        {"image_dir", offsetof (s_oci_t, image_dir)},
        {"image_preload", offsetof (s_oci_t, image_preload)},
    };
    const char *equals = strchr (option, '=');
    if (!equals)
        return s_fail (self, ZUBE_BAD_REQUEST, "oci: option \"%s\": expected key=value", option);
    size_t key_length = (size_t) (equals - option);
    const char *value = equals + 1;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strlen (keys[i].key) != key_length || memcmp (option, keys[i].key, key_length) != 0)
            continue;
        char **field = (char **) ((char *) self + keys[i].offset);
        free (*field);
        *field = strdup (value);
        return *field ? ZUBE_OK : s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    }
    if (key_length == 12 && memcmp (option, "log_max_size", 12) == 0) {
        char *end;
        long long bytes = strtoll (value, &end, 10);
        if (end == value || bytes < 4096 || (*end && strcmp (end, "Ki") && strcmp (end, "Mi")))
            return s_fail (self, ZUBE_BAD_REQUEST,
                           "oci: option log_max_size=%s: expected a size of at least 4096 "
                           "bytes (e.g. 10Mi)",
                           value);
        self->log_max_size = bytes * (*end == 'K' ? 1024 : *end == 'M' ? 1048576 : 1);
        return ZUBE_OK;
    }
    return s_fail (self, ZUBE_BAD_REQUEST,
                   "oci: unknown option \"%.*s\" (expected state_dir, runtime, cni_path, bridge, "
                   "pod_cidr, cgroup_parent, image_dir, image_preload or log_max_size)",
                   (int) key_length, option);
}

static bool
s_executable (const char *path)
{
    return path && access (path, X_OK) == 0;
}

//  The first of /usr/sbin, /usr/bin, /usr/local/sbin, /usr/local/bin
//  holding an executable name (malloc'd), or NULL.
static char *
s_find_binary (const char *name)
{
    static const char *dirs[] = {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin",
                                 NULL};
    for (size_t i = 0; dirs[i]; i++) {
        char path[512];
        snprintf (path, sizeof path, "%s/%s", dirs[i], name);
        if (s_executable (path))
            return strdup (path);
    }
    return NULL;
}

//  Whether crun refuses this host's cgroup layout: a hybrid host (the v1
//  hierarchies on a tmpfs /sys/fs/cgroup) whose cgroup2 mount at
//  /sys/fs/cgroup/unified holds controllers. crun 1.8 then fails every
//  container with "cgroups in hybrid mode not supported, drop all
//  controllers from cgroupv2"; runc uses the v1 hierarchies.
static bool
s_cgroup_hybrid_v2_controllers (void)
{
    struct statfs st;
    if (statfs ("/sys/fs/cgroup", &st) != 0 || st.f_type == CGROUP2_SUPER_MAGIC)
        return false;
    if (statfs ("/sys/fs/cgroup/unified", &st) != 0 || st.f_type != CGROUP2_SUPER_MAGIC)
        return false;
    char *controllers = oci_read_file ("/sys/fs/cgroup/unified/cgroup.controllers", NULL);
    bool any = controllers && controllers[strspn (controllers, " \n")];
    free (controllers);
    return any;
}

//  The low-level runtime: runtime=runc|crun|PATH, or by default crun when
//  it is installed and takes this host's cgroup layout as it is, else
//  runc, else crun behind the wrapper (docs/runtime-oci.md, "runc or
//  crun"). Which of the two a path is comes from its --version.
static zube_status_t
s_pick_runtime (s_oci_t *self)
{
    bool hybrid = s_cgroup_hybrid_v2_controllers ();
    const char *wanted = self->runtime;
    if (!wanted) {
        char *crun = s_find_binary ("crun");
        char *runc = s_find_binary ("runc");
        if (crun && (!hybrid || !runc)) {
            self->runc = crun;
            free (runc);
        } else {
            self->runc = runc;
            free (crun);
        }
        if (!self->runc)
            return s_fail (self, ZUBE_UNAVAILABLE,
                           "oci: neither runc nor crun found (looked in /usr/sbin, /usr/bin, "
                           "/usr/local/sbin, /usr/local/bin); install runc or crun or give "
                           "runtime=PATH");
    } else if (strcmp (wanted, "runc") == 0 || strcmp (wanted, "crun") == 0) {
        self->runc = s_find_binary (wanted);
        if (!self->runc)
            return s_fail (self, ZUBE_UNAVAILABLE,
                           "oci: runtime=%s: %s not found (looked in /usr/sbin, /usr/bin, "
                           "/usr/local/sbin, /usr/local/bin); install it or give its path",
                           wanted, wanted);
    } else if (wanted[0] == '/') {
        if (!s_executable (wanted))
            return s_fail (self, ZUBE_UNAVAILABLE, "oci: runtime=%s is not an executable file",
                           wanted);
        self->runc = strdup (wanted);
    } else
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "oci: runtime=%s: expected runc, crun or the absolute path of either",
                       wanted);
    if (!self->runc)
        return s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    const char *argv[] = {self->runc, "--version", NULL};
    oci_buf_t out = {0};
    int status = oci_run (argv, NULL, NULL, 0, &out, NULL, S_RUNC_TIMEOUT_MS, NULL);
    bool answered = status >= 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0 && out.data;
    self->crun = answered && strncmp (out.data, "crun ", 5) == 0;
    bool runc = answered && strncmp (out.data, "runc ", 5) == 0;
    oci_buf_free (&out);
    if (!self->crun && !runc)
        return s_fail (self, ZUBE_UNAVAILABLE,
                       "oci: runtime %s: `%s --version` does not say runc or crun", self->runc,
                       self->runc);
    if (self->crun && hybrid && (!s_executable (S_UNSHARE) || !s_executable ("/bin/sh")))
        return s_fail (self, ZUBE_UNAVAILABLE,
                       "oci: crun on this host's hybrid cgroup layout needs %s and /bin/sh "
                       "(util-linux)",
                       S_UNSHARE);
    return ZUBE_OK;
}

//  The runtime's command line up to its subcommand. crun on a hybrid
//  host with cgroup2 controllers runs in a mount namespace of its own
//  (a slave of the host's, so what it mounts for the container is as
//  usual) without the cgroup2 mount: it then sees the v1 layout and
//  drives the v1 hierarchies as runc does. unshare and sh exec in place,
//  so the pid is crun's.
static void
s_runtime_argv_build (s_oci_t *self)
{
    size_t n = 0;
    if (self->crun && s_cgroup_hybrid_v2_controllers ()) {
        const char *wrapper[] = {S_UNSHARE, "--mount", "--propagation", "slave", "/bin/sh",
                                 "-c",
                                 "umount -l /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"",
                                 "crun"};
        for (size_t i = 0; i < sizeof wrapper / sizeof wrapper[0]; i++)
            self->runtime_argv[n++] = wrapper[i];
    }
    self->runtime_argv[n++] = self->runc;
    self->runtime_argv[n++] = "--root";
    self->runtime_argv[n++] = self->runc_root;
    self->runtime_argv[n] = NULL;
    self->runtime_argc = n;
    s_log (self, ZUBE_LOG_INFO, "msg=\"oci low-level runtime\" runtime=%s binary=%s wrapped=%s",
           self->crun ? "crun" : "runc", self->runc, n > 3 ? "true" : "false");
}

//  Defaults for what the options left unset: the low-level runtime and
//  the CNI plugins from the usual places.
static zube_status_t
s_defaults (s_oci_t *self)
{
    static const char *cni_dirs[] = {"/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni", NULL};
    if (!self->state_dir)
        self->state_dir = strdup ("/var/lib/zubelet/runtime");
    for (size_t i = 0; !self->cni_path && cni_dirs[i]; i++) {
        char bridge[256];
        snprintf (bridge, sizeof bridge, "%s/bridge", cni_dirs[i]);
        if (s_executable (bridge))
            self->cni_path = strdup (cni_dirs[i]);
    }
    if (!self->bridge)
        self->bridge = strdup ("zube0");
    if (!self->pod_cidr)
        self->pod_cidr = strdup ("10.88.0.0/16");
    if (!self->cgroup_parent)
        self->cgroup_parent = strdup ("zube");
    if (!self->log_max_size)
        self->log_max_size = S_DEFAULT_LOG_MAX;
    if (!self->state_dir || !self->bridge || !self->pod_cidr || !self->cgroup_parent)
        return s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    zube_status_t picked = s_pick_runtime (self);
    if (picked != ZUBE_OK)
        return picked;
    if (!self->cni_path)
        return s_fail (self, ZUBE_UNAVAILABLE,
                       "oci: the CNI plugins were not found (looked for bridge in /usr/lib/cni, "
                       "/opt/cni/bin, /usr/libexec/cni); install containernetworking-plugins "
                       "or give cni_path=DIR");
    if (strlen (self->bridge) > 15 || strchr (self->bridge, '/'))
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "oci: bridge=%s: an interface name has at most 15 characters and no /",
                       self->bridge);
    unsigned a, b, c, d, bits;
    char tail;
    if (sscanf (self->pod_cidr, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &bits, &tail) != 5
        || a > 255 || b > 255 || c > 255 || d > 255 || bits < 8 || bits > 30)
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "oci: pod_cidr=%s: expected an IPv4 CIDR such as 10.88.0.0/16 (prefix "
                       "8 to 30)",
                       self->pod_cidr);
    if (geteuid () != 0)
        return s_fail (self, ZUBE_UNAVAILABLE,
                       "oci: runs containers as root only (runc, network namespaces and CNI "
                       "need it); this process runs as uid %d",
                       (int) geteuid ());
    return ZUBE_OK;
}

static zube_status_t
s_make_dirs (s_oci_t *self)
{
    const char *subdirs[] = {"", "/runc", "/sandboxes", "/containers", "/cni/networks", NULL};
    for (size_t i = 0; subdirs[i]; i++) {
        char path[4200];
        snprintf (path, sizeof path, "%s%s", self->state_dir, subdirs[i]);
        if (oci_mkdirs (path, 0700) != 0)
            return s_fail (self, ZUBE_UNAVAILABLE, "oci: state_dir: cannot create %s: %s", path,
                           strerror (errno));
        if (access (path, W_OK) != 0)
            return s_fail (self, ZUBE_UNAVAILABLE, "oci: state_dir: %s is not writable: %s",
                           path, strerror (errno));
    }
    return ZUBE_OK;
}

static void
s_recover_sandbox (s_oci_t *self, const char *id)
{
    s_sandbox_t *sandbox = calloc (1, sizeof *sandbox);
    if (!sandbox)
        return;
    s_copy (sandbox->id, sizeof sandbox->id, id);
    s_sandbox_paths (self, sandbox);
    char path[4400], value[512];
    snprintf (path, sizeof path, "%s/sandbox", sandbox->dir);
    char *text = oci_read_file (path, NULL);
    if (!text) {
        s_log (self, ZUBE_LOG_WARN,
               "msg=\"a sandbox directory without its state: removed\" sandbox=%s", id);
        oci_netns_remove (sandbox->netns);
        oci_remove_tree (sandbox->dir);
        free (sandbox);
        return;
    }
    if (oci_kv_get (text, "node", value, sizeof value))
        sandbox->node_name = strdup (value);
    if (oci_kv_get (text, "namespace", value, sizeof value))
        sandbox->pod_namespace = strdup (value);
    if (oci_kv_get (text, "name", value, sizeof value))
        sandbox->pod_name = strdup (value);
    if (oci_kv_get (text, "uid", value, sizeof value))
        sandbox->pod_uid = strdup (value);
    oci_kv_get (text, "ip", sandbox->ip, sizeof sandbox->ip);
    sandbox->state = oci_kv_get (text, "state", value, sizeof value) && atoi (value) == 2
                         ? ZUBE_RUNTIME_SANDBOX_NOT_READY
                         : ZUBE_RUNTIME_SANDBOX_READY;
    sandbox->created_ms = oci_kv_get (text, "created_ms", value, sizeof value) ? atoll (value)
                                                                                : 0;
    sandbox->host_network = oci_kv_get (text, "host_network", value, sizeof value)
                            && atoi (value);
    sandbox->network_ready = oci_kv_get (text, "network_ready", value, sizeof value)
                             && atoi (value);
    free (text);
    snprintf (path, sizeof path, "%s/pod.pb", sandbox->dir);
    size_t size = 0;
    char *packed = oci_read_file (path, &size);
    if (packed)
        sandbox->pod = zube__pod__unpack (NULL, size, (const uint8_t *) packed);
    free (packed);
    if (!sandbox->node_name || !sandbox->pod_namespace || !sandbox->pod_name
        || !sandbox->pod_uid || !sandbox->pod) {
        s_log (self, ZUBE_LOG_WARN,
               "msg=\"a sandbox with unreadable state: kept for removal\" sandbox=%s", id);
        sandbox->state = ZUBE_RUNTIME_SANDBOX_NOT_READY;
        if (!sandbox->node_name)
            sandbox->node_name = strdup ("");
        if (!sandbox->pod_namespace)
            sandbox->pod_namespace = strdup ("");
        if (!sandbox->pod_name)
            sandbox->pod_name = strdup ("");
        if (!sandbox->pod_uid)
            sandbox->pod_uid = strdup ("");
    }
    if (!s_push ((void **) &self->sandboxes, &self->sandbox_count, &self->sandbox_capacity,
                 sizeof sandbox, &sandbox))
        s_sandbox_free (sandbox);
}

static void
s_recover_container (s_oci_t *self, const char *id)
{
    char dir[4200], path[4400], value[1024];
    snprintf (dir, sizeof dir, "%s/containers/%s", self->state_dir, id);
    snprintf (path, sizeof path, "%s/container", dir);
    char *text = oci_read_file (path, NULL);
    s_sandbox_t *sandbox = NULL;
    if (text && oci_kv_get (text, "sandbox", value, sizeof value))
        sandbox = s_sandbox_find (self, value);
    s_container_t *container = sandbox ? calloc (1, sizeof *container) : NULL;
    if (!container) {
        s_log (self, ZUBE_LOG_WARN,
               "msg=\"a container without its sandbox or state: removed\" container=%s", id);
        const char *args[] = {"delete", "--force", id, NULL};
        s_runc (self, args, NULL, 0);
        if (self->images)
            oci_image_release_rootfs (self->images, dir);
        oci_remove_tree (dir);
        free (text);
        return;
    }
    s_copy (container->id, sizeof container->id, id);
    container->sandbox = sandbox;
    container->name = strdup (oci_kv_get (text, "name", value, sizeof value) ? value : "");
    container->init = oci_kv_get (text, "init", value, sizeof value) && atoi (value);
    container->index = oci_kv_get (text, "index", value, sizeof value) ? (uint32_t) atol (value)
                                                                        : 0;
    container->attempt = oci_kv_get (text, "attempt", value, sizeof value)
                             ? (uint32_t) atol (value)
                             : 0;
    container->created_ms = oci_kv_get (text, "created_ms", value, sizeof value) ? atoll (value)
                                                                                  : 0;
    container->started_ms = oci_kv_get (text, "started_ms", value, sizeof value) ? atoll (value)
                                                                                  : 0;
    container->pid = oci_kv_get (text, "pid", value, sizeof value) ? atoi (value) : 0;
    container->shim_pid = oci_kv_get (text, "shim_pid", value, sizeof value) ? atoi (value) : 0;
    container->stop_signal = oci_kv_get (text, "stop_signal", value, sizeof value) ? atoi (value)
                                                                                    : SIGTERM;
    container->rootfs_prepared = oci_kv_get (text, "rootfs", value, sizeof value)
                                 && atoi (value);
    container->image = strdup (oci_kv_get (text, "image", value, sizeof value) ? value : "");
    container->image_id = strdup (oci_kv_get (text, "image_id", value, sizeof value) ? value
                                                                                      : "");
    if (!oci_kv_get (text, "cwd", container->cwd, sizeof container->cwd))
        s_copy (container->cwd, sizeof container->cwd, "/");
    s_container_paths (self, container);
    if (oci_kv_get (text, "failed_ms", value, sizeof value)) {
        container->state = ZUBE_RUNTIME_CONTAINER_EXITED;
        container->finished_ms = atoll (value);
        container->exit_code = S_EXIT_START_ERROR;
        oci_kv_get (text, "reason", container->reason, sizeof container->reason);
        oci_kv_get (text, "message", container->message, sizeof container->message);
    } else if (s_read_exit (container))
        ;
    else if (container->pid && s_shim_alive (container->shim_pid))
        container->state = ZUBE_RUNTIME_CONTAINER_RUNNING;
    else if (container->pid && !s_read_exit (container)) {
        //  The shim is gone without an exit file (killed with the
        //  machine's processes): the container is gone too.
        s_shim_lost (container);
    } else if (!container->pid)
        container->state = ZUBE_RUNTIME_CONTAINER_CREATED;
    free (text);
    if (!container->name || !container->image || !container->image_id
        || !s_push ((void **) &self->containers, &self->container_count,
                    &self->container_capacity, sizeof container, &container))
        s_container_free (container);
}

static void
s_recover (s_oci_t *self)
{
    const char *kinds[] = {"sandboxes", "containers"};
    for (int k = 0; k < 2; k++) {
        char path[4200];
        snprintf (path, sizeof path, "%s/%s", self->state_dir, kinds[k]);
        DIR *dir = opendir (path);
        struct dirent *entry;
        while (dir && (entry = readdir (dir))) {
            if (entry->d_name[0] == '.' || strlen (entry->d_name) >= ZUBE_RUNTIME_ID_MAX)
                continue;
            if (k == 0)
                s_recover_sandbox (self, entry->d_name);
            else
                s_recover_container (self, entry->d_name);
        }
        if (dir)
            closedir (dir);
    }
    //  runc containers of no record (a crash between runc create and the
    //  record's save) are deleted
    const char *argv[OCI_RUNTIME_ARGV_MAX + 4];
    s_runtime_command (self, (const char *[]) {"list", "-q", NULL}, argv,
                       sizeof argv / sizeof argv[0]);
    oci_buf_t out = {0};
    int status = oci_run (argv, NULL, NULL, 0, &out, NULL, S_RUNC_TIMEOUT_MS, NULL);
    if (status >= 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0 && out.data) {
        char *save = NULL;
        for (char *id = strtok_r (out.data, "\n", &save); id; id = strtok_r (NULL, "\n", &save))
            if (!s_container_find (self, id)) {
                s_log (self, ZUBE_LOG_WARN,
                       "msg=\"a runc container of no record: deleted\" container=%s", id);
                const char *args[] = {"delete", "--force", id, NULL};
                s_runc (self, args, NULL, 0);
            }
    }
    oci_buf_free (&out);
    s_log (self, ZUBE_LOG_INFO, "msg=\"oci state read\" sandboxes=%zu containers=%zu",
           self->sandbox_count, self->container_count);
}

static zube_status_t s_exec_close (zube_runtime_backend_t *self, const char *session);

static void
s_destroy (s_oci_t *self)
{
    for (size_t i = 0; i < self->container_count; i++)
        s_container_free (self->containers[i]);
    for (size_t i = 0; i < self->sandbox_count; i++)
        s_sandbox_free (self->sandboxes[i]);
    while (self->exec_count)
        s_exec_close (self, self->execs[0]->id);
    free (self->execs);
    free (self->containers);
    free (self->sandboxes);
    free (self->events);
    if (self->images)
        oci_image_store_close (&self->images);
    free (self->state_dir);
    free (self->runtime);
    free (self->runc);
    free (self->runc_root);
    free (self->cni_path);
    free (self->bridge);
    free (self->pod_cidr);
    free (self->cgroup_parent);
    free (self->image_dir);
    free (self->image_preload);
    free (self);
}

static zube_status_t
s_open (const zube_host_t *host, const char *const *options,
        zube_runtime_backend_t **backend_p, char *error, size_t error_size)
{
    *backend_p = NULL;
    s_oci_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "oci: out of memory");
        return ZUBE_INTERNAL;
    }
    self->host = host;
    zube_status_t status = ZUBE_OK;
    for (size_t i = 0; options && options[i] && status == ZUBE_OK; i++)
        status = s_option (self, options[i]);
    if (status == ZUBE_OK)
        status = s_defaults (self);
    if (status == ZUBE_OK)
        status = s_make_dirs (self);
    if (status == ZUBE_OK) {
        if (asprintf (&self->runc_root, "%s/runc", self->state_dir) < 0) {
            self->runc_root = NULL;
            status = s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
        } else
            s_runtime_argv_build (self);
    }
    if (status == ZUBE_OK) {
        snprintf (self->cni_data_dir, sizeof self->cni_data_dir, "%s/cni/networks",
                  self->state_dir);
        snprintf (self->cni_conflist, sizeof self->cni_conflist, "%s/cni/zube.conflist",
                  self->state_dir);
        self->cni = (oci_cni_t) {.cni_path = self->cni_path,
                                 .bridge = self->bridge,
                                 .subnet = self->pod_cidr,
                                 .data_dir = self->cni_data_dir,
                                 .conflist = self->cni_conflist};
        char why[1024];
        if (oci_cni_write_conflist (&self->cni, why, sizeof why) != 0)
            status = s_fail (self, ZUBE_UNAVAILABLE, "oci: %s", why);
    }
    if (status == ZUBE_OK) {
        char dir[4200], why[1024] = "";
        if (self->image_dir)
            s_copy (dir, sizeof dir, self->image_dir);
        else
            snprintf (dir, sizeof dir, "%s/images", self->state_dir);
        self->images = oci_image_store_open (dir, why, sizeof why);
        if (!self->images)
            status = s_fail (self, ZUBE_UNAVAILABLE, "oci: the image store %s: %s", dir, why);
    }
    if (status != ZUBE_OK) {
        snprintf (error, error_size, "%s", self->error);
        s_destroy (self);
        return status;
    }
    if (self->image_preload) {
        char why[1024] = "";
        int failed = oci_image_preload_dir (self->images, self->image_preload, why, sizeof why);
        if (failed != 0)
            s_log (self, ZUBE_LOG_WARN,
                   "msg=\"images of the preload directory not imported\" dir=%s failed=%d "
                   "error=\"%s\"",
                   self->image_preload, failed, why);
    }
    s_recover (self);
    *backend_p = self;
    return ZUBE_OK;
}

static void
s_close (zube_runtime_backend_t **backend_p)
{
    if (!backend_p || !*backend_p)
        return;
    s_destroy (*backend_p);
    *backend_p = NULL;
}

static const char *
s_errmsg (zube_runtime_backend_t *self)
{
    return self->error;
}

//  ---------------------------------------------------------------------
//  Sandboxes

static void
s_sandbox_fill (const s_sandbox_t *sandbox, zube_runtime_sandbox_status_t *status)
{
    uint32_t size = status->struct_size;
    memset (status, 0, sizeof *status);
    status->struct_size = size;
    s_copy (status->id, sizeof status->id, sandbox->id);
    s_copy (status->node_name, sizeof status->node_name, sandbox->node_name);
    s_copy (status->pod_namespace, sizeof status->pod_namespace, sandbox->pod_namespace);
    s_copy (status->pod_name, sizeof status->pod_name, sandbox->pod_name);
    s_copy (status->pod_uid, sizeof status->pod_uid, sandbox->pod_uid);
    s_copy (status->ip, sizeof status->ip, sandbox->ip);
    status->state = sandbox->state;
    status->created_ms = sandbox->created_ms;
}

static zube_status_t
s_write_hosts (s_oci_t *self, s_sandbox_t *sandbox)
{
    const Zube__PodSpec *spec = sandbox->pod->spec;
    const char *hostname = spec && spec->hostname && *spec->hostname ? spec->hostname
                                                                     : sandbox->pod_name;
    char text[1024], path[4400];
    snprintf (text, sizeof text,
              "# Kubernetes-managed hosts file (zube oci runtime).\n127.0.0.1\tlocalhost\n"
              "::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n",
              sandbox->ip, hostname);
    snprintf (path, sizeof path, "%s/hosts", sandbox->dir);
    if (oci_write_file (path, text, strlen (text), 0644) != 0)
        return s_fail (self, ZUBE_UNAVAILABLE, "oci: cannot write %s: %s", path,
                       strerror (errno));
    return ZUBE_OK;
}

//  Undoes what run_sandbox made: network, netns, directory.
static zube_status_t
s_sandbox_teardown (s_oci_t *self, s_sandbox_t *sandbox)
{
    if (sandbox->network_ready) {
        char why[1024] = "";
        if (oci_cni_del (&self->cni, sandbox->id, sandbox->netns, sandbox->pod, why, sizeof why)
            != 0)
            return s_fail (self, ZUBE_UNAVAILABLE, "oci: sandbox %s: %s", sandbox->id, why);
        sandbox->network_ready = false;
    }
    if (oci_netns_remove (sandbox->netns) != 0)
        return s_fail (self, ZUBE_UNAVAILABLE, "oci: sandbox %s: cannot remove %s: %s",
                       sandbox->id, sandbox->netns, strerror (errno));
    if (oci_remove_tree (sandbox->dir) != 0)
        return s_fail (self, ZUBE_UNAVAILABLE,
                       "oci: sandbox %s: cannot remove %s (is something still mounted there?)",
                       sandbox->id, sandbox->dir);
    return ZUBE_OK;
}

static zube_status_t
s_run_sandbox (zube_runtime_backend_t *self, const zube_runtime_sandbox_config_t *config,
               char *id, size_t id_size)
{
    if (!config || !config->node_name || !config->pod_namespace || !config->pod_name
        || !config->pod_uid || !config->pod)
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "oci: a sandbox needs node_name, pod_namespace, pod_name, pod_uid and "
                       "the pod");
    Zube__Pod *pod = zube__pod__unpack (NULL, config->pod_size, config->pod);
    if (!pod || !pod->metadata || !pod->metadata->name || !pod->metadata->namespace_) {
        if (pod)
            zube__pod__free_unpacked (pod, NULL);
        return s_fail (self, ZUBE_BAD_REQUEST, "oci: pod %s/%s: malformed pod message",
                       config->pod_namespace, config->pod_name);
    }
    s_sandbox_t *sandbox = calloc (1, sizeof *sandbox);
    if (!sandbox) {
        zube__pod__free_unpacked (pod, NULL);
        return s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    }
    sandbox->pod = pod;
    sandbox->node_name = strdup (config->node_name);
    sandbox->pod_namespace = strdup (config->pod_namespace);
    sandbox->pod_name = strdup (config->pod_name);
    sandbox->pod_uid = strdup (config->pod_uid);
    sandbox->created_ms = oci_wall_ms ();
    sandbox->state = ZUBE_RUNTIME_SANDBOX_READY;
    sandbox->host_network = pod->spec && pod->spec->host_network;
    s_new_id (sandbox->id, sizeof sandbox->id);
    s_sandbox_paths (self, sandbox);
    zube_status_t status = ZUBE_OK;
    if (!sandbox->node_name || !sandbox->pod_namespace || !sandbox->pod_name
        || !sandbox->pod_uid)
        status = s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    if (status == ZUBE_OK && (oci_mkdirs (sandbox->dir, 0700) != 0
                              || oci_mkdirs (sandbox->log_dir, 0700) != 0))
        status = s_fail (self, ZUBE_UNAVAILABLE, "oci: cannot create %s: %s", sandbox->dir,
                         strerror (errno));
    if (status == ZUBE_OK) {
        char path[4400];
        snprintf (path, sizeof path, "%s/pod.pb", sandbox->dir);
        if (oci_write_file (path, config->pod, config->pod_size, 0600) != 0)
            status = s_fail (self, ZUBE_UNAVAILABLE, "oci: cannot write %s: %s", path,
                             strerror (errno));
    }
    //  The record first: a crash from here on leaves a sandbox that
    //  recovery knows and the zubelet removes
    if (status == ZUBE_OK && s_sandbox_save (self, sandbox) != 0)
        status = s_fail (self, ZUBE_UNAVAILABLE, "oci: cannot save the sandbox in %s: %s",
                         sandbox->dir, strerror (errno));
    if (status == ZUBE_OK && !sandbox->host_network) {
        char why[1024] = "";
        if (oci_netns_create (sandbox->netns, why, sizeof why) != 0)
            status = s_fail (self, ZUBE_UNAVAILABLE, "oci: pod %s/%s: %s", sandbox->pod_namespace,
                             sandbox->pod_name, why);
        else {
            sandbox->network_ready = true;  //  a DEL is owed from here on
            s_sandbox_save (self, sandbox);
            if (oci_cni_add (&self->cni, sandbox->id, sandbox->netns, pod, sandbox->ip,
                             sizeof sandbox->ip, why, sizeof why)
                != 0)
                status = s_fail (self, ZUBE_UNAVAILABLE, "oci: pod %s/%s: network: %s",
                                 sandbox->pod_namespace, sandbox->pod_name, why);
        }
    }
    if (status == ZUBE_OK && !sandbox->host_network)
        status = s_write_hosts (self, sandbox);
    if (status == ZUBE_OK && s_sandbox_save (self, sandbox) != 0)
        status = s_fail (self, ZUBE_UNAVAILABLE, "oci: cannot save the sandbox in %s",
                         sandbox->dir);
    if (status == ZUBE_OK
        && !s_push ((void **) &self->sandboxes, &self->sandbox_count, &self->sandbox_capacity,
                    sizeof sandbox, &sandbox))
        status = s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    if (status != ZUBE_OK) {
        char why[2048];
        s_copy (why, sizeof why, self->error);
        if (s_sandbox_teardown (self, sandbox) != ZUBE_OK)
            s_log (self, ZUBE_LOG_WARN,
                   "msg=\"cannot undo a failed sandbox\" sandbox=%s error=\"%s\"", sandbox->id,
                   self->error);
        s_copy (self->error, sizeof self->error, why);
        s_sandbox_free (sandbox);
        return status;
    }
    s_copy (id, id_size, sandbox->id);
    s_log (self, ZUBE_LOG_DEBUG, "msg=\"sandbox ready\" sandbox=%s pod=%s/%s ip=%s", sandbox->id,
           sandbox->pod_namespace, sandbox->pod_name, sandbox->ip);
    return ZUBE_OK;
}

static zube_status_t s_stop_container (zube_runtime_backend_t *self, const char *id,
                                       int64_t grace_ms);
static zube_status_t s_remove_container (zube_runtime_backend_t *self, const char *id);

static zube_status_t
s_stop_sandbox (zube_runtime_backend_t *self, const char *id, int64_t grace_ms)
{
    s_sandbox_t *sandbox = s_sandbox_find (self, id);
    if (!sandbox)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: sandbox %s not found", id ? id : "(null)");
    for (size_t i = 0; i < self->container_count; i++)
        if (self->containers[i]->sandbox == sandbox)
            s_stop_container (self, self->containers[i]->id, grace_ms);
    if (sandbox->state != ZUBE_RUNTIME_SANDBOX_NOT_READY) {
        sandbox->state = ZUBE_RUNTIME_SANDBOX_NOT_READY;
        s_sandbox_save (self, sandbox);
    }
    return ZUBE_OK;
}

static zube_status_t
s_remove_sandbox (zube_runtime_backend_t *self, const char *id)
{
    s_sandbox_t *sandbox = s_sandbox_find (self, id);
    if (!sandbox)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: sandbox %s not found", id ? id : "(null)");
    for (size_t i = 0; i < self->container_count;) {
        s_container_t *container = self->containers[i];
        if (container->sandbox != sandbox) {
            i++;
            continue;
        }
        zube_status_t status = s_remove_container (self, container->id);
        if (status != ZUBE_OK)
            return status;
        i = 0;  //  the list changed under us
    }
    zube_status_t status = s_sandbox_teardown (self, sandbox);
    if (status != ZUBE_OK)
        return status;
    s_sandbox_forget (self, sandbox);
    return ZUBE_OK;
}

static zube_status_t
s_sandbox_status (zube_runtime_backend_t *self, const char *id,
                  zube_runtime_sandbox_status_t *status)
{
    s_sandbox_t *sandbox = s_sandbox_find (self, id);
    if (!sandbox)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: sandbox %s not found", id ? id : "(null)");
    s_sandbox_fill (sandbox, status);
    return ZUBE_OK;
}

static zube_status_t
s_list_sandboxes (zube_runtime_backend_t *self, const char *node_name,
                  zube_runtime_sandbox_fn *fn, void *arg)
{
    for (size_t i = 0; i < self->sandbox_count; i++) {
        s_sandbox_t *sandbox = self->sandboxes[i];
        if (node_name && strcmp (node_name, sandbox->node_name) != 0)
            continue;
        zube_runtime_sandbox_status_t status = {.struct_size = sizeof status};
        s_sandbox_fill (sandbox, &status);
        if (fn (arg, &status) != 0)
            break;
    }
    return ZUBE_OK;
}

//  ---------------------------------------------------------------------
//  Containers

static void
s_container_fill (const s_container_t *container, zube_runtime_container_status_t *status)
{
    uint32_t size = status->struct_size;
    memset (status, 0, sizeof *status);
    status->struct_size = size;
    s_copy (status->id, sizeof status->id, container->id);
    s_copy (status->sandbox_id, sizeof status->sandbox_id, container->sandbox->id);
    s_copy (status->name, sizeof status->name, container->name);
    status->init = container->init;
    status->attempt = container->attempt;
    status->state = container->state;
    status->created_ms = container->created_ms;
    status->started_ms = container->started_ms;
    status->finished_ms = container->finished_ms;
    if (container->state == ZUBE_RUNTIME_CONTAINER_EXITED) {
        status->exit_code = container->exit_code;
        s_copy (status->reason, sizeof status->reason, container->reason);
        s_copy (status->message, sizeof status->message, container->message);
    }
    s_copy (status->image, sizeof status->image, container->image);
    s_copy (status->image_id, sizeof status->image_id, container->image_id);
}

static int
s_signal_number (const char *name)
{
    static const struct {
        const char *name;
        int number;
    } signals[] = {{"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT},  {"QUIT", SIGQUIT},
                   {"HUP", SIGHUP},   {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}};
    if (!name || !*name)
        return SIGTERM;
    const char *bare = strncasecmp (name, "SIG", 3) == 0 ? name + 3 : name;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        if (strcasecmp (bare, signals[i].name) == 0)
            return signals[i].number;
    int number = atoi (bare);
    return number > 0 && number < NSIG ? number : SIGTERM;
}

static zube_status_t
s_create_container (zube_runtime_backend_t *self, const char *sandbox_id,
                    const zube_runtime_container_config_t *config, char *id, size_t id_size)
{
    s_sandbox_t *sandbox = s_sandbox_find (self, sandbox_id);
    if (!sandbox)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: sandbox %s not found",
                       sandbox_id ? sandbox_id : "(null)");
    if (!config || !config->name)
        return s_fail (self, ZUBE_BAD_REQUEST, "oci: a container needs a name");
    if (sandbox->state != ZUBE_RUNTIME_SANDBOX_READY)
        return s_fail (self, ZUBE_CONFLICT, "oci: sandbox %s is stopped", sandbox->id);
    const Zube__Container *spec = s_container_spec (sandbox, config->init, config->index);
    if (!spec || !spec->name || strcmp (spec->name, config->name) != 0)
        return s_fail (self, ZUBE_BAD_REQUEST, "oci: pod %s/%s has no %scontainer %s at %u",
                       sandbox->pod_namespace, sandbox->pod_name, config->init ? "init " : "",
                       config->name, config->index);
    const char *image = spec->image ? spec->image : "";
    if (!*image)
        return s_fail (self, ZUBE_BAD_REQUEST, "oci: container %s has no image", config->name);
    char image_id[512] = "";
    if (!oci_image_exists (self->images, image, image_id, sizeof image_id))
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "image \"%s\" not found in the node's image store (no registry is "
                       "used: import it with zubectl image import)",
                       image);
    s_container_t *container = calloc (1, sizeof *container);
    if (!container)
        return s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    s_new_id (container->id, sizeof container->id);
    container->sandbox = sandbox;
    container->name = strdup (config->name);
    container->init = config->init;
    container->index = config->index;
    container->attempt = config->attempt;
    container->state = ZUBE_RUNTIME_CONTAINER_CREATED;
    container->created_ms = oci_wall_ms ();
    container->image = strdup (image);
    container->image_id = strdup (image_id);
    container->stop_signal = s_signal_number (spec->lifecycle ? spec->lifecycle->stop_signal
                                                              : NULL);
    s_container_paths (self, container);
    zube_status_t status = ZUBE_OK;
    oci_image_config_t image_config = {0};
    char rootfs[4400], why[1024] = "", log_dir[4400];
    if (!container->name || !container->image || !container->image_id)
        status = s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    snprintf (log_dir, sizeof log_dir, "%s/%s", sandbox->log_dir, container->name);
    if (status == ZUBE_OK
        && (oci_mkdirs (container->dir, 0700) != 0 || oci_mkdirs (log_dir, 0700) != 0))
        status = s_fail (self, ZUBE_UNAVAILABLE, "oci: cannot create %s: %s", container->dir,
                         strerror (errno));
    if (status == ZUBE_OK
        && oci_image_prepare_rootfs (self->images, image, container->dir, rootfs, sizeof rootfs,
                                     &image_config, why, sizeof why)
               != 0)
        status = s_fail (self, ZUBE_INTERNAL, "oci: container %s: rootfs of %s: %s",
                         container->name, image, why);
    if (status == ZUBE_OK) {
        container->rootfs_prepared = true;
        s_copy (container->cwd, sizeof container->cwd, oci_spec_cwd (spec, &image_config));
        if (image_config.stop_signal && !(spec->lifecycle && spec->lifecycle->stop_signal))
            container->stop_signal = s_signal_number (image_config.stop_signal);
        char cgroups_path[600], volumes_dir[4400], hosts[4400];
        snprintf (cgroups_path, sizeof cgroups_path, "/%s/%s", self->cgroup_parent,
                  container->id);
        snprintf (volumes_dir, sizeof volumes_dir, "%s/volumes", sandbox->dir);
        snprintf (hosts, sizeof hosts, "%s/hosts", sandbox->dir);
        oci_spec_input_t input = {.pod = sandbox->pod,
                                  .container = spec,
                                  .image = &image_config,
                                  .rootfs = rootfs,
                                  .pod_ip = sandbox->ip,
                                  .netns = sandbox->host_network ? NULL : sandbox->netns,
                                  .cgroups_path = cgroups_path,
                                  .volumes_dir = volumes_dir,
                                  .hosts_file = sandbox->host_network ? NULL : hosts};
        if (oci_spec_write (&input, container->dir, why, sizeof why) != 0)
            status = s_fail (self, ZUBE_INTERNAL, "oci: container %s: %s", container->name, why);
    }
    oci_image_config_free (&image_config);
    if (status == ZUBE_OK && s_container_save (self, container) != 0)
        status = s_fail (self, ZUBE_UNAVAILABLE, "oci: cannot save the container in %s",
                         container->dir);
    if (status == ZUBE_OK
        && !s_push ((void **) &self->containers, &self->container_count,
                    &self->container_capacity, sizeof container, &container))
        status = s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    if (status != ZUBE_OK) {
        if (container->rootfs_prepared)
            oci_image_release_rootfs (self->images, container->dir);
        oci_remove_tree (container->dir);
        s_container_free (container);
        return status;
    }
    s_copy (id, id_size, container->id);
    return ZUBE_OK;
}

static zube_status_t
s_start_container (zube_runtime_backend_t *self, const char *id)
{
    s_container_t *container = s_container_find (self, id);
    if (!container)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: container %s not found", id ? id : "(null)");
    if (container->state != ZUBE_RUNTIME_CONTAINER_CREATED)
        return s_fail (self, ZUBE_CONFLICT, "oci: container %s is not in the created state",
                       container->id);
    char bundle[4200], pid_file[4400], exit_file[4400], oom_control[1024], why[1200] = "";
    s_copy (bundle, sizeof bundle, container->dir);
    snprintf (pid_file, sizeof pid_file, "%s/pid", container->dir);
    snprintf (exit_file, sizeof exit_file, "%s/exit", container->dir);
    snprintf (oom_control, sizeof oom_control, "/sys/fs/cgroup/memory/%s/%s/memory.oom_control",
              self->cgroup_parent, container->id);
    oci_shim_config_t shim = {.runtime_argv = self->runtime_argv,
                              .create_start = self->crun,
                              .id = container->id,
                              .bundle = bundle,
                              .pid_file = pid_file,
                              .exit_file = exit_file,
                              .log_path = container->log_path,
                              .log_max_size = self->log_max_size,
                              .oom_control = oom_control};
    pid_t pid = 0, shim_pid = 0;
    int rc = oci_shim_start (&shim, &pid, &shim_pid, why, sizeof why);
    if (rc == 0) {
        container->pid = pid;
        container->shim_pid = shim_pid;
    }
    if (rc != 0) {
        //  Kubernetes' StartError: the container never ran
        char message[512];
        s_runc_message (why, message, sizeof message);
        const char *args[] = {"delete", "--force", container->id, NULL};
        s_runc (self, args, NULL, 0);
        container->state = ZUBE_RUNTIME_CONTAINER_EXITED;
        container->exit_code = S_EXIT_START_ERROR;
        container->finished_ms = oci_wall_ms ();
        container->pid = 0;
        s_copy (container->reason, sizeof container->reason, "StartError");
        s_copy (container->message, sizeof container->message, message);
        s_container_save (self, container);
        s_event (self, container);
        return s_fail (self, ZUBE_INTERNAL, "%s", message);
    }
    container->state = ZUBE_RUNTIME_CONTAINER_RUNNING;
    container->started_ms = oci_wall_ms ();
    s_container_save (self, container);
    //  Reported at the next tick too, as sim does: the host's probes
    //  and readiness start from that event
    s_event (self, container);
    return ZUBE_OK;
}

static zube_status_t
s_stop_container (zube_runtime_backend_t *self, const char *id, int64_t grace_ms)
{
    s_container_t *container = s_container_find (self, id);
    if (!container)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: container %s not found", id ? id : "(null)");
    if (container->state != ZUBE_RUNTIME_CONTAINER_RUNNING)
        return ZUBE_OK;
    if (s_read_exit (container)) {
        s_event (self, container);
        return ZUBE_OK;
    }
    int64_t kill_at = oci_mono_ms () + (grace_ms > 0 ? grace_ms : 0);
    if (grace_ms <= 0) {
        kill (container->pid, SIGKILL);
        container->kill_at = kill_at;
    } else if (!container->kill_at || kill_at < container->kill_at) {
        kill (container->pid, container->stop_signal);
        container->kill_at = kill_at;
    }
    return ZUBE_OK;
}

//  Waits (bounded) for a killed container's shim to record its exit.
static bool
s_wait_exit (s_container_t *container, int64_t wait_ms)
{
    int64_t until = oci_mono_ms () + wait_ms;
    while (!s_read_exit (container)) {
        if (oci_mono_ms () >= until)
            return false;
        if (!s_shim_alive (container->shim_pid))
            return s_read_exit (container);
        usleep (5000);
    }
    return true;
}

static zube_status_t
s_remove_container (zube_runtime_backend_t *self, const char *id)
{
    s_container_t *container = s_container_find (self, id);
    if (!container)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: container %s not found", id ? id : "(null)");
    if (container->state == ZUBE_RUNTIME_CONTAINER_RUNNING) {
        kill (container->pid, SIGKILL);
        if (!s_wait_exit (container, S_REMOVE_WAIT_MS))
            s_log (self, ZUBE_LOG_WARN,
                   "msg=\"a killed container did not exit in time; deleting it anyway\" "
                   "container=%s",
                   container->id);
    }
    if (container->pid || container->state == ZUBE_RUNTIME_CONTAINER_EXITED) {
        char why[1200] = "";
        const char *args[] = {"delete", "--force", container->id, NULL};
        if (s_runc (self, args, why, sizeof why) != 0 && !strstr (why, "does not exist")
            && !strstr (why, "not exist"))
            return s_fail (self, ZUBE_UNAVAILABLE, "oci: container %s: %s", container->id, why);
    }
    if (container->rootfs_prepared && oci_image_release_rootfs (self->images, container->dir) != 0)
        return s_fail (self, ZUBE_UNAVAILABLE, "oci: container %s: cannot release its rootfs",
                       container->id);
    container->rootfs_prepared = false;
    if (oci_remove_tree (container->dir) != 0)
        return s_fail (self, ZUBE_UNAVAILABLE,
                       "oci: container %s: cannot remove %s (is something still mounted?)",
                       container->id, container->dir);
    unlink (container->log_path);
    char rotated[4500];
    snprintf (rotated, sizeof rotated, "%s.1", container->log_path);
    unlink (rotated);
    s_container_forget (self, container);
    return ZUBE_OK;
}

static zube_status_t
s_container_status (zube_runtime_backend_t *self, const char *id,
                    zube_runtime_container_status_t *status)
{
    s_container_t *container = s_container_find (self, id);
    if (!container)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: container %s not found", id ? id : "(null)");
    if (container->state == ZUBE_RUNTIME_CONTAINER_RUNNING && s_read_exit (container))
        s_event (self, container);
    s_container_fill (container, status);
    return ZUBE_OK;
}

static zube_status_t
s_list_containers (zube_runtime_backend_t *self, const char *sandbox_id,
                   zube_runtime_container_fn *fn, void *arg)
{
    for (size_t i = 0; i < self->container_count; i++) {
        s_container_t *container = self->containers[i];
        if (sandbox_id && strcmp (sandbox_id, container->sandbox->id) != 0)
            continue;
        zube_runtime_container_status_t status = {.struct_size = sizeof status};
        s_container_fill (container, &status);
        if (fn (arg, &status) != 0)
            break;
    }
    return ZUBE_OK;
}

//  ---------------------------------------------------------------------
//  Tick: exits and stop deadlines

static int64_t
s_tick (zube_runtime_backend_t *self, zube_runtime_event_fn *fn, void *arg)
{
    int64_t now = oci_mono_ms ();
    bool running = false;
    for (size_t i = 0; i < self->container_count; i++) {
        s_container_t *container = self->containers[i];
        if (container->state != ZUBE_RUNTIME_CONTAINER_RUNNING)
            continue;
        if (s_read_exit (container)) {
            s_event (self, container);
            continue;
        }
        if (!s_shim_alive (container->shim_pid)
            && !s_read_exit (container)) {
            s_shim_lost (container);
            s_event (self, container);
            continue;
        }
        if (container->kill_at && now >= container->kill_at) {
            kill (container->pid, SIGKILL);
            container->kill_at = now + 1000;    //  again, should it survive
        }
        running = true;
    }
    //  Reported after the scan: fn may call back into the runtime
    size_t count = self->event_count;
    char (*events)[ZUBE_RUNTIME_ID_MAX] = NULL;
    if (count) {
        events = malloc (count * ZUBE_RUNTIME_ID_MAX);
        if (events)
            memcpy (events, self->events, count * ZUBE_RUNTIME_ID_MAX);
        else
            count = 0;
        self->event_count = 0;
    }
    for (size_t i = 0; i < count; i++) {
        s_container_t *container = s_container_find (self, events[i]);
        if (!container || !fn)
            continue;
        zube_runtime_container_status_t status = {.struct_size = sizeof status};
        s_container_fill (container, &status);
        zube_runtime_event_t event = {.struct_size = sizeof event, .container = &status};
        fn (arg, &event);
    }
    free (events);
    return running ? S_TICK_MS : -1;
}

//  ---------------------------------------------------------------------
//  Exec and probes

//  Whether stderr of an exec that exited 255 is the runtime's own
//  failure to start the process: runc logs `... msg="exec failed: ..."`,
//  crun `executable file `X` not found in $PATH: ...` or
//  `exec `X`: Permission denied`.
static bool
s_exec_failed (s_oci_t *self, const char *err)
{
    if (!err)
        return false;
    if (!self->crun)
        return strstr (err, "exec failed") != NULL;
    return strncmp (err, "executable file `", 17) == 0 || strncmp (err, "exec `", 6) == 0
           || strstr (err, "\nexecutable file `");
}

//  runc exec: the output through fn, the exit code into *exit_code_p.
static zube_status_t
s_exec_run (s_oci_t *self, s_container_t *container, const char *const *argv,
            const void *stdin_data, size_t stdin_size, int64_t timeout_ms,
            zube_runtime_output_fn *fn, void *arg, int *exit_code_p, bool *timed_out_p)
{
    size_t argc = 0;
    while (argv[argc])
        argc++;
    const char **args = calloc (argc + 5, sizeof *args);
    const char **full = calloc (argc + OCI_RUNTIME_ARGV_MAX + 6, sizeof *full);
    if (!args || !full) {
        free (args);
        free (full);
        return s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    }
    size_t n = 0;
    args[n++] = "exec";
    if (self->crun) {
        args[n++] = "--cwd";
        args[n++] = container->cwd;
    }
    args[n++] = container->id;
    for (size_t i = 0; i < argc; i++)
        args[n++] = argv[i];
    s_runtime_command (self, args, full, argc + OCI_RUNTIME_ARGV_MAX + 6);
    free (args);
    oci_buf_t out = {0}, err = {0};
    bool timed_out = false;
    int status = oci_run (full, NULL, stdin_data, stdin_size, &out, &err, timeout_ms, &timed_out);
    free (full);
    if (timed_out_p)
        *timed_out_p = timed_out;
    if (status < 0) {
        oci_buf_free (&out);
        oci_buf_free (&err);
        return s_fail (self, ZUBE_UNAVAILABLE, "oci: cannot run %s: %s", self->runc,
                       strerror (errno));
    }
    int code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
    //  runc's own failure to start the process (255 with its log line):
    //  126 as containerd and docker answer, with the message
    if (code == 255 && s_exec_failed (self, err.data)) {
        char message[1024];
        s_runc_message (err.data, message, sizeof message);
        oci_buf_free (&err);
        oci_buf_printf (&err, "OCI runtime exec failed: %s\n", message);
        code = strstr (message, "not found") ? 127 : 126;
    }
    if (fn && out.used)
        fn (arg, out.data, out.used, false);
    if (fn && err.used)
        fn (arg, err.data, err.used, true);
    oci_buf_free (&out);
    oci_buf_free (&err);
    *exit_code_p = code;
    return ZUBE_OK;
}

static zube_status_t
s_exec (zube_runtime_backend_t *self, const char *container_id, const char *const *argv,
        const void *stdin_data, size_t stdin_size, int64_t timeout_ms,
        zube_runtime_output_fn *fn, void *arg, int *exit_code_p)
{
    s_container_t *container = s_container_find (self, container_id);
    if (!container)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: container %s not found",
                       container_id ? container_id : "(null)");
    if (!argv || !argv[0])
        return s_fail (self, ZUBE_BAD_REQUEST, "oci: exec: no command");
    if (container->state != ZUBE_RUNTIME_CONTAINER_RUNNING || s_read_exit (container))
        return s_fail (self, ZUBE_CONFLICT, "oci: exec: container %s is not running",
                       container->id);
    return s_exec_run (self, container, argv, stdin_data, stdin_size, timeout_ms, fn, arg,
                       exit_code_p, NULL);
}

//  ---------------------------------------------------------------------
//  Interactive exec sessions (oci_proc.c runs the helper)

static s_exec_t *
s_exec_find (s_oci_t *self, const char *id)
{
    for (size_t i = 0; id && i < self->exec_count; i++)
        if (strcmp (self->execs[i]->id, id) == 0)
            return self->execs[i];
    return NULL;
}

//  The pty master runc/crun sends on the console socket (SCM_RIGHTS);
//  -1 when none came.
static int
s_receive_pty (int listener)
{
    int conn = accept4 (listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0)
        return -1;
    char data[256];
    char control[CMSG_SPACE (sizeof (int))];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control,
                         .msg_controllen = sizeof control};
    int fd = -1;
    if (recvmsg (conn, &msg, MSG_CMSG_CLOEXEC) >= 0) {
        struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg);
        if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
            memcpy (&fd, CMSG_DATA (cmsg), sizeof fd);
    }
    close (conn);
    return fd;
}

//  A listening unix socket for --console-socket at path (under the state
//  dir, or /tmp when that path is too long for sun_path); -1 on failure.
static int
s_console_socket (s_oci_t *self, const char *id, char *path, size_t size)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf (path, size, "%s/exec-%s.sock", self->state_dir, id);
    if (strlen (path) >= sizeof address.sun_path)
        snprintf (path, size, "/tmp/zube-exec-%s.sock", id);
    snprintf (address.sun_path, sizeof address.sun_path, "%s", path);
    unlink (path);
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind (fd, (struct sockaddr *) &address, sizeof address) != 0 || listen (fd, 1) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

static void
s_close_fds (int *fds, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (fds[i] >= 0) {
            close (fds[i]);
            fds[i] = -1;
        }
}

static zube_status_t s_exec_resize (zube_runtime_backend_t *self, const char *session,
                                    uint16_t columns, uint16_t rows);

static zube_status_t
s_exec_start (zube_runtime_backend_t *self, const char *container_id,
              const zube_runtime_exec_config_t *config, zube_runtime_exec_io_t *io,
              char *session, size_t session_size)
{
    s_container_t *container = s_container_find (self, container_id);
    if (!container)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: container %s not found",
                       container_id ? container_id : "(null)");
    if (!config || !config->argv || !config->argv[0])
        return s_fail (self, ZUBE_BAD_REQUEST, "oci: exec: no command");
    if (container->state != ZUBE_RUNTIME_CONTAINER_RUNNING || s_read_exit (container))
        return s_fail (self, ZUBE_CONFLICT, "oci: exec: container %s is not running",
                       container->id);
    s_exec_t *exec = calloc (1, sizeof *exec);
    size_t argc = 0;
    while (config->argv[argc])
        argc++;
    const char **args = calloc (argc + 16, sizeof *args);
    if (!exec || !args
        || !s_push ((void **) &self->execs, &self->exec_count, &self->exec_capacity,
                    sizeof exec, &exec)) {
        free (exec);
        free (args);
        return s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    }
    s_new_id (exec->id, sizeof exec->id);
    exec->pty = -1;
    exec->control = -1;
    snprintf (exec->pid_file, sizeof exec->pid_file, "%s/exec-%s.pid", container->dir, exec->id);
    //  The helper's ends and ours, [0] stdin, [1] stdout, [2] stderr
    int theirs[3] = {-1, -1, -1}, ours[3] = {-1, -1, -1};
    char socket_path[4400] = "";
    int listener = -1;
    size_t n = 0;
    args[n++] = "exec";
    if (self->crun) {
        args[n++] = "--cwd";
        args[n++] = container->cwd;
    }
    args[n++] = "--pid-file";
    args[n++] = exec->pid_file;
    bool ok = true;
    if (config->tty) {
        listener = s_console_socket (self, exec->id, socket_path, sizeof socket_path);
        ok = listener >= 0;
        args[n++] = "--detach";
        args[n++] = "--tty";
        args[n++] = "--console-socket";
        args[n++] = socket_path;
    } else {
        for (int i = 0; i < 3 && ok; i++) {
            int pipe_fds[2];
            if (i == 0 && !config->stdin)
                continue;
            ok = pipe2 (pipe_fds, O_CLOEXEC) == 0;
            if (ok) {
                theirs[i] = pipe_fds[i == 0 ? 0 : 1];
                ours[i] = pipe_fds[i == 0 ? 1 : 0];
            }
        }
    }
    args[n++] = container->id;
    for (size_t i = 0; i < argc; i++)
        args[n++] = config->argv[i];
    args[n] = NULL;
    char why[1200] = "";
    if (ok) {
        oci_exec_helper_t helper = {.runtime_argv = self->runtime_argv,
                                    .args = args,
                                    .tty = config->tty,
                                    .pid_file = exec->pid_file,
                                    .stdin_fd = theirs[0],
                                    .stdout_fd = theirs[1],
                                    .stderr_fd = theirs[2]};
        ok = oci_exec_helper_start (&helper, &exec->helper, &exec->control, why, sizeof why)
             == 0;
    } else
        snprintf (why, sizeof why, "%s", strerror (errno));
    free (args);
    s_close_fds (theirs, 3);
    if (ok && config->tty) {
        exec->pty = s_receive_pty (listener);
        ok = exec->pty >= 0;
        if (!ok)
            snprintf (why, sizeof why, "no pty came on the console socket");
    }
    if (listener >= 0) {
        close (listener);
        unlink (socket_path);
    }
    if (!ok) {
        s_close_fds (ours, 3);
        char message[1024];
        s_runc_message (why, message, sizeof message);
        s_exec_close (self, exec->id);
        return s_fail (self, strstr (message, "not found") ? ZUBE_BAD_REQUEST : ZUBE_UNAVAILABLE,
                       "oci: exec: %s", message);
    }
    if (config->tty) {
        s_exec_resize (self, exec->id, config->columns, config->rows);
        ours[1] = fcntl (exec->pty, F_DUPFD_CLOEXEC, 3);
        if (config->stdin)
            ours[0] = fcntl (exec->pty, F_DUPFD_CLOEXEC, 3);
    }
    for (int i = 0; i < 3; i++)
        if (ours[i] >= 0)
            fcntl (ours[i], F_SETFL, O_NONBLOCK);
    *io = (zube_runtime_exec_io_t) {.struct_size = sizeof *io,
                                    .stdin_fd = ours[0],
                                    .stdout_fd = ours[1],
                                    .stderr_fd = ours[2]};
    s_copy (session, session_size, exec->id);
    return ZUBE_OK;
}

static zube_status_t
s_exec_resize (zube_runtime_backend_t *self, const char *session, uint16_t columns,
               uint16_t rows)
{
    s_exec_t *exec = s_exec_find (self, session);
    if (!exec)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: exec session %s not found",
                       session ? session : "(null)");
    if (exec->pty >= 0 && columns && rows) {
        struct winsize size = {.ws_col = columns, .ws_row = rows};
        ioctl (exec->pty, TIOCSWINSZ, &size);
    }
    return ZUBE_OK;
}

static zube_status_t
s_exec_wait (zube_runtime_backend_t *self, const char *session, bool *exited_p,
             int *exit_code_p)
{
    s_exec_t *exec = s_exec_find (self, session);
    if (!exec)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: exec session %s not found",
                       session ? session : "(null)");
    int status;
    if (!exec->exited && exec->helper > 0 && waitpid (exec->helper, &status, WNOHANG) == exec->helper) {
        exec->exited = true;
        exec->exit_code = WIFEXITED (status) ? WEXITSTATUS (status) : 255;
    }
    *exited_p = exec->exited;
    *exit_code_p = exec->exit_code;
    return ZUBE_OK;
}

static zube_status_t
s_exec_close (zube_runtime_backend_t *self, const char *session)
{
    s_exec_t *exec = s_exec_find (self, session);
    if (!exec)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: exec session %s not found",
                       session ? session : "(null)");
    if (exec->control >= 0)
        close (exec->control);
    if (exec->pty >= 0)
        close (exec->pty);
    //  The helper kills the command and exits at once; bounded anyway
    int64_t until = oci_mono_ms () + S_REMOVE_WAIT_MS;
    while (!exec->exited && exec->helper > 0 && waitpid (exec->helper, NULL, WNOHANG) == 0) {
        if (oci_mono_ms () >= until) {
            kill (exec->helper, SIGKILL);
            waitpid (exec->helper, NULL, 0);
            break;
        }
        usleep (5000);
    }
    unlink (exec->pid_file);
    for (size_t i = 0; i < self->exec_count; i++)
        if (self->execs[i] == exec) {
            self->execs[i] = self->execs[--self->exec_count];
            break;
        }
    free (exec);
    return ZUBE_OK;
}

typedef struct {
    char text[512];
    size_t used;
} s_probe_output_t;

static int
s_probe_collect (void *arg, const char *data, size_t size, bool stderr_stream)
{
    (void) stderr_stream;
    s_probe_output_t *output = arg;
    size_t room = sizeof output->text - 1 - output->used;
    size_t take = size < room ? size : room;
    memcpy (output->text + output->used, data, take);
    output->used += take;
    output->text[output->used] = 0;
    return 0;
}

static zube_status_t
s_probe (zube_runtime_backend_t *self, const char *container_id, zube_runtime_probe_kind_t kind,
         int64_t timeout_ms, bool *success_p, char *message, size_t message_size)
{
    s_container_t *container = s_container_find (self, container_id);
    if (!container)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: container %s not found",
                       container_id ? container_id : "(null)");
    const Zube__Container *spec = s_container_spec (container->sandbox, container->init,
                                                    container->index);
    const Zube__Probe *probe = !spec                                 ? NULL
                               : kind == ZUBE_RUNTIME_PROBE_LIVENESS  ? spec->liveness_probe
                               : kind == ZUBE_RUNTIME_PROBE_READINESS ? spec->readiness_probe
                                                                      : spec->startup_probe;
    if (!probe)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: container %s has no such probe",
                       container->id);
    //  httpGet and tcpSocket go to the pod IP from the host's prober
    if (!probe->exec)
        return s_fail (self, ZUBE_UNAVAILABLE,
                       "oci: httpGet, tcpSocket and grpc probes are run by the host");
    if (!probe->exec->n_command)
        return s_fail (self, ZUBE_BAD_REQUEST, "oci: exec probe without a command");
    if (container->state != ZUBE_RUNTIME_CONTAINER_RUNNING || s_read_exit (container)) {
        *success_p = false;
        snprintf (message, message_size, "container is not running");
        return ZUBE_OK;
    }
    //  protobuf-c's repeated strings are counted, not NULL-terminated
    const char **argv = calloc (probe->exec->n_command + 1, sizeof *argv);
    if (!argv)
        return s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    for (size_t i = 0; i < probe->exec->n_command; i++)
        argv[i] = probe->exec->command[i];
    s_probe_output_t output = {.used = 0};
    int code = 0;
    bool timed_out = false;
    zube_status_t status = s_exec_run (self, container, argv, NULL, 0,
                                       timeout_ms > 0 ? timeout_ms : 1000, s_probe_collect,
                                       &output, &code, &timed_out);
    free (argv);
    if (status != ZUBE_OK)
        return status;
    *success_p = code == 0 && !timed_out;
    if (timed_out)
        snprintf (message, message_size, "command timed out after %" PRId64 "ms", timeout_ms);
    else if (code != 0)
        snprintf (message, message_size, "command exited with code %d: %s", code, output.text);
    else
        message[0] = 0;
    return ZUBE_OK;
}

//  ---------------------------------------------------------------------
//  Logs

//  "2024-05-01T10:00:00.123456789Z" -> wall ms (0 when unreadable).
static int64_t
s_parse_log_time (const char *text)
{
    struct tm tm = {0};
    int nanos_digits = 0;
    long nanos = 0;
    if (sscanf (text, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                &tm.tm_hour, &tm.tm_min, &tm.tm_sec)
        != 6)
        return 0;
    const char *dot = text + 19;
    if (*dot == '.')
        for (const char *c = dot + 1; *c >= '0' && *c <= '9' && nanos_digits < 9; c++) {
            nanos = nanos * 10 + (*c - '0');
            nanos_digits++;
        }
    while (nanos_digits++ < 9)
        nanos *= 10;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t) timegm (&tm) * 1000 + nanos / 1000000;
}

typedef struct {
    const char *text;
    size_t length;
    bool stderr_stream;
    bool partial;
    int64_t at;
} s_log_line_t;

static zube_status_t
s_logs (zube_runtime_backend_t *self, const char *container_id,
        const zube_runtime_logs_options_t *options, zube_runtime_output_fn *fn, void *arg)
{
    s_container_t *container = s_container_find (self, container_id);
    if (!container)
        return s_fail (self, ZUBE_NOT_FOUND, "oci: container %s not found",
                       container_id ? container_id : "(null)");
    if (options && options->previous) {
        s_container_t *previous = NULL;
        for (size_t i = 0; i < self->container_count; i++) {
            s_container_t *other = self->containers[i];
            if (other->sandbox == container->sandbox && other->init == container->init
                && other->index == container->index && other->attempt + 1 == container->attempt)
                previous = other;
        }
        if (!previous)
            return s_fail (self, ZUBE_NOT_FOUND,
                           "previous terminated container \"%s\" in pod \"%s\" not found",
                           container->name, container->sandbox->pod_name);
        container = previous;
    }
    int64_t since_ms = options && options->struct_size >= offsetof (zube_runtime_logs_options_t,
                                                                        since_ms)
                                                               + sizeof options->since_ms
                           ? options->since_ms
                           : 0;
    int64_t tail = options ? options->tail_lines : -1;
    //  The rotated file, then the current one
    char rotated[4500];
    snprintf (rotated, sizeof rotated, "%s.1", container->log_path);
    oci_buf_t all = {0};
    char *old = oci_read_file (rotated, NULL);
    char *current = oci_read_file (container->log_path, NULL);
    if (old)
        oci_buf_append (&all, old, strlen (old));
    if (current)
        oci_buf_append (&all, current, strlen (current));
    free (old);
    free (current);
    if (all.failed) {
        oci_buf_free (&all);
        return s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    }
    size_t capacity = 1;
    for (size_t i = 0; i < all.used; i++)
        capacity += all.data[i] == '\n';
    s_log_line_t *lines = calloc (capacity, sizeof *lines);
    if (!lines) {
        oci_buf_free (&all);
        return s_fail (self, ZUBE_INTERNAL, "oci: out of memory");
    }
    size_t count = 0;
    for (char *line = all.data; line && *line;) {
        char *end = strchr (line, '\n');
        if (end)
            *end = 0;
        //  "<time> <stream> <tag> <text>"
        char *stream = strchr (line, ' ');
        char *tag = stream ? strchr (stream + 1, ' ') : NULL;
        char *text = tag ? strchr (tag + 1, ' ') : NULL;
        if (text) {
            lines[count++] = (s_log_line_t) {.text = text + 1,
                                             .length = strlen (text + 1),
                                             .stderr_stream = strncmp (stream + 1, "stderr", 6) == 0,
                                             .partial = tag[1] == 'P',
                                             .at = s_parse_log_time (line)};
        }
        line = end ? end + 1 : NULL;
    }
    size_t first = 0;
    while (first < count && since_ms && lines[first].at < since_ms)
        first++;
    if (tail >= 0) {
        //  Count whole lines (a run of partials ends with a full one)
        size_t whole = 0, at = count;
        while (at > first && whole < (size_t) tail) {
            at--;
            if (!lines[at].partial)
                whole++;
            while (at > first && lines[at - 1].partial)
                at--;
        }
        first = whole < (size_t) tail ? first : at;
    }
    for (size_t i = first; i < count; i++) {
        if (fn (arg, lines[i].text, lines[i].length, lines[i].stderr_stream) != 0)
            break;
        if (!lines[i].partial && fn (arg, "\n", 1, lines[i].stderr_stream) != 0)
            break;
    }
    free (lines);
    oci_buf_free (&all);
    return ZUBE_OK;
}

//  ---------------------------------------------------------------------
//  Images

static zube_status_t
s_image_import (zube_runtime_backend_t *self, const char *path, char *ref, size_t ref_size)
{
    if (!path || !*path)
        return s_fail (self, ZUBE_BAD_REQUEST, "oci: image import: no path");
    char why[1024] = "";
    if (oci_image_import (self->images, path, ref, ref_size, why, sizeof why) != 0)
        return s_fail (self, ZUBE_BAD_REQUEST, "%s", why);
    return ZUBE_OK;
}

typedef struct {
    zube_runtime_image_fn *fn;
    void *arg;
} s_image_list_t;

static int
s_image_each (void *arg, const oci_image_info_t *image)
{
    s_image_list_t *list = arg;
    zube_runtime_image_t out = {.struct_size = sizeof out,
                                .names = image->names,
                                .names_count = image->names_count,
                                .id = image->id,
                                .size_bytes = image->size};
    return list->fn (list->arg, &out);
}

static zube_status_t
s_image_list (zube_runtime_backend_t *self, zube_runtime_image_fn *fn, void *arg)
{
    s_image_list_t list = {.fn = fn, .arg = arg};
    if (oci_image_list (self->images, s_image_each, &list) != 0)
        return s_fail (self, ZUBE_UNAVAILABLE, "oci: the image store cannot be read");
    return ZUBE_OK;
}

static const zube_runtime_ops_t s_ops = {
    .struct_size = sizeof (zube_runtime_ops_t),
    .open = s_open,
    .close = s_close,
    .errmsg = s_errmsg,
    .run_sandbox = s_run_sandbox,
    .stop_sandbox = s_stop_sandbox,
    .remove_sandbox = s_remove_sandbox,
    .sandbox_status = s_sandbox_status,
    .list_sandboxes = s_list_sandboxes,
    .create_container = s_create_container,
    .start_container = s_start_container,
    .stop_container = s_stop_container,
    .remove_container = s_remove_container,
    .container_status = s_container_status,
    .list_containers = s_list_containers,
    .tick = s_tick,
    .probe = s_probe,
    .logs = s_logs,
    .exec = s_exec,
    .image_import = s_image_import,
    .image_list = s_image_list,
    .exec_start = s_exec_start,
    .exec_resize = s_exec_resize,
    .exec_wait = s_exec_wait,
    .exec_close = s_exec_close,
};

ZUBE_PLUGIN_DEFINE (.name = "oci",
                    .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_RUNTIME,
                    .description = "container runtime: runc, CNI pod networking, OCI images",
                    .ops = &s_ops)
