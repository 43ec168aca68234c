/* SPDX-License-Identifier: MIT */

/* Names, labels and request ids in the engine (core/job-claims.c and
 * engine_list_filtered()): real jobs, real state directories. */

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "../helpers/engine-test-util.h"
#include "core/engine-internal.h" /* EngineFaults */

static const char *sleep_argv[] = { "/bin/sleep", "30", NULL };
static const char *true_argv[] = { "/bin/true", NULL };

static Engine *engine_at(const char *dir) {
        EngineConfig c = { .state_dir = dir, .default_grace_usec = 100000 };
        return engine_new_ok(&c);
}

static int start_named(Engine *e, const char *owner, const char *const *argv, const char *name, const char *labels,
                       const char *rid, JobId *ret_id, JobStartError *err) {
        JobSpec spec = { .argv = argv, .owner = owner, .cgroup_fd = -1, .name = name, .labels = labels, .request_id = rid };
        return engine_start_job_wait(e, &spec, ret_id, err);
}

static JobId start_ok(Engine *e, const char *owner, const char *const *argv, const char *name, const char *labels,
                      const char *rid) {
        JobStartError err;
        JobId id;
        if (start_named(e, owner, argv, name, labels, rid, &id, &err) < 0)
                fail_msg("start: %s", err.message);
        return id;
}

static void stop_and_wait(Engine *e, const JobId *id) {
        assert_int_equal(engine_stop_job(e, id, 0), 0);
        (void) wait_job(e, id, 10000);
}

/* A name is unique per owner among running jobs; another owner, or a
 * finished job, does not hold it. */
static void test_name_unique_while_running(void **state) {
        char *dir = make_state_dir("claims-name");
        Engine *e = engine_at(dir);
        JobStartError err;
        JobId a, b, c, other;
        char ida[JOB_ID_STRING_MAX];

        a = start_ok(e, "alice", sleep_argv, "web", NULL, NULL);
        assert_int_equal(start_named(e, "alice", true_argv, "web", NULL, NULL, &b, &err), -EEXIST);
        assert_int_equal(err.stage, JOB_START_STAGE_NAME);
        assert_non_null(strstr(err.message, job_id_to_string(&a, ida)));
        assert_non_null(strstr(err.message, "'web' is running"));
        other = start_ok(e, "bob", sleep_argv, "web", NULL, NULL);

        stop_and_wait(e, &a);
        b = start_ok(e, "alice", sleep_argv, "web", NULL, NULL);
        assert_false(job_id_equal(&a, &b));
        /* a refused start left nothing behind: only three jobs */
        JobStatus *all = NULL;
        size_t n = 0;
        assert_int_equal(engine_list(e, NULL, &all, &n), 0);
        assert_int_equal(n, 3);
        free(all);

        /* unnamed jobs never collide */
        c = start_ok(e, "alice", true_argv, NULL, NULL, NULL);
        (void) wait_job(e, &c, 10000);
        c = start_ok(e, "alice", true_argv, "", NULL, NULL);
        (void) wait_job(e, &c, 10000);
        stop_and_wait(e, &b);
        stop_and_wait(e, &other);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A daemon that dies (SIGKILL) with a named job running, without cgroups:
 * the job goes on, and the next daemon lists it as lost with its process
 * alive. It still holds its name, as a running job does: before, a second
 * "nightly" started beside the first. Once its process has ended the name
 * is free again. */
static void test_name_held_by_lost_job_that_runs(void **state) {
        char *dir = make_state_dir("claims-lost");
        const char *long_sleep[] = { "/bin/sleep", "60", NULL };
        JobSpec spec = { .argv = long_sleep, .owner = "alice", .cgroup_fd = -1, .name = "nightly" };
        JobStartError err;
        JobStatus s;
        JobId lost, id;
        char idl[JOB_ID_STRING_MAX];

        engine_killed_while_running(&(EngineConfig){ .state_dir = dir }, &spec, &lost);

        Engine *e = engine_at(dir);
        assert_int_equal(engine_get_status(e, &lost, &s), 0);
        assert_int_equal(s.state, JOB_STATE_LOST);
        assert_true(s.process_alive);

        assert_int_equal(start_named(e, "alice", true_argv, "nightly", NULL, NULL, &id, &err), -EEXIST);
        assert_int_equal(err.stage, JOB_START_STAGE_NAME);
        assert_non_null(strstr(err.message, job_id_to_string(&lost, idl)));
        assert_non_null(strstr(err.message, "'nightly' is lost, and its process still runs"));
        id = start_ok(e, "bob", true_argv, "nightly", NULL, NULL); /* another owner's name */
        (void) wait_job(e, &id, 10000);

        (void) stop_lost_and_wait(e, &lost);
        id = start_ok(e, "alice", sleep_argv, "nightly", NULL, NULL);
        assert_false(job_id_equal(&id, &lost));
        stop_and_wait(e, &id);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* Two starts with one name in flight at once: the second is refused even
 * though the first is not running yet. */
static int n_done, n_ok, n_exists;
static void count_done(Engine *e, int r, const JobId *id, const JobStartError *err, void *userdata) {
        n_done++;
        n_ok += r >= 0;
        n_exists += r == -EEXIST;
        if (r >= 0)
                *(JobId *) userdata = *id;
}

static void test_name_claimed_while_starting(void **state) {
        char *dir = make_state_dir("claims-starting");
        Engine *e = engine_at(dir);
        JobSpec spec = { .argv = sleep_argv, .owner = "alice", .cgroup_fd = -1, .name = "once" };
        JobId ids[2] = {};
        uint64_t until = mono_ms() + 20000;

        n_done = n_ok = n_exists = 0;
        assert_int_equal(engine_start_job(e, &spec, count_done, &ids[0]), 0);
        assert_int_equal(engine_start_job(e, &spec, count_done, &ids[1]), 0);
        while (n_done < 2) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        assert_int_equal(n_ok, 1);
        assert_int_equal(n_exists, 1);
        stop_and_wait(e, &ids[0]);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A start's result is posted from the spawner's thread to the engine's; a
 * post that failed (no memory for its node) dropped the start: its caller
 * never heard back, its owner's count stayed, and it freed its name and
 * request id claims while the engine's maps still held them (a use after
 * free at the next start with the name). The result now travels in the
 * start's own memory: with every other post failing, both starts answer,
 * the name and the request id still work. */
static void test_start_result_post_cannot_fail(void **state) {
        char *dir = make_state_dir("claims-post");
        Engine *e = engine_at(dir);
        JobSpec spec = { .argv = sleep_argv, .owner = "alice", .cgroup_fd = -1, .name = "posted", .request_id = "rq-p" };
        JobSpec bad = { .argv = (const char *[]) { "/nonexistent/program", NULL }, .owner = "alice", .cgroup_fd = -1,
                        .name = "posted-bad" };
        JobId ids[2] = {}, again;
        JobStartError err;
        uint64_t until = mono_ms() + 20000;

        n_done = n_ok = n_exists = 0;
        e->faults.post_fail = 1000;
        assert_int_equal(engine_start_job(e, &spec, count_done, &ids[0]), 0);
        assert_int_equal(engine_start_job(e, &bad, count_done, &ids[1]), 0);
        while (n_done < 2) {
                if (mono_ms() > until)
                        fail_msg("%d of 2 starts answered within 20 s", n_done);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        e->faults.post_fail = 0;
        assert_int_equal(n_ok, 1);
        /* the name is held by the running job, the request id finds it */
        assert_int_equal(start_named(e, "alice", true_argv, "posted", NULL, NULL, &again, &err), -EEXIST);
        again = start_ok(e, "alice", true_argv, NULL, NULL, "rq-p");
        assert_true(job_id_equal(&again, &ids[0]));
        /* the failed start let go of its name */
        again = start_ok(e, "alice", true_argv, "posted-bad", NULL, NULL);
        (void) wait_job(e, &again, 10000);
        stop_and_wait(e, &ids[0]);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A retried request id gets the same job: after it started, while it is
 * starting (one job for both), and from the next engine (the record). */
static void test_request_id(void **state) {
        char *dir = make_state_dir("claims-rid");
        Engine *e = engine_at(dir);
        JobSpec spec = { .argv = sleep_argv, .owner = "alice", .cgroup_fd = -1, .request_id = "req-2" };
        JobId a, b, ids[3] = {};
        uint64_t until = mono_ms() + 20000;

        a = start_ok(e, "alice", true_argv, NULL, NULL, "req-1");
        (void) wait_job(e, &a, 10000);
        b = start_ok(e, "alice", true_argv, NULL, NULL, "req-1");
        assert_true(job_id_equal(&a, &b));
        assert_true(engine_request_id_known(e, "alice", "req-1"));
        assert_false(engine_request_id_known(e, "bob", "req-1"));
        /* another owner's request */
        b = start_ok(e, "bob", true_argv, NULL, NULL, "req-1");
        assert_false(job_id_equal(&a, &b));
        (void) wait_job(e, &b, 10000);

        n_done = n_ok = n_exists = 0;
        for (int i = 0; i < 3; i++)
                assert_int_equal(engine_start_job(e, &spec, count_done, &ids[i]), 0);
        while (n_done < 3) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        assert_int_equal(n_ok, 3);
        assert_true(job_id_equal(&ids[0], &ids[1]) && job_id_equal(&ids[0], &ids[2]));
        JobStatus *all = NULL;
        size_t n = 0;
        EngineListFilter running = { .states = 1u << JOB_STATE_RUNNING };
        assert_int_equal(engine_list_filtered(e, &running, &all, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(all[0].request_id, "req-2");
        free(all);
        stop_and_wait(e, &ids[0]);
        engine_free(e);

        e = engine_at(dir);
        b = start_ok(e, "alice", sleep_argv, NULL, NULL, "req-1");
        assert_true(job_id_equal(&a, &b));
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static size_t count(Engine *e, const EngineListFilter *f) {
        JobStatus *v = NULL;
        size_t n = 0;
        assert_int_equal(engine_list_filtered(e, f, &v, &n), 0);
        free(v);
        return n;
}

static bool only_alice(void *userdata, const char *owner) {
        return strcmp(owner, "alice") == 0;
}

/* List filters, each alone and together; names and labels survive the
 * next engine. */
static void test_list_filters(void **state) {
        char *dir = make_state_dir("claims-list");
        Engine *e = engine_at(dir);
        JobId a, b;
        const char *team[] = { "team" }, *web[] = { "web" }, *two_k[] = { "team", "env" }, *two_v[] = { "web", "dev" };

        a = start_ok(e, "alice", sleep_argv, "web-1", "team=web,env=prod", NULL);
        b = start_ok(e, "alice", true_argv, "web-2", "team=web,env=dev", NULL);
        (void) wait_job(e, &b, 10000);
        (void) start_ok(e, "bob", sleep_argv, "web-1", "team=db", NULL);

        assert_int_equal(count(e, &(EngineListFilter) {}), 3);
        assert_int_equal(count(e, &(EngineListFilter) { .owner = "alice" }), 2);
        assert_int_equal(count(e, &(EngineListFilter) { .name = "web-1" }), 2);
        assert_int_equal(count(e, &(EngineListFilter) { .name = "web-1", .owner = "bob" }), 1);
        assert_int_equal(count(e, &(EngineListFilter) { .states = 1u << JOB_STATE_RUNNING }), 2);
        assert_int_equal(count(e, &(EngineListFilter) { .states = 1u << JOB_STATE_EXITED }), 1);
        assert_int_equal(count(e, &(EngineListFilter) { .n_labels = 1, .label_keys = team, .label_values = web }), 2);
        assert_int_equal(count(e, &(EngineListFilter) { .n_labels = 2, .label_keys = two_k, .label_values = two_v }), 1);
        assert_int_equal(count(e, &(EngineListFilter) { .n_labels = 1, .label_keys = team, .label_values = web,
                                                         .states = 1u << JOB_STATE_RUNNING }), 1);
        assert_int_equal(count(e, &(EngineListFilter) { .name = "web-1", .visible = only_alice }), 1);
        assert_int_equal(count(e, &(EngineListFilter) { .name = "nope" }), 0);

        JobStatus st;
        assert_int_equal(engine_get_status(e, &a, &st), 0);
        assert_string_equal(st.name, "web-1");
        assert_string_equal(st.labels, "team=web,env=prod");
        engine_stop_all(e, 0);
        engine_free(e);

        e = engine_at(dir);
        assert_int_equal(engine_get_status(e, &b, &st), 0);
        assert_string_equal(st.name, "web-2");
        assert_string_equal(st.labels, "team=web,env=dev");
        assert_int_equal(count(e, &(EngineListFilter) { .n_labels = 1, .label_keys = team, .label_values = web }), 2);
        /* the jobs ended with the last engine: their names are free */
        a = start_ok(e, "alice", true_argv, "web-1", NULL, NULL);
        (void) wait_job(e, &a, 10000);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* What the engine refuses itself (a caller that skipped the rules). */
static void test_engine_checks(void **state) {
        char *dir = make_state_dir("claims-checks");
        Engine *e = engine_at(dir);
        JobStartError err;
        JobId id;

        assert_int_equal(start_named(e, "alice", true_argv, "deadbeef", NULL, NULL, &id, &err), -EINVAL);
        assert_int_equal(err.stage, JOB_START_STAGE_NAME);
        assert_int_equal(start_named(e, "alice", true_argv, NULL, NULL, "a b", &id, &err), -EINVAL);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_name_unique_while_running),
                cmocka_unit_test(test_name_claimed_while_starting),
                cmocka_unit_test(test_name_held_by_lost_job_that_runs),
                cmocka_unit_test(test_start_result_post_cannot_fail),
                cmocka_unit_test(test_request_id),
                cmocka_unit_test(test_list_filters),
                cmocka_unit_test(test_engine_checks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
