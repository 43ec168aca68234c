/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "core/job-id.h"

static void test_roundtrip(void **state) {
        JobId a, b;
        char buf[JOB_ID_STRING_MAX];

        assert_int_equal(job_id_generate(&a), 0);
        job_id_to_string(&a, buf);
        assert_int_equal(strlen(buf), 36);
        assert_int_equal(buf[14], '4'); /* version nibble */
        assert_true(strchr("89ab", buf[19]) != NULL);
        assert_int_equal(job_id_from_string(buf, &b), 0);
        assert_true(job_id_equal(&a, &b));
        assert_true(job_id_has_prefix(&a, "") );
        buf[8] = 0;
        assert_true(job_id_has_prefix(&a, buf));
}

static void test_unique(void **state) {
        JobId a, b;
        assert_int_equal(job_id_generate(&a), 0);
        assert_int_equal(job_id_generate(&b), 0);
        assert_false(job_id_equal(&a, &b));
}

static void test_parse_errors(void **state) {
        JobId id;
        assert_int_equal(job_id_from_string("", &id), -EINVAL);
        assert_int_equal(job_id_from_string("0123456789abcdef0123456789abcdef", &id), -EINVAL);
        assert_int_equal(job_id_from_string("0123456g-89ab-4def-8123-456789abcdef", &id), -EINVAL);
        assert_int_equal(job_id_from_string("01234567-89ab-4def-8123-456789abcdef0", &id), -EINVAL);
        assert_int_equal(job_id_from_string("01234567+89ab-4def-8123-456789abcdef", &id), -EINVAL);
        assert_int_equal(job_id_from_string("01234567-89AB-4DEF-8123-456789ABCDEF", &id), 0);
        assert_int_equal(id.bytes[0], 0x01);
        assert_int_equal(id.bytes[15], 0xef);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_unique),
                cmocka_unit_test(test_parse_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
