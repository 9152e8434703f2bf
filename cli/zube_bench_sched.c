/*  zube-bench sched - how fast zube-scheduler places pods.

    End to end (the default): starts a zube-broker, a zube-apiserver (lmdb
    in a temporary folder, or --store URL), one zubelet hosting N hollow
    nodes (--runtime sim) and zube-scheduler (--profile FILE, else the
    default profile), creates M pods (100m CPU, 500Mi, as kube-scheduler's
    SchedulingBasic test), and measures each pod from its create request to
    the moment the bench's pod informer sees it bound: pods bound per
    second, latency p50 and p99, the scheduler's CPU seconds and RSS, and
    how evenly the nodes' CPU ended up used.

    --loop-only: the scheduling loop alone (zube-scheduler's framework,
    plugins and node cache, linked in) on an in-memory snapshot of N nodes
    and M pods; latency is then one scheduling cycle. */
#define _GNU_SOURCE
#include "zs_sched.h"
#include "zube/api.h"
#include "zube/bus.h"
#include "zube/codec.h"
#include "zube/informer.h"
#include "zube_bench.h"
#include "zube_cli.h"
#include <czmq.h>
#include <ftw.h>
#include <math.h>
#include <sys/resource.h>
#include <unistd.h>

#define S_NAMESPACE "default"
//  Creates in flight by default (--in-flight)
#define S_IN_FLIGHT 256

//  The processes of an end-to-end run, in the order they are started;
//  S_PROC_BENCH is zube-bench itself (its pod informer and the creates)
enum { S_PROC_BROKER, S_PROC_APISERVER, S_PROC_ZUBELET, S_PROC_SCHEDULER, S_PROC_BENCH };
static const char *s_proc_names[] = {"broker", "apiserver", "zubelet", "scheduler", "bench"};

//  Writes the apiserver committed during the run: its revision moved by
//  `total`; the pods' own are told apart by the bench's pod informer (a
//  MODIFIED that sets spec.nodeName is the binding, any other one a
//  status or metadata write); `other` is everything else (Lease
//  renewals, Node status, Events). `requests` are the apiserver's
//  mutating requests by verb, failed ones included.
typedef struct {
    uint64_t total;
    uint64_t pod_creates;
    uint64_t bindings;
    uint64_t pod_updates;
    uint64_t other;
    uint64_t creates, updates, patches, deletes;
    double seconds;
} s_writes_t;

typedef struct {
    long nodes;
    long pods;
    long in_flight;
    const char *profile;
    const char *store;
    bool json;
    bool loop_only;
    //  Results
    double pods_per_s;
    double p50_ms, p99_ms;
    double rss_mb, cpu_s;
    double util_stddev, util_min, util_max;
    size_t bound;
    //  End to end: CPU seconds of each process while pods were created and
    //  bound (S_PROC_*), and the apiserver's writes
    double proc_cpu_s[5];
    s_writes_t writes;
} s_bench_t;

static int
s_compare_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
s_percentile (double *sorted, size_t count, double fraction)
{
    if (!count)
        return 0;
    size_t index = (size_t)ceil (fraction * (double)count);
    return sorted[index ? index - 1 : 0];
}

//  Mean, min, max and standard deviation of the nodes' CPU fractions.
static void
s_utilisation (s_bench_t *self, const double *fractions, size_t count)
{
    double sum = 0, squares = 0;
    self->util_min = count ? 1e9 : 0;
    self->util_max = 0;
    for (size_t i = 0; i < count; i++) {
        sum += fractions[i];
        if (fractions[i] < self->util_min)
            self->util_min = fractions[i];
        if (fractions[i] > self->util_max)
            self->util_max = fractions[i];
    }
    double mean = count ? sum / (double)count : 0;
    for (size_t i = 0; i < count; i++)
        squares += (fractions[i] - mean) * (fractions[i] - mean);
    self->util_stddev = count ? sqrt (squares / (double)count) : 0;
}

//  End to end: CPU per process and per pod, and writes per pod by kind
static void
s_report_pipeline (s_bench_t *self)
{
    double total = 0;
    for (int i = 0; i < 5; i++)
        total += self->proc_cpu_s[i];
    double pods = self->bound ? (double)self->bound : 1;
    const s_writes_t *w = &self->writes;
    if (self->json) {
        //  scheduler_cpu_s is among the figures every mode reports
        for (int i = 0; i < 5; i++)
            if (i != S_PROC_SCHEDULER)
                printf ("\"%s_cpu_s\": %.2f, ", s_proc_names[i], self->proc_cpu_s[i]);
        printf ("\"cpu_us_per_pod\": %.1f, \"writes\": %" PRIu64
                ", \"writes_per_pod_create\": %.3f, \"writes_per_pod_binding\": %.3f, "
                "\"writes_per_pod_update\": %.3f, \"other_writes\": %" PRIu64
                ", \"other_writes_per_s\": %.1f, \"requests_create\": %" PRIu64
                ", \"requests_update\": %" PRIu64 ", \"requests_patch\": %" PRIu64
                ", \"requests_delete\": %" PRIu64 ", ",
                total * 1e6 / pods, w->total, (double)w->pod_creates / pods,
                (double)w->bindings / pods, (double)w->pod_updates / pods, w->other,
                w->seconds > 0 ? (double)w->other / w->seconds : 0, w->creates,
                w->updates, w->patches, w->deletes);
        return;
    }
    printf ("  CPU s             ");
    for (int i = 0; i < 5; i++)
        printf ("%s%s %.2f", i ? ", " : "", s_proc_names[i], self->proc_cpu_s[i]);
    printf ("\n  CPU per pod       %.0f us (all five processes)\n", total * 1e6 / pods);
    printf ("  writes per pod    create %.3f, binding %.3f, status/other pod updates "
            "%.3f\n",
            (double)w->pod_creates / pods, (double)w->bindings / pods,
            (double)w->pod_updates / pods);
    printf ("  other writes      %" PRIu64 " (%.0f/s: leases, node status, events)\n",
            w->other, w->seconds > 0 ? (double)w->other / w->seconds : 0);
    printf ("  api requests      create %" PRIu64 ", update %" PRIu64 ", patch %" PRIu64
            ", delete %" PRIu64 "\n",
            w->creates, w->updates, w->patches, w->deletes);
}

static void
s_report (s_bench_t *self)
{
    if (self->json) {
        printf (
            "{\"mode\": \"%s\", \"nodes\": %ld, \"pods\": %ld, \"bound\": %zu, "
            "\"pods_per_s\": %.1f, \"latency_p50_ms\": %.3f, \"latency_p99_ms\": %.3f, "
            "\"scheduler_rss_mb\": %.1f, \"scheduler_cpu_s\": %.2f, \"util_stddev\": "
            "%.4f, "
            "\"util_min\": %.4f, \"util_max\": %.4f, ",
            self->loop_only ? "loop-only" : "end-to-end", self->nodes, self->pods,
            self->bound, self->pods_per_s, self->p50_ms, self->p99_ms, self->rss_mb,
            self->cpu_s, self->util_stddev, self->util_min, self->util_max);
        if (!self->loop_only)
            s_report_pipeline (self);
        printf ("\"pods_per_scheduler_cpu_s\": %.1f}\n",
                self->cpu_s > 0 ? (double)self->bound / self->cpu_s : 0);
        return;
    }
    printf ("zube-bench sched %s: %ld nodes, %ld pods, %zu bound\n",
            self->loop_only ? "--loop-only" : "(end to end)", self->nodes, self->pods,
            self->bound);
    printf ("  pods/s            %.1f\n", self->pods_per_s);
    printf ("  latency p50, p99  %.3f ms, %.3f ms%s\n", self->p50_ms, self->p99_ms,
            self->loop_only ? " (one cycle)" : " (created -> bound)");
    printf ("  scheduler         %.2f CPU s (%.0f pods per CPU s), %.1f MB RSS\n",
            self->cpu_s, self->cpu_s > 0 ? (double)self->bound / self->cpu_s : 0,
            self->rss_mb);
    printf ("  node CPU use      min %.3f, max %.3f, stddev %.4f\n", self->util_min,
            self->util_max, self->util_stddev);
    if (!self->loop_only)
        s_report_pipeline (self);
}

//  The node and pod objects of the benchmark.
static Zube__Node *
s_node_object (long index)
{
    char yaml[512];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: sim-%05ld, labels: {kubernetes.io/hostname: sim-%05ld, "
              "topology.kubernetes.io/zone: zone-%ld}}\n"
              "status: {allocatable: {cpu: '4', memory: 32Gi, pods: '110'}}\n",
              index, index, index % 3);
    ProtobufCMessage *node = NULL;
    zube_codec_decode (yaml, strlen (yaml), &zube__node__descriptor, &node, NULL);
    return (Zube__Node *)node;
}

static Zube__Pod *
s_pod_object (long index, const char *scheduler_name)
{
    char yaml[768];
    snprintf (yaml, sizeof yaml,
              "metadata: {name: bench-%06ld, namespace: " S_NAMESPACE "}\n"
              "spec: {schedulerName: %s, containers: [{name: c, image: pause, resources: "
              "{requests: {cpu: 100m, memory: 500Mi}}}]}\n",
              index, scheduler_name);
    ProtobufCMessage *pod = NULL;
    zube_codec_decode (yaml, strlen (yaml), &zube__pod__descriptor, &pod, NULL);
    return (Zube__Pod *)pod;
}

//  The first profile's schedulerName in the file (default-scheduler).
static const char *
s_scheduler_name (zs_profiles_t *profiles)
{
    return profiles->count ? zs_profile_name (profiles->profiles[0])
                           : ZS_DEFAULT_SCHEDULER_NAME;
}

//  Plugins built or installed beside zube-bench.
static char *
s_plugin_path (void)
{
    char self_path[PATH_MAX];
    ssize_t length = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    if (length <= 0)
        return NULL;
    self_path[length] = 0;
    char *slash = strrchr (self_path, '/');
    if (slash)
        *slash = 0;
    //  libtool runs the real binary from .libs/
    size_t dir_length = strlen (self_path);
    if (dir_length > 6 && streq (self_path + dir_length - 6, "/.libs"))
        self_path[dir_length - 6] = 0;
    return zsys_sprintf ("%s/plugins:%s/../lib/zube/plugins", self_path, self_path);
}

static int
s_loop_only (s_bench_t *self, const char *config_text)
{
    char *path = s_plugin_path ();
    zs_registry_t *registry = zs_registry_new (path);
    zstr_free (&path);
    zs_profiles_t profiles;
    char error[1024];
    if (!registry ||
        zs_profiles_load (registry, config_text, &profiles, error, sizeof error) != 0) {
        zube_cli_error ("--profile: %s", registry ? error : "out of memory");
        zs_registry_destroy (&registry);
        return 1;
    }
    zs_profile_t *profile = profiles.profiles[0];
    zs_cache_t *cache = zs_cache_new ();
    for (long i = 1; i <= self->nodes; i++) {
        Zube__Node *node = s_node_object (i);
        if (node)
            zs_cache_node_set (cache, node);
        if (node)
            zube__node__free_unpacked (node, NULL);
    }
    zs_pod_t **pods = calloc ((size_t)self->pods, sizeof *pods);
    for (long i = 0; pods && i < self->pods; i++) {
        Zube__Pod *object = s_pod_object (i, s_scheduler_name (&profiles));
        pods[i] = object ? zs_pod_new (object) : NULL;
        if (object)
            zube__pod__free_unpacked (object, NULL);
    }
    double *latencies = calloc ((size_t)self->pods + 1, sizeof *latencies);
    struct rusage before, after;
    getrusage (RUSAGE_SELF, &before);
    int64_t start = zube_cli_now_ns ();
    for (long i = 0; pods && latencies && i < self->pods; i++) {
        if (!pods[i])
            continue;
        int64_t cycle_start = zube_cli_now_ns ();
        zs_result_t result;
        if (zs_profile_schedule (profile, cache, pods[i], &result) == 0)
            self->bound++;
        latencies[i] = (double)(zube_cli_now_ns () - cycle_start) / 1e6;
    }
    int64_t elapsed = zube_cli_now_ns () - start;
    getrusage (RUSAGE_SELF, &after);
    self->pods_per_s = elapsed ? (double)self->bound * 1e9 / (double)elapsed : 0;
    if (latencies) {
        qsort (latencies, (size_t)self->pods, sizeof *latencies, s_compare_double);
        self->p50_ms = s_percentile (latencies, (size_t)self->pods, 0.5);
        self->p99_ms = s_percentile (latencies, (size_t)self->pods, 0.99);
    }
    self->cpu_s = (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
                  (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6 +
                  (double)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
                  (double)(after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
    self->rss_mb = (double)after.ru_maxrss / 1024.0;
    size_t count = zs_cache_node_count (cache);
    double *fractions = calloc (count + 1, sizeof *fractions);
    for (size_t i = 0; fractions && i < count; i++) {
        const zube_sched_node_t *node = zs_cache_nodes (cache)[i];
        fractions[i] =
            node->allocatable.milli_cpu
                ? (double)node->requested.milli_cpu / (double)node->allocatable.milli_cpu
                : 0;
    }
    s_utilisation (self, fractions, fractions ? count : 0);
    free (fractions);
    s_report (self);
    for (long i = 0; pods && i < self->pods; i++)
        zs_pod_destroy (&pods[i]);
    free (pods);
    free (latencies);
    zs_cache_destroy (&cache);
    zs_profiles_clear (&profiles);
    zs_registry_destroy (&registry);
    return self->bound == (size_t)self->pods ? 0 : 1;
}

//  ---------------------------------------------------------------------
//  End to end

typedef struct {
    s_bench_t *bench;
    int64_t *created_ns;
    int64_t *bound_ns;
    size_t created;
    size_t failed;
    size_t in_flight;
    int64_t last_progress_ns;
    int64_t last_event_ns;
    //  The pod every create sends, under its own name (as
    //  scheduler_perf's pod template): decoded once, packed per create
    Zube__Pod *pod;
    char *template_name;
} s_run_t;

static long
s_pod_index (const Zube__Pod *pod)
{
    const char *name = pod->metadata ? pod->metadata->name : NULL;
    if (!name || strncmp (name, "bench-", 6) != 0)
        return -1;
    return strtol (name + 6, NULL, 10);
}

static void
s_pod_seen (s_run_t *run, const ProtobufCMessage *object)
{
    const Zube__Pod *pod = (const Zube__Pod *)object;
    long index = s_pod_index (pod);
    if (index < 0 || index >= run->bench->pods || !pod->spec || !pod->spec->node_name ||
        !*pod->spec->node_name || run->bound_ns[index])
        return;
    run->bound_ns[index] = zube_cli_now_ns ();
    run->bench->bound++;
    run->last_progress_ns = run->bound_ns[index];
}

static bool
s_has_node (const ProtobufCMessage *object)
{
    const Zube__Pod *pod = (const Zube__Pod *)object;
    return pod->spec && pod->spec->node_name && *pod->spec->node_name;
}

static void
s_pod_added (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer;
    s_run_t *run = arg;
    run->last_event_ns = zube_cli_now_ns ();
    if (s_pod_index ((const Zube__Pod *)object) >= 0)
        run->bench->writes.pod_creates++;
    s_pod_seen (run, object);
}

static void
s_pod_updated (zube_informer_t *informer, const ProtobufCMessage *old_object,
               const ProtobufCMessage *new_object, void *arg)
{
    (void)informer;
    s_run_t *run = arg;
    run->last_event_ns = zube_cli_now_ns ();
    if (s_pod_index ((const Zube__Pod *)new_object) >= 0) {
        if (!s_has_node (old_object) && s_has_node (new_object))
            run->bench->writes.bindings++;
        else
            run->bench->writes.pod_updates++;
    }
    s_pod_seen (run, new_object);
}

static void
s_created (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
           const zube_api_error_t *error, void *arg)
{
    (void)api;
    s_run_t *run = arg;
    run->in_flight--;
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
    if (status != ZUBE_OK) {
        if (!run->failed++)
            zube_cli_error ("create failed: %s", error ? error->message : "");
    }
}

static int
s_create_next (s_run_t *run, zube_api_t *api, const char *scheduler_name)
{
    if (!run->pod && !(run->pod = s_pod_object (0, scheduler_name)))
        return -1;
    char name[32];
    snprintf (name, sizeof name, "bench-%06zu", run->created);
    if (!run->template_name)
        run->template_name = run->pod->metadata->name;
    run->pod->metadata->name = name;
    uint8_t buffer[2048];
    size_t size = protobuf_c_message_get_packed_size (&run->pod->base);
    uint8_t *data = size <= sizeof buffer ? buffer : malloc (size);
    if (!data)
        return -1;
    protobuf_c_message_pack (&run->pod->base, data);
    Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
    request.resource = "pods";
    request.namespace_ = S_NAMESPACE;
    request.has_object = 1;
    request.object.len = size;
    request.object.data = data;
    run->created_ns[run->created] = zube_cli_now_ns ();
    int rc = zube_api_call_async (api, "create", &request.base, NULL, s_created, run);
    if (data != buffer)
        free (data);
    if (rc == 0) {
        run->created++;
        run->in_flight++;
    }
    return rc;
}

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove (path);
}

//  CPU seconds and RSS (MB) of a process, from /proc.
static void
s_process_usage (pid_t pid, double *cpu_s, double *rss_mb)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
    char *text = zs_read_file (path);
    char *at = text ? strrchr (text, ')') : NULL;
    unsigned long long utime = 0, stime = 0;
    long rss_pages = 0;
    if (at &&
        sscanf (at + 1,
                " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                "%*d %*d %*u %*u %ld",
                &utime, &stime, &rss_pages) == 3) {
        *cpu_s = (double)(utime + stime) / (double)sysconf (_SC_CLK_TCK);
        *rss_mb = (double)rss_pages * (double)sysconf (_SC_PAGESIZE) / (1024.0 * 1024.0);
    }
    free (text);
}

//  The apiserver's `stats` figures the bench reads: its revision and
//  its mutating requests by verb
typedef struct {
    uint64_t revision, creates, updates, patches, deletes;
} s_api_stats_t;

static uint64_t
s_stat_value (const char *text, const char *key)
{
    size_t length = strlen (key);
    for (const char *at = text; (at = strstr (at, key)); at += length)
        if ((at == text || at[-1] == '\n') && at[length] == '=')
            return strtoull (at + length + 1, NULL, 10);
    return 0;
}

static int
s_api_stats (zube_bus_t *bus, s_api_stats_t *stats)
{
    zube_bus_reply_t *reply = NULL;
    int rc = -1;
    if (zube_bus_call (bus, "api", "stats", NULL, 0, 5000, &reply) == 0 &&
        reply->status == ZUBE_OK) {
        char *text = zsys_sprintf ("%.*s", (int)reply->payload_size,
                                   (const char *)reply->payload);
        if (text) {
            stats->revision = s_stat_value (text, "revision");
            stats->creates = s_stat_value (text, "requests_create");
            stats->updates = s_stat_value (text, "requests_update");
            stats->patches = s_stat_value (text, "requests_patch");
            stats->deletes = s_stat_value (text, "requests_delete");
            zstr_free (&text);
            rc = 0;
        }
    }
    zube_bus_reply_destroy (&reply);
    return rc;
}

static double
s_self_cpu_s (void)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

//  zube-scheduler answers `stats` once its caches are synced; wait until
//  its node cache holds every node too.
static bool
s_wait_scheduler (zube_bus_t *bus, pid_t scheduler, pid_t zubelet, long nodes,
                  int64_t timeout_ms)
{
    int64_t deadline = zube_cli_now_ns () + timeout_ms * 1000000;
    while (!zsys_interrupted && zube_cli_now_ns () < deadline) {
        zube_bus_reply_t *reply = NULL;
        bool answered =
            zube_bus_call (bus, "scheduler", "stats", NULL, 0, 1000, &reply) == 0 &&
            reply->status == ZUBE_OK;
        long have = 0;
        if (answered) {
            char text[1024];
            snprintf (text, sizeof text, "%.*s", (int)reply->payload_size,
                      (const char *)reply->payload);
            const char *at = strstr (text, "\"nodes\": ");
            have = at ? strtol (at + 9, NULL, 10) : 0;
        }
        zube_bus_reply_destroy (&reply);
        if (have >= nodes)
            return true;
        zube_bus_poll (bus, 100);
        if (!zube_cli_process_alive (scheduler, NULL) ||
            !zube_cli_process_alive (zubelet, NULL))
            return false;
    }
    return false;
}

static int
s_end_to_end (s_bench_t *self)
{
    char dir[] = "/tmp/zube-bench-sched-XXXXXX";
    if (!mkdtemp (dir)) {
        zube_cli_error ("cannot create a temporary folder");
        return 1;
    }
    char store[PATH_MAX], logs[5][PATH_MAX], state[PATH_MAX], data[PATH_MAX],
        endpoint[64];
    snprintf (store, sizeof store, "lmdb:%s/store", dir);
    snprintf (state, sizeof state, "%s/zubelet", dir);
    snprintf (data, sizeof data, "%s/apiserver", dir);
    mkdir (data, 0700);
    const char *names[] = {"broker", "apiserver", "zubelet", "scheduler"};
    for (int i = 0; i < 4; i++)
        snprintf (logs[i], sizeof logs[i], "%s/%s.log", dir, names[i]);
    int port = zube_cli_free_ports (3);
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    char programs[4][PATH_MAX];
    const char *bins[] = {"zube-broker", "zube-apiserver", "zubelet", "zube-scheduler"};
    for (int i = 0; i < 4; i++)
        if (!zube_cli_sibling_program (bins[i], programs[i], sizeof programs[i]))
            snprintf (programs[i], sizeof programs[i], "%s", bins[i]);
    char nodes[32];
    snprintf (nodes, sizeof nodes, "%ld", self->nodes);
    pid_t pids[4] = {0};
    char *broker_argv[] = {programs[0], "--insecure", "--bind", endpoint, NULL};
    pids[0] = zube_cli_spawn_tied (broker_argv, logs[0], true);
    char *apiserver_argv[] = {
        programs[1],  "--bus",   endpoint,
        "--insecure", "--store", (char *)(self->store ? self->store : store),
        "--data-dir", data,      NULL};
    pids[1] = zube_cli_spawn_tied (apiserver_argv, logs[1], true);
    char *zubelet_argv[] = {programs[2],          "--bus", endpoint,      "--insecure",
                            "--runtime",          "sim",   "--nodes",     nodes,
                            "--node-name-prefix", "sim-",  "--state-dir", state,
                            "--log-level",        "warn",  NULL};
    pids[2] = zube_cli_spawn_tied (zubelet_argv, logs[2], true);
    char *scheduler_argv[] = {programs[3],
                              "--bus",
                              endpoint,
                              "--insecure",
                              "--log-level",
                              "warn",
                              self->profile ? "--config" : NULL,
                              (char *)self->profile,
                              NULL};
    pids[3] = zube_cli_spawn_tied (scheduler_argv, logs[3], true);
    int rc = 1;
    zube_bus_t *bus =
        zube_bus_new (&(zube_bus_config_t){.endpoint = endpoint, .insecure = true});
    zube_api_t *api = bus ? zube_api_new (bus) : NULL;
    s_run_t run = {.bench = self};
    run.created_ns = calloc ((size_t)self->pods + 1, sizeof *run.created_ns);
    run.bound_ns = calloc ((size_t)self->pods + 1, sizeof *run.bound_ns);
    zube_informer_t *informer = NULL;
    char *config_text = self->profile ? zs_read_file (self->profile) : NULL;
    const char *scheduler_name = ZS_DEFAULT_SCHEDULER_NAME;
    char first_name[256] = "";
    if (config_text) {
        //  The pods go to the file's first profile
        const char *at = strstr (config_text, "schedulerName:");
        if (at && sscanf (at + 14, " %255[^ \n,}]", first_name) == 1)
            scheduler_name = first_name;
    }
    if (!api || !run.created_ns || !run.bound_ns || pids[0] <= 0 || pids[1] <= 0 ||
        pids[2] <= 0 || pids[3] <= 0) {
        zube_cli_error ("cannot start the cluster");
        goto done;
    }
    //  Every node registered and in the scheduler's cache (lists of
    //  thousands of nodes are paged by the informer; one reply would not do)
    if (!s_wait_scheduler (bus, pids[3], pids[2], self->nodes,
                           120000 + self->nodes * 40)) {
        zube_cli_error ("zube-scheduler did not see the %ld hollow nodes (logs in %s)",
                        self->nodes, dir);
        goto done;
    }
    informer =
        zube_informer_new (bus, &(zube_informer_config_t){.resource = "pods",
                                                          .on_add = s_pod_added,
                                                          .on_update = s_pod_updated,
                                                          .arg = &run});
    if (!informer || zube_informer_start (informer) != 0 ||
        !zube_informer_wait_synced (informer, 30000)) {
        zube_cli_error ("cannot watch pods");
        goto done;
    }
    double cpu_before[5] = {0}, rss = 0;
    for (int i = 0; i < 4; i++)
        s_process_usage (pids[i], &cpu_before[i], &rss);
    cpu_before[S_PROC_BENCH] = s_self_cpu_s ();
    s_api_stats_t api_before = {0}, api_after = {0};
    bool api_stats = s_api_stats (bus, &api_before) == 0;
    run.last_progress_ns = zube_cli_now_ns ();
    int64_t run_start = run.last_progress_ns;
    while (!zsys_interrupted && self->bound < (size_t)self->pods) {
        while (run.created < (size_t)self->pods && run.in_flight < (size_t)self->in_flight)
            if (s_create_next (&run, api, scheduler_name) != 0)
                break;
        zube_bus_poll (bus, 10);
        if (zube_cli_now_ns () - run.last_progress_ns > 60LL * 1000000000 &&
            run.created == (size_t)self->pods) {
            zube_cli_error ("no pod bound for 60 s; %zu of %ld bound (logs in %s)",
                            self->bound, self->pods, dir);
            break;
        }
        if (!zube_cli_process_alive (pids[3], NULL)) {
            zube_cli_error ("zube-scheduler exited (log %s)", logs[3]);
            break;
        }
    }
    //  The pods' last status writes land after their binding: CPU and
    //  writes are counted once the pod events have been quiet a second
    int64_t drain_end = zube_cli_now_ns () + 30LL * 1000000000;
    while (!zsys_interrupted && self->bound == (size_t)self->pods &&
           zube_cli_now_ns () < drain_end &&
           zube_cli_now_ns () - run.last_event_ns < 1000000000LL)
        zube_bus_poll (bus, 100);
    double cpu_after[5] = {0};
    for (int i = 0; i < 4; i++)
        s_process_usage (pids[i], &cpu_after[i], i == S_PROC_SCHEDULER ? &self->rss_mb : &rss);
    cpu_after[S_PROC_BENCH] = s_self_cpu_s ();
    for (int i = 0; i < 5; i++)
        self->proc_cpu_s[i] = cpu_after[i] - cpu_before[i];
    self->cpu_s = self->proc_cpu_s[S_PROC_SCHEDULER];
    s_writes_t *writes = &self->writes;
    writes->seconds = (double)(zube_cli_now_ns () - run_start) / 1e9;
    if (api_stats && s_api_stats (bus, &api_after) == 0) {
        writes->total = api_after.revision - api_before.revision;
        uint64_t pod_writes = writes->pod_creates + writes->bindings + writes->pod_updates;
        writes->other = writes->total > pod_writes ? writes->total - pod_writes : 0;
        writes->creates = api_after.creates - api_before.creates;
        writes->updates = api_after.updates - api_before.updates;
        writes->patches = api_after.patches - api_before.patches;
        writes->deletes = api_after.deletes - api_before.deletes;
    }
    int64_t first = 0, last = 0;
    double *latencies = calloc ((size_t)self->pods + 1, sizeof *latencies);
    size_t count = 0;
    for (long i = 0; latencies && i < self->pods; i++) {
        if (!run.bound_ns[i])
            continue;
        if (!first || run.created_ns[i] < first)
            first = run.created_ns[i];
        if (run.bound_ns[i] > last)
            last = run.bound_ns[i];
        latencies[count++] = (double)(run.bound_ns[i] - run.created_ns[i]) / 1e6;
    }
    self->pods_per_s = last > first ? (double)count * 1e9 / (double)(last - first) : 0;
    if (latencies) {
        qsort (latencies, count, sizeof *latencies, s_compare_double);
        self->p50_ms = s_percentile (latencies, count, 0.5);
        self->p99_ms = s_percentile (latencies, count, 0.99);
    }
    free (latencies);
    //  Placement: CPU requested per node over its allocatable (4 CPU)
    zhashx_t *per_node = zhashx_new ();
    size_t pod_count = 0;
    const ProtobufCMessage **items = zube_informer_list (informer, &pod_count);
    for (size_t i = 0; per_node && i < pod_count; i++) {
        const Zube__Pod *pod = (const Zube__Pod *)items[i];
        if (!pod->spec || !pod->spec->node_name || !*pod->spec->node_name)
            continue;
        size_t have = (size_t)zhashx_lookup (per_node, pod->spec->node_name);
        zhashx_update (per_node, pod->spec->node_name, (void *)(have + 1));
    }
    free (items);
    double *fractions = calloc ((size_t)self->nodes + 1, sizeof *fractions);
    for (long i = 0; fractions && per_node && i < self->nodes; i++) {
        char name[32];
        snprintf (name, sizeof name, "sim-%04ld", i + 1);
        fractions[i] = (double)(size_t)zhashx_lookup (per_node, name) * 0.1 / 4.0;
    }
    s_utilisation (self, fractions, fractions ? (size_t)self->nodes : 0);
    free (fractions);
    zhashx_destroy (&per_node);
    s_report (self);
    rc = self->bound == (size_t)self->pods ? 0 : 1;
done:
    zube_informer_destroy (&informer);
    zube_api_destroy (&api);
    zube_bus_destroy (&bus);
    for (int i = 3; i >= 0; i--)
        if (pids[i] > 0)
            zube_cli_process_stop (pids[i], 10000);
    if (run.pod) {
        run.pod->metadata->name = run.template_name;
        zube__pod__free_unpacked (run.pod, NULL);
    }
    free (run.created_ns);
    free (run.bound_ns);
    free (config_text);
    if (rc == 0)
        nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

static void
s_usage (void)
{
    printf (
        "Usage: zube-bench sched --nodes N --pods M [--profile FILE] [--store URL] "
        "[--json] [--loop-only]\n"
        "\n"
        "Pods bound per second by zube-scheduler: end to end on N hollow nodes (created "
        "in\n"
        "the apiserver -> bound), or the scheduling loop alone on an in-memory snapshot\n"
        "(--loop-only).\n");
}

int
zube_bench_sched (int argc, char **argv)
{
    s_bench_t bench = {.nodes = 5000, .pods = 50000, .in_flight = S_IN_FLIGHT};
    const zube_cli_flag_t flags[] = {
        {"nodes", 0, ZUBE_CLI_INT, &bench.nodes, "N", "hollow nodes [5000]"},
        {"pods", 0, ZUBE_CLI_INT, &bench.pods, "M", "pods to place [50000]"},
        {"profile", 0, ZUBE_CLI_STRING, &bench.profile, "FILE",
         "KubeSchedulerConfiguration; pods use its first profile"},
        {"in-flight", 0, ZUBE_CLI_INT, &bench.in_flight, "K",
         "end to end: creates in flight at most [256]"},
        {"store", 0, ZUBE_CLI_STRING, &bench.store, "URL",
         "the apiserver's store [lmdb in a temporary folder]"},
        {"json", 0, ZUBE_CLI_BOOL, &bench.json, NULL, "one JSON object"},
        {"loop-only", 0, ZUBE_CLI_BOOL, &bench.loop_only, NULL,
         "the scheduling loop alone, in memory"},
        {0}};
    const zube_cli_flag_t *tables[] = {flags, NULL};
    char *args[64];
    int count = zube_cli_parse ("zube-bench sched", tables, argc, argv, args, false);
    if (count == ZUBE_CLI_HELP) {
        s_usage ();
        zube_cli_print_flags (stdout, "Flags", tables);
        return 0;
    }
    if (count < 0)
        return 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\"", args[0]);
        return 1;
    }
    if (bench.nodes < 1 || bench.nodes > 100000 || bench.pods < 1 ||
        bench.pods > 1000000) {
        zube_cli_error ("--nodes must be 1..100000 and --pods 1..1000000");
        return 1;
    }
    if (bench.in_flight < 1 || bench.in_flight > 100000) {
        zube_cli_error ("--in-flight must be 1..100000");
        return 1;
    }
    char *config_text = NULL;
    if (bench.profile && !(config_text = zs_read_file (bench.profile))) {
        zube_cli_error ("--profile: cannot read %s", bench.profile);
        return 1;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    int rc = bench.loop_only ? s_loop_only (&bench, config_text) : s_end_to_end (&bench);
    free (config_text);
    return rc;
}
