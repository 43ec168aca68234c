/* SPDX-License-Identifier: MIT */
/* jwctl's signal thread (src/cli/signals.c): what a follower waiting out a
 * lost connection relies on — a deferred signal is counted and wakes
 * cli_signals_wait() at once; without one the wait lasts its time; the
 * client is swapped and the old one handed back. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/signals.h"

static uint64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void test_wait_times_out(void **state) {
        CliSignals s = {};
        uint64_t t0;

        assert_int_equal(cli_signals_start(&s), 0);
        cli_signals_defer(&s);
        t0 = now_us();
        assert_int_equal(cli_signals_wait(&s, 50000), 0);
        assert_true(now_us() - t0 >= 50000);
        assert_int_equal(cli_signals_wait(&s, 0), 0);
        cli_signals_stop(&s);
}

static void test_signal_wakes_wait(void **state) {
        CliSignals s = {};
        uint64_t t0;

        assert_int_equal(cli_signals_start(&s), 0);
        cli_signals_defer(&s);
        t0 = now_us();
        assert_int_equal(kill(getpid(), SIGINT), 0);
        /* bounded: far longer than the signal thread needs */
        assert_int_equal(cli_signals_wait(&s, 10 * 1000000), 1);
        assert_true(now_us() - t0 < 5 * 1000000);
        assert_int_equal(cli_signals_count(&s), 1);
        /* a signal already counted answers at once, also later */
        assert_int_equal(cli_signals_wait(&s, 10 * 1000000), 1);
        cli_signals_stop(&s);
}

static void test_swap_client(void **state) {
        CliSignals s = {};
        CliClient *a = (CliClient *) (uintptr_t) 0x1000, *b = (CliClient *) (uintptr_t) 0x2000;

        assert_int_equal(cli_signals_start(&s), 0);
        cli_signals_set_client(&s, a);
        assert_ptr_equal(cli_signals_swap_client(&s, b), a);
        assert_ptr_equal(cli_signals_swap_client(&s, NULL), b);
        cli_signals_stop(&s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_wait_times_out),
                cmocka_unit_test(test_signal_wakes_wait),
                cmocka_unit_test(test_swap_client),
        };
        sigset_t set;

        /* As jwctl's main() does: only the signal thread takes these. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
