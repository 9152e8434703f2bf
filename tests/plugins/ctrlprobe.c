/*  ctrlprobe - a test controller plugin that watches how the host runs its
    syncs (tests/integration/test_controller_workers.c).

    It syncs the ConfigMaps of one namespace (setting "namespace"). A sync
    reads its ConfigMap from the cache, then asks the apiserver for it
    (get_live, a call in which a host with several workers lets other
    syncs run) until it has seen another sync in flight or asked "tries"
    times, reads the cached object it holds again (after the host applied
    events meanwhile: it must still be valid), and writes the value of
    data.v it read into the annotation probe.zube.io/seen with a merge
    patch. It counts the syncs in flight at once (the most ever) and the
    syncs of a key that began while one of the same key ran (overlaps,
    which must stay 0), and writes them to the file of setting "report"
    after every sync: "max=N overlaps=N syncs=N". Its on_update enqueues
    only when data.v changed, so its own patch does not loop.

    It declares 8 workers; --controller-arg ctrlprobe.workers=N sets the
    count. Headers only: the cache's structs and JSON patches. */
#include "core.pb-c.h"
#include "zube/controller.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_KEYS 256

typedef struct {
    const zube_ctrl_host_t *host;
    char namespace_[128];
    char report[1024];
    int tries;
    int in_flight;
    int max_in_flight;
    int overlaps;
    long syncs;
    //  Keys being synced now
    char *running[S_MAX_KEYS];
} s_self_t;

static const char *const s_watches[] = {"configmaps", NULL};

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    const char *namespace_ = host->base->config_get (host->base, "namespace");
    const char *report = host->base->config_get (host->base, "report");
    const char *tries = host->base->config_get (host->base, "tries");
    if (!namespace_ || !*namespace_ || !report || !*report) {
        snprintf (error, error_size, "namespace and report: Required value");
        return NULL;
    }
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->host = host;
    snprintf (self->namespace_, sizeof self->namespace_, "%s", namespace_);
    snprintf (self->report, sizeof self->report, "%s", report);
    self->tries = tries ? atoi (tries) : 10;
    return self;
}

static void
s_destroy (void *arg)
{
    s_self_t *self = arg;
    for (size_t i = 0; i < S_MAX_KEYS; i++)
        free (self->running[i]);
    free (self);
}

static const char *
s_value (const Zube__ConfigMap *map)
{
    for (size_t i = 0; map && i < map->n_data; i++)
        if (map->data[i]->key && strcmp (map->data[i]->key, "v") == 0)
            return map->data[i]->value ? map->data[i]->value : "";
    return "";
}

static void
s_enqueue (s_self_t *self, const ProtobufCMessage *object)
{
    const Zube__ObjectMeta *meta = ((const Zube__ConfigMap *)object)->metadata;
    char key[600];
    if (!meta || !meta->namespace_ || strcmp (meta->namespace_, self->namespace_) ||
        zube_ctrl_key (meta->namespace_, meta->name, key, sizeof key) < 0)
        return;
    self->host->enqueue (self->host, key);
}

static void
s_on_add (void *arg, const char *resource, const ProtobufCMessage *object)
{
    (void)resource;
    s_enqueue (arg, object);
}

static void
s_on_update (void *arg, const char *resource, const ProtobufCMessage *old_object,
             const ProtobufCMessage *new_object)
{
    (void)resource;
    if (strcmp (s_value ((const Zube__ConfigMap *)old_object),
                s_value ((const Zube__ConfigMap *)new_object)))
        s_enqueue (arg, new_object);
}

//  Marks key running (answers its slot), or counts an overlap.
static int
s_begin (s_self_t *self, const char *key)
{
    int free_slot = -1;
    for (int i = 0; i < S_MAX_KEYS; i++) {
        if (self->running[i] && strcmp (self->running[i], key) == 0) {
            self->overlaps++;
            return -1;
        }
        if (!self->running[i] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot >= 0)
        self->running[free_slot] = strdup (key);
    return free_slot;
}

//  Written aside and renamed: a reader never sees it half written.
static void
s_report (s_self_t *self)
{
    char aside[1100];
    snprintf (aside, sizeof aside, "%s.new", self->report);
    FILE *file = fopen (aside, "w");
    if (!file)
        return;
    fprintf (file, "max=%d overlaps=%d syncs=%ld\n", self->max_in_flight, self->overlaps,
             self->syncs);
    if (fclose (file) == 0)
        rename (aside, self->report);
}

static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    int slot = s_begin (self, key);
    if (++self->in_flight > self->max_in_flight)
        self->max_in_flight = self->in_flight;
    char namespace_[256], name[256];
    zube_status_t status = ZUBE_OK;
    const Zube__ConfigMap *map = NULL;
    if (zube_ctrl_split_key (key, namespace_, name, sizeof name) == 0)
        map = (const Zube__ConfigMap *)self->host->get (self->host, "configmaps",
                                                        namespace_, name);
    if (map) {
        const char *before = s_value (map);
        size_t before_length = strlen (before);
        for (int i = 0; i < self->tries && status == ZUBE_OK; i++) {
            if (self->in_flight > 1)
                break;
            status = self->host->get_live (self->host, "configmaps", namespace_, name,
                                           NULL, NULL, error, error_size);
        }
        //  The cached object held across the calls: still what it was
        const char *value = s_value (map);
        if (strlen (value) != before_length)
            status = ZUBE_INTERNAL;
        char patch[512];
        snprintf (patch, sizeof patch,
                  "{\"metadata\":{\"annotations\":{\"probe.zube.io/seen\":\"%.100s\"}}}",
                  value);
        if (status == ZUBE_OK)
            status = self->host->patch (self->host, "configmaps", namespace_, name, NULL,
                                        NULL, patch, NULL, NULL, error, error_size);
        if (status == ZUBE_NOT_FOUND)
            status = ZUBE_OK;
    }
    self->in_flight--;
    self->syncs++;
    if (slot >= 0) {
        free (self->running[slot]);
        self->running[slot] = NULL;
    }
    s_report (self);
    return status;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "ctrlprobe",
    .watches = s_watches,
    .workers = 8,
    .create = s_create,
    .destroy = s_destroy,
    .on_add = s_on_add,
    .on_update = s_on_update,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "ctrlprobe", .version = "0.1.0",
                    .kind = ZUBE_PLUGIN_CONTROLLER, .ops = &s_ops,
                    .description = "test: counts the syncs a host runs at once")
