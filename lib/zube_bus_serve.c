/*  zube_bus_serve - the serving side of zube_bus: requests and replies.

    A request received for a served service becomes a zube_bus_request_t
    and goes to its handler; the handler answers at once or defers. Every
    reply is also kept, keyed by the caller's (client_id, sequence), in a
    ring of the last ZUBE_BUS_DEDUP_ENTRIES replies: a retried request is
    answered from it without calling the handler again, and a retry that
    arrives while the first copy is still being handled is ignored (its
    route is refreshed, so that the one reply reaches the broker that now
    remembers the request, after a broker restart). */
#include "zube_bus_private.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

//  --------------------------------------------------------------------------
//  Serving

static void
s_send_reply (zube_bus_t *self, const uint8_t *route, size_t route_size,
              uint64_t correlation_id, zube_status_t status, const char *error,
              const void *payload, size_t payload_size)
{
    Zube__BusHeader header;
    zube_bus__header_init (&header, ZUBE__BUS_KIND__BUS_REPLY);
    header.has_correlation_id = 1;
    header.correlation_id = correlation_id;
    if (route) {
        header.has_route = 1;
        header.route.data = (uint8_t *)route;
        header.route.len = route_size;
    }
    header.has_status = 1;
    header.status = (Zube__StatusCode)status;
    header.error = (char *)(status == ZUBE_OK ? NULL : error);
    if (zube_bus__send_broker (self, &header, payload, payload_size, true) != 0)
        //  The caller sends the request again after a reconnect, and
        //  gets this reply from the cache then.
        zube_log_debug ("msg=\"reply not sent\" correlation_id=%" PRIu64, correlation_id);
}

static char *
s_dedup_key (const char *client_id, uint64_t sequence)
{
    char *key = NULL;
    if (asprintf (&key, "%" PRIu64 ":%s", sequence, client_id) < 0)
        return NULL;
    return key;
}

static void
s_cached_reply_destroy (zube_bus_cached_reply_t **self_p)
{
    zube_bus_cached_reply_t *self = *self_p;
    if (!self)
        return;
    free (self->key);
    free (self->error);
    free (self->payload);
    free (self);
    *self_p = NULL;
}

static void
s_dedup_evict_oldest (zube_bus_t *self)
{
    zube_bus_cached_reply_t *entry = self->dedup_ring[self->dedup_oldest];
    self->dedup_ring[self->dedup_oldest] = NULL;
    self->dedup_oldest = (self->dedup_oldest + 1) % ZUBE_BUS_DEDUP_ENTRIES;
    self->dedup_count--;
    if (entry) {
        zhashx_delete (self->dedup, entry->key);
        self->dedup_bytes -= entry->payload_size;
        s_cached_reply_destroy (&entry);
    }
}

//  Keeps the reply for a retry of the same (client_id, sequence): a ring of
//  the last ZUBE_BUS_DEDUP_ENTRIES replies, fewer when they hold many bytes.
static void
s_dedup_store (zube_bus_t *self, const char *key, zube_status_t status, const char *error,
               const void *payload, size_t payload_size)
{
    if (zhashx_lookup (self->dedup, key))
        return;
    zube_bus_cached_reply_t *entry = calloc (1, sizeof *entry);
    if (!entry)
        return;
    entry->key = strdup (key);
    entry->status = status;
    entry->error = s_strdup (error);
    entry->payload = s_memdup (payload, payload_size);
    entry->payload_size = entry->payload ? payload_size : 0;
    if (!entry->key || (payload_size && !entry->payload)) {
        s_cached_reply_destroy (&entry);
        return;
    }
    if (self->dedup_count == ZUBE_BUS_DEDUP_ENTRIES)
        s_dedup_evict_oldest (self);
    self->dedup_ring[(self->dedup_oldest + self->dedup_count) % ZUBE_BUS_DEDUP_ENTRIES] =
        entry;
    self->dedup_count++;
    zhashx_insert (self->dedup, entry->key, entry);
    self->dedup_bytes += entry->payload_size;
    while (self->dedup_bytes > ZUBE_BUS_DEDUP_MAX_BYTES && self->dedup_count > 1)
        s_dedup_evict_oldest (self);
}

static void
s_request_destroy (zube_bus_request_t **self_p)
{
    zube_bus_request_t *self = *self_p;
    if (!self)
        return;
    zube_bus_t *bus = self->bus;
    if (self->handle)
        zlistx_delete (bus->requests, self->handle);
    if (self->dedup_key && zhashx_lookup (bus->in_progress, self->dedup_key) == self)
        zhashx_delete (bus->in_progress, self->dedup_key);
    free (self->service);
    free (self->method);
    free (self->sender);
    free (self->client_id);
    free (self->route);
    free (self->payload);
    free (self->dedup_key);
    free (self);
    *self_p = NULL;
}

//  Takes ownership of dedup_key.
static zube_bus_request_t *
s_request_new (zube_bus_t *self, Zube__BusHeader *header, const uint8_t *payload,
               size_t payload_size, char *dedup_key)
{
    zube_bus_request_t *request = calloc (1, sizeof *request);
    if (!request) {
        free (dedup_key);
        return NULL;
    }
    request->bus = self;
    request->service = strdup (header->service);
    request->method = strdup (header->method ? header->method : "");
    request->sender = strdup (header->sender ? header->sender : "");
    request->client_id = strdup (header->client_id ? header->client_id : "");
    request->sequence = header->has_sequence ? header->sequence : 0;
    request->correlation_id = header->correlation_id;
    if (header->has_route && header->route.len) {
        request->route = s_memdup (header->route.data, header->route.len);
        request->route_size = request->route ? header->route.len : 0;
    }
    int deadline_ms = header->has_deadline_ms ? (int)MIN (header->deadline_ms, INT_MAX)
                                              : ZUBE_BUS_DEFAULT_TIMEOUT_MS;
    request->deadline = s_now () + deadline_ms;
    request->payload = s_memdup (payload, payload_size);
    request->payload_size = request->payload ? payload_size : 0;
    request->dedup_key = dedup_key;
    request->handle = zlistx_add_end (self->requests, request);
    if (!request->service || !request->method || !request->sender ||
        !request->client_id || (payload_size && !request->payload) || !request->handle) {
        request->dedup_key = NULL;
        free (dedup_key);
        s_request_destroy (&request);
        return NULL;
    }
    if (dedup_key)
        zhashx_insert (self->in_progress, dedup_key, request);
    return request;
}

void
zube_bus__dispatch_request (zube_bus_t *self, zube_bus_request_t *request)
{
    zube_bus_service_t *service = zhashx_lookup (self->services, request->service);
    if (!service) {
        zube_bus_respond_error (request, ZUBE_UNAVAILABLE,
                                "service \"%s\" is not served by instance %s",
                                request->service, self->instance);
        return;
    }
    request->in_handler = true;
    self->dispatched++;
    service->handler (self, request, service->arg);
    request->in_handler = false;
    if (request->answered)
        s_request_destroy (&request);
    else if (!request->deferred) {
        zube_log_warn ("msg=\"handler returned without a reply\" service=%s method=%s",
                       request->service, request->method);
        zube_bus_respond (request, ZUBE_INTERNAL, "no reply", NULL, 0);
    }
}

void
zube_bus__handle_request (zube_bus_t *self, Zube__BusHeader *header,
                          const uint8_t *payload, size_t size)
{
    if (!header->service || !header->has_correlation_id) {
        zube_log_debug ("msg=\"dropped request without service or correlation id\"");
        return;
    }
    char *key = NULL;
    if (header->client_id && *header->client_id && header->has_sequence) {
        key = s_dedup_key (header->client_id, header->sequence);
        zube_bus_cached_reply_t *cached = key ? zhashx_lookup (self->dedup, key) : NULL;
        if (cached) {
            zube_log_debug ("msg=\"answered a retry from the reply cache\" key=%s", key);
            s_send_reply (self, header->has_route ? header->route.data : NULL,
                          header->has_route ? header->route.len : 0,
                          header->correlation_id, cached->status, cached->error,
                          cached->payload, cached->payload_size);
            free (key);
            return;
        }
        zube_bus_request_t *running = key ? zhashx_lookup (self->in_progress, key) : NULL;
        if (running) {
            //  Answer this copy instead: after a broker restart only the
            //  newest copy's route is known to the broker.
            uint8_t *route = header->has_route
                                 ? s_memdup (header->route.data, header->route.len)
                                 : NULL;
            if (route || !header->has_route || !header->route.len) {
                free (running->route);
                running->route = route;
                running->route_size = route ? header->route.len : 0;
                running->correlation_id = header->correlation_id;
            }
            zube_log_debug ("msg=\"ignored a retry of a request in progress\" key=%s",
                            key);
            free (key);
            return;
        }
    }
    zube_bus_request_t *request = s_request_new (self, header, payload, size, key);
    if (!request) {
        zube_log_error ("msg=\"out of memory receiving a request\"");
        return;
    }
    if (self->depth > ZUBE_BUS_MAX_NESTING)
        zlistx_add_end (self->backlog, request);
    else
        zube_bus__dispatch_request (self, request);
}

int
zube_bus_serve (zube_bus_t *self, const char *service, zube_bus_handler_fn *handler,
                void *arg)
{
    assert (self);
    if (!zube_bus__service_name_valid (service) || !handler || streq (service, "bus") ||
        zhashx_lookup (self->services, service))
        return -1;
    zube_bus_service_t *entry = calloc (1, sizeof *entry);
    if (!entry)
        return -1;
    entry->handler = handler;
    entry->arg = arg;
    zhashx_insert (self->services, service, entry);
    zube_bus__send_ready (self, service);
    zube_log_info ("msg=\"serving\" service=%s instance=%s", service, self->instance);
    return 0;
}

int
zube_bus_unserve (zube_bus_t *self, const char *service)
{
    assert (self);
    if (!service || !zhashx_lookup (self->services, service))
        return -1;
    zhashx_delete (self->services, service);
    zube_bus__send_disconnect (self, service);
    return 0;
}

const char *
zube_bus_request_service (zube_bus_request_t *request)
{
    return request->service;
}

const char *
zube_bus_request_method (zube_bus_request_t *request)
{
    return request->method;
}

const char *
zube_bus_request_sender (zube_bus_request_t *request)
{
    return request->sender;
}

const char *
zube_bus_request_client_id (zube_bus_request_t *request)
{
    return request->client_id;
}

uint64_t
zube_bus_request_sequence (zube_bus_request_t *request)
{
    return request->sequence;
}

int
zube_bus_request_remaining_ms (zube_bus_request_t *request)
{
    int64_t left = request->deadline - s_now ();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

const uint8_t *
zube_bus_request_payload (zube_bus_request_t *request, size_t *size_p)
{
    if (size_p)
        *size_p = request->payload_size;
    return request->payload ? request->payload : (const uint8_t *)"";
}

ProtobufCMessage *
zube_bus_request_unpack (zube_bus_request_t *request,
                         const ProtobufCMessageDescriptor *desc)
{
    assert (desc);
    return protobuf_c_message_unpack (desc, NULL, request->payload_size,
                                      zube_bus_request_payload (request, NULL));
}

ProtobufCMessage *
zube_bus_request_unpack_or_reject (zube_bus_request_t *request,
                                   const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *message = zube_bus_request_unpack (request, desc);
    if (!message)
        zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                "cannot decode %s/%s payload as %s", request->service,
                                request->method, desc->name);
    return message;
}

void
zube_bus_request_defer (zube_bus_request_t *request)
{
    assert (request);
    request->deferred = true;
}

void
zube_bus_respond (zube_bus_request_t *request, zube_status_t status, const char *error,
                  const void *payload, size_t payload_size)
{
    assert (request);
    assert (!request->answered);
    zube_bus_t *self = request->bus;
    char why[128];
    if (payload_size > self->max_msg_size) {
        snprintf (why, sizeof why,
                  "reply payload of %zu bytes exceeds the %zu-byte limit", payload_size,
                  self->max_msg_size);
        zube_log_warn ("msg=\"reply too large\" service=%s method=%s size=%zu",
                       request->service, request->method, payload_size);
        status = ZUBE_PAYLOAD_TOO_LARGE;
        error = why;
        payload = NULL;
        payload_size = 0;
    }
    if ((int)status < 0 || status >= ZUBE_STATUS_COUNT)
        status = ZUBE_INTERNAL;
    if (status != ZUBE_OK && (!error || !*error))
        error = zube_status_reason (status);
    if (status == ZUBE_OK)
        error = NULL;
    s_send_reply (self, request->route, request->route_size, request->correlation_id,
                  status, error, payload, payload_size);
    if (request->dedup_key) {
        s_dedup_store (self, request->dedup_key, status, error, payload, payload_size);
        if (zhashx_lookup (self->in_progress, request->dedup_key) == request)
            zhashx_delete (self->in_progress, request->dedup_key);
    }
    request->answered = true;
    if (!request->in_handler)
        s_request_destroy (&request);
}

void
zube_bus_respond_msg (zube_bus_request_t *request, const ProtobufCMessage *reply)
{
    if (!reply) {
        zube_bus_respond (request, ZUBE_OK, NULL, NULL, 0);
        return;
    }
    size_t size = protobuf_c_message_get_packed_size (reply);
    uint8_t *buffer = malloc (size ? size : 1);
    if (!buffer) {
        zube_bus_respond (request, ZUBE_INTERNAL, "out of memory", NULL, 0);
        return;
    }
    protobuf_c_message_pack (reply, buffer);
    zube_bus_respond (request, ZUBE_OK, NULL, buffer, size);
    free (buffer);
}

void
zube_bus_respond_error (zube_bus_request_t *request, zube_status_t status,
                        const char *format, ...)
{
    char error[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (error, sizeof error, format, args);
    va_end (args);
    zube_bus_respond (request, status, error, NULL, 0);
}

//  Frees what serving holds: deferred requests never answered (their
//  pointers held by the application become invalid), the backlog and
//  the reply cache. Part of zube_bus_destroy.
void
zube_bus__serve_destroy (zube_bus_t *self)
{
    zlistx_destroy (&self->backlog);
    if (self->requests) {
        zube_bus_request_t *request;
        while ((request = zlistx_detach (self->requests, NULL))) {
            request->handle = NULL;
            s_request_destroy (&request);
        }
        zlistx_destroy (&self->requests);
    }
    zhashx_destroy (&self->in_progress);
    while (self->dedup_count)
        s_dedup_evict_oldest (self);
    zhashx_destroy (&self->dedup);
}
