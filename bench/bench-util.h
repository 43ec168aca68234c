/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers shared by the bench programs: timing, sorting, the writer's
 * path and the removal of a scratch state directory. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The absolute path of the writer program named by arg (jobs start in their
 * home directory, so a relative one would not be found), malloc()ed; NULL
 * after saying why on stderr. */
static inline char *writer_path(const char *arg) {
        char *p = realpath(arg, NULL);
        if (!p)
                fprintf(stderr, "%s: %s\n", arg, strerror(errno));
        return p;
}

/* Removes the scratch directory dir and all below it; says so on stderr if
 * it cannot. */
static inline void rm_rf(const char *dir) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", dir);
}
