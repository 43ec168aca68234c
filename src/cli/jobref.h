/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * JOB arguments: a full job id, or a prefix of at least 8 characters that
 * matches exactly one of the ids the caller can see (what List returns).
 * Matching is a pure function over a list of ids, unit-tested.
 */

#include <stdbool.h>
#include <stddef.h>

#define CLI_JOB_ID_LENGTH 36
#define CLI_JOB_PREFIX_MIN 8

/* True if arg has the length and shape of a full job id (a UUID). */
bool cli_job_ref_is_full(const char *arg);

/* Finds the id that prefix (case-insensitive) begins. Returns 0 and a
 * malloc()ed copy in *ret_id; -ENOENT if none matches; -EEXIST if several
 * match, with a malloc()ed one-line message listing them (at most 10) in
 * *ret_error; -ENOMEM. */
int cli_job_ref_match(const char *prefix, const char *const *ids, size_t n_ids, char **ret_id, char **ret_error);
