/* SPDX-License-Identifier: MIT */
/*
 * The server-side TLS <-> plaintext bridge (see bridge.h).
 *
 * Why a thread with its own io_uring instead of the engine's ring: on the
 * 2-core machines we target, TLS record crypto (AES-256-GCM, several GB/s per
 * core) is the one CPU-heavy part of serving a connection. On its own thread
 * it runs on the other core and overlaps with the engine's pipe capture and
 * log writes instead of stalling them; the engine's ring stays responsive to
 * pidfd exits and timers however much output is being streamed. The cost is
 * one extra hop (the socketpair), which gRPC needs anyway. Measuring the
 * split is for the benchmark issue (bench/), not done here.
 *
 * The one idea: readiness, not completion. GnuTLS does its own non-blocking
 * I/O on the TCP socket; the ring only tells us when a socket became
 * readable/writable (one-shot IORING_OP_POLL_ADD per fd and direction, armed
 * only for what a connection waits for), plus one timeout per handshake and a
 * wake eventfd. Every SQE's user_data encodes (operation, slot, generation);
 * a completion for a slot whose generation moved on is stale and ignored, so
 * fd numbers are never used as keys. Polls still pending when a connection
 * ends are cancelled (a pending poll holds a reference on the file: without
 * the cancel the socket would never really close).
 *
 * Per connection: the TCP socket (TCP_NODELAY), a TlsSession, and once the
 * client is verified our end of an AF_UNIX socketpair whose other end is
 * moved into a rotating high fd range and handed to gRPC. Data moves through
 * tls_pump_run() (pump.c) with a budget per turn; a connection that used its
 * budget goes on a run queue so one busy client cannot starve the others.
 *
 * Kernel TLS: where the kernel has it (Debian 12's does), a verified
 * connection's record state goes into the kernel (ktls.c) and gRPC gets the
 * TCP socket itself: no socketpair, no pump, no copy of every byte through
 * this thread — the kernel encrypts while it copies gRPC's writes. The bridge
 * keeps its own descriptor of the socket only to learn when gRPC is done
 * with it (gRPC shuts a connection down with shutdown(SHUT_RDWR): POLLHUP),
 * for the connection count and closed(). The server's handshake reads no
 * further than its records (tls.c reads ahead only after the handshake), so
 * what the client sends right after its Finished is still in the socket for
 * the kernel to decrypt. The first error that says "this kernel cannot"
 * turns the attempt off for the bridge's life.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "tls/bridge.h"
#include "tls/ktls.h"
#include "tls/pump.h"

#define BRIDGE_DEFAULT_MAX_CONNECTIONS 1024u
#define BRIDGE_MAX_CONNECTIONS_LIMIT (1u << 20)
#define BRIDGE_DEFAULT_HANDSHAKE_USEC (5ull * 1000 * 1000)
#define BRIDGE_RING_ENTRIES 256u
#define BRIDGE_PUMP_BUDGET (1024u * 1024u) /* bytes per direction per turn */
#define BRIDGE_ACCEPT_BATCH 64
#define BRIDGE_ACCEPT_RETRY_NSEC (100ll * 1000 * 1000)
#define BRIDGE_CQE_BATCH 64u
/* gRPC's fds are moved into [BASE, BASE + SPAN), rotating, so numbers are rarely reused. */
#define BRIDGE_HIGH_FD_BASE 1000
#define BRIDGE_HIGH_FD_SPAN 16384

enum {
        OP_IGNORE,       /* completions of cancel/remove requests */
        OP_WAKE,         /* the wake eventfd is readable */
        OP_LISTEN,       /* slot = listener index: a listener is readable */
        OP_LISTEN_RETRY, /* slot = listener index: accept back-off over */
        OP_TCP_IN,       /* the following four: slot + generation of a connection */
        OP_TCP_OUT,
        OP_PLAIN_IN,
        OP_PLAIN_OUT,
        OP_TCP_HUP,      /* kernel TLS: gRPC shut the socket down, or it failed */
        OP_TIMEOUT,      /* handshake deadline */
};
#define N_POLL_OPS 5 /* OP_TCP_IN .. OP_TCP_HUP */

static uint64_t ud_make(unsigned op, uint32_t slot, uint32_t gen) {
        return ((uint64_t) op << 56) | ((uint64_t) (slot & 0xffffffu) << 32) | gen;
}
static unsigned ud_op(uint64_t ud) {
        return (unsigned) (ud >> 56);
}
static uint32_t ud_slot(uint64_t ud) {
        return (uint32_t) (ud >> 32) & 0xffffffu;
}
static uint32_t ud_gen(uint64_t ud) {
        return (uint32_t) ud;
}

typedef enum ConnState {
        CONN_HANDSHAKE,
        CONN_OPEN,
        CONN_KERNEL, /* established, records in the kernel, gRPC has the TCP socket */
        CONN_LINGER, /* handshake refused, alert sent: draining input until EOF or the deadline */
} ConnState;

typedef struct Conn Conn;
struct Conn {
        uint32_t slot, gen;
        ConnState state;
        uint64_t id;
        int tcp_fd;
        int plain_fd; /* our end of the socketpair, -1 until established */
        int grpc_fd_number;
        TlsSession *tls;
        TlsPump pump;
        bool armed[N_POLL_OPS];
        bool timeout_armed;
        bool queued;
        Conn *rq_next, *rq_prev;
        struct __kernel_timespec timeout;
        char peer[INET6_ADDRSTRLEN + 16];
};

typedef struct Listener {
        int fd;
        bool armed, dead;
        struct __kernel_timespec retry;
} Listener;

struct TlsBridge {
        TlsBridgeConfig config;
        TlsBridgeOps ops;
        void *userdata;

        struct io_uring ring;
        bool ring_ok;
        int wake_fd;
        pthread_t thread;
        bool started;

        pthread_mutex_t lock; /* protects ctx and pending_listeners */
        TlsContext *ctx;
        int *pending_listeners;
        size_t n_pending_listeners;

        bool stop;         /* __atomic */
        unsigned n_conns;  /* __atomic; written by the bridge thread only */

        /* owned by the bridge thread once started */
        Listener *listeners;
        size_t n_listeners;
        bool wake_armed;
        Conn **conns;        /* [max_connections], by slot */
        uint32_t *gens;      /* [max_connections], generation of each slot */
        uint32_t *free_slots;
        size_t n_free_slots;
        Conn *rq_head, *rq_tail;
        uint64_t next_id;
        int next_high_fd;
        bool ktls_off;       /* configured off, or the kernel said it cannot */
        bool ktls_reported;  /* ops.kernel_tls was called */
};

static struct io_uring_sqe *get_sqe(TlsBridge *b) {
        struct io_uring_sqe *sqe;

        /* SQ full: submit what is queued and try again */
        while (!(sqe = io_uring_get_sqe(&b->ring)))
                (void) io_uring_submit(&b->ring);
        return sqe;
}

static void arm_poll(TlsBridge *b, Conn *c, unsigned op) {
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

        if (c->armed[i])
                return;
        sqe = get_sqe(b);
        io_uring_prep_poll_add(sqe, what[i].tcp ? c->tcp_fd : c->plain_fd, what[i].events);
        io_uring_sqe_set_data64(sqe, ud_make(op, c->slot, c->gen));
        c->armed[i] = true;
}

static void arm_timeout(TlsBridge *b, Conn *c) {
        struct io_uring_sqe *sqe = get_sqe(b);
        uint64_t usec = b->config.handshake_timeout_usec;

        c->timeout = (struct __kernel_timespec) {
                .tv_sec = (long long) (usec / 1000000),
                .tv_nsec = (long long) (usec % 1000000) * 1000,
        };
        io_uring_prep_timeout(sqe, &c->timeout, 0, 0);
        io_uring_sqe_set_data64(sqe, ud_make(OP_TIMEOUT, c->slot, c->gen));
        c->timeout_armed = true;
}

static void disarm_timeout(TlsBridge *b, Conn *c) {
        struct io_uring_sqe *sqe;

        if (!c->timeout_armed)
                return;
        sqe = get_sqe(b);
        io_uring_prep_timeout_remove(sqe, ud_make(OP_TIMEOUT, c->slot, c->gen), 0);
        io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
        c->timeout_armed = false;
}

static void runq_add(TlsBridge *b, Conn *c) {
        if (c->queued)
                return;
        c->queued = true;
        c->rq_next = NULL;
        c->rq_prev = b->rq_tail;
        if (b->rq_tail)
                b->rq_tail->rq_next = c;
        else
                b->rq_head = c;
        b->rq_tail = c;
}

static void runq_remove(TlsBridge *b, Conn *c) {
        if (!c->queued)
                return;
        if (c->rq_prev)
                c->rq_prev->rq_next = c->rq_next;
        else
                b->rq_head = c->rq_next;
        if (c->rq_next)
                c->rq_next->rq_prev = c->rq_prev;
        else
                b->rq_tail = c->rq_prev;
        c->queued = false;
        c->rq_next = c->rq_prev = NULL;
}

static void refused(TlsBridge *b, const char *peer, const char *reason) {
        if (b->ops.refused)
                b->ops.refused(b->userdata, peer, reason);
}

/* Ends a connection: cancels its pending ring operations, closes its fds,
 * tells the owner if gRPC had it, frees the slot (new generation). */
static void conn_free(TlsBridge *b, Conn *c) {
        for (unsigned i = 0; i < N_POLL_OPS; i++)
                if (c->armed[i]) {
                        struct io_uring_sqe *sqe = get_sqe(b);
                        io_uring_prep_poll_remove(sqe, ud_make(OP_TCP_IN + i, c->slot, c->gen));
                        io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
                }
        disarm_timeout(b, c);
        runq_remove(b, c);

        tls_pump_done(&c->pump);
        tls_session_free(c->tls);
        safe_close(c->tcp_fd);
        safe_close(c->plain_fd);
        if ((c->state == CONN_OPEN || c->state == CONN_KERNEL) && b->ops.closed)
                b->ops.closed(b->userdata, c->id, c->grpc_fd_number);

        b->conns[c->slot] = NULL;
        b->gens[c->slot]++;
        b->free_slots[b->n_free_slots++] = c->slot;
        __atomic_sub_fetch(&b->n_conns, 1, __ATOMIC_RELAXED);
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
        arm_poll(b, c, OP_TCP_IN);
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
                        arm_poll(b, c, OP_TCP_IN);
                        return;
                }
                conn_free(b, c); /* EOF or error */
                return;
        }
}

/* dup fd into the rotating high range (closing fd in any case). Never the
 * low number on failure (-EMFILE): gRPC knows this fd by its number ("fd:N"),
 * and the high range keeps a number out of reuse as long as it can. */
static int move_to_high_range(TlsBridge *b, int fd) {
        for (int attempt = 0; attempt < 2; attempt++) {
                int nfd = fcntl(fd, F_DUPFD_CLOEXEC, b->next_high_fd);
                if (nfd >= 0 && nfd < BRIDGE_HIGH_FD_BASE + BRIDGE_HIGH_FD_SPAN) {
                        close(fd);
                        b->next_high_fd = nfd + 1 < BRIDGE_HIGH_FD_BASE + BRIDGE_HIGH_FD_SPAN ? nfd + 1
                                                                                              : BRIDGE_HIGH_FD_BASE;
                        return nfd;
                }
                safe_close(nfd);
                if (b->next_high_fd == BRIDGE_HIGH_FD_BASE)
                        break;
                b->next_high_fd = BRIDGE_HIGH_FD_BASE; /* wrap around once */
        }
        close(fd);
        return -EMFILE;
}

static void conn_process(TlsBridge *b, Conn *c);

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
        grpc_fd = move_to_high_range(b, dup_fd);
        if (grpc_fd < 0) {
                refused(b, c->peer, "no free descriptor in the high range for gRPC");
                conn_free(b, c);
                return true;
        }
        disarm_timeout(b, c);
        c->grpc_fd_number = grpc_fd;
        c->state = CONN_KERNEL;
        if (!b->ops.accepted) {
                close(grpc_fd);
                conn_free(b, c);
                return true;
        }
        b->ops.accepted(b->userdata, c->id, grpc_fd, tls_session_identity(c->tls), c->peer);
        c->tls = tls_session_free(c->tls); /* the kernel has the state now */
        arm_poll(b, c, OP_TCP_HUP);
        return true;
}

/* Our plaintext end, connected to gRPC by the owner (connect_inner), or one end
 * of a socketpair whose other end (in *ret_grpc_fd) goes to accepted(). */
static int conn_plain_fd(TlsBridge *b, Conn *c, int *ret_grpc_fd) {
        int sv[2], r;

        if (b->ops.connect_inner) {
                r = b->ops.connect_inner(b->userdata, c->id, tls_session_identity(c->tls), c->peer);
                *ret_grpc_fd = -1;
                return r;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        r = move_to_high_range(b, sv[1]);
        if (r < 0) {
                close(sv[0]);
                return r;
        }
        *ret_grpc_fd = r;
        return sv[0];
}

static void conn_establish(TlsBridge *b, Conn *c) {
        int plain_fd, grpc_fd = -1;

        if (!b->ktls_off && conn_establish_kernel(b, c))
                return;

        plain_fd = conn_plain_fd(b, c, &grpc_fd);
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

static void conn_process(TlsBridge *b, Conn *c) {
        unsigned mask;
        int r;

        switch (c->state) {
        case CONN_HANDSHAKE:
                r = tls_session_handshake(c->tls);
                if (r == -EAGAIN && !tls_session_wants_write(c->tls) && tls_session_pending(c->tls) > 0) {
                        runq_add(b, c); /* input already buffered: go on next turn */
                        return;
                }
                if (r == -EAGAIN) {
                        arm_poll(b, c, tls_session_wants_write(c->tls) ? OP_TCP_OUT : OP_TCP_IN);
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
                return;

        case CONN_OPEN:
                mask = tls_pump_run(&c->pump, BRIDGE_PUMP_BUDGET);
                if (mask & TLS_PUMP_FINISHED) {
                        conn_free(b, c);
                        return;
                }
                if (mask & TLS_PUMP_TCP_IN)
                        arm_poll(b, c, OP_TCP_IN);
                if (mask & TLS_PUMP_TCP_OUT)
                        arm_poll(b, c, OP_TCP_OUT);
                if (mask & TLS_PUMP_PLAIN_IN)
                        arm_poll(b, c, OP_PLAIN_IN);
                if (mask & TLS_PUMP_PLAIN_OUT)
                        arm_poll(b, c, OP_PLAIN_OUT);
                if (mask & TLS_PUMP_MORE)
                        runq_add(b, c);
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

static void format_peer(const struct sockaddr_storage *sa, char *buf, size_t size) {
        char addr[INET6_ADDRSTRLEN];

        if (sa->ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
                snprintf(buf, size, "%s:%u", addr, ntohs(in->sin_port));
        } else if (sa->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], addr, sizeof addr);
                        snprintf(buf, size, "%s:%u", addr, ntohs(in6->sin6_port));
                } else {
                        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
                        snprintf(buf, size, "[%s]:%u", addr, ntohs(in6->sin6_port));
                }
        } else if (sa->ss_family == AF_UNIX)
                snprintf(buf, size, "unix");
        else
                snprintf(buf, size, "unknown");
}

static void conn_new(TlsBridge *b, int fd, const char *peer) {
        _cleanup_close_ int tcp_fd = fd;
        TlsContext *ctx;
        Conn *c;
        int r, one = 1;

        (void) setsockopt(tcp_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on non-TCP */

        c = calloc(1, sizeof *c);
        if (!c) {
                refused(b, peer, "out of memory");
                return;
        }
        pthread_mutex_lock(&b->lock);
        ctx = tls_context_ref(b->ctx);
        pthread_mutex_unlock(&b->lock);
        r = tls_session_new(&c->tls, ctx, tcp_fd, NULL);
        tls_context_unref(ctx);
        if (r < 0) {
                free(c);
                refused(b, peer, "cannot create TLS session");
                return;
        }

        c->slot = b->free_slots[--b->n_free_slots];
        c->gen = b->gens[c->slot];
        c->id = ++b->next_id;
        c->state = CONN_HANDSHAKE;
        c->tcp_fd = TAKE_FD(tcp_fd);
        c->plain_fd = -1;
        c->grpc_fd_number = -1;
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        b->conns[c->slot] = c;
        __atomic_add_fetch(&b->n_conns, 1, __ATOMIC_RELAXED);

        arm_timeout(b, c);
        conn_process(b, c);
}

static void listener_arm(TlsBridge *b, size_t i) {
        Listener *l = &b->listeners[i];
        struct io_uring_sqe *sqe;

        if (l->armed || l->dead)
                return;
        sqe = get_sqe(b);
        io_uring_prep_poll_add(sqe, l->fd, POLLIN);
        io_uring_sqe_set_data64(sqe, ud_make(OP_LISTEN, (uint32_t) i, 0));
        l->armed = true;
}

static void listener_ready(TlsBridge *b, size_t i) {
        Listener *l = &b->listeners[i];
        char reason[128], peer[INET6_ADDRSTRLEN + 16];

        for (int k = 0; k < BRIDGE_ACCEPT_BATCH; k++) {
                struct sockaddr_storage sa = {};
                socklen_t len = sizeof sa;
                int fd = accept4(l->fd, (struct sockaddr *) &sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        switch (errno) {
                        case EAGAIN:
                                listener_arm(b, i);
                                return;
                        case EINTR:
                        case ECONNABORTED:
                        case EPROTO:
                        case EPERM:
                        case ENETDOWN:
                        case ENOPROTOOPT:
                        case EHOSTDOWN:
                        case ENONET:
                        case EHOSTUNREACH:
                        case EOPNOTSUPP:
                        case ENETUNREACH:
                        case ETIMEDOUT:
                                continue; /* this connection only */
                        case EMFILE:
                        case ENFILE:
                        case ENOBUFS:
                        case ENOMEM: {
                                /* out of resources: back off instead of spinning */
                                struct io_uring_sqe *sqe = get_sqe(b);
                                snprintf(reason, sizeof reason, "accept failed: %s", strerror(errno));
                                refused(b, "-", reason);
                                l->retry = (struct __kernel_timespec) { .tv_nsec = BRIDGE_ACCEPT_RETRY_NSEC };
                                io_uring_prep_timeout(sqe, &l->retry, 0, 0);
                                io_uring_sqe_set_data64(sqe, ud_make(OP_LISTEN_RETRY, (uint32_t) i, 0));
                                return;
                        }
                        default:
                                snprintf(reason, sizeof reason, "listener failed, no longer accepting on it: %s",
                                         strerror(errno));
                                refused(b, "-", reason);
                                l->dead = true;
                                return;
                        }
                }
                format_peer(&sa, peer, sizeof peer);
                if (b->n_free_slots == 0) {
                        refused(b, peer, "too many connections");
                        close(fd);
                        continue;
                }
                conn_new(b, fd, peer);
        }
        listener_arm(b, i); /* more may be pending: the poll fires at once */
}

static void wake_arm(TlsBridge *b) {
        struct io_uring_sqe *sqe;

        if (b->wake_armed)
                return;
        sqe = get_sqe(b);
        io_uring_prep_poll_add(sqe, b->wake_fd, POLLIN);
        io_uring_sqe_set_data64(sqe, ud_make(OP_WAKE, 0, 0));
        b->wake_armed = true;
}

/* Moves listeners added by other threads into the thread's own array. */
static void take_pending_listeners(TlsBridge *b) {
        size_t first;

        pthread_mutex_lock(&b->lock);
        if (b->n_pending_listeners == 0) {
                pthread_mutex_unlock(&b->lock);
                return;
        }
        Listener *n = realloc(b->listeners, (b->n_listeners + b->n_pending_listeners) * sizeof *n);
        if (!n) {
                pthread_mutex_unlock(&b->lock);
                return; /* try again at the next wake-up */
        }
        b->listeners = n;
        first = b->n_listeners;
        for (size_t i = 0; i < b->n_pending_listeners; i++)
                b->listeners[b->n_listeners++] = (Listener) { .fd = b->pending_listeners[i] };
        b->n_pending_listeners = 0;
        pthread_mutex_unlock(&b->lock);

        for (size_t i = first; i < b->n_listeners; i++)
                listener_arm(b, i);
}

static Conn *conn_lookup(TlsBridge *b, uint64_t ud) {
        uint32_t slot = ud_slot(ud);
        Conn *c;

        if (slot >= b->config.max_connections)
                return NULL;
        c = b->conns[slot];
        if (!c || c->gen != ud_gen(ud))
                return NULL; /* stale: the connection that armed this is gone */
        return c;
}

static void dispatch(TlsBridge *b, uint64_t ud, int res) {
        unsigned op = ud_op(ud);
        Conn *c;

        switch (op) {
        case OP_IGNORE:
                return;
        case OP_WAKE: {
                uint64_t v;
                b->wake_armed = false;
                (void) !read(b->wake_fd, &v, sizeof v);
                take_pending_listeners(b);
                wake_arm(b);
                return;
        }
        case OP_LISTEN:
                if (ud_slot(ud) >= b->n_listeners)
                        return;
                b->listeners[ud_slot(ud)].armed = false;
                listener_ready(b, ud_slot(ud));
                return;
        case OP_LISTEN_RETRY:
                if (ud_slot(ud) < b->n_listeners)
                        listener_arm(b, ud_slot(ud));
                return;
        case OP_TIMEOUT:
                c = conn_lookup(b, ud);
                if (!c)
                        return;
                c->timeout_armed = false;
                if (res != -ETIME)
                        return; /* removed */
                if (c->state == CONN_HANDSHAKE) {
                        refused(b, c->peer, "handshake timed out");
                        conn_free(b, c);
                } else if (c->state == CONN_LINGER)
                        conn_free(b, c);
                return;
        case OP_TCP_IN:
        case OP_TCP_OUT:
        case OP_PLAIN_IN:
        case OP_PLAIN_OUT:
        case OP_TCP_HUP:
                c = conn_lookup(b, ud);
                if (!c)
                        return;
                c->armed[op - OP_TCP_IN] = false;
                if (res == -ECANCELED)
                        return;
                conn_process(b, c);
                return;
        default:
                return;
        }
}

static void run_queue(TlsBridge *b) {
        /* one turn for each connection queued now; those queued again wait for the next round */
        Conn *tail = b->rq_tail;

        while (b->rq_head) {
                Conn *c = b->rq_head;
                bool last = c == tail;
                runq_remove(b, c);
                conn_process(b, c);
                if (last)
                        break;
        }
}

static void *bridge_thread(void *userdata) {
        TlsBridge *b = userdata;

        wake_arm(b);
        take_pending_listeners(b);

        while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
                struct io_uring_cqe *cqes[BRIDGE_CQE_BATCH];
                struct {
                        uint64_t ud;
                        int res;
                } done[BRIDGE_CQE_BATCH];
                unsigned n;
                int r;

                run_queue(b);
                r = io_uring_submit_and_wait(&b->ring, b->rq_head ? 0 : 1);
                if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME)
                        break; /* the ring is unusable; tls_bridge_free() still cleans up */

                /* Copy the completions out first: handlers submit, which may complete more. */
                while ((n = io_uring_peek_batch_cqe(&b->ring, cqes, BRIDGE_CQE_BATCH)) > 0) {
                        for (unsigned i = 0; i < n; i++) {
                                done[i].ud = io_uring_cqe_get_data64(cqes[i]);
                                done[i].res = cqes[i]->res;
                        }
                        io_uring_cq_advance(&b->ring, n);
                        for (unsigned i = 0; i < n; i++)
                                dispatch(b, done[i].ud, done[i].res);
                }
        }

        /* Stopping: close every connection (closed() for the accepted ones). */
        for (uint32_t s = 0; s < b->config.max_connections; s++)
                if (b->conns[s])
                        conn_free(b, b->conns[s]);
        (void) io_uring_submit(&b->ring);
        return NULL;
}

int tls_bridge_new(TlsBridge **ret, TlsContext *server_ctx, const TlsBridgeConfig *config, const TlsBridgeOps *ops,
                   void *userdata) {
        static const int needed_ops[] = { IORING_OP_POLL_ADD, IORING_OP_POLL_REMOVE, IORING_OP_TIMEOUT,
                                          IORING_OP_TIMEOUT_REMOVE };
        TlsBridge *b;
        struct io_uring_params params = {};
        struct io_uring_probe *probe;
        int r;

        if (!ret || !server_ctx || !ops || tls_context_role(server_ctx) != TLS_ROLE_SERVER)
                return -EINVAL;

        b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->wake_fd = -1;
        pthread_mutex_init(&b->lock, NULL);
        b->ops = *ops;
        b->userdata = userdata;
        if (config)
                b->config = *config;
        if (b->config.max_connections == 0)
                b->config.max_connections = BRIDGE_DEFAULT_MAX_CONNECTIONS;
        if (b->config.max_connections > BRIDGE_MAX_CONNECTIONS_LIMIT)
                b->config.max_connections = BRIDGE_MAX_CONNECTIONS_LIMIT;
        if (b->config.handshake_timeout_usec == 0)
                b->config.handshake_timeout_usec = BRIDGE_DEFAULT_HANDSHAKE_USEC;
        b->ktls_off = b->config.no_kernel_tls;
        b->ctx = tls_context_ref(server_ctx);
        b->next_high_fd = BRIDGE_HIGH_FD_BASE;

        b->conns = calloc(b->config.max_connections, sizeof *b->conns);
        b->gens = calloc(b->config.max_connections, sizeof *b->gens);
        b->free_slots = calloc(b->config.max_connections, sizeof *b->free_slots);
        if (!b->conns || !b->gens || !b->free_slots) {
                r = -ENOMEM;
                goto fail;
        }
        /* pop order: slot 0 first */
        for (uint32_t i = 0; i < b->config.max_connections; i++)
                b->free_slots[i] = b->config.max_connections - 1 - i;
        b->n_free_slots = b->config.max_connections;

        b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (b->wake_fd < 0) {
                r = negative_errno();
                goto fail;
        }

        /* Up to ~6 operations per connection can be in flight: size the CQ so it cannot overflow. */
        params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_COOP_TASKRUN;
        params.cq_entries = MAX(4096u, 8 * b->config.max_connections);
        r = io_uring_queue_init_params(BRIDGE_RING_ENTRIES, &b->ring, &params);
        if (r == -EINVAL) { /* COOP_TASKRUN is 5.19+: fine without it */
                params = (struct io_uring_params) {
                        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
                        .cq_entries = MAX(4096u, 8 * b->config.max_connections),
                };
                r = io_uring_queue_init_params(BRIDGE_RING_ENTRIES, &b->ring, &params);
        }
        if (r < 0)
                goto fail;
        b->ring_ok = true;

        probe = io_uring_get_probe_ring(&b->ring);
        if (!probe) {
                r = -EOPNOTSUPP;
                goto fail;
        }
        for (size_t i = 0; i < ELEMENTSOF(needed_ops); i++)
                if (!io_uring_opcode_supported(probe, needed_ops[i])) {
                        io_uring_free_probe(probe);
                        r = -EOPNOTSUPP;
                        goto fail;
                }
        io_uring_free_probe(probe);

        *ret = b;
        return 0;

fail:
        tls_bridge_free(b);
        return r;
}

int tls_bridge_add_listener(TlsBridge *b, int listen_fd) {
        int *n, flags;

        if (!b || listen_fd < 0) {
                safe_close(listen_fd);
                return -EINVAL;
        }
        flags = fcntl(listen_fd, F_GETFL);
        if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                int r = negative_errno();
                safe_close(listen_fd);
                return r;
        }
        pthread_mutex_lock(&b->lock);
        n = realloc(b->pending_listeners, (b->n_pending_listeners + 1) * sizeof *n);
        if (!n) {
                pthread_mutex_unlock(&b->lock);
                safe_close(listen_fd);
                return -ENOMEM;
        }
        b->pending_listeners = n;
        b->pending_listeners[b->n_pending_listeners++] = listen_fd;
        pthread_mutex_unlock(&b->lock);

        if (b->started) {
                uint64_t one = 1;
                if (write(b->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
                        return negative_errno();
        }
        return 0;
}

int tls_bridge_start(TlsBridge *b) {
        int r;

        if (!b || b->started)
                return -EINVAL;
        r = pthread_create(&b->thread, NULL, bridge_thread, b);
        if (r != 0)
                return -r;
        b->started = true;
        return 0;
}

int tls_bridge_set_context(TlsBridge *b, TlsContext *ctx) {
        TlsContext *old;

        if (!b || !ctx || tls_context_role(ctx) != TLS_ROLE_SERVER)
                return -EINVAL;
        tls_context_ref(ctx);
        pthread_mutex_lock(&b->lock);
        old = b->ctx;
        b->ctx = ctx;
        pthread_mutex_unlock(&b->lock);
        tls_context_unref(old);
        return 0;
}

unsigned tls_bridge_connection_count(TlsBridge *b) {
        return b ? __atomic_load_n(&b->n_conns, __ATOMIC_RELAXED) : 0;
}

TlsBridge *tls_bridge_free(TlsBridge *b) {
        if (!b)
                return NULL;
        if (b->started) {
                uint64_t one = 1;
                __atomic_store_n(&b->stop, true, __ATOMIC_RELEASE);
                (void) !write(b->wake_fd, &one, sizeof one);
                pthread_join(b->thread, NULL);
        }
        if (b->ring_ok)
                io_uring_queue_exit(&b->ring);
        for (size_t i = 0; i < b->n_listeners; i++)
                safe_close(b->listeners[i].fd);
        for (size_t i = 0; i < b->n_pending_listeners; i++)
                safe_close(b->pending_listeners[i]);
        safe_close(b->wake_fd);
        tls_context_unref(b->ctx);
        pthread_mutex_destroy(&b->lock);
        free(b->listeners);
        free(b->pending_listeners);
        free(b->conns);
        free(b->gens);
        free(b->free_slots);
        free(b);
        return NULL;
}
