/* SPDX-License-Identifier: MIT */

/*
 * A job's standard input: the write end of the pipe that is its stdin, and
 * the one writer that may use it (engine.h, "Standard input").
 *
 * The one idea: a write is a plain non-blocking write(2) from the engine
 * thread; when the pipe is full the engine queues a POLLOUT poll on the ring
 * and writes the rest when it completes. The poll points at no memory, and
 * the bytes are the writer's until its done callback, which comes only once
 * they are all in the pipe: the writer asks its client for more only then,
 * so a job that does not read holds its writer back and nothing piles up
 * here. Jobs started without stdin have no JobInput at all.
 */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/engine-internal.h"
#include "core/job-tty.h"
#include "shared/macro.h"

struct JobInput {
        int fd;                 /* the write end, non-blocking */
        bool claimed;           /* a writer has it */
        bool poll_armed;        /* a POLLOUT poll is queued */
        const uint8_t *data;    /* the pending write: borrowed from the writer */
        size_t left;
        EngineInputDone done;   /* NULL: no write pending */
        void *userdata;
};

int job_input_attach(Job *j, int fd) {
        JobInput *in = calloc(1, sizeof(*in));

        if (!in)
                return -ENOMEM;
        in->fd = fd;
        j->input = in;
        j->st.stdin_state = JOB_STDIN_OPEN;
        return 0;
}

static InputWriterId writer_id(const Job *j) {
        return (InputWriterId) { .value = (uint64_t) j->gen << 32 | j->slot };
}

/* The job whose stdin w names, while w holds it; else NULL. */
static Job *writer_job(Engine *e, InputWriterId w) {
        Job *j = ring_slot_get(&e->job_slots, (uint32_t) w.value, (uint32_t) (w.value >> 32));

        return j && j->input && j->input->claimed ? j : NULL;
}

/* Closes the pipe and forgets the writer; the pending write (if any) is
 * handed back to the caller to complete. */
static void input_close(Engine *e, Job *j, EngineInputDone *ret_done, void **ret_userdata) {
        JobInput *in = j->input;

        *ret_done = in->done;
        *ret_userdata = in->userdata;
        if (in->poll_armed && !e->freeing)
                engine_cancel(e, ring_ud(OP_PIPE_IN, j->slot, j->gen));
        j->rearm &= ~(unsigned) REARM_IN;
        safe_close(in->fd);
        free(in);
        j->input = NULL;
        j->st.stdin_state = JOB_STDIN_CLOSED;
}

static int input_arm(Engine *e, Job *j) {
        int r = engine_arm_poll(e, j->input->fd, POLLOUT, OP_PIPE_IN, j);

        if (r >= 0)
                j->input->poll_armed = true;
        return r;
}

/* Writes what it can of the pending write; calls done when all is in or
 * the pipe refused it. */
static void input_pump(Engine *e, Job *j) {
        JobInput *in = j->input;
        EngineInputDone done;
        void *userdata;
        int r = 0;

        while (in->left > 0) {
                ssize_t n = write(in->fd, in->data, in->left);
                if (n >= 0) {
                        in->data += n;
                        in->left -= (size_t) n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        if (input_arm(e, j) < 0)
                                engine_rearm_later(e, j, REARM_IN);
                        return;
                }
                r = -errno; /* EPIPE: nobody reads it any more (SIGPIPE is ignored) */
                break;
        }
        done = in->done;
        userdata = in->userdata;
        in->done = NULL;
        in->data = NULL;
        in->left = 0;
        done(e, r, userdata);
}

int job_input_rearm(Engine *e, Job *j) {
        if (!j->input || !j->input->done || j->input->poll_armed)
                return 0;
        return input_arm(e, j);
}

void job_input_on_poll(Engine *e, Job *j, int res) {
        if (!j->input || !j->input->poll_armed)
                return; /* closed since: a stale completion */
        j->input->poll_armed = false;
        if (res == -ECANCELED || !j->input->done)
                return;
        input_pump(e, j); /* POLLERR too: the write says why */
}

void job_input_end(Engine *e, Job *j) {
        EngineInputDone done;
        void *userdata;

        if (!j->input)
                return;
        input_close(e, j, &done, &userdata);
        if (done)
                done(e->freeing ? NULL : e, e->freeing ? -ECANCELED : -EPIPE, userdata);
}

int engine_input_open(Engine *e, const JobId *id, InputWriterId *ret) {
        Job *j = job_find(e, id);

        if (!j)
                return -ENOENT;
        if (j->st.state != JOB_STATE_RUNNING)
                return -ESRCH;
        if (j->st.stdin_state == JOB_STDIN_NULL)
                return -ENOTTY;
        if (!j->input)
                return -EPIPE;
        if (j->input->claimed)
                return -EBUSY;
        j->input->claimed = true;
        j->st.stdin_state = JOB_STDIN_WRITING;
        *ret = writer_id(j);
        return 0;
}

int engine_input_write(Engine *e, InputWriterId w, const void *data, size_t size, EngineInputDone done,
                       void *userdata) {
        Job *j = writer_job(e, w);

        if (!j)
                return -ENOENT;
        if (j->input->done)
                return -EBUSY;
        j->input->data = data;
        j->input->left = size;
        j->input->done = done;
        j->input->userdata = userdata;
        input_pump(e, j);
        return 0;
}

int engine_input_resize(Engine *e, InputWriterId w, unsigned rows, unsigned cols) {
        Job *j = writer_job(e, w);

        if (!j)
                return -ENOENT;
        if (!j->st.tty)
                return -ENOTTY;
        return job_tty_resize(j->input->fd, rows, cols);
}

int engine_input_close(Engine *e, InputWriterId w) {
        Job *j = writer_job(e, w);
        EngineInputDone done;
        void *userdata;

        if (!j)
                return -ENOENT;
        input_close(e, j, &done, &userdata);
        return 0;
}
