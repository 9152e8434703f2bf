/*  zube_informer - a local, indexed cache of one resource, kept current.

    An informer subscribes to the apiserver's events for one resource
    (topic `api/<resource>`, or `node/<name>/pods` for one node's pods),
    lists the resource (in pages), then applies every event newer than the
    list. Each event names the previous resourceVersion of its topic, so a
    missed event shows as a gap: the informer asks `watch` since the last
    revision it applied, applies the answer, and goes on. A stream that has
    been quiet for resync_ms is asked the same way (a lost last event has no
    successor to reveal it). When the apiserver answers GONE (the gap is
    older than its window) the informer lists again and reports the
    difference as add, update and delete callbacks. docs/informer.md says
    why and how.

        zube_informer_t *pods = zube_informer_new (bus, &(zube_informer_config_t) {
            .resource = "pods", .node_name = "node-1",
            .on_add = s_pod_added, .on_delete = s_pod_deleted, .arg = self});
        zube_informer_start (pods);
        while (!zsys_interrupted)
            zube_bus_poll (bus, 100);       //  drives the informer
        zube_informer_destroy (&pods);

    The informer runs on the thread of its zube_bus_t, inside zube_bus_poll
    (or a waiting zube_bus_call): it has no thread of its own, and every
    function here must be called on that thread. Several informers may share
    one bus connection, on the same or overlapping topics.

    Lifetimes. Objects in the cache belong to the informer: never modify or
    free them. A pointer from a lookup stays valid until the bus loop runs
    again (the next zube_bus_poll or zube_bus_call on that connection), or
    the informer is destroyed; copy what you keep longer. Objects handed to
    callbacks are valid for the duration of the callback only: on_update's
    old object and on_delete's object are freed when it returns. Callbacks
    may call the bus (also synchronously) and any lookup here; they must not
    destroy their own informer. Destroy every informer before its bus. */
#ifndef ZUBE_INFORMER_H_INCLUDED
#define ZUBE_INFORMER_H_INCLUDED

#include "zube/bus.h"
#include "zube/kinds.h"
#include "zube/selector.h"
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zube_informer_t zube_informer_t;

//  Defaults
#define ZUBE_INFORMER_DEFAULT_RESYNC_MS 1000
#define ZUBE_INFORMER_DEFAULT_PAGE_SIZE 500
#define ZUBE_INFORMER_DEFAULT_RETRY_MS 200
#define ZUBE_INFORMER_MAX_RETRY_MS 5000
//  Events held while a list or watch is in flight, at most.
#define ZUBE_INFORMER_MAX_HELD 200000

typedef void (zube_informer_add_fn) (zube_informer_t *informer,
                                     const ProtobufCMessage *object, void *arg);
typedef void (zube_informer_update_fn) (zube_informer_t *informer,
                                        const ProtobufCMessage *old_object,
                                        const ProtobufCMessage *new_object, void *arg);
//  object: the last state the informer knows (the DELETED event's, or
//  the cached one when the deletion was found by a relist).
typedef void (zube_informer_delete_fn) (zube_informer_t *informer,
                                        const ProtobufCMessage *object, void *arg);
typedef void (zube_informer_synced_fn) (zube_informer_t *informer, void *arg);

typedef struct {
    //  Any name zube_kind_by_resource knows: "pods", "deployments.apps".
    const char *resource;
    //  NULL or "": every namespace.
    const char *namespace;
    //  Kubernetes selector strings, NULL for none. Objects that stop
    //  matching are deleted from the cache (on_delete).
    const char *label_selector;
    const char *field_selector;
    //  Pods only: the pods bound to this node, through `node/<name>/pods`.
    const char *node_name;
    //  List page size (0: ZUBE_INFORMER_DEFAULT_PAGE_SIZE).
    int64_t page_size;
    //  A stream quiet for this long is asked `watch` since its last
    //  revision. 0: ZUBE_INFORMER_DEFAULT_RESYNC_MS; < 0: never.
    int resync_ms;
    //  Deadline of each list and watch call (0: ZUBE_BUS_DEFAULT_TIMEOUT_MS).
    int timeout_ms;
    //  Handlers, each may be NULL; arg is passed to every one.
    zube_informer_add_fn *on_add;
    zube_informer_update_fn *on_update;
    zube_informer_delete_fn *on_delete;
    //  Called once, when the first list has been applied.
    zube_informer_synced_fn *on_synced;
    void *arg;
} zube_informer_config_t;

//  What the informer did so far; for metrics and tests.
typedef struct {
    uint64_t events;        //  events received on the topic
    uint64_t applied;       //  events that changed the cache or moved it on
    uint64_t ignored;       //  events at or below the last applied revision
    uint64_t held;          //  events held while a list or watch ran
    uint64_t dropped;       //  held events dropped (over ZUBE_INFORMER_MAX_HELD)
    uint64_t gaps;          //  gaps found through prev_resource_version
    uint64_t watches;       //  watch-since calls (gap repairs and resyncs)
    uint64_t resyncs;       //  of which on a quiet stream
    uint64_t resync_hits;   //  resyncs that found missed events
    uint64_t repaired;      //  events applied from watch-since replies
    uint64_t lists;         //  complete lists (the first one included)
    uint64_t relists;       //  of which after GONE
    uint64_t pages;         //  list pages received
    uint64_t errors;        //  failed list or watch calls (retried)
    uint64_t adds, updates, deletes; //  callbacks delivered
} zube_informer_stats_t;

//  Checks the config (unknown resource, node_name on another resource, bad
//  selector: NULL, logged). Copies what it needs; borrows bus, which must
//  outlive the informer. Nothing happens until zube_informer_start.
zube_informer_t *zube_informer_new (zube_bus_t *bus, const zube_informer_config_t *config);
//  Unsubscribes and frees the cache. Not from the informer's own callbacks.
void zube_informer_destroy (zube_informer_t **self_p);
//  Subscribes, then lists. Returns 0, or -1 if the subscription failed.
int zube_informer_start (zube_informer_t *self);

//  For a host whose cache readers run on other threads (under a lock of
//  its own) and may hold cached objects longer than this API allows
//  (zube-controller-manager, docs/controllers.md, Threads). guard (may be
//  NULL) is called with enter true before the informer changes its cache
//  or calls a handler, and with enter false after: every change and every
//  callback happens between the two, on the bus's thread. retire (may be
//  NULL) takes each object the cache lets go of (replaced, deleted, left
//  the selection), after the callback that saw it returned, instead of
//  freeing it; the host frees it (protobuf_c_message_free_unpacked) once
//  no reader can hold it. Objects freed by zube_informer_destroy are not
//  retired. Set both before zube_informer_start; arg goes to both.
typedef void (zube_informer_guard_fn) (zube_informer_t *informer, bool enter, void *arg);
typedef void (zube_informer_retire_fn) (zube_informer_t *informer,
                                        ProtobufCMessage *object, void *arg);
void zube_informer_set_guard (zube_informer_t *self, zube_informer_guard_fn *guard,
                              zube_informer_retire_fn *retire, void *arg);

//  True once the first list has been applied (the cache may lag the
//  apiserver afterwards, but never goes back in time).
bool zube_informer_has_synced (zube_informer_t *self);
//  Polls the bus until synced or timeout_ms passed; returns has_synced.
bool zube_informer_wait_synced (zube_informer_t *self, int timeout_ms);

const zube_kind_t *zube_informer_kind (zube_informer_t *self);
//  The topic the informer follows ("api/pods", "node/node-1/pods").
const char *zube_informer_topic (zube_informer_t *self);
//  The revision of the stream the cache reflects ("" before sync).
const char *zube_informer_resource_version (zube_informer_t *self);
void zube_informer_stats (zube_informer_t *self, zube_informer_stats_t *stats);
//  Number of objects in the cache.
size_t zube_informer_count (zube_informer_t *self);

//  Lookups. Cache keys are "<namespace>/<name>" (namespaced kinds) or
//  "<name>". Single objects: NULL when absent.
const ProtobufCMessage *zube_informer_get (zube_informer_t *self, const char *namespace,
                                           const char *name);
const ProtobufCMessage *zube_informer_get_by_key (zube_informer_t *self, const char *key);
//  The object's resourceVersion as a number (0 when absent).
uint64_t zube_informer_object_rv (zube_informer_t *self, const char *key);

//  Lists answer a malloc'd array of count pointers into the cache (free
//  the array with free (), not the objects), sorted by key; NULL with
//  *count_p 0 when nothing matches.
const ProtobufCMessage **zube_informer_list (zube_informer_t *self, size_t *count_p);
const ProtobufCMessage **zube_informer_list_namespace (zube_informer_t *self,
                                                       const char *namespace,
                                                       size_t *count_p);
//  Through the label index: objects labelled key=value.
const ProtobufCMessage **zube_informer_list_label (zube_informer_t *self,
                                                   const char *key, const char *value,
                                                   size_t *count_p);
//  Objects (in namespace, NULL: all) whose labels the selector matches.
const ProtobufCMessage **zube_informer_list_selector (zube_informer_t *self,
                                                      const char *namespace,
                                                      const zube_selector_t *selector,
                                                      size_t *count_p);
//  Pods whose spec.nodeName is node ("" : pods bound to no node).
const ProtobufCMessage **zube_informer_list_node (zube_informer_t *self,
                                                  const char *node, size_t *count_p);

//  Calls fn for every object in the cache in no particular order; stops
//  when fn returns false. fn must not change the bus or this informer.
typedef bool (zube_informer_each_fn) (const char *key, const ProtobufCMessage *object,
                                      void *arg);
void zube_informer_each (zube_informer_t *self, zube_informer_each_fn *fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
