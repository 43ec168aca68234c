/* SPDX-License-Identifier: MIT */

/*
 * The end of a job: stop (SIGTERM, then the whole job killed after the
 * grace), the main process's exit, and the emptying of its cgroup.
 *
 * The one idea: a job has ended when its main process has exited *and*,
 * with a cgroup, cgroup.events says "populated 0": only then are its CPU
 * and memory numbers final and its cgroup removable. Grandchildren never
 * survive a stop (cgroup.kill, else the process group).
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>

#include "core/cgroup.h"
#include "core/engine-internal.h"
#include "core/pidfd-exit.h"
#include "shared/macro.h"

void job_kill_all(Engine *e, Job *j) {
        /* cgroup.kill reaches every process of the job, including ones that
         * left the process group; without a cgroup the process group is
         * what we can reach. */
        if (j->cg_fd >= 0)
                (void) cgroup_kill(j->cg_fd);
        else if (j->st.has_cgroup) {
                int fd = job_open_cgroup(e, j);
                if (fd >= 0) {
                        (void) cgroup_kill(fd);
                        safe_close(fd);
                }
        }
        if (j->st.pid > 0)
                (void) kill(-j->st.pid, SIGKILL);
        if (j->pidfd >= 0)
                (void) pidfd_signal(j->pidfd, SIGKILL);
}

/* The job's cgroup is empty (or we give up waiting): final numbers, remove it. */
void job_cgroup_done(Engine *e, Job *j) {
        char name[JOB_ID_STRING_MAX + 8];

        cgroup_read_stats(j->cg_fd, &j->st);
        j->st.oom_killed = j->st.state == JOB_STATE_KILLED && j->st.signal == SIGKILL && j->st.oom_kills > 0 &&
                           !job_stopping(j);
        j->cg_fd = safe_close(j->cg_fd);
        j->cg_events_fd = safe_close(j->cg_events_fd);
        j->cg_emptying = false;
        j->rearm &= ~(unsigned) REARM_CGROUP;
        job_cgroup_name(&j->st.id, name);
        (void) unlinkat(e->cgroup_fd, name, AT_REMOVEDIR);
}

static void job_complete(Engine *e, Job *j) {
        if (j->subs.n == 0)
                j->log_fd = safe_close(j->log_fd);

        e->n_running--;
        owner_usage_set_running(j, false);
        claims_job_ended(e, j);
        list_append(&e->finished, &j->by_end);
        (void) job_write_status(e, j);
        job_notify(e, ENGINE_EVENT_EXITED, j);

        /* Followers that were waiting now get the rest and the end. */
        for (ListNode *n = j->subs.first; n; n = n->next)
                sub_queue(e, list_entry(n, Subscriber, in_job));

        retention_run(e);
}

void job_on_cgroup_event(Engine *e, Job *j, int res) {
        if (!j->cg_emptying)
                return;
        int r = cgroup_events_populated(j->cg_events_fd);
        if (r > 0 && res >= 0) {
                /* Still someone in there (a fork raced with cgroup.kill). */
                (void) cgroup_kill(j->cg_fd);
                if (engine_arm_poll(e, j->cg_events_fd, POLLPRI, OP_CGROUP, j) < 0)
                        engine_rearm_later(e, j, REARM_CGROUP);
                return;
        }
        job_cgroup_done(e, j);
        job_complete(e, j);
}

/* si_code 0: how it ended is not known (job_adopted_ended()). */
static void job_record_exit(Job *j, const siginfo_t *si) {
        j->exit_info = *si;
        if (si->si_code == 0) {
                j->st.state = JOB_STATE_ENDED;
                j->st.exit_code = 0;
        } else if (si->si_code == CLD_EXITED) {
                j->st.state = JOB_STATE_EXITED;
                j->st.exit_code = si->si_status;
        } else {
                j->st.state = JOB_STATE_KILLED;
                j->st.signal = si->si_status;
        }
        j->st.end_usec = now_usec(CLOCK_REALTIME);
}

/* The process is gone: collect what is left in the pipes, record the end. */
static void job_finish(Engine *e, Job *j, const siginfo_t *si) {
        job_record_exit(j, si);

        /* Everything the process wrote before it exited is in the pipes now. */
        for (int i = 0; i < 2; i++)
                if (j->pipe_fd[i] >= 0)
                        (void) job_drain_pipe(e, j, i, EXIT_DRAIN_BUDGET, false);

        /* A stopped job leaves nothing behind in its group; with a cgroup
         * no job leaves anything behind: what the main process left
         * running is killed when it exits (documented). */
        if (j->st.has_cgroup && j->cg_fd < 0) {
                j->cg_fd = job_open_cgroup(e, j);
                if (j->cg_fd >= 0)
                        j->cg_events_fd = openat(j->cg_fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
                if (j->cg_events_fd < 0)
                        j->cg_fd = safe_close(j->cg_fd); /* gone already: nothing to empty */
        }
        if (job_stopping(j) || j->cg_fd >= 0)
                job_kill_all(e, j);

        /* Leftover processes that still hold the pipes (a daemonised
         * grandchild) do not keep the job alive: output after the main
         * process exited is not captured (documented). */
        job_close_pipe(e, j, 0);
        job_close_pipe(e, j, 1);
        list_unlink(&e->drains, &j->drain);
        j->pidfd = safe_close(j->pidfd);
        j->rearm &= ~(unsigned) (REARM_PIDFD | REARM_STOP);
        job_runtime_done(e, j);
        job_input_end(e, j);
        keeper_release(e->keeper, j->keep_bundle);
        j->keep_bundle = 0;

        if (j->cg_fd >= 0) {
                /* Finish once cgroup.events says populated 0, so the numbers
                 * are final and the directory can go. */
                j->cg_emptying = true;
                if (cgroup_events_populated(j->cg_events_fd) > 0) {
                        if (engine_arm_poll(e, j->cg_events_fd, POLLPRI, OP_CGROUP, j) < 0)
                                engine_rearm_later(e, j, REARM_CGROUP);
                        return;
                }
                job_cgroup_done(e, j);
        }
        job_complete(e, j);
}

/* The process of a LOST job ended: not our child, so how is not known. */
static void job_lost_ended(Engine *e, Job *j) {
        j->st.process_alive = false;
        claims_job_ended(e, j); /* its name is free now */
        j->pidfd = safe_close(j->pidfd);
        j->rearm &= ~(unsigned) (REARM_PIDFD | REARM_STOP);
        job_runtime_done(e, j);
        job_input_end(e, j);
        j->st.end_usec = now_usec(CLOCK_REALTIME);
        /* Ordered by end again: it ended now. */
        list_unlink(&e->finished, &j->by_end);
        list_append(&e->finished, &j->by_end);
        (void) job_write_status(e, j);
        job_notify(e, ENGINE_EVENT_EXITED, j);
        retention_run(e);
}

/* How long a job adopted from a previous daemon may take to be reaped by
 * its new parent (PID 1, or a subreaper) before its end is recorded as
 * JOB_STATE_ENDED: systemd reaps at once; measured 1.6-1.9 s on a host
 * whose PID 1 is a slow init. */
#define EXIT_WAIT_USEC (30ull * 1000000)
#define EXIT_WAIT_POLL_USEC 100000

/* An adopted job's process is gone, and its status is not ours to reap:
 * read it from the pidfd (the kernel keeps it from the reap on), and where
 * the kernel cannot say, record that it ended and how is not known. */
static void job_adopted_ended(Engine *e, Job *j) {
        siginfo_t si = {};
        int r = e->faults.no_exit_info ? -EOPNOTSUPP : pidfd_exit_status(j->pidfd, &si);

        if (r == 0 && now_usec(CLOCK_MONOTONIC) < j->exit_wait_until) {
                if (!j->exit_wait.linked)
                        list_append(&e->exit_waits, &j->exit_wait);
                if (!engine_timer_armed(e, e->exit_wait_timer))
                        (void) engine_timer_arm(e, e->exit_wait_timer, EXIT_WAIT_POLL_USEC);
                return;
        }
        list_unlink(&e->exit_waits, &j->exit_wait);
        if (r > 0) {
                job_finish(e, j, &si);
                return;
        }
        e->exits_unknown++;
        job_finish(e, j, &si); /* si_code 0: JOB_STATE_ENDED */
}

void job_exit_wait_run(Engine *e, void *userdata) {
        for (ListNode *n = e->exit_waits.first, *next; n; n = next) {
                Job *j = list_entry(n, Job, exit_wait);
                next = n->next;
                if (j->st.state == JOB_STATE_RUNNING && j->pidfd >= 0)
                        job_adopted_ended(e, j);
                else
                        list_unlink(&e->exit_waits, n);
        }
}

void job_on_pidfd(Engine *e, Job *j, int res) {
        siginfo_t si = {};

        j->pidfd_armed = false;
        if (j->st.state == JOB_STATE_LOST && j->st.process_alive && j->pidfd >= 0) {
                job_lost_ended(e, j);
                return;
        }
        if (j->st.state != JOB_STATE_RUNNING || j->pidfd < 0)
                return;
        if (waitid(P_PIDFD, (id_t) j->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0) {
                if (errno == ECHILD) {
                        /* Not our child: adopted from a previous daemon. */
                        if (!j->exit_wait_until)
                                j->exit_wait_until = now_usec(CLOCK_MONOTONIC) + EXIT_WAIT_USEC;
                        job_adopted_ended(e, j);
                        return;
                }
                if (engine_arm_poll(e, j->pidfd, POLLIN, OP_PIDFD, j) >= 0)
                        j->pidfd_armed = true;
                else
                        engine_rearm_later(e, j, REARM_PIDFD);
                return;
        }
        job_finish(e, j, &si);
}

/* Stop ------------------------------------------------------------------------ */

int job_arm_stop_timer(Engine *e, Job *j) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        int r = -EBUSY;
        struct io_uring_sqe *sqe = engine_get_sqe(e, &r);

        if (!sqe)
                return r;
        j->stop_ts = usec_to_ts(j->st.stop_deadline > now ? j->st.stop_deadline - now : 0);
        io_uring_prep_timeout(sqe, &j->stop_ts, 0, 0);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_STOP_TIMER, j->slot, j->gen));
        /* stop_ts is written again by a later, earlier stop: submit now,
         * the kernel copies a timeout's timespec when it takes it. */
        (void) engine_submit(e);
        return 0;
}

void job_on_stop_timer(Engine *e, Job *j, int res) {
        if (res == -ETIME && (j->st.state == JOB_STATE_RUNNING || j->st.process_alive) && j->st.stop_deadline &&
            now_usec(CLOCK_MONOTONIC) + 1000 >= j->st.stop_deadline)
                job_kill_all(e, j);
}

int engine_stop_job(Engine *e, const JobId *id, uint64_t grace_usec) {
        Job *j = job_find(e, id);

        if (!j)
                return -ENOENT;
        if (j->st.state != JOB_STATE_RUNNING && !j->st.process_alive)
                return -ESRCH;
        j->st.stop_requested = true;
        return job_stop_begin(e, j, grace_usec);
}

int job_stop_begin(Engine *e, Job *j, uint64_t grace_usec) {
        uint64_t deadline;
        int r;

        if (grace_usec == UINT64_MAX)
                grace_usec = e->default_grace_usec;
        if (grace_usec == 0) {
                job_kill_all(e, j);
                return 0;
        }
        r = pidfd_signal(j->pidfd, SIGTERM);
        if (r < 0 && r != -ESRCH)
                return r;

        deadline = now_usec(CLOCK_MONOTONIC) + grace_usec;
        if (j->st.stop_deadline && j->st.stop_deadline <= deadline)
                return 0; /* an earlier kill is already armed */
        j->st.stop_deadline = deadline;
        /* The SIGTERM is sent: a kill timer that cannot be queued now is
         * queued by the loop, never forgotten. */
        if (job_arm_stop_timer(e, j) < 0)
                engine_rearm_later(e, j, REARM_STOP);
        /* On record, so that a daemon taking over keeps the deadline. */
        (void) job_write_status(e, j);
        return 0;
}

unsigned engine_stop_all(Engine *e, uint64_t grace_usec) {
        unsigned n = 0;
        for (ListNode *p = e->jobs.first; p; p = p->next) {
                Job *j = list_entry(p, Job, by_start);
                /* A LOST job's live process gets its SIGTERM too (not
                 * counted: the engine is not waiting for its end). */
                if (j->st.process_alive)
                        (void) engine_stop_job(e, &j->st.id, grace_usec);
                else if (j->st.state == JOB_STATE_RUNNING && engine_stop_job(e, &j->st.id, grace_usec) >= 0)
                        n++;
        }
        return n;
}

void job_kill_and_record(Engine *e, Job *j) {
        siginfo_t si = {};

        job_kill_all(e, j);
        while (waitid(P_PIDFD, (id_t) j->pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
        if (si.si_pid == 0) {
                si.si_code = CLD_KILLED;
                si.si_status = SIGKILL;
        }
        job_record_exit(j, &si);
        for (int i = 0; i < 2; i++)
                if (j->pipe_fd[i] >= 0 && e->buf)
                        (void) job_drain_pipe(e, j, i, EXIT_DRAIN_BUDGET, false);
        if (j->cg_fd < 0)
                j->cg_fd = job_open_cgroup(e, j);
        if (j->cg_fd >= 0) {
                (void) cgroup_wait_empty(j->cg_fd, 2000);
                job_cgroup_done(e, j);
        }
        (void) job_write_status(e, j);
}
