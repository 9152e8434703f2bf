/*  etcd_json - the little JSON the etcd plugin speaks, and base64.

    The plugin must not link libzube (whose codec has a JSON reader), so it
    carries its own: a reader that parses one document into a flat array
    of nodes pointing into the text (no copies; strings are decoded on
    demand), and a growable buffer to write requests into. Enough for
    etcd's v3 JSON gateway: objects, arrays, strings, numbers, true, false,
    null; int64 fields arrive as strings; keys and values as base64.

    Private to plugins/store/etcd: the symbols are not exported from
    etcd.so. */
#ifndef ETCD_JSON_H_INCLUDED
#define ETCD_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ETCD_JSON_NULL = 1,
    ETCD_JSON_FALSE,
    ETCD_JSON_TRUE,
    ETCD_JSON_NUMBER,
    ETCD_JSON_STRING,
    ETCD_JSON_ARRAY,
    ETCD_JSON_OBJECT
} etcd_json_type_t;

//  One value. In an object, each member is a STRING node (the name) whose
//  `value` is the member's value. Indexes are into etcd_json_t.nodes; -1
//  for none.
typedef struct {
    etcd_json_type_t type;
    //  STRING: the text between the quotes, still escaped; NUMBER: the
    //  number's text; ARRAY, OBJECT: from the bracket to its match.
    const char *text;
    size_t size;
    int first;
    int next;
    int value;
} etcd_json_node_t;

typedef struct {
    etcd_json_node_t *nodes;
    size_t count;
    size_t capacity;
    //  Why parsing failed (static text), or NULL.
    const char *error;
} etcd_json_t;

//  Parses text[0..size) as one JSON document; the root is node 0. The
//  nodes point into text, which must outlive the parse. 0 or -1 (error
//  set). Free with etcd_json_reset, which keeps the node array for reuse.
int etcd_json_parse (etcd_json_t *self, const char *text, size_t size);
void etcd_json_reset (etcd_json_t *self);
void etcd_json_free (etcd_json_t *self);

//  The member NAME of object node OBJECT, or -1. NAME may be a dotted
//  path ("header.revision"); names are matched unescaped, as etcd sends.
int etcd_json_get (const etcd_json_t *self, int object, const char *name);
//  The value as an integer: a NUMBER, or a STRING holding one (int64 as
//  etcd sends it). fallback when node is -1, absent or not a number.
int64_t etcd_json_int (const etcd_json_t *self, int node, int64_t fallback);
bool etcd_json_bool (const etcd_json_t *self, int node);
//  The first element of an array (then follow .next), or -1.
int etcd_json_first (const etcd_json_t *self, int array);
//  STRING node unescaped into a malloc'd, NUL-terminated copy; NULL if not
//  a string or out of memory.
char *etcd_json_string (const etcd_json_t *self, int node);
//  A STRING holding base64, decoded into *data_p (malloc'd, NUL-terminated
//  beyond *size_p). An absent node (-1) decodes as empty: etcd omits empty
//  values. 0, or -1 when it is not valid base64 or memory runs out.
int etcd_json_base64 (const etcd_json_t *self, int node, char **data_p, size_t *size_p);

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
