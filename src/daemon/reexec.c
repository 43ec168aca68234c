/* SPDX-License-Identifier: MIT */

/*
 * Upgrade in place: exec the new binary, keep the PID.
 *
 * The one idea: an execve() keeps the process and every fd not marked
 * CLOEXEC, so the jobs stay our children (their exit codes are exact on
 * every kernel, 6.1 included) and the new image starts exactly as after a
 * restart by systemd: listening sockets and the kept bundles arrive in
 * LISTEN_FDS with their names, and the engine adopts the running jobs from
 * them (core/keeper.c). Nothing else is handed over: the state directory
 * and the bundles are the whole truth. Why not only restarts: systemd
 * waits for the old PID to exit before it starts a new one, and a new
 * process is no longer the jobs' parent, so on Linux before 6.15 (no
 * PIDFD_INFO_EXIT) the codes of jobs that end would be lost. Under
 * systemd the upgrade arrives as a reload (the package's postinst runs
 * `systemctl reload jobworker`): RELOADING=1 before the exec, READY=1 from
 * the new image, the main PID unchanged.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/reexec.h"
#include "shared/macro.h"

#define DELETED_SUFFIX " (deleted)"

char *reexec_replaced_binary(void) {
        char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        size_t sl = strlen(DELETED_SUFFIX);

        if (n <= 0)
                return NULL;
        buf[n] = 0;
        if ((size_t) n <= sl || strcmp(buf + n - sl, DELETED_SUFFIX) != 0)
                return NULL;
        buf[n - sl] = 0;
        /* The new binary must be there, where the old one was. */
        if (access(buf, X_OK) < 0)
                return NULL;
        return strdup(buf);
}

/* Appends "name" to names (":"-separated); -ENOBUFS past size. */
static int names_add(char *names, size_t size, size_t *len, const char *name) {
        int k = snprintf(names + *len, size - *len, "%s%s", *len ? ":" : "", name);
        if (k < 0 || (size_t) k >= size - *len)
                return -ENOBUFS;
        *len += (size_t) k;
        return 0;
}

int reexec_exec(const char *path, char *const *argv, const int *listen_fds, size_t n_listen,
                const FdStoreHandback *kept) {
        size_t n = n_listen + kept->n, len = 0;
        _cleanup_free_ int *high = calloc(MAX(n, (size_t) 1), sizeof(int));
        _cleanup_free_ char *names = malloc(128 * 1024);
        char num[32];
        int r = 0;

        if (!high || !names)
                return -ENOMEM;
        names[0] = 0;
        /* First above every target number, so that no dup2() below
         * overwrites an fd still to be moved. */
        for (size_t i = 0; i < n; i++) {
                int fd = i < n_listen ? listen_fds[i] : kept->fds[i - n_listen];
                high[i] = fcntl(fd, F_DUPFD_CLOEXEC, (int) (3 + n));
                if (high[i] < 0)
                        return -errno;
                r = names_add(names, 128 * 1024, &len, i < n_listen ? "listen" : kept->names[i - n_listen]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n; i++) {
                /* dup2() clears CLOEXEC on the new fd. */
                if (dup2(high[i], (int) (3 + i)) < 0)
                        return -errno;
                safe_close(high[i]);
                high[i] = -1;
        }
        snprintf(num, sizeof(num), "%zu", n);
        if (setenv("LISTEN_FDS", num, 1) < 0 || setenv("LISTEN_FDNAMES", names, 1) < 0)
                return -errno;
        snprintf(num, sizeof(num), "%d", (int) getpid());
        if (setenv("LISTEN_PID", num, 1) < 0)
                return -errno;
        execv(path, argv);
        return -errno;
}
