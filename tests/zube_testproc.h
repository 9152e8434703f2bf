/*  zube_testproc - start and stop real processes for integration tests.

    Tests run the real binaries (zube-broker, services, redis-server, ...)
    from the build tree, on free loopback ports, in a temporary directory
    that is removed afterwards. Binaries are found through $ZUBE_BUILDDIR
    (set by `make check`), else the current directory. */
#ifndef ZUBE_TESTPROC_H_INCLUDED
#define ZUBE_TESTPROC_H_INCLUDED

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

//  A loopback TCP port nobody listens on right now. Ports are taken from
//  the kernel's ephemeral range by binding port 0; when `count` > 1, the
//  next count-1 ports are checked free too (the broker uses port+1, +2).
static inline int
zt_free_port (int count)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
        socklen_t len = sizeof addr;
        if (bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0
            || getsockname (fd, (struct sockaddr *) &addr, &len) != 0) {
            close (fd);
            continue;
        }
        int base = ntohs (addr.sin_port);
        close (fd);
        bool all_free = base + count < 65000;
        for (int i = 0; all_free && i < count; i++) {
            int probe = socket (AF_INET, SOCK_STREAM, 0);
            int one = 1;
            setsockopt (probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            struct sockaddr_in p = {.sin_family = AF_INET,
                                    .sin_port = htons (base + i),
                                    .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
            if (bind (probe, (struct sockaddr *) &p, sizeof p) != 0)
                all_free = false;
            close (probe);
        }
        if (all_free)
            return base;
    }
    return -1;
}

//  A fresh temporary directory; free() the result after zt_rmtree.
static inline char *
zt_tempdir (const char *tag)
{
    char path[256];
    snprintf (path, sizeof path, "/tmp/zube-test-%s-XXXXXX", tag ? tag : "t");
    char *dir = mkdtemp (path);
    return dir ? strdup (dir) : NULL;
}

//  Removes a directory tree below /tmp (never anything else).
static inline void
zt_rmtree (const char *dir)
{
    if (!dir || strncmp (dir, "/tmp/", 5) != 0)
        return;
    DIR *handle = opendir (dir);
    if (handle) {
        struct dirent *entry;
        while ((entry = readdir (handle))) {
            if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
                continue;
            char path[4096];
            int length = snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
            if (length < 0 || length >= (int) sizeof path)
                continue;
            struct stat st;
            if (lstat (path, &st) == 0 && S_ISDIR (st.st_mode))
                zt_rmtree (path);
            else
                unlink (path);
        }
        closedir (handle);
    }
    rmdir (dir);
}

//  Absolute path of a program built in the tree ("zube-broker").
static inline const char *
zt_program (const char *name)
{
    static char paths[8][512];
    static int next = 0;
    char *path = paths[next++ % 8];
    const char *builddir = getenv ("ZUBE_BUILDDIR");
    snprintf (path, 512, "%s/%s", builddir ? builddir : ".", name);
    return path;
}

//  Starts argv[0] (a path) with argv; stdout and stderr go to log_path
//  (appended) when given, else /dev/null. tied: the child is killed when
//  this test process dies (a crashed test leaves no server behind).
//  Returns the pid, or -1.
static inline pid_t
zt_spawn_ex (char *const argv[], const char *log_path, bool tied)
{
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid != 0)
        return pid;
    if (tied) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
    }
    setpgid (0, 0);
    int fd = open (log_path ? log_path : "/dev/null",
                   O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2 (fd, STDOUT_FILENO);
        dup2 (fd, STDERR_FILENO);
        close (fd);
    }
    int null_fd = open ("/dev/null", O_RDONLY);
    if (null_fd >= 0) {
        dup2 (null_fd, STDIN_FILENO);
        close (null_fd);
    }
    execv (argv[0], argv);
    _exit (127);
}

static inline pid_t
zt_spawn (char *const argv[], const char *log_path)
{
    return zt_spawn_ex (argv, log_path, false);
}

//  Stops pid (SIGSTOP) and waits until every one of its threads is stopped:
//  the signal takes effect asynchronously, and a thread still running can
//  answer one more request. True once stopped (within a second).
static inline bool
zt_freeze (pid_t pid)
{
    kill (pid, SIGSTOP);
    char dir[64];
    snprintf (dir, sizeof dir, "/proc/%d/task", (int) pid);
    for (int waited = 0; waited < 1000; waited += 5) {
        DIR *tasks = opendir (dir);
        if (!tasks)
            return false;
        bool all = true;
        struct dirent *entry;
        while (all && (entry = readdir (tasks))) {
            if (entry->d_name[0] == '.')
                continue;
            char path[sizeof dir + sizeof entry->d_name + 8], state = 0;
            snprintf (path, sizeof path, "%s/%s/stat", dir, entry->d_name);
            FILE *file = fopen (path, "r");
            //  "pid (comm) S ...": the state follows the last ')'.
            char line[512] = "";
            if (file) {
                if (!fgets (line, sizeof line, file))
                    line[0] = 0;
                fclose (file);
            }
            char *paren = strrchr (line, ')');
            if (paren && paren[1] == ' ')
                state = paren[2];
            all = state == 'T' || state == 't';
        }
        closedir (tasks);
        if (all)
            return true;
        usleep (5000);
    }
    return false;
}

//  Sends sig, then waits up to timeout_ms for the process to end (SIGKILL
//  after that). Returns the wait status, or -1.
static inline int
zt_stop (pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill (pid, sig);
    int status = 0;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t rc = waitpid (pid, &status, WNOHANG);
        if (rc == pid)
            return status;
        if (rc < 0)
            return -1;
        usleep (10000);
    }
    kill (pid, SIGKILL);
    waitpid (pid, &status, 0);
    return status;
}

//  Polls probe (arg) every 20 ms until it answers true, for up to
//  timeout_ms. False if the process ends first or time runs out (it is
//  then killed); *pid_p is reset to 0 whenever false is returned.
typedef bool (zt_probe_fn) (void *arg);

static inline bool
zt_wait_ready (pid_t *pid_p, int timeout_ms, zt_probe_fn *probe, void *arg)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (probe (arg))
            return true;
        if (waitpid (*pid_p, NULL, WNOHANG) == *pid_p) {
            *pid_p = 0;
            return false;
        }
        usleep (20000);
    }
    zt_stop (*pid_p, SIGKILL, 1000);
    *pid_p = 0;
    return false;
}

//  True once something accepts TCP connections on 127.0.0.1:port.
static inline bool
zt_wait_port (int port, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons (port),
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
        int rc = connect (fd, (struct sockaddr *) &addr, sizeof addr);
        close (fd);
        if (rc == 0)
            return true;
        usleep (20000);
    }
    return false;
}

static inline int64_t
zt_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Reads a whole small file into a malloc'd string (NULL if unreadable).
static inline char *
zt_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    size_t cap = 4096, used = 0;
    char *text = malloc (cap);
    size_t n;
    while ((n = fread (text + used, 1, cap - used - 1, file)) > 0) {
        used += n;
        if (cap - used < 2)
            text = realloc (text, cap *= 2);
    }
    text[used] = 0;
    fclose (file);
    return text;
}

//  The absolute path of program NAME in $PATH (a static buffer), or NULL.
static inline const char *
zt_which (const char *name)
{
    static char found[1024];
    const char *path = getenv ("PATH");
    while (path && *path) {
        size_t len = strcspn (path, ":");
        int used = snprintf (found, sizeof found, "%.*s/%s", (int) len, path, name);
        if (len && used > 0 && used < (int) sizeof found && access (found, X_OK) == 0)
            return found;
        path += len + (path[len] == ':');
    }
    return NULL;
}

//  Sends inline commands ("SELECT 3\r\nFLUSHDB\r\n") to the Redis server on
//  127.0.0.1:port, then QUIT, and answers all it wrote back (malloc'd), or
//  NULL when it cannot be reached. For fixtures, without a client library.
static inline char *
zt_redis_send (int port, const char *commands)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons (port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    struct timeval timeout = {.tv_sec = 5};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
        close (fd);
        return NULL;
    }
    size_t len = strlen (commands);
    char *request = malloc (len + 8);
    memcpy (request, commands, len);
    memcpy (request + len, "QUIT\r\n", 7);
    bool sent = send (fd, request, len + 6, MSG_NOSIGNAL) == (ssize_t) (len + 6);
    free (request);
    size_t cap = 4096, used = 0;
    char *reply = malloc (cap);
    ssize_t got;
    while (sent && (got = recv (fd, reply + used, cap - used - 1, 0)) > 0) {
        used += (size_t) got;
        if (cap - used < 2)
            reply = realloc (reply, cap *= 2);
    }
    reply[used] = 0;
    close (fd);
    if (!sent) {
        free (reply);
        return NULL;
    }
    return reply;
}

//  A redis-server of a test, durable as `zube up` runs it (appendonly,
//  appendfsync always, no RDB saves), on 127.0.0.1:port in dir.
typedef struct {
    pid_t pid;
    //  0 before zt_redis_start: a free port is taken (and kept on restart).
    int port;
    //  "" before zt_redis_start: a new temporary directory (kept on restart).
    char dir[256];
} zt_redis_t;

//  Starts (or restarts) the server and waits until it answers, its data
//  loaded. False when redis-server is missing or does not come up.
//  EXISTS is refused while the AOF loads, so ":0" means ready.
static inline bool
zt_redis_ready (void *arg)
{
    zt_redis_t *redis = (zt_redis_t *) arg;
    char *reply = zt_redis_send (redis->port, "EXISTS zt-ready\r\n");
    bool ready = reply && strncmp (reply, ":0", 2) == 0;
    free (reply);
    return ready;
}

static inline bool
zt_redis_start (zt_redis_t *redis)
{
    const char *program = zt_which ("redis-server");
    if (!program)
        return false;
    if (!redis->dir[0]) {
        char *dir = zt_tempdir ("redis");
        if (!dir)
            return false;
        snprintf (redis->dir, sizeof redis->dir, "%s", dir);
        free (dir);
    }
    if (!redis->port && (redis->port = zt_free_port (1)) <= 0)
        return false;
    char port[16], log[300];
    snprintf (port, sizeof port, "%d", redis->port);
    snprintf (log, sizeof log, "%s/redis.log", redis->dir);
    char *argv[] = {(char *) program, "--port", port, "--bind", "127.0.0.1",
                    "--dir", redis->dir, "--save", "", "--appendonly", "yes",
                    "--appendfsync", "always", "--daemonize", "no", "--databases", "64",
                    NULL};
    redis->pid = zt_spawn (argv, log);
    if (redis->pid <= 0)
        return false;
    return zt_wait_ready (&redis->pid, 10000, zt_redis_ready, redis);
}

//  Stops the server with sig (SIGTERM: a clean shutdown; SIGKILL: a crash),
//  keeping its directory and port for zt_redis_start.
static inline void
zt_redis_stop (zt_redis_t *redis, int sig)
{
    if (redis->pid > 0)
        zt_stop (redis->pid, sig, 5000);
    redis->pid = 0;
}

//  Stops the server and removes its directory.
static inline void
zt_redis_destroy (zt_redis_t *redis)
{
    zt_redis_stop (redis, SIGTERM);
    if (redis->dir[0])
        zt_rmtree (redis->dir);
    redis->dir[0] = 0;
    redis->port = 0;
}

#endif
