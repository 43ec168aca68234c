/* SPDX-License-Identifier: MIT */
/* jwctl's signal names (src/cli/signame.c): names in any case, with or
 * without SIG, aliases, real-time signals, numbers; everything else refused. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <cmocka.h>

#include "cli/signame.h"

static int parsed(const char *s) {
        int sig = -1;
        if (cli_signal_parse(s, &sig) < 0)
                fail_msg("'%s' was refused", s);
        return sig;
}

static void refused(const char *s) {
        int sig = -1;
        assert_int_equal(cli_signal_parse(s, &sig), -EINVAL);
        assert_int_equal(sig, -1); /* untouched */
}

static void test_names(void **state) {
        assert_int_equal(parsed("TERM"), 15);
        assert_int_equal(parsed("SIGTERM"), 15);
        assert_int_equal(parsed("term"), 15);
        assert_int_equal(parsed("sigTerm"), 15);
        assert_int_equal(parsed("KILL"), 9);
        assert_int_equal(parsed("HUP"), 1);
        assert_int_equal(parsed("INT"), 2);
        assert_int_equal(parsed("QUIT"), 3);
        assert_int_equal(parsed("USR1"), 10);
        assert_int_equal(parsed("usr2"), 12);
        assert_int_equal(parsed("STOP"), 19);
        assert_int_equal(parsed("CONT"), 18);
        assert_int_equal(parsed("WINCH"), 28);
        assert_int_equal(parsed("SYS"), 31);
        /* the aliases kill(1) takes */
        assert_int_equal(parsed("IOT"), SIGABRT);
        assert_int_equal(parsed("CLD"), SIGCHLD);
        assert_int_equal(parsed("SIGPOLL"), SIGIO);
}

static void test_realtime(void **state) {
        assert_int_equal(parsed("RTMIN"), SIGRTMIN);
        assert_int_equal(parsed("SIGRTMIN+2"), SIGRTMIN + 2);
        assert_int_equal(parsed("rtmin+0"), SIGRTMIN);
        assert_int_equal(parsed("RTMAX"), SIGRTMAX);
        assert_int_equal(parsed("RTMAX-1"), SIGRTMAX - 1);
        assert_int_equal(parsed("RTMIN+30"), SIGRTMIN + 30); /* = RTMAX with glibc */
        refused("RTMIN+31");
        refused("RTMIN-1");
        refused("RTMAX+1");
        refused("RTMIN+");
        refused("RTMIN+x");
        refused("RTMINUTE");
}

static void test_numbers(void **state) {
        assert_int_equal(parsed("1"), 1);
        assert_int_equal(parsed("15"), 15);
        assert_int_equal(parsed("64"), 64);
        refused("0");
        refused("65");
        refused("-9");
        refused("+9");
        refused("9x");
        refused("99999999999999999999999");
}

static void test_refused(void **state) {
        refused("");
        refused("SIG");
        refused("FOO");
        refused("SIGSIGTERM");
        refused("TERM ");
        refused(" TERM");
        refused("USR3");
        assert_int_equal(cli_signal_parse(NULL, &(int) { 0 }), -EINVAL);
}

/* kill -l's names: every number from 1 to 64 but the two the C library
 * keeps has one, and it parses back to the same number. */
static void test_names_round_trip(void **state) {
        char buf[SIGNAL_NAME_MAX];
        unsigned named = 0;

        for (int sig = 1; sig <= CLI_SIGNAL_MAX; sig++) {
                const char *n = signal_abbrev(sig, buf);
                if (!n) {
                        assert_true(sig >= 32 && sig < SIGRTMIN);
                        continue;
                }
                named++;
                assert_int_equal(parsed(n), sig);
        }
        assert_int_equal(named, CLI_SIGNAL_MAX - (SIGRTMIN - 32));
        assert_string_equal(signal_abbrev(15, buf), "TERM");
        assert_string_equal(signal_abbrev(SIGRTMIN, buf), "RTMIN");
        assert_string_equal(signal_abbrev(SIGRTMIN + 15, buf), "RTMIN+15");
        assert_string_equal(signal_abbrev(SIGRTMIN + 16, buf), "RTMAX-14");
        assert_string_equal(signal_abbrev(SIGRTMAX, buf), "RTMAX");
        assert_null(signal_abbrev(0, buf));
        assert_null(signal_abbrev(65, buf));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_realtime),
                cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_names_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
