/*  zube_apiserver - the bus service "api": the only writer of cluster state.

    One zube_apiserver_t owns a bus connection, a store (by URL, through the
    store plugins), the authorization policy and the event window. It
    serves docs/api-protocol.md: create, get, list, update, patch, delete,
    watch, backup, restore and stats. main.c parses flags and runs it:

        zube_apiserver_t *server = zube_apiserver_new (&config, error, sizeof error);
        zube_apiserver_run (server);        //  until SIGINT or SIGTERM
        zube_apiserver_destroy (&server);
*/
#ifndef ZUBE_APISERVER_H_INCLUDED
#define ZUBE_APISERVER_H_INCLUDED

#include "zube/bus.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct _zube_apiserver_t zube_apiserver_t;

typedef struct {
    //  The bus connection (endpoint, security, name).
    zube_bus_config_t bus;
    //  "lmdb:DIR", "redis://HOST:PORT[/DB]", "etcd://HOST:PORT".
    const char *store_url;
    //  NULL: the built-in authorization policy.
    const char *policy_path;
    //  Events kept in memory for watch (default 100000).
    size_t window;
    //  Commit on the bus thread, between gathering batches, instead of on
    //  a commit thread of its own (with a second store handle).
    bool single_thread;
    //  BOOKMARK events on every api/<resource> topic and to waiting
    //  watches that allow them, every this many ms; 0: the default
    //  (60000); -1: none.
    int bookmark_interval_ms;
} zube_apiserver_config_t;

//  Opens the store, loads the policy and connects to the bus. NULL with
//  the reason in error when something cannot be opened.
zube_apiserver_t *zube_apiserver_new (const zube_apiserver_config_t *config, char *error,
                                      size_t error_size);
//  Logs the counters and tears down in reverse order; nulls *self_p.
void zube_apiserver_destroy (zube_apiserver_t **self_p);
//  Serves until zsys_interrupted (SIGINT, SIGTERM). Returns 0.
int zube_apiserver_run (zube_apiserver_t *self);

#endif
