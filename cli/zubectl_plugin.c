/*  zubectl plugin list|load|swap|unload --service SERVICE.
    Being written (issue 5); the group has no commands yet. */
#include "zubectl.h"

const zubectl_command_t zubectl_plugin_commands[] = {{0}};
