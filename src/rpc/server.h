/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The gRPC server of jobworker.v1.JobWorker on gRPC C core.
 *
 * Connections arrive already authenticated: the TLS bridge terminates TLS
 * and connects to gRPC's private unix socket through
 * server_connect_inner(), telling the verified identity first; with kernel
 * TLS, gRPC gets the TCP socket itself (server_add_connection()). A completion-queue thread
 * decodes requests and posts them to the engine; the engine thread
 * authorizes, acts and answers (grpc_call_start_batch is thread-safe).
 *
 * Threads: server_connect_inner(), server_add_connection() and
 * server_remove_connection() from any thread; server_set_policy(), server_set_draining(), server_shutdown()
 * on the engine thread; server_new()/server_start()/server_free() on the
 * main thread (grpc_init() must have been called before server_new()).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "policy/authz.h"
#include "policy/policy.h"
#include "rpc/status-map.h"

typedef struct Server Server;

#define SERVER_DEFAULT_MAX_MESSAGE (2u * 1024u * 1024u)
/* A bit below jwctl's default keepalive (30 s), so its pings never strike. */
#define SERVER_DEFAULT_MIN_PING_INTERVAL_USEC (25ULL * 1000 * 1000)
#define SERVER_DEFAULT_KEEPALIVE_USEC (60ULL * 1000 * 1000)
/* Longest wait for a keepalive ping's answer, on both ends. */
#define KEEPALIVE_TIMEOUT_MAX_USEC (20ULL * 1000 * 1000)

typedef struct ServerConfig {
        size_t max_receive_message;  /* bytes; 0 = SERVER_DEFAULT_MAX_MESSAGE */
        unsigned max_streams_per_connection; /* 0 = 1024 */
        unsigned max_output_streams; /* Output calls at once; 0 = SERVER_DEFAULT_MAX_OUTPUT_STREAMS */
        size_t output_memory;        /* chunks in flight to all Output calls; 0 = STREAM_BUDGET_DEFAULT */
        /* Client pings closer together than this are strikes (the third
         * gets GOAWAY "too_many_pings"); 0 = SERVER_DEFAULT_MIN_PING_INTERVAL_USEC. */
        uint64_t min_ping_interval_usec;
        /* The server pings each connection this long after it last heard from
         * it, and drops it when no answer comes within MIN(this, 20 s);
         * 0 = SERVER_DEFAULT_KEEPALIVE_USEC. */
        uint64_t keepalive_usec;
        /* Engine thread: the policy refused a request (for the daemon's log;
         * the library itself does not log). job_id is NULL for Start/List. */
        void (*denied)(void *userdata, const char *identity, const char *action, const char *job_id);
        /* Engine thread: a Start failed because the host ran out of something
         * (processes, file descriptors, memory, disk): the operator must see
         * it. resource says which (status_map_resource_hint() words it);
         * reason is the message the client got. */
        void (*start_failed)(void *userdata, const char *identity, StatusResource resource, const char *reason);
        /* Engine thread: a Stop or a Signal (action) was carried out (for the
         * daemon's log: who did what to which job). what says it in words
         * ("stop requested with a grace of 10s", "signal TERM (15) sent to
         * its main process"). */
        void (*acted)(void *userdata, const char *identity, AuthzAction action, const JobStatus *st, const char *what);
        void *userdata;
        /* Where the private directory of gRPC's unix socket is made (as
         * <socket_dir>/rpc, mode 0700, emptied at start and removed at
         * server_free()); NULL, or too long a path for sockaddr_un: a new
         * directory under /tmp. */
        const char *socket_dir;
} ServerConfig;

/* Each Output stream may hold one chunk (up to 256 KiB) in flight: this bounds
 * what clients can make the daemon buffer. */
#define SERVER_DEFAULT_MAX_OUTPUT_STREAMS 1024u

/* policy: ownership passes to the server (even on failure). */
int server_new(Server **ret, Engine *engine, Policy *policy, const ServerConfig *config);

/* Starts gRPC and the completion-queue thread. */
int server_start(Server *s);

/* A verified connection of the bridge: registers conn_id (unique for the
 * process lifetime) as identity (the client's CN) and returns a new socket
 * connected to gRPC's private unix socket (blocking the caller at most
 * 250 ms when gRPC's accept queue is full), non-blocking and CLOEXEC,
 * owned by the caller, who pumps the plaintext through it. Calls on it run as
 * identity until server_remove_connection(conn_id); afterwards they are
 * refused UNAUTHENTICATED. -ESHUTDOWN once shutting down, -EAGAIN when gRPC
 * did not take the connection in time, other -errno. */
int server_connect_inner(Server *s, uint64_t conn_id, const char *identity, const char *peer_addr);

/* A verified connection that gRPC gets as an fd (kernel TLS: the TCP socket):
 * fd (non-blocking, ownership passes to the server even on failure); identity
 * the client's CN; conn_id unique for the process lifetime. Calls of "fd:N"
 * are refused UNAVAILABLE while an earlier connection that had number N is not
 * yet removed (see conn-registry.c). -ESHUTDOWN once shutting down. */
int server_add_connection(Server *s, uint64_t conn_id, int fd, const char *identity, const char *peer_addr);

/* The connection conn_id is gone (fd_number may already be reused). */
void server_remove_connection(Server *s, uint64_t conn_id, int fd_number);

/* Replaces the policy (ownership passes); the old one is freed. */
void server_set_policy(Server *s, Policy *policy);
const Policy *server_get_policy(Server *s);

/* While draining, Start answers UNAVAILABLE; everything else still works. */
void server_set_draining(Server *s, bool draining);

/* Shutdown, engine thread. Refuses new Start and Output calls, waits until
 * the Output streams still open ended by themselves (call it once no job
 * runs anymore: followers then get their job's final status), then cancels
 * every call and shuts gRPC down; done(userdata) is called on the engine
 * thread when gRPC has finished. server_shutdown_now() ends the wait for
 * streams (e.g. after a deadline, for clients that stopped reading). */
void server_shutdown(Server *s, void (*done)(void *userdata), void *userdata);
void server_shutdown_now(Server *s);

/* Main thread, after done() ran (or if never started): joins the
 * completion-queue thread, destroys gRPC objects. Closures still queued in
 * the engine stay valid (they never touch the Server). */
Server *server_free(Server *s);

/* Counts, engine thread. */
unsigned server_stream_count(Server *s);
