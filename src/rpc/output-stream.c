/* SPDX-License-Identifier: MIT */
/*
 * Output streaming: an Output call is a subscriber of the engine (a cursor
 * into the job's output log) that sends each chunk as one message.
 *
 * The one idea: at most one chunk per stream is in flight. The engine hands
 * the next chunk only after the previous send completed (the send's
 * completion posts output_stream_sent_closure(), which asks the engine for
 * more), so a slow client lags on its own cursor and the daemon buffers at
 * most one chunk per stream; how big that chunk may be is stream-pace.c's
 * business (small for a client that does not keep up, and within a budget
 * shared by all streams). A subscribed call is on the server's stream list
 * and holds a reference of its own until the subscription ends.
 *
 * Threads: everything here runs on the engine thread.
 */

#include <errno.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>

#include "jobworker/v1/jobworker.pb-c.h"
#include "rpc/response.h"
#include "rpc/server-internal.h"
#include "wire/wire.h"
#include "shared/time-util.h"

static void stream_send_end(RpcCall *c, const JobStatus *st);

static void stream_link(Server *s, RpcCall *c) {
        list_append(&s->streams, &c->by_stream);
}

static void stream_unlink(Server *s, RpcCall *c) {
        list_unlink(&s->streams, &c->by_stream);
        server_stream_gone(s);
}

/* Ends c's subscription (if any), dropping its reference. */
static void stream_cancel(Engine *e, RpcCall *c) {
        if (!c->subscribed)
                return;
        c->subscribed = false;
        stream_unlink(c->server, c);
        if (e)
                (void) engine_unsubscribe(e, c->sub);
        call_unref(c);
}

unsigned server_stream_count(Server *s) {
        return s->streams.n;
}

/* Shutting down: every stream ends now; an idle one is told why. */
void output_stream_cancel_all(Server *s) {
        while (s->streams.first) {
                RpcCall *c = list_entry(s->streams.first, RpcCall, by_stream);
                bool idle = !c->send_in_flight;

                call_ref(c);
                stream_cancel(s->engine, c);
                if (idle && call_may_send(c))
                        call_finishf(c, GRPC_STATUS_UNAVAILABLE, "the server is shutting down");
                call_unref(c);
        }
}

static void stream_send_end(RpcCall *c, const JobStatus *st) {
        ResponseStatusStrings strings;
        Jobworker__V1__JobStatus js;
        Jobworker__V1__OutputResponse resp = JOBWORKER__V1__OUTPUT_RESPONSE__INIT;

        if (!call_may_send(c))
                return;
        response_job_status(st, &js, &strings);
        resp.kind_case = JOBWORKER__V1__OUTPUT_RESPONSE__KIND_END;
        resp.end = &js;
        call_finish(c, GRPC_STATUS_OK, NULL, &resp.base);
}

void output_stream_cancel_closure(Engine *e, void *userdata) {
        RpcCall *c = userdata;

        if (e) /* without the engine, the server may be gone too */
                stream_cancel(e, c);
        call_unref(c);
}

/* The engine reads a chunk straight into the slice that goes out, after
 * room for the few bytes of protobuf in front of it (rpc/wire.h): the chunk
 * is not copied again to pack it. (Measured: one 256 KiB memmove per chunk
 * less, about 2 % of the machine's CPU while a follower streams.) */
static void *chunk_buffer(void *userdata, size_t size) {
        RpcCall *c = userdata;

        if (size == 0 || (c->have_chunk_slice && GRPC_SLICE_LENGTH(c->chunk_slice) < WIRE_CHUNK_HEADER_MAX + size)) {
                if (c->have_chunk_slice)
                        grpc_slice_unref(c->chunk_slice);
                c->have_chunk_slice = false;
        }
        if (size == 0)
                return NULL;
        if (!c->have_chunk_slice) {
                c->chunk_slice = grpc_slice_malloc(WIRE_CHUNK_HEADER_MAX + size);
                c->have_chunk_slice = true;
        }
        return GRPC_SLICE_START_PTR(c->chunk_slice) + WIRE_CHUNK_HEADER_MAX;
}

static size_t chunk_max(void *userdata) {
        RpcCall *c = userdata;

        return stream_pace_next(&c->pace, &c->server->stream_budget, c->server->streams.n, ENGINE_CHUNK_MAX);
}

/* The chunk as a byte buffer: in place when it is in chunk_slice. */
static grpc_byte_buffer *chunk_pack(RpcCall *c, JobStream stream, uint64_t offset, const void *data, size_t size) {
        Jobworker__V1__Stream st = stream == JOB_STREAM_STDERR ? JOBWORKER__V1__STREAM__STREAM_STDERR
                                                                : JOBWORKER__V1__STREAM__STREAM_STDOUT;
        uint8_t hdr[WIRE_CHUNK_HEADER_MAX];
        grpc_byte_buffer *bb;
        grpc_slice out;
        size_t h;

        h = wire_chunk_header(hdr, st, offset, size);
        if (c->have_chunk_slice && data == GRPC_SLICE_START_PTR(c->chunk_slice) + WIRE_CHUNK_HEADER_MAX) {
                memcpy(GRPC_SLICE_START_PTR(c->chunk_slice) + WIRE_CHUNK_HEADER_MAX - h, hdr, h);
                out = grpc_slice_sub(c->chunk_slice, WIRE_CHUNK_HEADER_MAX - h, WIRE_CHUNK_HEADER_MAX + size);
                grpc_slice_unref(c->chunk_slice);
                c->have_chunk_slice = false;
        } else {
                out = grpc_slice_malloc(h + size);
                memcpy(GRPC_SLICE_START_PTR(out), hdr, h);
                memcpy(GRPC_SLICE_START_PTR(out) + h, data, size);
        }
        bb = grpc_raw_byte_buffer_create(&out, 1);
        grpc_slice_unref(out);
        return bb;
}

static void on_chunk(void *userdata, JobStream stream, uint64_t offset, const void *data, size_t size) {
        RpcCall *c = userdata;
        grpc_op ops[2] = {}, *op = ops;

        if (!call_may_send(c) || c->send_in_flight)
                goto fail;

        if (!c->initial_md_sent) {
                op->op = GRPC_OP_SEND_INITIAL_METADATA;
                op++;
                c->initial_md_sent = true;
        }
        c->send_buf = chunk_pack(c, stream, offset, data, size);
        op->op = GRPC_OP_SEND_MESSAGE;
        op->data.send_message.send_message = c->send_buf;
        op++;

        c->send_in_flight = true;
        call_ref(c);
        if (grpc_call_start_batch(c->call, ops, op - ops, &c->tag_send, NULL) != GRPC_CALL_OK) {
                c->send_in_flight = false;
                call_unref(c);
                goto fail;
        }
        /* counted until the send completes: gRPC holds the chunk until then */
        stream_pace_sent(&c->pace, &c->server->stream_budget, size, now_usec(CLOCK_MONOTONIC));
        return;

fail:
        /* Not from inside the engine's callback: post the cancellation. */
        if (engine_post(c->server->engine, output_stream_cancel_closure, call_ref(c)) < 0)
                call_unref(c);
}

static void on_end(void *userdata, const JobStatus *status) {
        RpcCall *c = userdata;

        if (!c->subscribed)
                return;
        c->subscribed = false;
        stream_unlink(c->server, c);
        if (c->send_in_flight) {
                c->pending_end = *status;
                c->have_pending_end = true;
        } else
                stream_send_end(c, status);
        call_unref(c); /* the subscription's reference */
}

static const SubscriberOps subscriber_ops = {
        .chunk = on_chunk,
        .end = on_end,
        .buffer = chunk_buffer,
        .chunk_max = chunk_max,
};

void output_stream_handle(Engine *e, RpcCall *c) {
        const Request *req = c->request;
        JobStatus st;
        SubscriberId sub;
        int r;

        if (!handlers_authorize_job(e, c, AUTHZ_ACTION_OUTPUT, &st))
                return;
        if (server_state(c->server) != SERVER_RUNNING) {
                call_finishf(c, GRPC_STATUS_UNAVAILABLE, "the server is shutting down");
                return;
        }
        if (c->server->streams.n >= c->server->max_output_streams) {
                call_finishf(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many output streams (at most %u)",
                             c->server->max_output_streams);
                return;
        }

        c->subscribed = true;
        stream_link(c->server, c);
        call_ref(c); /* the subscription's reference */
        r = engine_subscribe(e, &req->job_id, req->streams, req->offset, req->follow, &subscriber_ops, c, &sub);
        if (r < 0) {
                if (c->subscribed) {
                        c->subscribed = false;
                        stream_unlink(c->server, c);
                        call_unref(c);
                }
                handlers_finish_error(c, r, "cannot read the output");
                return;
        }
        c->sub = sub;
}

/* A chunk was sent (or failed): let the subscriber go on. */
void output_stream_sent_closure(Engine *e, void *userdata) {
        RpcCall *c = userdata;

        if (c->send_buf) {
                grpc_byte_buffer_destroy(c->send_buf);
                c->send_buf = NULL;
        }
        c->send_in_flight = false;
        if (!e) {
                call_unref(c);
                return;
        }
        stream_pace_done(&c->pace, &c->server->stream_budget, now_usec(CLOCK_MONOTONIC), ENGINE_CHUNK_MAX);
        if (c->have_pending_end) {
                c->have_pending_end = false;
                if (c->send_ok)
                        stream_send_end(c, &c->pending_end);
        } else if (!c->send_ok || server_state(c->server) == SERVER_CLOSED)
                stream_cancel(e, c);
        else if (c->subscribed && engine_subscriber_ready(e, c->sub) < 0)
                stream_cancel(e, c);
        call_unref(c);
}
