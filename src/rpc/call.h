/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One gRPC call of the server: its references, its completion-queue tags and
 * the batch that finishes it. Internal to src/rpc.
 *
 * References: whoever may still touch a call holds one — each started batch
 * (released when its tag completes), each closure posted to the engine
 * (released by the closure), an Output subscription (released when it ends).
 * call_unref() of the last reference frees the call and never touches the
 * Server, so it may run after the server is gone.
 *
 * Threads: call_ref()/call_unref() from any thread. The engine-thread fields
 * are touched only there; call_finish() from the completion-queue thread only
 * before the call was posted to the engine.
 */

#include <stdatomic.h>
#include <stdbool.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "core/engine.h"
#include "rpc/request.h"
#include "rpc/stream-pace.h"
#include "shared/list.h"
#include "shared/macro.h"

typedef struct Server Server;

/* RpcCall.method of a call to a method we do not serve. */
#define CALL_METHOD_UNREGISTERED (-1)
/* RpcCall.method of the standard services (health, reflection) starts
 * here: StdMethod in rpc/std-services.h, apart from RequestMethod. */
#define CALL_METHOD_STD_BASE 100

typedef enum TagKind {
        TAG_NEW,      /* a requested call arrived (or the request failed) */
        TAG_CLOSE,    /* RECV_CLOSE_ON_SERVER: the call is over */
        TAG_SEND,     /* an Output chunk (or a health Watch update) was sent */
        TAG_RECV,     /* an Input call's next message arrived (or none will); a
                       * reflection stream's batch (send answer, receive next) completed */
        TAG_FINISH,   /* the final batch with the status completed */
        TAG_SHUTDOWN, /* grpc_server_shutdown_and_notify completed */
} TagKind;

/* What the completion queue gives back: the kind of the completion and the
 * object (an RpcCall, or the Server for TAG_SHUTDOWN). */
typedef struct Tag {
        TagKind kind;
        void *object;
} Tag;

typedef struct RpcCall RpcCall;

struct RpcCall {
        atomic_uint n_ref;
        Server *server;               /* only dereferenced while the server lives */
        int method;                   /* RequestMethod or CALL_METHOD_UNREGISTERED */

        grpc_call *call;
        gpr_timespec deadline;
        grpc_metadata_array md;
        grpc_call_details details;    /* unregistered calls */
        grpc_byte_buffer *payload;
        int cancelled;                /* RECV_CLOSE_ON_SERVER result */
        bool send_ok;
        grpc_byte_buffer *recv_buf;   /* Input, reflection: the message received, NULL at the client's end */

        Tag tag_new, tag_close, tag_send, tag_finish, tag_recv;

        Request *request;
        char *identity;

        /* engine thread */
        bool initial_md_sent;
        bool finished;                /* the status batch was started */
        bool subscribed;
        bool send_in_flight;
        SubscriberId sub;
        bool have_pending_end;        /* end arrived while a chunk was in flight */
        JobStatus pending_end;
        ListNode by_stream;           /* on Server.streams while subscribed */
        grpc_byte_buffer *send_buf, *finish_buf;
        grpc_slice status_details;
        bool have_status_details;
        grpc_slice chunk_slice;       /* given to the engine to read the next chunk into */
        bool have_chunk_slice;
        StreamPace pace;              /* how big the next chunk may be */

        /* engine thread: a health Watch (health.c) */
        ListNode by_watch;            /* on Server.watchers while watching */
        int watch_sent;               /* the last status sent (or in flight); -1 none */
        bool watch_known;             /* the service watched is one we serve */

        /* Input (input-stream.c). Set by the completion-queue thread before
         * it posts the message to the engine: */
        Request *input_next;          /* recv_buf, decoded */
        char *input_next_error;       /* or why it does not decode */
        /* engine thread: */
        bool input_open;              /* holds the job's stdin (input) */
        bool input_write_pending;     /* a write holds a reference */
        InputWriterId input;
        Request *input_cur;           /* the message being written (after the first) */
        uint64_t input_bytes;         /* written so far */
};

/* A call with one reference (the caller's), not yet requested from gRPC. */
RpcCall *call_new(Server *s, int method);
RpcCall *call_ref(RpcCall *c);
/* NULL ok. */
void call_unref(RpcCall *c);

/* Sends [initial metadata], [response], status — once per call; later
 * calls do nothing. The batch holds its own reference. */
void call_finish(RpcCall *c, grpc_status_code code, const char *message, const ProtobufCMessage *response);
_printf_(3, 4) void call_finishf(RpcCall *c, grpc_status_code code, const char *fmt, ...);
