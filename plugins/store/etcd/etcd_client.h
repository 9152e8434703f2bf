/*  etcd_client - HTTP requests to etcd's v3 JSON gateway over libcurl.

    One client per store backend: the endpoints of the URL, one curl multi
    handle (so connections are kept alive and shared) and a pool of easy
    handles. Requests run concurrently: start several, then wait for each
    to end. A request that cannot connect to an endpoint moves on to the
    next one (and the client remembers which endpoint answered); a read
    (`idempotent`) is also retried there after any transport failure, a
    write never once its bytes may have left, since etcd may have applied
    it.

    Private to plugins/store/etcd. */
#ifndef ETCD_CLIENT_H_INCLUDED
#define ETCD_CLIENT_H_INCLUDED

#include "etcd_json.h"
#include <curl/curl.h>

typedef struct etcd_client_t etcd_client_t;

typedef enum {
    //  Not started, or still running.
    ETCD_REQUEST_PENDING = 0,
    //  An HTTP response arrived (any status code); or stream_fn stopped it.
    ETCD_REQUEST_DONE,
    //  No endpoint accepted the request: nothing of it reached etcd.
    ETCD_REQUEST_UNSENT,
    //  The transport failed after the request may have reached etcd.
    ETCD_REQUEST_FAILED
} etcd_request_state_t;

//  Called with each complete top-level JSON document of a streamed
//  response (a watch); answer nonzero to end the request there.
typedef int (etcd_stream_fn) (void *arg, const char *text, size_t size);

typedef struct {
    //  In: the gateway path ("/v3/kv/range") and the JSON body.
    const char *path;
    etcd_buf_t body;
    bool idempotent;
    etcd_stream_fn *stream_fn;
    void *stream_arg;
    //  0: the client's timeout. For a stream (stream_fn), the longest
    //  silence, not the whole request; -1: none (an open-ended stream,
    //  driven by etcd_client_poll until the caller has what it waits for).
    long timeout_ms;
    //  For the caller (the txn scheduler keeps its group here).
    size_t tag;

    //  Out.
    etcd_request_state_t state;
    long http_code;
    //  The body (what stream_fn did not consume).
    etcd_buf_t response;
    //  The transport failure, naming the endpoint(s) tried.
    char error[384];
    //  The endpoint that answered (or last failed).
    char endpoint[128];

    //  Private.
    CURL *easy;
    size_t at;
    size_t tries;
    bool stopped;
    char curl_error[CURL_ERROR_SIZE];
} etcd_request_t;

//  hosts: "HOST:PORT[,HOST:PORT...]". NULL with error on a bad list.
etcd_client_t *etcd_client_new (const char *hosts, long timeout_ms, char *error,
                                size_t error_size);
void etcd_client_destroy (etcd_client_t **self_p);
//  The endpoint requests go to first ("127.0.0.1:2379").
const char *etcd_client_endpoint (etcd_client_t *self);
size_t etcd_client_in_flight (etcd_client_t *self);

//  Starts request (its body must stay until it ends). -1 if curl refuses
//  (out of memory): the request is then UNSENT.
int etcd_client_start (etcd_client_t *self, etcd_request_t *request);
//  Runs the started requests until one ends and answers it; NULL when
//  none is in flight.
etcd_request_t *etcd_client_wait (etcd_client_t *self);
//  Waits at most wait_ms for a started request to have something to do,
//  does it, and answers one that ended then, or NULL.
etcd_request_t *etcd_client_poll (etcd_client_t *self, int wait_ms);
//  Start and wait for this request alone (nothing else may be in flight).
void etcd_client_call (etcd_client_t *self, etcd_request_t *request);
//  Frees a request's buffers (and returns its handle to the pool); the
//  request can be reused after.
void etcd_client_release (etcd_client_t *self, etcd_request_t *request);

#endif
