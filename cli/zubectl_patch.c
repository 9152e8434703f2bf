/*  zubectl patch, label, annotate - change fields of one object through
    the apiserver's patch (JSON, merge or strategic merge; label and
    annotate send merge patches). Each first applies the patch to the live
    object here, so a patch that changes nothing says so without writing
    (kubectl's "(no change)"), and label and annotate refuse to change an
    existing value without --overwrite, as kubectl does. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zube/patch.h"
#include "zube/selector.h"
#include "zubectl.h"

//  RESOURCE NAME or TYPE/NAME at args; returns how many arguments that
//  took (1 or 2), or -1 after printing.
static int
s_target (char **args, int count, const zube_kind_t **kind_p, const char **name_p)
{
    if (count < 1) {
        zube_cli_error ("you must specify the type of resource and its name");
        return -1;
    }
    char *slash = strchr (args[0], '/');
    if (slash) {
        *slash = 0;
        *name_p = slash + 1;
        *kind_p = zubectl_kind (args[0]);
        return *kind_p ? 1 : -1;
    }
    *kind_p = zubectl_kind (args[0]);
    if (!*kind_p)
        return -1;
    if (count < 2) {
        zube_cli_error ("resource(s) were provided, but no name was specified");
        return -1;
    }
    *name_p = args[1];
    return 2;
}

static void
s_print_done (zubectl_t *self, const zube_kind_t *kind, const char *name,
              const ProtobufCMessage *object, const char *what)
{
    if ((self->output_format == ZUBECTL_OUTPUT_YAML || self->output_format == ZUBECTL_OUTPUT_JSON)
        && object) {
        ProtobufCMessage *copy = (ProtobufCMessage *) object;
        zubectl_object_set_type (copy, kind);
        zubectl_print_message (self, copy);
        return;
    }
    char kind_name[128];
    zubectl_kind_name (kind, kind_name, sizeof kind_name);
    if (self->output_format == ZUBECTL_OUTPUT_NAME)
        printf ("%s/%s\n", kind_name, name);
    else
        printf ("%s/%s %s\n", kind_name, name, what);
}

//  Merges patch into the live object; sends it unless nothing changes.
//  what_changed / what_unchanged: the words printed.
static int
s_patch (zubectl_t *self, const zube_kind_t *kind, const char *name, const char *patch_type,
         const char *patch, const char *what_changed, const char *what_unchanged)
{
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return 1;
    const char *namespace = kind->namespaced ? zubectl_namespace (self) : NULL;
    ProtobufCMessage *live = NULL;
    zube_api_error_t error;
    if (zube_api_get (api, kind->resource, namespace, name, &live, &error) != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return 1;
    }
    //  A patch that does not apply here is sent anyway: the server's
    //  answer names the failing operation as Kubernetes words it
    ProtobufCMessage *merged = NULL;
    char text[1024];
    int applied = zube_patch_apply (live, zube_patch_type_parse (patch_type), patch, &merged,
                                    text, sizeof text);
    if (applied == ZUBE_PATCH_BAD) {
        zube_cli_error ("unable to parse \"%s\": %s", patch, text);
        protobuf_c_message_free_unpacked (live, NULL);
        return 1;
    }
    if (applied == 0) {
        bool same = zubectl_objects_equal (merged, live);
        protobuf_c_message_free_unpacked (merged, NULL);
        if (same) {
            s_print_done (self, kind, name, live, what_unchanged);
            protobuf_c_message_free_unpacked (live, NULL);
            return 0;
        }
    }
    protobuf_c_message_free_unpacked (live, NULL);
    ProtobufCMessage *patched = NULL;
    if (zube_api_patch (api, kind->resource, namespace, name, patch_type, patch, NULL, false,
                        &patched, &error)
        != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return 1;
    }
    s_print_done (self, kind, name, patched, what_changed);
    protobuf_c_message_free_unpacked (patched, NULL);
    return 0;
}

int
zubectl_patch (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *patch = NULL, *type = "strategic";
    zube_cli_flag_t flags[] = {
        {.name = "patch", .short_name = 'p', .type = ZUBE_CLI_STRING, .value = &patch,
         .value_name = "PATCH", .help = "The patch to apply, as JSON (YAML is not accepted)"},
        {.name = "type", .type = ZUBE_CLI_STRING, .value = &type, .value_name = "TYPE",
         .help = "json (RFC 6902), merge (RFC 7386) or strategic (default; the list merge "
                 "keys zube-apiserver(1) lists)"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    const zube_kind_t *kind = NULL;
    const char *name = NULL;
    int used = s_target (args, count, &kind, &name);
    if (used < 0)
        return 1;
    if (used < count) {
        zube_cli_error ("unexpected argument \"%s\"", args[used]);
        return 1;
    }
    if (!patch || !*patch) {
        zube_cli_error ("must specify -p to patch");
        return 1;
    }
    const char *patch_type = NULL;
    if (strcmp (type, "merge") == 0)
        patch_type = "application/merge-patch+json";
    else
    if (strcmp (type, "strategic") == 0)
        patch_type = "application/strategic-merge-patch+json";
    else
    if (strcmp (type, "json") == 0)
        patch_type = "application/json-patch+json";
    else {
        zube_cli_error ("--type must be one of [json merge strategic], not \"%s\"", type);
        return 1;
    }
    return s_patch (self, kind, name, patch_type, patch, "patched", "patched (no change)");
}

//  label and annotate: KEY=VALUE sets, KEY- removes.
static int
s_metadata_map (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv,
                bool labels)
{
    bool overwrite = false;
    zube_cli_flag_t flags[] = {
        {.name = "overwrite", .type = ZUBE_CLI_BOOL, .value = &overwrite,
         .help = "Allow changing the value of a key that has one"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    const zube_kind_t *kind = NULL;
    const char *name = NULL;
    int used = s_target (args, count, &kind, &name);
    if (used < 0)
        return 1;
    const char *what = labels ? "label" : "annotation";
    if (used == count) {
        zube_cli_error ("at least one %s update is required", what);
        return 1;
    }
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return 1;
    const char *namespace = kind->namespaced ? zubectl_namespace (self) : NULL;
    ProtobufCMessage *live = NULL;
    zube_api_error_t error;
    if (zube_api_get (api, kind->resource, namespace, name, &live, &error) != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return 1;
    }
    Zube__ObjectMeta *meta = zube_object_meta (live);
    char *patch = NULL;
    size_t patch_size = 0;
    FILE *out = open_memstream (&patch, &patch_size);
    if (!out) {
        protobuf_c_message_free_unpacked (live, NULL);
        return 1;
    }
    fprintf (out, "{\"metadata\":{\"%s\":{", labels ? "labels" : "annotations");
    int rc = 0;
    for (int i = used; i < count && rc == 0; i++) {
        char *arg = args[i];
        char *equals = strchr (arg, '=');
        size_t length = strlen (arg);
        char key[512], problem[512];
        const char *value = NULL;
        if (equals) {
            snprintf (key, sizeof key, "%.*s", (int) (equals - arg), arg);
            value = equals + 1;
        }
        else
        if (length > 1 && arg[length - 1] == '-')
            snprintf (key, sizeof key, "%.*s", (int) (length - 1), arg);
        else {
            zube_cli_error ("invalid %s spec: %s", what, arg);
            rc = 1;
            break;
        }
        if (zube_label_key_validate (key, problem, sizeof problem) != 0) {
            zube_cli_error ("invalid %s spec: %s: %s", what, arg, problem);
            rc = 1;
            break;
        }
        if (labels && value && zube_label_value_validate (value, problem, sizeof problem) != 0) {
            zube_cli_error ("invalid label value: \"%s\": %s", arg, problem);
            rc = 1;
            break;
        }
        size_t n = meta ? (labels ? meta->n_labels : meta->n_annotations) : 0;
        for (size_t e = 0; value && !overwrite && e < n; e++) {
            const char *existing_key = labels ? meta->labels[e]->key : meta->annotations[e]->key;
            const char *existing = labels ? meta->labels[e]->value : meta->annotations[e]->value;
            if (existing_key && strcmp (existing_key, key) == 0 && strcmp (existing ? existing : "", value) != 0) {
                zube_cli_error ("'%s' already has a value (%s), and --overwrite is false", key,
                                existing ? existing : "");
                rc = 1;
            }
        }
        if (i > used)
            fputc (',', out);
        zube_cli_json_string (out, key);
        fputc (':', out);
        if (value)
            zube_cli_json_string (out, value);
        else
            fputs ("null", out);
    }
    fputs ("}}}", out);
    fclose (out);
    protobuf_c_message_free_unpacked (live, NULL);
    if (rc == 0)
        rc = s_patch (self, kind, name, "application/merge-patch+json", patch,
                      labels ? "labeled" : "annotated", labels ? "not labeled" : "annotated");
    free (patch);
    return rc;
}

int
zubectl_label (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    return s_metadata_map (self, command, argc, argv, true);
}

int
zubectl_annotate (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    return s_metadata_map (self, command, argc, argv, false);
}
