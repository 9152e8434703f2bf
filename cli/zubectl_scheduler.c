/*  zubectl scheduler explain|stats|config apply.
    Being written (issue 5); the group has no commands yet. */
#include "zubectl.h"

const zubectl_command_t zubectl_scheduler_commands[] = {{0}};
