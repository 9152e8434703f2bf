/*  ImageLocality - score: nodes that already hold the pod's container
    images score higher, by the images' sizes (node.status.images) scaled
    by the share of nodes that hold each image, so an image every node has
    does not pull pods together (Kubernetes' imagelocality plugin: the sum
    clamped to 23 MB .. 1000 MB per container, mapped onto 0..100).

    The host's node cache lists each node's images with how many nodes
    hold each (node->images, sorted), so a node is scored by looking up
    the pod's images in its own list; a host without that list makes the
    plugin count the holders itself, over every node, once per pod. */
#include "core.pb-c.h"
#include "sched_plugin.h"

#define S_MB (1024LL * 1024)
#define S_MIN_THRESHOLD (23 * S_MB)
#define S_MAX_CONTAINER_THRESHOLD (1000 * S_MB)

SCHED_PLAIN_CREATE ("ImageLocality")

//  Per cycle: the pod's images, normalized, and (when the host does not
//  list them per node) how many nodes hold each.
typedef struct {
    size_t count;
    size_t containers;
    size_t node_count;
    char **images;
    size_t *holders;
    bool listed; //  the host lists node->images
} s_cycle_t;

static void
s_cycle_free (void *self, void *cycle_data)
{
    (void)self;
    s_cycle_t *cycle = cycle_data;
    if (!cycle)
        return;
    for (size_t i = 0; i < cycle->count; i++)
        free (cycle->images[i]);
    free (cycle->images);
    free (cycle->holders);
    free (cycle);
}

//  Kubernetes' normalizedImageName: a name without a tag gets ":latest".
static char *
s_normalized (const char *image)
{
    const char *colon = strrchr (image, ':');
    const char *slash = strrchr (image, '/');
    bool tagged = colon && (!slash || colon > slash);
    size_t length = strlen (image);
    char *name = malloc (length + 8);
    if (name)
        snprintf (name, length + 8, "%s%s", image, tagged ? "" : ":latest");
    return name;
}

static int
s_image_compare (const void *key, const void *item)
{
    return strcmp (key, ((const zube_sched_image_t *)item)->name);
}

//  The image on node in the host's list, or NULL.
static const zube_sched_image_t *
s_image_listed (const zube_sched_node_t *node, const char *image)
{
    if (!node->image_count)
        return NULL;
    return bsearch (image, node->images, node->image_count, sizeof *node->images,
                    s_image_compare);
}

//  The size of image on node, or -1 when the node does not hold it,
//  from the whole object (a host without node->images).
static int64_t
s_image_size (const zube_sched_node_t *view, const char *image)
{
    const Zube__Node *node = view->node;
    const Zube__NodeStatus *status = node ? node->status : NULL;
    for (size_t i = 0; status && i < status->n_images; i++) {
        const Zube__ContainerImage *held = status->images[i];
        for (size_t j = 0; j < held->n_names; j++)
            if (held->names[j] && strcmp (held->names[j], image) == 0)
                return held->has_size_bytes ? held->size_bytes : 0;
    }
    return -1;
}

static void
s_add_images (s_cycle_t *cycle, Zube__Container **containers, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        cycle->containers++;
        const char *image = containers[i]->image;
        if (!image || !*image)
            continue;
        char *name = s_normalized (image);
        if (name)
            cycle->images[cycle->count++] = name;
    }
}

static zube_sched_code_t
s_pre_score (void *self, const zube_sched_cycle_t *cycle, const zube_sched_pod_t *pod,
             const zube_sched_node_t *const *nodes, size_t count, void **cycle_data)
{
    (void)self, (void)nodes, (void)count;
    const Zube__Pod *object = pod->pod;
    const Zube__PodSpec *spec = object ? object->spec : NULL;
    size_t containers = spec ? spec->n_init_containers + spec->n_containers : 0;
    if (!containers)
        return ZUBE_SCHED_SKIP;
    s_cycle_t *data = calloc (1, sizeof *data);
    if (!data)
        return ZUBE_SCHED_SKIP;
    data->images = calloc (containers, sizeof *data->images);
    data->holders = calloc (containers, sizeof *data->holders);
    if (!data->images || !data->holders) {
        s_cycle_free (NULL, data);
        return ZUBE_SCHED_SKIP;
    }
    s_add_images (data, spec->init_containers, spec->n_init_containers);
    s_add_images (data, spec->containers, spec->n_containers);
    //  The spread counts every node of the snapshot, feasible or not
    data->node_count = cycle->node_count;
    data->listed = cycle->node_count && ZUBE_SCHED_HAS (cycle->nodes[0], images);
    for (size_t n = 0; !data->listed && n < cycle->node_count; n++)
        for (size_t i = 0; i < data->count; i++)
            if (s_image_size (cycle->nodes[n], data->images[i]) >= 0)
                data->holders[i]++;
    *cycle_data = data;
    return ZUBE_SCHED_SUCCESS;
}

static zube_sched_code_t
s_score (void *self, void *cycle_data, const zube_sched_pod_t *pod,
         const zube_sched_node_t *node, int64_t *score)
{
    (void)self, (void)pod;
    s_cycle_t *cycle = cycle_data;
    if (cycle->listed && !node->image_count) {
        *score = 0;
        return ZUBE_SCHED_SUCCESS;
    }
    int64_t sum = 0;
    for (size_t i = 0; i < cycle->count; i++) {
        int64_t size;
        size_t holders;
        if (cycle->listed) {
            const zube_sched_image_t *image = s_image_listed (node, cycle->images[i]);
            size = image ? image->size_bytes : -1;
            holders = image ? image->node_count : 0;
        } else {
            size = s_image_size (node, cycle->images[i]);
            holders = cycle->holders[i];
        }
        if (size > 0 && cycle->node_count)
            sum += (int64_t)((double)size * (double)holders / (double)cycle->node_count);
    }
    int64_t max_threshold = S_MAX_CONTAINER_THRESHOLD * (int64_t)cycle->containers;
    if (sum < S_MIN_THRESHOLD)
        sum = S_MIN_THRESHOLD;
    else if (sum > max_threshold)
        sum = max_threshold;
    *score = ZUBE_SCHED_MAX_SCORE * (sum - S_MIN_THRESHOLD) /
             (max_threshold - S_MIN_THRESHOLD);
    return ZUBE_SCHED_SUCCESS;
}

static const zube_sched_ops_t s_ops = {
    .struct_size = sizeof (zube_sched_ops_t),
    .framework_name = "ImageLocality",
    .events = ZUBE_SCHED_EVENT_NODE_ADD | ZUBE_SCHED_EVENT_NODE_UPDATE,
    .create = s_create,
    .destroy = sched_plain_destroy,
    .pre_score = s_pre_score,
    .score = s_score,
    .cycle_free = s_cycle_free,
};

ZUBE_PLUGIN_DEFINE (.name = "imagelocality", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_SCHEDULER,
                    .description = "score: nodes that already have the pod's images",
                    .ops = &s_ops)
