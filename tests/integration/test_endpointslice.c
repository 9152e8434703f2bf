/*  test_endpointslice - the endpointslice controller against a real broker,
    apiserver and a zubelet hosting hollow nodes (sim runtime, readiness
    from its fail-probe annotation). A Service with a named and a numbered
    targetPort gets EndpointSlices (at most 2 endpoints each here, by
    maxEndpointsPerSlice) of its pods: addresses, nodeName, zone,
    targetRef, resolved ports, labels, owner; the ready conditions follow
    the pods' readiness both ways; a deleted pod leaves; a pod whose
    labels stop matching leaves; the Service's deletion deletes them. */
#include "../zt_workloads.h"
#include "discovery.pb-c.h"

static zt_workloads_t s_env;

static const char *s_manager_flags[] = {"--controllers", "endpointslice",
                                        "--controller-arg",
                                        "endpointslice.maxEndpointsPerSlice=2", NULL};

static void
s_create_pod (const char *name, const char *node, const char *fail_probe)
{
    char yaml[1200];
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: Pod\n"
              "metadata:\n  name: %s\n  labels: {app: web}\n"
              "  annotations: {sim.zube.io/fail-probe: \"%s\"}\n"
              "spec:\n  nodeName: %s\n  terminationGracePeriodSeconds: 0\n"
              "  containers:\n  - name: app\n    image: nginx\n"
              "    ports: [{name: http, containerPort: 8080}]\n"
              "    readinessProbe: {exec: {command: [ok]}, periodSeconds: 1}\n",
              name, fail_probe, node);
    zt_cluster_create_yaml (&s_env.cluster, "pods", "default", &zube__pod__descriptor,
                            yaml, NULL);
}

//  The endpoints of the Service's slices, as "pod:ready:serving" sorted,
//  into buf; the slice count, -1 when a slice is wrong.
static int
s_endpoints (const char *service, char *buf, size_t size, char *why, size_t why_size)
{
    char selector[200];
    snprintf (selector, sizeof selector, "kubernetes.io/service-name=%s", service);
    zube_api_list_t *slices = NULL;
    buf[0] = 0;
    why[0] = 0;
    if (zube_api_list (s_env.cluster.api, "endpointslices",
                       &(zube_api_list_options_t){.namespace = "default",
                                                  .label_selector = selector},
                       &slices, NULL) != ZUBE_OK)
        return -1;
    Zube__Service *svc =
        (Zube__Service *)zt_ctrl_get (&s_env.cluster, "services", "default", service);
    char entries[16][128];
    int count = 0, result = (int)slices->count;
    for (size_t s = 0; s < slices->count; s++) {
        Zube__EndpointSlice *slice = (Zube__EndpointSlice *)slices->items[s];
        const Zube__ObjectMeta *meta = slice->metadata;
        bool managed = false;
        for (size_t l = 0; l < meta->n_labels; l++)
            managed |=
                !strcmp (meta->labels[l]->key,
                         "endpointslice.kubernetes.io/managed-by") &&
                !strcmp (meta->labels[l]->value, "endpointslice-controller.k8s.io");
        if (!managed || !svc || meta->n_owner_references != 1 ||
            strcmp (meta->owner_references[0]->uid, svc->metadata->uid) ||
            strcmp (meta->owner_references[0]->kind, "Service")) {
            snprintf (why, why_size, "%s: labels or owner wrong", meta->name);
            result = -1;
        }
        if (slice->n_endpoints > 2 || strcmp (slice->address_type, "IPv4")) {
            snprintf (why, why_size, "%s: %zu endpoints", meta->name, slice->n_endpoints);
            result = -1;
        }
        //  Ports: http -> 8080 (named), raw -> 9000
        bool ports =
            slice->n_ports == 2 && !strcmp (slice->ports[0]->name, "http") &&
            slice->ports[0]->port == 8080 && !strcmp (slice->ports[1]->name, "raw") &&
            slice->ports[1]->port == 9000 && !strcmp (slice->ports[0]->protocol, "TCP");
        if (slice->n_endpoints && !ports) {
            snprintf (why, why_size, "%s: ports wrong", meta->name);
            result = -1;
        }
        for (size_t e = 0; e < slice->n_endpoints && count < 16; e++) {
            Zube__Endpoint *endpoint = slice->endpoints[e];
            Zube__Pod *pod = (Zube__Pod *)zt_ctrl_get (&s_env.cluster, "pods", "default",
                                                       endpoint->target_ref->name);
            bool right = pod && endpoint->n_addresses == 1 && pod->status->pod_ip &&
                         !strcmp (endpoint->addresses[0], pod->status->pod_ip) &&
                         !strcmp (endpoint->node_name, pod->spec->node_name) &&
                         !strcmp (endpoint->target_ref->uid, pod->metadata->uid) &&
                         !strcmp (endpoint->target_ref->kind, "Pod") &&
                         (strcmp (endpoint->node_name, "sim-0001") ||
                          (endpoint->zone && !strcmp (endpoint->zone, "zone-a")));
            if (!right) {
                snprintf (why, why_size, "endpoint of %s wrong",
                          endpoint->target_ref->name);
                result = -1;
            }
            if (pod)
                protobuf_c_message_free_unpacked (&pod->base, NULL);
            snprintf (entries[count++], sizeof entries[0], "%s:%d:%d",
                      endpoint->target_ref->name, endpoint->conditions->ready,
                      endpoint->conditions->serving);
        }
    }
    qsort (entries, (size_t)count, sizeof entries[0],
           (int (*) (const void *, const void *))strcmp);
    size_t length = 0;
    for (int i = 0; i < count; i++)
        length += (size_t)snprintf (buf + length, size - length, "%s%s", i ? " " : "",
                                    entries[i]);
    if (svc)
        protobuf_c_message_free_unpacked (&svc->base, NULL);
    zube_api_list_destroy (&slices);
    return result;
}

//  Waits until the endpoints read want, with slices slices.
static void
s_wait_endpoints (const char *service, const char *want, int slices)
{
    char got[1024] = "", why[300] = "";
    int count = -1;
    int64_t until = zt_now_ms () + 30000;
    do {
        count = s_endpoints (service, got, sizeof got, why, sizeof why);
        if (count == slices && !strcmp (got, want))
            return;
        zube_bus_poll (s_env.cluster.bus, 100);
    } while (zt_now_ms () < until);
    ZT_FAIL ("endpoints \"%s\" in %d slices (%s), expected \"%s\" in %d", got, count, why,
             want, slices);
}

static void
test_slices_follow_pods (void)
{
    //  The zone of sim-0001
    ZT_ASSERT_INT_EQ (
        zube_api_patch (s_env.cluster.api, "nodes", NULL, "sim-0001", NULL,
                        "{\"metadata\":{\"labels\":{\"topology.kubernetes.io/zone\":"
                        "\"zone-a\"}}}",
                        NULL, false, NULL, NULL),
        ZUBE_OK);
    zt_cluster_create_yaml (&s_env.cluster, "services", "default",
                            &zube__service__descriptor,
                            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                            "spec:\n  selector: {app: web}\n"
                            "  ports:\n  - {name: http, port: 80, targetPort: http}\n"
                            "  - {name: raw, port: 81, targetPort: 9000}\n",
                            NULL);
    //  No pods yet: one empty slice
    s_wait_endpoints ("web", "", 1);
    //  a: ready; b: not ready for 3 s; c: ready, not ready after 4 s
    s_create_pod ("a", "sim-0001", "readiness:never");
    s_create_pod ("b", "sim-0002", "readiness:until=3s");
    s_create_pod ("c", "sim-0003", "readiness:after=4s");
    //  Three endpoints in two slices; readiness changes both ways
    s_wait_endpoints ("web", "a:1:1 b:1:1 c:0:0", 2);
    ZT_ASSERT_INT_EQ (zube_api_delete (s_env.cluster.api, "pods", "default", "a",
                                       &(zube_api_delete_options_t){0}, NULL, NULL),
                      ZUBE_OK);
    s_wait_endpoints ("web", "b:1:1 c:0:0", 1);
    //  A pod whose labels stop matching leaves
    ZT_ASSERT_INT_EQ (zube_api_patch (s_env.cluster.api, "pods", "default", "b", NULL,
                                      "{\"metadata\":{\"labels\":{\"app\":\"other\"}}}",
                                      NULL, false, NULL, NULL),
                      ZUBE_OK);
    s_wait_endpoints ("web", "c:0:0", 1);
}

static void
test_service_deleted (void)
{
    ZT_ASSERT_INT_EQ (zube_api_delete (s_env.cluster.api, "services", "default", "web",
                                       NULL, NULL, NULL),
                      ZUBE_OK);
    char got[1024], why[300];
    int64_t until = zt_now_ms () + 20000;
    int count;
    while ((count = s_endpoints ("web", got, sizeof got, why, sizeof why)) != 0 &&
           zt_now_ms () < until)
        zube_bus_poll (s_env.cluster.bus, 100);
    ZT_ASSERT_INT_EQ (count, 0);
}

static void
test_no_selector (void)
{
    //  A Service without selector gets no slices from the controller
    zt_cluster_create_yaml (&s_env.cluster, "services", "default",
                            &zube__service__descriptor,
                            "apiVersion: v1\nkind: Service\nmetadata: {name: manual}\n"
                            "spec:\n  ports: [{port: 80}]\n",
                            NULL);
    zt_cluster_create_yaml (&s_env.cluster, "services", "default",
                            &zube__service__descriptor,
                            "apiVersion: v1\nkind: Service\nmetadata: {name: marker}\n"
                            "spec:\n  selector: {app: none}\n  ports: [{port: 80}]\n",
                            NULL);
    //  The later Service's slice shows the controller got past the first
    char got[1024], why[300];
    int64_t until = zt_now_ms () + 20000;
    while (s_endpoints ("marker", got, sizeof got, why, sizeof why) != 1 &&
           zt_now_ms () < until)
        zube_bus_poll (s_env.cluster.bus, 100);
    ZT_ASSERT_INT_EQ (s_endpoints ("marker", got, sizeof got, why, sizeof why), 1);
    ZT_ASSERT_INT_EQ (s_endpoints ("manual", got, sizeof got, why, sizeof why), 0);
}

int
main (void)
{
    if (zt_workloads_start (&s_env, "endpointslice", 3, s_manager_flags)) {
        ZT_RUN (test_slices_follow_pods);
        ZT_RUN (test_service_deleted);
        ZT_RUN (test_no_selector);
    }
    return zt_workloads_finish (&s_env);
}
