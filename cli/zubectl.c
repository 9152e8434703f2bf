/*  zubectl - the zube command line, kubectl's verbs and flags.

    This file holds the command table, the global flags, help, and what
    every command shares (connection, calls, errors, -o printing). Each
    command family lives in its own file (zubectl_version.c,
    zubectl_bus.c, ...); adding a verb is one entry in s_commands. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zube/codec.h"
#include "zubectl.h"

//  Command groups
static const zubectl_command_t s_bus_commands[] = {
    {.name = "services",
     .summary = "List the services registered on the bus, their instances and the broker's counters",
     .usage = "bus services [-o wide|yaml|json] [flags]",
     .description = "Lists every service the broker knows, with its live instances, the requests\n"
                    "in flight and those waiting for an instance, then the broker's counters.\n"
                    "The broker's own service \"bus\" is answered inside the broker and is not\n"
                    "listed.",
     .examples = "  # The services and counters of the local cluster\n"
                 "  zubectl bus services\n\n"
                 "  # With instance names, senders, requests handled and idle times\n"
                 "  zubectl bus services -o wide\n\n"
                 "  # Everything, as JSON\n"
                 "  zubectl bus services -o json",
     .outputs = "wide,yaml,json",
     .handler = zubectl_bus_services},
    {.name = "ping",
     .summary = "Measure round trips through the broker",
     .usage = "bus ping [--count N] [--interval DURATION] [--size BYTES] [flags]",
     .description = "Sends echo requests to the broker's \"ping\" method and prints each round\n"
                    "trip time, then a summary. Exits 1 when no reply came back.",
     .examples = "  # Three round trips\n"
                 "  zubectl bus ping --count 3",
     .handler = zubectl_bus_ping},
    {0}};

static const zubectl_command_t s_commands[] = {
    {.name = "apply",
     .summary = "Apply a configuration to a resource by file name or stdin",
     .usage = "apply -f FILENAME [flags]",
     .description = "Creates each object of the manifests, or updates it when it exists. Files hold\n"
                    "YAML documents separated by --- or JSON values; a directory contributes its\n"
                    ".yaml, .yml and .json files in name order; - reads standard input. The\n"
                    "configuration applied is kept in the annotation\n"
                    "kubectl.kubernetes.io/last-applied-configuration, so applying the same\n"
                    "manifest again reports \"unchanged\". A document that does not decode is\n"
                    "reported and skipped (a syntax error skips its whole file); the others are\n"
                    "applied, and the exit status is 1.",
     .examples = "  # Apply the configuration in pod.yaml\n"
                 "  zubectl apply -f ./pod.yaml\n\n"
                 "  # Apply every manifest of a directory\n"
                 "  zubectl apply -f ./manifests/\n\n"
                 "  # Apply the JSON passed into stdin\n"
                 "  cat pod.json | zubectl apply -f -",
     .outputs = "name",
     .handler = zubectl_apply},
    {.name = "create",
     .summary = "Create a resource from a file or from stdin",
     .usage = "create -f FILENAME [flags] | create namespace NAME",
     .description = "Creates each object of the manifests; an object that exists already is an\n"
                    "error (AlreadyExists).",
     .examples = "  # Create a pod using the data in pod.json\n"
                 "  zubectl create -f ./pod.json\n\n"
                 "  # Create a namespace\n"
                 "  zubectl create namespace dev",
     .outputs = "name",
     .handler = zubectl_create},
    {.name = "get",
     .summary = "Display one or many resources",
     .usage = "get RESOURCE[,RESOURCE...] [NAME...] [-n NS | -A] [-l SELECTOR] "
              "[--field-selector SELECTOR] [-o wide|yaml|json|name] [-w] [flags]",
     .description = "Prints a table of the most important information about the resources, or\n"
                    "the objects themselves with -o yaml or -o json. With -w, prints each\n"
                    "change after the list until interrupted (or until --request-timeout).",
     .examples = "  # List all pods in ps output format\n"
                 "  zubectl get pods\n\n"
                 "  # List pods with more information (such as node name)\n"
                 "  zubectl get pods -o wide\n\n"
                 "  # List pods and services of every namespace\n"
                 "  zubectl get pods,services -A\n\n"
                 "  # A single pod in YAML\n"
                 "  zubectl get pod web -o yaml\n\n"
                 "  # Pods labelled app=web, and watch them\n"
                 "  zubectl get pods -l app=web -w",
     .outputs = "wide,yaml,json,name",
     .handler = zubectl_get},
    {.name = "describe",
     .summary = "Show details of a specific resource or group of resources",
     .usage = "describe RESOURCE [NAME...] [-n NS] [-l SELECTOR] [flags]",
     .description = "Prints a detailed description of the objects, with the events that involve\n"
                    "them.",
     .examples = "  # Describe a node\n"
                 "  zubectl describe nodes node-1\n\n"
                 "  # Describe a pod\n"
                 "  zubectl describe pod web",
     .handler = zubectl_describe},
    {.name = "delete",
     .summary = "Delete resources by file names, stdin, resources and names, or by resources and label selector",
     .usage = "delete (-f FILENAME | RESOURCE (NAME... | -l SELECTOR | --all)) [flags]",
     .examples = "  # Delete a pod by name\n"
                 "  zubectl delete pod web\n\n"
                 "  # Delete what pod.yaml describes\n"
                 "  zubectl delete -f ./pod.yaml\n\n"
                 "  # Delete pods labelled app=web, at once\n"
                 "  zubectl delete pods -l app=web --now",
     .outputs = "name",
     .handler = zubectl_delete},
    {.name = "patch",
     .summary = "Update fields of a resource",
     .usage = "patch RESOURCE NAME -p PATCH [--type merge|strategic] [flags]",
     .description = "Applies a patch to an object: --type strategic (the default; lists merge by\n"
                    "Kubernetes' merge keys, see zube-apiserver(1)), merge (RFC 7386) or json\n"
                    "(RFC 6902).",
     .examples = "  # Partially update a node\n"
                 "  zubectl patch node node-1 -p '{\"spec\":{\"unschedulable\":true}}'",
     .outputs = "yaml,json,name",
     .handler = zubectl_patch},
    {.name = "scale",
     .summary = "Set a new size for a deployment, replica set, stateful set or replication controller",
     .usage = "scale RESOURCE NAME --replicas COUNT [--current-replicas COUNT] [flags]",
     .description = "Sets spec.replicas through the resource's scale subresource. With\n"
                    "--current-replicas, the change is made only if the current size is that\n"
                    "(a precondition; otherwise a Conflict).",
     .examples = "  # Scale the replica set web to 3\n"
                 "  zubectl scale replicaset web --replicas 3\n\n"
                 "  # Scale deployment web from 2 to 5, only if it has 2 now\n"
                 "  zubectl scale deployment web --current-replicas 2 --replicas 5",
     .outputs = "yaml,json,name",
     .handler = zubectl_scale},
    {.name = "label",
     .summary = "Update the labels on a resource",
     .usage = "label RESOURCE NAME KEY_1=VAL_1 ... KEY_N=VAL_N [KEY-] [--overwrite] [flags]",
     .description = "A label key=value adds or sets a label (changing an existing value needs\n"
                    "--overwrite); key- removes it.",
     .examples = "  # Label pod web with tier=frontend\n"
                 "  zubectl label pods web tier=frontend\n\n"
                 "  # Remove the label tier\n"
                 "  zubectl label pods web tier-",
     .outputs = "yaml,json,name",
     .handler = zubectl_label},
    {.name = "annotate",
     .summary = "Update the annotations on a resource",
     .usage = "annotate RESOURCE NAME KEY_1=VAL_1 ... KEY_N=VAL_N [KEY-] [--overwrite] [flags]",
     .examples = "  # Annotate pod web\n"
                 "  zubectl annotate pods web description='my frontend'",
     .outputs = "yaml,json,name",
     .handler = zubectl_annotate},
    {.name = "logs",
     .summary = "Print the logs for a container in a pod",
     .usage = "logs POD [-c CONTAINER] [--previous] [--tail N] [-f] [flags]",
     .description = "Asks the node agent that runs the pod (its bus service node/<node>) for\n"
                    "the container's log. The container may be omitted when the pod has one.",
     .examples = "  # The log of pod web's only container\n"
                 "  zubectl logs web\n\n"
                 "  # The last 20 lines of container sidecar of the previous run\n"
                 "  zubectl logs web -c sidecar --previous --tail 20",
     .handler = zubectl_logs},
    {.name = "exec",
     .summary = "Execute a command in a container",
     .usage = "exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...] [flags]",
     .description = "Runs COMMAND in the container through the node agent that runs the pod\n"
                    "(its bus service node/<node>), prints its output, and exits with its exit\n"
                    "code. With -i standard input is streamed to it, with -t it runs with a\n"
                    "terminal (zubectl's own in raw mode, its size followed).",
     .examples = "  # Run date in pod web\n"
                 "  zubectl exec web -- date\n\n"
                 "  # A shell in pod web\n"
                 "  zubectl exec -it web -- sh",
     .handler = zubectl_exec},
    {.name = "backup",
     .summary = "Save a snapshot of the cluster state to a file",
     .usage = "backup FILE [flags]",
     .description = "Reads a snapshot of the apiserver's store in chunks and writes it to FILE\n"
                    "(through a temporary file renamed into place).",
     .examples = "  zubectl backup /var/backups/zube-$(date +%F).snap",
     .handler = zubectl_backup},
    {.name = "restore",
     .summary = "Restore the cluster state from a snapshot file",
     .usage = "restore FILE [flags]",
     .description = "Sends a snapshot written by \"zubectl backup\" to the apiserver, which replaces\n"
                    "its store's contents with it. The snapshot must come from the same kind of\n"
                    "store; a bad snapshot leaves the store unchanged.",
     .examples = "  zubectl restore /var/backups/zube-2026-01-01.snap",
     .handler = zubectl_restore},
    {.name = "version",
     .summary = "Print the client and broker version information",
     .usage = "version [--client] [-o yaml|json] [flags]",
     .description = "Prints the version of zubectl and, unless --client is given, of the broker\n"
                    "it connects to.",
     .examples = "  # Client and broker versions\n"
                 "  zubectl version\n\n"
                 "  # Client version only, as YAML\n"
                 "  zubectl version --client -o yaml",
     .outputs = "yaml,json",
     .handler = zubectl_version},
    {.name = "plugin",
     .summary = "List, load, swap and unload the plugins of a running service",
     .usage = "plugin COMMAND --service SERVICE [flags]",
     .description = "Every host service answers plugins.list, plugins.load, plugins.swap and\n"
                    "plugins.unload on the bus (zube-plugin(3)).",
     .subcommands = zubectl_plugin_commands},
    {.name = "rollout",
     .summary = "Manage the rollout of a deployment: status, history, undo, restart",
     .usage = "rollout COMMAND deployment/NAME [flags]",
     .subcommands = zubectl_rollout_commands},
    {.name = "image",
     .summary = "Import container images into a node's image store",
     .usage = "image COMMAND [flags]",
     .subcommands = zubectl_image_commands},
    {.name = "scheduler",
     .summary = "Explain, inspect and reconfigure the running scheduler",
     .usage = "scheduler COMMAND [flags]",
     .subcommands = zubectl_scheduler_commands},
    {.name = "bus",
     .summary = "Inspect the message bus: registered services, round trips",
     .usage = "bus COMMAND [flags]",
     .description = "Commands that talk to the broker itself (its \"bus\" service).",
     .subcommands = s_bus_commands},
    {0}};

static const char *s_top_description =
    "zubectl controls a zube cluster: it talks to the broker named by the client\n"
    "config (--config, $ZUBE_CONFIG, ~/.zube/config, or ~/.zube/cluster/config, which \"zube up\"\n"
    "writes). See zubectl(1), zube-config(5) and zube(7).";

#define ZUBECTL_GLOBAL_FLAG_COUNT 9

static void
s_global_flags (zubectl_t *self, zube_cli_flag_t *flags)
{
    zube_cli_flag_t table[] = {
        {.name = "config", .type = ZUBE_CLI_STRING, .value = &self->config_path,
         .value_name = "FILE",
         .help = "Client config file (default $ZUBE_CONFIG, else ~/.zube/config, else\n"
                 "~/.zube/cluster/config)"},
        {.name = "broker", .type = ZUBE_CLI_STRING, .value = &self->broker,
         .value_name = "ENDPOINT", .help = "Broker endpoint, overriding the config (tcp://HOST:PORT)"},
        {.name = "insecure", .type = ZUBE_CLI_BOOL, .value = &self->insecure,
         .help = "Connect without CurveZMQ, to a broker started with --insecure"},
        {.name = "certs-dir", .type = ZUBE_CLI_STRING, .value = &self->certs_dir,
         .value_name = "DIR", .help = "Certificates directory, overriding the config"},
        {.name = "name", .type = ZUBE_CLI_STRING, .value = &self->name, .value_name = "NAME",
         .help = "Name of this client's certificate in the certificates directory"},
        {.name = "request-timeout", .type = ZUBE_CLI_DURATION, .value = &self->request_timeout_ms,
         .value_name = "DURATION",
         .help = "How long to wait for one request (5s, 500ms, 1m; plain number: seconds; 0: no limit)"},
        {.name = "namespace", .short_name = 'n', .type = ZUBE_CLI_STRING,
         .value = &self->namespace_flag, .value_name = "NAMESPACE",
         .help = "The namespace of this request (default \"default\")"},
        {.name = "output", .short_name = 'o', .type = ZUBE_CLI_STRING, .value = &self->output,
         .value_name = "FORMAT", .help = "Output format: wide, yaml, json or name (where the command offers it)"},
        {0}};
    _Static_assert (sizeof table == ZUBECTL_GLOBAL_FLAG_COUNT * sizeof table[0],
                    "ZUBECTL_GLOBAL_FLAG_COUNT must count the global flags and the end entry");
    memcpy (flags, table, sizeof table);
}

static void
s_print_command_list (FILE *out, const char *title, const zubectl_command_t *commands)
{
    fprintf (out, "\n%s:\n", title);
    for (const zubectl_command_t *command = commands; command->name; command++)
        fprintf (out, "  %-12s %s\n", command->name, command->summary);
}

static void
s_print_top_help (zubectl_t *self, FILE *out)
{
    zube_cli_flag_t global[ZUBECTL_GLOBAL_FLAG_COUNT];
    s_global_flags (self, global);
    const zube_cli_flag_t *tables[] = {global, NULL};
    fprintf (out, "%s\n", s_top_description);
    s_print_command_list (out, "Commands", s_commands);
    fprintf (out, "\nUsage:\n  zubectl COMMAND [flags]\n");
    zube_cli_print_flags (out, "Global flags", tables);
    fprintf (out, "\nUse \"zubectl COMMAND --help\" for more information about a command.\n");
}

static void
s_print_command_help (zubectl_t *self, const zubectl_command_t *command,
                      const zube_cli_flag_t *flags, FILE *out)
{
    fprintf (out, "%s.\n", command->summary);
    if (command->description)
        fprintf (out, "\n%s\n", command->description);
    if (command->subcommands)
        s_print_command_list (out, "Commands", command->subcommands);
    if (command->examples)
        fprintf (out, "\nExamples:\n%s\n", command->examples);
    fprintf (out, "\nUsage:\n  zubectl %s\n", command->usage);
    if (flags) {
        const zube_cli_flag_t *own[] = {flags, NULL};
        zube_cli_print_flags (out, "Flags", own);
    }
    zube_cli_flag_t global[ZUBECTL_GLOBAL_FLAG_COUNT];
    s_global_flags (self, global);
    const zube_cli_flag_t *tables[] = {global, NULL};
    zube_cli_print_flags (out, "Global flags", tables);
    if (command->subcommands)
        fprintf (out, "\nUse \"%s COMMAND --help\" for more information about a command.\n",
                 self->command_path);
}

//  Edit distance, for "Did you mean this?".
static int
s_distance (const char *a, const char *b)
{
    size_t la = strlen (a), lb = strlen (b);
    if (la > 32 || lb > 32)
        return 99;
    int d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int) i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int) j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            d[i][j] = best;
        }
    return d[la][lb];
}

static int
s_unknown_command (const char *name, const char *parent, const zubectl_command_t *commands)
{
    zube_cli_error ("unknown command \"%s\" for \"%s\"", name, parent);
    bool header = false;
    for (const zubectl_command_t *command = commands; command->name; command++)
        if (s_distance (name, command->name) <= 2
            || (strlen (name) >= 2 && strncmp (command->name, name, strlen (name)) == 0)) {
            if (!header)
                fprintf (stderr, "\nDid you mean this?\n");
            header = true;
            fprintf (stderr, "\t%s\n", command->name);
        }
    fprintf (stderr, "%sRun '%s --help' for usage.\n", header ? "\n" : "", parent);
    return 1;
}

static const zubectl_command_t *
s_find_command (const zubectl_command_t *commands, const char *name)
{
    for (const zubectl_command_t *command = commands; command->name; command++)
        if (strcmp (command->name, name) == 0)
            return command;
    return NULL;
}

static int
s_check_output (zubectl_t *self, const zubectl_command_t *command)
{
    self->output_format = ZUBECTL_OUTPUT_DEFAULT;
    if (!self->output || !*self->output)
        return 0;
    static const struct {
        const char *name;
        zubectl_output_t format;
    } formats[] = {
        {.name = "wide", .format = ZUBECTL_OUTPUT_WIDE},
        {.name = "yaml", .format = ZUBECTL_OUTPUT_YAML},
        {.name = "json", .format = ZUBECTL_OUTPUT_JSON},
        {.name = "name", .format = ZUBECTL_OUTPUT_NAME},
    };
    const char *allowed = command->outputs ? command->outputs : "";
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp (self->output, formats[i].name) != 0)
            continue;
        //  Match whole words in the comma-separated list.
        const char *at = allowed;
        size_t length = strlen (formats[i].name);
        while ((at = strstr (at, formats[i].name))) {
            bool starts = at == allowed || at[-1] == ',';
            bool ends = at[length] == 0 || at[length] == ',';
            if (starts && ends) {
                self->output_format = formats[i].format;
                return 0;
            }
            at += length;
        }
    }
    if (*allowed)
        zube_cli_error ("unable to match a printer suitable for the output format \"%s\", "
                        "allowed formats are: %s", self->output, allowed);
    else
        zube_cli_error ("\"%s\" has no output formats to choose from (-o %s)",
                        self->command_path, self->output);
    return -1;
}

int
zubectl_parse (zubectl_t *self, const zubectl_command_t *command,
               const zube_cli_flag_t *flags, int argc, char **argv, char **positional)
{
    zube_cli_flag_t global[ZUBECTL_GLOBAL_FLAG_COUNT];
    s_global_flags (self, global);
    static const zube_cli_flag_t none[] = {{0}};
    const zube_cli_flag_t *tables[] = {flags ? flags : none, global, NULL};
    int count = zube_cli_parse (self->command_path, tables, argc, argv, positional, false);
    if (count == ZUBE_CLI_HELP) {
        s_print_command_help (self, command, flags, stdout);
        return ZUBE_CLI_HELP;
    }
    if (count >= 0 && s_check_output (self, command) != 0)
        return ZUBE_CLI_ERROR;
    return count;
}

int
zubectl_parse_one (zubectl_t *self, const zubectl_command_t *command,
                   const zube_cli_flag_t *flags, int argc, char **argv, char **positional,
                   const char *what)
{
    int count = zubectl_parse (self, command, flags, argc, argv, positional);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : -1;
    if (count != 1) {
        zube_cli_error ("expected exactly one %s, got %d arguments (see \"%s --help\")", what,
                        count, self->command_path);
        return -1;
    }
    return 1;
}

static void
s_apply_log_level (void)
{
    //  A command line prints results, not the library's log lines; errors
    //  still show. $ZUBE_LOG_LEVEL turns the rest on for debugging.
    const char *level = getenv ("ZUBE_LOG_LEVEL");
    int parsed = level ? zube_log_level_parse (level) : -1;
    zube_log_set_level (parsed >= 0 ? (zube_log_level_t) parsed : ZUBE_LOG_ERROR);
}

zube_bus_t *
zubectl_connect (zubectl_t *self)
{
    if (self->bus)
        return self->bus;
    char error[1024] = "";
    if (!self->config) {
        self->config = zube_config_resolve (self->config_path, error, sizeof error);
        if (!self->config) {
            zube_cli_error ("%s", error);
            return NULL;
        }
        if (self->broker)
            zube_config_set_broker (self->config, self->broker);
        //  Naming certificates on the command line means a secure connection,
        //  unless --insecure is given as well.
        if (self->certs_dir) {
            zube_config_set_certs_dir (self->config, self->certs_dir);
            zube_config_set_insecure (self->config, false);
        }
        if (self->name) {
            zube_config_set_name (self->config, self->name);
            zube_config_set_insecure (self->config, false);
        }
        if (self->insecure)
            zube_config_set_insecure (self->config, true);
    }
    if (zube_config_check (self->config, error, sizeof error) != 0) {
        zube_cli_error ("%s", error);
        return NULL;
    }
    zube_bus_config_t bus_config;
    zube_config_bus_config (self->config, &bus_config);
    self->bus = zube_bus_new (&bus_config);
    if (!self->bus)
        zube_cli_error ("cannot open a connection to the broker at %s", bus_config.endpoint);
    return self->bus;
}

int
zubectl_timeout_ms (zubectl_t *self)
{
    if (self->request_timeout_ms == 0)
        return 24 * 3600 * 1000;
    if (self->request_timeout_ms > 0)
        return self->request_timeout_ms > 24 * 3600 * 1000 ? 24 * 3600 * 1000
                                                           : (int) self->request_timeout_ms;
    return self->config ? zube_config_timeout_ms (self->config) : ZUBE_BUS_DEFAULT_TIMEOUT_MS;
}

const char *
zubectl_endpoint (zubectl_t *self)
{
    if (self->config)
        return zube_config_broker (self->config);
    return self->broker ? self->broker : ZUBE_BUS_DEFAULT_ENDPOINT;
}

void
zubectl_print_server_error (zube_status_t status, const char *message)
{
    fprintf (stderr, "Error from server (%s): %s\n", zube_status_reason (status),
             message && *message ? message : "(no message)");
}

int
zubectl_call (zubectl_t *self, const char *service, const char *method,
              const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
              ProtobufCMessage **reply_p)
{
    *reply_p = NULL;
    zube_bus_t *bus = zubectl_connect (self);
    if (!bus)
        return -1;
    size_t size = req ? protobuf_c_message_get_packed_size (req) : 0;
    uint8_t *packed = size ? malloc (size) : NULL;
    if (size && !packed) {
        zube_cli_error ("out of memory");
        return -1;
    }
    if (size)
        protobuf_c_message_pack (req, packed);
    int timeout_ms = zubectl_timeout_ms (self);
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (bus, service, method, packed, size, timeout_ms, &reply);
    free (packed);
    char timeout_text[32];
    zube_cli_duration_format (timeout_ms, timeout_text, sizeof timeout_text);
    if (rc != 0) {
        //  Nothing came back: say whether we ever reached the broker.
        if (!zube_bus_connected (bus))
            zube_cli_error ("unable to connect to the broker at %s: no answer within %s "
                            "(is it running? \"zube status\" tells for a local cluster)",
                            zubectl_endpoint (self), timeout_text);
        else
            zube_cli_error ("no reply from %s/%s within %s (%s%s%s)", service, method,
                            timeout_text, zube_status_reason (reply ? reply->status : ZUBE_UNAVAILABLE),
                            reply && reply->error ? ": " : "",
                            reply && reply->error ? reply->error : "");
        zube_bus_reply_destroy (&reply);
        return -1;
    }
    if (reply->status != ZUBE_OK) {
        zubectl_print_server_error (reply->status, reply->error);
        zube_bus_reply_destroy (&reply);
        return -1;
    }
    if (reply_desc) {
        *reply_p = protobuf_c_message_unpack (reply_desc, NULL, reply->payload_size,
                                              reply->payload);
        if (!*reply_p) {
            zube_cli_error ("the reply of %s/%s is not a valid %s", service, method,
                            reply_desc->name);
            zube_bus_reply_destroy (&reply);
            return -1;
        }
    }
    zube_bus_reply_destroy (&reply);
    return 0;
}

int
zubectl_print_message (zubectl_t *self, const ProtobufCMessage *msg)
{
    char *text = NULL;
    if (self->output_format == ZUBECTL_OUTPUT_YAML)
        text = zube_codec_encode_yaml (msg);
    else
        text = zube_codec_encode_json (msg, true);
    if (!text) {
        zube_cli_error ("cannot encode the %s as %s", msg->descriptor->name,
                        self->output_format == ZUBECTL_OUTPUT_YAML ? "YAML" : "JSON");
        return -1;
    }
    size_t length = strlen (text);
    fputs (text, stdout);
    if (length == 0 || text[length - 1] != '\n')
        fputc ('\n', stdout);
    free (text);
    return 0;
}

//  Runs the command at argv[0] (of the group `commands` under `parent`).
static int
s_dispatch (zubectl_t *self, const zubectl_command_t *commands, const char *parent,
            int argc, char **argv)
{
    const zubectl_command_t *command = s_find_command (commands, argv[0]);
    if (!command)
        return s_unknown_command (argv[0], parent, commands);
    snprintf (self->command_path, sizeof self->command_path, "%s %s", parent, command->name);
    if (command->handler)
        return command->handler (self, command, argc - 1, argv + 1);

    //  A group: global flags may come before the subcommand.
    zube_cli_flag_t global[ZUBECTL_GLOBAL_FLAG_COUNT];
    s_global_flags (self, global);
    const zube_cli_flag_t *tables[] = {global, NULL};
    char *rest[argc + 1];
    int count = zube_cli_parse (self->command_path, tables, argc - 1, argv + 1, rest, true);
    if (count == ZUBE_CLI_ERROR)
        return 1;
    if (count == ZUBE_CLI_HELP || count == 0) {
        s_print_command_help (self, command, NULL, stdout);
        return 0;
    }
    char group_path[128];
    snprintf (group_path, sizeof group_path, "%s", self->command_path);
    return s_dispatch (self, command->subcommands, group_path, count, rest);
}

//  zubectl help [COMMAND [SUBCOMMAND]]
static int
s_help (zubectl_t *self, int argc, char **argv)
{
    const zubectl_command_t *commands = s_commands;
    const zubectl_command_t *command = NULL;
    snprintf (self->command_path, sizeof self->command_path, "zubectl");
    for (int i = 0; i < argc; i++) {
        if (!commands)
            break;
        command = s_find_command (commands, argv[i]);
        if (!command)
            return s_unknown_command (argv[i], self->command_path, commands);
        size_t used = strlen (self->command_path);
        snprintf (self->command_path + used, sizeof self->command_path - used, " %s",
                  command->name);
        commands = command->subcommands;
    }
    if (!command) {
        s_print_top_help (self, stdout);
        return 0;
    }
    //  Ask the handler for its help so its own flags are listed.
    if (command->handler) {
        char *help_argv[] = {"--help", NULL};
        return command->handler (self, command, 1, help_argv);
    }
    s_print_command_help (self, command, NULL, stdout);
    return 0;
}

int
main (int argc, char **argv)
{
    zubectl_t self = {.request_timeout_ms = -1};
    snprintf (self.command_path, sizeof self.command_path, "zubectl");
    zube_log_set_component ("zubectl");
    s_apply_log_level ();

    zube_cli_flag_t global[ZUBECTL_GLOBAL_FLAG_COUNT];
    s_global_flags (&self, global);
    const zube_cli_flag_t *tables[] = {global, NULL};
    char *rest[argc + 1];
    int count = zube_cli_parse ("zubectl", tables, argc - 1, argv + 1, rest, true);
    int rc = 0;
    if (count == ZUBE_CLI_ERROR)
        rc = 1;
    else
    if (count == ZUBE_CLI_HELP || count == 0)
        s_print_top_help (&self, stdout);
    else
    if (strcmp (rest[0], "help") == 0)
        rc = s_help (&self, count - 1, rest + 1);
    else
        rc = s_dispatch (&self, s_commands, "zubectl", count, rest);

    zube_api_destroy (&self.api);
    zube_bus_destroy (&self.bus);
    zube_config_destroy (&self.config);
    return rc ? 1 : 0;
}
