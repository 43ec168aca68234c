/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One start of a job in progress (job-start.c): what the stages have made
 * so far, so that one function can undo it.
 *
 * Thread rules: engine thread, except job_start_spawn_stage(), which touches
 * only the JobStart and fds it owns and may run on any thread.
 */

#include "core/engine-internal.h"

typedef struct JobStart {
        const JobSpec *spec;
        const char *user, *home, *cwd;
        char **envp, **candidates;
        bool want_limits;
        JobId id;
        char dir[JOB_ID_STRING_MAX];
        bool dir_made;
        char cg_name[JOB_ID_STRING_MAX + 8]; /* "" until made */
        int cgroup_root_fd, devnull_fd;      /* borrowed from the engine */
        unsigned cg_controllers;             /* as read for the limits */
        int log_fd, out_r, out_w, err_r, err_w, cg_fd, pidfd;
        pid_t pid;
        uint64_t start_usec;
        JobStartError err;
} JobStart;

/* cgroup -> spawn: fills js->pid/pidfd, or returns -errno with js->err. */
int job_start_spawn_stage(JobStart *js, SpawnStack *stack);
