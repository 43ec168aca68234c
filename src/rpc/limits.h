/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Per-job resource limits between the API and the engine: the syntax of the
 * quantities (shared by the policy file and jwctl, so both read "0.5" and
 * "256M" the same way), the caller's policy bounds and defaults applied to
 * what a Start asked for.
 *
 * Everything here is pure (no I/O: io device paths are resolved by the
 * engine, off its thread, core/iodev.h), so it is unit tested and fuzzed
 * through the policy and request parsers.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

/* What the API accepts (documented in jobworkerd(8) and the proto). */
#define LIMITS_CPU_MILLIS_MIN 10u        /* 0.01 CPU: cpu.max needs a quota of >= 1 ms per 100 ms */
#define LIMITS_CPU_MILLIS_MAX 1024000u   /* 1024 CPUs */
#define LIMITS_PIDS_MAX 4194304u         /* PID_MAX_LIMIT; pids.max refuses more */
#define LIMITS_IO_MAX JOB_IO_MAX          /* io entries per job */
#define LIMITS_DEVICE_PATH_MAX 4095u     /* bytes of an io device path */

/* "2", "0.5", "1.25" CPUs (parse_fixed() of shared/parse-util.h, at most
 * 3 fractional digits) to thousandths of a CPU. -EINVAL for bad syntax,
 * -ERANGE above LIMITS_CPU_MILLIS_MAX. 0 is returned as 0 (callers decide
 * whether it is allowed). */
int limits_parse_cpu(const char *s, uint32_t *ret_millis);

/* A size or rate in bytes: the SIZE of shared/parse-util.h ("4096",
 * "256M", "1.5G", "20MiB"; binary units; fractions of a byte are cut).
 * -EINVAL for bad syntax, -ERANGE on overflow. */
int limits_parse_size(const char *s, uint64_t *ret);

/* "1", "0.5", "1.25": buf of at least 32. */
const char *limits_format_cpu(uint32_t millis, char buf[static 32]);
/* Exact, with the largest binary suffix that divides it: "256M", "1G",
 * "1536M", "1000": buf of at least 32. */
const char *limits_format_size(uint64_t bytes, char buf[static 32]);

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
int limits_apply_bounds(const LimitsBounds *bounds, const char *user, const LimitsRequest *req,
                        JobLimits *ret, LimitsIoRequest ret_io[static LIMITS_IO_MAX], char **ret_message);
