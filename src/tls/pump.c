/* SPDX-License-Identifier: MIT */
/*
 * Moves bytes between a TLS session and a plaintext socket, both ways,
 * without blocking (see pump.h). Used by the bridge and by the client.
 *
 * The one idea: each direction is a small state machine that stops at the
 * first EAGAIN and remembers what it waits for; a direction stops reading
 * its source while its buffer cannot be written (back-pressure), so memory
 * per connection is bounded by two buffers, which exist only while data is
 * in flight. GnuTLS may hold decrypted data the socket no longer shows as
 * readable, so input is always drained until GnuTLS itself says EAGAIN
 * (tls_session_pending() is consulted before declaring a wait).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tls/pump.h"

void tls_pump_init(TlsPump *p, TlsSession *tls, int tcp_fd, int plain_fd) {
        *p = (TlsPump) {
                .tls = tls,
                .tcp_fd = tcp_fd,
                .plain_fd = plain_fd,
                .alert = -1,
        };
}

static void buffer_free(TlsPumpBuffer *b) {
        free(b->data);
        *b = (TlsPumpBuffer) {};
}

void tls_pump_done(TlsPump *p) {
        buffer_free(&p->down);
        buffer_free(&p->up);
}

static int buffer_alloc(TlsPumpBuffer *b) {
        if (!b->data) {
                b->data = malloc(TLS_PUMP_BUFFER_SIZE);
                if (!b->data)
                        return -ENOMEM;
                b->off = b->len = 0;
        }
        return 0;
}

static unsigned tcp_wait(TlsPump *p) {
        return tls_session_wants_write(p->tls) ? TLS_PUMP_TCP_OUT : TLS_PUMP_TCP_IN;
}

/* TLS -> plaintext. Returns what it waits for, TLS_PUMP_MORE, or 0 when done. */
static unsigned pump_down(TlsPump *p, size_t budget) {
        gnutls_session_t g = tls_session_gnutls(p->tls);
        TlsPumpBuffer *b = &p->down;
        size_t moved = 0;
        unsigned wait = 0;

        for (;;) {
                /* 1. deliver what we have */
                while (b->len > 0) {
                        if (p->plain_broken) {
                                b->len = 0;
                                break;
                        }
                        ssize_t n = send(p->plain_fd, b->data + b->off, b->len, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno == EAGAIN)
                                        return TLS_PUMP_PLAIN_OUT; /* back-pressure: do not read TLS */
                                p->plain_broken = true; /* the plaintext reader is gone */
                                b->len = 0;
                                break;
                        }
                        b->off += (size_t) n;
                        b->len -= (size_t) n;
                        moved += (size_t) n;
                }
                b->off = 0;

                if (p->plain_broken) {
                        /* nobody reads the plaintext: stop; pump_up sees its EOF and finishes */
                        buffer_free(b);
                        return 0;
                }
                if (wait) {
                        buffer_free(b);
                        return wait;
                }
                if (p->tcp_eof || p->failed) {
                        buffer_free(b);
                        if (!p->plain_shut && !p->plain_broken && !p->failed) {
                                /* lets gRPC see EOF and close its end */
                                (void) shutdown(p->plain_fd, SHUT_WR);
                                p->plain_shut = true;
                        }
                        return 0;
                }
                if (moved >= budget)
                        return TLS_PUMP_MORE;

                /* 2. read and decrypt as much as fits */
                if (buffer_alloc(b) < 0) {
                        p->failed = true;
                        return 0;
                }
                while (b->len < TLS_PUMP_BUFFER_SIZE) {
                        ssize_t n = gnutls_record_recv(g, b->data + b->len, TLS_PUMP_BUFFER_SIZE - b->len);
                        if (n > 0) {
                                b->len += (size_t) n;
                                continue;
                        }
                        if (n == 0) { /* close_notify */
                                p->tcp_eof = true;
                                break;
                        }
                        if (n == GNUTLS_E_AGAIN) {
                                /* GnuTLS also says AGAIN after a record that
                                 * carried no data (a TLS 1.3 session ticket, a
                                 * key update) while more input is buffered. */
                                if (tls_session_pending(p->tls) > 0)
                                        continue;
                                wait = tcp_wait(p);
                                break;
                        }
                        if (n == GNUTLS_E_INTERRUPTED)
                                continue;
                        if (n == GNUTLS_E_PREMATURE_TERMINATION || n == GNUTLS_E_PULL_ERROR) {
                                /* EOF without close_notify (Python does that) or a reset: end of stream */
                                p->tcp_eof = true;
                                break;
                        }
                        if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
                                __atomic_store_n(&p->alert, (int) gnutls_alert_get(g), __ATOMIC_RELEASE);
                                p->error = (int) n;
                                p->tcp_eof = true;
                                p->tcp_broken = true; /* no point sending anything after a fatal alert */
                                break;
                        }
                        if (!gnutls_error_is_fatal((int) n))
                                continue; /* warning alert, ignored */
                        p->error = (int) n;
                        p->failed = true;
                        break;
                }
        }
}

/* plaintext -> TLS. Returns what it waits for, TLS_PUMP_MORE, or 0 when done. */
static unsigned pump_up(TlsPump *p, size_t budget) {
        gnutls_session_t g = tls_session_gnutls(p->tls);
        TlsPumpBuffer *b = &p->up;
        size_t moved = 0;

        for (;;) {
                /* 1. hand what we have to GnuTLS. Corked, the records are
                 * collected and leave in one writev() when uncorked, instead
                 * of one send per 16 KiB record. */
                int r = 0;
                if (p->uncork_pending) {
                        r = gnutls_record_uncork(g, 0);
                        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
                                return tcp_wait(p);
                        p->uncork_pending = false;
                }
                if (r >= 0 && b->len > 0 && !p->tcp_broken && !p->failed) {
                        gnutls_record_cork(g);
                        while (b->len > 0) {
                                ssize_t n = gnutls_record_send(g, b->data + b->off, MIN(b->len, (size_t) TLS_RECORD_MAX));
                                if (n == GNUTLS_E_INTERRUPTED)
                                        continue;
                                if (n < 0) {
                                        /* Corked sends do no I/O: a real error. */
                                        r = (int) n;
                                        break;
                                }
                                b->off += (size_t) n;
                                b->len -= (size_t) n;
                                moved += (size_t) n;
                        }
                        int u = gnutls_record_uncork(g, 0);
                        if (r >= 0 && (u == GNUTLS_E_AGAIN || u == GNUTLS_E_INTERRUPTED)) {
                                p->uncork_pending = true;
                                b->off = 0;
                                return tcp_wait(p);
                        }
                        if (r >= 0 && u < 0)
                                r = u;
                }
                if (r < 0) {
                        /* the TLS peer is gone (EPIPE, reset): keep draining plaintext until it closes */
                        p->tcp_broken = true;
                        if (gnutls_error_is_fatal(r) && r != GNUTLS_E_PUSH_ERROR)
                                p->error = r;
                }
                if (p->tcp_broken || p->failed)
                        b->len = 0;
                b->off = 0;

                if (p->plain_eof) {
                        buffer_free(b);
                        if (!p->bye_done && !p->tcp_broken && !p->failed) {
                                int bye = gnutls_bye(g, GNUTLS_SHUT_WR);
                                if (bye == GNUTLS_E_AGAIN || bye == GNUTLS_E_INTERRUPTED)
                                        return tcp_wait(p);
                        }
                        p->bye_done = true;
                        return 0;
                }
                if (p->failed)
                        return 0;
                if (moved >= budget)
                        return TLS_PUMP_MORE;

                /* 2. read plaintext */
                if (buffer_alloc(b) < 0) {
                        p->failed = true;
                        return 0;
                }
                ssize_t n = recv(p->plain_fd, b->data, TLS_PUMP_BUFFER_SIZE, MSG_DONTWAIT);
                if (n > 0) {
                        b->len = (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        buffer_free(b);
                        return TLS_PUMP_PLAIN_IN;
                }
                /* EOF or error: the plaintext side is gone */
                p->plain_eof = true;
        }
}

unsigned tls_pump_run(TlsPump *p, size_t budget) {
        unsigned down, up;

        if (budget == 0)
                budget = 1;
        down = pump_down(p, budget);
        up = pump_up(p, budget);
        if (p->failed)
                return TLS_PUMP_FINISHED;
        /* The plaintext side closed and close_notify went out (or cannot): done. */
        if (p->plain_eof && p->bye_done)
                return TLS_PUMP_FINISHED;
        p->down_wait = down;
        p->up_wait = up;
        return down | up;
}
