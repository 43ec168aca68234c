/* SPDX-License-Identifier: MIT */

/* The hand-written Output chunk encoding against protobuf-c's, both ways. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/wire.h"

/* protobuf-c's packing of OutputResponse{chunk{stream, offset, data}}. */
static size_t pack_reference(Jobworker__V1__Stream stream, uint64_t offset, const uint8_t *data, size_t len,
                             uint8_t **ret) {
        Jobworker__V1__Chunk chunk = JOBWORKER__V1__CHUNK__INIT;
        Jobworker__V1__OutputResponse resp = JOBWORKER__V1__OUTPUT_RESPONSE__INIT;
        size_t n;

        chunk.stream = stream;
        chunk.offset = offset;
        chunk.data.data = (uint8_t *) data;
        chunk.data.len = len;
        resp.kind_case = JOBWORKER__V1__OUTPUT_RESPONSE__KIND_CHUNK;
        resp.chunk = &chunk;
        n = jobworker__v1__output_response__get_packed_size(&resp);
        *ret = malloc(n);
        assert_non_null(*ret);
        assert_int_equal(jobworker__v1__output_response__pack(&resp, *ret), n);
        return n;
}

static void test_header_matches_protobuf_c(void **state) {
        static const Jobworker__V1__Stream streams[] = {
                JOBWORKER__V1__STREAM__STREAM_STDOUT,
                JOBWORKER__V1__STREAM__STREAM_STDERR,
                JOBWORKER__V1__STREAM__STREAM_UNSPECIFIED,
        };
        static const uint64_t offsets[] = { 0, 1, 127, 128, 16383, 16384, (uint64_t) 1 << 35, UINT64_MAX };
        static const size_t lens[] = { 1, 127, 128, 16383, 16384, 262144, 2097151, 2097152 };
        uint8_t *data = malloc(2097152);
        (void) state;

        assert_non_null(data);
        for (size_t i = 0; i < 2097152; i++)
                data[i] = (uint8_t) (i * 7 + 3);
        for (size_t a = 0; a < sizeof(streams) / sizeof(streams[0]); a++)
                for (size_t b = 0; b < sizeof(offsets) / sizeof(offsets[0]); b++)
                        for (size_t c = 0; c < sizeof(lens) / sizeof(lens[0]); c++) {
                                uint8_t hdr[WIRE_CHUNK_HEADER_MAX], *ref;
                                size_t h = wire_chunk_header(hdr, streams[a], offsets[b], lens[c]);
                                size_t n = pack_reference(streams[a], offsets[b], data, lens[c], &ref);
                                WireChunk w;

                                assert_true(h <= WIRE_CHUNK_HEADER_MAX);
                                assert_int_equal(h + lens[c], n);
                                assert_memory_equal(hdr, ref, h);
                                assert_memory_equal(data, ref + h, lens[c]);

                                /* ...and the in-place parser reads protobuf-c's bytes back. */
                                assert_true(wire_chunk_parse(ref, n, &w));
                                assert_int_equal(w.stream, streams[a]);
                                assert_true(w.offset == offsets[b]);
                                assert_int_equal(w.len, lens[c]);
                                assert_ptr_equal(w.data, ref + h);
                                free(ref);
                        }
        free(data);
}

static void test_parse_refuses_other_messages(void **state) {
        Jobworker__V1__JobStatus js = JOBWORKER__V1__JOB_STATUS__INIT;
        Jobworker__V1__OutputResponse resp = JOBWORKER__V1__OUTPUT_RESPONSE__INIT;
        uint8_t buf[256], hdr[WIRE_CHUNK_HEADER_MAX];
        WireChunk w;
        size_t n, h;
        (void) state;

        /* The end status is not a chunk. */
        js.job_id = (char *) "0123456789abcdef";
        js.state = JOBWORKER__V1__JOB_STATE__JOB_STATE_EXITED;
        resp.kind_case = JOBWORKER__V1__OUTPUT_RESPONSE__KIND_END;
        resp.end = &js;
        n = jobworker__v1__output_response__pack(&resp, buf);
        assert_false(wire_chunk_parse(buf, n, &w));

        /* Truncated: the length says more than there is. */
        h = wire_chunk_header(hdr, JOBWORKER__V1__STREAM__STREAM_STDOUT, 5, 10);
        memcpy(buf, hdr, h);
        memset(buf + h, 'x', 9);
        assert_false(wire_chunk_parse(buf, h + 9, &w));
        memset(buf + h, 'x', 10);
        assert_true(wire_chunk_parse(buf, h + 10, &w));

        /* An unknown field inside the chunk: left to protobuf-c. */
        buf[h + 10] = (4u << 3) | 0;
        buf[h + 11] = 1;
        buf[1] += 2;
        assert_false(wire_chunk_parse(buf, h + 12, &w));

        /* A varint that never ends. */
        memset(buf, 0xff, 16);
        assert_false(wire_chunk_parse(buf, 16, &w));
        assert_false(wire_chunk_parse(buf, 0, &w));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_header_matches_protobuf_c),
                cmocka_unit_test(test_parse_refuses_other_messages),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
