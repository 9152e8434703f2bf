/*  registry - the generic resource registry: every verb for every kind.

    Kubernetes' generic registry (k8s.io/apiserver/pkg/registry/generic)
    in one file: objects are handled through their zube_kind_t descriptor
    and the api_kind_t offsets found once at start; anything that depends
    on the kind goes through strategy.h. Reads answer at once; writes are
    prepared here (validated, defaulted, packed, with the compare they
    need) and queued for the writer's group commit, which may hand a write
    that lost a race back to api_registry_prepare. */
#define _GNU_SOURCE
#include <assert.h>
#include "apiserver_private.h"
#include "zube/log.h"
#include "zube/patch.h"
#include "zube/selector.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------
//  Helpers

static void
s_free_message (ProtobufCMessage **message_p)
{
    if (*message_p)
        protobuf_c_message_free_unpacked (*message_p, NULL);
    *message_p = NULL;
}

static void
s_set_type_fields (const api_kind_t *kind, ProtobufCMessage *object)
{
    char **field;
    if (kind->api_version_offset >= 0) {
        field = (char **)((char *)object + kind->api_version_offset);
        if (!*field || !streq (*field, kind->kind->api_version))
            api_set_string (field, kind->kind->api_version);
    }
    if (kind->kind_offset >= 0) {
        field = (char **)((char *)object + kind->kind_offset);
        if (!*field || !streq (*field, kind->kind->kind))
            api_set_string (field, kind->kind->kind);
    }
}

//  Packs object into pending->value (the stored form: no resourceVersion).
static int
s_pack (api_pending_t *pending, const api_kind_t *kind, ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = api_meta (kind, object);
    if (meta)
        api_set_string (&meta->resource_version, NULL);
    size_t size = protobuf_c_message_get_packed_size (object);
    free (pending->value);
    pending->value = malloc (size ? size : 1);
    if (!pending->value)
        return -1;
    pending->value_size = protobuf_c_message_pack (object, pending->value);
    return 0;
}

static void
s_reply_invalid (zube_apiserver_t *self, zube_bus_request_t *request,
                 const api_kind_t *kind, const char *name,
                 const zube_field_errors_t *errors)
{
    char joined[3500];
    size_t at = 0;
    size_t count =
        errors->count < ZUBE_FIELD_ERRORS_MAX ? errors->count : ZUBE_FIELD_ERRORS_MAX;
    for (size_t i = 0; i < count && at < sizeof joined; i++)
        at += (size_t)snprintf (joined + at, sizeof joined - at, "%s%s", i ? ", " : "",
                                errors->errors[i].message);
    if (count > 1)
        api_reply_error (self, request, ZUBE_INVALID, kind, name, errors,
                         "%s \"%s\" is invalid: [%s]", kind->kind->kind, name ? name : "",
                         joined);
    else
        api_reply_error (self, request, ZUBE_INVALID, kind, name, errors,
                         "%s \"%s\" is invalid: %s", kind->kind->kind, name ? name : "",
                         joined);
}

static void
s_reply_store_error (zube_apiserver_t *self, zube_bus_request_t *request,
                     zube_status_t status)
{
    api_reply_error (self, request,
                     status == ZUBE_INTERNAL ? ZUBE_INTERNAL : ZUBE_UNAVAILABLE, NULL,
                     NULL, NULL, "storage error: %s", zube_store_error (self->store));
}

static bool
s_size_ok (zube_apiserver_t *self, zube_bus_request_t *request, size_t size)
{
    if (size <= API_MAX_OBJECT_SIZE)
        return true;
    api_reply_error (self, request, ZUBE_PAYLOAD_TOO_LARGE, NULL, NULL, NULL,
                     "Request entity too large: the object is %zu bytes, the limit is %d "
                     "bytes",
                     size, API_MAX_OBJECT_SIZE);
    return false;
}

//  The phase of namespace name ("Active", "Terminating"), or NULL when it
//  does not exist. The follower keeps the cache; a miss asks the store
//  (another instance may have created it a moment ago).
static const char *
s_namespace_phase (zube_apiserver_t *self, const char *name)
{
    const char *phase = zhashx_lookup (self->namespaces, name);
    if (phase)
        return phase;
    char key[300];
    snprintf (key, sizeof key, "/registry/namespaces/%s", name);
    void *value = NULL;
    size_t size = 0;
    if (zube_store_get (self->store, key, &value, &size, NULL) != ZUBE_OK)
        return NULL;
    Zube__Namespace *ns = zube__namespace__unpack (NULL, size, value);
    free (value);
    if (!ns)
        return NULL;
    phase = ns->status && ns->status->phase && streq (ns->status->phase, "Terminating")
                ? "Terminating"
                : "Active";
    zube__namespace__free_unpacked (ns, NULL);
    zhashx_update (self->namespaces, name, (void *)phase);
    return phase;
}

//  Reads key: *value_p (malloc'd) and *revision_p; NOT_FOUND or an error.
static zube_status_t
s_read (zube_apiserver_t *self, const char *key, uint8_t **value_p, size_t *size_p,
        int64_t *revision_p)
{
    return zube_store_get (self->store, key, (void **)value_p, size_p, revision_p);
}

static bool
s_namespace_usable (zube_apiserver_t *self, zube_bus_request_t *request,
                    const api_kind_t *kind, const char *ns, const char *name)
{
    if (!kind->kind->namespaced)
        return true;
    const char *phase = s_namespace_phase (self, ns);
    if (!phase) {
        const api_kind_t *namespaces = api_kind_by_resource (self, "namespaces");
        api_reply_error (self, request, ZUBE_NOT_FOUND, namespaces, ns, NULL,
                         "namespaces \"%s\" not found", ns);
        return false;
    }
    if (streq (phase, "Terminating")) {
        api_reply_error (
            self, request, ZUBE_FORBIDDEN, kind, name, NULL,
            "%s \"%s\" is forbidden: unable to create new content in namespace "
            "%s because it is being terminated",
            kind->qualified, name ? name : "", ns);
        return false;
    }
    return true;
}

static bool
s_has_string (char **list, size_t count, const char *value)
{
    for (size_t i = 0; i < count; i++)
        if (list[i] && streq (list[i], value))
            return true;
    return false;
}

static void
s_add_string (char ***list, size_t *count, const char *value)
{
    char **grown = realloc (*list, (*count + 1) * sizeof (char *));
    if (!grown)
        return;
    grown[*count] = strdup (value);
    *list = grown;
    (*count)++;
}

//  ---------------------------------------------------------------------
//  Create

static bool s_prepare_bind (zube_apiserver_t *self, api_pending_t *pending);

static bool
s_prepare_create (zube_apiserver_t *self, api_pending_t *pending)
{
    Zube__CreateRequest *req = (Zube__CreateRequest *)pending->message;
    zube_bus_request_t *request = pending->request;
    const api_kind_t *kind = pending->kind;
    if (req->subresource && *req->subresource) {
        if (kind->is_pod && streq (req->subresource, "binding"))
            return s_prepare_bind (self, pending);
        api_reply_error (self, request, ZUBE_NOT_FOUND, kind, req->name, NULL,
                         "the server could not find the requested resource (post %s/%s)",
                         kind->qualified, req->subresource);
        return false;
    }
    ProtobufCMessage *object = protobuf_c_message_unpack (
        kind->kind->descriptor, NULL, req->object.len, req->object.data);
    if (!object) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, NULL, NULL,
                         "the object is not a valid %s (%s) message", kind->kind->kind,
                         kind->kind->descriptor->name);
        return false;
    }
    Zube__ObjectMeta *meta = api_meta_ensure (kind, object);
    const char *ns = NULL;
    if (kind->kind->namespaced) {
        const char *wanted = req->namespace_ && *req->namespace_ ? req->namespace_ : NULL;
        const char *own = meta->namespace_ && *meta->namespace_ ? meta->namespace_ : NULL;
        if (wanted && own && !streq (wanted, own)) {
            api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, meta->name, NULL,
                             "the namespace of the provided object does not match the "
                             "namespace sent on the request");
            s_free_message (&object);
            return false;
        }
        ns = wanted ? wanted : own ? own : "default";
        if (ns != meta->namespace_)
            api_set_string (&meta->namespace_, ns);
        ns = meta->namespace_;
    } else
        api_set_string (&meta->namespace_, NULL);

    if (!api_authorize (self, request, "create", kind, NULL, ns, meta->name, object,
                        NULL)) {
        s_free_message (&object);
        return false;
    }
    bool generated = false;
    if (!meta->name || !*meta->name) {
        if (meta->generate_name && *meta->generate_name) {
            char suffix[8];
            api_random_suffix (suffix, 5);
            char *name = NULL;
            if (asprintf (&name, "%s%s", meta->generate_name, suffix) < 0)
                name = NULL;
            free (meta->name);
            meta->name = name;
            generated = true;
        } else {
            zube_field_errors_t errors = {0};
            zube_field_errors_add (&errors, "FieldValueRequired", "metadata.name",
                                   "Required value: name or generateName is required");
            s_reply_invalid (self, request, kind, "", &errors);
            s_free_message (&object);
            return false;
        }
    }
    zube_strategy_default (kind->kind, object);
    zube_strategy_prepare_create (kind->kind, object);
    meta = api_meta_ensure (kind, object);
    zube_field_errors_t errors;
    errors.count = 0;
    if (zube_strategy_validate_create (kind->kind, object, &errors) > 0) {
        s_reply_invalid (self, request, kind, meta->name, &errors);
        s_free_message (&object);
        return false;
    }
    if (kind->kind->namespaced &&
        !s_namespace_usable (self, request, kind, meta->namespace_, meta->name)) {
        s_free_message (&object);
        return false;
    }
    //  What only the server sets
    char uid[40], now[32];
    api_uuid (uid);
    api_timestamp (now, sizeof now, 0);
    api_set_string (&meta->uid, uid);
    api_set_string (&meta->creation_timestamp, now);
    api_set_string (&meta->deletion_timestamp, NULL);
    meta->has_deletion_grace_period_seconds = false;
    if (!meta->has_generation || meta->generation < 1) {
        meta->has_generation = true;
        meta->generation = 1;
    }
    if (kind->is_namespace) {
        Zube__Namespace *ns_object = (Zube__Namespace *)object;
        if (!ns_object->spec) {
            ns_object->spec = malloc (sizeof (Zube__NamespaceSpec));
            zube__namespace_spec__init (ns_object->spec);
        }
        if (!s_has_string (ns_object->spec->finalizers, ns_object->spec->n_finalizers,
                           "kubernetes"))
            s_add_string (&ns_object->spec->finalizers, &ns_object->spec->n_finalizers,
                          "kubernetes");
        if (!ns_object->status) {
            ns_object->status = malloc (sizeof (Zube__NamespaceStatus));
            zube__namespace_status__init (ns_object->status);
        }
        api_set_string (&ns_object->status->phase, "Active");
    }
    s_set_type_fields (kind, object);
    if (api_key (kind, meta->namespace_, meta->name, pending->key, sizeof pending->key) <
        0) {
        zube_field_errors_t too_long = {0};
        zube_field_errors_add (&too_long, "FieldValueTooLong", "metadata.name",
                               "Too long: must have at most 253 bytes");
        s_reply_invalid (self, request, kind, meta->name, &too_long);
        s_free_message (&object);
        return false;
    }
    pending->name = strrchr (pending->key, '/') + 1;
    int rc = s_pack (pending, kind, object);
    s_free_message (&object);
    if (rc != 0) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        return false;
    }
    if (pending->value_size > API_MAX_OBJECT_SIZE) {
        s_size_ok (self, request, pending->value_size);
        return false;
    }
    if (req->dry_run) {
        api_reply_object (self, request, kind, pending->value, pending->value_size, 0);
        return false;
    }
    pending->op = ZUBE_STORE_PUT;
    pending->expect = 0;
    //  A generated name that exists already gets another one
    pending->conflict_final = !generated;
    return true;
}

//  The kind a request names, or NULL after answering NotFound as
//  Kubernetes words it.
const api_kind_t *
api_registry_kind (zube_apiserver_t *self, zube_bus_request_t *request, const char *resource)
{
    const api_kind_t *kind = api_kind_by_resource (self, resource);
    if (!kind)
        api_reply_error (self, request, ZUBE_NOT_FOUND, NULL, NULL, NULL,
                         "the server doesn't have a resource type \"%s\"",
                         resource ? resource : "");
    return kind;
}

//  Unpacks a request whose message has a "resource" field and resolves
//  that resource; NULL after answering (bad bytes, unknown resource).
static ProtobufCMessage *
s_unpack_with_kind (zube_apiserver_t *self, zube_bus_request_t *request,
                    const ProtobufCMessageDescriptor *descriptor, const api_kind_t **kind_p)
{
    ProtobufCMessage *req = zube_bus_request_unpack_or_reject (request, descriptor);
    if (!req) {
        self->errors++;
        return NULL;
    }
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (descriptor, "resource");
    assert (field && field->type == PROTOBUF_C_TYPE_STRING);
    const char *resource = *(const char *const *) ((const char *) req + field->offset);
    *kind_p = api_registry_kind (self, request, resource);
    if (!*kind_p) {
        protobuf_c_message_free_unpacked (req, NULL);
        return NULL;
    }
    return req;
}

void
api_registry_create (zube_apiserver_t *self, zube_bus_request_t *request)
{
    const api_kind_t *kind = NULL;
    Zube__CreateRequest *req = (Zube__CreateRequest *)s_unpack_with_kind (
        self, request, &zube__create_request__descriptor, &kind);
    if (!req)
        return;
    if (!s_size_ok (self, request, req->object.len)) {
        zube__create_request__free_unpacked (req, NULL);
        return;
    }
    api_pending_t *pending = api_writer_slot (self);
    if (!pending) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        zube__create_request__free_unpacked (req, NULL);
        return;
    }
    pending->request = request;
    pending->verb = API_VERB_CREATE;
    pending->kind = kind;
    pending->message = &req->base;
    api_writer_submit (self, pending);
}

//  The name a request names, else its object's ("" when neither does),
//  and the same for the namespace ("default" when neither does).
static const char *
s_name_of (const char *wanted, const Zube__ObjectMeta *meta)
{
    return wanted && *wanted ? wanted : meta && meta->name ? meta->name : "";
}

static const char *
s_namespace_of (const char *wanted, const Zube__ObjectMeta *meta)
{
    return wanted && *wanted                           ? wanted
           : meta && meta->namespace_ && *meta->namespace_ ? meta->namespace_
                                                           : "default";
}

//  ---------------------------------------------------------------------
//  Binding: spec.nodeName and the PodScheduled condition in one write

static bool
s_prepare_bind (zube_apiserver_t *self, api_pending_t *pending)
{
    Zube__CreateRequest *req = (Zube__CreateRequest *)pending->message;
    zube_bus_request_t *request = pending->request;
    const api_kind_t *kind = pending->kind;
    Zube__Binding *binding =
        zube__binding__unpack (NULL, req->object.len, req->object.data);
    if (!binding) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, req->name, NULL,
                         "the object is not a valid Binding message");
        return false;
    }
    const char *name = s_name_of (req->name, binding->metadata);
    const char *ns = s_namespace_of (req->namespace_, binding->metadata);
    bool ok = false;
    uint8_t *value = NULL;
    size_t size = 0;
    int64_t revision = 0;
    Zube__Pod *pod = NULL;
    if (!api_authorize (self, request, "create", kind, "binding", ns, name,
                        &binding->base, NULL))
        goto done;
    if (!binding->target || !binding->target->name || !*binding->target->name) {
        zube_field_errors_t errors = {0};
        zube_field_errors_add (&errors, "FieldValueRequired", "target.name",
                               "Required value");
        s_reply_invalid (self, request, kind, name, &errors);
        goto done;
    }
    if (api_key (kind, ns, name, pending->key, sizeof pending->key) < 0 || !*name) {
        api_reply_not_found (self, request, kind, name);
        goto done;
    }
    pending->name = strrchr (pending->key, '/') + 1;
    if (api_writer_key_busy (self, pending))
        goto done;
    zube_status_t status = s_read (self, pending->key, &value, &size, &revision);
    if (status == ZUBE_NOT_FOUND) {
        api_reply_not_found (self, request, kind, name);
        goto done;
    }
    if (status != ZUBE_OK) {
        s_reply_store_error (self, request, status);
        goto done;
    }
    pod = zube__pod__unpack (NULL, size, value);
    if (!pod) {
        api_reply_error (self, request, ZUBE_INTERNAL, kind, name, NULL,
                         "the stored pod \"%s\" cannot be decoded", name);
        goto done;
    }
    if (pod->spec && pod->spec->node_name && *pod->spec->node_name) {
        api_reply_error (
            self, request, ZUBE_CONFLICT, kind, name, NULL,
            "Operation cannot be fulfilled on pods/binding \"%s\": pod %s is "
            "already assigned to node \"%s\"",
            name, name, pod->spec->node_name);
        goto done;
    }
    if (pod->metadata && pod->metadata->deletion_timestamp) {
        api_reply_error (
            self, request, ZUBE_CONFLICT, kind, name, NULL,
            "Operation cannot be fulfilled on pods/binding \"%s\": pod %s is "
            "being deleted, cannot be assigned to a host",
            name, name);
        goto done;
    }
    if (binding->metadata && binding->metadata->uid && *binding->metadata->uid &&
        pod->metadata && pod->metadata->uid &&
        !streq (binding->metadata->uid, pod->metadata->uid)) {
        api_reply_error (
            self, request, ZUBE_CONFLICT, kind, name, NULL,
            "Operation cannot be fulfilled on pods/binding \"%s\": Precondition "
            "failed: UID in precondition: %s, UID in object meta: %s",
            name, binding->metadata->uid, pod->metadata->uid);
        goto done;
    }
    if (!pod->spec) {
        pod->spec = malloc (sizeof (Zube__PodSpec));
        zube__pod_spec__init (pod->spec);
    }
    api_set_string (&pod->spec->node_name, binding->target->name);
    if (!pod->status) {
        pod->status = malloc (sizeof (Zube__PodStatus));
        zube__pod_status__init (pod->status);
    }
    Zube__PodCondition *condition = NULL;
    for (size_t i = 0; i < pod->status->n_conditions; i++)
        if (pod->status->conditions[i]->type &&
            streq (pod->status->conditions[i]->type, "PodScheduled"))
            condition = pod->status->conditions[i];
    if (!condition) {
        Zube__PodCondition **grown = realloc (
            pod->status->conditions, (pod->status->n_conditions + 1) * sizeof *grown);
        condition = malloc (sizeof (Zube__PodCondition));
        if (!grown || !condition) {
            free (condition);
            if (grown)
                pod->status->conditions = grown;
            zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
            goto done;
        }
        zube__pod_condition__init (condition);
        grown[pod->status->n_conditions++] = condition;
        pod->status->conditions = grown;
        api_set_string (&condition->type, "PodScheduled");
    }
    char now[32];
    api_timestamp (now, sizeof now, 0);
    api_set_string (&condition->status, "True");
    api_set_string (&condition->last_transition_time, now);
    api_set_string (&condition->reason, NULL);
    api_set_string (&condition->message, NULL);
    if (s_pack (pending, kind, &pod->base) != 0) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        goto done;
    }
    if (req->dry_run) {
        api_reply_object (self, request, kind, pending->value, pending->value_size,
                          revision);
        goto done;
    }
    pending->op = ZUBE_STORE_PUT;
    pending->expect = revision;
    pending->conflict_final = false;
    ok = true;
done:
    if (pod)
        zube__pod__free_unpacked (pod, NULL);
    free (value);
    zube__binding__free_unpacked (binding, NULL);
    return ok;
}

//  ---------------------------------------------------------------------
//  Get and list

//  True when kind has subresource (NULL or "": the object itself), else
//  answers NotFound as Kubernetes does for a path it does not serve.
static bool
s_subresource_known (zube_apiserver_t *self, zube_bus_request_t *request,
                     const api_kind_t *kind, const char *verb, const char *subresource,
                     const char *name)
{
    if (!subresource || !*subresource ||
        (streq (subresource, "status") && kind->kind->has_status) ||
        (streq (subresource, "scale") && kind->scalable))
        return true;
    api_reply_error (self, request, ZUBE_NOT_FOUND, kind, name, NULL,
                     "the server could not find the requested resource (%s %s/%s)", verb,
                     kind->qualified, subresource);
    return false;
}

void
api_registry_get (zube_apiserver_t *self, zube_bus_request_t *request)
{
    Zube__GetRequest *req = (Zube__GetRequest *)zube_bus_request_unpack_or_reject (
        request, &zube__get_request__descriptor);
    if (!req) {
        self->errors++;
        return;
    }
    const api_kind_t *kind = api_registry_kind (self, request, req->resource);
    char key[320];
    if (!kind)
        ;
    else if (!s_subresource_known (self, request, kind, "get", req->subresource,
                                   req->name))
        ;
    else if (!api_authorize (self, request, "get", kind, req->subresource,
                             req->namespace_, req->name, NULL, NULL))
        ;
    else if (!req->name || !*req->name ||
             api_key (kind,
                      req->namespace_ && *req->namespace_ ? req->namespace_ : "default",
                      req->name, key, sizeof key) < 0)
        api_reply_not_found (self, request, kind, req->name);
    else {
        uint8_t *value = NULL;
        size_t size = 0;
        int64_t revision = 0;
        zube_status_t status = s_read (self, key, &value, &size, &revision);
        if (status == ZUBE_OK)
            api_reply_object (self, request, kind, value, size, revision);
        else if (status == ZUBE_NOT_FOUND)
            api_reply_not_found (self, request, kind, req->name);
        else
            s_reply_store_error (self, request, status);
        free (value);
    }
    zube__get_request__free_unpacked (req, NULL);
}

//  The continue token: "<list revision>-<hex of the last key>".
static char *
s_continue_encode (int64_t revision, const char *key)
{
    size_t size = strlen (key);
    char *token = malloc (32 + 2 * size);
    if (!token)
        return NULL;
    int at = snprintf (token, 32, "%" PRId64 "-", revision);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        token[at++] = hex[(uint8_t)key[i] >> 4];
        token[at++] = hex[(uint8_t)key[i] & 15];
    }
    token[at] = 0;
    return token;
}

static int
s_hex (char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *
s_continue_decode (const char *token, int64_t *revision_p)
{
    char *end = NULL;
    long long revision = strtoll (token, &end, 10);
    if (end == token || *end != '-' || revision < 0)
        return NULL;
    const char *hex = end + 1;
    size_t size = strlen (hex);
    if (size % 2 || size == 0)
        return NULL;
    char *key = malloc (size / 2 + 1);
    for (size_t i = 0; key && i < size / 2; i++) {
        int high = s_hex (hex[2 * i]), low = s_hex (hex[2 * i + 1]);
        if (high < 0 || low < 0 || (high == 0 && low == 0)) {
            free (key);
            return NULL;
        }
        key[i] = (char)(high << 4 | low);
    }
    if (key)
        key[size / 2] = 0;
    *revision_p = revision;
    return key;
}

typedef struct {
    zube_apiserver_t *self;
    const api_kind_t *kind;
    zube_selector_t *labels;
    zube_field_selector_t *fields;
    size_t limit;
    size_t count;
    size_t bytes;
    bool more;
    //  Items as offsets into the scratch buffer
    size_t *offsets;
    size_t *sizes;
    size_t capacity;
    char *last_key;
    size_t last_key_capacity;
} s_list_t;

static int
s_list_item (void *arg, const zube_store_kv_t *kv)
{
    s_list_t *list = (s_list_t *)arg;
    if (list->labels || list->fields) {
        ProtobufCMessage *object = protobuf_c_message_unpack (
            list->kind->kind->descriptor, NULL, kv->value_size, kv->value);
        if (!object)
            return 0;
        bool match =
            (!list->labels || zube_selector_matches_object (list->labels, object)) &&
            (!list->fields || zube_field_selector_matches (list->fields, object));
        protobuf_c_message_free_unpacked (object, NULL);
        if (!match)
            return 0;
    }
    if ((list->limit && list->count == list->limit) ||
        (list->count && list->bytes + list->count * API_LIST_ITEM_OVERHEAD +
                                kv->value_size + API_RV_SUFFIX_MAX >
                            API_LIST_MAX_BYTES)) {
        list->more = true;
        return 1;
    }
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 256;
        size_t *offsets = realloc (list->offsets, capacity * sizeof (size_t));
        if (offsets)
            list->offsets = offsets;
        size_t *sizes = realloc (list->sizes, capacity * sizeof (size_t));
        if (sizes)
            list->sizes = sizes;
        if (!offsets || !sizes)
            return 1;
        list->capacity = capacity;
    }
    zube_apiserver_t *self = list->self;
    uint8_t *buffer = api_scratch (&self->scratch, &self->scratch_size,
                                   list->bytes + kv->value_size + API_RV_SUFFIX_MAX);
    if (!buffer)
        return 1;
    size_t size = api_with_rv (list->kind, kv->value, kv->value_size, kv->mod_revision,
                               buffer + list->bytes);
    list->offsets[list->count] = list->bytes;
    list->sizes[list->count] = size;
    list->bytes += size;
    list->count++;
    if (kv->key_size + 1 > list->last_key_capacity) {
        char *grown = realloc (list->last_key, kv->key_size + 1);
        if (!grown)
            return 1;
        list->last_key = grown;
        list->last_key_capacity = kv->key_size + 1;
    }
    memcpy (list->last_key, kv->key, kv->key_size);
    list->last_key[kv->key_size] = 0;
    return 0;
}

void
api_registry_list (zube_apiserver_t *self, zube_bus_request_t *request)
{
    Zube__ListRequest *req = (Zube__ListRequest *)zube_bus_request_unpack_or_reject (
        request, &zube__list_request__descriptor);
    if (!req) {
        self->errors++;
        return;
    }
    const api_kind_t *kind = api_registry_kind (self, request, req->resource);
    const char *ns = req->namespace_ && *req->namespace_ ? req->namespace_ : NULL;
    s_list_t list = {.self = self, .kind = kind};
    char *after = NULL, *token = NULL;
    int64_t list_revision = 0;
    char error[512];
    if (!kind)
        goto done;
    if (!kind->kind->namespaced)
        ns = NULL;
    if (!api_authorize (self, request, "list", kind, NULL, ns, NULL, NULL, NULL))
        goto done;
    if (req->label_selector && *req->label_selector &&
        zube_selector_parse (req->label_selector, &list.labels, error, sizeof error) !=
            0) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, NULL, NULL, "%s", error);
        goto done;
    }
    if (req->field_selector && *req->field_selector &&
        zube_field_selector_parse (req->field_selector, kind->kind->resource,
                                   &list.fields, error, sizeof error) != 0) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, NULL, NULL, "%s", error);
        goto done;
    }
    if (list.labels && zube_selector_empty (list.labels))
        zube_selector_destroy (&list.labels);
    if (list.fields && zube_field_selector_empty (list.fields))
        zube_field_selector_destroy (&list.fields);
    char prefix[320];
    if (ns)
        snprintf (prefix, sizeof prefix, "/registry/%s/%s/", kind->kind->resource, ns);
    else
        snprintf (prefix, sizeof prefix, "/registry/%s/", kind->kind->resource);
    if (req->continue_ && *req->continue_) {
        after = s_continue_decode (req->continue_, &list_revision);
        if (!after || strncmp (after, prefix, strlen (prefix)) != 0) {
            api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, NULL, NULL,
                             "continue key is not valid: the token does not belong to "
                             "this list");
            goto done;
        }
    }
    list.limit = req->has_limit && req->limit > 0 ? (size_t)req->limit : 0;
    zube_store_range_t range = {.prefix = prefix, .after_key = after};
    zube_store_range_result_t result = {0};
    zube_status_t status =
        zube_store_range (self->store, &range, s_list_item, &list, &result);
    if (status != ZUBE_OK) {
        s_reply_store_error (self, request, status);
        goto done;
    }
    if (!list_revision)
        list_revision = result.revision;
    if (list.more && list.last_key)
        token = s_continue_encode (list_revision, list.last_key);

    ProtobufCBinaryData *items = list.count ? calloc (list.count, sizeof *items) : NULL;
    if (list.count && !items) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < list.count; i++) {
        items[i].data = self->scratch + list.offsets[i];
        items[i].len = list.sizes[i];
    }
    char rv[24], list_kind[96];
    snprintf (rv, sizeof rv, "%" PRId64, list_revision);
    snprintf (list_kind, sizeof list_kind, "%sList", kind->kind->kind);
    Zube__ListReply reply = ZUBE__LIST_REPLY__INIT;
    reply.n_items = list.count;
    reply.items = items;
    reply.resource_version = rv;
    reply.continue_ = token;
    reply.kind = list_kind;
    reply.api_version = (char *)kind->kind->api_version;
    size_t size = zube__list_reply__get_packed_size (&reply);
    uint8_t *packed = api_scratch (&self->scratch2, &self->scratch2_size, size);
    if (packed) {
        zube__list_reply__pack (&reply, packed);
        zube_bus_respond (request, ZUBE_OK, NULL, packed, size);
    } else
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
    free (items);
done:
    free (token);
    free (after);
    free (list.offsets);
    free (list.sizes);
    free (list.last_key);
    zube_selector_destroy (&list.labels);
    zube_field_selector_destroy (&list.fields);
    zube__list_request__free_unpacked (req, NULL);
}

//  ---------------------------------------------------------------------
//  Update and patch

//  The part update and patch share: object is the new state the client
//  wants (owned here), old the stored one at revision.
static bool
s_prepare_write (zube_apiserver_t *self, api_pending_t *pending, ProtobufCMessage *object,
                 const uint8_t *old_value, size_t old_size, int64_t revision,
                 const char *subresource, int64_t client_rv, bool dry_run)
{
    zube_bus_request_t *request = pending->request;
    const api_kind_t *kind = pending->kind;
    bool status_only = subresource && streq (subresource, "status");
    ProtobufCMessage *old =
        protobuf_c_message_unpack (kind->kind->descriptor, NULL, old_size, old_value);
    if (!old) {
        api_reply_error (self, request, ZUBE_INTERNAL, kind, pending->name, NULL,
                         "the stored object cannot be decoded");
        s_free_message (&object);
        return false;
    }
    Zube__ObjectMeta *meta = api_meta_ensure (kind, object);
    Zube__ObjectMeta *old_meta = api_meta_ensure (kind, old);
    //  What clients cannot set: filled from the stored object when absent
    if (!meta->uid || !*meta->uid)
        api_set_string (&meta->uid, old_meta->uid);
    if (!meta->creation_timestamp || !*meta->creation_timestamp)
        api_set_string (&meta->creation_timestamp, old_meta->creation_timestamp);
    api_set_string (&meta->deletion_timestamp, old_meta->deletion_timestamp);
    meta->has_deletion_grace_period_seconds = old_meta->has_deletion_grace_period_seconds;
    meta->deletion_grace_period_seconds = old_meta->deletion_grace_period_seconds;
    if (!meta->name)
        api_set_string (&meta->name, old_meta->name);
    if (kind->kind->namespaced && !meta->namespace_)
        api_set_string (&meta->namespace_, old_meta->namespace_);
    if (status_only)
        zube_strategy_prepare_status_update (kind->kind, object, old);
    else {
        zube_strategy_default (kind->kind, object);
        zube_strategy_prepare_update (kind->kind, object, old);
    }
    meta = api_meta_ensure (kind, object);
    zube_field_errors_t errors;
    errors.count = 0;
    if (zube_strategy_validate_update (kind->kind, object, old, &errors) > 0) {
        s_reply_invalid (self, request, kind, pending->name, &errors);
        s_free_message (&object);
        s_free_message (&old);
        return false;
    }
    s_set_type_fields (kind, object);
    //  The last finalizer gone from an object being deleted: delete it
    bool finished = false;
    if (meta->deletion_timestamp && meta->n_finalizers == 0) {
        finished = true;
        if (kind->is_namespace) {
            Zube__Namespace *ns = (Zube__Namespace *)object;
            finished = !ns->spec || ns->spec->n_finalizers == 0;
        }
    }
    int rc = s_pack (pending, kind, object);
    s_free_message (&object);
    s_free_message (&old);
    if (rc != 0) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        return false;
    }
    if (pending->value_size > API_MAX_OBJECT_SIZE) {
        s_size_ok (self, request, pending->value_size);
        return false;
    }
    //  Nothing changed: no write, no event, as Kubernetes
    if (!finished && pending->value_size == old_size &&
        memcmp (pending->value, old_value, old_size) == 0) {
        api_reply_object (self, request, kind, old_value, old_size, revision);
        return false;
    }
    if (dry_run) {
        api_reply_object (self, request, kind, pending->value, pending->value_size,
                          revision);
        return false;
    }
    pending->op = finished ? ZUBE_STORE_DELETE : ZUBE_STORE_PUT;
    if (finished) {
        //  Answered with the final state
        free (pending->reply);
        pending->reply = pending->value;
        pending->reply_size = pending->value_size;
        pending->value = NULL;
        pending->value_size = 0;
    }
    pending->expect = revision;
    pending->conflict_final = client_rv != 0;
    return true;
}

//  Writes the replicas of a Scale into the parent object old (stored as
//  old_value at revision). by_patch: the Scale came from a patch, whose
//  resourceVersion must still be the one read (else the client named it).
static bool
s_scale_write (zube_apiserver_t *self, api_pending_t *pending, const Zube__Scale *scale,
               const ProtobufCMessage *old, const uint8_t *old_value, size_t old_size,
               int64_t revision, bool by_patch, bool dry_run)
{
    zube_bus_request_t *request = pending->request;
    const api_kind_t *kind = pending->kind;
    const char *name = pending->name;
    const Zube__ObjectMeta *meta = scale->metadata;
    int64_t client_rv = api_parse_rv (meta ? meta->resource_version : NULL);
    if (client_rv < 0) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, name, NULL,
                         "invalid resourceVersion \"%s\"", meta->resource_version);
        return false;
    }
    if ((client_rv && client_rv != revision) || (by_patch && client_rv != revision)) {
        api_reply_conflict (self, request, kind, name);
        return false;
    }
    if (meta && meta->name && *meta->name && !streq (meta->name, name)) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, name, NULL,
                         "the name of the object (%s) does not match the name on the "
                         "request (%s)",
                         meta->name, name);
        return false;
    }
    if (!scale->spec || !scale->spec->has_replicas || scale->spec->replicas < 0) {
        zube_field_errors_t errors = {0};
        if (!scale->spec || !scale->spec->has_replicas)
            zube_field_errors_add (&errors, "FieldValueRequired", "spec.replicas",
                                   "Required value");
        else
            zube_field_errors_add (&errors, "FieldValueInvalid", "spec.replicas",
                                   "Invalid value: %d: must be greater "
                                   "than or equal to 0",
                                   scale->spec->replicas);
        api_reply_error (self, request, ZUBE_INVALID, kind, name, &errors,
                         "Scale.autoscaling \"%s\" is invalid: %s", name,
                         errors.errors[0].message);
        return false;
    }
    ProtobufCMessage *object = api_scale_apply (kind, old, scale->spec->replicas);
    if (!object) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        return false;
    }
    //  by_patch: the patch read this revision; a lost race reads again
    return s_prepare_write (self, pending, object, old_value, old_size, revision, NULL,
                            by_patch ? 0 : client_rv, dry_run);
}

//  update with subresource scale: the object is a Scale.
static bool
s_prepare_scale_update (zube_apiserver_t *self, api_pending_t *pending)
{
    Zube__UpdateRequest *req = (Zube__UpdateRequest *)pending->message;
    zube_bus_request_t *request = pending->request;
    const api_kind_t *kind = pending->kind;
    Zube__Scale *scale = zube__scale__unpack (NULL, req->object.len, req->object.data);
    if (!scale) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, req->name, NULL,
                         "the object is not a valid Scale (zube.Scale) message");
        return false;
    }
    const char *name = s_name_of (req->name, scale->metadata);
    const char *ns =
        kind->kind->namespaced ? s_namespace_of (req->namespace_, scale->metadata) : NULL;
    bool queued = false;
    uint8_t *value = NULL;
    size_t size = 0;
    int64_t revision = 0;
    ProtobufCMessage *old = NULL;
    if (!*name || api_key (kind, ns, name, pending->key, sizeof pending->key) < 0) {
        api_reply_not_found (self, request, kind, name);
        goto done;
    }
    pending->name = strrchr (pending->key, '/') + 1;
    if (api_writer_key_busy (self, pending))
        goto done;
    zube_status_t status = s_read (self, pending->key, &value, &size, &revision);
    old = status == ZUBE_OK
              ? protobuf_c_message_unpack (kind->kind->descriptor, NULL, size, value)
              : NULL;
    if (!api_authorize (self, request, "update", kind, "scale", ns, name, old, old))
        goto done;
    if (status == ZUBE_NOT_FOUND)
        api_reply_not_found (self, request, kind, name);
    else if (status != ZUBE_OK)
        s_reply_store_error (self, request, status);
    else if (!old)
        api_reply_error (self, request, ZUBE_INTERNAL, kind, name, NULL,
                         "the stored object cannot be decoded");
    else
        queued = s_scale_write (self, pending, scale, old, value, size, revision, false,
                                req->dry_run);
done:
    s_free_message (&old);
    free (value);
    zube__scale__free_unpacked (scale, NULL);
    return queued;
}

//  Applies the request's patch to object; answers the error itself.
static int
s_apply_patch (zube_apiserver_t *self, api_pending_t *pending,
               const ProtobufCMessage *object, zube_patch_type_t type,
               ProtobufCMessage **patched_p)
{
    Zube__PatchRequest *req = (Zube__PatchRequest *)pending->message;
    char *text = malloc (req->patch.len + 1);
    if (!text) {
        zube_bus_respond_error (pending->request, ZUBE_INTERNAL, "out of memory");
        return -1;
    }
    if (req->patch.len)
        memcpy (text, req->patch.data, req->patch.len);
    text[req->patch.len] = 0;
    char error[1024] = "";
    int rc = zube_patch_apply (object, type, text, patched_p, error, sizeof error);
    if (rc == ZUBE_PATCH_FAILED) {
        //  As Kubernetes: the patch does not apply, Invalid on field "patch"
        zube_field_errors_t errors = {0};
        zube_field_errors_add (&errors, "FieldValueInvalid", "patch",
                               "Invalid value: \"%.200s\": %s", text, error);
        s_reply_invalid (self, pending->request, pending->kind, pending->name, &errors);
    } else if (rc != 0)
        api_reply_error (self, pending->request, ZUBE_BAD_REQUEST, pending->kind,
                         pending->name, NULL, "%s", error);
    free (text);
    return rc == 0 ? 0 : -1;
}

static bool
s_prepare_update (zube_apiserver_t *self, api_pending_t *pending)
{
    Zube__UpdateRequest *req = (Zube__UpdateRequest *)pending->message;
    zube_bus_request_t *request = pending->request;
    const api_kind_t *kind = pending->kind;
    const char *subresource =
        req->subresource && *req->subresource ? req->subresource : NULL;
    if (!s_subresource_known (self, request, kind, "put", subresource, req->name))
        return false;
    if (subresource && streq (subresource, "scale"))
        return s_prepare_scale_update (self, pending);
    ProtobufCMessage *object = protobuf_c_message_unpack (
        kind->kind->descriptor, NULL, req->object.len, req->object.data);
    if (!object) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, req->name, NULL,
                         "the object is not a valid %s (%s) message", kind->kind->kind,
                         kind->kind->descriptor->name);
        return false;
    }
    Zube__ObjectMeta *meta = api_meta_ensure (kind, object);
    const char *name = req->name && *req->name ? req->name : meta->name;
    const char *ns = NULL;
    if (kind->kind->namespaced)
        ns = req->namespace_ && *req->namespace_     ? req->namespace_
             : meta->namespace_ && *meta->namespace_ ? meta->namespace_
                                                     : "default";
    if (!name || !*name || (meta->name && *meta->name && !streq (meta->name, name))) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, name, NULL,
                         "the name of the object (%s) does not match the name on the "
                         "request (%s)",
                         meta->name ? meta->name : "", name ? name : "");
        s_free_message (&object);
        return false;
    }
    if (ns && meta->namespace_ && *meta->namespace_ && !streq (meta->namespace_, ns)) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, name, NULL,
                         "the namespace of the provided object does not match the "
                         "namespace sent on the request");
        s_free_message (&object);
        return false;
    }
    int64_t client_rv = api_parse_rv (meta->resource_version);
    if (client_rv < 0) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, name, NULL,
                         "invalid resourceVersion \"%s\"", meta->resource_version);
        s_free_message (&object);
        return false;
    }
    if (api_key (kind, ns, name, pending->key, sizeof pending->key) < 0) {
        api_reply_not_found (self, request, kind, name);
        s_free_message (&object);
        return false;
    }
    pending->name = strrchr (pending->key, '/') + 1;
    if (api_writer_key_busy (self, pending)) {
        s_free_message (&object);
        return false;
    }
    uint8_t *value = NULL;
    size_t size = 0;
    int64_t revision = 0;
    zube_status_t status = s_read (self, pending->key, &value, &size, &revision);
    ProtobufCMessage *old =
        status == ZUBE_OK
            ? protobuf_c_message_unpack (kind->kind->descriptor, NULL, size, value)
            : NULL;
    bool allowed =
        api_authorize (self, request, "update", kind, subresource, ns, name, object, old);
    s_free_message (&old);
    if (!allowed) {
        s_free_message (&object);
        free (value);
        return false;
    }
    if (status != ZUBE_OK) {
        if (status == ZUBE_NOT_FOUND)
            api_reply_not_found (self, request, kind, name);
        else
            s_reply_store_error (self, request, status);
        s_free_message (&object);
        free (value);
        return false;
    }
    if (client_rv && client_rv != revision) {
        api_reply_conflict (self, request, kind, name);
        s_free_message (&object);
        free (value);
        return false;
    }
    bool queued = s_prepare_write (self, pending, object, value, size, revision,
                                   subresource, client_rv, req->dry_run);
    free (value);
    return queued;
}

static bool
s_prepare_patch (zube_apiserver_t *self, api_pending_t *pending)
{
    Zube__PatchRequest *req = (Zube__PatchRequest *)pending->message;
    zube_bus_request_t *request = pending->request;
    const api_kind_t *kind = pending->kind;
    const char *subresource =
        req->subresource && *req->subresource ? req->subresource : NULL;
    const char *ns =
        kind->kind->namespaced
            ? (req->namespace_ && *req->namespace_ ? req->namespace_ : "default")
            : NULL;
    const char *name = req->name ? req->name : "";
    if (!s_subresource_known (self, request, kind, "patch", subresource, name))
        return false;
    zube_patch_type_t patch_type = zube_patch_type_parse (req->patch_type);
    if (patch_type == ZUBE_PATCH_UNKNOWN) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, name, NULL,
                         "the body of the request was in an unknown format - accepted "
                         "media types include: application/json-patch+json, "
                         "application/merge-patch+json, "
                         "application/strategic-merge-patch+json");
        return false;
    }
    if (!*name || api_key (kind, ns, name, pending->key, sizeof pending->key) < 0) {
        api_reply_not_found (self, request, kind, name);
        return false;
    }
    pending->name = strrchr (pending->key, '/') + 1;
    if (api_writer_key_busy (self, pending))
        return false;
    uint8_t *value = NULL;
    size_t size = 0;
    int64_t revision = 0;
    zube_status_t status = s_read (self, pending->key, &value, &size, &revision);
    ProtobufCMessage *old =
        status == ZUBE_OK
            ? protobuf_c_message_unpack (kind->kind->descriptor, NULL, size, value)
            : NULL;
    if (!api_authorize (self, request, "patch", kind, subresource, ns, name, old, old)) {
        s_free_message (&old);
        free (value);
        return false;
    }
    if (status != ZUBE_OK || !old) {
        if (status == ZUBE_NOT_FOUND)
            api_reply_not_found (self, request, kind, name);
        else if (status != ZUBE_OK)
            s_reply_store_error (self, request, status);
        else
            api_reply_error (self, request, ZUBE_INTERNAL, kind, name, NULL,
                             "the stored object cannot be decoded");
        s_free_message (&old);
        free (value);
        return false;
    }
    //  The patch sees the object as a client would, resourceVersion included
    //  (or, on the scale subresource, the parent's Scale)
    char rv_text[24];
    snprintf (rv_text, sizeof rv_text, "%" PRId64, revision);
    api_set_string (&api_meta_ensure (kind, old)->resource_version, rv_text);
    bool scale = subresource && streq (subresource, "scale");
    Zube__Scale *view = NULL;
    if (scale && api_scale_of (kind, old, revision, &view) != 0) {
        s_free_message (&old);
        free (value);
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        return false;
    }
    ProtobufCMessage *patched = NULL;
    int rc = s_apply_patch (self, pending, scale ? &view->base : old, patch_type,
                            &patched);
    if (view)
        zube__scale__free_unpacked (view, NULL);
    if (rc != 0) {
        s_free_message (&old);
        free (value);
        return false;
    }
    if (scale) {
        bool queued = s_scale_write (self, pending, (Zube__Scale *)patched, old, value,
                                     size, revision, true, req->dry_run);
        s_free_message (&patched);
        s_free_message (&old);
        free (value);
        return queued;
    }
    s_free_message (&old);
    Zube__ObjectMeta *meta = api_meta_ensure (kind, patched);
    int64_t client_rv = api_parse_rv (meta->resource_version);
    if (client_rv != revision) {
        //  The patch itself named another resourceVersion
        api_reply_conflict (self, request, kind, name);
        s_free_message (&patched);
        free (value);
        return false;
    }
    if ((meta->name && !streq (meta->name, name)) ||
        (ns && meta->namespace_ && !streq (meta->namespace_, ns))) {
        zube_field_errors_t errors = {0};
        zube_field_errors_add (&errors, "FieldValueInvalid", "metadata.name",
                               "Invalid value: \"%s\": field is immutable",
                               meta->name ? meta->name : "");
        s_reply_invalid (self, request, kind, name, &errors);
        s_free_message (&patched);
        free (value);
        return false;
    }
    //  A patch always applies to the revision it read: a concurrent write
    //  makes it read and apply again
    bool queued = s_prepare_write (self, pending, patched, value, size, revision,
                                   subresource, 0, req->dry_run);
    free (value);
    return queued;
}

static void
s_queue_write (zube_apiserver_t *self, zube_bus_request_t *request, api_verb_t verb,
               const api_kind_t *kind, ProtobufCMessage *message)
{
    api_pending_t *pending = api_writer_slot (self);
    if (!pending) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        protobuf_c_message_free_unpacked (message, NULL);
        return;
    }
    pending->request = request;
    pending->verb = verb;
    pending->kind = kind;
    pending->message = message;
    api_writer_submit (self, pending);
}

void
api_registry_update (zube_apiserver_t *self, zube_bus_request_t *request)
{
    const api_kind_t *kind = NULL;
    Zube__UpdateRequest *req = (Zube__UpdateRequest *)s_unpack_with_kind (
        self, request, &zube__update_request__descriptor, &kind);
    if (!req)
        return;
    if (!s_size_ok (self, request, req->object.len)) {
        zube__update_request__free_unpacked (req, NULL);
        return;
    }
    s_queue_write (self, request, API_VERB_UPDATE, kind, &req->base);
}

void
api_registry_patch (zube_apiserver_t *self, zube_bus_request_t *request)
{
    const api_kind_t *kind = NULL;
    Zube__PatchRequest *req = (Zube__PatchRequest *)s_unpack_with_kind (
        self, request, &zube__patch_request__descriptor, &kind);
    if (!req)
        return;
    if (!s_size_ok (self, request, req->patch.len)) {
        zube__patch_request__free_unpacked (req, NULL);
        return;
    }
    s_queue_write (self, request, API_VERB_PATCH, kind, &req->base);
}

//  ---------------------------------------------------------------------
//  Delete

static bool
s_remove_string (char ***list, size_t *count, const char *value)
{
    bool removed = false;
    for (size_t i = 0; i < *count;) {
        if ((*list)[i] && streq ((*list)[i], value)) {
            free ((*list)[i]);
            memmove (&(*list)[i], &(*list)[i + 1], (*count - i - 1) * sizeof (char *));
            (*count)--;
            removed = true;
        } else
            i++;
    }
    return removed;
}

//  Kubernetes' deletionFinalizersForGarbageCollection: Orphan (or
//  orphanDependents true) sets the orphan finalizer, Foreground
//  foregroundDeletion, Background neither; without a policy the object
//  keeps the ones it has (the default of every kind zube serves is
//  Background). True when meta's finalizers changed.
static bool
s_propagation_finalizers (const Zube__DeleteRequest *req, Zube__ObjectMeta *meta)
{
    const char *policy = req->propagation_policy && *req->propagation_policy
                             ? req->propagation_policy
                         : req->has_orphan_dependents
                             ? (req->orphan_dependents ? "Orphan" : "Background")
                             : NULL;
    if (!policy)
        return false;
    bool orphan = streq (policy, "Orphan");
    bool foreground = streq (policy, "Foreground");
    bool changed = false;
    if (!orphan)
        changed |= s_remove_string (&meta->finalizers, &meta->n_finalizers, "orphan");
    if (!foreground)
        changed |= s_remove_string (&meta->finalizers, &meta->n_finalizers,
                                    "foregroundDeletion");
    const char *wanted = orphan ? "orphan" : foreground ? "foregroundDeletion" : NULL;
    if (wanted && !s_has_string (meta->finalizers, meta->n_finalizers, wanted)) {
        s_add_string (&meta->finalizers, &meta->n_finalizers, wanted);
        changed = true;
    }
    return changed;
}

static bool
s_prepare_delete (zube_apiserver_t *self, api_pending_t *pending)
{
    Zube__DeleteRequest *req = (Zube__DeleteRequest *)pending->message;
    zube_bus_request_t *request = pending->request;
    const api_kind_t *kind = pending->kind;
    const char *ns =
        kind->kind->namespaced
            ? (req->namespace_ && *req->namespace_ ? req->namespace_ : "default")
            : NULL;
    const char *name = req->name ? req->name : "";
    const char *policy = req->propagation_policy;
    if (policy && *policy && !streq (policy, "Orphan") && !streq (policy, "Foreground") &&
        !streq (policy, "Background")) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, name, NULL,
                         "propagationPolicy: Unsupported value: \"%s\": supported values: "
                         "\"Foreground\", \"Background\", \"Orphan\"",
                         policy);
        return false;
    }
    if (policy && *policy && req->has_orphan_dependents) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, kind, name, NULL,
                         "orphanDependents: Invalid value: %s: orphanDependents and "
                         "propagationPolicy cannot be both set",
                         req->orphan_dependents ? "true" : "false");
        return false;
    }
    if (!*name || api_key (kind, ns, name, pending->key, sizeof pending->key) < 0) {
        api_reply_not_found (self, request, kind, name);
        return false;
    }
    pending->name = strrchr (pending->key, '/') + 1;
    if (api_writer_key_busy (self, pending))
        return false;
    uint8_t *value = NULL;
    size_t size = 0;
    int64_t revision = 0;
    bool queued = false;
    zube_status_t status = s_read (self, pending->key, &value, &size, &revision);
    ProtobufCMessage *old =
        status == ZUBE_OK
            ? protobuf_c_message_unpack (kind->kind->descriptor, NULL, size, value)
            : NULL;
    if (!api_authorize (self, request, "delete", kind, NULL, ns, name, old, old))
        goto done;
    if (status != ZUBE_OK || !old) {
        if (status == ZUBE_NOT_FOUND)
            api_reply_not_found (self, request, kind, name);
        else if (status != ZUBE_OK)
            s_reply_store_error (self, request, status);
        else
            api_reply_error (self, request, ZUBE_INTERNAL, kind, name, NULL,
                             "the stored object cannot be decoded");
        goto done;
    }
    Zube__ObjectMeta *meta = api_meta_ensure (kind, old);
    if (req->preconditions) {
        const char *uid = req->preconditions->uid;
        if (uid && *uid && !(meta->uid && streq (meta->uid, uid))) {
            api_reply_error (self, request, ZUBE_CONFLICT, kind, name, NULL,
                             "Operation cannot be fulfilled on %s \"%s\": Precondition "
                             "failed: UID in precondition: %s, UID in object meta: %s",
                             kind->qualified, name, uid, meta->uid ? meta->uid : "");
            goto done;
        }
        const char *rv = req->preconditions->resource_version;
        if (rv && *rv && api_parse_rv (rv) != revision) {
            api_reply_error (
                self, request, ZUBE_CONFLICT, kind, name, NULL,
                "Operation cannot be fulfilled on %s \"%s\": Precondition "
                "failed: ResourceVersion in precondition: %s, ResourceVersion "
                "in object meta: %" PRId64,
                kind->qualified, name, rv, revision);
            goto done;
        }
    }
    pending->expect = revision;
    pending->conflict_final =
        req->preconditions && ((req->preconditions->resource_version &&
                                *req->preconditions->resource_version) ||
                               (req->preconditions->uid && *req->preconditions->uid));
    //  Propagation: the finalizers the garbage collector acts on
    bool finalizers_changed = s_propagation_finalizers (req, meta);
    //  Graceful deletion: what stays, with deletionTimestamp set
    bool graceful = false;
    char when[32];
    if (kind->is_namespace) {
        Zube__Namespace *ns_object = (Zube__Namespace *)old;
        bool finalized = (!ns_object->spec || ns_object->spec->n_finalizers == 0) &&
                         meta->n_finalizers == 0;
        if (!(meta->deletion_timestamp && finalized)) {
            if (meta->deletion_timestamp && !finalizers_changed) {
                api_reply_object (self, request, kind, value, size, revision);
                goto done;
            }
            graceful = true;
            api_timestamp (when, sizeof when, 0);
            api_set_string (&meta->deletion_timestamp, when);
            meta->has_deletion_grace_period_seconds = true;
            meta->deletion_grace_period_seconds = 0;
            if (!ns_object->status) {
                ns_object->status = malloc (sizeof (Zube__NamespaceStatus));
                zube__namespace_status__init (ns_object->status);
            }
            api_set_string (&ns_object->status->phase, "Terminating");
        }
    } else {
        int64_t grace = 0;
        bool bound_pod = false;
        if (kind->is_pod) {
            Zube__Pod *pod = (Zube__Pod *)old;
            bound_pod = pod->spec && pod->spec->node_name && *pod->spec->node_name;
            grace = req->has_grace_period_seconds ? req->grace_period_seconds
                    : pod->spec && pod->spec->has_termination_grace_period_seconds
                        ? pod->spec->termination_grace_period_seconds
                        : 30;
            if (grace < 0)
                grace = 0;
            //  Already terminating pods end on the grace period they have,
            //  unless the new one is shorter
            if (meta->has_deletion_grace_period_seconds && meta->deletion_timestamp &&
                meta->deletion_grace_period_seconds < grace)
                grace = meta->deletion_grace_period_seconds;
        }
        if (bound_pod && grace > 0) {
            if (meta->deletion_timestamp && meta->has_deletion_grace_period_seconds &&
                meta->deletion_grace_period_seconds <= grace && !finalizers_changed) {
                api_reply_object (self, request, kind, value, size, revision);
                goto done;
            }
            graceful = true;
            if (!(meta->deletion_timestamp && meta->has_deletion_grace_period_seconds &&
                  meta->deletion_grace_period_seconds <= grace)) {
                api_timestamp (when, sizeof when, grace);
                api_set_string (&meta->deletion_timestamp, when);
                meta->has_deletion_grace_period_seconds = true;
                meta->deletion_grace_period_seconds = grace;
            }
        } else if (meta->n_finalizers > 0) {
            if (meta->deletion_timestamp && !finalizers_changed) {
                api_reply_object (self, request, kind, value, size, revision);
                goto done;
            }
            graceful = true;
            if (!meta->deletion_timestamp) {
                api_timestamp (when, sizeof when, 0);
                api_set_string (&meta->deletion_timestamp, when);
                meta->has_deletion_grace_period_seconds = true;
                meta->deletion_grace_period_seconds = 0;
            }
        }
    }
    if (graceful) {
        if (s_pack (pending, kind, old) != 0) {
            zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
            goto done;
        }
        if (req->dry_run) {
            api_reply_object (self, request, kind, pending->value, pending->value_size,
                              revision);
            goto done;
        }
        pending->op = ZUBE_STORE_PUT;
        queued = true;
        goto done;
    }
    if (req->dry_run) {
        api_reply_object (self, request, kind, value, size, revision);
        goto done;
    }
    pending->op = ZUBE_STORE_DELETE;
    free (pending->reply);
    pending->reply = value;
    pending->reply_size = size;
    value = NULL;
    queued = true;
done:
    s_free_message (&old);
    free (value);
    return queued;
}

void
api_registry_delete (zube_apiserver_t *self, zube_bus_request_t *request)
{
    const api_kind_t *kind = NULL;
    Zube__DeleteRequest *req = (Zube__DeleteRequest *)s_unpack_with_kind (
        self, request, &zube__delete_request__descriptor, &kind);
    if (!req)
        return;
    s_queue_write (self, request, API_VERB_DELETE, kind, &req->base);
}

bool
api_registry_prepare (zube_apiserver_t *self, api_pending_t *pending)
{
    switch (pending->verb) {
    case API_VERB_CREATE:
        return s_prepare_create (self, pending);
    case API_VERB_UPDATE:
        return s_prepare_update (self, pending);
    case API_VERB_PATCH:
        return s_prepare_patch (self, pending);
    case API_VERB_DELETE:
        return s_prepare_delete (self, pending);
    default:
        zube_bus_respond_error (pending->request, ZUBE_INTERNAL, "not a write");
        return false;
    }
}

//  ---------------------------------------------------------------------
//  The default namespaces, and the namespace cache

static int
s_namespace_cache_item (void *arg, const zube_store_kv_t *kv)
{
    zube_apiserver_t *self = (zube_apiserver_t *)arg;
    Zube__Namespace *ns = zube__namespace__unpack (NULL, kv->value_size, kv->value);
    if (!ns)
        return 0;
    if (ns->metadata && ns->metadata->name)
        zhashx_update (self->namespaces, ns->metadata->name,
                       ns->status && ns->status->phase &&
                               streq (ns->status->phase, "Terminating")
                           ? "Terminating"
                           : "Active");
    zube__namespace__free_unpacked (ns, NULL);
    return 0;
}

int
api_registry_bootstrap (zube_apiserver_t *self)
{
    //  As Kubernetes' system namespaces controller: the four always exist
    static const char *names[] = {"default", "kube-system", "kube-public",
                                  "kube-node-lease"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        Zube__Namespace ns = ZUBE__NAMESPACE__INIT;
        Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
        Zube__NamespaceSpec spec = ZUBE__NAMESPACE_SPEC__INIT;
        Zube__NamespaceStatus status = ZUBE__NAMESPACE_STATUS__INIT;
        char uid[40], now[32];
        api_uuid (uid);
        api_timestamp (now, sizeof now, 0);
        char *finalizers[] = {"kubernetes"};
        ns.api_version = "v1";
        ns.kind = "Namespace";
        ns.metadata = &meta;
        ns.spec = &spec;
        ns.status = &status;
        meta.name = (char *)names[i];
        meta.uid = uid;
        meta.creation_timestamp = now;
        meta.has_generation = true;
        meta.generation = 1;
        spec.n_finalizers = 1;
        spec.finalizers = finalizers;
        status.phase = "Active";
        uint8_t buffer[512];
        size_t size = zube__namespace__pack (&ns, buffer);
        char key[128];
        snprintf (key, sizeof key, "/registry/namespaces/%s", names[i]);
        if (zube_store_get (self->store, key, NULL, NULL, NULL) == ZUBE_OK)
            continue;
        zube_status_t rc = zube_store_put (self->store, key, buffer, size, 0, NULL);
        if (rc != ZUBE_OK && rc != ZUBE_CONFLICT)
            return -1;
        if (rc == ZUBE_OK)
            zube_log_info ("msg=\"namespace created\" name=%s", names[i]);
    }
    zube_store_range_t range = {.prefix = "/registry/namespaces/"};
    zube_store_range_result_t result;
    return zube_store_range (self->store, &range, s_namespace_cache_item, self,
                             &result) == ZUBE_OK
               ? 0
               : -1;
}
