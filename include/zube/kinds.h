/*  zube_kinds - the registry of object kinds zube stores.

    One static table names every kind the apiserver knows: its apiVersion
    and kind as Kubernetes spells them, the REST resource names kubectl
    accepts ("pods", "pod", "po", "deployments.apps"), whether it lives in
    a namespace and has a status subresource, and the protobuf-c
    descriptors of the object and of its List. The generic codec, the
    apiserver and zubectl all find kinds here, so adding a kind is one
    schema message plus one table row (docs/schemas.md).

        const zube_kind_t *kind = zube_kind_by_resource ("deploy");
        // kind->api_version "apps/v1", kind->kind "Deployment"
        ProtobufCMessage *obj = protobuf_c_message_unpack (
            kind->descriptor, NULL, len, data);

    The table is immutable; every pointer it returns lives as long as the
    program. */
#ifndef ZUBE_KINDS_H_INCLUDED
#define ZUBE_KINDS_H_INCLUDED

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    //  "v1", "apps/v1", "batch/v1", "discovery.k8s.io/v1",
    //  "coordination.k8s.io/v1", "zube.io/v1alpha1"
    const char *api_version;
    //  "" for the core group, "apps", "batch", ...
    const char *group;
    //  "v1", "v1alpha1"
    const char *version;
    //  "Pod"
    const char *kind;
    //  Plural lower-case, as in URLs and store keys: "pods"
    const char *resource;
    //  "pod"
    const char *singular;
    //  Comma separated, as kubectl knows them: "po"; "" if none.
    const char *short_names;
    bool namespaced;
    //  Has a status subresource (spec and status are written apart).
    bool has_status;
    const ProtobufCMessageDescriptor *descriptor;
    const ProtobufCMessageDescriptor *list_descriptor;
} zube_kind_t;

//  The kind with this apiVersion and kind, both as Kubernetes spells them
//  (case-sensitive): ("apps/v1", "Deployment"). A NULL api_version matches
//  the kind in any group. NULL if unknown.
const zube_kind_t *zube_kind_lookup (const char *api_version, const char *kind);

//  The kind a user means by a resource name, as kubectl resolves them,
//  case-insensitively: plural ("pods"), singular ("pod"), short name
//  ("po"), kind ("Pod"), each optionally qualified by group
//  ("deployments.apps") or version and group ("deployments.v1.apps").
//  NULL if unknown.
const zube_kind_t *zube_kind_by_resource (const char *name);

//  The kind whose object or list message this descriptor describes.
//  NULL if none.
const zube_kind_t *zube_kind_by_descriptor (const ProtobufCMessageDescriptor *descriptor);

//  Number of kinds in the table, and the kind at an index in
//  [0, zube_kinds_count ()), NULL past the end. Stable order.
size_t zube_kinds_count (void);
const zube_kind_t *zube_kind_at (size_t index);

#ifdef __cplusplus
}
#endif

#endif
