/*  apiserver - the bus service "api": dispatch by method, Kubernetes'
    errors, and the helpers every verb shares.

    The bus thread runs everything but the commits: zube_bus_poll hands
    requests to the handler, which answers reads at once and prepares and
    queues writes; when the commit thread is idle, the writer hands it
    what was gathered as one store transaction and goes on gathering.
    Once that commit is done, the follower reads the new events back (and
    publishes them when this instance holds the publisher lease) and only
    then is each write of the batch answered (writer.c). */
#include "apiserver_private.h"
#include "zube/log.h"
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char *s_verb_names[API_VERB_COUNT] = {
    [API_VERB_CREATE] = "create",   [API_VERB_GET] = "get",
    [API_VERB_LIST] = "list",       [API_VERB_UPDATE] = "update",
    [API_VERB_PATCH] = "patch",     [API_VERB_DELETE] = "delete",
    [API_VERB_WATCH] = "watch",     [API_VERB_BACKUP] = "backup",
    [API_VERB_RESTORE] = "restore", [API_VERB_STATS] = "stats",
};

//  ---------------------------------------------------------------------
//  Kinds

static int
s_field_offset (const ProtobufCMessageDescriptor *descriptor, const char *name,
                uint32_t *id_p)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (descriptor, name);
    if (!field || field->type != PROTOBUF_C_TYPE_MESSAGE ||
        field->label == PROTOBUF_C_LABEL_REPEATED)
        return -1;
    if (id_p)
        *id_p = field->id;
    return (int)field->offset;
}

static int
s_kinds_load (zube_apiserver_t *self)
{
    self->kind_count = zube_kinds_count ();
    self->kinds = calloc (self->kind_count, sizeof (api_kind_t));
    if (!self->kinds)
        return -1;
    for (size_t i = 0; i < self->kind_count; i++) {
        api_kind_t *info = &self->kinds[i];
        info->kind = zube_kind_at (i);
        info->resource_size = strlen (info->kind->resource);
        info->metadata_offset =
            s_field_offset (info->kind->descriptor, "metadata", &info->metadata_id);
        info->spec_offset = s_field_offset (info->kind->descriptor, "spec", NULL);
        info->status_offset = s_field_offset (info->kind->descriptor, "status", NULL);
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name (info->kind->descriptor,
                                                             "api_version");
        info->api_version_offset =
            field && field->type == PROTOBUF_C_TYPE_STRING ? (int)field->offset : -1;
        field = protobuf_c_message_descriptor_get_field_by_name (info->kind->descriptor,
                                                                 "kind");
        info->kind_offset =
            field && field->type == PROTOBUF_C_TYPE_STRING ? (int)field->offset : -1;
        if (*info->kind->group)
            snprintf (info->qualified, sizeof info->qualified, "%s.%s",
                      info->kind->resource, info->kind->group);
        else
            snprintf (info->qualified, sizeof info->qualified, "%s",
                      info->kind->resource);
        info->is_pod = streq (info->kind->resource, "pods") && !*info->kind->group;
        info->is_namespace = streq (info->kind->resource, "namespaces");
        info->scalable = info->spec_offset >= 0 && info->status_offset >= 0 &&
                         api_scale_supported (info);
    }
    return 0;
}

const api_kind_t *
api_kind_by_resource (zube_apiserver_t *self, const char *resource)
{
    if (!resource || !*resource)
        return NULL;
    //  The plural is what clients send nearly always: no table walk
    for (size_t i = 0; i < self->kind_count; i++)
        if (streq (self->kinds[i].kind->resource, resource))
            return self->kinds[i].metadata_offset >= 0 ? &self->kinds[i] : NULL;
    const zube_kind_t *kind = zube_kind_by_resource (resource);
    for (size_t i = 0; kind && i < self->kind_count; i++)
        if (self->kinds[i].kind == kind)
            return self->kinds[i].metadata_offset >= 0 ? &self->kinds[i] : NULL;
    return NULL;
}

const api_kind_t *
api_kind_by_key (zube_apiserver_t *self, const char *key, size_t key_size)
{
    if (key_size < 11 || memcmp (key, "/registry/", 10) != 0)
        return NULL;
    const char *resource = key + 10;
    const char *slash = memchr (resource, '/', key_size - 10);
    if (!slash)
        return NULL;
    size_t size = (size_t)(slash - resource);
    for (size_t i = 0; i < self->kind_count; i++)
        if (self->kinds[i].resource_size == size &&
            memcmp (self->kinds[i].kind->resource, resource, size) == 0 &&
            self->kinds[i].metadata_offset >= 0)
            return &self->kinds[i];
    return NULL;
}

ProtobufCMessage **
api_field (const ProtobufCMessage *object, int offset)
{
    return offset < 0 ? NULL : (ProtobufCMessage **)((char *)object + offset);
}

Zube__ObjectMeta *
api_meta (const api_kind_t *kind, const ProtobufCMessage *object)
{
    return *(Zube__ObjectMeta **)api_field (object, kind->metadata_offset);
}

Zube__ObjectMeta *
api_meta_ensure (const api_kind_t *kind, ProtobufCMessage *object)
{
    Zube__ObjectMeta **meta =
        (Zube__ObjectMeta **)api_field (object, kind->metadata_offset);
    if (!*meta) {
        *meta = malloc (sizeof (Zube__ObjectMeta));
        if (!*meta)
            return NULL;
        zube__object_meta__init (*meta);
    }
    return *meta;
}

void
api_set_string (char **field, const char *value)
{
    free (*field);
    *field = value ? strdup (value) : NULL;
}

int64_t
api_parse_rv (const char *text)
{
    if (!text || !*text)
        return 0;
    char *end = NULL;
    errno = 0;
    long long value = strtoll (text, &end, 10);
    if (errno || *end || value < 0)
        return -1;
    return value;
}

int
api_key (const api_kind_t *kind, const char *ns, const char *name, char *buf, size_t size)
{
    int length;
    if (kind->kind->namespaced)
        length = snprintf (buf, size, "/registry/%s/%s/%s", kind->kind->resource,
                           ns ? ns : "", name ? name : "");
    else
        length = snprintf (buf, size, "/registry/%s/%s", kind->kind->resource,
                           name ? name : "");
    return length < 0 || (size_t)length >= size ? -1 : length;
}

uint8_t *
api_scratch (uint8_t **buffer, size_t *capacity, size_t size)
{
    if (size > *capacity) {
        size_t grown = *capacity ? *capacity : 4096;
        while (grown < size)
            grown *= 2;
        uint8_t *fresh = realloc (*buffer, grown);
        if (!fresh)
            return NULL;
        *buffer = fresh;
        *capacity = grown;
    }
    return *buffer;
}

static size_t
s_varint (uint8_t *out, uint64_t value)
{
    size_t size = 0;
    while (value >= 0x80) {
        out[size++] = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    out[size++] = (uint8_t)value;
    return size;
}

size_t
api_format_rv (char *buf, int64_t rv)
{
    char digits[24];
    size_t n = 0;
    uint64_t value = rv < 0 ? 0 : (uint64_t)rv;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    for (size_t i = 0; i < n; i++)
        buf[i] = digits[n - 1 - i];
    buf[n] = 0;
    return n;
}

size_t
api_with_rv (const api_kind_t *kind, const void *value, size_t size, int64_t rv,
             uint8_t *out)
{
    if (size)
        memcpy (out, value, size);
    char digits[24];
    int length = (int)api_format_rv (digits, rv);
    //  metadata { resource_version (5): digits }
    uint8_t inner[32];
    size_t inner_size = 0;
    inner[inner_size++] = (5 << 3) | 2;
    inner[inner_size++] = (uint8_t)length;
    memcpy (inner + inner_size, digits, (size_t)length);
    inner_size += (size_t)length;
    uint8_t *at = out + size;
    at += s_varint (at, ((uint64_t)kind->metadata_id << 3) | 2);
    at += s_varint (at, inner_size);
    memcpy (at, inner, inner_size);
    at += inner_size;
    return (size_t)(at - out);
}

void
api_reply_object (zube_apiserver_t *self, zube_bus_request_t *request,
                  const api_kind_t *kind, const void *value, size_t size, int64_t rv)
{
    //  A request on the scale subresource is answered with the Scale
    if (kind->scalable && api_scale_wanted (request)) {
        api_scale_reply (self, request, kind, value, size, rv);
        return;
    }
    uint8_t *object =
        api_scratch (&self->scratch, &self->scratch_size, size + API_RV_SUFFIX_MAX);
    if (!object) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        return;
    }
    size_t object_size = api_with_rv (kind, value, size, rv, object);
    api_reply_packed (self, request, kind->kind->kind, kind->kind->api_version, object,
                      object_size, rv);
}

void
api_reply_packed (zube_apiserver_t *self, zube_bus_request_t *request,
                  const char *kind_name, const char *api_version, const uint8_t *object,
                  size_t object_size, int64_t rv)
{
    char rv_text[24];
    api_format_rv (rv_text, rv);
    Zube__ObjectReply reply = ZUBE__OBJECT_REPLY__INIT;
    reply.has_object = true;
    reply.object.data = (uint8_t *)object;
    reply.object.len = object_size;
    reply.kind = (char *)kind_name;
    reply.api_version = (char *)api_version;
    reply.resource_version = rv_text;
    size_t packed_size = zube__object_reply__get_packed_size (&reply);
    uint8_t *packed = api_scratch (&self->scratch2, &self->scratch2_size, packed_size);
    if (!packed) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        return;
    }
    zube__object_reply__pack (&reply, packed);
    zube_bus_respond (request, ZUBE_OK, NULL, packed, packed_size);
}

//  ---------------------------------------------------------------------
//  Errors, as Kubernetes' Status

void
api_reply_error (zube_apiserver_t *self, zube_bus_request_t *request,
                 zube_status_t status, const api_kind_t *kind, const char *name,
                 const zube_field_errors_t *causes, const char *format, ...)
{
    char message[4096];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    self->errors++;

    Zube__StatusDetails details = ZUBE__STATUS_DETAILS__INIT;
    details.name = (char *)name;
    if (kind) {
        details.group = (char *)kind->kind->group;
        //  Kubernetes names the kind in Invalid's details, the resource
        //  everywhere else
        details.kind =
            (char *)(status == ZUBE_INVALID ? kind->kind->kind : kind->kind->resource);
    }
    size_t cause_count = 0;
    Zube__StatusCause cause_storage[ZUBE_FIELD_ERRORS_MAX];
    Zube__StatusCause *cause_list[ZUBE_FIELD_ERRORS_MAX];
    if (causes) {
        size_t count =
            causes->count < ZUBE_FIELD_ERRORS_MAX ? causes->count : ZUBE_FIELD_ERRORS_MAX;
        for (size_t i = 0; i < count; i++) {
            zube__status_cause__init (&cause_storage[i]);
            cause_storage[i].reason = (char *)causes->errors[i].type;
            cause_storage[i].field = (char *)causes->errors[i].field;
            //  Kubernetes' StatusCause.message is the cause without its
            //  field ("Invalid value: ..."); the field is beside it.
            const char *text = causes->errors[i].message;
            size_t field_length = strlen (causes->errors[i].field);
            if (field_length && strncmp (text, causes->errors[i].field, field_length) == 0
                && strncmp (text + field_length, ": ", 2) == 0)
                text += field_length + 2;
            cause_storage[i].message = (char *)text;
            cause_list[i] = &cause_storage[i];
        }
        cause_count = count;
    }
    details.n_causes = cause_count;
    details.causes = cause_count ? cause_list : NULL;

    Zube__Status body = ZUBE__STATUS__INIT;
    body.api_version = "v1";
    body.kind = "Status";
    body.status = "Failure";
    body.message = message;
    body.reason = (char *)zube_status_reason (status);
    body.details = (name || kind || cause_count) ? &details : NULL;
    body.has_code = true;
    body.code = zube_status_http_code (status);
    Zube__ErrorReply reply = ZUBE__ERROR_REPLY__INIT;
    reply.status = &body;
    size_t size = zube__error_reply__get_packed_size (&reply);
    uint8_t *packed = api_scratch (&self->scratch2, &self->scratch2_size, size);
    if (!packed) {
        zube_bus_respond (request, status, message, NULL, 0);
        return;
    }
    zube__error_reply__pack (&reply, packed);
    zube_bus_respond (request, status, message, packed, size);
}

void
api_reply_not_found (zube_apiserver_t *self, zube_bus_request_t *request,
                     const api_kind_t *kind, const char *name)
{
    api_reply_error (self, request, ZUBE_NOT_FOUND, kind, name, NULL,
                     "%s \"%s\" not found", kind->qualified, name ? name : "");
}

void
api_reply_conflict (zube_apiserver_t *self, zube_bus_request_t *request,
                    const api_kind_t *kind, const char *name)
{
    api_reply_error (self, request, ZUBE_CONFLICT, kind, name, NULL,
                     "Operation cannot be fulfilled on %s \"%s\": the object has been "
                     "modified; please apply your changes to the latest version and try "
                     "again",
                     kind->qualified, name ? name : "");
}

bool
api_authorize (zube_apiserver_t *self, zube_bus_request_t *request, const char *verb,
               const api_kind_t *kind, const char *subresource, const char *ns,
               const char *name, const ProtobufCMessage *object,
               const ProtobufCMessage *old)
{
    const char *identity = zube_bus_request_sender (request);
    zube_authz_request_t question = {
        .identity = identity && *identity ? identity : "anonymous",
        .verb = verb,
        .resource = kind->kind->resource,
        .subresource = subresource && *subresource ? subresource : NULL,
        .namespace = ns,
        .name = name && *name ? name : NULL,
        .object = object,
        .old = old,
    };
    char reason[1024] = "";
    if (zube_authz_allowed (self->authz, &question, reason, sizeof reason))
        return true;
    if (question.name)
        api_reply_error (self, request, ZUBE_FORBIDDEN, kind, question.name, NULL,
                         "%s \"%s\" is forbidden: %s", kind->qualified, question.name,
                         reason);
    else
        api_reply_error (self, request, ZUBE_FORBIDDEN, kind, NULL, NULL,
                         "%s is forbidden: %s", kind->qualified, reason);
    return false;
}

//  ---------------------------------------------------------------------
//  Time and randomness

//  Every create stamps the time: formatted once a second, not each time
//  (only the bus thread calls this).
void
api_timestamp (char *buf, size_t size, int64_t offset_seconds)
{
    static time_t cached_at = (time_t)-1;
    static char cached[32];
    time_t now = time (NULL) + (time_t)offset_seconds;
    if (now != cached_at) {
        struct tm utc;
        gmtime_r (&now, &utc);
        strftime (cached, sizeof cached, "%Y-%m-%dT%H:%M:%SZ", &utc);
        cached_at = now;
    }
    snprintf (buf, size, "%s", cached);
}

//  Random bytes come from the kernel in blocks, not one call per uid.
static uint8_t s_random[4096];
static size_t s_random_left = 0;

static void
s_random_bytes (uint8_t *out, size_t size)
{
    while (size) {
        if (!s_random_left) {
            size_t got = 0;
            while (got < sizeof s_random) {
                ssize_t rc = getrandom (s_random + got, sizeof s_random - got, 0);
                if (rc <= 0)
                    break;
                got += (size_t)rc;
            }
            if (got < sizeof s_random)
                for (size_t i = got; i < sizeof s_random; i++)
                    s_random[i] = (uint8_t)rand ();
            s_random_left = sizeof s_random;
        }
        size_t take = size < s_random_left ? size : s_random_left;
        memcpy (out, s_random + sizeof s_random - s_random_left, take);
        s_random_left -= take;
        out += take;
        size -= take;
    }
}

void
api_uuid (char *buf)
{
    uint8_t bytes[16];
    s_random_bytes (bytes, sizeof bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    static const char hex[] = "0123456789abcdef";
    size_t at = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            buf[at++] = '-';
        buf[at++] = hex[bytes[i] >> 4];
        buf[at++] = hex[bytes[i] & 15];
    }
    buf[at] = 0;
}

void
api_random_suffix (char *buf, size_t n)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    uint8_t bytes[64];
    if (n > sizeof bytes)
        n = sizeof bytes;
    s_random_bytes (bytes, n);
    for (size_t i = 0; i < n; i++)
        buf[i] = alphabet[bytes[i] % (sizeof alphabet - 1)];
    buf[n] = 0;
}

//  ---------------------------------------------------------------------
//  The service

static void
s_stats_handle (zube_apiserver_t *self, zube_bus_request_t *request)
{
    char text[2048];
    size_t at = 0;
    for (int verb = 0; verb < API_VERB_COUNT; verb++)
        at += (size_t)snprintf (text + at, sizeof text - at, "requests_%s=%" PRIu64 "\n",
                                s_verb_names[verb], self->requests[verb]);
    snprintf (text + at, sizeof text - at,
              "errors=%" PRIu64 "\nbatches=%" PRIu64 "\nbatched_writes=%" PRIu64
              "\nmean_batch=%.2f\nmax_batch=%" PRIu64 "\ncommit_us=%" PRIu64
              "\nretries=%" PRIu64
              "\ndenials=%" PRIu64 "\nrevision=%" PRId64 "\npublisher=%s\npid=%d\n",
              self->errors, self->batches, self->batched_writes,
              self->batches ? (double)self->batched_writes / (double)self->batches : 0.0,
              self->max_batch, self->commit_us, self->retries,
              zube_authz_denials (self->authz),
              api_watch_revision (self), api_watch_publisher (self) ? "true" : "false",
              (int)getpid ());
    zube_bus_respond (request, ZUBE_OK, NULL, text, strlen (text));
}

static void
s_handle (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    zube_apiserver_t *self = (zube_apiserver_t *)arg;
    const char *method = zube_bus_request_method (request);
    int verb;
    for (verb = 0; verb < API_VERB_COUNT; verb++)
        if (streq (method, s_verb_names[verb]))
            break;
    if (verb == API_VERB_COUNT) {
        self->errors++;
        zube_bus_respond_error (request, ZUBE_NOT_IMPLEMENTED,
                                "the api service has no method \"%s\"", method);
        return;
    }
    self->requests[verb]++;
    switch ((api_verb_t)verb) {
    case API_VERB_CREATE:
        api_registry_create (self, request);
        break;
    case API_VERB_GET:
        api_registry_get (self, request);
        break;
    case API_VERB_LIST:
        api_registry_list (self, request);
        break;
    case API_VERB_UPDATE:
        api_registry_update (self, request);
        break;
    case API_VERB_PATCH:
        api_registry_patch (self, request);
        break;
    case API_VERB_DELETE:
        api_registry_delete (self, request);
        break;
    case API_VERB_WATCH:
        api_watch_handle (self, request);
        break;
    case API_VERB_BACKUP:
        api_backup_handle (self, request);
        break;
    case API_VERB_RESTORE:
        api_restore_handle (self, request);
        break;
    case API_VERB_STATS:
        s_stats_handle (self, request);
        break;
    default:
        break;
    }
}

zube_apiserver_t *
zube_apiserver_new (const zube_apiserver_config_t *config, char *error, size_t error_size)
{
    zube_apiserver_t *self = calloc (1, sizeof *self);
    if (!self || s_kinds_load (self) != 0) {
        snprintf (error, error_size, "out of memory");
        free (self);
        return NULL;
    }
    self->pending_tail = &self->pending;
    self->waiting_tail = &self->waiting;
    self->namespaces = zhashx_new ();
    if (zube_store_url_plugin (config->store_url, self->store_scheme,
                               sizeof self->store_scheme) != 0) {
        snprintf (error, error_size,
                  "--store: \"%s\" is not a store URL (lmdb:DIR, "
                  "redis://HOST:PORT[/DB], etcd://HOST:PORT)",
                  config->store_url);
        zube_apiserver_destroy (&self);
        return NULL;
    }
    self->authz = zube_authz_new (config->policy_path, error, error_size);
    if (!self->authz) {
        zube_apiserver_destroy (&self);
        return NULL;
    }
    self->plugins = zube_plugin_host_new ();
    char *store_error = NULL;
    self->store = self->plugins ? zube_store_open (self->plugins, config->store_url, NULL,
                                                   &store_error)
                                : NULL;
    if (!self->store) {
        snprintf (error, error_size, "%s", store_error ? store_error : "out of memory");
        free (store_error);
        zube_apiserver_destroy (&self);
        return NULL;
    }
    if (api_registry_bootstrap (self) != 0) {
        snprintf (error, error_size, "cannot create the default namespaces in %s: %s",
                  config->store_url, zube_store_error (self->store));
        zube_apiserver_destroy (&self);
        return NULL;
    }
    self->backup = api_backup_new ();
    self->bus = zube_bus_new (&config->bus);
    if (!self->bus || !self->backup) {
        snprintf (error, error_size, "cannot connect to the bus at %s",
                  config->bus.endpoint ? config->bus.endpoint
                                       : ZUBE_BUS_DEFAULT_ENDPOINT);
        zube_apiserver_destroy (&self);
        return NULL;
    }
    snprintf (self->instance, sizeof self->instance, "%s", zube_bus_instance (self->bus));
    self->bookmark_interval_ms = config->bookmark_interval_ms < 0    ? 0
                                 : config->bookmark_interval_ms ? config->bookmark_interval_ms
                                                                : API_BOOKMARK_INTERVAL_MS;
    self->watch = api_watch_new (self, config->window ? config->window : 100000);
    if (!self->watch) {
        snprintf (error, error_size, "cannot read the event log of %s: %s",
                  config->store_url, zube_store_error (self->store));
        zube_apiserver_destroy (&self);
        return NULL;
    }
    //  Without a second store handle the commits run on this thread
    self->single_thread = config->single_thread;
    if (config->single_thread || api_writer_start (self, config->store_url) != 0)
        api_writer_init (self);
    if (!self->busy_keys) {
        snprintf (error, error_size, "out of memory");
        zube_apiserver_destroy (&self);
        return NULL;
    }
    if (zube_bus_serve (self->bus, "api", s_handle, self) != 0) {
        snprintf (error, error_size, "cannot serve \"api\" on the bus");
        zube_apiserver_destroy (&self);
        return NULL;
    }
    //  The bus opens its PUB socket on the first publish, and the broker
    //  only hears a PUB socket's events once its subscription has reached
    //  it: open it now, long before the first event that matters
    zube_bus_publish (self->bus, "zube/apiserver/started", self->instance,
                      strlen (self->instance));
    zube_log_info ("msg=\"apiserver started\" store=%s instance=%s", config->store_url,
                   self->instance);
    return self;
}

void
zube_apiserver_destroy (zube_apiserver_t **self_p)
{
    zube_apiserver_t *self = *self_p;
    if (!self)
        return;
    //  The batch in flight is answered before anything goes away
    if (self->busy_keys)
        api_writer_stop (self);
    if (self->watch)
        api_watch_release (self);
    if (self->batches || self->requests[API_VERB_GET] || self->requests[API_VERB_LIST])
        zube_log_info (
            "msg=\"apiserver stopped\" creates=%" PRIu64 " gets=%" PRIu64
            " lists=%" PRIu64 " updates=%" PRIu64 " patches=%" PRIu64 " deletes=%" PRIu64
            " watches=%" PRIu64 " errors=%" PRIu64 " batches=%" PRIu64
            " mean_batch=%.2f max_batch=%" PRIu64 " mean_commit_ms=%.3f retries=%" PRIu64
            " denials=%" PRIu64,
            self->requests[API_VERB_CREATE], self->requests[API_VERB_GET],
            self->requests[API_VERB_LIST], self->requests[API_VERB_UPDATE],
            self->requests[API_VERB_PATCH], self->requests[API_VERB_DELETE],
            self->requests[API_VERB_WATCH], self->errors, self->batches,
            self->batches ? (double)self->batched_writes / (double)self->batches : 0.0,
            self->max_batch,
            self->batches ? (double)self->commit_us / 1000.0 / (double)self->batches : 0.0,
            self->retries, self->authz ? zube_authz_denials (self->authz) : 0);
    //  Requests still queued belong to the bus connection: destroy it first
    zube_bus_destroy (&self->bus);
    api_writer_destroy (self);
    api_watch_destroy (&self->watch);
    api_backup_destroy (&self->backup);
    zube_store_close (&self->store);
    zube_plugin_host_destroy (&self->plugins);
    zube_authz_destroy (&self->authz);
    zhashx_destroy (&self->namespaces);
    free (self->scratch);
    free (self->scratch2);
    free (self->kinds);
    free (self);
    *self_p = NULL;
}

int
zube_apiserver_run (zube_apiserver_t *self)
{
    while (!zsys_interrupted) {
        int timeout = api_watch_tick (self);
        if (self->pending || self->retry || self->waiting || self->inflight)
            timeout = 0;
        int rc = zube_bus_poll (self->bus, timeout);
        if (rc < 0)
            break;
        bool received = rc > 0;
        //  Gather what is ready into one batch, bounded
        while (rc > 0 && self->pending_count < API_BATCH_MAX) {
            rc = zube_bus_poll (self->bus, 0);
            if (rc < 0)
                break;
        }
        //  The bus has no way to wake us when a commit is done: with a
        //  batch in flight and nothing received, wait for it a moment
        //  (then look at the bus again)
        if (api_writer_busy (self, received ? 0 : 200))
            continue;
        api_writer_flush (self);
    }
    return 0;
}
