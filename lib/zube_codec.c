/*  zube_codec - YAML and JSON to and from any protobuf-c message.

    This file decodes: it walks a document's node tree (read by
    lib/zube_codec_read.c) against a message descriptor, looking fields up
    in the per-descriptor name cache (lib/zube_codec_names.c), and
    dispatches manifest streams through the kinds registry. Encoding is in
    lib/zube_codec_encode.c.

    Decoding allocates with malloc in the shape protobuf-c's own unpacker
    leaves, so protobuf_c_message_free_unpacked (msg, NULL) frees a result,
    and frees a half-built message when a document fails halfway. */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.pb-c.h"
#include "zube/quantity.h"
#include "zube_codec_private.h"

//  ---------------------------------------------------------------------
//  Errors

const char *
zube_codec_error_format (const zube_codec_error_t *error, char *buf, size_t size)
{
    if (!buf || !size)
        return buf;
    size_t used = 0;
    buf[0] = 0;
#define S_APPEND(...)                                                                    \
    do {                                                                                 \
        int n_ = snprintf (buf + used, size - used, __VA_ARGS__);                        \
        if (n_ > 0)                                                                      \
            used = used + (size_t)n_ < size ? used + (size_t)n_ : size - 1;              \
    } while (0)
    if (error->document > 0)
        S_APPEND ("document %d, ", error->document);
    if (error->line > 0)
        S_APPEND ("line %d, column %d: ", error->line, error->column);
    if (error->field[0])
        S_APPEND ("%s: ", error->field);
    S_APPEND ("%s", error->message);
#undef S_APPEND
    return buf;
}

//  ---------------------------------------------------------------------
//  Decoding

typedef struct {
    zube_codec_error_t *error;
    const zube_codec_limits_t *limits;
    int document;
    int depth;
    char path[1024];
    size_t path_length;
} s_decoder_t;

static int s_fail (s_decoder_t *self, const zc_node_t *node, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (s_decoder_t *self, const zc_node_t *node, const char *format, ...)
{
    zube_codec_error_t *error = self->error;
    if (!error)
        return -1;
    error->document = self->document;
    error->line = node ? node->line : 0;
    error->column = node ? node->column : 0;
    if (self->path_length < sizeof error->field)
        memcpy (error->field, self->path, self->path_length + 1);
    else {
        memcpy (error->field, self->path, sizeof error->field - 4);
        strcpy (error->field + sizeof error->field - 4, "...");
    }
    va_list args;
    va_start (args, format);
    vsnprintf (error->message, sizeof error->message, format, args);
    va_end (args);
    return -1;
}

//  Appends ".name" (or "name" at the start), "[index]" or "[key]" to the
//  path; returns the length to restore.
static size_t s_path_push (s_decoder_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static size_t
s_path_push (s_decoder_t *self, const char *format, ...)
{
    size_t saved = self->path_length;
    if (saved < sizeof self->path - 1) {
        va_list args;
        va_start (args, format);
        int n = vsnprintf (self->path + saved, sizeof self->path - saved, format, args);
        va_end (args);
        if (n > 0)
            self->path_length = saved + (size_t)n < sizeof self->path
                                    ? saved + (size_t)n
                                    : sizeof self->path - 1;
    }
    return saved;
}

static size_t
s_path_push_field (s_decoder_t *self, const char *name, size_t length)
{
    return s_path_push (self, "%s%.*s", self->path_length ? "." : "", (int)length, name);
}

static void
s_path_pop (s_decoder_t *self, size_t saved)
{
    self->path_length = saved;
    self->path[saved] = 0;
}

static const char *
s_got (const zc_node_t *node)
{
    if (node->type == ZC_MAPPING)
        return "a mapping";
    if (node->type == ZC_SEQUENCE)
        return "a sequence";
    switch (node->kind) {
    case ZC_NULL:
        return "null";
    case ZC_BOOL:
        return "a boolean";
    case ZC_INT:
    case ZC_FLOAT:
        return "a number";
    default:
        return "a string";
    }
}

static int
s_wrong_type (s_decoder_t *self, const zc_node_t *node, const char *expected)
{
    if (node->type == ZC_SCALAR && node->kind != ZC_STRING && node->kind != ZC_NULL)
        return s_fail (self, node, "expected %s, got %s (%.64s)", expected, s_got (node),
                       node->text);
    return s_fail (self, node, "expected %s, got %s", expected, s_got (node));
}

static bool
s_is_null (const zc_node_t *node)
{
    return node->type == ZC_SCALAR && node->kind == ZC_NULL;
}

//  An integer scalar as sign and magnitude; -1 if not an integer, -2 if
//  its magnitude exceeds 64 bits.
static int
s_parse_integer (const zc_node_t *node, bool *negative_p, uint64_t *magnitude_p)
{
    if (node->type != ZC_SCALAR || node->kind != ZC_INT)
        return -1;
    const char *p = node->text;
    bool negative = false;
    if (*p == '-' || *p == '+')
        negative = *p++ == '-';
    unsigned base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) {
        base = p[1] == 'x' ? 16 : 8;
        p += 2;
    }
    uint64_t magnitude = 0;
    for (; *p; p++) {
        unsigned digit = *p >= '0' && *p <= '9'   ? (unsigned)(*p - '0')
                         : *p >= 'a' && *p <= 'f' ? (unsigned)(*p - 'a' + 10)
                                                  : (unsigned)(*p - 'A' + 10);
        if (magnitude > (UINT64_MAX - digit) / base)
            return -2;
        magnitude = magnitude * base + digit;
    }
    *negative_p = negative && magnitude != 0;
    *magnitude_p = magnitude;
    return 0;
}

static int
s_decode_integer (s_decoder_t *self, const zc_node_t *node, const char *type_name,
                  int64_t min, uint64_t max, bool *negative_p, uint64_t *magnitude_p)
{
    if (node->type != ZC_SCALAR || node->kind != ZC_INT)
        return s_wrong_type (self, node, "an integer");
    int rc = s_parse_integer (node, negative_p, magnitude_p);
    bool in_range =
        rc == 0 && (*negative_p ? min < 0 && *magnitude_p <= (uint64_t) - (min + 1) + 1
                                : *magnitude_p <= max);
    if (!in_range)
        return s_fail (self, node,
                       "integer %.64s is out of range for %s (%" PRId64 " to %" PRIu64
                       ")",
                       node->text, type_name, min, max);
    return 0;
}

static int
s_decode_double (s_decoder_t *self, const zc_node_t *node, bool single, double *value_p)
{
    const char *text = node->text;
    if (node->type == ZC_SCALAR && node->kind == ZC_STRING) {
        //  What the encoder writes for values JSON has no numbers for
        if (strcmp (text, "NaN") == 0)
            *value_p = NAN;
        else if (strcmp (text, "Infinity") == 0)
            *value_p = INFINITY;
        else if (strcmp (text, "-Infinity") == 0)
            *value_p = -INFINITY;
        else
            return s_wrong_type (self, node, "a number");
        return 0;
    }
    if (node->type != ZC_SCALAR || (node->kind != ZC_INT && node->kind != ZC_FLOAT))
        return s_wrong_type (self, node, "a number");
    if (node->kind == ZC_INT) {
        bool negative;
        uint64_t magnitude;
        if (s_parse_integer (node, &negative, &magnitude) == 0) {
            *value_p = negative ? -(double)magnitude : (double)magnitude;
            return 0;
        }
    }
    const char *p = text + (*text == '+' || *text == '-');
    bool negative = *text == '-';
    double value;
    if (p[0] == '.' && (p[1] == 'i' || p[1] == 'I'))
        value = negative ? -INFINITY : INFINITY;
    else if (p[0] == '.' && (p[1] == 'n' || p[1] == 'N'))
        value = NAN;
    else {
        errno = 0;
        value = strtod (text, NULL);
        if (errno == ERANGE && isinf (value))
            return s_fail (self, node, "number %.64s is out of range for %s", text,
                           single ? "float" : "double");
        if (single && isfinite (value) && (value > FLT_MAX || value < -FLT_MAX))
            return s_fail (self, node, "number %.64s is out of range for float", text);
    }
    *value_p = value;
    return 0;
}

//  Standard base64 with padding, as Go's encoding/json reads []byte;
//  line breaks are ignored.
static int
s_decode_base64 (s_decoder_t *self, const zc_node_t *node, ProtobufCBinaryData *out)
{
    const char *text = node->text;
    size_t length = node->length;
    uint8_t *data = malloc (length / 4 * 3 + 3);
    if (!data)
        return s_fail (self, node, "out of memory");
    size_t size = 0, quad = 0, padding = 0;
    uint32_t bits = 0;
    for (size_t i = 0; i < length; i++) {
        char c = text[i];
        if (c == '\r' || c == '\n')
            continue;
        const char *found = c ? strchr (zc_base64_alphabet, c) : NULL;
        if (c == '=' && quad >= 2) {
            padding++;
            bits <<= 6;
            quad++;
        } else if (found && !padding) {
            bits = (bits << 6) | (uint32_t)(found - zc_base64_alphabet);
            quad++;
        } else {
            free (data);
            return s_fail (self, node, "illegal base64 data at input byte %zu", i);
        }
        if (quad == 4) {
            data[size++] = (uint8_t)(bits >> 16);
            if (padding < 2)
                data[size++] = (uint8_t)(bits >> 8);
            if (padding < 1)
                data[size++] = (uint8_t)bits;
            quad = 0;
            bits = 0;
            if (padding) {
                //  Nothing may follow the padding
                for (size_t j = i + 1; j < length; j++)
                    if (text[j] != '\r' && text[j] != '\n') {
                        free (data);
                        return s_fail (self, node,
                                       "illegal base64 data at input byte %zu", j);
                    }
                break;
            }
        }
    }
    if (quad != 0) {
        free (data);
        return s_fail (self, node, "illegal base64 data at input byte %zu", length);
    }
    out->data = data;
    out->len = size;
    if (size == 0) {
        free (data);
        out->data = NULL;
    }
    return 0;
}

//  A JSON number from a YAML number: YAML allows +1, 007, 0x1f, .5, 1.
static int
s_raw_number (s_decoder_t *self, const zc_node_t *node, zc_buffer_t *out)
{
    bool negative;
    uint64_t magnitude;
    if (node->kind == ZC_INT) {
        int rc = s_parse_integer (node, &negative, &magnitude);
        if (rc == 0) {
            char text[32];
            snprintf (text, sizeof text, "%s%" PRIu64, negative ? "-" : "", magnitude);
            zc_buffer_append_str (out, text);
            return 0;
        }
    }
    double value;
    if (s_decode_double (self, node, false, &value))
        return -1;
    if (!isfinite (value))
        return s_fail (self, node, "%s cannot be written in JSON", node->text);
    char text[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf (text, sizeof text, "%.*g", precision, value);
        if (strtod (text, NULL) == value)
            break;
    }
    zc_buffer_append_str (out, text);
    return 0;
}

//  Any subtree as compact JSON, for RawExtension
static int
s_raw_json (s_decoder_t *self, const zc_node_t *node, zc_buffer_t *out)
{
    if (self->depth >= self->limits->max_depth)
        return s_fail (self, node, "nesting is deeper than the limit of %d levels",
                       self->limits->max_depth);
    int rc = 0;
    self->depth++;
    if (node->type == ZC_MAPPING) {
        zc_strmap_t seen = {0};
        zc_buffer_append (out, "{", 1);
        for (size_t i = 0; i < node->count && rc == 0; i += 2) {
            const zc_node_t *key = node->items[i];
            if (key->type != ZC_SCALAR) {
                rc = s_fail (self, key, "expected a string key, got %s", s_got (key));
                break;
            }
            const zc_node_t *first = zc_strmap_get (&seen, key->text, key->length);
            if (first) {
                size_t saved = s_path_push_field (self, key->text, key->length);
                rc =
                    s_fail (self, key, "duplicate field \"%.64s\" (first set at line %d)",
                            key->text, first->line);
                s_path_pop (self, saved);
                break;
            }
            zc_strmap_put (&seen, key->text, key->length, (void *)key);
            if (i)
                zc_buffer_append (out, ",", 1);
            zc_buffer_append_json_string (out, key->text, key->length);
            zc_buffer_append (out, ":", 1);
            size_t saved = s_path_push_field (self, key->text, key->length);
            rc = s_raw_json (self, node->items[i + 1], out);
            if (rc == 0)
                s_path_pop (self, saved);
        }
        zc_buffer_append (out, "}", 1);
        zc_strmap_clear (&seen);
    } else if (node->type == ZC_SEQUENCE) {
        zc_buffer_append (out, "[", 1);
        for (size_t i = 0; i < node->count && rc == 0; i++) {
            if (i)
                zc_buffer_append (out, ",", 1);
            size_t saved = s_path_push (self, "[%zu]", i);
            rc = s_raw_json (self, node->items[i], out);
            if (rc == 0)
                s_path_pop (self, saved);
        }
        zc_buffer_append (out, "]", 1);
    } else if (node->kind == ZC_STRING)
        zc_buffer_append_json_string (out, node->text, node->length);
    else if (node->kind == ZC_NULL)
        zc_buffer_append_str (out, "null");
    else if (node->kind == ZC_BOOL)
        zc_buffer_append_str (
            out, node->text[0] == 't' || node->text[0] == 'T' ? "true" : "false");
    else
        rc = s_raw_number (self, node, out);
    self->depth--;
    return rc;
}

static int s_decode_message (s_decoder_t *self, const zc_node_t *node,
                             const ProtobufCMessageDescriptor *descriptor,
                             ProtobufCMessage **msg_p);

static ProtobufCMessage *
s_message_new (const ProtobufCMessageDescriptor *descriptor)
{
    ProtobufCMessage *msg = malloc (descriptor->sizeof_message);
    if (msg)
        protobuf_c_message_init (descriptor, msg);
    return msg;
}

//  The zero value of a field's type, for a null in a sequence or map
static int
s_zero_value (s_decoder_t *self, const zc_node_t *node,
              const ProtobufCFieldDescriptor *field, void *member)
{
    if (field->type == PROTOBUF_C_TYPE_STRING) {
        if (!(*(char **)member = strdup ("")))
            return s_fail (self, node, "out of memory");
    } else if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (!(*(ProtobufCMessage **)member = s_message_new (field->descriptor)))
            return s_fail (self, node, "out of memory");
    }
    return 0;
}

//  One value of a field's type into member (an element or a singular
//  field's storage). member is written only on success.
static int
s_decode_value (s_decoder_t *self, const zc_node_t *node,
                const ProtobufCFieldDescriptor *field, void *member)
{
    bool negative;
    uint64_t magnitude;
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (s_decode_integer (self, node, "int32", INT32_MIN, INT32_MAX, &negative,
                              &magnitude))
            return -1;
        *(int32_t *)member =
            negative ? (int32_t)(-(int64_t)magnitude) : (int32_t)magnitude;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (s_decode_integer (self, node, "uint32", 0, UINT32_MAX, &negative, &magnitude))
            return -1;
        *(uint32_t *)member = (uint32_t)magnitude;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (s_decode_integer (self, node, "int64", INT64_MIN, INT64_MAX, &negative,
                              &magnitude))
            return -1;
        *(int64_t *)member = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (s_decode_integer (self, node, "uint64", 0, UINT64_MAX, &negative, &magnitude))
            return -1;
        *(uint64_t *)member = magnitude;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double value;
        if (s_decode_double (self, node, field->type == PROTOBUF_C_TYPE_FLOAT, &value))
            return -1;
        if (field->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)member = (float)value;
        else
            *(double *)member = value;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (node->type != ZC_SCALAR || node->kind != ZC_BOOL)
            return s_wrong_type (self, node, "a boolean (true or false)");
        *(protobuf_c_boolean *)member = node->text[0] == 't' || node->text[0] == 'T';
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *enum_descriptor = field->descriptor;
        if (node->type != ZC_SCALAR)
            return s_wrong_type (self, node, "a string");
        const ProtobufCEnumValue *value =
            strlen (node->text) == node->length
                ? protobuf_c_enum_descriptor_get_value_by_name (enum_descriptor,
                                                                node->text)
                : NULL;
        if (!value) {
            char supported[384] = "";
            size_t used = 0;
            for (unsigned i = 0; i < enum_descriptor->n_values && used < sizeof supported;
                 i++) {
                int n = snprintf (supported + used, sizeof supported - used, "%s\"%s\"",
                                  i ? ", " : "", enum_descriptor->values[i].name);
                if (n > 0)
                    used += (size_t)n;
            }
            return s_fail (self, node,
                           "unsupported value \"%.64s\": supported values: %s",
                           node->text, supported);
        }
        *(int *)member = value->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (node->type != ZC_SCALAR || node->kind != ZC_STRING)
            return s_wrong_type (self, node, "a string");
        if (strlen (node->text) != node->length)
            return s_fail (self, node, "a string may not contain a NUL character");
        char *copy = strdup (node->text);
        if (!copy)
            return s_fail (self, node, "out of memory");
        *(char **)member = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if (node->type != ZC_SCALAR || node->kind != ZC_STRING)
            return s_wrong_type (self, node, "a base64 string");
        return s_decode_base64 (self, node, member);
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *sub = NULL;
        if (s_decode_message (self, node, field->descriptor, &sub))
            return -1;
        *(ProtobufCMessage **)member = sub;
        return 0;
    }
    }
    return s_fail (self, node, "unsupported field type");
}

//  Marks a singular field present, after its value was stored
static void
s_set_present (ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)((char *)msg + field->quantifier_offset) = field->id;
    else if (field->label == PROTOBUF_C_LABEL_OPTIONAL &&
             field->type != PROTOBUF_C_TYPE_STRING &&
             field->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)((char *)msg + field->quantifier_offset) = 1;
}

static int
s_decode_map (s_decoder_t *self, const zc_node_t *node, ProtobufCMessage *msg,
              const ProtobufCFieldDescriptor *field)
{
    if (node->type != ZC_MAPPING)
        return s_wrong_type (self, node, "a mapping");
    if (node->count == 0)
        return 0;
    const ProtobufCMessageDescriptor *entry_descriptor = field->descriptor;
    const ProtobufCFieldDescriptor *key_field = &entry_descriptor->fields[0];
    const ProtobufCFieldDescriptor *value_field = &entry_descriptor->fields[1];
    ProtobufCMessage **entries = calloc (node->count / 2, sizeof *entries);
    if (!entries)
        return s_fail (self, node, "out of memory");
    size_t *count_p = (size_t *)((char *)msg + field->quantifier_offset);
    *(ProtobufCMessage ***)((char *)msg + field->offset) = entries;
    zc_strmap_t seen = {0};
    int rc = 0;
    for (size_t i = 0; i < node->count && rc == 0; i += 2) {
        const zc_node_t *key = node->items[i];
        const zc_node_t *value = node->items[i + 1];
        if (key->type != ZC_SCALAR) {
            rc = s_fail (self, key, "expected a string key, got %s", s_got (key));
            break;
        }
        size_t saved = s_path_push (self, "[%.*s]", (int)key->length, key->text);
        const zc_node_t *first = zc_strmap_get (&seen, key->text, key->length);
        if (first) {
            rc = s_fail (self, key, "duplicate key \"%.64s\" (first set at line %d)",
                         key->text, first->line);
            break;
        }
        if (zc_strmap_put (&seen, key->text, key->length, (void *)key)) {
            rc = s_fail (self, key, "out of memory");
            break;
        }
        ProtobufCMessage *entry = s_message_new (entry_descriptor);
        if (!entry) {
            rc = s_fail (self, key, "out of memory");
            break;
        }
        //  Keys are strings in JSON; a non-string key reads its text
        zc_node_t key_node = *key;
        if (key_field->type != PROTOBUF_C_TYPE_STRING)
            key_node.kind = zc_plain_kind (key->text, key->length);
        else
            key_node.kind = ZC_STRING;
        void *key_member = (char *)entry + key_field->offset;
        void *value_member = (char *)entry + value_field->offset;
        rc = s_decode_value (self, &key_node, key_field, key_member);
        if (rc == 0) {
            s_set_present (entry, key_field);
            rc = s_is_null (value)
                     ? s_zero_value (self, value, value_field, value_member)
                     : s_decode_value (self, value, value_field, value_member);
            if (rc == 0)
                s_set_present (entry, value_field);
        }
        if (rc) {
            protobuf_c_message_free_unpacked (entry, NULL);
            break;
        }
        entries[(*count_p)++] = entry;
        s_path_pop (self, saved);
    }
    zc_strmap_clear (&seen);
    return rc;
}

static int
s_decode_repeated (s_decoder_t *self, const zc_node_t *node, ProtobufCMessage *msg,
                   const ProtobufCFieldDescriptor *field)
{
    if (node->type != ZC_SEQUENCE)
        return s_wrong_type (self, node, "a sequence");
    if (node->count == 0)
        return 0;
    size_t element_size = zc_element_size (field);
    char *array = calloc (node->count, element_size);
    if (!array)
        return s_fail (self, node, "out of memory");
    size_t *count_p = (size_t *)((char *)msg + field->quantifier_offset);
    *(void **)((char *)msg + field->offset) = array;
    for (size_t i = 0; i < node->count; i++) {
        size_t saved = s_path_push (self, "[%zu]", i);
        const zc_node_t *item = node->items[i];
        void *member = array + i * element_size;
        if (s_is_null (item) ? s_zero_value (self, item, field, member)
                             : s_decode_value (self, item, field, member))
            return -1;
        (*count_p)++;
        s_path_pop (self, saved);
    }
    return 0;
}

static int
s_decode_field (s_decoder_t *self, const zc_node_t *node, ProtobufCMessage *msg,
                const ProtobufCFieldDescriptor *field)
{
    if (s_is_null (node))
        return 0; //  null is absent
    if (field->label == PROTOBUF_C_LABEL_REPEATED) {
        if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
            zc_info_t *info = zc_info (field->descriptor);
            if (!info)
                return s_fail (self, node, "out of memory");
            if (info->special == ZC_SPECIAL_MAP_ENTRY)
                return s_decode_map (self, node, msg, field);
        }
        return s_decode_repeated (self, node, msg, field);
    }
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t set = *(uint32_t *)((char *)msg + field->quantifier_offset);
        if (set != 0 && set != field->id) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field (msg->descriptor, set);
            return s_fail (self, node, "only one of \"%s\" and \"%s\" may be set",
                           other ? zube_codec_json_name (other) : "?",
                           zube_codec_json_name (field));
        }
    }
    if (s_decode_value (self, node, field, (char *)msg + field->offset))
        return -1;
    s_set_present (msg, field);
    return 0;
}

static int
s_decode_special (s_decoder_t *self, const zc_node_t *node, zc_special_t special,
                  ProtobufCMessage **msg_p)
{
    if (special == ZC_SPECIAL_QUANTITY) {
        if (node->type != ZC_SCALAR ||
            (node->kind != ZC_STRING && node->kind != ZC_INT && node->kind != ZC_FLOAT))
            return s_wrong_type (self, node, "a quantity (such as 500m, 128Mi, 2)");
        int64_t milli;
        char why[256];
        if (strlen (node->text) != node->length ||
            zube_quantity_parse (node->text, &milli, why, sizeof why))
            return s_fail (self, node, "%s", why);
        Zube__Quantity *quantity = malloc (sizeof *quantity);
        char *text = strdup (node->text);
        if (!quantity || !text) {
            free (quantity);
            free (text);
            return s_fail (self, node, "out of memory");
        }
        zube__quantity__init (quantity);
        quantity->string = text;
        quantity->has_milli_value = 1;
        quantity->milli_value = milli;
        *msg_p = &quantity->base;
        return 0;
    }
    if (special == ZC_SPECIAL_INT_OR_STRING) {
        Zube__IntOrString *value = malloc (sizeof *value);
        if (!value)
            return s_fail (self, node, "out of memory");
        zube__int_or_string__init (value);
        bool negative;
        uint64_t magnitude;
        int rc = 0;
        if (node->type == ZC_SCALAR && node->kind == ZC_INT) {
            rc = s_decode_integer (self, node, "int32", INT32_MIN, INT32_MAX, &negative,
                                   &magnitude);
            if (rc == 0) {
                value->has_int_val = 1;
                value->int_val =
                    negative ? (int32_t)(-(int64_t)magnitude) : (int32_t)magnitude;
            }
        } else if (node->type == ZC_SCALAR && node->kind == ZC_STRING) {
            if (strlen (node->text) != node->length)
                rc = s_fail (self, node, "a string may not contain a NUL character");
            else if (!(value->str_val = strdup (node->text)))
                rc = s_fail (self, node, "out of memory");
        } else
            rc = s_wrong_type (self, node, "an integer or a string");
        if (rc) {
            free (value);
            return -1;
        }
        *msg_p = &value->base;
        return 0;
    }
    //  RawExtension
    zc_buffer_t json = {0};
    if (s_raw_json (self, node, &json)) {
        free (json.data);
        return -1;
    }
    Zube__RawExtension *raw = malloc (sizeof *raw);
    if (json.failed || !raw) {
        free (json.data);
        free (raw);
        return s_fail (self, node, "out of memory");
    }
    zube__raw_extension__init (raw);
    raw->json = json.data;
    *msg_p = &raw->base;
    return 0;
}

static int
s_decode_message (s_decoder_t *self, const zc_node_t *node,
                  const ProtobufCMessageDescriptor *descriptor, ProtobufCMessage **msg_p)
{
    zc_info_t *info = zc_info (descriptor);
    if (!info)
        return s_fail (self, node, "out of memory");
    if (info->special != ZC_SPECIAL_NONE && info->special != ZC_SPECIAL_MAP_ENTRY)
        return s_decode_special (self, node, info->special, msg_p);
    if (node->type != ZC_MAPPING)
        return s_wrong_type (self, node, "a mapping");
    if (self->depth >= self->limits->max_depth)
        return s_fail (self, node, "nesting is deeper than the limit of %d levels",
                       self->limits->max_depth);

    ProtobufCMessage *msg = s_message_new (descriptor);
    const zc_node_t *small[32];
    const zc_node_t **seen =
        descriptor->n_fields <= 32 ? small : calloc (descriptor->n_fields, sizeof *seen);
    if (!msg || !seen) {
        free (msg);
        if (seen != small)
            free (seen);
        return s_fail (self, node, "out of memory");
    }
    memset (seen, 0, descriptor->n_fields * sizeof *seen);
    self->depth++;
    int rc = 0;
    for (size_t i = 0; i < node->count && rc == 0; i += 2) {
        const zc_node_t *key = node->items[i];
        if (key->type != ZC_SCALAR) {
            rc = s_fail (self, key, "expected a field name, got %s", s_got (key));
            break;
        }
        size_t saved = s_path_push_field (self, key->text, key->length);
        int index = zc_info_find (info, key->text, key->length);
        if (index < 0)
            rc = s_fail (self, key, "unknown field \"%.128s\"", key->text);
        else if (seen[index])
            rc = s_fail (self, key, "duplicate field \"%.128s\" (first set at line %d)",
                         key->text, seen[index]->line);
        else {
            seen[index] = key;
            rc = s_decode_field (self, node->items[i + 1], msg,
                                 &descriptor->fields[index]);
        }
        if (rc == 0)
            s_path_pop (self, saved);
    }
    self->depth--;
    if (seen != small)
        free (seen);
    if (rc) {
        protobuf_c_message_free_unpacked (msg, NULL);
        return -1;
    }
    *msg_p = msg;
    return 0;
}

static void
s_decoder_init (s_decoder_t *self, const zube_codec_limits_t *limits,
                zube_codec_error_t *error, int document)
{
    memset (self, 0, sizeof *self);
    self->limits = limits;
    self->error = error;
    self->document = document;
}

int
zube_codec_decode_with_limits (const char *text, size_t size,
                               const ProtobufCMessageDescriptor *descriptor,
                               const zube_codec_limits_t *limits,
                               ProtobufCMessage **msg_p, zube_codec_error_t *error)
{
    zube_codec_error_t scratch;
    if (!error)
        error = &scratch;
    memset (error, 0, sizeof *error);
    zube_codec_limits_t resolved;
    zc_limits_resolve (limits, &resolved);
    zc_reader_t *reader = zc_reader_new (text, size, &resolved);
    if (!reader) {
        snprintf (error->message, sizeof error->message, "out of memory");
        return -1;
    }
    ProtobufCMessage *msg = NULL;
    zc_document_t document;
    int rc = zc_reader_next (reader, &document, error);
    if (rc == 1) {
        zc_document_t extra;
        int more = zc_reader_next (reader, &extra, error);
        if (more == 1) {
            s_decoder_t decoder;
            s_decoder_init (&decoder, &resolved, error, extra.number);
            s_fail (&decoder, extra.root, "expected one document, found another");
            error->line = extra.line;
            error->column = extra.column;
            zc_document_clear (&extra);
            rc = -1;
        } else if (more == -1)
            rc = -1;
    }
    if (rc == 1 && document.root && !s_is_null (document.root)) {
        s_decoder_t decoder;
        s_decoder_init (&decoder, &resolved, error, document.number);
        rc = s_decode_message (&decoder, document.root, descriptor, &msg) ? -1 : 1;
    }
    zc_document_clear (&document);
    zc_reader_destroy (&reader);
    if (rc == -1)
        return -1;
    if (!msg && !(msg = s_message_new (descriptor))) {
        snprintf (error->message, sizeof error->message, "out of memory");
        return -1;
    }
    *msg_p = msg;
    return 0;
}

int
zube_codec_decode (const char *text, size_t size,
                   const ProtobufCMessageDescriptor *descriptor, ProtobufCMessage **msg_p,
                   zube_codec_error_t *error)
{
    return zube_codec_decode_with_limits (text, size, descriptor, NULL, msg_p, error);
}

//  ---------------------------------------------------------------------
//  Objects

typedef struct {
    zube_codec_object_t *items;
    size_t count;
    size_t capacity;
} s_objects_t;

static const zc_node_t *
s_mapping_get (const zc_node_t *mapping, const char *key)
{
    size_t length = strlen (key);
    for (size_t i = 0; i < mapping->count; i += 2) {
        const zc_node_t *candidate = mapping->items[i];
        if (candidate->type == ZC_SCALAR && candidate->length == length &&
            memcmp (candidate->text, key, length) == 0)
            return mapping->items[i + 1];
    }
    return NULL;
}

//  The string value of apiVersion or kind; NULL (error set) if missing
static const char *
s_type_field (s_decoder_t *self, const zc_node_t *object, const char *key,
              const char *fallback)
{
    const zc_node_t *value = s_mapping_get (object, key);
    size_t saved = s_path_push_field (self, key, strlen (key));
    const char *text = NULL;
    if (!value || s_is_null (value)) {
        if (fallback)
            text = fallback;
        else
            s_fail (self, object,
                    "missing field \"%s\": every object needs apiVersion and kind", key);
    } else if (value->type != ZC_SCALAR || value->kind != ZC_STRING)
        s_wrong_type (self, value, "a string");
    else if (!value->length)
        s_fail (self, value, "%s may not be empty", key);
    else
        text = value->text;
    if (text)
        s_path_pop (self, saved);
    return text;
}

//  Sets api_version and kind on an object that did not spell them (an
//  item of a typed list).
static int
s_fill_type (ProtobufCMessage *msg, const zube_kind_t *kind)
{
    const char *names[] = {"api_version", "kind"};
    const char *values[] = {kind->api_version, kind->kind};
    for (int i = 0; i < 2; i++) {
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name (msg->descriptor, names[i]);
        if (!field || field->type != PROTOBUF_C_TYPE_STRING ||
            field->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        char **member = (char **)((char *)msg + field->offset);
        if (*member && *member != field->default_value)
            continue;
        if (!(*member = strdup (values[i])))
            return -1;
    }
    return 0;
}

static int
s_decode_object (s_decoder_t *self, const zc_node_t *node,
                 const zube_kind_t *default_kind, s_objects_t *objects)
{
    if (node->type != ZC_MAPPING)
        return s_wrong_type (self, node,
                             "an object (a mapping with apiVersion and kind)");
    const char *api_version = s_type_field (
        self, node, "apiVersion", default_kind ? default_kind->api_version : NULL);
    if (!api_version)
        return -1;
    const char *kind_name =
        s_type_field (self, node, "kind", default_kind ? default_kind->kind : NULL);
    if (!kind_name)
        return -1;
    const zube_kind_t *kind = zube_kind_lookup (api_version, kind_name);

    //  A List, or a typed <Kind>List: its items are the objects
    const zube_kind_t *item_kind = NULL;
    bool is_list = false;
    size_t kind_length = strlen (kind_name);
    if (!kind && strcmp (kind_name, "List") == 0)
        is_list = true;
    else if (kind_length > 4 && strcmp (kind_name + kind_length - 4, "List") == 0) {
        char base[128];
        snprintf (base, sizeof base, "%.*s", (int)(kind_length - 4), kind_name);
        item_kind = zube_kind_lookup (api_version, base);
        is_list = item_kind != NULL;
    }
    if (is_list) {
        for (size_t i = 0; i < node->count; i += 2) {
            const zc_node_t *key = node->items[i];
            static const char *allowed[] = {"apiVersion", "kind", "metadata", "items"};
            bool known = false;
            for (size_t k = 0; k < 4; k++)
                if (key->type == ZC_SCALAR && key->length == strlen (allowed[k]) &&
                    memcmp (key->text, allowed[k], key->length) == 0)
                    known = true;
            if (!known) {
                s_path_push_field (self, key->text ? key->text : "?",
                                   key->text ? key->length : 1);
                return s_fail (self, key, "unknown field \"%.128s\"",
                               key->text ? key->text : "?");
            }
        }
        const zc_node_t *items = s_mapping_get (node, "items");
        if (!items || s_is_null (items))
            return 0;
        size_t saved = s_path_push_field (self, "items", 5);
        if (items->type != ZC_SEQUENCE)
            return s_wrong_type (self, items, "a sequence");
        for (size_t i = 0; i < items->count; i++) {
            size_t item_saved = s_path_push (self, "[%zu]", i);
            if (s_decode_object (self, items->items[i], item_kind, objects))
                return -1;
            s_path_pop (self, item_saved);
        }
        s_path_pop (self, saved);
        return 0;
    }
    if (!kind) {
        const zc_node_t *value = s_mapping_get (node, "kind");
        size_t saved = s_path_push_field (self, "kind", 4);
        s_fail (self, value ? value : node,
                "no matches for kind \"%.64s\" in version \"%.64s\"", kind_name,
                api_version);
        s_path_pop (self, saved);
        return -1;
    }
    if (objects->count == objects->capacity) {
        size_t capacity = objects->capacity ? objects->capacity * 2 : 8;
        zube_codec_object_t *grown = realloc (objects->items, capacity * sizeof *grown);
        if (!grown)
            return s_fail (self, node, "out of memory");
        objects->items = grown;
        objects->capacity = capacity;
    }
    ProtobufCMessage *msg = NULL;
    if (s_decode_message (self, node, kind->descriptor, &msg))
        return -1;
    if (default_kind && s_fill_type (msg, kind)) {
        protobuf_c_message_free_unpacked (msg, NULL);
        return s_fail (self, node, "out of memory");
    }
    objects->items[objects->count++] = (zube_codec_object_t){
        .message = msg,
        .kind = kind,
        .document = self->document,
        .line = node->line,
    };
    return 0;
}

int
zube_codec_decode_objects_with_limits (const char *text, size_t size,
                                       const zube_codec_limits_t *limits,
                                       zube_codec_object_t **objects_p, size_t *count_p,
                                       zube_codec_error_t *error)
{
    zube_codec_error_t scratch;
    if (!error)
        error = &scratch;
    memset (error, 0, sizeof *error);
    zube_codec_limits_t resolved;
    zc_limits_resolve (limits, &resolved);
    zc_reader_t *reader = zc_reader_new (text, size, &resolved);
    if (!reader) {
        snprintf (error->message, sizeof error->message, "out of memory");
        return -1;
    }
    s_objects_t objects = {0};
    int rc;
    zc_document_t document;
    while ((rc = zc_reader_next (reader, &document, error)) == 1) {
        if (document.root && !s_is_null (document.root)) {
            s_decoder_t decoder;
            s_decoder_init (&decoder, &resolved, error, document.number);
            rc = s_decode_object (&decoder, document.root, NULL, &objects);
        } else
            rc = 0;
        zc_document_clear (&document);
        if (rc)
            break;
    }
    zc_reader_destroy (&reader);
    if (rc) {
        zube_codec_objects_free (&objects.items, objects.count);
        return -1;
    }
    *objects_p = objects.items;
    *count_p = objects.count;
    return 0;
}

int
zube_codec_decode_objects (const char *text, size_t size, zube_codec_object_t **objects_p,
                           size_t *count_p, zube_codec_error_t *error)
{
    return zube_codec_decode_objects_with_limits (text, size, NULL, objects_p, count_p,
                                                  error);
}

void
zube_codec_objects_free (zube_codec_object_t **objects_p, size_t count)
{
    if (!objects_p || !*objects_p)
        return;
    for (size_t i = 0; i < count; i++)
        if ((*objects_p)[i].message)
            protobuf_c_message_free_unpacked ((*objects_p)[i].message, NULL);
    free (*objects_p);
    *objects_p = NULL;
}
