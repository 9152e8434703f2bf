/*  zube_api - calls to the apiserver (bus service "api") from any client.

    A thin typed layer over zube_bus: packs the requests of schemas/api.proto,
    unpacks the objects of the replies into their kinds' messages, and turns
    an error reply into a zube_api_error_t that holds Kubernetes' reason,
    message and field causes, so every client reports errors as kubectl
    does. docs/api-protocol.md describes the methods.

        zube_api_t *api = zube_api_new (bus);
        zube_api_error_t error;
        ProtobufCMessage *pod = NULL;
        if (zube_api_get (api, "pods", "default", "web", &pod, &error) != ZUBE_OK)
            fprintf (stderr, "Error from server (%s): %s\n", error.reason,
                     error.message);
        protobuf_c_message_free_unpacked (pod, NULL);
        zube_api_destroy (&api);

    The zube_api_t borrows the bus connection (it does not own it) and,
    like it, is used from one thread. Objects passed in are not modified;
    objects handed out belong to the caller (free them with
    protobuf_c_message_free_unpacked). */
#ifndef ZUBE_API_H_INCLUDED
#define ZUBE_API_H_INCLUDED

#include "zube/bus.h"
#include "zube/kinds.h"
#include "zube/status.h"
#include "api.pb-c.h"
#include "meta.pb-c.h"
#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zube_api_t zube_api_t;

#define ZUBE_API_SERVICE "api"
#define ZUBE_API_MAX_CAUSES 16

//  An error as the apiserver (or the bus, when nothing answered) gave it.
typedef struct {
    zube_status_t status;
    //  Kubernetes' reason ("NotFound") and HTTP code (404).
    char reason[64];
    int code;
    //  The whole message, as kubectl prints it after "Error from server
    //  (<reason>): ".
    char message[2048];
    //  Invalid: one cause per field in error.
    size_t cause_count;
    struct {
        char reason[64];
        char field[256];
        char message[512];
    } causes[ZUBE_API_MAX_CAUSES];
} zube_api_error_t;

//  A list reply, items unpacked as their kind's messages.
typedef struct {
    const zube_kind_t *kind;
    ProtobufCMessage **items;
    size_t count;
    //  The revision the list is consistent at (watch from here).
    char *resource_version;
    //  Non-NULL when more pages follow.
    char *continue_token;
    int64_t remaining_item_count;
} zube_api_list_t;

void zube_api_list_destroy (zube_api_list_t **self_p);

typedef struct {
    //  NULL or "": every namespace (namespaced kinds).
    const char *namespace;
    const char *label_selector;
    const char *field_selector;
    //  Page size (0: all) and the token of the previous page.
    int64_t limit;
    const char *continue_token;
} zube_api_list_options_t;

typedef struct {
    //  -1: the object's own grace period; 0: immediately.
    int64_t grace_period_seconds;
    //  NULL, "Orphan", "Background" or "Foreground".
    const char *propagation_policy;
    //  Preconditions, NULL when none.
    const char *uid;
    const char *resource_version;
    bool dry_run;
} zube_api_delete_options_t;

//  Borrows bus, which must outlive the zube_api_t. NULL on no memory.
zube_api_t *zube_api_new (zube_bus_t *bus);
void zube_api_destroy (zube_api_t **self_p);
zube_bus_t *zube_api_bus (zube_api_t *self);
//  Deadline of each call (default ZUBE_BUS_DEFAULT_TIMEOUT_MS).
void zube_api_set_timeout (zube_api_t *self, int timeout_ms);

//  Every call answers a status (ZUBE_OK or why not) and, when error is
//  not NULL, fills it (status ZUBE_OK and empty texts on success). On
//  success *object_p (when object_p is not NULL) gets the object as the
//  server stored it, resourceVersion included. resource is any name
//  zube_kind_by_resource knows; namespace is NULL for cluster-scoped kinds.
zube_status_t zube_api_create (zube_api_t *self, const char *resource,
                               const char *namespace, const ProtobufCMessage *object,
                               bool dry_run, ProtobufCMessage **object_p,
                               zube_api_error_t *error);
zube_status_t zube_api_get (zube_api_t *self, const char *resource, const char *namespace,
                            const char *name, ProtobufCMessage **object_p,
                            zube_api_error_t *error);
zube_status_t zube_api_list (zube_api_t *self, const char *resource,
                             const zube_api_list_options_t *options,
                             zube_api_list_t **list_p, zube_api_error_t *error);
//  The scale subresource of a deployment or replicaset: its
//  autoscaling/v1 Scale (spec.replicas, status.replicas, status.selector).
zube_status_t zube_api_get_scale (zube_api_t *self, const char *resource,
                                  const char *namespace, const char *name,
                                  Zube__Scale **scale_p, zube_api_error_t *error);
//  subresource: NULL (the object; status changes ignored), "status", or
//  "scale" (object is a Scale; *object_p a Scale too).
//  The object's metadata.resourceVersion, if set, must be current.
zube_status_t zube_api_update (zube_api_t *self, const char *resource,
                               const char *namespace, const ProtobufCMessage *object,
                               const char *subresource, bool dry_run,
                               ProtobufCMessage **object_p, zube_api_error_t *error);
//  patch_type: NULL for "application/merge-patch+json",
//  "application/json-patch+json" or "application/strategic-merge-patch+json";
//  patch: JSON text. subresource "scale" patches the Scale (and answers it).
zube_status_t zube_api_patch (zube_api_t *self, const char *resource,
                              const char *namespace, const char *name,
                              const char *patch_type, const char *patch,
                              const char *subresource, bool dry_run,
                              ProtobufCMessage **object_p, zube_api_error_t *error);
//  options may be NULL (the defaults). *object_p: the object as it was,
//  or as it now is with deletionTimestamp set when finalizers remain.
zube_status_t zube_api_delete (zube_api_t *self, const char *resource,
                               const char *namespace, const char *name,
                               const zube_api_delete_options_t *options,
                               ProtobufCMessage **object_p, zube_api_error_t *error);
//  Binds pod namespace/name to node (the pods/binding subresource).
zube_status_t zube_api_bind (zube_api_t *self, const char *namespace, const char *pod,
                             const char *node, zube_api_error_t *error);
//  The events of resource (in namespace, NULL: all) after since, in order,
//  as one reply holds them (ask again from (*batch_p)->resource_version
//  while it is short of where you want to be). GONE when since is older
//  than the server's window and its store's event log.
zube_status_t zube_api_watch_since (zube_api_t *self, const char *resource,
                                    const char *namespace, const char *since,
                                    Zube__WatchEventBatch **batch_p,
                                    zube_api_error_t *error);

typedef struct {
    //  NULL or "": every namespace.
    const char *namespace;
    const char *label_selector;
    const char *field_selector;
    //  Events after this revision; NULL or "": from now.
    const char *resource_version;
    //  The reply may end with a BOOKMARK event carrying only the
    //  revision the reply got to (always when it holds no event).
    bool allow_bookmarks;
    //  > 0: when nothing matches yet, the server waits up to this long
    //  for an event (or, with bookmarks, the bookmark interval) before
    //  answering; an empty batch is the watch's clean end. The call's
    //  deadline is stretched by as much. 0: answer at once.
    int64_t timeout_seconds;
} zube_api_watch_options_t;

//  A watch request with every option (options may be NULL: from now, at
//  once). The answer is the events after resource_version in order, as
//  zube_api_watch_since, or GONE.
zube_status_t zube_api_watch (zube_api_t *self, const char *resource,
                              const zube_api_watch_options_t *options,
                              Zube__WatchEventBatch **batch_p, zube_api_error_t *error);

//  Any method: packs request, unpacks an OK reply with reply_desc into
//  *reply_p (when both are not NULL).
zube_status_t zube_api_call (zube_api_t *self, const char *method,
                             const ProtobufCMessage *request,
                             const ProtobufCMessageDescriptor *reply_desc,
                             ProtobufCMessage **reply_p, zube_api_error_t *error);

//  The same without waiting: fn is called exactly once from the bus loop
//  (zube_bus_poll) with the outcome; it owns reply (NULL unless OK).
//  Returns 0, or -1 when the request could not be sent (fn not called).
typedef void (zube_api_done_fn) (zube_api_t *api, zube_status_t status,
                                 ProtobufCMessage *reply, const zube_api_error_t *error,
                                 void *arg);
int zube_api_call_async (zube_api_t *self, const char *method,
                         const ProtobufCMessage *request,
                         const ProtobufCMessageDescriptor *reply_desc,
                         zube_api_done_fn *fn, void *arg);

//  Decodes an error reply (payload of an ErrorReply, or NULL with the
//  bus's own error text) into error.
void zube_api_error_from_reply (zube_api_error_t *error, zube_status_t status,
                                const char *bus_error, const uint8_t *payload,
                                size_t payload_size);

//  ---------------------------------------------------------------------
//  Helpers on objects of any kind, through their descriptors.

//  The object's metadata (field "metadata"), or NULL if it has none.
Zube__ObjectMeta *zube_object_meta (const ProtobufCMessage *object);
//  The kind of an object message (by its descriptor), NULL if none.
const zube_kind_t *zube_object_kind (const ProtobufCMessage *object);
//  The store key of an object: "/registry/<resource>/<ns>/<name>" or
//  "/registry/<resource>/<name>"; returns the length written, or -1 if
//  it does not fit or a part is missing.
int zube_object_key (const zube_kind_t *kind, const char *namespace, const char *name,
                     char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
