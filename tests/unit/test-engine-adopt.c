/* SPDX-License-Identifier: MIT */

/*
 * Jobs that outlive their engine (issue 12), in-process: a child process
 * runs an engine whose fd store is a socket to this process (as systemd's
 * is to a service), starts a job and dies without stopping it; an engine
 * here gets the stored bundles back, adopts the job, which is not its
 * child, and records how it ended: its exit code where the kernel keeps it
 * for a pidfd (PIDFD_INFO_EXIT, 6.15+), else JOB_STATE_ENDED, never a
 * made-up code (the fault no_exit_info plays Debian 12's 6.1 here).
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
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "../helpers/engine-test-util.h"
#include "../helpers/fdstore-test-util.h"

#include "core/engine-internal.h"
#include "core/pidfd-exit.h"
#include "shared/macro.h"

/* A child engine starts `sh -c 'sleep 0.3; exit 7'` and dies; the job's
 * id, the bundles it kept in *kept. */
static JobId die_with_job(const char *state, Kept *kept) {
        const char *const argv[] = { "sh", "-c", "sleep 0.3; exit 7", NULL };
        int sv[2], p[2], status;
        JobId id;
        pid_t pid;

        assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                EngineFdStore store = { .store = child_store, .remove = child_remove, .userdata = &sv[1] };
                EngineConfig c = { .state_dir = state, .fdstore = &store };
                JobSpec spec = { .argv = argv, .owner = "ghost", .cgroup_fd = -1 };
                Engine *e = NULL;
                if (engine_new(&e, &c) < 0 || engine_start_job_wait(e, &spec, &id, NULL) < 0)
                        _exit(1);
                (void) !write(p[1], &id, sizeof(id));
                _exit(0); /* dies with the job running */
        }
        assert_int_equal(read(p[0], &id, sizeof(id)), sizeof(id));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        collect(sv[0], kept);
        close(p[0]);
        close(p[1]);
        close(sv[0]);
        close(sv[1]);
        return id;
}

static void adopt(bool no_exit_info) {
        char *state = make_state_dir("adopt");
        Kept kept = {};
        JobId id = die_with_job(state, &kept);
        EngineFdStore store = handback(&kept);
        EngineCounts counts;
        Engine *e;
        JobStatus s;

        assert_true(kept.n >= 1);
        EngineConfig c = { .state_dir = state, .fdstore = &store };
        e = engine_new_ok(&c);
        e->faults.no_exit_info = no_exit_info;
        engine_get_counts(e, &counts);
        assert_int_equal(counts.jobs_adopted, 1);
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_int_equal(s.state, JOB_STATE_RUNNING);
        /* It ends; PID 1 reaps it (late on some hosts): up to 40 s. */
        s = wait_job(e, &id, 40000);
        if (no_exit_info) {
                assert_int_equal(s.state, JOB_STATE_ENDED);
                assert_int_equal(s.exit_code, 0);
                assert_int_equal(s.signal, 0);
        } else {
                siginfo_t si;
                int self = (int) syscall(SYS_pidfd_open, getpid(), 0);
                bool has = self >= 0 && pidfd_exit_status(self, &si) != -EOPNOTSUPP;
                safe_close(self);
                if (has) {
                        assert_int_equal(s.state, JOB_STATE_EXITED);
                        assert_int_equal(s.exit_code, 7);
                } else
                        assert_int_equal(s.state, JOB_STATE_ENDED);
        }
        engine_free(e);
        /* The next engine reads the same record. */
        e = engine_new_ok(&(EngineConfig) { .state_dir = state });
        JobStatus again;
        assert_int_equal(engine_get_status(e, &id, &again), 0);
        assert_int_equal(again.state, s.state);
        assert_int_equal(again.exit_code, s.exit_code);
        engine_free(e);
        for (size_t i = 0; i < kept.n; i++)
                safe_close(kept.fds[i]);
        rm_rf(state);
        free(state);
}

static void test_adopted_exit_code(void **state) {
        adopt(false);
}

static void test_adopted_exit_unknown(void **state) {
        adopt(true);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_adopted_exit_code),
                cmocka_unit_test(test_adopted_exit_unknown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
