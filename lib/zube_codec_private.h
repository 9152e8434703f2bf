/*  zube_codec_private - what the codec's source files share.

    The codec works in two steps. A reader (lib/zube_codec_read.c) turns
    YAML or JSON text into a small tree of nodes, one document at a time,
    enforcing the size, depth and alias limits; the decoder
    (lib/zube_codec.c) walks that tree against protobuf-c descriptors.
    The encoder (lib/zube_codec_encode.c) walks a message and drives a
    writer (YAML through libyaml's emitter, or JSON by hand) in
    lib/zube_codec_write.c. Both look fields up in one per-descriptor
    cache (lib/zube_codec_names.c).

    Nodes of one document live in one allocation list and are freed
    together; an alias makes two parents share one node, so the tree is
    really a DAG and is never freed recursively. */
#ifndef ZUBE_CODEC_PRIVATE_H_INCLUDED
#define ZUBE_CODEC_PRIVATE_H_INCLUDED

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zube/codec.h"

typedef enum {
    ZC_SCALAR,
    ZC_SEQUENCE,
    ZC_MAPPING,
} zc_node_type_t;

//  What a scalar is, resolved as YAML 1.2's core schema does for plain
//  scalars; quoted scalars (and JSON strings) are always strings.
typedef enum {
    ZC_STRING,
    ZC_NULL,
    ZC_BOOL,
    ZC_INT,
    ZC_FLOAT,
} zc_scalar_kind_t;

typedef struct zc_node_s zc_node_t;
struct zc_node_s {
    zc_node_type_t type;
    int line;   //  1-based
    int column; //  1-based
    //  Scalar: the text (NUL-terminated, may hold NULs) and its kind
    char *text;
    size_t length;
    zc_scalar_kind_t kind;
    bool plain; //  unquoted, untagged (a YAML merge key is a plain <<)
    //  Sequence: items; mapping: key, value, key, value, ...
    zc_node_t **items;
    size_t count;
    size_t capacity;
    //  Nodes this one stands for with aliases expanded, itself included
    size_t expanded;
    zc_node_t *next_alloc;
};

typedef struct {
    zc_node_t *root; //  NULL for an empty document
    int number;      //  1-based position in the stream
    int line;        //  where the document starts, 1-based
    int column;
    zc_node_t *allocs; //  every node of the document
} zc_document_t;

typedef struct zc_reader_s zc_reader_t;

//  Limits with the defaults filled in for zeros
void zc_limits_resolve (const zube_codec_limits_t *limits, zube_codec_limits_t *resolved);

//  A reader over text; JSON if the first non-blank character is { or [,
//  YAML otherwise. The text must outlive the reader.
zc_reader_t *zc_reader_new (const char *text, size_t size,
                            const zube_codec_limits_t *limits);
void zc_reader_destroy (zc_reader_t **self_p);

//  Reads the next document: 1 and *document filled, 0 at the end of the
//  stream, -1 with *error filled. Call zc_document_clear after each.
int zc_reader_next (zc_reader_t *self, zc_document_t *document,
                    zube_codec_error_t *error);
void zc_document_clear (zc_document_t *document);

//  Parses one JSON value (RawExtension text) into a document; -1 on
//  invalid JSON.
int zc_json_parse (const char *text, size_t size, zc_document_t *document,
                   zube_codec_error_t *error);

//  Resolves a plain scalar's kind
zc_scalar_kind_t zc_plain_kind (const char *text, size_t length);

//  Writes a node as compact JSON into a growing buffer; -1 on a
//  duplicate key or a document nested deeper than max_depth (error set).
typedef struct {
    char *data;
    size_t size;
    size_t capacity;
    bool failed; //  out of memory
} zc_buffer_t;

void zc_buffer_append (zc_buffer_t *self, const char *data, size_t size);
void zc_buffer_append_str (zc_buffer_t *self, const char *text);
void zc_buffer_append_json_string (zc_buffer_t *self, const char *text, size_t size);

//  Writing: one writer per output, YAML or JSON
typedef struct zc_writer_s zc_writer_t;
zc_writer_t *zc_writer_new_yaml (void);
zc_writer_t *zc_writer_new_json (bool pretty);
//  The output, malloc'd and NUL-terminated, or NULL if writing failed;
//  destroys the writer.
char *zc_writer_finish (zc_writer_t **self_p);
void zc_writer_destroy (zc_writer_t **self_p);
void zc_writer_mapping_start (zc_writer_t *self);
void zc_writer_mapping_end (zc_writer_t *self);
void zc_writer_sequence_start (zc_writer_t *self);
void zc_writer_sequence_end (zc_writer_t *self);
//  A mapping key (always a string)
void zc_writer_key (zc_writer_t *self, const char *text, size_t size);
//  A string value, quoted as needed
void zc_writer_string (zc_writer_t *self, const char *text, size_t size);
//  A number, true, false or null, written as is
void zc_writer_literal (zc_writer_t *self, const char *text);
void zc_writer_fail (zc_writer_t *self);

//  Descriptor cache (lib/zube_codec_names.c)
typedef enum {
    ZC_SPECIAL_NONE,
    ZC_SPECIAL_QUANTITY,      //  zube.Quantity: a scalar
    ZC_SPECIAL_INT_OR_STRING, //  zube.IntOrString: an int or a string
    ZC_SPECIAL_RAW_EXTENSION, //  zube.RawExtension: any value, as JSON
    ZC_SPECIAL_MAP_ENTRY,     //  a map<K, V> field's entry message
} zc_special_t;

typedef struct {
    const ProtobufCMessageDescriptor *descriptor;
    char **names;      //  YAML/JSON name per field index
    unsigned *by_name; //  field indexes sorted by name
    zc_special_t special;
} zc_info_t;

//  The cache entry for a descriptor, built on first use; NULL only when
//  out of memory.
zc_info_t *zc_info (const ProtobufCMessageDescriptor *descriptor);
//  The index of the field named name (length bytes), or -1
int zc_info_find (const zc_info_t *info, const char *name, size_t length);
//  Bytes one value of the field's type takes in a repeated array
size_t zc_element_size (const ProtobufCFieldDescriptor *field);
extern const char zc_base64_alphabet[];

//  Key lookups: a small open-addressing set of strings, for duplicate
//  keys and anchors.
typedef struct {
    const char **keys;
    size_t *lengths;
    void **values;
    size_t count;
    size_t capacity;
} zc_strmap_t;

//  Returns the value stored for key, or NULL.
void *zc_strmap_get (zc_strmap_t *self, const char *key, size_t length);
//  Stores (replacing); the map keeps its own copy of the key. -1 on out
//  of memory.
int zc_strmap_put (zc_strmap_t *self, const char *key, size_t length, void *value);
void zc_strmap_clear (zc_strmap_t *self);

#endif
