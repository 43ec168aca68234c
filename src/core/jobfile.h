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

/* Written as "version=" first. 1 (no key): the first release. 2 adds
 * pid_starttime and starting; every key of 1 kept its meaning, so files of
 * both versions load the same way. */
#define JOBFILE_VERSION 2

/* The version= of a record's text (1 when it has none: the first release).
 * A newer one is parsed all the same: keys it does not know are skipped. */
unsigned jobfile_version(const char *text);

/* Writes s (and the log size) into buf. Returns the length, or -ENOBUFS. */
int jobfile_format(const JobStatus *s, uint64_t log_size, char *buf, size_t size);

/* Parses text (NUL-terminated). -EBADMSG if the id or the state is missing
 * or malformed; other bad values are left at 0. */
int jobfile_parse(const char *text, JobStatus *ret, uint64_t *ret_log_size);
