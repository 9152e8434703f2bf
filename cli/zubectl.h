/*  zubectl - what the zubectl command files share: the command table, the
    global flags, the connection, and kubectl-style errors and printing.

    A verb is one entry in the table in zubectl.c and one handler:

        static int
        s_version (zubectl_t *self, const zubectl_command_t *command,
                   int argc, char **argv)
        {
            bool client_only = false;
            zube_cli_flag_t flags[] = {
                {.name = "client", .type = ZUBE_CLI_BOOL, .value = &client_only,
                 .help = "Client version only (no server required)"},
                {0}};
            char *args[argc + 1];
            int count = zubectl_parse (self, command, flags, argc, argv, args);
            if (count < 0)
                return count == ZUBE_CLI_HELP ? 0 : 1;
            ...
        }
*/
#ifndef ZUBECTL_H_INCLUDED
#define ZUBECTL_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "zube/zube.h"
#include "zube/bus.h"
#include "zube/config.h"
#include "zube/api.h"
#include "zube/codec.h"
#include "zube/kinds.h"
#include "batch.pb-c.h"
#include "core.pb-c.h"
#include "zube_cli.h"

typedef enum {
    ZUBECTL_OUTPUT_DEFAULT = 0,
    ZUBECTL_OUTPUT_WIDE,
    ZUBECTL_OUTPUT_YAML,
    ZUBECTL_OUTPUT_JSON,
    ZUBECTL_OUTPUT_NAME
} zubectl_output_t;

typedef struct _zubectl_t zubectl_t;
typedef struct zubectl_command_s zubectl_command_t;

//  Returns the exit code: 0 success, 1 error.
typedef int (zubectl_handler_fn) (zubectl_t *self, const zubectl_command_t *command,
                                  int argc, char **argv);

struct zubectl_command_s {
    const char *name;
    const char *summary;        //  one line, for the command list
    const char *usage;          //  "bus ping [flags]" (after "zubectl ")
    const char *description;    //  a paragraph for --help, or NULL
    const char *examples;       //  lines for --help, or NULL
    const char *outputs;        //  allowed -o values ("wide,yaml,json"), or NULL
    zubectl_handler_fn *handler;
    //  A command group ("bus") has subcommands instead of a handler; the
    //  table ends with a zeroed entry.
    const zubectl_command_t *subcommands;
};

struct _zubectl_t {
    //  Global flags (kubectl's names).
    const char *config_path;
    const char *broker;
    const char *certs_dir;
    const char *name;
    bool insecure;
    int64_t request_timeout_ms;     //  -1: from the config
    const char *output;
    zubectl_output_t output_format;
    //  -n/--namespace (NULL: the default namespace).
    const char *namespace_flag;
    //  The command being run, for messages: "zubectl bus ping".
    char command_path[128];
    //  Opened on first use by zubectl_connect.
    zube_config_t *config;
    zube_bus_t *bus;
    //  The apiserver client over bus, opened by zubectl_api.
    zube_api_t *api;
};

//  Parses a command's arguments: its own flags and the global flags, in
//  any order. On -h/--help prints the command's help. Checks -o against
//  command->outputs. Returns the count of positional arguments (stored in
//  positional, room for argc), ZUBE_CLI_HELP, or ZUBE_CLI_ERROR (printed).
int zubectl_parse (zubectl_t *self, const zubectl_command_t *command,
                   const zube_cli_flag_t *flags, int argc, char **argv, char **positional);

//  zubectl_parse for a command of exactly one positional argument, what
//  (named in the error when there are more or fewer): 1 with it in
//  positional[0], 0 after --help, -1 after an error (printed).
int zubectl_parse_one (zubectl_t *self, const zubectl_command_t *command,
                       const zube_cli_flag_t *flags, int argc, char **argv, char **positional,
                       const char *what);

//  The connection, opened from the client config and the global flags.
//  NULL after printing "error: ..." when the config is unusable.
zube_bus_t *zubectl_connect (zubectl_t *self);

//  The request timeout in milliseconds (--request-timeout, else the
//  config's timeoutMs).
int zubectl_timeout_ms (zubectl_t *self);

//  The broker endpoint in use.
const char *zubectl_endpoint (zubectl_t *self);

//  Calls service/method with req (may be NULL) and unpacks the reply into
//  *reply_p. On failure prints the error kubectl's way and returns -1:
//  a server's answer as `Error from server (Reason): message`, no answer
//  as `error: ...` naming the broker.
int zubectl_call (zubectl_t *self, const char *service, const char *method,
                  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
                  ProtobufCMessage **reply_p);

//  Calls service/method of any bus service with a raw payload: the OK
//  reply (destroy it), or NULL after printing why (cli/zubectl_plugin.c).
zube_bus_reply_t *zubectl_service_call (zubectl_t *self, const char *service,
                                        const char *method, const void *payload, size_t size);

//  The bus service of node's agent: its zube.io/node-agent-service
//  annotation, else node/<node> (cli/zubectl_node.c). With must_exist, a
//  node the apiserver does not have is an error (printed, -1).
int zubectl_node_service (zubectl_t *self, const char *node, bool must_exist, char *service,
                          size_t service_size);

//  Calls method of a node agent's service with request; the reply, or
//  NULL after printing why (the agent named when it does not answer).
//  timeout_ms 0: the request timeout.
ProtobufCMessage *zubectl_node_call (zubectl_t *self, const char *service, const char *method,
                                     const char *node, const ProtobufCMessage *request,
                                     const ProtobufCMessageDescriptor *reply_desc,
                                     int timeout_ms);

//  Prints `Error from server (NotFound): message` to stderr.
void zubectl_print_server_error (zube_status_t status, const char *message);

//  Prints msg as YAML or JSON (pretty) through the codec, for -o yaml/json.
//  Returns 0, or -1 after printing an error.
int zubectl_print_message (zubectl_t *self, const ProtobufCMessage *msg);

//  ---------------------------------------------------------------------
//  What the API verbs share (zubectl_api.c).

//  kubectl's last-applied annotation, kept by apply.
#define ZUBECTL_LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

//  The apiserver client, opened on first use (NULL after printing why).
zube_api_t *zubectl_api (zubectl_t *self);

//  The namespace commands work in: -n, else "default".
const char *zubectl_namespace (zubectl_t *self);

//  The kind a resource name means, or NULL after printing kubectl's
//  `error: the server doesn't have a resource type "foo"`.
const zube_kind_t *zubectl_kind (const char *resource);

//  Prints an error of the API as kubectl does: `Error from server
//  (Reason): [context: ]message`, `The Pod "x" is invalid: ...` with one
//  line per cause, or `error: ...` when nothing answered.
void zubectl_print_api_error (zubectl_t *self, const zube_api_error_t *error,
                              const char *context);

//  "pod", "deployment.apps": the name of a kind in kubectl's output.
const char *zubectl_kind_name (const zube_kind_t *kind, char *buf, size_t size);

//  The object's metadata.name / namespace ("" if none).
const char *zubectl_object_name (const ProtobufCMessage *object);
const char *zubectl_object_namespace (const ProtobufCMessage *object);

//  Sets the object's apiVersion and kind from its kind, where missing.
void zubectl_object_set_type (ProtobufCMessage *object, const zube_kind_t *kind);

//  Whether two objects encode to the same JSON.
bool zubectl_objects_equal (const ProtobufCMessage *a, const ProtobufCMessage *b);

//  kubectl's AGE of an RFC 3339 timestamp ("5s", "3m2s", "4h", "12d"),
//  "<unknown>" when it is missing or unreadable.
const char *zubectl_age (const char *timestamp, char *buf, size_t size);
//  The same for a number of seconds.
const char *zubectl_human_duration (int64_t seconds, char *buf, size_t size);
//  Seconds since the epoch of an RFC 3339 timestamp, or -1.
int64_t zubectl_parse_time (const char *timestamp);

//  Compares two resourceVersions (decimal revisions): <0, 0, >0.
int zubectl_rv_compare (const char *a, const char *b);

//  A JSON string literal of text, quotes included (malloc'd).
char *zubectl_json_quote (const char *text);

//  Manifests (-f FILE|DIR|-). fn is called for each object that decoded,
//  in order; it returns 0, or -1 after printing its error. Documents that
//  do not decode are reported (`error: ...` naming file, document and
//  field) and skipped; a syntax error skips its whole file. Returns the
//  count of failures (documents and fn calls), or -1 when nothing could
//  be read at all.
typedef int (zubectl_object_fn) (zubectl_t *self, const char *source,
                                 zube_codec_object_t *object, void *arg);
//  Calls fn for each of args in TYPE/NAME form, in the current namespace
//  (cli/zubectl_delete.c); 0, or 1 when an argument is not that form,
//  names no known type, or fn failed for one (printed).
typedef int (zubectl_named_fn) (zubectl_t *self, const zube_kind_t *kind,
                                const char *namespace, const char *name, void *arg);
int zubectl_each_type_name (zubectl_t *self, char **args, int count, zubectl_named_fn *fn,
                            void *arg);
//  Calls fn for each object of kind that options select (kubectl's -l,
//  --field-selector, --all, -A), printing "No resources found ..." when
//  none; 0, or 1 when the list or fn failed.
int zubectl_each_listed (zubectl_t *self, const zube_kind_t *kind,
                         const zube_api_list_options_t *options, zubectl_named_fn *fn,
                         void *arg);
int zubectl_each_manifest_object (zubectl_t *self, const char *path,
                                  zubectl_object_fn *fn, void *arg);

//  Columns shared by get and describe (zubectl_get.c): a pod's STATUS
//  (and READY counts, restarts), a job's STATUS, a service's PORT(S).
const char *zubectl_pod_status (const Zube__Pod *pod, int *ready_p, int *total_p,
                                int *restarts_p);
const char *zubectl_job_status (const Zube__Job *job);
void zubectl_service_ports (const Zube__ServiceSpec *spec, char *buf, size_t size);

//  Handlers, one file per command family.
int zubectl_version (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
int zubectl_bus_services (zubectl_t *self, const zubectl_command_t *command, int argc,
                          char **argv);
int zubectl_bus_ping (zubectl_t *self, const zubectl_command_t *command, int argc,
                      char **argv);
int zubectl_apply (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
int zubectl_create (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
int zubectl_get (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
int zubectl_describe (zubectl_t *self, const zubectl_command_t *command, int argc,
                      char **argv);
int zubectl_delete (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
int zubectl_patch (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
int zubectl_label (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
//  cli/zubectl_scale.c
int zubectl_scale (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
//  cli/zubectl_node.c: what the node agents answer (node/<name>)
int zubectl_logs (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
int zubectl_exec (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
//  cli/zubectl_plugin.c and cli/zubectl_scheduler.c: command groups
extern const zubectl_command_t zubectl_plugin_commands[];
extern const zubectl_command_t zubectl_scheduler_commands[];
//  cli/zubectl_rollout.c and cli/zubectl_image.c
extern const zubectl_command_t zubectl_rollout_commands[];
extern const zubectl_command_t zubectl_image_commands[];
int zubectl_annotate (zubectl_t *self, const zubectl_command_t *command, int argc,
                      char **argv);
int zubectl_backup (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
int zubectl_restore (zubectl_t *self, const zubectl_command_t *command, int argc,
                     char **argv);

#endif
