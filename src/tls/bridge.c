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
 * The rule for every request (DESIGN.md, ring discipline): what a request
 * points at lives until its completion. The only requests here that point
 * at memory are the timeouts, and their timespecs are the bridge's own
 * (handshake_timeout, accept_retry), written before the ring has a request
 * and freed after it: never inside a Conn, which is freed while its
 * requests may still be queued and not yet submitted, nor inside the
 * Listener array, which is realloc()ed. A request that cannot get a
 * submission queue entry (ring_get_sqe() could not make room) fails what it
 * was for, visibly: the connection is closed with the reason told through
 * ops.refused; a listener is re-armed at the next turn of the loop.
 *
 * Per connection (bridge-conn.c): the TCP socket (TCP_NODELAY), a TlsSession, and once the
 * client is verified our end of an AF_UNIX socketpair whose other end is
 * moved into a rotating high fd range and handed to gRPC. Data moves through
 * tls_pump_run() (pump.c) with a budget per turn; a connection that used its
 * budget goes on a run queue so one busy client cannot starve the others.
 *
 * Admission (admission.c): handshaking and established connections are
 * bounded apart. A TCP connection over a handshake bound (overall, its
 * source's, or the random early drop) is closed as accept() returns it,
 * before a TLS session exists; one over its identity's bound is refused
 * right after its handshake (bridge-conn.c). A flood of silent connections
 * thus cannot take the places of authenticated clients, nor one identity
 * those of the others.
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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/macro.h"
#include "tls/bridge-internal.h"

#define BRIDGE_DEFAULT_MAX_CONNECTIONS 1024u
/* A quarter of the default: one identity cannot fill the daemon, and a
 * client that pools connections has plenty. */
#define BRIDGE_DEFAULT_MAX_PER_IDENTITY 256u
/* Handshakes take milliseconds: 64 at once is already a burst; from there a
 * growing share is dropped, all at 256 (OpenSSH's default is 10:30:100). */
#define BRIDGE_DEFAULT_STARTUPS_START 64u
#define BRIDGE_DEFAULT_STARTUPS_RATE 30u
#define BRIDGE_DEFAULT_STARTUPS_FULL 256u
#define BRIDGE_DEFAULT_STARTUPS_PER_SOURCE 32u
#define BRIDGE_MAX_CONNECTIONS_LIMIT (1u << 20)
#define BRIDGE_DEFAULT_HANDSHAKE_USEC (5ull * 1000 * 1000)
#define BRIDGE_RING_ENTRIES 256u
#define BRIDGE_ACCEPT_BATCH 64
#define BRIDGE_ACCEPT_RETRY_NSEC (100ll * 1000 * 1000)
#define BRIDGE_CQE_BATCH 64u

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

/* Watches listener i. If the ring cannot take the request the listener stays
 * idle and the loop tries again at its next turn (bridge_thread). */
static void listener_arm(TlsBridge *b, size_t i) {
        Listener *l = &b->listeners[i];
        struct io_uring_sqe *sqe;
        char reason[128];
        int r = -EBUSY;

        if (l->armed || l->dead || l->retrying)
                return;
        sqe = ring_get_sqe(&b->ring, &r);
        if (!sqe) {
                if (!b->listeners_unarmed) {
                        snprintf(reason, sizeof reason, "cannot watch a listener (retrying): %s", strerror(-r));
                        refused(b, "-", reason);
                }
                b->listeners_unarmed = true;
                return;
        }
        io_uring_prep_poll_add(sqe, l->fd, POLLIN);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_LISTEN, (uint32_t) i, 0));
        l->armed = true;
}

static void listeners_rearm(TlsBridge *b) {
        if (!b->listeners_unarmed)
                return;
        b->listeners_unarmed = false;
        for (size_t i = 0; i < b->n_listeners; i++)
                listener_arm(b, i);
}

/* Out of fds or memory: wait before accepting again instead of spinning. The
 * timespec is the bridge's, not the listener's (the array moves). */
static void listener_back_off(TlsBridge *b, size_t i, int error) {
        struct io_uring_sqe *sqe;
        char reason[128];
        int r = -EBUSY;

        snprintf(reason, sizeof reason, "accept failed: %s", strerror(error));
        refused(b, "-", reason);
        sqe = ring_get_sqe(&b->ring, &r);
        if (!sqe) {
                b->listeners_unarmed = true; /* no timer: the next turn of the loop re-arms it */
                return;
        }
        io_uring_prep_timeout(sqe, &b->accept_retry, 0, 0);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_LISTEN_RETRY, (uint32_t) i, 0));
        b->listeners[i].retrying = true;
}

static bool accept_error_is_transient(int error) {
        switch (error) {
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
                return true; /* this connection only */
        default:
                return false;
        }
}

static void listener_ready(TlsBridge *b, size_t i) {
        Listener *l = &b->listeners[i];
        char reason[128], peer[INET6_ADDRSTRLEN + 16];
        AdmissionSource source;
        AdmissionVerdict verdict;

        for (int k = 0; k < BRIDGE_ACCEPT_BATCH; k++) {
                struct sockaddr_storage sa = {};
                socklen_t len = sizeof sa;
                int fd = accept4(l->fd, (struct sockaddr *) &sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EAGAIN)
                                break;
                        if (accept_error_is_transient(errno))
                                continue;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                listener_back_off(b, i, errno);
                                return;
                        }
                        snprintf(reason, sizeof reason, "listener failed, no longer accepting on it: %s",
                                 strerror(errno));
                        refused(b, "-", reason);
                        l->dead = true;
                        return;
                }
                format_peer(&sa, peer, sizeof peer);
                /* Refused here, before any TLS work: the cheapest no there is. */
                admission_source_from_sockaddr(&sa, &source);
                verdict = admission_handshake_begin(&b->admission, &source);
                if (verdict != ADMISSION_OK) {
                        refused(b, peer, admission_verdict_reason(verdict));
                        close(fd);
                        continue;
                }
                conn_new(b, fd, peer, &source);
        }
        listener_arm(b, i); /* more may be pending: the poll fires at once */
}

static void wake_arm(TlsBridge *b) {
        struct io_uring_sqe *sqe;

        if (b->wake_armed)
                return;
        sqe = ring_get_sqe(&b->ring, NULL);
        if (!sqe)
                return; /* the loop calls again at its next turn */
        io_uring_prep_poll_add(sqe, b->wake_fd, POLLIN);
        io_uring_sqe_set_data64(sqe, ring_ud(OP_WAKE, 0, 0));
        b->wake_armed = true;
}

/* realloc(), except that with debug_poison_freed the array always moves and
 * the old one is poisoned first, so a request left pointing into it shows. */
static Listener *listeners_grow(TlsBridge *b, size_t n) {
        Listener *l;

        if (!b->config.debug_poison_freed)
                return reallocarray(b->listeners, n, sizeof *l);
        l = calloc(n, sizeof *l);
        if (!l)
                return NULL;
        if (b->n_listeners > 0) {
                memcpy(l, b->listeners, b->n_listeners * sizeof *l);
                memset(b->listeners, 0xa5, b->n_listeners * sizeof *l);
                __asm__ volatile("" : : "r"(b->listeners) : "memory"); /* keep the store: free() follows */
        }
        free(b->listeners);
        return l;
}

/* Moves listeners added by other threads into the thread's own array. */
static void take_pending_listeners(TlsBridge *b) {
        size_t first;

        pthread_mutex_lock(&b->lock);
        if (b->n_pending_listeners == 0) {
                pthread_mutex_unlock(&b->lock);
                return;
        }
        Listener *n = listeners_grow(b, b->n_listeners + b->n_pending_listeners);
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

static void dispatch(TlsBridge *b, uint64_t ud, int res) {
        unsigned op = ring_ud_op(ud);
        uint32_t slot = ring_ud_slot(ud);
        Conn *c;

        if (res == -EINVAL || res == -EFAULT)
                __atomic_add_fetch(&b->n_ring_errors, 1, __ATOMIC_RELAXED);

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
                if (slot >= b->n_listeners)
                        return;
                b->listeners[slot].armed = false;
                listener_ready(b, slot);
                return;
        case OP_LISTEN_RETRY:
                if (slot >= b->n_listeners)
                        return;
                b->listeners[slot].retrying = false;
                listener_arm(b, slot);
                return;
        case OP_TCP_IN:
        case OP_TCP_OUT:
        case OP_PLAIN_IN:
        case OP_PLAIN_OUT:
        case OP_TCP_HUP:
        case OP_TIMEOUT:
                c = ring_slot_get(&b->conns, slot, ring_ud_gen(ud));
                if (c) /* else stale: the connection that armed this is gone */
                        conn_completion(b, c, op, res);
                return;
        default:
                return;
        }
}

/* Runs the queue, submits, and dispatches what completed. False when the
 * ring is unusable (tls_bridge_free() still cleans up). */
static bool bridge_turn(TlsBridge *b) {
        struct io_uring_cqe *cqes[BRIDGE_CQE_BATCH];
        struct {
                uint64_t ud;
                int res;
        } done[BRIDGE_CQE_BATCH];
        unsigned n;
        int r;

        conn_run_queue(b);
        listeners_rearm(b);
        wake_arm(b);
        r = io_uring_submit_and_wait(&b->ring, b->runq.first ? 0 : 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME)
                return false;

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
        return true;
}

static void *bridge_thread(void *userdata) {
        TlsBridge *b = userdata;

        (void) prctl(PR_SET_NAME, "jw-tls"); /* top -H, bench/run's per-thread CPU */

        wake_arm(b);
        take_pending_listeners(b);

        while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE))
                if (!bridge_turn(b))
                        break;

        /* Stopping: close every connection (closed() for the accepted ones). */
        for (uint32_t s = 0; s < b->conns.n; s++)
                if (b->conns.slots[s].ptr)
                        conn_free(b, b->conns.slots[s].ptr);
        (void) io_uring_submit(&b->ring);
        return NULL;
}

/* Fills in the admission defaults and starts the admission policy. */
static void bridge_configure_admission(TlsBridge *b) {
        TlsBridgeConfig *c = &b->config;

        if (c->max_connections == 0)
                c->max_connections = BRIDGE_DEFAULT_MAX_CONNECTIONS;
        c->max_connections = MIN(c->max_connections, BRIDGE_MAX_CONNECTIONS_LIMIT);
        if (c->max_per_identity == 0)
                c->max_per_identity = BRIDGE_DEFAULT_MAX_PER_IDENTITY;
        if (c->startups_full == 0) {
                c->startups_start = BRIDGE_DEFAULT_STARTUPS_START;
                c->startups_rate = BRIDGE_DEFAULT_STARTUPS_RATE;
                c->startups_full = BRIDGE_DEFAULT_STARTUPS_FULL;
        }
        c->startups_full = MIN(c->startups_full, BRIDGE_MAX_CONNECTIONS_LIMIT);
        if (c->max_startups_per_source == 0)
                c->max_startups_per_source = BRIDGE_DEFAULT_STARTUPS_PER_SOURCE;
        admission_init(&b->admission,
                       &(AdmissionConfig) {
                               .max_established = c->max_connections,
                               .max_per_identity = c->max_per_identity,
                               .startups_start = c->startups_start,
                               .startups_rate = c->startups_rate,
                               .startups_full = c->startups_full,
                               .max_startups_per_source = c->max_startups_per_source,
                       },
                       NULL, NULL);
        /* every place either population may take; refused-and-lingering ones keep theirs */
        b->conns.max = c->max_connections + c->startups_full;
}

static void bridge_configure(TlsBridge *b, const TlsBridgeConfig *config) {
        uint64_t usec;

        if (config)
                b->config = *config;
        bridge_configure_admission(b);
        if (b->config.handshake_timeout_usec == 0)
                b->config.handshake_timeout_usec = BRIDGE_DEFAULT_HANDSHAKE_USEC;
        usec = b->config.handshake_timeout_usec;
        b->handshake_timeout = (struct __kernel_timespec) {
                .tv_sec = (long long) (usec / 1000000),
                .tv_nsec = (long long) (usec % 1000000) * 1000,
        };
        b->accept_retry = (struct __kernel_timespec) { .tv_nsec = BRIDGE_ACCEPT_RETRY_NSEC };
        b->ktls_off = b->config.no_kernel_tls;
}

/* The ring, sized so its completion queue cannot overflow in normal use,
 * and a check that the kernel has every operation the bridge uses. */
static int bridge_ring_init(TlsBridge *b) {
        static const int needed_ops[] = { IORING_OP_POLL_ADD, IORING_OP_POLL_REMOVE, IORING_OP_TIMEOUT,
                                          IORING_OP_TIMEOUT_REMOVE };
        /* Up to ~6 operations per connection can be in flight. */
        unsigned cq_entries = MAX(4096u, 8 * b->conns.max);
        struct io_uring_params params = {
                .flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_COOP_TASKRUN,
                .cq_entries = cq_entries,
        };
        struct io_uring_probe *probe;
        int r;

        r = io_uring_queue_init_params(BRIDGE_RING_ENTRIES, &b->ring, &params);
        if (r == -EINVAL) { /* COOP_TASKRUN is 5.19+: fine without it */
                params = (struct io_uring_params) {
                        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
                        .cq_entries = cq_entries,
                };
                r = io_uring_queue_init_params(BRIDGE_RING_ENTRIES, &b->ring, &params);
        }
        if (r < 0)
                return r;
        b->ring_ok = true;

        probe = io_uring_get_probe_ring(&b->ring);
        if (!probe)
                return -EOPNOTSUPP;
        r = 0;
        for (size_t i = 0; i < ELEMENTSOF(needed_ops); i++)
                if (!io_uring_opcode_supported(probe, needed_ops[i]))
                        r = -EOPNOTSUPP;
        io_uring_free_probe(probe);
        return r;
}

int tls_bridge_new(TlsBridge **ret, TlsContext *server_ctx, const TlsBridgeConfig *config, const TlsBridgeOps *ops,
                   void *userdata) {
        TlsBridge *b;
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
        bridge_configure(b, config);
        b->ctx = tls_context_ref(server_ctx);
        b->next_high_fd = BRIDGE_HIGH_FD_BASE;

        b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (b->wake_fd < 0) {
                r = negative_errno();
                goto fail;
        }
        r = bridge_ring_init(b);
        if (r < 0)
                goto fail;

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

unsigned tls_bridge_ring_errors(TlsBridge *b) {
        return b ? __atomic_load_n(&b->n_ring_errors, __ATOMIC_RELAXED) : 0;
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
        ring_slot_table_done(&b->conns);
        admission_done(&b->admission);
        free(b);
        return NULL;
}
