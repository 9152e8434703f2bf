/*  etcd_json - the etcd plugin's JSON reader and writer, and base64.

    A recursive-descent reader with a depth limit into a flat node array
    (see etcd_json.h), and an append-only buffer. Nothing here allocates
    per string: node text points into the document. */
#define _GNU_SOURCE
#include "etcd_json.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_DEPTH 64

typedef struct {
    etcd_json_t *json;
    const char *text;
    size_t size;
    size_t at;
} s_parser_t;

static int
s_fail (s_parser_t *parser, const char *why)
{
    if (!parser->json->error)
        parser->json->error = why;
    return -1;
}

static int
s_node (s_parser_t *parser, etcd_json_type_t type, const char *text)
{
    etcd_json_t *json = parser->json;
    if (json->count == json->capacity) {
        size_t capacity = json->capacity ? json->capacity * 2 : 64;
        if (capacity > (size_t)1 << 28)
            return s_fail (parser, "document too large");
        etcd_json_node_t *nodes = realloc (json->nodes, capacity * sizeof *nodes);
        if (!nodes)
            return s_fail (parser, "out of memory");
        json->nodes = nodes;
        json->capacity = capacity;
    }
    json->nodes[json->count] = (etcd_json_node_t){
        .type = type, .text = text, .first = -1, .next = -1, .value = -1};
    return (int)json->count++;
}

static void
s_skip_space (s_parser_t *parser)
{
    while (parser->at < parser->size) {
        char c = parser->text[parser->at];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        parser->at++;
    }
}

static bool
s_is_digit (char c)
{
    return c >= '0' && c <= '9';
}

//  A string at parser->at (the opening quote): its node.
static int
s_string (s_parser_t *parser)
{
    size_t start = ++parser->at;
    while (parser->at < parser->size) {
        unsigned char c = (unsigned char)parser->text[parser->at];
        if (c == '"') {
            int node = s_node (parser, ETCD_JSON_STRING, parser->text + start);
            if (node >= 0)
                parser->json->nodes[node].size = parser->at - start;
            parser->at++;
            return node;
        }
        if (c < 0x20)
            return s_fail (parser, "control character in a string");
        if (c == '\\') {
            if (++parser->at >= parser->size)
                break;
            if (!strchr ("\"\\/bfnrtu", parser->text[parser->at]))
                return s_fail (parser, "bad escape in a string");
        }
        parser->at++;
    }
    return s_fail (parser, "unterminated string");
}

static int
s_number (s_parser_t *parser)
{
    const char *text = parser->text;
    size_t start = parser->at, at = parser->at;
    if (at < parser->size && text[at] == '-')
        at++;
    size_t digits = at;
    while (at < parser->size && s_is_digit (text[at]))
        at++;
    if (at == digits)
        return s_fail (parser, "bad number");
    if (at < parser->size && text[at] == '.') {
        size_t fraction = ++at;
        while (at < parser->size && s_is_digit (text[at]))
            at++;
        if (at == fraction)
            return s_fail (parser, "bad number");
    }
    if (at < parser->size && (text[at] == 'e' || text[at] == 'E')) {
        at++;
        if (at < parser->size && (text[at] == '+' || text[at] == '-'))
            at++;
        size_t exponent = at;
        while (at < parser->size && s_is_digit (text[at]))
            at++;
        if (at == exponent)
            return s_fail (parser, "bad number");
    }
    int node = s_node (parser, ETCD_JSON_NUMBER, text + start);
    if (node >= 0)
        parser->json->nodes[node].size = at - start;
    parser->at = at;
    return node;
}

static int
s_literal (s_parser_t *parser, const char *word, etcd_json_type_t type)
{
    size_t len = strlen (word);
    if (parser->size - parser->at < len ||
        memcmp (parser->text + parser->at, word, len) != 0)
        return s_fail (parser, "unexpected character");
    int node = s_node (parser, type, parser->text + parser->at);
    if (node >= 0)
        parser->json->nodes[node].size = len;
    parser->at += len;
    return node;
}

static int s_value (s_parser_t *parser, int depth);

//  An object or array at parser->at (its opening bracket).
static int
s_container (s_parser_t *parser, int depth)
{
    bool object = parser->text[parser->at] == '{';
    char close = object ? '}' : ']';
    size_t start = parser->at++;
    int node = s_node (parser, object ? ETCD_JSON_OBJECT : ETCD_JSON_ARRAY,
                       parser->text + start);
    if (node < 0)
        return -1;
    int last = -1;
    s_skip_space (parser);
    if (parser->at < parser->size && parser->text[parser->at] == close) {
        parser->at++;
        parser->json->nodes[node].size = parser->at - start;
        return node;
    }
    while (true) {
        s_skip_space (parser);
        int item;
        if (object) {
            if (parser->at >= parser->size || parser->text[parser->at] != '"')
                return s_fail (parser, "expected a member name");
            if ((item = s_string (parser)) < 0)
                return -1;
            s_skip_space (parser);
            if (parser->at >= parser->size || parser->text[parser->at] != ':')
                return s_fail (parser, "expected ':'");
            parser->at++;
            int value = s_value (parser, depth + 1);
            if (value < 0)
                return -1;
            parser->json->nodes[item].value = value;
        } else if ((item = s_value (parser, depth + 1)) < 0)
            return -1;
        if (last < 0)
            parser->json->nodes[node].first = item;
        else
            parser->json->nodes[last].next = item;
        last = item;
        s_skip_space (parser);
        if (parser->at >= parser->size)
            return s_fail (parser, "unterminated object or array");
        char c = parser->text[parser->at++];
        if (c == close)
            break;
        if (c != ',')
            return s_fail (parser, "expected ',' or a closing bracket");
    }
    parser->json->nodes[node].size = parser->at - start;
    return node;
}

static int
s_value (s_parser_t *parser, int depth)
{
    if (depth > S_MAX_DEPTH)
        return s_fail (parser, "nested too deeply");
    s_skip_space (parser);
    if (parser->at >= parser->size)
        return s_fail (parser, "unexpected end");
    char c = parser->text[parser->at];
    if (c == '{' || c == '[')
        return s_container (parser, depth);
    if (c == '"')
        return s_string (parser);
    if (c == '-' || s_is_digit (c))
        return s_number (parser);
    if (c == 't')
        return s_literal (parser, "true", ETCD_JSON_TRUE);
    if (c == 'f')
        return s_literal (parser, "false", ETCD_JSON_FALSE);
    if (c == 'n')
        return s_literal (parser, "null", ETCD_JSON_NULL);
    return s_fail (parser, "unexpected character");
}

int
etcd_json_parse (etcd_json_t *self, const char *text, size_t size)
{
    etcd_json_reset (self);
    s_parser_t parser = {.json = self, .text = text, .size = size};
    if (s_value (&parser, 0) < 0)
        return -1;
    s_skip_space (&parser);
    if (parser.at != size) {
        self->error = "text after the document";
        return -1;
    }
    return 0;
}

void
etcd_json_reset (etcd_json_t *self)
{
    self->count = 0;
    self->error = NULL;
}

void
etcd_json_free (etcd_json_t *self)
{
    free (self->nodes);
    *self = (etcd_json_t){0};
}

int
etcd_json_get (const etcd_json_t *self, int object, const char *name)
{
    while (object >= 0 && (size_t)object < self->count && *name) {
        if (self->nodes[object].type != ETCD_JSON_OBJECT)
            return -1;
        size_t len = strcspn (name, ".");
        int found = -1;
        for (int member = self->nodes[object].first; member >= 0;
             member = self->nodes[member].next)
            if (self->nodes[member].size == len &&
                memcmp (self->nodes[member].text, name, len) == 0) {
                found = self->nodes[member].value;
                break;
            }
        object = found;
        name += len;
        if (*name == '.')
            name++;
    }
    return object;
}

int64_t
etcd_json_int (const etcd_json_t *self, int node, int64_t fallback)
{
    if (node < 0 || (size_t)node >= self->count)
        return fallback;
    const etcd_json_node_t *n = &self->nodes[node];
    if ((n->type != ETCD_JSON_NUMBER && n->type != ETCD_JSON_STRING) || n->size == 0 ||
        n->size > 24)
        return fallback;
    char digits[32];
    memcpy (digits, n->text, n->size);
    digits[n->size] = 0;
    char *end = NULL;
    errno = 0;
    long long value = strtoll (digits, &end, 10);
    if (errno || *end)
        return fallback;
    return (int64_t)value;
}

bool
etcd_json_bool (const etcd_json_t *self, int node)
{
    return node >= 0 && (size_t)node < self->count &&
           self->nodes[node].type == ETCD_JSON_TRUE;
}

int
etcd_json_first (const etcd_json_t *self, int array)
{
    if (array < 0 || (size_t)array >= self->count ||
        self->nodes[array].type != ETCD_JSON_ARRAY)
        return -1;
    return self->nodes[array].first;
}

static int
s_hex (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

//  UTF-8 of code point into out (at least 4 bytes); its length.
static size_t
s_utf8 (unsigned int code, char *out)
{
    if (code < 0x80) {
        out[0] = (char)code;
        return 1;
    }
    if (code < 0x800) {
        out[0] = (char)(0xc0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3f));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xe0 | (code >> 12));
        out[1] = (char)(0x80 | ((code >> 6) & 0x3f));
        out[2] = (char)(0x80 | (code & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (code >> 18));
    out[1] = (char)(0x80 | ((code >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((code >> 6) & 0x3f));
    out[3] = (char)(0x80 | (code & 0x3f));
    return 4;
}

static int
s_hex4 (const char *text, size_t size, size_t at, unsigned int *code)
{
    if (at + 4 > size)
        return -1;
    *code = 0;
    for (size_t i = 0; i < 4; i++) {
        int digit = s_hex (text[at + i]);
        if (digit < 0)
            return -1;
        *code = (*code << 4) | (unsigned int)digit;
    }
    return 0;
}

char *
etcd_json_string (const etcd_json_t *self, int node)
{
    if (node < 0 || (size_t)node >= self->count ||
        self->nodes[node].type != ETCD_JSON_STRING)
        return NULL;
    const char *text = self->nodes[node].text;
    size_t size = self->nodes[node].size;
    char *out = malloc (size + 1);
    if (!out)
        return NULL;
    size_t used = 0;
    for (size_t at = 0; at < size; at++) {
        if (text[at] != '\\') {
            out[used++] = text[at];
            continue;
        }
        char c = text[++at];
        switch (c) {
        case 'b':
            out[used++] = '\b';
            break;
        case 'f':
            out[used++] = '\f';
            break;
        case 'n':
            out[used++] = '\n';
            break;
        case 'r':
            out[used++] = '\r';
            break;
        case 't':
            out[used++] = '\t';
            break;
        case 'u': {
            //  \uXXXX takes 6 bytes of input and gives at most 4 of output
            //  (a surrogate pair, 12 of input), so out is large enough.
            unsigned int code;
            if (s_hex4 (text, size, at + 1, &code) != 0) {
                free (out);
                return NULL;
            }
            at += 4;
            unsigned int low;
            if (code >= 0xd800 && code < 0xdc00 && at + 2 < size &&
                text[at + 1] == '\\' && text[at + 2] == 'u' &&
                s_hex4 (text, size, at + 3, &low) == 0 && low >= 0xdc00 && low < 0xe000) {
                code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                at += 6;
            }
            used += s_utf8 (code, out + used);
            break;
        }
        default:
            out[used++] = c;
            break;
        }
    }
    out[used] = 0;
    return out;
}

static int
s_base64_value (char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int
etcd_json_base64 (const etcd_json_t *self, int node, char **data_p, size_t *size_p)
{
    *data_p = NULL;
    *size_p = 0;
    const char *text = "";
    size_t size = 0;
    if (node >= 0) {
        if ((size_t)node >= self->count || self->nodes[node].type != ETCD_JSON_STRING)
            return -1;
        text = self->nodes[node].text;
        size = self->nodes[node].size;
    }
    while (size && text[size - 1] == '=')
        size--;
    if (size % 4 == 1)
        return -1;
    char *out = malloc (size / 4 * 3 + 3);
    if (!out)
        return -1;
    size_t used = 0;
    unsigned int bits = 0;
    int count = 0;
    for (size_t at = 0; at < size; at++) {
        int value = s_base64_value (text[at]);
        if (value < 0) {
            free (out);
            return -1;
        }
        bits = (bits << 6) | (unsigned int)value;
        if (++count == 4) {
            out[used++] = (char)(bits >> 16);
            out[used++] = (char)(bits >> 8);
            out[used++] = (char)bits;
            bits = 0;
            count = 0;
        }
    }
    if (count == 3) {
        out[used++] = (char)(bits >> 10);
        out[used++] = (char)(bits >> 2);
    } else if (count == 2)
        out[used++] = (char)(bits >> 4);
    out[used] = 0;
    *data_p = out;
    *size_p = used;
    return 0;
}

size_t
etcd_json_complete (const char *text, size_t size)
{
    size_t at = 0;
    while (at < size && strchr (" \t\r\n", text[at]))
        at++;
    if (at == size)
        return 0;
    if (text[at] != '{' && text[at] != '[')
        return size;
    int depth = 0;
    bool in_string = false;
    for (; at < size; at++) {
        char c = text[at];
        if (in_string) {
            if (c == '\\')
                at++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return at + 1;
    }
    return 0;
}

//  ---------------------------------------------------------------------

static bool
s_reserve (etcd_buf_t *self, size_t more)
{
    if (self->failed)
        return false;
    if (self->size + more + 1 <= self->capacity)
        return true;
    size_t capacity = self->capacity ? self->capacity : 256;
    while (capacity < self->size + more + 1)
        capacity *= 2;
    char *data = realloc (self->data, capacity);
    if (!data) {
        self->failed = true;
        return false;
    }
    self->data = data;
    self->capacity = capacity;
    return true;
}

void
etcd_buf_append (etcd_buf_t *self, const void *data, size_t size)
{
    if (!s_reserve (self, size))
        return;
    if (size)
        memcpy (self->data + self->size, data, size);
    self->size += size;
    self->data[self->size] = 0;
}

void
etcd_buf_printf (etcd_buf_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char small[256];
    int len = vsnprintf (small, sizeof small, format, args);
    va_end (args);
    if (len < 0) {
        self->failed = true;
        return;
    }
    if ((size_t)len < sizeof small) {
        etcd_buf_append (self, small, (size_t)len);
        return;
    }
    if (!s_reserve (self, (size_t)len))
        return;
    va_start (args, format);
    vsnprintf (self->data + self->size, (size_t)len + 1, format, args);
    va_end (args);
    self->size += (size_t)len;
}

void
etcd_buf_base64 (etcd_buf_t *self, const void *data, size_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!s_reserve (self, (size + 2) / 3 * 4))
        return;
    const unsigned char *bytes = data;
    char *out = self->data + self->size;
    size_t at = 0;
    for (; at + 3 <= size; at += 3) {
        unsigned int bits = ((unsigned int)bytes[at] << 16) |
                            ((unsigned int)bytes[at + 1] << 8) | bytes[at + 2];
        *out++ = alphabet[bits >> 18];
        *out++ = alphabet[(bits >> 12) & 63];
        *out++ = alphabet[(bits >> 6) & 63];
        *out++ = alphabet[bits & 63];
    }
    if (size - at == 1) {
        unsigned int bits = (unsigned int)bytes[at] << 16;
        *out++ = alphabet[bits >> 18];
        *out++ = alphabet[(bits >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (size - at == 2) {
        unsigned int bits =
            ((unsigned int)bytes[at] << 16) | ((unsigned int)bytes[at + 1] << 8);
        *out++ = alphabet[bits >> 18];
        *out++ = alphabet[(bits >> 12) & 63];
        *out++ = alphabet[(bits >> 6) & 63];
        *out++ = '=';
    }
    self->size = (size_t)(out - self->data);
    self->data[self->size] = 0;
}

void
etcd_buf_consume (etcd_buf_t *self, size_t size)
{
    if (size >= self->size) {
        etcd_buf_reset (self);
        return;
    }
    memmove (self->data, self->data + size, self->size - size);
    self->size -= size;
    self->data[self->size] = 0;
}

void
etcd_buf_reset (etcd_buf_t *self)
{
    self->size = 0;
    self->failed = false;
    if (self->data)
        self->data[0] = 0;
}

void
etcd_buf_free (etcd_buf_t *self)
{
    free (self->data);
    *self = (etcd_buf_t){0};
}
