/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the user named as JOB, made a job id: a full id as it is, an id
 * prefix or a name through one List call (cli/jobref.h matches). Every
 * command that takes a JOB (status, logs, stop, wait, and those to come)
 * calls cli_resolve_job(). Main thread only.
 */

#include "cli/context.h"

/* 0 and a malloc()ed id (lower case) in *ret_id, or the exit code with
 * cli->message set: not found (CLI_EXIT_FAILED), ambiguous (CLI_EXIT_USAGE,
 * the message lists the candidates), a failed call. */
int cli_resolve_job(Cli *cli, const char *arg, char **ret_id);
