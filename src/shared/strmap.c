/* SPDX-License-Identifier: MIT */
/*
 * String-keyed hash map (see strmap.h).
 *
 * The one idea: an entry lives in the first free slot at or after its home
 * slot, and removal shifts later entries of the same run back, so a probe
 * may stop at the first empty slot without tombstones.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "shared/strmap.h"

/* FNV-1a, 64 bit. */
static uint64_t hash_string(const char *s) {
        uint64_t h = 0xcbf29ce484222325ull;

        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= 0x100000001b3ull;
        }
        return h;
}

static size_t find_slot(const StrMap *m, const char *key, uint64_t h, bool *ret_found) {
        size_t mask = m->cap - 1, i = (size_t) h & mask;

        for (;; i = (i + 1) & mask) {
                const StrMapEntry *e = &m->entries[i];
                if (!e->key) {
                        *ret_found = false;
                        return i;
                }
                if (e->hash == h && strcmp(e->key, key) == 0) {
                        *ret_found = true;
                        return i;
                }
        }
}

static int grow(StrMap *m) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        StrMapEntry *old = m->entries;
        size_t old_cap = m->cap;

        if (cap < m->cap)
                return -ENOMEM;
        m->entries = calloc(cap, sizeof(StrMapEntry));
        if (!m->entries) {
                m->entries = old;
                return -ENOMEM;
        }
        m->cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
                bool found;
                if (old[i].key)
                        m->entries[find_slot(m, old[i].key, old[i].hash, &found)] = old[i];
        }
        free(old);
        return 0;
}

int strmap_put(StrMap *m, const char *key, void *value) {
        uint64_t h = hash_string(key);
        bool found;
        size_t i;

        if ((m->n + 1) * 2 > m->cap) {
                int r = grow(m);
                if (r < 0)
                        return r;
        }
        i = find_slot(m, key, h, &found);
        if (found)
                return -EEXIST;
        m->entries[i] = (StrMapEntry) { .key = key, .hash = h, .value = value };
        m->n++;
        return 0;
}

void *strmap_get(const StrMap *m, const char *key) {
        bool found;
        size_t i;

        if (!m->cap)
                return NULL;
        i = find_slot(m, key, hash_string(key), &found);
        return found ? m->entries[i].value : NULL;
}

void *strmap_remove(StrMap *m, const char *key) {
        size_t mask = m->cap - 1, i, j;
        void *value;
        bool found;

        if (!m->cap)
                return NULL;
        i = find_slot(m, key, hash_string(key), &found);
        if (!found)
                return NULL;
        value = m->entries[i].value;
        /* Backward shift: move up each later entry of the run whose home
         * slot does not lie in (i, j]. */
        for (j = (i + 1) & mask; m->entries[j].key; j = (j + 1) & mask) {
                size_t home = (size_t) m->entries[j].hash & mask;
                bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
                if (stays)
                        continue;
                m->entries[i] = m->entries[j];
                i = j;
        }
        m->entries[i] = (StrMapEntry) {};
        m->n--;
        return value;
}

void strmap_done(StrMap *m) {
        free(m->entries);
        *m = STRMAP_INIT;
}
