/*  zubectl image: the "image" command group (being built: its commands are
    added to zubectl_image_commands as they land). */
#include "zubectl.h"

const zubectl_command_t zubectl_image_commands[] = {{0}};
