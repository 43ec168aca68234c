/* SPDX-License-Identifier: MIT */

/*
 * Time limits: a job asked to run at most so long is stopped when that
 * time has passed, as a Stop stops it (SIGTERM, the default grace, then
 * the whole job killed), and its status says timed_out.
 *
 * The one idea: the limit is a CLOCK_MONOTONIC deadline in the job's
 * status record (runtime_deadline), like a pending stop's; the ring's
 * timeout is only how this daemon waits for it. A daemon that takes the
 * job over queues the timeout again from the record (store.c), and a
 * deadline already passed fires at once. Jobs without a limit cost
 * nothing: no timeout is queued, no clock is read.
 */

#include <errno.h>

#include "core/engine-internal.h"

int job_arm_runtime_timer(Engine *e, Job *j) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        int r = -EBUSY;
        struct io_uring_sqe *sqe = engine_get_sqe(e, &r);

        if (!sqe)
                return r;
        j->runtime_ts = usec_to_ts(j->st.runtime_deadline > now ? j->st.runtime_deadline - now : 0);
        io_uring_prep_timeout(sqe, &j->runtime_ts, 0, 0);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_RUNTIME_TIMER, j->slot, j->gen));
        j->runtime_armed = true;
        /* As the stop timer: submitted now, so runtime_ts is free again. */
        (void) engine_submit(e);
        return 0;
}

void job_on_runtime_timer(Engine *e, Job *j, int res) {
        uint64_t now;

        j->runtime_armed = false;
        if (res != -ETIME || !j->st.runtime_deadline || j->st.timed_out)
                return;
        if (j->st.state != JOB_STATE_RUNNING && !j->st.process_alive)
                return;
        now = now_usec(CLOCK_MONOTONIC);
        if (now + 1000 < j->st.runtime_deadline) {
                /* Early (cannot happen with a relative timeout, but cheap
                 * to be sure of): wait for the rest. */
                if (job_arm_runtime_timer(e, j) < 0)
                        engine_rearm_later(e, j, REARM_RUNTIME);
                return;
        }
        /* A stop asked for before keeps its own grace and meaning. */
        if (j->st.stop_requested)
                return;
        /* job_stop_begin() puts it on record with the kill's deadline
         * (or the job's end does, when there is no grace). */
        j->st.timed_out = true;
        (void) job_stop_begin(e, j, UINT64_MAX);
}

void job_runtime_done(Engine *e, Job *j) {
        j->rearm &= ~(unsigned) REARM_RUNTIME;
        if (!j->runtime_armed)
                return;
        /* A limit of hours would hold its timeout in the ring that long. */
        engine_cancel(e, ring_ud(OP_RUNTIME_TIMER, j->slot, j->gen));
        j->runtime_armed = false;
}
