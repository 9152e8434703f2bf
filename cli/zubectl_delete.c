/*  zubectl delete - delete objects by name, by the manifests that describe
    them, or by label selector, printing `pod "web" deleted` as kubectl. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zubectl.h"

typedef struct {
    zube_api_delete_options_t options;
    bool ignore_not_found;
    int deleted;
} s_delete_t;

static int
s_delete_one (zubectl_t *self, const zube_kind_t *kind, const char *namespace,
              const char *name, void *arg)
{
    s_delete_t *delete = (s_delete_t *) arg;
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return -1;
    zube_api_error_t error;
    if (zube_api_delete (api, kind->resource, kind->namespaced ? namespace : NULL, name,
                         &delete->options, NULL, &error)
        != ZUBE_OK) {
        if (delete->ignore_not_found && error.status == ZUBE_NOT_FOUND)
            return 0;
        zubectl_print_api_error (self, &error, NULL);
        return -1;
    }
    char kind_name[128];
    zubectl_kind_name (kind, kind_name, sizeof kind_name);
    if (self->output_format == ZUBECTL_OUTPUT_NAME)
        printf ("%s/%s\n", kind_name, name);
    else
        printf ("%s \"%s\" deleted\n", kind_name, name);
    fflush (stdout);
    delete->deleted++;
    return 0;
}

static int
s_delete_manifest_object (zubectl_t *self, const char *source, zube_codec_object_t *object,
                          void *arg)
{
    const char *namespace = zubectl_object_namespace (object->message);
    if (object->kind->namespaced && self->namespace_flag && *namespace
        && strcmp (namespace, self->namespace_flag) != 0) {
        zube_cli_error ("the namespace from the provided object \"%s\" does not match the "
                        "namespace \"%s\". You must pass '--namespace=%s' to perform this "
                        "operation.",
                        namespace, self->namespace_flag, namespace);
        return -1;
    }
    return s_delete_one (self, object->kind, *namespace ? namespace : zubectl_namespace (self),
                         zubectl_object_name (object->message), arg);
}

int
zubectl_each_type_name (zubectl_t *self, char **args, int count, zubectl_named_fn *fn,
                        void *arg)
{
    int rc = 0;
    for (int i = 0; i < count; i++) {
        char *slash = strchr (args[i], '/');
        if (!slash) {
            zube_cli_error ("there is no need to specify a resource type as a separate "
                            "argument when passing arguments in resource/name form");
            return 1;
        }
        *slash = 0;
        const zube_kind_t *kind = zubectl_kind (args[i]);
        if (!kind)
            return 1;
        if (fn (self, kind, zubectl_namespace (self), slash + 1, arg) != 0)
            rc = 1;
    }
    return rc;
}

int
zubectl_each_listed (zubectl_t *self, const zube_kind_t *kind,
                     const zube_api_list_options_t *options, zubectl_named_fn *fn, void *arg)
{
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return 1;
    zube_api_list_t *list = NULL;
    zube_api_error_t error;
    if (zube_api_list (api, kind->resource, options, &list, &error) != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < list->count; i++)
        if (fn (self, kind, zubectl_object_namespace (list->items[i]),
                zubectl_object_name (list->items[i]), arg)
            != 0)
            rc = 1;
    if (list->count == 0) {
        if (kind->namespaced && options->namespace)
            fprintf (stderr, "No resources found in %s namespace.\n", options->namespace);
        else
            fprintf (stderr, "No resources found\n");
    }
    zube_api_list_destroy (&list);
    return rc;
}

int
zubectl_delete (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *filename = NULL, *label_selector = NULL, *field_selector = NULL;
    long grace_period = -1;
    const char *cascade = "background";
    bool now = false, all = false, all_namespaces = false;
    s_delete_t delete = {.options = {.grace_period_seconds = -1}};
    zube_cli_flag_t flags[] = {
        {.name = "filename", .short_name = 'f', .type = ZUBE_CLI_STRING, .value = &filename,
         .value_name = "FILE", .help = "Delete the objects this manifest (file, directory or -) describes"},
        {.name = "selector", .short_name = 'l', .type = ZUBE_CLI_STRING, .value = &label_selector,
         .value_name = "SELECTOR", .help = "Delete the objects with matching labels"},
        {.name = "field-selector", .type = ZUBE_CLI_STRING, .value = &field_selector,
         .value_name = "SELECTOR", .help = "Delete the objects with matching fields"},
        {.name = "all", .type = ZUBE_CLI_BOOL, .value = &all,
         .help = "Delete every object of the resource type in the namespace"},
        {.name = "all-namespaces", .short_name = 'A', .type = ZUBE_CLI_BOOL, .value = &all_namespaces,
         .help = "With -l or --all: in every namespace"},
        {.name = "grace-period", .type = ZUBE_CLI_INT, .value = &grace_period, .value_name = "SECONDS",
         .help = "Seconds the object has to end gracefully; -1 (default): its own; 0: at once"},
        {.name = "now", .type = ZUBE_CLI_BOOL, .value = &now,
         .help = "Signal the object to end immediately (grace period 1)"},
        {.name = "ignore-not-found", .type = ZUBE_CLI_BOOL, .value = &delete.ignore_not_found,
         .help = "An object that does not exist is no error"},
        {.name = "cascade", .type = ZUBE_CLI_STRING, .value = &cascade, .value_name = "MODE",
         .help = "What happens to the objects it owns: background (default: the garbage "
                 "collector deletes them after it), foreground (they go first, the object "
                 "stays until then) or orphan (they stay)"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (now && grace_period >= 0) {
        zube_cli_error ("--now and --grace-period cannot be specified together");
        return 1;
    }
    delete.options.grace_period_seconds = now ? 1 : grace_period;
    //  As kubectl: the policy is always sent; true and false are the old
    //  spellings of background and orphan
    if (strcmp (cascade, "background") == 0 || strcmp (cascade, "true") == 0)
        delete.options.propagation_policy = "Background";
    else
    if (strcmp (cascade, "foreground") == 0)
        delete.options.propagation_policy = "Foreground";
    else
    if (strcmp (cascade, "orphan") == 0 || strcmp (cascade, "false") == 0)
        delete.options.propagation_policy = "Orphan";
    else {
        zube_cli_error ("invalid cascade value (%s). Must be \"background\", "
                        "\"foreground\", or \"orphan\".",
                        cascade);
        return 1;
    }
    if (filename) {
        if (count > 0) {
            zube_cli_error ("Unexpected args: [%s]", args[0]);
            return 1;
        }
        int failures = zubectl_each_manifest_object (self, filename, s_delete_manifest_object,
                                                     &delete);
        return failures == 0 ? 0 : 1;
    }
    if (count == 0) {
        zube_cli_error ("You must provide one or more resources by argument or filename.\n"
                        "Example resource specifications include:\n"
                        "   '-f rsrc.yaml'\n"
                        "   '--filename=rsrc.json'\n"
                        "   '<resource> <name>'\n"
                        "   '<resource>'");
        return 1;
    }
    const char *namespace = zubectl_namespace (self);
    int rc = 0;
    //  TYPE/NAME form.
    if (strchr (args[0], '/'))
        return zubectl_each_type_name (self, args, count, s_delete_one, &delete);
    const zube_kind_t *kind = zubectl_kind (args[0]);
    if (!kind)
        return 1;
    if (count > 1) {
        if (label_selector || all) {
            zube_cli_error ("name cannot be provided when a selector or --all is specified");
            return 1;
        }
        for (int i = 1; i < count; i++)
            if (s_delete_one (self, kind, namespace, args[i], &delete) != 0)
                rc = 1;
        return rc;
    }
    if (!label_selector && !field_selector && !all) {
        zube_cli_error ("resource(s) were provided, but no name was specified");
        return 1;
    }
    zube_api_list_options_t list_options = {
        .namespace = kind->namespaced && !all_namespaces ? namespace : NULL,
        .label_selector = label_selector,
        .field_selector = field_selector};
    return zubectl_each_listed (self, kind, &list_options, s_delete_one, &delete);
}
