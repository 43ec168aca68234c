/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * jwctl's command names and help texts. Static strings: nothing to free,
 * safe from any thread.
 */

#include "cli/args.h"

const char *cli_command_to_string(CliCommand c);
/* CLI_COMMAND_NONE for a word that names no command. */
CliCommand cli_command_from_string(const char *s);

/* Help texts. cli_usage(CLI_COMMAND_NONE) is the global one. */
const char *cli_usage(CliCommand c);
