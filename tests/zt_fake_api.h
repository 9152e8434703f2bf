/*  zt_fake_api - a small in-test `api` service for the client and informer
    tests: an in-memory store with one revision counter, create, get, list
    (namespace, label and field selectors, limit/continue), update
    (Conflict on a stale resourceVersion), merge patch, delete, bind, and watch since
    over a window of recent events (GONE beyond it); every write is
    published as one WatchEvent on api/<resource> (and node/<node>/pods for
    a bound pod), with prev_resource_version per topic, as
    docs/api-protocol.md says. It answers errors with an ErrorReply.

    Not an apiserver: no validation, defaults, group commit or durability.
    zt_fake_api_run (endpoint, window) serves until interrupted. */
#ifndef ZT_FAKE_API_H_INCLUDED
#define ZT_FAKE_API_H_INCLUDED

#include "zube/api.h"
#include "zube/bus.h"
#include "zube/kinds.h"
#include "zube/patch.h"
#include "zube/selector.h"
#include "core.pb-c.h"
#include <czmq.h>
#include <inttypes.h>

typedef struct {
    uint8_t *data; //  the object, packed, resourceVersion set
    size_t size;
    int64_t rv;
    const zube_kind_t *kind;
} zt_fake_object_t;

typedef struct {
    int64_t rv;
    char *resource;
    char *namespace;
    char *node;
    char *type;
    uint8_t *object;
    size_t object_size;
    char *name;
} zt_fake_event_t;

typedef struct {
    zube_bus_t *bus;
    zhashx_t *objects; //  "<resource>/<ns>/<name>" -> zt_fake_object_t
    zhashx_t *topic_rv; //  topic -> last rv (as intptr)
    zt_fake_event_t *log;
    size_t log_count, log_capacity, window;
    int64_t revision;
} zt_fake_api_t;

static void
zt_fake_error (zube_bus_request_t *request, zube_status_t status, const char *format, ...)
{
    char message[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    Zube__Status body = ZUBE__STATUS__INIT;
    body.status = "Failure";
    body.message = message;
    body.reason = (char *)zube_status_reason (status);
    body.has_code = 1;
    body.code = zube_status_http_code (status);
    Zube__ErrorReply reply = ZUBE__ERROR_REPLY__INIT;
    reply.status = &body;
    size_t size = zube__error_reply__get_packed_size (&reply);
    uint8_t *data = malloc (size + 1);
    zube__error_reply__pack (&reply, data);
    zube_bus_respond (request, status, message, data, size);
    free (data);
}

static void
zt_fake_key (char *key, size_t size, const zube_kind_t *kind, const char *ns,
             const char *name)
{
    snprintf (key, size, "%s/%s/%s", kind->resource, kind->namespaced && ns ? ns : "",
              name ? name : "");
}

static const char *
zt_fake_node (const ProtobufCMessage *object)
{
    if (object->descriptor != &zube__pod__descriptor)
        return NULL;
    const Zube__Pod *pod = (const Zube__Pod *)object;
    return pod->spec && pod->spec->node_name && *pod->spec->node_name
               ? pod->spec->node_name
               : NULL;
}

static void
zt_fake_pack (const ProtobufCMessage *object, uint8_t **data_p, size_t *size_p)
{
    *size_p = protobuf_c_message_get_packed_size (object);
    *data_p = malloc (*size_p + 1);
    protobuf_c_message_pack (object, *data_p);
}

static void
zt_fake_publish_on (zt_fake_api_t *self, const char *topic, zt_fake_event_t *record)
{
    char prev[32], rv[32];
    int64_t last = (int64_t)(intptr_t)zhashx_lookup (self->topic_rv, topic);
    snprintf (prev, sizeof prev, "%" PRId64, last);
    snprintf (rv, sizeof rv, "%" PRId64, record->rv);
    Zube__WatchEvent event = ZUBE__WATCH_EVENT__INIT;
    event.type = record->type;
    event.resource = record->resource;
    event.has_object = 1;
    event.object.data = record->object;
    event.object.len = record->object_size;
    event.resource_version = rv;
    event.prev_resource_version = prev;
    event.topic = (char *)topic;
    event.namespace_ = record->namespace;
    event.name = record->name;
    uint8_t *data;
    size_t size;
    zt_fake_pack (&event.base, &data, &size);
    zube_bus_publish (self->bus, topic, data, size);
    free (data);
    zhashx_update (self->topic_rv, topic, (void *)(intptr_t)record->rv);
}

//  Records and publishes one write; takes nothing.
static void
zt_fake_event (zt_fake_api_t *self, const char *type, const zube_kind_t *kind,
               const ProtobufCMessage *object, int64_t rv)
{
    if (self->log_count == self->log_capacity) {
        if (self->log_count >= self->window && self->window > 0) {
            //  Drop the older half beyond the window.
            size_t drop = self->log_count - self->window / 2;
            for (size_t index = 0; index < drop; index++) {
                zt_fake_event_t *old = &self->log[index];
                free (old->resource), free (old->namespace), free (old->node);
                free (old->type), free (old->object), free (old->name);
            }
            memmove (self->log, self->log + drop,
                     (self->log_count - drop) * sizeof *self->log);
            self->log_count -= drop;
        } else {
            self->log_capacity = self->log_capacity ? self->log_capacity * 2 : 1024;
            self->log = realloc (self->log, self->log_capacity * sizeof *self->log);
        }
    }
    zt_fake_event_t *record = &self->log[self->log_count++];
    Zube__ObjectMeta *meta = zube_object_meta (object);
    record->rv = rv;
    record->resource = strdup (kind->resource);
    record->namespace = strdup (meta && meta->namespace_ ? meta->namespace_ : "");
    record->name = strdup (meta && meta->name ? meta->name : "");
    const char *node = zt_fake_node (object);
    record->node = node ? strdup (node) : NULL;
    record->type = strdup (type);
    zt_fake_pack (object, &record->object, &record->object_size);
    char topic[300];
    snprintf (topic, sizeof topic, "api/%s", kind->resource);
    zt_fake_publish_on (self, topic, record);
    if (record->node) {
        snprintf (topic, sizeof topic, "node/%s/pods", record->node);
        zt_fake_publish_on (self, topic, record);
    }
}

static void
zt_fake_set_rv (ProtobufCMessage *object, int64_t rv)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    if (!meta)
        return;
    free (meta->resource_version);
    char text[32];
    snprintf (text, sizeof text, "%" PRId64, rv);
    meta->resource_version = strdup (text);
}

static void
zt_fake_store (zt_fake_api_t *self, const char *key, const zube_kind_t *kind,
               ProtobufCMessage *object, int64_t rv)
{
    zt_fake_object_t *stored = zhashx_lookup (self->objects, key);
    if (!stored) {
        stored = calloc (1, sizeof *stored);
        zhashx_insert (self->objects, key, stored);
    }
    free (stored->data);
    zt_fake_pack (object, &stored->data, &stored->size);
    stored->rv = rv;
    stored->kind = kind;
}

static void
zt_fake_respond_object (zube_bus_request_t *request, const zube_kind_t *kind,
                        const uint8_t *data, size_t size, int64_t rv)
{
    char text[32];
    snprintf (text, sizeof text, "%" PRId64, rv);
    Zube__ObjectReply reply = ZUBE__OBJECT_REPLY__INIT;
    reply.has_object = 1;
    reply.object.data = (uint8_t *)data;
    reply.object.len = size;
    reply.kind = (char *)kind->kind;
    reply.api_version = (char *)kind->api_version;
    reply.resource_version = text;
    zube_bus_respond_msg (request, &reply.base);
}

//  create, update and bind: the object written.
static void
zt_fake_write (zt_fake_api_t *self, zube_bus_request_t *request, const zube_kind_t *kind,
               const char *ns, ProtobufCMessage *object, bool create)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    if (!meta || !meta->name || !*meta->name) {
        zt_fake_error (request, ZUBE_INVALID, "%s \"\" is invalid: metadata.name: Required value",
                       kind->kind);
        return;
    }
    if (kind->namespaced && (!meta->namespace_ || !*meta->namespace_)) {
        free (meta->namespace_);
        meta->namespace_ = strdup (ns && *ns ? ns : "default");
    }
    char key[600];
    zt_fake_key (key, sizeof key, kind, meta->namespace_, meta->name);
    zt_fake_object_t *stored = zhashx_lookup (self->objects, key);
    if (create && stored) {
        zt_fake_error (request, ZUBE_ALREADY_EXISTS, "%s \"%s\" already exists",
                       kind->resource, meta->name);
        return;
    }
    if (!create && !stored) {
        zt_fake_error (request, ZUBE_NOT_FOUND, "%s \"%s\" not found", kind->resource,
                       meta->name);
        return;
    }
    if (!create && meta->resource_version && *meta->resource_version
        && atoll (meta->resource_version) != stored->rv) {
        zt_fake_error (request, ZUBE_CONFLICT,
                       "Operation cannot be fulfilled on %s \"%s\": the object has been "
                       "modified; please apply your changes to the latest version and try "
                       "again",
                       kind->resource, meta->name);
        return;
    }
    int64_t rv = ++self->revision;
    zt_fake_set_rv (object, rv);
    zt_fake_store (self, key, kind, object, rv);
    zt_fake_event (self, create ? "ADDED" : "MODIFIED", kind, object, rv);
    stored = zhashx_lookup (self->objects, key);
    zt_fake_respond_object (request, kind, stored->data, stored->size, rv);
}

static int
zt_fake_strcmp (const void *a, const void *b)
{
    return strcmp (*(char *const *)a, *(char *const *)b);
}

static void
zt_fake_list (zt_fake_api_t *self, zube_bus_request_t *request, const zube_kind_t *kind,
              Zube__ListRequest *list)
{
    zube_selector_t *labels = NULL;
    zube_field_selector_t *fields = NULL;
    char error[256];
    if (zube_selector_parse (list->label_selector, &labels, error, sizeof error) != 0
        || (list->field_selector && *list->field_selector
            && zube_field_selector_parse (list->field_selector, kind->resource, &fields,
                                          error, sizeof error)
                   != 0)) {
        zube_selector_destroy (&labels);
        zt_fake_error (request, ZUBE_BAD_REQUEST, "%s", error);
        return;
    }
    size_t count = 0;
    char **keys = malloc ((zhashx_size (self->objects) + 1) * sizeof *keys);
    char prefix[300];
    snprintf (prefix, sizeof prefix, "%s/%s", kind->resource,
              list->namespace_ && *list->namespace_ ? list->namespace_ : "");
    for (zt_fake_object_t *stored = zhashx_first (self->objects); stored;
         stored = zhashx_next (self->objects)) {
        const char *key = zhashx_cursor (self->objects);
        if (strncmp (key, prefix, strlen (prefix)) == 0
            && (list->namespace_ && *list->namespace_ ? key[strlen (prefix)] == '/' : true)
            && stored->kind == kind)
            keys[count++] = (char *)key;
    }
    qsort (keys, count, sizeof *keys, zt_fake_strcmp);
    Zube__ListReply reply = ZUBE__LIST_REPLY__INIT;
    reply.items = calloc (count + 1, sizeof *reply.items);
    ProtobufCMessage **unpacked = calloc (count + 1, sizeof *unpacked);
    size_t start = list->continue_ && *list->continue_ ? (size_t)atoll (list->continue_) : 0;
    size_t limit = list->has_limit && list->limit > 0 ? (size_t)list->limit : SIZE_MAX;
    size_t index = start;
    for (; index < count && reply.n_items < limit; index++) {
        zt_fake_object_t *stored = zhashx_lookup (self->objects, keys[index]);
        ProtobufCMessage *object =
            protobuf_c_message_unpack (kind->descriptor, NULL, stored->size, stored->data);
        bool match = zube_selector_matches_object (labels, object)
                     && (!fields || zube_field_selector_matches (fields, object));
        protobuf_c_message_free_unpacked (object, NULL);
        if (!match)
            continue;
        reply.items[reply.n_items].data = stored->data;
        reply.items[reply.n_items].len = stored->size;
        reply.n_items++;
    }
    char rv[32], next[32];
    snprintf (rv, sizeof rv, "%" PRId64, self->revision);
    reply.resource_version = rv;
    if (index < count) {
        snprintf (next, sizeof next, "%zu", index);
        reply.continue_ = next;
        reply.has_remaining_item_count = 1;
        reply.remaining_item_count = (int64_t)(count - index);
    }
    reply.kind = (char *)kind->kind;
    reply.api_version = (char *)kind->api_version;
    zube_bus_respond_msg (request, &reply.base);
    free (reply.items);
    free (unpacked);
    free (keys);
    zube_selector_destroy (&labels);
    zube_field_selector_destroy (&fields);
}

static void
zt_fake_watch (zt_fake_api_t *self, zube_bus_request_t *request, const zube_kind_t *kind,
               Zube__WatchRequest *watch)
{
    int64_t since = watch->resource_version ? atoll (watch->resource_version) : 0;
    int64_t oldest = self->log_count ? self->log[0].rv : self->revision + 1;
    if (since < oldest - 1) {
        zt_fake_error (request, ZUBE_GONE, "too old resource version: %" PRId64 " (%" PRId64 ")",
                       since, oldest - 1);
        return;
    }
    const char *node = NULL;
    if (watch->field_selector && strncmp (watch->field_selector, "spec.nodeName=", 14) == 0)
        node = watch->field_selector + 14;
    Zube__WatchEventBatch batch = ZUBE__WATCH_EVENT_BATCH__INIT;
    batch.events = calloc (10000, sizeof *batch.events);
    Zube__WatchEvent *events = calloc (10000, sizeof *events);
    char (*rvs)[32] = calloc (10000, 32);
    int64_t reached = self->revision;
    size_t bytes = 0;
    for (size_t index = 0; index < self->log_count; index++) {
        zt_fake_event_t *record = &self->log[index];
        if (record->rv <= since || strcmp (record->resource, kind->resource) != 0)
            continue;
        if (watch->namespace_ && *watch->namespace_
            && strcmp (watch->namespace_, record->namespace) != 0)
            continue;
        if (node && !(record->node && strcmp (record->node, node) == 0))
            continue;
        //  At most 10000 events, and well under the bus's message limit.
        if (batch.n_events == 10000 || bytes + record->object_size > 3 * 1024 * 1024) {
            reached = batch.n_events ? record->rv - 1 : reached;
            break;
        }
        Zube__WatchEvent *event = &events[batch.n_events];
        zube__watch_event__init (event);
        snprintf (rvs[batch.n_events], 32, "%" PRId64, record->rv);
        event->type = record->type;
        event->resource = record->resource;
        event->has_object = 1;
        event->object.data = record->object;
        event->object.len = record->object_size;
        event->resource_version = rvs[batch.n_events];
        event->namespace_ = record->namespace;
        event->name = record->name;
        batch.events[batch.n_events++] = event;
        bytes += record->object_size + 64;
    }
    char rv[32];
    snprintf (rv, sizeof rv, "%" PRId64, reached);
    batch.resource_version = rv;
    zube_bus_respond_msg (request, &batch.base);
    free (batch.events);
    free (events);
    free (rvs);
}

static void
zt_fake_handler (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    (void)bus;
    zt_fake_api_t *self = arg;
    const char *method = zube_bus_request_method (request);
    if (streq (method, "create") || streq (method, "update")) {
        bool create = streq (method, "create");
        ProtobufCMessage *message = zube_bus_request_unpack_or_reject (
            request, create ? &zube__create_request__descriptor
                            : &zube__update_request__descriptor);
        if (!message)
            return;
        const char *resource = create ? ((Zube__CreateRequest *)message)->resource
                                      : ((Zube__UpdateRequest *)message)->resource;
        const char *ns = create ? ((Zube__CreateRequest *)message)->namespace_
                                : ((Zube__UpdateRequest *)message)->namespace_;
        ProtobufCBinaryData bytes = create ? ((Zube__CreateRequest *)message)->object
                                           : ((Zube__UpdateRequest *)message)->object;
        const zube_kind_t *kind = zube_kind_by_resource (resource);
        if (!kind) {
            zt_fake_error (request, ZUBE_NOT_FOUND,
                           "the server doesn't have a resource type \"%s\"", resource);
            protobuf_c_message_free_unpacked (message, NULL);
            return;
        }
        if (create && ((Zube__CreateRequest *)message)->subresource
            && streq (((Zube__CreateRequest *)message)->subresource, "binding")) {
            Zube__Binding *binding = zube__binding__unpack (NULL, bytes.len, bytes.data);
            char key[600];
            zt_fake_key (key, sizeof key, kind, ns, ((Zube__CreateRequest *)message)->name);
            zt_fake_object_t *stored = zhashx_lookup (self->objects, key);
            if (!stored || !binding || !binding->target) {
                zt_fake_error (request, ZUBE_NOT_FOUND, "pods \"%s\" not found",
                               ((Zube__CreateRequest *)message)->name);
            } else {
                Zube__Pod *pod = zube__pod__unpack (NULL, stored->size, stored->data);
                if (!pod->spec) {
                    pod->spec = malloc (sizeof *pod->spec);
                    zube__pod_spec__init (pod->spec);
                }
                if (pod->spec->node_name && *pod->spec->node_name)
                    zt_fake_error (request, ZUBE_CONFLICT,
                                   "pod %s is already assigned to node \"%s\"",
                                   pod->metadata->name, pod->spec->node_name);
                else {
                    free (pod->spec->node_name);
                    pod->spec->node_name = strdup (binding->target->name);
                    int64_t rv = ++self->revision;
                    zt_fake_set_rv (&pod->base, rv);
                    zt_fake_store (self, key, kind, &pod->base, rv);
                    zt_fake_event (self, "MODIFIED", kind, &pod->base, rv);
                    zube_bus_respond (request, ZUBE_OK, NULL, NULL, 0);
                }
                zube__pod__free_unpacked (pod, NULL);
            }
            if (binding)
                zube__binding__free_unpacked (binding, NULL);
            protobuf_c_message_free_unpacked (message, NULL);
            return;
        }
        ProtobufCMessage *object =
            protobuf_c_message_unpack (kind->descriptor, NULL, bytes.len, bytes.data);
        if (!object)
            zt_fake_error (request, ZUBE_BAD_REQUEST, "undecodable object");
        else {
            zt_fake_write (self, request, kind, ns, object, create);
            protobuf_c_message_free_unpacked (object, NULL);
        }
        protobuf_c_message_free_unpacked (message, NULL);
    } else if (streq (method, "get") || streq (method, "delete")) {
        bool get = streq (method, "get");
        ProtobufCMessage *message = zube_bus_request_unpack_or_reject (
            request, get ? &zube__get_request__descriptor : &zube__delete_request__descriptor);
        if (!message)
            return;
        const char *resource = get ? ((Zube__GetRequest *)message)->resource
                                   : ((Zube__DeleteRequest *)message)->resource;
        const char *ns = get ? ((Zube__GetRequest *)message)->namespace_
                             : ((Zube__DeleteRequest *)message)->namespace_;
        const char *name = get ? ((Zube__GetRequest *)message)->name
                               : ((Zube__DeleteRequest *)message)->name;
        const zube_kind_t *kind = zube_kind_by_resource (resource);
        char key[600];
        zt_fake_object_t *stored = NULL;
        if (kind) {
            zt_fake_key (key, sizeof key, kind, ns, name);
            stored = zhashx_lookup (self->objects, key);
        }
        if (!stored)
            zt_fake_error (request, ZUBE_NOT_FOUND, "%s \"%s\" not found",
                           kind ? kind->resource : resource, name ? name : "");
        else if (get)
            zt_fake_respond_object (request, kind, stored->data, stored->size, stored->rv);
        else {
            ProtobufCMessage *object = protobuf_c_message_unpack (
                kind->descriptor, NULL, stored->size, stored->data);
            int64_t rv = ++self->revision;
            zt_fake_set_rv (object, rv);
            zt_fake_event (self, "DELETED", kind, object, rv);
            uint8_t *data;
            size_t size;
            zt_fake_pack (object, &data, &size);
            zt_fake_respond_object (request, kind, data, size, rv);
            free (data);
            protobuf_c_message_free_unpacked (object, NULL);
            free (stored->data);
            free (stored);
            zhashx_delete (self->objects, key);
        }
        protobuf_c_message_free_unpacked (message, NULL);
    } else if (streq (method, "list") || streq (method, "watch")) {
        bool list = streq (method, "list");
        ProtobufCMessage *message = zube_bus_request_unpack_or_reject (
            request, list ? &zube__list_request__descriptor : &zube__watch_request__descriptor);
        if (!message)
            return;
        const char *resource = list ? ((Zube__ListRequest *)message)->resource
                                    : ((Zube__WatchRequest *)message)->resource;
        const zube_kind_t *kind = zube_kind_by_resource (resource);
        if (!kind)
            zt_fake_error (request, ZUBE_NOT_FOUND,
                           "the server doesn't have a resource type \"%s\"", resource);
        else if (list)
            zt_fake_list (self, request, kind, (Zube__ListRequest *)message);
        else
            zt_fake_watch (self, request, kind, (Zube__WatchRequest *)message);
        protobuf_c_message_free_unpacked (message, NULL);
    } else if (streq (method, "patch")) {
        Zube__PatchRequest *patch = (Zube__PatchRequest *)zube_bus_request_unpack_or_reject (
            request, &zube__patch_request__descriptor);
        if (!patch)
            return;
        const zube_kind_t *kind = zube_kind_by_resource (patch->resource);
        char key[600], error[512], *text = strndup (
            (const char *)(patch->patch.data ? patch->patch.data : (uint8_t *)""),
            patch->patch.len);
        zt_fake_object_t *stored = NULL;
        if (kind) {
            zt_fake_key (key, sizeof key, kind, patch->namespace_, patch->name);
            stored = zhashx_lookup (self->objects, key);
        }
        ProtobufCMessage *current = NULL, *patched = NULL;
        if (!stored)
            zt_fake_error (request, ZUBE_NOT_FOUND, "%s \"%s\" not found",
                           kind ? kind->resource : patch->resource, patch->name);
        else if (!(current = protobuf_c_message_unpack (kind->descriptor, NULL, stored->size,
                                                        stored->data))
                 || zube_merge_patch_apply (current, text, &patched, error, sizeof error) != 0)
            zt_fake_error (request, ZUBE_BAD_REQUEST, "%s", error);
        else {
            int64_t rv = ++self->revision;
            zt_fake_set_rv (patched, rv);
            zt_fake_store (self, key, kind, patched, rv);
            zt_fake_event (self, "MODIFIED", kind, patched, rv);
            stored = zhashx_lookup (self->objects, key);
            zt_fake_respond_object (request, kind, stored->data, stored->size, rv);
        }
        if (current)
            protobuf_c_message_free_unpacked (current, NULL);
        if (patched)
            protobuf_c_message_free_unpacked (patched, NULL);
        free (text);
        zube__patch_request__free_unpacked (patch, NULL);
    } else
        zt_fake_error (request, ZUBE_NOT_IMPLEMENTED, "no method %s", method);
}

static int
zt_fake_api_run (const char *endpoint, size_t window)
{
    zt_fake_api_t self = {.objects = zhashx_new (), .topic_rv = zhashx_new (),
                          .window = window ? window : 100000};
    self.bus = zube_bus_new (&(zube_bus_config_t){
        .endpoint = endpoint, .insecure = true, .heartbeat_ms = 200});
    if (!self.bus || zube_bus_serve (self.bus, ZUBE_API_SERVICE, zt_fake_handler, &self) != 0)
        return 2;
    while (zube_bus_poll (self.bus, 100) >= 0)
        ;
    zube_bus_destroy (&self.bus);
    return 0;
}

#endif
