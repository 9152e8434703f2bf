/*  test_zubectl_image - zubectl image import and list through a real
    zube-broker, zube-apiserver and zubelet: the test image as a
    docker-archive (over 2 MiB: two chunks) and as an OCI layout directory
    (sent as a tar), the node's status.images reporting it, a corrupt
    image refused naming the blob, a node that
    does not exist, the upload directory left empty; and a zubelet with the
    sim runtime answering that it has no image store.

    The oci part needs root, runc and the CNI plugins (zt_oci.h), and an
    oci plugin whose table has image_import; it skips otherwise. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "../zt_cluster.h"
#include "../zt_oci.h"
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#define S_NODE "img-n1"
#define S_SIM_NODE "img-sim"

static zt_cluster_t s_cluster;
static char *s_dir;
static char s_docker_tar[700];
static char s_layout[700];

static pid_t
s_zubelet_start (const char *runtime, const char *node, const char *state_name, ...)
{
    char state[700], log[700];
    snprintf (state, sizeof state, "%s/%s", s_dir, state_name);
    snprintf (log, sizeof log, "%s/zubelet-%s.log", s_dir, node);
    char *argv[40] = {(char *)zt_program ("zubelet"), "--bus", s_cluster.endpoint, "--insecure",
                      "--runtime", (char *)runtime, "--node-name", (char *)node,
                      "--state-dir", state};
    int argc = 10;
    va_list args;
    va_start (args, state_name);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < 39)
        argv[argc++] = (char *)arg;
    va_end (args);
    argv[argc] = NULL;
    return zt_spawn_tied (argv, log);
}

static zt_run_t
s_zubectl (const char *first, ...)
{
    va_list args;
    va_start (args, first);
    zt_run_t result = zt_run_capture_va (
        120000,
        (const char *[]){zt_program ("zubectl"), "--broker", s_cluster.endpoint, "--insecure",
                         "--request-timeout", "20s", first, NULL},
        args);
    va_end (args);
    return result;
}

//  Waits until the node agent answers image.list (the zubelet is up).
static zt_run_t
s_wait_list (const char *node)
{
    zt_run_t r = {0};
    for (int i = 0; i < 100; i++) {
        zt_run_free (&r);
        r = s_zubectl ("image", "list", "--node", node, NULL);
        //  until the zubelet registered its Node and serves
        if (!r.err || (!strstr (r.err, "unreachable") && !strstr (r.err, "not found")))
            break;
        usleep (100000);
    }
    return r;
}

static int
s_uploads_left (const char *state_name)
{
    char path[800];
    snprintf (path, sizeof path, "%s/%s/image-uploads", s_dir, state_name);
    DIR *dir = opendir (path);
    int count = 0;
    for (struct dirent *e; dir && (e = readdir (dir)) != NULL;)
        count += e->d_name[0] != '.';
    if (dir)
        closedir (dir);
    return count;
}

static void
test_sim_has_no_image_store (void)
{
    pid_t zubelet = s_zubelet_start ("sim", S_SIM_NODE, "state-sim", NULL);
    ZT_ASSERT (zubelet > 0);
    zt_run_t r = s_wait_list (S_SIM_NODE);
    int list_status = r.status;
    char *list_err = r.err ? strdup (r.err) : NULL;
    zt_run_free (&r);
    r = s_zubectl ("image", "import", s_docker_tar, "--node", S_SIM_NODE, NULL);
    zt_stop (zubelet, SIGTERM, 10000);
    ZT_ASSERT_INT_EQ (list_status, 1);
    ZT_ASSERT_STR_CONTAINS (list_err, "runtime sim: image_list is not implemented");
    free (list_err);
    ZT_ASSERT_INT_EQ (r.status, 1);
    ZT_ASSERT_STR_CONTAINS (r.err, "runtime sim: image_import is not implemented");
    zt_run_free (&r);
    ZT_ASSERT_INT_EQ (s_uploads_left ("state-sim"), 0);
    //  a node the apiserver does not know
    r = s_zubectl ("image", "list", "--node", "no-such-node", NULL);
    ZT_ASSERT_INT_EQ (r.status, 1);
    ZT_ASSERT_STR_CONTAINS (r.err, "nodes \"no-such-node\" not found");
    zt_run_free (&r);
    r = s_zubectl ("image", "import", s_docker_tar, NULL);
    ZT_ASSERT_INT_EQ (r.status, 1);
    ZT_ASSERT_STR_CONTAINS (r.err, "--node is required");
    zt_run_free (&r);
}

static pid_t s_oci_zubelet;
static char s_option_cgroup[100];
static char s_bridge[32];
static char s_images[800];

//  A zubelet with the oci runtime and an empty image store; false when
//  its plugin has no image operations (not wired in oci.c yet).
static bool
s_oci_start (void)
{
    char option_images[900], option_cidr[64], option_bridge[64];
    snprintf (s_images, sizeof s_images, "%s/images", s_dir);
    snprintf (option_images, sizeof option_images, "image_dir=%s", s_images);
    snprintf (s_bridge, sizeof s_bridge, "zi%d", (int)(getpid () % 100000));
    snprintf (option_bridge, sizeof option_bridge, "bridge=%s", s_bridge);
    snprintf (option_cidr, sizeof option_cidr, "pod_cidr=10.215.%d.0/24", (int)(getpid () % 250));
    snprintf (s_option_cgroup, sizeof s_option_cgroup, "cgroup_parent=zube-test-img-%d",
              (int)getpid ());
    s_oci_zubelet = s_zubelet_start ("oci", S_NODE, "state-oci", "--runtime-option",
                                     option_images, "--runtime-option", option_bridge,
                                     "--runtime-option", option_cidr, "--runtime-option",
                                     s_option_cgroup, NULL);
    if (s_oci_zubelet <= 0)
        return false;
    zt_run_t r = s_wait_list (S_NODE);
    bool wired = !(r.err && strstr (r.err, "image_list is not implemented"));
    zt_run_free (&r);
    return wired;
}

static void
s_oci_stop (void)
{
    if (s_oci_zubelet > 0)
        zt_stop (s_oci_zubelet, SIGTERM, 10000);
    zt_oci_cleanup (s_option_cgroup + strlen ("cgroup_parent="), s_bridge, s_images);
}

static void
test_oci_import_and_list (void)
{
    zt_run_t r = s_wait_list (S_NODE);
    ZT_ASSERT_MSG (r.status == 0, "image list: %s", r.err ? r.err : "");
    ZT_ASSERT_STR_CONTAINS (r.err, "No images found on node " S_NODE);
    zt_run_free (&r);
    //  2.1 MB: two chunks
    struct stat st;
    ZT_ASSERT (stat (s_docker_tar, &st) == 0 && st.st_size > 2 * 1024 * 1024);
    r = s_zubectl ("image", "import", s_docker_tar, "--node", S_NODE, NULL);
    ZT_ASSERT_MSG (r.status == 0, "import: %s", r.err ? r.err : "");
    ZT_ASSERT_STR_EQ (r.out, "image/zube.test/busybox:1 imported\n");
    zt_run_free (&r);
    //  a directory goes as a tar
    r = s_zubectl ("image", "import", s_layout, "--node", S_NODE, NULL);
    ZT_ASSERT_MSG (r.status == 0, "import: %s", r.err ? r.err : "");
    ZT_ASSERT_STR_EQ (r.out, "image/zube.test/busybox:1 imported\n");
    zt_run_free (&r);
    //  the node's status.images reports it (written again after an import)
    bool reported = false;
    for (int i = 0; i < 200 && !reported; i++) {
        ProtobufCMessage *object = NULL;
        zube_api_error_t error;
        if (zube_api_get (s_cluster.api, "nodes", NULL, S_NODE, &object, &error) == ZUBE_OK) {
            const Zube__NodeStatus *status = ((Zube__Node *)object)->status;
            for (size_t n = 0; status && n < status->n_images; n++)
                for (size_t k = 0; k < status->images[n]->n_names; k++)
                    if (strcmp (status->images[n]->names[k], "zube.test/busybox:1") == 0 &&
                        status->images[n]->size_bytes > 1000000)
                        reported = true;
            protobuf_c_message_free_unpacked (object, NULL);
        }
        if (!reported)
            usleep (50000);
    }
    ZT_ASSERT_MSG (reported, "node %s: status.images lacks zube.test/busybox:1", S_NODE);
    r = s_zubectl ("image", "list", "--node", S_NODE, NULL);
    ZT_ASSERT_INT_EQ (r.status, 0);
    ZT_ASSERT_STR_CONTAINS (r.out, "IMAGE");
    ZT_ASSERT_STR_CONTAINS (r.out, "zube.test/busybox:1");
    ZT_ASSERT_STR_CONTAINS (r.out, "MB\n");
    zt_run_free (&r);
    r = s_zubectl ("image", "list", "--node", S_NODE, "-o", "json", NULL);
    ZT_ASSERT_INT_EQ (r.status, 0);
    ZT_ASSERT_STR_CONTAINS (r.out, "\"zube.test/busybox:1\"");
    ZT_ASSERT_STR_CONTAINS (r.out, "\"sha256:");
    zt_run_free (&r);
    //  one byte of the layer changed: refused, naming it
    char corrupt[800], cmd[2000];
    snprintf (corrupt, sizeof corrupt, "%s/corrupt", s_dir);
    snprintf (cmd, sizeof cmd,
              "mkdir -p %s && tar -C %s -xf %s && f=$(ls %s/*/layer.tar) && "
              "printf 'X' | dd of=$f bs=1 seek=5000 conv=notrunc 2>/dev/null",
              corrupt, corrupt, s_docker_tar, corrupt);
    ZT_ASSERT (system (cmd) == 0);
    r = s_zubectl ("image", "import", corrupt, "--node", S_NODE, NULL);
    ZT_ASSERT_INT_EQ (r.status, 1);
    ZT_ASSERT_STR_CONTAINS (r.err, "layer.tar digest mismatch: got sha256:");
    zt_run_free (&r);
    ZT_ASSERT_INT_EQ (s_uploads_left ("state-oci"), 0);
    ZT_ASSERT_MSG (waitpid (s_oci_zubelet, NULL, WNOHANG) == 0, "the zubelet died");
}

//  The zubelets (an ASan build in CI) stopped without a sanitizer report
static void
test_zubelet_logs_clean (void)
{
    const char *nodes[] = {S_SIM_NODE, S_NODE};
    for (int i = 0; i < 2; i++) {
        char path[800];
        snprintf (path, sizeof path, "%s/zubelet-%s.log", s_dir, nodes[i]);
        char *text = zt_read_file (path);
        bool clean = !text || (!strstr (text, "Sanitizer") && !strstr (text, "runtime error"));
        if (!clean)
            zt_log_tail (path, 40);
        free (text);
        ZT_ASSERT_MSG (clean, "%s holds a sanitizer report", path);
    }
}

int
main (void)
{
    s_dir = zt_tempdir ("zctl-image");
    snprintf (s_docker_tar, sizeof s_docker_tar, "%s/busybox-docker.tar", s_dir);
    snprintf (s_layout, sizeof s_layout, "%s/busybox-oci", s_dir);
    const char *srcdir = getenv ("ZUBE_SRCDIR");
    char cmd[2000];
    snprintf (cmd, sizeof cmd, "S=%s/scripts/make-test-image.sh; $S -f docker-archive %s && $S %s",
              srcdir ? srcdir : ".", s_docker_tar, s_layout);
    if (access ("/bin/busybox", X_OK) != 0 || system (cmd) != 0) {
        zt_skip ("test_zubectl_image", "no test image: busybox-static not installed");
        zt_rmtree (s_dir);
        free (s_dir);
        return zt_done ();
    }
    if (!zt_cluster_start (&s_cluster, &(zt_cluster_options_t){.tag = "zctl-image"})) {
        printf ("# cluster: %s\n", s_cluster.why);
        zt_rmtree (s_dir);
        free (s_dir);
        return 1;
    }
    ZT_RUN (test_sim_has_no_image_store);
    const char *why = zt_oci_skip_reason ();
    if (why)
        zt_skip ("test_oci_import_and_list", why);
    else {
        if (s_oci_start ())
            ZT_RUN (test_oci_import_and_list);
        else
            zt_skip ("test_oci_import_and_list",
                     "the oci plugin has no image_import/image_list in its table yet");
        s_oci_stop ();
    }
    ZT_RUN (test_zubelet_logs_clean);
    zt_cluster_stop (&s_cluster, zt_failed_count > 0);
    zt_rmtree (s_dir);
    free (s_dir);
    return zt_done ();
}
