/*  cache - the scheduler's node cache: every node with what the pods on it
    take (requests, non-zero requests for scoring, host ports, pod count),
    kept incrementally as pods and nodes come and go, and the digest of a
    pod that filter and score read (zube_sched_pod_t).

    A pod is held on a node by its key, whether the node exists yet or not
    (a placeholder node keeps the totals until the node arrives), so the
    order in which the informers deliver nodes and pods does not matter. */
#define _GNU_SOURCE
#include "zs_sched.h"
#include "zube/quantity.h"
#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_DEFAULT_MILLI_CPU 100
#define S_DEFAULT_MEMORY (200 * 1024 * 1024)

//  ---------------------------------------------------------------------
//  Pods

int64_t
zs_time_ms (const char *text)
{
    if (!text || !*text)
        return 0;
    struct tm tm = {0};
    const char *rest = strptime (text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return 0;
    int64_t ms = (int64_t)timegm (&tm) * 1000;
    if (*rest == '.') {
        int64_t scale = 100;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
            ms += (*rest - '0') * scale;
    }
    return ms;
}

static int64_t
s_quantity (const Zube__Quantity *quantity)
{
    if (!quantity)
        return 0;
    if (quantity->has_milli_value)
        return quantity->milli_value;
    int64_t milli = 0;
    char error[128];
    if (quantity->string &&
        zube_quantity_parse (quantity->string, &milli, error, sizeof error) == 0)
        return milli;
    return 0;
}

//  Adds (or, max, raises to) amount of resource name into r; scalars
//  grow the array *scalars_p of r.
static void
s_resource_apply (zube_sched_resources_t *r, zube_sched_scalar_t **scalars_p,
                  const char *name, int64_t milli, bool max)
{
    int64_t *slot = NULL;
    if (streq (name, "cpu"))
        slot = &r->milli_cpu;
    else if (streq (name, "memory"))
        slot = &r->memory, milli = zube_quantity_value (milli);
    else if (streq (name, "ephemeral-storage"))
        slot = &r->ephemeral_storage, milli = zube_quantity_value (milli);
    else if (streq (name, "pods"))
        slot = &r->pods, milli = zube_quantity_value (milli);
    else {
        for (size_t i = 0; i < r->scalar_count; i++)
            if (streq ((*scalars_p)[i].name, name))
                slot = &(*scalars_p)[i].milli;
        if (!slot) {
            zube_sched_scalar_t *grown =
                realloc (*scalars_p, (r->scalar_count + 1) * sizeof *grown);
            if (!grown)
                return;
            *scalars_p = grown;
            grown[r->scalar_count] = (zube_sched_scalar_t){.name = name, .milli = 0};
            slot = &grown[r->scalar_count++].milli;
        }
        r->scalars = *scalars_p;
    }
    *slot = max ? (milli > *slot ? milli : *slot) : *slot + milli;
}

//  One container's requests into r (sum) or r (max), with the non-zero
//  defaults into score.
static void
s_container_requests (zs_pod_t *self, const Zube__Container *container, bool max)
{
    const Zube__ResourceRequirements *resources = container->resources;
    bool has_cpu = false, has_memory = false;
    zube_sched_resources_t one = {0}, one_score = {0};
    zube_sched_scalar_t *scalars = NULL;
    for (size_t i = 0; resources && i < resources->n_requests; i++) {
        const char *name = resources->requests[i]->key;
        int64_t milli = s_quantity (resources->requests[i]->value);
        has_cpu |= streq (name, "cpu");
        has_memory |= streq (name, "memory");
        s_resource_apply (&one, &scalars, name, milli, false);
    }
    //  Limits stand for absent requests, as Kubernetes defaults them
    for (size_t i = 0; resources && i < resources->n_limits; i++) {
        const char *name = resources->limits[i]->key;
        bool requested = false;
        for (size_t j = 0; j < resources->n_requests; j++)
            requested |= streq (resources->requests[j]->key, name);
        if (!requested) {
            has_cpu |= streq (name, "cpu");
            has_memory |= streq (name, "memory");
            s_resource_apply (&one, &scalars, name,
                              s_quantity (resources->limits[i]->value), false);
        }
    }
    one_score.milli_cpu = has_cpu ? one.milli_cpu : S_DEFAULT_MILLI_CPU;
    one_score.memory = has_memory ? one.memory : S_DEFAULT_MEMORY;
    zube_sched_resources_t *r = &self->view.requests;
    zube_sched_resources_t *score = &self->view.score_requests;
    s_resource_apply (r, &self->scalars, "cpu", one.milli_cpu, max);
    r->memory =
        max ? (one.memory > r->memory ? one.memory : r->memory) : r->memory + one.memory;
    r->ephemeral_storage =
        max ? (one.ephemeral_storage > r->ephemeral_storage ? one.ephemeral_storage
                                                            : r->ephemeral_storage)
            : r->ephemeral_storage + one.ephemeral_storage;
    for (size_t i = 0; i < one.scalar_count; i++)
        s_resource_apply (r, &self->scalars, scalars[i].name, scalars[i].milli, max);
    score->milli_cpu = max ? (one_score.milli_cpu > score->milli_cpu ? one_score.milli_cpu
                                                                     : score->milli_cpu)
                           : score->milli_cpu + one_score.milli_cpu;
    score->memory =
        max ? (one_score.memory > score->memory ? one_score.memory : score->memory)
            : score->memory + one_score.memory;
    free (scalars);
}

static zube_sched_effect_t
s_effect (const char *effect)
{
    if (!effect)
        return ZUBE_SCHED_EFFECT_ALL;
    if (streq (effect, "NoSchedule"))
        return ZUBE_SCHED_NO_SCHEDULE;
    if (streq (effect, "PreferNoSchedule"))
        return ZUBE_SCHED_PREFER_NO_SCHEDULE;
    if (streq (effect, "NoExecute"))
        return ZUBE_SCHED_NO_EXECUTE;
    return ZUBE_SCHED_EFFECT_ALL;
}

static zube_sched_protocol_t
s_protocol (const char *protocol)
{
    if (protocol && streq (protocol, "UDP"))
        return ZUBE_SCHED_UDP;
    if (protocol && streq (protocol, "SCTP"))
        return ZUBE_SCHED_SCTP;
    return ZUBE_SCHED_TCP;
}

static Zube__Pod *
s_pod_copy (const Zube__Pod *pod)
{
    size_t size = protobuf_c_message_get_packed_size (&pod->base);
    uint8_t *data = malloc (size ? size : 1);
    if (!data)
        return NULL;
    protobuf_c_message_pack (&pod->base, data);
    Zube__Pod *copy = zube__pod__unpack (NULL, size, data);
    free (data);
    return copy;
}

zs_pod_t *
zs_pod_new (const Zube__Pod *pod)
{
    zs_pod_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->object = s_pod_copy (pod);
    if (!self->object) {
        free (self);
        return NULL;
    }
    const Zube__ObjectMeta *meta = self->object->metadata;
    const Zube__PodSpec *spec = self->object->spec;
    zube_sched_pod_t *view = &self->view;
    view->struct_size = sizeof *view;
    view->pod = self->object;
    view->namespace_ = meta && meta->namespace_ ? meta->namespace_ : "default";
    view->name = meta && meta->name ? meta->name : "";
    view->uid = meta && meta->uid ? meta->uid : "";
    view->created_ms = meta ? zs_time_ms (meta->creation_timestamp) : 0;
    if (meta && meta->resource_version)
        self->resource_version = strtoull (meta->resource_version, NULL, 10);
    if (asprintf (&self->key, "%s/%s", view->namespace_, view->name) < 0) {
        self->key = NULL;
        zs_pod_destroy (&self);
        return NULL;
    }
    view->scheduler_name = spec && spec->scheduler_name && *spec->scheduler_name
                               ? spec->scheduler_name
                               : ZS_DEFAULT_SCHEDULER_NAME;
    view->node_name = spec && spec->node_name ? spec->node_name : "";
    view->priority = spec && spec->has_priority ? spec->priority : 0;

    size_t labels = meta ? meta->n_labels : 0;
    self->labels = calloc (labels + 1, sizeof *self->labels);
    for (size_t i = 0; self->labels && i < labels; i++)
        self->labels[i] =
            (zube_sched_label_t){meta->labels[i]->key, meta->labels[i]->value};
    view->labels = self->labels;
    view->label_count = self->labels ? labels : 0;
    if (!spec)
        return self;

    self->node_selector = calloc (spec->n_node_selector + 1, sizeof *self->node_selector);
    for (size_t i = 0; self->node_selector && i < spec->n_node_selector; i++)
        self->node_selector[i] = (zube_sched_label_t){
            spec->node_selector[i]->key,
            spec->node_selector[i]->value ? spec->node_selector[i]->value : ""};
    view->node_selector = self->node_selector;
    view->node_selector_count = self->node_selector ? spec->n_node_selector : 0;

    self->tolerations = calloc (spec->n_tolerations + 1, sizeof *self->tolerations);
    for (size_t i = 0; self->tolerations && i < spec->n_tolerations; i++) {
        const Zube__Toleration *t = spec->tolerations[i];
        self->tolerations[i] =
            (zube_sched_toleration_t){.key = t->key ? t->key : "",
                                      .value = t->value ? t->value : "",
                                      .op = t->operator_ && streq (t->operator_, "Exists")
                                                ? ZUBE_SCHED_TOLERATE_EXISTS
                                                : ZUBE_SCHED_TOLERATE_EQUAL,
                                      .effect = s_effect (t->effect)};
    }
    view->tolerations = self->tolerations;
    view->toleration_count = self->tolerations ? spec->n_tolerations : 0;

    size_t ports = 0;
    for (size_t i = 0; i < spec->n_containers; i++)
        ports += spec->containers[i]->n_ports;
    self->ports = calloc (ports + 1, sizeof *self->ports);
    for (size_t i = 0; self->ports && i < spec->n_containers; i++)
        for (size_t j = 0; j < spec->containers[i]->n_ports; j++) {
            const Zube__ContainerPort *port = spec->containers[i]->ports[j];
            if (port->has_host_port && port->host_port > 0)
                self->ports[view->port_count++] =
                    (zube_sched_port_t){.host_ip = port->host_ip ? port->host_ip : "",
                                        .port = port->host_port,
                                        .protocol = s_protocol (port->protocol)};
        }
    view->ports = self->ports;

    for (size_t i = 0; i < spec->n_containers; i++)
        s_container_requests (self, spec->containers[i], false);
    for (size_t i = 0; i < spec->n_init_containers; i++)
        s_container_requests (self, spec->init_containers[i], true);
    for (size_t i = 0; i < spec->n_overhead; i++) {
        s_resource_apply (&view->requests, &self->scalars, spec->overhead[i]->key,
                          s_quantity (spec->overhead[i]->value), false);
        if (streq (spec->overhead[i]->key, "cpu"))
            view->score_requests.milli_cpu += s_quantity (spec->overhead[i]->value);
        if (streq (spec->overhead[i]->key, "memory"))
            view->score_requests.memory +=
                zube_quantity_value (s_quantity (spec->overhead[i]->value));
    }
    view->requests.scalars = self->scalars;
    view->score_requests.ephemeral_storage = view->requests.ephemeral_storage;
    view->score_requests.scalar_count = view->requests.scalar_count;
    view->score_requests.scalars = self->scalars;
    return self;
}

zs_pod_t *
zs_pod_ref (zs_pod_t *self)
{
    self->references++;
    return self;
}

void
zs_pod_destroy (zs_pod_t **self_p)
{
    zs_pod_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    if (self->references) {
        self->references--;
        return;
    }
    if (self->object)
        zube__pod__free_unpacked (self->object, NULL);
    free (self->key);
    free (self->labels);
    free (self->node_selector);
    free (self->tolerations);
    free (self->ports);
    free (self->scalars);
    free (self->score_scalars);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Nodes

//  What one pod takes on its node, kept so it can be given back.
typedef struct {
    char *node;
    bool assumed;
    int64_t milli_cpu, memory, ephemeral_storage, score_cpu, score_memory;
    size_t scalar_count;
    zube_sched_scalar_t *scalars; //  names owned
    size_t port_count;
    zube_sched_port_t *ports; //  host_ip owned
    zs_pod_t *pod;            //  own copy, for node.assigned
    bool affinity;            //  it has podAffinity or podAntiAffinity
    bool required_anti;       //  it has a required podAntiAffinity term
    bool listed;              //  in its node's assigned
} s_held_t;

//  The cache's two lists of nodes with pods with affinity terms
//  (zube_sched_cycle_t.affinity_nodes, required_anti_affinity_nodes).
enum { S_WITH_AFFINITY, S_WITH_REQUIRED_ANTI, S_LISTS };

typedef struct {
    const zube_sched_node_t **nodes;
    size_t count;
    size_t capacity;
} s_node_list_t;

typedef struct _s_image_t s_image_t;

//  Where a node lists an image: the image's entry, and the node's place
//  among the entry's holders.
typedef struct {
    s_image_t *image;
    size_t holder;
} s_image_ref_t;

struct _zs_node_t {
    zube_sched_node_t view;
    char *name;
    Zube__Node *object; //  NULL: a placeholder for pods of an unknown node
    zube_sched_label_t *labels;
    zube_sched_taint_t *taints;
    zube_sched_scalar_t *allocatable_scalars;
    zube_sched_scalar_t *requested_scalars; //  names owned
    zube_sched_port_t *ports;               //  host_ip borrowed from s_held_t
    size_t port_capacity;
    const zube_sched_pod_t **assigned; //  views of held pods
    size_t assigned_capacity;
    size_t pods;
    //  A hash of what filters and scores read of the object itself
    uint64_t signature;
    //  view.images (sorted by name) and, slot by slot, the image entries
    zube_sched_image_t *images;
    s_image_ref_t *image_refs;
    //  Held pods with a required podAntiAffinity term
    size_t required_anti;
    //  Its place + 1 in the cache's lists (0: not listed)
    size_t listed[S_LISTS];
};

//  An image name (normalized) and the nodes that hold it: node_count of
//  every holder's view entry is this entry's, written when it changes.
typedef struct {
    zs_node_t *node;
    size_t slot; //  in node->images
} s_holder_t;

struct _s_image_t {
    char *name;
    //  Also how many holders there are
    uint32_t node_count;
    s_holder_t *holders;
    size_t holder_capacity;
    //  Its place + 1 in the cache's dirty list (0: holders up to date)
    size_t dirty;
};

struct _zs_cache_t {
    zhashx_t *nodes;  //  name -> zs_node_t (placeholders too)
    zs_node_t **list; //  nodes that exist, index = view.index
    const zube_sched_node_t **views;
    size_t count;
    size_t capacity;
    zhashx_t *pods;   //  key -> s_held_t
    zhashx_t *images; //  normalized name -> s_image_t
    //  Images whose node_count changed since their holders were written
    s_image_t **dirty;
    size_t dirty_count;
    size_t dirty_capacity;
    s_node_list_t lists[S_LISTS];
};

//  Room for one more item after count in the array *items_p (any item
//  type) of *capacity_p items: doubles it, or makes first when there is
//  none. -1 on no memory, nothing changed.
static int
s_reserve (void *items_p, size_t *capacity_p, size_t count, size_t item_size,
           size_t first)
{
    if (count < *capacity_p)
        return 0;
    size_t capacity = *capacity_p ? *capacity_p * 2 : first;
    void *grown = realloc (*(void **)items_p, capacity * item_size);
    if (!grown)
        return -1;
    *(void **)items_p = grown;
    *capacity_p = capacity;
    return 0;
}

static void
s_held_destroy (void **item_p)
{
    s_held_t *held = *item_p;
    if (!held)
        return;
    free (held->node);
    for (size_t i = 0; i < held->scalar_count; i++)
        free ((char *)held->scalars[i].name);
    free (held->scalars);
    for (size_t i = 0; i < held->port_count; i++)
        free ((char *)held->ports[i].host_ip);
    free (held->ports);
    zs_pod_destroy (&held->pod);
    free (held);
    *item_p = NULL;
}

static void
s_node_clear_object (zs_node_t *self)
{
    if (self->object)
        zube__node__free_unpacked (self->object, NULL);
    self->object = NULL;
    free (self->labels);
    free (self->taints);
    free (self->allocatable_scalars);
    self->labels = NULL;
    self->taints = NULL;
    self->allocatable_scalars = NULL;
}

static void
s_node_destroy (void **item_p)
{
    zs_node_t *self = *item_p;
    if (!self)
        return;
    s_node_clear_object (self);
    for (size_t i = 0; i < self->view.requested.scalar_count; i++)
        free ((char *)self->requested_scalars[i].name);
    free (self->requested_scalars);
    free (self->ports);
    free (self->assigned);
    free (self->images);
    free (self->image_refs);
    free (self->name);
    free (self);
    *item_p = NULL;
}

//  ---------------------------------------------------------------------
//  Images: how many nodes hold each name (Kubernetes' ImageStateSummary).
//  A node's view lists its images with that count. When a count changes,
//  the image is marked, and the entries of its holders are rewritten once
//  before the views are next handed out (zs_cache_nodes, zs_cache_node,
//  zs_cache_cycle_fill): a node joining with an image every node has
//  costs one pass over that image's holders per cycle, however many nodes
//  joined, and a node update that keeps its images rewrites nothing.

static void
s_image_destroy (void **item_p)
{
    s_image_t *self = *item_p;
    if (!self)
        return;
    free (self->name);
    free (self->holders);
    free (self);
    *item_p = NULL;
}

static void
s_image_write (s_image_t *image)
{
    for (size_t i = 0; i < image->node_count; i++)
        image->holders[i].node->images[image->holders[i].slot].node_count =
            image->node_count;
}

static void
s_image_mark (zs_cache_t *self, s_image_t *image)
{
    if (image->dirty)
        return;
    if (s_reserve (&self->dirty, &self->dirty_capacity, self->dirty_count,
                   sizeof *self->dirty, 64) != 0) {
        //  No room to defer it: write the holders now
        s_image_write (image);
        return;
    }
    self->dirty[self->dirty_count++] = image;
    image->dirty = self->dirty_count;
}

static void
s_images_flush (zs_cache_t *self)
{
    for (size_t i = 0; i < self->dirty_count; i++) {
        s_image_write (self->dirty[i]);
        self->dirty[i]->dirty = 0;
    }
    self->dirty_count = 0;
}

//  node holds image name in its slot; {NULL} on no memory.
static s_image_ref_t
s_image_hold (zs_cache_t *self, const char *name, zs_node_t *node, size_t slot)
{
    s_image_t *image = zhashx_lookup (self->images, name);
    if (!image) {
        image = calloc (1, sizeof *image);
        if (!image || !(image->name = strdup (name))) {
            free (image);
            return (s_image_ref_t){0};
        }
        zhashx_insert (self->images, name, image);
    }
    if (s_reserve (&image->holders, &image->holder_capacity, image->node_count,
                   sizeof *image->holders, 4) != 0) {
        if (!image->node_count)
            zhashx_delete (self->images, name);
        return (s_image_ref_t){0};
    }
    size_t holder = image->node_count++;
    image->holders[holder] = (s_holder_t){.node = node, .slot = slot};
    s_image_mark (self, image);
    return (s_image_ref_t){.image = image, .holder = holder};
}

static void
s_image_release (zs_cache_t *self, s_image_ref_t ref)
{
    s_image_t *image = ref.image;
    size_t last = --image->node_count;
    if (ref.holder != last) {
        s_holder_t moved = image->holders[last];
        image->holders[ref.holder] = moved;
        moved.node->image_refs[moved.slot].holder = ref.holder;
    }
    if (image->node_count) {
        s_image_mark (self, image);
        return;
    }
    if (image->dirty) {
        s_image_t *moved = self->dirty[--self->dirty_count];
        self->dirty[image->dirty - 1] = moved;
        moved->dirty = image->dirty;
    }
    zhashx_delete (self->images, image->name);
}

//  Kubernetes' normalizedImageName: a name without a tag gets ":latest".
static char *
s_image_normalized (const char *image)
{
    const char *colon = strrchr (image, ':');
    const char *slash = strrchr (image, '/');
    bool tagged = colon && (!slash || colon > slash);
    return tagged ? strdup (image) : zsys_sprintf ("%s:latest", image);
}

typedef struct {
    char *name;
    int64_t size;
    size_t order;
} s_image_name_t;

//  By name, then in the order status.images gives them.
static int
s_image_name_compare (const void *a, const void *b)
{
    const s_image_name_t *x = a, *y = b;
    int rc = strcmp (x->name, y->name);
    return rc ? rc : (x->order > y->order) - (x->order < y->order);
}

static int
s_image_compare (const void *a, const void *b)
{
    return strcmp (((const zube_sched_image_t *)a)->name,
                   ((const zube_sched_image_t *)b)->name);
}

static void
s_node_images_clear (zs_cache_t *self, zs_node_t *node)
{
    for (size_t i = 0; i < node->view.image_count; i++)
        s_image_release (self, node->image_refs[i]);
    free (node->images);
    free (node->image_refs);
    node->images = NULL;
    node->image_refs = NULL;
    node->view.images = NULL;
    node->view.image_count = 0;
}

//  status.images, each name normalized, sorted, once (the first size
//  given wins); count set. NULL on no memory.
static s_image_name_t *
s_image_names (const Zube__NodeStatus *status, size_t *count_p)
{
    size_t total = 0, count = 0;
    for (size_t i = 0; status && i < status->n_images; i++)
        total += status->images[i]->n_names;
    s_image_name_t *names = calloc (total + 1, sizeof *names);
    for (size_t i = 0; names && status && i < status->n_images; i++) {
        const Zube__ContainerImage *image = status->images[i];
        for (size_t j = 0; j < image->n_names; j++) {
            if (!image->names[j] || !*image->names[j])
                continue;
            char *name = s_image_normalized (image->names[j]);
            if (!name)
                continue;
            names[count] = (s_image_name_t){
                .name = name,
                .size = image->has_size_bytes ? image->size_bytes : 0,
                .order = count};
            count++;
        }
    }
    if (!names)
        return NULL;
    qsort (names, count, sizeof *names, s_image_name_compare);
    size_t unique = 0;
    for (size_t i = 0; i < count; i++) {
        if (unique && streq (names[unique - 1].name, names[i].name))
            free (names[i].name);
        else
            names[unique++] = names[i];
    }
    *count_p = unique;
    return names;
}

//  The node's images from status. Images it keeps keep their entries;
//  the others are held or given back. Out of memory, an image may be
//  left out (ImageLocality then scores the node a little lower).
static void
s_node_images_set (zs_cache_t *self, zs_node_t *node, const Zube__NodeStatus *status)
{
    size_t count = 0, old_count = node->view.image_count;
    s_image_name_t *names = s_image_names (status, &count);
    if (!names)
        return;
    bool same = count == old_count;
    for (size_t i = 0; i < count && same; i++)
        same = streq (names[i].name, node->images[i].name);
    zube_sched_image_t *images = same ? NULL : calloc (count + 1, sizeof *images);
    s_image_ref_t *refs = same ? NULL : calloc (count + 1, sizeof *refs);
    if (same)
        for (size_t i = 0; i < count; i++)
            node->images[i].size_bytes = names[i].size;
    else if (images && refs) {
        size_t filled = 0;
        for (size_t i = 0; i < count; i++) {
            zube_sched_image_t key = {.name = names[i].name};
            zube_sched_image_t *old =
                old_count ? bsearch (&key, node->images, old_count, sizeof key,
                                     s_image_compare)
                          : NULL;
            s_image_ref_t ref;
            if (old) {
                //  Held already: the same holder, in a new slot
                ref = node->image_refs[old - node->images];
                node->image_refs[old - node->images].image = NULL;
                ref.image->holders[ref.holder].slot = filled;
            } else
                ref = s_image_hold (self, names[i].name, node, filled);
            if (!ref.image)
                continue;
            refs[filled] = ref;
            images[filled++] = (zube_sched_image_t){.name = ref.image->name,
                                                    .size_bytes = names[i].size,
                                                    .node_count = ref.image->node_count};
        }
        for (size_t i = 0; i < old_count; i++)
            if (node->image_refs[i].image)
                s_image_release (self, node->image_refs[i]);
        free (node->images);
        free (node->image_refs);
        node->images = images;
        node->image_refs = refs;
        node->view.images = images;
        node->view.image_count = filled;
        images = NULL;
        refs = NULL;
    }
    free (images);
    free (refs);
    for (size_t i = 0; i < count; i++)
        free (names[i].name);
    free (names);
}

//  ---------------------------------------------------------------------
//  The nodes with pods with affinity terms

//  Lists or unlists node in list which, as it now qualifies.
static void
s_node_list (zs_cache_t *self, zs_node_t *node, int which, bool qualifies)
{
    s_node_list_t *list = &self->lists[which];
    size_t *listed = &node->listed[which];
    if (qualifies && !*listed) {
        if (s_reserve (&list->nodes, &list->capacity, list->count, sizeof *list->nodes,
                       64) != 0)
            return;
        list->nodes[list->count++] = &node->view;
        *listed = list->count;
    } else if (!qualifies && *listed) {
        //  The view is the first member of its zs_node_t
        zs_node_t *moved = (zs_node_t *)list->nodes[--list->count];
        list->nodes[*listed - 1] = &moved->view;
        moved->listed[which] = *listed;
        *listed = 0;
    }
}

static void
s_node_lists_update (zs_cache_t *self, zs_node_t *node)
{
    bool exists = node->object != NULL;
    s_node_list (self, node, S_WITH_AFFINITY,
                 exists && node->view.assigned_with_affinity > 0);
    s_node_list (self, node, S_WITH_REQUIRED_ANTI, exists && node->required_anti > 0);
}

zs_cache_t *
zs_cache_new (void)
{
    zs_cache_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->nodes = zhashx_new ();
    self->pods = zhashx_new ();
    self->images = zhashx_new ();
    if (!self->nodes || !self->pods || !self->images) {
        zs_cache_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->nodes, s_node_destroy);
    zhashx_set_destructor (self->pods, s_held_destroy);
    zhashx_set_destructor (self->images, s_image_destroy);
    return self;
}

void
zs_cache_destroy (zs_cache_t **self_p)
{
    zs_cache_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->pods);
    zhashx_destroy (&self->nodes);
    zhashx_destroy (&self->images);
    free (self->dirty);
    for (int i = 0; i < S_LISTS; i++)
        free (self->lists[i].nodes);
    free (self->list);
    free (self->views);
    free (self);
    *self_p = NULL;
}

static zs_node_t *
s_node_get (zs_cache_t *self, const char *name)
{
    zs_node_t *node = zhashx_lookup (self->nodes, name);
    if (node)
        return node;
    node = calloc (1, sizeof *node);
    if (!node || !(node->name = strdup (name))) {
        free (node);
        return NULL;
    }
    node->view.struct_size = sizeof node->view;
    node->view.name = node->name;
    node->view.zone = "";
    zhashx_insert (self->nodes, name, node);
    return node;
}

//  Drops a placeholder that holds nothing any more.
static void
s_node_maybe_drop (zs_cache_t *self, zs_node_t *node)
{
    if (!node->object && node->pods == 0)
        zhashx_delete (self->nodes, node->name);
}

static Zube__Node *
s_node_copy (const Zube__Node *node)
{
    size_t size = protobuf_c_message_get_packed_size (&node->base);
    uint8_t *data = malloc (size ? size : 1);
    if (!data)
        return NULL;
    protobuf_c_message_pack (&node->base, data);
    Zube__Node *copy = zube__node__unpack (NULL, size, data);
    free (data);
    return copy;
}

static uint64_t
s_hash (uint64_t hash, const void *data, size_t size)
{
    const unsigned char *bytes = data;
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ bytes[i]) * 1099511628211ULL;
    return hash;
}

static uint64_t
s_hash_text (uint64_t hash, const char *text)
{
    return s_hash (hash, text ? text : "", text ? strlen (text) + 1 : 1);
}

//  What scheduling reads of a node: labels, taints, unschedulable,
//  allocatable (not heartbeats, conditions or addresses).
static uint64_t
s_node_signature (const zs_node_t *node)
{
    const zube_sched_node_t *view = &node->view;
    uint64_t hash = 14695981039346656037ULL;
    for (size_t i = 0; i < view->label_count; i++)
        hash =
            s_hash_text (s_hash_text (hash, view->labels[i].key), view->labels[i].value);
    for (size_t i = 0; i < view->taint_count; i++) {
        hash =
            s_hash_text (s_hash_text (hash, view->taints[i].key), view->taints[i].value);
        hash = s_hash (hash, &view->taints[i].effect, sizeof view->taints[i].effect);
    }
    hash = s_hash (hash, &view->unschedulable, sizeof view->unschedulable);
    const zube_sched_resources_t *r = &view->allocatable;
    int64_t amounts[] = {r->milli_cpu, r->memory, r->ephemeral_storage, r->pods};
    hash = s_hash (hash, amounts, sizeof amounts);
    for (size_t i = 0; i < r->scalar_count; i++) {
        hash = s_hash_text (hash, r->scalars[i].name);
        hash = s_hash (hash, &r->scalars[i].milli, sizeof r->scalars[i].milli);
    }
    return hash;
}

int
zs_cache_node_set (zs_cache_t *self, const Zube__Node *object)
{
    const char *name = object->metadata ? object->metadata->name : NULL;
    if (!name || !*name)
        return 0;
    zs_node_t *node = s_node_get (self, name);
    Zube__Node *copy = s_node_copy (object);
    if (!node || !copy) {
        if (copy)
            zube__node__free_unpacked (copy, NULL);
        return -1;
    }
    bool known = node->object != NULL;
    s_node_clear_object (node);
    node->object = copy;
    zube_sched_node_t *view = &node->view;
    view->node = copy;
    view->generation++;
    const Zube__ObjectMeta *meta = copy->metadata;
    node->labels = calloc (meta->n_labels + 1, sizeof *node->labels);
    view->label_count = 0;
    view->zone = "";
    for (size_t i = 0; node->labels && i < meta->n_labels; i++) {
        node->labels[view->label_count++] = (zube_sched_label_t){
            meta->labels[i]->key, meta->labels[i]->value ? meta->labels[i]->value : ""};
        if (streq (meta->labels[i]->key, "topology.kubernetes.io/zone"))
            view->zone = node->labels[view->label_count - 1].value;
    }
    view->labels = node->labels;
    const Zube__NodeSpec *spec = copy->spec;
    view->unschedulable = spec && spec->has_unschedulable && spec->unschedulable;
    size_t taints = spec ? spec->n_taints : 0;
    node->taints = calloc (taints + 1, sizeof *node->taints);
    view->taint_count = 0;
    for (size_t i = 0; node->taints && i < taints; i++) {
        const Zube__Taint *taint = spec->taints[i];
        node->taints[view->taint_count++] =
            (zube_sched_taint_t){.key = taint->key ? taint->key : "",
                                 .value = taint->value ? taint->value : "",
                                 .effect = s_effect (taint->effect)};
    }
    view->taints = node->taints;
    zube_sched_resources_t *allocatable = &view->allocatable;
    *allocatable = (zube_sched_resources_t){0};
    const Zube__NodeStatus *status = copy->status;
    size_t n = status ? status->n_allocatable : 0;
    Zube__NodeStatus__AllocatableEntry **entries = status ? status->allocatable : NULL;
    if (status && !n) {
        //  No allocatable reported: the capacity is what there is
        n = status->n_capacity;
        entries = (Zube__NodeStatus__AllocatableEntry **)status->capacity;
    }
    for (size_t i = 0; i < n; i++)
        s_resource_apply (allocatable, &node->allocatable_scalars, entries[i]->key,
                          s_quantity (entries[i]->value), false);
    s_node_images_set (self, node, status);
    uint64_t signature = s_node_signature (node);
    bool changed = !known || signature != node->signature;
    node->signature = signature;
    if (!known) {
        if (self->count == self->capacity) {
            size_t capacity = self->capacity ? self->capacity * 2 : 64;
            zs_node_t **list = realloc (self->list, capacity * sizeof *list);
            if (list)
                self->list = list;
            const zube_sched_node_t **views =
                realloc (self->views, capacity * sizeof *views);
            if (views)
                self->views = views;
            if (!list || !views)
                return -1;
            self->capacity = capacity;
        }
        view->index = (uint32_t)self->count;
        self->list[self->count] = node;
        self->views[self->count++] = view;
        s_node_lists_update (self, node);
    }
    return changed ? 1 : 0;
}

void
zs_cache_node_remove (zs_cache_t *self, const char *name)
{
    zs_node_t *node = zhashx_lookup (self->nodes, name);
    if (!node || !node->object)
        return;
    size_t index = node->view.index;
    self->list[index] = self->list[--self->count];
    self->views[index] = &self->list[index]->view;
    self->list[index]->view.index = (uint32_t)index;
    s_node_clear_object (node);
    s_node_images_clear (self, node);
    s_node_lists_update (self, node);
    node->view.node = NULL;
    node->view.generation++;
    s_node_maybe_drop (self, node);
}

size_t
zs_cache_node_count (zs_cache_t *self)
{
    return self->count;
}

const zube_sched_node_t *const *
zs_cache_nodes (zs_cache_t *self)
{
    s_images_flush (self);
    return self->views;
}

const zube_sched_node_t *
zs_cache_node (zs_cache_t *self, const char *name)
{
    zs_node_t *node = zhashx_lookup (self->nodes, name);
    s_images_flush (self);
    return node && node->object ? &node->view : NULL;
}

void
zs_cache_cycle_fill (zs_cache_t *self, zube_sched_cycle_t *cycle)
{
    s_images_flush (self);
    cycle->node_count = self->count;
    cycle->nodes = self->views;
    const s_node_list_t *with = &self->lists[S_WITH_AFFINITY];
    const s_node_list_t *anti = &self->lists[S_WITH_REQUIRED_ANTI];
    cycle->affinity_node_count = with->count;
    cycle->affinity_nodes = with->count ? with->nodes : NULL;
    cycle->required_anti_affinity_node_count = anti->count;
    cycle->required_anti_affinity_nodes = anti->count ? anti->nodes : NULL;
}

//  Adds (sign 1) or gives back (sign -1) what held takes on node.
static void
s_node_account (zs_node_t *node, const s_held_t *held, int sign)
{
    zube_sched_node_t *view = &node->view;
    view->requested.milli_cpu += sign * held->milli_cpu;
    view->requested.memory += sign * held->memory;
    view->requested.ephemeral_storage += sign * held->ephemeral_storage;
    view->score_requested.milli_cpu += sign * held->score_cpu;
    view->score_requested.memory += sign * held->score_memory;
    view->score_requested.ephemeral_storage = view->requested.ephemeral_storage;
    for (size_t i = 0; i < held->scalar_count; i++) {
        size_t j;
        for (j = 0; j < view->requested.scalar_count; j++)
            if (streq (node->requested_scalars[j].name, held->scalars[i].name))
                break;
        if (j == view->requested.scalar_count) {
            zube_sched_scalar_t *grown =
                realloc (node->requested_scalars, (j + 1) * sizeof *grown);
            char *name = strdup (held->scalars[i].name);
            if (!grown || !name) {
                free (name);
                if (grown)
                    node->requested_scalars = grown;
                continue;
            }
            node->requested_scalars = grown;
            grown[j] = (zube_sched_scalar_t){.name = name, .milli = 0};
            view->requested.scalar_count++;
        }
        node->requested_scalars[j].milli += sign * held->scalars[i].milli;
    }
    view->requested.scalars = node->requested_scalars;
    view->score_requested.scalars = node->requested_scalars;
    view->score_requested.scalar_count = view->requested.scalar_count;
    if (sign > 0) {
        if (node->port_capacity < view->port_count + held->port_count) {
            size_t capacity = (view->port_count + held->port_count) * 2;
            zube_sched_port_t *ports = realloc (node->ports, capacity * sizeof *ports);
            if (ports) {
                node->ports = ports;
                node->port_capacity = capacity;
            }
        }
        for (size_t i = 0; i < held->port_count && view->port_count < node->port_capacity;
             i++)
            node->ports[view->port_count++] = held->ports[i];
    } else
        for (size_t i = 0; i < held->port_count; i++)
            for (size_t j = 0; j < view->port_count; j++)
                if (node->ports[j].host_ip == held->ports[i].host_ip) {
                    node->ports[j] = node->ports[--view->port_count];
                    break;
                }
    view->ports = node->ports;
    node->pods += sign > 0 ? 1 : (size_t)-1;
    view->pod_count = (uint32_t)node->pods;
    view->generation++;
}

//  Lists held's pod view in node.assigned (skipped when out of memory:
//  the pod still counts in the totals), pods with affinity first.
static void
s_node_assign (zs_node_t *node, s_held_t *held)
{
    zube_sched_node_t *view = &node->view;
    if (!held->pod)
        return;
    if (s_reserve (&node->assigned, &node->assigned_capacity, view->assigned_count,
                   sizeof *node->assigned, 8) != 0)
        return;
    size_t i = view->assigned_count++;
    if (held->affinity) {
        size_t first = view->assigned_with_affinity++;
        node->assigned[i] = node->assigned[first];
        i = first;
    }
    node->assigned[i] = &held->pod->view;
    view->assigned = node->assigned;
    held->listed = true;
    node->required_anti += held->required_anti;
}

static void
s_node_unassign (zs_node_t *node, s_held_t *held)
{
    zube_sched_node_t *view = &node->view;
    if (!held->listed)
        return;
    held->listed = false;
    node->required_anti -= held->required_anti;
    for (size_t i = 0; i < view->assigned_count; i++)
        if (node->assigned[i] == &held->pod->view) {
            size_t last = --view->assigned_count;
            if (i < view->assigned_with_affinity) {
                size_t end = --view->assigned_with_affinity;
                node->assigned[i] = node->assigned[end];
                i = end;
            }
            node->assigned[i] = node->assigned[last];
            return;
        }
}

int
zs_cache_pod_add (zs_cache_t *self, zs_pod_t *pod, const char *node_name, bool assumed)
{
    //  A reference first: pod may be the very one the cache holds now
    zs_pod_t *shared = zs_pod_ref (pod);
    zs_cache_pod_remove (self, pod->key);
    s_held_t *held = calloc (1, sizeof *held);
    zs_node_t *node = s_node_get (self, node_name);
    if (!held || !node || !(held->node = strdup (node_name))) {
        free (held);
        zs_pod_destroy (&shared);
        return -1;
    }
    const zube_sched_pod_t *view = &pod->view;
    held->assumed = assumed;
    held->pod = shared;
    const Zube__PodSpec *spec = pod->object ? pod->object->spec : NULL;
    const Zube__Affinity *affinity = spec ? spec->affinity : NULL;
    held->affinity =
        affinity && (affinity->pod_affinity || affinity->pod_anti_affinity);
    held->required_anti =
        affinity && affinity->pod_anti_affinity &&
        affinity->pod_anti_affinity->n_required_during_scheduling_ignored_during_execution;
    held->milli_cpu = view->requests.milli_cpu;
    held->memory = view->requests.memory;
    held->ephemeral_storage = view->requests.ephemeral_storage;
    held->score_cpu = view->score_requests.milli_cpu;
    held->score_memory = view->score_requests.memory;
    held->scalars = calloc (view->requests.scalar_count + 1, sizeof *held->scalars);
    held->ports = calloc (view->port_count + 1, sizeof *held->ports);
    for (size_t i = 0; held->scalars && i < view->requests.scalar_count; i++) {
        char *name = strdup (view->requests.scalars[i].name);
        if (name)
            held->scalars[held->scalar_count++] = (zube_sched_scalar_t){
                .name = name, .milli = view->requests.scalars[i].milli};
    }
    //  Every held port has its own host_ip string: it also identifies
    //  the port on the node when it is given back.
    for (size_t i = 0; held->ports && i < view->port_count; i++) {
        char *ip = strdup (view->ports[i].host_ip);
        if (ip) {
            held->ports[held->port_count] = view->ports[i];
            held->ports[held->port_count++].host_ip = ip;
        }
    }
    zhashx_insert (self->pods, pod->key, held);
    s_node_account (node, held, 1);
    s_node_assign (node, held);
    s_node_lists_update (self, node);
    return 0;
}

bool
zs_cache_pod_remove (zs_cache_t *self, const char *key)
{
    s_held_t *held = zhashx_lookup (self->pods, key);
    if (!held)
        return false;
    zs_node_t *node = zhashx_lookup (self->nodes, held->node);
    if (node) {
        s_node_unassign (node, held);
        s_node_lists_update (self, node);
        s_node_account (node, held, -1);
        s_node_maybe_drop (self, node);
    }
    zhashx_delete (self->pods, key);
    return true;
}

static bool
s_text_same (const char *a, const char *b)
{
    return streq (a ? a : "", b ? b : "");
}

//  Labels and deletion timestamp: what plugins read of a bound pod that
//  can change while it runs (its spec cannot, but for images).
static bool
s_pod_same (const Zube__Pod *a, const Zube__Pod *b)
{
    const Zube__ObjectMeta *x = a->metadata, *y = b->metadata;
    if (!x || !y)
        return x == y;
    if (x->n_labels != y->n_labels ||
        !s_text_same (x->deletion_timestamp, y->deletion_timestamp))
        return false;
    for (size_t i = 0; i < x->n_labels; i++)
        if (!s_text_same (x->labels[i]->key, y->labels[i]->key) ||
            !s_text_same (x->labels[i]->value, y->labels[i]->value))
            return false;
    return true;
}

bool
zs_cache_pod_confirm (zs_cache_t *self, const char *key, const char *node,
                      const Zube__Pod *object)
{
    s_held_t *held = zhashx_lookup (self->pods, key);
    if (!held || !streq (held->node, node) || !s_pod_same (held->pod->object, object))
        return false;
    held->assumed = false;
    return true;
}

const char *
zs_cache_pod_node (zs_cache_t *self, const char *key, bool *assumed_p)
{
    s_held_t *held = zhashx_lookup (self->pods, key);
    if (assumed_p)
        *assumed_p = held && held->assumed;
    return held ? held->node : NULL;
}

size_t
zs_cache_pod_count (zs_cache_t *self)
{
    return zhashx_size (self->pods);
}
