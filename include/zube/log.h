/*  zube_log - one line per event, key=value, to stderr.

    zube_log_info ("msg=\"instance registered\" service=%s instance=%s", ...)
    prints: ts=2026-11-25T21:40:04.123Z level=info comp=broker msg=... */
#ifndef ZUBE_LOG_H_INCLUDED
#define ZUBE_LOG_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZUBE_LOG_DEBUG = 0,
    ZUBE_LOG_INFO = 1,
    ZUBE_LOG_WARN = 2,
    ZUBE_LOG_ERROR = 3,
    ZUBE_LOG_OFF = 4
} zube_log_level_t;

//  The component name printed as comp=...; "zube" until set.
void zube_log_set_component (const char *component);
void zube_log_set_level (zube_log_level_t level);
zube_log_level_t zube_log_get_level (void);
//  "debug", "info", "warn", "error", "off"; -1 if not a level name.
int zube_log_level_parse (const char *name);

void zube_log (zube_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

#define zube_log_debug(...) zube_log (ZUBE_LOG_DEBUG, __VA_ARGS__)
#define zube_log_info(...)  zube_log (ZUBE_LOG_INFO, __VA_ARGS__)
#define zube_log_warn(...)  zube_log (ZUBE_LOG_WARN, __VA_ARGS__)
#define zube_log_error(...) zube_log (ZUBE_LOG_ERROR, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
