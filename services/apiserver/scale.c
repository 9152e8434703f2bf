/*  scale - the scale subresource (autoscaling/v1 Scale) of any kind whose
    spec has `replicas` (int32) and a LabelSelector `selector`, and whose
    status has `replicas`: today deployments and replicasets.

    As Kubernetes' scale REST storage: a Scale is a view of its parent.
    Its metadata is the parent's (name, namespace, uid, resourceVersion,
    creationTimestamp), spec.replicas the parent's spec.replicas,
    status.replicas the parent's status.replicas and status.selector the
    parent's selector as a string. Writing a Scale writes spec.replicas
    of the parent, at the parent's resourceVersion; every reply to a
    request on the subresource is the Scale of the parent as stored. */
#define _GNU_SOURCE
#include "apiserver_private.h"
#include "strategy_private.h"
#include "zube/selector.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The int32 `replicas` field of a spec or status message, or NULL.
static const ProtobufCFieldDescriptor *
s_replicas_field (const ProtobufCMessageDescriptor *descriptor)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (descriptor, "replicas");
    return field && field->type == PROTOBUF_C_TYPE_INT32 &&
                   field->label == PROTOBUF_C_LABEL_OPTIONAL
               ? field
               : NULL;
}

//  The descriptor of the message field name of descriptor, or NULL.
static const ProtobufCMessageDescriptor *
s_message_field (const ProtobufCMessageDescriptor *descriptor, const char *name)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (descriptor, name);
    return field && field->type == PROTOBUF_C_TYPE_MESSAGE &&
                   field->label != PROTOBUF_C_LABEL_REPEATED
               ? field->descriptor
               : NULL;
}

bool
api_scale_supported (const api_kind_t *kind)
{
    const ProtobufCMessageDescriptor *spec =
        s_message_field (kind->kind->descriptor, "spec");
    const ProtobufCMessageDescriptor *status =
        s_message_field (kind->kind->descriptor, "status");
    return spec && status && s_replicas_field (spec) && s_replicas_field (status) &&
           s_message_field (spec, "selector") == &zube__label_selector__descriptor;
}

//  replicas of a spec or status (NULL: absent), with whether it is set.
static bool
s_replicas_get (const ProtobufCMessage *part, int32_t *replicas_p)
{
    *replicas_p = 0;
    if (!part)
        return false;
    const ProtobufCFieldDescriptor *field = s_replicas_field (part->descriptor);
    bool has = *(const protobuf_c_boolean *)((const char *)part + field->quantifier_offset);
    if (has)
        *replicas_p = *(const int32_t *)((const char *)part + field->offset);
    return has;
}

bool
api_scale_wanted (zube_bus_request_t *request)
{
    const char *method = zube_bus_request_method (request);
    const ProtobufCMessageDescriptor *descriptor =
        streq (method, "get")      ? &zube__get_request__descriptor
        : streq (method, "update") ? &zube__update_request__descriptor
        : streq (method, "patch")  ? &zube__patch_request__descriptor
                                   : NULL;
    if (!descriptor)
        return false;
    //  Most requests never name it: look for the bytes before unpacking
    size_t size = 0;
    const uint8_t *payload = zube_bus_request_payload (request, &size);
    if (!payload || !memmem (payload, size, "scale", 5))
        return false;
    ProtobufCMessage *req = zube_bus_request_unpack (request, descriptor);
    if (!req)
        return false;
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (descriptor, "subresource");
    const char *subresource = *(const char *const *)((const char *)req + field->offset);
    bool wanted = subresource && streq (subresource, "scale");
    protobuf_c_message_free_unpacked (req, NULL);
    return wanted;
}

int
api_scale_of (const api_kind_t *kind, const ProtobufCMessage *object, int64_t rv,
              Zube__Scale **scale_p)
{
    Zube__Scale *scale = calloc (1, sizeof *scale);
    Zube__ObjectMeta *meta = scale ? calloc (1, sizeof *meta) : NULL;
    Zube__ScaleSpec *spec = meta ? calloc (1, sizeof *spec) : NULL;
    Zube__ScaleStatus *status = spec ? calloc (1, sizeof *status) : NULL;
    if (!status) {
        free (scale);
        free (meta);
        free (spec);
        return -1;
    }
    zube__scale__init (scale);
    zube__object_meta__init (meta);
    zube__scale_spec__init (spec);
    zube__scale_status__init (status);
    scale->metadata = meta;
    scale->spec = spec;
    scale->status = status;
    api_set_string (&scale->api_version, "autoscaling/v1");
    api_set_string (&scale->kind, "Scale");
    const Zube__ObjectMeta *parent = api_meta (kind, object);
    if (parent) {
        api_set_string (&meta->name, parent->name);
        api_set_string (&meta->namespace_, parent->namespace_);
        api_set_string (&meta->uid, parent->uid);
        api_set_string (&meta->creation_timestamp, parent->creation_timestamp);
    }
    char rv_text[24];
    api_format_rv (rv_text, rv);
    api_set_string (&meta->resource_version, rv_text);
    const ProtobufCMessage *parent_spec = *api_field (object, kind->spec_offset);
    const ProtobufCMessage *parent_status = *api_field (object, kind->status_offset);
    spec->has_replicas = true;
    s_replicas_get (parent_spec, &spec->replicas);
    status->has_replicas = true;
    s_replicas_get (parent_status, &status->replicas);
    if (parent_spec) {
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name (parent_spec->descriptor,
                                                             "selector");
        const Zube__LabelSelector *selector =
            *(const Zube__LabelSelector *const *)((const char *)parent_spec +
                                                  field->offset);
        zube_selector_t *parsed = NULL;
        char error[256];
        if (selector &&
            zube_selector_from_message (selector, &parsed, error, sizeof error) == 0) {
            status->selector = zube_selector_string (parsed);
            zube_selector_destroy (&parsed);
        }
    }
    *scale_p = scale;
    return 0;
}

void
api_scale_reply (zube_apiserver_t *self, zube_bus_request_t *request,
                 const api_kind_t *kind, const void *value, size_t size, int64_t rv)
{
    ProtobufCMessage *object =
        protobuf_c_message_unpack (kind->kind->descriptor, NULL, size, value);
    Zube__Scale *scale = NULL;
    if (!object || api_scale_of (kind, object, rv, &scale) != 0) {
        if (object)
            protobuf_c_message_free_unpacked (object, NULL);
        zube_bus_respond_error (request, ZUBE_INTERNAL,
                                "the stored object cannot be decoded");
        return;
    }
    protobuf_c_message_free_unpacked (object, NULL);
    size_t scale_size = zube__scale__get_packed_size (scale);
    uint8_t *packed_scale = api_scratch (&self->scratch, &self->scratch_size, scale_size);
    if (!packed_scale) {
        zube__scale__free_unpacked (scale, NULL);
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        return;
    }
    zube__scale__pack (scale, packed_scale);
    zube__scale__free_unpacked (scale, NULL);
    api_reply_packed (self, request, "Scale", "autoscaling/v1", packed_scale, scale_size,
                      rv);
}

ProtobufCMessage *
api_scale_apply (const api_kind_t *kind, const ProtobufCMessage *old, int32_t replicas)
{
    ProtobufCMessage *object = strategy_message_copy (old);
    if (!object)
        return NULL;
    ProtobufCMessage **spec = api_field (object, kind->spec_offset);
    if (!*spec) {
        const ProtobufCMessageDescriptor *descriptor =
            s_message_field (kind->kind->descriptor, "spec");
        *spec = malloc (descriptor->sizeof_message);
        if (!*spec) {
            protobuf_c_message_free_unpacked (object, NULL);
            return NULL;
        }
        protobuf_c_message_init (descriptor, *spec);
    }
    const ProtobufCFieldDescriptor *field = s_replicas_field ((*spec)->descriptor);
    *(protobuf_c_boolean *)((char *)*spec + field->quantifier_offset) = true;
    *(int32_t *)((char *)*spec + field->offset) = replicas;
    return object;
}
