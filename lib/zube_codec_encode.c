/*  zube_codec_encode - any protobuf-c message to YAML or JSON.

    Walks a message in descriptor order (apiVersion and kind first on an
    object), skips absent fields, and drives a writer
    (lib/zube_codec_write.c). Quantity, IntOrString and RawExtension are
    written as the values Kubernetes writes, maps as mappings, bytes as
    base64. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.pb-c.h"
#include "zube/quantity.h"
#include "zube_codec_private.h"

static void s_encode_message (zc_writer_t *writer, const ProtobufCMessage *msg,
                              const ProtobufCMessageDescriptor *descriptor, bool top);

static bool
s_field_present (const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
    const char *member = (const char *)msg + field->offset;
    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)((const char *)msg + field->quantifier_offset) > 0;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)((const char *)msg + field->quantifier_offset) ==
               field->id;
    if (field->type == PROTOBUF_C_TYPE_STRING) {
        const char *text = *(char *const *)member;
        return text && (field->label == PROTOBUF_C_LABEL_REQUIRED ||
                        text != field->default_value);
    }
    if (field->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void *const *)member != NULL;
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)((const char *)msg +
                                             field->quantifier_offset);
    if (field->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    //  proto3 implicit presence: non-zero
    size_t size = zc_element_size (field);
    if (field->type == PROTOBUF_C_TYPE_BYTES)
        return ((const ProtobufCBinaryData *)member)->len > 0;
    for (size_t i = 0; i < size; i++)
        if (member[i])
            return true;
    return false;
}

static void
s_encode_double (zc_writer_t *writer, double value, bool single)
{
    if (isnan (value)) {
        zc_writer_string (writer, "NaN", 3);
        return;
    }
    if (isinf (value)) {
        zc_writer_string (writer, value > 0 ? "Infinity" : "-Infinity",
                          value > 0 ? 8 : 9);
        return;
    }
    char text[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf (text, sizeof text, "%.*g", precision, value);
        double back = strtod (text, NULL);
        if (single ? (float)back == (float)value : back == value)
            break;
    }
    zc_writer_literal (writer, text);
}

static void
s_encode_base64 (zc_writer_t *writer, const ProtobufCBinaryData *data)
{
    size_t size = (data->len + 2) / 3 * 4;
    char *text = malloc (size + 1);
    if (!text) {
        zc_writer_fail (writer);
        return;
    }
    size_t out = 0;
    for (size_t i = 0; i < data->len; i += 3) {
        uint32_t bits = (uint32_t)data->data[i] << 16;
        if (i + 1 < data->len)
            bits |= (uint32_t)data->data[i + 1] << 8;
        if (i + 2 < data->len)
            bits |= data->data[i + 2];
        text[out++] = zc_base64_alphabet[(bits >> 18) & 63];
        text[out++] = zc_base64_alphabet[(bits >> 12) & 63];
        text[out++] = i + 1 < data->len ? zc_base64_alphabet[(bits >> 6) & 63] : '=';
        text[out++] = i + 2 < data->len ? zc_base64_alphabet[bits & 63] : '=';
    }
    text[out] = 0;
    zc_writer_string (writer, text, out);
    free (text);
}

//  A scalar's text, for map keys and numbers
static void
s_scalar_text (const ProtobufCFieldDescriptor *field, const void *member, char *text,
               size_t size)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf (text, size, "%" PRId32, *(const int32_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf (text, size, "%" PRIu32, *(const uint32_t *)member);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf (text, size, "%" PRId64, *(const int64_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf (text, size, "%" PRIu64, *(const uint64_t *)member);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        snprintf (text, size, "%s",
                  *(const protobuf_c_boolean *)member ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value (
            field->descriptor, *(const int *)member);
        if (value)
            snprintf (text, size, "%s", value->name);
        else
            snprintf (text, size, "%d", *(const int *)member);
        break;
    }
    default:
        text[0] = 0;
    }
}

static void
s_encode_value (zc_writer_t *writer, const ProtobufCFieldDescriptor *field,
                const void *member)
{
    char text[64];
    switch (field->type) {
    case PROTOBUF_C_TYPE_FLOAT:
        s_encode_double (writer, *(const float *)member, true);
        return;
    case PROTOBUF_C_TYPE_DOUBLE:
        s_encode_double (writer, *(const double *)member, false);
        return;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value (
            field->descriptor, *(const int *)member);
        s_scalar_text (field, member, text, sizeof text);
        if (value)
            zc_writer_string (writer, text, strlen (text));
        else
            zc_writer_literal (writer, text);
        return;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *string = *(char *const *)member;
        zc_writer_string (writer, string ? string : "", string ? strlen (string) : 0);
        return;
    }
    case PROTOBUF_C_TYPE_BYTES:
        s_encode_base64 (writer, member);
        return;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
        s_encode_message (writer, sub, field->descriptor, false);
        return;
    }
    default:
        s_scalar_text (field, member, text, sizeof text);
        zc_writer_literal (writer, text);
    }
}

static void
s_encode_map (zc_writer_t *writer, const ProtobufCMessage *msg,
              const ProtobufCFieldDescriptor *field)
{
    size_t count = *(const size_t *)((const char *)msg + field->quantifier_offset);
    ProtobufCMessage *const *entries =
        *(ProtobufCMessage *const *const *)((const char *)msg + field->offset);
    const ProtobufCMessageDescriptor *entry_descriptor = field->descriptor;
    const ProtobufCFieldDescriptor *key_field = &entry_descriptor->fields[0];
    const ProtobufCFieldDescriptor *value_field = &entry_descriptor->fields[1];
    zc_writer_mapping_start (writer);
    for (size_t i = 0; i < count; i++) {
        const ProtobufCMessage *entry = entries[i];
        if (!entry)
            continue;
        const void *key_member = (const char *)entry + key_field->offset;
        if (key_field->type == PROTOBUF_C_TYPE_STRING) {
            const char *key = *(char *const *)key_member;
            zc_writer_key (writer, key ? key : "", key ? strlen (key) : 0);
        } else {
            char text[64];
            s_scalar_text (key_field, key_member, text, sizeof text);
            zc_writer_key (writer, text, strlen (text));
        }
        //  A missing value is the zero value, which the member holds
        s_encode_value (writer, value_field, (const char *)entry + value_field->offset);
    }
    zc_writer_mapping_end (writer);
}

static void
s_encode_field (zc_writer_t *writer, const ProtobufCMessage *msg,
                const ProtobufCFieldDescriptor *field, const char *name)
{
    zc_writer_key (writer, name, strlen (name));
    const char *member = (const char *)msg + field->offset;
    if (field->label != PROTOBUF_C_LABEL_REPEATED) {
        s_encode_value (writer, field, member);
        return;
    }
    if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
        zc_info_t *info = zc_info (field->descriptor);
        if (!info) {
            zc_writer_fail (writer);
            return;
        }
        if (info->special == ZC_SPECIAL_MAP_ENTRY) {
            s_encode_map (writer, msg, field);
            return;
        }
    }
    size_t count = *(const size_t *)((const char *)msg + field->quantifier_offset);
    const char *array = *(char *const *)member;
    size_t element_size = zc_element_size (field);
    zc_writer_sequence_start (writer);
    for (size_t i = 0; i < count; i++)
        s_encode_value (writer, field, array + i * element_size);
    zc_writer_sequence_end (writer);
}

static void
s_encode_tree (zc_writer_t *writer, const zc_node_t *node)
{
    if (node->type == ZC_MAPPING) {
        zc_writer_mapping_start (writer);
        for (size_t i = 0; i < node->count; i += 2) {
            zc_writer_key (writer, node->items[i]->text, node->items[i]->length);
            s_encode_tree (writer, node->items[i + 1]);
        }
        zc_writer_mapping_end (writer);
    } else if (node->type == ZC_SEQUENCE) {
        zc_writer_sequence_start (writer);
        for (size_t i = 0; i < node->count; i++)
            s_encode_tree (writer, node->items[i]);
        zc_writer_sequence_end (writer);
    } else if (node->kind == ZC_STRING)
        zc_writer_string (writer, node->text, node->length);
    else
        zc_writer_literal (writer, node->text);
}

static void
s_encode_special (zc_writer_t *writer, const ProtobufCMessage *msg, zc_special_t special)
{
    if (special == ZC_SPECIAL_QUANTITY) {
        const Zube__Quantity *quantity = (const Zube__Quantity *)msg;
        char text[32];
        if (quantity && quantity->string)
            zc_writer_string (writer, quantity->string, strlen (quantity->string));
        else {
            zube_quantity_format (
                quantity && quantity->has_milli_value ? quantity->milli_value : 0, false,
                text, sizeof text);
            zc_writer_string (writer, text, strlen (text));
        }
    } else if (special == ZC_SPECIAL_INT_OR_STRING) {
        const Zube__IntOrString *value = (const Zube__IntOrString *)msg;
        char text[16];
        if (value && value->str_val && !value->has_int_val)
            zc_writer_string (writer, value->str_val, strlen (value->str_val));
        else {
            snprintf (text, sizeof text, "%" PRId32, value ? value->int_val : 0);
            zc_writer_literal (writer, text);
        }
    } else {
        const Zube__RawExtension *raw = (const Zube__RawExtension *)msg;
        if (!raw || !raw->json) {
            zc_writer_literal (writer, "null");
            return;
        }
        zc_document_t document;
        if (zc_json_parse (raw->json, strlen (raw->json), &document, NULL)) {
            zc_writer_fail (writer);
            return;
        }
        s_encode_tree (writer, document.root);
        zc_document_clear (&document);
    }
}

static void
s_encode_message (zc_writer_t *writer, const ProtobufCMessage *msg,
                  const ProtobufCMessageDescriptor *descriptor, bool top)
{
    zc_info_t *info = zc_info (descriptor);
    if (!info) {
        zc_writer_fail (writer);
        return;
    }
    if (info->special != ZC_SPECIAL_NONE && info->special != ZC_SPECIAL_MAP_ENTRY) {
        s_encode_special (writer, msg, info->special);
        return;
    }
    zc_writer_mapping_start (writer);
    if (msg) {
        //  apiVersion and kind lead a top-level object, as in Kubernetes
        int first[2] = {-1, -1};
        if (top)
            for (unsigned i = 0; i < descriptor->n_fields; i++) {
                if (strcmp (descriptor->fields[i].name, "api_version") == 0)
                    first[0] = (int)i;
                else if (strcmp (descriptor->fields[i].name, "kind") == 0)
                    first[1] = (int)i;
            }
        if (first[0] < 0)
            first[1] = -1; //  not an object: a plain "kind" field keeps its place
        for (int k = 0; k < 2; k++)
            if (first[k] >= 0 && s_field_present (msg, &descriptor->fields[first[k]]))
                s_encode_field (writer, msg, &descriptor->fields[first[k]],
                                info->names[first[k]]);
        for (unsigned i = 0; i < descriptor->n_fields; i++)
            if ((int)i != first[0] && (int)i != first[1] &&
                s_field_present (msg, &descriptor->fields[i]))
                s_encode_field (writer, msg, &descriptor->fields[i], info->names[i]);
    }
    zc_writer_mapping_end (writer);
}

static char *
s_encode (zc_writer_t *writer, const ProtobufCMessage *msg)
{
    if (!writer)
        return NULL;
    if (!msg) {
        zc_writer_destroy (&writer);
        return NULL;
    }
    s_encode_message (writer, msg, msg->descriptor, true);
    return zc_writer_finish (&writer);
}

char *
zube_codec_encode_yaml (const ProtobufCMessage *msg)
{
    return s_encode (zc_writer_new_yaml (), msg);
}

char *
zube_codec_encode_json (const ProtobufCMessage *msg, bool pretty)
{
    return s_encode (zc_writer_new_json (pretty), msg);
}
