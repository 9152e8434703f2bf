/*  zubectl scale - spec.replicas through the scale subresource, as
    kubectl scale: the Scale is read, --current-replicas and
    --resource-version checked against it, and the new size written at
    the resourceVersion read, so a change in between is a Conflict rather
    than a lost update. Prints `deployment.apps/web scaled`. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zubectl.h"

typedef struct {
    long replicas;
    long current_replicas;
    const char *resource_version;
} s_scale_t;

static int
s_scale_one (zubectl_t *self, const zube_kind_t *kind, const char *namespace, const char *name,
             void *arg)
{
    const s_scale_t *options = (const s_scale_t *) arg;
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return 1;
    if (!kind->namespaced)
        namespace = NULL;
    zube_api_error_t error;
    Zube__Scale *scale = NULL;
    if (zube_api_get_scale (api, kind->resource, namespace, name, &scale, &error) != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return 1;
    }
    int current = scale->spec && scale->spec->has_replicas ? scale->spec->replicas : 0;
    if (options->current_replicas >= 0 && options->current_replicas != current) {
        zube_cli_error ("Expected replicas to be %ld, was %d", options->current_replicas,
                        current);
        zube__scale__free_unpacked (scale, NULL);
        return 1;
    }
    if (options->resource_version) {
        free (scale->metadata->resource_version);
        scale->metadata->resource_version = strdup (options->resource_version);
    }
    scale->spec->has_replicas = true;
    scale->spec->replicas = (int32_t) options->replicas;
    zube_status_t status =
        zube_api_update (api, kind->resource, namespace, &scale->base, "scale", false, NULL,
                         &error);
    zube__scale__free_unpacked (scale, NULL);
    if (status != ZUBE_OK) {
        zubectl_print_api_error (self, &error, NULL);
        return 1;
    }
    if (self->output_format == ZUBECTL_OUTPUT_YAML || self->output_format == ZUBECTL_OUTPUT_JSON) {
        ProtobufCMessage *object = NULL;
        if (zube_api_get (api, kind->resource, namespace, name, &object, &error) != ZUBE_OK) {
            zubectl_print_api_error (self, &error, NULL);
            return 1;
        }
        zubectl_object_set_type (object, kind);
        zubectl_print_message (self, object);
        protobuf_c_message_free_unpacked (object, NULL);
        return 0;
    }
    char kind_name[128];
    zubectl_kind_name (kind, kind_name, sizeof kind_name);
    if (self->output_format == ZUBECTL_OUTPUT_NAME)
        printf ("%s/%s\n", kind_name, name);
    else
        printf ("%s/%s scaled\n", kind_name, name);
    fflush (stdout);
    return 0;
}

int
zubectl_scale (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    s_scale_t options = {.replicas = -1, .current_replicas = -1};
    const char *label_selector = NULL;
    bool all = false;
    zube_cli_flag_t flags[] = {
        {.name = "replicas", .type = ZUBE_CLI_INT, .value = &options.replicas,
         .value_name = "COUNT", .help = "The new desired number of replicas (required)"},
        {.name = "current-replicas", .type = ZUBE_CLI_INT, .value = &options.current_replicas,
         .value_name = "COUNT",
         .help = "Precondition: scale only if the current size is this (-1: no condition)"},
        {.name = "resource-version", .type = ZUBE_CLI_STRING,
         .value = &options.resource_version, .value_name = "VERSION",
         .help = "Precondition: scale only if the resourceVersion is this"},
        {.name = "selector", .short_name = 'l', .type = ZUBE_CLI_STRING, .value = &label_selector,
         .value_name = "SELECTOR", .help = "Scale the objects of the type with matching labels"},
        {.name = "all", .type = ZUBE_CLI_BOOL, .value = &all,
         .help = "Scale every object of the type in the namespace"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (options.replicas < 0 || options.replicas > INT32_MAX) {
        zube_cli_error ("The --replicas=COUNT flag is required, and COUNT must be greater "
                        "than or equal to 0");
        return 1;
    }
    if (count == 0) {
        zube_cli_error ("You must provide one or more resources by argument or filename.");
        return 1;
    }
    //  TYPE/NAME ..., or TYPE NAME ...
    if (strchr (args[0], '/'))
        return zubectl_each_type_name (self, args, count, s_scale_one, &options);
    const zube_kind_t *kind = zubectl_kind (args[0]);
    if (!kind)
        return 1;
    const char *namespace = zubectl_namespace (self);
    if (count == 1 && (label_selector || all)) {
        zube_api_list_options_t list_options = {
            .namespace = kind->namespaced ? namespace : NULL, .label_selector = label_selector};
        return zubectl_each_listed (self, kind, &list_options, s_scale_one, &options);
    }
    if (count < 2) {
        zube_cli_error ("resource(s) were provided, but no name was specified");
        return 1;
    }
    if (label_selector || all) {
        zube_cli_error ("name cannot be provided when a selector or --all is specified");
        return 1;
    }
    int rc = 0;
    for (int i = 1; i < count; i++)
        rc |= s_scale_one (self, kind, namespace, args[i], &options);
    return rc;
}
