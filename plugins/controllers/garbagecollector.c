/*  garbagecollector - Kubernetes' garbage collector
    (pkg/controller/garbagecollector) as a plugin, over the kinds zube
    serves that take part in ownership.

    The apiserver does the first half of a delete's propagationPolicy
    (services/apiserver/registry.c): Orphan adds the "orphan" finalizer,
    Foreground "foregroundDeletion", and an object with finalizers stays,
    with deletionTimestamp set, until they are gone. This controller does
    the rest (docs/controllers.md):

    - orphan: every dependent (an object with an ownerReference to the
      owner's uid) loses that reference, then the owner loses the
      finalizer (and the apiserver deletes it);
    - foregroundDeletion: every dependent is deleted (in the foreground
      itself when it blocks the owner: blockOwnerDeletion), and once no
      dependent with blockOwnerDeletion remains the owner loses the
      finalizer;
    - background (and any dependent found later): an object whose owners
      are all gone is deleted; owners that are gone while others remain
      are removed from its ownerReferences. An owner missing from the
      cache is looked up in the apiserver before anything is deleted (the
      caches of different kinds may lag one another), as Kubernetes'
      does; an owner reference to a kind it does not know counts as
      present.

    Keys are "<resource>|<namespace>/<name>". Writes are JSON patches with
    a "test" of the uid or name they remove, so a list that changed
    meanwhile fails (Conflict-like Invalid) and is retried. */
#define _GNU_SOURCE
#include "apps.pb-c.h"
#include "batch.pb-c.h"
#include "coordination.pb-c.h"
#include "ctrl_util.h"
#include "discovery.pb-c.h"

#define S_KEY_SIZE 700
#define S_ORPHAN "orphan"
#define S_FOREGROUND "foregroundDeletion"
#define S_RETRY_MS 2000

typedef struct {
    const char *kind;
    const char *group; //  of apiVersion ("" for v1)
    const char *resource;
    bool namespaced;
    const ProtobufCMessageDescriptor *descriptor;
} s_kind_t;

static const s_kind_t s_kinds[] = {
    {"Pod", "", "pods", true, &zube__pod__descriptor},
    {"ReplicaSet", "apps", "replicasets.apps", true, &zube__replica_set__descriptor},
    {"Deployment", "apps", "deployments.apps", true, &zube__deployment__descriptor},
    {"DaemonSet", "apps", "daemonsets.apps", true, &zube__daemon_set__descriptor},
    {"Job", "batch", "jobs.batch", true, &zube__job__descriptor},
    {"Service", "", "services", true, &zube__service__descriptor},
    {"EndpointSlice", "discovery.k8s.io", "endpointslices", true,
     &zube__endpoint_slice__descriptor},
    {"ConfigMap", "", "configmaps", true, &zube__config_map__descriptor},
    {"Secret", "", "secrets", true, &zube__secret__descriptor},
    {"ServiceAccount", "", "serviceaccounts", true, &zube__service_account__descriptor},
    {"Lease", "coordination.k8s.io", "leases", true, &zube__lease__descriptor},
    {"Node", "", "nodes", false, &zube__node__descriptor},
};
#define S_KIND_COUNT (sizeof s_kinds / sizeof s_kinds[0])

static const char *const s_watches[] = {
    "pods",       "replicasets.apps", "deployments.apps", "daemonsets.apps",
    "jobs.batch", "services",         "endpointslices",   "configmaps",
    "secrets",    "serviceaccounts",  "leases",           "nodes",
    NULL};

typedef struct {
    const zube_ctrl_host_t *host;
} s_self_t;

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    if (!ZUBE_CTRL_HAS (host, get_live)) {
        snprintf (error, error_size,
                  "the host is too old: it has no get_live (needed to confirm owners)");
        return NULL;
    }
    s_self_t *self = calloc (1, sizeof *self);
    if (!self)
        snprintf (error, error_size, "out of memory");
    else
        self->host = host;
    return self;
}

static void
s_destroy (void *self)
{
    free (self);
}

static const s_kind_t *
s_kind_by_resource (const char *resource)
{
    for (size_t i = 0; i < S_KIND_COUNT; i++)
        if (zc_streq (s_kinds[i].resource, resource))
            return &s_kinds[i];
    return NULL;
}

//  The kind an ownerReference names (apiVersion's group and kind).
static const s_kind_t *
s_kind_of_ref (const Zube__OwnerReference *ref)
{
    const char *version = ref->api_version ? ref->api_version : "";
    const char *slash = strchr (version, '/');
    size_t group_length = slash ? (size_t)(slash - version) : 0;
    for (size_t i = 0; i < S_KIND_COUNT; i++)
        if (zc_streq (s_kinds[i].kind, ref->kind) &&
            strlen (s_kinds[i].group) == group_length &&
            strncmp (s_kinds[i].group, version, group_length) == 0)
            return &s_kinds[i];
    return NULL;
}

static void
s_key (const s_kind_t *kind, const Zube__ObjectMeta *meta, char *key, size_t size)
{
    snprintf (key, size, "%s|%s%s%s", kind->resource,
              kind->namespaced && meta->namespace_ ? meta->namespace_ : "",
              kind->namespaced ? "/" : "", meta->name ? meta->name : "");
}

static bool
s_has_finalizer (const Zube__ObjectMeta *meta, const char *name)
{
    for (size_t i = 0; meta && i < meta->n_finalizers; i++)
        if (zc_streq (meta->finalizers[i], name))
            return true;
    return false;
}

//  The owner an ownerReference names, from the cache (NULL when absent or
//  of another uid).
static const ProtobufCMessage *
s_cached_owner (s_self_t *self, const s_kind_t *kind, const char *namespace_,
                const Zube__OwnerReference *ref)
{
    const ProtobufCMessage *owner = self->host->get (
        self->host, kind->resource, kind->namespaced ? namespace_ : NULL, ref->name);
    const Zube__ObjectMeta *meta = zc_meta_of (owner);
    return meta && zc_streq (meta->uid, ref->uid) ? owner : NULL;
}

static void
s_enqueue_object (s_self_t *self, const s_kind_t *kind, const Zube__ObjectMeta *meta)
{
    char key[S_KEY_SIZE];
    s_key (kind, meta, key, sizeof key);
    self->host->enqueue (self->host, key);
}

//  Every object with an ownerReference to uid, enqueued.
static void
s_enqueue_dependents (s_self_t *self, const char *uid)
{
    for (size_t k = 0; uid && k < S_KIND_COUNT; k++) {
        size_t count = 0;
        const ProtobufCMessage **list = self->host->list_index (
            self->host, s_kinds[k].resource, ZUBE_CTRL_INDEX_OWNER_UID, uid, &count);
        for (size_t i = 0; i < count; i++)
            s_enqueue_object (self, &s_kinds[k], zc_meta_of (list[i]));
        self->host->free_list (self->host, list);
    }
}

//  The owners of meta being deleted in the foreground, enqueued (one of
//  their dependents changed).
static void
s_enqueue_waiting_owners (s_self_t *self, const Zube__ObjectMeta *meta)
{
    for (size_t i = 0; i < meta->n_owner_references; i++) {
        const Zube__OwnerReference *ref = meta->owner_references[i];
        const s_kind_t *kind = s_kind_of_ref (ref);
        const ProtobufCMessage *owner =
            kind ? s_cached_owner (self, kind, meta->namespace_, ref) : NULL;
        const Zube__ObjectMeta *owner_meta = zc_meta_of (owner);
        if (owner_meta && zc_deleting (owner_meta))
            s_enqueue_object (self, kind, owner_meta);
    }
}

static bool
s_refs_equal (const Zube__ObjectMeta *a, const Zube__ObjectMeta *b)
{
    if (a->n_owner_references != b->n_owner_references)
        return false;
    for (size_t i = 0; i < a->n_owner_references; i++)
        if (!zc_streq (a->owner_references[i]->uid, b->owner_references[i]->uid))
            return false;
    return true;
}

static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    const s_kind_t *kind = s_kind_by_resource (resource);
    const Zube__ObjectMeta *meta = zc_meta_of (object);
    if (!kind || !meta)
        return;
    if (meta->n_owner_references ||
        (zc_deleting (meta) &&
         (s_has_finalizer (meta, S_ORPHAN) || s_has_finalizer (meta, S_FOREGROUND))))
        s_enqueue_object (self, kind, meta);
}

static void
s_on_update (void *arg, const char *resource, const ProtobufCMessage *old_object,
             const ProtobufCMessage *new_object)
{
    s_self_t *self = arg;
    const s_kind_t *kind = s_kind_by_resource (resource);
    const Zube__ObjectMeta *old_meta = zc_meta_of (old_object);
    const Zube__ObjectMeta *meta = zc_meta_of (new_object);
    if (!kind || !meta || !old_meta)
        return;
    bool deletion_changed = zc_deleting (meta) != zc_deleting (old_meta) ||
                            meta->n_finalizers != old_meta->n_finalizers;
    if (deletion_changed || !s_refs_equal (meta, old_meta))
        s_on_add (arg, resource, new_object);
    //  A dependent going away or let go: its foreground owners look again
    if (deletion_changed)
        s_enqueue_waiting_owners (self, meta);
    if (!s_refs_equal (meta, old_meta))
        s_enqueue_waiting_owners (self, old_meta);
}

static void
s_on_delete (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    const Zube__ObjectMeta *meta = zc_meta_of (object);
    if (!s_kind_by_resource (resource) || !meta)
        return;
    s_enqueue_dependents (self, meta->uid);
    s_enqueue_waiting_owners (self, meta);
}

//  ---------------------------------------------------------------------
//  Writes

//  Removes the string at index of the list at path (a JSON pointer)
//  from an object, testing first it is still there.
static zube_status_t
s_remove_at (s_self_t *self, const s_kind_t *kind, const Zube__ObjectMeta *meta,
             const char *path, size_t index, const char *field, const char *value,
             char *error, size_t error_size)
{
    char patch[1200];
    if (field)
        snprintf (patch, sizeof patch,
                  "[{\"op\":\"test\",\"path\":\"%s/%zu/%s\",\"value\":\"%s\"},"
                  "{\"op\":\"remove\",\"path\":\"%s/%zu\"}]",
                  path, index, field, value, path, index);
    else
        snprintf (patch, sizeof patch,
                  "[{\"op\":\"test\",\"path\":\"%s/%zu\",\"value\":\"%s\"},"
                  "{\"op\":\"remove\",\"path\":\"%s/%zu\"}]",
                  path, index, value, path, index);
    zube_status_t status = self->host->patch (
        self->host, kind->resource, kind->namespaced ? meta->namespace_ : NULL,
        meta->name, NULL, "application/json-patch+json", patch, NULL, NULL, error,
        error_size);
    return status == ZUBE_NOT_FOUND ? ZUBE_OK : status;
}

static zube_status_t
s_remove_finalizer (s_self_t *self, const s_kind_t *kind, const Zube__ObjectMeta *meta,
                    const char *finalizer, char *error, size_t error_size)
{
    for (size_t i = 0; i < meta->n_finalizers; i++)
        if (zc_streq (meta->finalizers[i], finalizer))
            return s_remove_at (self, kind, meta, "/metadata/finalizers", i, NULL,
                                finalizer, error, error_size);
    return ZUBE_OK;
}

static zube_status_t
s_remove_owner (s_self_t *self, const s_kind_t *kind, const Zube__ObjectMeta *meta,
                const char *uid, char *error, size_t error_size)
{
    for (size_t i = 0; i < meta->n_owner_references; i++)
        if (zc_streq (meta->owner_references[i]->uid, uid))
            return s_remove_at (self, kind, meta, "/metadata/ownerReferences", i, "uid",
                                uid, error, error_size);
    return ZUBE_OK;
}

static zube_status_t
s_delete (s_self_t *self, const s_kind_t *kind, const Zube__ObjectMeta *meta,
          const char *policy, char *error, size_t error_size)
{
    zube_ctrl_delete_options_t options = {
        .struct_size = sizeof options, .uid = meta->uid, .propagation_policy = policy};
    zube_status_t status = self->host->delete_ (
        self->host, kind->resource, kind->namespaced ? meta->namespace_ : NULL,
        meta->name, &options, error, error_size);
    if (status == ZUBE_OK)
        self->host->base->log (self->host->base, ZUBE_LOG_INFO,
                               "msg=\"deleting dependent\" resource=%s namespace=%s "
                               "name=%s propagation=%s",
                               kind->resource, meta->namespace_ ? meta->namespace_ : "",
                               meta->name, policy);
    //  Gone, or another object of the name now: nothing to do
    return status == ZUBE_NOT_FOUND || status == ZUBE_CONFLICT ? ZUBE_OK : status;
}

//  ---------------------------------------------------------------------
//  Sync

//  An owner being deleted with the orphan or foregroundDeletion finalizer:
//  its dependents let go or deleted, then the finalizer removed.
static zube_status_t
s_process_owner (s_self_t *self, const char *key, const s_kind_t *kind,
                 const Zube__ObjectMeta *meta, char *error, size_t error_size)
{
    bool orphan = s_has_finalizer (meta, S_ORPHAN);
    zube_status_t result = ZUBE_OK;
    bool blocked = false;
    for (size_t k = 0; k < S_KIND_COUNT; k++) {
        size_t count = 0;
        const ProtobufCMessage **list =
            self->host->list_index (self->host, s_kinds[k].resource,
                                    ZUBE_CTRL_INDEX_OWNER_UID, meta->uid, &count);
        for (size_t i = 0; i < count; i++) {
            const Zube__ObjectMeta *dependent = zc_meta_of (list[i]);
            zube_status_t status = ZUBE_OK;
            if (orphan)
                status = s_remove_owner (self, &s_kinds[k], dependent, meta->uid, error,
                                         error_size);
            else {
                bool blocks = false;
                for (size_t r = 0; r < dependent->n_owner_references; r++) {
                    const Zube__OwnerReference *ref = dependent->owner_references[r];
                    blocks |= zc_streq (ref->uid, meta->uid) &&
                              ref->has_block_owner_deletion && ref->block_owner_deletion;
                }
                blocked |= blocks;
                if (!zc_deleting (dependent))
                    status = s_delete (self, &s_kinds[k], dependent,
                                       blocks ? "Foreground" : "Background", error,
                                       error_size);
            }
            if (status != ZUBE_OK)
                result = status;
        }
        self->host->free_list (self->host, list);
    }
    if (result != ZUBE_OK)
        return result;
    if (orphan)
        //  The references removed may not be in the cache yet: the
        //  finalizer goes now all are asked for (Kubernetes waits for the
        //  patches' answers only, too)
        return s_remove_finalizer (self, kind, meta, S_ORPHAN, error, error_size);
    if (blocked) {
        //  Waits for the blocking dependents to go (their events enqueue
        //  this key; the retry covers a missed one)
        self->host->enqueue_after (self->host, key, S_RETRY_MS);
        return ZUBE_OK;
    }
    return s_remove_finalizer (self, kind, meta, S_FOREGROUND, error, error_size);
}

//  Whether the owner a reference names exists: the cache, else the
//  apiserver. 1 present, 0 absent, -1 could not tell.
static int
s_owner_exists (s_self_t *self, const s_kind_t *kind, const char *namespace_,
                const Zube__OwnerReference *ref, bool *waiting_p)
{
    const ProtobufCMessage *cached = s_cached_owner (self, kind, namespace_, ref);
    if (cached) {
        const Zube__ObjectMeta *meta = zc_meta_of (cached);
        *waiting_p = zc_deleting (meta) && s_has_finalizer (meta, S_FOREGROUND);
        return 1;
    }
    ProtobufCMessage *live = NULL;
    char why[512];
    zube_status_t status = self->host->get_live (
        self->host, kind->resource, kind->namespaced ? namespace_ : NULL, ref->name,
        kind->descriptor, &live, why, sizeof why);
    if (status == ZUBE_NOT_FOUND)
        return 0;
    if (status != ZUBE_OK)
        return -1;
    const Zube__ObjectMeta *meta = zc_meta_of (live);
    int exists = meta && zc_streq (meta->uid, ref->uid) ? 1 : 0;
    if (exists)
        *waiting_p = zc_deleting (meta) && s_has_finalizer (meta, S_FOREGROUND);
    zc_free (live);
    return exists;
}

//  A dependent: deleted when all its owners are gone, dangling references
//  removed when some are.
static zube_status_t
s_process_dependent (s_self_t *self, const s_kind_t *kind, const Zube__ObjectMeta *meta,
                     char *error, size_t error_size)
{
    size_t absent = 0, known = 0;
    const char *dangling[64];
    size_t n_refs = meta->n_owner_references < 64 ? meta->n_owner_references : 64;
    for (size_t i = 0; i < n_refs; i++) {
        const Zube__OwnerReference *ref = meta->owner_references[i];
        const s_kind_t *owner_kind = s_kind_of_ref (ref);
        if (!owner_kind)
            continue; //  a kind this collector does not know: present
        known++;
        bool waiting = false;
        int exists = s_owner_exists (self, owner_kind, meta->namespace_, ref, &waiting);
        if (exists < 0) {
            snprintf (error, error_size, "cannot look up owner %s %s", ref->kind,
                      ref->name);
            return ZUBE_UNAVAILABLE;
        }
        if (exists == 0)
            dangling[absent++] = ref->uid;
    }
    if (absent == 0)
        return ZUBE_OK;
    if (absent == n_refs && known == n_refs)
        return zc_deleting (meta)
                   ? ZUBE_OK
                   : s_delete (self, kind, meta, "Background", error, error_size);
    //  One at a time (the indexes move); the update's event syncs again
    return s_remove_owner (self, kind, meta, dangling[0], error, error_size);
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    const char *bar = strchr (key, '|');
    if (!bar)
        return ZUBE_OK;
    char resource[64];
    snprintf (resource, sizeof resource, "%.*s", (int)(bar - key), key);
    const s_kind_t *kind = s_kind_by_resource (resource);
    if (!kind)
        return ZUBE_OK;
    const ProtobufCMessage *object =
        self->host->get_by_key (self->host, resource, bar + 1);
    const Zube__ObjectMeta *meta = zc_meta_of (object);
    if (!meta)
        return ZUBE_OK;
    if (zc_deleting (meta) &&
        (s_has_finalizer (meta, S_ORPHAN) || s_has_finalizer (meta, S_FOREGROUND))) {
        zube_status_t status = s_process_owner (self, key, kind, meta, error, error_size);
        if (status != ZUBE_OK)
            return status;
    }
    if (meta->n_owner_references)
        return s_process_dependent (self, kind, meta, error, error_size);
    return ZUBE_OK;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "garbagecollector",
    .watches = s_watches,
    //  --concurrent-gc-syncs. Safe to interleave: no state beyond the
    //  sync's locals
    .workers = 20,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .on_delete = s_on_delete,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "garbagecollector", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_CONTROLLER, .ops = &s_ops,
                    .description = "deletes dependents whose owners are gone; foreground "
                                   "and orphan propagation")
