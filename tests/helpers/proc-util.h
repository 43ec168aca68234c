/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers the engine and cgroup tests share. */

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

static inline uint64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* True once pid no longer runs; a zombie waiting for init to reap it counts as gone. */
static inline bool pid_gone(pid_t pid) {
        char path[64], buf[512];
        if (kill(pid, 0) < 0 && errno == ESRCH)
                return true;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return true;
        bool zombie = fgets(buf, sizeof(buf), f) && strstr(buf, ") Z ");
        fclose(f);
        return zombie;
}
