/*  zube_bus - a connection to the zube broker: call, serve, publish, subscribe.

    One zube_bus_t is one DEALER connection to the broker (plus a PUB and a
    SUB socket to the broker's event endpoints, opened on first use). It is
    single-threaded: all callbacks run inside zube_bus_poll () or a waiting
    zube_bus_call (), on the thread that calls it; a callback may call any
    function here except zube_bus_destroy on its own connection. A service
    and a client can share one connection. docs/bus-client.md describes
    the behaviour in detail.

    The connection heals itself: heartbeats both ways find a dead broker
    within 3 intervals; the connection is then re-opened with back-off,
    every service is registered again, and requests in flight are sent
    again with the same client id and sequence (so a server can apply a
    retried mutation once). Every request ends with exactly one outcome:
    one reply, or one error (UNAVAILABLE, DEADLINE_EXCEEDED, ...).

    Client:
        zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t) {
            .endpoint = "tcp://127.0.0.1:7400", .insecure = true});
        zube_bus_reply_t *reply = NULL;
        int rc = zube_bus_call (bus, "bus", "services", NULL, 0, 2000, &reply);
        ...
        zube_bus_reply_destroy (&reply);
        zube_bus_destroy (&bus);

    Service:
        zube_bus_serve (bus, "echo", s_echo_handler, NULL);
        while (!zsys_interrupted)
            zube_bus_poll (bus, 100);
*/
#ifndef ZUBE_BUS_H_INCLUDED
#define ZUBE_BUS_H_INCLUDED

#include "zube/status.h"
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Defaults (docs/bus-protocol.md)
#define ZUBE_BUS_DEFAULT_ENDPOINT "tcp://127.0.0.1:7400"
#define ZUBE_BUS_DEFAULT_HEARTBEAT_MS 1000
#define ZUBE_BUS_DEFAULT_TIMEOUT_MS 10000
#define ZUBE_BUS_DEFAULT_MAX_MSG_SIZE (4 * 1024 * 1024)
#define ZUBE_BUS_HEARTBEAT_LIVENESS 3

typedef struct _zube_bus_t zube_bus_t;
typedef struct _zube_bus_request_t zube_bus_request_t;

typedef struct {
    //  Broker endpoint; ZUBE_BUS_DEFAULT_ENDPOINT when NULL.
    const char *endpoint;
    //  Security: either insecure, or a certificate directory laid out as
    //  docs/bus-protocol.md (Security) says: broker.cert (the broker's public
    //  key) and private/<name>.cert_secret (this peer's keys), with name the
    //  name of this peer's certificate. name also prefixes the instance name.
    bool insecure;
    const char *certs_dir;
    const char *name;
    //  0 means the default.
    int heartbeat_ms;
    size_t max_msg_size;
    //  Reconnect back-off bounds, 0 means defaults (100 ms .. 5 s).
    int reconnect_min_ms;
    int reconnect_max_ms;
    //  Send and receive high-water mark of every socket, in messages;
    //  0 means 100000 (as the broker).
    int hwm;
    //  true: never send or read batches (docs/bus-protocol.md, Batches);
    //  every request and reply is its own message, as with a broker that
    //  does not read them.
    bool no_batching;
} zube_bus_config_t;

//  The outcome of a call. payload is owned by the reply, NULL when empty.
typedef struct {
    zube_status_t status;
    char *error; //  human text when status != ZUBE_OK, else NULL
    uint8_t *payload;
    size_t payload_size;
    uint64_t correlation_id;
} zube_bus_reply_t;

void zube_bus_reply_destroy (zube_bus_reply_t **self_p);

//  Opens a connection. Returns NULL (and logs why) when the config is
//  unusable: bad endpoint, unreadable certificates. Connecting itself is
//  asynchronous: a broker that is not up yet is retried.
zube_bus_t *zube_bus_new (const zube_bus_config_t *config);
//  Closes the connection (telling the broker with DISCONNECT). Calls still
//  waiting get their one outcome here, UNAVAILABLE "connection closed";
//  deferred requests not yet answered are freed. Never call it from inside
//  one of this connection's callbacks.
void zube_bus_destroy (zube_bus_t **self_p);

//  A client id unique to this connection, sent with every request.
const char *zube_bus_client_id (zube_bus_t *self);

//  The instance name sent with READY ("<name or host>.<pid>.<id>"), as the
//  broker lists it and names it in "instance ... died" errors.
const char *zube_bus_instance (zube_bus_t *self);

//  Synchronous call with a timeout (<= 0: ZUBE_BUS_DEFAULT_TIMEOUT_MS).
//  Returns 0 and a reply (whose status may be an error the service
//  answered), or -1 with *reply_p holding a reply whose status says why
//  nothing came back (UNAVAILABLE, DEADLINE_EXCEEDED, PAYLOAD_TOO_LARGE,
//  whoever produced it; BAD_REQUEST for an invalid service or method name).
//  The reply is always set and must be destroyed. Other callbacks (served
//  requests, events, async replies) keep running while it waits, and may
//  themselves call zube_bus_call. After UNAVAILABLE "instance ... died" the
//  request is sent again while the deadline allows.
int zube_bus_call (zube_bus_t *self, const char *service, const char *method,
                   const void *payload, size_t payload_size, int timeout_ms,
                   zube_bus_reply_t **reply_p);

//  Same with protobuf messages: packs req (may be NULL), unpacks the reply
//  payload with reply_desc into *reply_msg_p when the status is OK.
//  Returns the status; error text (if any) is copied into error.
zube_status_t zube_bus_call_msg (zube_bus_t *self, const char *service,
                                 const char *method, const ProtobufCMessage *req,
                                 const ProtobufCMessageDescriptor *reply_desc,
                                 int timeout_ms, ProtobufCMessage **reply_msg_p,
                                 char *error, size_t error_size);

//  Asynchronous call: returns the correlation id (> 0), or 0 when the
//  request could not even be queued (the callback is then not called).
//  The callback is called exactly once, from the loop (zube_bus_poll, or a
//  zube_bus_call waiting meanwhile), or with UNAVAILABLE from
//  zube_bus_destroy if the call is still waiting then; it owns the reply
//  (it must destroy it). A NULL callback discards the outcome.
typedef void (zube_bus_reply_fn) (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg);
uint64_t zube_bus_call_async (zube_bus_t *self, const char *service, const char *method,
                              const void *payload, size_t payload_size, int timeout_ms,
                              zube_bus_reply_fn *callback, void *arg);

//  Number of async and sync calls waiting for an outcome.
size_t zube_bus_in_flight (zube_bus_t *self);

//  Serving. The handler is called from zube_bus_poll for every request to
//  the service. It answers with zube_bus_respond (now or later, exactly
//  once); a handler that returns without answering and without calling
//  zube_bus_request_defer gets INTERNAL "no reply" sent for it.
typedef void (zube_bus_handler_fn) (zube_bus_t *bus, zube_bus_request_t *request,
                                    void *arg);

//  Registers (READY) under service name, and again after every reconnect.
//  Returns 0, or -1 if the name is invalid or already served here.
int zube_bus_serve (zube_bus_t *self, const char *service, zube_bus_handler_fn *handler,
                    void *arg);
//  Stops serving (DISCONNECT for that service). Returns -1 if not served.
int zube_bus_unserve (zube_bus_t *self, const char *service);

//  Request accessors, valid until the request is answered.
const char *zube_bus_request_service (zube_bus_request_t *request);
const char *zube_bus_request_method (zube_bus_request_t *request);
//  The authenticated identity of the caller (certificate name), stamped by
//  the broker; "anonymous" when the broker runs insecure.
const char *zube_bus_request_sender (zube_bus_request_t *request);
const char *zube_bus_request_client_id (zube_bus_request_t *request);
uint64_t zube_bus_request_sequence (zube_bus_request_t *request);
//  Milliseconds left until the caller's deadline (0 when it has passed).
int zube_bus_request_remaining_ms (zube_bus_request_t *request);
const uint8_t *zube_bus_request_payload (zube_bus_request_t *request, size_t *size_p);
//  Unpacks the payload; NULL (and a BAD_REQUEST should follow) on bad bytes.
//  Free the message with protobuf_c_message_free_unpacked (msg, NULL).
ProtobufCMessage *zube_bus_request_unpack (zube_bus_request_t *request,
                                           const ProtobufCMessageDescriptor *desc);
//  Same, but on bad bytes answers BAD_REQUEST itself (which ends the
//  request) and returns NULL: the usual first line of a handler.
ProtobufCMessage *
zube_bus_request_unpack_or_reject (zube_bus_request_t *request,
                                   const ProtobufCMessageDescriptor *desc);

//  Keeps the request alive after the handler returns.
void zube_bus_request_defer (zube_bus_request_t *request);

//  Answers a request and frees it. error may be NULL when status is OK.
//  The reply is also kept (last 4096 per connection) to answer a retry of
//  the same (client_id, sequence) without calling the handler again.
void zube_bus_respond (zube_bus_request_t *request, zube_status_t status,
                       const char *error, const void *payload, size_t payload_size);
void zube_bus_respond_msg (zube_bus_request_t *request, const ProtobufCMessage *reply);
void zube_bus_respond_error (zube_bus_request_t *request, zube_status_t status,
                             const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Events. Topics are dot/slash separated names ("pods/default",
//  "node/sim-0001"); a subscription matches by prefix. Publishing returns
//  0 when the event was sent or queued (events published before the
//  broker told where to publish are kept, up to 10000), -1 on a bad topic
//  or a payload over max_msg_size. Delivery is best effort, as ZeroMQ
//  PUB/SUB: a subscriber that has just (re)connected may miss events.
//  Subscribing a prefix twice returns -1; when several prefixes match a
//  topic, each callback is called once.
int zube_bus_publish (zube_bus_t *self, const char *topic, const void *payload,
                      size_t payload_size);
typedef void (zube_bus_event_fn) (zube_bus_t *bus, const char *topic,
                                  const uint8_t *payload, size_t payload_size, void *arg);
int zube_bus_subscribe (zube_bus_t *self, const char *topic_prefix,
                        zube_bus_event_fn *callback, void *arg);
int zube_bus_unsubscribe (zube_bus_t *self, const char *topic_prefix);

//  Runs the connection for up to timeout_ms (0: only what is ready; -1:
//  until something happened): receives, dispatches callbacks, sends
//  heartbeats, expires deadlines, reconnects. Returns the number of
//  callbacks dispatched, or -1 when interrupted (zsys_interrupted).
int zube_bus_poll (zube_bus_t *self, int timeout_ms);

//  True while the broker answers heartbeats.
bool zube_bus_connected (zube_bus_t *self);

//  How often this connection reconnected to the broker.
uint64_t zube_bus_reconnects (zube_bus_t *self);

#ifdef __cplusplus
}
#endif
#endif
