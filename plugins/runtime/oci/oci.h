/*  oci - private declarations shared by the oci runtime plugin's files.

    oci.c holds the operation table (sandboxes, containers, tick, logs,
    exec, probes, recovery); oci_proc.c runs programs (runc, the CNI
    plugins), the per-container shim and the pod network namespaces;
    oci_cni.c invokes the CNI plugins; oci_spec.c writes a container's
    OCI config.json. docs/runtime-oci.md describes the whole. */
#ifndef OCI_H_INCLUDED
#define OCI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "core.pb-c.h"
#include "oci_image.h"

//  ---------------------------------------------------------------------
//  Text helpers (oci_proc.c)

//  A growing string; on allocation failure it keeps failed set and
//  ignores further appends.
typedef struct {
    char *data;
    size_t used;
    size_t size;
    bool failed;
} oci_buf_t;

void oci_buf_append (oci_buf_t *buf, const char *data, size_t size);
void oci_buf_printf (oci_buf_t *buf, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Appends text as a JSON string, quotes included.
void oci_buf_json (oci_buf_t *buf, const char *text);
void oci_buf_free (oci_buf_t *buf);

//  mkdir -p with mode; 0 or -1 (errno).
int oci_mkdirs (const char *path, mode_t mode);
//  rm -rf that never crosses into a mount point (a mounted volume or
//  rootfs is skipped, not emptied); 0 or -1.
int oci_remove_tree (const char *path);
//  Writes data to path through a temporary file and rename; 0 or -1.
int oci_write_file (const char *path, const void *data, size_t size, mode_t mode);
//  The whole file, NUL-terminated (malloc'd), or NULL (errno).
char *oci_read_file (const char *path, size_t *size_p);
//  The value of "key=" on a line of a key=value text, copied into out;
//  false when missing.
bool oci_kv_get (const char *text, const char *key, char *out, size_t out_size);
int64_t oci_wall_ms (void);
int64_t oci_mono_ms (void);

//  ---------------------------------------------------------------------
//  Processes (oci_proc.c)

//  Runs argv (argv[0] a path) with env (NULL: an empty environment plus
//  PATH), stdin_data on its stdin, its stdout and stderr collected into
//  out and err (either may be NULL: dropped), at most timeout_ms (then
//  SIGKILL, *timed_out_p true). Answers the wait status, or -1 with errno
//  when it could not be started.
int oci_run (const char *const *argv, const char *const *env, const void *stdin_data,
             size_t stdin_size, oci_buf_t *out, oci_buf_t *err, int64_t timeout_ms,
             bool *timed_out_p);

//  The low-level runtime's command line up to its subcommand: runc or
//  crun with --root (crun on a hybrid cgroup host behind a wrapper that
//  hides the cgroup2 mount from it, oci.c s_defaults), NULL-terminated.
#define OCI_RUNTIME_ARGV_MAX 16

//  What a shim needs to start and watch one container.
typedef struct {
    const char *const *runtime_argv;   //  runc/crun ... --root DIR
    //  create then start instead of run --detach: crun run --detach
    //  reaps an init that exits before crun does, so its exit status
    //  would never reach the shim
    bool create_start;
    const char *id;         //  the container id
    const char *bundle;     //  its bundle directory
    const char *pid_file;   //  runc --pid-file
    const char *exit_file;  //  written when the container exits
    const char *log_path;   //  LOG_DIR/<container>/<attempt>.log
    int64_t log_max_size;   //  rotate past this many bytes
    const char *oom_control; //  memory.oom_control of its cgroup, or NULL
} oci_shim_config_t;

//  Starts a shim: a process of its own session (the zubelet can die, the
//  shim and its container stay), subreaper of the container, which runs
//  `runc run --detach`, then copies the container's stdout and stderr into the
//  log file (CRI format, rotated) and writes exit_file when the
//  container's init exits. Answers 0 once the container is created (its
//  init pid in *pid_p, the shim's in *shim_pid_p), or -1 with error
//  (runc's own message, e.g. an executable not found).
int oci_shim_start (const oci_shim_config_t *config, pid_t *pid_p, pid_t *shim_pid_p,
                    char *error, size_t error_size);

//  An exec session's helper (oci_proc.c): runs runtime_argv + args (an
//  `exec ...` command line) with the given stdio (non-tty; -1:
//  /dev/null), or with a tty (args hold --detach --tty --console-socket
//  and --pid-file pid_file), and reaps the command.
typedef struct {
    const char *const *runtime_argv;
    const char *const *args;
    bool tty;
    const char *pid_file;
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
} oci_exec_helper_t;

//  Forks the helper: 0 once the command started (the helper's pid, whose
//  exit status is the command's, into *pid_p; the control pipe, whose
//  close kills the command, into *control_p), or -1 with error (the
//  runtime's message). Closes none of config's fds.
int oci_exec_helper_start (const oci_exec_helper_t *config, pid_t *pid_p, int *control_p,
                           char *error, size_t error_size);

//  Creates a network namespace held by a bind mount on path (a file it
//  creates), its lo up; 0 or -1 with error.
int oci_netns_create (const char *path, char *error, size_t error_size);
//  Unmounts and removes it; 0 or -1 (missing counts as done).
int oci_netns_remove (const char *path);

//  ---------------------------------------------------------------------
//  CNI (oci_cni.c)

typedef struct {
    const char *cni_path;   //  where the plugins are (CNI_PATH)
    const char *bridge;     //  bridge name (zube0)
    const char *subnet;     //  pod CIDR
    const char *data_dir;   //  host-local's dataDir
    const char *conflist;   //  where the generated conflist is written
} oci_cni_t;

//  Writes the generated conflist (bridge + host-local, portmap).
int oci_cni_write_conflist (const oci_cni_t *cni, char *error, size_t error_size);
//  ADD (bridge on eth0, portmap when the pod has hostPorts) for container_id in netns; the pod's IPv4 address into ip.
int oci_cni_add (const oci_cni_t *cni, const char *container_id, const char *netns,
                 const Zube__Pod *pod, char *ip, size_t ip_size, char *error,
                 size_t error_size);
//  DEL of the same, in reverse order; tolerant of what is already gone.
int oci_cni_del (const oci_cni_t *cni, const char *container_id, const char *netns,
                 const Zube__Pod *pod, char *error, size_t error_size);

//  ---------------------------------------------------------------------
//  Container spec (oci_spec.c)


typedef struct {
    const Zube__Pod *pod;
    const Zube__Container *container;
    const oci_image_config_t *image;    //  what the image says, or NULL
    const char *rootfs;
    const char *pod_ip;
    const char *netns;          //  NULL: the host's network
    const char *cgroups_path;
    const char *volumes_dir;    //  the pod's emptyDir volumes live here
    const char *hosts_file;     //  bind-mounted on /etc/hosts, or NULL
} oci_spec_input_t;

//  Writes config.json into bundle; 0, or -1 with error naming what in the
//  pod cannot be run (an unknown volume, a configMap volume, ...).
int oci_spec_write (const oci_spec_input_t *input, const char *bundle, char *error,
                    size_t error_size);
//  The container's working directory: its workingDir, else the image's,
//  else /.
const char *oci_spec_cwd (const Zube__Container *container, const oci_image_config_t *image);
//  The memory limit in bytes of the container (0: none).
int64_t oci_spec_memory_limit (const Zube__Container *container);

#endif
