/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The data pump between one established TLS session (on a TCP socket) and a
 * plaintext socket (one end of a socketpair whose other end gRPC reads),
 * shared by the daemon's bridge (io_uring readiness) and jwctl's client
 * (poll()). Non-blocking only: tls_pump_run() moves what it can and says what
 * it waits for; the caller waits for that readiness and calls it again.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls/tls.h"

typedef struct TlsPumpBuffer {
        uint8_t *data; /* allocated only while data is in flight */
        size_t off, len;
} TlsPumpBuffer;

/* Decrypted records held per connection (TLS -> plain), written to the
 * plaintext socket with one sendmsg(). */
#define TLS_PUMP_PACKETS 8

typedef struct TlsPump {
        TlsSession *tls;   /* not owned */
        int tcp_fd;        /* not owned */
        int plain_fd;      /* not owned */
        /* TLS -> plain: decrypted records as GnuTLS hands them out
         * (gnutls_record_recv_packet(), no copy), not yet written to plain_fd;
         * down_off bytes of down[0] are written already. */
        gnutls_packet_t down[TLS_PUMP_PACKETS];
        unsigned n_down;
        size_t down_off;
        TlsPumpBuffer up;   /* plain -> TLS: read from plain_fd, not yet taken by GnuTLS */
        unsigned down_wait, up_wait; /* what each direction waits for (TLS_PUMP_* bits) */
        bool tcp_eof;      /* the TLS peer will send nothing more (close_notify, EOF, reset) */
        bool tcp_broken;   /* we cannot send to the TLS peer any more */
        bool plain_shut;   /* shutdown(plain_fd, SHUT_WR) done after tcp_eof */
        bool plain_broken; /* writing to plain_fd failed: its reader is gone */
        bool plain_eof;    /* the plaintext side closed: send close_notify and finish */
        bool bye_done;
        bool failed;       /* a fatal TLS error: tear the connection down now */
        int error;         /* GnuTLS error that ended the TLS input, 0 if a clean end */
        int alert;         /* fatal alert received from the TLS peer, -1 none (read it with __atomic) */
} TlsPump;

enum {
        TLS_PUMP_TCP_IN = 1 << 0,
        TLS_PUMP_TCP_OUT = 1 << 1,
        TLS_PUMP_PLAIN_IN = 1 << 2,
        TLS_PUMP_PLAIN_OUT = 1 << 3,
        TLS_PUMP_MORE = 1 << 4,     /* the budget ran out with work left: call again soon */
        TLS_PUMP_FINISHED = 1 << 5, /* both directions are done or the session failed: tear down */
};

/* Plaintext read from plain_fd per recv() (allocated only while data is in
 * flight). 256 KiB measured the same as 128 KiB (2 GiB follow: bridge and
 * jwctl CPU within noise), so the smaller one. */
#define TLS_PUMP_BUFFER_SIZE (128 * 1024)

void tls_pump_init(TlsPump *p, TlsSession *tls, int tcp_fd, int plain_fd);
/* Frees the buffers. Safe to call twice. */
void tls_pump_done(TlsPump *p);

/* Moves data both ways until each direction blocks, ends, or about budget
 * bytes were moved. Returns the TLS_PUMP_* readiness it waits for, possibly
 * with TLS_PUMP_MORE, or TLS_PUMP_FINISHED.
 * Closing: TLS peer ends (close_notify, or EOF without it as Python does) ->
 * after the pending plaintext is delivered, shutdown(plain_fd, SHUT_WR) so the
 * plaintext reader sees EOF; plaintext side ends -> pending data is sent, then
 * close_notify, then FINISHED. */
unsigned tls_pump_run(TlsPump *p, size_t budget);

/* Bytes of buffers the connection holds now (pump buffers, decrypted records
 * held, the session's read-ahead and send buffers); 0 when it is idle. */
size_t tls_pump_buffer_memory(const TlsPump *p);
