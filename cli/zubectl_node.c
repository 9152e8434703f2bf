/*  zubectl logs / exec - ask the node agent that runs a pod.

    The pod's spec.nodeName comes from the apiserver; the node's agent
    answers on the bus service its Node names in the annotation
    zube.io/node-agent-service (node/<node> when there is none), with
    the node name in the request (docs/node-agent.md). Errors are
    kubectl's: a pod with several containers needs -c, a pod without a
    node or a completed pod cannot be exec'd into, and a node agent
    that does not answer is named. */
#include "zubectl.h"
#include "node.pb-c.h"
#include <czmq.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define S_SERVICE_ANNOTATION "zube.io/node-agent-service"
#define S_FOLLOW_INTERVAL_US 500000

//  The pod, and the bus service of its node's agent; NULL after printing
//  the error.
static Zube__Pod *
s_pod_and_service (zubectl_t *self, const char *name, char *service, size_t service_size)
{
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return NULL;
    ProtobufCMessage *object = NULL;
    zube_api_error_t error;
    if (zube_api_get (api, "pods", zubectl_namespace (self), name, &object, &error) != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return NULL;
    }
    Zube__Pod *pod = (Zube__Pod *)object;
    const char *node = pod->spec ? pod->spec->node_name : NULL;
    if (!node || !*node) {
        char message[600];
        snprintf (message, sizeof message, "pod %s does not have a host assigned", name);
        zubectl_print_server_error (ZUBE_BAD_REQUEST, message);
        protobuf_c_message_free_unpacked (object, NULL);
        return NULL;
    }
    zubectl_node_service (self, node, false, service, service_size);
    return pod;
}

int
zubectl_node_service (zubectl_t *self, const char *node, bool must_exist, char *service,
                      size_t service_size)
{
    snprintf (service, service_size, "node/%s", node);
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return -1;
    ProtobufCMessage *node_object = NULL;
    zube_api_error_t error;
    if (zube_api_get (api, "nodes", NULL, node, &node_object, &error) != ZUBE_OK) {
        if (!must_exist)
            return 0;
        zubectl_print_api_error (self, &error, NULL);
        return -1;
    }
    Zube__ObjectMeta *meta = ((Zube__Node *)node_object)->metadata;
    for (size_t i = 0; meta && i < meta->n_annotations; i++)
        if (streq (meta->annotations[i]->key, S_SERVICE_ANNOTATION) &&
            meta->annotations[i]->value && *meta->annotations[i]->value)
            snprintf (service, service_size, "%s", meta->annotations[i]->value);
    protobuf_c_message_free_unpacked (node_object, NULL);
    return 0;
}

//  -c CONTAINER, or the pod's only container; NULL after printing
//  kubectl's error.
static const char *
s_container (const Zube__Pod *pod, const char *container)
{
    const Zube__PodSpec *spec = pod->spec;
    if (container) {
        for (size_t i = 0; spec && i < spec->n_containers + spec->n_init_containers; i++) {
            const Zube__Container *c = i < spec->n_containers
                                           ? spec->containers[i]
                                           : spec->init_containers[i - spec->n_containers];
            if (c->name && streq (c->name, container))
                return container;
        }
        zube_cli_error ("container %s is not valid for pod %s", container,
                        pod->metadata->name);
        return NULL;
    }
    if (spec && spec->n_containers == 1)
        return spec->containers[0]->name;
    char names[1000] = "", inits[1000] = "";
    for (size_t i = 0; spec && i < spec->n_containers + spec->n_init_containers; i++) {
        bool init = i >= spec->n_containers;
        const Zube__Container *c =
            init ? spec->init_containers[i - spec->n_containers] : spec->containers[i];
        char *list = init ? inits : names;
        size_t used = strlen (list);
        snprintf (list + used, sizeof names - used, "%s%s", used ? " " : "",
                  c->name ? c->name : "");
    }
    zube_cli_error ("a container name must be specified for pod %s, choose one of: [%s]%s%s%s",
                    pod->metadata->name, names,
                    inits[0] ? " or one of the init containers: [" : "", inits,
                    inits[0] ? "]" : "");
    return NULL;
}

//  zubectl_node_call, except that the node agent's answer `unless` is
//  not printed; the status into *status_p.
static ProtobufCMessage *
s_node_call (zubectl_t *self, const char *service, const char *method, const char *node,
             const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_desc,
             int timeout_ms, zube_status_t unless, zube_status_t *status_p)
{
    *status_p = ZUBE_UNAVAILABLE;
    zube_bus_t *bus = zubectl_connect (self);
    if (!bus)
        return NULL;
    size_t size = protobuf_c_message_get_packed_size (request);
    uint8_t *packed = malloc (size ? size : 1);
    if (!packed) {
        zube_cli_error ("out of memory");
        return NULL;
    }
    protobuf_c_message_pack (request, packed);
    zube_bus_reply_t *reply = NULL;
    if (timeout_ms <= 0)
        timeout_ms = zubectl_timeout_ms (self);
    int rc = zube_bus_call (bus, service, method, packed, size, timeout_ms, &reply);
    free (packed);
    ProtobufCMessage *message = NULL;
    if (rc != 0) {
        char timeout_text[32];
        zube_cli_duration_format (timeout_ms, timeout_text, sizeof timeout_text);
        if (!zube_bus_connected (bus))
            zube_cli_error ("unable to connect to the broker at %s: no answer within %s",
                            zubectl_endpoint (self), timeout_text);
        else
            zube_cli_error ("the node agent of node \"%s\" is unreachable: no answer from bus "
                            "service %s within %s (%s%s%s)",
                            node, service, timeout_text,
                            zube_status_reason (reply ? reply->status : ZUBE_UNAVAILABLE),
                            reply && reply->error ? ": " : "",
                            reply && reply->error ? reply->error : "");
    } else if (reply->status != ZUBE_OK) {
        *status_p = reply->status;
        if (reply->status != unless)
            zubectl_print_server_error (reply->status, reply->error);
    } else {
        *status_p = ZUBE_OK;
        message = protobuf_c_message_unpack (reply_desc, NULL, reply->payload_size,
                                             reply->payload);
        if (!message)
            zube_cli_error ("the reply of %s/%s is not a valid %s", service, method,
                            reply_desc->name);
    }
    zube_bus_reply_destroy (&reply);
    return message;
}

ProtobufCMessage *
zubectl_node_call (zubectl_t *self, const char *service, const char *method, const char *node,
                   const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_desc,
                   int timeout_ms)
{
    zube_status_t status;
    return s_node_call (self, service, method, node, request, reply_desc, timeout_ms, ZUBE_OK,
                        &status);
}

int
zubectl_logs (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *container = NULL;
    bool previous = false, follow = false;
    long tail = -1, limit_bytes = -1;
    int64_t since_ms = 0;
    zube_cli_flag_t flags[] = {
        {.name = "container", .short_name = 'c', .type = ZUBE_CLI_STRING, .value = &container,
         .value_name = "NAME", .help = "Print the logs of this container"},
        {.name = "previous", .short_name = 'p', .type = ZUBE_CLI_BOOL, .value = &previous,
         .help = "Print the logs of the previous terminated instance of the container"},
        {.name = "tail", .type = ZUBE_CLI_INT, .value = &tail, .value_name = "N",
         .help = "Lines of recent log to display (-1: all)"},
        {.name = "since", .type = ZUBE_CLI_DURATION, .value = &since_ms, .value_name = "D",
         .help = "Only logs newer than a relative duration like 5s, 2m or 3h"},
        {.name = "limit-bytes", .type = ZUBE_CLI_INT, .value = &limit_bytes, .value_name = "N",
         .help = "Maximum bytes of logs to return"},
        {.name = "follow", .short_name = 'f', .type = ZUBE_CLI_BOOL, .value = &follow,
         .help = "Keep printing the log while the container runs"},
        {0}};
    char *args[argc + 1];
    int parsed = zubectl_parse_one (self, command, flags, argc, argv, args, "pod name");
    if (parsed <= 0)
        return parsed < 0 ? 1 : 0;
    if (follow && previous) {
        zube_cli_error ("only one of --follow and --previous may be given");
        return 1;
    }
    char service[300];
    Zube__Pod *pod = s_pod_and_service (self, args[0], service, sizeof service);
    if (!pod)
        return 1;
    int rc = 1;
    const char *name = s_container (pod, container);
    Zube__NodeLogsRequest request = ZUBE__NODE_LOGS_REQUEST__INIT;
    request.node_name = pod->spec->node_name;
    request.namespace_ = (char *)zubectl_namespace (self);
    request.pod = args[0];
    request.container = (char *)name;
    request.has_previous = previous;
    request.previous = previous;
    request.has_tail_lines = tail >= 0;
    request.tail_lines = tail;
    request.has_limit_bytes = limit_bytes >= 0;
    request.limit_bytes = limit_bytes;
    request.has_since_seconds = since_ms > 0;
    request.since_seconds = (since_ms + 999) / 1000;
    while (name) {
        Zube__NodeLogsReply *reply = (Zube__NodeLogsReply *)zubectl_node_call (
            self, service, "logs", pod->spec->node_name, &request.base,
            &zube__node_logs_reply__descriptor, 0);
        if (!reply)
            break;
        if (reply->has_data && reply->data.len)
            fwrite (reply->data.data, 1, reply->data.len, stdout);
        fflush (stdout);
        bool more = follow && reply->running;
        request.has_offset = true;
        request.offset = reply->size;
        zube__node_logs_reply__free_unpacked (reply, NULL);
        if (!more) {
            rc = 0;
            break;
        }
        usleep (S_FOLLOW_INTERVAL_US);
        if (zsys_interrupted) {
            rc = 0;
            break;
        }
    }
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    return rc;
}

//  ---------------------------------------------------------------------
//  Interactive exec (-i/-t): a session on the node agent (node.exec.start),
//  then node.exec.io requests: one long poll for output at a time, and
//  stdin chunks (with their offsets) and window sizes as they come, until
//  the command has exited and its output is all written.

#define S_POLL_WAIT_MS 1000
#define S_STDIN_CHUNK 32768
#define S_STDIN_IN_FLIGHT 4

typedef struct {
    zube_bus_t *bus;
    const char *service;
    const char *node;
    const char *session;
    int64_t have[2];            //  output bytes written, per stream
    int64_t stdin_sent;
    int in_flight;              //  stdin and resize requests waiting
    bool polling;
    bool exited;
    int exit_code;
    char error[1024];
} s_session_t;

static struct termios s_saved_termios;
static bool s_raw;
static volatile sig_atomic_t s_winch;

static void
s_terminal_restore (void)
{
    if (s_raw) {
        tcsetattr (STDIN_FILENO, TCSADRAIN, &s_saved_termios);
        s_raw = false;
    }
}

static void
s_on_fatal_signal (int sig)
{
    s_terminal_restore ();
    signal (sig, SIG_DFL);
    raise (sig);
}

static void
s_on_winch (int sig)
{
    (void)sig;
    s_winch = 1;
}

static void
s_terminal_raw (void)
{
    if (tcgetattr (STDIN_FILENO, &s_saved_termios) != 0)
        return;
    struct termios raw = s_saved_termios;
    cfmakeraw (&raw);
    if (tcsetattr (STDIN_FILENO, TCSADRAIN, &raw) != 0)
        return;
    s_raw = true;
    atexit (s_terminal_restore);
    int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        signal (signals[i], s_on_fatal_signal);
}

static void
s_session_reply (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg)
{
    (void)bus;
    s_session_t *session = (s_session_t *)arg;
    if (reply->status != ZUBE_OK) {
        if (!session->error[0])
            snprintf (session->error, sizeof session->error, "%s",
                      reply->error ? reply->error : zube_status_reason (reply->status));
    } else {
        Zube__NodeExecIoReply *io = zube__node_exec_io_reply__unpack (
            NULL, reply->payload_size, reply->payload);
        for (int k = 0; io && k < 2; k++) {
            const ProtobufCBinaryData *data = k ? &io->stderr : &io->stdout;
            int64_t offset = k ? io->stderr_offset : io->stdout_offset;
            if (offset > session->have[k] || offset + (int64_t)data->len <= session->have[k])
                continue;
            size_t skip = (size_t)(session->have[k] - offset);
            fwrite (data->data + skip, 1, data->len - skip, k ? stderr : stdout);
            fflush (k ? stderr : stdout);
            session->have[k] = offset + (int64_t)data->len;
        }
        if (io && io->exited) {
            session->exited = true;
            session->exit_code = io->exit_code;
        }
        if (io)
            zube__node_exec_io_reply__free_unpacked (io, NULL);
    }
    zube_bus_reply_destroy (&reply);
}

static void
s_session_poll_reply (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg)
{
    ((s_session_t *)arg)->polling = false;
    s_session_reply (bus, reply, arg);
}

static void
s_session_send_reply (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg)
{
    ((s_session_t *)arg)->in_flight--;
    s_session_reply (bus, reply, arg);
}

//  Sends one exec.io request (async); false when it could not be queued.
static bool
s_session_send (s_session_t *session, Zube__NodeExecIoRequest *request, bool poll)
{
    request->node_name = (char *)session->node;
    request->session = (char *)session->session;
    request->has_stdout_offset = request->has_stderr_offset = true;
    request->stdout_offset = session->have[0];
    request->stderr_offset = session->have[1];
    size_t size = protobuf_c_message_get_packed_size (&request->base);
    uint8_t *packed = malloc (size ? size : 1);
    if (!packed)
        return false;
    protobuf_c_message_pack (&request->base, packed);
    uint64_t id = zube_bus_call_async (session->bus, session->service, "exec.io", packed, size,
                                       S_POLL_WAIT_MS + 10000,
                                       poll ? s_session_poll_reply : s_session_send_reply,
                                       session);
    free (packed);
    if (id && poll)
        session->polling = true;
    else if (id)
        session->in_flight++;
    return id != 0;
}

static void
s_window_size (uint32_t *columns, uint32_t *rows)
{
    struct winsize size;
    if (ioctl (STDIN_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col && size.ws_row) {
        *columns = size.ws_col;
        *rows = size.ws_row;
    }
}

#define S_NO_SESSIONS -2

//  Runs the session to its end; the command's exit code, -1 after
//  printing why not, or S_NO_SESSIONS when the runtime has none (sim)
//  and no tty was asked for.
static int
s_exec_session (zubectl_t *self, const char *service, Zube__NodeExecStartRequest *start)
{
    zube_bus_t *bus = zubectl_connect (self);
    if (!bus)
        return -1;
    if (start->tty) {
        s_window_size (&start->columns, &start->rows);
        start->has_columns = start->has_rows = start->columns && start->rows;
    }
    zube_status_t status;
    Zube__NodeExecStartReply *started = (Zube__NodeExecStartReply *)s_node_call (
        self, service, "exec.start", start->node_name, &start->base,
        &zube__node_exec_start_reply__descriptor, 0,
        start->tty ? ZUBE_OK : ZUBE_NOT_IMPLEMENTED, &status);
    if (!started)
        return status == ZUBE_NOT_IMPLEMENTED && !start->tty ? S_NO_SESSIONS : -1;
    s_session_t session = {.bus = bus,
                           .service = service,
                           .node = start->node_name,
                           .session = started->session};
    if (start->tty) {
        s_terminal_raw ();
        signal (SIGWINCH, s_on_winch);
    }
    bool stdin_open = start->stdin;
    while (!session.exited && !session.error[0] && !zsys_interrupted) {
        if (!session.polling) {
            Zube__NodeExecIoRequest poll_request = ZUBE__NODE_EXEC_IO_REQUEST__INIT;
            poll_request.has_wait_ms = true;
            poll_request.wait_ms = S_POLL_WAIT_MS;
            if (!s_session_send (&session, &poll_request, true))
                break;
        }
        if (s_winch) {
            s_winch = 0;
            Zube__NodeExecIoRequest resize = ZUBE__NODE_EXEC_IO_REQUEST__INIT;
            s_window_size (&resize.columns, &resize.rows);
            resize.has_columns = resize.has_rows = resize.columns && resize.rows;
            s_session_send (&session, &resize, false);
        }
        struct pollfd in = {.fd = STDIN_FILENO, .events = POLLIN};
        if (stdin_open && session.in_flight < S_STDIN_IN_FLIGHT && poll (&in, 1, 10) > 0) {
            char chunk[S_STDIN_CHUNK];
            ssize_t n = read (STDIN_FILENO, chunk, sizeof chunk);
            Zube__NodeExecIoRequest send = ZUBE__NODE_EXEC_IO_REQUEST__INIT;
            send.has_stdin_offset = true;
            send.stdin_offset = session.stdin_sent;
            if (n > 0) {
                send.has_stdin = true;
                send.stdin.data = (uint8_t *)chunk;
                send.stdin.len = (size_t)n;
                session.stdin_sent += n;
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                send.has_stdin_eof = send.stdin_eof = true;
                stdin_open = false;
            }
            if (n != 0 || !stdin_open)
                s_session_send (&session, &send, false);
        }
        zube_bus_poll (bus, stdin_open ? 0 : 10);
    }
    s_terminal_restore ();
    //  Done: the session goes (a lost close is the idle timeout's)
    Zube__NodeExecIoRequest close_request = ZUBE__NODE_EXEC_IO_REQUEST__INIT;
    close_request.has_close = close_request.close = true;
    close_request.node_name = (char *)session.node;
    close_request.session = (char *)session.session;
    ProtobufCMessage *closed = zubectl_node_call (self, service, "exec.io", session.node,
                                                  &close_request.base,
                                                  &zube__node_exec_io_reply__descriptor, 2000);
    if (closed)
        protobuf_c_message_free_unpacked (closed, NULL);
    zube__node_exec_start_reply__free_unpacked (started, NULL);
    if (session.error[0] && !session.exited) {
        zube_cli_error ("%s", session.error);
        return -1;
    }
    return session.exited ? session.exit_code : -1;
}

//  kubectl exec exits with the command's code, and zubectl's main folds
//  every handler result into 0 or 1: a code above 1 ends here, after
//  what main would release.
static int
s_exec_exit (zubectl_t *self, int rc)
{
    if (rc > 1) {
        zube_api_destroy (&self->api);
        zube_bus_destroy (&self->bus);
        zube_config_destroy (&self->config);
        fflush (stdout);
        exit (rc > 255 ? 255 : rc);
    }
    return rc;
}

int
zubectl_exec (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *container = NULL;
    bool interactive = false, tty = false;
    zube_cli_flag_t flags[] = {
        {.name = "container", .short_name = 'c', .type = ZUBE_CLI_STRING, .value = &container,
         .value_name = "NAME", .help = "Run the command in this container"},
        {.name = "stdin", .short_name = 'i', .type = ZUBE_CLI_BOOL, .value = &interactive,
         .help = "Pass standard input to the command, as it comes"},
        {.name = "tty", .short_name = 't', .type = ZUBE_CLI_BOOL, .value = &tty,
         .help = "Run the command with a terminal (stdin must be one)"},
        {0}};
    //  kubectl's -it and -ti: the two flags
    char *split[2 * argc + 1];
    int split_count = 0;
    bool after_dashes = false;
    for (int i = 0; i < argc; i++) {
        after_dashes = after_dashes || streq (argv[i], "--");
        if (!after_dashes && (streq (argv[i], "-it") || streq (argv[i], "-ti"))) {
            split[split_count++] = "-i";
            split[split_count++] = "-t";
        } else
            split[split_count++] = argv[i];
    }
    split[split_count] = NULL;
    char *args[split_count + 1];
    int count = zubectl_parse (self, command, flags, split_count, split, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count < 1) {
        zube_cli_error ("expected a pod name and a command: zubectl exec POD -- COMMAND "
                        "[ARG...]");
        return 1;
    }
    if (count < 2) {
        zube_cli_error ("you must specify at least one command for the container");
        return 1;
    }
    char service[300];
    Zube__Pod *pod = s_pod_and_service (self, args[0], service, sizeof service);
    if (!pod)
        return 1;
    const char *phase = pod->status && pod->status->phase ? pod->status->phase : "";
    if (streq (phase, "Succeeded") || streq (phase, "Failed")) {
        zube_cli_error ("cannot exec into a container in a completed pod; current phase is %s",
                        phase);
        protobuf_c_message_free_unpacked (&pod->base, NULL);
        return 1;
    }
    const char *name = s_container (pod, container);
    if (!name) {
        protobuf_c_message_free_unpacked (&pod->base, NULL);
        return 1;
    }
    if (tty && !isatty (STDIN_FILENO)) {
        //  kubectl's words, and it goes on without one
        fprintf (stderr, "Unable to use a TTY - input is not a terminal or the right kind of "
                         "file\n");
        tty = false;
    }
    int rc = 1;
    if (interactive || tty) {
        Zube__NodeExecStartRequest start = ZUBE__NODE_EXEC_START_REQUEST__INIT;
        start.node_name = pod->spec->node_name;
        start.namespace_ = (char *)zubectl_namespace (self);
        start.pod = args[0];
        start.container = (char *)name;
        start.n_command = (size_t)(count - 1);
        start.command = args + 1;
        start.has_stdin = start.has_tty = true;
        start.stdin = interactive;
        start.tty = tty;
        rc = s_exec_session (self, service, &start);
        if (rc != S_NO_SESSIONS) {
            if (rc < 0)
                rc = 1;
            else if (rc != 0)
                fprintf (stderr, "command terminated with exit code %d\n", rc);
            protobuf_c_message_free_unpacked (&pod->base, NULL);
            return s_exec_exit (self, rc);
        }
    }
    Zube__NodeExecRequest request = ZUBE__NODE_EXEC_REQUEST__INIT;
    request.node_name = pod->spec->node_name;
    request.namespace_ = (char *)zubectl_namespace (self);
    request.pod = args[0];
    request.container = (char *)name;
    request.n_command = (size_t)(count - 1);
    request.command = args + 1;
    //  A runtime without sessions (sim): stdin read to its end, sent whole
    uint8_t *input = NULL;
    if (interactive) {
        size_t size = 0, capacity = 4096;
        input = malloc (capacity);
        size_t n;
        while (input && (n = fread (input + size, 1, capacity - size, stdin)) > 0) {
            size += n;
            uint8_t *grown = size == capacity ? realloc (input, capacity *= 2) : input;
            if (!grown)
                free (input);
            input = grown;
        }
        request.has_stdin = true;
        request.stdin.data = input;
        request.stdin.len = input ? size : 0;
    }
    Zube__NodeExecReply *reply = (Zube__NodeExecReply *)zubectl_node_call (
        self, service, "exec", pod->spec->node_name, &request.base,
        &zube__node_exec_reply__descriptor, 0);
    if (reply) {
        if (reply->stdout.len)
            fwrite (reply->stdout.data, 1, reply->stdout.len, stdout);
        fflush (stdout);
        if (reply->stderr.len)
            fwrite (reply->stderr.data, 1, reply->stderr.len, stderr);
        rc = reply->exit_code;
        if (rc != 0)
            fprintf (stderr, "command terminated with exit code %d\n", rc);
        zube__node_exec_reply__free_unpacked (reply, NULL);
    }
    free (input);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    return s_exec_exit (self, rc);
}
