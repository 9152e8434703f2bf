/*  test_scheduler_preempt - zube-scheduler's DefaultPreemption against a
    real zube-broker and zube-apiserver: on a full 2-node cluster a pod of
    higher priority gets the lowest-priority pods deleted (never one of its
    own priority), its status.nominatedNodeName set, and is bound there
    once they are gone. The nodes are written by the test (no zubelet); the
    victims have terminationGracePeriodSeconds 0, so their deletion is
    immediate. */
#include "../zt_cluster.h"
#include "core.pb-c.h"
#include "zube/codec.h"
#include <czmq.h>

static zt_cluster_t s_cluster;

static void
s_create (const char *resource, const char *namespace,
          const ProtobufCMessageDescriptor *d, const char *yaml,
          ProtobufCMessage **created_p)
{
    zt_cluster_create_yaml (&s_cluster, resource, namespace, d, yaml, created_p);
    if (created_p) {
        ProtobufCMessage *object = NULL;
        ZT_ASSERT (zube_codec_decode (yaml, strlen (yaml), d, &object, NULL) == 0);
        //  Status through its subresource, as a node agent writes it
        Zube__NodeStatus *wanted = ((Zube__Node *)object)->status;
        ((Zube__Node *)object)->status = ((Zube__Node *)*created_p)->status;
        ((Zube__Node *)*created_p)->status = wanted;
        zube_api_error_t error;
        zube_status_t status = zube_api_update (s_cluster.api, resource, NULL, *created_p,
                                                "status", false, NULL, &error);
        ZT_ASSERT_MSG (status == ZUBE_OK, "status: %.800s", error.message);
        protobuf_c_message_free_unpacked (*created_p, NULL);
        protobuf_c_message_free_unpacked (object, NULL);
    }
}

static void
s_node (const char *name)
{
    char yaml[512];
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: Node\nmetadata: {name: %s}\n"
              "status: {allocatable: {cpu: '2', memory: 4Gi, pods: '10'}}\n",
              name);
    ProtobufCMessage *created = NULL;
    s_create ("nodes", NULL, &zube__node__descriptor, yaml, &created);
}

static void
s_pod (const char *name, const char *cpu, int priority)
{
    char yaml[1024];
    snprintf (yaml, sizeof yaml,
              "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: default}\n"
              "spec: {priority: %d, terminationGracePeriodSeconds: 0, containers: "
              "[{name: c, image: pause, resources: {requests: {cpu: '%s'}}}]}\n",
              name, priority, cpu);
    s_create ("pods", "default", &zube__pod__descriptor, yaml, NULL);
}

static Zube__Pod *
s_get (const char *name)
{
    ProtobufCMessage *pod = NULL;
    if (zube_api_get (s_cluster.api, "pods", "default", name, &pod, NULL) != ZUBE_OK)
        return NULL;
    return (Zube__Pod *)pod;
}

//  The node the pod is bound to (static), "" when none within timeout_ms,
//  NULL when the pod is gone.
static const char *
s_wait_bound (const char *name, int timeout_ms)
{
    static char node[256];
    if (zt_cluster_wait_bound (&s_cluster, "default", name, node, sizeof node, timeout_ms) !=
        0)
        return NULL;
    return node;
}

static void
test_preempts_and_binds (void)
{
    //  sim-a: low-1 (1 cpu, priority 1) and same-1 (1 cpu, priority 100);
    //  sim-b: low-2 and low-3 (1 cpu each, priority 1, 2)
    s_pod ("low-1", "1", 1);
    const char *first = s_wait_bound ("low-1", 20000);
    ZT_ASSERT_MSG (first && *first, "low-1 was not bound");
    char node_a[64], node_b[64];
    snprintf (node_a, sizeof node_a, "%s", first);
    snprintf (node_b, sizeof node_b, "%s", streq (node_a, "sim-a") ? "sim-b" : "sim-a");
    //  The others go where there is room
    s_pod ("same-1", "1", 100);
    s_pod ("low-2", "1", 1);
    s_pod ("low-3", "1", 2);
    const char *where;
    where = s_wait_bound ("same-1", 20000);
    ZT_ASSERT (where && *where);
    where = s_wait_bound ("low-2", 20000);
    ZT_ASSERT (where && *where);
    where = s_wait_bound ("low-3", 20000);
    ZT_ASSERT (where && *where);
    //  Full now: a 2-cpu pod of priority 100 needs a node emptied of
    //  lower-priority pods; the node with same-1 cannot be (equal priority)
    char same_node[64];
    snprintf (same_node, sizeof same_node, "%s", s_wait_bound ("same-1", 1000));
    s_pod ("high", "2", 100);
    const char *bound = s_wait_bound ("high", 30000);
    ZT_ASSERT_MSG (bound && *bound, "the high-priority pod was not bound");
    ZT_ASSERT_MSG (!streq (bound, same_node), "bound next to same-1 on %s", bound);
    //  same-1 survived; the two lower-priority pods on the node are gone
    Zube__Pod *same = s_get ("same-1");
    ZT_ASSERT_MSG (same != NULL, "same-1 (equal priority) was preempted");
    if (same)
        protobuf_c_message_free_unpacked (&same->base, NULL);
    int gone = 0;
    const char *lows[] = {"low-1", "low-2", "low-3"};
    for (size_t i = 0; i < 3; i++) {
        Zube__Pod *pod = s_get (lows[i]);
        if (!pod)
            gone++;
        else
            protobuf_c_message_free_unpacked (&pod->base, NULL);
    }
    ZT_ASSERT_MSG (gone == 2, "%d low-priority pods deleted, expected 2", gone);
    Zube__Pod *high = s_get ("high");
    ZT_ASSERT (high);
    ZT_ASSERT_MSG (high->status && high->status->nominated_node_name &&
                       streq (high->status->nominated_node_name, bound),
                   "nominatedNodeName is \"%s\"",
                   high->status && high->status->nominated_node_name
                       ? high->status->nominated_node_name
                       : "");
    protobuf_c_message_free_unpacked (&high->base, NULL);
}

int
main (void)
{
    if (!zt_cluster_start (&s_cluster, &(zt_cluster_options_t){.tag = "sched-preempt"})) {
        printf ("not ok 1 - setup\n# %s\n1..1\n", s_cluster.why);
        return 1;
    }
    s_node ("sim-a");
    s_node ("sim-b");
    char log[700];
    snprintf (log, sizeof log, "%s/scheduler.log", s_cluster.dir);
    pid_t scheduler =
        zt_spawn_tied ((char *[]){(char *)zt_program ("zube-scheduler"), "--bus",
                                  s_cluster.endpoint, "--insecure", NULL},
                       log);
    ZT_RUN (test_preempts_and_binds);
    bool failed = zt_failed_count > 0;
    if (failed)
        zt_cluster_log_tail (&s_cluster, "scheduler.log", 30);
    zt_stop (scheduler, SIGTERM, 5000);
    zt_cluster_stop (&s_cluster, failed);
    return zt_done ();
}
