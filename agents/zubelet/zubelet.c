/*  zubelet - the loop: one bus connection, the runtime's tick, a timer
    heap; the pod watch of all the process's nodes.

    Pod watch. The apiserver publishes every event of a pod bound to node
    X on `node/X/pods`, stamped with the previous revision of that topic.
    The zubelet subscribes once, to `node/<X>/pods` for one node or to
    the prefix `node/<prefix>` for hollow nodes, and drops topics of
    nodes it does not host (one hash lookup, before unpacking anything).
    It lists the bound pods once (paged, field selector
    spec.nodeName!=, filtered locally) and keeps two numbers: per node
    the revision of the last event applied from its topic, and one
    process-wide watermark W: every event of its nodes up to W has been
    applied. An event whose prev is above max(node's, W) reveals a gap;
    a gap, or a quiet second, triggers one `watch` since W for all bound
    pods (not one per node), which moves W to the revision the reply
    reached. GONE relists. So thousands of nodes cost one subscription,
    one list and one watch call a second, not an informer each. */
#define _GNU_SOURCE
#include "zubelet.h"
#include "zube/log.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZL_RESYNC_MS 1000
#define ZL_STATS_MS 60000
#define ZL_LIST_PAGE 500
#define ZL_PROBE_SLICE_MS 10

//  ---------------------------------------------------------------------
//  Time

int64_t
zl_now_mono (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
zl_now_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
zl_format_time (int64_t wall_ms, char *buf, size_t size)
{
    time_t seconds = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    strftime (buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
zl_format_micro_time (int64_t wall_us, char *buf, size_t size)
{
    time_t seconds = (time_t)(wall_us / 1000000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    char base[32];
    strftime (base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf, size, "%s.%06dZ", base, (int)(wall_us % 1000000));
}

int64_t
zl_parse_time_ms (const char *text)
{
    if (!text || !*text)
        return 0;
    struct tm tm = {0};
    const char *rest = strptime (text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return 0;
    int64_t ms = (int64_t)timegm (&tm) * 1000;
    if (*rest == '.') {
        int64_t scale = 100;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
            ms += (*rest - '0') * scale;
            scale /= 10;
        }
    }
    return ms;
}

void
zl_json_string (char **buf, size_t *size, size_t *used, const char *text)
{
    size_t need = *used + strlen (text) * 6 + 3;
    if (need > *size) {
        size_t size_new = need * 2;
        char *grown = realloc (*buf, size_new);
        if (!grown)
            return;
        *buf = grown;
        *size = size_new;
    }
    char *out = *buf + *used;
    *out++ = '"';
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *out++ = '\\';
            *out++ = (char)*c;
        } else if (*c < 0x20)
            out += sprintf (out, "\\u%04x", *c);
        else
            *out++ = (char)*c;
    }
    *out++ = '"';
    *out = 0;
    *used = (size_t)(out - *buf);
}

//  ---------------------------------------------------------------------
//  Timer heap: a binary min-heap of timers embedded in nodes and pods

static void
s_heap_swap (zubelet_t *self, size_t a, size_t b)
{
    zl_timer_t *t = self->heap[a];
    self->heap[a] = self->heap[b];
    self->heap[b] = t;
    self->heap[a]->slot = (uint32_t)a + 1;
    self->heap[b]->slot = (uint32_t)b + 1;
}

static void
s_heap_up (zubelet_t *self, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->heap[parent]->when <= self->heap[i]->when)
            break;
        s_heap_swap (self, i, parent);
        i = parent;
    }
}

static void
s_heap_down (zubelet_t *self, size_t i)
{
    while (true) {
        size_t left = 2 * i + 1, right = left + 1, least = i;
        if (left < self->heap_count && self->heap[left]->when < self->heap[least]->when)
            least = left;
        if (right < self->heap_count && self->heap[right]->when < self->heap[least]->when)
            least = right;
        if (least == i)
            break;
        s_heap_swap (self, i, least);
        i = least;
    }
}

void
zl_timer_cancel (zubelet_t *self, zl_timer_t *timer)
{
    if (!timer->slot)
        return;
    size_t i = timer->slot - 1;
    size_t last = self->heap_count - 1;
    if (i != last)
        s_heap_swap (self, i, last);
    self->heap_count--;
    timer->slot = 0;
    if (i < self->heap_count) {
        s_heap_down (self, i);
        s_heap_up (self, i);
    }
}

void
zl_timer_set (zubelet_t *self, zl_timer_t *timer, int64_t when)
{
    if (timer->slot) {
        size_t i = timer->slot - 1;
        timer->when = when;
        s_heap_down (self, i);
        s_heap_up (self, i);
        return;
    }
    if (self->heap_count == self->heap_capacity) {
        size_t capacity = self->heap_capacity ? self->heap_capacity * 2 : 1024;
        zl_timer_t **heap = realloc (self->heap, capacity * sizeof *heap);
        if (!heap) {
            zube_log_error ("msg=\"out of memory for timers\"");
            return;
        }
        self->heap = heap;
        self->heap_capacity = capacity;
    }
    timer->when = when;
    self->heap[self->heap_count] = timer;
    timer->slot = (uint32_t)++self->heap_count;
    s_heap_up (self, self->heap_count - 1);
}

static void
s_timers_run (zubelet_t *self, int64_t now)
{
    //  Timers set while running (for now) wait for the next round
    size_t budget = self->heap_count + 1;
    while (self->heap_count && self->heap[0]->when <= now && budget--) {
        zl_timer_t *timer = self->heap[0];
        zl_timer_cancel (self, timer);
        timer->fn (self, timer);
    }
}

//  ---------------------------------------------------------------------
//  Runtime

void
zl_runtime_poke (zubelet_t *self)
{
    self->tick_at = 0;
}

static void
s_runtime_event (void *arg, const zube_runtime_event_t *event)
{
    zubelet_t *self = (zubelet_t *)arg;
    if (event && event->container)
        zl_pod_runtime_event (self, event->container);
}

static void
s_runtime_tick (zubelet_t *self)
{
    int64_t wait = zube_runtime_tick (self->runtime, s_runtime_event, self);
    self->tick_at = wait < 0 ? INT64_MAX : zl_now_mono () + wait;
}

static int
s_runtime_open (zubelet_t *self, char *error, size_t error_size)
{
    self->plugins = zube_plugin_host_new ();
    if (!self->plugins) {
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    char option[4200];
    snprintf (option, sizeof option, "state_dir=%s/runtime", self->config.state_dir);
    const char *options[ZL_RUNTIME_OPTIONS_MAX + 2] = {option};
    for (size_t i = 0; self->config.runtime_options && self->config.runtime_options[i] &&
                       i < ZL_RUNTIME_OPTIONS_MAX;
         i++)
        options[i + 1] = self->config.runtime_options[i];
    char *why = NULL;
    self->runtime = zube_runtime_open (self->plugins, self->config.runtime, options, &why);
    if (!self->runtime) {
        snprintf (error, error_size, "--runtime %s: %s", self->config.runtime,
                  why ? why : "cannot open the runtime");
        free (why);
        return -1;
    }
    self->tick_at = 0;
    return 0;
}

//  ---------------------------------------------------------------------
//  Async calls with an ObjectReply

typedef struct {
    zubelet_t *self;
    const ProtobufCMessageDescriptor *kind_desc;
    zl_done_fn *fn;
    void *arg;
} s_call_t;

static void
s_call_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
             const zube_api_error_t *error, void *arg)
{
    (void)api;
    s_call_t *call = (s_call_t *)arg;
    ProtobufCMessage *object = NULL;
    if (status == ZUBE_OK && reply && call->kind_desc) {
        Zube__ObjectReply *object_reply = (Zube__ObjectReply *)reply;
        object = protobuf_c_message_unpack (
            call->kind_desc, NULL, object_reply->has_object ? object_reply->object.len : 0,
            object_reply->has_object && object_reply->object.data ? object_reply->object.data
                                                                  : (const uint8_t *)"");
    }
    call->fn (call->self, status, call->kind_desc ? object : reply, error, call->arg);
    if (object)
        protobuf_c_message_free_unpacked (object, NULL);
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
    free (call);
}

int
zl_call (zubelet_t *self, const char *method, const ProtobufCMessage *request,
         const ProtobufCMessageDescriptor *kind_desc, zl_done_fn *fn, void *arg)
{
    if (self->closing)
        return -1;
    s_call_t *call = calloc (1, sizeof *call);
    if (!call)
        return -1;
    *call = (s_call_t){.self = self, .kind_desc = kind_desc, .fn = fn, .arg = arg};
    if (zube_api_call_async (self->api, method, request, &zube__object_reply__descriptor,
                             s_call_done, call) != 0) {
        free (call);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Pod watch

static const char *
s_pod_field_selector (zubelet_t *self, char *buf, size_t size)
{
    if (self->node_count == 1)
        snprintf (buf, size, "spec.nodeName=%s", self->nodes[0].name);
    else
        snprintf (buf, size, "spec.nodeName!=");
    return buf;
}

static zl_node_t *
s_pod_node (zubelet_t *self, const Zube__Pod *pod)
{
    if (!pod->spec || !pod->spec->node_name || !*pod->spec->node_name)
        return NULL;
    return (zl_node_t *)zhashx_lookup (self->node_by_name, pod->spec->node_name);
}

static int64_t
s_rv (const char *text)
{
    return text ? strtoll (text, NULL, 10) : 0;
}

static void s_repair_start (zubelet_t *self);

//  Lists every pod bound to a node (paged), applies what belongs to ours,
//  and forgets pods that are gone. Synchronous: at start, and after GONE.
static int
s_relist (zubelet_t *self, char *error, size_t error_size)
{
    self->synced = false;
    zhashx_t *seen = zhashx_new ();
    char selector[300];
    zube_api_list_options_t options = {
        .field_selector = s_pod_field_selector (self, selector, sizeof selector),
        .limit = ZL_LIST_PAGE};
    char *token = NULL;
    int64_t revision = 0;
    int rc = 0;
    do {
        options.continue_token = token;
        zube_api_list_t *list = NULL;
        zube_api_error_t api_error;
        zube_status_t status = zube_api_list (self->api, "pods", &options, &list, &api_error);
        free (token);
        token = NULL;
        if (status != ZUBE_OK) {
            snprintf (error, error_size, "cannot list pods: %s", api_error.message);
            rc = -1;
            break;
        }
        if (!revision)
            revision = s_rv (list->resource_version);
        for (size_t i = 0; i < list->count; i++) {
            Zube__Pod *pod = (Zube__Pod *)list->items[i];
            zl_node_t *node = s_pod_node (self, pod);
            if (!node || !pod->metadata)
                continue;
            char key[600];
            snprintf (key, sizeof key, "%s/%s", pod->metadata->namespace_,
                      pod->metadata->name);
            zhashx_insert (seen, key, (void *)1);
            int64_t rv = s_rv (pod->metadata->resource_version);
            list->items[i] = NULL;
            zl_pod_apply (self, node, "ADDED", &pod, rv);
            if (pod)
                protobuf_c_message_free_unpacked (&pod->base, NULL);
        }
        if (list->continue_token && *list->continue_token)
            token = strdup (list->continue_token);
        zube_api_list_destroy (&list);
    } while (token);
    if (rc == 0) {
        zl_pod_forget_unseen (self, seen);
        if (revision > self->watermark)
            self->watermark = revision;
        self->synced = true;
        self->stats.relists++;
    }
    zhashx_destroy (&seen);
    return rc;
}

static void
s_watch_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
              const zube_api_error_t *error, void *arg)
{
    (void)api;
    zubelet_t *self = (zubelet_t *)arg;
    self->repair_in_flight = false;
    if (self->closing) {
        if (reply)
            protobuf_c_message_free_unpacked (reply, NULL);
        return;
    }
    if (status == ZUBE_GONE) {
        zube_log_warn ("msg=\"pod watch too far behind: listing again\" since=%" PRId64,
                       self->watermark);
        self->relist_needed = true;
        zl_timer_set (self, &self->resync_timer, 0);
    } else if (status != ZUBE_OK) {
        zube_log_debug ("msg=\"pod watch failed\" error=\"%s\"", error ? error->message : "");
        self->repair_again = false;
    } else if (reply) {
        Zube__WatchEventBatch *batch = (Zube__WatchEventBatch *)reply;
        for (size_t i = 0; i < batch->n_events; i++) {
            Zube__WatchEvent *event = batch->events[i];
            int64_t rv = s_rv (event->resource_version);
            Zube__Pod *pod = (Zube__Pod *)protobuf_c_message_unpack (
                &zube__pod__descriptor, NULL, event->has_object ? event->object.len : 0,
                event->has_object && event->object.data ? event->object.data
                                                        : (const uint8_t *)"");
            if (!pod)
                continue;
            zl_node_t *node = s_pod_node (self, pod);
            int64_t applied = node && node->pods_rv > self->watermark ? node->pods_rv
                                                                      : self->watermark;
            if (node && rv > applied) {
                node->pods_rv = rv;
                self->stats.pod_events++;
                zl_pod_apply (self, node, event->type, &pod, rv);
            }
            if (pod)
                protobuf_c_message_free_unpacked (&pod->base, NULL);
        }
        int64_t through = s_rv (batch->resource_version);
        if (through > self->watermark)
            self->watermark = through;
        if (batch->n_events >= 10000)
            self->repair_again = true;
    }
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
    if (self->repair_again && !self->relist_needed) {
        self->repair_again = false;
        s_repair_start (self);
    }
}

static void
s_repair_start (zubelet_t *self)
{
    if (self->closing)
        return;
    if (self->repair_in_flight || !self->synced) {
        self->repair_again = true;
        return;
    }
    Zube__WatchRequest request = ZUBE__WATCH_REQUEST__INIT;
    char since[24], selector[300];
    snprintf (since, sizeof since, "%" PRId64, self->watermark);
    request.resource = "pods";
    request.resource_version = since;
    request.field_selector = (char *)s_pod_field_selector (self, selector, sizeof selector);
    if (zube_api_call_async (self->api, "watch", &request.base,
                             &zube__watch_event_batch__descriptor, s_watch_done, self) == 0) {
        self->repair_in_flight = true;
        self->stats.repairs++;
    }
}

static void
s_on_pod_event (zube_bus_t *bus, const char *topic, const uint8_t *payload,
                size_t payload_size, void *arg)
{
    (void)bus;
    zubelet_t *self = (zubelet_t *)arg;
    //  node/<name>/pods: ours?
    if (strncmp (topic, "node/", 5) != 0)
        return;
    const char *name = topic + 5;
    const char *slash = strchr (name, '/');
    if (!slash || strcmp (slash, "/pods") != 0 || slash - name >= 254)
        return;
    char node_name[256];
    memcpy (node_name, name, (size_t)(slash - name));
    node_name[slash - name] = 0;
    zl_node_t *node = (zl_node_t *)zhashx_lookup (self->node_by_name, node_name);
    if (!node)
        return;
    if (!self->synced) {
        self->repair_again = true;
        return;
    }
    Zube__WatchEvent *event = (Zube__WatchEvent *)protobuf_c_message_unpack (
        &zube__watch_event__descriptor, NULL, payload_size, payload);
    if (!event)
        return;
    int64_t rv = s_rv (event->resource_version);
    int64_t prev = s_rv (event->prev_resource_version);
    int64_t applied = node->pods_rv > self->watermark ? node->pods_rv : self->watermark;
    if (rv <= applied) {
        //  Seen already (a repair, or a publisher's failover)
    } else if (prev > applied) {
        self->stats.gaps++;
        s_repair_start (self);
    } else {
        Zube__Pod *pod = (Zube__Pod *)protobuf_c_message_unpack (
            &zube__pod__descriptor, NULL, event->has_object ? event->object.len : 0,
            event->has_object && event->object.data ? event->object.data
                                                    : (const uint8_t *)"");
        if (pod) {
            node->pods_rv = rv;
            self->stats.pod_events++;
            zl_pod_apply (self, node, event->type, &pod, rv);
            if (pod)
                protobuf_c_message_free_unpacked (&pod->base, NULL);
        }
    }
    zube__watch_event__free_unpacked (event, NULL);
}

static void
s_resync_timer (zubelet_t *self, zl_timer_t *timer)
{
    zl_timer_set (self, timer, zl_now_mono () + ZL_RESYNC_MS);
    if (self->relist_needed) {
        char error[512];
        if (s_relist (self, error, sizeof error) == 0)
            self->relist_needed = false;
        else
            zube_log_warn ("msg=\"relist failed\" error=\"%s\"", error);
    }
    if (self->synced)
        s_repair_start (self);
}

static void
s_stats_timer (zubelet_t *self, zl_timer_t *timer)
{
    zl_timer_set (self, timer, zl_now_mono () + ZL_STATS_MS);
    size_t pods = zhashx_size (self->pods);
    zube_log_info ("msg=\"stats\" nodes=%zu registered=%zu pods=%zu renewals=%" PRIu64
                   " renew_errors=%" PRIu64 " renew_conflicts=%" PRIu64
                   " renew_late=%" PRIu64
                   " renew_max_gap_ms=%" PRId64 " status_writes=%" PRIu64
                   " pod_events=%" PRIu64 " gaps=%" PRIu64 " repairs=%" PRIu64
                   " in_flight=%zu",
                   self->node_count, self->registered, pods, self->stats.renewals,
                   self->stats.renew_errors, self->stats.renew_conflicts,
                   self->stats.renew_late,
                   self->stats.renew_max_gap_ms, self->stats.status_writes,
                   self->stats.pod_events, self->stats.gaps, self->stats.repairs,
                   zube_bus_in_flight (self->bus));
    self->stats.renew_max_gap_ms = 0;
}

//  ---------------------------------------------------------------------
//  Identity: a random id kept in the state dir, so a restarted zubelet
//  recognises its own leases

static int
s_identity (zubelet_t *self, char *error, size_t error_size)
{
    char path[4200];
    snprintf (path, sizeof path, "%s/zubelet-id", self->config.state_dir);
    FILE *file = fopen (path, "r");
    char id[64] = "";
    if (file) {
        if (!fgets (id, sizeof id, file))
            id[0] = 0;
        fclose (file);
        id[strcspn (id, "\r\n")] = 0;
    }
    if (!id[0]) {
        zuuid_t *uuid = zuuid_new ();
        snprintf (id, sizeof id, "%.8s", zuuid_str_canonical (uuid));
        zuuid_destroy (&uuid);
        file = fopen (path, "w");
        if (!file || fprintf (file, "%s\n", id) < 0) {
            snprintf (error, error_size, "--state-dir: cannot write %s: %s", path,
                      strerror (errno));
            if (file)
                fclose (file);
            return -1;
        }
        fclose (file);
    }
    snprintf (self->identity, sizeof self->identity, "zubelet-%s", id);
    return 0;
}

static int
s_mkdirs (const char *path)
{
    char buf[4096];
    snprintf (buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir (buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir (buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

//  ---------------------------------------------------------------------
//  Life cycle

static void
s_node_names (zubelet_t *self)
{
    if (self->config.node_name) {
        self->nodes[0].name = strdup (self->config.node_name);
        return;
    }
    int width = 4;
    for (size_t n = self->config.count; n >= 10000; n /= 10)
        width++;
    for (size_t i = 0; i < self->node_count; i++) {
        char name[300];
        char number[32];
        snprintf (number, sizeof number, "%0*zu", width & 15, i + 1);
        snprintf (name, sizeof name, "%.250s%s", self->config.prefix, number);
        self->nodes[i].name = strdup (name);
    }
}

zubelet_t *
zubelet_new (const zubelet_config_t *config, char *error, size_t error_size)
{
    zubelet_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->node_count = config->node_name ? 1 : config->count;
    self->nodes = calloc (self->node_count, sizeof *self->nodes);
    uint16_t *shape_of = calloc (self->node_count, sizeof *shape_of);
    uint32_t *ordinal_of = calloc (self->node_count, sizeof *ordinal_of);
    self->node_by_name = zhashx_new ();
    self->pods = zhashx_new ();
    self->pod_by_sandbox = zhashx_new ();
    self->adoptable = zhashx_new ();
    if (!self->nodes || !shape_of || !ordinal_of || !self->node_by_name || !self->pods ||
        !self->pod_by_sandbox || !self->adoptable) {
        snprintf (error, error_size, "out of memory");
        free (shape_of);
        free (ordinal_of);
        zubelet_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->adoptable, (zhashx_destructor_fn *)zstr_free);
    //  One named node takes the first shape whatever the counts say (zube
    //  up hands every one-node zubelet the same file)
    if (!config->node_name &&
        zl_shapes_assign (config->shapes, self->node_count, shape_of, ordinal_of, error,
                          error_size) != 0) {
        free (shape_of);
        free (ordinal_of);
        zubelet_destroy (&self);
        return NULL;
    }
    s_node_names (self);
    for (size_t i = 0; i < self->node_count; i++) {
        zl_node_t *node = &self->nodes[i];
        node->index = (uint32_t)i;
        node->shape = shape_of[i];
        node->ordinal = ordinal_of[i];
        node->lease_timer.fn = NULL;
        if (!node->name || zhashx_insert (self->node_by_name, node->name, node) != 0) {
            snprintf (error, error_size, "node name \"%s\" given twice",
                      node->name ? node->name : "");
            free (shape_of);
            free (ordinal_of);
            zubelet_destroy (&self);
            return NULL;
        }
    }
    free (shape_of);
    free (ordinal_of);
    self->resync_timer.fn = s_resync_timer;
    self->stats_timer.fn = s_stats_timer;
    self->tick_at = INT64_MAX;

    char runtime_dir[4200];
    snprintf (runtime_dir, sizeof runtime_dir, "%s/runtime", config->state_dir);
    if (s_mkdirs (config->state_dir) != 0 || s_mkdirs (runtime_dir) != 0) {
        snprintf (error, error_size, "--state-dir: cannot create %s: %s", runtime_dir,
                  strerror (errno));
        zubelet_destroy (&self);
        return NULL;
    }
    if (s_identity (self, error, error_size) != 0 ||
        s_runtime_open (self, error, error_size) != 0) {
        zubelet_destroy (&self);
        return NULL;
    }
    self->bus = zube_bus_new (&config->bus);
    if (!self->bus) {
        snprintf (error, error_size, "cannot open the bus connection to %s",
                  config->bus.endpoint ? config->bus.endpoint : ZUBE_BUS_DEFAULT_ENDPOINT);
        zubelet_destroy (&self);
        return NULL;
    }
    self->api = zube_api_new (self->bus);
    if (!self->api) {
        snprintf (error, error_size, "out of memory");
        zubelet_destroy (&self);
        return NULL;
    }
    return self;
}

void
zubelet_destroy (zubelet_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zubelet_t *self = *self_p;
    self->closing = true;
    //  Calls in flight end (UNAVAILABLE) here, before what they point at
    zube_api_destroy (&self->api);
    zube_bus_destroy (&self->bus);
    zl_prober_destroy (self);
    zl_exec_destroy (self);
    zl_pod_destroy_all (self);
    zube_runtime_close (&self->runtime);
    zube_plugin_host_destroy (&self->plugins);
    for (size_t i = 0; self->nodes && i < self->node_count; i++) {
        free (self->nodes[i].name);
        free (self->nodes[i].lease_data);
    }
    free (self->nodes);
    zhashx_destroy (&self->node_by_name);
    zhashx_destroy (&self->pods);
    zhashx_destroy (&self->pod_by_sandbox);
    zhashx_destroy (&self->adoptable);
    free (self->heap);
    free (self);
    *self_p = NULL;
}

//  Sandboxes the runtime kept for our nodes: pod uid -> sandbox id
static int
s_adopt_sandbox (void *arg, const zube_runtime_sandbox_status_t *sandbox)
{
    zubelet_t *self = (zubelet_t *)arg;
    if (zhashx_lookup (self->node_by_name, sandbox->node_name))
        zhashx_update (self->adoptable, sandbox->pod_uid, strdup (sandbox->id));
    return 0;
}

//  The first call: the broker and the apiserver must answer within the
//  connect timeout, and no live zubelet may hold one of our nodes.
static int
s_first_contact (zubelet_t *self, char *error, size_t error_size)
{
    int64_t until = zl_now_mono () + self->config.connect_timeout_ms;
    while (true) {
        int rc = zl_node_check_conflicts (self, error, error_size);
        if (rc == 0)
            return 0;
        if (rc == -2 || zsys_interrupted)
            return -1;
        if (zl_now_mono () >= until) {
            char why[1024];
            snprintf (why, sizeof why, "%s", error);
            const char *endpoint = self->config.bus.endpoint ? self->config.bus.endpoint
                                                             : ZUBE_BUS_DEFAULT_ENDPOINT;
            if (!zube_bus_connected (self->bus))
                snprintf (error, error_size,
                          "cannot reach the broker at %s within %d ms (%s)", endpoint,
                          self->config.connect_timeout_ms, why);
            else
                snprintf (error, error_size,
                          "the apiserver does not answer through the broker at %s within "
                          "%d ms (%s)",
                          endpoint, self->config.connect_timeout_ms, why);
            return -1;
        }
        zube_bus_poll (self->bus, 200);
    }
}

int
zubelet_run (zubelet_t *self, char *error, size_t error_size)
{
    zube_api_set_timeout (self->api, self->config.connect_timeout_ms < 2000
                                         ? self->config.connect_timeout_ms
                                         : 2000);
    if (s_first_contact (self, error, error_size) != 0)
        return 2;
    zube_api_set_timeout (self->api, ZUBE_BUS_DEFAULT_TIMEOUT_MS);

    //  What the runtime kept running for us
    zube_runtime_list_sandboxes (self->runtime, NULL, s_adopt_sandbox, self);
    zube_log_info ("msg=\"runtime\" name=%s sandboxes_to_adopt=%zu", self->config.runtime,
                   zhashx_size (self->adoptable));

    //  Subscribe first, then list
    if (self->node_count == 1)
        snprintf (self->topic, sizeof self->topic, "node/%s/pods", self->nodes[0].name);
    else
        snprintf (self->topic, sizeof self->topic, "node/%s", self->config.prefix);
    if (zube_bus_subscribe (self->bus, self->topic, s_on_pod_event, self) != 0) {
        snprintf (error, error_size, "cannot subscribe to %s", self->topic);
        return 2;
    }
    int64_t until = zl_now_mono () + self->config.connect_timeout_ms;
    while (s_relist (self, error, error_size) != 0) {
        if (zsys_interrupted || zl_now_mono () >= until)
            return 2;
        zube_bus_poll (self->bus, 500);
    }
    zl_pod_adoption_done (self);
    if (zl_server_start (self, error, error_size) != 0)
        return 2;
    zube_log_info ("msg=\"pods listed\" pods=%zu revision=%" PRId64, zhashx_size (self->pods),
                   self->watermark);
    s_repair_start (self);
    zl_timer_set (self, &self->resync_timer, zl_now_mono () + ZL_RESYNC_MS);
    zl_timer_set (self, &self->stats_timer, zl_now_mono () + ZL_STATS_MS);
    zl_node_start_registrations (self);

    while (!zsys_interrupted && !self->fatal) {
        int64_t now = zl_now_mono ();
        s_timers_run (self, now);
        if (self->tick_at <= now)
            s_runtime_tick (self);
        if (self->fatal)
            break;
        now = zl_now_mono ();
        int64_t next = self->heap_count ? self->heap[0]->when : now + 1000;
        if (self->tick_at < next)
            next = self->tick_at;
        int64_t wait = next - now;
        if (wait < 0)
            wait = 0;
        if (wait > 1000)
            wait = 1000;
        //  Host probes are polled between short slices of the bus
        if ((zl_prober_active (self) || zl_exec_active (self)) && wait > ZL_PROBE_SLICE_MS)
            wait = ZL_PROBE_SLICE_MS;
        if (zube_bus_poll (self->bus, (int)wait) < 0)
            break;
        zl_prober_run (self);
        zl_exec_run (self);
    }
    s_stats_timer (self, &self->stats_timer);
    if (self->fatal) {
        snprintf (error, error_size, "%s", self->fatal_error);
        return 2;
    }
    zube_log_info ("msg=\"stopping: nodes and pods stay, the runtime keeps running pods\"");
    return 0;
}
