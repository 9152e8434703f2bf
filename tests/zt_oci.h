/*  zt_oci - what the oci runtime's tests share: why they skip, the busybox
    test image imported into a store, and the cleanup of everything a run
    made outside its temporary directory (its sandboxes through the
    runtime, its cgroup parent in every hierarchy, its bridge).

    Include after zt_cluster.h; link plugins/libociimage.la. */
#ifndef ZT_OCI_H_INCLUDED
#define ZT_OCI_H_INCLUDED

#include <dirent.h>
#include <unistd.h>
#include "zube/runtime_client.h"
#include "../plugins/runtime/oci/oci_image.h"

#define ZT_OCI_IMAGE "zube.test/busybox:1"

//  NULL when the oci tests can run here, else why not.
static inline const char *
zt_oci_skip_reason (void)
{
    if (geteuid () != 0)
        return "needs root (runc, network namespaces, CNI)";
    if (access ("/usr/sbin/runc", X_OK) != 0 && access ("/usr/bin/runc", X_OK) != 0)
        return "runc is not installed";
    if (access ("/usr/lib/cni/bridge", X_OK) != 0 && access ("/opt/cni/bin/bridge", X_OK) != 0)
        return "the CNI plugins are not installed";
    if (access ("/bin/busybox", X_OK) != 0)
        return "busybox-static is not installed";
    if (!getenv ("ZUBE_BUILDDIR") || !getenv ("ZUBE_SRCDIR"))
        return "needs ZUBE_BUILDDIR and ZUBE_SRCDIR (make check)";
    return NULL;
}

//  Builds the test image in dir/image (scripts/make-test-image.sh) and
//  imports it into the store at images; false with the reason printed.
static inline bool
zt_oci_import_test_image (const char *dir, const char *images)
{
    char script[600], image[700];
    snprintf (script, sizeof script, "%s/scripts/make-test-image.sh", getenv ("ZUBE_SRCDIR"));
    snprintf (image, sizeof image, "%s/image", dir);
    zt_run_t run = zt_run_capture (60000, (char *const[]) {"/bin/sh", script, image, NULL});
    bool made = run.status == 0;
    if (!made)
        printf ("# make-test-image.sh: %s %s\n", run.out ? run.out : "", run.err ? run.err : "");
    zt_run_free (&run);
    if (!made)
        return false;
    char error[1024] = "";
    oci_image_store_t *store = oci_image_store_open (images, error, sizeof error);
    if (!store || oci_image_import (store, image, NULL, 0, error, sizeof error) != 0) {
        printf ("# image import: %s\n", error);
        oci_image_store_close (&store);
        return false;
    }
    oci_image_store_close (&store);
    return true;
}

//  A /24 of base ("10.213") that no interface of the host uses yet,
//  "base.N.0/24" into cidr: two runs at once (the plain and the ASan
//  build) must not put the same range on two bridges.
static inline void
zt_oci_free_subnet (const char *base, char *cidr, size_t size)
{
    zt_run_t run = zt_run_capture (10000, (char *const[]) {"/usr/sbin/ip", "-o", "-4", "addr",
                                                          "show", NULL});
    int start = (int) (getpid () % 250);
    for (int i = 0; i < 250; i++) {
        int n = (start + i) % 250 + 1;
        char needle[48];
        snprintf (needle, sizeof needle, " %s.%d.", base, n);
        snprintf (cidr, size, "%s.%d.0/24", base, n);
        if (!run.out || !strstr (run.out, needle))
            break;
    }
    zt_run_free (&run);
}

typedef struct {
    char ids[64][ZUBE_RUNTIME_ID_MAX];
    int count;
} zt_oci_ids_t;

static inline int
zt_oci_collect_sandbox (void *arg, const zube_runtime_sandbox_status_t *sandbox)
{
    zt_oci_ids_t *ids = (zt_oci_ids_t *) arg;
    if (ids->count < 64)
        snprintf (ids->ids[ids->count++], ZUBE_RUNTIME_ID_MAX, "%s", sandbox->id);
    return 0;
}

//  Stops and removes every sandbox of the runtime (what a failed case left).
static inline void
zt_oci_remove_all (zube_runtime_t *runtime)
{
    zt_oci_ids_t ids = {.count = 0};
    zube_runtime_list_sandboxes (runtime, NULL, zt_oci_collect_sandbox, &ids);
    for (int i = 0; i < ids.count; i++) {
        zube_runtime_stop_sandbox (runtime, ids.ids[i], 0);
        if (zube_runtime_remove_sandbox (runtime, ids.ids[i]) != ZUBE_OK)
            printf ("# cannot remove sandbox %s: %s\n", ids.ids[i], zube_runtime_error (runtime));
    }
}

//  After the runtime is closed: the cgroup parent in every hierarchy, the
//  bridge, and dir unless something is still mounted under it.
static inline void
zt_oci_cleanup (const char *cgroup_parent, const char *bridge, const char *dir)
{
    DIR *hierarchies = opendir ("/sys/fs/cgroup");
    struct dirent *entry;
    while (hierarchies && (entry = readdir (hierarchies))) {
        char path[700];
        snprintf (path, sizeof path, "/sys/fs/cgroup/%s/%s", entry->d_name, cgroup_parent);
        rmdir (path);
    }
    if (hierarchies)
        closedir (hierarchies);
    zt_run_t run = zt_run_capture (10000, (char *const[]) {"/usr/sbin/ip", "link", "del",
                                                          (char *) bridge, NULL});
    zt_run_free (&run);
    char *mounts = zt_read_file ("/proc/self/mountinfo");
    if (!mounts || !strstr (mounts, dir))
        zt_rmtree (dir);
    else
        printf ("# mounts left under %s: not removed\n", dir);
    free (mounts);
}

#endif
