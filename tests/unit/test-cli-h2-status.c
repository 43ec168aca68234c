/* SPDX-License-Identifier: MIT */
/* A gRPC call's status from its HTTP/2 answer (src/cli/h2-status.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/h2-status.h"

static void header(H2Status *st, const char *name, const char *value) {
        assert_int_equal(h2_status_header(st, name, strlen(name), value, strlen(value)), 0);
}

static void test_trailers_win(void **state) {
        H2Status st = {};

        header(&st, ":status", "200");
        header(&st, "content-type", "application/grpc");
        header(&st, "grpc-status", "5");
        header(&st, "grpc-message", "job%20abc%3A not found%");
        h2_status_finish(&st, 0);
        assert_int_equal(st.code, GRPC_STATUS_NOT_FOUND);
        assert_string_equal(st.message, "job abc: not found%"); /* a bad escape stays as sent */
        h2_status_done(&st);
}

static void test_trailers_only_and_reset_after_status(void **state) {
        H2Status st = {};

        /* trailers-only: one HEADERS with :status and grpc-status; a reset after it does not change it */
        header(&st, ":status", "200");
        header(&st, "grpc-status", "0");
        h2_status_finish(&st, 0x8);
        assert_int_equal(st.code, GRPC_STATUS_OK);
        assert_null(st.message);
        h2_status_done(&st);
}

static void test_http_status_mapping(void **state) {
        static const struct { const char *http; grpc_status_code code; } cases[] = {
                { "400", GRPC_STATUS_INTERNAL },       { "401", GRPC_STATUS_UNAUTHENTICATED },
                { "403", GRPC_STATUS_PERMISSION_DENIED }, { "404", GRPC_STATUS_UNIMPLEMENTED },
                { "429", GRPC_STATUS_UNAVAILABLE },    { "502", GRPC_STATUS_UNAVAILABLE },
                { "503", GRPC_STATUS_UNAVAILABLE },    { "504", GRPC_STATUS_UNAVAILABLE },
                { "500", GRPC_STATUS_UNKNOWN },        { "302", GRPC_STATUS_UNKNOWN },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                H2Status st = {};
                header(&st, ":status", cases[i].http);
                h2_status_finish(&st, 0);
                assert_int_equal(st.code, cases[i].code);
                assert_non_null(strstr(st.message, cases[i].http));
                h2_status_done(&st);
        }
}

static void test_reset_codes(void **state) {
        static const struct { uint32_t rst; grpc_status_code code; } cases[] = {
                { 0x7, GRPC_STATUS_UNAVAILABLE }, { 0x8, GRPC_STATUS_CANCELLED },
                { 0xb, GRPC_STATUS_RESOURCE_EXHAUSTED }, { 0xc, GRPC_STATUS_PERMISSION_DENIED },
                { 0x2, GRPC_STATUS_INTERNAL }, { 0x1, GRPC_STATUS_INTERNAL },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                H2Status st = {};
                header(&st, ":status", "200");
                h2_status_finish(&st, cases[i].rst);
                assert_int_equal(st.code, cases[i].code);
                h2_status_done(&st);
        }
}

static void test_no_status(void **state) {
        H2Status st = {};

        header(&st, ":status", "200");
        h2_status_finish(&st, 0);
        assert_int_equal(st.code, GRPC_STATUS_UNKNOWN);
        assert_non_null(st.message);
        h2_status_done(&st);

        /* a grpc-status that is not a number, or out of range, is UNKNOWN */
        st = (H2Status) {};
        header(&st, "grpc-status", "17");
        h2_status_finish(&st, 0);
        assert_int_equal(st.code, GRPC_STATUS_UNKNOWN);
        h2_status_done(&st);
        st = (H2Status) {};
        header(&st, "grpc-status", "1x");
        h2_status_finish(&st, 0);
        assert_int_equal(st.code, GRPC_STATUS_UNKNOWN);
        h2_status_done(&st);
}

static void test_final_status_is_kept(void **state) {
        /* a call we ended ourselves (deadline, cancel) keeps that status */
        H2Status st = { .code = GRPC_STATUS_DEADLINE_EXCEEDED, .code_set = true };

        header(&st, "grpc-status", "0");
        h2_status_finish(&st, 0);
        assert_int_equal(st.code, GRPC_STATUS_DEADLINE_EXCEEDED);
        h2_status_done(&st);
}

static void test_timeout_header(void **state) {
        char buf[32];

        h2_timeout_header(1, buf, sizeof buf);
        assert_string_equal(buf, "1u");
        h2_timeout_header(10000000, buf, sizeof buf); /* 10 s: 8 digits of microseconds */
        assert_string_equal(buf, "10000000u");
        h2_timeout_header(100000000, buf, sizeof buf); /* 100 s: too many digits, milliseconds */
        assert_string_equal(buf, "100000m");
        h2_timeout_header(100000001, buf, sizeof buf); /* rounded up, never early */
        assert_string_equal(buf, "100001m");
        h2_timeout_header(UINT64_MAX, buf, sizeof buf);
        assert_true(strlen(buf) <= 9);
        assert_int_equal(buf[strlen(buf) - 1], 'H');
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_trailers_win),
                cmocka_unit_test(test_trailers_only_and_reset_after_status),
                cmocka_unit_test(test_http_status_mapping),
                cmocka_unit_test(test_reset_codes),
                cmocka_unit_test(test_no_status),
                cmocka_unit_test(test_final_status_is_kept),
                cmocka_unit_test(test_timeout_header),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
