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

#ifdef __cplusplus
}
#endif
#endif
