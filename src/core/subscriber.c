/* SPDX-License-Identifier: MIT */

/*
 * Subscribers: cursors into a job's output log.
 *
 * The one idea: the log file is the buffer. A subscriber is a position in
 * it, and it reads (from the page cache) only when its consumer said it is
 * ready, so a slow consumer lags on its own cursor and never slows the job,
 * the pipes or other subscribers. New output only queues the ready ones.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/engine-internal.h"
#include "core/jobrecord.h"
#include "shared/macro.h"

void sub_queue(Engine *e, Subscriber *s) {
        if (!s->runnable.linked)
                list_append(&e->runnable, &s->runnable);
}

/* Wake subscribers that are waiting for more data or for the end. */
void job_wake_subscribers(Engine *e, Job *j) {
        for (ListNode *n = j->subs.first; n; n = n->next) {
                Subscriber *s = list_entry(n, Subscriber, in_job);
                if (s->ready)
                        sub_queue(e, s);
        }
}

static Subscriber *sub_get(Engine *e, SubscriberId id) {
        if (id.value == 0)
                return NULL;
        return ring_slot_get(&e->sub_slots, (uint32_t) (id.value & 0xffffffffu) - 1, (uint32_t) (id.value >> 32));
}

void sub_free(Engine *e, Subscriber *s) {
        Job *j = s->job;

        list_unlink(&e->runnable, &s->runnable);
        list_unlink(&j->subs, &s->in_job);
        ring_slot_free(&e->sub_slots, s->slot);
        e->n_subscribers--;
        free(s);
        if (j->subs.n == 0 && j->st.state != JOB_STATE_RUNNING)
                j->log_fd = safe_close(j->log_fd);
        job_notify(e, ENGINE_EVENT_SUBSCRIBERS, j);
}

/* The most a chunk to s may hold: what its consumer takes now, at most
 * ENGINE_CHUNK_MAX. */
static size_t sub_chunk_max(const Subscriber *s) {
        size_t max = s->ops.chunk_max ? s->ops.chunk_max(s->userdata) : 0;

        return max == 0 || max > ENGINE_CHUNK_MAX ? ENGINE_CHUNK_MAX : max;
}

/* Hands the next chunk to s: > 0 if one was handed over (s may be gone
 * then), 0 at the end of what exists, < 0 if the log cannot be read. */
static ssize_t sub_send_chunk(Engine *e, Subscriber *s) {
        Job *j = s->job;
        JobStream stream = JOB_STREAM_STDOUT;
        ssize_t n;

        if (j->log_fd >= 0 && s->cur.view < s->skip_to)
                (void) outlog_seek(j->log_fd, j->log_size, &s->cur, s->streams, s->skip_to);
        if (j->log_fd < 0 || s->cur.view < s->skip_to || s->cur.pos >= j->log_size)
                return 0;
        /* The file bytes left bound the data bytes left: a small chunk gets
         * a small buffer. The consumer may ask for less. */
        size_t max = sub_chunk_max(s);
        size_t want = (size_t) MIN((uint64_t) max, j->log_size - s->cur.pos);
        uint8_t *buf = s->ops.buffer ? s->ops.buffer(s->userdata, want) : NULL;

        n = outlog_read(j->log_fd, j->log_size, &s->cur, s->streams, buf ?: e->buf, buf ? want : max, &stream);
        if (n > 0) {
                s->ready = false;
                s->ops.chunk(s->userdata, stream, s->cur.view - (uint64_t) n, buf ?: e->buf, (size_t) n);
                return n;
        }
        if (buf)
                (void) s->ops.buffer(s->userdata, 0);
        return n;
}

/* The direct path (capture.c): a follower that has read everything logged
 * so far and may take a chunk now gets the job's pipe read straight into
 * its buffer; that buffer is then appended to the log and sent as it is,
 * so the bytes are not read back from the log (one copy less per byte:
 * measured in bench/README.md, "Per byte"). Any other subscriber reads the
 * log as before; so does this one whenever it is not caught up. */
Subscriber *sub_direct_candidate(Job *j, JobStream stream) {
        for (ListNode *n = j->subs.first; n; n = n->next) {
                Subscriber *s = list_entry(n, Subscriber, in_job);
                if (!s->ready || !s->follow || !s->ops.buffer || !(s->streams & stream))
                        continue;
                /* At the end, between records, the log's header read, no
                 * skip pending: exactly where the next record will start. */
                if (s->cur.version == 0 || s->cur.rec_left > 0 || s->cur.pos != j->log_size || s->cur.view < s->skip_to)
                        continue;
                return s;
        }
        return NULL;
}

void *sub_direct_buffer(Subscriber *s, size_t want, size_t *ret_size) {
        size_t size = MIN(sub_chunk_max(s), want); /* a line gets a small buffer, as from the log */
        void *buf = s->ops.buffer(s->userdata, size);

        if (buf)
                *ret_size = size;
        return buf;
}

/* The pipe read gave n bytes into s's buffer and the last `logged` of the
 * log (ending at j->log_size) are its first `logged` bytes: hand them over
 * as if read from the log. logged == 0 (nothing read, or nothing kept) gives
 * the buffer back. s may be gone afterwards. */
void sub_direct_end(Engine *e, Subscriber *s, JobStream stream, const void *buf, size_t logged) {
        Job *j = s->job;

        if (logged == 0) {
                (void) s->ops.buffer(s->userdata, 0);
                return;
        }
        s->cur.pos = j->log_size;
        s->cur.rec_left = 0;
        s->cur.view += logged;
        s->ready = false;
        list_unlink(&e->runnable, &s->runnable);
        e->chunks_direct++;
        s->ops.chunk(s->userdata, stream, s->cur.view - logged, buf, logged);
}

/* Delivers one chunk, or the end, to a ready subscriber. */
void sub_run(Engine *e, Subscriber *s) {
        Job *j = s->job;
        ssize_t n;

        if (!s->ready)
                return;
        n = sub_send_chunk(e, s);
        if (n > 0)
                return; /* s may be gone now */

        /* At the end of what exists (or the log cannot be read). */
        if (n == 0 && s->follow && j->st.state == JOB_STATE_RUNNING)
                return; /* capture and exit queue us again */

        JobStatus st = j->st;
        SubscriberOps ops = s->ops;
        void *ud = s->userdata;
        sub_free(e, s);
        if (ops.end)
                ops.end(ud, &st);
        retention_run(e);
}

/* What is only read is opened for reading: the log of a job that no longer
 * runs (nothing appends to it), so its output is still served from a state
 * directory that became read-only (EROFS) or lost write permission. */
static int sub_open_log(Engine *e, Job *j) {
        char path[JOB_ID_STRING_MAX + 16], dir[JOB_ID_STRING_MAX];

        if (j->log_fd >= 0 || j->st.state == JOB_STATE_RUNNING)
                return job_open_log(e, j);
        snprintf(path, sizeof(path), "%s/output", job_id_to_string(&j->st.id, dir));
        j->log_fd = openat(e->jobs_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        return j->log_fd < 0 ? -errno : 0;
}

int engine_subscribe(Engine *e, const JobId *id, unsigned streams, uint64_t offset, bool follow,
                     const SubscriberOps *ops, void *userdata, SubscriberId *ret) {
        Job *j = job_find(e, id);
        Subscriber *s;
        int r;

        if (!j)
                return -ENOENT;
        if (streams == 0 || (streams & ~(unsigned) JOB_STREAMS_ALL) || !ops || !ops->chunk)
                return -EINVAL;

        r = sub_open_log(e, j);
        if (r == -ENOENT)
                (void) jobrecord_check_dir(e, j); /* said in its status, logged */
        if (r < 0)
                return r;

        s = calloc(1, sizeof(Subscriber));
        if (!s)
                return -ENOMEM;
        r = ring_slot_alloc(&e->sub_slots, s, &s->slot, &s->gen);
        if (r < 0) {
                free(s);
                return r;
        }
        s->job = j;
        s->streams = streams;
        s->follow = follow;
        s->ready = true;
        s->ops = *ops;
        s->userdata = userdata;
        outlog_cursor_init(&s->cur);
        /* An offset past the current end is kept and skipped to as the
         * output arrives (sub_run()). */
        s->skip_to = offset;
        list_append(&j->subs, &s->in_job);
        e->n_subscribers++;
        sub_queue(e, s);
        job_notify(e, ENGINE_EVENT_SUBSCRIBERS, j);
        *ret = (SubscriberId) { .value = (uint64_t) s->gen << 32 | (uint64_t) (s->slot + 1) };
        return 0;
}

int engine_subscriber_ready(Engine *e, SubscriberId id) {
        Subscriber *s = sub_get(e, id);
        if (!s)
                return -ENOENT;
        s->ready = true;
        sub_queue(e, s);
        return 0;
}

int engine_unsubscribe(Engine *e, SubscriberId id) {
        Subscriber *s = sub_get(e, id);
        if (!s)
                return -ENOENT;
        sub_free(e, s);
        return 0;
}
