/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A hash map from NUL-terminated strings to pointers: open addressing with
 * linear probing, grown at 1/2 load, deletion by backward shift (no
 * tombstones), so lookups stay O(1) however many entries came and went.
 *
 * Keys are borrowed: the caller keeps each key's string alive and unchanged
 * while it is in the map (usually the key points into the value). Not
 * thread-safe; the hash is not seeded, so keys must come from trusted or
 * authenticated sources (policy users, certificate names), not anyone.
 */

#include <stddef.h>
#include <stdint.h>

typedef struct StrMapEntry {
        const char *key;        /* NULL: empty */
        uint64_t hash;
        void *value;
} StrMapEntry;

typedef struct StrMap {
        StrMapEntry *entries;
        size_t n, cap;          /* cap: 0 or a power of two */
} StrMap;

#define STRMAP_INIT ((StrMap) {})

/* Adds key -> value. -EEXIST if key is there (unchanged), -ENOMEM. */
int strmap_put(StrMap *m, const char *key, void *value);
/* The value of key, or NULL. */
void *strmap_get(const StrMap *m, const char *key);
/* Removes key; returns its value, or NULL if it was not there. */
void *strmap_remove(StrMap *m, const char *key);
/* Frees the table (not the keys or values); safe twice. */
void strmap_done(StrMap *m);
