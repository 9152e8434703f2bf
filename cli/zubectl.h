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
    //  The command being run, for messages: "zubectl bus ping".
    char command_path[128];
    //  Opened on first use by zubectl_connect.
    zube_config_t *config;
    zube_bus_t *bus;
};

//  Parses a command's arguments: its own flags and the global flags, in
//  any order. On -h/--help prints the command's help. Checks -o against
//  command->outputs. Returns the count of positional arguments (stored in
//  positional, room for argc), ZUBE_CLI_HELP, or ZUBE_CLI_ERROR (printed).
int zubectl_parse (zubectl_t *self, const zubectl_command_t *command,
                   const zube_cli_flag_t *flags, int argc, char **argv, char **positional);

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

//  Prints `Error from server (NotFound): message` to stderr.
void zubectl_print_server_error (zube_status_t status, const char *message);

//  Prints msg as YAML or JSON (pretty) through the codec, for -o yaml/json.
//  Returns 0, or -1 after printing an error.
int zubectl_print_message (zubectl_t *self, const ProtobufCMessage *msg);

//  Handlers, one file per command family.
int zubectl_version (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv);
int zubectl_bus_services (zubectl_t *self, const zubectl_command_t *command, int argc,
                          char **argv);
int zubectl_bus_ping (zubectl_t *self, const zubectl_command_t *command, int argc,
                      char **argv);

#endif
