/*  zube_bus_private - what the files of the zube_bus class share.

    zube_bus (include/zube/bus.h) is one class in three files, split only for
    size: lib/zube_bus.c (the connection, the loop and calls),
    lib/zube_bus_serve.c (serving and the reply cache) and
    lib/zube_bus_events.c (publish and subscribe). This header holds the
    class's struct and the functions the files call across; none of it is
    installed or exported (ZUBE_BUS_PRIVATE hides the symbols), and the
    `zube_bus__` prefix marks it as private to the class. */
#ifndef ZUBE_BUS_PRIVATE_H_INCLUDED
#define ZUBE_BUS_PRIVATE_H_INCLUDED

#ifndef _GNU_SOURCE
#define _GNU_SOURCE //  asprintf, strndup
#endif
#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bus.pb-c.h"
#include "zube_bus_wire.h"
#include "zube/bus.h"
#include "zube/log.h"

#define ZUBE_BUS_PRIVATE __attribute__ ((visibility ("hidden")))

//  Limits that are not (yet) part of the config.
#define ZUBE_BUS_DEFAULT_HWM 100000
#define ZUBE_BUS_DEDUP_ENTRIES 4096 //  per connection, docs/bus-protocol.md
#define ZUBE_BUS_DEDUP_MAX_BYTES                                                         \
    (64u * 1024 * 1024)                  //  a cache of 4096 x 4 MiB would be 16 GiB
#define ZUBE_BUS_MAX_NESTING 16          //  nested polls that still dispatch requests
#define ZUBE_BUS_MAX_QUEUED_EVENTS 10000 //  events published before PUB is open
#define ZUBE_BUS_RETRY_MIN_MS 50         //  back-off after "instance died"
#define ZUBE_BUS_RETRY_MAX_MS 1000
#define ZUBE_BUS_SEND_RETRY_MS 50 //  after a send refused at the HWM
#define ZUBE_BUS_INFO_TIMEOUT_MS 5000
#define ZUBE_BUS_INFO_RETRY_MS 1000
#define ZUBE_BUS_READ_BATCH 256 //  messages per socket per pass
#define ZUBE_BUS_MAX_NAME 255
#define ZUBE_BUS_MAX_WAIT_MS 1000 //  longest single zmq_poll
#define ZUBE_BUS_POOL_MAX 1024   //  pending and request records kept for reuse

//  Where a synchronous call waits for its outcome.
typedef struct {
    zube_bus_reply_t *reply;
    bool done;
} zube_bus_sync_slot_t;

//  Outcome handler for the library's own calls (bus/info).
typedef void (zube_bus_internal_fn) (zube_bus_t *self, zube_bus_reply_t *reply);

//  An open-addressing hash table (linear probing, backward-shift delete) of
//  items by a 64-bit hash. Items are found by hash and, when several share
//  one, by a match function; the table holds no keys of its own, so an
//  item that is in it must keep its key unchanged. Pending calls use the
//  correlation id itself as hash (unique: no match function needed).
typedef struct {
    uint64_t hash;
    void *item; //  NULL: free slot
} zube_bus_table_slot_t;

typedef struct {
    zube_bus_table_slot_t *slots;
    size_t mask; //  capacity - 1 (a power of 2), 0 while slots is NULL
    size_t count;
    unsigned shift; //  64 - log2 (capacity)
} zube_bus_table_t;

typedef bool (zube_bus_table_match_fn) (const void *item, const void *key);

//  A call waiting for its outcome, with what it takes to send it again.
//  Records are reused (self->pending_pool): names keeps its buffer.
typedef struct _zube_bus_pending_t zube_bus_pending_t;
struct _zube_bus_pending_t {
    uint64_t correlation_id; //  also the hash in self->pending
    uint64_t sequence;
    char *service; //  both in names
    char *method;
    char *names;
    size_t names_size;
    zmq_msg_t payload; //  sent as a copy (shared, not copied) each time
    int timeout_ms;
    int64_t deadline;    //  zclock_mono
    int64_t retry_at;    //  0, or when to send it again
    uint32_t attempt;    //  times sent so far
    uint64_t generation; //  DEALER it was last sent on; 0: not sent
    char *last_error;    //  the retryable failure behind a retry
    zube_bus_reply_fn *callback;
    void *arg;
    zube_bus_sync_slot_t *slot;
    zube_bus_internal_fn *internal;
    zube_bus_pending_t *next_free;
};

typedef struct {
    zube_bus_handler_fn *handler;
    void *arg;
} zube_bus_service_t;

typedef struct {
    zube_bus_event_fn *callback;
    void *arg;
} zube_bus_subscription_t;

//  A reply kept for answering a retried request without its handler, by
//  (client_id, sequence). An entry pushed out of the ring is reused for
//  the next reply, buffers and all.
typedef struct {
    uint64_t hash;
    uint64_t sequence;
    char *client_id;
    size_t client_id_size;
    size_t client_id_max;
    zube_status_t status;
    char *error;
    uint8_t *payload;
    size_t payload_size;
    size_t payload_max;
} zube_bus_cached_reply_t;

//  An event published before the PUB socket could be opened.
typedef struct {
    char *topic;
    uint8_t *header;
    size_t header_size;
    uint8_t *payload;
    size_t payload_size;
} zube_bus_event_t;

//  A request being served. The strings live in one buffer (strings) and
//  the payload stays in the frame it came in; records are reused
//  (self->request_pool) so that a request costs no allocation.
struct _zube_bus_request_t {
    zube_bus_t *bus;
    zube_bus_request_t *next, *prev; //  self->requests: every live request
    zube_bus_request_t *backlog_next;
    const char *service; //  these four in strings
    const char *method;
    const char *sender;
    const char *client_id;
    char *strings;
    size_t strings_max;
    uint64_t sequence;
    uint64_t correlation_id;
    uint8_t *route;
    size_t route_size;
    size_t route_max;
    int64_t deadline;
    zmq_msg_t payload;
    uint64_t dedup_hash;
    bool has_dedup;   //  the caller sent a client id and sequence
    bool in_progress; //  in self->in_progress
    bool in_handler;
    bool deferred;
    bool answered;
};

struct _zube_bus_t {
    //  Configuration
    char *endpoint;
    bool insecure;
    zcert_t *cert;    //  our keys, when secure
    char *server_key; //  the broker's public key (Z85)
    int heartbeat_ms;
    size_t max_msg_size;
    int hwm;
    int reconnect_min_ms;
    int reconnect_max_ms;
    char client_id[17];
    uint64_t random_state; //  for back-off jitter
    char *instance;

    //  Broker connection
    zsock_t *dealer;
    void *dealer_handle; //  zsock_resolve (dealer)
    int dealer_fd;       //  its ZMQ_FD
    uint64_t generation; //  counts DEALERs created
    bool connected;      //  heard from the broker on this DEALER
    char *epoch;         //  the broker's, from its heartbeats
    int broker_heartbeat_ms;
    int64_t last_heard;
    int64_t last_sent;
    bool register_again; //  we were silent too long: READY again
    int64_t last_pass;
    int64_t reconnect_at; //  while dealer is NULL
    bool batching;           //  we read and send batches (config)
    bool broker_batches;     //  the broker's heartbeat said it reads them
    uint32_t broker_batch_max; //  up to this many bytes
    zube_bus_batch_t out;    //  written during this pass of the loop
    int backoff_ms;
    uint64_t reconnects;

    //  Calls
    zube_bus_table_t pending; //  correlation id -> zube_bus_pending_t
    zube_bus_pending_t *pending_pool;
    size_t pending_pool_size;
    uint64_t next_correlation;
    uint64_t next_sequence;
    size_t internal_in_flight;
    int64_t next_timer; //  earliest pending deadline or retry

    //  Serving
    zhashx_t *services;            //  name -> zube_bus_service_t
    zube_bus_request_t *requests;  //  every live request (owned)
    zube_bus_request_t *request_pool;
    size_t request_pool_size;
    zube_bus_table_t in_progress;  //  dedup hash -> request being handled
    zube_bus_request_t *backlog_head; //  received too deep in nesting
    zube_bus_request_t *backlog_tail;
    zube_bus_table_t dedup;        //  dedup hash -> zube_bus_cached_reply_t
    zube_bus_cached_reply_t *dedup_ring[ZUBE_BUS_DEDUP_ENTRIES];
    size_t dedup_oldest;
    size_t dedup_count;
    size_t dedup_bytes;
    zube_bus_cached_reply_t *dedup_spare; //  evicted, for reuse
    int depth;           //  active zube_bus_poll / zube_bus_call frames
    uint64_t dispatched; //  callbacks run, ever

    //  Events
    zsock_t *pub;
    zsock_t *sub;
    char *publish_endpoint;
    char *subscribe_endpoint;
    uint64_t info_correlation; //  bus/info in flight
    int64_t info_retry_at;
    bool pub_wanted;
    zhashx_t *subscriptions;   //  prefix -> zube_bus_subscription_t
    zhashx_t *topic_sequences; //  topic -> uint64_t
    zlistx_t *event_queue;     //  zube_bus_event_t, oldest first
    uint64_t events_dropped;
};

//  --------------------------------------------------------------------------
//  Shared helpers

static inline int64_t
s_now (void)
{
    return zclock_mono ();
}

static inline char *
s_strdup (const char *text)
{
    return text ? strdup (text) : NULL;
}

static inline uint8_t *
s_memdup (const void *data, size_t size)
{
    if (!data || size == 0)
        return NULL;
    uint8_t *copy = malloc (size);
    if (copy)
        memcpy (copy, data, size);
    return copy;
}

//  lib/zube_bus.c
ZUBE_BUS_PRIVATE void zube_bus__free_item (void **item_p);
ZUBE_BUS_PRIVATE bool zube_bus__service_name_valid (const char *name);
ZUBE_BUS_PRIVATE void *zube_bus__table_find (const zube_bus_table_t *table, uint64_t hash,
                                             zube_bus_table_match_fn *match,
                                             const void *key);
ZUBE_BUS_PRIVATE int zube_bus__table_insert (zube_bus_table_t *table, uint64_t hash,
                                             void *item);
ZUBE_BUS_PRIVATE void zube_bus__table_remove (zube_bus_table_t *table, uint64_t hash,
                                              const void *item);
ZUBE_BUS_PRIVATE void zube_bus__table_destroy (zube_bus_table_t *table);
ZUBE_BUS_PRIVATE zube_bus_reply_t *
zube_bus__reply_new (zube_status_t status, const char *error, const void *payload,
                     size_t payload_size, uint64_t correlation_id);
ZUBE_BUS_PRIVATE void zube_bus__header_init (Zube__BusHeader *header, Zube__BusKind kind);
ZUBE_BUS_PRIVATE uint8_t *zube_bus__header_pack (const Zube__BusHeader *header,
                                                 size_t *size_p);
ZUBE_BUS_PRIVATE bool zube_bus__header_scan (zube_bus_wire_t *header, zmq_msg_t *frame);
ZUBE_BUS_PRIVATE bool zube_bus__header_scan_bytes (zube_bus_wire_t *header,
                                                   const uint8_t *data, size_t size);
ZUBE_BUS_PRIVATE int zube_bus__send_raw (zsock_t *sock, const char *topic,
                                         const uint8_t *header, size_t header_size,
                                         const void *payload, size_t payload_size,
                                         bool with_payload);
ZUBE_BUS_PRIVATE int zube_bus__send_frames (zsock_t *sock, const char *topic,
                                            const Zube__BusHeader *header,
                                            const void *payload, size_t payload_size,
                                            bool with_payload);
ZUBE_BUS_PRIVATE int zube_bus__send_broker (zube_bus_t *self,
                                            const Zube__BusHeader *header,
                                            const void *payload, size_t payload_size,
                                            bool with_payload);
ZUBE_BUS_PRIVATE int zube_bus__send_broker_msg (zube_bus_t *self, zmq_msg_t *header,
                                                zmq_msg_t *payload);
ZUBE_BUS_PRIVATE uint8_t *zube_bus__entry_start (zube_bus_t *self, size_t header_size,
                                                 const void *payload, size_t payload_size,
                                                 zmq_msg_t *header_msg, bool *queued_p);
ZUBE_BUS_PRIVATE void zube_bus__flush (zube_bus_t *self);
ZUBE_BUS_PRIVATE void zube_bus__send_ready (zube_bus_t *self, const char *service);
ZUBE_BUS_PRIVATE void zube_bus__send_disconnect (zube_bus_t *self, const char *service);
ZUBE_BUS_PRIVATE zsock_t *zube_bus__socket_new (zube_bus_t *self, int type,
                                                const char *endpoint);
ZUBE_BUS_PRIVATE uint64_t zube_bus__call_start (
    zube_bus_t *self, const char *service, const char *method, const void *payload,
    size_t payload_size, int timeout_ms, zube_bus_reply_fn *callback, void *arg,
    zube_bus_sync_slot_t *slot, zube_bus_internal_fn *internal, zube_status_t *status_p,
    char *why, size_t why_size);

//  lib/zube_bus_serve.c
ZUBE_BUS_PRIVATE void zube_bus__handle_request (zube_bus_t *self,
                                                const zube_bus_wire_t *header,
                                                zmq_msg_t *payload);
ZUBE_BUS_PRIVATE void zube_bus__dispatch_request (zube_bus_t *self,
                                                  zube_bus_request_t *request);
ZUBE_BUS_PRIVATE void zube_bus__serve_destroy (zube_bus_t *self);
ZUBE_BUS_PRIVATE void zube_bus__run_backlog (zube_bus_t *self);

//  lib/zube_bus_events.c
ZUBE_BUS_PRIVATE void zube_bus__want_info (zube_bus_t *self);
ZUBE_BUS_PRIVATE void zube_bus__handle_event (zube_bus_t *self, zmq_msg_t *frames,
                                              int count);
ZUBE_BUS_PRIVATE void zube_bus__event_destructor (void **item_p);

#endif
