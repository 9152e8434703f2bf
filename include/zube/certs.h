/*  zube_certs - the cluster's CurveZMQ certificate directory.

    Layout (docs/bus-protocol.md, Security):
        DIR/broker.cert            the broker's public certificate
        DIR/broker.cert_secret     the broker's secret certificate
        DIR/public/NAME.cert       admitted peers, metadata name=NAME
        DIR/private/NAME.cert_secret   each peer's secret certificate
*/
#ifndef ZUBE_CERTS_H_INCLUDED
#define ZUBE_CERTS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Peer and certificate names: DNS-1123 subdomain-ish, [a-z0-9.-], 1..253
//  characters, plus '_' for generated node names. True if acceptable.
bool zube_certs_name_valid (const char *name);

//  Creates DIR (and its subfolders) if needed, then the broker's keypair if
//  name is "broker", else the keypair of peer NAME. An existing
//  certificate is kept (idempotent). Returns 0, or -1 with a reason in
//  error.
int zube_certs_create (const char *dir, const char *name, char *error, size_t error_size);

//  Paths inside DIR for NAME's certificates; writes into buf.
const char *zube_certs_public_path (const char *dir, const char *name,
                                    char *buf, size_t buf_size);
const char *zube_certs_secret_path (const char *dir, const char *name,
                                    char *buf, size_t buf_size);

//  The admitted peers of a certificate directory: a map from public key
//  (Z85, 40 characters) to the certificate's name, built from every
//  DIR/public/*.cert. The broker uses it to turn the key that ZAP
//  authenticated into the sender name it stamps on requests; the name comes
//  from the certificate's metadata "name" (or its file name when that is
//  missing), never from anything a peer sends.
typedef struct _zube_certs_names_t zube_certs_names_t;

//  Loads DIR/public/*.cert. Returns NULL (and logs why) when DIR/public
//  cannot be read; unreadable or invalid certificates are skipped.
zube_certs_names_t *zube_certs_names_new (const char *dir);
void zube_certs_names_destroy (zube_certs_names_t **self_p);

//  The name for public_key, or NULL when it is not admitted. On a miss the
//  map reloads itself once if DIR/public changed since it was loaded, so a
//  certificate added while the broker runs is found. The returned string
//  is valid until the next lookup that reloads, or destroy.
const char *zube_certs_names_lookup (zube_certs_names_t *self, const char *public_key);

//  Number of admitted keys.
size_t zube_certs_names_size (zube_certs_names_t *self);

#ifdef __cplusplus
}
#endif
#endif
