/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * jwctl across many hosts: the same command on every host named by
 * --hosts / --hosts-file (cli/hosts.h), a saved run (@NAME) or HOST:ID,
 * at most --parallel hosts at once, each on its own connection (client +
 * TLS pump) with the usual timeouts; output through cli/fanout-output.h,
 * a summary table at the end (cli/fanout-summary.h).
 *
 * Threads: the main thread resolves the hosts, starts one worker thread per
 * running host, reads what the workers write (each host's stdout and
 * stderr go through a pipe of their own) and prints. The signal thread
 * (cli/signals.h) delivers Ctrl-C to every running host.
 */

#include <stdint.h>

#include "cli/args.h"
#include "cli/settings.h"

#define CLI_FANOUT_PARALLEL_DEFAULT 64
#define CLI_FANOUT_PARALLEL_MAX 4096

/* As cli_execute() (cli/commands.h), across hosts. */
int cli_fanout_execute(const CliArgs *args, const CliSettings *settings, char **ret_message);

/* The HTTP/2 receive window of each host's calls when at_once hosts are
 * served at the same time: 64 MiB over them all, at least 1 MiB, at most
 * the 4 MiB of a single jwctl (what the client holds per host while output
 * flows). */
uint32_t cli_fanout_stream_window(unsigned at_once);
