/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * How a fan-out shows the output of many hosts on jwctl's one stdout and
 * stderr: lines prefixed with the host name (aligned, colored on a
 * terminal), bare lines (--no-prefix), one JSON object per line (--json),
 * or each host's output held and printed together at the end, identical
 * outputs folded (--group-output). A host's stdout goes to our stdout and
 * its stderr to our stderr in every mode but --json (all on stdout).
 *
 * Main thread only: the fan-out's reader feeds it what each host's worker
 * wrote. Writes go straight to the fds (no stdio buffer between hosts).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum FanoutMode {
        FANOUT_MODE_PREFIX,
        FANOUT_MODE_RAW,
        FANOUT_MODE_JSON,
        FANOUT_MODE_GROUP,
} FanoutMode;

typedef enum FanoutStream {
        FANOUT_STDOUT,
        FANOUT_STDERR,
        _FANOUT_STREAM_MAX,
} FanoutStream;

/* A line longer than this is cut and shown as several lines. */
#define FANOUT_LINE_MAX (64 * 1024)
/* --group-output: bytes of one host held in memory; more goes to an
 * unlinked temporary file (in $TMPDIR, else /tmp). */
#define FANOUT_GROUP_MEMORY_MAX (1024 * 1024)

typedef struct FanoutOutput FanoutOutput;

/* names: the hosts (borrowed; outlive the object). color: bit (1 << stream)
 * set for ANSI colors on the host names of that stream (the caller decides:
 * a terminal, NO_COLOR unset). The fds are borrowed. */
int fanout_output_new(FanoutMode mode, const char *const *names, size_t n, int out_fd, int err_fd, unsigned color,
                      FanoutOutput **ret);
FanoutOutput *fanout_output_free(FanoutOutput *o);

/* Where host's output starts (logs --offset): the first JSON offset. */
void fanout_output_set_offset(FanoutOutput *o, size_t host, uint64_t offset);

/* Bytes host wrote to stream. Whole lines are written at once; a partial
 * line waits for its end. 0 or -errno of a failed write (-EPIPE: our
 * stdout was closed). */
int fanout_output_data(FanoutOutput *o, size_t host, FanoutStream stream, const uint8_t *data, size_t len);
/* The host's output ended: a partial last line is written (prefix mode:
 * with a newline added; raw: as it is). */
int fanout_output_host_end(FanoutOutput *o, size_t host);
/* Everything ended: --group-output prints what it held. */
int fanout_output_finish(FanoutOutput *o);
