/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Upgrading in place: the daemon execve()s the new binary installed over
 * its own, keeping its PID (reexec.c). Main thread only, after every other
 * thread has ended.
 */

#include <stdbool.h>
#include <stddef.h>

#include "daemon/fdstore.h"

/* The path of our binary when it was replaced on disk (dpkg renames the
 * new file over the old one: /proc/self/exe then says "(deleted)"); NULL
 * when it was not, or cannot be told. The caller frees it. */
char *reexec_replaced_binary(void);

/* Execs path with argv, passing the listening sockets and the bundles of
 * kept fds as a service manager would (LISTEN_FDS, LISTEN_FDNAMES,
 * LISTEN_PID: the new image reads them exactly as at a start). Returns only
 * on failure, -errno; the fds are then closed. */
int reexec_exec(const char *path, char *const *argv, const int *listen_fds, size_t n_listen,
                const FdStoreHandback *kept);
