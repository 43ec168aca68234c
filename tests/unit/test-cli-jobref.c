/* SPDX-License-Identifier: MIT */
/* jwctl's job id prefixes (src/cli/jobref.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/jobref.h"

static const char *const ids[] = {
        "0123abcd-4567-4890-8abc-def012345678",
        "0123abce-0000-4000-8000-000000000000",
        "0123abce-1111-4000-8000-000000000000",
        "ffffffff-ffff-4fff-bfff-ffffffffffff",
};

static void test_full(void **state) {
        assert_true(cli_job_ref_is_full("0123abcd-4567-4890-8abc-def012345678"));
        assert_true(cli_job_ref_is_full("0123ABCD-4567-4890-8ABC-DEF012345678"));
        assert_false(cli_job_ref_is_full("0123abcd-4567-4890-8abc-def01234567"));
        assert_false(cli_job_ref_is_full("0123abcd04567-4890-8abc-def012345678"));
        assert_false(cli_job_ref_is_full("0123abcg-4567-4890-8abc-def012345678"));
        assert_false(cli_job_ref_is_full("0123abcd"));
}

static void test_match(void **state) {
        char *id = NULL, *e = NULL;

        assert_int_equal(cli_job_ref_match("0123abcd", ids, 4, &id, &e), 0);
        assert_string_equal(id, ids[0]);
        free(id);
        /* case-insensitive, dashes count as characters of the id */
        assert_int_equal(cli_job_ref_match("0123ABCE-1", ids, 4, &id, &e), 0);
        assert_string_equal(id, ids[2]);
        free(id);
        assert_int_equal(cli_job_ref_match("fffffffff", ids, 4, &id, &e), -ENOENT);
        assert_int_equal(cli_job_ref_match("01234567", ids, 4, &id, &e), -ENOENT);
        assert_int_equal(cli_job_ref_match("0123abcd", ids, 0, &id, &e), -ENOENT);
        assert_null(e);

        assert_int_equal(cli_job_ref_match("0123abce", ids, 4, &id, &e), -EEXIST);
        assert_non_null(e);
        assert_non_null(strstr(e, "'0123abce' is ambiguous"));
        assert_non_null(strstr(e, "matches 2 jobs"));
        assert_non_null(strstr(e, ids[1]));
        assert_non_null(strstr(e, ids[2]));
        assert_null(strstr(e, ids[0]));
        assert_null(strchr(e, '\n'));
        free(e);
}

static void test_many_candidates(void **state) {
        char buf[20][37];
        const char *many[20];
        char *id = NULL, *e = NULL;

        for (int i = 0; i < 20; i++) {
                snprintf(buf[i], sizeof buf[i], "abcdef01-0000-4000-8000-0000000000%02d", i);
                many[i] = buf[i];
        }
        assert_int_equal(cli_job_ref_match("abcdef01", many, 20, &id, &e), -EEXIST);
        assert_non_null(strstr(e, "matches 20 jobs"));
        assert_non_null(strstr(e, "(10 more)"));
        assert_null(strstr(e, many[10]));
        free(e);
}

static void test_names(void **state) {
        const CliNamedJob one_owner[] = {
                { "11111111-0000-4000-8000-000000000000", "alice", 100 },
                { "22222222-0000-4000-8000-000000000000", "alice", 300 },
                { "33333333-0000-4000-8000-000000000000", "alice", 200 },
        };
        const CliNamedJob two_owners[] = {
                { "11111111-0000-4000-8000-000000000000", "alice", 100 },
                { "44444444-0000-4000-8000-000000000000", "charlie", 400 },
        };
        char *id = NULL, *err = NULL;

        assert_true(cli_job_ref_is_name("web"));
        assert_true(cli_job_ref_is_name("deadbeeg"));
        assert_false(cli_job_ref_is_name("deadbeef"));
        assert_false(cli_job_ref_is_name("0123-ABCD"));
        assert_false(cli_job_ref_is_name(""));

        /* the newest of one owner's jobs with the name */
        assert_int_equal(cli_job_name_pick("web", one_owner, 3, &id, &err), 0);
        assert_string_equal(id, "22222222-0000-4000-8000-000000000000");
        free(id);
        assert_int_equal(cli_job_name_pick("web", one_owner, 1, &id, &err), 0);
        assert_string_equal(id, "11111111-0000-4000-8000-000000000000");
        free(id);
        assert_int_equal(cli_job_name_pick("web", one_owner, 0, &id, &err), -ENOENT);
        /* several owners: never a guess */
        id = NULL;
        assert_int_equal(cli_job_name_pick("web", two_owners, 2, &id, &err), -EEXIST);
        assert_null(id);
        assert_non_null(strstr(err, "job name 'web' is ambiguous"));
        assert_non_null(strstr(err, "charlie 44444444-0000-4000-8000-000000000000"));
        assert_non_null(strstr(err, "alice 11111111-0000-4000-8000-000000000000"));
        free(err);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_match),
                cmocka_unit_test(test_many_candidates),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
