/*  test_authz - the apiserver's authorization policy: the built-in
    default (admin, anonymous, scheduler, controller-manager, node-<name>,
    nodes-<prefix>), denial messages and counting, a policy file, and
    bad policy files reported with their line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../zube_test.h"
#include "authz.h"
#include "core.pb-c.h"
#include "zube/codec.h"

static zube_authz_t *s_policy;

static bool
s_allowed (const char *identity, const char *verb, const char *resource,
           const char *subresource, const char *ns, const char *name)
{
    zube_authz_request_t request = {
        .identity = identity,
        .verb = verb,
        .resource = resource,
        .subresource = subresource,
        .namespace = ns,
        .name = name,
    };
    char reason[512];
    return zube_authz_allowed (s_policy, &request, reason, sizeof reason);
}

static ProtobufCMessage *
s_pod_on (const char *node)
{
    char yaml[256];
    snprintf (yaml, sizeof yaml,
              "metadata:\n  name: p\n  namespace: default\nspec:\n"
              "  nodeName: %s\n",
              node);
    ProtobufCMessage *msg = NULL;
    zube_codec_error_t error;
    if (zube_codec_decode (yaml, strlen (yaml), &zube__pod__descriptor, &msg, &error))
        ZT_FAIL ("decode: %s", error.message);
    return msg;
}

//  Whether identity may write a pod bound to `bound` (old) / `now` (new)
static bool
s_pod_write (const char *identity, const char *verb, const char *subresource,
             const char *bound, const char *now, char *reason, size_t size)
{
    ProtobufCMessage *old = bound ? s_pod_on (bound) : NULL;
    ProtobufCMessage *object = now ? s_pod_on (now) : NULL;
    zube_authz_request_t request = {
        .identity = identity,
        .verb = verb,
        .resource = "pods",
        .subresource = subresource,
        .namespace = "default",
        .name = "p",
        .object = object,
        .old = old,
    };
    bool yes = zube_authz_allowed (s_policy, &request, reason, size);
    if (old)
        protobuf_c_message_free_unpacked (old, NULL);
    if (object)
        protobuf_c_message_free_unpacked (object, NULL);
    return yes;
}

static void
test_default_admin_and_components (void)
{
    char error[512] = "";
    s_policy = zube_authz_new (NULL, error, sizeof error);
    ZT_ASSERT_MSG (s_policy != NULL, "default policy: %s", error);
    ZT_ASSERT (s_allowed ("admin", "delete", "namespaces", NULL, NULL, "prod"));
    ZT_ASSERT (s_allowed ("anonymous", "create", "deployments", NULL, "default", NULL));
    //  scheduler
    ZT_ASSERT (s_allowed ("scheduler", "list", "pods", NULL, NULL, NULL));
    ZT_ASSERT (s_allowed ("scheduler", "watch", "nodes", NULL, NULL, NULL));
    ZT_ASSERT (s_allowed ("scheduler", "create", "pods", "binding", "default", "p"));
    ZT_ASSERT (s_allowed ("scheduler", "patch", "pods", "status", "default", "p"));
    ZT_ASSERT (s_allowed ("scheduler", "create", "events", NULL, "default", NULL));
    ZT_ASSERT (!s_allowed ("scheduler", "create", "pods", NULL, "default", "p"));
    //  preemption deletes victims, as kube-scheduler's role allows
    ZT_ASSERT (s_allowed ("scheduler", "delete", "pods", NULL, "default", "p"));
    ZT_ASSERT (!s_allowed ("scheduler", "delete", "nodes", NULL, NULL, "n1"));
    ZT_ASSERT (!s_allowed ("scheduler", "delete", "pods", "status", "default", "p"));
    ZT_ASSERT (!s_allowed ("scheduler", "update", "nodes", NULL, NULL, "n1"));
    //  controller-manager
    ZT_ASSERT (s_allowed ("controller-manager", "create", "pods", NULL, "default", NULL));
    ZT_ASSERT (
        s_allowed ("controller-manager", "update", "replicasets", "status", "d", "r"));
    ZT_ASSERT (
        s_allowed ("controller-manager", "patch", "endpointslices", NULL, "d", "e"));
    ZT_ASSERT (s_allowed ("controller-manager", "delete", "configmaps", NULL, "d", "c"));
    ZT_ASSERT (s_allowed ("controller-manager", "delete", "secrets", NULL, "d", "s"));
    ZT_ASSERT (!s_allowed ("controller-manager", "create", "secrets", NULL, "d", NULL));
    ZT_ASSERT (!s_allowed ("controller-manager", "update", "services", NULL, "d", "s"));
    //  nobody
    ZT_ASSERT (!s_allowed ("mallory", "get", "pods", NULL, "default", "p"));
    ZT_ASSERT (!s_allowed ("", "get", "pods", NULL, "default", "p"));
    zube_authz_destroy (&s_policy);
    ZT_ASSERT (s_policy == NULL);
}

static void
test_default_nodes (void)
{
    s_policy = zube_authz_new (NULL, NULL, 0);
    ZT_ASSERT (s_policy != NULL);
    char reason[512];
    //  Reads are open to nodes
    ZT_ASSERT (s_allowed ("node-a", "list", "pods", NULL, NULL, NULL));
    ZT_ASSERT (s_allowed ("node-a", "get", "configmaps", NULL, "default", "c"));
    //  Its own Node, not another's
    ZT_ASSERT (s_allowed ("node-a", "update", "nodes", "status", NULL, "a"));
    ZT_ASSERT (s_allowed ("node-a", "create", "nodes", NULL, NULL, "a"));
    ZT_ASSERT (!s_allowed ("node-a", "update", "nodes", "status", NULL, "b"));
    ZT_ASSERT (!s_allowed ("node-a", "update", "nodes", NULL, NULL, "ab"));
    //  Its own Lease, in kube-node-lease only
    ZT_ASSERT (s_allowed ("node-a", "update", "leases", NULL, "kube-node-lease", "a"));
    ZT_ASSERT (s_allowed ("node-a", "create", "leases", NULL, "kube-node-lease", "a"));
    ZT_ASSERT (!s_allowed ("node-a", "update", "leases", NULL, "kube-node-lease", "b"));
    ZT_ASSERT (!s_allowed ("node-a", "update", "leases", NULL, "default", "a"));
    //  Status of pods bound to it; deleting them
    ZT_ASSERT (
        s_pod_write ("node-a", "update", "status", "a", "a", reason, sizeof reason));
    ZT_ASSERT (
        s_pod_write ("node-a", "patch", "status", "a", NULL, reason, sizeof reason));
    ZT_ASSERT (s_pod_write ("node-a", "delete", NULL, "a", NULL, reason, sizeof reason));
    ZT_ASSERT (
        !s_pod_write ("node-a", "update", "status", "b", "b", reason, sizeof reason));
    ZT_ASSERT_STR_EQ (reason,
                      "User \"node-a\" cannot update resource \"pods/status\" in API "
                      "group \"\" in the namespace \"default\": a node may only update "
                      "the status of pods bound to it");
    //  Moving a pod to itself is no way in
    ZT_ASSERT (
        !s_pod_write ("node-a", "update", "status", "b", "a", reason, sizeof reason));
    ZT_ASSERT (
        !s_pod_write ("node-a", "update", "status", NULL, "a", reason, sizeof reason));
    ZT_ASSERT (!s_pod_write ("node-a", "update", NULL, "a", "a", reason, sizeof reason));
    ZT_ASSERT (!s_pod_write ("node-a", "create", NULL, NULL, "a", reason, sizeof reason));
    ZT_ASSERT (!s_allowed ("node-a", "delete", "deployments", NULL, "default", "d"));
    ZT_ASSERT (s_allowed ("node-a", "create", "events", NULL, "default", NULL));
    //  nodes-<prefix>: every node whose name starts with the prefix
    ZT_ASSERT (s_allowed ("nodes-sim-", "update", "nodes", "status", NULL, "sim-1"));
    ZT_ASSERT (
        s_allowed ("nodes-sim-", "update", "leases", NULL, "kube-node-lease", "sim-42"));
    ZT_ASSERT (s_pod_write ("nodes-sim-", "update", "status", "sim-7", "sim-7", reason,
                            sizeof reason));
    ZT_ASSERT (!s_allowed ("nodes-sim-", "update", "nodes", NULL, NULL, "real-1"));
    ZT_ASSERT (!s_allowed ("nodes-sim-", "update", "nodes", NULL, NULL, "sim-"));
    //  "node-" with no name is nobody
    ZT_ASSERT (!s_allowed ("node-", "update", "nodes", NULL, NULL, ""));
    zube_authz_destroy (&s_policy);
}

static void
test_denials (void)
{
    s_policy = zube_authz_new (NULL, NULL, 0);
    ZT_ASSERT_INT_EQ (zube_authz_denials (s_policy), 0);
    char reason[512];
    zube_authz_request_t request = {
        .identity = "mallory", .verb = "list", .resource = "nodes"};
    ZT_ASSERT (!zube_authz_allowed (s_policy, &request, reason, sizeof reason));
    ZT_ASSERT_STR_EQ (reason,
                      "User \"mallory\" cannot list resource \"nodes\" in API group "
                      "\"\" at the cluster scope");
    request = (zube_authz_request_t){.identity = "scheduler",
                                     .verb = "delete",
                                     .resource = "deployments",
                                     .namespace = "prod",
                                     .name = "web"};
    ZT_ASSERT (!zube_authz_allowed (s_policy, &request, reason, sizeof reason));
    ZT_ASSERT_STR_EQ (reason,
                      "User \"scheduler\" cannot delete resource \"deployments\" in API "
                      "group \"apps\" in the namespace \"prod\"");
    request.identity = "admin";
    ZT_ASSERT (zube_authz_allowed (s_policy, &request, reason, sizeof reason));
    ZT_ASSERT_STR_EQ (reason, "");
    ZT_ASSERT_INT_EQ (zube_authz_denials (s_policy), 2);
    //  No reason buffer is fine, and still counted
    request.identity = "eve";
    ZT_ASSERT (!zube_authz_allowed (s_policy, &request, NULL, 0));
    ZT_ASSERT_INT_EQ (zube_authz_denials (s_policy), 3);
    zube_authz_destroy (&s_policy);
}

//  Writes text to a temporary file; returns its path (static buffer)
static const char *
s_write_policy (const char *text)
{
    static char path[64];
    snprintf (path, sizeof path, "/tmp/zube-authz-XXXXXX");
    int fd = mkstemp (path);
    ZT_ASSERT (fd >= 0);
    size_t len = strlen (text);
    ZT_ASSERT ((size_t)write (fd, text, len) == len);
    close (fd);
    return path;
}

static void
test_policy_file (void)
{
    const char *path =
        s_write_policy ("# readers read; ops own the default namespace's deployments\n"
                        "bindings:\n"
                        "- identities: [alice, 'team-*']\n"
                        "  role: reader\n"
                        "- identities: [ops]\n"
                        "  role: deployer\n"
                        "- identities: [root]\n"
                        "  role: admin\n"
                        "- identities: ['kubelet-*']\n"
                        "  role: node\n"
                        "roles:\n"
                        "- name: reader\n"
                        "  rules:\n"
                        "  - verbs: [get, list, watch]\n"
                        "    resources: ['*']\n"
                        "- name: deployer\n"
                        "  rules:\n"
                        "  - verbs: ['*']\n"
                        "    resources: [deployments, '*/scale']\n"
                        "    namespaces: [default]\n");
    char error[512] = "";
    s_policy = zube_authz_new (path, error, sizeof error);
    unlink (path);
    ZT_ASSERT_MSG (s_policy != NULL, "policy: %s", error);
    ZT_ASSERT (s_allowed ("alice", "get", "pods", NULL, "default", "p"));
    ZT_ASSERT (s_allowed ("team-blue", "watch", "pods", "status", "default", "p"));
    ZT_ASSERT (!s_allowed ("alice", "create", "pods", NULL, "default", NULL));
    ZT_ASSERT (!s_allowed ("team-", "get", "pods", NULL, "default", "p"));
    ZT_ASSERT (s_allowed ("ops", "delete", "deployments", NULL, "default", "web"));
    ZT_ASSERT (s_allowed ("ops", "update", "replicasets", "scale", "default", "web"));
    ZT_ASSERT (!s_allowed ("ops", "update", "replicasets", NULL, "default", "web"));
    ZT_ASSERT (!s_allowed ("ops", "delete", "deployments", NULL, "prod", "web"));
    ZT_ASSERT (!s_allowed ("ops", "list", "deployments", NULL, NULL, NULL));
    ZT_ASSERT (s_allowed ("root", "delete", "nodes", NULL, NULL, "n1"));
    ZT_ASSERT (s_allowed ("kubelet-n1", "update", "nodes", "status", NULL, "n1"));
    ZT_ASSERT (!s_allowed ("kubelet-n1", "update", "nodes", "status", NULL, "n2"));
    //  The default's identities mean nothing here
    ZT_ASSERT (!s_allowed ("admin", "get", "pods", NULL, "default", "p"));
    ZT_ASSERT (!s_allowed ("node-n1", "get", "pods", NULL, "default", "p"));
    zube_authz_destroy (&s_policy);
}

static void
s_expect_bad (const char *text, const char *expected_tail)
{
    const char *path = s_write_policy (text);
    char error[512] = "";
    zube_authz_t *policy = zube_authz_new (path, error, sizeof error);
    unlink (path);
    if (policy) {
        zube_authz_destroy (&policy);
        ZT_FAIL ("policy accepted, expected: %s", expected_tail);
    }
    //  The error starts with the file's path
    ZT_ASSERT (strncmp (error, path, strlen (path)) == 0);
    ZT_ASSERT_STR_EQ (error + strlen (path), expected_tail);
}

static void
test_bad_policy_files (void)
{
    s_expect_bad (
        "roles:\n- name: r\n  rules:\n  - verbs: [get, gett]\n    resources: [pods]\n",
        ": line 4: unknown verb \"gett\" (expected get, list, watch, create, update, "
        "patch, delete or *)");
    s_expect_bad ("bindings:\n- identities: [bob]\n  role: nobody\n",
                  ": line 3: unknown role \"nobody\"");
    s_expect_bad ("roles:\n- name: r\n  rules:\n  - verbs: [get]\n",
                  ": line 4: a rule needs "
                  "resources");
    s_expect_bad ("rolez: []\n",
                  ": line 1: unknown field \"rolez\" (expected roles, bindings)");
    s_expect_bad (
        "roles:\n- name: admin\n  rules:\n  - verbs: [get]\n    resources: [pods]\n",
        ": line 2: role \"admin\" is defined twice (admin, node and nodes are built "
        "in)");
    s_expect_bad (
        "bindings:\n- identities: [node-a]\n  role: node\n",
        ": line 2: role \"node\" binds identities by prefix: \"node-a\" must end in "
        "'*' (the rest names the node)");
    s_expect_bad ("bindings:\n- identities: ['a*b']\n  role: admin\n",
                  ": line 2: identity \"a*b\": '*' may only end a prefix");
    s_expect_bad ("roles: [\n",
                  ": line 2: did not find expected node content while parsing a "
                  "flow node");
    s_expect_bad ("", ": the policy is empty");
    char error[512];
    ZT_ASSERT (zube_authz_new ("/nonexistent/policy.yaml", error, sizeof error) == NULL);
    ZT_ASSERT_STR_EQ (error,
                      "/nonexistent/policy.yaml: cannot open: No such file or directory");
}

int
main (void)
{
    ZT_RUN (test_default_admin_and_components);
    ZT_RUN (test_default_nodes);
    ZT_RUN (test_denials);
    ZT_RUN (test_policy_file);
    ZT_RUN (test_bad_policy_files);
    return zt_done ();
}
