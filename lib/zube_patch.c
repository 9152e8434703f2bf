/*  zube_patch - JSON merge patch (RFC 7386) on objects of any kind.

    The object goes through the generic codec both ways: encoded as
    compact JSON, merged as a tree (lib/zube_json.c), and decoded back
    with the codec's strict checks into the object's own descriptor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zube/codec.h"
#include "zube/patch.h"
#include "zube_json_private.h"

static void
s_error (char *error, size_t size, const char *what, const char *detail)
{
    if (error && size)
        snprintf (error, size, "%s: %s", what, detail);
}

//  Parses the patch, then merges it into target (JSON text); the merged
//  compact text or NULL with error
static char *
s_merge (const char *target, size_t target_size, const zube_json_t *patch, char *error,
         size_t error_size)
{
    char detail[512];
    zube_json_t *tree = zube_json_parse (target, target_size, detail, sizeof detail);
    if (!tree) {
        s_error (error, error_size, "target", detail);
        return NULL;
    }
    tree = zube_json_merge_patch (tree, patch);
    char *merged = tree ? zube_json_write (tree) : NULL;
    zube_json_free (&tree);
    if (!merged)
        s_error (error, error_size, "patch", "out of memory");
    return merged;
}

char *
zube_merge_patch_json (const char *target, const char *patch, char *error,
                       size_t error_size)
{
    char detail[512];
    zube_json_t *tree =
        zube_json_parse (patch, patch ? strlen (patch) : 0, detail, sizeof detail);
    if (!tree) {
        s_error (error, error_size, "patch", detail);
        return NULL;
    }
    char *merged =
        s_merge (target, target ? strlen (target) : 0, tree, error, error_size);
    zube_json_free (&tree);
    return merged;
}

int
zube_merge_patch_apply (const ProtobufCMessage *object, const char *patch,
                        ProtobufCMessage **result_p, char *error, size_t error_size)
{
    if (!object || !result_p) {
        s_error (error, error_size, "patch", "no object to patch");
        return -1;
    }
    char detail[512];
    zube_json_t *tree =
        zube_json_parse (patch, patch ? strlen (patch) : 0, detail, sizeof detail);
    if (!tree) {
        s_error (error, error_size, "patch", detail);
        return -1;
    }
    if (tree->type != ZUBE_JSON_OBJECT) {
        zube_json_free (&tree);
        s_error (error, error_size, "patch", "a merge patch must be a JSON object");
        return -1;
    }
    char *json = zube_codec_encode_json (object, false);
    if (!json) {
        zube_json_free (&tree);
        s_error (error, error_size, "patch", "cannot encode the object as JSON");
        return -1;
    }
    char *merged = s_merge (json, strlen (json), tree, error, error_size);
    free (json);
    zube_json_free (&tree);
    if (!merged)
        return -1;

    ProtobufCMessage *result = NULL;
    zube_codec_error_t decode_error;
    int rc = zube_codec_decode (merged, strlen (merged), object->descriptor, &result,
                                &decode_error);
    free (merged);
    if (rc) {
        char message[800];
        if (decode_error.field[0])
            snprintf (message, sizeof message, "%s: %s", decode_error.field,
                      decode_error.message);
        else
            snprintf (message, sizeof message, "%s", decode_error.message);
        s_error (error, error_size, "patched object", message);
        return -1;
    }
    *result_p = result;
    return 0;
}
