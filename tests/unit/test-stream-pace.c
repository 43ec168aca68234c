/* SPDX-License-Identifier: MIT */
/* Chunk sizes of Output streams: small until earned, small again after a
 * slow send, and the total in flight within budget + streams x minimum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rpc/stream-pace.h"

#define MAXC (256u * 1024u)
#define MB (1024u * 1024u)

static void test_starts_small_and_ramps(void **state) {
        StreamBudget b = { .total = 8 * MB };
        StreamPace p = {};
        uint64_t t = 1000;
        size_t sent = 0, size;

        assert_int_equal(stream_pace_next(&p, &b, 1, MAXC), STREAM_CHUNK_MIN);
        /* a client that keeps up: small chunks until STREAM_RAMP_BYTES went out */
        while (sent < STREAM_RAMP_BYTES - STREAM_CHUNK_MIN) {
                size = stream_pace_next(&p, &b, 1, MAXC);
                assert_int_equal(size, STREAM_CHUNK_MIN);
                stream_pace_sent(&p, &b, size, t);
                assert_int_equal(b.in_flight, size);
                stream_pace_done(&p, &b, t + 10, MAXC);
                assert_int_equal(b.in_flight, 0);
                sent += size;
        }
        for (int i = 0; i < 8; i++) {
                size = stream_pace_next(&p, &b, 1, MAXC);
                stream_pace_sent(&p, &b, size, t);
                stream_pace_done(&p, &b, t + 10, MAXC);
        }
        assert_int_equal(stream_pace_next(&p, &b, 1, MAXC), MAXC);
        /* never past what the producer hands at once */
        assert_int_equal(stream_pace_next(&p, &b, 1, 1000), 1000);

        /* one slow send: small again, and it has to be earned again */
        stream_pace_sent(&p, &b, MAXC, t);
        stream_pace_done(&p, &b, t + STREAM_SLOW_USEC + 1, MAXC);
        assert_int_equal(stream_pace_next(&p, &b, 1, MAXC), STREAM_CHUNK_MIN);
        assert_int_equal(b.in_flight, 0);
}

static void test_fair_share_and_budget(void **state) {
        StreamBudget b = { .total = 8 * MB };
        StreamPace big = { .size = MAXC };
        enum { N = 1024 };
        static StreamPace p[N];
        size_t size;

        /* 100 streams: 8 MiB / 100 each at most */
        assert_int_equal(stream_pace_next(&big, &b, 100, MAXC), 8 * MB / 100);
        /* 10: the producer's maximum */
        assert_int_equal(stream_pace_next(&big, &b, 10, MAXC), MAXC);

        /* streams that earned big chunks and then all stall: never more in
         * flight than budget + N x minimum, whatever the order */
        for (int i = 0; i < N; i++) {
                p[i] = (StreamPace) { .size = MAXC };
                size = stream_pace_next(&p[i], &b, (unsigned) (i + 1), MAXC);
                assert_true(size >= STREAM_CHUNK_MIN);
                stream_pace_sent(&p[i], &b, size, 1);
        }
        assert_true(b.in_flight <= b.total + (size_t) N * STREAM_CHUNK_MIN);
        /* the budget is spent: a stream still gets the minimum */
        assert_int_equal(stream_pace_next(&big, &b, N, MAXC), STREAM_CHUNK_MIN);
        for (int i = 0; i < N; i++) {
                stream_pace_release(&p[i], &b);
                stream_pace_release(&p[i], &b); /* twice is harmless */
        }
        assert_int_equal(b.in_flight, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_starts_small_and_ramps),
                cmocka_unit_test(test_fair_share_and_budget),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
