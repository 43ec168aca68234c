/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's listening sockets: the ones systemd passed (socket
 * activation), else the addresses of --listen / listen =. Every function
 * logs what went wrong, naming the address. Main thread.
 */

#include <stddef.h>
#include <sys/socket.h>

#include "daemon/config.h"
#include "daemon/fdstore.h"

#define LISTEN_FDS_MAX 64

/* "192.0.2.1:4711", "[2001:db8::1]:4711", or "(family N)". */
void sockaddr_format(const struct sockaddr *sa, char *buf, size_t size);

/* Opens listening sockets (CLOEXEC) for "HOST:PORT", "[V6]:PORT" or
 * "*:PORT" (all addresses, one dual-stack socket) and appends them to fds
 * (at most max in all). Returns how many were opened, or -errno; on
 * failure the fds appended before stay in fds (the caller owns them). */
int listen_on(const char *address, int *fds, size_t *n_fds, size_t max);

/* The sockets from systemd (made CLOEXEC), or else those of c->listen;
 * stored fds systemd handed back (names "jobs-*") go to handback.
 * fds must hold LISTEN_FDS_MAX. *ret_n is set also on failure: the caller
 * owns and closes the fds counted there either way. */
int listen_open_all(const Config *c, int *fds, size_t *ret_n, FdStoreHandback *handback);
