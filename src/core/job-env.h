/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a job is given, computed from its JobSpec without touching anything:
 * the spec checked against the limits of engine.h, the environment the job
 * sees, and the one-line command summary kept in its status. Pure functions:
 * no I/O, safe on any thread.
 */

#include <stddef.h>

#include "core/engine.h"

/* Checks argv, env, cwd and owner against the JOB_* limits. On failure
 * returns -EINVAL or -E2BIG and fills err->error and err->message (naming
 * the argument or entry); err->stage is left as it is. */
int job_env_validate(const JobSpec *spec, JobStartError *err);

/* The environment a job sees: PATH, HOME, USER, LOGNAME and LANG, each
 * unless extra sets it, then extra in its order. Never the daemon's own.
 * One allocation (the strings follow the array): free() it. NULL: ENOMEM. */
char **job_env_build(const char *user, const char *home, const char *const *extra);

/* The value of key in a NULL-terminated KEY=VALUE list (the last one wins),
 * or NULL. */
const char *job_env_get(const char *const *env, const char *key);

/* argv joined by spaces, cut at JOB_COMMAND_MAX bytes. */
void job_env_command_summary(const char *const *argv, char out[static JOB_COMMAND_MAX + 1]);
