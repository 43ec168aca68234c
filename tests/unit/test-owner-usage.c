/* SPDX-License-Identifier: MIT */

/* The engine's per-owner tally (engine_owner_usage()) and an owner's
 * max-output (JobSpec.owner_output_max): real jobs, real logs. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../helpers/engine-test-util.h"
#include "core/engine.h"

static const char *testprog;

static Engine *engine_at(const char *dir, unsigned retain) {
        Engine *e = NULL;
        EngineConfig c = { .state_dir = dir, .retain_max_jobs = retain };
        assert_int_equal(engine_new(&e, &c), 0);
        return e;
}

static JobId start(Engine *e, const char *owner, uint64_t output_max, const char *const *argv) {
        JobSpec spec = { .argv = argv, .owner = owner, .cgroup_fd = -1, .owner_output_max = output_max };
        JobStartError err;
        JobId id;

        if (engine_start_job_wait(e, &spec, &id, &err) < 0)
                fail_msg("start %s: %s", argv[0], err.message);
        return id;
}

static unsigned running_of(Engine *e, const char *owner) {
        unsigned running;
        uint64_t output;
        engine_owner_usage(e, owner, &running, &output);
        return running;
}

static uint64_t output_of(Engine *e, const char *owner) {
        unsigned running;
        uint64_t output;
        engine_owner_usage(e, owner, &running, &output);
        return output;
}

static void started(Engine *e, int r, const JobId *id, const JobStartError *err, void *userdata) {
        *(int *) userdata = r < 0 ? r : 1;
}

/* Running jobs count per owner from the moment a start is asked for until
 * the job ended; other owners are not touched. */
static void test_running(void **state) {
        char *dir = make_state_dir("owner");
        Engine *e = engine_at(dir, 0);
        const char *sleep_argv[] = { "/bin/sleep", "30", NULL };
        JobSpec spec = { .argv = sleep_argv, .owner = "alice", .cgroup_fd = -1 };
        uint64_t until = mono_ms() + 30000;
        int done = 0;
        JobId a = start(e, "alice", 0, sleep_argv);

        assert_int_equal(running_of(e, "alice"), 1);
        assert_int_equal(running_of(e, "bob"), 0);
        /* a start in flight counts already */
        assert_int_equal(engine_start_job(e, &spec, started, &done), 0);
        assert_int_equal(running_of(e, "alice"), 2);
        while (!done) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        assert_int_equal(done, 1);
        assert_int_equal(running_of(e, "alice"), 2);
        /* a failed start gives its count back */
        {
                const char *bad[] = { "/nonexistent/program", NULL };
                JobSpec bs = { .argv = bad, .owner = "alice", .cgroup_fd = -1 };
                JobStartError err;
                JobId id;
                assert_true(engine_start_job_wait(e, &bs, &id, &err) < 0);
                assert_int_equal(running_of(e, "alice"), 2);
        }
        assert_int_equal(engine_stop_job(e, &a, 0), 0);
        (void) wait_job(e, &a, 30000);
        assert_int_equal(running_of(e, "alice"), 1);
        assert_int_equal(engine_stop_all(e, 0), 1);
        while (running_of(e, "alice") > 0) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* Output kept counts per owner, running and retained; past the owner's
 * max-output a job's output is dropped and it says truncated; retention
 * gives the bytes back; a restarted engine counts what it loaded. */
static void test_output(void **state) {
        char *dir = make_state_dir("owner");
        Engine *e = engine_at(dir, 2);
        const char *w3000[] = { testprog, "zeros", "3000", NULL };
        JobId a, b, c, d;
        JobStatus s;

        a = start(e, "alice", 5000, w3000);
        s = wait_job(e, &a, 30000);
        assert_int_equal(s.stdout_bytes, 3000);
        assert_false(s.truncated);
        assert_int_equal(output_of(e, "alice"), 3000);

        b = start(e, "alice", 5000, w3000);
        s = wait_job(e, &b, 30000);
        assert_int_equal(s.stdout_bytes, 2000); /* 5000 - 3000 */
        assert_true(s.truncated);
        assert_int_equal(s.dropped_bytes, 1000);
        assert_int_equal(output_of(e, "alice"), 5000);

        /* bob's jobs are his own; retention (2 finished jobs) removes
         * alice's first job: its 3000 bytes come back */
        c = start(e, "bob", 5000, w3000);
        s = wait_job(e, &c, 30000);
        assert_int_equal(s.stdout_bytes, 3000);
        assert_false(s.truncated);
        assert_int_equal(output_of(e, "bob"), 3000);
        assert_int_equal(engine_get_status(e, &a, &s), -ENOENT);
        assert_int_equal(output_of(e, "alice"), 2000);

        /* and then the second */
        d = start(e, "bob", 0, w3000);
        (void) wait_job(e, &d, 30000);
        assert_int_equal(engine_get_status(e, &a, &s), -ENOENT);
        assert_int_equal(engine_get_status(e, &b, &s), -ENOENT);
        assert_int_equal(output_of(e, "alice"), 0);
        assert_int_equal(output_of(e, "bob"), 6000);
        engine_free(e);

        /* what a new engine loads counts too */
        e = engine_at(dir, 2);
        assert_int_equal(output_of(e, "bob"), 6000);
        assert_int_equal(running_of(e, "bob"), 0);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_running),
                cmocka_unit_test(test_output),
        };

        testprog = getenv("JW_TESTPROG");
        if (!testprog) {
                fprintf(stderr, "JW_TESTPROG is not set (run through meson test)\n");
                return 77;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
