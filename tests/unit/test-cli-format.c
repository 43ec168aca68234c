/* SPDX-License-Identifier: MIT */
/* jwctl's output formats (src/cli/format.c): JSON escaping, status/list text and JSON. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cli/format.h"

/* Runs fn into a memory stream and returns the text (caller frees). */
#define CAPTURE(var, ...)                                       \
        do {                                                    \
                size_t _n = 0;                                  \
                FILE *f = open_memstream(&(var), &_n);          \
                assert_non_null(f);                             \
                __VA_ARGS__;                                    \
                assert_int_equal(fclose(f), 0);                 \
        } while (0)

static char *json_of(const char *s, size_t n) {
        char *out = NULL;
        CAPTURE(out, cli_json_write_string(f, s, n));
        return out;
}

static void expect_json(const char *in, size_t n, const char *expected) {
        char *out = json_of(in, n);
        assert_string_equal(out, expected);
        free(out);
}

static void test_json_strings(void **state) {
        expect_json("", 0, "\"\"");
        expect_json("plain text", 10, "\"plain text\"");
        expect_json("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
        expect_json("\n\t\r\b\f\x01\x1f\x7f", 8, "\"\\n\\t\\r\\u0008\\u000c\\u0001\\u001f\\u007f\"");
        expect_json("nul\0byte", 8, "\"nul\\u0000byte\"");
        /* valid UTF-8 passes through: é (2 bytes), € (3), 😀 (4) */
        expect_json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
        /* invalid: lone continuation, truncated sequence, overlong, surrogate, > U+10FFFF, 0xff */
        expect_json("a\x80z", 3, "\"a\\ufffdz\"");
        expect_json("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");
        expect_json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
        expect_json("\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\"");
        expect_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
        expect_json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
        expect_json("\xff", 1, "\"\\ufffd\"");
}

static CliJobStatus make_status(const char *id, Jobworker__V1__JobState state) {
        CliJobStatus st = JOBWORKER__V1__JOB_STATUS__INIT;
        st.job_id = (char *) id;
        st.state = state;
        st.owner = (char *) "alice";
        st.command = (char *) "sh -c 'echo \"hi\"'";
        st.pid = 4242;
        st.start_time_us = 1700000000123456ULL; /* 2023-11-14T22:13:20.123456Z */
        return st;
}

static void test_status_json(void **state) {
        CliJobStatus st = make_status("0123abcd-4567-4890-8abc-def012345678", JOBWORKER__V1__JOB_STATE__JOB_STATE_EXITED);
        char *out = NULL;

        st.exit_code = 3;
        st.end_time_us = 1700000001000000ULL;
        st.stdout_bytes = 10;
        st.stderr_bytes = 20;
        CAPTURE(out, cli_format_status_json(f, &st));
        assert_string_equal(out,
                "{\"job_id\":\"0123abcd-4567-4890-8abc-def012345678\",\"state\":\"exited\",\"exit_code\":3,"
                "\"signal\":null,\"signal_name\":null,\"stop_requested\":false,\"pid\":4242,\"owner\":\"alice\","
                "\"command\":\"sh -c 'echo \\\"hi\\\"'\",\"start_time\":\"2023-11-14T22:13:20.123456Z\","
                "\"end_time\":\"2023-11-14T22:13:21.000000Z\",\"start_time_us\":1700000000123456,"
                "\"end_time_us\":1700000001000000,\"stdout_bytes\":10,\"stderr_bytes\":20,"
                "\"output_truncated\":false,\"dropped_bytes\":0,\"has_cgroup\":false,\"cpu_usec\":null,"
                "\"memory_peak_bytes\":null,\"oom_kills\":null,\"oom_killed\":false}");
        free(out);

        /* with a cgroup: resource use */
        st.has_cgroup = true;
        st.cpu_usec = 1500000;
        st.memory_peak_bytes = 12345678;
        CAPTURE(out, cli_format_status_json(f, &st));
        assert_non_null(strstr(out, ",\"has_cgroup\":true,\"cpu_usec\":1500000,\"memory_peak_bytes\":12345678,"
                                    "\"oom_kills\":0,\"oom_killed\":false}"));
        free(out);
        /* no memory controller: peak 0 is "not measured" */
        st.memory_peak_bytes = 0;
        CAPTURE(out, cli_format_status_json(f, &st));
        assert_non_null(strstr(out, "\"cpu_usec\":1500000,\"memory_peak_bytes\":null,\"oom_kills\":0"));
        free(out);
        st.has_cgroup = false;
        st.cpu_usec = 0;

        st.state = JOBWORKER__V1__JOB_STATE__JOB_STATE_KILLED;
        st.signal = 9;
        st.stop_requested = true;
        CAPTURE(out, cli_format_status_json(f, &st));
        assert_non_null(strstr(out, "\"state\":\"killed\",\"exit_code\":null,\"signal\":9,\"signal_name\":\"SIGKILL\",\"stop_requested\":true"));
        free(out);

        st.state = JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING;
        st.end_time_us = 0;
        CAPTURE(out, cli_format_status_json(f, &st));
        assert_non_null(strstr(out, "\"state\":\"running\",\"exit_code\":null,\"signal\":null"));
        assert_non_null(strstr(out, "\"end_time\":null"));
        assert_non_null(strstr(out, "\"end_time_us\":null"));
        free(out);
}

static void test_list_json(void **state) {
        CliJobStatus a = make_status("a", JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING);
        CliJobStatus b = make_status("b", JOBWORKER__V1__JOB_STATE__JOB_STATE_LOST);
        CliJobStatus *jobs[] = { &a, &b };
        char *out = NULL;

        CAPTURE(out, cli_format_list_json(f, jobs, 0));
        assert_string_equal(out, "[]\n");
        free(out);

        CAPTURE(out, cli_format_list_json(f, jobs, 2));
        assert_true(strncmp(out, "[\n{\"job_id\":\"a\",\"state\":\"running\"", 33) == 0);
        assert_non_null(strstr(out, "},\n{\"job_id\":\"b\",\"state\":\"lost\""));
        assert_string_equal(out + strlen(out) - 3, "\n]\n");
        free(out);
}

static void test_terminal_safe(void **state) {
        char *s;

        s = cli_terminal_safe("ok \xc3\xa9 \x1b[31mred\x07\n\xff\xc2\x9b!");
        assert_string_equal(s, "ok \xc3\xa9 ?[31mred???\?!");
        free(s);
        s = cli_terminal_safe(NULL);
        assert_string_equal(s, "");
        free(s);
}

static void test_state_short(void **state) {
        CliJobStatus st = make_status("x", JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING);
        char b[64], sig[16];

        assert_string_equal(cli_state_short(&st, b), "running");
        st.stop_requested = true;
        assert_string_equal(cli_state_short(&st, b), "stopping");
        st.state = JOBWORKER__V1__JOB_STATE__JOB_STATE_EXITED;
        st.exit_code = 42;
        assert_string_equal(cli_state_short(&st, b), "exited 42");
        st.state = JOBWORKER__V1__JOB_STATE__JOB_STATE_KILLED;
        st.signal = 15;
        assert_string_equal(cli_state_short(&st, b), "killed SIGTERM");
        st.oom_killed = true;
        st.signal = 9;
        assert_string_equal(cli_state_short(&st, b), "killed SIGKILL (OOM)");
        st.oom_killed = false;
        st.timed_out = true;
        st.signal = 15;
        assert_string_equal(cli_state_short(&st, b), "killed SIGTERM (timed out)");
        st.state = JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING;
        assert_string_equal(cli_state_short(&st, b), "timing out");
        st.state = JOBWORKER__V1__JOB_STATE__JOB_STATE_LOST;
        assert_string_equal(cli_state_short(&st, b), "lost");
        assert_string_equal(cli_signal_name(2, sig), "SIGINT");
        assert_string_equal(cli_signal_name(0, sig), "SIG0");
        assert_string_equal(cli_signal_name(SIGRTMIN + 6, sig), "SIGRTMIN+6");
        assert_string_equal(cli_signal_name(SIGRTMAX, sig), "SIGRTMAX");
        assert_string_equal(cli_signal_name(32, sig), "SIG32");
}

static void test_text(void **state) {
        CliJobStatus a = make_status("0123abcd-4567-4890-8abc-def012345678", JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING);
        CliJobStatus b = make_status("ffffffff-ffff-4fff-bfff-ffffffffffff", JOBWORKER__V1__JOB_STATE__JOB_STATE_KILLED);
        CliJobStatus *jobs[] = { &a, &b };
        char *out = NULL;

        b.signal = 9;
        b.owner = (char *) "charlie\x1b";
        b.command = (char *) "sleep 100";
        setenv("TZ", "UTC", 1);
        tzset();

        CAPTURE(out, cli_format_list_text(f, jobs, 2));
        assert_string_equal(out,
                "JOB ID                                STATE           OWNER     STARTED              CPU  MEMORY  COMMAND\n"
                "0123abcd-4567-4890-8abc-def012345678  running         alice     2023-11-14 22:13:20  -    -       sh -c 'echo \"hi\"'\n"
                "ffffffff-ffff-4fff-bfff-ffffffffffff  killed SIGKILL  charlie?  2023-11-14 22:13:20  -    -       sleep 100\n");
        free(out);

        CAPTURE(out, cli_format_list_text(f, jobs, 0));
        assert_string_equal(out, "JOB ID  STATE  OWNER  STARTED  CPU  MEMORY  COMMAND\n");
        free(out);

        /* with cgroups: CPU time and peak memory */
        a.has_cgroup = true;
        a.cpu_usec = 2500;
        a.memory_peak_bytes = 3 * 1024 * 1024 + 512 * 1024;
        CAPTURE(out, cli_format_list_text(f, jobs, 2));
        assert_string_equal(out,
                "JOB ID                                STATE           OWNER     STARTED              CPU     MEMORY   COMMAND\n"
                "0123abcd-4567-4890-8abc-def012345678  running         alice     2023-11-14 22:13:20  0.002s  3.5 MiB  sh -c 'echo \"hi\"'\n"
                "ffffffff-ffff-4fff-bfff-ffffffffffff  killed SIGKILL  charlie?  2023-11-14 22:13:20  -       -        sleep 100\n");
        free(out);

        b.end_time_us = b.start_time_us + 61500000;
        b.stdout_bytes = 5;
        CAPTURE(out, cli_format_status_text(f, &b));
        assert_string_equal(out,
                "Job:      ffffffff-ffff-4fff-bfff-ffffffffffff\n"
                "State:    killed by signal 9 (SIGKILL)\n"
                "Command:  sleep 100\n"
                "Owner:    charlie?\n"
                "PID:      4242\n"
                "Started:  2023-11-14 22:13:20 UTC\n"
                "Ended:    2023-11-14 22:14:21 UTC (after 1m01s)\n"
                "Output:   5 bytes on stdout, 0 bytes on stderr\n"
                "Cgroup:   none (CPU time, memory and OOM kills are not measured)\n");
        free(out);

        /* ended by the OOM killer, with a cgroup */
        b.has_cgroup = true;
        b.cpu_usec = 61234567;
        b.memory_peak_bytes = 268435456;
        b.oom_kills = 1;
        b.oom_killed = true;
        CAPTURE(out, cli_format_status_text(f, &b));
        assert_non_null(strstr(out, "State:    killed by signal 9 (SIGKILL) (out of memory: the OOM killer)\n"));
        assert_non_null(strstr(out, "\nCPU time: 1m01s\nMemory:   256.0 MiB peak\n"
                                    "OOM:      1 process killed by the OOM killer; the job ended because of it\n"));
        assert_null(strstr(out, "Cgroup:"));
        free(out);

        /* a cgroup without the memory controller, no OOM kills */
        b.memory_peak_bytes = 0;
        b.oom_kills = 0;
        b.oom_killed = false;
        b.cpu_usec = 1500;
        CAPTURE(out, cli_format_status_text(f, &b));
        assert_non_null(strstr(out, "\nCPU time: 0.001s\nMemory:   not measured (no memory controller)\n"));
        assert_null(strstr(out, "OOM:"));
        assert_null(strstr(out, "Limit:"));
        free(out);

        /* a time limit, and a job that reached it */
        b.max_runtime_ms = 30 * 60 * 1000;
        b.signal = 15;
        CAPTURE(out, cli_format_status_text(f, &b));
        assert_non_null(strstr(out, "State:    killed by signal 15 (SIGTERM)\n"));
        assert_non_null(strstr(out, "\nLimit:    runs at most 30m\n"));
        free(out);
        b.timed_out = true;
        CAPTURE(out, cli_format_status_text(f, &b));
        assert_non_null(strstr(out, "State:    killed by signal 15 (SIGTERM) (timed out: its max runtime passed)\n"));
        assert_non_null(strstr(out, "\nLimit:    timed out after 30m\n"));
        free(out);
        CAPTURE(out, cli_format_status_json(f, &b));
        assert_non_null(strstr(out, ",\"max_runtime_ms\":1800000,\"timed_out\":true}"));
        free(out);

        /* standard input: shown only when it is not /dev/null */
        CAPTURE(out, cli_format_status_text(f, &b));
        assert_null(strstr(out, "Stdin:"));
        free(out);
        b.stdin_state = JOBWORKER__V1__STDIN_STATE__STDIN_STATE_WRITING;
        CAPTURE(out, cli_format_status_text(f, &b));
        assert_non_null(strstr(out, "\nStdin:    open, being written\n"));
        free(out);
        b.stdin_state = JOBWORKER__V1__STDIN_STATE__STDIN_STATE_CLOSED;
        b.tty = true;
        CAPTURE(out, cli_format_status_text(f, &b));
        assert_non_null(strstr(out, "\nStdin:    a terminal, closed\n"));
        free(out);
        CAPTURE(out, cli_format_status_json(f, &b));
        assert_non_null(strstr(out, ",\"stdin\":\"closed\",\"tty\":true}"));
        free(out);
}

/* Names and labels: shown when set, the table unchanged without them. */
static void test_names(void **state) {
        CliJobStatus a = make_status("0123abcd-4567-4890-8abc-def012345678", JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING);
        CliJobStatus b = make_status("ffffffff-ffff-4fff-bfff-ffffffffffff", JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING);
        CliJobStatus *jobs[] = { &a, &b };
        Jobworker__V1__Label l1 = JOBWORKER__V1__LABEL__INIT, l2 = JOBWORKER__V1__LABEL__INIT, *lp[] = { &l1, &l2 };
        char *out = NULL;

        setenv("TZ", "UTC", 1);
        tzset();
        a.name = (char *) "web-1";
        l1.key = (char *) "team";
        l1.value = (char *) "web";
        l2.key = (char *) "tier";
        l2.value = (char *) "1\x1b";
        a.n_labels = 2;
        a.labels = lp;
        b.name = (char *) "";
        CAPTURE(out, cli_format_list_text(f, jobs, 2));
        assert_string_equal(out,
                "JOB ID                                NAME   STATE    OWNER  STARTED              CPU  MEMORY  LABELS            COMMAND\n"
                "0123abcd-4567-4890-8abc-def012345678  web-1  running  alice  2023-11-14 22:13:20  -    -       team=web,tier=1?  sh -c 'echo \"hi\"'\n"
                "ffffffff-ffff-4fff-bfff-ffffffffffff  -      running  alice  2023-11-14 22:13:20  -    -       -                 sh -c 'echo \"hi\"'\n");
        free(out);

        CAPTURE(out, cli_format_status_text(f, &a));
        assert_non_null(strstr(out, "Job:      0123abcd-4567-4890-8abc-def012345678\nName:     web-1\n"
                                    "Labels:   team=web, tier=1?\nState:    running\n"));
        free(out);
        CAPTURE(out, cli_format_status_json(f, &a));
        assert_non_null(strstr(out, ",\"name\":\"web-1\",\"labels\":{\"team\":\"web\",\"tier\":\"1\\u001b\"}}"));
        free(out);

        /* without: no Name/Labels lines, no keys, no columns */
        CAPTURE(out, cli_format_status_text(f, &b));
        assert_null(strstr(out, "Name:"));
        assert_null(strstr(out, "Labels:"));
        free(out);
        CAPTURE(out, cli_format_status_json(f, &b));
        assert_null(strstr(out, "\"name\""));
        assert_null(strstr(out, "\"labels\""));
        free(out);
        CAPTURE(out, cli_format_list_text(f, jobs + 1, 1));
        assert_non_null(strstr(out, "JOB ID                                STATE    OWNER  STARTED"));
        free(out);
}

static void test_bytes(void **state) {
        char b[32];

        assert_string_equal(cli_format_bytes(0, b, sizeof b), "0 B");
        assert_string_equal(cli_format_bytes(1023, b, sizeof b), "1023 B");
        assert_string_equal(cli_format_bytes(1024, b, sizeof b), "1.0 KiB");
        assert_string_equal(cli_format_bytes(1024 * 1024 - 1, b, sizeof b), "1023.9 KiB");
        assert_string_equal(cli_format_bytes(1536ULL << 20, b, sizeof b), "1.5 GiB");
        assert_string_equal(cli_format_bytes(5ULL << 40, b, sizeof b), "5.0 TiB");
        assert_string_equal(cli_format_bytes(5000ULL << 40, b, sizeof b), "5000.0 TiB");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_strings),
                cmocka_unit_test(test_status_json),
                cmocka_unit_test(test_list_json),
                cmocka_unit_test(test_terminal_safe),
                cmocka_unit_test(test_state_short),
                cmocka_unit_test(test_text),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_bytes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
