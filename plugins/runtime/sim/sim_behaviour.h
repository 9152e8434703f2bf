/*  sim_behaviour - what the sim runtime reads from a pod's annotations.

    The parsers behind the sim.zube.io/ annotations (docs/runtime-sim.md):
    Go durations, exit codes, probe failure rules, and image references
    the way a container runtime names them in status. Pure functions with
    no state, shared by runtime_sim.c and its unit test. */
#ifndef SIM_BEHAVIOUR_H_INCLUDED
#define SIM_BEHAVIOUR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Annotation keys without the "sim.zube.io/" prefix.
#define SIM_ANNOTATION_PREFIX "sim.zube.io/"

typedef enum {
    SIM_KEY_UNKNOWN = 0,
    SIM_KEY_START_DELAY,
    SIM_KEY_RUN_DURATION,
    SIM_KEY_EXIT_CODE,
    SIM_KEY_READINESS_DELAY,
    SIM_KEY_FAIL_PROBE,
    SIM_KEY_IMAGE_MISSING,
    SIM_KEY_OOM,
    SIM_KEY_STOP_EXIT_CODE,
    SIM_KEY_LOGS,
    SIM_KEY_EXEC,
    SIM_KEY_HOST_PROBES
} sim_key_t;

//  The key of a base name ("run-duration"), SIM_KEY_UNKNOWN if none.
sim_key_t sim_key_lookup (const char *base, size_t length);

//  A Go/Kubernetes duration ("1.5s", "2m", "1h30m", "100ms", "0") into
//  milliseconds (rounded to the nearest); -1 when not a duration (or
//  negative, or longer than about 30 years).
int64_t sim_duration_ms (const char *text);

//  An exit code 0..255; -1 when not one.
int sim_exit_code (const char *text);

//  "true" / "false" (as Kubernetes' string bools); -1 when neither.
int sim_bool (const char *text);

//  A fail-probe rule list: "liveness:after=30s,readiness:always", each
//  item KIND:always | KIND:never | KIND:after=DUR | KIND:until=DUR.
//  SIM_PROBE_* kinds match zube_runtime_probe_kind_t (1..3).
typedef enum {
    SIM_FAIL_NONE = 0,
    SIM_FAIL_ALWAYS,
    SIM_FAIL_NEVER,
    SIM_FAIL_AFTER,
    SIM_FAIL_UNTIL
} sim_fail_mode_t;

typedef struct {
    sim_fail_mode_t mode;
    int64_t ms;
} sim_fail_rule_t;

//  Parses TEXT into rules[1..3] (index: probe kind; rules[0] unused).
//  false, with a reason in error, when it does not parse.
bool sim_fail_probe_parse (const char *text, sim_fail_rule_t rules[4], char *error,
                           size_t error_size);

//  The exec rules of sim.zube.io/exec: one per line, "COMMAND => CODE"
//  or "COMMAND => CODE: OUTPUT", COMMAND the argv joined by single
//  spaces. Finds the rule for command: true with *code_p and the output
//  (output_p, *length_p: up to the end of its line), false when no rule
//  matches. sim_exec_rules_check: false, with a reason, when a line does
//  not parse.
bool sim_exec_rule_find (const char *rules, const char *command, int *code_p,
                         const char **output_p, size_t *length_p);
bool sim_exec_rules_check (const char *rules, char *error, size_t error_size);

//  The image as containerd reports it: "busybox" ->
//  "docker.io/library/busybox:latest". Truncated to size.
void sim_image_normalize (const char *image, char *out, size_t size);
//  A made-up image id for the (normalized) image: REPO@sha256:<64 hex>
//  derived from the name, stable across runs; not the digest of anything.
void sim_image_id (const char *normalized, char *out, size_t size);

#endif
