/*  test_zubectl - zubectl's API verbs against a real zube-broker and
    zube-apiserver (lmdb store in a temporary directory, free ports): the
    binary is run as a user runs it and its stdout, stderr and exit code
    are compared with what kubectl prints. */
#define _GNU_SOURCE
#include "../zt_cluster.h"

static char *s_dir;
static char s_config[512];
static zt_cluster_t s_cluster;
static bool s_ready;

//  Runs zubectl --config s_config with args (NULL-terminated), stdout and
//  stderr captured apart; kills it after 30 s.
static zt_run_t
s_zubectl (const char *first, ...)
{
    va_list args;
    va_start (args, first);
    zt_run_t result = zt_run_capture_va (
        30000, (const char *[]){zt_program ("zubectl"), "--config", s_config, first, NULL},
        args);
    va_end (args);
    return result;
}

//  Runs zubectl and asserts its exit code; the result is freed by the caller.
#define S_RUN_OK(result, ...)                                                 \
    do {                                                                      \
        (result) = s_zubectl (__VA_ARGS__, NULL);                             \
        ZT_ASSERT_EXIT ((result), 0);                                         \
    } while (0)

static void
s_write_file (const char *name, const char *text, char *path, size_t size)
{
    snprintf (path, size, "%s/%s", s_dir, name);
    ZT_WRITE_FILE (path, text);
}

//  ---------------------------------------------------------------------
//  The cluster

static bool
s_start_cluster (char *why, size_t why_size)
{
    if (!zt_cluster_start (&s_cluster, &(zt_cluster_options_t){.dir = s_dir,
                                                               .data_dir = "data",
                                                               .ready_timeout_ms = 30000})) {
        snprintf (why, why_size, "%s", s_cluster.why);
        return false;
    }
    char text[256];
    snprintf (text, sizeof text, "apiVersion: zube.io/v1alpha1\nkind: Config\nbroker: %s\n"
                                 "insecure: true\ntimeoutMs: 10000\n",
              s_cluster.endpoint);
    snprintf (s_config, sizeof s_config, "%s/zubeconfig", s_dir);
    if (!zt_write_file (s_config, text)) {
        snprintf (why, why_size, "cannot write the zubeconfig");
        return false;
    }
    zt_run_t result = s_zubectl ("create", "namespace", "default", NULL);
    bool created = result.status == 0 || (result.err && strstr (result.err, "AlreadyExists"));
    zt_run_free (&result);
    if (!created) {
        zt_cluster_log_tail (&s_cluster, "apiserver.log", 40);
        snprintf (why, why_size, "the apiserver does not answer zubectl");
        return false;
    }
    return true;
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
    zt_run_t result;
    S_RUN_OK (result, "apply", "-f", path);
    ZT_ASSERT_STR_EQ (result.out, "pod/web created\nservice/web-svc created\nconfigmap/cfg created\n");
    ZT_ASSERT_STR_EQ (result.err, "");
    zt_run_free (&result);

    S_RUN_OK (result, "apply", "-f", path);
    ZT_ASSERT_STR_EQ (result.out,
                      "pod/web unchanged\nservice/web-svc unchanged\nconfigmap/cfg unchanged\n");
    zt_run_free (&result);

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
    zt_run_free (&result);
    S_RUN_OK (result, "get", "configmap", "cfg", "-o", "yaml");
    ZT_ASSERT_STR_CONTAINS (result.out, "k: v2");
    ZT_ASSERT_MSG (!strstr (result.out, "gone:"), "the dropped key stayed:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "kubectl.kubernetes.io/last-applied-configuration");
    zt_run_free (&result);
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
    zt_run_t result = s_zubectl ("apply", "-f", path, NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.out, "configmap/good-1 created\nconfigmap/good-2 created\n");
    ZT_ASSERT_STR_CONTAINS (result.err, "error: error validating \"");
    ZT_ASSERT_STR_CONTAINS (result.err, "mixed.yaml\": document 2, line 17, column 5: ");
    ZT_ASSERT_STR_CONTAINS (result.err, "spec.containers[0].imagee: unknown field \"imagee\"");
    zt_run_free (&result);
    result = s_zubectl ("get", "pod", "bad", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "Error from server (NotFound): pods \"bad\" not found\n");
    zt_run_free (&result);
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
    zt_run_t result = s_zubectl ("apply", "-f", path, NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.out, "");
    ZT_ASSERT_STR_CONTAINS (result.err, "error: error parsing ");
    ZT_ASSERT_STR_CONTAINS (result.err, "syntax.yaml: document 2");
    zt_run_free (&result);
    result = s_zubectl ("get", "configmap", "syn-1", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "configmaps \"syn-1\" not found");
    zt_run_free (&result);
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
    zt_run_t result = s_zubectl ("apply", "-f", path, NULL);
    ZT_ASSERT_MSG (result.status == 1, "%s: exit %d, stdout: %s, stderr: %s", name,
                   result.status, result.out ? result.out : "", result.err ? result.err : "");
    ZT_ASSERT_MSG (result.out && strstr (result.out, "created") == NULL,
                   "%s: something was created: %s", name, result.out ? result.out : "");
    for (size_t i = 0; expected[i]; i++)
        ZT_ASSERT_MSG (result.err && strstr (result.err, expected[i]),
                       "%s: stderr lacks \"%s\": %s", name, expected[i],
                       result.err ? result.err : "");
    zt_run_free (&result);
    result = s_zubectl ("get", resource, object, "-A", "--ignore-not-found", "-o", "name", NULL);
    ZT_ASSERT_MSG (result.status == 0 && result.out && *result.out == 0,
                   "%s: %s/%s exists after a failed apply: %s", name, resource, object,
                   result.out ? result.out : "");
    zt_run_free (&result);
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
    zt_run_t result;
    S_RUN_OK (result, "apply", "-f", dir);
    ZT_ASSERT_STR_EQ (result.out, "configmap/dir-a created\nconfigmap/dir-b created\n");
    zt_run_free (&result);
}

static void
test_get_formats (void)
{
    zt_run_t result;
    S_RUN_OK (result, "get", "pods");
    ZT_ASSERT_STR_CONTAINS (result.out, "NAME   READY   STATUS");
    ZT_ASSERT_STR_CONTAINS (result.out, "RESTARTS   AGE\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "\nweb    0/1     ");
    zt_run_free (&result);

    S_RUN_OK (result, "get", "pods", "-o", "wide");
    ZT_ASSERT_STR_CONTAINS (result.out, "AGE   IP       NODE     NOMINATED NODE   READINESS GATES\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "<none>   <none>   <none>           <none>\n");
    zt_run_free (&result);

    S_RUN_OK (result, "get", "pod", "web", "-o", "yaml");
    ZT_ASSERT_MSG (strncmp (result.out, "apiVersion: v1\nkind: Pod\nmetadata:\n", 35) == 0,
                   "yaml:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "  name: web\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "image: nginx:1.25");
    zt_run_free (&result);

    S_RUN_OK (result, "get", "po", "web", "-o", "json");
    ZT_ASSERT_MSG (strncmp (result.out, "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Pod\",", 44) == 0,
                   "json:\n%s", result.out);
    zt_run_free (&result);

    S_RUN_OK (result, "get", "configmaps", "-o", "yaml");
    ZT_ASSERT_MSG (strncmp (result.out, "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n", 56) == 0,
                   "yaml list:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "kind: List\nmetadata:\n  resourceVersion: \"\"\n");
    zt_run_free (&result);

    S_RUN_OK (result, "get", "configmaps", "-o", "json");
    ZT_ASSERT_STR_CONTAINS (result.out, "    \"items\": [\n        {\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "        },\n        {\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "    \"kind\": \"List\",\n");
    zt_run_free (&result);

    S_RUN_OK (result, "get", "pods", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "pod/web\n");
    zt_run_free (&result);

    S_RUN_OK (result, "get", "services");
    ZT_ASSERT_STR_CONTAINS (result.out, "NAME      TYPE        CLUSTER-IP");
    ZT_ASSERT_STR_CONTAINS (result.out, "EXTERNAL-IP   PORT(S)   AGE\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "80/TCP");
    zt_run_free (&result);

    S_RUN_OK (result, "get", "cm", "cfg", "--no-headers", "--show-labels");
    ZT_ASSERT_MSG (strncmp (result.out, "cfg   1   ", 10) == 0, "cm:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "   app=web\n");
    zt_run_free (&result);

    S_RUN_OK (result, "get", "namespaces");
    //  The apiserver makes default, kube-system, kube-public, kube-node-lease.
    ZT_ASSERT_STR_CONTAINS (result.out, "NAME              STATUS   AGE\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "\ndefault           Active   ");
    zt_run_free (&result);

    S_RUN_OK (result, "get", "pods,services");
    ZT_ASSERT_STR_CONTAINS (result.out, "pod/web ");
    ZT_ASSERT_STR_CONTAINS (result.out, "\n\nNAME              TYPE");
    ZT_ASSERT_STR_CONTAINS (result.out, "service/web-svc ");
    zt_run_free (&result);
}

static void
test_get_selectors (void)
{
    zt_run_t result;
    S_RUN_OK (result, "get", "configmaps", "-l", "app=web", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "configmap/cfg\n");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "configmaps", "-l", "app", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "configmap/cfg\nconfigmap/good-1\n");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "configmaps", "-l", "app!=web", "-o", "name");
    ZT_ASSERT_MSG (!strstr (result.out, "configmap/cfg\n"), "app!=web:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "configmap/good-1\n");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "configmaps", "--field-selector", "metadata.name=good-2", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "configmap/good-2\n");
    zt_run_free (&result);

    //  Another namespace, and -A.
    S_RUN_OK (result, "create", "namespace", "other");
    ZT_ASSERT_STR_EQ (result.out, "namespace/other created\n");
    zt_run_free (&result);
    char path[600];
    s_write_file ("other.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n",
                  path, sizeof path);
    S_RUN_OK (result, "apply", "-f", path, "-n", "other");
    ZT_ASSERT_STR_EQ (result.out, "configmap/elsewhere created\n");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "configmaps", "-o", "name");
    ZT_ASSERT_MSG (!strstr (result.out, "elsewhere"), "default namespace:\n%s", result.out);
    zt_run_free (&result);
    S_RUN_OK (result, "get", "configmaps", "-A");
    ZT_ASSERT_MSG (strncmp (result.out, "NAMESPACE   NAME", 16) == 0, "-A:\n%s", result.out);
    ZT_ASSERT_STR_CONTAINS (result.out, "\nother       elsewhere   0      ");
    ZT_ASSERT_STR_CONTAINS (result.out, "\ndefault     cfg ");
    zt_run_free (&result);

    //  An empty namespace.
    S_RUN_OK (result, "get", "pods", "-n", "other");
    ZT_ASSERT_STR_EQ (result.out, "");
    ZT_ASSERT_STR_EQ (result.err, "No resources found in other namespace.\n");
    zt_run_free (&result);
}

static void
test_describe (void)
{
    zt_run_t result;
    char path[600];
    s_write_file ("event.yaml",
                  "apiVersion: v1\nkind: Event\nmetadata:\n  name: web.1\n"
                  "involvedObject:\n  kind: Pod\n  name: web\n  namespace: default\n"
                  "reason: Scheduled\nmessage: Successfully assigned default/web to node-1\n"
                  "type: Normal\nsource:\n  component: default-scheduler\n",
                  path, sizeof path);
    S_RUN_OK (result, "create", "-f", path);
    ZT_ASSERT_STR_EQ (result.out, "event/web.1 created\n");
    zt_run_free (&result);
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
    zt_run_free (&result);
    S_RUN_OK (result, "describe", "service", "web-svc");
    ZT_ASSERT_STR_CONTAINS (result.out, "Selector:         app=web\n");
    ZT_ASSERT_STR_CONTAINS (result.out, "Type:             ClusterIP\n");
    zt_run_free (&result);
    result = s_zubectl ("describe", "pod", "nope", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "Error from server (NotFound): pods \"nope\" not found\n");
    zt_run_free (&result);
}

static void
test_patch_label_annotate (void)
{
    zt_run_t result;
    S_RUN_OK (result, "label", "pod", "web", "tier=fe");
    ZT_ASSERT_STR_EQ (result.out, "pod/web labeled\n");
    zt_run_free (&result);
    result = s_zubectl ("label", "pod", "web", "tier=be", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "error: 'tier' already has a value (fe), and --overwrite is false\n");
    zt_run_free (&result);
    S_RUN_OK (result, "label", "pod", "web", "tier=be", "--overwrite");
    ZT_ASSERT_STR_EQ (result.out, "pod/web labeled\n");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "pod", "web", "--show-labels", "--no-headers");
    ZT_ASSERT_STR_CONTAINS (result.out, "app=web,tier=be\n");
    zt_run_free (&result);
    S_RUN_OK (result, "label", "pods", "web", "tier-");
    ZT_ASSERT_STR_EQ (result.out, "pod/web labeled\n");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "pod", "web", "--show-labels", "--no-headers");
    ZT_ASSERT_MSG (!strstr (result.out, "tier"), "label removed:\n%s", result.out);
    zt_run_free (&result);

    S_RUN_OK (result, "annotate", "pod", "web", "note=first");
    ZT_ASSERT_STR_EQ (result.out, "pod/web annotated\n");
    zt_run_free (&result);
    result = s_zubectl ("annotate", "pod/web", "note=second", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "error: 'note' already has a value (first), and --overwrite is false\n");
    zt_run_free (&result);
    S_RUN_OK (result, "describe", "pod", "web");
    ZT_ASSERT_STR_CONTAINS (result.out, "\nAnnotations:      note: first\n");
    zt_run_free (&result);

    S_RUN_OK (result, "patch", "configmap", "cfg", "-p", "{\"data\":{\"k\":\"patched\"}}");
    ZT_ASSERT_STR_EQ (result.out, "configmap/cfg patched\n");
    zt_run_free (&result);
    S_RUN_OK (result, "patch", "configmap", "cfg", "--type", "merge", "-p",
              "{\"data\":{\"k\":\"patched\"}}");
    ZT_ASSERT_STR_EQ (result.out, "configmap/cfg patched (no change)\n");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "configmap", "cfg", "-o", "json");
    ZT_ASSERT_STR_CONTAINS (result.out, "\"k\": \"patched\"");
    zt_run_free (&result);
}

static void
test_errors (void)
{
    zt_run_t result = s_zubectl ("get", "pods", "nope", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.out, "");
    ZT_ASSERT_STR_EQ (result.err, "Error from server (NotFound): pods \"nope\" not found\n");
    zt_run_free (&result);

    result = s_zubectl ("get", "foo", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "error: the server doesn't have a resource type \"foo\"\n");
    zt_run_free (&result);

    char path[300], expect[600];
    s_write_file ("app.yaml", s_manifest_v1, path, sizeof path);
    result = s_zubectl ("create", "-f", path, NULL);
    ZT_ASSERT_EXIT (result, 1);
    snprintf (expect, sizeof expect,
              "Error from server (AlreadyExists): error when creating \"%s\": pods \"web\" "
              "already exists\n",
              path);
    ZT_ASSERT_STR_CONTAINS (result.err, expect);
    zt_run_free (&result);

    result = s_zubectl ("create", "namespace", "other", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err,
                      "Error from server (AlreadyExists): namespaces \"other\" already exists\n");
    zt_run_free (&result);

    s_write_file ("missing-ns.yaml",
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lost\n  namespace: missing\n",
                  path, sizeof path);
    result = s_zubectl ("apply", "-f", path, NULL);
    ZT_ASSERT_EXIT (result, 1);
    snprintf (expect, sizeof expect,
              "Error from server (NotFound): error when creating \"%s\": namespaces \"missing\" "
              "not found\n",
              path);
    ZT_ASSERT_STR_EQ (result.err, expect);
    zt_run_free (&result);

    //  Invalid: kubectl's "The Pod ... is invalid" with the field causes.
    char invalid_path[300];
    s_write_file ("invalid.yaml",
                  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Web\nspec:\n  containers:\n"
                  "  - name: c\n    image: busybox\n",
                  invalid_path, sizeof invalid_path);
    result = s_zubectl ("apply", "-f", invalid_path, NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_MSG (strncmp (result.err, "The Pod \"Web\" is invalid: metadata.name: Invalid value: "
                                        "\"Web\": ", 63) == 0,
                   "invalid:\n%s", result.err);
    zt_run_free (&result);

    result = s_zubectl ("apply", "-f", path, "-n", "other", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err,
                      "error: the namespace from the provided object \"missing\" does not match "
                      "the namespace \"other\". You must pass '--namespace=missing' to perform "
                      "this operation.\n");
    zt_run_free (&result);
}

static void
test_get_watch (void)
{
    char out_path[600], err_path[600];
    snprintf (out_path, sizeof out_path, "%s/watch.out", s_dir);
    snprintf (err_path, sizeof err_path, "%s/watch.err", s_dir);
    char *argv[] = {(char *) zt_program ("zubectl"), "--config", s_config, "get", "configmaps",
                    "-w", "--request-timeout", "20s", NULL};
    pid_t pid = zt_run_start (argv, out_path, err_path);
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
    zt_run_t result;
    S_RUN_OK (result, "apply", "-f", path);
    zt_run_free (&result);
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
    zt_run_t result;
    S_RUN_OK (result, "delete", "configmap", "good-2");
    ZT_ASSERT_STR_EQ (result.out, "configmap \"good-2\" deleted\n");
    zt_run_free (&result);

    result = s_zubectl ("delete", "configmap", "good-2", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err,
                      "Error from server (NotFound): configmaps \"good-2\" not found\n");
    zt_run_free (&result);
    S_RUN_OK (result, "delete", "configmap", "good-2", "--ignore-not-found");
    ZT_ASSERT_STR_EQ (result.out, "");
    zt_run_free (&result);

    char path[600];
    snprintf (path, sizeof path, "%s/manifests", s_dir);
    S_RUN_OK (result, "delete", "-f", path);
    ZT_ASSERT_STR_EQ (result.out, "configmap \"dir-a\" deleted\nconfigmap \"dir-b\" deleted\n");
    zt_run_free (&result);

    S_RUN_OK (result, "delete", "configmaps", "-l", "app=good", "--now");
    ZT_ASSERT_STR_EQ (result.out, "configmap \"good-1\" deleted\n");
    zt_run_free (&result);
    S_RUN_OK (result, "delete", "configmaps", "-l", "app=good");
    ZT_ASSERT_STR_EQ (result.err, "No resources found in default namespace.\n");
    zt_run_free (&result);
}

//  scale, patch --type json|strategic, delete --cascade
static void
test_scale_patch_cascade (void)
{
    char path[600];
    s_write_file ("scale.yaml",
                  "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
                  "  labels:\n    app: web\nspec:\n"
                  "  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n"
                  "  template:\n    metadata:\n      labels:\n        app: web\n"
                  "    spec:\n      containers:\n      - name: app\n        image: nginx\n",
                  path, sizeof path);
    zt_run_t result;
    S_RUN_OK (result, "apply", "-f", path);
    zt_run_free (&result);
    S_RUN_OK (result, "scale", "deployment", "web", "--replicas", "5");
    ZT_ASSERT_STR_EQ (result.out, "deployment.apps/web scaled\n");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "deployment", "web", "-o", "json");
    ZT_ASSERT_STR_CONTAINS (result.out, "\"replicas\": 5");
    zt_run_free (&result);
    //  --current-replicas is a precondition
    result = s_zubectl ("scale", "deployment/web", "--current-replicas", "2", "--replicas",
                        "1", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_EQ (result.err, "error: Expected replicas to be 2, was 5\n");
    zt_run_free (&result);
    S_RUN_OK (result, "scale", "deployment/web", "--current-replicas", "5", "--replicas", "0");
    ZT_ASSERT_STR_EQ (result.out, "deployment.apps/web scaled\n");
    zt_run_free (&result);
    //  A stale --resource-version: Conflict from the server
    result = s_zubectl ("scale", "deployment", "web", "--resource-version", "1",
                        "--replicas", "3", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "Error from server (Conflict)");
    zt_run_free (&result);
    //  By label selector: every match in the namespace
    S_RUN_OK (result, "scale", "deployments", "-l", "app=web", "--replicas", "2");
    ZT_ASSERT_STR_EQ (result.out, "deployment.apps/web scaled\n");
    zt_run_free (&result);
    S_RUN_OK (result, "scale", "deployments", "-l", "app=none", "--replicas", "2");
    ZT_ASSERT_STR_EQ (result.err, "No resources found in default namespace.\n");
    zt_run_free (&result);
    result = s_zubectl ("scale", "deployment", "web", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "--replicas=COUNT flag is required");
    zt_run_free (&result);
    result = s_zubectl ("scale", "configmap", "cfg", "--replicas", "1", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "Error from server (NotFound)");
    zt_run_free (&result);

    //  JSON patch: applied, then a failing test names its operation
    S_RUN_OK (result, "patch", "deployment", "web", "--type", "json", "-p",
              "[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":4}]");
    ZT_ASSERT_STR_EQ (result.out, "deployment.apps/web patched\n");
    zt_run_free (&result);
    result = s_zubectl ("patch", "deployment", "web", "--type", "json", "-p",
                        "[{\"op\":\"test\",\"path\":\"/spec/replicas\",\"value\":9}]", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "The Deployment \"web\" is invalid: patch: ");
    ZT_ASSERT_STR_CONTAINS (result.err, "operation 0 (test /spec/replicas)");
    zt_run_free (&result);
    //  Strategic (the default): a container added by name, the other kept
    S_RUN_OK (result, "patch", "deployment", "web", "-p",
              "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"log\","
              "\"image\":\"busybox\"}]}}}}");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "deployment", "web", "-o", "json");
    ZT_ASSERT_STR_CONTAINS (result.out, "\"name\": \"app\"");
    ZT_ASSERT_STR_CONTAINS (result.out, "\"name\": \"log\"");
    zt_run_free (&result);

    //  --cascade=orphan keeps the object, with the orphan finalizer
    S_RUN_OK (result, "delete", "deployment", "web", "--cascade=orphan");
    ZT_ASSERT_STR_EQ (result.out, "deployment.apps \"web\" deleted\n");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "deployment", "web", "-o", "json");
    ZT_ASSERT_STR_CONTAINS (result.out, "\"orphan\"");
    ZT_ASSERT_STR_CONTAINS (result.out, "\"deletionTimestamp\"");
    zt_run_free (&result);
    result = s_zubectl ("delete", "deployment", "web", "--cascade=sideways", NULL);
    ZT_ASSERT_EXIT (result, 1);
    ZT_ASSERT_STR_CONTAINS (result.err, "invalid cascade value (sideways)");
    zt_run_free (&result);
    //  background (the default) takes the finalizer away: gone
    S_RUN_OK (result, "delete", "deployment", "web");
    zt_run_free (&result);
    result = s_zubectl ("get", "deployment", "web", NULL);
    ZT_ASSERT_EXIT (result, 1);
    zt_run_free (&result);
}

static void
test_backup_restore (void)
{
    char snapshot[600];
    snprintf (snapshot, sizeof snapshot, "%s/cluster.snap", s_dir);
    zt_run_t result;
    S_RUN_OK (result, "backup", snapshot);
    ZT_ASSERT_STR_CONTAINS (result.out, "backup written to ");
    zt_run_free (&result);
    struct stat st;
    ZT_ASSERT (stat (snapshot, &st) == 0 && st.st_size > 0);

    S_RUN_OK (result, "delete", "configmap", "cfg");
    zt_run_free (&result);
    S_RUN_OK (result, "delete", "pod", "web", "--grace-period", "0");
    zt_run_free (&result);
    result = s_zubectl ("get", "configmap", "cfg", NULL);
    ZT_ASSERT_EXIT (result, 1);
    zt_run_free (&result);

    S_RUN_OK (result, "restore", snapshot);
    ZT_ASSERT_STR_CONTAINS (result.out, "restored ");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "configmap", "cfg", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "configmap/cfg\n");
    zt_run_free (&result);
    S_RUN_OK (result, "get", "pod", "web", "-o", "name");
    ZT_ASSERT_STR_EQ (result.out, "pod/web\n");
    zt_run_free (&result);
}

static void
test_man_page_renders (void)
{
    zt_run_t result = zt_man_render ("zubectl.1");
    if (result.status == -1) {
        printf ("# man is not installed: nothing checked\n");
        return;
    }
    ZT_ASSERT_MSG (result.status == 0 && result.err && *result.err == 0,
                   "man zubectl.1: exit %d: %s", result.status, result.err ? result.err : "");
    ZT_ASSERT_STR_CONTAINS (result.out, "zubectl apply");
    zt_run_free (&result);
}

int
main (void)
{
    s_dir = zt_tempdir ("zubectl");
    unsetenv ("ZUBE_CONFIG");
    char why[1024] = "";
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
        {"test_scale_patch_cascade", test_scale_patch_cascade},
        {"test_backup_restore", test_backup_restore},
    };
    int failed_before = zt_failed_count;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (s_ready)
            zt_run (cases[i].name, cases[i].fn);
        else
            zt_skip (cases[i].name, why);
    zt_cluster_stop (&s_cluster, zt_failed_count > failed_before);
    ZT_RUN (test_man_page_renders);
    if (!getenv ("ZUBE_TEST_KEEP"))
        zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
