/* SPDX-License-Identifier: MIT */

/*
 * engine_signal_job(): a signal reaches the job's main process, or with
 * "all" every process of the job (its cgroup frozen, each member
 * signalled, thawed; or its process group without a cgroup); the job is
 * thawed on every path and keeps running; a signal is not a stop; ended
 * jobs and bad numbers are refused. The cgroup cases skip (with the
 * reason) on a machine without a cgroup v2 freezer we may use.
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
#include <unistd.h>
#include <cmocka.h>

#include "core/cgroup.h"
#include "core/engine-internal.h"
#include "../helpers/engine-test-util.h"
#include "../helpers/fdstore-test-util.h"

static char *cg_root;          /* our test's parent cgroup, or NULL */
static const char *cg_missing; /* why there is none */

/* The main shell and its child each trap USR1 and say so on stdout; the
 * loops' sleep processes die of a USR1 sent to all, which the shells
 * survive. */
static const char *const family[] = {
        "sh", "-c",
        "trap 'echo main-usr1' USR1; "
        "sh -c 'trap \"echo child-usr1\" USR1; echo child-ready; while :; do sleep 0.05; done' & "
        "while :; do sleep 0.05; done",
        NULL,
};

static void skip_because(const char *why) {
        fprintf(stderr, "SKIP: %s\n", why);
        skip();
}

static Engine *new_engine(bool cgroup, char **ret_dir) {
        *ret_dir = make_state_dir("signal");
        EngineConfig c = { .state_dir = *ret_dir, .cgroup_root = cgroup ? cg_root : NULL };
        return engine_new_ok(&c);
}

static void done(Engine *e, char *dir) {
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* Starts argv and follows its stdout into g. */
static JobId start_followed(Engine *e, const char *const *argv, Grab *g) {
        static const SubscriberOps ops = { .chunk = grab_next, .end = grab_end };
        JobId id = start_job_ok(e, argv);

        *g = (Grab) { .e = e };
        assert_int_equal(engine_subscribe(e, &id, JOB_STREAM_STDOUT, 0, true, &ops, g, &g->id), 0);
        return id;
}

/* Turns the loop until the followed output holds text (at most 10 s). */
static void wait_output(Engine *e, Grab *g, const char *text) {
        uint64_t until = mono_ms() + 10000;
        while (!strstr(g->out, text)) {
                if (mono_ms() > until)
                        fail_msg("no '%s' in the job's output within 10 s; it has: '%s'", text, g->out);
                assert_int_equal(engine_run_once(e, 50000), 0);
        }
}

static void assert_running(Engine *e, const JobId *id) {
        JobStatus s;
        assert_int_equal(engine_get_status(e, id, &s), 0);
        assert_int_equal(s.state, JOB_STATE_RUNNING);
        assert_false(s.stop_requested);
}

/* "frozen" of the job's cgroup.events: 1 or 0. */
static int job_frozen(const JobId *id) {
        char path[600], s[JOB_ID_STRING_MAX];
        snprintf(path, sizeof(path), "%s/job-%s", cg_root, job_id_to_string(id, s));
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        int r = cgroup_frozen(fd);
        close(fd);
        assert_true(r >= 0);
        return r;
}

static void test_main_process_gets_it(void **state) {
        char *dir;
        Engine *e = new_engine(false, &dir);
        Grab g;
        JobId id = start_followed(e, family, &g);

        wait_output(e, &g, "child-ready");
        assert_int_equal(engine_signal_job(e, &id, SIGUSR1, false), 0);
        wait_output(e, &g, "main-usr1");
        assert_running(e, &id);
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        (void) wait_job(e, &id, 10000);
        engine_unsubscribe(e, g.id);

        /* A TERM ends a job as its process makes of it: killed by 15, and
         * not a stop. (A lone process: without a cgroup a child would
         * outlive it.) */
        const char *const lone[] = { "sleep", "60", NULL };
        id = start_job_ok(e, lone);
        assert_int_equal(engine_signal_job(e, &id, SIGTERM, false), 0);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_int_equal(s.signal, SIGTERM);
        assert_false(s.stop_requested);
        assert_false(s.timed_out);
        done(e, dir);
}

static void all_reaches_child(bool cgroup) {
        char *dir;
        Engine *e = new_engine(cgroup, &dir);
        Grab g;
        JobId id = start_followed(e, family, &g);
        JobStatus s;

        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_int_equal(s.has_cgroup, cgroup);
        wait_output(e, &g, "child-ready");
        assert_int_equal(engine_signal_job(e, &id, SIGUSR1, true), 0);
        wait_output(e, &g, "main-usr1");
        wait_output(e, &g, "child-usr1");
        if (cgroup)
                assert_int_equal(job_frozen(&id), 0);
        assert_running(e, &id);

        /* Still running and still answering: a second round. */
        g.out[0] = 0;
        assert_int_equal(engine_signal_job(e, &id, SIGUSR1, true), 0);
        wait_output(e, &g, "main-usr1");
        wait_output(e, &g, "child-usr1");
        assert_running(e, &id);

        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        (void) wait_job(e, &id, 10000);
        engine_unsubscribe(e, g.id);
        done(e, dir);
}

static void test_all_without_cgroup(void **state) {
        all_reaches_child(false);
}

static void test_all_with_cgroup(void **state) {
        if (!cg_root)
                skip_because(cg_missing);
        all_reaches_child(true);
}

/* A failure while the cgroup is frozen still thaws it. */
static void test_thawed_after_failure(void **state) {
        if (!cg_root)
                skip_because(cg_missing);
        char *dir;
        Engine *e = new_engine(true, &dir);
        Grab g;
        JobId id = start_followed(e, family, &g);

        wait_output(e, &g, "child-ready");
        e->faults.signal_procs_fail = EIO;
        assert_int_equal(engine_signal_job(e, &id, SIGUSR1, true), -EIO);
        assert_int_equal(job_frozen(&id), 0);
        assert_running(e, &id);

        /* Thawed for real: its loops still run and answer the next signal. */
        e->faults.signal_procs_fail = 0;
        assert_int_equal(engine_signal_job(e, &id, SIGUSR1, true), 0);
        wait_output(e, &g, "child-usr1");
        assert_int_equal(job_frozen(&id), 0);

        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        (void) wait_job(e, &id, 10000);
        engine_unsubscribe(e, g.id);
        done(e, dir);
}

/* KILL to all is the cgroup's cgroup.kill: nothing of the job is left. */
static void test_kill_all_with_cgroup(void **state) {
        if (!cg_root)
                skip_because(cg_missing);
        char *dir;
        Engine *e = new_engine(true, &dir);
        Grab g;
        JobId id = start_followed(e, family, &g);

        wait_output(e, &g, "child-ready");
        assert_int_equal(engine_signal_job(e, &id, SIGKILL, true), 0);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_int_equal(s.signal, SIGKILL);
        assert_false(s.stop_requested);
        engine_unsubscribe(e, g.id);
        done(e, dir);
}

/* A daemon that dies between freezing a job for a signal and thawing it
 * (played: a child engine with an fd store starts the job, freezes its
 * cgroup and exits): the next engine takes the job over and thaws it. */
static void test_adopted_job_thawed(void **state) {
        if (!cg_root)
                skip_because(cg_missing);
        char *dir = make_state_dir("signal-adopt");
        Kept kept = {};
        int sv[2], p[2], status;
        JobId id;
        pid_t pid;

        assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                EngineFdStore store = { .store = child_store, .remove = child_remove, .userdata = &sv[1] };
                EngineConfig c = { .state_dir = dir, .cgroup_root = cg_root, .fdstore = &store };
                JobSpec spec = { .argv = family, .owner = "ghost", .cgroup_fd = -1 };
                char path[700], s_id[JOB_ID_STRING_MAX];
                Engine *e = NULL;
                if (engine_new(&e, &c) < 0 || engine_start_job_wait(e, &spec, &id, NULL) < 0)
                        _exit(1);
                snprintf(path, sizeof(path), "%s/job-%s", cg_root, job_id_to_string(&id, s_id));
                int cg = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (cg < 0 || cgroup_set_frozen(cg, true) < 0 || cgroup_wait_frozen(cg, 5000) < 0)
                        _exit(2);
                (void) !write(p[1], &id, sizeof(id));
                _exit(0); /* dies with the job frozen */
        }
        assert_int_equal(read(p[0], &id, sizeof(id)), sizeof(id));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        collect(sv[0], &kept);
        assert_int_equal(job_frozen(&id), 1);

        EngineFdStore store = handback(&kept);
        Engine *e = engine_new_ok(&(EngineConfig) { .state_dir = dir, .cgroup_root = cg_root, .fdstore = &store });
        assert_int_equal(job_frozen(&id), 0);
        assert_running(e, &id);

        /* Thawed for real: both shells answer. */
        Grab g = { .e = e };
        static const SubscriberOps ops = { .chunk = grab_next, .end = grab_end };
        assert_int_equal(engine_subscribe(e, &id, JOB_STREAM_STDOUT, 0, true, &ops, &g, &g.id), 0);
        wait_output(e, &g, "child-ready");
        assert_int_equal(engine_signal_job(e, &id, SIGUSR1, true), 0);
        wait_output(e, &g, "main-usr1");
        wait_output(e, &g, "child-usr1");

        assert_int_equal(engine_signal_job(e, &id, SIGKILL, true), 0);
        (void) wait_job(e, &id, 40000);
        engine_unsubscribe(e, g.id);
        engine_free(e);
        for (size_t i = 0; i < kept.n; i++)
                close(kept.fds[i]);
        for (int i = 0; i < 2; i++) {
                close(sv[i]);
                close(p[i]);
        }
        rm_rf(dir);
        free(dir);
}

static void test_refused(void **state) {
        const char *const argv[] = { "true", NULL };
        char *dir;
        Engine *e = new_engine(false, &dir);
        JobId id = start_job_ok(e, argv), unknown = {};
        JobStatus s = wait_job(e, &id, 10000);

        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(engine_signal_job(e, &id, SIGTERM, false), -ESRCH);
        assert_int_equal(engine_signal_job(e, &id, SIGTERM, true), -ESRCH);
        assert_int_equal(engine_signal_job(e, &unknown, SIGTERM, false), -ENOENT);
        assert_int_equal(engine_signal_job(e, &id, 0, false), -EINVAL);
        assert_int_equal(engine_signal_job(e, &id, JOB_SIGNAL_MAX + 1, false), -EINVAL);
        assert_int_equal(engine_signal_job(e, &id, -1, true), -EINVAL);
        done(e, dir);
}

static void find_cgroup(char *tmpl, size_t size) {
        char *mnt = NULL;
        char f[700];

        if (cgroup_v2_mount(&mnt) < 0) {
                cg_missing = "no cgroup v2 hierarchy is mounted";
                return;
        }
        snprintf(tmpl, size, "%s/jw-test-signal-%d", mnt, (int) getpid());
        free(mnt);
        if (mkdir(tmpl, 0755) < 0) {
                cg_missing = "cannot create a cgroup under the cgroup v2 mount (not root, or not delegated)";
                return;
        }
        snprintf(f, sizeof(f), "%s/cgroup.freeze", tmpl);
        if (access(f, W_OK) < 0) {
                cg_missing = "the cgroup v2 hierarchy has no freezer (cgroup.freeze, Linux 5.2)";
                rmdir(tmpl);
                return;
        }
        cg_root = tmpl;
}

int main(void) {
        char tmpl[600];
        int r;

        find_cgroup(tmpl, sizeof(tmpl));
        if (!cg_root)
                fprintf(stderr, "note: the cgroup cases skip: %s\n", cg_missing);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_main_process_gets_it),
                cmocka_unit_test(test_all_without_cgroup),
                cmocka_unit_test(test_all_with_cgroup),
                cmocka_unit_test(test_thawed_after_failure),
                cmocka_unit_test(test_kill_all_with_cgroup),
                cmocka_unit_test(test_adopted_job_thawed),
                cmocka_unit_test(test_refused),
        };
        r = cmocka_run_group_tests(tests, NULL, NULL);
        if (cg_root)
                rmdir(cg_root);
        return r;
}
