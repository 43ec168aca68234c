/* SPDX-License-Identifier: MIT */
/*
 * Input calls: a client stream of messages written to a running job's
 * standard input (the engine's stdin writer, core/job-input.c).
 *
 * The one idea: the next message is asked of gRPC only once the previous
 * one is entirely in the job's pipe. So at most one message per call is held
 * here, HTTP/2 flow control holds the client back while the job does not
 * read, and the daemon's memory does not grow with a slow job. A call holds
 * the job's stdin from its first message until eof, the end of its stream or
 * its cancellation; each of them closes the stdin (the job reads EOF).
 *
 * References: the batch receiving the next message holds one (moved to the
 * closure that handles it), and so does a pending write (released by its
 * done, or by the cancellation that drops it).
 *
 * Threads: input_stream_recv() on the completion-queue thread, the rest on
 * the engine thread.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "jobworker/v1/jobworker.pb-c.h"
#include "rpc/server-internal.h"

static void input_apply(Engine *e, RpcCall *c, const Request *m);

/* Lets go of the job's stdin (the job reads EOF). A pending write is
 * dropped by the engine without its done: its reference is ours to drop. */
static void input_release(Engine *e, RpcCall *c) {
        if (!c->input_open)
                return;
        c->input_open = false;
        (void) engine_input_close(e, c->input);
        if (c->input_write_pending) {
                c->input_write_pending = false;
                call_unref(c);
        }
}

static void input_finish_ok(RpcCall *c) {
        Jobworker__V1__InputResponse resp = JOBWORKER__V1__INPUT_RESPONSE__INIT;

        resp.bytes_written = c->input_bytes;
        call_finish(c, GRPC_STATUS_OK, NULL, &resp.base);
}

/* Asks gRPC for the next message (input_stream_recv gets it). */
static void input_request_next(Engine *e, RpcCall *c) {
        grpc_op op = { .op = GRPC_OP_RECV_MESSAGE, .data.recv_message.recv_message = &c->recv_buf };

        if (!call_may_send(c)) {
                input_release(e, c);
                return;
        }
        call_ref(c);
        if (grpc_call_start_batch(c->call, &op, 1, &c->tag_recv, NULL) != GRPC_CALL_OK) {
                call_unref(c);
                input_release(e, c);
                call_finishf(c, GRPC_STATUS_INTERNAL, "cannot read the next message");
        }
}

/* The job closed its stdin (a reader like head that had enough) or ended. */
static void input_finish_closed(RpcCall *c) {
        call_finishf(c, GRPC_STATUS_FAILED_PRECONDITION,
                     "job %s closed its standard input or ended (%llu bytes were written to it)",
                     c->request->job_id_string, (unsigned long long) c->input_bytes);
}

static void on_written(Engine *e, int r, void *userdata) {
        RpcCall *c = userdata;

        c->input_write_pending = false;
        if (!e) { /* the engine is going: the server may be gone too */
                call_unref(c);
                return;
        }
        if (r >= 0) {
                c->input_bytes += c->input_cur ? c->input_cur->input_size : c->request->input_size;
                input_request_next(e, c);
        } else {
                input_release(e, c);
                input_finish_closed(c);
        }
        call_unref(c); /* the write's */
}

/* Acts on one message: m is c->request (the first) or c->input_cur. */
static void input_apply(Engine *e, RpcCall *c, const Request *m) {
        int r;

        switch (m->input_kind) {
        case REQUEST_INPUT_DATA:
                if (m->input_size == 0)
                        break;
                c->input_write_pending = true;
                r = engine_input_write(e, c->input, m->input_data, m->input_size, on_written, call_ref(c));
                if (r < 0) {
                        c->input_write_pending = false;
                        call_unref(c);
                        input_release(e, c);
                        /* -ENOENT: the job ended since the last message took its writer. */
                        if (r == -ENOENT)
                                input_finish_closed(c);
                        else
                                handlers_finish_error(c, r, "cannot write to the job's standard input");
                }
                return;
        case REQUEST_INPUT_EOF:
                input_release(e, c);
                input_finish_ok(c);
                return;
        case REQUEST_INPUT_RESIZE:
                /* A pipe has no size: ignored, so a client may send it to any job. */
                r = engine_input_resize(e, c->input, m->rows, m->cols);
                if (r < 0 && r != -ENOTTY) {
                        input_release(e, c);
                        handlers_finish_error(c, r, "cannot set the window size");
                        return;
                }
                break;
        case REQUEST_INPUT_NONE:
                break;
        }
        input_request_next(e, c);
}

/* Why a job's stdin cannot be had, as the client reads it. */
static void input_open_failed(RpcCall *c, int r, const JobStatus *st) {
        const char *id = c->request->job_id_string;

        switch (r) {
        case -ESRCH:
                call_finishf(c, GRPC_STATUS_FAILED_PRECONDITION, "job %s is not running (%s)", id,
                             job_state_to_string(st->state));
                break;
        case -ENOTTY:
                call_finishf(c, GRPC_STATUS_FAILED_PRECONDITION,
                             "job %s was started without standard input (its stdin is /dev/null; start it with stdin_open)", id);
                break;
        case -EBUSY:
                call_finishf(c, GRPC_STATUS_FAILED_PRECONDITION,
                             "the standard input of job %s has a writer already (one at a time)", id);
                break;
        case -EPIPE:
                call_finishf(c, GRPC_STATUS_FAILED_PRECONDITION,
                             "the standard input of job %s was closed already (eof, or its writer went away)", id);
                break;
        default:
                handlers_finish_error(c, r, "cannot open the job's standard input");
                break;
        }
}

void input_stream_handle(Engine *e, RpcCall *c) {
        JobStatus st;
        int r;

        if (!handlers_authorize_job(e, c, AUTHZ_ACTION_INPUT, &st))
                return;
        r = engine_input_open(e, &c->request->job_id, &c->input);
        if (r < 0) {
                input_open_failed(c, r, &st);
                return;
        }
        c->input_open = true;
        input_apply(e, c, c->request);
}

static void on_recv_closure(Engine *e, void *userdata) {
        RpcCall *c = userdata;

        if (!e || !c->input_open) {
                call_unref(c);
                return;
        }
        if (c->input_next_error) {
                input_release(e, c);
                call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, c->input_next_error, NULL);
        } else if (!c->input_next) {
                /* The client half-closed without eof: the same, documented. */
                input_release(e, c);
                input_finish_ok(c);
        } else {
                request_free(c->input_cur);
                c->input_cur = TAKE_PTR(c->input_next);
                input_apply(e, c, c->input_cur);
        }
        call_unref(c);
}

void input_stream_recv(Server *s, RpcCall *c) {
        grpc_byte_buffer_reader reader;
        grpc_slice flat;
        int r = 0;

        request_free(TAKE_PTR(c->input_next));
        free(TAKE_PTR(c->input_next_error));
        if (c->recv_buf) {
                if (!grpc_byte_buffer_reader_init(&reader, c->recv_buf))
                        r = -EINVAL;
                else {
                        flat = grpc_byte_buffer_reader_readall(&reader);
                        grpc_byte_buffer_reader_destroy(&reader);
                        r = request_decode_input_more(GRPC_SLICE_START_PTR(flat), GRPC_SLICE_LENGTH(flat),
                                                      &c->input_next, &c->input_next_error);
                        grpc_slice_unref(flat);
                }
                grpc_byte_buffer_destroy(TAKE_PTR(c->recv_buf));
                if (r < 0 && !c->input_next_error)
                        c->input_next_error = strdup(r == -ENOMEM ? "out of memory" : "invalid Input message");
                if (r < 0 && !c->input_next_error) { /* no memory even for that */
                        c->input_next = NULL;
                        r = 0;
                }
        }
        /* The batch's reference moves to the closure. */
        if (engine_post(s->engine, on_recv_closure, c) < 0)
                call_unref(c);
}

void input_stream_cancel_closure(Engine *e, void *userdata) {
        RpcCall *c = userdata;

        if (e)
                input_release(e, c);
        call_unref(c);
}
