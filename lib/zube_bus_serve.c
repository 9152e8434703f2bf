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

//  The reply header is written straight into its frame, and the payload
//  copied once, into the frame that carries it.
static void
s_send_reply (zube_bus_t *self, const uint8_t *route, size_t route_size,
              uint64_t correlation_id, zube_status_t status, const char *error,
              const void *payload, size_t payload_size)
{
    if (status == ZUBE_OK)
        error = NULL;
    size_t error_size = error ? strlen (error) : 0;
    size_t size =
        4 + zube_bus_wire_varint_field_size (ZUBE_BUS_F_CORRELATION_ID, correlation_id) +
        zube_bus_wire_varint_field_size (ZUBE_BUS_F_STATUS, (uint64_t)status) +
        (error ? zube_bus_wire_bytes_field_size (ZUBE_BUS_F_ERROR, error_size) : 0) +
        (route ? zube_bus_wire_bytes_field_size (ZUBE_BUS_F_ROUTE, route_size) : 0);
    zmq_msg_t header, body;
    bool queued;
    uint8_t *start =
        zube_bus__entry_start (self, size, payload, payload_size, &header, &queued);
    if (!start) {
        zube_log_debug ("msg=\"reply not sent\" correlation_id=%" PRIu64, correlation_id);
        return;
    }
    if (!queued && zmq_msg_init_size (&body, payload_size) != 0) {
        zmq_msg_close (&header);
        zube_log_debug ("msg=\"reply not sent\" correlation_id=%" PRIu64, correlation_id);
        return;
    }
    uint8_t *out = start;
    out = zube_bus_wire_varint_field_write (out, ZUBE_BUS_F_VERSION,
                                            ZUBE__BUS_VERSION__BUS_VERSION_1);
    out = zube_bus_wire_varint_field_write (out, ZUBE_BUS_F_KIND, ZUBE__BUS_KIND__BUS_REPLY);
    out = zube_bus_wire_varint_field_write (out, ZUBE_BUS_F_CORRELATION_ID, correlation_id);
    out = zube_bus_wire_varint_field_write (out, ZUBE_BUS_F_STATUS, (uint64_t)status);
    if (error)
        out = zube_bus_wire_bytes_field_write (out, ZUBE_BUS_F_ERROR, error, error_size);
    if (route)
        out = zube_bus_wire_bytes_field_write (out, ZUBE_BUS_F_ROUTE, route, route_size);
    assert (out == start + size);
    if (queued)
        return; //  leaves with the batch, when this pass of the loop ends
    if (payload_size)
        memcpy (zmq_msg_data (&body), payload, payload_size);
    if (zube_bus__send_broker_msg (self, &header, &body) != 0)
        //  The caller sends the request again after a reconnect, and
        //  gets this reply from the cache then.
        zube_log_debug ("msg=\"reply not sent\" correlation_id=%" PRIu64, correlation_id);
}

//  (client_id, sequence), the key of the reply cache and of requests in
//  progress, hashed once per request.
typedef struct {
    const char *client_id;
    size_t client_id_size;
    uint64_t sequence;
} s_dedup_key_t;

static uint64_t
s_dedup_hash (const s_dedup_key_t *key)
{
    uint64_t hash = 1469598103934665603ULL;
    for (size_t index = 0; index < key->client_id_size; index++) {
        hash ^= (uint8_t)key->client_id[index];
        hash *= 1099511628211ULL;
    }
    hash ^= key->sequence;
    hash *= 0x9E3779B97F4A7C15ULL;
    return hash ^ (hash >> 29);
}

static bool
s_cached_reply_match (const void *item, const void *key_p)
{
    const zube_bus_cached_reply_t *entry = item;
    const s_dedup_key_t *key = key_p;
    return entry->sequence == key->sequence &&
           entry->client_id_size == key->client_id_size &&
           memcmp (entry->client_id, key->client_id, key->client_id_size) == 0;
}

static bool
s_request_match (const void *item, const void *key_p)
{
    const zube_bus_request_t *request = item;
    const s_dedup_key_t *key = key_p;
    return request->sequence == key->sequence &&
           strlen (request->client_id) == key->client_id_size &&
           memcmp (request->client_id, key->client_id, key->client_id_size) == 0;
}

static void
s_cached_reply_destroy (zube_bus_cached_reply_t **self_p)
{
    zube_bus_cached_reply_t *self = *self_p;
    if (!self)
        return;
    free (self->client_id);
    free (self->error);
    free (self->payload);
    free (self);
    *self_p = NULL;
}

//  The oldest entry leaves the ring; it is kept as the spare that the next
//  store fills, so that a full cache costs no allocation per reply.
static void
s_dedup_evict_oldest (zube_bus_t *self)
{
    zube_bus_cached_reply_t *entry = self->dedup_ring[self->dedup_oldest];
    self->dedup_ring[self->dedup_oldest] = NULL;
    self->dedup_oldest = (self->dedup_oldest + 1) % ZUBE_BUS_DEDUP_ENTRIES;
    self->dedup_count--;
    if (entry) {
        zube_bus__table_remove (&self->dedup, entry->hash, entry);
        self->dedup_bytes -= entry->payload_size;
        free (entry->error);
        entry->error = NULL;
        if (!self->dedup_spare && entry->payload_max <= 64 * 1024)
            self->dedup_spare = entry;
        else
            s_cached_reply_destroy (&entry);
    }
}

//  Keeps the reply for a retry of the same (client_id, sequence): a ring of
//  the last ZUBE_BUS_DEDUP_ENTRIES replies, fewer when they hold many bytes.
static void
s_dedup_store (zube_bus_t *self, uint64_t hash, const s_dedup_key_t *key,
               zube_status_t status, const char *error, const void *payload,
               size_t payload_size)
{
    if (zube_bus__table_find (&self->dedup, hash, s_cached_reply_match, key))
        return;
    if (self->dedup_count == ZUBE_BUS_DEDUP_ENTRIES)
        s_dedup_evict_oldest (self);
    zube_bus_cached_reply_t *entry = self->dedup_spare;
    self->dedup_spare = NULL;
    if (!entry)
        entry = calloc (1, sizeof *entry);
    if (!entry)
        return;
    bool ok = true;
    if (entry->client_id_max < key->client_id_size + 1) {
        char *client_id = realloc (entry->client_id, key->client_id_size + 1);
        if (client_id) {
            entry->client_id = client_id;
            entry->client_id_max = key->client_id_size + 1;
        } else
            ok = false;
    }
    if (ok && entry->payload_max < payload_size) {
        free (entry->payload);
        entry->payload = malloc (payload_size);
        entry->payload_max = entry->payload ? payload_size : 0;
        ok = entry->payload != NULL;
    }
    entry->error = s_strdup (error);
    if (!ok || (error && !entry->error) ||
        zube_bus__table_insert (&self->dedup, hash, entry) != 0) {
        s_cached_reply_destroy (&entry);
        return;
    }
    entry->hash = hash;
    entry->sequence = key->sequence;
    memcpy (entry->client_id, key->client_id, key->client_id_size);
    entry->client_id[key->client_id_size] = 0;
    entry->client_id_size = key->client_id_size;
    entry->status = status;
    if (payload_size)
        memcpy (entry->payload, payload, payload_size);
    entry->payload_size = payload_size;
    self->dedup_ring[(self->dedup_oldest + self->dedup_count) % ZUBE_BUS_DEDUP_ENTRIES] =
        entry;
    self->dedup_count++;
    self->dedup_bytes += entry->payload_size;
    while (self->dedup_bytes > ZUBE_BUS_DEDUP_MAX_BYTES && self->dedup_count > 1)
        s_dedup_evict_oldest (self);
}

static void
s_in_progress_remove (zube_bus_t *self, zube_bus_request_t *request)
{
    if (request->in_progress) {
        zube_bus__table_remove (&self->in_progress, request->dedup_hash, request);
        request->in_progress = false;
    }
}

//  Unlinks the request and puts its record back in the pool (or frees it).
static void
s_request_destroy (zube_bus_request_t **self_p)
{
    zube_bus_request_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    zube_bus_t *bus = self->bus;
    s_in_progress_remove (bus, self);
    if (self->prev)
        self->prev->next = self->next;
    else if (bus->requests == self)
        bus->requests = self->next;
    if (self->next)
        self->next->prev = self->prev;
    self->next = self->prev = NULL;
    zmq_msg_close (&self->payload);
    if (bus->request_pool_size < ZUBE_BUS_POOL_MAX && self->strings_max <= 2048 &&
        self->route_max <= 256) {
        self->next = bus->request_pool;
        bus->request_pool = self;
        bus->request_pool_size++;
        return;
    }
    free (self->strings);
    free (self->route);
    free (self);
}

static int
s_request_set_route (zube_bus_request_t *request, const zube_bus_wire_bytes_t *route)
{
    if (!route || !route->size) {
        request->route_size = 0;
        return 0;
    }
    if (request->route_max < route->size) {
        uint8_t *buffer = realloc (request->route, route->size);
        if (!buffer)
            return -1;
        request->route = buffer;
        request->route_max = route->size;
    }
    memcpy (request->route, route->data, route->size);
    request->route_size = route->size;
    return 0;
}

//  A string field into the request's buffer, NUL-terminated ("" if absent).
static char *
s_strings_add (char *out, const zube_bus_wire_t *header, int field, const char **text_p)
{
    const char *text;
    size_t size = zube_bus_wire_string (header, field, &text);
    if (size)
        memcpy (out, text, size);
    out[size] = 0;
    *text_p = out;
    return out + size + 1;
}

//  Takes the payload frame (leaving an empty one in its place).
static zube_bus_request_t *
s_request_new (zube_bus_t *self, const zube_bus_wire_t *header, zmq_msg_t *payload,
               const s_dedup_key_t *key, uint64_t hash)
{
    zube_bus_request_t *request = self->request_pool;
    if (request) {
        self->request_pool = request->next;
        self->request_pool_size--;
    } else {
        request = calloc (1, sizeof *request);
        if (!request)
            return NULL;
    }
    char *strings = request->strings;
    size_t strings_max = request->strings_max;
    uint8_t *route = request->route;
    size_t route_max = request->route_max;
    memset (request, 0, sizeof *request);
    request->strings = strings;
    request->strings_max = strings_max;
    request->route = route;
    request->route_max = route_max;
    request->bus = self;
    zmq_msg_init (&request->payload);
    //  Linked first, so that s_request_destroy can undo whatever follows.
    request->next = self->requests;
    if (self->requests)
        self->requests->prev = request;
    self->requests = request;

    size_t needed = 4;
    static const int fields[] = {ZUBE_BUS_F_SERVICE, ZUBE_BUS_F_METHOD, ZUBE_BUS_F_SENDER,
                                 ZUBE_BUS_F_CLIENT_ID};
    for (size_t index = 0; index < sizeof fields / sizeof fields[0]; index++)
        if (ZUBE_BUS_WIRE_HAS (header, fields[index]))
            needed += header->bytes[fields[index]].size;
    if (request->strings_max < needed) {
        char *buffer = realloc (request->strings, needed);
        if (!buffer) {
            s_request_destroy (&request);
            return NULL;
        }
        request->strings = buffer;
        request->strings_max = needed;
    }
    char *out = request->strings;
    out = s_strings_add (out, header, ZUBE_BUS_F_SERVICE, &request->service);
    out = s_strings_add (out, header, ZUBE_BUS_F_METHOD, &request->method);
    out = s_strings_add (out, header, ZUBE_BUS_F_SENDER, &request->sender);
    s_strings_add (out, header, ZUBE_BUS_F_CLIENT_ID, &request->client_id);
    request->sequence = ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_SEQUENCE)
                            ? header->varint[ZUBE_BUS_F_SEQUENCE]
                            : 0;
    request->correlation_id = header->varint[ZUBE_BUS_F_CORRELATION_ID];
    if (s_request_set_route (request, ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_ROUTE)
                                          ? &header->bytes[ZUBE_BUS_F_ROUTE]
                                          : NULL) != 0) {
        s_request_destroy (&request);
        return NULL;
    }
    uint32_t deadline_ms = (uint32_t)header->varint[ZUBE_BUS_F_DEADLINE_MS];
    request->deadline = s_now () + (ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_DEADLINE_MS)
                                        ? (int)MIN (deadline_ms, INT_MAX)
                                        : ZUBE_BUS_DEFAULT_TIMEOUT_MS);
    if (payload)
        zmq_msg_move (&request->payload, payload);
    if (key) {
        request->has_dedup = true;
        request->dedup_hash = hash;
        if (zube_bus__table_insert (&self->in_progress, hash, request) != 0) {
            s_request_destroy (&request);
            return NULL;
        }
        request->in_progress = true;
    }
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

//  Dispatches what waited for a shallow enough loop, oldest first.
void
zube_bus__run_backlog (zube_bus_t *self)
{
    while (self->depth <= ZUBE_BUS_MAX_NESTING && self->backlog_head) {
        zube_bus_request_t *request = self->backlog_head;
        self->backlog_head = request->backlog_next;
        if (!self->backlog_head)
            self->backlog_tail = NULL;
        request->backlog_next = NULL;
        zube_bus__dispatch_request (self, request);
    }
}

void
zube_bus__handle_request (zube_bus_t *self, const zube_bus_wire_t *header,
                          zmq_msg_t *payload)
{
    if (!ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_SERVICE) ||
        !ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_CORRELATION_ID)) {
        zube_log_debug ("msg=\"dropped request without service or correlation id\"");
        return;
    }
    uint64_t correlation_id = header->varint[ZUBE_BUS_F_CORRELATION_ID];
    const zube_bus_wire_bytes_t *route = ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_ROUTE) &&
                                                 header->bytes[ZUBE_BUS_F_ROUTE].size
                                             ? &header->bytes[ZUBE_BUS_F_ROUTE]
                                             : NULL;
    s_dedup_key_t key;
    key.client_id_size = zube_bus_wire_string (header, ZUBE_BUS_F_CLIENT_ID, &key.client_id);
    key.sequence = header->varint[ZUBE_BUS_F_SEQUENCE];
    bool dedup = key.client_id_size && ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_SEQUENCE);
    uint64_t hash = 0;
    if (dedup) {
        hash = s_dedup_hash (&key);
        zube_bus_cached_reply_t *cached =
            zube_bus__table_find (&self->dedup, hash, s_cached_reply_match, &key);
        if (cached) {
            zube_log_debug ("msg=\"answered a retry from the reply cache\" sequence=%" PRIu64
                            " client_id=%.*s",
                            key.sequence, (int)key.client_id_size, key.client_id);
            s_send_reply (self, route ? route->data : NULL, route ? route->size : 0,
                          correlation_id, cached->status, cached->error, cached->payload,
                          cached->payload_size);
            return;
        }
        zube_bus_request_t *running =
            zube_bus__table_find (&self->in_progress, hash, s_request_match, &key);
        if (running) {
            //  Answer this copy instead: after a broker restart only the
            //  newest copy's route is known to the broker.
            if (s_request_set_route (running, route) == 0)
                running->correlation_id = correlation_id;
            zube_log_debug ("msg=\"ignored a retry of a request in progress\" "
                            "sequence=%" PRIu64 " client_id=%.*s",
                            key.sequence, (int)key.client_id_size, key.client_id);
            return;
        }
    }
    zube_bus_request_t *request =
        s_request_new (self, header, payload, dedup ? &key : NULL, hash);
    if (!request) {
        zube_log_error ("msg=\"out of memory receiving a request\"");
        return;
    }
    if (self->depth > ZUBE_BUS_MAX_NESTING) {
        if (self->backlog_tail)
            self->backlog_tail->backlog_next = request;
        else
            self->backlog_head = request;
        self->backlog_tail = request;
    } else
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
    size_t size = zmq_msg_size (&request->payload);
    if (size_p)
        *size_p = size;
    return size ? (const uint8_t *)zmq_msg_data (&request->payload) : (const uint8_t *)"";
}

ProtobufCMessage *
zube_bus_request_unpack (zube_bus_request_t *request,
                         const ProtobufCMessageDescriptor *desc)
{
    assert (desc);
    size_t size = 0;
    const uint8_t *payload = zube_bus_request_payload (request, &size);
    return protobuf_c_message_unpack (desc, NULL, size, payload);
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
    s_send_reply (self, request->route_size ? request->route : NULL, request->route_size,
                  request->correlation_id, status, error, payload, payload_size);
    if (request->has_dedup) {
        s_dedup_key_t key = {request->client_id, strlen (request->client_id),
                             request->sequence};
        s_dedup_store (self, request->dedup_hash, &key, status, error, payload,
                       payload_size);
        s_in_progress_remove (self, request);
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
    self->backlog_head = self->backlog_tail = NULL;
    while (self->requests) {
        zube_bus_request_t *request = self->requests;
        s_request_destroy (&request);
    }
    while (self->request_pool) {
        zube_bus_request_t *request = self->request_pool;
        self->request_pool = request->next;
        free (request->strings);
        free (request->route);
        free (request);
    }
    self->request_pool_size = 0;
    zube_bus__table_destroy (&self->in_progress);
    while (self->dedup_count)
        s_dedup_evict_oldest (self);
    s_cached_reply_destroy (&self->dedup_spare);
    zube_bus__table_destroy (&self->dedup);
}
