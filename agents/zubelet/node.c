/*  node - registration, lease and status of the process's nodes.

    Registration creates the Node (or, when it exists, merges our labels
    into it and updates it), writes its status (capacity, allocatable,
    conditions, addresses, nodeInfo, and the runtime's images) through the
    status subresource, and
    creates or renews its Lease in kube-node-lease. At most
    ZL_REGISTER_WINDOW registrations are in flight, so thousands of
    nodes register at the pace the apiserver commits them.

    Heartbeats: node i renews its Lease at phase i/N of the renew
    interval, so N nodes spread evenly; its status is written every
    status report period (5 min, Kubernetes' nodeStatusReportFrequency),
    spread the same way. A Lease renewed recently by another holder is a
    conflict at start; after that renewals are optimistic (at the Lease's
    resourceVersion, re-read on Conflict, see Lease below). Node status
    writes are unconditional: a node's status has one writer. */
#define _GNU_SOURCE
#include "zubelet.h"
#include "zube/codec.h"
#include "zube/log.h"
#include "zube/version.h"
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define ZL_REGISTER_WINDOW 64
#define ZL_RETRY_MS 1000

static void s_register_next (zubelet_t *self);
static void s_lease_renew (zubelet_t *self, zl_node_t *node);

//  ---------------------------------------------------------------------
//  The Node object

//  status.images as the kubelet reports them: the runtime's images, the
//  largest first, at most ZL_NODE_MAX_IMAGES (nodeStatusMaxImages). None
//  when the runtime has no image store (sim).
#define ZL_NODE_MAX_IMAGES 50

typedef struct {
    char *json;
    int64_t size;
} s_image_entry_t;

typedef struct {
    s_image_entry_t *items;
    size_t count;
} s_images_t;

static void
s_append (char **buf, size_t *size, size_t *used, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_image_collect (void *arg, const zube_runtime_image_t *image)
{
    s_images_t *images = (s_images_t *)arg;
    s_image_entry_t *grown = realloc (images->items, (images->count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    images->items = grown;
    char *json = NULL;
    size_t size = 0, used = 0;
    s_append (&json, &size, &used, "{\"names\":[");
    for (size_t i = 0; i < image->names_count; i++) {
        if (i)
            s_append (&json, &size, &used, ",");
        zl_json_string (&json, &size, &used, image->names[i]);
    }
    s_append (&json, &size, &used, "],\"sizeBytes\":%" PRIu64 "}", image->size_bytes);
    if (!json)
        return -1;
    images->items[images->count++] = (s_image_entry_t){json, (int64_t)image->size_bytes};
    return 0;
}

static int
s_image_larger (const void *a, const void *b)
{
    int64_t x = ((const s_image_entry_t *)a)->size, y = ((const s_image_entry_t *)b)->size;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void
s_images_append (zubelet_t *self, char **json, size_t *size, size_t *used)
{
    s_images_t images = {0};
    if (self->runtime &&
        zube_runtime_image_list (self->runtime, s_image_collect, &images) == ZUBE_OK &&
        images.count) {
        qsort (images.items, images.count, sizeof *images.items, s_image_larger);
        s_append (json, size, used, ",\"images\":[");
        for (size_t i = 0; i < images.count && i < ZL_NODE_MAX_IMAGES; i++)
            s_append (json, size, used, "%s%s", i ? "," : "", images.items[i].json);
        s_append (json, size, used, "]");
    }
    for (size_t i = 0; i < images.count; i++)
        free (images.items[i].json);
    free (images.items);
}

static const char *
s_host_arch (void)
{
    static char arch[72];
    if (arch[0])
        return arch;
    struct utsname un;
    const char *machine = uname (&un) == 0 ? un.machine : "x86_64";
    if (streq (machine, "x86_64"))
        snprintf (arch, sizeof arch, "amd64");
    else if (streq (machine, "aarch64"))
        snprintf (arch, sizeof arch, "arm64");
    else
        snprintf (arch, sizeof arch, "%.64s", machine);
    return arch;
}

void
zl_node_address (zubelet_t *self, zl_node_t *node, char *buf, size_t size)
{
    if (self->node_count == 1 && self->config.host_shape) {
        struct ifaddrs *list = NULL;
        snprintf (buf, size, "127.0.0.1");
        if (getifaddrs (&list) == 0) {
            for (struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
                if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_INET)
                    continue;
                struct sockaddr_in *in = (struct sockaddr_in *)ifa->ifa_addr;
                if ((ntohl (in->sin_addr.s_addr) >> 24) == 127)
                    continue;
                inet_ntop (AF_INET, &in->sin_addr, buf, (socklen_t)size);
                break;
            }
            freeifaddrs (list);
        }
        return;
    }
    //  Hollow nodes: 172.16.0.1, 172.16.0.2, ... one per node, apart
    //  from the sim runtime's pod addresses (10.x)
    uint32_t n = node->index + 1;
    snprintf (buf, size, "172.%u.%u.%u", 16 + ((n >> 16) & 15), (n >> 8) & 255, n & 255);
}

static void
s_append (char **buf, size_t *size, size_t *used, const char *format, ...)
{
    while (true) {
        va_list args;
        va_start (args, format);
        int n = vsnprintf (*buf + *used, *size - *used, format, args);
        va_end (args);
        if (n < 0)
            return;
        if ((size_t)n < *size - *used) {
            *used += (size_t)n;
            return;
        }
        size_t size_new = (*size + (size_t)n) * 2;
        char *grown = realloc (*buf, size_new);
        if (!grown)
            return;
        *buf = grown;
        *size = size_new;
    }
}

//  The whole Node as JSON, decoded by the generic codec: registration
//  and the 5-minute status report are rare enough for that.
static Zube__Node *
s_node_build (zubelet_t *self, zl_node_t *node)
{
    const zl_shape_t *shape = &self->config.shapes->shapes[node->shape];
    size_t size = 4096, used = 0;
    char *json = malloc (size);
    if (!json)
        return NULL;
    json[0] = 0;
    const char *arch = shape->arch ? shape->arch : s_host_arch ();
    const char *zone = shape->zone_count ? shape->zones[node->ordinal % shape->zone_count]
                                         : NULL;
    s_append (&json, &size, &used, "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":");
    zl_json_string (&json, &size, &used, node->name);
    s_append (&json, &size, &used,
              ",\"annotations\":{\"node.alpha.kubernetes.io/ttl\":\"0\","
              "\"zube.io/zubelet\":\"%s\",\"" ZL_SERVICE_ANNOTATION "\":",
              self->identity);
    zl_json_string (&json, &size, &used, zl_server_name (self));
    s_append (&json, &size, &used, "},\"labels\":{\"kubernetes.io/hostname\":");
    zl_json_string (&json, &size, &used, node->name);
    s_append (&json, &size, &used,
              ",\"kubernetes.io/os\":\"linux\",\"kubernetes.io/arch\":\"%s\""
              ",\"node.kubernetes.io/instance-type\":",
              arch);
    zl_json_string (&json, &size, &used, shape->name);
    if (zone) {
        s_append (&json, &size, &used, ",\"topology.kubernetes.io/zone\":");
        zl_json_string (&json, &size, &used, zone);
    }
    if (shape->region) {
        s_append (&json, &size, &used, ",\"topology.kubernetes.io/region\":");
        zl_json_string (&json, &size, &used, shape->region);
    }
    s_append (&json, &size, &used, "%s}},\"spec\":{\"taints\":%s},", shape->labels_json,
              shape->taints_json);
    char now[40], since[40], address[64];
    zl_format_time (zl_now_wall_ms (), now, sizeof now);
    zl_format_time (node->registered_s * 1000, since, sizeof since);
    zl_node_address (self, node, address, sizeof address);
    struct utsname un;
    bool have_uname = uname (&un) == 0;
    //  Stable per node: machineID and systemUUID from the name
    uint64_t hash = UINT64_C (1469598103934665603);
    for (const char *c = node->name; *c; c++)
        hash = (hash ^ (uint8_t)*c) * UINT64_C (1099511628211);
    s_append (
        &json, &size, &used,
        "\"status\":{\"capacity\":%s,\"allocatable\":%s,\"phase\":\"Running\",\"conditions\":["
        "{\"type\":\"MemoryPressure\",\"status\":\"False\",\"lastHeartbeatTime\":\"%s\","
        "\"lastTransitionTime\":\"%s\",\"reason\":\"KubeletHasSufficientMemory\","
        "\"message\":\"zubelet has sufficient memory available\"},"
        "{\"type\":\"DiskPressure\",\"status\":\"False\",\"lastHeartbeatTime\":\"%s\","
        "\"lastTransitionTime\":\"%s\",\"reason\":\"KubeletHasNoDiskPressure\","
        "\"message\":\"zubelet has no disk pressure\"},"
        "{\"type\":\"PIDPressure\",\"status\":\"False\",\"lastHeartbeatTime\":\"%s\","
        "\"lastTransitionTime\":\"%s\",\"reason\":\"KubeletHasSufficientPID\","
        "\"message\":\"zubelet has sufficient PID available\"},"
        "{\"type\":\"Ready\",\"status\":\"True\",\"lastHeartbeatTime\":\"%s\","
        "\"lastTransitionTime\":\"%s\",\"reason\":\"KubeletReady\","
        "\"message\":\"zubelet is posting ready status\"}],"
        "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"%s\"},"
        "{\"type\":\"Hostname\",\"address\":",
        shape->capacity_json, shape->allocatable_json, now, since, now, since, now, since, now,
        since, address);
    zl_json_string (&json, &size, &used, node->name);
    s_append (&json, &size, &used,
              "}],\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":10250}},"
              "\"nodeInfo\":{\"machineID\":\"%016" PRIx64 "%016" PRIx64 "\","
              "\"systemUUID\":\"%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-8%03" PRIx64
              "-%012" PRIx64 "\",\"bootID\":\"%s\",\"kernelVersion\":\"%s\","
              "\"osImage\":\"zube %s node\",\"containerRuntimeVersion\":\"%s://0.1\","
              "\"kubeletVersion\":\"v%s\",\"kubeProxyVersion\":\"\","
              "\"operatingSystem\":\"linux\",\"architecture\":\"%s\"}",
              hash, ~hash, hash >> 32, (hash >> 16) & 0xffff, hash & 0xfff, (hash >> 20) & 0xfff,
              (uint64_t)((~hash) & UINT64_C (0xffffffffffff)), self->identity, have_uname ? un.release : "",
              self->config.runtime, self->config.runtime, ZUBE_VERSION_STRING, arch);
    s_images_append (self, &json, &size, &used);
    s_append (&json, &size, &used, "}}");
    ProtobufCMessage *message = NULL;
    zube_codec_error_t error;
    if (zube_codec_decode (json, used, &zube__node__descriptor, &message, &error) != 0) {
        char text[800];
        zube_log_error ("msg=\"cannot build the node object\" node=%s error=\"%s\"",
                        node->name, zube_codec_error_format (&error, text, sizeof text));
        message = NULL;
    }
    free (json);
    return (Zube__Node *)message;
}

//  ---------------------------------------------------------------------
//  Conflicts: a node of ours whose lease another holder renewed recently

int
zl_node_check_conflicts (zubelet_t *self, char *error, size_t error_size)
{
    zube_api_list_options_t options = {.namespace = ZL_LEASE_NAMESPACE, .limit = 1000};
    char *token = NULL;
    int64_t now_ms = zl_now_wall_ms ();
    do {
        options.continue_token = token;
        zube_api_list_t *list = NULL;
        zube_api_error_t api_error;
        zube_status_t status = zube_api_list (self->api, "leases", &options, &list, &api_error);
        free (token);
        token = NULL;
        if (status != ZUBE_OK) {
            snprintf (error, error_size, "%s", api_error.message);
            return -1;
        }
        for (size_t i = 0; i < list->count; i++) {
            Zube__Lease *lease = (Zube__Lease *)list->items[i];
            if (!lease->metadata || !lease->metadata->name)
                continue;
            zl_node_t *node =
                (zl_node_t *)zhashx_lookup (self->node_by_name, lease->metadata->name);
            if (!node)
                continue;
            node->lease_exists = true;
            const char *holder = lease->spec ? lease->spec->holder_identity : NULL;
            if (!holder || !*holder || streq (holder, self->identity))
                continue;
            int64_t renewed = zl_parse_time_ms (lease->spec->renew_time);
            int64_t duration = lease->spec->has_lease_duration_seconds
                                   ? lease->spec->lease_duration_seconds
                                   : 40;
            if (renewed + duration * 1000 > now_ms) {
                snprintf (error, error_size,
                          "node name conflict: node \"%s\" is held by another live zubelet "
                          "(Lease %s/%s holder \"%s\", renewed %.1fs ago, duration %" PRId64
                          "s); choose another --node-name or --node-name-prefix, or stop "
                          "that zubelet",
                          node->name, ZL_LEASE_NAMESPACE, node->name, holder,
                          (double)(now_ms - renewed) / 1000.0, duration);
                zube_api_list_destroy (&list);
                return -2;
            }
        }
        if (list->continue_token && *list->continue_token)
            token = strdup (list->continue_token);
        zube_api_list_destroy (&list);
    } while (token);
    return 0;
}

//  ---------------------------------------------------------------------
//  Registration: create, or get + merge + update; then status; then lease

static void s_register (zubelet_t *self, zl_node_t *node);

static void
s_register_retry (zubelet_t *self, zl_node_t *node, const zube_api_error_t *error)
{
    if (self->closing)
        return;
    if (node->state == ZL_NODE_READY) {
        //  A periodic status report failed: again in a second, lease unaffected
        zube_log_warn ("msg=\"node status report failed, retrying\" node=%s error=\"%s\"",
                       node->name, error ? error->message : "");
        zl_timer_set (self, &node->status_timer, zl_now_mono () + ZL_RETRY_MS);
        return;
    }
    zube_log_warn ("msg=\"node registration failed, retrying\" node=%s error=\"%s\"",
                   node->name, error ? error->message : "");
    node->state = ZL_NODE_REGISTERING;
    zl_timer_set (self, &node->status_timer, zl_now_mono () + ZL_RETRY_MS);
}

static void
s_register_done (zubelet_t *self, zl_node_t *node)
{
    bool first = node->state != ZL_NODE_READY;
    node->state = ZL_NODE_READY;
    if (first) {
        self->registered++;
        if (self->registering)
            self->registering--;
        zube_log_debug ("msg=\"node registered\" node=%s", node->name);
        if (self->registered == self->node_count)
            zube_log_info ("msg=\"all nodes registered\" nodes=%zu", self->node_count);
        //  The first renewal at once (it creates the lease), then at the
        //  node's phase of the interval
        s_lease_renew (self, node);
        //  Then at the node's phase of the interval, within one interval
        int64_t interval = self->config.renew_interval_ms;
        int64_t phase = interval * (int64_t)node->index / (int64_t)self->node_count;
        int64_t now = zl_now_mono ();
        int64_t next = self->lease_epoch + phase;
        if (next <= now)
            next += ((now - next) / interval + 1) * interval;
        zl_timer_set (self, &node->lease_timer, next);
        s_register_next (self);
    }
    int64_t period = self->config.status_report_ms;
    int64_t phase = period * (int64_t)node->index / (int64_t)self->node_count;
    int64_t now = zl_now_mono ();
    zl_timer_set (self, &node->status_timer, now - now % period + phase + period);
}

static void
s_status_written (zubelet_t *self, zube_status_t status, ProtobufCMessage *object,
                  const zube_api_error_t *error, void *arg)
{
    (void)object;
    zl_node_t *node = (zl_node_t *)arg;
    node->status_in_flight = false;
    if (status == ZUBE_OK)
        s_register_done (self, node);
    else if (status == ZUBE_NOT_FOUND) {
        //  Deleted meanwhile: register again (create)
        if (node->state == ZL_NODE_READY) {
            node->state = ZL_NODE_NEW;
            if (self->registered)
                self->registered--;
            self->registering++;
        } else
            node->state = ZL_NODE_NEW;
        s_register (self, node);
    } else if (status != ZUBE_UNAVAILABLE || !self->api)
        s_register_retry (self, node, error);
    else
        s_register_retry (self, node, error);
}

static void
s_status_write (zubelet_t *self, zl_node_t *node)
{
    Zube__Node *object = s_node_build (self, node);
    if (!object) {
        s_register_retry (self, node, NULL);
        return;
    }
    Zube__UpdateRequest request = ZUBE__UPDATE_REQUEST__INIT;
    request.resource = "nodes";
    request.name = node->name;
    request.subresource = "status";
    size_t size = protobuf_c_message_get_packed_size (&object->base);
    uint8_t *data = malloc (size ? size : 1);
    if (data) {
        protobuf_c_message_pack (&object->base, data);
        request.has_object = true;
        request.object.data = data;
        request.object.len = size;
        if (zl_call (self, "update", &request.base, NULL, s_status_written, node) == 0)
            node->status_in_flight = true;
    }
    free (data);
    protobuf_c_message_free_unpacked (&object->base, NULL);
    if (!node->status_in_flight)
        s_register_retry (self, node, NULL);
}

static int
s_send_node (zubelet_t *self, const char *method, Zube__Node *object, zl_done_fn *fn,
             zl_node_t *node)
{
    size_t size = protobuf_c_message_get_packed_size (&object->base);
    uint8_t *data = malloc (size ? size : 1);
    if (!data)
        return -1;
    protobuf_c_message_pack (&object->base, data);
    int rc;
    if (streq (method, "create")) {
        Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
        request.resource = "nodes";
        request.has_object = true;
        request.object.data = data;
        request.object.len = size;
        rc = zl_call (self, method, &request.base, &zube__node__descriptor, fn, node);
    } else {
        Zube__UpdateRequest request = ZUBE__UPDATE_REQUEST__INIT;
        request.resource = "nodes";
        request.name = node->name;
        request.has_object = true;
        request.object.data = data;
        request.object.len = size;
        rc = zl_call (self, method, &request.base, &zube__node__descriptor, fn, node);
    }
    free (data);
    return rc;
}

static void
s_node_written (zubelet_t *self, zube_status_t status, ProtobufCMessage *object,
                const zube_api_error_t *error, void *arg)
{
    (void)object;
    zl_node_t *node = (zl_node_t *)arg;
    if (status == ZUBE_OK)
        s_status_write (self, node);
    else if (status == ZUBE_ALREADY_EXISTS || status == ZUBE_CONFLICT)
        s_register (self, node);        //  exists (now): get, merge, update
    else
        s_register_retry (self, node, error);
}

//  Merges our labels and annotations into the stored Node, takes our
//  taints when it has none, and updates it at its resourceVersion.
static void
s_node_got (zubelet_t *self, zube_status_t status, ProtobufCMessage *object,
            const zube_api_error_t *error, void *arg)
{
    zl_node_t *node = (zl_node_t *)arg;
    if (status == ZUBE_NOT_FOUND) {
        node->state = ZL_NODE_NEW;
        s_register (self, node);
        return;
    }
    if (status != ZUBE_OK || !object) {
        s_register_retry (self, node, error);
        return;
    }
    Zube__Node *stored = (Zube__Node *)object;
    Zube__Node *ours = s_node_build (self, node);
    if (!ours || !stored->metadata) {
        if (ours)
            protobuf_c_message_free_unpacked (&ours->base, NULL);
        s_register_retry (self, node, NULL);
        return;
    }
    //  Stored labels we do not set are kept
    Zube__ObjectMeta *meta = stored->metadata;
    for (size_t i = 0; i < meta->n_labels; i++) {
        bool ours_too = false;
        for (size_t j = 0; j < ours->metadata->n_labels && !ours_too; j++)
            ours_too = streq (ours->metadata->labels[j]->key, meta->labels[i]->key);
        if (ours_too)
            continue;
        Zube__ObjectMeta__LabelsEntry **labels =
            realloc (ours->metadata->labels,
                     (ours->metadata->n_labels + 1) * sizeof *ours->metadata->labels);
        if (!labels)
            break;
        ours->metadata->labels = labels;
        labels[ours->metadata->n_labels++] = meta->labels[i];
        meta->labels[i] = NULL;
    }
    size_t kept = 0;
    for (size_t i = 0; i < meta->n_labels; i++)
        if (meta->labels[i])
            meta->labels[kept++] = meta->labels[i];
    meta->n_labels = kept;
    //  The stored spec wins (taints others set, unschedulable), unless empty
    if (stored->spec && (stored->spec->n_taints || stored->spec->unschedulable)) {
        Zube__NodeSpec *spec = ours->spec;
        ours->spec = stored->spec;
        stored->spec = spec;
    }
    free (ours->metadata->resource_version);
    ours->metadata->resource_version = meta->resource_version;
    meta->resource_version = NULL;
    free (ours->metadata->uid);
    ours->metadata->uid = meta->uid;
    meta->uid = NULL;
    if (s_send_node (self, "update", ours, s_node_written, node) != 0)
        s_register_retry (self, node, NULL);
    protobuf_c_message_free_unpacked (&ours->base, NULL);
}

static void
s_register (zubelet_t *self, zl_node_t *node)
{
    if (node->state == ZL_NODE_NEW) {
        node->state = ZL_NODE_REGISTERING;
        Zube__Node *object = s_node_build (self, node);
        if (!object || s_send_node (self, "create", object, s_node_written, node) != 0)
            s_register_retry (self, node, NULL);
        if (object)
            protobuf_c_message_free_unpacked (&object->base, NULL);
        return;
    }
    Zube__GetRequest request = ZUBE__GET_REQUEST__INIT;
    request.resource = "nodes";
    request.name = node->name;
    if (zl_call (self, "get", &request.base, &zube__node__descriptor, s_node_got, node) != 0)
        s_register_retry (self, node, NULL);
}

void
zl_node_status_refresh (zubelet_t *self)
{
    for (size_t i = 0; i < self->node_count; i++) {
        zl_node_t *node = &self->nodes[i];
        if (node->state == ZL_NODE_READY && !node->status_in_flight)
            s_status_write (self, node);
    }
}

//  The status timer: a registration retry, or the periodic report
static void
s_status_timer (zubelet_t *self, zl_timer_t *timer)
{
    zl_node_t *node = (zl_node_t *)((char *)timer - offsetof (zl_node_t, status_timer));
    if (node->state == ZL_NODE_READY) {
        if (!node->status_in_flight)
            s_status_write (self, node);
        return;
    }
    s_register (self, node);
}

static void
s_register_next (zubelet_t *self)
{
    while (self->registering < ZL_REGISTER_WINDOW && self->next_register < self->node_count) {
        zl_node_t *node = &self->nodes[self->next_register++];
        self->registering++;
        s_register (self, node);
    }
}

//  ---------------------------------------------------------------------
//  Lease
//
//  Renewals are optimistic, as the kubelet's: the Lease last read or
//  written is updated at its resourceVersion with our holder and a new
//  renewTime. A Conflict (another writer, or a restarted zubelet's older
//  copy) re-reads the Lease and renews that, so labels or annotations
//  others put on it are kept and no renewal is skipped.

#define ZL_LEASE_RETRIES 5

//  Keeps the Lease the API answered (NULL: forget it, create next time)
static void
s_lease_keep (zl_node_t *node, const ProtobufCMessage *lease)
{
    free (node->lease_data);
    node->lease_data = NULL;
    node->lease_size = 0;
    if (!lease)
        return;
    size_t size = protobuf_c_message_get_packed_size (lease);
    node->lease_data = malloc (size ? size : 1);
    if (!node->lease_data)
        return;
    protobuf_c_message_pack (lease, node->lease_data);
    node->lease_size = (uint32_t)size;
}

static void
s_lease_got (zubelet_t *self, zube_status_t status, ProtobufCMessage *object,
             const zube_api_error_t *error, void *arg)
{
    zl_node_t *node = (zl_node_t *)arg;
    node->lease_in_flight = false;
    if (self->closing)
        return;
    if (status == ZUBE_OK && object) {
        s_lease_keep (node, object);
        node->lease_exists = true;
    } else if (status == ZUBE_NOT_FOUND) {
        s_lease_keep (node, NULL);
        node->lease_exists = false;
    } else {
        zube_log_warn ("msg=\"cannot read the lease after a conflict\" node=%s error=\"%s\"",
                       node->name, error ? error->message : "");
        return;     //  the next interval tries again
    }
    s_lease_renew (self, node);
}

static void
s_lease_reread (zubelet_t *self, zl_node_t *node)
{
    Zube__GetRequest request = ZUBE__GET_REQUEST__INIT;
    request.resource = "leases";
    request.namespace_ = ZL_LEASE_NAMESPACE;
    request.name = node->name;
    if (zl_call (self, "get", &request.base, &zube__lease__descriptor, s_lease_got, node) == 0)
        node->lease_in_flight = true;
}

static void
s_lease_done (zubelet_t *self, zube_status_t status, ProtobufCMessage *object,
              const zube_api_error_t *error, void *arg)
{
    zl_node_t *node = (zl_node_t *)arg;
    node->lease_in_flight = false;
    if (status == ZUBE_OK) {
        s_lease_keep (node, object);
        node->lease_exists = true;
        node->lease_retries = 0;
        int64_t now = zl_now_mono ();
        if (node->last_renew_ms) {
            int64_t gap = now - node->last_renew_ms;
            if (gap > self->stats.renew_max_gap_ms)
                self->stats.renew_max_gap_ms = gap;
            //  Late (the process stalled, or the apiserver was out of
            //  reach): the node lifecycle controller may have set Ready
            //  Unknown meanwhile, so the status is reported now, as the
            //  kubelet does when the node's status differs from its own
            if (gap > self->config.renew_interval_ms + 1000) {
                self->stats.renew_late++;
                if (node->state == ZL_NODE_READY)
                    zl_timer_set (self, &node->status_timer, now);
            }
        }
        node->last_renew_ms = now;
        self->stats.renewals++;
        return;
    }
    if (self->closing)
        return;
    self->stats.renew_errors++;
    bool retry = node->lease_retries++ < ZL_LEASE_RETRIES;
    if (retry && (status == ZUBE_CONFLICT || status == ZUBE_ALREADY_EXISTS)) {
        //  Someone else wrote it: renew what is there now
        self->stats.renew_conflicts++;
        zube_log_debug ("msg=\"lease renewal conflict: reading it again\" node=%s",
                        node->name);
        s_lease_reread (self, node);
    } else if (retry && status == ZUBE_NOT_FOUND && node->lease_exists) {
        s_lease_keep (node, NULL);
        node->lease_exists = false;
        s_lease_renew (self, node);
    } else
        zube_log_warn ("msg=\"lease renewal failed\" node=%s error=\"%s\"", node->name,
                       error ? error->message : "");
}

static void
s_lease_renew (zubelet_t *self, zl_node_t *node)
{
    if (node->lease_in_flight)
        return;
    if (node->lease_exists && !node->lease_data) {
        s_lease_reread (self, node);
        return;
    }
    char renew[48], acquire[48];
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    zl_format_micro_time ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, renew,
                          sizeof renew);
    zl_format_micro_time (node->registered_s * 1000000, acquire, sizeof acquire);
    Zube__Lease fresh = ZUBE__LEASE__INIT;
    Zube__ObjectMeta meta = ZUBE__OBJECT_META__INIT;
    Zube__LeaseSpec fresh_spec = ZUBE__LEASE_SPEC__INIT;
    Zube__Lease *lease = &fresh;
    Zube__Lease *stored = node->lease_data
                              ? zube__lease__unpack (NULL, node->lease_size, node->lease_data)
                              : NULL;
    if (stored && stored->metadata)
        lease = stored;
    else {
        fresh.api_version = "coordination.k8s.io/v1";
        fresh.kind = "Lease";
        meta.name = node->name;
        meta.namespace_ = ZL_LEASE_NAMESPACE;
        fresh.metadata = &meta;
    }
    Zube__LeaseSpec *spec = lease->spec;
    if (!spec)
        lease->spec = spec = &fresh_spec;
    //  Fields we set point into this frame; the stored ones are put back
    //  before the stored lease is freed
    char *their_holder = spec->holder_identity, *their_renew = spec->renew_time,
         *their_acquire = spec->acquire_time;
    bool taken_over = !their_holder || !streq (their_holder, self->identity);
    spec->holder_identity = self->identity;
    spec->has_lease_duration_seconds = true;
    spec->lease_duration_seconds = self->config.lease_duration_s;
    spec->renew_time = renew;
    if (taken_over || !their_acquire)
        spec->acquire_time = acquire;
    size_t size = zube__lease__get_packed_size (lease);
    uint8_t *data = malloc (size ? size : 1);
    if (data)
        zube__lease__pack (lease, data);
    spec->holder_identity = their_holder;
    spec->renew_time = their_renew;
    spec->acquire_time = their_acquire;
    if (lease->spec == &fresh_spec)
        lease->spec = NULL;
    if (stored)
        zube__lease__free_unpacked (stored, NULL);
    if (!data)
        return;
    int rc;
    if (node->lease_exists) {
        Zube__UpdateRequest request = ZUBE__UPDATE_REQUEST__INIT;
        request.resource = "leases";
        request.namespace_ = ZL_LEASE_NAMESPACE;
        request.name = node->name;
        request.has_object = true;
        request.object.data = data;
        request.object.len = size;
        rc = zl_call (self, "update", &request.base, &zube__lease__descriptor, s_lease_done,
                      node);
    } else {
        Zube__CreateRequest request = ZUBE__CREATE_REQUEST__INIT;
        request.resource = "leases";
        request.namespace_ = ZL_LEASE_NAMESPACE;
        request.has_object = true;
        request.object.data = data;
        request.object.len = size;
        rc = zl_call (self, "create", &request.base, &zube__lease__descriptor, s_lease_done,
                      node);
    }
    free (data);
    if (rc == 0)
        node->lease_in_flight = true;
}

static void
s_lease_timer (zubelet_t *self, zl_timer_t *timer)
{
    zl_node_t *node = (zl_node_t *)((char *)timer - offsetof (zl_node_t, lease_timer));
    int64_t interval = self->config.renew_interval_ms;
    int64_t now = zl_now_mono ();
    int64_t next = timer->when + interval;
    if (next <= now)
        next = now + interval;
    zl_timer_set (self, timer, next);
    node->lease_retries = 0;
    if (node->state == ZL_NODE_READY)
        s_lease_renew (self, node);
}

void
zl_node_start_registrations (zubelet_t *self)
{
    int64_t now = zl_now_mono ();
    int64_t wall_s = zl_now_wall_ms () / 1000;
    int64_t interval = self->config.renew_interval_ms;
    self->lease_epoch = now;
    for (size_t i = 0; i < self->node_count; i++) {
        zl_node_t *node = &self->nodes[i];
        node->registered_s = wall_s;
        node->lease_timer.fn = s_lease_timer;
        node->status_timer.fn = s_status_timer;
        //  Node i renews at phase i/N of every interval, from its
        //  registration on
        (void)interval;
    }
    s_register_next (self);
}
