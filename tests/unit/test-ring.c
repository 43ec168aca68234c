/* SPDX-License-Identifier: MIT */

/* shared/ring.c: the slot + generation table and the one get_sqe. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/ring.h"

static void test_ud(void **state) {
        uint64_t ud = ring_ud(7, 0x123456, 0xdeadbeef);
        assert_int_equal(ring_ud_op(ud), 7);
        assert_int_equal(ring_ud_slot(ud), 0x123456);
        assert_int_equal(ring_ud_gen(ud), 0xdeadbeefu);
}

static void test_slots(void **state) {
        RingSlotTable t = {};
        int a, b, c;
        uint32_t sa, ga, sb, gb, sc, gc;

        assert_int_equal(ring_slot_alloc(&t, &a, &sa, &ga), 0);
        assert_int_equal(ring_slot_alloc(&t, &b, &sb, &gb), 0);
        assert_int_not_equal(sa, sb);
        assert_ptr_equal(ring_slot_get(&t, sa, ga), &a);
        assert_int_equal(t.n_used, 2);

        /* Freed: stale lookups find nothing; the reused slot has a new
         * generation, so the old handle still finds nothing. */
        ring_slot_free(&t, sa);
        assert_null(ring_slot_get(&t, sa, ga));
        assert_int_equal(ring_slot_alloc(&t, &c, &sc, &gc), 0);
        assert_int_equal(sc, sa);
        assert_int_not_equal(gc, ga);
        assert_null(ring_slot_get(&t, sa, ga));
        assert_ptr_equal(ring_slot_get(&t, sc, gc), &c);
        assert_null(ring_slot_get(&t, 999, 1)); /* out of range */
        assert_int_equal(ring_slot_get(&t, sb, gb) == &b, 1);
        ring_slot_free(&t, sa); /* twice is harmless */
        ring_slot_free(&t, sa);
        assert_int_equal(t.n_used, 1);
        ring_slot_table_done(&t);
        ring_slot_table_done(&t);
}

static void test_slot_max(void **state) {
        RingSlotTable t = { .max = 3 };
        int x;
        uint32_t s, g;

        for (int i = 0; i < 3; i++)
                assert_int_equal(ring_slot_alloc(&t, &x, &s, &g), 0);
        assert_int_equal(ring_slot_alloc(&t, &x, &s, &g), -EMFILE);
        ring_slot_free(&t, 1);
        assert_int_equal(ring_slot_alloc(&t, &x, &s, &g), 0);
        assert_int_equal(s, 1);
        ring_slot_table_done(&t);
        assert_int_equal(t.max, 3);
}

/* A full submission queue still yields an entry: get_sqe submits. */
static void test_full_sq(void **state) {
        struct io_uring ring;
        struct io_uring_cqe *cqe;
        int err = 0, seen = 0;

        if (io_uring_queue_init(4, &ring, 0) < 0)
                skip();
        for (int i = 0; i < 10; i++) {
                struct io_uring_sqe *sqe = ring_get_sqe(&ring, &err);
                assert_non_null(sqe);
                io_uring_prep_nop(sqe);
                io_uring_sqe_set_data64(sqe, ring_ud(1, (uint32_t) i, 1));
        }
        assert_int_equal(err, 0);
        assert_true(io_uring_submit(&ring) >= 0);
        /* Every request reached the kernel: 10 completions, none lost
         * (the CQ has 8 entries; NODROP keeps the rest). */
        while (seen < 10) {
                assert_int_equal(io_uring_wait_cqe(&ring, &cqe), 0);
                assert_int_equal(ring_ud_slot(cqe->user_data), (uint32_t) seen);
                io_uring_cqe_seen(&ring, cqe);
                seen++;
        }
        io_uring_queue_exit(&ring);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ud),
                cmocka_unit_test(test_slots),
                cmocka_unit_test(test_slot_max),
                cmocka_unit_test(test_full_sq),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
