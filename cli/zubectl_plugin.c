/*  zubectl plugin list|load|swap|unload --service SERVICE: the plugins a
    host service runs, changed while it runs (DESIGN.md section 5). Each
    verb is the service's bus method plugins.<verb>, with a zube.Plugin
    (spec.path or spec.name) as the request; list answers a PluginList.
    zube-scheduler answers them now; other services will. */
#define _GNU_SOURCE
#include "zube.pb-c.h"
#include "zube/codec.h"
#include "zubectl.h"
#include <czmq.h>
#include <limits.h>
#include <stdlib.h>

//  Parses flags (--service) and at most one argument; NULL service: error.
static int
s_parse (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv,
         const char **service_p, const char **arg_p, bool want_arg)
{
    zube_cli_flag_t flags[] = {{.name = "service",
                                .type = ZUBE_CLI_STRING,
                                .value = service_p,
                                .value_name = "SERVICE",
                                .help = "The host service on the bus (scheduler)"},
                               {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 1 : -1;
    if (!*service_p) {
        zube_cli_error ("--service is required (e.g. --service scheduler)");
        return -1;
    }
    if (want_arg != (count == 1)) {
        zube_cli_error (want_arg ? "\"%s\" takes one argument"
                                 : "\"%s\" takes no argument",
                        self->command_path);
        return -1;
    }
    *arg_p = want_arg ? args[0] : NULL;
    return 0;
}

zube_bus_reply_t *
zubectl_service_call (zubectl_t *self, const char *service, const char *method,
                      const void *payload, size_t size)
{
    zube_bus_t *bus = zubectl_connect (self);
    if (!bus)
        return NULL;
    zube_bus_reply_t *reply = NULL;
    int rc = zube_bus_call (bus, service, method, payload, size,
                            zubectl_timeout_ms (self), &reply);
    if (rc == 0 && reply->status == ZUBE_OK)
        return reply;
    if (reply && reply->status == ZUBE_UNAVAILABLE)
        zube_cli_error ("service \"%s\" does not answer on the bus at %s: %s", service,
                        zubectl_endpoint (self),
                        reply->error ? reply->error : "no answer");
    else
        zubectl_print_server_error (reply ? reply->status : ZUBE_UNAVAILABLE,
                                    reply && reply->error ? reply->error : "no answer");
    zube_bus_reply_destroy (&reply);
    return NULL;
}

//  The same with a message (NULL: no payload).
static zube_bus_reply_t *
s_call (zubectl_t *self, const char *service, const char *method,
        const ProtobufCMessage *req)
{
    size_t size = req ? protobuf_c_message_get_packed_size (req) : 0;
    uint8_t *data = malloc (size ? size : 1);
    if (!data)
        return NULL;
    if (req)
        protobuf_c_message_pack (req, data);
    zube_bus_reply_t *reply = zubectl_service_call (self, service, method, data, size);
    free (data);
    return reply;
}

static int
s_list (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    const char *service = NULL, *arg = NULL;
    int rc = s_parse (self, command, argc, argv, &service, &arg, false);
    if (rc)
        return rc > 0 ? 0 : 1;
    zube_bus_reply_t *reply = s_call (self, service, "plugins.list", NULL);
    if (!reply)
        return 1;
    Zube__PluginList *list =
        zube__plugin_list__unpack (NULL, reply->payload_size, reply->payload);
    zube_bus_reply_destroy (&reply);
    if (!list) {
        zube_cli_error ("service \"%s\" answered plugins.list with an unreadable list",
                        service);
        return 1;
    }
    zube_cli_table_t *table = zube_cli_table_new (6);
    zube_cli_table_addv (table, "NAME", "FILE", "VERSION", "ABI", "USED-BY", "PATH");
    for (size_t i = 0; i < list->n_items; i++) {
        Zube__Plugin *plugin = list->items[i];
        char abi[16];
        snprintf (abi, sizeof abi, "%d",
                  plugin->status ? plugin->status->abi_version : 0);
        const char *used =
            plugin->status && plugin->status->message && *plugin->status->message
                ? plugin->status->message
                : "<none>";
        zube_cli_table_addv (table, plugin->metadata ? plugin->metadata->name : "",
                             plugin->spec ? plugin->spec->name : "",
                             plugin->spec ? plugin->spec->version : "", abi, used,
                             plugin->spec ? plugin->spec->path : "");
    }
    zube_cli_table_print (table, stdout);
    zube_cli_table_destroy (&table);
    zube__plugin_list__free_unpacked (list, NULL);
    return 0;
}

//  load, swap (a file) and unload (a name)
static int
s_change (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv,
          const char *verb)
{
    const char *service = NULL, *arg = NULL;
    int rc = s_parse (self, command, argc, argv, &service, &arg, true);
    if (rc)
        return rc > 0 ? 0 : 1;
    Zube__Plugin plugin = ZUBE__PLUGIN__INIT;
    Zube__PluginSpec spec = ZUBE__PLUGIN_SPEC__INIT;
    plugin.spec = &spec;
    spec.service = (char *)service;
    char path[PATH_MAX];
    bool file = !streq (verb, "unload");
    if (file) {
        //  The service runs elsewhere: give it an absolute path
        if (!realpath (arg, path)) {
            zube_cli_error ("%s: no such file", arg);
            return 1;
        }
        spec.path = path;
    } else
        spec.name = (char *)arg;
    char method[32];
    snprintf (method, sizeof method, "plugins.%s", verb);
    zube_bus_reply_t *reply = s_call (self, service, method, &plugin.base);
    if (!reply)
        return 1;
    zube_bus_reply_destroy (&reply);
    printf ("plugin %s %s in %s\n", arg,
            streq (verb, "load")   ? "loaded"
            : streq (verb, "swap") ? "swapped"
                                   : "unloaded",
            service);
    return 0;
}

static int
s_load (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    return s_change (self, command, argc, argv, "load");
}

static int
s_swap (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    return s_change (self, command, argc, argv, "swap");
}

static int
s_unload (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    return s_change (self, command, argc, argv, "unload");
}

const zubectl_command_t zubectl_plugin_commands[] = {
    {.name = "list",
     .summary = "List the plugins a service runs",
     .usage = "plugin list --service SERVICE [flags]",
     .description = "Lists the plugins loaded in a host service: framework name, file, "
                    "version, ABI, the profiles that use it, and the file it came from.",
     .examples = "  zubectl plugin list --service scheduler",
     .handler = s_list},
    {.name = "load",
     .summary = "Load a plugin file into a running service",
     .usage = "plugin load FILE --service SERVICE [flags]",
     .description = "Loads FILE (a shared object built against the plugin ABI) into the "
                    "service. A scheduler plugin is then available to profiles "
                    "(zubectl scheduler config apply). A plugin whose ABI does not match "
                    "or whose init fails is refused.",
     .examples = "  zubectl plugin load ./nodelabelpreference.so --service scheduler",
     .handler = s_load},
    {.name = "swap",
     .summary = "Replace a loaded plugin with another file, between two work items",
     .usage = "plugin swap FILE --service SERVICE [flags]",
     .description =
         "Loads FILE in place of the loaded plugin with the same name; every "
         "profile using it gets a new instance with the same args, between two "
         "scheduling cycles. If the new file is refused (ABI, init, args), the "
         "running plugin stays and the error says why.",
     .examples = "  zubectl plugin swap ./noderesourcesfit-v2.so --service scheduler",
     .handler = s_swap},
    {.name = "unload",
     .summary = "Unload a plugin no profile uses",
     .usage = "plugin unload NAME --service SERVICE [flags]",
     .examples = "  zubectl plugin unload NodeLabelPreference --service scheduler",
     .handler = s_unload},
    {0}};
