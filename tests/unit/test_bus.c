/*  test_bus - the bus client library (lib/zube_bus.c) against a real broker.

    One zube-broker (from the build tree, --insecure, heartbeat 200 ms) is
    started for the whole file; cases that need it start their own (secure
    mode). Service instances and extra clients run as separate processes:
    this program re-executes itself with --child-service / --child-client,
    so every child has a fresh ZeroMQ context. */
#define _GNU_SOURCE //  strndup, and what zube_testproc.h needs

#include "../zt_bus_batch.h"
#include "../zt_cluster.h"

#include "bus.pb-c.h"
#include "zube/bus.h"
#include "zube/certs.h"
#include "zube/log.h"
#include <czmq.h>

#define HEARTBEAT_MS 200

static char s_endpoint[64];
static char *s_dir;
static pid_t s_broker;
static pid_t s_children[64];
static int s_child_count;

//  --------------------------------------------------------------------------
//  Processes

static pid_t
s_start_broker (const char *endpoint, const char *certs_dir, const char *log_name)
{
    char log_path[512];
    snprintf (log_path, sizeof log_path, "%s/%s", s_dir, log_name);
    return zt_broker_start (endpoint, certs_dir, HEARTBEAT_MS, 0, log_path);
}

//  Starts this program again as a child; argv without argv [0].
static pid_t
s_start_child (const char *mode, const char *arg1, const char *arg2, const char *arg3)
{
    char log_path[512];
    snprintf (log_path, sizeof log_path, "%s/children.log", s_dir);
    char *argv[] = {"/proc/self/exe", (char *)mode, s_endpoint, (char *)arg1,
                    (char *)arg2,     (char *)arg3, NULL};
    pid_t pid = zt_spawn_tied (argv, log_path);
    if (pid > 0 && s_child_count < 64)
        s_children[s_child_count++] = pid;
    return pid;
}

static void
s_stop_children (void)
{
    for (int index = 0; index < s_child_count; index++)
        zt_stop (s_children[index], SIGTERM, 3000);
    s_child_count = 0;
}

static zube_bus_t *
s_bus_new (void)
{
    return zube_bus_new (&(zube_bus_config_t){
        .endpoint = s_endpoint, .insecure = true, .heartbeat_ms = HEARTBEAT_MS});
}

//  Number of live instances of service the broker lists.
static int
s_instances (zube_bus_t *bus, const char *service)
{
    Zube__BusServicesReply *reply = NULL;
    zube_status_t status = zube_bus_call_msg (bus, "bus", "services", NULL,
                                              &zube__bus_services_reply__descriptor, 2000,
                                              (ProtobufCMessage **)&reply, NULL, 0);
    if (status != ZUBE_OK)
        return -1;
    int count = 0;
    for (size_t index = 0; index < reply->n_services; index++)
        if (streq (reply->services[index]->name, service))
            count += (int)reply->services[index]->n_instances;
    zube__bus_services_reply__free_unpacked (reply, NULL);
    return count;
}

static bool
s_wait_instances (zube_bus_t *bus, const char *service, int count, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        if (s_instances (bus, service) == count)
            return true;
        zube_bus_poll (bus, 50);
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Child: a service instance. Methods:
//    echo    the payload back
//    pid     this process's pid
//    sender  "<sender> <client_id>"

static void
s_child_handler (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    const char *method = zube_bus_request_method (request);
    size_t size;
    const uint8_t *payload = zube_bus_request_payload (request, &size);
    char text[256];
    if (streq (method, "echo"))
        zube_bus_respond (request, ZUBE_OK, NULL, payload, size);
    else if (streq (method, "pid")) {
        snprintf (text, sizeof text, "%d", (int)getpid ());
        zube_bus_respond (request, ZUBE_OK, NULL, text, strlen (text));
    } else if (streq (method, "sender")) {
        snprintf (text, sizeof text, "%s %s", zube_bus_request_sender (request),
                  zube_bus_request_client_id (request));
        zube_bus_respond (request, ZUBE_OK, NULL, text, strlen (text));
    } else
        zube_bus_respond_error (request, ZUBE_NOT_IMPLEMENTED, "no method %s", method);
}

static int
s_child_service (const char *endpoint, const char *service)
{
    zube_log_set_component ("test-service");
    zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t){
        .endpoint = endpoint, .insecure = true, .heartbeat_ms = HEARTBEAT_MS});
    if (!bus || zube_bus_serve (bus, service, s_child_handler, NULL) != 0)
        return 2;
    while (zube_bus_poll (bus, 100) >= 0)
        ;
    zube_bus_destroy (&bus);
    return 0;
}

//  Child: a client making `count` synchronous echo calls with payloads of
//  its own; exits with the number of wrong or missing replies (max 100).
static int
s_child_client (const char *endpoint, const char *service, int count)
{
    zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t){
        .endpoint = endpoint, .insecure = true, .heartbeat_ms = HEARTBEAT_MS});
    if (!bus)
        return 100;
    int wrong = 0;
    for (int index = 0; index < count; index++) {
        char text[64];
        snprintf (text, sizeof text, "child-%d-call-%d", (int)getpid (), index);
        zube_bus_reply_t *reply = NULL;
        int rc = zube_bus_call (bus, service, "echo", text, strlen (text), 10000, &reply);
        if (rc != 0 || reply->status != ZUBE_OK || reply->payload_size != strlen (text) ||
            memcmp (reply->payload, text, strlen (text)) != 0)
            wrong++;
        zube_bus_reply_destroy (&reply);
    }
    zube_bus_destroy (&bus);
    return wrong > 100 ? 100 : wrong;
}

//  --------------------------------------------------------------------------
//  In-process services used by several cases

typedef struct {
    int calls;
    zube_bus_request_t *deferred;
} s_counter_t;

static void
s_echo_handler (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    s_counter_t *counter = arg;
    if (counter)
        counter->calls++;
    size_t size;
    const uint8_t *payload = zube_bus_request_payload (request, &size);
    const char *method = zube_bus_request_method (request);
    if (streq (method, "silent"))
        return; //  neither answers nor defers
    if (streq (method, "defer")) {
        zube_bus_request_defer (request);
        counter->deferred = request;
        return;
    }
    if (streq (method, "ping")) {
        Zube__BusEcho *echo = (Zube__BusEcho *)zube_bus_request_unpack_or_reject (
            request, &zube__bus_echo__descriptor);
        if (!echo)
            return;
        zube_bus_respond_msg (request, &echo->base);
        protobuf_c_message_free_unpacked (&echo->base, NULL);
        return;
    }
    if (streq (method, "count")) {
        char text[32];
        snprintf (text, sizeof text, "call-%d", counter->calls);
        zube_bus_respond (request, ZUBE_OK, NULL, text, strlen (text));
        return;
    }
    zube_bus_respond (request, ZUBE_OK, NULL, payload, size);
}

//  --------------------------------------------------------------------------
//  Cases

static void
test_new_rejects_bad_config (void)
{
    zube_bus_t *bus =
        zube_bus_new (&(zube_bus_config_t){.endpoint = "nonsense", .insecure = true});
    ZT_ASSERT (bus == NULL);
    //  Neither insecure nor certificates.
    bus = zube_bus_new (&(zube_bus_config_t){.endpoint = s_endpoint});
    ZT_ASSERT (bus == NULL);
    //  A certificate directory without the certificates.
    bus = zube_bus_new (&(zube_bus_config_t){
        .endpoint = s_endpoint, .certs_dir = s_dir, .name = "nobody"});
    ZT_ASSERT (bus == NULL);
    bus = s_bus_new ();
    ZT_ASSERT (bus);
    ZT_ASSERT_INT_EQ (strlen (zube_bus_client_id (bus)), 16);
    zube_bus_t *other = s_bus_new ();
    ZT_ASSERT (strcmp (zube_bus_client_id (bus), zube_bus_client_id (other)) != 0);
    zube_bus_destroy (&other);
    zube_bus_destroy (&bus);
    ZT_ASSERT (bus == NULL);
}

static void
test_call_broker_ping (void)
{
    zube_bus_t *bus = s_bus_new ();
    ZT_ASSERT (bus);
    Zube__BusEcho echo = ZUBE__BUS_ECHO__INIT;
    echo.has_data = 1;
    echo.data.data = (uint8_t *)"hello";
    echo.data.len = 5;
    Zube__BusEcho *answer = NULL;
    char error[256];
    zube_status_t status =
        zube_bus_call_msg (bus, "bus", "ping", &echo.base, &zube__bus_echo__descriptor,
                           5000, (ProtobufCMessage **)&answer, error, sizeof error);
    ZT_ASSERT_MSG (status == ZUBE_OK, "status %d: %s", status, error);
    ZT_ASSERT (answer && answer->has_data && answer->data.len == 5);
    ZT_ASSERT (memcmp (answer->data.data, "hello", 5) == 0);
    zube__bus_echo__free_unpacked (answer, NULL);
    ZT_ASSERT (zube_bus_connected (bus));
    ZT_ASSERT_INT_EQ (zube_bus_in_flight (bus), 0);
    zube_bus_destroy (&bus);
}

//  The same connection serves and calls: the served request is handled
//  inside the synchronous call's own loop.
static void
test_call_sync_served_by_self (void)
{
    zube_bus_t *bus = s_bus_new ();
    s_counter_t counter = {0};
    ZT_ASSERT_INT_EQ (zube_bus_serve (bus, "self-echo", s_echo_handler, &counter), 0);
    ZT_ASSERT_INT_EQ (zube_bus_serve (bus, "self-echo", s_echo_handler, &counter), -1);
    ZT_ASSERT_INT_EQ (zube_bus_serve (bus, "bus", s_echo_handler, &counter), -1);
    ZT_ASSERT_INT_EQ (zube_bus_serve (bus, "has space", s_echo_handler, &counter), -1);
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (bus, "self-echo", "echo", "abc", 3, 5000, &reply);
    ZT_ASSERT_MSG (rc == 0, "rc %d status %d %s", rc, reply->status, reply->error);
    ZT_ASSERT_INT_EQ (reply->status, ZUBE_OK);
    ZT_ASSERT (reply->error == NULL);
    ZT_ASSERT_INT_EQ (reply->payload_size, 3);
    ZT_ASSERT (memcmp (reply->payload, "abc", 3) == 0);
    zube_bus_reply_destroy (&reply);
    ZT_ASSERT_INT_EQ (counter.calls, 1);

    //  An empty payload, and a protobuf round trip through a handler.
    rc = zube_bus_call (bus, "self-echo", "echo", NULL, 0, 5000, &reply);
    ZT_ASSERT_INT_EQ (rc, 0);
    ZT_ASSERT_INT_EQ (reply->payload_size, 0);
    zube_bus_reply_destroy (&reply);
    Zube__BusEcho echo = ZUBE__BUS_ECHO__INIT;
    echo.has_sent_ns = 1;
    echo.sent_ns = 42;
    Zube__BusEcho *answer = NULL;
    zube_status_t status = zube_bus_call_msg (bus, "self-echo", "ping", &echo.base,
                                              &zube__bus_echo__descriptor, 5000,
                                              (ProtobufCMessage **)&answer, NULL, 0);
    ZT_ASSERT_INT_EQ (status, ZUBE_OK);
    ZT_ASSERT (answer && answer->sent_ns == 42);
    zube__bus_echo__free_unpacked (answer, NULL);

    //  Bad bytes: the handler's unpack_or_reject answers BAD_REQUEST.
    char error[256];
    rc = zube_bus_call (bus, "self-echo", "ping", "\xff\xff\xff", 3, 5000, &reply);
    ZT_ASSERT_INT_EQ (rc, 0);
    ZT_ASSERT_INT_EQ (reply->status, ZUBE_BAD_REQUEST);
    ZT_ASSERT_MSG (reply->error && strstr (reply->error, "BusEcho"), "error: %s",
                   reply->error);
    zube_bus_reply_destroy (&reply);

    //  A handler that neither answers nor defers: INTERNAL "no reply".
    status = zube_bus_call_msg (bus, "self-echo", "silent", NULL, NULL, 5000, NULL, error,
                                sizeof error);
    ZT_ASSERT_INT_EQ (status, ZUBE_INTERNAL);
    ZT_ASSERT_STR_EQ (error, "no reply");

    ZT_ASSERT_INT_EQ (zube_bus_unserve (bus, "self-echo"), 0);
    ZT_ASSERT_INT_EQ (zube_bus_unserve (bus, "self-echo"), -1);
    zube_bus_destroy (&bus);
}

typedef struct {
    zube_bus_request_t *pending_inner;
} s_nested_t;

//  "outer" calls "inner" synchronously from inside its handler, on the
//  same connection: three levels of nested loops.
static void
s_outer_handler (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    size_t size;
    const uint8_t *payload = zube_bus_request_payload (request, &size);
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (bus, "nest-inner", "echo", payload, size, 5000, &reply);
    if (rc != 0) {
        zube_bus_respond_error (request, reply->status, "inner failed: %s", reply->error);
        zube_bus_reply_destroy (&reply);
        return;
    }
    char text[128];
    snprintf (text, sizeof text, "outer(%.*s)", (int)reply->payload_size,
              (const char *)reply->payload);
    zube_bus_reply_destroy (&reply);
    zube_bus_respond (request, ZUBE_OK, NULL, text, strlen (text));
}

static void
test_nested_sync_calls (void)
{
    zube_bus_t *bus = s_bus_new ();
    ZT_ASSERT_INT_EQ (zube_bus_serve (bus, "nest-outer", s_outer_handler, NULL), 0);
    ZT_ASSERT_INT_EQ (zube_bus_serve (bus, "nest-inner", s_echo_handler, NULL), 0);
    for (int round = 0; round < 5; round++) {
        zube_bus_reply_t *reply = NULL;
        int rc = zube_bus_call (bus, "nest-outer", "echo", "x", 1, 5000, &reply);
        ZT_ASSERT_MSG (rc == 0, "status %d %s", reply->status, reply->error);
        ZT_ASSERT_INT_EQ (reply->status, ZUBE_OK);
        ZT_ASSERT_INT_EQ (reply->payload_size, 8);
        ZT_ASSERT (memcmp (reply->payload, "outer(x)", 8) == 0);
        zube_bus_reply_destroy (&reply);
    }
    zube_bus_destroy (&bus);
}

typedef struct {
    int index;
    int outcomes;
    bool wrong;
    char expected[64];
    zube_status_t status;
    char error[256];
} s_async_slot_t;

static void
s_async_reply (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg)
{
    s_async_slot_t *slot = arg;
    slot->outcomes++;
    slot->status = reply->status;
    snprintf (slot->error, sizeof slot->error, "%s", reply->error ? reply->error : "");
    if (reply->status != ZUBE_OK || reply->payload_size != strlen (slot->expected) ||
        (reply->payload_size &&
         memcmp (reply->payload, slot->expected, reply->payload_size) != 0))
        slot->wrong = true;
    zube_bus_reply_destroy (&reply);
}

//  100 calls in flight at once to a service in another process; every one
//  ends with its own reply, once.
static void
test_async_100_in_flight (void)
{
    ZT_ASSERT (s_start_child ("--child-service", "async-echo", NULL, NULL) > 0);
    zube_bus_t *bus = s_bus_new ();
    ZT_ASSERT (s_wait_instances (bus, "async-echo", 1, 10000));
    s_async_slot_t slots[100];
    memset (slots, 0, sizeof slots);
    for (int index = 0; index < 100; index++) {
        slots[index].index = index;
        snprintf (slots[index].expected, sizeof slots[index].expected, "payload-%d",
                  index);
        uint64_t id = zube_bus_call_async (
            bus, "async-echo", "echo", slots[index].expected,
            strlen (slots[index].expected), 10000, s_async_reply, &slots[index]);
        ZT_ASSERT (id > 0);
    }
    ZT_ASSERT_INT_EQ (zube_bus_in_flight (bus), 100);
    int64_t until = zt_now_ms () + 15000;
    while (zube_bus_in_flight (bus) > 0 && zt_now_ms () < until)
        zube_bus_poll (bus, 100);
    ZT_ASSERT_INT_EQ (zube_bus_in_flight (bus), 0);
    for (int index = 0; index < 100; index++) {
        ZT_ASSERT_INT_EQ (slots[index].outcomes, 1);
        ZT_ASSERT_MSG (!slots[index].wrong, "call %d got a wrong reply", index);
    }
    zube_bus_destroy (&bus);
    s_stop_children ();
}

static void
test_sender_identity (void)
{
    ZT_ASSERT (s_start_child ("--child-service", "whois", NULL, NULL) > 0);
    zube_bus_t *bus = s_bus_new ();
    ZT_ASSERT (s_wait_instances (bus, "whois", 1, 10000));
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (bus, "whois", "sender", NULL, 0, 5000, &reply);
    ZT_ASSERT_INT_EQ (rc, 0);
    char expected[128];
    snprintf (expected, sizeof expected, "anonymous %s", zube_bus_client_id (bus));
    char *text = strndup ((char *)reply->payload, reply->payload_size);
    zube_bus_reply_destroy (&reply);
    ZT_ASSERT_STR_EQ (text, expected);
    free (text);
    zube_bus_destroy (&bus);
    s_stop_children ();
}

//  Three instances in three processes: every one gets a share.
static void
test_load_balancing (void)
{
    pid_t pids[3];
    for (int index = 0; index < 3; index++) {
        pids[index] = s_start_child ("--child-service", "lb", NULL, NULL);
        ZT_ASSERT (pids[index] > 0);
    }
    zube_bus_t *bus = s_bus_new ();
    ZT_ASSERT (s_wait_instances (bus, "lb", 3, 10000));
    int shares[3] = {0, 0, 0};
    int other = 0;
    for (int index = 0; index < 60; index++) {
        zube_bus_reply_t *reply = NULL;
        int rc = zube_bus_call (bus, "lb", "pid", NULL, 0, 5000, &reply);
        ZT_ASSERT_MSG (rc == 0, "call %d: %s", index, reply->error);
        char text[32];
        snprintf (text, sizeof text, "%.*s", (int)reply->payload_size,
                  (char *)reply->payload);
        zube_bus_reply_destroy (&reply);
        pid_t pid = atoi (text);
        int which = pid == pids[0] ? 0 : pid == pids[1] ? 1 : pid == pids[2] ? 2 : -1;
        if (which < 0)
            other++;
        else
            shares[which]++;
    }
    ZT_ASSERT_INT_EQ (other, 0);
    for (int index = 0; index < 3; index++)
        ZT_ASSERT_MSG (shares[index] > 0, "instance %d got no request (%d/%d/%d)", index,
                       shares[0], shares[1], shares[2]);
    zube_bus_destroy (&bus);
    s_stop_children ();
}

static void
test_unavailable_and_deadline (void)
{
    zube_bus_t *bus = s_bus_new ();
    zube_bus_reply_t *reply = NULL;
    int64_t started = zt_now_ms ();
    int rc = zube_bus_call (bus, "nobody-serves-this", "get", "x", 1, 600, &reply);
    ZT_ASSERT_INT_EQ (rc, -1);
    ZT_ASSERT_MSG (reply->status == ZUBE_UNAVAILABLE ||
                       reply->status == ZUBE_DEADLINE_EXCEEDED,
                   "status %d", reply->status);
    ZT_ASSERT (reply->error && *reply->error);
    ZT_ASSERT (zt_now_ms () - started < 5000);
    zube_bus_reply_destroy (&reply);

    //  Invalid names fail at once.
    rc = zube_bus_call (bus, "", "get", NULL, 0, 600, &reply);
    ZT_ASSERT_INT_EQ (rc, -1);
    ZT_ASSERT_INT_EQ (reply->status, ZUBE_BAD_REQUEST);
    zube_bus_reply_destroy (&reply);
    ZT_ASSERT_INT_EQ (
        zube_bus_call_async (bus, "x", "", NULL, 0, 600, s_async_reply, NULL), 0);
    ZT_ASSERT_INT_EQ (zube_bus_in_flight (bus), 0);
    zube_bus_destroy (&bus);
}

static void
test_payload_too_large (void)
{
    zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t){.endpoint = s_endpoint,
                                                         .insecure = true,
                                                         .heartbeat_ms = HEARTBEAT_MS,
                                                         .max_msg_size = 1024});
    ZT_ASSERT (bus);
    char big[2048];
    memset (big, 'x', sizeof big);
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (bus, "anything", "put", big, sizeof big, 1000, &reply);
    ZT_ASSERT_INT_EQ (rc, -1);
    ZT_ASSERT_INT_EQ (reply->status, ZUBE_PAYLOAD_TOO_LARGE);
    zube_bus_reply_destroy (&reply);
    ZT_ASSERT_INT_EQ (zube_bus_call_async (bus, "anything", "put", big, sizeof big, 1000,
                                           s_async_reply, NULL),
                      0);
    ZT_ASSERT_INT_EQ (zube_bus_publish (bus, "topic", big, sizeof big), -1);

    //  A handler's reply over the limit becomes PAYLOAD_TOO_LARGE too.
    s_counter_t counter = {0};
    ZT_ASSERT_INT_EQ (zube_bus_serve (bus, "big-echo", s_echo_handler, &counter), 0);
    rc = zube_bus_call (bus, "big-echo", "echo", big, 1000, 5000, &reply);
    ZT_ASSERT_INT_EQ (rc, 0);
    ZT_ASSERT_INT_EQ (reply->payload_size, 1000);
    zube_bus_reply_destroy (&reply);
    zube_bus_destroy (&bus);
}

//  A deferred request answered later, from outside its handler.
static void
test_deferred_reply (void)
{
    zube_bus_t *service = s_bus_new ();
    zube_bus_t *client = s_bus_new ();
    s_counter_t counter = {0};
    ZT_ASSERT_INT_EQ (zube_bus_serve (service, "deferring", s_echo_handler, &counter), 0);
    s_async_slot_t slot = {.expected = "later"};
    ZT_ASSERT (zube_bus_call_async (client, "deferring", "defer", NULL, 0, 5000,
                                    s_async_reply, &slot) > 0);
    int64_t until = zt_now_ms () + 5000;
    while (!counter.deferred && zt_now_ms () < until) {
        zube_bus_poll (client, 10);
        zube_bus_poll (service, 10);
    }
    ZT_ASSERT (counter.deferred);
    ZT_ASSERT (zube_bus_request_remaining_ms (counter.deferred) > 0);
    ZT_ASSERT_STR_EQ (zube_bus_request_service (counter.deferred), "deferring");
    ZT_ASSERT_INT_EQ (zube_bus_request_sequence (counter.deferred) > 0, 1);
    //  Nothing more for a while: the request waits for us.
    for (int index = 0; index < 5; index++) {
        zube_bus_poll (client, 10);
        zube_bus_poll (service, 10);
    }
    ZT_ASSERT_INT_EQ (slot.outcomes, 0);
    zube_bus_respond (counter.deferred, ZUBE_OK, NULL, "later", 5);
    until = zt_now_ms () + 5000;
    while (slot.outcomes == 0 && zt_now_ms () < until) {
        zube_bus_poll (client, 10);
        zube_bus_poll (service, 10);
    }
    ZT_ASSERT_INT_EQ (slot.outcomes, 1);
    ZT_ASSERT (!slot.wrong);
    zube_bus_destroy (&client);
    zube_bus_destroy (&service);
}

//  A raw DEALER speaking the protocol sends the same (client_id, sequence)
//  twice: the handler runs once and the retry gets the cached reply. A
//  repeat that arrives while the first is still being handled is ignored
//  and the one reply goes to the newest copy.
static zsock_t *
s_raw_dealer (void)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, 0);
    zsock_connect (dealer, "%s", s_endpoint);
    return dealer;
}

static void
s_raw_request (zsock_t *dealer, const char *method, uint64_t sequence,
               uint64_t correlation_id)
{
    Zube__BusHeader header = ZUBE__BUS_HEADER__INIT;
    header.has_version = 1;
    header.version = ZUBE__BUS_VERSION__BUS_VERSION_1;
    header.has_kind = 1;
    header.kind = ZUBE__BUS_KIND__BUS_REQUEST;
    header.service = "dedup";
    header.method = (char *)method;
    header.has_correlation_id = 1;
    header.correlation_id = correlation_id;
    header.has_deadline_ms = 1;
    header.deadline_ms = 5000;
    header.client_id = "raw-client";
    header.has_sequence = 1;
    header.sequence = sequence;
    header.has_attempt = 1;
    header.attempt = 1;
    uint8_t buffer[256];
    size_t size = zube__bus_header__pack (&header, buffer);
    zmq_send (zsock_resolve (dealer), buffer, size, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (dealer), "", 0, 0);
}

//  Polls the service while waiting for one reply on the raw socket; returns
//  its correlation id (0: none) and copies the payload into text.
static uint64_t
s_raw_reply (zsock_t *dealer, zube_bus_t *service, char *text, size_t text_size,
             int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        zmsg_t *msg = zmsg_recv (dealer);
        if (msg) {
            zframe_t *frame = zmsg_first (msg);
            Zube__BusHeader *header =
                zube__bus_header__unpack (NULL, zframe_size (frame), zframe_data (frame));
            zframe_t *payload = zmsg_next (msg);
            uint64_t id = 0;
            if (header && header->kind == ZUBE__BUS_KIND__BUS_REPLY) {
                id = header->correlation_id;
                snprintf (text, text_size, "%.*s",
                          payload ? (int)zframe_size (payload) : 0,
                          payload ? (char *)zframe_data (payload) : "");
            }
            if (header)
                zube__bus_header__free_unpacked (header, NULL);
            zmsg_destroy (&msg);
            if (id)
                return id;
        }
        zube_bus_poll (service, 10);
    }
    return 0;
}

static void
test_dedup_retried_request (void)
{
    zube_bus_t *service = s_bus_new ();
    s_counter_t counter = {0};
    ZT_ASSERT_INT_EQ (zube_bus_serve (service, "dedup", s_echo_handler, &counter), 0);
    zsock_t *dealer = s_raw_dealer ();
    char text[64] = "";

    s_raw_request (dealer, "count", 7, 1);
    ZT_ASSERT_INT_EQ (s_raw_reply (dealer, service, text, sizeof text, 5000), 1);
    ZT_ASSERT_STR_EQ (text, "call-1");
    s_raw_request (dealer, "count", 7, 2);
    ZT_ASSERT_INT_EQ (s_raw_reply (dealer, service, text, sizeof text, 5000), 2);
    ZT_ASSERT_STR_EQ (text, "call-1");
    ZT_ASSERT_INT_EQ (counter.calls, 1);
    //  A new sequence is a new request.
    s_raw_request (dealer, "count", 8, 3);
    ZT_ASSERT_INT_EQ (s_raw_reply (dealer, service, text, sizeof text, 5000), 3);
    ZT_ASSERT_STR_EQ (text, "call-2");

    //  In progress: the repeat is ignored, the one reply goes to it.
    s_raw_request (dealer, "defer", 9, 4);
    int64_t until = zt_now_ms () + 5000;
    while (!counter.deferred && zt_now_ms () < until)
        zube_bus_poll (service, 10);
    ZT_ASSERT (counter.deferred);
    s_raw_request (dealer, "defer", 9, 5);
    ZT_ASSERT_INT_EQ (s_raw_reply (dealer, service, text, sizeof text, 300), 0);
    ZT_ASSERT_INT_EQ (counter.calls, 3);
    zube_bus_respond (counter.deferred, ZUBE_OK, NULL, "done", 4);
    ZT_ASSERT_INT_EQ (s_raw_reply (dealer, service, text, sizeof text, 5000), 5);
    ZT_ASSERT_STR_EQ (text, "done");
    ZT_ASSERT_INT_EQ (s_raw_reply (dealer, service, text, sizeof text, 300), 0);
    //  And afterwards from the cache.
    s_raw_request (dealer, "defer", 9, 6);
    ZT_ASSERT_INT_EQ (s_raw_reply (dealer, service, text, sizeof text, 5000), 6);
    ZT_ASSERT_STR_EQ (text, "done");
    ZT_ASSERT_INT_EQ (counter.calls, 3);
    zsock_destroy (&dealer);
    zube_bus_destroy (&service);
}

typedef struct {
    char prefix[32];
    int counts[10];
    int others;
} s_event_log_t;

static void
s_event_received (zube_bus_t *bus, const char *topic, const uint8_t *payload, size_t size,
                  void *arg)
{
    s_event_log_t *log = arg;
    int index = -1;
    if (size > 6 && memcmp (payload, "event-", 6) == 0)
        index = atoi ((const char *)payload + 6);
    if (index >= 0 && index < 10 &&
        strncmp (topic, log->prefix, strlen (log->prefix)) == 0)
        log->counts[index]++;
    else
        log->others++;
}

static void
test_events_by_prefix (void)
{
    zube_bus_t *publisher = s_bus_new ();
    zube_bus_t *subscriber = s_bus_new ();
    s_event_log_t pods = {.prefix = "pods/"}, pods_default = {.prefix = "pods/default"},
                  nodes = {.prefix = "nodes/"};
    ZT_ASSERT_INT_EQ (zube_bus_subscribe (subscriber, "pods/", s_event_received, &pods),
                      0);
    ZT_ASSERT_INT_EQ (zube_bus_subscribe (subscriber, "pods/", s_event_received, &pods),
                      -1);
    ZT_ASSERT_INT_EQ (
        zube_bus_subscribe (subscriber, "pods/default", s_event_received, &pods_default),
        0);
    ZT_ASSERT_INT_EQ (zube_bus_subscribe (subscriber, "nodes/", s_event_received, &nodes),
                      0);

    //  Warm up: PUB/SUB drops what is published before the subscription
    //  has reached the publisher, so publish until the first one arrives.
    int64_t until = zt_now_ms () + 10000;
    while (pods.others == 0 && zt_now_ms () < until) {
        ZT_ASSERT_INT_EQ (zube_bus_publish (publisher, "pods/warmup", "warm", 4), 0);
        zube_bus_poll (publisher, 20);
        zube_bus_poll (subscriber, 20);
    }
    ZT_ASSERT (pods.others > 0);
    pods.others = 0;
    for (int index = 0; index < 10; index++) {
        char text[32];
        snprintf (text, sizeof text, "event-%d", index);
        ZT_ASSERT_INT_EQ (
            zube_bus_publish (publisher, "pods/default/web-1", text, strlen (text)), 0);
        ZT_ASSERT_INT_EQ (
            zube_bus_publish (publisher, "services/default/web", text, strlen (text)), 0);
    }
    until = zt_now_ms () + 5000;
    while (zt_now_ms () < until) {
        zube_bus_poll (publisher, 10);
        zube_bus_poll (subscriber, 10);
        if (pods.counts[9] && pods_default.counts[9])
            break;
    }
    //  A little longer, to see any duplicate.
    for (int index = 0; index < 10; index++)
        zube_bus_poll (subscriber, 10);
    for (int index = 0; index < 10; index++) {
        ZT_ASSERT_INT_EQ (pods.counts[index], 1);
        ZT_ASSERT_INT_EQ (pods_default.counts[index], 1);
    }
    ZT_ASSERT_INT_EQ (nodes.others, 0);
    ZT_ASSERT_INT_EQ (pods.others, 0);

    //  After unsubscribing, only the remaining prefix matches.
    ZT_ASSERT_INT_EQ (zube_bus_unsubscribe (subscriber, "pods/default"), 0);
    ZT_ASSERT_INT_EQ (zube_bus_unsubscribe (subscriber, "pods/default"), -1);
    memset (pods.counts, 0, sizeof pods.counts);
    memset (pods_default.counts, 0, sizeof pods_default.counts);
    ZT_ASSERT_INT_EQ (zube_bus_publish (publisher, "pods/default/web-1", "event-3", 7),
                      0);
    until = zt_now_ms () + 5000;
    while (pods.counts[3] == 0 && zt_now_ms () < until) {
        zube_bus_poll (publisher, 10);
        zube_bus_poll (subscriber, 10);
    }
    ZT_ASSERT_INT_EQ (pods.counts[3], 1);
    ZT_ASSERT_INT_EQ (pods_default.counts[3], 0);
    zube_bus_destroy (&subscriber);
    zube_bus_destroy (&publisher);
}

//  Many callers at once, each with payloads of its own: in this process
//  (ten connections, interleaved async calls) and in four child processes
//  (sync calls); nobody gets a reply meant for another.
static void
test_no_reply_to_wrong_caller (void)
{
    ZT_ASSERT (s_start_child ("--child-service", "mix-echo", NULL, NULL) > 0);
    ZT_ASSERT (s_start_child ("--child-service", "mix-echo", NULL, NULL) > 0);
    zube_bus_t *buses[10];
    for (int index = 0; index < 10; index++)
        buses[index] = s_bus_new ();
    ZT_ASSERT (s_wait_instances (buses[0], "mix-echo", 2, 10000));
    pid_t clients[4];
    for (int index = 0; index < 4; index++)
        clients[index] = s_start_child ("--child-client", "mix-echo", "100", NULL);

    static s_async_slot_t slots[10][30];
    memset (slots, 0, sizeof slots);
    for (int call = 0; call < 30; call++)
        for (int index = 0; index < 10; index++) {
            s_async_slot_t *slot = &slots[index][call];
            snprintf (slot->expected, sizeof slot->expected, "bus-%d-call-%d", index,
                      call);
            ZT_ASSERT (zube_bus_call_async (buses[index], "mix-echo", "echo",
                                            slot->expected, strlen (slot->expected),
                                            10000, s_async_reply, slot) > 0);
        }
    int64_t until = zt_now_ms () + 15000;
    size_t left = 1;
    while (left && zt_now_ms () < until) {
        left = 0;
        for (int index = 0; index < 10; index++) {
            zube_bus_poll (buses[index], 0);
            left += zube_bus_in_flight (buses[index]);
        }
        usleep (1000);
    }
    ZT_ASSERT_INT_EQ (left, 0);
    for (int index = 0; index < 10; index++)
        for (int call = 0; call < 30; call++) {
            ZT_ASSERT_INT_EQ (slots[index][call].outcomes, 1);
            ZT_ASSERT (!slots[index][call].wrong);
        }
    for (int index = 0; index < 4; index++) {
        int status = 0;
        ZT_ASSERT (waitpid (clients[index], &status, 0) == clients[index]);
        ZT_ASSERT_MSG (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                       "client %d: status %d", index, status);
    }
    for (int index = 0; index < 10; index++)
        zube_bus_destroy (&buses[index]);
    s_stop_children ();
}

static void
s_blocking_handler (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    int *calls = arg;
    (*calls)++;
    if (streq (zube_bus_request_method (request), "block"))
        usleep (1500 * 1000);
    zube_bus_respond (request, ZUBE_OK, NULL, "done", 4);
}

//  A handler that blocks for longer than the broker waits for a sign of
//  life: the broker forgets the instance (and answers its request
//  UNAVAILABLE "died", which the caller retries); the instance notices its
//  own silence, registers again, and answers the retry from its reply cache.
static void
test_service_stall_registers_again (void)
{
    zube_bus_t *service = s_bus_new ();
    zube_bus_t *client = s_bus_new ();
    int calls = 0;
    ZT_ASSERT_INT_EQ (zube_bus_serve (service, "sleepy", s_blocking_handler, &calls), 0);
    ZT_ASSERT (s_wait_instances (client, "sleepy", 1, 5000));
    s_async_slot_t blocked = {.expected = "done"}, after = {.expected = "done"};
    ZT_ASSERT (zube_bus_call_async (client, "sleepy", "block", NULL, 0, 10000,
                                    s_async_reply, &blocked) > 0);
    int64_t until = zt_now_ms () + 15000;
    while (blocked.outcomes == 0 && zt_now_ms () < until) {
        zube_bus_poll (client, 10);
        zube_bus_poll (service, 10);
    }
    ZT_ASSERT_INT_EQ (blocked.outcomes, 1);
    ZT_ASSERT_MSG (!blocked.wrong, "status %d: %s", blocked.status, blocked.error);
    ZT_ASSERT (zube_bus_call_async (client, "sleepy", "quick", NULL, 0, 5000,
                                    s_async_reply, &after) > 0);
    until = zt_now_ms () + 8000;
    while (after.outcomes == 0 && zt_now_ms () < until) {
        zube_bus_poll (client, 10);
        zube_bus_poll (service, 10);
    }
    ZT_ASSERT_INT_EQ (after.outcomes, 1);
    ZT_ASSERT (!after.wrong);
    ZT_ASSERT_INT_EQ (calls, 2);
    zube_bus_destroy (&client);
    zube_bus_destroy (&service);
}

static void
s_count_event (zube_bus_t *bus, const char *topic, const uint8_t *payload, size_t size,
               void *arg)
{
    (*(int *)arg)++;
}

//  A call and an event round trip through a broker at endpoint (reached
//  at connect_to); the broker is started here and stopped after.
static void
s_round_trip (const char *bind, const char *connect_to, const char *ready_path, int port)
{
    char log_path[512];
    snprintf (log_path, sizeof log_path, "%s/broker-other.log", s_dir);
    char *argv[] = {(char *)zt_program ("zube-broker"),
                    "--insecure",
                    "--bind",
                    (char *)bind,
                    "--heartbeat",
                    "200",
                    NULL};
    pid_t broker = zt_spawn_tied (argv, log_path);
    ZT_ASSERT (broker > 0);
    bool up = false;
    for (int waited = 0; !up && waited < 5000; waited += 20) {
        struct stat st;
        up = ready_path ? stat (ready_path, &st) == 0 : zt_wait_port (port, 20);
        if (!up)
            usleep (20000);
    }
    if (!up)
        zt_stop (broker, SIGKILL, 1000);
    ZT_ASSERT_MSG (up, "broker on %s did not come up", bind);
    zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t){
        .endpoint = connect_to, .insecure = true, .heartbeat_ms = HEARTBEAT_MS});
    ZT_ASSERT (bus);
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (bus, "bus", "ping", NULL, 0, 5000, &reply);
    zube_bus_reply_destroy (&reply);
    int events = 0;
    ZT_ASSERT_INT_EQ (zube_bus_subscribe (bus, "t/", s_count_event, &events), 0);
    int64_t until = zt_now_ms () + 10000;
    while (events == 0 && zt_now_ms () < until) {
        zube_bus_publish (bus, "t/x", "e", 1);
        zube_bus_poll (bus, 20);
    }
    zube_bus_destroy (&bus);
    zt_stop (broker, SIGTERM, 3000);
    ZT_ASSERT_INT_EQ (rc, 0);
    ZT_ASSERT_MSG (events > 0, "no event through %s", bind);
}

//  ipc:// endpoints, and a broker bound to a wildcard address (bus/info
//  then names 0.0.0.0; the client connects to the host it reached).
static void
test_ipc_and_wildcard_endpoints (void)
{
    char bind[400], path[300];
    snprintf (path, sizeof path, "%s/bus.ipc", s_dir);
    snprintf (bind, sizeof bind, "ipc://%s", path);
    s_round_trip (bind, bind, path, 0);
    int port = zt_free_port (3);
    char connect_to[64];
    snprintf (bind, sizeof bind, "tcp://*:%d", port);
    snprintf (connect_to, sizeof connect_to, "tcp://127.0.0.1:%d", port);
    s_round_trip (bind, connect_to, NULL, port);
}

//  zube_bus_poll: 0 when nothing happened, the number of callbacks run,
//  -1 when interrupted (and a synchronous call then ends at once).
static void
test_poll_return_values (void)
{
    zube_bus_t *bus = s_bus_new ();
    ZT_ASSERT_INT_EQ (zube_bus_poll (bus, 0), 0);
    ZT_ASSERT_INT_EQ (zube_bus_poll (bus, 50), 0);
    s_async_slot_t slot = {.expected = ""};
    ZT_ASSERT (zube_bus_call_async (bus, "bus", "ping", NULL, 0, 5000, s_async_reply,
                                    &slot) > 0);
    int64_t until = zt_now_ms () + 5000;
    int dispatched = 0;
    while (dispatched == 0 && zt_now_ms () < until)
        dispatched = zube_bus_poll (bus, -1);
    ZT_ASSERT_INT_EQ (dispatched, 1);
    ZT_ASSERT_INT_EQ (slot.outcomes, 1);
    ZT_ASSERT_INT_EQ (slot.status, ZUBE_OK);

    zsys_interrupted = 1;
    int polled = zube_bus_poll (bus, 1000);
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (bus, "nobody-here", "x", NULL, 0, 5000, &reply);
    zsys_interrupted = 0;
    ZT_ASSERT_INT_EQ (polled, -1);
    ZT_ASSERT_INT_EQ (rc, -1);
    ZT_ASSERT_INT_EQ (reply->status, ZUBE_UNAVAILABLE);
    ZT_ASSERT_STR_EQ (reply->error, "interrupted");
    zube_bus_reply_destroy (&reply);
    ZT_ASSERT_INT_EQ (zube_bus_in_flight (bus), 0);
    zube_bus_destroy (&bus);
}

//  Calls still waiting when the connection is destroyed get UNAVAILABLE.
static void
test_destroy_ends_calls (void)
{
    zube_bus_t *bus = s_bus_new ();
    s_async_slot_t slot = {.expected = ""};
    ZT_ASSERT (zube_bus_call_async (bus, "never-served", "x", NULL, 0, 10000,
                                    s_async_reply, &slot) > 0);
    zube_bus_poll (bus, 0);
    zube_bus_destroy (&bus);
    ZT_ASSERT_INT_EQ (slot.outcomes, 1);
    ZT_ASSERT (slot.wrong);
}

//  Makes NAME's keypair with zube_certs_create; a peer that is not admitted
//  keeps its secret certificate but loses its public one (DIR/public is
//  what the broker admits).
static void
s_make_cert (const char *dir, const char *name, bool admitted)
{
    char error[256];
    int rc = zube_certs_create (dir, name, error, sizeof error);
    ZT_ASSERT_MSG (rc == 0, "zube_certs_create %s: %s", name, error);
    if (!admitted) {
        char path[512];
        ZT_ASSERT (zube_certs_public_path (dir, name, path, sizeof path));
        ZT_ASSERT_INT_EQ (unlink (path), 0);
    }
}

//  CurveZMQ: a broker with a certificate directory admits known keys and
//  stamps the certificate name as sender.
static void
test_secure_sender (void)
{
    char certs[512];
    snprintf (certs, sizeof certs, "%s/certs", s_dir);
    s_make_cert (certs, "broker", true);
    s_make_cert (certs, "svc-a", true);
    s_make_cert (certs, "client-b", true);
    s_make_cert (certs, "stranger", false);

    int port = zt_free_port (3);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    pid_t broker = s_start_broker (endpoint, certs, "broker-secure.log");
    ZT_ASSERT (broker > 0);
    zube_bus_t *service =
        zube_bus_new (&(zube_bus_config_t){.endpoint = endpoint,
                                           .certs_dir = certs,
                                           .name = "svc-a",
                                           .heartbeat_ms = HEARTBEAT_MS});
    zube_bus_t *client =
        zube_bus_new (&(zube_bus_config_t){.endpoint = endpoint,
                                           .certs_dir = certs,
                                           .name = "client-b",
                                           .heartbeat_ms = HEARTBEAT_MS});
    zube_bus_t *stranger =
        zube_bus_new (&(zube_bus_config_t){.endpoint = endpoint,
                                           .certs_dir = certs,
                                           .name = "stranger",
                                           .heartbeat_ms = HEARTBEAT_MS});
    ZT_ASSERT (service && client && stranger);
    ZT_ASSERT_INT_EQ (zube_bus_serve (service, "whoami", s_child_handler, NULL), 0);

    s_async_slot_t slot = {.expected = ""};
    snprintf (slot.expected, sizeof slot.expected, "client-b %s",
              zube_bus_client_id (client));
    ZT_ASSERT (zube_bus_call_async (client, "whoami", "sender", NULL, 0, 5000,
                                    s_async_reply, &slot) > 0);
    s_async_slot_t refused = {.expected = ""};
    ZT_ASSERT (zube_bus_call_async (stranger, "whoami", "sender", NULL, 0, 1500,
                                    s_async_reply, &refused) > 0);
    int64_t until = zt_now_ms () + 8000;
    while ((slot.outcomes == 0 || refused.outcomes == 0) && zt_now_ms () < until) {
        zube_bus_poll (client, 10);
        zube_bus_poll (service, 10);
        zube_bus_poll (stranger, 10);
    }
    ZT_ASSERT_INT_EQ (slot.outcomes, 1);
    ZT_ASSERT_MSG (!slot.wrong, "expected \"%s\"", slot.expected);
    ZT_ASSERT_INT_EQ (refused.outcomes, 1);
    ZT_ASSERT (refused.wrong);
    ZT_ASSERT (!zube_bus_connected (stranger));
    zube_bus_destroy (&stranger);
    zube_bus_destroy (&client);
    zube_bus_destroy (&service);
    zt_stop (broker, SIGTERM, 3000);
}

//  Batches, seen from a fake broker (a ROUTER in the test). One message as
//  the fake receives it: the routing id, then its requests and replies (a
//  classic message is one, a batch its entries).
typedef struct {
    uint8_t rid[256];
    size_t rid_size;
    bool batch;
    size_t bytes; //  of the frame after the routing id
    int count;
    zt_batch_entry_t entries[64];
} s_fake_message_t;

static bool
s_fake_recv (zsock_t *router, int timeout_ms, s_fake_message_t *message)
{
    memset (message, 0, sizeof *message);
    void *socket = zsock_resolve (router);
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return false;
    zmsg_t *msg = zmsg_recv (router);
    ZT_ASSERT (msg && zmsg_size (msg) >= 2);
    zframe_t *rid = zmsg_first (msg), *frame = zmsg_next (msg);
    message->rid_size = zframe_size (rid);
    memcpy (message->rid, zframe_data (rid), message->rid_size);
    message->bytes = zframe_size (frame);
    message->batch =
        zmsg_size (msg) == 2 && zframe_size (frame) && zframe_data (frame)[0] == 0;
    if (message->batch) {
        message->count = zt_batch_parse (zframe_data (frame), zframe_size (frame),
                                         message->entries, 64);
        ZT_ASSERT_MSG (message->count > 0, "a malformed batch from the library");
    } else {
        message->count = 1;
        message->entries[0].header =
            zube__bus_header__unpack (NULL, zframe_size (frame), zframe_data (frame));
        zframe_t *payload = zmsg_next (msg);
        message->entries[0].payload =
            strndup (payload ? (char *)zframe_data (payload) : "",
                     payload ? zframe_size (payload) : 0);
    }
    zmsg_destroy (&msg);
    return true;
}

static void
s_fake_clear (s_fake_message_t *message)
{
    for (int index = 0; index < message->count; index++)
        zt_batch_entry_clear (&message->entries[index]);
    message->count = 0;
}

//  Sends frames (a classic message's two, or a batch's one) to rid
static void
s_fake_send (zsock_t *router, const s_fake_message_t *to, const void *frame, size_t size,
             bool more)
{
    zmq_send (zsock_resolve (router), to->rid, to->rid_size, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (router), frame, size, more ? ZMQ_SNDMORE : 0);
}

static Zube__BusHeader
s_fake_header (Zube__BusKind kind)
{
    Zube__BusHeader header = ZUBE__BUS_HEADER__INIT;
    header.has_version = header.has_kind = 1;
    header.version = ZUBE__BUS_VERSION__BUS_VERSION_1;
    header.kind = kind;
    return header;
}

//  The broker's heartbeat; with batch_max_bytes > 0 it says it reads batches
static void
s_fake_heartbeat (zsock_t *router, const s_fake_message_t *to, uint32_t batch_max_bytes)
{
    Zube__BusHeader heartbeat = s_fake_header (ZUBE__BUS_KIND__BUS_HEARTBEAT);
    heartbeat.has_heartbeat_ms = 1;
    heartbeat.heartbeat_ms = 10000; //  the fake sends no more
    heartbeat.instance = "fake-epoch";
    heartbeat.has_batch_format = heartbeat.has_batch_max_bytes = batch_max_bytes > 0;
    heartbeat.batch_format = 1;
    heartbeat.batch_max_bytes = batch_max_bytes;
    uint8_t buffer[256];
    size_t size = zube__bus_header__pack (&heartbeat, buffer);
    s_fake_send (router, to, buffer, size, false);
}

typedef struct {
    s_async_slot_t *slots;
    uint64_t *ids;
    int count;
    const char *payload;
    size_t payload_size;
} s_burst_t;

//  The first reply's callback starts the burst: calls made inside the loop
static void
s_burst_start (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg)
{
    s_burst_t *burst = arg;
    zube_bus_reply_destroy (&reply);
    for (int index = 0; index < burst->count; index++) {
        snprintf (burst->slots[index].expected, sizeof burst->slots[index].expected,
                  "reply-%d", index);
        burst->ids[index] =
            zube_bus_call_async (bus, "svc", "m", burst->payload, burst->payload_size,
                                 10000, s_async_reply, &burst->slots[index]);
    }
}

static void
s_defer_handler (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    zube_bus_request_t **deferred = arg;
    if (streq (zube_bus_request_method (request), "later")) {
        zube_bus_request_defer (request);
        *deferred = request;
    } else
        zube_bus_respond (request, ZUBE_OK, NULL, "now", 3);
}

//  Until the broker's heartbeat says it reads batches, every call goes as a
//  classic message; after it, the calls started inside the loop leave as
//  batches within the broker's limit, and replies batched back end each
//  call once (a malformed entry, a malformed batch and a late duplicate
//  change nothing). A reply given inside a handler leaves in a batch; one
//  given outside the loop (deferred) leaves at once, classic, without
//  another poll. A connection configured with no_batching says nothing and
//  gets and sends no batches.
static void
test_batches_with_fake_broker (void)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    ZT_ASSERT (router);
    zsock_set_linger (router, 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    ZT_ASSERT (port > 0);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t){
        .endpoint = endpoint, .insecure = true, .max_msg_size = 300000});
    ZT_ASSERT (bus);
    zube_bus_request_t *deferred = NULL;
    ZT_ASSERT_INT_EQ (zube_bus_serve (bus, "svc-here", s_defer_handler, &deferred), 0);
    //  Its first heartbeat (and READY) say it reads batches, up to its limit
    s_fake_message_t client;
    bool heartbeat_seen = false, ready_seen = false;
    while (!(heartbeat_seen && ready_seen) && s_fake_recv (router, 5000, &client)) {
        Zube__BusHeader *header = client.entries[0].header;
        ZT_ASSERT (!client.batch && header);
        ZT_ASSERT (header->has_batch_format && header->batch_format == 1);
        ZT_ASSERT_INT_EQ (header->batch_max_bytes, 300000);
        heartbeat_seen |= header->kind == ZUBE__BUS_KIND__BUS_HEARTBEAT;
        ready_seen |= header->kind == ZUBE__BUS_KIND__BUS_READY;
        s_fake_clear (&client);
    }
    ZT_ASSERT (heartbeat_seen && ready_seen);

    //  A broker that has not said it reads batches: classic messages
    enum { CALLS = 100, PAYLOAD = 1000, LIMIT = 20000 };
    s_async_slot_t *slots = calloc (CALLS, sizeof *slots);
    uint64_t ids[CALLS];
    char *payload = malloc (PAYLOAD);
    memset (payload, 'p', PAYLOAD);
    s_burst_t burst = {slots, ids, CALLS, payload, PAYLOAD};
    uint64_t first =
        zube_bus_call_async (bus, "svc", "m", "x", 1, 10000, s_burst_start, &burst);
    ZT_ASSERT (first > 0);
    s_fake_message_t message;
    ZT_ASSERT (s_fake_recv (router, 5000, &message));
    ZT_ASSERT (!message.batch);
    ZT_ASSERT_INT_EQ (message.entries[0].header->kind, ZUBE__BUS_KIND__BUS_REQUEST);
    ZT_ASSERT_INT_EQ (message.entries[0].header->correlation_id, first);
    s_fake_clear (&message);

    //  The broker says it reads batches of up to LIMIT bytes, and answers
    //  the first call: its callback starts CALLS calls inside the loop
    s_fake_heartbeat (router, &client, LIMIT);
    Zube__BusHeader reply = s_fake_header (ZUBE__BUS_KIND__BUS_REPLY);
    reply.has_correlation_id = 1;
    reply.correlation_id = first;
    uint8_t buffer[256];
    size_t size = zube__bus_header__pack (&reply, buffer);
    s_fake_send (router, &client, buffer, size, true);
    zmq_send (zsock_resolve (router), "", 0, 0);
    for (int64_t until = zt_now_ms () + 5000; !ids[CALLS - 1] && zt_now_ms () < until;)
        zube_bus_poll (bus, 20);
    ZT_ASSERT (ids[CALLS - 1] > 0);
    int seen[CALLS] = {0}, requests = 0, messages = 0;
    while (requests < CALLS && s_fake_recv (router, 5000, &message)) {
        ZT_ASSERT (message.batch);
        ZT_ASSERT_MSG (message.bytes <= LIMIT, "a batch of %zu bytes", message.bytes);
        for (int index = 0; index < message.count; index++) {
            Zube__BusHeader *header = message.entries[index].header;
            ZT_ASSERT (header && header->kind == ZUBE__BUS_KIND__BUS_REQUEST);
            ZT_ASSERT (header->correlation_id >= ids[0] &&
                       header->correlation_id <= ids[CALLS - 1]);
            ZT_ASSERT_INT_EQ (message.entries[index].payload_size, PAYLOAD);
            seen[header->correlation_id - ids[0]]++;
            requests++;
        }
        messages++;
        s_fake_clear (&message);
    }
    ZT_ASSERT_INT_EQ (requests, CALLS);
    for (int index = 0; index < CALLS; index++)
        ZT_ASSERT_INT_EQ (seen[index], 1);
    ZT_ASSERT_MSG (messages >= CALLS * PAYLOAD / LIMIT && messages < CALLS, "%d messages",
                   messages);

    //  Replies in two batches: a malformed batch first; in the first batch
    //  an entry whose header does not parse, in the second a late copy
    zmq_send (zsock_resolve (router), client.rid, client.rid_size, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (router), "\x00\x01\x05\x01", 4, 0);
    for (int half = 0; half < 2; half++) {
        zt_batch_t batch = {NULL, 0, 0};
        if (half == 0)
            zt_batch_entry_raw (&batch, "\xff\xff\xff", 3, "x", 1);
        for (int index = half * CALLS / 2; index < (half + 1) * CALLS / 2; index++) {
            reply.correlation_id = ids[index];
            zt_batch_entry (&batch, &reply, slots[index].expected);
        }
        if (half == 1) {
            reply.correlation_id = ids[0];
            zt_batch_entry (&batch, &reply, "late");
        }
        zmq_send (zsock_resolve (router), client.rid, client.rid_size, ZMQ_SNDMORE);
        zt_batch_send (zsock_resolve (router), &batch, -1);
    }
    int64_t until = zt_now_ms () + 5000;
    while (zube_bus_in_flight (bus) > 0 && zt_now_ms () < until)
        zube_bus_poll (bus, 20);
    ZT_ASSERT_INT_EQ (zube_bus_in_flight (bus), 0);
    for (int index = 0; index < CALLS; index++) {
        ZT_ASSERT_INT_EQ (slots[index].outcomes, 1);
        ZT_ASSERT_MSG (!slots[index].wrong, "call %d got a wrong reply", index);
    }

    //  Requests to the service here, in one batch: "now" is answered inside
    //  the handler and leaves in a batch; "later" is deferred, answered
    //  outside the loop, and leaves at once
    zt_batch_t batch = {NULL, 0, 0};
    Zube__BusHeader request = s_fake_header (ZUBE__BUS_KIND__BUS_REQUEST);
    request.service = "svc-here";
    request.has_correlation_id = 1;
    request.has_route = 1;
    request.route.data = (uint8_t *)"route";
    request.route.len = 5;
    request.method = "now";
    request.correlation_id = 7001;
    zt_batch_entry (&batch, &request, "");
    request.method = "later";
    request.correlation_id = 7002;
    zt_batch_entry (&batch, &request, "");
    zmq_send (zsock_resolve (router), client.rid, client.rid_size, ZMQ_SNDMORE);
    zt_batch_send (zsock_resolve (router), &batch, -1);
    for (until = zt_now_ms () + 5000; !deferred && zt_now_ms () < until;)
        zube_bus_poll (bus, 20);
    ZT_ASSERT (deferred);
    ZT_ASSERT (s_fake_recv (router, 5000, &message));
    ZT_ASSERT (message.batch);
    ZT_ASSERT_INT_EQ (message.count, 1);
    ZT_ASSERT_INT_EQ (message.entries[0].header->correlation_id, 7001);
    ZT_ASSERT_STR_EQ (message.entries[0].payload, "now");
    s_fake_clear (&message);
    zube_bus_respond (deferred, ZUBE_OK, NULL, "done", 4);
    ZT_ASSERT (s_fake_recv (router, 5000, &message)); //  no poll in between
    ZT_ASSERT (!message.batch);
    ZT_ASSERT_INT_EQ (message.entries[0].header->correlation_id, 7002);
    ZT_ASSERT_STR_EQ (message.entries[0].payload, "done");
    s_fake_clear (&message);
    zube_bus_destroy (&bus);

    //  no_batching: says nothing, and sends classic messages only
    bus = zube_bus_new (&(zube_bus_config_t){
        .endpoint = endpoint, .insecure = true, .no_batching = true});
    ZT_ASSERT (bus);
    do //  after the first connection's DISCONNECT
        s_fake_clear (&client);
    while (s_fake_recv (router, 5000, &client) &&
           client.entries[0].header->kind == ZUBE__BUS_KIND__BUS_DISCONNECT);
    ZT_ASSERT (!client.batch);
    ZT_ASSERT_INT_EQ (client.entries[0].header->kind, ZUBE__BUS_KIND__BUS_HEARTBEAT);
    ZT_ASSERT (!client.entries[0].header->has_batch_format);
    s_fake_clear (&client);
    s_fake_heartbeat (router, &client, LIMIT);
    memset (slots, 0, CALLS * sizeof *slots);
    memset (ids, 0, sizeof ids);
    burst.count = 10;
    first = zube_bus_call_async (bus, "svc", "m", "x", 1, 10000, s_burst_start, &burst);
    ZT_ASSERT (s_fake_recv (router, 5000, &message));
    s_fake_clear (&message);
    reply.correlation_id = first;
    size = zube__bus_header__pack (&reply, buffer);
    s_fake_send (router, &client, buffer, size, true);
    zmq_send (zsock_resolve (router), "", 0, 0);
    for (until = zt_now_ms () + 5000; !ids[9] && zt_now_ms () < until;)
        zube_bus_poll (bus, 20);
    for (int index = 0; index < 10; index++) {
        ZT_ASSERT (s_fake_recv (router, 5000, &message));
        ZT_ASSERT (!message.batch);
        ZT_ASSERT_INT_EQ (message.entries[0].header->kind, ZUBE__BUS_KIND__BUS_REQUEST);
        s_fake_clear (&message);
    }
    zube_bus_destroy (&bus);
    zsock_destroy (&router);
    free (payload);
    free (slots);
}

//  Every case ends with no child left, whether it passed or not.
#define RUN(test)                                                                        \
    do {                                                                                 \
        ZT_RUN (test);                                                                   \
        s_stop_children ();                                                              \
    } while (0)

int
main (int argc, char *argv[])
{
    if (argc >= 4 && streq (argv[1], "--child-service"))
        return s_child_service (argv[2], argv[3]);
    if (argc >= 5 && streq (argv[1], "--child-client"))
        return s_child_client (argv[2], argv[3], atoi (argv[4]));

    zube_log_set_level (getenv ("ZUBE_TEST_DEBUG") ? ZUBE_LOG_DEBUG : ZUBE_LOG_WARN);
    s_dir = zt_tempdir ("bus");
    int port = zt_free_port (3);
    snprintf (s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", port);
    s_broker = s_start_broker (s_endpoint, NULL, "broker.log");
    if (s_broker <= 0) {
        printf ("Bail out! cannot start %s\n", zt_program ("zube-broker"));
        return 1;
    }
    RUN (test_new_rejects_bad_config);
    RUN (test_call_broker_ping);
    RUN (test_call_sync_served_by_self);
    RUN (test_nested_sync_calls);
    RUN (test_async_100_in_flight);
    RUN (test_batches_with_fake_broker);
    RUN (test_sender_identity);
    RUN (test_load_balancing);
    RUN (test_unavailable_and_deadline);
    RUN (test_payload_too_large);
    RUN (test_deferred_reply);
    RUN (test_dedup_retried_request);
    RUN (test_events_by_prefix);
    RUN (test_no_reply_to_wrong_caller);
    RUN (test_poll_return_values);
    RUN (test_service_stall_registers_again);
    RUN (test_ipc_and_wildcard_endpoints);
    RUN (test_destroy_ends_calls);
    RUN (test_secure_sender);

    zt_stop (s_broker, SIGTERM, 3000);
    if (zt_failed_count == 0 && !getenv ("ZUBE_TEST_KEEP"))
        zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
