/* SPDX-License-Identifier: MIT */
/*
 * The gRPC server (see server.h): its life cycle, how connections reach gRPC,
 * and the completion-queue thread. The handlers are in handlers.c, Output
 * streaming in output-stream.c, calls and their references in call.c.
 *
 * The one idea: the completion-queue thread only decodes and forwards; job and
 * subscription state is touched only on the engine thread, which answers with
 * grpc_call_start_batch() itself. The life cycle is one state (server-internal.h)
 * moved by named transitions, so no thread ever reads a half-made decision.
 *
 * Identity: a call is given the identity of the connection it came in on, from
 * gRPC's peer string, resolved as soon as the call arrives. Bridge connections
 * reach gRPC through its private unix socket in a 0700 directory, each from a
 * socket bound to a name that carries the connection's never-reused id (gRPC
 * reports "unix:<dir>/c-<id>"; checked on Debian 12's gRPC 1.51): a late call
 * of a closed connection finds no entry, never another connection's. Only
 * kernel-TLS connections, whose TCP socket gRPC gets as an fd, are known by
 * fd number; conn-registry.c says what holds there. Nobody but the daemon's
 * user can reach the private socket (0700 directory), and a connection that
 * did not come through the bridge has no registered name: UNAUTHENTICATED.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "rpc/health.h"
#include "rpc/reflection.h"
#include "rpc/server-internal.h"

/* Requests kept armed per method, so that a burst is not served one by one. */
#define ARMED_PER_METHOD 8
/* Health and reflection calls are rare: fewer armed. */
#define ARMED_PER_STD_METHOD 2

/* How long the bridge thread may wait to connect to gRPC's socket when its
 * accept queue is full. gRPC listens with the host's somaxconn (4096 on 6.1),
 * four times the bridge's default connection limit, so the queue is full only
 * when gRPC stops accepting; then the wait is bounded and the connection is
 * refused (-EAGAIN) rather than the bridge stalled. */
#define INNER_CONNECT_TIMEOUT_USEC 250000

bool server_advance(Server *s, ServerState from, ServerState to) {
        return atomic_compare_exchange_strong(&s->state, &from, to);
}

static bool server_takes_connections(Server *s) {
        ServerState st = server_state(s);
        return st == SERVER_RUNNING || st == SERVER_DRAINING_STREAMS;
}

/* Connections: the private socket -------------------------------------------- */

/* Empties (one level: only sockets live there) and removes dir; ENOENT is fine. */
static int socket_dir_remove(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        return rmdir(dir) < 0 && errno != ENOENT ? -errno : 0;
}

/* <base>/rpc made afresh with mode 0700 (what a crashed run left is removed),
 * or a new /tmp directory when there is no base or the names would not fit a
 * sockaddr_un. */
static int socket_dir_make(Server *s) {
        char name[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        _cleanup_free_ char *dir = NULL;
        int r;

        if (s->socket_base && asprintf(&dir, "%s/rpc", s->socket_base) < 0)
                return -ENOMEM;
        if (dir && conn_registry_socket_name(dir, UINT64_MAX, name, sizeof(name)) == 0) {
                r = socket_dir_remove(dir);
                if (r < 0)
                        return r;
                if (mkdir(dir, 0700) < 0)
                        return -errno;
        } else {
                free(dir);
                dir = strdup("/tmp/jobworkerd-rpc-XXXXXX");
                if (!dir)
                        return -ENOMEM;
                if (!mkdtemp(dir))
                        return -errno;
        }
        if (asprintf(&s->socket_path, "%s/grpc", dir) < 0)
                return -ENOMEM;
        s->socket_dir = TAKE_PTR(dir);
        return 0;
}

/* Binds fd to name, connects it to gRPC's socket (waiting at most
 * INNER_CONNECT_TIMEOUT_USEC for room in its accept queue: an AF_UNIX connect
 * on a blocking socket honours SO_SNDTIMEO), then removes the name again. The
 * socket keeps its address: gRPC's accept() still reports it. */
static int inner_connect(Server *s, int fd, const char *name) {
        struct sockaddr_un self = { .sun_family = AF_UNIX }, grpc = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = 0, .tv_usec = INNER_CONNECT_TIMEOUT_USEC };
        int r = 0;

        if (strlen(name) >= sizeof(self.sun_path) || strlen(s->socket_path) >= sizeof(grpc.sun_path))
                return -ENAMETOOLONG;
        strcpy(self.sun_path, name);
        strcpy(grpc.sun_path, s->socket_path);
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &self, sizeof(self)) < 0)
                return -errno;
        while (connect(fd, (struct sockaddr *) &grpc, sizeof(grpc)) < 0 && r == 0)
                if (errno != EINTR)
                        r = -errno;
        (void) unlink(self.sun_path);
        if (r == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                r = -errno;
        return r;
}

int server_connect_inner(Server *s, uint64_t conn_id, const char *identity, const char *peer_addr) {
        char name[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        _cleanup_close_ int fd = -1;
        int r;

        if (!server_takes_connections(s))
                return -ESHUTDOWN;
        r = conn_registry_socket_name(s->socket_dir, conn_id, name, sizeof(name));
        if (r < 0)
                return r;
        /* Registered before gRPC can see the connection. */
        r = conn_registry_add(s->conns, conn_id, -1, identity, peer_addr);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        r = fd < 0 ? -errno : inner_connect(s, fd, name);
        if (r < 0) {
                conn_registry_remove(s->conns, conn_id);
                return r;
        }
        return TAKE_FD(fd);
}

/* Connections: kernel TLS, by fd --------------------------------------------- */

/* Gives up a connection fd gRPC never got. shutdown() first: with kernel TLS
 * the fd is the TCP socket and the bridge holds another descriptor of it,
 * waiting for POLLHUP; a close() alone would leave the client connected to
 * nobody. */
static void drop_connection_fd(int fd) {
        (void) shutdown(fd, SHUT_RDWR);
        safe_close(fd);
}

int server_add_connection(Server *s, uint64_t conn_id, int fd, const char *identity, const char *peer_addr) {
        int r;

        pthread_mutex_lock(&s->lock);
        r = server_takes_connections(s) ? 0 : -ESHUTDOWN;
        if (r == 0)
                r = conn_registry_add(s->conns, conn_id, fd, identity, peer_addr);
        /* Recorded before gRPC can see a single byte of the connection, and
         * under the lock, so that gRPC's shutdown cannot have begun. */
        if (r == 0)
                grpc_server_add_channel_from_fd(s->grpc, fd, s->insecure);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                drop_connection_fd(fd);
        return r;
}

void server_remove_connection(Server *s, uint64_t conn_id, int fd_number) {
        (void) fd_number;
        conn_registry_remove(s->conns, conn_id);
}

/* Completion-queue thread ------------------------------------------------------ */

static int arm(Server *s, int method) {
        RpcCall *c = call_new(s, method);
        grpc_call_error r;

        if (!c)
                return -ENOMEM;
        if (method == CALL_METHOD_UNREGISTERED)
                r = grpc_server_request_call(s->grpc, &c->call, &c->details, &c->md, s->cq, s->cq, &c->tag_new);
        else if (std_method_is(method))
                r = grpc_server_request_registered_call(s->grpc, s->std_methods[method - CALL_METHOD_STD_BASE],
                                                        &c->call, &c->deadline, &c->md,
                                                        std_method_reads_payload(method) ? &c->payload : NULL,
                                                        s->cq, s->cq, &c->tag_new);
        else
                r = grpc_server_request_registered_call(s->grpc, s->methods[method], &c->call, &c->deadline,
                                                        &c->md, &c->payload, s->cq, s->cq, &c->tag_new);
        if (r != GRPC_CALL_OK) {
                call_unref(c);
                return -EIO;
        }
        return 0;
}

/* Runs on the engine thread for every decoded request. */
static void on_request_closure(Engine *e, void *userdata) {
        RpcCall *c = userdata;

        if (e && server_state(c->server) != SERVER_CLOSED)
                handlers_dispatch(e, c);
        call_unref(c);
}

/* Resolves who calls; answers and returns false when nobody may. */
static bool call_identify(Server *s, RpcCall *c) {
        char *peer = grpc_call_get_peer(c->call);
        int r = conn_registry_lookup(s->conns, peer, &c->identity);

        gpr_free(peer);
        if (r == -EBUSY)
                call_finishf(c, GRPC_STATUS_UNAVAILABLE,
                             "the connection cannot be told apart from an earlier one yet: try again");
        else if (r == -ENOMEM)
                call_finishf(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        else if (r < 0)
                call_finishf(c, GRPC_STATUS_UNAUTHENTICATED, "the connection has no verified client identity");
        return r >= 0;
}

/* Decodes the request message; answers and returns false when it is bad. */
static bool call_decode(RpcCall *c) {
        _cleanup_free_ char *message = NULL;
        grpc_byte_buffer_reader reader;
        grpc_slice flat;
        int r;

        if (!c->payload) {
                call_finishf(c, GRPC_STATUS_INVALID_ARGUMENT, "the request message is missing");
                return false;
        }
        if (!grpc_byte_buffer_reader_init(&reader, c->payload)) {
                call_finishf(c, GRPC_STATUS_INVALID_ARGUMENT, "the request message cannot be read");
                return false;
        }
        flat = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        r = request_decode(c->method, GRPC_SLICE_START_PTR(flat), GRPC_SLICE_LENGTH(flat), &c->request, &message);
        grpc_slice_unref(flat);
        grpc_byte_buffer_destroy(c->payload);
        c->payload = NULL;
        if (r == -ENOMEM)
                call_finishf(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        else if (r < 0)
                call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, message ? message : "invalid request", NULL);
        return r >= 0;
}

static void finish_unimplemented(RpcCall *c) {
        char path[256];
        size_t n = MIN(GRPC_SLICE_LENGTH(c->details.method), sizeof(path) - 1);

        memcpy(path, GRPC_SLICE_START_PTR(c->details.method), n);
        path[n] = 0;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) path[i] < 0x20 || (unsigned char) path[i] >= 0x7f)
                        path[i] = '?';
        call_finishf(c, GRPC_STATUS_UNIMPLEMENTED, "method %s is not implemented", path);
}

static void on_new(Server *s, RpcCall *c, bool ok) {
        grpc_op op = {};

        if (!ok) { /* shutting down: the request was cancelled */
                call_unref(c);
                return;
        }
        (void) arm(s, c->method);

        /* Learn when the call is over (and whether the client cancelled). */
        op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        op.data.recv_close_on_server.cancelled = &c->cancelled;
        call_ref(c);
        if (grpc_call_start_batch(c->call, &op, 1, &c->tag_close, NULL) != GRPC_CALL_OK)
                call_unref(c);

        if (c->method == CALL_METHOD_UNREGISTERED)
                finish_unimplemented(c);
        else if (call_identify(s, c) && (std_method_is(c->method) || call_decode(c))) {
                /* The tag's reference moves to the closure. Health and
                 * reflection decode their own requests (std-services.c). */
                if (engine_post(s->engine, std_method_is(c->method) ? std_services_request_closure : on_request_closure,
                                c) >= 0)
                        return;
                call_finishf(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        }
        call_unref(c);
}

static void on_close(Server *s, RpcCall *c) {
        /* A cancelled stream must stop its subscription, let go of the
         * job's stdin (closing it) or leave the health watchers (engine
         * thread). */
        EngineClosure f = c->method == REQUEST_OUTPUT ? output_stream_cancel_closure
                          : c->method == REQUEST_INPUT ? input_stream_cancel_closure
                                                       : std_services_cancel_closure(c->method);

        if (c->cancelled && f) {
                if (engine_post(s->engine, f, c) < 0)
                        call_unref(c);
                return;
        }
        call_unref(c);
}

static void on_shutdown_closure(Engine *e, void *userdata) {
        Server *s = userdata;

        /* The engine stopped before gRPC finished (engine_run() failed): the
         * server may already be freed. Nothing can be done here. */
        if (!e)
                return;

        /* Every closure posted before this one has run: nothing will start
         * a batch anymore. */
        (void) server_advance(s, SERVER_GRPC_STOPPING, SERVER_CLOSED);
        grpc_completion_queue_shutdown(s->cq);
        if (s->shutdown_done)
                s->shutdown_done(s->shutdown_userdata);
}

static void on_shutdown(Server *s) {
        /* server_free() shut gRPC down itself: no engine to go through. */
        if (server_advance(s, SERVER_SYNC_STOPPING, SERVER_CLOSED)) {
                grpc_completion_queue_shutdown(s->cq);
                return;
        }
        if (engine_post(s->engine, on_shutdown_closure, s) < 0) {
                /* Cannot happen but must not hang the daemon. */
                (void) server_advance(s, SERVER_GRPC_STOPPING, SERVER_CLOSED);
                grpc_completion_queue_shutdown(s->cq);
        }
}

static void *cq_thread(void *userdata) {
        Server *s = userdata;

        (void) prctl(PR_SET_NAME, "jw-grpc-cq"); /* top -H, bench/run's per-thread CPU */

        for (;;) {
                grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                Tag *t;

                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                        break;
                if (ev.type != GRPC_OP_COMPLETE)
                        continue;
                t = ev.tag;
                switch (t->kind) {
                case TAG_NEW:
                        on_new(s, t->object, ev.success);
                        break;
                case TAG_CLOSE:
                        on_close(s, t->object);
                        break;
                case TAG_SEND: {
                        RpcCall *c = t->object;
                        EngineClosure f = std_method_is(c->method) ? std_services_sent_closure(c->method)
                                                                   : output_stream_sent_closure;
                        c->send_ok = ev.success;
                        if (!f || engine_post(s->engine, f, c) < 0)
                                call_unref(c);
                        break;
                }
                case TAG_RECV: {
                        RpcCall *c = t->object;
                        /* Two kinds of call receive after their first
                         * message: Input (decoded here, then posted) and a
                         * reflection stream (its batch also sent the last
                         * answer). */
                        if (c->method == REQUEST_INPUT) {
                                input_stream_recv(s, c);
                                break;
                        }
                        c->send_ok = ev.success;
                        if (engine_post(s->engine, reflection_recv_closure, c) < 0)
                                call_unref(c);
                        break;
                }
                case TAG_FINISH:
                        call_unref(t->object);
                        break;
                case TAG_SHUTDOWN:
                        on_shutdown(s);
                        break;
                }
        }
        return NULL;
}

/* Life cycle ------------------------------------------------------------------ */

int server_new(Server **ret, Engine *engine, Policy *policy, const ServerConfig *config) {
        Server *s;

        s = calloc(1, sizeof(*s));
        if (!s || conn_registry_new(&s->conns, NULL) < 0 ||
            (config && config->socket_dir && !(s->socket_base = strdup(config->socket_dir)))) {
                if (s)
                        conn_registry_free(s->conns);
                free(s);
                policy_free(policy);
                return -ENOMEM;
        }
        s->engine = engine;
        s->policy = policy;
        s->max_receive = config && config->max_receive_message ? config->max_receive_message : SERVER_DEFAULT_MAX_MESSAGE;
        s->max_streams = config && config->max_streams_per_connection ? config->max_streams_per_connection : 1024;
        s->min_ping_interval_usec = config && config->min_ping_interval_usec ? config->min_ping_interval_usec
                                                                             : SERVER_DEFAULT_MIN_PING_INTERVAL_USEC;
        s->keepalive_usec = config && config->keepalive_usec ? config->keepalive_usec : SERVER_DEFAULT_KEEPALIVE_USEC;
        s->denied = config ? config->denied : NULL;
        s->start_failed = config ? config->start_failed : NULL;
        s->acted = config ? config->acted : NULL;
        s->denied_userdata = config ? config->userdata : NULL;
        s->max_output_streams = config && config->max_output_streams ? config->max_output_streams
                                                                     : SERVER_DEFAULT_MAX_OUTPUT_STREAMS;
        s->stream_budget = (StreamBudget) {
                .total = config && config->output_memory ? config->output_memory : STREAM_BUDGET_DEFAULT,
        };
        s->shutdown_tag = (Tag) { TAG_SHUTDOWN, s };
        atomic_init(&s->state, SERVER_NEW);
        pthread_mutex_init(&s->lock, NULL);
        *ret = s;
        return 0;
}

/* gRPC's private unix socket, and the registry that knows its peer names. */
static int listen_private(Server *s) {
        _cleanup_free_ char *address = NULL;
        int r;

        r = socket_dir_make(s);
        if (r < 0)
                return r;
        conn_registry_free(s->conns);
        s->conns = NULL;
        r = conn_registry_new(&s->conns, s->socket_dir);
        if (r < 0)
                return r;
        if (asprintf(&address, "unix:%s", s->socket_path) < 0)
                return -ENOMEM;
        if (grpc_server_add_http2_port(s->grpc, address, s->insecure) == 0)
                return -EADDRNOTAVAIL;
        return 0;
}

static int usec_to_ms_arg(uint64_t usec) {
        return (int) MIN(MAX(usec / 1000, (uint64_t) 1), (uint64_t) INT32_MAX);
}

int server_start(Server *s) {
        /* Keepalive: a follower of a quiet job pings at its own interval;
         * pings no closer than min_ping_interval are never strikes, with or
         * without calls open, and pings without data between them are not
         * limited. The server's own pings find a dead client. */
        grpc_arg args[] = {
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                  .value.integer = (int) MIN(s->max_receive, (size_t) INT32_MAX) },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_MAX_CONCURRENT_STREAMS,
                  .value.integer = (int) s->max_streams },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                  .value.integer = usec_to_ms_arg(s->min_ping_interval_usec) },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, .value.integer = 1 },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, .value.integer = 0 },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_KEEPALIVE_TIME_MS,
                  .value.integer = usec_to_ms_arg(s->keepalive_usec) },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                  .value.integer = usec_to_ms_arg(MIN(s->keepalive_usec, KEEPALIVE_TIMEOUT_MAX_USEC)) },
        };
        grpc_channel_args cargs = { .num_args = ELEMENTSOF(args), .args = args };
        int r;

        s->insecure = grpc_insecure_server_credentials_create();
        s->cq = grpc_completion_queue_create_for_next(NULL);
        s->grpc = grpc_server_create(&cargs, NULL);
        if (!s->insecure || !s->cq || !s->grpc)
                return -ENOMEM;
        grpc_server_register_completion_queue(s->grpc, s->cq, NULL);
        for (int m = 0; m < _REQUEST_METHOD_MAX; m++) {
                s->methods[m] = grpc_server_register_method(s->grpc, request_method_path(m), NULL,
                                                            GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
                if (!s->methods[m])
                        return -EINVAL;
        }
        r = std_services_register(s);
        if (r < 0)
                return r;
        r = listen_private(s);
        if (r < 0)
                return r;
        grpc_server_start(s->grpc);

        for (int m = CALL_METHOD_UNREGISTERED; m < _REQUEST_METHOD_MAX; m++)
                for (unsigned i = 0; i < ARMED_PER_METHOD; i++) {
                        r = arm(s, m);
                        if (r < 0)
                                return r;
                }
        for (int m = CALL_METHOD_STD_BASE; m < _STD_METHOD_END; m++)
                for (unsigned i = 0; i < ARMED_PER_STD_METHOD; i++) {
                        r = arm(s, m);
                        if (r < 0)
                                return r;
                }

        r = -pthread_create(&s->cq_thread, NULL, cq_thread, s);
        if (r < 0)
                return r;
        s->cq_thread_started = true;
        pthread_mutex_lock(&s->lock);
        (void) server_advance(s, SERVER_NEW, SERVER_RUNNING);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

void server_set_policy(Server *s, Policy *policy) {
        policy_free(s->policy);
        s->policy = policy;
}

const Policy *server_get_policy(Server *s) {
        return s->policy;
}

void server_set_draining(Server *s, bool draining) {
        s->draining = draining;
        health_serving_changed(s);
}

void server_stream_gone(Server *s) {
        if (s->streams.n == 0 && s->watchers.n == 0 && server_state(s) == SERVER_DRAINING_STREAMS)
                server_streams_drained(s);
}

/* Cancels what is left and shuts gRPC down; done() follows from the
 * completion-queue thread through on_shutdown_closure(). Engine thread. */
static void shutdown_grpc(Server *s) {
        bool moved;

        pthread_mutex_lock(&s->lock);
        moved = server_advance(s, SERVER_RUNNING, SERVER_GRPC_STOPPING) ||
                server_advance(s, SERVER_DRAINING_STREAMS, SERVER_GRPC_STOPPING);
        pthread_mutex_unlock(&s->lock);
        if (!moved)
                return;

        output_stream_cancel_all(s);
        health_watch_end_all(s, true);
        grpc_server_shutdown_and_notify(s->grpc, s->cq, &s->shutdown_tag);
        grpc_server_cancel_all_calls(s->grpc);
}

static void on_streams_drained_closure(Engine *e, void *userdata) {
        if (e)
                shutdown_grpc(userdata);
}

void server_streams_drained(Server *s) {
        /* Outside of whatever engine callback we are in. If the post fails,
         * server_shutdown_now() still ends the wait. */
        (void) engine_post(s->engine, on_streams_drained_closure, s);
}

void server_shutdown(Server *s, void (*done)(void *userdata), void *userdata) {
        ServerState st = server_state(s);

        if (st == SERVER_NEW) {
                /* Never started: nothing of gRPC to wait for; server_free()
                 * cleans up what a failed start left. */
                if (done)
                        done(userdata);
                return;
        }
        if (st != SERVER_RUNNING)
                return;
        s->shutdown_done = done;
        s->shutdown_userdata = userdata;
        s->draining = true;
        if (s->streams.n == 0 && s->watchers.n == 0) {
                shutdown_grpc(s);
                return;
        }
        (void) server_advance(s, SERVER_RUNNING, SERVER_DRAINING_STREAMS);
        /* Watchers send their last status and end (server_stream_gone()). */
        health_watch_end_all(s, false);
}

void server_shutdown_now(Server *s) {
        if (server_state(s) == SERVER_DRAINING_STREAMS)
                shutdown_grpc(s);
}

/* server_free() without server_shutdown() (a start-up failure): gRPC is shut
 * down here, without the engine. */
static void shutdown_sync(Server *s) {
        bool moved;

        pthread_mutex_lock(&s->lock);
        moved = server_advance(s, SERVER_NEW, SERVER_SYNC_STOPPING) ||
                server_advance(s, SERVER_RUNNING, SERVER_SYNC_STOPPING) ||
                server_advance(s, SERVER_DRAINING_STREAMS, SERVER_SYNC_STOPPING);
        pthread_mutex_unlock(&s->lock);
        if (!moved)
                return;
        if (!s->grpc) {
                (void) server_advance(s, SERVER_SYNC_STOPPING, SERVER_CLOSED);
                if (s->cq)
                        grpc_completion_queue_shutdown(s->cq);
                return;
        }
        grpc_server_shutdown_and_notify(s->grpc, s->cq, &s->shutdown_tag);
        grpc_server_cancel_all_calls(s->grpc);
        if (!s->cq_thread_started) {
                s->cq_thread_started = pthread_create(&s->cq_thread, NULL, cq_thread, s) == 0;
                if (!s->cq_thread_started)
                        abort(); /* cannot shut gRPC down without a thread to drain the queue */
        }
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;

        shutdown_sync(s);
        if (s->cq_thread_started)
                pthread_join(s->cq_thread, NULL);
        if (s->grpc)
                grpc_server_destroy(s->grpc);
        if (s->cq)
                grpc_completion_queue_destroy(s->cq);
        if (s->insecure)
                grpc_server_credentials_release(s->insecure);
        if (s->socket_dir)
                (void) socket_dir_remove(s->socket_dir);
        free(s->socket_dir);
        free(s->socket_path);
        free(s->socket_base);
        conn_registry_free(s->conns);
        descriptor_db_free(s->descriptors);
        policy_free(s->policy);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}
