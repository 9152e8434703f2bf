/*  exec - interactive exec sessions of the node agent (zubectl exec -i/-t).

    node.exec.start asks the runtime for a session (exec_start: the
    command's stdin, stdout and stderr as fds, a pty with -t) and answers
    its id. node.exec.io carries the client's stdin (with its offset, so a
    retried request is applied once), a window size, the end of stdin or
    of the session, and polls the output: it is answered at once when
    output past the client's offsets is buffered or the command has
    exited, else deferred up to its wait_ms (a long poll, as `zubectl logs
    -f` polls the log). Nothing blocks the loop: zl_exec_run moves the
    bytes of every session between short bus polls, as the prober does.

    Bounds: at most config.exec_max_sessions sessions (TooManyRequests
    past it), 1 MiB of unread output per stream (the command's pipe then
    fills and it waits), and a session its client has not polled for
    config.exec_idle_timeout_ms is closed, its command killed, so a client
    that dies leaves nothing running. Only admin identities may open one
    (as exec), and only the identity that opened it may use it.
    docs/node-agent.md. */
#define _GNU_SOURCE
#include "node.pb-c.h"
#include "zube/log.h"
#include "zubelet.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_OUTPUT_MAX (1024 * 1024)
#define S_STDIN_MAX (1024 * 1024)
#define S_CHUNK 65536

typedef struct {
    char *data;
    size_t used;
    size_t capacity;
    int64_t base; //  the stream offset of data[0]
} s_stream_t;

struct zl_exec_t {
    char id[ZUBE_RUNTIME_ID_MAX];
    char owner[256];
    char what[600];    //  pod/container, for the log
    int fds[3];        //  stdin, stdout, stderr; -1 when none or closed
    s_stream_t out[2]; //  stdout, stderr not yet acknowledged
    s_stream_t in;     //  stdin not yet written
    int64_t in_received;
    bool in_eof;
    bool tty;
    bool exited;
    int exit_code;
    int64_t last_seen; //  monotonic ms of the client's last request
    zube_bus_request_t *waiting;
    int64_t waiting_until;
};

static bool
s_append (s_stream_t *stream, const void *data, size_t size)
{
    if (stream->used + size > stream->capacity) {
        size_t capacity = (stream->used + size) * 2;
        char *grown = realloc (stream->data, capacity);
        if (!grown)
            return false;
        stream->data = grown;
        stream->capacity = capacity;
    }
    memcpy (stream->data + stream->used, data, size);
    stream->used += size;
    return true;
}

//  Drops what lies before offset (the client has it).
static void
s_acknowledge (s_stream_t *stream, int64_t offset)
{
    if (offset <= stream->base)
        return;
    size_t drop = (size_t)(offset - stream->base);
    if (drop > stream->used)
        drop = stream->used;
    memmove (stream->data, stream->data + drop, stream->used - drop);
    stream->used -= drop;
    stream->base += (int64_t)drop;
}

static zl_exec_t *
s_find (zubelet_t *self, const char *id)
{
    for (size_t i = 0; id && i < self->exec_count; i++)
        if (streq (self->execs[i]->id, id))
            return self->execs[i];
    return NULL;
}

static void
s_close_fd (int *fd)
{
    if (*fd >= 0)
        close (*fd);
    *fd = -1;
}

//  Ends the session: the runtime kills the command if it still runs.
static void
s_remove (zubelet_t *self, zl_exec_t *exec, const char *why)
{
    if (exec->waiting)
        zube_bus_respond_error (exec->waiting, ZUBE_NOT_FOUND,
                                "exec session %s ended: %s", exec->id, why);
    for (int i = 0; i < 3; i++)
        s_close_fd (&exec->fds[i]);
    zube_runtime_exec_close (self->runtime, exec->id);
    zube_log_info ("msg=\"exec session closed\" session=%s %s reason=\"%s\"", exec->id,
                   exec->what, why);
    for (size_t i = 0; i < self->exec_count; i++)
        if (self->execs[i] == exec) {
            self->execs[i] = self->execs[--self->exec_count];
            break;
        }
    free (exec->out[0].data);
    free (exec->out[1].data);
    free (exec->in.data);
    free (exec);
}

static bool
s_done (zl_exec_t *exec)
{
    return exec->exited && exec->fds[1] < 0 && exec->fds[2] < 0;
}

//  Answers request with the output past the buffered bases.
static void
s_respond (zl_exec_t *exec, zube_bus_request_t *request)
{
    Zube__NodeExecIoReply reply = ZUBE__NODE_EXEC_IO_REPLY__INIT;
    reply.has_stdout = reply.has_stderr = true;
    reply.stdout.data = (uint8_t *)exec->out[0].data;
    reply.stdout.len = exec->out[0].used;
    reply.stderr.data = (uint8_t *)exec->out[1].data;
    reply.stderr.len = exec->out[1].used;
    reply.has_stdout_offset = reply.has_stderr_offset = true;
    reply.stdout_offset = exec->out[0].base;
    reply.stderr_offset = exec->out[1].base;
    reply.has_exited = true;
    reply.exited = s_done (exec);
    reply.has_exit_code = reply.exited;
    reply.exit_code = exec->exit_code;
    reply.has_stdin_received = true;
    reply.stdin_received = exec->in_received;
    zube_bus_respond_msg (request, &reply.base);
}

static bool
s_has_news (zl_exec_t *exec)
{
    return exec->out[0].used || exec->out[1].used || s_done (exec);
}

void
zl_exec_start (zubelet_t *self, zube_bus_request_t *request)
{
    Zube__NodeExecStartRequest *req =
        (Zube__NodeExecStartRequest *)zube_bus_request_unpack_or_reject (
            request, &zube__node_exec_start_request__descriptor);
    if (!req)
        return;
    zl_pod_t *p = zl_server_request_pod (self, request, "create", "exec", req->node_name,
                                         req->namespace_, req->pod);
    zl_container_t *c = p ? zl_server_container (request, p, req->container) : NULL;
    const char **argv = NULL;
    zl_exec_t *exec = NULL;
    if (!c)
        goto done;
    if (!req->n_command || !req->command[0] || !*req->command[0]) {
        zube_bus_respond_error (
            request, ZUBE_BAD_REQUEST,
            "you must specify at least one command for the container");
        goto done;
    }
    if (!c->id[0] || c->state != ZUBE_RUNTIME_CONTAINER_RUNNING) {
        zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                "container %s is not running in pod %s", c->name,
                                p->pod->metadata->name);
        goto done;
    }
    if (self->exec_count >= self->config.exec_max_sessions) {
        zube_bus_respond_error (request, ZUBE_TOO_MANY_REQUESTS,
                                "this node agent has %zu exec sessions open, its limit "
                                "(--exec-max-sessions)",
                                self->exec_count);
        goto done;
    }
    argv = calloc (req->n_command + 1, sizeof *argv);
    exec = calloc (1, sizeof *exec);
    zl_exec_t **grown = realloc (self->execs, (self->exec_count + 1) * sizeof *grown);
    if (grown)
        self->execs = grown;
    if (!argv || !exec || !grown) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < req->n_command; i++)
        argv[i] = req->command[i];
    zube_runtime_exec_config_t config = {.struct_size = sizeof config,
                                         .argv = argv,
                                         .stdin = req->stdin,
                                         .tty = req->tty,
                                         .columns = (uint16_t)req->columns,
                                         .rows = (uint16_t)req->rows};
    zube_runtime_exec_io_t io = {.struct_size = sizeof io};
    zube_status_t status = zube_runtime_exec_start (self->runtime, c->id, &config, &io,
                                                    exec->id, sizeof exec->id);
    if (status != ZUBE_OK) {
        zube_bus_respond_error (request, status, "%s",
                                zube_runtime_error (self->runtime));
        goto done;
    }
    exec->fds[0] = io.stdin_fd;
    exec->fds[1] = io.stdout_fd;
    exec->fds[2] = io.stderr_fd;
    exec->tty = req->tty;
    const char *sender = zube_bus_request_sender (request);
    snprintf (exec->owner, sizeof exec->owner, "%s", sender ? sender : "");
    snprintf (exec->what, sizeof exec->what, "pod=%s container=%s", p->key, c->name);
    exec->last_seen = zl_now_mono ();
    self->execs[self->exec_count++] = exec;
    zube_log_info ("msg=\"exec session\" session=%s %s identity=\"%s\" command=\"%s\" "
                   "stdin=%s tty=%s",
                   exec->id, exec->what, exec->owner, req->command[0],
                   req->stdin ? "true" : "false", req->tty ? "true" : "false");
    Zube__NodeExecStartReply reply = ZUBE__NODE_EXEC_START_REPLY__INIT;
    reply.session = exec->id;
    reply.container = c->name;
    zube_bus_respond_msg (request, &reply.base);
    exec = NULL;
done:
    free (exec);
    free (argv);
    zube__node_exec_start_request__free_unpacked (req, NULL);
}

void
zl_exec_io (zubelet_t *self, zube_bus_request_t *request)
{
    Zube__NodeExecIoRequest *req =
        (Zube__NodeExecIoRequest *)zube_bus_request_unpack_or_reject (
            request, &zube__node_exec_io_request__descriptor);
    if (!req)
        return;
    if (!zl_server_request_node (self, request, "create", "\"pods/exec\"",
                                 req->node_name))
        goto done;
    zl_exec_t *exec = s_find (self, req->session);
    const char *sender = zube_bus_request_sender (request);
    if (!exec) {
        zube_bus_respond_error (
            request, ZUBE_NOT_FOUND,
            "exec session \"%s\" not found (it ended, or its client was "
            "silent past --exec-idle-timeout)",
            req->session ? req->session : "");
        goto done;
    }
    if (!streq (exec->owner, sender ? sender : "")) {
        zube_bus_respond_error (request, ZUBE_FORBIDDEN,
                                "exec session \"%s\" belongs to another identity",
                                exec->id);
        goto done;
    }
    exec->last_seen = zl_now_mono ();
    if (req->has_stdin && req->stdin.len) {
        int64_t offset = req->has_stdin_offset ? req->stdin_offset : exec->in_received;
        if (offset > exec->in_received) {
            zube_bus_respond_error (
                request, ZUBE_CONFLICT,
                "exec session %s: stdin from offset %lld, but %lld bytes "
                "came so far",
                exec->id, (long long)offset, (long long)exec->in_received);
            goto done;
        }
        size_t skip = (size_t)(exec->in_received - offset);
        if (skip < req->stdin.len && exec->fds[0] >= 0) {
            size_t size = req->stdin.len - skip;
            if (exec->in.used + size > S_STDIN_MAX) {
                zube_bus_respond_error (
                    request, ZUBE_TOO_MANY_REQUESTS,
                    "exec session %s: the command reads its stdin slower "
                    "than it comes; send again later",
                    exec->id);
                goto done;
            }
            if (!s_append (&exec->in, req->stdin.data + skip, size)) {
                zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
                goto done;
            }
            exec->in_received += (int64_t)size;
        } else if (skip < req->stdin.len)
            exec->in_received += (int64_t)(req->stdin.len - skip);
    }
    if (req->stdin_eof)
        exec->in_eof = true;
    if (req->columns && req->rows)
        zube_runtime_exec_resize (self->runtime, exec->id, (uint16_t)req->columns,
                                  (uint16_t)req->rows);
    if (req->has_stdout_offset)
        s_acknowledge (&exec->out[0], req->stdout_offset);
    if (req->has_stderr_offset)
        s_acknowledge (&exec->out[1], req->stderr_offset);
    if (req->close) {
        s_respond (exec, request);
        s_remove (self, exec, "closed by its client");
        goto done;
    }
    zl_exec_run (self);
    exec = s_find (self, req->session);
    if (!exec) {
        zube_bus_respond_error (request, ZUBE_NOT_FOUND, "exec session \"%s\" ended",
                                req->session);
        goto done;
    }
    int wait_ms = req->has_wait_ms ? req->wait_ms : 0;
    int remaining = zube_bus_request_remaining_ms (request) - 500;
    if (wait_ms > remaining)
        wait_ms = remaining;
    if (s_has_news (exec) || wait_ms <= 0) {
        s_respond (exec, request);
        goto done;
    }
    //  One poll waits at a time: an older one is answered now
    if (exec->waiting)
        s_respond (exec, exec->waiting);
    exec->waiting = request;
    exec->waiting_until = zl_now_mono () + wait_ms;
    zube_bus_request_defer (request);
done:
    zube__node_exec_io_request__free_unpacked (req, NULL);
}

bool
zl_exec_active (zubelet_t *self)
{
    return self->exec_count > 0;
}

//  Moves the bytes of one session; true when something moved.
static bool
s_pump (zubelet_t *self, zl_exec_t *exec)
{
    struct pollfd fds[3];
    int slot[3] = {-1, -1, -1};
    nfds_t count = 0;
    if (exec->fds[0] >= 0 && exec->in.used) {
        slot[0] = (int)count;
        fds[count++] = (struct pollfd){.fd = exec->fds[0], .events = POLLOUT};
    }
    for (int k = 1; k < 3; k++)
        if (exec->fds[k] >= 0 && exec->out[k - 1].used < S_OUTPUT_MAX) {
            slot[k] = (int)count;
            fds[count++] = (struct pollfd){.fd = exec->fds[k], .events = POLLIN};
        }
    bool moved = false;
    if (count && poll (fds, count, 0) > 0) {
        if (slot[0] >= 0 && fds[slot[0]].revents) {
            ssize_t n = write (exec->fds[0], exec->in.data, exec->in.used);
            if (n > 0) {
                s_acknowledge (&exec->in, exec->in.base + n);
                moved = true;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR)
                s_close_fd (&exec->fds[0]);
        }
        for (int k = 1; k < 3; k++) {
            if (slot[k] < 0 || !fds[slot[k]].revents)
                continue;
            char chunk[S_CHUNK];
            ssize_t n = read (exec->fds[k], chunk, sizeof chunk);
            if (n > 0) {
                s_append (&exec->out[k - 1], chunk, (size_t)n);
                moved = true;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                //  EOF, or EIO on a pty whose command is gone
                s_close_fd (&exec->fds[k]);
                moved = true;
            }
        }
    }
    //  The end of stdin once all of it is written; a pty gets ^D (EOF
    //  in canonical mode) instead, its fd being the output's too
    if (exec->in_eof && !exec->in.used && exec->fds[0] >= 0) {
        if (exec->tty && write (exec->fds[0], "\x04", 1) < 0)
            zube_log_debug ("msg=\"exec: cannot send EOF\" session=%s", exec->id);
        s_close_fd (&exec->fds[0]);
    }
    if (!exec->exited) {
        bool exited = false;
        int code = 0;
        if (zube_runtime_exec_wait (self->runtime, exec->id, &exited, &code) == ZUBE_OK &&
            exited) {
            exec->exited = true;
            exec->exit_code = code;
            moved = true;
        }
    }
    //  A tty's master reads EIO only once every slave fd is closed: after
    //  the exit, what is left in it is read, then it is done
    if (exec->exited && exec->tty && exec->fds[1] >= 0 && !moved)
        s_close_fd (&exec->fds[1]);
    return moved;
}

void
zl_exec_run (zubelet_t *self)
{
    int64_t now = zl_now_mono ();
    for (size_t i = 0; i < self->exec_count;) {
        zl_exec_t *exec = self->execs[i];
        s_pump (self, exec);
        if (exec->waiting && (s_has_news (exec) || now >= exec->waiting_until)) {
            s_respond (exec, exec->waiting);
            exec->waiting = NULL;
        }
        if (!exec->waiting && now - exec->last_seen > self->config.exec_idle_timeout_ms) {
            s_remove (self, exec,
                      "no request from its client within --exec-idle-timeout");
            continue;
        }
        i++;
    }
}

void
zl_exec_destroy (zubelet_t *self)
{
    //  The bus is gone: deferred requests went with it
    for (size_t i = 0; i < self->exec_count; i++)
        self->execs[i]->waiting = NULL;
    while (self->exec_count)
        s_remove (self, self->execs[0], "the zubelet stops");
    free (self->execs);
    self->execs = NULL;
}
