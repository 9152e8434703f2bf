/*  server - the node agent's bus service: logs, exec and the image store
    (image.import, image.list).

    One service per process, whatever the number of nodes it hosts:
    node/<name> for one node, node/<prefix>* for hollow nodes. The
    broker keeps a linear list of a peer's registrations (every READY
    scans it): 5000 services per process cost it 90 ms of CPU at each
    (re)registration, 10000 cost 340 ms (docs/node-agent.md); one
    service costs one READY. The
    request names the node, and each Node carries the service name in
    its zube.io/node-agent-service annotation, so a client finds it
    from the pod's spec.nodeName (docs/node-agent.md).

    Only admin identities may call it (--admin-identities, the
    apiserver's default admin bindings by default): logs and exec read
    and run anything in a pod, as pods/log and pods/exec do in
    Kubernetes. The runtime's logs and exec run on the loop's thread;
    sim answers at once. */
#define _GNU_SOURCE
#include "zubelet.h"
#include "zube/log.h"
#include "node.pb-c.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  Replies stay under the bus's 4 MiB message limit
#define ZL_OUTPUT_MAX (3 * 1024 * 1024)
#define ZL_EXEC_TIMEOUT_S 60

const char *
zl_server_name (zubelet_t *self)
{
    if (!self->service[0]) {
        if (self->node_count == 1)
            snprintf (self->service, sizeof self->service, "node/%s", self->nodes[0].name);
        else
            snprintf (self->service, sizeof self->service, "node/%s*", self->config.prefix);
    }
    return self->service;
}

bool
zl_server_is_admin (const char *list, const char *identity)
{
    if (!list || !identity || !*identity)
        return false;
    size_t identity_length = strlen (identity);
    for (const char *item = list; *item;) {
        size_t length = strcspn (item, ",");
        if (length && item[length - 1] == '*') {
            if (identity_length > length - 1 && strncmp (identity, item, length - 1) == 0)
                return true;
        } else if (length == identity_length && strncmp (identity, item, length) == 0)
            return true;
        item += length + (item[length] ? 1 : 0);
    }
    return false;
}

//  Output gathered from the runtime, up to ZL_OUTPUT_MAX per stream
typedef struct {
    char *data[2];
    size_t size[2];
    size_t capacity[2];
    bool truncated;
} s_output_t;

static int
s_collect (void *arg, const char *data, size_t size, bool stderr_stream)
{
    s_output_t *out = (s_output_t *)arg;
    int k = stderr_stream ? 1 : 0;
    if (out->size[k] + size > ZL_OUTPUT_MAX) {
        out->truncated = true;
        size = ZL_OUTPUT_MAX - out->size[k];
    }
    if (out->size[k] + size > out->capacity[k]) {
        size_t capacity = (out->size[k] + size) * 2;
        char *grown = realloc (out->data[k], capacity);
        if (!grown)
            return -1;
        out->data[k] = grown;
        out->capacity[k] = capacity;
    }
    if (size)
        memcpy (out->data[k] + out->size[k], data, size);
    out->size[k] += size;
    return out->truncated ? -1 : 0;
}

static void
s_output_free (s_output_t *out)
{
    free (out->data[0]);
    free (out->data[1]);
}

//  The container a request means: CONTAINER, or the pod's only one.
//  NULL after answering the error.
zl_container_t *
zl_server_container (zube_bus_request_t *request, zl_pod_t *p, const char *name)
{
    const char *pod = p->pod->metadata->name;
    if (!name || !*name) {
        if (p->container_count - p->init_count == 1)
            return &p->containers[p->init_count];
        char names[1000] = "", inits[1000] = "";
        for (size_t i = 0; i < p->container_count; i++) {
            char *list = p->containers[i].init ? inits : names;
            size_t used = strlen (list);
            snprintf (list + used, sizeof names - used, "%s%s", used ? " " : "",
                      p->containers[i].name);
        }
        zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                "a container name must be specified for pod %s, choose one "
                                "of: [%s]%s%s%s",
                                pod, names, inits[0] ? " or one of the init containers: [" : "",
                                inits, inits[0] ? "]" : "");
        return NULL;
    }
    for (size_t i = 0; i < p->container_count; i++)
        if (streq (p->containers[i].name, name))
            return &p->containers[i];
    zube_bus_respond_error (request, ZUBE_BAD_REQUEST, "container %s is not valid for pod %s",
                            name, pod);
    return NULL;
}

//  The authorization and the node of a request; NULL after answering the
//  error. what names the resource in a refusal ("pods/exec ... in the
//  namespace \"x\"", "images").
zl_node_t *
zl_server_request_node (zubelet_t *self, zube_bus_request_t *request, const char *verb,
                const char *what, const char *node_name)
{
    const char *sender = zube_bus_request_sender (request);
    if (!zl_server_is_admin (self->config.admin_identities, sender)) {
        zube_log_warn ("msg=\"forbidden\" identity=\"%s\" verb=%s resource=\"%s\"",
                       sender ? sender : "", verb, what);
        zube_bus_respond_error (request, ZUBE_FORBIDDEN,
                                "User \"%s\" cannot %s resource %s: only admin identities "
                                "may use the node agent of node \"%s\"",
                                sender ? sender : "", verb, what, node_name ? node_name : "");
        return NULL;
    }
    zl_node_t *node =
        node_name ? (zl_node_t *)zhashx_lookup (self->node_by_name, node_name) : NULL;
    if (!node)
        zube_bus_respond_error (request, ZUBE_NOT_FOUND,
                                "node \"%s\" is not hosted by this node agent (%s)",
                                node_name ? node_name : "", zl_server_name (self));
    return node;
}

//  The authorization, the node and the pod of a request; NULL after
//  answering the error.
zl_pod_t *
zl_server_request_pod (zubelet_t *self, zube_bus_request_t *request, const char *verb,
               const char *subresource, const char *node_name, const char *pod_namespace,
               const char *pod_name)
{
    const char *ns = pod_namespace && *pod_namespace ? pod_namespace : "default";
    char what[512];
    snprintf (what, sizeof what, "\"pods/%s\" in API group \"\" in the namespace \"%s\"",
              subresource, ns);
    zl_node_t *node = zl_server_request_node (self, request, verb, what, node_name);
    if (!node)
        return NULL;
    zl_pod_t *p = pod_name ? zl_pod_find (self, ns, pod_name) : NULL;
    if (!p || p->node != node) {
        zube_bus_respond_error (request, ZUBE_NOT_FOUND, "pods \"%s\" not found on node \"%s\"",
                                pod_name ? pod_name : "", node->name);
        return NULL;
    }
    return p;
}

static void
s_logs (zubelet_t *self, zube_bus_request_t *request)
{
    Zube__NodeLogsRequest *req = (Zube__NodeLogsRequest *)zube_bus_request_unpack_or_reject (
        request, &zube__node_logs_request__descriptor);
    if (!req)
        return;
    zl_pod_t *p = zl_server_request_pod (self, request, "get", "log", req->node_name, req->namespace_,
                                 req->pod);
    zl_container_t *c = p ? zl_server_container (request, p, req->container) : NULL;
    if (!c) {
        zube__node_logs_request__free_unpacked (req, NULL);
        return;
    }
    const char *pod = p->pod->metadata->name;
    //  The instance: the current one, or with --previous the one the
    //  status shows as lastState
    const char *id = c->id;
    bool waiting_restart = c->id[0] && c->state == ZUBE_RUNTIME_CONTAINER_EXITED && !c->done
                           && c->waiting_reason[0];
    if (req->previous)
        id = waiting_restart ? c->id : c->last.valid ? c->last.id : "";
    if (!id[0]) {
        if (req->previous)
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                    "previous terminated container \"%s\" in pod \"%s\" not "
                                    "found",
                                    c->name, pod);
        else
            zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                    "container \"%s\" in pod \"%s\" is waiting to start: %s",
                                    c->name, pod,
                                    c->waiting_reason[0] ? c->waiting_reason
                                                         : "ContainerCreating");
        zube__node_logs_request__free_unpacked (req, NULL);
        return;
    }
    bool follow = req->has_offset && req->offset > 0;
    zube_runtime_logs_options_t options = {
        .struct_size = sizeof options,
        .tail_lines = !follow && req->has_tail_lines && req->tail_lines >= 0 ? req->tail_lines
                                                                            : -1,
        .since_ms = !follow && req->has_since_seconds && req->since_seconds > 0
                        ? zl_now_wall_ms () - req->since_seconds * 1000
                        : 0};
    s_output_t out = {0};
    zube_status_t status = zube_runtime_logs (self->runtime, id, &options, s_collect, &out);
    if (status != ZUBE_OK) {
        zube_bus_respond_error (request, status, "%s", zube_runtime_error (self->runtime));
        s_output_free (&out);
        zube__node_logs_request__free_unpacked (req, NULL);
        return;
    }
    size_t from = follow ? (size_t)req->offset : 0;
    if (from > out.size[0])
        from = out.size[0];
    size_t length = out.size[0] - from;
    if (req->has_limit_bytes && req->limit_bytes >= 0 && (size_t)req->limit_bytes < length)
        length = (size_t)req->limit_bytes;
    Zube__NodeLogsReply reply = ZUBE__NODE_LOGS_REPLY__INIT;
    reply.has_data = true;
    reply.data.data = (uint8_t *)(out.data[0] ? out.data[0] + from : "");
    reply.data.len = length;
    reply.has_size = true;
    reply.size = (int64_t)(from + length);
    reply.has_running = true;
    reply.running = !req->previous && c->state == ZUBE_RUNTIME_CONTAINER_RUNNING
                    && streq (id, c->id);
    reply.container = c->name;
    zube_bus_respond_msg (request, &reply.base);
    s_output_free (&out);
    zube__node_logs_request__free_unpacked (req, NULL);
}

static void
s_exec (zubelet_t *self, zube_bus_request_t *request)
{
    Zube__NodeExecRequest *req = (Zube__NodeExecRequest *)zube_bus_request_unpack_or_reject (
        request, &zube__node_exec_request__descriptor);
    if (!req)
        return;
    zl_pod_t *p = zl_server_request_pod (self, request, "create", "exec", req->node_name,
                                 req->namespace_, req->pod);
    zl_container_t *c = p ? zl_server_container (request, p, req->container) : NULL;
    if (!c) {
        zube__node_exec_request__free_unpacked (req, NULL);
        return;
    }
    if (!req->n_command || !req->command[0] || !*req->command[0]) {
        zube_bus_respond_error (request, ZUBE_BAD_REQUEST, "you must specify at least one "
                                                           "command for the container");
        zube__node_exec_request__free_unpacked (req, NULL);
        return;
    }
    if (!c->id[0] || c->state != ZUBE_RUNTIME_CONTAINER_RUNNING) {
        zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                "container %s is not running in pod %s (%s)", c->name,
                                p->pod->metadata->name,
                                c->waiting_reason[0] ? c->waiting_reason
                                : c->id[0]           ? "terminated"
                                                     : "ContainerCreating");
        zube__node_exec_request__free_unpacked (req, NULL);
        return;
    }
    const char **argv = calloc (req->n_command + 1, sizeof *argv);
    if (!argv) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        zube__node_exec_request__free_unpacked (req, NULL);
        return;
    }
    for (size_t i = 0; i < req->n_command; i++)
        argv[i] = req->command[i];
    int64_t timeout_s = req->has_timeout_seconds && req->timeout_seconds > 0
                            ? req->timeout_seconds
                            : ZL_EXEC_TIMEOUT_S;
    s_output_t out = {0};
    int exit_code = -1;
    zube_status_t status = zube_runtime_exec (
        self->runtime, c->id, argv, req->has_stdin ? req->stdin.data : NULL,
        req->has_stdin ? req->stdin.len : 0, timeout_s * 1000, s_collect, &out, &exit_code);
    free (argv);
    if (status != ZUBE_OK)
        zube_bus_respond_error (request, status, "%s", zube_runtime_error (self->runtime));
    else {
        Zube__NodeExecReply reply = ZUBE__NODE_EXEC_REPLY__INIT;
        reply.has_stdout = reply.has_stderr = reply.has_exit_code = true;
        reply.stdout.data = (uint8_t *)out.data[0];
        reply.stdout.len = out.size[0];
        reply.stderr.data = (uint8_t *)out.data[1];
        reply.stderr.len = out.size[1];
        reply.exit_code = exit_code;
        reply.container = c->name;
        zube_bus_respond_msg (request, &reply.base);
        zube_log_info ("msg=\"exec\" pod=%s container=%s identity=\"%s\" command=\"%s\" "
                       "exit_code=%d",
                       p->key, c->name, zube_bus_request_sender (request), req->command[0],
                       exit_code);
    }
    s_output_free (&out);
    zube__node_exec_request__free_unpacked (req, NULL);
}

//  ---------------------------------------------------------------------
//  Images: zubectl image import sends a file in chunks, each appended to
//  STATE_DIR/image-uploads/<upload> at the offset the file has reached
//  (so the upload's state is the file, nothing in memory); the last
//  chunk hands the file to the runtime's image store.

#define ZL_UPLOAD_DIR "image-uploads"
//  An upload nobody added to for this long is removed by the next one.
#define ZL_UPLOAD_STALE_S (60 * 60)

static bool
s_upload_id_valid (const char *id)
{
    size_t length = id ? strlen (id) : 0;
    if (length == 0 || length > 64)
        return false;
    for (const char *c = id; *c; c++)
        if (!isalnum ((unsigned char)*c) && *c != '-')
            return false;
    return true;
}

static void
s_uploads_expire (const char *dir)
{
    DIR *handle = opendir (dir);
    time_t now = time (NULL);
    for (struct dirent *e; handle && (e = readdir (handle)) != NULL;) {
        char path[4400];
        struct stat st;
        if (e->d_name[0] != '.' &&
            snprintf (path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
            stat (path, &st) == 0 && now - st.st_mtime > ZL_UPLOAD_STALE_S)
            unlink (path);
    }
    if (handle)
        closedir (handle);
}

static void
s_image_import (zubelet_t *self, zube_bus_request_t *request)
{
    Zube__NodeImageImportRequest *req =
        (Zube__NodeImageImportRequest *)zube_bus_request_unpack_or_reject (
            request, &zube__node_image_import_request__descriptor);
    if (!req)
        return;
    char dir[4200], path[4400];
    int fd = -1;
    if (!zl_server_request_node (self, request, "create", "\"images\"", req->node_name))
        goto done;
    if (!s_upload_id_valid (req->upload)) {
        zube_bus_respond_error (request, ZUBE_BAD_REQUEST,
                                "image.import: upload id \"%s\" is invalid (1 to 64 of "
                                "A-Z, a-z, 0-9 and -)",
                                req->upload ? req->upload : "");
        goto done;
    }
    snprintf (dir, sizeof dir, "%s/" ZL_UPLOAD_DIR, self->config.state_dir);
    snprintf (path, sizeof path, "%s/%s", dir, req->upload);
    if (req->offset == 0) {
        s_uploads_expire (dir);
        unlink (path);
    }
    if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "image.import: cannot create %s: %s",
                                dir, strerror (errno));
        goto done;
    }
    fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) != 0) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "image.import: cannot write %s: %s",
                                path, strerror (errno));
        goto done;
    }
    if (st.st_size != req->offset) {
        zube_bus_respond_error (request, ZUBE_CONFLICT,
                                "image.import: upload %s has %lld bytes, the chunk starts at "
                                "%lld (start again at offset 0)",
                                req->upload, (long long)st.st_size, (long long)req->offset);
        goto done;
    }
    if (req->data.len && write (fd, req->data.data, req->data.len) != (ssize_t)req->data.len) {
        zube_bus_respond_error (request, ZUBE_INTERNAL, "image.import: cannot write %s: %s",
                                path, strerror (errno));
        unlink (path);
        goto done;
    }
    close (fd);
    fd = -1;
    Zube__NodeImageImportReply reply = ZUBE__NODE_IMAGE_IMPORT_REPLY__INIT;
    reply.has_received = true;
    reply.received = req->offset + (int64_t)req->data.len;
    char ref[512] = "";
    if (req->last) {
        zube_status_t status = zube_runtime_image_import (self->runtime, path, ref, sizeof ref);
        unlink (path);
        if (status != ZUBE_OK) {
            zube_log_warn ("msg=\"image import failed\" file=\"%s\" error=\"%s\"",
                           req->file_name ? req->file_name : "",
                           zube_runtime_error (self->runtime));
            zube_bus_respond_error (request, status, "%s: %s",
                                    req->file_name ? req->file_name : "image",
                                    zube_runtime_error (self->runtime));
            goto done;
        }
        zube_log_info ("msg=\"image imported\" file=\"%s\" image=%s bytes=%lld identity=\"%s\"",
                       req->file_name ? req->file_name : "", ref, (long long)reply.received,
                       zube_bus_request_sender (request));
        reply.ref = ref;
        //  status.images has one more image
        zl_node_status_refresh (self);
    }
    zube_bus_respond_msg (request, &reply.base);
done:
    if (fd >= 0)
        close (fd);
    zube__node_image_import_request__free_unpacked (req, NULL);
}

typedef struct {
    Zube__NodeImageListReply *reply;
    bool failed;
} s_image_list_t;

static int
s_image_listed (void *arg, const zube_runtime_image_t *image)
{
    s_image_list_t *list = (s_image_list_t *)arg;
    Zube__NodeImageListReply *reply = list->reply;
    Zube__NodeImage *one = calloc (1, sizeof *one);
    Zube__NodeImage **grown =
        realloc (reply->images, (reply->n_images + 1) * sizeof *reply->images);
    char **names = calloc (image->names_count + 1, sizeof *names);
    if (!one || !grown || !names) {
        free (one);
        free (names);
        if (grown)
            reply->images = grown;
        list->failed = true;
        return -1;
    }
    zube__node_image__init (one);
    reply->images = grown;
    reply->images[reply->n_images++] = one;
    //  the runtime's strings last until fn returns: copies
    for (size_t i = 0; i < image->names_count; i++)
        names[i] = strdup (image->names[i]);
    one->names = names;
    one->n_names = image->names_count;
    one->id = strdup (image->id ? image->id : "");
    one->has_size_bytes = true;
    one->size_bytes = (int64_t)image->size_bytes;
    return 0;
}

static void
s_image_list (zubelet_t *self, zube_bus_request_t *request)
{
    Zube__NodeImageListRequest *req =
        (Zube__NodeImageListRequest *)zube_bus_request_unpack_or_reject (
            request, &zube__node_image_list_request__descriptor);
    if (!req)
        return;
    if (zl_server_request_node (self, request, "list", "\"images\"", req->node_name)) {
        Zube__NodeImageListReply reply = ZUBE__NODE_IMAGE_LIST_REPLY__INIT;
        s_image_list_t list = {.reply = &reply};
        zube_status_t status = zube_runtime_image_list (self->runtime, s_image_listed, &list);
        if (status != ZUBE_OK)
            zube_bus_respond_error (request, status, "%s", zube_runtime_error (self->runtime));
        else if (list.failed)
            zube_bus_respond_error (request, ZUBE_INTERNAL, "out of memory");
        else
            zube_bus_respond_msg (request, &reply.base);
        for (size_t i = 0; i < reply.n_images; i++) {
            for (size_t n = 0; n < reply.images[i]->n_names; n++)
                free (reply.images[i]->names[n]);
            free (reply.images[i]->names);
            free (reply.images[i]->id);
            free (reply.images[i]);
        }
        free (reply.images);
    }
    zube__node_image_list_request__free_unpacked (req, NULL);
}

static void
s_handle (zube_bus_t *bus, zube_bus_request_t *request, void *arg)
{
    (void)bus;
    zubelet_t *self = (zubelet_t *)arg;
    const char *method = zube_bus_request_method (request);
    if (streq (method, "logs"))
        s_logs (self, request);
    else if (streq (method, "exec"))
        s_exec (self, request);
    else if (streq (method, "exec.start"))
        zl_exec_start (self, request);
    else if (streq (method, "exec.io"))
        zl_exec_io (self, request);
    else if (streq (method, "image.import"))
        s_image_import (self, request);
    else if (streq (method, "image.list"))
        s_image_list (self, request);
    else
        zube_bus_respond_error (request, ZUBE_NOT_FOUND,
                                "%s: unknown method \"%s\" (expected logs, exec, "
                                "exec.start, exec.io, image.import or image.list)",
                                zl_server_name (self), method);
}

int
zl_server_start (zubelet_t *self, char *error, size_t error_size)
{
    if (zube_bus_serve (self->bus, zl_server_name (self), s_handle, self) != 0) {
        snprintf (error, error_size, "cannot serve %s on the bus", zl_server_name (self));
        return -1;
    }
    return 0;
}
