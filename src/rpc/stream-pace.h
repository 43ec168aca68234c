/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * How big the next chunk of an Output stream may be: a per-stream size that
 * starts small, grows while the client keeps up and falls back when a send
 * waits on the client, within a budget of bytes in flight shared by every
 * stream of the server.
 *
 * Threads: engine thread only (no locks). No allocation: the caller owns
 * both structs (the budget lives in the Server, a pace in each RpcCall).
 */

#include <stddef.h>
#include <stdint.h>

/* The smallest chunk: what a stream that never reads costs at most, beyond
 * the call itself. Always granted, even past the budget, so that no stream
 * starves; the total is then at most budget + streams x STREAM_CHUNK_MIN. */
#define STREAM_CHUNK_MIN (16u * 1024u)
/* A stream grows past STREAM_CHUNK_MIN only after this many bytes went out
 * without waiting: more than a client's HTTP/2 flow-control window before
 * it reads (64 KiB by default), so a client that never reads stalls on a
 * small chunk. */
#define STREAM_RAMP_BYTES (256u * 1024u)
/* A send that took longer than this waited on the client: the next chunk is
 * STREAM_CHUNK_MIN again. */
#define STREAM_SLOW_USEC (200u * 1000u)
/* Bytes in flight to followers across the server, by default. */
#define STREAM_BUDGET_DEFAULT (16u * 1024u * 1024u)

typedef struct StreamBudget {
        size_t total;      /* bytes in flight allowed across all streams */
        size_t in_flight;  /* bytes of chunks handed to gRPC and not completed */
} StreamBudget;

typedef struct StreamPace {
        size_t size;       /* the next chunk at most (0: not started, STREAM_CHUNK_MIN) */
        size_t fast_bytes; /* bytes sent without waiting since the last slow send */
        size_t sending;    /* bytes of the chunk in flight (counted in the budget), 0 none */
        uint64_t sent_usec;
} StreamPace;

/* The largest chunk the stream may send next, given max (the most the
 * producer hands at once) and the number of streams sharing the budget:
 * between STREAM_CHUNK_MIN and max. */
size_t stream_pace_next(const StreamPace *p, const StreamBudget *b, unsigned n_streams, size_t max);
/* A chunk of size bytes was handed to gRPC at now_usec. */
void stream_pace_sent(StreamPace *p, StreamBudget *b, size_t size, uint64_t now_usec);
/* Its send completed (or failed) at now_usec: adjusts the next size. */
void stream_pace_done(StreamPace *p, StreamBudget *b, uint64_t now_usec, size_t max);
/* The stream ends: gives back what it still counts. Safe to call twice. */
void stream_pace_release(StreamPace *p, StreamBudget *b);
