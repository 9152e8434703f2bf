/*  zube-bench api - pod throughput through zube-apiserver against its
    store backend's own ceiling, and watch latency.

    Starts a zube-broker, a zube-apiserver and (for --store lmdb, redis or
    etcd) the backend server, all on free loopback ports in a temporary
    folder, then measures with N concurrent clients (one request in flight
    each, driven by T threads with one bus connection and one zube_api_t
    each, through async calls): pod
    creates, updates (read-modify-write at the resourceVersion the client
    holds) and gets per second; the raw backend with the same concurrency
    (redis: SET from N connections; etcd: /v3/kv/put from N threads; lmdb:
    txn_commit of batches of N through the store plugin); and, while
    writing at a steady rate, the latency from sending a write to its event
    on the bus topic api/pods. zube-bench(1) says how each figure is
    measured. Everything started is stopped, and the folder removed, at
    the end, on failure and on SIGINT. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <czmq.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include "zube/zube.h"
#include "zube/api.h"
#include "zube/bus.h"
#include "zube/codec.h"
#include "zube/plugin_host.h"
#include "zube/store_client.h"
#include "api.pb-c.h"
#include "core.pb-c.h"
#include "zube_bench.h"
#include "zube_cli.h"

//  Per phase without --requests.
#define S_DEFAULT_DURATION_MS 5000
#define S_DEFAULT_WATCH_RATE 5000
#define S_DEFAULT_WATCH_DURATION_MS 3000
#define S_DEFAULT_THREADS 2
//  Deadline of every request of the measured phases.
#define S_CALL_TIMEOUT_MS 30000
//  How long the backend, broker and apiserver may take to come up.
#define S_STARTUP_MS 30000
//  Objects a client keeps to update (the first ones it created).
#define S_HELD_MAX 1024
//  After the last watch write: how long to wait for acks and events.
#define S_WATCH_DRAIN_MS 10000
#define S_WATCH_TOPIC "api/pods"
#define S_NAMESPACE "default"

//  A realistic small pod: one container with ports, requests and limits,
//  labels and the annotation each update changes.
static const char *s_pod_yaml = "apiVersion: v1\n"
                                "kind: Pod\n"
                                "metadata:\n"
                                "  name: placeholder\n"
                                "  namespace: default\n"
                                "  labels:\n"
                                "    app: zube-bench\n"
                                "    tier: web\n"
                                "  annotations:\n"
                                "    zube.io/bench-update: \"0\"\n"
                                "spec:\n"
                                "  restartPolicy: Always\n"
                                "  terminationGracePeriodSeconds: 30\n"
                                "  containers:\n"
                                "  - name: web\n"
                                "    image: nginx:1.25\n"
                                "    ports:\n"
                                "    - containerPort: 80\n"
                                "      protocol: TCP\n"
                                "    resources:\n"
                                "      requests:\n"
                                "        cpu: 100m\n"
                                "        memory: 64Mi\n"
                                "      limits:\n"
                                "        cpu: 500m\n"
                                "        memory: 128Mi\n";

typedef enum { S_STORE_LMDB, S_STORE_REDIS, S_STORE_ETCD } s_store_kind_t;

//  --------------------------------------------------------------------------
//  Latency samples and summaries

typedef struct {
    int64_t *ns;
    size_t count;
    size_t capacity;
} s_samples_t;

static void
s_samples_add (s_samples_t *self, int64_t ns)
{
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 4096;
        int64_t *grown = realloc (self->ns, capacity * sizeof *grown);
        if (!grown)
            return;
        self->ns = grown;
        self->capacity = capacity;
    }
    self->ns[self->count++] = ns;
}

static void
s_samples_append (s_samples_t *self, const s_samples_t *other)
{
    for (size_t i = 0; i < other->count; i++)
        s_samples_add (self, other->ns[i]);
}

static void
s_samples_free (s_samples_t *self)
{
    free (self->ns);
    *self = (s_samples_t) {0};
}

static int
s_compare_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  CPU time per successful operation of a phase, in microseconds, of each
//  process (from /proc and getrusage): on a shared machine these move far
//  less with the load than the rates do, and they say who does the work.
typedef struct {
    double bench, broker, apiserver, backend;
} s_cpu_t;

//  The figures of one measured phase.
typedef struct {
    s_cpu_t cpu_us;
    size_t ok;
    size_t errors;
    double seconds;
    double per_s;
    double p50_ms, p99_ms, max_ms;
    char error[256];    //  the first error, for the report
} s_result_t;

static double
s_percentile_ms (const int64_t *sorted, size_t count, double fraction)
{
    if (count == 0)
        return 0;
    size_t rank = (size_t) ceil (fraction * (double) count);
    rank = rank < 1 ? 1 : rank > count ? count : rank;
    return (double) sorted[rank - 1] / 1e6;
}

//  ok: successful operations (each sample may stand for several, as a
//  raw lmdb batch does).
static void
s_summarize (s_samples_t *samples, size_t ok, size_t errors, int64_t elapsed_ns,
             s_result_t *result)
{
    qsort (samples->ns, samples->count, sizeof (int64_t), s_compare_int64);
    result->ok = ok;
    result->errors = errors;
    result->seconds = (double) elapsed_ns / 1e9;
    result->per_s = elapsed_ns > 0 ? (double) ok / ((double) elapsed_ns / 1e9) : 0;
    result->p50_ms = s_percentile_ms (samples->ns, samples->count, 0.50);
    result->p99_ms = s_percentile_ms (samples->ns, samples->count, 0.99);
    result->max_ms = samples->count ? (double) samples->ns[samples->count - 1] / 1e6 : 0;
}

static void
s_result_error (s_result_t *result, const char *text)
{
    if (!result->error[0])
        snprintf (result->error, sizeof result->error, "%s", text);
}

//  --------------------------------------------------------------------------
//  Processes, ports, folders

//  Removes a folder tree this run created.
static void
s_rmtree (const char *dir)
{
    DIR *handle = opendir (dir);
    if (handle) {
        struct dirent *entry;
        while ((entry = readdir (handle))) {
            if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
                continue;
            char path[PATH_MAX];
            int length = snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
            if (length < 0 || length >= (int) sizeof path)
                continue;
            struct stat st;
            if (lstat (path, &st) == 0 && S_ISDIR (st.st_mode))
                s_rmtree (path);
            else
                unlink (path);
        }
        closedir (handle);
    }
    rmdir (dir);
}

//  Servers die with zube-bench, so not even a SIGKILL of it leaves one.
static pid_t
s_spawn (char *const argv[], const char *log_path)
{
    return zube_cli_spawn_tied (argv, log_path, true);
}

static void
s_log_tail (const char *log_path)
{
    char *command = NULL;
    if (asprintf (&command, "tail -5 '%s' >&2 2>/dev/null", log_path) > 0
        && system (command) < 0) {
    }
    free (command);
}

//  A program beside zube-bench (or the given path, or the bare name for
//  $PATH) into buf.
static const char *
s_program (const char *given, const char *name, char *buf, size_t size)
{
    if (given)
        return given;
    const char *found = zube_cli_sibling_program (name, buf, size);
    return found ? found : name;
}

//  --------------------------------------------------------------------------
//  Base64 (etcd's JSON gateway takes keys and values so)

static char *
s_base64 (const void *data, size_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *in = data;
    char *out = malloc (4 * ((size + 2) / 3) + 1);
    if (!out)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t chunk = (uint32_t) in[i] << 16;
        if (i + 1 < size)
            chunk |= (uint32_t) in[i + 1] << 8;
        if (i + 2 < size)
            chunk |= in[i + 2];
        out[used++] = alphabet[(chunk >> 18) & 63];
        out[used++] = alphabet[(chunk >> 12) & 63];
        out[used++] = i + 1 < size ? alphabet[(chunk >> 6) & 63] : '=';
        out[used++] = i + 2 < size ? alphabet[chunk & 63] : '=';
    }
    out[used] = 0;
    return out;
}

//  --------------------------------------------------------------------------
//  The run: options, servers, shared state

typedef struct {
    //  Flags
    const char *store;
    long clients;
    long threads;
    bool json;
    int64_t duration_ms;
    long requests;
    long watch_rate;
    int64_t watch_duration_ms;
    const char *broker_binary;
    const char *apiserver_binary;

    //  The backend
    s_store_kind_t kind;
    bool external;              //  a URL of a running server: nothing started
    char store_url[PATH_MAX];   //  what the apiserver opens
    char host[256];             //  redis and etcd
    int port;
    int redis_db;

    //  What runs
    char dir[64];               //  /tmp/zube-bench-api-XXXXXX
    char endpoint[64];
    pid_t broker, apiserver, backend;
    char broker_log[128], apiserver_log[128], backend_log[128];

    //  Names of this run's objects and keys start with this.
    char run_id[8];
    size_t value_bytes;

    //  The clients' phases
    pthread_barrier_t start, done;
    atomic_int gate;            //  0: wait, 1: all clients started, -1: give up
    int phase;
    int64_t deadline_ns;
    bool quota_mode;
} s_bench_t;

static const char *
s_store_name (s_store_kind_t kind)
{
    return kind == S_STORE_LMDB ? "lmdb" : kind == S_STORE_REDIS ? "redis" : "etcd";
}

//  "redis://HOST:PORT[/DB]" or "etcd://HOST:PORT[,...]": the first host
//  and port.
static int
s_parse_url (s_bench_t *self, const char *rest)
{
    const char *end = rest + strcspn (rest, ",/");
    const char *colon = memchr (rest, ':', (size_t) (end - rest));
    if (!colon || colon == rest || (size_t) (colon - rest) >= sizeof self->host)
        return -1;
    snprintf (self->host, sizeof self->host, "%.*s", (int) (colon - rest), rest);
    char *port_end = NULL;
    long port = strtol (colon + 1, &port_end, 10);
    if (port_end != end || port < 1 || port > 65535)
        return -1;
    self->port = (int) port;
    if (*end == '/' && self->kind == S_STORE_REDIS)
        self->redis_db = atoi (end + 1);
    return 0;
}

static int
s_parse_store (s_bench_t *self)
{
    const char *store = self->store;
    if (strcmp (store, "lmdb") == 0 || strncmp (store, "lmdb:", 5) == 0) {
        self->kind = S_STORE_LMDB;
        self->external = store[4] == ':';
        if (self->external)
            snprintf (self->store_url, sizeof self->store_url, "%s", store);
        return 0;
    }
    if (strcmp (store, "redis") == 0 || strcmp (store, "etcd") == 0) {
        self->kind = store[0] == 'r' ? S_STORE_REDIS : S_STORE_ETCD;
        return 0;
    }
    if (strncmp (store, "redis://", 8) == 0 || strncmp (store, "etcd://", 7) == 0) {
        self->kind = store[0] == 'r' ? S_STORE_REDIS : S_STORE_ETCD;
        self->external = true;
        snprintf (self->store_url, sizeof self->store_url, "%s", store);
        return s_parse_url (self, strstr (store, "://") + 3);
    }
    return -1;
}

//  A hiredis connection to the backend (db selected), or NULL.
static redisContext *
s_redis_connect (s_bench_t *self)
{
    struct timeval timeout = {.tv_sec = 5};
    redisContext *redis = redisConnectWithTimeout (self->host, self->port, timeout);
    if (!redis || redis->err) {
        if (redis)
            redisFree (redis);
        return NULL;
    }
    redisSetTimeout (redis, (struct timeval) {.tv_sec = 30});
    int one = 1;
    setsockopt (redis->fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
    if (self->redis_db) {
        redisReply *reply = redisCommand (redis, "SELECT %d", self->redis_db);
        bool ok = reply && reply->type == REDIS_REPLY_STATUS;
        if (reply)
            freeReplyObject (reply);
        if (!ok) {
            redisFree (redis);
            return NULL;
        }
    }
    return redis;
}

//  EXISTS is refused while the server loads its data: an integer means ready.
static bool
s_redis_ready (s_bench_t *self)
{
    redisContext *redis = s_redis_connect (self);
    if (!redis)
        return false;
    redisReply *reply = redisCommand (redis, "EXISTS zube-bench-ready");
    bool ready = reply && reply->type == REDIS_REPLY_INTEGER;
    if (reply)
        freeReplyObject (reply);
    redisFree (redis);
    return ready;
}

static size_t
s_curl_discard (char *data, size_t size, size_t count, void *arg)
{
    return size * count;
}

static size_t
s_curl_collect (char *data, size_t size, size_t count, void *arg)
{
    char *buf = arg;
    size_t used = strlen (buf), n = size * count;
    if (used + 1 < 512)
        snprintf (buf + used, 512 - used, "%.*s", (int) n, data);
    return n;
}

//  POSTs body to path of the etcd; the HTTP status (0: unreachable). The
//  first 511 bytes of the answer go to answer when not NULL.
static long
s_etcd_post (CURL *curl, s_bench_t *self, const char *path, const char *body,
             char answer[512])
{
    char url[512];
    snprintf (url, sizeof url, "http://%s:%d%s", self->host, self->port, path);
    if (answer)
        answer[0] = 0;
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, answer ? s_curl_collect : s_curl_discard);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, answer);
    long code = 0;
    if (curl_easy_perform (curl) == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static CURL *
s_etcd_curl (void)
{
    CURL *curl = curl_easy_init ();
    if (!curl)
        return NULL;
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) S_CALL_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt (curl, CURLOPT_TCP_NODELAY, 1L);
    return curl;
}

static bool
s_etcd_ready (s_bench_t *self)
{
    CURL *curl = s_etcd_curl ();
    if (!curl)
        return false;
    char answer[512];
    long code = s_etcd_post (curl, self, "/v3/kv/range", "{\"key\":\"AA==\"}", answer);
    curl_easy_cleanup (curl);
    return code == 200 && strstr (answer, "\"revision\"");
}

//  Waits until ready () answers, while pid lives. 0, or -1 (interrupted,
//  died, or too slow).
static int
s_wait_ready (s_bench_t *self, pid_t pid, bool (*ready) (s_bench_t *))
{
    int64_t deadline = zube_cli_now_ns () + (int64_t) S_STARTUP_MS * 1000000;
    while (!zsys_interrupted && zube_cli_now_ns () < deadline) {
        if (ready (self))
            return 0;
        if (pid > 0 && !zube_cli_process_alive (pid, NULL))
            return -1;
        usleep (20000);
    }
    return -1;
}

static int
s_backend_start (s_bench_t *self)
{
    if (self->kind == S_STORE_LMDB) {
        if (!self->external)
            snprintf (self->store_url, sizeof self->store_url, "lmdb:%s/store", self->dir);
        return 0;
    }
    if (self->external) {
        if (s_wait_ready (self, 0,
                          self->kind == S_STORE_REDIS ? s_redis_ready : s_etcd_ready)
            != 0) {
            zube_cli_error ("%s does not answer", self->store_url);
            return -1;
        }
        return 0;
    }
    snprintf (self->host, sizeof self->host, "127.0.0.1");
    char data[128], port[16];
    snprintf (self->backend_log, sizeof self->backend_log, "%s/%s.log", self->dir,
              s_store_name (self->kind));
    snprintf (data, sizeof data, "%s/%s", self->dir, s_store_name (self->kind));
    if (mkdir (data, 0700) != 0) {
        zube_cli_error ("cannot create %s: %s", data, strerror (errno));
        return -1;
    }
    const char *program = NULL;
    if (self->kind == S_STORE_REDIS) {
        self->port = zube_cli_free_ports (1);
        snprintf (port, sizeof port, "%d", self->port);
        snprintf (self->store_url, sizeof self->store_url, "redis://127.0.0.1:%d", self->port);
        program = "redis-server";
        //  Durable as `zube up` runs it: every write fsynced before the
        //  answer. No automatic AOF rewrite: that background fork copies
        //  the whole dataset once the AOF reaches 64 MB and lands in
        //  whichever phase is writing then (a raw SET phase it landed in
        //  measured 14k/s instead of 33k/s), so the ratio was a lottery.
        char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                        "--dir", data, "--save", "", "--appendonly", "yes",
                        "--appendfsync", "always", "--auto-aof-rewrite-percentage", "0",
                        "--daemonize", "no", NULL};
        self->backend = self->port > 0 ? s_spawn (argv, self->backend_log) : -1;
    }
    else {
        int base = zube_cli_free_ports (2);
        self->port = base;
        snprintf (self->store_url, sizeof self->store_url, "etcd://127.0.0.1:%d", base);
        char client_url[64], peer_url[64], cluster[96];
        snprintf (client_url, sizeof client_url, "http://127.0.0.1:%d", base);
        snprintf (peer_url, sizeof peer_url, "http://127.0.0.1:%d", base + 1);
        snprintf (cluster, sizeof cluster, "bench=%s", peer_url);
        program = "etcd";
        char *argv[] = {"etcd", "--name", "bench", "--data-dir", data,
                        "--listen-client-urls", client_url,
                        "--advertise-client-urls", client_url,
                        "--listen-peer-urls", peer_url,
                        "--initial-advertise-peer-urls", peer_url,
                        "--initial-cluster", cluster, NULL};
        self->backend = base > 0 ? s_spawn (argv, self->backend_log) : -1;
    }
    if (self->backend < 0) {
        zube_cli_error ("cannot start %s: %s", program,
                        self->port > 0 ? strerror (errno) : "no free loopback port");
        return -1;
    }
    if (s_wait_ready (self, self->backend,
                      self->kind == S_STORE_REDIS ? s_redis_ready : s_etcd_ready)
        != 0) {
        if (!zsys_interrupted) {
            zube_cli_error ("%s did not come up on port %d; the end of its log:", program,
                            self->port);
            s_log_tail (self->backend_log);
        }
        return -1;
    }
    return 0;
}

//  The apiserver answers: a get of a pod that does not exist says NotFound.
static int
s_wait_apiserver (s_bench_t *self, zube_api_t *api)
{
    char name[64];
    snprintf (name, sizeof name, "bench-%s-probe", self->run_id);
    int64_t deadline = zube_cli_now_ns () + (int64_t) S_STARTUP_MS * 1000000;
    zube_api_set_timeout (api, 1000);
    zube_api_error_t error = {0};
    while (!zsys_interrupted && zube_cli_now_ns () < deadline) {
        zube_status_t status = zube_api_get (api, "pods", S_NAMESPACE, name, NULL, &error);
        if (status == ZUBE_NOT_FOUND || status == ZUBE_OK) {
            zube_api_set_timeout (api, S_CALL_TIMEOUT_MS);
            return 0;
        }
        if (!zube_cli_process_alive (self->apiserver, NULL)
            || !zube_cli_process_alive (self->broker, NULL))
            break;
    }
    //  Every client thread may get here: one report is enough.
    static atomic_flag reported = ATOMIC_FLAG_INIT;
    if (!zsys_interrupted && !atomic_flag_test_and_set (&reported)) {
        zube_cli_error ("the apiserver did not answer (%s); the end of its log:",
                        error.message);
        s_log_tail (self->apiserver_log);
    }
    return -1;
}

static int
s_cluster_start (s_bench_t *self)
{
    char broker_buf[PATH_MAX], apiserver_buf[PATH_MAX], data_dir[128];
    const char *broker =
        s_program (self->broker_binary, "zube-broker", broker_buf, sizeof broker_buf);
    const char *apiserver = s_program (self->apiserver_binary, "zube-apiserver",
                                       apiserver_buf, sizeof apiserver_buf);
    int port = zube_cli_free_ports (3);
    if (port < 0) {
        zube_cli_error ("no free loopback ports");
        return -1;
    }
    snprintf (self->endpoint, sizeof self->endpoint, "tcp://127.0.0.1:%d", port);
    snprintf (self->broker_log, sizeof self->broker_log, "%s/broker.log", self->dir);
    snprintf (self->apiserver_log, sizeof self->apiserver_log, "%s/apiserver.log", self->dir);
    snprintf (data_dir, sizeof data_dir, "%s/apiserver", self->dir);
    if (mkdir (data_dir, 0700) != 0) {
        zube_cli_error ("cannot create %s: %s", data_dir, strerror (errno));
        return -1;
    }
    char *broker_argv[] = {(char *) broker, "--insecure", "--bind", self->endpoint, NULL};
    self->broker = s_spawn (broker_argv, self->broker_log);
    if (self->broker < 0) {
        zube_cli_error ("cannot start %s: %s", broker, strerror (errno));
        return -1;
    }
    char *apiserver_argv[] = {(char *) apiserver, "--bus",      self->endpoint,
                              "--insecure",       "--store",    self->store_url,
                              "--data-dir",       data_dir,     NULL};
    self->apiserver = s_spawn (apiserver_argv, self->apiserver_log);
    if (self->apiserver < 0) {
        zube_cli_error ("cannot start %s: %s", apiserver, strerror (errno));
        return -1;
    }
    return 0;
}

//  Stops everything this run started, newest first, and removes its folder.
static void
s_teardown (s_bench_t *self)
{
    zube_cli_process_stop (self->apiserver, 10000);
    self->apiserver = 0;
    zube_cli_process_stop (self->broker, 5000);
    self->broker = 0;
    zube_cli_process_stop (self->backend, 15000);
    self->backend = 0;
    if (self->dir[0])
        s_rmtree (self->dir);
    self->dir[0] = 0;
}

//  CPU seconds (user + system, every thread) a process used so far; 0 for
//  none or gone.
static double
s_process_cpu (pid_t pid)
{
    char path[64], text[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = pid > 0 ? fopen (path, "r") : NULL;
    if (!file)
        return 0;
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text[size] = 0;
    //  After "pid (comm) ": state, then utime and stime are the 12th and
    //  13th fields.
    char *at = strrchr (text, ')');
    unsigned long long utime = 0, stime = 0;
    if (!at
        || sscanf (at + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                   &stime)
               != 2)
        return 0;
    return (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

static s_cpu_t
s_cpu_now (s_bench_t *bench)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (s_cpu_t) {
        .bench = (double) usage.ru_utime.tv_sec + (double) usage.ru_utime.tv_usec / 1e6
                 + (double) usage.ru_stime.tv_sec + (double) usage.ru_stime.tv_usec / 1e6,
        .broker = s_process_cpu (bench->broker),
        .apiserver = s_process_cpu (bench->apiserver),
        .backend = s_process_cpu (bench->backend),
    };
}

static s_cpu_t
s_cpu_per_op (s_cpu_t before, s_cpu_t after, size_t ops)
{
    double n = ops ? (double) ops : 1;
    return (s_cpu_t) {.bench = (after.bench - before.bench) * 1e6 / n,
                      .broker = (after.broker - before.broker) * 1e6 / n,
                      .apiserver = (after.apiserver - before.apiserver) * 1e6 / n,
                      .backend = (after.backend - before.backend) * 1e6 / n};
}

//  The apiserver's group commit counters (its `stats` method,
//  docs/api-protocol.md): how many writes each store transaction carried.
typedef struct {
    bool ok;
    double batches;
    double writes;
    double commit_us; //  the store's time over those transactions
} s_stats_t;

static s_stats_t
s_apiserver_stats (zube_bus_t *bus)
{
    s_stats_t stats = {0};
    zube_bus_reply_t *reply = NULL;
    if (bus && zube_bus_call (bus, ZUBE_API_SERVICE, "stats", NULL, 0, 5000, &reply) == 0
        && reply->status == ZUBE_OK && reply->payload) {
        char *text = strndup ((const char *) reply->payload, reply->payload_size);
        char *batches = text ? strstr (text, "\nbatches=") : NULL;
        char *writes = text ? strstr (text, "\nbatched_writes=") : NULL;
        if (batches && writes) {
            stats.batches = strtod (batches + 9, NULL);
            stats.writes = strtod (writes + 16, NULL);
            char *commit = strstr (text, "\ncommit_us=");
            stats.commit_us = commit ? strtod (commit + 11, NULL) : 0;
            stats.ok = true;
        }
        free (text);
    }
    zube_bus_reply_destroy (&reply);
    return stats;
}

//  Writes per store transaction between two readings; 0 when unknown.
static double
s_mean_batch (s_stats_t before, s_stats_t after)
{
    double batches = after.batches - before.batches;
    return before.ok && after.ok && batches > 0 ? (after.writes - before.writes) / batches : 0;
}

//  Milliseconds the store took per transaction between two readings; 0
//  when unknown.
static double
s_mean_commit_ms (s_stats_t before, s_stats_t after)
{
    double batches = after.batches - before.batches;
    return before.ok && after.ok && batches > 0
               ? (after.commit_us - before.commit_us) / batches / 1000.0
               : 0;
}

//  --------------------------------------------------------------------------
//  Clients: N logical clients, each with one request in flight, driven by
//  T worker threads; a worker has one bus connection and one zube_api_t
//  and keeps its clients' requests going with async calls, so one wake-up
//  of its thread handles every reply that arrived meanwhile. With T = N
//  every client has its own thread and connection.

enum { S_PHASE_CONNECT, S_PHASE_CREATE, S_PHASE_UPDATE, S_PHASE_GET, S_PHASE_QUIT };

typedef struct s_worker_t s_worker_t;

typedef struct {
    s_worker_t *worker;
    int index;
    ProtobufCMessage **held;    //  objects to update, as the server last answered
    size_t held_count;
    uint32_t *created;          //  sequence numbers of the pods created
    size_t created_count, created_capacity;
    size_t next_sequence;
    size_t updates;
    size_t next_get;
    //  This phase
    size_t quota;
    size_t issued;
    size_t ok, errors;
    s_samples_t samples;
    char error[256];
    //  The request in flight
    bool busy;
    int64_t started_ns;
    size_t slot;                //  update: which held object
    //  The phase it was sent in: an interrupted run's last answers come
    //  once the workers are already at S_PHASE_QUIT.
    int phase;
} s_client_t;

struct s_worker_t {
    s_bench_t *bench;
    pthread_t thread;
    zube_bus_t *bus;
    zube_api_t *api;
    Zube__Pod *pod;             //  the template, renamed for each create
    s_client_t *clients;
    size_t count;
    size_t busy;                //  clients with a request in flight
    int phase;
    bool connected;
    char error[256];
};

static void
s_pod_name (s_client_t *self, size_t sequence, char *buf, size_t size)
{
    snprintf (buf, size, "bench-%s-%d-%zu", self->worker->bench->run_id, self->index,
              sequence);
}

static void
s_client_failed (s_client_t *self, const char *verb, zube_status_t status,
                 const zube_api_error_t *error)
{
    self->errors++;
    if (!self->error[0])
        snprintf (self->error, sizeof self->error, "%s: %s: %.200s", verb,
                  zube_status_reason (status), error ? error->message : "");
}

static bool
s_client_more (s_client_t *self)
{
    s_bench_t *bench = self->worker->bench;
    if (zsys_interrupted)
        return false;
    if (bench->quota_mode)
        return self->issued < self->quota;
    return zube_cli_now_ns () < bench->deadline_ns;
}

//  The annotation each update changes (its value is the client's count).
static Zube__ObjectMeta__AnnotationsEntry *
s_update_annotation (ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    for (size_t i = 0; meta && i < meta->n_annotations; i++)
        if (meta->annotations[i]->key
            && strcmp (meta->annotations[i]->key, "zube.io/bench-update") == 0)
            return meta->annotations[i];
    return NULL;
}

static void s_client_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
                           const zube_api_error_t *error, void *arg);

static uint8_t *
s_pack (const ProtobufCMessage *object, size_t *size_p)
{
    size_t size = protobuf_c_message_get_packed_size (object);
    uint8_t *data = malloc (size ? size : 1);
    if (data)
        *size_p = protobuf_c_message_pack (object, data);
    return data;
}

//  Sends the client's next request of the phase (0), or -1 when it could
//  not be sent.
static int
s_client_send (s_client_t *self)
{
    s_worker_t *worker = self->worker;
    char name[128];
    size_t size = 0;
    uint8_t *data = NULL;
    int rc = -1;
    self->phase = worker->phase;
    if (worker->phase == S_PHASE_CREATE) {
        size_t sequence = self->next_sequence++;
        s_pod_name (self, sequence, name, sizeof name);
        Zube__ObjectMeta *meta = worker->pod->metadata;
        char *template_name = meta->name;
        meta->name = name;
        data = s_pack (&worker->pod->base, &size);
        meta->name = template_name;
        Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
        request.resource = "pods";
        request.namespace_ = S_NAMESPACE;
        request.has_object = 1;
        request.object = (ProtobufCBinaryData) {.len = size, .data = data};
        self->slot = sequence;
        self->started_ns = zube_cli_now_ns ();
        if (data)
            rc = zube_api_call_async (worker->api, "create", &request.base,
                                      &zube__object_reply__descriptor, s_client_done, self);
    }
    else if (worker->phase == S_PHASE_UPDATE) {
        if (self->held_count == 0) {
            s_client_failed (self, "update", ZUBE_NOT_FOUND, NULL);
            return -1;
        }
        //  Read-modify-write: the client alone writes its pods, so the
        //  object the last create or update answered holds the current
        //  resourceVersion.
        self->slot = self->updates++ % self->held_count;
        ProtobufCMessage *object = self->held[self->slot];
        Zube__ObjectMeta__AnnotationsEntry *annotation = s_update_annotation (object);
        char *original = annotation ? annotation->value : NULL;
        char value[32];
        snprintf (value, sizeof value, "%zu", self->updates);
        if (annotation)
            annotation->value = value;
        data = s_pack (object, &size);
        if (annotation)
            annotation->value = original;
        Zube__UpdateRequest request = ZUBE__UPDATE_REQUEST__INIT;
        request.resource = "pods";
        request.namespace_ = S_NAMESPACE;
        request.name = zube_object_meta (object)->name;
        request.has_object = 1;
        request.object = (ProtobufCBinaryData) {.len = size, .data = data};
        self->started_ns = zube_cli_now_ns ();
        if (data)
            rc = zube_api_call_async (worker->api, "update", &request.base,
                                      &zube__object_reply__descriptor, s_client_done, self);
    }
    else {
        if (self->created_count == 0) {
            s_client_failed (self, "get", ZUBE_NOT_FOUND, NULL);
            return -1;
        }
        s_pod_name (self, self->created[self->next_get++ % self->created_count], name,
                    sizeof name);
        Zube__GetRequest request = ZUBE__GET_REQUEST__INIT;
        request.resource = "pods";
        request.namespace_ = S_NAMESPACE;
        request.name = name;
        self->started_ns = zube_cli_now_ns ();
        rc = zube_api_call_async (worker->api, "get", &request.base,
                                  &zube__object_reply__descriptor, s_client_done, self);
    }
    free (data);
    if (rc != 0 && !self->error[0])
        snprintf (self->error, sizeof self->error, "a request could not be sent");
    return rc;
}

//  Keeps the client's one request in flight until its phase is over.
static void
s_client_next (s_client_t *self)
{
    while (s_client_more (self)) {
        self->issued++;
        if (s_client_send (self) == 0)
            return;
        self->errors++;
    }
    self->busy = false;
    self->worker->busy--;
}

static void
s_client_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
               const zube_api_error_t *error, void *arg)
{
    s_client_t *self = arg;
    int64_t latency = zube_cli_now_ns () - self->started_ns;
    static const char *verbs[] = {[S_PHASE_CREATE] = "create", [S_PHASE_UPDATE] = "update",
                                  [S_PHASE_GET] = "get"};
    Zube__ObjectReply *answer = (Zube__ObjectReply *) reply;
    ProtobufCMessage *object = NULL;
    if (status == ZUBE_OK && self->phase != S_PHASE_GET)
        object = answer && answer->has_object
                     ? (ProtobufCMessage *) zube__pod__unpack (NULL, answer->object.len,
                                                               answer->object.data)
                     : NULL;
    if (status != ZUBE_OK || (self->phase != S_PHASE_GET && !object))
        s_client_failed (self, verbs[self->phase], status, error);
    else {
        self->ok++;
        s_samples_add (&self->samples, latency);
        if (self->phase == S_PHASE_CREATE) {
            if (self->created_count == self->created_capacity) {
                size_t capacity = self->created_capacity ? self->created_capacity * 2 : 1024;
                uint32_t *grown = realloc (self->created, capacity * sizeof *grown);
                if (grown) {
                    self->created = grown;
                    self->created_capacity = capacity;
                }
            }
            if (self->created_count < self->created_capacity)
                self->created[self->created_count++] = (uint32_t) self->slot;
            if (self->held_count < S_HELD_MAX) {
                self->held[self->held_count++] = object;
                object = NULL;
            }
        }
        else if (self->phase == S_PHASE_UPDATE) {
            protobuf_c_message_free_unpacked (self->held[self->slot], NULL);
            self->held[self->slot] = object;
            object = NULL;
        }
    }
    protobuf_c_message_free_unpacked (object, NULL);
    protobuf_c_message_free_unpacked (reply, NULL);
    s_client_next (self);
}

static void
s_worker_connect (s_worker_t *self)
{
    s_bench_t *bench = self->bench;
    ProtobufCMessage *message = NULL;
    zube_codec_error_t codec_error;
    if (zube_codec_decode (s_pod_yaml, strlen (s_pod_yaml), &zube__pod__descriptor, &message,
                           &codec_error)
        != 0) {
        snprintf (self->error, sizeof self->error, "the pod template: %.200s",
                  codec_error.message);
        return;
    }
    self->pod = (Zube__Pod *) message;
    for (size_t i = 0; i < self->count; i++)
        if (!(self->clients[i].held = calloc (S_HELD_MAX, sizeof (ProtobufCMessage *)))) {
            snprintf (self->error, sizeof self->error, "out of memory");
            return;
        }
    self->bus = zube_bus_new (&(zube_bus_config_t) {.endpoint = bench->endpoint,
                                                    .insecure = true});
    self->api = self->bus ? zube_api_new (self->bus) : NULL;
    if (!self->api) {
        snprintf (self->error, sizeof self->error, "cannot connect to %s", bench->endpoint);
        return;
    }
    //  Every connection is up and routed before anything is timed.
    self->connected = s_wait_apiserver (bench, self->api) == 0;
    if (!self->connected)
        snprintf (self->error, sizeof self->error, "the apiserver did not answer");
}

static void
s_worker_phase (s_worker_t *self)
{
    self->busy = 0;
    for (size_t i = 0; i < self->count; i++) {
        self->clients[i].busy = true;
        self->busy++;
    }
    for (size_t i = 0; i < self->count; i++)
        s_client_next (&self->clients[i]);
    while (self->busy > 0)
        if (zube_bus_poll (self->bus, 100) < 0)
            break;
}

static void *
s_worker_thread (void *arg)
{
    s_worker_t *self = arg;
    s_bench_t *bench = self->bench;
    //  The barriers count every worker: they are used once all started.
    while (atomic_load (&bench->gate) == 0)
        usleep (1000);
    while (atomic_load (&bench->gate) > 0) {
        pthread_barrier_wait (&bench->start);
        self->phase = bench->phase;
        if (self->phase == S_PHASE_QUIT)
            break;
        if (self->phase == S_PHASE_CONNECT)
            s_worker_connect (self);
        else if (self->connected)
            s_worker_phase (self);
        pthread_barrier_wait (&bench->done);
    }
    //  Calls still waiting (after an interruption) end here, their
    //  clients still alive.
    zube_api_destroy (&self->api);
    zube_bus_destroy (&self->bus);
    for (size_t i = 0; i < self->count; i++) {
        s_client_t *client = &self->clients[i];
        for (size_t j = 0; j < client->held_count; j++)
            protobuf_c_message_free_unpacked (client->held[j], NULL);
        free (client->held);
        free (client->created);
        client->held = NULL;
        client->created = NULL;
    }
    if (self->pod)
        protobuf_c_message_free_unpacked (&self->pod->base, NULL);
    return NULL;
}

//  Runs one phase on every client (each gets its share of requests, or
//  runs until the deadline) and sums it up.
static void
s_clients_run (s_bench_t *bench, s_client_t *clients, int phase, s_result_t *result)
{
    size_t count = (size_t) bench->clients;
    for (size_t i = 0; i < count; i++) {
        clients[i].ok = clients[i].errors = clients[i].issued = 0;
        clients[i].samples.count = 0;
        clients[i].error[0] = 0;
        clients[i].quota = (size_t) bench->requests / count
                           + (i < (size_t) bench->requests % count ? 1 : 0);
    }
    bench->phase = phase;
    bench->deadline_ns = zube_cli_now_ns () + bench->duration_ms * 1000000;
    int64_t start = zube_cli_now_ns ();
    pthread_barrier_wait (&bench->start);
    pthread_barrier_wait (&bench->done);
    int64_t elapsed = zube_cli_now_ns () - start;
    if (!result)
        return;
    s_samples_t all = {0};
    size_t ok = 0, errors = 0;
    *result = (s_result_t) {0};
    for (size_t i = 0; i < count; i++) {
        s_samples_append (&all, &clients[i].samples);
        ok += clients[i].ok;
        errors += clients[i].errors;
        if (clients[i].error[0])
            s_result_error (result, clients[i].error);
    }
    s_summarize (&all, ok, errors, elapsed, result);
    s_samples_free (&all);
}

//  --------------------------------------------------------------------------
//  The raw backend ceilings

//  redis-benchmark's way: one thread, N connections, one SET in flight on
//  each (no pipelining), replies read as they come.
static int
s_raw_redis (s_bench_t *self, const uint8_t *value, s_result_t *result)
{
    size_t count = (size_t) self->clients;
    redisContext **connections = calloc (count, sizeof *connections);
    struct pollfd *fds = calloc (count, sizeof *fds);
    int64_t *sent_at = calloc (count, sizeof *sent_at);
    s_samples_t samples = {0};
    int rc = -1;
    size_t total = self->quota_mode ? (size_t) self->requests : SIZE_MAX;
    size_t sent = 0, ok = 0, errors = 0, in_flight = 0;
    if (!connections || !fds || !sent_at)
        goto done;
    for (size_t i = 0; i < count; i++) {
        connections[i] = s_redis_connect (self);
        if (!connections[i]) {
            zube_cli_error ("cannot connect to redis at %s:%d", self->host, self->port);
            goto done;
        }
        fds[i] = (struct pollfd) {.fd = connections[i]->fd, .events = POLLIN};
    }
    char key[96];
    int64_t start = zube_cli_now_ns ();
    int64_t deadline = start + self->duration_ms * 1000000;
    //  Sends the next SET on connection i, if the run wants more.
#define S_REDIS_SEND(i)                                                                    \
    do {                                                                                   \
        if (sent < total && (self->quota_mode || zube_cli_now_ns () < deadline)) {         \
            int length = snprintf (key, sizeof key, "zube-bench:%s:raw:%zu", self->run_id, \
                                   sent);                                                  \
            redisAppendCommand (connections[i], "SET %b %b", key, (size_t) length, value,  \
                                self->value_bytes);                                        \
            int written = 0;                                                               \
            while (!written && redisBufferWrite (connections[i], &written) == REDIS_OK) {  \
            }                                                                              \
            sent_at[i] = zube_cli_now_ns ();                                               \
            sent++;                                                                        \
            in_flight++;                                                                   \
            fds[i].fd = connections[i]->fd;                                                \
        }                                                                                  \
        else                                                                               \
            fds[i].fd = -1;                                                                \
    } while (0)
    for (size_t i = 0; i < count; i++)
        S_REDIS_SEND (i);
    while (in_flight > 0 && !zsys_interrupted) {
        int ready = poll (fds, (nfds_t) count, 1000);
        if (ready < 0 && errno != EINTR)
            break;
        for (size_t i = 0; ready > 0 && i < count; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (redisBufferRead (connections[i]) != REDIS_OK) {
                zube_cli_error ("redis: %s", connections[i]->errstr);
                goto done;
            }
            void *reply = NULL;
            if (redisGetReplyFromReader (connections[i], &reply) != REDIS_OK) {
                zube_cli_error ("redis: %s", connections[i]->errstr);
                goto done;
            }
            if (!reply)
                continue;
            redisReply *answer = reply;
            if (answer->type == REDIS_REPLY_STATUS) {
                ok++;
                s_samples_add (&samples, zube_cli_now_ns () - sent_at[i]);
            }
            else {
                errors++;
                if (answer->type == REDIS_REPLY_ERROR)
                    s_result_error (result, answer->str);
            }
            freeReplyObject (reply);
            in_flight--;
            S_REDIS_SEND (i);
        }
    }
#undef S_REDIS_SEND
    int64_t elapsed = zube_cli_now_ns () - start;
    char error[256];
    snprintf (error, sizeof error, "%s", result->error);
    s_summarize (&samples, ok, errors + in_flight, elapsed, result);
    snprintf (result->error, sizeof result->error, "%s", error);
    rc = zsys_interrupted ? -1 : 0;
    //  A server that is not ours keeps nothing of the bench's.
    if (self->external && connections[0])
        for (size_t i = 0; i < sent; i += 1000) {
            for (size_t j = i; j < sent && j < i + 1000; j++) {
                int length = snprintf (key, sizeof key, "zube-bench:%s:raw:%zu", self->run_id,
                                       j);
                redisAppendCommand (connections[0], "DEL %b", key, (size_t) length);
            }
            for (size_t j = i; j < sent && j < i + 1000; j++) {
                void *reply = NULL;
                if (redisGetReply (connections[0], &reply) != REDIS_OK)
                    break;
                freeReplyObject (reply);
            }
        }
done:
    for (size_t i = 0; connections && i < count; i++)
        if (connections[i])
            redisFree (connections[i]);
    free (connections);
    free (fds);
    free (sent_at);
    s_samples_free (&samples);
    return rc;
}

typedef struct {
    s_bench_t *bench;
    pthread_t thread;
    atomic_int *gate;           //  0: wait, 1: go, -1: give up
    const char *value_b64;
    size_t index;
    size_t quota;
    size_t ok, errors;
    s_samples_t samples;
    char error[256];
} s_etcd_worker_t;

static void *
s_etcd_worker (void *arg)
{
    s_etcd_worker_t *self = arg;
    s_bench_t *bench = self->bench;
    CURL *curl = s_etcd_curl ();
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    if (curl)
        curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    size_t body_size = strlen (self->value_b64) + 256;
    char *body = malloc (body_size);
    while (atomic_load (self->gate) == 0)
        usleep (1000);
    if (atomic_load (self->gate) < 0) {
        free (body);
        curl_slist_free_all (headers);
        if (curl)
            curl_easy_cleanup (curl);
        return NULL;
    }
    char key[128];
    for (size_t done = 0; curl && body && !zsys_interrupted; done++) {
        if (bench->quota_mode ? done >= self->quota : zube_cli_now_ns () >= bench->deadline_ns)
            break;
        int length = snprintf (key, sizeof key, "/zube-bench/%s/raw/%zu/%zu", bench->run_id,
                               self->index, done);
        char *key_b64 = s_base64 (key, (size_t) length);
        snprintf (body, body_size, "{\"key\":\"%s\",\"value\":\"%s\"}", key_b64 ? key_b64 : "",
                  self->value_b64);
        free (key_b64);
        int64_t start = zube_cli_now_ns ();
        long code = s_etcd_post (curl, bench, "/v3/kv/put", body, NULL);
        int64_t latency = zube_cli_now_ns () - start;
        if (code == 200) {
            self->ok++;
            s_samples_add (&self->samples, latency);
        }
        else {
            self->errors++;
            if (!self->error[0])
                snprintf (self->error, sizeof self->error, "etcd put: HTTP status %ld", code);
        }
    }
    free (body);
    curl_slist_free_all (headers);
    if (curl)
        curl_easy_cleanup (curl);
    return NULL;
}

//  Plain puts through the v3 JSON gateway, one thread and one keep-alive
//  connection per client.
static int
s_raw_etcd (s_bench_t *self, const uint8_t *value, s_result_t *result)
{
    size_t count = (size_t) self->clients;
    s_etcd_worker_t *workers = calloc (count, sizeof *workers);
    char *value_b64 = s_base64 (value, self->value_bytes);
    if (!workers || !value_b64) {
        free (workers);
        free (value_b64);
        return -1;
    }
    atomic_int gate;
    atomic_init (&gate, 0);
    size_t started = 0;
    for (size_t i = 0; i < count; i++) {
        workers[i] = (s_etcd_worker_t) {
            .bench = self,
            .gate = &gate,
            .value_b64 = value_b64,
            .index = i,
            .quota = (size_t) self->requests / count + (i < (size_t) self->requests % count),
        };
        if (pthread_create (&workers[i].thread, NULL, s_etcd_worker, &workers[i]) != 0)
            break;
        started++;
    }
    int rc = 0;
    if (started < count) {
        zube_cli_error ("cannot start %zu etcd threads", count);
        rc = -1;
    }
    self->deadline_ns = zube_cli_now_ns () + self->duration_ms * 1000000;
    int64_t start = zube_cli_now_ns ();
    atomic_store (&gate, rc == 0 ? 1 : -1);
    for (size_t i = 0; i < started; i++)
        pthread_join (workers[i].thread, NULL);
    int64_t elapsed = zube_cli_now_ns () - start;
    s_samples_t all = {0};
    size_t ok = 0, errors = 0;
    for (size_t i = 0; i < started; i++) {
        s_samples_append (&all, &workers[i].samples);
        ok += workers[i].ok;
        errors += workers[i].errors;
        if (workers[i].error[0])
            s_result_error (result, workers[i].error);
        s_samples_free (&workers[i].samples);
    }
    char error[256];
    snprintf (error, sizeof error, "%s", result->error);
    s_summarize (&all, ok, errors, elapsed, result);
    snprintf (result->error, sizeof result->error, "%s", error);
    s_samples_free (&all);
    if (self->external) {
        CURL *curl = s_etcd_curl ();
        char prefix[64], end[64];
        int length = snprintf (prefix, sizeof prefix, "/zube-bench/%s/raw/", self->run_id);
        memcpy (end, prefix, (size_t) length);
        end[length - 1]++;
        char *prefix_b64 = s_base64 (prefix, (size_t) length);
        char *end_b64 = s_base64 (end, (size_t) length);
        char body[256];
        snprintf (body, sizeof body, "{\"key\":\"%s\",\"range_end\":\"%s\"}",
                  prefix_b64 ? prefix_b64 : "", end_b64 ? end_b64 : "");
        if (curl && prefix_b64 && end_b64)
            s_etcd_post (curl, self, "/v3/kv/deleterange", body, NULL);
        free (prefix_b64);
        free (end_b64);
        if (curl)
            curl_easy_cleanup (curl);
    }
    free (workers);
    free (value_b64);
    return zsys_interrupted ? -1 : rc;
}

//  No server to ask: the lmdb plugin's own commit rate, in batches of N
//  puts (what the apiserver's group commit gives it at best), on a store
//  of its own beside the apiserver's.
static int
s_raw_lmdb (s_bench_t *self, const uint8_t *value, s_result_t *result)
{
    size_t batch = (size_t) self->clients;
    char url[PATH_MAX + 16];
    snprintf (url, sizeof url, "lmdb:%s/raw-lmdb", self->dir);
    zube_plugin_host_t *plugins = zube_plugin_host_new ();
    char *error = NULL;
    zube_store_t *store = plugins ? zube_store_open (plugins, url, NULL, &error) : NULL;
    if (!store) {
        zube_cli_error ("cannot open %s: %s", url, error ? error : "out of memory");
        free (error);
        zube_plugin_host_destroy (&plugins);
        return -1;
    }
    zube_store_op_t *ops = calloc (batch, sizeof *ops);
    zube_store_result_t *results = calloc (batch, sizeof *results);
    char (*keys)[96] = calloc (batch, sizeof *keys);
    s_samples_t samples = {0};
    size_t total = self->quota_mode ? (size_t) self->requests : SIZE_MAX;
    size_t written = 0, ok = 0, errors = 0;
    int64_t start = zube_cli_now_ns ();
    int64_t deadline = start + self->duration_ms * 1000000;
    while (ops && results && keys && written < total && !zsys_interrupted
           && (self->quota_mode || zube_cli_now_ns () < deadline)) {
        size_t count = total - written < batch ? total - written : batch;
        for (size_t i = 0; i < count; i++) {
            snprintf (keys[i], sizeof keys[i], "/registry/pods/zube-bench/%s-raw-%zu",
                      self->run_id, written + i);
            ops[i] = (zube_store_op_t) {.type = ZUBE_STORE_PUT,
                                        .key = keys[i],
                                        .value = value,
                                        .value_size = self->value_bytes,
                                        .expect_revision = 0};
        }
        int64_t begin = zube_cli_now_ns ();
        zube_status_t status = zube_store_txn_commit (store, ops, count, results);
        int64_t latency = zube_cli_now_ns () - begin;
        written += count;
        if (status != ZUBE_OK) {
            errors += count;
            s_result_error (result, zube_store_error (store));
            continue;
        }
        s_samples_add (&samples, latency);
        for (size_t i = 0; i < count; i++)
            if (results[i].status == ZUBE_OK)
                ok++;
            else
                errors++;
    }
    int64_t elapsed = zube_cli_now_ns () - start;
    char first_error[256];
    snprintf (first_error, sizeof first_error, "%s", result->error);
    s_summarize (&samples, ok, errors, elapsed, result);
    snprintf (result->error, sizeof result->error, "%s", first_error);
    s_samples_free (&samples);
    free (ops);
    free (results);
    free (keys);
    zube_store_close (&store);
    zube_plugin_host_destroy (&plugins);
    return zsys_interrupted ? -1 : 0;
}

//  --------------------------------------------------------------------------
//  Watch latency

typedef struct {
    int64_t sent_ns;
    int64_t acked_ns;    //  0: no answer yet
    int64_t event_ns;    //  0: no event (set by the watcher thread only)
    bool ok;
} s_write_t;

typedef struct {
    s_bench_t *bench;
    s_write_t *writes;
    size_t count;
    char prefix[64];        //  "bench-<run>-w-"
    char probe_prefix[64];  //  "bench-<run>-probe-"
    atomic_size_t events;   //  of this run's timed writes
    atomic_size_t probes;
    atomic_size_t duplicates;
    atomic_size_t foreign;  //  other topics or payloads that are no event
    atomic_bool stop, ready, failed;
    size_t acked, ack_errors;
    char error[256];
    pthread_t thread;
} s_watch_t;

static void
s_watch_event (s_watch_t *self, const Zube__WatchEvent *event, int64_t now)
{
    const char *name = event->name;
    if (!name) {
        //  An event that does not name its object: look inside.
        Zube__Pod *pod = event->has_object ? zube__pod__unpack (NULL, event->object.len,
                                                                event->object.data)
                                           : NULL;
        if (pod && pod->metadata && pod->metadata->name)
            s_watch_event (self,
                           &(Zube__WatchEvent) {.base = event->base, .name = pod->metadata->name},
                           now);
        if (pod)
            zube__pod__free_unpacked (pod, NULL);
        return;
    }
    size_t length = strlen (self->prefix);
    if (strncmp (name, self->prefix, length) == 0) {
        char *end = NULL;
        unsigned long long index = strtoull (name + length, &end, 10);
        if (end && *end == 0 && index < self->count) {
            if (self->writes[index].event_ns == 0) {
                self->writes[index].event_ns = now;
                atomic_fetch_add (&self->events, 1);
            }
            else
                atomic_fetch_add (&self->duplicates, 1);
        }
    }
    else if (strncmp (name, self->probe_prefix, strlen (self->probe_prefix)) == 0)
        atomic_fetch_add (&self->probes, 1);
}

//  An event on api/pods: one WatchEvent, or a WatchEventBatch (one group
//  commit's events).
static void
s_watch_callback (zube_bus_t *bus, const char *topic, const uint8_t *payload,
                  size_t payload_size, void *arg)
{
    s_watch_t *self = arg;
    int64_t now = zube_cli_now_ns ();
    //  Subscriptions match by prefix: only the topic itself counts.
    if (strcmp (topic, S_WATCH_TOPIC) != 0) {
        atomic_fetch_add (&self->foreign, 1);
        return;
    }
    Zube__WatchEvent *event = zube__watch_event__unpack (NULL, payload_size, payload);
    if (event && event->type && (event->name || event->has_object)) {
        s_watch_event (self, event, now);
        zube__watch_event__free_unpacked (event, NULL);
        return;
    }
    if (event)
        zube__watch_event__free_unpacked (event, NULL);
    Zube__WatchEventBatch *batch = zube__watch_event_batch__unpack (NULL, payload_size, payload);
    if (!batch || batch->n_events == 0)
        atomic_fetch_add (&self->foreign, 1);
    for (size_t i = 0; batch && i < batch->n_events; i++)
        s_watch_event (self, batch->events[i], now);
    if (batch)
        zube__watch_event_batch__free_unpacked (batch, NULL);
}

static void *
s_watch_thread (void *arg)
{
    s_watch_t *self = arg;
    zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t) {.endpoint = self->bench->endpoint,
                                                          .insecure = true});
    if (!bus || zube_bus_subscribe (bus, S_WATCH_TOPIC, s_watch_callback, self) != 0) {
        atomic_store (&self->failed, true);
        zube_bus_destroy (&bus);
        return NULL;
    }
    atomic_store (&self->ready, true);
    while (!atomic_load (&self->stop))
        if (zube_bus_poll (bus, 50) < 0)
            break;
    zube_bus_destroy (&bus);
    return NULL;
}

//  The watch run in progress: its writer's callbacks count into it.
static s_watch_t *s_watch_current;

static void
s_watch_acked (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
               const zube_api_error_t *error, void *arg)
{
    s_write_t *write = arg;
    write->acked_ns = zube_cli_now_ns ();
    write->ok = status == ZUBE_OK;
    protobuf_c_message_free_unpacked (reply, NULL);
    s_watch_t *self = s_watch_current;
    self->acked++;
    if (status != ZUBE_OK) {
        self->ack_errors++;
        if (!self->error[0])
            snprintf (self->error, sizeof self->error, "create: %s: %.200s",
                      zube_status_reason (status), error ? error->message : "");
    }
}

typedef struct {
    size_t writes, acked, ack_errors, events, missed, before_ack, duplicates;
    size_t unanswered;      //  no reply within the drain time
    double rate, seconds;
    double p50_ms, p99_ms, max_ms;
    double after_ack_p50_ms, after_ack_p99_ms;
    double acked_per_s;
    char error[256];
} s_watch_result_t;

//  Subscribes to api/pods, then creates pods at a steady rate (open loop:
//  a write is sent when it is due, whether or not earlier ones were
//  answered) and matches each event by name with its write.
static int
s_watch_run (s_bench_t *bench, s_watch_result_t *result)
{
    int rc = -1;
    s_watch_t watch = {.bench = bench};
    atomic_init (&watch.events, 0);
    atomic_init (&watch.probes, 0);
    atomic_init (&watch.duplicates, 0);
    atomic_init (&watch.foreign, 0);
    atomic_init (&watch.stop, false);
    atomic_init (&watch.ready, false);
    atomic_init (&watch.failed, false);
    snprintf (watch.prefix, sizeof watch.prefix, "bench-%s-w-", bench->run_id);
    snprintf (watch.probe_prefix, sizeof watch.probe_prefix, "bench-%s-probe-", bench->run_id);
    double count = (double) bench->watch_rate * (double) bench->watch_duration_ms / 1000.0;
    if (bench->quota_mode && count > (double) bench->requests)
        count = (double) bench->requests;
    watch.count = count < 1 ? 1 : (size_t) count;
    watch.writes = calloc (watch.count, sizeof *watch.writes);
    s_watch_current = &watch;

    zube_bus_t *bus = NULL;
    zube_api_t *api = NULL;
    ProtobufCMessage *message = NULL;
    bool thread_started = false;
    zube_codec_error_t codec_error;
    if (!watch.writes
        || zube_codec_decode (s_pod_yaml, strlen (s_pod_yaml), &zube__pod__descriptor, &message,
                              &codec_error)
               != 0) {
        zube_cli_error ("out of memory");
        goto done;
    }
    bus = zube_bus_new (&(zube_bus_config_t) {.endpoint = bench->endpoint, .insecure = true});
    api = bus ? zube_api_new (bus) : NULL;
    if (!api || s_wait_apiserver (bench, api) != 0) {
        zube_cli_error ("the watch writer cannot reach the apiserver");
        goto done;
    }
    if (pthread_create (&watch.thread, NULL, s_watch_thread, &watch) != 0) {
        zube_cli_error ("cannot start the watcher thread");
        goto done;
    }
    thread_started = true;
    while (!atomic_load (&watch.ready) && !atomic_load (&watch.failed))
        usleep (1000);
    if (atomic_load (&watch.failed)) {
        zube_cli_error ("cannot subscribe to %s", S_WATCH_TOPIC);
        goto done;
    }
    Zube__Pod *pod = (Zube__Pod *) message;
    char *template_name = pod->metadata->name;
    char name[128];
    //  A subscription takes effect some time after it is made: write probes
    //  until one is seen.
    bool subscribed = false;
    for (int probe = 0; probe < 100 && !subscribed && !zsys_interrupted; probe++) {
        snprintf (name, sizeof name, "%s%d", watch.probe_prefix, probe);
        pod->metadata->name = name;
        zube_api_error_t error;
        zube_status_t status =
            zube_api_create (api, "pods", S_NAMESPACE, &pod->base, false, NULL, &error);
        pod->metadata->name = template_name;
        if (status != ZUBE_OK) {
            zube_cli_error ("watch probe: create: %s", error.message);
            goto done;
        }
        int64_t until = zube_cli_now_ns () + 200LL * 1000000;
        while (!(subscribed = atomic_load (&watch.probes) > 0) && zube_cli_now_ns () < until)
            usleep (2000);
    }
    if (!subscribed) {
        if (!zsys_interrupted)
            zube_cli_error ("no event came on %s for 100 probe writes", S_WATCH_TOPIC);
        goto done;
    }

    //  The timed writes, paced in steps of at most 1 ms.
    Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
    request.resource = "pods";
    request.namespace_ = S_NAMESPACE;
    request.has_object = 1;
    size_t packed_capacity = protobuf_c_message_get_packed_size (&pod->base) + 128;
    uint8_t *packed = malloc (packed_capacity);
    size_t sent = 0;
    int64_t interval_ns = 1000000000LL / bench->watch_rate;
    int64_t start = zube_cli_now_ns ();
    while (packed && sent < watch.count && !zsys_interrupted) {
        int64_t now = zube_cli_now_ns ();
        while (sent < watch.count && start + (int64_t) sent * interval_ns <= now) {
            snprintf (name, sizeof name, "%s%zu", watch.prefix, sent);
            pod->metadata->name = name;
            request.object.len = protobuf_c_message_pack (&pod->base, packed);
            request.object.data = packed;
            pod->metadata->name = template_name;
            s_write_t *write = &watch.writes[sent];
            write->sent_ns = zube_cli_now_ns ();
            if (zube_api_call_async (api, "create", &request.base,
                                     &zube__object_reply__descriptor, s_watch_acked, write)
                != 0) {
                write->acked_ns = write->sent_ns;
                watch.acked++;
                watch.ack_errors++;
                snprintf (watch.error, sizeof watch.error, "create: not sent");
            }
            sent++;
        }
        if (zube_bus_poll (bus, 1) < 0)
            break;
    }
    int64_t sending = zube_cli_now_ns () - start;
    free (packed);
    int64_t drain_until = zube_cli_now_ns () + (int64_t) S_WATCH_DRAIN_MS * 1000000;
    while (!zsys_interrupted && zube_cli_now_ns () < drain_until
           && (watch.acked < sent || atomic_load (&watch.events) < sent - watch.ack_errors))
        if (zube_bus_poll (bus, 10) < 0)
            break;
    atomic_store (&watch.stop, true);
    pthread_join (watch.thread, NULL);
    thread_started = false;

    s_samples_t from_ack = {0}, from_send = {0};
    int64_t last_ack = start;
    *result = (s_watch_result_t) {.writes = sent,
                                  .acked = watch.acked,
                                  .ack_errors = watch.ack_errors,
                                  .unanswered = sent - watch.acked,
                                  .duplicates = atomic_load (&watch.duplicates),
                                  .seconds = (double) sending / 1e9};
    result->rate = sending > 0 ? (double) sent / ((double) sending / 1e9) : 0;
    snprintf (result->error, sizeof result->error, "%s", watch.error);
    for (size_t i = 0; i < sent; i++) {
        s_write_t *write = &watch.writes[i];
        if (write->event_ns)
            result->events++;
        if (write->acked_ns > last_ack)
            last_ack = write->acked_ns;
        if (!write->ok)
            continue;
        if (!write->event_ns) {
            result->missed++;
            continue;
        }
        int64_t latency = write->event_ns - write->acked_ns;
        if (latency < 0) {
            result->before_ack++;
            latency = 0;
        }
        s_samples_add (&from_ack, latency);
        s_samples_add (&from_send, write->event_ns - write->sent_ns);
    }
    s_result_t summary = {0};
    s_summarize (&from_send, from_send.count, 0, 1, &summary);
    result->p50_ms = summary.p50_ms;
    result->p99_ms = summary.p99_ms;
    result->max_ms = summary.max_ms;
    s_summarize (&from_ack, from_ack.count, 0, 1, &summary);
    result->after_ack_p50_ms = summary.p50_ms;
    result->after_ack_p99_ms = summary.p99_ms;
    result->acked_per_s = last_ack > start ? (double) (result->acked - result->ack_errors)
                                                 / ((double) (last_ack - start) / 1e9)
                                           : 0;
    s_samples_free (&from_ack);
    s_samples_free (&from_send);
    rc = zsys_interrupted ? -1 : 0;

done:
    if (thread_started) {
        atomic_store (&watch.stop, true);
        pthread_join (watch.thread, NULL);
    }
    //  Calls still waiting end here (their callbacks see the writes array).
    zube_api_destroy (&api);
    zube_bus_destroy (&bus);
    s_watch_current = NULL;
    protobuf_c_message_free_unpacked (message, NULL);
    free (watch.writes);
    return rc;
}

//  --------------------------------------------------------------------------
//  Report

static void
s_table_row (zube_cli_table_t *table, const char *name, const s_result_t *result)
{
    char ok[32], seconds[32], rate[32], p50[32], p99[32], max[32], errors[32];
    snprintf (ok, sizeof ok, "%zu", result->ok);
    snprintf (seconds, sizeof seconds, "%.2f", result->seconds);
    snprintf (rate, sizeof rate, "%.0f", result->per_s);
    snprintf (p50, sizeof p50, "%.2f", result->p50_ms);
    snprintf (p99, sizeof p99, "%.2f", result->p99_ms);
    snprintf (max, sizeof max, "%.2f", result->max_ms);
    snprintf (errors, sizeof errors, "%zu", result->errors);
    zube_cli_table_addv (table, name, ok, seconds, rate, p50, p99, max, errors);
}

static void
s_json_phase (const char *prefix, const s_result_t *result, bool backend)
{
    printf ("  \"%s_cpu_us_bench\": %.1f,\n", prefix, result->cpu_us.bench);
    printf ("  \"%s_cpu_us_broker\": %.1f,\n", prefix, result->cpu_us.broker);
    printf ("  \"%s_cpu_us_apiserver\": %.1f,\n", prefix, result->cpu_us.apiserver);
    if (backend)
        printf ("  \"%s_cpu_us_backend\": %.1f,\n", prefix, result->cpu_us.backend);
    else
        printf ("  \"%s_cpu_us_backend\": null,\n", prefix);
    printf ("  \"%s_p50_ms\": %.3f,\n", prefix, result->p50_ms);
    printf ("  \"%s_p99_ms\": %.3f,\n", prefix, result->p99_ms);
    printf ("  \"%s_max_ms\": %.3f,\n", prefix, result->max_ms);
    printf ("  \"%s_ok\": %zu,\n", prefix, result->ok);
    printf ("  \"%s_errors\": %zu,\n", prefix, result->errors);
    printf ("  \"%s_seconds\": %.3f,\n", prefix, result->seconds);
}

static const char *
s_raw_what (s_bench_t *self, char *buf, size_t size)
{
    if (self->kind == S_STORE_REDIS)
        snprintf (buf, size, "redis SET, %ld connections, no pipelining", self->clients);
    else if (self->kind == S_STORE_ETCD)
        snprintf (buf, size, "etcd /v3/kv/put, %ld threads", self->clients);
    else
        snprintf (buf, size, "lmdb txn_commit, batches of %ld", self->clients);
    return buf;
}

//  --------------------------------------------------------------------------
//  The mode

static void
s_usage_flags (zube_cli_flag_t *flags)
{
    const zube_cli_flag_t *tables[] = {flags, NULL};
    printf ("Pod creates, updates and gets per second through zube-apiserver with N\n"
            "concurrent clients, the store backend's raw write rate with the same\n"
            "concurrency, and watch latency; see zube-bench(1).\n\n"
            "Usage:\n  zube-bench api --store lmdb|redis|etcd|URL [flags]\n");
    zube_cli_print_flags (stdout, "Flags", tables);
}

int
zube_bench_api (int argc, char **argv)
{
    s_bench_t bench = {.store = "lmdb", .clients = 32, .watch_rate = S_DEFAULT_WATCH_RATE};
    atomic_init (&bench.gate, 0);
    int64_t duration_ms = -1, watch_duration_ms = -1;
    zube_cli_flag_t flags[] = {
        {.name = "store", .type = ZUBE_CLI_STRING, .value = &bench.store, .value_name = "URL",
         .help = "lmdb, redis or etcd (started here), or redis://HOST:PORT[/DB], "
                 "etcd://HOST:PORT, lmdb:DIR (default lmdb)"},
        {.name = "clients", .short_name = 'c', .type = ZUBE_CLI_INT, .value = &bench.clients,
         .value_name = "N", .help = "Concurrent clients, one request in flight each (default 32)"},
        {.name = "threads", .short_name = 't', .type = ZUBE_CLI_INT, .value = &bench.threads,
         .value_name = "T",
         .help = "Client threads, one bus connection each, sharing the clients with async "
                 "calls (default 2; --threads N: a thread and a connection per client)"},
        {.name = "duration", .short_name = 'd', .type = ZUBE_CLI_DURATION, .value = &duration_ms,
         .value_name = "S", .help = "Length of each phase (default 5s)"},
        {.name = "requests", .short_name = 'n', .type = ZUBE_CLI_INT, .value = &bench.requests,
         .value_name = "N",
         .help = "Requests per phase, shared by the clients, instead of --duration"},
        {.name = "watch-rate", .type = ZUBE_CLI_INT, .value = &bench.watch_rate,
         .value_name = "R", .help = "Writes per second while watch latency is measured "
                                    "(default 5000)"},
        {.name = "watch-duration", .type = ZUBE_CLI_DURATION, .value = &watch_duration_ms,
         .value_name = "S", .help = "How long to write at --watch-rate (default 3s)"},
        {.name = "json", .type = ZUBE_CLI_BOOL, .value = &bench.json,
         .help = "Print one JSON object with every figure instead of a table"},
        {.name = "broker-binary", .type = ZUBE_CLI_STRING, .value = &bench.broker_binary,
         .value_name = "PATH",
         .help = "The zube-broker to start (default: beside zube-bench, else in $PATH)"},
        {.name = "apiserver-binary", .type = ZUBE_CLI_STRING, .value = &bench.apiserver_binary,
         .value_name = "PATH",
         .help = "The zube-apiserver to start (default: beside zube-bench, else in $PATH)"},
        {0}};
    const zube_cli_flag_t *tables[] = {flags, NULL};
    char *args[argc + 1];
    int count = zube_cli_parse ("zube-bench api", tables, argc, argv, args, false);
    if (count == ZUBE_CLI_HELP) {
        s_usage_flags (flags);
        return 0;
    }
    if (count < 0)
        return 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\"", args[0]);
        return 1;
    }
    if (duration_ms >= 0 && bench.requests > 0) {
        zube_cli_error ("--duration and --requests exclude each other");
        return 1;
    }
    bench.duration_ms = duration_ms >= 0 ? duration_ms : S_DEFAULT_DURATION_MS;
    bench.watch_duration_ms =
        watch_duration_ms >= 0 ? watch_duration_ms : S_DEFAULT_WATCH_DURATION_MS;
    bench.quota_mode = bench.requests > 0;
    if (bench.threads == 0)
        bench.threads = bench.clients < S_DEFAULT_THREADS ? bench.clients : S_DEFAULT_THREADS;
    if (bench.clients < 1 || bench.clients > 1024 || bench.threads < 1
        || bench.threads > bench.clients || bench.requests < 0
        || bench.requests > 100000000 || bench.duration_ms < 100
        || bench.duration_ms > 3600000 || bench.watch_rate < 1 || bench.watch_rate > 1000000
        || bench.watch_duration_ms < 100 || bench.watch_duration_ms > 600000) {
        zube_cli_error ("--clients must be 1..1024, --threads 1..--clients, --requests "
                        "0..100000000, --duration "
                        "100ms..1h, --watch-rate 1..1000000 and --watch-duration 100ms..10m");
        return 1;
    }
    if (bench.quota_mode && bench.requests < bench.clients) {
        zube_cli_error ("--requests must be at least --clients");
        return 1;
    }
    if (s_parse_store (&bench) != 0) {
        zube_cli_error ("--store: \"%s\" is not lmdb, redis, etcd, lmdb:DIR, "
                        "redis://HOST:PORT[/DB] or etcd://HOST:PORT",
                        bench.store);
        return 1;
    }

    //  czmq's handler turns SIGINT and SIGTERM into zsys_interrupted from
    //  here on; every loop below looks at it, and the teardown follows.
    zsys_init ();
    curl_global_init (CURL_GLOBAL_DEFAULT);
    {
        uint8_t random[6];
        if (getrandom (random, sizeof random, 0) != sizeof random)
            for (size_t i = 0; i < sizeof random; i++)
                random[i] = (uint8_t) (rand () ^ getpid () ^ (int) i);
        static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
        for (size_t i = 0; i < sizeof random; i++)
            bench.run_id[i] = alphabet[random[i] % (sizeof alphabet - 1)];
        bench.run_id[sizeof random] = 0;
    }
    //  Run from a build tree, the plugins are in its plugins/ folder.
    {
        char program[PATH_MAX], plugins[PATH_MAX + 16];
        struct stat st;
        if (!getenv ("ZUBE_PLUGIN_PATH") && !getenv ("ZUBE_BUILDDIR")
            && zube_cli_sibling_program ("zube-broker", program, sizeof program)) {
            char *slash = strrchr (program, '/');
            *slash = 0;
            snprintf (plugins, sizeof plugins, "%s/plugins", program);
            if (stat (plugins, &st) == 0 && S_ISDIR (st.st_mode))
                setenv ("ZUBE_PLUGIN_PATH", plugins, 1);
        }
    }

    int rc = 1;
    s_client_t *clients = NULL;
    s_worker_t *workers = NULL;
    size_t threads = 0;
    bool barriers = false;
    s_result_t creates = {0}, updates = {0}, gets = {0}, raw = {0};
    s_watch_result_t watch = {0};
    uint8_t *value = NULL;
    zube_bus_t *control = NULL;     //  for the apiserver's stats
    double create_batch = 0, update_batch = 0, watch_batch = 0;
    double create_commit_ms = 0, update_commit_ms = 0;
    char raw_what[128];
    s_raw_what (&bench, raw_what, sizeof raw_what);

    char dir_template[] = "/tmp/zube-bench-api-XXXXXX";
    if (!mkdtemp (dir_template)) {
        zube_cli_error ("cannot create a temporary folder: %s", strerror (errno));
        goto cleanup;
    }
    snprintf (bench.dir, sizeof bench.dir, "%s", dir_template);
    if (!bench.json) {
        printf ("zube-bench api: store %s, %ld clients on %ld threads, %s per phase; starting "
                "the servers\n",
                bench.store, bench.clients, bench.threads,
                bench.quota_mode ? "--requests" : "--duration");
        fflush (stdout);
    }
    if (s_backend_start (&bench) != 0 || s_cluster_start (&bench) != 0)
        goto cleanup;

    clients = calloc ((size_t) bench.clients, sizeof *clients);
    workers = calloc ((size_t) bench.threads, sizeof *workers);
    if (!clients || !workers) {
        zube_cli_error ("out of memory");
        goto cleanup;
    }
    //  Clients go to the workers in turn, as evenly as they divide.
    for (size_t w = 0, next = 0; w < (size_t) bench.threads; w++) {
        size_t share = (size_t) (bench.clients / bench.threads)
                       + (w < (size_t) (bench.clients % bench.threads) ? 1 : 0);
        workers[w] = (s_worker_t) {.bench = &bench, .clients = &clients[next], .count = share};
        for (size_t i = 0; i < share; i++, next++)
            clients[next] = (s_client_t) {.worker = &workers[w], .index = (int) next};
    }
    pthread_barrier_init (&bench.start, NULL, (unsigned) bench.threads + 1);
    pthread_barrier_init (&bench.done, NULL, (unsigned) bench.threads + 1);
    barriers = true;
    for (threads = 0; threads < (size_t) bench.threads; threads++)
        if (pthread_create (&workers[threads].thread, NULL, s_worker_thread, &workers[threads])
            != 0)
            break;
    if (threads < (size_t) bench.threads) {
        zube_cli_error ("cannot start %ld client threads", bench.threads);
        atomic_store (&bench.gate, -1);
        for (size_t i = 0; i < threads; i++)
            pthread_join (workers[i].thread, NULL);
        threads = 0;
        goto cleanup;
    }
    atomic_store (&bench.gate, 1);
    s_clients_run (&bench, clients, S_PHASE_CONNECT, NULL);
    for (size_t i = 0; i < threads; i++)
        if (!workers[i].connected) {
            if (!zsys_interrupted && !strstr (workers[i].error, "did not answer"))
                zube_cli_error ("client thread %zu: %s", i, workers[i].error);
            goto cleanup;
        }

    if (!bench.json) {
        printf ("measuring creates, updates, gets, the raw backend and watch latency\n");
        fflush (stdout);
    }
    control = zube_bus_new (&(zube_bus_config_t) {.endpoint = bench.endpoint,
                                                   .insecure = true});
    s_stats_t stats_before = s_apiserver_stats (control);
    s_cpu_t cpu_before = s_cpu_now (&bench);
    s_clients_run (&bench, clients, S_PHASE_CREATE, &creates);
    if (zsys_interrupted)
        goto cleanup;
    s_cpu_t cpu_after = s_cpu_now (&bench);
    creates.cpu_us = s_cpu_per_op (cpu_before, cpu_after, creates.ok);
    s_stats_t stats_after = s_apiserver_stats (control);
    create_batch = s_mean_batch (stats_before, stats_after);
    create_commit_ms = s_mean_commit_ms (stats_before, stats_after);
    cpu_before = s_cpu_now (&bench);
    s_clients_run (&bench, clients, S_PHASE_UPDATE, &updates);
    if (zsys_interrupted)
        goto cleanup;
    cpu_after = s_cpu_now (&bench);
    updates.cpu_us = s_cpu_per_op (cpu_before, cpu_after, updates.ok);
    stats_before = stats_after;
    stats_after = s_apiserver_stats (control);
    update_batch = s_mean_batch (stats_before, stats_after);
    update_commit_ms = s_mean_commit_ms (stats_before, stats_after);
    cpu_before = s_cpu_now (&bench);
    s_clients_run (&bench, clients, S_PHASE_GET, &gets);
    if (zsys_interrupted)
        goto cleanup;
    cpu_after = s_cpu_now (&bench);
    gets.cpu_us = s_cpu_per_op (cpu_before, cpu_after, gets.ok);

    //  The raw writes carry as many bytes as a stored pod.
    bench.value_bytes = clients[0].held_count
                            ? protobuf_c_message_get_packed_size (clients[0].held[0])
                            : protobuf_c_message_get_packed_size (&workers[0].pod->base);
    value = malloc (bench.value_bytes ? bench.value_bytes : 1);
    if (!value) {
        zube_cli_error ("out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < bench.value_bytes; i++)
        value[i] = (uint8_t) ('a' + i % 26);
    cpu_before = s_cpu_now (&bench);
    int raw_rc = bench.kind == S_STORE_REDIS  ? s_raw_redis (&bench, value, &raw)
                 : bench.kind == S_STORE_ETCD ? s_raw_etcd (&bench, value, &raw)
                                              : s_raw_lmdb (&bench, value, &raw);
    if (raw_rc != 0)
        goto cleanup;
    raw.cpu_us = s_cpu_per_op (cpu_before, s_cpu_now (&bench), raw.ok);
    stats_before = s_apiserver_stats (control);
    if (s_watch_run (&bench, &watch) != 0)
        goto cleanup;
    watch_batch = s_mean_batch (stats_before, s_apiserver_stats (control));

    double ratio = raw.per_s > 0 ? creates.per_s / raw.per_s : 0;
    size_t errors = creates.errors + updates.errors + gets.errors + raw.errors
                    + watch.ack_errors + watch.unanswered + watch.missed;
    if (bench.json) {
        printf ("{\n  \"mode\": \"api\",\n  \"store\": ");
        zube_cli_json_string (stdout, s_store_name (bench.kind));
        printf (",\n  \"store_url\": ");
        zube_cli_json_string (stdout, bench.store_url);
        printf (",\n  \"store_started\": %s,\n", bench.external ? "false" : "true");
        printf ("  \"clients\": %ld,\n", bench.clients);
        printf ("  \"client_threads\": %ld,\n", bench.threads);
        printf ("  \"creates_per_s\": %.1f,\n", creates.per_s);
        printf ("  \"updates_per_s\": %.1f,\n", updates.per_s);
        printf ("  \"gets_per_s\": %.1f,\n", gets.per_s);
        printf ("  \"raw_per_s\": %.1f,\n", raw.per_s);
        printf ("  \"raw_kind\": ");
        zube_cli_json_string (stdout, raw_what);
        printf (",\n  \"ratio\": %.4f,\n", ratio);
        printf ("  \"watch_p50_ms\": %.3f,\n", watch.p50_ms);
        printf ("  \"watch_p99_ms\": %.3f,\n", watch.p99_ms);
        printf ("  \"watch_max_ms\": %.3f,\n", watch.max_ms);
        printf ("  \"watch_after_ack_p50_ms\": %.3f,\n", watch.after_ack_p50_ms);
        printf ("  \"watch_after_ack_p99_ms\": %.3f,\n", watch.after_ack_p99_ms);
        printf ("  \"watch_rate\": %ld,\n", bench.watch_rate);
        printf ("  \"watch_achieved_rate\": %.1f,\n", watch.rate);
        printf ("  \"watch_acked_per_s\": %.1f,\n", watch.acked_per_s);
        printf ("  \"watch_writes\": %zu,\n", watch.writes);
        printf ("  \"watch_write_errors\": %zu,\n", watch.ack_errors);
        printf ("  \"watch_unanswered\": %zu,\n", watch.unanswered);
        printf ("  \"watch_events\": %zu,\n", watch.events);
        printf ("  \"watch_missed\": %zu,\n", watch.missed);
        printf ("  \"watch_before_ack\": %zu,\n", watch.before_ack);
        s_json_phase ("create", &creates, bench.backend > 0);
        s_json_phase ("update", &updates, bench.backend > 0);
        s_json_phase ("get", &gets, bench.backend > 0);
        s_json_phase ("raw", &raw, bench.backend > 0);
        printf ("  \"create_mean_batch\": %.2f,\n", create_batch);
        printf ("  \"update_mean_batch\": %.2f,\n", update_batch);
        printf ("  \"watch_mean_batch\": %.2f,\n", watch_batch);
        printf ("  \"create_mean_commit_ms\": %.3f,\n", create_commit_ms);
        printf ("  \"update_mean_commit_ms\": %.3f,\n", update_commit_ms);
        printf ("  \"value_bytes\": %zu,\n", bench.value_bytes);
        printf ("  \"requests\": %ld,\n", bench.requests);
        printf ("  \"duration_ms\": %" PRId64 ",\n", bench.quota_mode ? 0 : bench.duration_ms);
        printf ("  \"cpus\": %ld,\n", sysconf (_SC_NPROCESSORS_ONLN));
        printf ("  \"bus_endpoint\": ");
        zube_cli_json_string (stdout, bench.endpoint);
        printf (",\n  \"temp_dir\": ");
        zube_cli_json_string (stdout, bench.dir);
        printf (",\n  \"errors\": %zu\n}\n", errors);
    }
    else {
        zube_cli_table_t *table = zube_cli_table_new (8);
        zube_cli_table_addv (table, "OPERATION", "OK", "SECONDS", "PER-SECOND", "P50(ms)",
                             "P99(ms)", "MAX(ms)", "ERRORS");
        s_table_row (table, "create pod", &creates);
        s_table_row (table, "update pod", &updates);
        s_table_row (table, "get pod", &gets);
        char raw_name[64];
        snprintf (raw_name, sizeof raw_name, "raw %s",
                  bench.kind == S_STORE_REDIS  ? "redis SET"
                  : bench.kind == S_STORE_ETCD ? "etcd put"
                                               : "lmdb commit");
        s_table_row (table, raw_name, &raw);
        printf ("\n");
        zube_cli_table_print (table, stdout);
        zube_cli_table_destroy (&table);
        table = zube_cli_table_new (5);
        zube_cli_table_addv (table, "CPU PER REQUEST (us)", "BENCH", "BROKER", "APISERVER",
                             "BACKEND");
        const s_result_t *phases[] = {&creates, &updates, &gets, &raw};
        const char *phase_names[] = {"create pod", "update pod", "get pod", raw_name};
        for (size_t i = 0; i < 4; i++) {
            char cells[4][32];
            snprintf (cells[0], sizeof cells[0], "%.1f", phases[i]->cpu_us.bench);
            snprintf (cells[1], sizeof cells[1], "%.1f", phases[i]->cpu_us.broker);
            snprintf (cells[2], sizeof cells[2], "%.1f", phases[i]->cpu_us.apiserver);
            snprintf (cells[3], sizeof cells[3], bench.backend > 0 ? "%.1f" : "-",
                      phases[i]->cpu_us.backend);
            zube_cli_table_addv (table, phase_names[i], cells[0], cells[1], cells[2],
                                 cells[3]);
        }
        printf ("\n");
        zube_cli_table_print (table, stdout);
        zube_cli_table_destroy (&table);
        printf ("\nraw: %s; %zu-byte values%s\n", raw_what, bench.value_bytes,
                bench.kind == S_STORE_LMDB ? " (latency per batch)" : "");
        printf ("ratio creates/raw: %.3f\n", ratio);
        printf ("apiserver group commit: %.1f creates, %.1f updates, %.1f watch writes per "
                "store transaction; the store took %.2f ms per transaction of creates, "
                "%.2f ms of updates\n",
                create_batch, update_batch, watch_batch, create_commit_ms, update_commit_ms);
        printf ("watch (%s, write sent to event): p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
                "after the write's ack: p50 %.2f ms, p99 %.2f ms\n",
                S_WATCH_TOPIC, watch.p50_ms, watch.p99_ms, watch.max_ms,
                watch.after_ack_p50_ms, watch.after_ack_p99_ms);
        printf ("  %zu writes sent at %.0f/s (asked %ld/s), acknowledged at %.0f/s; %zu events, "
                "%zu missed, %zu write errors, %zu unanswered, %zu events before their ack\n",
                watch.writes, watch.rate, bench.watch_rate, watch.acked_per_s, watch.events,
                watch.missed, watch.ack_errors, watch.unanswered, watch.before_ack);
        printf ("store %s, %ld CPUs\n", bench.store_url, sysconf (_SC_NPROCESSORS_ONLN));
    }
    rc = errors ? 1 : 0;
    if (errors) {
        const char *first = creates.error[0]  ? creates.error
                            : updates.error[0] ? updates.error
                            : gets.error[0]    ? gets.error
                            : raw.error[0]     ? raw.error
                                               : watch.error;
        zube_cli_error ("%zu operations failed or went unseen (first: %s)", errors,
                        first[0]             ? first
                        : watch.unanswered ? "watch writes without a reply"
                                           : "events missing on " S_WATCH_TOPIC);
    }

cleanup:
    if (zsys_interrupted)
        zube_cli_error ("interrupted");
    if (threads > 0) {
        bench.phase = S_PHASE_QUIT;
        pthread_barrier_wait (&bench.start);
        for (size_t i = 0; i < threads; i++)
            pthread_join (workers[i].thread, NULL);
    }
    if (clients)
        for (size_t i = 0; i < (size_t) bench.clients; i++)
            s_samples_free (&clients[i].samples);
    if (barriers) {
        pthread_barrier_destroy (&bench.start);
        pthread_barrier_destroy (&bench.done);
    }
    free (clients);
    free (workers);
    free (value);
    zube_bus_destroy (&control);
    s_teardown (&bench);
    curl_global_cleanup ();
    return rc;
}
