/*  ctrl_duration - Go/Kubernetes durations ("200ms", "10s", "1m30s") in
    controller settings (static inline, as ctrl_util.h). */
#ifndef ZUBE_CTRL_DURATION_H_INCLUDED
#define ZUBE_CTRL_DURATION_H_INCLUDED

#include "zube/controller.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Milliseconds, -1 when text is empty or malformed.
static inline int64_t
zc_duration_ms (const char *text)
{
    int64_t total = 0;
    const char *c = text;
    if (!c || !*c)
        return -1;
    while (*c) {
        char *end = NULL;
        double value = strtod (c, &end);
        if (end == c || value < 0)
            return -1;
        c = end;
        double unit = strncmp (c, "ms", 2) == 0 ? (c += 2, 1.0)
                      : *c == 's'               ? (c++, 1000.0)
                      : *c == 'm'               ? (c++, 60000.0)
                      : *c == 'h'               ? (c++, 3600000.0)
                                                : -1.0;
        if (unit < 0)
            return -1;
        total += (int64_t)(value * unit);
    }
    return total;
}

//  A duration setting (--controller-arg) of at least min_ms into *value,
//  left as it is when not set. false, with an error naming the setting,
//  what it expects (in words) and the value, when it is no such duration.
static inline bool
zc_setting_ms (const zube_ctrl_host_t *host, const char *key, int64_t min_ms,
               const char *expected, int64_t *value, char *error, size_t error_size)
{
    const char *text = host->base->config_get (host->base, key);
    if (!text)
        return true;
    int64_t ms = zc_duration_ms (text);
    if (ms < 0 || ms < min_ms) {
        snprintf (error, error_size, "%s: expected %s, got \"%s\"", key, expected, text);
        return false;
    }
    *value = ms;
    return true;
}

#endif
