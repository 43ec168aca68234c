/* SPDX-License-Identifier: MIT */

/*
 * Capture: a job's pipes, read into its output log.
 *
 * The one idea: memory does not grow with output. Pipe data is read into
 * one engine-wide buffer and appended to the job's output log file at once;
 * subscribers are cursors into that file (subscriber.c).
 *
 * Pipes are watched with one-shot POLL_ADD and read with plain non-blocking
 * read(): no buffer is committed to a pipe that has nothing to say, so ten
 * thousand idle jobs cost no buffer memory (a posted IORING_OP_READ would pin
 * one buffer per pipe). Log appends are synchronous pwritev() into the page
 * cache: on 6.1 a buffered ext4 write submitted to the ring is punted to an
 * io-wq worker thread anyway, which would cost a thread hop and a buffer per
 * write in flight for the same copy.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>

#include "core/engine-internal.h"
#include "shared/macro.h"

int job_open_log(Engine *e, Job *j) {
        char path[JOB_ID_STRING_MAX + 16], dir[JOB_ID_STRING_MAX];

        if (j->log_fd >= 0)
                return 0;
        job_id_to_string(&j->st.id, dir);
        snprintf(path, sizeof(path), "%s/output", dir);
        j->log_fd = openat(e->jobs_fd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        return j->log_fd < 0 ? -errno : 0;
}

/* Appends what a pipe gave us, honouring the output cap. */
static void job_capture(Engine *e, Job *j, JobStream stream, const uint8_t *data, size_t n) {
        uint64_t kept = j->st.stdout_bytes + j->st.stderr_bytes;
        size_t take = n;

        if (j->log_failed)
                take = 0;
        else if (kept + n > e->output_cap)
                take = kept >= e->output_cap ? 0 : (size_t) (e->output_cap - kept);
        take = owner_usage_room(j, take); /* the owner's max-output= */

        if (take > 0) {
                int r = job_open_log(e, j);
                if (r >= 0)
                        r = outlog_append(j->log_fd, &j->log_size, stream, data, take);
                if (r < 0) {
                        /* Disk full or similar: keep the job running, drop the
                         * rest, and say so in the status. */
                        j->log_failed = true;
                        take = 0;
                } else if (stream == JOB_STREAM_STDOUT)
                        j->st.stdout_bytes += take;
                else
                        j->st.stderr_bytes += take;
                owner_usage_output(j, take);
        }
        if (take < n) {
                j->st.truncated = true;
                j->st.dropped_bytes += n - take;
        }
        if (take > 0)
                job_wake_subscribers(e, j);
}

/* Pipe -> log with splice(): one copy (pipe pages into the page cache)
 * instead of two through e->buf. Returns bytes moved, 0 at EOF, -errno. */
static ssize_t job_capture_splice(Engine *e, Job *j, int i) {
        JobStream stream = i == 0 ? JOB_STREAM_STDOUT : JOB_STREAM_STDERR;
        uint64_t kept = j->st.stdout_bytes + j->st.stderr_bytes;
        size_t want = owner_usage_room(j, (size_t) MIN((uint64_t) ENGINE_BUFFER_SIZE, e->output_cap - kept));
        int r = job_open_log(e, j);
        if (r < 0)
                return r;
        ssize_t n = outlog_append_splice(j->log_fd, &j->log_size, stream, j->pipe_fd[i], want);

        if (n > 0) {
                if (stream == JOB_STREAM_STDOUT)
                        j->st.stdout_bytes += (uint64_t) n;
                else
                        j->st.stderr_bytes += (uint64_t) n;
                owner_usage_output(j, (uint64_t) n);
                job_wake_subscribers(e, j);
        }
        return n;
}

void job_close_pipe(Engine *e, Job *j, int i) {
        if (j->pipe_fd[i] < 0)
                return;
        if (j->poll_armed[i]) {
                engine_cancel(e, ring_ud(i == 0 ? OP_PIPE_OUT : OP_PIPE_ERR, j->slot, j->gen));
                j->poll_armed[i] = false;
        }
        j->rearm &= ~(unsigned) (i == 0 ? REARM_OUT : REARM_ERR);
        j->pipe_fd[i] = safe_close(j->pipe_fd[i]);
}

/* A read that emptied a full default-sized pipe means a fast writer: give
 * it a bigger pipe (once; the kernel may refuse when the user is over
 * pipe-user-pages-soft, that is fine). */
static void job_grow_pipe(Job *j, int i, size_t got) {
        if (!j->pipe_big[i] && got >= 65536) {
                j->pipe_big[i] = true;
                (void) fcntl(j->pipe_fd[i], F_SETPIPE_SZ, PIPE_SIZE_BIG);
        }
}

/* One splice step of job_drain_pipe(): DRAIN_* or -1 to go on. */
static int drain_splice_once(Engine *e, Job *j, int i) {
        ssize_t n = job_capture_splice(e, j, i);

        if (n == -EINVAL) {
                e->splice = false; /* the file system cannot: read() for good */
                return -1;
        }
        if (n == -EINTR)
                return -1;
        if (n == -EAGAIN)
                return DRAIN_AGAIN;
        if (n < 0) {
                j->log_failed = true; /* disk full...: the read path drops */
                return -1;
        }
        if (n == 0) {
                job_close_pipe(e, j, i);
                return DRAIN_EOF;
        }
        job_grow_pipe(j, i, (size_t) n);
        return -1;
}

int job_drain_pipe(Engine *e, Job *j, int i, unsigned budget) {
        JobStream stream = i == 0 ? JOB_STREAM_STDOUT : JOB_STREAM_STDERR;

        while (budget-- > 0) {
                ssize_t n;

                if (e->splice && !j->log_failed && j->st.stdout_bytes + j->st.stderr_bytes < e->output_cap &&
                    owner_usage_room(j, 1)) {
                        int d = drain_splice_once(e, j, i);
                        if (d >= 0)
                                return d;
                        continue;
                }

                n = read(j->pipe_fd[i], e->buf, ENGINE_BUFFER_SIZE);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return DRAIN_AGAIN;
                        n = 0; /* treat as EOF */
                }
                if (n == 0) {
                        job_close_pipe(e, j, i);
                        return DRAIN_EOF;
                }
                job_grow_pipe(j, i, (size_t) n);
                job_capture(e, j, stream, e->buf, (size_t) n);
        }
        return DRAIN_MORE;
}

void job_pipe_service(Engine *e, Job *j, int i, unsigned budget) {
        if (j->pipe_fd[i] < 0 || j->poll_armed[i])
                return;
        switch (job_drain_pipe(e, j, i, budget)) {
        case DRAIN_AGAIN:
                if (engine_arm_poll(e, j->pipe_fd[i], POLLIN, i == 0 ? OP_PIPE_OUT : OP_PIPE_ERR, j) >= 0)
                        j->poll_armed[i] = true;
                else
                        engine_rearm_later(e, j, i == 0 ? REARM_OUT : REARM_ERR);
                break;
        case DRAIN_MORE:
                if (!j->drain.linked)
                        list_append(&e->drains, &j->drain);
                break;
        case DRAIN_EOF:
                break;
        }
}
