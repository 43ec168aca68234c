/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * gRPC calls over one HTTP/2 connection (nghttp2) on one TLS connection
 * (src/tls, TLS_CLIENT_DIRECT): the generic streaming primitive under every
 * call jwctl makes. A call sends length-prefixed messages, half-closes,
 * receives messages and ends with a status; unary and server-streaming
 * calls are the two shapes of it that jwctl uses, a client-streaming call
 * (Input: send, send, ..., close_send, recv, status) is a third.
 *
 * Threads: any thread may use the connection and any call; each H2Call is
 * used by one thread at a time for send/close_send/recv/status, while
 * h2_call_cancel() may come from any other thread at any moment. The
 * connection's own I/O thread does the reading, writing and timers.
 */

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls/client.h"

typedef struct H2Conn H2Conn;
typedef struct H2Call H2Call;

typedef struct H2Options {
        const char *authority;      /* :authority, "host:port" */
        const char *user_agent;
        uint64_t keepalive_usec;    /* a PING this often while a call is open; 0: none */
        uint64_t keepalive_timeout_usec; /* no PING ack within this: the connection is dead */
        uint32_t stream_window;     /* receive window per call; 0: H2_STREAM_WINDOW (4 MiB) */
} H2Options;

/* Takes tls (connected with TLS_CLIENT_DIRECT) in all cases, sends the
 * HTTP/2 preface and settings and starts the I/O thread. 0 or -errno. */
int h2_conn_new(TlsClient *tls, const H2Options *opt, H2Conn **ret);
/* Cancels the calls still open (their owners must free them first or
 * after: the call holds a reference), stops the I/O thread, closes TLS. */
H2Conn *h2_conn_free(H2Conn *c);
/* The TLS connection, for tls_client_failure_message(); thread-safe. */
TlsClient *h2_conn_tls(H2Conn *c);

/* Opens a call to path ("/pkg.Service/Method"). timeout_usec: deadline from
 * now (sent as grpc-timeout), 0 for none. Never fails for the network: a
 * dead connection shows as an UNAVAILABLE status of the call. 0, -ENOMEM. */
int h2_call_start(H2Conn *c, const char *path, uint64_t timeout_usec, H2Call **ret);
/* Queues one message (copied). Blocks while more than H2_SEND_QUEUE_MAX
 * bytes wait to be sent (the server's flow control is the backpressure).
 * 0, -EPIPE when the call has ended (see h2_call_status()), -ENOMEM. */
#define H2_SEND_QUEUE_MAX (1024u * 1024u)
int h2_call_send(H2Call *k, const void *msg, size_t len);
/* Half-closes: no more messages from us. 0 or -EPIPE as above. */
int h2_call_close_send(H2Call *k);
/* Waits for the next message: 1 with *ret_msg (valid until the next recv or
 * free) and *ret_len, 0 when the call ended (h2_call_status() says how),
 * -EBADMSG when the server broke the framing (the call is cancelled with
 * INTERNAL). The bytes of a message count against HTTP/2 flow control
 * until it is taken, so a consumer that does not call recv() stops the
 * server instead of growing our memory. */
int h2_call_recv(H2Call *k, const uint8_t **ret_msg, size_t *ret_len);
/* Waits for the end and returns its status; *ret_message is malloc()ed or
 * NULL (ret_message NULL: not wanted). 0 or -ENOMEM. */
int h2_call_status(H2Call *k, grpc_status_code *ret_code, char **ret_message);
/* Thread-safe, at any moment: ends the call with CANCELLED (RST_STREAM). */
void h2_call_cancel(H2Call *k);
/* Cancels it if it is still open. NULL ok; returns NULL. */
H2Call *h2_call_free(H2Call *k);
