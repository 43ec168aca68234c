/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What bridge.c (the thread, its ring loop, listeners and accept) and
 * bridge-conn.c (one connection's state machine) share. Not for other modules.
 *
 * Thread rules: everything below "owned by the bridge thread" is touched only
 * by the bridge thread once it started; lock guards ctx and pending_listeners.
 */

#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "shared/list.h"
#include "shared/ring.h"
#include "tls/admission.h"
#include "tls/bridge.h"
#include "tls/pump.h"

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
        ListNode rq; /* on the bridge's runq: has a turn coming */
        char peer[INET6_ADDRSTRLEN + 16];
        AdmissionSource source;
        enum { ADMITTED_NONE, ADMITTED_HANDSHAKE, ADMITTED_ESTABLISHED } admitted; /* what it counts as */
        char *identity; /* once established: what admission counts it under */
        /* No ring request points into a Conn: it is freed while requests for it
         * may still be in flight (their completions are then stale). */
};

typedef struct Listener {
        int fd;
        bool armed, dead;
        bool retrying; /* an accept back-off timer is pending */
        /* No ring request points into a Listener: the array is realloc()ed. */
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

        /* What timeouts point at: written once in tls_bridge_new(), before the
         * ring has a request, and freed with the bridge, after the ring. */
        struct __kernel_timespec handshake_timeout;
        struct __kernel_timespec accept_retry;

        pthread_mutex_t lock; /* protects ctx and pending_listeners */
        TlsContext *ctx;
        int *pending_listeners;
        size_t n_pending_listeners;

        bool stop;              /* __atomic */
        unsigned n_conns;       /* __atomic; written by the bridge thread only */
        unsigned n_ring_errors; /* __atomic; written by the bridge thread only */

        /* owned by the bridge thread once started */
        Listener *listeners;
        size_t n_listeners;
        bool listeners_unarmed; /* a listener's poll could not be queued: retry */
        bool wake_armed;
        RingSlotTable conns; /* Conn * by slot; max = established + startups_full */
        Admission admission;
        ListHead runq; /* Conn by rq: connections with work but no event to wait for */
        uint64_t next_id;
        int next_high_fd;
        bool ktls_off;      /* configured off, or the kernel said it cannot */
        bool ktls_reported; /* ops.kernel_tls was called */
};

static inline void refused(TlsBridge *b, const char *peer, const char *reason) {
        if (b->ops.refused)
                b->ops.refused(b->userdata, peer, reason);
}

/* bridge-conn.c: one connection's life. conn_new takes fd (the accepted TCP
 * socket) also on failure, and the handshake place admission gave source
 * (conn_free gives it back); every failure is told through ops.refused. */
void conn_new(TlsBridge *b, int fd, const char *peer, const AdmissionSource *source);
void conn_free(TlsBridge *b, Conn *c);
void conn_process(TlsBridge *b, Conn *c);
/* A completion for connection c: op is OP_TCP_IN .. OP_TIMEOUT. */
void conn_completion(TlsBridge *b, Conn *c, unsigned op, int res);
/* Gives every connection on the run queue one turn (budgeted). */
void conn_run_queue(TlsBridge *b);
