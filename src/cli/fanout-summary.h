/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * How each host of a fan-out ended, the summary table (host, state, exit
 * code or error, duration) and jwctl's one exit code across hosts: 0 when
 * every host did what was asked (every job exited 0), 3 when some host
 * could not be reached or refused the connection, 1 otherwise; 130 after
 * Ctrl-C. Pure functions, unit-tested.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/args.h"

typedef enum FanoutState {
        FANOUT_STATE_SKIPPED,      /* never started (Ctrl-C, --fail-fast) */
        FANOUT_STATE_OK,           /* done; a job exited 0 */
        FANOUT_STATE_EXITED,       /* a job exited with code != 0 */
        FANOUT_STATE_KILLED,       /* a job ended by a signal (code 128+N) */
        FANOUT_STATE_FAILED,       /* the server refused or failed the request */
        FANOUT_STATE_UNREACHABLE,  /* no connection, TLS refused, no answer */
        FANOUT_STATE_INTERRUPTED,  /* Ctrl-C or --fail-fast stopped it */
} FanoutState;

typedef struct FanoutResult {
        FanoutState state;
        int code;                  /* the host's exit code as jwctl alone would give it */
        char *error;               /* malloc()ed one line, or NULL */
        char *job_id;              /* run, start: the job started, malloc()ed, or NULL */
        uint64_t duration_usec;
} FanoutResult;

void fanout_result_done(FanoutResult *r);

/* The state of a host whose command ended with code and message (the
 * per-host cli->message, NULL if none). For run and wait the code is the
 * job's unless a message says otherwise; interrupted: a signal was
 * delivered to the host. */
FanoutState fanout_classify(CliCommand command, int code, const char *message, bool interrupted);

/* jwctl's exit code across n results (see the top). */
int fanout_exit_code(const FanoutResult *results, size_t n, bool interrupted);

/* The table, on f (stderr): a header and one line per host. */
void fanout_summary_text(FILE *f, const char *const *names, const FanoutResult *results, size_t n);
/* One JSON object per host and line: {"host","state","exit_code","error","job_id","duration_ms"}. */
void fanout_summary_json(FILE *f, const char *const *names, const FanoutResult *results, size_t n);

const char *fanout_state_name(FanoutState s);
