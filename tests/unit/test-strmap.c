/* SPDX-License-Identifier: MIT */
/* The string hash map: put, get, remove, growth, and removal that keeps
 * every other key reachable (backward shift). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shared/strmap.h"

#define N 5000

static void test_basic(void **state) {
        StrMap m = STRMAP_INIT;
        int one = 1, two = 2;

        assert_null(strmap_get(&m, "a"));
        assert_null(strmap_remove(&m, "a"));
        assert_int_equal(strmap_put(&m, "a", &one), 0);
        assert_int_equal(strmap_put(&m, "a", &two), -EEXIST);
        assert_ptr_equal(strmap_get(&m, "a"), &one);
        assert_int_equal(strmap_put(&m, "", &two), 0);
        assert_ptr_equal(strmap_get(&m, ""), &two);
        assert_ptr_equal(strmap_remove(&m, "a"), &one);
        assert_null(strmap_get(&m, "a"));
        assert_int_equal(m.n, 1);
        strmap_done(&m);
        strmap_done(&m);
}

static void test_many(void **state) {
        static char keys[N][16];
        StrMap m = STRMAP_INIT;

        for (uintptr_t i = 0; i < N; i++) {
                snprintf(keys[i], sizeof(keys[i]), "k%lu", (unsigned long) i);
                assert_int_equal(strmap_put(&m, keys[i], (void *) (i + 1)), 0);
        }
        assert_int_equal(m.n, N);
        assert_true(m.cap >= 2 * N);
        /* remove every third key: the others stay reachable */
        for (uintptr_t i = 0; i < N; i += 3)
                assert_ptr_equal(strmap_remove(&m, keys[i]), (void *) (i + 1));
        for (uintptr_t i = 0; i < N; i++) {
                char k[16];
                snprintf(k, sizeof(k), "k%lu", (unsigned long) i); /* another copy of the key */
                if (i % 3 == 0)
                        assert_null(strmap_get(&m, k));
                else
                        assert_ptr_equal(strmap_get(&m, k), (void *) (i + 1));
        }
        /* and back in */
        for (uintptr_t i = 0; i < N; i += 3)
                assert_int_equal(strmap_put(&m, keys[i], (void *) (i + 1)), 0);
        for (uintptr_t i = 0; i < N; i++)
                assert_ptr_equal(strmap_get(&m, keys[i]), (void *) (i + 1));
        strmap_done(&m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_basic),
                cmocka_unit_test(test_many),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
