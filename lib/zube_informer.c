/*  zube_informer - a local, indexed cache of one resource, kept current.

    Subscribe, list, then apply events; a gap in the prev_resource_version
    chain (or a quiet stream) is repaired with `watch` since the last
    revision applied, GONE with a relist whose difference to the cache is
    reported as callbacks. docs/informer.md describes the rules.

    Everything the informer reacts to (an event, a list or watch reply, a
    timer) goes through one inbox and is handled by s_run, one input at a
    time: a user callback that runs the bus loop again (a synchronous call)
    only queues what arrives meanwhile, so the cache is never changed under
    a callback. The bus has no timers of its own, so the informer's timer is
    an asynchronous call to a service nobody serves, whose deadline is the
    wake-up time. */
#include "zube/informer.h"
#include "zube/api.h"
#include "zube/log.h"
#include "core.pb-c.h"

#include <czmq.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The service the timer calls wait on. Nobody serves it.
#define S_TIMER_SERVICE "zube.informer.timer"
#define S_TIMER_METHOD "wait"
#define S_MAX_TIMERS 4
//  A watch reply holding this many events may have been cut short.
#define S_WATCH_FULL 10000

typedef enum {
    S_IDLE,
    S_LISTING,   //  list pages in flight (or its retry pending); events held
    S_WATCHING,  //  events applied as they come
    S_REPAIRING, //  watch since in flight (or its retry pending); events held
} s_state_t;

typedef enum { S_INPUT_EVENT, S_INPUT_LIST, S_INPUT_WATCH, S_INPUT_TIMER } s_input_type_t;

typedef struct {
    s_input_type_t type;
    zube_status_t status;
    char *message;
    ProtobufCMessage *reply;   //  ListReply or WatchEventBatch
    Zube__WatchEvent *event;   //  EVENT
} s_input_t;

typedef struct {
    char *key;
    ProtobufCMessage *object;
    uint64_t rv;
    char *namespace; //  NULL for cluster-scoped kinds
    char *node;      //  pods: spec.nodeName ("" if none); else NULL
} s_entry_t;

typedef struct _s_timer_t {
    zube_informer_t *informer; //  NULL once the informer is gone
    int64_t due;
    struct _s_timer_t *next;
} s_timer_t;

//  One bus subscription shared by every informer on (bus, topic).
typedef struct _s_topic_t {
    zube_bus_t *bus;
    char *topic;
    zube_informer_t **informers;
    size_t count, capacity;
    int dispatching;
    bool dead;
    struct _s_topic_t *next;
} s_topic_t;

struct _zube_informer_t {
    zube_bus_t *bus;
    zube_api_t *api;
    const zube_kind_t *kind;
    char *resource;
    char *namespace;
    char *label_selector_text;
    char *field_selector_text;
    char *list_field_selector; //  user's and the node's, for list and watch
    char *node_name;
    zube_selector_t *label_selector;
    zube_field_selector_t *field_selector;
    char *topic;
    int64_t page_size;
    int resync_ms;
    int timeout_ms;
    zube_informer_add_fn *on_add;
    zube_informer_update_fn *on_update;
    zube_informer_delete_fn *on_delete;
    zube_informer_synced_fn *on_synced;
    void *arg;
    //  zube_informer_set_guard: around cache changes, and who takes the
    //  objects the cache lets go of
    zube_informer_guard_fn *guard;
    zube_informer_retire_fn *retire;
    void *guard_arg;

    s_state_t state;
    bool started;
    bool synced;
    bool destroying;
    bool running;         //  inside s_run
    bool call_in_flight;  //  a list page or watch waiting for its reply
    bool relisting;       //  the list under way follows GONE
    bool resync_watch;    //  the watch under way is a quiet-stream resync
    uint64_t last_rv;
    char last_rv_text[24];
    //  The list under way
    zhashx_t *listed;     //  key -> s_entry_t
    uint64_t list_rv;
    bool list_first_page;
    char *continue_token;
    //  Retries
    int64_t retry_at;     //  0: none pending
    int retry_ms;
    int64_t last_activity;

    zlistx_t *inbox;      //  s_input_t
    zlistx_t *held;       //  Zube__WatchEvent, oldest first
    s_timer_t *timers;
    size_t timer_count;
    s_topic_t *subscription;

    zhashx_t *cache;      //  key -> s_entry_t
    zhashx_t *by_namespace; //  namespace -> (key -> s_entry_t)
    zhashx_t *by_label;     //  "k=v" -> (key -> s_entry_t)
    zhashx_t *by_node;      //  node -> (key -> s_entry_t)
    zube_informer_stats_t stats;
};

static void s_run (zube_informer_t *self);
static void s_start_list (zube_informer_t *self);
static void s_start_watch (zube_informer_t *self, bool resync);

//  --------------------------------------------------------------------------
//  Small helpers

static uint64_t
s_rv_parse (const char *text)
{
    if (!text || !*text)
        return 0;
    char *end = NULL;
    unsigned long long value = strtoull (text, &end, 10);
    return end && *end == 0 ? (uint64_t)value : 0;
}

static void
s_set_last_rv (zube_informer_t *self, uint64_t rv)
{
    self->last_rv = rv;
    snprintf (self->last_rv_text, sizeof self->last_rv_text, "%" PRIu64, rv);
}

static char *
s_strdup_or_null (const char *text)
{
    return text && *text ? strdup (text) : NULL;
}

static void
s_input_destroy (s_input_t **self_p)
{
    s_input_t *self = *self_p;
    if (!self)
        return;
    free (self->message);
    if (self->reply)
        protobuf_c_message_free_unpacked (self->reply, NULL);
    if (self->event)
        zube__watch_event__free_unpacked (self->event, NULL);
    free (self);
    *self_p = NULL;
}

static void
s_entry_destroy (s_entry_t **self_p)
{
    s_entry_t *self = *self_p;
    if (!self)
        return;
    free (self->key);
    free (self->namespace);
    free (self->node);
    if (self->object)
        protobuf_c_message_free_unpacked (self->object, NULL);
    free (self);
    *self_p = NULL;
}

static const char *
s_pod_node (const ProtobufCMessage *object)
{
    if (object->descriptor != &zube__pod__descriptor)
        return NULL;
    const Zube__Pod *pod = (const Zube__Pod *)object;
    return pod->spec && pod->spec->node_name ? pod->spec->node_name : "";
}

//  The cache key of an object, "" when it has no name.
static void
s_object_key (zube_informer_t *self, const ProtobufCMessage *object, char *key,
              size_t size)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    const char *name = meta && meta->name ? meta->name : "";
    const char *namespace = meta && meta->namespace_ ? meta->namespace_ : "";
    if (!*name)
        key[0] = 0;
    else if (self->kind->namespaced)
        snprintf (key, size, "%s/%s", namespace, name);
    else
        snprintf (key, size, "%s", name);
}

//  Whether an object belongs in this informer's cache.
static bool
s_matches (zube_informer_t *self, const ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    if (self->namespace
        && !(meta && meta->namespace_ && streq (meta->namespace_, self->namespace)))
        return false;
    if (self->node_name) {
        const char *node = s_pod_node (object);
        if (!node || !streq (node, self->node_name))
            return false;
    }
    if (self->label_selector && !zube_selector_matches_meta (self->label_selector, meta))
        return false;
    if (self->field_selector && !zube_field_selector_matches (self->field_selector, object))
        return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Cache and indexes

static void
s_index_add (zhashx_t *index, const char *index_key, s_entry_t *entry)
{
    zhashx_t *set = zhashx_lookup (index, index_key);
    if (!set) {
        set = zhashx_new ();
        assert (set);
        zhashx_insert (index, index_key, set);
    }
    zhashx_update (set, entry->key, entry);
}

static void
s_index_remove (zhashx_t *index, const char *index_key, const char *key)
{
    zhashx_t *set = zhashx_lookup (index, index_key);
    if (!set)
        return;
    zhashx_delete (set, key);
    if (zhashx_size (set) == 0)
        zhashx_delete (index, index_key); //  the index's destructor frees set
}

static void
s_index_destructor (void **item_p)
{
    zhashx_destroy ((zhashx_t **)item_p);
}

static void
s_label_key (const Zube__ObjectMeta__LabelsEntry *label, char *buf, size_t size)
{
    snprintf (buf, size, "%s=%s", label->key ? label->key : "",
              label->value ? label->value : "");
}

static void
s_entry_index (zube_informer_t *self, s_entry_t *entry, bool add)
{
    if (entry->namespace) {
        if (add)
            s_index_add (self->by_namespace, entry->namespace, entry);
        else
            s_index_remove (self->by_namespace, entry->namespace, entry->key);
    }
    if (entry->node) {
        if (add)
            s_index_add (self->by_node, entry->node, entry);
        else
            s_index_remove (self->by_node, entry->node, entry->key);
    }
    Zube__ObjectMeta *meta = zube_object_meta (entry->object);
    for (size_t index = 0; meta && index < meta->n_labels; index++) {
        char label[600];
        s_label_key (meta->labels[index], label, sizeof label);
        if (add)
            s_index_add (self->by_label, label, entry);
        else
            s_index_remove (self->by_label, label, entry->key);
    }
}

//  Sets entry's object (taking it) and the fields derived from it.
static void
s_entry_set (s_entry_t *entry, ProtobufCMessage *object, uint64_t rv)
{
    entry->object = object;
    entry->rv = rv;
    free (entry->namespace);
    free (entry->node);
    Zube__ObjectMeta *meta = zube_object_meta (object);
    entry->namespace = meta && meta->namespace_ && *meta->namespace_
                           ? strdup (meta->namespace_)
                           : NULL;
    const char *node = s_pod_node (object);
    entry->node = node ? strdup (node) : NULL;
}

//  An object the cache no longer holds: freed, or handed to the retire
//  hook when one is set.
static void
s_retire (zube_informer_t *self, ProtobufCMessage *object)
{
    if (self->retire)
        self->retire (self, object, self->guard_arg);
    else
        protobuf_c_message_free_unpacked (object, NULL);
}

//  Adds or replaces the object at key (taking it), unless the cache
//  already holds it at rv or later: an object never goes back in time.
static void
s_cache_upsert (zube_informer_t *self, const char *key, ProtobufCMessage *object,
                uint64_t rv)
{
    s_entry_t *entry = zhashx_lookup (self->cache, key);
    if (entry && entry->rv >= rv) {
        protobuf_c_message_free_unpacked (object, NULL);
        return;
    }
    if (entry) {
        s_entry_index (self, entry, false);
        ProtobufCMessage *old = entry->object;
        s_entry_set (entry, object, rv);
        s_entry_index (self, entry, true);
        self->stats.updates++;
        if (self->on_update)
            self->on_update (self, old, object, self->arg);
        s_retire (self, old);
        return;
    }
    entry = calloc (1, sizeof *entry);
    assert (entry);
    entry->key = strdup (key);
    s_entry_set (entry, object, rv);
    zhashx_insert (self->cache, key, entry);
    s_entry_index (self, entry, true);
    self->stats.adds++;
    if (self->on_add)
        self->on_add (self, object, self->arg);
}

//  Removes key from the cache when it holds it below rv. last_state (taken,
//  may be NULL) is what on_delete sees; else the cached object.
static void
s_cache_delete (zube_informer_t *self, const char *key, uint64_t rv,
                ProtobufCMessage *last_state)
{
    s_entry_t *entry = zhashx_lookup (self->cache, key);
    if (!entry || entry->rv >= rv) {
        if (last_state)
            protobuf_c_message_free_unpacked (last_state, NULL);
        return;
    }
    s_entry_index (self, entry, false);
    zhashx_delete (self->cache, key);
    self->stats.deletes++;
    if (self->on_delete)
        self->on_delete (self, last_state ? last_state : entry->object, self->arg);
    if (last_state)
        protobuf_c_message_free_unpacked (last_state, NULL);
    s_retire (self, entry->object);
    entry->object = NULL;
    s_entry_destroy (&entry);
}

//  --------------------------------------------------------------------------
//  Events

//  Applies one event to the cache (the caller checked its revision).
static void
s_apply (zube_informer_t *self, const Zube__WatchEvent *event, uint64_t rv)
{
    const char *type = event->type ? event->type : "";
    if (streq (type, "BOOKMARK") || streq (type, "ERROR"))
        return;
    ProtobufCMessage *object = protobuf_c_message_unpack (
        self->kind->descriptor, NULL, event->has_object ? event->object.len : 0,
        event->has_object && event->object.data ? event->object.data : (const uint8_t *)"");
    if (!object) {
        zube_log_warn ("msg=\"informer: undecodable object in event\" topic=%s rv=%" PRIu64,
                       self->topic, rv);
        return;
    }
    char key[600];
    s_object_key (self, object, key, sizeof key);
    if (!*key) {
        protobuf_c_message_free_unpacked (object, NULL);
        return;
    }
    if (streq (type, "DELETED"))
        s_cache_delete (self, key, rv, object);
    else if (s_matches (self, object))
        s_cache_upsert (self, key, object, rv);
    else
        //  It left the selection (labels changed, say): gone from here.
        s_cache_delete (self, key, rv, object);
}

static bool
s_is_gone (const Zube__WatchEvent *event)
{
    return event->type && streq (event->type, "ERROR") && event->status
           && ((event->status->has_code && event->status->code == 410)
               || (event->status->reason && streq (event->status->reason, "Gone")));
}

static void
s_hold (zube_informer_t *self, Zube__WatchEvent *event)
{
    if (zlistx_size (self->held) >= ZUBE_INFORMER_MAX_HELD) {
        //  The gap it leaves is found like any other.
        self->stats.dropped++;
        zube__watch_event__free_unpacked (event, NULL);
        return;
    }
    self->stats.held++;
    zlistx_add_end (self->held, event);
}

typedef enum { S_CONSUMED, S_GAP, S_RELIST } s_verdict_t;

//  One event in WATCHING state. S_GAP and S_RELIST leave the event to
//  the caller; S_CONSUMED means it was applied or ignored (and is freed).
static s_verdict_t
s_event_try (zube_informer_t *self, Zube__WatchEvent *event)
{
    if (s_is_gone (event))
        return S_RELIST;
    uint64_t rv = s_rv_parse (event->resource_version);
    if (rv <= self->last_rv) {
        self->stats.ignored++;
        zube__watch_event__free_unpacked (event, NULL);
        return S_CONSUMED;
    }
    //  prev names the topic's previous event: above what we hold, we
    //  missed it (at or below, we hold everything up to it already).
    if (event->prev_resource_version
        && s_rv_parse (event->prev_resource_version) > self->last_rv)
        return S_GAP;
    s_apply (self, event, rv);
    s_set_last_rv (self, rv);
    self->stats.applied++;
    zube__watch_event__free_unpacked (event, NULL);
    return S_CONSUMED;
}

static void
s_relist (zube_informer_t *self)
{
    self->stats.relists++;
    self->relisting = true;
    s_start_list (self);
}

//  Applies held events while the stream is contiguous.
static void
s_replay_held (zube_informer_t *self)
{
    while (self->state == S_WATCHING) {
        Zube__WatchEvent *event = zlistx_first (self->held);
        if (!event)
            break;
        s_verdict_t verdict = s_event_try (self, event);
        if (verdict == S_CONSUMED) {
            zlistx_first (self->held);
            zlistx_detach_cur (self->held);
        } else if (verdict == S_GAP) {
            self->stats.gaps++;
            s_start_watch (self, false);
        } else {
            zlistx_first (self->held);
            zlistx_detach_cur (self->held);
            zube__watch_event__free_unpacked (event, NULL);
            s_relist (self);
        }
    }
}

static void
s_handle_event (zube_informer_t *self, Zube__WatchEvent *event)
{
    if (self->state != S_WATCHING) {
        s_hold (self, event);
        return;
    }
    s_verdict_t verdict = s_event_try (self, event);
    if (verdict == S_GAP) {
        self->stats.gaps++;
        s_hold (self, event);
        s_start_watch (self, false);
    } else if (verdict == S_RELIST) {
        zube__watch_event__free_unpacked (event, NULL);
        s_relist (self);
    }
}

//  --------------------------------------------------------------------------
//  Retries and the timer

static void
s_retry_later (zube_informer_t *self)
{
    self->stats.errors++;
    self->retry_ms = self->retry_ms ? self->retry_ms * 2 : ZUBE_INFORMER_DEFAULT_RETRY_MS;
    if (self->retry_ms > ZUBE_INFORMER_MAX_RETRY_MS)
        self->retry_ms = ZUBE_INFORMER_MAX_RETRY_MS;
    self->retry_at = zclock_mono () + self->retry_ms;
}

static void
s_push (zube_informer_t *self, s_input_t *input)
{
    zlistx_add_end (self->inbox, input);
    s_run (self);
}

static void
s_timer_fired (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg)
{
    (void)bus;
    s_timer_t *timer = arg;
    zube_bus_reply_destroy (&reply);
    zube_informer_t *self = timer->informer;
    if (self) {
        s_timer_t **link = &self->timers;
        while (*link && *link != timer)
            link = &(*link)->next;
        if (*link)
            *link = timer->next;
        self->timer_count--;
    }
    free (timer);
    if (self && !self->destroying) {
        s_input_t *input = calloc (1, sizeof *input);
        assert (input);
        input->type = S_INPUT_TIMER;
        s_push (self, input);
    }
}

//  Makes sure a timer call will end by the next moment the informer has
//  something to do (a retry, or a resync of a quiet stream).
static void
s_timer_arm (zube_informer_t *self)
{
    if (!self->started || self->destroying)
        return;
    int64_t due = INT64_MAX;
    if (self->retry_at)
        due = self->retry_at;
    if (self->state == S_WATCHING && self->resync_ms > 0
        && self->last_activity + self->resync_ms < due)
        due = self->last_activity + self->resync_ms;
    if (due == INT64_MAX)
        return;
    int64_t earliest = INT64_MAX;
    for (s_timer_t *timer = self->timers; timer; timer = timer->next)
        if (timer->due < earliest)
            earliest = timer->due;
    if (earliest <= due + 20 || self->timer_count >= S_MAX_TIMERS)
        return;
    int64_t now = zclock_mono ();
    int wait_ms = due - now < 10 ? 10 : (int)(due - now);
    s_timer_t *timer = calloc (1, sizeof *timer);
    assert (timer);
    timer->informer = self;
    timer->due = now + wait_ms;
    if (zube_bus_call_async (self->bus, S_TIMER_SERVICE, S_TIMER_METHOD, NULL, 0, wait_ms,
                             s_timer_fired, timer)
        == 0) {
        free (timer);
        return;
    }
    timer->next = self->timers;
    self->timers = timer;
    self->timer_count++;
}

static void
s_handle_timer (zube_informer_t *self)
{
    int64_t now = zclock_mono ();
    if (self->retry_at && now >= self->retry_at && !self->call_in_flight) {
        self->retry_at = 0;
        if (self->state == S_LISTING)
            s_start_list (self);
        else if (self->state == S_REPAIRING)
            s_start_watch (self, self->resync_watch);
    }
    if (self->state == S_WATCHING && self->resync_ms > 0
        && now - self->last_activity >= self->resync_ms)
        s_start_watch (self, true);
}

//  --------------------------------------------------------------------------
//  List

static void
s_api_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
            const zube_api_error_t *error, void *arg, s_input_type_t type)
{
    (void)api;
    zube_informer_t *self = arg;
    if (self->destroying) {
        if (reply)
            protobuf_c_message_free_unpacked (reply, NULL);
        return;
    }
    s_input_t *input = calloc (1, sizeof *input);
    assert (input);
    input->type = type;
    input->status = status;
    input->reply = reply;
    if (status != ZUBE_OK && error)
        input->message = strdup (error->message);
    s_push (self, input);
}

static void
s_list_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
             const zube_api_error_t *error, void *arg)
{
    s_api_done (api, status, reply, error, arg, S_INPUT_LIST);
}

static void
s_watch_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
              const zube_api_error_t *error, void *arg)
{
    s_api_done (api, status, reply, error, arg, S_INPUT_WATCH);
}

static void
s_listed_destructor (void **item_p)
{
    s_entry_destroy ((s_entry_t **)item_p);
}

static void
s_send_list_page (zube_informer_t *self)
{
    Zube__ListRequest request = ZUBE__LIST_REQUEST__INIT;
    request.resource = self->resource;
    request.namespace_ = self->namespace;
    request.label_selector = self->label_selector_text;
    request.field_selector = self->list_field_selector;
    request.has_limit = 1;
    request.limit = self->page_size;
    request.continue_ = self->continue_token;
    if (zube_api_call_async (self->api, "list", &request.base,
                             &zube__list_reply__descriptor, s_list_done, self)
        == 0)
        self->call_in_flight = true;
    else
        s_retry_later (self);
}

static void
s_start_list (zube_informer_t *self)
{
    self->state = S_LISTING;
    zhashx_destroy (&self->listed);
    self->listed = zhashx_new ();
    assert (self->listed);
    zhashx_set_destructor (self->listed, s_listed_destructor);
    self->list_rv = 0;
    self->list_first_page = true;
    free (self->continue_token);
    self->continue_token = NULL;
    s_send_list_page (self);
}

//  The list is complete: make the cache equal to it, reporting the
//  difference, then go on with the events held meanwhile.
static void
s_finish_list (zube_informer_t *self)
{
    self->stats.lists++;
    //  Deletions first: what the cache holds and the list does not
    //  (unless the cache's copy is newer than the list).
    zlistx_t *keys = zhashx_keys (self->cache);
    for (char *key = zlistx_first (keys); key; key = zlistx_next (keys)) {
        s_entry_t *entry = zhashx_lookup (self->cache, key);
        if (entry && !zhashx_lookup (self->listed, key) && entry->rv <= self->list_rv)
            s_cache_delete (self, key, UINT64_MAX, NULL);
    }
    zlistx_destroy (&keys);
    //  Then additions and changes, in key order.
    keys = zhashx_keys (self->listed);
    zlistx_set_comparator (keys, (zlistx_comparator_fn *)strcmp);
    zlistx_sort (keys);
    for (char *key = zlistx_first (keys); key; key = zlistx_next (keys)) {
        s_entry_t *listed = zhashx_lookup (self->listed, key);
        ProtobufCMessage *object = listed->object;
        listed->object = NULL;
        s_cache_upsert (self, key, object, listed->rv);
    }
    zlistx_destroy (&keys);
    zhashx_destroy (&self->listed);
    if (self->list_rv > self->last_rv)
        s_set_last_rv (self, self->list_rv);
    self->relisting = false;
    self->state = S_WATCHING;
    self->retry_ms = 0;
    self->last_activity = zclock_mono ();
    if (!self->synced) {
        self->synced = true;
        if (self->on_synced)
            self->on_synced (self, self->arg);
    }
    s_replay_held (self);
}

static void
s_handle_list_reply (zube_informer_t *self, s_input_t *input)
{
    self->call_in_flight = false;
    if (self->state != S_LISTING)
        return;
    if (input->status != ZUBE_OK) {
        zube_log_warn ("msg=\"informer: list failed\" resource=%s status=%s error=\"%s\"",
                       self->resource, zube_status_reason (input->status),
                       input->message ? input->message : "");
        if (input->status == ZUBE_GONE && self->continue_token) {
            //  The continue token expired: start over.
            s_start_list (self);
            return;
        }
        s_retry_later (self);
        return;
    }
    Zube__ListReply *reply = (Zube__ListReply *)input->reply;
    self->stats.pages++;
    if (self->list_first_page) {
        self->list_rv = s_rv_parse (reply->resource_version);
        self->list_first_page = false;
    }
    for (size_t index = 0; index < reply->n_items; index++) {
        ProtobufCMessage *object = protobuf_c_message_unpack (
            self->kind->descriptor, NULL, reply->items[index].len,
            reply->items[index].data ? reply->items[index].data : (const uint8_t *)"");
        if (!object)
            continue;
        char key[600];
        s_object_key (self, object, key, sizeof key);
        Zube__ObjectMeta *meta = zube_object_meta (object);
        uint64_t rv = s_rv_parse (meta ? meta->resource_version : NULL);
        s_entry_t *known = *key ? zhashx_lookup (self->listed, key) : NULL;
        if (!*key || !s_matches (self, object) || (known && known->rv >= rv)) {
            protobuf_c_message_free_unpacked (object, NULL);
            continue;
        }
        s_entry_t *entry = calloc (1, sizeof *entry);
        assert (entry);
        entry->key = strdup (key);
        entry->object = object;
        entry->rv = rv;
        zhashx_update (self->listed, key, entry);
    }
    if (reply->continue_ && *reply->continue_) {
        free (self->continue_token);
        self->continue_token = strdup (reply->continue_);
        s_send_list_page (self);
        return;
    }
    free (self->continue_token);
    self->continue_token = NULL;
    s_finish_list (self);
}

//  --------------------------------------------------------------------------
//  Watch since

static void
s_start_watch (zube_informer_t *self, bool resync)
{
    self->state = S_REPAIRING;
    self->resync_watch = resync;
    self->stats.watches++;
    if (resync)
        self->stats.resyncs++;
    Zube__WatchRequest request = ZUBE__WATCH_REQUEST__INIT;
    request.resource = self->resource;
    request.namespace_ = self->namespace;
    //  Only the node's field: objects leaving a label or field selection
    //  must still show up so that they leave the cache too.
    char node_field[300];
    if (self->node_name) {
        snprintf (node_field, sizeof node_field, "spec.nodeName=%s", self->node_name);
        request.field_selector = node_field;
    }
    request.resource_version = self->last_rv_text;
    if (zube_api_call_async (self->api, "watch", &request.base,
                             &zube__watch_event_batch__descriptor, s_watch_done, self)
        == 0)
        self->call_in_flight = true;
    else
        s_retry_later (self);
}

static void
s_handle_watch_reply (zube_informer_t *self, s_input_t *input)
{
    self->call_in_flight = false;
    if (self->state != S_REPAIRING)
        return;
    if (input->status == ZUBE_GONE) {
        zube_log_info ("msg=\"informer: watch since is gone, relisting\" topic=%s since=%s",
                       self->topic, self->last_rv_text);
        s_relist (self);
        return;
    }
    if (input->status != ZUBE_OK) {
        zube_log_warn ("msg=\"informer: watch failed\" topic=%s status=%s error=\"%s\"",
                       self->topic, zube_status_reason (input->status),
                       input->message ? input->message : "");
        s_retry_later (self);
        return;
    }
    Zube__WatchEventBatch *batch = (Zube__WatchEventBatch *)input->reply;
    size_t found = 0;
    for (size_t index = 0; index < batch->n_events; index++) {
        Zube__WatchEvent *event = batch->events[index];
        if (s_is_gone (event)) {
            s_relist (self);
            return;
        }
        uint64_t rv = s_rv_parse (event->resource_version);
        if (rv <= self->last_rv)
            continue;
        s_apply (self, event, rv);
        s_set_last_rv (self, rv);
        self->stats.repaired++;
        found++;
    }
    uint64_t batch_rv = s_rv_parse (batch->resource_version);
    if (batch_rv > self->last_rv)
        s_set_last_rv (self, batch_rv);
    if (self->resync_watch && found)
        self->stats.resync_hits++;
    self->retry_ms = 0;
    self->last_activity = zclock_mono ();
    self->state = S_WATCHING;
    if (batch->n_events >= S_WATCH_FULL)
        s_start_watch (self, false); //  cut short: ask for the rest
    else
        s_replay_held (self);
}

//  --------------------------------------------------------------------------
//  The inbox

static void
s_run (zube_informer_t *self)
{
    if (self->running || self->destroying)
        return;
    self->running = true;
    if (self->guard)
        self->guard (self, true, self->guard_arg);
    s_input_t *input;
    while (!self->destroying && (input = zlistx_detach (self->inbox, NULL))) {
        switch (input->type) {
        case S_INPUT_EVENT: {
            Zube__WatchEvent *event = input->event;
            input->event = NULL;
            s_handle_event (self, event);
            break;
        }
        case S_INPUT_LIST:
            s_handle_list_reply (self, input);
            break;
        case S_INPUT_WATCH:
            s_handle_watch_reply (self, input);
            break;
        case S_INPUT_TIMER:
            s_handle_timer (self);
            break;
        }
        s_input_destroy (&input);
    }
    if (self->guard)
        self->guard (self, false, self->guard_arg);
    self->running = false;
    s_timer_arm (self);
}

//  An event payload is one packed WatchEvent; a WatchEventBatch (one
//  group commit's events) is accepted too. A batch read as a WatchEvent
//  has no sensible type, which tells them apart.
static bool
s_event_type_known (const char *type)
{
    return type
           && (streq (type, "ADDED") || streq (type, "MODIFIED") || streq (type, "DELETED")
               || streq (type, "BOOKMARK") || streq (type, "ERROR"));
}

static void
s_deliver_payload (zube_informer_t *self, const uint8_t *payload, size_t size)
{
    if (self->destroying || !self->started)
        return;
    self->last_activity = zclock_mono ();
    Zube__WatchEvent *event = zube__watch_event__unpack (NULL, size, payload);
    if (event && s_event_type_known (event->type)) {
        self->stats.events++;
        s_input_t *input = calloc (1, sizeof *input);
        assert (input);
        input->type = S_INPUT_EVENT;
        input->event = event;
        zlistx_add_end (self->inbox, input);
        s_run (self);
        return;
    }
    if (event)
        zube__watch_event__free_unpacked (event, NULL);
    Zube__WatchEventBatch *batch = zube__watch_event_batch__unpack (NULL, size, payload);
    if (!batch) {
        zube_log_warn ("msg=\"informer: undecodable event\" topic=%s size=%zu", self->topic,
                       size);
        return;
    }
    for (size_t index = 0; index < batch->n_events; index++) {
        self->stats.events++;
        s_input_t *input = calloc (1, sizeof *input);
        assert (input);
        input->type = S_INPUT_EVENT;
        input->event = batch->events[index];
        batch->events[index] = NULL;
        zlistx_add_end (self->inbox, input);
    }
    batch->n_events = 0;
    zube__watch_event_batch__free_unpacked (batch, NULL);
    s_run (self);
}

//  --------------------------------------------------------------------------
//  Shared subscriptions: one per (bus, topic), whatever the number of
//  informers on it. The registry is process-wide (buses may live on
//  different threads); an entry itself is only touched on its bus's
//  thread.

static pthread_mutex_t s_topics_lock = PTHREAD_MUTEX_INITIALIZER;
static s_topic_t *s_topics;

static void
s_topic_free (s_topic_t *entry)
{
    free (entry->topic);
    free (entry->informers);
    free (entry);
}

static void
s_topic_compact (s_topic_t *entry)
{
    size_t used = 0;
    for (size_t index = 0; index < entry->count; index++)
        if (entry->informers[index])
            entry->informers[used++] = entry->informers[index];
    entry->count = used;
}

static void
s_on_bus_event (zube_bus_t *bus, const char *topic, const uint8_t *payload, size_t size,
                void *arg)
{
    (void)bus;
    s_topic_t *entry = arg;
    //  Subscriptions match by prefix: api/pods also brings api/podtemplates.
    if (entry->dead || !streq (topic, entry->topic))
        return;
    entry->dispatching++;
    for (size_t index = 0; index < entry->count; index++) {
        zube_informer_t *informer = entry->informers[index];
        if (informer)
            s_deliver_payload (informer, payload, size);
    }
    entry->dispatching--;
    if (entry->dispatching == 0) {
        if (entry->dead)
            s_topic_free (entry);
        else
            s_topic_compact (entry);
    }
}

static int
s_topic_attach (zube_informer_t *self)
{
    pthread_mutex_lock (&s_topics_lock);
    s_topic_t *entry = s_topics;
    while (entry && !(entry->bus == self->bus && streq (entry->topic, self->topic)))
        entry = entry->next;
    if (!entry) {
        entry = calloc (1, sizeof *entry);
        if (!entry || !(entry->topic = strdup (self->topic))) {
            free (entry);
            pthread_mutex_unlock (&s_topics_lock);
            return -1;
        }
        entry->bus = self->bus;
        if (zube_bus_subscribe (self->bus, self->topic, s_on_bus_event, entry) != 0) {
            zube_log_error ("msg=\"informer: cannot subscribe\" topic=%s", self->topic);
            s_topic_free (entry);
            pthread_mutex_unlock (&s_topics_lock);
            return -1;
        }
        entry->next = s_topics;
        s_topics = entry;
    }
    if (entry->count == entry->capacity) {
        size_t capacity = entry->capacity ? entry->capacity * 2 : 4;
        zube_informer_t **informers =
            realloc (entry->informers, capacity * sizeof *informers);
        if (!informers) {
            pthread_mutex_unlock (&s_topics_lock);
            return -1;
        }
        entry->informers = informers;
        entry->capacity = capacity;
    }
    entry->informers[entry->count++] = self;
    self->subscription = entry;
    pthread_mutex_unlock (&s_topics_lock);
    return 0;
}

static void
s_topic_detach (zube_informer_t *self)
{
    s_topic_t *entry = self->subscription;
    if (!entry)
        return;
    self->subscription = NULL;
    pthread_mutex_lock (&s_topics_lock);
    size_t left = 0;
    for (size_t index = 0; index < entry->count; index++) {
        if (entry->informers[index] == self)
            entry->informers[index] = NULL;
        else if (entry->informers[index])
            left++;
    }
    if (left == 0) {
        s_topic_t **link = &s_topics;
        while (*link && *link != entry)
            link = &(*link)->next;
        if (*link)
            *link = entry->next;
        entry->dead = true;
        zube_bus_unsubscribe (entry->bus, entry->topic);
        if (entry->dispatching == 0)
            s_topic_free (entry);
    } else if (entry->dispatching == 0)
        s_topic_compact (entry);
    pthread_mutex_unlock (&s_topics_lock);
}

//  --------------------------------------------------------------------------
//  Lifecycle

static void
s_inbox_destructor (void **item_p)
{
    s_input_destroy ((s_input_t **)item_p);
}

static void
s_held_destructor (void **item_p)
{
    Zube__WatchEvent **event_p = (Zube__WatchEvent **)item_p;
    if (*event_p)
        zube__watch_event__free_unpacked (*event_p, NULL);
    *event_p = NULL;
}

zube_informer_t *
zube_informer_new (zube_bus_t *bus, const zube_informer_config_t *config)
{
    if (!bus || !config || !config->resource) {
        zube_log_error ("msg=\"informer: no bus or no resource\"");
        return NULL;
    }
    const zube_kind_t *kind = zube_kind_by_resource (config->resource);
    if (!kind) {
        zube_log_error ("msg=\"informer: unknown resource\" resource=\"%s\"",
                        config->resource);
        return NULL;
    }
    if (config->node_name && *config->node_name
        && kind->descriptor != &zube__pod__descriptor) {
        zube_log_error ("msg=\"informer: node_name is for pods only\" resource=%s",
                        kind->resource);
        return NULL;
    }
    zube_informer_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->bus = bus;
    self->kind = kind;
    self->resource = strdup (kind->resource);
    self->namespace = kind->namespaced ? s_strdup_or_null (config->namespace) : NULL;
    self->label_selector_text = s_strdup_or_null (config->label_selector);
    self->field_selector_text = s_strdup_or_null (config->field_selector);
    self->node_name = s_strdup_or_null (config->node_name);
    self->page_size = config->page_size > 0 ? config->page_size
                                            : ZUBE_INFORMER_DEFAULT_PAGE_SIZE;
    self->resync_ms = config->resync_ms == 0 ? ZUBE_INFORMER_DEFAULT_RESYNC_MS
                                             : config->resync_ms;
    self->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms
                                              : ZUBE_BUS_DEFAULT_TIMEOUT_MS;
    self->on_add = config->on_add;
    self->on_update = config->on_update;
    self->on_delete = config->on_delete;
    self->on_synced = config->on_synced;
    self->arg = config->arg;
    s_set_last_rv (self, 0);

    char error[256] = "";
    bool ok = self->resource != NULL;
    if (ok && self->label_selector_text
        && zube_selector_parse (self->label_selector_text, &self->label_selector, error,
                                sizeof error)
               != 0) {
        zube_log_error ("msg=\"informer: bad label selector\" selector=\"%s\" error=\"%s\"",
                        self->label_selector_text, error);
        ok = false;
    }
    if (ok && self->field_selector_text
        && zube_field_selector_parse (self->field_selector_text, self->resource,
                                      &self->field_selector, error, sizeof error)
               != 0) {
        zube_log_error ("msg=\"informer: bad field selector\" selector=\"%s\" error=\"%s\"",
                        self->field_selector_text, error);
        ok = false;
    }
    char text[1024];
    if (ok && self->node_name) {
        snprintf (text, sizeof text, "spec.nodeName=%s%s%s", self->node_name,
                  self->field_selector_text ? "," : "",
                  self->field_selector_text ? self->field_selector_text : "");
        self->list_field_selector = strdup (text);
        snprintf (text, sizeof text, "node/%s/%s", self->node_name, self->resource);
    } else {
        self->list_field_selector = s_strdup_or_null (self->field_selector_text);
        snprintf (text, sizeof text, "api/%s", self->resource);
    }
    self->topic = strdup (text);
    self->api = zube_api_new (bus);
    self->inbox = zlistx_new ();
    self->held = zlistx_new ();
    self->cache = zhashx_new ();
    self->by_namespace = zhashx_new ();
    self->by_label = zhashx_new ();
    self->by_node = zhashx_new ();
    if (!ok || !self->topic || !self->api || !self->inbox || !self->held || !self->cache
        || !self->by_namespace || !self->by_label || !self->by_node) {
        zube_informer_destroy (&self);
        return NULL;
    }
    zube_api_set_timeout (self->api, self->timeout_ms);
    zlistx_set_destructor (self->inbox, s_inbox_destructor);
    zlistx_set_destructor (self->held, s_held_destructor);
    zhashx_set_destructor (self->by_namespace, s_index_destructor);
    zhashx_set_destructor (self->by_label, s_index_destructor);
    zhashx_set_destructor (self->by_node, s_index_destructor);
    return self;
}

void
zube_informer_destroy (zube_informer_t **self_p)
{
    zube_informer_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    self->destroying = true;
    s_topic_detach (self);
    //  Calls in flight end here (their outcomes are dropped); timers
    //  still waiting on the bus only free themselves when they fire.
    zube_api_destroy (&self->api);
    for (s_timer_t *timer = self->timers; timer; timer = timer->next)
        timer->informer = NULL;
    zlistx_destroy (&self->inbox);
    zlistx_destroy (&self->held);
    zhashx_destroy (&self->listed);
    //  Indexes first: they point into the cache's entries.
    zhashx_destroy (&self->by_namespace);
    zhashx_destroy (&self->by_label);
    zhashx_destroy (&self->by_node);
    //  The cache has no destructor (entries leave it before their
    //  callbacks run): free them here.
    if (self->cache)
        for (s_entry_t *entry = zhashx_first (self->cache); entry;
             entry = zhashx_next (self->cache))
            s_entry_destroy (&entry);
    zhashx_destroy (&self->cache);
    zube_selector_destroy (&self->label_selector);
    zube_field_selector_destroy (&self->field_selector);
    free (self->resource);
    free (self->namespace);
    free (self->label_selector_text);
    free (self->field_selector_text);
    free (self->list_field_selector);
    free (self->node_name);
    free (self->topic);
    free (self->continue_token);
    free (self);
    *self_p = NULL;
}

int
zube_informer_start (zube_informer_t *self)
{
    if (self->started)
        return 0;
    if (s_topic_attach (self) != 0)
        return -1;
    self->started = true;
    self->last_activity = zclock_mono ();
    s_start_list (self);
    s_timer_arm (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Accessors and lookups

void
zube_informer_set_guard (zube_informer_t *self, zube_informer_guard_fn *guard,
                         zube_informer_retire_fn *retire, void *arg)
{
    self->guard = guard;
    self->retire = retire;
    self->guard_arg = arg;
}

bool
zube_informer_has_synced (zube_informer_t *self)
{
    return self->synced;
}

bool
zube_informer_wait_synced (zube_informer_t *self, int timeout_ms)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (!self->synced && zclock_mono () < until)
        if (zube_bus_poll (self->bus, 20) < 0)
            break;
    return self->synced;
}

const zube_kind_t *
zube_informer_kind (zube_informer_t *self)
{
    return self->kind;
}

const char *
zube_informer_topic (zube_informer_t *self)
{
    return self->topic;
}

const char *
zube_informer_resource_version (zube_informer_t *self)
{
    return self->synced ? self->last_rv_text : "";
}

void
zube_informer_stats (zube_informer_t *self, zube_informer_stats_t *stats)
{
    *stats = self->stats;
}

size_t
zube_informer_count (zube_informer_t *self)
{
    return zhashx_size (self->cache);
}

const ProtobufCMessage *
zube_informer_get_by_key (zube_informer_t *self, const char *key)
{
    s_entry_t *entry = key ? zhashx_lookup (self->cache, key) : NULL;
    return entry ? entry->object : NULL;
}

const ProtobufCMessage *
zube_informer_get (zube_informer_t *self, const char *namespace, const char *name)
{
    if (!name)
        return NULL;
    char key[600];
    if (self->kind->namespaced)
        snprintf (key, sizeof key, "%s/%s", namespace ? namespace : "", name);
    else
        snprintf (key, sizeof key, "%s", name);
    return zube_informer_get_by_key (self, key);
}

uint64_t
zube_informer_object_rv (zube_informer_t *self, const char *key)
{
    s_entry_t *entry = key ? zhashx_lookup (self->cache, key) : NULL;
    return entry ? entry->rv : 0;
}

static int
s_entry_compare (const void *a, const void *b)
{
    const s_entry_t *left = *(const s_entry_t *const *)a;
    const s_entry_t *right = *(const s_entry_t *const *)b;
    return strcmp (left->key, right->key);
}

//  The objects of the entries in set (key -> s_entry_t) that selector
//  matches (NULL: all), sorted by key.
static const ProtobufCMessage **
s_collect (zhashx_t *set, const zube_selector_t *selector, size_t *count_p)
{
    *count_p = 0;
    size_t size = set ? zhashx_size (set) : 0;
    if (size == 0)
        return NULL;
    s_entry_t **entries = malloc (size * sizeof *entries);
    if (!entries)
        return NULL;
    size_t count = 0;
    for (s_entry_t *entry = zhashx_first (set); entry; entry = zhashx_next (set))
        if (!selector
            || zube_selector_matches_meta (selector, zube_object_meta (entry->object)))
            entries[count++] = entry;
    if (count == 0) {
        free (entries);
        return NULL;
    }
    qsort (entries, count, sizeof *entries, s_entry_compare);
    const ProtobufCMessage **objects = (const ProtobufCMessage **)entries;
    for (size_t index = 0; index < count; index++)
        objects[index] = entries[index]->object;
    *count_p = count;
    return objects;
}

const ProtobufCMessage **
zube_informer_list (zube_informer_t *self, size_t *count_p)
{
    return s_collect (self->cache, NULL, count_p);
}

const ProtobufCMessage **
zube_informer_list_namespace (zube_informer_t *self, const char *namespace,
                              size_t *count_p)
{
    return s_collect (namespace ? zhashx_lookup (self->by_namespace, namespace) : NULL,
                      NULL, count_p);
}

const ProtobufCMessage **
zube_informer_list_label (zube_informer_t *self, const char *key, const char *value,
                          size_t *count_p)
{
    char label[600];
    snprintf (label, sizeof label, "%s=%s", key ? key : "", value ? value : "");
    return s_collect (zhashx_lookup (self->by_label, label), NULL, count_p);
}

const ProtobufCMessage **
zube_informer_list_selector (zube_informer_t *self, const char *namespace,
                             const zube_selector_t *selector, size_t *count_p)
{
    zhashx_t *set = namespace && *namespace ? zhashx_lookup (self->by_namespace, namespace)
                                            : self->cache;
    return s_collect (set, selector, count_p);
}

const ProtobufCMessage **
zube_informer_list_node (zube_informer_t *self, const char *node, size_t *count_p)
{
    return s_collect (node ? zhashx_lookup (self->by_node, node) : NULL, NULL, count_p);
}

//  Over a snapshot of the entries: fn may look objects up, and a czmq
//  zhashx lookup moves the cursor zhashx_next follows (a controller's
//  on_add reading its own cache made the resync loop forever).
void
zube_informer_each (zube_informer_t *self, zube_informer_each_fn *fn, void *arg)
{
    size_t size = zhashx_size (self->cache);
    s_entry_t **entries = malloc ((size + 1) * sizeof *entries);
    if (!entries) {
        zube_log_error ("msg=\"out of memory\" op=informer_each");
        return;
    }
    size_t count = 0;
    for (s_entry_t *entry = zhashx_first (self->cache); entry && count < size;
         entry = zhashx_next (self->cache))
        entries[count++] = entry;
    for (size_t i = 0; i < count; i++)
        if (!fn (entries[i]->key, entries[i]->object, arg))
            break;
    free (entries);
}
