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

//  Patches target (JSON text) with patch (JSON text) of type merge or
//  json; the compact result or NULL with error.
static char *
s_patch_text (const char *target, const char *patch, zube_patch_type_t type, char *error,
              size_t error_size)
{
    char detail[512];
    zube_json_t *document =
        zube_json_parse (patch, patch ? strlen (patch) : 0, detail, sizeof detail);
    if (!document) {
        s_error (error, error_size, "patch", detail);
        return NULL;
    }
    zube_json_t *tree =
        zube_json_parse (target, target ? strlen (target) : 0, detail, sizeof detail);
    char *patched = NULL;
    if (!tree)
        s_error (error, error_size, "target", detail);
    else if (type == ZUBE_PATCH_JSON) {
        if (zube_json_patch (&tree, document, detail, sizeof detail) != 0)
            s_error (error, error_size, "json patch", detail);
        else if (!tree)
            s_error (error, error_size, "json patch", "the document was removed");
        else if (!(patched = zube_json_write (tree)))
            s_error (error, error_size, "patch", "out of memory");
    } else {
        tree = zube_json_merge_patch (tree, document);
        if (!tree || !(patched = zube_json_write (tree)))
            s_error (error, error_size, "patch", "out of memory");
    }
    zube_json_free (&tree);
    zube_json_free (&document);
    return patched;
}

char *
zube_merge_patch_json (const char *target, const char *patch, char *error,
                       size_t error_size)
{
    return s_patch_text (target, patch, ZUBE_PATCH_MERGE, error, error_size);
}

char *
zube_json_patch_json (const char *target, const char *patch, char *error,
                      size_t error_size)
{
    return s_patch_text (target, patch, ZUBE_PATCH_JSON, error, error_size);
}

//  Encodes object as a JSON tree.
static zube_json_t *
s_object_tree (const ProtobufCMessage *object, char *error, size_t error_size)
{
    char *json = zube_codec_encode_json (object, false);
    if (!json) {
        s_error (error, error_size, "patch", "cannot encode the object as JSON");
        return NULL;
    }
    char detail[512];
    zube_json_t *tree = zube_json_parse (json, strlen (json), detail, sizeof detail);
    free (json);
    if (!tree)
        s_error (error, error_size, "target", detail);
    return tree;
}

//  Decodes the patched tree back into object's kind.
static int
s_decode (const zube_json_t *tree, const ProtobufCMessageDescriptor *descriptor,
          ProtobufCMessage **result_p, char *error, size_t error_size)
{
    char *merged = zube_json_write (tree);
    if (!merged) {
        s_error (error, error_size, "patch", "out of memory");
        return -1;
    }
    ProtobufCMessage *result = NULL;
    zube_codec_error_t decode_error;
    int rc = zube_codec_decode (merged, strlen (merged), descriptor, &result,
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

int
zube_merge_patch_apply (const ProtobufCMessage *object, const char *patch,
                        ProtobufCMessage **result_p, char *error, size_t error_size)
{
    return zube_patch_apply (object, ZUBE_PATCH_MERGE, patch, result_p, error,
                             error_size) == 0
               ? 0
               : -1;
}

int
zube_patch_apply (const ProtobufCMessage *object, zube_patch_type_t type,
                  const char *patch, ProtobufCMessage **result_p, char *error,
                  size_t error_size)
{
    if (!object || !result_p) {
        s_error (error, error_size, "patch", "no object to patch");
        return ZUBE_PATCH_BAD;
    }
    char detail[512];
    zube_json_t *document =
        zube_json_parse (patch, patch ? strlen (patch) : 0, detail, sizeof detail);
    if (!document) {
        s_error (error, error_size, "patch", detail);
        return ZUBE_PATCH_BAD;
    }
    if (type == ZUBE_PATCH_JSON ? document->type != ZUBE_JSON_ARRAY
                                : document->type != ZUBE_JSON_OBJECT) {
        zube_json_free (&document);
        s_error (error, error_size, "patch",
                 type == ZUBE_PATCH_JSON ? "a JSON patch must be an array of operations"
                                         : "a merge patch must be a JSON object");
        return ZUBE_PATCH_BAD;
    }
    zube_json_t *tree = s_object_tree (object, error, error_size);
    int rc = tree ? 0 : ZUBE_PATCH_BAD;
    if (tree && type == ZUBE_PATCH_JSON) {
        if (zube_json_patch (&tree, document, detail, sizeof detail) != 0) {
            s_error (error, error_size, "json patch", detail);
            rc = ZUBE_PATCH_FAILED;
        }
    } else if (tree && type == ZUBE_PATCH_STRATEGIC) {
        tree = zube_json_strategic_merge (tree, document, detail, sizeof detail);
        if (!tree) {
            s_error (error, error_size, "strategic merge patch", detail);
            rc = ZUBE_PATCH_FAILED;
        }
    } else if (tree) {
        tree = zube_json_merge_patch (tree, document);
        if (!tree) {
            s_error (error, error_size, "patch", "out of memory");
            rc = ZUBE_PATCH_BAD;
        }
    }
    zube_json_free (&document);
    if (rc == 0 && (!tree || tree->type != ZUBE_JSON_OBJECT)) {
        s_error (error, error_size, "patched object", "the result is not a JSON object");
        rc = ZUBE_PATCH_FAILED;
    }
    if (rc == 0 && s_decode (tree, object->descriptor, result_p, error, error_size))
        rc = ZUBE_PATCH_BAD;
    zube_json_free (&tree);
    return rc;
}

zube_patch_type_t
zube_patch_type_parse (const char *content_type)
{
    if (!content_type || !*content_type ||
        strcmp (content_type, "application/merge-patch+json") == 0)
        return ZUBE_PATCH_MERGE;
    if (strcmp (content_type, "application/strategic-merge-patch+json") == 0)
        return ZUBE_PATCH_STRATEGIC;
    if (strcmp (content_type, "application/json-patch+json") == 0)
        return ZUBE_PATCH_JSON;
    return ZUBE_PATCH_UNKNOWN;
}
