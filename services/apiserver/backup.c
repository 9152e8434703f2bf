/*  backup - the `backup` and `restore` methods: the store's snapshot
    moved over the bus in chunks of at most 1 MiB.

    backup at offset 0 takes a snapshot into an unlinked temporary file
    and answers its first chunk with a snapshot id; later chunks are read
    from that file until the last one is read or 60 s pass. restore
    gathers chunks in another temporary file and, on the last, restores
    the store from it (the store checks the snapshot first: a bad one
    leaves it unchanged), then starts the event window over. One backup
    and one restore at a time. */
#include "apiserver_private.h"
#include "zube/log.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_CHUNK (1024 * 1024)
#define S_KEEP_MS 60000

typedef struct {
    int fd;
    char id[40];
    int64_t size;
    int64_t received;
    int64_t expires_ms;
    int64_t revision;
} s_file_t;

struct _api_backup_t {
    s_file_t snapshot;
    s_file_t restore;
};

static void
s_file_close (s_file_t *file)
{
    if (file->fd >= 0)
        close (file->fd);
    memset (file, 0, sizeof *file);
    file->fd = -1;
}

static int
s_file_open (s_file_t *file)
{
    s_file_close (file);
    const char *dir = getenv ("TMPDIR");
    char path[512];
    snprintf (path, sizeof path, "%s/zube-apiserver-XXXXXX", dir && *dir ? dir : "/tmp");
    file->fd = mkstemp (path);
    if (file->fd < 0)
        return -1;
    unlink (path);
    api_uuid (file->id);
    file->expires_ms = zclock_mono () + S_KEEP_MS;
    return 0;
}

api_backup_t *
api_backup_new (void)
{
    api_backup_t *backup = calloc (1, sizeof *backup);
    if (backup) {
        backup->snapshot.fd = -1;
        backup->restore.fd = -1;
    }
    return backup;
}

void
api_backup_destroy (api_backup_t **backup_p)
{
    api_backup_t *backup = *backup_p;
    if (!backup)
        return;
    s_file_close (&backup->snapshot);
    s_file_close (&backup->restore);
    free (backup);
    *backup_p = NULL;
}

static bool
s_allowed (zube_apiserver_t *self, zube_bus_request_t *request, const char *verb)
{
    const char *identity = zube_bus_request_sender (request);
    zube_authz_request_t question = {
        .identity = identity && *identity ? identity : "anonymous",
        .verb = verb,
        .resource = "backups",
    };
    char reason[1024] = "";
    if (zube_authz_allowed (self->authz, &question, reason, sizeof reason))
        return true;
    api_reply_error (self, request, ZUBE_FORBIDDEN, NULL, NULL, NULL,
                     "backups is forbidden: %s", reason);
    return false;
}

void
api_backup_handle (zube_apiserver_t *self, zube_bus_request_t *request)
{
    Zube__BackupRequest *req = (Zube__BackupRequest *)zube_bus_request_unpack_or_reject (
        request, &zube__backup_request__descriptor);
    if (!req) {
        self->errors++;
        return;
    }
    s_file_t *file = &self->backup->snapshot;
    uint8_t *chunk = NULL;
    if (!s_allowed (self, request, "get"))
        goto done;
    if (file->fd >= 0 && zclock_mono () > file->expires_ms)
        s_file_close (file);
    int64_t offset = req->has_offset ? req->offset : 0;
    if (offset == 0) {
        int64_t revision = 0;
        api_watch_follow (self);
        revision = api_watch_revision (self);
        if (s_file_open (file) != 0) {
            api_reply_error (self, request, ZUBE_INTERNAL, NULL, NULL, NULL,
                             "cannot make a temporary file: %s", strerror (errno));
            goto done;
        }
        zube_status_t status = zube_store_snapshot (self->store, file->fd);
        if (status != ZUBE_OK) {
            api_reply_error (self, request, status, NULL, NULL, NULL,
                             "snapshot failed: %s", zube_store_error (self->store));
            s_file_close (file);
            goto done;
        }
        file->size = lseek (file->fd, 0, SEEK_END);
        file->revision = revision;
        zube_log_info ("msg=\"snapshot taken\" bytes=%" PRId64 " revision=%" PRId64,
                       file->size, revision);
    } else if (file->fd < 0 || !req->snapshot_id || !streq (req->snapshot_id, file->id) ||
               offset < 0 || offset > file->size) {
        api_reply_error (
            self, request, ZUBE_GONE, NULL, NULL, NULL,
            "snapshot \"%s\" is gone (finished, replaced or older than 60 s): "
            "start again at offset 0",
            req->snapshot_id ? req->snapshot_id : "");
        goto done;
    }
    int64_t left = file->size - offset;
    size_t size = left > S_CHUNK ? S_CHUNK : (size_t)left;
    chunk = malloc (size ? size : 1);
    ssize_t got = chunk ? pread (file->fd, chunk, size, offset) : -1;
    if (got != (ssize_t)size) {
        api_reply_error (self, request, ZUBE_INTERNAL, NULL, NULL, NULL,
                         "cannot read the snapshot: %s", strerror (errno));
        s_file_close (file);
        goto done;
    }
    char rv[24];
    snprintf (rv, sizeof rv, "%" PRId64, file->revision);
    Zube__BackupChunk reply = ZUBE__BACKUP_CHUNK__INIT;
    reply.snapshot_id = file->id;
    reply.has_offset = true;
    reply.offset = offset;
    reply.has_data = true;
    reply.data.data = chunk;
    reply.data.len = size;
    reply.has_total_size = true;
    reply.total_size = file->size;
    reply.has_last = true;
    reply.last = offset + (int64_t)size >= file->size;
    reply.store = self->store_scheme;
    reply.resource_version = rv;
    zube_bus_respond_msg (request, &reply.base);
    if (reply.last)
        s_file_close (file);
done:
    free (chunk);
    zube__backup_request__free_unpacked (req, NULL);
}

void
api_restore_handle (zube_apiserver_t *self, zube_bus_request_t *request)
{
    Zube__RestoreChunk *req = (Zube__RestoreChunk *)zube_bus_request_unpack_or_reject (
        request, &zube__restore_chunk__descriptor);
    if (!req) {
        self->errors++;
        return;
    }
    s_file_t *file = &self->backup->restore;
    if (!s_allowed (self, request, "create"))
        goto done;
    if (file->fd >= 0 && zclock_mono () > file->expires_ms)
        s_file_close (file);
    if (!req->restore_id || !*req->restore_id) {
        if (s_file_open (file) != 0) {
            api_reply_error (self, request, ZUBE_INTERNAL, NULL, NULL, NULL,
                             "cannot make a temporary file: %s", strerror (errno));
            goto done;
        }
    } else if (file->fd < 0 || !streq (req->restore_id, file->id)) {
        api_reply_error (
            self, request, ZUBE_GONE, NULL, NULL, NULL,
            "restore \"%s\" is gone (finished, replaced or older than 60 s): "
            "start again",
            req->restore_id);
        goto done;
    }
    int64_t offset = req->has_offset ? req->offset : 0;
    if (offset != file->received) {
        api_reply_error (self, request, ZUBE_BAD_REQUEST, NULL, NULL, NULL,
                         "chunk at offset %" PRId64 ", expected %" PRId64, offset,
                         file->received);
        goto done;
    }
    if (req->data.len && pwrite (file->fd, req->data.data, req->data.len, offset) !=
                             (ssize_t)req->data.len) {
        api_reply_error (self, request, ZUBE_INTERNAL, NULL, NULL, NULL,
                         "cannot write the snapshot: %s", strerror (errno));
        s_file_close (file);
        goto done;
    }
    file->received += (int64_t)req->data.len;
    file->expires_ms = zclock_mono () + S_KEEP_MS;
    Zube__RestoreReply reply = ZUBE__RESTORE_REPLY__INIT;
    reply.restore_id = file->id;
    reply.has_received = true;
    reply.received = file->received;
    char rv[24] = "";
    if (req->last) {
        //  Writes queued or in flight commit first; the commit thread
        //  stops meanwhile and closes its store handle (a store is
        //  restored by its only user)
        api_writer_busy (self, -1);
        api_writer_flush (self);
        api_writer_stop (self);
        lseek (file->fd, 0, SEEK_SET);
        zube_status_t status = zube_store_restore (self->store, file->fd);
        if (!self->single_thread)
            api_writer_start (self, zube_store_url (self->store));
        if (status != ZUBE_OK) {
            api_reply_error (self, request, status, NULL, NULL, NULL,
                             "restore failed (the store is unchanged): %s",
                             zube_store_error (self->store));
            s_file_close (file);
            goto done;
        }
        zhashx_purge (self->namespaces);
        api_registry_bootstrap (self);
        api_watch_reset (self);
        snprintf (rv, sizeof rv, "%" PRId64, api_watch_revision (self));
        reply.resource_version = rv;
        zube_log_info ("msg=\"store restored\" bytes=%" PRId64 " revision=%s",
                       file->received, rv);
    }
    zube_bus_respond_msg (request, &reply.base);
    if (req->last)
        s_file_close (file);
done:
    zube__restore_chunk__free_unpacked (req, NULL);
}
