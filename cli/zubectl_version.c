/*  zubectl version - the client's version and the broker's (bus/info),
    like kubectl's Client Version / Server Version. */
#include <stdio.h>
#include <stdlib.h>
#include "bus.pb-c.h"
#include "zubectl.h"

#define ZUBECTL_BUS_PROTOCOL 1

static void
s_print_json (zubectl_t *self, Zube__BusInfoReply *info)
{
    printf ("{\n    \"clientVersion\": {\n        \"version\": ");
    zube_cli_json_string (stdout, ZUBE_VERSION_STRING);
    printf (",\n        \"abiVersion\": %d,\n        \"busProtocol\": %d\n    }", ZUBE_ABI_VERSION,
            ZUBECTL_BUS_PROTOCOL);
    if (info) {
        printf (",\n    \"serverVersion\": {\n        \"version\": ");
        zube_cli_json_string (stdout, info->version ? info->version : "");
        printf (",\n        \"broker\": ");
        zube_cli_json_string (stdout, zubectl_endpoint (self));
        printf (",\n        \"secure\": %s\n    }", info->secure ? "true" : "false");
    }
    printf ("\n}\n");
}

static void
s_print_yaml (zubectl_t *self, Zube__BusInfoReply *info)
{
    //  JSON string literals are valid YAML double-quoted scalars.
    printf ("clientVersion:\n  version: ");
    zube_cli_json_string (stdout, ZUBE_VERSION_STRING);
    printf ("\n  abiVersion: %d\n  busProtocol: %d\n", ZUBE_ABI_VERSION, ZUBECTL_BUS_PROTOCOL);
    if (info) {
        printf ("serverVersion:\n  version: ");
        zube_cli_json_string (stdout, info->version ? info->version : "");
        printf ("\n  broker: ");
        zube_cli_json_string (stdout, zubectl_endpoint (self));
        printf ("\n  secure: %s\n", info->secure ? "true" : "false");
    }
}

int
zubectl_version (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    bool client_only = false;
    zube_cli_flag_t flags[] = {
        {.name = "client", .type = ZUBE_CLI_BOOL, .value = &client_only,
         .help = "Print the client version only (no broker needed)"},
        {0}};
    char *args[argc + 1];
    int count = zubectl_parse (self, command, flags, argc, argv, args);
    if (count < 0)
        return count == ZUBE_CLI_HELP ? 0 : 1;
    if (count > 0) {
        zube_cli_error ("unexpected argument \"%s\": \"%s\" takes none", args[0],
                        self->command_path);
        return 1;
    }
    Zube__BusInfoReply *info = NULL;
    int rc = 0;
    if (self->output_format == ZUBECTL_OUTPUT_DEFAULT) {
        //  Print the client's version first, so it shows even without a broker.
        printf ("Client Version: %s\n", ZUBE_VERSION_STRING);
        fflush (stdout);
    }
    if (!client_only) {
        Zube__BusInfoRequest request = ZUBE__BUS_INFO_REQUEST__INIT;
        if (zubectl_call (self, "bus", "info", &request.base, &zube__bus_info_reply__descriptor,
                          (ProtobufCMessage **) &info)
            != 0)
            rc = 1;
    }
    if (self->output_format == ZUBECTL_OUTPUT_DEFAULT) {
        if (info)
            printf ("Server Version: %s\n", info->version ? info->version : "unknown");
    }
    else
    if (rc == 0) {
        if (self->output_format == ZUBECTL_OUTPUT_JSON)
            s_print_json (self, info);
        else
            s_print_yaml (self, info);
    }
    if (info)
        zube__bus_info_reply__free_unpacked (info, NULL);
    return rc;
}
