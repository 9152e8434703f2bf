/*  zubectl scale - spec.replicas through the scale subresource.
    Being written (issue 3); until then it says so. */
#include "zubectl.h"

int
zubectl_scale (zubectl_t *self, const zubectl_command_t *command, int argc, char **argv)
{
    (void) self, (void) command, (void) argc, (void) argv;
    zube_cli_error ("\"zubectl scale\" is not built yet");
    return 1;
}
