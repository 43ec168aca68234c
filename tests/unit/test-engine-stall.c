/* SPDX-License-Identifier: MIT */

/*
 * No client-chosen path blocks the engine thread (issue 11, point 4): with
 * a Start whose cwd, and one whose io device, sit in a FUSE mount that never
 * answers (tests/helpers/jw-fuse-stall), other jobs start, exit and stream
 * their output; once the stall is released the pending Starts finish with
 * a clear error. Skips (77) where FUSE cannot be mounted.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "../helpers/test-util.h"

#include "core/engine.h"

#define BOUND_MS 5000

typedef struct Fixture {
        char mnt[64], state[64];
        pid_t tool;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        snprintf(f->mnt, sizeof(f->mnt), "/tmp/jw-stall-mnt-XXXXXX");
        snprintf(f->state, sizeof(f->state), "/tmp/jw-stall-state-XXXXXX");
        assert_non_null(mkdtemp(f->mnt));
        assert_non_null(mkdtemp(f->state));
        int r = fuse_stall_start(f->mnt, BOUND_MS, &f->tool);
        if (r == 77) {
                rmdir(f->mnt);
                rmdir(f->state);
                free(f);
                print_message("FUSE cannot be mounted here: skipping\n");
                exit(77);
        }
        assert_int_equal(r, 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        if (f->tool > 0) {
                kill(f->tool, SIGTERM);
                assert_true(wait_exit(f->tool, BOUND_MS) >= 0);
        }
        rmdir(f->mnt);
        rm_rf(f->state);
        free(f);
        return 0;
}

typedef struct Pending {
        bool done;
        bool engine_gone;
        int r;
        JobStartError err;
} Pending;

static void on_done(Engine *e, int r, const JobId *id, const JobStartError *err, void *userdata) {
        Pending *p = userdata;
        p->done = true;
        p->engine_gone = !e;
        p->r = r;
        p->err = *err;
}

typedef struct Collect {
        char out[64];
        size_t n;
        bool ended;
        JobStatus end;
        Engine *e;
        SubscriberId id;
} Collect;

static void collect_chunk(void *userdata, JobStream stream, uint64_t offset, const void *data, size_t size) {
        Collect *c = userdata;
        assert_int_equal(offset, c->n);
        assert_true(c->n + size < sizeof(c->out));
        memcpy(c->out + c->n, data, size);
        c->n += size;
        (void) engine_subscriber_ready(c->e, c->id);
}

static void collect_end(void *userdata, const JobStatus *st) {
        Collect *c = userdata;
        c->ended = true;
        c->end = *st;
}

static const SubscriberOps collect_ops = { .chunk = collect_chunk, .end = collect_end };

/* A job that starts, writes, exits and is streamed while the stall lasts. */
static void run_other_job(Engine *e, int k) {
        char script[64];
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        JobSpec spec = { .argv = argv, .owner = "t", .cgroup_fd = -1 };
        JobStartError err;
        Collect c = { .e = e };
        JobId id;

        snprintf(script, sizeof(script), "echo hello-%d; exit %d", k, 10 + k);
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), 0);
        assert_int_equal(engine_subscribe(e, &id, JOB_STREAM_STDOUT, 0, true, &collect_ops, &c, &c.id), 0);
        uint64_t until = mono_ms() + BOUND_MS;
        while (!c.ended) {
                if (mono_ms() > until)
                        fail_msg("job %d did not end while the stall lasted", k);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        char want[32];
        snprintf(want, sizeof(want), "hello-%d\n", k);
        assert_int_equal(c.n, strlen(want));
        assert_memory_equal(c.out, want, c.n);
        assert_int_equal(c.end.state, JOB_STATE_EXITED);
        assert_int_equal(c.end.exit_code, 10 + k);
}

static void start_pending(Engine *e, const char *cwd, const JobIoDevice *io, Pending *p) {
        const char *argv[] = { "/bin/true", NULL };
        JobLimits limits = { .io_devices = io, .n_io_devices = io ? 1 : 0 };
        JobSpec spec = { .argv = argv, .owner = "t", .cwd = cwd, .limits = io ? &limits : NULL, .cgroup_fd = -1 };
        assert_int_equal(engine_start_job(e, &spec, on_done, p), 0);
}

static void test_stalled_starts(void **state) {
        Fixture *f = *state;
        EngineConfig cfg = { .state_dir = f->state };
        char cwd[128], dev[128];
        Pending pc = {}, pd = {};
        Engine *e;

        snprintf(cwd, sizeof(cwd), "%s/hung-dir", f->mnt);
        snprintf(dev, sizeof(dev), "%s/hung-dev", f->mnt);
        JobIoDevice io = { .device = dev, .read_bps = 1 << 20 };
        assert_int_equal(engine_new(&e, &cfg), 0);
        start_pending(e, cwd, NULL, &pc);
        start_pending(e, NULL, &io, &pd);

        /* Meanwhile the engine serves everyone else. */
        for (int k = 0; k < 5; k++)
                run_other_job(e, k);
        assert_false(pc.done);
        assert_false(pd.done);

        /* Release: the stalled lookups fail ENOENT, the starts say so. */
        assert_int_equal(kill(f->tool, SIGUSR1), 0);
        uint64_t until = mono_ms() + BOUND_MS;
        while (!pc.done || !pd.done) {
                if (mono_ms() > until)
                        fail_msg("pending starts did not finish after the release");
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        assert_int_equal(pc.r, -ENOENT);
        assert_int_equal(pc.err.stage, JOB_START_STAGE_CHDIR);
        assert_non_null(strstr(pc.err.message, "cannot change to working directory"));
        assert_non_null(strstr(pc.err.message, "hung-dir"));
        assert_int_equal(pd.r, -ENOENT);
        assert_int_equal(pd.err.stage, JOB_START_STAGE_IO_DEVICE);
        assert_non_null(strstr(pd.err.message, "hung-dev"));
        assert_non_null(strstr(pd.err.message, "No such file or directory"));

        JobStatus *list;
        size_t n;
        assert_int_equal(engine_list(e, NULL, &list, &n), 0);
        assert_int_equal(n, 5); /* only the five that ran */
        free(list);
        engine_free(e);
}

/* engine_free() with a start stuck in chdir(): bounded. The child is sent
 * SIGKILL, but a FUSE lookup already read by its server is not interrupted
 * even by SIGKILL, so after 2 s the spawner thread is left behind; once the
 * connection is aborted the child dies and the thread cleans up. */
static void test_free_with_stalled_start(void **state) {
        Fixture *f = *state;
        EngineConfig cfg = { .state_dir = f->state };
        char cwd[128];
        Pending p = {};
        Engine *e;

        snprintf(cwd, sizeof(cwd), "%s/hung-dir", f->mnt);
        assert_int_equal(engine_new(&e, &cfg), 0);
        start_pending(e, cwd, NULL, &p);
        run_other_job(e, 1); /* the start is surely in its chdir by now */
        uint64_t t0 = mono_ms();
        engine_free(e);
        assert_true(mono_ms() - t0 < 3000);
        assert_false(p.done); /* abandoned: never called */

        /* Abort the connection: the child dies, nothing is left hanging. */
        kill(f->tool, SIGTERM);
        assert_true(wait_exit(f->tool, BOUND_MS) >= 0);
        f->tool = -1;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_stalled_starts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_with_stalled_start, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
