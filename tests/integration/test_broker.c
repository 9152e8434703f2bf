/*  test_broker - zube-broker as a real process, with peers written on raw
    libzmq sockets that speak docs/bus-protocol.md.

    The fake service instances are this same program started again with
    --fake-service (so a test can SIGKILL one); clients are DEALER sockets
    in the test process. The broker runs with --heartbeat 200 so deaths are
    noticed in well under a second.
*/
#define _GNU_SOURCE     //  sched_getaffinity
//  zt_rmtree's path buffer trips -Wformat-truncation when inlined here
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zube_testproc.h"
#pragma GCC diagnostic pop
#include "../zube_test.h"
#include <czmq.h>
#include <dirent.h>
#include <sched.h>
#include <zmq.h>
#include "bus.pb-c.h"
#include "zube/certs.h"
#include "zube/version.h"
#include "../zt_bus_batch.h"

#define HEARTBEAT_MS 200
#define HEARTBEAT_TEXT "200"

static void *s_ctx = NULL;
//  What a case started, so a failed case (which stops half-way) leaves
//  no process or directory behind
static pid_t s_spawned [64];
static int s_spawned_count = 0;
static char *s_dirs [32];
static int s_dirs_count = 0;
static uint64_t s_next_cid = 1;
static char s_self [1024];

typedef struct {
    pid_t pid;
    int port;
    char endpoint [64];
    char *dir;
    char log [512];
} broker_t;

typedef struct {
    Zube__BusHeader *header;
    char *payload;              //  NUL-terminated copy
    size_t payload_size;
    int frames;
} s_msg_t;


//  --------------------------------------------------------------------------
//  Speaking the protocol on raw sockets

static Zube__BusHeader
s_header (Zube__BusKind kind)
{
    Zube__BusHeader header = ZUBE__BUS_HEADER__INIT;
    header.has_version = true;
    header.version = ZUBE__BUS_VERSION__BUS_VERSION_1;
    header.has_kind = true;
    header.kind = kind;
    return header;
}

static int
s_send (void *socket, const Zube__BusHeader *header, bool with_payload,
        const void *payload, size_t payload_size)
{
    size_t size = zube__bus_header__get_packed_size (header);
    uint8_t *buffer = (uint8_t *) malloc (size + 1);
    zube__bus_header__pack (header, buffer);
    int rc = zmq_send (socket, buffer, size, with_payload ? ZMQ_SNDMORE : 0);
    free (buffer);
    if (rc >= 0 && with_payload)
        rc = zmq_send (socket, payload, payload_size, 0);
    return rc < 0 ? -1 : 0;
}

static uint64_t
s_request_send (void *socket, const char *service, const char *method, uint32_t deadline_ms,
                const void *payload, size_t payload_size, const char *forged_sender)
{
    Zube__BusHeader header = s_header (ZUBE__BUS_KIND__BUS_REQUEST);
    header.service = (char *) service;
    header.method = (char *) method;
    header.has_correlation_id = true;
    header.correlation_id = s_next_cid++;
    header.has_deadline_ms = true;
    header.deadline_ms = deadline_ms;
    header.client_id = (char *) "test-client";
    header.has_sequence = true;
    header.sequence = header.correlation_id;
    header.has_attempt = true;
    header.attempt = 1;
    header.sender = (char *) forged_sender;
    if (s_send (socket, &header, true, payload, payload_size) != 0)
        return 0;
    return header.correlation_id;
}

static void
s_msg_clear (s_msg_t *msg)
{
    if (msg->header)
        zube__bus_header__free_unpacked (msg->header, NULL);
    free (msg->payload);
    memset (msg, 0, sizeof *msg);
}

//  A NUL-terminated copy of the payload frame
static void
s_msg_payload_set (s_msg_t *msg, zmq_msg_t *part)
{
    msg->payload_size = zmq_msg_size (part);
    msg->payload = (char *) malloc (msg->payload_size + 1);
    memcpy (msg->payload, zmq_msg_data (part), msg->payload_size);
    msg->payload [msg->payload_size] = 0;
}

//  Receives one whole message; false when nothing came within timeout_ms
static bool
s_recv (void *socket, int timeout_ms, s_msg_t *msg)
{
    memset (msg, 0, sizeof *msg);
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    if (zmq_poll (&item, 1, timeout_ms < 0 ? 0 : timeout_ms) <= 0)
        return false;
    zmq_msg_t part;
    zmq_msg_init (&part);
    do {
        if (zmq_msg_recv (&part, socket, 0) < 0)
            break;
        if (msg->frames == 0)
            msg->header = zube__bus_header__unpack (NULL, zmq_msg_size (&part),
                                                    (const uint8_t *) zmq_msg_data (&part));
        else
        if (msg->frames == 1)
            s_msg_payload_set (msg, &part);
        msg->frames++;
    } while (zmq_msg_more (&part));
    zmq_msg_close (&part);
    return true;
}

//  Waits for the REPLY with correlation id cid, skipping everything else
static bool
s_reply_wait (void *socket, uint64_t cid, int timeout_ms, s_msg_t *msg)
{
    int64_t end = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < end) {
        if (!s_recv (socket, (int) (end - zt_now_ms ()), msg))
            return false;
        if (msg->header && msg->header->kind == ZUBE__BUS_KIND__BUS_REPLY
            && msg->header->correlation_id == cid)
            return true;
        s_msg_clear (msg);
    }
    return false;
}

//  A REQUEST header as s_request_send writes it, with the next correlation id
static Zube__BusHeader
s_request_header (const char *service, uint32_t deadline_ms)
{
    Zube__BusHeader header = s_header (ZUBE__BUS_KIND__BUS_REQUEST);
    header.service = (char *) service;
    header.method = (char *) "work";
    header.has_correlation_id = true;
    header.correlation_id = s_next_cid++;
    header.has_deadline_ms = true;
    header.deadline_ms = deadline_ms;
    header.client_id = (char *) "test-client";
    header.has_sequence = true;
    header.sequence = header.correlation_id;
    return header;
}

//  Receives one whole message as its requests/replies (at most max):
//  a classic message is one, a batch its entries. Returns how many, -1 when
//  nothing came; *batch_p tells which it was.
static int
s_recv_entries (void *socket, int timeout_ms, s_msg_t *msgs, int max, bool *batch_p)
{
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    *batch_p = false;
    if (zmq_poll (&item, 1, timeout_ms < 0 ? 0 : timeout_ms) <= 0)
        return -1;
    zmq_msg_t part;
    zmq_msg_init (&part);
    if (zmq_msg_recv (&part, socket, 0) < 0) {
        zmq_msg_close (&part);
        return -1;
    }
    const uint8_t *data = (const uint8_t *) zmq_msg_data (&part);
    size_t size = zmq_msg_size (&part);
    s_msg_t *msg = &msgs [0];
    memset (msg, 0, sizeof *msg);
    if (zmq_msg_more (&part) || size == 0 || data [0] != 0x00) {
        //  Classic: this frame is the header, the rest follows
        msg->header = zube__bus_header__unpack (NULL, size, data);
        msg->frames = 1;
        while (zmq_msg_more (&part) && zmq_msg_recv (&part, socket, 0) >= 0) {
            if (msg->frames == 1)
                s_msg_payload_set (msg, &part);
            msg->frames++;
        }
        zmq_msg_close (&part);
        return 1;
    }
    *batch_p = true;
    zt_batch_entry_t entries [64];
    int count = zt_batch_parse (data, size, entries, max < 64 ? max : 64);
    zmq_msg_close (&part);
    ZT_ASSERT_MSG (count > 0, "a malformed batch from the broker");
    for (int index = 0; index < count; index++)
        msgs [index] = (s_msg_t) {entries [index].header, entries [index].payload,
                                  entries [index].payload_size, 2};
    return count;
}

//  READY and HEARTBEAT of a peer that reads batches say so
static void
s_batches_offer (Zube__BusHeader *header, bool batch)
{
    header->has_batch_format = header->has_batch_max_bytes = batch;
    header->batch_format = 1;
    header->batch_max_bytes = 1 << 20;
}

//  Says "I read batches" to the broker, as libzube does in its heartbeats
static void
s_batches_announce (void *socket)
{
    Zube__BusHeader heartbeat = s_header (ZUBE__BUS_KIND__BUS_HEARTBEAT);
    heartbeat.has_heartbeat_ms = true;
    heartbeat.heartbeat_ms = HEARTBEAT_MS;
    s_batches_offer (&heartbeat, true);
    s_send (socket, &heartbeat, false, NULL, 0);
}

static bool
s_call (void *socket, const char *service, const char *method, const void *payload,
        size_t payload_size, int deadline_ms, s_msg_t *reply)
{
    uint64_t cid = s_request_send (socket, service, method, deadline_ms, payload,
                                   payload_size, NULL);
    return cid && s_reply_wait (socket, cid, deadline_ms + 2000, reply);
}

static Zube__BusServicesReply *
s_services (void *socket, const char *prefix)
{
    Zube__BusServicesRequest query = ZUBE__BUS_SERVICES_REQUEST__INIT;
    query.service_prefix = (char *) prefix;
    uint8_t buffer [512];
    size_t size = zube__bus_services_request__pack (&query, buffer);
    s_msg_t reply;
    if (!s_call (socket, "bus", "services", buffer, size, 2000, &reply))
        return NULL;
    Zube__BusServicesReply *services = NULL;
    if (reply.header->status == ZUBE__STATUS_CODE__STATUS_OK)
        services = zube__bus_services_reply__unpack (NULL, reply.payload_size,
                                                     (const uint8_t *) reply.payload);
    s_msg_clear (&reply);
    return services;
}

static Zube__BusService *
s_service_find (Zube__BusServicesReply *services, const char *name)
{
    for (size_t i = 0; services && i < services->n_services; i++)
        if (streq (services->services [i]->name, name))
            return services->services [i];
    return NULL;
}

static bool
s_instances_wait (void *admin, const char *service, size_t count, int timeout_ms)
{
    int64_t end = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < end) {
        Zube__BusServicesReply *services = s_services (admin, service);
        Zube__BusService *entry = s_service_find (services, service);
        bool done = entry && entry->n_instances == count;
        zube__bus_services_reply__free_unpacked (services, NULL);
        if (done)
            return true;
        usleep (50000);
    }
    return false;
}

static Zube__BusCounters
s_counters (void *admin)
{
    Zube__BusCounters counters = ZUBE__BUS_COUNTERS__INIT;
    Zube__BusServicesReply *services = s_services (admin, "");
    if (services && services->counters)
        counters = *services->counters;
    zube__bus_services_reply__free_unpacked (services, NULL);
    return counters;
}

static void
s_curve_client (void *socket, const char *certs, const char *certs_of_name, const char *name)
{
    char path [PATH_MAX];
    zube_certs_public_path (certs, "broker", path, sizeof path);
    zcert_t *broker = zcert_load (path);
    zube_certs_secret_path (certs_of_name, name, path, sizeof path);
    zcert_t *mine = zcert_load (path);
    if (broker && mine) {
        zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, zcert_public_txt (broker), 40);
        zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, zcert_public_txt (mine), 40);
        zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, zcert_secret_txt (mine), 40);
    }
    zcert_destroy (&broker);
    zcert_destroy (&mine);
}

//  A socket to the broker; with certs, a CURVE client holding NAME's key
//  from the directory keys_dir (certs when NULL).
static void *
s_socket (void *ctx, int type, const char *endpoint, const char *certs,
          const char *keys_dir, const char *name)
{
    void *socket = zmq_socket (ctx, type);
    int linger = 0;
    zmq_setsockopt (socket, ZMQ_LINGER, &linger, sizeof linger);
    if (certs)
        s_curve_client (socket, certs, keys_dir ? keys_dir : certs, name);
    zmq_connect (socket, endpoint);
    return socket;
}

static void *
s_dealer (const char *endpoint, const char *certs, const char *name)
{
    return s_socket (s_ctx, ZMQ_DEALER, endpoint, certs, NULL, name);
}

static void
s_close (void **socket_p)
{
    if (*socket_p)
        zmq_close (*socket_p);
    *socket_p = NULL;
}


//  --------------------------------------------------------------------------
//  Processes

static pid_t
s_spawn (const char *const argv [], const char *log)
{
    pid_t pid = zt_spawn ((char *const *) argv, log);
    if (pid > 0 && s_spawned_count < 64)
        s_spawned [s_spawned_count++] = pid;
    return pid;
}

static char *
s_tempdir (const char *tag)
{
    char *dir = zt_tempdir (tag);
    if (dir && s_dirs_count < 32)
        s_dirs [s_dirs_count++] = strdup (dir);
    return dir;
}

//  Kills what a case left running (only children not yet reaped: waitpid
//  cannot touch anyone else's process) and removes its directories
static void
s_cleanup (void)
{
    for (int i = 0; i < s_spawned_count; i++)
        if (waitpid (s_spawned [i], NULL, WNOHANG) == 0) {
            kill (s_spawned [i], SIGKILL);
            waitpid (s_spawned [i], NULL, 0);
        }
    s_spawned_count = 0;
    for (int i = 0; i < s_dirs_count; i++) {
        if (!getenv ("ZUBE_TEST_KEEP"))
            zt_rmtree (s_dirs [i]);
        free (s_dirs [i]);
    }
    s_dirs_count = 0;
}

static bool
s_broker_start (broker_t *broker, const char *tag, const char *const extra [])
{
    memset (broker, 0, sizeof *broker);
    broker->dir = s_tempdir (tag);
    broker->port = zt_free_port (3);
    if (!broker->dir || broker->port < 0)
        return false;
    snprintf (broker->endpoint, sizeof broker->endpoint, "tcp://127.0.0.1:%d", broker->port);
    snprintf (broker->log, sizeof broker->log, "%s/broker.log", broker->dir);
    const char *argv [32] = {zt_program ("zube-broker"), "--bind", broker->endpoint,
                             "--heartbeat", HEARTBEAT_TEXT};
    int argc = 5;
    for (int i = 0; extra && extra [i] && argc < 30; i++)
        argv [argc++] = extra [i];
    argv [argc] = NULL;
    broker->pid = s_spawn (argv, broker->log);
    return broker->pid > 0 && zt_wait_port (broker->port, 5000);
}

//  Stops the broker (SIGTERM) and returns its wait status
static int
s_broker_stop (broker_t *broker)
{
    int status = -1;
    if (broker->pid > 0)
        status = zt_stop (broker->pid, SIGTERM, 5000);
    broker->pid = 0;
    if (broker->dir) {
        if (getenv ("ZUBE_TEST_KEEP"))
            fprintf (stderr, "# kept %s\n", broker->dir);
        else
            zt_rmtree (broker->dir);
        free (broker->dir);
        broker->dir = NULL;
    }
    return status;
}

//  mode: "answer", "hang"; with "batch" in it, the fake reads batches
//  (says so in READY and heartbeats) and answers what one batch brought
//  in one batch
static pid_t
s_fake_start_mode (broker_t *broker, const char *service, const char *instance,
                   const char *certs, const char *name, const char *mode)
{
    const char *argv [] = {s_self, "--fake-service", broker->endpoint, service, instance,
                           certs ? certs : "-", name ? name : "-", mode, NULL};
    char log [600];
    snprintf (log, sizeof log, "%s/fake-%s.log", broker->dir, instance);
    return s_spawn (argv, log);
}

static pid_t
s_fake_start (broker_t *broker, const char *service, const char *instance,
              const char *certs, const char *name, bool hang)
{
    return s_fake_start_mode (broker, service, instance, certs, name,
                              hang ? "hang" : "answer");
}

static int
s_wait_exit (pid_t pid, int timeout_ms)
{
    int status = 0;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (waitpid (pid, &status, WNOHANG) == pid)
            return status;
        usleep (10000);
    }
    kill (pid, SIGKILL);
    waitpid (pid, &status, 0);
    return -1;
}

//  Runs zube-broker with argv to completion; returns its wait status and
//  its output in *output
static int
s_broker_run (const char *const argv [], char **output)
{
    char *dir = zt_tempdir ("brokerrun");
    char log [512];
    snprintf (log, sizeof log, "%s/out.log", dir);
    const char *full [32] = {zt_program ("zube-broker")};
    int argc = 1;
    for (int i = 0; argv [i] && argc < 31; i++)
        full [argc++] = argv [i];
    full [argc] = NULL;
    pid_t pid = s_spawn (full, log);
    int status = s_wait_exit (pid, 5000);
    *output = zt_read_file (log);
    zt_rmtree (dir);
    free (dir);
    return status;
}


//  --------------------------------------------------------------------------
//  The fake service: READY, heartbeats, and answers
//  "INSTANCE\nSENDER\nPAYLOAD" (or nothing, when told to hang).

//  The fake's answer to request: *reply (pointing into request) and the
//  text to send with it, "INSTANCE\nSENDER\nPAYLOAD" (zstr_free it)
static char *
s_fake_answer (const Zube__BusHeader *request, const char *instance, const char *payload,
               Zube__BusHeader *reply)
{
    *reply = s_header (ZUBE__BUS_KIND__BUS_REPLY);
    reply->has_correlation_id = true;
    reply->correlation_id = request->correlation_id;
    reply->has_route = request->has_route;
    reply->route = request->route;
    reply->sender = (char *) "forged-by-service";
    return zsys_sprintf ("%s\n%s\n%s", instance, request->sender ? request->sender : "(none)",
                         payload ? payload : "");
}

static int
s_fake_service (int argc, char *argv [])
{
    if (argc < 8)
        return 2;
    const char *endpoint = argv [2], *service = argv [3], *instance = argv [4];
    const char *certs = streq (argv [5], "-") ? NULL : argv [5];
    const char *name = streq (argv [6], "-") ? NULL : argv [6];
    bool hang = strstr (argv [7], "hang") != NULL;
    bool batch = strstr (argv [7], "batch") != NULL;
    void *ctx = zmq_ctx_new ();
    void *socket = s_socket (ctx, ZMQ_DEALER, endpoint, certs, NULL, name);
    Zube__BusHeader ready = s_header (ZUBE__BUS_KIND__BUS_READY);
    ready.service = (char *) service;
    ready.instance = (char *) instance;
    ready.has_heartbeat_ms = true;
    ready.heartbeat_ms = HEARTBEAT_MS;
    s_batches_offer (&ready, batch);
    s_send (socket, &ready, false, NULL, 0);
    int64_t last_sent = zt_now_ms ();
    char epoch [64] = "";
    pid_t parent = getppid ();
    //  Ends with its test, even one that died without stopping it
    while (getppid () == parent) {
        if (batch) {
            s_msg_t msgs [64];
            bool was_batch;
            int count = s_recv_entries (socket, 20, msgs, 64, &was_batch);
            zt_batch_t answers = {NULL, 0, 0};
            for (int i = 0; i < count; i++) {
                Zube__BusHeader *header = msgs [i].header;
                if (header && header->kind == ZUBE__BUS_KIND__BUS_REQUEST && !hang) {
                    Zube__BusHeader reply;
                    char *text = s_fake_answer (header, instance, msgs [i].payload, &reply);
                    if (was_batch)
                        zt_batch_entry (&answers, &reply, text);
                    else
                        s_send (socket, &reply, true, text, strlen (text));
                    zstr_free (&text);
                }
                else
                if (header && header->kind == ZUBE__BUS_KIND__BUS_DISCONNECT)
                    parent = 0;
                s_msg_clear (&msgs [i]);
            }
            if (answers.count) {
                zt_batch_send (socket, &answers, -1);
                last_sent = zt_now_ms ();
            }
            if (!parent)
                break;
            if (zt_now_ms () - last_sent >= HEARTBEAT_MS) {
                Zube__BusHeader heartbeat = s_header (ZUBE__BUS_KIND__BUS_HEARTBEAT);
                heartbeat.has_heartbeat_ms = true;
                heartbeat.heartbeat_ms = HEARTBEAT_MS;
                s_batches_offer (&heartbeat, true);
                s_send (socket, &heartbeat, false, NULL, 0);
                last_sent = zt_now_ms ();
            }
            continue;
        }
        s_msg_t msg;
        if (s_recv (socket, 20, &msg) && msg.header) {
            Zube__BusHeader *header = msg.header;
            if (header->kind == ZUBE__BUS_KIND__BUS_REQUEST && !hang) {
                Zube__BusHeader reply;
                char *text = s_fake_answer (header, instance, msg.payload, &reply);
                s_send (socket, &reply, true, text, strlen (text));
                zstr_free (&text);
                last_sent = zt_now_ms ();
            }
            else
            if (header->kind == ZUBE__BUS_KIND__BUS_HEARTBEAT && header->instance) {
                //  A new epoch is a restarted broker: register again
                if (*epoch && strcmp (epoch, header->instance) != 0)
                    s_send (socket, &ready, false, NULL, 0);
                snprintf (epoch, sizeof epoch, "%s", header->instance);
            }
            else
            if (header->kind == ZUBE__BUS_KIND__BUS_DISCONNECT)
                break;
        }
        s_msg_clear (&msg);
        if (zt_now_ms () - last_sent >= HEARTBEAT_MS) {
            Zube__BusHeader heartbeat = s_header (ZUBE__BUS_KIND__BUS_HEARTBEAT);
            heartbeat.has_heartbeat_ms = true;
            heartbeat.heartbeat_ms = HEARTBEAT_MS;
            s_send (socket, &heartbeat, false, NULL, 0);
            last_sent = zt_now_ms ();
        }
    }
    zmq_close (socket);
    zmq_ctx_term (ctx);
    return 0;
}

//  Splits a fake service's answer into instance and sender
static void
s_answer_parse (const char *payload, char *instance, char *sender, size_t size)
{
    instance [0] = sender [0] = 0;
    if (!payload)
        return;
    const char *first = strchr (payload, '\n');
    if (!first)
        return;
    snprintf (instance, size, "%.*s", (int) (first - payload), payload);
    const char *second = strchr (first + 1, '\n');
    if (second)
        snprintf (sender, size, "%.*s", (int) (second - first - 1), first + 1);
}


//  --------------------------------------------------------------------------
//  Cases

static void
test_request_reply (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "rr", (const char *[]) {"--insecure", NULL}));
    pid_t fake = s_fake_start (&broker, "echo", "echo-1", NULL, NULL, false);
    void *client = s_dealer (broker.endpoint, NULL, NULL);
    ZT_ASSERT (s_instances_wait (client, "echo", 1, 5000));

    uint64_t cid = s_request_send (client, "echo", "say", 3000, "hello", 5, "root");
    s_msg_t reply;
    ZT_ASSERT (s_reply_wait (client, cid, 5000, &reply));
    ZT_ASSERT_INT_EQ (reply.header->status, ZUBE__STATUS_CODE__STATUS_OK);
    ZT_ASSERT_INT_EQ (reply.frames, 2);
    ZT_ASSERT_STR_EQ (reply.payload, "echo-1\nanonymous\nhello");
    //  The broker clears the route and stamps the replier's identity
    ZT_ASSERT (!reply.header->has_route);
    ZT_ASSERT_STR_EQ (reply.header->sender, "anonymous");
    s_msg_clear (&reply);

    //  An empty payload is still a payload frame
    cid = s_request_send (client, "echo", "say", 3000, "", 0, NULL);
    ZT_ASSERT (s_reply_wait (client, cid, 5000, &reply));
    ZT_ASSERT_STR_EQ (reply.payload, "echo-1\nanonymous\n");
    s_msg_clear (&reply);

    Zube__BusCounters counters = s_counters (client);
    ZT_ASSERT_INT_EQ (counters.routed, 2);
    ZT_ASSERT_INT_EQ (counters.replied, 2);
    s_close (&client);
    zt_stop (fake, SIGKILL, 1000);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

static void
test_bus_service (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "bus", (const char *[]) {"--insecure",
                                                                 "--max-message-size",
                                                                 "100000", NULL}));
    pid_t fake_a = s_fake_start (&broker, "api", "api-1", NULL, NULL, false);
    pid_t fake_b = s_fake_start (&broker, "node/sim-0001", "zubelet-1", NULL, NULL, false);
    void *client = s_dealer (broker.endpoint, NULL, NULL);
    ZT_ASSERT (s_instances_wait (client, "api", 1, 5000));
    ZT_ASSERT (s_instances_wait (client, "node/sim-0001", 1, 5000));

    //  services: everything, sorted, with instances and counters
    Zube__BusServicesReply *services = s_services (client, "");
    ZT_ASSERT (services);
    ZT_ASSERT_INT_EQ (services->n_services, 2);
    ZT_ASSERT_STR_EQ (services->services [0]->name, "api");
    ZT_ASSERT_STR_EQ (services->services [1]->name, "node/sim-0001");
    Zube__BusInstance *instance = services->services [0]->instances [0];
    ZT_ASSERT_STR_EQ (instance->instance, "api-1");
    ZT_ASSERT_STR_EQ (instance->sender, "anonymous");
    ZT_ASSERT_INT_EQ (instance->heartbeat_ms, HEARTBEAT_MS);
    ZT_ASSERT (services->counters);
    ZT_ASSERT (!services->secure);
    ZT_ASSERT_STR_EQ (services->version, ZUBE_VERSION_STRING);
    zube__bus_services_reply__free_unpacked (services, NULL);
    //  ... and by prefix
    services = s_services (client, "node/");
    ZT_ASSERT (services);
    ZT_ASSERT_INT_EQ (services->n_services, 1);
    ZT_ASSERT_STR_EQ (services->services [0]->name, "node/sim-0001");
    zube__bus_services_reply__free_unpacked (services, NULL);

    //  info: the event endpoints and limits
    s_msg_t reply;
    ZT_ASSERT (s_call (client, "bus", "info", NULL, 0, 2000, &reply));
    ZT_ASSERT_INT_EQ (reply.header->status, ZUBE__STATUS_CODE__STATUS_OK);
    Zube__BusInfoReply *info = zube__bus_info_reply__unpack (NULL, reply.payload_size,
                                                             (uint8_t *) reply.payload);
    ZT_ASSERT (info);
    char expected [64];
    snprintf (expected, sizeof expected, "tcp://127.0.0.1:%d", broker.port + 1);
    ZT_ASSERT_STR_EQ (info->publish_endpoint, expected);
    snprintf (expected, sizeof expected, "tcp://127.0.0.1:%d", broker.port + 2);
    ZT_ASSERT_STR_EQ (info->subscribe_endpoint, expected);
    ZT_ASSERT_INT_EQ (info->max_message_size, 100000);
    ZT_ASSERT_INT_EQ (info->heartbeat_ms, HEARTBEAT_MS);
    ZT_ASSERT (!info->secure);
    zube__bus_info_reply__free_unpacked (info, NULL);
    s_msg_clear (&reply);

    //  ping: the same BusEcho back
    Zube__BusEcho echo = ZUBE__BUS_ECHO__INIT;
    echo.has_data = true;
    echo.data.data = (uint8_t *) "marco";
    echo.data.len = 5;
    echo.has_sent_ns = true;
    echo.sent_ns = 12345;
    uint8_t buffer [64];
    size_t size = zube__bus_echo__pack (&echo, buffer);
    ZT_ASSERT (s_call (client, "bus", "ping", buffer, size, 2000, &reply));
    ZT_ASSERT_INT_EQ (reply.header->status, ZUBE__STATUS_CODE__STATUS_OK);
    ZT_ASSERT_INT_EQ (reply.payload_size, size);
    ZT_ASSERT (memcmp (reply.payload, buffer, size) == 0);
    s_msg_clear (&reply);

    //  an unknown method
    ZT_ASSERT (s_call (client, "bus", "reboot", NULL, 0, 2000, &reply));
    ZT_ASSERT_INT_EQ (reply.header->status, ZUBE__STATUS_CODE__STATUS_NOT_IMPLEMENTED);
    ZT_ASSERT_STR_CONTAINS (reply.header->error, "reboot");
    s_msg_clear (&reply);

    s_close (&client);
    zt_stop (fake_a, SIGKILL, 1000);
    zt_stop (fake_b, SIGKILL, 1000);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

static void
test_load_balancing (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "lb", (const char *[]) {"--insecure", NULL}));
    const char *names [3] = {"lb-a", "lb-b", "lb-c"};
    pid_t fakes [3];
    for (int i = 0; i < 3; i++)
        fakes [i] = s_fake_start (&broker, "lb", names [i], NULL, NULL, false);
    void *client = s_dealer (broker.endpoint, NULL, NULL);
    ZT_ASSERT (s_instances_wait (client, "lb", 3, 5000));

    //  300 requests, 30 in flight at a time
    int total = 300, sent = 0, answered = 0, counts [3] = {0, 0, 0};
    for (; sent < 30; sent++)
        ZT_ASSERT (s_request_send (client, "lb", "work", 5000, "x", 1, NULL));
    int64_t end = zt_now_ms () + 20000;
    while (answered < total && zt_now_ms () < end) {
        s_msg_t msg;
        if (!s_recv (client, 1000, &msg))
            continue;
        if (msg.header && msg.header->kind == ZUBE__BUS_KIND__BUS_REPLY) {
            ZT_ASSERT_INT_EQ (msg.header->status, ZUBE__STATUS_CODE__STATUS_OK);
            char instance [64], sender [64];
            s_answer_parse (msg.payload, instance, sender, sizeof instance);
            for (int i = 0; i < 3; i++)
                if (streq (instance, names [i]))
                    counts [i]++;
            answered++;
            if (sent < total) {
                ZT_ASSERT (s_request_send (client, "lb", "work", 5000, "x", 1, NULL));
                sent++;
            }
        }
        s_msg_clear (&msg);
    }
    ZT_ASSERT_INT_EQ (answered, total);
    for (int i = 0; i < 3; i++)
        ZT_ASSERT_MSG (counts [i] >= total / 5, "instance %s served %d of %d (%d/%d/%d)",
                       names [i], counts [i], total, counts [0], counts [1], counts [2]);
    s_close (&client);
    for (int i = 0; i < 3; i++)
        zt_stop (fakes [i], SIGKILL, 1000);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

static void
test_instance_killed (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "kill", (const char *[]) {"--insecure", NULL}));
    pid_t fake = s_fake_start (&broker, "slow", "slow-1", NULL, NULL, true);
    void *client = s_dealer (broker.endpoint, NULL, NULL);
    void *admin = s_dealer (broker.endpoint, NULL, NULL);
    ZT_ASSERT (s_instances_wait (admin, "slow", 1, 5000));

    uint64_t cid = s_request_send (client, "slow", "work", 10000, "x", 1, NULL);
    //  Wait until the instance holds it, then kill the instance
    bool held = false;
    for (int64_t end = zt_now_ms () + 3000; !held && zt_now_ms () < end; ) {
        Zube__BusServicesReply *services = s_services (admin, "slow");
        Zube__BusService *entry = s_service_find (services, "slow");
        held = entry && entry->n_instances == 1 && entry->instances [0]->in_flight == 1;
        zube__bus_services_reply__free_unpacked (services, NULL);
        if (!held)
            usleep (20000);
    }
    ZT_ASSERT (held);
    int64_t killed = zt_now_ms ();
    zt_stop (fake, SIGKILL, 1000);

    s_msg_t reply;
    ZT_ASSERT (s_reply_wait (client, cid, 5000, &reply));
    int64_t elapsed = zt_now_ms () - killed;
    ZT_ASSERT_INT_EQ (reply.header->status, ZUBE__STATUS_CODE__STATUS_UNAVAILABLE);
    ZT_ASSERT_STR_CONTAINS (reply.header->error, "slow-1");
    ZT_ASSERT_STR_CONTAINS (reply.header->error, "died");
    ZT_ASSERT_MSG (elapsed < 5000, "UNAVAILABLE after %lld ms", (long long) elapsed);
    s_msg_clear (&reply);

    //  After 3 heartbeats the broker lists no dead instance
    usleep (3 * HEARTBEAT_MS * 1000);
    Zube__BusServicesReply *services = s_services (admin, "");
    ZT_ASSERT (services);
    Zube__BusService *entry = s_service_find (services, "slow");
    ZT_ASSERT (!entry || entry->n_instances == 0);
    ZT_ASSERT (services->counters->instance_deaths >= 1);
    zube__bus_services_reply__free_unpacked (services, NULL);
    s_close (&client);
    s_close (&admin);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

//  The test itself plays the instance: only the peer a request went to can
//  answer it, and a DISCONNECT answers what it still held
static void
test_reply_ownership (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "owner", (const char *[]) {"--insecure", NULL}));
    void *client = s_dealer (broker.endpoint, NULL, NULL);
    void *instance = s_dealer (broker.endpoint, NULL, NULL);
    void *rogue = s_dealer (broker.endpoint, NULL, NULL);
    Zube__BusHeader ready = s_header (ZUBE__BUS_KIND__BUS_READY);
    ready.service = (char *) "owned";
    ready.instance = (char *) "owned-1";
    ready.has_heartbeat_ms = true;
    ready.heartbeat_ms = 5000;
    s_send (instance, &ready, false, NULL, 0);
    ZT_ASSERT (s_instances_wait (client, "owned", 1, 5000));

    uint64_t cid = s_request_send (client, "owned", "work", 5000, "x", 1, NULL);
    s_msg_t request = {0};
    bool got = false;
    for (int64_t end = zt_now_ms () + 3000; !got && zt_now_ms () < end; ) {
        s_msg_clear (&request);
        got = s_recv (instance, 500, &request) && request.header
           && request.header->kind == ZUBE__BUS_KIND__BUS_REQUEST;
    }
    ZT_ASSERT (got);
    ZT_ASSERT (request.header->has_route);
    ZT_ASSERT_INT_EQ (request.header->correlation_id, cid);
    ZT_ASSERT_STR_EQ (request.header->sender, "anonymous");
    ZT_ASSERT (request.header->deadline_ms > 0 && request.header->deadline_ms <= 5000);

    //  Another peer that knows the route cannot answer in its place
    Zube__BusHeader reply = s_header (ZUBE__BUS_KIND__BUS_REPLY);
    reply.has_correlation_id = true;
    reply.correlation_id = cid;
    reply.has_route = true;
    reply.route = request.header->route;
    s_send (rogue, &reply, true, "forged", 6);
    s_msg_t answer;
    ZT_ASSERT (!s_reply_wait (client, cid, 300, &answer));
    //  The instance can, once
    s_send (instance, &reply, true, "real", 4);
    ZT_ASSERT (s_reply_wait (client, cid, 2000, &answer));
    ZT_ASSERT_STR_EQ (answer.payload, "real");
    s_msg_clear (&answer);
    s_send (instance, &reply, true, "again", 5);
    ZT_ASSERT (!s_reply_wait (client, cid, 300, &answer));
    s_msg_clear (&request);

    //  DISCONNECT: what the instance held is answered UNAVAILABLE
    cid = s_request_send (client, "owned", "work", 5000, "y", 1, NULL);
    got = false;
    for (int64_t end = zt_now_ms () + 3000; !got && zt_now_ms () < end; ) {
        s_msg_clear (&request);
        got = s_recv (instance, 500, &request) && request.header
           && request.header->kind == ZUBE__BUS_KIND__BUS_REQUEST;
    }
    ZT_ASSERT (got);
    s_msg_clear (&request);
    Zube__BusHeader disconnect = s_header (ZUBE__BUS_KIND__BUS_DISCONNECT);
    disconnect.service = (char *) "owned";
    s_send (instance, &disconnect, false, NULL, 0);
    ZT_ASSERT (s_reply_wait (client, cid, 2000, &answer));
    ZT_ASSERT_INT_EQ (answer.header->status, ZUBE__STATUS_CODE__STATUS_UNAVAILABLE);
    ZT_ASSERT_STR_CONTAINS (answer.header->error, "owned-1");
    s_msg_clear (&answer);
    Zube__BusCounters counters = s_counters (client);
    ZT_ASSERT (counters.dropped >= 2);
    ZT_ASSERT_INT_EQ (counters.instance_deaths, 0);

    s_close (&client);
    s_close (&instance);
    s_close (&rogue);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

static void
test_waiting_for_instance (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "wait", (const char *[]) {"--insecure",
                                                                  "--max-waiting", "2", NULL}));
    void *client = s_dealer (broker.endpoint, NULL, NULL);
    void *admin = s_dealer (broker.endpoint, NULL, NULL);

    //  Nobody serves "late": UNAVAILABLE at the deadline, not before
    int64_t start = zt_now_ms ();
    uint64_t cid = s_request_send (client, "late", "work", 1000, "x", 1, NULL);
    s_msg_t reply;
    ZT_ASSERT (s_reply_wait (client, cid, 5000, &reply));
    int64_t elapsed = zt_now_ms () - start;
    ZT_ASSERT_INT_EQ (reply.header->status, ZUBE__STATUS_CODE__STATUS_UNAVAILABLE);
    ZT_ASSERT_STR_CONTAINS (reply.header->error, "no instance of service \"late\"");
    ZT_ASSERT_MSG (elapsed >= 900 && elapsed < 4000, "answered after %lld ms",
                   (long long) elapsed);
    s_msg_clear (&reply);

    //  Waiting is bounded per service
    uint64_t first = s_request_send (client, "late", "work", 8000, "1", 1, NULL);
    uint64_t second = s_request_send (client, "late", "work", 8000, "2", 1, NULL);
    uint64_t third = s_request_send (client, "late", "work", 8000, "3", 1, NULL);
    ZT_ASSERT (s_reply_wait (client, third, 2000, &reply));
    ZT_ASSERT_INT_EQ (reply.header->status, ZUBE__STATUS_CODE__STATUS_TOO_MANY_REQUESTS);
    s_msg_clear (&reply);
    Zube__BusServicesReply *services = s_services (admin, "late");
    Zube__BusService *entry = s_service_find (services, "late");
    ZT_ASSERT (entry && entry->waiting == 2 && entry->n_instances == 0);
    zube__bus_services_reply__free_unpacked (services, NULL);

    //  An instance that registers in time serves them, in order
    usleep (300000);
    pid_t fake = s_fake_start (&broker, "late", "late-1", NULL, NULL, false);
    ZT_ASSERT (s_reply_wait (client, first, 8000, &reply));
    ZT_ASSERT_INT_EQ (reply.header->status, ZUBE__STATUS_CODE__STATUS_OK);
    ZT_ASSERT_STR_EQ (reply.payload, "late-1\nanonymous\n1");
    ZT_ASSERT (reply.header->has_correlation_id);
    s_msg_clear (&reply);
    ZT_ASSERT (s_reply_wait (client, second, 8000, &reply));
    ZT_ASSERT_STR_EQ (reply.payload, "late-1\nanonymous\n2");
    s_msg_clear (&reply);
    ZT_ASSERT (s_counters (admin).expired >= 1);

    s_close (&client);
    s_close (&admin);
    zt_stop (fake, SIGKILL, 1000);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

//  Collects the replies to correlation ids first..first+count-1 from socket
//  until each has one or timeout_ms passed; counts them in seen[], checks
//  every payload ends with "\n" + the payload sent (payloads[i]), and says
//  whether any came in a batch and which instances answered
static int
s_replies_collect (void *socket, uint64_t first, int count, const char *const *payloads,
                   int *seen, int timeout_ms, bool *batched_p, char instances [][64])
{
    int answered = 0;
    *batched_p = false;
    for (int64_t end = zt_now_ms () + timeout_ms; answered < count && zt_now_ms () < end;) {
        s_msg_t msgs [64];
        bool batch;
        int got = s_recv_entries (socket, 200, msgs, 64, &batch);
        for (int i = 0; i < got; i++) {
            Zube__BusHeader *header = msgs [i].header;
            ZT_ASSERT (header);
            if (header->kind == ZUBE__BUS_KIND__BUS_REPLY) {
                *batched_p |= batch;
                ZT_ASSERT_MSG (header->status == ZUBE__STATUS_CODE__STATUS_OK, "status %d: %s",
                               header->status, header->error ? header->error : "");
                ZT_ASSERT (header->correlation_id >= first
                           && header->correlation_id < first + (uint64_t) count);
                int index = (int) (header->correlation_id - first);
                char sender [64];
                s_answer_parse (msgs [i].payload, instances [index], sender, 64);
                ZT_ASSERT_STR_EQ (sender, "anonymous");
                ZT_ASSERT_STR_EQ (header->sender, "anonymous");
                const char *tail = strrchr (msgs [i].payload, '\n');
                ZT_ASSERT (tail);
                ZT_ASSERT_STR_EQ (tail + 1, payloads [index]);
                seen [index]++;
                answered++;
            }
            s_msg_clear (&msgs [i]);
        }
    }
    return answered;
}

//  Batches: a client that said it reads batches sends 40 requests in one
//  frame; a client that did not says nothing and sends 40 the same way.
//  Each is load-balanced on its own over an instance that reads batches
//  and one that does not, and answered exactly once; only the first client
//  gets batches back, the other classic two-frame messages only.
static void
test_batch_round_trip (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "batch", (const char *[]) {"--insecure", NULL}));
    pid_t fakes [2];
    fakes [0] = s_fake_start_mode (&broker, "bt", "bt-batch", NULL, NULL, "answer-batch");
    fakes [1] = s_fake_start (&broker, "bt", "bt-classic", NULL, NULL, false);
    void *reader = s_dealer (broker.endpoint, NULL, NULL);
    void *plain = s_dealer (broker.endpoint, NULL, NULL);
    ZT_ASSERT (s_instances_wait (plain, "bt", 2, 5000));
    //  The broker's heartbeat says it reads batches
    s_batches_announce (reader);
    s_msg_t msg;
    ZT_ASSERT (s_recv (reader, 2000, &msg));
    ZT_ASSERT (msg.header && msg.header->kind == ZUBE__BUS_KIND__BUS_HEARTBEAT);
    ZT_ASSERT (msg.header->has_batch_format && msg.header->batch_format == 1);
    ZT_ASSERT (msg.header->has_batch_max_bytes && msg.header->batch_max_bytes > 0);
    s_msg_clear (&msg);
    Zube__BusCounters before = s_counters (plain);

    enum { COUNT = 40 };
    void *clients [2] = {reader, plain};
    for (int c = 0; c < 2; c++) {
        char texts [COUNT][16];
        const char *payloads [COUNT];
        zt_batch_t batch = {NULL, 0, 0};
        uint64_t first = s_next_cid;
        for (int i = 0; i < COUNT; i++) {
            snprintf (texts [i], sizeof texts [i], "p%d-%d", c, i);
            payloads [i] = texts [i];
            Zube__BusHeader header = s_request_header ("bt", 5000);
            header.sender = (char *) "forged";      //  overwritten by the broker
            zt_batch_entry (&batch, &header, texts [i]);
        }
        ZT_ASSERT_INT_EQ (zt_batch_send (clients [c], &batch, -1), 0);
        int seen [COUNT] = {0};
        char instances [COUNT][64];
        bool batched;
        ZT_ASSERT_INT_EQ (s_replies_collect (clients [c], first, COUNT, payloads, seen, 5000,
                                             &batched, instances), COUNT);
        int by_batch_instance = 0;
        for (int i = 0; i < COUNT; i++) {
            ZT_ASSERT_INT_EQ (seen [i], 1);
            by_batch_instance += streq (instances [i], "bt-batch");
        }
        ZT_ASSERT_MSG (by_batch_instance > 0 && by_batch_instance < COUNT,
                       "%d of %d to the instance that reads batches", by_batch_instance, COUNT);
        ZT_ASSERT_MSG (batched == (c == 0), "client %d got %s", c,
                       batched ? "a batch" : "no batch");
    }
    //  Nothing more: each request had one outcome
    bool batch;
    for (int c = 0; c < 2; c++) {
        s_msg_t msgs [64];
        int got;
        while ((got = s_recv_entries (clients [c], 300, msgs, 64, &batch)) > 0)
            for (int i = 0; i < got; i++) {
                ZT_ASSERT (msgs [i].header && msgs [i].header->kind != ZUBE__BUS_KIND__BUS_REPLY);
                s_msg_clear (&msgs [i]);
            }
    }
    Zube__BusCounters after = s_counters (plain);
    ZT_ASSERT_INT_EQ (after.routed - before.routed, 2 * COUNT);
    ZT_ASSERT_INT_EQ (after.replied - before.replied, 2 * COUNT);
    ZT_ASSERT_INT_EQ (after.dropped - before.dropped, 0);
    s_close (&reader);
    s_close (&plain);
    zt_stop (fakes [0], SIGKILL, 1000);
    zt_stop (fakes [1], SIGKILL, 1000);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

//  Bytes that only look like a batch: whatever they hold, the broker
//  drops them (a whole batch whose framing does not hold counts once, a bad
//  entry of a sound batch alone), never answers them, and keeps serving
static void
test_batch_malformed (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "badbatch", (const char *[]) {"--insecure",
                                                                      "--max-message-size",
                                                                      "4096", NULL}));
    pid_t fake = s_fake_start (&broker, "echo", "echo-1", NULL, NULL, false);
    void *good = s_dealer (broker.endpoint, NULL, NULL);
    void *bad = s_dealer (broker.endpoint, NULL, NULL);
    ZT_ASSERT (s_instances_wait (good, "echo", 1, 5000));
    Zube__BusCounters before = s_counters (good);
    Zube__BusHeader request = s_request_header ("echo", 5000);
    uint8_t packed [256];
    size_t packed_size = zube__bus_header__pack (&request, packed);
    int framing = 0;

    //  The marker alone, a wrong format, a truncated count
    zmq_send (bad, "\x00", 1, 0);
    zmq_send (bad, "\x00\x02\x01\x01\x08\x00", 6, 0);
    zmq_send (bad, "\x00\x01\x80", 3, 0);
    framing += 3;
    //  A count of 0, a huge count, one over the limit of 1024
    zt_batch_t batch = {NULL, 0, 0};
    zt_batch_send (bad, &batch, 0);
    zt_batch_entry (&batch, &request, "x");
    zt_batch_send (bad, &batch, 1LL << 40);
    for (int i = 0; i < 1025; i++)
        zt_batch_entry_raw (&batch, "", 0, "", 0);     //  2 bytes each
    zt_batch_send (bad, &batch, -1);
    framing += 3;
    //  A count over the entries there are, and under (bytes left over)
    zt_batch_entry (&batch, &request, "x");
    zt_batch_entry (&batch, &request, "x");
    zt_batch_send (bad, &batch, 3);
    zt_batch_entry (&batch, &request, "x");
    zt_batch_entry (&batch, &request, "x");
    zt_batch_send (bad, &batch, 1);
    framing += 2;
    //  A header length past the end, a payload length past the end, a
    //  length that is not a whole varint
    zt_batch_varint (&batch, 1000);
    zt_batch_bytes (&batch, packed, packed_size);
    batch.count = 1;
    zt_batch_send (bad, &batch, -1);
    zt_batch_varint (&batch, packed_size);
    zt_batch_bytes (&batch, packed, packed_size);
    zt_batch_varint (&batch, 50);
    zt_batch_bytes (&batch, "short", 5);
    batch.count = 1;
    zt_batch_send (bad, &batch, -1);
    zt_batch_varint (&batch, packed_size);
    zt_batch_bytes (&batch, packed, packed_size);
    zt_batch_bytes (&batch, "\xff\xff", 2);
    batch.count = 1;
    zt_batch_send (bad, &batch, -1);
    framing += 3;
    //  A batch frame with a second frame after it
    zt_batch_entry (&batch, &request, "x");
    zmq_send (bad, "\x00\x01\x01", 3, ZMQ_SNDMORE);
    zmq_send (bad, batch.data, batch.size, 0);
    free (batch.data);
    memset (&batch, 0, sizeof batch);
    framing += 1;
    //  Over --max-message-size as a whole
    char big [3000];
    memset (big, 'b', sizeof big - 1);
    big [sizeof big - 1] = 0;
    zt_batch_entry (&batch, &request, big);
    zt_batch_entry (&batch, &request, big);
    zt_batch_send (bad, &batch, -1);
    //  Random bytes after the marker and format
    srand (7);
    enum { NOISE = 200 };
    for (int n = 0; n < NOISE; n++) {
        uint8_t noise [64] = {0x00, 0x01};
        size_t size = 2 + (size_t) (rand () % 62);
        for (size_t i = 2; i < size; i++)
            noise [i] = (uint8_t) rand ();
        zmq_send (bad, noise, size, 0);
    }
    //  A sound batch: two good requests around an entry whose header does
    //  not parse, one that is a HEARTBEAT, and one of version 2
    Zube__BusHeader first = s_request_header ("echo", 5000);
    zt_batch_entry (&batch, &first, "one");
    zt_batch_entry_raw (&batch, "\xff\xff\xff", 3, "x", 1);
    Zube__BusHeader heartbeat = s_header (ZUBE__BUS_KIND__BUS_HEARTBEAT);
    zt_batch_entry (&batch, &heartbeat, "");
    Zube__BusHeader strange = s_request_header ("echo", 5000);
    strange.version = (Zube__BusVersion) 2;
    zt_batch_entry (&batch, &strange, "x");
    Zube__BusHeader second = s_request_header ("echo", 5000);
    zt_batch_entry (&batch, &second, "two");
    ZT_ASSERT_INT_EQ (zt_batch_send (bad, &batch, -1), 0);

    //  Exactly the two good ones are answered, each once
    int answered [2] = {0, 0}, others = 0;
    s_msg_t msgs [64];
    bool batched;
    int got;
    while ((got = s_recv_entries (bad, 1000, msgs, 64, &batched)) > 0)
        for (int i = 0; i < got; i++) {
            Zube__BusHeader *header = msgs [i].header;
            if (header && header->kind == ZUBE__BUS_KIND__BUS_REPLY) {
                if (header->correlation_id == first.correlation_id)
                    answered [0]++;
                else
                if (header->correlation_id == second.correlation_id)
                    answered [1]++;
                else
                    others++;
            }
            s_msg_clear (&msgs [i]);
        }
    ZT_ASSERT_INT_EQ (answered [0], 1);
    ZT_ASSERT_INT_EQ (answered [1], 1);
    ZT_ASSERT_INT_EQ (others, 0);
    Zube__BusCounters after = s_counters (good);
    ZT_ASSERT_INT_EQ (after.oversized - before.oversized, 1);
    ZT_ASSERT_INT_EQ (after.routed - before.routed, 2);
    //  Each framing case once, each noise frame at least once, the three
    //  bad entries of the sound batch
    ZT_ASSERT_MSG (after.dropped - before.dropped >= (uint64_t) (framing + NOISE + 3),
                   "dropped %" PRIu64 ", expected at least %d",
                   after.dropped - before.dropped, framing + NOISE + 3);
    s_msg_t reply;
    ZT_ASSERT (s_call (good, "echo", "say", "still", 5, 3000, &reply));
    ZT_ASSERT_STR_EQ (reply.payload, "echo-1\nanonymous\nstill");
    s_msg_clear (&reply);
    ZT_ASSERT_INT_EQ (waitpid (broker.pid, NULL, WNOHANG), 0);
    s_close (&good);
    s_close (&bad);
    zt_stop (fake, SIGKILL, 1000);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

//  Requests held in a batch by an instance that reads batches, which then
//  dies: each gets exactly one outcome, UNAVAILABLE "died"
static void
test_batch_instance_dies (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "batchkill", (const char *[]) {"--insecure", NULL}));
    pid_t fake = s_fake_start_mode (&broker, "slow", "slow-1", NULL, NULL, "hang-batch");
    void *client = s_dealer (broker.endpoint, NULL, NULL);
    void *admin = s_dealer (broker.endpoint, NULL, NULL);
    ZT_ASSERT (s_instances_wait (admin, "slow", 1, 5000));
    s_batches_announce (client);
    enum { COUNT = 20 };
    zt_batch_t batch = {NULL, 0, 0};
    uint64_t first = s_next_cid;
    for (int i = 0; i < COUNT; i++) {
        Zube__BusHeader header = s_request_header ("slow", 10000);
        zt_batch_entry (&batch, &header, "x");
    }
    ZT_ASSERT_INT_EQ (zt_batch_send (client, &batch, -1), 0);
    bool held = false;
    for (int64_t end = zt_now_ms () + 3000; !held && zt_now_ms () < end;) {
        Zube__BusServicesReply *services = s_services (admin, "slow");
        Zube__BusService *entry = s_service_find (services, "slow");
        held = entry && entry->n_instances == 1 && entry->instances [0]->in_flight == COUNT;
        zube__bus_services_reply__free_unpacked (services, NULL);
        if (!held)
            usleep (20000);
    }
    ZT_ASSERT (held);
    zt_stop (fake, SIGKILL, 1000);
    int seen [COUNT] = {0}, answered = 0;
    for (int64_t end = zt_now_ms () + 5000; answered < COUNT && zt_now_ms () < end;) {
        s_msg_t msgs [64];
        bool batched;
        int got = s_recv_entries (client, 200, msgs, 64, &batched);
        for (int i = 0; i < got; i++) {
            Zube__BusHeader *header = msgs [i].header;
            ZT_ASSERT (header);
            if (header->kind == ZUBE__BUS_KIND__BUS_REPLY) {
                ZT_ASSERT_INT_EQ (header->status, ZUBE__STATUS_CODE__STATUS_UNAVAILABLE);
                ZT_ASSERT_STR_CONTAINS (header->error, "died");
                ZT_ASSERT (header->correlation_id >= first
                           && header->correlation_id < first + COUNT);
                seen [header->correlation_id - first]++;
                answered++;
            }
            s_msg_clear (&msgs [i]);
        }
    }
    ZT_ASSERT_INT_EQ (answered, COUNT);
    for (int i = 0; i < COUNT; i++)
        ZT_ASSERT_INT_EQ (seen [i], 1);
    s_close (&client);
    s_close (&admin);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

//  Reads replies while they come (waiting up to timeout_ms for each
//  message); each must be TOO_MANY_REQUESTS for one of the count requests
//  from first on, counted in seen[]. Returns how many came.
static int
s_overloaded_read (void *client, int timeout_ms, uint64_t first, int count, int *seen)
{
    int replies = 0, got;
    s_msg_t msgs [64];
    bool batched;
    while ((got = s_recv_entries (client, timeout_ms, msgs, 64, &batched)) > 0)
        for (int i = 0; i < got; i++) {
            Zube__BusHeader *header = msgs [i].header;
            if (header && header->kind == ZUBE__BUS_KIND__BUS_REPLY) {
                ZT_ASSERT_INT_EQ (header->status, ZUBE__STATUS_CODE__STATUS_TOO_MANY_REQUESTS);
                ZT_ASSERT_STR_CONTAINS (header->error,
                                        "instance full-1 of service full is overloaded");
                ZT_ASSERT (header->correlation_id >= first
                           && header->correlation_id < first + (uint64_t) count);
                seen [header->correlation_id - first]++;
                replies++;
            }
            s_msg_clear (&msgs [i]);
        }
    return replies;
}

//  An instance that reads batches but has stopped reading its socket:
//  once the ROUTER's queue to it is full (--hwm 10 batches), the batches
//  for it are refused, and each request in them is answered
//  TOO_MANY_REQUESTS "overloaded" (once), as a classic request would be;
//  the broker keeps serving
static void
test_batch_instance_overloaded (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "batchfull", (const char *[]) {"--insecure", "--hwm",
                                                                       "10", NULL}));
    void *stuck = zmq_socket (s_ctx, ZMQ_DEALER);
    int option = 1;
    zmq_setsockopt (stuck, ZMQ_RCVHWM, &option, sizeof option);
    option = 4096;
    zmq_setsockopt (stuck, ZMQ_RCVBUF, &option, sizeof option);
    option = 0;
    zmq_setsockopt (stuck, ZMQ_LINGER, &option, sizeof option);
    zmq_connect (stuck, broker.endpoint);
    Zube__BusHeader ready = s_header (ZUBE__BUS_KIND__BUS_READY);
    ready.service = (char *) "full";
    ready.instance = (char *) "full-1";
    ready.has_heartbeat_ms = true;
    ready.heartbeat_ms = 60000;
    s_batches_offer (&ready, true);
    s_send (stuck, &ready, false, NULL, 0);
    void *client = s_dealer (broker.endpoint, NULL, NULL);
    ZT_ASSERT (s_instances_wait (client, "full", 1, 5000));
    Zube__BusCounters before = s_counters (client);

    enum { BATCHES = 400, PER_BATCH = 50, COUNT = BATCHES * PER_BATCH };
    static int seen [COUNT];
    memset (seen, 0, sizeof seen);
    char payload [1024];
    memset (payload, 'f', sizeof payload - 1);
    payload [sizeof payload - 1] = 0;
    uint64_t first = s_next_cid;
    int overloaded = 0;
    for (int b = 0; b < BATCHES; b++) {
        zt_batch_t batch = {NULL, 0, 0};
        for (int i = 0; i < PER_BATCH; i++) {
            Zube__BusHeader header = s_request_header ("full", 5000);
            zt_batch_entry (&batch, &header, payload);
        }
        ZT_ASSERT_INT_EQ (zt_batch_send (client, &batch, -1), 0);
        //  Read what came meanwhile, so that the replies do not pile up
        overloaded += s_overloaded_read (client, 0, first, COUNT, seen);
    }
    overloaded += s_overloaded_read (client, 500, first, COUNT, seen);
    ZT_ASSERT_MSG (overloaded > 0, "no request was refused");
    for (int i = 0; i < COUNT; i++)
        ZT_ASSERT_MSG (seen [i] <= 1, "request %d answered %d times", i, seen [i]);
    Zube__BusCounters after = s_counters (client);
    ZT_ASSERT (after.dropped - before.dropped >= (uint64_t) overloaded);
    ZT_ASSERT (after.routed - before.routed <= (uint64_t) (COUNT - overloaded));
    printf ("# %d of %d requests refused as overloaded\n", overloaded, COUNT);
    s_msg_t reply;
    ZT_ASSERT (s_call (client, "bus", "ping", "p", 1, 3000, &reply));
    ZT_ASSERT_STR_EQ (reply.payload, "p");
    s_msg_clear (&reply);
    s_close (&client);
    s_close (&stuck);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

static void
test_malformed_input (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "bad", (const char *[]) {"--insecure",
                                                                 "--max-message-size", "65536",
                                                                 NULL}));
    pid_t fake = s_fake_start (&broker, "echo", "echo-1", NULL, NULL, false);
    void *good = s_dealer (broker.endpoint, NULL, NULL);
    void *bad = s_dealer (broker.endpoint, NULL, NULL);
    ZT_ASSERT (s_instances_wait (good, "echo", 1, 5000));
    Zube__BusCounters before = s_counters (good);

    //  Random bytes, as a header alone and with a payload
    uint8_t noise [200];
    srand (42);
    for (size_t i = 0; i < sizeof noise; i++)
        noise [i] = (uint8_t) rand ();
    zmq_send (bad, noise, sizeof noise, 0);
    zmq_send (bad, noise, 64, ZMQ_SNDMORE);
    zmq_send (bad, noise + 64, 64, 0);
    //  A truncated header
    Zube__BusHeader header = s_header (ZUBE__BUS_KIND__BUS_REQUEST);
    header.service = (char *) "echo";
    header.method = (char *) "say";
    header.has_correlation_id = true;
    header.correlation_id = 99;
    uint8_t packed [256];
    size_t size = zube__bus_header__pack (&header, packed);
    zmq_send (bad, packed, size - 3, ZMQ_SNDMORE);
    zmq_send (bad, "x", 1, 0);
    //  Wrong frame counts: a REQUEST without payload, one with 4 frames,
    //  a HEARTBEAT with a payload
    zmq_send (bad, packed, size, 0);
    zmq_send (bad, packed, size, ZMQ_SNDMORE);
    zmq_send (bad, "x", 1, ZMQ_SNDMORE);
    zmq_send (bad, "y", 1, ZMQ_SNDMORE);
    zmq_send (bad, "z", 1, 0);
    Zube__BusHeader heartbeat = s_header (ZUBE__BUS_KIND__BUS_HEARTBEAT);
    s_send (bad, &heartbeat, true, "x", 1);
    //  Unknown kind and version
    Zube__BusHeader strange = header;
    strange.kind = (Zube__BusKind) 42;
    s_send (bad, &strange, true, "x", 1);
    strange = header;
    strange.version = (Zube__BusVersion) 2;
    s_send (bad, &strange, true, "x", 1);
    //  An EVENT on the request socket
    strange = header;
    strange.kind = ZUBE__BUS_KIND__BUS_EVENT;
    s_send (bad, &strange, true, "x", 1);
    int expected_dropped = 9;
    //  Over --max-message-size: dropped and counted
    size_t big = 100000;
    char *payload = (char *) calloc (1, 4 * big);
    s_send (bad, &header, true, payload, big);
    //  Far over it: libzmq itself closes that connection
    s_send (bad, &header, true, payload, 4 * big);
    free (payload);
    //  Garbage on a raw TCP connection
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons (broker.port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0) {
        ssize_t rc = write (fd, noise, sizeof noise);
        (void) rc;
    }
    close (fd);

    //  The broker never answered any of it, and still serves
    s_msg_t msg;
    bool answered = false;
    while (s_recv (bad, 300, &msg)) {
        if (msg.header && msg.header->kind == ZUBE__BUS_KIND__BUS_REPLY)
            answered = true;
        s_msg_clear (&msg);
    }
    ZT_ASSERT (!answered);
    s_msg_t reply;
    ZT_ASSERT (s_call (good, "echo", "say", "still here", 10, 3000, &reply));
    ZT_ASSERT_INT_EQ (reply.header->status, ZUBE__STATUS_CODE__STATUS_OK);
    ZT_ASSERT_STR_EQ (reply.payload, "echo-1\nanonymous\nstill here");
    s_msg_clear (&reply);
    Zube__BusCounters after = s_counters (good);
    ZT_ASSERT_MSG (after.dropped - before.dropped >= (uint64_t) expected_dropped,
                   "dropped %llu, expected %d", (unsigned long long) (after.dropped - before.dropped),
                   expected_dropped);
    ZT_ASSERT_INT_EQ (after.oversized - before.oversized, 1);
    ZT_ASSERT_INT_EQ (after.routed - before.routed, 1);

    s_close (&good);
    s_close (&bad);
    zt_stop (fake, SIGKILL, 1000);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

//  Receives one event: [topic][header][payload]
static bool
s_event_recv (void *sub, int timeout_ms, char *topic, size_t topic_size, s_msg_t *msg)
{
    memset (msg, 0, sizeof *msg);
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return false;
    int rc = zmq_recv (sub, topic, topic_size - 1, 0);
    topic [rc < 0 ? 0 : rc >= (int) topic_size ? (int) topic_size - 1 : rc] = 0;
    int more = 0;
    size_t more_size = sizeof more;
    zmq_getsockopt (sub, ZMQ_RCVMORE, &more, &more_size);
    if (!more)
        return true;
    return s_recv (sub, 0, msg);
}

static int
s_event_publish (void *pub, const char *topic, const char *header_topic, const char *payload)
{
    Zube__BusHeader header = s_header (ZUBE__BUS_KIND__BUS_EVENT);
    header.topic = (char *) header_topic;
    header.sender = (char *) "root";
    zmq_send (pub, topic, strlen (topic), ZMQ_SNDMORE);
    return s_send (pub, &header, true, payload, strlen (payload));
}

//  Publishes until the subscriber gets a matching event; returns the
//  sender seen and checks nothing unsubscribed came through.
static bool
s_events_exchange (void *pub, void *sub, char *sender, size_t sender_size)
{
    bool matched = false, leaked = false;
    for (int64_t end = zt_now_ms () + 5000; !matched && zt_now_ms () < end; ) {
        s_event_publish (pub, "nodes/sim-1", "nodes/sim-1", "node event");
        s_event_publish (pub, "pods/default", "pods/default", "pod event");
        char topic [128];
        s_msg_t msg;
        while (s_event_recv (sub, 50, topic, sizeof topic, &msg)) {
            if (strncmp (topic, "pods/", 5) != 0)
                leaked = true;
            else
            if (msg.header && msg.payload && streq (msg.payload, "pod event")) {
                matched = true;
                snprintf (sender, sender_size, "%s",
                          msg.header->sender ? msg.header->sender : "");
            }
            s_msg_clear (&msg);
        }
    }
    return matched && !leaked;
}

static void
test_events (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "events", (const char *[]) {"--insecure", NULL}));
    void *admin = s_dealer (broker.endpoint, NULL, NULL);
    s_msg_t reply;
    ZT_ASSERT (s_call (admin, "bus", "info", NULL, 0, 2000, &reply));
    Zube__BusInfoReply *info = zube__bus_info_reply__unpack (NULL, reply.payload_size,
                                                             (uint8_t *) reply.payload);
    ZT_ASSERT (info);
    void *pub = s_socket (s_ctx, ZMQ_PUB, info->publish_endpoint, NULL, NULL, NULL);
    void *sub = s_socket (s_ctx, ZMQ_SUB, info->subscribe_endpoint, NULL, NULL, NULL);
    zube__bus_info_reply__free_unpacked (info, NULL);
    s_msg_clear (&reply);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "pods/", 5);

    char sender [64] = "";
    ZT_ASSERT (s_events_exchange (pub, sub, sender, sizeof sender));
    ZT_ASSERT_STR_EQ (sender, "anonymous");

    //  Malformed events are dropped: two frames, a header topic that is
    //  not the topic frame, a REQUEST header
    Zube__BusCounters before = s_counters (admin);
    zmq_send (pub, "pods/x", 6, ZMQ_SNDMORE);
    zmq_send (pub, "junk", 4, 0);
    s_event_publish (pub, "pods/x", "nodes/secret", "mismatch");
    Zube__BusHeader request = s_header (ZUBE__BUS_KIND__BUS_REQUEST);
    zmq_send (pub, "pods/x", 6, ZMQ_SNDMORE);
    s_send (pub, &request, true, "x", 1);
    char topic [128];
    s_msg_t msg;
    int received = 0;
    while (s_event_recv (sub, 300, topic, sizeof topic, &msg)) {
        if (streq (topic, "pods/x"))
            received++;
        s_msg_clear (&msg);
    }
    ZT_ASSERT_INT_EQ (received, 0);
    Zube__BusCounters after = s_counters (admin);
    ZT_ASSERT_INT_EQ (after.dropped - before.dropped, 3);
    ZT_ASSERT (after.events >= 1);

    s_close (&pub);
    s_close (&sub);
    s_close (&admin);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

static void
test_certs (void)
{
    char *keys = s_tempdir ("keys");
    char certs [512], others [512], error [256];
    snprintf (certs, sizeof certs, "%s/certs", keys);
    snprintf (others, sizeof others, "%s/others", keys);
    const char *names [] = {"broker", "alice", "worker", "watcher"};
    for (size_t i = 0; i < 4; i++)
        ZT_ASSERT_MSG (zube_certs_create (certs, names [i], error, sizeof error) == 0,
                       "%s", error);
    //  mallory's keypair is real but not in the broker's store
    ZT_ASSERT (zube_certs_create (others, "mallory", error, sizeof error) == 0);

    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "certs", (const char *[]) {"--certs", certs, NULL}));
    pid_t fake = s_fake_start (&broker, "secure-echo", "secure-1", certs, "worker", false);
    void *alice = s_dealer (broker.endpoint, certs, "alice");
    ZT_ASSERT (s_instances_wait (alice, "secure-echo", 1, 5000));

    //  alice's name reaches the service; her forged sender does not
    uint64_t cid = s_request_send (alice, "secure-echo", "say", 3000, "hi", 2, "root");
    s_msg_t reply;
    ZT_ASSERT (s_reply_wait (alice, cid, 5000, &reply));
    ZT_ASSERT_INT_EQ (reply.header->status, ZUBE__STATUS_CODE__STATUS_OK);
    ZT_ASSERT_STR_EQ (reply.payload, "secure-1\nalice\nhi");
    ZT_ASSERT_STR_EQ (reply.header->sender, "worker");
    s_msg_clear (&reply);
    Zube__BusServicesReply *services = s_services (alice, "secure-echo");
    ZT_ASSERT (services && services->secure);
    ZT_ASSERT_STR_EQ (s_service_find (services, "secure-echo")->instances [0]->sender, "worker");
    zube__bus_services_reply__free_unpacked (services, NULL);

    //  mallory (unknown key) and a peer without CURVE get nothing through
    void *mallory = s_socket (s_ctx, ZMQ_DEALER, broker.endpoint, certs, others, "mallory");
    void *plain = s_dealer (broker.endpoint, NULL, NULL);
    uint64_t mallory_cid = s_request_send (mallory, "secure-echo", "say", 1000, "x", 1, "alice");
    uint64_t plain_cid = s_request_send (plain, "bus", "ping", 1000, "", 0, NULL);
    ZT_ASSERT (!s_reply_wait (mallory, mallory_cid, 1500, &reply));
    ZT_ASSERT (!s_reply_wait (plain, plain_cid, 200, &reply));

    //  ... while alice keeps working
    cid = s_request_send (alice, "secure-echo", "say", 3000, "again", 5, NULL);
    ZT_ASSERT (s_reply_wait (alice, cid, 5000, &reply));
    ZT_ASSERT_STR_EQ (reply.payload, "secure-1\nalice\nagain");
    s_msg_clear (&reply);
    Zube__BusCounters counters = s_counters (alice);
    //  mallory's refused handshake is counted (a peer without CURVE is
    //  counted too when the broker, not the peer, notices the mismatch)
    ZT_ASSERT_MSG (counters.unauthorized >= 1, "unauthorized = %llu",
                   (unsigned long long) counters.unauthorized);

    //  Events carry the publisher's certificate name
    ZT_ASSERT (s_call (alice, "bus", "info", NULL, 0, 2000, &reply));
    Zube__BusInfoReply *info = zube__bus_info_reply__unpack (NULL, reply.payload_size,
                                                             (uint8_t *) reply.payload);
    ZT_ASSERT (info && info->secure);
    void *pub = s_socket (s_ctx, ZMQ_PUB, info->publish_endpoint, certs, NULL, "alice");
    void *sub = s_socket (s_ctx, ZMQ_SUB, info->subscribe_endpoint, certs, NULL, "watcher");
    zube__bus_info_reply__free_unpacked (info, NULL);
    s_msg_clear (&reply);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "pods/", 5);
    char sender [64] = "";
    ZT_ASSERT (s_events_exchange (pub, sub, sender, sizeof sender));
    ZT_ASSERT_STR_EQ (sender, "alice");

    s_close (&pub);
    s_close (&sub);
    s_close (&alice);
    s_close (&mallory);
    s_close (&plain);
    zt_stop (fake, SIGKILL, 1000);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
    zt_rmtree (keys);
    free (keys);
}

static void
test_shutdown (void)
{
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "term", (const char *[]) {"--insecure", NULL}));
    void *peer = s_dealer (broker.endpoint, NULL, NULL);
    //  A HEARTBEAT from a peer the broker does not know is answered at once
    Zube__BusHeader heartbeat = s_header (ZUBE__BUS_KIND__BUS_HEARTBEAT);
    heartbeat.has_heartbeat_ms = true;
    heartbeat.heartbeat_ms = 5000;
    s_send (peer, &heartbeat, false, NULL, 0);
    s_msg_t msg;
    ZT_ASSERT (s_recv (peer, 2000, &msg));
    ZT_ASSERT (msg.header && msg.header->kind == ZUBE__BUS_KIND__BUS_HEARTBEAT);
    ZT_ASSERT (msg.header->instance && strlen (msg.header->instance) == 16);
    ZT_ASSERT_INT_EQ (msg.header->heartbeat_ms, HEARTBEAT_MS);
    s_msg_clear (&msg);

    //  SIGTERM: DISCONNECT to the peer, exit code 0
    kill (broker.pid, SIGTERM);
    bool disconnected = false;
    for (int64_t end = zt_now_ms () + 3000; !disconnected && zt_now_ms () < end; ) {
        if (s_recv (peer, 100, &msg) && msg.header
            && msg.header->kind == ZUBE__BUS_KIND__BUS_DISCONNECT)
            disconnected = true;
        s_msg_clear (&msg);
    }
    ZT_ASSERT (disconnected);
    int status = s_wait_exit (broker.pid, 5000);
    broker.pid = 0;
    ZT_ASSERT (WIFEXITED (status));
    ZT_ASSERT_INT_EQ (WEXITSTATUS (status), 0);
    char *log = zt_read_file (broker.log);
    ZT_ASSERT_STR_CONTAINS (log, "msg=\"broker stopping\"");
    free (log);
    s_close (&peer);
    s_broker_stop (&broker);
}

//  How many threads of process pid there are, and whether every one may
//  run on the CPUs listed in cpus (/proc's Cpus_allowed_list) and no other
static int
s_threads_on (pid_t pid, const char *cpus, bool *all_p)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *tasks = opendir (path);
    struct dirent *entry;
    int threads = 0;
    *all_p = tasks != NULL;
    while (tasks && (entry = readdir (tasks))) {
        if (entry->d_name [0] == '.')
            continue;
        char status_path [600], line [256], allowed [128] = "";
        snprintf (status_path, sizeof status_path, "%s/%s/status", path, entry->d_name);
        FILE *status = fopen (status_path, "r");
        while (status && fgets (line, sizeof line, status))
            if (sscanf (line, "Cpus_allowed_list: %127s", allowed) == 1)
                break;
        if (status)
            fclose (status);
        threads++;
        if (!streq (allowed, cpus))
            *all_p = false;
    }
    if (tasks)
        closedir (tasks);
    return threads;
}

//  --cpu: a CPU this process may not run on is refused, naming the flag;
//  with one it may, the broker's main thread and libzmq's threads all run
//  on that CPU alone, and it routes as ever
static void
test_cpu_affinity (void)
{
    char *output = NULL;
    int status = s_broker_run ((const char *[]) {"--insecure", "--cpu", "100000", NULL}, &output);
    ZT_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 1);
    ZT_ASSERT_STR_CONTAINS (output, "--cpu");
    free (output);
    status = s_broker_run ((const char *[]) {"--insecure", "--cpu", "first", NULL}, &output);
    ZT_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 1);
    ZT_ASSERT_STR_CONTAINS (output, "\"first\"");
    free (output);

    //  The last CPU this test may use: with more than one, not where an
    //  unpinned broker's threads would all be anyway
    cpu_set_t allowed;
    ZT_ASSERT (sched_getaffinity (0, sizeof allowed, &allowed) == 0);
    int cpu = -1;
    for (int index = 0; index < CPU_SETSIZE; index++)
        if (CPU_ISSET (index, &allowed))
            cpu = index;
    char cpu_text [16];
    snprintf (cpu_text, sizeof cpu_text, "%d", cpu);
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "cpu",
                               (const char *[]) {"--insecure", "--cpu", cpu_text, NULL}));
    void *client = s_dealer (broker.endpoint, NULL, NULL);
    s_msg_t reply;
    ZT_ASSERT (s_call (client, "bus", "ping", "on one CPU", 10, 2000, &reply));
    ZT_ASSERT_STR_EQ (reply.payload, "on one CPU");
    s_msg_clear (&reply);
    bool all = false;
    int threads = s_threads_on (broker.pid, cpu_text, &all);
    ZT_ASSERT_MSG (threads >= 2, "%d threads: the main thread and an I/O thread expected", threads);
    ZT_ASSERT_MSG (all, "a thread of the broker may run elsewhere than CPU %s", cpu_text);
    s_close (&client);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

static void
test_flags_and_config (void)
{
    char *output = NULL;
    int status = s_broker_run ((const char *[]) {"--bind", "tcp://127.0.0.1:1", NULL}, &output);
    ZT_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 1);
    ZT_ASSERT_STR_CONTAINS (output, "--insecure");
    free (output);
    status = s_broker_run ((const char *[]) {"--insecure", "--heartbeat", "soon", NULL}, &output);
    ZT_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 1);
    ZT_ASSERT_STR_CONTAINS (output, "--heartbeat");
    free (output);
    status = s_broker_run ((const char *[]) {"--insecure", "--certs", "/tmp", NULL}, &output);
    ZT_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 1);
    free (output);
    status = s_broker_run ((const char *[]) {"--insecure", "--frobnicate", NULL}, &output);
    ZT_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 1);
    ZT_ASSERT_STR_CONTAINS (output, "--frobnicate");
    free (output);
    status = s_broker_run ((const char *[]) {"--version", NULL}, &output);
    ZT_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    ZT_ASSERT_STR_CONTAINS (output, ZUBE_VERSION_STRING);
    free (output);

    //  An endpoint in use: exit 2, naming it and why
    broker_t broker;
    ZT_ASSERT (s_broker_start (&broker, "flags", (const char *[]) {"--insecure", NULL}));
    status = s_broker_run ((const char *[]) {"--insecure", "--bind", broker.endpoint, NULL},
                           &output);
    ZT_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 2);
    ZT_ASSERT_STR_CONTAINS (output, broker.endpoint);
    ZT_ASSERT_STR_CONTAINS (output, "Address already in use");
    free (output);

    //  A config file, and a flag overriding it
    char path [600];
    snprintf (path, sizeof path, "%s/broker.yaml", broker.dir);
    FILE *file = fopen (path, "w");
    int port = zt_free_port (3);
    fprintf (file, "# zube-broker\nbind: tcp://127.0.0.1:%d\ninsecure: true\n"
             "heartbeatMs: 5000\nmaxMessageSize: 70000\nlogLevel: warn\n", port);
    fclose (file);
    char log [600];
    snprintf (log, sizeof log, "%s/configured.log", broker.dir);
    const char *argv [] = {zt_program ("zube-broker"), "--config", path, "--heartbeat", "300",
                           NULL};
    pid_t configured = s_spawn (argv, log);
    ZT_ASSERT (zt_wait_port (port, 5000));
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    void *client = s_dealer (endpoint, NULL, NULL);
    s_msg_t reply;
    ZT_ASSERT (s_call (client, "bus", "info", NULL, 0, 2000, &reply));
    Zube__BusInfoReply *info = zube__bus_info_reply__unpack (NULL, reply.payload_size,
                                                             (uint8_t *) reply.payload);
    ZT_ASSERT (info);
    ZT_ASSERT_INT_EQ (info->heartbeat_ms, 300);
    ZT_ASSERT_INT_EQ (info->max_message_size, 70000);
    zube__bus_info_reply__free_unpacked (info, NULL);
    s_msg_clear (&reply);
    s_close (&client);
    status = zt_stop (configured, SIGINT, 5000);
    ZT_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 0);

    //  An unknown key in the config file is named
    file = fopen (path, "w");
    fprintf (file, "bind: tcp://127.0.0.1:1\ninsecure: true\nheartbeatMS: 100\n");
    fclose (file);
    status = s_broker_run ((const char *[]) {"--config", path, NULL}, &output);
    ZT_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 1);
    ZT_ASSERT_STR_CONTAINS (output, "heartbeatMS");
    free (output);
    ZT_ASSERT_INT_EQ (s_broker_stop (&broker), 0);
}

int
main (int argc, char *argv [])
{
    if (argc > 1 && streq (argv [1], "--fake-service"))
        return s_fake_service (argc, argv);
    ssize_t size = readlink ("/proc/self/exe", s_self, sizeof s_self - 1);
    s_self [size > 0 ? size : 0] = 0;
    signal (SIGPIPE, SIG_IGN);
    s_ctx = zmq_ctx_new ();
#define RUN(test) do { ZT_RUN (test); s_cleanup (); } while (0)
    RUN (test_request_reply);
    RUN (test_bus_service);
    RUN (test_load_balancing);
    RUN (test_instance_killed);
    RUN (test_reply_ownership);
    RUN (test_waiting_for_instance);
    RUN (test_malformed_input);
    RUN (test_batch_round_trip);
    RUN (test_batch_malformed);
    RUN (test_batch_instance_dies);
    RUN (test_batch_instance_overloaded);
    RUN (test_events);
    RUN (test_certs);
    RUN (test_shutdown);
    RUN (test_flags_and_config);
    RUN (test_cpu_affinity);
    //  The context stays: a failed case may have left sockets open
    return zt_done ();
}
