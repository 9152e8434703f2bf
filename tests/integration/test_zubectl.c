/*  test_zubectl - zubectl's API verbs against a real zube-broker and
    zube-apiserver (lmdb store in a temporary directory, free ports): the
    binary is run as a user runs it and its stdout, stderr and exit code
    are compared with what kubectl prints. */
#define _GNU_SOURCE
#include "../zube_testproc.h"
#include "../zube_test.h"

static char *s_dir;
static char s_endpoint[64];
static char s_config[512];
static pid_t s_broker;
static pid_t s_apiserver;
static bool s_ready;

typedef struct {
    int status;         //  exit code, or 128 + signal
    char *out;
    char *err;
} s_result_t;

static void
s_result_free (s_result_t *result)
{
    free (result->out);
    free (result->err);
    result->out = result->err = NULL;
}

//  Runs zubectl --config s_config with args (NULL-terminated), stdout and
//  stderr captured apart; kills it after timeout_ms.
static s_result_t
s_zubectl_v (int timeout_ms, const char *first, va_list args)
{
    char *argv[48];
    int argc = 0;
    argv[argc++] = (char *) zt_program ("zubectl");
    argv[argc++] = "--config";
    argv[argc++] = s_config;
    const char *arg = first;
    while (arg && argc < 47) {
        argv[argc++] = (char *) arg;
        arg = va_arg (args, const char *);
    }
    argv[argc] = NULL;

    static int serial = 0;
    char out_path[600], err_path[600];
    snprintf (out_path, sizeof out_path, "%s/run-%d.out", s_dir, serial);
    snprintf (err_path, sizeof err_path, "%s/run-%d.err", s_dir, serial++);
    s_result_t result = {.status = -1};
    fflush (stdout);
    pid_t pid = fork ();
    if (pid == 0) {
        int out = open (out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open (err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null_fd = open ("/dev/null", O_RDONLY);
        dup2 (out, STDOUT_FILENO);
        dup2 (err, STDERR_FILENO);
        dup2 (null_fd, STDIN_FILENO);
        execv (argv[0], argv);
        _exit (127);
    }
    int status = 0;
    int64_t deadline = zt_now_ms () + timeout_ms;
    while (true) {
        pid_t done = waitpid (pid, &status, WNOHANG);
        if (done == pid)
            break;
        if (zt_now_ms () > deadline) {
            kill (pid, SIGKILL);
            waitpid (pid, &status, 0);
            break;
        }
        usleep (5000);
    }
    result.status = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
    result.out = zt_read_file (out_path);
    result.err = zt_read_file (err_path);
    return result;
}

static s_result_t
s_zubectl (const char *first, ...)
{
    va_list args;
    va_start (args, first);
    s_result_t result = s_zubectl_v (30000, first, args);
    va_end (args);
    return result;
}

#define S_ASSERT_EXIT(result, code)                                           \
    ZT_ASSERT_MSG ((result).status == (code),                                 \
                   "exit %d, expected %d; stdout:\n%s\nstderr:\n%s",          \
                   (result).status, (code), (result).out ? (result).out : "", \
                   (result).err ? (result).err : "")

//  Runs zubectl and asserts its exit code; the result is freed by the caller.
#define S_RUN_OK(result, ...)                                                 \
    do {                                                                      \
        (result) = s_zubectl (__VA_ARGS__, NULL);                             \
        S_ASSERT_EXIT ((result), 0);                                          \
    } while (0)

static void
s_write_file (const char *name, const char *text, char *path, size_t size)
{
    snprintf (path, size, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    ZT_ASSERT_MSG (file, "cannot write %s", path);
    fputs (text, file);
    fclose (file);
}

static void
s_print_log_tail (const char *name)
{
    char path[600];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    char *text = zt_read_file (path);
    if (!text)
        return;
    size_t length = strlen (text);
    const char *tail = length > 3000 ? text + length - 3000 : text;
    printf ("# --- %s ---\n", name);
    for (const char *line = tail; *line;) {
        const char *end = strchr (line, '\n');
        size_t n = end ? (size_t) (end - line) : strlen (line);
        printf ("# %.*s\n", (int) n, line);
        line += n + (end ? 1 : 0);
    }
    free (text);
}

//  ---------------------------------------------------------------------
//  The cluster

static bool
s_start_cluster (char *why, size_t why_size)
{
    if (access (zt_program ("zube-apiserver"), X_OK) != 0) {
        snprintf (why, why_size, "zube-apiserver is not built (%s)", zt_program ("zube-apiserver"));
        return false;
    }
    snprintf (s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", zt_free_port (3));
    char log[600], store[600], data[600];
    snprintf (log, sizeof log, "%s/broker.log", s_dir);
    char *broker_argv[] = {(char *) zt_program ("zube-broker"), "--insecure", "--bind", s_endpoint,
                           NULL};
    s_broker = zt_spawn (broker_argv, log);
    int port = atoi (strrchr (s_endpoint, ':') + 1);
    if (s_broker <= 0 || !zt_wait_port (port, 5000)) {
        snprintf (why, why_size, "zube-broker did not start");
        return false;
    }
    snprintf (store, sizeof store, "lmdb:%s/store", s_dir);
    snprintf (data, sizeof data, "%s/data", s_dir);
    mkdir (data, 0700);
    snprintf (log, sizeof log, "%s/apiserver.log", s_dir);
    char *apiserver_argv[] = {(char *) zt_program ("zube-apiserver"), "--bus", s_endpoint,
                              "--insecure", "--store", store, "--data-dir", data, NULL};
    s_apiserver = zt_spawn (apiserver_argv, log);
    if (s_apiserver <= 0) {
        snprintf (why, why_size, "zube-apiserver did not start");
        return false;
    }
    char text[256];
    snprintf (text, sizeof text, "apiVersion: zube.io/v1alpha1\nkind: Config\nbroker: %s\n"
                                 "insecure: true\ntimeoutMs: 10000\n",
              s_endpoint);
    s_write_file ("zubeconfig", text, s_config, sizeof s_config);
    //  Ready once a list answers.
    for (int64_t until = zt_now_ms () + 30000; zt_now_ms () < until;) {
        s_result_t result = s_zubectl ("get", "namespaces", "--request-timeout", "2s", NULL);
        int status = result.status;
        s_result_free (&result);
        if (status == 0)
            break;
        if (waitpid (s_apiserver, NULL, WNOHANG) == s_apiserver) {
            s_apiserver = 0;
            s_print_log_tail ("apiserver.log");
            snprintf (why, why_size, "zube-apiserver exited at start");
            return false;
        }
        usleep (200000);
    }
    s_result_t result = s_zubectl ("create", "namespace", "default", NULL);
    bool created = result.status == 0 || (result.err && strstr (result.err, "AlreadyExists"));
    s_result_free (&result);
    if (!created) {
        s_print_log_tail ("apiserver.log");
        snprintf (why, why_size, "the apiserver does not answer zubectl");
        return false;
    }
    return true;
}

static void
s_stop_cluster (void)
{
    if (s_apiserver > 0)
        zt_stop (s_apiserver, SIGTERM, 5000);
    if (s_broker > 0)
        zt_stop (s_broker, SIGTERM, 5000);
    s_apiserver = s_broker = 0;
}

//  ---------------------------------------------------------------------
//  Manifests

static const char *s_manifest_v1 =
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata:\n"
    "  name: web\n"
    "  labels:\n"
    "    app: web\n"
    "spec:\n"
    "  containers:\n"
    "  - name: nginx\n"
    "    image: nginx:1.25\n"
    "    ports:\n"
    "    - containerPort: 80\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata:\n"
    "  name: web-svc\n"
    "spec:\n"
    "  selector:\n"
    "    app: web\n"
    "  ports:\n"
    "  - port: 80\n"
    "    protocol: TCP\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: ConfigMap\n"
    "metadata:\n"
    "  name: cfg\n"
    "  labels:\n"
    "    app: web\n"
    "data:\n"
    "  k: v1\n"
    "  gone: soon\n";

static void
test_apply_multi_document (void)
{
    char path[600];
    s_write_file ("app.yaml", s_manifest_v1, path, sizeof path);
    s_result_t result;
    S_RUN_OK (result, "apply", "-f", path);
    ZT_ASSERT_STR_EQ (result.out, "pod/web created\nservice/web-svc created\nconfigmap/cfg created\n");
    ZT_ASSERT_STR_EQ (result.err, "");
    s_result_free (&result);

    S_RUN_OK (result, "apply", "-f", path);
    ZT_ASSERT_STR_EQ (result.out,
                      "pod/web unchanged\nservice/web-svc unchanged\nconfigmap/cfg unchanged\n");
    s_result_free (&result);

    //  An edit: a value changes and a key goes away.
    char *edited = strdup (s_manifest_v1);
    char *at = strstr (edited, "  k: v1\n  gone: soon\n");
    ZT_ASSERT (at);
    strcpy (at, "  k: v2\n");
    s_write_file ("app.yaml", edited, path, sizeof path);
    free (edited);
    S_RUN_OK (result, "apply", "-f", path);
    ZT_ASSERT_STR_EQ (result.out,
                      "pod/web unchanged\nservice/web-svc unchanged\nconfigmap/cfg configured\n");
    s_result_free (&result);
    S_RUN_OK (result, "get", "configmap", "cfg", "-o", "yaml");
    ZT_ASSERT_STR_CONTAINS (result.out, "k: v2");
    ZT_ASSERT_MSG (!strstr (result.out, "gone:"), "the dropped key stayed:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "kubectl.kubernetes.io/last-applied-configuration");
    s_result_free (&result);
}

static void
test_apply_bad_document (void)
{
    char path[600];
    s_write_file ("mixed.yaml",
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good-1\n  labels:\n"
                  "    app: good\ndata:\n  a: b\n"
                  "---\n"
                  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n"
                  "  - name: c\n    imagee: busybox\n"
                  "---\n"
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good-2\ndata:\n  c: d\n",
                  path, sizeof path);
    s_result_t result = s_zubectl ("apply", "-f", path, NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.out, "configmap/good-1 created\nconfigmap/good-2 created\n");
    ZT_ASSERT_STR_CONTAINS (result.err, "error: error validating \"");
    ZT_ASSERT_STR_CONTAINS (result.err, "mixed.yaml\": document 2, line 17, column 5: ");
    ZT_ASSERT_STR_CONTAINS (result.err, "spec.containers[0].imagee: unknown field \"imagee\"");
    s_result_free (&result);
    result = s_zubectl ("get", "pod", "bad", NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "Error from server (NotFound): pods \"bad\" not found\n");
    s_result_free (&result);
}

static void
test_apply_syntax_error (void)
{
    char path[600];
    s_write_file ("syntax.yaml",
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: syn-1\ndata:\n  a: b\n"
                  "---\n"
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: syn-2\n  labels: [\n",
                  path, sizeof path);
    s_result_t result = s_zubectl ("apply", "-f", path, NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.out, "");
    ZT_ASSERT_STR_CONTAINS (result.err, "error: error parsing ");
    ZT_ASSERT_STR_CONTAINS (result.err, "syntax.yaml: document 2");
    s_result_free (&result);
    result = s_zubectl ("get", "configmap", "syn-1", NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "configmaps \"syn-1\" not found");
    s_result_free (&result);
}

//  The bad-input list, one file each: every one is a clear error
//  naming the file, document and field (or the object), and nothing of it
//  is written.
static void
s_assert_apply_fails (const char *name, const char *text, const char *const *expected,
                      const char *resource, const char *object)
{
    char path[600];
    s_write_file (name, text, path, sizeof path);
    s_result_t result = s_zubectl ("apply", "-f", path, NULL);
    ZT_ASSERT_MSG (result.status == 1, "%s: exit %d, stdout: %s, stderr: %s", name,
                   result.status, result.out ? result.out : "", result.err ? result.err : "");
    ZT_ASSERT_MSG (result.out && strstr (result.out, "created") == NULL,
                   "%s: something was created: %s", name, result.out ? result.out : "");
    for (size_t i = 0; expected[i]; i++)
        ZT_ASSERT_MSG (result.err && strstr (result.err, expected[i]),
                       "%s: stderr lacks \"%s\": %s", name, expected[i],
                       result.err ? result.err : "");
    s_result_free (&result);
    result = s_zubectl ("get", resource, object, "-A", "--ignore-not-found", "-o", "name", NULL);
    ZT_ASSERT_MSG (result.status == 0 && result.out && *result.out == 0,
                   "%s: %s/%s exists after a failed apply: %s", name, resource, object,
                   result.out ? result.out : "");
    s_result_free (&result);
}

static void
test_apply_bad_input (void)
{
    s_assert_apply_fails ("unknown-kind.yaml",
                          "apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n",
                          (const char *[]) {"unknown-kind.yaml", "document 1", "Widget", NULL},
                          "configmaps", "w");
    s_assert_apply_fails ("unknown-field.yaml",
                          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: uf\n"
                          "  labelz:\n    a: b\n",
                          (const char *[]) {"unknown-field.yaml", "document 1",
                                            "metadata.labelz", "unknown field", NULL},
                          "configmaps", "uf");
    s_assert_apply_fails ("invalid-name.yaml",
                          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_Valid\n",
                          (const char *[]) {"metadata.name", "Invalid value", "Not_Valid",
                                            "RFC 1123", NULL},
                          "configmaps", "Not_Valid");
    s_assert_apply_fails ("missing-namespace.yaml",
                          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mn\n"
                          "  namespace: nowhere\n",
                          (const char *[]) {"(NotFound)", "namespaces \"nowhere\" not found",
                                            NULL},
                          "configmaps", "mn");
    s_assert_apply_fails ("alias-bomb.yaml",
                          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\n"
                          "  annotations:\n"
                          "    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                          "    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                          "    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                          "    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                          "    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                          "    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
                          (const char *[]) {"alias-bomb.yaml", "document 1", "alias", NULL},
                          "configmaps", "bomb");

    //  An object over 1.5 MiB (but under the codec's 3 MiB document limit):
    //  the apiserver refuses it by size.
    size_t big = 1600 * 1024;
    char *text = malloc (big + 256);
    ZT_ASSERT (text != NULL);
    int n = snprintf (text, 256, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\n"
                                 "data:\n  blob: ");
    memset (text + n, 'x', big);
    strcpy (text + n + big, "\n");
    s_assert_apply_fails ("huge.yaml", text,
                          (const char *[]) {"huge.yaml", "RequestEntityTooLarge", "too large", NULL},
                          "configmaps", "huge");
    free (text);
}

static void
test_apply_directory (void)
{
    char dir[600], path[600];
    snprintf (dir, sizeof dir, "%s/manifests", s_dir);
    mkdir (dir, 0755);
    s_write_file ("manifests/b.json",
                  "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"dir-b\"}}",
                  path, sizeof path);
    s_write_file ("manifests/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dir-a\n",
                  path, sizeof path);
    s_write_file ("manifests/notes.txt", "not a manifest\n", path, sizeof path);
    s_result_t result;
    S_RUN_OK (result, "apply", "-f", dir);
    ZT_ASSERT_STR_EQ (result.out, "configmap/dir-a created\nconfigmap/dir-b created\n");
    s_result_free (&result);
}

static void
test_get_formats (void)
{
    s_result_t result;
    S_RUN_OK (result, "get", "pods");
    ZT_ASSERT_STR_CONTAINS (result.out, "NAME   READY   STATUS");
    ZT_ASSERT_STR_CONTAINS (result.out, "RESTARTS   AGE\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "\nweb    0/1     ");
    s_result_free (&result);

    S_RUN_OK (result, "get", "pods", "-o", "wide");
    ZT_ASSERT_STR_CONTAINS (result.out, "AGE   IP       NODE     NOMINATED NODE   READINESS GATES\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "<none>   <none>   <none>           <none>\n");
    s_result_free (&result);

    S_RUN_OK (result, "get", "pod", "web", "-o", "yaml");
    ZT_ASSERT_MSG (strncmp (result.out, "apiVersion: v1\nkind: Pod\nmetadata:\n", 35) == 0,
                   "yaml:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "  name: web\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "image: nginx:1.25");
    s_result_free (&result);

    S_RUN_OK (result, "get", "po", "web", "-o", "json");
    ZT_ASSERT_MSG (strncmp (result.out, "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Pod\",", 44) == 0,
                   "json:\n%s", result.out);
    s_result_free (&result);

    S_RUN_OK (result, "get", "configmaps", "-o", "yaml");
    ZT_ASSERT_MSG (strncmp (result.out, "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n", 56) == 0,
                   "yaml list:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "kind: List\nmetadata:\n  resourceVersion: \"\"\n");
    s_result_free (&result);

    S_RUN_OK (result, "get", "configmaps", "-o", "json");
    ZT_ASSERT_STR_CONTAINS (result.out, "    \"items\": [\n        {\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "        },\n        {\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "    \"kind\": \"List\",\n");
    s_result_free (&result);

    S_RUN_OK (result, "get", "pods", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "pod/web\n");
    s_result_free (&result);

    S_RUN_OK (result, "get", "services");
    ZT_ASSERT_STR_CONTAINS (result.out, "NAME      TYPE        CLUSTER-IP");
    ZT_ASSERT_STR_CONTAINS (result.out, "EXTERNAL-IP   PORT(S)   AGE\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "80/TCP");
    s_result_free (&result);

    S_RUN_OK (result, "get", "cm", "cfg", "--no-headers", "--show-labels");
    ZT_ASSERT_MSG (strncmp (result.out, "cfg   1   ", 10) == 0, "cm:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "   app=web\n");
    s_result_free (&result);

    S_RUN_OK (result, "get", "namespaces");
    //  The apiserver makes default, kube-system, kube-public, kube-node-lease.
    ZT_ASSERT_STR_CONTAINS (result.out, "NAME              STATUS   AGE\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "\ndefault           Active   ");
    s_result_free (&result);

    S_RUN_OK (result, "get", "pods,services");
    ZT_ASSERT_STR_CONTAINS (result.out, "pod/web ");
    ZT_ASSERT_STR_CONTAINS (result.out, "\n\nNAME              TYPE");
    ZT_ASSERT_STR_CONTAINS (result.out, "service/web-svc ");
    s_result_free (&result);
}

static void
test_get_selectors (void)
{
    s_result_t result;
    S_RUN_OK (result, "get", "configmaps", "-l", "app=web", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "configmap/cfg\n");
    s_result_free (&result);
    S_RUN_OK (result, "get", "configmaps", "-l", "app", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "configmap/cfg\nconfigmap/good-1\n");
    s_result_free (&result);
    S_RUN_OK (result, "get", "configmaps", "-l", "app!=web", "-o", "name");
    ZT_ASSERT_MSG (!strstr (result.out, "configmap/cfg\n"), "app!=web:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "configmap/good-1\n");
    s_result_free (&result);
    S_RUN_OK (result, "get", "configmaps", "--field-selector", "metadata.name=good-2", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "configmap/good-2\n");
    s_result_free (&result);

    //  Another namespace, and -A.
    S_RUN_OK (result, "create", "namespace", "other");
    ZT_ASSERT_STR_EQ (result.out, "namespace/other created\n");
    s_result_free (&result);
    char path[600];
    s_write_file ("other.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n",
                  path, sizeof path);
    S_RUN_OK (result, "apply", "-f", path, "-n", "other");
    ZT_ASSERT_STR_EQ (result.out, "configmap/elsewhere created\n");
    s_result_free (&result);
    S_RUN_OK (result, "get", "configmaps", "-o", "name");
    ZT_ASSERT_MSG (!strstr (result.out, "elsewhere"), "default namespace:\n%s", result.out);
    s_result_free (&result);
    S_RUN_OK (result, "get", "configmaps", "-A");
    ZT_ASSERT_MSG (strncmp (result.out, "NAMESPACE   NAME", 16) == 0, "-A:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "\nother       elsewhere   0      ");
    ZT_ASSERT_STR_CONTAINS (result.out, "\ndefault     cfg ");
    s_result_free (&result);

    //  An empty namespace.
    S_RUN_OK (result, "get", "pods", "-n", "other");
    ZT_ASSERT_STR_EQ (result.out, "");
    ZT_ASSERT_STR_EQ (result.err, "No resources found in other namespace.\n");
    s_result_free (&result);
}

static void
test_describe (void)
{
    s_result_t result;
    char path[600];
    s_write_file ("event.yaml",
                  "apiVersion: v1\nkind: Event\nmetadata:\n  name: web.1\n"
                  "involvedObject:\n  kind: Pod\n  name: web\n  namespace: default\n"
                  "reason: Scheduled\nmessage: Successfully assigned default/web to node-1\n"
                  "type: Normal\nsource:\n  component: default-scheduler\n",
                  path, sizeof path);
    S_RUN_OK (result, "create", "-f", path);
    ZT_ASSERT_STR_EQ (result.out, "event/web.1 created\n");
    s_result_free (&result);
    S_RUN_OK (result, "describe", "pod", "web");
    ZT_ASSERT_MSG (strncmp (result.out, "Name:             web\nNamespace:        default\n", 48) == 0,
                   "describe:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "\nLabels:           app=web\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "\nAnnotations:      <none>\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "\nStatus:           ");
    ZT_ASSERT_STR_CONTAINS (result.out, "\nContainers:\n  nginx:\n    Image:        nginx:1.25\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "\n    Restart Count:  0\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "\nEvents:\n  Type     Reason      Age");
    ZT_ASSERT_STR_CONTAINS (result.out, "\n  Normal   Scheduled   ");
    ZT_ASSERT_STR_CONTAINS (result.out,
                            "   default-scheduler   Successfully assigned default/web to node-1\n");
    s_result_free (&result);
    S_RUN_OK (result, "describe", "service", "web-svc");
    ZT_ASSERT_STR_CONTAINS (result.out, "Selector:         app=web\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "Type:             ClusterIP\n");
    s_result_free (&result);
    result = s_zubectl ("describe", "pod", "nope", NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "Error from server (NotFound): pods \"nope\" not found\n");
    s_result_free (&result);
}

static void
test_patch_label_annotate (void)
{
    s_result_t result;
    S_RUN_OK (result, "label", "pod", "web", "tier=fe");
    ZT_ASSERT_STR_EQ (result.out, "pod/web labeled\n");
    s_result_free (&result);
    result = s_zubectl ("label", "pod", "web", "tier=be", NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "error: 'tier' already has a value (fe), and --overwrite is false\n");
    s_result_free (&result);
    S_RUN_OK (result, "label", "pod", "web", "tier=be", "--overwrite");
    ZT_ASSERT_STR_EQ (result.out, "pod/web labeled\n");
    s_result_free (&result);
    S_RUN_OK (result, "get", "pod", "web", "--show-labels", "--no-headers");
    ZT_ASSERT_STR_CONTAINS (result.out, "app=web,tier=be\n");
    s_result_free (&result);
    S_RUN_OK (result, "label", "pods", "web", "tier-");
    ZT_ASSERT_STR_EQ (result.out, "pod/web labeled\n");
    s_result_free (&result);
    S_RUN_OK (result, "get", "pod", "web", "--show-labels", "--no-headers");
    ZT_ASSERT_MSG (!strstr (result.out, "tier"), "label removed:\n%s", result.out);
    s_result_free (&result);

    S_RUN_OK (result, "annotate", "pod", "web", "note=first");
    ZT_ASSERT_STR_EQ (result.out, "pod/web annotated\n");
    s_result_free (&result);
    result = s_zubectl ("annotate", "pod/web", "note=second", NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "error: 'note' already has a value (first), and --overwrite is false\n");
    s_result_free (&result);
    S_RUN_OK (result, "describe", "pod", "web");
    ZT_ASSERT_STR_CONTAINS (result.out, "\nAnnotations:      note: first\n");
    s_result_free (&result);

    S_RUN_OK (result, "patch", "configmap", "cfg", "-p", "{\"data\":{\"k\":\"patched\"}}");
    ZT_ASSERT_STR_EQ (result.out, "configmap/cfg patched\n");
    s_result_free (&result);
    S_RUN_OK (result, "patch", "configmap", "cfg", "--type", "merge", "-p",
              "{\"data\":{\"k\":\"patched\"}}");
    ZT_ASSERT_STR_EQ (result.out, "configmap/cfg patched (no change)\n");
    s_result_free (&result);
    S_RUN_OK (result, "get", "configmap", "cfg", "-o", "json");
    ZT_ASSERT_STR_CONTAINS (result.out, "\"k\": \"patched\"");
    s_result_free (&result);
}

static void
test_errors (void)
{
    s_result_t result = s_zubectl ("get", "pods", "nope", NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.out, "");
    ZT_ASSERT_STR_EQ (result.err, "Error from server (NotFound): pods \"nope\" not found\n");
    s_result_free (&result);

    result = s_zubectl ("get", "foo", NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "error: the server doesn't have a resource type \"foo\"\n");
    s_result_free (&result);

    char path[300], expect[600];
    s_write_file ("app.yaml", s_manifest_v1, path, sizeof path);
    result = s_zubectl ("create", "-f", path, NULL);
    S_ASSERT_EXIT (result, 1);
    snprintf (expect, sizeof expect,
              "Error from server (AlreadyExists): error when creating \"%s\": pods \"web\" "
              "already exists\n",
              path);
    ZT_ASSERT_STR_CONTAINS (result.err, expect);
    s_result_free (&result);

    result = s_zubectl ("create", "namespace", "other", NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err,
                      "Error from server (AlreadyExists): namespaces \"other\" already exists\n");
    s_result_free (&result);

    s_write_file ("missing-ns.yaml",
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lost\n  namespace: missing\n",
                  path, sizeof path);
    result = s_zubectl ("apply", "-f", path, NULL);
    S_ASSERT_EXIT (result, 1);
    snprintf (expect, sizeof expect,
              "Error from server (NotFound): error when creating \"%s\": namespaces \"missing\" "
              "not found\n",
              path);
    ZT_ASSERT_STR_EQ (result.err, expect);
    s_result_free (&result);

    //  Invalid: kubectl's "The Pod ... is invalid" with the field causes.
    char invalid_path[300];
    s_write_file ("invalid.yaml",
                  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Web\nspec:\n  containers:\n"
                  "  - name: c\n    image: busybox\n",
                  invalid_path, sizeof invalid_path);
    result = s_zubectl ("apply", "-f", invalid_path, NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_MSG (strncmp (result.err, "The Pod \"Web\" is invalid: metadata.name: Invalid value: "
                                        "\"Web\": ", 63) == 0,
                   "invalid:\n%s", result.err);
    s_result_free (&result);

    result = s_zubectl ("apply", "-f", path, "-n", "other", NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err,
                      "error: the namespace from the provided object \"missing\" does not match "
                      "the namespace \"other\". You must pass '--namespace=missing' to perform "
                      "this operation.\n");
    s_result_free (&result);
}

static void
test_get_watch (void)
{
    char out_path[600], err_path[600];
    snprintf (out_path, sizeof out_path, "%s/watch.out", s_dir);
    snprintf (err_path, sizeof err_path, "%s/watch.err", s_dir);
    fflush (stdout);
    pid_t pid = fork ();
    if (pid == 0) {
        int out = open (out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open (err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2 (out, STDOUT_FILENO);
        dup2 (err, STDERR_FILENO);
        execl (zt_program ("zubectl"), "zubectl", "--config", s_config, "get", "configmaps", "-w",
               "--request-timeout", "20s", (char *) NULL);
        _exit (127);
    }
    ZT_ASSERT (pid > 0);
    //  The list comes first.
    bool listed = false;
    for (int64_t until = zt_now_ms () + 10000; !listed && zt_now_ms () < until; usleep (50000)) {
        char *text = zt_read_file (out_path);
        listed = text && strstr (text, "cfg ");
        free (text);
    }
    if (!listed) {
        zt_stop (pid, SIGKILL, 1000);
        ZT_FAIL ("get -w printed no list");
    }
    //  Then a change made meanwhile.
    char path[600];
    s_write_file ("watched.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\n",
                  path, sizeof path);
    s_result_t result;
    S_RUN_OK (result, "apply", "-f", path);
    s_result_free (&result);
    bool seen = false;
    for (int64_t until = zt_now_ms () + 15000; !seen && zt_now_ms () < until; usleep (50000)) {
        char *text = zt_read_file (out_path);
        seen = text && strstr (text, "\nwatched ");
        free (text);
    }
    int status = zt_stop (pid, SIGTERM, 3000);
    char *out = zt_read_file (out_path);
    ZT_ASSERT_MSG (seen, "get -w did not see the new configmap; stdout:\n%s", out ? out : "");
    ZT_ASSERT_MSG (strncmp (out, "NAME ", 5) == 0, "watch header:\n%s", out);
    free (out);
    (void) status;
}

static void
test_delete (void)
{
    s_result_t result;
    S_RUN_OK (result, "delete", "configmap", "good-2");
    ZT_ASSERT_STR_EQ (result.out, "configmap \"good-2\" deleted\n");
    s_result_free (&result);

    result = s_zubectl ("delete", "configmap", "good-2", NULL);
    S_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err,
                      "Error from server (NotFound): configmaps \"good-2\" not found\n");
    s_result_free (&result);
    S_RUN_OK (result, "delete", "configmap", "good-2", "--ignore-not-found");
    ZT_ASSERT_STR_EQ (result.out, "");
    s_result_free (&result);

    char path[600];
    snprintf (path, sizeof path, "%s/manifests", s_dir);
    S_RUN_OK (result, "delete", "-f", path);
    ZT_ASSERT_STR_EQ (result.out, "configmap \"dir-a\" deleted\nconfigmap \"dir-b\" deleted\n");
    s_result_free (&result);

    S_RUN_OK (result, "delete", "configmaps", "-l", "app=good", "--now");
    ZT_ASSERT_STR_EQ (result.out, "configmap \"good-1\" deleted\n");
    s_result_free (&result);
    S_RUN_OK (result, "delete", "configmaps", "-l", "app=good");
    ZT_ASSERT_STR_EQ (result.err, "No resources found in default namespace.\n");
    s_result_free (&result);
}

static void
test_backup_restore (void)
{
    char snapshot[600];
    snprintf (snapshot, sizeof snapshot, "%s/cluster.snap", s_dir);
    s_result_t result;
    S_RUN_OK (result, "backup", snapshot);
    ZT_ASSERT_STR_CONTAINS (result.out, "backup written to ");
    s_result_free (&result);
    struct stat st;
    ZT_ASSERT (stat (snapshot, &st) == 0 && st.st_size > 0);

    S_RUN_OK (result, "delete", "configmap", "cfg");
    s_result_free (&result);
    S_RUN_OK (result, "delete", "pod", "web", "--grace-period", "0");
    s_result_free (&result);
    result = s_zubectl ("get", "configmap", "cfg", NULL);
    S_ASSERT_EXIT (result, 1);
    s_result_free (&result);

    S_RUN_OK (result, "restore", snapshot);
    ZT_ASSERT_STR_CONTAINS (result.out, "restored ");
    s_result_free (&result);
    S_RUN_OK (result, "get", "configmap", "cfg", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "configmap/cfg\n");
    s_result_free (&result);
    S_RUN_OK (result, "get", "pod", "web", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "pod/web\n");
    s_result_free (&result);
}

static void
test_man_page_renders (void)
{
    const char *srcdir = getenv ("ZUBE_SRCDIR");
    if (system ("command -v man >/dev/null 2>&1") != 0) {
        printf ("# man is not installed: nothing checked\n");
        return;
    }
    char command[1400], err_path[700];
    snprintf (err_path, sizeof err_path, "%s/man.err", s_dir);
    snprintf (command, sizeof command,
              "MANWIDTH=80 man --warnings -l '%s/man/zubectl.1' 2>'%s' | grep -q 'zubectl apply'",
              srcdir ? srcdir : "..", err_path);
    int rc = system (command);
    char *err = zt_read_file (err_path);
    ZT_ASSERT_MSG (rc == 0 && err && *err == 0, "man zubectl.1: exit %d: %s", rc, err ? err : "");
    free (err);
}

int
main (void)
{
    s_dir = zt_tempdir ("zubectl");
    unsetenv ("ZUBECONFIG");
    char why[512] = "";
    s_ready = s_start_cluster (why, sizeof why);
    struct {
        const char *name;
        void (*fn) (void);
    } cases[] = {
        {"test_apply_multi_document", test_apply_multi_document},
        {"test_apply_bad_document", test_apply_bad_document},
        {"test_apply_syntax_error", test_apply_syntax_error},
        {"test_apply_bad_input", test_apply_bad_input},
        {"test_apply_directory", test_apply_directory},
        {"test_get_formats", test_get_formats},
        {"test_get_selectors", test_get_selectors},
        {"test_describe", test_describe},
        {"test_patch_label_annotate", test_patch_label_annotate},
        {"test_errors", test_errors},
        {"test_get_watch", test_get_watch},
        {"test_delete", test_delete},
        {"test_backup_restore", test_backup_restore},
    };
    int failed_before = zt_failed_count;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (s_ready)
            zt_run (cases[i].name, cases[i].fn);
        else
            zt_skip (cases[i].name, why);
    if (zt_failed_count > failed_before) {
        s_print_log_tail ("apiserver.log");
        s_print_log_tail ("broker.log");
    }
    s_stop_cluster ();
    ZT_RUN (test_man_page_renders);
    if (!getenv ("ZUBE_TEST_KEEP"))
        zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
