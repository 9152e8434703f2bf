/*  zube_runtime - the container runtime interface: the operation table of
    plugins of kind ZUBE_PLUGIN_RUNTIME (DESIGN.md sections 5 and 7).

    The zubelet drives every pod through one runtime instance: a pod is a
    sandbox (the shared context of its containers: for `oci` a network
    namespace and a pause process, for `sim` a record), and each container
    of the pod is created in the sandbox, started, stopped and removed.
    The shape follows Kubernetes' CRI (RunPodSandbox, CreateContainer,
    StartContainer, StopContainer, ContainerStatus, ...), so the real OCI
    runtime fits the same table as the simulated one.

    One runtime instance may serve many nodes (a zubelet hosting thousands
    of simulated nodes): every sandbox names its node, and list operations
    can filter by node. State changes the runtime makes on its own (a
    container exits, a sim container finishes its run time, a probe
    fails) are reported through tick (), which the host calls when the
    runtime asked to be called (its return value) or sooner; the host
    never needs to poll every container.

    Adoption: a runtime keeps what it runs across a restart of its host
    (oci: the processes keep running; sim: it keeps its state in
    state_dir). After open, list_sandboxes and list_containers report it,
    so a restarted zubelet adopts running pods instead of starting them
    twice.

    Ids are NUL-terminated strings of at most ZUBE_RUNTIME_ID_MAX - 1
    characters, chosen by the runtime. Every operation answers a
    zube_status_t: OK, NOT_FOUND (no such sandbox or container),
    BAD_REQUEST (invalid config, e.g. an image that does not exist:
    error names it), CONFLICT (wrong state, e.g. start of a running
    container), UNAVAILABLE or INTERNAL; errmsg says why. A runtime object
    is used by one thread at a time.

    This header is part of the plugin SDK: types and the table only. */
#ifndef ZUBE_RUNTIME_H_INCLUDED
#define ZUBE_RUNTIME_H_INCLUDED

#include "zube/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZUBE_RUNTIME_ID_MAX 72

//  A runtime's own state, opaque to the host.
typedef struct zube_runtime_backend_t zube_runtime_backend_t;

//  What a sandbox is made from. pod is the whole pod (packed zube.Pod):
//  a runtime reads what it needs (sim: annotations; oci: volumes,
//  securityContext, hostNetwork, dns, ...).
typedef struct {
    uint32_t struct_size;
    const char *node_name;
    const char *pod_namespace;
    const char *pod_name;
    const char *pod_uid;
    const void *pod;
    size_t pod_size;
    //  Where the runtime writes the pod's container logs
    //  (LOG_DIR/<container>/<attempt>.log); NULL: its own choice.
    const char *log_dir;
} zube_runtime_sandbox_config_t;

typedef enum {
    ZUBE_RUNTIME_SANDBOX_READY = 1,
    ZUBE_RUNTIME_SANDBOX_NOT_READY = 2
} zube_runtime_sandbox_state_t;

typedef struct {
    uint32_t struct_size;
    char id[ZUBE_RUNTIME_ID_MAX];
    char node_name[256];
    char pod_namespace[256];
    char pod_name[256];
    char pod_uid[64];
    zube_runtime_sandbox_state_t state;
    //  The pod's IP ("" when it has none, e.g. hostNetwork takes the host's).
    char ip[64];
    int64_t created_ms;
} zube_runtime_sandbox_status_t;

//  One container to create in a sandbox: index into the pod's
//  spec.initContainers (init) or spec.containers.
typedef struct {
    uint32_t struct_size;
    const char *name;
    bool init;
    uint32_t index;
    //  The restart count this container instance starts with (CRI's
    //  attempt): 0 the first time, then one more per restart.
    uint32_t attempt;
} zube_runtime_container_config_t;

typedef enum {
    ZUBE_RUNTIME_CONTAINER_CREATED = 1,
    ZUBE_RUNTIME_CONTAINER_RUNNING = 2,
    ZUBE_RUNTIME_CONTAINER_EXITED = 3,
    ZUBE_RUNTIME_CONTAINER_UNKNOWN = 4
} zube_runtime_container_state_t;

typedef struct {
    uint32_t struct_size;
    char id[ZUBE_RUNTIME_ID_MAX];
    char sandbox_id[ZUBE_RUNTIME_ID_MAX];
    char name[256];
    bool init;
    uint32_t attempt;
    zube_runtime_container_state_t state;
    //  Wall-clock milliseconds since the epoch; 0 when not yet.
    int64_t created_ms;
    int64_t started_ms;
    int64_t finished_ms;
    //  EXITED only: exit code, and Kubernetes' reason ("Completed" for
    //  0, "Error", "OOMKilled", "ContainerCannotRun") and message.
    int exit_code;
    char reason[64];
    char message[512];
    //  The image as the spec names it, and its resolved id (digest).
    char image[512];
    char image_id[512];
} zube_runtime_container_status_t;

//  A probe the host runs through the runtime (exec probes; sim also
//  answers httpGet and tcpSocket probes itself, since it has no network).
typedef enum {
    ZUBE_RUNTIME_PROBE_LIVENESS = 1,
    ZUBE_RUNTIME_PROBE_READINESS = 2,
    ZUBE_RUNTIME_PROBE_STARTUP = 3
} zube_runtime_probe_kind_t;

//  Something that happened to a container on the runtime's own: it
//  started running, it exited (state EXITED with exit code and reason).
typedef struct {
    uint32_t struct_size;
    const zube_runtime_container_status_t *container;
} zube_runtime_event_t;

typedef void (zube_runtime_event_fn) (void *arg, const zube_runtime_event_t *event);
//  Called once per item; return 0 to go on, nonzero to stop early.
typedef int (zube_runtime_sandbox_fn) (void *arg, const zube_runtime_sandbox_status_t *sandbox);
typedef int (zube_runtime_container_fn) (void *arg,
                                         const zube_runtime_container_status_t *container);
//  A piece of output (logs, exec); return 0 to go on, nonzero to stop.
typedef int (zube_runtime_output_fn) (void *arg, const char *data, size_t size, bool stderr_stream);

typedef struct {
    uint32_t struct_size;
    //  The last N lines only (-1: all).
    int64_t tail_lines;
    //  The previous instance (attempt - 1) of the container.
    bool previous;
    //  Appended (check struct_size): only lines written at or after this
    //  wall-clock time in milliseconds (0: all), as kubectl's --since.
    int64_t since_ms;
} zube_runtime_logs_options_t;

//  One image of the node's image store (node.status.images): its names
//  (normalized references, "docker.io/library/busybox:latest"), its id
//  (the config digest) and its size in bytes.
typedef struct {
    uint32_t struct_size;
    const char *const *names;
    size_t names_count;
    const char *id;
    uint64_t size_bytes;
} zube_runtime_image_t;

//  Called once per image; return 0 to go on, nonzero to stop early.
typedef int (zube_runtime_image_fn) (void *arg, const zube_runtime_image_t *image);

//  An interactive exec: argv in the container, stdin kept open when
//  asked, with a pty of columns x rows when tty.
typedef struct {
    uint32_t struct_size;
    const char *const *argv;
    bool stdin;
    bool tty;
    uint16_t columns;
    uint16_t rows;
} zube_runtime_exec_config_t;

//  The fds of a session, non-blocking, -1 when none: with tty stdin_fd
//  (when asked) and stdout_fd are both the pty master (two fds), and
//  stderr_fd is -1.
typedef struct {
    uint32_t struct_size;
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
} zube_runtime_exec_io_t;

//  ---------------------------------------------------------------------
//  The operation table. Tables grow only by appending.
typedef struct {
    uint32_t struct_size;

    //  Opens the runtime. options: NULL or a NULL-terminated array of
    //  "key=value": state_dir=DIR (where it keeps what survives a restart
    //  of the host), and the runtime's own keys; an unknown key is
    //  BAD_REQUEST. On failure writes the reason into error and leaves
    //  *backend_p NULL.
    zube_status_t (*open) (const zube_host_t *host, const char *const *options,
                           zube_runtime_backend_t **backend_p, char *error, size_t error_size);
    //  Releases the runtime object; what it runs keeps running (adoption).
    void (*close) (zube_runtime_backend_t **backend_p);
    const char *(*errmsg) (zube_runtime_backend_t *backend);

    //  Creates and starts a sandbox; its id into id.
    zube_status_t (*run_sandbox) (zube_runtime_backend_t *backend,
                                  const zube_runtime_sandbox_config_t *config, char *id,
                                  size_t id_size);
    //  Stops every container of the sandbox (SIGTERM, SIGKILL after
    //  grace_ms) and the sandbox; it stays listed until removed.
    zube_status_t (*stop_sandbox) (zube_runtime_backend_t *backend, const char *id,
                                   int64_t grace_ms);
    //  Removes a stopped sandbox and its containers.
    zube_status_t (*remove_sandbox) (zube_runtime_backend_t *backend, const char *id);
    zube_status_t (*sandbox_status) (zube_runtime_backend_t *backend, const char *id,
                                     zube_runtime_sandbox_status_t *status);
    //  node_name NULL: every sandbox.
    zube_status_t (*list_sandboxes) (zube_runtime_backend_t *backend, const char *node_name,
                                     zube_runtime_sandbox_fn *fn, void *arg);

    zube_status_t (*create_container) (zube_runtime_backend_t *backend, const char *sandbox_id,
                                       const zube_runtime_container_config_t *config, char *id,
                                       size_t id_size);
    zube_status_t (*start_container) (zube_runtime_backend_t *backend, const char *id);
    //  SIGTERM (or the image's stop signal), SIGKILL after grace_ms.
    zube_status_t (*stop_container) (zube_runtime_backend_t *backend, const char *id,
                                     int64_t grace_ms);
    zube_status_t (*remove_container) (zube_runtime_backend_t *backend, const char *id);
    zube_status_t (*container_status) (zube_runtime_backend_t *backend, const char *id,
                                       zube_runtime_container_status_t *status);
    //  sandbox_id NULL: every container.
    zube_status_t (*list_containers) (zube_runtime_backend_t *backend, const char *sandbox_id,
                                      zube_runtime_container_fn *fn, void *arg);

    //  Reports what changed since the last tick through fn, and answers
    //  in how many milliseconds it wants the next tick (-1: only when the
    //  host calls anyway, after an operation).
    int64_t (*tick) (zube_runtime_backend_t *backend, zube_runtime_event_fn *fn, void *arg);

    //  Runs the pod's probe of this kind for the container (its spec
    //  says what: exec, httpGet, tcpSocket) once; *success_p the outcome,
    //  message why not. UNAVAILABLE when the runtime cannot run that
    //  kind of probe (the host then runs it itself).
    zube_status_t (*probe) (zube_runtime_backend_t *backend, const char *container_id,
                            zube_runtime_probe_kind_t kind, int64_t timeout_ms,
                            bool *success_p, char *message, size_t message_size);
    //  The container's output through fn.
    zube_status_t (*logs) (zube_runtime_backend_t *backend, const char *container_id,
                           const zube_runtime_logs_options_t *options,
                           zube_runtime_output_fn *fn, void *arg);
    //  Runs argv in the container, output through fn, exit code into
    //  *exit_code_p. stdin_data may be NULL.
    zube_status_t (*exec) (zube_runtime_backend_t *backend, const char *container_id,
                           const char *const *argv, const void *stdin_data, size_t stdin_size,
                           int64_t timeout_ms, zube_runtime_output_fn *fn, void *arg,
                           int *exit_code_p);

    //  Appended (check struct_size): the node's image store. A runtime
    //  without one leaves them NULL (the host answers NOT_IMPLEMENTED).
    //  Imports the image at path, a file or directory on the node: an OCI
    //  image layout (a directory or its tar) or a docker-archive tar
    //  (`docker save`), every blob's digest verified; its first name
    //  (normalized) into ref. BAD_REQUEST names what is wrong with it.
    zube_status_t (*image_import) (zube_runtime_backend_t *backend, const char *path, char *ref,
                                   size_t ref_size);
    //  Every image of the store through fn, by name.
    zube_status_t (*image_list) (zube_runtime_backend_t *backend, zube_runtime_image_fn *fn,
                                 void *arg);

    //  Appended (check struct_size): interactive exec sessions (zubectl
    //  exec -i/-t). A runtime without them leaves them NULL (the host
    //  answers NOT_IMPLEMENTED; sim does). The host polls the fds in
    //  its loop and owns them (closes them) after exec_start; the
    //  runtime keeps the process and answers exec_wait without blocking.
    zube_status_t (*exec_start) (zube_runtime_backend_t *backend, const char *container_id,
                                 const zube_runtime_exec_config_t *config,
                                 zube_runtime_exec_io_t *io, char *session,
                                 size_t session_size);
    //  The pty's window size (tty sessions; others ignore it).
    zube_status_t (*exec_resize) (zube_runtime_backend_t *backend, const char *session,
                                  uint16_t columns, uint16_t rows);
    //  Whether the command exited (*exited_p), its code into *exit_code_p.
    zube_status_t (*exec_wait) (zube_runtime_backend_t *backend, const char *session,
                                bool *exited_p, int *exit_code_p);
    //  Ends the session: the command is killed if it still runs.
    zube_status_t (*exec_close) (zube_runtime_backend_t *backend, const char *session);
} zube_runtime_ops_t;

#define ZUBE_RUNTIME_OPS_SIZE_V1 (offsetof (zube_runtime_ops_t, exec) + sizeof (void (*) (void)))

#ifdef __cplusplus
}
#endif
#endif
