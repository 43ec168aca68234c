/* SPDX-License-Identifier: MIT */
/*
 * sd_notify from the daemon, read from a test NOTIFY_SOCKET: the exact
 * datagrams of READY, STATUS, RELOADING, STOPPING and WATCHDOG, nothing
 * without NOTIFY_SOCKET, and the STATUS= rate limit (at most one a second,
 * none when the text did not change). The notifier's timers run on a real
 * engine, driven here with engine_run_once().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/notify.h"
#include "shared/macro.h"

typedef struct Fixture {
        char dir[64];
        char socket_path[96];
        int fd;                        /* the test's NOTIFY_SOCKET, non-blocking */
        Engine *engine;
        char status[64];               /* what the status callback says */
        unsigned status_calls;
} Fixture;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ull + (uint64_t) ts.tv_nsec / 1000u;
}

static void status_text(void *userdata, char *buf, size_t size) {
        Fixture *f = userdata;

        f->status_calls++;
        snprintf(buf, size, "%s", f->status);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        EngineConfig ec = { 0 };

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/jw-test-notify-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->socket_path, sizeof(f->socket_path), "%s/notify", f->dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->socket_path);
        f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(f->fd >= 0);
        assert_int_equal(bind(f->fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(setenv("NOTIFY_SOCKET", f->socket_path, 1), 0);
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");

        ec.state_dir = f->dir;
        assert_int_equal(engine_new(&f->engine, &ec), 0);
        snprintf(f->status, sizeof(f->status), "0 running, 0 finished");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        engine_free(f->engine);
        close(f->fd);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        free(f);
        return 0;
}

/* The next datagram, running the engine meanwhile; NULL if none came
 * within timeout_usec. Sends are synchronous, so timeout 0 tells whether
 * one was sent already. */
static const char *next_message(Fixture *f, uint64_t timeout_usec) {
        static char buf[1024];
        uint64_t deadline = now_usec() + timeout_usec;

        for (;;) {
                ssize_t n = recv(f->fd, buf, sizeof(buf) - 1, 0);
                uint64_t now;

                if (n >= 0) {
                        buf[n] = 0;
                        return buf;
                }
                assert_int_equal(errno, EAGAIN);
                now = now_usec();
                if (now >= deadline)
                        return NULL;
                assert_int_equal(engine_run_once(f->engine, MIN(deadline - now, 50000u)), 0);
        }
}

static void test_ready_reload_stop(void **state) {
        Fixture *f = *state;
        Notifier *n = NULL;
        const char *m;
        unsigned long long mono;
        char rest[128];

        assert_int_equal(notifier_new(&n, f->engine, status_text, f), 0);
        assert_null(next_message(f, 0));

        notifier_ready(n);
        assert_string_equal(next_message(f, 0), "READY=1\nSTATUS=0 running, 0 finished");

        notifier_reloading(n);
        m = next_message(f, 0);
        assert_non_null(m);
        assert_int_equal(sscanf(m, "RELOADING=1\nMONOTONIC_USEC=%llu\n%127[^\n]", &mono, rest), 2);
        assert_string_equal(rest, "STATUS=Reloading policy and certificates");
        /* CLOCK_MONOTONIC, as systemd wants it. */
        assert_true(mono <= now_usec() && mono + 10000000ull > now_usec());

        snprintf(f->status, sizeof(f->status), "1 running, 0 finished");
        notifier_reloaded(n);
        assert_string_equal(next_message(f, 0), "READY=1\nSTATUS=1 running, 0 finished");

        notifier_stopping(n);
        assert_string_equal(next_message(f, 0), "STOPPING=1\nSTATUS=Stopping: running jobs are being stopped");
        assert_null(next_message(f, 0));
        notifier_free(n);
}

static void test_status_rate_limit(void **state) {
        Fixture *f = *state;
        Notifier *n = NULL;
        uint64_t ready_at;

        assert_int_equal(notifier_new(&n, f->engine, status_text, f), 0);
        notifier_ready(n);
        ready_at = now_usec();
        assert_non_null(next_message(f, 0));

        /* Changes within a second of the last STATUS= wait for the timer ... */
        snprintf(f->status, sizeof(f->status), "1 running, 0 finished");
        notifier_status_changed(n);
        snprintf(f->status, sizeof(f->status), "2 running, 0 finished");
        notifier_status_changed(n);
        assert_null(next_message(f, 0));
        /* ... which sends the text as it is then, once. */
        assert_string_equal(next_message(f, 3000000), "STATUS=2 running, 0 finished");
        assert_true(now_usec() - ready_at >= 900000);

        /* A second after the last one, a change goes out at once. */
        snprintf(f->status, sizeof(f->status), "2 running, 1 finished");
        assert_null(next_message(f, 1100000));
        notifier_status_changed(n);
        assert_string_equal(next_message(f, 0), "STATUS=2 running, 1 finished");
        notifier_free(n);
}

static void test_status_unchanged_not_sent(void **state) {
        Fixture *f = *state;
        Notifier *n = NULL;
        unsigned calls;

        assert_int_equal(notifier_new(&n, f->engine, status_text, f), 0);
        notifier_ready(n);
        assert_non_null(next_message(f, 0));

        /* The timer fires and asks for the text, but it is the one sent. */
        calls = f->status_calls;
        notifier_status_changed(n);
        assert_null(next_message(f, 1500000));
        assert_int_equal(f->status_calls, calls + 1);
        notifier_free(n);
}

static void test_watchdog(void **state) {
        Fixture *f = *state;
        Notifier *n = NULL;
        char pid[32];

        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        assert_int_equal(setenv("WATCHDOG_USEC", "200000", 1), 0);
        assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
        assert_int_equal(notifier_new(&n, f->engine, status_text, f), 0);
        /* Pinged at half the interval, again and again, from the engine's timer. */
        for (int i = 0; i < 3; i++)
                assert_string_equal(next_message(f, 2000000), "WATCHDOG=1");
        notifier_free(n);
}

static void test_no_notify_socket(void **state) {
        Fixture *f = *state;
        Notifier *n = NULL;

        unsetenv("NOTIFY_SOCKET");
        assert_int_equal(notifier_new(&n, f->engine, status_text, f), 0);
        /* Told the socket now, the notifier still keeps quiet: it decided at start. */
        assert_int_equal(setenv("NOTIFY_SOCKET", f->socket_path, 1), 0);
        notifier_ready(n);
        notifier_status_changed(n);
        notifier_reloading(n);
        notifier_stopping(n);
        assert_null(next_message(f, 0));
        assert_int_equal(f->status_calls, 0);
        notifier_free(n);
        assert_null(notifier_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_ready_reload_stop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_rate_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_unchanged_not_sent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watchdog, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_notify_socket, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
