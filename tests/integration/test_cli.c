/*  test_cli - the client config file, and the command-line programs
    zubectl, zube and zube-bench run as a user would run them. */
#define _GNU_SOURCE
#include "../zt_cluster.h"
#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include "zube/zube.h"
#include "zube/bus.h"
#include "zube/codec.h"
#include "zube/config.h"
#include "bus.pb-c.h"
#include "../../cli/zube_cli.h"

static char *s_dir;

static void
test_config_parse_good (void)
{
    char error[512] = "";
    zube_config_t *config = zube_config_parse ("apiVersion: zube.io/v1alpha1\n"
                                               "kind: Config\n"
                                               "# a comment\n"
                                               "broker: tcp://10.0.0.1:7500\n"
                                               "certsDir: /etc/zube/certs\n"
                                               "name: alice\n"
                                               "insecure: false\n"
                                               "timeoutMs: 2500\n",
                                               NULL, "good.yaml", error, sizeof error);
    ZT_ASSERT_MSG (config, "parse failed: %s", error);
    ZT_ASSERT_STR_EQ (zube_config_broker (config), "tcp://10.0.0.1:7500");
    ZT_ASSERT_STR_EQ (zube_config_certs_dir (config), "/etc/zube/certs");
    ZT_ASSERT_STR_EQ (zube_config_name (config), "alice");
    ZT_ASSERT (!zube_config_insecure (config));
    ZT_ASSERT_INT_EQ (zube_config_timeout_ms (config), 2500);
    zube_bus_config_t bus_config;
    zube_config_bus_config (config, &bus_config);
    ZT_ASSERT_STR_EQ (bus_config.endpoint, "tcp://10.0.0.1:7500");
    ZT_ASSERT_STR_EQ (bus_config.certs_dir, "/etc/zube/certs");
    ZT_ASSERT_STR_EQ (bus_config.name, "alice");
    ZT_ASSERT (!bus_config.insecure);
    zube_config_destroy (&config);
    ZT_ASSERT (config == NULL);

    config = zube_config_parse ("broker: ipc:///tmp/x\ninsecure: true\n", NULL, "b", error,
                                sizeof error);
    ZT_ASSERT_MSG (config, "parse failed: %s", error);
    ZT_ASSERT (zube_config_insecure (config));
    ZT_ASSERT_INT_EQ (zube_config_timeout_ms (config), ZUBE_BUS_DEFAULT_TIMEOUT_MS);
    ZT_ASSERT_INT_EQ (zube_config_check (config, error, sizeof error), 0);
    zube_config_destroy (&config);
}

static void
test_config_unknown_key (void)
{
    char error[512] = "";
    zube_config_t *config = zube_config_parse ("apiVersion: zube.io/v1alpha1\n"
                                               "kind: Config\n"
                                               "broker: tcp://127.0.0.1:7400\n"
                                               "brokr: tcp://127.0.0.1:7401\n",
                                               NULL, "my.yaml", error, sizeof error);
    ZT_ASSERT (config == NULL);
    ZT_ASSERT_STR_CONTAINS (error, "my.yaml:4:");
    ZT_ASSERT_STR_CONTAINS (error, "unknown key \"brokr\"");
}

static void
test_config_bad_values (void)
{
    static const struct {
        const char *text;
        const char *expect;
    } cases[] = {
        {.text = "kind: Config\ninsecure: maybe\n", .expect = ":2: insecure must be true or false"},
        {.text = "timeoutMs: -5\n", .expect = ":1: timeoutMs must be a positive"},
        {.text = "apiVersion: v1\n", .expect = ":1: apiVersion \"v1\" is not supported"},
        {.text = "kind: Pod\n", .expect = ":1: kind \"Pod\" is not a client config"},
        {.text = "broker: localhost\n", .expect = ":1: broker \"localhost\" is not an endpoint"},
        {.text = "name: a\nname: b\n", .expect = ":2: key \"name\" appears twice"},
        {.text = "name: [a, b]\n", .expect = ":1: name must be a single value"},
        {.text = "- a\n- b\n", .expect = ":1: expected a mapping"},
        {.text = "broker: [\n", .expect = "t:2:"},
        {.text = "", .expect = "empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char error[512] = "";
        zube_config_t *config = zube_config_parse (cases[i].text, NULL, "t", error, sizeof error);
        ZT_ASSERT_MSG (config == NULL, "case %zu parsed", i);
        ZT_ASSERT_STR_CONTAINS (error, cases[i].expect);
    }
}

static void
test_config_relative_certs_dir (void)
{
    char path[512], error[512] = "";
    snprintf (path, sizeof path, "%s/cfg", s_dir);
    mkdir (path, 0755);
    snprintf (path, sizeof path, "%s/cfg/zubeconfig", s_dir);
    ZT_WRITE_FILE (path, "apiVersion: zube.io/v1alpha1\nkind: Config\n"
                         "broker: tcp://127.0.0.1:7400\ncertsDir: certs\nname: admin\n");
    zube_config_t *config = zube_config_load (path, error, sizeof error);
    ZT_ASSERT_MSG (config, "load failed: %s", error);
    char expect[512];
    snprintf (expect, sizeof expect, "%s/cfg/certs", s_dir);
    ZT_ASSERT_STR_EQ (zube_config_certs_dir (config), expect);
    ZT_ASSERT_STR_EQ (zube_config_path (config), path);
    //  No certificates there yet: the check names the missing file.
    ZT_ASSERT_INT_EQ (zube_config_check (config, error, sizeof error), -1);
    ZT_ASSERT_STR_CONTAINS (error, "broker.cert");

    //  Saved again, certsDir stays relative.
    char saved[512];
    snprintf (saved, sizeof saved, "%s/cfg/copy", s_dir);
    ZT_ASSERT_INT_EQ (zube_config_save (config, saved, error, sizeof error), 0);
    char *text = zt_read_file (saved);
    ZT_ASSERT_STR_CONTAINS (text, "certsDir: certs\n");
    ZT_ASSERT_STR_CONTAINS (text, "kind: Config\n");
    free (text);
    zube_config_destroy (&config);
}

static void
test_config_save_round_trip (void)
{
    char path[512], error[512] = "";
    snprintf (path, sizeof path, "%s/round", s_dir);
    zube_config_t *config = zube_config_new ();
    zube_config_set_broker (config, "tcp://127.0.0.1:9999");
    zube_config_set_certs_dir (config, "/x/y: z");     //  needs quoting
    zube_config_set_name (config, "bob");
    zube_config_set_timeout_ms (config, 1234);
    ZT_ASSERT_INT_EQ (zube_config_save (config, path, error, sizeof error), 0);
    zube_config_destroy (&config);
    config = zube_config_load (path, error, sizeof error);
    ZT_ASSERT_MSG (config, "load failed: %s", error);
    ZT_ASSERT_STR_EQ (zube_config_broker (config), "tcp://127.0.0.1:9999");
    ZT_ASSERT_STR_EQ (zube_config_certs_dir (config), "/x/y: z");
    ZT_ASSERT_STR_EQ (zube_config_name (config), "bob");
    ZT_ASSERT_INT_EQ (zube_config_timeout_ms (config), 1234);
    ZT_ASSERT (!zube_config_insecure (config));
    zube_config_destroy (&config);
}

static void
test_config_lookup_order (void)
{
    char home[256], path[512], env_path[512], flag_path[512], error[512] = "";
    char *saved_home = getenv ("HOME") ? strdup (getenv ("HOME")) : NULL;
    snprintf (home, sizeof home, "%s/home", s_dir);
    mkdir (home, 0755);
    setenv ("HOME", home, 1);
    unsetenv (ZUBE_CONFIG_ENV);

    //  Nothing anywhere: defaults, and the check says how to connect.
    zube_config_t *config = zube_config_resolve (NULL, error, sizeof error);
    ZT_ASSERT (config);
    ZT_ASSERT_INT_EQ (zube_config_source (config), ZUBE_CONFIG_FROM_DEFAULTS);
    ZT_ASSERT_STR_EQ (zube_config_broker (config), "tcp://127.0.0.1:7400");
    ZT_ASSERT (!zube_config_insecure (config));
    ZT_ASSERT_INT_EQ (zube_config_check (config, error, sizeof error), -1);
    ZT_ASSERT_STR_CONTAINS (error, "zube up");
    ZT_ASSERT_STR_CONTAINS (error, "--insecure");
    zube_config_destroy (&config);

    //  The home file.
    snprintf (path, sizeof path, "%s/.zube/cluster", home);
    char command[1024];
    snprintf (command, sizeof command, "mkdir -p '%s'", path);
    ZT_ASSERT_INT_EQ (system (command), 0);
    snprintf (path, sizeof path, "%s/.zube/cluster/config", home);
    ZT_WRITE_FILE (path, "broker: tcp://127.0.0.1:1001\ninsecure: true\n");
    config = zube_config_resolve (NULL, error, sizeof error);
    ZT_ASSERT_MSG (config, "%s", error);
    ZT_ASSERT_INT_EQ (zube_config_source (config), ZUBE_CONFIG_FROM_HOME);
    ZT_ASSERT_STR_EQ (zube_config_broker (config), "tcp://127.0.0.1:1001");
    zube_config_destroy (&config);

    //  ~/.zube/config wins over the default cluster's.
    snprintf (path, sizeof path, "%s/.zube/config", home);
    ZT_WRITE_FILE (path, "broker: tcp://127.0.0.1:1004\ninsecure: true\n");
    config = zube_config_resolve (NULL, error, sizeof error);
    ZT_ASSERT_MSG (config, "%s", error);
    ZT_ASSERT_INT_EQ (zube_config_source (config), ZUBE_CONFIG_FROM_HOME);
    ZT_ASSERT_STR_EQ (zube_config_broker (config), "tcp://127.0.0.1:1004");
    zube_config_destroy (&config);

    //  $ZUBE_CONFIG wins over the home files.
    snprintf (env_path, sizeof env_path, "%s/env-config", s_dir);
    ZT_WRITE_FILE (env_path, "broker: tcp://127.0.0.1:1002\ninsecure: true\n");
    setenv (ZUBE_CONFIG_ENV, env_path, 1);
    config = zube_config_resolve (NULL, error, sizeof error);
    ZT_ASSERT_MSG (config, "%s", error);
    ZT_ASSERT_INT_EQ (zube_config_source (config), ZUBE_CONFIG_FROM_ENV);
    ZT_ASSERT_STR_EQ (zube_config_broker (config), "tcp://127.0.0.1:1002");
    zube_config_destroy (&config);

    //  --config wins over both.
    snprintf (flag_path, sizeof flag_path, "%s/flag-config", s_dir);
    ZT_WRITE_FILE (flag_path, "broker: tcp://127.0.0.1:1003\ninsecure: true\n");
    config = zube_config_resolve (flag_path, error, sizeof error);
    ZT_ASSERT_MSG (config, "%s", error);
    ZT_ASSERT_INT_EQ (zube_config_source (config), ZUBE_CONFIG_FROM_FLAG);
    ZT_ASSERT_STR_EQ (zube_config_broker (config), "tcp://127.0.0.1:1003");
    zube_config_destroy (&config);

    //  A named file that does not exist is an error, not the defaults.
    snprintf (flag_path, sizeof flag_path, "%s/missing", s_dir);
    config = zube_config_resolve (flag_path, error, sizeof error);
    ZT_ASSERT (config == NULL);
    ZT_ASSERT_STR_CONTAINS (error, "missing");
    setenv (ZUBE_CONFIG_ENV, flag_path, 1);
    config = zube_config_resolve (NULL, error, sizeof error);
    ZT_ASSERT (config == NULL);
    ZT_ASSERT_STR_CONTAINS (error, "$ZUBE_CONFIG");

    unsetenv (ZUBE_CONFIG_ENV);
    if (saved_home)
        setenv ("HOME", saved_home, 1);
    free (saved_home);
}

//  --------------------------------------------------------------------------
//  Flags and durations as kubectl reads them (cli/zube_cli.c)

static void
test_cli_durations (void)
{
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {.text = "5s", .ms = 5000},       {.text = "500ms", .ms = 500},
        {.text = "1m30s", .ms = 90000},   {.text = "2", .ms = 2000},
        {.text = "1.5s", .ms = 1500},     {.text = "0", .ms = 0},
        {.text = "1h", .ms = 3600000},    {.text = "250us", .ms = 0},
        {.text = "2m", .ms = 120000},     {.text = "0.25", .ms = 250},
        {.text = "", .ms = -1},           {.text = "5x", .ms = -1},
        {.text = "s", .ms = -1},          {.text = "-1s", .ms = -1},
        {.text = "5 s", .ms = -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = zube_cli_duration_parse (cases[i].text);
        ZT_ASSERT_MSG (ms == cases[i].ms, "\"%s\" -> %lld, expected %lld", cases[i].text,
                       (long long) ms, (long long) cases[i].ms);
    }
    char buf[32];
    ZT_ASSERT_STR_EQ (zube_cli_duration_format (350, buf, sizeof buf), "350ms");
    ZT_ASSERT_STR_EQ (zube_cli_duration_format (12000, buf, sizeof buf), "12s");
    ZT_ASSERT_STR_EQ (zube_cli_duration_format (184000, buf, sizeof buf), "3m4s");
}

static void
test_cli_flags (void)
{
    const char *output = NULL, *config = NULL;
    bool insecure = false;
    long count = 0;
    int64_t timeout = -1;
    zube_cli_flag_t flags[] = {
        {.name = "output", .short_name = 'o', .type = ZUBE_CLI_STRING, .value = &output},
        {.name = "config", .type = ZUBE_CLI_STRING, .value = &config},
        {.name = "insecure", .type = ZUBE_CLI_BOOL, .value = &insecure},
        {.name = "count", .type = ZUBE_CLI_INT, .value = &count},
        {.name = "request-timeout", .type = ZUBE_CLI_DURATION, .value = &timeout},
        {0}};
    const zube_cli_flag_t *tables[] = {flags, NULL};
    char *argv[] = {"services", "-ojson", "--config=/x", "--insecure", "--count", "3",
                    "--request-timeout", "2s", "extra", "--", "--not-a-flag", NULL};
    char *positional[16];
    int n = zube_cli_parse ("t", tables, 11, argv, positional, false);
    ZT_ASSERT_INT_EQ (n, 3);
    ZT_ASSERT_STR_EQ (positional[0], "services");
    ZT_ASSERT_STR_EQ (positional[1], "extra");
    ZT_ASSERT_STR_EQ (positional[2], "--not-a-flag");
    ZT_ASSERT_STR_EQ (output, "json");
    ZT_ASSERT_STR_EQ (config, "/x");
    ZT_ASSERT (insecure);
    ZT_ASSERT_INT_EQ (count, 3);
    ZT_ASSERT_INT_EQ (timeout, 2000);

    char *argv2[] = {"-o=yaml", "--insecure=false", "bus", "services", "-o", "wide", NULL};
    n = zube_cli_parse ("t", tables, 6, argv2, positional, true);
    ZT_ASSERT_INT_EQ (n, 4);
    ZT_ASSERT_STR_EQ (output, "yaml");
    ZT_ASSERT (!insecure);
    ZT_ASSERT_STR_EQ (positional[0], "bus");
    ZT_ASSERT_STR_EQ (positional[3], "wide");

    //  Errors are printed to stderr; silence them here.
    fflush (stderr);
    int saved = dup (STDERR_FILENO);
    int null_fd = open ("/dev/null", O_WRONLY);
    dup2 (null_fd, STDERR_FILENO);
    char *bad1[] = {"--nope"};
    char *bad2[] = {"--count"};
    char *bad3[] = {"--count", "x"};
    char *bad4[] = {"--request-timeout", "soon"};
    char *help[] = {"a", "-h"};
    int r1 = zube_cli_parse ("t", tables, 1, bad1, positional, false);
    int r2 = zube_cli_parse ("t", tables, 1, bad2, positional, false);
    int r3 = zube_cli_parse ("t", tables, 2, bad3, positional, false);
    int r4 = zube_cli_parse ("t", tables, 2, bad4, positional, false);
    int r5 = zube_cli_parse ("t", tables, 2, help, positional, false);
    fflush (stderr);
    dup2 (saved, STDERR_FILENO);
    close (saved);
    close (null_fd);
    ZT_ASSERT_INT_EQ (r1, ZUBE_CLI_ERROR);
    ZT_ASSERT_INT_EQ (r2, ZUBE_CLI_ERROR);
    ZT_ASSERT_INT_EQ (r3, ZUBE_CLI_ERROR);
    ZT_ASSERT_INT_EQ (r4, ZUBE_CLI_ERROR);
    ZT_ASSERT_INT_EQ (r5, ZUBE_CLI_HELP);
}

//  --------------------------------------------------------------------------
//  Running the programs

//  Runs a program of the build tree with args (NULL-terminated), stdout
//  and stderr captured apart; kills it after timeout_ms.
static zt_run_t
s_run (int timeout_ms, const char *program, ...)
{
    va_list args;
    va_start (args, program);
    zt_run_t result =
        zt_run_capture_va (timeout_ms, (const char *[]){zt_program (program), NULL}, args);
    va_end (args);
    return result;
}

//  A minimal JSON reader: checks that text is exactly one JSON object
//  (with nothing but white space around it) and finds the numbers of its
//  top-level keys.
typedef struct {
    const char *at;
    int depth;
    char keys[64][64];
    double numbers[64];
    bool is_number[64];
    int count;
} s_json_t;

static bool s_json_value (s_json_t *json);

static void
s_json_space (s_json_t *json)
{
    while (isspace ((unsigned char) *json->at))
        json->at++;
}

static bool
s_json_string (s_json_t *json, char *copy, size_t copy_size)
{
    if (*json->at != '"')
        return false;
    json->at++;
    size_t used = 0;
    while (*json->at && *json->at != '"') {
        if (*json->at == '\\') {
            json->at++;
            if (!*json->at)
                return false;
        }
        if (copy && used + 1 < copy_size)
            copy[used++] = *json->at;
        json->at++;
    }
    if (copy)
        copy[used] = 0;
    if (*json->at != '"')
        return false;
    json->at++;
    return true;
}

static bool
s_json_object (s_json_t *json)
{
    json->at++;
    json->depth++;
    s_json_space (json);
    if (*json->at == '}') {
        json->at++;
        json->depth--;
        return true;
    }
    while (true) {
        s_json_space (json);
        char key[64];
        if (!s_json_string (json, key, sizeof key))
            return false;
        s_json_space (json);
        if (*json->at++ != ':')
            return false;
        s_json_space (json);
        int slot = -1;
        if (json->depth == 1 && json->count < 64) {
            slot = json->count++;
            snprintf (json->keys[slot], sizeof json->keys[slot], "%s", key);
            char *end = NULL;
            double number = strtod (json->at, &end);
            json->is_number[slot] = end != json->at && (*json->at == '-' || isdigit ((unsigned char) *json->at));
            json->numbers[slot] = number;
        }
        if (!s_json_value (json))
            return false;
        s_json_space (json);
        if (*json->at == ',') {
            json->at++;
            continue;
        }
        if (*json->at == '}') {
            json->at++;
            json->depth--;
            return true;
        }
        return false;
    }
}

static bool
s_json_value (s_json_t *json)
{
    s_json_space (json);
    char c = *json->at;
    if (c == '{')
        return s_json_object (json);
    if (c == '"')
        return s_json_string (json, NULL, 0);
    if (c == '[') {
        json->at++;
        s_json_space (json);
        if (*json->at == ']') {
            json->at++;
            return true;
        }
        while (true) {
            if (!s_json_value (json))
                return false;
            s_json_space (json);
            if (*json->at == ',') {
                json->at++;
                continue;
            }
            if (*json->at++ == ']')
                return true;
            return false;
        }
    }
    if (strncmp (json->at, "true", 4) == 0 || strncmp (json->at, "null", 4) == 0) {
        json->at += 4;
        return true;
    }
    if (strncmp (json->at, "false", 5) == 0) {
        json->at += 5;
        return true;
    }
    char *end = NULL;
    strtod (json->at, &end);
    if (end == json->at)
        return false;
    json->at = end;
    return true;
}

static bool
s_json_parse (s_json_t *json, const char *text)
{
    memset (json, 0, sizeof *json);
    json->at = text;
    s_json_space (json);
    if (*json->at != '{' || !s_json_object (json))
        return false;
    s_json_space (json);
    return *json->at == 0;
}

static bool
s_json_number (s_json_t *json, const char *key, double *value)
{
    for (int i = 0; i < json->count; i++)
        if (strcmp (json->keys[i], key) == 0 && json->is_number[i]) {
            *value = json->numbers[i];
            return true;
        }
    return false;
}

//  --------------------------------------------------------------------------
//  zubectl without a broker

static void
test_zubectl_version_client (void)
{
    zt_run_t result = s_run (20000, "zubectl", "version", "--client", NULL);
    ZT_ASSERT_EXIT (result, 0);
    char expect[64];
    snprintf (expect, sizeof expect, "Client Version: %s\n", ZUBE_VERSION_STRING);
    ZT_ASSERT_STR_EQ (result.out, expect);
    zt_run_free (&result);

    result = s_run (20000, "zubectl", "version", "--client", "-o", "json", NULL);
    ZT_ASSERT_EXIT (result, 0);
    s_json_t json;
    ZT_ASSERT_MSG (s_json_parse (&json, result.out), "not one JSON object: %s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "\"clientVersion\"");
    zt_run_free (&result);

    result = s_run (20000, "zubectl", "version", "--client", "-o", "wide", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "error: unable to match a printer suitable for the output format \"wide\"");
    zt_run_free (&result);
}

static void
test_zubectl_unknown_command (void)
{
    zt_run_t result = s_run (20000, "zubectl", "foo", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "error: unknown command \"foo\" for \"zubectl\"");
    ZT_ASSERT_STR_CONTAINS (result.err, "zubectl --help");
    zt_run_free (&result);

    result = s_run (20000, "zubectl", "bus", "nope", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "error: unknown command \"nope\" for \"zubectl bus\"");
    zt_run_free (&result);

    result = s_run (20000, "zubectl", "version", "--bogus", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "error: unknown flag: --bogus");
    zt_run_free (&result);

    //  Help on every command, exit 0.
    result = s_run (20000, "zubectl", "bus", "ping", "--help", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "--count");
    zt_run_free (&result);
}

static void
test_zubectl_without_config (void)
{
    char home[512];
    snprintf (home, sizeof home, "%s/empty-home", s_dir);
    mkdir (home, 0755);
    char *saved_home = getenv ("HOME") ? strdup (getenv ("HOME")) : NULL;
    setenv ("HOME", home, 1);
    unsetenv (ZUBE_CONFIG_ENV);
    zt_run_t result = s_run (20000, "zubectl", "bus", "services", NULL);
    if (saved_home)
        setenv ("HOME", saved_home, 1);
    free (saved_home);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "error: no client config");
    ZT_ASSERT_STR_CONTAINS (result.err, "zube up");
    zt_run_free (&result);
}

//  --------------------------------------------------------------------------
//  A local cluster: zube up, zubectl against it, zube status, zube down

static char s_cluster[600];
static char s_config[700];
static int s_port;

//  A service registered with the cluster's admin certificate, polled in
//  its own thread (a zube_bus_t belongs to one thread).
typedef struct {
    atomic_bool stop;
    atomic_bool ready;
    atomic_int calls;
} s_service_t;

static void
s_service_handler (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    s_service_t *service = arg;
    atomic_fetch_add (&service->calls, 1);
    size_t size = 0;
    const uint8_t *payload = zube_bus_request_payload (request, &size);
    zube_bus_respond (request, ZUBE_OK, NULL, payload, size);
}

static void *
s_service_thread (void *arg)
{
    s_service_t *service = arg;
    char error[512];
    zube_config_t *config = zube_config_load (s_config, error, sizeof error);
    zube_bus_config_t bus_config;
    zube_bus_t *bus = NULL;
    if (config) {
        zube_config_bus_config (config, &bus_config);
        bus = zube_bus_new (&bus_config);
    }
    if (bus && zube_bus_serve (bus, "test.echo", s_service_handler, service) == 0) {
        //  One call through the broker, so its counters move.
        zube_bus_reply_t *reply = NULL;
        if (zube_bus_call (bus, "test.echo", "echo", "hi", 2, 10000, &reply) == 0
            && reply->status == ZUBE_OK)
            atomic_store (&service->ready, true);
        zube_bus_reply_destroy (&reply);
        while (!atomic_load (&service->stop))
            zube_bus_poll (bus, 50);
    }
    zube_bus_destroy (&bus);
    zube_config_destroy (&config);
    return NULL;
}

static pid_t
s_component_pid (const char *cluster, const char *name)
{
    char path[1200];
    snprintf (path, sizeof path, "%s/run/%s.pid", cluster, name);
    char *text = zt_read_file (path);
    pid_t pid = text ? (pid_t) atoi (text) : -1;
    free (text);
    return pid;
}

static pid_t
s_broker_pid (void)
{
    char path[800];
    snprintf (path, sizeof path, "%s/run/broker.pid", s_cluster);
    char *text = zt_read_file (path);
    pid_t pid = text ? (pid_t) atoi (text) : -1;
    free (text);
    return pid;
}

//  SIGKILL for every process a cluster folder's pid files name.
static void
s_kill_cluster (const char *cluster)
{
    char run[800];
    snprintf (run, sizeof run, "%s/run", cluster);
    struct dirent **entries = NULL;
    int count = scandir (run, &entries, NULL, alphasort);
    for (int i = 0; i < count; i++) {
        size_t length = strlen (entries[i]->d_name);
        if (length > 4 && strcmp (entries[i]->d_name + length - 4, ".pid") == 0
            && strcmp (entries[i]->d_name, "zube.pid") != 0) {
            char name[256];
            snprintf (name, sizeof name, "%.*s", (int) (length - 4), entries[i]->d_name);
            pid_t pid = s_component_pid (cluster, name);
            if (zt_process_alive (pid))
                kill (pid, SIGKILL);
        }
        free (entries[i]);
    }
    free (entries);
}

static void
test_zube_up_detach (void)
{
    snprintf (s_cluster, sizeof s_cluster, "%s/cluster", s_dir);
    snprintf (s_config, sizeof s_config, "%s/config", s_cluster);
    s_port = zt_free_port (3);
    ZT_ASSERT (s_port > 0);
    char port[16];
    snprintf (port, sizeof port, "%d", s_port);
    zt_run_t result = s_run (60000, "zube", "up", "--detach", "--dir", s_cluster, "--port",
                               port, NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "zubectl --config");
    zt_run_free (&result);

    char path[800];
    const char *expected[] = {"config", "certs/broker.cert", "certs/private/admin.cert_secret",
                              "run/broker.pid", "logs/broker.log", "run/apiserver.pid",
                              "logs/apiserver.log", "data/store"};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        snprintf (path, sizeof path, "%s/%s", s_cluster, expected[i]);
        ZT_ASSERT_MSG (access (path, R_OK) == 0, "%s is missing", path);
    }
    ZT_ASSERT (zt_process_alive (s_broker_pid ()));
    ZT_ASSERT (zt_process_alive (s_component_pid (s_cluster, "apiserver")));
    char *config = zt_read_file (s_config);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "broker: tcp://127.0.0.1:%d\n", s_port);
    ZT_ASSERT_STR_CONTAINS (config, endpoint);
    ZT_ASSERT_STR_CONTAINS (config, "certsDir: certs\n");
    ZT_ASSERT_STR_CONTAINS (config, "name: admin\n");
    free (config);

    //  A second `up` on the same folder refuses.
    result = s_run (60000, "zube", "up", "--detach", "--dir", s_cluster, "--port", port, NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "already runs");
    zt_run_free (&result);
}

static void
test_zubectl_against_cluster (void)
{
    ZT_ASSERT_MSG (s_port > 0, "no cluster");
    zt_run_t result = s_run (30000, "zubectl", "--config", s_config, "version", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "Client Version: ");
    ZT_ASSERT_STR_CONTAINS (result.out, "Server Version: ");
    zt_run_free (&result);

    //  No service yet: the counters only.
    result = s_run (30000, "zubectl", "--config", s_config, "bus", "services", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "(secure)");
    ZT_ASSERT_STR_CONTAINS (result.out, "Counters: routed=");
    zt_run_free (&result);

    s_service_t service;
    atomic_init (&service.stop, false);
    atomic_init (&service.ready, false);
    atomic_init (&service.calls, 0);
    pthread_t thread;
    ZT_ASSERT (pthread_create (&thread, NULL, s_service_thread, &service) == 0);
    for (int waited = 0; waited < 15000 && !atomic_load (&service.ready); waited += 20)
        usleep (20000);
    bool ready = atomic_load (&service.ready);

    zt_run_t table = {0}, wide = {0}, json_result = {0}, ping = {0};
    if (ready) {
        table = s_run (30000, "zubectl", "--config", s_config, "bus", "services", NULL);
        wide = s_run (30000, "zubectl", "bus", "services", "-o", "wide", "--config", s_config, NULL);
        json_result = s_run (30000, "zubectl", "--config", s_config, "-o", "json", "bus",
                             "services", NULL);
        ping = s_run (30000, "zubectl", "--config", s_config, "bus", "ping", "--count", "2",
                      "--interval", "10ms", NULL);
    }
    atomic_store (&service.stop, true);
    pthread_join (thread, NULL);
    ZT_ASSERT_MSG (ready, "the test service did not answer through the broker");

    ZT_ASSERT_EXIT (table, 0);
    ZT_ASSERT_STR_CONTAINS (table.out, "SERVICE");
    ZT_ASSERT_STR_CONTAINS (table.out, "INSTANCES");
    ZT_ASSERT_STR_CONTAINS (table.out, "IN-FLIGHT");
    ZT_ASSERT_STR_CONTAINS (table.out, "WAITING");
    //  The row of the service: name, one instance, nothing in flight or waiting.
    const char *row = strstr (table.out, "\ntest.echo ");
    ZT_ASSERT_MSG (row, "no test.echo row in:\n%s", table.out);
    char name[64];
    int instances = -1, in_flight = -1, waiting = -1;
    ZT_ASSERT_INT_EQ (sscanf (row + 1, "%63s %d %d %d", name, &instances, &in_flight, &waiting), 4);
    ZT_ASSERT_INT_EQ (instances, 1);
    ZT_ASSERT_INT_EQ (in_flight, 0);
    ZT_ASSERT_INT_EQ (waiting, 0);
    //  The one call of the service thread went through the broker.
    const char *counters = strstr (table.out, "Counters: ");
    ZT_ASSERT (counters);
    unsigned long routed = 0, replied = 0;
    ZT_ASSERT_INT_EQ (sscanf (counters, "Counters: routed=%lu replied=%lu", &routed, &replied), 2);
    ZT_ASSERT (routed >= 1);
    ZT_ASSERT (replied >= 1);

    ZT_ASSERT_EXIT (wide, 0);
    ZT_ASSERT_STR_CONTAINS (wide.out, "INSTANCE-NAMES");
    ZT_ASSERT_STR_CONTAINS (wide.out, "SENDERS");
    ZT_ASSERT_STR_CONTAINS (wide.out, "HANDLED");
    ZT_ASSERT_STR_CONTAINS (wide.out, "IDLE");
    ZT_ASSERT_STR_CONTAINS (wide.out, "admin");      //  the sender, from the certificate

    ZT_ASSERT_EXIT (json_result, 0);
    s_json_t json;
    ZT_ASSERT_MSG (s_json_parse (&json, json_result.out), "not one JSON object: %s",
                   json_result.out);
    //  The codec reads back what it wrote: a BusServicesReply.
    ProtobufCMessage *message = NULL;
    zube_codec_error_t error;
    ZT_ASSERT_MSG (zube_codec_decode (json_result.out, strlen (json_result.out),
                                      &zube__bus_services_reply__descriptor, &message, &error)
                       == 0,
                   "does not decode: %s", error.message);
    Zube__BusServicesReply *reply = (Zube__BusServicesReply *) message;
    bool found = false;
    for (size_t i = 0; i < reply->n_services; i++)
        if (reply->services[i]->name && strcmp (reply->services[i]->name, "test.echo") == 0) {
            found = true;
            ZT_ASSERT_INT_EQ (reply->services[i]->n_instances, 1);
        }
    ZT_ASSERT (found);
    ZT_ASSERT (reply->counters && reply->counters->routed >= 1);
    ZT_ASSERT (reply->secure);
    protobuf_c_message_free_unpacked (message, NULL);

    ZT_ASSERT_EXIT (ping, 0);
    ZT_ASSERT_STR_CONTAINS (ping.out, "2 sent, 2 received, 0% lost");

    zt_run_free (&table);
    zt_run_free (&wide);
    zt_run_free (&json_result);
    zt_run_free (&ping);

    //  A server error is printed kubectl's way.
    result = s_run (30000, "zubectl", "--config", s_config, "--request-timeout", "500ms", "bus",
                    "services", "-o", "yaml", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "counters:");
    zt_run_free (&result);
}

static void
test_zube_status (void)
{
    ZT_ASSERT_MSG (s_port > 0, "no cluster");
    zt_run_t result = s_run (30000, "zube", "status", "--dir", s_cluster, NULL);
    ZT_ASSERT_EXIT (result, 0);
    char pid_text[32];
    snprintf (pid_text, sizeof pid_text, "%d", (int) s_broker_pid ());
    ZT_ASSERT_STR_CONTAINS (result.out, "broker");
    ZT_ASSERT_STR_CONTAINS (result.out, pid_text);
    ZT_ASSERT_STR_CONTAINS (result.out, "running, answers");
    ZT_ASSERT_STR_CONTAINS (result.out, "serves \"api\"");
    //  The default node agent.
    ZT_ASSERT_STR_CONTAINS (result.out, "zubelet-node-1");
    zt_run_free (&result);

    //  The apiserver answers through the cluster's config, as admin.
    result = s_run (30000, "zubectl", "--config", s_config, "get", "namespaces", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "kube-system");
    zt_run_free (&result);

    //  The node agent registered its node (as node-node-1).
    result = s_run (30000, "zubectl", "--config", s_config, "get", "nodes", "-o", "name", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_EQ (result.out, "node/node-1\n");
    zt_run_free (&result);
}

static void
test_zube_down (void)
{
    ZT_ASSERT_MSG (s_port > 0, "no cluster");
    pid_t pid = s_broker_pid ();
    ZT_ASSERT (pid > 0);
    pid_t apiserver = s_component_pid (s_cluster, "apiserver");
    zt_run_t result = s_run (30000, "zube", "down", "--dir", s_cluster, NULL);
    ZT_ASSERT_EXIT (result, 0);
    zt_run_free (&result);
    ZT_ASSERT_MSG (!zt_process_alive (pid), "broker pid %d still runs", (int) pid);
    ZT_ASSERT_MSG (!zt_process_alive (apiserver), "apiserver pid %d still runs", (int) apiserver);
    char path[800];
    snprintf (path, sizeof path, "%s/run/broker.pid", s_cluster);
    ZT_ASSERT (access (path, F_OK) != 0);
    //  Nothing answers on the port any more.
    ZT_ASSERT (!zt_wait_port (s_port, 100));

    result = s_run (30000, "zube", "status", "--dir", s_cluster, NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.out, "stopped");
    zt_run_free (&result);

    //  Down again: nothing to stop, not an error.
    result = s_run (30000, "zube", "down", "--dir", s_cluster, NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "nothing runs");
    zt_run_free (&result);
}

//  `zube up --store redis` starts its own redis-server, durable on every
//  write, and `zube down` leaves nothing running.
static void
test_zube_up_store_redis (void)
{
    char cluster[700];
    snprintf (cluster, sizeof cluster, "%s/redis-cluster", s_dir);
    int base = zt_free_port (5);
    ZT_ASSERT (base > 0);
    char port[16], config[800];
    snprintf (port, sizeof port, "%d", base);
    snprintf (config, sizeof config, "%s/config", cluster);
    zt_run_t result = s_run (60000, "zube", "up", "--detach", "--insecure", "--dir", cluster,
                               "--port", port, "--store", "redis", NULL);
    ZT_ASSERT_EXIT (result, 0);
    char url[64];
    snprintf (url, sizeof url, "store redis://127.0.0.1:%d", base + 3);
    ZT_ASSERT_STR_CONTAINS (result.out, url);
    zt_run_free (&result);
    char path[800];
    snprintf (path, sizeof path, "%s/data/redis/redis.conf", cluster);
    char *conf = zt_read_file (path);
    ZT_ASSERT (conf != NULL);
    ZT_ASSERT_STR_CONTAINS (conf, "appendfsync always\n");
    free (conf);
    pid_t redis = s_component_pid (cluster, "redis");
    ZT_ASSERT (zt_process_alive (redis));

    result = s_run (30000, "zubectl", "--config", config, "create", "namespace", "stored", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "namespace/stored created");
    zt_run_free (&result);
    //  The write is in Redis' append-only file, not only in memory.
    ZT_ASSERT (zt_wait_port (base + 3, 1000));

    result = s_run (60000, "zube", "down", "--dir", cluster, NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "stopping the redis");
    zt_run_free (&result);
    ZT_ASSERT_MSG (!zt_process_alive (redis), "redis-server pid %d still runs", (int) redis);
    ZT_ASSERT (!zt_wait_port (base + 3, 100));
}

//  A port the cluster needs is taken: up names it, starts nothing.
static void
test_zube_up_port_taken (void)
{
    int base = zt_free_port (3);
    ZT_ASSERT (base > 0);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) (base + 2)),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    ZT_ASSERT (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0 && listen (fd, 1) == 0);
    char cluster[700], port[16], expected[64];
    snprintf (cluster, sizeof cluster, "%s/taken-cluster", s_dir);
    snprintf (port, sizeof port, "%d", base);
    zt_run_t result = s_run (30000, "zube", "up", "--detach", "--insecure", "--dir", cluster,
                               "--port", port, NULL);
    close (fd);
    ZT_ASSERT_EXIT (result, 1);
    snprintf (expected, sizeof expected, "port %d (the broker's subscribers)", base + 2);
    ZT_ASSERT_STR_CONTAINS (result.err, expected);
    ZT_ASSERT_STR_CONTAINS (result.err, "already in use");
    zt_run_free (&result);
    ZT_ASSERT (s_component_pid (cluster, "broker") <= 0);
}

//  Nodes: three node agents and a hollow-node process with ten nodes; all
//  registered when up returns; down stops every zubelet.
static void
test_zube_up_nodes (void)
{
    char cluster[700], config[800], port[16];
    snprintf (cluster, sizeof cluster, "%s/nodes-cluster", s_dir);
    snprintf (config, sizeof config, "%s/config", cluster);
    int base = zt_free_port (3);
    ZT_ASSERT (base > 0);
    snprintf (port, sizeof port, "%d", base);
    //  sim: the pod it binds has no image, and this test is no place for
    //  real containers (test_zubelet_oci is)
    zt_run_t result = s_run (60000, "zube", "up", "--detach", "--dir", cluster, "--port", port,
                             "--nodes", "3", "--sim-nodes", "10", "--runtime", "sim", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "zubelet-node-3");
    ZT_ASSERT_STR_CONTAINS (result.out, "zubelet-sim");
    ZT_ASSERT_STR_CONTAINS (result.out, "scheduler");
    ZT_ASSERT_STR_CONTAINS (result.out, "controller-manager");
    zt_run_free (&result);
    ZT_ASSERT (zt_process_alive (s_component_pid (cluster, "scheduler")));
    ZT_ASSERT (zt_process_alive (s_component_pid (cluster, "controller-manager")));
    //  One certificate per node agent, so authorization tells them apart.
    const char *certs[] = {"certs/private/node-node-1.cert_secret",
                           "certs/private/node-node-3.cert_secret",
                           "certs/private/nodes-sim-.cert_secret",
                           "certs/private/apiserver.cert_secret",
                           "certs/private/scheduler.cert_secret",
                           "certs/private/controller-manager.cert_secret"};
    char path[900];
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++) {
        snprintf (path, sizeof path, "%s/%s", cluster, certs[i]);
        ZT_ASSERT_MSG (access (path, R_OK) == 0, "%s is missing", path);
    }
    result = s_run (30000, "zubectl", "--config", config, "get", "nodes", "-o", "name", NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_EQ (result.out, "node/node-1\nnode/node-2\nnode/node-3\nnode/sim-0001\n"
                                  "node/sim-0002\nnode/sim-0003\nnode/sim-0004\nnode/sim-0005\n"
                                  "node/sim-0006\nnode/sim-0007\nnode/sim-0008\nnode/sim-0009\n"
                                  "node/sim-0010\n");
    zt_run_free (&result);
    //  The scheduler binds a pod that names no node
    char manifest[900];
    snprintf (manifest, sizeof manifest, "%s/pending.yaml", cluster);
    ZT_WRITE_FILE (manifest, "apiVersion: v1\nkind: Pod\nmetadata: {name: pending}\n"
                             "spec: {containers: [{name: c, image: pause}]}\n");
    result = s_run (30000, "zubectl", "--config", config, "apply", "-f", manifest, NULL);
    ZT_ASSERT_EXIT (result, 0);
    zt_run_free (&result);
    bool bound = false;
    for (int i = 0; i < 100 && !bound; i++) {
        result = s_run (30000, "zubectl", "--config", config, "get", "pod", "pending", "-o",
                        "yaml", NULL);
        bound = result.out && strstr (result.out, "nodeName: ");
        zt_run_free (&result);
        if (!bound)
            usleep (100000);
    }
    ZT_ASSERT_MSG (bound, "zube-scheduler did not bind pod pending");
    pid_t sim = s_component_pid (cluster, "zubelet-sim");
    pid_t node2 = s_component_pid (cluster, "zubelet-node-2");
    ZT_ASSERT (zt_process_alive (sim) && zt_process_alive (node2));

    result = s_run (60000, "zube", "down", "--dir", cluster, NULL);
    ZT_ASSERT_EXIT (result, 0);
    ZT_ASSERT_STR_CONTAINS (result.out, "stopping the zubelet-sim");
    zt_run_free (&result);
    ZT_ASSERT (!zt_process_alive (sim) && !zt_process_alive (node2));
}

static void
test_zube_certs_create (void)
{
    char dir[700];
    snprintf (dir, sizeof dir, "%s/certs-only", s_dir);
    zt_run_t result = s_run (30000, "zube", "certs", "create", "--dir", dir, "alice", "node-1",
                               NULL);
    ZT_ASSERT_EXIT (result, 0);
    zt_run_free (&result);
    const char *expected[] = {"broker.cert", "broker.cert_secret", "public/alice.cert",
                              "private/alice.cert_secret", "public/node-1.cert",
                              "private/node-1.cert_secret"};
    char path[800];
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        snprintf (path, sizeof path, "%s/%s", dir, expected[i]);
        ZT_ASSERT_MSG (access (path, R_OK) == 0, "%s is missing", path);
    }
    result = s_run (30000, "zube", "certs", "create", "--dir", dir, "Not Valid", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "not a valid certificate name");
    zt_run_free (&result);
}

//  --------------------------------------------------------------------------
//  zube-bench

static void
test_zube_bench_bus_json (void)
{
    zt_run_t result = s_run (180000, "zube-bench", "bus", "--requests", "2000", "--json", NULL);
    ZT_ASSERT_EXIT (result, 0);
    s_json_t json;
    ZT_ASSERT_MSG (s_json_parse (&json, result.out), "not exactly one JSON object:\n%s",
                   result.out);
    const char *keys[] = {"broker_rps",    "raw_rps",    "ratio",    "broker_p50_us",
                          "broker_p99_us", "raw_p50_us", "raw_p99_us", "requests",
                          "in_flight",     "payload_bytes"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        double value = -1;
        ZT_ASSERT_MSG (s_json_number (&json, keys[i], &value), "no number \"%s\" in:\n%s",
                       keys[i], result.out);
        ZT_ASSERT_MSG (value >= 0, "%s is %f", keys[i], value);
    }
    double ratio = 0, requests = 0, in_flight = 0, payload = 0;
    s_json_number (&json, "ratio", &ratio);
    s_json_number (&json, "requests", &requests);
    s_json_number (&json, "in_flight", &in_flight);
    s_json_number (&json, "payload_bytes", &payload);
    ZT_ASSERT_MSG (ratio > 0, "ratio %f", ratio);
    ZT_ASSERT_INT_EQ ((long) requests, 2000);
    ZT_ASSERT_INT_EQ ((long) in_flight, 100);
    ZT_ASSERT_INT_EQ ((long) payload, 256);
    zt_run_free (&result);
}

//  --------------------------------------------------------------------------
//  Man pages

static void
test_man_pages_render (void)
{
    const char *pages[] = {"zube-broker.1", "zubectl.1", "zube.1", "zube-bench.1",
                           "zube-config.5", "zube.7", "zube-scheduler.1",
                           "zube-scheduler-config.5", "zube-scheduler-plugin.3",
                           "zubelet.1", "zube-runtime-plugin.3",
                           "zube-controller-manager.1", "zube-controller-plugin.3"};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        zt_run_t result = zt_man_render (pages[i]);
        if (result.status == -1) {
            printf ("# man is not installed: nothing checked\n");
            return;
        }
        ZT_ASSERT_MSG (result.status == 0 && result.err && *result.err == 0,
                       "man %s: exit %d: %s", pages[i], result.status,
                       result.err ? result.err : "");
        zt_run_free (&result);
    }
}

int
main (void)
{
    s_dir = zt_tempdir ("cli");
    unsetenv (ZUBE_CONFIG_ENV);
    zube_log_set_level (ZUBE_LOG_WARN);
    ZT_RUN (test_config_parse_good);
    ZT_RUN (test_config_unknown_key);
    ZT_RUN (test_config_bad_values);
    ZT_RUN (test_config_relative_certs_dir);
    ZT_RUN (test_config_save_round_trip);
    ZT_RUN (test_config_lookup_order);
    ZT_RUN (test_cli_durations);
    ZT_RUN (test_cli_flags);
    ZT_RUN (test_zubectl_version_client);
    ZT_RUN (test_zubectl_unknown_command);
    ZT_RUN (test_zubectl_without_config);
    ZT_RUN (test_zube_certs_create);
    ZT_RUN (test_zube_up_port_taken);
    ZT_RUN (test_zube_up_detach);
    ZT_RUN (test_zubectl_against_cluster);
    ZT_RUN (test_zube_status);
    ZT_RUN (test_zube_down);
    ZT_RUN (test_zube_up_nodes);
    if (zt_which ("redis-server"))
        ZT_RUN (test_zube_up_store_redis);
    else
        zt_skip ("test_zube_up_store_redis", "redis-server is not installed");
    //  Whatever failed above, leave nothing running.
    const char *clusters[] = {"cluster", "nodes-cluster", "redis-cluster", "taken-cluster"};
    for (size_t i = 0; i < sizeof clusters / sizeof clusters[0]; i++) {
        char dir[700];
        snprintf (dir, sizeof dir, "%s/%s", s_dir, clusters[i]);
        s_kill_cluster (dir);
    }
    ZT_RUN (test_zube_bench_bus_json);
    ZT_RUN (test_man_pages_render);
    zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
