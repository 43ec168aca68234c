/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one hot message by hand: OutputResponse{chunk = 1: Chunk{stream = 1,
 * offset = 2, data = 3}}. The daemon writes the few header bytes in front of
 * chunk data that already sits in the slice gRPC will send (no packing copy);
 * jwctl reads chunks in place. Everything else goes through protobuf-c.
 * Both directions produce/accept exactly what protobuf-c does for this
 * message (tests/unit/test-wire.c checks that).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobworker/v1/jobworker.pb-c.h"

/* Bytes of the encoding in front of the data, at most. */
#define WIRE_CHUNK_HEADER_MAX 32u

/* Writes the encoding of OutputResponse{chunk{stream, offset, data of len
 * bytes}} up to the data into out; returns its length. */
size_t wire_chunk_header(uint8_t out[static WIRE_CHUNK_HEADER_MAX], Jobworker__V1__Stream stream, uint64_t offset,
                         size_t len);

typedef struct WireChunk {
        Jobworker__V1__Stream stream;
        uint64_t offset;
        const uint8_t *data; /* points into the parsed bytes */
        size_t len;
} WireChunk;

/* Parses p[0..n) as an OutputResponse holding a chunk. False for anything
 * else (an end status, unknown fields): let protobuf-c parse it. */
bool wire_chunk_parse(const uint8_t *p, size_t n, WireChunk *ret);
