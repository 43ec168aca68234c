/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one clock reading of the project: CLOCK_MONOTONIC (or another clock)
 * in microseconds. Every deadline, rate limit and timer compares values of
 * this function, so they all count alike.
 */

#include <stdint.h>
#include <time.h>

static inline uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}
