/*  zubectl image: a node's image store (the oci runtime's; no registry).

    import sends a file (an OCI image layout tar or a docker-archive tar;
    a directory holding an OCI layout is sent as a tar made by tar(1))
    to the node's agent in chunks under the bus's message limit, as
    image.import requests of one upload id; the node imports it on the
    last chunk and answers the image's name. list prints the node's
    images (node.status.images' names and sizes). docs/runtime-oci.md. */
#include "zubectl.h"
#include "node.pb-c.h"
#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  Well under the bus's 4 MiB message limit (ZUBE_BUS_DEFAULT_MAX_MSG_SIZE)
#define S_CHUNK_SIZE (2 * 1024 * 1024)
//  The last chunk waits for the import (every blob hashed, layers unpacked)
#define S_IMPORT_TIMEOUT_MS (10 * 60 * 1000)

//  The node's agent service for --node; -1 after printing why.
static int
s_node (zubectl_t *self, const char *node, char *service, size_t service_size)
{
    if (!node || !*node) {
        zube_cli_error ("--node is required: the node whose image store to use");
        return -1;
    }
    return zubectl_node_service (self, node, true, service, service_size);
}

//  A reader of the file, or of `tar -C DIR -cf - .` for a directory;
//  *pid_p the tar's pid (0 for a file). NULL after printing why.
static FILE *
s_open_source (const char *path, pid_t *pid_p)
{
    *pid_p = 0;
    struct stat st;
    if (stat (path, &st) != 0) {
        zube_cli_error ("cannot read %s: %s", path, strerror (errno));
        return NULL;
    }
    if (!S_ISDIR (st.st_mode)) {
        FILE *file = fopen (path, "rb");
        if (!file)
            zube_cli_error ("cannot read %s: %s", path, strerror (errno));
        return file;
    }
    int fds[2];
    if (pipe (fds) != 0) {
        zube_cli_error ("cannot tar %s: %s", path, strerror (errno));
        return NULL;
    }
    pid_t pid = fork ();
    if (pid == 0) {
        dup2 (fds[1], STDOUT_FILENO);
        close (fds[0]);
        close (fds[1]);
        execlp ("tar", "tar", "-C", path, "-cf", "-", ".", (char *)NULL);
        _exit (127);
    }
    close (fds[1]);
    if (pid < 0) {
        close (fds[0]);
        zube_cli_error ("cannot tar %s: %s", path, strerror (errno));
        return NULL;
    }
    *pid_p = pid;
    return fdopen (fds[0], "rb");
}

//  Closes the source; -1 after printing why when tar failed. abort:
//  the upload failed already, tar is stopped and not reported.
static int
s_close_source (FILE *file, pid_t pid, const char *path, bool abort)
{
    fclose (file);
    if (!pid)
        return 0;
    if (abort)
        kill (pid, SIGTERM);
    int status = 0;
    waitpid (pid, &status, 0);
    if (abort || (WIFEXITED (status) && WEXITSTATUS (status) == 0))
        return 0;
    zube_cli_error ("tar of the directory %s failed", path);
    return -1;
}

static int
s_import (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *node = NULL;
    zube_cli_flag_t flags[] = {{.name = "node", .type = ZUBE_CLI_STRING, .value = &node,
                                .value_name = "NAME", .help = "The node to import into"},
                               {0}};
    char *args[argc + 1];
    int parsed = zubectl_parse_one (self, command, flags, argc, argv, args, "FILE");
    if (parsed <= 0)
        return parsed < 0 ? 1 : 0;
    char service[300];
    if (s_node (self, node, service, sizeof service) != 0)
        return 1;
    pid_t pid;
    FILE *source = s_open_source (args[0], &pid);
    if (!source)
        return 1;
    uint8_t *chunk = malloc (S_CHUNK_SIZE);
    zuuid_t *uuid = zuuid_new ();
    if (!chunk || !uuid) {
        zube_cli_error ("out of memory");
        free (chunk);
        zuuid_destroy (&uuid);
        s_close_source (source, pid, args[0], true);
        return 1;
    }
    Zube__NodeImageImportRequest request = ZUBE__NODE_IMAGE_IMPORT_REQUEST__INIT;
    request.node_name = (char *)node;
    request.upload = (char *)zuuid_str (uuid);
    request.file_name = args[0];
    request.has_offset = request.has_data = request.has_last = true;
    int rc = 1;
    //  one chunk read ahead, so the last one is known to be last
    size_t size = fread (chunk, 1, S_CHUNK_SIZE, source);
    for (;;) {
        int next = fgetc (source);
        bool last = next == EOF;
        if (last && ferror (source)) {
            zube_cli_error ("cannot read %s: %s", args[0], strerror (errno));
            break;
        }
        if (last && s_close_source (source, pid, args[0], false) != 0) {
            source = NULL;
            break;
        }
        if (last)
            source = NULL;
        request.data.data = chunk;
        request.data.len = size;
        request.last = last;
        Zube__NodeImageImportReply *reply = (Zube__NodeImageImportReply *)zubectl_node_call (
            self, service, "image.import", node, &request.base,
            &zube__node_image_import_reply__descriptor, last ? S_IMPORT_TIMEOUT_MS : 0);
        if (!reply)
            break;
        request.offset += (int64_t)size;
        if (last) {
            printf ("image/%s imported\n", reply->ref ? reply->ref : "");
            rc = 0;
        }
        zube__node_image_import_reply__free_unpacked (reply, NULL);
        if (last)
            break;
        chunk[0] = (uint8_t)next;
        size = 1 + fread (chunk + 1, 1, S_CHUNK_SIZE - 1, source);
    }
    if (source)
        s_close_source (source, pid, args[0], true);
    zuuid_destroy (&uuid);
    free (chunk);
    return rc;
}

//  "1.07MB", as crictl images prints sizes
static const char *
s_size (int64_t bytes, char *buf, size_t size)
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    double value = (double)bytes;
    size_t unit = 0;
    while (value >= 1000 && unit < 4) {
        value /= 1000;
        unit++;
    }
    snprintf (buf, size, unit ? "%.3g%s" : "%.0f%s", value, units[unit]);
    return buf;
}

static int
s_list (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *node = NULL;
    zube_cli_flag_t flags[] = {{.name = "node", .type = ZUBE_CLI_STRING, .value = &node,
                                .value_name = "NAME", .help = "The node whose images to list"},
                               {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count != 0) {
        zube_cli_error ("unexpected argument \"%s\" (see \"zubectl image list --help\")",
                        args[0]);
        return 1;
    }
    char service[300];
    if (s_node (self, node, service, sizeof service) != 0)
        return 1;
    Zube__NodeImageListRequest request = ZUBE__NODE_IMAGE_LIST_REQUEST__INIT;
    request.node_name = (char *)node;
    Zube__NodeImageListReply *reply = (Zube__NodeImageListReply *)zubectl_node_call (
        self, service, "image.list", node, &request.base, &zube__node_image_list_reply__descriptor,
        0);
    if (!reply)
        return 1;
    int rc = 0;
    if (self->output_format == ZUBECTL_OUTPUT_YAML || self->output_format == ZUBECTL_OUTPUT_JSON)
        rc = zubectl_print_message (self, &reply->base) == 0 ? 0 : 1;
    else if (reply->n_images == 0)
        fprintf (stderr, "No images found on node %s.\n", node);
    else {
        printf ("%-50s %-13s %s\n", "IMAGE", "IMAGE ID", "SIZE");
        for (size_t i = 0; i < reply->n_images; i++) {
            const Zube__NodeImage *image = reply->images[i];
            const char *id = image->id ? image->id : "";
            if (strncmp (id, "sha256:", 7) == 0)
                id += 7;
            char size[32];
            for (size_t n = 0; n < image->n_names; n++)
                printf ("%-50s %-13.13s %s\n", image->names[n], id,
                        s_size (image->size_bytes, size, sizeof size));
        }
    }
    zube__node_image_list_reply__free_unpacked (reply, NULL);
    return rc;
}

const zubectl_command_t zubectl_image_commands[] = {
    {.name = "import",
     .summary = "Import an image file into a node's image store",
     .usage = "image import FILE --node NAME [flags]",
     .description = "Sends FILE to the node agent of node NAME, whose runtime imports it: an "
                    "OCI image layout (a tar of one, or a directory, sent as a tar) or a "
                    "docker-archive tar (docker save). Every blob's digest is verified; the "
                    "image's names (org.opencontainers.image.ref.name, RepoTags) become "
                    "its references, normalized as Kubernetes does (busybox is "
                    "docker.io/library/busybox:latest). Pods with imagePullPolicy "
                    "IfNotPresent or Never then run it on that node.",
     .examples = "  scripts/make-test-image.sh -f oci-archive busybox.tar\n"
                 "  zubectl image import busybox.tar --node node-1",
     .handler = s_import},
    {.name = "list",
     .summary = "List the images in a node's image store",
     .usage = "image list --node NAME [flags]",
     .description = "Lists the node's images: each name, the image id (its config digest, "
                    "shortened) and its size (config and layers as stored).",
     .examples = "  zubectl image list --node node-1\n"
                 "  zubectl image list --node node-1 -o json",
     .outputs = "yaml,json",
     .handler = s_list},
    {0}};
