/*  zube_plugin_host - finds, checks, loads and unloads plugins.

    Each loaded plugin gets its own copy of the host function table,
    embedded at the start of its handle, so a host function called with
    that table knows which plugin called it (for plugin=<name> in logs,
    the plugin's configuration and its counters). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "zube/log.h"
#include "zube/plugin_host.h"
#include "zube/runtime.h"
#include "zube/scheduler.h"
#include "zube/controller.h"
#include "zube/store.h"

#ifndef ZUBE_PLUGINDIR
#define ZUBE_PLUGINDIR "/usr/local/lib/zube/plugins"
#endif

typedef struct {
    char *plugin;
    char *key;
    char *value;
} s_config_t;

typedef struct {
    char *name;
    uint64_t value;
} s_counter_t;

struct _zube_plugin_host_t {
    char *path;
    pthread_mutex_t config_lock;
    s_config_t *config;
    size_t config_count;
    size_t config_cap;
    //  Values replaced while a plugin may still hold a pointer to them
    //  (config_get hands out the host's string); freed with the host.
    char **retired;
    size_t retired_count;
    zube_plugin_handle_t *newest;
    size_t count;
};

struct _zube_plugin_handle_t {
    //  First, so the const zube_host_t * a plugin calls with is the handle.
    zube_host_t host;
    zube_plugin_host_t *owner;
    zube_plugin_handle_t *older;
    char *path;
    void *dl;
    const zube_plugin_t *descriptor;
    int users;
    pthread_mutex_t counters_lock;
    s_counter_t *counters;
    size_t counter_count;
    size_t counter_cap;
};

static const char *s_kind_names[ZUBE_PLUGIN_KIND_COUNT] = {
    [ZUBE_PLUGIN_KIND_NONE] = "none",
    [ZUBE_PLUGIN_STORE] = "store",
    [ZUBE_PLUGIN_SCHEDULER] = "scheduler",
    [ZUBE_PLUGIN_CONTROLLER] = "controller",
    [ZUBE_PLUGIN_RUNTIME] = "runtime",
    [ZUBE_PLUGIN_CLOUD] = "cloud",
};

const char *
zube_plugin_kind_name (zube_plugin_kind_t kind)
{
    if ((int) kind <= 0 || kind >= ZUBE_PLUGIN_KIND_COUNT)
        return "none";
    return s_kind_names[kind];
}

static void
s_set_error (char **error_p, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_set_error (char **error_p, const char *format, ...)
{
    if (!error_p)
        return;
    va_list args;
    va_start (args, format);
    char *text = NULL;
    if (vasprintf (&text, format, args) < 0)
        text = NULL;
    va_end (args);
    free (*error_p);
    *error_p = text;
}

static bool
s_valid_name (const char *name)
{
    if (!name || !*name || strlen (name) > 64)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'
              || *c == '-'))
            return false;
    return true;
}

//  ---------------------------------------------------------------------
//  The host table handed to plugins

static void
s_host_log (const zube_host_t *host, zube_log_level_t level, const char *format, ...)
{
    if (level < zube_log_get_level () || level >= ZUBE_LOG_OFF)
        return;
    const zube_plugin_handle_t *self = (const zube_plugin_handle_t *) host;
    char line[3072];
    va_list args;
    va_start (args, format);
    int rc = vsnprintf (line, sizeof line, format, args);
    va_end (args);
    if (rc < 0)
        line[0] = 0;
    zube_log (level, "plugin=%s %s", self->descriptor->name, line);
}

static bool
s_host_log_enabled (const zube_host_t *host, zube_log_level_t level)
{
    (void) host;
    return level >= zube_log_get_level () && level < ZUBE_LOG_OFF;
}

//  Index of (plugin, key) in the config table, or -1. Caller holds the lock.
static ssize_t
s_config_index (zube_plugin_host_t *self, const char *plugin, const char *key)
{
    for (size_t i = 0; i < self->config_count; i++)
        if (strcmp (self->config[i].plugin, plugin) == 0
            && strcmp (self->config[i].key, key) == 0)
            return (ssize_t) i;
    return -1;
}

static const char *
s_host_config_get (const zube_host_t *host, const char *key)
{
    const zube_plugin_handle_t *handle = (const zube_plugin_handle_t *) host;
    zube_plugin_host_t *self = handle->owner;
    if (!key)
        return NULL;
    pthread_mutex_lock (&self->config_lock);
    ssize_t index = s_config_index (self, handle->descriptor->name, key);
    const char *value = index >= 0 ? self->config[index].value : NULL;
    pthread_mutex_unlock (&self->config_lock);
    return value;
}

static void
s_host_counter_add (const zube_host_t *host, const char *name, uint64_t delta)
{
    zube_plugin_handle_t *self = (zube_plugin_handle_t *) host;
    if (!name)
        return;
    pthread_mutex_lock (&self->counters_lock);
    size_t i;
    for (i = 0; i < self->counter_count; i++)
        if (strcmp (self->counters[i].name, name) == 0)
            break;
    if (i == self->counter_count) {
        if (self->counter_count == self->counter_cap) {
            size_t cap = self->counter_cap ? self->counter_cap * 2 : 8;
            s_counter_t *grown = realloc (self->counters, cap * sizeof *grown);
            if (!grown) {
                pthread_mutex_unlock (&self->counters_lock);
                return;
            }
            self->counters = grown;
            self->counter_cap = cap;
        }
        char *copy = strdup (name);
        if (!copy) {
            pthread_mutex_unlock (&self->counters_lock);
            return;
        }
        self->counters[i] = (s_counter_t) {.name = copy, .value = 0};
        self->counter_count++;
    }
    self->counters[i].value += delta;
    pthread_mutex_unlock (&self->counters_lock);
}

static int64_t
s_host_time_ms (const zube_host_t *host)
{
    (void) host;
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int64_t
s_host_monotonic_ns (const zube_host_t *host)
{
    (void) host;
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
}

static const zube_host_t s_host_table = {
    .struct_size = sizeof (zube_host_t),
    .version = ZUBE_HOST_VERSION,
    .log = s_host_log,
    .log_enabled = s_host_log_enabled,
    .config_get = s_host_config_get,
    .counter_add = s_host_counter_add,
    .time_ms = s_host_time_ms,
    .monotonic_ns = s_host_monotonic_ns,
};

//  ---------------------------------------------------------------------
//  The loader

zube_plugin_host_t *
zube_plugin_host_new (void)
{
    zube_plugin_host_t *self = calloc (1, sizeof *self);
    if (self)
        pthread_mutex_init (&self->config_lock, NULL);
    return self;
}

static void
s_handle_free (zube_plugin_handle_t *handle)
{
    for (size_t i = 0; i < handle->counter_count; i++)
        free (handle->counters[i].name);
    free (handle->counters);
    pthread_mutex_destroy (&handle->counters_lock);
    free (handle->path);
    free (handle);
}

//  fini, dlclose, free; the handle is already unlinked.
static void
s_handle_unload (zube_plugin_handle_t *handle)
{
    if (handle->descriptor->fini)
        handle->descriptor->fini (&handle->host);
    dlclose (handle->dl);
    s_handle_free (handle);
}

void
zube_plugin_host_destroy (zube_plugin_host_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zube_plugin_host_t *self = *self_p;
    while (self->newest) {
        zube_plugin_handle_t *handle = self->newest;
        self->newest = handle->older;
        if (handle->users > 0)
            zube_log_warn ("msg=\"unloading a plugin still in use\" plugin=%s users=%d",
                           handle->descriptor->name, handle->users);
        s_handle_unload (handle);
    }
    for (size_t i = 0; i < self->config_count; i++) {
        free (self->config[i].plugin);
        free (self->config[i].key);
        free (self->config[i].value);
    }
    free (self->config);
    for (size_t i = 0; i < self->retired_count; i++)
        free (self->retired[i]);
    free (self->retired);
    free (self->path);
    pthread_mutex_destroy (&self->config_lock);
    free (self);
    *self_p = NULL;
}

void
zube_plugin_host_set_path (zube_plugin_host_t *self, const char *path)
{
    free (self->path);
    self->path = path ? strdup (path) : NULL;
}

//  Keeps a replaced value alive (a plugin may hold it); false if out of memory.
static bool
s_retire (zube_plugin_host_t *self, char *value)
{
    char **grown = realloc (self->retired, (self->retired_count + 1) * sizeof *grown);
    if (!grown)
        return false;
    self->retired = grown;
    self->retired[self->retired_count++] = value;
    return true;
}

void
zube_plugin_host_set_config (zube_plugin_host_t *self, const char *plugin,
                             const char *key, const char *value)
{
    if (!plugin || !key)
        return;
    pthread_mutex_lock (&self->config_lock);
    ssize_t index = s_config_index (self, plugin, key);
    char *copy = value ? strdup (value) : NULL;
    if (value && !copy)
        goto done;
    if (index >= 0) {
        s_config_t *entry = &self->config[index];
        if (!s_retire (self, entry->value)) {
            free (copy);
            goto done;
        }
        if (copy)
            entry->value = copy;
        else {
            free (entry->plugin);
            free (entry->key);
            *entry = self->config[--self->config_count];
        }
        goto done;
    }
    if (!copy)
        goto done;
    if (self->config_count == self->config_cap) {
        size_t cap = self->config_cap ? self->config_cap * 2 : 8;
        s_config_t *grown = realloc (self->config, cap * sizeof *grown);
        if (!grown) {
            free (copy);
            goto done;
        }
        self->config = grown;
        self->config_cap = cap;
    }
    s_config_t entry = {.plugin = strdup (plugin), .key = strdup (key), .value = copy};
    if (!entry.plugin || !entry.key) {
        free (entry.plugin);
        free (entry.key);
        free (copy);
        goto done;
    }
    self->config[self->config_count++] = entry;
done:
    pthread_mutex_unlock (&self->config_lock);
}

//  NAME.so or .libs/NAME.so in dir (malloc'd), or NULL.
static char *
s_try_dir (const char *dir, size_t dir_len, const char *name)
{
    static const char *forms[] = {"%.*s/%s.so", "%.*s/.libs/%s.so"};
    if (dir_len == 0)
        return NULL;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char *path = NULL;
        if (asprintf (&path, forms[i], (int) dir_len, dir, name) < 0)
            return NULL;
        if (access (path, R_OK) == 0)
            return path;
        free (path);
    }
    return NULL;
}

//  Tries each directory of a colon-separated list; appends the list to
//  tried (for the error text).
static char *
s_try_list (const char *list, const char *name, char *tried, size_t tried_size)
{
    if (!list || !*list)
        return NULL;
    const char *dir = list;
    while (true) {
        const char *end = strchr (dir, ':');
        size_t len = end ? (size_t) (end - dir) : strlen (dir);
        char *path = s_try_dir (dir, len, name);
        if (path)
            return path;
        if (len > 0) {
            size_t used = strlen (tried);
            snprintf (tried + used, tried_size - used, "%s%.*s", used ? ":" : "",
                      (int) len, dir);
        }
        if (!end)
            return NULL;
        dir = end + 1;
    }
}

//  A program run from a build tree finds the plugins built beside it
//  (BUILD/plugins; libtool runs BUILD/.libs/lt-NAME or BUILD/.libs/NAME),
//  so `zube up` from a fresh build works without an install.
static char *
s_try_build_tree (const char *name, char *tried, size_t tried_size)
{
    char self_path[PATH_MAX];
    ssize_t length = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    if (length <= 0)
        return NULL;
    self_path[length] = 0;
    char *slash = strrchr (self_path, '/');
    if (!slash)
        return NULL;
    *slash = 0;
    size_t dir_length = strlen (self_path);
    if (dir_length >= 6 && strcmp (self_path + dir_length - 6, "/.libs") == 0)
        self_path[dir_length - 6] = 0;
    //  Only a build tree: one with a Makefile beside the plugins.
    char probe[PATH_MAX + 32];
    snprintf (probe, sizeof probe, "%s/Makefile", self_path);
    if (access (probe, R_OK) != 0)
        return NULL;
    snprintf (probe, sizeof probe, "%s/plugins", self_path);
    return s_try_list (probe, name, tried, tried_size);
}

char *
zube_plugin_host_find (zube_plugin_host_t *self, const char *name, char **error_p)
{
    if (!s_valid_name (name)) {
        s_set_error (error_p, "plugin %s: invalid name (expected [a-z0-9_-]+)",
                     name ? name : "(null)");
        return NULL;
    }
    char tried[2048] = "";
    char *path = s_try_list (self->path, name, tried, sizeof tried);
    if (!path)
        path = s_try_list (getenv ("ZUBE_PLUGIN_PATH"), name, tried, sizeof tried);
    const char *builddir = getenv ("ZUBE_BUILDDIR");
    if (!path && builddir && *builddir) {
        char *dir = NULL;
        if (asprintf (&dir, "%s/plugins", builddir) >= 0) {
            path = s_try_list (dir, name, tried, sizeof tried);
            free (dir);
        }
    }
    if (!path)
        path = s_try_build_tree (name, tried, sizeof tried);
    if (!path)
        path = s_try_list (ZUBE_PLUGINDIR, name, tried, sizeof tried);
    if (!path)
        s_set_error (error_p, "plugin %s: %s.so not found in %s", name, name, tried);
    return path;
}

int
zube_plugin_check_descriptor (const zube_plugin_t *descriptor, const char *path,
                              zube_plugin_kind_t kind, char *error, size_t error_size)
{
    const zube_plugin_t *d = descriptor;
    if (!path)
        path = "plugin";
    if (!d) {
        snprintf (error, error_size, "%s: " ZUBE_PLUGIN_DESCRIPTOR_SYMBOL " () returned NULL",
                  path);
        return -1;
    }
    //  The size is read first and alone: until it is known to cover a
    //  field, that field may lie past the end of the plugin's object.
    size_t min_header = offsetof (zube_plugin_t, abi_version) + sizeof d->abi_version;
    if (d->struct_size < min_header) {
        snprintf (error, error_size,
                  "%s: descriptor struct_size: expected at least %zu, found %" PRIu32, path,
                  (size_t) ZUBE_PLUGIN_DESCRIPTOR_SIZE_V1, d->struct_size);
        return -1;
    }
    if (d->abi_version != ZUBE_ABI_VERSION) {
        snprintf (error, error_size,
                  "%s: descriptor abi_version: expected %d, found %" PRIu32
                  " (built for another zube plugin ABI: rebuild it against this zube)",
                  path, ZUBE_ABI_VERSION, d->abi_version);
        return -1;
    }
    if (d->struct_size < ZUBE_PLUGIN_DESCRIPTOR_SIZE_V1) {
        snprintf (error, error_size,
                  "%s: descriptor struct_size: expected at least %zu, found %" PRIu32, path,
                  (size_t) ZUBE_PLUGIN_DESCRIPTOR_SIZE_V1, d->struct_size);
        return -1;
    }
    if (!s_valid_name (d->name)) {
        snprintf (error, error_size,
                  "%s: descriptor name: expected [a-z0-9_-]+, found \"%s\"", path,
                  d->name ? d->name : "(null)");
        return -1;
    }
    if (!d->version) {
        snprintf (error, error_size, "%s: descriptor version: expected a string, found NULL",
                  path);
        return -1;
    }
    if ((int) d->kind <= 0 || d->kind >= ZUBE_PLUGIN_KIND_COUNT) {
        snprintf (error, error_size,
                  "%s: descriptor kind: expected %s, found %d", path,
                  kind != ZUBE_PLUGIN_KIND_NONE ? zube_plugin_kind_name (kind)
                                                : "a plugin kind",
                  (int) d->kind);
        return -1;
    }
    if (kind != ZUBE_PLUGIN_KIND_NONE && d->kind != kind) {
        snprintf (error, error_size, "%s: descriptor kind: expected %s, found %s", path,
                  zube_plugin_kind_name (kind), zube_plugin_kind_name (d->kind));
        return -1;
    }
    if (!d->ops) {
        snprintf (error, error_size, "%s: descriptor ops: expected a %s operation table, found NULL",
                  path, zube_plugin_kind_name (d->kind));
        return -1;
    }
    if (d->kind == ZUBE_PLUGIN_STORE) {
        const zube_store_ops_t *ops = d->ops;
        if (ops->struct_size < ZUBE_STORE_OPS_SIZE_V1) {
            snprintf (error, error_size,
                      "%s: store ops struct_size: expected at least %zu, found %" PRIu32, path,
                      (size_t) ZUBE_STORE_OPS_SIZE_V1, ops->struct_size);
            return -1;
        }
        struct {
            const char *name;
            bool present;
        } required[] = {
            {"open", ops->open != NULL},          {"close", ops->close != NULL},
            {"errmsg", ops->errmsg != NULL},      {"get", ops->get != NULL},
            {"range", ops->range != NULL},        {"txn_commit", ops->txn_commit != NULL},
            {"revision", ops->revision != NULL},  {"events", ops->events != NULL},
            {"compact", ops->compact != NULL},
        };
        for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
            if (!required[i].present) {
                snprintf (error, error_size,
                          "%s: store ops %s: expected a function, found NULL", path,
                          required[i].name);
                return -1;
            }
        return 0;
    }
    if (d->kind == ZUBE_PLUGIN_RUNTIME) {
        const zube_runtime_ops_t *ops = d->ops;
        if (ops->struct_size < ZUBE_RUNTIME_OPS_SIZE_V1) {
            snprintf (error, error_size,
                      "%s: runtime ops struct_size: expected at least %zu, found %" PRIu32,
                      path, (size_t) ZUBE_RUNTIME_OPS_SIZE_V1, ops->struct_size);
            return -1;
        }
        //  probe, logs and exec are optional: the client answers for them.
        struct {
            const char *name;
            bool present;
        } required[] = {
            {"open", ops->open != NULL},
            {"close", ops->close != NULL},
            {"errmsg", ops->errmsg != NULL},
            {"run_sandbox", ops->run_sandbox != NULL},
            {"stop_sandbox", ops->stop_sandbox != NULL},
            {"remove_sandbox", ops->remove_sandbox != NULL},
            {"sandbox_status", ops->sandbox_status != NULL},
            {"list_sandboxes", ops->list_sandboxes != NULL},
            {"create_container", ops->create_container != NULL},
            {"start_container", ops->start_container != NULL},
            {"stop_container", ops->stop_container != NULL},
            {"remove_container", ops->remove_container != NULL},
            {"container_status", ops->container_status != NULL},
            {"list_containers", ops->list_containers != NULL},
            {"tick", ops->tick != NULL},
        };
        for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
            if (!required[i].present) {
                snprintf (error, error_size,
                          "%s: runtime ops %s: expected a function, found NULL", path,
                          required[i].name);
                return -1;
            }
        return 0;
    }
    if (d->kind == ZUBE_PLUGIN_SCHEDULER) {
        //  Any subset of the extension points; the scheduler checks the rest
        const zube_sched_ops_t *ops = d->ops;
        if (ops->struct_size < ZUBE_SCHED_OPS_SIZE_V1) {
            snprintf (error, error_size,
                      "%s: scheduler ops struct_size: expected at least %zu, found %" PRIu32,
                      path, (size_t) ZUBE_SCHED_OPS_SIZE_V1, ops->struct_size);
            return -1;
        }
        if (!ops->create || !ops->destroy) {
            snprintf (error, error_size,
                      "%s: scheduler ops %s: expected a function, found NULL", path,
                      ops->create ? "destroy" : "create");
            return -1;
        }
        return 0;
    }
    if (d->kind == ZUBE_PLUGIN_CONTROLLER) {
        const zube_ctrl_ops_t *ops = d->ops;
        if (ops->struct_size < ZUBE_CTRL_OPS_SIZE_V1) {
            snprintf (error, error_size,
                      "%s: controller ops struct_size: expected at least %zu, found %" PRIu32,
                      path, (size_t) ZUBE_CTRL_OPS_SIZE_V1, ops->struct_size);
            return -1;
        }
        const char *missing = !ops->framework_name || !*ops->framework_name ? "framework_name"
                              : !ops->watches || !ops->watches[0]           ? "watches"
                              : !ops->create                                ? "create"
                              : !ops->destroy                               ? "destroy"
                              : !ops->sync                                  ? "sync"
                                                                            : NULL;
        if (missing) {
            snprintf (error, error_size, "%s: controller ops %s: required, found NULL", path,
                      missing);
            return -1;
        }
        return 0;
    }
    snprintf (error, error_size,
              "%s: descriptor kind: %s plugins are not supported by this host yet", path,
              zube_plugin_kind_name (d->kind));
    return -1;
}

zube_plugin_handle_t *
zube_plugin_host_load (zube_plugin_host_t *self, const char *name,
                       zube_plugin_kind_t kind, char **error_p)
{
    if (!name) {
        s_set_error (error_p, "plugin (null): no name");
        return NULL;
    }
    char *path = strchr (name, '/') ? strdup (name) : zube_plugin_host_find (self, name, error_p);
    if (!path)
        return NULL;
    dlerror ();
    void *dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror ();
        s_set_error (error_p, "%s: cannot load: %s", path, why ? why : "unknown dlopen error");
        free (path);
        return NULL;
    }
    dlerror ();
    void *symbol = dlsym (dl, ZUBE_PLUGIN_DESCRIPTOR_SYMBOL);
    if (!symbol) {
        const char *why = dlerror ();
        s_set_error (error_p, "%s: missing symbol " ZUBE_PLUGIN_DESCRIPTOR_SYMBOL
                     " (not a zube plugin): %s", path, why ? why : "symbol is NULL");
        dlclose (dl);
        free (path);
        return NULL;
    }
    const zube_plugin_t *(*descriptor_fn) (void);
    memcpy (&descriptor_fn, &symbol, sizeof descriptor_fn);
    const zube_plugin_t *descriptor = descriptor_fn ();
    char reason[512];
    if (zube_plugin_check_descriptor (descriptor, path, kind, reason, sizeof reason) != 0) {
        s_set_error (error_p, "%s", reason);
        dlclose (dl);
        free (path);
        return NULL;
    }
    zube_plugin_handle_t *handle = calloc (1, sizeof *handle);
    if (!handle) {
        s_set_error (error_p, "%s: out of memory", path);
        dlclose (dl);
        free (path);
        return NULL;
    }
    handle->host = s_host_table;
    handle->owner = self;
    handle->path = path;
    handle->dl = dl;
    handle->descriptor = descriptor;
    pthread_mutex_init (&handle->counters_lock, NULL);
    if (descriptor->init) {
        char text[512] = "";
        zube_plugin_rc_t rc = descriptor->init (&handle->host, text, sizeof text);
        if (rc != ZUBE_PLUGIN_OK) {
            text[sizeof text - 1] = 0;
            s_set_error (error_p, "%s: init %s: %s", path,
                         rc == ZUBE_PLUGIN_DECLINED ? "declined" : "failed",
                         text[0] ? text : "no reason given");
            dlclose (dl);
            s_handle_free (handle);
            return NULL;
        }
    }
    handle->older = self->newest;
    self->newest = handle;
    self->count++;
    return handle;
}

zube_plugin_handle_t *
zube_plugin_host_lookup (zube_plugin_host_t *self, const char *name)
{
    for (zube_plugin_handle_t *handle = self->newest; handle && name; handle = handle->older)
        if (strcmp (handle->descriptor->name, name) == 0)
            return handle;
    return NULL;
}

int
zube_plugin_host_unload (zube_plugin_host_t *self, zube_plugin_handle_t **handle_p)
{
    if (!handle_p || !*handle_p)
        return 0;
    zube_plugin_handle_t *handle = *handle_p;
    if (handle->users > 0) {
        errno = EBUSY;
        return -1;
    }
    zube_plugin_handle_t **link = &self->newest;
    while (*link && *link != handle)
        link = &(*link)->older;
    if (!*link) {
        errno = ENOENT;
        return -1;
    }
    *link = handle->older;
    self->count--;
    s_handle_unload (handle);
    *handle_p = NULL;
    return 0;
}

size_t
zube_plugin_host_size (zube_plugin_host_t *self)
{
    return self->count;
}

void
zube_plugin_handle_acquire (zube_plugin_handle_t *self)
{
    self->users++;
}

void
zube_plugin_handle_release (zube_plugin_handle_t *self)
{
    if (self->users > 0)
        self->users--;
}

const zube_plugin_t *
zube_plugin_handle_descriptor (zube_plugin_handle_t *self)
{
    return self->descriptor;
}

const void *
zube_plugin_handle_ops (zube_plugin_handle_t *self)
{
    return self->descriptor->ops;
}

const char *
zube_plugin_handle_path (zube_plugin_handle_t *self)
{
    return self->path;
}

const zube_host_t *
zube_plugin_handle_host (zube_plugin_handle_t *self)
{
    return &self->host;
}

uint64_t
zube_plugin_handle_counter (zube_plugin_handle_t *self, const char *name)
{
    uint64_t value = 0;
    pthread_mutex_lock (&self->counters_lock);
    for (size_t i = 0; i < self->counter_count; i++)
        if (strcmp (self->counters[i].name, name) == 0)
            value = self->counters[i].value;
    pthread_mutex_unlock (&self->counters_lock);
    return value;
}

bool
zube_plugin_host_may_change (const char *sender)
{
    return sender && (strcmp (sender, "admin") == 0 || strcmp (sender, "anonymous") == 0);
}
