/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What h2.c (the connection and its I/O thread) and h2-call.c (the
 * callers' side of a call) share. Everything here is used with conn->lock
 * held, unless it says otherwise.
 */

#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/h2.h"
#include "cli/h2-status.h"

typedef struct H2Buf {
        uint8_t *data;
        size_t off, len, size; /* the bytes are data[off, off + len) */
        bool pinned;           /* bytes before off are still read by the caller: data must not move */
        uint8_t *retired;      /* a pinned data the buffer moved away from, freed at unpin */
} H2Buf;

struct H2Call {
        H2Conn *conn;
        H2Call *prev, *next; /* in conn->calls */
        pthread_cond_t cond;
        int32_t stream_id;   /* > 0 once submitted */
        bool stream_open;    /* nghttp2 still has the stream */
        bool ended;          /* the status is known; no more data will come */
        bool send_closed;
        uint64_t deadline;   /* CLOCK_MONOTONIC usec, 0: none */
        H2Buf in;              /* received, length-prefixed messages; pinned while the caller holds one */
        uint64_t in_total, consumed, taken; /* stream bytes received / given back / taken by the caller */
        H2Buf out;             /* length-prefixed messages to send */
        H2Status st;
};

struct H2Conn {
        pthread_mutex_t lock;
        TlsClient *tls;
        nghttp2_session *session;
        int wake_fd;
        pthread_t thread;
        bool thread_started;
        bool stop;
        char *dead;          /* why the connection is dead, NULL while it lives */
        H2Call *calls;
        unsigned n_open;
        char *authority, *user_agent;
        uint32_t stream_window; /* what a stream may hold unread (H2Options) */
        H2Buf obuf;            /* frames to write, coalesced into records */
        size_t send_retry;   /* size of a tls_client_send() that said -EAGAIN */
        uint64_t ka, ka_timeout, next_ping, ping_deadline;
        uint8_t *rbuf;
};

void h2_buf_free(H2Buf *b);
/* Appends n bytes, prefixed with a gRPC message header when header. 0 or -ENOMEM. */
int h2_buf_append(H2Buf *b, const void *p, size_t n, bool header);
void h2_buf_drop(H2Buf *b, size_t n);
/* Drops the contents; a pinned buffer keeps its memory for the caller. */
void h2_buf_clear(H2Buf *b);
/* The caller is done with the bytes before off. */
void h2_buf_unpin(H2Buf *b);

/* Wakes the I/O thread (any thread, lock or not). */
void h2_wake(H2Conn *c);
/* After queueing work in the session: wakes the I/O thread if it has something to write. */
void h2_kick(H2Conn *c);

/* The size of the first message in b with its header, 5 while the header is incomplete. */
size_t h2_first_message_size(const H2Buf *b);
/* Gives back to flow control what the caller took plus the first message so far. */
void h2_credit(H2Conn *c, H2Call *k);

/* Ends the call with st (taken) unless it has ended already; wakes its waiters. */
void h2_call_end(H2Call *k, H2Status *st);
void h2_call_end_with(H2Call *k, grpc_status_code code, const char *message);
/* Ends it here while nghttp2 may still have the stream: drops what it
 * received and resets the stream. */
void h2_call_abort(H2Conn *c, H2Call *k, grpc_status_code code, const char *message);

/* nghttp2's data source for every request body (reads k->out). */
ssize_t h2_read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *flags,
                     nghttp2_data_source *source, void *userdata);
