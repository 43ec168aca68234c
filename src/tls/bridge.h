/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The server-side TLS <-> plaintext bridge: accepts TCP connections, does the
 * mutual-TLS handshake, and for every verified client hands gRPC the
 * plaintext end of a socketpair, then pumps bytes between the two until either
 * side closes — or, where the kernel can do TLS, the TCP socket itself. One thread with its own io_uring serves all connections.
 */

#include <stdbool.h>
#include <stdint.h>

#include "tls/tls.h"

typedef struct TlsBridge TlsBridge;

typedef struct TlsBridgeConfig {
        /* Admission (admission.h). Established (authenticated) connections and
         * handshaking ones are bounded apart, so neither can lock the other out. */
        unsigned max_connections;        /* 0 = 1024; established connections */
        unsigned max_per_identity;       /* 0 = 256; established connections of one identity */
        /* Handshaking connections, OpenSSH's MaxStartups start:rate:full: from start on
         * a new one is refused with probability rate% rising to 100% at full.
         * startups_full = 0: the default 64:30:256; start = 0 (or >= full): no early drop. */
        unsigned startups_start, startups_rate, startups_full;
        unsigned max_startups_per_source; /* 0 = 32; handshaking connections per IPv4 address / IPv6 /64 */
        uint64_t handshake_timeout_usec; /* 0 = 5 s */
        bool no_kernel_tls;              /* never hand records to the kernel (kTLS) */
        /* Tests only: fill a connection's memory (and the listener array, which
         * then always moves when it grows) with a pattern before freeing it, so
         * that a ring request still pointing into it reads garbage, not stale
         * values that happen to be right (the kernel's reads are invisible to ASan). */
        bool debug_poison_freed;
} TlsBridgeConfig;

typedef struct TlsBridgeOps {
        /* Handshake done and client verified. grpc_fd: the plaintext end of a socketpair
         * (or, with kernel TLS, a descriptor of the TCP socket whose records the kernel handles),
         * non-blocking, CLOEXEC, ownership passes to the callee (it hands it to gRPC).
         * A callee that gives the fd up itself must shutdown(SHUT_RDWR) it before close():
         * with kernel TLS the bridge keeps a descriptor of the same socket and learns
         * that the connection is over from POLLHUP (gRPC shuts its fds down this way).
         * conn_id: unique, never reused. identity: client cert CN. peer_addr: "IP:port"
         * ("[IPv6]:port" for IPv6). Called on the bridge thread. */
        void (*accepted)(void *userdata, uint64_t conn_id, int grpc_fd, const char *identity, const char *peer_addr);
        /* A connection was refused (handshake failure, timeout, over a bound of admission.h:
         * those refused at accept are closed before any TLS work; one over the bound of
         * its identity gets the TLS alert access_denied after its handshake). For logging.
         * A client can cause any number of these: rate-limit what you log. Called on the
         * bridge thread; peer_addr is "-" for accept() failures (reason says which). */
        void (*refused)(void *userdata, const char *peer_addr, const char *reason);
        /* An accepted connection is gone (either side closed). grpc_fd_number is the number
         * the grpc_fd had (it may already be closed/reused: use conn_id to match).
         * Called on the bridge thread, exactly once per accepted connection, also for
         * connections still open when the bridge is freed. */
        void (*closed)(void *userdata, uint64_t conn_id, int grpc_fd_number);
        /* Kernel TLS, said once: 0 when the first connection's records went to the
         * kernel (grpc_fd is then the TCP socket itself), or -errno when the kernel
         * cannot (then every connection stays in GnuTLS). Never called when
         * no_kernel_tls is set. Called on the bridge thread. */
        void (*kernel_tls)(void *userdata, int error);
        /* Optional. Handshake done and client verified, records staying in GnuTLS: returns
         * the bridge's plaintext fd, already connected to gRPC (non-blocking, CLOEXEC,
         * ownership passes to the bridge, which pumps through it and closes it), or -errno
         * to refuse the connection for that reason. When set, it replaces the socketpair:
         * accepted() is still called next, with grpc_fd = -1, and closed() later with
         * grpc_fd_number = -1. Kernel-TLS connections still go through accepted() with the
         * TCP socket. May block briefly (it connects a local socket). Bridge thread. */
        int (*connect_inner)(void *userdata, uint64_t conn_id, const char *identity, const char *peer_addr);
} TlsBridgeOps;

/* server_ctx must be a TLS_ROLE_SERVER context; the bridge takes its own reference.
 * config may be NULL (defaults). ops and userdata are copied/kept. -errno on failure
 * (-EOPNOTSUPP if the kernel's io_uring lacks an operation the bridge needs). */
int tls_bridge_new(TlsBridge **ret, TlsContext *server_ctx, const TlsBridgeConfig *config, const TlsBridgeOps *ops,
                   void *userdata);
/* Takes ownership of listen_fd, a listening TCP socket (made non-blocking), also on failure.
 * May be called before or after tls_bridge_start(). */
int tls_bridge_add_listener(TlsBridge *b, int listen_fd);
/* Starts the bridge thread. */
int tls_bridge_start(TlsBridge *b);
/* Thread-safe: connections accepted from now on use ctx (takes a reference);
 * established ones keep the context they started with. */
int tls_bridge_set_context(TlsBridge *b, TlsContext *ctx);
/* Thread-safe: connections handshaking or established right now (lingering refused ones too). */
unsigned tls_bridge_connection_count(TlsBridge *b);
/* Thread-safe: ring completions that came back -EINVAL or -EFAULT, the kernel
 * refusing a request that pointed at bad memory or was malformed. 0 in a sound
 * bridge: for tests and diagnostics. */
unsigned tls_bridge_ring_errors(TlsBridge *b);
/* Stops the thread (closed() is called for every open accepted connection), closes
 * every fd the bridge owns (not grpc_fds handed out), frees. NULL ok; returns NULL. */
TlsBridge *tls_bridge_free(TlsBridge *b);
