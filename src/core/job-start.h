/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One start of a job in progress (job-start.c): an owned copy of its spec
 * and what the stages have made so far, so that one function can undo it.
 *
 * Thread rules: a JobStart is on the engine thread, or — between
 * spawner_submit() and job_start_finish() — on one spawner thread, never
 * on two at once. job_start_spawn_stage(), job_start_cancel() and
 * job_start_abandon() touch only the JobStart and fds it owns (plus the
 * engine's read-only cgroup root fd).
 */

#include "core/engine-internal.h"
#include "core/keeper.h"

/* A retried Start (same request id) that joined this start: told its
 * result too. */
typedef struct StartWaiter {
        struct StartWaiter *next;
        EngineStartDone done;
        void *userdata;
} StartWaiter;

struct JobStart {
        JobStart *next;                      /* the spawner's queue */
        Posted finished;                     /* job_start_finish() posted to the engine (cannot fail) */
        EngineStartDone done;
        void *userdata;
        int r;                               /* result of the spawn stage */

        /* The spec, copied: the caller's may be gone by the time we run. */
        JobSpec spec;
        OwnerUsage *usage;              /* its owner's tally, counted as starting */
        char **argv, **env;
        char *cwd_copy, *owner;
        char *name, *labels, *request_id;    /* copies, or NULL */
        Claim *name_claim, *rid_claim;       /* job-claims.c, until the job holds them */
        StartWaiter *waiters;
        JobCredentials creds;
        JobLimits limits;
        JobIoLimit io[JOB_IO_MAX];
        JobIoDevice io_devices[JOB_IO_MAX];

        const char *user, *home, *cwd;
        bool cwd_or_root;                    /* no cwd asked for: HOME, else / */
        char **envp, **candidates;
        bool want_limits;
        JobId id;
        char dir[JOB_ID_STRING_MAX];
        bool dir_made;
        char cg_name[JOB_ID_STRING_MAX + 8]; /* "" until made */
        int cgroup_root_fd, devnull_fd;      /* borrowed from the engine */
        int jobs_fd;                         /* a dup of the engine's: ours, so the
                                              * spawn stage may write the record */
        unsigned cg_controllers;             /* as read for the limits */
        int log_fd, out_r, out_w, err_r, err_w, cg_fd, pidfd;
        int in_r, in_w;                      /* the stdin pipe (spec.stdin_open), else -1 */
        int tty_slave;                       /* spec.tty: the job's 0/1/2 (out_r is the master,
                                              * in_w a dup of it), else -1 */
        JobTerminal tty;                     /* copy of *spec.tty (term owned) */
        char **tty_env;                      /* spec.env + TERM= (job_tty_env) */
        pid_t pid;
        uint64_t pid_starttime;              /* jobrecord_pid_starttime(pid) */
        uint64_t start_usec;
        uint64_t runtime_deadline;           /* CLOCK_MONOTONIC usec, 0: no limit */
        uint64_t spawn_delay_usec;           /* EngineFaults.spawn_delay_usec */
        JobStartError err;
        Keeper *keeper;                      /* a reference, or NULL */
        uint32_t keep_bundle;                /* where its fds are kept, 0 */
};

/* On a spawner thread: io devices -> cgroup -> spawn. Fills js->pid and
 * js->pidfd, or returns -errno with js->err. child_pidfd: see spawn.h.
 * *stopping (read atomically): give up before spawning. */
int job_start_spawn_stage(JobStart *js, SpawnStack *stack, int *child_pidfd, const bool *stopping);
/* A start the spawner never began: -ECANCELED with a message. */
int job_start_cancel(JobStart *js);
/* The engine is gone: undo what js made without it and free it (its job
 * directory, with at most the record written before the spawn, is removed
 * by the next engine). */
void job_start_abandon(JobStart *js);
/* EngineClosure: back on the engine thread, register or unwind, then call
 * the start's done. */
void job_start_finish(Engine *e, void *userdata);
