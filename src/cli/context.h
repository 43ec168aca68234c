/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The context one jwctl command runs in (Cli), and how a command ends: an
 * exit code plus at most one line for main() to print. Shared by the
 * commands (commands.c) and the Output streaming they use (stream.c).
 * Main thread only; the signal thread sees only cli->signals.
 */

#include <stdio.h>

#include "cli/args.h"
#include "cli/client.h"
#include "cli/settings.h"
#include "cli/signals.h"
#include "shared/macro.h"

typedef struct Cli {
        const CliArgs *args;
        const CliSettings *settings;
        CliClient *client;
        int out_fd;
        int err_fd;
        FILE *out;
        CliSignals signals;
        char *message;           /* malloc()ed line for stderr, or NULL */
} Cli;

/* Sets cli->message (replacing one set before) and returns code, so that a
 * command can `return cli_set_message(cli, CLI_EXIT_FAILED, ...)`. Code 0
 * with a message is a warning. */
_printf_(3, 4) int cli_set_message(Cli *cli, int code, const char *fmt, ...);
int cli_oom(Cli *cli);

/* A failed call in the user's words: action and job say what was being
 * done ("stop", job X: "stop job X"; job NULL: "list jobs"). Returns the
 * exit code (CLI_EXIT_CONNECT for transport failures, CLI_EXIT_FAILED for
 * refusals, CLI_EXIT_INTERRUPTED for a cancelled call). */
int cli_call_failed(Cli *cli, const CliCallStatus *st, const char *action, const char *job);
/* A unary call (cli_client_unary) failed with r: out of memory, or
 * cli_call_failed() for its status, which this releases. Returns the exit
 * code. */
int cli_unary_failed(Cli *cli, int r, CliCallStatus *st, const char *action, const char *job);

/* Writing our output failed with r (-errno); what names the stream. A
 * closed pipe ends quietly with CLI_EXIT_BROKEN_PIPE. */
int cli_write_failed(Cli *cli, int r, const char *what);
/* Flushes cli->out: CLI_EXIT_OK or the failure's exit code. */
int cli_flush_out(Cli *cli);

/* The exit code of a job that ended, as a shell reports it (128+N for
 * signal N); a job lost or still running is CLI_EXIT_FAILED with a message. */
int cli_job_exit_code(Cli *cli, const Jobworker__V1__JobStatus *st);

/* Used by the fan-out (cli/fanout.c), in commands.c: the command of
 * cli->args run on cli's connection (its exit code, as cli_execute()), and
 * Start of the job cli->args describes (0 and *ret_job_id malloc()ed, or an
 * exit code with cli->message). */
int cli_command_dispatch(Cli *cli);
int cli_command_start_job(Cli *cli, char **ret_job_id);
