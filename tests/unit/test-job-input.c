/* SPDX-License-Identifier: MIT */

/*
 * Standard input (issue 14, item 4), in the engine: bytes reach the job in
 * order, closing the writer gives the job EOF, a job started without stdin
 * reads /dev/null, one writer at a time and one in a stdin's life, writes
 * are held back while the job does not read, and a job that ends fails the
 * pending write instead of leaving it hanging.
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
#include <unistd.h>
#include <cmocka.h>

#include "../helpers/engine-test-util.h"
#include "shared/macro.h"

static JobId start_stdin(Engine *e, const char *const *argv, bool stdin_open) {
        JobSpec spec = { .argv = argv, .owner = "tester", .cgroup_fd = -1, .stdin_open = stdin_open };
        JobStartError err;
        JobId id;
        if (engine_start_job_wait(e, &spec, &id, &err) < 0)
                fail_msg("start %s: %s", argv[0], err.message);
        return id;
}

typedef struct WriteWait {
        bool done;
        int r;
        bool engine_null;
} WriteWait;

static void write_done(Engine *e, int r, void *userdata) {
        WriteWait *w = userdata;
        assert_false(w->done); /* once */
        w->done = true;
        w->r = r;
        w->engine_null = !e;
}

/* Writes size bytes and turns the loop until the write is done (bounded). */
static int write_all(Engine *e, InputWriterId wid, const void *data, size_t size) {
        WriteWait w = {};
        uint64_t until = mono_ms() + 20000;

        assert_int_equal(engine_input_write(e, wid, data, size, write_done, &w), 0);
        while (!w.done) {
                if (mono_ms() > until)
                        fail_msg("a write of %zu bytes did not complete", size);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        return w.r;
}

static uint8_t pattern_byte(uint64_t i) {
        return (uint8_t) ((i * 2654435761u) >> 13);
}

/* A subscriber that checks stdout against the pattern as it comes. */
typedef struct Check {
        Engine *e;
        SubscriberId id;
        uint64_t got;
        uint64_t mismatch_at; /* UINT64_MAX: none */
        bool ended;
} Check;

static void check_chunk(void *ud, JobStream stream, uint64_t offset, const void *data, size_t size) {
        Check *c = ud;
        const uint8_t *p = data;
        assert_int_equal(offset, c->got);
        for (size_t i = 0; i < size; i++)
                if (p[i] != pattern_byte(c->got + i) && c->mismatch_at == UINT64_MAX)
                        c->mismatch_at = c->got + i;
        c->got += size;
        assert_int_equal(engine_subscriber_ready(c->e, c->id), 0);
}

static void check_end(void *ud, const JobStatus *st) {
        ((Check *) ud)->ended = true;
}

/* 4 MiB through cat in writes of odd sizes: stdout is the same bytes. */
static void test_bytes_in_order(void **state) {
        static const SubscriberOps ops = { .chunk = check_chunk, .end = check_end };
        const size_t total = 4u << 20;
        char *dir = make_state_dir("input");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *argv[] = { "cat", NULL };
        uint8_t *buf = malloc(total);
        Check c = { .e = e, .mismatch_at = UINT64_MAX };
        InputWriterId wid;
        JobStatus s;

        assert_non_null(buf);
        for (size_t i = 0; i < total; i++)
                buf[i] = pattern_byte(i);
        JobId id = start_stdin(e, argv, true);
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_int_equal(s.stdin_state, JOB_STDIN_OPEN);
        assert_int_equal(engine_input_open(e, &id, &wid), 0);
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_int_equal(s.stdin_state, JOB_STDIN_WRITING);
        for (size_t off = 0, step = 1; off < total; step = step * 7 + 13) {
                size_t n = MIN(step % (300u << 10) + 1, total - off);
                assert_int_equal(write_all(e, wid, buf + off, n), 0);
                off += n;
        }
        assert_int_equal(engine_input_close(e, wid), 0);
        assert_int_equal(engine_input_close(e, wid), -ENOENT);
        s = wait_job(e, &id, 20000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 0);
        assert_int_equal(s.stdin_state, JOB_STDIN_CLOSED);
        assert_int_equal(s.stdout_bytes, total);

        assert_int_equal(engine_subscribe(e, &id, JOB_STREAM_STDOUT, 0, false, &ops, &c, &c.id), 0);
        uint64_t until = mono_ms() + 20000;
        while (!c.ended) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        assert_int_equal(c.got, total);
        assert_int_equal(c.mismatch_at, UINT64_MAX);
        free(buf);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* Closing the writer is EOF for the job: it finishes what it reads. */
static void test_close_is_eof(void **state) {
        char *dir = make_state_dir("input");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *argv[] = { "sh", "-c", "wc -c; echo after-eof", NULL };
        char out[GRAB_MAX + 1];
        InputWriterId wid;

        JobId id = start_stdin(e, argv, true);
        assert_int_equal(engine_input_open(e, &id, &wid), 0);
        assert_int_equal(write_all(e, wid, "hello\n", 6), 0);
        assert_int_equal(engine_input_close(e, wid), 0);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 0);
        grab_finished_stdout(e, &id, out);
        assert_string_equal(out, "6\nafter-eof\n");
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* Without stdin_open the job reads /dev/null, and there is no stdin to write. */
static void test_without_stdin_reads_devnull(void **state) {
        char *dir = make_state_dir("input");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *cat_argv[] = { "sh", "-c", "wc -c; readlink /proc/self/fd/0", NULL };
        const char *sleep_argv[] = { "sleep", "60", NULL };
        char out[GRAB_MAX + 1];
        InputWriterId wid;
        JobStatus s;

        JobId id = start_stdin(e, cat_argv, false);
        s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.stdin_state, JOB_STDIN_NULL);
        grab_finished_stdout(e, &id, out);
        assert_string_equal(out, "0\n/dev/null\n");

        id = start_stdin(e, sleep_argv, false);
        assert_int_equal(engine_input_open(e, &id, &wid), -ENOTTY);
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        (void) wait_job(e, &id, 10000);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* One writer at a time, and one in the life of a stdin. */
static void test_second_writer_refused(void **state) {
        char *dir = make_state_dir("input");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *argv[] = { "sleep", "60", NULL };
        InputWriterId w1, w2;

        JobId id = start_stdin(e, argv, true);
        assert_int_equal(engine_input_open(e, &id, &w1), 0);
        assert_int_equal(engine_input_open(e, &id, &w2), -EBUSY);
        assert_int_equal(engine_input_close(e, w1), 0);
        assert_int_equal(engine_input_open(e, &id, &w2), -EPIPE);
        JobId nobody = id;
        nobody.bytes[0] ^= 0xff;
        assert_int_equal(engine_input_open(e, &nobody, &w2), -ENOENT);
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        (void) wait_job(e, &id, 10000);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A job that ended has no stdin to write: refused, and a writer it had is
 * gone. */
static void test_write_after_end_refused(void **state) {
        char *dir = make_state_dir("input");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *argv[] = { "sh", "-c", "exit 0", NULL };
        WriteWait w = {};
        InputWriterId wid;

        JobId id = start_stdin(e, argv, true);
        assert_int_equal(engine_input_open(e, &id, &wid), 0);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.stdin_state, JOB_STDIN_CLOSED);
        assert_int_equal(engine_input_write(e, wid, "x", 1, write_done, &w), -ENOENT);
        assert_false(w.done);
        assert_int_equal(engine_input_open(e, &id, &wid), -ESRCH);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A job that does not read holds the write back (the pipe is full, nothing
 * is buffered here); when it ends the write fails with EPIPE. */
static void test_backpressure_then_job_ends(void **state) {
        const size_t total = 1u << 20;
        char *dir = make_state_dir("input");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *argv[] = { "sleep", "60", NULL };
        uint8_t *buf = calloc(1, total);
        WriteWait w = {};
        InputWriterId wid;

        JobId id = start_stdin(e, argv, true);
        assert_int_equal(engine_input_open(e, &id, &wid), 0);
        assert_int_equal(engine_input_write(e, wid, buf, total, write_done, &w), 0);
        for (int i = 0; i < 5; i++)
                assert_int_equal(engine_run_once(e, 20000), 0);
        assert_false(w.done); /* held back: sleep reads nothing */
        assert_int_equal(engine_input_write(e, wid, buf, 1, write_done, &w), -EBUSY);
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        JobStatus s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_true(w.done);
        assert_int_equal(w.r, -EPIPE);
        assert_false(w.engine_null);
        free(buf);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A write pending when the engine goes is told so (e NULL). */
static void test_pending_write_at_engine_free(void **state) {
        const size_t total = 1u << 20;
        char *dir = make_state_dir("input");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *argv[] = { "sleep", "60", NULL };
        uint8_t *buf = calloc(1, total);
        WriteWait w = {};
        InputWriterId wid;

        JobId id = start_stdin(e, argv, true);
        assert_int_equal(engine_input_open(e, &id, &wid), 0);
        assert_int_equal(engine_input_write(e, wid, buf, total, write_done, &w), 0);
        assert_int_equal(engine_run_once(e, 20000), 0);
        assert_false(w.done);
        engine_free(e);
        assert_true(w.done);
        assert_true(w.engine_null);
        assert_true(w.r == -ECANCELED || w.r == -EPIPE);
        free(buf);
        rm_rf(dir);
        free(dir);
}

static JobId start_tty(Engine *e, const char *const *argv, unsigned rows, unsigned cols) {
        JobTerminal t = { .rows = (uint16_t) rows, .cols = (uint16_t) cols, .term = "xterm-test" };
        JobSpec spec = { .argv = argv, .owner = "tester", .cgroup_fd = -1, .tty = &t };
        JobStartError err;
        JobId id;
        if (engine_start_job_wait(e, &spec, &id, &err) < 0)
                fail_msg("start %s: %s", argv[0], err.message);
        return id;
}

/* Turns the loop until the job's stdout holds needle (bounded). */
static void wait_output(Engine *e, const JobId *id, const char *needle) {
        uint64_t until = mono_ms() + 10000;
        char out[GRAB_MAX + 1];
        for (;;) {
                grab_finished_stdout(e, id, out);
                if (strstr(out, needle))
                        return;
                if (mono_ms() > until)
                        fail_msg("no '%s' in the job's output '%s'", needle, out);
                assert_int_equal(engine_run_once(e, 20000), 0);
        }
}

/* On a terminal: its size, a /dev/pts name, TERM, stderr on the terminal,
 * typed input, a resize, and the output as stdout. (The WINCH trap breaks
 * off a read, hence the loop.) */
static void test_terminal(void **state) {
        char *dir = make_state_dir("input");
        Engine *e = engine_new_ok(&(EngineConfig){ .state_dir = dir });
        const char *argv[] = { "sh", "-c", "trap 'stty size' WINCH; stty size; tty; echo T=$TERM; echo err >&2; "
                               "read x; echo got $x; until read y; do :; done; echo end", NULL };
        char out[GRAB_MAX + 1];
        InputWriterId wid;
        JobStatus s;

        JobId id = start_tty(e, argv, 31, 97);
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        assert_true(s.tty);
        assert_int_equal(s.stdin_state, JOB_STDIN_OPEN);
        wait_output(e, &id, "err\r\n");
        assert_int_equal(engine_get_status(e, &id, &s), 0);
        if (s.state != JOB_STATE_RUNNING) {
                grab_finished_stdout(e, &id, out);
                fail_msg("ended: state %d code %d sig %d out '%s'", s.state, s.exit_code, s.signal, out);
        }
        assert_int_equal(engine_input_open(e, &id, &wid), 0);
        assert_int_equal(write_all(e, wid, "hello\r", 6), 0);
        wait_output(e, &id, "got hello\r\n");
        assert_int_equal(engine_input_resize(e, wid, 50, 120), 0);
        assert_int_equal(engine_input_resize(e, wid, 0, 120), -EINVAL);
        wait_output(e, &id, "50 120\r\n");
        assert_int_equal(write_all(e, wid, "x\r", 2), 0);
        s = wait_job(e, &id, 10000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 0);
        assert_true(s.tty);
        assert_int_equal(s.stderr_bytes, 0); /* all of it went to the terminal */
        grab_finished_stdout(e, &id, out);
        assert_non_null(strstr(out, "31 97\r\n/dev/pts/"));
        assert_non_null(strstr(out, "T=xterm-test\r\n"));
        assert_non_null(strstr(out, "end\r\n"));

        /* a job without a terminal has no size to set */
        const char *sleep_argv[] = { "sleep", "60", NULL };
        id = start_stdin(e, sleep_argv, true);
        assert_int_equal(engine_input_open(e, &id, &wid), 0);
        assert_int_equal(engine_input_resize(e, wid, 24, 80), -ENOTTY);
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        (void) wait_job(e, &id, 10000);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bytes_in_order),
                cmocka_unit_test(test_close_is_eof),
                cmocka_unit_test(test_without_stdin_reads_devnull),
                cmocka_unit_test(test_second_writer_refused),
                cmocka_unit_test(test_write_after_end_refused),
                cmocka_unit_test(test_backpressure_then_job_ends),
                cmocka_unit_test(test_pending_write_at_engine_free),
                cmocka_unit_test(test_terminal),
        };
        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
