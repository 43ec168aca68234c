/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What policy.c and policy-line.c share: reading one line of the policy
 * into a PolicyRule, the table of KEY=VALUE bounds, and message helpers.
 * Not for other modules.
 */

#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"
#include "shared/macro.h"

/* Sets *ret_error (if ret_error) to a malloc()ed message; NULL on ENOMEM. */
_printf_(2, 3) void policy_set_error(char **ret_error, const char *fmt, ...);

/* A token made printable for a message: at most 64 bytes, controls as '?'. */
void policy_quote_token(char out[static 70], const char *s, size_t n);

/* The KEY=VALUE bounds: POLICY_BOUND_* index the table in policy-line.c. */
enum {
        POLICY_BOUND_CPU,
        POLICY_BOUND_MEMORY,
        POLICY_BOUND_PIDS,
        POLICY_BOUND_IO_READ_BPS,
        POLICY_BOUND_IO_WRITE_BPS,
        POLICY_BOUND_DEFAULT_CPU,
        POLICY_BOUND_DEFAULT_MEMORY,
        POLICY_BOUND_DEFAULT_PIDS,
        POLICY_BOUND_MAX_JOBS,
        POLICY_BOUND_MAX_OUTPUT,
        POLICY_BOUND_MAX_RUNTIME,
        POLICY_BOUND_DEFAULT_MAX_RUNTIME,
        _POLICY_BOUND_N,
};

const char *policy_bound_key(size_t k);
uint64_t policy_bound_get(const LimitsBounds *b, size_t k);
void policy_bound_set(LimitsBounds *b, size_t k, uint64_t v);
/* The value of bound k as the policy shows it: buf of at least 32. */
const char *policy_bound_format(size_t k, uint64_t v, char buf[static 32]);

/* Parses one line (line_start..line_end, no newline) numbered line into
 * *ret. 0: a rule (ret->user and ret->run_as malloc()ed, the caller owns
 * them), 1: blank or comment only, -EINVAL with a message, -ENOMEM. */
int policy_parse_line(const char *line_start, const char *line_end, const char *origin, unsigned line,
                      PolicyRule *ret, char **ret_error);
