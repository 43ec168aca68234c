/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * jwctl's commands (start, run, status, list, logs, stop, wait): they connect,
 * make the calls, write results and job output, and turn every failure into
 * one line in the user's words plus an exit code. Nothing here prints the
 * error line itself: main() does ("jwctl: " + message).
 */

#include "cli/args.h"
#include "cli/settings.h"

/* Exit code jwctl uses when its standard output was closed under it (as if
 * killed by SIGPIPE, without a message). */
#define CLI_EXIT_BROKEN_PIPE 141

/* Runs the parsed command. SIGINT,
 * SIGTERM and SIGHUP must be blocked in every thread (main() blocks them
 * before any thread exists): a signal thread here decides what they do
 * (run: stop the job and exit 130; wait, logs -f: exit 130; otherwise: die
 * by the signal as usual).
 * Returns the exit code; *ret_message is a malloc()ed line for stderr (an
 * error, or a warning with exit code 0) or NULL. */
int cli_execute(const CliArgs *args, const CliSettings *settings, char **ret_message);

/* kill -l [SIGNAL]: every signal's number and name, or one translated,
 * on stdout; needs no server. Exit code, *ret_message as cli_execute(). */
int cli_list_signals(const CliArgs *args, char **ret_message);
