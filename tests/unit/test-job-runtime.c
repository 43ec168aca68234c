/* SPDX-License-Identifier: MIT */

/*
 * Time limits (issue 14, item 1), in the engine: a job that runs past its
 * max runtime is stopped as a Stop stops it and says timed_out; one that
 * ignores SIGTERM is killed after the grace; one that ends in time is not
 * marked; the record keeps the limit for the next engine.
 */

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "../helpers/engine-test-util.h"
#include "core/engine-internal.h" /* EngineFaults */

static const char *testprog;

static JobId start_limited(Engine *e, const char *const *argv, uint64_t max_runtime_usec) {
        JobSpec spec = { .argv = argv, .owner = "tester", .cgroup_fd = -1, .max_runtime_usec = max_runtime_usec };
        JobStartError err;
        JobId id;
        if (engine_start_job_wait(e, &spec, &id, &err) < 0)
                fail_msg("start %s: %s", argv[0], err.message);
        return id;
}

static void test_sleep_past_limit_is_stopped(void **state) {
        char *dir = make_state_dir("runtime");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir, .default_grace_usec = 5000000 });
        const char *argv[] = { "sleep", "60", NULL };
        uint64_t t0 = mono_ms();

        JobId id = start_limited(e, argv, 300000);
        JobStatus s;
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_int_equal(s.max_runtime_usec, 300000);
        assert_true(s.runtime_deadline > 0);
        assert_false(s.timed_out);
        s = wait_job(e, &id, 10000);
        uint64_t took = mono_ms() - t0;
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_int_equal(s.signal, SIGTERM); /* sleep dies of the SIGTERM */
        assert_true(s.timed_out);
        assert_false(s.stop_requested); /* not a stop */
        assert_true(took >= 290);
        assert_true(took < 5000); /* well before sleep's 60 s or the grace */
        engine_free(e);

        /* The record says so to the next engine. */
        e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_true(s.timed_out);
        assert_int_equal(s.max_runtime_usec, 300000);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A spawn that waits its turn (a loaded machine; here a fault hook holds
 * it 300 ms) does not eat into the limit: the job runs its whole limit by
 * its own start and end times. Before, the limit counted from the Start
 * call, and this job was stopped the moment it started. */
static void test_limit_counts_from_the_spawn(void **state) {
        char *dir = make_state_dir("runtime");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir, .default_grace_usec = 5000000 });
        const char *argv[] = { "sleep", "60", NULL };

        e->faults.spawn_delay_usec = 300000;
        JobId id = start_limited(e, argv, 300000);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_true(s.timed_out);
        if (s.end_usec - s.start_usec < 300000 - 2000)
                fail_msg("a job with a 300 ms limit ran %.3f s", (double) (s.end_usec - s.start_usec) / 1e6);
        assert_true(s.end_usec - s.start_usec < 5000000);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_stubborn_job_killed_after_grace(void **state) {
        char *dir = make_state_dir("runtime");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir, .default_grace_usec = 400000 });
        const char *argv[] = { testprog, "stubborn", NULL };
        uint64_t t0 = mono_ms();

        JobId id = start_limited(e, argv, 200000);
        JobStatus s = wait_job(e, &id, 10000);
        uint64_t took = mono_ms() - t0;
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_int_equal(s.signal, SIGKILL); /* it ignored SIGTERM */
        assert_true(s.timed_out);
        assert_false(s.stop_requested);
        assert_true(took >= 550); /* the limit, then the grace */
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_job_within_limit_not_marked(void **state) {
        char *dir = make_state_dir("runtime");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *argv[] = { "sh", "-c", "sleep 0.1; exit 3", NULL };

        JobId id = start_limited(e, argv, 60 * 1000000ull);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 3);
        assert_false(s.timed_out);
        /* Its timeout was cancelled: a turn of the loop finds nothing to
         * do for it, and it stays as it ended. */
        assert_int_equal(engine_run_once(e, 200000), 0);
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_false(s.timed_out);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_no_limit_no_deadline(void **state) {
        char *dir = make_state_dir("runtime");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *argv[] = { "true", NULL };

        JobId id = start_job_ok(e, argv);
        JobStatus s;
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_int_equal(s.max_runtime_usec, 0);
        assert_int_equal(s.runtime_deadline, 0);
        s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_false(s.timed_out);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A stop asked for before the limit keeps its meaning: not timed out. */
static void test_stop_before_limit_is_a_stop(void **state) {
        char *dir = make_state_dir("runtime");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *argv[] = { "sleep", "60", NULL };

        JobId id = start_limited(e, argv, 30 * 1000000ull);
        assert_int_equal(engine_stop_job(e, &id, 5000000), 0);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_true(s.stop_requested);
        assert_false(s.timed_out);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* An engine in a child process starts a limited `sleep 60` as "ghost" and
 * dies without a fd store: the next engine finds the job LOST with its
 * process alive. The job's pid. */
static pid_t start_limited_and_die(const char *dir, uint64_t max_runtime_usec) {
        const char *argv[] = { "sleep", "60", NULL };
        pid_t pid, job_pid = 0;
        int p[2], status;

        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                JobSpec spec = { .argv = argv, .owner = "ghost", .cgroup_fd = -1,
                                 .max_runtime_usec = max_runtime_usec };
                Engine *e = NULL;
                JobStatus s;
                JobId id;
                if (engine_new(&e, &(EngineConfig){ .state_dir = dir }) < 0 ||
                    engine_start_job_wait(e, &spec, &id, NULL) < 0 || engine_get_status(e, &id, &s) < 0)
                        _exit(1);
                (void) !write(p[1], &s.pid, sizeof(s.pid));
                _exit(0); /* dies with the job running */
        }
        assert_int_equal(read(p[0], &job_pid, sizeof(job_pid)), sizeof(job_pid));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(p[0]);
        close(p[1]);
        return job_pid;
}

/* A LOST job whose process still runs keeps its time limit: the next
 * engine stops it at its deadline, as it would stop it on a Stop. */
static void test_lost_job_keeps_limit(void **state) {
        char *dir = make_state_dir("runtime");
        uint64_t t0 = mono_ms();
        pid_t job_pid = start_limited_and_die(dir, 1000000);
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        JobStatus *v;
        size_t n;

        assert_int_equal(engine_list(e, "ghost", &v, &n), 0);
        assert_int_equal(n, 1);
        JobId id = v[0].id;
        assert_int_equal(v[0].state, JOB_STATE_LOST);
        assert_true(v[0].process_alive);
        assert_int_equal(v[0].pid, job_pid);
        free(v);
        /* Turn the loop until its pidfd says the process ended (bounded;
         * who reaps it, and when, is up to init). */
        JobStatus s;
        uint64_t until = mono_ms() + 15000;
        for (;;) {
                assert_int_equal(engine_get_status(e, &id, &s), 0);
                if (!s.process_alive)
                        break;
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        assert_true(s.timed_out);
        assert_false(s.stop_requested);
        assert_true(mono_ms() - t0 >= 950); /* not before its limit */
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

int main(void) {
        testprog = getenv("JW_TESTPROG");
        if (!testprog) {
                fprintf(stderr, "JW_TESTPROG is not set (run through meson test)\n");
                return 77;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sleep_past_limit_is_stopped),
                cmocka_unit_test(test_limit_counts_from_the_spawn),
                cmocka_unit_test(test_stubborn_job_killed_after_grace),
                cmocka_unit_test(test_job_within_limit_not_marked),
                cmocka_unit_test(test_no_limit_no_deadline),
                cmocka_unit_test(test_stop_before_limit_is_a_stop),
                cmocka_unit_test(test_lost_job_keeps_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
