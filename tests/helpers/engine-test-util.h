/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the engine tests (test-engine, test-engine-faults, test-engine-store,
 * test-capture, test-cgroup) share: making an engine and starting a job on
 * it (or in a child that then dies, as a crashed daemon), turning an
 * engine's loop until a job has ended, and reading a job's stdout into a
 * string. Header-only; every wait is bounded and fails the test when the
 * bound passes. Engine thread: the test's own.
 */

#include <sys/stat.h>

#include "core/engine.h"
#include "core/job-id.h"
#include "test-util.h"

/* A new engine on config c (the caller's); fails the test if there is none.
 * engine_free() it. */
static inline Engine *engine_new_ok(const EngineConfig *c) {
        Engine *e = NULL;
        assert_int_equal(engine_new(&e, c), 0);
        return e;
}

/* Starts argv as owner "tester" in no cgroup and waits for the start's
 * result: engine_start_job_wait()'s return, *ret_id and *err (err may be
 * NULL). */
static inline int start_job(Engine *e, const char *const *argv, JobId *ret_id, JobStartError *err) {
        JobSpec spec = { .argv = argv, .owner = "tester", .cgroup_fd = -1 };
        return engine_start_job_wait(e, &spec, ret_id, err);
}

/* start_job() that must succeed (else the test fails with the start's
 * message); the new job's id. */
static inline JobId start_job_ok(Engine *e, const char *const *argv) {
        JobStartError err;
        JobId id;
        if (start_job(e, argv, &id, &err) < 0)
                fail_msg("start %s: %s", argv[0], err.message);
        return id;
}

/* True if the state directory state holds a directory for job id. */
static inline bool job_dir_exists(const char *state, const JobId *id) {
        char path[512], s[JOB_ID_STRING_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/jobs/%s", state, job_id_to_string(id, s));
        return stat(path, &st) == 0;
}

/* Runs e's loop until job id has ended; its status. Fails the test after
 * timeout_ms. */
static inline JobStatus wait_job(Engine *e, const JobId *id, unsigned timeout_ms) {
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

/* A daemon that dies with a job running: a child process makes an engine
 * on c, starts argv as owner "ghost", turns its loop until the job has
 * written min_stdout bytes (at most 30 s) and exits without stopping it.
 * The job's pid (left running: the caller kills it); the child's wait
 * status in *ret_wait_status unless that is NULL. */
static inline pid_t start_job_and_die(const EngineConfig *c, const char *const *argv, uint64_t min_stdout,
                                      int *ret_wait_status) {
        pid_t pid, job_pid = 0;
        int p[2];

        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                JobSpec spec = { .argv = argv, .owner = "ghost", .cgroup_fd = -1 };
                uint64_t until = mono_ms() + 30000;
                Engine *e = NULL;
                JobStatus s;
                JobId id;
                if (engine_new(&e, c) < 0 || engine_start_job_wait(e, &spec, &id, NULL) < 0)
                        _exit(1);
                engine_get_status(e, &id, &s);
                while (s.stdout_bytes < min_stdout) {
                        if (engine_run_once(e, 100000) < 0 || mono_ms() > until)
                                _exit(2);
                        engine_get_status(e, &id, &s);
                }
                (void) !write(p[1], &s.pid, sizeof(s.pid));
                _exit(0); /* dies with the job running */
        }
        assert_int_equal(read(p[0], &job_pid, sizeof(job_pid)), sizeof(job_pid));
        assert_int_equal(waitpid(pid, ret_wait_status, 0), pid);
        close(p[0]);
        close(p[1]);
        return job_pid;
}

/* A daemon killed (SIGKILL) while it runs: a child process makes an engine
 * on c, starts spec unless it is NULL (then it only loads what c's state
 * directory holds, and writes what it learnt, lost jobs included), tells
 * the parent, turns its loop and is killed. The job's id in *ret_id when
 * spec is given; the job itself is left running. (start_job_and_die()
 * above is the other way to die: after the job wrote so much, by exit.) */
static inline void engine_killed_while_running(const EngineConfig *c, const JobSpec *spec, JobId *ret_id) {
        JobId id = {};
        pid_t child;
        int p[2];

        assert_int_equal(pipe(p), 0);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                Engine *e = NULL;
                if (engine_new(&e, c) < 0 || (spec && engine_start_job_wait(e, spec, &id, NULL) < 0))
                        _exit(1);
                (void) !write(p[1], &id, sizeof(id));
                for (;;)
                        (void) engine_run_once(e, UINT64_MAX);
        }
        close(p[1]);
        assert_int_equal(read(p[0], &id, sizeof(id)), (ssize_t) sizeof(id));
        close(p[0]);
        assert_int_equal(kill(child, SIGKILL), 0);
        assert_int_equal(waitpid(child, NULL, 0), child);
        if (ret_id)
                *ret_id = id;
}

/* Stops a lost job whose process still runs and turns e's loop until that
 * process has ended (at most 10 s): its last status. */
static inline JobStatus stop_lost_and_wait(Engine *e, const JobId *id) {
        uint64_t until = mono_ms() + 10000;
        JobStatus s;

        assert_int_equal(engine_stop_job(e, id, 0), 0);
        while (engine_get_status(e, id, &s) == 0 && s.process_alive) {
                if (mono_ms() > until)
                        fail_msg("the lost job's process did not end within 10 s");
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        return s;
}

/* A subscriber's chunk callback appending to the NUL-terminated string ud
 * (GRAB_MAX + 1 bytes; what does not fit is dropped). */
#define GRAB_MAX 4095
static inline void grab_chunk(void *ud, JobStream stream, uint64_t offset, const void *data, size_t size) {
        char *buf = ud;
        size_t have = strlen(buf);
        size_t k = size < GRAB_MAX - have ? size : GRAB_MAX - have;
        memcpy(buf + have, data, k);
        buf[have + k] = 0;
}

/* All of a finished job's stdout, read by a non-following subscriber that
 * is turned until it has ended (bounded): not a fixed number of turns. */
typedef struct Grab {
        char out[GRAB_MAX + 1];
        Engine *e;
        SubscriberId id;
        bool ended;
} Grab;

static inline void grab_next(void *ud, JobStream stream, uint64_t offset, const void *data, size_t size) {
        Grab *g = ud;
        grab_chunk(g->out, stream, offset, data, size);
        assert_int_equal(engine_subscriber_ready(g->e, g->id), 0);
}

static inline void grab_end(void *ud, const JobStatus *st) {
        ((Grab *) ud)->ended = true;
}

/* out: GRAB_MAX + 1 bytes. */
static inline void grab_finished_stdout(Engine *e, const JobId *id, char *out) {
        static const SubscriberOps ops = { .chunk = grab_next, .end = grab_end };
        Grab g = { .e = e };
        uint64_t until = mono_ms() + 10000;

        assert_int_equal(engine_subscribe(e, id, JOB_STREAM_STDOUT, 0, false, &ops, &g, &g.id), 0);
        while (!g.ended) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        memcpy(out, g.out, sizeof(g.out));
}
