/*  serviceaccount - Kubernetes' serviceaccount controller (the
    ServiceAccountsController of kube-controller-manager): every active
    namespace has a ServiceAccount named "default", made again when it is
    deleted. The key is the namespace's name; a namespace being deleted
    (phase Terminating or a deletionTimestamp) gets none. */
#include "core.pb-c.h"
#include "zube/controller.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ACCOUNT "default"

typedef struct {
    const zube_ctrl_host_t *host;
} s_self_t;

static const char *const s_watches[] = {"namespaces", "serviceaccounts", NULL};

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    (void)error, (void)error_size;
    s_self_t *self = calloc (1, sizeof *self);
    if (self)
        self->host = host;
    return self;
}

static void
s_destroy (void *self)
{
    free (self);
}

static const Zube__ObjectMeta *
s_meta (const char *resource, const ProtobufCMessage *object)
{
    return strcmp (resource, "namespaces") == 0
               ? ((const Zube__Namespace *)object)->metadata
               : ((const Zube__ServiceAccount *)object)->metadata;
}

//  A namespace is synced when it appears; a ServiceAccount only matters
//  when it is the default one and goes away.
static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    const Zube__ObjectMeta *meta = s_meta (resource, object);
    if (meta && meta->name && strcmp (resource, "namespaces") == 0)
        self->host->enqueue (self->host, meta->name);
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
    const Zube__ObjectMeta *meta = s_meta (resource, object);
    if (meta && meta->name && meta->namespace_ &&
        strcmp (resource, "serviceaccounts") == 0 && strcmp (meta->name, S_ACCOUNT) == 0)
        self->host->enqueue (self->host, meta->namespace_);
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    const Zube__Namespace *ns =
        (const Zube__Namespace *)self->host->get (self->host, "namespaces", NULL, key);
    if (!ns || !ns->metadata)
        return ZUBE_OK;
    bool terminating =
        (ns->metadata->deletion_timestamp && *ns->metadata->deletion_timestamp) ||
        (ns->status && ns->status->phase &&
         strcmp (ns->status->phase, "Terminating") == 0);
    if (terminating || self->host->get (self->host, "serviceaccounts", key, S_ACCOUNT))
        return ZUBE_OK;
    Zube__ServiceAccount account = ZUBE__SERVICE_ACCOUNT__INIT;
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    account.api_version = "v1";
    account.kind = "ServiceAccount";
    meta.name = S_ACCOUNT;
    meta.namespace_ = (char *)key;
    account.metadata = &meta;
    zube_status_t status = self->host->create (self->host, "serviceaccounts", key,
                                               &account.base, NULL, error, error_size);
    //  Made meanwhile (the cache lags), or the namespace is going away
    if (status == ZUBE_ALREADY_EXISTS || status == ZUBE_NOT_FOUND)
        return ZUBE_OK;
    if (status == ZUBE_FORBIDDEN && strstr (error, "being terminated"))
        return ZUBE_OK;
    return status;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "serviceaccount",
    .watches = s_watches,
    //  One, as Kubernetes runs its ServiceAccounts controller
    .workers = 1,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .on_delete = s_on_delete,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "serviceaccount", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_CONTROLLER, .ops = &s_ops,
                    .description = "a default ServiceAccount in every namespace")
