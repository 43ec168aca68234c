/* SPDX-License-Identifier: MIT */

/*
 * The service manager's fd store, as the daemon uses it.
 *
 * The one idea: the engine decides what to keep (core/keeper.c: bundles
 * named "jobs-N"); this file only talks sd_notify. Every fd is stored with
 * FDPOLL=0: a bundle whose writer is gone reports POLLHUP, and systemd 252
 * would otherwise drop exactly the fds a crash needs kept (sd_notify(3)).
 * The unit sets FileDescriptorStoreMax= (jobworker.service).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "daemon/fdstore.h"
#include "shared/macro.h"

int fdstore_handback_add(FdStoreHandback *h, int fd, const char *name) {
        int *fds = realloc(h->fds, (h->n + 1) * sizeof(int));
        char **names, *copy = strdup(name ?: "");

        if (fds)
                h->fds = fds;
        names = fds && copy ? realloc(h->names, (h->n + 1) * sizeof(char *)) : NULL;
        if (!names) {
                free(copy);
                safe_close(fd);
                return -ENOMEM;
        }
        h->names = names;
        h->fds[h->n] = fd;
        h->names[h->n] = copy;
        h->n++;
        return 0;
}

void fdstore_handback_done(FdStoreHandback *h) {
        for (size_t i = 0; i < h->n; i++) {
                safe_close(h->fds[i]);
                free(h->names[i]);
        }
        free(h->fds);
        free(h->names);
        *h = (FdStoreHandback) {};
}

bool fdstore_available(void) {
        const char *s = getenv("NOTIFY_SOCKET");
        return s && *s;
}

int fdstore_store(void *userdata, int fd, const char *name) {
        char msg[128];
        int r;

        snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name);
        r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
        if (r < 0)
                return r;
        return r == 0 ? -ENXIO : 0; /* 0: no NOTIFY_SOCKET */
}

int fdstore_remove(void *userdata, const char *name) {
        char msg[128];
        int r;

        snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
        r = sd_notify(0, msg);
        if (r < 0)
                return r;
        return r == 0 ? -ENXIO : 0;
}
