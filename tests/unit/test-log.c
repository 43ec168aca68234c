/* SPDX-License-Identifier: MIT */
/*
 * The daemon's log formatting: the stderr line (level prefix, terminal
 * words, one line per message, truncation, %m), the journal entry (the
 * structured fields in order), level filtering and the rate limit, as bytes
 * read back from a pipe put in place of stderr.
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
#include <unistd.h>
#include <cmocka.h>

#include <grpc/support/log.h>

#include "daemon/grpc-log.h"
#include "daemon/log.h"

static size_t fmt(char *buf, size_t size, bool tty, int level, const char *f, ...) _printf_(5, 6);
static size_t fmt(char *buf, size_t size, bool tty, int level, const char *f, ...) {
        va_list ap;
        size_t n;

        va_start(ap, f);
        n = log_format_stderr(buf, size, tty, level, f, ap);
        va_end(ap);
        return n;
}

static void test_stderr_not_a_terminal(void **state) {
        char buf[256];

        assert_int_equal(fmt(buf, sizeof(buf), false, LOG_INFO, "job %s started", "ab12"), 20);
        assert_string_equal(buf, "<6>job ab12 started\n");
        fmt(buf, sizeof(buf), false, LOG_ERR, "x");
        assert_string_equal(buf, "<3>x\n");
}

static void test_stderr_terminal(void **state) {
        char buf[256];

        fmt(buf, sizeof(buf), true, LOG_ERR, "cannot open %s", "/etc/x");
        assert_string_equal(buf, "jobworkerd: error: cannot open /etc/x\n");
        fmt(buf, sizeof(buf), true, LOG_WARNING, "w");
        assert_string_equal(buf, "jobworkerd: warning: w\n");
        fmt(buf, sizeof(buf), true, LOG_NOTICE, "ready");
        assert_string_equal(buf, "jobworkerd: ready\n");
}

static void test_stderr_one_line(void **state) {
        char buf[256];

        /* A client-chosen string cannot forge a second log line. */
        fmt(buf, sizeof(buf), false, LOG_NOTICE, "denied: %s", "mallory\n<3>fake\rline");
        assert_string_equal(buf, "<5>denied: mallory <3>fake line\n");
}

/* Client text (an argv, a CN) cannot put control bytes or broken UTF-8 in
 * the daemon's log: each such byte is shown as \xNN. */
static void test_stderr_escapes_control_bytes(void **state) {
        char buf[256];

        fmt(buf, sizeof(buf), false, LOG_INFO, "job started: %s", "printf \x1b[31mred");
        assert_string_equal(buf, "<6>job started: printf \\x1b[31mred\n");
        /* Other C0 bytes, tab included, and DEL. */
        fmt(buf, sizeof(buf), false, LOG_INFO, "%s", "a\x01" "b\x07" "c\td\x7f" "e");
        assert_string_equal(buf, "<6>a\\x01b\\x07c\\x09d\\x7fe\n");
        /* C1 controls are valid UTF-8 but terminals may act on them. */
        fmt(buf, sizeof(buf), false, LOG_INFO, "%s", "x\xc2\x9by");
        assert_string_equal(buf, "<6>x\\xc2\\x9by\n");
        /* On a terminal too. */
        fmt(buf, sizeof(buf), true, LOG_ERR, "%s", "\x1b]0;title\x07");
        assert_string_equal(buf, "jobworkerd: error: \\x1b]0;title\\x07\n");
}

static void test_stderr_escapes_invalid_utf8(void **state) {
        char buf[256];

        /* A stray continuation byte, a lone lead byte, an overlong '/', a surrogate. */
        fmt(buf, sizeof(buf), false, LOG_INFO, "%s", "a\x80" "b\xc3(" "c\xc0\xaf" "d\xed\xa0\x80" "e\xff");
        assert_string_equal(buf, "<6>a\\x80b\\xc3(c\\xc0\\xafd\\xed\\xa0\\x80e\\xff\n");
        /* A lead byte cut off at the end of the string. */
        fmt(buf, sizeof(buf), false, LOG_INFO, "%s", "z\xe6\x97");
        assert_string_equal(buf, "<6>z\\xe6\\x97\n");
}

static void test_stderr_keeps_valid_text(void **state) {
        char buf[256];

        /* Valid multibyte names stay as they are. */
        fmt(buf, sizeof(buf), false, LOG_NOTICE, "permission denied: %s", "zoë-日本-😀");
        assert_string_equal(buf, "<5>permission denied: zoë-日本-😀\n");
        /* What is already escaped is not escaped again: a backslash stays one. */
        fmt(buf, sizeof(buf), false, LOG_INFO, "%s", "C:\\dir \\x1b");
        assert_string_equal(buf, "<6>C:\\dir \\x1b\n");
}

static void test_stderr_escape_not_cut(void **state) {
        char buf[10];

        /* "<6>ab" + "\x1b" does not fit in 10 - 1 (newline) - 1 (NUL): the
         * escape is left out whole, never cut to a bare "\x". */
        assert_int_equal(fmt(buf, sizeof(buf), false, LOG_INFO, "ab\x1b" "cd"), 6);
        assert_string_equal(buf, "<6>ab\n");
        /* Nor is a multibyte character cut. */
        assert_int_equal(fmt(buf, sizeof(buf), false, LOG_INFO, "abcd日"), 8);
        assert_string_equal(buf, "<6>abcd\n");
}

static void test_stderr_truncated(void **state) {
        char buf[16], big[100];

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(fmt(buf, sizeof(buf), false, LOG_INFO, "%s", big), 15);
        assert_string_equal(buf, "<6>aaaaaaaaaaa\n");
        /* The smallest buffer still holds a newline. */
        assert_int_equal(fmt(buf, 2, false, LOG_INFO, "%s", big), 1);
        assert_string_equal(buf, "\n");
}

static void test_stderr_errno(void **state) {
        char buf[256];

        errno = ENOENT;
        fmt(buf, sizeof(buf), false, LOG_ERR, "open: %m");
        assert_string_equal(buf, "<3>open: No such file or directory\n");
        assert_int_equal(errno, ENOENT);
}

static void test_journal_entry(void **state) {
        const char *fields[] = { "JOB_ID=ab12", "JOB_OWNER=alice", LOG_MID_JOB_STARTED, NULL };
        LogJournalEntry e;

        assert_int_equal(log_journal_entry(&e, LOG_NOTICE, fields, "job ab12 started"), 0);
        assert_int_equal(e.n_iov, 6);
        const char *want[] = {
                "MESSAGE=job ab12 started", "PRIORITY=5", "SYSLOG_IDENTIFIER=jobworkerd",
                "JOB_ID=ab12", "JOB_OWNER=alice", LOG_MID_JOB_STARTED,
        };
        for (size_t i = 0; i < e.n_iov; i++) {
                assert_int_equal(e.iov[i].iov_len, strlen(want[i]));
                assert_memory_equal(e.iov[i].iov_base, want[i], strlen(want[i]));
        }
        log_journal_entry_done(&e);
        assert_null(e.message);
        log_journal_entry_done(&e); /* twice is fine */
}

static void test_journal_entry_escaped(void **state) {
        char client[] = "CLIENT=ev\x1b[2Jil\xff", peer[] = "PEER_ADDR=127.0.0.1";
        const char *fields[] = { client, peer, NULL };
        LogJournalEntry e;

        assert_int_equal(log_journal_entry(&e, LOG_NOTICE, fields, "denied: ev\x1b[2Jil\xff\nline"), 0);
        assert_int_equal(e.n_iov, 5);
        const char *want[] = {
                "MESSAGE=denied: ev\\x1b[2Jil\\xff line", "PRIORITY=5", "SYSLOG_IDENTIFIER=jobworkerd",
                "CLIENT=ev\\x1b[2Jil\\xff", "PEER_ADDR=127.0.0.1",
        };
        for (size_t i = 0; i < e.n_iov; i++) {
                assert_int_equal(e.iov[i].iov_len, strlen(want[i]));
                assert_memory_equal(e.iov[i].iov_base, want[i], strlen(want[i]));
        }
        log_journal_entry_done(&e);
        log_journal_entry_done(&e);
}

static void test_journal_entry_many_fields(void **state) {
        const char *fields[40];
        LogJournalEntry e;

        for (size_t i = 0; i < 39; i++)
                fields[i] = "CLIENT=x";
        fields[39] = NULL;
        assert_int_equal(log_journal_entry(&e, LOG_INFO, NULL, "m"), 0);
        assert_int_equal(e.n_iov, 3);
        log_journal_entry_done(&e);
        /* Fields beyond what the entry holds are dropped, not overflowed. */
        assert_int_equal(log_journal_entry(&e, LOG_INFO, fields, "m"), 0);
        assert_int_equal(e.n_iov, ELEMENTSOF(e.iov));
        log_journal_entry_done(&e);
}

static void test_level_names(void **state) {
        assert_int_equal(log_level_from_string("err"), LOG_ERR);
        assert_int_equal(log_level_from_string("error"), LOG_ERR);
        assert_int_equal(log_level_from_string("WARN"), LOG_WARNING);
        assert_int_equal(log_level_from_string("notice"), LOG_NOTICE);
        assert_int_equal(log_level_from_string("7"), LOG_DEBUG);
        assert_int_equal(log_level_from_string("8"), -EINVAL);
        assert_int_equal(log_level_from_string("loud"), -EINVAL);
        assert_int_equal(log_level_from_string(NULL), -EINVAL);
        assert_string_equal(log_level_to_string(LOG_INFO), "info");
        assert_string_equal(log_level_to_string(42), "unknown");
}

/* stderr replaced by a pipe (not a terminal): what log_fields() writes. */
typedef struct Capture {
        int saved_stderr;
        int read_fd;
} Capture;

static void capture_begin(Capture *c) {
        int p[2];

        assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        c->saved_stderr = dup(STDERR_FILENO);
        assert_true(c->saved_stderr >= 0);
        assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
        close(p[1]);
        c->read_fd = p[0];
}

/* Everything written so far (the writes are synchronous). */
static char *capture_end(Capture *c) {
        static char buf[8192];
        ssize_t n;

        assert_int_equal(dup2(c->saved_stderr, STDERR_FILENO), STDERR_FILENO);
        close(c->saved_stderr);
        n = read(c->read_fd, buf, sizeof(buf) - 1);
        buf[n < 0 ? 0 : n] = 0;
        close(c->read_fd);
        return buf;
}

static void test_log_fields_to_stderr(void **state) {
        const char *fields[] = { "CLIENT=alice", NULL };
        Capture c;

        log_set_max_level(LOG_INFO);
        capture_begin(&c);
        log_fields(LOG_NOTICE, fields, "permission denied: %s may not %s", "alice", "stop");
        log_debug("not shown at level info");
        log_info("shown");
        assert_string_equal(capture_end(&c), "<5>permission denied: alice may not stop\n<6>shown\n");

        log_set_max_level(LOG_DEBUG);
        capture_begin(&c);
        log_debug("now shown");
        assert_string_equal(capture_end(&c), "<7>now shown\n");
        log_set_max_level(LOG_INFO);
}

static void test_log_fields_no_raw_escape(void **state) {
        Capture c;
        char *out;

        log_set_max_level(LOG_INFO);
        capture_begin(&c);
        log_info("job ab12 started by %s: %s", "alice", "printf '\x1b[31mred'");
        out = capture_end(&c);
        assert_null(strchr(out, '\x1b'));
        assert_string_equal(out, "<6>job ab12 started by alice: printf '\\x1b[31mred'\n");
}

static void test_ratelimited(void **state) {
        LogRateLimit rl = LOG_RATELIMIT_INIT(2, 3600ull * 1000000);
        Capture c;

        capture_begin(&c);
        for (int i = 0; i < 5; i++)
                log_ratelimited(&rl, LOG_NOTICE, NULL, "refused %d", i);
        assert_string_equal(capture_end(&c), "<5>refused 0\n<5>refused 1\n");
        assert_int_equal(rl.suppressed, 3);

        /* A new interval (here: every line) reports what was held back, once. */
        rl.interval_usec = 0;
        capture_begin(&c);
        log_ratelimited(&rl, LOG_NOTICE, NULL, "refused %d", 5);
        log_ratelimited(&rl, LOG_NOTICE, NULL, "refused %d", 6);
        assert_string_equal(capture_end(&c), "<4>3 similar messages suppressed\n<5>refused 5\n<5>refused 6\n");
}

/* gRPC's own messages: one escaped line of ours each, whatever bytes of a
 * peer's they quote (before, gRPC wrote them to stderr as they were: the
 * line feed below made a second line, a fake emergency). */
static void test_grpc_messages(void **state) {
        Capture c;
        char *out;

        log_set_max_level(LOG_INFO);
        grpc_log_install();
        gpr_log_verbosity_init();                    /* as grpc_init() does */
        gpr_set_log_verbosity(GPR_LOG_SEVERITY_DEBUG); /* gRPC hands over all: our level filters */
        capture_begin(&c);
        gpr_log(GPR_ERROR, "bad header from peer: %s", "x\n<0>forged \x1b[2J");
        gpr_log(GPR_INFO, "%s", "informational");
        gpr_log(GPR_DEBUG, "%s", "not at level info");
        out = capture_end(&c);
        assert_string_equal(out, "<4>gRPC: bad header from peer: x <0>forged \\x1b[2J\n<6>gRPC: informational\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stderr_not_a_terminal),
                cmocka_unit_test(test_stderr_terminal),
                cmocka_unit_test(test_stderr_one_line),
                cmocka_unit_test(test_stderr_escapes_control_bytes),
                cmocka_unit_test(test_stderr_escapes_invalid_utf8),
                cmocka_unit_test(test_stderr_keeps_valid_text),
                cmocka_unit_test(test_stderr_escape_not_cut),
                cmocka_unit_test(test_stderr_truncated),
                cmocka_unit_test(test_stderr_errno),
                cmocka_unit_test(test_journal_entry),
                cmocka_unit_test(test_journal_entry_escaped),
                cmocka_unit_test(test_journal_entry_many_fields),
                cmocka_unit_test(test_level_names),
                cmocka_unit_test(test_log_fields_to_stderr),
                cmocka_unit_test(test_log_fields_no_raw_escape),
                cmocka_unit_test(test_ratelimited),
                cmocka_unit_test(test_grpc_messages),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
