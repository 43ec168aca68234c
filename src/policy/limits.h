/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Per-job resource limits between the API and the engine: the caller's
 * policy bounds and defaults applied to what a Start asked for. (The
 * quantities themselves, "0.5" and "256M", are read in quantity.h, which
 * jwctl shares.)
 *
 * Everything here is pure (no I/O: io device paths are resolved by the
 * engine, off its thread, core/iodev.h), so it is unit tested and fuzzed
 * through the policy and request parsers.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "policy/quantity.h"

#define LIMITS_IO_MAX JOB_IO_MAX          /* io entries per job */
#define LIMITS_DEVICE_PATH_MAX 4095u     /* bytes of an io device path */

/* One io entry of a request, before its device is resolved. */
typedef JobIoDevice LimitsIoRequest;

/* What a Start asked for; 0 / empty = not asked for. */
typedef struct LimitsRequest {
        uint32_t cpu_millis;
        uint64_t memory_max;
        uint64_t pids_max;
        size_t n_io;
        LimitsIoRequest io[LIMITS_IO_MAX];
} LimitsRequest;

/* A user's bounds and defaults from the policy; 0 = none. The io bounds
 * hold for every device a request names (rates of devices it does not name
 * cannot be bounded: the daemon does not know the host's disks). */
typedef struct LimitsBounds {
        uint32_t cpu_millis;
        uint64_t memory_max;
        uint64_t pids_max;
        uint64_t io_read_bps;
        uint64_t io_write_bps;
        uint32_t default_cpu_millis;
        uint64_t default_memory_max;
        uint64_t default_pids_max;
        /* Bounds of all the user's jobs together, checked at Start (rpc)
         * against the engine's per-owner tally (engine_owner_usage()). */
        uint64_t max_jobs;      /* running (or starting) at once */
        uint64_t max_output;    /* bytes of output kept, running and retained jobs */
        /* Time limit of a job (max-runtime=, default-max-runtime=), usec. */
        uint64_t max_runtime;
        uint64_t default_max_runtime;
} LimitsBounds;

bool limits_bounds_empty(const LimitsBounds *b);

/*
 * The limits a job of user gets: per resource the request's value, else the
 * user's default, else none. io entries are copied to *ret_io (same order
 * and devices), with a rate the entry left at 0 set to the io bound (a
 * device the request names is always bounded). -EACCES if a value is above
 * its bound, with a malloc()ed *ret_message like
 * "alice may use at most 1 CPU (asked 2)". The io devices are not resolved
 * here (the engine does, off its thread: core/iodev.h); ret->io is NULL.
 */
/* The identity bounds (max-jobs=, max-output=) against what user's jobs use
 * now: running jobs (starting ones included) and bytes of output kept.
 * -EDQUOT when a Start must wait, with a malloc()ed *ret_message like
 * "alice already runs 8 jobs (max-jobs=8)". */
int limits_check_usage(const LimitsBounds *bounds, const char *user, uint64_t running, uint64_t output_bytes,
                       char **ret_message);

/* The time limit a job of user gets: asked_usec, else the user's default,
 * else none (0), in *ret_usec. -EACCES above the user's max-runtime=, with
 * a malloc()ed *ret_message like "alice may run a job for at most 1h
 * (max-runtime=1h; asked 2h)". */
int limits_apply_runtime(const LimitsBounds *bounds, const char *user, uint64_t asked_usec, uint64_t *ret_usec,
                         char **ret_message);

int limits_apply_bounds(const LimitsBounds *bounds, const char *user, const LimitsRequest *req,
                        JobLimits *ret, LimitsIoRequest ret_io[static LIMITS_IO_MAX], char **ret_message);
