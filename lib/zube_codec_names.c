/*  zube_codec_names - YAML/JSON names of protobuf fields, and the
    per-descriptor cache the decoder and encoder share.

    A field's name is computed once per descriptor: lowerCamel of its
    snake_case parts, the acronyms (ip, ips, cidr, cidrs, pid, ipc) in
    capitals when not first, and the Kubernetes names outside that rule
    (docs/schemas.md). The cache also keeps the fields sorted by name for
    lookups and notes the messages the codec treats specially. It only
    grows, under one mutex; entries live as long as the program. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zube_codec_private.h"

//  ---------------------------------------------------------------------
//  Names

//  Parts written in capitals when they are not the first part
static const struct {
    const char *part;
    const char *json;
} s_acronyms[] = {
    {.part = "ip", .json = "IP"},     {.part = "ips", .json = "IPs"},
    {.part = "cidr", .json = "CIDR"}, {.part = "cidrs", .json = "CIDRs"},
    {.part = "pid", .json = "PID"},   {.part = "ipc", .json = "IPC"},
};

//  Kubernetes names the rule cannot produce (docs/schemas.md). A NULL
//  message applies to the field name in every message.
static const struct {
    const char *message;
    const char *field;
    const char *json;
} s_outside_rule[] = {
    {.field = "image_id", .json = "imageID"},
    {.field = "container_id", .json = "containerID"},
    {.field = "provider_id", .json = "providerID"},
    {.field = "machine_id", .json = "machineID"},
    {.field = "system_uuid", .json = "systemUUID"},
    {.field = "boot_id", .json = "bootID"},
    {.field = "downward_api", .json = "downwardAPI"},
    {.field = "enable_https", .json = "enableHTTPS"},
    {.message = "zube.DaemonEndpoint", .field = "port", .json = "Port"},
};

static char *
s_name_compute (const ProtobufCMessageDescriptor *descriptor,
                const ProtobufCFieldDescriptor *field)
{
    for (size_t i = 0; i < sizeof s_outside_rule / sizeof s_outside_rule[0]; i++)
        if (strcmp (field->name, s_outside_rule[i].field) == 0 &&
            (!s_outside_rule[i].message ||
             (descriptor && strcmp (descriptor->name, s_outside_rule[i].message) == 0)))
            return strdup (s_outside_rule[i].json);

    size_t size = strlen (field->name);
    char *json = malloc (size * 2 + 1);
    if (!json)
        return NULL;
    char *out = json;
    const char *part = field->name;
    bool first = true;
    while (*part) {
        size_t length = strcspn (part, "_");
        const char *acronym = NULL;
        for (size_t i = 0; !first && i < sizeof s_acronyms / sizeof s_acronyms[0]; i++)
            if (strlen (s_acronyms[i].part) == length &&
                memcmp (part, s_acronyms[i].part, length) == 0)
                acronym = s_acronyms[i].json;
        if (acronym)
            out = stpcpy (out, acronym);
        else if (length) {
            memcpy (out, part, length);
            if (!first && *out >= 'a' && *out <= 'z')
                *out = (char)(*out - 'a' + 'A');
            out += length;
        }
        if (length)
            first = false;
        part += length;
        while (*part == '_')
            part++;
    }
    *out = 0;
    return json;
}

//  ---------------------------------------------------------------------
//  Descriptor cache

//  Pointer -> value, open addressing; only grows
typedef struct {
    const void **keys;
    void **values;
    size_t count;
    size_t capacity;
} s_ptrmap_t;

static pthread_mutex_t s_cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static s_ptrmap_t s_infos;       //  descriptor -> zc_info_t
static s_ptrmap_t s_field_names; //  field descriptor -> name
static bool s_registry_loaded;

static size_t
s_ptr_slot (const s_ptrmap_t *map, const void *key)
{
    size_t slot = ((uintptr_t)key >> 4) * 11400714819323198485ULL & (map->capacity - 1);
    while (map->keys[slot] && map->keys[slot] != key)
        slot = (slot + 1) & (map->capacity - 1);
    return slot;
}

static void *
s_ptrmap_get (const s_ptrmap_t *map, const void *key)
{
    if (!map->capacity)
        return NULL;
    size_t slot = s_ptr_slot (map, key);
    return map->keys[slot] ? map->values[slot] : NULL;
}

static int
s_ptrmap_put (s_ptrmap_t *map, const void *key, void *value)
{
    if ((map->count + 1) * 2 > map->capacity) {
        s_ptrmap_t grown = {.capacity = map->capacity ? map->capacity * 2 : 256};
        grown.keys = calloc (grown.capacity, sizeof *grown.keys);
        grown.values = calloc (grown.capacity, sizeof *grown.values);
        if (!grown.keys || !grown.values) {
            free (grown.keys);
            free (grown.values);
            return -1;
        }
        for (size_t i = 0; i < map->capacity; i++)
            if (map->keys[i]) {
                size_t slot = s_ptr_slot (&grown, map->keys[i]);
                grown.keys[slot] = map->keys[i];
                grown.values[slot] = map->values[i];
            }
        grown.count = map->count;
        free (map->keys);
        free (map->values);
        *map = grown;
    }
    size_t slot = s_ptr_slot (map, key);
    if (!map->keys[slot])
        map->count++;
    map->keys[slot] = key;
    map->values[slot] = value;
    return 0;
}

static const char *const *s_sort_names;

static int
s_compare_by_name (const void *a, const void *b)
{
    return strcmp (s_sort_names[*(const unsigned *)a],
                   s_sort_names[*(const unsigned *)b]);
}

static void
s_info_free (zc_info_t *info)
{
    if (!info)
        return;
    for (unsigned i = 0; info->names && i < info->descriptor->n_fields; i++)
        free (info->names[i]);
    free (info->names);
    free (info->by_name);
    free (info);
}

static bool
s_is_map_entry (const ProtobufCMessageDescriptor *descriptor)
{
    size_t length = strlen (descriptor->name);
    return descriptor->n_fields == 2 && length > 5 &&
           strcmp (descriptor->name + length - 5, "Entry") == 0 &&
           descriptor->fields[0].id == 1 &&
           strcmp (descriptor->fields[0].name, "key") == 0 &&
           descriptor->fields[1].id == 2 &&
           strcmp (descriptor->fields[1].name, "value") == 0 &&
           descriptor->fields[0].label != PROTOBUF_C_LABEL_REPEATED &&
           descriptor->fields[1].label != PROTOBUF_C_LABEL_REPEATED;
}

//  Builds the cache entry; the caller holds the mutex.
static zc_info_t *
s_info_build (const ProtobufCMessageDescriptor *descriptor)
{
    zc_info_t *info = calloc (1, sizeof *info);
    if (!info)
        return NULL;
    info->descriptor = descriptor;
    unsigned n = descriptor->n_fields;
    info->names = calloc (n ? n : 1, sizeof *info->names);
    info->by_name = calloc (n ? n : 1, sizeof *info->by_name);
    if (!info->names || !info->by_name) {
        s_info_free (info);
        return NULL;
    }
    for (unsigned i = 0; i < n; i++) {
        info->names[i] = s_name_compute (descriptor, &descriptor->fields[i]);
        if (!info->names[i]) {
            s_info_free (info);
            return NULL;
        }
        info->by_name[i] = i;
    }
    s_sort_names = (const char *const *)info->names;
    qsort (info->by_name, n, sizeof *info->by_name, s_compare_by_name);
    s_sort_names = NULL;

    if (strcmp (descriptor->name, "zube.Quantity") == 0)
        info->special = ZC_SPECIAL_QUANTITY;
    else if (strcmp (descriptor->name, "zube.IntOrString") == 0)
        info->special = ZC_SPECIAL_INT_OR_STRING;
    else if (strcmp (descriptor->name, "zube.RawExtension") == 0)
        info->special = ZC_SPECIAL_RAW_EXTENSION;
    else if (s_is_map_entry (descriptor))
        info->special = ZC_SPECIAL_MAP_ENTRY;

    if (s_ptrmap_put (&s_infos, descriptor, info)) {
        s_info_free (info);
        return NULL;
    }
    for (unsigned i = 0; i < n; i++)
        if (!s_ptrmap_get (&s_field_names, &descriptor->fields[i]))
            s_ptrmap_put (&s_field_names, &descriptor->fields[i], info->names[i]);
    return info;
}

zc_info_t *
zc_info (const ProtobufCMessageDescriptor *descriptor)
{
    pthread_mutex_lock (&s_cache_mutex);
    zc_info_t *info = s_ptrmap_get (&s_infos, descriptor);
    if (!info)
        info = s_info_build (descriptor);
    pthread_mutex_unlock (&s_cache_mutex);
    return info;
}

//  Caches every message reachable from the kinds registry, so that
//  zube_codec_json_name knows which message a field belongs to.
static void
s_load_descriptor_tree (const ProtobufCMessageDescriptor *descriptor)
{
    if (!descriptor || s_ptrmap_get (&s_infos, descriptor))
        return;
    if (!s_info_build (descriptor))
        return;
    for (unsigned i = 0; i < descriptor->n_fields; i++)
        if (descriptor->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            s_load_descriptor_tree (descriptor->fields[i].descriptor);
}

const char *
zube_codec_json_name (const ProtobufCFieldDescriptor *field)
{
    pthread_mutex_lock (&s_cache_mutex);
    if (!s_registry_loaded) {
        s_registry_loaded = true;
        for (size_t i = 0; i < zube_kinds_count (); i++) {
            s_load_descriptor_tree (zube_kind_at (i)->descriptor);
            s_load_descriptor_tree (zube_kind_at (i)->list_descriptor);
        }
    }
    const char *name = s_ptrmap_get (&s_field_names, field);
    if (!name) {
        //  A field of a message outside the registry, not seen yet
        char *computed = s_name_compute (NULL, field);
        if (computed && s_ptrmap_put (&s_field_names, field, computed) == 0)
            name = computed;
        else
            free (computed);
    }
    pthread_mutex_unlock (&s_cache_mutex);
    return name ? name : field->name;
}

int
zc_info_find (const zc_info_t *info, const char *name, size_t length)
{
    size_t low = 0, high = info->descriptor->n_fields;
    while (low < high) {
        size_t middle = (low + high) / 2;
        unsigned index = info->by_name[middle];
        const char *candidate = info->names[index];
        //  name may hold a NUL (a JSON key "a\u0000b"): compare lengths too
        size_t candidate_length = strlen (candidate);
        int cmp = memcmp (candidate, name,
                          candidate_length < length ? candidate_length : length);
        if (cmp == 0)
            cmp = candidate_length < length ? -1 : candidate_length > length ? 1 : 0;
        if (cmp == 0)
            return (int)index;
        if (cmp < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return -1;
}

const ProtobufCFieldDescriptor *
zube_codec_field_by_json_name (const ProtobufCMessageDescriptor *descriptor,
                               const char *name)
{
    zc_info_t *info = zc_info (descriptor);
    if (!info || !name)
        return NULL;
    int index = zc_info_find (info, name, strlen (name));
    return index < 0 ? NULL : &descriptor->fields[index];
}

size_t
zc_element_size (const ProtobufCFieldDescriptor *field)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof (int32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof (int64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof (float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof (double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof (protobuf_c_boolean);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof (ProtobufCBinaryData);
    default:
        return sizeof (void *);
    }
}

const char zc_base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
