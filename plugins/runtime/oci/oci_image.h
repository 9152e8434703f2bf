/*  oci_image - the image store of the oci runtime plugin.

    Images come from files (no registry): OCI image layouts (a directory
    or a tar of one) and docker-archive tarballs (`docker save`). Every
    blob's sha256 is verified on import; blobs are kept under
    blobs/sha256/<hex>, each layer is unpacked once into a shared,
    read-only, content-addressed cache layers/<hex>/ (whiteouts turned
    into overlayfs whiteouts), and refs maps each image name to its
    manifest digest. A container's rootfs is an overlay mount of its
    image's layers, or a flattened copy where overlayfs is not usable.
    docs/runtime-oci.md, section "Image store". Not thread-safe: one
    thread at a time, as the runtime is used. */
#ifndef OCI_IMAGE_H_INCLUDED
#define OCI_IMAGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct oci_image_store_t oci_image_store_t;

//  Opens (creates) the store under dir (<state_dir>/images):
//  blobs/sha256/<hex>, layers/<hex>/ (unpacked, read-only, shared), refs
//  (name -> manifest digest), containers' rootfs under the dirs given
//  below. NULL with err filled on failure (unwritable dir: says which).
oci_image_store_t *oci_image_store_open (const char *dir, char *err, size_t err_size);
void oci_image_store_close (oci_image_store_t **self_p);

//  Imports an OCI image layout (directory or tar) or a docker-archive tar
//  (`docker save` format); every blob's sha256 is verified; the image's
//  names (org.opencontainers.image.ref.name / RepoTags) become refs.
//  Writes the first imported ref into ref (may be NULL). 0, or -1 with
//  err ("layer sha256:... digest mismatch: got ...").
int oci_image_import (oci_image_store_t *self, const char *path, char *ref, size_t ref_size,
                      char *err, size_t err_size);

//  True when ref (normalized like Kubernetes/containerd: "busybox" ==
//  "docker.io/library/busybox:latest") is in the store; id gets the image
//  id (config digest) when non-NULL.
bool oci_image_exists (oci_image_store_t *self, const char *ref, char *id, size_t id_size);

//  The image config's parts a container needs.
typedef struct {
    char **entrypoint;
    size_t entrypoint_count;
    char **cmd;
    size_t cmd_count;
    char **env;
    size_t env_count;
    char *working_dir;
    char *user;
    char *stop_signal;
} oci_image_config_t;

void oci_image_config_free (oci_image_config_t *config);

//  Builds a container's rootfs from ref in container_dir: overlayfs
//  (lowerdirs = the unpacked layers, upper/work in container_dir) where
//  the kernel allows it, else a copy; writes the rootfs path into rootfs.
//  Fills *config. 0 or -1 with err (missing image: "image \"x\" not found
//  in the node's image store").
int oci_image_prepare_rootfs (oci_image_store_t *self, const char *ref,
                              const char *container_dir, char *rootfs, size_t rootfs_size,
                              oci_image_config_t *config, char *err, size_t err_size);

//  Unmounts and removes what prepare_rootfs made in container_dir.
//  Idempotent.
int oci_image_release_rootfs (oci_image_store_t *self, const char *container_dir);

//  ---------------------------------------------------------------------
//  Additions beyond the first interface.

//  One image for node.status.images: its names (normalized refs) and
//  size in bytes (config and layer blobs); id is the config digest.
typedef struct {
    const char *const *names;
    size_t names_count;
    const char *id;
    uint64_t size;
} oci_image_info_t;

//  Called once per image; nonzero stops the listing.
typedef int (oci_image_fn) (void *arg, const oci_image_info_t *image);

//  Every image of the store through fn, in name order. 0, or -1 when the
//  refs cannot be read.
int oci_image_list (oci_image_store_t *self, oci_image_fn *fn, void *arg);

//  Imports every file and directory directly in dir (the zubelet's
//  preload directory), in name order. A file that fails is logged into
//  err (the last failure) and the others are still imported. Answers how
//  many imports failed (0: all good; -1: dir unreadable).
int oci_image_preload_dir (oci_image_store_t *self, const char *dir, char *err,
                           size_t err_size);

//  Normalizes ref like Kubernetes/containerd (docker's reference
//  normalization): "busybox" -> "docker.io/library/busybox:latest". 0, or
//  -1 with err naming what is wrong with ref.
int oci_image_normalize_ref (const char *ref, char *out, size_t out_size, char *err,
                             size_t err_size);

//  Removes a ref; blobs and layers no remaining ref uses are removed too
//  (a layer is shared by overlay mounts: the caller removes only images
//  no container uses, as Kubernetes' image GC does). 0, or -1 with err
//  (not found).
int oci_image_remove (oci_image_store_t *self, const char *ref, char *err, size_t err_size);

//  How the last prepare_rootfs built its rootfs: "overlay" or "copy".
const char *oci_image_last_rootfs_mode (oci_image_store_t *self);

#endif
