/*  oci_proc - programs, shims and network namespaces of the oci runtime.

    oci_run runs a program to completion (runc, a CNI plugin) with its
    output collected, through posix_spawn so the zubelet's memory is not
    copied. oci_shim_start forks the per-container shim: the shim is the
    one process that holds a container's stdio and learns its exit code,
    so it lives in a session of its own and outlives the zubelet. The
    shim is a fork of the zubelet, not a program of its own: after the
    fork it touches nothing but its stack and system calls, so it needs
    no binary to be found at run time. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include "oci.h"

extern char **environ;

//  ---------------------------------------------------------------------
//  Text

void
oci_buf_append (oci_buf_t *buf, const char *data, size_t size)
{
    if (buf->failed)
        return;
    if (buf->used + size + 1 > buf->size) {
        size_t size_new = buf->size ? buf->size * 2 : 256;
        while (size_new < buf->used + size + 1)
            size_new *= 2;
        char *data_new = realloc (buf->data, size_new);
        if (!data_new) {
            buf->failed = true;
            return;
        }
        buf->data = data_new;
        buf->size = size_new;
    }
    memcpy (buf->data + buf->used, data, size);
    buf->used += size;
    buf->data[buf->used] = 0;
}

void
oci_buf_printf (oci_buf_t *buf, const char *format, ...)
{
    char small[512];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (small, sizeof small, format, args);
    va_end (args);
    if (n < 0)
        return;
    if ((size_t) n < sizeof small) {
        oci_buf_append (buf, small, (size_t) n);
        return;
    }
    char *big = malloc ((size_t) n + 1);
    if (!big) {
        buf->failed = true;
        return;
    }
    va_start (args, format);
    vsnprintf (big, (size_t) n + 1, format, args);
    va_end (args);
    oci_buf_append (buf, big, (size_t) n);
    free (big);
}

void
oci_buf_json (oci_buf_t *buf, const char *text)
{
    oci_buf_append (buf, "\"", 1);
    for (const unsigned char *c = (const unsigned char *) (text ? text : ""); *c; c++) {
        if (*c == '"' || *c == '\\') {
            char escaped[2] = {'\\', (char) *c};
            oci_buf_append (buf, escaped, 2);
        } else if (*c < 0x20)
            oci_buf_printf (buf, "\\u%04x", *c);
        else
            oci_buf_append (buf, (const char *) c, 1);
    }
    oci_buf_append (buf, "\"", 1);
}

void
oci_buf_free (oci_buf_t *buf)
{
    free (buf->data);
    *buf = (oci_buf_t) {0};
}

int
oci_mkdirs (const char *path, mode_t mode)
{
    char copy[4096];
    if (strlen (path) >= sizeof copy) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy (copy, path);
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != 0)
            continue;
        char saved = *p;
        *p = 0;
        if (mkdir (copy, mode) != 0 && errno != EEXIST)
            return -1;
        *p = saved;
        if (!saved)
            break;
    }
    return 0;
}

static int
s_remove_at (int parent, const char *name, dev_t device)
{
    struct stat st;
    if (fstatat (parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR (st.st_mode))
        return unlinkat (parent, name, 0) == 0 || errno == ENOENT ? 0 : -1;
    if (st.st_dev != device)
        return -1;      //  a mount point: never empty what is mounted there
    int fd = openat (parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *dir = fdopendir (fd);
    if (!dir) {
        close (fd);
        return -1;
    }
    int rc = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (strcmp (entry->d_name, ".") != 0 && strcmp (entry->d_name, "..") != 0
            && s_remove_at (fd, entry->d_name, device) != 0)
            rc = -1;
    closedir (dir);
    if (unlinkat (parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

int
oci_remove_tree (const char *path)
{
    struct stat st;
    if (lstat (path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return s_remove_at (AT_FDCWD, path, st.st_dev);
}

int
oci_write_file (const char *path, const void *data, size_t size, mode_t mode)
{
    char temp[4200];
    snprintf (temp, sizeof temp, "%s.tmp", path);
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    const char *at = data;
    while (size) {
        ssize_t n = write (fd, at, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close (fd);
            unlink (temp);
            return -1;
        }
        at += n;
        size -= (size_t) n;
    }
    if (close (fd) != 0 || rename (temp, path) != 0) {
        unlink (temp);
        return -1;
    }
    return 0;
}

char *
oci_read_file (const char *path, size_t *size_p)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    oci_buf_t buf = {0};
    char chunk[8192];
    ssize_t n;
    while ((n = read (fd, chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            oci_buf_append (&buf, chunk, (size_t) n);
    close (fd);
    if (n < 0 || buf.failed) {
        oci_buf_free (&buf);
        return NULL;
    }
    if (!buf.data)
        oci_buf_append (&buf, "", 0);
    if (size_p)
        *size_p = buf.used;
    return buf.data;
}

bool
oci_kv_get (const char *text, const char *key, char *out, size_t out_size)
{
    size_t key_length = strlen (key);
    for (const char *line = text; line && *line;) {
        const char *end = strchr (line, '\n');
        size_t length = end ? (size_t) (end - line) : strlen (line);
        if (length > key_length && line[key_length] == '=' && memcmp (line, key, key_length) == 0) {
            size_t value_length = length - key_length - 1;
            if (value_length >= out_size)
                value_length = out_size - 1;
            memcpy (out, line + key_length + 1, value_length);
            out[value_length] = 0;
            return true;
        }
        line = end ? end + 1 : NULL;
    }
    return false;
}

int64_t
oci_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
oci_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  ---------------------------------------------------------------------
//  Running a program

static const char *const s_default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};

int
oci_run (const char *const *argv, const char *const *env, const void *stdin_data,
         size_t stdin_size, oci_buf_t *out, oci_buf_t *err, int64_t timeout_ms,
         bool *timed_out_p)
{
    if (timed_out_p)
        *timed_out_p = false;
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (pipe2 (in_pipe, O_CLOEXEC) != 0 || pipe2 (out_pipe, O_CLOEXEC) != 0
        || pipe2 (err_pipe, O_CLOEXEC) != 0) {
        int saved = errno;
        for (int i = 0; i < 2; i++) {
            if (in_pipe[i] >= 0)
                close (in_pipe[i]);
            if (out_pipe[i] >= 0)
                close (out_pipe[i]);
            if (err_pipe[i] >= 0)
                close (err_pipe[i]);
        }
        errno = saved;
        return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2 (&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2 (&actions, err_pipe[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    sigset_t none;
    sigemptyset (&none);
    posix_spawnattr_setsigmask (&attr, &none);
    sigset_t defaults;
    sigfillset (&defaults);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn (&pid, argv[0], &actions, &attr, (char *const *) argv,
                          (char *const *) (env ? env : s_default_env));
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    close (in_pipe[0]);
    close (out_pipe[1]);
    close (err_pipe[1]);
    if (rc != 0) {
        close (in_pipe[1]);
        close (out_pipe[0]);
        close (err_pipe[0]);
        errno = rc;
        return -1;
    }
    int in_fd = in_pipe[1];
    if (!stdin_data || !stdin_size) {
        close (in_fd);
        in_fd = -1;
    } else
        fcntl (in_fd, F_SETFL, O_NONBLOCK);
    int fds[2] = {out_pipe[0], err_pipe[0]};
    oci_buf_t *bufs[2] = {out, err};
    size_t written = 0;
    int64_t deadline = timeout_ms > 0 ? oci_mono_ms () + timeout_ms : INT64_MAX;
    bool killed = false;
    while (fds[0] >= 0 || fds[1] >= 0) {
        struct pollfd polls[3];
        int count = 0;
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                polls[count++] = (struct pollfd) {.fd = fds[i], .events = POLLIN};
        if (in_fd >= 0)
            polls[count++] = (struct pollfd) {.fd = in_fd, .events = POLLOUT};
        int64_t left = deadline == INT64_MAX ? 1000 : deadline - oci_mono_ms ();
        if (left <= 0 && !killed) {
            kill (pid, SIGKILL);
            killed = true;
            if (timed_out_p)
                *timed_out_p = true;
        }
        if (left <= 0)
            left = 100;
        int ready = poll (polls, (nfds_t) count, (int) (left > 1000 ? 1000 : left));
        if (ready < 0 && errno != EINTR)
            break;
        for (int p = 0; ready > 0 && p < count; p++) {
            if (!polls[p].revents)
                continue;
            if (polls[p].fd == in_fd) {
                ssize_t n = write (in_fd, (const char *) stdin_data + written,
                                   stdin_size - written);
                if (n > 0)
                    written += (size_t) n;
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                    written = stdin_size;
                if (written >= stdin_size) {
                    close (in_fd);
                    in_fd = -1;
                }
                continue;
            }
            int i = polls[p].fd == fds[0] ? 0 : 1;
            char chunk[8192];
            ssize_t n = read (fds[i], chunk, sizeof chunk);
            if (n > 0 && bufs[i])
                oci_buf_append (bufs[i], chunk, (size_t) n);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                close (fds[i]);
                fds[i] = -1;
            }
        }
    }
    if (in_fd >= 0)
        close (in_fd);
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

//  ---------------------------------------------------------------------
//  The shim. Everything below runs in the forked child: no malloc, no
//  stdio streams, only the stack and system calls.

#define S_LOG_LINE_MAX 16384

typedef struct {
    int fd;
    char path[4200];
    int64_t size;
    int64_t max_size;
} s_log_t;

typedef struct {
    char data[S_LOG_LINE_MAX];
    size_t used;
} s_line_t;

static void
s_write_all (int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t n = write (fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        size -= (size_t) n;
    }
}

static void
s_log_rotate (s_log_t *log)
{
    char rotated[4300];
    snprintf (rotated, sizeof rotated, "%s.1", log->path);
    close (log->fd);
    rename (log->path, rotated);
    log->fd = open (log->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    log->size = 0;
}

//  One CRI log line: "<RFC3339Nano> <stream> <F|P> <text>\n".
static void
s_log_line (s_log_t *log, const char *stream, const char *text, size_t length, bool partial)
{
    if (log->fd < 0)
        return;
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    char head[96];
    int n = snprintf (head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s %s ",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, ts.tv_nsec, stream, partial ? "P" : "F");
    if (log->max_size > 0 && log->size + n + (int64_t) length + 1 > log->max_size
        && log->size > 0)
        s_log_rotate (log);
    s_write_all (log->fd, head, (size_t) n);
    s_write_all (log->fd, text, length);
    s_write_all (log->fd, "\n", 1);
    log->size += n + (int64_t) length + 1;
}

static void
s_log_feed (s_log_t *log, s_line_t *line, const char *stream, const char *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\n') {
            s_log_line (log, stream, line->data, line->used, false);
            line->used = 0;
            continue;
        }
        line->data[line->used++] = data[i];
        if (line->used == sizeof line->data) {
            s_log_line (log, stream, line->data, line->used, true);
            line->used = 0;
        }
    }
}

static void
s_close_from (int first)
{
#ifdef SYS_close_range
    if (syscall (SYS_close_range, (unsigned) first, ~0u, 0) == 0)
        return;
#endif
    for (int fd = first; fd < 65536; fd++)
        close (fd);
}

//  Moves fd to number to (closing what was there).
static int
s_move_fd (int fd, int to)
{
    if (fd == to)
        return fd;
    if (dup2 (fd, to) < 0)
        return -1;
    close (fd);
    return to;
}

//  In a forked child: moves the fds of keep (-1: none) to 3, 4, ... in
//  order (through high numbers first, so no move overwrites another),
//  their new numbers into keep, and closes every other fd from 3 on.
static void
s_keep_fds (int *keep, int count)
{
    for (int i = 0; i < count; i++)
        if (keep[i] >= 0)
            keep[i] = fcntl (keep[i], F_DUPFD_CLOEXEC, 1000 + i);
    for (int i = 0; i < count; i++)
        if (keep[i] >= 0)
            keep[i] = s_move_fd (keep[i], 3 + i);
    s_close_from (3 + count);
}

static int64_t
s_oom_kills (const char *oom_control)
{
    if (!oom_control || !*oom_control)
        return 0;
    int fd = open (oom_control, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char text[512];
    ssize_t n = read (fd, text, sizeof text - 1);
    close (fd);
    if (n <= 0)
        return 0;
    text[n] = 0;
    const char *at = strstr (text, "oom_kill ");
    return at ? strtoll (at + 9, NULL, 10) : 0;
}

static pid_t
s_read_pid (const char *path)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char text[32];
    ssize_t n = read (fd, text, sizeof text - 1);
    close (fd);
    if (n <= 0)
        return 0;
    text[n] = 0;
    return (pid_t) strtol (text, NULL, 10);
}

//  fds: 3 the status pipe to the zubelet, 4 and 5 the read ends of the
//  container's stdout and stderr, 6 and 7 their write ends, 8 /dev/null.
//  `start` of a created container, waited for; 0 or -1.
static int
s_runtime_start (const oci_shim_config_t *config)
{
    pid_t start = fork ();
    if (start == 0) {
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        s_close_from (3);
        const char *argv[OCI_RUNTIME_ARGV_MAX + 3];
        size_t n = 0;
        while (config->runtime_argv[n] && n < OCI_RUNTIME_ARGV_MAX)
            argv[n] = config->runtime_argv[n], n++;
        argv[n++] = "start";
        argv[n++] = config->id;
        argv[n] = NULL;
        execve (argv[0], (char *const *) argv, (char *const *) s_default_env);
        _exit (127);
    }
    int status = 0;
    if (start < 0)
        return -1;
    while (waitpid (start, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -1;
}

static void __attribute__ ((noreturn))
s_shim_main (const oci_shim_config_t *config)
{
    prctl (PR_SET_NAME, "zube-shim");
    prctl (PR_SET_CHILD_SUBREAPER, 1);
    s_log_t log = {.fd = -1, .max_size = config->log_max_size};
    snprintf (log.path, sizeof log.path, "%s", config->log_path);
    //  Open before runc: with run --detach the container writes at once
    log.fd = open (log.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat log_st;
    if (log.fd >= 0 && fstat (log.fd, &log_st) == 0)
        log.size = log_st.st_size;
    //  A child's exit wakes the loop at once (signalfd), not at the
    //  next poll timeout: the zubelet waits for runc's answer
    sigset_t chld;
    sigemptyset (&chld);
    sigaddset (&chld, SIGCHLD);
    sigprocmask (SIG_BLOCK, &chld, NULL);
    int chld_fd = signalfd (-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    //  runc run --detach, its stdio the container's
    pid_t runc = fork ();
    if (runc == 0) {
        sigprocmask (SIG_UNBLOCK, &chld, NULL);
        dup2 (8, 0);
        dup2 (6, 1);
        dup2 (7, 2);
        s_close_from (3);
        //  run --detach: created and started in one runc (a create and
        //  a start are two Go programs to load)
        const char *argv[OCI_RUNTIME_ARGV_MAX + 8];
        size_t n = 0;
        while (config->runtime_argv[n] && n < OCI_RUNTIME_ARGV_MAX)
            argv[n] = config->runtime_argv[n], n++;
        argv[n++] = config->create_start ? "create" : "run";
        if (!config->create_start)
            argv[n++] = "--detach";
        const char *tail[] = {"--bundle", config->bundle, "--pid-file", config->pid_file,
                              config->id, NULL};
        for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
            argv[n++] = tail[i];
        execve (argv[0], (char *const *) argv, (char *const *) s_default_env);
        _exit (127);
    }
    close (6);
    close (7);
    close (8);
    //  Until runc exits, what comes on stderr is runc's message
    char runc_error[8192];
    size_t runc_error_used = 0;
    int runc_status = -1;
    pid_t init = 0;
    bool init_exited = false;
    int init_status = 0;
    //  Children reaped before runc exited and the pid file named init: a
    //  fast init (`sh -c 'exit 2'`) is reparented to us as a zombie when
    //  runc exits and may be reaped just before runc is.
    struct {
        pid_t pid;
        int status;
    } early[8];
    size_t early_count = 0;
    int fds[2] = {4, 5};
    static s_line_t lines[2];
    const char *streams[2] = {"stdout", "stderr"};
    while (fds[0] >= 0 || fds[1] >= 0 || !init_exited) {
        struct pollfd polls[3];
        int count = 0;
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                polls[count++] = (struct pollfd) {.fd = fds[i], .events = POLLIN};
        if (chld_fd >= 0)
            polls[count++] = (struct pollfd) {.fd = chld_fd, .events = POLLIN};
        int ready = poll (polls, (nfds_t) count, 100);
        for (int p = 0; ready > 0 && p < count; p++) {
            if (!polls[p].revents)
                continue;
            if (polls[p].fd == chld_fd) {
                struct signalfd_siginfo info;
                while (read (chld_fd, &info, sizeof info) > 0)
                    ;
                continue;
            }
            int i = polls[p].fd == fds[0] ? 0 : 1;
            char chunk[8192];
            ssize_t n = read (fds[i], chunk, sizeof chunk);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                close (fds[i]);
                fds[i] = -1;
                continue;
            }
            if (n < 0)
                continue;
            if (runc_status < 0 && i == 1 && runc_error_used + (size_t) n >= sizeof runc_error) {
                //  Too much for an error message: the container's own
                s_log_feed (&log, &lines[1], "stderr", runc_error, runc_error_used);
                runc_error_used = 0;
            }
            if (runc_status < 0 && i == 1) {
                size_t room = sizeof runc_error - 1 - runc_error_used;
                size_t take = (size_t) n < room ? (size_t) n : room;
                memcpy (runc_error + runc_error_used, chunk, take);
                runc_error_used += take;
                continue;
            }
            s_log_feed (&log, &lines[i], streams[i], chunk, (size_t) n);
        }
        int status;
        pid_t pid;
        while ((pid = waitpid (-1, &status, WNOHANG)) > 0) {
            if (pid == runc) {
                runc_status = status;
                if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
                    //  What runc wrote just before it exited
                    fcntl (5, F_SETFL, O_NONBLOCK);
                    ssize_t got;
                    while (runc_error_used < sizeof runc_error - 1
                           && (got = read (5, runc_error + runc_error_used,
                                           sizeof runc_error - 1 - runc_error_used))
                                  > 0)
                        runc_error_used += (size_t) got;
                    runc_error[runc_error_used] = 0;
                    char message[1100];
                    int n = snprintf (message, sizeof message, "error %.1000s",
                                      runc_error_used ? runc_error : "runc run failed");
                    s_write_all (3, message, (size_t) n);
                    _exit (1);
                }
                init = s_read_pid (config->pid_file);
                for (size_t e = 0; e < early_count; e++)
                    if (init > 0 && early[e].pid == init) {
                        init_exited = true;
                        init_status = early[e].status;
                    }
                if (config->create_start && s_runtime_start (config) != 0) {
                    static const char failed[] = "error the runtime's start failed";
                    s_write_all (3, failed, sizeof failed - 1);
                    kill (init, SIGKILL);
                    _exit (1);
                }
                if (runc_error_used)
                    s_log_feed (&log, &lines[1], "stderr", runc_error, runc_error_used);
                char message[64];
                int n = snprintf (message, sizeof message, "ok %d", (int) init);
                s_write_all (3, message, (size_t) n);
                close (3);
            } else if (init > 0 && pid == init) {
                init_exited = true;
                init_status = status;
            } else if (init <= 0 && early_count < sizeof early / sizeof early[0]) {
                early[early_count].pid = pid;
                early[early_count].status = status;
                early_count++;
            }
        }
        if (pid < 0 && errno == ECHILD && runc_status >= 0 && !init_exited) {
            //  Not our child (adopted by an older subreaper): watch it.
            if (init <= 0 || kill (init, 0) != 0) {
                init_exited = true;
                init_status = 255 << 8;
            }
        }
        if (runc_status < 0)
            continue;
        if (init_exited && ready == 0)
            break;  //  what was written before the exit is in
    }
    for (int i = 0; i < 2; i++)
        if (lines[i].used)
            s_log_line (&log, streams[i], lines[i].data, lines[i].used, false);
    int code = WIFEXITED (init_status) ? WEXITSTATUS (init_status)
               : WIFSIGNALED (init_status) ? 128 + WTERMSIG (init_status)
                                           : 255;
    int64_t oom = s_oom_kills (config->oom_control);
    char text[256];
    int n = snprintf (text, sizeof text, "exit_code=%d\nsignal=%d\noom_kills=%lld\nfinished_ms=%lld\n",
                      code, WIFSIGNALED (init_status) ? WTERMSIG (init_status) : 0,
                      (long long) oom, (long long) oci_wall_ms ());
    char temp[4300];
    snprintf (temp, sizeof temp, "%s.tmp", config->exit_file);
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        s_write_all (fd, text, (size_t) n);
        fsync (fd);
        close (fd);
        rename (temp, config->exit_file);
    }
    _exit (0);
}

//  What a shim or helper wrote on its status pipe until it closed it
//  (trailing blanks cut); closes fd.
static void
s_read_answer (int fd, char *answer, size_t size)
{
    size_t used = 0;
    ssize_t n;
    while (used < size - 1
           && ((n = read (fd, answer + used, size - 1 - used)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0)
            used += (size_t) n;
    close (fd);
    answer[used] = 0;
    while (used && (answer[used - 1] == '\n' || answer[used - 1] == ' '))
        answer[--used] = 0;
}

int
oci_shim_start (const oci_shim_config_t *config, pid_t *pid_p, pid_t *shim_pid_p, char *error,
                size_t error_size)
{
    int status_pipe[2], out_pipe[2], err_pipe[2], pid_pipe[2];
    if (pipe2 (status_pipe, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        return -1;
    }
    if (pipe2 (out_pipe, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        close (status_pipe[0]);
        close (status_pipe[1]);
        return -1;
    }
    if (pipe2 (err_pipe, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        close (status_pipe[0]);
        close (status_pipe[1]);
        close (out_pipe[0]);
        close (out_pipe[1]);
        return -1;
    }
    if (pipe2 (pid_pipe, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        close (status_pipe[0]);
        close (status_pipe[1]);
        close (out_pipe[0]);
        close (out_pipe[1]);
        close (err_pipe[0]);
        close (err_pipe[1]);
        return -1;
    }
    pid_t first = fork ();
    if (first == 0) {
        //  Between the two forks: a new session, then the shim itself,
        //  orphaned at once so it belongs to init, not to the zubelet.
        setsid ();
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
            signal (sig, SIG_DFL);
        signal (SIGPIPE, SIG_IGN);
        pid_t shim = fork ();
        if (shim != 0) {
            s_write_all (pid_pipe[1], (const char *) &shim, sizeof shim);
            _exit (shim > 0 ? 0 : 1);
        }
        int null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
        //  Move what the shim keeps to fds 3..8 (through high numbers
        //  first, so no move overwrites another), close the rest.
        int keep[6] = {status_pipe[1], out_pipe[0], err_pipe[0], out_pipe[1], err_pipe[1],
                       null_fd};
        s_keep_fds (keep, 6);
        dup2 (8, 0);
        dup2 (8, 1);
        dup2 (8, 2);
        s_shim_main (config);
    }
    close (status_pipe[1]);
    close (out_pipe[0]);
    close (out_pipe[1]);
    close (err_pipe[0]);
    close (err_pipe[1]);
    close (pid_pipe[1]);
    if (first < 0) {
        snprintf (error, error_size, "fork: %s", strerror (errno));
        close (status_pipe[0]);
        close (pid_pipe[0]);
        return -1;
    }
    int wait_status;
    while (waitpid (first, &wait_status, 0) < 0 && errno == EINTR)
        ;
    pid_t shim = 0;
    if (read (pid_pipe[0], &shim, sizeof shim) != (ssize_t) sizeof shim)
        shim = 0;
    close (pid_pipe[0]);
    *shim_pid_p = shim;
    char answer[1200];
    s_read_answer (status_pipe[0], answer, sizeof answer);
    if (strncmp (answer, "ok ", 3) == 0) {
        *pid_p = (pid_t) strtol (answer + 3, NULL, 10);
        return 0;
    }
    if (strncmp (answer, "error ", 6) == 0)
        snprintf (error, error_size, "%s", answer + 6);
    else
        snprintf (error, error_size, "the shim exited before runc run finished");
    return -1;
}

//  ---------------------------------------------------------------------
//  Network namespaces

//  What the CNI loopback plugin does, without a program to run: lo up.
static int
s_loopback_up (void)
{
    int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    struct ifreq request;
    memset (&request, 0, sizeof request);
    snprintf (request.ifr_name, sizeof request.ifr_name, "lo");
    int rc = 0;
    if (ioctl (fd, SIOCGIFFLAGS, &request) != 0)
        rc = errno;
    else {
        request.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl (fd, SIOCSIFFLAGS, &request) != 0)
            rc = errno;
    }
    close (fd);
    return rc;
}

int
oci_netns_create (const char *path, char *error, size_t error_size)
{
    int fd = open (path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) {
        snprintf (error, error_size, "cannot create %s: %s", path, strerror (errno));
        return -1;
    }
    close (fd);
    //  A child enters a new network namespace and bind-mounts it on path;
    //  the mount keeps it alive once the child exits.
    int report[2];
    if (pipe2 (report, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        unlink (path);
        return -1;
    }
    pid_t child = fork ();
    if (child == 0) {
        int rc = 0;
        if (unshare (CLONE_NEWNET) != 0)
            rc = errno;
        else if (mount ("/proc/self/ns/net", path, "none", MS_BIND, NULL) != 0)
            rc = errno;
        else
            rc = s_loopback_up ();
        s_write_all (report[1], (const char *) &rc, sizeof rc);
        _exit (rc ? 1 : 0);
    }
    close (report[1]);
    int rc = child < 0 ? errno : EPIPE;
    if (child > 0) {
        if (read (report[0], &rc, sizeof rc) != (ssize_t) sizeof rc)
            rc = EPIPE;
        int status;
        while (waitpid (child, &status, 0) < 0 && errno == EINTR)
            ;
    }
    close (report[0]);
    if (rc != 0) {
        snprintf (error, error_size, "cannot create the network namespace %s: %s", path,
                  strerror (rc));
        unlink (path);
        return -1;
    }
    return 0;
}

int
oci_netns_remove (const char *path)
{
    if (umount2 (path, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
        return -1;
    if (unlink (path) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

//  ---------------------------------------------------------------------
//  Exec sessions. The helper is a fork of the zubelet, the subreaper of
//  the command: with a tty, `exec --detach --tty --console-socket` hands
//  the pty to the zubelet and returns, and the command, orphaned, is
//  reaped by the helper; without, the foreground `exec` is its child.
//  The helper's exit status is the command's. The zubelet holds the
//  write end of a control pipe: when it closes it (the session ends, or
//  the zubelet dies), the helper kills the command.

static void __attribute__ ((noreturn))
s_exec_helper_main (const oci_exec_helper_t *config, int status_fd, int control_fd,
                    int err_read, int err_write)
{
    prctl (PR_SET_NAME, "zube-exec");
    prctl (PR_SET_CHILD_SUBREAPER, 1);
    pid_t runtime = fork ();
    if (runtime == 0) {
        int null_fd = open ("/dev/null", O_RDWR);
        dup2 (config->stdin_fd >= 0 ? config->stdin_fd : null_fd, 0);
        dup2 (config->stdout_fd >= 0 ? config->stdout_fd : null_fd, 1);
        dup2 (config->tty ? err_write : config->stderr_fd >= 0 ? config->stderr_fd : null_fd,
              2);
        s_close_from (3);
        const char *argv[OCI_RUNTIME_ARGV_MAX + 64];
        size_t n = 0;
        while (config->runtime_argv[n] && n < OCI_RUNTIME_ARGV_MAX)
            argv[n] = config->runtime_argv[n], n++;
        for (size_t i = 0; config->args[i] && n + 1 < sizeof argv / sizeof argv[0]; i++)
            argv[n++] = config->args[i];
        argv[n] = NULL;
        execve (argv[0], (char *const *) argv, (char *const *) s_default_env);
        _exit (127);
    }
    close (err_write);
    if (config->stdin_fd >= 0)
        close (config->stdin_fd);
    if (config->stdout_fd >= 0)
        close (config->stdout_fd);
    if (config->stderr_fd >= 0)
        close (config->stderr_fd);
    pid_t target = runtime;
    if (config->tty) {
        int status = 0;
        while (waitpid (runtime, &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
            char text[1100] = "error ";
            size_t used = 6;
            ssize_t got;
            fcntl (err_read, F_SETFL, O_NONBLOCK);
            while (used < sizeof text - 1
                   && (got = read (err_read, text + used, sizeof text - 1 - used)) > 0)
                used += (size_t) got;
            //  crun writes why the command could not start on its pty,
            //  which nobody reads yet
            if (used == 6)
                used += (size_t) snprintf (text + used, sizeof text - used,
                                           "the runtime's exec exited with status %d (the "
                                           "command could not be started)",
                                           WIFEXITED (status) ? WEXITSTATUS (status) : -1);
            s_write_all (status_fd, text, used);
            _exit (255);
        }
        target = s_read_pid (config->pid_file);
    }
    s_write_all (status_fd, "ok", 2);
    close (status_fd);
    close (err_read);
    bool killed = false;
    while (true) {
        struct pollfd control = {.fd = control_fd, .events = POLLIN};
        if (!killed && poll (&control, 1, 100) > 0) {
            //  The zubelet closed the session (or died): the command goes
            pid_t command = config->tty ? target : s_read_pid (config->pid_file);
            if (command > 0)
                kill (command, SIGKILL);
            kill (target, SIGKILL);
            killed = true;
        } else if (killed)
            usleep (20000);
        int status;
        pid_t pid;
        while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
            if (pid == target)
                _exit (WIFEXITED (status) ? WEXITSTATUS (status)
                       : WIFSIGNALED (status) ? 128 + WTERMSIG (status)
                                              : 255);
        if (pid < 0 && errno == ECHILD && (target <= 0 || kill (target, 0) != 0))
            _exit (255);
    }
}

int
oci_exec_helper_start (const oci_exec_helper_t *config, pid_t *pid_p, int *control_p,
                       char *error, size_t error_size)
{
    int status_pipe[2] = {-1, -1}, control_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (pipe2 (status_pipe, O_CLOEXEC) != 0 || pipe2 (control_pipe, O_CLOEXEC) != 0
        || pipe2 (err_pipe, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        for (int i = 0; i < 2; i++) {
            if (status_pipe[i] >= 0)
                close (status_pipe[i]);
            if (control_pipe[i] >= 0)
                close (control_pipe[i]);
            if (err_pipe[i] >= 0)
                close (err_pipe[i]);
        }
        return -1;
    }
    pid_t helper = fork ();
    if (helper == 0) {
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
            signal (sig, SIG_DFL);
        signal (SIGPIPE, SIG_IGN);
        //  Keep what the helper needs at 3..9 (through high numbers, so
        //  no move overwrites another), close every other fd of the
        //  zubelet: a stdin pipe's write end held here would keep the
        //  command from ever reading EOF
        int keep[7] = {status_pipe[1], control_pipe[0], err_pipe[0], err_pipe[1],
                       config->stdin_fd, config->stdout_fd, config->stderr_fd};
        s_keep_fds (keep, 7);
        oci_exec_helper_t moved = *config;
        moved.stdin_fd = keep[4];
        moved.stdout_fd = keep[5];
        moved.stderr_fd = keep[6];
        s_exec_helper_main (&moved, keep[0], keep[1], keep[2], keep[3]);
    }
    close (status_pipe[1]);
    close (control_pipe[0]);
    close (err_pipe[0]);
    close (err_pipe[1]);
    if (helper < 0) {
        snprintf (error, error_size, "fork: %s", strerror (errno));
        close (status_pipe[0]);
        close (control_pipe[1]);
        return -1;
    }
    char answer[1200];
    s_read_answer (status_pipe[0], answer, sizeof answer);
    if (strcmp (answer, "ok") == 0) {
        *pid_p = helper;
        *control_p = control_pipe[1];
        return 0;
    }
    snprintf (error, error_size, "%s",
              strncmp (answer, "error ", 6) == 0 ? answer + 6 : "the exec helper failed");
    close (control_pipe[1]);
    while (waitpid (helper, NULL, 0) < 0 && errno == EINTR)
        ;
    return -1;
}
