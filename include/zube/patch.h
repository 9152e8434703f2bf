/*  zube_patch - JSON merge patch (RFC 7386) on objects of any kind.

    The apiserver applies `application/merge-patch+json` (and, as a
    subset, strategic merge patch, whose differences for lists are not
    modelled) through the generic codec: the object is encoded as JSON,
    the patch merged into it (objects merge key by key, null removes a
    key, anything else replaces), and the result decoded back into the
    object's kind with the codec's strict checks, so an unknown field in
    a patch is the same clear error as in a manifest. zubectl label and
    annotate build their patches with the same functions.

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
