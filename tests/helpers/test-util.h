/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the unit tests share about processes, file descriptors and
 * temporary directories: clocks, bounded waits, the FUSE stall tool, a
 * state directory and its removal. Header-only (static inline) and free of
 * project headers, so that a test linked with no library of the project
 * (test-fuse-stall) can use it too; engine helpers are in
 * engine-test-util.h. The functions that assert use cmocka: include it
 * (with its setjmp/stdarg/stddef prerequisites) first, or let this header.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

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

/* Waits up to timeout_ms for fd to become readable; 1 if it did, 0 if not. */
static inline int wait_readable(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;
        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        return r > 0;
}

/* Waits up to timeout_ms for our child pid to exit and reaps it; its wait
 * status, or -ETIMEDOUT (or -errno of pidfd_open). */
static inline int wait_exit(pid_t pid, int timeout_ms) {
        int pidfd = (int) syscall(SYS_pidfd_open, pid, 0), status;
        if (pidfd < 0)
                return -errno;
        int ready = wait_readable(pidfd, timeout_ms);
        close(pidfd);
        if (!ready || waitpid(pid, &status, 0) != pid)
                return -ETIMEDOUT;
        return status;
}

/* Starts tests/helpers/jw-fuse-stall (path in $JW_FUSE_STALL) on the
 * mountpoint dir and waits up to timeout_ms for its "ready" line: 0 and
 * *ret_pid (our child: stop it with SIGTERM, reap it with wait_exit()), or
 * the tool's exit status if it exited instead (77: no FUSE here), or
 * -errno. */
static inline int fuse_stall_start(const char *dir, int timeout_ms, pid_t *ret_pid) {
        const char *tool = getenv("JW_FUSE_STALL");
        int p[2], status;
        char line[16] = { 0 };

        if (!tool || pipe2(p, O_CLOEXEC) < 0)
                return -EINVAL;
        pid_t pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return -errno;
        }
        if (pid == 0) {
                dup2(p[1], STDOUT_FILENO);
                execl(tool, "jw-fuse-stall", dir, (char *) NULL);
                _exit(127);
        }
        close(p[1]);
        if (wait_readable(p[0], timeout_ms) && read(p[0], line, sizeof(line) - 1) > 0 &&
            strcmp(line, "ready\n") == 0) {
                close(p[0]);
                *ret_pid = pid;
                return 0;
        }
        close(p[0]);
        status = wait_exit(pid, timeout_ms);
        return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : -EIO;
}

/* A new empty directory /tmp/jw-test-<name>-XXXXXX, malloc()ed (free it
 * after rm_rf()). */
static inline char *make_state_dir(const char *name) {
        char tmpl[128];
        snprintf(tmpl, sizeof(tmpl), "/tmp/jw-test-%s-XXXXXX", name);
        char *d = mkdtemp(tmpl);
        assert_non_null(d);
        d = strdup(d);
        assert_non_null(d);
        return d;
}

/* Removes path and everything below it. */
static inline void rm_rf(const char *path) {
        char cmd[512];
        assert_true(strlen(path) < sizeof(cmd) - 16 && !strchr(path, '\''));
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
        assert_int_equal(system(cmd), 0);
}
