/* SPDX-License-Identifier: MIT */

/*
 * Protobuf wire format of an Output chunk, by hand (see wire.h). Field keys
 * are (number << 3 | wire type); proto3 leaves out scalars equal to zero,
 * protobuf-c writes fields in number order.
 */

#include "wire/wire.h"

enum {
        KEY_RESPONSE_CHUNK = (1u << 3) | 2, /* OutputResponse.chunk, length-delimited */
        KEY_CHUNK_STREAM = (1u << 3) | 0,   /* Chunk.stream, varint */
        KEY_CHUNK_OFFSET = (2u << 3) | 0,   /* Chunk.offset, varint */
        KEY_CHUNK_DATA = (3u << 3) | 2,     /* Chunk.data, length-delimited */
};

static size_t varint_size(uint64_t v) {
        size_t n = 1;
        while (v >= 0x80) {
                v >>= 7;
                n++;
        }
        return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
        while (v >= 0x80) {
                *p++ = (uint8_t) (v | 0x80);
                v >>= 7;
        }
        *p++ = (uint8_t) v;
        return p;
}

size_t wire_chunk_header(uint8_t out[static WIRE_CHUNK_HEADER_MAX], Jobworker__V1__Stream stream, uint64_t offset,
                         size_t len) {
        size_t inner = 0;
        uint8_t *p = out;

        if (stream != 0)
                inner += 1 + varint_size((uint64_t) stream);
        if (offset != 0)
                inner += 1 + varint_size(offset);
        if (len != 0)
                inner += 1 + varint_size(len) + len;

        p = put_varint(p, KEY_RESPONSE_CHUNK);
        p = put_varint(p, inner);
        if (stream != 0) {
                p = put_varint(p, KEY_CHUNK_STREAM);
                p = put_varint(p, (uint64_t) stream);
        }
        if (offset != 0) {
                p = put_varint(p, KEY_CHUNK_OFFSET);
                p = put_varint(p, offset);
        }
        if (len != 0) {
                p = put_varint(p, KEY_CHUNK_DATA);
                p = put_varint(p, len);
        }
        return (size_t) (p - out);
}

static bool read_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *ret) {
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64 && *pos < n; shift += 7) {
                uint8_t b = p[(*pos)++];
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

bool wire_chunk_parse(const uint8_t *p, size_t n, WireChunk *ret) {
        size_t pos = 0;
        uint64_t key, len, v;

        if (!read_varint(p, n, &pos, &key) || key != KEY_RESPONSE_CHUNK || !read_varint(p, n, &pos, &len) ||
            len != n - pos)
                return false;
        *ret = (WireChunk) { .stream = JOBWORKER__V1__STREAM__STREAM_UNSPECIFIED };
        while (pos < n) {
                if (!read_varint(p, n, &pos, &key))
                        return false;
                switch (key) {
                case KEY_CHUNK_STREAM:
                        if (!read_varint(p, n, &pos, &v))
                                return false;
                        ret->stream = (Jobworker__V1__Stream) v;
                        break;
                case KEY_CHUNK_OFFSET:
                        if (!read_varint(p, n, &pos, &ret->offset))
                                return false;
                        break;
                case KEY_CHUNK_DATA:
                        if (!read_varint(p, n, &pos, &len) || len > n - pos)
                                return false;
                        ret->data = p + pos;
                        ret->len = (size_t) len;
                        pos += (size_t) len;
                        break;
                default:
                        return false;
                }
        }
        return true;
}
