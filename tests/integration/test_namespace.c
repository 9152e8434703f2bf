/*  test_namespace - the namespace controller against a real broker,
    apiserver and a zubelet of hollow nodes: deleting a namespace that
    holds objects of many kinds (a running pod among them) turns it
    Terminating, removes every object in it, then the namespace itself;
    an object with a finalizer of its own keeps the namespace (condition
    NamespaceFinalizersRemaining) until the finalizer goes; a deleted
    system namespace is made again. */
#include "../zt_workloads.h"
#include "batch.pb-c.h"
#include "coordination.pb-c.h"

static zt_workloads_t s_env;

static const char *s_manager_flags[] = {"--controllers", "namespace", NULL};

static void
s_create (const char *resource, const ProtobufCMessageDescriptor *descriptor,
          const char *yaml)
{
    zt_cluster_create_yaml (&s_env.cluster, resource, "doomed", descriptor, yaml, NULL);
}

static size_t
s_count (const char *resource, const char *namespace_)
{
    zube_api_list_t *list = NULL;
    zube_api_list (s_env.cluster.api, resource,
                   &(zube_api_list_options_t){.namespace = namespace_}, &list, NULL);
    size_t count = list ? list->count : 0;
    zube_api_list_destroy (&list);
    return count;
}

static const char *s_kinds[] = {"pods",     "configmaps",      "secrets",
                                "services", "serviceaccounts", "replicasets",
                                "jobs",     "leases",          NULL};

static void
s_fill (void)
{
    zt_cluster_create_yaml (
        &s_env.cluster, "namespaces", NULL, &zube__namespace__descriptor,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: doomed}\n", NULL);
    s_create ("pods", &zube__pod__descriptor,
              "apiVersion: v1\nkind: Pod\nmetadata: {name: runner}\n"
              "spec: {nodeName: sim-0001, containers: [{name: c, image: busybox}]}\n");
    s_create ("configmaps", &zube__config_map__descriptor,
              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n");
    s_create ("secrets", &zube__secret__descriptor,
              "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n");
    s_create ("services", &zube__service__descriptor,
              "apiVersion: v1\nkind: Service\nmetadata: {name: svc}\n"
              "spec: {selector: {app: x}, ports: [{port: 80}]}\n");
    s_create ("serviceaccounts", &zube__service_account__descriptor,
              "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot}\n");
    s_create ("replicasets", &zube__replica_set__descriptor,
              "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: rs}\n"
              "spec:\n  replicas: 0\n  selector: {matchLabels: {app: rs}}\n"
              "  template:\n    metadata: {labels: {app: rs}}\n"
              "    spec: {containers: [{name: c, image: busybox}]}\n");
    s_create (
        "jobs", &zube__job__descriptor,
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n"
        "spec:\n  suspend: true\n  template:\n"
        "    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}\n");
    s_create ("leases", &zube__lease__descriptor,
              "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l}\n"
              "spec: {holderIdentity: me}\n");
    //  The pod runs
    int64_t until = zt_now_ms () + 20000;
    bool running = false;
    while (!running && zt_now_ms () < until) {
        Zube__Pod *pod =
            (Zube__Pod *)zt_ctrl_get (&s_env.cluster, "pods", "doomed", "runner");
        running = pod && pod->status && pod->status->phase &&
                  !strcmp (pod->status->phase, "Running");
        if (pod)
            protobuf_c_message_free_unpacked (&pod->base, NULL);
        zube_bus_poll (s_env.cluster.bus, 100);
    }
    ZT_ASSERT_MSG (running, "the pod in the namespace does not run");
}

static Zube__Namespace *
s_get_ns (const char *name)
{
    return (Zube__Namespace *)zt_ctrl_get (&s_env.cluster, "namespaces", NULL, name);
}

static void
test_delete_namespace (void)
{
    s_fill ();
    for (int i = 0; s_kinds[i]; i++)
        ZT_ASSERT_INT_EQ (s_count (s_kinds[i], "doomed"), 1);
    ZT_ASSERT_INT_EQ (zube_api_delete (s_env.cluster.api, "namespaces", NULL, "doomed",
                                       NULL, NULL, NULL),
                      ZUBE_OK);
    Zube__Namespace *ns = s_get_ns ("doomed");
    //  Terminating while its content goes (or already gone)
    ZT_ASSERT (!ns || (ns->status && !strcmp (ns->status->phase, "Terminating")));
    if (ns)
        protobuf_c_message_free_unpacked (&ns->base, NULL);
    ZT_ASSERT_MSG (
        zt_ctrl_wait_exists (&s_env.cluster, "namespaces", NULL, "doomed", false, 40000),
        "the namespace was not deleted");
    for (int i = 0; s_kinds[i]; i++)
        ZT_ASSERT_MSG (s_count (s_kinds[i], "doomed") == 0, "%s left in the namespace",
                       s_kinds[i]);
    //  Other namespaces keep theirs
    ZT_ASSERT (
        zt_ctrl_wait_exists (&s_env.cluster, "namespaces", NULL, "default", true, 1));
}

static void
test_finalizer_holds_namespace (void)
{
    zt_cluster_create_yaml (
        &s_env.cluster, "namespaces", NULL, &zube__namespace__descriptor,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: held}\n", NULL);
    zt_cluster_create_yaml (&s_env.cluster, "configmaps", "held",
                            &zube__config_map__descriptor,
                            "apiVersion: v1\nkind: ConfigMap\n"
                            "metadata: {name: kept, finalizers: [example.com/hold]}\n",
                            NULL);
    ZT_ASSERT_INT_EQ (
        zube_api_delete (s_env.cluster.api, "namespaces", NULL, "held", NULL, NULL, NULL),
        ZUBE_OK);
    //  The condition names the finalizer
    bool reported = false;
    int64_t until = zt_now_ms () + 20000;
    while (!reported && zt_now_ms () < until) {
        Zube__Namespace *ns = s_get_ns ("held");
        for (size_t i = 0; ns && ns->status && i < ns->status->n_conditions; i++) {
            Zube__NamespaceCondition *condition = ns->status->conditions[i];
            reported |= !strcmp (condition->type, "NamespaceFinalizersRemaining") &&
                        !strcmp (condition->status, "True") &&
                        strstr (condition->message, "example.com/hold");
        }
        if (ns)
            protobuf_c_message_free_unpacked (&ns->base, NULL);
        zube_bus_poll (s_env.cluster.bus, 100);
    }
    ZT_ASSERT_MSG (reported, "no NamespaceFinalizersRemaining condition");
    ZT_ASSERT (zt_ctrl_wait_exists (&s_env.cluster, "namespaces", NULL, "held", true, 1));
    ZT_ASSERT_INT_EQ (zube_api_patch (s_env.cluster.api, "configmaps", "held", "kept",
                                      NULL, "{\"metadata\":{\"finalizers\":null}}", NULL,
                                      false, NULL, NULL),
                      ZUBE_OK);
    ZT_ASSERT_MSG (
        zt_ctrl_wait_exists (&s_env.cluster, "namespaces", NULL, "held", false, 30000),
        "the namespace stayed after the finalizer went");
}

static void
test_system_namespace_recreated (void)
{
    Zube__Namespace *before = s_get_ns ("kube-public");
    ZT_ASSERT (before);
    char uid[64];
    snprintf (uid, sizeof uid, "%s", before->metadata->uid);
    protobuf_c_message_free_unpacked (&before->base, NULL);
    ZT_ASSERT_INT_EQ (zube_api_delete (s_env.cluster.api, "namespaces", NULL,
                                       "kube-public", NULL, NULL, NULL),
                      ZUBE_OK);
    bool again = false;
    int64_t until = zt_now_ms () + 30000;
    while (!again && zt_now_ms () < until) {
        Zube__Namespace *ns = s_get_ns ("kube-public");
        again = ns && strcmp (ns->metadata->uid, uid) != 0 &&
                !ns->metadata->deletion_timestamp;
        if (ns)
            protobuf_c_message_free_unpacked (&ns->base, NULL);
        zube_bus_poll (s_env.cluster.bus, 100);
    }
    ZT_ASSERT_MSG (again, "kube-public was not made again");
}

int
main (void)
{
    if (zt_workloads_start (&s_env, "namespace", 1, s_manager_flags)) {
        ZT_RUN (test_delete_namespace);
        ZT_RUN (test_finalizer_holds_namespace);
        ZT_RUN (test_system_namespace_recreated);
    }
    return zt_workloads_finish (&s_env);
}
