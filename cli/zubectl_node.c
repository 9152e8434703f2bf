/*  zubectl logs / exec - what the node agents answer on node/<name>.
    Being written (issue 4); until then they say so. */
#include "zubectl.h"

int
zubectl_logs (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    (void) self, (void) command, (void) argc, (void) argv;
    zube_cli_error ("\"zubectl logs\" is not built yet");
    return 1;
}

int
zubectl_exec (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    (void) self, (void) command, (void) argc, (void) argv;
    zube_cli_error ("\"zubectl exec\" is not built yet");
    return 1;
}
