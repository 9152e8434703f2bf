/*  zube_cli - what zubectl, zube and zube-bench share.

    Flags follow kubectl (cobra/pflag): --name value, --name=value, -o
    value, -ovalue, -o=value, boolean --flag or --flag=false, "--" ends
    flags, and flags may come before or after positional arguments. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "zube_cli.h"

void
zube_cli_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fputs ("error: ", stderr);
    vfprintf (stderr, format, args);
    fputc ('\n', stderr);
    va_end (args);
}

static const zube_cli_flag_t *
s_find_long (const zube_cli_flag_t *const *tables, const char *name, size_t length)
{
    for (int t = 0; tables[t]; t++)
        for (const zube_cli_flag_t *flag = tables[t]; flag->name; flag++)
            if (strlen (flag->name) == length && strncmp (flag->name, name, length) == 0)
                return flag;
    return NULL;
}

static const zube_cli_flag_t *
s_find_short (const zube_cli_flag_t *const *tables, char name)
{
    for (int t = 0; tables[t]; t++)
        for (const zube_cli_flag_t *flag = tables[t]; flag->name; flag++)
            if (flag->short_name && flag->short_name == name)
                return flag;
    return NULL;
}

static int
s_set_value (const char *command, const zube_cli_flag_t *flag, const char *spelling,
             const char *value)
{
    switch (flag->type) {
        case ZUBE_CLI_BOOL:
            if (!value || strcasecmp (value, "true") == 0 || strcmp (value, "1") == 0)
                *(bool *) flag->value = true;
            else
            if (strcasecmp (value, "false") == 0 || strcmp (value, "0") == 0)
                *(bool *) flag->value = false;
            else {
                zube_cli_error ("invalid argument \"%s\" for \"%s\" flag: expected true or false",
                                value, spelling);
                return -1;
            }
            break;
        case ZUBE_CLI_STRING:
            *(const char **) flag->value = value;
            break;
        case ZUBE_CLI_INT: {
            char *end = NULL;
            errno = 0;
            long number = strtol (value, &end, 10);
            if (errno || end == value || *end) {
                zube_cli_error ("invalid argument \"%s\" for \"%s\" flag: not an integer", value,
                                spelling);
                return -1;
            }
            *(long *) flag->value = number;
            break;
        }
        case ZUBE_CLI_DURATION: {
            int64_t ms = zube_cli_duration_parse (value);
            if (ms < 0) {
                zube_cli_error ("invalid argument \"%s\" for \"%s\" flag: not a duration "
                                "(like 5s, 500ms, 1m30s, or a number of seconds)",
                                value, spelling);
                return -1;
            }
            *(int64_t *) flag->value = ms;
            break;
        }
    }
    (void) command;
    return 0;
}

static int
s_usage_hint (const char *command)
{
    fprintf (stderr, "See '%s --help' for usage.\n", command);
    return ZUBE_CLI_ERROR;
}

int
zube_cli_parse (const char *command, const zube_cli_flag_t *const *tables, int argc,
                char **argv, char **positional, bool stop_at_positional)
{
    int count = 0;
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i];
        if (strcmp (arg, "--") == 0) {
            while (++i < argc)
                positional[count++] = argv[i];
            break;
        }
        if (arg[0] != '-' || arg[1] == 0) {
            if (stop_at_positional) {
                while (i < argc)
                    positional[count++] = argv[i++];
                break;
            }
            positional[count++] = arg;
            continue;
        }
        if (strcmp (arg, "-h") == 0 || strcmp (arg, "--help") == 0)
            return ZUBE_CLI_HELP;

        const zube_cli_flag_t *flag = NULL;
        const char *value = NULL;
        char spelling[128];
        if (arg[1] == '-') {
            const char *name = arg + 2;
            const char *equals = strchr (name, '=');
            size_t length = equals ? (size_t) (equals - name) : strlen (name);
            flag = s_find_long (tables, name, length);
            snprintf (spelling, sizeof spelling, "--%.*s", (int) length, name);
            if (!flag) {
                zube_cli_error ("unknown flag: %s", spelling);
                return s_usage_hint (command);
            }
            if (equals)
                value = equals + 1;
        }
        else {
            flag = s_find_short (tables, arg[1]);
            snprintf (spelling, sizeof spelling, "-%c", arg[1]);
            if (!flag) {
                zube_cli_error ("unknown shorthand flag: '%c' in %s", arg[1], arg);
                return s_usage_hint (command);
            }
            if (arg[2] == '=')
                value = arg + 3;
            else
            if (arg[2])
                value = arg + 2;
        }
        if (!value && flag->type != ZUBE_CLI_BOOL) {
            if (i + 1 >= argc) {
                zube_cli_error ("flag needs an argument: %s", spelling);
                return s_usage_hint (command);
            }
            value = argv[++i];
        }
        if (s_set_value (command, flag, spelling, value) != 0)
            return s_usage_hint (command);
    }
    return count;
}

void
zube_cli_print_flags (FILE *out, const char *title, const zube_cli_flag_t *const *tables)
{
    bool any = false;
    for (int t = 0; tables[t]; t++)
        for (const zube_cli_flag_t *flag = tables[t]; flag->name; flag++) {
            if (!flag->help)
                continue;
            if (!any)
                fprintf (out, "\n%s:\n", title);
            any = true;
            char left[96];
            int n = 0;
            if (flag->short_name)
                n = snprintf (left, sizeof left, "  -%c, --%s", flag->short_name, flag->name);
            else
                n = snprintf (left, sizeof left, "      --%s", flag->name);
            if (flag->type != ZUBE_CLI_BOOL && n > 0 && (size_t) n < sizeof left)
                snprintf (left + n, sizeof left - n, " %s",
                          flag->value_name ? flag->value_name : "VALUE");
            fprintf (out, "%-34s %s\n", left, flag->help);
        }
}

int64_t
zube_cli_duration_parse (const char *text)
{
    if (!text || !*text)
        return -1;
    //  A plain number is seconds (kubectl's --request-timeout accepts it).
    char *end = NULL;
    errno = 0;
    double plain = strtod (text, &end);
    if (!errno && end != text && *end == 0)
        return plain < 0 || plain > 1e9 ? -1 : (int64_t) llround (plain * 1000.0);

    static const struct {
        const char *unit;
        double ms;
    } units[] = {
        {.unit = "ns", .ms = 1e-6}, {.unit = "us", .ms = 1e-3}, {.unit = "\xc2\xb5s", .ms = 1e-3},
        {.unit = "ms", .ms = 1.0},  {.unit = "s", .ms = 1000.0},  {.unit = "m", .ms = 60000.0},
        {.unit = "h", .ms = 3600000.0},
    };
    double total = 0;
    const char *cursor = text;
    while (*cursor) {
        if (!isdigit ((unsigned char) *cursor) && *cursor != '.')
            return -1;
        errno = 0;
        double number = strtod (cursor, &end);
        if (errno || end == cursor || number < 0)
            return -1;
        cursor = end;
        double scale = -1;
        size_t best = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t length = strlen (units[i].unit);
            //  Longest match first: "ms" before "m", "ns" before "s".
            if (strncmp (cursor, units[i].unit, length) == 0 && length > best) {
                best = length;
                scale = units[i].ms;
            }
        }
        if (scale < 0)
            return -1;
        cursor += best;
        total += number * scale;
    }
    if (total > 1e12)
        return -1;
    return (int64_t) llround (total);
}

char *
zube_cli_duration_format (int64_t ms, char *buf, size_t buf_size)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (ms < 1000)
        snprintf (buf, buf_size, "%" PRId64 "ms", ms);
    else
    if (s < 60)
        snprintf (buf, buf_size, "%" PRId64 "s", s);
    else
    if (s < 3600)
        snprintf (buf, buf_size, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    else
    if (s < 86400)
        snprintf (buf, buf_size, "%" PRId64 "h%" PRId64 "m", s / 3600, (s % 3600) / 60);
    else
        snprintf (buf, buf_size, "%" PRId64 "d%" PRId64 "h", s / 86400, (s % 86400) / 3600);
    return buf;
}

struct _zube_cli_table_t {
    int columns;
    size_t rows;
    size_t cap;
    char **cells;   //  rows * columns
};

zube_cli_table_t *
zube_cli_table_new (int columns)
{
    zube_cli_table_t *self = calloc (1, sizeof *self);
    if (self)
        self->columns = columns;
    return self;
}

void
zube_cli_table_destroy (zube_cli_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_cli_table_t *self = *self_p;
    for (size_t i = 0; i < self->rows * self->columns; i++)
        free (self->cells[i]);
    free (self->cells);
    free (self);
    *self_p = NULL;
}

void
zube_cli_table_add (zube_cli_table_t *self, const char *const *cells)
{
    if (self->rows == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        char **grown = realloc (self->cells, cap * self->columns * sizeof *grown);
        if (!grown)
            return;
        self->cells = grown;
        self->cap = cap;
    }
    for (int c = 0; c < self->columns; c++)
        self->cells[self->rows * self->columns + c] = strdup (cells[c] ? cells[c] : "<none>");
    self->rows++;
}

void
zube_cli_table_addv (zube_cli_table_t *self, ...)
{
    const char *cells[64];
    va_list args;
    va_start (args, self);
    for (int c = 0; c < self->columns && c < 64; c++)
        cells[c] = va_arg (args, const char *);
    va_end (args);
    zube_cli_table_add (self, cells);
}

void
zube_cli_table_print (zube_cli_table_t *self, FILE *out)
{
    size_t widths[64] = {0};
    for (size_t r = 0; r < self->rows; r++)
        for (int c = 0; c < self->columns && c < 64; c++) {
            size_t length = strlen (self->cells[r * self->columns + c]);
            if (length > widths[c])
                widths[c] = length;
        }
    for (size_t r = 0; r < self->rows; r++) {
        for (int c = 0; c < self->columns && c < 64; c++) {
            const char *cell = self->cells[r * self->columns + c];
            if (c == self->columns - 1)
                fputs (cell, out);
            else
                fprintf (out, "%-*s   ", (int) widths[c], cell);
        }
        fputc ('\n', out);
    }
}

void
zube_cli_json_string (FILE *out, const char *text)
{
    fputc ('"', out);
    for (const unsigned char *p = (const unsigned char *) (text ? text : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf (out, "\\%c", *p);
        else
        if (*p == '\n')
            fputs ("\\n", out);
        else
        if (*p == '\t')
            fputs ("\\t", out);
        else
        if (*p < 0x20)
            fprintf (out, "\\u%04x", *p);
        else
            fputc (*p, out);
    }
    fputc ('"', out);
}

static bool
s_executable (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode) && access (path, X_OK) == 0;
}

const char *
zube_cli_sibling_program (const char *name, char *buf, size_t buf_size)
{
    char self_path[PATH_MAX];
    ssize_t length = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    if (length <= 0)
        return NULL;
    self_path[length] = 0;
    char *slash = strrchr (self_path, '/');
    if (!slash)
        return NULL;
    *slash = 0;
    //  Run from a build tree, libtool's real binary lives in .libs/ and the
    //  wrapper script (which sets the library path) one folder up.
    size_t dir_length = strlen (self_path);
    if (dir_length >= 6 && strcmp (self_path + dir_length - 6, "/.libs") == 0) {
        snprintf (buf, buf_size, "%.*s/%s", (int) (dir_length - 6), self_path, name);
        if (s_executable (buf))
            return buf;
    }
    snprintf (buf, buf_size, "%s/%s", self_path, name);
    if (s_executable (buf))
        return buf;
    return NULL;
}

pid_t
zube_cli_spawn (char *const argv[], const char *log_path)
{
    return zube_cli_spawn_tied (argv, log_path, false);
}

pid_t
zube_cli_spawn_tied (char *const argv[], const char *log_path, bool tied)
{
    //  A pipe with close-on-exec tells the parent whether exec worked.
    int report[2];
    if (pipe2 (report, O_CLOEXEC) != 0)
        return -1;
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid < 0) {
        close (report[0]);
        close (report[1]);
        return -1;
    }
    if (pid == 0) {
        setsid ();
        if (tied) {
            prctl (PR_SET_PDEATHSIG, SIGKILL);
            if (getppid () != parent)
                _exit (127);
        }
        signal (SIGINT, SIG_DFL);
        signal (SIGTERM, SIG_DFL);
        signal (SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        int fd = open (log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, STDOUT_FILENO);
            dup2 (fd, STDERR_FILENO);
            if (fd > STDERR_FILENO)
                close (fd);
        }
        int null_fd = open ("/dev/null", O_RDONLY);
        if (null_fd >= 0) {
            dup2 (null_fd, STDIN_FILENO);
            if (null_fd > STDERR_FILENO)
                close (null_fd);
        }
        if (strchr (argv[0], '/'))
            execv (argv[0], argv);
        else
            execvp (argv[0], argv);
        int error = errno;
        if (write (report[1], &error, sizeof error) < 0) {
        }
        _exit (127);
    }
    close (report[1]);
    int error = 0;
    ssize_t n;
    do
        n = read (report[0], &error, sizeof error);
    while (n < 0 && errno == EINTR);
    close (report[0]);
    if (n == (ssize_t) sizeof error) {
        waitpid (pid, NULL, 0);
        errno = error;
        return -1;
    }
    return pid;
}

bool
zube_cli_process_alive (pid_t pid, const char *needle)
{
    if (pid <= 0)
        return false;
    //  A zombie child is dead for our purposes: reap it if it is ours.
    int status;
    if (waitpid (pid, &status, WNOHANG) == pid)
        return false;
    if (kill (pid, 0) != 0 && errno != EPERM)
        return false;
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    char *stat_text = NULL;
    FILE *file = fopen (path, "r");
    if (file) {
        char line[512];
        if (fgets (line, sizeof line, file))
            stat_text = strdup (line);
        fclose (file);
    }
    //  "pid (comm) S ...": state Z is a zombie (not our child).
    char *paren = stat_text ? strrchr (stat_text, ')') : NULL;
    bool zombie = paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
    free (stat_text);
    if (zombie)
        return false;
    if (!needle)
        return true;
    snprintf (path, sizeof path, "/proc/%d/cmdline", (int) pid);
    file = fopen (path, "rb");
    if (!file)
        return false;
    char cmdline[4096];
    size_t size = fread (cmdline, 1, sizeof cmdline - 1, file);
    fclose (file);
    for (size_t i = 0; i < size; i++)
        if (cmdline[i] == 0)
            cmdline[i] = ' ';
    cmdline[size] = 0;
    return strstr (cmdline, needle) != NULL;
}

int
zube_cli_process_stop (pid_t pid, int timeout_ms)
{
    if (pid <= 0)
        return 0;
    if (kill (pid, SIGTERM) != 0 && errno == ESRCH)
        return 0;
    int64_t deadline = zube_cli_now_ns () + (int64_t) timeout_ms * 1000000;
    while (zube_cli_now_ns () < deadline) {
        if (!zube_cli_process_alive (pid, NULL))
            return 0;
        usleep (20000);
    }
    kill (pid, SIGKILL);
    for (int i = 0; i < 250; i++) {
        if (!zube_cli_process_alive (pid, NULL))
            return 0;
        usleep (20000);
    }
    return -1;
}

int
zube_cli_pidfile_write (const char *path, pid_t pid)
{
    char temp[4096];
    snprintf (temp, sizeof temp, "%s.tmp", path);
    FILE *file = fopen (temp, "w");
    if (!file)
        return -1;
    fprintf (file, "%d\n", (int) pid);
    if (fclose (file) != 0 || rename (temp, path) != 0) {
        unlink (temp);
        return -1;
    }
    return 0;
}

pid_t
zube_cli_pidfile_read (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    int pid = -1;
    if (fscanf (file, "%d", &pid) != 1)
        pid = -1;
    fclose (file);
    return pid > 0 ? (pid_t) pid : -1;
}

int
zube_cli_mkdir_p (const char *path, int mode)
{
    char buf[4096];
    snprintf (buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir (buf, mode) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    if (mkdir (buf, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int64_t
zube_cli_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
zube_cli_free_ports (int count)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in address = {.sin_family = AF_INET,
                                      .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
        socklen_t length = sizeof address;
        if (fd < 0)
            return -1;
        if (bind (fd, (struct sockaddr *) &address, sizeof address) != 0
            || getsockname (fd, (struct sockaddr *) &address, &length) != 0) {
            close (fd);
            continue;
        }
        int base = ntohs (address.sin_port);
        close (fd);
        bool free_all = base + count < 65000;
        for (int i = 1; free_all && i < count; i++) {
            int probe = socket (AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons (base + i),
                                     .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
            if (bind (probe, (struct sockaddr *) &at, sizeof at) != 0)
                free_all = false;
            close (probe);
        }
        if (free_all)
            return base;
    }
    return -1;
}
