/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A service manager's fd store played in-process, for the tests of jobs
 * that outlive their engine (test-engine-adopt, test-job-signal): a child
 * process runs an engine whose EngineFdStore sends every stored fd to this
 * process over a datagram socket (child_store/child_remove, userdata: the
 * socket), collect() gathers what was stored and not removed, and
 * handback() makes of it the store the next engine is given. Header-only;
 * engine thread: the test's own.
 */

#include <string.h>
#include <sys/socket.h>

#include "core/engine.h"

#define MAX_KEPT 8

/* The child's side: every FDSTORE goes to the parent as one datagram, the
 * name as data and the fd as SCM_RIGHTS ("-name" for a removal). */
static inline int child_store(void *userdata, int fd, const char *name) {
        int sock = *(int *) userdata;
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = (void *) name, .iov_len = strlen(name) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        return sendmsg(sock, &mh, 0) < 0 ? -errno : 0;
}

static inline int child_remove(void *userdata, const char *name) {
        char msg[64];
        snprintf(msg, sizeof(msg), "-%s", name);
        return send(*(int *) userdata, msg, strlen(msg), 0) < 0 ? -errno : 0;
}

typedef struct Kept {
        int fds[MAX_KEPT];
        char names[MAX_KEPT][32];
        const char *name_ptrs[MAX_KEPT];
        size_t n;
} Kept;

/* The parent's side: what the child stored and did not remove. */
static inline void collect(int sock, Kept *k) {
        for (;;) {
                union {
                        struct cmsghdr h;
                        uint8_t buf[CMSG_SPACE(sizeof(int))];
                } control;
                char name[32] = "";
                struct iovec iov = { .iov_base = name, .iov_len = sizeof(name) - 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                                     .msg_controllen = sizeof(control.buf) };
                ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                struct cmsghdr *c;
                if (n <= 0)
                        return;
                name[n] = 0;
                if (name[0] == '-') {
                        for (size_t i = 0; i < k->n; i++)
                                if (strcmp(k->names[i], name + 1) == 0)
                                        k->names[i][0] = 0; /* removed */
                        continue;
                }
                c = CMSG_FIRSTHDR(&mh);
                assert_non_null(c);
                assert_true(k->n < MAX_KEPT);
                memcpy(&k->fds[k->n], CMSG_DATA(c), sizeof(int));
                snprintf(k->names[k->n], sizeof(k->names[k->n]), "%s", name);
                k->n++;
        }
}

static inline int noop_store(void *userdata, int fd, const char *name) {
        return 0;
}

static inline int noop_remove(void *userdata, const char *name) {
        return 0;
}

/* What the store hands back to the next engine; that engine's own stores
 * go nowhere (the test needs only what the dead one kept). */
static inline EngineFdStore handback(Kept *k) {
        size_t n = 0;
        for (size_t i = 0; i < k->n; i++)
                if (k->names[i][0]) {
                        k->fds[n] = k->fds[i];
                        memmove(k->names[n], k->names[i], sizeof(k->names[n]));
                        k->name_ptrs[n] = k->names[n];
                        n++;
                }
        k->n = n;
        return (EngineFdStore) { .store = noop_store, .remove = noop_remove, .fds = k->fds, .names = k->name_ptrs,
                                 .n = k->n };
}

