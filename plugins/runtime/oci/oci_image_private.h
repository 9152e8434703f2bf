/*  oci_image_private - what the image store's files share (not part of
    the interface the runtime uses: that is oci_image.h). */
#ifndef OCI_IMAGE_PRIVATE_H_INCLUDED
#define OCI_IMAGE_PRIVATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oci_image.h"

typedef enum {
    //  one layer into its own cache dir, whiteouts as overlayfs whiteouts
    OCI_LAYER_OVERLAY,
    //  onto the layers below in one dir, whiteouts delete
    OCI_LAYER_FLATTEN,
    //  an archive as it is (an image tarball into a staging dir)
    OCI_LAYER_PLAIN
} oci_layer_mode_t;

//  Formats err; returns -1.
int oci_image_fail (char *err, size_t err_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Copies from into to (to NULL: only reads) and writes the sha256 of the
//  bytes as 64 hex digits into hex (65 bytes) and their count into
//  *size_p (may be NULL).
int oci_image_copy_hashed (const char *from, const char *to, char *hex, uint64_t *size_p,
                           char *err, size_t err_size);
//  The sha256 of a blob's uncompressed bytes (a layer's diff id).
int oci_image_diff_id (const char *path, char *hex, char *err, size_t err_size);

//  Unpacks a tar (any compression) into dest (an existing directory);
//  what names it in errors ("layer sha256:...").
int oci_image_unpack (const char *archive_path, const char *dest, oci_layer_mode_t mode,
                      const char *what, char *err, size_t err_size);

//  mkdir -p path (0755).
int oci_image_mkdirs (const char *path);
//  rm -rf path (never crossing into another mount). 0 also when absent.
int oci_image_remove_tree (const char *path);

#endif
