/* SPDX-License-Identifier: MIT */

/*
 * The engine when the ring says no: what a request points at must live
 * until its completion (job directory removal), and a request that cannot
 * be queued must fail its operation visibly or be queued again, never be
 * dropped. The faults are injected through EngineFaults (engine-internal.h):
 * a submit the "kernel" refuses, leaving its entries queued, and get_sqe
 * returning NULL, as ring_get_sqe() does when the kernel refuses a submit.
 */

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/engine-internal.h"
#include "../helpers/engine-test-util.h"
#include "shared/macro.h"

#define SENTINELS 63

static const char *testprog;

static Engine *engine_at(const char *dir) {
        return engine_new_ok(&(EngineConfig){ .state_dir = dir, .retain_max_jobs = 1000 });
}

/* Files "z", "zz", ... (SENTINELS 'z's) in jobs/: whatever address inside a
 * stack region poisoned by poison_stack() a stale request reads its path
 * from, it names one of them. */
static void make_sentinels(const char *state) {
        char path[512];
        for (int k = 1; k <= SENTINELS; k++) {
                int n = snprintf(path, sizeof(path), "%s/jobs/", state);
                memset(path + n, 'z', (size_t) k);
                path[n + k] = 0;
                int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                close(fd);
        }
}

static int count_sentinels(const char *state) {
        char path[512];
        struct stat st;
        int c = 0;
        for (int k = 1; k <= SENTINELS; k++) {
                int n = snprintf(path, sizeof(path), "%s/jobs/", state);
                memset(path + n, 'z', (size_t) k);
                path[n + k] = 0;
                c += stat(path, &st) == 0;
        }
        return c;
}

/* Overwrites the stack below the caller with SENTINELS 'z's and a NUL,
 * over and over: the frames the engine used are in there. */
static __attribute__((noinline)) void poison_stack(void) {
        char buf[256 * 1024];
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = (i % (SENTINELS + 1)) == SENTINELS ? 0 : 'z';
        __asm__ volatile("" : : "r"(buf) : "memory");
}

/* job_remove() called 64 KiB down the stack, so that the shallow frames of
 * the loop that runs next do not overwrite what poison_stack() wrote there. */
static __attribute__((noinline)) void remove_deep(Engine *e, Job *j) {
        volatile char pad[64 * 1024];
        pad[0] = 0;
        job_remove(e, j);
        __asm__ volatile("" : : "r"(pad) : "memory");
}

/* Bug 1: a removal whose submit the kernel refuses leaves its requests
 * queued; they go in with the next submit, and must still point at their
 * paths then (before the fix they pointed into a stack frame long gone). */
static void test_removal_refused_submit(void **state) {
        _cleanup_free_ char *dir = make_state_dir("faults");
        Engine *e = engine_at(dir);
        const char *argv[] = { "/bin/true", NULL };
        JobId ids[8];

        make_sentinels(dir);
        for (unsigned i = 0; i < ELEMENTSOF(ids); i++) {
                assert_int_equal(start_job(e, argv, &ids[i], NULL), 0);
                (void) wait_job(e, &ids[i], 10000);
        }
        for (unsigned i = 0; i < ELEMENTSOF(ids); i++) {
                e->faults.submit_fail = 1;
                remove_deep(e, job_find(e, &ids[i]));
                poison_stack();
        }
        e->faults.submit_fail = 0;

        /* Let the queued removals run, and wait for them to complete. */
        uint64_t until = mono_ms() + 5000;
        for (;;) {
                bool left = e->removal_slots.n_used > 0;
                for (unsigned i = 0; i < ELEMENTSOF(ids); i++)
                        left |= job_dir_exists(dir, &ids[i]);
                if (!left)
                        break;
                if (mono_ms() > until)
                        fail_msg("job directories still there after 5 s");
                assert_int_equal(engine_run_once(e, 50000), 0);
        }
        assert_int_equal(engine_run_once(e, 0), 0);
        assert_int_equal(count_sentinels(dir), SENTINELS);
        assert_int_equal(e->removal_errors, 0);
        engine_free(e);
        rm_rf(dir);
}

/* Bug 2: the pidfd poll of a new job cannot be queued. Nothing would ever
 * reap it: the start fails, says why, and leaves no process, job or
 * directory behind. */
static void test_start_unwatched(void **state) {
        _cleanup_free_ char *dir = make_state_dir("faults");
        Engine *e = engine_at(dir);
        const char *argv[] = { "/bin/sleep", "30", NULL };
        JobStartError err;
        JobStatus *list;
        size_t n;
        JobId id;

        /* The start comes back through the eventfd: its read is re-armed
         * (get_sqe 1), then the job registers and arms its pidfd (2). */
        e->faults.sqe_skip = 1;
        e->faults.sqe_fail = 1;
        assert_int_equal(start_job(e, argv, &id, &err), -EBUSY);
        assert_int_equal(e->faults.sqe_failed, 1);
        assert_int_equal(err.stage, JOB_START_STAGE_SPAWN);
        assert_non_null(strstr(err.message, "cannot watch the new process"));
        assert_int_equal(engine_list(e, NULL, &list, &n), 0);
        assert_int_equal(n, 0);
        free(list);
        /* No directory left in jobs/ (only . and ..). */
        char path[512];
        snprintf(path, sizeof(path), "%s/jobs", dir);
        DIR *d = opendir(path);
        struct dirent *de;
        int entries = 0;
        while ((de = readdir(d)))
                entries += de->d_name[0] != '.';
        closedir(d);
        assert_int_equal(entries, 0);
        /* No child left, not even a zombie. */
        siginfo_t si = {};
        assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOHANG), -1);
        assert_int_equal(errno, ECHILD);

        /* The next start works: it is watched, so its stop is seen. */
        assert_int_equal(start_job(e, argv, &id, &err), 0);
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        assert_int_equal(wait_job(e, &id, 10000).state, JOB_STATE_KILLED);
        engine_free(e);
        rm_rf(dir);
}

/* Turns e's loop until job id has written at least want bytes to stdout
 * (fails the test after timeout_ms); with while_running, the job must still
 * run at every turn. Its status then. */
static JobStatus wait_stdout_bytes(Engine *e, const JobId *id, uint64_t want, bool while_running,
                                   unsigned timeout_ms) {
        uint64_t until = mono_ms() + timeout_ms;
        JobStatus s = {};
        do {
                if (mono_ms() > until)
                        fail_msg("stdout has %llu bytes, want %llu within %u ms",
                                 (unsigned long long) s.stdout_bytes, (unsigned long long) want, timeout_ms);
                assert_int_equal(engine_run_once(e, 50000), 0);
                assert_int_equal(engine_get_status(e, id, &s), 0);
                if (while_running)
                        assert_int_equal(s.state, JOB_STATE_RUNNING);
        } while (s.stdout_bytes < want);
        return s;
}

/* Bug 2: a pipe poll that cannot be queued again is queued by the loop:
 * output written while the job runs still arrives while it runs. */
static void test_pipe_rearm(void **state) {
        _cleanup_free_ char *dir = make_state_dir("faults");
        Engine *e = engine_at(dir);
        const char *argv[] = { "/bin/sh", "-c", "echo one; sleep 0.3; echo two; exec sleep 30", NULL };
        JobStatus s;
        JobId id;

        assert_int_equal(start_job(e, argv, &id, NULL), 0);
        /* The first get_sqe after the start is the pipe's re-arm after
         * "one" was read. */
        e->faults.sqe_fail = 1;
        s = wait_stdout_bytes(e, &id, 8, true, 5000); /* one, two */
        assert_int_equal(e->faults.sqe_failed, 1);
        assert_int_equal(s.stdout_bytes, 8);
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_KILLED);
        engine_free(e);
        rm_rf(dir);
}

/* Bug 2: the kill timer of a stop cannot be queued. The SIGTERM went out;
 * a job that ignores it is still killed after the grace. */
static void test_stop_timer_rearm(void **state) {
        _cleanup_free_ char *dir = make_state_dir("faults");
        Engine *e = engine_at(dir);
        const char *argv[] = { "/bin/sh", "-c", "trap '' TERM; echo ready; sleep 30; echo late", NULL };
        JobStatus s;
        JobId id;

        assert_int_equal(start_job(e, argv, &id, NULL), 0);
        (void) wait_stdout_bytes(e, &id, 6, false, 5000); /* the trap is set once "ready" is out */
        e->faults.sqe_fail = 1;
        assert_int_equal(engine_stop_job(e, &id, 200000), 0);
        assert_int_equal(e->faults.sqe_failed, 1);
        s = wait_job(e, &id, 5000);
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_int_equal(s.signal, SIGKILL);
        assert_true(s.stop_requested);
        engine_free(e);
        rm_rf(dir);
}

int main(void) {
        testprog = getenv("JW_TESTPROG");
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_removal_refused_submit),
                cmocka_unit_test(test_start_unwatched),
                cmocka_unit_test(test_pipe_rearm),
                cmocka_unit_test(test_stop_timer_rearm),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
