/* SPDX-License-Identifier: MIT */
/*
 * One bridge connection's state machine (see bridge.c for the thread around
 * it): handshake → open (GnuTLS pumps the bytes) or kernel (gRPC has the TCP
 * socket) → freed; a refused handshake lingers until the client closes.
 *
 * The one idea: a connection only ever waits for what it asked the ring for
 * (one poll per fd and direction, one handshake deadline), and every request
 * it queues either gets an entry or fails the connection at once — closed
 * with the reason told through ops.refused, never left waiting for a
 * completion that cannot come. Requests point at nothing inside the Conn:
 * the deadline's timespec is the bridge's, so freeing a connection whose
 * requests are queued but not yet submitted is safe.
 */

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/macro.h"
#include "tls/bridge-internal.h"
#include "tls/ktls.h"

#define BRIDGE_PUMP_BUDGET (1024u * 1024u) /* bytes per direction per turn */

/* The ring refused a request for c (its completion queue overflows): c
 * cannot go on without it, so it ends here, visibly. */
static void conn_fail_ring(TlsBridge *b, Conn *c, int error) {
        char reason[128];

        snprintf(reason, sizeof reason, "connection closed: cannot queue a ring request: %s", strerror(-error));
        refused(b, c->peer, reason);
        conn_free(b, c);
}

/* 0, or -errno after c was freed (the caller must not touch c). */
static int arm_poll(TlsBridge *b, Conn *c, unsigned op) {
        static const struct {
                bool tcp;
                unsigned events;
        } what[N_POLL_OPS] = {
                [OP_TCP_IN - OP_TCP_IN] = { true, POLLIN },
                [OP_TCP_OUT - OP_TCP_IN] = { true, POLLOUT },
                [OP_PLAIN_IN - OP_TCP_IN] = { false, POLLIN },
                [OP_PLAIN_OUT - OP_TCP_IN] = { false, POLLOUT },
                [OP_TCP_HUP - OP_TCP_IN] = { true, 0 }, /* POLLHUP and POLLERR come anyway */
        };
        unsigned i = op - OP_TCP_IN;
        struct io_uring_sqe *sqe;
        int r = -EBUSY;

        if (c->armed[i])
                return 0;
        sqe = ring_get_sqe(&b->ring, &r);
        if (!sqe) {
                conn_fail_ring(b, c, r);
                return r;
        }
        io_uring_prep_poll_add(sqe, what[i].tcp ? c->tcp_fd : c->plain_fd, what[i].events);
        io_uring_sqe_set_data64(sqe, ring_ud(op, c->slot, c->gen));
        c->armed[i] = true;
        return 0;
}

/* 0, or -errno after c was freed. The timespec is the bridge's: it lives as
 * long as the ring, whenever this request is submitted. */
static int arm_timeout(TlsBridge *b, Conn *c) {
        int r = -EBUSY;
        struct io_uring_sqe *sqe = ring_get_sqe(&b->ring, &r);

        if (!sqe) {
                conn_fail_ring(b, c, r);
                return r;
        }
        io_uring_prep_timeout(sqe, &b->handshake_timeout, 0, 0);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_TIMEOUT, c->slot, c->gen));
        c->timeout_armed = true;
        return 0;
}

/* Queues the removal of c's request with user_data ud; false if the ring
 * refused (the request then completes on its own; its completion is stale). */
static bool queue_cancel(TlsBridge *b, bool timeout, uint64_t ud) {
        struct io_uring_sqe *sqe = ring_get_sqe(&b->ring, NULL);

        if (!sqe)
                return false;
        if (timeout)
                io_uring_prep_timeout_remove(sqe, ud, 0);
        else
                io_uring_prep_poll_remove(sqe, ud);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_IGNORE, 0, 0));
        return true;
}

/* A deadline that could not be removed fires later and finds the connection
 * established (ignored) or gone (stale): harmless, so not reported. */
static void disarm_timeout(TlsBridge *b, Conn *c) {
        if (!c->timeout_armed)
                return;
        (void) queue_cancel(b, true, ring_ud(OP_TIMEOUT, c->slot, c->gen));
        c->timeout_armed = false;
}

static void runq_add(TlsBridge *b, Conn *c) {
        if (!c->rq.linked)
                list_append(&b->runq, &c->rq);
}

void conn_run_queue(TlsBridge *b) {
        /* one turn for each connection queued now; those queued again wait for the next round */
        ListNode *tail = b->runq.last;

        while (b->runq.first) {
                ListNode *n = b->runq.first;
                Conn *c = list_entry(n, Conn, rq);
                bool last = n == tail;
                list_unlink(&b->runq, n);
                conn_process(b, c);
                if (last)
                        break;
        }
}

/* Ends a connection: cancels its pending ring operations, closes its fds,
 * tells the owner if gRPC had it, frees the slot (new generation). A pending
 * poll holds a reference on its file: a cancel the ring refuses leaves the
 * socket open until the poll fires or the bridge ends, so it is reported. */
void conn_free(TlsBridge *b, Conn *c) {
        bool lost = false;

        for (unsigned i = 0; i < N_POLL_OPS; i++)
                if (c->armed[i] && !queue_cancel(b, false, ring_ud(OP_TCP_IN + i, c->slot, c->gen)))
                        lost = true;
        if (lost)
                refused(b, c->peer, "cannot cancel a poll (ring full): the socket closes late");
        disarm_timeout(b, c);
        list_unlink(&b->runq, &c->rq);

        if (c->admitted == ADMITTED_HANDSHAKE)
                admission_handshake_end(&b->admission, &c->source);
        else if (c->admitted == ADMITTED_ESTABLISHED)
                admission_established_end(&b->admission, c->identity);
        free(c->identity);
        tls_pump_done(&c->pump);
        tls_session_free(c->tls);
        safe_close(c->tcp_fd);
        safe_close(c->plain_fd);
        /* Out of the count before closed() is heard: its listener may ask
         * for the count at once (the daemon's STATUS=) and must not see a
         * connection that is gone. */
        ring_slot_free(&b->conns, c->slot);
        __atomic_sub_fetch(&b->n_conns, 1, __ATOMIC_RELAXED);
        if ((c->state == CONN_OPEN || c->state == CONN_KERNEL) && b->ops.closed)
                b->ops.closed(b->userdata, c->id, c->grpc_fd_number);
        if (b->config.debug_poison_freed) {
                memset(c, 0xa5, sizeof *c);
                __asm__ volatile("" : : "r"(c) : "memory"); /* keep the store: free() follows */
        }
        free(c);
}

/* The handshake failed and the alert went out: stop sending, and read until the
 * client closes (or the deadline), so closing does not turn into a reset that
 * could destroy the alert before the client read it. */
static void conn_linger(TlsBridge *b, Conn *c) {
        c->state = CONN_LINGER;
        c->tls = tls_session_free(c->tls);
        if (!c->timeout_armed || shutdown(c->tcp_fd, SHUT_WR) < 0) {
                conn_free(b, c);
                return;
        }
        (void) arm_poll(b, c, OP_TCP_IN);
}

static void conn_drain(TlsBridge *b, Conn *c) {
        char buf[4096];

        for (;;) {
                ssize_t n = recv(c->tcp_fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n > 0)
                        continue;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        (void) arm_poll(b, c, OP_TCP_IN);
                        return;
                }
                conn_free(b, c); /* EOF or error */
                return;
        }
}

/* Moves fd into the rotating high range: the new fd, or -errno (fd is closed
 * then). No fallback to the low number: gRPC names a connection by its fd
 * number, and low numbers are the ones the kernel reuses at once. When the
 * whole range is taken (a daemon that took over thousands of running jobs
 * holds their fds at the lowest numbers, e.g. 18,840 for 6,280 jobs), the
 * first free number above it is used: still not a low one. */
static int move_to_high_range(TlsBridge *b, int fd) {
        int error = -EMFILE;

        for (int attempt = 0; attempt < 2; attempt++) {
                int nfd = fcntl(fd, F_DUPFD_CLOEXEC, b->next_high_fd);
                bool full = nfd >= BRIDGE_HIGH_FD_BASE + BRIDGE_HIGH_FD_SPAN &&
                            b->next_high_fd == BRIDGE_HIGH_FD_BASE;
                if (nfd >= 0 && (nfd < BRIDGE_HIGH_FD_BASE + BRIDGE_HIGH_FD_SPAN || full)) {
                        close(fd);
                        b->next_high_fd = nfd + 1 < BRIDGE_HIGH_FD_BASE + BRIDGE_HIGH_FD_SPAN ? nfd + 1
                                                                                              : BRIDGE_HIGH_FD_BASE;
                        return nfd;
                }
                if (nfd < 0)
                        error = negative_errno();
                safe_close(nfd);
                if (b->next_high_fd == BRIDGE_HIGH_FD_BASE)
                        break;
                b->next_high_fd = BRIDGE_HIGH_FD_BASE; /* wrap around once */
        }
        close(fd);
        return error;
}

/* The gRPC fd could not be moved to the high range: refuse c. */
static void conn_refuse_low_fd(TlsBridge *b, Conn *c, int error) {
        char reason[128];

        snprintf(reason, sizeof reason, "cannot move the gRPC fd into the high range: %s", strerror(-error));
        refused(b, c->peer, reason);
        conn_free(b, c);
}

static void report_kernel_tls(TlsBridge *b, int error) {
        if (b->ktls_reported)
                return;
        b->ktls_reported = true;
        if (b->ops.kernel_tls)
                b->ops.kernel_tls(b->userdata, error);
}

/* Hands a verified connection to gRPC with its records in the kernel.
 * False: not possible for this connection (it goes on in GnuTLS); true: done
 * (established, or refused and freed). */
static bool conn_establish_kernel(TlsBridge *b, Conn *c) {
        char reason[160];
        bool broken;
        int r, dup_fd, grpc_fd;

        if (tls_session_pending(c->tls) > 0)
                return false; /* input already read into user space: only GnuTLS can go on */
        r = ktls_enable(tls_session_gnutls(c->tls), c->tcp_fd, &broken);
        if (r < 0 && !broken) {
                if (ktls_error_is_permanent(r)) {
                        b->ktls_off = true;
                        report_kernel_tls(b, r);
                }
                return false;
        }
        dup_fd = r < 0 ? -1 : fcntl(c->tcp_fd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0) {
                /* Half in the kernel, or no fd for gRPC: the session cannot go on. */
                snprintf(reason, sizeof reason, "cannot hand the TLS session to the kernel: %s",
                         strerror(r < 0 ? -r : errno));
                refused(b, c->peer, reason);
                conn_free(b, c);
                return true;
        }
        report_kernel_tls(b, 0);
        disarm_timeout(b, c);
        grpc_fd = move_to_high_range(b, dup_fd);
        if (grpc_fd < 0) {
                conn_refuse_low_fd(b, c, grpc_fd);
                return true;
        }
        c->grpc_fd_number = grpc_fd;
        c->state = CONN_KERNEL;
        if (!b->ops.accepted) {
                close(grpc_fd);
                conn_free(b, c);
                return true;
        }
        b->ops.accepted(b->userdata, c->id, grpc_fd, tls_session_identity(c->tls), c->peer);
        c->tls = tls_session_free(c->tls); /* the kernel has the state now */
        (void) arm_poll(b, c, OP_TCP_HUP);
        return true;
}

/* Our plaintext end: connected to gRPC by the owner (connect_inner: gRPC
 * knows the connection by a name carrying its never-reused id), or one end
 * of a socketpair whose other end, moved into the high range, goes to
 * accepted() in *ret_grpc_fd. -errno: refuse the connection (*ret_high_range
 * says whether the move into the high range was what failed). */
static int conn_plain_fd(TlsBridge *b, Conn *c, int *ret_grpc_fd, bool *ret_high_range) {
        int sv[2], r;

        *ret_grpc_fd = -1;
        *ret_high_range = false;
        if (b->ops.connect_inner)
                return b->ops.connect_inner(b->userdata, c->id, tls_session_identity(c->tls), c->peer);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
                return negative_errno();
        r = move_to_high_range(b, sv[1]);
        if (r < 0) {
                close(sv[0]);
                *ret_high_range = true;
                return r;
        }
        *ret_grpc_fd = r;
        return sv[0];
}

/* The handshake named the client: move c from the handshaking population to
 * the established one, or refuse it (access_denied: the client learns that
 * it was refused after authenticating, not that the network failed) and let
 * it linger, still counted as handshaking, until the client closes. False
 * when c was refused. */
static bool conn_admit_identity(TlsBridge *b, Conn *c) {
        const char *identity = tls_session_identity(c->tls) ?: "";
        AdmissionVerdict verdict;
        char reason[256];
        char *copy;

        verdict = admission_established_begin(&b->admission, identity);
        copy = verdict == ADMISSION_OK ? strdup(identity) : NULL;
        if (verdict == ADMISSION_OK && !copy) {
                admission_established_end(&b->admission, identity);
                verdict = ADMISSION_NO_MEMORY;
        }
        if (verdict != ADMISSION_OK) {
                snprintf(reason, sizeof reason, "client %.64s: %s", identity, admission_verdict_reason(verdict));
                refused(b, c->peer, reason);
                (void) gnutls_alert_send(tls_session_gnutls(c->tls), GNUTLS_AL_FATAL, GNUTLS_A_ACCESS_DENIED);
                conn_linger(b, c);
                return false;
        }
        admission_handshake_end(&b->admission, &c->source);
        c->identity = copy;
        c->admitted = ADMITTED_ESTABLISHED;
        return true;
}

static void conn_establish(TlsBridge *b, Conn *c) {
        int plain_fd, grpc_fd;
        bool high_range;

        if (!conn_admit_identity(b, c))
                return;
        if (!b->ktls_off && conn_establish_kernel(b, c))
                return;

        plain_fd = conn_plain_fd(b, c, &grpc_fd, &high_range);
        if (plain_fd < 0 && high_range) {
                conn_refuse_low_fd(b, c, plain_fd);
                return;
        }
        if (plain_fd < 0) {
                char reason[128];
                snprintf(reason, sizeof reason, "cannot connect to gRPC: %s", strerror(-plain_fd));
                refused(b, c->peer, reason);
                conn_free(b, c);
                return;
        }
        disarm_timeout(b, c);
        c->plain_fd = plain_fd;
        c->grpc_fd_number = grpc_fd;
        c->state = CONN_OPEN;
        tls_pump_init(&c->pump, c->tls, c->tcp_fd, c->plain_fd);

        if (b->ops.accepted)
                b->ops.accepted(b->userdata, c->id, grpc_fd, tls_session_identity(c->tls), c->peer);
        else
                safe_close(grpc_fd);
        conn_process(b, c);
}

static void conn_handshake(TlsBridge *b, Conn *c) {
        int r = tls_session_handshake(c->tls);

        if (r == -EAGAIN && !tls_session_wants_write(c->tls) && tls_session_pending(c->tls) > 0) {
                runq_add(b, c); /* input already buffered: go on next turn */
                return;
        }
        if (r == -EAGAIN) {
                (void) arm_poll(b, c, tls_session_wants_write(c->tls) ? OP_TCP_OUT : OP_TCP_IN);
                return;
        }
        if (r == -EPROTO) {
                refused(b, c->peer, tls_session_failure_reason(c->tls) ?: "TLS handshake failed");
                conn_linger(b, c);
                return;
        }
        if (r < 0) {
                refused(b, c->peer, strerror(-r));
                conn_free(b, c);
                return;
        }
        conn_establish(b, c);
}

static void conn_pump(TlsBridge *b, Conn *c) {
        static const struct {
                unsigned mask, op;
        } waits[] = {
                { TLS_PUMP_TCP_IN, OP_TCP_IN },
                { TLS_PUMP_TCP_OUT, OP_TCP_OUT },
                { TLS_PUMP_PLAIN_IN, OP_PLAIN_IN },
                { TLS_PUMP_PLAIN_OUT, OP_PLAIN_OUT },
        };
        unsigned mask = tls_pump_run(&c->pump, BRIDGE_PUMP_BUDGET);

        if (mask & TLS_PUMP_FINISHED) {
                conn_free(b, c);
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(waits); i++)
                if ((mask & waits[i].mask) && arm_poll(b, c, waits[i].op) < 0)
                        return; /* c is gone */
        if (mask & TLS_PUMP_MORE)
                runq_add(b, c);
}

void conn_process(TlsBridge *b, Conn *c) {
        switch (c->state) {
        case CONN_HANDSHAKE:
                conn_handshake(b, c);
                return;
        case CONN_OPEN:
                conn_pump(b, c);
                return;
        case CONN_LINGER:
                conn_drain(b, c);
                return;
        case CONN_KERNEL:
                /* POLLHUP: gRPC shut it down; POLLERR: it failed (gRPC finds out too) */
                conn_free(b, c);
                return;
        }
}

void conn_completion(TlsBridge *b, Conn *c, unsigned op, int res) {
        if (op == OP_TIMEOUT) {
                c->timeout_armed = false;
                if (res != -ETIME)
                        return; /* removed */
                if (c->state == CONN_HANDSHAKE) {
                        refused(b, c->peer, "handshake timed out");
                        conn_free(b, c);
                } else if (c->state == CONN_LINGER)
                        conn_free(b, c);
                return;
        }
        c->armed[op - OP_TCP_IN] = false;
        if (res == -ECANCELED)
                return;
        conn_process(b, c);
}

/* conn_new() could not make a connection: its handshake place goes back. */
static void conn_new_failed(TlsBridge *b, const char *peer, const AdmissionSource *source, const char *reason) {
        admission_handshake_end(&b->admission, source);
        refused(b, peer, reason);
}

void conn_new(TlsBridge *b, int fd, const char *peer, const AdmissionSource *source) {
        _cleanup_close_ int tcp_fd = fd;
        TlsContext *ctx;
        Conn *c;
        int r, one = 1;

        (void) setsockopt(tcp_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on non-TCP */

        c = calloc(1, sizeof *c);
        if (!c) {
                conn_new_failed(b, peer, source, "out of memory");
                return;
        }
        pthread_mutex_lock(&b->lock);
        ctx = tls_context_ref(b->ctx);
        pthread_mutex_unlock(&b->lock);
        r = tls_session_new(&c->tls, ctx, tcp_fd, NULL);
        tls_context_unref(ctx);
        if (r < 0) {
                free(c);
                conn_new_failed(b, peer, source, "cannot create TLS session");
                return;
        }
        r = ring_slot_alloc(&b->conns, c, &c->slot, &c->gen);
        if (r < 0) {
                tls_session_free(c->tls);
                free(c);
                conn_new_failed(b, peer, source, r == -EMFILE ? "too many connections" : "out of memory");
                return;
        }
        c->source = *source;
        c->admitted = ADMITTED_HANDSHAKE;

        c->id = ++b->next_id;
        c->state = CONN_HANDSHAKE;
        c->tcp_fd = TAKE_FD(tcp_fd);
        c->plain_fd = -1;
        c->grpc_fd_number = -1;
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        __atomic_add_fetch(&b->n_conns, 1, __ATOMIC_RELAXED);

        if (arm_timeout(b, c) < 0)
                return;
        conn_process(b, c);
}
