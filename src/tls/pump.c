/* SPDX-License-Identifier: MIT */
/*
 * Moves bytes between a TLS session and a plaintext socket, both ways,
 * without blocking (see pump.h). Used by the bridge and by the client.
 *
 * The one idea: each direction is a small state machine that stops at the
 * first EAGAIN and remembers what it waits for; a direction stops reading
 * its source while what it holds cannot be written (back-pressure), so
 * memory per connection is bounded (the plaintext buffer, TLS_PUMP_PACKETS
 * decrypted records, the session's read-ahead and send buffer), and all of
 * it exists only while data is in flight. GnuTLS may hold decrypted data
 * the socket no longer shows as readable, so input is always drained until
 * GnuTLS itself says EAGAIN (tls_session_pending() is consulted before
 * declaring a wait).
 *
 * Copies and syscalls per 16 KiB record, the CPU cost of a big stream
 * (`jwctl logs -f` of 2 GiB; AES-GCM itself is about half of each pump
 * thread). Sending: records are encrypted straight from the plaintext
 * buffer into the session's send buffer and written 8 per send() (tls.c,
 * batching). Corking, used before, copied the plaintext first and still
 * wrote one record per send(), because GnuTLS flushes every record on its
 * own: the bridge thread went from 444 to 343 ms/GiB (median of 14 runs),
 * and jwctl from 518 to 450, mostly from fewer, larger TCP segments to
 * receive. Receiving: decrypted records are taken from GnuTLS as they are
 * (gnutls_record_recv_packet) and written to the plaintext socket, up to 8
 * per sendmsg(), instead of being copied into a pump buffer first: about 4 %
 * of the receiving pump thread in a pump-to-pump microbenchmark (364 vs 379
 * ms/GiB, median of 12), too small to see in the whole-daemon runs.
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
        tls_session_batch_output(tls, true);
}

static void buffer_free(TlsPumpBuffer *b) {
        free(b->data);
        *b = (TlsPumpBuffer) {};
}

static void down_drop(TlsPump *p) {
        for (unsigned i = 0; i < p->n_down; i++)
                gnutls_packet_deinit(p->down[i]);
        p->n_down = 0;
        p->down_off = 0;
}

void tls_pump_done(TlsPump *p) {
        down_drop(p);
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

/* Writes the held records to plain_fd: 0 when all went out, -EAGAIN, or
 * -EPIPE when the plaintext reader is gone. */
static int down_deliver(TlsPump *p, size_t *moved) {
        while (p->n_down > 0) {
                struct iovec v[TLS_PUMP_PACKETS];
                struct msghdr mh = { .msg_iov = v, .msg_iovlen = p->n_down };
                ssize_t n;

                for (unsigned i = 0; i < p->n_down; i++) {
                        gnutls_datum_t d;
                        gnutls_packet_get(p->down[i], &d, NULL);
                        v[i] = (struct iovec) { d.data, d.size };
                }
                v[0].iov_base = (uint8_t *) v[0].iov_base + p->down_off;
                v[0].iov_len -= p->down_off;

                n = sendmsg(p->plain_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return -EAGAIN;
                        return -EPIPE;
                }
                *moved += (size_t) n;
                /* drop the records written completely */
                unsigned k = 0;
                size_t left = (size_t) n;
                while (k < p->n_down && left >= v[k].iov_len) {
                        left -= v[k].iov_len;
                        gnutls_packet_deinit(p->down[k]);
                        k++;
                }
                memmove(p->down, p->down + k, (p->n_down - k) * sizeof p->down[0]);
                p->n_down -= k;
                p->down_off = k > 0 ? left : p->down_off + left;
        }
        p->down_off = 0;
        return 0;
}

/* TLS -> plaintext. Returns what it waits for, TLS_PUMP_MORE, or 0 when done. */
static unsigned pump_down(TlsPump *p, size_t budget) {
        gnutls_session_t g = tls_session_gnutls(p->tls);
        size_t moved = 0;
        unsigned wait = 0;

        for (;;) {
                /* 1. deliver what we have */
                if (p->n_down > 0 && !p->plain_broken) {
                        int r = down_deliver(p, &moved);
                        if (r == -EAGAIN)
                                return TLS_PUMP_PLAIN_OUT; /* back-pressure: do not read TLS */
                        if (r < 0)
                                p->plain_broken = true; /* the plaintext reader is gone */
                }
                if (p->plain_broken) {
                        /* nobody reads the plaintext: stop; pump_up sees its EOF and finishes */
                        down_drop(p);
                        return 0;
                }
                if (wait)
                        return wait;
                if (p->tcp_eof || p->failed) {
                        if (!p->plain_shut && !p->plain_broken && !p->failed) {
                                /* lets gRPC see EOF and close its end */
                                (void) shutdown(p->plain_fd, SHUT_WR);
                                p->plain_shut = true;
                        }
                        return 0;
                }
                if (moved >= budget)
                        return TLS_PUMP_MORE;

                /* 2. read and decrypt up to TLS_PUMP_PACKETS records */
                while (p->n_down < TLS_PUMP_PACKETS) {
                        gnutls_packet_t pkt = NULL;
                        ssize_t n = gnutls_record_recv_packet(g, &pkt);
                        if (n > 0) {
                                p->down[p->n_down++] = pkt;
                                continue;
                        }
                        if (pkt)
                                gnutls_packet_deinit(pkt);
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

/* Room a record needs in the session's send buffer (header, tag, content type). */
#define RECORD_ROOM (TLS_RECORD_MAX + 256u)

/* plaintext -> TLS. Returns what it waits for, TLS_PUMP_MORE, or 0 when done. */
/* Step 1 of pump_up: encrypts what the up buffer holds, one record at a
 * time, into the session's send buffer, writing that out whenever it is
 * full. True when the direction must wait: *ret_wait says for what. */
static bool pump_up_encrypt(TlsPump *p, size_t *moved, unsigned *ret_wait) {
        gnutls_session_t g = tls_session_gnutls(p->tls);
        TlsPumpBuffer *b = &p->up;
        int r = 0;

        while (b->len > 0 && !p->tcp_broken && !p->failed) {
                if (tls_session_send_room(p->tls) < RECORD_ROOM && tls_session_unsent(p->tls) > 0) {
                        int f = tls_session_flush(p->tls);
                        if (f == -EAGAIN) {
                                *ret_wait = TLS_PUMP_TCP_OUT;
                                return true;
                        }
                        if (f < 0) {
                                r = GNUTLS_E_PUSH_ERROR;
                                break;
                        }
                }
                ssize_t n = gnutls_record_send(g, b->data + b->off, MIN(b->len, (size_t) TLS_RECORD_MAX));
                if (n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n == GNUTLS_E_AGAIN) {
                        /* Only when the record went straight to a full
                         * socket: GnuTLS keeps it, and the next call with
                         * the same arguments (off and len are unchanged)
                         * finishes it. */
                        *ret_wait = tcp_wait(p);
                        return true;
                }
                if (n < 0) {
                        r = (int) n;
                        break;
                }
                b->off += (size_t) n;
                b->len -= (size_t) n;
                *moved += (size_t) n;
        }
        if (r < 0) {
                /* the TLS peer is gone (EPIPE, reset): keep draining plaintext until it closes */
                p->tcp_broken = true;
                if (gnutls_error_is_fatal(r) && r != GNUTLS_E_PUSH_ERROR)
                        p->error = r;
        }
        if (p->tcp_broken || p->failed)
                b->len = 0;
        if (b->len == 0)
                b->off = 0;
        return false;
}

/* The plaintext side closed: close_notify, unless the TLS side is gone. */
static unsigned pump_up_bye(TlsPump *p) {
        buffer_free(&p->up);
        if (!p->bye_done && !p->tcp_broken && !p->failed) {
                int bye = gnutls_bye(tls_session_gnutls(p->tls), GNUTLS_SHUT_WR);
                if (bye == GNUTLS_E_AGAIN || bye == GNUTLS_E_INTERRUPTED)
                        return tcp_wait(p);
        }
        p->bye_done = true;
        return 0; /* tls_pump_run() writes the close_notify out */
}

static unsigned pump_up(TlsPump *p, size_t budget) {
        TlsPumpBuffer *b = &p->up;
        size_t moved = 0;
        unsigned wait;

        for (;;) {
                /* 1. encrypt what we have */
                if (pump_up_encrypt(p, &moved, &wait))
                        return wait;
                if (p->plain_eof)
                        return pump_up_bye(p);
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
                        return TLS_PUMP_PLAIN_IN; /* tls_pump_run() writes out what is buffered */
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
        /* Before waiting: write out the records still in the send buffer
         * (also those GnuTLS wrote while receiving, e.g. a key update). */
        if (!p->tcp_broken && !p->failed && tls_session_unsent(p->tls) > 0) {
                int f = tls_session_flush(p->tls);
                if (f == -EAGAIN)
                        up |= TLS_PUMP_TCP_OUT;
                else if (f < 0)
                        p->tcp_broken = true;
        }
        if (p->failed)
                return TLS_PUMP_FINISHED;
        /* About to wait with nothing left to write: give the send buffer back
         * (the read-ahead and the pump buffers go when their source runs dry),
         * so an idle connection holds no large buffers. Allocating them again
         * is cheap: keeping them for a busy connection made no measurable
         * difference (a 2 GiB follow, bridge and jwctl CPU within noise). */
        if (!((down | up) & TLS_PUMP_MORE) && tls_session_unsent(p->tls) == 0)
                tls_session_release_buffers(p->tls);
        /* The plaintext side closed and close_notify went out (or cannot): done. */
        if (p->plain_eof && p->bye_done && (p->tcp_broken || tls_session_unsent(p->tls) == 0))
                return TLS_PUMP_FINISHED;
        p->down_wait = down;
        p->up_wait = up;
        return down | up;
}

size_t tls_pump_buffer_memory(const TlsPump *p) {
        size_t n = tls_session_buffer_memory(p->tls) + (p->up.data ? TLS_PUMP_BUFFER_SIZE : 0);

        for (unsigned i = 0; i < p->n_down; i++) {
                gnutls_datum_t d;
                gnutls_packet_get(p->down[i], &d, NULL);
                n += d.size;
        }
        return n;
}
