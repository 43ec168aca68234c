/* SPDX-License-Identifier: MIT */

/*
 * The engine's loop: one io_uring, one thread, one dispatch table.
 *
 * The one idea: every event that changes job state is a completion on the
 * ring — a pidfd becoming readable (the job exited), a pipe becoming
 * readable, a timer (stop grace, retention, the embedder's timers), the
 * eventfd through which other threads post closures. Nothing polls on a
 * clock; an idle engine sleeps in io_uring_enter(). user_data of every
 * request is ring_ud(operation, slot, generation), so a completion for an
 * object that is gone, or whose slot was reused, is recognised and dropped.
 *
 * A request that cannot be queued (ring_get_sqe() is NULL only when the
 * kernel refuses a submit, e.g. -EBUSY with its completion queue
 * overflowing) is never dropped: a start fails visibly (job.c), and a
 * re-arm is remembered (engine_rearm_later()) and queued again here, after
 * the completions that were in the way have been reaped. A pidfd that is
 * never watched would be a job that is never reaped.
 */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine-internal.h"
#include "shared/macro.h"

/* The ring ------------------------------------------------------------------ */

struct io_uring_sqe *engine_get_sqe(Engine *e, int *ret_error) {
        if (e->faults.sqe_skip > 0)
                e->faults.sqe_skip--;
        else if (e->faults.sqe_fail > 0) {
                e->faults.sqe_fail--;
                e->faults.sqe_failed++;
                if (ret_error)
                        *ret_error = -EBUSY;
                return NULL;
        }
        return ring_get_sqe(&e->ring, ret_error);
}

int engine_submit(Engine *e) {
        int r;

        if (e->faults.submit_fail > 0) {
                e->faults.submit_fail--;
                return -EBUSY; /* what was queued stays queued, as with the kernel */
        }
        do
                r = io_uring_submit(&e->ring);
        while (r == -EINTR);
        return r;
}

int engine_arm_poll(Engine *e, int fd, unsigned mask, unsigned op, Job *j) {
        int r = -EBUSY;
        struct io_uring_sqe *sqe = engine_get_sqe(e, &r);

        if (!sqe)
                return r;
        io_uring_prep_poll_add(sqe, fd, mask);
        io_uring_sqe_set_data64(sqe, ring_ud(op, j->slot, j->gen));
        return 0;
}

/* Cancels are the one request that may be lost: what they cancel completes
 * anyway (a pipe poll on POLLHUP once the job's writers are gone, a timer
 * at its deadline) and is then dropped as stale by its generation. */
void engine_cancel(Engine *e, uint64_t ud) {
        struct io_uring_sqe *sqe = engine_get_sqe(e, NULL);

        if (!sqe)
                return;
        io_uring_prep_cancel64(sqe, ud, 0);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_IGNORE, 0, 0));
}

void engine_rearm_later(Engine *e, Job *j, unsigned what) {
        j->rearm |= what;
        if (!j->rearm_node.linked)
                list_append(&e->rearms, &j->rearm_node);
}

static unsigned job_rearm(Engine *e, Job *j) {
        unsigned left = 0;

        if ((j->rearm & REARM_PIDFD) && j->pidfd >= 0 && !j->pidfd_armed) {
                if (engine_arm_poll(e, j->pidfd, POLLIN, OP_PIDFD, j) >= 0)
                        j->pidfd_armed = true;
                else
                        left |= REARM_PIDFD;
        }
        for (int i = 0; i < 2; i++) {
                unsigned bit = i == 0 ? REARM_OUT : REARM_ERR;
                if (!(j->rearm & bit) || j->pipe_fd[i] < 0 || j->poll_armed[i])
                        continue;
                if (engine_arm_poll(e, j->pipe_fd[i], POLLIN, i == 0 ? OP_PIPE_OUT : OP_PIPE_ERR, j) >= 0)
                        j->poll_armed[i] = true;
                else
                        left |= bit;
        }
        if ((j->rearm & REARM_CGROUP) && j->cg_emptying &&
            engine_arm_poll(e, j->cg_events_fd, POLLPRI, OP_CGROUP, j) < 0)
                left |= REARM_CGROUP;
        if ((j->rearm & REARM_STOP) && job_arm_stop_timer(e, j) < 0)
                left |= REARM_STOP;
        if ((j->rearm & REARM_RUNTIME) && job_arm_runtime_timer(e, j) < 0)
                left |= REARM_RUNTIME;
        if ((j->rearm & REARM_IN) && job_input_rearm(e, j) < 0)
                left |= REARM_IN;
        return left;
}

/* Queues again what could not be queued before. */
static void run_rearms(Engine *e) {
        if (e->rearm_wake && engine_arm_wake(e) >= 0)
                e->rearm_wake = false;
        if (e->rearm_retention) {
                e->rearm_retention = false;
                retention_run(e); /* sets it again if it still cannot */
        }
        for (size_t k = e->rearms.n; k > 0 && e->rearms.first; k--) {
                Job *j = list_entry(e->rearms.first, Job, rearm_node);
                list_unlink(&e->rearms, &j->rearm_node);
                j->rearm = job_rearm(e, j);
                if (j->rearm)
                        list_append(&e->rearms, &j->rearm_node);
        }
}

/* Posted closures -------------------------------------------------------------- */

int engine_arm_wake(Engine *e) {
        int r = -EBUSY;
        struct io_uring_sqe *sqe = engine_get_sqe(e, &r);

        if (!sqe)
                return r;
        io_uring_prep_read(sqe, e->wake_fd, &e->wake_value, sizeof(e->wake_value), 0);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_WAKE, 0, 0));
        return 0;
}

void engine_run_posted(Engine *e) {
        Posted *p;

        pthread_mutex_lock(&e->post_lock);
        p = e->post_head;
        e->post_head = e->post_tail = NULL;
        pthread_mutex_unlock(&e->post_lock);

        while (p) {
                Posted *next = p->next;
                bool own = p->own; /* p may be gone once fn ran */
                p->fn(e, p->userdata);
                if (!own)
                        free(p);
                p = next;
        }
}

static void run_posted_without(Engine *e, bool keep_own) {
        Posted *p;

        pthread_mutex_lock(&e->post_lock);
        p = e->post_head;
        e->post_head = e->post_tail = NULL;
        pthread_mutex_unlock(&e->post_lock);

        while (p) {
                Posted *next = p->next;
                bool own = p->own;
                p->fn(keep_own && own ? e : NULL, p->userdata);
                if (!own)
                        free(p);
                p = next;
        }
}

void engine_run_posted_freeing(Engine *e) {
        run_posted_without(e, true);
}

void engine_drop_posted(Engine *e) {
        run_posted_without(e, false);
}

static void post_node(Engine *e, Posted *p) {
        uint64_t one = 1;

        pthread_mutex_lock(&e->post_lock);
        if (e->post_tail)
                e->post_tail->next = p;
        else
                e->post_head = p;
        e->post_tail = p;
        pthread_mutex_unlock(&e->post_lock);
        (void) !write(e->wake_fd, &one, sizeof(one));
}

static bool post_should_fail(Engine *e) { /* EngineFaults.post_fail */
        bool fail = false;

        pthread_mutex_lock(&e->post_lock);
        if (e->faults.post_fail > 0) {
                e->faults.post_fail--;
                fail = true;
        }
        pthread_mutex_unlock(&e->post_lock);
        return fail;
}

int engine_post(Engine *e, EngineClosure fn, void *userdata) {
        Posted *p = post_should_fail(e) ? NULL : malloc(sizeof(Posted));

        if (!p)
                return -ENOMEM;
        *p = (Posted) { .fn = fn, .userdata = userdata };
        post_node(e, p);
        return 0;
}

void engine_post_own(Engine *e, Posted *node, EngineClosure fn, void *userdata) {
        *node = (Posted) { .fn = fn, .userdata = userdata, .own = true };
        post_node(e, node);
}

void engine_wake_stop(Engine *e) {
        uint64_t one = 1;
        atomic_store(&e->stop, true);
        (void) !write(e->wake_fd, &one, sizeof(one));
}

/* Timers ----------------------------------------------------------------------- */

int engine_timer_new(Engine *e, EngineClosure fn, void *userdata, EngineTimer **ret) {
        EngineTimer *t = calloc(1, sizeof(EngineTimer));
        uint32_t gen;
        int r;

        if (!t)
                return -ENOMEM;
        r = ring_slot_alloc(&e->timer_slots, t, &t->slot, &gen);
        if (r < 0) {
                free(t);
                return r;
        }
        t->fn = fn;
        t->userdata = userdata;
        e->timer_seq += 0x10000;
        t->armed_gen = e->timer_seq & ~1u;
        *ret = t;
        return 0;
}

void engine_timer_disarm(Engine *e, EngineTimer *t) {
        if (t && (t->armed_gen & 1)) {
                /* If the removal cannot be queued the timer still fires, and
                 * is dropped: its arming number is no longer current. */
                struct io_uring_sqe *sqe = engine_get_sqe(e, NULL);
                if (sqe) {
                        io_uring_prep_timeout_remove(sqe, ring_ud(OP_TIMER, t->slot, t->armed_gen), 0);
                        io_uring_sqe_set_data64(sqe, ring_ud(OP_IGNORE, 0, 0));
                }
                t->armed_gen++;
        }
}

int engine_timer_arm(Engine *e, EngineTimer *t, uint64_t after_usec) {
        struct io_uring_sqe *sqe;
        int r = -EBUSY;

        engine_timer_disarm(e, t);
        sqe = engine_get_sqe(e, &r);
        if (!sqe)
                return r;
        t->armed_gen++; /* now odd: armed */
        t->ts = usec_to_ts(after_usec);
        io_uring_prep_timeout(sqe, &t->ts, 0, 0);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_TIMER, t->slot, t->armed_gen));
        /* t->ts lives in the timer, which lives until engine_timer_free():
         * that disarms first, and the kernel copies a timeout's timespec
         * when the request is issued. Submitted now, so a re-arm may reuse
         * it at once. */
        (void) engine_submit(e);
        return 0;
}

bool engine_timer_armed(Engine *e, EngineTimer *t) {
        return t && (t->armed_gen & 1);
}

EngineTimer *engine_timer_free(Engine *e, EngineTimer *t) {
        if (!t)
                return NULL;
        engine_timer_disarm(e, t);
        ring_slot_free(&e->timer_slots, t->slot);
        free(t);
        return NULL;
}

static void on_timer(Engine *e, uint64_t ud, int res) {
        EngineTimer *t = ring_ud_slot(ud) < e->timer_slots.n ? e->timer_slots.slots[ring_ud_slot(ud)].ptr : NULL;

        if (!t || t->armed_gen != ring_ud_gen(ud) || res != -ETIME)
                return; /* re-armed, disarmed or freed since */
        t->armed_gen++;
        t->fn(e, t->userdata);
}

/* The loop ------------------------------------------------------------------- */

static void dispatch_job(Engine *e, unsigned op, Job *j, int res) {
        switch (op) {
        case OP_PIDFD:
                job_on_pidfd(e, j, res);
                break;
        case OP_PIPE_OUT:
        case OP_PIPE_ERR: {
                int i = op == OP_PIPE_OUT ? 0 : 1;
                if (res == -ECANCELED)
                        break;
                j->poll_armed[i] = false;
                job_pipe_service(e, j, i, DRAIN_BUDGET);
                break;
        }
        case OP_BATCH_OUT:
        case OP_BATCH_ERR:
                job_on_batch_timer(e, j, op == OP_BATCH_OUT ? 0 : 1);
                break;
        case OP_CGROUP:
                job_on_cgroup_event(e, j, res);
                break;
        case OP_STOP_TIMER:
                job_on_stop_timer(e, j, res);
                break;
        case OP_RUNTIME_TIMER:
                job_on_runtime_timer(e, j, res);
                break;
        case OP_PIPE_IN:
                job_input_on_poll(e, j, res);
                break;
        }
}

static void dispatch(Engine *e, struct io_uring_cqe *cqe) {
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        unsigned op = ring_ud_op(ud);
        Job *j;

        switch (op) {
        case OP_WAKE:
                /* A CQE was just consumed, so this rarely fails; if it
                 * does, the loop queues it again (run_rearms()). */
                if (engine_arm_wake(e) < 0)
                        e->rearm_wake = true;
                engine_run_posted(e);
                return;
        case OP_RETENTION:
                retention_on_timer(e);
                return;
        case OP_TIMER:
                on_timer(e, ud, cqe->res);
                return;
        case OP_UNLINK:
                store_on_unlink(e, ud, cqe->res);
                return;
        case OP_IGNORE:
        case OP_NONE:
                return;
        }

        j = ring_slot_get(&e->job_slots, ring_ud_slot(ud), ring_ud_gen(ud));
        if (j) /* else stale: the job is gone */
                dispatch_job(e, op, j, cqe->res);
}

/* Work that is ready without waiting: subscribers that may send, and pipes
 * that still had data after their read budget. */
static void run_ready(Engine *e) {
        for (size_t k = e->runnable.n; k > 0 && e->runnable.first; k--) {
                Subscriber *s = list_entry(e->runnable.first, Subscriber, runnable);
                list_unlink(&e->runnable, &s->runnable);
                sub_run(e, s);
        }
        for (size_t k = e->drains.n; k > 0 && e->drains.first; k--) {
                Job *j = list_entry(e->drains.first, Job, drain);
                list_unlink(&e->drains, &j->drain);
                job_pipe_service(e, j, 0, DRAIN_BUDGET);
                job_pipe_service(e, j, 1, DRAIN_BUDGET);
        }
}

/* A re-arm waiting for room: wake up soon to retry it, but sleep a little
 * so that a kernel that keeps refusing is not asked in a tight loop. */
#define REARM_RETRY_USEC 1000

int engine_run_once(Engine *e, uint64_t timeout_usec) {
        struct io_uring_cqe *cqe;
        unsigned head, count = 0;
        int r;

        run_ready(e);
        run_rearms(e);
        if ((e->rearms.n > 0 || e->rearm_wake || e->rearm_retention) && timeout_usec > REARM_RETRY_USEC)
                timeout_usec = REARM_RETRY_USEC;

        if (e->runnable.n > 0 || e->drains.n > 0 || timeout_usec == 0)
                r = engine_submit(e);
        else if (timeout_usec == UINT64_MAX)
                r = e->faults.submit_fail ? engine_submit(e) : io_uring_submit_and_wait(&e->ring, 1);
        else {
                struct __kernel_timespec ts = usec_to_ts(timeout_usec);
                r = e->faults.submit_fail ? engine_submit(e)
                                          : io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
                if (r == -ETIME)
                        r = 0;
        }
        if (r < 0 && r != -EINTR && r != -EBUSY && r != -EAGAIN)
                return r;

        io_uring_for_each_cqe(&e->ring, head, cqe) {
                dispatch(e, cqe);
                count++;
        }
        io_uring_cq_advance(&e->ring, count);
        return 0;
}

int engine_run(Engine *e) {
        while (!atomic_load(&e->stop)) {
                int r = engine_run_once(e, UINT64_MAX);
                if (r < 0)
                        return r;
        }
        atomic_store(&e->stop, false);
        return 0;
}
