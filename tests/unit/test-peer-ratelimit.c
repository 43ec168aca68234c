/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/peer-ratelimit.h"

static void test_per_peer_budget(void **state) {
        PeerRateLimit *rl = malloc(sizeof(PeerRateLimit));
        unsigned sup;

        peer_ratelimit_init(rl, 3, 1000000);
        for (int i = 0; i < 3; i++)
                assert_true(peer_ratelimit_test(rl, "192.0.2.1", 100, &sup));
        /* The fourth from the same peer is held back ... */
        assert_false(peer_ratelimit_test(rl, "192.0.2.1", 200, &sup));
        assert_false(peer_ratelimit_test(rl, "192.0.2.1", 300, &sup));
        /* ... while another peer still gets its own budget. */
        assert_true(peer_ratelimit_test(rl, "198.51.100.7", 300, &sup));
        assert_int_equal(sup, 0);
        /* Next interval: allowed again, with the count of what was held back. */
        assert_true(peer_ratelimit_test(rl, "192.0.2.1", 1000100, &sup));
        assert_int_equal(sup, 2);
        assert_true(peer_ratelimit_test(rl, "192.0.2.1", 1000200, &sup));
        assert_int_equal(sup, 0);
        peer_ratelimit_done(rl);
        free(rl);
}

static void test_long_keys(void **state) {
        PeerRateLimit *rl = malloc(sizeof(PeerRateLimit));
        char key[200];
        unsigned sup;

        peer_ratelimit_init(rl, 1, 1000000);
        memset(key, 'a', sizeof(key) - 1);
        key[sizeof(key) - 1] = 0;
        assert_true(peer_ratelimit_test(rl, key, 1, &sup));
        assert_false(peer_ratelimit_test(rl, key, 2, &sup));
        peer_ratelimit_done(rl);
        free(rl);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_per_peer_budget),
                cmocka_unit_test(test_long_keys),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
