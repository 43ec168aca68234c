/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Deterministic test data addressable by offset: byte i of stream `seed` is
 * a byte of splitmix64(seed, i / 8). The writer (jw-testprog) and the
 * checkers (tests) produce the same bytes without sharing state.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline uint64_t testdata_word(uint64_t seed, uint64_t index) {
        uint64_t z = seed * 0x9e3779b97f4a7c15ull + index * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static inline void testdata_fill(uint64_t seed, uint64_t offset, uint8_t *buf, size_t n) {
        for (size_t i = 0; i < n;) {
                uint64_t pos = offset + i, w = testdata_word(seed, pos / 8);
                for (unsigned b = (unsigned) (pos % 8); b < 8 && i < n; b++, i++)
                        buf[i] = (uint8_t) (w >> (8 * b));
        }
}

/* True if buf equals the stream's bytes at offset. */
static inline bool testdata_check(uint64_t seed, uint64_t offset, const uint8_t *buf, size_t n) {
        for (size_t i = 0; i < n;) {
                uint64_t pos = offset + i, w = testdata_word(seed, pos / 8);
                for (unsigned b = (unsigned) (pos % 8); b < 8 && i < n; b++, i++)
                        if (buf[i] != (uint8_t) (w >> (8 * b)))
                                return false;
        }
        return true;
}
