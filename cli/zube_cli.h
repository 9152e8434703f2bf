/*  zube_cli - what zubectl, zube and zube-bench share: flag parsing in
    kubectl's style, durations, tables, JSON strings, and finding and
    running sibling programs (zube-broker).

    Internal to cli/: compiled into each program, not part of libzube. */
#ifndef ZUBE_CLI_H_INCLUDED
#define ZUBE_CLI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef enum {
    ZUBE_CLI_BOOL,       //  bool *: --flag, --flag=true|false
    ZUBE_CLI_STRING,     //  const char **: points into argv
    ZUBE_CLI_INT,        //  long *
    ZUBE_CLI_DURATION    //  int64_t * milliseconds: "5s", "500ms", "1m30s", or seconds
} zube_cli_flag_type_t;

typedef struct {
    const char *name;            //  long name without dashes: "output"
    char short_name;             //  'o', or 0
    zube_cli_flag_type_t type;
    void *value;
    const char *value_name;      //  for usage: "FILE", "N"
    const char *help;
} zube_cli_flag_t;

//  zube_cli_parse results besides a count of positional arguments.
#define ZUBE_CLI_ERROR -1
#define ZUBE_CLI_HELP -2

//  Parses args against flag tables (each ends with a zeroed entry; the list
//  of tables ends with NULL). Positional arguments are stored in order in
//  positional (room for argc). With stop_at_positional, parsing ends at
//  the first positional argument, which is stored with everything after
//  it. "--" ends flags. -h/--help returns ZUBE_CLI_HELP. A bad or unknown
//  flag prints "error: ..." and "See 'COMMAND --help' for usage." to
//  stderr and returns ZUBE_CLI_ERROR. Else the positional count.
int zube_cli_parse (const char *command, const zube_cli_flag_t *const *tables, int argc,
                    char **argv, char **positional, bool stop_at_positional);

//  Prints a "Flags:" section for the tables (flags without help are not
//  shown).
void zube_cli_print_flags (FILE *out, const char *title, const zube_cli_flag_t *const *tables);

//  A kubectl duration ("5s", "500ms", "1m30s", "1.5h", "2" = seconds) in
//  milliseconds; -1 if it is not one.
int64_t zube_cli_duration_parse (const char *text);

//  "350ms", "12s", "3m4s", "2h5m", "4d3h" (like kubectl's AGE column).
char *zube_cli_duration_format (int64_t ms, char *buf, size_t buf_size);

//  Prints "error: MESSAGE\n" to stderr (kubectl's style).
void zube_cli_error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

//  Aligned columns separated by three spaces, like kubectl's tables.
typedef struct _zube_cli_table_t zube_cli_table_t;
zube_cli_table_t *zube_cli_table_new (int columns);
void zube_cli_table_destroy (zube_cli_table_t **self_p);
//  Adds a row of `columns` cells (copied). NULL cells print as "<none>".
void zube_cli_table_add (zube_cli_table_t *self, const char *const *cells);
//  Same with printf-style cells: each argument is a string.
void zube_cli_table_addv (zube_cli_table_t *self, ...);
void zube_cli_table_print (zube_cli_table_t *self, FILE *out);

//  Writes a JSON string literal, quotes included.
void zube_cli_json_string (FILE *out, const char *text);

//  Absolute path of a program installed or built beside the running one
//  (for zube-broker): the running program's folder (and the folder above
//  when it runs from libtool's .libs/), else NULL: then the caller
//  exec's the bare name through $PATH. Writes into buf.
const char *zube_cli_sibling_program (const char *name, char *buf, size_t buf_size);

//  Starts argv (argv[0] a path, or a name looked up in $PATH) in its own
//  session (so a Ctrl-C in the terminal reaches only its parent), with
//  stdin from /dev/null and stdout and stderr appended to log_path (or
//  /dev/null). Returns the pid, or -1 with errno set. A program that
//  cannot be executed exits 127.
//  A free loopback port whose next count-1 ports are free too (a broker
//  binds port, port+1 and port+2), or -1.
int zube_cli_free_ports (int count);
pid_t zube_cli_spawn (char *const argv[], const char *log_path);
//  The same; tied: the child also dies with this process
//  (PR_SET_PDEATHSIG), so not even a SIGKILL of it leaves a server behind.
//  Call it from the main thread only: the signal follows the thread that
//  forked.
pid_t zube_cli_spawn_tied (char *const argv[], const char *log_path, bool tied);

//  True if pid is alive and its command line contains `needle` (guards
//  against a recycled pid); needle NULL: any process.
bool zube_cli_process_alive (pid_t pid, const char *needle);

//  Sends SIGTERM, waits up to timeout_ms, then SIGKILL. Reaps the process
//  if it is our child. Returns 0 once it is gone, -1 if it survived.
int zube_cli_process_stop (pid_t pid, int timeout_ms);

//  Pid files: one decimal number and a newline.
int zube_cli_pidfile_write (const char *path, pid_t pid);
pid_t zube_cli_pidfile_read (const char *path);

//  mkdir -p with mode.
int zube_cli_mkdir_p (const char *path, int mode);

//  Monotonic clock.
int64_t zube_cli_now_ns (void);

#endif
