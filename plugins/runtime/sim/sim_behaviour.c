/*  sim_behaviour - parsers for the sim runtime's annotations.

    Durations follow Go's time.ParseDuration (what Kubernetes and KWOK
    accept), so the same strings work in a KWOK stage and here. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sim_behaviour.h"

static const struct {
    const char *name;
    sim_key_t key;
} s_keys[] = {
    {"start-delay", SIM_KEY_START_DELAY},
    {"run-duration", SIM_KEY_RUN_DURATION},
    {"exit-code", SIM_KEY_EXIT_CODE},
    {"readiness-delay", SIM_KEY_READINESS_DELAY},
    {"fail-probe", SIM_KEY_FAIL_PROBE},
    {"image-missing", SIM_KEY_IMAGE_MISSING},
    {"oom", SIM_KEY_OOM},
    {"stop-exit-code", SIM_KEY_STOP_EXIT_CODE},
    {"logs", SIM_KEY_LOGS},
    {"exec", SIM_KEY_EXEC},
    {"host-probes", SIM_KEY_HOST_PROBES},
};

sim_key_t
sim_key_lookup (const char *base, size_t length)
{
    for (size_t i = 0; i < sizeof s_keys / sizeof s_keys[0]; i++)
        if (strlen (s_keys[i].name) == length && memcmp (s_keys[i].name, base, length) == 0)
            return s_keys[i].key;
    return SIM_KEY_UNKNOWN;
}

int64_t
sim_duration_ms (const char *text)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {
        //  Longest first where one is a prefix of another ("ms" before "m").
        {"ns", 1},
        {"us", 1e3},
        {"\xc2\xb5s", 1e3}, //  U+00B5 micro sign
        {"\xce\xbcs", 1e3}, //  U+03BC Greek mu
        {"ms", 1e6},
        {"s", 1e9},
        {"m", 60e9},
        {"h", 3600e9},
    };
    if (!text)
        return -1;
    const char *p = text;
    if (*p == '+')
        p++;
    if (strcmp (p, "0") == 0)
        return 0;
    if (!*p)
        return -1;
    double total_ns = 0;
    while (*p) {
        if (!isdigit ((unsigned char) *p) && *p != '.')
            return -1;
        const char *start = p;
        bool digits = false;
        while (isdigit ((unsigned char) *p)) {
            p++;
            digits = true;
        }
        if (*p == '.') {
            p++;
            while (isdigit ((unsigned char) *p)) {
                p++;
                digits = true;
            }
        }
        if (!digits)
            return -1;
        double value = strtod (start, NULL);
        size_t i;
        for (i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t length = strlen (units[i].unit);
            if (strncmp (p, units[i].unit, length) == 0)
                break;
        }
        if (i == sizeof units / sizeof units[0])
            return -1;
        total_ns += value * units[i].ns;
        p += strlen (units[i].unit);
    }
    double ms = total_ns / 1e6;
    if (!(ms >= 0) || ms > 1e12)
        return -1;
    return (int64_t) llround (ms);
}

int
sim_exit_code (const char *text)
{
    if (!text || !isdigit ((unsigned char) *text))
        return -1;
    char *end = NULL;
    long value = strtol (text, &end, 10);
    if (*end || value < 0 || value > 255)
        return -1;
    return (int) value;
}

int
sim_bool (const char *text)
{
    if (!text)
        return -1;
    if (strcmp (text, "true") == 0 || strcmp (text, "True") == 0)
        return 1;
    if (strcmp (text, "false") == 0 || strcmp (text, "False") == 0)
        return 0;
    return -1;
}

bool
sim_fail_probe_parse (const char *text, sim_fail_rule_t rules[4], char *error,
                      size_t error_size)
{
    static const char *kinds[] = {NULL, "liveness", "readiness", "startup"};
    for (int i = 0; i < 4; i++)
        rules[i] = (sim_fail_rule_t) {SIM_FAIL_NONE, 0};
    const char *p = text ? text : "";
    while (true) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            return true;
        size_t length = strcspn (p, ",");
        while (length > 0 && p[length - 1] == ' ')
            length--;
        char item[128];
        if (length >= sizeof item) {
            snprintf (error, error_size, "fail-probe item too long");
            return false;
        }
        memcpy (item, p, length);
        item[length] = 0;
        p += length;
        char *colon = strchr (item, ':');
        int kind = 0;
        if (colon) {
            *colon = 0;
            for (int i = 1; i < 4; i++)
                if (strcmp (item, kinds[i]) == 0)
                    kind = i;
        }
        if (!kind) {
            snprintf (error, error_size,
                      "fail-probe \"%s\": expected liveness:, readiness: or startup:", item);
            return false;
        }
        const char *mode = colon + 1;
        sim_fail_rule_t rule = {SIM_FAIL_NONE, 0};
        if (strcmp (mode, "always") == 0)
            rule.mode = SIM_FAIL_ALWAYS;
        else if (strcmp (mode, "never") == 0)
            rule.mode = SIM_FAIL_NEVER;
        else if (strncmp (mode, "after=", 6) == 0) {
            rule.mode = SIM_FAIL_AFTER;
            rule.ms = sim_duration_ms (mode + 6);
        }
        else if (strncmp (mode, "until=", 6) == 0) {
            rule.mode = SIM_FAIL_UNTIL;
            rule.ms = sim_duration_ms (mode + 6);
        }
        if (rule.mode == SIM_FAIL_NONE || rule.ms < 0) {
            snprintf (error, error_size,
                      "fail-probe %s:%s: expected always, never, after=DURATION or "
                      "until=DURATION",
                      kinds[kind], mode);
            return false;
        }
        rules[kind] = rule;
    }
}

void
sim_image_normalize (const char *image, char *out, size_t size)
{
    if (!image || !*image) {
        snprintf (out, size, "%s", "");
        return;
    }
    //  The first component is a registry when it has a dot or a port, or
    //  is localhost (the rule of docker's reference package).
    const char *slash = strchr (image, '/');
    bool registry = false;
    if (slash) {
        size_t length = (size_t) (slash - image);
        registry = memchr (image, '.', length) || memchr (image, ':', length)
                   || (length == 9 && memcmp (image, "localhost", 9) == 0);
    }
    const char *prefix = registry ? "" : slash ? "docker.io/" : "docker.io/library/";
    const char *last = strrchr (image, '/');
    last = last ? last + 1 : image;
    bool tagged = strchr (image, '@') || strchr (last, ':');
    snprintf (out, size, "%s%s%s", prefix, image, tagged ? "" : ":latest");
}

static uint64_t
s_mix (uint64_t x)
{
    //  splitmix64's finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

void
sim_image_id (const char *normalized, char *out, size_t size)
{
    uint64_t hash = 0xcbf29ce484222325ULL; //  FNV-1a
    for (const char *c = normalized; *c; c++) {
        hash ^= (unsigned char) *c;
        hash *= 0x100000001b3ULL;
    }
    //  The repository: the name without its tag (a digest stays as is).
    const char *at = strchr (normalized, '@');
    size_t repo_length;
    if (at)
        repo_length = (size_t) (at - normalized);
    else {
        const char *last = strrchr (normalized, '/');
        last = last ? last + 1 : normalized;
        const char *colon = strchr (last, ':');
        repo_length = colon ? (size_t) (colon - normalized) : strlen (normalized);
    }
    snprintf (out, size, "%.*s@sha256:%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
              (int) repo_length, normalized, s_mix (hash), s_mix (hash + 1), s_mix (hash + 2),
              s_mix (hash + 3));
}

//  One line of exec rules: the command [line, arrow), the code, the
//  output [output, end). false when the line has no " => CODE".
static bool
s_exec_line (const char *line, const char *end, const char **arrow_p, int *code_p,
             const char **output_p)
{
    const char *arrow = NULL;
    for (const char *p = line; p + 4 <= end; p++)
        if (memcmp (p, " => ", 4) == 0)
            arrow = p;
    if (!arrow)
        return false;
    const char *p = arrow + 4;
    int code = 0, digits = 0;
    while (p < end && isdigit ((unsigned char) *p) && digits < 4) {
        code = code * 10 + (*p++ - '0');
        digits++;
    }
    if (!digits || code > 255)
        return false;
    if (p < end && *p != ':')
        return false;
    if (p < end)
        p++;
    if (p < end && *p == ' ')
        p++;
    *arrow_p = arrow;
    *code_p = code;
    *output_p = p;
    return true;
}

bool
sim_exec_rule_find (const char *rules, const char *command, int *code_p,
                    const char **output_p, size_t *length_p)
{
    size_t command_length = strlen (command);
    for (const char *line = rules; line && *line;) {
        const char *end = strchr (line, '\n');
        if (!end)
            end = line + strlen (line);
        const char *arrow, *output;
        int code;
        if (s_exec_line (line, end, &arrow, &code, &output)
            && (size_t) (arrow - line) == command_length
            && memcmp (line, command, command_length) == 0) {
            *code_p = code;
            *output_p = output;
            *length_p = (size_t) (end - output);
            return true;
        }
        line = *end ? end + 1 : end;
    }
    return false;
}

bool
sim_exec_rules_check (const char *rules, char *error, size_t error_size)
{
    int number = 1;
    for (const char *line = rules; line && *line; number++) {
        const char *end = strchr (line, '\n');
        if (!end)
            end = line + strlen (line);
        const char *arrow, *output;
        int code;
        bool blank = true;
        for (const char *p = line; p < end; p++)
            if (!isspace ((unsigned char) *p))
                blank = false;
        if (!blank && !s_exec_line (line, end, &arrow, &code, &output)) {
            snprintf (error, error_size,
                      "line %d: expected \"COMMAND => CODE\" or \"COMMAND => CODE: OUTPUT\" "
                      "(CODE 0..255)",
                      number);
            return false;
        }
        line = *end ? end + 1 : end;
    }
    return true;
}
