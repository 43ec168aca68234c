/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `jwctl run` forwarding its standard input to the job: an Input call fed
 * by a thread of its own, beside the output follower on the main thread.
 *
 * Threads: cli_input_start() and cli_input_stop() on the main thread; the
 * sender thread touches only its own call (never the CliClient, which a
 * reconnect of the follower may replace; freeing it cancels the call, whose
 * connection is the one that was lost).
 */

#include <stdbool.h>
#include <stdint.h>

#include <grpc/status.h>

#include "cli/args.h"
#include "cli/client.h"

typedef struct CliInput CliInput;

/* Whether `run` opens the job's stdin and forwards fd to it: not with -n,
 * not when fd is a terminal (without -t) or /dev/null or closed, so that
 * `jwctl run -- true` in a script costs nothing more. */
bool cli_input_wanted(const CliArgs *a, int fd);

/* Starts forwarding fd (borrowed: read until EOF, then eof is sent) to the
 * stdin of job_id over a new Input call of c. tty: fd is our terminal (in
 * raw mode) and the job's is one too: SIGWINCH (blocked in every thread)
 * sends our window size. */
int cli_input_start(CliClient *c, const char *job_id, int fd, bool tty, CliInput **ret);

/* Ends the forwarding (what was not sent yet is not: the job has ended)
 * and waits for the thread. The call's final status in *ret_code (OK when
 * all input was forwarded). */
void cli_input_stop(CliInput *in, grpc_status_code *ret_code);

/* After cli_input_stop(): whether the forwarding was cut before our stdin
 * ended, and not by the job (which may close its stdin or end at will) nor
 * by us: the connection was lost, the server went down, or our stdin could
 * not be read. Then *ret_sent is the data bytes handed to the call (the job
 * got at most those) and *ret_why says why, in the user's words
 * (malloc()ed). The job read EOF there (jwctl(1), "Standard input"). */
bool cli_input_cut(const CliInput *in, uint64_t *ret_sent, char **ret_why);

CliInput *cli_input_free(CliInput *in);
