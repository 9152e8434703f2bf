/*  etcd_json - the etcd plugin's JSON reader and writer, and base64.

    Lookups over libzubejson's tree (see etcd_json.h), base64, and an
    append-only buffer. */
#define _GNU_SOURCE
#include "etcd_json.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
etcd_json_parse (etcd_json_t *self, const char *text, size_t size)
{
    zube_json_free (&self->root);
    self->error[0] = '\0';
    self->root = zube_json_parse (text, size, self->error, sizeof self->error);
    return self->root ? 0 : -1;
}

void
etcd_json_reset (etcd_json_t *self)
{
    zube_json_free (&self->root);
    self->error[0] = '\0';
}

void
etcd_json_free (etcd_json_t *self)
{
    etcd_json_reset (self);
}

const zube_json_t *
etcd_json_get (const zube_json_t *object, const char *name)
{
    char part[128];
    while (object && *name) {
        size_t len = strcspn (name, ".");
        if (object->type != ZUBE_JSON_OBJECT || len >= sizeof part)
            return NULL;
        memcpy (part, name, len);
        part[len] = '\0';
        object = zube_json_get (object, part);
        name += len;
        if (*name == '.')
            name++;
    }
    return object;
}

int64_t
etcd_json_int (const zube_json_t *node, int64_t fallback)
{
    if (!node || (node->type != ZUBE_JSON_NUMBER && node->type != ZUBE_JSON_STRING) ||
        node->len == 0 || node->len > 24)
        return fallback;
    char *end = NULL;
    errno = 0;
    long long value = strtoll (node->text, &end, 10);
    if (errno || *end)
        return fallback;
    return (int64_t)value;
}

bool
etcd_json_bool (const zube_json_t *node)
{
    return node && node->type == ZUBE_JSON_TRUE;
}

size_t
etcd_json_count (const zube_json_t *node)
{
    return node && node->type == ZUBE_JSON_ARRAY ? node->count : 0;
}

char *
etcd_json_string (const zube_json_t *node)
{
    if (!node || node->type != ZUBE_JSON_STRING)
        return NULL;
    char *copy = malloc (node->len + 1);
    if (copy) {
        memcpy (copy, node->text, node->len);
        copy[node->len] = '\0';
    }
    return copy;
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
etcd_json_base64 (const zube_json_t *node, char **data_p, size_t *size_p)
{
    *data_p = NULL;
    *size_p = 0;
    const char *text = "";
    size_t size = 0;
    if (node) {
        if (node->type != ZUBE_JSON_STRING)
            return -1;
        text = node->text;
        size = node->len;
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
