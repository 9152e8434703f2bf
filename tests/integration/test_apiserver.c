/*  test_apiserver - zube-apiserver as a real process behind a real
    zube-broker, on an lmdb store in a temporary directory, driven through
    libzube's zube_api_* calls and raw bus calls: the verbs and their
    Kubernetes semantics and errors, selectors and pagination, the events
    on the bus and watch since, authorization with certificates, and bad
    input that must store nothing. */
#define _GNU_SOURCE
//  zt_rmtree's paths and the assertion texts (messages up to 2 KiB into a
//  1 KiB failure line) trip -Wformat-truncation; truncating is fine there.
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zt_cluster.h"
#include "api.pb-c.h"
#include "core.pb-c.h"
#include "zube/api.h"
#include "zube/bus.h"
#include "zube/certs.h"
#include <czmq.h>
#include <inttypes.h>

static zt_cluster_t s_main;

//  A broker and an apiserver (lmdb), one log for both; certs NULL:
//  insecure, else the test's connection is client. extra: more apiserver
//  flags.
static bool
s_cluster_start (zt_cluster_t *cluster, const char *certs, const char *client,
                 const char *const *extra)
{
    return zt_cluster_start (cluster, &(zt_cluster_options_t){.tag = "apiserver",
                                                              .certs = certs,
                                                              .client_name = client,
                                                              .apiserver_args = extra,
                                                              .broker_log = "log",
                                                              .apiserver_log = "log",
                                                              .ready_timeout_ms = 15000});
}

//  ---------------------------------------------------------------------
//  Objects

static Zube__Pod *
s_pod (const char *name, const char *ns)
{
    Zube__Pod *pod = calloc (1, sizeof *pod);
    zube__pod__init (pod);
    pod->api_version = strdup ("v1");
    pod->kind = strdup ("Pod");
    pod->metadata = calloc (1, sizeof (Zube__ObjectMeta));
    zube__object_meta__init (pod->metadata);
    pod->metadata->name = name ? strdup (name) : NULL;
    pod->metadata->namespace_ = ns ? strdup (ns) : NULL;
    pod->spec = calloc (1, sizeof (Zube__PodSpec));
    zube__pod_spec__init (pod->spec);
    pod->spec->n_containers = 1;
    pod->spec->containers = calloc (1, sizeof (Zube__Container *));
    pod->spec->containers[0] = calloc (1, sizeof (Zube__Container));
    zube__container__init (pod->spec->containers[0]);
    pod->spec->containers[0]->name = strdup ("app");
    pod->spec->containers[0]->image = strdup ("nginx:1.25");
    return pod;
}

static void
s_label (Zube__ObjectMeta *meta, const char *key, const char *value)
{
    meta->labels = realloc (meta->labels, (meta->n_labels + 1) * sizeof (void *));
    Zube__ObjectMeta__LabelsEntry *entry = calloc (1, sizeof *entry);
    zube__object_meta__labels_entry__init (entry);
    entry->key = strdup (key);
    entry->value = strdup (value);
    meta->labels[meta->n_labels++] = entry;
}

static Zube__ConfigMap *
s_configmap (const char *name, const char *ns)
{
    Zube__ConfigMap *map = calloc (1, sizeof *map);
    zube__config_map__init (map);
    map->metadata = calloc (1, sizeof (Zube__ObjectMeta));
    zube__object_meta__init (map->metadata);
    map->metadata->name = name ? strdup (name) : NULL;
    map->metadata->namespace_ = ns ? strdup (ns) : NULL;
    return map;
}

#define S_FREE(object)                                                                   \
    do {                                                                                 \
        if (object)                                                                      \
            protobuf_c_message_free_unpacked ((ProtobufCMessage *)(object), NULL);       \
        (object) = NULL;                                                                 \
    } while (0)

static int64_t
s_rv (const ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    return meta && meta->resource_version ? strtoll (meta->resource_version, NULL, 10)
                                          : -1;
}

static zube_status_t
s_create (const char *resource, const char *ns, void *object, ProtobufCMessage **out,
          zube_api_error_t *error)
{
    return zube_api_create (s_main.api, resource, ns, (ProtobufCMessage *)object, false,
                            out, error);
}

//  ---------------------------------------------------------------------
//  Cases

static void
test_default_namespaces (void)
{
    const char *names[] = {"default", "kube-system", "kube-public", "kube-node-lease"};
    for (size_t i = 0; i < 4; i++) {
        Zube__Namespace *ns = NULL;
        ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "namespaces", NULL, names[i],
                                        (ProtobufCMessage **)&ns, NULL),
                          ZUBE_OK);
        ZT_ASSERT_STR_EQ (ns->status->phase, "Active");
        ZT_ASSERT_STR_EQ (ns->kind, "Namespace");
        S_FREE (ns);
    }
}

static void
test_crud (void)
{
    zube_api_error_t error;
    Zube__Pod *pod = s_pod ("web", "default"), *created = NULL, *got = NULL,
              *updated = NULL;
    ZT_ASSERT_INT_EQ (
        s_create ("pods", "default", pod, (ProtobufCMessage **)&created, &error),
        ZUBE_OK);
    ZT_ASSERT (created->metadata->uid && strlen (created->metadata->uid) == 36);
    ZT_ASSERT (created->metadata->creation_timestamp &&
               strlen (created->metadata->creation_timestamp) == 20);
    ZT_ASSERT_INT_EQ (created->metadata->generation, 1);
    ZT_ASSERT_STR_EQ (created->kind, "Pod");
    int64_t rv1 = s_rv (&created->base);
    ZT_ASSERT (rv1 > 0);

    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "pods", "default", "web",
                                    (ProtobufCMessage **)&got, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_rv (&got->base), rv1);
    ZT_ASSERT_STR_EQ (got->metadata->uid, created->metadata->uid);

    //  AlreadyExists, as Kubernetes words it
    ZT_ASSERT_INT_EQ (s_create ("pods", "default", pod, NULL, &error),
                      ZUBE_ALREADY_EXISTS);
    ZT_ASSERT_STR_EQ (error.reason, "AlreadyExists");
    ZT_ASSERT_INT_EQ (error.code, 409);
    ZT_ASSERT_STR_EQ (error.message, "pods \"web\" already exists");

    //  Update at the current revision: a new, higher one
    s_label (got->metadata, "app", "web");
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "pods", "default", &got->base, NULL,
                                       false, (ProtobufCMessage **)&updated, &error),
                      ZUBE_OK);
    int64_t rv2 = s_rv (&updated->base);
    ZT_ASSERT (rv2 > rv1);
    ZT_ASSERT_INT_EQ (updated->metadata->n_labels, 1);
    ZT_ASSERT_INT_EQ (updated->metadata->generation, 1);

    //  The same update again names a stale revision: Conflict
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "pods", "default", &got->base, NULL,
                                       false, NULL, &error),
                      ZUBE_CONFLICT);
    ZT_ASSERT_STR_EQ (error.reason, "Conflict");
    ZT_ASSERT_STR_EQ (
        error.message,
        "Operation cannot be fulfilled on pods \"web\": the object has been "
        "modified; please apply your changes to the latest version and try "
        "again");

    //  A spec change bumps generation
    S_FREE (got);
    got = updated;
    updated = NULL;
    free (got->spec->containers[0]->image);
    got->spec->containers[0]->image = strdup ("nginx:1.26");
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "pods", "default", &got->base, NULL,
                                       false, (ProtobufCMessage **)&updated, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (updated->metadata->generation, 2);
    int64_t rv3 = s_rv (&updated->base);
    ZT_ASSERT (rv3 > rv2);

    //  Merge patch
    S_FREE (updated);
    ZT_ASSERT_INT_EQ (
        zube_api_patch (s_main.api, "pods", "default", "web", NULL,
                        "{\"metadata\":{\"labels\":{\"tier\":\"front\",\"app\":null}}}",
                        NULL, false, (ProtobufCMessage **)&updated, &error),
        ZUBE_OK);
    ZT_ASSERT_INT_EQ (updated->metadata->n_labels, 1);
    ZT_ASSERT_STR_EQ (updated->metadata->labels[0]->key, "tier");
    ZT_ASSERT (s_rv (&updated->base) > rv3);
    //  A patch naming a stale resourceVersion: Conflict
    char patch[128];
    snprintf (patch, sizeof patch, "{\"metadata\":{\"resourceVersion\":\"%" PRId64 "\"}}",
              rv1);
    ZT_ASSERT_INT_EQ (zube_api_patch (s_main.api, "pods", "default", "web", NULL, patch,
                                      NULL, false, NULL, &error),
                      ZUBE_CONFLICT);

    //  Delete (not bound: at once), then NotFound
    ZT_ASSERT_INT_EQ (
        zube_api_delete (s_main.api, "pods", "default", "web", NULL, NULL, &error),
        ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "pods", "default", "web", NULL, &error),
                      ZUBE_NOT_FOUND);
    ZT_ASSERT_STR_EQ (error.message, "pods \"web\" not found");
    ZT_ASSERT_INT_EQ (error.code, 404);
    ZT_ASSERT_INT_EQ (
        zube_api_delete (s_main.api, "pods", "default", "web", NULL, NULL, &error),
        ZUBE_NOT_FOUND);
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "pods", "default", &got->base, NULL,
                                       false, NULL, &error),
                      ZUBE_NOT_FOUND);
    S_FREE (pod);
    S_FREE (created);
    S_FREE (got);
    S_FREE (updated);
}

static void
test_invalid_and_namespace (void)
{
    zube_api_error_t error;
    Zube__Pod *pod = s_pod ("Web", "default");
    ZT_ASSERT_INT_EQ (s_create ("pods", "default", pod, NULL, &error), ZUBE_INVALID);
    ZT_ASSERT_STR_EQ (error.reason, "Invalid");
    ZT_ASSERT_INT_EQ (error.code, 422);
    ZT_ASSERT (error.cause_count >= 1);
    ZT_ASSERT_STR_EQ (error.causes[0].field, "metadata.name");
    ZT_ASSERT_STR_CONTAINS (
        error.message, "Pod \"Web\" is invalid: metadata.name: Invalid value: \"Web\"");
    S_FREE (pod);

    pod = s_pod (NULL, "default");
    ZT_ASSERT_INT_EQ (s_create ("pods", "default", pod, NULL, &error), ZUBE_INVALID);
    ZT_ASSERT_STR_EQ (error.causes[0].field, "metadata.name");
    S_FREE (pod);

    pod = s_pod ("web", "nowhere");
    ZT_ASSERT_INT_EQ (s_create ("pods", "nowhere", pod, NULL, &error), ZUBE_NOT_FOUND);
    ZT_ASSERT_STR_EQ (error.message, "namespaces \"nowhere\" not found");
    S_FREE (pod);
}

static void
test_generate_name (void)
{
    zube_api_error_t error;
    Zube__Pod *pod = s_pod (NULL, "default"), *created = NULL;
    pod->metadata->generate_name = strdup ("gen-");
    ZT_ASSERT_INT_EQ (
        s_create ("pods", "default", pod, (ProtobufCMessage **)&created, &error),
        ZUBE_OK);
    ZT_ASSERT_INT_EQ (strlen (created->metadata->name), 9);
    ZT_ASSERT (strncmp (created->metadata->name, "gen-", 4) == 0);
    ZT_ASSERT (strspn (created->metadata->name + 4, "bcdfghjklmnpqrstvwxz2456789") == 5);
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "pods", "default",
                                       created->metadata->name, NULL, NULL, &error),
                      ZUBE_OK);
    S_FREE (pod);
    S_FREE (created);
}

static void
test_status_and_binding (void)
{
    zube_api_error_t error;
    Zube__Pod *pod = s_pod ("st", "default"), *created = NULL, *after = NULL;
    ZT_ASSERT_INT_EQ (
        s_create ("pods", "default", pod, (ProtobufCMessage **)&created, &error),
        ZUBE_OK);
    //  Status through the main resource is ignored
    if (!created->status) {
        created->status = calloc (1, sizeof (Zube__PodStatus));
        zube__pod_status__init (created->status);
    }
    free (created->status->phase);
    created->status->phase = strdup ("Running");
    s_label (created->metadata, "seen", "yes");
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "pods", "default", &created->base,
                                       NULL, false, (ProtobufCMessage **)&after, &error),
                      ZUBE_OK);
    ZT_ASSERT (!after->status || !after->status->phase ||
               !streq (after->status->phase, "Running"));
    ZT_ASSERT_INT_EQ (after->metadata->n_labels, 1);
    //  The status subresource writes only status
    free (after->status ? after->status->phase : NULL);
    if (!after->status) {
        after->status = calloc (1, sizeof (Zube__PodStatus));
        zube__pod_status__init (after->status);
    }
    after->status->phase = strdup ("Running");
    s_label (after->metadata, "ignored", "yes");
    Zube__Pod *status = NULL;
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "pods", "default", &after->base,
                                       "status", false, (ProtobufCMessage **)&status,
                                       &error),
                      ZUBE_OK);
    ZT_ASSERT_STR_EQ (status->status->phase, "Running");
    ZT_ASSERT_INT_EQ (status->metadata->n_labels, 1);

    //  Binding
    ZT_ASSERT_INT_EQ (zube_api_bind (s_main.api, "default", "st", "node-1", &error),
                      ZUBE_OK);
    Zube__Pod *bound = NULL;
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "pods", "default", "st",
                                    (ProtobufCMessage **)&bound, &error),
                      ZUBE_OK);
    ZT_ASSERT_STR_EQ (bound->spec->node_name, "node-1");
    bool scheduled = false;
    for (size_t i = 0; i < bound->status->n_conditions; i++)
        if (streq (bound->status->conditions[i]->type, "PodScheduled") &&
            streq (bound->status->conditions[i]->status, "True"))
            scheduled = true;
    ZT_ASSERT (scheduled);
    ZT_ASSERT_STR_EQ (bound->status->phase, "Running");
    ZT_ASSERT_INT_EQ (zube_api_bind (s_main.api, "default", "st", "node-2", &error),
                      ZUBE_CONFLICT);
    ZT_ASSERT_STR_CONTAINS (error.message, "already assigned to node \"node-1\"");
    ZT_ASSERT_INT_EQ (zube_api_bind (s_main.api, "default", "absent", "node-2", &error),
                      ZUBE_NOT_FOUND);

    //  A bound pod is deleted gracefully: it stays, marked
    Zube__Pod *marked = NULL;
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "pods", "default", "st", NULL,
                                       (ProtobufCMessage **)&marked, &error),
                      ZUBE_OK);
    ZT_ASSERT (marked->metadata->deletion_timestamp != NULL);
    ZT_ASSERT_INT_EQ (marked->metadata->deletion_grace_period_seconds, 30);
    S_FREE (bound);
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "pods", "default", "st",
                                    (ProtobufCMessage **)&bound, &error),
                      ZUBE_OK);
    ZT_ASSERT (bound->metadata->deletion_timestamp != NULL);
    //  The node agent's delete with grace 0 removes it
    zube_api_delete_options_t now = {.grace_period_seconds = 0};
    ZT_ASSERT_INT_EQ (
        zube_api_delete (s_main.api, "pods", "default", "st", &now, NULL, &error),
        ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "pods", "default", "st", NULL, &error),
                      ZUBE_NOT_FOUND);
    S_FREE (pod);
    S_FREE (created);
    S_FREE (after);
    S_FREE (status);
    S_FREE (bound);
    S_FREE (marked);
}

static void
test_finalizers_and_preconditions (void)
{
    zube_api_error_t error;
    Zube__ConfigMap *map = s_configmap ("fin", "default"), *created = NULL,
                    *marked = NULL;
    map->metadata->n_finalizers = 1;
    map->metadata->finalizers = calloc (1, sizeof (char *));
    map->metadata->finalizers[0] = strdup ("example.com/hold");
    ZT_ASSERT_INT_EQ (
        s_create ("configmaps", "default", map, (ProtobufCMessage **)&created, &error),
        ZUBE_OK);
    //  Preconditions that do not hold
    zube_api_delete_options_t wrong_uid = {.grace_period_seconds = -1, .uid = "nope"};
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "configmaps", "default", "fin",
                                       &wrong_uid, NULL, &error),
                      ZUBE_CONFLICT);
    ZT_ASSERT_STR_CONTAINS (error.message,
                            "Precondition failed: UID in precondition: nope");
    zube_api_delete_options_t wrong_rv = {.grace_period_seconds = -1,
                                          .resource_version = "1"};
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "configmaps", "default", "fin",
                                       &wrong_rv, NULL, &error),
                      ZUBE_CONFLICT);
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "configmaps", "default", "fin", NULL,
                                       (ProtobufCMessage **)&marked, &error),
                      ZUBE_OK);
    ZT_ASSERT (marked->metadata->deletion_timestamp != NULL);
    ZT_ASSERT_INT_EQ (marked->metadata->n_finalizers, 1);
    //  The last finalizer removed: gone
    free (marked->metadata->finalizers[0]);
    free (marked->metadata->finalizers);
    marked->metadata->finalizers = NULL;
    marked->metadata->n_finalizers = 0;
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "configmaps", "default", &marked->base,
                                       NULL, false, NULL, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (
        zube_api_get (s_main.api, "configmaps", "default", "fin", NULL, &error),
        ZUBE_NOT_FOUND);
    S_FREE (map);
    S_FREE (created);
    S_FREE (marked);
}

static void
test_namespace_lifecycle (void)
{
    zube_api_error_t error;
    Zube__Namespace *ns = calloc (1, sizeof *ns), *marked = NULL;
    zube__namespace__init (ns);
    ns->metadata = calloc (1, sizeof (Zube__ObjectMeta));
    zube__object_meta__init (ns->metadata);
    ns->metadata->name = strdup ("doomed");
    ZT_ASSERT_INT_EQ (s_create ("namespaces", NULL, ns, NULL, &error), ZUBE_OK);
    Zube__ConfigMap *map = s_configmap ("inside", "doomed");
    ZT_ASSERT_INT_EQ (s_create ("configmaps", "doomed", map, NULL, &error), ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "namespaces", NULL, "doomed", NULL,
                                       (ProtobufCMessage **)&marked, &error),
                      ZUBE_OK);
    ZT_ASSERT_STR_EQ (marked->status->phase, "Terminating");
    ZT_ASSERT (marked->metadata->deletion_timestamp != NULL);
    ZT_ASSERT (marked->spec && marked->spec->n_finalizers == 1);
    S_FREE (map);
    map = s_configmap ("late", "doomed");
    ZT_ASSERT_INT_EQ (s_create ("configmaps", "doomed", map, NULL, &error),
                      ZUBE_FORBIDDEN);
    ZT_ASSERT_STR_CONTAINS (error.message,
                            "unable to create new content in namespace doomed "
                            "because it is being terminated");
    //  The namespace controller's part: empty it, finalize it
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "configmaps", "doomed", "inside", NULL,
                                       NULL, &error),
                      ZUBE_OK);
    free (marked->spec->finalizers[0]);
    free (marked->spec->finalizers);
    marked->spec->finalizers = NULL;
    marked->spec->n_finalizers = 0;
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "namespaces", NULL, &marked->base,
                                       NULL, false, NULL, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (
        zube_api_get (s_main.api, "namespaces", NULL, "doomed", NULL, &error),
        ZUBE_NOT_FOUND);
    S_FREE (ns);
    S_FREE (map);
    S_FREE (marked);
}

static void
test_selectors_and_pages (void)
{
    zube_api_error_t error;
    for (int i = 0; i < 25; i++) {
        char name[32];
        snprintf (name, sizeof name, "sel-%02d", i);
        Zube__Pod *pod = s_pod (name, "kube-public");
        s_label (pod->metadata, "app", i % 2 ? "odd" : "even");
        ZT_ASSERT_INT_EQ (s_create ("pods", "kube-public", pod, NULL, &error), ZUBE_OK);
        S_FREE (pod);
    }
    ZT_ASSERT_INT_EQ (
        zube_api_bind (s_main.api, "kube-public", "sel-03", "node-7", &error), ZUBE_OK);
    zube_api_list_t *list = NULL;
    zube_api_list_options_t options = {.namespace = "kube-public",
                                       .label_selector = "app=odd"};
    ZT_ASSERT_INT_EQ (zube_api_list (s_main.api, "pods", &options, &list, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (list->count, 12);
    zube_api_list_destroy (&list);
    options = (zube_api_list_options_t){.namespace = "kube-public",
                                        .field_selector = "metadata.name=sel-07"};
    ZT_ASSERT_INT_EQ (zube_api_list (s_main.api, "pods", &options, &list, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (list->count, 1);
    zube_api_list_destroy (&list);
    options = (zube_api_list_options_t){.field_selector = "spec.nodeName=node-7"};
    ZT_ASSERT_INT_EQ (zube_api_list (s_main.api, "pods", &options, &list, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (list->count, 1);
    ZT_ASSERT_STR_EQ (zube_object_meta (list->items[0])->name, "sel-03");
    zube_api_list_destroy (&list);
    options = (zube_api_list_options_t){.label_selector = "app in (odd"};
    ZT_ASSERT_INT_EQ (zube_api_list (s_main.api, "pods", &options, &list, &error),
                      ZUBE_BAD_REQUEST);

    //  Pages of 7 cover every item once, with the first page's revision
    bool seen[25] = {false};
    size_t total = 0, pages = 0;
    char *token = NULL, *list_rv = NULL;
    do {
        options = (zube_api_list_options_t){
            .namespace = "kube-public", .limit = 7, .continue_token = token};
        ZT_ASSERT_INT_EQ (zube_api_list (s_main.api, "pods", &options, &list, &error),
                          ZUBE_OK);
        ZT_ASSERT (list->count <= 7);
        for (size_t i = 0; i < list->count; i++) {
            int index = atoi (zube_object_meta (list->items[i])->name + 4);
            ZT_ASSERT (!seen[index]);
            seen[index] = true;
            ZT_ASSERT (s_rv (list->items[i]) > 0);
        }
        if (!list_rv)
            list_rv = strdup (list->resource_version);
        else
            ZT_ASSERT_STR_EQ (list->resource_version, list_rv);
        total += list->count;
        pages++;
        free (token);
        token = list->continue_token ? strdup (list->continue_token) : NULL;
        zube_api_list_destroy (&list);
    } while (token);
    ZT_ASSERT_INT_EQ (total, 25);
    ZT_ASSERT_INT_EQ (pages, 4);
    free (list_rv);
    options = (zube_api_list_options_t){
        .namespace = "kube-public", .limit = 7, .continue_token = "garbage"};
    ZT_ASSERT_INT_EQ (zube_api_list (s_main.api, "pods", &options, &list, &error),
                      ZUBE_BAD_REQUEST);
}

//  Events: what the bus delivers on api/configmaps
typedef struct {
    int count;
    int64_t last;
    int64_t prev[256];
    int64_t rv[256];
    char type[256][12];
} s_events_t;

static void
s_on_event (zube_bus_t *bus, const char *topic, const uint8_t *payload, size_t size,
            void *arg)
{
    s_events_t *events = (s_events_t *)arg;
    if (!streq (topic, "api/configmaps"))
        return;
    Zube__WatchEvent *event = zube__watch_event__unpack (NULL, size, payload);
    if (!event || events->count == 256)
        return;
    events->rv[events->count] = strtoll (event->resource_version, NULL, 10);
    events->prev[events->count] = strtoll (event->prev_resource_version, NULL, 10);
    snprintf (events->type[events->count], 12, "%s", event->type);
    events->count++;
    zube__watch_event__free_unpacked (event, NULL);
}

static void
test_events_and_watch (void)
{
    zube_api_error_t error;
    s_events_t *events = calloc (1, sizeof *events);
    ZT_ASSERT (zube_bus_subscribe (s_main.bus, "api/configmaps", s_on_event, events) ==
               0);
    //  A subscription needs a moment to reach the publisher
    zube_bus_poll (s_main.bus, 500);
    ProtobufCMessage *first = NULL;
    Zube__ConfigMap *map = s_configmap ("ev-0", "default");
    ZT_ASSERT_INT_EQ (s_create ("configmaps", "default", map, &first, &error), ZUBE_OK);
    int64_t start = s_rv (first);
    S_FREE (map);
    int writes = 1;
    for (int i = 1; i < 20; i++) {
        char name[16];
        snprintf (name, sizeof name, "ev-%d", i);
        map = s_configmap (name, "default");
        ZT_ASSERT_INT_EQ (s_create ("configmaps", "default", map, NULL, &error), ZUBE_OK);
        writes++;
        S_FREE (map);
    }
    ZT_ASSERT_INT_EQ (zube_api_patch (s_main.api, "configmaps", "default", "ev-3", NULL,
                                      "{\"data\":{\"k\":\"v\"}}", NULL, false, NULL,
                                      &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (
        zube_api_delete (s_main.api, "configmaps", "default", "ev-4", NULL, NULL, &error),
        ZUBE_OK);
    writes += 2;
    int64_t deadline = zt_now_ms () + 5000;
    while (events->count < writes && zt_now_ms () < deadline)
        zube_bus_poll (s_main.bus, 50);
    zube_bus_poll (s_main.bus, 200);
    ZT_ASSERT_INT_EQ (events->count, writes);
    ZT_ASSERT_INT_EQ (events->rv[0], start);
    for (int i = 1; i < events->count; i++) {
        ZT_ASSERT (events->rv[i] > events->rv[i - 1]);
        ZT_ASSERT_INT_EQ (events->prev[i], events->rv[i - 1]);
    }
    ZT_ASSERT_STR_EQ (events->type[0], "ADDED");
    ZT_ASSERT_STR_EQ (events->type[writes - 2], "MODIFIED");
    ZT_ASSERT_STR_EQ (events->type[writes - 1], "DELETED");
    zube_bus_unsubscribe (s_main.bus, "api/configmaps");

    //  Watch since the first event: every later one, in order
    Zube__WatchEventBatch *batch = NULL;
    char since[24];
    snprintf (since, sizeof since, "%" PRId64, start);
    ZT_ASSERT_INT_EQ (
        zube_api_watch_since (s_main.api, "configmaps", "default", since, &batch, &error),
        ZUBE_OK);
    ZT_ASSERT_INT_EQ (batch->n_events, (size_t)writes - 1);
    ZT_ASSERT_INT_EQ (strtoll (batch->events[0]->resource_version, NULL, 10),
                      events->rv[1]);
    ZT_ASSERT_STR_EQ (batch->events[writes - 2]->type, "DELETED");
    ZT_ASSERT_STR_EQ (batch->events[writes - 2]->name, "ev-4");
    ZT_ASSERT (strtoll (batch->resource_version, NULL, 10) >= events->rv[writes - 1]);
    Zube__ConfigMap *object = zube__config_map__unpack (
        NULL, batch->events[0]->object.len, batch->events[0]->object.data);
    ZT_ASSERT (object && s_rv (&object->base) == events->rv[1]);
    S_FREE (object);
    zube__watch_event_batch__free_unpacked (batch, NULL);
    S_FREE (first);
    free (events);
}

static void
test_bad_input (void)
{
    zube_api_error_t error;
    zube_api_list_t *list = NULL;
    ZT_ASSERT_INT_EQ (zube_api_list (s_main.api, "configmaps", NULL, &list, &error),
                      ZUBE_OK);
    size_t before = list->count;
    zube_api_list_destroy (&list);

    //  Garbage where a CreateRequest should be
    zube_bus_reply_t *reply = NULL;
    zube_bus_call (s_main.bus, "api", "create", "\xff\xff\xff", 3, 5000, &reply);
    ZT_ASSERT_INT_EQ (reply->status, ZUBE_BAD_REQUEST);
    zube_bus_reply_destroy (&reply);
    //  A request that decodes, with an object that does not
    Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
    request.resource = "configmaps";
    request.namespace_ = "default";
    request.has_object = true;
    request.object.data = (uint8_t *)"\x0a\xff";
    request.object.len = 2;
    ZT_ASSERT_INT_EQ (
        zube_api_call (s_main.api, "create", &request.base, NULL, NULL, &error),
        ZUBE_BAD_REQUEST);
    ZT_ASSERT_STR_CONTAINS (error.message, "not a valid ConfigMap");
    //  An unknown resource
    Zube__ConfigMap *map = s_configmap ("x", "default");
    ZT_ASSERT_INT_EQ (s_create ("gizmos", "default", map, NULL, &error), ZUBE_NOT_FOUND);
    ZT_ASSERT_STR_CONTAINS (error.message, "gizmos");
    //  An unknown method
    zube_bus_call (s_main.bus, "api", "frobnicate", NULL, 0, 5000, &reply);
    ZT_ASSERT_INT_EQ (reply->status, ZUBE_NOT_IMPLEMENTED);
    zube_bus_reply_destroy (&reply);
    //  Over 1.5 MiB
    size_t big = 1600 * 1024;
    map->n_data = 1;
    map->data = calloc (1, sizeof (void *));
    map->data[0] = calloc (1, sizeof (Zube__ConfigMap__DataEntry));
    zube__config_map__data_entry__init (map->data[0]);
    map->data[0]->key = strdup ("big");
    map->data[0]->value = malloc (big + 1);
    memset (map->data[0]->value, 'x', big);
    map->data[0]->value[big] = 0;
    ZT_ASSERT_INT_EQ (s_create ("configmaps", "default", map, NULL, &error),
                      ZUBE_PAYLOAD_TOO_LARGE);
    ZT_ASSERT_STR_CONTAINS (error.message, "limit is 1572864");
    S_FREE (map);
    ZT_ASSERT_INT_EQ (zube_api_list (s_main.api, "configmaps", NULL, &list, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (list->count, before);
    zube_api_list_destroy (&list);
}

//  A cluster of its own: a small window, so a watch since an old
//  revision is GONE once the log is compacted
static void
test_watch_gone (void)
{
    zt_cluster_t saved = s_main;
    zt_cluster_t small;
    bool up = s_cluster_start (&small, NULL, NULL,
                               (const char *const[]){"--window", "5", NULL});
    s_main = small;
    ZT_ASSERT_MSG (up, "the apiserver did not start; log in %s", small.apiserver_log);
    zube_api_error_t error;
    for (int i = 0; i < 30; i++) {
        char name[16];
        snprintf (name, sizeof name, "g-%d", i);
        Zube__ConfigMap *map = s_configmap (name, "default");
        ZT_ASSERT_INT_EQ (s_create ("configmaps", "default", map, NULL, &error), ZUBE_OK);
        S_FREE (map);
    }
    //  The window holds the last 5; the log is compacted within a second
    Zube__WatchEventBatch *batch = NULL;
    zube_status_t status = ZUBE_OK;
    for (int attempt = 0; attempt < 40 && status == ZUBE_OK; attempt++) {
        usleep (100000);
        status = zube_api_watch_since (s_main.api, "configmaps", "default", "2", &batch,
                                       &error);
        if (batch)
            zube__watch_event_batch__free_unpacked (batch, NULL);
        batch = NULL;
    }
    ZT_ASSERT_INT_EQ (status, ZUBE_GONE);
    ZT_ASSERT_STR_EQ (error.reason, "Gone");
    ZT_ASSERT_STR_CONTAINS (error.message, "too old resource version: 2 (");
    zt_cluster_stop (&small, false);
    s_main = saved;
}

//  Writes to one key in consecutive batches, with the commit thread on
//  (the default) and off: 20 updates at one resourceVersion sent at once
//  give exactly one OK and 19 Conflicts; 20 merge patches sent at once
//  all apply (each re-read after the one before), none lost.
typedef struct {
    int ok;
    int conflict;
    int other;
    int done;
    int64_t revisions[64];
} s_race_t;

static void
s_race_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
             const zube_api_error_t *error, void *arg)
{
    (void) api, (void) error;
    s_race_t *race = arg;
    if (status == ZUBE_OK) {
        Zube__ObjectReply *object = (Zube__ObjectReply *) reply;
        if (race->ok < 64 && object->resource_version)
            race->revisions[race->ok] = strtoll (object->resource_version, NULL, 10);
        race->ok++;
    }
    else if (status == ZUBE_CONFLICT)
        race->conflict++;
    else
        race->other++;
    race->done++;
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
}

static void
s_race_wait (zube_api_t *api, s_race_t *race, int count)
{
    int64_t until = zt_now_ms () + 20000;
    while (race->done < count && zt_now_ms () < until)
        zube_bus_poll (zube_api_bus (api), 50);
}

static void
s_same_key (zt_cluster_t *cluster)
{
    enum { WRITERS = 20 };
    zube_api_error_t error;
    Zube__ConfigMap *map = s_configmap ("race", "default");
    ProtobufCMessage *created = NULL;
    ZT_ASSERT_INT_EQ (zube_api_create (cluster->api, "configmaps", "default",
                                       (ProtobufCMessage *) map, false, &created, &error),
                      ZUBE_OK);
    //  Updates, all at the revision just created.
    Zube__ConfigMap *current = (Zube__ConfigMap *) created;
    s_race_t race = {0};
    for (int i = 0; i < WRITERS; i++) {
        Zube__ConfigMap__DataEntry entry = ZUBE__CONFIG_MAP__DATA_ENTRY__INIT;
        Zube__ConfigMap__DataEntry *entries[] = {&entry};
        char key[16];
        snprintf (key, sizeof key, "u%d", i);
        entry.key = key;
        entry.value = "v";
        current->n_data = 1;
        current->data = entries;
        uint8_t object[4096];
        size_t size = protobuf_c_message_pack ((ProtobufCMessage *) current, object);
        current->n_data = 0;
        current->data = NULL;
        Zube__UpdateRequest request = ZUBE__UPDATE_REQUEST__INIT;
        request.resource = "configmaps";
        request.namespace_ = "default";
        request.name = "race";
        request.has_object = true;
        request.object.data = object;
        request.object.len = size;
        ZT_ASSERT_INT_EQ (zube_api_call_async (cluster->api, "update",
                                               (ProtobufCMessage *) &request,
                                               &zube__object_reply__descriptor, s_race_done,
                                               &race),
                          0);
    }
    s_race_wait (cluster->api, &race, WRITERS);
    ZT_ASSERT_INT_EQ (race.done, WRITERS);
    ZT_ASSERT_INT_EQ (race.ok, 1);
    ZT_ASSERT_INT_EQ (race.conflict, WRITERS - 1);

    //  Patches need no revision: every one applies, in some order.
    memset (&race, 0, sizeof race);
    for (int i = 0; i < WRITERS; i++) {
        char patch[64];
        snprintf (patch, sizeof patch, "{\"data\":{\"p%d\":\"v\"}}", i);
        Zube__PatchRequest request = ZUBE__PATCH_REQUEST__INIT;
        request.resource = "configmaps";
        request.namespace_ = "default";
        request.name = "race";
        request.patch_type = "application/merge-patch+json";
        request.has_patch = true;
        request.patch.data = (uint8_t *) patch;
        request.patch.len = strlen (patch);
        ZT_ASSERT_INT_EQ (zube_api_call_async (cluster->api, "patch",
                                               (ProtobufCMessage *) &request,
                                               &zube__object_reply__descriptor, s_race_done,
                                               &race),
                          0);
    }
    s_race_wait (cluster->api, &race, WRITERS);
    ZT_ASSERT_INT_EQ (race.ok, WRITERS);
    for (int i = 0; i < WRITERS; i++)
        for (int j = i + 1; j < WRITERS; j++)
            ZT_ASSERT_MSG (race.revisions[i] != race.revisions[j],
                           "two patches answered revision %" PRId64, race.revisions[i]);
    ProtobufCMessage *got = NULL;
    ZT_ASSERT_INT_EQ (zube_api_get (cluster->api, "configmaps", "default", "race", &got, &error),
                      ZUBE_OK);
    Zube__ConfigMap *final = (Zube__ConfigMap *) got;
    int patched = 0;
    for (size_t i = 0; i < final->n_data; i++)
        patched += final->data[i]->key[0] == 'p';
    ZT_ASSERT_INT_EQ (patched, WRITERS);
    S_FREE (got);
    S_FREE (created);
    S_FREE (map);
}

static void
test_same_key_batches (void)
{
    s_same_key (&s_main);
    zt_cluster_t off;
    bool up = s_cluster_start (&off, NULL, NULL,
                               (const char *const[]){"--commit-thread", "off", NULL});
    ZT_ASSERT_MSG (up, "the apiserver did not start; log in %s", off.apiserver_log);
    s_same_key (&off);
    zt_cluster_stop (&off, zt_failed_count > 0);
}

static void
test_forbidden (void)
{
    zt_cluster_t saved = s_main;
    char *keys = zt_tempdir ("apicerts");
    char certs[512], error_text[256];
    snprintf (certs, sizeof certs, "%s/certs", keys);
    const char *names[] = {"broker", "apiserver", "admin", "mallory"};
    for (int i = 0; i < 4; i++)
        ZT_ASSERT_MSG (
            zube_certs_create (certs, names[i], error_text, sizeof error_text) == 0, "%s",
            error_text);
    zt_cluster_t secure;
    bool up = s_cluster_start (&secure, certs, "admin", NULL);
    s_main = secure;
    ZT_ASSERT_MSG (up, "the secure apiserver did not start; log in %s", secure.apiserver_log);
    zube_api_error_t error;
    Zube__ConfigMap *map = s_configmap ("mine", "default");
    ZT_ASSERT_INT_EQ (s_create ("configmaps", "default", map, NULL, &error), ZUBE_OK);
    zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t){
        .endpoint = secure.endpoint, .certs_dir = certs, .name = "mallory"});
    zube_api_t *api = zube_api_new (bus);
    ZT_ASSERT_INT_EQ (zube_api_get (api, "configmaps", "default", "mine", NULL, &error),
                      ZUBE_FORBIDDEN);
    ZT_ASSERT_STR_EQ (error.reason, "Forbidden");
    ZT_ASSERT_INT_EQ (error.code, 403);
    ZT_ASSERT_STR_CONTAINS (error.message, "mallory");
    free (map->metadata->name);
    map->metadata->name = strdup ("theirs");
    ZT_ASSERT_INT_EQ (
        zube_api_create (api, "configmaps", "default", &map->base, false, NULL, &error),
        ZUBE_FORBIDDEN);
    ZT_ASSERT_INT_EQ (
        zube_api_get (s_main.api, "configmaps", "default", "theirs", NULL, &error),
        ZUBE_NOT_FOUND);
    zube_api_destroy (&api);
    zube_bus_destroy (&bus);
    S_FREE (map);
    zt_cluster_stop (&secure, false);
    zt_rmtree (keys);
    free (keys);
    s_main = saved;
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    setenv ("ZSYS_LOGSYSTEM", "false", 1);
    if (!s_cluster_start (&s_main, NULL, NULL, NULL)) {
        printf ("# the apiserver did not start: %s\n", s_main.why);
        ZT_RUN (test_default_namespaces);
        zt_cluster_stop (&s_main, true);
        return zt_done ();
    }
    ZT_RUN (test_default_namespaces);
    ZT_RUN (test_crud);
    ZT_RUN (test_invalid_and_namespace);
    ZT_RUN (test_generate_name);
    ZT_RUN (test_status_and_binding);
    ZT_RUN (test_finalizers_and_preconditions);
    ZT_RUN (test_namespace_lifecycle);
    ZT_RUN (test_selectors_and_pages);
    ZT_RUN (test_events_and_watch);
    ZT_RUN (test_bad_input);
    ZT_RUN (test_watch_gone);
    ZT_RUN (test_same_key_batches);
    ZT_RUN (test_forbidden);
    zt_cluster_stop (&s_main, zt_failed_count > 0);
    return zt_done ();
}
