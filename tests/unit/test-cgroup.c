/* SPDX-License-Identifier: MIT */

/*
 * Per-job cgroups on whatever cgroup v2 this machine has. Limits themselves
 * need the controllers, which only the VM test has; here: placement,
 * cgroup.kill reaching escaped processes, cleanup, and the errors for
 * limits the host cannot enforce.
 */

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/cgroup.h"
#include "core/engine.h"
#include "../helpers/engine-test-util.h"

static const char *testprog;
static char *cg_root; /* our test's parent cgroup */

static void wait_gone(pid_t pid) {
        uint64_t until = mono_ms() + 5000;
        while (!pid_gone(pid)) {
                if (mono_ms() > until)
                        fail_msg("process %d survived", (int) pid);
                usleep(10000);
        }
}

static Engine *new_engine(char **ret_dir) {
        Engine *e = NULL;
        *ret_dir = make_state_dir("cgroup");
        EngineConfig c = { .state_dir = *ret_dir, .cgroup_root = cg_root };
        assert_int_equal(engine_new(&e, &c), 0);
        return e;
}

static void done(Engine *e, char *dir) {
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static pid_t start_and_read_pid(Engine *e, const char *const *argv, JobId *ret_id) {
        JobSpec spec = { .argv = argv, .cgroup_fd = -1 };
        char out[GRAB_MAX + 1] = "";
        SubscriberOps ops = { .chunk = grab_chunk };
        SubscriberId sid;
        assert_int_equal(engine_start_job_wait(e, &spec, ret_id, NULL), 0);
        assert_int_equal(engine_subscribe(e, ret_id, JOB_STREAM_STDOUT, 0, true, &ops, out, &sid), 0);
        uint64_t until = mono_ms() + 5000;
        while (!strchr(out, '\n')) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        engine_unsubscribe(e, sid);
        return (pid_t) atoi(out);
}

static void test_job_runs_in_its_cgroup(void **state) {
        char *dir;
        Engine *e = new_engine(&dir);
        const char *argv[] = { "cat", "/proc/self/cgroup", NULL };
        JobSpec spec = { .argv = argv, .cgroup_fd = -1 };
        char id_s[JOB_ID_STRING_MAX], want[128], out[GRAB_MAX + 1];
        JobId id;

        assert_int_equal(engine_start_job_wait(e, &spec, &id, NULL), 0);
        JobStatus s = wait_job(e, &id, 10000);
        assert_true(s.has_cgroup);
        grab_finished_stdout(e, &id, out);
        snprintf(want, sizeof(want), "/job-%s\n", job_id_to_string(&id, id_s));
        assert_non_null(strstr(out, want));
        /* The cgroup is gone once the job ended. */
        char path[512];
        snprintf(path, sizeof(path), "%s/job-%s", cg_root, id_s);
        assert_int_equal(access(path, F_OK), -1);
        done(e, dir);
}

static void test_stop_kills_escaped_grandchild(void **state) {
        char *dir;
        Engine *e = new_engine(&dir);
        const char *argv[] = { testprog, "escape", "stay", NULL };
        JobId id;

        pid_t gc = start_and_read_pid(e, argv, &id);
        assert_true(gc > 0);
        assert_false(pid_gone(gc));
        assert_int_equal(engine_stop_job(e, &id, 200000), 0);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_int_equal(s.signal, SIGKILL);
        assert_true(s.stop_requested);
        assert_false(s.oom_killed);
        wait_gone(gc);
        done(e, dir);
}

static void test_exit_leaves_nothing_behind(void **state) {
        char *dir;
        Engine *e = new_engine(&dir);
        const char *argv[] = { testprog, "escape", NULL };
        JobId id;

        pid_t gc = start_and_read_pid(e, argv, &id);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 0);
        wait_gone(gc);
        done(e, dir);
}

static void test_cpu_time_reported(void **state) {
        char *dir;
        Engine *e = new_engine(&dir);
        const char *argv[] = { testprog, "burn", "300", NULL };
        const char *argv_long[] = { testprog, "burn", "60000", NULL };
        JobSpec spec = { .argv = argv, .cgroup_fd = -1 };
        JobId id;

        assert_int_equal(engine_start_job_wait(e, &spec, &id, NULL), 0);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.exit_code, 0);
        assert_true(s.cpu_usec >= 290000); /* it burns 300 ms of CPU time */

        /* While a job runs: its numbers so far. */
        spec.argv = argv_long;
        assert_int_equal(engine_start_job_wait(e, &spec, &id, NULL), 0);
        JobStatus now = {};
        uint64_t until = mono_ms() + 10000;
        while (now.cpu_usec == 0) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 10000), 0);
                assert_int_equal(engine_get_status(e, &id, &now), 0);
                assert_int_equal(now.state, JOB_STATE_RUNNING);
        }
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_true(s.cpu_usec >= now.cpu_usec);
        done(e, dir);
}

static void test_limits_without_controllers(void **state) {
        char *dir;
        Engine *e = new_engine(&dir);
        EngineCounts c;
        const char *argv[] = { "true", NULL };
        JobLimits l = { .memory_max = 64 << 20 };
        JobSpec spec = { .argv = argv, .limits = &l, .cgroup_fd = -1 };
        JobStartError err;
        JobId id;

        engine_get_counts(e, &c);
        assert_true(c.cgroups);
        if (c.cgroup_controllers & CGROUP_CTRL_MEMORY) {
                done(e, dir);
                skip(); /* the controller is there: the VM test covers it */
        }
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -EOPNOTSUPP);
        assert_int_equal(err.stage, JOB_START_STAGE_LIMITS);
        assert_non_null(strstr(err.message, "memory controller"));
        done(e, dir);
}

static void test_limits_without_cgroups(void **state) {
        char tmpl[] = "/tmp/jw-test-cgroup-XXXXXX";
        char *dir = strdup(mkdtemp(tmpl));
        Engine *e = NULL;
        EngineConfig c = { .state_dir = dir };
        const char *argv[] = { "true", NULL };
        JobLimits l = { .pids_max = 10 };
        JobSpec spec = { .argv = argv, .limits = &l, .cgroup_fd = -1 };
        JobStartError err;
        JobId id;

        assert_int_equal(engine_new(&e, &c), 0);
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -EOPNOTSUPP);
        assert_non_null(strstr(err.message, "cgroup"));
        done(e, dir);
}

static void test_leftovers_cleaned_at_start(void **state) {
        char path[600], pid_s[32];
        snprintf(path, sizeof(path), "%s/job-leftover", cg_root);
        assert_int_equal(mkdir(path, 0755), 0);
        pid_t pid = fork();
        if (pid == 0) {
                for (;;)
                        pause();
        }
        snprintf(path, sizeof(path), "%s/job-leftover/cgroup.procs", cg_root);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        snprintf(pid_s, sizeof(pid_s), "%d", (int) pid);
        fputs(pid_s, f);
        assert_int_equal(fclose(f), 0);

        char *dir;
        Engine *e = new_engine(&dir);
        EngineCounts c;
        engine_get_counts(e, &c);
        assert_int_equal(c.cgroups_cleaned, 1);
        int ws;
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
        snprintf(path, sizeof(path), "%s/job-leftover", cg_root);
        assert_int_equal(access(path, F_OK), -1);
        done(e, dir);
}

int main(void) {
        char *mnt = NULL, tmpl[512];
        int r;

        testprog = getenv("JW_TESTPROG");
        if (!testprog) {
                fprintf(stderr, "JW_TESTPROG is not set (run through meson test)\n");
                return 77;
        }
        if (cgroup_v2_mount(&mnt) < 0) {
                fprintf(stderr, "SKIP: no cgroup v2 hierarchy is mounted\n");
                return 77;
        }
        snprintf(tmpl, sizeof(tmpl), "%s/jw-test-%d", mnt, (int) getpid());
        if (mkdir(tmpl, 0755) < 0) {
                fprintf(stderr, "SKIP: cannot create a cgroup under %s: %s\n", mnt, strerror(errno));
                return 77;
        }
        cg_root = tmpl;
        if (access("/sys/fs/cgroup/cgroup.kill", F_OK) < 0) {
                char k[600];
                snprintf(k, sizeof(k), "%s/cgroup.kill", tmpl);
                if (access(k, F_OK) < 0)
                        fprintf(stderr, "note: no cgroup.kill (kernel < 5.14): the cgroup.procs fallback is tested\n");
        }

        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_job_runs_in_its_cgroup),
                cmocka_unit_test(test_stop_kills_escaped_grandchild),
                cmocka_unit_test(test_exit_leaves_nothing_behind),
                cmocka_unit_test(test_cpu_time_reported),
                cmocka_unit_test(test_limits_without_controllers),
                cmocka_unit_test(test_limits_without_cgroups),
                cmocka_unit_test(test_leftovers_cleaned_at_start),
        };
        r = cmocka_run_group_tests(tests, NULL, NULL);
        rmdir(tmpl);
        free(mnt);
        return r;
}
