/*  zube_status - status codes and their Kubernetes reasons.

    Every reply on the bus carries a zube_status_t (schemas/bus.proto
    StatusCode). This table maps each to the reason string and HTTP code
    Kubernetes uses, so zubectl prints errors as kubectl does. */
#ifndef ZUBE_STATUS_H_INCLUDED
#define ZUBE_STATUS_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZUBE_OK = 0,
    ZUBE_NOT_FOUND = 1,
    ZUBE_ALREADY_EXISTS = 2,
    ZUBE_CONFLICT = 3,
    ZUBE_INVALID = 4,
    ZUBE_BAD_REQUEST = 5,
    ZUBE_GONE = 6,
    ZUBE_TOO_MANY_REQUESTS = 7,
    ZUBE_UNAVAILABLE = 8,
    ZUBE_DEADLINE_EXCEEDED = 9,
    ZUBE_UNAUTHORIZED = 10,
    ZUBE_FORBIDDEN = 11,
    ZUBE_INTERNAL = 12,
    ZUBE_NOT_IMPLEMENTED = 13,
    ZUBE_PAYLOAD_TOO_LARGE = 14,
    ZUBE_STATUS_COUNT
} zube_status_t;

//  Kubernetes' reason ("NotFound"), or "Unknown" for a code out of range.
const char *zube_status_reason (zube_status_t status);

//  The HTTP status code Kubernetes would answer with.
int zube_status_http_code (zube_status_t status);

//  Inverse of zube_status_reason; ZUBE_INTERNAL for an unknown reason.
zube_status_t zube_status_from_reason (const char *reason);

#ifdef __cplusplus
}
#endif
#endif
