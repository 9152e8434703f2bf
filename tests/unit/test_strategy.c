/*  test_strategy - the apiserver's per-kind strategy: Kubernetes'
    defaults, validation with its field paths and messages, immutable
    fields on update, the generation bump, and the status strategy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../zube_test.h"
#include "apps.pb-c.h"
#include "batch.pb-c.h"
#include "coordination.pb-c.h"
#include "core.pb-c.h"
#include "strategy.h"
#include "zube/codec.h"
#include "zube/kinds.h"

//  ---------------------------------------------------------------------
//  Helpers

static const zube_kind_t *
s_kind (const char *kind)
{
    const zube_kind_t *k = zube_kind_lookup (NULL, kind);
    if (!k)
        ZT_FAIL ("no kind %s", kind);
    return k;
}

static ProtobufCMessage *
s_decode (const char *kind, const char *yaml)
{
    ProtobufCMessage *msg = NULL;
    zube_codec_error_t error;
    if (zube_codec_decode (yaml, strlen (yaml), s_kind (kind)->descriptor, &msg,
                           &error)) {
        char line[1024];
        ZT_FAIL ("decode: %.900s", zube_codec_error_format (&error, line, sizeof line));
    }
    return msg;
}

//  Decodes, defaults and prepares for create, as the registry does
static ProtobufCMessage *
s_new (const char *kind, const char *yaml)
{
    ProtobufCMessage *msg = s_decode (kind, yaml);
    zube_strategy_default (s_kind (kind), msg);
    zube_strategy_prepare_create (s_kind (kind), msg);
    return msg;
}

static void
s_free (ProtobufCMessage *msg)
{
    protobuf_c_message_free_unpacked (msg, NULL);
}

static const char *
s_find (const zube_field_errors_t *errors, const char *message)
{
    for (size_t i = 0; i < errors->count && i < ZUBE_FIELD_ERRORS_MAX; i++)
        if (strcmp (errors->errors[i].message, message) == 0)
            return errors->errors[i].message;
    return NULL;
}

static void
s_dump (const zube_field_errors_t *errors, char *out, size_t size)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < errors->count && i < ZUBE_FIELD_ERRORS_MAX && n < size; i++)
        n += (size_t)snprintf (out + n, size - n, " [%.200s]", errors->errors[i].message);
}

//  Validation of a new object must give exactly this error (among others)
//  with this type and field
static void
s_expect (const char *kind, const char *yaml, const char *type, const char *field,
          const char *message, int line)
{
    ProtobufCMessage *msg = s_new (kind, yaml);
    zube_field_errors_t errors = {0};
    size_t count = zube_strategy_validate_create (s_kind (kind), msg, &errors);
    s_free (msg);
    if (count != errors.count)
        ZT_FAIL ("line %d: returned %zu, errors hold %zu", line, count, errors.count);
    for (size_t i = 0; i < errors.count && i < ZUBE_FIELD_ERRORS_MAX; i++) {
        const zube_field_error_t *e = &errors.errors[i];
        if (strcmp (e->message, message) == 0) {
            if (strcmp (e->type, type) != 0 || strcmp (e->field, field) != 0)
                ZT_FAIL ("line %d: %s has type %s field %s", line, message, e->type,
                         e->field);
            return;
        }
    }
    char dump[700];
    s_dump (&errors, dump, sizeof dump);
    ZT_FAIL ("line %d: no \"%.300s\" in%.600s", line, message, dump);
}

#define S_EXPECT(kind, yaml, type, field, message)                                       \
    s_expect (kind, yaml, type, field, message, __LINE__)

static void
s_expect_valid (const char *kind, const char *yaml, int line)
{
    ProtobufCMessage *msg = s_new (kind, yaml);
    zube_field_errors_t errors = {0};
    size_t count = zube_strategy_validate_create (s_kind (kind), msg, &errors);
    s_free (msg);
    if (count) {
        char dump[700];
        s_dump (&errors, dump, sizeof dump);
        ZT_FAIL ("line %d: %zu errors:%.600s", line, count, dump);
    }
}

#define S_EXPECT_VALID(kind, yaml) s_expect_valid (kind, yaml, __LINE__)

//  An update of old (created from old_yaml) to new_yaml; the errors
static zube_field_errors_t
s_update (const char *kind, const char *old_yaml, const char *new_yaml)
{
    ProtobufCMessage *old = s_new (kind, old_yaml);
    ProtobufCMessage *msg = s_decode (kind, new_yaml);
    zube_strategy_default (s_kind (kind), msg);
    zube_strategy_prepare_update (s_kind (kind), msg, old);
    zube_field_errors_t errors = {0};
    zube_strategy_validate_update (s_kind (kind), msg, old, &errors);
    s_free (msg);
    s_free (old);
    return errors;
}

#define S_EXPECT_UPDATE(kind, old, new, message)                                         \
    do {                                                                                 \
        zube_field_errors_t s_e_ = s_update (kind, old, new);                            \
        if (!s_find (&s_e_, message)) {                                                  \
            char s_dump_[700];                                                           \
            s_dump (&s_e_, s_dump_, sizeof s_dump_);                                     \
            ZT_FAIL ("no \"%.300s\" in%.600s", message, s_dump_);                        \
        }                                                                                \
    } while (0)

#define S_EXPECT_UPDATE_OK(kind, old, new)                                               \
    do {                                                                                 \
        zube_field_errors_t s_e_ = s_update (kind, old, new);                            \
        if (s_e_.count) {                                                                \
            char s_dump_[700];                                                           \
            s_dump (&s_e_, s_dump_, sizeof s_dump_);                                     \
            ZT_FAIL ("update refused:%.600s", s_dump_);                                  \
        }                                                                                \
    } while (0)

#define POD_HEAD "metadata:\n  name: web\n  namespace: default\n"
#define POD POD_HEAD "spec:\n  containers:\n  - name: app\n    image: nginx:1.25\n"

//  ---------------------------------------------------------------------
//  Field errors

static void
test_field_errors (void)
{
    zube_field_errors_t errors = {0};
    zube_field_errors_add (&errors, "FieldValueRequired", "spec.containers[0].image",
                           "Required value");
    ZT_ASSERT_INT_EQ (errors.count, 1);
    ZT_ASSERT_STR_EQ (errors.errors[0].type, "FieldValueRequired");
    ZT_ASSERT_STR_EQ (errors.errors[0].field, "spec.containers[0].image");
    ZT_ASSERT_STR_EQ (errors.errors[0].message,
                      "spec.containers[0].image: Required value");
    for (int i = 0; i < 40; i++)
        zube_field_errors_add (&errors, "FieldValueInvalid", "x", "Invalid value: %d", i);
    ZT_ASSERT_INT_EQ (errors.count, 41);
    ZT_ASSERT_STR_EQ (errors.errors[ZUBE_FIELD_ERRORS_MAX - 1].message,
                      "x: Invalid value: 30");
}

//  ---------------------------------------------------------------------
//  Defaults

static void
test_default_pod (void)
{
    Zube__Pod *pod = (Zube__Pod *)s_new (
        "Pod",
        POD_HEAD "spec:\n  containers:\n"
                 "  - name: a\n    image: nginx\n    ports:\n    - containerPort: 80\n"
                 "    resources:\n      limits:\n        cpu: 500m\n        memory: 1Gi\n"
                 "      requests:\n        memory: 512Mi\n"
                 "    livenessProbe:\n      httpGet:\n        port: 80\n"
                 "  - name: b\n    image: nginx:1.25\n"
                 "  - name: c\n    image: nginx:latest\n"
                 "  - name: d\n    image: registry:5000/app\n"
                 "  - name: e\n    image: registry:5000/app:v1\n"
                 "  - name: f\n    image: app@sha256:abcd\n"
                 "  - name: g\n    image: app\n    imagePullPolicy: Never\n");
    Zube__PodSpec *spec = pod->spec;
    ZT_ASSERT_STR_EQ (spec->restart_policy, "Always");
    ZT_ASSERT_STR_EQ (spec->dns_policy, "ClusterFirst");
    ZT_ASSERT_STR_EQ (spec->scheduler_name, "default-scheduler");
    ZT_ASSERT (spec->has_termination_grace_period_seconds);
    ZT_ASSERT_INT_EQ (spec->termination_grace_period_seconds, 30);
    ZT_ASSERT (spec->has_enable_service_links && spec->enable_service_links);
    ZT_ASSERT (spec->security_context != NULL);
    const char *policies[] = {"Always",       "IfNotPresent", "Always", "Always",
                              "IfNotPresent", "IfNotPresent", "Never"};
    for (size_t i = 0; i < 7; i++)
        ZT_ASSERT_STR_EQ (spec->containers[i]->image_pull_policy, policies[i]);
    Zube__Container *a = spec->containers[0];
    ZT_ASSERT_STR_EQ (a->termination_message_path, "/dev/termination-log");
    ZT_ASSERT_STR_EQ (a->termination_message_policy, "File");
    ZT_ASSERT_STR_EQ (a->ports[0]->protocol, "TCP");
    //  requests default to limits only where missing
    ZT_ASSERT_INT_EQ (a->resources->n_requests, 2);
    ZT_ASSERT_STR_EQ (a->resources->requests[0]->key, "memory");
    ZT_ASSERT_INT_EQ (a->resources->requests[0]->value->milli_value,
                      512LL * 1024 * 1024 * 1000);
    ZT_ASSERT_STR_EQ (a->resources->requests[1]->key, "cpu");
    ZT_ASSERT_INT_EQ (a->resources->requests[1]->value->milli_value, 500);
    //  probes
    ZT_ASSERT_INT_EQ (a->liveness_probe->timeout_seconds, 1);
    ZT_ASSERT_INT_EQ (a->liveness_probe->period_seconds, 10);
    ZT_ASSERT_INT_EQ (a->liveness_probe->success_threshold, 1);
    ZT_ASSERT_INT_EQ (a->liveness_probe->failure_threshold, 3);
    ZT_ASSERT_STR_EQ (a->liveness_probe->http_get->path, "/");
    ZT_ASSERT_STR_EQ (a->liveness_probe->http_get->scheme, "HTTP");
    //  DefaultTolerationSeconds
    ZT_ASSERT_INT_EQ (spec->n_tolerations, 2);
    ZT_ASSERT_STR_EQ (spec->tolerations[0]->key, "node.kubernetes.io/not-ready");
    ZT_ASSERT_STR_EQ (spec->tolerations[0]->operator_, "Exists");
    ZT_ASSERT_STR_EQ (spec->tolerations[0]->effect, "NoExecute");
    ZT_ASSERT_INT_EQ (spec->tolerations[0]->toleration_seconds, 300);
    ZT_ASSERT_STR_EQ (spec->tolerations[1]->key, "node.kubernetes.io/unreachable");
    //  prepare_create: status Pending, QoS, generation 1
    ZT_ASSERT_STR_EQ (pod->status->phase, "Pending");
    ZT_ASSERT_STR_EQ (pod->status->qos_class, "Burstable");
    ZT_ASSERT (pod->metadata->has_generation);
    ZT_ASSERT_INT_EQ (pod->metadata->generation, 1);
    //  Defaulting twice changes nothing
    size_t before = protobuf_c_message_get_packed_size (&pod->base);
    zube_strategy_default (s_kind ("Pod"), &pod->base);
    ZT_ASSERT_INT_EQ (protobuf_c_message_get_packed_size (&pod->base), before);
    s_free (&pod->base);

    //  A pod's own toleration for not-ready is kept; QoS classes
    pod = (Zube__Pod *)s_new (
        "Pod", POD
        "    resources:\n      limits:\n        cpu: 1\n        memory: 1Gi\n"
        "  tolerations:\n  - key: node.kubernetes.io/not-ready\n    operator: Exists\n"
        "    effect: NoExecute\n    tolerationSeconds: 5\n"
        "  hostNetwork: true\n");
    ZT_ASSERT_INT_EQ (pod->spec->n_tolerations, 2);
    ZT_ASSERT_INT_EQ (pod->spec->tolerations[0]->toleration_seconds, 5);
    ZT_ASSERT_STR_EQ (pod->status->qos_class, "Guaranteed");
    s_free (&pod->base);
    pod = (Zube__Pod *)s_new ("Pod", POD "    ports:\n    - containerPort: 8080\n"
                                         "  hostNetwork: true\n");
    ZT_ASSERT_STR_EQ (pod->status->qos_class, "BestEffort");
    ZT_ASSERT_INT_EQ (pod->spec->containers[0]->ports[0]->host_port, 8080);
    s_free (&pod->base);
    //  A status sent with a create is dropped
    pod =
        (Zube__Pod *)s_new ("Pod", POD "status:\n  phase: Running\n  podIP: 10.0.0.1\n");
    ZT_ASSERT_STR_EQ (pod->status->phase, "Pending");
    ZT_ASSERT (pod->status->pod_ip == NULL);
    s_free (&pod->base);
}

static void
test_default_workloads (void)
{
    Zube__Deployment *d = (Zube__Deployment *)s_new (
        "Deployment", "metadata:\n  name: web\n  namespace: default\nspec:\n  selector:\n"
                      "    matchLabels:\n      app: web\n  template:\n    metadata:\n"
                      "      labels:\n        app: web\n    spec:\n      containers:\n"
                      "      - name: app\n        image: nginx\n");
    ZT_ASSERT (d->spec->has_replicas);
    ZT_ASSERT_INT_EQ (d->spec->replicas, 1);
    ZT_ASSERT_STR_EQ (d->spec->strategy->type, "RollingUpdate");
    ZT_ASSERT_STR_EQ (d->spec->strategy->rolling_update->max_unavailable->str_val, "25%");
    ZT_ASSERT_STR_EQ (d->spec->strategy->rolling_update->max_surge->str_val, "25%");
    ZT_ASSERT_INT_EQ (d->spec->revision_history_limit, 10);
    ZT_ASSERT_INT_EQ (d->spec->progress_deadline_seconds, 600);
    ZT_ASSERT_STR_EQ (d->spec->template_->spec->restart_policy, "Always");
    ZT_ASSERT_STR_EQ (d->spec->template_->spec->containers[0]->image_pull_policy,
                      "Always");
    //  Templates get no default tolerations (admission runs on pods)
    ZT_ASSERT_INT_EQ (d->spec->template_->spec->n_tolerations, 0);
    ZT_ASSERT (d->status == NULL);
    s_free (&d->base);

    Zube__ReplicaSet *rs = (Zube__ReplicaSet *)s_new (
        "ReplicaSet", "metadata:\n  name: web\n  namespace: default\nspec:\n  selector:\n"
                      "    matchLabels:\n      app: web\n  template:\n    metadata:\n"
                      "      labels:\n        app: web\n    spec:\n      containers:\n"
                      "      - name: app\n        image: nginx\n");
    ZT_ASSERT_INT_EQ (rs->spec->replicas, 1);
    s_free (&rs->base);

    Zube__DaemonSet *ds = (Zube__DaemonSet *)s_new (
        "DaemonSet",
        "metadata:\n  name: agent\n  namespace: default\nspec:\n  selector:\n"
        "    matchLabels:\n      app: a\n  template:\n    metadata:\n"
        "      labels:\n        app: a\n    spec:\n      containers:\n"
        "      - name: app\n        image: agent:1\n");
    ZT_ASSERT_STR_EQ (ds->spec->update_strategy->type, "RollingUpdate");
    ZT_ASSERT_INT_EQ (ds->spec->update_strategy->rolling_update->max_unavailable->int_val,
                      1);
    ZT_ASSERT_INT_EQ (ds->spec->update_strategy->rolling_update->max_surge->int_val, 0);
    ZT_ASSERT_INT_EQ (ds->spec->revision_history_limit, 10);
    s_free (&ds->base);

    //  Job: counts, and the selector the controller owns
    Zube__Job *job = (Zube__Job *)s_new (
        "Job", "metadata:\n  name: pi\n  namespace: default\nspec:\n  template:\n"
               "    spec:\n      restartPolicy: Never\n      containers:\n"
               "      - name: pi\n        image: perl:5\n");
    ZT_ASSERT_INT_EQ (job->spec->completions, 1);
    ZT_ASSERT_INT_EQ (job->spec->parallelism, 1);
    ZT_ASSERT_INT_EQ (job->spec->backoff_limit, 6);
    ZT_ASSERT_STR_EQ (job->spec->completion_mode, "NonIndexed");
    ZT_ASSERT_STR_EQ (job->spec->pod_replacement_policy, "TerminatingOrFailed");
    ZT_ASSERT (job->spec->has_suspend && !job->spec->suspend);
    ZT_ASSERT (job->spec->selector != NULL);
    ZT_ASSERT_INT_EQ (job->spec->selector->n_match_labels, 1);
    ZT_ASSERT_STR_EQ (job->spec->selector->match_labels[0]->key,
                      "batch.kubernetes.io/job-name");
    ZT_ASSERT_STR_EQ (job->spec->selector->match_labels[0]->value, "pi");
    zube_field_errors_t errors = {0};
    ZT_ASSERT_INT_EQ (zube_strategy_validate_create (s_kind ("Job"), &job->base, &errors),
                      0);
    s_free (&job->base);
    //  With a uid the selector uses it; parallelism alone keeps completions unset
    job = (Zube__Job *)s_new (
        "Job", "metadata:\n  name: pi\n  namespace: default\n  uid: u-1\nspec:\n"
               "  parallelism: 3\n  template:\n    spec:\n      restartPolicy: Never\n"
               "      containers:\n      - name: pi\n        image: perl:5\n");
    ZT_ASSERT (!job->spec->has_completions);
    ZT_ASSERT_STR_EQ (job->spec->selector->match_labels[0]->key,
                      "batch.kubernetes.io/controller-uid");
    ZT_ASSERT_STR_EQ (job->spec->selector->match_labels[0]->value, "u-1");
    s_free (&job->base);
}

static void
test_default_other_kinds (void)
{
    Zube__Service *svc = (Zube__Service *)s_new (
        "Service",
        "metadata:\n  name: web\n  namespace: default\nspec:\n  selector:\n"
        "    app: web\n  ports:\n  - port: 80\n  - port: 443\n    targetPort: https\n"
        "    protocol: UDP\n");
    ZT_ASSERT_STR_EQ (svc->spec->type, "ClusterIP");
    ZT_ASSERT_STR_EQ (svc->spec->session_affinity, "None");
    ZT_ASSERT_STR_EQ (svc->spec->internal_traffic_policy, "Cluster");
    ZT_ASSERT (svc->spec->external_traffic_policy == NULL);
    ZT_ASSERT_STR_EQ (svc->spec->ports[0]->protocol, "TCP");
    ZT_ASSERT_INT_EQ (svc->spec->ports[0]->target_port->int_val, 80);
    ZT_ASSERT_STR_EQ (svc->spec->ports[1]->protocol, "UDP");
    ZT_ASSERT_STR_EQ (svc->spec->ports[1]->target_port->str_val, "https");
    s_free (&svc->base);
    svc = (Zube__Service *)s_new ("Service",
                                  "metadata:\n  name: lb\n  namespace: default\n"
                                  "spec:\n  type: LoadBalancer\n  sessionAffinity: "
                                  "ClientIP\n  ports:\n  - port: 80\n");
    ZT_ASSERT_STR_EQ (svc->spec->external_traffic_policy, "Cluster");
    ZT_ASSERT (svc->spec->allocate_load_balancer_node_ports);
    ZT_ASSERT_INT_EQ (svc->spec->session_affinity_config->client_ip->timeout_seconds,
                      10800);
    s_free (&svc->base);

    Zube__Namespace *ns =
        (Zube__Namespace *)s_new ("Namespace", "metadata:\n  name: prod\n");
    ZT_ASSERT_INT_EQ (ns->metadata->n_labels, 1);
    ZT_ASSERT_STR_EQ (ns->metadata->labels[0]->key, "kubernetes.io/metadata.name");
    ZT_ASSERT_STR_EQ (ns->metadata->labels[0]->value, "prod");
    ZT_ASSERT_STR_EQ (ns->status->phase, "Active");
    s_free (&ns->base);

    Zube__Node *node = (Zube__Node *)s_decode (
        "Node",
        "metadata:\n  name: n1\nstatus:\n  capacity:\n    cpu: 4\n    pods: 110\n");
    zube_strategy_default (s_kind ("Node"), &node->base);
    ZT_ASSERT_INT_EQ (node->status->n_allocatable, 2);
    ZT_ASSERT_STR_EQ (node->status->allocatable[0]->key, "cpu");
    ZT_ASSERT_INT_EQ (node->status->allocatable[0]->value->milli_value, 4000);
    ZT_ASSERT_INT_EQ (node->status->n_capacity, 2);
    s_free (&node->base);

    Zube__Secret *secret = (Zube__Secret *)s_new (
        "Secret", "metadata:\n  name: s\n  namespace: default\ndata:\n  a: eA==\n"
                  "stringData:\n  a: hello\n  b: world\n");
    ZT_ASSERT_STR_EQ (secret->type, "Opaque");
    ZT_ASSERT_INT_EQ (secret->n_string_data, 0);
    ZT_ASSERT_INT_EQ (secret->n_data, 2);
    ZT_ASSERT_INT_EQ (secret->data[0]->value.len, 5);
    ZT_ASSERT (memcmp (secret->data[0]->value.data, "hello", 5) == 0);
    ZT_ASSERT (memcmp (secret->data[1]->value.data, "world", 5) == 0);
    s_free (&secret->base);
}

//  ---------------------------------------------------------------------
//  Validation: metadata

static void
test_validate_metadata (void)
{
    S_EXPECT_VALID ("Pod", POD);
    S_EXPECT (
        "Pod",
        "metadata:\n  name: Web\n  namespace: default\nspec:\n  containers:\n"
        "  - name: a\n    image: x\n",
        "FieldValueInvalid", "metadata.name",
        "metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must "
        "consist of lower case alphanumeric characters, '-' or '.', and must start and "
        "end with an alphanumeric character (e.g. 'example.com', regex used for "
        "validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
    S_EXPECT ("Pod",
              "metadata:\n  namespace: default\nspec:\n  containers:\n  - name: a\n"
              "    image: x\n",
              "FieldValueRequired", "metadata.name",
              "metadata.name: Required value: name or generateName is required");
    S_EXPECT ("Pod",
              "metadata:\n  name: web\nspec:\n  containers:\n  - name: a\n    image: x\n",
              "FieldValueRequired", "metadata.namespace",
              "metadata.namespace: Required value");
    S_EXPECT (
        "Pod",
        "metadata:\n  name: web\n  namespace: Prod\nspec:\n  containers:\n"
        "  - name: a\n    image: x\n",
        "FieldValueInvalid", "metadata.namespace",
        "metadata.namespace: Invalid value: \"Prod\": a lowercase RFC 1123 label must "
        "consist of lower case alphanumeric characters or '-', and must start and end "
        "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
        "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
    S_EXPECT ("Node", "metadata:\n  name: n1\n  namespace: default\n",
              "FieldValueForbidden", "metadata.namespace",
              "metadata.namespace: Forbidden: not allowed on this type");
    //  generateName: a trailing '-' is fine, the rest must fit the rule
    S_EXPECT_VALID ("Pod", "metadata:\n  name: web-x7k2p\n  generateName: web-\n"
                           "  namespace: default\nspec:\n  containers:\n  - name: a\n"
                           "    image: x\n");
    S_EXPECT (
        "Pod",
        "metadata:\n  name: web-x7k2p\n  generateName: Web-\n  namespace: d\n"
        "spec:\n  containers:\n  - name: a\n    image: x\n",
        "FieldValueInvalid", "metadata.generateName",
        "metadata.generateName: Invalid value: \"Web-\": a lowercase RFC 1123 subdomain "
        "must consist of lower case alphanumeric characters, '-' or '.', and must start "
        "and end with an alphanumeric character (e.g. 'example.com', regex used for "
        "validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
    //  Namespaces are labels; Services DNS-1035 labels
    S_EXPECT ("Namespace", "metadata:\n  name: a.b\n", "FieldValueInvalid",
              "metadata.name",
              "metadata.name: Invalid value: \"a.b\": must not contain dots");
    S_EXPECT (
        "Service",
        "metadata:\n  name: 1web\n  namespace: d\nspec:\n  ports:\n"
        "  - port: 80\n",
        "FieldValueInvalid", "metadata.name",
        "metadata.name: Invalid value: \"1web\": a lowercase RFC 1035 label must consist "
        "of lower case alphanumeric characters or '-', start with an alphabetic "
        "character, and end with an alphanumeric character (e.g. 'my-name',  or "
        "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
    //  Labels, annotations, finalizers, owner references
    S_EXPECT (
        "Pod",
        POD_HEAD "  labels:\n    app: -bad\nspec:\n  containers:\n  - name: a\n"
                 "    image: x\n",
        "FieldValueInvalid", "metadata.labels",
        "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string "
        "or consist of alphanumeric characters, '-', '_' or '.', and must start and end "
        "with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
        "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
    S_EXPECT (
        "Pod",
        POD_HEAD "  labels:\n    a/b/c: x\nspec:\n  containers:\n  - name: a\n"
                 "    image: x\n",
        "FieldValueInvalid", "metadata.labels",
        "metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist of "
        "alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
        "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional "
        "DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
    //  Annotation keys ignore case; values are free
    S_EXPECT_VALID ("Pod",
                    POD_HEAD "  annotations:\n    Example.COM/Note: \"any thing!\"\n"
                             "spec:\n  containers:\n  - name: a\n    image: x\n");
    char *big = malloc (300 * 1024);
    ZT_ASSERT (big != NULL);
    int n = snprintf (big, 300 * 1024, POD_HEAD "  annotations:\n    a: \"");
    memset (big + n, 'x', 260 * 1024);
    snprintf (big + n + 260 * 1024, 300 * 1024 - (size_t)n - 260 * 1024,
              "\"\nspec:\n  containers:\n  - name: a\n    image: x\n");
    S_EXPECT ("Pod", big, "FieldValueTooLong", "metadata.annotations",
              "metadata.annotations: Too long: may not be more than 262144 bytes");
    free (big);
    S_EXPECT (
        "Pod",
        POD_HEAD "  finalizers: [custom]\nspec:\n  containers:\n  - name: a\n"
                 "    image: x\n",
        "FieldValueInvalid", "metadata.finalizers",
        "metadata.finalizers: Invalid value: \"custom\": name is neither a standard "
        "finalizer name nor is it fully qualified");
    S_EXPECT_VALID ("Pod",
                    POD_HEAD "  finalizers: [kubernetes, example.com/done]\nspec:\n"
                             "  containers:\n  - name: a\n    image: x\n");
    S_EXPECT ("Pod",
              POD_HEAD
              "  ownerReferences:\n  - apiVersion: apps/v1\n    kind: ReplicaSet\n"
              "    name: web\nspec:\n  containers:\n  - name: a\n    image: x\n",
              "FieldValueInvalid", "metadata.ownerReferences.uid",
              "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty");
    //  (prepare_create sets generation 1, so check a decoded object as is)
    ProtobufCMessage *pod =
        s_decode ("Pod", POD_HEAD "  generation: -1\nspec:\n  containers:\n"
                                  "  - name: a\n    image: x\n");
    zube_strategy_default (s_kind ("Pod"), pod);
    zube_field_errors_t errors = {0};
    ZT_ASSERT_INT_EQ (zube_strategy_validate_create (s_kind ("Pod"), pod, &errors), 1);
    ZT_ASSERT_STR_EQ (
        errors.errors[0].message,
        "metadata.generation: Invalid value: -1: must be greater than or equal to 0");
    s_free (pod);
}

//  ---------------------------------------------------------------------
//  Validation: pods

static void
test_validate_pod (void)
{
    S_EXPECT ("Pod", POD_HEAD "spec:\n  restartPolicy: Always\n", "FieldValueRequired",
              "spec.containers", "spec.containers: Required value");
    S_EXPECT ("Pod", POD_HEAD "spec:\n  containers:\n  - image: x\n",
              "FieldValueRequired", "spec.containers[0].name",
              "spec.containers[0].name: Required value");
    S_EXPECT ("Pod", POD_HEAD "spec:\n  containers:\n  - name: a\n", "FieldValueRequired",
              "spec.containers[0].image", "spec.containers[0].image: Required value");
    S_EXPECT ("Pod", POD_HEAD "spec:\n  containers:\n  - name: a\n    image: \" x\"\n",
              "FieldValueInvalid", "spec.containers[0].image",
              "spec.containers[0].image: Invalid value: \" x\": must not have leading or "
              "trailing whitespace");
    S_EXPECT (
        "Pod", POD_HEAD "spec:\n  containers:\n  - name: App\n    image: x\n",
        "FieldValueInvalid", "spec.containers[0].name",
        "spec.containers[0].name: Invalid value: \"App\": a lowercase RFC 1123 label "
        "must consist of lower case alphanumeric characters or '-', and must start and "
        "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
        "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')");
    S_EXPECT ("Pod",
              POD_HEAD "spec:\n  initContainers:\n  - name: a\n    image: x\n"
                       "  containers:\n  - name: a\n    image: x\n",
              "FieldValueDuplicate", "spec.containers[0].name",
              "spec.containers[0].name: Duplicate value: \"a\"");
    S_EXPECT ("Pod", POD "    ports:\n    - containerPort: 70000\n", "FieldValueInvalid",
              "spec.containers[0].ports[0].containerPort",
              "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be "
              "between 1 and 65535, inclusive");
    S_EXPECT ("Pod", POD "    ports:\n    - name: http\n", "FieldValueRequired",
              "spec.containers[0].ports[0].containerPort",
              "spec.containers[0].ports[0].containerPort: Required value");
    S_EXPECT (
        "Pod", POD "    ports:\n    - containerPort: 80\n      protocol: HTTP\n",
        "FieldValueNotSupported", "spec.containers[0].ports[0].protocol",
        "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported "
        "values: \"SCTP\", \"TCP\", \"UDP\"");
    S_EXPECT (
        "Pod", POD "    ports:\n    - containerPort: 80\n      name: Http_1\n",
        "FieldValueInvalid", "spec.containers[0].ports[0].name",
        "spec.containers[0].ports[0].name: Invalid value: \"Http_1\": must contain only "
        "alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    S_EXPECT ("Pod",
              POD "    ports:\n    - containerPort: 80\n      name: http\n"
                  "    - containerPort: 81\n      name: http\n",
              "FieldValueDuplicate", "spec.containers[0].ports[1].name",
              "spec.containers[0].ports[1].name: Duplicate value: \"http\"");
    S_EXPECT (
        "Pod",
        POD "    resources:\n      limits:\n        cpu: 1\n      requests:\n"
            "        cpu: 1500m\n",
        "FieldValueInvalid", "spec.containers[0].resources.requests",
        "spec.containers[0].resources.requests: Invalid value: \"1500m\": must be less "
        "than or equal to cpu limit of 1");
    S_EXPECT (
        "Pod", POD "    resources:\n      requests:\n        memory: -1Mi\n",
        "FieldValueInvalid", "spec.containers[0].resources.requests[memory]",
        "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Mi\": must be "
        "greater than or equal to 0");
    S_EXPECT (
        "Pod", POD "    resources:\n      requests:\n        gpu: 1\n",
        "FieldValueInvalid", "spec.containers[0].resources.requests[gpu]",
        "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a "
        "standard resource for containers");
    S_EXPECT (
        "Pod", POD "    resources:\n      requests:\n        example.com/gpu: 1\n",
        "FieldValueRequired", "spec.containers[0].resources.limits",
        "spec.containers[0].resources.limits: Required value: Limit must be set for non "
        "overcommitable resources");
    S_EXPECT (
        "Pod", POD "    resources:\n      limits:\n        example.com/gpu: 500m\n",
        "FieldValueInvalid", "spec.containers[0].resources.limits[example.com/gpu]",
        "spec.containers[0].resources.limits[example.com/gpu]: Invalid value: \"500m\": "
        "must be an integer");
    S_EXPECT_VALID ("Pod",
                    POD "    resources:\n      limits:\n        example.com/gpu: 2\n"
                        "        memory: 1Gi\n      requests:\n        memory: 256Mi\n");
    S_EXPECT (
        "Pod", POD "    env:\n    - name: 1ABC\n", "FieldValueInvalid",
        "spec.containers[0].env[0].name",
        "spec.containers[0].env[0].name: Invalid value: \"1ABC\": a valid environment "
        "variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
        "and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
        "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')");
    S_EXPECT ("Pod", POD "    env:\n    - value: x\n", "FieldValueRequired",
              "spec.containers[0].env[0].name",
              "spec.containers[0].env[0].name: Required value");
    S_EXPECT ("Pod", POD "    volumeMounts:\n    - name: data\n      mountPath: /data\n",
              "FieldValueNotFound", "spec.containers[0].volumeMounts[0].name",
              "spec.containers[0].volumeMounts[0].name: Not found: \"data\"");
    S_EXPECT ("Pod",
              POD "    volumeMounts:\n    - name: data\n  volumes:\n  - name: data\n",
              "FieldValueRequired", "spec.containers[0].volumeMounts[0].mountPath",
              "spec.containers[0].volumeMounts[0].mountPath: Required value");
    S_EXPECT (
        "Pod",
        POD "  volumes:\n  - name: v\n    emptyDir: {}\n    hostPath:\n"
            "      path: /x\n",
        "FieldValueForbidden", "spec.volumes[0].emptyDir",
        "spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type");
    S_EXPECT ("Pod", POD "  volumes:\n  - name: v\n  - name: v\n", "FieldValueDuplicate",
              "spec.volumes[1].name", "spec.volumes[1].name: Duplicate value: \"v\"");
    S_EXPECT ("Pod", POD "  restartPolicy: Sometimes\n", "FieldValueNotSupported",
              "spec.restartPolicy",
              "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: "
              "\"Always\", \"OnFailure\", \"Never\"");
    S_EXPECT ("Pod", POD "  dnsPolicy: Google\n", "FieldValueNotSupported",
              "spec.dnsPolicy",
              "spec.dnsPolicy: Unsupported value: \"Google\": supported values: "
              "\"ClusterFirst\", \"ClusterFirstWithHostNet\", \"Default\", \"None\"");
    S_EXPECT (
        "Pod", POD "    imagePullPolicy: Sometimes\n", "FieldValueNotSupported",
        "spec.containers[0].imagePullPolicy",
        "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported "
        "values: \"Always\", \"IfNotPresent\", \"Never\"");
    S_EXPECT (
        "Pod", POD "  activeDeadlineSeconds: 0\n", "FieldValueInvalid",
        "spec.activeDeadlineSeconds",
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
        "inclusive");
    S_EXPECT (
        "Pod", POD "  terminationGracePeriodSeconds: -5\n", "FieldValueInvalid",
        "spec.terminationGracePeriodSeconds",
        "spec.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or "
        "equal to 0");
    S_EXPECT (
        "Pod", POD "  nodeSelector:\n    disk: \"s s d\"\n", "FieldValueInvalid",
        "spec.nodeSelector",
        "spec.nodeSelector: Invalid value: \"s s d\": a valid label must be an empty "
        "string or consist of alphanumeric characters, '-', '_' or '.', and must start "
        "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
        "'12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
    S_EXPECT (
        "Pod", POD "  nodeName: Node_1\n", "FieldValueInvalid", "spec.nodeName",
        "spec.nodeName: Invalid value: \"Node_1\": a lowercase RFC 1123 subdomain must "
        "consist of lower case alphanumeric characters, '-' or '.', and must start and "
        "end with an alphanumeric character (e.g. 'example.com', regex used for "
        "validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
    S_EXPECT (
        "Pod", POD "  tolerations:\n  - key: k\n    operator: Exists\n    value: v\n",
        "FieldValueInvalid", "spec.tolerations[0].operator",
        "spec.tolerations[0].operator: Invalid value: \"Exists\": value must be empty "
        "when `operator` is 'Exists'");
    S_EXPECT (
        "Pod", POD "  tolerations:\n  - operator: Equal\n    value: v\n",
        "FieldValueInvalid", "spec.tolerations[0].operator",
        "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists "
        "when `key` is empty, which means \"match all values and all keys\"");
    S_EXPECT ("Pod",
              POD "  tolerations:\n  - key: k\n    operator: Exists\n"
                  "    effect: NoSchedule\n    tolerationSeconds: 5\n",
              "FieldValueInvalid", "spec.tolerations[0].effect",
              "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be "
              "'NoExecute' when `tolerationSeconds` is set");
    S_EXPECT (
        "Pod",
        POD "  tolerations:\n  - key: k\n    operator: Exists\n    effect: Never\n",
        "FieldValueNotSupported", "spec.tolerations[0].effect",
        "spec.tolerations[0].effect: Unsupported value: \"Never\": supported values: "
        "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"");
    S_EXPECT (
        "Pod", POD "    livenessProbe:\n      periodSeconds: 5\n", "FieldValueRequired",
        "spec.containers[0].livenessProbe",
        "spec.containers[0].livenessProbe: Required value: must specify a handler type");
    S_EXPECT (
        "Pod",
        POD "    livenessProbe:\n      exec:\n        command: [\"true\"]\n"
            "      successThreshold: 2\n",
        "FieldValueInvalid", "spec.containers[0].livenessProbe.successThreshold",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1");
}

//  ---------------------------------------------------------------------
//  Validation: workloads

#define DEPLOY_HEAD "metadata:\n  name: web\n  namespace: default\nspec:\n"
#define TEMPLATE                                                                         \
    "  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n"           \
    "      containers:\n      - name: app\n        image: nginx:1\n"

static void
test_validate_workloads (void)
{
    S_EXPECT_VALID ("Deployment", DEPLOY_HEAD
                    "  selector:\n    matchLabels:\n      app: web\n" TEMPLATE);
    S_EXPECT ("Deployment",
              DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: api\n" TEMPLATE,
              "FieldValueInvalid", "spec.template.metadata.labels",
              "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: "
              "`selector` does "
              "not match template `labels`");
    S_EXPECT ("Deployment", DEPLOY_HEAD TEMPLATE, "FieldValueRequired", "spec.selector",
              "spec.selector: Required value");
    S_EXPECT (
        "Deployment", DEPLOY_HEAD "  selector: {}\n" TEMPLATE, "FieldValueInvalid",
        "spec.selector",
        "spec.selector: Invalid value: {}: empty selector is invalid for deployment");
    S_EXPECT ("Deployment",
              DEPLOY_HEAD "  replicas: -1\n  selector:\n    matchLabels:\n"
                          "      app: web\n" TEMPLATE,
              "FieldValueInvalid", "spec.replicas",
              "spec.replicas: Invalid value: -1: must be greater than or equal to 0");
    S_EXPECT (
        "Deployment",
        DEPLOY_HEAD "  selector:\n    matchExpressions:\n    - key: app\n"
                    "      operator: In\n" TEMPLATE,
        "FieldValueRequired", "spec.selector.matchExpressions[0].values",
        "spec.selector.matchExpressions[0].values: Required value: must be specified "
        "when `operator` is 'In' or 'NotIn'");
    S_EXPECT ("Deployment",
              DEPLOY_HEAD "  selector:\n    matchExpressions:\n    - key: app\n"
                          "      operator: Like\n" TEMPLATE,
              "FieldValueInvalid", "spec.selector.matchExpressions[0].operator",
              "spec.selector.matchExpressions[0].operator: Invalid value: \"Like\": not "
              "a valid "
              "selector operator");
    S_EXPECT (
        "Deployment",
        DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n"
                    "  strategy:\n    rollingUpdate:\n      maxSurge: 0\n"
                    "      maxUnavailable: 0\n" TEMPLATE,
        "FieldValueInvalid", "spec.strategy.rollingUpdate.maxUnavailable",
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when "
        "`maxSurge` is 0");
    S_EXPECT ("Deployment",
              DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n"
                          "  strategy:\n    rollingUpdate:\n"
                          "      maxUnavailable: 110%\n" TEMPLATE,
              "FieldValueInvalid", "spec.strategy.rollingUpdate.maxUnavailable",
              "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"110%\": must "
              "not be "
              "greater than 100%");
    S_EXPECT (
        "Deployment",
        DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n"
                    "  strategy:\n    rollingUpdate:\n"
                    "      maxSurge: lots\n" TEMPLATE,
        "FieldValueInvalid", "spec.strategy.rollingUpdate.maxSurge",
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"lots\": a valid percent "
        "string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
        "'93%', "
        "regex used for validation is '[0-9]+%')");
    S_EXPECT (
        "Deployment",
        DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n"
                    "  strategy:\n    type: Recreate\n    rollingUpdate:\n"
                    "      maxSurge: 1\n" TEMPLATE,
        "FieldValueForbidden", "spec.strategy.rollingUpdate",
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
        "`type` is 'Recreate'");
    S_EXPECT ("Deployment",
              DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n"
                          "  strategy:\n    type: BlueGreen\n" TEMPLATE,
              "FieldValueNotSupported", "spec.strategy.type",
              "spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: "
              "\"Recreate\", \"RollingUpdate\"");
    S_EXPECT ("Deployment",
              DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n"
                          "  minReadySeconds: 700\n" TEMPLATE,
              "FieldValueInvalid", "spec.progressDeadlineSeconds",
              "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than "
              "minReadySeconds");
    S_EXPECT ("Deployment",
              DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n" TEMPLATE
                          "      restartPolicy: Never\n",
              "FieldValueNotSupported", "spec.template.spec.restartPolicy",
              "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported "
              "values: \"Always\"");
    S_EXPECT (
        "ReplicaSet",
        DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n" TEMPLATE
                    "      activeDeadlineSeconds: 5\n",
        "FieldValueForbidden", "spec.template.spec.activeDeadlineSeconds",
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in "
        "ReplicaSet is not Supported");
    //  The template's pod spec is validated with its path
    S_EXPECT ("ReplicaSet",
              DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n"
                          "  template:\n    metadata:\n      labels:\n"
                          "        app: web\n    spec:\n      containers:\n"
                          "      - name: app\n",
              "FieldValueRequired", "spec.template.spec.containers[0].image",
              "spec.template.spec.containers[0].image: Required value");
    S_EXPECT (
        "DaemonSet", DEPLOY_HEAD "  selector: {}\n" TEMPLATE, "FieldValueInvalid",
        "spec.selector",
        "spec.selector: Invalid value: {}: empty selector is invalid for daemonset");
    S_EXPECT (
        "DaemonSet",
        DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n"
                    "  updateStrategy:\n    type: Sometimes\n" TEMPLATE,
        "FieldValueNotSupported", "spec.updateStrategy.type",
        "spec.updateStrategy.type: Unsupported value: \"Sometimes\": supported values: "
        "\"OnDelete\", \"RollingUpdate\"");
    //  Jobs
    S_EXPECT (
        "Job", DEPLOY_HEAD TEMPLATE, "FieldValueNotSupported",
        "spec.template.spec.restartPolicy",
        "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported "
        "values: \"OnFailure\", \"Never\"");
    S_EXPECT ("Job",
              DEPLOY_HEAD "  backoffLimit: -1\n" TEMPLATE "      restartPolicy: Never\n",
              "FieldValueInvalid", "spec.backoffLimit",
              "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0");
    S_EXPECT ("Job",
              DEPLOY_HEAD "  completionMode: Indexed\n  parallelism: 2\n" TEMPLATE
                          "      restartPolicy: Never\n",
              "FieldValueRequired", "spec.completions",
              "spec.completions: Required value: when completion mode is Indexed");
    S_EXPECT ("Job",
              DEPLOY_HEAD "  completionMode: Sometimes\n" TEMPLATE
                          "      restartPolicy: Never\n",
              "FieldValueNotSupported", "spec.completionMode",
              "spec.completionMode: Unsupported value: \"Sometimes\": supported values: "
              "\"NonIndexed\", \"Indexed\"");
    S_EXPECT (
        "Job",
        DEPLOY_HEAD "  manualSelector: true\n  selector:\n    matchLabels:\n"
                    "      app: other\n" TEMPLATE "      restartPolicy: Never\n",
        "FieldValueInvalid", "spec.template.metadata.labels",
        "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` "
        "does not match template `labels`");
}

//  ---------------------------------------------------------------------
//  Validation: services and the other kinds

#define SVC_HEAD "metadata:\n  name: web\n  namespace: default\nspec:\n"

static void
test_validate_other_kinds (void)
{
    S_EXPECT_VALID ("Service",
                    SVC_HEAD "  selector:\n    app: web\n  ports:\n  - port: 80\n");
    S_EXPECT ("Service", SVC_HEAD "  selector:\n    app: web\n", "FieldValueRequired",
              "spec.ports", "spec.ports: Required value");
    S_EXPECT_VALID ("Service", SVC_HEAD "  clusterIP: None\n");
    S_EXPECT ("Service", SVC_HEAD "  ports:\n  - port: 80\n  - port: 81\n    name: b\n",
              "FieldValueRequired", "spec.ports[0].name",
              "spec.ports[0].name: Required value");
    S_EXPECT (
        "Service", SVC_HEAD "  ports:\n  - port: 0\n    targetPort: 80\n",
        "FieldValueInvalid", "spec.ports[0].port",
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive");
    S_EXPECT ("Service", SVC_HEAD "  ports:\n  - port: 80\n    targetPort: web--port\n",
              "FieldValueInvalid", "spec.ports[0].targetPort",
              "spec.ports[0].targetPort: Invalid value: \"web--port\": must not contain "
              "consecutive hyphens");
    S_EXPECT ("Service", SVC_HEAD "  type: Magic\n  ports:\n  - port: 80\n",
              "FieldValueNotSupported", "spec.type",
              "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", "
              "\"ExternalName\", \"LoadBalancer\", \"NodePort\"");
    S_EXPECT (
        "Service", SVC_HEAD "  ports:\n  - port: 80\n    nodePort: 30080\n",
        "FieldValueForbidden", "spec.ports[0].nodePort",
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'");
    S_EXPECT (
        "Service", SVC_HEAD "  clusterIP: 10.0.0.300\n  ports:\n  - port: 80\n",
        "FieldValueInvalid", "spec.clusterIPs[0]",
        "spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, "
        "(e.g. 10.9.8.7 or 2001:db8::ffff)");
    S_EXPECT ("Service", SVC_HEAD "  type: ExternalName\n", "FieldValueRequired",
              "spec.externalName", "spec.externalName: Required value");
    S_EXPECT ("Service", SVC_HEAD "  sessionAffinity: Sticky\n  ports:\n  - port: 80\n",
              "FieldValueNotSupported", "spec.sessionAffinity",
              "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: "
              "\"ClientIP\", \"None\"");
    //  Leases
    S_EXPECT_VALID ("Lease",
                    "metadata:\n  name: n1\n  namespace: kube-node-lease\nspec:\n"
                    "  holderIdentity: n1\n  leaseDurationSeconds: 40\n");
    S_EXPECT ("Lease",
              "metadata:\n  name: n1\n  namespace: kube-node-lease\nspec:\n"
              "  leaseDurationSeconds: 0\n",
              "FieldValueInvalid", "spec.leaseDurationSeconds",
              "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0");
    S_EXPECT (
        "Lease",
        "metadata:\n  name: n1\n  namespace: kube-node-lease\nspec:\n"
        "  leaseTransitions: -1\n",
        "FieldValueInvalid", "spec.leaseTransitions",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0");
    S_EXPECT ("Lease",
              "metadata:\n  name: n1\n  namespace: kube-node-lease\nspec:\n"
              "  preferredHolder: b\n",
              "FieldValueForbidden", "spec.preferredHolder",
              "spec.preferredHolder: Forbidden: may only be specified if `strategy` is "
              "defined");
    //  Nodes
    S_EXPECT ("Node",
              "metadata:\n  name: n1\nspec:\n  taints:\n  - key: k\n    effect: Soon\n",
              "FieldValueNotSupported", "spec.taints[0].effect",
              "spec.taints[0].effect: Unsupported value: \"Soon\": supported values: "
              "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"");
    S_EXPECT ("Node", "metadata:\n  name: n1\nspec:\n  taints:\n  - key: k\n",
              "FieldValueRequired", "spec.taints[0].effect",
              "spec.taints[0].effect: Required value");
    //  ConfigMaps and Secrets
    S_EXPECT (
        "ConfigMap", "metadata:\n  name: c\n  namespace: d\ndata:\n  \"a b\": x\n",
        "FieldValueInvalid", "data[a b]",
        "data[a b]: Invalid value: \"a b\": a valid config key must consist of "
        "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
        "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')");
    S_EXPECT ("ConfigMap", "metadata:\n  name: c\n  namespace: d\ndata:\n  ..x: x\n",
              "FieldValueInvalid", "data[..x]",
              "data[..x]: Invalid value: \"..x\": must not start with '..'");
    S_EXPECT ("Secret",
              "metadata:\n  name: s\n  namespace: d\ntype: kubernetes.io/tls\n"
              "data:\n  tls.crt: eA==\n",
              "FieldValueRequired", "data[tls.key]", "data[tls.key]: Required value");
    S_EXPECT (
        "Event", "metadata:\n  name: e\n  namespace: d\ntype: Bad\n",
        "FieldValueNotSupported", "type",
        "type: Unsupported value: \"Bad\": supported values: \"Normal\", \"Warning\"");
    S_EXPECT (
        "EndpointSlice", "metadata:\n  name: e\n  namespace: d\naddressType: IPv5\n",
        "FieldValueNotSupported", "addressType",
        "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", "
        "\"IPv6\"");
    S_EXPECT (
        "Namespace", "metadata:\n  name: x\nspec:\n  finalizers: [\"a b\"]\n",
        "FieldValueInvalid", "spec.finalizers",
        "spec.finalizers: Invalid value: \"a b\": name part must consist of alphanumeric "
        "characters, '-', '_' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
        "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
    //  The wrong kind for the descriptor is refused, not crashed on
    ProtobufCMessage *pod = s_decode ("Pod", POD);
    zube_field_errors_t errors = {0};
    ZT_ASSERT_INT_EQ (zube_strategy_validate_create (s_kind ("Service"), pod, &errors),
                      1);
    s_free (pod);
}

//  ---------------------------------------------------------------------
//  Updates

static void
test_update_immutable (void)
{
    //  Pods: images may change; other spec fields may not
    S_EXPECT_UPDATE_OK ("Pod", POD,
                        POD_HEAD "spec:\n  containers:\n  - name: app\n"
                                 "    image: nginx:1.26\n");
    S_EXPECT_UPDATE (
        "Pod", POD, POD "  restartPolicy: Never\n",
        "spec: Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`,`spec.initContainers[*].image`,"
        "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
        "be set to 1 if it was previously negative)");
    S_EXPECT_UPDATE_OK ("Pod", POD,
                        POD "  tolerations:\n  - key: a\n    operator: Exists\n");
    S_EXPECT_UPDATE (
        "Pod", POD "  tolerations:\n  - key: a\n    operator: Exists\n", POD,
        "spec.tolerations: Forbidden: existing toleration can not be modified "
        "except its tolerationSeconds");
    S_EXPECT_UPDATE_OK ("Pod", POD "  activeDeadlineSeconds: 100\n",
                        POD "  activeDeadlineSeconds: 50\n");
    S_EXPECT_UPDATE (
        "Pod", POD "  activeDeadlineSeconds: 100\n", POD "  activeDeadlineSeconds: 200\n",
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or "
        "equal to previous value");
    S_EXPECT_UPDATE (
        "Pod", POD "  activeDeadlineSeconds: 100\n", POD,
        "spec.activeDeadlineSeconds: Invalid value: null: must not update from a "
        "positive integer to nil value");
    //  Metadata
    S_EXPECT_UPDATE ("Pod",
                     "metadata:\n  name: web\n  namespace: default\n  uid: a\n"
                     "spec:\n  containers:\n  - name: app\n    image: nginx:1.25\n",
                     "metadata:\n  name: web\n  namespace: default\n  uid: b\nspec:\n"
                     "  containers:\n  - name: app\n    image: nginx:1.25\n",
                     "metadata.uid: Invalid value: \"b\": field is immutable");
    S_EXPECT_UPDATE ("Pod", POD,
                     "metadata:\n  name: web2\n  namespace: default\nspec:\n"
                     "  containers:\n  - name: app\n    image: nginx:1.25\n",
                     "metadata.name: Invalid value: \"web2\": field is immutable");
    //  Workload selectors
    S_EXPECT_UPDATE (
        "Deployment",
        DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n" TEMPLATE,
        DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n"
                    "      tier: x\n  template:\n    metadata:\n      labels:\n"
                    "        app: web\n        tier: x\n    spec:\n"
                    "      containers:\n      - name: app\n        image: nginx:1\n",
        "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web\",\"tier\":"
        "\"x\"}}: field is immutable");
    S_EXPECT_UPDATE_OK ("Deployment",
                        DEPLOY_HEAD
                        "  selector:\n    matchLabels:\n      app: web\n" TEMPLATE,
                        DEPLOY_HEAD "  replicas: 5\n  selector:\n    matchLabels:\n"
                                    "      app: web\n" TEMPLATE);
    //  Job template
    zube_field_errors_t errors =
        s_update ("Job", DEPLOY_HEAD TEMPLATE "      restartPolicy: Never\n",
                  DEPLOY_HEAD TEMPLATE "      restartPolicy: OnFailure\n");
    bool found = false;
    for (size_t i = 0; i < errors.count && i < ZUBE_FIELD_ERRORS_MAX; i++)
        found = found || (strcmp (errors.errors[i].field, "spec.template") == 0 &&
                          strstr (errors.errors[i].message, ": field is immutable"));
    ZT_ASSERT (found);
    //  Service clusterIP
    S_EXPECT_UPDATE (
        "Service", SVC_HEAD "  clusterIP: 10.0.0.1\n  ports:\n  - port: 80\n",
        SVC_HEAD "  clusterIP: 10.0.0.2\n  ports:\n  - port: 80\n",
        "spec.clusterIPs[0]: Invalid value: [\"10.0.0.2\"]: may not change once set");
    //  Nodes: podCIDR only from "" to a value
    S_EXPECT_UPDATE_OK ("Node", "metadata:\n  name: n1\n",
                        "metadata:\n  name: n1\nspec:\n  podCIDR: 10.1.0.0/24\n");
    S_EXPECT_UPDATE (
        "Node", "metadata:\n  name: n1\nspec:\n  podCIDR: 10.1.0.0/24\n",
        "metadata:\n  name: n1\nspec:\n  podCIDR: 10.2.0.0/24\n",
        "spec.podCIDRs: Forbidden: node updates may not change podCIDR except "
        "from \"\" to valid");
    //  ConfigMaps marked immutable; Secret type
    S_EXPECT_UPDATE (
        "ConfigMap",
        "metadata:\n  name: c\n  namespace: d\nimmutable: true\n"
        "data:\n  a: x\n",
        "metadata:\n  name: c\n  namespace: d\nimmutable: true\ndata:\n  a: y\n",
        "data: Forbidden: field is immutable when `immutable` is set");
    S_EXPECT_UPDATE ("ConfigMap",
                     "metadata:\n  name: c\n  namespace: d\nimmutable: true\n",
                     "metadata:\n  name: c\n  namespace: d\n",
                     "immutable: Forbidden: field is immutable when `immutable` is set");
    S_EXPECT_UPDATE_OK ("ConfigMap",
                        "metadata:\n  name: c\n  namespace: d\ndata:\n  a: x\n",
                        "metadata:\n  name: c\n  namespace: d\ndata:\n  a: y\n");
    S_EXPECT_UPDATE (
        "Secret", "metadata:\n  name: s\n  namespace: d\n",
        "metadata:\n  name: s\n  namespace: d\ntype: kubernetes.io/basic-auth\n",
        "type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable");
}

//  ---------------------------------------------------------------------
//  Generation and status

static void
test_generation_and_status (void)
{
    const zube_kind_t *kind = s_kind ("Deployment");
    const char *yaml =
        DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n" TEMPLATE
                    "status:\n  replicas: 3\n";
    //  The stored object has a status (as the controllers write it)
    ProtobufCMessage *old = s_decode ("Deployment", yaml);
    zube_strategy_default (kind, old);
    Zube__Deployment *stored = (Zube__Deployment *)old;
    stored->metadata->has_generation = true;
    stored->metadata->generation = 1;
    ZT_ASSERT_INT_EQ (stored->status->replicas, 3);

    //  A label change is no spec change
    Zube__Deployment *next = (Zube__Deployment *)s_decode (
        "Deployment",
        DEPLOY_HEAD "  selector:\n    matchLabels:\n      app: web\n" TEMPLATE);
    zube_strategy_default (kind, &next->base);
    ZT_ASSERT (!zube_strategy_spec_changed (&next->base, old));
    zube_strategy_prepare_update (kind, &next->base, old);
    ZT_ASSERT_INT_EQ (next->metadata->generation, 1);
    //  The main resource keeps the stored status
    ZT_ASSERT (next->status != NULL);
    ZT_ASSERT_INT_EQ (next->status->replicas, 3);
    s_free (&next->base);

    //  A spec change bumps the generation; a status sent along is ignored
    next = (Zube__Deployment *)s_decode (
        "Deployment", DEPLOY_HEAD "  replicas: 4\n  selector:\n    matchLabels:\n"
                                  "      app: web\n" TEMPLATE "status:\n  replicas: 9\n");
    zube_strategy_default (kind, &next->base);
    ZT_ASSERT (zube_strategy_spec_changed (&next->base, old));
    zube_strategy_prepare_update (kind, &next->base, old);
    ZT_ASSERT_INT_EQ (next->metadata->generation, 2);
    ZT_ASSERT_INT_EQ (next->status->replicas, 3);
    s_free (&next->base);

    //  The status subresource: only status changes, resourceVersion kept
    next = (Zube__Deployment *)s_decode (
        "Deployment",
        "metadata:\n  name: web\n  namespace: default\n  resourceVersion: \"7\"\n"
        "  labels:\n    sneaky: \"1\"\nspec:\n  replicas: 100\n"
        "status:\n  replicas: 4\n  readyReplicas: 2\n");
    zube_strategy_prepare_status_update (kind, &next->base, old);
    ZT_ASSERT_INT_EQ (next->status->replicas, 4);
    ZT_ASSERT_INT_EQ (next->status->ready_replicas, 2);
    ZT_ASSERT_INT_EQ (next->spec->replicas, 1);
    ZT_ASSERT_INT_EQ (next->metadata->n_labels, 0);
    ZT_ASSERT_STR_EQ (next->metadata->resource_version, "7");
    ZT_ASSERT (!zube_strategy_spec_changed (&next->base, old));
    zube_field_errors_t errors = {0};
    ZT_ASSERT_INT_EQ (zube_strategy_validate_update (kind, &next->base, old, &errors), 0);
    s_free (&next->base);

    //  Kinds without status: ConfigMap data changes are "spec" changes
    ProtobufCMessage *a = s_decode ("ConfigMap", "metadata:\n  name: a\ndata:\n  k: v\n");
    ProtobufCMessage *b = s_decode ("ConfigMap", "metadata:\n  name: b\ndata:\n  k: v\n");
    ProtobufCMessage *c = s_decode ("ConfigMap", "metadata:\n  name: a\ndata:\n  k: w\n");
    ZT_ASSERT (!zube_strategy_spec_changed (a, b));
    ZT_ASSERT (zube_strategy_spec_changed (a, c));
    ZT_ASSERT (zube_strategy_spec_changed (a, NULL));
    s_free (a);
    s_free (b);
    s_free (c);
    s_free (old);
}

int
main (void)
{
    ZT_RUN (test_field_errors);
    ZT_RUN (test_default_pod);
    ZT_RUN (test_default_workloads);
    ZT_RUN (test_default_other_kinds);
    ZT_RUN (test_validate_metadata);
    ZT_RUN (test_validate_pod);
    ZT_RUN (test_validate_workloads);
    ZT_RUN (test_validate_other_kinds);
    ZT_RUN (test_update_immutable);
    ZT_RUN (test_generation_and_status);
    return zt_done ();
}
