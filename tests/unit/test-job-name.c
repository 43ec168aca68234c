/* SPDX-License-Identifier: MIT */

/* The rules for job names, labels and request ids (shared/job-name.h):
 * every rule accepted at its bound and refused one past it, with a message
 * naming the rule or the bound. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "shared/job-name.h"

static char msg[JOB_NAME_MSG_MAX];

#define REFUSED(expr, error, needle)                                                    \
        do {                                                                            \
                msg[0] = 0;                                                             \
                assert_int_equal((expr), (error));                                      \
                if (!strstr(msg, (needle)))                                             \
                        fail_msg("message '%s' does not contain '%s'", msg, (needle)); \
        } while (0)

static void test_names(void **state) {
        char max[JOB_NAME_MAX + 2];

        assert_int_equal(job_name_check("web", msg, sizeof(msg)), 0);
        assert_int_equal(job_name_check("Build_2.nightly-x", msg, sizeof(msg)), 0);
        assert_int_equal(job_name_check("0xyz", msg, sizeof(msg)), 0);
        memset(max, 'g', JOB_NAME_MAX);
        max[JOB_NAME_MAX] = 0;
        assert_int_equal(job_name_check(max, msg, sizeof(msg)), 0);
        max[JOB_NAME_MAX] = 'g';
        max[JOB_NAME_MAX + 1] = 0;
        REFUSED(job_name_check(max, msg, sizeof(msg)), -E2BIG, "at most 64");

        REFUSED(job_name_check("", msg, sizeof(msg)), -EINVAL, "empty");
        /* words of hex digits and '-' would read as job ids or prefixes */
        REFUSED(job_name_check("deadbeef", msg, sizeof(msg)), -EINVAL, "could be read as a job id");
        REFUSED(job_name_check("DEADBEEF", msg, sizeof(msg)), -EINVAL, "could be read as a job id");
        REFUSED(job_name_check("0123-4567", msg, sizeof(msg)), -EINVAL, "could be read as a job id");
        REFUSED(job_name_check("cafe", msg, sizeof(msg)), -EINVAL, "could be read as a job id");
        REFUSED(job_name_check("0b5f3a1c-2d4e-4f60-8a7b-9c0d1e2f3a4b", msg, sizeof(msg)), -EINVAL, "job id");
        /* host lists' separators, paths, blanks, control bytes, non-ASCII */
        REFUSED(job_name_check("web:1", msg, sizeof(msg)), -EINVAL, "position 4");
        REFUSED(job_name_check("web@x", msg, sizeof(msg)), -EINVAL, "not allowed");
        REFUSED(job_name_check("a,b", msg, sizeof(msg)), -EINVAL, "not allowed");
        REFUSED(job_name_check("a/b", msg, sizeof(msg)), -EINVAL, "not allowed");
        REFUSED(job_name_check("a b", msg, sizeof(msg)), -EINVAL, "not allowed");
        REFUSED(job_name_check("a\nb", msg, sizeof(msg)), -EINVAL, "'a?b'");
        REFUSED(job_name_check("caf\xc3\xa9s", msg, sizeof(msg)), -EINVAL, "not allowed");
        /* never an option on a command line */
        REFUSED(job_name_check("-web", msg, sizeof(msg)), -EINVAL, "begin with a letter or a digit");
        REFUSED(job_name_check(".web", msg, sizeof(msg)), -EINVAL, "begin with a letter or a digit");
}

static void test_looks_like_id(void **state) {
        assert_true(job_name_looks_like_id("deadbeef"));
        assert_true(job_name_looks_like_id("0B5F-"));
        assert_false(job_name_looks_like_id("deadbeeg"));
        assert_false(job_name_looks_like_id(""));
}

static void test_labels(void **state) {
        char buf[JOB_LABELS_TEXT_MAX + 1], k[JOB_LABEL_KEY_MAX + 2], v[JOB_LABEL_VALUE_MAX + 2];
        const char *keys[JOB_LABELS_MAX + 1], *values[JOB_LABELS_MAX + 1];
        char names[JOB_LABELS_MAX + 1][8];

        assert_int_equal(job_label_check("team", "web", msg, sizeof(msg)), 0);
        assert_int_equal(job_label_check("team", "", msg, sizeof(msg)), 0);
        REFUSED(job_label_check("", "web", msg, sizeof(msg)), -EINVAL, "label key is empty");
        REFUSED(job_label_check("te=am", "web", msg, sizeof(msg)), -EINVAL, "label key 'te=am'");
        REFUSED(job_label_check("team", "a,b", msg, sizeof(msg)), -EINVAL, "label value 'a,b'");
        memset(k, 'k', JOB_LABEL_KEY_MAX);
        k[JOB_LABEL_KEY_MAX] = 0;
        memset(v, 'v', JOB_LABEL_VALUE_MAX);
        v[JOB_LABEL_VALUE_MAX] = 0;
        assert_int_equal(job_label_check(k, v, msg, sizeof(msg)), 0);
        k[JOB_LABEL_KEY_MAX] = 'k';
        k[JOB_LABEL_KEY_MAX + 1] = 0;
        REFUSED(job_label_check(k, "x", msg, sizeof(msg)), -E2BIG, "at most 63");
        v[JOB_LABEL_VALUE_MAX] = 'v';
        v[JOB_LABEL_VALUE_MAX + 1] = 0;
        REFUSED(job_label_check("x", v, msg, sizeof(msg)), -E2BIG, "at most 63");

        for (size_t i = 0; i <= JOB_LABELS_MAX; i++) {
                snprintf(names[i], sizeof(names[i]), "k%zu", i);
                keys[i] = names[i];
                values[i] = "v";
        }
        assert_int_equal(job_labels_join(keys, values, JOB_LABELS_MAX, buf, sizeof(buf), msg, sizeof(msg)), 0);
        assert_true(job_labels_has(buf, "k15", "v"));
        REFUSED(job_labels_join(keys, values, JOB_LABELS_MAX + 1, buf, sizeof(buf), msg, sizeof(msg)), -E2BIG,
                "too many labels: 17 (at most 16)");
        keys[3] = "k1";
        REFUSED(job_labels_join(keys, values, 4, buf, sizeof(buf), msg, sizeof(msg)), -EINVAL, "label key 'k1' is given twice");
        keys[3] = names[3];

        /* the joined form: in order, split back exactly, matched exactly */
        const char *tk[] = { "team", "tier", "empty" }, *tv[] = { "web", "1", "" };
        assert_int_equal(job_labels_join(tk, tv, 3, buf, sizeof(buf), msg, sizeof(msg)), 0);
        assert_string_equal(buf, "team=web,tier=1,empty=");
        assert_true(job_labels_has(buf, "team", "web"));
        assert_true(job_labels_has(buf, "empty", ""));
        assert_false(job_labels_has(buf, "team", "we"));
        assert_false(job_labels_has(buf, "tea", "web"));
        assert_false(job_labels_has(buf, "tier", ""));
        assert_false(job_labels_has("", "team", "web"));
        size_t pos = 0, kl, vl, n = 0;
        const char *kp, *vp;
        while (job_labels_next(buf, &pos, &kp, &kl, &vp, &vl)) {
                assert_int_equal(kl, strlen(tk[n]));
                assert_memory_equal(kp, tk[n], kl);
                assert_int_equal(vl, strlen(tv[n]));
                assert_memory_equal(vp, tv[n], vl);
                n++;
        }
        assert_int_equal(n, 3);
        assert_int_equal(job_labels_join(tk, tv, 0, buf, sizeof(buf), msg, sizeof(msg)), 0);
        assert_string_equal(buf, "");

        /* the total: 16 labels of 63 + 63 do not fit in 511 bytes */
        memset(k, 'k', JOB_LABEL_KEY_MAX);
        k[JOB_LABEL_KEY_MAX] = 0;
        memset(v, 'v', JOB_LABEL_VALUE_MAX);
        v[JOB_LABEL_VALUE_MAX] = 0;
        char big[JOB_LABELS_MAX][JOB_LABEL_KEY_MAX + 1];
        for (size_t i = 0; i < JOB_LABELS_MAX; i++) {
                memcpy(big[i], k, sizeof(big[i]));
                big[i][0] = (char) ('a' + i); /* keys unique */
                keys[i] = big[i];
                values[i] = v;
        }
        REFUSED(job_labels_join(keys, values, JOB_LABELS_MAX, buf, sizeof(buf), msg, sizeof(msg)), -E2BIG,
                "at most 511");
}

static void test_label_parse(void **state) {
        char k[JOB_LABEL_KEY_MAX + 1], v[JOB_LABEL_VALUE_MAX + 1];

        assert_int_equal(job_label_parse("team=web", k, v, msg, sizeof(msg)), 0);
        assert_string_equal(k, "team");
        assert_string_equal(v, "web");
        assert_int_equal(job_label_parse("team=", k, v, msg, sizeof(msg)), 0);
        assert_string_equal(v, "");
        REFUSED(job_label_parse("team", k, v, msg, sizeof(msg)), -EINVAL, "KEY=VALUE");
        REFUSED(job_label_parse("=web", k, v, msg, sizeof(msg)), -EINVAL, "label key is empty");
        REFUSED(job_label_parse("team=a=b", k, v, msg, sizeof(msg)), -EINVAL, "label value 'a=b'");
}

static void test_request_ids(void **state) {
        char id[JOB_REQUEST_ID_MAX + 2];

        assert_int_equal(job_request_id_check("0b5f3a1c-2d4e-4f60-8a7b-9c0d1e2f3a4b", msg, sizeof(msg)), 0);
        memset(id, 'r', JOB_REQUEST_ID_MAX);
        id[JOB_REQUEST_ID_MAX] = 0;
        assert_int_equal(job_request_id_check(id, msg, sizeof(msg)), 0);
        id[JOB_REQUEST_ID_MAX] = 'r';
        id[JOB_REQUEST_ID_MAX + 1] = 0;
        REFUSED(job_request_id_check(id, msg, sizeof(msg)), -E2BIG, "request id");
        REFUSED(job_request_id_check("a b", msg, sizeof(msg)), -EINVAL, "not allowed");
        REFUSED(job_request_id_check("", msg, sizeof(msg)), -EINVAL, "empty");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_looks_like_id),
                cmocka_unit_test(test_labels),
                cmocka_unit_test(test_label_parse),
                cmocka_unit_test(test_request_ids),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
