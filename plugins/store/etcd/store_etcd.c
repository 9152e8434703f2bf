/*  etcd - the store plugin on etcd's v3 JSON gateway (etcd 3.4 or later).

    URL `etcd://HOST:PORT[,HOST:PORT...]`: a request that cannot connect
    to one endpoint goes to the next. Keys are stored exactly as given
    (`/registry/pods/<namespace>/<name>`), so etcdctl shows them, and the
    etcd revision is the store's revision: a key's mod_revision is the
    object's resourceVersion. An empty etcd is at revision 1 (etcd's own
    start), so the first write takes 2.

    Writes. Each group of a txn_commit batch is one etcd txn: compares on
    the keys' mod_revision (0: must not exist), the writes on success, and
    reads of the keys on failure so the losers learn the current revisions.
    etcd gives a whole txn one revision, and the store promises each write
    its own revision and event, so a batch cannot be one etcd txn: it is
    one txn per group, in batch order (each group's compares see the
    earlier groups' writes). A group of several writes shares its txn's
    revision (etcd orders them by sub-revision); a group may not write one
    key twice (etcd refuses it). etcd fsyncs its WAL before it answers,
    so an answered write is durable. Up to `pipeline=N` groups (default
    32) that touch no common key are in flight at once, each on its own
    connection, and etcd commits them in one raft batch (one fsync):
    revisions then follow the commit order rather than the batch order.
    Groups that touch a key an earlier unfinished group touches wait for
    it, so each compare sees the batch's earlier writes. pipeline=1 keeps
    the batch order, one txn (and one fsync) after the other.

    If etcd cannot be reached, groups not yet sent are UNAVAILABLE and
    nothing of them is written. A group whose request was sent but whose
    answer was lost (etcd killed, connection reset, timeout) is UNAVAILABLE
    too, and may or may not have been written, as with any networked
    store: its error says so, and the caller re-reads. txn_commit answers
    UNAVAILABLE when no group was confirmed written, else OK with each
    group's own result.

    Events come from etcd's watch: the first `events (since)` opens one
    watch from since + 1 over the whole key space with prev_kv, on its own
    connection, and keeps it open; each call reads the current revision
    (a read at `since`, which also finds a compacted `since`: GONE) and
    takes events from the stream until it has every one up to that
    revision, keeping those that came beyond it for the next call. A
    call for events before what the stream holds starts it again there.
    etcd answers a watch below its compacted revision with
    compact_revision: that is GONE too. A `limit` never splits the events
    of one revision (a group's), since the caller goes on from the last
    revision it got. etcd has no call that tells the compacted revision;
    the plugin finds it as the lowest revision etcd still reads at
    (remembered, so usually one request).

    Snapshot and restore: etcd's own snapshot (/v3/maintenance/snapshot)
    is its bbolt file, restored only by etcdutl into a new data directory
    with etcd stopped, and etcd revisions never go back. So the plugin
    writes a portable dump of the keys under /registry/ (see s_snapshot),
    and a restore writes the difference between the dump and the store as
    new writes: the restored objects get new revisions (the revision only
    moves forward, and watchers see the changes as events). The dump is
    checked completely before anything is written; the changes are then
    applied in txns of at most 128 operations (etcd's default
    --max-txn-ops), so a restore cut short leaves some applied: run it
    again. */
#define _GNU_SOURCE
#include "etcd_client.h"
#include "etcd_json.h"
#include "zube/store.h"
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_KEY 1024
#define S_PAGE 500
#define S_DEFAULT_TIMEOUT_MS 10000
#define S_MAX_PIPELINE 64
#define S_DEFAULT_PIPELINE 32
#define S_SNAPSHOT_PREFIX "/registry/"
#define S_SNAPSHOT_MAGIC "ZUBEETCD"
#define S_SNAPSHOT_FORMAT 1
#define S_SNAPSHOT_MAX ((size_t)4 << 30)
#define S_RESTORE_TXN_OPS 128
#define S_RESTORE_TXN_BYTES ((size_t)1 << 20)

//  One event as the stream delivered it (key and value owned).
typedef struct {
    zube_store_event_type_t type;
    int64_t revision;
    int64_t prev_revision;
    char *key;
    size_t key_size;
    char *value;
    size_t value_size;
} s_event_t;

typedef struct {
    etcd_client_t *client;
    etcd_request_t request;
    etcd_json_t json;
    bool open;
    //  Every event with a revision in (base, complete] is in
    //  events[head .. count): base is what was handed out (or where the
    //  stream starts), complete the last revision that arrived.
    int64_t base;
    int64_t complete;
    s_event_t *events;
    size_t head;
    size_t count;
    size_t capacity;
    //  Why the stream stopped (set in its callback, with errmsg), and
    //  etcd's compacted revision when that was GONE.
    zube_status_t status;
    int64_t compact_revision;
} s_stream_t;

struct zube_store_backend_t {
    const zube_host_t *host;
    char *url;
    //  "HOST:PORT[,HOST:PORT...]" of the url.
    char *hosts;
    etcd_client_t *client;
    //  Groups of a batch in flight at once (1: in batch order).
    size_t pipeline;
    long timeout_ms;
    //  etcd's compacted revision as last seen: a lower bound.
    int64_t compacted;
    //  The watch events come from (see s_events): its own client, so
    //  other calls never wait for it.
    s_stream_t stream;
    char error[512];
};

static zube_status_t s_fail (zube_store_backend_t *self, zube_status_t status,
                             const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static zube_status_t
s_fail (zube_store_backend_t *self, zube_status_t status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof self->error, format, args);
    va_end (args);
    return status;
}

//  items (of *capacity elements of size bytes) grown to twice as many
//  (256 at first): the new array, or NULL with items as they were.
static void *
s_grow_array (void *items, size_t *capacity, size_t size)
{
    size_t grown = *capacity ? *capacity * 2 : 256;
    void *bigger = realloc (items, grown * size);
    if (bigger)
        *capacity = grown;
    return bigger;
}

static bool
s_key_valid (const char *key)
{
    return key && *key && strlen (key) <= S_MAX_KEY;
}

//  "key":"<base64>" (with a leading comma when `comma`).
static void
s_json_bytes (etcd_buf_t *body, const char *name, const void *data, size_t size)
{
    etcd_buf_printf (body, "\"%s\":\"", name);
    etcd_buf_base64 (body, data, size);
    etcd_buf_append (body, "\"", 1);
}

//  ---------------------------------------------------------------------
//  Requests and answers

//  etcd's error (a gRPC code and message) as a status.
static zube_status_t
s_grpc_status (int64_t code, const char *message)
{
    if (strstr (message, "required revision has been compacted"))
        return ZUBE_GONE;
    if (strstr (message, "future revision"))
        return ZUBE_BAD_REQUEST;
    if (strstr (message, "request is too large") || strstr (message, "larger than max"))
        return ZUBE_PAYLOAD_TOO_LARGE;
    if (strstr (message, "too many requests"))
        return ZUBE_TOO_MANY_REQUESTS;
    switch (code) {
    case 3:  //  InvalidArgument
    case 9:  //  FailedPrecondition
    case 11: //  OutOfRange
        return ZUBE_BAD_REQUEST;
    case 1:  //  Canceled
    case 4:  //  DeadlineExceeded
    case 8:  //  ResourceExhausted (database space exceeded)
    case 10: //  Aborted
    case 14: //  Unavailable (no leader, leader changed, timeouts)
        return ZUBE_UNAVAILABLE;
    case 7:
        return ZUBE_FORBIDDEN;
    case 16:
        return ZUBE_UNAUTHORIZED;
    default:
        return ZUBE_INTERNAL;
    }
}

//  The outcome of an ended request: OK with its answer parsed into json,
//  or the failure (errmsg set).
static zube_status_t
s_answer (zube_store_backend_t *self, etcd_request_t *request, etcd_json_t *json)
{
    if (request->state == ETCD_REQUEST_UNSENT)
        return s_fail (self, ZUBE_UNAVAILABLE, "etcd unreachable: %s", request->error);
    if (request->state != ETCD_REQUEST_DONE)
        return s_fail (self, ZUBE_UNAVAILABLE, "etcd %s: %s: %s", request->endpoint,
                       request->path, request->error[0] ? request->error : "no answer");
    const char *text = request->response.data ? request->response.data : "";
    if (etcd_json_parse (json, text, request->response.size) != 0) {
        if (request->http_code != 200)
            return s_fail (self,
                           request->http_code >= 500 ? ZUBE_UNAVAILABLE : ZUBE_INTERNAL,
                           "etcd %s: %s: HTTP %ld: %.200s", request->endpoint,
                           request->path, request->http_code, text);
        return s_fail (self, ZUBE_INTERNAL, "etcd %s: %s: answer is not JSON (%s)",
                       request->endpoint, request->path, json->error);
    }
    if (request->http_code == 200)
        return ZUBE_OK;
    int64_t code = etcd_json_int (etcd_json_get (json->root, "code"), -1);
    char *message = etcd_json_string (etcd_json_get (json->root, "message"));
    if (!message)
        message = etcd_json_string (etcd_json_get (json->root, "error"));
    zube_status_t status = s_grpc_status (code, message ? message : "");
    s_fail (self, status, "etcd %s: %s: %s (HTTP %ld)", request->endpoint, request->path,
            message ? message : "error", request->http_code);
    free (message);
    return status;
}

//  Runs one request alone; see s_answer.
static zube_status_t
s_call (zube_store_backend_t *self, etcd_request_t *request, etcd_json_t *json)
{
    if (request->body.failed)
        return s_fail (self, ZUBE_INTERNAL, "etcd: out of memory");
    etcd_client_call (self->client, request);
    return s_answer (self, request, json);
}

//  One key-value of an answer, decoded.
typedef struct {
    char *key;
    size_t key_size;
    char *value;
    size_t value_size;
    int64_t mod_revision;
    int64_t version;
} s_kv_t;

static void
s_kv_free (s_kv_t *kv)
{
    free (kv->key);
    free (kv->value);
    *kv = (s_kv_t){0};
}

static int
s_kv_read (const zube_json_t *node, s_kv_t *kv)
{
    *kv = (s_kv_t){0};
    if (etcd_json_base64 (etcd_json_get (node, "key"), &kv->key,
                          &kv->key_size) != 0 ||
        etcd_json_base64 (etcd_json_get (node, "value"), &kv->value,
                          &kv->value_size) != 0) {
        s_kv_free (kv);
        return -1;
    }
    kv->mod_revision =
        etcd_json_int (etcd_json_get (node, "mod_revision"), 0);
    kv->version = etcd_json_int (etcd_json_get (node, "version"), 0);
    return 0;
}

//  A read of one key at revision (0: the latest), answering etcd's
//  current revision: OK, GONE when revision is compacted, BAD_REQUEST
//  when it is in the future.
static zube_status_t
s_probe (zube_store_backend_t *self, int64_t revision, int64_t *current_p)
{
    etcd_request_t request = {.path = "/v3/kv/range", .idempotent = true};
    etcd_buf_printf (&request.body, "{\"key\":\"AA==\",\"keys_only\":true");
    if (revision > 0)
        etcd_buf_printf (&request.body, ",\"revision\":\"%" PRId64 "\"", revision);
    etcd_buf_append (&request.body, "}", 1);
    etcd_json_t json = {0};
    zube_status_t status = s_call (self, &request, &json);
    if (status == ZUBE_OK) {
        *current_p =
            etcd_json_int (etcd_json_get (json.root, "header.revision"), -1);
        if (*current_p < 0)
            status = s_fail (self, ZUBE_INTERNAL, "etcd %s: an answer without a revision",
                             request.endpoint);
    }
    etcd_json_free (&json);
    etcd_client_release (self->client, &request);
    return status;
}

//  etcd's compacted revision: the lowest revision it still reads at (0
//  when it reads at 1). Starts from the last one seen, usually one probe,
//  which also answers the current revision.
static zube_status_t
s_compacted (zube_store_backend_t *self, int64_t *current_p, int64_t *compacted_p)
{
    int64_t low = self->compacted > 1 ? self->compacted : 1;
    zube_status_t status = s_probe (self, low, current_p);
    if (status == ZUBE_OK) {
        *compacted_p = low > 1 ? low : 0;
        return ZUBE_OK;
    }
    if (status != ZUBE_GONE)
        return status;
    //  Compacted past low: the current revision reads, so bisect.
    if ((status = s_probe (self, 0, current_p)) != ZUBE_OK)
        return status;
    int64_t high = *current_p;
    while (high - low > 1) {
        int64_t middle = low + (high - low) / 2, ignored;
        status = s_probe (self, middle, &ignored);
        if (status == ZUBE_OK)
            high = middle;
        else if (status == ZUBE_GONE)
            low = middle;
        else
            return status;
    }
    self->compacted = high;
    *compacted_p = high;
    return ZUBE_OK;
}

//  ---------------------------------------------------------------------
//  Opening

//  Applies one "key=value" setting; false (with error) if unknown or bad.
static bool
s_option (zube_store_backend_t *self, const char *option, char *error, size_t error_size)
{
    const char *equals = strchr (option, '=');
    size_t name_len = equals ? (size_t)(equals - option) : strlen (option);
    const char *value = equals ? equals + 1 : "";
    char *end = NULL;
    long number = strtol (value, &end, 10);
    bool numeric = *value && !*end;
    if (name_len == 8 && strncmp (option, "pipeline", 8) == 0) {
        if (!numeric || number < 1 || number > S_MAX_PIPELINE) {
            snprintf (error, error_size,
                      "option pipeline: expected 1 to %d, found \"%s\"", S_MAX_PIPELINE,
                      value);
            return false;
        }
        self->pipeline = (size_t)number;
        return true;
    }
    if (name_len == 10 && strncmp (option, "timeout_ms", 10) == 0) {
        if (!numeric || number < 100 || number > 600000) {
            snprintf (error, error_size,
                      "option timeout_ms: expected 100 to 600000, found \"%s\"", value);
            return false;
        }
        self->timeout_ms = number;
        return true;
    }
    snprintf (error, error_size,
              "unknown option \"%.*s\" (etcd knows pipeline, timeout_ms)", (int)name_len,
              option);
    return false;
}

static void s_stream_close (zube_store_backend_t *self);

static void
s_close (zube_store_backend_t **backend_p)
{
    if (!backend_p || !*backend_p)
        return;
    zube_store_backend_t *self = *backend_p;
    s_stream_close (self);
    etcd_client_destroy (&self->stream.client);
    etcd_json_free (&self->stream.json);
    free (self->stream.events);
    etcd_client_destroy (&self->client);
    free (self->hosts);
    free (self->url);
    free (self);
    *backend_p = NULL;
}

static zube_status_t
s_open (const zube_host_t *host, const char *url, const char *const *options,
        zube_store_backend_t **backend_p, char *error, size_t error_size)
{
    *backend_p = NULL;
    if (!url || strncmp (url, "etcd://", 7) != 0 || !url[7]) {
        snprintf (error, error_size, "expected etcd://HOST:PORT[,HOST:PORT...], found %s",
                  url ? url : "(null)");
        return ZUBE_BAD_REQUEST;
    }
    zube_store_backend_t *self = calloc (1, sizeof *self);
    if (!self || !(self->url = strdup (url))) {
        free (self);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    self->host = host;
    self->pipeline = S_DEFAULT_PIPELINE;
    self->timeout_ms = S_DEFAULT_TIMEOUT_MS;
    //  The host's configuration first, the open's options over it.
    const char *settings[] = {"pipeline", "timeout_ms"};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        const char *configured = host->config_get (host, settings[i]);
        char option[128];
        snprintf (option, sizeof option, "%s=%s", settings[i],
                  configured ? configured : "");
        if (configured && !s_option (self, option, error, error_size)) {
            s_close (&self);
            return ZUBE_BAD_REQUEST;
        }
    }
    for (size_t i = 0; options && options[i]; i++)
        if (!s_option (self, options[i], error, error_size)) {
            s_close (&self);
            return ZUBE_BAD_REQUEST;
        }
    //  "etcd://h:p,h:p" or with one trailing slash.
    char *hosts = self->hosts = strdup (url + 7);
    if (!hosts) {
        s_close (&self);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    size_t len = strlen (hosts);
    if (len && hosts[len - 1] == '/')
        hosts[len - 1] = 0;
    char why[256] = "";
    self->client = etcd_client_new (hosts, self->timeout_ms, why, sizeof why);
    if (!self->client) {
        snprintf (error, error_size, "%s: %s", url, why);
        s_close (&self);
        return ZUBE_BAD_REQUEST;
    }
    int64_t current = 0, compacted = 0;
    zube_status_t status = s_compacted (self, &current, &compacted);
    if (status != ZUBE_OK) {
        snprintf (error, error_size, "%s", self->error);
        s_close (&self);
        return status;
    }
    host->log (host, ZUBE_LOG_INFO,
               "msg=\"store opened\" url=%s endpoint=%s revision=%" PRId64
               " pipeline=%zu",
               url, etcd_client_endpoint (self->client), current, self->pipeline);
    *backend_p = self;
    return ZUBE_OK;
}

static const char *
s_errmsg (zube_store_backend_t *self)
{
    return self->error;
}

//  ---------------------------------------------------------------------
//  Reads

static zube_status_t
s_get (zube_store_backend_t *self, const char *key, zube_store_kv_fn *fn, void *arg)
{
    if (!s_key_valid (key))
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "etcd: invalid key (empty or over %d bytes)", S_MAX_KEY);
    etcd_request_t request = {.path = "/v3/kv/range", .idempotent = true};
    etcd_buf_append (&request.body, "{", 1);
    s_json_bytes (&request.body, "key", key, strlen (key));
    etcd_buf_append (&request.body, "}", 1);
    etcd_json_t json = {0};
    zube_status_t status = s_call (self, &request, &json);
    if (status == ZUBE_OK) {
        const zube_json_t *kvs = etcd_json_get (json.root, "kvs");
        s_kv_t kv;
        if (etcd_json_count (kvs) == 0)
            status = s_fail (self, ZUBE_NOT_FOUND, "%s not found", key);
        else if (s_kv_read (kvs->items[0], &kv) != 0)
            status = s_fail (self, ZUBE_INTERNAL,
                             "etcd %s: a key-value that is not base64", request.endpoint);
        else {
            zube_store_kv_t item = {.key = key,
                                    .key_size = strlen (key),
                                    .value = kv.value,
                                    .value_size = kv.value_size,
                                    .mod_revision = kv.mod_revision};
            if (fn)
                fn (arg, &item);
            s_kv_free (&kv);
        }
    }
    etcd_json_free (&json);
    etcd_client_release (self->client, &request);
    return status;
}

//  The range_end that covers every key starting with prefix: the prefix
//  up to its last byte below 0xff, that byte incremented; "\0" (the whole
//  key space from the start key on) when there is none. end has room for
//  len + 1 bytes; answers its size.
static size_t
s_prefix_end (const char *prefix, size_t len, char *end)
{
    memcpy (end, prefix, len);
    while (len && (unsigned char)end[len - 1] == 0xff)
        len--;
    if (len == 0) {
        end[0] = 0;
        return 1;
    }
    end[len - 1] = (char)((unsigned char)end[len - 1] + 1);
    return len;
}

static int
s_bytes_compare (const char *a, size_t a_size, const char *b, size_t b_size)
{
    int order = memcmp (a, b, a_size < b_size ? a_size : b_size);
    if (order)
        return order;
    return a_size < b_size ? -1 : a_size > b_size;
}

static zube_status_t
s_range (zube_store_backend_t *self, const zube_store_range_t *range,
         zube_store_kv_fn *fn, void *arg, zube_store_range_result_t *result)
{
    *result = (zube_store_range_result_t){0};
    const char *prefix = range && range->prefix ? range->prefix : "";
    const char *after = range ? range->after_key : NULL;
    size_t limit = range ? range->limit : 0;
    size_t prefix_len = strlen (prefix);
    if (prefix_len > S_MAX_KEY || (after && strlen (after) > S_MAX_KEY))
        return s_fail (self, ZUBE_BAD_REQUEST,
                       "etcd: range prefix or after_key over %d bytes", S_MAX_KEY);
    char end[S_MAX_KEY + 2];
    size_t end_size = s_prefix_end (prefix, prefix_len, end);
    bool to_the_end = end_size == 1 && end[0] == 0;
    //  The first key: the prefix, or just past after_key when that is
    //  further ("\0" for the whole key space).
    etcd_buf_t start = {0};
    if (after && strcmp (after, prefix) >= 0)
        etcd_buf_append (&start, after, strlen (after) + 1);
    else if (prefix_len)
        etcd_buf_append (&start, prefix, prefix_len);
    else
        etcd_buf_append (&start, "", 1);
    if (start.failed) {
        etcd_buf_free (&start);
        return s_fail (self, ZUBE_INTERNAL, "etcd: out of memory");
    }
    if (!to_the_end && s_bytes_compare (start.data, start.size, end, end_size) >= 0) {
        etcd_buf_free (&start);
        int64_t current = 0;
        zube_status_t status = s_probe (self, 0, &current);
        result->revision = current;
        return status;
    }
    //  Pages of S_PAGE keys, all read at the first page's revision.
    zube_status_t status = ZUBE_OK;
    int64_t revision = 0;
    bool stop = false;
    while (!stop && status == ZUBE_OK) {
        size_t want = limit ? limit - result->count : 0;
        size_t page = want && want < S_PAGE ? want : S_PAGE;
        etcd_request_t request = {.path = "/v3/kv/range", .idempotent = true};
        etcd_buf_append (&request.body, "{", 1);
        s_json_bytes (&request.body, "key", start.data, start.size);
        etcd_buf_append (&request.body, ",", 1);
        s_json_bytes (&request.body, "range_end", end, end_size);
        etcd_buf_printf (&request.body, ",\"limit\":\"%zu\"", page);
        if (revision)
            etcd_buf_printf (&request.body, ",\"revision\":\"%" PRId64 "\"", revision);
        etcd_buf_append (&request.body, "}", 1);
        etcd_json_t json = {0};
        status = s_call (self, &request, &json);
        if (status == ZUBE_GONE)
            status = s_fail (self, ZUBE_UNAVAILABLE,
                             "etcd: revision %" PRId64
                             " was compacted during a paged range; retry",
                             revision);
        if (status == ZUBE_OK) {
            if (!revision)
                revision = result->revision =
                    etcd_json_int (etcd_json_get (json.root, "header.revision"), 0);
            bool more = etcd_json_bool (etcd_json_get (json.root, "more"));
            size_t got = 0;
            const zube_json_t *kvs = etcd_json_get (json.root, "kvs");
            for (size_t k = 0; k < etcd_json_count (kvs); k++) {
                const zube_json_t *node = kvs->items[k];
                if (stop) {
                    //  The callback stopped before the page's end.
                    result->more = true;
                    break;
                }
                s_kv_t kv;
                if (s_kv_read (node, &kv) != 0) {
                    status = s_fail (self, ZUBE_INTERNAL,
                                     "etcd %s: a key-value that is not base64",
                                     request.endpoint);
                    break;
                }
                zube_store_kv_t item = {.key = kv.key,
                                        .key_size = kv.key_size,
                                        .value = kv.value,
                                        .value_size = kv.value_size,
                                        .mod_revision = kv.mod_revision};
                result->count++;
                got++;
                stop = fn && fn (arg, &item) != 0;
                //  The next page starts just after this key.
                etcd_buf_reset (&start);
                etcd_buf_append (&start, kv.key, kv.key_size + 1);
                s_kv_free (&kv);
            }
            if (status == ZUBE_OK) {
                if (stop && !result->more)
                    result->more = more;
                if (!more || got == 0)
                    stop = true;
                else if (limit && result->count >= limit) {
                    result->more = true;
                    stop = true;
                }
            }
        }
        etcd_json_free (&json);
        etcd_client_release (self->client, &request);
        if (start.failed && status == ZUBE_OK)
            status = s_fail (self, ZUBE_INTERNAL, "etcd: out of memory");
    }
    etcd_buf_free (&start);
    return status;
}

static zube_status_t
s_revision (zube_store_backend_t *self, int64_t *revision_p, int64_t *compacted_p)
{
    int64_t current = 0, compacted = 0;
    zube_status_t status = s_compacted (self, &current, &compacted);
    if (revision_p)
        *revision_p = current;
    if (compacted_p)
        *compacted_p = compacted;
    return status;
}

//  ---------------------------------------------------------------------
//  Events: one watch stream, kept open
//
//  Opening a watch on every call cost a round trip, a new connection and,
//  above all, etcd's catch-up: a watch that starts in the past is an
//  "unsynced" watcher, served by a loop that runs every 100 ms, so each
//  call waited 60 ms on average. One watch kept open is "synced": etcd
//  pushes each txn's events as it commits. events () reads the stream
//  until it has every event up to the revision a read reported, and keeps
//  what came beyond it for the next call.

static void
s_event_free (s_event_t *event)
{
    free (event->key);
    free (event->value);
}

static void
s_stream_clear (s_stream_t *stream)
{
    for (size_t i = stream->head; i < stream->count; i++)
        s_event_free (&stream->events[i]);
    stream->head = stream->count = 0;
}

//  Stops the stream (its connection closes) and drops what it buffered.
static void
s_stream_close (zube_store_backend_t *self)
{
    s_stream_t *stream = &self->stream;
    if (stream->open)
        etcd_client_release (stream->client, &stream->request);
    stream->open = false;
    s_stream_clear (stream);
    etcd_json_reset (&stream->json);
}

//  Records why the stream stops (status, from s_fail); the callback's
//  answer that ends it.
static int
s_stream_stop (zube_store_backend_t *self, zube_status_t status)
{
    self->stream.status = status;
    return 1;
}

//  One event of a watch answer, decoded: 0, or -1 when it is bad.
static int
s_event_read (const zube_json_t *node, s_event_t *event)
{
    char *type = etcd_json_string (etcd_json_get (node, "type"));
    bool deleted = type && strcmp (type, "DELETE") == 0;
    free (type);
    s_kv_t kv, prev = {0};
    if (s_kv_read (etcd_json_get (node, "kv"), &kv) != 0)
        return -1;
    const zube_json_t *prev_node = etcd_json_get (node, "prev_kv");
    if (prev_node && s_kv_read (prev_node, &prev) != 0) {
        s_kv_free (&kv);
        return -1;
    }
    *event =
        (s_event_t){.revision = kv.mod_revision, .key = kv.key, .key_size = kv.key_size};
    if (deleted) {
        //  A DELETED event carries the last value the key had.
        event->type = ZUBE_STORE_EVENT_DELETED;
        event->prev_revision = prev.mod_revision;
        event->value = prev.value;
        event->value_size = prev.value_size;
        prev.value = NULL;
    } else {
        event->type =
            kv.version == 1 ? ZUBE_STORE_EVENT_ADDED : ZUBE_STORE_EVENT_MODIFIED;
        event->prev_revision = kv.version == 1 ? 0 : prev.mod_revision;
        event->value = kv.value;
        event->value_size = kv.value_size;
        kv.value = NULL;
    }
    kv.key = NULL;
    s_kv_free (&kv);
    s_kv_free (&prev);
    return 0;
}

static int
s_stream_add (s_stream_t *stream, const s_event_t *event)
{
    if (stream->count == stream->capacity && stream->head > 0) {
        memmove (stream->events, stream->events + stream->head,
                 (stream->count - stream->head) * sizeof *stream->events);
        stream->count -= stream->head;
        stream->head = 0;
    }
    if (stream->count == stream->capacity) {
        s_event_t *events =
            s_grow_array (stream->events, &stream->capacity, sizeof *events);
        if (!events)
            return -1;
        stream->events = events;
    }
    stream->events[stream->count++] = *event;
    return 0;
}

//  One message of the stream; nonzero ends it (status and error say why).
//  etcd sends all the events of one revision in one message, so whatever
//  a message brings completes the revisions it names.
static int
s_stream_message (void *arg, const char *text, size_t size)
{
    zube_store_backend_t *self = arg;
    s_stream_t *stream = &self->stream;
    etcd_json_t *json = &stream->json;
    if (etcd_json_parse (json, text, size) != 0)
        return s_stream_stop (self, s_fail (self, ZUBE_INTERNAL,
                                            "etcd: watch: bad JSON (%s)", json->error));
    const zube_json_t *result = etcd_json_get (json->root, "result");
    if (!result) {
        char *message = etcd_json_string (etcd_json_get (json->root, "error.message"));
        s_stream_stop (self, s_fail (self, ZUBE_UNAVAILABLE, "etcd: watch: %s",
                                     message ? message : "an answer without a result"));
        free (message);
        return 1;
    }
    stream->compact_revision =
        etcd_json_int (etcd_json_get (result, "compact_revision"), 0);
    if (stream->compact_revision > 0)
        return s_stream_stop (self, s_fail (self, ZUBE_GONE, "etcd: watch: compacted"));
    if (etcd_json_bool (etcd_json_get (result, "canceled"))) {
        char *reason =
            etcd_json_string (etcd_json_get (result, "cancel_reason"));
        s_stream_stop (self, s_fail (self, ZUBE_UNAVAILABLE, "etcd: watch canceled: %s",
                                     reason ? reason : "no reason given"));
        free (reason);
        return 1;
    }
    const zube_json_t *events = etcd_json_get (result, "events");
    for (size_t e = 0; e < etcd_json_count (events); e++) {
        s_event_t event;
        if (s_event_read (events->items[e], &event) != 0)
            return s_stream_stop (
                self, s_fail (self, ZUBE_INTERNAL, "etcd: watch: a bad event"));
        if (event.revision > stream->complete)
            stream->complete = event.revision;
        if (event.revision <= stream->base)
            s_event_free (&event);
        else if (s_stream_add (stream, &event) != 0) {
            s_event_free (&event);
            return s_stream_stop (self,
                                  s_fail (self, ZUBE_INTERNAL, "etcd: out of memory"));
        }
    }
    return 0;
}

//  Starts the watch at revision `from` over the whole key space, keeping
//  what is buffered.
static zube_status_t
s_stream_start (zube_store_backend_t *self, int64_t from)
{
    s_stream_t *stream = &self->stream;
    if (!stream->client) {
        char why[256] = "";
        stream->client = etcd_client_new (self->hosts, self->timeout_ms, why, sizeof why);
        if (!stream->client)
            return s_fail (self, ZUBE_INTERNAL, "etcd: watch: %s", why);
    }
    stream->request = (etcd_request_t){.path = "/v3/watch",
                                       .stream_fn = s_stream_message,
                                       .stream_arg = self,
                                       .timeout_ms = -1};
    etcd_buf_printf (&stream->request.body,
                     "{\"create_request\":{\"key\":\"AA==\",\"range_end\":\"AA==\","
                     "\"start_revision\":\"%" PRId64 "\",\"prev_kv\":true}}",
                     from);
    stream->status = ZUBE_OK;
    stream->compact_revision = 0;
    stream->open = true;
    if (etcd_client_start (stream->client, &stream->request) != 0) {
        zube_status_t status =
            s_fail (self, ZUBE_UNAVAILABLE, "etcd: watch: %s", stream->request.error);
        s_stream_close (self);
        return status;
    }
    if (stream->complete < from - 1)
        stream->complete = from - 1;
    return ZUBE_OK;
}

//  Reads the stream until it has every event up to revision `target`, or
//  `limit` (0: no limit) of them. A stream that ends is started again
//  once, after what it brought; a stream that stays silent past the
//  timeout is closed (UNAVAILABLE: etcd is hung or partitioned away).
static zube_status_t
s_stream_read (zube_store_backend_t *self, int64_t target, size_t limit)
{
    s_stream_t *stream = &self->stream;
    int64_t deadline = self->host->monotonic_ns (self->host) + self->timeout_ms * 1000000;
    bool restarted = false;
    while (stream->complete < target &&
           !(limit && stream->count - stream->head >= limit)) {
        etcd_request_t *ended = etcd_client_poll (stream->client, 100);
        if (ended) {
            zube_status_t status = stream->status;
            if (status == ZUBE_OK) {
                etcd_json_t json = {0};
                status = s_answer (self, ended, &json);
                etcd_json_free (&json);
                if (status == ZUBE_OK)
                    status = s_fail (self, ZUBE_UNAVAILABLE,
                                     "etcd %s: the watch ended at revision %" PRId64,
                                     ended->endpoint, stream->complete);
            }
            bool again = !restarted && status == ZUBE_UNAVAILABLE;
            etcd_client_release (stream->client, &stream->request);
            stream->open = false;
            if (!again) {
                s_stream_close (self);
                return status;
            }
            restarted = true;
            if ((status = s_stream_start (self, stream->complete + 1)) != ZUBE_OK)
                return status;
            continue;
        }
        if (self->host->monotonic_ns (self->host) > deadline) {
            zube_status_t status = s_fail (
                self, ZUBE_UNAVAILABLE,
                "etcd %s: the watch brought nothing past revision %" PRId64
                " in %ld ms (expected %" PRId64 ")",
                stream->request.endpoint, stream->complete, self->timeout_ms, target);
            s_stream_close (self);
            return status;
        }
    }
    return ZUBE_OK;
}

//  Drops the buffered events up to `since` (the caller has them).
static void
s_stream_skip (s_stream_t *stream, int64_t since)
{
    while (stream->head < stream->count && stream->events[stream->head].revision <= since)
        s_event_free (&stream->events[stream->head++]);
}

//  Hands out the buffered events (all after the caller's `since`): a
//  `limit` never splits the events of one revision (a group's), since the
//  caller goes on from the last revision it got, unless the first
//  revision alone is larger.
static void
s_stream_hand_out (s_stream_t *stream, size_t limit, zube_store_event_fn *fn, void *arg)
{
    size_t handed = 0;
    bool stop = false;
    while (stream->head < stream->count && !stop) {
        s_event_t *first = &stream->events[stream->head];
        size_t run = 1;
        while (stream->head + run < stream->count &&
               stream->events[stream->head + run].revision == first->revision)
            run++;
        if (limit && handed && handed + run > limit)
            break;
        for (size_t i = 0; i < run && !stop; i++) {
            s_event_t *event = &stream->events[stream->head];
            zube_store_event_t out = {.type = event->type,
                                      .revision = event->revision,
                                      .prev_revision = event->prev_revision,
                                      .key = event->key,
                                      .key_size = event->key_size,
                                      .value = event->value ? event->value : "",
                                      .value_size = event->value_size};
            stop = fn && fn (arg, &out) != 0;
            stream->base = event->revision;
            s_event_free (event);
            stream->head++;
            handed++;
        }
        if (limit && handed >= limit)
            break;
    }
    if (stream->head == stream->count)
        stream->head = stream->count = 0;
}

static zube_status_t
s_events (zube_store_backend_t *self, int64_t since, size_t limit,
          zube_store_event_fn *fn, void *arg, int64_t *revision_p)
{
    if (since < 0)
        return s_fail (self, ZUBE_BAD_REQUEST, "etcd: events since %" PRId64 ": negative",
                       since);
    s_stream_t *stream = &self->stream;
    //  Events before what the stream holds are asked again: a new stream.
    if (stream->open && since < stream->base)
        s_stream_close (self);
    //  A read at `since` tells whether its events are still there (etcd
    //  keeps the compacted revision itself readable) and the revision now.
    int64_t current = 0, compacted = 0;
    zube_status_t status = s_probe (self, since > 1 ? since : 1, &current);
    if (status == ZUBE_GONE) {
        s_stream_close (self);
        if (s_compacted (self, &current, &compacted) != ZUBE_OK)
            compacted = self->compacted;
        if (revision_p)
            *revision_p = current;
        return s_fail (self, ZUBE_GONE,
                       "events since %" PRId64
                       " are compacted (oldest available: since %" PRId64 ")",
                       since, compacted);
    }
    if (status == ZUBE_BAD_REQUEST) //  since is in the future: nothing yet
        status = s_probe (self, 0, &current);
    if (revision_p)
        *revision_p = current;
    if (status != ZUBE_OK)
        return status;
    if (!stream->open) {
        stream->base = since;
        stream->complete = since;
        if ((status = s_stream_start (self, since + 1)) != ZUBE_OK)
            return status;
    } else {
        if (since > stream->base)
            stream->base = since;
        s_stream_skip (stream, since);
    }
    if (since >= current || current <= 1)
        return ZUBE_OK;
    status = s_stream_read (self, current, limit);
    if (status == ZUBE_GONE)
        return s_fail (self, ZUBE_GONE,
                       "events since %" PRId64
                       " are compacted (oldest available: since %" PRId64 ")",
                       since, stream->compact_revision);
    if (status == ZUBE_OK)
        s_stream_hand_out (stream, limit, fn, arg);
    return status;
}

//  ---------------------------------------------------------------------
//  Writes

typedef struct {
    //  Its operations: ops[first .. end).
    size_t first;
    size_t end;
    //  BAD_REQUEST when found invalid before sending; OK otherwise.
    zube_status_t verdict;
    bool started;
    bool done;
    bool written;
    //  etcd could not be reached: nothing of this group was written.
    bool unsent;
    //  The answer was lost: written or not, nobody knows.
    bool unknown;
    etcd_request_t request;
} s_group_t;

static bool
s_op_valid (const zube_store_op_t *op)
{
    return s_key_valid (op->key) &&
           (op->type == ZUBE_STORE_PUT || op->type == ZUBE_STORE_DELETE) &&
           !(op->type == ZUBE_STORE_PUT && op->value_size && !op->value) &&
           op->expect_revision >= ZUBE_STORE_ANY_REVISION;
}

//  The compares of one operation ("" when it has none).
static void
s_compares (etcd_buf_t *body, const zube_store_op_t *op, bool *first)
{
    const char *tests[2] = {NULL, NULL};
    int64_t values[2] = {0, 0};
    if (op->type == ZUBE_STORE_PUT && op->expect_revision != ZUBE_STORE_ANY_REVISION)
        tests[0] = "EQUAL", values[0] = op->expect_revision;
    else if (op->type == ZUBE_STORE_DELETE &&
             op->expect_revision == ZUBE_STORE_ANY_REVISION)
        tests[0] = "GREATER";
    else if (op->type == ZUBE_STORE_DELETE && op->expect_revision > 0)
        tests[0] = "EQUAL", values[0] = op->expect_revision;
    else if (op->type == ZUBE_STORE_DELETE)
        //  Delete what must not exist: never written (NOT_FOUND or CONFLICT).
        tests[0] = "EQUAL", tests[1] = "GREATER";
    for (int i = 0; i < 2 && tests[i]; i++) {
        etcd_buf_append (body, *first ? "{" : ",{", *first ? 1 : 2);
        *first = false;
        s_json_bytes (body, "key", op->key, strlen (op->key));
        etcd_buf_printf (
            body,
            ",\"target\":\"MOD\",\"result\":\"%s\",\"mod_revision\":\"%" PRId64 "\"}",
            tests[i], values[i]);
    }
}

//  A read of each key of ops[first..end) (keys only: mod revisions).
static void
s_key_reads (etcd_buf_t *body, const zube_store_op_t *ops, size_t first, size_t end)
{
    bool any = false;
    for (size_t i = first; i < end; i++) {
        if (!s_key_valid (ops[i].key))
            continue;
        etcd_buf_append (body, any ? ",{\"request_range\":{" : "{\"request_range\":{",
                         any ? 19 : 18);
        s_json_bytes (body, "key", ops[i].key, strlen (ops[i].key));
        etcd_buf_append (body, ",\"keys_only\":true}}", 19);
        any = true;
    }
}

//  The txn of a group: compares, writes on success, reads on failure. A
//  group found invalid only reads its keys' revisions.
static void
s_group_body (etcd_buf_t *body, const zube_store_op_t *ops, const s_group_t *group)
{
    if (group->verdict != ZUBE_OK) {
        etcd_buf_append (body, "{\"success\":[", 12);
        s_key_reads (body, ops, group->first, group->end);
        etcd_buf_append (body, "]}", 2);
        return;
    }
    etcd_buf_append (body, "{\"compare\":[", 12);
    bool first = true;
    for (size_t i = group->first; i < group->end; i++)
        s_compares (body, &ops[i], &first);
    etcd_buf_append (body, "],\"success\":[", 13);
    for (size_t i = group->first; i < group->end; i++) {
        const zube_store_op_t *op = &ops[i];
        etcd_buf_append (body, i > group->first ? "," : "", i > group->first);
        if (op->type == ZUBE_STORE_PUT) {
            etcd_buf_append (body, "{\"request_put\":{", 16);
            s_json_bytes (body, "key", op->key, strlen (op->key));
            etcd_buf_append (body, ",", 1);
            s_json_bytes (body, "value", op->value_size ? op->value : "", op->value_size);
            etcd_buf_append (body, "}}", 2);
        } else {
            etcd_buf_append (body, "{\"request_delete_range\":{", 25);
            s_json_bytes (body, "key", op->key, strlen (op->key));
            etcd_buf_append (body, "}}", 2);
        }
    }
    etcd_buf_append (body, "]", 1);
    if (!first) {
        etcd_buf_append (body, ",\"failure\":[", 12);
        s_key_reads (body, ops, group->first, group->end);
        etcd_buf_append (body, "]", 1);
    }
    etcd_buf_append (body, "}", 1);
}

//  The mod revision a read of a txn answered (0: no such key).
static int64_t
s_read_revision (const zube_json_t *response)
{
    const zube_json_t *kvs = etcd_json_get (response, "response_range.kvs");
    return etcd_json_count (kvs) == 0
               ? 0
               : etcd_json_int (etcd_json_get (kvs->items[0], "mod_revision"), 0);
}

//  Fills the results of a group from its txn's answer.
static void
s_group_outcome (zube_store_backend_t *self, const zube_store_op_t *ops,
                 zube_store_result_t *results, s_group_t *group)
{
    etcd_json_t json = {0};
    zube_status_t status = s_answer (self, &group->request, &json);
    group->done = true;
    if (status == ZUBE_OK && group->verdict == ZUBE_OK &&
        etcd_json_bool (etcd_json_get (json.root, "succeeded"))) {
        int64_t revision =
            etcd_json_int (etcd_json_get (json.root, "header.revision"), 0);
        for (size_t i = group->first; i < group->end; i++)
            results[i] = (zube_store_result_t){.status = ZUBE_OK, .revision = revision};
        group->written = true;
    } else if (status == ZUBE_OK) {
        //  Lost a compare (or only read, when invalid): which one, and the
        //  keys' revisions, from the reads, in the order of the ops.
        const zube_json_t *responses = etcd_json_get (json.root, "responses");
        size_t response = 0;
        zube_status_t verdict = group->verdict;
        for (size_t i = group->first; i < group->end; i++) {
            int64_t revision = 0;
            if (s_key_valid (ops[i].key) && response < etcd_json_count (responses))
                revision = s_read_revision (responses->items[response++]);
            results[i].revision = revision;
            if (verdict != ZUBE_OK)
                continue;
            if (ops[i].expect_revision != ZUBE_STORE_ANY_REVISION &&
                ops[i].expect_revision != revision)
                verdict = ZUBE_CONFLICT;
            else if (ops[i].type == ZUBE_STORE_DELETE && revision == 0)
                verdict = ZUBE_NOT_FOUND;
        }
        //  A compare failed that the reads do not show: cannot happen in
        //  one etcd txn, but a loser is a loser.
        if (verdict == ZUBE_OK)
            verdict = ZUBE_CONFLICT;
        for (size_t i = group->first; i < group->end; i++)
            results[i].status = verdict;
    } else if (status == ZUBE_BAD_REQUEST || status == ZUBE_PAYLOAD_TOO_LARGE) {
        //  etcd refused the txn as it stands (too many operations, too
        //  large): nothing was written.
        for (size_t i = group->first; i < group->end; i++)
            results[i] = (zube_store_result_t){.status = status};
    } else {
        group->unsent = group->request.state == ETCD_REQUEST_UNSENT;
        group->unknown = !group->unsent && group->verdict == ZUBE_OK;
        for (size_t i = group->first; i < group->end; i++)
            results[i] = (zube_store_result_t){.status = ZUBE_UNAVAILABLE};
    }
    etcd_json_free (&json);
    etcd_client_release (self->client, &group->request);
}

static uint64_t
s_hash (const char *text)
{
    uint64_t hash = 14695981039346656037ULL;
    for (; *text; text++)
        hash = (hash ^ (unsigned char)*text) * 1099511628211ULL;
    return hash;
}

//  True when no unfinished group before `at` writes a key `at` writes.
static bool
s_independent (const s_group_t *groups, size_t at, const zube_store_op_t *ops,
               const uint64_t *hashes)
{
    for (size_t g = 0; g < at; g++) {
        if (groups[g].done)
            continue;
        for (size_t i = groups[g].first; i < groups[g].end; i++)
            for (size_t j = groups[at].first; j < groups[at].end; j++)
                if (hashes[i] == hashes[j] && s_key_valid (ops[i].key) &&
                    s_key_valid (ops[j].key) && strcmp (ops[i].key, ops[j].key) == 0)
                    return false;
    }
    return true;
}

//  Splits ops into groups and checks each: an invalid operation or a key
//  written twice makes its group BAD_REQUEST. The number of groups.
static size_t
s_groups (zube_store_backend_t *self, const zube_store_op_t *ops, size_t count,
          s_group_t *groups, uint64_t *hashes)
{
    size_t group_count = 0;
    for (size_t i = 0; i < count; i++)
        hashes[i] = s_key_valid (ops[i].key) ? s_hash (ops[i].key) : 0;
    for (size_t first = 0; first < count;) {
        size_t end = first + 1;
        if (ops[first].group)
            while (end < count && ops[end].group == ops[first].group)
                end++;
        s_group_t *group = &groups[group_count++];
        *group = (s_group_t){.first = first, .end = end, .verdict = ZUBE_OK};
        for (size_t i = first; i < end && group->verdict == ZUBE_OK; i++) {
            if (!s_op_valid (&ops[i])) {
                s_fail (self, ZUBE_BAD_REQUEST,
                        "etcd: invalid operation on \"%.64s\" (empty or too long key, "
                        "unknown "
                        "type, or missing value)",
                        ops[i].key ? ops[i].key : "(null)");
                group->verdict = ZUBE_BAD_REQUEST;
            }
            for (size_t j = first; j < i && group->verdict == ZUBE_OK; j++)
                if (hashes[i] == hashes[j] && strcmp (ops[i].key, ops[j].key) == 0) {
                    s_fail (self, ZUBE_BAD_REQUEST,
                            "etcd: a group writes \"%.64s\" twice (one etcd txn cannot)",
                            ops[i].key);
                    group->verdict = ZUBE_BAD_REQUEST;
                }
        }
        first = end;
    }
    return group_count;
}

static zube_status_t
s_txn_commit (zube_store_backend_t *self, const zube_store_op_t *ops, size_t count,
              zube_store_result_t *results)
{
    if (count == 0)
        return ZUBE_OK;
    if (!ops || !results)
        return s_fail (self, ZUBE_BAD_REQUEST, "etcd: txn_commit without ops or results");
    s_group_t *groups = calloc (count, sizeof *groups);
    uint64_t *hashes = calloc (count, sizeof *hashes);
    if (!groups || !hashes) {
        free (groups);
        free (hashes);
        return s_fail (self, ZUBE_INTERNAL, "etcd: out of memory");
    }
    size_t group_count = s_groups (self, ops, count, groups, hashes);
    for (size_t i = 0; i < count; i++)
        results[i] = (zube_store_result_t){.status = ZUBE_UNAVAILABLE};
    char failure[sizeof self->error] = "";
    bool halted = false;
    size_t first_open = 0;
    while (true) {
        //  Start what may start: in batch order, and with a pipeline only
        //  groups that share no key with an unfinished earlier one.
        for (size_t g = first_open; g < group_count && !halted; g++) {
            if (etcd_client_in_flight (self->client) >= self->pipeline)
                break;
            s_group_t *group = &groups[g];
            if (group->started)
                continue;
            if (self->pipeline > 1 && !s_independent (groups, g, ops, hashes))
                continue;
            group->started = true;
            bool reads = false;
            for (size_t i = group->first; i < group->end; i++)
                reads |= s_key_valid (ops[i].key);
            if (group->verdict != ZUBE_OK && !reads) {
                for (size_t i = group->first; i < group->end; i++)
                    results[i] = (zube_store_result_t){.status = group->verdict};
                group->done = true;
                continue;
            }
            group->request = (etcd_request_t){.path = "/v3/kv/txn", .tag = g};
            s_group_body (&group->request.body, ops, group);
            etcd_client_start (self->client, &group->request);
            if (group->request.state != ETCD_REQUEST_PENDING) {
                s_group_outcome (self, ops, results, group);
                snprintf (failure, sizeof failure, "%s", self->error);
                halted = true;
            }
        }
        while (first_open < group_count && groups[first_open].done)
            first_open++;
        etcd_request_t *request = etcd_client_wait (self->client);
        if (!request)
            break;
        s_group_t *group = &groups[request->tag];
        s_group_outcome (self, ops, results, group);
        if ((group->unsent || group->unknown) && !halted) {
            halted = true;
            snprintf (failure, sizeof failure, "%s", self->error);
        }
    }
    //  Groups never started (etcd failed before their turn) stay
    //  UNAVAILABLE, unwritten.
    size_t written = 0, txns = 0;
    bool unknown = false;
    for (size_t g = 0; g < group_count; g++) {
        if (groups[g].written)
            written += groups[g].end - groups[g].first;
        txns += groups[g].started;
        unknown |= groups[g].unknown;
    }
    free (groups);
    free (hashes);
    self->host->counter_add (self->host, "store_txn_total", 1);
    self->host->counter_add (self->host, "store_etcd_txns_total", txns);
    self->host->counter_add (self->host, "store_writes_total", written);
    if (written < count)
        self->host->counter_add (self->host, "store_failed_ops_total", count - written);
    if (halted) {
        snprintf (
            self->error, sizeof self->error, "%s%s", failure,
            unknown ? " (a write was sent and its answer lost: it may have been applied)"
                    : "");
        if (written == 0) {
            for (size_t i = 0; i < count; i++)
                results[i] = (zube_store_result_t){.status = ZUBE_UNAVAILABLE};
            return ZUBE_UNAVAILABLE;
        }
    }
    return ZUBE_OK;
}

static zube_status_t
s_compact (zube_store_backend_t *self, int64_t revision)
{
    if (revision <= 0 || revision <= self->compacted)
        return ZUBE_OK;
    etcd_request_t request = {.path = "/v3/kv/compaction", .idempotent = true};
    //  physical: answer once the compaction is done, so that what follows
    //  sees it.
    request.timeout_ms = self->timeout_ms * 6;
    etcd_buf_printf (&request.body, "{\"revision\":\"%" PRId64 "\",\"physical\":true}",
                     revision);
    etcd_json_t json = {0};
    zube_status_t status = s_call (self, &request, &json);
    if (status == ZUBE_OK) {
        self->compacted = revision;
        self->host->counter_add (self->host, "store_compactions_total", 1);
    } else if (status == ZUBE_GONE)
        status = ZUBE_OK; //  compacted at or past it already
    else if (status == ZUBE_BAD_REQUEST)
        s_fail (self, ZUBE_BAD_REQUEST,
                "etcd: compact to %" PRId64 ": beyond the current revision", revision);
    etcd_json_free (&json);
    etcd_client_release (self->client, &request);
    return status;
}

//  ---------------------------------------------------------------------
//  Snapshot and restore: a portable dump of the keys under /registry/
//
//      "ZUBEETCD"  format (u32, 1)  reserved (u32, 0)
//      per key, in key order:
//          key size (u32, >0)  value size (u32)  mod revision (u64)  key  value
//      end: 0 (u32)  0 (u32)  count (u64)  revision (u64)
//      FNV-1a 64 of every byte before it (u64)
//
//  Integers big-endian. The revision is the one the dump was read at.

typedef struct {
    int fd;
    etcd_buf_t out;
    uint64_t hash;
    uint64_t count;
    int error;
} s_dump_t;

static void
s_put_u32 (unsigned char *to, uint32_t value)
{
    for (int i = 3; i >= 0; i--, value >>= 8)
        to[i] = (unsigned char)(value & 0xff);
}

static void
s_put_u64 (unsigned char *to, uint64_t value)
{
    for (int i = 7; i >= 0; i--, value >>= 8)
        to[i] = (unsigned char)(value & 0xff);
}

static uint32_t
s_get_u32 (const unsigned char *from)
{
    return ((uint32_t)from[0] << 24) | ((uint32_t)from[1] << 16) |
           ((uint32_t)from[2] << 8) | from[3];
}

static uint64_t
s_get_u64 (const unsigned char *from)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | from[i];
    return value;
}

static uint64_t
s_fnv (uint64_t hash, const void *data, size_t size)
{
    const unsigned char *bytes = data;
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ bytes[i]) * 1099511628211ULL;
    return hash;
}

static void
s_dump_flush (s_dump_t *dump)
{
    for (size_t done = 0; done < dump->out.size && !dump->error;) {
        ssize_t put = write (dump->fd, dump->out.data + done, dump->out.size - done);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            dump->error = errno;
        else
            done += (size_t)put;
    }
    etcd_buf_reset (&dump->out);
}

static void
s_dump_write (s_dump_t *dump, const void *data, size_t size, bool hashed)
{
    if (hashed)
        dump->hash = s_fnv (dump->hash, data, size);
    etcd_buf_append (&dump->out, data, size);
    if (dump->out.failed)
        dump->error = ENOMEM;
    else if (dump->out.size >= 65536)
        s_dump_flush (dump);
}

static int
s_dump_kv (void *arg, const zube_store_kv_t *kv)
{
    s_dump_t *dump = arg;
    unsigned char header[16];
    s_put_u32 (header, (uint32_t)kv->key_size);
    s_put_u32 (header + 4, (uint32_t)kv->value_size);
    s_put_u64 (header + 8, (uint64_t)kv->mod_revision);
    s_dump_write (dump, header, sizeof header, true);
    s_dump_write (dump, kv->key, kv->key_size, true);
    s_dump_write (dump, kv->value, kv->value_size, true);
    dump->count++;
    return dump->error != 0;
}

static zube_status_t
s_snapshot (zube_store_backend_t *self, int fd)
{
    s_dump_t dump = {.fd = fd, .hash = 14695981039346656037ULL};
    unsigned char header[16];
    memcpy (header, S_SNAPSHOT_MAGIC, 8);
    s_put_u32 (header + 8, S_SNAPSHOT_FORMAT);
    s_put_u32 (header + 12, 0);
    s_dump_write (&dump, header, sizeof header, true);
    zube_store_range_t range = {.prefix = S_SNAPSHOT_PREFIX};
    zube_store_range_result_t result;
    zube_status_t status = s_range (self, &range, s_dump_kv, &dump, &result);
    if (status == ZUBE_OK && !dump.error) {
        unsigned char end[24];
        s_put_u32 (end, 0);
        s_put_u32 (end + 4, 0);
        s_put_u64 (end + 8, dump.count);
        s_put_u64 (end + 16, (uint64_t)result.revision);
        s_dump_write (&dump, end, sizeof end, true);
        unsigned char hash[8];
        s_put_u64 (hash, dump.hash);
        s_dump_write (&dump, hash, sizeof hash, false);
        s_dump_flush (&dump);
    }
    etcd_buf_free (&dump.out);
    if (status == ZUBE_OK && dump.error)
        status = s_fail (self, ZUBE_UNAVAILABLE, "etcd: snapshot: writing: %s",
                         strerror (dump.error));
    if (status == ZUBE_OK)
        self->host->log (self->host, ZUBE_LOG_INFO,
                         "msg=\"snapshot written\" keys=%" PRIu64 " revision=%" PRId64,
                         dump.count, result.revision);
    return status;
}

//  One key of a dump or of the store, pointing into someone's memory.
typedef struct {
    const char *key;
    size_t key_size;
    const char *value;
    size_t value_size;
} s_entry_t;

typedef struct {
    s_entry_t *items;
    size_t count;
    size_t capacity;
    //  The store's copy owns its bytes.
    bool owned;
} s_entries_t;

static void
s_entries_free (s_entries_t *entries)
{
    if (entries->owned)
        for (size_t i = 0; i < entries->count; i++) {
            free ((char *)entries->items[i].key);
            free ((char *)entries->items[i].value);
        }
    free (entries->items);
    *entries = (s_entries_t){0};
}

static int
s_entries_add (s_entries_t *entries, s_entry_t entry)
{
    if (entries->count == entries->capacity) {
        s_entry_t *items =
            s_grow_array (entries->items, &entries->capacity, sizeof *items);
        if (!items)
            return -1;
        entries->items = items;
    }
    entries->items[entries->count++] = entry;
    return 0;
}

//  Reads fd to its end into buffer; 0 or an errno.
static int
s_read_all (int fd, etcd_buf_t *buffer)
{
    char chunk[65536];
    while (true) {
        ssize_t got = read (fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return errno;
        if (got == 0)
            return 0;
        if (buffer->size + (size_t)got > S_SNAPSHOT_MAX)
            return EFBIG;
        etcd_buf_append (buffer, chunk, (size_t)got);
        if (buffer->failed)
            return ENOMEM;
    }
}

//  Checks a whole dump and lists its keys; NULL, or why it is refused.
static const char *
s_dump_check (const etcd_buf_t *buffer, s_entries_t *entries)
{
    const unsigned char *bytes = (const unsigned char *)buffer->data;
    size_t size = buffer->size;
    if (size < 16 + 24 + 8 || memcmp (bytes, S_SNAPSHOT_MAGIC, 8) != 0)
        return "not a zube etcd snapshot";
    if (s_get_u32 (bytes + 8) != S_SNAPSHOT_FORMAT)
        return "a snapshot of another format version";
    if (s_fnv (14695981039346656037ULL, bytes, size - 8) != s_get_u64 (bytes + size - 8))
        return "checksum mismatch (truncated or corrupt)";
    size_t prefix_len = strlen (S_SNAPSHOT_PREFIX);
    size_t at = 16;
    while (true) {
        if (size - 8 - at < 8)
            return "truncated";
        uint32_t key_size = s_get_u32 (bytes + at),
                 value_size = s_get_u32 (bytes + at + 4);
        if (key_size == 0) {
            if (value_size != 0 || size - 8 - at != 24)
                return "bad end record";
            if (s_get_u64 (bytes + at + 8) != entries->count)
                return "key count mismatch";
            return NULL;
        }
        if (size - 8 - at < 16 || size - 8 - at - 16 < (uint64_t)key_size + value_size)
            return "truncated record";
        s_entry_t entry = {.key = (const char *)bytes + at + 16,
                           .key_size = key_size,
                           .value = (const char *)bytes + at + 16 + key_size,
                           .value_size = value_size};
        if (key_size > S_MAX_KEY || key_size < prefix_len ||
            memcmp (entry.key, S_SNAPSHOT_PREFIX, prefix_len) != 0 ||
            memchr (entry.key, 0, key_size))
            return "a key outside " S_SNAPSHOT_PREFIX " or invalid";
        if (entries->count) {
            const s_entry_t *last = &entries->items[entries->count - 1];
            if (s_bytes_compare (last->key, last->key_size, entry.key, key_size) >= 0)
                return "keys out of order";
        }
        if (s_entries_add (entries, entry) != 0)
            return "out of memory";
        at += 16 + (size_t)key_size + value_size;
    }
}

static int
s_copy_kv (void *arg, const zube_store_kv_t *kv)
{
    s_entries_t *entries = arg;
    s_entry_t entry = {.key = strndup (kv->key, kv->key_size),
                       .key_size = kv->key_size,
                       .value = malloc (kv->value_size + 1),
                       .value_size = kv->value_size};
    if (!entry.key || !entry.value || s_entries_add (entries, entry) != 0) {
        free ((char *)entry.key);
        free ((char *)entry.value);
        return 1;
    }
    memcpy ((char *)entry.value, kv->value, kv->value_size);
    return 0;
}

//  Writes one chunk of restore changes as one txn, without compares.
static zube_status_t
s_restore_chunk (zube_store_backend_t *self, const zube_store_op_t *ops, size_t count)
{
    etcd_request_t request = {.path = "/v3/kv/txn"};
    s_group_t group = {.first = 0, .end = count, .verdict = ZUBE_OK};
    s_group_body (&request.body, ops, &group);
    etcd_json_t json = {0};
    zube_status_t status = s_call (self, &request, &json);
    etcd_json_free (&json);
    etcd_client_release (self->client, &request);
    return status;
}

static zube_status_t
s_restore (zube_store_backend_t *self, int fd)
{
    etcd_buf_t buffer = {0};
    s_entries_t dump = {0}, store = {.owned = true};
    zube_store_op_t *ops = NULL;
    char **keys = NULL;
    size_t key_count = 0;
    zube_status_t status = ZUBE_OK;
    int rc = s_read_all (fd, &buffer);
    if (rc != 0) {
        status = s_fail (self, rc == EFBIG ? ZUBE_PAYLOAD_TOO_LARGE : ZUBE_UNAVAILABLE,
                         "etcd: restore: reading the snapshot: %s", strerror (rc));
        goto done;
    }
    const char *refused = s_dump_check (&buffer, &dump);
    if (refused) {
        status = s_fail (self, ZUBE_BAD_REQUEST, "etcd: restore: %s", refused);
        goto done;
    }
    //  The store's keys now, to write only the difference.
    zube_store_range_t range = {.prefix = S_SNAPSHOT_PREFIX};
    zube_store_range_result_t result;
    if ((status = s_range (self, &range, s_copy_kv, &store, &result)) != ZUBE_OK)
        goto done;
    if (result.more) {
        status = s_fail (self, ZUBE_INTERNAL, "etcd: restore: out of memory");
        goto done;
    }
    //  Merge the two sorted lists. Dump keys point into the buffer, not
    //  NUL-terminated: copy them for the ops.
    ops = calloc (dump.count + store.count + 1, sizeof *ops);
    keys = calloc (dump.count + 1, sizeof *keys);
    if (!ops || !keys) {
        status = s_fail (self, ZUBE_INTERNAL, "etcd: restore: out of memory");
        goto done;
    }
    size_t count = 0, d = 0, s = 0;
    while (d < dump.count || s < store.count) {
        int order = d == dump.count ? 1
                    : s == store.count
                        ? -1
                        : s_bytes_compare (dump.items[d].key, dump.items[d].key_size,
                                           store.items[s].key, store.items[s].key_size);
        if (order > 0) {
            ops[count++] = (zube_store_op_t){.type = ZUBE_STORE_DELETE,
                                             .key = store.items[s].key,
                                             .expect_revision = ZUBE_STORE_ANY_REVISION};
            s++;
            continue;
        }
        const s_entry_t *entry = &dump.items[d];
        bool same = order == 0 && entry->value_size == store.items[s].value_size &&
                    memcmp (entry->value, store.items[s].value, entry->value_size) == 0;
        if (!same) {
            char *key = strndup (entry->key, entry->key_size);
            if (!key) {
                status = s_fail (self, ZUBE_INTERNAL, "etcd: restore: out of memory");
                break;
            }
            keys[key_count++] = key;
            ops[count++] = (zube_store_op_t){.type = ZUBE_STORE_PUT,
                                             .key = key,
                                             .value = entry->value,
                                             .value_size = entry->value_size,
                                             .expect_revision = ZUBE_STORE_ANY_REVISION};
        }
        d++;
        if (order == 0)
            s++;
    }
    //  Chunks of at most S_RESTORE_TXN_OPS operations and about
    //  S_RESTORE_TXN_BYTES of JSON.
    size_t applied = 0;
    while (status == ZUBE_OK && applied < count) {
        size_t end = applied, bytes = 0;
        while (end < count && end - applied < S_RESTORE_TXN_OPS) {
            size_t op_bytes = (strlen (ops[end].key) + ops[end].value_size) * 4 / 3 + 64;
            if (end > applied && bytes + op_bytes > S_RESTORE_TXN_BYTES)
                break;
            bytes += op_bytes;
            end++;
        }
        status = s_restore_chunk (self, ops + applied, end - applied);
        if (status == ZUBE_OK)
            applied = end;
    }
    if (status != ZUBE_OK && applied)
        snprintf (
            self->error + strlen (self->error), sizeof self->error - strlen (self->error),
            " (restore stopped after %zu of %zu changes: run it again)", applied, count);
    else if (status == ZUBE_OK)
        self->host->log (self->host, ZUBE_LOG_INFO,
                         "msg=\"store restored\" keys=%zu changes=%zu", dump.count,
                         count);
done:
    for (size_t i = 0; i < key_count; i++)
        free (keys[i]);
    free (keys);
    free (ops);
    s_entries_free (&dump);
    s_entries_free (&store);
    etcd_buf_free (&buffer);
    return status;
}

//  ---------------------------------------------------------------------

static zube_plugin_rc_t
s_init (const zube_host_t *host, char *error, size_t error_size)
{
    if (!ZUBE_HOST_HAS (host, monotonic_ns)) {
        snprintf (error, error_size, "host table version %u is too old (need %d)",
                  host->version, ZUBE_HOST_VERSION);
        return ZUBE_PLUGIN_ERROR;
    }
    //  Reference counted by libcurl; undone in s_fini.
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf (error, error_size, "curl_global_init failed");
        return ZUBE_PLUGIN_ERROR;
    }
    return ZUBE_PLUGIN_OK;
}

static void
s_fini (const zube_host_t *host)
{
    curl_global_cleanup ();
}

static const zube_store_ops_t s_ops = {
    .struct_size = sizeof (zube_store_ops_t),
    .open = s_open,
    .close = s_close,
    .errmsg = s_errmsg,
    .get = s_get,
    .range = s_range,
    .txn_commit = s_txn_commit,
    .revision = s_revision,
    .events = s_events,
    .compact = s_compact,
    .snapshot = s_snapshot,
    .restore = s_restore,
};

ZUBE_PLUGIN_DEFINE (
        .name = "etcd", .version = ZUBE_VERSION_STRING, .kind = ZUBE_PLUGIN_STORE,
        .description = "etcd v3 through its JSON gateway (etcd://HOST:PORT[,...])",
        .ops = &s_ops, .init = s_init, .fini = s_fini)
