/*  zube_patch - patches on objects of any kind: JSON merge patch (RFC
    7386), JSON patch (RFC 6902) and Kubernetes' strategic merge patch.

    The apiserver applies all three through the generic codec: the object
    is encoded as JSON, the patch applied to that tree, and the result
    decoded back into the object's kind with the codec's strict checks,
    so an unknown field in a patch is the same clear error as in a
    manifest. A merge patch merges objects key by key (null removes a
    key, anything else replaces); a JSON patch runs its add, remove,
    replace, move, copy and test operations in order (JSON pointers with
    ~0 and ~1, "-" appends to an array); a strategic merge patch is a
    merge patch whose lists of containers, initContainers,
    ephemeralContainers, volumes, env, imagePullSecrets, conditions
    (by type), volumeMounts (by mountPath) and ports (by containerPort,
    a Service's by port) merge item by item by that key, with
    "$patch": "delete" on an item removing it; other lists (tolerations
    among them) are replaced. zubectl label and annotate build their
    patches with the same functions.

        ProtobufCMessage *patched = NULL;
        char error[512];
        if (zube_merge_patch_apply (pod, "{\"metadata\":{\"labels\":{\"a\":null}}}",
                                    &patched, error, sizeof error))
            ... error: "patch: line 1, column 3: ..."

    Thread-safe. */
#ifndef ZUBE_PATCH_H_INCLUDED
#define ZUBE_PATCH_H_INCLUDED

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZUBE_PATCH_MERGE = 0, //  application/merge-patch+json
    ZUBE_PATCH_STRATEGIC, //  application/strategic-merge-patch+json
    ZUBE_PATCH_JSON,      //  application/json-patch+json
    ZUBE_PATCH_UNKNOWN
} zube_patch_type_t;

//  What zube_patch_apply answers besides 0.
//  The patch is malformed, or its result is not a valid object of the
//  kind (an unknown field, a wrong type): Kubernetes' BadRequest.
#define ZUBE_PATCH_BAD -1
//  It does not apply: a failed test, a missing path, a list item without
//  its merge key (Kubernetes' Invalid, 422).
#define ZUBE_PATCH_FAILED -2

//  The type a patch's content type names (NULL or "": merge).
zube_patch_type_t zube_patch_type_parse (const char *content_type);

//  Applies patch (JSON text) of type to a copy of object; *result_p is
//  the patched copy, a new message of the same kind. Returns 0,
//  ZUBE_PATCH_BAD or ZUBE_PATCH_FAILED with error saying what is wrong;
//  a failing JSON patch operation is named by its index, op and path:
//  "json patch: operation 1 (test /spec/replicas): test failed: the
//  value differs".
int zube_patch_apply (const ProtobufCMessage *object, zube_patch_type_t type,
                      const char *patch, ProtobufCMessage **result_p, char *error,
                      size_t error_size);

//  Applies a JSON patch to target, both JSON text; the patched JSON
//  (malloc'd, compact) or NULL with error.
char *zube_json_patch_json (const char *target, const char *patch, char *error,
                            size_t error_size);

//  Merges patch (JSON text, NUL-terminated) into a copy of object and
//  returns the copy as a new message of the same kind in *result_p.
//  The patch must be a JSON object. Returns 0, or -1 with error saying
//  what is wrong (bad JSON, not an object, or the patched object's
//  decoding error with its field path).
int zube_merge_patch_apply (const ProtobufCMessage *object, const char *patch,
                            ProtobufCMessage **result_p, char *error, size_t error_size);

//  Merges patch into target, both JSON text; returns the merged JSON
//  (malloc'd, compact) or NULL with error.
char *zube_merge_patch_json (const char *target, const char *patch, char *error,
                             size_t error_size);

#ifdef __cplusplus
}
#endif
#endif
