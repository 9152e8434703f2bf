/*  test_informer - informers against the real zube-broker and zube-apiserver.

    Each case starts its own zube-broker and zube-apiserver (--insecure,
    --store lmdb:DIR) from the build tree on free ports in a temporary
    directory, writes through the apiserver with the api client, and checks
    that the informers' caches end equal to a fresh list of the store (same
    keys, same resourceVersions), that no informer ever saw an object's
    resourceVersion go back, and that lost events were repaired: ZeroMQ is
    made to drop events by a small broker HWM and informer connections that
    stop reading for a while; GONE by an apiserver with a small --window.

    Without a zube-apiserver in the build tree (or with ZT_INFORMER_FAKE=1)
    the cases run against tests/zt_fake_api.h instead, and say so.
    ZT_INFORMER_EVENTS scales the acceptance case (default 100000, 20000
    under AddressSanitizer). */
#define _GNU_SOURCE

#include "../zt_cluster.h"
#include "../zt_fake_api.h"

#include "zube/api.h"
#include "zube/informer.h"
#include "zube/log.h"
#include <czmq.h>

#if defined(__SANITIZE_ADDRESS__)
#define S_DEFAULT_EVENTS 20000
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_DEFAULT_EVENTS 20000
#endif
#endif
#ifndef S_DEFAULT_EVENTS
#define S_DEFAULT_EVENTS 100000
#endif

static char *s_dir;
static zt_cluster_t s_cluster;
static bool s_real; //  the real zube-apiserver, not the fake
static int s_case;

//  --------------------------------------------------------------------------
//  Processes

//  Ready: a list answers (the fake has no default namespaces).
static bool
s_api_ready (zt_cluster_t *cluster)
{
    zube_api_list_t *list = NULL;
    zube_api_list_options_t options = {.limit = 1};
    if (zube_api_list (cluster->api, "pods", &options, &list, NULL) != ZUBE_OK)
        return false;
    zube_api_list_destroy (&list);
    return true;
}

//  A broker (heartbeat 200 ms, HWM broker_hwm or 100000) and the api
//  service (the real one on lmdb, or the fake) with a window of window
//  events, each case's store, data and log apart in s_dir; then the
//  namespaces the cases write in (the apiserver wants them first).
static void
s_setup (int broker_hwm, int window)
{
    s_case++;
    //  What the cluster borrows, kept for a broker restart.
    static char endpoint[64], window_text[16], store[600], data[32], log[32];
    static const char *fake_argv[5];
    int port = zt_free_port (3);
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    snprintf (window_text, sizeof window_text, "%d", window);
    snprintf (store, sizeof store, "lmdb:%s/store-%d", s_dir, s_case);
    snprintf (data, sizeof data, "data-%d", s_case);
    snprintf (log, sizeof log, "apiserver-%d.log", s_case);
    fake_argv[0] = "/proc/self/exe";
    fake_argv[1] = "--child-api";
    fake_argv[2] = endpoint;
    fake_argv[3] = window_text;
    fake_argv[4] = NULL;
    bool up = zt_cluster_start (
        &s_cluster, &(zt_cluster_options_t){.dir = s_dir,
                                           .port = port,
                                           .store = store,
                                           .data_dir = s_real ? data : NULL,
                                           .window = window,
                                           .apiserver_argv = s_real ? NULL : fake_argv,
                                           .heartbeat_ms = 200,
                                           .hwm = broker_hwm > 0 ? broker_hwm : 100000,
                                           .client_heartbeat_ms = 200,
                                           .apiserver_log = log,
                                           .api_timeout_ms = 1000,
                                           .ready = s_api_ready});
    for (int index = 0; up && index < 4; index++) {
        Zube__Namespace ns = ZUBE__NAMESPACE__INIT;
        Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
        char name[16];
        snprintf (name, sizeof name, "ns-%d", index);
        meta.name = name;
        ns.api_version = "v1";
        ns.kind = "Namespace";
        ns.metadata = &meta;
        zube_status_t status =
            zube_api_create (s_cluster.api, "namespaces", NULL, &ns.base, false, NULL, NULL);
        up = status == ZUBE_OK || status == ZUBE_ALREADY_EXISTS;
    }
    ZT_ASSERT_MSG (up, "the api service does not answer (%s): %s",
                   s_real ? zt_program ("zube-apiserver") : "fake", s_cluster.why);
}

static void
s_teardown (void)
{
    zt_cluster_stop (&s_cluster, false);
}

static zube_bus_t *
s_bus_new (int hwm)
{
    return zt_cluster_bus_new (&s_cluster,
                               &(zube_bus_config_t){.heartbeat_ms = 200, .hwm = hwm});
}

//  --------------------------------------------------------------------------
//  Objects and writes

static void
s_label_add (Zube__ObjectMeta *meta, const char *key, const char *value)
{
    meta->labels = realloc (meta->labels, (meta->n_labels + 1) * sizeof *meta->labels);
    Zube__ObjectMeta__LabelsEntry *entry = calloc (1, sizeof *entry);
    zube__object_meta__labels_entry__init (entry);
    entry->key = strdup (key);
    entry->value = strdup (value);
    meta->labels[meta->n_labels++] = entry;
}

static Zube__Pod *
s_pod_new (const char *ns, const char *name, const char *app, const char *node)
{
    Zube__Pod *pod = calloc (1, sizeof *pod);
    zube__pod__init (pod);
    pod->api_version = strdup ("v1");
    pod->kind = strdup ("Pod");
    pod->metadata = calloc (1, sizeof *pod->metadata);
    zube__object_meta__init (pod->metadata);
    pod->metadata->name = strdup (name);
    pod->metadata->namespace_ = strdup (ns);
    if (app)
        s_label_add (pod->metadata, "app", app);
    //  4 KiB of annotation: events big enough that a connection that stops
    //  reading fills its TCP buffers, and ZeroMQ drops at the broker's HWM.
    pod->metadata->n_annotations = 1;
    pod->metadata->annotations = calloc (1, sizeof *pod->metadata->annotations);
    pod->metadata->annotations[0] = calloc (1, sizeof **pod->metadata->annotations);
    zube__object_meta__annotations_entry__init (pod->metadata->annotations[0]);
    pod->metadata->annotations[0]->key = strdup ("example.com/padding");
    pod->metadata->annotations[0]->value = malloc (4097);
    memset (pod->metadata->annotations[0]->value, 'x', 4096);
    pod->metadata->annotations[0]->value[4096] = 0;
    pod->spec = calloc (1, sizeof *pod->spec);
    zube__pod_spec__init (pod->spec);
    pod->spec->n_containers = 1;
    pod->spec->containers = calloc (1, sizeof *pod->spec->containers);
    pod->spec->containers[0] = calloc (1, sizeof **pod->spec->containers);
    zube__container__init (pod->spec->containers[0]);
    pod->spec->containers[0]->name = strdup ("main");
    pod->spec->containers[0]->image = strdup ("registry.local/app:1.0");
    if (node)
        pod->spec->node_name = strdup (node);
    return pod;
}

static zube_status_t
s_create (zube_api_t *api, const char *ns, const char *name, const char *app,
          const char *node)
{
    Zube__Pod *pod = s_pod_new (ns, name, app, node);
    zube_api_error_t error;
    zube_status_t status = zube_api_create (api, "pods", ns, &pod->base, false, NULL, &error);
    static int reported;
    if (status != ZUBE_OK && reported++ < 5)
        printf ("# create %s/%s: %s\n", ns, name, error.message);
    zube__pod__free_unpacked (pod, NULL);
    return status;
}

static zube_status_t
s_relabel (zube_api_t *api, const char *ns, const char *name, const char *key,
           const char *value)
{
    char patch[256];
    snprintf (patch, sizeof patch, "{\"metadata\":{\"labels\":{\"%s\":\"%s\"}}}", key, value);
    return zube_api_patch (api, "pods", ns, name, NULL, patch, NULL, false, NULL, NULL);
}

static zube_status_t
s_delete (zube_api_t *api, const char *ns, const char *name)
{
    zube_api_delete_options_t options = {.grace_period_seconds = 0};
    return zube_api_delete (api, "pods", ns, name, &options, NULL, NULL);
}

//  --------------------------------------------------------------------------
//  Watching what informers do

typedef struct {
    zhashx_t *seen; //  key -> highest rv seen (as a heap uint64)
    uint64_t adds, updates, deletes;
    uint64_t backwards; //  an object's rv that went back (or stood still)
    char first_backwards[256];
} s_tracker_t;

static uint64_t
s_object_rv (const ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    return meta && meta->resource_version ? strtoull (meta->resource_version, NULL, 10) : 0;
}

static void
s_track (s_tracker_t *tracker, const ProtobufCMessage *object, bool allow_equal)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    char key[300];
    snprintf (key, sizeof key, "%s/%s", meta->namespace_, meta->name);
    uint64_t rv = s_object_rv (object);
    uint64_t *last = zhashx_lookup (tracker->seen, key);
    if (last && (rv < *last || (rv == *last && !allow_equal))) {
        if (tracker->backwards++ == 0)
            snprintf (tracker->first_backwards, sizeof tracker->first_backwards,
                      "%.200s: %" PRIu64 " after %" PRIu64, key, rv, *last);
    }
    if (!last) {
        last = malloc (sizeof *last);
        *last = 0;
        zhashx_insert (tracker->seen, key, last);
    }
    if (rv > *last)
        *last = rv;
}

static void
s_on_add (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer;
    s_tracker_t *tracker = arg;
    tracker->adds++;
    s_track (tracker, object, false);
}

static void
s_on_update (zube_informer_t *informer, const ProtobufCMessage *old_object,
             const ProtobufCMessage *new_object, void *arg)
{
    (void)informer;
    s_tracker_t *tracker = arg;
    tracker->updates++;
    if (s_object_rv (new_object) <= s_object_rv (old_object) && tracker->backwards++ == 0)
        snprintf (tracker->first_backwards, sizeof tracker->first_backwards,
                  "update from %" PRIu64 " to %" PRIu64, s_object_rv (old_object),
                  s_object_rv (new_object));
    s_track (tracker, new_object, false);
}

static void
s_on_delete (zube_informer_t *informer, const ProtobufCMessage *object, void *arg)
{
    (void)informer;
    s_tracker_t *tracker = arg;
    tracker->deletes++;
    //  The last state (from a relist) may be the one already seen.
    s_track (tracker, object, true);
}

static void
s_tracker_init (s_tracker_t *tracker)
{
    memset (tracker, 0, sizeof *tracker);
    tracker->seen = zhashx_new ();
    zhashx_set_destructor (tracker->seen, (zhashx_destructor_fn *)zstr_free);
}

static void
s_tracker_fini (s_tracker_t *tracker)
{
    zhashx_destroy (&tracker->seen);
}

static zube_informer_t *
s_informer_new (zube_bus_t *bus, s_tracker_t *tracker, const char *ns, const char *labels,
                const char *node)
{
    zube_informer_t *informer = zube_informer_new (
        bus, &(zube_informer_config_t){.resource = "pods",
                                       .namespace = ns,
                                       .label_selector = labels,
                                       .node_name = node,
                                       .page_size = 100,
                                       .on_add = s_on_add,
                                       .on_update = s_on_update,
                                       .on_delete = s_on_delete,
                                       .arg = tracker});
    if (informer && zube_informer_start (informer) != 0)
        zube_informer_destroy (&informer);
    return informer;
}

static void
s_poll_all (zube_bus_t **buses, size_t count, int ms)
{
    int64_t until = zt_now_ms () + ms;
    do {
        for (size_t index = 0; index < count; index++)
            zube_bus_poll (buses[index], 0);
        usleep (1000);
    } while (zt_now_ms () < until);
}

//  Compares the cache with a fresh list of the store (paged), through a
//  list with the informer's own selection. Returns NULL when equal, else
//  what differs (a static text).
static const char *
s_compare (zube_informer_t *informer, zube_api_t *api, const char *ns, const char *labels,
           const char *node)
{
    static char why[512];
    char fields[128] = "";
    if (node)
        snprintf (fields, sizeof fields, "spec.nodeName=%s", node);
    zube_api_list_options_t options = {.namespace = ns,
                                       .label_selector = labels,
                                       .field_selector = node ? fields : NULL,
                                       .limit = 1000};
    size_t listed = 0;
    char *token = NULL;
    do {
        zube_api_list_t *list = NULL;
        zube_api_error_t error;
        options.continue_token = token;
        if (zube_api_list (api, "pods", &options, &list, &error) != ZUBE_OK) {
            snprintf (why, sizeof why, "list failed: %.400s", error.message);
            free (token);
            return why;
        }
        free (token);
        token = list->continue_token ? strdup (list->continue_token) : NULL;
        for (size_t index = 0; index < list->count; index++) {
            Zube__ObjectMeta *meta = zube_object_meta (list->items[index]);
            char key[300];
            snprintf (key, sizeof key, "%s/%s", meta->namespace_, meta->name);
            uint64_t rv = s_object_rv (list->items[index]);
            uint64_t cached = zube_informer_object_rv (informer, key);
            if (cached != rv) {
                snprintf (why, sizeof why, "%s: store rv %" PRIu64 ", cache rv %" PRIu64,
                          key, rv, cached);
                zube_api_list_destroy (&list);
                free (token);
                return why;
            }
            listed++;
        }
        zube_api_list_destroy (&list);
    } while (token);
    if (listed != zube_informer_count (informer)) {
        snprintf (why, sizeof why, "store has %zu objects, cache %zu", listed,
                  zube_informer_count (informer));
        return why;
    }
    return NULL;
}

typedef struct {
    zube_informer_t *informer;
    const char *ns, *labels, *node;
    s_tracker_t tracker;
    zube_bus_t *bus;
} s_watcher_t;

//  Polls until every watcher's cache equals the store, or timeout_ms.
//  Returns NULL, or the first difference.
static const char *
s_converge (s_watcher_t *watchers, size_t count, zube_bus_t **buses, size_t bus_count,
            zube_api_t *api, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    const char *why = "timeout";
    while (zt_now_ms () < until) {
        s_poll_all (buses, bus_count, 300);
        why = NULL;
        for (size_t index = 0; index < count && !why; index++)
            why = s_compare (watchers[index].informer, api, watchers[index].ns,
                             watchers[index].labels, watchers[index].node);
        if (!why)
            return NULL;
    }
    return why;
}

static void
s_print_stats (const char *name, zube_informer_t *informer)
{
    zube_informer_stats_t stats;
    zube_informer_stats (informer, &stats);
    printf ("# %s: events=%" PRIu64 " applied=%" PRIu64 " ignored=%" PRIu64 " gaps=%" PRIu64
            " watches=%" PRIu64 " resyncs=%" PRIu64 " resync_hits=%" PRIu64
            " repaired=%" PRIu64 " lists=%" PRIu64 " relists=%" PRIu64 " errors=%" PRIu64
            " held=%" PRIu64 " dropped=%" PRIu64 "\n",
            name, stats.events, stats.applied, stats.ignored, stats.gaps, stats.watches,
            stats.resyncs, stats.resync_hits, stats.repaired, stats.lists, stats.relists,
            stats.errors, stats.held, stats.dropped);
}

//  --------------------------------------------------------------------------
//  Asynchronous writers

typedef struct {
    zube_bus_t *bus;
    zube_api_t *api;
    size_t in_flight;
    uint64_t ok, failed;
} s_writer_t;

static void
s_write_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
              const zube_api_error_t *error, void *arg)
{
    (void)api, (void)error;
    s_writer_t *writer = arg;
    writer->in_flight--;
    if (status == ZUBE_OK)
        writer->ok++;
    else
        writer->failed++;
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
}

static void
s_write_async (s_writer_t *writer, int op, const char *ns, const char *name,
               const char *value)
{
    int rc;
    if (op == 0) { //  create
        Zube__Pod *pod = s_pod_new (ns, name, value, NULL);
        size_t size = protobuf_c_message_get_packed_size (&pod->base);
        uint8_t *data = malloc (size + 1);
        protobuf_c_message_pack (&pod->base, data);
        Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
        request.resource = "pods";
        request.namespace_ = (char *)ns;
        request.has_object = 1;
        request.object.data = data;
        request.object.len = size;
        rc = zube_api_call_async (writer->api, "create", &request.base,
                                  &zube__object_reply__descriptor, s_write_done, writer);
        free (data);
        zube__pod__free_unpacked (pod, NULL);
    } else if (op == 1) { //  relabel
        char patch[256];
        snprintf (patch, sizeof patch, "{\"metadata\":{\"labels\":{\"gen\":\"%s\"}}}", value);
        Zube__PatchRequest request = ZUBE__PATCH_REQUEST__INIT;
        request.resource = "pods";
        request.namespace_ = (char *)ns;
        request.name = (char *)name;
        request.patch_type = "application/merge-patch+json";
        request.has_patch = 1;
        request.patch.data = (uint8_t *)patch;
        request.patch.len = strlen (patch);
        rc = zube_api_call_async (writer->api, "patch", &request.base,
                                  &zube__object_reply__descriptor, s_write_done, writer);
    } else { //  delete
        Zube__DeleteRequest request = ZUBE__DELETE_REQUEST__INIT;
        request.resource = "pods";
        request.namespace_ = (char *)ns;
        request.name = (char *)name;
        request.has_grace_period_seconds = 1;
        request.grace_period_seconds = 0;
        rc = zube_api_call_async (writer->api, "delete", &request.base,
                                  &zube__object_reply__descriptor, s_write_done, writer);
    }
    if (rc == 0)
        writer->in_flight++;
    else
        writer->failed++;
}

//  Writes about `count` changes (relabels mostly, some deletes and
//  re-creates) of the pods ns-<0..3>/p-<0..pool-1> from the writers,
//  at most `window` in flight per writer, polling `buses` (except those
//  stalled) meanwhile. stall_fn decides which informer buses are not read.
typedef bool (s_stall_fn) (size_t bus_index, uint64_t written, void *arg);

static uint64_t
s_write_many (s_writer_t *writers, size_t writer_count, zube_bus_t **buses,
              size_t bus_count, uint64_t count, int pool, s_stall_fn *stall, void *arg,
              void (*midway) (void *), void *midway_arg)
{
    bool *exists = calloc ((size_t)pool * 4, sizeof *exists);
    for (int index = 0; index < pool * 4; index++)
        exists[index] = true; //  created beforehand
    uint64_t issued = 0, generation = 0;
    bool midway_done = midway == NULL;
    int64_t give_up = zt_now_ms () + 600000;
    while (issued < count && zt_now_ms () < give_up) {
        for (size_t index = 0; index < writer_count && issued < count; index++) {
            s_writer_t *writer = &writers[index];
            while (writer->in_flight < 100 && issued < count) {
                int slot = (int)((uint64_t)random () % ((uint64_t)pool * 4));
                char ns[16], name[32], value[32];
                snprintf (ns, sizeof ns, "ns-%d", slot % 4);
                snprintf (name, sizeof name, "p-%d", slot / 4);
                snprintf (value, sizeof value, "g%" PRIu64, ++generation);
                int op;
                if (!exists[slot]) {
                    op = 0;
                    exists[slot] = true;
                    snprintf (value, sizeof value, "%s", slot % 2 ? "odd" : "even");
                } else if ((uint64_t)random () % 10 == 0) {
                    op = 2;
                    exists[slot] = false;
                } else
                    op = 1;
                s_write_async (writer, op, ns, name, value);
                issued++;
            }
            zube_bus_poll (writer->bus, 0);
        }
        for (size_t index = 0; index < bus_count; index++)
            if (!stall || !stall (index, issued, arg))
                zube_bus_poll (buses[index], 0);
        if (!midway_done && issued >= count / 2) {
            midway_done = true;
            midway (midway_arg);
        }
    }
    //  Let the last writes finish.
    int64_t until = zt_now_ms () + 60000;
    bool busy = true;
    while (busy && zt_now_ms () < until) {
        busy = false;
        for (size_t index = 0; index < writer_count; index++) {
            zube_bus_poll (writers[index].bus, 0);
            busy |= writers[index].in_flight > 0;
        }
        for (size_t index = 0; index < bus_count; index++)
            zube_bus_poll (buses[index], 0);
        usleep (500);
    }
    free (exists);
    return issued;
}

static void
s_populate (zube_api_t *api, int pool)
{
    for (int index = 0; index < pool * 4; index++) {
        char ns[16], name[32];
        snprintf (ns, sizeof ns, "ns-%d", index % 4);
        snprintf (name, sizeof name, "p-%d", index / 4);
        s_create (api, ns, name, index % 2 ? "odd" : "even", NULL);
    }
}

static void
s_writers_new (s_writer_t *writers, size_t count)
{
    for (size_t index = 0; index < count; index++) {
        writers[index] = (s_writer_t){.bus = s_bus_new (0)};
        writers[index].api = zube_api_new (writers[index].bus);
        zube_api_set_timeout (writers[index].api, 30000);
    }
}

static void
s_writers_destroy (s_writer_t *writers, size_t count)
{
    for (size_t index = 0; index < count; index++) {
        zube_api_destroy (&writers[index].api);
        zube_bus_destroy (&writers[index].bus);
    }
}

//  --------------------------------------------------------------------------
//  Cases

//  The first list, then events; callbacks; the indexes.
static void
test_list_events_and_indexes (void)
{
    s_setup (0, 100000);
    zube_bus_t *writer_bus = s_bus_new (0);
    zube_api_t *api = zube_api_new (writer_bus);
    for (int index = 0; index < 30; index++) {
        char ns[16], name[16];
        snprintf (ns, sizeof ns, "ns-%d", index % 3);
        snprintf (name, sizeof name, "pod-%d", index);
        ZT_ASSERT_INT_EQ (s_create (api, ns, name, index % 2 ? "b" : "a", NULL), ZUBE_OK);
    }
    for (int index = 0; index < 10; index++) {
        char ns[16], name[16];
        snprintf (ns, sizeof ns, "ns-%d", index % 3);
        snprintf (name, sizeof name, "pod-%d", index);
        ZT_ASSERT_INT_EQ (zube_api_bind (api, ns, name, index % 2 ? "node-2" : "node-1", NULL),
                          ZUBE_OK);
    }
    zube_bus_t *bus = s_bus_new (0);
    s_watcher_t watcher = {.bus = bus};
    s_tracker_init (&watcher.tracker);
    watcher.informer = s_informer_new (bus, &watcher.tracker, NULL, NULL, NULL);
    ZT_ASSERT (watcher.informer);
    ZT_ASSERT (!zube_informer_has_synced (watcher.informer));
    ZT_ASSERT_STR_EQ (zube_informer_topic (watcher.informer), "api/pods");
    ZT_ASSERT (zube_informer_wait_synced (watcher.informer, 10000));
    ZT_ASSERT_INT_EQ (zube_informer_count (watcher.informer), 30);
    ZT_ASSERT_INT_EQ (watcher.tracker.adds, 30);
    ZT_ASSERT (atoll (zube_informer_resource_version (watcher.informer)) >= 40);

    //  Events: 5 new, 5 relabelled, 5 deleted
    for (int index = 30; index < 35; index++) {
        char name[16];
        snprintf (name, sizeof name, "pod-%d", index);
        ZT_ASSERT_INT_EQ (s_create (api, "ns-0", name, "c", NULL), ZUBE_OK);
    }
    for (int index = 10; index < 15; index++) {
        char ns[16], name[16];
        snprintf (ns, sizeof ns, "ns-%d", index % 3);
        snprintf (name, sizeof name, "pod-%d", index);
        ZT_ASSERT_INT_EQ (s_relabel (api, ns, name, "app", "c"), ZUBE_OK);
    }
    for (int index = 25; index < 30; index++) {
        char ns[16], name[16];
        snprintf (ns, sizeof ns, "ns-%d", index % 3);
        snprintf (name, sizeof name, "pod-%d", index);
        ZT_ASSERT_INT_EQ (s_delete (api, ns, name), ZUBE_OK);
    }
    const char *why = s_converge (&watcher, 1, &bus, 1, api, 10000);
    ZT_ASSERT_MSG (!why, "not converged: %s", why);
    ZT_ASSERT_INT_EQ (watcher.tracker.adds, 35);
    ZT_ASSERT_INT_EQ (watcher.tracker.updates, 5);
    ZT_ASSERT_INT_EQ (watcher.tracker.deletes, 5);
    ZT_ASSERT_INT_EQ (watcher.tracker.backwards, 0);
    ZT_ASSERT_INT_EQ (zube_informer_count (watcher.informer), 30);
    //  A quiet stream is asked watch since after resync_ms (1 s)
    zube_informer_stats_t stats;
    zube_informer_stats (watcher.informer, &stats);
    uint64_t resyncs = stats.resyncs;
    s_poll_all (&bus, 1, 1500);
    zube_informer_stats (watcher.informer, &stats);
    ZT_ASSERT (stats.resyncs > resyncs);

    //  Lookups
    const ProtobufCMessage *pod = zube_informer_get (watcher.informer, "ns-1", "pod-1");
    ZT_ASSERT (pod);
    ZT_ASSERT_STR_EQ (((const Zube__Pod *)pod)->spec->node_name, "node-2");
    ZT_ASSERT (zube_informer_get_by_key (watcher.informer, "ns-1/pod-1") == pod);
    ZT_ASSERT (zube_informer_get (watcher.informer, "ns-1", "pod-25") == NULL);
    size_t count = 0;
    const ProtobufCMessage **items = zube_informer_list (watcher.informer, &count);
    ZT_ASSERT_INT_EQ (count, 30);
    ZT_ASSERT_STR_EQ (zube_object_meta (items[0])->name, "pod-0"); //  "ns-0/pod-0" first
    free (items);
    //  ns-0 holds pod-0,3,...,24 (9, minus none deleted: 27 is deleted) + 30..34
    items = zube_informer_list_namespace (watcher.informer, "ns-0", &count);
    size_t expected = 0;
    for (int index = 0; index < 35; index++)
        if ((index < 30 && index % 3 == 0 && !(index >= 25 && index < 30)) || index >= 30)
            expected++;
    ZT_ASSERT_INT_EQ (count, expected);
    free (items);
    items = zube_informer_list_label (watcher.informer, "app", "c", &count);
    ZT_ASSERT_INT_EQ (count, 10);
    free (items);
    items = zube_informer_list_label (watcher.informer, "app", "nothing", &count);
    ZT_ASSERT (items == NULL && count == 0);
    zube_selector_t *selector = NULL;
    char error[256];
    ZT_ASSERT_INT_EQ (zube_selector_parse ("app in (a,b)", &selector, error, sizeof error), 0);
    items = zube_informer_list_selector (watcher.informer, NULL, selector, &count);
    ZT_ASSERT_INT_EQ (count, 30 - 5 - 5 + 0); //  25..29 deleted, 10..14 now c
    free (items);
    items = zube_informer_list_selector (watcher.informer, "ns-2", selector, &count);
    for (size_t index = 0; index < count; index++)
        ZT_ASSERT_STR_EQ (zube_object_meta (items[index])->namespace_, "ns-2");
    free (items);
    zube_selector_destroy (&selector);
    items = zube_informer_list_node (watcher.informer, "node-1", &count);
    ZT_ASSERT_INT_EQ (count, 5);
    for (size_t index = 0; index < count; index++)
        ZT_ASSERT_STR_EQ (((const Zube__Pod *)items[index])->spec->node_name, "node-1");
    free (items);
    items = zube_informer_list_node (watcher.informer, "", &count);
    ZT_ASSERT_INT_EQ (count, 20);
    free (items);
    s_print_stats ("informer", watcher.informer);

    zube_informer_destroy (&watcher.informer);
    ZT_ASSERT (watcher.informer == NULL);
    s_tracker_fini (&watcher.tracker);
    zube_bus_destroy (&bus);
    zube_api_destroy (&api);
    zube_bus_destroy (&writer_bus);
    s_teardown ();
}

//  A node's informer (node/<name>/pods) sees that node's pods only; a
//  namespace informer and an all-pods informer share its connection.
static void
test_node_informer (void)
{
    s_setup (0, 100000);
    zube_bus_t *writer_bus = s_bus_new (0);
    zube_api_t *api = zube_api_new (writer_bus);
    zube_bus_t *bus = s_bus_new (0);
    s_watcher_t watchers[3] = {{.bus = bus, .node = "node-1"},
                               {.bus = bus, .ns = "ns-1"},
                               {.bus = bus}};
    for (int index = 0; index < 3; index++) {
        s_tracker_init (&watchers[index].tracker);
        watchers[index].informer = s_informer_new (bus, &watchers[index].tracker,
                                                   watchers[index].ns, NULL,
                                                   watchers[index].node);
        ZT_ASSERT (watchers[index].informer);
    }
    ZT_ASSERT_STR_EQ (zube_informer_topic (watchers[0].informer), "node/node-1/pods");
    for (int index = 0; index < 3; index++)
        ZT_ASSERT (zube_informer_wait_synced (watchers[index].informer, 10000));
    ZT_ASSERT_INT_EQ (zube_informer_count (watchers[0].informer), 0);
    for (int index = 0; index < 20; index++) {
        char ns[16], name[16];
        snprintf (ns, sizeof ns, "ns-%d", index % 2);
        snprintf (name, sizeof name, "pod-%d", index);
        ZT_ASSERT_INT_EQ (s_create (api, ns, name, "a", NULL), ZUBE_OK);
        if (index % 4 != 3)
            ZT_ASSERT_INT_EQ (zube_api_bind (api, ns, name, index % 4 == 0 ? "node-1"
                                                             : "node-2",
                                             NULL),
                              ZUBE_OK);
    }
    ZT_ASSERT_INT_EQ (s_delete (api, "ns-0", "pod-0"), ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_relabel (api, "ns-0", "pod-4", "app", "b"), ZUBE_OK);
    const char *why = s_converge (watchers, 3, &bus, 1, api, 10000);
    ZT_ASSERT_MSG (!why, "not converged: %s", why);
    //  node-1 had pod-0, 4, 8, 12, 16; pod-0 deleted
    ZT_ASSERT_INT_EQ (zube_informer_count (watchers[0].informer), 4);
    ZT_ASSERT_INT_EQ (watchers[0].tracker.adds, 5);
    ZT_ASSERT_INT_EQ (watchers[0].tracker.deletes, 1);
    ZT_ASSERT_INT_EQ (watchers[0].tracker.updates, 1);
    ZT_ASSERT_INT_EQ (zube_informer_count (watchers[1].informer), 10);
    ZT_ASSERT_INT_EQ (zube_informer_count (watchers[2].informer), 19);
    size_t count = 0;
    const ProtobufCMessage **items = zube_informer_list_node (watchers[0].informer,
                                                              "node-2", &count);
    ZT_ASSERT (items == NULL && count == 0);
    for (int index = 0; index < 3; index++) {
        ZT_ASSERT_INT_EQ (watchers[index].tracker.backwards, 0);
        zube_informer_destroy (&watchers[index].informer);
        s_tracker_fini (&watchers[index].tracker);
    }
    zube_bus_destroy (&bus);
    zube_api_destroy (&api);
    zube_bus_destroy (&writer_bus);
    s_teardown ();
}

typedef struct {
    int64_t stall_until;
} s_stall_state_t;

static bool
s_stall_always (size_t bus_index, uint64_t written, void *arg)
{
    (void)bus_index, (void)written, (void)arg;
    return true;
}

//  The informer's connection stops reading (receive HWM 20, broker HWM
//  500) while thousands of events are published: ZeroMQ drops, the
//  informer finds the gaps and repairs them with watch since.
static void
test_gap_repair (void)
{
    s_setup (500, 100000);
    s_writer_t writers[2];
    s_writers_new (writers, 2);
    s_populate (writers[0].api, 50);
    zube_bus_t *bus = s_bus_new (20);
    s_watcher_t watcher = {.bus = bus};
    s_tracker_init (&watcher.tracker);
    watcher.informer = s_informer_new (bus, &watcher.tracker, NULL, NULL, NULL);
    ZT_ASSERT (watcher.informer && zube_informer_wait_synced (watcher.informer, 10000));
    s_write_many (writers, 2, &bus, 1, 5000, 50, s_stall_always, NULL, NULL, NULL);
    //  Then a trickle, read live, so that the gaps show.
    s_write_many (writers, 2, &bus, 1, 50, 50, NULL, NULL, NULL, NULL);
    ZT_ASSERT_MSG (writers[0].ok + writers[1].ok >= 4000, "%" PRIu64 " writes ok",
                   writers[0].ok + writers[1].ok);
    const char *why = s_converge (&watcher, 1, &bus, 1, writers[0].api, 20000);
    s_print_stats ("gap repair", watcher.informer);
    ZT_ASSERT_MSG (!why, "not converged: %s", why);
    zube_informer_stats_t stats;
    zube_informer_stats (watcher.informer, &stats);
    ZT_ASSERT_MSG (stats.gaps + stats.resync_hits > 0, "no event was lost: no repair tested");
    ZT_ASSERT (stats.repaired > 0);
    ZT_ASSERT_INT_EQ (stats.relists, 0);
    ZT_ASSERT_MSG (watcher.tracker.backwards == 0, "rv went back: %s",
                   watcher.tracker.first_backwards);
    zube_informer_destroy (&watcher.informer);
    s_tracker_fini (&watcher.tracker);
    zube_bus_destroy (&bus);
    s_writers_destroy (writers, 2);
    s_teardown ();
}

//  Past the apiserver's window (--window 200) watch since is GONE: the
//  informer relists and reports the difference, deletions included.
static void
test_relist_after_gone (void)
{
    s_setup (500, 200);
    s_writer_t writers[2];
    s_writers_new (writers, 2);
    s_populate (writers[0].api, 50);
    zube_bus_t *bus = s_bus_new (20);
    s_watcher_t watcher = {.bus = bus};
    s_tracker_init (&watcher.tracker);
    watcher.informer = s_informer_new (bus, &watcher.tracker, NULL, NULL, NULL);
    ZT_ASSERT (watcher.informer && zube_informer_wait_synced (watcher.informer, 10000));
    s_write_many (writers, 2, &bus, 1, 4000, 50, s_stall_always, NULL, NULL, NULL);
    const char *why = s_converge (&watcher, 1, &bus, 1, writers[0].api, 20000);
    s_print_stats ("relist", watcher.informer);
    ZT_ASSERT_MSG (!why, "not converged: %s", why);
    zube_informer_stats_t stats;
    zube_informer_stats (watcher.informer, &stats);
    ZT_ASSERT (stats.relists >= 1);
    ZT_ASSERT (stats.lists >= 2);
    ZT_ASSERT (watcher.tracker.deletes > 0);
    ZT_ASSERT_MSG (watcher.tracker.backwards == 0, "rv went back: %s",
                   watcher.tracker.first_backwards);
    zube_informer_destroy (&watcher.informer);
    s_tracker_fini (&watcher.tracker);
    zube_bus_destroy (&bus);
    s_writers_destroy (writers, 2);
    s_teardown ();
}

static void
s_restart_broker (void *arg)
{
    zube_bus_t **buses = arg;
    (void)buses;
    zt_cluster_kill_broker (&s_cluster, SIGKILL);
    usleep (300000);
    if (!zt_cluster_start_broker (&s_cluster))
        printf ("# broker did not come back\n");
    printf ("# broker restarted\n");
}

//  The broker is killed and restarted mid-stream.
static void
test_broker_restart (void)
{
    s_setup (0, 100000);
    s_writer_t writers[2];
    s_writers_new (writers, 2);
    s_populate (writers[0].api, 50);
    zube_bus_t *bus = s_bus_new (0);
    s_watcher_t watchers[2] = {{.bus = bus}, {.bus = bus, .ns = "ns-2"}};
    for (int index = 0; index < 2; index++) {
        s_tracker_init (&watchers[index].tracker);
        watchers[index].informer = s_informer_new (bus, &watchers[index].tracker,
                                                   watchers[index].ns, NULL, NULL);
        ZT_ASSERT (watchers[index].informer
                   && zube_informer_wait_synced (watchers[index].informer, 10000));
    }
    s_write_many (writers, 2, &bus, 1, 3000, 50, NULL, NULL, s_restart_broker, NULL);
    ZT_ASSERT_MSG (writers[0].ok + writers[1].ok >= 2000, "%" PRIu64 " writes ok",
                   writers[0].ok + writers[1].ok);
    const char *why = s_converge (watchers, 2, &bus, 1, writers[0].api, 30000);
    for (int index = 0; index < 2; index++)
        s_print_stats (index ? "restart ns-2" : "restart all", watchers[index].informer);
    ZT_ASSERT_MSG (!why, "not converged: %s", why);
    ZT_ASSERT (zube_bus_reconnects (bus) >= 1);
    for (int index = 0; index < 2; index++) {
        ZT_ASSERT_MSG (watchers[index].tracker.backwards == 0, "rv went back: %s",
                       watchers[index].tracker.first_backwards);
        zube_informer_destroy (&watchers[index].informer);
        s_tracker_fini (&watchers[index].tracker);
    }
    zube_bus_destroy (&bus);
    s_writers_destroy (writers, 2);
    s_teardown ();
}

//  Informer connections take turns not reading for 400 ms.
static bool
s_stall_in_turn (size_t bus_index, uint64_t written, void *arg)
{
    (void)written, (void)arg;
    int64_t slot = zt_now_ms () / 400;
    return slot % 8 == (int64_t)bus_index;
}

//  The acceptance test: 10 informers on 5 connections (receive HWM
//  50, broker HWM 1000, connections stalled in turn), N writes from 3
//  writer connections through the apiserver, the broker killed and
//  restarted halfway. Every cache ends equal to the store, and no
//  informer saw an object's resourceVersion go back.
static void
test_acceptance_10_informers (void)
{
    const char *env = getenv ("ZT_INFORMER_EVENTS");
    uint64_t events = env ? strtoull (env, NULL, 10) : S_DEFAULT_EVENTS;
    s_setup (1000, 100000);
    s_writer_t writers[3];
    s_writers_new (writers, 3);
    enum { POOL = 250, BUSES = 5, INFORMERS = 10 };
    s_populate (writers[0].api, POOL);
    zube_bus_t *buses[BUSES];
    for (int index = 0; index < BUSES; index++)
        buses[index] = s_bus_new (50);
    static const char *labels[] = {NULL, "app=odd"};
    s_watcher_t watchers[INFORMERS];
    memset (watchers, 0, sizeof watchers);
    for (int index = 0; index < INFORMERS; index++) {
        s_watcher_t *watcher = &watchers[index];
        watcher->bus = buses[index % BUSES];
        //  all pods; one namespace; a label selector
        if (index % 3 == 1)
            watcher->ns = index % 2 ? "ns-1" : "ns-2";
        else if (index % 3 == 2)
            watcher->labels = labels[1];
        s_tracker_init (&watcher->tracker);
        watcher->informer =
            s_informer_new (watcher->bus, &watcher->tracker, watcher->ns, watcher->labels, NULL);
        ZT_ASSERT (watcher->informer);
    }
    for (int index = 0; index < INFORMERS; index++)
        ZT_ASSERT (zube_informer_wait_synced (watchers[index].informer, 20000));
    int64_t started = zt_now_ms ();
    uint64_t issued = s_write_many (writers, 3, buses, BUSES, events, POOL, s_stall_in_turn,
                                    NULL, s_restart_broker, NULL);
    int64_t written = zt_now_ms ();
    const char *why = s_converge (watchers, INFORMERS, buses, BUSES, writers[0].api, 60000);
    int64_t converged = zt_now_ms ();
    uint64_t ok = 0, failed = 0;
    for (int index = 0; index < 3; index++) {
        ok += writers[index].ok;
        failed += writers[index].failed;
    }
    printf ("# %s apiserver: %" PRIu64 " writes issued (%" PRIu64 " ok, %" PRIu64
            " failed) in %.1f s (%.0f/s); caches equal to the store %.1f s after the last "
            "write\n",
            s_real ? "real" : "FAKE", issued, ok, failed, (written - started) / 1000.0,
            ok * 1000.0 / (double)(written - started > 0 ? written - started : 1),
            (converged - written) / 1000.0);
    uint64_t gaps = 0, relists = 0, watches = 0, resync_hits = 0, events_seen = 0;
    for (int index = 0; index < INFORMERS; index++) {
        zube_informer_stats_t stats;
        zube_informer_stats (watchers[index].informer, &stats);
        gaps += stats.gaps;
        relists += stats.relists;
        watches += stats.watches;
        resync_hits += stats.resync_hits;
        events_seen += stats.events;
        char name[32];
        snprintf (name, sizeof name, "informer %d", index);
        s_print_stats (name, watchers[index].informer);
    }
    printf ("# all informers: %" PRIu64 " events received, %" PRIu64 " gaps, %" PRIu64
            " watch calls, %" PRIu64 " resyncs that found events, %" PRIu64 " relists\n",
            events_seen, gaps, watches, resync_hits, relists);
    ZT_ASSERT_MSG (!why, "not converged: %s", why);
    ZT_ASSERT (ok >= issued * 8 / 10);
    ZT_ASSERT (gaps + resync_hits + relists > 0);
    for (int index = 0; index < INFORMERS; index++) {
        ZT_ASSERT_MSG (watchers[index].tracker.backwards == 0, "informer %d: rv went back: %s",
                       index, watchers[index].tracker.first_backwards);
        zube_informer_destroy (&watchers[index].informer);
        s_tracker_fini (&watchers[index].tracker);
    }
    for (int index = 0; index < BUSES; index++)
        zube_bus_destroy (&buses[index]);
    s_writers_destroy (writers, 3);
    s_teardown ();
}

//  BOOKMARK events (zube-apiserver --bookmark-interval 0.2) move a quiet
//  informer's resourceVersion past its topic's last event, with no watch
//  call (resync off) and nothing changed in the cache.
static void
test_bookmarks (void)
{
    if (!s_real) {
        printf ("# the fake api sends no bookmarks: nothing checked\n");
        return;
    }
    static const char *const args[] = {"--bookmark-interval", "0.2", NULL};
    bool up = zt_cluster_start (&s_cluster,
                                &(zt_cluster_options_t){.tag = "informer-bookmarks",
                                                        .apiserver_args = args,
                                                        .ready_timeout_ms = 15000});
    ZT_ASSERT_MSG (up, "the apiserver did not start: %s", s_cluster.why);
    if (!up)
        return;
    zube_informer_t *informer = zube_informer_new (
        s_cluster.bus, &(zube_informer_config_t){.resource = "configmaps", .resync_ms = -1});
    ZT_ASSERT (informer && zube_informer_start (informer) == 0);
    ZT_ASSERT (zube_informer_wait_synced (informer, 10000));
    Zube__ConfigMap map = ZUBE__CONFIG_MAP__INIT;
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    meta.name = "quiet";
    map.metadata = &meta;
    ZT_ASSERT_INT_EQ (zube_api_create (s_cluster.api, "configmaps", "default", &map.base,
                                       false, NULL, NULL),
                      ZUBE_OK);
    //  The informer has it (from its event or, if the subscription was
    //  not yet heard, from the repair a bookmark's prev starts)
    int64_t deadline = zt_now_ms () + 15000;
    while (zube_informer_count (informer) < 1 && zt_now_ms () < deadline)
        zube_bus_poll (s_cluster.bus, 50);
    ZT_ASSERT_INT_EQ (zube_informer_count (informer), 1);
    zube_informer_stats_t before;
    zube_informer_stats (informer, &before);
    //  A write elsewhere moves the revision past the topic's last event
    Zube__Secret secret = ZUBE__SECRET__INIT;
    secret.metadata = &meta;
    ProtobufCMessage *stored = NULL;
    ZT_ASSERT_INT_EQ (zube_api_create (s_cluster.api, "secrets", "default", &secret.base,
                                       false, &stored, NULL),
                      ZUBE_OK);
    Zube__ObjectMeta *stored_meta = stored ? zube_object_meta (stored) : NULL;
    uint64_t wanted =
        stored_meta ? strtoull (stored_meta->resource_version, NULL, 10) : UINT64_MAX;
    if (stored)
        protobuf_c_message_free_unpacked (stored, NULL);
    deadline = zt_now_ms () + 15000;
    while (strtoull (zube_informer_resource_version (informer), NULL, 10) < wanted &&
           zt_now_ms () < deadline)
        zube_bus_poll (s_cluster.bus, 50);
    ZT_ASSERT (strtoull (zube_informer_resource_version (informer), NULL, 10) >= wanted);
    zube_informer_stats_t after;
    zube_informer_stats (informer, &after);
    ZT_ASSERT_INT_EQ (after.watches, before.watches);
    ZT_ASSERT_INT_EQ (after.relists, 0);
    ZT_ASSERT_INT_EQ (zube_informer_count (informer), 1);
    zube_informer_destroy (&informer);
    zt_cluster_stop (&s_cluster, zt_failed_count > 0);
}

int
main (int argc, char *argv[])
{
    if (argc >= 4 && streq (argv[1], "--child-api")) {
        zube_log_set_component ("fake-api");
        return zt_fake_api_run (argv[2], (size_t)atoll (argv[3]));
    }
    zube_log_set_level (getenv ("ZUBE_TEST_DEBUG") ? ZUBE_LOG_DEBUG : ZUBE_LOG_ERROR);
    s_real = access (zt_program ("zube-apiserver"), X_OK) == 0 && !getenv ("ZT_INFORMER_FAKE");
    if (!s_real)
        printf ("# no zube-apiserver in the build tree: against the in-test fake\n");
    s_dir = zt_tempdir ("informer");
    const char *only = getenv ("ZT_INFORMER_CASE");
#define S_CASE(fn)                                                                      \
    do {                                                                                \
        if (!only || strstr (#fn, only))                                                \
            ZT_RUN (fn);                                                                \
        s_teardown ();                                                                  \
    } while (0)
    S_CASE (test_list_events_and_indexes);
    S_CASE (test_node_informer);
    S_CASE (test_gap_repair);
    S_CASE (test_relist_after_gone);
    S_CASE (test_broker_restart);
    S_CASE (test_acceptance_10_informers);
    S_CASE (test_bookmarks);
    if (zt_failed_count == 0 && !getenv ("ZUBE_TEST_KEEP"))
        zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
