/* SPDX-License-Identifier: MIT */
/* jwctl's reconnecting followers (src/cli/reconnect.c): the backoff schedule
 * and which failures are worth a new connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/reconnect.h"

/* With the lowest and the highest draw, the delays are the schedule's
 * bounds: 3/4 of the base and the base, the base doubling from 100 ms and
 * never above 2 s. */
static void test_backoff_schedule(void **state) {
        static const uint64_t base_ms[] = { 100, 200, 400, 800, 1600, 2000, 2000, 2000 };
        CliBackoff lo = {}, hi = {};

        for (size_t i = 0; i < sizeof base_ms / sizeof base_ms[0]; i++) {
                uint64_t base = base_ms[i] * 1000;

                assert_int_equal(cli_backoff_next(&lo, 0), base - base / 4);
                /* random % (span + 1) == span: the top of the range */
                assert_int_equal(cli_backoff_next(&hi, (uint32_t) (base / 4)), base);
        }
        assert_int_equal(lo.attempt, 8);
}

/* Every draw stays in [3/4 base, base], also after many attempts (no
 * overflow of the doubling), and the draws spread over the range. */
static void test_backoff_jitter_bounds(void **state) {
        CliBackoff b = {};
        uint64_t min = UINT64_MAX, max = 0;

        for (unsigned i = 0; i < 10000; i++) {
                uint32_t r = i * 2654435761u;
                uint64_t d = cli_backoff_next(&b, r);

                assert_true(d >= CLI_BACKOFF_MAX_USEC * 3 / 4 || i < 5);
                assert_true(d <= CLI_BACKOFF_MAX_USEC);
                assert_true(d >= CLI_BACKOFF_FIRST_USEC * 3 / 4);
                if (i >= 5) {
                        min = d < min ? d : min;
                        max = d > max ? d : max;
                }
        }
        /* the jitter is used: not every follower waits the same */
        assert_true(max - min > CLI_BACKOFF_MAX_USEC / 8);

        b.attempt = UINT32_MAX;
        assert_true(cli_backoff_next(&b, UINT32_MAX) <= CLI_BACKOFF_MAX_USEC);
        assert_int_equal(b.attempt, UINT32_MAX);
}

static void test_backoff_reset(void **state) {
        CliBackoff b = {};

        for (int i = 0; i < 6; i++)
                (void) cli_backoff_next(&b, 0);
        cli_backoff_reset(&b);
        assert_int_equal(cli_backoff_next(&b, 0), CLI_BACKOFF_FIRST_USEC * 3 / 4);
}

/* A stream's end: only UNAVAILABLE without a TLS refusal is the transport;
 * the server's answers and the user's Ctrl-C are final. */
static void test_status_classification(void **state) {
        static const grpc_status_code final[] = {
                GRPC_STATUS_OK, GRPC_STATUS_CANCELLED, GRPC_STATUS_UNKNOWN, GRPC_STATUS_INVALID_ARGUMENT,
                GRPC_STATUS_DEADLINE_EXCEEDED, GRPC_STATUS_NOT_FOUND, GRPC_STATUS_ALREADY_EXISTS,
                GRPC_STATUS_PERMISSION_DENIED, GRPC_STATUS_RESOURCE_EXHAUSTED, GRPC_STATUS_FAILED_PRECONDITION,
                GRPC_STATUS_ABORTED, GRPC_STATUS_OUT_OF_RANGE, GRPC_STATUS_UNIMPLEMENTED, GRPC_STATUS_INTERNAL,
                GRPC_STATUS_DATA_LOSS, GRPC_STATUS_UNAUTHENTICATED,
        };

        assert_int_equal(cli_failure_of_status(GRPC_STATUS_UNAVAILABLE, false), CLI_FAILURE_TRANSPORT);
        /* the server closed TLS refusing our certificate: UNAVAILABLE too, but final */
        assert_int_equal(cli_failure_of_status(GRPC_STATUS_UNAVAILABLE, true), CLI_FAILURE_FINAL);
        for (size_t i = 0; i < sizeof final / sizeof final[0]; i++) {
                assert_int_equal(cli_failure_of_status(final[i], false), CLI_FAILURE_FINAL);
                assert_int_equal(cli_failure_of_status(final[i], true), CLI_FAILURE_FINAL);
        }
}

/* A failed connect: the daemon not (yet) there, or going away during the
 * handshake, is the transport; a certificate refused either way, and
 * failures before the network (TLS_CLIENT_OK), are final. */
static void test_connect_classification(void **state) {
        assert_int_equal(cli_failure_of_connect(TLS_CLIENT_RESOLVE), CLI_FAILURE_TRANSPORT);
        assert_int_equal(cli_failure_of_connect(TLS_CLIENT_CONNECT_REFUSED), CLI_FAILURE_TRANSPORT);
        assert_int_equal(cli_failure_of_connect(TLS_CLIENT_CONNECT_TIMEOUT), CLI_FAILURE_TRANSPORT);
        assert_int_equal(cli_failure_of_connect(TLS_CLIENT_CONNECT_OTHER), CLI_FAILURE_TRANSPORT);
        assert_int_equal(cli_failure_of_connect(TLS_CLIENT_HANDSHAKE), CLI_FAILURE_TRANSPORT);
        assert_int_equal(cli_failure_of_connect(TLS_CLIENT_SERVER_CERT), CLI_FAILURE_FINAL);
        assert_int_equal(cli_failure_of_connect(TLS_CLIENT_REJECTED_BY_SERVER), CLI_FAILURE_FINAL);
        assert_int_equal(cli_failure_of_connect(TLS_CLIENT_OK), CLI_FAILURE_FINAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backoff_schedule),
                cmocka_unit_test(test_backoff_jitter_bounds),
                cmocka_unit_test(test_backoff_reset),
                cmocka_unit_test(test_status_classification),
                cmocka_unit_test(test_connect_classification),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
