/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Pseudo-terminals of jobs (job-tty.c). Any thread; no engine state.
 */

#include "core/engine.h"

/* A terminal pair of t's size: *ret_master (ours, non-blocking, the job's
 * stdout for the capture), *ret_input (a dup of it for the stdin writer)
 * and *ret_slave (the job's 0/1/2; close it after the spawn). All CLOEXEC,
 * above 2, owned by the caller. */
int job_tty_open(const JobTerminal *t, int *ret_master, int *ret_input, int *ret_slave);

/* env (NULL-terminated, may be NULL) with "TERM=term" ("dumb" for NULL or
 * "") after it: one allocation (free() it) pointing at env's strings. */
char **job_tty_env(const char *const *env, const char *term);

/* TIOCSWINSZ on a master: -EINVAL outside 1..65535. */
int job_tty_resize(int fd, unsigned rows, unsigned cols);
