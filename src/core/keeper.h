/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The keeper: every running job's pidfd and pipe read ends, kept in the
 * service manager's file-descriptor store so that they outlive a crash or a
 * restart of the daemon (keeper.c says how).
 *
 * Thread rules: keeper_add() and keeper_release() may be called from any
 * thread (a mutex inside); the rest only on the engine thread.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/engine.h"
#include "core/job-id.h"

typedef struct Keeper Keeper;

/* What a previous daemon kept for one job. fds[0] pidfd, fds[1] stdout,
 * fds[2] stderr read end (-1: not kept). */
typedef struct KeptJob {
        pid_t pid;
        uint64_t pid_starttime;
        int fds[3];
        uint32_t bundle;
} KeptJob;

/* NULL config (or no store function): *ret = NULL, nothing is kept. The
 * fds config->fds named "jobs-*" are the bundles of the previous daemon:
 * read here, through copies (the caller keeps and closes its fds). */
int keeper_new(const EngineFdStore *config, Keeper **ret);
/* References: the engine holds one, and so does every start in flight (a
 * spawner thread stuck on a hung path may finish after the engine went).
 * The last unref closes our fds; the store keeps its copies (the jobs go
 * on without us). */
Keeper *keeper_ref(Keeper *k);
Keeper *keeper_unref(Keeper *k);

/* Keeps the fds of a job that just started (dups go into a bundle; the
 * caller keeps its own). *ret_bundle: the bundle to release it from when it
 * ended. -errno: not kept (the job runs, but would not survive a crash). */
int keeper_add(Keeper *k, const JobId *id, pid_t pid, uint64_t pid_starttime, int pidfd, int out_fd, int err_fd,
               uint32_t *ret_bundle);
/* The job kept in bundle ended (its fds are closed): a bundle none of whose
 * jobs runs any more leaves the store. bundle 0: nothing. */
void keeper_release(Keeper *k, uint32_t bundle);

/* At load: the fds kept for id, now the caller's. -ENOENT: none. */
int keeper_take(Keeper *k, const JobId *id, KeptJob *ret);
/* Load done: what nobody took is closed, bundles left without jobs go. */
void keeper_load_done(Keeper *k);

/* Copies (CLOEXEC) of the bundles in the store and their names, for an
 * exec of a new binary that must find them as a restart would. The caller
 * owns the fds and the strings (free each, then the arrays). */
int keeper_dup_bundles(Keeper *k, int **ret_fds, char ***ret_names, size_t *ret_n);

typedef struct KeeperCounts {
        unsigned bundles;       /* in the store now */
        unsigned loaded_jobs;   /* records found at start */
        unsigned failures;      /* keeper_add() failures */
        int last_error;         /* positive errno of the last failure */
} KeeperCounts;
void keeper_get_counts(Keeper *k, KeeperCounts *ret);
