/*  test_api_verbs - the verbs issue 3 added to zube-apiserver, as a real
    process behind a real zube-broker on an lmdb store in a temporary
    directory: the scale subresource of deployments and replicasets, JSON
    patch and strategic merge patch, deletion propagation (Orphan,
    Foreground, Background), and watch bookmarks and timeouts. */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zt_cluster.h"
#include "api.pb-c.h"
#include "apps.pb-c.h"
#include "core.pb-c.h"
#include "zube/api.h"
#include "zube/bus.h"
#include "zube/certs.h"
#include "zube/codec.h"
#include <czmq.h>
#include <inttypes.h>

static zt_cluster_t s_main;
//  Bookmarks every 0.3 s, so the test sees one soon
static const char *const s_args[] = {"--bookmark-interval", "0.3", NULL};

#define S_FREE(object)                                                                   \
    do {                                                                                 \
        if (object)                                                                      \
            protobuf_c_message_free_unpacked ((ProtobufCMessage *)(object), NULL);       \
        (object) = NULL;                                                                 \
    } while (0)

//  An object of descriptor's kind from YAML (the test fails on bad YAML).
static ProtobufCMessage *
s_decode (const char *yaml, const ProtobufCMessageDescriptor *descriptor)
{
    ProtobufCMessage *object = NULL;
    zube_codec_error_t error;
    if (zube_codec_decode (yaml, strlen (yaml), descriptor, &object, &error))
        ZT_FAIL ("decode: %s: %s", error.field, error.message);
    return object;
}

static Zube__Deployment *
s_deployment (const char *name, int replicas)
{
    char yaml[1024];
    snprintf (yaml, sizeof yaml,
              "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\n"
              "  namespace: default\nspec:\n  replicas: %d\n  selector:\n"
              "    matchLabels:\n      app: %s\n  template:\n    metadata:\n"
              "      labels:\n        app: %s\n    spec:\n      containers:\n"
              "      - name: app\n        image: nginx:1.25\n",
              name, replicas, name, name);
    return (Zube__Deployment *)s_decode (yaml, &zube__deployment__descriptor);
}

static int64_t
s_rv (const ProtobufCMessage *object)
{
    Zube__ObjectMeta *meta = zube_object_meta (object);
    return meta && meta->resource_version ? strtoll (meta->resource_version, NULL, 10)
                                          : -1;
}

//  ---------------------------------------------------------------------
//  Scale

static void
test_scale (void)
{
    zube_api_error_t error;
    Zube__Deployment *deployment = s_deployment ("web", 2), *created = NULL;
    ZT_ASSERT_INT_EQ (zube_api_create (s_main.api, "deployments", "default",
                                       &deployment->base, false,
                                       (ProtobufCMessage **)&created, &error),
                      ZUBE_OK);
    S_FREE (deployment);
    //  A status, as the deployment controller would write it
    ZT_ASSERT_INT_EQ (zube_api_patch (s_main.api, "deployments", "default", "web", NULL,
                                      "{\"status\":{\"replicas\":1}}", "status", false,
                                      NULL, &error),
                      ZUBE_OK);
    Zube__Scale *scale = NULL;
    ZT_ASSERT_INT_EQ (
        zube_api_get_scale (s_main.api, "deployments", "default", "web", &scale, &error),
        ZUBE_OK);
    ZT_ASSERT_STR_EQ (scale->kind, "Scale");
    ZT_ASSERT_STR_EQ (scale->api_version, "autoscaling/v1");
    ZT_ASSERT_STR_EQ (scale->metadata->name, "web");
    ZT_ASSERT_STR_EQ (scale->metadata->namespace_, "default");
    ZT_ASSERT_STR_EQ (scale->metadata->uid, created->metadata->uid);
    ZT_ASSERT_INT_EQ (scale->spec->replicas, 2);
    ZT_ASSERT_INT_EQ (scale->status->replicas, 1);
    ZT_ASSERT_STR_EQ (scale->status->selector, "app=web");
    int64_t read_rv = s_rv (&scale->base);
    ZT_ASSERT (read_rv > s_rv (&created->base));

    //  Update at the revision read: the parent's spec.replicas changes,
    //  the answer is the new Scale
    scale->spec->replicas = 5;
    Zube__Scale *updated = NULL;
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "deployments", "default",
                                       &scale->base, "scale", false,
                                       (ProtobufCMessage **)&updated, &error),
                      ZUBE_OK);
    ZT_ASSERT (updated->base.descriptor == &zube__scale__descriptor);
    ZT_ASSERT_INT_EQ (updated->spec->replicas, 5);
    ZT_ASSERT (s_rv (&updated->base) > read_rv);
    Zube__Deployment *got = NULL;
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "deployments", "default", "web",
                                    (ProtobufCMessage **)&got, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (got->spec->replicas, 5);
    ZT_ASSERT_INT_EQ (got->metadata->generation, 2);
    ZT_ASSERT_INT_EQ (got->status->replicas, 1);
    S_FREE (got);

    //  The same (now stale) resourceVersion: Conflict, nothing written
    scale->spec->replicas = 7;
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "deployments", "default",
                                       &scale->base, "scale", false, NULL, &error),
                      ZUBE_CONFLICT);
    ZT_ASSERT_STR_CONTAINS (error.message, "the object has been modified");
    //  Negative replicas: Invalid on spec.replicas
    free (scale->metadata->resource_version);
    scale->metadata->resource_version = NULL;
    scale->spec->replicas = -1;
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "deployments", "default",
                                       &scale->base, "scale", false, NULL, &error),
                      ZUBE_INVALID);
    ZT_ASSERT_STR_EQ (error.reason, "Invalid");
    ZT_ASSERT_INT_EQ (error.cause_count, 1);
    ZT_ASSERT_STR_EQ (error.causes[0].field, "spec.replicas");
    ZT_ASSERT_STR_CONTAINS (error.message, "Invalid value: -1");
    //  A merge patch of the Scale, as kubectl scale sends it
    Zube__Scale *patched = NULL;
    ZT_ASSERT_INT_EQ (zube_api_patch (s_main.api, "deployments", "default", "web", NULL,
                                      "{\"spec\":{\"replicas\":3}}", "scale", false,
                                      (ProtobufCMessage **)&patched, &error),
                      ZUBE_OK);
    ZT_ASSERT (patched->base.descriptor == &zube__scale__descriptor);
    ZT_ASSERT_INT_EQ (patched->spec->replicas, 3);
    ZT_ASSERT_INT_EQ (zube_api_patch (s_main.api, "deployments", "default", "web", NULL,
                                      "{\"spec\":{\"replicas\":-4}}", "scale", false,
                                      NULL, &error),
                      ZUBE_INVALID);
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "deployments", "default", "web",
                                    (ProtobufCMessage **)&got, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (got->spec->replicas, 3);
    S_FREE (got);

    //  Kinds without the subresource, and a missing parent: NotFound
    Zube__Scale *none = NULL;
    ZT_ASSERT_INT_EQ (
        zube_api_get_scale (s_main.api, "configmaps", "default", "web", &none, &error),
        ZUBE_NOT_FOUND);
    ZT_ASSERT_STR_CONTAINS (error.message, "the server could not find the requested "
                                           "resource");
    ZT_ASSERT_INT_EQ (zube_api_update (s_main.api, "pods", "default", &scale->base,
                                       "scale", false, NULL, &error),
                      ZUBE_NOT_FOUND);
    ZT_ASSERT_INT_EQ (
        zube_api_get_scale (s_main.api, "deployments", "default", "nope", &none, &error),
        ZUBE_NOT_FOUND);
    ZT_ASSERT_STR_CONTAINS (error.message, "\"nope\" not found");

    //  ReplicaSets have it too
    char yaml[] = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: rs\n"
                  "spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: rs\n"
                  "    matchExpressions:\n    - key: tier\n      operator: In\n"
                  "      values: [a, b]\n  template:\n    metadata:\n      labels:\n"
                  "        app: rs\n        tier: a\n    spec:\n      containers:\n"
                  "      - name: app\n        image: nginx\n";
    ProtobufCMessage *rs = s_decode (yaml, &zube__replica_set__descriptor);
    ZT_ASSERT_INT_EQ (
        zube_api_create (s_main.api, "replicasets", "default", rs, false, NULL, &error),
        ZUBE_OK);
    S_FREE (rs);
    ZT_ASSERT_INT_EQ (
        zube_api_get_scale (s_main.api, "replicasets", "default", "rs", &none, &error),
        ZUBE_OK);
    ZT_ASSERT_INT_EQ (none->spec->replicas, 1);
    ZT_ASSERT_INT_EQ (none->status->replicas, 0);
    ZT_ASSERT_STR_EQ (none->status->selector, "app=rs,tier in (a,b)");
    S_FREE (none);
    S_FREE (patched);
    S_FREE (updated);
    S_FREE (scale);
    S_FREE (created);
}

//  Authorization: the scale subresource is its own resource
//  (deployments/scale), as Kubernetes' RBAC has it
static void
test_scale_authorization (void)
{
    char *keys = zt_tempdir ("verbcerts");
    char certs[512], policy[512], text[256];
    snprintf (certs, sizeof certs, "%s/certs", keys);
    snprintf (policy, sizeof policy, "%s/policy.yaml", keys);
    const char *names[] = {"broker", "apiserver", "admin", "scaler", "editor"};
    for (int i = 0; i < 5; i++)
        ZT_ASSERT_MSG (zube_certs_create (certs, names[i], text, sizeof text) == 0, "%s",
                       text);
    //  admin is a built-in role
    ZT_ASSERT (zt_write_file (policy, "roles:\n"
                                      "- name: scaler\n"
                                      "  rules:\n"
                                      "  - verbs: [get, update, patch]\n"
                                      "    resources: [deployments/scale]\n"
                                      "- name: editor\n"
                                      "  rules:\n"
                                      "  - verbs: [get, update, patch]\n"
                                      "    resources: [deployments]\n"
                                      "bindings:\n"
                                      "- identities: [admin]\n"
                                      "  role: admin\n"
                                      "- identities: [scaler]\n"
                                      "  role: scaler\n"
                                      "- identities: [editor]\n"
                                      "  role: editor\n"));
    const char *args[] = {"--policy", policy, NULL};
    zt_cluster_t secure;
    bool up = zt_cluster_start (&secure, &(zt_cluster_options_t){.tag = "verbs-authz",
                                                                 .certs = certs,
                                                                 .client_name = "admin",
                                                                 .apiserver_args = args,
                                                                 .broker_log = "log",
                                                                 .apiserver_log = "log",
                                                                 .ready_timeout_ms = 15000});
    ZT_ASSERT_MSG (up, "the secure apiserver did not start: %s", secure.why);
    zube_api_error_t error;
    Zube__Deployment *deployment = s_deployment ("guarded", 1);
    ZT_ASSERT_INT_EQ (zube_api_create (secure.api, "deployments", "default",
                                       &deployment->base, false, NULL, &error),
                      ZUBE_OK);
    S_FREE (deployment);
    const char *clients[] = {"scaler", "editor"};
    for (int i = 0; i < 2; i++) {
        zube_bus_t *bus = zube_bus_new (&(zube_bus_config_t){
            .endpoint = secure.endpoint, .certs_dir = certs, .name = clients[i]});
        zube_api_t *api = zube_api_new (bus);
        Zube__Scale *scale = NULL;
        zube_status_t got =
            zube_api_get_scale (api, "deployments", "default", "guarded", &scale, &error);
        zube_status_t patched = zube_api_patch (api, "deployments", "default", "guarded",
                                                NULL, "{\"spec\":{\"replicas\":4}}",
                                                "scale", false, NULL, &error);
        char patch_error[256];
        snprintf (patch_error, sizeof patch_error, "%s", error.message);
        zube_status_t whole = zube_api_patch (api, "deployments", "default", "guarded",
                                              NULL, "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}",
                                              NULL, false, NULL, &error);
        if (i == 0) {
            //  scaler: the subresource only
            ZT_ASSERT_INT_EQ (got, ZUBE_OK);
            ZT_ASSERT_INT_EQ (patched, ZUBE_OK);
            ZT_ASSERT_INT_EQ (whole, ZUBE_FORBIDDEN);
        } else {
            //  editor: the object, not its scale
            ZT_ASSERT_INT_EQ (got, ZUBE_FORBIDDEN);
            ZT_ASSERT_INT_EQ (patched, ZUBE_FORBIDDEN);
            ZT_ASSERT_STR_CONTAINS (patch_error, "deployments.apps \"guarded\" is forbidden");
            ZT_ASSERT_INT_EQ (whole, ZUBE_OK);
        }
        S_FREE (scale);
        zube_api_destroy (&api);
        zube_bus_destroy (&bus);
    }
    Zube__Deployment *stored = NULL;
    ZT_ASSERT_INT_EQ (zube_api_get (secure.api, "deployments", "default", "guarded",
                                    (ProtobufCMessage **)&stored, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (stored->spec->replicas, 4);
    S_FREE (stored);
    zt_cluster_stop (&secure, zt_failed_count > 0);
    zt_rmtree (keys);
    free (keys);
}

//  ---------------------------------------------------------------------
//  Patch types

static void
test_json_patch (void)
{
    zube_api_error_t error;
    Zube__ConfigMap *map = (Zube__ConfigMap *)s_decode (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: jp\ndata:\n  a: \"1\"\n"
        "  b: \"2\"\n",
        &zube__config_map__descriptor);
    Zube__ConfigMap *created = NULL;
    ZT_ASSERT_INT_EQ (zube_api_create (s_main.api, "configmaps", "default", &map->base,
                                       false, (ProtobufCMessage **)&created, &error),
                      ZUBE_OK);
    S_FREE (map);
    const char *type = "application/json-patch+json";
    Zube__ConfigMap *patched = NULL;
    ZT_ASSERT_INT_EQ (
        zube_api_patch (s_main.api, "configmaps", "default", "jp", type,
                        "[{\"op\":\"test\",\"path\":\"/data/a\",\"value\":\"1\"},"
                        "{\"op\":\"remove\",\"path\":\"/data/b\"},"
                        "{\"op\":\"add\",\"path\":\"/metadata/labels\",\"value\":{}},"
                        "{\"op\":\"add\",\"path\":\"/metadata/labels/x~1y\",\"value\":\"z\"}]",
                        NULL, false, (ProtobufCMessage **)&patched, &error),
        ZUBE_OK);
    ZT_ASSERT_INT_EQ (patched->n_data, 1);
    ZT_ASSERT_STR_EQ (patched->data[0]->key, "a");
    ZT_ASSERT_INT_EQ (patched->metadata->n_labels, 1);
    ZT_ASSERT_STR_EQ (patched->metadata->labels[0]->key, "x/y");
    int64_t rv = s_rv (&patched->base);
    S_FREE (patched);
    //  A failing test: Invalid naming the operation, nothing written
    ZT_ASSERT_INT_EQ (
        zube_api_patch (s_main.api, "configmaps", "default", "jp", type,
                        "[{\"op\":\"replace\",\"path\":\"/data/a\",\"value\":\"9\"},"
                        "{\"op\":\"test\",\"path\":\"/data/a\",\"value\":\"1\"}]",
                        NULL, false, NULL, &error),
        ZUBE_INVALID);
    ZT_ASSERT_INT_EQ (error.code, 422);
    ZT_ASSERT_STR_EQ (error.causes[0].field, "patch");
    ZT_ASSERT_STR_CONTAINS (error.message, "operation 1 (test /data/a)");
    //  A path that is not there
    ZT_ASSERT_INT_EQ (zube_api_patch (s_main.api, "configmaps", "default", "jp", type,
                                      "[{\"op\":\"replace\",\"path\":\"/data/zz\","
                                      "\"value\":\"9\"}]",
                                      NULL, false, NULL, &error),
                      ZUBE_INVALID);
    ZT_ASSERT_STR_CONTAINS (error.message, "operation 0 (replace /data/zz)");
    //  Not an array; an unknown type
    ZT_ASSERT_INT_EQ (zube_api_patch (s_main.api, "configmaps", "default", "jp", type,
                                      "{\"data\":{}}", NULL, false, NULL, &error),
                      ZUBE_BAD_REQUEST);
    ZT_ASSERT_INT_EQ (zube_api_patch (s_main.api, "configmaps", "default", "jp",
                                      "text/plain", "{}", NULL, false, NULL, &error),
                      ZUBE_BAD_REQUEST);
    ZT_ASSERT_STR_CONTAINS (error.message, "application/json-patch+json");
    Zube__ConfigMap *got = NULL;
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "configmaps", "default", "jp",
                                    (ProtobufCMessage **)&got, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (s_rv (&got->base), rv);
    ZT_ASSERT_STR_EQ (got->data[0]->value, "1");
    S_FREE (got);
    S_FREE (created);
}

static void
test_strategic_patch (void)
{
    zube_api_error_t error;
    Zube__Deployment *deployment = s_deployment ("smp", 1);
    ZT_ASSERT_INT_EQ (zube_api_create (s_main.api, "deployments", "default",
                                       &deployment->base, false, NULL, &error),
                      ZUBE_OK);
    S_FREE (deployment);
    Zube__Deployment *patched = NULL;
    ZT_ASSERT_INT_EQ (
        zube_api_patch (s_main.api, "deployments", "default", "smp",
                        "application/strategic-merge-patch+json",
                        "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
                        "\"sidecar\",\"image\":\"busybox\"},{\"name\":\"app\",\"env\":"
                        "[{\"name\":\"A\",\"value\":\"1\"}]}]}}}}",
                        NULL, false, (ProtobufCMessage **)&patched, &error),
        ZUBE_OK);
    Zube__PodSpec *spec = patched->spec->template_->spec;
    ZT_ASSERT_INT_EQ (spec->n_containers, 2);
    ZT_ASSERT_STR_EQ (spec->containers[0]->name, "app");
    ZT_ASSERT_STR_EQ (spec->containers[0]->image, "nginx:1.25");
    ZT_ASSERT_INT_EQ (spec->containers[0]->n_env, 1);
    ZT_ASSERT_STR_EQ (spec->containers[1]->name, "sidecar");
    S_FREE (patched);
}

//  ---------------------------------------------------------------------
//  Deletion propagation

static Zube__ConfigMap *
s_configmap (const char *name)
{
    char yaml[256];
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n", name);
    return (Zube__ConfigMap *)s_decode (yaml, &zube__config_map__descriptor);
}

static bool
s_has_finalizer (const Zube__ObjectMeta *meta, const char *name)
{
    for (size_t i = 0; i < meta->n_finalizers; i++)
        if (strcmp (meta->finalizers[i], name) == 0)
            return true;
    return false;
}

static void
test_propagation (void)
{
    zube_api_error_t error;
    const char *names[] = {"orphan-me", "fg", "bg", "old-style", "bad"};
    for (size_t i = 0; i < 5; i++) {
        Zube__ConfigMap *map = s_configmap (names[i]);
        ZT_ASSERT_INT_EQ (zube_api_create (s_main.api, "configmaps", "default",
                                           &map->base, false, NULL, &error),
                          ZUBE_OK);
        S_FREE (map);
    }
    //  Orphan: the orphan finalizer and deletionTimestamp; the object stays
    Zube__ConfigMap *deleted = NULL;
    zube_api_delete_options_t orphan = {.grace_period_seconds = -1,
                                        .propagation_policy = "Orphan"};
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "configmaps", "default", "orphan-me",
                                       &orphan, (ProtobufCMessage **)&deleted, &error),
                      ZUBE_OK);
    ZT_ASSERT (deleted->metadata->deletion_timestamp != NULL);
    ZT_ASSERT (s_has_finalizer (deleted->metadata, "orphan"));
    S_FREE (deleted);
    Zube__ConfigMap *got = NULL;
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "configmaps", "default", "orphan-me",
                                    (ProtobufCMessage **)&got, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (got->metadata->n_finalizers, 1);
    ZT_ASSERT (got->metadata->deletion_timestamp != NULL);
    //  Removing the finalizer (the garbage collector's part) deletes it
    ZT_ASSERT_INT_EQ (zube_api_patch (s_main.api, "configmaps", "default", "orphan-me",
                                      "application/json-patch+json",
                                      "[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]",
                                      NULL, false, NULL, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "configmaps", "default", "orphan-me",
                                    NULL, &error),
                      ZUBE_NOT_FOUND);
    S_FREE (got);

    //  Foreground: foregroundDeletion; a second delete with Background
    //  takes it away again, and the object goes at once
    zube_api_delete_options_t foreground = {.grace_period_seconds = -1,
                                            .propagation_policy = "Foreground"};
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "configmaps", "default", "fg",
                                       &foreground, (ProtobufCMessage **)&deleted, &error),
                      ZUBE_OK);
    ZT_ASSERT (s_has_finalizer (deleted->metadata, "foregroundDeletion"));
    ZT_ASSERT (!s_has_finalizer (deleted->metadata, "orphan"));
    ZT_ASSERT (deleted->metadata->deletion_timestamp != NULL);
    S_FREE (deleted);
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "configmaps", "default", "fg", NULL,
                                    &error),
                      ZUBE_OK);
    zube_api_delete_options_t background = {.grace_period_seconds = -1,
                                            .propagation_policy = "Background"};
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "configmaps", "default", "fg",
                                       &background, NULL, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "configmaps", "default", "fg", NULL,
                                    &error),
                      ZUBE_NOT_FOUND);
    //  Background on an object without finalizers: gone at once
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "configmaps", "default", "bg",
                                       &background, NULL, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "configmaps", "default", "bg", NULL,
                                    &error),
                      ZUBE_NOT_FOUND);
    //  orphanDependents: true is Orphan; with a policy too, BadRequest
    Zube__DeleteRequest request = ZUBE__DELETE_REQUEST__INIT;
    request.resource = "configmaps";
    request.namespace_ = "default";
    request.name = "old-style";
    request.has_orphan_dependents = true;
    request.orphan_dependents = true;
    request.propagation_policy = "Foreground";
    ZT_ASSERT_INT_EQ (
        zube_api_call (s_main.api, "delete", &request.base, NULL, NULL, &error),
        ZUBE_BAD_REQUEST);
    ZT_ASSERT_STR_CONTAINS (error.message, "cannot be both set");
    request.propagation_policy = NULL;
    ZT_ASSERT_INT_EQ (
        zube_api_call (s_main.api, "delete", &request.base, NULL, NULL, &error), ZUBE_OK);
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "configmaps", "default", "old-style",
                                    (ProtobufCMessage **)&got, &error),
                      ZUBE_OK);
    ZT_ASSERT (s_has_finalizer (got->metadata, "orphan"));
    S_FREE (got);
    //  An unknown policy: BadRequest naming it, nothing changed
    zube_api_delete_options_t bad = {.grace_period_seconds = -1,
                                     .propagation_policy = "Sideways"};
    ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "configmaps", "default", "bad", &bad,
                                       NULL, &error),
                      ZUBE_BAD_REQUEST);
    ZT_ASSERT_STR_CONTAINS (error.message, "\"Sideways\"");
    ZT_ASSERT_INT_EQ (zube_api_get (s_main.api, "configmaps", "default", "bad",
                                    (ProtobufCMessage **)&got, &error),
                      ZUBE_OK);
    ZT_ASSERT (got->metadata->deletion_timestamp == NULL);
    S_FREE (got);
}

//  ---------------------------------------------------------------------
//  Watch: timeoutSeconds, allowWatchBookmarks, bookmarks on the bus

static int64_t
s_create_configmap (const char *name)
{
    zube_api_error_t error;
    Zube__ConfigMap *map = s_configmap (name), *created = NULL;
    zube_status_t status = zube_api_create (s_main.api, "configmaps", "default", &map->base,
                                            false, (ProtobufCMessage **)&created, &error);
    ZT_ASSERT_MSG (status == ZUBE_OK, "create %s: %s", name, error.message);
    int64_t rv = created ? s_rv (&created->base) : -1;
    S_FREE (map);
    S_FREE (created);
    return rv;
}

static void
test_watch_timeout (void)
{
    zube_api_error_t error;
    int64_t rv = s_create_configmap ("w-0");
    char since[24];
    snprintf (since, sizeof since, "%" PRId64, rv);
    //  Nothing after since: the watch ends cleanly after its timeout, an
    //  empty batch at (at least) since
    Zube__WatchEventBatch *batch = NULL;
    zube_api_watch_options_t options = {.resource_version = since, .timeout_seconds = 1};
    ZT_ASSERT_INT_EQ (zube_api_watch (s_main.api, "configmaps", &options, &batch, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (batch->n_events, 0);
    ZT_ASSERT (strtoll (batch->resource_version, NULL, 10) >= rv);
    zube__watch_event_batch__free_unpacked (batch, NULL);
    //  With bookmarks: its last word is a BOOKMARK carrying only the
    //  revision
    options.allow_bookmarks = true;
    batch = NULL;
    ZT_ASSERT_INT_EQ (zube_api_watch (s_main.api, "configmaps", &options, &batch, &error),
                      ZUBE_OK);
    ZT_ASSERT_INT_EQ (batch->n_events, 1);
    Zube__WatchEvent *mark = batch->events[0];
    ZT_ASSERT_STR_EQ (mark->type, "BOOKMARK");
    ZT_ASSERT_STR_EQ (mark->resource_version, batch->resource_version);
    Zube__ConfigMap *object =
        zube__config_map__unpack (NULL, mark->object.len, mark->object.data);
    ZT_ASSERT (object && object->metadata);
    ZT_ASSERT_STR_EQ (object->metadata->resource_version, batch->resource_version);
    ZT_ASSERT (object->metadata->name == NULL);
    S_FREE (object);
    zube__watch_event_batch__free_unpacked (batch, NULL);
    //  A negative timeout is BadRequest
    options.timeout_seconds = -1;
    Zube__WatchRequest request = ZUBE__WATCH_REQUEST__INIT;
    request.resource = "configmaps";
    request.has_timeout_seconds = true;
    request.timeout_seconds = -1;
    ZT_ASSERT_INT_EQ (zube_api_call (s_main.api, "watch", &request.base,
                                     &zube__watch_event_batch__descriptor, NULL, &error),
                      ZUBE_BAD_REQUEST);
    ZT_ASSERT_STR_CONTAINS (error.message, "timeoutSeconds");
}

typedef struct {
    bool done;
    zube_status_t status;
    Zube__WatchEventBatch *batch;
} s_waiting_t;

static void
s_watch_done (zube_api_t *api, zube_status_t status, ProtobufCMessage *reply,
              const zube_api_error_t *error, void *arg)
{
    (void)api, (void)error;
    s_waiting_t *waiting = (s_waiting_t *)arg;
    waiting->done = true;
    waiting->status = status;
    waiting->batch = (Zube__WatchEventBatch *)reply;
}

static void
test_watch_waits_for_event (void)
{
    int64_t rv = s_create_configmap ("w-1");
    char since[24];
    snprintf (since, sizeof since, "%" PRId64, rv);
    //  A watch that may wait 30 s, with a label selector the next write
    //  does not match and the one after does
    zube_api_set_timeout (s_main.api, 60000);
    Zube__WatchRequest request = ZUBE__WATCH_REQUEST__INIT;
    request.resource = "configmaps";
    request.namespace_ = "default";
    request.resource_version = since;
    request.label_selector = "watched=yes";
    request.has_timeout_seconds = true;
    request.timeout_seconds = 30;
    s_waiting_t waiting = {0};
    ZT_ASSERT (zube_api_call_async (s_main.api, "watch", &request.base,
                                    &zube__watch_event_batch__descriptor, s_watch_done,
                                    &waiting) == 0);
    zube_bus_poll (s_main.bus, 100);
    ZT_ASSERT (!waiting.done);
    s_create_configmap ("w-2");
    Zube__ConfigMap *map = s_configmap ("w-3");
    map->metadata->n_labels = 1;
    map->metadata->labels = calloc (1, sizeof (void *));
    map->metadata->labels[0] = calloc (1, sizeof (Zube__ObjectMeta__LabelsEntry));
    zube__object_meta__labels_entry__init (map->metadata->labels[0]);
    map->metadata->labels[0]->key = strdup ("watched");
    map->metadata->labels[0]->value = strdup ("yes");
    zube_api_error_t error;
    ZT_ASSERT_INT_EQ (zube_api_create (s_main.api, "configmaps", "default", &map->base,
                                       false, NULL, &error),
                      ZUBE_OK);
    S_FREE (map);
    int64_t deadline = zt_now_ms () + 40000;
    while (!waiting.done && zt_now_ms () < deadline)
        zube_bus_poll (s_main.bus, 50);
    zube_api_set_timeout (s_main.api, 10000);
    ZT_ASSERT (waiting.done);
    ZT_ASSERT_INT_EQ (waiting.status, ZUBE_OK);
    ZT_ASSERT (waiting.batch != NULL);
    if (!waiting.batch)
        return;
    ZT_ASSERT_INT_EQ (waiting.batch->n_events, 1);
    ZT_ASSERT_STR_EQ (waiting.batch->events[0]->type, "ADDED");
    ZT_ASSERT_STR_EQ (waiting.batch->events[0]->name, "w-3");
    zube__watch_event_batch__free_unpacked (waiting.batch, NULL);
}

typedef struct {
    int64_t last_event;
    int64_t bookmark;
    int64_t bookmark_prev;
    int64_t bookmark_object_rv;
} s_marks_t;

static void
s_on_mark (zube_bus_t *bus, const char *topic, const uint8_t *payload, size_t size,
           void *arg)
{
    (void)bus;
    s_marks_t *marks = (s_marks_t *)arg;
    if (strcmp (topic, "api/configmaps") != 0)
        return;
    Zube__WatchEvent *event = zube__watch_event__unpack (NULL, size, payload);
    if (!event)
        return;
    int64_t rv = strtoll (event->resource_version, NULL, 10);
    if (strcmp (event->type, "BOOKMARK") != 0)
        marks->last_event = rv;
    else if (!marks->bookmark && marks->last_event) {
        marks->bookmark = rv;
        marks->bookmark_prev = strtoll (event->prev_resource_version, NULL, 10);
        Zube__ConfigMap *object =
            zube__config_map__unpack (NULL, event->object.len, event->object.data);
        marks->bookmark_object_rv = object && object->metadata
                                        ? strtoll (object->metadata->resource_version,
                                                   NULL, 10)
                                        : -1;
        S_FREE (object);
    }
    zube__watch_event__free_unpacked (event, NULL);
}

static void
test_bookmarks_on_the_bus (void)
{
    s_marks_t marks = {0};
    ZT_ASSERT (zube_bus_subscribe (s_main.bus, "api/configmaps", s_on_mark, &marks) == 0);
    zube_bus_poll (s_main.bus, 500);
    int64_t rv = s_create_configmap ("w-4");
    //  Another kind's write moves the revision past the topic's last event
    ProtobufCMessage *secret = s_decode ("apiVersion: v1\nkind: Secret\nmetadata:\n"
                                         "  name: w-5\n",
                                         &zube__secret__descriptor);
    zube_api_error_t error;
    ZT_ASSERT_INT_EQ (zube_api_create (s_main.api, "secrets", "default", secret, false,
                                       NULL, &error),
                      ZUBE_OK);
    S_FREE (secret);
    int64_t deadline = zt_now_ms () + 15000;
    while (!marks.bookmark && zt_now_ms () < deadline)
        zube_bus_poll (s_main.bus, 50);
    zube_bus_unsubscribe (s_main.bus, "api/configmaps");
    ZT_ASSERT_MSG (marks.bookmark > 0, "no BOOKMARK on api/configmaps");
    ZT_ASSERT_INT_EQ (marks.last_event, rv);
    //  prev is the topic's last event, so no gap is reported; the
    //  bookmark moves past it
    ZT_ASSERT_INT_EQ (marks.bookmark_prev, rv);
    ZT_ASSERT (marks.bookmark > rv);
    ZT_ASSERT_INT_EQ (marks.bookmark_object_rv, marks.bookmark);
}

//  A long `watch since` answer comes in pages under the bus's message
//  limit: four 900 KiB objects (a ConfigMap holds at most 1 MiB) pass
//  the 3 MiB a reply may hold, so the first reply stops short and says
//  how far it got
static void
test_watch_pages (void)
{
    zube_api_error_t error;
    int64_t start = s_create_configmap ("page-0");
    int64_t rvs[4];
    size_t big = 900 * 1024;
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf (name, sizeof name, "page-%d", i + 1);
        Zube__ConfigMap *map = s_configmap (name), *created = NULL;
        map->n_data = 1;
        map->data = calloc (1, sizeof (void *));
        map->data[0] = calloc (1, sizeof (Zube__ConfigMap__DataEntry));
        zube__config_map__data_entry__init (map->data[0]);
        map->data[0]->key = strdup ("big");
        map->data[0]->value = malloc (big + 1);
        memset (map->data[0]->value, 'a' + i, big);
        map->data[0]->value[big] = 0;
        ZT_ASSERT_INT_EQ (zube_api_create (s_main.api, "configmaps", "default", &map->base,
                                           false, (ProtobufCMessage **)&created, &error),
                          ZUBE_OK);
        rvs[i] = created ? s_rv (&created->base) : -1;
        S_FREE (created);
        S_FREE (map);
    }
    char since[24];
    snprintf (since, sizeof since, "%" PRId64, start);
    size_t seen = 0;
    int replies = 0;
    while (seen < 4 && replies < 10) {
        Zube__WatchEventBatch *batch = NULL;
        zube_api_watch_options_t options = {.namespace = "default",
                                            .resource_version = since};
        ZT_ASSERT_INT_EQ (zube_api_watch (s_main.api, "configmaps", &options, &batch, &error),
                          ZUBE_OK);
        if (!batch)
            return;
        replies++;
        ZT_ASSERT (batch->n_events >= 1 && batch->n_events <= 3);
        for (size_t i = 0; i < batch->n_events && seen < 4; i++, seen++)
            ZT_ASSERT_INT_EQ (strtoll (batch->events[i]->resource_version, NULL, 10),
                              rvs[seen]);
        snprintf (since, sizeof since, "%s", batch->resource_version);
        zube__watch_event_batch__free_unpacked (batch, NULL);
    }
    ZT_ASSERT_INT_EQ (seen, 4);
    ZT_ASSERT_INT_EQ (replies, 2);
    for (int i = 1; i <= 4; i++) {
        char name[16];
        snprintf (name, sizeof name, "page-%d", i);
        ZT_ASSERT_INT_EQ (zube_api_delete (s_main.api, "configmaps", "default", name, NULL,
                                           NULL, &error),
                          ZUBE_OK);
    }
}

//  ---------------------------------------------------------------------

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    setenv ("ZSYS_LOGSYSTEM", "false", 1);
    bool up = zt_cluster_start (
        &s_main, &(zt_cluster_options_t){.tag = "verbs",
                                         .apiserver_args = s_args,
                                         .broker_log = "log",
                                         .apiserver_log = "log",
                                         .ready_timeout_ms = 15000});
    if (!up) {
        printf ("# the apiserver did not start: %s\n", s_main.why);
        ZT_FAIL ("no cluster");
        zt_cluster_stop (&s_main, true);
        return zt_done ();
    }
    ZT_RUN (test_scale);
    ZT_RUN (test_scale_authorization);
    ZT_RUN (test_json_patch);
    ZT_RUN (test_strategic_patch);
    ZT_RUN (test_propagation);
    ZT_RUN (test_watch_timeout);
    ZT_RUN (test_watch_waits_for_event);
    ZT_RUN (test_bookmarks_on_the_bus);
    ZT_RUN (test_watch_pages);
    zt_cluster_stop (&s_main, zt_failed_count > 0);
    return zt_done ();
}
