/*  test_zubelet - the node agent against a real zube-broker, zube-apiserver
    (lmdb in a temporary directory, free ports) and the sim runtime plugin:
    nodes from a shapes file, leases, pods through their phases (Running,
    Succeeded, Failed, CrashLoopBackOff with its back-off schedule, missing
    images), deletion with grace, a pod bound to a node nobody hosts, kill
    -9 and adoption, and the start errors (malformed shapes file, node name
    held by another zubelet, unreachable broker). */
#define _GNU_SOURCE
#include "../zt_cluster.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include "zube/api.h"
#include "zube/codec.h"
#include "core.pb-c.h"
#include "coordination.pb-c.h"
#include "node.pb-c.h"
#include <czmq.h>

static char *s_dir;
static char s_endpoint[64];
static pid_t s_broker;
static pid_t s_apiserver;
static pid_t s_zubelet;
static zube_bus_t *s_bus;
static zube_api_t *s_api;
static char s_shapes[600];
static char s_state[600];

#define S_BACKOFF_BASE_S 2

//  ---------------------------------------------------------------------
//  Helpers

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
    char path[700];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    char *text = zt_read_file (path);
    if (!text)
        return;
    size_t length = strlen (text);
    const char *tail = length > 2500 ? text + length - 2500 : text;
    printf ("# --- %s ---\n", name);
    for (const char *line = tail; *line;) {
        const char *end = strchr (line, '\n');
        size_t n = end ? (size_t) (end - line) : strlen (line);
        printf ("# %.*s\n", (int) n, line);
        line += n + (end ? 1 : 0);
    }
    free (text);
}

//  Starts a zubelet with the common flags plus extra (NULL-terminated)
static pid_t
s_zubelet_start (const char *log, const char *state, ...)
{
    char *argv[40];
    int argc = 0;
    argv[argc++] = (char *) zt_program ("zubelet");
    argv[argc++] = "--bus";
    argv[argc++] = s_endpoint;
    argv[argc++] = "--insecure";
    argv[argc++] = "--state-dir";
    argv[argc++] = (char *) state;
    va_list args;
    va_start (args, state);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < 39)
        argv[argc++] = (char *) arg;
    va_end (args);
    argv[argc] = NULL;
    char path[700];
    snprintf (path, sizeof path, "%s/%s", s_dir, log);
    return zt_spawn (argv, path);
}

//  Runs a zubelet that is expected to stop by itself; its exit code and
//  its output (malloc'd) back
static int
s_zubelet_run (char **output_p, int timeout_ms, ...)
{
    static int serial = 0;
    char log[64];
    snprintf (log, sizeof log, "zubelet-run-%d.log", serial++);
    char *argv[40];
    int argc = 0;
    argv[argc++] = (char *) zt_program ("zubelet");
    va_list args;
    va_start (args, timeout_ms);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < 39)
        argv[argc++] = (char *) arg;
    va_end (args);
    argv[argc] = NULL;
    char path[700];
    snprintf (path, sizeof path, "%s/%s", s_dir, log);
    pid_t pid = zt_spawn (argv, path);
    int status = 0;
    int64_t until = zt_now_ms () + timeout_ms;
    while (waitpid (pid, &status, WNOHANG) != pid) {
        if (zt_now_ms () > until) {
            kill (pid, SIGKILL);
            waitpid (pid, &status, 0);
            break;
        }
        usleep (20000);
    }
    *output_p = zt_read_file (path);
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static ProtobufCMessage *
s_get (const char *resource, const char *ns, const char *name)
{
    ProtobufCMessage *object = NULL;
    zube_api_error_t error;
    if (zube_api_get (s_api, resource, ns, name, &object, &error) != ZUBE_OK)
        return NULL;
    return object;
}

static char *
s_get_json (const char *resource, const char *ns, const char *name)
{
    ProtobufCMessage *object = s_get (resource, ns, name);
    if (!object)
        return NULL;
    char *json = zube_codec_encode_json (object, false);
    protobuf_c_message_free_unpacked (object, NULL);
    return json;
}

static void
s_create_pod (const char *yaml)
{
    ProtobufCMessage *pod = NULL;
    zube_codec_error_t codec_error;
    ZT_ASSERT_MSG (zube_codec_decode (yaml, strlen (yaml), &zube__pod__descriptor, &pod,
                                      &codec_error) == 0,
                   "bad pod yaml: %s", codec_error.message);
    zube_api_error_t error;
    zube_status_t status = zube_api_create (s_api, "pods", "default", pod, false, NULL, &error);
    protobuf_c_message_free_unpacked (pod, NULL);
    ZT_ASSERT_MSG (status == ZUBE_OK, "create pod: %.900s", error.message);
}

static Zube__Pod *
s_pod (const char *name)
{
    return (Zube__Pod *) s_get ("pods", "default", name);
}

static const char *
s_phase (Zube__Pod *pod)
{
    return pod && pod->status && pod->status->phase ? pod->status->phase : "";
}

//  Polls the pod until its phase is PHASE; the pod (caller frees) or NULL
static Zube__Pod *
s_wait_phase (const char *name, const char *phase, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        Zube__Pod *pod = s_pod (name);
        if (pod && streq (s_phase (pod), phase))
            return pod;
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        usleep (100000);
    }
    return NULL;
}

static Zube__PodCondition *
s_condition (Zube__Pod *pod, const char *type)
{
    for (size_t i = 0; pod->status && i < pod->status->n_conditions; i++)
        if (streq (pod->status->conditions[i]->type, type))
            return pod->status->conditions[i];
    return NULL;
}

static int64_t
s_time_s (const char *text)
{
    struct tm tm = {0};
    if (!text || !strptime (text, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (int64_t) timegm (&tm);
}

static Zube__Lease *
s_lease (const char *node)
{
    return (Zube__Lease *) s_get ("leases", "kube-node-lease", node);
}

static char *
s_renew_time (const char *node)
{
    Zube__Lease *lease = s_lease (node);
    char *renew = lease && lease->spec && lease->spec->renew_time
                      ? strdup (lease->spec->renew_time)
                      : NULL;
    if (lease)
        protobuf_c_message_free_unpacked (&lease->base, NULL);
    return renew;
}

//  ---------------------------------------------------------------------
//  The cluster

static bool
s_start_cluster (char *why, size_t why_size)
{
    snprintf (s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", zt_free_port (3));
    char log[700], store[700], data[700];
    snprintf (log, sizeof log, "%s/broker.log", s_dir);
    char *broker_argv[] = {(char *) zt_program ("zube-broker"), "--insecure", "--bind",
                           s_endpoint, NULL};
    s_broker = zt_spawn (broker_argv, log);
    if (s_broker <= 0 || !zt_wait_port (atoi (strrchr (s_endpoint, ':') + 1), 5000)) {
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
    s_bus = zube_bus_new (&(zube_bus_config_t){.endpoint = s_endpoint, .insecure = true});
    s_api = zube_api_new (s_bus);
    zube_api_set_timeout (s_api, 5000);
    for (int64_t until = zt_now_ms () + 30000; zt_now_ms () < until;) {
        ProtobufCMessage *ns = s_get ("namespaces", NULL, "kube-node-lease");
        if (ns) {
            protobuf_c_message_free_unpacked (ns, NULL);
            return true;
        }
        if (waitpid (s_apiserver, NULL, WNOHANG) == s_apiserver) {
            s_apiserver = 0;
            break;
        }
        usleep (200000);
    }
    s_print_log_tail ("apiserver.log");
    snprintf (why, why_size, "zube-apiserver does not answer");
    return false;
}

static void
s_stop_cluster (void)
{
    if (s_zubelet > 0)
        zt_stop (s_zubelet, SIGTERM, 5000);
    zube_api_destroy (&s_api);
    zube_bus_destroy (&s_bus);
    if (s_apiserver > 0)
        zt_stop (s_apiserver, SIGTERM, 5000);
    if (s_broker > 0)
        zt_stop (s_broker, SIGTERM, 3000);
}

//  ---------------------------------------------------------------------
//  Nodes

static const char *s_shapes_yaml =
    "apiVersion: zube.io/v1alpha1\n"
    "kind: NodeShapes\n"
    "shapes:\n"
    "- name: small\n"
    "  count: 4\n"
    "  cpu: \"2\"\n"
    "  memory: 8Gi\n"
    "  pods: 50\n"
    "  zones: [zone-a, zone-b]\n"
    "  region: region-1\n"
    "  labels: {tier: web}\n"
    "- name: big\n"
    "  count: 3\n"
    "  cpu: \"16\"\n"
    "  memory: 64Gi\n"
    "  reserved: {cpu: 500m, memory: 1Gi}\n"
    "  zone: zone-c\n"
    "  region: region-1\n"
    "- name: gpu\n"
    "  weight: 1\n"
    "  cpu: \"8\"\n"
    "  memory: 32Gi\n"
    "  ephemeralStorage: 200Gi\n"
    "  extendedResources: {nvidia.com/gpu: \"4\"}\n"
    "  zone: zone-c\n"
    "  taints:\n"
    "  - {key: nvidia.com/gpu, value: \"true\", effect: NoSchedule}\n";

static void
test_nodes_register_from_shapes (void)
{
    s_write_file ("shapes.yaml", s_shapes_yaml, s_shapes, sizeof s_shapes);
    snprintf (s_state, sizeof s_state, "%s/state", s_dir);
    char base[16];
    snprintf (base, sizeof base, "%ds", S_BACKOFF_BASE_S);
    s_zubelet = s_zubelet_start ("zubelet.log", s_state, "--nodes", "10", "--node-name-prefix",
                                 "shp-", "--node-shapes", s_shapes,
                                 "--node-status-update-frequency", "1s",
                                 "--lease-duration-seconds", "6", "--crash-loop-backoff-base",
                                 base, "--log-level", "debug", NULL);
    ZT_ASSERT (s_zubelet > 0);
    char *json = NULL;
    for (int64_t until = zt_now_ms () + 20000; zt_now_ms () < until && !json;) {
        json = s_get_json ("nodes", NULL, "shp-0010");
        if (!json || !strstr (json, "\"KubeletReady\"")) {
            free (json);
            json = NULL;
            usleep (100000);
        }
    }
    if (!json)
        s_print_log_tail ("zubelet.log");
    ZT_ASSERT_MSG (json, "node shp-0010 did not register as Ready");
    //  shp-0008..0010 are the gpu shape (the weighted rest)
    ZT_ASSERT_STR_CONTAINS (json, "\"node.kubernetes.io/instance-type\":\"gpu\"");
    ZT_ASSERT_STR_CONTAINS (json, "\"nvidia.com/gpu\":\"4\"");
    ZT_ASSERT_STR_CONTAINS (json, "\"ephemeral-storage\":\"200Gi\"");
    ZT_ASSERT_STR_CONTAINS (json, "\"taints\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"true\","
                                  "\"effect\":\"NoSchedule\"}]");
    ZT_ASSERT_STR_CONTAINS (json, "\"containerRuntimeVersion\":\"sim://0.1\"");
    ZT_ASSERT_STR_CONTAINS (json, "\"type\":\"InternalIP\"");
    free (json);
    //  Every one of the 10 nodes, with its shape
    static const char *expected[10] = {"small", "small", "small", "small", "big",
                                       "big",   "big",   "gpu",   "gpu",   "gpu"};
    for (int i = 1; i <= 10; i++) {
        char name[32], label[96];
        snprintf (name, sizeof name, "shp-%04d", i);
        json = s_get_json ("nodes", NULL, name);
        ZT_ASSERT_MSG (json, "node %s missing", name);
        snprintf (label, sizeof label, "\"node.kubernetes.io/instance-type\":\"%s\"",
                  expected[i - 1]);
        ZT_ASSERT_STR_CONTAINS (json, label);
        snprintf (label, sizeof label, "\"kubernetes.io/hostname\":\"%s\"", name);
        ZT_ASSERT_STR_CONTAINS (json, label);
        ZT_ASSERT_STR_CONTAINS (json, "\"kubernetes.io/os\":\"linux\"");
        ZT_ASSERT_STR_CONTAINS (json, "\"kubernetes.io/arch\":");
        if (i == 1) {
            ZT_ASSERT_STR_CONTAINS (json, "\"topology.kubernetes.io/zone\":\"zone-a\"");
            ZT_ASSERT_STR_CONTAINS (json, "\"topology.kubernetes.io/region\":\"region-1\"");
            ZT_ASSERT_STR_CONTAINS (json, "\"tier\":\"web\"");
            ZT_ASSERT_STR_CONTAINS (json, "\"capacity\":{\"cpu\":\"2\",\"memory\":\"8Gi\","
                                          "\"pods\":\"50\"");
            for (const char *type = "MemoryPressure"; type;
                 type = streq (type, "MemoryPressure") ? "DiskPressure"
                        : streq (type, "DiskPressure") ? "PIDPressure"
                                                         : NULL) {
                char text[64];
                snprintf (text, sizeof text, "\"type\":\"%s\",\"status\":\"False\"", type);
                ZT_ASSERT_STR_CONTAINS (json, text);
            }
            ZT_ASSERT_STR_CONTAINS (json, "\"lastHeartbeatTime\":");
        }
        if (i == 2)
            ZT_ASSERT_STR_CONTAINS (json, "\"topology.kubernetes.io/zone\":\"zone-b\"");
        if (i == 5) {
            ZT_ASSERT_STR_CONTAINS (json, "\"capacity\":{\"cpu\":\"16\",\"memory\":\"64Gi\"");
            ZT_ASSERT_STR_CONTAINS (json,
                                    "\"allocatable\":{\"cpu\":\"15500m\",\"memory\":\"63Gi\"");
            ZT_ASSERT_STR_CONTAINS (json, "\"topology.kubernetes.io/zone\":\"zone-c\"");
        }
        free (json);
    }
    json = s_get_json ("nodes", NULL, "shp-0011");
    ZT_ASSERT_MSG (!json, "shp-0011 exists: %s", json);
}

static void
test_leases_renewed (void)
{
    Zube__Lease *lease = s_lease ("shp-0003");
    ZT_ASSERT_MSG (lease && lease->spec, "no lease for shp-0003");
    ZT_ASSERT_INT_EQ (lease->spec->lease_duration_seconds, 6);
    ZT_ASSERT (lease->spec->holder_identity && *lease->spec->holder_identity);
    //  MicroTime: six digits of fraction
    const char *dot = lease->spec->renew_time ? strchr (lease->spec->renew_time, '.') : NULL;
    ZT_ASSERT_MSG (dot && strlen (dot) == 8 && dot[7] == 'Z', "renewTime %s",
                   lease->spec->renew_time ? lease->spec->renew_time : "(none)");
    protobuf_c_message_free_unpacked (&lease->base, NULL);
    for (int i = 1; i <= 10; i += 3) {
        char name[32];
        snprintf (name, sizeof name, "shp-%04d", i);
        char *first = s_renew_time (name);
        ZT_ASSERT_MSG (first, "no lease for %s", name);
        usleep (1600000);
        char *second = s_renew_time (name);
        ZT_ASSERT_MSG (second && !streq (first, second), "lease %s not renewed: %s", name, first);
        free (first);
        free (second);
    }
}

//  Another writer updates shp-0004's Lease between renewals: each
//  renewal after such a write meets a Conflict, reads the Lease again
//  and renews that, so renewals go on and the writer's label stays
static void
test_lease_conflicting_writer (void)
{
    for (int i = 0; i < 6; i++) {
        bool written = false;
        for (int attempt = 0; attempt < 20 && !written; attempt++) {
            Zube__Lease *lease = s_lease ("shp-0004");
            ZT_ASSERT_MSG (lease && lease->metadata, "no lease for shp-0004");
            char value[16];
            snprintf (value, sizeof value, "%d", i);
            Zube__ObjectMeta__LabelsEntry entry = ZUBE__OBJECT_META__LABELS_ENTRY__INIT;
            entry.key = "test.zube.io/writer";
            entry.value = value;
            Zube__ObjectMeta__LabelsEntry *entries[1] = {&entry};
            size_t n_labels = lease->metadata->n_labels;
            Zube__ObjectMeta__LabelsEntry **labels = lease->metadata->labels;
            lease->metadata->n_labels = 1;
            lease->metadata->labels = entries;
            zube_api_error_t error;
            zube_status_t status = zube_api_update (s_api, "leases", "kube-node-lease",
                                                    &lease->base, NULL, false, NULL, &error);
            lease->metadata->n_labels = n_labels;
            lease->metadata->labels = labels;
            protobuf_c_message_free_unpacked (&lease->base, NULL);
            ZT_ASSERT_MSG (status == ZUBE_OK || status == ZUBE_CONFLICT, "update: %.500s",
                           error.message);
            written = status == ZUBE_OK;
        }
        ZT_ASSERT_MSG (written, "the test's lease writer never won");
        usleep (400000);
    }
    //  Renewals go on after the last write, and keep the label
    char *first = s_renew_time ("shp-0004");
    char *later = NULL;
    for (int64_t until = zt_now_ms () + 15000; zt_now_ms () < until;) {
        later = s_renew_time ("shp-0004");
        if (later && first && strcmp (later, first) > 0)
            break;
        free (later);
        later = NULL;
        usleep (200000);
    }
    ZT_ASSERT_MSG (later, "shp-0004's lease is no longer renewed (last %s)", first);
    free (first);
    free (later);
    Zube__Lease *lease = s_lease ("shp-0004");
    ZT_ASSERT (lease && lease->metadata && lease->spec);
    const char *label = NULL;
    for (size_t i = 0; i < lease->metadata->n_labels; i++)
        if (streq (lease->metadata->labels[i]->key, "test.zube.io/writer"))
            label = lease->metadata->labels[i]->value;
    ZT_ASSERT_MSG (label && streq (label, "5"), "the writer's label was lost: %s",
                   label ? label : "(none)");
    ZT_ASSERT_STR_CONTAINS (lease->spec->holder_identity, "zubelet-");
    protobuf_c_message_free_unpacked (&lease->base, NULL);
    char path[700];
    snprintf (path, sizeof path, "%s/zubelet.log", s_dir);
    char *log = zt_read_file (path);
    ZT_ASSERT_STR_CONTAINS (log, "lease renewal conflict: reading it again\" node=shp-0004");
    free (log);
}

//  ---------------------------------------------------------------------
//  Pods

static void
test_pod_running (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: web, annotations: {sim.zube.io/readiness-delay: 1s}}\n"
                  "spec:\n"
                  "  nodeName: shp-0001\n"
                  "  initContainers:\n"
                  "  - {name: setup, image: busybox, resources: {limits: {cpu: 50m, memory: 16Mi}}}\n"
                  "  containers:\n"
                  "  - name: app\n"
                  "    image: nginx:1.25\n"
                  "    resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 100m, "
                  "memory: 64Mi}}\n"
                  "    readinessProbe: {exec: {command: [cat, /ready]}, periodSeconds: 1}\n");
    Zube__Pod *pod = s_wait_phase ("web", "Running", 15000);
    ZT_ASSERT_MSG (pod, "web is not Running");
    //  Ready once the readiness probe passes
    for (int64_t until = zt_now_ms () + 10000; zt_now_ms () < until;) {
        Zube__PodCondition *ready = s_condition (pod, "Ready");
        if (ready && streq (ready->status, "True"))
            break;
        protobuf_c_message_free_unpacked (&pod->base, NULL);
        usleep (200000);
        pod = s_pod ("web");
        ZT_ASSERT (pod);
    }
    Zube__PodStatus *status = pod->status;
    static const char *types[4] = {"PodScheduled", "Initialized", "ContainersReady", "Ready"};
    for (int i = 0; i < 4; i++) {
        Zube__PodCondition *cond = s_condition (pod, types[i]);
        ZT_ASSERT_MSG (cond, "no %s condition", types[i]);
        ZT_ASSERT_STR_EQ (cond->status, "True");
        ZT_ASSERT (cond->last_transition_time && *cond->last_transition_time);
    }
    ZT_ASSERT (status->pod_ip && *status->pod_ip);
    ZT_ASSERT_INT_EQ (status->n_pod_ips, 1);
    ZT_ASSERT_STR_EQ (status->host_ip, "172.16.0.1");
    ZT_ASSERT (status->start_time && *status->start_time);
    ZT_ASSERT_STR_EQ (status->qos_class, "Guaranteed");
    ZT_ASSERT_INT_EQ (status->n_init_container_statuses, 1);
    Zube__ContainerStatus *init = status->init_container_statuses[0];
    ZT_ASSERT_STR_EQ (init->name, "setup");
    ZT_ASSERT (init->state && init->state->terminated);
    ZT_ASSERT_INT_EQ (init->state->terminated->exit_code, 0);
    ZT_ASSERT_STR_EQ (init->state->terminated->reason, "Completed");
    ZT_ASSERT_INT_EQ (status->n_container_statuses, 1);
    Zube__ContainerStatus *app = status->container_statuses[0];
    ZT_ASSERT_STR_EQ (app->name, "app");
    ZT_ASSERT (app->state && app->state->running && app->state->running->started_at);
    ZT_ASSERT (app->ready && app->started);
    ZT_ASSERT_INT_EQ (app->restart_count, 0);
    ZT_ASSERT_STR_EQ (app->image, "nginx:1.25");
    ZT_ASSERT_MSG (app->image_id && strstr (app->image_id, "sha256:"), "imageID %s",
                   app->image_id ? app->image_id : "(none)");
    ZT_ASSERT_MSG (app->container_id && strncmp (app->container_id, "sim://", 6) == 0,
                   "containerID %s", app->container_id ? app->container_id : "(none)");
    //  Init before app
    ZT_ASSERT (s_time_s (init->state->terminated->finished_at) <=
               s_time_s (app->state->running->started_at));
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

static void
test_pod_succeeded (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: job, annotations: {sim.zube.io/run-duration: 1s}}\n"
                  "spec: {nodeName: shp-0002, restartPolicy: Never, containers: [{name: c, "
                  "image: busybox, resources: {requests: {cpu: 10m}}}]}\n");
    Zube__Pod *pod = s_wait_phase ("job", "Succeeded", 15000);
    ZT_ASSERT_MSG (pod, "job did not succeed");
    Zube__ContainerStatus *c = pod->status->container_statuses[0];
    ZT_ASSERT (c->state && c->state->terminated);
    ZT_ASSERT_INT_EQ (c->state->terminated->exit_code, 0);
    ZT_ASSERT_STR_EQ (c->state->terminated->reason, "Completed");
    int64_t ran = s_time_s (c->state->terminated->finished_at) -
                  s_time_s (c->state->terminated->started_at);
    ZT_ASSERT_MSG (ran >= 0 && ran <= 2, "ran %" PRId64 "s", ran);
    ZT_ASSERT (!c->ready);
    ZT_ASSERT_STR_EQ (pod->status->qos_class, "Burstable");
    Zube__PodCondition *ready = s_condition (pod, "Ready");
    ZT_ASSERT (ready && streq (ready->status, "False"));
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

static void
test_pod_failed (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: broken, annotations: {sim.zube.io/run-duration: 500ms, "
                  "sim.zube.io/exit-code: \"1\"}}\n"
                  "spec: {nodeName: shp-0003, restartPolicy: Never, containers: [{name: c, "
                  "image: busybox}]}\n");
    Zube__Pod *pod = s_wait_phase ("broken", "Failed", 15000);
    ZT_ASSERT_MSG (pod, "broken did not fail");
    Zube__ContainerStatus *c = pod->status->container_statuses[0];
    ZT_ASSERT (c->state && c->state->terminated);
    ZT_ASSERT_INT_EQ (c->state->terminated->exit_code, 1);
    ZT_ASSERT_STR_EQ (c->state->terminated->reason, "Error");
    ZT_ASSERT_INT_EQ (c->restart_count, 0);
    ZT_ASSERT_STR_EQ (pod->status->qos_class, "BestEffort");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

//  Restarts of a crashing container: run k starts at S[k] and finishes at
//  F[k]; the back-off before run k+1 is S[k+1] - F[k], which must double
//  (base, 2 base, 4 base), read from lastState as each wait shows it.
static void
test_pod_crash_loop_backoff (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: crash, annotations: {sim.zube.io/run-duration: 200ms, "
                  "sim.zube.io/exit-code: \"1\"}}\n"
                  "spec: {nodeName: shp-0004, containers: [{name: c, image: busybox}]}\n");
    int64_t started[8] = {0}, finished[8] = {0};
    bool seen_message = false;
    char uid[64] = "";
    int top = -1;
    for (int64_t until = zt_now_ms () + 45000; zt_now_ms () < until && top < 3;) {
        Zube__Pod *pod = s_pod ("crash");
        ZT_ASSERT (pod);
        snprintf (uid, sizeof uid, "%s", pod->metadata->uid);
        Zube__ContainerStatus *c =
            pod->status && pod->status->n_container_statuses ? pod->status->container_statuses[0]
                                                             : NULL;
        if (c && c->state && c->state->waiting && c->last_state && c->last_state->terminated &&
            streq (c->state->waiting->reason, "CrashLoopBackOff") && c->restart_count < 8) {
            int k = c->restart_count;
            started[k] = s_time_s (c->last_state->terminated->started_at);
            finished[k] = s_time_s (c->last_state->terminated->finished_at);
            ZT_ASSERT_INT_EQ (c->last_state->terminated->exit_code, 1);
            if (k > top)
                top = k;
            char expected[200];
            snprintf (expected, sizeof expected,
                      "back-off %ds restarting failed container=c pod=crash_default(%s)",
                      S_BACKOFF_BASE_S << k, uid);
            if (c->state->waiting->message && streq (c->state->waiting->message, expected))
                seen_message = true;
            ZT_ASSERT_STR_EQ (pod->status->phase, "Running");
        }
        protobuf_c_message_free_unpacked (&pod->base, NULL);
        usleep (100000);
    }
    ZT_ASSERT_MSG (top >= 3, "saw restarts up to %d only", top);
    ZT_ASSERT_MSG (seen_message, "no CrashLoopBackOff message as Kubernetes writes it");
    for (int k = 0; k < 3; k++) {
        ZT_ASSERT_MSG (started[k] && started[k + 1], "run %d or %d not seen", k, k + 1);
        int64_t backoff = started[k + 1] - finished[k];
        int64_t want = (int64_t) S_BACKOFF_BASE_S << k;
        //  Timestamps have whole seconds
        ZT_ASSERT_MSG (backoff >= want - 1 && backoff <= want + 1,
                       "back-off before run %d: %" PRId64 "s, expected %" PRId64 "s", k + 1,
                       backoff, want);
    }
}

//  A liveness probe that starts failing after 1 s: the container is
//  killed and restarted (restartCount up, lastState terminated)
static void
test_pod_liveness_restart (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: sick, annotations: {sim.zube.io/fail-probe: "
                  "\"liveness:after=1s\"}}\n"
                  "spec:\n"
                  "  nodeName: shp-0008\n"
                  "  containers:\n"
                  "  - name: c\n"
                  "    image: busybox\n"
                  "    livenessProbe: {exec: {command: [ok]}, periodSeconds: 1, "
                  "failureThreshold: 2}\n");
    bool restarted = false;
    for (int64_t until = zt_now_ms () + 20000; zt_now_ms () < until && !restarted;) {
        Zube__Pod *pod = s_pod ("sick");
        ZT_ASSERT (pod);
        Zube__ContainerStatus *c = pod->status && pod->status->n_container_statuses
                                       ? pod->status->container_statuses[0]
                                       : NULL;
        if (c && c->restart_count >= 1 && c->last_state && c->last_state->terminated) {
            restarted = true;
            ZT_ASSERT_MSG (c->last_state->terminated->exit_code == 137 ||
                               c->last_state->terminated->exit_code == 143,
                           "exit code %d", c->last_state->terminated->exit_code);
        }
        protobuf_c_message_free_unpacked (&pod->base, NULL);
        usleep (100000);
    }
    ZT_ASSERT_MSG (restarted, "sick was not restarted by its liveness probe");
}

static void
test_pod_image_missing (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: never, annotations: {sim.zube.io/image-missing: \"true\"}}\n"
                  "spec: {nodeName: shp-0005, containers: [{name: c, image: nope:1, "
                  "imagePullPolicy: Never}]}\n");
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: pull, annotations: {sim.zube.io/image-missing: \"true\"}}\n"
                  "spec: {nodeName: shp-0005, containers: [{name: c, image: nope:2}]}\n");
    const char *names[2] = {"never", "pull"};
    const char *reasons[2] = {"ErrImageNeverPull", "ImagePullBackOff"};
    for (int i = 0; i < 2; i++) {
        bool found = false;
        for (int64_t until = zt_now_ms () + 10000; zt_now_ms () < until && !found;) {
            Zube__Pod *pod = s_pod (names[i]);
            ZT_ASSERT (pod);
            Zube__ContainerStatus *c = pod->status && pod->status->n_container_statuses
                                           ? pod->status->container_statuses[0]
                                           : NULL;
            if (c && c->state && c->state->waiting &&
                streq (c->state->waiting->reason, reasons[i])) {
                found = true;
                ZT_ASSERT_STR_EQ (pod->status->phase, "Pending");
                ZT_ASSERT_MSG (c->state->waiting->message &&
                                   strstr (c->state->waiting->message, "nope:"),
                               "message %s",
                               c->state->waiting->message ? c->state->waiting->message : "");
            }
            protobuf_c_message_free_unpacked (&pod->base, NULL);
            usleep (100000);
        }
        ZT_ASSERT_MSG (found, "%s: no %s", names[i], reasons[i]);
    }
}

static void
test_pod_delete_with_grace (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: doomed}\n"
                  "spec: {nodeName: shp-0006, terminationGracePeriodSeconds: 20, containers: "
                  "[{name: c, image: busybox}]}\n");
    Zube__Pod *pod = s_wait_phase ("doomed", "Running", 15000);
    ZT_ASSERT_MSG (pod, "doomed is not Running");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    ProtobufCMessage *deleted = NULL;
    zube_api_error_t error;
    zube_api_delete_options_t options = {.grace_period_seconds = 5};
    ZT_ASSERT_MSG (zube_api_delete (s_api, "pods", "default", "doomed", &options, &deleted,
                                    &error) == ZUBE_OK,
                   "delete: %.900s", error.message);
    Zube__Pod *marked = (Zube__Pod *) deleted;
    ZT_ASSERT (marked->metadata->deletion_timestamp);
    ZT_ASSERT_INT_EQ (marked->metadata->deletion_grace_period_seconds, 5);
    protobuf_c_message_free_unpacked (deleted, NULL);
    //  The zubelet stops it and deletes it with grace 0
    bool gone = false;
    for (int64_t until = zt_now_ms () + 10000; zt_now_ms () < until && !gone;) {
        pod = s_pod ("doomed");
        gone = pod == NULL;
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        usleep (100000);
    }
    ZT_ASSERT_MSG (gone, "doomed is still there");
}

static void
test_pod_on_unknown_node_stays_pending (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: orphan}\n"
                  "spec: {nodeName: no-such-node, containers: [{name: c, image: busybox}]}\n");
    usleep (2500000);
    Zube__Pod *pod = s_pod ("orphan");
    ZT_ASSERT (pod);
    const char *phase = s_phase (pod);
    ZT_ASSERT_MSG (streq (phase, "") || streq (phase, "Pending"), "phase %s", phase);
    ZT_ASSERT (!pod->status || !pod->status->n_container_statuses);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    ZT_ASSERT_MSG (waitpid (s_zubelet, NULL, WNOHANG) == 0, "the zubelet died");
}

//  activeDeadlineSeconds: killed once it ran that long, Failed with
//  the kubelet's reason and message
static void
test_pod_active_deadline (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: deadline}\n"
                  "spec: {nodeName: shp-0003, activeDeadlineSeconds: 2, restartPolicy: Always, "
                  "containers: [{name: c, image: busybox}]}\n");
    Zube__Pod *pod = s_wait_phase ("deadline", "Running", 15000);
    ZT_ASSERT_MSG (pod, "deadline did not run");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    pod = s_wait_phase ("deadline", "Failed", 15000);
    ZT_ASSERT_MSG (pod, "deadline is not Failed");
    ZT_ASSERT_STR_EQ (pod->status->reason, "DeadlineExceeded");
    ZT_ASSERT_STR_EQ (pod->status->message,
                      "Pod was active on the node longer than the specified deadline");
    int64_t ran = 0;
    for (int64_t until = zt_now_ms () + 10000; zt_now_ms () < until;) {
        Zube__ContainerStatus *c = pod->status->container_statuses[0];
        if (c->state && c->state->terminated) {
            ran = s_time_s (c->state->terminated->finished_at) - s_time_s (pod->status->start_time);
            break;
        }
        protobuf_c_message_free_unpacked (&pod->base, NULL);
        usleep (200000);
        pod = s_pod ("deadline");
        ZT_ASSERT (pod && pod->status && pod->status->n_container_statuses == 1);
    }
    Zube__ContainerStatus *c = pod->status->container_statuses[0];
    ZT_ASSERT_MSG (c->state && c->state->terminated, "the container was not stopped");
    ZT_ASSERT_INT_EQ (c->restart_count, 0);
    //  (not before the deadline; the sim's wall clock may drift a second from
    //  ours, so no tighter bound)
    ZT_ASSERT_MSG (ran >= 1, "stopped %" PRId64 "s after the start", ran);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    //  And it stays Failed: no restart under restartPolicy Always
    usleep (1500000);
    pod = s_pod ("deadline");
    ZT_ASSERT_STR_EQ (s_phase (pod), "Failed");
    ZT_ASSERT_INT_EQ (pod->status->container_statuses[0]->restart_count, 0);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

//  Sets condition TYPE of pod NAME to STATUS through pods/status, as a
//  controller would (retried on Conflict with the zubelet's writes)
static void
s_set_condition (const char *name, const char *type, const char *status)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        Zube__Pod *pod = s_pod (name);
        ZT_ASSERT (pod && pod->status);
        Zube__PodCondition cond = ZUBE__POD_CONDITION__INIT;
        cond.type = (char *) type;
        cond.status = (char *) status;
        cond.last_transition_time = "2024-05-01T10:00:00Z";
        cond.reason = "SetByTest";
        size_t n = pod->status->n_conditions;
        Zube__PodCondition **saved = pod->status->conditions;
        Zube__PodCondition **conditions = calloc (n + 1, sizeof *conditions);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++)
            if (!streq (saved[i]->type, type))
                conditions[kept++] = saved[i];
        conditions[kept++] = &cond;
        pod->status->conditions = conditions;
        pod->status->n_conditions = kept;
        zube_api_error_t error;
        zube_status_t rc = zube_api_update (s_api, "pods", "default", &pod->base, "status",
                                            false, NULL, &error);
        pod->status->conditions = saved;
        pod->status->n_conditions = n;
        free (conditions);
        protobuf_c_message_free_unpacked (&pod->base, NULL);
        if (rc == ZUBE_OK)
            return;
        ZT_ASSERT_MSG (rc == ZUBE_CONFLICT, "update status: %.500s", error.message);
        usleep (50000);
    }
    ZT_FAIL ("could not set condition %s of %s", type, name);
}

//  Polls until condition TYPE of NAME has STATUS; the pod or NULL
static Zube__Pod *
s_wait_condition (const char *name, const char *type, const char *status, int timeout_ms)
{
    for (int64_t until = zt_now_ms () + timeout_ms; zt_now_ms () < until;) {
        Zube__Pod *pod = s_pod (name);
        Zube__PodCondition *cond = pod ? s_condition (pod, type) : NULL;
        if (cond && streq (cond->status, status))
            return pod;
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        usleep (100000);
    }
    return NULL;
}

//  spec.readinessGates: Ready only once every gate's condition is True;
//  the zubelet's status writes keep the conditions it does not own
static void
test_pod_readiness_gates (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: gated}\n"
                  "spec: {nodeName: shp-0003, readinessGates: [{conditionType: "
                  "example.com/lb-ready}], containers: [{name: c, image: busybox}]}\n");
    Zube__Pod *pod = s_wait_condition ("gated", "ContainersReady", "True", 15000);
    ZT_ASSERT_MSG (pod, "gated's containers are not ready");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    pod = s_wait_condition ("gated", "Ready", "False", 5000);
    ZT_ASSERT (pod);
    Zube__PodCondition *ready = s_condition (pod, "Ready");
    ZT_ASSERT_STR_EQ (ready->reason, "ReadinessGatesNotReady");
    ZT_ASSERT_STR_EQ (ready->message, "corresponding condition of pod readiness gate "
                                      "\"example.com/lb-ready\" does not exist.");
    protobuf_c_message_free_unpacked (&pod->base, NULL);

    s_set_condition ("gated", "example.com/lb-ready", "True");
    pod = s_wait_condition ("gated", "Ready", "True", 10000);
    ZT_ASSERT_MSG (pod, "gated did not become Ready once its gate was True");
    Zube__PodCondition *gate = s_condition (pod, "example.com/lb-ready");
    ZT_ASSERT_MSG (gate && streq (gate->status, "True"), "the gate's condition was lost");
    ZT_ASSERT_STR_EQ (gate->reason, "SetByTest");
    protobuf_c_message_free_unpacked (&pod->base, NULL);

    s_set_condition ("gated", "example.com/lb-ready", "False");
    pod = s_wait_condition ("gated", "Ready", "False", 10000);
    ZT_ASSERT_MSG (pod, "gated stayed Ready with its gate False");
    ready = s_condition (pod, "Ready");
    ZT_ASSERT_STR_CONTAINS (ready->message, "is not \"True\", but False");
    ZT_ASSERT_STR_EQ (s_condition (pod, "ContainersReady")->status, "True");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
}

//  Sidecars (init containers with restartPolicy Always, Kubernetes
//  1.29): the next init container waits only for the sidecar's start,
//  the sidecar keeps running, and a Job-like pod completes when its main
//  container does, the sidecar stopped then
static void
test_pod_sidecar_job_completes (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: sidecar-job, annotations: {sim.zube.io/run-duration.main: 4s}}\n"
                  "spec:\n"
                  "  nodeName: shp-0005\n"
                  "  restartPolicy: Never\n"
                  "  initContainers:\n"
                  "  - {name: shipper, image: busybox, restartPolicy: Always}\n"
                  "  - {name: migrate, image: busybox}\n"
                  "  containers:\n"
                  "  - {name: main, image: busybox}\n");
    Zube__Pod *pod = s_wait_phase ("sidecar-job", "Running", 15000);
    ZT_ASSERT_MSG (pod, "sidecar-job did not get past its init containers");
    ZT_ASSERT_INT_EQ (pod->status->n_init_container_statuses, 2);
    Zube__ContainerStatus *shipper = pod->status->init_container_statuses[0];
    Zube__ContainerStatus *migrate = pod->status->init_container_statuses[1];
    ZT_ASSERT_STR_EQ (shipper->name, "shipper");
    ZT_ASSERT_MSG (shipper->state && shipper->state->running, "the sidecar is not running");
    ZT_ASSERT (shipper->started);
    ZT_ASSERT_MSG (migrate->state && migrate->state->terminated &&
                       migrate->state->terminated->exit_code == 0,
                   "migrate did not complete");
    ZT_ASSERT_STR_EQ (s_condition (pod, "Initialized")->status, "True");
    protobuf_c_message_free_unpacked (&pod->base, NULL);

    pod = s_wait_phase ("sidecar-job", "Succeeded", 20000);
    ZT_ASSERT_MSG (pod, "sidecar-job did not complete with its main container");
    Zube__ContainerStatus *main_status = pod->status->container_statuses[0];
    ZT_ASSERT (main_status->state && main_status->state->terminated);
    ZT_ASSERT_STR_EQ (main_status->state->terminated->reason, "Completed");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    //  The sidecar is stopped, not restarted
    bool stopped = false;
    for (int64_t until = zt_now_ms () + 10000; zt_now_ms () < until && !stopped;) {
        pod = s_pod ("sidecar-job");
        ZT_ASSERT (pod && pod->status && pod->status->n_init_container_statuses == 2);
        shipper = pod->status->init_container_statuses[0];
        stopped = shipper->state && shipper->state->terminated;
        if (stopped) {
            ZT_ASSERT_INT_EQ (shipper->restart_count, 0);
            ZT_ASSERT_STR_EQ (s_phase (pod), "Succeeded");
        }
        protobuf_c_message_free_unpacked (&pod->base, NULL);
        if (!stopped)
            usleep (200000);
    }
    ZT_ASSERT_MSG (stopped, "the sidecar still runs after the main container completed");
}

//  A sidecar that exits is restarted though the pod's restartPolicy is
//  Never; at deletion the main containers stop before the sidecars
static void
test_pod_sidecar_restarts_and_stops_last (void)
{
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: sidecar-flaky, annotations: {sim.zube.io/run-duration.flaky: 1s}}\n"
                  "spec:\n"
                  "  nodeName: shp-0005\n"
                  "  restartPolicy: Never\n"
                  "  terminationGracePeriodSeconds: 1\n"
                  "  initContainers:\n"
                  "  - {name: flaky, image: busybox, restartPolicy: Always}\n"
                  "  containers:\n"
                  "  - {name: app, image: busybox}\n");
    Zube__Pod *pod = NULL;
    for (int64_t until = zt_now_ms () + 20000; zt_now_ms () < until;) {
        pod = s_pod ("sidecar-flaky");
        if (pod && pod->status && pod->status->n_init_container_statuses == 1 &&
            pod->status->init_container_statuses[0]->restart_count >= 1)
            break;
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        pod = NULL;
        usleep (200000);
    }
    ZT_ASSERT_MSG (pod, "the sidecar was not restarted");
    ZT_ASSERT_STR_EQ (s_phase (pod), "Running");
    ZT_ASSERT_MSG (pod->status->container_statuses[0]->state->running,
                   "the main container does not run");
    ZT_ASSERT_INT_EQ (pod->status->container_statuses[0]->restart_count, 0);
    protobuf_c_message_free_unpacked (&pod->base, NULL);

    zube_api_error_t error;
    ZT_ASSERT (zube_api_delete (s_api, "pods", "default", "sidecar-flaky", NULL, NULL,
                                &error) == ZUBE_OK);
    bool gone = false;
    for (int64_t until = zt_now_ms () + 20000; zt_now_ms () < until && !gone;) {
        pod = s_pod ("sidecar-flaky");
        gone = !pod;
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        usleep (200000);
    }
    ZT_ASSERT_MSG (gone, "sidecar-flaky was not deleted");
    char path[700];
    snprintf (path, sizeof path, "%s/zubelet.log", s_dir);
    char *log = zt_read_file (path);
    const char *mains = strstr (log, "stopping the main containers before the sidecars\" "
                                     "pod=default/sidecar-flaky");
    const char *sandbox = strstr (log, "\"stopping pod\" pod=default/sidecar-flaky");
    ZT_ASSERT_MSG (mains && sandbox && mains < sandbox,
                   "the main containers were not stopped before the sidecar");
    free (log);
}

//  A loopback HTTP endpoint the test owns, answering every request with
//  s_http_code, for probes the zubelet runs itself
static volatile int s_http_code = 500;
static volatile int s_http_requests;
static char s_http_last[512];
static int s_http_listener = -1;

static int
s_listen (int *port_p)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    if (fd < 0 || bind (fd, (struct sockaddr *) &address, sizeof address) != 0 ||
        listen (fd, 64) != 0 || getsockname (fd, (struct sockaddr *) &address, &size) != 0) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    *port_p = ntohs (address.sin_port);
    return fd;
}

static void *
s_http_serve (void *arg)
{
    (void) arg;
    while (true) {
        int client = accept (s_http_listener, NULL, NULL);
        if (client < 0)
            break;
        char request[512];
        ssize_t n = recv (client, request, sizeof request - 1, 0);
        if (n > 0) {
            request[n] = 0;
            snprintf (s_http_last, sizeof s_http_last, "%s", request);
            s_http_requests++;
            char reply[128];
            int length = snprintf (reply, sizeof reply,
                                   "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                   s_http_code);
            if (send (client, reply, (size_t) length, MSG_NOSIGNAL) < 0)
                n = 0;
        }
        close (client);
    }
    return NULL;
}

//  httpGet and tcpSocket probes the runtime declines
//  (sim.zube.io/host-probes): the zubelet connects to 127.0.0.1 itself,
//  with the probes' thresholds
static void
test_pod_host_probes (void)
{
    int http_port = 0, tcp_port = 0;
    s_http_listener = s_listen (&http_port);
    int tcp_listener = s_listen (&tcp_port);
    ZT_ASSERT (s_http_listener >= 0 && tcp_listener >= 0);
    pthread_t thread;
    ZT_ASSERT (pthread_create (&thread, NULL, s_http_serve, NULL) == 0);
    char yaml[2048];
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: Pod\n"
              "metadata: {name: probed, annotations: {sim.zube.io/host-probes: \"true\"}}\n"
              "spec:\n"
              "  nodeName: shp-0006\n"
              "  containers:\n"
              "  - name: web\n"
              "    image: nginx\n"
              "    ports: [{name: http, containerPort: %d}]\n"
              "    readinessProbe:\n"
              "      httpGet: {host: 127.0.0.1, port: http, path: /healthz,\n"
              "                httpHeaders: [{name: X-Probe, value: zube}]}\n"
              "      periodSeconds: 1\n"
              "      timeoutSeconds: 2\n"
              "    livenessProbe:\n"
              "      tcpSocket: {host: 127.0.0.1, port: %d}\n"
              "      periodSeconds: 1\n"
              "      failureThreshold: 2\n",
              http_port, tcp_port);
    s_create_pod (yaml);
    //  500: probed, but not Ready
    for (int64_t until = zt_now_ms () + 15000; zt_now_ms () < until && s_http_requests < 2;)
        usleep (100000);
    ZT_ASSERT_MSG (s_http_requests >= 2, "the readiness probe never reached the endpoint");
    ZT_ASSERT_STR_CONTAINS (s_http_last, "GET /healthz HTTP/1.1\r\n");
    ZT_ASSERT_STR_CONTAINS (s_http_last, "\r\nX-Probe: zube\r\n");
    ZT_ASSERT_STR_CONTAINS (s_http_last, "\r\nUser-Agent: kube-probe/");
    Zube__Pod *pod = s_pod ("probed");
    ZT_ASSERT (pod);
    ZT_ASSERT_STR_EQ (s_phase (pod), "Running");
    ZT_ASSERT_STR_EQ (s_condition (pod, "Ready")->status, "False");
    ZT_ASSERT_INT_EQ (pod->status->container_statuses[0]->restart_count, 0);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    //  200: Ready
    s_http_code = 200;
    pod = s_wait_condition ("probed", "Ready", "True", 15000);
    ZT_ASSERT_MSG (pod, "probed did not become Ready with its endpoint answering 200");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    //  The liveness port closes: two failures, the container restarts
    close (tcp_listener);
    pod = NULL;
    for (int64_t until = zt_now_ms () + 20000; zt_now_ms () < until;) {
        pod = s_pod ("probed");
        if (pod && pod->status && pod->status->n_container_statuses == 1 &&
            pod->status->container_statuses[0]->restart_count >= 1)
            break;
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        pod = NULL;
        usleep (200000);
    }
    shutdown (s_http_listener, SHUT_RDWR);
    close (s_http_listener);
    pthread_join (thread, NULL);
    ZT_ASSERT_MSG (pod, "the failing tcpSocket liveness probe did not restart the container");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    zube_api_error_t error;
    zube_api_delete (s_api, "pods", "default", "probed",
                     &(zube_api_delete_options_t) {.grace_period_seconds = 0}, NULL, &error);
}

//  ---------------------------------------------------------------------
//  Logs and exec through the node service

//  Runs zubectl against the test's broker (NULL-terminated arguments)
static zt_run_t
s_zubectl (const char *first, ...)
{
    va_list args;
    va_start (args, first);
    zt_run_t result = zt_run_capture_va (
        30000,
        (const char *[]) {zt_program ("zubectl"), "--broker", s_endpoint, "--insecure",
                          "--request-timeout", "5s", first, NULL},
        args);
    va_end (args);
    return result;
}

#define S_EXPECT(result, code, out_text, err_text)                                    \
    do {                                                                             \
        ZT_ASSERT_MSG ((result).status == (code), "exit %d (expected %d): %s%s",      \
                       (result).status, (code), (result).out ? (result).out : "",    \
                       (result).err ? (result).err : "");                            \
        if (out_text)                                                                \
            ZT_ASSERT_STR_CONTAINS ((result).out, (const char *) (out_text));        \
        if (err_text)                                                                \
            ZT_ASSERT_STR_CONTAINS ((result).err, (const char *) (err_text));        \
    } while (0)

static const char *s_talker_yaml =
    "apiVersion: v1\nkind: Pod\n"
    "metadata:\n"
    "  name: talker\n"
    "  annotations:\n"
    "    sim.zube.io/logs.app: \"hello from app\\nsecond line\"\n"
    "    sim.zube.io/exec.app: \"ls /data => 0: a.txt\"\n"
    "spec:\n"
    "  nodeName: shp-0002\n"
    "  containers:\n"
    "  - {name: app, image: busybox}\n"
    "  - {name: side, image: busybox}\n";

static void
test_logs_and_exec (void)
{
    s_create_pod (s_talker_yaml);
    Zube__Pod *pod = s_wait_phase ("talker", "Running", 15000);
    ZT_ASSERT_MSG (pod, "talker is not Running");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    //  One service for the process, named on every node
    char *json = s_get_json ("nodes", NULL, "shp-0002");
    ZT_ASSERT_STR_CONTAINS (json, "\"zube.io/node-agent-service\":\"node/shp-*\"");
    free (json);

    zt_run_t r = s_zubectl ("logs", "talker", NULL);
    S_EXPECT (r, 1, NULL, "a container name must be specified for pod talker, choose one of: "
                          "[app side]");
    zt_run_free (&r);
    r = s_zubectl ("logs", "talker", "-c", "app", NULL);
    S_EXPECT (r, 0, "\nhello from app\nsecond line\n", NULL);
    ZT_ASSERT_STR_CONTAINS (r.out, "sim: container app started at ");
    zt_run_free (&r);
    r = s_zubectl ("logs", "talker", "-c", "app", "--tail", "1", NULL);
    S_EXPECT (r, 0, NULL, NULL);
    ZT_ASSERT_STR_EQ (r.out, "second line\n");
    zt_run_free (&r);
    r = s_zubectl ("logs", "talker", "-c", "app", "--limit-bytes", "5", NULL);
    S_EXPECT (r, 0, NULL, NULL);
    ZT_ASSERT_STR_EQ (r.out, "sim: ");
    zt_run_free (&r);
    r = s_zubectl ("logs", "talker", "-c", "app", "--previous", NULL);
    S_EXPECT (r, 1, NULL, "previous terminated container \"app\" in pod \"talker\" not found");
    zt_run_free (&r);
    r = s_zubectl ("logs", "talker", "-c", "nope", NULL);
    S_EXPECT (r, 1, NULL, "container nope is not valid for pod talker");
    zt_run_free (&r);
    r = s_zubectl ("logs", "no-such-pod", NULL);
    S_EXPECT (r, 1, NULL, "Error from server (NotFound): pods \"no-such-pod\" not found");
    zt_run_free (&r);

    r = s_zubectl ("exec", "talker", "-c", "app", "--", "echo", "hi", "there", NULL);
    S_EXPECT (r, 0, NULL, NULL);
    ZT_ASSERT_STR_EQ (r.out, "hi there\n");
    zt_run_free (&r);
    r = s_zubectl ("exec", "talker", "-c", "app", "--", "ls", "/data", NULL);
    S_EXPECT (r, 0, "a.txt\n", NULL);
    zt_run_free (&r);
    //  -i on sim (no exec sessions): stdin (here empty) sent whole, as before
    r = s_zubectl ("exec", "-i", "talker", "-c", "app", "--", "cat", NULL);
    S_EXPECT (r, 0, NULL, NULL);
    zt_run_free (&r);
    r = s_zubectl ("exec", "talker", "-c", "side", "--", "sh", "-c", "exit 7", NULL);
    S_EXPECT (r, 7, NULL, "command terminated with exit code 7");
    zt_run_free (&r);
    r = s_zubectl ("exec", "talker", "-c", "side", "--", "false", NULL);
    S_EXPECT (r, 1, NULL, "command terminated with exit code 1");
    zt_run_free (&r);
    r = s_zubectl ("exec", "talker", "--", "true", NULL);
    S_EXPECT (r, 1, NULL, "a container name must be specified for pod talker");
    zt_run_free (&r);
    r = s_zubectl ("exec", "talker", "-c", "app", NULL);
    S_EXPECT (r, 1, NULL, "you must specify at least one command for the container");
    zt_run_free (&r);
    //  kubectl's errors for pods that cannot answer
    r = s_zubectl ("exec", "job", "--", "true", NULL);
    S_EXPECT (r, 1, NULL, "cannot exec into a container in a completed pod; current phase is "
                          "Succeeded");
    zt_run_free (&r);
    r = s_zubectl ("logs", "job", NULL);
    S_EXPECT (r, 0, "exited with code 0 (Completed)", NULL);
    zt_run_free (&r);
    //  The broker lists one service for the ten nodes, none per node
    zube_bus_reply_t *reply = NULL;
    ZT_ASSERT (zube_bus_call (s_bus, "bus", "services", NULL, 0, 5000, &reply) == 0);
    ZT_ASSERT (reply->payload && memmem (reply->payload, reply->payload_size, "node/shp-*", 10));
    ZT_ASSERT (!memmem (reply->payload, reply->payload_size, "node/shp-0", 10));
    zube_bus_reply_destroy (&reply);
    //  Bad requests to the node service get an error naming what is wrong
    zube_bus_call (s_bus, "node/shp-*", "logs", "\xff\xff\xff", 3, 5000, &reply);
    ZT_ASSERT_INT_EQ (reply->status, ZUBE_BAD_REQUEST);
    zube_bus_reply_destroy (&reply);
    zube_bus_call (s_bus, "node/shp-*", "attach", NULL, 0, 5000, &reply);
    ZT_ASSERT_INT_EQ (reply->status, ZUBE_NOT_FOUND);
    ZT_ASSERT_STR_CONTAINS (reply->error, "unknown method \"attach\"");
    zube_bus_reply_destroy (&reply);
    Zube__NodeLogsRequest request = ZUBE__NODE_LOGS_REQUEST__INIT;
    request.node_name = "other-node";
    request.pod = "talker";
    uint8_t packed[256];
    size_t size = zube__node_logs_request__pack (&request, packed);
    zube_bus_call (s_bus, "node/shp-*", "logs", packed, size, 5000, &reply);
    ZT_ASSERT_INT_EQ (reply->status, ZUBE_NOT_FOUND);
    ZT_ASSERT_STR_CONTAINS (reply->error, "node \"other-node\" is not hosted by this node agent");
    zube_bus_reply_destroy (&reply);
    ZT_ASSERT_MSG (waitpid (s_zubelet, NULL, WNOHANG) == 0, "the zubelet died");

    //  -f follows the log until the container ends, each line once
    s_create_pod ("apiVersion: v1\nkind: Pod\n"
                  "metadata: {name: follower, annotations: {sim.zube.io/run-duration: 3s, "
                  "sim.zube.io/logs: \"working\"}}\n"
                  "spec: {nodeName: shp-0002, restartPolicy: Never, containers: [{name: c, "
                  "image: busybox}]}\n");
    pod = s_wait_phase ("follower", "Running", 15000);
    ZT_ASSERT_MSG (pod, "follower did not run");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    r = s_zubectl ("logs", "follower", "-f", NULL);
    S_EXPECT (r, 0, "\nworking\nsim: container c exited with code 0 (Completed) at ", NULL);
    ZT_ASSERT_MSG (!strstr (strstr (r.out, "started at") + 1, "started at"),
                   "a line came twice: %s", r.out);
    ZT_ASSERT_MSG (!strstr (strstr (r.out, "working") + 1, "working"), "a line came twice: %s",
                   r.out);
    zt_run_free (&r);
    r = s_zubectl ("--request-timeout", "1s", "logs", "orphan", NULL);
    S_EXPECT (r, 1, NULL, "the node agent of node \"no-such-node\" is unreachable");
    zt_run_free (&r);
}

//  Only admin identities: a zubelet that admits "admin" alone refuses
//  the test's anonymous identity, naming it
static void
test_logs_and_exec_forbidden (void)
{
    char state[700];
    snprintf (state, sizeof state, "%s/state-authz", s_dir);
    pid_t zubelet = s_zubelet_start ("zubelet-authz.log", state, "--node-name", "authz-node",
                                     "--admin-identities", "admin,ops-*", NULL);
    ZT_ASSERT (zubelet > 0);
    s_create_pod ("apiVersion: v1\nkind: Pod\nmetadata: {name: guarded}\n"
                  "spec: {nodeName: authz-node, containers: [{name: c, image: busybox}]}\n");
    Zube__Pod *pod = s_wait_phase ("guarded", "Running", 20000);
    if (!pod)
        s_print_log_tail ("zubelet-authz.log");
    ZT_ASSERT_MSG (pod, "guarded is not Running");
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    zt_run_t r = s_zubectl ("logs", "guarded", NULL);
    int status = r.status;
    char *err = r.err ? strdup (r.err) : NULL;
    zt_run_free (&r);
    r = s_zubectl ("exec", "guarded", "--", "true", NULL);
    zube_api_error_t error;
    zube_api_delete (s_api, "pods", "default", "guarded",
                     &(zube_api_delete_options_t) {.grace_period_seconds = 0}, NULL, &error);
    zt_stop (zubelet, SIGTERM, 10000);
    ZT_ASSERT_MSG (status == 1, "logs exit %d", status);
    ZT_ASSERT_STR_CONTAINS (err, "Error from server (Forbidden): User \"anonymous\" cannot get "
                                 "resource \"pods/log\"");
    free (err);
    S_EXPECT (r, 1, NULL, "User \"anonymous\" cannot create resource \"pods/exec\"");
    zt_run_free (&r);
}

//  kill -9: renewals stop; a restart adopts the running pods
static void
test_kill_and_adopt (void)
{
    Zube__Pod *pod = s_pod ("web");
    ZT_ASSERT_MSG (pod && streq (s_phase (pod), "Running"), "web is not running");
    char container_id[128];
    snprintf (container_id, sizeof container_id, "%s",
              pod->status->container_statuses[0]->container_id);
    int restarts = pod->status->container_statuses[0]->restart_count;
    protobuf_c_message_free_unpacked (&pod->base, NULL);

    zt_stop (s_zubelet, SIGKILL, 1000);
    s_zubelet = 0;
    //  A pod deleted for good while no zubelet runs: its sandbox goes at
    //  the restart
    zube_api_error_t error;
    zube_api_delete_options_t force = {.grace_period_seconds = 0};
    ZT_ASSERT_MSG (zube_api_delete (s_api, "pods", "default", "job", &force, NULL, &error) ==
                       ZUBE_OK,
                   "delete job: %.900s", error.message);
    usleep (300000);
    char *before = s_renew_time ("shp-0001");
    usleep (2500000);
    char *after = s_renew_time ("shp-0001");
    ZT_ASSERT_MSG (before && after && streq (before, after), "renewTime moved: %s -> %s",
                   before ? before : "", after ? after : "");
    free (before);
    free (after);

    char base[16];
    snprintf (base, sizeof base, "%ds", S_BACKOFF_BASE_S);
    s_zubelet = s_zubelet_start ("zubelet-2.log", s_state, "--nodes", "10", "--node-name-prefix",
                                 "shp-", "--node-shapes", s_shapes,
                                 "--node-status-update-frequency", "1s",
                                 "--lease-duration-seconds", "6", "--crash-loop-backoff-base",
                                 base, NULL);
    ZT_ASSERT (s_zubelet > 0);
    bool renewed = false;
    char *first = s_renew_time ("shp-0001");
    for (int64_t until = zt_now_ms () + 10000; zt_now_ms () < until && !renewed;) {
        char *now = s_renew_time ("shp-0001");
        renewed = now && first && !streq (now, first);
        free (now);
        usleep (200000);
    }
    free (first);
    ZT_ASSERT_MSG (renewed, "the restarted zubelet does not renew");
    usleep (1500000);
    pod = s_pod ("web");
    ZT_ASSERT (pod && pod->status && pod->status->n_container_statuses);
    ZT_ASSERT_STR_EQ (s_phase (pod), "Running");
    ZT_ASSERT_STR_EQ (pod->status->container_statuses[0]->container_id, container_id);
    ZT_ASSERT_INT_EQ (pod->status->container_statuses[0]->restart_count, restarts);
    protobuf_c_message_free_unpacked (&pod->base, NULL);
    char path[700];
    snprintf (path, sizeof path, "%s/zubelet-2.log", s_dir);
    char *log = zt_read_file (path);
    ZT_ASSERT_STR_CONTAINS (log, "pod adopted\" pod=default/web");
    ZT_ASSERT_STR_CONTAINS (log, "removing the sandbox of a pod that is gone");
    free (log);
}

//  ---------------------------------------------------------------------
//  Start errors

static void
test_malformed_shapes_file (void)
{
    char path[700];
    s_write_file ("bad-shapes.yaml",
                  "shapes:\n- name: small\n  count: 2\n  cpu: four\n", path, sizeof path);
    char *output = NULL;
    int code = s_zubelet_run (&output, 10000, "--insecure", "--bus", s_endpoint, "--nodes", "2",
                              "--node-shapes", path, NULL);
    ZT_ASSERT_MSG (code == 1, "exit %d: %s", code, output ? output : "");
    ZT_ASSERT_STR_CONTAINS (output, "bad-shapes.yaml:4:");
    ZT_ASSERT_STR_CONTAINS (output, "shapes[0].cpu");
    ZT_ASSERT_STR_CONTAINS (output, "four");
    free (output);
    s_write_file ("bad-shapes-2.yaml", "shapes:\n- name: x\n  colour: blue\n", path,
                  sizeof path);
    code = s_zubelet_run (&output, 10000, "--insecure", "--bus", s_endpoint, "--nodes", "2",
                          "--node-shapes", path, NULL);
    ZT_ASSERT_MSG (code == 1, "exit %d: %s", code, output ? output : "");
    ZT_ASSERT_STR_CONTAINS (output, "bad-shapes-2.yaml:3: shapes[0].colour: unknown field");
    free (output);
}

static void
test_conflicting_node_name (void)
{
    char state[700];
    snprintf (state, sizeof state, "%s/state-other", s_dir);
    char *output = NULL;
    int code = s_zubelet_run (&output, 20000, "--insecure", "--bus", s_endpoint, "--state-dir",
                              state, "--node-name", "shp-0007", NULL);
    ZT_ASSERT_MSG (code == 2, "exit %d: %s", code, output ? output : "");
    ZT_ASSERT_STR_CONTAINS (output, "node name conflict");
    ZT_ASSERT_STR_CONTAINS (output, "\"shp-0007\"");
    free (output);
}

static void
test_unreachable_broker (void)
{
    char bus[64], state[700];
    snprintf (bus, sizeof bus, "tcp://127.0.0.1:%d", zt_free_port (1));
    snprintf (state, sizeof state, "%s/state-unreachable", s_dir);
    char *output = NULL;
    int64_t start = zt_now_ms ();
    int code = s_zubelet_run (&output, 20000, "--insecure", "--bus", bus, "--state-dir", state,
                              "--node-name", "lonely", "--connect-timeout", "2s", NULL);
    ZT_ASSERT_MSG (code == 2, "exit %d: %s", code, output ? output : "");
    ZT_ASSERT_STR_CONTAINS (output, "cannot reach the broker at");
    ZT_ASSERT_STR_CONTAINS (output, bus);
    ZT_ASSERT (zt_now_ms () - start < 15000);
    free (output);
}

//  Last: a clean SIGTERM exit (0), and no sanitizer report in any
//  zubelet's log (an --enable-asan build writes them there)
static void
test_clean_exit_no_sanitizer_reports (void)
{
    ZT_ASSERT (s_zubelet > 0);
    int status = zt_stop (s_zubelet, SIGTERM, 10000);
    s_zubelet = 0;
    ZT_ASSERT_MSG (WIFEXITED (status) && WEXITSTATUS (status) == 0, "wait status %d", status);
    DIR *dir = opendir (s_dir);
    ZT_ASSERT (dir);
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (strncmp (entry->d_name, "zubelet", 7) != 0)
            continue;
        char path[700];
        snprintf (path, sizeof path, "%s/%s", s_dir, entry->d_name);
        char *text = zt_read_file (path);
        bool clean = !text || (!strstr (text, "Sanitizer") && !strstr (text, "runtime error:"));
        free (text);
        if (!clean) {
            closedir (dir);
            s_print_log_tail (entry->d_name);
            ZT_FAIL ("sanitizer report in %s", entry->d_name);
        }
    }
    closedir (dir);
}

static char s_why[256];

static void
s_cluster_failed (void)
{
    ZT_FAIL ("%s", s_why);
}

static bool
s_sim_built (void)
{
    const char *builddir = getenv ("ZUBE_BUILDDIR");
    char path[1024];
    snprintf (path, sizeof path, "%s/plugins/.libs/sim.so", builddir ? builddir : ".");
    if (access (path, R_OK) == 0)
        return true;
    snprintf (path, sizeof path, "%s/plugins/sim.so", builddir ? builddir : ".");
    return access (path, R_OK) == 0;
}

int
main (void)
{
    static const struct {
        const char *name;
        void (*fn) (void);
    } cases[] = {
        {"test_nodes_register_from_shapes", test_nodes_register_from_shapes},
        {"test_leases_renewed", test_leases_renewed},
        {"test_lease_conflicting_writer", test_lease_conflicting_writer},
        {"test_pod_running", test_pod_running},
        {"test_pod_succeeded", test_pod_succeeded},
        {"test_pod_failed", test_pod_failed},
        {"test_pod_crash_loop_backoff", test_pod_crash_loop_backoff},
        {"test_pod_liveness_restart", test_pod_liveness_restart},
        {"test_pod_image_missing", test_pod_image_missing},
        {"test_pod_delete_with_grace", test_pod_delete_with_grace},
        {"test_pod_on_unknown_node_stays_pending", test_pod_on_unknown_node_stays_pending},
        {"test_pod_active_deadline", test_pod_active_deadline},
        {"test_pod_readiness_gates", test_pod_readiness_gates},
        {"test_pod_sidecar_job_completes", test_pod_sidecar_job_completes},
        {"test_pod_sidecar_restarts_and_stops_last", test_pod_sidecar_restarts_and_stops_last},
        {"test_pod_host_probes", test_pod_host_probes},
        {"test_logs_and_exec", test_logs_and_exec},
        {"test_logs_and_exec_forbidden", test_logs_and_exec_forbidden},
        {"test_kill_and_adopt", test_kill_and_adopt},
        {"test_malformed_shapes_file", test_malformed_shapes_file},
        {"test_conflicting_node_name", test_conflicting_node_name},
        {"test_unreachable_broker", test_unreachable_broker},
        {"test_clean_exit_no_sanitizer_reports", test_clean_exit_no_sanitizer_reports},
    };
    size_t count = sizeof cases / sizeof cases[0];
    char why[256] = "";
    if (access (zt_program ("zubelet"), X_OK) != 0)
        snprintf (why, sizeof why, "zubelet is not built");
    else if (!s_sim_built ())
        snprintf (why, sizeof why, "the sim runtime plugin (plugins/sim.so) is not built");
    if (why[0]) {
        for (size_t i = 0; i < count; i++)
            zt_skip (cases[i].name, why);
        return zt_done ();
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    s_dir = zt_tempdir ("zubelet");
    if (!s_start_cluster (why, sizeof why)) {
        snprintf (s_why, sizeof s_why, "%s", why);
        zt_run ("test_cluster_starts", s_cluster_failed);
    } else
        for (size_t i = 0; i < count; i++)
            zt_run (cases[i].name, cases[i].fn);
    if (zt_failed_count) {
        s_print_log_tail ("zubelet.log");
        s_print_log_tail ("zubelet-2.log");
    }
    s_stop_cluster ();
    zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
