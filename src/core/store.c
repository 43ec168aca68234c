/* SPDX-License-Identifier: MIT */

/*
 * The state directory: one directory per job under jobs/, holding its
 * status file and its output log; loaded at start, removed by retention.
 *
 * The one idea: the files are the truth that survives the daemon. A status
 * is written to status.tmp and renamed over status (jobrecord.c), so a
 * crash leaves the old or the new file, never half of one; a job found
 * "running" at start belonged to a daemon that died, and its log says how
 * far it got. Every directory is loaded or removed: one without a record
 * names no process and is cleaned up.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/engine-internal.h"
#include "core/jobfile.h"
#include "core/jobrecord.h"
#include "shared/fs-util.h"
#include "shared/macro.h"

/* Status files (written by jobrecord.c) ------------------------------------------ */

static int job_read_status(Engine *e, const char *dir, JobStatus *s, uint64_t *ret_log_size) {
        char path[JOB_ID_STRING_MAX + 16], buf[JOBFILE_MAX + 1], check[JOB_ID_STRING_MAX];
        ssize_t n;
        int r;

        snprintf(path, sizeof(path), "%s/status", dir);
        n = read_small_file_at(e->jobs_fd, path, O_NOFOLLOW, buf, sizeof(buf));
        if (n < 0)
                return (int) n;
        r = jobfile_parse(buf, s, ret_log_size);
        if (r < 0)
                return r;
        /* The write end of a stdin pipe is not kept (keeper.c): it closed
         * with the daemon that had it, and the job read EOF. */
        if (s->stdin_state != JOB_STDIN_NULL)
                s->stdin_state = JOB_STDIN_CLOSED;
        unsigned version = jobfile_version(buf);
        if (version > JOBFILE_VERSION) {
                e->newer_records++;
                e->newer_version = MAX(e->newer_version, version);
        }
        /* The file must describe the job whose directory it is in. */
        if (strcmp(job_id_to_string(&s->id, check), dir) != 0)
                return -EBADMSG;
        return 0;
}

/* Loading at start ------------------------------------------------------------- */

/* The log of a job whose status may lag behind it: the status holds a
 * checkpoint, the log size and byte counts at its last write (capture.c
 * writes one every few MiB): only what follows it is scanned, so a restart
 * does not walk every record of every log again. A torn record at the end
 * (a crash in the middle of an append) is cut off. *ret_mtime: the log's
 * last change, 0 if it has none. */
static void load_scan_log(Engine *e, Job *j, const char *dir, uint64_t *ret_mtime) {
        char path[JOB_ID_STRING_MAX + 16];
        _cleanup_close_ int fd = -1;
        OutlogScan from = { .end = j->log_size, .stdout_bytes = j->st.stdout_bytes, .stderr_bytes = j->st.stderr_bytes };
        OutlogScan got;
        struct stat sb;
        int r = -ENOENT;

        *ret_mtime = 0;
        snprintf(path, sizeof(path), "%s/output", dir);
        fd = openat(e->jobs_fd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
                r = outlog_scan_from(fd, true, &from, &got);
                if (r == -ERANGE) /* the log is shorter than the checkpoint */
                        r = outlog_scan_from(fd, true, NULL, &got);
        }
        if (r < 0) {
                j->log_size = OUTLOG_HEADER_SIZE;
                return;
        }
        e->log_bytes_scanned += got.scanned;
        e->logs_cut += got.cut > 0;
        e->log_bytes_cut += got.cut;
        e->logs_finished += got.finished;
        j->log_size = got.end;
        j->st.stdout_bytes = got.stdout_bytes;
        j->st.stderr_bytes = got.stderr_bytes;
        if (fstat(fd, &sb) >= 0)
                *ret_mtime = (uint64_t) sb.st_mtim.tv_sec * 1000000u + (uint64_t) sb.st_mtim.tv_nsec / 1000u;
}

/* A job that was running when the previous daemon died, and whose fds it
 * did not keep: how it went on is not known. Its log says how far it got. */
static void load_mark_lost(Engine *e, Job *j, uint64_t log_mtime) {
        j->st.state = JOB_STATE_LOST;
        j->st.end_usec = MAX(log_mtime, j->st.start_usec);
        (void) job_write_status(e, j);
}

/* A LOST job whose process still runs (no cgroup killed it with the old
 * daemon): watched through a pidfd, so that it can be stopped and its end
 * seen. The start time is checked after pidfd_open(), so the pidfd is of
 * the job's process and not of a later one with its pid. */
static void load_adopt_alive(Engine *e, Job *j) {
        int fd;

        if (j->st.pid <= 0 || !jobrecord_pid_alive(j->st.pid, j->st.pid_starttime))
                return;
        fd = (int) syscall(SYS_pidfd_open, j->st.pid, 0);
        if (fd < 0)
                return;
        fd = fd_above_2(fd);
        if (fd < 0 || !jobrecord_pid_alive(j->st.pid, j->st.pid_starttime)) {
                safe_close(fd);
                return;
        }
        j->pidfd = fd;
        j->st.process_alive = true;
        job_thaw_adopted(e, j);
        if (engine_arm_poll(e, fd, POLLIN, OP_PIDFD, j) >= 0)
                j->pidfd_armed = true;
        else
                engine_rearm_later(e, j, REARM_PIDFD);
        /* Lost, but still running: its time limit holds as a Stop does. */
        if (j->st.runtime_deadline && !j->st.timed_out && job_arm_runtime_timer(e, j) < 0)
                engine_rearm_later(e, j, REARM_RUNTIME);
}

/* A running job whose pidfd and pipes the previous daemon kept (keeper.c):
 * it goes on as if nothing happened. Output it wrote meanwhile waits in its
 * pipes; its exit, if it came, is read from the pidfd (job-exit.c); a stop
 * that was pending keeps its deadline. */
static bool load_adopt_kept(Engine *e, Job *j, KeptJob *kj) {
        bool changed = false;

        j->pidfd = fd_above_2(kj->fds[0]);
        j->pipe_fd[0] = fd_above_2(kj->fds[1]);
        j->pipe_fd[1] = fd_above_2(kj->fds[2]);
        j->keep_bundle = kj->bundle;
        if (j->st.starting || j->st.pid <= 0) {
                /* Kept, but the record still is the one of before the
                 * spawn: the kept record names the process. */
                j->st.pid = kj->pid;
                j->st.pid_starttime = kj->pid_starttime;
                j->st.starting = false;
                changed = true;
        }
        j->st.state = JOB_STATE_RUNNING;
        j->st.end_usec = 0;
        e->jobs_adopted++;
        return changed;
}

/* After the job is in the hash: counted as running and watched; its
 * record written again only where it changed (a record of before the
 * spawn, now naming the process): a write per job would cost a restart
 * with 10,000 jobs some 10 s. */
static void load_watch_adopted(Engine *e, Job *j, bool changed) {
        e->n_running++;
        owner_usage_set_running(j, true);
        job_thaw_adopted(e, j);
        if (job_arm_all(e, j) < 0)
                engine_rearm_later(e, j, REARM_PIDFD);
        if (job_stopping(j) && j->st.stop_deadline && job_arm_stop_timer(e, j) < 0)
                engine_rearm_later(e, j, REARM_STOP);
        /* The time limit goes on too; one already passed stops it now. */
        if (j->st.runtime_deadline && !j->st.timed_out && job_arm_runtime_timer(e, j) < 0)
                engine_rearm_later(e, j, REARM_RUNTIME);
        if (changed)
                (void) job_write_status(e, j);
}

static int load_job(Engine *e, const char *dir) {
        JobStatus st;
        uint64_t log_size = 0, log_mtime = 0;
        KeptJob kj;
        bool kept;
        Job *j;
        int r;

        r = job_read_status(e, dir, &st, &log_size);
        if (r < 0)
                return r;
        if (job_find(e, &st.id))
                return -EEXIST;
        /* Running (or spawned, and its fds kept) when the previous daemon
         * went: adopted if its fds were kept. */
        kept = (st.state == JOB_STATE_RUNNING || st.starting) && keeper_take(e->keeper, &st.id, &kj) >= 0;
        /* The record written before a spawn that never got its pid nor its
         * fds kept: the daemon died before the process was made, or in
         * the instant between clone3() and the next write (jobworkerd(8)). */
        if (st.starting && !kept)
                return -ESTALE;

        j = job_new(e);
        if (!j) {
                if (kept)
                        for (int i = 0; i < 3; i++)
                                safe_close(kj.fds[i]);
                return -ENOMEM;
        }
        j->st = st;
        j->log_size = log_size;
        bool was_running = st.state == JOB_STATE_RUNNING || kept, changed = false;
        if (was_running || log_size < OUTLOG_HEADER_SIZE)
                load_scan_log(e, j, dir, &log_mtime);
        if (kept)
                changed = load_adopt_kept(e, j, &kj);
        else if (was_running)
                load_mark_lost(e, j, log_mtime);

        r = job_hash_add(e, j);
        if (r < 0) {
                job_free(e, j);
                return r;
        }
        /* Lost now, or by an earlier daemon's word: a lost job's process
         * may outlive more than one daemon (a second crash or restart). */
        if (kept)
                load_watch_adopted(e, j, changed);
        else if (was_running || j->st.state == JOB_STATE_LOST)
                load_adopt_alive(e, j);
        claims_job_loaded(e, j); /* after: a lost job whose process runs holds its name */
        return 0;
}

static int cmp_start(const void *a, const void *b) {
        const Job *x = *(Job *const *) a, *y = *(Job *const *) b;
        return x->st.start_usec < y->st.start_usec ? -1 : x->st.start_usec > y->st.start_usec;
}

static int cmp_end(const void *a, const void *b) {
        const Job *x = *(Job *const *) a, *y = *(Job *const *) b;
        return x->st.end_usec < y->st.end_usec ? -1 : x->st.end_usec > y->st.end_usec;
}

int store_load(Engine *e) {
        _cleanup_free_ Job **v = NULL;
        DIR *d = opendir_dup(e->jobs_fd);
        struct dirent *de;
        size_t n = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                JobId id;
                if (job_id_from_string(de->d_name, &id) < 0)
                        continue;
                /* No record at all (a daemon older than records-before-
                 * spawn died between spawn and its first write; or a
                 * start's first write never happened), or only the one
                 * written before the spawn: nothing to show, nothing to
                 * reach, removed. A record we cannot read is left alone
                 * (and not shown); it does not stop the engine. */
                int r = load_job(e, de->d_name);
                if (r == -ENOENT || r == -ESTALE) {
                        store_remove_job_dir(e, de->d_name);
                        e->dirs_cleaned++;
                }
        }
        closedir(d);

        /* Order: all jobs by start, finished ones by end. */
        v = malloc(MAX(e->job_slots.n, 1u) * sizeof(Job *));
        if (!v)
                return -ENOMEM;
        for (uint32_t i = 0; i < e->job_slots.n; i++)
                if (e->job_slots.slots[i].ptr)
                        v[n++] = e->job_slots.slots[i].ptr;
        qsort(v, n, sizeof(Job *), cmp_start);
        for (size_t i = 0; i < n; i++)
                list_append(&e->jobs, &v[i]->by_start);
        qsort(v, n, sizeof(Job *), cmp_end);
        for (size_t i = 0; i < n; i++)
                if (v[i]->st.state != JOB_STATE_RUNNING)
                        list_append(&e->finished, &v[i]->by_end);
        return 0;
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Removing job directories ------------------------------------------------------ */

static const char *const job_files[] = { "output", "status", "status.tmp" };

/* Removes a job's directory and what may be in it, here and now. */
void store_remove_job_dir(Engine *e, const char *dir) {
        char path[JOB_ID_STRING_MAX + 16];

        for (size_t i = 0; i < ELEMENTSOF(job_files); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, job_files[i]);
                (void) unlinkat(e->jobs_fd, path, 0);
        }
        (void) unlinkat(e->jobs_fd, dir, AT_REMOVEDIR);
}

/* One removal in flight: the paths its requests point at, owned here until
 * the last of its completions (ring discipline: a refused submit leaves the
 * requests queued, and they are read when they finally go in). */
typedef struct Removal {
        uint32_t slot, gen;
        unsigned pending;       /* completions still to come */
        char paths[ELEMENTSOF(job_files) + 1][JOB_ID_STRING_MAX + 16];
} Removal;

/* store_remove_job_dir() without blocking the engine: the unlinks run in the
 * ring's kernel workers (IORING_OP_UNLINKAT never completes inline), hard-
 * linked so the directory goes last whatever its files' fate. Unlinking a
 * multi-GiB log frees its page cache synchronously: measured, a retention
 * removal of a 2 GiB log in the middle of a followed stream cut that stream
 * from 1.21-1.36 to 0.96-1.17 GB/s. Nothing is submitted here: the loop's
 * next submit takes the requests, and the Removal keeps their paths until
 * they complete. Falls back to store_remove_job_dir() where the ring cannot
 * take all four at once. */
static void remove_job_dir_async(Engine *e, const char *dir) {
        const unsigned n = ELEMENTSOF(job_files) + 1;
        Removal *rm;

        if (e->async_unlink && io_uring_sq_space_left(&e->ring) < n)
                (void) engine_submit(e);
        if (!e->async_unlink || io_uring_sq_space_left(&e->ring) < n || !(rm = calloc(1, sizeof(Removal)))) {
                store_remove_job_dir(e, dir);
                return;
        }
        if (ring_slot_alloc(&e->removal_slots, rm, &rm->slot, &rm->gen) < 0) {
                free(rm);
                store_remove_job_dir(e, dir);
                return;
        }
        for (unsigned i = 0; i < n; i++) {
                /* Room for all n was checked: io_uring_get_sqe() cannot fail. */
                struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
                if (i < ELEMENTSOF(job_files)) {
                        snprintf(rm->paths[i], sizeof(rm->paths[i]), "%s/%s", dir, job_files[i]);
                        io_uring_prep_unlinkat(sqe, e->jobs_fd, rm->paths[i], 0);
                        sqe->flags |= IOSQE_IO_HARDLINK;
                } else {
                        snprintf(rm->paths[i], sizeof(rm->paths[i]), "%s", dir);
                        io_uring_prep_unlinkat(sqe, e->jobs_fd, rm->paths[i], AT_REMOVEDIR);
                }
                io_uring_sqe_set_data64(sqe, ring_ud(OP_UNLINK, rm->slot, rm->gen));
        }
        rm->pending = n;
}

void store_on_unlink(Engine *e, uint64_t ud, int res) {
        Removal *rm = ring_slot_get(&e->removal_slots, ring_ud_slot(ud), ring_ud_gen(ud));

        if (!rm)
                return;
        /* -ENOENT: a file the job never had (status.tmp, an output never
         * created). Anything else means the directory may be left. */
        if (res < 0 && res != -ENOENT)
                e->removal_errors++;
        if (--rm->pending > 0)
                return;
        ring_slot_free(&e->removal_slots, rm->slot);
        free(rm);
}

/* Removals still in flight when the engine goes: wait for their completions
 * (unlinks: milliseconds), at most 2 s. A Removal whose completion does not
 * come is leaked rather than freed under a request that may still read it. */
void store_drain_removals(Engine *e) {
        uint64_t until = now_usec(CLOCK_MONOTONIC) + 2000000;

        while (e->removal_slots.n_used > 0) {
                struct __kernel_timespec ts = usec_to_ts(100000);
                struct io_uring_cqe *cqe;
                unsigned head, count = 0;

                if (now_usec(CLOCK_MONOTONIC) > until)
                        return;
                (void) io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
                io_uring_for_each_cqe(&e->ring, head, cqe) {
                        if (ring_ud_op(cqe->user_data) == OP_UNLINK)
                                store_on_unlink(e, cqe->user_data, cqe->res);
                        count++;
                }
                io_uring_cq_advance(&e->ring, count);
        }
        ring_slot_table_done(&e->removal_slots);
}

void job_remove(Engine *e, Job *j) {
        char dir[JOB_ID_STRING_MAX];

        job_notify(e, ENGINE_EVENT_REMOVED, j);
        job_id_to_string(&j->st.id, dir);
        remove_job_dir_async(e, dir);
        job_free(e, j);
}

/* Retention ------------------------------------------------------------------ */

/* One timer for the next job to age out. */
static void retention_arm(Engine *e, uint64_t now) {
        Job *j = list_entry(e->finished.first, Job, by_end);
        uint64_t due = j->st.end_usec + e->retain_max_age_usec;
        uint64_t wait = due > now ? due - now : 0;
        struct io_uring_sqe *sqe;

        /* At least a second apart: a reader holding an old job must not
         * turn this into a busy loop. */
        if (wait < 1000000)
                wait = 1000000;
        sqe = engine_get_sqe(e, NULL);
        if (!sqe) {
                e->rearm_retention = true; /* the loop tries again */
                return;
        }
        e->retention_ts = usec_to_ts(wait);
        io_uring_prep_timeout(sqe, &e->retention_ts, 0, 0);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_RETENTION, 0, 0));
        /* retention_ts lives in the engine, and is not written again while
         * the timer is armed. */
        e->retention_armed = true;
}

/*
 * Finished jobs are kept until there are more than retain_max_jobs of them
 * or they ended more than retain_max_age ago; then the oldest-ended go first.
 * A job somebody is reading is kept until the reader is done.
 */
void retention_run(Engine *e) {
        uint64_t now = now_usec(CLOCK_REALTIME);
        size_t excess = e->finished.n > e->retain_max_jobs ? e->finished.n - e->retain_max_jobs : 0;

        for (ListNode *n = e->finished.first, *next; n; n = next) {
                Job *j = list_entry(n, Job, by_end);
                next = n->next;
                bool old = j->st.end_usec + e->retain_max_age_usec <= now;
                if (!old && excess == 0)
                        break;
                /* Kept while read, and while its process runs (LOST with
                 * a live process: the record is what can still stop it). */
                if (j->subs.n > 0 || j->st.process_alive)
                        continue;
                job_remove(e, j);
                if (excess > 0)
                        excess--;
        }
        if (!e->retention_armed && e->finished.first)
                retention_arm(e, now);
}

void retention_on_timer(Engine *e) {
        e->retention_armed = false;
        retention_run(e);
}
