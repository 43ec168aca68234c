/* SPDX-License-Identifier: MIT */

/*
 * The state directory when the disk is unkind (issue 13, items 1, 2, 5):
 * a file system that fills while a job runs or at its Start, a daemon that
 * dies between spawn and record, a state directory mounted read-only.
 * Small tmpfs mounts stand for the disk (the test skips without the right
 * to mount); the records are checked on disk, where the next daemon reads
 * them, not only in the engine's memory.
 */

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "../helpers/engine-test-util.h"

#include "core/engine-internal.h"
#include "core/jobfile.h"
#include "core/jobrecord.h"
#include "shared/macro.h"

/* A tmpfs of size bytes on a fresh directory, or the test skips. */
static char *mount_small(const char *size) {
        char tmpl[] = "/tmp/jw-test-store-XXXXXX", opts[64];
        char *d = mkdtemp(tmpl);

        assert_non_null(d);
        snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
        if (mount("tmpfs", d, "tmpfs", 0, opts) < 0) {
                print_message("cannot mount a tmpfs (%s): skipped\n", strerror(errno));
                (void) rmdir(d);
                skip();
        }
        return strdup(d);
}

static void unmount_small(char *d) {
        assert_int_equal(umount2(d, MNT_DETACH), 0);
        assert_int_equal(rmdir(d), 0);
        free(d);
}

static char *plain_dir(void) {
        char tmpl[] = "/tmp/jw-test-store-XXXXXX";
        char *d = mkdtemp(tmpl);
        assert_non_null(d);
        return strdup(d);
}

/* Fills the file system of dir: writes dir/fill until it refuses. */
static int fill(const char *dir) {
        static const char block[65536];
        char path[512];
        int fd;

        snprintf(path, sizeof(path), "%s/fill", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        for (;;) {
                ssize_t n = write(fd, block, sizeof(block));
                if (n < 0) {
                        assert_int_equal(errno, ENOSPC);
                        break;
                }
                if (n < (ssize_t) sizeof(block)) {
                        /* Partly written: the next one says ENOSPC. */
                        continue;
                }
        }
        return fd;
}

typedef struct Seen {
        unsigned save_failed, saved, files_removed;
} Seen;

static void observer(Engine *e, EngineEvent ev, const JobStatus *st, void *userdata) {
        Seen *s = userdata;
        if (ev == ENGINE_EVENT_SAVE_FAILED)
                s->save_failed++;
        else if (ev == ENGINE_EVENT_SAVED)
                s->saved++;
        else if (ev == ENGINE_EVENT_FILES_REMOVED)
                s->files_removed++;
}

static Engine *engine_at(const char *dir) {
        return engine_new_ok(&(EngineConfig){ .state_dir = dir, .retain_max_jobs = 1000 });
}

/* The record on disk, as the next daemon would read it. */
static int read_record(const char *state, const JobId *id, JobStatus *ret) {
        char path[512], s[JOB_ID_STRING_MAX], buf[JOBFILE_MAX + 1];
        uint64_t log_size;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "%s/jobs/%s/status", state, job_id_to_string(id, s));
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        assert_true(n >= 0);
        buf[n] = 0;
        return jobfile_parse(buf, ret, &log_size);
}

/* A job that waits for flag to exist, then exits 3. */
#define WAIT_THEN_EXIT3 "while [ ! -e \"$0\" ]; do sleep 0.02; done; exit 3"

/* A flag path ".../go" (flag: 128 bytes) in a new temporary directory: it
 * does not exist yet. flag_raise() creates it, flag_remove() the directory. */
static void flag_new(char *flag) {
        strcpy(flag, "/tmp/jw-test-store-flag-XXXXXX");
        assert_non_null(mkdtemp(flag));
        strcat(flag, "/go");
}

static void flag_raise(const char *flag) {
        assert_int_equal(close(open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
}

static void flag_remove(char *flag) {
        *strrchr(flag, '/') = 0;
        rm_rf(flag);
}

/* Item 1: the disk fills while a job runs. Its final status still reaches
 * the disk (before: the record on disk kept saying "running", status.tmp
 * empty, and the next engine showed the job "lost"). */
static void test_final_status_on_full_disk(void **state) {
        char *dir = mount_small("4m");
        char flag[128];
        JobStatus s;
        JobId id;
        int fill_fd;

        flag_new(flag);
        const char *argv[] = { "/bin/sh", "-c", WAIT_THEN_EXIT3, flag, NULL };
        Engine *e = engine_at(dir);
        assert_int_equal(start_job(e, argv, &id, NULL), 0);
        fill_fd = fill(dir);
        flag_raise(flag);
        s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 3);

        assert_int_equal(read_record(dir, &id, &s), 0);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 3);
        assert_true(s.end_usec > 0);

        /* And a new engine (the daemon restarted) shows it the same way. */
        engine_free(e);
        e = engine_at(dir);
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 3);
        engine_free(e);

        close(fill_fd);
        flag_remove(flag);
        unmount_small(dir);
}

/* Item 1: a status the disk refuses is reported, and written once space
 * comes back (before: the failure was silent and never retried: the disk
 * said "running" for good). The reservation is taken away by hand, as on a
 * file system without fallocate. */
static void test_status_retried_when_space_returns(void **state) {
        char *dir = mount_small("4m");
        char flag[128], path[512], sid[JOB_ID_STRING_MAX];
        Seen seen = {};
        EngineCounts c;
        JobStatus s;
        JobId id;
        int fill_fd;

        flag_new(flag);
        const char *argv[] = { "/bin/sh", "-c", WAIT_THEN_EXIT3, flag, NULL };
        Engine *e = engine_at(dir);
        engine_set_observer(e, observer, &seen);
        assert_int_equal(start_job(e, argv, &id, NULL), 0);
        snprintf(path, sizeof(path), "%s/jobs/%s/status.tmp", dir, job_id_to_string(&id, sid));
        (void) unlink(path);
        fill_fd = fill(dir);
        flag_raise(flag);
        s = wait_job(e, &id, 10000);
        assert_int_equal(s.exit_code, 3);

        /* Refused, and said so. */
        assert_int_equal(read_record(dir, &id, &s), 0);
        assert_int_equal(s.state, JOB_STATE_RUNNING);
        assert_int_equal(seen.save_failed, 1);
        engine_get_counts(e, &c);
        assert_int_equal(c.status_unsaved, 1);
        assert_int_equal(c.status_save_error, ENOSPC);

        /* Space comes back: the retry timer (1 s, then 2 s ...) writes it. */
        snprintf(path, sizeof(path), "%s/fill", dir);
        assert_int_equal(unlink(path), 0);
        close(fill_fd);
        uint64_t until = mono_ms() + 10000;
        while (read_record(dir, &id, &s) == 0 && s.state == JOB_STATE_RUNNING) {
                if (mono_ms() > until)
                        fail_msg("the status was not written again within 10 s");
                assert_int_equal(engine_run_once(e, 200000), 0);
        }
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 3);
        assert_int_equal(seen.saved, 1);
        engine_get_counts(e, &c);
        assert_int_equal(c.status_unsaved, 0);
        engine_free(e);

        flag_remove(flag);
        unmount_small(dir);
}

/* Item 1: a Start whose record the disk refuses fails, and leaves nothing
 * (before: it ran, answered with an id, and after a restart was "not found"
 * with its directory left for good). One page is left free: enough for the
 * output log's header, not for the record. */
static void test_start_fails_when_not_recordable(void **state) {
        char *dir = mount_small("4m");
        const char *argv[] = { "/bin/sleep", "30", NULL };
        JobStartError err = {};
        struct stat st;
        JobId id;
        Engine *e = engine_at(dir);
        int fill_fd = fill(dir);

        assert_int_equal(fstat(fill_fd, &st), 0);
        assert_int_equal(ftruncate(fill_fd, st.st_size - 4096), 0);
        int r = start_job(e, argv, &id, &err);
        assert_int_equal(r, -ENOSPC);
        assert_int_equal(err.stage, JOB_START_STAGE_STATE);
        assert_non_null(strstr(err.message, "state directory"));
        engine_free(e);

        /* Nothing left in jobs/. */
        char jobs[512];
        snprintf(jobs, sizeof(jobs), "%s/jobs", dir);
        assert_int_equal(rmdir(jobs), 0);
        close(fill_fd);
        unmount_small(dir);
}

/* Writes a job directory by hand: with a record (st) or without one. */
static void make_job_dir(const char *state, const JobStatus *st, const JobId *id) {
        char path[512], s[JOB_ID_STRING_MAX], buf[JOBFILE_MAX];
        int fd, n;

        snprintf(path, sizeof(path), "%s/jobs/%s", state, job_id_to_string(id, s));
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof(path), "%s/jobs/%s/output", state, s);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        if (!st)
                return;
        n = jobfile_format(st, OUTLOG_HEADER_SIZE, buf, sizeof(buf));
        assert_true(n > 0);
        snprintf(path, sizeof(path), "%s/jobs/%s/status", state, s);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, (size_t) n), n);
        close(fd);
}

/* Item 2: what a daemon that died in the middle of a Start leaves is
 * loaded or removed, and counted (before: a directory with only `output`
 * was neither loaded nor removed, forever). */
static void test_dirs_without_record_removed(void **state) {
        char *dir = plain_dir();
        JobId bare, starting, done;
        JobStatus st = {};
        EngineCounts c;
        Engine *e = engine_at(dir); /* makes jobs/ */

        engine_free(e);
        assert_int_equal(job_id_generate(&bare), 0);
        assert_int_equal(job_id_generate(&starting), 0);
        assert_int_equal(job_id_generate(&done), 0);
        make_job_dir(dir, NULL, &bare);
        st = (JobStatus) { .id = starting, .state = JOB_STATE_RUNNING, .starting = true, .start_usec = 1 };
        make_job_dir(dir, &st, &starting);
        st = (JobStatus) { .id = done, .state = JOB_STATE_EXITED, .exit_code = 7,
                           .start_usec = now_usec(CLOCK_REALTIME) - 2, .end_usec = now_usec(CLOCK_REALTIME) - 1 };
        make_job_dir(dir, &st, &done);

        e = engine_at(dir);
        engine_get_counts(e, &c);
        assert_int_equal(c.dirs_cleaned, 2);
        assert_false(job_dir_exists(dir, &bare));
        assert_false(job_dir_exists(dir, &starting));
        assert_int_equal(engine_get_status(e, &bare, &st), -ENOENT);
        assert_int_equal(engine_get_status(e, &done, &st), 0);
        assert_int_equal(st.exit_code, 7);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* Item 2: once a Start has answered, its record names the process by pid
 * and start time (before: the record had no start time, and was written
 * only after the spawn, from the engine thread). A record of the first
 * release (no version, no start time) still loads. */
static void test_record_names_process(void **state) {
        char *dir = plain_dir();
        const char *argv[] = { "/bin/sleep", "30", NULL };
        JobStatus s, live;
        JobId id, old;
        Engine *e = engine_at(dir);

        assert_int_equal(start_job(e, argv, &id, NULL), 0);
        assert_int_equal(engine_get_status(e, &id, &live), 0);
        assert_int_equal(read_record(dir, &id, &s), 0);
        assert_int_equal(s.state, JOB_STATE_RUNNING);
        assert_false(s.starting);
        assert_int_equal(s.pid, live.pid);
        assert_true(s.pid_starttime != 0);
        assert_true(jobrecord_pid_alive(s.pid, s.pid_starttime));
        assert_false(jobrecord_pid_alive(s.pid, s.pid_starttime + 1));
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        (void) wait_job(e, &id, 10000);
        engine_free(e);

        /* Version 1: written by hand the way the first release did. */
        char path[512], sid[JOB_ID_STRING_MAX];
        assert_int_equal(job_id_generate(&old), 0);
        snprintf(path, sizeof(path), "%s/jobs/%s", dir, job_id_to_string(&old, sid));
        assert_int_equal(mkdir(path, 0700), 0);
        strcat(path, "/status");
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        uint64_t now = now_usec(CLOCK_REALTIME);
        fprintf(f, "id=%s\nstate=exited\nexit_code=5\nsignal=0\nstop_requested=0\npid=4242\nstart_usec=%" PRIu64 "\n"
                   "end_usec=%" PRIu64 "\nstdout_bytes=0\nstderr_bytes=0\ntruncated=0\ndropped_bytes=0\nlog_size=8\n"
                   "has_cgroup=0\nowner=old\ncommand=true\n", sid, now - 2, now - 1);
        fclose(f);
        e = engine_at(dir);
        assert_int_equal(engine_get_status(e, &old, &s), 0);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 5);
        assert_string_equal(s.owner, "old");
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A zombie has ended: its record's process is not "alive" any more, though
 * its pid and start time are still there until it is reaped. */
static void test_zombie_not_alive(void **state) {
        int p[2];
        char c;
        pid_t pid;

        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[1]);
                (void) !read(p[0], &c, 1);
                _exit(0);
        }
        uint64_t t = jobrecord_pid_starttime(pid);
        assert_true(t != 0);
        assert_true(jobrecord_pid_alive(pid, t));
        close(p[1]); /* it exits */
        uint64_t until = mono_ms() + 10000;
        while (jobrecord_pid_alive(pid, t)) {
                if (mono_ms() > until)
                        fail_msg("the child did not exit within 10 s");
                usleep(1000);
        }
        assert_int_equal(jobrecord_pid_starttime(pid), t); /* a zombie still */
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_int_equal(jobrecord_pid_starttime(pid), 0);
        close(p[0]);
}

/* Item 5: a read-only state directory is refused at once, with EROFS
 * (before: the engine started, and every Start and Output failed later). */
static void test_readonly_state_dir(void **state) {
        char *dir = mount_small("1m");
        Engine *e = engine_at(dir);
        EngineConfig c = { .state_dir = dir };

        engine_free(e);
        e = NULL;
        assert_int_equal(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);
        assert_int_equal(engine_new(&e, &c), -EROFS);
        assert_null(e);
        assert_int_equal(mount(NULL, dir, NULL, MS_REMOUNT, NULL), 0);
        unmount_small(dir);
}

typedef struct Got {
        char data[256];
        size_t n;
        bool ended;
} Got;

static void got_chunk(void *userdata, JobStream stream, uint64_t offset, const void *data, size_t size) {
        Got *g = userdata;
        size_t take = MIN(size, sizeof(g->data) - 1 - g->n);
        memcpy(g->data + g->n, data, take);
        g->n += take;
}

static void got_end(void *userdata, const JobStatus *status) {
        ((Got *) userdata)->ended = true;
}

/* Item 5: the output of a finished job is opened for reading only, so it is
 * still served when the state directory became read-only while the daemon
 * ran (before: the log was opened read-write, and Output failed EROFS). */
static void test_output_from_readonly_state_dir(void **state) {
        char *dir = mount_small("1m");
        const char *argv[] = { "/bin/echo", "hello", NULL };
        SubscriberOps ops = { .chunk = got_chunk, .end = got_end };
        SubscriberId sid;
        Got got = {};
        JobId id;
        Engine *e = engine_at(dir);

        assert_int_equal(start_job(e, argv, &id, NULL), 0);
        assert_int_equal(wait_job(e, &id, 10000).exit_code, 0);
        assert_int_equal(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);
        assert_int_equal(engine_subscribe(e, &id, JOB_STREAMS_ALL, 0, false, &ops, &got, &sid), 0);
        uint64_t until = mono_ms() + 10000;
        while (!got.ended) {
                if (mono_ms() > until)
                        fail_msg("the output did not end within 10 s");
                (void) engine_subscriber_ready(e, sid);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        assert_int_equal(got.n, 6);
        assert_memory_equal(got.data, "hello\n", 6);
        engine_free(e);
        assert_int_equal(mount(NULL, dir, NULL, MS_REMOUNT, NULL), 0);
        unmount_small(dir);
}

/* Item 6: a job directory deleted while the job runs is found, said once
 * (observer: the daemon logs it) and shown in the status, on a query and
 * at the job's end (before: nothing noticed it). */
static void test_dir_deleted_while_running(void **state) {
        char *dir = plain_dir(), path[512], sid[JOB_ID_STRING_MAX];
        const char *argv[] = { "/bin/sleep", "30", NULL };
        Seen seen = {};
        JobStatus s;
        JobId id;
        Engine *e = engine_at(dir);

        engine_set_observer(e, observer, &seen);
        assert_int_equal(start_job(e, argv, &id, NULL), 0);
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_false(s.files_removed);
        snprintf(path, sizeof(path), "%s/jobs/%s", dir, job_id_to_string(&id, sid));
        rm_rf(path);
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_true(s.files_removed);
        assert_int_equal(s.state, JOB_STATE_RUNNING);
        assert_int_equal(seen.files_removed, 1);
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        s = wait_job(e, &id, 10000);
        assert_true(s.files_removed);
        assert_int_equal(seen.files_removed, 1);
        assert_int_equal(seen.save_failed, 0); /* not a full disk: no retries */
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* Item 10: after kill -9 of the daemon, a job without a cgroup keeps
 * running; its LOST record stays listed while its process lives (even past
 * retention) and stops it (before: retention dropped the record and
 * nothing could reach the process). The daemon is a forked child running
 * an engine, killed with SIGKILL. */
static void test_lost_alive_stoppable(void **state) {
        char *dir = plain_dir();
        const char *argv[] = { "/bin/sleep", "60", NULL };
        JobSpec spec = { .argv = argv, .owner = "tester", .cgroup_fd = -1 };
        JobId id;
        JobStatus s;

        engine_killed_while_running(&(EngineConfig){ .state_dir = dir }, &spec, &id);

        /* Retention of a microsecond: every other finished job would go. */
        Engine *e = NULL;
        EngineConfig c = { .state_dir = dir, .retain_max_age_usec = 1 };
        assert_int_equal(engine_new(&e, &c), 0);
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_int_equal(s.state, JOB_STATE_LOST);
        assert_true(s.process_alive);
        pid_t pid = s.pid;
        assert_false(pid_gone(pid));

        (void) stop_lost_and_wait(e, &id);
        assert_true(pid_gone(pid));
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A lost job whose process still runs stays known across a second daemon
 * that dies: its record already says lost (the second daemon wrote that),
 * and the third finds its process again by pid and start time. Before, it
 * was looked for only in records that said running: the third daemon
 * showed it lost with no process, Stop could not reach it, and its name
 * was free. */
static void test_lost_alive_across_second_crash(void **state) {
        char *dir = plain_dir();
        const char *argv[] = { "/bin/sleep", "60", NULL };
        EngineConfig c = { .state_dir = dir };
        pid_t pid = start_job_and_die(&c, argv, 0, NULL);
        JobStatus s;
        JobStatus *all = NULL;
        size_t n = 0;

        engine_killed_while_running(&c, NULL, NULL); /* marks it lost, finds it alive, dies */
        Engine *e = NULL;
        assert_int_equal(engine_new(&e, &c), 0);
        assert_int_equal(engine_list(e, NULL, &all, &n), 0);
        assert_int_equal(n, 1);
        s = all[0];
        free(all);
        assert_int_equal(s.state, JOB_STATE_LOST);
        assert_int_equal(s.pid, pid);
        assert_true(s.process_alive);

        (void) stop_lost_and_wait(e, &s.id);
        assert_true(pid_gone(pid));
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* Exit 77 (meson: SKIP) where tmpfs cannot be mounted (no CAP_SYS_ADMIN). */
static bool can_mount(void) {
        char tmpl[] = "/tmp/jw-test-store-XXXXXX";
        char *d = mkdtemp(tmpl);
        bool ok = d && mount("tmpfs", d, "tmpfs", 0, "size=64k") == 0;

        if (ok)
                (void) umount2(d, MNT_DETACH);
        if (d)
                (void) rmdir(d);
        return ok;
}

int main(void) {
        if (!can_mount()) {
                fprintf(stderr, "cannot mount a tmpfs (%s): skipped\n", strerror(errno));
                return 77;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_final_status_on_full_disk),
                cmocka_unit_test(test_status_retried_when_space_returns),
                cmocka_unit_test(test_start_fails_when_not_recordable),
                cmocka_unit_test(test_dirs_without_record_removed),
                cmocka_unit_test(test_record_names_process),
                cmocka_unit_test(test_zombie_not_alive),
                cmocka_unit_test(test_readonly_state_dir),
                cmocka_unit_test(test_output_from_readonly_state_dir),
                cmocka_unit_test(test_dir_deleted_while_running),
                cmocka_unit_test(test_lost_alive_stoppable),
                cmocka_unit_test(test_lost_alive_across_second_crash),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
