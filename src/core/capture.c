/* SPDX-License-Identifier: MIT */

/*
 * Capture: a job's pipes, read into its output log.
 *
 * The one idea: memory does not grow with output. Pipe data is read into
 * one engine-wide buffer and appended to the job's output log file at once;
 * subscribers are cursors into that file (subscriber.c). The exception that
 * saves a copy: a follower that has all the log so far and may take a chunk
 * lends its own buffer, the pipe is read into it, appended from it and sent
 * as it is (the direct path, sub_direct_candidate()).
 *
 * Pipes are watched with one-shot POLL_ADD and read with plain non-blocking
 * read(): no buffer is committed to a pipe that has nothing to say, so ten
 * thousand idle jobs cost no buffer memory (a posted IORING_OP_READ would pin
 * one buffer per pipe). Log appends are synchronous pwritev() into the page
 * cache: on 6.1 a buffered ext4 write submitted to the ring is punted to an
 * io-wq worker thread anyway, which would cost a thread hop and a buffer per
 * write in flight for the same copy.
 *
 * A job that keeps its pipe busy with tiny writes (one byte at a time) would
 * otherwise cost a wake-up, a read and a log record per write: measured
 * before, 9.07 s of daemon CPU in 10 s and a log 1.79x its data. So a tiny
 * read (under BATCH_TINY bytes) that follows another within BATCH_WINDOW_USEC
 * does not re-arm the poll at once but after BATCH_DELAY_USEC, and the next
 * read takes what piled up meanwhile as one record. Output after a quiet
 * spell (a prompt, an echo) is still read the moment it arrives.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "core/engine-internal.h"
#include "shared/macro.h"

/* The log open for appending, its version known. */
static int job_log_writable(Engine *e, Job *j) {
        int r = job_open_log(e, j);

        if (r >= 0 && j->log_version == 0) {
                r = outlog_version(j->log_fd);
                if (r > 0)
                        j->log_version = (uint8_t) r;
        }
        return r < 0 ? r : 0;
}

int job_open_log(Engine *e, Job *j) {
        char path[JOB_ID_STRING_MAX + 16], dir[JOB_ID_STRING_MAX];

        if (j->log_fd >= 0)
                return 0;
        job_id_to_string(&j->st.id, dir);
        snprintf(path, sizeof(path), "%s/output", dir);
        j->log_fd = openat(e->jobs_fd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        return j->log_fd < 0 ? -errno : 0;
}

/* The status is written again (a checkpoint: it holds log_size and the byte
 * counts) every CHECKPOINT_BYTES of log or CHECKPOINT_RECORDS records, so a
 * daemon that dies leaves its successor at most that much log to scan. One
 * small file rename per 16 MiB is noise beside the 16 MiB. */
#define CHECKPOINT_BYTES (16u * 1024u * 1024u)
#define CHECKPOINT_RECORDS 65536u

static void job_appended(Engine *e, Job *j) {
        j->checkpoint_records++;
        if (j->log_size - j->checkpoint_size < CHECKPOINT_BYTES && j->checkpoint_records < CHECKPOINT_RECORDS)
                return;
        j->checkpoint_size = j->log_size;
        j->checkpoint_records = 0;
        (void) job_write_status(e, j); /* a failed checkpoint only costs a longer scan */
}

/* n bytes of stream went into the log (by write or by splice): counted, for
 * the job and its owner, and the subscribers woken. */
static void job_appended_bytes(Engine *e, Job *j, JobStream stream, uint64_t n) {
        if (stream == JOB_STREAM_STDOUT)
                j->st.stdout_bytes += n;
        else
                j->st.stderr_bytes += n;
        owner_usage_output(j, n);
        job_appended(e, j);
        job_wake_subscribers(e, j);
}

/* Appends what a pipe gave us, honouring the output cap. Returns the bytes
 * kept: data's first bytes, now the log's last. */
static size_t job_capture(Engine *e, Job *j, JobStream stream, const uint8_t *data, size_t n) {
        uint64_t kept = j->st.stdout_bytes + j->st.stderr_bytes;
        size_t take = n;

        if (j->log_failed)
                take = 0;
        else if (kept + n > e->output_cap)
                take = kept >= e->output_cap ? 0 : (size_t) (e->output_cap - kept);
        take = owner_usage_room(j, take); /* the owner's max-output= */

        if (take > 0) {
                int r = job_log_writable(e, j);
                if (r >= 0)
                        r = outlog_append(j->log_fd, j->log_version, &j->log_size, stream, data, take);
                if (r < 0) {
                        /* Disk full or similar: keep the job running, drop the
                         * rest, and say so in the status. */
                        j->log_failed = true;
                        take = 0;
                } else
                        job_appended_bytes(e, j, stream, take);
        }
        if (take < n) {
                j->st.truncated = true;
                j->st.dropped_bytes += n - take;
        }
        return take;
}

/* Pipe -> log with splice(): one copy (pipe pages into the page cache)
 * instead of two through e->buf. Returns bytes moved, 0 at EOF, -errno. */
static ssize_t job_capture_splice(Engine *e, Job *j, int i) {
        JobStream stream = i == 0 ? JOB_STREAM_STDOUT : JOB_STREAM_STDERR;
        uint64_t kept = j->st.stdout_bytes + j->st.stderr_bytes;
        size_t want = owner_usage_room(j, (size_t) MIN((uint64_t) ENGINE_BUFFER_SIZE, e->output_cap - kept));
        int r = job_log_writable(e, j);
        if (r < 0)
                return r;
        ssize_t n = outlog_append_splice(j->log_fd, j->log_version, &j->log_size, stream, j->pipe_fd[i], want);

        if (n > 0)
                job_appended_bytes(e, j, stream, (uint64_t) n);
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
static int drain_splice_once(Engine *e, Job *j, int i, bool stop_short) {
        ssize_t n = job_capture_splice(e, j, i);

        if (n == -EINVAL) {
                e->splice_failed = true; /* the file system cannot: read() for good */
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
        return stop_short && n < BATCH_TINY ? DRAIN_AGAIN : -1;
}

/* Reads what pipe i holds, at most budget reads. stop_short: a tiny read
 * (under BATCH_TINY) ends the drain as if the pipe were empty — it just
 * was — so a writer trickling bytes on the other core while we read is not
 * read again and again, a record per byte, but waits for the batching
 * delay (job_wait_pipe). The drain after a job's exit passes false: it
 * takes everything up to EOF. */
int job_drain_pipe(Engine *e, Job *j, int i, unsigned budget, bool stop_short) {
        JobStream stream = i == 0 ? JOB_STREAM_STDOUT : JOB_STREAM_STDERR;

        while (budget-- > 0) {
                ssize_t n;

                /* splice() where asked for, and wherever jobs outlive the
                 * daemon: it is the crash-exact path (a byte is in the pipe
                 * or in the log whenever the daemon dies, outlog.h), where
                 * read() would lose what the daemon read and had not yet
                 * written. As fast as read()+pwritev() (bench/README.md). */
                if ((e->splice || e->keeper) && !e->splice_failed && !j->log_failed && !j->st.tty &&
                    j->st.stdout_bytes + j->st.stderr_bytes < e->output_cap && owner_usage_room(j, 1)) {
                        int d = drain_splice_once(e, j, i, stop_short);
                        if (d >= 0)
                                return d;
                        continue;
                }

                /* A follower that has all the log so far gets the pipe
                 * read into its own buffer (subscriber.c, the direct path),
                 * sized by what the pipe holds: nothing is allocated for a
                 * pipe that turns out empty, and a line gets a small one. */
                void *buf = NULL;
                size_t size = ENGINE_BUFFER_SIZE;
                Subscriber *direct = j->log_failed ? NULL : sub_direct_candidate(j, stream);
                int avail = 0;
                if (direct && ioctl(j->pipe_fd[i], FIONREAD, &avail) == 0 && avail > 0)
                        buf = sub_direct_buffer(direct, (size_t) avail, &size);
                if (!buf) {
                        direct = NULL;
                        buf = e->buf;
                        size = ENGINE_BUFFER_SIZE;
                }

                n = read(j->pipe_fd[i], buf, size);
                int err = errno;
                if (n <= 0 && direct)
                        sub_direct_end(e, direct, stream, buf, 0);
                if (n < 0) {
                        if (err == EINTR)
                                continue;
                        if (err == EAGAIN)
                                return DRAIN_AGAIN;
                        n = 0; /* treat as EOF */
                }
                if (n == 0) {
                        job_close_pipe(e, j, i);
                        return DRAIN_EOF;
                }
                job_grow_pipe(j, i, (size_t) n);
                size_t kept = job_capture(e, j, stream, buf, (size_t) n);
                if (direct)
                        sub_direct_end(e, direct, stream, buf, kept); /* direct may be gone now */
                if (stop_short && (size_t) n < BATCH_TINY)
                        return DRAIN_AGAIN;
        }
        return DRAIN_MORE;
}

/* Bytes a pipe has given so far, kept or dropped. */
static uint64_t job_bytes_read(const Job *j) {
        return j->st.stdout_bytes + j->st.stderr_bytes + j->st.dropped_bytes;
}

/* The relative timeout of every batching delay: constant, so it outlives
 * every request that points at it. */
static const struct __kernel_timespec batch_delay_ts = {
        .tv_sec = 0,
        .tv_nsec = (long long) BATCH_DELAY_USEC * 1000,
};

/* After a drain that found the pipe empty: watch it again at once, or, for
 * the second tiny read in a row, after the batching delay. A look that
 * found nothing at all means the writer went quiet: poll, so an idle pipe
 * costs no timer and its next write is read the moment it comes. */
static void job_wait_pipe(Engine *e, Job *j, int i, uint64_t got) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        bool tiny = got > 0 && got < BATCH_TINY;
        bool busy = tiny && j->last_tiny[i] > 0 && now - j->last_tiny[i] < BATCH_WINDOW_USEC;
        struct io_uring_sqe *sqe;

        if (tiny)
                j->last_tiny[i] = now;
        if (busy && (sqe = engine_get_sqe(e, NULL))) {
                /* The kernel only reads it (a const object is never written). */
                io_uring_prep_timeout(sqe, (struct __kernel_timespec *) &batch_delay_ts, 0, 0);
                io_uring_sqe_set_data64(sqe, ring_ud(i == 0 ? OP_BATCH_OUT : OP_BATCH_ERR, j->slot, j->gen));
                j->batch_armed[i] = true;
                e->batch_delays++;
                return;
        }
        if (engine_arm_poll(e, j->pipe_fd[i], POLLIN, i == 0 ? OP_PIPE_OUT : OP_PIPE_ERR, j) >= 0)
                j->poll_armed[i] = true;
        else
                engine_rearm_later(e, j, i == 0 ? REARM_OUT : REARM_ERR);
}

void job_on_batch_timer(Engine *e, Job *j, int i) {
        /* Not cancelled when the pipe closes: it ends within
         * BATCH_DELAY_USEC and then finds no pipe. */
        j->batch_armed[i] = false;
        job_pipe_service(e, j, i, DRAIN_BUDGET);
}

void job_pipe_service(Engine *e, Job *j, int i, unsigned budget) {
        uint64_t before = job_bytes_read(j);

        if (j->pipe_fd[i] < 0 || j->poll_armed[i] || j->batch_armed[i])
                return;
        switch (job_drain_pipe(e, j, i, budget, true)) {
        case DRAIN_AGAIN:
                job_wait_pipe(e, j, i, job_bytes_read(j) - before);
                break;
        case DRAIN_MORE:
                if (!j->drain.linked)
                        list_append(&e->drains, &j->drain);
                break;
        case DRAIN_EOF:
                break;
        }
}
