/*  zubectl backup, restore - the store's snapshot to a file and back,
    through the apiserver's `backup` and `restore` methods, in chunks so
    no message passes the bus limit (docs/api-protocol.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "zubectl.h"

#define S_CHUNK_SIZE (1024 * 1024)

static int
s_one_file_argument (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv,
                     const char **file_p)
{
    char *args[argc + 1];
    int count = zubectl_parse (self, command, NULL, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 1 : -1;
    if (count != 1) {
        zube_cli_error ("\"%s\" takes exactly one argument, the snapshot FILE", self->command_path);
        return -1;
    }
    *file_p = args[0];
    return 0;
}

int
zubectl_backup (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *path = NULL;
    int parsed = s_one_file_argument (self, command, argc, argv, &path);
    if (parsed != 0)
        return parsed > 0 ? 0 : 1;
    zube_api_t *api = zubectl_api (self);
    if (!api)
        return 1;
    char temp[4096];
    snprintf (temp, sizeof temp, "%s.tmp.%d", path, (int) getpid ());
    FILE *file = fopen (temp, "wb");
    if (!file) {
        zube_cli_error ("cannot write %s: %s", temp, strerror (errno));
        return 1;
    }
    int64_t offset = 0;
    char *snapshot_id = NULL, *store = NULL, *revision = NULL;
    int rc = 1;
    while (true) {
        Zube__BackupRequest request = ZUBE__BACKUP_REQUEST__INIT;
        request.has_offset = true;
        request.offset = offset;
        request.snapshot_id = snapshot_id;
        Zube__BackupChunk *chunk = NULL;
        zube_api_error_t error;
        if (zube_api_call (api, "backup", &request.base, &zube__backup_chunk__descriptor,
                           (ProtobufCMessage **) &chunk, &error)
            != ZUBE_OK) {
            zubectl_print_api_error (self, &error, NULL);
            break;
        }
        if (!snapshot_id && chunk->snapshot_id)
            snapshot_id = strdup (chunk->snapshot_id);
        if (!store && chunk->store)
            store = strdup (chunk->store);
        if (!revision && chunk->resource_version)
            revision = strdup (chunk->resource_version);
        bool wrote = chunk->data.len == 0
                     || fwrite (chunk->data.data, 1, chunk->data.len, file) == chunk->data.len;
        offset += (int64_t) chunk->data.len;
        bool last = chunk->last;
        bool stuck = chunk->data.len == 0 && !last;
        zube__backup_chunk__free_unpacked (chunk, NULL);
        if (!wrote) {
            zube_cli_error ("cannot write %s: %s", temp, strerror (errno));
            break;
        }
        if (stuck) {
            zube_cli_error ("the apiserver sent an empty chunk at offset %" PRId64
                            " before the end of the snapshot", offset);
            break;
        }
        if (last) {
            rc = 0;
            break;
        }
    }
    if (fclose (file) != 0 && rc == 0) {
        zube_cli_error ("cannot write %s: %s", temp, strerror (errno));
        rc = 1;
    }
    if (rc == 0 && rename (temp, path) != 0) {
        zube_cli_error ("cannot rename %s to %s: %s", temp, path, strerror (errno));
        rc = 1;
    }
    if (rc != 0)
        unlink (temp);
    else
        printf ("backup written to %s (%" PRId64 " bytes, %s store, resourceVersion %s)\n", path,
                offset, store ? store : "unknown", revision ? revision : "unknown");
    free (snapshot_id);
    free (store);
    free (revision);
    return rc;
}

int
zubectl_restore (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *path = NULL;
    int parsed = s_one_file_argument (self, command, argc, argv, &path);
    if (parsed != 0)
        return parsed > 0 ? 0 : 1;
    FILE *file = fopen (path, "rb");
    if (!file) {
        zube_cli_error ("cannot read %s: %s", path, strerror (errno));
        return 1;
    }
    zube_api_t *api = zubectl_api (self);
    if (!api) {
        fclose (file);
        return 1;
    }
    uint8_t *buffer = malloc (S_CHUNK_SIZE);
    if (!buffer) {
        fclose (file);
        zube_cli_error ("out of memory");
        return 1;
    }
    int64_t offset = 0;
    char *restore_id = NULL;
    int rc = 1;
    size_t n = fread (buffer, 1, S_CHUNK_SIZE, file);
    while (true) {
        if (ferror (file)) {
            zube_cli_error ("cannot read %s: %s", path, strerror (errno));
            break;
        }
        //  Read ahead one chunk to know whether this one is the last.
        uint8_t *next = malloc (S_CHUNK_SIZE);
        size_t next_n = next && n == S_CHUNK_SIZE ? fread (next, 1, S_CHUNK_SIZE, file) : 0;
        bool last = next_n == 0;
        Zube__RestoreChunk chunk = ZUBE__RESTORE_CHUNK__INIT;
        chunk.restore_id = restore_id;
        chunk.has_offset = true;
        chunk.offset = offset;
        chunk.has_data = true;
        chunk.data.data = buffer;
        chunk.data.len = n;
        chunk.has_last = true;
        chunk.last = last;
        Zube__RestoreReply *reply = NULL;
        zube_api_error_t error;
        if (zube_api_call (api, "restore", &chunk.base, &zube__restore_reply__descriptor,
                           (ProtobufCMessage **) &reply, &error)
            != ZUBE_OK) {
            zubectl_print_api_error (self, &error, NULL);
            free (next);
            break;
        }
        if (!restore_id && reply->restore_id)
            restore_id = strdup (reply->restore_id);
        offset += (int64_t) n;
        if (last) {
            printf ("restored %s (%" PRId64 " bytes, resourceVersion %s)\n", path, offset,
                    reply->resource_version ? reply->resource_version : "unknown");
            zube__restore_reply__free_unpacked (reply, NULL);
            free (next);
            rc = 0;
            break;
        }
        zube__restore_reply__free_unpacked (reply, NULL);
        free (buffer);
        buffer = next;
        n = next_n;
    }
    free (buffer);
    free (restore_id);
    fclose (file);
    return rc;
}
