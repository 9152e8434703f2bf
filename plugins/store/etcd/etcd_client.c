/*  etcd_client - HTTP requests to etcd's v3 JSON gateway over libcurl.

    Everything runs on the caller's thread inside etcd_client_wait: curl's
    multi interface drives the transfers, keeps connections alive between
    calls, and lets the txn scheduler keep several requests in flight. The
    client never touches signals (CURLOPT_NOSIGNAL): it is a guest in the
    host's process. */
#define _GNU_SOURCE
#include "etcd_client.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A response larger than this is refused (etcd's own limit on a request
//  is 1.5 MiB by default; a range of everything can be large, and the
//  plugin pages its ranges).
#define S_MAX_RESPONSE ((size_t)1 << 30)
#define S_POOL_MAX 64

struct etcd_client_t {
    char **endpoints;
    size_t endpoint_count;
    //  The endpoint new requests go to: the last one that answered.
    size_t current;
    long timeout_ms;
    CURLM *multi;
    struct curl_slist *headers;
    CURL *pool[S_POOL_MAX];
    size_t pool_size;
    size_t in_flight;
};

static void
s_free_endpoints (etcd_client_t *self)
{
    for (size_t i = 0; i < self->endpoint_count; i++)
        free (self->endpoints[i]);
    free (self->endpoints);
    self->endpoints = NULL;
    self->endpoint_count = 0;
}

//  "h1:p1,h2:p2" -> endpoints; -1 with error on an empty or bad entry.
static int
s_parse_hosts (etcd_client_t *self, const char *hosts, char *error, size_t error_size)
{
    size_t count = 1;
    for (const char *c = hosts; *c; c++)
        count += *c == ',';
    self->endpoints = calloc (count, sizeof (char *));
    if (!self->endpoints) {
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    const char *at = hosts;
    for (size_t i = 0; i < count; i++) {
        size_t len = strcspn (at, ",");
        const char *colon = memrchr (at, ':', len);
        char *end = NULL;
        long port = colon ? strtol (colon + 1, &end, 10) : 0;
        bool bad_char = false;
        for (size_t j = 0; j < len; j++)
            bad_char |= at[j] == '/' || at[j] == '@' || at[j] == '?' || at[j] == '#' ||
                        at[j] == ' ';
        if (len == 0 || !colon || colon == at || end != at + len ||
            colon + 1 == at + len || port < 1 || port > 65535 || bad_char || len > 100) {
            snprintf (error, error_size, "bad endpoint \"%.*s\" (expected HOST:PORT)",
                      (int)(len > 100 ? 100 : len), at);
            s_free_endpoints (self);
            return -1;
        }
        if (!(self->endpoints[i] = strndup (at, len))) {
            snprintf (error, error_size, "out of memory");
            s_free_endpoints (self);
            return -1;
        }
        self->endpoint_count = i + 1;
        at += len + (at[len] == ',');
    }
    return 0;
}

etcd_client_t *
etcd_client_new (const char *hosts, long timeout_ms, char *error, size_t error_size)
{
    etcd_client_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->timeout_ms = timeout_ms;
    if (s_parse_hosts (self, hosts, error, error_size) != 0) {
        free (self);
        return NULL;
    }
    self->multi = curl_multi_init ();
    //  JSON in; no "Expect: 100-continue" round trip for large bodies.
    struct curl_slist *headers =
        curl_slist_append (NULL, "Content-Type: application/json");
    if (headers)
        self->headers = curl_slist_append (headers, "Expect:");
    if (!self->multi || !self->headers) {
        if (!self->headers)
            curl_slist_free_all (headers);
        snprintf (error, error_size, "cannot initialise libcurl");
        etcd_client_destroy (&self);
        return NULL;
    }
    curl_multi_setopt (self->multi, CURLMOPT_MAXCONNECTS, (long)S_POOL_MAX);
    return self;
}

void
etcd_client_destroy (etcd_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    etcd_client_t *self = *self_p;
    for (size_t i = 0; i < self->pool_size; i++)
        curl_easy_cleanup (self->pool[i]);
    if (self->multi)
        curl_multi_cleanup (self->multi);
    curl_slist_free_all (self->headers);
    s_free_endpoints (self);
    free (self);
    *self_p = NULL;
}

const char *
etcd_client_endpoint (etcd_client_t *self)
{
    return self->endpoints[self->current];
}

size_t
etcd_client_in_flight (etcd_client_t *self)
{
    return self->in_flight;
}

//  Hands each complete JSON document of a stream to stream_fn.
static bool
s_feed_stream (etcd_request_t *request)
{
    while (request->response.size) {
        size_t end = etcd_json_complete (request->response.data, request->response.size);
        if (end == 0)
            return true;
        int stop = request->stream_fn (request->stream_arg, request->response.data, end);
        etcd_buf_consume (&request->response, end);
        if (stop) {
            request->stopped = true;
            return false;
        }
    }
    return true;
}

static size_t
s_write (char *data, size_t size, size_t count, void *arg)
{
    etcd_request_t *request = arg;
    size_t bytes = size * count;
    if (request->response.size + bytes > S_MAX_RESPONSE)
        return 0;
    etcd_buf_append (&request->response, data, bytes);
    if (request->response.failed)
        return 0;
    if (request->stream_fn && !s_feed_stream (request))
        return 0;
    return bytes;
}

//  Points request at endpoint `at` and adds it to the multi handle.
static int
s_launch (etcd_client_t *self, etcd_request_t *request)
{
    char url[512];
    snprintf (request->endpoint, sizeof request->endpoint, "%s",
              self->endpoints[request->at]);
    snprintf (url, sizeof url, "http://%s%s", self->endpoints[request->at],
              request->path);
    CURL *easy = request->easy;
    long timeout = request->timeout_ms > 0 ? request->timeout_ms : self->timeout_ms;
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS,
                      request->body.data ? request->body.data : "{}");
    curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE,
                      (curl_off_t)(request->body.data ? request->body.size : 2));
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, request);
    curl_easy_setopt (easy, CURLOPT_PRIVATE, request);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    if (request->stream_fn && request->timeout_ms < 0)
        //  Open-ended: the caller decides how long it waits for data.
        curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, 0L);
    else if (request->stream_fn) {
        //  A stream may rightly take long: give up only when it stalls.
        curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, 0L);
        curl_easy_setopt (easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt (easy, CURLOPT_LOW_SPEED_TIME,
                          timeout >= 2000 ? timeout / 1000 : 2L);
    } else
        curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, timeout < 2000 ? timeout : 2000L);
    curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, request->curl_error);
    curl_easy_setopt (easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http");
    request->curl_error[0] = 0;
    etcd_buf_reset (&request->response);
    request->stopped = false;
    request->tries++;
    if (curl_multi_add_handle (self->multi, easy) != CURLM_OK)
        return -1;
    self->in_flight++;
    return 0;
}

int
etcd_client_start (etcd_client_t *self, etcd_request_t *request)
{
    request->state = ETCD_REQUEST_PENDING;
    request->http_code = 0;
    request->error[0] = 0;
    request->tries = 0;
    request->at = self->current;
    if (!request->easy) {
        if (self->pool_size)
            request->easy = self->pool[--self->pool_size];
        else
            request->easy = curl_easy_init ();
    }
    if (!request->easy || request->body.failed || s_launch (self, request) != 0) {
        request->state = ETCD_REQUEST_UNSENT;
        snprintf (request->error, sizeof request->error, "etcd: out of memory");
        return -1;
    }
    return 0;
}

static void
s_note_error (etcd_request_t *request, CURLcode code)
{
    long os_errno = 0;
    curl_easy_getinfo (request->easy, CURLINFO_OS_ERRNO, &os_errno);
    size_t used = strlen (request->error);
    snprintf (request->error + used, sizeof request->error - used, "%s%s: %s%s%s%s",
              used ? "; " : "", request->endpoint,
              request->curl_error[0] ? request->curl_error : curl_easy_strerror (code),
              os_errno ? " (" : "", os_errno ? strerror ((int)os_errno) : "",
              os_errno ? ")" : "");
}

//  A transfer ended: decides whether it is over, or retried elsewhere.
//  True when the request is over.
static bool
s_finished (etcd_client_t *self, etcd_request_t *request, CURLcode code)
{
    curl_multi_remove_handle (self->multi, request->easy);
    self->in_flight--;
    if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && request->stopped)) {
        curl_easy_getinfo (request->easy, CURLINFO_RESPONSE_CODE, &request->http_code);
        request->state = ETCD_REQUEST_DONE;
        self->current = request->at;
        return true;
    }
    s_note_error (request, code);
    long sent = 0;
    curl_easy_getinfo (request->easy, CURLINFO_REQUEST_SIZE, &sent);
    bool unsent = code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
                  (sent == 0 && code != CURLE_WRITE_ERROR);
    if ((unsent || request->idempotent) && request->tries < self->endpoint_count &&
        code != CURLE_WRITE_ERROR) {
        //  The next endpoint, and new requests go there too.
        request->at = (request->at + 1) % self->endpoint_count;
        self->current = request->at;
        if (s_launch (self, request) == 0)
            return false;
    }
    request->state = unsent ? ETCD_REQUEST_UNSENT : ETCD_REQUEST_FAILED;
    return true;
}

//  A request whose transfer ended for good, or NULL.
static etcd_request_t *
s_next_done (etcd_client_t *self)
{
    CURLMsg *message;
    int queued;
    while ((message = curl_multi_info_read (self->multi, &queued))) {
        if (message->msg != CURLMSG_DONE)
            continue;
        etcd_request_t *request = NULL;
        curl_easy_getinfo (message->easy_handle, CURLINFO_PRIVATE, (char **)&request);
        if (request && s_finished (self, request, message->data.result))
            return request;
    }
    return NULL;
}

etcd_request_t *
etcd_client_wait (etcd_client_t *self)
{
    while (true) {
        etcd_request_t *request = s_next_done (self);
        if (request)
            return request;
        if (self->in_flight == 0)
            return NULL;
        int running = 0;
        if (curl_multi_perform (self->multi, &running) != CURLM_OK)
            return NULL;
        //  curl_multi_perform may have finished transfers: read them first.
        if (running == (int)self->in_flight)
            curl_multi_poll (self->multi, NULL, 0, 1000, NULL);
    }
}

etcd_request_t *
etcd_client_poll (etcd_client_t *self, int wait_ms)
{
    etcd_request_t *request = s_next_done (self);
    if (request || self->in_flight == 0)
        return request;
    //  Returns at once when a socket is ready or curl has a timer due.
    curl_multi_poll (self->multi, NULL, 0, wait_ms, NULL);
    int running = 0;
    curl_multi_perform (self->multi, &running);
    return s_next_done (self);
}

void
etcd_client_call (etcd_client_t *self, etcd_request_t *request)
{
    if (etcd_client_start (self, request) != 0)
        return;
    while (request->state == ETCD_REQUEST_PENDING)
        if (!etcd_client_wait (self))
            break;
    if (request->state == ETCD_REQUEST_PENDING) {
        request->state = ETCD_REQUEST_FAILED;
        snprintf (request->error, sizeof request->error, "etcd %s: libcurl failed",
                  request->endpoint);
    }
}

void
etcd_client_release (etcd_client_t *self, etcd_request_t *request)
{
    if (request->easy) {
        if (request->state == ETCD_REQUEST_PENDING && self->in_flight) {
            curl_multi_remove_handle (self->multi, request->easy);
            self->in_flight--;
        }
        if (self->pool_size < S_POOL_MAX) {
            curl_easy_reset (request->easy);
            self->pool[self->pool_size++] = request->easy;
        } else
            curl_easy_cleanup (request->easy);
        request->easy = NULL;
    }
    etcd_buf_free (&request->body);
    etcd_buf_free (&request->response);
}
