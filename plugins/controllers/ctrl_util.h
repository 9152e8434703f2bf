/*  ctrl_util - what the workload controller plugins share (static inline:
    each plugin compiles its own copy; plugins never link each other):
    own copies of cached objects, pod states as Kubernetes' podutil judges
    them, owner references, timestamps, and Kubernetes'
    ControllerExpectations. */
#ifndef ZUBE_CTRL_UTIL_H_INCLUDED
#define ZUBE_CTRL_UTIL_H_INCLUDED

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core.pb-c.h"
#include "meta.pb-c.h"
#include "zube/controller.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline bool
zc_streq (const char *a, const char *b)
{
    return a && b && strcmp (a, b) == 0;
}

static inline bool
zc_empty (const char *s)
{
    return !s || !*s;
}

//  An own copy of a cached object (or any message), with this plugin's
//  descriptor: one to modify and write. NULL when out of memory.
static inline ProtobufCMessage *
zc_copy (const ProtobufCMessage *object, const ProtobufCMessageDescriptor *descriptor)
{
    if (!object)
        return NULL;
    size_t size = protobuf_c_message_get_packed_size (object);
    uint8_t *data = malloc (size ? size : 1);
    if (!data)
        return NULL;
    protobuf_c_message_pack (object, data);
    ProtobufCMessage *copy = protobuf_c_message_unpack (descriptor, NULL, size, data);
    free (data);
    return copy;
}

static inline void
zc_free (void *message)
{
    if (message)
        protobuf_c_message_free_unpacked ((ProtobufCMessage *)message, NULL);
}

//  A whole-number setting (--controller-arg) from min to max into *value,
//  left as it is when not set. false, with an error naming the setting,
//  what it expects (in words) and the value, when it is no such number.
static inline bool
zc_setting_int (const zube_ctrl_host_t *host, const char *key, int64_t min, int64_t max,
                const char *expected, int64_t *value, char *error, size_t error_size)
{
    const char *text = host->base->config_get (host->base, key);
    if (!text)
        return true;
    char *end = NULL;
    long long number = strtoll (text, &end, 10);
    if (!end || *end || number < min || number > max) {
        snprintf (error, error_size, "%s: expected %s, got \"%s\"", key, expected, text);
        return false;
    }
    *value = number;
    return true;
}

//  RFC 3339 of now ("2024-05-01T10:00:00Z").
static inline void
zc_now_rfc3339 (char *buf, size_t size)
{
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

//  Seconds since the epoch of an RFC 3339 time (fraction ignored), 0 when
//  empty or unreadable.
static inline int64_t
zc_parse_time (const char *text)
{
    if (zc_empty (text))
        return 0;
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    if (sscanf (text, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm (&tm);
}

static inline const char *
zc_label (const Zube__ObjectMeta *meta, const char *key)
{
    for (size_t i = 0; meta && i < meta->n_labels; i++)
        if (zc_streq (meta->labels[i]->key, key))
            return meta->labels[i]->value;
    return NULL;
}

static inline const char *
zc_annotation (const Zube__ObjectMeta *meta, const char *key)
{
    for (size_t i = 0; meta && i < meta->n_annotations; i++)
        if (zc_streq (meta->annotations[i]->key, key))
            return meta->annotations[i]->value;
    return NULL;
}

//  Sets (value non-NULL) or removes an annotation of an own object.
static inline int
zc_set_annotation (Zube__ObjectMeta *meta, const char *key, const char *value)
{
    for (size_t i = 0; i < meta->n_annotations; i++)
        if (zc_streq (meta->annotations[i]->key, key)) {
            if (value) {
                char *copy = strdup (value);
                if (!copy)
                    return -1;
                free (meta->annotations[i]->value);
                meta->annotations[i]->value = copy;
            } else {
                Zube__ObjectMeta__AnnotationsEntry *entry = meta->annotations[i];
                free (entry->key);
                free (entry->value);
                free (entry);
                meta->annotations[i] = meta->annotations[--meta->n_annotations];
            }
            return 0;
        }
    if (!value)
        return 0;
    Zube__ObjectMeta__AnnotationsEntry **grown =
        realloc (meta->annotations, (meta->n_annotations + 1) * sizeof *grown);
    Zube__ObjectMeta__AnnotationsEntry *entry = malloc (sizeof *entry);
    if (grown)
        meta->annotations = grown;
    if (!grown || !entry) {
        free (entry);
        return -1;
    }
    zube__object_meta__annotations_entry__init (entry);
    entry->key = strdup (key);
    entry->value = strdup (value);
    meta->annotations[meta->n_annotations++] = entry;
    return entry->key && entry->value ? 0 : -1;
}

static inline bool
zc_deleting (const Zube__ObjectMeta *meta)
{
    return meta && !zc_empty (meta->deletion_timestamp);
}

//  The controller owner reference (controller: true), NULL when none.
static inline const Zube__OwnerReference *
zc_controller_of (const Zube__ObjectMeta *meta)
{
    for (size_t i = 0; meta && i < meta->n_owner_references; i++) {
        const Zube__OwnerReference *ref = meta->owner_references[i];
        if (ref->has_controller && ref->controller)
            return ref;
    }
    return NULL;
}

//  The metadata of any object with a "metadata" field (NULL if none).
static inline Zube__ObjectMeta *
zc_meta_of (const ProtobufCMessage *object)
{
    const ProtobufCFieldDescriptor *field =
        object ? protobuf_c_message_descriptor_get_field_by_name (object->descriptor,
                                                                  "metadata")
               : NULL;
    if (!field || field->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    return *(Zube__ObjectMeta **)((char *)object + field->offset);
}

//  The work queue key ("namespace/name") of an object, "" when too long.
static inline void
zc_key_of (const Zube__ObjectMeta *meta, char *key, size_t size)
{
    if (zube_ctrl_key (meta->namespace_, meta->name, key, size) < 0)
        key[0] = 0;
}

//  The cached object of resource (kind) a controller reference names, if
//  it still is that one (same uid); NULL when not.
static inline const ProtobufCMessage *
zc_resolve (const zube_ctrl_host_t *host, const char *resource, const char *kind,
            const char *namespace_, const Zube__OwnerReference *ref)
{
    if (!ref || !zc_streq (ref->kind, kind))
        return NULL;
    const ProtobufCMessage *object = host->get (host, resource, namespace_, ref->name);
    const Zube__ObjectMeta *meta = zc_meta_of (object);
    return meta && zc_streq (meta->uid, ref->uid) ? object : NULL;
}

//  A controller reference (controller and blockOwnerDeletion true) to the
//  owner's metadata; its strings point into owner.
static inline void
zc_controller_ref (Zube__OwnerReference *ref, const char *api_version, const char *kind,
                   const Zube__ObjectMeta *owner)
{
    zube__owner_reference__init (ref);
    ref->api_version = (char *)api_version;
    ref->kind = (char *)kind;
    ref->name = owner->name;
    ref->uid = owner->uid;
    ref->has_controller = ref->has_block_owner_deletion = 1;
    ref->controller = ref->block_owner_deletion = 1;
}

//  Kubernetes' ControllerRefManager adopt and release: writes cached (an
//  object of resource, copied with descriptor) with the owner's reference
//  added as controller (adopt) or removed, at the resourceVersion the
//  cache has (Conflict when it changed since). *written_p (may be NULL):
//  the object as stored, the caller's.
static inline zube_status_t
zc_write_owner (const zube_ctrl_host_t *host, const char *resource,
                const ProtobufCMessage *cached,
                const ProtobufCMessageDescriptor *descriptor, const char *api_version,
                const char *kind, const Zube__ObjectMeta *owner, bool adopt,
                ProtobufCMessage **written_p, char *error, size_t error_size)
{
    if (written_p)
        *written_p = NULL;
    ProtobufCMessage *copy = zc_copy (cached, descriptor);
    Zube__ObjectMeta *meta = zc_meta_of (copy);
    Zube__OwnerReference **refs =
        meta ? calloc (meta->n_owner_references + 1, sizeof *refs) : NULL;
    if (!refs) {
        zc_free (copy);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    size_t count = 0;
    for (size_t i = 0; i < meta->n_owner_references; i++)
        if (!zc_streq (meta->owner_references[i]->uid, owner->uid))
            refs[count++] = meta->owner_references[i];
    Zube__OwnerReference ref;
    if (adopt) {
        zc_controller_ref (&ref, api_version, kind, owner);
        refs[count++] = &ref;
    }
    Zube__OwnerReference **saved = meta->owner_references;
    size_t saved_count = meta->n_owner_references;
    meta->owner_references = refs;
    meta->n_owner_references = count;
    zube_status_t status =
        host->update (host, resource, copy, NULL, written_p, error, error_size);
    meta->owner_references = saved;
    meta->n_owner_references = saved_count;
    free (refs);
    zc_free (copy);
    return status;
}

//  Kubernetes' PodControl.CreatePodsWithGenerateName: creates a pod of a
//  template's meta and spec (the caller's, left as they were) in the
//  owner's namespace, named generate_name and a random suffix, with the
//  owner (an object of api_version and kind) as controller; records
//  SuccessfulCreate or FailedCreate on the owner.
static inline zube_status_t
zc_create_pod (const zube_ctrl_host_t *host, const ProtobufCMessage *owner,
               const char *api_version, const char *kind, Zube__ObjectMeta *meta,
               Zube__PodSpec *spec, const char *generate_name, char *error,
               size_t error_size)
{
    const Zube__ObjectMeta *owner_meta = zc_meta_of (owner);
    Zube__OwnerReference ref;
    zc_controller_ref (&ref, api_version, kind, owner_meta);
    Zube__OwnerReference *refs[] = {&ref};
    Zube__ObjectMeta saved = *meta;
    meta->name = NULL;
    meta->generate_name = (char *)generate_name;
    meta->namespace_ = owner_meta->namespace_;
    meta->owner_references = refs;
    meta->n_owner_references = 1;
    Zube__Pod pod = ZUBE__POD__INIT;
    pod.api_version = "v1";
    pod.kind = "Pod";
    pod.metadata = meta;
    pod.spec = spec;
    ProtobufCMessage *created = NULL;
    zube_status_t status = host->create (host, "pods", owner_meta->namespace_, &pod.base,
                                         &created, error, error_size);
    meta->name = saved.name;
    meta->generate_name = saved.generate_name;
    meta->namespace_ = saved.namespace_;
    meta->owner_references = saved.owner_references;
    meta->n_owner_references = saved.n_owner_references;
    if (status == ZUBE_OK) {
        const Zube__Pod *made = (const Zube__Pod *)created;
        host->event (host, owner, ZUBE_CTRL_EVENT_NORMAL, "SuccessfulCreate",
                     "Created pod: %s",
                     made && made->metadata ? made->metadata->name : "");
    } else
        host->event (host, owner, ZUBE_CTRL_EVENT_WARNING, "FailedCreate",
                     "Error creating: %s", error);
    zc_free (created);
    return status;
}

//  Whether a controller may manage pods with this selector and template:
//  the selector is valid and matches the template's labels (what
//  Kubernetes' validation demands; without it every pod made would be
//  released again and replaced, without end). NULL, or a reason for an
//  Event.
static inline const char *
zc_selector_problem (const zube_ctrl_host_t *host, const ProtobufCMessage *selector,
                     const ProtobufCMessage *template_)
{
    if (!template_)
        return "spec.template: Required value";
    int matches = host->selector_matches (host, selector, template_);
    if (matches < 0)
        return "spec.selector: Invalid value: the selector does not parse";
    if (matches == 0)
        return "spec.template.metadata.labels: Invalid value: `selector` does not match "
               "template `labels`";
    return NULL;
}

//  Pods: Kubernetes' podutil.IsPodTerminal, controller.IsPodActive and
//  podutil.IsPodReady.
static inline bool
zc_pod_terminated (const Zube__Pod *pod)
{
    const char *phase = pod->status ? pod->status->phase : NULL;
    return zc_streq (phase, "Succeeded") || zc_streq (phase, "Failed");
}

static inline bool
zc_pod_active (const Zube__Pod *pod)
{
    return !zc_pod_terminated (pod) && !zc_deleting (pod->metadata);
}

static inline const Zube__PodCondition *
zc_pod_condition (const Zube__Pod *pod, const char *type)
{
    for (size_t i = 0; pod->status && i < pod->status->n_conditions; i++)
        if (zc_streq (pod->status->conditions[i]->type, type))
            return pod->status->conditions[i];
    return NULL;
}

static inline bool
zc_pod_ready (const Zube__Pod *pod)
{
    const Zube__PodCondition *ready = zc_pod_condition (pod, "Ready");
    return ready && zc_streq (ready->status, "True");
}

//  Ready for at least min_ready_seconds by now (podutil.IsPodAvailable).
static inline bool
zc_pod_available (const Zube__Pod *pod, int32_t min_ready_seconds, int64_t now_s)
{
    if (!zc_pod_ready (pod))
        return false;
    if (min_ready_seconds <= 0)
        return true;
    const Zube__PodCondition *ready = zc_pod_condition (pod, "Ready");
    int64_t since = zc_parse_time (ready->last_transition_time);
    return since > 0 && since + min_ready_seconds <= now_s;
}

//  ---------------------------------------------------------------------
//  Kubernetes' UIDTrackingControllerExpectations: per controller key, the
//  creations and deletions asked for and not yet seen in the cache; a key
//  with pending ones is not managed again until they are seen or 5
//  minutes pass (ExpectationsTimeout).

#define ZC_EXPECTATIONS_TIMEOUT_S 300

typedef struct {
    char *key;
    int64_t add;
    int64_t del;
    int64_t timestamp_s;
    //  Pod keys whose deletion is expected
    char **deleting;
    size_t deleting_count;
} zc_expectation_t;

typedef struct {
    zc_expectation_t *items;
    size_t count;
    size_t capacity;
} zc_expectations_t;

static inline zc_expectation_t *
zc_expectations_find (zc_expectations_t *self, const char *key)
{
    for (size_t i = 0; i < self->count; i++)
        if (zc_streq (self->items[i].key, key))
            return &self->items[i];
    return NULL;
}

static inline void
zc_expectations_delete (zc_expectations_t *self, const char *key)
{
    zc_expectation_t *entry = zc_expectations_find (self, key);
    if (!entry)
        return;
    free (entry->key);
    for (size_t i = 0; i < entry->deleting_count; i++)
        free (entry->deleting[i]);
    free (entry->deleting);
    *entry = self->items[--self->count];
}

static inline void
zc_expectations_clear (zc_expectations_t *self)
{
    while (self->count)
        zc_expectations_delete (self, self->items[0].key);
    free (self->items);
    self->items = NULL;
    self->capacity = 0;
}

//  Sets the expectations of key (replacing what was there).
static inline void
zc_expectations_expect (zc_expectations_t *self, const char *key, int64_t add,
                        const char *const *deleting, size_t deleting_count)
{
    zc_expectations_delete (self, key);
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 16;
        zc_expectation_t *grown = realloc (self->items, capacity * sizeof *grown);
        if (!grown)
            return;
        self->items = grown;
        self->capacity = capacity;
    }
    zc_expectation_t *entry = &self->items[self->count];
    memset (entry, 0, sizeof *entry);
    entry->key = strdup (key);
    if (!entry->key)
        return;
    entry->add = add;
    entry->del = (int64_t)deleting_count;
    entry->timestamp_s = (int64_t)time (NULL);
    if (deleting_count) {
        entry->deleting = calloc (deleting_count, sizeof *entry->deleting);
        for (size_t i = 0; entry->deleting && i < deleting_count; i++)
            entry->deleting[entry->deleting_count++] = strdup (deleting[i]);
    }
    self->count++;
}

static inline void
zc_expectations_creation_observed (zc_expectations_t *self, const char *key)
{
    zc_expectation_t *entry = zc_expectations_find (self, key);
    if (entry && entry->add > 0)
        entry->add--;
}

//  Lowers the deletions expected, once per pod key that was expected.
static inline void
zc_expectations_deletion_observed (zc_expectations_t *self, const char *key,
                                   const char *pod_key)
{
    zc_expectation_t *entry = zc_expectations_find (self, key);
    if (!entry)
        return;
    for (size_t i = 0; i < entry->deleting_count; i++)
        if (zc_streq (entry->deleting[i], pod_key)) {
            free (entry->deleting[i]);
            entry->deleting[i] = entry->deleting[--entry->deleting_count];
            if (entry->del > 0)
                entry->del--;
            return;
        }
}

//  Kubernetes' SatisfiedExpectations: no record, all seen, or expired.
static inline bool
zc_expectations_satisfied (zc_expectations_t *self, const char *key)
{
    zc_expectation_t *entry = zc_expectations_find (self, key);
    if (!entry)
        return true;
    if (entry->add <= 0 && entry->del <= 0)
        return true;
    return (int64_t)time (NULL) - entry->timestamp_s > ZC_EXPECTATIONS_TIMEOUT_S;
}

#endif
