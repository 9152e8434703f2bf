/*  zube_kinds - the registry of object kinds zube stores.

    One static table, one row per kind; lookups are linear scans, which
    for a couple of dozen rows is faster than anything that needs
    building, and keeps the table a plain constant. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "apps.pb-c.h"
#include "batch.pb-c.h"
#include "coordination.pb-c.h"
#include "core.pb-c.h"
#include "discovery.pb-c.h"
#include "zube.pb-c.h"
#include "zube/kinds.h"

static const zube_kind_t s_kinds[] = {
    //  core/v1
    {
        .api_version = "v1",
        .group = "",
        .version = "v1",
        .kind = "Namespace",
        .resource = "namespaces",
        .singular = "namespace",
        .short_names = "ns",
        .namespaced = false,
        .has_status = true,
        .descriptor = &zube__namespace__descriptor,
        .list_descriptor = &zube__namespace_list__descriptor,
    },
    {
        .api_version = "v1",
        .group = "",
        .version = "v1",
        .kind = "Pod",
        .resource = "pods",
        .singular = "pod",
        .short_names = "po",
        .namespaced = true,
        .has_status = true,
        .descriptor = &zube__pod__descriptor,
        .list_descriptor = &zube__pod_list__descriptor,
    },
    {
        .api_version = "v1",
        .group = "",
        .version = "v1",
        .kind = "Node",
        .resource = "nodes",
        .singular = "node",
        .short_names = "no",
        .namespaced = false,
        .has_status = true,
        .descriptor = &zube__node__descriptor,
        .list_descriptor = &zube__node_list__descriptor,
    },
    {
        .api_version = "v1",
        .group = "",
        .version = "v1",
        .kind = "Service",
        .resource = "services",
        .singular = "service",
        .short_names = "svc",
        .namespaced = true,
        .has_status = true,
        .descriptor = &zube__service__descriptor,
        .list_descriptor = &zube__service_list__descriptor,
    },
    //  discovery.k8s.io/v1
    {
        .api_version = "discovery.k8s.io/v1",
        .group = "discovery.k8s.io",
        .version = "v1",
        .kind = "EndpointSlice",
        .resource = "endpointslices",
        .singular = "endpointslice",
        .short_names = "",
        .namespaced = true,
        .has_status = false,
        .descriptor = &zube__endpoint_slice__descriptor,
        .list_descriptor = &zube__endpoint_slice_list__descriptor,
    },
    //  core/v1
    {
        .api_version = "v1",
        .group = "",
        .version = "v1",
        .kind = "ServiceAccount",
        .resource = "serviceaccounts",
        .singular = "serviceaccount",
        .short_names = "sa",
        .namespaced = true,
        .has_status = false,
        .descriptor = &zube__service_account__descriptor,
        .list_descriptor = &zube__service_account_list__descriptor,
    },
    {
        .api_version = "v1",
        .group = "",
        .version = "v1",
        .kind = "ConfigMap",
        .resource = "configmaps",
        .singular = "configmap",
        .short_names = "cm",
        .namespaced = true,
        .has_status = false,
        .descriptor = &zube__config_map__descriptor,
        .list_descriptor = &zube__config_map_list__descriptor,
    },
    {
        .api_version = "v1",
        .group = "",
        .version = "v1",
        .kind = "Secret",
        .resource = "secrets",
        .singular = "secret",
        .short_names = "",
        .namespaced = true,
        .has_status = false,
        .descriptor = &zube__secret__descriptor,
        .list_descriptor = &zube__secret_list__descriptor,
    },
    {
        .api_version = "v1",
        .group = "",
        .version = "v1",
        .kind = "Event",
        .resource = "events",
        .singular = "event",
        .short_names = "ev",
        .namespaced = true,
        .has_status = false,
        .descriptor = &zube__event__descriptor,
        .list_descriptor = &zube__event_list__descriptor,
    },
    //  apps/v1
    {
        .api_version = "apps/v1",
        .group = "apps",
        .version = "v1",
        .kind = "ReplicaSet",
        .resource = "replicasets",
        .singular = "replicaset",
        .short_names = "rs",
        .namespaced = true,
        .has_status = true,
        .descriptor = &zube__replica_set__descriptor,
        .list_descriptor = &zube__replica_set_list__descriptor,
    },
    {
        .api_version = "apps/v1",
        .group = "apps",
        .version = "v1",
        .kind = "Deployment",
        .resource = "deployments",
        .singular = "deployment",
        .short_names = "deploy",
        .namespaced = true,
        .has_status = true,
        .descriptor = &zube__deployment__descriptor,
        .list_descriptor = &zube__deployment_list__descriptor,
    },
    {
        .api_version = "apps/v1",
        .group = "apps",
        .version = "v1",
        .kind = "DaemonSet",
        .resource = "daemonsets",
        .singular = "daemonset",
        .short_names = "ds",
        .namespaced = true,
        .has_status = true,
        .descriptor = &zube__daemon_set__descriptor,
        .list_descriptor = &zube__daemon_set_list__descriptor,
    },
    //  batch/v1
    {
        .api_version = "batch/v1",
        .group = "batch",
        .version = "v1",
        .kind = "Job",
        .resource = "jobs",
        .singular = "job",
        .short_names = "",
        .namespaced = true,
        .has_status = true,
        .descriptor = &zube__job__descriptor,
        .list_descriptor = &zube__job_list__descriptor,
    },
    //  coordination.k8s.io/v1
    {
        .api_version = "coordination.k8s.io/v1",
        .group = "coordination.k8s.io",
        .version = "v1",
        .kind = "Lease",
        .resource = "leases",
        .singular = "lease",
        .short_names = "",
        .namespaced = true,
        .has_status = false,
        .descriptor = &zube__lease__descriptor,
        .list_descriptor = &zube__lease_list__descriptor,
    },
    //  zube.io/v1alpha1
    {
        .api_version = "zube.io/v1alpha1",
        .group = "zube.io",
        .version = "v1alpha1",
        .kind = "Plugin",
        .resource = "plugins",
        .singular = "plugin",
        .short_names = "",
        .namespaced = false,
        .has_status = true,
        .descriptor = &zube__plugin__descriptor,
        .list_descriptor = &zube__plugin_list__descriptor,
    },
    {
        .api_version = "zube.io/v1alpha1",
        .group = "zube.io",
        .version = "v1alpha1",
        .kind = "SchedulerProfile",
        .resource = "schedulerprofiles",
        .singular = "schedulerprofile",
        .short_names = "",
        .namespaced = false,
        .has_status = false,
        .descriptor = &zube__scheduler_profile__descriptor,
        .list_descriptor = &zube__scheduler_profile_list__descriptor,
    },
    {
        .api_version = "zube.io/v1alpha1",
        .group = "zube.io",
        .version = "v1alpha1",
        .kind = "PodGroup",
        .resource = "podgroups",
        .singular = "podgroup",
        .short_names = "pg",
        .namespaced = true,
        .has_status = true,
        .descriptor = &zube__pod_group__descriptor,
        .list_descriptor = &zube__pod_group_list__descriptor,
    },
};

#define S_KIND_COUNT (sizeof s_kinds / sizeof s_kinds[0])

const zube_kind_t *
zube_kind_lookup (const char *api_version, const char *kind)
{
    if (!kind)
        return NULL;
    for (size_t i = 0; i < S_KIND_COUNT; i++)
        if (strcmp (s_kinds[i].kind, kind) == 0 &&
            (!api_version || strcmp (s_kinds[i].api_version, api_version) == 0))
            return &s_kinds[i];
    return NULL;
}

//  True if `name` is one of the comma-separated names in `list`,
//  ignoring case.
static bool
s_in_list (const char *list, const char *name, size_t name_len)
{
    while (*list) {
        size_t len = strcspn (list, ",");
        if (len == name_len && strncasecmp (list, name, len) == 0)
            return true;
        list += len;
        if (*list == ',')
            list++;
    }
    return false;
}

static bool
s_names_kind (const zube_kind_t *self, const char *name, size_t len)
{
    return (strlen (self->resource) == len &&
            strncasecmp (self->resource, name, len) == 0) ||
           (strlen (self->singular) == len &&
            strncasecmp (self->singular, name, len) == 0) ||
           (strlen (self->kind) == len && strncasecmp (self->kind, name, len) == 0) ||
           s_in_list (self->short_names, name, len);
}

//  `qualifier` is what follows the first '.' of a qualified name: the
//  group ("apps"), or the version and the group ("v1.apps").
static bool
s_qualifier_matches (const zube_kind_t *self, const char *qualifier)
{
    if (strcasecmp (self->group, qualifier) == 0)
        return true;
    size_t version_len = strlen (self->version);
    return *self->group && strncasecmp (qualifier, self->version, version_len) == 0 &&
           qualifier[version_len] == '.' &&
           strcasecmp (qualifier + version_len + 1, self->group) == 0;
}

const zube_kind_t *
zube_kind_by_resource (const char *name)
{
    if (!name || !*name)
        return NULL;
    const char *dot = strchr (name, '.');
    size_t len = dot ? (size_t)(dot - name) : strlen (name);
    for (size_t i = 0; i < S_KIND_COUNT; i++)
        if (s_names_kind (&s_kinds[i], name, len) &&
            (!dot || s_qualifier_matches (&s_kinds[i], dot + 1)))
            return &s_kinds[i];
    return NULL;
}

const zube_kind_t *
zube_kind_by_descriptor (const ProtobufCMessageDescriptor *descriptor)
{
    if (!descriptor)
        return NULL;
    for (size_t i = 0; i < S_KIND_COUNT; i++)
        if (s_kinds[i].descriptor == descriptor ||
            s_kinds[i].list_descriptor == descriptor)
            return &s_kinds[i];
    return NULL;
}

size_t
zube_kinds_count (void)
{
    return S_KIND_COUNT;
}

const zube_kind_t *
zube_kind_at (size_t index)
{
    return index < S_KIND_COUNT ? &s_kinds[index] : NULL;
}
