/*  zube_selector - Kubernetes label and field selectors.

    Label selectors in Kubernetes' string syntax ("app=web,tier!=db",
    "env in (prod,qa)", "!canary", "gpu", "app==web", "notin") and in
    LabelSelector form (matchLabels + matchExpressions with In, NotIn,
    Exists, DoesNotExist), and field selectors ("metadata.name=x",
    "spec.nodeName=", "status.phase!=Running") over the fields Kubernetes
    supports for every kind (metadata.name, metadata.namespace) and per
    kind (pods: spec.nodeName, status.phase, spec.schedulerName,
    status.podIP, spec.restartPolicy, spec.serviceAccountName). The
    apiserver filters lists and watches with them, the informer and
    zubectl reuse them, and the controllers match pods to their owners.

        zube_selector_t *sel = NULL;
        char error[256];
        if (zube_selector_parse ("app=web,env in (a,b)", &sel, error, sizeof error))
            ... error: "unable to parse requirement: ..." as Kubernetes says
        bool yes = zube_selector_matches_object (sel, pod);
        zube_selector_destroy (&sel);

    An empty selector matches everything. Parsed selectors are immutable
    and may be shared between threads. */
#ifndef ZUBE_SELECTOR_H_INCLUDED
#define ZUBE_SELECTOR_H_INCLUDED

#include "meta.pb-c.h"
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zube_selector_t zube_selector_t;
typedef struct _zube_field_selector_t zube_field_selector_t;

//  A label key=value, as the matcher sees labels (map entries).
typedef struct {
    const char *key;
    const char *value;
} zube_label_t;

//  Parses a label selector string (NULL or "" is the empty selector).
//  Returns 0, or -1 with error naming what is wrong.
int zube_selector_parse (const char *text, zube_selector_t **self_p, char *error,
                         size_t error_size);
//  The same from a LabelSelector message (NULL: the empty selector,
//  which matches everything; Kubernetes controllers treat a nil selector
//  as matching nothing: check for NULL yourself where that matters).
int zube_selector_from_message (const Zube__LabelSelector *message,
                                zube_selector_t **self_p, char *error, size_t error_size);
void zube_selector_destroy (zube_selector_t **self_p);
bool zube_selector_empty (const zube_selector_t *self);
bool zube_selector_matches (const zube_selector_t *self, const zube_label_t *labels,
                            size_t count);
//  The labels of metadata (which may be NULL: no labels).
bool zube_selector_matches_meta (const zube_selector_t *self,
                                 const Zube__ObjectMeta *metadata);
//  The object's metadata.labels, found through its descriptor.
bool zube_selector_matches_object (const zube_selector_t *self,
                                   const ProtobufCMessage *object);
//  Canonical string form ("app=web,env in (a,b)"); malloc'd.
char *zube_selector_string (const zube_selector_t *self);

//  Checks a label key and value as Kubernetes validates them
//  (qualified name: optional DNS-1123 subdomain prefix "/", name of at
//  most 63 characters [A-Za-z0-9] with -_. inside; value of at most 63
//  characters, same alphabet, may be empty). 0, or -1 and error.
int zube_label_key_validate (const char *key, char *error, size_t error_size);
int zube_label_value_validate (const char *value, char *error, size_t error_size);
//  Object names as Kubernetes validates them: a DNS-1123 subdomain (at
//  most 253 characters, lower-case labels joined by dots) or a DNS-1123
//  label (at most 63, no dots). error gets Kubernetes' detail text
//  ("a lowercase RFC 1123 subdomain must consist of ..."). 0, or -1.
int zube_dns1123_subdomain_validate (const char *name, char *error, size_t error_size);
int zube_dns1123_label_validate (const char *name, char *error, size_t error_size);

//  Field selectors: "f1=v1,f2!=v2" with =, == and !=. The fields allowed
//  depend on the kind (resource is the plural, "pods"); an unknown field
//  is an error as Kubernetes gives it:
//  `field label not supported: spec.foo`.
int zube_field_selector_parse (const char *text, const char *resource,
                               zube_field_selector_t **self_p, char *error,
                               size_t error_size);
void zube_field_selector_destroy (zube_field_selector_t **self_p);
bool zube_field_selector_empty (const zube_field_selector_t *self);
//  Whether the object (a message of the kind parsed for) matches.
bool zube_field_selector_matches (const zube_field_selector_t *self,
                                  const ProtobufCMessage *object);
//  The value a field selector requires of field with "=" ("spec.nodeName"),
//  or NULL: lets the apiserver and informer use an index.
const char *zube_field_selector_required (const zube_field_selector_t *self,
                                          const char *field);

#ifdef __cplusplus
}
#endif
#endif
