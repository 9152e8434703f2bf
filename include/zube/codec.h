/*  zube_codec - YAML and JSON to and from any protobuf-c message.

    One generic codec, driven by protobuf-c descriptors, maps Kubernetes
    manifests onto zube's schemas (the .proto files in schemas/) and back:

    - Field names: a proto field `pod_ip` is `podIP` in YAML and JSON:
      lowerCamel, with the acronyms ip, ips, cidr, cidrs, pid, ipc written
      in capitals (IP, IPs, CIDR, CIDRs, PID, IPC) when not first, and a
      short table of Kubernetes names outside the rule ("containerID",
      "downwardAPI", DaemonEndpoint's "Port"); docs/schemas.md lists them.
    - Types: every protobuf scalar (range-checked), bool (true/false),
      enums by value name, bytes as base64, repeated fields as sequences,
      map<string, X> as mappings, nested messages as mappings.
      zube.Quantity is a scalar ("500m", 0.5), zube.IntOrString an int
      or a string, zube.RawExtension any value (kept as compact JSON).
    - Strict as Kubernetes' strict decoding: an unknown field, a
      duplicate key or a value of the wrong type (a plain 80 for a string
      field) is an error that names the document, line, column and field
      path. A YAML null for a field leaves it absent.
    - Limits: document size (3 MiB), nesting depth (100), and nodes
      produced by alias expansion (100000), so a billion-laughs document
      fails fast.

    Encoding writes every present field in descriptor order (apiVersion
    and kind first), skipping absent ones, as block-style YAML or as JSON.

        ProtobufCMessage *msg = NULL;
        zube_codec_error_t error;
        if (zube_codec_decode (text, strlen (text), &zube__pod__descriptor,
                               &msg, &error) == -1) {
            char line[1024];
            fprintf (stderr, "%s\n",
                     zube_codec_error_format (&error, line, sizeof line));
        }
        char *yaml = zube_codec_encode_yaml (msg);

    All functions are thread-safe. */
#ifndef ZUBE_CODEC_H_INCLUDED
#define ZUBE_CODEC_H_INCLUDED

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "zube/kinds.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Defaults for the limits (a zero field in zube_codec_limits_t means
//  the default).
#define ZUBE_CODEC_MAX_DOCUMENT_SIZE (3 * 1024 * 1024)
#define ZUBE_CODEC_MAX_ALIAS_NODES 100000
#define ZUBE_CODEC_MAX_DEPTH 100

typedef struct {
    //  Bytes per document (per JSON value), from its first to last byte
    size_t max_document_size;
    //  Nodes all alias expansions of a document may add
    size_t max_alias_nodes;
    //  Nested sequences and mappings
    int max_depth;
} zube_codec_limits_t;

//  Where and why decoding failed. document, line and column are 1-based
//  (0 when unknown); line counts from the start of the whole text, not
//  of the document. field is the Kubernetes-style path of the field in
//  error ("spec.containers[0].ports[1].containerPort", "metadata.labels[app]"),
//  empty for errors outside any field.
typedef struct {
    int document;
    int line;
    int column;
    char field[256];
    char message[512];
} zube_codec_error_t;

//  "document 2, line 14, column 9: spec.containers[0].image: expected a
//  string, got a sequence" into buf; returns buf.
const char *zube_codec_error_format (const zube_codec_error_t *error, char *buf,
                                     size_t size);

//  Decodes one YAML or JSON document into a new message of descriptor's
//  type, owned by the caller (free it with protobuf_c_message_free_unpacked).
//  Empty text gives an empty message. More than one document is an error.
//  Returns 0, or -1 with *error filled (error may be NULL) and *msg_p
//  untouched.
int zube_codec_decode (const char *text, size_t size,
                       const ProtobufCMessageDescriptor *descriptor,
                       ProtobufCMessage **msg_p, zube_codec_error_t *error);
//  The same with limits (NULL for the defaults)
int zube_codec_decode_with_limits (const char *text, size_t size,
                                   const ProtobufCMessageDescriptor *descriptor,
                                   const zube_codec_limits_t *limits,
                                   ProtobufCMessage **msg_p, zube_codec_error_t *error);

//  One object of a manifest stream
typedef struct {
    ProtobufCMessage *message;
    const zube_kind_t *kind;
    int document; //  1-based position of its document in the stream
    int line;     //  where the object starts
} zube_codec_object_t;

//  Decodes a stream of YAML documents (separated by ---) or JSON values,
//  each an object whose apiVersion and kind pick its descriptor from the
//  kinds registry (zube/kinds.h). Empty documents are skipped. A `List`
//  (kind "List" or "<Kind>List") contributes its items, each an object.
//  All or nothing: on success *objects_p is a new array of *count_p
//  objects (free with zube_codec_objects_free; NULL when empty); on
//  error nothing is returned and *error names the first problem.
int zube_codec_decode_objects (const char *text, size_t size,
                               zube_codec_object_t **objects_p, size_t *count_p,
                               zube_codec_error_t *error);
int zube_codec_decode_objects_with_limits (const char *text, size_t size,
                                           const zube_codec_limits_t *limits,
                                           zube_codec_object_t **objects_p,
                                           size_t *count_p, zube_codec_error_t *error);
//  Frees the objects and the array, and nulls *objects_p.
void zube_codec_objects_free (zube_codec_object_t **objects_p, size_t count);

//  Encodes a message as block-style YAML, or as JSON (pretty: indented
//  by four spaces and newline-terminated, as kubectl -o json writes;
//  otherwise compact, one line without a newline). Returns a new
//  NUL-terminated string to free(), or NULL on failure (out of memory,
//  a RawExtension holding invalid JSON).
char *zube_codec_encode_yaml (const ProtobufCMessage *msg);
char *zube_codec_encode_json (const ProtobufCMessage *msg, bool pretty);

//  The YAML/JSON name of a field ("podIP"). Never NULL; the string lives
//  as long as the program.
const char *zube_codec_json_name (const ProtobufCFieldDescriptor *field);

//  The field of descriptor whose YAML/JSON name is name, or NULL.
const ProtobufCFieldDescriptor *
zube_codec_field_by_json_name (const ProtobufCMessageDescriptor *descriptor,
                               const char *name);

#ifdef __cplusplus
}
#endif
#endif
