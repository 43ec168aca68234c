/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the files of the gRPC server share: the Server object, its life-cycle
 * state, and the entry points one file of it calls in another.
 * server.c: life cycle, connections, completion-queue thread;
 * handlers.c: the unary handlers; output-stream.c: Output streaming;
 * std-services.c: health (health.c) and reflection (reflection.c).
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <grpc/grpc.h>

#include "policy/authz.h"
#include "rpc/call.h"
#include "rpc/conn-registry.h"
#include "rpc/descriptor-db.h"
#include "rpc/request.h"
#include "rpc/server.h"
#include "rpc/std-services.h"
#include "shared/list.h"

/*
 * The life cycle, one state, moved only by server_advance():
 *
 *   NEW ──server_start()──► RUNNING ──server_shutdown(), streams open──► DRAINING_STREAMS
 *                              │  └──server_shutdown(), none open──┐             │ last stream ended,
 *                              │                                   ▼             │ or server_shutdown_now()
 *                              │                           GRPC_STOPPING ◄───────┘
 *                              │                                   │ engine ran the shutdown closure
 *   NEW/RUNNING/DRAINING ──server_free() without shutdown──► SYNC_STOPPING ──cq thread──► CLOSED
 *                                                      GRPC_STOPPING ─────────────────► CLOSED
 *
 * Connections are taken in RUNNING and DRAINING_STREAMS; new Output streams
 * and health watchers only in RUNNING (DRAINING_STREAMS waits for both); in CLOSED the completion queue is shut down and no batch
 * may be started. Transitions out of RUNNING/DRAINING_STREAMS happen under
 * Server.lock, so that adding a connection to gRPC never races its shutdown;
 * reads need no lock.
 */
typedef enum ServerState {
        SERVER_NEW,
        SERVER_RUNNING,
        SERVER_DRAINING_STREAMS,
        SERVER_GRPC_STOPPING,
        SERVER_SYNC_STOPPING,
        SERVER_CLOSED,
} ServerState;

struct Server {
        Engine *engine;
        Policy *policy;               /* engine thread */
        size_t max_receive;
        unsigned max_streams;
        uint64_t min_ping_interval_usec;
        uint64_t keepalive_usec;
        unsigned max_output_streams;
        void (*denied)(void *userdata, const char *identity, const char *action, const char *job_id);
        void *denied_userdata;
        void (*start_failed)(void *userdata, const char *identity, StatusResource resource, const char *reason);
        void (*acted)(void *userdata, const char *identity, AuthzAction action, const JobStatus *st, const char *what);
        char *socket_base;            /* where the private socket directory goes */

        grpc_server *grpc;
        grpc_completion_queue *cq;
        grpc_server_credentials *insecure;
        void *methods[_REQUEST_METHOD_MAX];
        void *std_methods[STD_METHOD_COUNT];
        DescriptorDb *descriptors;    /* what reflection serves; read-only once started */
        pthread_t cq_thread;
        bool cq_thread_started;       /* main thread */

        _Atomic ServerState state;
        pthread_mutex_t lock;         /* serialises state transitions and adding connections */
        ConnRegistry *conns;
        char *socket_dir;             /* the private 0700 directory, NULL until started */
        char *socket_path;            /* gRPC's listening socket in it */

        /* engine thread */
        bool draining;                /* Start answers UNAVAILABLE (a mode, not a stage of the life cycle) */
        ListHead streams;             /* Output calls with a subscription (RpcCall.by_stream) */
        StreamBudget stream_budget;   /* bytes of chunks in flight to them */
        ListHead watchers;            /* health Watch calls (RpcCall.by_watch) */
        void (*shutdown_done)(void *userdata);
        void *shutdown_userdata;
        Tag shutdown_tag;
};

static inline ServerState server_state(Server *s) {
        return atomic_load(&s->state);
}

/* Moves from `from` to `to`; false (and no change) if the state was not `from`. */
bool server_advance(Server *s, ServerState from, ServerState to);

/* Engine thread: whether c may still start a batch. */
static inline bool call_may_send(RpcCall *c) {
        return server_state(c->server) != SERVER_CLOSED && !c->finished;
}

/* server.c: the last Output stream of a shutdown ended (engine thread). */
void server_streams_drained(Server *s);
/* server.c: an Output stream or a health watcher left its list: if it was
 * the last of both during a shutdown, server_streams_drained(). */
void server_stream_gone(Server *s);

/* handlers.c: runs a decoded request on the engine thread. */
void handlers_dispatch(Engine *e, RpcCall *c);
/* handlers.c, for output-stream.c */
bool handlers_authorize_job(Engine *e, RpcCall *c, AuthzAction action, JobStatus *ret_status);
void handlers_finish_error(RpcCall *c, int r, const char *what);

/* input-stream.c: Input calls. handle runs on the engine thread; recv on
 * the completion-queue thread (a TAG_RECV completion: decodes and posts);
 * the closure on the engine thread releases the reference it was given. */
void input_stream_handle(Engine *e, RpcCall *c);
void input_stream_recv(Server *s, RpcCall *c);
void input_stream_cancel_closure(Engine *e, void *userdata);

/* output-stream.c, engine thread */
void output_stream_handle(Engine *e, RpcCall *c);
void output_stream_cancel_all(Server *s);
/* Closures for engine_post(), each releasing the reference it was given. */
void output_stream_sent_closure(Engine *e, void *userdata);
void output_stream_cancel_closure(Engine *e, void *userdata);
