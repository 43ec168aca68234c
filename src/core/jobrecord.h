/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A job's record on disk (STATE/jobs/ID/status), written so that it
 * survives a crash of the daemon, and kept written when the disk refuses:
 * see jobrecord.c. Core-internal.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/engine-internal.h"

/* Retries of records the disk refused: from 1 s, doubling, at most 60 s. */
#define JOBRECORD_RETRY_MIN_USEC (1000000ull)
#define JOBRECORD_RETRY_MAX_USEC (60000000ull)

/*
 * Any thread: writes st (with log_size) as the status of its directory
 * under jobs_fd (borrowed): status.tmp written, then renamed over status.
 * No fsync (a crash of the daemon keeps it; a power loss may not).
 * reserve: afterwards leave a pre-allocated status.tmp, so that the next
 * write of this record needs no new blocks (a running job's final status
 * on a disk that filled meanwhile). Returns 0 or -errno; a failed write
 * leaves the previous record in place.
 */
int jobrecord_write(int jobs_fd, const JobStatus *st, uint64_t log_size, bool reserve);

/* The start time of process pid (clock ticks since boot, /proc/PID/stat
 * field 22), or 0 when there is no such process. */
uint64_t jobrecord_pid_starttime(pid_t pid);

/* pid is alive (not a zombie) and is the very process that started at
 * starttime (a reused pid is not). */
bool jobrecord_pid_alive(pid_t pid, uint64_t starttime);

/* Engine thread: true if j's directory was deleted under it (looked up now,
 * unless already known); the first time, sets st.files_removed and tells
 * the observer (ENGINE_EVENT_FILES_REMOVED). */
bool jobrecord_check_dir(Engine *e, Job *j);

/* Engine thread: job_write_status() (engine-internal.h) lives in
 * jobrecord.c; this retries every record the disk refused (the retry timer
 * and engine_free() call it). */
void jobrecord_retry_all(Engine *e);
