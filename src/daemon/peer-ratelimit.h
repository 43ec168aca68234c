/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Rate limits per peer (an IP address, a client identity) for log lines a
 * remote party can cause, so that one noisy client cannot flood the journal
 * nor crowd out what others cause. A fixed table: memory does not grow with
 * the number of peers; peers that hash to the same busy slot share a budget.
 * Thread-safe.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PEER_RATELIMIT_SLOTS 512u
#define PEER_RATELIMIT_KEY_MAX 64u

typedef struct PeerRateLimitSlot {
        char key[PEER_RATELIMIT_KEY_MAX];
        uint64_t begin_usec;
        unsigned count;
        unsigned suppressed;
} PeerRateLimitSlot;

typedef struct PeerRateLimit {
        unsigned burst;             /* lines per peer per interval */
        uint64_t interval_usec;
        pthread_mutex_t lock;
        PeerRateLimitSlot slots[PEER_RATELIMIT_SLOTS];
} PeerRateLimit;

void peer_ratelimit_init(PeerRateLimit *rl, unsigned burst, uint64_t interval_usec);
void peer_ratelimit_done(PeerRateLimit *rl);

/* May a line about key be logged at now_usec (CLOCK_MONOTONIC)? When a new
 * interval begins for key, *ret_suppressed is how many lines were held back
 * in the last one (report them once), else 0. */
bool peer_ratelimit_test(PeerRateLimit *rl, const char *key, uint64_t now_usec, unsigned *ret_suppressed);
