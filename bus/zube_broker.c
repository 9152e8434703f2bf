/*  zube_broker - the zube bus broker: routes requests, fans out events.

    Written as a server of events and actions, in the way of malamute. The
    events are messages (a REQUEST, REPLY, READY, HEARTBEAT or DISCONNECT on
    the ROUTER, an EVENT on the XSUB, a subscription on the XPUB, a refused
    handshake on a socket monitor) and timers (a deadline, a heartbeat
    sweep). Each is handled by an action named after what it does:
    s_request_route, s_reply_forward, s_instance_register, s_peer_forget,
    s_request_expire, s_peers_sweep, s_event_forward, ...

    State: peers by routing id (clients and service instances alike);
    services by name, each with its instances and a FIFO of requests
    waiting for an instance; requests forwarded and not yet answered, in a
    hash table by (client route, correlation id) and on a timer wheel by
    deadline. The broker reads headers only: payload frames are moved from
    the receiving socket to the sending one without a copy.

    Batches (docs/bus-protocol.md): a message may be one frame holding
    several requests and replies; each entry is handled as the classic
    message it stands for. What one drain of the ROUTER has for a peer
    that reads batches is queued on the peer (s_entry_send) and sent as one
    frame when the drain ends (s_batches_flush), or when the batch is full.
*/
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include "zube_broker.h"
#include "zube/bus.h"
#include "zube/certs.h"
#include "zube/log.h"
#include "zube/version.h"
#include "bus.pb-c.h"
#include "../lib/zube_bus_wire.h"

#define S_LIVENESS          ZUBE_BUS_HEARTBEAT_LIVENESS
#define S_BATCH             512     //  messages per socket per step
#define S_TICK_MS           10      //  how often timers are looked at
#define S_WHEEL_SLOTS       4096    //  timer wheel: 4096 slots of 8 ms
#define S_WHEEL_MS          8
#define S_ROUTE_INLINE      24      //  routing ids up to this are not malloc'd
#define S_POOL_MAX          4096    //  request records kept for reuse
#define S_NAME_MAX          255
#define S_FRAMES            3
#define S_HEARTBEAT_BYTES   96      //  the broker's packed HEARTBEAT at most
#define S_WAITING_FACTOR    4       //  all services together: 4 x --max-waiting
#define S_SHUTDOWN_LINGER   200     //  ms to flush DISCONNECTs at the end
#define S_HEARTBEAT_MIN     10
#define S_HEARTBEAT_MAX     600000
#define S_POLL_ROUTER       0       //  indices in polled[]; monitors follow
#define S_POLL_XSUB         1
#define S_POLL_XPUB         2

typedef struct _s_peer_t s_peer_t;
typedef struct _s_service_t s_service_t;
typedef struct _s_instance_t s_instance_t;
typedef struct _s_request_t s_request_t;

//  A ZeroMQ routing id (1..255 bytes), the key of the peer table
typedef struct {
    size_t size;
    uint8_t data [256];
} s_rid_t;

//  What a request waiting for an instance keeps: the message as received
typedef struct {
    s_service_t *service;
    zmq_msg_t header;
    zmq_msg_t payload;
    char *sender;
} s_waiting_t;

//  A request the broker remembers: forwarded to an instance and not yet
//  answered (instance set), or waiting for one (wait set).
struct _s_request_t {
    s_request_t *hash_next, **hash_pprev;       //  in-flight table chain
    s_request_t *wheel_next, **wheel_pprev;     //  timer wheel slot
    s_request_t *list_next, *list_prev;         //  instance's or service's list
    int64_t deadline;
    uint64_t correlation_id;
    uint64_t hash;
    s_instance_t *instance;
    s_waiting_t *wait;
    uint8_t *route;
    size_t route_size;
    uint8_t route_inline [S_ROUTE_INLINE];
};

//  One registration: a peer serving a service
struct _s_instance_t {
    s_peer_t *peer;
    s_service_t *service;
    char *name;
    uint32_t in_flight;
    uint64_t handled;
    s_request_t *requests;      //  forwarded here and not yet answered
};

struct _s_service_t {
    char *name;
    s_instance_t **instances;
    size_t size, max;
    size_t cursor;              //  round-robin between equally loaded
    s_request_t *waiting_head, *waiting_tail;
    size_t waiting;
};

//  A peer on the ROUTER: a client, an instance of services, or both
struct _s_peer_t {
    s_rid_t rid;
    s_peer_t *next, *prev;
    char key [41];              //  the CURVE key ZAP authenticated
    char *sender;               //  its certificate's name, or "anonymous"
    int64_t last_seen;
    int64_t last_sent;
    uint32_t heartbeat_ms;      //  its own interval, 0 until it says
    bool unreachable;           //  a send failed: not picked until it speaks
    s_instance_t **instances;
    size_t instances_size, instances_max;
    bool batches;               //  reads batches: its READY/HEARTBEAT said so
    uint32_t batch_max;         //  bytes one batch to it may hold
    zube_bus_batch_t out;       //  queued for it, sent when the drain ends
    uint32_t out_replied;       //  forwarded replies in out (counted when sent)
    uint32_t out_requests;      //  requests in out
    s_peer_t *flush_next;       //  the broker's list of peers with out
    bool flush_listed;
};

//  A payload as received: its bytes, and the frame that holds them alone
//  when it came in a classic message (then moved on without a copy),
//  NULL when it is an entry of a batch
typedef struct {
    const uint8_t *data;
    size_t size;
    zmq_msg_t *frame;
} s_body_t;

//  Received headers are read in place (lib/zube_bus_wire.h, shared with
//  the client library)
typedef zube_bus_wire_t s_header_t;
typedef zube_bus_wire_bytes_t s_bytes_t;
#define S_HAS ZUBE_BUS_WIRE_HAS

struct _zube_broker_t {
    //  Configuration
    char *bind;
    char *publish_bind;
    char *events_bind;
    char *certs_dir;
    bool secure;
    int heartbeat_ms;
    size_t max_message_size;
    int hwm;
    size_t max_waiting;

    //  Sockets
    zsock_t *router_sock, *xsub_sock, *xpub_sock;
    void *router, *xsub, *xpub;
    zsock_t *monitors [3];
    struct {
        int fd;                     //  the socket's ZMQ_FD
        void *handle;
        zsock_t *monitor;           //  NULL for the three broker sockets
    } polled [6];
    int polled_count;
    uint32_t pending;               //  sockets to drain before sleeping
    uint32_t touched;               //  sockets sent on since their last drain
    char *endpoint, *publish_endpoint, *events_endpoint;
    bool bound;
    bool stopped;

    //  Security
    zactor_t *auth;
    zcert_t *cert;
    zube_certs_names_t *names;

    //  State
    zhashx_t *peers;                //  s_rid_t -> s_peer_t
    s_peer_t *peer_list;
    s_peer_t *recent [2];           //  the last peers heard from, newest first
    s_peer_t *last_client;          //  the last peer a reply went to
    s_peer_t *flush_head;           //  peers with a batch queued
    uint64_t batches_sent;          //  for the log: batches, and entries in them
    uint64_t batched_sent;
    zhashx_t *services;             //  name -> s_service_t
    size_t waiting_total;
    s_request_t **buckets;          //  in-flight by (route, correlation id)
    size_t bucket_count;
    size_t in_flight;
    s_request_t *wheel [S_WHEEL_SLOTS];
    int64_t wheel_cursor;
    s_request_t *pool;
    size_t pool_size;

    //  Clocks
    int64_t now;
    int64_t started;
    int64_t next_tick;
    int64_t next_sweep;

    //  Scratch for the message being handled
    zmq_msg_t frames [S_FRAMES];
    zmq_msg_t scratch;
    s_header_t header;
    uint8_t heartbeat [S_HEARTBEAT_BYTES];
    size_t heartbeat_size;

    char epoch [17];
    zube_broker_counters_t counters;
};

static void s_peer_forget (zube_broker_t *self, s_peer_t *peer, const char *reason);
static void s_instance_forget (zube_broker_t *self, s_instance_t *instance,
                               const char *reason);
static void s_service_dispatch_waiting (zube_broker_t *self, s_service_t *service);
static void s_answer_error (zube_broker_t *self, const uint8_t *route, size_t route_size,
                            uint64_t correlation_id, zube_status_t status, const char *format,
                            ...);
static void s_request_wait (zube_broker_t *self, s_service_t *service, const s_header_t *header,
                            zmq_msg_t *header_msg, const uint8_t *route, size_t route_size,
                            const char *sender, s_body_t *payload, int64_t deadline);


//  --------------------------------------------------------------------------
//  Headers on the wire. The broker reads a header in place and writes the
//  one it forwards by copying the received bytes minus the fields it
//  stamps (sender, route, deadline) and appending its own values: no
//  protobuf-c unpack, no allocation. A header that is not well-formed
//  protobuf, or carries a known field with the wrong wire type, is refused.

static bool
s_header_scan (s_header_t *header, zmq_msg_t *msg)
{
    return zube_bus_wire_scan (header, (const uint8_t *) zmq_msg_data (msg),
                               zmq_msg_size (msg));
}

//  The fields the broker replaces, and their new values (NULL: dropped)
typedef struct {
    const s_bytes_t *sender;
    const s_bytes_t *route;
    const uint64_t *deadline_ms;
} s_stamp_t;

//  The size of header rewritten with stamp
static size_t
s_header_rewrite_size (const s_header_t *header, const s_stamp_t *stamp)
{
    size_t size = header->size - header->span [ZUBE_BUS_F_SENDER] - header->span [ZUBE_BUS_F_ROUTE]
                - header->span [ZUBE_BUS_F_DEADLINE_MS];
    if (stamp->deadline_ms)
        size += 1 + zube_bus_wire_varint_size (*stamp->deadline_ms);
    if (stamp->sender)
        size += 1 + zube_bus_wire_varint_size (stamp->sender->size) + stamp->sender->size;
    if (stamp->route)
        size += 1 + zube_bus_wire_varint_size (stamp->route->size) + stamp->route->size;
    return size;
}

//  Writes header without its sender, route and deadline, then the
//  stamp's values, at out (s_header_rewrite_size bytes).
static void
s_header_rewrite_into (const s_header_t *header, const s_stamp_t *stamp, uint8_t *out)
{
    uint8_t *start_out = out;
    //  The kept fields are copied in runs, one memcpy between two dropped
    //  fields rather than one per field
    const uint8_t *cursor = header->data, *end = header->data + header->size;
    const uint8_t *run = cursor;
    while (cursor < end) {
        const uint8_t *start = cursor;
        uint64_t number = 0, value = 0;
        s_bytes_t bytes = {NULL, 0};
        unsigned wire_type;
        zube_bus_wire_field_read (&cursor, end, &number, &value, &bytes, &wire_type);
        if (number == ZUBE_BUS_F_SENDER || number == ZUBE_BUS_F_ROUTE || number == ZUBE_BUS_F_DEADLINE_MS) {
            memcpy (out, run, start - run);
            out += start - run;
            run = cursor;
        }
    }
    memcpy (out, run, end - run);
    out += end - run;
    if (stamp->deadline_ms) {
        *out++ = ZUBE_BUS_F_DEADLINE_MS << 3;
        out = zube_bus_wire_varint_write (out, *stamp->deadline_ms);
    }
    if (stamp->sender) {
        *out++ = ZUBE_BUS_F_SENDER << 3 | 2;
        out = zube_bus_wire_varint_write (out, stamp->sender->size);
        memcpy (out, stamp->sender->data, stamp->sender->size);
        out += stamp->sender->size;
    }
    if (stamp->route) {
        *out++ = ZUBE_BUS_F_ROUTE << 3 | 2;
        out = zube_bus_wire_varint_write (out, stamp->route->size);
        memcpy (out, stamp->route->data, stamp->route->size);
        out += stamp->route->size;
    }
    assert ((size_t) (out - start_out) == s_header_rewrite_size (header, stamp));
    (void) start_out;
}

//  The same into a new frame
static int
s_header_rewrite (const s_header_t *header, const s_stamp_t *stamp, zmq_msg_t *msg)
{
    if (zmq_msg_init_size (msg, s_header_rewrite_size (header, stamp)) != 0)
        return -1;
    s_header_rewrite_into (header, stamp, (uint8_t *) zmq_msg_data (msg));
    return 0;
}

static int
s_header_pack (const Zube__BusHeader *header, zmq_msg_t *msg)
{
    size_t size = zube__bus_header__get_packed_size (header);
    if (zmq_msg_init_size (msg, size) != 0)
        return -1;
    zube__bus_header__pack (header, (uint8_t *) zmq_msg_data (msg));
    return 0;
}

static int
s_message_pack (const ProtobufCMessage *message, zmq_msg_t *msg)
{
    size_t size = protobuf_c_message_get_packed_size (message);
    if (zmq_msg_init_size (msg, size) != 0)
        return -1;
    protobuf_c_message_pack (message, (uint8_t *) zmq_msg_data (msg));
    return 0;
}

//  Service and instance names go into logs and listings: printable, no
//  spaces or quotes, 1..255 bytes. Copies a valid one into name (256 bytes).
static bool
s_name_copy (const s_header_t *header, int field, char *name)
{
    if (!S_HAS (header, field))
        return false;
    const s_bytes_t *bytes = &header->bytes [field];
    if (bytes->size == 0 || bytes->size > S_NAME_MAX)
        return false;
    for (size_t i = 0; i < bytes->size; i++) {
        uint8_t c = bytes->data [i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    memcpy (name, bytes->data, bytes->size);
    name [bytes->size] = 0;
    return true;
}

static bool
s_bytes_is (const s_header_t *header, int field, const char *text)
{
    size_t size = strlen (text);
    return S_HAS (header, field) && header->bytes [field].size == size
        && memcmp (header->bytes [field].data, text, size) == 0;
}

static void
s_rid_hex (const uint8_t *data, size_t size, char *buf, size_t buf_size)
{
    size_t used = 0;
    for (size_t i = 0; i < size && used + 3 <= buf_size; i++)
        used += snprintf (buf + used, buf_size - used, "%02x", data [i]);
    if (buf_size)
        buf [used < buf_size ? used : buf_size - 1] = 0;
}


//  --------------------------------------------------------------------------
//  Peer table keyed by routing id

static size_t
s_rid_hasher (const void *key)
{
    const s_rid_t *rid = (const s_rid_t *) key;
    uint64_t hash = 1469598103934665603ULL;
    for (size_t i = 0; i < rid->size; i++) {
        hash ^= rid->data [i];
        hash *= 1099511628211ULL;
    }
    return (size_t) hash;
}

static int
s_rid_comparator (const void *a, const void *b)
{
    const s_rid_t *x = (const s_rid_t *) a, *y = (const s_rid_t *) b;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    return memcmp (x->data, y->data, x->size);
}


//  --------------------------------------------------------------------------
//  Request records: pooled, in a hash table by (route, correlation id), on
//  a timer wheel by deadline.

static uint64_t
s_request_hash (const uint8_t *route, size_t route_size, uint64_t correlation_id)
{
    uint64_t hash = 1469598103934665603ULL;
    for (size_t i = 0; i < route_size; i++) {
        hash ^= route [i];
        hash *= 1099511628211ULL;
    }
    hash ^= correlation_id;
    hash *= 0x9E3779B97F4A7C15ULL;
    return hash ^ (hash >> 29);
}

static s_request_t *
s_request_new (zube_broker_t *self, const uint8_t *route, size_t route_size,
               uint64_t correlation_id, int64_t deadline)
{
    s_request_t *request = self->pool;
    if (request) {
        self->pool = request->list_next;
        self->pool_size--;
        memset (request, 0, sizeof *request);
    }
    else
        request = (s_request_t *) calloc (1, sizeof *request);
    if (!request)
        return NULL;
    request->route = route_size <= S_ROUTE_INLINE
                   ? request->route_inline : (uint8_t *) malloc (route_size);
    if (!request->route) {
        free (request);
        return NULL;
    }
    memcpy (request->route, route, route_size);
    request->route_size = route_size;
    request->correlation_id = correlation_id;
    request->deadline = deadline;
    request->hash = s_request_hash (route, route_size, correlation_id);
    return request;
}

static void
s_request_free (zube_broker_t *self, s_request_t *request)
{
    if (request->wait) {
        zmq_msg_close (&request->wait->header);
        zmq_msg_close (&request->wait->payload);
        free (request->wait->sender);
        free (request->wait);
        request->wait = NULL;
    }
    if (request->route != request->route_inline)
        free (request->route);
    request->route = NULL;
    if (self->pool_size < S_POOL_MAX) {
        request->list_next = self->pool;
        self->pool = request;
        self->pool_size++;
    }
    else
        free (request);
}

static void
s_table_grow (zube_broker_t *self)
{
    size_t count = self->bucket_count * 2;
    s_request_t **buckets = (s_request_t **) calloc (count, sizeof *buckets);
    if (!buckets)
        return;             //  Longer chains, still correct
    for (size_t i = 0; i < self->bucket_count; i++) {
        s_request_t *request = self->buckets [i];
        while (request) {
            s_request_t *next = request->hash_next;
            s_request_t **head = &buckets [request->hash & (count - 1)];
            request->hash_next = *head;
            if (*head)
                (*head)->hash_pprev = &request->hash_next;
            *head = request;
            request->hash_pprev = head;
            request = next;
        }
    }
    free (self->buckets);
    self->buckets = buckets;
    self->bucket_count = count;
}

static void
s_table_insert (zube_broker_t *self, s_request_t *request)
{
    if (self->in_flight >= self->bucket_count)
        s_table_grow (self);
    s_request_t **head = &self->buckets [request->hash & (self->bucket_count - 1)];
    request->hash_next = *head;
    if (*head)
        (*head)->hash_pprev = &request->hash_next;
    *head = request;
    request->hash_pprev = head;
    self->in_flight++;
}

static s_request_t *
s_table_lookup (zube_broker_t *self, const uint8_t *route, size_t route_size,
                uint64_t correlation_id)
{
    uint64_t hash = s_request_hash (route, route_size, correlation_id);
    s_request_t *request = self->buckets [hash & (self->bucket_count - 1)];
    for (; request; request = request->hash_next)
        if (request->hash == hash && request->correlation_id == correlation_id
            && request->route_size == route_size
            && memcmp (request->route, route, route_size) == 0)
            return request;
    return NULL;
}

static void
s_table_remove (zube_broker_t *self, s_request_t *request)
{
    if (!request->hash_pprev)
        return;
    *request->hash_pprev = request->hash_next;
    if (request->hash_next)
        request->hash_next->hash_pprev = request->hash_pprev;
    request->hash_next = NULL;
    request->hash_pprev = NULL;
    self->in_flight--;
}

static void
s_wheel_insert (zube_broker_t *self, s_request_t *request)
{
    int64_t slot = request->deadline / S_WHEEL_MS;
    if (slot < self->wheel_cursor)
        slot = self->wheel_cursor;
    s_request_t **head = &self->wheel [slot & (S_WHEEL_SLOTS - 1)];
    request->wheel_next = *head;
    if (*head)
        (*head)->wheel_pprev = &request->wheel_next;
    *head = request;
    request->wheel_pprev = head;
}

static void
s_wheel_remove (s_request_t *request)
{
    if (!request->wheel_pprev)
        return;
    *request->wheel_pprev = request->wheel_next;
    if (request->wheel_next)
        request->wheel_next->wheel_pprev = request->wheel_pprev;
    request->wheel_next = NULL;
    request->wheel_pprev = NULL;
}

//  Forgets a forwarded request: it was answered, expired, or replaced
static void
s_request_forget (zube_broker_t *self, s_request_t *request)
{
    s_instance_t *instance = request->instance;
    if (request->list_prev)
        request->list_prev->list_next = request->list_next;
    else
        instance->requests = request->list_next;
    if (request->list_next)
        request->list_next->list_prev = request->list_prev;
    instance->in_flight--;
    s_table_remove (self, request);
    s_wheel_remove (request);
    s_request_free (self, request);
}

static void
s_waiting_unlink (zube_broker_t *self, s_request_t *request)
{
    s_service_t *service = request->wait->service;
    if (request->list_prev)
        request->list_prev->list_next = request->list_next;
    else
        service->waiting_head = request->list_next;
    if (request->list_next)
        request->list_next->list_prev = request->list_prev;
    else
        service->waiting_tail = request->list_prev;
    request->list_next = request->list_prev = NULL;
    service->waiting--;
    self->waiting_total--;
    s_wheel_remove (request);
}


//  --------------------------------------------------------------------------
//  Sending. Every send is non-blocking: a full or vanished peer costs a
//  dropped message, never a stalled broker.

//  Sends [rid][header][payload] on the ROUTER. On success header and
//  payload are consumed; on failure they are still the caller's.
static int
s_router_send (zube_broker_t *self, const uint8_t *rid, size_t rid_size,
               zmq_msg_t *header, zmq_msg_t *payload)
{
    self->touched |= 1u << S_POLL_ROUTER;
    if (zmq_send (self->router, rid, rid_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    //  Once the routing frame is accepted the other parts are too
    int rc = zmq_msg_send (header, self->router, (payload ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
    if (rc >= 0 && payload)
        rc = zmq_msg_send (payload, self->router, ZMQ_DONTWAIT);
    return rc < 0 ? -1 : 0;
}

//  The peer behind a routing id, when the broker knows it: mostly the one a
//  reply went to last, or one of the last two heard from
static s_peer_t *
s_peer_find (zube_broker_t *self, const uint8_t *rid, size_t rid_size)
{
    s_peer_t *candidates [3] = {self->last_client, self->recent [0], self->recent [1]};
    for (int i = 0; i < 3; i++)
        if (candidates [i] && candidates [i]->rid.size == rid_size
            && memcmp (candidates [i]->rid.data, rid, rid_size) == 0)
            return candidates [i];
    if (rid_size == 0 || rid_size > 255)
        return NULL;
    s_rid_t key;
    key.size = rid_size;
    memcpy (key.data, rid, rid_size);
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, &key);
    if (peer)
        self->last_client = peer;
    return peer;
}

static void
s_flush_unlist (zube_broker_t *self, s_peer_t *peer)
{
    if (!peer->flush_listed)
        return;
    for (s_peer_t **link = &self->flush_head; *link; link = &(*link)->flush_next)
        if (*link == peer) {
            *link = peer->flush_next;
            break;
        }
    peer->flush_next = NULL;
    peer->flush_listed = false;
}

//  A peer forgotten with a batch queued: its requests were answered when
//  its instances were forgotten; the replies in it are dropped
static void
s_batch_discard (zube_broker_t *self, s_peer_t *peer)
{
    self->counters.dropped += peer->out.count - peer->out_requests;
    zube_bus_batch_clear (&peer->out);
    peer->out_requests = peer->out_replied = 0;
    s_flush_unlist (self, peer);
}

//  A batch the ROUTER refused: each request in it gets what a classic one
//  refused at once gets in s_request_route (the peer gone: it waits for
//  another instance; full: TOO_MANY_REQUESTS), each reply is dropped.
//  data is the batch frame.
static void
s_batch_failed (zube_broker_t *self, s_peer_t *peer, const uint8_t *data, size_t size,
                int error)
{
    if (error == EHOSTUNREACH)
        peer->unreachable = true;
    const uint8_t *cursor, *end = data + size;
    uint32_t count;
    if (!zube_bus_batch_check (data, size, &cursor, &count))
        return;
    for (uint32_t index = 0; index < count; index++) {
        zube_bus_batch_entry_t entry;
        if (!zube_bus_batch_next (&cursor, end, &entry))
            break;      //  cannot happen: checked as a whole
        s_header_t header;
        s_request_t *request = NULL;
        if (zube_bus_wire_scan (&header, entry.header, entry.header_size)
            && header.varint [ZUBE_BUS_F_KIND] == ZUBE__BUS_KIND__BUS_REQUEST
            && S_HAS (&header, ZUBE_BUS_F_ROUTE)) {
            const s_bytes_t *route = &header.bytes [ZUBE_BUS_F_ROUTE];
            request = s_table_lookup (self, route->data, route->size,
                                      header.varint [ZUBE_BUS_F_CORRELATION_ID]);
            if (request && request->instance->peer != peer)
                request = NULL;
        }
        self->counters.dropped++;
        if (!request)
            continue;       //  a reply, or a request already answered
        s_instance_t *instance = request->instance;
        s_service_t *service = instance->service;
        int64_t deadline = request->deadline;
        uint8_t route [256];
        size_t route_size = request->route_size;
        memcpy (route, request->route, route_size);
        s_request_forget (self, request);
        self->counters.routed--;
        if (error == EHOSTUNREACH) {
            self->counters.dropped--;   //  not lost: it waits
            char sender [S_NAME_MAX + 1];
            if (!s_name_copy (&header, ZUBE_BUS_F_SENDER, sender))
                snprintf (sender, sizeof sender, "anonymous");
            s_body_t body = {entry.payload, entry.payload_size, NULL};
            s_request_wait (self, service, &header, NULL, route, route_size, sender, &body,
                            deadline);
            s_service_dispatch_waiting (self, service);
        }
        else
            s_answer_error (self, route, route_size, header.varint [ZUBE_BUS_F_CORRELATION_ID],
                            ZUBE_TOO_MANY_REQUESTS, "instance %s of service %s is overloaded",
                            instance->name, service->name);
    }
}

//  Sends what is queued for peer as one message [rid][batch]
static void
s_batch_flush (zube_broker_t *self, s_peer_t *peer)
{
    s_flush_unlist (self, peer);
    if (!peer->out.count)
        return;
    uint32_t replied = peer->out_replied, count = peer->out.count;
    peer->out_replied = peer->out_requests = 0;
    zmq_msg_t frame;
    if (zube_bus_batch_take (&peer->out, &frame) != 0) {
        //  Out of memory: lost; the callers time their requests out
        self->counters.dropped += count;
        zube_bus_batch_clear (&peer->out);
        return;
    }
    self->touched |= 1u << S_POLL_ROUTER;
    if (zmq_send (self->router, peer->rid.data, peer->rid.size, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
        //  Once the routing frame is accepted the other part is too
        if (zmq_msg_send (&frame, self->router, ZMQ_DONTWAIT) < 0)
            zmq_msg_close (&frame);
        self->counters.replied += replied;
        self->batches_sent++;
        self->batched_sent += count;
        peer->last_sent = self->now;
        return;
    }
    int error = zmq_errno ();
    s_batch_failed (self, peer, (const uint8_t *) zmq_msg_data (&frame), zmq_msg_size (&frame),
                    error);
    zmq_msg_close (&frame);
}

//  Sends every batch queued (what that does may queue more: sent too)
static void
s_batches_flush (zube_broker_t *self)
{
    while (self->flush_head)
        s_batch_flush (self, self->flush_head);
}

//  Sends a request or a reply: header rewritten with stamp, then payload,
//  to peer, or to the routing id rid when the broker knows no peer there.
//  A peer that reads batches gets it queued, sent when the drain ends (a
//  failure then is s_batch_failed's), unless its payload is over
//  ZUBE_BUS_BATCH_INLINE_MAX: that one goes at once as a classic message
//  (its frame moved, not copied), after what was queued. Returns 1 when
//  queued, 0 when sent, -1 when the send failed (zmq_errno says why; the
//  payload is still the caller's).
static int
s_entry_send (zube_broker_t *self, s_peer_t *peer, const uint8_t *rid, size_t rid_size,
              const s_header_t *header, const s_stamp_t *stamp, s_body_t *payload,
              bool request)
{
    size_t header_size = s_header_rewrite_size (header, stamp);
    if (peer && peer->batches && payload->size <= ZUBE_BUS_BATCH_INLINE_MAX) {
        size_t entry_size = zube_bus_batch_entry_size (header_size, payload->size);
        if (!zube_bus_batch_fits (&peer->out, entry_size, peer->batch_max))
            s_batch_flush (self, peer);
        uint8_t *out = zube_bus_batch_fits (&peer->out, entry_size, peer->batch_max)
                     ? zube_bus_batch_add (&peer->out, header_size, payload->data, payload->size)
                     : NULL;
        if (out) {
            s_header_rewrite_into (header, stamp, out);
            if (request)
                peer->out_requests++;
            if (!peer->flush_listed) {
                peer->flush_next = self->flush_head;
                self->flush_head = peer;
                peer->flush_listed = true;
            }
            return 1;
        }
    }
    if (peer) {
        s_batch_flush (self, peer);
        rid = peer->rid.data;
        rid_size = peer->rid.size;
    }
    zmq_msg_t header_msg, copy;
    zmq_msg_t *frame = payload->frame;
    if (zmq_msg_init_size (&header_msg, header_size) != 0)
        return -1;
    s_header_rewrite_into (header, stamp, (uint8_t *) zmq_msg_data (&header_msg));
    if (!frame) {
        if (zmq_msg_init_size (&copy, payload->size) != 0) {
            zmq_msg_close (&header_msg);
            errno = ENOMEM;
            return -1;
        }
        if (payload->size)
            memcpy (zmq_msg_data (&copy), payload->data, payload->size);
        frame = &copy;
    }
    if (s_router_send (self, rid, rid_size, &header_msg, frame) == 0)
        return 0;
    int error = zmq_errno ();
    zmq_msg_close (&header_msg);
    if (frame == &copy)
        zmq_msg_close (&copy);
    errno = error;
    return -1;
}

//  The broker's own answer to a request: a REPLY with a status.
static void
s_answer (zube_broker_t *self, const uint8_t *route, size_t route_size,
          uint64_t correlation_id, zube_status_t status, const char *error,
          s_body_t *payload)
{
    Zube__BusHeader header = ZUBE__BUS_HEADER__INIT;
    header.has_version = true;
    header.version = ZUBE__BUS_VERSION__BUS_VERSION_1;
    header.has_kind = true;
    header.kind = ZUBE__BUS_KIND__BUS_REPLY;
    header.has_correlation_id = true;
    header.correlation_id = correlation_id;
    header.has_status = status != ZUBE_OK;
    header.status = (Zube__StatusCode) status;
    header.error = (char *) error;
    uint8_t packed [1024];
    size_t size = zube__bus_header__get_packed_size (&header);
    s_header_t scanned;
    if (size > sizeof packed)
        return;     //  error texts are shorter (s_answer_error)
    zube__bus_header__pack (&header, packed);
    zube_bus_wire_scan (&scanned, packed, size);
    static const char broker [] = "broker";
    s_bytes_t sender = {(const uint8_t *) broker, sizeof broker - 1};
    s_stamp_t stamp = {&sender, NULL, NULL};
    s_body_t empty = {NULL, 0, NULL};
    s_peer_t *peer = s_peer_find (self, route, route_size);
    if (s_entry_send (self, peer, route, route_size, &scanned, &stamp,
                      payload ? payload : &empty, false) < 0)
        self->counters.dropped++;
}

static void
s_answer_error (zube_broker_t *self, const uint8_t *route, size_t route_size,
                uint64_t correlation_id, zube_status_t status, const char *format, ...)
{
    char error [512];
    va_list args;
    va_start (args, format);
    vsnprintf (error, sizeof error, format, args);
    va_end (args);
    s_answer (self, route, route_size, correlation_id, status, error, NULL);
}

static void
s_control_send (zube_broker_t *self, s_peer_t *peer, Zube__BusKind kind)
{
    s_batch_flush (self, peer);     //  what was queued goes first
    zmq_msg_t msg;
    if (kind == ZUBE__BUS_KIND__BUS_HEARTBEAT) {
        if (zmq_msg_init_size (&msg, self->heartbeat_size) != 0)
            return;
        memcpy (zmq_msg_data (&msg), self->heartbeat, self->heartbeat_size);
    }
    else {
        Zube__BusHeader header = ZUBE__BUS_HEADER__INIT;
        header.has_version = true;
        header.version = ZUBE__BUS_VERSION__BUS_VERSION_1;
        header.has_kind = true;
        header.kind = kind;
        header.instance = self->epoch;
        if (s_header_pack (&header, &msg) != 0)
            return;
    }
    if (s_router_send (self, peer->rid.data, peer->rid.size, &msg, NULL) == 0)
        peer->last_sent = self->now;
    else {
        if (zmq_errno () == EHOSTUNREACH)
            peer->unreachable = true;
        zmq_msg_close (&msg);
    }
}


//  --------------------------------------------------------------------------
//  Services and instances

static s_service_t *
s_service_require (zube_broker_t *self, const char *name)
{
    s_service_t *service = (s_service_t *) zhashx_lookup (self->services, name);
    if (service)
        return service;
    service = (s_service_t *) calloc (1, sizeof *service);
    if (!service || !(service->name = strdup (name))) {
        free (service);
        return NULL;
    }
    zhashx_insert (self->services, name, service);
    return service;
}

//  A service with no instance and nothing waiting is forgotten
static void
s_service_collect (zube_broker_t *self, s_service_t *service)
{
    if (service->size || service->waiting)
        return;
    zhashx_delete (self->services, service->name);
    free (service->instances);
    free (service->name);
    free (service);
}

//  The live instance with the fewest requests in flight; between equals,
//  the next one after the last pick (round-robin).
static s_instance_t *
s_service_pick (s_service_t *service)
{
    s_instance_t *best = NULL;
    size_t best_index = 0;
    for (size_t i = 0; i < service->size; i++) {
        size_t index = (service->cursor + i) % service->size;
        s_instance_t *candidate = service->instances [index];
        if (candidate->peer->unreachable)
            continue;
        if (!best || candidate->in_flight < best->in_flight) {
            best = candidate;
            best_index = index;
            if (best->in_flight == 0)
                break;
        }
    }
    if (best)
        service->cursor = (best_index + 1) % service->size;
    return best;
}

static bool
s_array_append (void ***array, size_t *size, size_t *max, void *item)
{
    if (*size == *max) {
        size_t grown = *max ? *max * 2 : 4;
        void **larger = (void **) realloc (*array, grown * sizeof (void *));
        if (!larger)
            return false;
        *array = larger;
        *max = grown;
    }
    (*array) [(*size)++] = item;
    return true;
}

static size_t
s_array_remove (void **array, size_t *size, void *item)
{
    for (size_t i = 0; i < *size; i++)
        if (array [i] == item) {
            memmove (array + i, array + i + 1, (*size - i - 1) * sizeof (void *));
            (*size)--;
            return i;
        }
    return SIZE_MAX;
}

//  READY: the peer serves the header's service from now on
static void
s_instance_register (zube_broker_t *self, s_peer_t *peer, const s_header_t *header)
{
    char name [S_NAME_MAX + 1], instance_name [S_NAME_MAX + 1];
    if (!s_name_copy (header, ZUBE_BUS_F_SERVICE, name) || streq (name, "bus")) {
        zube_log_debug ("msg=\"READY refused: bad service name\" peer=%s", peer->sender);
        self->counters.dropped++;
        return;
    }
    for (size_t i = 0; i < peer->instances_size; i++)
        if (streq (peer->instances [i]->service->name, name))
            return;             //  Already registered: READY is idempotent

    s_service_t *service = s_service_require (self, name);
    s_instance_t *instance = service ? (s_instance_t *) calloc (1, sizeof *instance) : NULL;
    if (!instance)
        return;
    instance->peer = peer;
    instance->service = service;
    if (s_name_copy (header, ZUBE_BUS_F_INSTANCE, instance_name))
        instance->name = strdup (instance_name);
    else {
        char hex [2 * 255 + 1];
        s_rid_hex (peer->rid.data, peer->rid.size, hex, sizeof hex);
        instance->name = zsys_sprintf ("%s-%s", peer->sender, hex);
    }
    if (!instance->name
        || !s_array_append ((void ***) &service->instances, &service->size,
                            &service->max, instance)) {
        free (instance->name);
        free (instance);
        s_service_collect (self, service);
        return;
    }
    if (!s_array_append ((void ***) &peer->instances, &peer->instances_size,
                         &peer->instances_max, instance)) {
        s_array_remove ((void **) service->instances, &service->size, instance);
        free (instance->name);
        free (instance);
        s_service_collect (self, service);
        return;
    }
    zube_log_info ("msg=\"instance registered\" service=\"%s\" instance=\"%s\" "
                   "sender=%s heartbeat_ms=%u instances=%zu waiting=%zu",
                   service->name, instance->name, peer->sender,
                   peer->heartbeat_ms ? peer->heartbeat_ms : (uint32_t) self->heartbeat_ms,
                   service->size, service->waiting);
    s_service_dispatch_waiting (self, service);
}

//  An instance goes away: every request it still holds is answered
//  UNAVAILABLE so its caller can retry elsewhere.
static void
s_instance_forget (zube_broker_t *self, s_instance_t *instance, const char *reason)
{
    s_service_t *service = instance->service;
    s_peer_t *peer = instance->peer;
    uint32_t in_flight = instance->in_flight;
    while (instance->requests) {
        s_request_t *request = instance->requests;
        s_answer_error (self, request->route, request->route_size, request->correlation_id,
                        ZUBE_UNAVAILABLE, "instance %s of service %s died",
                        instance->name, service->name);
        s_request_forget (self, request);
    }
    size_t index = s_array_remove ((void **) service->instances, &service->size, instance);
    if (index != SIZE_MAX && service->cursor > index)
        service->cursor--;
    if (service->cursor >= service->size)
        service->cursor = 0;
    s_array_remove ((void **) peer->instances, &peer->instances_size, instance);
    zube_log_info ("msg=\"instance gone\" service=\"%s\" instance=\"%s\" sender=%s "
                   "reason=%s answered_unavailable=%u",
                   service->name, instance->name, peer->sender, reason, in_flight);
    free (instance->name);
    free (instance);
    s_service_collect (self, service);
}


//  --------------------------------------------------------------------------
//  Peers

static s_peer_t *
s_peer_new (zube_broker_t *self, const s_rid_t *rid, const char *key, const char *sender)
{
    s_peer_t *peer = (s_peer_t *) calloc (1, sizeof *peer);
    if (!peer)
        return NULL;
    peer->rid.size = rid->size;
    memcpy (peer->rid.data, rid->data, rid->size);
    snprintf (peer->key, sizeof peer->key, "%s", key ? key : "");
    peer->sender = strdup (sender);
    if (!peer->sender) {
        free (peer);
        return NULL;
    }
    peer->last_seen = self->now;
    peer->last_sent = self->now;
    zhashx_insert (self->peers, &peer->rid, peer);
    peer->next = self->peer_list;
    if (self->peer_list)
        self->peer_list->prev = peer;
    self->peer_list = peer;
    zube_log_debug ("msg=\"peer connected\" sender=%s peers=%zu", peer->sender,
                    zhashx_size (self->peers));
    return peer;
}

static void
s_peer_forget (zube_broker_t *self, s_peer_t *peer, const char *reason)
{
    bool silent = streq (reason, "silent");
    while (peer->instances_size) {
        if (silent)
            self->counters.instance_deaths++;
        s_instance_forget (self, peer->instances [0], reason);
    }
    s_batch_discard (self, peer);
    if (self->last_client == peer)
        self->last_client = NULL;
    zhashx_delete (self->peers, &peer->rid);
    for (int i = 0; i < 2; i++)
        if (self->recent [i] == peer)
            self->recent [i] = NULL;
    if (peer->prev)
        peer->prev->next = peer->next;
    else
        self->peer_list = peer->next;
    if (peer->next)
        peer->next->prev = peer->prev;
    free (peer->instances);
    free (peer->sender);
    free (peer);
}

//  The authenticated name behind a message: the certificate name for the
//  key ZAP authenticated, looked up in the broker's own store. NULL when
//  the key is not (or no longer) admitted.
static const char *
s_sender_of (zube_broker_t *self, zmq_msg_t *msg, const char **key_p)
{
    if (!self->secure) {
        *key_p = "";
        return "anonymous";
    }
    const char *key = zmq_msg_gets (msg, "User-Id");
    *key_p = key;
    if (!key || strlen (key) != 40)
        return NULL;
    return zube_certs_names_lookup (self->names, key);
}

//  Finds or creates the peer behind a message. A routing id taken over by
//  another key (ZMQ_ROUTER_HANDOVER) is a new peer: the old one is
//  forgotten with its registrations.
static s_peer_t *
s_peer_require (zube_broker_t *self, zmq_msg_t *rid_msg, zmq_msg_t *header_msg,
                bool *created)
{
    s_rid_t rid;
    rid.size = zmq_msg_size (rid_msg);
    if (rid.size == 0 || rid.size > 255)
        return NULL;
    *created = false;
    //  Traffic comes in runs from a few busy peers (a client and the
    //  instance serving it): the last two are checked before the table
    const uint8_t *data = (const uint8_t *) zmq_msg_data (rid_msg);
    s_peer_t *peer = NULL;
    for (int i = 0; i < 2 && !peer; i++)
        if (self->recent [i] && self->recent [i]->rid.size == rid.size
            && memcmp (self->recent [i]->rid.data, data, rid.size) == 0)
            peer = self->recent [i];
    if (!peer) {
        memcpy (rid.data, data, rid.size);
        peer = (s_peer_t *) zhashx_lookup (self->peers, &rid);
        if (peer) {
            self->recent [1] = self->recent [0];
            self->recent [0] = peer;
        }
    }
    if (peer && !self->secure)
        return peer;
    const char *key = NULL;
    if (peer) {
        key = zmq_msg_gets (header_msg, "User-Id");
        if (key && streq (key, peer->key))
            return peer;
        s_peer_forget (self, peer, "replaced");
    }
    memcpy (rid.data, data, rid.size);
    const char *sender = s_sender_of (self, header_msg, &key);
    if (!sender) {
        self->counters.unauthorized++;
        zube_log_warn ("msg=\"message from a key not in the certificate store\" key=%s",
                       key ? key : "none");
        return NULL;
    }
    peer = s_peer_new (self, &rid, key, sender);
    *created = peer != NULL;
    return peer;
}


//  --------------------------------------------------------------------------
//  Requests

//  Sends a request to the best instance of service. Returns 0 when the
//  request was forwarded or answered, 1 when no instance can take it now
//  (the caller keeps it waiting).
static int
s_request_route (zube_broker_t *self, s_service_t *service, const s_header_t *header,
                 const uint8_t *route, size_t route_size, const char *sender,
                 s_body_t *payload, int64_t deadline)
{
    int64_t remaining = deadline - self->now;
    uint64_t deadline_ms = remaining < 1 ? 1 : remaining > UINT32_MAX ? UINT32_MAX
                                                                     : (uint64_t) remaining;
    s_bytes_t sender_bytes = {(const uint8_t *) sender, strlen (sender)};
    s_bytes_t route_bytes = {route, route_size};
    s_stamp_t stamp = {&sender_bytes, &route_bytes, &deadline_ms};
    uint64_t correlation_id = header->varint [ZUBE_BUS_F_CORRELATION_ID];

    s_instance_t *instance;
    while ((instance = s_service_pick (service))) {
        if (s_entry_send (self, instance->peer, NULL, 0, header, &stamp, payload, true) >= 0)
            break;
        int error = zmq_errno ();
        if (error == ENOMEM)
            return 1;
        if (error == EHOSTUNREACH) {
            //  Its connection is gone: skip it until it speaks again
            instance->peer->unreachable = true;
            continue;
        }
        self->counters.dropped++;
        s_answer_error (self, route, route_size, correlation_id, ZUBE_TOO_MANY_REQUESTS,
                        "instance %s of service %s is overloaded", instance->name,
                        service->name);
        return 0;
    }
    if (!instance)
        return 1;

    instance->peer->last_sent = self->now;
    self->counters.routed++;
    //  A resent request (same route and correlation id) replaces the old one
    s_request_t *old = s_table_lookup (self, route, route_size, correlation_id);
    if (old)
        s_request_forget (self, old);
    s_request_t *request = s_request_new (self, route, route_size, correlation_id, deadline);
    if (!request)
        return 0;           //  Out of memory: the client times it out
    request->instance = instance;
    request->list_next = instance->requests;
    if (instance->requests)
        instance->requests->list_prev = request;
    instance->requests = request;
    instance->in_flight++;
    s_table_insert (self, request);
    s_wheel_insert (self, request);
    return 0;
}

//  Keeps a request until an instance of its service registers, or its
//  deadline passes. Takes header_msg and payload.
//  header_msg is the frame header was read from, or NULL when it came in a
//  batch (then header and payload are copied).
static void
s_request_wait (zube_broker_t *self, s_service_t *service, const s_header_t *header,
                zmq_msg_t *header_msg, const uint8_t *route, size_t route_size,
                const char *sender, s_body_t *payload, int64_t deadline)
{
    if (service->waiting >= self->max_waiting
        || self->waiting_total >= S_WAITING_FACTOR * self->max_waiting) {
        s_answer_error (self, route, route_size, header->varint [ZUBE_BUS_F_CORRELATION_ID],
                        ZUBE_TOO_MANY_REQUESTS,
                        "too many requests waiting for service \"%s\"", service->name);
        s_service_collect (self, service);
        return;
    }
    s_request_t *request = s_request_new (self, route, route_size,
                                          header->varint [ZUBE_BUS_F_CORRELATION_ID], deadline);
    s_waiting_t *wait = request ? (s_waiting_t *) calloc (1, sizeof *wait) : NULL;
    char *sender_copy = wait ? strdup (sender) : NULL;
    if (!sender_copy) {
        free (wait);
        if (request)
            s_request_free (self, request);
        s_service_collect (self, service);
        return;
    }
    request->wait = wait;
    wait->service = service;
    wait->sender = sender_copy;
    zmq_msg_init (&wait->header);
    zmq_msg_init (&wait->payload);
    if (header_msg)
        zmq_msg_move (&wait->header, header_msg);
    else
    if (zmq_msg_init_size (&wait->header, header->size) == 0)
        memcpy (zmq_msg_data (&wait->header), header->data, header->size);
    if (payload->frame)
        zmq_msg_move (&wait->payload, payload->frame);
    else
    if (zmq_msg_init_size (&wait->payload, payload->size) == 0 && payload->size)
        memcpy (zmq_msg_data (&wait->payload), payload->data, payload->size);
    request->list_prev = service->waiting_tail;
    if (service->waiting_tail)
        service->waiting_tail->list_next = request;
    else
        service->waiting_head = request;
    service->waiting_tail = request;
    service->waiting++;
    self->waiting_total++;
    s_wheel_insert (self, request);
}

//  Forwards what waits for service while it has a live instance
static void
s_service_dispatch_waiting (zube_broker_t *self, s_service_t *service)
{
    while (service->waiting_head) {
        s_request_t *request = service->waiting_head;
        s_header_t header;
        //  The header was scanned when it arrived: it still scans
        s_header_scan (&header, &request->wait->header);
        s_body_t payload = {(const uint8_t *) zmq_msg_data (&request->wait->payload),
                            zmq_msg_size (&request->wait->payload), &request->wait->payload};
        if (s_request_route (self, service, &header, request->route, request->route_size,
                             request->wait->sender, &payload, request->deadline) == 1)
            break;
        s_waiting_unlink (self, request);
        s_request_free (self, request);
    }
}


//  --------------------------------------------------------------------------
//  The `bus` service, answered by the broker itself

static int
s_service_compare (const void *a, const void *b)
{
    return strcmp ((*(s_service_t * const *) a)->name, (*(s_service_t * const *) b)->name);
}

static void
s_bus_services (zube_broker_t *self, const uint8_t *route, size_t route_size,
                uint64_t correlation_id, s_body_t *payload)
{
    const char *prefix = "";
    Zube__BusServicesRequest *query = NULL;
    if (payload->size) {
        query = zube__bus_services_request__unpack (NULL, payload->size, payload->data);
        if (!query) {
            s_answer_error (self, route, route_size, correlation_id, ZUBE_BAD_REQUEST,
                            "bus services: payload is not a BusServicesRequest");
            return;
        }
        if (query->service_prefix)
            prefix = query->service_prefix;
    }
    size_t prefix_size = strlen (prefix);
    size_t total = zhashx_size (self->services), count = 0, instance_count = 0;
    s_service_t **found = (s_service_t **) calloc (total + 1, sizeof *found);
    for (s_service_t *service = (s_service_t *) zhashx_first (self->services);
         found && service; service = (s_service_t *) zhashx_next (self->services))
        if (strncmp (service->name, prefix, prefix_size) == 0) {
            found [count++] = service;
            instance_count += service->size;
        }
    if (found)
        qsort (found, count, sizeof *found, s_service_compare);

    Zube__BusService *services = (Zube__BusService *) calloc (count + 1, sizeof *services);
    Zube__BusService **service_ptrs = (Zube__BusService **) calloc (count + 1, sizeof (void *));
    Zube__BusInstance *instances = (Zube__BusInstance *) calloc (instance_count + 1,
                                                                 sizeof *instances);
    Zube__BusInstance **instance_ptrs = (Zube__BusInstance **) calloc (instance_count + 1,
                                                                       sizeof (void *));
    if (!found || !services || !service_ptrs || !instances || !instance_ptrs) {
        s_answer_error (self, route, route_size, correlation_id, ZUBE_INTERNAL, "out of memory");
        goto done;
    }
    size_t next_instance = 0;
    for (size_t i = 0; i < count; i++) {
        s_service_t *service = found [i];
        Zube__BusService *entry = &services [i];
        zube__bus_service__init (entry);
        entry->name = service->name;
        entry->has_waiting = true;
        entry->waiting = service->waiting;
        entry->n_instances = service->size;
        entry->instances = &instance_ptrs [next_instance];
        for (size_t j = 0; j < service->size; j++) {
            s_instance_t *instance = service->instances [j];
            Zube__BusInstance *item = &instances [next_instance];
            zube__bus_instance__init (item);
            item->instance = instance->name;
            item->sender = instance->peer->sender;
            item->has_in_flight = true;
            item->in_flight = instance->in_flight;
            item->has_handled = true;
            item->handled = instance->handled;
            item->has_heartbeat_ms = true;
            item->heartbeat_ms = instance->peer->heartbeat_ms
                               ? instance->peer->heartbeat_ms : (uint32_t) self->heartbeat_ms;
            item->has_idle_ms = true;
            item->idle_ms = (uint32_t) (self->now - instance->peer->last_seen);
            instance_ptrs [next_instance++] = item;
        }
        service_ptrs [i] = entry;
    }
    Zube__BusCounters counters = ZUBE__BUS_COUNTERS__INIT;
    counters.has_routed = counters.has_replied = counters.has_dropped = true;
    counters.has_expired = counters.has_unauthorized = counters.has_events = true;
    counters.has_oversized = counters.has_instance_deaths = true;
    counters.routed = self->counters.routed;
    counters.replied = self->counters.replied;
    counters.dropped = self->counters.dropped;
    counters.expired = self->counters.expired;
    counters.unauthorized = self->counters.unauthorized;
    counters.events = self->counters.events;
    counters.oversized = self->counters.oversized;
    counters.instance_deaths = self->counters.instance_deaths;

    Zube__BusServicesReply reply = ZUBE__BUS_SERVICES_REPLY__INIT;
    reply.n_services = count;
    reply.services = service_ptrs;
    reply.counters = &counters;
    reply.version = (char *) ZUBE_VERSION_STRING;
    reply.has_secure = true;
    reply.secure = self->secure;
    reply.has_uptime_ms = true;
    reply.uptime_ms = (uint64_t) (self->now - self->started);
    zmq_msg_t reply_msg;
    if (s_message_pack (&reply.base, &reply_msg) == 0) {
        s_body_t body = {(const uint8_t *) zmq_msg_data (&reply_msg), zmq_msg_size (&reply_msg),
                         &reply_msg};
        s_answer (self, route, route_size, correlation_id, ZUBE_OK, NULL, &body);
        zmq_msg_close (&reply_msg);
    }
done:
    free (found);
    free (services);
    free (service_ptrs);
    free (instances);
    free (instance_ptrs);
    if (query)
        zube__bus_services_request__free_unpacked (query, NULL);
}

static void
s_bus_info (zube_broker_t *self, const uint8_t *route, size_t route_size,
            uint64_t correlation_id)
{
    Zube__BusInfoReply reply = ZUBE__BUS_INFO_REPLY__INIT;
    reply.publish_endpoint = self->publish_endpoint;
    reply.subscribe_endpoint = self->events_endpoint;
    reply.version = (char *) ZUBE_VERSION_STRING;
    reply.has_secure = true;
    reply.secure = self->secure;
    reply.has_max_message_size = true;
    reply.max_message_size = self->max_message_size > UINT32_MAX
                           ? UINT32_MAX : (uint32_t) self->max_message_size;
    reply.has_heartbeat_ms = true;
    reply.heartbeat_ms = self->heartbeat_ms;
    zmq_msg_t reply_msg;
    if (s_message_pack (&reply.base, &reply_msg) == 0) {
        s_body_t body = {(const uint8_t *) zmq_msg_data (&reply_msg), zmq_msg_size (&reply_msg),
                         &reply_msg};
        s_answer (self, route, route_size, correlation_id, ZUBE_OK, NULL, &body);
        zmq_msg_close (&reply_msg);
    }
}

static void
s_bus_answer (zube_broker_t *self, const s_header_t *header, const uint8_t *route,
              size_t route_size, s_body_t *payload)
{
    uint64_t correlation_id = header->varint [ZUBE_BUS_F_CORRELATION_ID];
    char method [S_NAME_MAX + 1];
    if (s_bytes_is (header, ZUBE_BUS_F_METHOD, "ping"))
        s_answer (self, route, route_size, correlation_id, ZUBE_OK, NULL, payload);
    else
    if (s_bytes_is (header, ZUBE_BUS_F_METHOD, "services"))
        s_bus_services (self, route, route_size, correlation_id, payload);
    else
    if (s_bytes_is (header, ZUBE_BUS_F_METHOD, "info"))
        s_bus_info (self, route, route_size, correlation_id);
    else
        s_answer_error (self, route, route_size, correlation_id, ZUBE_NOT_IMPLEMENTED,
                        "service bus has no method \"%.64s\"",
                        s_name_copy (header, ZUBE_BUS_F_METHOD, method) ? method : "");
}


//  --------------------------------------------------------------------------
//  Messages on the ROUTER

//  REQUEST: answer `bus`, forward to an instance, or keep it waiting
static void
s_request_accept (zube_broker_t *self, s_peer_t *peer, const s_header_t *header,
                  zmq_msg_t *header_msg, s_body_t *payload)
{
    zmq_msg_t *route_msg = &self->frames [0];
    const uint8_t *route = (const uint8_t *) zmq_msg_data (route_msg);
    size_t route_size = zmq_msg_size (route_msg);
    char name [S_NAME_MAX + 1];
    if (!s_name_copy (header, ZUBE_BUS_F_SERVICE, name) || !S_HAS (header, ZUBE_BUS_F_CORRELATION_ID)) {
        self->counters.dropped++;
        return;
    }
    if (streq (name, "bus")) {
        s_bus_answer (self, header, route, route_size, payload);
        return;
    }
    uint32_t deadline_ms = S_HAS (header, ZUBE_BUS_F_DEADLINE_MS)
                         ? (uint32_t) header->varint [ZUBE_BUS_F_DEADLINE_MS] : 0;
    int64_t deadline = self->now + (deadline_ms ? deadline_ms : ZUBE_BUS_DEFAULT_TIMEOUT_MS);
    s_service_t *service = (s_service_t *) zhashx_lookup (self->services, name);
    if (service
        && s_request_route (self, service, header, route, route_size, peer->sender,
                            payload, deadline) == 0)
        return;
    if (!service)
        service = s_service_require (self, name);
    if (service)
        s_request_wait (self, service, header, header_msg, route, route_size, peer->sender,
                        payload, deadline);
}

//  REPLY: back to the client, if the broker still remembers the request
//  and the reply comes from the instance it was sent to
static void
s_reply_forward (zube_broker_t *self, s_peer_t *peer, const s_header_t *header,
                 s_body_t *payload)
{
    const s_bytes_t *route = &header->bytes [ZUBE_BUS_F_ROUTE];
    if (!S_HAS (header, ZUBE_BUS_F_ROUTE) || route->size == 0 || route->size > 255) {
        self->counters.dropped++;
        return;
    }
    s_request_t *request = s_table_lookup (self, route->data, route->size,
                                           header->varint [ZUBE_BUS_F_CORRELATION_ID]);
    if (!request || request->instance->peer != peer) {
        zube_log_debug ("msg=\"reply dropped: no such request\" sender=%s", peer->sender);
        self->counters.dropped++;
        return;
    }
    request->instance->handled++;
    s_request_forget (self, request);
    s_bytes_t sender = {(const uint8_t *) peer->sender, strlen (peer->sender)};
    s_stamp_t stamp = {&sender, NULL, NULL};
    s_peer_t *client = s_peer_find (self, route->data, route->size);
    int rc = s_entry_send (self, client, route->data, route->size, header, &stamp, payload,
                           false);
    if (rc == 1)
        client->out_replied++;
    else
    if (rc == 0)
        self->counters.replied++;
    else
        self->counters.dropped++;
}

static void
s_peer_disconnect (zube_broker_t *self, s_peer_t *peer, const s_header_t *header)
{
    char name [S_NAME_MAX + 1];
    if (!S_HAS (header, ZUBE_BUS_F_SERVICE) || header->bytes [ZUBE_BUS_F_SERVICE].size == 0) {
        s_peer_forget (self, peer, "disconnected");
        return;
    }
    if (!s_name_copy (header, ZUBE_BUS_F_SERVICE, name))
        return;
    for (size_t i = 0; i < peer->instances_size; i++)
        if (streq (peer->instances [i]->service->name, name)) {
            s_instance_forget (self, peer->instances [i], "disconnected");
            return;
        }
}

static bool
s_header_valid (const s_header_t *header, size_t frames, bool events)
{
    if (!S_HAS (header, ZUBE_BUS_F_VERSION) || header->varint [ZUBE_BUS_F_VERSION] != ZUBE__BUS_VERSION__BUS_VERSION_1
        || !S_HAS (header, ZUBE_BUS_F_KIND))
        return false;
    switch (header->varint [ZUBE_BUS_F_KIND]) {
        case ZUBE__BUS_KIND__BUS_REQUEST:
        case ZUBE__BUS_KIND__BUS_REPLY:
            return !events && frames == 3;
        case ZUBE__BUS_KIND__BUS_READY:
        case ZUBE__BUS_KIND__BUS_HEARTBEAT:
        case ZUBE__BUS_KIND__BUS_DISCONNECT:
            return !events && frames == 2;
        case ZUBE__BUS_KIND__BUS_EVENT:
            return events && frames == 3;
        default:
            return false;
    }
}

//  Receives the rest of a multipart message whose first frame is in
//  frames[0]. Parts beyond S_FRAMES are read and discarded but counted.
static size_t
s_recv_rest (zube_broker_t *self, void *socket, bool *oversized)
{
    size_t count = 1;
    zmq_msg_t *last = &self->frames [0];
    *oversized = zmq_msg_size (last) > self->max_message_size;
    while (zmq_msg_more (last)) {
        zmq_msg_t *next = count < S_FRAMES ? &self->frames [count] : &self->scratch;
        if (zmq_msg_recv (next, socket, ZMQ_DONTWAIT) < 0)
            break;
        if (zmq_msg_size (next) > self->max_message_size)
            *oversized = true;
        count++;
        last = next;
    }
    return count;
}

//  A message from a peer passed: the peer is alive
static void
s_peer_heard (zube_broker_t *self, s_peer_t *peer)
{
    peer->last_seen = self->now;
    if (peer->unreachable) {
        //  Back (a reconnect kept its routing id): what waited for its
        //  services can go to it now
        peer->unreachable = false;
        for (size_t i = 0; i < peer->instances_size; i++)
            s_service_dispatch_waiting (self, peer->instances [i]->service);
    }
}

//  READY and HEARTBEAT say how often the peer heartbeats and whether it
//  reads batches, up to how many bytes
static void
s_peer_learn (zube_broker_t *self, s_peer_t *peer, const s_header_t *header)
{
    if (S_HAS (header, ZUBE_BUS_F_HEARTBEAT_MS) && (uint32_t) header->varint [ZUBE_BUS_F_HEARTBEAT_MS]) {
        uint32_t interval = (uint32_t) header->varint [ZUBE_BUS_F_HEARTBEAT_MS];
        peer->heartbeat_ms = interval < S_HEARTBEAT_MIN ? S_HEARTBEAT_MIN
                           : interval > S_HEARTBEAT_MAX ? S_HEARTBEAT_MAX : interval;
    }
    uint64_t limit = S_HAS (header, ZUBE_BUS_F_BATCH_MAX_BYTES)
                   ? header->varint [ZUBE_BUS_F_BATCH_MAX_BYTES] : ZUBE_BUS_BATCH_BYTES;
    bool batches = S_HAS (header, ZUBE_BUS_F_BATCH_FORMAT)
                && header->varint [ZUBE_BUS_F_BATCH_FORMAT] >= ZUBE_BUS_BATCH_FORMAT;
    if (!batches && peer->batches)
        s_batch_flush (self, peer);
    peer->batches = batches;
    peer->batch_max = (uint32_t) (limit < ZUBE_BUS_BATCH_BYTES ? limit : ZUBE_BUS_BATCH_BYTES);
    if (self->max_message_size < peer->batch_max)
        peer->batch_max = (uint32_t) self->max_message_size;
}

//  A batch: one frame of entries, each handled as the classic message
//  [header][payload] it stands for, with the sender of its connection. A
//  batch whose framing does not hold (zube_bus_batch_check) is dropped
//  whole and counted once; an entry whose header does not pass, or that is
//  not a REQUEST or REPLY, is dropped and counted alone.
static void
s_router_handle_batch (zube_broker_t *self)
{
    const uint8_t *data = (const uint8_t *) zmq_msg_data (&self->frames [1]);
    size_t size = zmq_msg_size (&self->frames [1]);
    const uint8_t *cursor, *end = data + size;
    uint32_t count;
    if (!zube_bus_batch_check (data, size, &cursor, &count)) {
        self->counters.dropped++;
        zube_log_debug ("msg=\"malformed batch dropped\" bytes=%zu", size);
        return;
    }
    s_header_t *header = &self->header;
    s_peer_t *peer = NULL;
    for (uint32_t index = 0; index < count; index++) {
        zube_bus_batch_entry_t entry;
        if (!zube_bus_batch_next (&cursor, end, &entry))
            break;      //  cannot happen: checked as a whole
        if (!zube_bus_wire_scan (header, entry.header, entry.header_size)
            || !s_header_valid (header, 3, false)) {
            self->counters.dropped++;
            continue;
        }
        if (!peer) {
            bool created;
            peer = s_peer_require (self, &self->frames [0], &self->frames [1], &created);
            if (!peer)
                return;
            s_peer_heard (self, peer);
        }
        s_body_t payload = {entry.payload, entry.payload_size, NULL};
        if (header->varint [ZUBE_BUS_F_KIND] == ZUBE__BUS_KIND__BUS_REQUEST)
            s_request_accept (self, peer, header, NULL, &payload);
        else
            s_reply_forward (self, peer, header, &payload);
    }
}

static void
s_router_handle (zube_broker_t *self, size_t frames)
{
    s_header_t *header = &self->header;
    if (frames == 2 && zube_bus_batch_is ((const uint8_t *) zmq_msg_data (&self->frames [1]),
                                          zmq_msg_size (&self->frames [1]))) {
        s_router_handle_batch (self);
        return;
    }
    if (!s_header_scan (header, &self->frames [1]) || !s_header_valid (header, frames, false)) {
        self->counters.dropped++;
        return;
    }
    bool created;
    s_peer_t *peer = s_peer_require (self, &self->frames [0], &self->frames [1], &created);
    if (!peer)
        return;
    s_peer_heard (self, peer);
    uint64_t kind = header->varint [ZUBE_BUS_F_KIND];
    if (kind == ZUBE__BUS_KIND__BUS_READY || kind == ZUBE__BUS_KIND__BUS_HEARTBEAT)
        s_peer_learn (self, peer, header);
    s_body_t payload = {NULL, 0, NULL};
    if (frames == 3)
        payload = (s_body_t) {(const uint8_t *) zmq_msg_data (&self->frames [2]),
                              zmq_msg_size (&self->frames [2]), &self->frames [2]};
    switch (kind) {
        case ZUBE__BUS_KIND__BUS_REQUEST:
            s_request_accept (self, peer, header, &self->frames [1], &payload);
            break;
        case ZUBE__BUS_KIND__BUS_REPLY:
            s_reply_forward (self, peer, header, &payload);
            break;
        case ZUBE__BUS_KIND__BUS_READY:
            s_instance_register (self, peer, header);
            break;
        case ZUBE__BUS_KIND__BUS_HEARTBEAT:
            //  A new peer learns the epoch at once (a restarted broker)
            if (created)
                s_control_send (self, peer, ZUBE__BUS_KIND__BUS_HEARTBEAT);
            break;
        case ZUBE__BUS_KIND__BUS_DISCONNECT:
            s_peer_disconnect (self, peer, header);
            break;
        default:
            break;
    }
}

//  Each drain reads until the socket has nothing more (true) or a batch
//  is done (false: call again before sleeping).
static bool
s_router_drain (zube_broker_t *self)
{
    for (int count = 0; count < S_BATCH; count++) {
        if (zmq_msg_recv (&self->frames [0], self->router, ZMQ_DONTWAIT) < 0) {
            if (!self->flush_head)
                return true;
            //  What the drain queued leaves now. The send may have taken
            //  the ROUTER's "readable" off its ZMQ_FD: drain once more
            //  before sleeping
            s_batches_flush (self);
            return false;
        }
        if ((count & 63) == 63)
            self->now = zclock_mono ();
        bool oversized;
        size_t frames = s_recv_rest (self, self->router, &oversized);
        if (oversized) {
            self->counters.oversized++;
            zube_log_debug ("msg=\"oversized message dropped\" limit=%zu", self->max_message_size);
        }
        else
        if (frames < 2 || frames > S_FRAMES)
            self->counters.dropped++;
        else
            s_router_handle (self, frames);
    }
    s_batches_flush (self);
    return false;
}


//  --------------------------------------------------------------------------
//  Events: [topic][BusHeader EVENT][payload] from XSUB to XPUB, with the
//  sender stamped; subscriptions from XPUB back to XSUB.

static void
s_event_forward (zube_broker_t *self)
{
    s_header_t *header = &self->header;
    size_t topic_size = zmq_msg_size (&self->frames [0]);
    if (!s_header_scan (header, &self->frames [1]) || !s_header_valid (header, 3, true)
        || (S_HAS (header, ZUBE_BUS_F_TOPIC)
            && (header->bytes [ZUBE_BUS_F_TOPIC].size != topic_size
                || memcmp (header->bytes [ZUBE_BUS_F_TOPIC].data, zmq_msg_data (&self->frames [0]),
                           topic_size) != 0))) {
        self->counters.dropped++;
        return;
    }
    const char *key;
    const char *sender = s_sender_of (self, &self->frames [1], &key);
    if (!sender) {
        self->counters.unauthorized++;
        return;
    }
    s_bytes_t sender_bytes = {(const uint8_t *) sender, strlen (sender)};
    s_stamp_t stamp = {&sender_bytes, NULL, NULL};
    zmq_msg_t header_msg;
    if (s_header_rewrite (header, &stamp, &header_msg) != 0)
        return;
    //  XPUB never blocks: a slow subscriber loses events at its HWM
    self->touched |= 1u << S_POLL_XPUB;
    if (zmq_msg_send (&self->frames [0], self->xpub, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
        && zmq_msg_send (&header_msg, self->xpub, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
        && zmq_msg_send (&self->frames [2], self->xpub, ZMQ_DONTWAIT) >= 0)
        self->counters.events++;
    else
        self->counters.dropped++;
    zmq_msg_close (&header_msg);
}

static bool
s_events_drain (zube_broker_t *self)
{
    for (int count = 0; count < S_BATCH; count++) {
        if (zmq_msg_recv (&self->frames [0], self->xsub, ZMQ_DONTWAIT) < 0)
            return true;
        bool oversized;
        size_t frames = s_recv_rest (self, self->xsub, &oversized);
        if (oversized)
            self->counters.oversized++;
        else
        if (frames != 3)
            self->counters.dropped++;
        else
            s_event_forward (self);
    }
    return false;
}

static bool
s_subscriptions_drain (zube_broker_t *self)
{
    for (int count = 0; count < S_BATCH; count++) {
        if (zmq_msg_recv (&self->frames [0], self->xpub, ZMQ_DONTWAIT) < 0)
            return true;
        bool oversized;
        size_t frames = s_recv_rest (self, self->xpub, &oversized);
        const uint8_t *data = (const uint8_t *) zmq_msg_data (&self->frames [0]);
        if (oversized)
            self->counters.oversized++;
        else
        if (frames != 1 || zmq_msg_size (&self->frames [0]) == 0 || data [0] > 1)
            self->counters.dropped++;
        else {
            self->touched |= 1u << S_POLL_XSUB;
            zmq_msg_send (&self->frames [0], self->xsub, ZMQ_DONTWAIT);
        }
    }
    return false;
}

//  Socket monitor events, watched only with --certs: a handshake refused by
//  ZAP (unknown key), or failed on the mechanism (a peer without CURVE) or
//  the cryptography (a peer using the wrong broker key).
static bool
s_monitor_drain (zube_broker_t *self, zsock_t *monitor)
{
    void *handle = zsock_resolve (monitor);
    for (int count = 0; count < S_BATCH; count++) {
        zmq_msg_t event_msg, address_msg;
        zmq_msg_init (&event_msg);
        zmq_msg_init (&address_msg);
        if (zmq_msg_recv (&event_msg, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&event_msg);
            zmq_msg_close (&address_msg);
            return true;
        }
        if (zmq_msg_more (&event_msg))
            zmq_msg_recv (&address_msg, handle, ZMQ_DONTWAIT);
        if (zmq_msg_size (&event_msg) >= 6) {
            uint16_t event;
            uint32_t value;
            memcpy (&event, zmq_msg_data (&event_msg), 2);
            memcpy (&value, (uint8_t *) zmq_msg_data (&event_msg) + 2, 4);
            bool refused = event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                        || (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                            && (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                                || value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC));
            if (refused) {
                self->counters.unauthorized++;
                zube_log_warn ("msg=\"connection refused by authentication\" endpoint=%.*s "
                               "reason=%s", (int) zmq_msg_size (&address_msg),
                               (const char *) zmq_msg_data (&address_msg),
                               event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? "unknown-key"
                               : value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                               ? "no-curve" : "bad-handshake");
            }
        }
        zmq_msg_close (&event_msg);
        zmq_msg_close (&address_msg);
    }
    return false;
}


//  --------------------------------------------------------------------------
//  Timers

static void
s_request_expire (zube_broker_t *self, s_request_t *request)
{
    self->counters.expired++;
    if (request->wait) {
        s_service_t *service = request->wait->service;
        s_waiting_unlink (self, request);
        s_answer_error (self, request->route, request->route_size, request->correlation_id,
                        ZUBE_UNAVAILABLE, "no instance of service \"%s\" within the deadline",
                        service->name);
        s_request_free (self, request);
        s_service_collect (self, service);
    }
    else
        //  The client times it out itself; a late reply is dropped
        s_request_forget (self, request);
}

//  Walks the wheel slots from the last one looked at up to now. The
//  current slot is walked again on the next tick: it may hold deadlines
//  later in its 8 ms, and deadlines a whole turn ahead.
static void
s_deadlines_expire (zube_broker_t *self)
{
    int64_t now_slot = self->now / S_WHEEL_MS;
    int64_t slots = now_slot - self->wheel_cursor + 1;
    if (slots > S_WHEEL_SLOTS)
        slots = S_WHEEL_SLOTS;
    for (int64_t i = 0; i < slots; i++) {
        s_request_t *request = self->wheel [(self->wheel_cursor + i) & (S_WHEEL_SLOTS - 1)];
        while (request) {
            s_request_t *next = request->wheel_next;
            if (request->deadline <= self->now)
                s_request_expire (self, request);
            request = next;
        }
    }
    self->wheel_cursor = now_slot;
}

//  Forgets peers silent for 3 of their intervals, heartbeats the others
//  that the broker has sent nothing to for one of its own.
static void
s_peers_sweep (zube_broker_t *self)
{
    s_peer_t *peer = self->peer_list;
    while (peer) {
        s_peer_t *next = peer->next;
        int64_t interval = peer->heartbeat_ms ? (int64_t) peer->heartbeat_ms : self->heartbeat_ms;
        if (self->now - peer->last_seen > S_LIVENESS * interval) {
            if (peer->instances_size)
                zube_log_warn ("msg=\"peer silent, forgetting it\" sender=%s silent_ms=%" PRId64
                               " instances=%zu", peer->sender, self->now - peer->last_seen,
                               peer->instances_size);
            s_peer_forget (self, peer, "silent");
        }
        else
        if (self->now - peer->last_sent >= self->heartbeat_ms)
            s_control_send (self, peer, ZUBE__BUS_KIND__BUS_HEARTBEAT);
        peer = next;
    }
}


//  --------------------------------------------------------------------------
//  Construction

static int
s_epoch_make (char *epoch, size_t size)
{
    uint64_t value = 0;
    if (getrandom (&value, sizeof value, 0) != (ssize_t) sizeof value)
        value = (uint64_t) zclock_time () ^ ((uint64_t) getpid () << 32);
    snprintf (epoch, size, "%016" PRIx64, value);
    return 0;
}

static void
s_socket_configure (zube_broker_t *self, void *socket)
{
    int64_t max_message_size = (int64_t) self->max_message_size * 2;
    int linger = 0;
    zmq_setsockopt (socket, ZMQ_MAXMSGSIZE, &max_message_size, sizeof max_message_size);
    zmq_setsockopt (socket, ZMQ_SNDHWM, &self->hwm, sizeof self->hwm);
    zmq_setsockopt (socket, ZMQ_RCVHWM, &self->hwm, sizeof self->hwm);
    zmq_setsockopt (socket, ZMQ_LINGER, &linger, sizeof linger);
    if (self->secure) {
        int on = 1;
        zcert_apply (self->cert, socket);
        zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &on, sizeof on);
        zmq_setsockopt (socket, ZMQ_ZAP_DOMAIN, "zube", 4);
    }
}

zube_broker_t *
zube_broker_new (const zube_broker_config_t *config)
{
    if (!config)
        return NULL;
    if (!config->insecure == !config->certs_dir) {
        zube_log_error ("msg=\"exactly one of --certs DIR or --insecure is required\"");
        return NULL;
    }
    zsys_init ();
    zube_broker_t *self = (zube_broker_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->bind = strdup (config->bind ? config->bind : ZUBE_BUS_DEFAULT_ENDPOINT);
    self->publish_bind = config->publish_bind ? strdup (config->publish_bind) : NULL;
    self->events_bind = config->events_bind ? strdup (config->events_bind) : NULL;
    self->certs_dir = config->certs_dir ? strdup (config->certs_dir) : NULL;
    self->secure = !config->insecure;
    self->heartbeat_ms = config->heartbeat_ms > 0 ? config->heartbeat_ms
                                                  : ZUBE_BUS_DEFAULT_HEARTBEAT_MS;
    self->max_message_size = config->max_message_size ? config->max_message_size
                                                      : ZUBE_BUS_DEFAULT_MAX_MSG_SIZE;
    self->hwm = config->hwm > 0 ? config->hwm : ZUBE_BROKER_DEFAULT_HWM;
    self->max_waiting = config->max_waiting ? config->max_waiting
                                            : ZUBE_BROKER_DEFAULT_MAX_WAITING;
    self->now = self->started = zclock_mono ();
    self->wheel_cursor = self->now / S_WHEEL_MS;
    self->next_tick = self->now + S_TICK_MS;
    self->next_sweep = self->now;
    s_epoch_make (self->epoch, sizeof self->epoch);
    for (int i = 0; i < S_FRAMES; i++)
        zmq_msg_init (&self->frames [i]);
    zmq_msg_init (&self->scratch);

    self->bucket_count = 1024;
    self->buckets = (s_request_t **) calloc (self->bucket_count, sizeof *self->buckets);
    self->peers = zhashx_new ();
    self->services = zhashx_new ();
    if (!self->bind || !self->buckets || !self->peers || !self->services
        || (config->publish_bind && !self->publish_bind)
        || (config->events_bind && !self->events_bind)
        || (config->certs_dir && !self->certs_dir)) {
        zube_broker_destroy (&self);
        return NULL;
    }
    zhashx_set_key_hasher (self->peers, s_rid_hasher);
    zhashx_set_key_comparator (self->peers, s_rid_comparator);
    zhashx_set_key_duplicator (self->peers, NULL);
    zhashx_set_key_destructor (self->peers, NULL);

    //  The heartbeat never changes: pack it once
    Zube__BusHeader heartbeat = ZUBE__BUS_HEADER__INIT;
    heartbeat.has_version = true;
    heartbeat.version = ZUBE__BUS_VERSION__BUS_VERSION_1;
    heartbeat.has_kind = true;
    heartbeat.kind = ZUBE__BUS_KIND__BUS_HEARTBEAT;
    heartbeat.has_heartbeat_ms = true;
    heartbeat.heartbeat_ms = self->heartbeat_ms;
    heartbeat.instance = self->epoch;
    heartbeat.has_batch_format = true;      //  we read batches
    heartbeat.batch_format = ZUBE_BUS_BATCH_FORMAT;
    heartbeat.has_batch_max_bytes = true;
    heartbeat.batch_max_bytes = self->max_message_size < UINT32_MAX
                              ? (uint32_t) self->max_message_size : UINT32_MAX;
    assert (zube__bus_header__get_packed_size (&heartbeat) <= sizeof self->heartbeat);
    self->heartbeat_size = zube__bus_header__pack (&heartbeat, self->heartbeat);

    if (self->secure) {
        char path [PATH_MAX];
        zube_certs_secret_path (self->certs_dir, "broker", path, sizeof path);
        if (access (path, R_OK) != 0) {
            zube_log_error ("msg=\"cannot read the broker's secret certificate\" path=%s "
                            "error=\"%s\" hint=\"zube certs create --dir %s broker\"",
                            path, strerror (errno), self->certs_dir);
            zube_broker_destroy (&self);
            return NULL;
        }
        zube_certs_public_path (self->certs_dir, "broker", path, sizeof path);
        self->cert = zcert_load (path);
        if (!self->cert || streq (zcert_secret_txt (self->cert),
                                  "0000000000000000000000000000000000000000")) {
            zube_log_error ("msg=\"cannot load the broker's certificate\" path=%s", path);
            zube_broker_destroy (&self);
            return NULL;
        }
        self->names = zube_certs_names_new (self->certs_dir);
        if (!self->names) {
            zube_broker_destroy (&self);
            return NULL;
        }
        //  The authenticator must run before any socket binds: a CURVE
        //  server without a ZAP handler would admit every key.
        self->auth = zactor_new (zauth, NULL);
        if (!self->auth) {
            zube_log_error ("msg=\"cannot start the authenticator\"");
            zube_broker_destroy (&self);
            return NULL;
        }
        if (zube_log_get_level () <= ZUBE_LOG_DEBUG) {
            zstr_sendx (self->auth, "VERBOSE", NULL);
            zsock_wait (self->auth);
        }
        char public_dir [PATH_MAX];
        snprintf (public_dir, sizeof public_dir, "%s/public", self->certs_dir);
        zstr_sendx (self->auth, "CURVE", public_dir, NULL);
        zsock_wait (self->auth);
        zube_log_info ("msg=\"certificates loaded\" dir=%s admitted=%zu", self->certs_dir,
                       zube_certs_names_size (self->names));
    }
    self->router_sock = zsock_new (ZMQ_ROUTER);
    self->xsub_sock = zsock_new (ZMQ_XSUB);
    self->xpub_sock = zsock_new (ZMQ_XPUB);
    if (!self->router_sock || !self->xsub_sock || !self->xpub_sock) {
        zube_log_error ("msg=\"cannot create sockets\" error=\"%s\"", zmq_strerror (zmq_errno ()));
        zube_broker_destroy (&self);
        return NULL;
    }
    self->router = zsock_resolve (self->router_sock);
    self->xsub = zsock_resolve (self->xsub_sock);
    self->xpub = zsock_resolve (self->xpub_sock);
    s_socket_configure (self, self->router);
    s_socket_configure (self, self->xsub);
    s_socket_configure (self, self->xpub);
    int on = 1;
    zmq_setsockopt (self->router, ZMQ_ROUTER_MANDATORY, &on, sizeof on);
    zmq_setsockopt (self->router, ZMQ_ROUTER_HANDOVER, &on, sizeof on);

    if (self->secure) {
        void *sockets [3] = {self->router, self->xsub, self->xpub};
        for (int i = 0; i < 3; i++) {
            char endpoint [64];
            snprintf (endpoint, sizeof endpoint, "inproc://zube-broker-monitor-%p-%d",
                      (void *) self, i);
            if (zmq_socket_monitor (sockets [i], endpoint,
                                    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                                    | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) == 0) {
                self->monitors [i] = zsock_new (ZMQ_PAIR);
                if (self->monitors [i] && zsock_connect (self->monitors [i], "%s", endpoint) != 0)
                    zsock_destroy (&self->monitors [i]);
            }
        }
    }
    return self;
}

//  The event endpoints default to the request endpoint's port + 1 and + 2
//  (tcp), or its path + ".pub" and ".sub" (ipc, inproc).
static char *
s_endpoint_derive (const char *bound, int offset)
{
    if (strncmp (bound, "tcp://", 6) == 0) {
        const char *colon = strrchr (bound, ':');
        char *end = NULL;
        long port = colon ? strtol (colon + 1, &end, 10) : 0;
        if (!colon || colon < bound + 6 || !end || *end || port <= 0 || port + offset > 65535)
            return NULL;
        return zsys_sprintf ("%.*s:%ld", (int) (colon - bound), bound, port + offset);
    }
    if (strncmp (bound, "ipc://", 6) == 0 || strncmp (bound, "inproc://", 9) == 0)
        return zsys_sprintf ("%s.%s", bound, offset == 1 ? "pub" : "sub");
    return NULL;
}

static char *
s_last_endpoint (void *socket)
{
    char endpoint [1024] = "";
    size_t size = sizeof endpoint;
    if (zmq_getsockopt (socket, ZMQ_LAST_ENDPOINT, endpoint, &size) != 0)
        return NULL;
    return strdup (endpoint);
}

static int
s_bind_one (void *socket, const char *flag, const char *endpoint, char **bound,
            char *error, size_t error_size)
{
    if (!endpoint || zmq_bind (socket, endpoint) != 0) {
        snprintf (error, error_size, "cannot bind %s %s: %s", flag,
                  endpoint ? endpoint : "(none)",
                  endpoint ? zmq_strerror (zmq_errno ()) : "cannot derive it from --bind; "
                  "give it explicitly");
        return -1;
    }
    *bound = s_last_endpoint (socket);
    return *bound ? 0 : -1;
}

int
zube_broker_bind (zube_broker_t *self, char *error, size_t error_size)
{
    char scratch [8];
    if (!error) {
        error = scratch;
        error_size = sizeof scratch;
    }
    if (!self || self->bound) {
        snprintf (error, error_size, "broker already bound");
        return -1;
    }
    if (s_bind_one (self->router, "--bind", self->bind, &self->endpoint, error, error_size))
        return -1;
    char *publish = self->publish_bind ? strdup (self->publish_bind)
                                       : s_endpoint_derive (self->endpoint, 1);
    char *events = self->events_bind ? strdup (self->events_bind)
                                     : s_endpoint_derive (self->endpoint, 2);
    int rc = s_bind_one (self->xsub, "--publish-bind", publish, &self->publish_endpoint,
                         error, error_size);
    if (rc == 0)
        rc = s_bind_one (self->xpub, "--events-bind", events, &self->events_endpoint,
                         error, error_size);
    free (publish);
    free (events);
    if (rc != 0)
        return -1;
    void *sockets [3] = {self->router, self->xsub, self->xpub};
    for (int i = 0; i < 6; i++) {
        void *handle = i < 3 ? sockets [i]
                     : self->monitors [i - 3] ? zsock_resolve (self->monitors [i - 3]) : NULL;
        int fd;
        size_t fd_size = sizeof fd;
        if (!handle || zmq_getsockopt (handle, ZMQ_FD, &fd, &fd_size) != 0) {
            if (i < 3) {
                snprintf (error, error_size, "cannot get a socket's ZMQ_FD: %s",
                          zmq_strerror (zmq_errno ()));
                return -1;
            }
            continue;
        }
        self->polled [self->polled_count].fd = fd;
        self->polled [self->polled_count].handle = handle;
        self->polled [self->polled_count].monitor = i < 3 ? NULL : self->monitors [i - 3];
        self->polled_count++;
    }
    //  Drain everything once: news may have come before the first poll
    self->pending = (1u << self->polled_count) - 1;
    self->bound = true;
    self->now = zclock_mono ();
    zube_log_info ("msg=\"broker started\" bind=%s publish=%s events=%s secure=%s "
                   "epoch=%s heartbeat_ms=%d max_message_size=%zu hwm=%d max_waiting=%zu",
                   self->endpoint, self->publish_endpoint, self->events_endpoint,
                   self->secure ? "true" : "false", self->epoch, self->heartbeat_ms,
                   self->max_message_size, self->hwm, self->max_waiting);
    return 0;
}


//  --------------------------------------------------------------------------
//  Running

static bool
s_socket_drain (zube_broker_t *self, int index)
{
    void *handle = self->polled [index].handle;
    if (self->polled [index].monitor)
        return s_monitor_drain (self, self->polled [index].monitor);
    if (handle == self->router)
        return s_router_drain (self);
    if (handle == self->xsub)
        return s_events_drain (self);
    return s_subscriptions_drain (self);
}

//  The broker drains each socket until libzmq has nothing more for it,
//  then sleeps in one poll(2) on the sockets' ZMQ_FD descriptors, which
//  become readable when libzmq has news for a socket. zmq_poll would also
//  ask every socket for ZMQ_EVENTS on every wakeup: a few system calls
//  each, a third of the broker's system calls at full load. ZMQ_FD is
//  edge-like: a send processes the socket's commands too, so a socket
//  sent on after its last drain is drained once more before sleeping.
int
zube_broker_step (zube_broker_t *self, int timeout_ms)
{
    if (!self || !self->bound)
        return -1;
    struct pollfd fds [6];
    for (int i = 0; i < self->polled_count; i++) {
        fds [i].fd = self->polled [i].fd;
        fds [i].events = POLLIN;
        fds [i].revents = 0;
    }
    int64_t now = zclock_mono ();
    long wait = self->next_tick > now ? (long) (self->next_tick - now) : 0;
    if (timeout_ms >= 0 && timeout_ms < wait)
        wait = timeout_ms;
    if (self->pending)
        wait = 0;
    if (poll (fds, self->polled_count, wait) < 0 && errno != EINTR)
        return -1;
    if (zsys_interrupted || self->stopped)
        return -1;
    self->now = zclock_mono ();
    uint32_t ready = self->pending;
    self->pending = 0;
    for (int i = 0; i < self->polled_count; i++) {
        if (!(fds [i].revents & POLLIN) && !(ready & (1u << i)))
            continue;
        if (s_socket_drain (self, i))
            self->touched &= ~(1u << i);    //  Its EAGAIN saw every command
        else
            self->pending |= 1u << i;
    }
    if (self->now >= self->next_tick) {
        s_deadlines_expire (self);
        if (self->now >= self->next_sweep) {
            s_peers_sweep (self);
            int sweep = self->heartbeat_ms / 4;
            self->next_sweep = self->now + (sweep < S_TICK_MS ? S_TICK_MS : sweep);
        }
        self->next_tick = self->now + S_TICK_MS;
    }
    //  What the timers answered
    s_batches_flush (self);
    //  A send may have taken a socket's "readable" command off its ZMQ_FD
    //  while messages wait: such a socket is drained before sleeping again
    self->pending |= self->touched;
    self->touched = 0;
    return 0;
}

void
zube_broker_run (zube_broker_t *self)
{
    while (zube_broker_step (self, -1) == 0)
        ;
}

void
zube_broker_stop (zube_broker_t *self)
{
    if (self)
        self->stopped = true;
}

const zube_broker_counters_t *
zube_broker_counters (zube_broker_t *self)
{
    return self ? &self->counters : NULL;
}

const char *
zube_broker_epoch (zube_broker_t *self)
{
    return self ? self->epoch : NULL;
}

const char *
zube_broker_endpoint (zube_broker_t *self)
{
    return self ? self->endpoint : NULL;
}

const char *
zube_broker_publish_endpoint (zube_broker_t *self)
{
    return self ? self->publish_endpoint : NULL;
}

const char *
zube_broker_events_endpoint (zube_broker_t *self)
{
    return self ? self->events_endpoint : NULL;
}


//  --------------------------------------------------------------------------
//  Destruction

void
zube_broker_destroy (zube_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_broker_t *self = *self_p;
    if (self->bound) {
        //  Tell every peer to reconnect elsewhere (or later), and give the
        //  messages a moment to leave despite LINGER 0
        size_t peers = 0;
        for (s_peer_t *peer = self->peer_list; peer; peer = peer->next, peers++)
            s_control_send (self, peer, ZUBE__BUS_KIND__BUS_DISCONNECT);
        int linger = S_SHUTDOWN_LINGER;
        zmq_setsockopt (self->router, ZMQ_LINGER, &linger, sizeof linger);
        const zube_broker_counters_t *c = &self->counters;
        zube_log_info ("msg=\"broker stopping\" peers=%zu routed=%" PRIu64 " replied=%" PRIu64
                       " dropped=%" PRIu64 " expired=%" PRIu64 " unauthorized=%" PRIu64
                       " events=%" PRIu64 " oversized=%" PRIu64 " instance_deaths=%" PRIu64
                       " batches_sent=%" PRIu64 " batched_entries=%" PRIu64,
                       peers, c->routed, c->replied, c->dropped, c->expired,
                       c->unauthorized, c->events, c->oversized, c->instance_deaths,
                       self->batches_sent, self->batched_sent);
    }
    //  Forget everything without answering: peers were told to reconnect
    //  and resend what they still wait for
    while (self->peer_list) {
        s_peer_t *peer = self->peer_list;
        while (peer->instances_size) {
            s_instance_t *instance = peer->instances [--peer->instances_size];
            while (instance->requests) {
                s_request_t *request = instance->requests;
                instance->requests = request->list_next;
                s_table_remove (self, request);
                s_wheel_remove (request);
                s_request_free (self, request);
            }
            s_array_remove ((void **) instance->service->instances,
                            &instance->service->size, instance);
            free (instance->name);
            free (instance);
        }
        self->peer_list = peer->next;
        if (self->peers)
            zhashx_delete (self->peers, &peer->rid);
        zube_bus_batch_clear (&peer->out);
        free (peer->instances);
        free (peer->sender);
        free (peer);
    }
    if (self->services) {
        s_service_t *service;
        while ((service = (s_service_t *) zhashx_first (self->services))) {
            while (service->waiting_head) {
                s_request_t *request = service->waiting_head;
                s_waiting_unlink (self, request);
                s_request_free (self, request);
            }
            zhashx_delete (self->services, service->name);
            free (service->instances);
            free (service->name);
            free (service);
        }
    }
    while (self->pool) {
        s_request_t *request = self->pool;
        self->pool = request->list_next;
        free (request);
    }
    void *sockets [3] = {self->router, self->xsub, self->xpub};
    for (int i = 0; i < 3; i++)
        if (self->monitors [i]) {
            zmq_socket_monitor (sockets [i], NULL, 0);
            zsock_destroy (&self->monitors [i]);
        }
    zsock_destroy (&self->router_sock);
    zsock_destroy (&self->xsub_sock);
    zsock_destroy (&self->xpub_sock);
    zactor_destroy (&self->auth);
    zcert_destroy (&self->cert);
    zube_certs_names_destroy (&self->names);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->services);
    for (int i = 0; i < S_FRAMES; i++)
        zmq_msg_close (&self->frames [i]);
    zmq_msg_close (&self->scratch);
    free (self->buckets);
    free (self->bind);
    free (self->publish_bind);
    free (self->events_bind);
    free (self->certs_dir);
    free (self->endpoint);
    free (self->publish_endpoint);
    free (self->events_endpoint);
    free (self);
    *self_p = NULL;
}
