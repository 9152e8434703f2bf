/*  zube_plugin_host - finds, checks, loads and unloads plugins.

    The loader side of zube/plugin.h. A service makes one zube_plugin_host_t,
    gives it configuration for its plugins, and loads each plugin by name:

        zube_plugin_host_t *plugins = zube_plugin_host_new ();
        zube_plugin_host_set_config (plugins, "lmdb", "map_size", "1073741824");
        char *error = NULL;
        zube_plugin_handle_t *lmdb =
            zube_plugin_host_load (plugins, "lmdb", ZUBE_PLUGIN_STORE, &error);
        if (!lmdb) {
            zube_log_error ("msg=\"cannot load plugin\" error=\"%s\"", error);
            free (error);
        }
        const zube_store_ops_t *ops = zube_plugin_handle_ops (lmdb);
        ...
        zube_plugin_host_unload (plugins, &lmdb);
        zube_plugin_host_destroy (&plugins);

    A name is looked up as NAME.so (or .libs/NAME.so, for a libtool build
    tree) in, in order: the directories given with zube_plugin_host_set_path,
    $ZUBE_PLUGIN_PATH (colon separated), $ZUBE_BUILDDIR/plugins (set by
    `make check`, so tests load the plugins just built), and ZUBE_PLUGINDIR
    (the install directory). A name containing '/' is a file path.

    Loading: dlopen (RTLD_NOW | RTLD_LOCAL), zube_plugin_descriptor (),
    zube_plugin_check_descriptor (), init. Unloading: fini, dlclose. A hot
    swap is load (new), switch, unload (old); a failed load leaves whatever
    was running untouched. Every failure gives a text naming the file and
    the cause. The loader is not thread-safe; the host tables it hands out
    are. */
#ifndef ZUBE_PLUGIN_HOST_H_INCLUDED
#define ZUBE_PLUGIN_HOST_H_INCLUDED

#include "zube/plugin.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zube_plugin_host_t zube_plugin_host_t;
typedef struct _zube_plugin_handle_t zube_plugin_handle_t;

zube_plugin_host_t *zube_plugin_host_new (void);
//  Unloads every plugin still loaded, newest first, even busy ones.
void zube_plugin_host_destroy (zube_plugin_host_t **self_p);

//  Directories searched before $ZUBE_PLUGIN_PATH (colon separated; NULL
//  clears them).
void zube_plugin_host_set_path (zube_plugin_host_t *self, const char *path);

//  Sets KEY of PLUGIN's configuration, what the plugin reads with
//  host->config_get; a NULL value removes the key. Takes effect at once,
//  for loaded plugins too.
void zube_plugin_host_set_config (zube_plugin_host_t *self, const char *plugin,
                                  const char *key, const char *value);

//  The file NAME would be loaded from (malloc'd), or NULL with *error_p
//  (malloc'd) listing where it looked.
char *zube_plugin_host_find (zube_plugin_host_t *self, const char *name,
                             char **error_p);

//  Loads and initialises plugin NAME, which must be of KIND. NULL on
//  failure, with *error_p (malloc'd, the caller frees) when error_p is
//  not NULL; the failure is not logged (the caller knows what to do).
zube_plugin_handle_t *zube_plugin_host_load (zube_plugin_host_t *self,
                                             const char *name,
                                             zube_plugin_kind_t kind,
                                             char **error_p);

//  The most recently loaded plugin whose descriptor is named NAME, or NULL.
zube_plugin_handle_t *zube_plugin_host_lookup (zube_plugin_host_t *self,
                                               const char *name);

//  Calls fini, dlcloses and frees the plugin, and nulls *handle_p. Refused
//  with -1 (EBUSY in errno, nothing changed) while the plugin is acquired.
int zube_plugin_host_unload (zube_plugin_host_t *self, zube_plugin_handle_t **handle_p);

//  Number of plugins loaded.
size_t zube_plugin_host_size (zube_plugin_host_t *self);

//  Marks the plugin as in use by an object made through its operations
//  (an open store), so unload is refused until the matching release.
void zube_plugin_handle_acquire (zube_plugin_handle_t *self);
void zube_plugin_handle_release (zube_plugin_handle_t *self);

const zube_plugin_t *zube_plugin_handle_descriptor (zube_plugin_handle_t *self);
//  The kind's operation table (cast to the kind's type).
const void *zube_plugin_handle_ops (zube_plugin_handle_t *self);
//  The file it was loaded from.
const char *zube_plugin_handle_path (zube_plugin_handle_t *self);
//  The host table handed to this plugin.
const zube_host_t *zube_plugin_handle_host (zube_plugin_handle_t *self);
//  A counter the plugin raised with host->counter_add (0 if never).
uint64_t zube_plugin_handle_counter (zube_plugin_handle_t *self, const char *name);

//  Checks a descriptor as the loader does: struct_size, abi_version,
//  name, version, kind (against KIND unless ZUBE_PLUGIN_KIND_NONE), the
//  operation table's size and required operations. 0 if it is fine, else
//  -1 with a text naming PATH, the field, expected and found values.
int zube_plugin_check_descriptor (const zube_plugin_t *descriptor, const char *path,
                                  zube_plugin_kind_t kind, char *error,
                                  size_t error_size);

//  "store", "scheduler", ...; "none" for anything else.
const char *zube_plugin_kind_name (zube_plugin_kind_t kind);

//  Whether the bus peer sender may load, swap or unload a service's
//  plugins: the cluster's administrator ("admin", or "anonymous" on an
//  insecure bus). NULL: no.
bool zube_plugin_host_may_change (const char *sender);

#ifdef __cplusplus
}
#endif
#endif
