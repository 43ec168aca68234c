/* SPDX-License-Identifier: MIT */
#pragma once

/* Timing helpers shared by bench-engine and bench-rpc. */

#include <time.h>

/* Monotonic seconds. */
static inline double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* qsort() comparator for doubles. */
static inline int cmp_d(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}
