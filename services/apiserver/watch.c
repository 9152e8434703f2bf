/*  watch - the store's event log, followed: a window of recent events,
    the `watch` method, and publishing on the bus under a lease.

    Every instance reads the store's event log (zube_store_events since
    the last revision it saw) right after its own commits and every
    API_FOLLOW_MS for the writes of other instances, and keeps the last
    N events in a ring. For each event it works out, as it follows, the
    previous revision on each of the event's topics (api/<resource>, and
    node/<nodeName>/pods for pods bound to a node): these depend only on
    the log, so every instance computes the same ones.

    One instance publishes: the holder of the lease at API_LEASE_KEY, a
    store key written with a compare on its own mod revision (renewed every
    second, taken over by another instance once its mod revision has not
    moved for 5 s, or at once when the holder released it at shutdown).
    The lease's value records the revision published up to; a new holder
    publishes from there, so nothing is lost across a failover. Events the
    old holder published after its last renewal are published again,
    identical (same revision, same prev): subscribers drop revisions they
    have seen. */
#include "apiserver_private.h"
#include "zube/log.h"
#include "zube/selector.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t revision;
    zube_store_event_type_t type;
    const api_kind_t *kind;
    //  One allocation: key, then node name, then value
    char *key;
    const char *ns; //  into a copy of the key's namespace part, or NULL
    const char *name;
    const char *node; //  pods bound to a node, else NULL
    uint8_t *value;
    size_t value_size;
    int64_t prev_resource;
    int64_t prev_node;
} s_event_t;

struct _api_watch_t {
    s_event_t *ring;
    size_t capacity;
    size_t head; //  oldest
    size_t count;
    //  Every event after base is in the ring (or was skipped: not an object)
    int64_t base;
    //  The store revision read up to
    int64_t revision;
    //  node name -> int64_t * last revision on node/<name>/pods
    zhashx_t *node_topics;
    int64_t next_follow_ms;
    int64_t next_lease_ms;
    int64_t next_compact_ms;
    //  The revision the log was last compacted to (by this instance).
    int64_t compacted_to;
    //  The lease
    bool publisher;
    int64_t published;
    int64_t lease_revision; //  its mod revision as last seen
    int64_t lease_seen_ms;  //  when that mod revision was first seen
    bool lease_released;
    uint64_t published_events;
    //  Bookmarks (0: none) and the watches waiting for an event
    int64_t bookmark_interval_ms;
    int64_t next_bookmark_ms;
    struct _s_watcher_t **parked;
    size_t parked_count;
    size_t parked_capacity;
};

static int64_t
s_now_ms (void)
{
    return zclock_mono ();
}

static s_event_t *
s_at (api_watch_t *watch, size_t index)
{
    return &watch->ring[(watch->head + index) % watch->capacity];
}

static void
s_event_clear (s_event_t *event)
{
    free (event->key);
    memset (event, 0, sizeof *event);
}

//  Reads spec (field 4) -> node_name (field 12) of a packed Pod without
//  unpacking it. NULL when absent.
static bool
s_wire_field (const uint8_t *data, size_t size, uint32_t wanted, const uint8_t **out,
              size_t *out_size)
{
    size_t at = 0;
    bool found = false;
    while (at < size) {
        uint64_t tag = 0;
        int shift = 0;
        while (at < size && shift < 64) {
            uint8_t byte = data[at++];
            tag |= (uint64_t)(byte & 0x7f) << shift;
            shift += 7;
            if (!(byte & 0x80))
                break;
        }
        uint32_t type = tag & 7, field = (uint32_t)(tag >> 3);
        uint64_t length = 0;
        switch (type) {
        case 0:
            while (at < size && (data[at++] & 0x80))
                ;
            break;
        case 1:
            at += 8;
            break;
        case 5:
            at += 4;
            break;
        case 2:
            shift = 0;
            while (at < size && shift < 64) {
                uint8_t byte = data[at++];
                length |= (uint64_t)(byte & 0x7f) << shift;
                shift += 7;
                if (!(byte & 0x80))
                    break;
            }
            if (length > size - at)
                return found;
            if (field == wanted) {
                //  The last one wins, as protobuf says
                *out = data + at;
                *out_size = (size_t)length;
                found = true;
            }
            at += (size_t)length;
            break;
        default:
            return found;
        }
    }
    return found;
}

static int
s_event_add (void *arg, const zube_store_event_t *store_event)
{
    zube_apiserver_t *self = (zube_apiserver_t *)arg;
    api_watch_t *watch = self->watch;
    watch->revision = store_event->revision;
    const api_kind_t *kind =
        api_kind_by_key (self, store_event->key, store_event->key_size);
    if (!kind)
        return 0; //  not an object (the lease): no event
    const uint8_t *node = NULL;
    size_t node_size = 0;
    if (kind->is_pod) {
        const uint8_t *spec;
        size_t spec_size;
        if (s_wire_field (store_event->value, store_event->value_size, 4, &spec,
                          &spec_size) &&
            !s_wire_field (spec, spec_size, 12, &node, &node_size))
            node = NULL;
        if (node && node_size == 0)
            node = NULL;
    }
    size_t total = store_event->key_size + 1 + (node ? node_size + 1 : 0) +
                   store_event->key_size + 1 + store_event->value_size;
    char *block = malloc (total);
    if (!block) {
        zube_log_error (
            "msg=\"out of memory: event dropped from the window\" revision=%" PRId64,
            store_event->revision);
        return 0;
    }
    if (watch->count == watch->capacity) {
        s_event_t *oldest = s_at (watch, 0);
        watch->base = oldest->revision;
        s_event_clear (oldest);
        watch->head = (watch->head + 1) % watch->capacity;
        watch->count--;
    }
    s_event_t *event = s_at (watch, watch->count);
    watch->count++;
    char *at = block;
    event->key = at;
    memcpy (at, store_event->key, store_event->key_size);
    at[store_event->key_size] = 0;
    at += store_event->key_size + 1;
    //  "/registry/<resource>/<ns>/<name>": a copy split at its slashes
    char *parts = at;
    memcpy (parts, store_event->key, store_event->key_size);
    parts[store_event->key_size] = 0;
    at += store_event->key_size + 1;
    char *rest = parts + 10 + kind->resource_size + 1;
    if (kind->kind->namespaced) {
        char *slash = strchr (rest, '/');
        if (slash) {
            *slash = 0;
            event->ns = rest;
            event->name = slash + 1;
        } else {
            event->ns = NULL;
            event->name = rest;
        }
    } else {
        event->ns = NULL;
        event->name = rest;
    }
    if (node) {
        memcpy (at, node, node_size);
        at[node_size] = 0;
        event->node = at;
        at += node_size + 1;
    } else
        event->node = NULL;
    event->value = (uint8_t *)at;
    event->value_size = store_event->value_size;
    if (store_event->value_size)
        memcpy (at, store_event->value, store_event->value_size);
    event->revision = store_event->revision;
    event->type = store_event->type;
    event->kind = kind;
    //  Topic bookkeeping: what the previous event on each topic was
    api_kind_t *mutable_kind = (api_kind_t *)kind;
    event->prev_resource = mutable_kind->topic_rv;
    mutable_kind->topic_rv = event->revision;
    event->prev_node = 0;
    if (event->node) {
        int64_t *last = zhashx_lookup (watch->node_topics, event->node);
        if (!last) {
            last = calloc (1, sizeof *last);
            if (last)
                zhashx_insert (watch->node_topics, event->node, last);
        }
        if (last) {
            event->prev_node = *last;
            *last = event->revision;
        }
    }
    //  The namespace cache follows namespace writes
    if (kind->is_namespace && event->name) {
        if (event->type == ZUBE_STORE_EVENT_DELETED)
            zhashx_delete (self->namespaces, event->name);
        else {
            Zube__Namespace *ns =
                zube__namespace__unpack (NULL, event->value_size, event->value);
            const char *phase = ns && ns->status && ns->status->phase &&
                                        streq (ns->status->phase, "Terminating")
                                    ? "Terminating"
                                    : "Active";
            zhashx_update (self->namespaces, event->name, (void *)phase);
            if (ns)
                zube__namespace__free_unpacked (ns, NULL);
        }
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Publishing

static const char *
s_type_name (zube_store_event_type_t type)
{
    return zube_store_event_type_name (type);
}

static void
s_publish_one (zube_apiserver_t *self, const s_event_t *event, const char *topic,
               int64_t prev)
{
    char rv[24], prev_rv[24];
    api_format_rv (rv, event->revision);
    api_format_rv (prev_rv, prev);
    uint8_t *object = api_scratch (&self->scratch, &self->scratch_size,
                                   event->value_size + API_RV_SUFFIX_MAX);
    if (!object)
        return;
    size_t object_size = api_with_rv (event->kind, event->value, event->value_size,
                                      event->revision, object);
    Zube__WatchEvent message = ZUBE__WATCH_EVENT__INIT;
    message.type = (char *)s_type_name (event->type);
    message.resource = (char *)event->kind->kind->resource;
    message.has_object = true;
    message.object.data = object;
    message.object.len = object_size;
    message.resource_version = rv;
    message.prev_resource_version = prev_rv;
    message.topic = (char *)topic;
    message.namespace_ = (char *)event->ns;
    message.name = (char *)event->name;
    size_t size = zube__watch_event__get_packed_size (&message);
    uint8_t *packed = api_scratch (&self->scratch2, &self->scratch2_size, size);
    if (!packed)
        return;
    zube__watch_event__pack (&message, packed);
    if (zube_bus_publish (self->bus, topic, packed, size) != 0)
        zube_log_warn ("msg=\"cannot publish\" topic=%s revision=%s", topic, rv);
}

static void
s_publish (zube_apiserver_t *self)
{
    api_watch_t *watch = self->watch;
    if (!watch->publisher || watch->published >= watch->revision)
        return;
    if (watch->published < watch->base)
        zube_log_error ("msg=\"events lost for subscribers: the window moved past what "
                        "was published\" published=%" PRId64 " window_base=%" PRId64,
                        watch->published, watch->base);
    //  First event after published: a binary search in the ring
    size_t low = 0, high = watch->count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (s_at (watch, middle)->revision <= watch->published)
            low = middle + 1;
        else
            high = middle;
    }
    char topic[512];
    for (size_t i = low; i < watch->count; i++) {
        s_event_t *event = s_at (watch, i);
        snprintf (topic, sizeof topic, "api/%s", event->kind->kind->resource);
        s_publish_one (self, event, topic, event->prev_resource);
        if (event->node) {
            snprintf (topic, sizeof topic, "node/%s/pods", event->node);
            s_publish_one (self, event, topic, event->prev_node);
        }
        watch->published_events++;
    }
    watch->published = watch->revision;
}

static void s_parked_service (zube_apiserver_t *self, bool moved, bool all);
static int64_t s_parked_next_ms (api_watch_t *watch);
static void s_bookmark_event (Zube__WatchEvent *event, const api_kind_t *kind, int64_t rv,
                              char *rv_text, uint8_t *object);

//  Publishes a BOOKMARK on every api/<resource> topic that has not had
//  one at the revision followed, once everything up to it is published:
//  its prev is the topic's last event, so subscribers still see gaps,
//  and its revision lets them move forward while the topic is quiet.
static void
s_publish_bookmarks (zube_apiserver_t *self)
{
    api_watch_t *watch = self->watch;
    if (!watch->publisher || watch->published < watch->revision)
        return;
    char rv[24], prev[24], topic[160];
    api_format_rv (rv, watch->revision);
    for (size_t i = 0; i < self->kind_count; i++) {
        api_kind_t *kind = &self->kinds[i];
        if (kind->bookmark_rv >= watch->revision || kind->metadata_offset < 0)
            continue;
        Zube__WatchEvent event = ZUBE__WATCH_EVENT__INIT;
        uint8_t object[API_RV_SUFFIX_MAX];
        s_bookmark_event (&event, kind, watch->revision, rv, object);
        api_format_rv (prev, kind->topic_rv);
        snprintf (topic, sizeof topic, "api/%s", kind->kind->resource);
        event.prev_resource_version = prev;
        event.topic = topic;
        size_t size = zube__watch_event__get_packed_size (&event);
        uint8_t *packed = api_scratch (&self->scratch2, &self->scratch2_size, size);
        if (!packed)
            return;
        zube__watch_event__pack (&event, packed);
        if (zube_bus_publish (self->bus, topic, packed, size) != 0)
            zube_log_warn ("msg=\"cannot publish a bookmark\" topic=%s", topic);
        kind->bookmark_rv = watch->revision;
    }
}

void
api_watch_follow (zube_apiserver_t *self)
{
    api_watch_t *watch = self->watch;
    //  A batch of ours in flight may already be visible in the store but
    //  not yet durable: its events are read once it is (writer.c)
    if (self->inflight)
        return;
    int64_t start = watch->revision;
    for (int round = 0; round < 1000; round++) {
        int64_t store_revision = 0;
        int64_t before = watch->revision;
        zube_status_t status = zube_store_events (self->store, watch->revision, 10000,
                                                  s_event_add, self, &store_revision);
        if (status == ZUBE_GONE) {
            zube_log_warn ("msg=\"fell behind the store's event log: starting over\" "
                           "revision=%" PRId64,
                           watch->revision);
            api_watch_reset (self);
            return;
        }
        if (status != ZUBE_OK) {
            zube_log_warn ("msg=\"cannot read the event log\" error=\"%s\"",
                           zube_store_error (self->store));
            break;
        }
        //  Done when nothing came or the read reached the store's revision
        //  (the revision alone is not trusted: a write may land between
        //  the two reads of a networked store)
        if (watch->revision == before || store_revision <= watch->revision)
            break;
    }
    s_publish (self);
    s_parked_service (self, watch->revision > start, false);
    watch->next_follow_ms = s_now_ms () + API_FOLLOW_MS;
}

//  ---------------------------------------------------------------------
//  The lease

static void
s_lease_value (zube_apiserver_t *self, char *buf, size_t size, const char *holder,
               int64_t published)
{
    snprintf (buf, size, "holder=%s\npublished=%" PRId64 "\n", holder, published);
}

static void
s_lease_parse (const char *value, char *holder, size_t holder_size, int64_t *published)
{
    *holder = 0;
    *published = 0;
    const char *at = strstr (value, "holder=");
    if (at) {
        at += 7;
        size_t length = strcspn (at, "\n");
        if (length >= holder_size)
            length = holder_size - 1;
        memcpy (holder, at, length);
        holder[length] = 0;
    }
    at = strstr (value, "published=");
    if (at)
        *published = strtoll (at + 10, NULL, 10);
}

static void
s_lease_tick (zube_apiserver_t *self)
{
    api_watch_t *watch = self->watch;
    char value[300];
    int64_t now = s_now_ms ();
    if (watch->publisher) {
        s_lease_value (self, value, sizeof value, self->instance, watch->published);
        int64_t revision = 0;
        zube_status_t status =
            zube_store_put (self->store, API_LEASE_KEY, value, strlen (value),
                            watch->lease_revision, &revision);
        if (status == ZUBE_OK)
            watch->lease_revision = revision;
        else if (status == ZUBE_CONFLICT) {
            watch->publisher = false;
            watch->lease_revision = revision;
            watch->lease_seen_ms = now;
            zube_log_warn ("msg=\"publisher lease lost\" published=%" PRId64,
                           watch->published);
        }
        return;
    }
    char *stored = NULL;
    size_t size = 0;
    int64_t revision = 0;
    zube_status_t status =
        zube_store_get (self->store, API_LEASE_KEY, (void **)&stored, &size, &revision);
    char holder[160] = "";
    int64_t published = 0;
    int64_t expect;
    if (status == ZUBE_NOT_FOUND) {
        //  Nobody ever published: from what this instance has followed
        expect = 0;
        published = watch->revision;
    } else if (status == ZUBE_OK) {
        s_lease_parse (stored, holder, sizeof holder, &published);
        if (revision != watch->lease_revision) {
            watch->lease_revision = revision;
            watch->lease_seen_ms = now;
        }
        if (*holder && now - watch->lease_seen_ms < API_LEASE_EXPIRE_MS) {
            free (stored);
            return;
        }
        expect = revision;
    } else {
        free (stored);
        return;
    }
    free (stored);
    s_lease_value (self, value, sizeof value, self->instance, published);
    int64_t taken = 0;
    if (zube_store_put (self->store, API_LEASE_KEY, value, strlen (value), expect,
                        &taken) == ZUBE_OK) {
        watch->publisher = true;
        watch->lease_revision = taken;
        watch->published = published;
        zube_log_info ("msg=\"publisher lease taken\" previous=\"%s\" published=%" PRId64,
                       holder, published);
        api_watch_follow (self);
    }
}

void
api_watch_release (zube_apiserver_t *self)
{
    api_watch_t *watch = self->watch;
    //  Parked watches end cleanly, before the bus goes
    if (watch && self->store)
        s_parked_service (self, false, true);
    if (!watch || !watch->publisher || !self->store)
        return;
    api_watch_follow (self);
    char value[300];
    s_lease_value (self, value, sizeof value, "", watch->published);
    zube_store_put (self->store, API_LEASE_KEY, value, strlen (value),
                    watch->lease_revision, NULL);
    watch->publisher = false;
}

int
api_watch_tick (zube_apiserver_t *self)
{
    api_watch_t *watch = self->watch;
    int64_t now = s_now_ms ();
    if (now >= watch->next_follow_ms)
        api_watch_follow (self);
    if (now >= watch->next_lease_ms) {
        s_lease_tick (self);
        watch->next_lease_ms = now + API_LEASE_RENEW_MS;
    }
    //  The log keeps twice the window: instances that follow a little
    //  behind, and watchers past the window, still find their events.
    //  Compacted every second, and as soon as a burst has written more
    //  than that, so the log stays bounded (and "watch since" past it is
    //  Gone) whatever the write rate.
    int64_t keep = (int64_t)watch->capacity * 2;
    if (now >= watch->next_compact_ms
        || (watch->publisher && watch->published - watch->compacted_to > 2 * keep)) {
        if (watch->publisher && watch->published > keep
            && zube_store_compact (self->store, watch->published - keep) == ZUBE_OK)
            watch->compacted_to = watch->published - keep;
        watch->next_compact_ms = now + API_LEASE_RENEW_MS;
    }
    if (watch->bookmark_interval_ms && now >= watch->next_bookmark_ms) {
        s_publish_bookmarks (self);
        watch->next_bookmark_ms = now + watch->bookmark_interval_ms;
    }
    if (watch->parked_count && s_parked_next_ms (watch) <= now)
        s_parked_service (self, false, false);
    int64_t next = watch->next_follow_ms;
    if (watch->next_lease_ms < next)
        next = watch->next_lease_ms;
    if (watch->bookmark_interval_ms && watch->next_bookmark_ms < next)
        next = watch->next_bookmark_ms;
    if (s_parked_next_ms (watch) < next)
        next = s_parked_next_ms (watch);
    int64_t wait = next - s_now_ms ();
    return wait < 0 ? 0 : (int)wait;
}

//  ---------------------------------------------------------------------
//  Watch

typedef struct {
    zube_apiserver_t *self;
    const api_kind_t *kind;
    const char *ns;
    zube_selector_t *labels;
    zube_field_selector_t *fields;
    Zube__WatchEvent **events;
    size_t count;
    size_t capacity;
    size_t bytes;
    int64_t last;
    bool full;
    //  Every event holds its own copy of the object with its revision
} s_watch_reply_t;

static bool
s_matches (s_watch_reply_t *reply, const api_kind_t *kind, const char *ns,
           const uint8_t *value, size_t size)
{
    if (kind != reply->kind)
        return false;
    if (reply->ns && (!ns || !streq (ns, reply->ns)))
        return false;
    if (!reply->labels && !reply->fields)
        return true;
    ProtobufCMessage *object =
        protobuf_c_message_unpack (kind->kind->descriptor, NULL, size, value);
    if (!object)
        return false;
    bool match =
        (!reply->labels || zube_selector_matches_object (reply->labels, object)) &&
        (!reply->fields || zube_field_selector_matches (reply->fields, object));
    protobuf_c_message_free_unpacked (object, NULL);
    return match;
}

static int
s_reply_grow (s_watch_reply_t *reply)
{
    size_t capacity = reply->capacity ? reply->capacity * 2 : 64;
    Zube__WatchEvent **grown = realloc (reply->events, capacity * sizeof *grown);
    if (!grown)
        return -1;
    reply->events = grown;
    reply->capacity = capacity;
    return 0;
}

//  A BOOKMARK event at rv (rv_text its decimal form): the object holds
//  only metadata.resourceVersion, written into object
//  (API_RV_SUFFIX_MAX bytes), as Kubernetes sends it.
static void
s_bookmark_event (Zube__WatchEvent *event, const api_kind_t *kind, int64_t rv,
                  char *rv_text, uint8_t *object)
{
    event->type = "BOOKMARK";
    event->resource = (char *)kind->kind->resource;
    event->resource_version = rv_text;
    event->has_object = true;
    event->object.data = object;
    event->object.len = api_with_rv (kind, "", 0, rv, object);
}

static int
s_reply_add (s_watch_reply_t *reply, zube_store_event_type_t type, int64_t revision,
             const char *ns, const char *name, const uint8_t *value, size_t size)
{
    //  What the event adds to the packed reply: the object, its names and
    //  the fields and tags around them, so a reply of many small events
    //  with long names stays under the bus limit too
    size_t cost = size + API_RV_SUFFIX_MAX + (ns ? strlen (ns) : 0) +
                  (name ? strlen (name) : 0) + API_WATCH_EVENT_OVERHEAD;
    if (reply->count == API_WATCH_MAX_EVENTS ||
        (reply->count && reply->bytes + cost > API_LIST_MAX_BYTES)) {
        reply->full = true;
        return -1;
    }
    if (reply->count == reply->capacity && s_reply_grow (reply) != 0)
        return -1;
    Zube__WatchEvent *event = calloc (1, sizeof *event + size + API_RV_SUFFIX_MAX + 48);
    if (!event)
        return -1;
    zube__watch_event__init (event);
    uint8_t *object = (uint8_t *)(event + 1);
    char *rv = (char *)object + size + API_RV_SUFFIX_MAX;
    snprintf (rv, 24, "%" PRId64, revision);
    event->type = (char *)s_type_name (type);
    event->resource = (char *)reply->kind->kind->resource;
    event->has_object = true;
    event->object.data = object;
    event->object.len = api_with_rv (reply->kind, value, size, revision, object);
    event->resource_version = rv;
    //  Names point into memory that outlives the reply's packing
    event->namespace_ = ns ? strdup (ns) : NULL;
    event->name = name ? strdup (name) : NULL;
    reply->events[reply->count++] = event;
    reply->bytes += cost;
    reply->last = revision;
    return 0;
}

typedef struct {
    s_watch_reply_t *reply;
    zube_apiserver_t *self;
    int64_t revision;
} s_log_read_t;

static int
s_log_event (void *arg, const zube_store_event_t *store_event)
{
    s_log_read_t *read = (s_log_read_t *)arg;
    const api_kind_t *kind =
        api_kind_by_key (read->self, store_event->key, store_event->key_size);
    read->revision = store_event->revision;
    if (!kind || kind != read->reply->kind)
        return 0;
    char key[400];
    size_t key_size =
        store_event->key_size < sizeof key - 1 ? store_event->key_size : sizeof key - 1;
    memcpy (key, store_event->key, key_size);
    key[key_size] = 0;
    char *rest = key + 10 + kind->resource_size + 1;
    const char *ns = NULL, *name = rest;
    if (kind->kind->namespaced) {
        char *slash = strchr (rest, '/');
        if (slash) {
            *slash = 0;
            ns = rest;
            name = slash + 1;
        }
    }
    if (!s_matches (read->reply, kind, ns, store_event->value, store_event->value_size))
        return 0;
    if (s_reply_add (read->reply, store_event->type, store_event->revision, ns, name,
                     store_event->value, store_event->value_size) != 0) {
        read->revision = store_event->revision - 1;
        return 1;
    }
    return 0;
}

//  A watch being answered: what it asks for, and (parked) until when it
//  may wait for an event.
typedef struct _s_watcher_t {
    zube_bus_request_t *request;
    Zube__WatchRequest *req;
    s_watch_reply_t reply;
    int64_t since;
    //  Parked: the answer is due at deadline_ms (timeoutSeconds, or just
    //  before the caller's own deadline) or, with bookmarks, at
    //  bookmark_ms; sooner when an event matches.
    int64_t deadline_ms;
    int64_t bookmark_ms;
} s_watcher_t;

static void
s_reply_clear (s_watch_reply_t *reply)
{
    for (size_t i = 0; i < reply->count; i++) {
        free (reply->events[i]->namespace_);
        free (reply->events[i]->name);
        free (reply->events[i]);
    }
    reply->count = 0;
    reply->bytes = 0;
    reply->full = false;
}

static void
s_watcher_destroy (s_watcher_t **watcher_p)
{
    s_watcher_t *watcher = *watcher_p;
    if (!watcher)
        return;
    s_reply_clear (&watcher->reply);
    free (watcher->reply.events);
    zube_selector_destroy (&watcher->reply.labels);
    zube_field_selector_destroy (&watcher->reply.fields);
    if (watcher->req)
        zube__watch_request__free_unpacked (watcher->req, NULL);
    free (watcher);
    *watcher_p = NULL;
}

//  Gathers the matching events after watcher->since into its reply;
//  *through_p is how far that got. False after answering an error (Gone,
//  storage).
static bool
s_collect (zube_apiserver_t *self, s_watcher_t *watcher, int64_t *through_p)
{
    api_watch_t *watch = self->watch;
    s_watch_reply_t *reply = &watcher->reply;
    int64_t since = watcher->since;
    int64_t through = watch->revision;
    if (since >= watch->base) {
        size_t low = 0, high = watch->count;
        while (low < high) {
            size_t middle = (low + high) / 2;
            if (s_at (watch, middle)->revision <= since)
                low = middle + 1;
            else
                high = middle;
        }
        for (size_t i = low; i < watch->count; i++) {
            s_event_t *event = s_at (watch, i);
            if (!s_matches (reply, event->kind, event->ns, event->value,
                            event->value_size))
                continue;
            if (s_reply_add (reply, event->type, event->revision, event->ns, event->name,
                             event->value, event->value_size) != 0) {
                through = event->revision - 1;
                break;
            }
        }
    } else {
        //  Older than the window: the store's own log, if it still has it
        s_log_read_t read = {.reply = reply, .self = self, .revision = since};
        int64_t store_revision = 0;
        zube_status_t status = zube_store_events (self->store, since, API_WATCH_MAX_EVENTS,
                                                  s_log_event, &read, &store_revision);
        if (status == ZUBE_GONE) {
            int64_t revision = 0, compacted = 0;
            zube_store_revision (self->store, &revision, &compacted);
            int64_t oldest =
                watch->base + 1 < compacted + 1 ? watch->base + 1 : compacted + 1;
            api_reply_error (self, watcher->request, ZUBE_GONE, reply->kind, NULL, NULL,
                             "too old resource version: %" PRId64 " (%" PRId64 ")", since,
                             oldest);
            return false;
        }
        if (status != ZUBE_OK) {
            api_reply_error (self, watcher->request, ZUBE_UNAVAILABLE, reply->kind, NULL,
                             NULL, "storage error: %s", zube_store_error (self->store));
            return false;
        }
        through = read.revision < since ? since : read.revision;
    }
    *through_p = through > since ? through : since;
    return true;
}

//  Answers the batch gathered, up to through; with bookmark, a BOOKMARK
//  event carrying through ends it (Kubernetes sends one as a watch's
//  last word, so the watcher knows how far it got).
static void
s_answer (zube_apiserver_t *self, s_watcher_t *watcher, int64_t through, bool bookmark)
{
    s_watch_reply_t *reply = &watcher->reply;
    char rv[24];
    api_format_rv (rv, through);
    Zube__WatchEvent mark = ZUBE__WATCH_EVENT__INIT;
    uint8_t object[API_RV_SUFFIX_MAX];
    bool room = reply->count < reply->capacity || s_reply_grow (reply) == 0;
    if (bookmark && room && reply->kind->metadata_offset >= 0 &&
        (!reply->count || reply->last < through)) {
        s_bookmark_event (&mark, reply->kind, through, rv, object);
        reply->events[reply->count] = &mark;
    } else
        bookmark = false;
    Zube__WatchEventBatch batch = ZUBE__WATCH_EVENT_BATCH__INIT;
    batch.n_events = reply->count + (bookmark ? 1 : 0);
    batch.events = reply->events;
    batch.resource_version = rv;
    size_t size = zube__watch_event_batch__get_packed_size (&batch);
    uint8_t *packed = api_scratch (&self->scratch2, &self->scratch2_size, size);
    if (packed) {
        zube__watch_event_batch__pack (&batch, packed);
        zube_bus_respond (watcher->request, ZUBE_OK, NULL, packed, size);
    } else
        zube_bus_respond_error (watcher->request, ZUBE_INTERNAL, "out of memory");
    if (bookmark)
        reply->events[reply->count] = NULL;
}

//  Parses, authorizes and resolves a watch request; NULL after answering.
static s_watcher_t *
s_watcher_new (zube_apiserver_t *self, zube_bus_request_t *request)
{
    s_watcher_t *watcher = calloc (1, sizeof *watcher);
    if (!watcher) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        return NULL;
    }
    watcher->request = request;
    watcher->reply.self = self;
    watcher->req = (Zube__WatchRequest *)zube_bus_request_unpack_or_reject (
        request, &zube__watch_request__descriptor);
    Zube__WatchRequest *req = watcher->req;
    char error[512];
    if (!req) {
        self->errors++;
        goto fail;
    }
    const api_kind_t *kind = api_registry_kind (self, request, req->resource);
    if (!kind)
        goto fail;
    watcher->reply.kind = kind;
    watcher->reply.ns = kind->kind->namespaced && req->namespace_ && *req->namespace_
                            ? req->namespace_
                            : NULL;
    if (!api_authorize (self, request, "watch", kind, NULL, watcher->reply.ns, NULL, NULL,
                        NULL))
        goto fail;
    if (req->label_selector && *req->label_selector &&
        zube_selector_parse (req->label_selector, &watcher->reply.labels, error,
                             sizeof error) != 0) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, NULL, NULL, "%s", error);
        goto fail;
    }
    if (req->field_selector && *req->field_selector &&
        zube_field_selector_parse (req->field_selector, kind->kind->resource,
                                   &watcher->reply.fields, error, sizeof error) != 0) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, NULL, NULL, "%s", error);
        goto fail;
    }
    watcher->since = api_parse_rv (req->resource_version);
    if (watcher->since < 0) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, NULL, NULL,
                         "invalid resourceVersion \"%s\"", req->resource_version);
        goto fail;
    }
    if (req->has_timeout_seconds && req->timeout_seconds < 0) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, NULL, NULL,
                         "timeoutSeconds: Invalid value: %" PRId64
                         ": must be greater than or equal to 0",
                         req->timeout_seconds);
        goto fail;
    }
    return watcher;
fail:
    watcher->request = NULL;
    s_watcher_destroy (&watcher);
    return NULL;
}

static int
s_park (api_watch_t *watch, s_watcher_t *watcher)
{
    if (watch->parked_count == watch->parked_capacity) {
        size_t capacity = watch->parked_capacity ? watch->parked_capacity * 2 : 16;
        s_watcher_t **grown = realloc (watch->parked, capacity * sizeof *grown);
        if (!grown)
            return -1;
        watch->parked = grown;
        watch->parked_capacity = capacity;
    }
    watch->parked[watch->parked_count++] = watcher;
    return 0;
}

void
api_watch_handle (zube_apiserver_t *self, zube_bus_request_t *request)
{
    api_watch_t *watch = self->watch;
    s_watcher_t *watcher = s_watcher_new (self, request);
    if (!watcher)
        return;
    Zube__WatchRequest *req = watcher->req;
    //  A watcher may be ahead of this instance (it heard another one)
    bool from_now = !req->resource_version || !*req->resource_version;
    if (from_now || watcher->since > watch->revision)
        api_watch_follow (self);
    if (from_now)
        watcher->since = watch->revision;
    int64_t through = 0;
    if (!s_collect (self, watcher, &through)) {
        s_watcher_destroy (&watcher);
        return;
    }
    //  Nothing yet and the watcher may wait (timeoutSeconds): parked until
    //  an event, a bookmark or the timeout, within the caller's deadline
    int remaining = zube_bus_request_remaining_ms (request);
    if (watcher->reply.count == 0 && req->has_timeout_seconds && req->timeout_seconds > 0 &&
        remaining > 2 * API_WATCH_MARGIN_MS && watch->parked_count < API_WATCH_PARKED_MAX) {
        int64_t now = s_now_ms ();
        int64_t wait = req->timeout_seconds > INT32_MAX / 1000
                           ? INT32_MAX
                           : req->timeout_seconds * 1000;
        if (wait > remaining - API_WATCH_MARGIN_MS)
            wait = remaining - API_WATCH_MARGIN_MS;
        watcher->deadline_ms = now + wait;
        watcher->bookmark_ms = req->allow_bookmarks && watch->bookmark_interval_ms
                                   ? now + watch->bookmark_interval_ms
                                   : 0;
        watcher->since = through;
        if (s_park (watch, watcher) == 0) {
            zube_bus_request_defer (request);
            return;
        }
    }
    s_answer (self, watcher, through, req->allow_bookmarks);
    s_watcher_destroy (&watcher);
}

//  The parked watches: answered once an event matches (checked after
//  the window moved), at a bookmark, or at their deadline. all: answer
//  every one now (shutdown, restore).
static void
s_parked_service (zube_apiserver_t *self, bool moved, bool all)
{
    api_watch_t *watch = self->watch;
    int64_t now = s_now_ms ();
    size_t kept = 0;
    for (size_t i = 0; i < watch->parked_count; i++) {
        s_watcher_t *watcher = watch->parked[i];
        bool due = all || now >= watcher->deadline_ms;
        bool mark = watcher->bookmark_ms && now >= watcher->bookmark_ms;
        bool answered = false;
        if (moved || due || mark) {
            int64_t through = watcher->since;
            if (!s_collect (self, watcher, &through))
                answered = true; //  the error was the answer
            else if (watcher->reply.count || due || mark) {
                s_answer (self, watcher, through, watcher->req->allow_bookmarks);
                answered = true;
            } else
                watcher->since = through;
        }
        if (answered)
            s_watcher_destroy (&watcher);
        else
            watch->parked[kept++] = watcher;
    }
    watch->parked_count = kept;
}

//  When the next parked watch is due (INT64_MAX: none).
static int64_t
s_parked_next_ms (api_watch_t *watch)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < watch->parked_count; i++) {
        s_watcher_t *watcher = watch->parked[i];
        if (watcher->deadline_ms < next)
            next = watcher->deadline_ms;
        if (watcher->bookmark_ms && watcher->bookmark_ms < next)
            next = watcher->bookmark_ms;
    }
    return next;
}

//  ---------------------------------------------------------------------
//  Life cycle

static void
s_topic_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static void
s_window_clear (zube_apiserver_t *self)
{
    api_watch_t *watch = self->watch;
    for (size_t i = 0; i < watch->count; i++)
        s_event_clear (s_at (watch, i));
    watch->head = 0;
    watch->count = 0;
    zhashx_purge (watch->node_topics);
    for (size_t i = 0; i < self->kind_count; i++)
        self->kinds[i].topic_rv = 0;
}

//  Fills the window from the log's recent past, so the first events
//  published carry the right prev and a watch since a recent revision
//  is answered at once.
static void
s_window_load (zube_apiserver_t *self)
{
    api_watch_t *watch = self->watch;
    int64_t revision = 0, compacted = 0;
    zube_store_revision (self->store, &revision, &compacted);
    int64_t since = revision - (int64_t)watch->capacity;
    if (since < compacted)
        since = compacted;
    if (since < 0)
        since = 0;
    watch->base = since;
    watch->revision = since;
    bool publisher = watch->publisher;
    watch->publisher = false;
    api_watch_follow (self);
    watch->publisher = publisher;
}

void
api_watch_reset (zube_apiserver_t *self)
{
    //  What parked watches asked for may be gone: they end now
    s_parked_service (self, false, true);
    s_window_clear (self);
    s_window_load (self);
    if (self->watch->publisher && self->watch->published > self->watch->revision)
        self->watch->published = self->watch->revision;
}

api_watch_t *
api_watch_new (zube_apiserver_t *self, size_t window)
{
    api_watch_t *watch = calloc (1, sizeof *watch);
    if (!watch)
        return NULL;
    watch->capacity = window;
    watch->bookmark_interval_ms = self->bookmark_interval_ms;
    watch->next_bookmark_ms = s_now_ms () + watch->bookmark_interval_ms;
    watch->ring = calloc (window, sizeof (s_event_t));
    watch->node_topics = zhashx_new ();
    if (!watch->ring || !watch->node_topics) {
        api_watch_destroy (&watch);
        return NULL;
    }
    zhashx_set_destructor (watch->node_topics, s_topic_free);
    self->watch = watch;
    s_window_load (self);
    watch->lease_seen_ms = s_now_ms ();
    //  A moment for the bus's PUB socket to be heard before publishing
    watch->next_lease_ms = watch->lease_seen_ms + 300;
    return watch;
}

void
api_watch_destroy (api_watch_t **watch_p)
{
    api_watch_t *watch = *watch_p;
    if (!watch)
        return;
    if (watch->ring) {
        for (size_t i = 0; i < watch->count; i++)
            s_event_clear (&watch->ring[(watch->head + i) % watch->capacity]);
        free (watch->ring);
    }
    zhashx_destroy (&watch->node_topics);
    for (size_t i = 0; i < watch->parked_count; i++)
        s_watcher_destroy (&watch->parked[i]);
    free (watch->parked);
    free (watch);
    *watch_p = NULL;
}

int64_t
api_watch_revision (zube_apiserver_t *self)
{
    return self->watch ? self->watch->revision : 0;
}

bool
api_watch_publisher (zube_apiserver_t *self)
{
    return self->watch && self->watch->publisher;
}
