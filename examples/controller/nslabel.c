/*  nslabel - an example controller plugin: every namespace carries a label
    (by default zube.io/managed=true), put back when someone removes it.
    Builds with the installed headers alone:

        make            # cc ... $(pkg-config --cflags zube-plugin)
        zube-controller-manager --plugin-path . --controllers '*' \
            --controller-arg nslabel.label=team --controller-arg nslabel.value=blue ...
        # or, into a running one:
        zubectl plugin load ./nslabel.so --service controllers

    It reads namespaces through the host's cache (the struct of
    core.pb-c.h, no generated code needed for that) and writes with a JSON
    merge patch, so it links nothing but libc. A controller that builds
    objects compiles in the generated code of their schemas
    (zube-controller-plugin(3)). */
#include "core.pb-c.h"
#include "zube/controller.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const zube_ctrl_host_t *host;
    char label[128];
    char value[128];
} s_self_t;

static const char *const s_watches[] = {"namespaces", NULL};

static void *
s_create (const zube_ctrl_host_t *host, char *error, size_t error_size)
{
    const char *label = host->base->config_get (host->base, "label");
    const char *value = host->base->config_get (host->base, "value");
    if (label && (!*label || strpbrk (label, "\"\\ "))) {
        snprintf (error, error_size, "label: invalid label key \"%s\"", label);
        return NULL;
    }
    if (value && strpbrk (value, "\"\\")) {
        snprintf (error, error_size, "value: invalid label value \"%s\"", value);
        return NULL;
    }
    s_self_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->host = host;
    snprintf (self->label, sizeof self->label, "%s", label ? label : "zube.io/managed");
    snprintf (self->value, sizeof self->value, "%s", value ? value : "true");
    return self;
}

static void
s_destroy (void *self)
{
    free (self);
}

static const char *
s_label (const Zube__ObjectMeta *meta, const char *key)
{
    for (size_t i = 0; meta && i < meta->n_labels; i++)
        if (strcmp (meta->labels[i]->key, key) == 0)
            return meta->labels[i]->value;
    return NULL;
}

//  No handlers: the host enqueues each namespace's own key ("<name>") on
//  every add, update and delete, since namespaces is the primary resource.
static zube_status_t
s_sync (void *arg, const char *key, char *error, size_t error_size)
{
    s_self_t *self = arg;
    const Zube__Namespace *ns =
        (const Zube__Namespace *)self->host->get (self->host, "namespaces", NULL, key);
    if (!ns || !ns->metadata ||
        (ns->metadata->deletion_timestamp && *ns->metadata->deletion_timestamp))
        return ZUBE_OK;
    const char *value = s_label (ns->metadata, self->label);
    if (value && strcmp (value, self->value) == 0)
        return ZUBE_OK;
    char patch[512];
    snprintf (patch, sizeof patch, "{\"metadata\":{\"labels\":{\"%s\":\"%s\"}}}",
              self->label, self->value);
    zube_status_t status = self->host->patch (self->host, "namespaces", NULL, key, NULL,
                                              NULL, patch, NULL, NULL, error, error_size);
    if (status == ZUBE_OK)
        self->host->event (self->host, &ns->base, ZUBE_CTRL_EVENT_NORMAL, "Labeled",
                           "Labeled %s=%s", self->label, self->value);
    return status == ZUBE_NOT_FOUND ? ZUBE_OK : status;
}

static const zube_ctrl_ops_t s_ops = {
    .struct_size = sizeof (zube_ctrl_ops_t),
    .framework_name = "nslabel",
    .watches = s_watches,
    .workers = 1,
    .create = s_create,
    .destroy = s_destroy,
    .sync = s_sync,
};

ZUBE_PLUGIN_DEFINE (.name = "nslabel", .version = "0.1.0", .kind = ZUBE_PLUGIN_CONTROLLER,
                    .ops = &s_ops,
                    .description = "an example: a label on every namespace")
