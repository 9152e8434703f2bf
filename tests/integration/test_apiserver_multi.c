/*  test_apiserver_multi - two zube-apiserver instances on one store
    (a redis-server, then an etcd, each started here on free ports)
    behind one zube-broker: writes through both, every event on the bus
    once and in order with prev chains intact, watch since answered by
    either, and after kill -9 of the publishing instance the other takes
    over publishing without a gap. Skipped per backend only when its
    server binary is not installed. */
#define _GNU_SOURCE
//  zt_rmtree's paths and the assertion texts trip -Wformat-truncation.
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zt_etcd.h"
#include "../zt_cluster.h"
#include "api.pb-c.h"
#include "core.pb-c.h"
#include "zube/api.h"
#include "zube/bus.h"
#include <czmq.h>
#include <inttypes.h>

#define S_MAX_EVENTS 4096

//  A broker and two apiservers on one store; the apiservers' pids are
//  here, not in base.
typedef struct {
    zt_cluster_t base;
    pid_t apiservers[2];
} s_cluster_t;

//  What the bus delivered on api/configmaps
typedef struct {
    size_t count;
    int64_t rv[S_MAX_EVENTS];
    int64_t prev[S_MAX_EVENTS];
} s_events_t;

static void
s_on_event (zube_bus_t *bus, const char *topic, const uint8_t *payload, size_t size,
            void *arg)
{
    s_events_t *events = (s_events_t *)arg;
    if (!streq (topic, "api/configmaps") || events->count == S_MAX_EVENTS)
        return;
    Zube__WatchEvent *event = zube__watch_event__unpack (NULL, size, payload);
    if (!event)
        return;
    events->rv[events->count] = strtoll (event->resource_version, NULL, 10);
    events->prev[events->count] = strtoll (event->prev_resource_version, NULL, 10);
    events->count++;
    zube__watch_event__free_unpacked (event, NULL);
}

static bool
s_start (s_cluster_t *cluster, const char *store)
{
    memset (cluster, 0, sizeof *cluster);
    //  One at a time, so the first makes the default namespaces alone
    bool up = zt_cluster_start (&cluster->base, &(zt_cluster_options_t){.tag = "apimulti",
                                                                       .store = store,
                                                                       .heartbeat_ms = 200,
                                                                       .broker_log = "log",
                                                                       .apiserver_log = "log"});
    cluster->apiservers[0] = cluster->base.apiserver;
    cluster->base.apiserver = 0;
    if (!up)
        return false;
    cluster->apiservers[1] = zt_cluster_spawn_apiserver (&cluster->base);
    usleep (500000);
    return waitpid (cluster->apiservers[1], NULL, WNOHANG) == 0;
}

static void
s_stop (s_cluster_t *cluster)
{
    for (int i = 0; i < 2; i++)
        if (cluster->apiservers[i] > 0)
            zt_stop (cluster->apiservers[i], SIGTERM, 5000);
    zt_cluster_stop (&cluster->base, false);
    memset (cluster, 0, sizeof *cluster);
}

static Zube__ConfigMap *
s_configmap (const char *name)
{
    Zube__ConfigMap *map = calloc (1, sizeof *map);
    zube__config_map__init (map);
    map->metadata = calloc (1, sizeof (Zube__ObjectMeta));
    zube__object_meta__init (map->metadata);
    map->metadata->name = strdup (name);
    map->metadata->namespace_ = strdup ("default");
    return map;
}

//  Creates count configmaps through two client connections (the broker
//  spreads them over both instances); their revisions into rvs.
static int
s_write (s_cluster_t *cluster, zube_api_t *other, const char *prefix, int count,
         int64_t *rvs)
{
    for (int i = 0; i < count; i++) {
        char name[64];
        snprintf (name, sizeof name, "%s-%d", prefix, i);
        Zube__ConfigMap *map = s_configmap (name);
        ProtobufCMessage *created = NULL;
        zube_api_error_t error;
        zube_status_t status =
            zube_api_create (i % 2 ? other : cluster->base.api, "configmaps", "default",
                             &map->base, false, &created, &error);
        protobuf_c_message_free_unpacked (&map->base, NULL);
        if (status != ZUBE_OK) {
            printf ("# create %s: %s\n", name, error.message);
            return -1;
        }
        rvs[i] = strtoll (zube_object_meta (created)->resource_version, NULL, 10);
        protobuf_c_message_free_unpacked (created, NULL);
    }
    return 0;
}

//  Every revision in rvs among the events; the events, duplicates
//  dropped (RV <= seen), in order with each prev the one before.
static bool
s_check_events (const s_events_t *events, const int64_t *rvs, int count, int64_t *last_p,
                char *why, size_t why_size)
{
    int64_t seen = *last_p;
    for (size_t i = 0; i < events->count; i++) {
        if (events->rv[i] <= seen)
            continue;
        if (seen && events->prev[i] != seen) {
            snprintf (why, why_size,
                      "event %" PRId64 " has prev %" PRId64 ", last seen %" PRId64,
                      events->rv[i], events->prev[i], seen);
            return false;
        }
        seen = events->rv[i];
    }
    for (int i = 0; i < count; i++) {
        bool found = false;
        for (size_t j = 0; j < events->count && !found; j++)
            found = events->rv[j] == rvs[i];
        if (!found) {
            snprintf (why, why_size, "no event for revision %" PRId64, rvs[i]);
            return false;
        }
    }
    *last_p = seen;
    return true;
}

//  Watch since rvs[0] as a client does: each answer goes on from the
//  resourceVersion the one before ended at, until rvs[count - 1]. An
//  instance answers from what it has followed of the store, which may
//  be a little behind a write another instance acknowledged. The events
//  must be exactly rvs[1 ..], in order, none twice.
static bool
s_watch_through (zube_api_t *api, const int64_t *rvs, int count, char *why,
                 size_t why_size)
{
    int64_t through = rvs[0];
    int next = 1;
    int64_t deadline = zt_now_ms () + 10000;
    while (next < count) {
        if (zt_now_ms () > deadline) {
            snprintf (why, why_size, "stuck at %" PRId64 " (%d of %d events)", through,
                      next - 1, count - 1);
            return false;
        }
        char since[24];
        snprintf (since, sizeof since, "%" PRId64, through);
        Zube__WatchEventBatch *batch = NULL;
        zube_api_error_t error;
        if (zube_api_watch_since (api, "configmaps", "default", since, &batch, &error)
            != ZUBE_OK) {
            snprintf (why, why_size, "since %s: %s", since, error.message);
            return false;
        }
        for (size_t i = 0; i < batch->n_events && next <= count; i++) {
            int64_t rv = strtoll (batch->events[i]->resource_version, NULL, 10);
            if (next == count || rv != rvs[next]) {
                snprintf (why, why_size, "since %s: event %" PRId64 ", expected %" PRId64,
                          since, rv, next < count ? rvs[next] : 0);
                zube__watch_event_batch__free_unpacked (batch, NULL);
                return false;
            }
            next++;
        }
        int64_t reached = strtoll (batch->resource_version, NULL, 10);
        zube__watch_event_batch__free_unpacked (batch, NULL);
        if (reached < rvs[next - 1]) {
            snprintf (why, why_size, "since %s: answered through %" PRId64 " before its events",
                      since, reached);
            return false;
        }
        through = reached;
        if (next < count)
            usleep (20000);
    }
    return true;
}

static int
s_stats (zube_bus_t *bus, bool *publisher_p)
{
    zube_bus_reply_t *reply = NULL;
    int pid = -1;
    if (zube_bus_call (bus, "api", "stats", NULL, 0, 2000, &reply) == 0 &&
        reply->status == ZUBE_OK && reply->payload) {
        char *text = strndup ((const char *)reply->payload, reply->payload_size);
        const char *at = strstr (text, "pid=");
        pid = at ? atoi (at + 4) : -1;
        *publisher_p = strstr (text, "publisher=true") != NULL;
        free (text);
    }
    zube_bus_reply_destroy (&reply);
    return pid;
}

static void
s_run_backend (const char *store)
{
    s_cluster_t cluster;
    bool up = s_start (&cluster, store);
    ZT_ASSERT_MSG (up, "the apiservers did not start (%s); log in %s", cluster.base.why,
                   cluster.base.apiserver_log);
    zube_bus_t *other_bus = zt_cluster_bus_new (&cluster.base, NULL);
    zube_api_t *other = zube_api_new (other_bus);
    zube_bus_t *watcher = zt_cluster_bus_new (&cluster.base, NULL);
    s_events_t *events = calloc (1, sizeof *events);
    ZT_ASSERT (zube_bus_subscribe (watcher, "api/configmaps", s_on_event, events) == 0);
    //  Until one of them holds the lease and the subscription is through
    int64_t deadline = zt_now_ms () + 8000;
    while (zt_now_ms () < deadline) {
        zube_bus_poll (watcher, 100);
        bool publisher = false;
        if (s_stats (cluster.base.bus, &publisher) > 0 && publisher)
            break;
    }
    zube_bus_poll (watcher, 300);

    //  Writes through both instances
    int64_t rvs[200];
    ZT_ASSERT (s_write (&cluster, other, "a", 200, rvs) == 0);
    for (int i = 1; i < 200; i++)
        ZT_ASSERT (rvs[i] > rvs[i - 1]);
    deadline = zt_now_ms () + 5000;
    while (events->count < 200 && zt_now_ms () < deadline)
        zube_bus_poll (watcher, 50);
    zube_bus_poll (watcher, 300);
    ZT_ASSERT_INT_EQ (events->count, 200);
    char why[256];
    int64_t last = 0;
    ZT_ASSERT_MSG (s_check_events (events, rvs, 200, &last, why, sizeof why), "%s", why);

    //  Watch since, asked several times (the broker alternates instances)
    for (int i = 0; i < 4; i++)
        ZT_ASSERT_MSG (s_watch_through (i % 2 ? other : cluster.base.api, rvs + 99, 101, why,
                                        sizeof why),
                       "watch since %" PRId64 ": %s", rvs[99], why);

    //  kill -9 the publisher; the other takes over without a gap
    int publisher_pid = -1;
    for (int i = 0; i < 10 && publisher_pid < 0; i++) {
        bool publisher = false;
        int pid = s_stats (cluster.base.bus, &publisher);
        if (publisher)
            publisher_pid = pid;
    }
    ZT_ASSERT (publisher_pid > 0);
    int victim = cluster.apiservers[0] == publisher_pid ? 0 : 1;
    ZT_ASSERT_INT_EQ (cluster.apiservers[victim], publisher_pid);
    kill (publisher_pid, SIGKILL);
    waitpid (publisher_pid, NULL, 0);
    cluster.apiservers[victim] = 0;
    size_t before = events->count;
    ZT_ASSERT (s_write (&cluster, other, "b", 100, rvs) == 0);
    deadline = zt_now_ms () + 15000;
    while (zt_now_ms () < deadline) {
        zube_bus_poll (watcher, 100);
        bool done = false;
        for (size_t i = before; i < events->count; i++)
            done = done || events->rv[i] == rvs[99];
        if (done)
            break;
    }
    zube_bus_poll (watcher, 300);
    ZT_ASSERT_MSG (s_check_events (events, rvs, 100, &last, why, sizeof why), "%s", why);
    bool publisher = false;
    ZT_ASSERT_INT_EQ (s_stats (cluster.base.bus, &publisher), cluster.apiservers[1 - victim]);
    ZT_ASSERT (publisher);

    zube_bus_destroy (&watcher);
    zube_api_destroy (&other);
    zube_bus_destroy (&other_bus);
    free (events);
    s_stop (&cluster);
}

static void
test_redis (void)
{
    zt_redis_t redis = {0};
    bool up = zt_redis_start (&redis);
    char store[128];
    snprintf (store, sizeof store, "redis://127.0.0.1:%d/0", redis.port);
    if (!up) {
        zt_redis_destroy (&redis);
        ZT_FAIL ("redis-server did not start");
    }
    s_run_backend (store);
    zt_redis_destroy (&redis);
}

static void
test_etcd (void)
{
    zt_etcd_t etcd = {0};
    bool up = zt_etcd_start (&etcd);
    if (!up) {
        zt_etcd_destroy (&etcd);
        ZT_FAIL ("etcd did not start");
    }
    char store[128];
    snprintf (store, sizeof store, "%s", etcd.url);
    s_run_backend (store);
    zt_etcd_destroy (&etcd);
}

int
main (void)
{
    zsys_init ();
    if (zt_which ("redis-server"))
        ZT_RUN (test_redis);
    else
        zt_skip ("test_redis", "redis-server is not installed");
    if (zt_which ("etcd"))
        ZT_RUN (test_etcd);
    else
        zt_skip ("test_etcd", "etcd is not installed");
    return zt_done ();
}
