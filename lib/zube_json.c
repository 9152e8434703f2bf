/*  zube_json - a small JSON tree for the merge patch.

    A recursive-descent parser (depth limited as the codec limits it, so
    a hostile patch cannot exhaust the stack), a compact writer, and
    RFC 7386's MergePatch over the tree. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zube/codec.h"
#include "zube_json_private.h"

//  ---------------------------------------------------------------------
//  Tree

void
zube_json_free (zube_json_t **node_p)
{
    if (!node_p || !*node_p)
        return;
    zube_json_t *node = *node_p;
    free (node->text);
    for (size_t i = 0; node->type == ZUBE_JSON_ARRAY && i < node->count; i++)
        zube_json_free (&node->items[i]);
    for (size_t i = 0; node->type == ZUBE_JSON_OBJECT && i < node->count; i++) {
        free (node->members[i].key);
        zube_json_free (&node->members[i].value);
    }
    free (node->items);
    free (node->members);
    free (node);
    *node_p = NULL;
}

static zube_json_t *
s_node_new (zube_json_type_t type)
{
    zube_json_t *node = calloc (1, sizeof *node);
    if (node)
        node->type = type;
    return node;
}

static int
s_array_add (zube_json_t *array, zube_json_t *item)
{
    if (array->count == array->cap) {
        size_t cap = array->cap ? array->cap * 2 : 4;
        zube_json_t **items = realloc (array->items, cap * sizeof *items);
        if (!items)
            return -1;
        array->items = items;
        array->cap = cap;
    }
    array->items[array->count++] = item;
    return 0;
}

//  Takes key and value on success only
static int
s_object_add (zube_json_t *object, char *key, size_t key_len, zube_json_t *value)
{
    if (object->count == object->cap) {
        size_t cap = object->cap ? object->cap * 2 : 4;
        zube_json_member_t *members = realloc (object->members, cap * sizeof *members);
        if (!members)
            return -1;
        object->members = members;
        object->cap = cap;
    }
    object->members[object->count++] =
        (zube_json_member_t){.key = key, .key_len = key_len, .value = value};
    return 0;
}

static ptrdiff_t
s_object_find (const zube_json_t *object, const char *key, size_t key_len)
{
    for (size_t i = 0; i < object->count; i++)
        if (object->members[i].key_len == key_len &&
            memcmp (object->members[i].key, key, key_len) == 0)
            return (ptrdiff_t)i;
    return -1;
}

//  Removes (and frees) member at.
static void
s_object_remove (zube_json_t *object, size_t at)
{
    free (object->members[at].key);
    zube_json_free (&object->members[at].value);
    memmove (&object->members[at], &object->members[at + 1],
             (object->count - at - 1) * sizeof object->members[0]);
    object->count--;
}

zube_json_t *
zube_json_get (const zube_json_t *object, const char *key)
{
    if (!object || object->type != ZUBE_JSON_OBJECT)
        return NULL;
    ptrdiff_t at = s_object_find (object, key, strlen (key));
    return at < 0 ? NULL : object->members[at].value;
}

static char *
s_memdup (const char *data, size_t len)
{
    char *copy = malloc (len + 1);
    if (copy) {
        memcpy (copy, data, len);
        copy[len] = 0;
    }
    return copy;
}

zube_json_t *
zube_json_clone (const zube_json_t *node)
{
    zube_json_t *copy = s_node_new (node->type);
    if (!copy)
        return NULL;
    if (node->text && !(copy->text = s_memdup (node->text, node->len)))
        goto fail;
    copy->len = node->len;
    for (size_t i = 0; node->type == ZUBE_JSON_ARRAY && i < node->count; i++) {
        zube_json_t *item = zube_json_clone (node->items[i]);
        if (!item || s_array_add (copy, item)) {
            zube_json_free (&item);
            goto fail;
        }
    }
    for (size_t i = 0; node->type == ZUBE_JSON_OBJECT && i < node->count; i++) {
        const zube_json_member_t *member = &node->members[i];
        char *key = s_memdup (member->key, member->key_len);
        zube_json_t *value = key ? zube_json_clone (member->value) : NULL;
        if (!value || s_object_add (copy, key, member->key_len, value)) {
            free (key);
            zube_json_free (&value);
            goto fail;
        }
    }
    return copy;
fail:
    zube_json_free (&copy);
    return NULL;
}

//  ---------------------------------------------------------------------
//  Parser

typedef struct {
    const char *text;
    size_t size;
    size_t pos;
    int depth;
    char *error;
    size_t error_size;
    bool failed;
} s_parser_t;

//  Go's quoteChar: the byte as a quoted character
static void
s_quote_char (unsigned char c, char *buf, size_t size)
{
    if (c == '\'')
        snprintf (buf, size, "'\\''");
    else if (c == '"')
        snprintf (buf, size, "'\"'");
    else if (c == '\n')
        snprintf (buf, size, "'\\n'");
    else if (c == '\t')
        snprintf (buf, size, "'\\t'");
    else if (c == '\r')
        snprintf (buf, size, "'\\r'");
    else if (c < 0x20 || c >= 0x7f)
        snprintf (buf, size, "'\\x%02x'", c);
    else
        snprintf (buf, size, "'%c'", c);
}

static void s_fail_at (s_parser_t *p, size_t at, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_fail_at (s_parser_t *p, size_t at, const char *format, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    if (!p->error || !p->error_size)
        return;
    int line = 1, column = 1;
    for (size_t i = 0; i < at && i < p->size; i++) {
        if (p->text[i] == '\n') {
            line++;
            column = 1;
        } else
            column++;
    }
    char message[400];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    snprintf (p->error, p->error_size, "line %d, column %d: %s", line, column, message);
}

//  "invalid character 'x' <context>", or the end of input
static void
s_fail_char (s_parser_t *p, const char *context)
{
    if (p->pos >= p->size) {
        s_fail_at (p, p->pos, "unexpected end of JSON input");
        return;
    }
    char quoted[16];
    s_quote_char ((unsigned char)p->text[p->pos], quoted, sizeof quoted);
    s_fail_at (p, p->pos, "invalid character %s %s", quoted, context);
}

static void
s_skip_space (s_parser_t *p)
{
    while (p->pos < p->size && (p->text[p->pos] == ' ' || p->text[p->pos] == '\t' ||
                                p->text[p->pos] == '\n' || p->text[p->pos] == '\r'))
        p->pos++;
}

static int
s_hex4 (s_parser_t *p, uint32_t *value_p)
{
    uint32_t value = 0;
    for (int i = 0; i < 4; i++) {
        if (p->pos >= p->size) {
            s_fail_at (p, p->pos, "unexpected end of JSON input");
            return -1;
        }
        char c = p->text[p->pos];
        value <<= 4;
        if (c >= '0' && c <= '9')
            value |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            value |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            value |= (uint32_t)(c - 'A' + 10);
        else {
            s_fail_char (p, "in \\u hexadecimal character escape");
            return -1;
        }
        p->pos++;
    }
    *value_p = value;
    return 0;
}

static size_t
s_utf8_put (uint32_t rune, char *out)
{
    if (rune < 0x80) {
        out[0] = (char)rune;
        return 1;
    }
    if (rune < 0x800) {
        out[0] = (char)(0xc0 | (rune >> 6));
        out[1] = (char)(0x80 | (rune & 0x3f));
        return 2;
    }
    if (rune < 0x10000) {
        out[0] = (char)(0xe0 | (rune >> 12));
        out[1] = (char)(0x80 | ((rune >> 6) & 0x3f));
        out[2] = (char)(0x80 | (rune & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (rune >> 18));
    out[1] = (char)(0x80 | ((rune >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((rune >> 6) & 0x3f));
    out[3] = (char)(0x80 | (rune & 0x3f));
    return 4;
}

//  A string at p->pos (the opening quote); decoded into *text_p, *len_p.
//  A decoded string is never longer than its escaped form.
static int
s_parse_string (s_parser_t *p, char **text_p, size_t *len_p)
{
    p->pos++;
    size_t start = p->pos;
    size_t end = start;
    //  plain: no escape and no control character, so copied as it is
    bool plain = true;
    while (end < p->size && p->text[end] != '"') {
        if (p->text[end] == '\\') {
            plain = false;
            end++;
        } else if ((unsigned char)p->text[end] < 0x20)
            plain = false;
        end++;
    }
    char *out = malloc ((end > p->size ? p->size : end) - start + 1);
    if (!out) {
        s_fail_at (p, start, "out of memory");
        return -1;
    }
    if (plain && end < p->size) {
        memcpy (out, p->text + start, end - start);
        out[end - start] = 0;
        p->pos = end + 1;
        *text_p = out;
        *len_p = end - start;
        return 0;
    }
    size_t n = 0;
    for (;;) {
        if (p->pos >= p->size) {
            s_fail_at (p, p->pos, "unexpected end of JSON input");
            goto fail;
        }
        unsigned char c = (unsigned char)p->text[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            s_fail_char (p, "in string literal");
            goto fail;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        if (p->pos >= p->size) {
            s_fail_at (p, p->pos, "unexpected end of JSON input");
            goto fail;
        }
        char e = p->text[p->pos];
        switch (e) {
        case '"':
        case '\\':
        case '/':
            out[n++] = e;
            break;
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'u': {
            p->pos++;
            uint32_t rune;
            if (s_hex4 (p, &rune))
                goto fail;
            if (rune >= 0xd800 && rune < 0xdc00) {
                //  A high surrogate wants a low one right after it
                uint32_t low = 0;
                if (p->pos + 1 < p->size && p->text[p->pos] == '\\' &&
                    p->text[p->pos + 1] == 'u') {
                    size_t save = p->pos;
                    p->pos += 2;
                    if (s_hex4 (p, &low))
                        goto fail;
                    if (low >= 0xdc00 && low < 0xe000)
                        rune = 0x10000 + ((rune - 0xd800) << 10) + (low - 0xdc00);
                    else {
                        rune = 0xfffd;
                        p->pos = save;
                    }
                } else
                    rune = 0xfffd;
            } else if (rune >= 0xdc00 && rune < 0xe000)
                rune = 0xfffd;
            n += s_utf8_put (rune, out + n);
            continue;
        }
        default:
            s_fail_char (p, "in string escape code");
            goto fail;
        }
        p->pos++;
    }
    out[n] = 0;
    *text_p = out;
    *len_p = n;
    return 0;
fail:
    free (out);
    return -1;
}

static bool
s_is_digit (s_parser_t *p)
{
    return p->pos < p->size && p->text[p->pos] >= '0' && p->text[p->pos] <= '9';
}

static zube_json_t *
s_parse_number (s_parser_t *p)
{
    size_t start = p->pos;
    if (p->text[p->pos] == '-')
        p->pos++;
    if (!s_is_digit (p)) {
        s_fail_char (p, "in numeric literal");
        return NULL;
    }
    if (p->text[p->pos] == '0')
        p->pos++;
    else
        while (s_is_digit (p))
            p->pos++;
    if (p->pos < p->size && p->text[p->pos] == '.') {
        p->pos++;
        if (!s_is_digit (p)) {
            s_fail_char (p, "after decimal point in numeric literal");
            return NULL;
        }
        while (s_is_digit (p))
            p->pos++;
    }
    if (p->pos < p->size && (p->text[p->pos] == 'e' || p->text[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->size && (p->text[p->pos] == '+' || p->text[p->pos] == '-'))
            p->pos++;
        if (!s_is_digit (p)) {
            s_fail_char (p, "in exponent of numeric literal");
            return NULL;
        }
        while (s_is_digit (p))
            p->pos++;
    }
    zube_json_t *node = s_node_new (ZUBE_JSON_NUMBER);
    if (node) {
        node->len = p->pos - start;
        node->text = s_memdup (p->text + start, node->len);
    }
    if (!node || !node->text) {
        zube_json_free (&node);
        s_fail_at (p, start, "out of memory");
    }
    return node;
}

static zube_json_t *
s_parse_literal (s_parser_t *p, const char *word, zube_json_type_t type)
{
    p->pos++;
    for (const char *w = word + 1; *w; w++, p->pos++) {
        if (p->pos >= p->size || p->text[p->pos] != *w) {
            char context[64];
            snprintf (context, sizeof context, "in literal %s (expecting '%c')", word,
                      *w);
            s_fail_char (p, context);
            return NULL;
        }
    }
    zube_json_t *node = s_node_new (type);
    if (!node)
        s_fail_at (p, p->pos, "out of memory");
    return node;
}

static zube_json_t *s_parse_value (s_parser_t *p);

static zube_json_t *
s_parse_array (s_parser_t *p)
{
    zube_json_t *node = s_node_new (ZUBE_JSON_ARRAY);
    if (!node) {
        s_fail_at (p, p->pos, "out of memory");
        return NULL;
    }
    p->pos++;
    s_skip_space (p);
    if (p->pos < p->size && p->text[p->pos] == ']') {
        p->pos++;
        return node;
    }
    for (;;) {
        zube_json_t *item = s_parse_value (p);
        if (!item)
            goto fail;
        if (s_array_add (node, item)) {
            zube_json_free (&item);
            s_fail_at (p, p->pos, "out of memory");
            goto fail;
        }
        s_skip_space (p);
        if (p->pos < p->size && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->size && p->text[p->pos] == ']') {
            p->pos++;
            return node;
        }
        s_fail_char (p, "after array element");
        goto fail;
    }
fail:
    zube_json_free (&node);
    return NULL;
}

static zube_json_t *
s_parse_object (s_parser_t *p)
{
    zube_json_t *node = s_node_new (ZUBE_JSON_OBJECT);
    if (!node) {
        s_fail_at (p, p->pos, "out of memory");
        return NULL;
    }
    p->pos++;
    s_skip_space (p);
    if (p->pos < p->size && p->text[p->pos] == '}') {
        p->pos++;
        return node;
    }
    for (;;) {
        s_skip_space (p);
        if (p->pos >= p->size || p->text[p->pos] != '"') {
            s_fail_char (p, "looking for beginning of object key string");
            goto fail;
        }
        char *key = NULL;
        size_t key_len = 0;
        if (s_parse_string (p, &key, &key_len))
            goto fail;
        s_skip_space (p);
        if (p->pos >= p->size || p->text[p->pos] != ':') {
            free (key);
            s_fail_char (p, "after object key");
            goto fail;
        }
        p->pos++;
        zube_json_t *value = s_parse_value (p);
        if (!value) {
            free (key);
            goto fail;
        }
        //  A repeated key: the last one wins, as in Go
        ptrdiff_t at = s_object_find (node, key, key_len);
        if (at >= 0) {
            free (key);
            zube_json_free (&node->members[at].value);
            node->members[at].value = value;
        } else if (s_object_add (node, key, key_len, value)) {
            free (key);
            zube_json_free (&value);
            s_fail_at (p, p->pos, "out of memory");
            goto fail;
        }
        s_skip_space (p);
        if (p->pos < p->size && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->size && p->text[p->pos] == '}') {
            p->pos++;
            return node;
        }
        s_fail_char (p, "after object key:value pair");
        goto fail;
    }
fail:
    zube_json_free (&node);
    return NULL;
}

static zube_json_t *
s_parse_value (s_parser_t *p)
{
    s_skip_space (p);
    if (p->pos >= p->size) {
        s_fail_at (p, p->pos, "unexpected end of JSON input");
        return NULL;
    }
    char c = p->text[p->pos];
    if (c == '{' || c == '[') {
        if (p->depth >= ZUBE_CODEC_MAX_DEPTH) {
            s_fail_at (p, p->pos, "nesting is deeper than the limit of %d levels",
                       ZUBE_CODEC_MAX_DEPTH);
            return NULL;
        }
        p->depth++;
        zube_json_t *node = c == '{' ? s_parse_object (p) : s_parse_array (p);
        p->depth--;
        return node;
    }
    if (c == '"') {
        zube_json_t *node = s_node_new (ZUBE_JSON_STRING);
        if (!node) {
            s_fail_at (p, p->pos, "out of memory");
            return NULL;
        }
        if (s_parse_string (p, &node->text, &node->len))
            zube_json_free (&node);
        return node;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return s_parse_number (p);
    if (c == 't')
        return s_parse_literal (p, "true", ZUBE_JSON_TRUE);
    if (c == 'f')
        return s_parse_literal (p, "false", ZUBE_JSON_FALSE);
    if (c == 'n')
        return s_parse_literal (p, "null", ZUBE_JSON_NULL);
    s_fail_char (p, "looking for beginning of value");
    return NULL;
}

zube_json_t *
zube_json_parse (const char *text, size_t size, char *error, size_t error_size)
{
    s_parser_t p = {
        .text = text ? text : "",
        .size = text ? size : 0,
        .error = error,
        .error_size = error_size,
    };
    zube_json_t *node = s_parse_value (&p);
    if (!node)
        return NULL;
    s_skip_space (&p);
    if (p.pos < p.size) {
        s_fail_char (&p, "after top-level value");
        zube_json_free (&node);
    }
    return node;
}

//  ---------------------------------------------------------------------
//  Writer

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool ok;
} s_out_t;

static void
s_out (s_out_t *out, const char *data, size_t len)
{
    if (!out->ok)
        return;
    if (out->len + len + 1 > out->cap) {
        size_t cap = out->cap ? out->cap : 256;
        while (cap < out->len + len + 1)
            cap *= 2;
        char *grown = realloc (out->data, cap);
        if (!grown) {
            out->ok = false;
            return;
        }
        out->data = grown;
        out->cap = cap;
    }
    memcpy (out->data + out->len, data, len);
    out->len += len;
    out->data[out->len] = 0;
}

static void
s_out_string (s_out_t *out, const char *text, size_t len)
{
    s_out (out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        const char *escape = NULL;
        char hex[8];
        if (c == '"')
            escape = "\\\"";
        else if (c == '\\')
            escape = "\\\\";
        else if (c == '\n')
            escape = "\\n";
        else if (c == '\r')
            escape = "\\r";
        else if (c == '\t')
            escape = "\\t";
        else if (c == '\b')
            escape = "\\b";
        else if (c == '\f')
            escape = "\\f";
        else if (c < 0x20) {
            snprintf (hex, sizeof hex, "\\u%04x", c);
            escape = hex;
        }
        if (!escape)
            continue;
        s_out (out, text + run, i - run);
        s_out (out, escape, strlen (escape));
        run = i + 1;
    }
    s_out (out, text + run, len - run);
    s_out (out, "\"", 1);
}

static void
s_write (s_out_t *out, const zube_json_t *node)
{
    switch (node->type) {
    case ZUBE_JSON_NULL:
        s_out (out, "null", 4);
        break;
    case ZUBE_JSON_FALSE:
        s_out (out, "false", 5);
        break;
    case ZUBE_JSON_TRUE:
        s_out (out, "true", 4);
        break;
    case ZUBE_JSON_NUMBER:
        s_out (out, node->text, node->len);
        break;
    case ZUBE_JSON_STRING:
        s_out_string (out, node->text, node->len);
        break;
    case ZUBE_JSON_ARRAY:
        s_out (out, "[", 1);
        for (size_t i = 0; i < node->count; i++) {
            if (i)
                s_out (out, ",", 1);
            s_write (out, node->items[i]);
        }
        s_out (out, "]", 1);
        break;
    case ZUBE_JSON_OBJECT:
        s_out (out, "{", 1);
        for (size_t i = 0; i < node->count; i++) {
            if (i)
                s_out (out, ",", 1);
            s_out_string (out, node->members[i].key, node->members[i].key_len);
            s_out (out, ":", 1);
            s_write (out, node->members[i].value);
        }
        s_out (out, "}", 1);
        break;
    }
}

char *
zube_json_write (const zube_json_t *node)
{
    s_out_t out = {.ok = true};
    s_write (&out, node);
    if (!out.ok) {
        free (out.data);
        return NULL;
    }
    return out.data;
}

//  ---------------------------------------------------------------------
//  RFC 7386

zube_json_t *
zube_json_merge_patch (zube_json_t *target, const zube_json_t *patch)
{
    if (patch->type != ZUBE_JSON_OBJECT) {
        zube_json_free (&target);
        return zube_json_clone (patch);
    }
    if (!target || target->type != ZUBE_JSON_OBJECT) {
        zube_json_free (&target);
        target = s_node_new (ZUBE_JSON_OBJECT);
        if (!target)
            return NULL;
    }
    for (size_t i = 0; i < patch->count; i++) {
        const zube_json_member_t *member = &patch->members[i];
        ptrdiff_t at = s_object_find (target, member->key, member->key_len);
        if (member->value->type == ZUBE_JSON_NULL) {
            if (at >= 0) {
                s_object_remove (target, (size_t)at);
            }
            continue;
        }
        if (at >= 0) {
            zube_json_t *merged =
                zube_json_merge_patch (target->members[at].value, member->value);
            target->members[at].value = merged;
            if (!merged) {
                //  Drop the emptied member so the tree stays whole
                target->members[at].value = NULL;
                s_object_remove (target, (size_t)at);
                zube_json_free (&target);
                return NULL;
            }
            continue;
        }
        char *key = s_memdup (member->key, member->key_len);
        zube_json_t *merged = key ? zube_json_merge_patch (NULL, member->value) : NULL;
        if (!merged || s_object_add (target, key, member->key_len, merged)) {
            free (key);
            zube_json_free (&merged);
            zube_json_free (&target);
            return NULL;
        }
    }
    return target;
}

//  ---------------------------------------------------------------------
//  RFC 6902 JSON patch, with RFC 6901 JSON pointers

#define streq(a, b) (strcmp ((a), (b)) == 0)

bool
zube_json_equal (const zube_json_t *a, const zube_json_t *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case ZUBE_JSON_STRING:
        return a->len == b->len && memcmp (a->text, b->text, a->len) == 0;
    case ZUBE_JSON_NUMBER:
        //  1 and 1.0 are one number
        return (a->len == b->len && memcmp (a->text, b->text, a->len) == 0) ||
               strtod (a->text, NULL) == strtod (b->text, NULL);
    case ZUBE_JSON_ARRAY:
        if (a->count != b->count)
            return false;
        for (size_t i = 0; i < a->count; i++)
            if (!zube_json_equal (a->items[i], b->items[i]))
                return false;
        return true;
    case ZUBE_JSON_OBJECT:
        if (a->count != b->count)
            return false;
        for (size_t i = 0; i < a->count; i++) {
            ptrdiff_t at = s_object_find (b, a->members[i].key, a->members[i].key_len);
            if (at < 0 || !zube_json_equal (a->members[i].value, b->members[at].value))
                return false;
        }
        return true;
    default:
        return true;
    }
}

//  One reference token of a pointer, unescaped (~1 is '/', ~0 is '~');
//  *rest_p moves past it. -1 on a '~' followed by anything else.
static int
s_pointer_token (const char **rest_p, char *token, size_t size, size_t *len_p)
{
    const char *at = *rest_p + 1; //  past the '/'
    size_t len = 0;
    while (*at && *at != '/') {
        char c = *at++;
        if (c == '~') {
            if (*at != '0' && *at != '1')
                return -1;
            c = *at++ == '0' ? '~' : '/';
        }
        if (len + 1 < size)
            token[len++] = c;
    }
    token[len] = 0;
    *len_p = len;
    *rest_p = at;
    return 0;
}

//  An array index: digits without a leading zero, below count (limit);
//  -1 when it is not one.
static ptrdiff_t
s_array_index (const char *token, size_t limit)
{
    if (!*token || (token[0] == '0' && token[1]) || strlen (token) > 18)
        return -1;
    for (const char *c = token; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    long long index = atoll (token);
    return index < 0 || (size_t)index >= limit ? -1 : (ptrdiff_t)index;
}

typedef struct {
    //  The container holding the target (NULL: the target is the root)
    zube_json_t *parent;
    char token[512];
    size_t token_len;
} s_location_t;

//  Walks pointer to the container of its last token. "" names the root.
static int
s_locate (zube_json_t *root, const char *pointer, s_location_t *where, const char **why)
{
    where->parent = NULL;
    if (!*pointer)
        return 0;
    if (*pointer != '/') {
        *why = "a JSON pointer must be empty or start with '/'";
        return -1;
    }
    zube_json_t *node = root;
    const char *rest = pointer;
    while (true) {
        if (s_pointer_token (&rest, where->token, sizeof where->token, &where->token_len)) {
            *why = "'~' must be followed by 0 or 1";
            return -1;
        }
        if (!*rest) {
            where->parent = node;
            if (node->type != ZUBE_JSON_OBJECT && node->type != ZUBE_JSON_ARRAY) {
                *why = "the parent is neither an object nor an array";
                return -1;
            }
            return 0;
        }
        zube_json_t *next = NULL;
        if (node->type == ZUBE_JSON_OBJECT) {
            ptrdiff_t at = s_object_find (node, where->token, where->token_len);
            next = at < 0 ? NULL : node->members[at].value;
        } else if (node->type == ZUBE_JSON_ARRAY) {
            ptrdiff_t at = s_array_index (where->token, node->count);
            next = at < 0 ? NULL : node->items[at];
        }
        if (!next) {
            *why = "the path does not exist";
            return -1;
        }
        node = next;
    }
}

//  The value at a location, or NULL.
static zube_json_t **
s_slot (zube_json_t **root_p, s_location_t *where)
{
    zube_json_t *parent = where->parent;
    if (!parent)
        return root_p;
    if (parent->type == ZUBE_JSON_OBJECT) {
        ptrdiff_t at = s_object_find (parent, where->token, where->token_len);
        return at < 0 ? NULL : &parent->members[at].value;
    }
    ptrdiff_t at = s_array_index (where->token, parent->count);
    return at < 0 ? NULL : &parent->items[at];
}

//  Takes value (also when it fails).
static int
s_add (zube_json_t **root_p, s_location_t *where, zube_json_t *value, const char **why)
{
    zube_json_t *parent = where->parent;
    if (!parent) {
        zube_json_free (root_p);
        *root_p = value;
        return 0;
    }
    if (parent->type == ZUBE_JSON_OBJECT) {
        zube_json_t **slot = s_slot (root_p, where);
        if (slot) {
            zube_json_free (slot);
            *slot = value;
            return 0;
        }
        char *key = s_memdup (where->token, where->token_len);
        if (key && s_object_add (parent, key, where->token_len, value) == 0)
            return 0;
        free (key);
    } else {
        ptrdiff_t at = streq (where->token, "-")
                           ? (ptrdiff_t)parent->count
                           : s_array_index (where->token, parent->count + 1);
        if (at < 0) {
            zube_json_free (&value);
            *why = "the array index is out of range";
            return -1;
        }
        if (s_array_add (parent, value) == 0) {
            memmove (&parent->items[at + 1], &parent->items[at],
                     (parent->count - 1 - (size_t)at) * sizeof parent->items[0]);
            parent->items[at] = value;
            return 0;
        }
    }
    zube_json_free (&value);
    *why = "out of memory";
    return -1;
}

//  Detaches the value at a location into *value_p.
static int
s_remove (zube_json_t **root_p, s_location_t *where, zube_json_t **value_p,
          const char **why)
{
    zube_json_t *parent = where->parent;
    zube_json_t **slot = s_slot (root_p, where);
    if (!slot) {
        *why = "the path does not exist";
        return -1;
    }
    *value_p = *slot;
    if (!parent)
        *root_p = NULL;
    else if (parent->type == ZUBE_JSON_OBJECT) {
        size_t at = (size_t)s_object_find (parent, where->token, where->token_len);
        parent->members[at].value = NULL;
        s_object_remove (parent, at);
    } else {
        size_t at = (size_t)(slot - parent->items);
        memmove (&parent->items[at], &parent->items[at + 1],
                 (parent->count - at - 1) * sizeof parent->items[0]);
        parent->count--;
    }
    return 0;
}

static const char *
s_member_string (const zube_json_t *operation, const char *name)
{
    const zube_json_t *value = zube_json_get (operation, name);
    return value && value->type == ZUBE_JSON_STRING ? value->text : NULL;
}

//  One operation; why says what failed.
static int
s_operation (zube_json_t **root_p, const zube_json_t *operation, const char *op,
             const char *path, const char **why)
{
    s_location_t where, from_where;
    const zube_json_t *value = zube_json_get (operation, "value");
    bool needs_value = streq (op, "add") || streq (op, "replace") || streq (op, "test");
    if (needs_value && !value) {
        *why = "the operation has no \"value\"";
        return -1;
    }
    const char *from = NULL;
    if (streq (op, "move") || streq (op, "copy")) {
        from = s_member_string (operation, "from");
        if (!from) {
            *why = "the operation has no \"from\" string";
            return -1;
        }
        if (s_locate (*root_p, from, &from_where, why) || !s_slot (root_p, &from_where)) {
            *why = "the \"from\" path does not exist";
            return -1;
        }
    }
    if (s_locate (*root_p, path, &where, why))
        return -1;
    if (streq (op, "add")) {
        zube_json_t *copy = zube_json_clone (value);
        if (!copy) {
            *why = "out of memory";
            return -1;
        }
        return s_add (root_p, &where, copy, why);
    }
    zube_json_t **slot = NULL;
    if (streq (op, "remove")) {
        zube_json_t *removed = NULL;
        int rc = s_remove (root_p, &where, &removed, why);
        zube_json_free (&removed);
        return rc;
    }
    if (streq (op, "replace") || streq (op, "test")) {
        slot = s_slot (root_p, &where);
        if (!slot) {
            *why = "the path does not exist";
            return -1;
        }
        if (streq (op, "test")) {
            if (zube_json_equal (*slot, value))
                return 0;
            *why = "test failed: the value differs";
            return -1;
        }
        zube_json_t *copy = zube_json_clone (value);
        if (!copy) {
            *why = "out of memory";
            return -1;
        }
        zube_json_free (slot);
        *slot = copy;
        return 0;
    }
    if (streq (op, "copy")) {
        zube_json_t *copy = zube_json_clone (*s_slot (root_p, &from_where));
        if (!copy) {
            *why = "out of memory";
            return -1;
        }
        return s_add (root_p, &where, copy, why);
    }
    if (streq (op, "move")) {
        size_t from_len = strlen (from);
        if (strncmp (path, from, from_len) == 0 && path[from_len] == '/') {
            *why = "a value cannot be moved into one of its own children";
            return -1;
        }
        if (streq (path, from))
            return 0;
        zube_json_t *moved = NULL;
        if (s_remove (root_p, &from_where, &moved, why))
            return -1;
        //  The target's parent may have moved with the removal
        if (s_locate (*root_p, path, &where, why)) {
            zube_json_free (&moved);
            return -1;
        }
        return s_add (root_p, &where, moved, why);
    }
    *why = "unknown operation (add, remove, replace, move, copy or test)";
    return -1;
}

int
zube_json_patch (zube_json_t **root_p, const zube_json_t *patch, char *error,
                 size_t error_size)
{
    if (patch->type != ZUBE_JSON_ARRAY) {
        snprintf (error, error_size, "a JSON patch must be an array of operations");
        return -1;
    }
    for (size_t i = 0; i < patch->count; i++) {
        const zube_json_t *operation = patch->items[i];
        const char *op = s_member_string (operation, "op");
        const char *path = s_member_string (operation, "path");
        const char *why = NULL;
        if (operation->type != ZUBE_JSON_OBJECT)
            why = "an operation must be an object";
        else if (!op)
            why = "the operation has no \"op\" string";
        else if (!path)
            why = "the operation has no \"path\" string";
        else if (!*root_p)
            why = "the document is empty";
        if (why || s_operation (root_p, operation, op, path, &why)) {
            snprintf (error, error_size, "operation %zu (%s %s): %s", i, op ? op : "?",
                      path ? path : "?", why);
            return -1;
        }
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Strategic merge patch: RFC 7386 plus Kubernetes' merge keys for the
//  lists whose Go fields carry patchStrategy "merge"

//  The merge key of a list member named field, or NULL (the list is
//  replaced whole).
static const char *
s_merge_key (const char *field, size_t len, const zube_json_t *patch_list)
{
    static const struct {
        const char *field;
        const char *key;
    } keys[] = {
        {"containers", "name"},       {"initContainers", "name"},
        {"ephemeralContainers", "name"}, {"volumes", "name"},
        {"env", "name"},              {"volumeMounts", "mountPath"},
        {"volumeDevices", "devicePath"}, {"imagePullSecrets", "name"},
        {"conditions", "type"},       {"hostAliases", "ip"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen (keys[i].field) == len && memcmp (keys[i].field, field, len) == 0)
            return keys[i].key;
    //  Container ports merge on containerPort, a Service's on port
    if (len == 5 && memcmp (field, "ports", 5) == 0) {
        for (size_t i = 0; i < patch_list->count; i++)
            if (zube_json_get (patch_list->items[i], "containerPort"))
                return "containerPort";
        return "port";
    }
    return NULL;
}

static zube_json_t *s_strategic (zube_json_t *target, const zube_json_t *patch,
                                 char *error, size_t error_size);

//  Merges the patch list into the target list by key; consumes target.
static zube_json_t *
s_strategic_list (zube_json_t *target, const zube_json_t *patch, const char *key,
                  char *error, size_t error_size)
{
    for (size_t i = 0; i < patch->count; i++) {
        const zube_json_t *item = patch->items[i];
        const zube_json_t *id = zube_json_get (item, key);
        if (!id) {
            snprintf (error, error_size, "a list item has no merge key \"%s\"", key);
            zube_json_free (&target);
            return NULL;
        }
        const zube_json_t *directive = zube_json_get (item, "$patch");
        bool remove = directive && directive->type == ZUBE_JSON_STRING &&
                      streq (directive->text, "delete");
        size_t at = 0;
        while (at < target->count &&
               !(zube_json_get (target->items[at], key) &&
                 zube_json_equal (zube_json_get (target->items[at], key), id)))
            at++;
        if (remove) {
            if (at < target->count) {
                zube_json_free (&target->items[at]);
                memmove (&target->items[at], &target->items[at + 1],
                         (target->count - at - 1) * sizeof target->items[0]);
                target->count--;
            }
            continue;
        }
        zube_json_t *merged = s_strategic (at < target->count ? target->items[at] : NULL,
                                           item, error, error_size);
        if (at < target->count)
            target->items[at] = NULL;
        if (!merged || (at == target->count && s_array_add (target, merged))) {
            if (at < target->count)
                target->items[at] = s_node_new (ZUBE_JSON_NULL);
            zube_json_free (&merged);
            zube_json_free (&target);
            if (!*error)
                snprintf (error, error_size, "out of memory");
            return NULL;
        }
        if (at < target->count)
            target->items[at] = merged;
    }
    return target;
}

static zube_json_t *
s_strategic (zube_json_t *target, const zube_json_t *patch, char *error,
             size_t error_size)
{
    if (patch->type != ZUBE_JSON_OBJECT) {
        zube_json_free (&target);
        return zube_json_clone (patch);
    }
    const zube_json_t *directive = zube_json_get (patch, "$patch");
    if (directive) {
        if (directive->type == ZUBE_JSON_STRING && streq (directive->text, "replace")) {
            zube_json_free (&target);
            target = NULL;
        } else {
            //  "delete" is handled on list items, before this
            snprintf (error, error_size,
                      "$patch: only \"replace\" on an object, \"delete\" on a list item, "
                      "is supported");
            zube_json_free (&target);
            return NULL;
        }
    }
    if (!target || target->type != ZUBE_JSON_OBJECT) {
        zube_json_free (&target);
        if (!(target = s_node_new (ZUBE_JSON_OBJECT)))
            return NULL;
    }
    for (size_t i = 0; i < patch->count; i++) {
        const zube_json_member_t *member = &patch->members[i];
        if (member->key_len && member->key[0] == '$') {
            if (streq (member->key, "$patch"))
                continue;
            snprintf (error, error_size, "the directive \"%s\" is not supported",
                      member->key);
            zube_json_free (&target);
            return NULL;
        }
        ptrdiff_t at = s_object_find (target, member->key, member->key_len);
        const zube_json_t *value = member->value;
        if (value->type == ZUBE_JSON_NULL) {
            if (at >= 0) {
                s_object_remove (target, (size_t)at);
            }
            continue;
        }
        zube_json_t *old = at >= 0 ? target->members[at].value : NULL;
        const char *key = value->type == ZUBE_JSON_ARRAY
                              ? s_merge_key (member->key, member->key_len, value)
                              : NULL;
        zube_json_t *merged;
        if (key && old && old->type == ZUBE_JSON_ARRAY)
            merged = s_strategic_list (old, value, key, error, error_size);
        else if (key) {
            zube_json_free (&old);
            zube_json_t *empty = s_node_new (ZUBE_JSON_ARRAY);
            merged = empty ? s_strategic_list (empty, value, key, error, error_size) : NULL;
        } else
            merged = s_strategic (old, value, error, error_size);
        if (at >= 0)
            target->members[at].value = merged;
        if (!merged) {
            if (at >= 0) {
                target->members[at].value = NULL;
                s_object_remove (target, (size_t)at);
            }
            zube_json_free (&target);
            return NULL;
        }
        if (at < 0) {
            char *copy = s_memdup (member->key, member->key_len);
            if (!copy || s_object_add (target, copy, member->key_len, merged)) {
                free (copy);
                zube_json_free (&merged);
                zube_json_free (&target);
                return NULL;
            }
        }
    }
    return target;
}

zube_json_t *
zube_json_strategic_merge (zube_json_t *target, const zube_json_t *patch, char *error,
                           size_t error_size)
{
    if (error_size)
        *error = 0;
    zube_json_t *merged = s_strategic (target, patch, error, error_size);
    if (!merged && error_size && !*error)
        snprintf (error, error_size, "out of memory");
    return merged;
}
