/*  test_bench_api - `zube-bench api` runs end to end, short: its JSON has
    every figure, and it leaves no process and no folder behind, also when
    interrupted. Speed is the bench's business, never checked here. */
#define _GNU_SOURCE
#include "../zt_cluster.h"
#include <ctype.h>
#include <math.h>

static char *s_dir;

//  --------------------------------------------------------------------------
//  Running zube-bench

//  Runs zube-bench with args (NULL-terminated); kills it after timeout_ms.
static zt_run_t
s_run (int timeout_ms, char **args)
{
    char *argv[32] = {(char *) zt_program ("zube-bench")};
    int argc = 1;
    for (; args[argc - 1] && argc < 31; argc++)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;
    return zt_run_capture (timeout_ms, argv);
}

//  --------------------------------------------------------------------------
//  Leftovers

//  The command line of pid, NUL separators as spaces ("" if gone).
static void
s_cmdline (pid_t pid, char *buf, size_t size)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/cmdline", (int) pid);
    buf[0] = 0;
    FILE *file = fopen (path, "rb");
    if (!file)
        return;
    size_t used = fread (buf, 1, size - 1, file);
    fclose (file);
    for (size_t i = 0; i < used; i++)
        if (buf[i] == 0)
            buf[i] = ' ';
    buf[used] = 0;
}

//  The pid of a process whose command line contains needle, or 0.
static pid_t
s_process_with (const char *needle)
{
    DIR *proc = opendir ("/proc");
    pid_t found = 0;
    struct dirent *entry;
    while (proc && !found && (entry = readdir (proc))) {
        if (!isdigit ((unsigned char) entry->d_name[0]))
            continue;
        char path[300];
        snprintf (path, sizeof path, "/proc/%s/cmdline", entry->d_name);
        FILE *file = fopen (path, "rb");
        if (!file)
            continue;
        char cmdline[8192];
        size_t size = fread (cmdline, 1, sizeof cmdline - 1, file);
        fclose (file);
        for (size_t i = 0; i < size; i++)
            if (cmdline[i] == 0)
                cmdline[i] = ' ';
        cmdline[size] = 0;
        if (strstr (cmdline, needle) && atoi (entry->d_name) != getpid ())
            found = atoi (entry->d_name);
    }
    if (proc)
        closedir (proc);
    return found;
}

//  The children of parent (by /proc/PID/stat), up to max of them.
static size_t
s_children (pid_t parent, pid_t *pids, size_t max)
{
    DIR *proc = opendir ("/proc");
    size_t count = 0;
    struct dirent *entry;
    while (proc && count < max && (entry = readdir (proc))) {
        if (!isdigit ((unsigned char) entry->d_name[0]))
            continue;
        char path[300];
        snprintf (path, sizeof path, "/proc/%s/stat", entry->d_name);
        char *stat = zt_read_file (path);
        char *paren = stat ? strrchr (stat, ')') : NULL;
        int ppid = 0;
        char state = 0;
        if (paren && sscanf (paren + 1, " %c %d", &state, &ppid) == 2 && ppid == parent
            && state != 'Z')
            pids[count++] = atoi (entry->d_name);
        free (stat);
    }
    if (proc)
        closedir (proc);
    return count;
}

//  --------------------------------------------------------------------------
//  The JSON object: one, with the keys the bench promises

typedef struct {
    char keys[128][64];
    char values[128][256];      //  strings unquoted, numbers as written
    bool is_string[128];
    int count;
} s_json_t;

//  Reads a flat JSON object of strings, numbers and booleans (what the
//  bench prints). False if text is not exactly one such object.
static bool
s_json_parse (s_json_t *json, const char *text)
{
    memset (json, 0, sizeof *json);
    const char *at = text;
#define S_SPACE()                               \
    while (isspace ((unsigned char) *at))       \
        at++
    S_SPACE ();
    if (*at++ != '{')
        return false;
    S_SPACE ();
    if (*at == '}')
        at++;
    else
        while (json->count < 128) {
            int slot = json->count++;
            S_SPACE ();
            if (*at++ != '"')
                return false;
            size_t used = 0;
            while (*at && *at != '"' && used + 1 < sizeof json->keys[slot])
                json->keys[slot][used++] = *at++;
            if (*at++ != '"')
                return false;
            S_SPACE ();
            if (*at++ != ':')
                return false;
            S_SPACE ();
            used = 0;
            if (*at == '"') {
                json->is_string[slot] = true;
                at++;
                while (*at && *at != '"' && used + 1 < sizeof json->values[slot]) {
                    if (*at == '\\' && at[1])
                        at++;
                    json->values[slot][used++] = *at++;
                }
                if (*at++ != '"')
                    return false;
            }
            else {
                while (*at && !isspace ((unsigned char) *at) && *at != ',' && *at != '}'
                       && used + 1 < sizeof json->values[slot])
                    json->values[slot][used++] = *at++;
                if (used == 0)
                    return false;
            }
            S_SPACE ();
            if (*at == ',') {
                at++;
                continue;
            }
            if (*at++ != '}')
                return false;
            break;
        }
    S_SPACE ();
#undef S_SPACE
    return *at == 0;
}

static const char *
s_json_get (s_json_t *json, const char *key, bool string)
{
    for (int i = 0; i < json->count; i++)
        if (strcmp (json->keys[i], key) == 0 && json->is_string[i] == string)
            return json->values[i];
    return NULL;
}

static double
s_json_number (s_json_t *json, const char *key)
{
    const char *text = s_json_get (json, key, false);
    ZT_ASSERT_MSG (text, "no number \"%s\"", key);
    char *end = NULL;
    double value = strtod (text, &end);
    ZT_ASSERT_MSG (end && *end == 0, "\"%s\" is not a number: %s", key, text);
    return value;
}

//  One short run against store; every key, sane values, nothing left.
static void
s_bench_short (const char *store)
{
    char *args[] = {"api", "--store", (char *) store, "--clients", "4", "--requests", "2000",
                    "--json", NULL};
    zt_run_t result = s_run (300000, args);
    ZT_ASSERT_MSG (result.status == 0, "exit %d; stdout:\n%s\nstderr:\n%s", result.status,
                   result.out ? result.out : "", result.err ? result.err : "");
    s_json_t json;
    ZT_ASSERT_MSG (s_json_parse (&json, result.out), "not exactly one JSON object:\n%s",
                   result.out);
    const char *store_name = s_json_get (&json, "store", true);
    ZT_ASSERT_MSG (store_name && strcmp (store_name, store) == 0, "store is %s",
                   store_name ? store_name : "missing");
    ZT_ASSERT_INT_EQ ((long) s_json_number (&json, "clients"), 4);
    const char *positive[] = {"creates_per_s", "updates_per_s", "gets_per_s", "raw_per_s",
                              "ratio", "watch_p50_ms", "watch_p99_ms", "watch_writes",
                              "watch_events", "value_bytes"};
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++) {
        double value = s_json_number (&json, positive[i]);
        ZT_ASSERT_MSG (value > 0 && isfinite (value), "%s is %f in:\n%s", positive[i], value,
                       result.out);
    }
    double p50 = s_json_number (&json, "watch_p50_ms");
    double p99 = s_json_number (&json, "watch_p99_ms");
    ZT_ASSERT_MSG (p99 >= p50 && p99 < 60000, "watch p50 %f, p99 %f", p50, p99);
    //  From the acknowledgement it may be 0: events can outrun replies.
    double after_ack = s_json_number (&json, "watch_after_ack_p99_ms");
    ZT_ASSERT_MSG (after_ack >= 0 && after_ack < 60000, "watch after ack p99 %f", after_ack);
    //  Each phase did what was asked, without an error.
    const char *phases[] = {"create_ok", "update_ok", "get_ok", "raw_ok"};
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++)
        ZT_ASSERT_MSG ((long) s_json_number (&json, phases[i]) == 2000, "%s is %s",
                       phases[i], s_json_get (&json, phases[i], false));
    ZT_ASSERT_INT_EQ ((long) s_json_number (&json, "errors"), 0);
    ZT_ASSERT_INT_EQ ((long) s_json_number (&json, "watch_missed"), 0);
    ZT_ASSERT_INT_EQ ((long) s_json_number (&json, "watch_writes"), 2000);

    //  Nothing left: its folder, any process of its run. (Other folders
    //  are not looked at: another zube-bench may run meanwhile.)
    const char *dir = s_json_get (&json, "temp_dir", true);
    const char *endpoint = s_json_get (&json, "bus_endpoint", true);
    ZT_ASSERT (dir && endpoint && strncmp (dir, "/tmp/zube-bench-api-", 20) == 0);
    ZT_ASSERT_MSG (access (dir, F_OK) != 0, "%s still exists", dir);
    pid_t left = s_process_with (dir);
    ZT_ASSERT_MSG (!left, "pid %d still runs with %s", (int) left, dir);
    left = s_process_with (endpoint);
    ZT_ASSERT_MSG (!left, "pid %d still runs with %s", (int) left, endpoint);
    zt_run_free (&result);
}

static void
test_bench_api_lmdb (void)
{
    s_bench_short ("lmdb");
}

static void
test_bench_api_redis (void)
{
    s_bench_short ("redis");
}

//  SIGINT in the middle of a run: the bench stops what it started and
//  removes its folder.
static void
test_bench_api_interrupted (void)
{
    char *argv[] = {(char *) zt_program ("zube-bench"), "api", "--store", "lmdb",
                    "--clients", "2", "--duration", "60s", NULL};
    char out_path[600], err_path[600];
    snprintf (out_path, sizeof out_path, "%s/interrupted.out", s_dir);
    snprintf (err_path, sizeof err_path, "%s/interrupted.err", s_dir);
    pid_t bench = zt_run_start (argv, out_path, err_path);
    ZT_ASSERT (bench > 0);
    //  Wait for the broker and the apiserver, then for the phases to run.
    //  Its folder, from the apiserver's --data-dir (a child just forked
    //  shows the bench's own command line until it has exec'd).
    pid_t children[8];
    size_t count = 0;
    char dir[64] = "";
    for (int waited = 0; waited < 60000 && (count < 2 || !dir[0]); waited += 50) {
        usleep (50000);
        count = s_children (bench, children, 8);
        for (size_t i = 0; i < count && !dir[0]; i++) {
            char cmdline[4096];
            s_cmdline (children[i], cmdline, sizeof cmdline);
            char *at = strstr (cmdline, "/tmp/zube-bench-api-");
            if (at)
                snprintf (dir, sizeof dir, "%.26s", at);
        }
    }
    ZT_ASSERT_MSG (count >= 2, "the bench started %zu processes", count);
    ZT_ASSERT_MSG (dir[0] && access (dir, F_OK) == 0, "no folder of the bench found");
    char *out = NULL;
    for (int waited = 0; waited < 60000; waited += 50) {
        free (out);
        out = zt_read_file (out_path);
        if (out && strstr (out, "measuring"))
            break;
        usleep (50000);
    }
    ZT_ASSERT_MSG (out && strstr (out, "measuring"), "the bench did not start measuring:\n%s",
                   out ? out : "");
    free (out);
    usleep (500000);
    kill (bench, SIGINT);
    int status = zt_run_wait (bench, 60000);
    char *err = zt_read_file (err_path);
    ZT_ASSERT_MSG (status == 1, "exit %d after SIGINT; stderr:\n%s", status, err ? err : "");
    ZT_ASSERT_STR_CONTAINS (err, "interrupted");
    //  A sanitizer report ends the bench before its teardown (an answer
    //  that came after the interruption once read past an array).
    ZT_ASSERT_MSG (!strstr (err, "runtime error") && !strstr (err, "Sanitizer"),
                   "a sanitizer report after SIGINT:\n%s", err);
    for (size_t i = 0; i < count; i++)
        ZT_ASSERT_MSG (!zt_process_alive (children[i]), "child %d still runs", (int) children[i]);
    ZT_ASSERT_MSG (access (dir, F_OK) != 0, "%s still exists; stderr:\n%s", dir, err);
    free (err);
    pid_t left = s_process_with (dir);
    ZT_ASSERT_MSG (!left, "pid %d still runs with %s", (int) left, dir);
}

int
main (void)
{
    s_dir = zt_tempdir ("bench-api");
    ZT_RUN (test_bench_api_lmdb);
    if (zt_which ("redis-server"))
        ZT_RUN (test_bench_api_redis);
    else
        zt_skip ("test_bench_api_redis", "redis-server is not installed");
    ZT_RUN (test_bench_api_interrupted);
    zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
