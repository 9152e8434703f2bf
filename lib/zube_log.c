/*  zube_log - one line per event, key=value, to stderr.

    A line is written with one write(2) so lines from several threads or
    processes sharing a log file do not interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "zube/log.h"

static char s_component[64] = "zube";
static zube_log_level_t s_level = ZUBE_LOG_INFO;
static const char *s_level_names[] = {"debug", "info", "warn", "error", "off"};

void
zube_log_set_component (const char *component)
{
    snprintf (s_component, sizeof s_component, "%s", component ? component : "zube");
}

void
zube_log_set_level (zube_log_level_t level)
{
    s_level = level;
}

zube_log_level_t
zube_log_get_level (void)
{
    return s_level;
}

int
zube_log_level_parse (const char *name)
{
    for (int i = 0; name && i <= ZUBE_LOG_OFF; i++)
        if (strcasecmp (name, s_level_names[i]) == 0)
            return i;
    return -1;
}

void
zube_log (zube_log_level_t level, const char *format, ...)
{
    if (level < s_level || level >= ZUBE_LOG_OFF)
        return;
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    char line[4096];
    int used = snprintf (line, sizeof line,
                         "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                         tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000,
                         s_level_names[level], s_component);
    va_list args;
    va_start (args, format);
    int body = vsnprintf (line + used, sizeof line - used - 1, format, args);
    va_end (args);
    if (body < 0)
        body = 0;
    used += body;
    if (used > (int) sizeof line - 2)
        used = sizeof line - 2;
    line[used++] = '\n';
    ssize_t rc = write (STDERR_FILENO, line, used);
    (void) rc;
}
