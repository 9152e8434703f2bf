/*  authz - who may do what: the apiserver's authorization policy.

    Every request reaches the apiserver with the identity the broker
    authenticated (its CurveZMQ certificate name, "anonymous" when the
    broker runs --insecure). The policy maps identities to roles and
    roles to rules (verbs x resources, with Kubernetes' wildcards), and a
    node role restricts writes to the identity's own nodes: its Node, its
    Lease in kube-node-lease, and the status of pods bound to it. The
    policy is a YAML file (docs/authorization.md) or the built-in default:

        admin                  anything
        anonymous              anything (only reachable with --insecure)
        scheduler              get/list/watch everything; create pods/binding;
                               update/patch pods/status; create events
        controller-manager     get/list/watch everything; write the kinds
                               its controllers own (pods, replicasets,
                               deployments, daemonsets, jobs, endpointslices,
                               serviceaccounts, namespaces, nodes, leases,
                               events; delete anything, for GC)
        node-<name>            the node <name>
        nodes-<prefix>         every node whose name starts with <prefix>
                               (a zubelet hosting simulated nodes)

    Anything else is denied, and each denial counted. */
#ifndef ZUBE_APISERVER_AUTHZ_H_INCLUDED
#define ZUBE_APISERVER_AUTHZ_H_INCLUDED

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _zube_authz_t zube_authz_t;

//  What a request asks.
typedef struct {
    const char *identity;
    //  Kubernetes' verbs: get, list, watch, create, update, patch, delete.
    const char *verb;
    //  Plural resource ("pods") and subresource ("status", "binding") or NULL.
    const char *resource;
    const char *subresource;
    //  NULL or "" for cluster-scoped resources and all-namespace lists.
    const char *namespace;
    //  The object's name, NULL for list/watch/create without a name yet.
    const char *name;
    //  For writes: the object written (new state) and the stored one (or
    //  NULL), so node rules can check spec.nodeName of a pod.
    const ProtobufCMessage *object;
    const ProtobufCMessage *old;
} zube_authz_request_t;

//  Loads the policy from path (NULL: the built-in default). NULL on a bad
//  file, with error naming the file, line and what is wrong.
zube_authz_t *zube_authz_new (const char *path, char *error, size_t error_size);
void zube_authz_destroy (zube_authz_t **self_p);

//  Whether the request is allowed. When not, reason gets Kubernetes'
//  message: `User "node-a" cannot update resource "pods/status" in API
//  group "" in the namespace "default"` (plus why, for node rules), and
//  the denial is counted.
bool zube_authz_allowed (zube_authz_t *self, const zube_authz_request_t *request,
                         char *reason, size_t reason_size);

uint64_t zube_authz_denials (zube_authz_t *self);

#endif
