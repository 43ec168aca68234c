/* SPDX-License-Identifier: MIT */

/*
 * Writing job records, and keeping them written when the disk says no.
 *
 * The one idea: what the daemon knows about a job is never worth less on
 * disk than what it told a client. A record is written to status.tmp and
 * renamed over status (a crash leaves the old or the new one); a running
 * job keeps a pre-allocated status.tmp, so its final status needs no new
 * blocks on a disk that filled while it ran; a write the disk refuses
 * anyway is reported (ENGINE_EVENT_SAVE_FAILED, counted), marks the job
 * unsaved, and is retried from a timer with backoff and at shutdown. A
 * directory deleted by hand is found and said, not retried.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/jobfile.h"
#include "core/jobrecord.h"
#include "shared/macro.h"

int jobrecord_write(int jobs_fd, const JobStatus *st, uint64_t log_size, bool reserve) {
        char dir[JOB_ID_STRING_MAX], tmp[JOB_ID_STRING_MAX + 16], final[JOB_ID_STRING_MAX + 16];
        char buf[JOBFILE_MAX];
        _cleanup_close_ int fd = -1;
        ssize_t w;
        int n;

        n = jobfile_format(st, log_size, buf, sizeof(buf));
        if (n < 0)
                return n;
        job_id_to_string(&st->id, dir);
        snprintf(tmp, sizeof(tmp), "%s/status.tmp", dir);
        snprintf(final, sizeof(final), "%s/status", dir);
        /* Not truncated first: a reserved status.tmp keeps its blocks, the
         * write goes into them, and the truncation after it only frees. */
        fd = openat(jobs_fd, tmp, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        w = pwrite(fd, buf, (size_t) n, 0);
        if (w < 0)
                return -errno;
        if (w != n)
                return -ENOSPC; /* a short write: the file system is full */
        if (ftruncate(fd, n) < 0)
                return -errno;
        if (renameat(jobs_fd, tmp, jobs_fd, final) < 0)
                return -errno;
        if (reserve) {
                /* Best effort: without it a later write may need space. */
                safe_close(fd);
                fd = openat(jobs_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd >= 0)
                        (void) posix_fallocate(fd, 0, JOBFILE_MAX);
        }
        return 0;
}

/* State letter and start time of pid from /proc/PID/stat; -errno. */
static int read_pid_stat(pid_t pid, char *ret_state, uint64_t *ret_starttime) {
        char path[64], buf[1024];
        _cleanup_close_ int fd = -1;
        unsigned long long t = 0;
        const char *p;
        ssize_t n;

        if (pid <= 0)
                return -ESRCH;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return n < 0 ? -errno : -EIO;
        buf[n] = 0;
        /* "pid (comm) state ppid ...": comm may hold anything, even ") ";
         * the fields after it start at the last ')'. starttime is field 22,
         * the 20th after comm (the state is the 1st). */
        p = strrchr(buf, ')');
        if (!p || p[1] != ' ' || !p[2])
                return -EBADMSG;
        *ret_state = p[2];
        p++;
        for (int field = 0; field < 19 && p; field++)
                p = strchr(p + 1, ' ');
        if (!p || sscanf(p, " %llu", &t) != 1)
                return -EBADMSG;
        *ret_starttime = t;
        return 0;
}

uint64_t jobrecord_pid_starttime(pid_t pid) {
        uint64_t t;
        char state;

        return read_pid_stat(pid, &state, &t) < 0 ? 0 : t;
}

bool jobrecord_pid_alive(pid_t pid, uint64_t starttime) {
        uint64_t t;
        char state;

        /* A zombie has ended: only its parent's wait is missing. */
        return starttime != 0 && read_pid_stat(pid, &state, &t) >= 0 && t == starttime && state != 'Z' &&
               state != 'X';
}

/* Deleted directories ---------------------------------------------------------- */

bool jobrecord_check_dir(Engine *e, Job *j) {
        char dir[JOB_ID_STRING_MAX];
        struct stat sb;

        if (j->st.files_removed)
                return true;
        /* An open log with no name left says it without a lookup. */
        if (j->log_fd >= 0 && fstat(j->log_fd, &sb) == 0 && sb.st_nlink > 0)
                return false;
        if (fstatat(e->jobs_fd, job_id_to_string(&j->st.id, dir), &sb, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
                return false;
        j->st.files_removed = true;
        job_notify(e, ENGINE_EVENT_FILES_REMOVED, j);
        return true;
}

/* Retry timer ------------------------------------------------------------------- */

static void retry_fire(Engine *e, void *userdata) {
        if (!e)
                return;
        jobrecord_retry_all(e);
}

static void retry_arm(Engine *e) {
        if (e->freeing || !e->ring_ok)
                return;
        if (!e->save_timer && engine_timer_new(e, retry_fire, NULL, &e->save_timer) < 0)
                return;
        if (engine_timer_armed(e, e->save_timer))
                return;
        if (e->save_backoff_usec < JOBRECORD_RETRY_MIN_USEC)
                e->save_backoff_usec = JOBRECORD_RETRY_MIN_USEC;
        if (engine_timer_arm(e, e->save_timer, e->save_backoff_usec) < 0)
                return; /* the next failed write tries again */
        e->save_backoff_usec = MIN(e->save_backoff_usec * 2, JOBRECORD_RETRY_MAX_USEC);
}

void jobrecord_retry_all(Engine *e) {
        for (ListNode *p = e->jobs.first; p && e->n_unsaved > 0; p = p->next) {
                Job *j = list_entry(p, Job, by_start);
                if (j->status_unsaved)
                        (void) job_write_status(e, j);
        }
        if (e->n_unsaved == 0)
                e->save_backoff_usec = 0;
}

int job_write_status(Engine *e, Job *j) {
        int r = jobrecord_write(e->jobs_fd, &j->st, j->log_size, j->st.state == JOB_STATE_RUNNING);

        if (r >= 0) {
                if (j->status_unsaved) {
                        j->status_unsaved = false;
                        e->n_unsaved--;
                        job_notify(e, ENGINE_EVENT_SAVED, j);
                }
                return 0;
        }
        /* No directory to write into: said once, never retried. */
        if (r == -ENOENT && jobrecord_check_dir(e, j))
                return r;
        e->save_failures++;
        e->save_last_error = -r;
        if (!j->status_unsaved) {
                j->status_unsaved = true;
                e->n_unsaved++;
                job_notify(e, ENGINE_EVENT_SAVE_FAILED, j);
        }
        retry_arm(e);
        return r;
}
