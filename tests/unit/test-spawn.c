/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/spawn.h"

static void test_candidates_path_search(void **state) {
        char **v = spawn_exec_candidates("ls", "/usr/bin:/bin::/opt/x/");
        assert_non_null(v);
        assert_string_equal(v[0], "/usr/bin/ls");
        assert_string_equal(v[1], "/bin/ls");
        assert_string_equal(v[2], "./ls"); /* empty entry = current directory */
        assert_string_equal(v[3], "/opt/x//ls");
        assert_null(v[4]);
        free(v);
}

static void test_candidates_with_slash(void **state) {
        char **v = spawn_exec_candidates("./run.sh", "/usr/bin");
        assert_string_equal(v[0], "./run.sh");
        assert_null(v[1]);
        free(v);
        v = spawn_exec_candidates("/bin/true", NULL);
        assert_string_equal(v[0], "/bin/true");
        assert_null(v[1]);
        free(v);
}

static void test_stack(void **state) {
        SpawnStack s = {};
        assert_int_equal(spawn_stack_init(&s), 0);
        assert_non_null(s.base);
        assert_true(s.size >= 64 * 1024);
        spawn_stack_done(&s);
        assert_null(s.base);
        spawn_stack_done(&s); /* twice is fine */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_candidates_path_search),
                cmocka_unit_test(test_candidates_with_slash),
                cmocka_unit_test(test_stack),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
