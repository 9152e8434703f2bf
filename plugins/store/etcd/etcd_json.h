/*  etcd_json - the little JSON the etcd plugin speaks, and base64.

    The plugin must not link libzube, so it reads JSON with libzubejson
    (lib/zube_json.c alone) and adds what etcd's v3 JSON gateway needs:
    dotted lookups, int64 fields that arrive as strings, keys and values
    in base64, the end of one document in a stream, and a growable buffer
    to write requests into.

    Private to plugins/store/etcd: the symbols are not exported from
    etcd.so. */
#ifndef ETCD_JSON_H_INCLUDED
#define ETCD_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zube_json_private.h"

//  A parsed answer. The reader is libzubejson's (lib/zube_json.c, built
//  alone for plugins: not libzube): values are zube_json_t nodes.
typedef struct {
    zube_json_t *root;
    //  Why parsing failed ("line 1, column 3: ..."), or "".
    char error[200];
} etcd_json_t;

//  Parses text[0..size) as one JSON document into self->root (what self
//  held before is freed). 0 or -1 (error set).
int etcd_json_parse (etcd_json_t *self, const char *text, size_t size);
void etcd_json_reset (etcd_json_t *self);
void etcd_json_free (etcd_json_t *self);

//  The member NAME of object OBJECT, or NULL. NAME may be a dotted path
//  ("header.revision").
const zube_json_t *etcd_json_get (const zube_json_t *object, const char *name);
//  The value as an integer: a NUMBER, or a STRING holding one (int64 as
//  etcd sends it). fallback when node is NULL or not a number.
int64_t etcd_json_int (const zube_json_t *node, int64_t fallback);
bool etcd_json_bool (const zube_json_t *node);
//  The elements of an array: 0 when node is not one.
size_t etcd_json_count (const zube_json_t *node);
//  A STRING's text in a malloc'd copy; NULL if not a string or out of
//  memory.
char *etcd_json_string (const zube_json_t *node);
//  A STRING holding base64, decoded into *data_p (malloc'd, NUL-terminated
//  beyond *size_p). An absent node (NULL) decodes as empty: etcd omits
//  empty values. 0, or -1 when it is not valid base64 or memory runs out.
int etcd_json_base64 (const zube_json_t *node, char **data_p, size_t *size_p);

//  Where the first complete top-level JSON value of text[0..size) ends
//  (the byte after it), skipping leading white space; 0 when the text
//  holds no complete value yet. For streams of concatenated documents.
size_t etcd_json_complete (const char *text, size_t size);

//  ---------------------------------------------------------------------
//  A growable buffer to write JSON (and anything else) into. Appends after
//  an allocation failure do nothing and leave `failed` set, so a caller
//  checks once at the end.

typedef struct {
    char *data;
    size_t size;
    size_t capacity;
    bool failed;
} etcd_buf_t;

void etcd_buf_append (etcd_buf_t *self, const void *data, size_t size);
void etcd_buf_printf (etcd_buf_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  data as base64 (no quotes).
void etcd_buf_base64 (etcd_buf_t *self, const void *data, size_t size);
//  Drops the first `size` bytes.
void etcd_buf_consume (etcd_buf_t *self, size_t size);
void etcd_buf_reset (etcd_buf_t *self);
void etcd_buf_free (etcd_buf_t *self);

#endif
