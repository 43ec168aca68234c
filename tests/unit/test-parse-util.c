/* SPDX-License-Identifier: MIT */
/* The one grammar of sizes, durations, counts and fixed-point numbers
 * (shared/parse-util.h): every unit, fractions and their rounding, overflow
 * at the exact edge, and garbage. Tables: input, expected return, value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "shared/macro.h"
#include "shared/parse-util.h"

typedef struct Case {
        const char *s;
        int r;
        uint64_t v;
} Case;

#define K 1024ULL
#define SEC 1000000ULL

static void check(const char *what, int (*parse)(const char *, uint64_t *), const Case *c, size_t n) {
        for (size_t i = 0; i < n; i++) {
                uint64_t v = 0xdeadbeefULL;
                int r = parse(c[i].s, &v);

                if (r != c[i].r || (r == 0 && v != c[i].v))
                        fail_msg("%s(\"%s\") = %d, %llu; expected %d, %llu", what, c[i].s ?: "(null)", r,
                                 (unsigned long long) v, c[i].r, (unsigned long long) c[i].v);
                if (r < 0 && v != 0xdeadbeefULL)
                        fail_msg("%s(\"%s\") wrote its result on failure", what, c[i].s);
        }
}

static void test_size(void **state) {
        static const Case cases[] = {
                /* bare numbers and B are bytes */
                { "0", 0, 0 },
                { "4096", 0, 4096 },
                { "007", 0, 7 },
                { "100B", 0, 100 },
                { "100 B", 0, 100 },
                /* every unit, every spelling, both cases of the letter */
                { "1K", 0, K },           { "1k", 0, K },           { "1Ki", 0, K },
                { "1KB", 0, K },          { "1KiB", 0, K },         { "1kiB", 0, K },
                { "1M", 0, K * K },       { "1m", 0, K * K },       { "1Mi", 0, K * K },
                { "1MB", 0, K * K },      { "1MiB", 0, K * K },
                { "1G", 0, K * K * K },   { "1g", 0, K * K * K },   { "1Gi", 0, K * K * K },
                { "1GiB", 0, K * K * K }, { "1GB", 0, K * K * K },
                { "2T", 0, 2 * K * K * K * K },                     { "2Ti", 0, 2 * K * K * K * K },
                { "2tB", 0, 2 * K * K * K * K },
                { "64 KiB", 0, 64 * K },
                { "256  M", 0, 256 * K * K },
                /* fractions: exact, then cut toward zero to a byte */
                { "1.5G", 0, 3 * K * K * K / 2 },
                { "0.5K", 0, 512 },
                { "0.1K", 0, 102 },
                { "2.5", 0, 2 },
                { "0.999999999T", 0, 1099511626676ULL },
                { "1.000000001G", 0, 1073741825ULL },
                /* the edge of 64 bits */
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "99999999999999999999999", -ERANGE, 0 },
                { "16777215.9999T", 0, 16777215ULL * K * K * K * K + 1099401676613ULL },
                { "16777216T", -ERANGE, 0 },
                { "17179869183.999999999G", 0, UINT64_MAX - 1 },
                { "17179869184G", -ERANGE, 0 },
                /* garbage */
                { NULL, -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { " ", -EINVAL, 0 },
                { "M", -EINVAL, 0 },
                { "K1", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "1K ", -EINVAL, 0 },
                { "1.", -EINVAL, 0 },
                { ".5", -EINVAL, 0 },
                { "1..5", -EINVAL, 0 },
                { "1.5.2", -EINVAL, 0 },
                { "1e3", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
                { "1iB", -EINVAL, 0 },
                { "1i", -EINVAL, 0 },
                { "1b", -EINVAL, 0 },
                { "1Kb", -EINVAL, 0 },
                { "1KI", -EINVAL, 0 },
                { "1BB", -EINVAL, 0 },
                { "1KiBB", -EINVAL, 0 },
                { "1X", -EINVAL, 0 },
                { "1MM", -EINVAL, 0 },
                { "1P", -EINVAL, 0 },
                { "1\tK", -EINVAL, 0 },
                { "1.0000000001G", -EINVAL, 0 },  /* at most 9 fraction digits */
                { "99999999999999999999999X", -EINVAL, 0 },  /* syntax before range */
        };

        check("parse_size", parse_size, cases, ELEMENTSOF(cases));
}

static void test_duration(void **state) {
        static const Case cases[] = {
                /* a bare number is seconds */
                { "0", 0, 0 },
                { "5", 0, 5 * SEC },
                { "2.5", 0, 5 * SEC / 2 },
                { "0.000001", 0, 1 },
                /* every unit */
                { "7us", 0, 7 },
                { "7ms", 0, 7000 },
                { "7s", 0, 7 * SEC },
                { "7sec", 0, 7 * SEC },
                { "7m", 0, 420 * SEC },
                { "7min", 0, 420 * SEC },
                { "7h", 0, 7 * 3600 * SEC },
                { "7d", 0, 7 * 86400 * SEC },
                { "5 s", 0, 5 * SEC },
                { "2  min", 0, 120 * SEC },
                /* fractions: exact, cut to a microsecond */
                { "1.5min", 0, 90 * SEC },
                { "0.5h", 0, 1800 * SEC },
                { "0.25d", 0, 21600 * SEC },
                { "1.5us", 0, 1 },
                { "0.0000001", 0, 0 },
                { "1.0000001", 0, SEC },
                { "1.999999999ms", 0, 1999 },
                { "0.999999999", 0, 999999 },
                /* the edge of 64 bits of microseconds */
                { "18446744073709551615us", 0, UINT64_MAX },
                { "18446744073709551616us", -ERANGE, 0 },
                { "18446744073709.551615", 0, UINT64_MAX },
                { "18446744073709.551616", -ERANGE, 0 },
                { "213503982d", 0, 213503982ULL * 86400 * SEC },
                { "213503983d", -ERANGE, 0 },
                { "99999999999999999999d", -ERANGE, 0 },
                /* garbage */
                { NULL, -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "s", -EINVAL, 0 },
                { "x", -EINVAL, 0 },
                { "-1s", -EINVAL, 0 },
                { "+1s", -EINVAL, 0 },
                { " 1s", -EINVAL, 0 },
                { "1s ", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { ".5", -EINVAL, 0 },
                { "1.", -EINVAL, 0 },
                { "1e3", -EINVAL, 0 },
                { "1S", -EINVAL, 0 },
                { "1mins", -EINVAL, 0 },
                { "1hour", -EINVAL, 0 },
                { "1ns", -EINVAL, 0 },
                { "1w", -EINVAL, 0 },
                { "1h30m", -EINVAL, 0 },
                { "1K", -EINVAL, 0 },
                { "1.0000000001", -EINVAL, 0 },
                { "99999999999999999999zz", -EINVAL, 0 },
        };

        check("parse_duration", parse_duration, cases, ELEMENTSOF(cases));
}

static void test_format_duration(void **state) {
        static const struct {
                uint64_t usec;
                const char *text;
        } cases[] = {
                { 0, "0s" }, { 1, "1us" }, { 1500, "1500us" }, { 300000, "300ms" }, { 1500000, "1500ms" },
                { 90000000, "90s" }, { 1800000000, "30m" }, { 7200000000ull, "2h" }, { 86400000000ull, "1d" },
                { 90000000000ull, "25h" }, { UINT64_MAX, "18446744073709551615us" },
        };
        char buf[PARSE_DURATION_STRING_MAX];
        uint64_t back;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                assert_string_equal(format_duration(cases[i].usec, buf), cases[i].text);
                /* What it writes, the parser reads back exactly. */
                assert_int_equal(parse_duration(buf, &back), 0);
                assert_int_equal(back, cases[i].usec);
        }
}

static void test_uint64(void **state) {
        static const Case cases[] = {
                { "0", 0, 0 },
                { "007", 0, 7 },
                { "4194304", 0, 4194304 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "99999999999999999999", -ERANGE, 0 },
                { NULL, -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "1.5", -EINVAL, 0 },
                { "1.0", -EINVAL, 0 },
                { "1K", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
        };

        check("parse_uint64", parse_uint64, cases, ELEMENTSOF(cases));
}

static int parse_milli(const char *s, uint64_t *ret) {
        return parse_fixed(s, 3, ret);
}

static void test_fixed(void **state) {
        static const Case cases[] = {
                { "1", 0, 1000 },
                { "0.5", 0, 500 },
                { "2.25", 0, 2250 },
                { "0.001", 0, 1 },
                { "1024.000", 0, 1024000 },
                { "18446744073709551.615", 0, UINT64_MAX },
                { "18446744073709551.616", -ERANGE, 0 },
                { "18446744073709552", -ERANGE, 0 },
                { "0.0001", -EINVAL, 0 },   /* finer than the scale: not representable */
                { "", -EINVAL, 0 },
                { ".5", -EINVAL, 0 },
                { "1.", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "50%", -EINVAL, 0 },
                { "1s", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
        };
        uint64_t v;

        check("parse_fixed(3)", parse_milli, cases, ELEMENTSOF(cases));
        assert_int_equal(parse_fixed("123456789.123456789", 9, &v), 0);
        assert_true(v == 123456789123456789ULL);
        assert_int_equal(parse_fixed("1", 10, &v), -EINVAL);
        assert_int_equal(parse_fixed("1.5", 0, &v), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_size),
                cmocka_unit_test(test_duration),
                cmocka_unit_test(test_format_duration),
                cmocka_unit_test(test_uint64),
                cmocka_unit_test(test_fixed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
