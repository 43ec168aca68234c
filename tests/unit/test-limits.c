/* SPDX-License-Identifier: MIT */
/* Resource limits: quantity syntax, policy bounds and defaults, io devices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/limits.h"

static void test_parse_cpu(void **state) {
        uint32_t m;

        assert_int_equal(limits_parse_cpu("1", &m), 0);
        assert_int_equal(m, 1000);
        assert_int_equal(limits_parse_cpu("0.5", &m), 0);
        assert_int_equal(m, 500);
        assert_int_equal(limits_parse_cpu("2.25", &m), 0);
        assert_int_equal(m, 2250);
        assert_int_equal(limits_parse_cpu("0.01", &m), 0);
        assert_int_equal(m, 10);
        assert_int_equal(limits_parse_cpu("0.001", &m), 0);
        assert_int_equal(m, 1);
        assert_int_equal(limits_parse_cpu("0", &m), 0);
        assert_int_equal(m, 0);
        assert_int_equal(limits_parse_cpu("1024", &m), 0);
        assert_int_equal(m, 1024000);
        assert_int_equal(limits_parse_cpu("1024.001", &m), -ERANGE);
        assert_int_equal(limits_parse_cpu("99999999999", &m), -ERANGE);
        assert_int_equal(limits_parse_cpu("0.0001", &m), -EINVAL);
        assert_int_equal(limits_parse_cpu(".5", &m), -EINVAL);
        assert_int_equal(limits_parse_cpu("1.", &m), -EINVAL);
        assert_int_equal(limits_parse_cpu("", &m), -EINVAL);
        assert_int_equal(limits_parse_cpu("-1", &m), -EINVAL);
        assert_int_equal(limits_parse_cpu("1 ", &m), -EINVAL);
        assert_int_equal(limits_parse_cpu("50%", &m), -EINVAL);
        assert_int_equal(limits_parse_cpu(NULL, &m), -EINVAL);
}

static void test_parse_size(void **state) {
        uint64_t v;

        assert_int_equal(limits_parse_size("4096", &v), 0);
        assert_int_equal(v, 4096);
        assert_int_equal(limits_parse_size("256M", &v), 0);
        assert_int_equal(v, 256ULL << 20);
        assert_int_equal(limits_parse_size("256m", &v), 0);
        assert_int_equal(v, 256ULL << 20);
        assert_int_equal(limits_parse_size("1G", &v), 0);
        assert_int_equal(v, 1ULL << 30);
        assert_int_equal(limits_parse_size("1GiB", &v), 0);
        assert_int_equal(v, 1ULL << 30);
        assert_int_equal(limits_parse_size("1GB", &v), 0);
        assert_int_equal(v, 1ULL << 30);
        assert_int_equal(limits_parse_size("1.5G", &v), 0);
        assert_int_equal(v, 3ULL << 29);
        assert_int_equal(limits_parse_size("2T", &v), 0);
        assert_int_equal(v, 2ULL << 40);
        assert_int_equal(limits_parse_size("10K", &v), 0);
        assert_int_equal(v, 10240);
        assert_int_equal(limits_parse_size("100B", &v), 0);
        assert_int_equal(v, 100);
        assert_int_equal(limits_parse_size("0.1K", &v), 0);
        assert_int_equal(v, 102); /* fractions of a byte are cut */
        assert_int_equal(limits_parse_size("0.999999999T", &v), 0);
        assert_int_equal(v, 1099511626676ULL); /* 2^40 - 1099.51... */
        assert_int_equal(limits_parse_size("18446744073709551615", &v), 0);
        assert_int_equal(v, UINT64_MAX);
        assert_int_equal(limits_parse_size("18446744073709551616", &v), -ERANGE);
        assert_int_equal(limits_parse_size("16777216T", &v), -ERANGE);
        assert_int_equal(limits_parse_size("16777215.9999T", &v), 0);
        assert_int_equal(limits_parse_size("", &v), -EINVAL);
        assert_int_equal(limits_parse_size("M", &v), -EINVAL);
        assert_int_equal(limits_parse_size("1iB", &v), -EINVAL);
        assert_int_equal(limits_parse_size("1X", &v), -EINVAL);
        assert_int_equal(limits_parse_size("1MM", &v), -EINVAL);
        assert_int_equal(limits_parse_size("-1", &v), -EINVAL);
        assert_int_equal(limits_parse_size("1.", &v), -EINVAL);
        assert_int_equal(limits_parse_size("1.0000000001G", &v), -EINVAL);
        assert_int_equal(limits_parse_size(" 1", &v), -EINVAL);
        /* the shared grammar also takes jobworkerd.conf's "Ki" */
        assert_int_equal(limits_parse_size("64Ki", &v), 0);
        assert_true(v == 65536);
}

static void test_format(void **state) {
        char b[32];

        assert_string_equal(limits_format_cpu(1000, b), "1");
        assert_string_equal(limits_format_cpu(500, b), "0.5");
        assert_string_equal(limits_format_cpu(2250, b), "2.25");
        assert_string_equal(limits_format_cpu(10, b), "0.01");
        assert_string_equal(limits_format_cpu(1001, b), "1.001");
        assert_string_equal(limits_format_size(1ULL << 30, b), "1G");
        assert_string_equal(limits_format_size(3ULL << 29, b), "1536M");
        assert_string_equal(limits_format_size(50ULL << 20, b), "50M");
        assert_string_equal(limits_format_size(1000, b), "1000");
        assert_string_equal(limits_format_size(2ULL << 40, b), "2T");
        assert_string_equal(limits_format_size(0, b), "0");

        /* what is formatted parses back to the same value */
        for (uint64_t v = 1; v < (1ULL << 62); v = v * 3 + 1) {
                uint64_t back;
                assert_int_equal(limits_parse_size(limits_format_size(v, b), &back), 0);
                assert_int_equal(back, v);
        }
}

static void apply_denied(const LimitsBounds *b, const LimitsRequest *req, const char *want) {
        LimitsIoRequest io[LIMITS_IO_MAX];
        JobLimits l;
        char *m = NULL;

        assert_int_equal(limits_apply_bounds(b, "alice", req, &l, io, &m), -EACCES);
        assert_non_null(m);
        if (strcmp(m, want) != 0)
                fail_msg("message '%s', expected '%s'", m, want);
        free(m);
}

static void test_apply_bounds(void **state) {
        const LimitsBounds alice = {
                .cpu_millis = 1000, .memory_max = 1ULL << 30, .pids_max = 256,
                .io_read_bps = 50ULL << 20, .io_write_bps = 20ULL << 20,
        };
        const LimitsBounds dave = { .cpu_millis = 2000, .default_cpu_millis = 500, .default_memory_max = 64ULL << 20,
                                    .default_pids_max = 32 };
        LimitsIoRequest io[LIMITS_IO_MAX];
        LimitsRequest req = {};
        JobLimits l;
        char *m = NULL;

        /* nothing asked, no defaults: no limits (a bound alone limits requests only) */
        assert_int_equal(limits_apply_bounds(&alice, "alice", &req, &l, io, &m), 0);
        assert_int_equal(l.cpu_millis, 0);
        assert_int_equal(l.memory_max, 0);
        assert_int_equal(l.pids_max, 0);
        assert_int_equal(l.n_io, 0);
        assert_null(m);

        /* at the bounds: allowed as asked */
        req = (LimitsRequest) { .cpu_millis = 1000, .memory_max = 1ULL << 30, .pids_max = 256 };
        assert_int_equal(limits_apply_bounds(&alice, "alice", &req, &l, io, &m), 0);
        assert_int_equal(l.cpu_millis, 1000);
        assert_int_equal(l.memory_max, 1ULL << 30);
        assert_int_equal(l.pids_max, 256);

        /* above: refused, the bound in the message */
        req = (LimitsRequest) { .cpu_millis = 2000 };
        apply_denied(&alice, &req, "alice may use at most 1 CPU (asked 2)");
        req = (LimitsRequest) { .cpu_millis = 1001 };
        apply_denied(&alice, &req, "alice may use at most 1 CPU (asked 1.001)");
        req = (LimitsRequest) { .memory_max = 2ULL << 30 };
        apply_denied(&alice, &req, "alice may use at most 1G bytes of memory (asked 2G)");
        req = (LimitsRequest) { .pids_max = 257 };
        apply_denied(&alice, &req, "alice may use at most 256 processes (asked 257)");
        req = (LimitsRequest) { .n_io = 1, .io = { { "/dev/vda", 100ULL << 20, 0 } } };
        apply_denied(&alice, &req, "alice may read at most 50M bytes/s from a device (asked 100M for /dev/vda)");
        req = (LimitsRequest) { .n_io = 1, .io = { { "/srv", 0, 21ULL << 20 } } };
        apply_denied(&alice, &req, "alice may write at most 20M bytes/s to a device (asked 21M for /srv)");
        {
                const LimitsBounds two = { .cpu_millis = 2000 };
                req = (LimitsRequest) { .cpu_millis = 3000 };
                apply_denied(&two, &req, "alice may use at most 2 CPUs (asked 3)");
        }

        /* a device the request names gets the io bounds for the rate it left out */
        req = (LimitsRequest) { .n_io = 2, .io = { { "/dev/vda", 10ULL << 20, 0 }, { "/srv", 0, 0 } } };
        assert_int_equal(limits_apply_bounds(&alice, "alice", &req, &l, io, &m), 0);
        assert_int_equal(l.n_io, 2);
        assert_string_equal(io[0].device, "/dev/vda");
        assert_int_equal(io[0].read_bps, 10ULL << 20);
        assert_int_equal(io[0].write_bps, 20ULL << 20);
        assert_int_equal(io[1].read_bps, 50ULL << 20);
        assert_int_equal(io[1].write_bps, 20ULL << 20);

        /* defaults fill what is not asked; asked values win */
        req = (LimitsRequest) { .pids_max = 100 };
        assert_int_equal(limits_apply_bounds(&dave, "dave", &req, &l, io, &m), 0);
        assert_int_equal(l.cpu_millis, 500);
        assert_int_equal(l.memory_max, 64ULL << 20);
        assert_int_equal(l.pids_max, 100);
        req = (LimitsRequest) { .cpu_millis = 2000 };
        assert_int_equal(limits_apply_bounds(&dave, "dave", &req, &l, io, &m), 0);
        assert_int_equal(l.cpu_millis, 2000);

        /* no bounds at all (charlie, or NULL): anything goes */
        req = (LimitsRequest) { .cpu_millis = 64000, .memory_max = UINT64_MAX, .pids_max = 4194304 };
        assert_int_equal(limits_apply_bounds(NULL, "charlie", &req, &l, io, &m), 0);
        assert_int_equal(l.cpu_millis, 64000);
        assert_int_equal(l.memory_max, UINT64_MAX);
        assert_null(m);
}

/* max-jobs= and max-output= against what the identity's jobs use. */
static void test_check_usage(void **state) {
        LimitsBounds b = { .max_jobs = 8, .max_output = 1ULL << 20 };
        LimitsBounds none = {};
        char *m = NULL;

        assert_int_equal(limits_check_usage(&b, "alice", 7, (1ULL << 20) - 1, &m), 0);
        assert_null(m);
        assert_int_equal(limits_check_usage(&b, "alice", 8, 0, &m), -EDQUOT);
        assert_string_equal(m, "alice already runs 8 jobs (max-jobs=8)");
        free(m);
        m = NULL;
        b.max_jobs = 1;
        assert_int_equal(limits_check_usage(&b, "alice", 1, 0, &m), -EDQUOT);
        assert_string_equal(m, "alice already runs 1 job (max-jobs=1)");
        free(m);
        m = NULL;
        assert_int_equal(limits_check_usage(&b, "alice", 0, 1ULL << 20, &m), -EDQUOT);
        assert_string_equal(m, "the jobs of alice already keep 1048576 bytes of output (max-output=1M; "
                               "finished jobs count until retention removes them)");
        free(m);
        m = NULL;
        assert_int_equal(limits_check_usage(&none, "alice", 100000, UINT64_MAX, &m), 0);
        assert_null(m);
}

static void test_apply_runtime(void **state) {
        LimitsBounds b = { .max_runtime = 3600ull * 1000000, .default_max_runtime = 60ull * 1000000 };
        LimitsBounds only_bound = { .max_runtime = 3600ull * 1000000 };
        uint64_t v = 1;
        char *m = NULL;

        /* Nothing asked: the default; asked: that, up to the bound. */
        assert_int_equal(limits_apply_runtime(&b, "alice", 0, &v, &m), 0);
        assert_int_equal(v, 60ull * 1000000);
        assert_int_equal(limits_apply_runtime(&b, "alice", 3600ull * 1000000, &v, &m), 0);
        assert_int_equal(v, 3600ull * 1000000);
        assert_null(m);
        assert_int_equal(limits_apply_runtime(&b, "alice", 7200ull * 1000000, &v, &m), -EACCES);
        assert_string_equal(m, "alice may run a job for at most 1h (max-runtime=1h; asked 2h)");
        assert_int_equal(v, 3600ull * 1000000); /* untouched on failure */
        free(m);
        m = NULL;
        /* A bound without a default does not limit a job that asks for none. */
        assert_int_equal(limits_apply_runtime(&only_bound, "alice", 0, &v, &m), 0);
        assert_int_equal(v, 0);
        assert_int_equal(limits_apply_runtime(NULL, "alice", 5000, &v, &m), 0);
        assert_int_equal(v, 5000);
        assert_false(limits_bounds_empty(&only_bound));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_cpu),
                cmocka_unit_test(test_parse_size),
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_apply_bounds),
                cmocka_unit_test(test_check_usage),
                cmocka_unit_test(test_apply_runtime),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
