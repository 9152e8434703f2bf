/*  zube_status - status codes and their Kubernetes reasons. */
#include <string.h>
#include "zube/status.h"

static const struct {
    const char *reason;
    int http_code;
} s_status_table[ZUBE_STATUS_COUNT] = {
    [ZUBE_OK] = {.reason = "Success", .http_code = 200},
    [ZUBE_NOT_FOUND] = {.reason = "NotFound", .http_code = 404},
    [ZUBE_ALREADY_EXISTS] = {.reason = "AlreadyExists", .http_code = 409},
    [ZUBE_CONFLICT] = {.reason = "Conflict", .http_code = 409},
    [ZUBE_INVALID] = {.reason = "Invalid", .http_code = 422},
    [ZUBE_BAD_REQUEST] = {.reason = "BadRequest", .http_code = 400},
    [ZUBE_GONE] = {.reason = "Gone", .http_code = 410},
    [ZUBE_TOO_MANY_REQUESTS] = {.reason = "TooManyRequests", .http_code = 429},
    [ZUBE_UNAVAILABLE] = {.reason = "ServiceUnavailable", .http_code = 503},
    [ZUBE_DEADLINE_EXCEEDED] = {.reason = "Timeout", .http_code = 504},
    [ZUBE_UNAUTHORIZED] = {.reason = "Unauthorized", .http_code = 401},
    [ZUBE_FORBIDDEN] = {.reason = "Forbidden", .http_code = 403},
    [ZUBE_INTERNAL] = {.reason = "InternalError", .http_code = 500},
    [ZUBE_NOT_IMPLEMENTED] = {.reason = "MethodNotAllowed", .http_code = 405},
    [ZUBE_PAYLOAD_TOO_LARGE] = {.reason = "RequestEntityTooLarge", .http_code = 413},
};

const char *
zube_status_reason (zube_status_t status)
{
    if ((int) status < 0 || status >= ZUBE_STATUS_COUNT)
        return "Unknown";
    return s_status_table[status].reason;
}

int
zube_status_http_code (zube_status_t status)
{
    if ((int) status < 0 || status >= ZUBE_STATUS_COUNT)
        return 500;
    return s_status_table[status].http_code;
}

zube_status_t
zube_status_from_reason (const char *reason)
{
    for (int i = 0; reason && i < ZUBE_STATUS_COUNT; i++)
        if (strcmp (s_status_table[i].reason, reason) == 0)
            return (zube_status_t) i;
    return ZUBE_INTERNAL;
}
