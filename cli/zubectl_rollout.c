/*  zubectl rollout: the "rollout" command group (being built: its commands are
    added to zubectl_rollout_commands as they land). */
#include "zubectl.h"

const zubectl_command_t zubectl_rollout_commands[] = {{0}};
