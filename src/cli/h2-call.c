/* SPDX-License-Identifier: MIT */
/*
 * The callers' side of a gRPC call on an H2Conn (see h2.h and h2.c): open a
 * stream, queue messages, half-close, take messages, wait for the status,
 * cancel. The one idea: a caller only changes the session under the
 * connection's lock and wakes the I/O thread; it waits on its call's
 * condition variable and never touches the socket.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/h2-internal.h"
#include "shared/macro.h"
#include "shared/time-util.h"

#define NV(n, v) { (uint8_t *) (n), (uint8_t *) (v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

static void call_submit(H2Conn *c, H2Call *k, const char *path, uint64_t timeout_usec, const char *timeout) {
        nghttp2_nv hdrs[] = {
                NV(":method", "POST"), NV(":scheme", "https"), NV(":path", path),
                NV(":authority", c->authority), NV("content-type", "application/grpc"), NV("te", "trailers"),
                NV("user-agent", c->user_agent), NV("grpc-timeout", timeout),
        };
        nghttp2_data_provider body = { .read_callback = h2_read_body };
        int32_t id;

        if (c->dead) {
                h2_call_end_with(k, GRPC_STATUS_UNAVAILABLE, c->dead);
                return;
        }
        id = nghttp2_submit_request(c->session, NULL, hdrs, ELEMENTSOF(hdrs) - (timeout_usec ? 0 : 1), &body, k);
        if (id < 0) {
                h2_call_end_with(k, GRPC_STATUS_UNAVAILABLE,
                              id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? "the server is closing the connection"
                                                                        : nghttp2_strerror(id));
                return;
        }
        k->stream_id = id;
        k->stream_open = true;
        c->n_open++;
        h2_wake(c);
}

int h2_call_start(H2Conn *c, const char *path, uint64_t timeout_usec, H2Call **ret) {
        H2Call *k = calloc(1, sizeof *k);
        char timeout[32];

        if (!k)
                return -ENOMEM;
        h2_timeout_header(timeout_usec, timeout, sizeof timeout);
        k->conn = c;
        pthread_cond_init(&k->cond, NULL);
        if (timeout_usec)
                k->deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;
        pthread_mutex_lock(&c->lock);
        k->next = c->calls;
        if (c->calls)
                c->calls->prev = k;
        c->calls = k;
        call_submit(c, k, path, timeout_usec, timeout);
        pthread_mutex_unlock(&c->lock);
        *ret = k;
        return 0;
}

int h2_call_send(H2Call *k, const void *msg, size_t len) {
        H2Conn *c = k->conn;
        int r;

        if (!c)
                return -EPIPE;
        pthread_mutex_lock(&c->lock);
        while (!k->ended && !k->send_closed && k->out.len > H2_SEND_QUEUE_MAX)
                pthread_cond_wait(&k->cond, &c->lock);
        if (k->ended || k->send_closed)
                r = -EPIPE;
        else
                r = h2_buf_append(&k->out, msg, len, true);
        if (r == 0 && k->stream_open) {
                (void) nghttp2_session_resume_data(c->session, k->stream_id);
                h2_kick(c);
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

int h2_call_close_send(H2Call *k) {
        H2Conn *c = k->conn;
        int r = 0;

        if (!c)
                return -EPIPE;
        pthread_mutex_lock(&c->lock);
        if (k->ended)
                r = -EPIPE;
        k->send_closed = true;
        if (k->stream_open) {
                (void) nghttp2_session_resume_data(c->session, k->stream_id);
                h2_kick(c);
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* Hands the first message of k->in to the caller in place: the buffer is
 * pinned (its bytes do not move) until the next recv. 1, 0 if incomplete,
 * -errno. */
static int take_message(H2Conn *c, H2Call *k, const uint8_t **ret_msg, size_t *ret_len) {
        size_t size = h2_first_message_size(&k->in);
        const uint8_t *p = k->in.data + k->in.off;

        if (k->in.len < 5 || k->in.len < size)
                return 0;
        if (p[0] != 0) { /* compressed: we never asked for that */
                h2_call_abort(c, k, GRPC_STATUS_INTERNAL, "the server sent a compressed message");
                return -EBADMSG;
        }
        k->in.pinned = true;
        h2_buf_drop(&k->in, size);
        k->taken += size;
        h2_credit(c, k);
        h2_kick(c);
        *ret_msg = p + 5;
        *ret_len = size - 5;
        return 1;
}

int h2_call_recv(H2Call *k, const uint8_t **ret_msg, size_t *ret_len) {
        H2Conn *c = k->conn;
        int r;

        if (!c)
                return 0;
        pthread_mutex_lock(&c->lock);
        h2_buf_unpin(&k->in); /* the caller is done with the last message */
        for (;;) {
                r = take_message(c, k, ret_msg, ret_len);
                if (r != 0 || k->ended)
                        break;
                pthread_cond_wait(&k->cond, &c->lock);
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

int h2_call_status(H2Call *k, grpc_status_code *ret_code, char **ret_message) {
        H2Conn *c = k->conn;
        char *m = NULL;

        if (c) {
                pthread_mutex_lock(&c->lock);
                while (!k->ended)
                        pthread_cond_wait(&k->cond, &c->lock);
                pthread_mutex_unlock(&c->lock);
        }
        if (ret_message && k->st.message) {
                m = strdup(k->st.message);
                if (!m)
                        return -ENOMEM;
        }
        *ret_code = k->ended ? k->st.code : GRPC_STATUS_CANCELLED;
        if (ret_message)
                *ret_message = m;
        return 0;
}

void h2_call_cancel(H2Call *k) {
        H2Conn *c = k->conn;

        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        if (!k->ended) {
                h2_call_abort(c, k, GRPC_STATUS_CANCELLED, NULL);
                h2_kick(c);
        }
        pthread_mutex_unlock(&c->lock);
}

H2Call *h2_call_free(H2Call *k) {
        H2Conn *c;

        if (!k)
                return NULL;
        c = k->conn;
        if (c) {
                pthread_mutex_lock(&c->lock);
                if (!k->ended)
                        h2_call_abort(c, k, GRPC_STATUS_CANCELLED, NULL);
                if (k->stream_open) {
                        (void) nghttp2_session_set_stream_user_data(c->session, k->stream_id, NULL);
                        if (k->in_total > k->consumed)
                                (void) nghttp2_session_consume(c->session, k->stream_id,
                                                               (size_t) (k->in_total - k->consumed));
                        h2_kick(c);
                }
                if (k->prev)
                        k->prev->next = k->next;
                else
                        c->calls = k->next;
                if (k->next)
                        k->next->prev = k->prev;
                pthread_mutex_unlock(&c->lock);
        }
        h2_status_done(&k->st);
        pthread_cond_destroy(&k->cond);
        h2_buf_free(&k->in);
        h2_buf_free(&k->out);
        free(k);
        return NULL;
}
