/* SPDX-License-Identifier: MIT */
/*
 * gRPC's wire protocol over one HTTP/2 session (nghttp2) directly on the
 * GnuTLS session (or the kernel's, see src/tls/client.c): no gRPC C core, no
 * socketpair, no pump. What gRPC adds to HTTP/2 is small: a POST with
 * content-type application/grpc and te: trailers, 5-byte length-prefixed
 * messages in DATA, and grpc-status / grpc-message in the trailers (or in
 * the only HEADERS of a "trailers-only" answer).
 *
 * The one idea: one I/O thread per connection owns the socket, and every
 * nghttp2 call, from it or from a caller, happens under the connection's one
 * mutex. Callers never touch the socket: they queue work in the session and
 * write the wake-up eventfd; they wait on their call's condition variable,
 * which the I/O thread signals. Why a thread and not "whoever waits drives
 * the session": jwctl's main thread spends its time blocked writing output
 * to a pipe that may be slow; with nobody reading, the server's PINGs and our
 * keepalive deadline would go unanswered and the daemon would drop a live
 * follower. A thread with a small stack per connection is cheap enough for a
 * fan-out of 64 connections (64 threads that sleep in poll()).
 *
 * Flow control is the backpressure: nghttp2 does not give the window back on
 * its own (no_auto_window_update); a message's bytes are given back when the
 * caller takes it (and those of the first, incomplete message as they
 * arrive, so a message larger than the window still completes). A consumer
 * that stops taking messages stops the server after H2_STREAM_WINDOW bytes.
 *
 * This file is the connection: the I/O thread, nghttp2's callbacks, timers
 * (call deadlines, keepalive). h2-call.c is the callers' side of a call.
 */

#include <assert.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cli/h2-internal.h"
#include "shared/macro.h"
#include "shared/time-util.h"

/* Per stream, what the server may send before we take it: the most a slow
 * consumer makes us hold per call (plus the message it holds). The
 * connection window is room for a few such calls at once. */
#define H2_STREAM_WINDOW (4u * 1024 * 1024)
#define H2_CONN_WINDOW (16u * 1024 * 1024)
#define H2_READ_SIZE (64u * 1024)
#define H2_READ_BUDGET (1u * 1024 * 1024) /* then write what is due (window updates) */
#define H2_IO_STACK (256u * 1024)

void h2_buf_free(H2Buf *b) {
        free(b->data);
        free(b->retired);
        *b = (H2Buf) {};
}

/* Makes room for need more bytes at the end. A pinned buffer's bytes stay
 * where they are: the rest moves to a new buffer, the old one is retired
 * until h2_buf_unpin(). */
static int buf_reserve(H2Buf *b, size_t need) {
        if (b->pinned) {
                if (b->off + b->len + need <= b->size)
                        return 0;
                size_t size = MAX(b->size, 2 * (b->len + need));
                uint8_t *d = malloc(size);
                if (!d)
                        return -ENOMEM;
                if (b->len)
                        memcpy(d, b->data + b->off, b->len);
                assert(!b->retired);
                b->retired = b->data;
                b->data = d;
                b->size = size;
                b->off = 0;
                b->pinned = false;
                return 0;
        }
        if (b->off > 0 && (b->len == 0 || b->off + b->len + need > b->size)) {
                memmove(b->data, b->data + b->off, b->len);
                b->off = 0;
        }
        if (b->len + need > b->size) {
                size_t size = MAX(b->size * 2, b->len + need);
                uint8_t *d = realloc(b->data, size);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->size = size;
        }
        return 0;
}

/* Appends n bytes (prefixed with a gRPC message header when header). */
int h2_buf_append(H2Buf *b, const void *p, size_t n, bool header) {
        size_t need = n + (header ? 5 : 0);
        int r = buf_reserve(b, need);

        if (r < 0)
                return r;
        uint8_t *w = b->data + b->off + b->len;
        if (header) {
                w[0] = 0;
                w[1] = (uint8_t) (n >> 24);
                w[2] = (uint8_t) (n >> 16);
                w[3] = (uint8_t) (n >> 8);
                w[4] = (uint8_t) n;
                w += 5;
        }
        if (n)
                memcpy(w, p, n);
        b->len += need;
        return 0;
}

void h2_buf_drop(H2Buf *b, size_t n) {
        b->off += n;
        b->len -= n;
        if (b->len == 0 && !b->pinned)
                b->off = 0;
}

void h2_buf_clear(H2Buf *b) {
        if (b->pinned)
                h2_buf_drop(b, b->len); /* the caller still reads the bytes before off */
        else
                h2_buf_free(b);
}

void h2_buf_unpin(H2Buf *b) {
        free(b->retired);
        b->retired = NULL;
        b->pinned = false;
}

void h2_wake(H2Conn *c) {
        uint64_t one = 1;
        (void) !write(c->wake_fd, &one, sizeof one);
}

/* Caller side: after queueing work in the session. */
void h2_kick(H2Conn *c) {
        if (c->session && nghttp2_session_want_write(c->session))
                h2_wake(c);
}

/* The length of the first message in b (header included), or 5 if its header is incomplete. */
size_t h2_first_message_size(const H2Buf *b) {
        const uint8_t *p = b->data + b->off;
        if (b->len < 5)
                return 5;
        return 5 + ((size_t) p[1] << 24 | (size_t) p[2] << 16 | (size_t) p[3] << 8 | p[4]);
}

/* Gives back to flow control what was taken plus the first message so far. */
void h2_credit(H2Conn *c, H2Call *k) {
        uint64_t limit = MIN(k->taken + h2_first_message_size(&k->in), k->in_total);

        if (limit <= k->consumed)
                return;
        if (k->stream_open)
                (void) nghttp2_session_consume(c->session, k->stream_id, (size_t) (limit - k->consumed));
        k->consumed = limit;
}

/* The call ends with st (taken) unless it ended already. */
void h2_call_end(H2Call *k, H2Status *st) {
        if (k->ended) {
                h2_status_done(st);
                return;
        }
        k->ended = true;
        h2_status_done(&k->st);
        k->st = *st;
        *st = (H2Status) {};
        h2_buf_free(&k->out);
        pthread_cond_broadcast(&k->cond);
}

void h2_call_end_with(H2Call *k, grpc_status_code code, const char *message) {
        H2Status st = { .code = code, .code_set = true, .message = message ? strdup(message) : NULL };
        h2_call_end(k, &st);
}

/* A local end while nghttp2 still has the stream: reset it. */
void h2_call_abort(H2Conn *c, H2Call *k, grpc_status_code code, const char *message) {
        h2_call_end_with(k, code, message);
        h2_buf_clear(&k->in); /* nothing more is delivered; a message the caller holds stays */
        if (k->stream_open && !c->dead)
                (void) nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, k->stream_id, NGHTTP2_CANCEL);
}

static void conn_die(H2Conn *c, const char *why) {
        if (c->dead)
                return;
        c->dead = strdup(why);
        if (!c->dead)
                c->dead = strdup("out of memory");
        for (H2Call *k = c->calls; k; k = k->next) {
                h2_call_end_with(k, GRPC_STATUS_UNAVAILABLE, why);
                k->stream_open = false;
        }
        c->n_open = 0;
}

/* nghttp2 callbacks: all run on the I/O thread, under c->lock. */

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *userdata) {
        H2Call *k;

        if (frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        k = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
        if (!k || k->ended)
                return 0;
        if (h2_status_header(&k->st, (const char *) name, namelen, (const char *) value, valuelen) < 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                   void *userdata) {
        H2Conn *c = userdata;
        H2Call *k = nghttp2_session_get_stream_user_data(s, stream_id);

        if (!k || k->ended) { /* nobody reads it: give the window back at once */
                (void) nghttp2_session_consume(s, stream_id, len);
                return 0;
        }
        if (h2_buf_append(&k->in, data, len, false) < 0) {
                h2_call_abort(c, k, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                (void) nghttp2_session_consume(s, stream_id, len);
                return 0;
        }
        k->in_total += len;
        pthread_cond_broadcast(&k->cond);
        return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *userdata) {
        H2Conn *c = userdata;
        H2Call *k = nghttp2_session_get_stream_user_data(s, stream_id);

        if (c->n_open > 0)
                c->n_open--;
        if (!k)
                return 0;
        h2_credit(c, k);
        /* The stream is gone: what it still holds in the connection window comes back now. */
        if (k->in_total > k->consumed)
                (void) nghttp2_session_consume_connection(s, (size_t) (k->in_total - k->consumed));
        k->consumed = k->in_total;
        k->stream_open = false;
        if (!k->ended) {
                h2_status_finish(&k->st, error_code);
                H2Status st = k->st;
                k->st = (H2Status) {};
                h2_call_end(k, &st);
        }
        pthread_cond_broadcast(&k->cond);
        return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *frame, void *userdata) {
        H2Conn *c = userdata;

        if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
                c->ping_deadline = 0;
                c->next_ping = c->n_open > 0 ? now_usec(CLOCK_MONOTONIC) + c->ka : 0;
        }
        return 0;
}

ssize_t h2_read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *flags,
                     nghttp2_data_source *source, void *userdata) {
        H2Call *k = nghttp2_session_get_stream_user_data(s, stream_id);
        size_t n;

        if (!k)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        n = MIN(length, k->out.len);
        if (n) {
                memcpy(buf, k->out.data + k->out.off, n);
                h2_buf_drop(&k->out, n);
                pthread_cond_broadcast(&k->cond); /* room for a blocked sender */
        }
        if (k->out.len == 0 && (k->send_closed || k->ended))
                *flags |= NGHTTP2_DATA_FLAG_EOF;
        else if (n == 0)
                return NGHTTP2_ERR_DEFERRED;
        return (ssize_t) n;
}

/* The I/O thread's work. */

static void io_read(H2Conn *c) {
        size_t moved = 0;

        while (!c->dead && moved < H2_READ_BUDGET) {
                const uint8_t *data;
                ssize_t n = tls_client_recv_view(c->tls, c->rbuf, H2_READ_SIZE, &data);
                if (n == -EAGAIN)
                        break;
                if (n == 0) {
                        conn_die(c, "the server closed the connection");
                        break;
                }
                if (n < 0) {
                        conn_die(c, n == -EPROTO ? "the server closed the connection with a TLS alert"
                                                 : "the connection failed");
                        break;
                }
                ssize_t r = nghttp2_session_mem_recv(c->session, data, (size_t) n);
                tls_client_recv_done(c->tls); /* nghttp2 copied what it keeps */
                if (r < 0) {
                        char why[128];
                        snprintf(why, sizeof why, "HTTP/2 error: %s", nghttp2_strerror((int) r));
                        conn_die(c, why);
                        break;
                }
                moved += (size_t) n;
        }
        for (H2Call *k = c->calls; k; k = k->next)
                h2_credit(c, k);
}

/* Writes what nghttp2 has to send. True if the socket is full (wait for POLLOUT). */
static bool io_write(H2Conn *c) {
        while (!c->dead) {
                if (c->send_retry == 0) {
                        /* coalesce frames into one record (not while a send waits to be repeated) */
                        while (c->obuf.len < 16384) {
                                const uint8_t *p;
                                ssize_t n = nghttp2_session_mem_send(c->session, &p);
                                if (n < 0) {
                                        conn_die(c, "HTTP/2 error");
                                        return false;
                                }
                                if (n == 0)
                                        break;
                                if (h2_buf_append(&c->obuf, p, (size_t) n, false) < 0) {
                                        conn_die(c, "out of memory");
                                        return false;
                                }
                        }
                }
                if (c->obuf.len == 0)
                        return false;
                size_t size = c->send_retry ?: c->obuf.len;
                ssize_t n = tls_client_send(c->tls, c->obuf.data + c->obuf.off, size);
                if (n == -EAGAIN) {
                        c->send_retry = size;
                        return true;
                }
                c->send_retry = 0;
                if (n < 0) {
                        conn_die(c, "the connection failed");
                        return false;
                }
                h2_buf_drop(&c->obuf, (size_t) n);
        }
        return false;
}

/* Deadlines and keepalive. Returns the poll() timeout in ms (-1: none). */
static int io_timers(H2Conn *c) {
        uint64_t now = now_usec(CLOCK_MONOTONIC), next = UINT64_MAX;

        if (c->dead)
                return -1;
        for (H2Call *k = c->calls; k; k = k->next) {
                if (k->ended || !k->deadline)
                        continue;
                if (k->deadline <= now)
                        h2_call_abort(c, k, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
                else
                        next = MIN(next, k->deadline);
        }
        if (c->ka && c->n_open > 0) {
                if (c->ping_deadline && c->ping_deadline <= now) {
                        conn_die(c, "the server did not answer a keepalive ping in time");
                        return -1;
                }
                if (!c->ping_deadline && !c->next_ping)
                        c->next_ping = now + c->ka;
                if (!c->ping_deadline && c->next_ping <= now) {
                        if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL) == 0)
                                c->ping_deadline = now + c->ka_timeout;
                        c->next_ping = 0;
                }
                next = MIN(next, c->ping_deadline ?: c->next_ping);
        } else {
                c->next_ping = c->ping_deadline = 0;
        }
        if (next == UINT64_MAX)
                return -1;
        return (int) MIN((next - now + 999) / 1000, (uint64_t) INT32_MAX);
}

static void *io_thread(void *userdata) {
        H2Conn *c = userdata;

        pthread_mutex_lock(&c->lock);
        while (!c->stop) {
                int timeout = io_timers(c);
                bool want_out = false;

                if (!c->dead) {
                        io_read(c);
                        want_out = io_write(c);
                        if (!c->dead && !nghttp2_session_want_read(c->session) &&
                            !nghttp2_session_want_write(c->session) && c->obuf.len == 0)
                                conn_die(c, "the server closed the connection");
                        if (!c->dead && tls_client_pending(c->tls) > 0)
                                continue;
                        timeout = io_timers(c); /* reads may have opened or ended calls */
                }
                struct pollfd p[2] = {
                        { .fd = c->wake_fd, .events = POLLIN },
                        { .fd = c->dead ? -1 : tls_client_fd(c->tls),
                          .events = (short) (POLLIN | (want_out ? POLLOUT : 0)) },
                };
                pthread_mutex_unlock(&c->lock);
                (void) poll(p, 2, timeout);
                if (p[0].revents & POLLIN) {
                        uint64_t v;
                        (void) !read(c->wake_fd, &v, sizeof v);
                }
                pthread_mutex_lock(&c->lock);
        }
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

static int session_new(H2Conn *c) {
        nghttp2_session_callbacks *cb = NULL;
        nghttp2_option *opt = NULL;
        int r;

        if (nghttp2_session_callbacks_new(&cb) != 0)
                return -ENOMEM;
        nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
        if (nghttp2_option_new(&opt) != 0) {
                nghttp2_session_callbacks_del(cb);
                return -ENOMEM;
        }
        nghttp2_option_set_no_auto_window_update(opt, 1);
        r = nghttp2_session_client_new2(&c->session, cb, c, opt);
        nghttp2_option_del(opt);
        nghttp2_session_callbacks_del(cb);
        if (r != 0)
                return -ENOMEM;

        nghttp2_settings_entry settings[] = {
                { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
                { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->stream_window },
        };
        if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, ELEMENTSOF(settings)) != 0 ||
            nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
                return -ENOMEM;
        return 0;
}

int h2_conn_new(TlsClient *tls, const H2Options *opt, H2Conn **ret) {
        pthread_attr_t attr;
        H2Conn *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c) {
                tls_client_free(tls);
                return -ENOMEM;
        }
        pthread_mutex_init(&c->lock, NULL);
        c->tls = tls;
        c->ka = opt->keepalive_usec;
        c->ka_timeout = opt->keepalive_timeout_usec ?: opt->keepalive_usec;
        c->stream_window = opt->stream_window ? MIN(opt->stream_window, (uint32_t) NGHTTP2_MAX_WINDOW_SIZE) : H2_STREAM_WINDOW;
        c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        c->authority = strdup(opt->authority);
        c->user_agent = strdup(opt->user_agent ?: "jwctl");
        c->rbuf = malloc(H2_READ_SIZE);
        if (c->wake_fd < 0 || !c->authority || !c->user_agent || !c->rbuf) {
                h2_conn_free(c);
                return -ENOMEM;
        }
        r = session_new(c);
        if (r < 0) {
                h2_conn_free(c);
                return r;
        }
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, H2_IO_STACK);
        r = -pthread_create(&c->thread, &attr, io_thread, c);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                h2_conn_free(c);
                return r;
        }
        c->thread_started = true;
        *ret = c;
        return 0;
}

H2Conn *h2_conn_free(H2Conn *c) {
        if (!c)
                return NULL;
        if (c->thread_started) {
                pthread_mutex_lock(&c->lock);
                c->stop = true;
                pthread_mutex_unlock(&c->lock);
                h2_wake(c);
                pthread_join(c->thread, NULL);
        }
        for (H2Call *k = c->calls; k; k = k->next) { /* calls freed after us see a dead connection */
                h2_call_end_with(k, GRPC_STATUS_CANCELLED, NULL);
                k->conn = NULL;
        }
        nghttp2_session_del(c->session);
        tls_client_free(c->tls);
        safe_close(c->wake_fd);
        h2_buf_free(&c->obuf);
        pthread_mutex_destroy(&c->lock);
        free(c->dead);
        free(c->authority);
        free(c->user_agent);
        free(c->rbuf);
        free(c);
        return NULL;
}

TlsClient *h2_conn_tls(H2Conn *c) {
        return c->tls;
}
