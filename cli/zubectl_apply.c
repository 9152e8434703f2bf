/*  zubectl apply, create - write the objects of manifests to the cluster.

    apply creates an object that does not exist and otherwise merges the
    manifest into the live object, keeping what it applied in kubectl's
    last-applied annotation: a field dropped from the manifest since the
    last apply is removed, fields others set are kept, and an apply that
    would change nothing reports "unchanged" without writing. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zube/patch.h"
#include "zubectl.h"

#define S_CONFLICT_RETRIES 5

typedef struct {
    bool create_only;
} s_apply_t;

static void
s_print_result (zubectl_t *self, const zube_kind_t *kind, const char *name, const char *what)
{
    char kind_name[128];
    zubectl_kind_name (kind, kind_name, sizeof kind_name);
    if (self->output_format == ZUBECTL_OUTPUT_NAME)
        printf ("%s/%s\n", kind_name, name);
    else
        printf ("%s/%s %s\n", kind_name, name, what);
    fflush (stdout);
}

//  A merge patch that removes every field the last applied configuration
//  set and the new one no longer does (maps key by key; lists and
//  scalars whole). Appends to out; returns whether it wrote anything.
static bool s_removals (const ProtobufCMessage *last, const ProtobufCMessage *next, FILE *out);

static bool
s_is_map_entry (const ProtobufCMessageDescriptor *descriptor)
{
    size_t length = strlen (descriptor->name);
    return descriptor->n_fields == 2 && length > 5
           && strcmp (descriptor->name + length - 5, "Entry") == 0
           && strcmp (descriptor->fields[0].name, "key") == 0;
}

static bool
s_field_present (const ProtobufCMessage *message, const ProtobufCFieldDescriptor *field)
{
    const uint8_t *base = (const uint8_t *) message;
    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *) (base + field->quantifier_offset) > 0;
    if (field->type == PROTOBUF_C_TYPE_STRING || field->type == PROTOBUF_C_TYPE_MESSAGE) {
        const void *value = *(const void *const *) (base + field->offset);
        return value != NULL && value != field->default_value;
    }
    if (field->quantifier_offset && field->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *) (base + field->quantifier_offset);
    return false;
}

static void
s_open_key (FILE *out, bool *any, const char *key)
{
    fputc (*any ? ',' : '{', out);
    *any = true;
    zube_cli_json_string (out, key);
    fputc (':', out);
}

static bool
s_removals (const ProtobufCMessage *last, const ProtobufCMessage *next, FILE *out)
{
    bool any = false;
    const ProtobufCMessageDescriptor *descriptor = last->descriptor;
    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
        const char *json_name = zube_codec_json_name (field);
        bool in_last = s_field_present (last, field);
        bool in_next = next && s_field_present (next, field);
        if (!in_last)
            continue;
        if (!in_next) {
            s_open_key (out, &any, json_name);
            fputs ("null", out);
            continue;
        }
        if (field->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const ProtobufCMessageDescriptor *sub = field->descriptor;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!s_is_map_entry (sub))
                continue;
            //  A map: keys that went away.
            size_t n_last = *(const size_t *) ((const uint8_t *) last + field->quantifier_offset);
            size_t n_next = *(const size_t *) ((const uint8_t *) next + field->quantifier_offset);
            ProtobufCMessage **a = *(ProtobufCMessage ***) ((uint8_t *) last + field->offset);
            ProtobufCMessage **b = *(ProtobufCMessage ***) ((uint8_t *) next + field->offset);
            bool opened = false;
            for (size_t x = 0; x < n_last; x++) {
                const char *key = *(const char **) ((uint8_t *) a[x] + sub->fields[0].offset);
                bool kept = false;
                for (size_t y = 0; y < n_next && !kept; y++) {
                    const char *other = *(const char **) ((uint8_t *) b[y] + sub->fields[0].offset);
                    kept = key && other && strcmp (key, other) == 0;
                }
                if (kept || !key)
                    continue;
                if (!opened)
                    s_open_key (out, &any, json_name);
                fputc (opened ? ',' : '{', out);
                opened = true;
                zube_cli_json_string (out, key);
                fputs (":null", out);
            }
            if (opened)
                fputc ('}', out);
            continue;
        }
        //  A message in both: look inside. Scalars in zube's own message
        //  types (Quantity, IntOrString) are replaced whole by the new value.
        if (strcmp (sub->name, "zube.Quantity") == 0 || strcmp (sub->name, "zube.IntOrString") == 0
            || strcmp (sub->name, "zube.RawExtension") == 0)
            continue;
        const ProtobufCMessage *a = *(const ProtobufCMessage *const *) ((const uint8_t *) last
                                                                        + field->offset);
        const ProtobufCMessage *b = *(const ProtobufCMessage *const *) ((const uint8_t *) next
                                                                        + field->offset);
        char *inner = NULL;
        size_t inner_size = 0;
        FILE *stream = open_memstream (&inner, &inner_size);
        if (!stream)
            continue;
        bool wrote = s_removals (a, b, stream);
        fclose (stream);
        if (wrote) {
            s_open_key (out, &any, json_name);
            fputs (inner, out);
        }
        free (inner);
    }
    if (any)
        fputc ('}', out);
    return any;
}

//  The live object with the manifest merged in (and, given the last
//  applied configuration, what it dropped removed). NULL after printing.
static ProtobufCMessage *
s_merge (const zube_kind_t *kind, const ProtobufCMessage *live, const ProtobufCMessage *desired)
{
    char error[1024];
    ProtobufCMessage *current = NULL;
    Zube__ObjectMeta *meta = zube_object_meta (live);
    const char *last_text = NULL;
    for (size_t i = 0; meta && i < meta->n_annotations; i++)
        if (meta->annotations[i]->key && strcmp (meta->annotations[i]->key, ZUBECTL_LAST_APPLIED) == 0)
            last_text = meta->annotations[i]->value;
    ProtobufCMessage *last = NULL;
    if (last_text && zube_codec_decode (last_text, strlen (last_text), kind->descriptor, &last, NULL) == 0) {
        char *removals = NULL;
        size_t size = 0;
        FILE *stream = open_memstream (&removals, &size);
        bool wrote = stream && s_removals (last, desired, stream);
        if (stream)
            fclose (stream);
        if (wrote && zube_merge_patch_apply (live, removals, &current, error, sizeof error) != 0)
            current = NULL;
        free (removals);
        protobuf_c_message_free_unpacked (last, NULL);
    }
    char *patch = zube_codec_encode_json (desired, false);
    ProtobufCMessage *merged = NULL;
    if (!patch
        || zube_merge_patch_apply (current ? current : live, patch, &merged, error, sizeof error)
               != 0) {
        zube_cli_error ("cannot merge the manifest into the live %s \"%s\": %s", kind->kind,
                        zubectl_object_name (live), patch ? error : "out of memory");
        merged = NULL;
    }
    free (patch);
    if (current)
        protobuf_c_message_free_unpacked (current, NULL);
    return merged;
}

//  The manifest's object as it is written: its namespace set, and for
//  apply the last-applied annotation holding it.
#define S_LAST_APPLIED_MAX (200 * 1024)

static ProtobufCMessage *
s_desired (zubectl_t *self, const zube_kind_t *kind, const ProtobufCMessage *object,
           const char *namespace, bool annotate)
{
    char error[1024];
    ProtobufCMessage *desired = NULL;
    char *quoted_ns = namespace ? zubectl_json_quote (namespace) : NULL;
    char *patch = NULL;
    if (quoted_ns && asprintf (&patch, "{\"metadata\":{\"namespace\":%s}}", quoted_ns) < 0)
        patch = NULL;
    free (quoted_ns);
    if (patch) {
        int rc = zube_merge_patch_apply (object, patch, &desired, error, sizeof error);
        free (patch);
        patch = NULL;
        if (rc != 0) {
            zube_cli_error ("%s", error);
            return NULL;
        }
    }
    if (!annotate)
        return desired;
    const ProtobufCMessage *base = desired ? desired : object;
    char *json = zube_codec_encode_json (base, false);
    //  Kubernetes caps all annotations of an object at 256 KiB: a manifest
    //  that large is applied without its copy (the server still judges the
    //  object itself, size included).
    if (json && strlen (json) > S_LAST_APPLIED_MAX) {
        free (json);
        if (desired)
            return desired;
        ProtobufCMessage *copy = NULL;
        if (zube_merge_patch_apply (object, "{}", &copy, error, sizeof error) != 0)
            zube_cli_error ("%s", error);
        return copy;
    }
    char *quoted = json ? zubectl_json_quote (json) : NULL;
    char *key = zubectl_json_quote (ZUBECTL_LAST_APPLIED);
    ProtobufCMessage *annotated = NULL;
    if (quoted && key
        && asprintf (&patch, "{\"metadata\":{\"annotations\":{%s:%s}}}", key, quoted) >= 0) {
        if (zube_merge_patch_apply (base, patch, &annotated, error, sizeof error) != 0) {
            zube_cli_error ("%s", error);
            annotated = NULL;
        }
        free (patch);
    }
    free (json);
    free (quoted);
    free (key);
    if (desired)
        protobuf_c_message_free_unpacked (desired, NULL);
    return annotated;
}

static int
s_apply_object (zubectl_t *self, const char *source, zube_codec_object_t *object, void *arg)
{
    s_apply_t *apply = (s_apply_t *) arg;
    const zube_kind_t *kind = object->kind;
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return -1;
    const char *name = zubectl_object_name (object->message);
    const char *namespace = NULL;
    if (kind->namespaced) {
        const char *own = zubectl_object_namespace (object->message);
        if (*own && self->namespace_flag && strcmp (own, self->namespace_flag) != 0) {
            zube_cli_error ("the namespace from the provided object \"%s\" does not match the "
                            "namespace \"%s\". You must pass '--namespace=%s' to perform this "
                            "operation.",
                            own, self->namespace_flag, own);
            return -1;
        }
        namespace = *own ? own : zubectl_namespace (self);
    }
    Zube__ObjectMeta *meta = zube_object_meta (object->message);
    bool generated = meta && meta->generate_name && *meta->generate_name;
    if (!*name && (!apply->create_only || !generated)) {
        zube_cli_error ("error validating \"%s\": document %d: metadata.name: Required value: "
                        "name or generateName is required",
                        source, object->document);
        return -1;
    }
    ProtobufCMessage *desired = NULL;
    if (apply->create_only) {
        if (namespace && !*zubectl_object_namespace (object->message)) {
            desired = s_desired (self, kind, object->message, namespace, false);
            if (!desired)
                return -1;
        }
    }
    else {
        desired = s_desired (self, kind, object->message, namespace, true);
        if (!desired)
            return -1;
    }
    const ProtobufCMessage *to_write = desired ? desired : object->message;
    zube_api_error_t error;
    char context[1200];
    snprintf (context, sizeof context, "error when creating \"%s\"", source);
    int rc = -1;
    for (int attempt = 0; attempt < S_CONFLICT_RETRIES; attempt++) {
        ProtobufCMessage *live = NULL;
        if (!apply->create_only) {
            zube_status_t status = zube_api_get (api, kind->resource, namespace, name, &live, &error);
            if (status != ZUBE_OK && status != ZUBE_NOT_FOUND) {
                char kind_name[128];
                snprintf (context, sizeof context,
                          "error when retrieving current configuration of %s/%s from server "
                          "for \"%s\"",
                          zubectl_kind_name (kind, kind_name, sizeof kind_name), name, source);
                zubectl_print_api_error (self, &error, context);
                break;
            }
        }
        if (!live) {
            ProtobufCMessage *created = NULL;
            zube_status_t status =
                zube_api_create (api, kind->resource, namespace, to_write, false, &created, &error);
            if (status == ZUBE_OK) {
                s_print_result (self, kind, zubectl_object_name (created), "created");
                protobuf_c_message_free_unpacked (created, NULL);
                rc = 0;
                break;
            }
            if (status == ZUBE_ALREADY_EXISTS && !apply->create_only)
                continue;   //  created meanwhile: configure it instead
            snprintf (context, sizeof context, "error when creating \"%s\"", source);
            zubectl_print_api_error (self, &error, context);
            break;
        }
        ProtobufCMessage *merged = s_merge (kind, live, to_write);
        if (!merged) {
            protobuf_c_message_free_unpacked (live, NULL);
            break;
        }
        if (zubectl_objects_equal (merged, live)) {
            s_print_result (self, kind, name, "unchanged");
            protobuf_c_message_free_unpacked (merged, NULL);
            protobuf_c_message_free_unpacked (live, NULL);
            rc = 0;
            break;
        }
        ProtobufCMessage *updated = NULL;
        zube_status_t status =
            zube_api_update (api, kind->resource, namespace, merged, NULL, false, &updated, &error);
        protobuf_c_message_free_unpacked (merged, NULL);
        //  The merge may differ from the live object only in what the
        //  server defaults (a list replaced whole loses its defaulted
        //  fields): the server then writes nothing and answers the live
        //  resourceVersion, which is "unchanged" as kubectl says it.
        const Zube__ObjectMeta *live_meta = zube_object_meta (live);
        const Zube__ObjectMeta *updated_meta =
            status == ZUBE_OK ? zube_object_meta (updated) : NULL;
        bool unchanged = live_meta && updated_meta && live_meta->resource_version
                         && updated_meta->resource_version
                         && strcmp (live_meta->resource_version,
                                    updated_meta->resource_version) == 0;
        protobuf_c_message_free_unpacked (live, NULL);
        if (status == ZUBE_OK) {
            s_print_result (self, kind, name, unchanged ? "unchanged" : "configured");
            protobuf_c_message_free_unpacked (updated, NULL);
            rc = 0;
            break;
        }
        if (status == ZUBE_CONFLICT && attempt + 1 < S_CONFLICT_RETRIES)
            continue;
        char kind_name[128];
        snprintf (context, sizeof context, "error when applying patch to %s/%s from \"%s\"",
                  zubectl_kind_name (kind, kind_name, sizeof kind_name), name, source);
        zubectl_print_api_error (self, &error, context);
        break;
    }
    if (desired)
        protobuf_c_message_free_unpacked (desired, NULL);
    return rc;
}

static int
s_run_manifests (zubectl_t *self, const char *filename, bool create_only)
{
    s_apply_t apply = {.create_only = create_only};
    int failures = zubectl_each_manifest_object (self, filename, s_apply_object, &apply);
    return failures == 0 ? 0 : 1;
}

int
zubectl_apply (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *filename = NULL;
    zube_cli_flag_t flags[] = {
        {.name = "filename", .short_name = 'f', .type = ZUBE_CLI_STRING, .value = &filename,
         .value_name = "FILE", .help = "The manifest to apply: a file, a directory, or - for stdin"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (!filename) {
        zube_cli_error ("must specify one of -f and -k");
        return 1;
    }
    if (count > 0) {
        zube_cli_error ("Unexpected args: [%s]", args[0]);
        return 1;
    }
    return s_run_manifests (self, filename, false);
}

static int
s_create_namespace (zubectl_t *self, const char *name)
{
    const zube_kind_t *kind = zube_kind_lookup ("v1", "Namespace");
    zube_api_t *api = zubectl_api (self);
    if (!kind || !api)
        return 1;
    char *quoted = zubectl_json_quote (name);
    char *text = NULL;
    if (!quoted
        || asprintf (&text, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":%s}}",
                     quoted)
               < 0) {
        free (quoted);
        zube_cli_error ("out of memory");
        return 1;
    }
    free (quoted);
    ProtobufCMessage *object = NULL;
    zube_codec_error_t codec_error;
    int rc = zube_codec_decode (text, strlen (text), kind->descriptor, &object, &codec_error);
    free (text);
    if (rc != 0) {
        char line[1024];
        zube_cli_error ("%s", zube_codec_error_format (&codec_error, line, sizeof line));
        return 1;
    }
    zube_api_error_t error;
    ProtobufCMessage *created = NULL;
    rc = 1;
    if (zube_api_create (api, kind->resource, NULL, object, false, &created, &error) == ZUBE_OK) {
        if (self->output_format == ZUBECTL_OUTPUT_YAML || self->output_format == ZUBECTL_OUTPUT_JSON) {
            zubectl_object_set_type (created, kind);
            rc = zubectl_print_message (self, created) == 0 ? 0 : 1;
        }
        else {
            s_print_result (self, kind, name, "created");
            rc = 0;
        }
        protobuf_c_message_free_unpacked (created, NULL);
    }
    else
        zubectl_print_api_error (self, &error, NULL);
    protobuf_c_message_free_unpacked (object, NULL);
    return rc;
}

int
zubectl_create (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *filename = NULL;
    zube_cli_flag_t flags[] = {
        {.name = "filename", .short_name = 'f', .type = ZUBE_CLI_STRING, .value = &filename,
         .value_name = "FILE", .help = "The manifest to create: a file, a directory, or - for stdin"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count > 0) {
        const zube_kind_t *kind = zube_kind_by_resource (args[0]);
        if (!kind || strcmp (kind->kind, "Namespace") != 0) {
            zube_cli_error ("unknown command \"%s\" for \"zubectl create\"", args[0]);
            return 1;
        }
        if (count != 2) {
            zube_cli_error ("exactly one NAME is required, got %d", count - 1);
            return 1;
        }
        return s_create_namespace (self, args[1]);
    }
    if (!filename) {
        zube_cli_error ("must specify one of -f and -k");
        return 1;
    }
    return s_run_manifests (self, filename, true);
}
