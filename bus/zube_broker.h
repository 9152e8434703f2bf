/*  zube_broker - the zube bus broker as a class.

    One broker owns a ROUTER for requests and an XSUB/XPUB pair for events
    (docs/bus-protocol.md). It routes requests to service instances by name
    (least in flight, round-robin between ties), keeps requests waiting for
    a service that has no instance until their deadline, answers the
    built-in `bus` service, heartbeats its peers and forgets dead ones, and
    fans out events. With a certificate directory every socket is a
    CurveZMQ server and the sender of every request and event is the name
    of the certificate ZAP authenticated.

        zube_broker_t *broker = zube_broker_new (&config);
        if (zube_broker_bind (broker, error, sizeof error) == 0)
            zube_broker_run (broker);
        zube_broker_destroy (&broker);
*/
#ifndef ZUBE_BROKER_H_INCLUDED
#define ZUBE_BROKER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZUBE_BROKER_DEFAULT_HWM 100000
#define ZUBE_BROKER_DEFAULT_MAX_WAITING 10000

typedef struct _zube_broker_t zube_broker_t;

typedef struct {
    //  ROUTER endpoint; ZUBE_BUS_DEFAULT_ENDPOINT when NULL.
    const char *bind;
    //  XSUB and XPUB endpoints; derived from bind when NULL (tcp port + 1
    //  and + 2, ipc://P -> ipc://P.pub and ipc://P.sub).
    const char *publish_bind;
    const char *events_bind;
    //  Exactly one of these: a certificate directory, or insecure.
    const char *certs_dir;
    bool insecure;
    //  0 means the default.
    int heartbeat_ms;
    size_t max_message_size;
    int hwm;
    size_t max_waiting;
} zube_broker_config_t;

typedef struct {
    uint64_t routed;            //  requests forwarded to an instance
    uint64_t replied;           //  replies returned to clients
    uint64_t dropped;           //  malformed or unroutable messages
    uint64_t expired;           //  requests that reached their deadline
    uint64_t unauthorized;      //  connections refused by authentication
    uint64_t events;            //  events fanned out
    uint64_t oversized;         //  messages over the size limit
    uint64_t instance_deaths;   //  instances forgotten for silence
} zube_broker_counters_t;

//  Checks the config, loads certificates and starts the authenticator.
//  Returns NULL (and logs why) when the config or certificates are unusable.
zube_broker_t *zube_broker_new (const zube_broker_config_t *config);

//  Sends DISCONNECT to every known peer, then closes everything.
void zube_broker_destroy (zube_broker_t **self_p);

//  Binds the three sockets. Returns 0, or -1 with the endpoint and the
//  reason in error.
int zube_broker_bind (zube_broker_t *self, char *error, size_t error_size);

//  Waits up to timeout_ms for work, handles everything that is ready and
//  every timer that is due. Returns 0, or -1 when interrupted.
int zube_broker_step (zube_broker_t *self, int timeout_ms);

//  Steps until interrupted (SIGINT/SIGTERM) or zube_broker_stop.
void zube_broker_run (zube_broker_t *self);
void zube_broker_stop (zube_broker_t *self);

const zube_broker_counters_t *zube_broker_counters (zube_broker_t *self);

//  The random id chosen at start, sent in every broker heartbeat.
const char *zube_broker_epoch (zube_broker_t *self);

//  The endpoints actually bound (after zube_broker_bind), else NULL.
const char *zube_broker_endpoint (zube_broker_t *self);
const char *zube_broker_publish_endpoint (zube_broker_t *self);
const char *zube_broker_events_endpoint (zube_broker_t *self);

#ifdef __cplusplus
}
#endif
#endif
