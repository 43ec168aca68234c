/* SPDX-License-Identifier: MIT */

/*
 * Per-peer log rate limits (see peer-ratelimit.h). The one idea: a slot per
 * hash of the peer, each a fixed-window counter; a different peer taking
 * over a slot starts a fresh window, so nobody inherits another's silence
 * for long.
 */

#include <string.h>

#include "daemon/peer-ratelimit.h"

void peer_ratelimit_init(PeerRateLimit *rl, unsigned burst, uint64_t interval_usec) {
        memset(rl->slots, 0, sizeof(rl->slots));
        rl->burst = burst;
        rl->interval_usec = interval_usec;
        pthread_mutex_init(&rl->lock, NULL);
}

void peer_ratelimit_done(PeerRateLimit *rl) {
        pthread_mutex_destroy(&rl->lock);
}

static uint32_t hash(const char *s) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 16777619u;
        return h;
}

bool peer_ratelimit_test(PeerRateLimit *rl, const char *key, uint64_t now_usec, unsigned *ret_suppressed) {
        PeerRateLimitSlot *s = &rl->slots[hash(key) % PEER_RATELIMIT_SLOTS];
        unsigned suppressed = 0;
        bool pass;

        pthread_mutex_lock(&rl->lock);
        if (strncmp(s->key, key, sizeof(s->key) - 1) != 0) {
                /* Another peer had this slot: it is ours now, with a new window
                 * (its suppressed lines were at most one interval's worth). */
                strncpy(s->key, key, sizeof(s->key) - 1);
                s->key[sizeof(s->key) - 1] = 0;
                s->begin_usec = now_usec;
                s->count = 0;
                s->suppressed = 0;
        } else if (now_usec - s->begin_usec >= rl->interval_usec) {
                suppressed = s->suppressed;
                s->begin_usec = now_usec;
                s->count = 0;
                s->suppressed = 0;
        }
        pass = s->count < rl->burst;
        if (pass)
                s->count++;
        else
                s->suppressed++;
        pthread_mutex_unlock(&rl->lock);

        *ret_suppressed = suppressed;
        return pass;
}
