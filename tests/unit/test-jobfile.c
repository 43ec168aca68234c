/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/jobfile.h"

static void test_roundtrip(void **state) {
        JobStatus a = {
                .state = JOB_STATE_KILLED, .signal = 9, .stop_requested = true, .pid = 1234,
                .start_usec = 1700000000000000ull, .end_usec = 1700000000500000ull,
                .stdout_bytes = 1ull << 40, .stderr_bytes = 5, .truncated = true, .dropped_bytes = 77,
                .has_cgroup = true, .cpu_usec = 999, .memory_peak = 1 << 20, .oom_kills = 1, .oom_killed = true,
                .pid_starttime = 123456789, .starting = true, .stop_deadline = 5555,
                .max_runtime_usec = 1800ull * 1000000, .runtime_deadline = 98765432101ull, .timed_out = true,
        }, b;
        char buf[JOBFILE_MAX];
        uint64_t ls;

        assert_int_equal(job_id_generate(&a.id), 0);
        strcpy(a.owner, "eve\nstate=running\\x41");   /* must not inject a line */
        strcpy(a.command, "printf '\\t%s\\n' \x01\x7f");
        strcpy(a.name, "web-1.nightly");
        strcpy(a.labels, "team=web,tier=1,empty=");
        strcpy(a.request_id, "0b5f3a1c-2d4e-4f60-8a7b-9c0d1e2f3a4b");
        int n = jobfile_format(&a, 4096, buf, sizeof(buf));
        assert_true(n > 0);
        assert_null(strstr(buf, "\nstate=running\n"));
        assert_int_equal(jobfile_parse(buf, &b, &ls), 0);
        assert_int_equal(ls, 4096);
        assert_memory_equal(&a, &b, sizeof(a));
}

/* A record of before names (no name=, labels=, request_id= keys) loads
 * with none. */
static void test_without_names(void **state) {
        JobStatus b;
        uint64_t ls;

        assert_int_equal(jobfile_parse("id=0123abcd-89ab-4def-8123-456789abcdef\nstate=exited\nowner=alice\n", &b, &ls), 0);
        assert_string_equal(b.owner, "alice");
        assert_string_equal(b.name, "");
        assert_string_equal(b.labels, "");
        assert_string_equal(b.request_id, "");
}

static void test_missing_or_bad(void **state) {
        JobStatus s;
        uint64_t ls;
        assert_int_equal(jobfile_parse("", &s, &ls), -EBADMSG);
        assert_int_equal(jobfile_parse("state=exited\n", &s, &ls), -EBADMSG);
        assert_int_equal(jobfile_parse("id=0b9f6c8e-1d2a-4c3b-8e4f-5a6b7c8d9e0f\nstate=sleeping\n", &s, &ls), -EBADMSG);
        assert_int_equal(jobfile_parse("id=nope\nstate=exited\n", &s, &ls), -EBADMSG);
        /* Unknown keys and lines without '=' are ignored; no final newline is fine. */
        assert_int_equal(jobfile_parse("future=1\ngarbage\nid=0b9f6c8e-1d2a-4c3b-8e4f-5a6b7c8d9e0f\nstate=lost", &s, &ls), 0);
        assert_int_equal(s.state, JOB_STATE_LOST);
        assert_int_equal(ls, 0);
}

/* Records say their version first; one of version 1 (the first release:
 * no version key, no pid start time) loads with those fields 0. */
static void test_versions(void **state) {
        JobStatus a = { .state = JOB_STATE_RUNNING, .pid = 7, .pid_starttime = 42 }, b;
        char buf[JOBFILE_MAX];
        uint64_t ls;

        assert_int_equal(job_id_generate(&a.id), 0);
        assert_true(jobfile_format(&a, 8, buf, sizeof(buf)) > 0);
        assert_memory_equal(buf, "version=2\n", 10);
        assert_int_equal(jobfile_parse(buf, &b, &ls), 0);
        assert_int_equal(b.pid_starttime, 42);
        assert_false(b.starting);

        assert_int_equal(jobfile_parse("id=0b9f6c8e-1d2a-4c3b-8e4f-5a6b7c8d9e0f\nstate=running\npid=99\nlog_size=8\n",
                                       &b, &ls), 0);
        assert_int_equal(b.state, JOB_STATE_RUNNING);
        assert_int_equal(b.pid, 99);
        assert_int_equal(b.pid_starttime, 0);
        assert_false(b.starting);
}

static void test_small_buffer(void **state) {
        JobStatus a = { .state = JOB_STATE_RUNNING };
        char buf[32];
        assert_int_equal(jobfile_format(&a, 0, buf, sizeof(buf)), -ENOBUFS);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_missing_or_bad),
                cmocka_unit_test(test_without_names),
                cmocka_unit_test(test_versions),
                cmocka_unit_test(test_small_buffer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
