/* SPDX-License-Identifier: MIT */
/* A fan-out's output, results and saved runs (src/cli/fanout-output.c,
 * fanout-summary.c, fanout-runs.c): prefixes, partial lines, raw, JSON,
 * grouped and folded output (also spilled to a file), states, exit codes,
 * the summary table, run files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/client.h"
#include "cli/fanout-output.h"
#include "cli/fanout-runs.h"
#include "cli/fanout-summary.h"
#include "cli/fanout.h"

static const char *const names[] = { "web01", "db1", "web03" };

typedef struct Out {
        int fd[2];
        FanoutOutput *o;
} Out;

static Out open_out(FanoutMode mode, unsigned color) {
        Out t;

        t.fd[0] = memfd_create("out", MFD_CLOEXEC);
        t.fd[1] = memfd_create("err", MFD_CLOEXEC);
        assert_true(t.fd[0] >= 0 && t.fd[1] >= 0);
        assert_int_equal(fanout_output_new(mode, names, 3, t.fd[0], t.fd[1], color, &t.o), 0);
        return t;
}

/* What was written to stream s, malloc()ed, NUL-terminated. */
static char *take(Out *t, int s, size_t *ret_len) {
        off_t n = lseek(t->fd[s], 0, SEEK_CUR);
        char *b = calloc(1, (size_t) n + 1);

        assert_int_equal(pread(t->fd[s], b, (size_t) n, 0), n);
        if (ret_len)
                *ret_len = (size_t) n;
        return b;
}

static void close_out(Out *t) {
        fanout_output_free(t->o);
        close(t->fd[0]);
        close(t->fd[1]);
}

#define FEED(t, h, s, str) assert_int_equal(fanout_output_data((t)->o, h, s, (const uint8_t *) (str), strlen(str)), 0)

static void expect_stream(Out *t, int s, const char *want) {
        char *got = take(t, s, NULL);
        assert_string_equal(got, want);
        free(got);
}

static void test_prefix(void **state) {
        Out t = open_out(FANOUT_MODE_PREFIX, 0);

        /* Partial lines wait for their end; lines of two hosts never mix. */
        FEED(&t, 0, FANOUT_STDOUT, "hel");
        FEED(&t, 1, FANOUT_STDOUT, "one\ntw");
        FEED(&t, 0, FANOUT_STDOUT, "lo\nwor");
        FEED(&t, 1, FANOUT_STDERR, "oops\n");
        FEED(&t, 1, FANOUT_STDOUT, "o\n");
        assert_int_equal(fanout_output_host_end(t.o, 0), 0);
        /* Aligned on the longest name; a last line without newline gets one. */
        expect_stream(&t, FANOUT_STDOUT, "db1:   one\nweb01: hello\ndb1:   two\nweb01: wor\n");
        expect_stream(&t, FANOUT_STDERR, "db1:   oops\n");
        assert_int_equal(fanout_output_finish(t.o), 0);
        close_out(&t);
}

static void test_prefix_color_and_long(void **state) {
        Out t = open_out(FANOUT_MODE_PREFIX, 1u << FANOUT_STDERR);
        char *big = malloc(FANOUT_LINE_MAX + 11), *got;
        size_t len;

        FEED(&t, 2, FANOUT_STDERR, "e\n");
        FEED(&t, 2, FANOUT_STDOUT, "o\n");
        expect_stream(&t, FANOUT_STDERR, "\033[33mweb03\033[0m: e\n");
        /* Color only where asked (stdout is not a terminal here). */
        expect_stream(&t, FANOUT_STDOUT, "web03: o\n");
        close_out(&t);

        /* A line longer than the bound is cut into lines. */
        t = open_out(FANOUT_MODE_PREFIX, 0);
        memset(big, 'x', FANOUT_LINE_MAX + 10);
        big[FANOUT_LINE_MAX + 10] = '\0';
        FEED(&t, 1, FANOUT_STDOUT, big);
        assert_int_equal(fanout_output_host_end(t.o, 1), 0);
        got = take(&t, FANOUT_STDOUT, &len);
        assert_int_equal(len, 2 * strlen("db1:   ") + FANOUT_LINE_MAX + 10 + 2);
        assert_memory_equal(got + strlen("db1:   ") + FANOUT_LINE_MAX, "\ndb1:   xxxxxxxxxx\n", 19);
        free(got);
        free(big);
        close_out(&t);
}

static void test_raw(void **state) {
        Out t = open_out(FANOUT_MODE_RAW, 0);

        /* Bytes as they are, whole lines at a time, no newline added. */
        FEED(&t, 0, FANOUT_STDOUT, "a");
        FEED(&t, 1, FANOUT_STDOUT, "b\n");
        FEED(&t, 0, FANOUT_STDOUT, "c\nd");
        assert_int_equal(fanout_output_host_end(t.o, 0), 0);
        expect_stream(&t, FANOUT_STDOUT, "b\nac\nd");
        close_out(&t);
}

static void test_json(void **state) {
        Out t = open_out(FANOUT_MODE_JSON, 3);
        const uint8_t bin[] = { 0xff, 0x00, 'a', '\n' };

        FEED(&t, 0, FANOUT_STDOUT, "h\xc3\xa9\"\n");
        FEED(&t, 0, FANOUT_STDERR, "e\tx\n");
        assert_int_equal(fanout_output_data(t.o, 1, FANOUT_STDOUT, bin, sizeof bin), 0);
        FEED(&t, 1, FANOUT_STDOUT, "tail");
        assert_int_equal(fanout_output_host_end(t.o, 1), 0);
        /* Everything on stdout, no color, offsets per host over both streams. */
        expect_stream(&t, FANOUT_STDOUT,
                      "{\"host\":\"web01\",\"stream\":\"stdout\",\"offset\":0,\"data\":\"h\xc3\xa9\\\"\\n\"}\n"
                      "{\"host\":\"web01\",\"stream\":\"stderr\",\"offset\":5,\"data\":\"e\\tx\\n\"}\n"
                      "{\"host\":\"db1\",\"stream\":\"stdout\",\"offset\":0,\"data_base64\":\"/wBhCg==\"}\n"
                      "{\"host\":\"db1\",\"stream\":\"stdout\",\"offset\":4,\"data\":\"tail\"}\n");
        expect_stream(&t, FANOUT_STDERR, "");
        close_out(&t);

        /* logs --offset N: offsets count from N. */
        t = open_out(FANOUT_MODE_JSON, 0);
        fanout_output_set_offset(t.o, 2, 100);
        FEED(&t, 2, FANOUT_STDOUT, "x\n");
        expect_stream(&t, FANOUT_STDOUT, "{\"host\":\"web03\",\"stream\":\"stdout\",\"offset\":100,\"data\":\"x\\n\"}\n");
        close_out(&t);
}

static void test_group(void **state) {
        Out t = open_out(FANOUT_MODE_GROUP, 0);
        size_t big = FANOUT_GROUP_MEMORY_MAX + 100000, len;
        char *chunk = malloc(big), *got;

        /* web01 and web03 print the same (web03 past the memory bound, so
         * from a spill file), db1 something else; nothing before the end. */
        for (size_t i = 0; i < big; i++)
                chunk[i] = (char) ('a' + i % 26);
        for (size_t h = 0; h < 3; h += 2)
                for (size_t at = 0; at < big; at += 4096)
                        assert_int_equal(fanout_output_data(t.o, h, FANOUT_STDOUT, (uint8_t *) chunk + at,
                                                            big - at < 4096 ? big - at : 4096), 0);
        FEED(&t, 1, FANOUT_STDOUT, "other\n");
        FEED(&t, 1, FANOUT_STDERR, "warn\n");
        for (size_t h = 0; h < 3; h++)
                assert_int_equal(fanout_output_host_end(t.o, h), 0);
        expect_stream(&t, FANOUT_STDOUT, "");
        assert_int_equal(fanout_output_finish(t.o), 0);
        got = take(&t, FANOUT_STDOUT, &len);
        assert_int_equal(len, strlen("==> web01, web03 <==\n") + big + strlen("==> db1 <==\nother\n"));
        assert_memory_equal(got, "==> web01, web03 <==\n", 21);
        assert_memory_equal(got + 21, chunk, big);
        assert_string_equal(got + 21 + big, "==> db1 <==\nother\n");
        free(got);
        expect_stream(&t, FANOUT_STDERR, "==> db1 <==\nwarn\n");
        free(chunk);
        close_out(&t);
}

static void test_classify(void **state) {
        assert_int_equal(fanout_classify(CLI_COMMAND_RUN, 0, NULL, false), FANOUT_STATE_OK);
        /* A job's own 3 is not "unreachable": no message comes with it. */
        assert_int_equal(fanout_classify(CLI_COMMAND_RUN, 3, NULL, false), FANOUT_STATE_EXITED);
        assert_int_equal(fanout_classify(CLI_COMMAND_RUN, 3, "cannot connect to h:1: connection refused", false),
                         FANOUT_STATE_UNREACHABLE);
        assert_int_equal(fanout_classify(CLI_COMMAND_RUN, 137, NULL, false), FANOUT_STATE_KILLED);
        assert_int_equal(fanout_classify(CLI_COMMAND_RUN, 137, "job x timed out", false), FANOUT_STATE_KILLED);
        assert_int_equal(fanout_classify(CLI_COMMAND_RUN, 1, "permission denied for user alice", false), FANOUT_STATE_FAILED);
        assert_int_equal(fanout_classify(CLI_COMMAND_RUN, CLI_EXIT_INTERRUPTED, NULL, true), FANOUT_STATE_INTERRUPTED);
        assert_int_equal(fanout_classify(CLI_COMMAND_WAIT, 2, NULL, false), FANOUT_STATE_EXITED);
        assert_int_equal(fanout_classify(CLI_COMMAND_STATUS, 0, NULL, false), FANOUT_STATE_OK);
        assert_int_equal(fanout_classify(CLI_COMMAND_STATUS, 0, "warning: x", false), FANOUT_STATE_OK);
        assert_int_equal(fanout_classify(CLI_COMMAND_STOP, 1, "job x not found", false), FANOUT_STATE_FAILED);
        assert_int_equal(fanout_classify(CLI_COMMAND_LIST, 3, "x did not answer", false), FANOUT_STATE_UNREACHABLE);
}

static void test_exit_code(void **state) {
        FanoutResult r[3] = { { .state = FANOUT_STATE_OK }, { .state = FANOUT_STATE_OK }, { .state = FANOUT_STATE_OK } };

        assert_int_equal(fanout_exit_code(r, 3, false), 0);
        assert_int_equal(fanout_exit_code(r, 0, false), 0);
        r[1].state = FANOUT_STATE_EXITED;
        assert_int_equal(fanout_exit_code(r, 3, false), 1);
        r[2].state = FANOUT_STATE_UNREACHABLE;
        assert_int_equal(fanout_exit_code(r, 3, false), 3);
        r[1].state = FANOUT_STATE_FAILED;
        assert_int_equal(fanout_exit_code(r, 3, false), 3);
        assert_int_equal(fanout_exit_code(r, 3, true), 130);
        r[2].state = FANOUT_STATE_SKIPPED;
        assert_int_equal(fanout_exit_code(r, 3, false), 1);
}

static void test_summary(void **state) {
        FanoutResult r[3] = {
                { .state = FANOUT_STATE_OK, .code = 0, .duration_usec = 1500000, .job_id = (char *) "j1" },
                { .state = FANOUT_STATE_KILLED, .code = 137, .duration_usec = 2000 },
                { .state = FANOUT_STATE_UNREACHABLE, .code = 3, .error = (char *) "cannot connect\x1b[2J", .duration_usec = 0 },
        };
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        fanout_summary_text(f, names, r, 3);
        fclose(f);
        assert_string_equal(buf, "HOST   STATE        CODE          TIME  ERROR\n"
                                 "web01  ok           0           1.500s\n"
                                 "db1    killed       SIGKILL     0.002s\n"
                                 "web03  unreachable  -           0.000s  cannot connect?[2J\n");
        free(buf);
        f = open_memstream(&buf, &len);
        fanout_summary_json(f, names, r, 3);
        fclose(f);
        assert_string_equal(buf, "{\"host\":\"web01\",\"state\":\"ok\",\"exit_code\":0,\"job_id\":\"j1\",\"duration_ms\":1500}\n"
                                 "{\"host\":\"db1\",\"state\":\"killed\",\"exit_code\":137,\"duration_ms\":2}\n"
                                 "{\"host\":\"web03\",\"state\":\"unreachable\",\"error\":\"cannot connect\\u001b[2J\",\"duration_ms\":0}\n");
        free(buf);
}

static const char *fake_env(const char *name, void *userdata) {
        const char *const *env = userdata;
        for (; *env; env += 2)
                if (strcmp(*env, name) == 0)
                        return env[1];
        return NULL;
}

static void test_runs(void **state) {
        const char *xdg[] = { "XDG_STATE_HOME", "/s", "HOME", "/h", NULL };
        const char *home[] = { "XDG_STATE_HOME", "rel", "HOME", "/h", NULL };
        const char *none[] = { NULL };
        FanoutRun run = {};
        char *p, *e = NULL;

        p = fanout_run_path(fake_env, xdg, "r1");
        assert_string_equal(p, "/s/jwctl/runs/r1");
        free(p);
        p = fanout_run_path(fake_env, home, "r1");
        assert_string_equal(p, "/h/.local/state/jwctl/runs/r1");
        free(p);
        assert_null(fanout_run_path(fake_env, none, "r1"));

        assert_int_equal(fanout_run_parse("web01 id-1\n# c\n\n[::1]:7 id-2\n", "f", &run, &e), 0);
        assert_int_equal(run.n, 2);
        assert_string_equal(run.entries[1].host, "[::1]:7");
        assert_string_equal(run.entries[1].job_id, "id-2");
        fanout_run_done(&run);
        assert_int_equal(fanout_run_parse("web01 id-1\nlonely\n", "f", &run, &e), -EINVAL);
        assert_string_equal(e, "f:2: expected 'HOST JOB-ID'");
        free(e);
}

static void test_runs_file(void **state) {
        char dir[] = "/tmp/test-fanout-runs.XXXXXX";
        const char *hosts[] = { "a", "b", "c" }, *ids[] = { "1", NULL, "3" };
        FanoutRun run = {};
        char *e = NULL;

        assert_non_null(mkdtemp(dir));
        setenv("XDG_STATE_HOME", dir, 1);
        assert_int_equal(fanout_run_save("r", hosts, ids, 3, &e), 0);
        assert_int_equal(fanout_run_load("r", &run, &e), 0);
        /* Hosts without a job are left out. */
        assert_int_equal(run.n, 2);
        assert_string_equal(run.entries[1].host, "c");
        fanout_run_done(&run);
        assert_int_equal(fanout_run_load("nope", &run, &e), -EINVAL);
        assert_non_null(strstr(e, "no saved run @nope"));
        free(e);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

/* Each host's HTTP/2 window: 4 MiB (one jwctl's) for up to 16 hosts at
 * once, then 64 MiB shared, never under 1 MiB. */
static void test_stream_window(void **state) {
        const uint32_t MiB = 1024 * 1024;

        assert_int_equal(cli_fanout_stream_window(0), 4 * MiB);
        assert_int_equal(cli_fanout_stream_window(1), 4 * MiB);
        assert_int_equal(cli_fanout_stream_window(16), 4 * MiB);
        assert_int_equal(cli_fanout_stream_window(20), 64 * MiB / 20);
        assert_int_equal(cli_fanout_stream_window(64), 1 * MiB);
        assert_int_equal(cli_fanout_stream_window(1000), 1 * MiB);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_prefix),   cmocka_unit_test(test_prefix_color_and_long),
                cmocka_unit_test(test_raw),      cmocka_unit_test(test_json),
                cmocka_unit_test(test_group),    cmocka_unit_test(test_classify),
                cmocka_unit_test(test_exit_code), cmocka_unit_test(test_summary),
                cmocka_unit_test(test_runs),     cmocka_unit_test(test_runs_file),
                cmocka_unit_test(test_stream_window),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
