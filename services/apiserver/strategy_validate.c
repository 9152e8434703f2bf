/*  strategy_validate - Kubernetes' validation of the kinds zube stores.

    After k8s.io/kubernetes pkg/apis/core/validation, apps/validation,
    batch/validation and coordination/validation: the same rules where
    zube models the fields, the same field paths and the same messages
    (`spec.containers[0].image: Required value`, `metadata.name: Invalid
    value: "Web": a lowercase RFC 1123 subdomain must consist of ...`).
    A bad value Kubernetes prints through json.Marshal (a map, a
    selector) is printed here as compact JSON through the codec. */
#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strategy_private.h"
#include "zube/codec.h"
#include "zube/quantity.h"
#include "zube/selector.h"

typedef zube_field_errors_t s_errors_t;

//  ---------------------------------------------------------------------
//  Error helpers, one per field.ErrorType constructor

static void s_path (char *out, size_t size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  vsnprintf for the only conversions paths use (%s, %zu), several
//  times faster: every field validated formats its path, error or not.
//  Anything else goes to vsnprintf.
static void
s_path (char *out, size_t size, const char *format, ...)
{
    if (!size)
        return;
    va_list args;
    va_start (args, format);
    size_t at = 0;
    const char *f = format;
    for (; *f; f++) {
        if (*f != '%') {
            if (at + 1 < size)
                out[at++] = *f;
            continue;
        }
        if (f[1] == 's') {
            const char *text = va_arg (args, const char *);
            if (!text)
                text = "(null)";
            while (*text && at + 1 < size)
                out[at++] = *text++;
            f++;
        } else if (f[1] == 'z' && f[2] == 'u') {
            size_t value = va_arg (args, size_t);
            char digits[24];
            size_t n = 0;
            do {
                digits[n++] = (char)('0' + value % 10);
                value /= 10;
            } while (value);
            while (n && at + 1 < size)
                out[at++] = digits[--n];
            f += 2;
        } else
            break;
    }
    va_end (args);
    if (*f) {
        va_start (args, format);
        vsnprintf (out, size, format, args);
        va_end (args);
        return;
    }
    out[at] = 0;
}

//  Go's %q of a string (what Kubernetes prints for string bad values)
static const char *
s_quote (char *out, size_t size, const char *text)
{
    size_t n = 0;
    if (!text)
        text = "";
    if (size < 3)
        return "\"\"";
    out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 6 < size; p++) {
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (*p == '\t') {
            out[n++] = '\\';
            out[n++] = 't';
        } else if (*p < 0x20 || *p == 0x7f)
            n += (size_t)snprintf (out + n, size - n, "\\x%02x", *p);
        else
            out[n++] = (char)*p;
    }
    out[n++] = '"';
    out[n] = 0;
    return out;
}

static void
s_required (s_errors_t *e, const char *path, const char *detail)
{
    if (detail && *detail)
        zube_field_errors_add (e, "FieldValueRequired", path, "Required value: %s",
                               detail);
    else
        zube_field_errors_add (e, "FieldValueRequired", path, "Required value");
}

//  A bad value already rendered (a number, JSON)
static void
s_invalid_raw (s_errors_t *e, const char *path, const char *rendered, const char *detail)
{
    zube_field_errors_add (e, "FieldValueInvalid", path, "Invalid value: %s: %s",
                           rendered, detail);
}

static void
s_invalid (s_errors_t *e, const char *path, const char *value, const char *detail)
{
    char quoted[300];
    s_invalid_raw (e, path, s_quote (quoted, sizeof quoted, value), detail);
}

static void
s_invalid_int (s_errors_t *e, const char *path, long long value, const char *detail)
{
    char number[32];
    snprintf (number, sizeof number, "%lld", value);
    s_invalid_raw (e, path, number, detail);
}

//  supported: the values quoted and comma-joined ("\"A\", \"B\"")
static void
s_unsupported (s_errors_t *e, const char *path, const char *value, const char *supported)
{
    char quoted[300];
    zube_field_errors_add (e, "FieldValueNotSupported", path,
                           "Unsupported value: %s: supported values: %s",
                           s_quote (quoted, sizeof quoted, value), supported);
}

static void
s_forbidden (s_errors_t *e, const char *path, const char *detail)
{
    zube_field_errors_add (e, "FieldValueForbidden", path, "Forbidden: %s", detail);
}

static void
s_duplicate (s_errors_t *e, const char *path, const char *value)
{
    char quoted[300];
    zube_field_errors_add (e, "FieldValueDuplicate", path, "Duplicate value: %s",
                           s_quote (quoted, sizeof quoted, value));
}

static void
s_not_found (s_errors_t *e, const char *path, const char *value)
{
    char quoted[300];
    zube_field_errors_add (e, "FieldValueNotFound", path, "Not found: %s",
                           s_quote (quoted, sizeof quoted, value));
}

static void
s_too_long (s_errors_t *e, const char *path, long max)
{
    zube_field_errors_add (e, "FieldValueTooLong", path,
                           "Too long: may not be more than %ld bytes", max);
}

static bool
s_empty (const char *text)
{
    return !text || !*text;
}

static bool
s_equal (const char *a, const char *b)
{
    return strcmp (a ? a : "", b ? b : "") == 0;
}

static bool
s_one_of (const char *value, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (s_equal (value, *allowed))
            return true;
    return false;
}

//  The messages of a "; "-joined validator result, one Invalid each
typedef int (*s_name_fn) (const char *name, char *error, size_t size);

static void
s_invalid_each (s_errors_t *e, const char *path, const char *value, const char *messages)
{
    const char *at = messages;
    while (at && *at) {
        const char *end = strstr (at, "; ");
        char one[600];
        size_t len = end ? (size_t)(end - at) : strlen (at);
        if (len >= sizeof one)
            len = sizeof one - 1;
        memcpy (one, at, len);
        one[len] = 0;
        s_invalid (e, path, value, one);
        at = end ? end + 2 : NULL;
    }
}

static void
s_check_name (s_errors_t *e, const char *path, const char *value, s_name_fn fn)
{
    char messages[2048];
    if (fn (value ? value : "", messages, sizeof messages))
        s_invalid_each (e, path, value, messages);
}

//  DNS-1035 label (Service names): a letter first
static int
s_dns1035_label (const char *name, char *error, size_t size)
{
    size_t len = strlen (name);
    bool ok = len > 0 && name[0] >= 'a' && name[0] <= 'z' &&
              ((name[len - 1] >= 'a' && name[len - 1] <= 'z') ||
               (name[len - 1] >= '0' && name[len - 1] <= '9'));
    for (size_t i = 0; ok && i < len; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
             name[i] == '-';
    if (len <= 63 && ok)
        return 0;
    snprintf (
        error, size, "%s%s%s", len > 63 ? "must be no more than 63 characters" : "",
        len > 63 && !ok ? "; " : "",
        ok ? ""
           : "a lowercase RFC 1035 label must consist of lower case alphanumeric "
             "characters or '-', start with an alphabetic character, and end with an "
             "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
             "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
    return -1;
}

//  ValidateNonnegativeField
static void
s_nonnegative (s_errors_t *e, const char *path, protobuf_c_boolean has, long long value)
{
    if (has && value < 0)
        s_invalid_int (e, path, value, "must be greater than or equal to 0");
}

static void
s_port_num (s_errors_t *e, const char *path, long long port)
{
    if (port < 1 || port > 65535)
        s_invalid_int (e, path, port, "must be between 1 and 65535, inclusive");
}

//  IsValidPortName: every message that applies, one error each
static void
s_port_name (s_errors_t *e, const char *path, const char *name)
{
    size_t len = strlen (name);
    bool charset = len > 0, letter = false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            charset = false;
        if (c >= 'a' && c <= 'z')
            letter = true;
    }
    if (len > 15)
        s_invalid (e, path, name, "must be no more than 15 characters");
    if (!charset)
        s_invalid (
            e, path, name,
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    if (!letter)
        s_invalid (e, path, name, "must contain at least one letter (a-z)");
    if (strstr (name, "--"))
        s_invalid (e, path, name, "must not contain consecutive hyphens");
    if (len > 0 && (name[0] == '-' || name[len - 1] == '-'))
        s_invalid (e, path, name, "must not begin or end with a hyphen");
}

//  A map as json.Marshal writes it: keys sorted
typedef struct {
    const char *key;
    const char *value;
} s_pair_t;

static int
s_pair_cmp (const void *a, const void *b)
{
    return strcmp (((const s_pair_t *)a)->key, ((const s_pair_t *)b)->key);
}

static void
s_render_labels (const Zube__ObjectMeta *meta, char *out, size_t size)
{
    if (!meta || !meta->n_labels) {
        snprintf (out, size, "null");
        return;
    }
    s_pair_t *pairs = calloc (meta->n_labels, sizeof *pairs);
    if (!pairs) {
        snprintf (out, size, "{}");
        return;
    }
    for (size_t i = 0; i < meta->n_labels; i++)
        pairs[i] = (s_pair_t){meta->labels[i]->key ? meta->labels[i]->key : "",
                              meta->labels[i]->value ? meta->labels[i]->value : ""};
    qsort (pairs, meta->n_labels, sizeof *pairs, s_pair_cmp);
    size_t n = (size_t)snprintf (out, size, "{");
    for (size_t i = 0; i < meta->n_labels && n < size; i++) {
        char key[300], value[300];
        n += (size_t)snprintf (out + n, size - n, "%s%s:%s", i ? "," : "",
                               s_quote (key, sizeof key, pairs[i].key),
                               s_quote (value, sizeof value, pairs[i].value));
    }
    if (n < size)
        snprintf (out + n, size - n, "}");
    free (pairs);
}

//  A message as compact JSON (json.Marshal of a struct), or "null"
static void
s_render_message (const ProtobufCMessage *message, char *out, size_t size)
{
    char *json = message ? zube_codec_encode_json (message, false) : NULL;
    snprintf (out, size, "%s", json ? json : "null");
    free (json);
}

//  ---------------------------------------------------------------------
//  Metadata

//  ValidateLabels: keys as qualified names, values as label values; each
//  error on the map's own path
static void
s_validate_labels_entries (s_errors_t *e, const char *path, size_t count,
                           const char *(*key_at) (const void *, size_t),
                           const char *(*value_at) (const void *, size_t),
                           const void *map)
{
    for (size_t i = 0; i < count; i++) {
        const char *key = key_at (map, i);
        const char *value = value_at (map, i);
        s_check_name (e, path, key, zube_label_key_validate);
        s_check_name (e, path, value, zube_label_value_validate);
    }
}

static const char *
s_meta_label_key (const void *map, size_t i)
{
    return ((const Zube__ObjectMeta *)map)->labels[i]->key;
}

static const char *
s_meta_label_value (const void *map, size_t i)
{
    return ((const Zube__ObjectMeta *)map)->labels[i]->value;
}

static const char *
s_node_selector_key (const void *map, size_t i)
{
    return ((const Zube__PodSpec *)map)->node_selector[i]->key;
}

static const char *
s_node_selector_value (const void *map, size_t i)
{
    return ((const Zube__PodSpec *)map)->node_selector[i]->value;
}

static const char *
s_service_selector_key (const void *map, size_t i)
{
    return ((const Zube__ServiceSpec *)map)->selector[i]->key;
}

static const char *
s_service_selector_value (const void *map, size_t i)
{
    return ((const Zube__ServiceSpec *)map)->selector[i]->value;
}

static const char *
s_match_labels_key (const void *map, size_t i)
{
    return ((const Zube__LabelSelector *)map)->match_labels[i]->key;
}

static const char *
s_match_labels_value (const void *map, size_t i)
{
    return ((const Zube__LabelSelector *)map)->match_labels[i]->value;
}

#define S_ANNOTATIONS_LIMIT (256 * 1024)

static void
s_validate_annotations (s_errors_t *e, const char *path, const Zube__ObjectMeta *meta)
{
    size_t total = 0;
    for (size_t i = 0; i < meta->n_annotations; i++) {
        const char *key = meta->annotations[i]->key ? meta->annotations[i]->key : "";
        const char *value =
            meta->annotations[i]->value ? meta->annotations[i]->value : "";
        //  Case does not matter in annotation keys
        char lower[512];
        snprintf (lower, sizeof lower, "%s", key);
        for (char *c = lower; *c; c++)
            *c = (char)tolower ((unsigned char)*c);
        char messages[2048];
        if (zube_label_key_validate (lower, messages, sizeof messages))
            s_invalid_each (e, path, key, messages);
        total += strlen (key) + strlen (value);
    }
    if (total > S_ANNOTATIONS_LIMIT)
        s_too_long (e, path, S_ANNOTATIONS_LIMIT);
}

static bool
s_standard_finalizer (const char *name)
{
    return s_equal (name, "kubernetes") || s_equal (name, "orphan") ||
           s_equal (name, "foregroundDeletion");
}

static void
s_validate_finalizer (s_errors_t *e, const char *path, const char *name)
{
    char messages[2048];
    if (zube_label_key_validate (name, messages, sizeof messages)) {
        s_invalid_each (e, path, name, messages);
        return;
    }
    if (!s_standard_finalizer (name) && !strchr (name, '/'))
        s_invalid (e, path, name,
                   "name is neither a standard finalizer name nor is it fully qualified");
}

//  The name rule of a kind: Namespace a DNS-1123 label, Service a
//  DNS-1035 label, everything else a DNS-1123 subdomain
static s_name_fn
s_name_rule (const zube_kind_t *kind)
{
    if (strategy_is (kind, &zube__namespace__descriptor))
        return zube_dns1123_label_validate;
    if (strategy_is (kind, &zube__service__descriptor))
        return s_dns1035_label;
    return zube_dns1123_subdomain_validate;
}

static void
s_validate_meta (s_errors_t *e, const zube_kind_t *kind, const Zube__ObjectMeta *meta)
{
    if (!meta) {
        s_required (e, "metadata.name", "name or generateName is required");
        if (kind->namespaced)
            s_required (e, "metadata.namespace", NULL);
        return;
    }
    s_name_fn rule = s_name_rule (kind);
    if (!s_empty (meta->generate_name)) {
        //  A prefix may end in '-': check it as if it ended in 'a'
        char masked[300];
        snprintf (masked, sizeof masked, "%s", meta->generate_name);
        size_t len = strlen (masked);
        if (len > 1 && masked[len - 1] == '-')
            masked[len - 1] = 'a';
        char messages[2048];
        if (rule (masked, messages, sizeof messages))
            s_invalid_each (e, "metadata.generateName", meta->generate_name, messages);
    }
    if (s_empty (meta->name))
        s_required (e, "metadata.name", "name or generateName is required");
    else
        s_check_name (e, "metadata.name", meta->name, rule);
    if (kind->namespaced) {
        if (s_empty (meta->namespace_))
            s_required (e, "metadata.namespace", NULL);
        else
            s_check_name (e, "metadata.namespace", meta->namespace_,
                          zube_dns1123_label_validate);
    } else if (!s_empty (meta->namespace_))
        s_forbidden (e, "metadata.namespace", "not allowed on this type");
    s_nonnegative (e, "metadata.generation", meta->has_generation, meta->generation);
    s_validate_labels_entries (e, "metadata.labels", meta->n_labels, s_meta_label_key,
                               s_meta_label_value, meta);
    s_validate_annotations (e, "metadata.annotations", meta);
    for (size_t i = 0; i < meta->n_owner_references; i++) {
        const Zube__OwnerReference *ref = meta->owner_references[i];
        const char *version = ref->api_version ? strrchr (ref->api_version, '/') : NULL;
        version = version ? version + 1 : ref->api_version;
        if (s_empty (version))
            s_invalid (e, "metadata.ownerReferences.apiVersion", ref->api_version,
                       "version must not be empty");
        if (s_empty (ref->kind))
            s_invalid (e, "metadata.ownerReferences.kind", ref->kind,
                       "kind must not be empty");
        if (s_empty (ref->name))
            s_invalid (e, "metadata.ownerReferences.name", ref->name,
                       "name must not be empty");
        if (s_empty (ref->uid))
            s_invalid (e, "metadata.ownerReferences.uid", ref->uid,
                       "uid must not be empty");
    }
    for (size_t i = 0; i < meta->n_finalizers; i++)
        s_validate_finalizer (e, "metadata.finalizers", meta->finalizers[i]);
}

static void
s_immutable_string (s_errors_t *e, const char *path, const char *value, const char *old)
{
    if (!s_equal (value, old))
        s_invalid (e, path, value, "field is immutable");
}

static void
s_validate_meta_update (s_errors_t *e, const Zube__ObjectMeta *meta,
                        const Zube__ObjectMeta *old)
{
    if (!meta || !old)
        return;
    s_immutable_string (e, "metadata.name", meta->name, old->name);
    s_immutable_string (e, "metadata.namespace", meta->namespace_, old->namespace_);
    s_immutable_string (e, "metadata.uid", meta->uid, old->uid);
    s_immutable_string (e, "metadata.creationTimestamp", meta->creation_timestamp,
                        old->creation_timestamp);
}

//  ---------------------------------------------------------------------
//  Label selectors (ValidateLabelSelector)

static void
s_validate_label_selector (s_errors_t *e, const char *path,
                           const Zube__LabelSelector *sel)
{
    if (!sel)
        return;
    char p[256];
    for (size_t i = 0; i < sel->n_match_expressions; i++) {
        const Zube__LabelSelectorRequirement *r = sel->match_expressions[i];
        const char *op = r->operator_;
        if (s_equal (op, "In") || s_equal (op, "NotIn")) {
            if (r->n_values == 0) {
                s_path (p, sizeof p, "%s.matchExpressions[%zu].values", path, i);
                s_required (e, p, "must be specified when `operator` is 'In' or 'NotIn'");
            }
        } else if (s_equal (op, "Exists") || s_equal (op, "DoesNotExist")) {
            if (r->n_values > 0) {
                s_path (p, sizeof p, "%s.matchExpressions[%zu].values", path, i);
                s_forbidden (e, p,
                             "may not be specified when `operator` is 'Exists' or "
                             "'DoesNotExist'");
            }
        } else {
            s_path (p, sizeof p, "%s.matchExpressions[%zu].operator", path, i);
            s_invalid (e, p, op, "not a valid selector operator");
        }
        s_path (p, sizeof p, "%s.matchExpressions[%zu].key", path, i);
        s_check_name (e, p, r->key, zube_label_key_validate);
        for (size_t v = 0; v < r->n_values; v++) {
            s_path (p, sizeof p, "%s.matchExpressions[%zu].values[%zu]", path, i, v);
            s_check_name (e, p, r->values[v], zube_label_value_validate);
        }
    }
    s_path (p, sizeof p, "%s.matchLabels", path);
    s_validate_labels_entries (e, p, sel->n_match_labels, s_match_labels_key,
                               s_match_labels_value, sel);
}

//  ---------------------------------------------------------------------
//  Pods

static const char *const s_protocols[] = {"SCTP", "TCP", "UDP", NULL};
#define S_PROTOCOLS "\"SCTP\", \"TCP\", \"UDP\""

static void
s_validate_quantity (s_errors_t *e, const char *path, const char *name,
                     const Zube__Quantity *q, int64_t *milli_p)
{
    int64_t milli = q ? q->milli_value : 0;
    if (q && q->string) {
        char detail[256];
        if (zube_quantity_parse (q->string, &milli, detail, sizeof detail)) {
            s_invalid (e, path, q->string,
                       "quantities must match the regular expression "
                       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
            milli = 0;
        }
    }
    *milli_p = milli;
    char shown[64];
    zube_quantity_format (milli, q && q->string && strchr (q->string, 'i'), shown,
                          sizeof shown);
    if (milli < 0)
        s_invalid (e, path, shown, "must be greater than or equal to 0");
    //  Extended resources count whole things
    bool native = !strchr (name, '/') || strstr (name, "kubernetes.io/");
    if (!native && milli % 1000 != 0)
        s_invalid (e, path, shown, "must be an integer");
}

static bool
s_native_resource (const char *name)
{
    return !strchr (name, '/') || strstr (name, "kubernetes.io/") != NULL;
}

static bool
s_hugepages (const char *name)
{
    return strncmp (name, "hugepages-", 10) == 0;
}

static void
s_validate_resource_name (s_errors_t *e, const char *path, const char *name)
{
    if (!strchr (name, '/')) {
        if (!s_equal (name, "cpu") && !s_equal (name, "memory") &&
            !s_equal (name, "ephemeral-storage") && !s_hugepages (name))
            s_invalid (e, path, name, "must be a standard resource for containers");
    } else if (!s_native_resource (name)) {
        char messages[2048];
        if (zube_label_key_validate (name, messages, sizeof messages))
            s_invalid (e, path, name, "doesn't follow extended resource name standard");
    }
}

static const Zube__Quantity *
s_limit (const Zube__ResourceRequirements *r, const char *name)
{
    for (size_t i = 0; i < r->n_limits; i++)
        if (s_equal (r->limits[i]->key, name))
            return r->limits[i]->value;
    return NULL;
}

static void
s_validate_resources (s_errors_t *e, const char *path,
                      const Zube__ResourceRequirements *r)
{
    if (!r)
        return;
    char p[256], req_path[256], lim_path[256];
    s_path (req_path, sizeof req_path, "%s.requests", path);
    s_path (lim_path, sizeof lim_path, "%s.limits", path);
    for (size_t i = 0; i < r->n_limits; i++) {
        const char *name = r->limits[i]->key ? r->limits[i]->key : "";
        s_path (p, sizeof p, "%s.limits[%s]", path, name);
        s_validate_resource_name (e, p, name);
        int64_t milli;
        s_validate_quantity (e, p, name, r->limits[i]->value, &milli);
    }
    for (size_t i = 0; i < r->n_requests; i++) {
        const char *name = r->requests[i]->key ? r->requests[i]->key : "";
        s_path (p, sizeof p, "%s.requests[%s]", path, name);
        s_validate_resource_name (e, p, name);
        int64_t request;
        s_validate_quantity (e, p, name, r->requests[i]->value, &request);
        const Zube__Quantity *limit_q = s_limit (r, name);
        bool overcommit = s_native_resource (name) && !s_hugepages (name);
        if (limit_q) {
            int64_t limit;
            s_errors_t scratch; //  only its count is read: no 25 KiB memset
            scratch.count = 0;
            s_validate_quantity (&scratch, p, name, limit_q, &limit);
            char shown[64], limit_shown[64], detail[256];
            zube_quantity_format (request,
                                  r->requests[i]->value &&
                                      r->requests[i]->value->string &&
                                      strchr (r->requests[i]->value->string, 'i'),
                                  shown, sizeof shown);
            zube_quantity_format (limit, limit_q->string && strchr (limit_q->string, 'i'),
                                  limit_shown, sizeof limit_shown);
            if (request != limit && !overcommit) {
                s_path (detail, sizeof detail, "must be equal to %s limit of %s", name,
                        limit_shown);
                s_invalid (e, req_path, shown, detail);
            } else if (request > limit) {
                s_path (detail, sizeof detail,
                        "must be less than or equal to %s limit of %s", name,
                        limit_shown);
                s_invalid (e, req_path, shown, detail);
            }
        } else if (!overcommit)
            s_required (e, lim_path,
                        "Limit must be set for non overcommitable resources");
    }
}

static void
s_validate_env_name (s_errors_t *e, const char *path, const char *name)
{
    bool ok = !s_empty (name) && !(name[0] >= '0' && name[0] <= '9');
    for (const char *c = name; ok && *c; c++)
        ok = isalnum ((unsigned char)*c) || *c == '_' || *c == '-' || *c == '.';
    if (!ok)
        s_invalid (
            e, path, name,
            "a valid environment variable name must consist of alphabetic characters, "
            "digits, '_', '-', or '.', and must not start with a digit (e.g. "
            "'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
            "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')");
    if (s_equal (name, "."))
        s_invalid (e, path, name, "must not be '.'");
    else if (s_equal (name, ".."))
        s_invalid (e, path, name, "must not be '..'");
    else if (name && strncmp (name, "..", 2) == 0)
        s_invalid (e, path, name, "must not start with '..'");
}

static void
s_validate_probe (s_errors_t *e, const char *path, const Zube__Probe *probe,
                  bool success_one)
{
    if (!probe)
        return;
    char p[256];
    int handlers = (probe->exec != NULL) + (probe->http_get != NULL) +
                   (probe->tcp_socket != NULL) + (probe->grpc != NULL);
    if (handlers == 0)
        s_required (e, path, "must specify a handler type");
    else if (handlers > 1) {
        s_path (p, sizeof p, "%s.%s", path,
                probe->grpc ? "grpc" : (probe->tcp_socket ? "tcpSocket" : "httpGet"));
        s_forbidden (e, p, "may not specify more than 1 handler type");
    }
    s_path (p, sizeof p, "%s.initialDelaySeconds", path);
    s_nonnegative (e, p, probe->has_initial_delay_seconds, probe->initial_delay_seconds);
    s_path (p, sizeof p, "%s.timeoutSeconds", path);
    s_nonnegative (e, p, probe->has_timeout_seconds, probe->timeout_seconds);
    s_path (p, sizeof p, "%s.periodSeconds", path);
    s_nonnegative (e, p, probe->has_period_seconds, probe->period_seconds);
    s_path (p, sizeof p, "%s.successThreshold", path);
    s_nonnegative (e, p, probe->has_success_threshold, probe->success_threshold);
    if (success_one && probe->has_success_threshold && probe->success_threshold != 1)
        s_invalid_int (e, p, probe->success_threshold, "must be 1");
    s_path (p, sizeof p, "%s.failureThreshold", path);
    s_nonnegative (e, p, probe->has_failure_threshold, probe->failure_threshold);
}

static bool
s_has_volume (const Zube__PodSpec *spec, const char *name)
{
    for (size_t i = 0; i < spec->n_volumes; i++)
        if (s_equal (spec->volumes[i]->name, name))
            return true;
    return false;
}

static void
s_validate_container (s_errors_t *e, const char *path, const Zube__Container *c,
                      const Zube__PodSpec *spec, bool is_pod)
{
    char p[256];
    s_path (p, sizeof p, "%s.name", path);
    if (s_empty (c->name))
        s_required (e, p, NULL);
    else
        s_check_name (e, p, c->name, zube_dns1123_label_validate);
    s_path (p, sizeof p, "%s.image", path);
    if (s_empty (c->image))
        s_required (e, p, NULL);
    else if (is_pod && (isspace ((unsigned char)c->image[0]) ||
                        isspace ((unsigned char)c->image[strlen (c->image) - 1])))
        s_invalid (e, p, c->image, "must not have leading or trailing whitespace");
    s_path (p, sizeof p, "%s.imagePullPolicy", path);
    if (s_empty (c->image_pull_policy))
        s_required (e, p, NULL);
    else if (!s_one_of (c->image_pull_policy,
                        (const char *const[]){"Always", "IfNotPresent", "Never", NULL}))
        s_unsupported (e, p, c->image_pull_policy,
                       "\"Always\", \"IfNotPresent\", \"Never\"");
    s_path (p, sizeof p, "%s.terminationMessagePolicy", path);
    if (!s_empty (c->termination_message_policy) &&
        !s_one_of (c->termination_message_policy,
                   (const char *const[]){"File", "FallbackToLogsOnError", NULL}))
        s_unsupported (e, p, c->termination_message_policy,
                       "\"FallbackToLogsOnError\", \"File\"");

    for (size_t i = 0; i < c->n_ports; i++) {
        const Zube__ContainerPort *port = c->ports[i];
        if (!s_empty (port->name)) {
            s_errors_t scratch; //  only its count is read: no 25 KiB memset
            scratch.count = 0;
            s_path (p, sizeof p, "%s.ports[%zu].name", path, i);
            s_port_name (&scratch, p, port->name);
            if (scratch.count)
                s_port_name (e, p, port->name);
            else
                for (size_t j = 0; j < i; j++)
                    if (s_equal (c->ports[j]->name, port->name)) {
                        s_duplicate (e, p, port->name);
                        break;
                    }
        }
        s_path (p, sizeof p, "%s.ports[%zu].containerPort", path, i);
        if (!port->has_container_port || port->container_port == 0)
            s_required (e, p, NULL);
        else
            s_port_num (e, p, port->container_port);
        if (port->has_host_port && port->host_port != 0) {
            s_path (p, sizeof p, "%s.ports[%zu].hostPort", path, i);
            s_port_num (e, p, port->host_port);
        }
        s_path (p, sizeof p, "%s.ports[%zu].protocol", path, i);
        if (s_empty (port->protocol))
            s_required (e, p, NULL);
        else if (!s_one_of (port->protocol, s_protocols))
            s_unsupported (e, p, port->protocol, S_PROTOCOLS);
    }
    for (size_t i = 0; i < c->n_env; i++) {
        s_path (p, sizeof p, "%s.env[%zu].name", path, i);
        if (s_empty (c->env[i]->name))
            s_required (e, p, NULL);
        else
            s_validate_env_name (e, p, c->env[i]->name);
    }
    s_path (p, sizeof p, "%s.resources", path);
    s_validate_resources (e, p, c->resources);
    for (size_t i = 0; i < c->n_volume_mounts; i++) {
        const Zube__VolumeMount *m = c->volume_mounts[i];
        s_path (p, sizeof p, "%s.volumeMounts[%zu].name", path, i);
        if (s_empty (m->name))
            s_required (e, p, NULL);
        else if (!s_has_volume (spec, m->name))
            s_not_found (e, p, m->name);
        s_path (p, sizeof p, "%s.volumeMounts[%zu].mountPath", path, i);
        if (s_empty (m->mount_path))
            s_required (e, p, NULL);
    }
    s_path (p, sizeof p, "%s.livenessProbe", path);
    s_validate_probe (e, p, c->liveness_probe, true);
    s_path (p, sizeof p, "%s.readinessProbe", path);
    s_validate_probe (e, p, c->readiness_probe, false);
    s_path (p, sizeof p, "%s.startupProbe", path);
    s_validate_probe (e, p, c->startup_probe, true);
}

static void
s_validate_volumes (s_errors_t *e, const char *path, const Zube__PodSpec *spec)
{
    char p[256];
    for (size_t i = 0; i < spec->n_volumes; i++) {
        const Zube__Volume *v = spec->volumes[i];
        s_path (p, sizeof p, "%s.volumes[%zu].name", path, i);
        if (s_empty (v->name))
            s_required (e, p, NULL);
        else {
            s_check_name (e, p, v->name, zube_dns1123_label_validate);
            for (size_t j = 0; j < i; j++)
                if (s_equal (spec->volumes[j]->name, v->name)) {
                    s_duplicate (e, p, v->name);
                    break;
                }
        }
        const struct {
            const void *source;
            const char *name;
        } sources[] = {
            {v->host_path, "hostPath"},
            {v->empty_dir, "emptyDir"},
            {v->secret, "secret"},
            {v->persistent_volume_claim, "persistentVolumeClaim"},
            {v->downward_api, "downwardAPI"},
            {v->config_map, "configMap"},
            {v->projected, "projected"},
        };
        int count = 0;
        for (size_t s = 0; s < sizeof sources / sizeof sources[0]; s++) {
            if (!sources[s].source)
                continue;
            if (++count == 2) {
                s_path (p, sizeof p, "%s.volumes[%zu].%s", path, i, sources[s].name);
                s_forbidden (e, p, "may not specify more than 1 volume type");
            }
        }
        if (count == 0) {
            s_path (p, sizeof p, "%s.volumes[%zu]", path, i);
            s_required (e, p, "must specify a volume type");
        }
    }
}

static void
s_validate_tolerations (s_errors_t *e, const char *path, const Zube__PodSpec *spec)
{
    char p[256];
    for (size_t i = 0; i < spec->n_tolerations; i++) {
        const Zube__Toleration *t = spec->tolerations[i];
        if (!s_empty (t->key)) {
            s_path (p, sizeof p, "%s.tolerations[%zu].key", path, i);
            s_check_name (e, p, t->key, zube_label_key_validate);
        }
        s_path (p, sizeof p, "%s.tolerations[%zu].operator", path, i);
        if (s_empty (t->key) && !s_equal (t->operator_, "Exists"))
            s_invalid (
                e, p, t->operator_ ? t->operator_ : "",
                "operator must be Exists when `key` is empty, which means \"match all "
                "values and all keys\"");
        if (s_equal (t->operator_, "Exists")) {
            if (!s_empty (t->value))
                s_invalid (e, p, t->operator_,
                           "value must be empty when `operator` is 'Exists'");
        } else if (s_empty (t->operator_) || s_equal (t->operator_, "Equal")) {
            s_path (p, sizeof p, "%s.tolerations[%zu].value", path, i);
            s_check_name (e, p, t->value, zube_label_value_validate);
        } else
            s_unsupported (e, p, t->operator_, "\"Equal\", \"Exists\"");
        s_path (p, sizeof p, "%s.tolerations[%zu].effect", path, i);
        if (!s_empty (t->effect) &&
            !s_one_of (t->effect, (const char *const[]){"NoSchedule", "PreferNoSchedule",
                                                        "NoExecute", NULL}))
            s_unsupported (e, p, t->effect,
                           "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"");
        if (t->has_toleration_seconds && !s_equal (t->effect, "NoExecute"))
            s_invalid (e, p, t->effect ? t->effect : "",
                       "effect must be 'NoExecute' when `tolerationSeconds` is set");
    }
}

static void
s_validate_pod_spec (s_errors_t *e, const char *path, const Zube__PodSpec *spec,
                     bool is_pod)
{
    char p[256];
    if (!spec) {
        s_path (p, sizeof p, "%s.containers", path);
        s_required (e, p, NULL);
        return;
    }
    s_validate_volumes (e, path, spec);
    if (spec->n_containers == 0) {
        s_path (p, sizeof p, "%s.containers", path);
        s_required (e, p, NULL);
    }
    for (size_t i = 0; i < spec->n_init_containers; i++) {
        s_path (p, sizeof p, "%s.initContainers[%zu]", path, i);
        s_validate_container (e, p, spec->init_containers[i], spec, is_pod);
        for (size_t j = 0; j < i; j++)
            if (!s_empty (spec->init_containers[i]->name) &&
                s_equal (spec->init_containers[j]->name,
                         spec->init_containers[i]->name)) {
                s_path (p, sizeof p, "%s.initContainers[%zu].name", path, i);
                s_duplicate (e, p, spec->init_containers[i]->name);
                break;
            }
    }
    for (size_t i = 0; i < spec->n_containers; i++) {
        const Zube__Container *c = spec->containers[i];
        s_path (p, sizeof p, "%s.containers[%zu]", path, i);
        s_validate_container (e, p, c, spec, is_pod);
        bool duplicate = false;
        for (size_t j = 0;
             !s_empty (c->name) && j < spec->n_init_containers && !duplicate; j++)
            duplicate = s_equal (spec->init_containers[j]->name, c->name);
        for (size_t j = 0; !s_empty (c->name) && j < i && !duplicate; j++)
            duplicate = s_equal (spec->containers[j]->name, c->name);
        if (duplicate) {
            s_path (p, sizeof p, "%s.containers[%zu].name", path, i);
            s_duplicate (e, p, c->name);
        }
    }
    s_path (p, sizeof p, "%s.restartPolicy", path);
    if (s_empty (spec->restart_policy))
        s_required (e, p, NULL);
    else if (!s_one_of (spec->restart_policy,
                        (const char *const[]){"Always", "OnFailure", "Never", NULL}))
        s_unsupported (e, p, spec->restart_policy,
                       "\"Always\", \"OnFailure\", \"Never\"");
    s_path (p, sizeof p, "%s.dnsPolicy", path);
    if (s_empty (spec->dns_policy))
        s_required (e, p, NULL);
    else if (!s_one_of (spec->dns_policy,
                        (const char *const[]){"ClusterFirst", "ClusterFirstWithHostNet",
                                              "Default", "None", NULL}))
        s_unsupported (
            e, p, spec->dns_policy,
            "\"ClusterFirst\", \"ClusterFirstWithHostNet\", \"Default\", \"None\"");
    s_path (p, sizeof p, "%s.nodeSelector", path);
    s_validate_labels_entries (e, p, spec->n_node_selector, s_node_selector_key,
                               s_node_selector_value, spec);
    if (!s_empty (spec->service_account_name)) {
        s_path (p, sizeof p, "%s.serviceAccountName", path);
        s_check_name (e, p, spec->service_account_name, zube_dns1123_subdomain_validate);
    }
    if (!s_empty (spec->node_name)) {
        s_path (p, sizeof p, "%s.nodeName", path);
        s_check_name (e, p, spec->node_name, zube_dns1123_subdomain_validate);
    }
    if (!s_empty (spec->hostname)) {
        s_path (p, sizeof p, "%s.hostname", path);
        s_check_name (e, p, spec->hostname, zube_dns1123_label_validate);
    }
    if (!s_empty (spec->subdomain)) {
        s_path (p, sizeof p, "%s.subdomain", path);
        s_check_name (e, p, spec->subdomain, zube_dns1123_label_validate);
    }
    if (spec->has_active_deadline_seconds &&
        (spec->active_deadline_seconds < 1 ||
         spec->active_deadline_seconds > 2147483647)) {
        s_path (p, sizeof p, "%s.activeDeadlineSeconds", path);
        s_invalid_int (e, p, spec->active_deadline_seconds,
                       "must be between 1 and 2147483647, inclusive");
    }
    s_path (p, sizeof p, "%s.terminationGracePeriodSeconds", path);
    s_nonnegative (e, p, spec->has_termination_grace_period_seconds,
                   spec->termination_grace_period_seconds);
    s_validate_tolerations (e, path, spec);
    if (!s_empty (spec->preemption_policy) &&
        !s_one_of (spec->preemption_policy,
                   (const char *const[]){"Never", "PreemptLowerPriority", NULL})) {
        s_path (p, sizeof p, "%s.preemptionPolicy", path);
        s_unsupported (e, p, spec->preemption_policy,
                       "\"Never\", \"PreemptLowerPriority\"");
    }
}

//  ValidatePodTemplateSpec: labels and annotations, then the pod spec
static void
s_validate_template (s_errors_t *e, const char *path,
                     const Zube__PodTemplateSpec *template)
{
    char p[256];
    if (!template) {
        s_required (e, path, NULL);
        return;
    }
    if (template->metadata) {
        s_path (p, sizeof p, "%s.labels", path);
        s_validate_labels_entries (e, p, template->metadata->n_labels, s_meta_label_key,
                                   s_meta_label_value, template->metadata);
        s_path (p, sizeof p, "%s.annotations", path);
        s_validate_annotations (e, p, template->metadata);
    }
    s_path (p, sizeof p, "%s.spec", path);
    s_validate_pod_spec (e, p, template->spec, false);
}

static void
s_validate_pod (s_errors_t *e, const Zube__Pod *pod)
{
    s_validate_pod_spec (e, "spec", pod->spec, true);
}

static bool
s_toleration_equal (const Zube__Toleration *a, const Zube__Toleration *b)
{
    return s_equal (a->key, b->key) && s_equal (a->operator_, b->operator_) &&
           s_equal (a->value, b->value) && s_equal (a->effect, b->effect);
}

static void
s_validate_pod_update (s_errors_t *e, const Zube__Pod *pod, const Zube__Pod *old)
{
    const Zube__PodSpec *spec = pod->spec, *old_spec = old->spec;
    if (!spec || !old_spec)
        return;
    //  activeDeadlineSeconds may be set or lowered, never raised or unset
    if (spec->has_active_deadline_seconds) {
        if (old_spec->has_active_deadline_seconds &&
            old_spec->active_deadline_seconds < spec->active_deadline_seconds)
            s_invalid_int (e, "spec.activeDeadlineSeconds", spec->active_deadline_seconds,
                           "must be less than or equal to previous value");
    } else if (old_spec->has_active_deadline_seconds)
        s_invalid_raw (e, "spec.activeDeadlineSeconds", "null",
                       "must not update from a positive integer to nil value");
    //  Existing tolerations stay (their tolerationSeconds may change)
    for (size_t i = 0; i < old_spec->n_tolerations; i++) {
        bool kept = false;
        for (size_t j = 0; j < spec->n_tolerations && !kept; j++)
            kept = s_toleration_equal (old_spec->tolerations[i], spec->tolerations[j]);
        if (!kept) {
            s_forbidden (e, "spec.tolerations",
                         "existing toleration can not be modified except its "
                         "tolerationSeconds");
            break;
        }
    }
    //  Everything else of the spec: the new one with the mutable fields
    //  put back to their old values must equal the old one
    Zube__PodSpec *copy = (Zube__PodSpec *)strategy_message_copy (&spec->base);
    if (!copy)
        return;
    if (copy->n_containers == old_spec->n_containers)
        for (size_t i = 0; i < copy->n_containers; i++)
            strategy_set_string (&copy->containers[i]->image,
                                 old_spec->containers[i]->image);
    if (copy->n_init_containers == old_spec->n_init_containers)
        for (size_t i = 0; i < copy->n_init_containers; i++)
            strategy_set_string (&copy->init_containers[i]->image,
                                 old_spec->init_containers[i]->image);
    copy->has_active_deadline_seconds = old_spec->has_active_deadline_seconds;
    copy->active_deadline_seconds = old_spec->active_deadline_seconds;
    if (old_spec->has_termination_grace_period_seconds &&
        old_spec->termination_grace_period_seconds < 0 &&
        copy->has_termination_grace_period_seconds &&
        copy->termination_grace_period_seconds == 1)
        copy->termination_grace_period_seconds =
            old_spec->termination_grace_period_seconds;
    //  Tolerations: compared above
    Zube__Toleration **tolerations = copy->tolerations;
    size_t n_tolerations = copy->n_tolerations;
    copy->tolerations = old_spec->tolerations;
    copy->n_tolerations = old_spec->n_tolerations;
    size_t a = protobuf_c_message_get_packed_size (&copy->base);
    size_t b = protobuf_c_message_get_packed_size (&old_spec->base);
    bool same = false;
    if (a == b) {
        uint8_t *pa = malloc (a ? a : 1), *pb = malloc (b ? b : 1);
        if (pa && pb) {
            protobuf_c_message_pack (&copy->base, pa);
            protobuf_c_message_pack (&old_spec->base, pb);
            same = memcmp (pa, pb, a) == 0;
        }
        free (pa);
        free (pb);
    }
    copy->tolerations = tolerations;
    copy->n_tolerations = n_tolerations;
    protobuf_c_message_free_unpacked (&copy->base, NULL);
    if (!same)
        s_forbidden (
            e, "spec",
            "pod updates may not change fields other than "
            "`spec.containers[*].image`,`spec.initContainers[*].image`,"
            "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
            "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
            "be set to 1 if it was previously negative)");
}

//  ---------------------------------------------------------------------
//  Workloads

//  IntOrString as json.Marshal prints it
static void
s_render_int_or_string (const Zube__IntOrString *v, char *out, size_t size)
{
    char quoted[128];
    if (!v)
        snprintf (out, size, "null");
    else if (v->str_val)
        snprintf (out, size, "%s", s_quote (quoted, sizeof quoted, v->str_val));
    else
        snprintf (out, size, "%d", v->has_int_val ? v->int_val : 0);
}

//  The value of an int-or-percent (percent as its number), -1 if invalid
static long
s_int_or_percent (const Zube__IntOrString *v, bool *percent_p)
{
    *percent_p = false;
    if (!v)
        return 0;
    if (!v->str_val)
        return v->has_int_val ? v->int_val : 0;
    size_t len = strlen (v->str_val);
    if (len < 2 || v->str_val[len - 1] != '%')
        return -1;
    for (size_t i = 0; i + 1 < len; i++)
        if (!isdigit ((unsigned char)v->str_val[i]))
            return -1;
    *percent_p = true;
    return strtol (v->str_val, NULL, 10);
}

static void
s_validate_int_or_percent (s_errors_t *e, const char *path, const Zube__IntOrString *v)
{
    if (!v)
        return;
    char shown[160];
    s_render_int_or_string (v, shown, sizeof shown);
    bool percent;
    long value = s_int_or_percent (v, &percent);
    if (v->str_val && value < 0)
        s_invalid_raw (
            e, path, shown,
            "a valid percent string must be a numeric string followed by an ending "
            "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
    else if (!v->str_val && value < 0)
        s_invalid_raw (e, path, shown, "must be greater than or equal to 0");
}

static void
s_validate_rolling (s_errors_t *e, const char *path,
                    const Zube__IntOrString *max_unavailable,
                    const Zube__IntOrString *max_surge)
{
    char p[256], shown[160];
    s_path (p, sizeof p, "%s.maxUnavailable", path);
    s_validate_int_or_percent (e, p, max_unavailable);
    char surge_path[256];
    s_path (surge_path, sizeof surge_path, "%s.maxSurge", path);
    s_validate_int_or_percent (e, surge_path, max_surge);
    bool percent_u, percent_s;
    long unavailable = s_int_or_percent (max_unavailable, &percent_u);
    long surge = s_int_or_percent (max_surge, &percent_s);
    s_render_int_or_string (max_unavailable, shown, sizeof shown);
    if (unavailable == 0 && surge == 0)
        s_invalid_raw (e, p, shown, "may not be 0 when `maxSurge` is 0");
    if (percent_u && unavailable > 100)
        s_invalid_raw (e, p, shown, "must not be greater than 100%");
}

//  Selector present and not empty, valid, and matching the template's
//  labels; the template itself; restartPolicy as the kind wants it
static void
s_validate_workload (s_errors_t *e, const Zube__LabelSelector *selector,
                     const Zube__PodTemplateSpec *template, const char *empty_message,
                     const char *kind_name, bool always_restart)
{
    char shown[1024], detail[128];
    if (!selector)
        s_required (e, "spec.selector", NULL);
    else {
        s_validate_label_selector (e, "spec.selector", selector);
        if (selector->n_match_labels + selector->n_match_expressions == 0) {
            s_render_message (&selector->base, shown, sizeof shown);
            s_invalid_raw (e, "spec.selector", shown, empty_message);
        }
    }
    if (!template) {
        s_required (e, "spec.template", NULL);
        return;
    }
    zube_selector_t *sel = NULL;
    if (selector && selector->n_match_labels + selector->n_match_expressions &&
        zube_selector_from_message (selector, &sel, NULL, 0) == 0) {
        if (!zube_selector_matches_meta (sel, template->metadata)) {
            s_render_labels (template->metadata, shown, sizeof shown);
            s_invalid_raw (e, "spec.template.metadata.labels", shown,
                           "`selector` does not match template `labels`");
        }
        zube_selector_destroy (&sel);
    }
    s_validate_template (e, "spec.template", template);
    const Zube__PodSpec *spec = template->spec;
    if (!spec)
        return;
    if (always_restart) {
        if (!s_equal (spec->restart_policy, "Always"))
            s_unsupported (e, "spec.template.spec.restartPolicy", spec->restart_policy,
                           "\"Always\"");
        if (spec->has_active_deadline_seconds) {
            s_path (detail, sizeof detail, "activeDeadlineSeconds in %s is not Supported",
                    kind_name);
            s_forbidden (e, "spec.template.spec.activeDeadlineSeconds", detail);
        }
    } else if (!s_equal (spec->restart_policy, "OnFailure") &&
               !s_equal (spec->restart_policy, "Never"))
        s_unsupported (e, "spec.template.spec.restartPolicy", spec->restart_policy,
                       "\"OnFailure\", \"Never\"");
}

static void
s_validate_deployment (s_errors_t *e, const Zube__Deployment *d)
{
    const Zube__DeploymentSpec *spec = d->spec;
    if (!spec) {
        s_required (e, "spec.selector", NULL);
        s_required (e, "spec.template", NULL);
        return;
    }
    s_nonnegative (e, "spec.replicas", spec->has_replicas, spec->replicas);
    s_validate_workload (e, spec->selector, spec->template_,
                         "empty selector is invalid for deployment", "ReplicaSet", true);
    const Zube__DeploymentStrategy *strategy = spec->strategy;
    if (strategy) {
        if (s_equal (strategy->type, "Recreate")) {
            if (strategy->rolling_update)
                s_forbidden (e, "spec.strategy.rollingUpdate",
                             "may not be specified when strategy `type` is 'Recreate'");
        } else if (s_equal (strategy->type, "RollingUpdate")) {
            if (!strategy->rolling_update)
                s_required (e, "spec.strategy.rollingUpdate",
                            "this should be defaulted and never be nil");
            else
                s_validate_rolling (e, "spec.strategy.rollingUpdate",
                                    strategy->rolling_update->max_unavailable,
                                    strategy->rolling_update->max_surge);
        } else
            s_unsupported (e, "spec.strategy.type", strategy->type,
                           "\"Recreate\", \"RollingUpdate\"");
    }
    s_nonnegative (e, "spec.minReadySeconds", spec->has_min_ready_seconds,
                   spec->min_ready_seconds);
    s_nonnegative (e, "spec.revisionHistoryLimit", spec->has_revision_history_limit,
                   spec->revision_history_limit);
    if (spec->has_progress_deadline_seconds) {
        s_nonnegative (e, "spec.progressDeadlineSeconds", true,
                       spec->progress_deadline_seconds);
        if (spec->progress_deadline_seconds <=
            (spec->has_min_ready_seconds ? spec->min_ready_seconds : 0))
            s_invalid_int (e, "spec.progressDeadlineSeconds",
                           spec->progress_deadline_seconds,
                           "must be greater than minReadySeconds");
    }
}

static void
s_validate_replica_set (s_errors_t *e, const Zube__ReplicaSet *rs)
{
    const Zube__ReplicaSetSpec *spec = rs->spec;
    if (!spec) {
        s_required (e, "spec.selector", NULL);
        s_required (e, "spec.template", NULL);
        return;
    }
    s_nonnegative (e, "spec.replicas", spec->has_replicas, spec->replicas);
    s_nonnegative (e, "spec.minReadySeconds", spec->has_min_ready_seconds,
                   spec->min_ready_seconds);
    s_validate_workload (e, spec->selector, spec->template_,
                         "empty selector is invalid for deployment", "ReplicaSet", true);
}

static void
s_validate_daemon_set (s_errors_t *e, const Zube__DaemonSet *ds)
{
    const Zube__DaemonSetSpec *spec = ds->spec;
    if (!spec) {
        s_required (e, "spec.selector", NULL);
        s_required (e, "spec.template", NULL);
        return;
    }
    s_validate_workload (e, spec->selector, spec->template_,
                         "empty selector is invalid for daemonset", "DaemonSet", true);
    s_nonnegative (e, "spec.minReadySeconds", spec->has_min_ready_seconds,
                   spec->min_ready_seconds);
    s_nonnegative (e, "spec.revisionHistoryLimit", spec->has_revision_history_limit,
                   spec->revision_history_limit);
    const Zube__DaemonSetUpdateStrategy *strategy = spec->update_strategy;
    if (strategy) {
        if (s_equal (strategy->type, "RollingUpdate")) {
            if (!strategy->rolling_update)
                s_required (e, "spec.updateStrategy.rollingUpdate", NULL);
            else
                s_validate_rolling (e, "spec.updateStrategy.rollingUpdate",
                                    strategy->rolling_update->max_unavailable,
                                    strategy->rolling_update->max_surge);
        } else if (!s_equal (strategy->type, "OnDelete"))
            s_unsupported (e, "spec.updateStrategy.type", strategy->type,
                           "\"OnDelete\", \"RollingUpdate\"");
    }
}

static void
s_validate_job (s_errors_t *e, const Zube__Job *job)
{
    const Zube__JobSpec *spec = job->spec;
    if (!spec) {
        s_required (e, "spec.selector", NULL);
        s_required (e, "spec.template", NULL);
        return;
    }
    s_nonnegative (e, "spec.parallelism", spec->has_parallelism, spec->parallelism);
    s_nonnegative (e, "spec.completions", spec->has_completions, spec->completions);
    s_nonnegative (e, "spec.activeDeadlineSeconds", spec->has_active_deadline_seconds,
                   spec->active_deadline_seconds);
    s_nonnegative (e, "spec.backoffLimit", spec->has_backoff_limit, spec->backoff_limit);
    s_nonnegative (e, "spec.ttlSecondsAfterFinished",
                   spec->has_ttl_seconds_after_finished,
                   spec->ttl_seconds_after_finished);
    if (spec->completion_mode) {
        if (!s_equal (spec->completion_mode, "NonIndexed") &&
            !s_equal (spec->completion_mode, "Indexed"))
            s_unsupported (e, "spec.completionMode", spec->completion_mode,
                           "\"NonIndexed\", \"Indexed\"");
        if (s_equal (spec->completion_mode, "Indexed")) {
            if (!spec->has_completions)
                s_required (e, "spec.completions", "when completion mode is Indexed");
            if (spec->has_parallelism && spec->parallelism > 100000)
                s_invalid_int (
                    e, "spec.parallelism", spec->parallelism,
                    "must be less than or equal to 100000 when completion mode "
                    "is Indexed");
        }
    }
    if (spec->pod_replacement_policy &&
        !s_one_of (spec->pod_replacement_policy,
                   (const char *const[]){"TerminatingOrFailed", "Failed", NULL}))
        s_unsupported (e, "spec.podReplacementPolicy", spec->pod_replacement_policy,
                       "\"TerminatingOrFailed\", \"Failed\"");
    if (!spec->selector)
        s_required (e, "spec.selector", NULL);
    else
        s_validate_label_selector (e, "spec.selector", spec->selector);
    if (!spec->template_) {
        s_required (e, "spec.template", NULL);
        return;
    }
    zube_selector_t *sel = NULL;
    if (spec->selector &&
        zube_selector_from_message (spec->selector, &sel, NULL, 0) == 0) {
        if (!zube_selector_matches_meta (sel, spec->template_->metadata)) {
            char shown[1024];
            s_render_labels (spec->template_->metadata, shown, sizeof shown);
            s_invalid_raw (e, "spec.template.metadata.labels", shown,
                           "`selector` does not match template `labels`");
        }
        zube_selector_destroy (&sel);
    }
    s_validate_template (e, "spec.template", spec->template_);
    const Zube__PodSpec *pod_spec = spec->template_->spec;
    if (pod_spec && !s_equal (pod_spec->restart_policy, "OnFailure") &&
        !s_equal (pod_spec->restart_policy, "Never"))
        s_unsupported (e, "spec.template.spec.restartPolicy", pod_spec->restart_policy,
                       "\"OnFailure\", \"Never\"");
}

//  Two messages equal (both absent counts as equal)
static bool
s_messages_equal (const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    if (!a || !b)
        return a == b;
    size_t sa = protobuf_c_message_get_packed_size (a);
    size_t sb = protobuf_c_message_get_packed_size (b);
    if (sa != sb)
        return false;
    uint8_t *pa = malloc (sa ? sa : 1), *pb = malloc (sb ? sb : 1);
    bool same = false;
    if (pa && pb) {
        protobuf_c_message_pack (a, pa);
        protobuf_c_message_pack (b, pb);
        same = memcmp (pa, pb, sa) == 0;
    }
    free (pa);
    free (pb);
    return same;
}

static void
s_immutable_message (s_errors_t *e, const char *path, const ProtobufCMessage *value,
                     const ProtobufCMessage *old)
{
    if (s_messages_equal (value, old))
        return;
    char shown[400];
    s_render_message (value, shown, sizeof shown);
    s_invalid_raw (e, path, shown, "field is immutable");
}

//  ---------------------------------------------------------------------
//  Service

static bool
s_valid_ip (const char *text)
{
    unsigned char buf[16];
    return inet_pton (AF_INET, text, buf) == 1 || inet_pton (AF_INET6, text, buf) == 1;
}

static void
s_validate_service (s_errors_t *e, const Zube__Service *service)
{
    const Zube__ServiceSpec *spec = service->spec;
    if (!spec) {
        s_required (e, "spec.ports", NULL);
        return;
    }
    char p[256];
    bool headless = s_equal (spec->cluster_ip, "None");
    bool external_name = s_equal (spec->type, "ExternalName");
    if (s_empty (spec->type))
        s_required (e, "spec.type", NULL);
    else if (!s_one_of (spec->type,
                        (const char *const[]){"ClusterIP", "ExternalName", "LoadBalancer",
                                              "NodePort", NULL}))
        s_unsupported (e, "spec.type", spec->type,
                       "\"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"");
    if (external_name) {
        if (!s_empty (spec->cluster_ip))
            s_forbidden (e, "spec.clusterIPs",
                         "may not be set for ExternalName services");
        if (s_empty (spec->external_name))
            s_required (e, "spec.externalName", NULL);
        else
            s_check_name (e, "spec.externalName", spec->external_name,
                          zube_dns1123_subdomain_validate);
    } else if (!s_empty (spec->cluster_ip) && !headless && !s_valid_ip (spec->cluster_ip))
        s_invalid (e, "spec.clusterIPs[0]", spec->cluster_ip,
                   "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    if (spec->n_ports == 0 && !headless && !external_name)
        s_required (e, "spec.ports", NULL);
    for (size_t i = 0; i < spec->n_ports; i++) {
        const Zube__ServicePort *port = spec->ports[i];
        s_path (p, sizeof p, "spec.ports[%zu].name", i);
        if (spec->n_ports > 1 && s_empty (port->name))
            s_required (e, p, NULL);
        else if (!s_empty (port->name)) {
            s_check_name (e, p, port->name, zube_dns1123_label_validate);
            for (size_t j = 0; j < i; j++)
                if (s_equal (spec->ports[j]->name, port->name)) {
                    s_duplicate (e, p, port->name);
                    break;
                }
        }
        s_path (p, sizeof p, "spec.ports[%zu].port", i);
        s_port_num (e, p, port->has_port ? port->port : 0);
        s_path (p, sizeof p, "spec.ports[%zu].protocol", i);
        if (s_empty (port->protocol))
            s_required (e, p, NULL);
        else if (!s_one_of (port->protocol, s_protocols))
            s_unsupported (e, p, port->protocol, S_PROTOCOLS);
        s_path (p, sizeof p, "spec.ports[%zu].targetPort", i);
        if (port->target_port && port->target_port->str_val)
            s_port_name (e, p, port->target_port->str_val);
        else if (port->target_port)
            s_port_num (e, p,
                        port->target_port->has_int_val ? port->target_port->int_val : 0);
        if (s_equal (spec->type, "ClusterIP") && port->has_node_port &&
            port->node_port != 0) {
            s_path (p, sizeof p, "spec.ports[%zu].nodePort", i);
            s_forbidden (e, p, "may not be used when `type` is 'ClusterIP'");
        } else if (port->has_node_port && port->node_port != 0) {
            s_path (p, sizeof p, "spec.ports[%zu].nodePort", i);
            s_port_num (e, p, port->node_port);
        }
    }
    if (!s_empty (spec->session_affinity) &&
        !s_one_of (spec->session_affinity,
                   (const char *const[]){"ClientIP", "None", NULL}))
        s_unsupported (e, "spec.sessionAffinity", spec->session_affinity,
                       "\"ClientIP\", \"None\"");
    s_validate_labels_entries (e, "spec.selector", spec->n_selector,
                               s_service_selector_key, s_service_selector_value, spec);
    if (!s_empty (spec->external_traffic_policy)) {
        if (!s_one_of (spec->external_traffic_policy,
                       (const char *const[]){"Cluster", "Local", NULL}))
            s_unsupported (e, "spec.externalTrafficPolicy", spec->external_traffic_policy,
                           "\"Cluster\", \"Local\"");
        else if (!s_equal (spec->type, "NodePort") &&
                 !s_equal (spec->type, "LoadBalancer"))
            s_invalid (e, "spec.externalTrafficPolicy", spec->external_traffic_policy,
                       "may only be set when `type` is 'NodePort' or 'LoadBalancer'");
    }
}

static void
s_validate_service_update (s_errors_t *e, const Zube__Service *service,
                           const Zube__Service *old)
{
    const char *ip = service->spec ? service->spec->cluster_ip : NULL;
    const char *old_ip = old->spec ? old->spec->cluster_ip : NULL;
    bool external_name = service->spec && s_equal (service->spec->type, "ExternalName");
    if (!s_empty (old_ip) && !external_name && !s_equal (ip, old_ip)) {
        char quoted[300], shown[320];
        s_path (shown, sizeof shown, "[%s]", s_quote (quoted, sizeof quoted, ip));
        s_invalid_raw (e, "spec.clusterIPs[0]", s_empty (ip) ? "null" : shown,
                       "may not change once set");
    }
}

//  ---------------------------------------------------------------------
//  The other kinds

static void
s_validate_namespace (s_errors_t *e, const Zube__Namespace *ns)
{
    if (!ns->spec)
        return;
    for (size_t i = 0; i < ns->spec->n_finalizers; i++) {
        char messages[2048];
        if (zube_label_key_validate (ns->spec->finalizers[i], messages, sizeof messages))
            s_invalid_each (e, "spec.finalizers", ns->spec->finalizers[i], messages);
    }
}

static void
s_validate_node (s_errors_t *e, const Zube__Node *node)
{
    const Zube__NodeSpec *spec = node->spec;
    if (!spec)
        return;
    char p[256];
    for (size_t i = 0; i < spec->n_taints; i++) {
        const Zube__Taint *t = spec->taints[i];
        s_path (p, sizeof p, "spec.taints[%zu].key", i);
        s_check_name (e, p, t->key, zube_label_key_validate);
        s_path (p, sizeof p, "spec.taints[%zu].value", i);
        s_check_name (e, p, t->value, zube_label_value_validate);
        s_path (p, sizeof p, "spec.taints[%zu].effect", i);
        if (s_empty (t->effect))
            s_required (e, p, NULL);
        else if (!s_one_of (t->effect,
                            (const char *const[]){"NoSchedule", "PreferNoSchedule",
                                                  "NoExecute", NULL}))
            s_unsupported (e, p, t->effect,
                           "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"");
        for (size_t j = 0; j < i; j++)
            if (s_equal (spec->taints[j]->key, t->key) &&
                s_equal (spec->taints[j]->effect, t->effect)) {
                s_path (p, sizeof p, "spec.taints[%zu]", i);
                zube_field_errors_add (
                    e, "FieldValueDuplicate", p,
                    "Duplicate value: \"%s:%s\": taints must be unique by key "
                    "and effect pair",
                    t->key ? t->key : "", t->effect ? t->effect : "");
                break;
            }
    }
}

static void
s_validate_node_update (s_errors_t *e, const Zube__Node *node, const Zube__Node *old)
{
    const Zube__NodeSpec *spec = node->spec, *old_spec = old->spec;
    const char *cidr = spec ? spec->pod_cidr : NULL;
    const char *old_cidr = old_spec ? old_spec->pod_cidr : NULL;
    if (!s_empty (old_cidr) && !s_equal (cidr, old_cidr))
        s_forbidden (e, "spec.podCIDRs",
                     "node updates may not change podCIDR except from \"\" to valid");
    const char *provider = spec ? spec->provider_id : NULL;
    const char *old_provider = old_spec ? old_spec->provider_id : NULL;
    if (!s_empty (old_provider) && !s_equal (provider, old_provider))
        s_forbidden (e, "spec.providerID",
                     "node updates may not change providerID except from \"\" to valid");
}

static void
s_validate_lease (s_errors_t *e, const Zube__Lease *lease)
{
    const Zube__LeaseSpec *spec = lease->spec;
    if (!spec)
        return;
    if (spec->has_lease_duration_seconds && spec->lease_duration_seconds <= 0)
        s_invalid_int (e, "spec.leaseDurationSeconds", spec->lease_duration_seconds,
                       "must be greater than 0");
    if (spec->has_lease_transitions && spec->lease_transitions < 0)
        s_invalid_int (e, "spec.leaseTransitions", spec->lease_transitions,
                       "must be greater than or equal to 0");
    if (!s_empty (spec->strategy) && !s_equal (spec->strategy, "OldestEmulationVersion"))
        s_unsupported (e, "spec.strategy", spec->strategy, "\"OldestEmulationVersion\"");
    if (!s_empty (spec->preferred_holder) && s_empty (spec->strategy))
        s_forbidden (e, "spec.preferredHolder",
                     "may only be specified if `strategy` is defined");
}

#define S_MAX_DATA_SIZE (1024 * 1024)

//  IsConfigMapKey
static void
s_validate_data_key (s_errors_t *e, const char *path, const char *key)
{
    size_t len = strlen (key);
    bool ok = len > 0;
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum ((unsigned char)key[i]) || key[i] == '-' || key[i] == '_' ||
             key[i] == '.';
    if (len > 253)
        s_invalid (e, path, key, "must be no more than 253 characters");
    if (!ok)
        s_invalid (
            e, path, key,
            "a valid config key must consist of alphanumeric characters, '-', '_' or "
            "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
            "validation is '[-._a-zA-Z0-9]+')");
    if (s_equal (key, "."))
        s_invalid (e, path, key, "must not be '.'");
    else if (s_equal (key, ".."))
        s_invalid (e, path, key, "must not be '..'");
    else if (strncmp (key, "..", 2) == 0)
        s_invalid (e, path, key, "must not start with '..'");
}

static void
s_validate_config_map (s_errors_t *e, const Zube__ConfigMap *cm)
{
    char p[512];
    size_t total = 0;
    for (size_t i = 0; i < cm->n_data; i++) {
        const char *key = cm->data[i]->key ? cm->data[i]->key : "";
        s_path (p, sizeof p, "data[%s]", key);
        s_validate_data_key (e, p, key);
        for (size_t j = 0; j < cm->n_binary_data; j++)
            if (s_equal (cm->binary_data[j]->key, key))
                s_invalid (e, p, key, "duplicate of key present in binaryData");
        total += cm->data[i]->value ? strlen (cm->data[i]->value) : 0;
    }
    for (size_t i = 0; i < cm->n_binary_data; i++) {
        const char *key = cm->binary_data[i]->key ? cm->binary_data[i]->key : "";
        s_path (p, sizeof p, "binaryData[%s]", key);
        s_validate_data_key (e, p, key);
        total += cm->binary_data[i]->value.len;
    }
    if (total > S_MAX_DATA_SIZE)
        s_too_long (e, "", S_MAX_DATA_SIZE);
}

static void
s_validate_secret (s_errors_t *e, const Zube__Secret *secret)
{
    char p[512];
    size_t total = 0;
    for (size_t i = 0; i < secret->n_data; i++) {
        const char *key = secret->data[i]->key ? secret->data[i]->key : "";
        s_path (p, sizeof p, "data[%s]", key);
        s_validate_data_key (e, p, key);
        total += secret->data[i]->value.len;
    }
    if (total > S_MAX_DATA_SIZE)
        s_too_long (e, "data", S_MAX_DATA_SIZE);
    static const struct {
        const char *type;
        const char *keys[3];
    } required[] = {
        {"kubernetes.io/tls", {"tls.crt", "tls.key", NULL}},
        {"kubernetes.io/dockerconfigjson", {".dockerconfigjson", NULL, NULL}},
        {"kubernetes.io/dockercfg", {".dockercfg", NULL, NULL}},
    };
    for (size_t r = 0; r < sizeof required / sizeof required[0]; r++) {
        if (!s_equal (secret->type, required[r].type))
            continue;
        for (size_t k = 0; required[r].keys[k]; k++) {
            bool found = false;
            for (size_t i = 0; i < secret->n_data && !found; i++)
                found = s_equal (secret->data[i]->key, required[r].keys[k]);
            if (!found) {
                s_path (p, sizeof p, "data[%s]", required[r].keys[k]);
                s_required (e, p, NULL);
            }
        }
    }
}

static void
s_validate_event (s_errors_t *e, const Zube__Event *event)
{
    if (!s_empty (event->type) && !s_equal (event->type, "Normal") &&
        !s_equal (event->type, "Warning"))
        s_unsupported (e, "type", event->type, "\"Normal\", \"Warning\"");
    const char *ns = event->metadata ? event->metadata->namespace_ : NULL;
    if (event->involved_object && !s_empty (event->involved_object->namespace_) &&
        !s_equal (event->involved_object->namespace_, ns))
        s_invalid (e, "involvedObject.namespace", event->involved_object->namespace_,
                   "does not match event.namespace");
}

static void
s_validate_endpoint_slice (s_errors_t *e, const Zube__EndpointSlice *slice)
{
    char p[256];
    if (s_empty (slice->address_type))
        s_required (e, "addressType", NULL);
    else if (!s_one_of (slice->address_type,
                        (const char *const[]){"FQDN", "IPv4", "IPv6", NULL}))
        s_unsupported (e, "addressType", slice->address_type,
                       "\"FQDN\", \"IPv4\", \"IPv6\"");
    for (size_t i = 0; i < slice->n_endpoints; i++) {
        const Zube__Endpoint *ep = slice->endpoints[i];
        s_path (p, sizeof p, "endpoints[%zu].addresses", i);
        if (ep->n_addresses == 0)
            s_required (e, p, "must contain at least 1 address");
        else if (ep->n_addresses > 100)
            zube_field_errors_add (e, "FieldValueTooMany", p,
                                   "Too many: %zu: must have at most 100 items",
                                   ep->n_addresses);
    }
    for (size_t i = 0; i < slice->n_ports; i++) {
        const Zube__EndpointPort *port = slice->ports[i];
        if (!s_empty (port->name)) {
            s_path (p, sizeof p, "ports[%zu].name", i);
            s_check_name (e, p, port->name, zube_dns1123_label_validate);
        }
        s_path (p, sizeof p, "ports[%zu].protocol", i);
        if (!s_empty (port->protocol) && !s_one_of (port->protocol, s_protocols))
            s_unsupported (e, p, port->protocol, S_PROTOCOLS);
        if (port->has_port) {
            s_path (p, sizeof p, "ports[%zu].port", i);
            s_port_num (e, p, port->port);
        }
    }
}

//  ConfigMap and Secret: nothing changes once `immutable` was set
static void
s_validate_immutable_data (s_errors_t *e, bool old_immutable, bool immutable,
                           const ProtobufCMessage *object, const ProtobufCMessage *old,
                           const char *const *fields)
{
    if (!old_immutable)
        return;
    if (!immutable)
        s_forbidden (e, "immutable", "field is immutable when `immutable` is set");
    //  Compare each data field through a shallow copy holding only it
    for (; *fields; fields++) {
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name (object->descriptor, *fields);
        if (!field)
            continue;
        size_t size = object->descriptor->sizeof_message;
        ProtobufCMessage *a = calloc (1, size), *b = calloc (1, size);
        if (a && b) {
            protobuf_c_message_init (object->descriptor, a);
            protobuf_c_message_init (object->descriptor, b);
            memcpy ((char *)a + field->quantifier_offset,
                    (const char *)object + field->quantifier_offset, sizeof (size_t));
            memcpy ((char *)a + field->offset, (const char *)object + field->offset,
                    sizeof (void *));
            memcpy ((char *)b + field->quantifier_offset,
                    (const char *)old + field->quantifier_offset, sizeof (size_t));
            memcpy ((char *)b + field->offset, (const char *)old + field->offset,
                    sizeof (void *));
            if (!s_messages_equal (a, b))
                s_forbidden (e, field->name[0] == 'b' ? "binaryData" : "data",
                             "field is immutable when `immutable` is set");
        }
        free (a);
        free (b);
    }
}

//  ---------------------------------------------------------------------
//  Entry points

static void
s_validate_kind (s_errors_t *e, const zube_kind_t *kind, const ProtobufCMessage *object)
{
    const ProtobufCMessageDescriptor *d = kind->descriptor;
    if (d == &zube__pod__descriptor)
        s_validate_pod (e, (const Zube__Pod *)object);
    else if (d == &zube__deployment__descriptor)
        s_validate_deployment (e, (const Zube__Deployment *)object);
    else if (d == &zube__replica_set__descriptor)
        s_validate_replica_set (e, (const Zube__ReplicaSet *)object);
    else if (d == &zube__daemon_set__descriptor)
        s_validate_daemon_set (e, (const Zube__DaemonSet *)object);
    else if (d == &zube__job__descriptor)
        s_validate_job (e, (const Zube__Job *)object);
    else if (d == &zube__service__descriptor)
        s_validate_service (e, (const Zube__Service *)object);
    else if (d == &zube__namespace__descriptor)
        s_validate_namespace (e, (const Zube__Namespace *)object);
    else if (d == &zube__node__descriptor)
        s_validate_node (e, (const Zube__Node *)object);
    else if (d == &zube__lease__descriptor)
        s_validate_lease (e, (const Zube__Lease *)object);
    else if (d == &zube__config_map__descriptor)
        s_validate_config_map (e, (const Zube__ConfigMap *)object);
    else if (d == &zube__secret__descriptor)
        s_validate_secret (e, (const Zube__Secret *)object);
    else if (d == &zube__event__descriptor)
        s_validate_event (e, (const Zube__Event *)object);
    else if (d == &zube__endpoint_slice__descriptor)
        s_validate_endpoint_slice (e, (const Zube__EndpointSlice *)object);
}

size_t
zube_strategy_validate_create (const zube_kind_t *kind, const ProtobufCMessage *object,
                               zube_field_errors_t *errors)
{
    if (!errors)
        return 0;
    size_t before = errors->count;
    if (!kind || !object || object->descriptor != kind->descriptor) {
        zube_field_errors_add (errors, "FieldValueInvalid", "kind",
                               "Invalid value: the object is not of its resource's kind");
        return errors->count - before;
    }
    s_validate_meta (errors, kind, strategy_meta (object));
    s_validate_kind (errors, kind, object);
    return errors->count - before;
}

size_t
zube_strategy_validate_update (const zube_kind_t *kind, const ProtobufCMessage *object,
                               const ProtobufCMessage *old, zube_field_errors_t *errors)
{
    if (!errors)
        return 0;
    size_t before = errors->count;
    zube_strategy_validate_create (kind, object, errors);
    if (!old || !kind || !object || old->descriptor != object->descriptor)
        return errors->count - before;
    s_validate_meta_update (errors, strategy_meta (object), strategy_meta (old));
    const ProtobufCMessageDescriptor *d = kind->descriptor;
    if (d == &zube__pod__descriptor)
        s_validate_pod_update (errors, (const Zube__Pod *)object, (const Zube__Pod *)old);
    else if (d == &zube__service__descriptor)
        s_validate_service_update (errors, (const Zube__Service *)object,
                                   (const Zube__Service *)old);
    else if (d == &zube__node__descriptor)
        s_validate_node_update (errors, (const Zube__Node *)object,
                                (const Zube__Node *)old);
    else if (d == &zube__deployment__descriptor) {
        const Zube__Deployment *a = (const Zube__Deployment *)object;
        const Zube__Deployment *b = (const Zube__Deployment *)old;
        s_immutable_message (
            errors, "spec.selector",
            a->spec && a->spec->selector ? &a->spec->selector->base : NULL,
            b->spec && b->spec->selector ? &b->spec->selector->base : NULL);
    } else if (d == &zube__replica_set__descriptor) {
        const Zube__ReplicaSet *a = (const Zube__ReplicaSet *)object;
        const Zube__ReplicaSet *b = (const Zube__ReplicaSet *)old;
        s_immutable_message (
            errors, "spec.selector",
            a->spec && a->spec->selector ? &a->spec->selector->base : NULL,
            b->spec && b->spec->selector ? &b->spec->selector->base : NULL);
    } else if (d == &zube__daemon_set__descriptor) {
        const Zube__DaemonSet *a = (const Zube__DaemonSet *)object;
        const Zube__DaemonSet *b = (const Zube__DaemonSet *)old;
        s_immutable_message (
            errors, "spec.selector",
            a->spec && a->spec->selector ? &a->spec->selector->base : NULL,
            b->spec && b->spec->selector ? &b->spec->selector->base : NULL);
    } else if (d == &zube__job__descriptor) {
        const Zube__JobSpec *a = ((const Zube__Job *)object)->spec;
        const Zube__JobSpec *b = ((const Zube__Job *)old)->spec;
        if (a && b) {
            s_immutable_message (errors, "spec.selector",
                                 a->selector ? &a->selector->base : NULL,
                                 b->selector ? &b->selector->base : NULL);
            s_immutable_message (errors, "spec.template",
                                 a->template_ ? &a->template_->base : NULL,
                                 b->template_ ? &b->template_->base : NULL);
            if (!s_equal (a->completion_mode, b->completion_mode))
                s_invalid (errors, "spec.completionMode", a->completion_mode,
                           "field is immutable");
            if (a->has_completions != b->has_completions ||
                a->completions != b->completions) {
                char shown[32];
                snprintf (shown, sizeof shown, "%d", a->completions);
                s_invalid_raw (errors, "spec.completions",
                               a->has_completions ? shown : "null", "field is immutable");
            }
        }
    } else if (d == &zube__config_map__descriptor) {
        const Zube__ConfigMap *a = (const Zube__ConfigMap *)object;
        const Zube__ConfigMap *b = (const Zube__ConfigMap *)old;
        s_validate_immutable_data (errors, b->has_immutable && b->immutable,
                                   a->has_immutable && a->immutable, object, old,
                                   (const char *const[]){"data", "binary_data", NULL});
    } else if (d == &zube__secret__descriptor) {
        const Zube__Secret *a = (const Zube__Secret *)object;
        const Zube__Secret *b = (const Zube__Secret *)old;
        if (!s_equal (a->type, b->type))
            s_invalid (errors, "type", a->type, "field is immutable");
        s_validate_immutable_data (errors, b->has_immutable && b->immutable,
                                   a->has_immutable && a->immutable, object, old,
                                   (const char *const[]){"data", NULL});
    } else if (d == &zube__endpoint_slice__descriptor) {
        const Zube__EndpointSlice *a = (const Zube__EndpointSlice *)object;
        const Zube__EndpointSlice *b = (const Zube__EndpointSlice *)old;
        if (!s_equal (a->address_type, b->address_type))
            s_invalid (errors, "addressType", a->address_type, "field is immutable");
    }
    return errors->count - before;
}
