/*  endpointslice - Kubernetes' EndpointSlice controller
    (pkg/controller/endpointslice, staging endpointslice/reconciler.go) as
    a plugin.

    A Service's key is synced when it changes, when a pod its selector
    matches (before or after the change) changes, or when one of its
    slices does. Sync builds the endpoints of the Service from the pods
    its selector matches in its namespace that have an IP and are not
    finished: address (the pod IP), nodeName, zone (the node's
    topology.kubernetes.io/zone label), targetRef (the Pod), hostname (when
    the pod's subdomain is the Service's name), and conditions ready (ready
    and not terminating, or always with publishNotReadyAddresses), serving
    (ready) and terminating (deletionTimestamp). Ports are the Service's,
    with named targetPorts resolved against each pod's container ports,
    so pods are grouped by address type and resolved ports, and each
    group is cut into slices of at most maxEndpointsPerSlice (100)
    endpoints, sorted by pod name. Slices carry the labels
    kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by
    and a controller ownerReference to the Service. Existing slices of a
    group are updated in place (only when they differ), missing ones
    created, extra ones deleted; a Service that is gone, being deleted,
    without selector, or of type ExternalName has its slices deleted.

    Settings (--controller-arg endpointslice.KEY=VALUE):
    maxEndpointsPerSlice (1..1000, default 100). */
#define _GNU_SOURCE
#include "ctrl_util.h"
#include "discovery.pb-c.h"

#define S_MANAGED_BY "endpointslice.kubernetes.io/managed-by"
#define S_CONTROLLER "endpointslice-controller.k8s.io"
#define S_SERVICE_NAME "kubernetes.io/service-name"
#define S_ZONE "topology.kubernetes.io/zone"
#define S_KEY_SIZE 600

typedef struct {
    const zube_ctrl_host_t *host;
    zc_expectations_t expectations;
    size_t max_endpoints;
} s_self_t;

static const char *const s_watches[] = {"services", "pods", "endpointslices", "nodes",
                                        NULL};

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->host = host;
    int64_t max = 100;
    if (!zc_setting_int (host, "maxEndpointsPerSlice", 1, 1000, "a number from 1 to 1000",
                         &max, error, error_size)) {
        free (self);
        return NULL;
    }
    self->max_endpoints = (size_t)max;
    return self;
}

static void
s_destroy (void *arg)
{
    s_self_t *self = arg;
    zc_expectations_clear (&self->expectations);
    free (self);
}

static void
s_key_of (const char *namespace_, const char *name, char *key, size_t size)
{
    if (zube_ctrl_key (namespace_, name, key, size) < 0)
        key[0] = 0;
}

//  A Service's selector (a plain map) against a pod's labels; an empty
//  selector selects nothing here.
static bool
s_selects (const Zube__Service *service, const Zube__Pod *pod)
{
    if (!service->spec || service->spec->n_selector == 0 || !pod->metadata)
        return false;
    for (size_t i = 0; i < service->spec->n_selector; i++)
        if (!zc_streq (zc_label (pod->metadata, service->spec->selector[i]->key),
                       service->spec->selector[i]->value))
            return false;
    return true;
}

static void
s_enqueue_services_of (s_self_t *self, const Zube__Pod *pod)
{
    if (!pod->metadata)
        return;
    size_t count = 0;
    const ProtobufCMessage **list = self->host->list (
        self->host, "services", pod->metadata->namespace_, NULL, &count);
    for (size_t i = 0; i < count; i++) {
        const Zube__Service *service = (const Zube__Service *)list[i];
        if (!s_selects (service, pod))
            continue;
        char key[S_KEY_SIZE];
        s_key_of (service->metadata->namespace_, service->metadata->name, key,
                  sizeof key);
        self->host->enqueue (self->host, key);
    }
    self->host->free_list (self->host, list);
}

static bool
s_managed (const Zube__EndpointSlice *slice)
{
    return slice->metadata &&
           zc_streq (zc_label (slice->metadata, S_MANAGED_BY), S_CONTROLLER);
}

static void
s_slice_event (s_self_t *self, const Zube__EndpointSlice *slice, bool added, bool deleted)
{
    const char *service = zc_label (slice->metadata, S_SERVICE_NAME);
    if (!s_managed (slice) || zc_empty (service))
        return;
    char key[S_KEY_SIZE], slice_key[S_KEY_SIZE];
    s_key_of (slice->metadata->namespace_, service, key, sizeof key);
    s_key_of (slice->metadata->namespace_, slice->metadata->name, slice_key,
              sizeof slice_key);
    if (added)
        zc_expectations_creation_observed (&self->expectations, key);
    if (deleted)
        zc_expectations_deletion_observed (&self->expectations, key, slice_key);
    self->host->enqueue (self->host, key);
}

static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    if (zc_streq (resource, "services")) {
        const Zube__ObjectMeta *meta = ((const Zube__Service *)object)->metadata;
        char key[S_KEY_SIZE];
        s_key_of (meta->namespace_, meta->name, key, sizeof key);
        self->host->enqueue (self->host, key);
    } else if (zc_streq (resource, "pods"))
        s_enqueue_services_of (self, (const Zube__Pod *)object);
    else if (zc_streq (resource, "endpointslices"))
        s_slice_event (self, (const Zube__EndpointSlice *)object, true, false);
}

static void
s_on_update (void *arg, const char *resource, const ProtobufCMessage *old_object,
             const ProtobufCMessage *new_object)
{
    s_self_t *self = arg;
    if (zc_streq (resource, "pods")) {
        s_enqueue_services_of (self, (const Zube__Pod *)old_object);
        s_enqueue_services_of (self, (const Zube__Pod *)new_object);
    } else if (zc_streq (resource, "endpointslices"))
        s_slice_event (self, (const Zube__EndpointSlice *)new_object, false, false);
    else if (zc_streq (resource, "services"))
        s_on_add (arg, resource, new_object);
}

static void
s_on_delete (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    if (zc_streq (resource, "endpointslices"))
        s_slice_event (self, (const Zube__EndpointSlice *)object, false, true);
    else if (zc_streq (resource, "pods"))
        s_enqueue_services_of (self, (const Zube__Pod *)object);
    else if (zc_streq (resource, "services"))
        s_on_add (arg, resource, object);
}

//  ---------------------------------------------------------------------
//  The desired endpoints

//  One pod's endpoint with its group: address type and resolved ports.
typedef struct {
    const Zube__Pod *pod;
    const char *address_type;
    int32_t ports[64];
} s_member_t;

//  The container port a Service port's targetPort names in pod (0 when
//  none: the pod is left out of that port, as Kubernetes does).
static int32_t
s_resolve_port (const Zube__ServicePort *port, const Zube__Pod *pod)
{
    const Zube__IntOrString *target = port->target_port;
    if (!target || (target->int_val == 0 && zc_empty (target->str_val)))
        return port->port;
    if (zc_empty (target->str_val))
        return target->int_val;
    const char *protocol = zc_empty (port->protocol) ? "TCP" : port->protocol;
    for (size_t c = 0; pod->spec && c < pod->spec->n_containers; c++) {
        const Zube__Container *container = pod->spec->containers[c];
        for (size_t p = 0; p < container->n_ports; p++) {
            const Zube__ContainerPort *cport = container->ports[p];
            const char *cprotocol = zc_empty (cport->protocol) ? "TCP" : cport->protocol;
            if (zc_streq (cport->name, target->str_val) && zc_streq (cprotocol, protocol))
                return cport->container_port;
        }
    }
    return 0;
}

static int
s_member_compare (const void *a_arg, const void *b_arg)
{
    const s_member_t *a = a_arg, *b = b_arg;
    int order = strcmp (a->address_type, b->address_type);
    if (order)
        return order;
    order = memcmp (a->ports, b->ports, sizeof a->ports);
    if (order)
        return order;
    return strcmp (a->pod->metadata->name, b->pod->metadata->name);
}

static bool
s_same_group (const s_member_t *a, const s_member_t *b)
{
    return zc_streq (a->address_type, b->address_type) &&
           memcmp (a->ports, b->ports, sizeof a->ports) == 0;
}

//  Kubernetes' ShouldPodBeInEndpoints: an IP, not finished.
static bool
s_endpoint_pod (const Zube__Pod *pod)
{
    return pod->status && !zc_empty (pod->status->pod_ip) && !zc_pod_terminated (pod);
}

//  ---------------------------------------------------------------------
//  Building slices

//  The parts of one slice, on the stack and borrowed strings.
typedef struct {
    Zube__Endpoint endpoint;
    Zube__EndpointConditions conditions;
    Zube__ObjectReference target;
    char *address;
} s_endpoint_t;

//  Fills copy (an own EndpointSlice) with the members' endpoints and
//  ports; the parts live in parts and the arrays, freed by the caller
//  after the write (s_slice_release).
typedef struct {
    Zube__Endpoint **endpoints;
    s_endpoint_t *parts;
    Zube__EndpointPort **ports;
    Zube__EndpointPort *port_parts;
    //  What copy had, put back before it is freed
    Zube__Endpoint **saved_endpoints;
    size_t saved_endpoint_count;
    Zube__EndpointPort **saved_ports;
    size_t saved_port_count;
    char *saved_address_type;
} s_fill_t;

static int
s_slice_fill (s_self_t *self, Zube__EndpointSlice *copy, const Zube__Service *service,
              const s_member_t *members, size_t count, s_fill_t *fill)
{
    memset (fill, 0, sizeof *fill);
    size_t n_ports = service->spec->n_ports < 64 ? service->spec->n_ports : 64;
    fill->endpoints = calloc (count + 1, sizeof *fill->endpoints);
    fill->parts = calloc (count + 1, sizeof *fill->parts);
    fill->ports = calloc (n_ports + 1, sizeof *fill->ports);
    fill->port_parts = calloc (n_ports + 1, sizeof *fill->port_parts);
    if (!fill->endpoints || !fill->parts || !fill->ports || !fill->port_parts)
        return -1;
    bool publish_not_ready = service->spec->has_publish_not_ready_addresses &&
                             service->spec->publish_not_ready_addresses;
    for (size_t i = 0; i < count; i++) {
        const Zube__Pod *pod = members[i].pod;
        s_endpoint_t *part = &fill->parts[i];
        zube__endpoint__init (&part->endpoint);
        zube__endpoint_conditions__init (&part->conditions);
        zube__object_reference__init (&part->target);
        part->address = pod->status->pod_ip;
        part->endpoint.addresses = &part->address;
        part->endpoint.n_addresses = 1;
        bool terminating = zc_deleting (pod->metadata);
        bool ready = zc_pod_ready (pod);
        part->conditions.has_ready = part->conditions.has_serving = 1;
        part->conditions.has_terminating = 1;
        part->conditions.ready = publish_not_ready || (ready && !terminating);
        part->conditions.serving = publish_not_ready || ready;
        part->conditions.terminating = terminating;
        part->endpoint.conditions = &part->conditions;
        part->target.kind = "Pod";
        part->target.namespace_ = pod->metadata->namespace_;
        part->target.name = pod->metadata->name;
        part->target.uid = pod->metadata->uid;
        part->endpoint.target_ref = &part->target;
        const char *node = pod->spec ? pod->spec->node_name : NULL;
        if (!zc_empty (node)) {
            part->endpoint.node_name = (char *)node;
            const Zube__Node *cached =
                (const Zube__Node *)self->host->get (self->host, "nodes", NULL, node);
            const char *zone = cached ? zc_label (cached->metadata, S_ZONE) : NULL;
            if (!zc_empty (zone))
                part->endpoint.zone = (char *)zone;
        }
        if (pod->spec && !zc_empty (pod->spec->hostname) &&
            zc_streq (pod->spec->subdomain, service->metadata->name))
            part->endpoint.hostname = pod->spec->hostname;
        fill->endpoints[i] = &part->endpoint;
    }
    for (size_t p = 0; p < n_ports; p++) {
        const Zube__ServicePort *sport = service->spec->ports[p];
        Zube__EndpointPort *port = &fill->port_parts[p];
        zube__endpoint_port__init (port);
        port->name = sport->name ? sport->name : "";
        port->protocol = zc_empty (sport->protocol) ? "TCP" : sport->protocol;
        port->app_protocol = sport->app_protocol;
        if (count && members[0].ports[p] > 0) {
            port->has_port = 1;
            port->port = members[0].ports[p];
        }
        fill->ports[p] = port;
    }
    fill->saved_endpoints = copy->endpoints;
    fill->saved_endpoint_count = copy->n_endpoints;
    fill->saved_ports = copy->ports;
    fill->saved_port_count = copy->n_ports;
    fill->saved_address_type = copy->address_type;
    copy->endpoints = fill->endpoints;
    copy->n_endpoints = count;
    copy->ports = fill->ports;
    copy->n_ports = n_ports;
    copy->address_type = (char *)(count ? members[0].address_type : "IPv4");
    return 0;
}

static void
s_slice_release (Zube__EndpointSlice *copy, s_fill_t *fill)
{
    if (copy && fill->endpoints && copy->endpoints == fill->endpoints) {
        copy->endpoints = fill->saved_endpoints;
        copy->n_endpoints = fill->saved_endpoint_count;
        copy->ports = fill->saved_ports;
        copy->n_ports = fill->saved_port_count;
        copy->address_type = fill->saved_address_type;
    }
    free (fill->endpoints);
    free (fill->parts);
    free (fill->ports);
    free (fill->port_parts);
    zc_free (copy);
}

static bool
s_packed_equal (const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t a_size = protobuf_c_message_get_packed_size (a);
    size_t b_size = protobuf_c_message_get_packed_size (b);
    if (a_size != b_size)
        return false;
    uint8_t *a_data = malloc (a_size + 1), *b_data = malloc (b_size + 1);
    bool equal = a_data && b_data;
    if (equal) {
        protobuf_c_message_pack (a, a_data);
        protobuf_c_message_pack (b, b_data);
        equal = memcmp (a_data, b_data, a_size) == 0;
    }
    free (a_data);
    free (b_data);
    return equal;
}

//  A label of an own object's metadata, set or added.
static int
s_set_label (Zube__ObjectMeta *meta, const char *key, const char *value)
{
    for (size_t i = 0; i < meta->n_labels; i++)
        if (zc_streq (meta->labels[i]->key, key)) {
            char *copy = strdup (value);
            if (!copy)
                return -1;
            free (meta->labels[i]->value);
            meta->labels[i]->value = copy;
            return 0;
        }
    Zube__ObjectMeta__LabelsEntry **grown =
        realloc (meta->labels, (meta->n_labels + 1) * sizeof *grown);
    Zube__ObjectMeta__LabelsEntry *entry = malloc (sizeof *entry);
    if (grown)
        meta->labels = grown;
    if (!grown || !entry) {
        free (entry);
        return -1;
    }
    zube__object_meta__labels_entry__init (entry);
    entry->key = strdup (key);
    entry->value = strdup (value);
    meta->labels[meta->n_labels++] = entry;
    return entry->key && entry->value ? 0 : -1;
}

//  A new own slice for the Service (metadata, labels, owner).
static Zube__EndpointSlice *
s_slice_new (const Zube__Service *service)
{
    Zube__EndpointSlice *slice = calloc (1, sizeof *slice);
    Zube__ObjectMeta *meta = calloc (1, sizeof *meta);
    Zube__OwnerReference *ref = calloc (1, sizeof *ref);
    Zube__OwnerReference **refs = calloc (1, sizeof *refs);
    char generate[300];
    snprintf (generate, sizeof generate, "%.250s-", service->metadata->name);
    if (!slice || !meta || !ref || !refs) {
        free (slice), free (meta), free (ref), free (refs);
        return NULL;
    }
    zube__endpoint_slice__init (slice);
    zube__object_meta__init (meta);
    zube__owner_reference__init (ref);
    slice->metadata = meta;
    slice->api_version = strdup ("discovery.k8s.io/v1");
    slice->kind = strdup ("EndpointSlice");
    meta->generate_name = strdup (generate);
    meta->namespace_ = strdup (service->metadata->namespace_);
    ref->api_version = strdup ("v1");
    ref->kind = strdup ("Service");
    ref->name = strdup (service->metadata->name);
    ref->uid = strdup (service->metadata->uid ? service->metadata->uid : "");
    ref->has_controller = ref->has_block_owner_deletion = 1;
    ref->controller = ref->block_owner_deletion = 1;
    refs[0] = ref;
    meta->owner_references = refs;
    meta->n_owner_references = 1;
    return slice;
}

//  Makes the Service's labels and the two of the controller right on an
//  own slice's metadata (Kubernetes copies the Service's labels).
static int
s_slice_labels (Zube__ObjectMeta *meta, const Zube__Service *service)
{
    int rc = 0;
    for (size_t i = 0; i < service->metadata->n_labels; i++) {
        const char *key = service->metadata->labels[i]->key;
        if (!zc_streq (key, S_SERVICE_NAME) && !zc_streq (key, S_MANAGED_BY))
            rc |= s_set_label (meta, key, service->metadata->labels[i]->value);
    }
    rc |= s_set_label (meta, S_SERVICE_NAME, service->metadata->name);
    rc |= s_set_label (meta, S_MANAGED_BY, S_CONTROLLER);
    return rc;
}

//  ---------------------------------------------------------------------
//  Sync

static const ProtobufCMessage **
s_slices_of (s_self_t *self, const char *namespace_, const char *service, size_t *count_p)
{
    char selector[400];
    snprintf (selector, sizeof selector, "%s=%s,%s=%s", S_SERVICE_NAME, service,
              S_MANAGED_BY, S_CONTROLLER);
    return self->host->list (self->host, "endpointslices", namespace_, selector, count_p);
}

static zube_status_t
s_delete_slices (s_self_t *self, const char *key, const ProtobufCMessage *const *slices,
                 size_t count, const Zube__Service *service, char *error,
                 size_t error_size)
{
    if (!count)
        return ZUBE_OK;
    char **keys = calloc (count, sizeof *keys);
    if (!keys) {
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    for (size_t i = 0; i < count; i++) {
        const Zube__ObjectMeta *meta = ((const Zube__EndpointSlice *)slices[i])->metadata;
        char slice_key[S_KEY_SIZE];
        s_key_of (meta->namespace_, meta->name, slice_key, sizeof slice_key);
        keys[i] = strdup (slice_key);
    }
    zc_expectations_expect (&self->expectations, key, 0, (const char *const *)keys,
                            count);
    zube_status_t result = ZUBE_OK;
    for (size_t i = 0; i < count; i++) {
        const Zube__ObjectMeta *meta = ((const Zube__EndpointSlice *)slices[i])->metadata;
        char why[1024] = "";
        zube_status_t status =
            self->host->delete_ (self->host, "endpointslices", meta->namespace_,
                                 meta->name, NULL, why, sizeof why);
        if (status != ZUBE_OK && status != ZUBE_NOT_FOUND) {
            zc_expectations_deletion_observed (&self->expectations, key, keys[i]);
            snprintf (error, error_size, "deleting EndpointSlice %s: %s", meta->name,
                      why);
            if (service)
                self->host->event (self->host, &service->base, ZUBE_CTRL_EVENT_WARNING,
                                   "FailedToUpdateEndpointSlices",
                                   "Error updating Endpoint Slices for Service %s/%s: %s",
                                   meta->namespace_, service->metadata->name, why);
            result = status;
        }
    }
    for (size_t i = 0; i < count; i++)
        free (keys[i]);
    free (keys);
    return result;
}

//  Writes one desired slice: over existing (update when it differs) or
//  new (create).
static zube_status_t
s_write_slice (s_self_t *self, const char *key, const Zube__Service *service,
               const Zube__EndpointSlice *existing, const s_member_t *members,
               size_t count, char *error, size_t error_size)
{
    Zube__EndpointSlice *copy =
        existing ? (Zube__EndpointSlice *)zc_copy (&existing->base,
                                                   &zube__endpoint_slice__descriptor)
                 : s_slice_new (service);
    s_fill_t fill;
    if (!copy || !copy->metadata || s_slice_labels (copy->metadata, service) != 0 ||
        s_slice_fill (self, copy, service, members, count, &fill) != 0) {
        s_slice_release (copy, &fill);
        snprintf (error, error_size, "out of memory");
        return ZUBE_INTERNAL;
    }
    zube_status_t status = ZUBE_OK;
    if (!existing) {
        zc_expectations_expect (&self->expectations, key, 1, NULL, 0);
        status = self->host->create (self->host, "endpointslices",
                                     service->metadata->namespace_, &copy->base, NULL,
                                     error, error_size);
        if (status != ZUBE_OK)
            zc_expectations_creation_observed (&self->expectations, key);
    } else if (!s_packed_equal (&copy->base, &existing->base))
        status = self->host->update (self->host, "endpointslices", &copy->base, NULL,
                                     NULL, error, error_size);
    if (status != ZUBE_OK && status != ZUBE_CONFLICT)
        self->host->event (self->host, &service->base, ZUBE_CTRL_EVENT_WARNING,
                           "FailedToUpdateEndpointSlices",
                           "Error updating Endpoint Slices for Service %s/%s: %s",
                           service->metadata->namespace_, service->metadata->name, error);
    s_slice_release (copy, &fill);
    return status;
}

//  The group (address type, ports) of an existing slice, to pair it with
//  a desired one.
static bool
s_slice_in_group (const Zube__EndpointSlice *slice, const s_member_t *member,
                  size_t n_ports)
{
    if (!zc_streq (slice->address_type, member->address_type) ||
        slice->n_ports != n_ports)
        return false;
    for (size_t p = 0; p < n_ports; p++) {
        int32_t port = slice->ports[p]->has_port ? slice->ports[p]->port : 0;
        if (port != member->ports[p])
            return false;
    }
    return true;
}

static zube_status_t
s_reconcile (s_self_t *self, const char *key, const Zube__Service *service,
             const ProtobufCMessage **slices, size_t slice_count, char *error,
             size_t error_size)
{
    size_t pod_count = 0;
    const ProtobufCMessage **pods = self->host->list (
        self->host, "pods", service->metadata->namespace_, NULL, &pod_count);
    s_member_t *members = calloc (pod_count + 1, sizeof *members);
    bool *used = calloc (slice_count + 1, sizeof *used);
    size_t n_ports = service->spec->n_ports < 64 ? service->spec->n_ports : 64;
    size_t count = 0;
    zube_status_t result = ZUBE_OK;
    if (!members || !used) {
        snprintf (error, error_size, "out of memory");
        result = ZUBE_INTERNAL;
        goto done;
    }
    for (size_t i = 0; i < pod_count; i++) {
        const Zube__Pod *pod = (const Zube__Pod *)pods[i];
        if (!s_selects (service, pod) || !s_endpoint_pod (pod))
            continue;
        s_member_t *member = &members[count++];
        member->pod = pod;
        member->address_type = strchr (pod->status->pod_ip, ':') ? "IPv6" : "IPv4";
        for (size_t p = 0; p < n_ports; p++)
            member->ports[p] = s_resolve_port (service->spec->ports[p], pod);
    }
    qsort (members, count, sizeof *members, s_member_compare);
    //  Each group, in chunks, paired with the group's existing slices by
    //  name order (the cache lists sorted by key)
    for (size_t start = 0; start < count;) {
        size_t end = start;
        while (end < count && s_same_group (&members[start], &members[end]))
            end++;
        for (size_t chunk = start; chunk < end; chunk += self->max_endpoints) {
            size_t size =
                end - chunk < self->max_endpoints ? end - chunk : self->max_endpoints;
            const Zube__EndpointSlice *existing = NULL;
            for (size_t s = 0; s < slice_count && !existing; s++)
                if (!used[s] && s_slice_in_group ((const Zube__EndpointSlice *)slices[s],
                                                  &members[chunk], n_ports)) {
                    used[s] = true;
                    existing = (const Zube__EndpointSlice *)slices[s];
                }
            zube_status_t status = s_write_slice (
                self, key, service, existing, &members[chunk], size, error, error_size);
            if (status != ZUBE_OK)
                result = status;
        }
        start = end;
    }
    //  No endpoints: Kubernetes keeps one empty slice (the placeholder)
    if (count == 0) {
        const Zube__EndpointSlice *existing =
            slice_count ? (const Zube__EndpointSlice *)slices[0] : NULL;
        if (existing)
            used[0] = true;
        zube_status_t status =
            s_write_slice (self, key, service, existing, NULL, 0, error, error_size);
        if (status != ZUBE_OK)
            result = status;
    }
    const ProtobufCMessage **extra = calloc (slice_count + 1, sizeof *extra);
    size_t extra_count = 0;
    for (size_t s = 0; extra && s < slice_count; s++)
        if (!used[s])
            extra[extra_count++] = slices[s];
    zube_status_t status =
        s_delete_slices (self, key, extra, extra_count, service, error, error_size);
    if (status != ZUBE_OK)
        result = status;
    free (extra);
done:
    free (members);
    free (used);
    self->host->free_list (self->host, pods);
    return result;
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    char namespace_[256], name[256];
    if (zube_ctrl_split_key (key, namespace_, name, sizeof name) != 0)
        return ZUBE_OK;
    if (!zc_expectations_satisfied (&self->expectations, key))
        return ZUBE_OK; //  the slices written are not in the cache yet
    const Zube__Service *service =
        (const Zube__Service *)self->host->get (self->host, "services", namespace_, name);
    size_t slice_count = 0;
    const ProtobufCMessage **slices = s_slices_of (self, namespace_, name, &slice_count);
    zube_status_t status;
    bool wanted = service && service->metadata && service->spec &&
                  !zc_deleting (service->metadata) && service->spec->n_selector > 0 &&
                  !zc_streq (service->spec->type, "ExternalName");
    if (!wanted) {
        status =
            s_delete_slices (self, key, slices, slice_count, NULL, error, error_size);
        if (!service)
            zc_expectations_delete (&self->expectations, key);
    } else {
        //  Slices of an earlier Service of the same name are not ours
        const ProtobufCMessage **mine = calloc (slice_count + 1, sizeof *mine);
        const ProtobufCMessage **stale = calloc (slice_count + 1, sizeof *stale);
        size_t mine_count = 0, stale_count = 0;
        for (size_t i = 0; mine && stale && i < slice_count; i++) {
            const Zube__OwnerReference *ref =
                zc_controller_of (((const Zube__EndpointSlice *)slices[i])->metadata);
            if (ref && !zc_streq (ref->uid, service->metadata->uid))
                stale[stale_count++] = slices[i];
            else
                mine[mine_count++] = slices[i];
        }
        status = mine && stale ? s_reconcile (self, key, service, mine, mine_count, error,
                                              error_size)
                               : ZUBE_INTERNAL;
        zube_status_t deleted =
            s_delete_slices (self, key, stale, stale_count, service, error, error_size);
        if (status == ZUBE_OK)
            status = deleted;
        free (mine);
        free (stale);
    }
    self->host->free_list (self->host, slices);
    return status;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "endpointslice",
    .watches = s_watches,
    //  --concurrent-service-endpoint-syncs. Safe to interleave:
    //  expectations are looked up by key at every use
    .workers = 5,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .on_delete = s_on_delete,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "endpointslice", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_CONTROLLER, .ops = &s_ops,
                    .description = "EndpointSlices of every Service with a selector")
