/*  podgc - Kubernetes' pod garbage collector (pkg/controller/podgc) as a
    plugin, for its first two duties:

    - terminated pods (phase Succeeded or Failed) beyond
      terminatedPodGCThreshold (12500; 0 turns it off) are deleted, oldest
      (creationTimestamp) first, at most once a second;
    - pods bound to a node that no longer exists (orphaned) are deleted
      once the node has been missing for the quarantine (40 s, Kubernetes'
      quarantineTime) and the apiserver confirms it is gone.

    Deletions are forced (grace period 0), as Kubernetes' are: nothing runs
    such a pod any more. Kubernetes also marks an orphaned pod Failed with
    the DisruptionTarget condition first; this one does not. Terminating
    pods on NotReady nodes (its third duty) are not collected.

    Keys: "terminated", and "node/<name>" per node with pods. Settings
    (--controller-arg podgc.KEY=VALUE): terminatedPodGCThreshold,
    orphanQuarantine (a Go duration). */
#define _GNU_SOURCE
#include "ctrl_duration.h"
#include "ctrl_util.h"

#define S_DEFAULT_THRESHOLD 12500
#define S_DEFAULT_QUARANTINE_MS 40000
#define S_TERMINATED_KEY "terminated"
#define S_NODE_PREFIX "node/"
#define S_TERMINATED_DELAY_MS 1000

typedef struct {
    char *node;
    int64_t missing_since_ms;
} s_missing_t;

typedef struct {
    const zube_ctrl_host_t *host;
    int64_t threshold;
    int64_t quarantine_ms;
    //  Nodes seen missing, with when
    s_missing_t *missing;
    size_t missing_count;
} s_self_t;

static const char *const s_watches[] = {"pods", "nodes", NULL};

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->host = host;
    self->threshold = S_DEFAULT_THRESHOLD;
    self->quarantine_ms = S_DEFAULT_QUARANTINE_MS;
    if (!zc_setting_int (host, "terminatedPodGCThreshold", 0, INT64_MAX, "a number >= 0",
                         &self->threshold, error, error_size) ||
        !zc_setting_ms (host, "orphanQuarantine", 0, "a duration such as \"40s\"",
                        &self->quarantine_ms, error, error_size)) {
        free (self);
        return NULL;
    }
    return self;
}

static void
s_destroy (void *arg)
{
    s_self_t *self = arg;
    for (size_t i = 0; i < self->missing_count; i++)
        free (self->missing[i].node);
    free (self->missing);
    free (self);
}

static void
s_enqueue_node (s_self_t *self, const char *node)
{
    char key[300];
    snprintf (key, sizeof key, S_NODE_PREFIX "%.250s", node);
    self->host->enqueue (self->host, key);
}

static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    s_self_t *self = arg;
    if (!zc_streq (resource, "pods"))
        return;
    const Zube__Pod *pod = (const Zube__Pod *)object;
    if (self->threshold > 0 && zc_pod_terminated (pod))
        self->host->enqueue_after (self->host, S_TERMINATED_KEY, S_TERMINATED_DELAY_MS);
    const char *node = pod->spec ? pod->spec->node_name : NULL;
    if (!zc_empty (node) && !self->host->get (self->host, "nodes", NULL, node))
        s_enqueue_node (self, node);
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
    if (!zc_streq (resource, "nodes"))
        return;
    const Zube__Node *node = (const Zube__Node *)object;
    if (node->metadata && node->metadata->name)
        s_enqueue_node (self, node->metadata->name);
}

//  ---------------------------------------------------------------------

static zube_status_t
s_force_delete (s_self_t *self, const Zube__Pod *pod, const char *why_text, char *error,
                size_t error_size)
{
    zube_ctrl_delete_options_t options = {.struct_size = sizeof options,
                                          .uid = pod->metadata->uid,
                                          .has_grace_period = true,
                                          .grace_period_seconds = 0};
    zube_status_t status =
        self->host->delete_ (self->host, "pods", pod->metadata->namespace_,
                             pod->metadata->name, &options, error, error_size);
    if (status == ZUBE_OK)
        self->host->base->log (self->host->base, ZUBE_LOG_INFO,
                               "msg=\"pod collected\" namespace=%s pod=%s why=\"%s\"",
                               pod->metadata->namespace_, pod->metadata->name, why_text);
    return status == ZUBE_NOT_FOUND || status == ZUBE_CONFLICT ? ZUBE_OK : status;
}

static int
s_older_first (const void *a_arg, const void *b_arg)
{
    const Zube__Pod *a = *(const Zube__Pod *const *)a_arg;
    const Zube__Pod *b = *(const Zube__Pod *const *)b_arg;
    int64_t a_created = zc_parse_time (a->metadata->creation_timestamp);
    int64_t b_created = zc_parse_time (b->metadata->creation_timestamp);
    if (a_created != b_created)
        return a_created < b_created ? -1 : 1;
    int order = strcmp (a->metadata->namespace_ ? a->metadata->namespace_ : "",
                        b->metadata->namespace_ ? b->metadata->namespace_ : "");
    return order ? order : strcmp (a->metadata->name, b->metadata->name);
}

//  Kubernetes' gcTerminated
static zube_status_t
s_gc_terminated (s_self_t *self, char *error, size_t error_size)
{
    if (self->threshold <= 0)
        return ZUBE_OK;
    size_t count = 0;
    const ProtobufCMessage **all =
        self->host->list (self->host, "pods", NULL, NULL, &count);
    const Zube__Pod **terminated = calloc (count + 1, sizeof *terminated);
    size_t terminated_count = 0;
    for (size_t i = 0; terminated && i < count; i++) {
        const Zube__Pod *pod = (const Zube__Pod *)all[i];
        if (pod->metadata && pod->metadata->name && zc_pod_terminated (pod) &&
            !zc_deleting (pod->metadata))
            terminated[terminated_count++] = pod;
    }
    zube_status_t result = terminated ? ZUBE_OK : ZUBE_INTERNAL;
    if ((int64_t)terminated_count > self->threshold) {
        qsort (terminated, terminated_count, sizeof *terminated, s_older_first);
        size_t excess = terminated_count - (size_t)self->threshold;
        for (size_t i = 0; i < excess; i++) {
            zube_status_t status =
                s_force_delete (self, terminated[i], "terminated pods over the threshold",
                                error, error_size);
            if (status != ZUBE_OK)
                result = status;
        }
    }
    free (terminated);
    self->host->free_list (self->host, all);
    return result;
}

static s_missing_t *
s_missing (s_self_t *self, const char *node)
{
    for (size_t i = 0; i < self->missing_count; i++)
        if (zc_streq (self->missing[i].node, node))
            return &self->missing[i];
    return NULL;
}

static void
s_missing_forget (s_self_t *self, const char *node)
{
    s_missing_t *entry = s_missing (self, node);
    if (!entry)
        return;
    free (entry->node);
    *entry = self->missing[--self->missing_count];
}

//  Kubernetes' gcOrphaned, for one node
static zube_status_t
s_gc_orphaned (s_self_t *self, const char *key, const char *node, char *error,
               size_t error_size)
{
    if (self->host->get (self->host, "nodes", NULL, node)) {
        s_missing_forget (self, node);
        return ZUBE_OK;
    }
    size_t count = 0;
    const ProtobufCMessage **pods = self->host->list_index (
        self->host, "pods", ZUBE_CTRL_INDEX_NODE_NAME, node, &count);
    if (count == 0) {
        self->host->free_list (self->host, pods);
        s_missing_forget (self, node);
        return ZUBE_OK;
    }
    int64_t now = self->host->base->time_ms (self->host->base);
    s_missing_t *entry = s_missing (self, node);
    if (!entry) {
        s_missing_t *grown =
            realloc (self->missing, (self->missing_count + 1) * sizeof *grown);
        char *copy = strdup (node);
        if (grown)
            self->missing = grown;
        if (!grown || !copy) {
            free (copy);
            self->host->free_list (self->host, pods);
            snprintf (error, error_size, "out of memory");
            return ZUBE_INTERNAL;
        }
        entry = &self->missing[self->missing_count++];
        entry->node = copy;
        entry->missing_since_ms = now;
    }
    int64_t due = entry->missing_since_ms + self->quarantine_ms;
    zube_status_t result = ZUBE_OK;
    if (due > now)
        self->host->enqueue_after (self->host, key, due - now);
    else {
        //  The cache may lag: the apiserver has the last word
        char why[512];
        zube_status_t status = self->host->get_live (self->host, "nodes", NULL, node,
                                                     NULL, NULL, why, sizeof why);
        if (status == ZUBE_OK)
            s_missing_forget (self, node);
        else if (status != ZUBE_NOT_FOUND) {
            snprintf (error, error_size, "looking up node %s: %s", node, why);
            result = status;
        } else {
            for (size_t i = 0; i < count; i++) {
                status = s_force_delete (self, (const Zube__Pod *)pods[i],
                                         "bound to a node that no longer exists", error,
                                         error_size);
                if (status != ZUBE_OK)
                    result = status;
            }
            if (result == ZUBE_OK)
                s_missing_forget (self, node);
        }
    }
    self->host->free_list (self->host, pods);
    return result;
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    if (zc_streq (key, S_TERMINATED_KEY))
        return s_gc_terminated (self, error, error_size);
    if (strncmp (key, S_NODE_PREFIX, strlen (S_NODE_PREFIX)) == 0)
        return s_gc_orphaned (self, key, key + strlen (S_NODE_PREFIX), error, error_size);
    return ZUBE_OK;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "podgc",
    .watches = s_watches,
    //  One: a periodic pass over every pod (Kubernetes' is one loop)
    .workers = 1,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .on_delete = s_on_delete,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "podgc", .version = "0.1.0", .kind = ZUBE_PLUGIN_CONTROLLER,
                    .ops = &s_ops,
                    .description = "deletes terminated pods over a threshold and pods "
                                   "of nodes that are gone")
