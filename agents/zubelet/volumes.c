/*  volumes - what the kubelet's volume manager and env resolution do before
    a pod's sandbox is made: configMap and secret volumes are written into
    files under the zubelet's state directory (volumes/<pod uid>/<volume>/),
    and env values taken from ConfigMaps and Secrets (env[].valueFrom
    configMapKeyRef / secretKeyRef, envFrom) are looked up, so a runtime
    sees only what it can run: the pod it is handed has those volumes as
    read-only hostPath volumes onto the written files, and those env
    entries as plain values (docs/node-agent.md).

    The objects are read from the apiserver once, when the sandbox is made;
    a later change of a ConfigMap reaches a pod when its sandbox is made
    again (the kubelet refreshes mounted files; zube does not yet). A
    missing object that is not optional fails the sandbox with Kubernetes'
    message (configmap "x" not found), which the pod's status shows, and
    the zubelet tries again later.

    The pod handed in is never modified: the view written for the runtime
    shares its unchanged parts and owns only the replaced ones. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE //  nftw
#endif
#include "zubelet.h"
#include "zube/log.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Everything the view allocates, freed together.
typedef struct {
    void **items;
    size_t count, capacity;
} s_arena_t;

//  A ConfigMap or Secret read once per resolution (object NULL: not found).
typedef struct {
    bool secret;
    char *name;
    ProtobufCMessage *object;
} s_source_t;

typedef struct {
    zubelet_t *zubelet;
    const Zube__Pod *pod;
    s_arena_t arena;
    s_source_t sources[32];
    size_t source_count;
    char *error;
    size_t error_size;
} s_ctx_t;

static void *
s_alloc (s_ctx_t *ctx, size_t size)
{
    s_arena_t *arena = &ctx->arena;
    if (arena->count == arena->capacity) {
        size_t capacity = arena->capacity ? arena->capacity * 2 : 16;
        void **items = realloc (arena->items, capacity * sizeof *items);
        if (!items)
            return NULL;
        arena->items = items;
        arena->capacity = capacity;
    }
    void *item = calloc (1, size ? size : 1);
    if (item)
        arena->items[arena->count++] = item;
    return item;
}

static char *
s_strndup (s_ctx_t *ctx, const char *text, size_t length)
{
    char *copy = s_alloc (ctx, length + 1);
    if (copy)
        memcpy (copy, text, length);
    return copy;
}

static void
s_ctx_free (s_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->arena.count; i++)
        free (ctx->arena.items[i]);
    free (ctx->arena.items);
    for (size_t i = 0; i < ctx->source_count; i++) {
        free (ctx->sources[i].name);
        if (ctx->sources[i].object)
            protobuf_c_message_free_unpacked (ctx->sources[i].object, NULL);
    }
}

//  The ConfigMap or Secret name of the pod's namespace; 0 with *object_p
//  NULL when it does not exist, -1 on any other failure (error filled).
static int
s_source (s_ctx_t *ctx, bool secret, const char *name, ProtobufCMessage **object_p)
{
    for (size_t i = 0; i < ctx->source_count; i++)
        if (ctx->sources[i].secret == secret && strcmp (ctx->sources[i].name, name) == 0) {
            *object_p = ctx->sources[i].object;
            return 0;
        }
    if (ctx->source_count == sizeof ctx->sources / sizeof ctx->sources[0]) {
        snprintf (ctx->error, ctx->error_size,
                  "the pod refers to more than %zu ConfigMaps and Secrets",
                  sizeof ctx->sources / sizeof ctx->sources[0]);
        return -1;
    }
    zube_api_error_t api_error;
    ProtobufCMessage *object = NULL;
    zube_status_t status =
        zube_api_get (ctx->zubelet->api, secret ? "secrets" : "configmaps",
                      ctx->pod->metadata->namespace_, name, &object, &api_error);
    if (status != ZUBE_OK && status != ZUBE_NOT_FOUND) {
        snprintf (ctx->error, ctx->error_size, "cannot read %s \"%s\": %s",
                  secret ? "secret" : "configmap", name, api_error.message);
        return -1;
    }
    s_source_t *source = &ctx->sources[ctx->source_count];
    source->secret = secret;
    source->name = strdup (name);
    source->object = status == ZUBE_OK ? object : NULL;
    if (!source->name) {
        if (object)
            protobuf_c_message_free_unpacked (object, NULL);
        snprintf (ctx->error, ctx->error_size, "out of memory");
        return -1;
    }
    ctx->source_count++;
    *object_p = source->object;
    return 0;
}

//  Calls fn for every key of a ConfigMap (data, then binaryData) or a
//  Secret (data); stops at the first non-zero answer and returns it.
typedef int (s_entry_fn) (s_ctx_t *ctx, const char *key, const void *value, size_t size,
                          void *arg);

static int
s_each_entry (s_ctx_t *ctx, bool secret, const ProtobufCMessage *object, s_entry_fn *fn,
              void *arg)
{
    int rc = 0;
    if (secret) {
        const Zube__Secret *s = (const Zube__Secret *)object;
        for (size_t i = 0; rc == 0 && i < s->n_data; i++)
            rc = fn (ctx, s->data[i]->key, s->data[i]->value.data, s->data[i]->value.len, arg);
        return rc;
    }
    const Zube__ConfigMap *c = (const Zube__ConfigMap *)object;
    for (size_t i = 0; rc == 0 && i < c->n_data; i++)
        rc = fn (ctx, c->data[i]->key, c->data[i]->value,
                 c->data[i]->value ? strlen (c->data[i]->value) : 0, arg);
    for (size_t i = 0; rc == 0 && i < c->n_binary_data; i++)
        rc = fn (ctx, c->binary_data[i]->key, c->binary_data[i]->value.data,
                 c->binary_data[i]->value.len, arg);
    return rc;
}

typedef struct {
    const char *key;
    const void *value;
    size_t size;
    bool found;
} s_find_t;

static int
s_find_entry (s_ctx_t *ctx, const char *key, const void *value, size_t size, void *arg)
{
    (void)ctx;
    s_find_t *find = arg;
    if (!key || strcmp (key, find->key) != 0)
        return 0;
    find->value = value;
    find->size = size;
    find->found = true;
    return 1;
}

//  ---------------------------------------------------------------------
//  Env

//  The value of key in ConfigMap/Secret name into *value_p (NULL when an
//  optional reference is missing). 0, or -1 with error.
static int
s_key_ref (s_ctx_t *ctx, bool secret, const char *name, const char *key, bool optional,
           const char *var, char **value_p)
{
    const char *kind = secret ? "secret" : "configmap";
    *value_p = NULL;
    ProtobufCMessage *object;
    if (s_source (ctx, secret, name ? name : "", &object) != 0)
        return -1;
    if (!object) {
        if (optional)
            return 0;
        snprintf (ctx->error, ctx->error_size, "env %s: %s \"%s\" not found", var, kind,
                  name ? name : "");
        return -1;
    }
    s_find_t find = {.key = key ? key : ""};
    s_each_entry (ctx, secret, object, s_find_entry, &find);
    if (!find.found) {
        if (optional)
            return 0;
        snprintf (ctx->error, ctx->error_size, "env %s: couldn't find key %s in %s %s/%s", var,
                  find.key, secret ? "Secret" : "ConfigMap", ctx->pod->metadata->namespace_,
                  name ? name : "");
        return -1;
    }
    *value_p = s_strndup (ctx, find.value ? find.value : "", find.size);
    if (!*value_p) {
        snprintf (ctx->error, ctx->error_size, "out of memory");
        return -1;
    }
    return 0;
}

//  A growing env array of the view.
typedef struct {
    Zube__EnvVar **vars;
    size_t count, capacity;
    const char *prefix;
} s_env_t;

static int
s_env_push (s_ctx_t *ctx, s_env_t *env, const char *name, const char *value)
{
    if (env->count == env->capacity) {
        size_t capacity = env->capacity ? env->capacity * 2 : 16;
        Zube__EnvVar **vars = s_alloc (ctx, capacity * sizeof *vars);
        if (!vars)
            return -1;
        if (env->count)
            memcpy (vars, env->vars, env->count * sizeof *vars);
        env->vars = vars;
        env->capacity = capacity;
    }
    Zube__EnvVar *var = s_alloc (ctx, sizeof *var);
    if (!var)
        return -1;
    zube__env_var__init (var);
    var->name = (char *)name;
    var->value = (char *)value;
    env->vars[env->count++] = var;
    return 0;
}

//  Kubernetes' env var names: [-._a-zA-Z][-._a-zA-Z0-9]*
static bool
s_env_name_valid (const char *name)
{
    if (!*name || (*name >= '0' && *name <= '9'))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.'))
            return false;
    return true;
}

static int
s_env_from_entry (s_ctx_t *ctx, const char *key, const void *value, size_t size, void *arg)
{
    s_env_t *env = arg;
    const char *prefix = env->prefix ? env->prefix : "";
    size_t length = strlen (prefix) + strlen (key ? key : "") + 1;
    char *name = s_alloc (ctx, length);
    char *text = s_strndup (ctx, value ? value : "", size);
    if (!name || !text)
        return -1;
    snprintf (name, length, "%s%s", prefix, key ? key : "");
    //  As the kubelet: keys that are not valid names are skipped
    if (!s_env_name_valid (name))
        return 0;
    return s_env_push (ctx, env, name, text);
}

//  True when the containers refer to a ConfigMap or Secret in their env.
static bool
s_env_refers (Zube__Container *const *containers, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (containers[i]->n_env_from)
            return true;
        for (size_t j = 0; j < containers[i]->n_env; j++) {
            const Zube__EnvVarSource *from = containers[i]->env[j]->value_from;
            if (from && (from->config_map_key_ref || from->secret_key_ref))
                return true;
        }
    }
    return false;
}

//  The container's env with envFrom expanded in front and key references
//  resolved; *changed false when there was nothing to do.
static int
s_container_env (s_ctx_t *ctx, Zube__Container *view, bool *changed)
{
    if (!s_env_refers (&view, 1))
        return 0;
    s_env_t env = {0};
    for (size_t i = 0; i < view->n_env_from; i++) {
        const Zube__EnvFromSource *from = view->env_from[i];
        bool secret = from->secret_ref != NULL;
        const char *name = secret ? from->secret_ref->name
                           : from->config_map_ref ? from->config_map_ref->name
                                                  : NULL;
        bool optional = secret ? from->secret_ref->optional
                        : from->config_map_ref ? from->config_map_ref->optional
                                               : true;
        if (!name)
            continue;
        ProtobufCMessage *object;
        if (s_source (ctx, secret, name, &object) != 0)
            return -1;
        if (!object) {
            if (optional)
                continue;
            snprintf (ctx->error, ctx->error_size, "envFrom: %s \"%s\" not found",
                      secret ? "secret" : "configmap", name);
            return -1;
        }
        env.prefix = from->prefix;
        if (s_each_entry (ctx, secret, object, s_env_from_entry, &env) != 0)
            goto oom;
    }
    for (size_t i = 0; i < view->n_env; i++) {
        const Zube__EnvVar *var = view->env[i];
        const Zube__EnvVarSource *from = var->value_from;
        if (from && (from->config_map_key_ref || from->secret_key_ref)) {
            bool secret = from->secret_key_ref != NULL;
            const char *name = secret ? from->secret_key_ref->name : from->config_map_key_ref->name;
            const char *key = secret ? from->secret_key_ref->key : from->config_map_key_ref->key;
            bool optional =
                secret ? from->secret_key_ref->optional : from->config_map_key_ref->optional;
            char *value;
            if (s_key_ref (ctx, secret, name, key, optional, var->name ? var->name : "",
                           &value) != 0)
                return -1;
            if (value && s_env_push (ctx, &env, var->name, value) != 0)
                goto oom;
            continue;
        }
        //  Kept as it is (a plain value, or a fieldRef the runtime resolves)
        if (s_env_push (ctx, &env, NULL, NULL) != 0)
            goto oom;
        env.vars[env.count - 1] = (Zube__EnvVar *)var;
    }
    view->n_env_from = 0;
    view->env_from = NULL;
    view->n_env = env.count;
    view->env = env.vars;
    *changed = true;
    return 0;
oom:
    snprintf (ctx->error, ctx->error_size, "out of memory");
    return -1;
}

//  ---------------------------------------------------------------------
//  Volumes

static int
s_remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove (path);
    return 0;
}

static void
s_remove_tree (const char *path)
{
    nftw (path, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

//  A key or items[].path: relative, no ".." element, no empty element.
static bool
s_relative_path_valid (const char *path)
{
    if (!path || !*path || path[0] == '/')
        return false;
    for (const char *element = path; *element;) {
        const char *end = strchr (element, '/');
        size_t length = end ? (size_t)(end - element) : strlen (element);
        if (length == 0 || (length == 2 && strncmp (element, "..", 2) == 0))
            return false;
        element += length + (end ? 1 : 0);
    }
    return true;
}

typedef struct {
    const char *dir;
    const char *volume;
    const Zube__KeyToPath *const *items;
    size_t item_count;
    int default_mode;
    size_t written;
} s_write_t;

static int
s_write_file (s_ctx_t *ctx, const char *dir, const char *path, const void *value,
              size_t size, int mode)
{
    char file[4096];
    if (!s_relative_path_valid (path) ||
        (size_t)snprintf (file, sizeof file, "%s/%s", dir, path) >= sizeof file) {
        snprintf (ctx->error, ctx->error_size, "volume: invalid path \"%s\"", path ? path : "");
        return -1;
    }
    for (char *slash = file + strlen (dir) + 1; (slash = strchr (slash, '/')); slash++) {
        *slash = '\0';
        int rc = mkdir (file, 0755);
        *slash = '/';
        if (rc != 0 && errno != EEXIST)
            goto fail;
    }
    int fd = open (file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        goto fail;
    const char *at = value;
    for (size_t left = size; left > 0;) {
        ssize_t n = write (fd, at, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close (fd);
            goto fail;
        }
        at += n;
        left -= (size_t)n;
    }
    fchmod (fd, (mode_t)(mode & 07777));
    close (fd);
    return 0;
fail:
    snprintf (ctx->error, ctx->error_size, "cannot write %s: %s", file, strerror (errno));
    return -1;
}

static int
s_volume_entry (s_ctx_t *ctx, const char *key, const void *value, size_t size, void *arg)
{
    s_write_t *write = arg;
    if (write->item_count == 0) {
        if (s_write_file (ctx, write->dir, key, value, size, write->default_mode) != 0)
            return -1;
        write->written++;
        return 0;
    }
    for (size_t i = 0; i < write->item_count; i++) {
        const Zube__KeyToPath *item = write->items[i];
        if (!item->key || !key || strcmp (item->key, key) != 0)
            continue;
        int mode = item->has_mode ? item->mode : write->default_mode;
        if (s_write_file (ctx, write->dir, item->path, value, size, mode) != 0)
            return -1;
        write->written++;
    }
    return 0;
}

//  Writes a configMap or secret volume into dir (made anew); answers 1
//  when an optional source is missing (an empty dir), 0, or -1.
static int
s_write_volume (s_ctx_t *ctx, const Zube__Volume *volume, const char *dir)
{
    bool secret = volume->secret != NULL;
    const char *kind = secret ? "secret" : "configmap";
    const char *name = secret ? volume->secret->secret_name : volume->config_map->name;
    bool optional = secret ? volume->secret->optional : volume->config_map->optional;
    s_write_t write = {
        .dir = dir,
        .volume = volume->name,
        .items = secret ? (const Zube__KeyToPath *const *)volume->secret->items
                        : (const Zube__KeyToPath *const *)volume->config_map->items,
        .item_count = secret ? volume->secret->n_items : volume->config_map->n_items,
        .default_mode = 0644};
    if (secret ? volume->secret->has_default_mode : volume->config_map->has_default_mode)
        write.default_mode =
            secret ? volume->secret->default_mode : volume->config_map->default_mode;
    s_remove_tree (dir);
    if (mkdir (dir, 0755) != 0) {
        snprintf (ctx->error, ctx->error_size, "volume \"%s\": cannot create %s: %s",
                  volume->name, dir, strerror (errno));
        return -1;
    }
    ProtobufCMessage *object;
    if (s_source (ctx, secret, name ? name : "", &object) != 0)
        return -1;
    if (!object) {
        if (optional)
            return 1;
        snprintf (ctx->error, ctx->error_size,
                  "MountVolume.SetUp failed for volume \"%s\": %s \"%s\" not found",
                  volume->name, kind, name ? name : "");
        return -1;
    }
    if (s_each_entry (ctx, secret, object, s_volume_entry, &write) != 0)
        return -1;
    //  As the kubelet: an item naming a key that is not there is an error
    //  unless the source is optional
    for (size_t i = 0; !optional && i < write.item_count; i++) {
        s_find_t find = {.key = write.items[i]->key ? write.items[i]->key : ""};
        s_each_entry (ctx, secret, object, s_find_entry, &find);
        if (!find.found) {
            snprintf (ctx->error, ctx->error_size,
                      "MountVolume.SetUp failed for volume \"%s\": configmap references "
                      "non-existent config key: %s",
                      volume->name, find.key);
            if (secret)
                snprintf (ctx->error, ctx->error_size,
                          "MountVolume.SetUp failed for volume \"%s\": references "
                          "non-existent secret key: %s",
                          volume->name, find.key);
            return -1;
        }
    }
    return 0;
}

//  The view's volumes with configMap and secret ones turned into hostPath
//  ones onto their written files; *changed true when any was.
static int
s_volumes (s_ctx_t *ctx, Zube__PodSpec *spec, const char *dir, bool *changed)
{
    bool any = false;
    for (size_t i = 0; i < spec->n_volumes; i++)
        any = any || spec->volumes[i]->config_map || spec->volumes[i]->secret;
    if (!any)
        return 0;
    if (mkdir (dir, 0755) != 0 && errno != EEXIST) {
        snprintf (ctx->error, ctx->error_size, "cannot create %s: %s", dir, strerror (errno));
        return -1;
    }
    Zube__Volume **volumes = s_alloc (ctx, spec->n_volumes * sizeof *volumes);
    if (!volumes)
        goto oom;
    for (size_t i = 0; i < spec->n_volumes; i++) {
        const Zube__Volume *volume = spec->volumes[i];
        volumes[i] = (Zube__Volume *)volume;
        if (!volume->config_map && !volume->secret)
            continue;
        if (!volume->name || !s_relative_path_valid (volume->name) || strchr (volume->name, '/')) {
            snprintf (ctx->error, ctx->error_size, "volumes[%zu]: invalid name \"%s\"", i,
                      volume->name ? volume->name : "");
            return -1;
        }
        size_t length = strlen (dir) + strlen (volume->name) + 2;
        char *path = s_alloc (ctx, length);
        Zube__Volume *host = s_alloc (ctx, sizeof *host);
        Zube__HostPathVolumeSource *source = s_alloc (ctx, sizeof *source);
        if (!path || !host || !source)
            goto oom;
        snprintf (path, length, "%s/%s", dir, volume->name);
        if (s_write_volume (ctx, volume, path) < 0)
            return -1;
        zube__volume__init (host);
        zube__host_path_volume_source__init (source);
        source->path = path;
        source->type = "Directory";
        host->name = volume->name;
        host->host_path = source;
        volumes[i] = host;
    }
    spec->volumes = volumes;
    *changed = true;
    return 0;
oom:
    snprintf (ctx->error, ctx->error_size, "out of memory");
    return -1;
}

//  configMap and secret volumes are mounted read-only (as Kubernetes does).
static int
s_read_only_mounts (s_ctx_t *ctx, const Zube__PodSpec *original, Zube__Container *view)
{
    bool any = false;
    for (size_t i = 0; i < view->n_volume_mounts && !any; i++)
        for (size_t j = 0; j < original->n_volumes; j++) {
            const Zube__Volume *volume = original->volumes[j];
            any = any || ((volume->config_map || volume->secret) && volume->name &&
                          view->volume_mounts[i]->name &&
                          strcmp (volume->name, view->volume_mounts[i]->name) == 0);
        }
    if (!any)
        return 0;
    Zube__VolumeMount **mounts = s_alloc (ctx, view->n_volume_mounts * sizeof *mounts);
    if (!mounts)
        return -1;
    for (size_t i = 0; i < view->n_volume_mounts; i++) {
        mounts[i] = view->volume_mounts[i];
        for (size_t j = 0; j < original->n_volumes; j++) {
            const Zube__Volume *volume = original->volumes[j];
            if (!(volume->config_map || volume->secret) || !volume->name ||
                !mounts[i]->name || strcmp (volume->name, mounts[i]->name) != 0)
                continue;
            Zube__VolumeMount *copy = s_alloc (ctx, sizeof *copy);
            if (!copy)
                return -1;
            *copy = *mounts[i];
            copy->has_read_only = true;
            copy->read_only = true;
            mounts[i] = copy;
        }
    }
    view->volume_mounts = mounts;
    return 0;
}

//  Views of a container list, each container resolved.
static int
s_containers (s_ctx_t *ctx, const Zube__PodSpec *original, size_t count,
              Zube__Container ***containers_p, bool *changed)
{
    if (!count)
        return 0;
    Zube__Container **views = s_alloc (ctx, count * sizeof *views);
    if (!views)
        goto oom;
    for (size_t i = 0; i < count; i++) {
        Zube__Container *view = s_alloc (ctx, sizeof *view);
        if (!view)
            goto oom;
        *view = *(*containers_p)[i];
        if (s_container_env (ctx, view, changed) != 0)
            return -1;
        if (s_read_only_mounts (ctx, original, view) != 0)
            goto oom;
        views[i] = view;
    }
    *containers_p = views;
    return 0;
oom:
    snprintf (ctx->error, ctx->error_size, "out of memory");
    return -1;
}

//  True when the pod has anything to write or resolve; most pods (every
//  hollow node's) have not and are packed as they are.
static bool
s_needs_view (const Zube__Pod *pod)
{
    const Zube__PodSpec *spec = pod->spec;
    if (!spec || !pod->metadata)
        return false;
    for (size_t i = 0; i < spec->n_volumes; i++)
        if (spec->volumes[i]->config_map || spec->volumes[i]->secret)
            return true;
    return s_env_refers (spec->init_containers, spec->n_init_containers) ||
           s_env_refers (spec->containers, spec->n_containers);
}

int
zl_pod_view_pack (zubelet_t *self, const Zube__Pod *pod, uint8_t **packed_p, size_t *size_p,
                  char *error, size_t error_size)
{
    *packed_p = NULL;
    *size_p = 0;
    s_ctx_t ctx = {.zubelet = self, .pod = pod, .error = error, .error_size = error_size};
    Zube__Pod view = *pod;
    Zube__PodSpec spec;
    bool changed = false;
    int rc = 0;
    if (s_needs_view (pod)) {
        spec = *pod->spec;
        view.spec = &spec;
        //  hostPath sources are absolute: the state dir may not be
        char parent[4096], dir[4200], *state = realpath (self->config.state_dir, NULL);
        snprintf (parent, sizeof parent, "%s/volumes", state ? state : self->config.state_dir);
        free (state);
        snprintf (dir, sizeof dir, "%s/%s", parent,
                  pod->metadata->uid ? pod->metadata->uid : "");
        bool volumes = false;
        for (size_t i = 0; i < spec.n_volumes; i++)
            volumes = volumes || spec.volumes[i]->config_map || spec.volumes[i]->secret;
        if (volumes && mkdir (parent, 0700) != 0 && errno != EEXIST) {
            snprintf (error, error_size, "cannot create %s: %s", parent, strerror (errno));
            rc = -1;
        }
        if (rc == 0)
            rc = s_volumes (&ctx, &spec, dir, &changed);
        if (rc == 0)
            rc = s_containers (&ctx, pod->spec, spec.n_init_containers,
                               &spec.init_containers, &changed);
        if (rc == 0)
            rc = s_containers (&ctx, pod->spec, spec.n_containers, &spec.containers, &changed);
    }
    if (rc == 0) {
        const ProtobufCMessage *message = changed ? &view.base : &pod->base;
        size_t size = protobuf_c_message_get_packed_size (message);
        *packed_p = malloc (size ? size : 1);
        if (*packed_p) {
            protobuf_c_message_pack (message, *packed_p);
            *size_p = size;
        } else {
            snprintf (error, error_size, "out of memory");
            rc = -1;
        }
    }
    s_ctx_free (&ctx);
    return rc;
}

void
zl_pod_volumes_remove (zubelet_t *self, const char *uid)
{
    if (!uid || !*uid || strchr (uid, '/'))
        return;
    char dir[4096];
    snprintf (dir, sizeof dir, "%s/volumes/%s", self->config.state_dir, uid);
    s_remove_tree (dir);
}
