/*  strategy - the per-kind part of the apiserver: defaults, validation,
    and what create, update and a status update may change.

    The generic registry (registry.c) calls these and nothing else that
    knows a kind, as Kubernetes' registry calls a kind's strategy:
    PrepareForCreate, PrepareForUpdate, Validate, ValidateUpdate and the
    defaulting functions. Objects are protobuf-c messages allocated with
    the system allocator (unpacked with a NULL allocator or built by the
    codec), so a function here may replace a field's value: free the old
    one with free () or protobuf_c_message_free_unpacked () and set the
    new one (and its has_ flag). */
#ifndef ZUBE_APISERVER_STRATEGY_H_INCLUDED
#define ZUBE_APISERVER_STRATEGY_H_INCLUDED

#include "zube/kinds.h"
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#define ZUBE_FIELD_ERRORS_MAX 32

//  One cause of an Invalid error, as Kubernetes' field.Error:
//  type "FieldValueInvalid", "FieldValueRequired", "FieldValueDuplicate",
//  "FieldValueNotSupported", "FieldValueForbidden", "FieldValueTooLong";
//  field the path ("spec.containers[0].image"); detail the reason text;
//  message the whole cause as Kubernetes prints it
//  (`spec.containers[0].image: Required value`,
//   `metadata.name: Invalid value: "Web": a lowercase RFC 1123 ...`).
typedef struct {
    char type[32];
    char field[256];
    char message[512];
} zube_field_error_t;

typedef struct {
    size_t count; //  may exceed ZUBE_FIELD_ERRORS_MAX: only that many kept
    zube_field_error_t errors[ZUBE_FIELD_ERRORS_MAX];
} zube_field_errors_t;

//  Adds an error (printf-style message after "<field>: ").
void zube_field_errors_add (zube_field_errors_t *errors, const char *type,
                            const char *field, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

//  Kubernetes' defaults for a new or updated object (SetDefaults_*):
//  pod restartPolicy Always, dnsPolicy ClusterFirst, schedulerName
//  default-scheduler, terminationGracePeriodSeconds 30, container
//  imagePullPolicy (Always for :latest or no tag, else IfNotPresent),
//  terminationMessagePath, protocol TCP on ports, the default
//  tolerations for not-ready/unreachable (300 s, DefaultTolerationSeconds),
//  service type ClusterIP and targetPort = port, deployment replicas 1,
//  strategy RollingUpdate 25%/25%, revisionHistoryLimit 10,
//  progressDeadlineSeconds 600, job completions/parallelism 1,
//  backoffLimit 6, completionMode NonIndexed, ..., and an empty
//  namespace (namespaced kinds) set to `default` by the caller before.
void zube_strategy_default (const zube_kind_t *kind, ProtobufCMessage *object);

//  Validation of a new object: metadata (name: DNS-1123 subdomain, or
//  label for kinds that need it such as Namespace and Service; labels and
//  annotations syntax, annotations total size <= 256 KiB; generateName),
//  and per kind its spec (containers named and with images, unique
//  names, ports in range, resources valid quantities with requests <=
//  limits, selectors matching template labels, replicas >= 0, ...).
//  Returns the number of errors added.
size_t zube_strategy_validate_create (const zube_kind_t *kind,
                                      const ProtobufCMessage *object,
                                      zube_field_errors_t *errors);

//  Validation of an update against the stored object: everything of
//  validate_create, plus immutable fields (metadata.name, namespace, uid,
//  creationTimestamp; pod spec except container images,
//  activeDeadlineSeconds, tolerations additions, ...; service clusterIP;
//  job selector and template; deployment/replicaset/daemonset selector).
size_t zube_strategy_validate_update (const zube_kind_t *kind,
                                      const ProtobufCMessage *object,
                                      const ProtobufCMessage *old,
                                      zube_field_errors_t *errors);

//  PrepareForCreate: clears status for kinds with a status subresource
//  (a pod gets phase Pending, a namespace phase Active), sets generation 1.
void zube_strategy_prepare_create (const zube_kind_t *kind, ProtobufCMessage *object);

//  PrepareForUpdate of the main resource: keeps the old status (kinds with
//  a status subresource), and bumps metadata.generation when the spec
//  (everything outside metadata and status) changed.
void zube_strategy_prepare_update (const zube_kind_t *kind, ProtobufCMessage *object,
                                   const ProtobufCMessage *old);

//  PrepareForUpdate of the status subresource: keeps everything of old
//  except status (and, as Kubernetes, nothing else).
void zube_strategy_prepare_status_update (const zube_kind_t *kind,
                                          ProtobufCMessage *object,
                                          const ProtobufCMessage *old);

//  Whether two objects differ outside metadata and status.
bool zube_strategy_spec_changed (const ProtobufCMessage *a, const ProtobufCMessage *b);

#endif
