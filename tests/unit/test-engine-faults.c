/* SPDX-License-Identifier: MIT */

/*
 * The engine when the ring says no: what a request points at must live
 * until its completion (job directory removal), and a request that cannot
 * be queued must fail its operation visibly or be queued again, never be
 * dropped. The faults are injected through EngineFaults (engine-internal.h):
 * a submit the "kernel" refuses, leaving its entries queued, and get_sqe
 * returning NULL, as ring_get_sqe() does when the kernel refuses a submit.
 */

#include <errno.h>
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

#include "../helpers/proc-util.h"

#include "core/engine-internal.h"
#include "shared/macro.h"

#define SENTINELS 63

static const char *testprog;

static char *make_state_dir(void) {
        char tmpl[] = "/tmp/jw-test-faults-XXXXXX";
        char *d = mkdtemp(tmpl);
        assert_non_null(d);
        return strdup(d);
}

static void rm_rf(const char *path) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
        assert_int_equal(system(cmd), 0);
}

static Engine *engine_at(const char *dir) {
        Engine *e = NULL;
        EngineConfig c = { .state_dir = dir, .retain_max_jobs = 1000 };
        assert_int_equal(engine_new(&e, &c), 0);
        return e;
}

static int start(Engine *e, const char *const *argv, JobId *ret_id, JobStartError *err) {
        JobSpec spec = { .argv = argv, .owner = "tester", .cgroup_fd = -1 };
        return engine_start_job(e, &spec, ret_id, err);
}

static JobStatus wait_job(Engine *e, const JobId *id, unsigned timeout_ms) {
        uint64_t until = mono_ms() + timeout_ms;
        JobStatus s;
        for (;;) {
                assert_int_equal(engine_get_status(e, id, &s), 0);
                if (s.state != JOB_STATE_RUNNING)
                        return s;
                if (mono_ms() > until)
                        fail_msg("job did not end within %u ms", timeout_ms);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
}

static bool dir_exists(const char *state, const JobId *id) {
        char path[512], s[JOB_ID_STRING_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/jobs/%s", state, job_id_to_string(id, s));
        return stat(path, &st) == 0;
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
        _cleanup_free_ char *dir = make_state_dir();
        Engine *e = engine_at(dir);
        const char *argv[] = { "/bin/true", NULL };
        JobId ids[8];

        make_sentinels(dir);
        for (unsigned i = 0; i < ELEMENTSOF(ids); i++) {
                assert_int_equal(start(e, argv, &ids[i], NULL), 0);
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
                        left |= dir_exists(dir, &ids[i]);
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

int main(void) {
        testprog = getenv("JW_TESTPROG");
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_removal_refused_submit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
