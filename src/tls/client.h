/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The client side of the TLS bridge (used by jwctl): connect, mutual-TLS
 * handshake, then either a pump thread moving bytes between the TLS
 * connection and a socketpair whose other end is given to gRPC
 * (grpc_channel_create_from_fd), or (TLS_CLIENT_DIRECT) nothing more: the
 * caller reads and writes the records itself with tls_client_recv() and
 * tls_client_send() (jwctl's HTTP/2 client).
 */

#include <sys/types.h>

#include <stdint.h>

#include "tls/tls.h"

typedef enum TlsClientFailure {
        TLS_CLIENT_OK,
        TLS_CLIENT_RESOLVE,
        TLS_CLIENT_CONNECT_REFUSED,
        TLS_CLIENT_CONNECT_TIMEOUT,
        TLS_CLIENT_CONNECT_OTHER,
        TLS_CLIENT_HANDSHAKE,
        TLS_CLIENT_SERVER_CERT,
        TLS_CLIENT_REJECTED_BY_SERVER,
} TlsClientFailure;

typedef struct TlsClient TlsClient;

/* Resolves host, connects (timeout), handshakes (client cert from ctx, server verified against CA + host name, ALPN h2),
 * creates a socketpair and starts a pump thread. *ret_grpc_fd: non-blocking plaintext fd for grpc_channel_create_from_fd
 * (owned by the caller/gRPC). timeout_usec bounds resolve-less connect + handshake together (0 = 10 s).
 * On failure returns -errno-ish, sets *ret_failure and a malloc()ed one-line *ret_message in user words:
 * "cannot connect to HOST:PORT: connection refused", "...: timed out", "...: name not known",
 * "TLS handshake with HOST:PORT failed: server certificate not trusted (unknown CA)", etc.
 * ret_failure and ret_message may be NULL; on success *ret_failure = TLS_CLIENT_OK. */
/* flags for tls_client_connect() */
#define TLS_CLIENT_NO_KERNEL_TLS 1u /* keep the records in GnuTLS (the pump) even where the kernel could */
#define TLS_CLIENT_DIRECT 2u        /* no socketpair, no pump: *ret_grpc_fd is -1, use tls_client_recv/send */

int tls_client_connect(TlsContext *client_ctx, const char *host, const char *port, uint64_t timeout_usec, unsigned flags,
                       TlsClient **ret, int *ret_grpc_fd, TlsClientFailure *ret_failure, char **ret_message);

/* The same, with the server's certificate checked against server_name
 * (also sent as SNI) instead of host; NULL: host. A fan-out's per-host
 * tls-name (jwctl's config) uses it. */
int tls_client_connect_named(TlsContext *client_ctx, const char *host, const char *port, const char *server_name,
                             uint64_t timeout_usec, unsigned flags, TlsClient **ret, int *ret_grpc_fd,
                             TlsClientFailure *ret_failure, char **ret_message);

/* After a call failed with UNAVAILABLE: if the server closed the TLS session with an alert (TLS 1.3 reports a refused
 * client certificate only after the client believes it is connected), return a malloc()ed message such as
 * "the server refused our certificate: certificate expired" (alert 45), "... not trusted (unknown CA)" (48),
 * "... bad certificate" (42), "... certificate required" (116),
 * "the server refused the connection after authenticating us (access denied): ..." (49: over a bound
 * of the server's admission, such as connections per identity), or for other alerts
 * "the server closed the connection with TLS alert: NAME"; NULL if none. Thread-safe. */
char *tls_client_failure_message(TlsClient *c);

/* TLS_CLIENT_DIRECT only. The connected socket (non-blocking, owned by c) to
 * poll() on. */
int tls_client_fd(TlsClient *c);
/* Reads decrypted bytes: > 0, 0 at the end of the stream (close_notify, EOF
 * without it, reset), -EAGAIN (wait for POLLIN on the fd; but first call
 * again while tls_client_pending() is not 0), -EPROTO when the server sent a
 * fatal alert (tls_client_failure_message() explains it), -EIO. Not to be
 * called from two threads at once, nor at the same time as tls_client_send(). */
ssize_t tls_client_recv(TlsClient *c, void *buf, size_t size);
/* The same without a copy where GnuTLS holds the decrypted record:
 * *ret_data points into it (or into buf, with kernel TLS) and stays valid
 * until tls_client_recv_done() or the next tls_client_recv_view(). */
ssize_t tls_client_recv_view(TlsClient *c, void *buf, size_t size, const uint8_t **ret_data);
void tls_client_recv_done(TlsClient *c);
/* Input already read from the socket and not yet returned by tls_client_recv(). */
size_t tls_client_pending(TlsClient *c);
/* Encrypts and writes up to one record of buf: the bytes taken (> 0),
 * -EAGAIN (wait for POLLOUT, then call again with the same buf and size),
 * or -EPIPE when the server is gone. */
ssize_t tls_client_send(TlsClient *c, const void *buf, size_t size);

/* Stops the pump, closes its fds (not the grpc fd). NULL ok; returns NULL. */
TlsClient *tls_client_free(TlsClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(TlsClient *, tls_client_free);
