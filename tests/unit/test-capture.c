/* SPDX-License-Identifier: MIT */

/*
 * Capture under hostile writers (issue 13, item 4): a job writing one byte
 * at a time is read in batches (few records, byte-exact), a quiet job's tiny
 * writes are read at once, and a restart scans only the log that follows the
 * last checkpoint.
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
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "../helpers/engine-test-util.h"
#include "../helpers/testdata.h"
#include "core/engine-internal.h"
#include "core/job-id.h"

static const char *testprog;

static Engine *engine_at(const char *dir, bool use_splice) {
        return engine_new_ok(&(EngineConfig){ .state_dir = dir, .capture_splice = use_splice });
}

static int open_log(const char *dir, const JobId *id) {
        char path[512], s[JOB_ID_STRING_MAX];
        snprintf(path, sizeof(path), "%s/jobs/%s/output", dir, job_id_to_string(id, s));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

/* The whole log: its records, and stdout checked against testdata(seed),
 * or zeros for seed 0. */
static OutlogScan check_log(int fd, uint64_t seed, uint64_t want_stdout) {
        static uint8_t buf[1 << 20];
        OutlogScan scan;
        OutlogCursor c;
        uint64_t got = 0;
        JobStream s;
        ssize_t n;

        assert_int_equal(outlog_scan_from(fd, false, NULL, &scan), 0);
        outlog_cursor_init(&c);
        while ((n = outlog_read(fd, scan.end, &c, JOB_STREAMS_ALL, buf, sizeof(buf), &s)) > 0) {
                assert_int_equal(s, JOB_STREAM_STDOUT);
                bool ok = seed ? testdata_check(seed, got, buf, (size_t) n)
                               : buf[0] == 0 && memcmp(buf, buf + 1, (size_t) n - 1) == 0;
                if (!ok)
                        fail_msg("log differs from what the job wrote near byte %llu", (unsigned long long) got);
                got += (uint64_t) n;
        }
        assert_int_equal(n, 0);
        assert_int_equal(got, want_stdout);
        assert_int_equal(scan.stdout_bytes, want_stdout);
        return scan;
}

/* 64 KiB in 1-byte writes, flat out: byte-exact, and read in batches. Before
 * the batching every read was its own record: measured 2,019-2,558 records
 * here (a read found ~30 bytes); after, about 10. The bound leaves room for
 * a writer slowed 40-fold (two records per 5 ms delay at most). */
static void run_drip(bool use_splice) {
        char *dir = make_state_dir("capture");
        Engine *e = engine_at(dir, use_splice);
        const char *argv[] = { testprog, "drip", "65536", "11", NULL };

        JobId id = start_job_ok(e, argv);
        JobStatus st = wait_job(e, &id, 60000);
        assert_int_equal(st.state, JOB_STATE_EXITED);
        assert_int_equal(st.stdout_bytes, 65536);

        int fd = open_log(dir, &id);
        OutlogScan scan = check_log(fd, 11, 65536);
        print_message("drip, %s: %llu records for 65536 bytes, %llu batching delays\n", use_splice ? "splice" : "read",
                      (unsigned long long) scan.records, (unsigned long long) e->batch_delays);
        assert_true(scan.records <= 65536 / 128);
        assert_true(e->batch_delays > 0);
        close(fd);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_one_byte_writer_is_batched_splice(void **state) {
        run_drip(true);
}

static void test_one_byte_writer_is_batched_read(void **state) {
        run_drip(false);
}

/* Tiny writes 200 ms apart (a prompt, an echo): each is read when it comes,
 * as its own record, and no batching delay is ever armed. (200 ms, ten
 * times the 20 ms window: only a stall of the test of ~180 ms could make
 * two reads look close.) */
static void test_quiet_tiny_writes_are_not_delayed(void **state) {
        char *dir = make_state_dir("capture");
        Engine *e = engine_at(dir, true);
        const char *argv[] = { testprog, "drip", "5", "12", "200", NULL };

        JobId id = start_job_ok(e, argv);
        JobStatus st = wait_job(e, &id, 30000);
        assert_int_equal(st.state, JOB_STATE_EXITED);

        int fd = open_log(dir, &id);
        OutlogScan scan = check_log(fd, 12, 5);
        assert_int_equal(scan.records, 5);
        assert_int_equal(e->batch_delays, 0);
        close(fd);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A tiny writer (a byte a millisecond) that goes quiet: once a look finds
 * the pipe empty, it is polled again (no timer keeps firing on an idle
 * pipe: before, 58 delays in 300 ms of silence). */
static void test_idle_after_burst_arms_no_timers(void **state) {
        char *dir = make_state_dir("capture");
        Engine *e = engine_at(dir, true);
        char script[512];

        snprintf(script, sizeof(script), "'%s' drip 200 13 1; exec sleep 2", testprog);
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        JobId id = start_job_ok(e, argv);
        uint64_t until = mono_ms() + 30000;
        JobStatus s;
        do {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
                assert_int_equal(engine_get_status(e, &id, &s), 0);
        } while (s.stdout_bytes < 200);
        uint64_t d0 = e->batch_delays;
        /* 300 ms of an idle pipe: at 5 ms a delay, a timer loop would arm ~60. */
        for (uint64_t end = mono_ms() + 300; mono_ms() < end;)
                assert_int_equal(engine_run_once(e, 50000), 0);
        print_message("delays: %llu in the burst, %llu while idle\n", (unsigned long long) d0,
                      (unsigned long long) (e->batch_delays - d0));
        assert_true(e->batch_delays - d0 <= 2);
        assert_int_equal(engine_stop_job(e, &id, 0), 0);
        wait_job(e, &id, 10000);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A daemon dies with a job that wrote 40 MB still running: the next one
 * scans only what follows the last checkpoint, and still counts every byte. */
static void test_restart_scans_from_checkpoint(void **state) {
        char *dir = make_state_dir("capture");
        const uint64_t total = 40000000;
        char script[512];
        int ws;

        snprintf(script, sizeof(script), "'%s' zeros %llu; exec sleep 30", testprog, (unsigned long long) total);
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        EngineConfig c = { .state_dir = dir, .capture_splice = true };
        pid_t job_pid = start_job_and_die(&c, argv, total, &ws);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

        Engine *e = engine_at(dir, true);
        JobStatus *v;
        size_t n;
        assert_int_equal(engine_list(e, "ghost", &v, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(v[0].state, JOB_STATE_LOST);
        assert_int_equal(v[0].stdout_bytes, total);
        print_message("restart scanned %llu of %llu log bytes\n", (unsigned long long) e->log_bytes_scanned,
                      (unsigned long long) total);
        assert_true(e->log_bytes_scanned <= 16u * 1024 * 1024 + 2u * 1024 * 1024);
        int fd = open_log(dir, &v[0].id);
        check_log(fd, 0, total);
        close(fd);
        free(v);
        kill(job_pid, SIGKILL);
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
                cmocka_unit_test(test_one_byte_writer_is_batched_splice),
                cmocka_unit_test(test_one_byte_writer_is_batched_read),
                cmocka_unit_test(test_quiet_tiny_writes_are_not_delayed),
                cmocka_unit_test(test_idle_after_burst_arms_no_timers),
                cmocka_unit_test(test_restart_scans_from_checkpoint),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
