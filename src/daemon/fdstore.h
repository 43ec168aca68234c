/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's side of the service manager's file-descriptor store: what
 * the previous daemon stored, handed back at start (LISTEN_FDS after the
 * sockets), and the EngineFdStore callbacks that store and drop fds
 * (sd_pid_notify_with_fds FDSTORE=1 / FDSTOREREMOVE=1). The callbacks are
 * stateless and may run on any thread.
 */

#include <stdbool.h>
#include <stddef.h>

#include "core/engine.h"

typedef struct FdStoreHandback {
        int *fds;
        char **names;
        size_t n;
} FdStoreHandback;

/* Adds one handed-back fd (owned from now on) under a copy of name. */
int fdstore_handback_add(FdStoreHandback *h, int fd, const char *name);
/* Closes what nobody took, frees the arrays. */
void fdstore_handback_done(FdStoreHandback *h);

/* True where a service manager listens (NOTIFY_SOCKET is set): only then
 * can running jobs outlive the daemon. */
bool fdstore_available(void);

/* The callbacks for EngineFdStore (userdata unused). */
int fdstore_store(void *userdata, int fd, const char *name);
int fdstore_remove(void *userdata, const char *name);
