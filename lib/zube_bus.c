/*  zube_bus - a connection to the zube broker: call, serve, publish, subscribe.

    This is the peer side of docs/bus-protocol.md. One zube_bus_t owns a
    DEALER to the broker's ROUTER and, opened on first use, a PUB to the
    broker's XSUB and a SUB to its XPUB, whose endpoints it learns from the
    broker's own `bus`/`info`. Everything runs on the caller's thread inside
    zube_bus_poll and zube_bus_call, which share one loop (s_run_once): both
    serve requests, deliver events and expire deadlines while they wait, so
    a handler may itself make a synchronous call.

    Reentrancy rule used throughout: no iterator and no pointer into a table
    is held across a user callback. Work that needs callbacks is collected
    first (correlation ids, subscription prefixes), then each item is looked
    up again just before its callback runs, so a callback may call, serve,
    unserve, subscribe or unsubscribe freely. Only zube_bus_destroy is off
    limits inside a callback.

    Exactly one outcome per request: a call lives in self->pending until
    s_deliver removes it and hands the outcome to its caller; a reply whose
    correlation id is no longer there is dropped.

    Serving side: every request that carries a client id and sequence is
    looked up first in a cache of recent replies (answered again from the
    cache, the handler is not called) and in the table of requests still
    being handled (ignored, but its route is refreshed so the one reply
    reaches the broker that now remembers the request).
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     //  asprintf, strndup
#endif
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zube/bus.h"
#include "zube/log.h"
#include "bus.pb-c.h"

//  Limits that are not (yet) part of the config.
#define S_DEFAULT_HWM 100000
#define S_DEDUP_ENTRIES 4096                  //  per connection, docs/bus-protocol.md
#define S_DEDUP_MAX_BYTES (64u * 1024 * 1024) //  a cache of 4096 x 4 MiB would be 16 GiB
#define S_MAX_NESTING 16                      //  nested polls that still dispatch requests
#define S_MAX_QUEUED_EVENTS 10000             //  events published before PUB is open
#define S_RETRY_MIN_MS 50                     //  back-off after "instance died"
#define S_RETRY_MAX_MS 1000
#define S_SEND_RETRY_MS 50                    //  after a send refused at the HWM
#define S_INFO_TIMEOUT_MS 5000
#define S_INFO_RETRY_MS 1000
#define S_READ_BATCH 256                      //  messages per socket per pass
#define S_MAX_NAME 255
#define S_MAX_WAIT_MS 1000                    //  longest single zmq_poll

//  Where a synchronous call waits for its outcome.
typedef struct {
    zube_bus_reply_t *reply;
    bool done;
} s_sync_slot_t;

//  Outcome handler for the library's own calls (bus/info).
typedef void (s_internal_fn) (zube_bus_t *self, zube_bus_reply_t *reply);

//  A call waiting for its outcome, with what it takes to send it again.
typedef struct {
    uint64_t correlation_id;    //  also the key in self->pending
    uint64_t sequence;
    char *service;
    char *method;
    uint8_t *payload;
    size_t payload_size;
    int timeout_ms;
    int64_t deadline;           //  zclock_mono
    int64_t retry_at;           //  0, or when to send it again
    uint32_t attempt;           //  times sent so far
    uint64_t generation;        //  DEALER it was last sent on; 0: not sent
    char *last_error;           //  the retryable failure behind a retry
    zube_bus_reply_fn *callback;
    void *arg;
    s_sync_slot_t *slot;
    s_internal_fn *internal;
} s_pending_t;

typedef struct {
    zube_bus_handler_fn *handler;
    void *arg;
} s_service_t;

typedef struct {
    zube_bus_event_fn *callback;
    void *arg;
} s_subscription_t;

//  A reply kept for answering a retried request without its handler.
typedef struct {
    char *key;
    zube_status_t status;
    char *error;
    uint8_t *payload;
    size_t payload_size;
} s_cached_reply_t;

//  An event published before the PUB socket could be opened.
typedef struct {
    char *topic;
    uint8_t *header;
    size_t header_size;
    uint8_t *payload;
    size_t payload_size;
} s_event_t;

struct _zube_bus_request_t {
    zube_bus_t *bus;
    char *service;
    char *method;
    char *sender;
    char *client_id;
    uint64_t sequence;
    uint64_t correlation_id;
    uint8_t *route;
    size_t route_size;
    int64_t deadline;
    uint8_t *payload;
    size_t payload_size;
    char *dedup_key;            //  NULL when the caller sent no client id
    void *handle;               //  in bus->requests
    bool in_handler;
    bool deferred;
    bool answered;
};

struct _zube_bus_t {
    //  Configuration
    char *endpoint;
    bool insecure;
    zcert_t *cert;              //  our keys, when secure
    char *server_key;           //  the broker's public key (Z85)
    int heartbeat_ms;
    size_t max_msg_size;
    int hwm;
    int reconnect_min_ms;
    int reconnect_max_ms;
    char client_id [17];
    char *instance;

    //  Broker connection
    zsock_t *dealer;
    uint64_t generation;        //  counts DEALERs created
    bool connected;             //  heard from the broker on this DEALER
    char *epoch;                //  the broker's, from its heartbeats
    int broker_heartbeat_ms;
    int64_t last_heard;
    int64_t last_sent;
    int64_t last_pass;
    int64_t reconnect_at;       //  while dealer is NULL
    int backoff_ms;
    uint64_t reconnects;

    //  Calls
    zhashx_t *pending;          //  &correlation_id -> s_pending_t
    uint64_t next_correlation;
    uint64_t next_sequence;
    size_t internal_in_flight;
    int64_t next_timer;         //  earliest pending deadline or retry

    //  Serving
    zhashx_t *services;         //  name -> s_service_t
    zlistx_t *requests;         //  every live request (owned)
    zhashx_t *in_progress;      //  dedup key -> request being handled
    zlistx_t *backlog;          //  received too deep in nesting, not dispatched
    zhashx_t *dedup;            //  dedup key -> s_cached_reply_t (owned by ring)
    s_cached_reply_t *dedup_ring [S_DEDUP_ENTRIES];
    size_t dedup_oldest;
    size_t dedup_count;
    size_t dedup_bytes;
    int depth;                  //  active zube_bus_poll / zube_bus_call frames
    uint64_t dispatched;        //  callbacks run, ever

    //  Events
    zsock_t *pub;
    zsock_t *sub;
    char *publish_endpoint;
    char *subscribe_endpoint;
    uint64_t info_correlation;  //  bus/info in flight
    int64_t info_retry_at;
    bool pub_wanted;
    zhashx_t *subscriptions;    //  prefix -> s_subscription_t
    zhashx_t *topic_sequences;  //  topic -> uint64_t
    zlistx_t *event_queue;      //  s_event_t, oldest first
    uint64_t events_dropped;
};

static void s_send_request (zube_bus_t *self, s_pending_t *pending);
static void s_want_info (zube_bus_t *self);


//  --------------------------------------------------------------------------
//  Small helpers

static int64_t
s_now (void)
{
    return zclock_mono ();
}

static char *
s_strdup (const char *text)
{
    return text ? strdup (text) : NULL;
}

static uint8_t *
s_memdup (const void *data, size_t size)
{
    if (!data || size == 0)
        return NULL;
    uint8_t *copy = malloc (size);
    if (copy)
        memcpy (copy, data, size);
    return copy;
}

//  Pending calls are keyed by their correlation id, stored in the entry.
static size_t
s_u64_hash (const void *key)
{
    uint64_t value = *(const uint64_t *) key;
    value ^= value >> 33;
    value *= 0xff51afd7ed558ccdULL;
    value ^= value >> 33;
    return (size_t) value;
}

static int
s_u64_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  16 hex characters from /dev/urandom; falls back to time and pid mixed,
//  which is still unique enough among the peers of one cluster.
static void
s_random_id (char *id, size_t size)
{
    uint64_t value = 0;
    int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read (fd, &value, sizeof value) != (ssize_t) sizeof value)
        value = ((uint64_t) zclock_usecs () << 16) ^ (uint64_t) getpid ()
                ^ (uint64_t) (uintptr_t) id;
    if (fd >= 0)
        close (fd);
    snprintf (id, size, "%016" PRIx64, value);
}

static bool
s_endpoint_valid (const char *endpoint)
{
    return endpoint
           && (strncmp (endpoint, "tcp://", 6) == 0 || strncmp (endpoint, "ipc://", 6) == 0
               || strncmp (endpoint, "inproc://", 9) == 0)
           && strlen (endpoint) < 1024;
}

//  Service names are what the broker keys on: printable, no spaces.
static bool
s_service_name_valid (const char *name)
{
    if (!name || !*name || strlen (name) > S_MAX_NAME)
        return false;
    for (const char *c = name; *c; c++)
        if ((unsigned char) *c <= ' ' || (unsigned char) *c >= 127)
            return false;
    return true;
}

//  A broker bound to a wildcard address reports it as such ("tcp://*:7401");
//  connect to the host we reach its request endpoint on instead.
static char *
s_endpoint_resolve (zube_bus_t *self, const char *endpoint)
{
    if (!endpoint || !*endpoint)
        return NULL;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return strdup (endpoint);
    const char *host = endpoint + 6;
    const char *port = strrchr (host, ':');
    if (!port)
        return strdup (endpoint);
    size_t host_len = (size_t) (port - host);
    bool wildcard = (host_len == 1 && host [0] == '*')
                    || (host_len == 7 && strncmp (host, "0.0.0.0", 7) == 0)
                    || (host_len == 4 && strncmp (host, "[::]", 4) == 0);
    if (!wildcard)
        return strdup (endpoint);
    const char *our_host = "127.0.0.1";
    size_t our_len = strlen (our_host);
    if (strncmp (self->endpoint, "tcp://", 6) == 0) {
        const char *start = self->endpoint + 6;
        const char *colon = strrchr (start, ':');
        if (colon && colon > start) {
            our_host = start;
            our_len = (size_t) (colon - start);
        }
    }
    char *resolved = NULL;
    if (asprintf (&resolved, "tcp://%.*s%s", (int) our_len, our_host, port) < 0)
        return NULL;
    return resolved;
}

static int
s_broker_interval (zube_bus_t *self)
{
    return self->broker_heartbeat_ms > 0 ? self->broker_heartbeat_ms : self->heartbeat_ms;
}


//  --------------------------------------------------------------------------
//  Replies

static zube_bus_reply_t *
s_reply_new (zube_status_t status, const char *error, const void *payload,
             size_t payload_size, uint64_t correlation_id)
{
    zube_bus_reply_t *reply = calloc (1, sizeof *reply);
    if (!reply)
        return NULL;
    reply->status = status;
    if (status != ZUBE_OK)
        reply->error = strdup (error && *error ? error : zube_status_reason (status));
    reply->payload = s_memdup (payload, payload_size);
    reply->payload_size = reply->payload ? payload_size : 0;
    reply->correlation_id = correlation_id;
    return reply;
}

void
zube_bus_reply_destroy (zube_bus_reply_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_bus_reply_t *self = *self_p;
    free (self->error);
    free (self->payload);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Frames on the wire

static void
s_header_init (Zube__BusHeader *header, Zube__BusKind kind)
{
    zube__bus_header__init (header);
    header->has_version = 1;
    header->version = ZUBE__BUS_VERSION__BUS_VERSION_1;
    header->has_kind = 1;
    header->kind = kind;
}

static uint8_t *
s_header_pack (const Zube__BusHeader *header, size_t *size_p)
{
    size_t size = zube__bus_header__get_packed_size (header);
    uint8_t *buffer = malloc (size ? size : 1);
    if (buffer)
        zube__bus_header__pack (header, buffer);
    *size_p = size;
    return buffer;
}

//  Sends [topic][header][payload] (topic and payload optional) without
//  blocking. A message accepted part by part is all or nothing in ZeroMQ,
//  so only the first part can fail with EAGAIN (the HWM is reached).
static int
s_send_raw (zsock_t *sock, const char *topic, const uint8_t *header, size_t header_size,
            const void *payload, size_t payload_size, bool with_payload)
{
    void *handle = zsock_resolve (sock);
    if (topic && zmq_send (handle, topic, strlen (topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    if (zmq_send (handle, header, header_size, (with_payload ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
        return -1;
    if (with_payload
        && zmq_send (handle, payload_size ? payload : "", payload_size, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

static int
s_send_frames (zsock_t *sock, const char *topic, const Zube__BusHeader *header,
               const void *payload, size_t payload_size, bool with_payload)
{
    size_t header_size = 0;
    uint8_t *buffer = s_header_pack (header, &header_size);
    if (!buffer)
        return -1;
    int rc = s_send_raw (sock, topic, buffer, header_size, payload, payload_size, with_payload);
    free (buffer);
    return rc;
}

//  Everything to the broker goes through here, so that last_sent tells
//  when a heartbeat is due.
static int
s_send_broker (zube_bus_t *self, const Zube__BusHeader *header,
               const void *payload, size_t payload_size, bool with_payload)
{
    if (!self->dealer)
        return -1;
    if (s_send_frames (self->dealer, NULL, header, payload, payload_size, with_payload) != 0) {
        zube_log_debug ("msg=\"send to broker refused\" errno=%d", errno);
        return -1;
    }
    self->last_sent = s_now ();
    return 0;
}

//  Receives one whole message without blocking into frames [0..max-1].
//  Returns the number of frames, 0 when nothing is waiting, or max + 1
//  when the message had more frames than that (the extra ones are read
//  and discarded; frames [0..max-1] are still initialised).
static int
s_recv_message (void *socket, zmq_msg_t *frames, int max)
{
    int count = 0;
    bool overflow = false;
    while (true) {
        zmq_msg_t scratch;
        zmq_msg_t *frame = count < max ? &frames [count] : &scratch;
        zmq_msg_init (frame);
        if (zmq_msg_recv (frame, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (frame);
            break;
        }
        bool more = zmq_msg_more (frame);
        if (count < max)
            count++;
        else {
            overflow = true;
            zmq_msg_close (frame);
        }
        if (!more)
            break;
    }
    return overflow ? max + 1 : count;
}

static Zube__BusHeader *
s_header_unpack (zmq_msg_t *frame)
{
    Zube__BusHeader *header = zube__bus_header__unpack (
        NULL, zmq_msg_size (frame), (const uint8_t *) zmq_msg_data (frame));
    if (header
        && (!header->has_version || header->version != ZUBE__BUS_VERSION__BUS_VERSION_1
            || !header->has_kind)) {
        zube__bus_header__free_unpacked (header, NULL);
        header = NULL;
    }
    return header;
}

//  Opens one socket to the broker with the limits and keys every socket
//  gets (docs/bus-protocol.md: MAXMSGSIZE, HWMs, LINGER 0, CURVE).
static zsock_t *
s_socket_new (zube_bus_t *self, int type, const char *endpoint)
{
    zsock_t *sock = zsock_new (type);
    if (!sock) {
        zube_log_error ("msg=\"cannot create socket\" errno=%d", errno);
        return NULL;
    }
    zsock_set_linger (sock, 0);
    zsock_set_sndhwm (sock, self->hwm);
    zsock_set_rcvhwm (sock, self->hwm);
    zsock_set_maxmsgsize (sock, (int) self->max_msg_size);
    zsock_set_reconnect_ivl (sock, self->reconnect_min_ms);
    zsock_set_reconnect_ivl_max (sock, self->reconnect_max_ms);
    if (!self->insecure) {
        zcert_apply (self->cert, sock);
        zsock_set_curve_serverkey (sock, self->server_key);
    }
    if (zsock_connect (sock, "%s", endpoint) != 0) {
        zube_log_error ("msg=\"cannot connect\" endpoint=%s errno=%d", endpoint, errno);
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}


//  --------------------------------------------------------------------------
//  Broker connection: heartbeats, READY, reconnects

static void
s_send_heartbeat (zube_bus_t *self)
{
    Zube__BusHeader header;
    s_header_init (&header, ZUBE__BUS_KIND__BUS_HEARTBEAT);
    header.has_heartbeat_ms = 1;
    header.heartbeat_ms = (uint32_t) self->heartbeat_ms;
    header.instance = self->instance;
    if (s_send_broker (self, &header, NULL, 0, false) != 0)
        self->last_sent = s_now ();     //  do not retry at once: the HWM is full
}

static void
s_send_ready (zube_bus_t *self, const char *service)
{
    Zube__BusHeader header;
    s_header_init (&header, ZUBE__BUS_KIND__BUS_READY);
    header.service = (char *) service;
    header.instance = self->instance;
    header.has_heartbeat_ms = 1;
    header.heartbeat_ms = (uint32_t) self->heartbeat_ms;
    s_send_broker (self, &header, NULL, 0, false);
}

static void
s_send_disconnect (zube_bus_t *self, const char *service)
{
    Zube__BusHeader header;
    s_header_init (&header, ZUBE__BUS_KIND__BUS_DISCONNECT);
    header.service = (char *) (service ? service : "");
    header.instance = self->instance;
    s_send_broker (self, &header, NULL, 0, false);
}

//  What a broker that restarted, or a new DEALER, has never heard of:
//  our services, our calls in flight (same client id, sequence and
//  correlation id, attempt + 1), and our event sockets, which are
//  re-opened once bus/info has answered again.
static void
s_resync (zube_bus_t *self)
{
    for (s_service_t *service = zhashx_first (self->services); service;
         service = zhashx_next (self->services))
        s_send_ready (self, (const char *) zhashx_cursor (self->services));
    for (s_pending_t *pending = zhashx_first (self->pending); pending;
         pending = zhashx_next (self->pending))
        s_send_request (self, pending);
    if (self->pub || self->sub || zhashx_size (self->subscriptions)
        || zlistx_size (self->event_queue))
        s_want_info (self);
}

static int
s_connect (zube_bus_t *self)
{
    zsock_t *dealer = s_socket_new (self, ZMQ_DEALER, self->endpoint);
    if (!dealer)
        return -1;
    self->dealer = dealer;
    self->generation++;
    self->connected = false;
    self->last_heard = s_now ();
    //  The protocol asks for a heartbeat on connect: a broker that does
    //  not know us answers it at once with its epoch.
    s_send_heartbeat (self);
    return 0;
}

//  Closes the DEALER (dropping whatever it still queued) and schedules a
//  new one after the back-off, which doubles up to reconnect_max_ms and
//  drops back to reconnect_min_ms once the broker answers.
static void
s_disconnect (zube_bus_t *self)
{
    zsock_destroy (&self->dealer);
    self->connected = false;
    self->reconnect_at = s_now () + self->backoff_ms;
    zube_log_info ("msg=\"reconnecting to broker\" endpoint=%s in_ms=%d", self->endpoint,
                   self->backoff_ms);
    self->backoff_ms = self->backoff_ms * 2 > self->reconnect_max_ms ? self->reconnect_max_ms
                                                                   : self->backoff_ms * 2;
}

static void
s_reconnect (zube_bus_t *self)
{
    if (s_connect (self) != 0) {
        s_disconnect (self);
        return;
    }
    self->reconnects++;
    s_resync (self);
}


//  --------------------------------------------------------------------------
//  Calls

static void
s_pending_destroy (s_pending_t **self_p)
{
    s_pending_t *self = *self_p;
    if (!self)
        return;
    free (self->service);
    free (self->method);
    free (self->payload);
    free (self->last_error);
    free (self);
    *self_p = NULL;
}

static void
s_timer_at (zube_bus_t *self, int64_t when)
{
    if (when < self->next_timer)
        self->next_timer = when;
}

//  Sends (or re-sends) a call. With no DEALER it waits for s_resync; a
//  send refused at the HWM is tried again shortly.
static void
s_send_request (zube_bus_t *self, s_pending_t *pending)
{
    int64_t now = s_now ();
    pending->retry_at = 0;
    pending->generation = 0;
    if (!self->dealer)
        return;
    Zube__BusHeader header;
    s_header_init (&header, ZUBE__BUS_KIND__BUS_REQUEST);
    header.service = pending->service;
    header.method = pending->method;
    header.has_correlation_id = 1;
    header.correlation_id = pending->correlation_id;
    int64_t left = pending->deadline - now;
    header.has_deadline_ms = 1;
    header.deadline_ms = left < 1 ? 1 : left > UINT32_MAX ? UINT32_MAX : (uint32_t) left;
    header.client_id = self->client_id;
    header.has_sequence = 1;
    header.sequence = pending->sequence;
    header.has_attempt = 1;
    header.attempt = pending->attempt + 1;
    if (s_send_broker (self, &header, pending->payload, pending->payload_size, true) == 0) {
        pending->attempt++;
        pending->generation = self->generation;
    }
    else {
        pending->retry_at = now + S_SEND_RETRY_MS;
        s_timer_at (self, pending->retry_at);
    }
}

//  Starts a call: validates, records it in self->pending and sends it.
//  Returns its correlation id, or 0 with *status_p and why set when it
//  cannot even be queued.
static uint64_t
s_call_start (zube_bus_t *self, const char *service, const char *method,
              const void *payload, size_t payload_size, int timeout_ms,
              zube_bus_reply_fn *callback, void *arg, s_sync_slot_t *slot,
              s_internal_fn *internal, zube_status_t *status_p, char *why, size_t why_size)
{
    if (!s_service_name_valid (service) || !method || !*method) {
        *status_p = ZUBE_BAD_REQUEST;
        snprintf (why, why_size, "invalid service or method name");
        return 0;
    }
    if (payload_size > self->max_msg_size) {
        *status_p = ZUBE_PAYLOAD_TOO_LARGE;
        snprintf (why, why_size, "request payload of %zu bytes exceeds the %zu-byte limit",
                  payload_size, self->max_msg_size);
        return 0;
    }
    s_pending_t *pending = calloc (1, sizeof *pending);
    if (pending) {
        pending->service = strdup (service);
        pending->method = strdup (method);
        pending->payload = s_memdup (payload, payload_size);
    }
    if (!pending || !pending->service || !pending->method
        || (payload_size && !pending->payload)) {
        s_pending_destroy (&pending);
        *status_p = ZUBE_INTERNAL;
        snprintf (why, why_size, "out of memory");
        return 0;
    }
    pending->payload_size = payload_size;
    pending->timeout_ms = timeout_ms > 0 ? timeout_ms : ZUBE_BUS_DEFAULT_TIMEOUT_MS;
    pending->deadline = s_now () + pending->timeout_ms;
    pending->correlation_id = ++self->next_correlation;
    pending->sequence = ++self->next_sequence;
    pending->callback = callback;
    pending->arg = arg;
    pending->slot = slot;
    pending->internal = internal;
    zhashx_insert (self->pending, &pending->correlation_id, pending);
    if (internal)
        self->internal_in_flight++;
    s_timer_at (self, pending->deadline);
    s_send_request (self, pending);
    return pending->correlation_id;
}

//  Ends a call with its one outcome. The entry is gone before the
//  callback runs, so the callback may start new calls.
static void
s_deliver (zube_bus_t *self, s_pending_t *pending, zube_bus_reply_t *reply)
{
    zhashx_delete (self->pending, &pending->correlation_id);
    if (pending->internal)
        self->internal_in_flight--;
    zube_bus_reply_fn *callback = pending->callback;
    void *arg = pending->arg;
    s_sync_slot_t *slot = pending->slot;
    s_internal_fn *internal = pending->internal;
    s_pending_destroy (&pending);

    if (!reply)
        reply = s_reply_new (ZUBE_INTERNAL, "out of memory", NULL, 0, 0);
    if (!reply) {
        zube_log_error ("msg=\"out of memory delivering a reply\"");
        if (slot)
            slot->done = true;
        return;
    }
    if (slot) {
        slot->reply = reply;
        slot->done = true;
    }
    else if (internal)
        internal (self, reply);
    else if (callback) {
        self->dispatched++;
        callback (self, reply, arg);
    }
    else
        zube_bus_reply_destroy (&reply);
}

//  After UNAVAILABLE "instance ... died" the request may still be served by
//  another instance: send it again after a short back-off, if the deadline
//  leaves room. Returns false when it does not.
static bool
s_schedule_retry (zube_bus_t *self, s_pending_t *pending, const char *why)
{
    int shift = pending->attempt > 5 ? 5 : (int) pending->attempt - 1;
    int backoff = S_RETRY_MIN_MS << (shift > 0 ? shift : 0);
    if (backoff > S_RETRY_MAX_MS)
        backoff = S_RETRY_MAX_MS;
    int64_t now = s_now ();
    if (now + backoff >= pending->deadline)
        return false;
    free (pending->last_error);
    pending->last_error = s_strdup (why);
    pending->retry_at = now + backoff;
    pending->generation = 0;
    s_timer_at (self, pending->retry_at);
    zube_log_debug ("msg=\"retrying request\" service=%s method=%s correlation_id=%" PRIu64
                    " in_ms=%d reason=\"%s\"",
                    pending->service, pending->method, pending->correlation_id, backoff, why);
    return true;
}

static void
s_handle_reply (zube_bus_t *self, Zube__BusHeader *header, const uint8_t *payload, size_t size)
{
    if (!header->has_correlation_id)
        return;
    s_pending_t *pending = zhashx_lookup (self->pending, &header->correlation_id);
    if (!pending) {
        zube_log_debug ("msg=\"dropped reply to a finished call\" correlation_id=%" PRIu64,
                        header->correlation_id);
        return;
    }
    zube_status_t status = header->has_status ? (zube_status_t) header->status : ZUBE_OK;
    if ((int) status < 0 || status >= ZUBE_STATUS_COUNT)
        status = ZUBE_INTERNAL;
    if (status == ZUBE_UNAVAILABLE && header->error && strstr (header->error, " died")
        && s_schedule_retry (self, pending, header->error))
        return;
    s_deliver (self, pending,
               s_reply_new (status, header->error, payload, size, header->correlation_id));
}

//  Delivers DEADLINE_EXCEEDED to calls whose deadline passed, re-sends
//  those whose retry is due, and finds the next time this is needed.
static void
s_expire_pending (zube_bus_t *self, int64_t now)
{
    self->next_timer = INT64_MAX;
    size_t count = zhashx_size (self->pending);
    if (count == 0)
        return;
    uint64_t *due = malloc (count * sizeof *due);
    if (!due) {
        self->next_timer = now + 10;
        return;
    }
    size_t due_count = 0;
    for (s_pending_t *pending = zhashx_first (self->pending); pending;
         pending = zhashx_next (self->pending)) {
        int64_t when = pending->deadline;
        if (pending->retry_at && pending->retry_at < when)
            when = pending->retry_at;
        if (when <= now)
            due [due_count++] = pending->correlation_id;
        else
            s_timer_at (self, when);
    }
    for (size_t index = 0; index < due_count; index++) {
        s_pending_t *pending = zhashx_lookup (self->pending, &due [index]);
        if (!pending)
            continue;               //  ended by a callback meanwhile
        if (pending->deadline <= now) {
            char why [512];
            snprintf (why, sizeof why, "no reply from %s/%s within %d ms%s%s%s",
                      pending->service, pending->method, pending->timeout_ms,
                      pending->last_error ? " (last attempt: " : "",
                      pending->last_error ? pending->last_error : "",
                      pending->last_error ? ")" : self->connected ? "" : " (broker not reachable)");
            s_deliver (self, pending, s_reply_new (ZUBE_DEADLINE_EXCEEDED, why, NULL, 0,
                                                   pending->correlation_id));
        }
        else if (pending->retry_at && pending->retry_at <= now)
            s_send_request (self, pending);
        else
            s_timer_at (self, pending->retry_at ? pending->retry_at : pending->deadline);
    }
    free (due);
}

uint64_t
zube_bus_call_async (zube_bus_t *self, const char *service, const char *method,
                     const void *payload, size_t payload_size, int timeout_ms,
                     zube_bus_reply_fn *callback, void *arg)
{
    assert (self);
    zube_status_t status;
    char why [256];
    uint64_t id = s_call_start (self, service, method, payload, payload_size, timeout_ms,
                                callback, arg, NULL, NULL, &status, why, sizeof why);
    if (!id)
        zube_log_warn ("msg=\"call not queued\" service=%s method=%s reason=\"%s\"",
                       service ? service : "", method ? method : "", why);
    return id;
}

//  The outcomes for which zube_bus_call returns -1: nothing came back from
//  the service itself.
static bool
s_status_is_no_answer (zube_status_t status)
{
    return status == ZUBE_UNAVAILABLE || status == ZUBE_DEADLINE_EXCEEDED
           || status == ZUBE_PAYLOAD_TOO_LARGE;
}

static void s_run_once (zube_bus_t *self, int64_t until);

int
zube_bus_call (zube_bus_t *self, const char *service, const char *method,
               const void *payload, size_t payload_size, int timeout_ms,
               zube_bus_reply_t **reply_p)
{
    assert (self);
    assert (reply_p);
    s_sync_slot_t slot = {NULL, false};
    zube_status_t status;
    char why [256];
    uint64_t id = s_call_start (self, service, method, payload, payload_size, timeout_ms,
                                NULL, NULL, &slot, NULL, &status, why, sizeof why);
    if (!id) {
        *reply_p = s_reply_new (status, why, NULL, 0, 0);
        return -1;
    }
    self->depth++;
    while (!slot.done) {
        if (zsys_interrupted) {
            s_pending_t *pending = zhashx_lookup (self->pending, &id);
            if (pending)
                s_deliver (self, pending,
                           s_reply_new (ZUBE_UNAVAILABLE, "interrupted", NULL, 0, id));
            break;
        }
        s_run_once (self, s_now () + S_MAX_WAIT_MS);
    }
    self->depth--;
    *reply_p = slot.reply;
    if (!slot.reply) {
        *reply_p = s_reply_new (ZUBE_INTERNAL, "out of memory", NULL, 0, id);
        return -1;
    }
    return s_status_is_no_answer (slot.reply->status) ? -1 : 0;
}

zube_status_t
zube_bus_call_msg (zube_bus_t *self, const char *service, const char *method,
                   const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
                   int timeout_ms, ProtobufCMessage **reply_msg_p, char *error,
                   size_t error_size)
{
    assert (self);
    if (reply_msg_p)
        *reply_msg_p = NULL;
    if (error && error_size)
        *error = 0;
    uint8_t *buffer = NULL;
    size_t size = 0;
    if (req) {
        size = protobuf_c_message_get_packed_size (req);
        buffer = malloc (size ? size : 1);
        if (!buffer) {
            if (error && error_size)
                snprintf (error, error_size, "out of memory");
            return ZUBE_INTERNAL;
        }
        protobuf_c_message_pack (req, buffer);
    }
    zube_bus_reply_t *reply = NULL;
    zube_bus_call (self, service, method, buffer, size, timeout_ms, &reply);
    free (buffer);
    if (!reply) {
        if (error && error_size)
            snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    zube_status_t status = reply->status;
    if (status == ZUBE_OK && reply_desc && reply_msg_p) {
        *reply_msg_p = protobuf_c_message_unpack (
            reply_desc, NULL, reply->payload_size,
            reply->payload ? reply->payload : (const uint8_t *) "");
        if (!*reply_msg_p) {
            status = ZUBE_INTERNAL;
            if (error && error_size)
                snprintf (error, error_size, "cannot decode the %s reply of %s/%s",
                          reply_desc->name, service, method);
        }
    }
    else if (status != ZUBE_OK && error && error_size)
        snprintf (error, error_size, "%s", reply->error ? reply->error : "");
    zube_bus_reply_destroy (&reply);
    return status;
}

size_t
zube_bus_in_flight (zube_bus_t *self)
{
    assert (self);
    return zhashx_size (self->pending) - self->internal_in_flight;
}


//  --------------------------------------------------------------------------
//  Serving

static void
s_send_reply (zube_bus_t *self, const uint8_t *route, size_t route_size,
              uint64_t correlation_id, zube_status_t status, const char *error,
              const void *payload, size_t payload_size)
{
    Zube__BusHeader header;
    s_header_init (&header, ZUBE__BUS_KIND__BUS_REPLY);
    header.has_correlation_id = 1;
    header.correlation_id = correlation_id;
    if (route) {
        header.has_route = 1;
        header.route.data = (uint8_t *) route;
        header.route.len = route_size;
    }
    header.has_status = 1;
    header.status = (Zube__StatusCode) status;
    header.error = (char *) (status == ZUBE_OK ? NULL : error);
    if (s_send_broker (self, &header, payload, payload_size, true) != 0)
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
s_cached_reply_destroy (s_cached_reply_t **self_p)
{
    s_cached_reply_t *self = *self_p;
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
    s_cached_reply_t *entry = self->dedup_ring [self->dedup_oldest];
    self->dedup_ring [self->dedup_oldest] = NULL;
    self->dedup_oldest = (self->dedup_oldest + 1) % S_DEDUP_ENTRIES;
    self->dedup_count--;
    if (entry) {
        zhashx_delete (self->dedup, entry->key);
        self->dedup_bytes -= entry->payload_size;
        s_cached_reply_destroy (&entry);
    }
}

//  Keeps the reply for a retry of the same (client_id, sequence): a ring of
//  the last S_DEDUP_ENTRIES replies, fewer when they hold many bytes.
static void
s_dedup_store (zube_bus_t *self, const char *key, zube_status_t status, const char *error,
               const void *payload, size_t payload_size)
{
    if (zhashx_lookup (self->dedup, key))
        return;
    s_cached_reply_t *entry = calloc (1, sizeof *entry);
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
    if (self->dedup_count == S_DEDUP_ENTRIES)
        s_dedup_evict_oldest (self);
    self->dedup_ring [(self->dedup_oldest + self->dedup_count) % S_DEDUP_ENTRIES] = entry;
    self->dedup_count++;
    zhashx_insert (self->dedup, entry->key, entry);
    self->dedup_bytes += entry->payload_size;
    while (self->dedup_bytes > S_DEDUP_MAX_BYTES && self->dedup_count > 1)
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
    int deadline_ms = header->has_deadline_ms ? (int) MIN (header->deadline_ms, INT_MAX)
                                              : ZUBE_BUS_DEFAULT_TIMEOUT_MS;
    request->deadline = s_now () + deadline_ms;
    request->payload = s_memdup (payload, payload_size);
    request->payload_size = request->payload ? payload_size : 0;
    request->dedup_key = dedup_key;
    request->handle = zlistx_add_end (self->requests, request);
    if (!request->service || !request->method || !request->sender || !request->client_id
        || (payload_size && !request->payload) || !request->handle) {
        request->dedup_key = NULL;
        free (dedup_key);
        s_request_destroy (&request);
        return NULL;
    }
    if (dedup_key)
        zhashx_insert (self->in_progress, dedup_key, request);
    return request;
}

static void
s_dispatch_request (zube_bus_t *self, zube_bus_request_t *request)
{
    s_service_t *service = zhashx_lookup (self->services, request->service);
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

static void
s_handle_request (zube_bus_t *self, Zube__BusHeader *header, const uint8_t *payload,
                  size_t size)
{
    if (!header->service || !header->has_correlation_id) {
        zube_log_debug ("msg=\"dropped request without service or correlation id\"");
        return;
    }
    char *key = NULL;
    if (header->client_id && *header->client_id && header->has_sequence) {
        key = s_dedup_key (header->client_id, header->sequence);
        s_cached_reply_t *cached = key ? zhashx_lookup (self->dedup, key) : NULL;
        if (cached) {
            zube_log_debug ("msg=\"answered a retry from the reply cache\" key=%s", key);
            s_send_reply (self, header->has_route ? header->route.data : NULL,
                          header->has_route ? header->route.len : 0, header->correlation_id,
                          cached->status, cached->error, cached->payload,
                          cached->payload_size);
            free (key);
            return;
        }
        zube_bus_request_t *running = key ? zhashx_lookup (self->in_progress, key) : NULL;
        if (running) {
            //  Answer this copy instead: after a broker restart only the
            //  newest copy's route is known to the broker.
            uint8_t *route = header->has_route ? s_memdup (header->route.data,
                                                           header->route.len)
                                               : NULL;
            if (route || !header->has_route || !header->route.len) {
                free (running->route);
                running->route = route;
                running->route_size = route ? header->route.len : 0;
                running->correlation_id = header->correlation_id;
            }
            zube_log_debug ("msg=\"ignored a retry of a request in progress\" key=%s", key);
            free (key);
            return;
        }
    }
    zube_bus_request_t *request = s_request_new (self, header, payload, size, key);
    if (!request) {
        zube_log_error ("msg=\"out of memory receiving a request\"");
        return;
    }
    if (self->depth > S_MAX_NESTING)
        zlistx_add_end (self->backlog, request);
    else
        s_dispatch_request (self, request);
}

int
zube_bus_serve (zube_bus_t *self, const char *service, zube_bus_handler_fn *handler, void *arg)
{
    assert (self);
    if (!s_service_name_valid (service) || !handler || streq (service, "bus")
        || zhashx_lookup (self->services, service))
        return -1;
    s_service_t *entry = calloc (1, sizeof *entry);
    if (!entry)
        return -1;
    entry->handler = handler;
    entry->arg = arg;
    zhashx_insert (self->services, service, entry);
    s_send_ready (self, service);
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
    s_send_disconnect (self, service);
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
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int) left;
}

const uint8_t *
zube_bus_request_payload (zube_bus_request_t *request, size_t *size_p)
{
    if (size_p)
        *size_p = request->payload_size;
    return request->payload ? request->payload : (const uint8_t *) "";
}

ProtobufCMessage *
zube_bus_request_unpack (zube_bus_request_t *request, const ProtobufCMessageDescriptor *desc)
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
        zube_bus_respond_error (request, ZUBE_BAD_REQUEST, "cannot decode %s/%s payload as %s",
                                request->service, request->method, desc->name);
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
    char why [128];
    if (payload_size > self->max_msg_size) {
        snprintf (why, sizeof why, "reply payload of %zu bytes exceeds the %zu-byte limit",
                  payload_size, self->max_msg_size);
        zube_log_warn ("msg=\"reply too large\" service=%s method=%s size=%zu",
                       request->service, request->method, payload_size);
        status = ZUBE_PAYLOAD_TOO_LARGE;
        error = why;
        payload = NULL;
        payload_size = 0;
    }
    if ((int) status < 0 || status >= ZUBE_STATUS_COUNT)
        status = ZUBE_INTERNAL;
    if (status != ZUBE_OK && (!error || !*error))
        error = zube_status_reason (status);
    if (status == ZUBE_OK)
        error = NULL;
    s_send_reply (self, request->route, request->route_size, request->correlation_id, status,
                  error, payload, payload_size);
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
    char error [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (error, sizeof error, format, args);
    va_end (args);
    zube_bus_respond (request, status, error, NULL, 0);
}


//  --------------------------------------------------------------------------
//  Events

static void
s_event_destroy (s_event_t **self_p)
{
    s_event_t *self = *self_p;
    if (!self)
        return;
    free (self->topic);
    free (self->header);
    free (self->payload);
    free (self);
    *self_p = NULL;
}

static void
s_event_destructor (void **item_p)
{
    s_event_destroy ((s_event_t **) item_p);
}

static int
s_open_pub (zube_bus_t *self)
{
    self->pub = s_socket_new (self, ZMQ_PUB, self->publish_endpoint);
    if (!self->pub)
        return -1;
    self->pub_wanted = true;
    s_event_t *event;
    while ((event = zlistx_detach (self->event_queue, NULL))) {
        s_send_raw (self->pub, event->topic, event->header, event->header_size, event->payload,
                    event->payload_size, true);
        s_event_destroy (&event);
    }
    return 0;
}

static int
s_open_sub (zube_bus_t *self)
{
    self->sub = s_socket_new (self, ZMQ_SUB, self->subscribe_endpoint);
    if (!self->sub)
        return -1;
    for (void *item = zhashx_first (self->subscriptions); item;
         item = zhashx_next (self->subscriptions))
        zsock_set_subscribe (self->sub, (const char *) zhashx_cursor (self->subscriptions));
    return 0;
}

//  bus/info answered: (re)open the event sockets on the endpoints it names.
static void
s_info_reply (zube_bus_t *self, zube_bus_reply_t *reply)
{
    self->info_correlation = 0;
    Zube__BusInfoReply *info = NULL;
    if (reply->status == ZUBE_OK)
        info = zube__bus_info_reply__unpack (NULL, reply->payload_size,
                                             reply->payload ? reply->payload
                                                            : (const uint8_t *) "");
    char *publish = info ? s_endpoint_resolve (self, info->publish_endpoint) : NULL;
    char *subscribe = info ? s_endpoint_resolve (self, info->subscribe_endpoint) : NULL;
    if (info)
        zube__bus_info_reply__free_unpacked (info, NULL);
    if (!publish || !subscribe) {
        zube_log_warn ("msg=\"no event endpoints from bus/info, will ask again\" reason=\"%s\"",
                       reply->status == ZUBE_OK ? "incomplete reply" : reply->error);
        free (publish);
        free (subscribe);
        self->info_retry_at = s_now () + S_INFO_RETRY_MS;
        zube_bus_reply_destroy (&reply);
        return;
    }
    zube_bus_reply_destroy (&reply);
    free (self->publish_endpoint);
    free (self->subscribe_endpoint);
    self->publish_endpoint = publish;
    self->subscribe_endpoint = subscribe;
    zsock_destroy (&self->pub);
    zsock_destroy (&self->sub);
    if (zhashx_size (self->subscriptions) && s_open_sub (self) != 0)
        self->info_retry_at = s_now () + S_INFO_RETRY_MS;
    if ((self->pub_wanted || zlistx_size (self->event_queue)) && s_open_pub (self) != 0)
        self->info_retry_at = s_now () + S_INFO_RETRY_MS;
    zube_log_debug ("msg=\"event sockets open\" publish=%s subscribe=%s",
                    self->publish_endpoint, self->subscribe_endpoint);
}

static void
s_want_info (zube_bus_t *self)
{
    if (self->info_correlation)
        return;
    zube_status_t status;
    char why [256];
    self->info_retry_at = 0;
    self->info_correlation = s_call_start (self, "bus", "info", NULL, 0, S_INFO_TIMEOUT_MS,
                                           NULL, NULL, NULL, s_info_reply, &status, why,
                                           sizeof why);
    if (!self->info_correlation)
        self->info_retry_at = s_now () + S_INFO_RETRY_MS;
}

int
zube_bus_publish (zube_bus_t *self, const char *topic, const void *payload, size_t payload_size)
{
    assert (self);
    if (!topic || !*topic || strlen (topic) > 1024)
        return -1;
    if (payload_size > self->max_msg_size) {
        zube_log_warn ("msg=\"event too large\" topic=%s size=%zu limit=%zu", topic,
                       payload_size, self->max_msg_size);
        return -1;
    }
    uint64_t *sequence = zhashx_lookup (self->topic_sequences, topic);
    if (!sequence) {
        sequence = calloc (1, sizeof *sequence);
        if (!sequence)
            return -1;
        zhashx_insert (self->topic_sequences, topic, sequence);
    }
    Zube__BusHeader header;
    s_header_init (&header, ZUBE__BUS_KIND__BUS_EVENT);
    header.topic = (char *) topic;
    header.has_event_sequence = 1;
    header.event_sequence = ++*sequence;

    if (!self->pub && self->publish_endpoint)
        s_open_pub (self);
    if (self->pub)
        return s_send_frames (self->pub, topic, &header, payload, payload_size, true);

    //  No endpoint yet: keep the event until bus/info answers.
    s_event_t *event = calloc (1, sizeof *event);
    if (!event)
        return -1;
    event->topic = strdup (topic);
    event->header = s_header_pack (&header, &event->header_size);
    event->payload = s_memdup (payload, payload_size);
    event->payload_size = event->payload ? payload_size : 0;
    if (!event->topic || !event->header || (payload_size && !event->payload)) {
        s_event_destroy (&event);
        return -1;
    }
    zlistx_add_end (self->event_queue, event);
    if (zlistx_size (self->event_queue) > S_MAX_QUEUED_EVENTS) {
        s_event_t *oldest = zlistx_detach (self->event_queue, NULL);
        s_event_destroy (&oldest);
        if (self->events_dropped++ == 0)
            zube_log_warn ("msg=\"event queue full, dropping oldest events\" limit=%d",
                           S_MAX_QUEUED_EVENTS);
    }
    self->pub_wanted = true;
    s_want_info (self);
    return 0;
}

int
zube_bus_subscribe (zube_bus_t *self, const char *topic_prefix, zube_bus_event_fn *callback,
                    void *arg)
{
    assert (self);
    if (!topic_prefix || !callback || strlen (topic_prefix) > 1024
        || zhashx_lookup (self->subscriptions, topic_prefix))
        return -1;
    s_subscription_t *subscription = calloc (1, sizeof *subscription);
    if (!subscription)
        return -1;
    subscription->callback = callback;
    subscription->arg = arg;
    zhashx_insert (self->subscriptions, topic_prefix, subscription);
    if (self->sub)
        zsock_set_subscribe (self->sub, topic_prefix);
    else if (self->subscribe_endpoint)
        s_open_sub (self);
    else
        s_want_info (self);
    return 0;
}

int
zube_bus_unsubscribe (zube_bus_t *self, const char *topic_prefix)
{
    assert (self);
    if (!topic_prefix || !zhashx_lookup (self->subscriptions, topic_prefix))
        return -1;
    zhashx_delete (self->subscriptions, topic_prefix);
    if (self->sub)
        zsock_set_unsubscribe (self->sub, topic_prefix);
    return 0;
}

//  Calls every subscription whose prefix matches, once each. The matching
//  prefixes are collected first: a callback may unsubscribe any of them.
static void
s_handle_event (zube_bus_t *self, zmq_msg_t *frames, int count)
{
    if (count != 3)
        return;
    Zube__BusHeader *header = s_header_unpack (&frames [1]);
    if (!header)
        return;
    bool is_event = header->kind == ZUBE__BUS_KIND__BUS_EVENT;
    zube__bus_header__free_unpacked (header, NULL);
    if (!is_event)
        return;
    char *topic = strndup ((const char *) zmq_msg_data (&frames [0]), zmq_msg_size (&frames [0]));
    zlistx_t *matches = zlistx_new ();
    if (!topic || !matches) {
        free (topic);
        zlistx_destroy (&matches);
        return;
    }
    zlistx_set_destructor (matches, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_duplicator (matches, (zlistx_duplicator_fn *) strdup);
    for (void *item = zhashx_first (self->subscriptions); item;
         item = zhashx_next (self->subscriptions)) {
        const char *prefix = (const char *) zhashx_cursor (self->subscriptions);
        if (strncmp (topic, prefix, strlen (prefix)) == 0)
            zlistx_add_end (matches, (void *) prefix);
    }
    const uint8_t *payload = (const uint8_t *) zmq_msg_data (&frames [2]);
    size_t payload_size = zmq_msg_size (&frames [2]);
    for (const char *prefix = zlistx_first (matches); prefix; prefix = zlistx_next (matches)) {
        s_subscription_t *subscription = zhashx_lookup (self->subscriptions, prefix);
        if (subscription) {
            self->dispatched++;
            subscription->callback (self, topic, payload, payload_size, subscription->arg);
        }
    }
    zlistx_destroy (&matches);
    free (topic);
}


//  --------------------------------------------------------------------------
//  The loop

static void
s_handle_broker_message (zube_bus_t *self, zmq_msg_t *frames, int count)
{
    Zube__BusHeader *header = count >= 1 && count <= 2 ? s_header_unpack (&frames [0]) : NULL;
    if (!header) {
        zube_log_debug ("msg=\"dropped malformed message from broker\" frames=%d", count);
        return;
    }
    self->last_heard = s_now ();
    bool restarted = false;
    if (header->kind == ZUBE__BUS_KIND__BUS_HEARTBEAT) {
        if (header->has_heartbeat_ms && header->heartbeat_ms > 0
            && header->heartbeat_ms < INT_MAX / ZUBE_BUS_HEARTBEAT_LIVENESS)
            self->broker_heartbeat_ms = (int) header->heartbeat_ms;
        if (header->instance && *header->instance
            && (!self->epoch || strcmp (self->epoch, header->instance) != 0)) {
            //  Everything sent on a DEALER before its first contact went to
            //  the broker that answers now; only a change seen on a
            //  connection that was already up means a restart.
            restarted = self->connected && self->epoch;
            free (self->epoch);
            self->epoch = strdup (header->instance);
        }
    }
    if (!self->connected) {
        self->connected = true;
        self->backoff_ms = self->reconnect_min_ms;
        zube_log_info ("msg=\"connected to broker\" endpoint=%s epoch=%s", self->endpoint,
                       self->epoch ? self->epoch : "-");
    }
    if (restarted) {
        zube_log_info ("msg=\"broker restarted, registering again\" epoch=%s", self->epoch);
        self->reconnects++;
        s_resync (self);
    }
    const uint8_t *payload = count == 2 ? (const uint8_t *) zmq_msg_data (&frames [1]) : NULL;
    size_t payload_size = count == 2 ? zmq_msg_size (&frames [1]) : 0;
    switch (header->kind) {
        case ZUBE__BUS_KIND__BUS_REPLY:
            s_handle_reply (self, header, payload, payload_size);
            break;
        case ZUBE__BUS_KIND__BUS_REQUEST:
            s_handle_request (self, header, payload, payload_size);
            break;
        case ZUBE__BUS_KIND__BUS_DISCONNECT:
            zube_log_info ("msg=\"broker is shutting down\"");
            s_disconnect (self);
            break;
        case ZUBE__BUS_KIND__BUS_HEARTBEAT:
            break;
        default:
            zube_log_debug ("msg=\"dropped message of unexpected kind\" kind=%d", header->kind);
            break;
    }
    zube__bus_header__free_unpacked (header, NULL);
}

//  Each read re-resolves the socket: a callback may have replaced it.
static void
s_read_sockets (zube_bus_t *self)
{
    for (int index = 0; index < S_READ_BATCH && self->dealer; index++) {
        zmq_msg_t frames [2];
        int count = s_recv_message (zsock_resolve (self->dealer), frames, 2);
        if (count == 0)
            break;
        s_handle_broker_message (self, frames, count);
        for (int frame = 0; frame < count && frame < 2; frame++)
            zmq_msg_close (&frames [frame]);
    }
    for (int index = 0; index < S_READ_BATCH && self->sub; index++) {
        zmq_msg_t frames [3];
        int count = s_recv_message (zsock_resolve (self->sub), frames, 3);
        if (count == 0)
            break;
        s_handle_event (self, frames, count);
        for (int frame = 0; frame < count && frame < 3; frame++)
            zmq_msg_close (&frames [frame]);
    }
}

static void
s_run_timers (zube_bus_t *self)
{
    int64_t now = s_now ();
    int liveness = ZUBE_BUS_HEARTBEAT_LIVENESS * s_broker_interval (self);
    if (!self->dealer) {
        if (now >= self->reconnect_at)
            s_reconnect (self);
    }
    else if (now - self->last_heard > liveness) {
        zube_log_warn ("msg=\"broker silent, reconnecting\" endpoint=%s silent_ms=%" PRId64,
                       self->endpoint, now - self->last_heard);
        s_disconnect (self);
    }
    else if (now - self->last_sent >= self->heartbeat_ms)
        s_send_heartbeat (self);

    if (now >= self->next_timer)
        s_expire_pending (self, now);
    if (self->info_retry_at && now >= self->info_retry_at)
        s_want_info (self);
    while (self->depth <= S_MAX_NESTING && zlistx_size (self->backlog)) {
        zube_bus_request_t *request = zlistx_detach (self->backlog, NULL);
        s_dispatch_request (self, request);
    }
}

static int64_t
s_next_wakeup (zube_bus_t *self, int64_t now)
{
    int64_t wake = now + S_MAX_WAIT_MS;
    if (!self->dealer)
        wake = MIN (wake, self->reconnect_at);
    else {
        wake = MIN (wake, self->last_sent + self->heartbeat_ms);
        wake = MIN (wake, self->last_heard
                              + ZUBE_BUS_HEARTBEAT_LIVENESS * s_broker_interval (self) + 1);
    }
    wake = MIN (wake, self->next_timer);
    if (self->info_retry_at)
        wake = MIN (wake, self->info_retry_at);
    if (zlistx_size (self->backlog) && self->depth <= S_MAX_NESTING)
        wake = now;
    return wake;
}

//  One pass: wait for traffic (until `until` or the next timer), read what
//  came, then run timers. Reading comes before the liveness check so that a
//  broker's heartbeats waiting in the socket count.
static void
s_run_once (zube_bus_t *self, int64_t until)
{
    int64_t now = s_now ();
    int interval = s_broker_interval (self);
    //  A caller that did not poll for a while has not read the broker's
    //  heartbeats either: give the broker a fresh window rather than
    //  blaming it for our own absence.
    if (self->last_pass && now - self->last_pass > interval && self->last_heard < now - interval)
        self->last_heard = now - interval;
    int64_t wake = MIN (until, s_next_wakeup (self, now));
    int wait = wake > now ? (int) MIN (wake - now, S_MAX_WAIT_MS) : 0;
    zmq_pollitem_t items [2];
    int count = 0;
    if (self->dealer)
        items [count++] = (zmq_pollitem_t) {zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0};
    if (self->sub)
        items [count++] = (zmq_pollitem_t) {zsock_resolve (self->sub), 0, ZMQ_POLLIN, 0};
    if (count)
        zmq_poll (items, count, wait);
    else if (wait > 0)
        zclock_sleep (wait);
    s_read_sockets (self);
    s_run_timers (self);
    self->last_pass = s_now ();
}

int
zube_bus_poll (zube_bus_t *self, int timeout_ms)
{
    assert (self);
    if (zsys_interrupted)
        return -1;
    uint64_t before = self->dispatched;
    int64_t until = timeout_ms < 0 ? INT64_MAX : s_now () + timeout_ms;
    self->depth++;
    do
        s_run_once (self, until);
    while (self->dispatched == before && !zsys_interrupted && s_now () < until);
    self->depth--;
    if (zsys_interrupted)
        return -1;
    uint64_t count = self->dispatched - before;
    return count > INT_MAX ? INT_MAX : (int) count;
}


//  --------------------------------------------------------------------------
//  Constructor, destructor, accessors

static void
s_service_destructor (void **item_p)
{
    s_free_item (item_p);
}

static int
s_load_certificates (zube_bus_t *self, const char *certs_dir, const char *name)
{
    if (!zsys_has_curve ()) {
        zube_log_error ("msg=\"libzmq was built without CURVE; use insecure\"");
        return -1;
    }
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/private/%s.cert_secret", certs_dir, name);
    self->cert = zcert_load (path);
    if (!self->cert
        || streq (zcert_secret_txt (self->cert), "0000000000000000000000000000000000000000")) {
        zube_log_error ("msg=\"cannot load own secret certificate\" path=%s", path);
        return -1;
    }
    snprintf (path, sizeof path, "%s/broker.cert", certs_dir);
    zcert_t *broker = zcert_load (path);
    if (!broker) {
        zube_log_error ("msg=\"cannot load the broker's certificate\" path=%s", path);
        return -1;
    }
    self->server_key = strdup (zcert_public_txt (broker));
    zcert_destroy (&broker);
    return self->server_key ? 0 : -1;
}

zube_bus_t *
zube_bus_new (const zube_bus_config_t *config)
{
    zube_bus_config_t defaults = {0};
    if (!config)
        config = &defaults;
    const char *endpoint = config->endpoint ? config->endpoint : ZUBE_BUS_DEFAULT_ENDPOINT;
    if (!s_endpoint_valid (endpoint)) {
        zube_log_error ("msg=\"invalid bus endpoint\" endpoint=\"%s\"", endpoint);
        return NULL;
    }
    if (!config->insecure && (!config->certs_dir || !config->name || !*config->name)) {
        zube_log_error ("msg=\"a secure bus connection needs certs_dir and name "
                        "(or insecure)\"");
        return NULL;
    }
    if (config->heartbeat_ms < 0 || config->reconnect_min_ms < 0 || config->reconnect_max_ms < 0
        || config->hwm < 0) {
        zube_log_error ("msg=\"invalid bus config: negative interval or limit\"");
        return NULL;
    }
    zube_bus_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->endpoint = strdup (endpoint);
    self->insecure = config->insecure;
    self->heartbeat_ms = config->heartbeat_ms ? config->heartbeat_ms
                                              : ZUBE_BUS_DEFAULT_HEARTBEAT_MS;
    self->max_msg_size = config->max_msg_size ? config->max_msg_size
                                              : ZUBE_BUS_DEFAULT_MAX_MSG_SIZE;
    if (self->max_msg_size > INT_MAX)
        self->max_msg_size = INT_MAX;
    self->hwm = config->hwm ? config->hwm : S_DEFAULT_HWM;
    self->reconnect_min_ms = config->reconnect_min_ms ? config->reconnect_min_ms : 100;
    self->reconnect_max_ms = config->reconnect_max_ms ? config->reconnect_max_ms : 5000;
    if (self->reconnect_max_ms < self->reconnect_min_ms)
        self->reconnect_max_ms = self->reconnect_min_ms;
    self->backoff_ms = self->reconnect_min_ms;
    self->next_timer = INT64_MAX;
    s_random_id (self->client_id, sizeof self->client_id);
    char host [256] = "localhost";
    gethostname (host, sizeof host - 1);
    host [sizeof host - 1] = 0;
    if (asprintf (&self->instance, "%s.%d.%.8s",
                  config->name && *config->name ? config->name : host, (int) getpid (),
                  self->client_id) < 0)
        self->instance = NULL;

    self->pending = zhashx_new ();
    self->services = zhashx_new ();
    self->requests = zlistx_new ();
    self->in_progress = zhashx_new ();
    self->backlog = zlistx_new ();
    self->dedup = zhashx_new ();
    self->subscriptions = zhashx_new ();
    self->topic_sequences = zhashx_new ();
    self->event_queue = zlistx_new ();
    if (!self->endpoint || !self->instance || !self->pending || !self->services
        || !self->requests || !self->in_progress || !self->backlog || !self->dedup
        || !self->subscriptions || !self->topic_sequences || !self->event_queue)
        goto failed;
    zhashx_set_key_hasher (self->pending, s_u64_hash);
    zhashx_set_key_comparator (self->pending, s_u64_compare);
    zhashx_set_key_duplicator (self->pending, NULL);
    zhashx_set_key_destructor (self->pending, NULL);
    zhashx_set_destructor (self->services, s_service_destructor);
    zhashx_set_destructor (self->subscriptions, s_free_item);
    zhashx_set_destructor (self->topic_sequences, s_free_item);
    zlistx_set_destructor (self->event_queue, s_event_destructor);

    if (!self->insecure && s_load_certificates (self, config->certs_dir, config->name) != 0)
        goto failed;
    if (s_connect (self) != 0)
        goto failed;
    zube_log_debug ("msg=\"bus connection opened\" endpoint=%s client_id=%s instance=%s",
                    self->endpoint, self->client_id, self->instance);
    return self;

failed:
    zube_bus_destroy (&self);
    return NULL;
}

void
zube_bus_destroy (zube_bus_t **self_p)
{
    assert (self_p);
    zube_bus_t *self = *self_p;
    if (!self)
        return;
    //  Not from inside one of this connection's callbacks.
    assert (self->depth == 0);

    //  Every call still waiting gets its one outcome, here and now. A
    //  callback that keeps starting new calls is cut off after a few rounds.
    for (int round = 0; self->pending && zhashx_size (self->pending) && round < 8; round++) {
        size_t count = zhashx_size (self->pending);
        uint64_t *ids = malloc (count * sizeof *ids);
        if (!ids)
            break;
        size_t index = 0;
        for (s_pending_t *pending = zhashx_first (self->pending); pending;
             pending = zhashx_next (self->pending))
            ids [index++] = pending->correlation_id;
        for (size_t at = 0; at < index; at++) {
            s_pending_t *pending = zhashx_lookup (self->pending, &ids [at]);
            if (!pending)
                continue;
            if (pending->internal) {
                zhashx_delete (self->pending, &pending->correlation_id);
                self->internal_in_flight--;
                s_pending_destroy (&pending);
            }
            else
                s_deliver (self, pending, s_reply_new (ZUBE_UNAVAILABLE, "connection closed",
                                                       NULL, 0, ids [at]));
        }
        free (ids);
    }
    if (self->pending) {
        for (s_pending_t *pending = zhashx_first (self->pending); pending;
             pending = zhashx_next (self->pending))
            s_pending_destroy (&pending);
        zhashx_destroy (&self->pending);
    }
    //  Tell the broker we are leaving so it stops routing to us at once,
    //  and give that one message a moment to leave.
    if (self->dealer) {
        s_send_disconnect (self, "");
        zsock_set_linger (self->dealer, 100);
    }
    zsock_destroy (&self->dealer);
    zsock_destroy (&self->pub);
    zsock_destroy (&self->sub);

    zlistx_destroy (&self->backlog);
    if (self->requests) {
        zube_bus_request_t *request;
        while ((request = zlistx_first (self->requests))) {
            request->handle = NULL;
            zlistx_detach (self->requests, NULL);
            s_request_destroy (&request);
        }
        zlistx_destroy (&self->requests);
    }
    zhashx_destroy (&self->in_progress);
    while (self->dedup_count)
        s_dedup_evict_oldest (self);
    zhashx_destroy (&self->dedup);
    zhashx_destroy (&self->services);
    zhashx_destroy (&self->subscriptions);
    zhashx_destroy (&self->topic_sequences);
    zlistx_destroy (&self->event_queue);
    zcert_destroy (&self->cert);
    free (self->server_key);
    free (self->endpoint);
    free (self->instance);
    free (self->epoch);
    free (self->publish_endpoint);
    free (self->subscribe_endpoint);
    free (self);
    *self_p = NULL;
}

const char *
zube_bus_client_id (zube_bus_t *self)
{
    assert (self);
    return self->client_id;
}

const char *
zube_bus_instance (zube_bus_t *self)
{
    assert (self);
    return self->instance;
}

bool
zube_bus_connected (zube_bus_t *self)
{
    assert (self);
    return self->dealer && self->connected;
}

uint64_t
zube_bus_reconnects (zube_bus_t *self)
{
    assert (self);
    return self->reconnects;
}
