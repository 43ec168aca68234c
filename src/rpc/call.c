/* SPDX-License-Identifier: MIT */
/*
 * Calls of the gRPC server: references, tags, the finishing batch (see call.h).
 *
 * The one idea: a call lives as long as anyone who may still touch it holds a
 * reference, and every started batch is such a holder, so a completion can
 * never arrive for a freed call. The last reference frees without looking at
 * the Server, which may be gone by then (a closure run at engine teardown).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>

#include "rpc/call.h"
#include "wire/codec.h"

RpcCall *call_new(Server *s, int method) {
        RpcCall *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        atomic_init(&c->n_ref, 1);
        c->server = s;
        c->method = method;
        grpc_metadata_array_init(&c->md);
        grpc_call_details_init(&c->details);
        c->tag_new = (Tag) { TAG_NEW, c };
        c->tag_close = (Tag) { TAG_CLOSE, c };
        c->tag_send = (Tag) { TAG_SEND, c };
        c->tag_finish = (Tag) { TAG_FINISH, c };
        c->tag_recv = (Tag) { TAG_RECV, c };
        c->watch_sent = -1;
        return c;
}

RpcCall *call_ref(RpcCall *c) {
        atomic_fetch_add(&c->n_ref, 1);
        return c;
}

void call_unref(RpcCall *c) {
        if (!c || atomic_fetch_sub(&c->n_ref, 1) != 1)
                return;
        if (c->call)
                grpc_call_unref(c->call);
        grpc_metadata_array_destroy(&c->md);
        grpc_call_details_destroy(&c->details);
        if (c->payload)
                grpc_byte_buffer_destroy(c->payload);
        if (c->send_buf)
                grpc_byte_buffer_destroy(c->send_buf);
        if (c->recv_buf)
                grpc_byte_buffer_destroy(c->recv_buf);
        if (c->finish_buf)
                grpc_byte_buffer_destroy(c->finish_buf);
        if (c->have_status_details)
                grpc_slice_unref(c->status_details);
        if (c->have_chunk_slice)
                grpc_slice_unref(c->chunk_slice);
        request_free(c->input_next);
        request_free(c->input_cur);
        free(c->input_next_error);
        request_free(c->request);
        free(c->identity);
        free(c);
}

void call_finish(RpcCall *c, grpc_status_code code, const char *message, const ProtobufCMessage *response) {
        grpc_op ops[3] = {}, *op = ops;

        if (c->finished)
                return;
        c->finished = true;

        if (!c->initial_md_sent) {
                op->op = GRPC_OP_SEND_INITIAL_METADATA;
                op++;
                c->initial_md_sent = true;
        }
        if (response) {
                c->finish_buf = codec_pack(response);
                op->op = GRPC_OP_SEND_MESSAGE;
                op->data.send_message.send_message = c->finish_buf;
                op++;
        }
        c->status_details = grpc_slice_from_copied_string(message ? message : "");
        c->have_status_details = true;
        op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        op->data.send_status_from_server.status = code;
        op->data.send_status_from_server.status_details = &c->status_details;
        op++;

        call_ref(c);
        if (grpc_call_start_batch(c->call, ops, op - ops, &c->tag_finish, NULL) != GRPC_CALL_OK)
                call_unref(c);
}

void call_finishf(RpcCall *c, grpc_status_code code, const char *fmt, ...) {
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        call_finish(c, code, buf, NULL);
}
