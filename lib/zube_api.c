/*  zube_api - calls to the apiserver (bus service "api") from any client.

    Packs the requests of schemas/api.proto, sends them through the borrowed
    zube_bus_t, unpacks the objects of the replies with their kinds'
    descriptors, and turns every failure into a zube_api_error_t: the
    apiserver's ErrorReply (Kubernetes' Status) when it answered, the bus's
    own text with the status's reason (ServiceUnavailable, Timeout, ...)
    when nothing did. docs/api-protocol.md describes the methods. */
#include "zube/api.h"
#include "zube/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  An asynchronous call until its one outcome. Contexts hang in a list on
//  their zube_api_t so that destroying it can give each its outcome
//  (UNAVAILABLE) at once; the bus's later outcome then finds it cancelled
//  and only frees it.
typedef struct _s_async_t {
    zube_api_t *api; //  NULL once cancelled
    zube_api_done_fn *fn;
    void *arg;
    const ProtobufCMessageDescriptor *reply_desc;
    struct _s_async_t *prev, *next;
} s_async_t;

struct _zube_api_t {
    zube_bus_t *bus;
    int timeout_ms;
    s_async_t *calls; //  in flight
};

//  --------------------------------------------------------------------------
//  Lifecycle

zube_api_t *
zube_api_new (zube_bus_t *bus)
{
    if (!bus)
        return NULL;
    zube_api_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->bus = bus;
    self->timeout_ms = ZUBE_BUS_DEFAULT_TIMEOUT_MS;
    return self;
}

void
zube_api_destroy (zube_api_t **self_p)
{
    zube_api_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    //  Every call still waiting ends here, once; the bus's outcome later
    //  only frees the context.
    while (self->calls) {
        s_async_t *call = self->calls;
        self->calls = call->next;
        call->prev = call->next = NULL;
        call->api = NULL;
        zube_api_error_t error;
        zube_api_error_from_reply (&error, ZUBE_UNAVAILABLE, "api client closed", NULL, 0);
        call->fn (self, ZUBE_UNAVAILABLE, NULL, &error, call->arg);
    }
    free (self);
    *self_p = NULL;
}

zube_bus_t *
zube_api_bus (zube_api_t *self)
{
    return self->bus;
}

void
zube_api_set_timeout (zube_api_t *self, int timeout_ms)
{
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : ZUBE_BUS_DEFAULT_TIMEOUT_MS;
}

void
zube_api_list_destroy (zube_api_list_t **self_p)
{
    zube_api_list_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    for (size_t index = 0; index < self->count; index++)
        protobuf_c_message_free_unpacked (self->items[index], NULL);
    free (self->items);
    free (self->resource_version);
    free (self->continue_token);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Errors

static void
s_copy (char *target, size_t size, const char *source)
{
    snprintf (target, size, "%s", source ? source : "");
}

static void
s_error_ok (zube_api_error_t *error)
{
    if (!error)
        return;
    error->status = ZUBE_OK;
    error->reason[0] = 0;
    error->code = 200;
    error->message[0] = 0;
    error->cause_count = 0;
}

static void
s_error_set (zube_api_error_t *error, zube_status_t status, const char *message)
{
    if (!error)
        return;
    zube_api_error_from_reply (error, status, message, NULL, 0);
}

void
zube_api_error_from_reply (zube_api_error_t *error, zube_status_t status,
                           const char *bus_error, const uint8_t *payload,
                           size_t payload_size)
{
    if (!error)
        return;
    memset (error, 0, sizeof *error);
    error->status = status;
    s_copy (error->reason, sizeof error->reason, zube_status_reason (status));
    error->code = zube_status_http_code (status);
    Zube__ErrorReply *reply = NULL;
    if (payload && payload_size)
        reply = zube__error_reply__unpack (NULL, payload_size, payload);
    const Zube__Status *body = reply ? reply->status : NULL;
    if (body && body->reason && *body->reason)
        s_copy (error->reason, sizeof error->reason, body->reason);
    if (body && body->has_code && body->code > 0)
        error->code = body->code;
    if (body && body->message && *body->message)
        s_copy (error->message, sizeof error->message, body->message);
    else if (bus_error && *bus_error)
        s_copy (error->message, sizeof error->message, bus_error);
    else
        s_copy (error->message, sizeof error->message, zube_status_reason (status));
    if (body && body->details) {
        for (size_t index = 0; index < body->details->n_causes
                               && error->cause_count < ZUBE_API_MAX_CAUSES;
             index++) {
            const Zube__StatusCause *cause = body->details->causes[index];
            if (!cause)
                continue;
            size_t at = error->cause_count++;
            s_copy (error->causes[at].reason, sizeof error->causes[at].reason,
                    cause->reason);
            s_copy (error->causes[at].field, sizeof error->causes[at].field,
                    cause->field);
            s_copy (error->causes[at].message, sizeof error->causes[at].message,
                    cause->message);
        }
    }
    if (reply)
        zube__error_reply__free_unpacked (reply, NULL);
}

//  --------------------------------------------------------------------------
//  Calls

static uint8_t *
s_pack (const ProtobufCMessage *message, size_t *size_p)
{
    size_t size = protobuf_c_message_get_packed_size (message);
    uint8_t *data = malloc (size ? size : 1);
    if (data)
        protobuf_c_message_pack (message, data);
    *size_p = size;
    return data;
}

//  Turns a bus reply into the call's outcome: status, error and (when OK
//  and wanted) the unpacked reply message.
static zube_status_t
s_outcome (const zube_bus_reply_t *reply, const ProtobufCMessageDescriptor *reply_desc,
           ProtobufCMessage **reply_p, zube_api_error_t *error)
{
    if (reply->status != ZUBE_OK) {
        if (error)
            zube_api_error_from_reply (error, reply->status, reply->error, reply->payload,
                                       reply->payload_size);
        return reply->status;
    }
    if (reply_desc && reply_p) {
        ProtobufCMessage *message = protobuf_c_message_unpack (
            reply_desc, NULL, reply->payload_size, reply->payload ? reply->payload
                                                                   : (const uint8_t *)"");
        if (!message) {
            s_error_set (error, ZUBE_INTERNAL, "cannot decode the apiserver's reply");
            return ZUBE_INTERNAL;
        }
        *reply_p = message;
    }
    s_error_ok (error);
    return ZUBE_OK;
}

zube_status_t
zube_api_call (zube_api_t *self, const char *method, const ProtobufCMessage *request,
               const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply_p,
               zube_api_error_t *error)
{
    size_t size = 0;
    uint8_t *data = NULL;
    if (request && !(data = s_pack (request, &size))) {
        s_error_set (error, ZUBE_INTERNAL, "out of memory");
        return ZUBE_INTERNAL;
    }
    zube_bus_reply_t *reply = NULL;
    zube_bus_call (self->bus, ZUBE_API_SERVICE, method, data, size, self->timeout_ms,
                   &reply);
    free (data);
    if (!reply) {
        s_error_set (error, ZUBE_INTERNAL, "out of memory");
        return ZUBE_INTERNAL;
    }
    zube_status_t status = s_outcome (reply, reply_desc, reply_p, error);
    zube_bus_reply_destroy (&reply);
    return status;
}

static void
s_async_unlink (zube_api_t *api, s_async_t *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else if (api->calls == call)
        api->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

static void
s_async_done (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg)
{
    (void)bus;
    s_async_t *call = arg;
    zube_api_t *api = call->api;
    if (api) {
        s_async_unlink (api, call);
        ProtobufCMessage *message = NULL;
        zube_api_error_t error;
        zube_status_t status = s_outcome (reply, call->reply_desc, &message, &error);
        call->fn (api, status, message, &error, call->arg);
    }
    free (call);
    zube_bus_reply_destroy (&reply);
}

int
zube_api_call_async (zube_api_t *self, const char *method, const ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *reply_desc, zube_api_done_fn *fn,
                     void *arg)
{
    if (!fn)
        return -1;
    size_t size = 0;
    uint8_t *data = NULL;
    if (request && !(data = s_pack (request, &size)))
        return -1;
    s_async_t *call = calloc (1, sizeof *call);
    if (!call) {
        free (data);
        return -1;
    }
    call->api = self;
    call->fn = fn;
    call->arg = arg;
    call->reply_desc = reply_desc;
    //  Linked before sending: a connection closing inside the send could
    //  deliver the outcome at once.
    call->next = self->calls;
    if (self->calls)
        self->calls->prev = call;
    self->calls = call;
    uint64_t id = zube_bus_call_async (self->bus, ZUBE_API_SERVICE, method, data, size,
                                       self->timeout_ms, s_async_done, call);
    free (data);
    if (id == 0) {
        s_async_unlink (self, call);
        free (call);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Typed calls

static const zube_kind_t *
s_kind (const char *resource, zube_api_error_t *error)
{
    const zube_kind_t *kind = resource ? zube_kind_by_resource (resource) : NULL;
    if (!kind) {
        char text[320];
        snprintf (text, sizeof text,
                  "the server doesn't have a resource type \"%s\"",
                  resource ? resource : "");
        s_error_set (error, ZUBE_NOT_FOUND, text);
    }
    return kind;
}

//  The object of an ObjectReply, as the kind the reply names (else the
//  kind asked for).
static zube_status_t
s_object_from_reply (const zube_kind_t *kind, Zube__ObjectReply *reply,
                     ProtobufCMessage **object_p, zube_api_error_t *error)
{
    if (!object_p) {
        s_error_ok (error);
        return ZUBE_OK;
    }
    const zube_kind_t *named = NULL;
    if (reply->kind && *reply->kind)
        named = zube_kind_lookup (reply->api_version && *reply->api_version
                                      ? reply->api_version
                                      : NULL,
                                  reply->kind);
    if (named)
        kind = named;
    //  The scale subresource answers autoscaling/v1 Scale, no kind of its own
    bool scale = !named && reply->kind && strcmp (reply->kind, "Scale") == 0;
    ProtobufCMessage *object = protobuf_c_message_unpack (
        scale ? &zube__scale__descriptor : kind->descriptor, NULL, reply->has_object ? reply->object.len : 0,
        reply->has_object && reply->object.data ? reply->object.data
                                                : (const uint8_t *)"");
    if (!object) {
        s_error_set (error, ZUBE_INTERNAL, "cannot decode the object in the reply");
        return ZUBE_INTERNAL;
    }
    *object_p = object;
    s_error_ok (error);
    return ZUBE_OK;
}

static zube_status_t
s_object_call (zube_api_t *self, const char *method, const zube_kind_t *kind,
               const ProtobufCMessage *request, ProtobufCMessage **object_p,
               zube_api_error_t *error)
{
    Zube__ObjectReply *reply = NULL;
    zube_status_t status =
        zube_api_call (self, method, request, &zube__object_reply__descriptor,
                       (ProtobufCMessage **)&reply, error);
    if (status != ZUBE_OK)
        return status;
    status = s_object_from_reply (kind, reply, object_p, error);
    zube__object_reply__free_unpacked (reply, NULL);
    return status;
}

static const char *
s_meta_namespace (const ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    return meta && meta->namespace_ && *meta->namespace_ ? meta->namespace_ : NULL;
}

zube_status_t
zube_api_create (zube_api_t *self, const char *resource, const char *namespace,
                 const ProtobufCMessage *object, bool dry_run, ProtobufCMessage **object_p,
                 zube_api_error_t *error)
{
    const zube_kind_t *kind = s_kind (resource, error);
    if (!kind)
        return ZUBE_NOT_FOUND;
    if (!object) {
        s_error_set (error, ZUBE_BAD_REQUEST, "no object to create");
        return ZUBE_BAD_REQUEST;
    }
    Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
    request.resource = (char *)resource;
    request.namespace_ = (char *)(namespace ? namespace : s_meta_namespace (object));
    size_t size;
    uint8_t *data = s_pack (object, &size);
    if (!data) {
        s_error_set (error, ZUBE_INTERNAL, "out of memory");
        return ZUBE_INTERNAL;
    }
    request.has_object = 1;
    request.object.len = size;
    request.object.data = data;
    if (dry_run) {
        request.has_dry_run = 1;
        request.dry_run = 1;
    }
    zube_status_t status = s_object_call (self, "create", kind, &request.base, object_p,
                                          error);
    free (data);
    return status;
}

static zube_status_t
s_get (zube_api_t *self, const char *resource, const char *namespace, const char *name,
       const char *subresource, ProtobufCMessage **object_p, zube_api_error_t *error)
{
    const zube_kind_t *kind = s_kind (resource, error);
    if (!kind)
        return ZUBE_NOT_FOUND;
    Zube__GetRequest request = ZUBE__GET_REQUEST__INIT;
    request.resource = (char *)resource;
    request.namespace_ = (char *)namespace;
    request.name = (char *)name;
    request.subresource = (char *)subresource;
    return s_object_call (self, "get", kind, &request.base, object_p, error);
}

zube_status_t
zube_api_get (zube_api_t *self, const char *resource, const char *namespace,
              const char *name, ProtobufCMessage **object_p, zube_api_error_t *error)
{
    return s_get (self, resource, namespace, name, NULL, object_p, error);
}

zube_status_t
zube_api_list (zube_api_t *self, const char *resource,
               const zube_api_list_options_t *options, zube_api_list_t **list_p,
               zube_api_error_t *error)
{
    const zube_kind_t *kind = s_kind (resource, error);
    if (!kind)
        return ZUBE_NOT_FOUND;
    Zube__ListRequest request = ZUBE__LIST_REQUEST__INIT;
    request.resource = (char *)resource;
    if (options) {
        request.namespace_ = (char *)options->namespace;
        request.label_selector = (char *)options->label_selector;
        request.field_selector = (char *)options->field_selector;
        if (options->limit > 0) {
            request.has_limit = 1;
            request.limit = options->limit;
        }
        request.continue_ = (char *)options->continue_token;
    }
    Zube__ListReply *reply = NULL;
    zube_status_t status =
        zube_api_call (self, "list", &request.base, &zube__list_reply__descriptor,
                       (ProtobufCMessage **)&reply, error);
    if (status != ZUBE_OK)
        return status;
    zube_api_list_t *list = calloc (1, sizeof *list);
    if (list)
        list->items = calloc (reply->n_items ? reply->n_items : 1, sizeof *list->items);
    if (!list || !list->items) {
        free (list);
        zube__list_reply__free_unpacked (reply, NULL);
        s_error_set (error, ZUBE_INTERNAL, "out of memory");
        return ZUBE_INTERNAL;
    }
    list->kind = kind;
    if (reply->kind && *reply->kind) {
        const zube_kind_t *named = zube_kind_lookup (
            reply->api_version && *reply->api_version ? reply->api_version : NULL,
            reply->kind);
        //  A list reply may name the List kind or the item kind.
        if (!named && strlen (reply->kind) > 4
            && strcmp (reply->kind + strlen (reply->kind) - 4, "List") == 0) {
            char item_kind[128];
            snprintf (item_kind, sizeof item_kind, "%.*s", (int)strlen (reply->kind) - 4,
                      reply->kind);
            named = zube_kind_lookup (
                reply->api_version && *reply->api_version ? reply->api_version : NULL,
                item_kind);
        }
        if (named)
            list->kind = named;
    }
    for (size_t index = 0; index < reply->n_items; index++) {
        ProtobufCMessage *item = protobuf_c_message_unpack (
            list->kind->descriptor, NULL, reply->items[index].len,
            reply->items[index].data ? reply->items[index].data : (const uint8_t *)"");
        if (!item) {
            zube__list_reply__free_unpacked (reply, NULL);
            zube_api_list_destroy (&list);
            s_error_set (error, ZUBE_INTERNAL, "cannot decode an item of the list");
            return ZUBE_INTERNAL;
        }
        list->items[list->count++] = item;
    }
    list->resource_version = strdup (reply->resource_version ? reply->resource_version : "");
    if (reply->continue_ && *reply->continue_)
        list->continue_token = strdup (reply->continue_);
    list->remaining_item_count = reply->has_remaining_item_count
                                     ? reply->remaining_item_count
                                     : 0;
    zube__list_reply__free_unpacked (reply, NULL);
    if (!list->resource_version) {
        zube_api_list_destroy (&list);
        s_error_set (error, ZUBE_INTERNAL, "out of memory");
        return ZUBE_INTERNAL;
    }
    *list_p = list;
    s_error_ok (error);
    return ZUBE_OK;
}

zube_status_t
zube_api_get_scale (zube_api_t *self, const char *resource, const char *namespace,
                    const char *name, Zube__Scale **scale_p, zube_api_error_t *error)
{
    ProtobufCMessage *object = NULL;
    zube_status_t status =
        s_get (self, resource, namespace, name, "scale", scale_p ? &object : NULL, error);
    if (status == ZUBE_OK && scale_p && object->descriptor != &zube__scale__descriptor) {
        protobuf_c_message_free_unpacked (object, NULL);
        s_error_set (error, ZUBE_INTERNAL, "the reply is not a Scale");
        return ZUBE_INTERNAL;
    }
    if (scale_p)
        *scale_p = (Zube__Scale *)object;
    return status;
}

zube_status_t
zube_api_update (zube_api_t *self, const char *resource, const char *namespace,
                 const ProtobufCMessage *object, const char *subresource, bool dry_run,
                 ProtobufCMessage **object_p, zube_api_error_t *error)
{
    const zube_kind_t *kind = s_kind (resource, error);
    if (!kind)
        return ZUBE_NOT_FOUND;
    Zube__ObjectMeta *meta = object ? zube_object_meta (object) : NULL;
    if (!meta || !meta->name || !*meta->name) {
        s_error_set (error, ZUBE_BAD_REQUEST, "resource name may not be empty");
        return ZUBE_BAD_REQUEST;
    }
    Zube__UpdateRequest request = ZUBE__UPDATE_REQUEST__INIT;
    request.resource = (char *)resource;
    request.namespace_ = (char *)(namespace ? namespace : s_meta_namespace (object));
    request.name = meta->name;
    request.subresource = (char *)subresource;
    size_t size;
    uint8_t *data = s_pack (object, &size);
    if (!data) {
        s_error_set (error, ZUBE_INTERNAL, "out of memory");
        return ZUBE_INTERNAL;
    }
    request.has_object = 1;
    request.object.len = size;
    request.object.data = data;
    if (dry_run) {
        request.has_dry_run = 1;
        request.dry_run = 1;
    }
    zube_status_t status = s_object_call (self, "update", kind, &request.base, object_p,
                                          error);
    free (data);
    return status;
}

zube_status_t
zube_api_patch (zube_api_t *self, const char *resource, const char *namespace,
                const char *name, const char *patch_type, const char *patch,
                const char *subresource, bool dry_run, ProtobufCMessage **object_p,
                zube_api_error_t *error)
{
    const zube_kind_t *kind = s_kind (resource, error);
    if (!kind)
        return ZUBE_NOT_FOUND;
    Zube__PatchRequest request = ZUBE__PATCH_REQUEST__INIT;
    request.resource = (char *)resource;
    request.namespace_ = (char *)namespace;
    request.name = (char *)name;
    request.patch_type = (char *)(patch_type ? patch_type : "application/merge-patch+json");
    request.has_patch = 1;
    request.patch.data = (uint8_t *)(patch ? patch : "");
    request.patch.len = patch ? strlen (patch) : 0;
    request.subresource = (char *)subresource;
    if (dry_run) {
        request.has_dry_run = 1;
        request.dry_run = 1;
    }
    return s_object_call (self, "patch", kind, &request.base, object_p, error);
}

zube_status_t
zube_api_delete (zube_api_t *self, const char *resource, const char *namespace,
                 const char *name, const zube_api_delete_options_t *options,
                 ProtobufCMessage **object_p, zube_api_error_t *error)
{
    const zube_kind_t *kind = s_kind (resource, error);
    if (!kind)
        return ZUBE_NOT_FOUND;
    Zube__DeleteRequest request = ZUBE__DELETE_REQUEST__INIT;
    Zube__Preconditions preconditions = ZUBE__PRECONDITIONS__INIT;
    request.resource = (char *)resource;
    request.namespace_ = (char *)namespace;
    request.name = (char *)name;
    if (options) {
        if (options->grace_period_seconds >= 0) {
            request.has_grace_period_seconds = 1;
            request.grace_period_seconds = options->grace_period_seconds;
        }
        request.propagation_policy = (char *)options->propagation_policy;
        if (options->uid || options->resource_version) {
            preconditions.uid = (char *)options->uid;
            preconditions.resource_version = (char *)options->resource_version;
            request.preconditions = &preconditions;
        }
        if (options->dry_run) {
            request.has_dry_run = 1;
            request.dry_run = 1;
        }
    }
    return s_object_call (self, "delete", kind, &request.base, object_p, error);
}

zube_status_t
zube_api_bind (zube_api_t *self, const char *namespace, const char *pod, const char *node,
               zube_api_error_t *error)
{
    Zube__Binding binding = ZUBE__BINDING__INIT;
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    Zube__ObjectReference target = ZUBE__OBJECT_REFERENCE__INIT;
    binding.api_version = "v1";
    binding.kind = "Binding";
    meta.name = (char *)pod;
    meta.namespace_ = (char *)namespace;
    binding.metadata = &meta;
    target.api_version = "v1";
    target.kind = "Node";
    target.name = (char *)node;
    binding.target = &target;
    size_t size;
    uint8_t *data = s_pack (&binding.base, &size);
    if (!data) {
        s_error_set (error, ZUBE_INTERNAL, "out of memory");
        return ZUBE_INTERNAL;
    }
    Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
    request.resource = "pods";
    request.namespace_ = (char *)namespace;
    request.subresource = "binding";
    request.name = (char *)pod;
    request.has_object = 1;
    request.object.len = size;
    request.object.data = data;
    zube_status_t status = zube_api_call (self, "create", &request.base, NULL, NULL, error);
    free (data);
    return status;
}

zube_status_t
zube_api_watch_since (zube_api_t *self, const char *resource, const char *namespace,
                      const char *since, Zube__WatchEventBatch **batch_p,
                      zube_api_error_t *error)
{
    zube_api_watch_options_t options = {.namespace = namespace, .resource_version = since};
    return zube_api_watch (self, resource, &options, batch_p, error);
}

zube_status_t
zube_api_watch (zube_api_t *self, const char *resource,
                const zube_api_watch_options_t *options, Zube__WatchEventBatch **batch_p,
                zube_api_error_t *error)
{
    if (!s_kind (resource, error))
        return ZUBE_NOT_FOUND;
    zube_api_watch_options_t none = {0};
    if (!options)
        options = &none;
    Zube__WatchRequest request = ZUBE__WATCH_REQUEST__INIT;
    request.resource = (char *)resource;
    request.namespace_ = (char *)options->namespace;
    request.label_selector = (char *)options->label_selector;
    request.field_selector = (char *)options->field_selector;
    request.resource_version = (char *)options->resource_version;
    request.has_allow_bookmarks = options->allow_bookmarks;
    request.allow_bookmarks = options->allow_bookmarks;
    int saved = self->timeout_ms;
    if (options->timeout_seconds > 0) {
        request.has_timeout_seconds = 1;
        request.timeout_seconds = options->timeout_seconds;
        //  The call outlives the wait by the usual deadline
        int64_t wait = options->timeout_seconds * 1000 + saved;
        self->timeout_ms = wait > INT32_MAX ? INT32_MAX : (int)wait;
    }
    zube_status_t status =
        zube_api_call (self, "watch", &request.base, &zube__watch_event_batch__descriptor,
                       (ProtobufCMessage **)batch_p, error);
    self->timeout_ms = saved;
    return status;
}

//  --------------------------------------------------------------------------
//  Object helpers

Zube__ObjectMeta *
zube_object_meta (const ProtobufCMessage *object)
{
    if (!object || !object->descriptor)
        return NULL;
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (object->descriptor, "metadata");
    if (!field || field->type != PROTOBUF_C_TYPE_MESSAGE
        || field->descriptor != &zube__object_meta__descriptor
        || field->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return *(Zube__ObjectMeta **)((const char *)object + field->offset);
}

const zube_kind_t *
zube_object_kind (const ProtobufCMessage *object)
{
    if (!object || !object->descriptor)
        return NULL;
    const zube_kind_t *kind = zube_kind_by_descriptor (object->descriptor);
    return kind && kind->descriptor == object->descriptor ? kind : NULL;
}

int
zube_object_key (const zube_kind_t *kind, const char *namespace, const char *name,
                 char *buf, size_t size)
{
    if (!kind || !name || !*name || !buf || size == 0)
        return -1;
    int length;
    if (kind->namespaced) {
        if (!namespace || !*namespace)
            return -1;
        length = snprintf (buf, size, "/registry/%s/%s/%s", kind->resource, namespace, name);
    } else
        length = snprintf (buf, size, "/registry/%s/%s", kind->resource, name);
    if (length < 0 || (size_t)length >= size) {
        buf[0] = 0;
        return -1;
    }
    return length;
}
