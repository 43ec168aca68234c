/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A job's Output, streamed to our stdout/stderr byte for byte (logs, run)
 * or only followed to its end (wait). Main thread; the stream is registered
 * with cli->signals so Ctrl-C can cancel it.
 */

#include <stdbool.h>
#include <stdint.h>

#include "cli/context.h"

typedef struct CliStreamResult {
        Jobworker__V1__JobStatus *end;   /* owned by end_message */
        Jobworker__V1__OutputResponse *end_message;
        uint64_t position;                /* offset after the last byte written */
        uint64_t gap_bytes;               /* bytes the server skipped */
        CliCallStatus status;
} CliStreamResult;

void cli_stream_result_done(CliStreamResult *r);

/* Streams the Output of job_id from offset; writes the data to our stdout /
 * stderr by stream if write_data. Returns 0 when the call ended (see
 * result->status) or a CLI exit code > 0 (write error). */
int cli_stream_output(Cli *cli, const char *job_id, CliStream stream, uint64_t offset, bool follow, bool write_data,
                      CliStreamResult *result);

/* Follows a job's output from offset until the job ends and returns its
 * exit code (run: write_data; wait: not). A signal makes it
 * CLI_EXIT_INTERRUPTED; a lost connection says how to resume. */
int cli_follow_to_end(Cli *cli, const char *job_id, bool write_data, uint64_t offset);
