/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The job status file (STATE/jobs/ID/status): a JobStatus as "key=value"
 * lines, one table describing both directions. Unknown keys are ignored
 * (newer files stay readable), string values are escaped so that a value is
 * always one line.
 */

#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

#define JOBFILE_MAX 8192u

/* Writes s (and the log size) into buf. Returns the length, or -ENOBUFS. */
int jobfile_format(const JobStatus *s, uint64_t log_size, char *buf, size_t size);

/* Parses text (NUL-terminated). -EBADMSG if the id or the state is missing
 * or malformed; other bad values are left at 0. */
int jobfile_parse(const char *text, JobStatus *ret, uint64_t *ret_log_size);
