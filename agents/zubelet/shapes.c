/*  shapes - the node-shapes file: what the hollow nodes look like.

    A YAML list of shapes (docs/node-shapes.md), each with a count or a
    weight, resources, zone(s), region, labels and taints; nodes are
    given shapes in file order, a block of nodes per shape. Any error
    names the file, the line and the field. */
#define _GNU_SOURCE
#include "zubelet.h"
#include "zube/quantity.h"
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

typedef struct {
    yaml_document_t *doc;
    const char *origin;
    char *error;
    size_t error_size;
} s_parser_t;

static int
s_fail (s_parser_t *parser, yaml_node_t *node, const char *field, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_fail (s_parser_t *parser, yaml_node_t *node, const char *field, const char *format, ...)
{
    char why[512];
    va_list args;
    va_start (args, format);
    vsnprintf (why, sizeof why, format, args);
    va_end (args);
    snprintf (parser->error, parser->error_size, "%s:%zu: %s%s%s", parser->origin,
              node ? node->start_mark.line + 1 : 1, field ? field : "", field ? ": " : "", why);
    return -1;
}

static const char *
s_scalar (yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

static int
s_string (s_parser_t *parser, yaml_node_t *node, const char *field, char **out)
{
    const char *text = s_scalar (node);
    if (!text)
        return s_fail (parser, node, field, "expected a string");
    free (*out);
    *out = strdup (text);
    return 0;
}

static int
s_integer (s_parser_t *parser, yaml_node_t *node, const char *field, int64_t min,
           int64_t *out)
{
    const char *text = s_scalar (node);
    char *end = NULL;
    errno = 0;
    long long value = text ? strtoll (text, &end, 10) : 0;
    if (!text || !*text || errno || *end || value < min)
        return s_fail (parser, node, field, "expected a whole number >= %" PRId64 ", got \"%s\"",
                       min, text ? text : "(not a scalar)");
    *out = value;
    return 0;
}

static bool
s_label_ok (const char *text, bool key)
{
    size_t length = strlen (text);
    if (length > (key ? 316 : 63))
        return false;
    if (key && !length)
        return false;
    for (const char *c = text; *c; c++)
        if (!isalnum ((unsigned char)*c) && !strchr (key ? "-_./" : "-_.", *c))
            return false;
    return true;
}

static zl_resource_t *
s_resource (zl_shape_t *shape, const char *name)
{
    for (size_t i = 0; i < shape->resource_count; i++)
        if (streq (shape->resources[i].name, name))
            return &shape->resources[i];
    zl_resource_t *grown =
        realloc (shape->resources, (shape->resource_count + 1) * sizeof *shape->resources);
    if (!grown)
        return NULL;
    shape->resources = grown;
    zl_resource_t *resource = &shape->resources[shape->resource_count++];
    *resource = (zl_resource_t){.name = strdup (name)};
    resource->binary = streq (name, "memory") || streq (name, "ephemeral-storage") ||
                       strncmp (name, "hugepages-", 10) == 0;
    return resource;
}

static int
s_quantity (s_parser_t *parser, yaml_node_t *node, const char *field, zl_shape_t *shape,
            const char *name, bool reserved)
{
    const char *text = s_scalar (node);
    int64_t milli = 0;
    char why[256] = "";
    if (!text || zube_quantity_parse (text, &milli, why, sizeof why) != 0 || milli < 0)
        return s_fail (parser, node, field, "invalid quantity \"%s\"%s%s",
                       text ? text : "(not a scalar)", why[0] ? ": " : "", why);
    zl_resource_t *resource = s_resource (shape, name);
    if (!resource)
        return s_fail (parser, node, field, "out of memory");
    if (reserved)
        resource->reserved = milli;
    else
        resource->capacity = milli;
    return 0;
}

static int
s_resource_map (s_parser_t *parser, yaml_node_t *node, const char *path, zl_shape_t *shape,
                bool reserved)
{
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (parser, node, path, "expected a mapping of resource names to quantities");
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node (parser->doc, pair->key);
        yaml_node_t *value = yaml_document_get_node (parser->doc, pair->value);
        const char *name = s_scalar (key);
        char field[400];
        snprintf (field, sizeof field, "%s[%s]", path, name ? name : "?");
        if (!name || !s_label_ok (name, true))
            return s_fail (parser, key, field, "invalid resource name");
        if (s_quantity (parser, value, field, shape, name, reserved) != 0)
            return -1;
    }
    return 0;
}

static int
s_labels (s_parser_t *parser, yaml_node_t *node, const char *path, zl_shape_t *shape)
{
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (parser, node, path, "expected a mapping of label keys to values");
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node (parser->doc, pair->key);
        yaml_node_t *value = yaml_document_get_node (parser->doc, pair->value);
        const char *k = s_scalar (key), *v = s_scalar (value);
        char field[400];
        snprintf (field, sizeof field, "%s[%s]", path, k ? k : "?");
        if (!k || !s_label_ok (k, true))
            return s_fail (parser, key, field, "invalid label key");
        if (!v || !s_label_ok (v, false))
            return s_fail (parser, value, field, "invalid label value \"%s\"", v ? v : "");
        zl_label_t *grown =
            realloc (shape->labels, (shape->label_count + 1) * sizeof *shape->labels);
        if (!grown)
            return s_fail (parser, node, path, "out of memory");
        shape->labels = grown;
        shape->labels[shape->label_count++] = (zl_label_t){strdup (k), strdup (v)};
    }
    return 0;
}

static int
s_taints (s_parser_t *parser, yaml_node_t *node, const char *path, zl_shape_t *shape)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return s_fail (parser, node, path, "expected a list of taints");
    size_t index = 0;
    for (yaml_node_item_t *item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++, index++) {
        yaml_node_t *taint = yaml_document_get_node (parser->doc, *item);
        char field[400];
        snprintf (field, sizeof field, "%s[%zu]", path, index);
        if (taint->type != YAML_MAPPING_NODE)
            return s_fail (parser, taint, field, "expected a mapping with key, value, effect");
        zl_taint_t t = {0};
        int rc = 0;
        for (yaml_node_pair_t *pair = taint->data.mapping.pairs.start;
             rc == 0 && pair < taint->data.mapping.pairs.top; pair++) {
            yaml_node_t *key = yaml_document_get_node (parser->doc, pair->key);
            yaml_node_t *value = yaml_document_get_node (parser->doc, pair->value);
            const char *name = s_scalar (key);
            char sub[450];
            snprintf (sub, sizeof sub, "%s.%s", field, name ? name : "?");
            if (name && streq (name, "key"))
                rc = s_string (parser, value, sub, &t.key);
            else if (name && streq (name, "value"))
                rc = s_string (parser, value, sub, &t.value);
            else if (name && streq (name, "effect"))
                rc = s_string (parser, value, sub, &t.effect);
            else
                rc = s_fail (parser, key, sub, "unknown field (expected key, value, effect)");
        }
        if (rc == 0 && (!t.key || !s_label_ok (t.key, true)))
            rc = s_fail (parser, taint, field, "key: a taint needs a valid key");
        if (rc == 0 && t.value && !s_label_ok (t.value, false))
            rc = s_fail (parser, taint, field, "value: invalid taint value \"%s\"", t.value);
        if (rc == 0 && (!t.effect || (!streq (t.effect, "NoSchedule") &&
                                      !streq (t.effect, "PreferNoSchedule") &&
                                      !streq (t.effect, "NoExecute"))))
            rc = s_fail (parser, taint, field,
                         "effect: expected NoSchedule, PreferNoSchedule or NoExecute, got \"%s\"",
                         t.effect ? t.effect : "");
        zl_taint_t *grown = rc == 0 ? realloc (shape->taints, (shape->taint_count + 1) *
                                                                  sizeof *shape->taints)
                                    : NULL;
        if (!grown) {
            free (t.key);
            free (t.value);
            free (t.effect);
            return rc == 0 ? s_fail (parser, taint, field, "out of memory") : -1;
        }
        shape->taints = grown;
        shape->taints[shape->taint_count++] = t;
    }
    return 0;
}

static int
s_zones (s_parser_t *parser, yaml_node_t *node, const char *field, zl_shape_t *shape)
{
    if (node->type == YAML_SCALAR_NODE) {
        if (!s_label_ok (s_scalar (node), false))
            return s_fail (parser, node, field, "invalid zone \"%s\"", s_scalar (node));
        shape->zones = calloc (1, sizeof *shape->zones);
        if (!shape->zones)
            return -1;
        shape->zones[0] = strdup (s_scalar (node));
        shape->zone_count = 1;
        return 0;
    }
    if (node->type != YAML_SEQUENCE_NODE)
        return s_fail (parser, node, field, "expected a zone or a list of zones");
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    shape->zones = calloc (count ? count : 1, sizeof *shape->zones);
    if (!shape->zones)
        return -1;
    for (yaml_node_item_t *item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++) {
        yaml_node_t *zone = yaml_document_get_node (parser->doc, *item);
        const char *text = s_scalar (zone);
        if (!text || !*text || !s_label_ok (text, false))
            return s_fail (parser, zone, field, "invalid zone \"%s\"", text ? text : "");
        shape->zones[shape->zone_count++] = strdup (text);
    }
    return 0;
}

static int
s_shape (s_parser_t *parser, yaml_node_t *node, size_t index, zl_shape_t *shape)
{
    char path[64];
    snprintf (path, sizeof path, "shapes[%zu]", index);
    shape->count = -1;
    shape->weight = -1;
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (parser, node, path, "expected a mapping (a shape)");
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node (parser->doc, pair->key);
        yaml_node_t *value = yaml_document_get_node (parser->doc, pair->value);
        const char *name = s_scalar (key);
        char field[200];
        snprintf (field, sizeof field, "%s.%s", path, name ? name : "?");
        int rc;
        if (!name)
            rc = s_fail (parser, key, path, "expected field names");
        else if (streq (name, "name"))
            rc = s_string (parser, value, field, &shape->name);
        else if (streq (name, "count"))
            rc = s_integer (parser, value, field, 0, &shape->count);
        else if (streq (name, "weight"))
            rc = s_integer (parser, value, field, 1, &shape->weight);
        else if (streq (name, "cpu") || streq (name, "memory") || streq (name, "pods"))
            rc = s_quantity (parser, value, field, shape, name, false);
        else if (streq (name, "ephemeralStorage"))
            rc = s_quantity (parser, value, field, shape, "ephemeral-storage", false);
        else if (streq (name, "extendedResources"))
            rc = s_resource_map (parser, value, field, shape, false);
        else if (streq (name, "reserved"))
            rc = s_resource_map (parser, value, field, shape, true);
        else if (streq (name, "zone") || streq (name, "zones"))
            rc = s_zones (parser, value, field, shape);
        else if (streq (name, "region"))
            rc = s_string (parser, value, field, &shape->region);
        else if (streq (name, "arch"))
            rc = s_string (parser, value, field, &shape->arch);
        else if (streq (name, "labels"))
            rc = s_labels (parser, value, field, shape);
        else if (streq (name, "taints"))
            rc = s_taints (parser, value, field, shape);
        else
            rc = s_fail (parser, key, field,
                         "unknown field (expected name, count, weight, cpu, memory, pods, "
                         "ephemeralStorage, extendedResources, reserved, zone, zones, region, "
                         "arch, labels, taints)");
        if (rc != 0)
            return -1;
    }
    if (!shape->name || !*shape->name || !s_label_ok (shape->name, false))
        return s_fail (parser, node, path,
                       "name: every shape needs a name usable as a label value "
                       "(node.kubernetes.io/instance-type)");
    if (shape->count >= 0 && shape->weight >= 0)
        return s_fail (parser, node, path, "count and weight exclude each other");
    if (shape->region && !s_label_ok (shape->region, false))
        return s_fail (parser, node, path, "region: invalid value \"%s\"", shape->region);
    //  Defaults for what the shape does not say
    static const struct {
        const char *name;
        const char *text;
    } defaults[] = {{"cpu", "4"}, {"memory", "16Gi"}, {"pods", "110"},
                    {"ephemeral-storage", "100Gi"}};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        bool have = false;
        for (size_t j = 0; j < shape->resource_count; j++)
            if (streq (shape->resources[j].name, defaults[i].name) &&
                shape->resources[j].capacity)
                have = true;
        if (!have) {
            zl_resource_t *resource = s_resource (shape, defaults[i].name);
            if (!resource)
                return -1;
            zube_quantity_parse (defaults[i].text, &resource->capacity, NULL, 0);
        }
    }
    for (size_t j = 0; j < shape->resource_count; j++)
        if (shape->resources[j].reserved > shape->resources[j].capacity)
            return s_fail (parser, node, path,
                           "reserved[%s]: more than the capacity", shape->resources[j].name);
    return 0;
}

zl_shapes_t *
zl_shapes_parse (const char *text, const char *origin, char *error, size_t error_size)
{
    yaml_parser_t yaml;
    yaml_document_t doc;
    if (!yaml_parser_initialize (&yaml)) {
        snprintf (error, error_size, "%s: out of memory", origin);
        return NULL;
    }
    yaml_parser_set_input_string (&yaml, (const unsigned char *)text, strlen (text));
    if (!yaml_parser_load (&yaml, &doc)) {
        snprintf (error, error_size, "%s:%zu: %s", origin, yaml.problem_mark.line + 1,
                  yaml.problem ? yaml.problem : "invalid YAML");
        yaml_parser_delete (&yaml);
        return NULL;
    }
    yaml_parser_delete (&yaml);
    s_parser_t parser = {.doc = &doc, .origin = origin, .error = error,
                         .error_size = error_size};
    zl_shapes_t *self = calloc (1, sizeof *self);
    yaml_node_t *root = yaml_document_get_root_node (&doc);
    yaml_node_t *list = root;
    int rc = self ? 0 : -1;
    if (rc == 0 && !root)
        rc = s_fail (&parser, NULL, NULL, "empty file: expected a list of shapes");
    if (rc == 0 && root->type == YAML_MAPPING_NODE) {
        list = NULL;
        for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
             rc == 0 && pair < root->data.mapping.pairs.top; pair++) {
            yaml_node_t *key = yaml_document_get_node (&doc, pair->key);
            yaml_node_t *value = yaml_document_get_node (&doc, pair->value);
            const char *name = s_scalar (key);
            if (name && streq (name, "shapes"))
                list = value;
            else if (name && streq (name, "apiVersion")) {
                if (!s_scalar (value) || !streq (s_scalar (value), "zube.io/v1alpha1"))
                    rc = s_fail (&parser, value, "apiVersion", "expected zube.io/v1alpha1");
            } else if (name && streq (name, "kind")) {
                if (!s_scalar (value) || !streq (s_scalar (value), "NodeShapes"))
                    rc = s_fail (&parser, value, "kind", "expected NodeShapes");
            } else
                rc = s_fail (&parser, key, name ? name : "?",
                             "unknown field (expected apiVersion, kind, shapes)");
        }
        if (rc == 0 && !list)
            rc = s_fail (&parser, root, "shapes", "missing: expected a list of shapes");
    }
    if (rc == 0 && list->type != YAML_SEQUENCE_NODE)
        rc = s_fail (&parser, list, "shapes", "expected a list of shapes");
    if (rc == 0) {
        size_t count = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
        if (!count)
            rc = s_fail (&parser, list, "shapes", "the list is empty");
        else if (count > 65535)
            rc = s_fail (&parser, list, "shapes", "more than 65535 shapes");
        else if (!(self->shapes = calloc (count, sizeof *self->shapes)))
            rc = -1;
        for (size_t i = 0; rc == 0 && i < count; i++) {
            yaml_node_t *node = yaml_document_get_node (&doc, list->data.sequence.items.start[i]);
            self->count++;
            rc = s_shape (&parser, node, i, &self->shapes[i]);
            for (size_t j = 0; rc == 0 && j < i; j++)
                if (streq (self->shapes[j].name, self->shapes[i].name)) {
                    char field[64];
                    snprintf (field, sizeof field, "shapes[%zu].name", i);
                    rc = s_fail (&parser, node, field, "\"%s\" is the name of shapes[%zu] too",
                                 self->shapes[i].name, j);
                }
        }
    }
    yaml_document_delete (&doc);
    if (rc != 0) {
        zl_shapes_destroy (&self);
        return NULL;
    }
    return self;
}

zl_shapes_t *
zl_shapes_load (const char *path, char *error, size_t error_size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (error, error_size, "%s: %s", path, strerror (errno));
        return NULL;
    }
    size_t size = 0, capacity = 4096;
    char *text = malloc (capacity);
    size_t n;
    while (text && (n = fread (text + size, 1, capacity - size - 1, file)) > 0) {
        size += n;
        if (capacity - size < 2) {
            char *grown = size < 16 * 1024 * 1024 ? realloc (text, capacity * 2) : NULL;
            if (!grown) {
                free (text);
                text = NULL;
                break;
            }
            text = grown;
            capacity *= 2;
        }
    }
    fclose (file);
    if (!text) {
        snprintf (error, error_size, "%s: too large or out of memory", path);
        return NULL;
    }
    text[size] = 0;
    zl_shapes_t *self = zl_shapes_parse (text, path, error, error_size);
    free (text);
    return self;
}

zl_shapes_t *
zl_shapes_default (bool host)
{
    char error[256];
    zl_shapes_t *self = zl_shapes_parse ("- name: zube-sim\n", "(built-in)", error, sizeof error);
    if (!self || !host)
        return self;
    //  One real node: the host's CPUs and memory
    zl_shape_t *shape = &self->shapes[0];
    free (shape->name);
    shape->name = strdup ("zube-node");
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    long pages = sysconf (_SC_PHYS_PAGES), page_size = sysconf (_SC_PAGESIZE);
    for (size_t i = 0; i < shape->resource_count; i++) {
        if (streq (shape->resources[i].name, "cpu") && cpus > 0)
            shape->resources[i].capacity = (int64_t)cpus * 1000;
        if (streq (shape->resources[i].name, "memory") && pages > 0 && page_size > 0)
            shape->resources[i].capacity = (int64_t)pages * page_size / 1024 * 1024 * 1000;
    }
    return self;
}

void
zl_shapes_destroy (zl_shapes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zl_shapes_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        zl_shape_t *shape = &self->shapes[i];
        free (shape->name);
        for (size_t j = 0; j < shape->resource_count; j++)
            free (shape->resources[j].name);
        free (shape->resources);
        for (size_t j = 0; j < shape->zone_count; j++)
            free (shape->zones[j]);
        free (shape->zones);
        free (shape->region);
        free (shape->arch);
        for (size_t j = 0; j < shape->label_count; j++) {
            free (shape->labels[j].key);
            free (shape->labels[j].value);
        }
        free (shape->labels);
        for (size_t j = 0; j < shape->taint_count; j++) {
            free (shape->taints[j].key);
            free (shape->taints[j].value);
            free (shape->taints[j].effect);
        }
        free (shape->taints);
        free (shape->capacity_json);
        free (shape->allocatable_json);
        free (shape->labels_json);
        free (shape->taints_json);
    }
    free (self->shapes);
    free (self);
    *self_p = NULL;
}

size_t
zl_shapes_total (zl_shapes_t *self)
{
    size_t total = 0;
    for (size_t i = 0; i < self->count; i++) {
        if (self->shapes[i].count < 0)
            return 0;
        total += (size_t)self->shapes[i].count;
    }
    return total;
}

int
zl_shapes_assign (zl_shapes_t *self, size_t n, uint16_t *shape_of, uint32_t *ordinal_of,
                  char *error, size_t error_size)
{
    size_t counted = 0;
    int64_t weights = 0;
    for (size_t i = 0; i < self->count; i++) {
        if (self->shapes[i].count >= 0)
            counted += (size_t)self->shapes[i].count;
        else
            weights += self->shapes[i].weight > 0 ? self->shapes[i].weight : 1;
    }
    if (counted > n || (counted < n && !weights)) {
        snprintf (error, error_size,
                  "--node-shapes: the shapes' counts add up to %zu nodes, but %zu are asked "
                  "for (--nodes); give some shapes a weight instead of a count",
                  counted, n);
        return -1;
    }
    //  Counted shapes take their count, weighted ones share the rest by
    //  largest remainder
    size_t rest = n - counted;
    size_t *take = calloc (self->count, sizeof *take);
    if (!take) {
        snprintf (error, error_size, "out of memory");
        return -1;
    }
    size_t given = 0;
    for (size_t i = 0; i < self->count; i++) {
        zl_shape_t *shape = &self->shapes[i];
        if (shape->count >= 0)
            take[i] = (size_t)shape->count;
        else {
            int64_t weight = shape->weight > 0 ? shape->weight : 1;
            take[i] = (size_t)((int64_t)rest * weight / weights);
            given += take[i];
        }
    }
    for (size_t i = 0; given < rest; i = (i + 1) % self->count)
        if (self->shapes[i].count < 0) {
            take[i]++;
            given++;
        }
    size_t node = 0;
    for (size_t i = 0; i < self->count; i++)
        for (size_t j = 0; j < take[i] && node < n; j++, node++) {
            shape_of[node] = (uint16_t)i;
            ordinal_of[node] = (uint32_t)j;
        }
    free (take);
    return 0;
}

//  Appends raw text
static void
s_put (char **buf, size_t *size, size_t *used, const char *text)
{
    size_t length = strlen (text);
    if (!*buf)
        return;
    if (*used + length + 1 > *size) {
        size_t size_new = (*used + length + 1) * 2;
        char *grown = realloc (*buf, size_new);
        if (!grown) {
            free (*buf);
            *buf = NULL;
            return;
        }
        *buf = grown;
        *size = size_new;
    }
    memcpy (*buf + *used, text, length + 1);
    *used += length;
}

static char *
s_json_resources (zl_shape_t *shape, bool allocatable)
{
    size_t size = 256, used = 0;
    char *buf = calloc (1, size);
    s_put (&buf, &size, &used, "{");
    for (size_t i = 0; buf && i < shape->resource_count; i++) {
        zl_resource_t *resource = &shape->resources[i];
        int64_t milli = resource->capacity - (allocatable ? resource->reserved : 0);
        char quantity[64];
        if (zube_quantity_format (milli, resource->binary && milli % 1024000 == 0, quantity,
                                  sizeof quantity) < 0)
            snprintf (quantity, sizeof quantity, "0");
        s_put (&buf, &size, &used, i ? "," : "");
        if (buf)
            zl_json_string (&buf, &size, &used, resource->name);
        s_put (&buf, &size, &used, ":");
        if (buf)
            zl_json_string (&buf, &size, &used, quantity);
    }
    s_put (&buf, &size, &used, "}");
    return buf;
}

int
zl_shapes_prepare (zl_shapes_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        zl_shape_t *shape = &self->shapes[i];
        shape->capacity_json = s_json_resources (shape, false);
        shape->allocatable_json = s_json_resources (shape, true);
        size_t size = 64, used = 0;
        char *labels = calloc (1, size);
        for (size_t j = 0; labels && j < shape->label_count; j++) {
            s_put (&labels, &size, &used, ",");
            if (labels)
                zl_json_string (&labels, &size, &used, shape->labels[j].key);
            s_put (&labels, &size, &used, ":");
            if (labels)
                zl_json_string (&labels, &size, &used, shape->labels[j].value);
        }
        shape->labels_json = labels;
        size = 64;
        used = 0;
        char *taints = calloc (1, size);
        s_put (&taints, &size, &used, "[");
        for (size_t j = 0; taints && j < shape->taint_count; j++) {
            s_put (&taints, &size, &used, j ? ",{\"key\":" : "{\"key\":");
            if (taints)
                zl_json_string (&taints, &size, &used, shape->taints[j].key);
            if (shape->taints[j].value) {
                s_put (&taints, &size, &used, ",\"value\":");
                if (taints)
                    zl_json_string (&taints, &size, &used, shape->taints[j].value);
            }
            s_put (&taints, &size, &used, ",\"effect\":");
            if (taints)
                zl_json_string (&taints, &size, &used, shape->taints[j].effect);
            s_put (&taints, &size, &used, "}");
        }
        s_put (&taints, &size, &used, "]");
        shape->taints_json = taints;
        if (!shape->capacity_json || !shape->allocatable_json || !shape->labels_json ||
            !shape->taints_json)
            return -1;
    }
    return 0;
}
