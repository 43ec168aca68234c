/* SPDX-License-Identifier: MIT */

/*
 * Signals sent to a running job on request: to its main process, or to
 * every process of the job.
 *
 * The one idea: "every process" must not race with fork. The kernel has
 * no cgroup-wide signal but SIGKILL (cgroup.kill), and a walk over
 * cgroup.procs misses a child forked during the walk; so the job's cgroup
 * is frozen first (frozen tasks neither fork nor exit, so each listed pid
 * stays its process's), every member is signalled, and the cgroup is
 * thawed on every path. Without a cgroup the job's process group (the main
 * process is made a group leader at spawn) is what can be reached. The
 * main process is only ever addressed through its pidfd, never by a pid
 * that may have been reused.
 *
 * A signal is not a stop: stop_requested stays false and the job's end is
 * whatever the process makes of the signal.
 */

#include <errno.h>
#include <signal.h>

#include "core/cgroup.h"
#include "core/engine-internal.h"
#include "shared/macro.h"

/* How long the engine thread waits for the freeze, sleeping in poll() on
 * cgroup.events. Measured here (2 vCPUs, Linux 6.18): 0.01 ms for a
 * sleeping process, 0.2-0.4 ms for 100 of them, 18 ms for 4 busy loops
 * competing for the CPUs; a task stuck in an uninterruptible sleep (a hung
 * NFS read) may never freeze. The bound keeps such a job from stalling
 * every other client; when it passes, the members are signalled anyway
 * (a fork in that moment may be missed, documented) and the cgroup thawed. */
#define SIGNAL_FREEZE_WAIT_MS 100u

static int signal_frozen_members(Engine *e, int cg, int sig) {
        int r;

        r = cgroup_set_frozen(cg, true);
        if (r == -ENOENT) /* no freezer (before Linux 5.2): the members as they are */
                return cgroup_signal_procs(cg, sig, NULL);
        if (r < 0)
                return r; /* nothing was frozen */
        r = cgroup_wait_frozen(cg, SIGNAL_FREEZE_WAIT_MS);
        if (r >= 0 || r == -ETIMEDOUT)
                r = e->faults.signal_procs_fail ? -e->faults.signal_procs_fail : cgroup_signal_procs(cg, sig, NULL);
        /* Thawed whatever happened above: a job must never stay frozen. */
        int t = cgroup_set_frozen(cg, false);
        return r < 0 ? r : t;
}

static int signal_cgroup(Engine *e, int cg, int sig) {
        /* SIGKILL is the one signal the kernel sends to a whole cgroup,
         * forks included, without freezing it. */
        if (sig == SIGKILL)
                return cgroup_kill(cg);
        return signal_frozen_members(e, cg, sig);
}

static int signal_group(Job *j, int sig) {
        /* The caller saw the main process alive through its pidfd, and only
         * the engine thread reaps it: until then its pid, and so the id of
         * the group it leads, cannot be reused (the kernel does not give out
         * a pid still in use as a process group id). */
        if (kill(-j->st.pid, sig) >= 0)
                return 0;
        if (errno != ESRCH)
                return -errno;
        /* The main process left its group (setpgid): it alone is reachable. */
        return pidfd_signal(j->pidfd, sig);
}

int engine_signal_job(Engine *e, const JobId *id, int sig, bool all) {
        Job *j = job_find(e, id);
        int r;

        if (!j)
                return -ENOENT;
        if (sig < 1 || sig > JOB_SIGNAL_MAX)
                return -EINVAL;
        if ((j->st.state != JOB_STATE_RUNNING && !j->st.process_alive) || j->pidfd < 0)
                return -ESRCH;
        if (!all)
                return pidfd_signal(j->pidfd, sig);

        /* Alive, or a zombie not yet reaped: either way still ours. */
        r = pidfd_signal(j->pidfd, 0);
        if (r < 0)
                return r;
        /* No cgroup, or one this engine has no root for (the job was
         * started by a daemon configured with cgroups): its group. */
        if (!j->st.has_cgroup || e->cgroup_fd < 0)
                return signal_group(j, sig);
        _cleanup_close_ int cg = job_open_cgroup(e, j);
        r = cg >= 0 ? signal_cgroup(e, cg, sig) : -errno;
        /* Its cgroup went away under us: it is ending. */
        return r == -ENOENT ? -ESRCH : r;
}

void job_thaw_adopted(Engine *e, Job *j) {
        if (!j->st.has_cgroup)
                return;
        _cleanup_close_ int cg = job_open_cgroup(e, j);
        /* Writing 0 to a cgroup that is not frozen changes nothing. */
        if (cg >= 0)
                (void) cgroup_set_frozen(cg, false);
}
