/*  test_cli - the client config file, and the command-line programs
    zubectl, zube and zube-bench run as a user would run them. */
#define _GNU_SOURCE
#include "../zube_testproc.h"
#include "../zube_test.h"
#include "zube/zube.h"
#include "zube/config.h"

//  ZT_ASSERT_STR_CONTAINS names its needle zt_n_, which ZT_FAIL's own
//  zt_n_ shadows, so it does not compile; this one does the same.
#define S_ASSERT_CONTAINS(haystack, needle)                                   \
    do {                                                                      \
        const char *s_h_ = (haystack), *s_needle_ = (needle);                 \
        if (!s_h_ || !strstr (s_h_, s_needle_))                               \
            ZT_FAIL ("%s == \"%s\" does not contain \"%s\"", #haystack,       \
                     s_h_ ? s_h_ : "(null)", s_needle_);                      \
    } while (0)

static char *s_dir;

static void
s_write_file (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    ZT_ASSERT_MSG (file, "cannot write %s", path);
    fputs (text, file);
    fclose (file);
}

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
    S_ASSERT_CONTAINS (error, "my.yaml:4:");
    S_ASSERT_CONTAINS (error, "unknown key \"brokr\"");
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
        S_ASSERT_CONTAINS (error, cases[i].expect);
    }
}

static void
test_config_relative_certs_dir (void)
{
    char path[512], error[512] = "";
    snprintf (path, sizeof path, "%s/cfg", s_dir);
    mkdir (path, 0755);
    snprintf (path, sizeof path, "%s/cfg/zubeconfig", s_dir);
    s_write_file (path, "apiVersion: zube.io/v1alpha1\nkind: Config\n"
                        "broker: tcp://127.0.0.1:7400\ncertsDir: certs\nname: admin\n");
    zube_config_t *config = zube_config_load (path, error, sizeof error);
    ZT_ASSERT_MSG (config, "load failed: %s", error);
    char expect[512];
    snprintf (expect, sizeof expect, "%s/cfg/certs", s_dir);
    ZT_ASSERT_STR_EQ (zube_config_certs_dir (config), expect);
    ZT_ASSERT_STR_EQ (zube_config_path (config), path);
    //  No certificates there yet: the check names the missing file.
    ZT_ASSERT_INT_EQ (zube_config_check (config, error, sizeof error), -1);
    S_ASSERT_CONTAINS (error, "broker.cert");

    //  Saved again, certsDir stays relative.
    char saved[512];
    snprintf (saved, sizeof saved, "%s/cfg/copy", s_dir);
    ZT_ASSERT_INT_EQ (zube_config_save (config, saved, error, sizeof error), 0);
    char *text = zt_read_file (saved);
    S_ASSERT_CONTAINS (text, "certsDir: certs\n");
    S_ASSERT_CONTAINS (text, "kind: Config\n");
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
    S_ASSERT_CONTAINS (error, "zube up");
    S_ASSERT_CONTAINS (error, "--insecure");
    zube_config_destroy (&config);

    //  The home file.
    snprintf (path, sizeof path, "%s/.zube/cluster", home);
    char command[1024];
    snprintf (command, sizeof command, "mkdir -p '%s'", path);
    ZT_ASSERT_INT_EQ (system (command), 0);
    snprintf (path, sizeof path, "%s/.zube/cluster/zubeconfig", home);
    s_write_file (path, "broker: tcp://127.0.0.1:1001\ninsecure: true\n");
    config = zube_config_resolve (NULL, error, sizeof error);
    ZT_ASSERT_MSG (config, "%s", error);
    ZT_ASSERT_INT_EQ (zube_config_source (config), ZUBE_CONFIG_FROM_HOME);
    ZT_ASSERT_STR_EQ (zube_config_broker (config), "tcp://127.0.0.1:1001");
    zube_config_destroy (&config);

    //  $ZUBECONFIG wins over the home file.
    snprintf (env_path, sizeof env_path, "%s/env-config", s_dir);
    s_write_file (env_path, "broker: tcp://127.0.0.1:1002\ninsecure: true\n");
    setenv (ZUBE_CONFIG_ENV, env_path, 1);
    config = zube_config_resolve (NULL, error, sizeof error);
    ZT_ASSERT_MSG (config, "%s", error);
    ZT_ASSERT_INT_EQ (zube_config_source (config), ZUBE_CONFIG_FROM_ENV);
    ZT_ASSERT_STR_EQ (zube_config_broker (config), "tcp://127.0.0.1:1002");
    zube_config_destroy (&config);

    //  --config wins over both.
    snprintf (flag_path, sizeof flag_path, "%s/flag-config", s_dir);
    s_write_file (flag_path, "broker: tcp://127.0.0.1:1003\ninsecure: true\n");
    config = zube_config_resolve (flag_path, error, sizeof error);
    ZT_ASSERT_MSG (config, "%s", error);
    ZT_ASSERT_INT_EQ (zube_config_source (config), ZUBE_CONFIG_FROM_FLAG);
    ZT_ASSERT_STR_EQ (zube_config_broker (config), "tcp://127.0.0.1:1003");
    zube_config_destroy (&config);

    //  A named file that does not exist is an error, not the defaults.
    snprintf (flag_path, sizeof flag_path, "%s/missing", s_dir);
    config = zube_config_resolve (flag_path, error, sizeof error);
    ZT_ASSERT (config == NULL);
    S_ASSERT_CONTAINS (error, "missing");
    setenv (ZUBE_CONFIG_ENV, flag_path, 1);
    config = zube_config_resolve (NULL, error, sizeof error);
    ZT_ASSERT (config == NULL);
    S_ASSERT_CONTAINS (error, "$ZUBECONFIG");

    unsetenv (ZUBE_CONFIG_ENV);
    if (saved_home)
        setenv ("HOME", saved_home, 1);
    free (saved_home);
}

int
main (void)
{
    s_dir = zt_tempdir ("cli");
    ZT_RUN (test_config_parse_good);
    ZT_RUN (test_config_unknown_key);
    ZT_RUN (test_config_bad_values);
    ZT_RUN (test_config_relative_certs_dir);
    ZT_RUN (test_config_save_round_trip);
    ZT_RUN (test_config_lookup_order);
    zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
