/*  config - the scheduler's configuration file: a KubeSchedulerConfiguration
    (kubescheduler.config.k8s.io/v1) decoded by the generic codec into
    zube.KubeSchedulerConfiguration, turned into profiles; and pluginConfig
    args flattened into dotted keys for plugins (zube_sched_args_t). */
#define _GNU_SOURCE
#include "zs_permit.h"
#include "zube/codec.h"
#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define S_API_VERSION "kubescheduler.config.k8s.io/v1"
//  Threads that filter when the configuration says nothing (Kubernetes:
//  16); docs/scheduler.md has the measurements behind it.
#define S_DEFAULT_PARALLELISM 1

char *
zs_read_file (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    char chunk[4096];
    size_t n;
    while (stream && (n = fread (chunk, 1, sizeof chunk, file)) > 0)
        fwrite (chunk, 1, n, stream);
    if (stream)
        fclose (stream);
    fclose (file);
    return text;
}

static int
s_flat_add (zs_flat_t *flat, const char *key, const char *value)
{
    char **keys = realloc (flat->keys, (flat->count + 1) * sizeof *keys);
    if (keys)
        flat->keys = keys;
    char **values = realloc (flat->values, (flat->count + 1) * sizeof *values);
    if (values)
        flat->values = values;
    if (!keys || !values)
        return -1;
    keys[flat->count] = strdup (key);
    values[flat->count] = strdup (value);
    if (!keys[flat->count] || !values[flat->count]) {
        free (keys[flat->count]);
        free (values[flat->count]);
        return -1;
    }
    flat->count++;
    return 0;
}

//  Walks one node of the document; path is the key so far.
static int
s_flatten_node (yaml_document_t *document, yaml_node_t *node, const char *path,
                zs_flat_t *flat, int depth)
{
    if (!node || depth > 32)
        return -1;
    char *child = NULL;
    int rc = 0;
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return s_flat_add (flat, path, (const char *)node->data.scalar.value);
    case YAML_SEQUENCE_NODE: {
        size_t index = 0;
        for (yaml_node_item_t *item = node->data.sequence.items.start;
             rc == 0 && item < node->data.sequence.items.top; item++, index++) {
            if (asprintf (&child, "%s%s%zu", path, *path ? "." : "", index) < 0)
                return -1;
            rc = s_flatten_node (document, yaml_document_get_node (document, *item),
                                 child, flat, depth + 1);
            free (child);
        }
        return rc;
    }
    case YAML_MAPPING_NODE:
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             rc == 0 && pair < node->data.mapping.pairs.top; pair++) {
            yaml_node_t *key = yaml_document_get_node (document, pair->key);
            if (!key || key->type != YAML_SCALAR_NODE)
                return -1;
            if (asprintf (&child, "%s%s%s", path, *path ? "." : "",
                          (const char *)key->data.scalar.value) < 0)
                return -1;
            rc = s_flatten_node (document, yaml_document_get_node (document, pair->value),
                                 child, flat, depth + 1);
            free (child);
        }
        return rc;
    default:
        return 0;
    }
}

int
zs_flatten_json (const char *json, zs_flat_t *flat, char *error, size_t error_size)
{
    memset (flat, 0, sizeof *flat);
    yaml_parser_t parser;
    yaml_document_t document;
    if (!yaml_parser_initialize (&parser)) {
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string (&parser, (const unsigned char *)json, strlen (json));
    int rc = -1;
    if (!yaml_parser_load (&parser, &document))
        snprintf (error, error_size, "invalid args: %s",
                  parser.problem ? parser.problem : "unreadable");
    else {
        yaml_node_t *root = yaml_document_get_root_node (&document);
        if (root && root->type != YAML_MAPPING_NODE)
            snprintf (error, error_size, "expected an object");
        else if (root && s_flatten_node (&document, root, "", flat, 0) != 0)
            snprintf (error, error_size, "invalid args");
        else
            rc = 0;
        yaml_document_delete (&document);
    }
    yaml_parser_delete (&parser);
    if (rc != 0)
        zs_flat_clear (flat);
    return rc;
}

void
zs_flat_clear (zs_flat_t *flat)
{
    for (size_t i = 0; i < flat->count; i++) {
        free (flat->keys[i]);
        free (flat->values[i]);
    }
    free (flat->keys);
    free (flat->values);
    memset (flat, 0, sizeof *flat);
}

static int
s_add_profile (zs_profiles_t *profiles, zs_profile_t *profile)
{
    zs_profile_t **grown =
        realloc (profiles->profiles, (profiles->count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    profiles->profiles = grown;
    grown[profiles->count++] = profile;
    return 0;
}

Zube__KubeSchedulerConfiguration *
zs_config_decode (const char *text, char *error, size_t error_size)
{
    Zube__KubeSchedulerConfiguration *config = NULL;
    zube_codec_error_t codec_error;
    if (zube_codec_decode (text, strlen (text),
                           &zube__kube_scheduler_configuration__descriptor,
                           (ProtobufCMessage **)&config, &codec_error) != 0) {
        zube_codec_error_format (&codec_error, error, error_size);
        return NULL;
    }
    if (!config->api_version || !streq (config->api_version, S_API_VERSION)) {
        snprintf (
            error, error_size,
            "apiVersion: Unsupported value: \"%s\": supported values: \"" S_API_VERSION
            "\"",
            config->api_version ? config->api_version : "");
        protobuf_c_message_free_unpacked (&config->base, NULL);
        return NULL;
    }
    if (!config->kind || !streq (config->kind, "KubeSchedulerConfiguration")) {
        snprintf (error, error_size,
                  "kind: Unsupported value: \"%s\": supported values: "
                  "\"KubeSchedulerConfiguration\"",
                  config->kind ? config->kind : "");
        protobuf_c_message_free_unpacked (&config->base, NULL);
        return NULL;
    }
    return config;
}

int
zs_profiles_load (zs_registry_t *registry, const char *text, zs_profiles_t *profiles,
                  char *error, size_t error_size)
{
    memset (profiles, 0, sizeof *profiles);
    Zube__KubeSchedulerConfiguration *config = NULL;
    if (text && !(config = zs_config_decode (text, error, error_size)))
        return -1;
    int rc = zs_profiles_build (registry, config, profiles, error, error_size);
    if (config)
        protobuf_c_message_free_unpacked (&config->base, NULL);
    return rc;
}

int
zs_profiles_build (zs_registry_t *registry,
                   const Zube__KubeSchedulerConfiguration *config,
                   zs_profiles_t *profiles, char *error, size_t error_size)
{
    memset (profiles, 0, sizeof *profiles);
    profiles->initial_backoff_ms = 1000;
    profiles->max_backoff_ms = 10000;
    if (config && config->has_pod_initial_backoff_seconds) {
        if (config->pod_initial_backoff_seconds <= 0) {
            snprintf (
                error, error_size,
                "podInitialBackoffSeconds: Invalid value: %lld: must be greater than 0",
                (long long)config->pod_initial_backoff_seconds);
            goto fail;
        }
        profiles->initial_backoff_ms = config->pod_initial_backoff_seconds * 1000;
    }
    if (config && config->has_pod_max_backoff_seconds) {
        if (config->pod_max_backoff_seconds * 1000 < profiles->initial_backoff_ms) {
            snprintf (
                error, error_size,
                "podMaxBackoffSeconds: Invalid value: %lld: must be greater than or "
                "equal to PodInitialBackoffSeconds",
                (long long)config->pod_max_backoff_seconds);
            goto fail;
        }
        profiles->max_backoff_ms = config->pod_max_backoff_seconds * 1000;
    }
    int percentage = config && config->has_percentage_of_nodes_to_score
                         ? config->percentage_of_nodes_to_score
                         : 0;
    if (percentage < 0 || percentage > 100) {
        snprintf (
            error, error_size,
            "percentageOfNodesToScore: Invalid value: %d: not in valid range [0-100]",
            percentage);
        goto fail;
    }
    int parallelism = S_DEFAULT_PARALLELISM;
    if (config && config->has_parallelism) {
        if (config->parallelism <= 0) {
            snprintf (error, error_size,
                      "parallelism: Invalid value: %d: should be an integer value "
                      "greater than zero",
                      config->parallelism);
            goto fail;
        }
        parallelism = config->parallelism;
    }
    size_t count = config ? config->n_profiles : 0;
    for (size_t i = 0; i < (count ? count : 1); i++) {
        char field[64];
        snprintf (field, sizeof field, "profiles[%zu]", i);
        const Zube__KubeSchedulerProfile *profile_config =
            count ? config->profiles[i] : NULL;
        zs_profile_t *profile = zs_profile_new (registry, profile_config, field,
                                                percentage, error, error_size);
        if (!profile)
            goto fail;
        zs_profile_set_parallelism (profile, parallelism);
        if (zs_profiles_find (profiles, zs_profile_name (profile))) {
            snprintf (error, error_size, "%s.schedulerName: Duplicate value: \"%s\"",
                      field, zs_profile_name (profile));
            zs_profile_destroy (&profile);
            goto fail;
        }
        if (s_add_profile (profiles, profile) != 0) {
            snprintf (error, error_size, "out of memory");
            zs_profile_destroy (&profile);
            goto fail;
        }
    }
    return 0;
fail:
    zs_profiles_clear (profiles);
    return -1;
}

void
zs_profiles_clear (zs_profiles_t *profiles)
{
    for (size_t i = 0; i < profiles->count; i++)
        zs_profile_destroy (&profiles->profiles[i]);
    free (profiles->profiles);
    profiles->profiles = NULL;
    profiles->count = 0;
}

zs_profile_t *
zs_profiles_find (zs_profiles_t *profiles, const char *scheduler_name)
{
    for (size_t i = 0; i < profiles->count; i++)
        if (streq (zs_profile_name (profiles->profiles[i]), scheduler_name))
            return profiles->profiles[i];
    return NULL;
}
