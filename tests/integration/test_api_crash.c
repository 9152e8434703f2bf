/*  test_api_crash - no acknowledged write is lost when processes die.

    The apiserver's crash-safety acceptance test, with real processes only:
    zube-broker, zube-apiserver and, for their backends, redis-server
    (appendonly, appendfsync always) and etcd, started here on free
    loopback ports in temporary directories and removed at the end.

    For every store backend (lmdb, redis, etcd):

    - Five writers, each on a bus connection of its own, write about 200
      times a second together: every other write creates a ConfigMap of its
      own, the others compare-and-swap a per-writer counter ConfigMap to
      the writer's next value. Meanwhile the apiserver is killed with
      SIGKILL, restarted and waited for, ZT_CRASH_ROUNDS times; for redis
      and etcd, in a case of its own, the store server instead. At the end
      every write acknowledged OK is there with its content (each counter
      at least its last acknowledged value), and resourceVersions never
      went backwards: a write sent at time T commits above every revision
      acknowledged before T (so every revision handed out after a restart
      is above every one acknowledged before the crash), and a list after a
      restart is consistent at a revision at or above them all.
    - Fifty writers on fifty connections increment one counter with get,
      then update at the resourceVersion read (Conflict: read again). The
      counter ends equal to the increments acknowledged; across a kill -9
      of the apiserver, between those and those plus the increments whose
      outcome was an error (which may or may not have been applied).

    Cases of a backend whose server is not installed are skipped. */
#define _GNU_SOURCE
#include "../zt_cluster.h"
//  zt_etcd.h after zube_testproc.h; zt_rmtree's snprintf into a fixed
//  buffer trips -Wformat-truncation when GCC inlines it (short paths).
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zt_etcd.h"

#include "core.pb-c.h"
#include "zube/api.h"
#include "zube/bus.h"
#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>

#if defined(__SANITIZE_ADDRESS__)
#define S_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_ASAN 1
#endif
#endif
#ifndef S_ASAN
#define S_ASAN 0
#endif

#define S_NAMESPACE "zt-crash"
#define S_WRITERS 5
//  5 writers x one write per 25 ms: 200 writes/s.
#define S_WRITE_PERIOD_MS 25
//  Deadlines: the first writers give up before the broker finds a killed
//  apiserver dead (3 of its 1 s heartbeats), the others outlive that, so
//  their requests are sent again to the apiserver that replaced it.
#define S_WRITE_TIMEOUT_MS 2000
#define S_WRITE_LONG_TIMEOUT_MS 6000
#define S_LONG_TIMEOUT_WRITERS 2
#define S_RMW_WRITERS 50
#define S_READY_TIMEOUT_MS (S_ASAN ? 60000 : 30000)
#define S_MAX_VIOLATIONS 12
#define S_RESUME_TIMEOUT_MS 15000
//  How long after being told to stop a writer may still be in its last
//  call (its deadline, and then some).
#define S_STOP_MARGIN_MS 20000

static int s_rounds;
static unsigned int s_seed;

//  ---------------------------------------------------------------------
//  A cluster: broker, apiserver and the store server behind it

typedef enum { S_LMDB, S_REDIS, S_ETCD } s_backend_t;

static const char *s_backend_names[] = {"lmdb", "redis", "etcd"};

typedef struct {
    s_backend_t backend;
    //  Broker, apiserver and the test's own connection (readiness probes
    //  and checks).
    zt_cluster_t base;
    char store_url[320];
    zt_redis_t redis;
    zt_etcd_t etcd;
} s_cluster_t;

static s_cluster_t s_cluster;

//  Ready: the apiserver answers a read from its store.
static bool
s_api_answers (zt_cluster_t *cluster)
{
    zube_api_error_t error;
    ProtobufCMessage *object = NULL;
    zube_status_t status = zube_api_get (cluster->api, "configmaps", S_NAMESPACE,
                                         "zt-probe", &object, &error);
    if (object)
        protobuf_c_message_free_unpacked (object, NULL);
    return status == ZUBE_OK || status == ZUBE_NOT_FOUND;
}

static void
s_wait_api_ready (s_cluster_t *cluster, const char *after)
{
    if (!zt_cluster_wait_api (&cluster->base, S_READY_TIMEOUT_MS))
        ZT_FAIL ("%s: %s (%s)", after, cluster->base.why, s_backend_names[cluster->backend]);
}

//  Keeps the test's own connection alive while it waits.
static void
s_sleep_polling (s_cluster_t *cluster, int ms)
{
    int64_t until = zt_now_ms () + ms;
    for (int64_t now = zt_now_ms (); now < until; now = zt_now_ms ())
        zube_bus_poll (cluster->base.bus, (int)(until - now));
}

static void
s_cluster_start (s_cluster_t *cluster, s_backend_t backend)
{
    *cluster = (s_cluster_t){.backend = backend};
    if (backend == S_REDIS) {
        if (!zt_redis_start (&cluster->redis)) {
            char log[300];
            snprintf (log, sizeof log, "%s/redis.log", cluster->redis.dir);
            zt_log_tail (log, 20);
            ZT_FAIL ("redis-server did not start");
        }
        snprintf (cluster->store_url, sizeof cluster->store_url, "redis://127.0.0.1:%d/0",
                  cluster->redis.port);
    } else if (backend == S_ETCD) {
        if (!zt_etcd_start (&cluster->etcd)) {
            char log[300];
            snprintf (log, sizeof log, "%s/etcd.log", cluster->etcd.dir);
            zt_log_tail (log, 20);
            ZT_FAIL ("etcd did not start");
        }
        snprintf (cluster->store_url, sizeof cluster->store_url, "%s", cluster->etcd.url);
    }
    bool up = zt_cluster_start (
        &cluster->base,
        &(zt_cluster_options_t){.tag = "api-crash",
                                .store = backend == S_LMDB ? NULL : cluster->store_url,
                                .data_dir = "data",
                                .api_timeout_ms = 1000,
                                .ready_timeout_ms = S_READY_TIMEOUT_MS,
                                .ready = s_api_answers});
    ZT_ASSERT_MSG (up, "first start: %s (%s)", cluster->base.why, s_backend_names[backend]);

    //  The namespace the cases write in.
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    meta.name = S_NAMESPACE;
    Zube__Namespace namespace = ZUBE__NAMESPACE__INIT;
    namespace.api_version = "v1";
    namespace.kind = "Namespace";
    namespace.metadata = &meta;
    zube_api_error_t error;
    zube_api_set_timeout (cluster->base.api, 10000);
    zube_status_t status = zube_api_create (cluster->base.api, "namespaces", NULL,
                                            &namespace.base, false, NULL, &error);
    zube_api_set_timeout (cluster->base.api, 1000);
    ZT_ASSERT_MSG (status == ZUBE_OK || status == ZUBE_ALREADY_EXISTS,
                   "create namespace %s: %s %s", S_NAMESPACE, zube_status_reason (status),
                   error.message);
}

//  keep_logs: print the ends of the logs (and keep the cluster's
//  directory).
static void
s_cluster_destroy (s_cluster_t *cluster, bool keep_logs)
{
    zt_cluster_stop (&cluster->base, keep_logs);
    if (cluster->redis.dir[0])
        zt_redis_destroy (&cluster->redis);
    if (cluster->etcd.dir[0])
        zt_etcd_destroy (&cluster->etcd);
}

typedef enum { S_KILL_APISERVER, S_KILL_STORE } s_target_t;

//  kill -9 of the apiserver or of the store server, restarted at once on
//  the same port and data; returns when the apiserver answers again.
static void
s_crash_and_restart (s_cluster_t *cluster, s_target_t target, int round)
{
    char after[64];
    snprintf (after, sizeof after, "after crash %d", round);
    if (target == S_KILL_APISERVER) {
        zt_cluster_kill_apiserver (&cluster->base, SIGKILL);
        cluster->base.apiserver = zt_cluster_spawn_apiserver (&cluster->base);
        ZT_ASSERT_MSG (cluster->base.apiserver > 0, "cannot start %s",
                       zt_program ("zube-apiserver"));
    } else if (cluster->backend == S_REDIS) {
        zt_redis_stop (&cluster->redis, SIGKILL);
        if (!zt_redis_start (&cluster->redis)) {
            char log[300];
            snprintf (log, sizeof log, "%s/redis.log", cluster->redis.dir);
            zt_log_tail (log, 20);
            ZT_FAIL ("%s: redis-server did not come back", after);
        }
    } else if (cluster->backend == S_ETCD) {
        zt_etcd_stop (&cluster->etcd, SIGKILL);
        if (!zt_etcd_start (&cluster->etcd)) {
            char log[300];
            snprintf (log, sizeof log, "%s/etcd.log", cluster->etcd.dir);
            zt_log_tail (log, 20);
            ZT_FAIL ("%s: etcd did not come back", after);
        }
    }
    s_wait_api_ready (cluster, after);
}

//  ---------------------------------------------------------------------
//  What the writers share: the highest revision acknowledged so far, and
//  what they found wrong (a writer thread cannot fail the case itself).

static struct {
    pthread_mutex_t lock;
    int64_t max_acked;
    size_t violation_count;
    char violations[S_MAX_VIOLATIONS][512];
    //  The first error each status gave, for the case's summary.
    char first_error[ZUBE_STATUS_COUNT][256];
    size_t error_counts[ZUBE_STATUS_COUNT];
    atomic_bool stop;
    //  Writes acknowledged so far (the crash rounds wait for them to flow).
    atomic_size_t acks;
    //  The counter case: bumped just before each kill -9; when to stop.
    atomic_int kills;
    _Atomic int64_t until;
} s_shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void
s_shared_reset (void)
{
    pthread_mutex_lock (&s_shared.lock);
    s_shared.max_acked = 0;
    s_shared.violation_count = 0;
    memset (s_shared.first_error, 0, sizeof s_shared.first_error);
    memset (s_shared.error_counts, 0, sizeof s_shared.error_counts);
    pthread_mutex_unlock (&s_shared.lock);
    atomic_store (&s_shared.stop, false);
    atomic_store (&s_shared.acks, 0);
    atomic_store (&s_shared.kills, 0);
    atomic_store (&s_shared.until, 0);
}

static void __attribute__ ((format (printf, 1, 2))) s_violation (const char *format, ...)
{
    pthread_mutex_lock (&s_shared.lock);
    if (s_shared.violation_count < S_MAX_VIOLATIONS) {
        va_list args;
        va_start (args, format);
        vsnprintf (s_shared.violations[s_shared.violation_count],
                   sizeof s_shared.violations[0], format, args);
        va_end (args);
    }
    s_shared.violation_count++;
    pthread_mutex_unlock (&s_shared.lock);
}

static void
s_note_error (const char *what, const zube_api_error_t *error)
{
    int status = error->status > 0 && error->status < ZUBE_STATUS_COUNT
                     ? (int)error->status
                     : ZUBE_INTERNAL;
    pthread_mutex_lock (&s_shared.lock);
    if (s_shared.error_counts[status]++ == 0)
        snprintf (s_shared.first_error[status], sizeof s_shared.first_error[0], "%s: %s",
                  what, error->message);
    pthread_mutex_unlock (&s_shared.lock);
}

static void
s_print_errors (void)
{
    pthread_mutex_lock (&s_shared.lock);
    for (int status = 0; status < ZUBE_STATUS_COUNT; status++)
        if (s_shared.error_counts[status])
            printf ("#   %zu x %s, the first: %s\n", s_shared.error_counts[status],
                    zube_status_reason ((zube_status_t)status),
                    s_shared.first_error[status]);
    pthread_mutex_unlock (&s_shared.lock);
}

static int64_t
s_max_acked (void)
{
    pthread_mutex_lock (&s_shared.lock);
    int64_t max = s_shared.max_acked;
    pthread_mutex_unlock (&s_shared.lock);
    return max;
}

//  A write sent when floor was the highest revision acknowledged was
//  acknowledged at revision: it committed after all of those, so above.
static void
s_note_ack (int64_t floor, int64_t revision, const char *what)
{
    if (revision <= floor)
        s_violation ("%s: acknowledged at resourceVersion %" PRId64
                     ", but it was sent after resourceVersion %" PRId64
                     " had been acknowledged (went backwards)",
                     what, revision, floor);
    pthread_mutex_lock (&s_shared.lock);
    if (revision > s_shared.max_acked)
        s_shared.max_acked = revision;
    pthread_mutex_unlock (&s_shared.lock);
    atomic_fetch_add (&s_shared.acks, 1);
}

static void
s_assert_no_violation (void)
{
    pthread_mutex_lock (&s_shared.lock);
    size_t count = s_shared.violation_count;
    for (size_t index = 0; index < count && index < S_MAX_VIOLATIONS; index++)
        printf ("# violation: %s\n", s_shared.violations[index]);
    pthread_mutex_unlock (&s_shared.lock);
    ZT_ASSERT_MSG (count == 0, "%zu violations (the first %d listed above)", count,
                   S_MAX_VIOLATIONS);
}

static int64_t
s_revision_of (const ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = object ? zube_object_meta (object) : NULL;
    if (!meta || !meta->resource_version || !*meta->resource_version)
        return -1;
    char *end = NULL;
    long long revision = strtoll (meta->resource_version, &end, 10);
    return *end ? -1 : revision;
}

static const char *
s_data_value (const Zube__ConfigMap *config_map, const char *key)
{
    for (size_t index = 0; index < config_map->n_data; index++)
        if (config_map->data[index]->key && streq (config_map->data[index]->key, key))
            return config_map->data[index]->value;
    return NULL;
}

//  Sets a data value of an unpacked ConfigMap (protobuf-c's default
//  allocator is malloc, so its strings are freed with free).
static bool
s_data_set (Zube__ConfigMap *config_map, const char *key, const char *value)
{
    for (size_t index = 0; index < config_map->n_data; index++)
        if (config_map->data[index]->key && streq (config_map->data[index]->key, key)) {
            char *copy = strdup (value);
            if (!copy)
                return false;
            free (config_map->data[index]->value);
            config_map->data[index]->value = copy;
            return true;
        }
    return false;
}

//  Joins a thread that was told to stop. Every call it makes ends by its
//  deadline (bus.h: exactly one outcome), so it must end within margin_ms;
//  one that does not is stuck in a call that never ends: it is reported,
//  and zsys_interrupted (which makes a waiting zube_bus_call return)
//  frees it. Returns false when it was stuck.
static bool
s_join (pthread_t thread, const char *who, int margin_ms)
{
    struct timespec limit;
    clock_gettime (CLOCK_REALTIME, &limit);
    limit.tv_sec += margin_ms / 1000;
    if (pthread_timedjoin_np (thread, NULL, &limit) == 0)
        return true;
    s_violation ("%s: still in a call %d ms after it was told to stop, although "
                 "every call has a deadline of at most %d ms (a bus call without "
                 "an outcome at its deadline)",
                 who, margin_ms, S_WRITE_LONG_TIMEOUT_MS);
    zsys_interrupted = 1;
    pthread_join (thread, NULL);
    zsys_interrupted = 0;
    return false;
}

//  ---------------------------------------------------------------------
//  The five writers

typedef struct {
    int index;
    zube_bus_t *bus;
    zube_api_t *api;
    pthread_t thread;
    bool started;
    //  Creates acknowledged OK: the writer's sequence number of each, and
    //  its revision.
    int64_t *acked_seq;
    int64_t *acked_revision;
    size_t acked_count;
    size_t acked_capacity;
    //  The counter: created (acknowledged), the last value acknowledged,
    //  and its revision.
    bool counter_created;
    int64_t counter_acked;
    int64_t counter_acked_revision;
    //  The counter as last read or written (NULL: read it again).
    Zube__ConfigMap *counter;
    size_t updates_ok;
    size_t errors;
    size_t conflicts;
    //  Creates answered AlreadyExists: a create retried after a crash.
    size_t already_exists;
} s_writer_t;

static s_writer_t s_writers[S_WRITERS];

static void
s_writer_record (s_writer_t *self, int64_t seq, int64_t revision)
{
    if (self->acked_count == self->acked_capacity) {
        size_t capacity = self->acked_capacity ? self->acked_capacity * 2 : 1024;
        int64_t *seqs = realloc (self->acked_seq, capacity * sizeof *seqs);
        if (seqs)
            self->acked_seq = seqs;
        int64_t *revisions = realloc (self->acked_revision, capacity * sizeof *revisions);
        if (revisions)
            self->acked_revision = revisions;
        if (!seqs || !revisions)
            abort ();
        self->acked_capacity = capacity;
    }
    self->acked_seq[self->acked_count] = seq;
    self->acked_revision[self->acked_count] = revision;
    self->acked_count++;
}

static void
s_writer_create (s_writer_t *self, int64_t seq)
{
    char name[64], writer[16], sequence[32];
    snprintf (name, sizeof name, "w%d-%06" PRId64, self->index, seq);
    snprintf (writer, sizeof writer, "%d", self->index);
    snprintf (sequence, sizeof sequence, "%" PRId64, seq);
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    meta.name = name;
    meta.namespace_ = S_NAMESPACE;
    Zube__ConfigMap__DataEntry entries[2] = {ZUBE__CONFIG_MAP__DATA_ENTRY__INIT,
                                             ZUBE__CONFIG_MAP__DATA_ENTRY__INIT};
    entries[0].key = "seq";
    entries[0].value = sequence;
    entries[1].key = "writer";
    entries[1].value = writer;
    Zube__ConfigMap__DataEntry *data[2] = {&entries[0], &entries[1]};
    Zube__ConfigMap config_map = ZUBE__CONFIG_MAP__INIT;
    config_map.api_version = "v1";
    config_map.kind = "ConfigMap";
    config_map.metadata = &meta;
    config_map.n_data = 2;
    config_map.data = data;

    int64_t floor = s_max_acked ();
    zube_api_error_t error;
    ProtobufCMessage *created = NULL;
    zube_status_t status = zube_api_create (self->api, "configmaps", S_NAMESPACE,
                                            &config_map.base, false, &created, &error);
    if (status == ZUBE_OK) {
        int64_t revision = s_revision_of (created);
        char what[96];
        snprintf (what, sizeof what, "create of %s", name);
        if (revision <= 0)
            s_violation ("%s: acknowledged without a resourceVersion", what);
        else {
            s_note_ack (floor, revision, what);
            s_writer_record (self, seq, revision);
        }
    } else if (status == ZUBE_ALREADY_EXISTS)
        self->already_exists++;
    else {
        self->errors++;
        s_note_error ("create", &error);
    }
    if (created)
        protobuf_c_message_free_unpacked (created, NULL);
}

//  Reads the writer's counter again (after an error or a Conflict), and
//  checks that it holds at least the last value acknowledged.
static void
s_writer_read_counter (s_writer_t *self)
{
    char name[32];
    snprintf (name, sizeof name, "w%d-counter", self->index);
    zube_api_error_t error;
    ProtobufCMessage *object = NULL;
    zube_status_t status =
        zube_api_get (self->api, "configmaps", S_NAMESPACE, name, &object, &error);
    if (status == ZUBE_NOT_FOUND && self->counter_created)
        s_violation ("%s: created (acknowledged) and lost", name);
    if (status == ZUBE_NOT_FOUND && !self->counter_created) {
        //  Not created yet (or its create was not acknowledged).
        Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
        meta.name = name;
        meta.namespace_ = S_NAMESPACE;
        Zube__ConfigMap__DataEntry entry = ZUBE__CONFIG_MAP__DATA_ENTRY__INIT;
        entry.key = "counter";
        entry.value = "0";
        Zube__ConfigMap__DataEntry *data[1] = {&entry};
        Zube__ConfigMap config_map = ZUBE__CONFIG_MAP__INIT;
        config_map.api_version = "v1";
        config_map.kind = "ConfigMap";
        config_map.metadata = &meta;
        config_map.n_data = 1;
        config_map.data = data;
        int64_t floor = s_max_acked ();
        status = zube_api_create (self->api, "configmaps", S_NAMESPACE, &config_map.base,
                                  false, &object, &error);
        if (status == ZUBE_OK) {
            char what[64];
            snprintf (what, sizeof what, "create of %s", name);
            s_note_ack (floor, s_revision_of (object), what);
            self->counter_created = true;
        }
    } else if (status == ZUBE_OK)
        self->counter_created = true;
    if (status != ZUBE_OK) {
        if (object)
            protobuf_c_message_free_unpacked (object, NULL);
        self->errors++;
        s_note_error ("read the counter", &error);
        return;
    }
    Zube__ConfigMap *counter = (Zube__ConfigMap *)object;
    const char *value = s_data_value (counter, "counter");
    int64_t stored = value ? strtoll (value, NULL, 10) : -1;
    int64_t revision = s_revision_of (object);
    if (stored < self->counter_acked)
        s_violation ("%s: holds %s after %" PRId64 " was acknowledged at "
                     "resourceVersion %" PRId64 " (lost write)",
                     name, value ? value : "no counter", self->counter_acked,
                     self->counter_acked_revision);
    else if (revision < self->counter_acked_revision)
        s_violation ("%s: read at resourceVersion %" PRId64 " after an update was "
                     "acknowledged at %" PRId64 " (went backwards)",
                     name, revision, self->counter_acked_revision);
    self->counter = counter;
}

static void
s_writer_update_counter (s_writer_t *self)
{
    if (!self->counter) {
        s_writer_read_counter (self);
        if (!self->counter)
            return;
    }
    const char *value = s_data_value (self->counter, "counter");
    int64_t next = (value ? strtoll (value, NULL, 10) : 0) + 1;
    char text[32];
    snprintf (text, sizeof text, "%" PRId64, next);
    if (!s_data_set (self->counter, "counter", text)) {
        s_violation ("w%d-counter: no counter in its data", self->index);
        protobuf_c_message_free_unpacked (&self->counter->base, NULL);
        self->counter = NULL;
        return;
    }
    int64_t floor = s_max_acked ();
    zube_api_error_t error;
    ProtobufCMessage *updated = NULL;
    zube_status_t status =
        zube_api_update (self->api, "configmaps", S_NAMESPACE, &self->counter->base, NULL,
                         false, &updated, &error);
    protobuf_c_message_free_unpacked (&self->counter->base, NULL);
    self->counter = NULL;
    if (status == ZUBE_OK) {
        int64_t revision = s_revision_of (updated);
        const char *stored = s_data_value ((Zube__ConfigMap *)updated, "counter");
        char what[96];
        snprintf (what, sizeof what, "update of w%d-counter to %" PRId64, self->index,
                  next);
        if (!stored || strtoll (stored, NULL, 10) != next)
            s_violation ("%s: acknowledged holding %s", what,
                         stored ? stored : "nothing");
        if (revision <= 0)
            s_violation ("%s: acknowledged without a resourceVersion", what);
        else
            s_note_ack (floor, revision, what);
        self->counter_acked = next;
        self->counter_acked_revision = revision;
        self->updates_ok++;
        self->counter = (Zube__ConfigMap *)updated;
        return;
    }
    if (status == ZUBE_CONFLICT)
        self->conflicts++;
    else {
        self->errors++;
        s_note_error ("update", &error);
    }
    if (updated)
        protobuf_c_message_free_unpacked (updated, NULL);
}

static void *
s_writer_run (void *arg)
{
    s_writer_t *self = arg;
    int64_t seq = 0;
    int64_t due = zt_now_ms ();
    while (!atomic_load (&s_shared.stop)) {
        int64_t now = zt_now_ms ();
        if (due > now)
            zube_bus_poll (self->bus, (int)(due - now));
        now = zt_now_ms ();
        //  Behind (a call waited for a restart): no burst to catch up.
        due = due + S_WRITE_PERIOD_MS < now - 100 ? now : due + S_WRITE_PERIOD_MS;
        seq++;
        if (seq % 2)
            s_writer_create (self, seq);
        else
            s_writer_update_counter (self);
    }
    return NULL;
}

static void
s_writers_start (s_cluster_t *cluster)
{
    for (int index = 0; index < S_WRITERS; index++) {
        s_writer_t *writer = &s_writers[index];
        *writer = (s_writer_t){.index = index};
        writer->bus = zt_cluster_bus_new (&cluster->base, NULL);
        ZT_ASSERT (writer->bus);
        writer->api = zube_api_new (writer->bus);
        ZT_ASSERT (writer->api);
        zube_api_set_timeout (writer->api, index < S_WRITERS - S_LONG_TIMEOUT_WRITERS
                                               ? S_WRITE_TIMEOUT_MS
                                               : S_WRITE_LONG_TIMEOUT_MS);
    }
    for (int index = 0; index < S_WRITERS; index++) {
        s_writer_t *writer = &s_writers[index];
        ZT_ASSERT (pthread_create (&writer->thread, NULL, s_writer_run, writer) == 0);
        writer->started = true;
    }
}

static void
s_writers_stop (void)
{
    atomic_store (&s_shared.stop, true);
    for (int index = 0; index < S_WRITERS; index++) {
        s_writer_t *writer = &s_writers[index];
        char who[32];
        snprintf (who, sizeof who, "writer %d", index);
        if (writer->started)
            s_join (writer->thread, who, S_STOP_MARGIN_MS);
        writer->started = false;
    }
}

static void
s_writers_destroy (void)
{
    s_writers_stop ();
    for (int index = 0; index < S_WRITERS; index++) {
        s_writer_t *writer = &s_writers[index];
        if (writer->counter)
            protobuf_c_message_free_unpacked (&writer->counter->base, NULL);
        zube_api_destroy (&writer->api);
        zube_bus_destroy (&writer->bus);
        free (writer->acked_seq);
        free (writer->acked_revision);
        *writer = (s_writer_t){0};
    }
}

//  Every create acknowledged is there, as written and at the revision it
//  was acknowledged at; every counter holds at least its last value
//  acknowledged.
static void
s_verify_writes (s_cluster_t *cluster, size_t *creates_p, size_t *updates_p)
{
    zube_api_set_timeout (cluster->base.api, 30000);
    zube_api_list_options_t options = {.namespace = S_NAMESPACE};
    zube_api_list_t *list = NULL;
    zube_api_error_t error;
    zube_status_t status =
        zube_api_list (cluster->base.api, "configmaps", &options, &list, &error);
    ZT_ASSERT_MSG (status == ZUBE_OK, "list after the last restart: %s %s",
                   zube_status_reason (status), error.message);
    int64_t max_acked = s_max_acked ();
    int64_t list_revision = strtoll (list->resource_version, NULL, 10);
    if (list_revision < max_acked)
        s_violation ("the final list is at resourceVersion %s, below %" PRId64
                     ", acknowledged before it",
                     list->resource_version, max_acked);
    zhashx_t *stored = zhashx_new ();
    for (size_t index = 0; index < list->count; index++) {
        Zube__ConfigMap *config_map = (Zube__ConfigMap *)list->items[index];
        if (config_map->metadata && config_map->metadata->name)
            zhashx_insert (stored, config_map->metadata->name, config_map);
    }
    size_t creates = 0, updates = 0;
    for (int index = 0; index < S_WRITERS; index++) {
        s_writer_t *writer = &s_writers[index];
        for (size_t at = 0; at < writer->acked_count; at++) {
            char name[64];
            snprintf (name, sizeof name, "w%d-%06" PRId64, index, writer->acked_seq[at]);
            Zube__ConfigMap *config_map = zhashx_lookup (stored, name);
            const char *seq = config_map ? s_data_value (config_map, "seq") : NULL;
            int64_t revision = config_map ? s_revision_of (&config_map->base) : 0;
            if (!config_map)
                s_violation ("%s: created at resourceVersion %" PRId64
                             ", acknowledged, and lost",
                             name, writer->acked_revision[at]);
            else if (!seq || strtoll (seq, NULL, 10) != writer->acked_seq[at])
                s_violation ("%s: holds seq %s, not what was written", name,
                             seq ? seq : "(none)");
            else if (revision != writer->acked_revision[at])
                s_violation ("%s: acknowledged at resourceVersion %" PRId64
                             ", stored at %" PRId64,
                             name, writer->acked_revision[at], revision);
        }
        creates += writer->acked_count;
        updates += writer->updates_ok;
        char name[32];
        snprintf (name, sizeof name, "w%d-counter", index);
        Zube__ConfigMap *counter = zhashx_lookup (stored, name);
        const char *value = counter ? s_data_value (counter, "counter") : NULL;
        if (writer->counter_acked > 0 &&
            (!value || strtoll (value, NULL, 10) < writer->counter_acked))
            s_violation ("%s: holds %s, but %" PRId64
                         " was acknowledged at resourceVersion %" PRId64 " (lost write)",
                         name, value ? value : "nothing", writer->counter_acked,
                         writer->counter_acked_revision);
    }
    zhashx_destroy (&stored);
    zube_api_list_destroy (&list);
    zube_api_set_timeout (cluster->base.api, 1000);
    *creates_p = creates;
    *updates_p = updates;
}

//  ---------------------------------------------------------------------
//  The crash rounds

//  Waits until every writer could have had a write acknowledged since the
//  last restart; answers how long that took.
static int64_t
s_wait_writes_flow (s_cluster_t *cluster, int round)
{
    int64_t started = zt_now_ms ();
    size_t before = atomic_load (&s_shared.acks);
    while (atomic_load (&s_shared.acks) < before + S_WRITERS) {
        if (zt_now_ms () - started > S_RESUME_TIMEOUT_MS) {
            s_print_errors ();
            ZT_FAIL ("round %d: %zu writes acknowledged in the %d ms after the "
                     "apiserver answered again",
                     round, atomic_load (&s_shared.acks) - before, S_RESUME_TIMEOUT_MS);
        }
        zube_bus_poll (cluster->base.bus, 10);
    }
    return zt_now_ms () - started;
}

static void
s_crash_rounds (s_backend_t backend, s_target_t target)
{
    s_shared_reset ();
    s_cluster_start (&s_cluster, backend);
    s_writers_start (&s_cluster);
    const char *victim = target == S_KILL_APISERVER ? "zube-apiserver"
                         : backend == S_REDIS       ? "redis-server"
                                                    : "etcd";
    int64_t started = zt_now_ms ();
    int64_t longest_restart = 0, longest_resume = 0;
    for (int round = 1; round <= s_rounds; round++) {
        //  A crash lands in the middle of writes: first they flow again
        //  (writers whose request was at a killed apiserver wait for their
        //  deadline, or for the broker to find it dead, and go on), then
        //  they run for 0.3 to 1 s.
        int64_t waited = s_wait_writes_flow (&s_cluster, round);
        if (waited > longest_resume)
            longest_resume = waited;
        s_sleep_polling (&s_cluster, 300 + (int)(rand_r (&s_seed) % 701));
        int64_t killed = zt_now_ms ();
        s_crash_and_restart (&s_cluster, target, round);
        int64_t restart_ms = zt_now_ms () - killed;
        if (restart_ms > longest_restart)
            longest_restart = restart_ms;
        //  A list now is consistent at a revision at or above every one
        //  acknowledged before it was asked for.
        int64_t floor = s_max_acked ();
        zube_api_list_options_t options = {.namespace = S_NAMESPACE, .limit = 1};
        zube_api_list_t *list = NULL;
        zube_api_error_t error;
        zube_api_set_timeout (s_cluster.base.api, 10000);
        zube_status_t status =
            zube_api_list (s_cluster.base.api, "configmaps", &options, &list, &error);
        zube_api_set_timeout (s_cluster.base.api, 1000);
        ZT_ASSERT_MSG (status == ZUBE_OK, "list after crash %d: %s %s", round,
                       zube_status_reason (status), error.message);
        int64_t list_revision = strtoll (list->resource_version, NULL, 10);
        zube_api_list_destroy (&list);
        if (list_revision < floor)
            s_violation ("list after crash %d of %s: at resourceVersion %" PRId64
                         ", below %" PRId64 ", acknowledged before it was asked",
                         round, victim, list_revision, floor);
    }
    //  The writers go on a little on the last restart, then stop.
    s_sleep_polling (&s_cluster, 500);
    s_writers_stop ();
    int64_t elapsed = zt_now_ms () - started;

    size_t creates = 0, updates = 0;
    s_verify_writes (&s_cluster, &creates, &updates);
    size_t errors = 0, conflicts = 0, already_exists = 0;
    for (int index = 0; index < S_WRITERS; index++) {
        errors += s_writers[index].errors;
        conflicts += s_writers[index].conflicts;
        already_exists += s_writers[index].already_exists;
    }
    printf ("# %s, kill -9 of %s: %d rounds in %.1f s (longest restart %" PRId64
            " ms, longest wait for writes to flow again %" PRId64 " ms): %zu creates "
            "and %zu counter updates acknowledged, highest resourceVersion %" PRId64
            "; %zu errors, %zu conflicts, %zu creates retried into AlreadyExists\n",
            s_backend_names[backend], victim, s_rounds, elapsed / 1000.0, longest_restart,
            longest_resume, creates, updates, s_max_acked (), errors, conflicts,
            already_exists);
    s_print_errors ();
    s_assert_no_violation ();
    //  Writes must have gone on between the crashes.
    ZT_ASSERT_MSG (creates >= (size_t)s_rounds,
                   "only %zu creates acknowledged in %d rounds", creates, s_rounds);
}

//  ---------------------------------------------------------------------
//  The read-modify-write counter

typedef struct {
    zube_bus_t *bus;
    zube_api_t *api;
    pthread_t thread;
    bool started;
    size_t acknowledged;
    size_t conflicts;
    //  Updates that ended in an error (or in a Conflict across the kill,
    //  which a retry of an applied update also gets): applied or not.
    size_t ambiguous;
    size_t read_errors;
} s_incrementer_t;

static s_incrementer_t s_incrementers[S_RMW_WRITERS];

static void *
s_incrementer_run (void *arg)
{
    s_incrementer_t *self = arg;
    while (!atomic_load (&s_shared.stop) &&
           zt_now_ms () < atomic_load (&s_shared.until)) {
        zube_api_error_t error;
        ProtobufCMessage *object = NULL;
        zube_status_t status =
            zube_api_get (self->api, "configmaps", S_NAMESPACE, "rmw", &object, &error);
        if (status != ZUBE_OK) {
            if (object)
                protobuf_c_message_free_unpacked (object, NULL);
            self->read_errors++;
            s_note_error ("get", &error);
            zube_bus_poll (self->bus, 20);
            continue;
        }
        Zube__ConfigMap *counter = (Zube__ConfigMap *)object;
        const char *value = s_data_value (counter, "n");
        char text[32];
        snprintf (text, sizeof text, "%lld", (value ? strtoll (value, NULL, 10) : 0) + 1);
        if (!s_data_set (counter, "n", text)) {
            s_violation ("rmw: no counter in its data");
            protobuf_c_message_free_unpacked (object, NULL);
            break;
        }
        int kills = atomic_load (&s_shared.kills);
        ProtobufCMessage *updated = NULL;
        status = zube_api_update (self->api, "configmaps", S_NAMESPACE, &counter->base,
                                  NULL, false, &updated, &error);
        protobuf_c_message_free_unpacked (object, NULL);
        if (updated)
            protobuf_c_message_free_unpacked (updated, NULL);
        if (status == ZUBE_OK)
            self->acknowledged++;
        else if (status == ZUBE_CONFLICT && kills == atomic_load (&s_shared.kills))
            self->conflicts++;
        else {
            self->ambiguous++;
            if (status != ZUBE_CONFLICT)
                s_note_error ("update", &error);
        }
    }
    return NULL;
}

static void
s_incrementers_destroy (void)
{
    atomic_store (&s_shared.stop, true);
    for (int index = 0; index < S_RMW_WRITERS; index++) {
        s_incrementer_t *incrementer = &s_incrementers[index];
        char who[32];
        snprintf (who, sizeof who, "incrementer %d", index);
        if (incrementer->started)
            s_join (incrementer->thread, who, S_STOP_MARGIN_MS);
        zube_api_destroy (&incrementer->api);
        zube_bus_destroy (&incrementer->bus);
        *incrementer = (s_incrementer_t){0};
    }
}

static int64_t
s_read_rmw_counter (s_cluster_t *cluster)
{
    zube_api_error_t error;
    ProtobufCMessage *object = NULL;
    zube_api_set_timeout (cluster->base.api, 10000);
    zube_status_t status =
        zube_api_get (cluster->base.api, "configmaps", S_NAMESPACE, "rmw", &object, &error);
    zube_api_set_timeout (cluster->base.api, 1000);
    ZT_ASSERT_MSG (status == ZUBE_OK, "get the counter: %s %s",
                   zube_status_reason (status), error.message);
    const char *value = s_data_value ((Zube__ConfigMap *)object, "n");
    int64_t counter = value ? strtoll (value, NULL, 10) : -1;
    protobuf_c_message_free_unpacked (object, NULL);
    return counter;
}

static void
s_counter (s_backend_t backend, bool crash)
{
    s_shared_reset ();
    s_cluster_start (&s_cluster, backend);
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    meta.name = "rmw";
    meta.namespace_ = S_NAMESPACE;
    Zube__ConfigMap__DataEntry entry = ZUBE__CONFIG_MAP__DATA_ENTRY__INIT;
    entry.key = "n";
    entry.value = "0";
    Zube__ConfigMap__DataEntry *data[1] = {&entry};
    Zube__ConfigMap config_map = ZUBE__CONFIG_MAP__INIT;
    config_map.api_version = "v1";
    config_map.kind = "ConfigMap";
    config_map.metadata = &meta;
    config_map.n_data = 1;
    config_map.data = data;
    zube_api_error_t error;
    zube_api_set_timeout (s_cluster.base.api, 10000);
    zube_status_t status = zube_api_create (s_cluster.base.api, "configmaps", S_NAMESPACE,
                                            &config_map.base, false, NULL, &error);
    zube_api_set_timeout (s_cluster.base.api, 1000);
    ZT_ASSERT_MSG (status == ZUBE_OK, "create the counter: %s %s",
                   zube_status_reason (status), error.message);

    int run_ms = S_ASAN ? 2000 : 3000;
    for (int index = 0; index < S_RMW_WRITERS; index++) {
        s_incrementer_t *incrementer = &s_incrementers[index];
        incrementer->bus = zt_cluster_bus_new (&s_cluster.base, NULL);
        ZT_ASSERT (incrementer->bus);
        incrementer->api = zube_api_new (incrementer->bus);
        ZT_ASSERT (incrementer->api);
        zube_api_set_timeout (incrementer->api, 5000);
    }
    atomic_store (&s_shared.until, zt_now_ms () + run_ms);
    for (int index = 0; index < S_RMW_WRITERS; index++) {
        s_incrementer_t *incrementer = &s_incrementers[index];
        ZT_ASSERT (pthread_create (&incrementer->thread, NULL, s_incrementer_run,
                                   incrementer) == 0);
        incrementer->started = true;
    }
    if (crash) {
        s_sleep_polling (&s_cluster, run_ms / 2);
        atomic_fetch_add (&s_shared.kills, 1);
        int64_t killed = zt_now_ms ();
        s_crash_and_restart (&s_cluster, S_KILL_APISERVER, 1);
        //  As long again after the restart as before the kill.
        atomic_store (&s_shared.until, zt_now_ms () + run_ms / 2);
        printf ("# apiserver killed after %d ms, answering again after %" PRId64 " ms\n",
                run_ms / 2, zt_now_ms () - killed);
    }
    //  They stop at the end of their run; give them that long first.
    int64_t left = atomic_load (&s_shared.until) - zt_now_ms ();
    if (left > 0)
        s_sleep_polling (&s_cluster, (int)left);
    for (int index = 0; index < S_RMW_WRITERS; index++) {
        s_incrementer_t *incrementer = &s_incrementers[index];
        char who[32];
        snprintf (who, sizeof who, "incrementer %d", index);
        s_join (incrementer->thread, who, S_STOP_MARGIN_MS);
        incrementer->started = false;
    }
    size_t acknowledged = 0, conflicts = 0, ambiguous = 0, read_errors = 0;
    for (int index = 0; index < S_RMW_WRITERS; index++) {
        acknowledged += s_incrementers[index].acknowledged;
        conflicts += s_incrementers[index].conflicts;
        ambiguous += s_incrementers[index].ambiguous;
        read_errors += s_incrementers[index].read_errors;
    }
    int64_t counter = s_read_rmw_counter (&s_cluster);
    printf ("# %s, %d writers%s: counter %" PRId64 ", %zu increments acknowledged, "
            "%zu conflicts, %zu ambiguous outcomes, %zu failed reads\n",
            s_backend_names[backend], S_RMW_WRITERS,
            crash ? " across a kill -9 of the apiserver" : "", counter, acknowledged,
            conflicts, ambiguous, read_errors);
    s_print_errors ();
    s_assert_no_violation ();
    ZT_ASSERT_MSG (acknowledged > 0, "no increment was acknowledged");
    ZT_ASSERT_MSG (conflicts > 0, "%d writers and not one Conflict", S_RMW_WRITERS);
    if (crash)
        ZT_ASSERT_MSG ((size_t)counter >= acknowledged &&
                           (size_t)counter <= acknowledged + ambiguous,
                       "counter %" PRId64 ", expected between %zu acknowledged and %zu "
                       "(+ %zu ambiguous)",
                       counter, acknowledged, acknowledged + ambiguous, ambiguous);
    else
        ZT_ASSERT_MSG ((size_t)counter == acknowledged,
                       "counter %" PRId64 ", but %zu increments were acknowledged "
                       "(%zu updates ended in an error)",
                       counter, acknowledged, ambiguous);
}

//  ---------------------------------------------------------------------
//  Cases

static void
test_lmdb_kill_apiserver (void)
{
    s_crash_rounds (S_LMDB, S_KILL_APISERVER);
}

static void
test_redis_kill_apiserver (void)
{
    s_crash_rounds (S_REDIS, S_KILL_APISERVER);
}

static void
test_redis_kill_redis_server (void)
{
    s_crash_rounds (S_REDIS, S_KILL_STORE);
}

static void
test_etcd_kill_apiserver (void)
{
    s_crash_rounds (S_ETCD, S_KILL_APISERVER);
}

static void
test_etcd_kill_etcd (void)
{
    s_crash_rounds (S_ETCD, S_KILL_STORE);
}

static void
test_lmdb_counter (void)
{
    s_counter (S_LMDB, false);
}

static void
test_lmdb_counter_across_kill (void)
{
    s_counter (S_LMDB, true);
}

static void
test_redis_counter (void)
{
    s_counter (S_REDIS, false);
}

static void
test_redis_counter_across_kill (void)
{
    s_counter (S_REDIS, true);
}

static void
test_etcd_counter (void)
{
    s_counter (S_ETCD, false);
}

static void
test_etcd_counter_across_kill (void)
{
    s_counter (S_ETCD, true);
}

//  After every case, passed or failed: no thread, process or directory
//  left (the logs of a failed case are printed first).
static void
s_cleanup (void)
{
    bool failed = zt_failure[0] != 0;
    s_writers_destroy ();
    s_incrementers_destroy ();
    s_cluster_destroy (&s_cluster, failed);
}

typedef struct {
    const char *name;
    void (*fn) (void);
    s_backend_t backend;
} s_case_t;

//  test_api_crash [WORD]: only the cases whose name contains WORD.
int
main (int argc, char *argv[])
{
    const char *rounds = getenv ("ZT_CRASH_ROUNDS");
    s_rounds = rounds && atoi (rounds) > 0 ? atoi (rounds) : S_ASAN ? 5 : 20;
    s_seed = (unsigned int)getpid ();
    printf ("# %d crash rounds per case (ZT_CRASH_ROUNDS; default 20, 5 under "
            "AddressSanitizer%s)\n",
            s_rounds, S_ASAN ? ", which this build is" : "");
    fflush (stdout);

    s_case_t cases[] = {
        {"lmdb: acknowledged writes survive kill -9 of the apiserver",
         test_lmdb_kill_apiserver, S_LMDB},
        {"lmdb: 50 read-modify-write writers, conflicts, exact counter",
         test_lmdb_counter, S_LMDB},
        {"lmdb: 50 read-modify-write writers across kill -9 of the apiserver",
         test_lmdb_counter_across_kill, S_LMDB},
        {"redis: acknowledged writes survive kill -9 of the apiserver",
         test_redis_kill_apiserver, S_REDIS},
        {"redis: acknowledged writes survive kill -9 of redis-server",
         test_redis_kill_redis_server, S_REDIS},
        {"redis: 50 read-modify-write writers, conflicts, exact counter",
         test_redis_counter, S_REDIS},
        {"redis: 50 read-modify-write writers across kill -9 of the apiserver",
         test_redis_counter_across_kill, S_REDIS},
        {"etcd: acknowledged writes survive kill -9 of the apiserver",
         test_etcd_kill_apiserver, S_ETCD},
        {"etcd: acknowledged writes survive kill -9 of etcd", test_etcd_kill_etcd,
         S_ETCD},
        {"etcd: 50 read-modify-write writers, conflicts, exact counter",
         test_etcd_counter, S_ETCD},
        {"etcd: 50 read-modify-write writers across kill -9 of the apiserver",
         test_etcd_counter_across_kill, S_ETCD},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        s_case_t *test = &cases[index];
        if (argc > 1 && !strstr (test->name, argv[1]))
            continue;
        if (test->backend == S_REDIS && !zt_which ("redis-server"))
            zt_skip (test->name, "redis-server is not installed");
        else if (test->backend == S_ETCD && !zt_which ("etcd"))
            zt_skip (test->name, "etcd is not installed");
        else {
            int64_t started = zt_now_ms ();
            zt_run (test->name, test->fn);
            s_cleanup ();
            printf ("# (%.1f s)\n", (zt_now_ms () - started) / 1000.0);
            fflush (stdout);
        }
    }
    return zt_done ();
}
