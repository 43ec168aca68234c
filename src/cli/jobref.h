/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * JOB arguments: a full job id, or a prefix of at least 8 characters that
 * matches exactly one of the ids the caller can see (what List returns), or
 * a job name (shared/job-name.h: a name always has a character that is not
 * a hex digit nor '-', so the two are never confused). Matching is pure
 * functions over lists from List, unit-tested; cli/resolve.h makes the
 * calls.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_JOB_ID_LENGTH 36
#define CLI_JOB_PREFIX_MIN 8

/* True if arg has the length and shape of a full job id (a UUID). */
bool cli_job_ref_is_full(const char *arg);

/* Finds the id that prefix (case-insensitive) begins. Returns 0 and a
 * malloc()ed copy in *ret_id; -ENOENT if none matches; -EEXIST if several
 * match, with a malloc()ed one-line message listing them (at most 10) in
 * *ret_error; -ENOMEM. */
int cli_job_ref_match(const char *prefix, const char *const *ids, size_t n_ids, char **ret_id, char **ret_error);

/* arg is to be read as a name: it has a character that is not a hex digit
 * nor '-' (it may still break the rules of a name). */
bool cli_job_ref_is_name(const char *arg);

/* A job List gave for a name. */
typedef struct CliNamedJob {
        const char *id;
        const char *owner;
        uint64_t start_time_us;
} CliNamedJob;

/* Picks the job the name means among the jobs that have it (List's answer
 * for it, oldest first): the newest. Jobs of more than one owner (what a
 * user who may see others' jobs gets) are ambiguous: -EEXIST and a
 * malloc()ed one-line message listing them (owner and id, at most 10) in
 * *ret_error. -ENOENT if there are none, -ENOMEM. *ret_id is malloc()ed. */
int cli_job_name_pick(const char *name, const CliNamedJob *jobs, size_t n, char **ret_id, char **ret_error);
