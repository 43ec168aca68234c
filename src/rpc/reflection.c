/* SPDX-License-Identifier: MIT */
/*
 * gRPC server reflection, v1 and v1alpha (see reflection.h).
 *
 * The one idea: a ServerReflectionInfo stream is a ping-pong driven by one
 * batch at a time: [initial metadata + receive], then for each request
 * [send its answer + receive the next], all with the one tag TAG_RECV; so
 * at most one message of a stream is ever held by the daemon, and a client
 * that sends faster than it reads is simply not read. The client's
 * half-close ends the stream with OK; gRPC's shutdown cancels it.
 * Answers point into the embedded descriptor set: nothing is copied but
 * the packed message.
 */

#include <errno.h>
#include <stdlib.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "policy/policy.h"
#include "rpc/reflection.h"
#include "rpc/server-internal.h"
#include "shared/string-util.h"
#include "wire/codec.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest ReflectionRequest;
typedef Grpc__Reflection__V1__ServerReflectionResponse ReflectionResponse;

/* Starts [send (if any) + receive]; false if gRPC refused it. Holds a
 * reference until TAG_RECV. */
static bool start_turn(RpcCall *c, grpc_byte_buffer *send) {
        grpc_op ops[2] = {}, *op = ops;

        if (!c->initial_md_sent) {
                op->op = GRPC_OP_SEND_INITIAL_METADATA;
                op++;
                c->initial_md_sent = true;
        }
        if (send) {
                c->send_buf = send;
                op->op = GRPC_OP_SEND_MESSAGE;
                op->data.send_message.send_message = send;
                op++;
        }
        op->op = GRPC_OP_RECV_MESSAGE;
        op->data.recv_message.recv_message = &c->recv_buf;
        op++;
        call_ref(c);
        if (grpc_call_start_batch(c->call, ops, op - ops, &c->tag_recv, NULL) != GRPC_CALL_OK) {
                call_unref(c);
                return false;
        }
        return true;
}

void reflection_start(RpcCall *c) {
        Server *s = c->server;

        if (!policy_knows(s->policy, c->identity)) {
                if (s->denied)
                        s->denied(s->denied_userdata, c->identity, "use server reflection (not in the policy)", NULL);
                call_finishf(c, GRPC_STATUS_PERMISSION_DENIED, "client '%s' is not in the policy", c->identity);
                return;
        }
        if (!start_turn(c, NULL))
                call_finishf(c, GRPC_STATUS_INTERNAL, "cannot read the reflection request");
}

/* Answers ------------------------------------------------------------------------ */

static grpc_byte_buffer *pack_error(ReflectionResponse *resp, grpc_status_code code, const char *what,
                                    const char *name) {
        Grpc__Reflection__V1__ErrorResponse err = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
        _cleanup_free_ char *message = NULL;
        char quoted[256];

        quote_printable(quoted, sizeof(quoted) - 4, name);
        message = strdup_printf("%s '%s' not found", what, quoted);
        err.error_code = code;
        err.error_message = message ? message : (char *) "not found";
        resp->message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp->error_response = &err;
        return codec_pack(&resp->base);
}

/* File i and everything it imports. */
static grpc_byte_buffer *pack_files(DescriptorDb *db, ReflectionResponse *resp, size_t i) {
        Grpc__Reflection__V1__FileDescriptorResponse files = GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
        size_t n_all = descriptor_db_n_files(db);
        _cleanup_free_ size_t *idx = calloc(n_all, sizeof(size_t));
        _cleanup_free_ ProtobufCBinaryData *bin = calloc(n_all, sizeof(ProtobufCBinaryData));
        size_t n;

        if (!idx || !bin)
                return NULL;
        n = descriptor_db_with_imports(db, i, idx);
        for (size_t k = 0; k < n; k++) {
                const DescriptorFile *f = descriptor_db_file(db, idx[k]);
                bin[k] = (ProtobufCBinaryData) { .len = f->size, .data = (uint8_t *) f->data };
        }
        files.n_file_descriptor_proto = n;
        files.file_descriptor_proto = bin;
        resp->message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp->file_descriptor_response = &files;
        return codec_pack(&resp->base);
}

static grpc_byte_buffer *pack_services(DescriptorDb *db, ReflectionResponse *resp) {
        Grpc__Reflection__V1__ListServiceResponse list = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
        size_t n = descriptor_db_n_services(db);
        _cleanup_free_ Grpc__Reflection__V1__ServiceResponse *items = calloc(n, sizeof(*items));
        _cleanup_free_ Grpc__Reflection__V1__ServiceResponse **ptrs = calloc(n, sizeof(*ptrs));

        if (n > 0 && (!items || !ptrs))
                return NULL;
        for (size_t k = 0; k < n; k++) {
                items[k] = (Grpc__Reflection__V1__ServiceResponse) GRPC__REFLECTION__V1__SERVICE_RESPONSE__INIT;
                items[k].name = (char *) descriptor_db_service(db, k);
                ptrs[k] = &items[k];
        }
        list.n_service = n;
        list.service = ptrs;
        resp->message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp->list_services_response = &list;
        return codec_pack(&resp->base);
}

/* The packed answer to req; NULL when out of memory. */
static grpc_byte_buffer *answer(DescriptorDb *db, ReflectionRequest *req) {
        ReflectionResponse resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
        int i;

        resp.valid_host = req->host;
        resp.original_request = req;
        switch (req->message_request_case) {
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
                i = descriptor_db_find_file(db, req->file_by_filename);
                return i < 0 ? pack_error(&resp, GRPC_STATUS_NOT_FOUND, "file", req->file_by_filename)
                             : pack_files(db, &resp, i);
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
                i = descriptor_db_find_symbol(db, req->file_containing_symbol);
                return i < 0 ? pack_error(&resp, GRPC_STATUS_NOT_FOUND, "symbol", req->file_containing_symbol)
                             : pack_files(db, &resp, i);
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
                return pack_error(&resp, GRPC_STATUS_NOT_FOUND, "extension of",
                                  req->file_containing_extension ? req->file_containing_extension->containing_type : "");
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
                return pack_error(&resp, GRPC_STATUS_NOT_FOUND, "extensions of", req->all_extension_numbers_of_type);
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
                return pack_services(db, &resp);
        default:
                return pack_error(&resp, GRPC_STATUS_INVALID_ARGUMENT, "request", "(none)");
        }
}

void reflection_recv_closure(Engine *e, void *userdata) {
        RpcCall *c = userdata;
        grpc_byte_buffer *in = TAKE_PTR(c->recv_buf), *out = NULL;
        ReflectionRequest *req = NULL;

        if (c->send_buf) {
                grpc_byte_buffer_destroy(c->send_buf);
                c->send_buf = NULL;
        }
        /* Without the engine the server may be gone; a failed batch: the
         * call was cancelled (the client left, or gRPC shuts down). */
        if (!e || !c->send_ok || !call_may_send(c))
                goto done;
        if (!in) { /* the client half-closed: the conversation is over */
                call_finish(c, GRPC_STATUS_OK, NULL, NULL);
                goto done;
        }
        req = (ReflectionRequest *) codec_unpack(in, &grpc__reflection__v1__server_reflection_request__descriptor);
        if (!req) {
                call_finishf(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed ServerReflectionRequest");
                goto done;
        }
        out = answer(c->server->descriptors, req);
        if (!out)
                call_finishf(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        else if (!start_turn(c, out))
                call_finishf(c, GRPC_STATUS_INTERNAL, "cannot answer the reflection request");
done:
        if (req)
                protobuf_c_message_free_unpacked(&req->base, NULL);
        if (in)
                grpc_byte_buffer_destroy(in);
        call_unref(c);
}
