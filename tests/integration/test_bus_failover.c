/*  test_bus_failover - the bus client library when processes die.

    A service instance killed with SIGKILL mid-request, and the broker
    killed with SIGKILL and restarted on the same port while 1000 requests
    are in flight: clients and services must heal by themselves, every
    request must end with exactly one outcome, and no service may apply a
    (client_id, sequence) twice. A service whose TCP connection is cut
    under libzmq (through a relay the test owns) must come back as the same
    peer, unnoticed by the broker. Each case starts its own zube-broker from
    the build tree (--insecure, heartbeat 200 ms); service instances are this
    program re-executed with --child-service, so each has its own process. */
#define _GNU_SOURCE //  strndup, and what zube_testproc.h needs

#include "../zt_cluster.h"

#include "bus.pb-c.h"
#include "zube/bus.h"
#include "zube/log.h"
#include <czmq.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#define HEARTBEAT_MS 200

static char *s_dir;
static char s_endpoint[64];
static pid_t s_broker;
static pid_t s_children[16];
static int s_child_count;

//  --------------------------------------------------------------------------
//  Processes

static pid_t
s_start_broker (void)
{
    char log_path[512];
    snprintf (log_path, sizeof log_path, "%s/broker.log", s_dir);
    return zt_broker_start (s_endpoint, NULL, HEARTBEAT_MS, 0, log_path);
}

//  A fresh broker on a fresh port for each case.
static void
s_setup (void)
{
    snprintf (s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", zt_free_port (3));
    s_broker = s_start_broker ();
    ZT_ASSERT_MSG (s_broker > 0, "cannot start %s", zt_program ("zube-broker"));
}

static void s_relay_stop (void);

static void
s_teardown (void)
{
    s_relay_stop ();
    for (int index = 0; index < s_child_count; index++)
        zt_stop (s_children[index], SIGTERM, 3000);
    s_child_count = 0;
    zt_stop (s_broker, SIGTERM, 3000);
    s_broker = 0;
}

static pid_t
s_start_service_at (const char *endpoint, const char *service)
{
    char log_path[512];
    snprintf (log_path, sizeof log_path, "%s/children.log", s_dir);
    char *argv[] = {
        "/proc/self/exe", "--child-service", (char *)endpoint, (char *)service, s_dir, NULL};
    pid_t pid = zt_spawn_tied (argv, log_path);
    if (pid > 0 && s_child_count < 16)
        s_children[s_child_count++] = pid;
    return pid;
}

static pid_t
s_start_service (const char *service)
{
    return s_start_service_at (s_endpoint, service);
}

//  --------------------------------------------------------------------------
//  A TCP relay on 127.0.0.1: every connection accepted on its port is
//  forwarded byte for byte to the broker's port. s_relay_cut closes both
//  sides of every connection it carries, as a network that drops them
//  would: libzmq then reconnects by itself, through the relay again.

#define S_RELAY_MAX 8

typedef struct {
    int listener;
    int port;
    int upstream_port;
    int fds[S_RELAY_MAX][2]; //  [accepted, upstream], -1 when free
    atomic_bool stop;
    atomic_int cut_requests;
    atomic_int accepted;
    pthread_t thread;
    bool running;
} s_relay_t;

static s_relay_t s_relay;

static int
s_relay_connect (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons ((uint16_t)port)};
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (fd >= 0 && connect (fd, (struct sockaddr *)&address, sizeof address) != 0) {
        close (fd);
        fd = -1;
    }
    return fd;
}

static void
s_relay_close (s_relay_t *relay, int index)
{
    for (int side = 0; side < 2; side++)
        if (relay->fds[index][side] >= 0) {
            close (relay->fds[index][side]);
            relay->fds[index][side] = -1;
        }
}

static void *
s_relay_run (void *arg)
{
    s_relay_t *relay = arg;
    int cuts_done = 0;
    while (!atomic_load (&relay->stop)) {
        int cuts = atomic_load (&relay->cut_requests);
        if (cuts != cuts_done) {
            for (int index = 0; index < S_RELAY_MAX; index++)
                s_relay_close (relay, index);
            cuts_done = cuts;
        }
        struct pollfd fds[1 + 2 * S_RELAY_MAX];
        int count = 0;
        fds[count++] = (struct pollfd){.fd = relay->listener, .events = POLLIN};
        for (int index = 0; index < S_RELAY_MAX; index++)
            for (int side = 0; side < 2; side++)
                fds[count++] = (struct pollfd){.fd = relay->fds[index][side], .events = POLLIN};
        if (poll (fds, (nfds_t)count, 20) <= 0)
            continue;
        if (fds[0].revents & POLLIN) {
            int client = accept (relay->listener, NULL, NULL);
            int upstream = client >= 0 ? s_relay_connect (relay->upstream_port) : -1;
            int slot = -1;
            for (int index = 0; index < S_RELAY_MAX && slot < 0; index++)
                if (relay->fds[index][0] < 0)
                    slot = index;
            if (client >= 0 && upstream >= 0 && slot >= 0) {
                relay->fds[slot][0] = client;
                relay->fds[slot][1] = upstream;
                atomic_fetch_add (&relay->accepted, 1);
            } else {
                if (client >= 0)
                    close (client);
                if (upstream >= 0)
                    close (upstream);
            }
        }
        for (int index = 0; index < S_RELAY_MAX; index++)
            for (int side = 0; side < 2; side++) {
                short revents = fds[1 + 2 * index + side].revents;
                if (relay->fds[index][side] < 0 || !(revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                char buffer[65536];
                ssize_t size = read (relay->fds[index][side], buffer, sizeof buffer);
                bool ok = size > 0;
                for (ssize_t done = 0; ok && done < size;) {
                    ssize_t wrote =
                        write (relay->fds[index][1 - side], buffer + done, (size_t)(size - done));
                    ok = wrote > 0;
                    done += wrote > 0 ? wrote : 0;
                }
                if (!ok)
                    s_relay_close (relay, index);
            }
    }
    for (int index = 0; index < S_RELAY_MAX; index++)
        s_relay_close (relay, index);
    return NULL;
}

//  Starts the relay to the broker's port; returns its own port
static int
s_relay_start (int upstream_port)
{
    memset (&s_relay, 0, sizeof s_relay);
    for (int index = 0; index < S_RELAY_MAX; index++)
        s_relay.fds[index][0] = s_relay.fds[index][1] = -1;
    s_relay.upstream_port = upstream_port;
    s_relay.listener = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (s_relay.listener < 0 ||
        bind (s_relay.listener, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen (s_relay.listener, 8) != 0 ||
        getsockname (s_relay.listener, (struct sockaddr *)&address, &size) != 0)
        return -1;
    s_relay.port = ntohs (address.sin_port);
    if (pthread_create (&s_relay.thread, NULL, s_relay_run, &s_relay) != 0)
        return -1;
    s_relay.running = true;
    return s_relay.port;
}

static void
s_relay_cut (void)
{
    atomic_fetch_add (&s_relay.cut_requests, 1);
}

static void
s_relay_stop (void)
{
    if (!s_relay.running)
        return;
    atomic_store (&s_relay.stop, true);
    pthread_join (s_relay.thread, NULL);
    close (s_relay.listener);
    s_relay.running = false;
}

//  The broker's view: instances of service (their names in *names, up to
//  4) and its instance_deaths counter
static int
s_broker_instances (zube_bus_t *bus, const char *service, char names[][128],
                    uint64_t *deaths_p)
{
    Zube__BusServicesRequest query = ZUBE__BUS_SERVICES_REQUEST__INIT;
    Zube__BusServicesReply *reply = NULL;
    char error[256];
    if (zube_bus_call_msg (bus, "bus", "services", &query.base,
                           &zube__bus_services_reply__descriptor, 5000,
                           (ProtobufCMessage **)&reply, error, sizeof error) != ZUBE_OK)
        return -1;
    int count = 0;
    for (size_t index = 0; index < reply->n_services; index++)
        if (streq (reply->services[index]->name, service))
            for (size_t at = 0; at < reply->services[index]->n_instances; at++, count++)
                if (count < 4)
                    snprintf (names[count], 128, "%s",
                              reply->services[index]->instances[at]->instance);
    *deaths_p = reply->counters ? reply->counters->instance_deaths : 0;
    zube__bus_services_reply__free_unpacked (reply, NULL);
    return count;
}

static zube_bus_t *
s_bus_new (void)
{
    return zube_bus_new (&(zube_bus_config_t){
        .endpoint = s_endpoint, .insecure = true, .heartbeat_ms = HEARTBEAT_MS});
}

//  Calls service/method until it answers OK (the service may not have
//  registered yet); returns the reply payload as a string, or NULL.
static char *
s_call_text (zube_bus_t *bus, const char *service, const char *method, int timeout_ms)
{
    int64_t until = zt_now_ms () + timeout_ms;
    while (zt_now_ms () < until) {
        zube_bus_reply_t *reply = NULL;
        zube_bus_call (bus, service, method, NULL, 0, 1000, &reply);
        if (reply->status == ZUBE_OK) {
            char *text =
                strndup ((char *)(reply->payload ? reply->payload : (uint8_t *)""),
                         reply->payload_size);
            zube_bus_reply_destroy (&reply);
            return text;
        }
        zube_bus_reply_destroy (&reply);
        zube_bus_poll (bus, 50);
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Child: a service instance whose mutations are observable. Methods:
//    apply       records (client_id, sequence), counts a second application
//                as a duplicate, answers the payload back; answers are paced
//                one per millisecond so that many stay in flight
//    apply-slow  the same, answered 2 s later
//    slow        appends its pid to DIR/slow.log, answers its pid 1.5 s later
//    pid         its pid
//    stats       "applied=N duplicates=M"

typedef struct {
    zube_bus_request_t *request;
    int64_t due;
} s_deferred_t;

typedef struct {
    const char *dir;
    zhashx_t *applied;
    int applications;
    int duplicates;
    zlistx_t *deferred; //  s_deferred_t, in due order
    int64_t next_free;
} s_child_t;

static void
s_child_defer (s_child_t *child, zube_bus_request_t *request, int64_t due)
{
    s_deferred_t *entry = calloc (1, sizeof *entry);
    entry->request = request;
    entry->due = due;
    zube_bus_request_defer (request);
    zlistx_add_end (child->deferred, entry);
}

static void
s_child_handler (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    s_child_t *child = arg;
    const char *method = zube_bus_request_method (request);
    char text[128];
    if (streq (method, "apply") || streq (method, "apply-slow")) {
        snprintf (text, sizeof text, "%" PRIu64 ":%s",
                  zube_bus_request_sequence (request),
                  zube_bus_request_client_id (request));
        if (zhashx_lookup (child->applied, text))
            child->duplicates++;
        else
            zhashx_insert (child->applied, text, (void *)1);
        child->applications++;
        int64_t now = zclock_mono ();
        if (streq (method, "apply-slow"))
            s_child_defer (child, request, now + 2000);
        else {
            child->next_free = (child->next_free > now ? child->next_free : now) + 1;
            s_child_defer (child, request, child->next_free);
        }
    } else if (streq (method, "slow")) {
        char path[512];
        snprintf (path, sizeof path, "%s/slow.log", child->dir);
        FILE *file = fopen (path, "a");
        if (file) {
            fprintf (file, "%d\n", (int)getpid ());
            fclose (file);
        }
        s_child_defer (child, request, zclock_mono () + 1500);
    } else if (streq (method, "pid")) {
        snprintf (text, sizeof text, "%d", (int)getpid ());
        zube_bus_respond (request, ZUBE_OK, NULL, text, strlen (text));
    } else if (streq (method, "stats")) {
        snprintf (text, sizeof text, "applied=%d duplicates=%d", child->applications,
                  child->duplicates);
        zube_bus_respond (request, ZUBE_OK, NULL, text, strlen (text));
    } else
        zube_bus_respond_error (request, ZUBE_NOT_IMPLEMENTED, "no method %s", method);
}

static void
s_child_answer_due (s_child_t *child)
{
    int64_t now = zclock_mono ();
    s_deferred_t *entry = zlistx_first (child->deferred);
    while (entry && entry->due <= now) {
        zlistx_detach (child->deferred, NULL);
        size_t size;
        const uint8_t *payload = zube_bus_request_payload (entry->request, &size);
        if (streq (zube_bus_request_method (entry->request), "slow")) {
            char text[32];
            snprintf (text, sizeof text, "%d", (int)getpid ());
            zube_bus_respond (entry->request, ZUBE_OK, NULL, text, strlen (text));
        } else
            zube_bus_respond (entry->request, ZUBE_OK, NULL, payload, size);
        free (entry);
        entry = zlistx_first (child->deferred);
    }
}

static int
s_child_service (const char *endpoint, const char *service, const char *dir)
{
    zube_log_set_component ("test-service");
    s_child_t child = {.dir = dir, .applied = zhashx_new (), .deferred = zlistx_new ()};
    zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t){
        .endpoint = endpoint, .insecure = true, .heartbeat_ms = HEARTBEAT_MS});
    if (!bus || zube_bus_serve (bus, service, s_child_handler, &child) != 0)
        return 2;
    while (zube_bus_poll (bus, 1) >= 0)
        s_child_answer_due (&child);
    zube_bus_destroy (&bus);
    s_deferred_t *entry;
    while ((entry = zlistx_detach (child.deferred, NULL)))
        free (entry);
    zlistx_destroy (&child.deferred);
    zhashx_destroy (&child.applied);
    return 0;
}

//  --------------------------------------------------------------------------
//  Cases

typedef struct {
    int outcomes;
    zube_status_t status;
    bool wrong_payload;
    char expected[32]; //  empty: anything goes
    char got[32];
    int64_t at;
} s_outcome_t;

static void
s_record (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg)
{
    s_outcome_t *outcome = arg;
    outcome->outcomes++;
    outcome->status = reply->status;
    outcome->at = zt_now_ms ();
    snprintf (outcome->got, sizeof outcome->got, "%.*s", (int)reply->payload_size,
              reply->payload ? (char *)reply->payload : "");
    if (reply->status == ZUBE_OK && outcome->expected[0] &&
        (reply->payload_size != strlen (outcome->expected) ||
         memcmp (reply->payload, outcome->expected, reply->payload_size) != 0))
        outcome->wrong_payload = true;
    zube_bus_reply_destroy (&reply);
}

//  Two instances of service, and a connection once both are registered
//  (each has answered "pid" at least once).
static zube_bus_t *
s_start_two (const char *service, pid_t *first_p, pid_t *second_p)
{
    pid_t first = *first_p = s_start_service (service);
    pid_t second = *second_p = s_start_service (service);
    ZT_ASSERT (first > 0 && second > 0);
    zube_bus_t *bus = s_bus_new ();
    bool seen[2] = {false, false};
    int64_t until = zt_now_ms () + 10000;
    while (!(seen[0] && seen[1]) && zt_now_ms () < until) {
        char *text = s_call_text (bus, service, "pid", 5000);
        if (text && atoi (text) == first)
            seen[0] = true;
        if (text && atoi (text) == second)
            seen[1] = true;
        free (text);
    }
    ZT_ASSERT (seen[0] && seen[1]);
    return bus;
}

//  Two instances; the one that received the request is killed: the broker
//  answers UNAVAILABLE "instance ... died" and the library sends the
//  request again, to the survivor, within the deadline.
static void
test_instance_killed_mid_request (void)
{
    s_setup ();
    pid_t first, second;
    zube_bus_t *bus = s_start_two ("slowpoke", &first, &second);

    s_outcome_t outcome = {0};
    int64_t started = zt_now_ms ();
    ZT_ASSERT (zube_bus_call_async (bus, "slowpoke", "slow", NULL, 0, 10000, s_record,
                                    &outcome) > 0);
    char path[512];
    snprintf (path, sizeof path, "%s/slow.log", s_dir);
    pid_t victim = 0;
    int64_t until = zt_now_ms () + 5000;
    while (!victim && zt_now_ms () < until) {
        zube_bus_poll (bus, 20);
        char *text = zt_read_file (path);
        if (text && *text)
            victim = atoi (text);
        free (text);
    }
    ZT_ASSERT (victim == first || victim == second);
    kill (victim, SIGKILL);
    until = started + 12000;
    while (outcome.outcomes == 0 && zt_now_ms () < until)
        zube_bus_poll (bus, 50);
    //  A little longer: a second outcome would be a bug.
    for (int index = 0; index < 10; index++)
        zube_bus_poll (bus, 20);
    ZT_ASSERT_INT_EQ (outcome.outcomes, 1);
    ZT_ASSERT (outcome.at - started <= 10000 + 500);
    ZT_ASSERT_MSG (outcome.status == ZUBE_OK || outcome.status == ZUBE_UNAVAILABLE,
                   "status %d", outcome.status);
    if (outcome.status == ZUBE_OK)
        ZT_ASSERT_INT_EQ (atoi (outcome.got), victim == first ? second : first);
    //  The survivor still serves.
    char *text = s_call_text (bus, "slowpoke", "pid", 5000);
    ZT_ASSERT (text && atoi (text) == (victim == first ? second : first));
    free (text);
    zube_bus_destroy (&bus);
    s_teardown ();
}

//  A request sent again after "instance ... died" to the other instance,
//  which dies too, after the request's deadline: the broker drops it (its
//  deadline passed), so nothing ever answers. The caller still gets its
//  one outcome, DEADLINE_EXCEEDED, at the deadline (the resend once left
//  no timer armed, and the call waited forever).
static void
test_resent_request_still_expires (void)
{
    s_setup ();
    pid_t first, second;
    zube_bus_t *bus = s_start_two ("doomed", &first, &second);

    //  Death is detected 3 heartbeats (600 ms) after a kill: the first
    //  kill leaves room for a resend, the second does not.
    const int timeout_ms = 1200;
    s_outcome_t outcome = {0};
    int64_t started = zt_now_ms ();
    ZT_ASSERT (zube_bus_call_async (bus, "doomed", "slow", NULL, 0, timeout_ms, s_record,
                                    &outcome) > 0);
    char path[512];
    snprintf (path, sizeof path, "%s/slow.log", s_dir);
    int killed = 0;
    int64_t until = started + 5000;
    while (outcome.outcomes == 0 && zt_now_ms () < until) {
        zube_bus_poll (bus, 10);
        char *text = zt_read_file (path);
        //  slow.log gets one line per instance that received the request.
        int lines = 0;
        for (const char *c = text; c && *c; c++)
            lines += *c == '\n';
        for (const char *line = text; line && killed < lines && killed < 2;) {
            //  Kill the instance on line number `killed`.
            for (int skip = 0; skip < killed; skip++)
                line = strchr (line, '\n') + 1;
            kill ((pid_t) atoi (line), SIGKILL);
            killed++;
            line = text;
        }
        free (text);
    }
    for (int index = 0; index < 10; index++)
        zube_bus_poll (bus, 20);
    ZT_ASSERT_INT_EQ (outcome.outcomes, 1);
    printf ("# %d instances killed; outcome %d after %" PRId64 " ms\n", killed, outcome.status,
            outcome.at - started);
    ZT_ASSERT_MSG (outcome.at - started <= timeout_ms + 500, "outcome after %" PRId64 " ms",
                   outcome.at - started);
    ZT_ASSERT_MSG (outcome.status == ZUBE_DEADLINE_EXCEEDED || outcome.status == ZUBE_UNAVAILABLE,
                   "status %d", outcome.status);
    zube_bus_destroy (&bus);
    s_teardown ();
}

enum { S_RESTART_CALLS = 1000 };
static s_outcome_t s_restart_outcomes[S_RESTART_CALLS];

//  Starts the calls of a restart case
static void
s_restart_calls_start (zube_bus_t *bus)
{
    for (int index = 0; index < S_RESTART_CALLS; index++) {
        s_outcome_t *outcome = &s_restart_outcomes[index];
        snprintf (outcome->expected, sizeof outcome->expected, "entry-%d", index);
        ZT_ASSERT (zube_bus_call_async (bus, "ledger", "apply", outcome->expected,
                                        strlen (outcome->expected), 30000, s_record,
                                        outcome) > 0);
    }
}

//  The reply to "stats" starts them inside the loop: they leave in batches
static void
s_restart_calls_start_fn (zube_bus_t *bus, zube_bus_reply_t *reply, void *arg)
{
    *(bool *)arg = true;
    zube_bus_reply_destroy (&reply);
    s_restart_calls_start (bus);
}

//  The broker dies (SIGKILL) and comes back on the same port while 1000
//  requests are in flight, started outside the loop (one message each) or
//  inside it (batches, which the service gets batched too). Clients and
//  the service reconnect by themselves; each request ends with exactly one
//  reply or one error, and the service applied each (client_id, sequence)
//  at most once.
static void
s_broker_restart_case (bool batched)
{
    s_setup ();
    ZT_ASSERT (s_start_service ("ledger") > 0);
    zube_bus_t *bus = s_bus_new ();
    char *text = s_call_text (bus, "ledger", "stats", 10000);
    ZT_ASSERT (text);
    free (text);

    enum { CALLS = S_RESTART_CALLS };
    s_outcome_t *outcomes = s_restart_outcomes;
    memset (s_restart_outcomes, 0, sizeof s_restart_outcomes);
    if (batched) {
        bool started = false;
        ZT_ASSERT (zube_bus_call_async (bus, "ledger", "stats", NULL, 0, 10000,
                                        s_restart_calls_start_fn, &started) > 0);
        for (int64_t until = zt_now_ms () + 10000; !started && zt_now_ms () < until;)
            zube_bus_poll (bus, 20);
        ZT_ASSERT (started);
    } else
        s_restart_calls_start (bus);
    //  Kill the broker once some, but not all, have been answered.
    int64_t until = zt_now_ms () + 10000;
    while (zube_bus_in_flight (bus) > CALLS - 200 && zt_now_ms () < until)
        zube_bus_poll (bus, 5);
    size_t before_kill = CALLS - zube_bus_in_flight (bus);
    zt_stop (s_broker, SIGKILL, 1000);
    until = zt_now_ms () + 1000;
    while (zt_now_ms () < until)
        zube_bus_poll (bus, 50);
    s_broker = s_start_broker ();
    ZT_ASSERT (s_broker > 0);
    until = zt_now_ms () + 40000;
    while (zube_bus_in_flight (bus) > 0 && zt_now_ms () < until)
        zube_bus_poll (bus, 50);
    for (int index = 0; index < 20; index++)
        zube_bus_poll (bus, 10);

    int ok = 0, failed = 0;
    for (int index = 0; index < CALLS; index++) {
        ZT_ASSERT_MSG (outcomes[index].outcomes == 1, "call %d had %d outcomes", index,
                       outcomes[index].outcomes);
        ZT_ASSERT_MSG (!outcomes[index].wrong_payload, "call %d got a wrong reply",
                       index);
        if (outcomes[index].status == ZUBE_OK)
            ok++;
        else
            failed++;
    }
    ZT_ASSERT_INT_EQ (ok + failed, CALLS);
    ZT_ASSERT (before_kill < CALLS);
    ZT_ASSERT (zube_bus_reconnects (bus) >= 1);
    printf ("# %zu answered before the kill; %d ok, %d errors, %" PRIu64 " reconnects\n",
            before_kill, ok, failed, zube_bus_reconnects (bus));

    text = s_call_text (bus, "ledger", "stats", 10000);
    ZT_ASSERT (text);
    int applied = -1, duplicates = -1;
    sscanf (text, "applied=%d duplicates=%d", &applied, &duplicates);
    free (text);
    ZT_ASSERT_INT_EQ (duplicates, 0);
    ZT_ASSERT (applied >= ok && applied <= CALLS);
    zube_bus_destroy (&bus);
    s_teardown ();
}

static void
test_broker_restart_1000_in_flight (void)
{
    s_broker_restart_case (false);
}

static void
test_broker_restart_1000_batched (void)
{
    s_broker_restart_case (true);
}

//  A mutating request still being handled when the broker restarts: the
//  client sends it again, the service ignores the repeat, and its one reply
//  still reaches the client through the new broker.
static void
test_retry_in_progress_applied_once (void)
{
    s_setup ();
    ZT_ASSERT (s_start_service ("ledger") > 0);
    zube_bus_t *bus = s_bus_new ();
    char *text = s_call_text (bus, "ledger", "stats", 10000);
    ZT_ASSERT (text);
    free (text);
    s_outcome_t outcome = {.expected = "once"};
    ZT_ASSERT (zube_bus_call_async (bus, "ledger", "apply-slow", "once", 4, 20000,
                                    s_record, &outcome) > 0);
    for (int index = 0; index < 10; index++)
        zube_bus_poll (bus, 20); //  reaches the service
    zt_stop (s_broker, SIGKILL, 1000);
    s_broker = s_start_broker ();
    ZT_ASSERT (s_broker > 0);
    int64_t until = zt_now_ms () + 20000;
    while (outcome.outcomes == 0 && zt_now_ms () < until)
        zube_bus_poll (bus, 50);
    ZT_ASSERT_INT_EQ (outcome.outcomes, 1);
    ZT_ASSERT_INT_EQ (outcome.status, ZUBE_OK);
    ZT_ASSERT (!outcome.wrong_payload);
    text = s_call_text (bus, "ledger", "stats", 10000);
    ZT_ASSERT (text);
    ZT_ASSERT_STR_EQ (text, "applied=1 duplicates=0");
    free (text);
    zube_bus_destroy (&bus);
    s_teardown ();
}

//  A graceful restart: the broker says DISCONNECT to every peer on SIGTERM;
//  peers reconnect with back-off and every call still ends once.
static void
test_broker_graceful_restart (void)
{
    s_setup ();
    ZT_ASSERT (s_start_service ("ledger") > 0);
    zube_bus_t *bus = s_bus_new ();
    char *text = s_call_text (bus, "ledger", "stats", 10000);
    ZT_ASSERT (text);
    free (text);
    enum { CALLS = 300 };
    static s_outcome_t outcomes[CALLS];
    memset (outcomes, 0, sizeof outcomes);
    for (int index = 0; index < CALLS; index++) {
        snprintf (outcomes[index].expected, sizeof outcomes[index].expected, "g-%d",
                  index);
        ZT_ASSERT (zube_bus_call_async (bus, "ledger", "apply", outcomes[index].expected,
                                        strlen (outcomes[index].expected), 20000,
                                        s_record, &outcomes[index]) > 0);
    }
    int64_t until = zt_now_ms () + 10000;
    while (zube_bus_in_flight (bus) > CALLS - 50 && zt_now_ms () < until)
        zube_bus_poll (bus, 5);
    zt_stop (s_broker, SIGTERM, 3000);
    s_broker = s_start_broker ();
    ZT_ASSERT (s_broker > 0);
    until = zt_now_ms () + 30000;
    while (zube_bus_in_flight (bus) > 0 && zt_now_ms () < until)
        zube_bus_poll (bus, 50);
    for (int index = 0; index < CALLS; index++) {
        ZT_ASSERT_INT_EQ (outcomes[index].outcomes, 1);
        ZT_ASSERT (!outcomes[index].wrong_payload);
        ZT_ASSERT_MSG (outcomes[index].status == ZUBE_OK, "call %d: status %d", index,
                       outcomes[index].status);
    }
    text = s_call_text (bus, "ledger", "stats", 10000);
    ZT_ASSERT (text);
    int applied = -1, duplicates = -1;
    sscanf (text, "applied=%d duplicates=%d", &applied, &duplicates);
    free (text);
    ZT_ASSERT_INT_EQ (duplicates, 0);
    ZT_ASSERT_INT_EQ (applied, CALLS);
    ZT_ASSERT (zube_bus_reconnects (bus) >= 1);
    zube_bus_destroy (&bus);
    s_teardown ();
}

typedef struct {
    int before;
    int after;
} s_seen_t;

static void
s_on_event (zube_bus_t *bus, const char *topic, const uint8_t *payload, size_t size,
            void *arg)
{
    s_seen_t *seen = arg;
    if (size >= 6 && memcmp (payload, "before", 6) == 0)
        seen->before++;
    if (size >= 5 && memcmp (payload, "after", 5) == 0)
        seen->after++;
}

//  Subscriptions (and the publisher) survive a broker restart.
static void
test_subscriptions_survive_restart (void)
{
    s_setup ();
    zube_bus_t *publisher = s_bus_new ();
    zube_bus_t *subscriber = s_bus_new ();
    s_seen_t seen = {0};
    ZT_ASSERT_INT_EQ (zube_bus_subscribe (subscriber, "config/", s_on_event, &seen), 0);
    int64_t until = zt_now_ms () + 10000;
    while (seen.before == 0 && zt_now_ms () < until) {
        zube_bus_publish (publisher, "config/cluster", "before", 6);
        zube_bus_poll (publisher, 20);
        zube_bus_poll (subscriber, 20);
    }
    ZT_ASSERT (seen.before > 0);

    zt_stop (s_broker, SIGKILL, 1000);
    until = zt_now_ms () + 800;
    while (zt_now_ms () < until) {
        zube_bus_poll (publisher, 20);
        zube_bus_poll (subscriber, 20);
    }
    s_broker = s_start_broker ();
    ZT_ASSERT (s_broker > 0);
    until = zt_now_ms () + 20000;
    while (seen.after == 0 && zt_now_ms () < until) {
        zube_bus_publish (publisher, "config/cluster", "after", 5);
        zube_bus_poll (publisher, 20);
        zube_bus_poll (subscriber, 20);
    }
    ZT_ASSERT (seen.after > 0);
    //  The event sockets may come back before the request socket does.
    until = zt_now_ms () + 10000;
    while (!(zube_bus_connected (subscriber) && zube_bus_connected (publisher)) &&
           zt_now_ms () < until) {
        zube_bus_poll (publisher, 20);
        zube_bus_poll (subscriber, 20);
    }
    ZT_ASSERT (zube_bus_connected (subscriber) && zube_bus_connected (publisher));
    ZT_ASSERT (zube_bus_reconnects (subscriber) >= 1);
    zube_bus_destroy (&subscriber);
    zube_bus_destroy (&publisher);
    s_teardown ();
}

//  A service reaches the broker through a TCP relay; the relay drops both
//  sides of the connection. libzmq reconnects by itself with the routing
//  id the library set, so the broker (ZMQ_ROUTER_HANDOVER) keeps the same
//  peer: no instance died, one instance is listed, under the same name,
//  and requests are still served by the same process.
static void
test_silent_reconnect_keeps_routing_id (void)
{
    s_setup ();
    int relay_port = s_relay_start (zt_endpoint_port (s_endpoint));
    ZT_ASSERT (relay_port > 0);
    char relayed[64];
    snprintf (relayed, sizeof relayed, "tcp://127.0.0.1:%d", relay_port);
    pid_t child = s_start_service_at (relayed, "relayed");
    ZT_ASSERT (child > 0);
    zube_bus_t *bus = s_bus_new ();
    char *text = s_call_text (bus, "relayed", "pid", 10000);
    ZT_ASSERT (text);
    ZT_ASSERT_INT_EQ (atoi (text), child);
    free (text);
    char before[4][128], after[4][128];
    uint64_t deaths_before = 0, deaths_after = 0;
    ZT_ASSERT_INT_EQ (s_broker_instances (bus, "relayed", before, &deaths_before), 1);
    ZT_ASSERT_INT_EQ (atomic_load (&s_relay.accepted), 1);

    s_relay_cut ();
    int64_t until = zt_now_ms () + 10000;
    while (atomic_load (&s_relay.accepted) < 2 && zt_now_ms () < until)
        zube_bus_poll (bus, 20);
    ZT_ASSERT_INT_EQ (atomic_load (&s_relay.accepted), 2);
    //  Served through the new connection, by the same process
    for (int round = 0; round < 20; round++) {
        text = s_call_text (bus, "relayed", "pid", 10000);
        if (!text) {
            char names[4][128];
            uint64_t deaths = 0;
            int instances = s_broker_instances (bus, "relayed", names, &deaths);
            printf ("# round %d: relay accepted %d, broker lists %d instances, %" PRIu64
                    " deaths\n",
                    round, atomic_load (&s_relay.accepted), instances, deaths);
            char path[512];
            snprintf (path, sizeof path, "%s/children.log", s_dir);
            zt_log_tail (path, 30);
            snprintf (path, sizeof path, "%s/broker.log", s_dir);
            zt_log_tail (path, 30);
        }
        ZT_ASSERT (text);
        ZT_ASSERT_INT_EQ (atoi (text), child);
        free (text);
    }
    //  Long enough for the broker to have declared a vanished peer dead
    //  (3 intervals of 200 ms): it must not have
    until = zt_now_ms () + 5 * HEARTBEAT_MS;
    while (zt_now_ms () < until)
        zube_bus_poll (bus, 20);
    ZT_ASSERT_INT_EQ (s_broker_instances (bus, "relayed", after, &deaths_after), 1);
    ZT_ASSERT_STR_EQ (after[0], before[0]);
    ZT_ASSERT_INT_EQ (deaths_after, deaths_before);
    ZT_ASSERT_INT_EQ (atomic_load (&s_relay.accepted), 2);
    text = s_call_text (bus, "relayed", "pid", 10000);
    ZT_ASSERT (text);
    ZT_ASSERT_INT_EQ (atoi (text), child);
    free (text);
    zube_bus_destroy (&bus);
    s_teardown ();
}

int
main (int argc, char *argv[])
{
    if (argc >= 5 && streq (argv[1], "--child-service"))
        return s_child_service (argv[2], argv[3], argv[4]);

    zube_log_set_level (getenv ("ZUBE_TEST_DEBUG") ? ZUBE_LOG_DEBUG : ZUBE_LOG_ERROR);
    s_dir = zt_tempdir ("bus-failover");
    ZT_RUN (test_instance_killed_mid_request);
    ZT_RUN (test_resent_request_still_expires);
    s_teardown ();
    ZT_RUN (test_broker_restart_1000_in_flight);
    s_teardown ();
    ZT_RUN (test_broker_restart_1000_batched);
    s_teardown ();
    ZT_RUN (test_retry_in_progress_applied_once);
    s_teardown ();
    ZT_RUN (test_broker_graceful_restart);
    s_teardown ();
    ZT_RUN (test_subscriptions_survive_restart);
    s_teardown ();
    ZT_RUN (test_silent_reconnect_keeps_routing_id);
    s_teardown ();
    if (zt_failed_count == 0 && !getenv ("ZUBE_TEST_KEEP"))
        zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
