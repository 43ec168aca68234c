/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * cgroup v2 for jobs: one leaf per job under a directory the engine owns
 * (systemd's Delegate=yes subtree, or a configured parent), limits written
 * before the spawn, CLONE_INTO_CGROUP, cgroup.kill, cgroup.events.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"

/* The cgroup2 mount point, e.g. "/sys/fs/cgroup" or, on hybrid systems,
 * "/sys/fs/cgroup/unified". -ENOENT if there is none. */
int cgroup_v2_mount(char **ret);

/* Absolute path of the calling process's own cgroup v2 directory. */
int cgroup_self_path(char **ret);

/*
 * Makes `dir` (a cgroup this process may manage, e.g. a delegated service
 * cgroup) ready for jobs: moves this process (self) or every process in
 * dir (the holder of jobworker-jobs.service) into dir/supervisor (cgroup
 * v2 forbids processes in an inner node whose children have controllers),
 * creates dir/jobs and enables every available controller for it and its
 * children. *ret_jobs is the absolute path of dir/jobs. Idempotent: a
 * daemon started again finds it ready.
 */
int cgroup_prepare_delegated(const char *dir, bool self, char **ret_jobs);

/* Controllers enabled for children of the directory (cgroup.subtree_control),
 * as a bit mask of CGROUP_CTRL_*. */
enum {
        CGROUP_CTRL_CPU = 1 << 0,
        CGROUP_CTRL_MEMORY = 1 << 1,
        CGROUP_CTRL_IO = 1 << 2,
        CGROUP_CTRL_PIDS = 1 << 3,
};
int cgroup_child_controllers(int dirfd, unsigned *ret);

/* Writes limits into a job's cgroup. On failure err names the controller
 * or file. -EOPNOTSUPP: the controller is not available there. */
int cgroup_apply_limits(int cgfd, unsigned controllers, const JobLimits *limits, char *err, size_t err_size);

/* Kills every process in the cgroup: cgroup.kill (5.14+), else SIGKILL to
 * each pid in cgroup.procs. */
int cgroup_kill(int cgfd);

/* 1 if the cgroup has processes, 0 if not (cgroup.events). */
int cgroup_populated(int cgfd);

/* Same, through an fd of cgroup.events that is watched with POLLPRI: the
 * read re-arms the notification. */
int cgroup_events_populated(int events_fd);

/* Fills cpu_usec, memory_peak (peak, or current where the kernel has no
 * memory.peak), oom_kills where the files exist. */
void cgroup_read_stats(int cgfd, JobStatus *st);

/* Waits (sleeping, bounded) until the cgroup is empty: for teardown and
 * start-up paths, never for the engine's loop. 0, or -ETIMEDOUT. */
int cgroup_wait_empty(int cgfd, unsigned timeout_ms);

/* The freezer (cgroup.freeze, Linux 5.2+), for signalling every process
 * of a job without racing with its forks: frozen processes neither fork
 * nor exit, so the pids of cgroup.procs stay theirs until the thaw.
 * cgroup_set_frozen() asks; the cgroup is frozen once cgroup.events says
 * "frozen 1", which cgroup_wait_frozen() waits for (sleeping in poll(),
 * at most timeout_ms: 0, -ETIMEDOUT, or -EOPNOTSUPP without a freezer).
 * cgroup_frozen(): 1 frozen, 0 not. */
int cgroup_set_frozen(int cgfd, bool frozen);
int cgroup_wait_frozen(int cgfd, unsigned timeout_ms);
int cgroup_frozen(int cgfd);

/* Sends sig with kill() to every process listed in cgroup.procs; *ret_n
 * (may be NULL): how many took it. Only on a frozen cgroup are those pids
 * sure to be the members' (see above). */
int cgroup_signal_procs(int cgfd, int sig, unsigned *ret_n);

/* Kills and removes leftover job cgroups (names starting with "job-") in
 * rootfd, e.g. after a crash, except those keep() (may be NULL) says are
 * still a job's. *ret_n: how many were removed. */
int cgroup_cleanup_leftovers(int rootfd, bool (*keep)(void *userdata, const char *name), void *userdata,
                             unsigned *ret_n);
