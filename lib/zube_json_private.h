/*  zube_json - a small JSON tree for the merge patch (private to libzube).

    Parses JSON text into a tree that keeps what a patch needs to keep:
    object members in document order, strings decoded (escapes, \u
    sequences, surrogate pairs) with their length (a string may hold
    NUL), and numbers as the text they were written as, so no value is
    changed by a round trip through a double. Writes the tree back as
    compact JSON. Errors read as Go's encoding/json words them, with the
    line and column. */
#ifndef ZUBE_JSON_PRIVATE_H_INCLUDED
#define ZUBE_JSON_PRIVATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    ZUBE_JSON_NULL,
    ZUBE_JSON_FALSE,
    ZUBE_JSON_TRUE,
    ZUBE_JSON_NUMBER,
    ZUBE_JSON_STRING,
    ZUBE_JSON_ARRAY,
    ZUBE_JSON_OBJECT,
} zube_json_type_t;

typedef struct _zube_json_t zube_json_t;

typedef struct {
    char *key;
    size_t key_len;
    zube_json_t *value;
} zube_json_member_t;

struct _zube_json_t {
    zube_json_type_t type;
    //  STRING (decoded, NUL-terminated, len bytes) and NUMBER (as written)
    char *text;
    size_t len;
    //  ARRAY
    zube_json_t **items;
    //  OBJECT
    zube_json_member_t *members;
    //  items or members
    size_t count;
    size_t cap;
};

//  Parses one JSON value (surrounding white space allowed). NULL with
//  error "line 1, column 3: invalid character ..." on failure.
zube_json_t *zube_json_parse (const char *text, size_t size, char *error,
                              size_t error_size);
//  Compact JSON text (malloc'd), or NULL when out of memory.
char *zube_json_write (const zube_json_t *node);
void zube_json_free (zube_json_t **node_p);
//  A deep copy, or NULL when out of memory.
zube_json_t *zube_json_clone (const zube_json_t *node);
//  The member named key of an object, or NULL.
zube_json_t *zube_json_get (const zube_json_t *object, const char *key);

//  RFC 7386 MergePatch (target, patch): consumes target (which may be
//  NULL: absent) and returns the merged value (NULL when out of memory;
//  target is freed then).
zube_json_t *zube_json_merge_patch (zube_json_t *target, const zube_json_t *patch);

//  Deep equality (object members in any order; numbers by value).
bool zube_json_equal (const zube_json_t *a, const zube_json_t *b);

//  RFC 6902 JSON patch: applies patch (an array of operations) to
//  *root_p in place, in order. Returns 0, or -1 with error naming the
//  operation's index, op and path ("operation 1 (test /a): test failed:
//  the value differs"); *root_p is then partly patched, so callers patch
//  a copy they can drop.
int zube_json_patch (zube_json_t **root_p, const zube_json_t *patch, char *error,
                     size_t error_size);

//  Kubernetes' strategic merge patch, for what zube supports of it: a
//  merge patch whose lists of containers, initContainers,
//  ephemeralContainers, volumes, env, imagePullSecrets and conditions
//  merge by name (conditions by type), volumeMounts by mountPath, ports
//  by containerPort (a Service's by port); an item with "$patch":
//  "delete" removes its match; an object with "$patch": "replace" is
//  replaced whole. Every other list (tolerations included) is replaced,
//  as in a merge patch. Other "$" directives are an error. Consumes
//  target; NULL with error on failure.
zube_json_t *zube_json_strategic_merge (zube_json_t *target, const zube_json_t *patch,
                                        char *error, size_t error_size);

#endif
