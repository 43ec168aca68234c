/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The quantities of per-job limits: a CPU share ("0.5", thousandths of a
 * CPU) and a size ("256M"), with the bounds the API accepts. Pure, and free
 * of the engine's types, so that jwctl reads them exactly as the policy
 * file and the daemon do without linking either.
 */

#include <stdint.h>

/* What the API accepts (documented in jobworkerd(8) and the proto). */
#define LIMITS_CPU_MILLIS_MIN 10u        /* 0.01 CPU: cpu.max needs a quota of >= 1 ms per 100 ms */
#define LIMITS_CPU_MILLIS_MAX 1024000u   /* 1024 CPUs */
#define LIMITS_PIDS_MAX 4194304u         /* PID_MAX_LIMIT; pids.max refuses more */
/* A time limit: at most ten years (keeps deadlines far from overflow). */
#define LIMITS_RUNTIME_MAX_USEC (3650ull * 86400 * 1000000)

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
