/*  namespace - Kubernetes' namespace controller (pkg/controller/namespace,
    its NamespacedResourcesDeleter) as a plugin, with the system
    namespaces controller folded in.

    A namespace being deleted (deletionTimestamp, phase Terminating, set
    by the apiserver) keeps the "kubernetes" finalizer in spec.finalizers
    until this controller has deleted every object in it: sync deletes
    each object of every namespaced kind zube serves that is not already
    being deleted (with the kind's default propagation, pods with their
    grace period), reports what remains in the conditions
    NamespaceContentRemaining and NamespaceFinalizersRemaining, and once
    nothing remains, twice in a row (the caches of the kinds are separate
    and one may lag another), removes the finalizer; the apiserver then
    deletes the namespace. The system namespaces default, kube-system,
    kube-public and kube-node-lease are made again whenever they are
    missing.

    The kinds come from the caches of the resources it watches (below);
    a kind added to zube must be added here too. */
#define _GNU_SOURCE
#include "ctrl_util.h"

#define S_FINALIZER "kubernetes"
#define S_RECHECK_MS 500
#define S_REQUEUE_MS 2000

//  The namespace first (the primary resource), then every namespaced
//  resource zube serves.
static const char *const s_watches[] = {
    "namespaces", "pods",    "services",         "endpointslices",   "serviceaccounts",
    "configmaps", "secrets", "replicasets.apps", "deployments.apps", "daemonsets.apps",
    "jobs.batch", "leases",  "podgroups",        "events",           NULL};

static const char *const s_system[] = {"default", "kube-system", "kube-public",
                                       "kube-node-lease"};

typedef struct {
    const zube_ctrl_host_t *host;
    //  Namespaces seen empty once (a second empty look finalizes)
    char **empty;
    size_t empty_count;
    bool system_checked;
} s_self_t;

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    s_self_t *self = calloc (1, sizeof *self);
    if (!self)
        snprintf (error, error_size, "out of memory");
    else
        self->host = host;
    return self;
}

static void
s_destroy (void *arg)
{
    s_self_t *self = arg;
    for (size_t i = 0; i < self->empty_count; i++)
        free (self->empty[i]);
    free (self->empty);
    free (self);
}

static bool
s_terminating (const Zube__Namespace *ns)
{
    return ns && ns->metadata &&
           (zc_deleting (ns->metadata) ||
            (ns->status && zc_streq (ns->status->phase, "Terminating")));
}

static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    const Zube__ObjectMeta *meta = zc_meta_of (object);
    if (!meta)
        return;
    if (zc_streq (resource, "namespaces")) {
        if (meta->name)
            self->host->enqueue (self->host, meta->name);
        //  Once per instance: a system namespace missing at start is made.
        //  (No cache read here: hosts before 6bce6c7 iterated this cache
        //  while calling on_add, and a lookup in it looped the resync.)
        if (!self->system_checked)
            for (size_t i = 0; i < sizeof s_system / sizeof s_system[0]; i++)
                self->host->enqueue (self->host, s_system[i]);
        self->system_checked = true;
        return;
    }
    //  Content of a namespace being deleted: look again
    if (meta->namespace_ && s_terminating ((const Zube__Namespace *)self->host->get (
                                self->host, "namespaces", NULL, meta->namespace_)))
        self->host->enqueue (self->host, meta->namespace_);
}

static void
s_on_update (void *arg, const char *resource, const ProtobufCMessage *old_object,
             const ProtobufCMessage *new_object)
{
    (void)old_object;
    s_on_add (arg, resource, new_object);
}

static void
s_on_delete (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    const Zube__ObjectMeta *meta = zc_meta_of (object);
    if (!meta)
        return;
    if (zc_streq (resource, "namespaces") && meta->name)
        self->host->enqueue (self->host, meta->name);
    else
        s_on_add (arg, resource, object);
}

//  ---------------------------------------------------------------------

static bool
s_empty_seen (s_self_t *self, const char *name, bool set)
{
    for (size_t i = 0; i < self->empty_count; i++)
        if (zc_streq (self->empty[i], name)) {
            if (!set) {
                free (self->empty[i]);
                self->empty[i] = self->empty[--self->empty_count];
            }
            return true;
        }
    if (set) {
        char **grown = realloc (self->empty, (self->empty_count + 1) * sizeof *grown);
        char *copy = strdup (name);
        if (grown)
            self->empty = grown;
        if (grown && copy)
            self->empty[self->empty_count++] = copy;
        else
            free (copy);
    }
    return false;
}

static zube_status_t
s_recreate (s_self_t *self, const char *name, char *error, size_t error_size)
{
    Zube__Namespace ns = ZUBE__NAMESPACE__INIT;
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    ns.api_version = "v1";
    ns.kind = "Namespace";
    meta.name = (char *)name;
    ns.metadata = &meta;
    zube_status_t status = self->host->create (self->host, "namespaces", NULL, &ns.base,
                                               NULL, error, error_size);
    if (status == ZUBE_OK)
        self->host->base->log (self->host->base, ZUBE_LOG_INFO,
                               "msg=\"system namespace made again\" namespace=%s", name);
    return status == ZUBE_ALREADY_EXISTS ? ZUBE_OK : status;
}

//  What remains in a namespace being deleted.
typedef struct {
    size_t objects;
    char kinds[512];
    size_t finalizing;
    char finalizers[512];
} s_remaining_t;

static void
s_note (char *list, size_t size, const char *word)
{
    if (strstr (list, word))
        return;
    size_t length = strlen (list);
    snprintf (list + length, size - length, "%s%s", length ? ", " : "", word);
}

//  Deletes what is in the namespace and is not being deleted yet.
static zube_status_t
s_delete_content (s_self_t *self, const char *namespace_, s_remaining_t *remaining,
                  char *error, size_t error_size)
{
    zube_status_t result = ZUBE_OK;
    memset (remaining, 0, sizeof *remaining);
    for (size_t r = 1; s_watches[r]; r++) {
        size_t count = 0;
        const ProtobufCMessage **list =
            self->host->list (self->host, s_watches[r], namespace_, NULL, &count);
        for (size_t i = 0; i < count; i++) {
            const Zube__ObjectMeta *meta = zc_meta_of (list[i]);
            if (!meta || !meta->name)
                continue;
            remaining->objects++;
            const char *plain = s_watches[r];
            char resource[64];
            snprintf (resource, sizeof resource, "%.*s", (int)strcspn (plain, "."),
                      plain);
            s_note (remaining->kinds, sizeof remaining->kinds, resource);
            if (zc_deleting (meta)) {
                for (size_t f = 0; f < meta->n_finalizers; f++) {
                    remaining->finalizing++;
                    s_note (remaining->finalizers, sizeof remaining->finalizers,
                            meta->finalizers[f]);
                }
                continue;
            }
            zube_ctrl_delete_options_t options = {.struct_size = sizeof options,
                                                  .uid = meta->uid};
            char why[1024] = "";
            zube_status_t status =
                self->host->delete_ (self->host, s_watches[r], namespace_, meta->name,
                                     &options, why, sizeof why);
            if (status != ZUBE_OK && status != ZUBE_NOT_FOUND &&
                status != ZUBE_CONFLICT) {
                snprintf (error, error_size, "deleting %s %s/%s: %s", resource,
                          namespace_, meta->name, why);
                result = status;
            }
        }
        self->host->free_list (self->host, list);
    }
    return result;
}

//  Sets a condition of an own Namespace's status; true when it changed.
static bool
s_set_condition (Zube__NamespaceStatus *status, const char *type, bool value,
                 const char *reason, const char *message, const char *now)
{
    Zube__NamespaceCondition *condition = NULL;
    for (size_t i = 0; i < status->n_conditions; i++)
        if (zc_streq (status->conditions[i]->type, type))
            condition = status->conditions[i];
    const char *text = value ? "True" : "False";
    if (condition && zc_streq (condition->status, text) &&
        zc_streq (condition->reason, reason) && zc_streq (condition->message, message))
        return false;
    if (!condition) {
        Zube__NamespaceCondition **grown =
            realloc (status->conditions, (status->n_conditions + 1) * sizeof *grown);
        condition = grown ? malloc (sizeof *condition) : NULL;
        if (grown)
            status->conditions = grown;
        if (!condition)
            return false;
        zube__namespace_condition__init (condition);
        status->conditions[status->n_conditions++] = condition;
    }
    if (!zc_streq (condition->status, text)) {
        free (condition->last_transition_time);
        condition->last_transition_time = strdup (now);
    }
    const char *values[] = {type, text, reason, message};
    char **fields[] = {&condition->type, &condition->status, &condition->reason,
                       &condition->message};
    for (size_t i = 0; i < 4; i++) {
        free (*fields[i]);
        *fields[i] = strdup (values[i]);
    }
    return true;
}

//  The conditions Kubernetes' deleter reports, and, with finalize, the
//  namespace without the "kubernetes" finalizer.
static zube_status_t
s_write_namespace (s_self_t *self, const Zube__Namespace *cached,
                   const s_remaining_t *remaining, bool finalize, char *error,
                   size_t error_size)
{
    Zube__Namespace *ns =
        (Zube__Namespace *)zc_copy (&cached->base, &zube__namespace__descriptor);
    if (ns && !ns->status) {
        ns->status = malloc (sizeof *ns->status);
        if (ns->status)
            zube__namespace_status__init (ns->status);
    }
    if (!ns || !ns->status) {
        zc_free (ns);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    char now[40], message[1200];
    zc_now_rfc3339 (now, sizeof now);
    bool changed = false;
    if (remaining->objects)
        snprintf (message, sizeof message,
                  "Some resources are remaining: %s has %zu resource instances",
                  remaining->kinds, remaining->objects);
    changed |= s_set_condition (
        ns->status, "NamespaceContentRemaining", remaining->objects > 0,
        remaining->objects ? "SomeResourcesRemain" : "ContentDeleted",
        remaining->objects ? message : "All content successfully removed", now);
    if (remaining->finalizing)
        snprintf (message, sizeof message,
                  "Some content in the namespace has finalizers remaining: %s in %zu "
                  "resource instances",
                  remaining->finalizers, remaining->finalizing);
    changed |= s_set_condition (
        ns->status, "NamespaceFinalizersRemaining", remaining->finalizing > 0,
        remaining->finalizing ? "SomeFinalizersRemain" : "ContentHasNoFinalizers",
        remaining->finalizing ? message : "All content-preserving finalizers finished",
        now);
    zube_status_t status = ZUBE_OK;
    if (changed)
        status = self->host->update (self->host, "namespaces", &ns->base, "status", NULL,
                                     error, error_size);
    if (status == ZUBE_OK && finalize && ns->spec) {
        //  The status write moved the resourceVersion on: none on this one
        free (ns->metadata->resource_version);
        ns->metadata->resource_version = NULL;
        size_t kept = 0;
        for (size_t i = 0; i < ns->spec->n_finalizers; i++)
            if (zc_streq (ns->spec->finalizers[i], S_FINALIZER))
                free (ns->spec->finalizers[i]);
            else
                ns->spec->finalizers[kept++] = ns->spec->finalizers[i];
        ns->spec->n_finalizers = kept;
        status = self->host->update (self->host, "namespaces", &ns->base, NULL, NULL,
                                     error, error_size);
        if (status == ZUBE_NOT_FOUND)
            status = ZUBE_OK;
    }
    zc_free (ns);
    return status;
}

static bool
s_is_system (const char *name)
{
    for (size_t i = 0; i < sizeof s_system / sizeof s_system[0]; i++)
        if (zc_streq (name, s_system[i]))
            return true;
    return false;
}

//  True when the apiserver still holds something in the namespace (or
//  cannot tell), read live rather than from the caches.
static bool
s_any_live (s_self_t *self, const char *namespace_)
{
    if (!ZUBE_CTRL_HAS (self->host, any_live))
        return false;
    for (size_t r = 1; s_watches[r]; r++) {
        bool any = false;
        char why[512];
        if (self->host->any_live (self->host, s_watches[r], namespace_, &any, why,
                                  sizeof why) != ZUBE_OK || any)
            return true;
    }
    return false;
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    const Zube__Namespace *ns =
        (const Zube__Namespace *)self->host->get (self->host, "namespaces", NULL, key);
    if (!ns) {
        s_empty_seen (self, key, false);
        return s_is_system (key) ? s_recreate (self, key, error, error_size) : ZUBE_OK;
    }
    if (!s_terminating (ns)) {
        s_empty_seen (self, key, false);
        return ZUBE_OK;
    }
    bool has_finalizer = false;
    for (size_t i = 0; ns->spec && i < ns->spec->n_finalizers; i++)
        has_finalizer |= zc_streq (ns->spec->finalizers[i], S_FINALIZER);
    if (!has_finalizer)
        return ZUBE_OK;
    s_remaining_t remaining;
    zube_status_t status = s_delete_content (self, key, &remaining, error, error_size);
    bool finalize = false;
    if (remaining.objects == 0 && status == ZUBE_OK) {
        //  Empty twice in a row: finalize; once: look again shortly. The
        //  caches may lag the apiserver (an event not yet repaired), so
        //  the second look asks it, as Kubernetes' deleter lists live
        finalize = s_empty_seen (self, key, true);
        if (finalize && s_any_live (self, key)) {
            s_empty_seen (self, key, false);
            finalize = false;
        }
        if (!finalize)
            self->host->enqueue_after (self->host, key, S_RECHECK_MS);
    } else {
        s_empty_seen (self, key, false);
        self->host->enqueue_after (self->host, key, S_REQUEUE_MS);
    }
    char write_error[1024] = "";
    zube_status_t written = s_write_namespace (self, ns, &remaining, finalize,
                                               write_error, sizeof write_error);
    if (finalize && written == ZUBE_OK)
        s_empty_seen (self, key, false);
    if (status != ZUBE_OK)
        return status;
    if (written != ZUBE_OK)
        snprintf (error, error_size, "%s", write_error);
    return written;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "namespace",
    .watches = s_watches,
    //  --concurrent-namespace-syncs (Kubernetes: 10). Safe to interleave:
    //  its seen-empty list is only touched by the key's own sync
    .workers = 5,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .on_delete = s_on_delete,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "namespace", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_CONTROLLER, .ops = &s_ops,
                    .description = "deletes the content of namespaces being deleted; "
                                   "keeps the system namespaces")
