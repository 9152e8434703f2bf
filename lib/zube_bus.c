/*  zube_bus - a connection to the zube broker: call, serve, publish, subscribe.

    This is the peer side of docs/bus-protocol.md. The class is split over
    three files for size (lib/zube_bus_private.h says which holds what);
    this one has the connection, the loop and calls. One zube_bus_t owns a
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
*/
#include "zube_bus_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static void s_send_request (zube_bus_t *self, zube_bus_pending_t *pending);
static zube_bus_pending_t *s_pending_lookup (zube_bus_t *self, uint64_t correlation_id);
static void s_timer_at (zube_bus_t *self, int64_t when);

//  --------------------------------------------------------------------------
//  Small helpers

//  The table behind self->pending, self->dedup and self->in_progress:
//  linear probing, at most half full, and a delete that shifts the rest of
//  the run back instead of leaving tombstones. The home slot comes from the
//  top bits of hash times 2^64/phi: correlation ids count up, and taken as
//  they are they would fill one long run that every delete walks.
static inline size_t
s_table_home (const zube_bus_table_t *table, uint64_t hash)
{
    return (size_t)((hash * 0x9E3779B97F4A7C15ULL) >> table->shift);
}

void *
zube_bus__table_find (const zube_bus_table_t *table, uint64_t hash,
                      zube_bus_table_match_fn *match, const void *key)
{
    if (!table->slots)
        return NULL;
    for (size_t index = s_table_home (table, hash);; index = (index + 1) & table->mask) {
        zube_bus_table_slot_t *slot = &table->slots[index];
        if (!slot->item)
            return NULL;
        if (slot->hash == hash && (!match || match (slot->item, key)))
            return slot->item;
    }
}

static void
s_table_place (zube_bus_table_t *table, uint64_t hash, void *item)
{
    size_t index = s_table_home (table, hash);
    while (table->slots[index].item)
        index = (index + 1) & table->mask;
    table->slots[index] = (zube_bus_table_slot_t){hash, item};
}

int
zube_bus__table_insert (zube_bus_table_t *table, uint64_t hash, void *item)
{
    assert (item);
    size_t capacity = table->slots ? table->mask + 1 : 0;
    if ((table->count + 1) * 2 > capacity) {
        size_t grown = capacity ? capacity * 2 : 64;
        zube_bus_table_slot_t *slots = calloc (grown, sizeof *slots);
        if (!slots)
            return -1;
        zube_bus_table_slot_t *old = table->slots;
        table->slots = slots;
        table->mask = grown - 1;
        table->shift = 64 - (unsigned)__builtin_ctzll (grown);
        for (size_t index = 0; index < capacity; index++)
            if (old[index].item)
                s_table_place (table, old[index].hash, old[index].item);
        free (old);
    }
    s_table_place (table, hash, item);
    table->count++;
    return 0;
}

void
zube_bus__table_remove (zube_bus_table_t *table, uint64_t hash, const void *item)
{
    if (!table->slots)
        return;
    size_t hole = s_table_home (table, hash);
    while (table->slots[hole].item != item) {
        if (!table->slots[hole].item)
            return;
        hole = (hole + 1) & table->mask;
    }
    table->slots[hole].item = NULL;
    table->count--;
    //  Move back every later entry of the run that may sit in the hole:
    //  one whose home is not cyclically within (hole, index].
    for (size_t index = (hole + 1) & table->mask; table->slots[index].item;
         index = (index + 1) & table->mask) {
        size_t home = s_table_home (table, table->slots[index].hash);
        bool stays = hole <= index ? (hole < home && home <= index)
                                   : (hole < home || home <= index);
        if (stays)
            continue;
        table->slots[hole] = table->slots[index];
        table->slots[index].item = NULL;
        hole = index;
    }
}

void
zube_bus__table_destroy (zube_bus_table_t *table)
{
    free (table->slots);
    *table = (zube_bus_table_t){NULL, 0, 0, 0};
}

//  Collects the items of a table, so that callbacks can run on each while
//  the table changes. Returns a malloc'd array (NULL when empty or out of
//  memory) and its size.
static void **
s_table_items (const zube_bus_table_t *table, size_t *count_p)
{
    *count_p = 0;
    if (!table->count)
        return NULL;
    void **items = malloc (table->count * sizeof *items);
    if (!items)
        return NULL;
    for (size_t index = 0; index <= table->mask; index++)
        if (table->slots[index].item)
            items[(*count_p)++] = table->slots[index].item;
    return items;
}

void
zube_bus__free_item (void **item_p)
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
    if (fd < 0 || read (fd, &value, sizeof value) != (ssize_t)sizeof value)
        value = ((uint64_t)zclock_usecs () << 16) ^ (uint64_t)getpid () ^
                (uint64_t)(uintptr_t)id;
    if (fd >= 0)
        close (fd);
    snprintf (id, size, "%016" PRIx64, value);
}

//  xorshift64: a per-connection sequence (seeded from the random client id),
//  so that peers started together do not draw the same numbers.
static uint64_t
s_random (zube_bus_t *self)
{
    uint64_t x = self->random_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->random_state = x;
    return x;
}

static bool
s_endpoint_valid (const char *endpoint)
{
    return endpoint &&
           (strncmp (endpoint, "tcp://", 6) == 0 ||
            strncmp (endpoint, "ipc://", 6) == 0 ||
            strncmp (endpoint, "inproc://", 9) == 0) &&
           strlen (endpoint) < 1024;
}

//  Service names are what the broker keys on: printable, no spaces.
bool
zube_bus__service_name_valid (const char *name)
{
    if (!name || !*name || strlen (name) > ZUBE_BUS_MAX_NAME)
        return false;
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 127)
            return false;
    return true;
}

static int
s_broker_interval (zube_bus_t *self)
{
    return self->broker_heartbeat_ms > 0 ? self->broker_heartbeat_ms : self->heartbeat_ms;
}

//  --------------------------------------------------------------------------
//  Replies

zube_bus_reply_t *
zube_bus__reply_new (zube_status_t status, const char *error, const void *payload,
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

void
zube_bus__header_init (Zube__BusHeader *header, Zube__BusKind kind)
{
    zube__bus_header__init (header);
    header->has_version = 1;
    header->version = ZUBE__BUS_VERSION__BUS_VERSION_1;
    header->has_kind = 1;
    header->kind = kind;
}

uint8_t *
zube_bus__header_pack (const Zube__BusHeader *header, size_t *size_p)
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
int
zube_bus__send_raw (zsock_t *sock, const char *topic, const uint8_t *header,
                    size_t header_size, const void *payload, size_t payload_size,
                    bool with_payload)
{
    void *handle = zsock_resolve (sock);
    if (topic && zmq_send (handle, topic, strlen (topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    if (zmq_send (handle, header, header_size,
                  (with_payload ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
        return -1;
    if (with_payload &&
        zmq_send (handle, payload_size ? payload : "", payload_size, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

int
zube_bus__send_frames (zsock_t *sock, const char *topic, const Zube__BusHeader *header,
                       const void *payload, size_t payload_size, bool with_payload)
{
    size_t header_size = 0;
    uint8_t *buffer = zube_bus__header_pack (header, &header_size);
    if (!buffer)
        return -1;
    int rc = zube_bus__send_raw (sock, topic, buffer, header_size, payload, payload_size,
                                 with_payload);
    free (buffer);
    return rc;
}

//  Everything to the broker goes through zube_bus__send_broker or
//  zube_bus__send_broker_msg, so that last_sent tells when a heartbeat is
//  due.
static void
s_sent (zube_bus_t *self)
{
    int64_t now = s_now ();
    //  Silent for longer than the broker waits (a handler that blocked):
    //  the broker may have forgotten us and our registrations, and nothing
    //  would tell us. READY is idempotent: s_run_timers registers again.
    if (self->connected && self->last_sent &&
        now - self->last_sent > ZUBE_BUS_HEARTBEAT_LIVENESS * self->heartbeat_ms)
        self->register_again = true;
    self->last_sent = now;
}

int
zube_bus__send_broker (zube_bus_t *self, const Zube__BusHeader *header,
                       const void *payload, size_t payload_size, bool with_payload)
{
    zube_bus__flush (self); //  what was written before goes first
    if (!self->dealer)
        return -1;
    if (zube_bus__send_frames (self->dealer, NULL, header, payload, payload_size,
                               with_payload) != 0) {
        zube_log_debug ("msg=\"send to broker refused\" errno=%d", errno);
        return -1;
    }
    s_sent (self);
    return 0;
}

//  Sends [header][payload] (payload may be NULL) to the broker, taking
//  both frames: they are sent or closed. The hot path: the caller wrote
//  the header into the frame itself.
int
zube_bus__send_broker_msg (zube_bus_t *self, zmq_msg_t *header, zmq_msg_t *payload)
{
    if (!self->dealer) {
        zmq_msg_close (header);
        if (payload)
            zmq_msg_close (payload);
        return -1;
    }
    void *handle = self->dealer_handle;
    if (zmq_msg_send (header, handle, (payload ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
        zube_log_debug ("msg=\"send to broker refused\" errno=%d", errno);
        zmq_msg_close (header);
        if (payload)
            zmq_msg_close (payload);
        return -1;
    }
    //  The rest of a message whose first part was accepted cannot fail.
    if (payload && zmq_msg_send (payload, handle, ZMQ_DONTWAIT) < 0)
        zmq_msg_close (payload);
    s_sent (self);
    return 0;
}

//  Batches (docs/bus-protocol.md). Once the broker said it reads them, the
//  requests and replies written inside the loop (zube_bus_poll, a waiting
//  zube_bus_call, their callbacks) are queued in self->out and leave as one
//  frame when the loop is about to wait or the batch is full
//  (zube_bus__flush). Outside the loop, and for a payload over
//  ZUBE_BUS_BATCH_INLINE_MAX, each is sent at once as a classic message:
//  nothing waits for a loop that may not come.

//  Where a request's or reply's header of header_size bytes is to be
//  written: into the batch (payload copied in after it; *queued_p true), or
//  into header_msg, a new frame that the caller sends with the payload. NULL
//  when out of memory.
uint8_t *
zube_bus__entry_start (zube_bus_t *self, size_t header_size, const void *payload,
                       size_t payload_size, zmq_msg_t *header_msg, bool *queued_p)
{
    *queued_p = false;
    if (self->batching && self->broker_batches && self->dealer && self->depth > 0 &&
        payload_size <= ZUBE_BUS_BATCH_INLINE_MAX) {
        size_t entry_size = zube_bus_batch_entry_size (header_size, payload_size);
        if (!zube_bus_batch_fits (&self->out, entry_size, self->broker_batch_max))
            zube_bus__flush (self);
        uint8_t *out =
            zube_bus_batch_fits (&self->out, entry_size, self->broker_batch_max)
                ? zube_bus_batch_add (&self->out, header_size, payload, payload_size)
                : NULL;
        if (out) {
            *queued_p = true;
            return out;
        }
    }
    if (zmq_msg_init_size (header_msg, header_size) != 0)
        return NULL;
    return (uint8_t *)zmq_msg_data (header_msg);
}

//  A request of a batch that was not sent is sent again shortly, as
//  s_send_request does with one refused at once.
static void
s_send_refused (zube_bus_t *self, uint64_t correlation_id)
{
    zube_bus_pending_t *pending = s_pending_lookup (self, correlation_id);
    if (pending && pending->generation == self->generation && !pending->retry_at) {
        pending->attempt--;
        pending->generation = 0;
        pending->retry_at = s_now () + ZUBE_BUS_SEND_RETRY_MS;
        s_timer_at (self, pending->retry_at);
    }
}

//  A batch the DEALER did not take: to a broker that no longer reads
//  batches (another one answers now) each entry goes as a classic message;
//  what still does not go is refused: its requests are sent again shortly,
//  its replies are lost (the caller's retry is answered from the reply
//  cache).
static void
s_batch_unsent (zube_bus_t *self, zmq_msg_t *frame)
{
    const uint8_t *data = zmq_msg_data (frame), *cursor, *end = data + zmq_msg_size (frame);
    uint32_t count;
    if (!zube_bus_batch_check (data, zmq_msg_size (frame), &cursor, &count))
        return;
    bool one_by_one = !self->broker_batches;
    for (uint32_t index = 0; index < count; index++) {
        zube_bus_batch_entry_t entry;
        zube_bus_wire_t header;
        if (!zube_bus_batch_next (&cursor, end, &entry) ||
            !zube_bus_wire_scan (&header, entry.header, entry.header_size))
            break; //  cannot happen: we wrote it
        zmq_msg_t header_msg, payload;
        if (one_by_one && zmq_msg_init_size (&header_msg, entry.header_size) == 0) {
            memcpy (zmq_msg_data (&header_msg), entry.header, entry.header_size);
            if (zmq_msg_init_size (&payload, entry.payload_size) == 0) {
                if (entry.payload_size)
                    memcpy (zmq_msg_data (&payload), entry.payload, entry.payload_size);
                if (zube_bus__send_broker_msg (self, &header_msg, &payload) == 0)
                    continue;
            } else
                zmq_msg_close (&header_msg);
        }
        if (header.varint[ZUBE_BUS_F_KIND] == ZUBE__BUS_KIND__BUS_REQUEST)
            s_send_refused (self, header.varint[ZUBE_BUS_F_CORRELATION_ID]);
        else
            zube_log_debug ("msg=\"reply not sent\" correlation_id=%" PRIu64,
                            header.varint[ZUBE_BUS_F_CORRELATION_ID]);
    }
}

//  Sends what self->out holds, as one message
void
zube_bus__flush (zube_bus_t *self)
{
    if (!self->out.count)
        return;
    zmq_msg_t frame;
    if (!self->dealer || zube_bus_batch_take (&self->out, &frame) != 0) {
        //  Out of memory: its requests end at their deadline
        zube_bus_batch_clear (&self->out);
        return;
    }
    if (self->broker_batches &&
        zmq_msg_send (&frame, self->dealer_handle, ZMQ_DONTWAIT) >= 0) {
        s_sent (self);
        return;
    }
    zube_log_debug ("msg=\"batch to broker refused\" errno=%d", errno);
    s_batch_unsent (self, &frame);
    zmq_msg_close (&frame);
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
        zmq_msg_t *frame = count < max ? &frames[count] : &scratch;
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

//  Reads a received header in place; false (drop the message) when it is
//  not a BusHeader of version 1 with a kind.
bool
zube_bus__header_scan (zube_bus_wire_t *header, zmq_msg_t *frame)
{
    return zube_bus__header_scan_bytes (header, (const uint8_t *)zmq_msg_data (frame),
                                        zmq_msg_size (frame));
}

bool
zube_bus__header_scan_bytes (zube_bus_wire_t *header, const uint8_t *data, size_t size)
{
    return zube_bus_wire_scan (header, data, size) &&
           ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_VERSION) &&
           header->varint[ZUBE_BUS_F_VERSION] == ZUBE__BUS_VERSION__BUS_VERSION_1 &&
           ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_KIND);
}

//  Opens one socket to the broker with the limits and keys every socket
//  gets (docs/bus-protocol.md: MAXMSGSIZE, HWMs, LINGER 0, CURVE).
zsock_t *
zube_bus__socket_new (zube_bus_t *self, int type, const char *endpoint)
{
    zsock_t *sock = zsock_new (type);
    if (!sock) {
        zube_log_error ("msg=\"cannot create socket\" errno=%d", errno);
        return NULL;
    }
    zsock_set_linger (sock, 0);
    zsock_set_sndhwm (sock, self->hwm);
    zsock_set_rcvhwm (sock, self->hwm);
    zsock_set_maxmsgsize (sock, (int)self->max_msg_size);
    zsock_set_reconnect_ivl (sock, self->reconnect_min_ms);
    zsock_set_reconnect_ivl_max (sock, self->reconnect_max_ms);
    if (!self->insecure) {
        zcert_apply (self->cert, sock);
        zsock_set_curve_serverkey (sock, self->server_key);
    }
    if (type == ZMQ_DEALER) {
        //  Our own routing id, new with every DEALER: libzmq keeps it
        //  across its silent TCP reconnects, so the broker (with
        //  ZMQ_ROUTER_HANDOVER) still knows us and our requests then. The
        //  random client id makes it unique; it stays short enough for
        //  the broker to keep routes inline (docs/bus-protocol.md).
        char routing_id[40];
        int size = snprintf (routing_id, sizeof routing_id, "%s.%" PRIx64, self->client_id,
                             self->generation + 1);
        zmq_setsockopt (zsock_resolve (sock), ZMQ_ROUTING_ID, routing_id, (size_t)size);
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

//  HEARTBEAT and READY say that we read batches, and up to what size
static void
s_batches_offer (zube_bus_t *self, Zube__BusHeader *header)
{
    if (!self->batching)
        return;
    header->has_batch_format = 1;
    header->batch_format = ZUBE_BUS_BATCH_FORMAT;
    header->has_batch_max_bytes = 1;
    header->batch_max_bytes = (uint32_t)self->max_msg_size;
}

static void
s_send_heartbeat (zube_bus_t *self)
{
    Zube__BusHeader header;
    zube_bus__header_init (&header, ZUBE__BUS_KIND__BUS_HEARTBEAT);
    header.has_heartbeat_ms = 1;
    header.heartbeat_ms = (uint32_t)self->heartbeat_ms;
    header.instance = self->instance;
    s_batches_offer (self, &header);
    if (zube_bus__send_broker (self, &header, NULL, 0, false) != 0)
        self->last_sent = s_now (); //  do not retry at once: the HWM is full
}

void
zube_bus__send_ready (zube_bus_t *self, const char *service)
{
    Zube__BusHeader header;
    zube_bus__header_init (&header, ZUBE__BUS_KIND__BUS_READY);
    header.service = (char *)service;
    header.instance = self->instance;
    header.has_heartbeat_ms = 1;
    header.heartbeat_ms = (uint32_t)self->heartbeat_ms;
    s_batches_offer (self, &header);
    zube_bus__send_broker (self, &header, NULL, 0, false);
}

void
zube_bus__send_disconnect (zube_bus_t *self, const char *service)
{
    Zube__BusHeader header;
    zube_bus__header_init (&header, ZUBE__BUS_KIND__BUS_DISCONNECT);
    header.service = (char *)(service ? service : "");
    header.instance = self->instance;
    zube_bus__send_broker (self, &header, NULL, 0, false);
}

static void
s_send_ready_all (zube_bus_t *self)
{
    for (zube_bus_service_t *service = zhashx_first (self->services); service;
         service = zhashx_next (self->services))
        zube_bus__send_ready (self, (const char *)zhashx_cursor (self->services));
}

//  What a broker that restarted, or a new DEALER, has never heard of:
//  our services, our calls in flight (same client id, sequence and
//  correlation id, attempt + 1), and our event sockets, which are
//  re-opened once bus/info has answered again.
static void
s_resync (zube_bus_t *self)
{
    s_send_ready_all (self);
    //  s_send_request runs no callback and leaves the table as it is.
    for (size_t index = 0; self->pending.slots && index <= self->pending.mask; index++)
        if (self->pending.slots[index].item)
            s_send_request (self, self->pending.slots[index].item);
    if (self->pub || self->sub || zhashx_size (self->subscriptions) ||
        zlistx_size (self->event_queue))
        zube_bus__want_info (self);
}

static int
s_connect (zube_bus_t *self)
{
    zsock_t *dealer = zube_bus__socket_new (self, ZMQ_DEALER, self->endpoint);
    if (!dealer)
        return -1;
    self->dealer = dealer;
    self->dealer_handle = zsock_resolve (dealer);
    self->dealer_fd = zsock_fd (dealer);
    self->generation++;
    self->connected = false;
    self->broker_batches = false; //  until this broker says so
    self->last_heard = s_now ();
    //  The protocol asks for a heartbeat on connect: a broker that does
    //  not know us answers it at once with its epoch.
    s_send_heartbeat (self);
    return 0;
}

//  Closes the DEALER (dropping whatever it still queued) and schedules a
//  new one after the back-off, which doubles up to reconnect_max_ms and
//  drops back to reconnect_min_ms once the broker answers. Up to a quarter
//  more is added at random, so that the peers of a restarted broker do not
//  all come back in the same millisecond.
static void
s_disconnect (zube_bus_t *self)
{
    //  What was queued is lost with the DEALER: s_resync sends the calls
    //  again, and callers retry for the replies
    zube_bus_batch_clear (&self->out);
    zsock_destroy (&self->dealer);
    self->dealer_handle = NULL;
    self->connected = false;
    int delay =
        self->backoff_ms + (int)(s_random (self) % (uint64_t)(self->backoff_ms / 4 + 1));
    self->reconnect_at = s_now () + delay;
    zube_log_info ("msg=\"reconnecting to broker\" endpoint=%s in_ms=%d", self->endpoint,
                   delay);
    self->backoff_ms = self->backoff_ms * 2 > self->reconnect_max_ms
                           ? self->reconnect_max_ms
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

static zube_bus_pending_t *
s_pending_new (zube_bus_t *self)
{
    zube_bus_pending_t *pending = self->pending_pool;
    if (pending) {
        self->pending_pool = pending->next_free;
        self->pending_pool_size--;
        char *names = pending->names;
        size_t names_size = pending->names_size;
        memset (pending, 0, sizeof *pending);
        pending->names = names;
        pending->names_size = names_size;
    } else
        pending = calloc (1, sizeof *pending);
    if (pending)
        zmq_msg_init (&pending->payload);
    return pending;
}

//  Back to the pool (or freed). The record must no longer be in the table.
static void
s_pending_destroy (zube_bus_t *self, zube_bus_pending_t **self_p)
{
    zube_bus_pending_t *pending = *self_p;
    if (!pending)
        return;
    *self_p = NULL;
    zmq_msg_close (&pending->payload);
    free (pending->last_error);
    pending->last_error = NULL;
    if (self && self->pending_pool_size < ZUBE_BUS_POOL_MAX && pending->names_size <= 1024) {
        pending->next_free = self->pending_pool;
        self->pending_pool = pending;
        self->pending_pool_size++;
        return;
    }
    free (pending->names);
    free (pending);
}

static zube_bus_pending_t *
s_pending_lookup (zube_bus_t *self, uint64_t correlation_id)
{
    return zube_bus__table_find (&self->pending, correlation_id, NULL, NULL);
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
s_send_request (zube_bus_t *self, zube_bus_pending_t *pending)
{
    int64_t now = s_now ();
    pending->retry_at = 0;
    pending->generation = 0;
    if (!self->dealer)
        return;
    //  The header, written straight into its frame.
    int64_t left = pending->deadline - now;
    uint32_t deadline_ms = left < 1 ? 1 : left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
    size_t service_size = strlen (pending->service);
    size_t method_size = strlen (pending->method);
    size_t client_id_size = strlen (self->client_id);
    size_t size = 4 + zube_bus_wire_bytes_field_size (ZUBE_BUS_F_SERVICE, service_size) +
                  zube_bus_wire_bytes_field_size (ZUBE_BUS_F_METHOD, method_size) +
                  zube_bus_wire_varint_field_size (ZUBE_BUS_F_CORRELATION_ID,
                                                   pending->correlation_id) +
                  zube_bus_wire_varint_field_size (ZUBE_BUS_F_DEADLINE_MS, deadline_ms) +
                  zube_bus_wire_bytes_field_size (ZUBE_BUS_F_CLIENT_ID, client_id_size) +
                  zube_bus_wire_varint_field_size (ZUBE_BUS_F_SEQUENCE, pending->sequence) +
                  zube_bus_wire_varint_field_size (ZUBE_BUS_F_ATTEMPT, pending->attempt + 1);
    zmq_msg_t header, payload;
    int rc = -1;
    bool queued;
    uint8_t *start =
        zube_bus__entry_start (self, size, zmq_msg_data (&pending->payload),
                               zmq_msg_size (&pending->payload), &header, &queued);
    if (start) {
        uint8_t *out = start;
        out = zube_bus_wire_varint_field_write (out, ZUBE_BUS_F_VERSION,
                                                ZUBE__BUS_VERSION__BUS_VERSION_1);
        out = zube_bus_wire_varint_field_write (out, ZUBE_BUS_F_KIND,
                                                ZUBE__BUS_KIND__BUS_REQUEST);
        out = zube_bus_wire_bytes_field_write (out, ZUBE_BUS_F_SERVICE, pending->service,
                                               service_size);
        out = zube_bus_wire_bytes_field_write (out, ZUBE_BUS_F_METHOD, pending->method,
                                               method_size);
        out = zube_bus_wire_varint_field_write (out, ZUBE_BUS_F_CORRELATION_ID,
                                                pending->correlation_id);
        out = zube_bus_wire_varint_field_write (out, ZUBE_BUS_F_DEADLINE_MS, deadline_ms);
        out = zube_bus_wire_bytes_field_write (out, ZUBE_BUS_F_CLIENT_ID, self->client_id,
                                               client_id_size);
        out = zube_bus_wire_varint_field_write (out, ZUBE_BUS_F_SEQUENCE,
                                                pending->sequence);
        out = zube_bus_wire_varint_field_write (out, ZUBE_BUS_F_ATTEMPT,
                                                pending->attempt + 1);
        assert (out == start + size);
        //  The payload frame shares the record's buffer (no copy); the
        //  record keeps it for a resend.
        zmq_msg_init (&payload);
        if (queued) {
            zmq_msg_close (&payload);
            rc = 0;
        } else if (zmq_msg_copy (&payload, &pending->payload) == 0)
            rc = zube_bus__send_broker_msg (self, &header, &payload);
        else {
            zmq_msg_close (&payload);
            zmq_msg_close (&header);
        }
    }
    if (rc == 0) {
        pending->attempt++;
        pending->generation = self->generation;
    } else {
        pending->retry_at = now + ZUBE_BUS_SEND_RETRY_MS;
        s_timer_at (self, pending->retry_at);
    }
    //  Whoever sent it, the call's deadline stays armed: a resent request
    //  the broker drops (its deadline passed on the way) must still end.
    s_timer_at (self, pending->deadline);
}

//  Starts a call: validates, records it in self->pending and sends it.
//  Returns its correlation id, or 0 with *status_p and why set when it
//  cannot even be queued.
uint64_t
zube_bus__call_start (zube_bus_t *self, const char *service, const char *method,
                      const void *payload, size_t payload_size, int timeout_ms,
                      zube_bus_reply_fn *callback, void *arg, zube_bus_sync_slot_t *slot,
                      zube_bus_internal_fn *internal, zube_status_t *status_p, char *why,
                      size_t why_size)
{
    if (!zube_bus__service_name_valid (service) || !method || !*method) {
        *status_p = ZUBE_BAD_REQUEST;
        snprintf (why, why_size, "invalid service or method name");
        return 0;
    }
    if (payload_size > self->max_msg_size) {
        *status_p = ZUBE_PAYLOAD_TOO_LARGE;
        snprintf (why, why_size,
                  "request payload of %zu bytes exceeds the %zu-byte limit", payload_size,
                  self->max_msg_size);
        return 0;
    }
    zube_bus_pending_t *pending = s_pending_new (self);
    bool stored = false;
    if (pending) {
        size_t service_size = strlen (service) + 1, method_size = strlen (method) + 1;
        if (pending->names_size < service_size + method_size) {
            char *names = realloc (pending->names, service_size + method_size);
            if (names) {
                pending->names = names;
                pending->names_size = service_size + method_size;
            }
        }
        if (pending->names_size >= service_size + method_size &&
            zmq_msg_init_size (&pending->payload, payload_size) == 0) {
            memcpy (pending->names, service, service_size);
            memcpy (pending->names + service_size, method, method_size);
            pending->service = pending->names;
            pending->method = pending->names + service_size;
            if (payload_size)
                memcpy (zmq_msg_data (&pending->payload), payload, payload_size);
            pending->correlation_id = self->next_correlation + 1;
            stored = zube_bus__table_insert (&self->pending, pending->correlation_id,
                                             pending) == 0;
        }
    }
    if (!stored) {
        s_pending_destroy (self, &pending);
        *status_p = ZUBE_INTERNAL;
        snprintf (why, why_size, "out of memory");
        return 0;
    }
    self->next_correlation++;
    pending->timeout_ms = timeout_ms > 0 ? timeout_ms : ZUBE_BUS_DEFAULT_TIMEOUT_MS;
    pending->deadline = s_now () + pending->timeout_ms;
    pending->sequence = ++self->next_sequence;
    pending->callback = callback;
    pending->arg = arg;
    pending->slot = slot;
    pending->internal = internal;
    if (internal)
        self->internal_in_flight++;
    s_timer_at (self, pending->deadline);
    s_send_request (self, pending);
    return pending->correlation_id;
}

//  Ends a call with its one outcome. The entry is gone before the
//  callback runs, so the callback may start new calls.
static void
s_deliver (zube_bus_t *self, zube_bus_pending_t *pending, zube_bus_reply_t *reply)
{
    zube_bus__table_remove (&self->pending, pending->correlation_id, pending);
    if (pending->internal)
        self->internal_in_flight--;
    zube_bus_reply_fn *callback = pending->callback;
    void *arg = pending->arg;
    zube_bus_sync_slot_t *slot = pending->slot;
    zube_bus_internal_fn *internal = pending->internal;
    s_pending_destroy (self, &pending);

    if (!reply)
        reply = zube_bus__reply_new (ZUBE_INTERNAL, "out of memory", NULL, 0, 0);
    if (!reply) {
        zube_log_error ("msg=\"out of memory delivering a reply\"");
        if (slot)
            slot->done = true;
        return;
    }
    if (slot) {
        slot->reply = reply;
        slot->done = true;
    } else if (internal)
        internal (self, reply);
    else if (callback) {
        self->dispatched++;
        callback (self, reply, arg);
    } else
        zube_bus_reply_destroy (&reply);
}

//  After UNAVAILABLE "instance ... died" the request may still be served by
//  another instance: send it again after a short back-off, if the deadline
//  leaves room. Returns false when it does not.
static bool
s_schedule_retry (zube_bus_t *self, zube_bus_pending_t *pending, const char *why)
{
    int shift = pending->attempt > 5 ? 5 : (int)pending->attempt - 1;
    int backoff = ZUBE_BUS_RETRY_MIN_MS << (shift > 0 ? shift : 0);
    if (backoff > ZUBE_BUS_RETRY_MAX_MS)
        backoff = ZUBE_BUS_RETRY_MAX_MS;
    int64_t now = s_now ();
    if (now + backoff >= pending->deadline)
        return false;
    free (pending->last_error);
    pending->last_error = s_strdup (why);
    pending->retry_at = now + backoff;
    pending->generation = 0;
    s_timer_at (self, pending->retry_at);
    zube_log_debug (
        "msg=\"retrying request\" service=%s method=%s correlation_id=%" PRIu64
        " in_ms=%d reason=\"%s\"",
        pending->service, pending->method, pending->correlation_id, backoff, why);
    return true;
}

static void
s_handle_reply (zube_bus_t *self, const zube_bus_wire_t *header, const void *data,
                size_t size)
{
    if (!ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_CORRELATION_ID))
        return;
    uint64_t correlation_id = header->varint[ZUBE_BUS_F_CORRELATION_ID];
    zube_bus_pending_t *pending = s_pending_lookup (self, correlation_id);
    if (!pending) {
        zube_log_debug (
            "msg=\"dropped reply to a finished call\" correlation_id=%" PRIu64,
            correlation_id);
        return;
    }
    zube_status_t status = ZUBE_OK;
    if (ZUBE_BUS_WIRE_HAS (header, ZUBE_BUS_F_STATUS)) {
        int32_t code = (int32_t)(uint32_t)header->varint[ZUBE_BUS_F_STATUS];
        status = code < 0 || code >= ZUBE_STATUS_COUNT ? ZUBE_INTERNAL : (zube_status_t)code;
    }
    const char *error_bytes;
    size_t error_size = zube_bus_wire_string (header, ZUBE_BUS_F_ERROR, &error_bytes);
    char error_buffer[256];
    char *error = NULL; //  only built when it is needed
    if (status != ZUBE_OK && error_bytes) {
        error = error_size < sizeof error_buffer ? error_buffer : malloc (error_size + 1);
        if (error) {
            memcpy (error, error_bytes, error_size);
            error[error_size] = 0;
        }
    }
    if (status == ZUBE_UNAVAILABLE && error && strstr (error, " died") &&
        s_schedule_retry (self, pending, error)) {
        if (error != error_buffer)
            free (error);
        return;
    }
    zube_bus_reply_t *reply = zube_bus__reply_new (status, error, data, size, correlation_id);
    if (error != error_buffer)
        free (error);
    s_deliver (self, pending, reply);
}

//  Delivers DEADLINE_EXCEEDED to calls whose deadline passed, re-sends
//  those whose retry is due, and finds the next time this is needed.
static void
s_expire_pending (zube_bus_t *self, int64_t now)
{
    self->next_timer = INT64_MAX;
    size_t count = self->pending.count;
    if (count == 0)
        return;
    uint64_t *due = malloc (count * sizeof *due);
    if (!due) {
        self->next_timer = now + 10;
        return;
    }
    size_t due_count = 0;
    for (size_t slot = 0; slot <= self->pending.mask; slot++) {
        zube_bus_pending_t *pending = self->pending.slots[slot].item;
        if (!pending)
            continue;
        int64_t when = pending->deadline;
        if (pending->retry_at && pending->retry_at < when)
            when = pending->retry_at;
        if (when <= now)
            due[due_count++] = pending->correlation_id;
        else
            s_timer_at (self, when);
    }
    for (size_t index = 0; index < due_count; index++) {
        zube_bus_pending_t *pending = s_pending_lookup (self, due[index]);
        if (!pending)
            continue; //  ended by a callback meanwhile
        if (pending->deadline <= now) {
            char why[512];
            snprintf (why, sizeof why, "no reply from %s/%s within %d ms%s%s%s",
                      pending->service, pending->method, pending->timeout_ms,
                      pending->last_error ? " (last attempt: " : "",
                      pending->last_error ? pending->last_error : "",
                      pending->last_error ? ")"
                      : self->connected   ? ""
                                          : " (broker not reachable)");
            s_deliver (self, pending,
                       zube_bus__reply_new (ZUBE_DEADLINE_EXCEEDED, why, NULL, 0,
                                            pending->correlation_id));
        } else if (pending->retry_at && pending->retry_at <= now)
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
    char why[256];
    uint64_t id =
        zube_bus__call_start (self, service, method, payload, payload_size, timeout_ms,
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
    return status == ZUBE_UNAVAILABLE || status == ZUBE_DEADLINE_EXCEEDED ||
           status == ZUBE_PAYLOAD_TOO_LARGE;
}

static void s_run_once (zube_bus_t *self, int64_t until);

int
zube_bus_call (zube_bus_t *self, const char *service, const char *method,
               const void *payload, size_t payload_size, int timeout_ms,
               zube_bus_reply_t **reply_p)
{
    assert (self);
    assert (reply_p);
    zube_bus_sync_slot_t slot = {NULL, false};
    zube_status_t status;
    char why[256];
    uint64_t id =
        zube_bus__call_start (self, service, method, payload, payload_size, timeout_ms,
                              NULL, NULL, &slot, NULL, &status, why, sizeof why);
    if (!id) {
        *reply_p = zube_bus__reply_new (status, why, NULL, 0, 0);
        return -1;
    }
    self->depth++;
    while (!slot.done) {
        if (zsys_interrupted) {
            zube_bus_pending_t *pending = s_pending_lookup (self, id);
            if (pending)
                s_deliver (
                    self, pending,
                    zube_bus__reply_new (ZUBE_UNAVAILABLE, "interrupted", NULL, 0, id));
            break;
        }
        s_run_once (self, s_now () + ZUBE_BUS_MAX_WAIT_MS);
    }
    self->depth--;
    *reply_p = slot.reply;
    if (!slot.reply) {
        *reply_p = zube_bus__reply_new (ZUBE_INTERNAL, "out of memory", NULL, 0, id);
        return -1;
    }
    return s_status_is_no_answer (slot.reply->status) ? -1 : 0;
}

zube_status_t
zube_bus_call_msg (zube_bus_t *self, const char *service, const char *method,
                   const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *reply_desc, int timeout_ms,
                   ProtobufCMessage **reply_msg_p, char *error, size_t error_size)
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
        *reply_msg_p = protobuf_c_message_unpack (reply_desc, NULL, reply->payload_size,
                                                  reply->payload ? reply->payload
                                                                 : (const uint8_t *)"");
        if (!*reply_msg_p) {
            status = ZUBE_INTERNAL;
            if (error && error_size)
                snprintf (error, error_size, "cannot decode the %s reply of %s/%s",
                          reply_desc->name, service, method);
        }
    } else if (status != ZUBE_OK && error && error_size)
        snprintf (error, error_size, "%s", reply->error ? reply->error : "");
    zube_bus_reply_destroy (&reply);
    return status;
}

size_t
zube_bus_in_flight (zube_bus_t *self)
{
    assert (self);
    return self->pending.count - self->internal_in_flight;
}

//  --------------------------------------------------------------------------
//  The loop

//  A batch from the broker: every entry as the classic message it stands
//  for. A batch whose framing does not hold is dropped whole; an entry
//  that is not a well-formed REQUEST or REPLY is dropped alone.
static void
s_handle_broker_batch (zube_bus_t *self, zmq_msg_t *frame, int64_t now)
{
    const uint8_t *data = zmq_msg_data (frame), *cursor, *end = data + zmq_msg_size (frame);
    uint32_t count;
    if (!zube_bus_batch_check (data, zmq_msg_size (frame), &cursor, &count)) {
        zube_log_debug ("msg=\"dropped malformed batch from broker\" bytes=%zu",
                        zmq_msg_size (frame));
        return;
    }
    self->last_heard = now;
    for (uint32_t index = 0; index < count; index++) {
        zube_bus_batch_entry_t entry;
        zube_bus_wire_t header;
        if (!zube_bus_batch_next (&cursor, end, &entry))
            break; //  cannot happen: checked as a whole
        uint64_t kind = 0;
        if (zube_bus__header_scan_bytes (&header, entry.header, entry.header_size))
            kind = header.varint[ZUBE_BUS_F_KIND];
        if (kind == ZUBE__BUS_KIND__BUS_REPLY)
            s_handle_reply (self, &header, entry.payload, entry.payload_size);
        else if (kind == ZUBE__BUS_KIND__BUS_REQUEST) {
            zmq_msg_t payload;
            if (zmq_msg_init_size (&payload, entry.payload_size) != 0)
                continue;
            if (entry.payload_size)
                memcpy (zmq_msg_data (&payload), entry.payload, entry.payload_size);
            zube_bus__handle_request (self, &header, &payload);
            zmq_msg_close (&payload);
        } else
            zube_log_debug ("msg=\"dropped malformed entry of a batch from broker\"");
    }
}

static void
s_handle_broker_message (zube_bus_t *self, zmq_msg_t *frames, int count, int64_t now)
{
    zube_bus_wire_t header;
    if (count == 1 && self->batching &&
        zube_bus_batch_is (zmq_msg_data (&frames[0]), zmq_msg_size (&frames[0]))) {
        s_handle_broker_batch (self, &frames[0], now);
        return;
    }
    if (count < 1 || count > 2 || !zube_bus__header_scan (&header, &frames[0])) {
        zube_log_debug ("msg=\"dropped malformed message from broker\" frames=%d", count);
        return;
    }
    self->last_heard = now;
    uint64_t kind = header.varint[ZUBE_BUS_F_KIND];
    bool restarted = false;
    if (kind == ZUBE__BUS_KIND__BUS_HEARTBEAT) {
        uint64_t limit = header.varint[ZUBE_BUS_F_BATCH_MAX_BYTES];
        self->broker_batches =
            ZUBE_BUS_WIRE_HAS (&header, ZUBE_BUS_F_BATCH_FORMAT) &&
            header.varint[ZUBE_BUS_F_BATCH_FORMAT] >= ZUBE_BUS_BATCH_FORMAT &&
            ZUBE_BUS_WIRE_HAS (&header, ZUBE_BUS_F_BATCH_MAX_BYTES);
        self->broker_batch_max =
            (uint32_t)MIN (limit, MIN ((uint64_t)ZUBE_BUS_BATCH_BYTES, self->max_msg_size));
        uint32_t interval = (uint32_t)header.varint[ZUBE_BUS_F_HEARTBEAT_MS];
        if (ZUBE_BUS_WIRE_HAS (&header, ZUBE_BUS_F_HEARTBEAT_MS) && interval > 0 &&
            interval < INT_MAX / ZUBE_BUS_HEARTBEAT_LIVENESS)
            self->broker_heartbeat_ms = (int)interval;
        const char *epoch;
        size_t epoch_size = zube_bus_wire_string (&header, ZUBE_BUS_F_INSTANCE, &epoch);
        if (epoch_size && (!self->epoch || strlen (self->epoch) != epoch_size ||
                           memcmp (self->epoch, epoch, epoch_size) != 0)) {
            //  Everything sent on a DEALER before its first contact went to
            //  the broker that answers now; only a change seen on a
            //  connection that was already up means a restart.
            restarted = self->connected && self->epoch;
            free (self->epoch);
            self->epoch = strndup (epoch, epoch_size);
        }
    }
    if (!self->connected) {
        self->connected = true;
        self->backoff_ms = self->reconnect_min_ms;
        zube_log_info ("msg=\"connected to broker\" endpoint=%s epoch=%s", self->endpoint,
                       self->epoch ? self->epoch : "-");
    }
    if (restarted) {
        zube_log_info ("msg=\"broker restarted, registering again\" epoch=%s",
                       self->epoch);
        self->reconnects++;
        s_resync (self);
    }
    zmq_msg_t *payload = count == 2 ? &frames[1] : NULL;
    switch (kind) {
    case ZUBE__BUS_KIND__BUS_REPLY:
        s_handle_reply (self, &header, payload ? zmq_msg_data (payload) : NULL,
                        payload ? zmq_msg_size (payload) : 0);
        break;
    case ZUBE__BUS_KIND__BUS_REQUEST:
        zube_bus__handle_request (self, &header, payload);
        break;
    case ZUBE__BUS_KIND__BUS_DISCONNECT:
        zube_log_info ("msg=\"broker is shutting down\"");
        s_disconnect (self);
        break;
    case ZUBE__BUS_KIND__BUS_HEARTBEAT:
        break;
    default:
        zube_log_debug ("msg=\"dropped message of unexpected kind\" kind=%d", (int)kind);
        break;
    }
}

//  Reads what is waiting, up to a batch per socket, without blocking.
//  Returns the number of messages read. Each read re-resolves the socket:
//  a callback may have replaced it.
static int
s_read_sockets (zube_bus_t *self)
{
    int read = 0;
    int64_t now = s_now ();
    for (int index = 0; index < ZUBE_BUS_READ_BATCH && self->dealer; index++) {
        zmq_msg_t frames[2];
        int count = s_recv_message (self->dealer_handle, frames, 2);
        if (count == 0)
            break;
        read++;
        s_handle_broker_message (self, frames, count, now);
        for (int frame = 0; frame < count && frame < 2; frame++)
            zmq_msg_close (&frames[frame]);
        if ((index & 31) == 31)
            now = s_now ();
    }
    //  What the handlers and callbacks wrote leaves now, as one batch
    zube_bus__flush (self);
    for (int index = 0; index < ZUBE_BUS_READ_BATCH && self->sub; index++) {
        zmq_msg_t frames[3];
        int count = s_recv_message (zsock_resolve (self->sub), frames, 3);
        if (count == 0)
            break;
        read++;
        zube_bus__handle_event (self, frames, count);
        for (int frame = 0; frame < count && frame < 3; frame++)
            zmq_msg_close (&frames[frame]);
    }
    return read;
}

static void
s_run_timers (zube_bus_t *self)
{
    int64_t now = s_now ();
    int liveness = ZUBE_BUS_HEARTBEAT_LIVENESS * s_broker_interval (self);
    if (!self->dealer) {
        if (now >= self->reconnect_at)
            s_reconnect (self);
    } else if (now - self->last_heard > liveness) {
        zube_log_warn (
            "msg=\"broker silent, reconnecting\" endpoint=%s silent_ms=%" PRId64,
            self->endpoint, now - self->last_heard);
        s_disconnect (self);
    } else if (now - self->last_sent >= self->heartbeat_ms)
        s_send_heartbeat (self);
    if (self->register_again && self->dealer) {
        self->register_again = false;
        if (zhashx_size (self->services)) {
            zube_log_info ("msg=\"was silent for too long, registering again\"");
            s_send_ready_all (self);
        }
    }

    if (now >= self->next_timer)
        s_expire_pending (self, now);
    if (self->info_retry_at && now >= self->info_retry_at)
        zube_bus__want_info (self);
    zube_bus__run_backlog (self);
}

static int64_t
s_next_wakeup (zube_bus_t *self, int64_t now)
{
    int64_t wake = now + ZUBE_BUS_MAX_WAIT_MS;
    if (!self->dealer)
        wake = MIN (wake, self->reconnect_at);
    else {
        wake = MIN (wake, self->last_sent + self->heartbeat_ms);
        wake = MIN (wake, self->last_heard +
                              ZUBE_BUS_HEARTBEAT_LIVENESS * s_broker_interval (self) + 1);
    }
    wake = MIN (wake, self->next_timer);
    if (self->info_retry_at)
        wake = MIN (wake, self->info_retry_at);
    if (self->backlog_head && self->depth <= ZUBE_BUS_MAX_NESTING)
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
    if (self->last_pass && now - self->last_pass > interval &&
        self->last_heard < now - interval)
        self->last_heard = now - interval;
    //  What was written since the last pass (inside a callback that then
    //  called zube_bus_call) leaves first
    zube_bus__flush (self);
    //  Read first: under load there is always something waiting, and no
    //  system call is needed to learn it. Only when both sockets answered
    //  EAGAIN (which also took in every command libzmq had queued for
    //  them) do we sleep, in one poll(2) on their ZMQ_FD descriptors, which
    //  become readable when libzmq has news for a socket. zmq_poll would
    //  ask each socket for ZMQ_EVENTS before and after: several system
    //  calls per wait. Nothing is sent between that EAGAIN and the poll, so
    //  ZMQ_FD's edge cannot have been consumed by a send meanwhile.
    if (s_read_sockets (self) == 0) {
        int64_t wake = MIN (until, s_next_wakeup (self, now));
        int wait = wake > now ? (int)MIN (wake - now, ZUBE_BUS_MAX_WAIT_MS) : 0;
        struct pollfd fds[2];
        int count = 0;
        if (self->dealer)
            fds[count++] = (struct pollfd){.fd = self->dealer_fd, .events = POLLIN};
        if (self->sub)
            fds[count++] = (struct pollfd){.fd = zsock_fd (self->sub), .events = POLLIN};
        if (count) {
            if (wait > 0)
                poll (fds, (nfds_t)count, wait);
        } else if (wait > 0)
            zclock_sleep (wait);
        s_read_sockets (self);
    }
    s_run_timers (self);
    zube_bus__flush (self);
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
    return count > INT_MAX ? INT_MAX : (int)count;
}

//  --------------------------------------------------------------------------
//  Constructor, destructor, accessors

static void
s_service_destructor (void **item_p)
{
    zube_bus__free_item (item_p);
}

static int
s_load_certificates (zube_bus_t *self, const char *certs_dir, const char *name)
{
    if (!zsys_has_curve ()) {
        zube_log_error ("msg=\"libzmq was built without CURVE; use insecure\"");
        return -1;
    }
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/private/%s.cert_secret", certs_dir, name);
    self->cert = zcert_load (path);
    if (!self->cert || streq (zcert_secret_txt (self->cert),
                              "0000000000000000000000000000000000000000")) {
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
    const char *endpoint =
        config->endpoint ? config->endpoint : ZUBE_BUS_DEFAULT_ENDPOINT;
    if (!s_endpoint_valid (endpoint)) {
        zube_log_error ("msg=\"invalid bus endpoint\" endpoint=\"%s\"", endpoint);
        return NULL;
    }
    if (!config->insecure && (!config->certs_dir || !config->name || !*config->name)) {
        zube_log_error ("msg=\"a secure bus connection needs certs_dir and name "
                        "(or insecure)\"");
        return NULL;
    }
    if (config->heartbeat_ms < 0 || config->reconnect_min_ms < 0 ||
        config->reconnect_max_ms < 0 || config->hwm < 0) {
        zube_log_error ("msg=\"invalid bus config: negative interval or limit\"");
        return NULL;
    }
    zube_bus_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->endpoint = strdup (endpoint);
    self->insecure = config->insecure;
    self->batching = !config->no_batching;
    self->heartbeat_ms =
        config->heartbeat_ms ? config->heartbeat_ms : ZUBE_BUS_DEFAULT_HEARTBEAT_MS;
    self->max_msg_size =
        config->max_msg_size ? config->max_msg_size : ZUBE_BUS_DEFAULT_MAX_MSG_SIZE;
    if (self->max_msg_size > INT_MAX)
        self->max_msg_size = INT_MAX;
    self->hwm = config->hwm ? config->hwm : ZUBE_BUS_DEFAULT_HWM;
    self->reconnect_min_ms = config->reconnect_min_ms ? config->reconnect_min_ms : 100;
    self->reconnect_max_ms = config->reconnect_max_ms ? config->reconnect_max_ms : 5000;
    if (self->reconnect_max_ms < self->reconnect_min_ms)
        self->reconnect_max_ms = self->reconnect_min_ms;
    self->backoff_ms = self->reconnect_min_ms;
    self->next_timer = INT64_MAX;
    s_random_id (self->client_id, sizeof self->client_id);
    self->random_state = strtoull (self->client_id, NULL, 16) | 1;
    char host[256] = "localhost";
    gethostname (host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    if (asprintf (&self->instance, "%s.%d.%.8s",
                  config->name && *config->name ? config->name : host, (int)getpid (),
                  self->client_id) < 0)
        self->instance = NULL;

    self->services = zhashx_new ();
    self->subscriptions = zhashx_new ();
    self->topic_sequences = zhashx_new ();
    self->event_queue = zlistx_new ();
    if (!self->endpoint || !self->instance || !self->services || !self->subscriptions ||
        !self->topic_sequences || !self->event_queue)
        goto failed;
    zhashx_set_destructor (self->services, s_service_destructor);
    zhashx_set_destructor (self->subscriptions, zube_bus__free_item);
    zhashx_set_destructor (self->topic_sequences, zube_bus__free_item);
    zlistx_set_destructor (self->event_queue, zube_bus__event_destructor);

    if (!self->insecure &&
        s_load_certificates (self, config->certs_dir, config->name) != 0)
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
    for (int round = 0; self->pending.count && round < 8; round++) {
        size_t count;
        void **items = s_table_items (&self->pending, &count);
        uint64_t *ids = items ? malloc (count * sizeof *ids) : NULL;
        if (!ids) {
            free (items);
            break;
        }
        for (size_t at = 0; at < count; at++)
            ids[at] = ((zube_bus_pending_t *)items[at])->correlation_id;
        free (items);
        for (size_t at = 0; at < count; at++) {
            zube_bus_pending_t *pending = s_pending_lookup (self, ids[at]);
            if (!pending)
                continue;
            if (pending->internal) {
                zube_bus__table_remove (&self->pending, pending->correlation_id, pending);
                self->internal_in_flight--;
                s_pending_destroy (self, &pending);
            } else
                s_deliver (self, pending,
                           zube_bus__reply_new (ZUBE_UNAVAILABLE, "connection closed",
                                                NULL, 0, ids[at]));
        }
        free (ids);
    }
    for (size_t index = 0; self->pending.slots && index <= self->pending.mask; index++) {
        zube_bus_pending_t *pending = self->pending.slots[index].item;
        s_pending_destroy (NULL, &pending);
    }
    zube_bus__table_destroy (&self->pending);
    while (self->pending_pool) {
        zube_bus_pending_t *pending = self->pending_pool;
        self->pending_pool = pending->next_free;
        free (pending->names);
        free (pending);
    }
    //  Tell the broker we are leaving so it stops routing to us at once,
    //  and give that one message a moment to leave.
    if (self->dealer) {
        zube_bus__send_disconnect (self, "");
        zsock_set_linger (self->dealer, 100);
    }
    zsock_destroy (&self->dealer);
    zube_bus_batch_clear (&self->out);
    zsock_destroy (&self->pub);
    zsock_destroy (&self->sub);

    zube_bus__serve_destroy (self);
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
