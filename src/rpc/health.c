/* SPDX-License-Identifier: MIT */
/*
 * grpc.health.v1.Health (see health.h).
 *
 * The one idea: a watcher is an idle stream that sends only when the status
 * it last sent is not the one it should show, with at most one update in
 * flight; after each send completes it looks again. So a change that comes
 * while a send is in flight is never lost, and shutting down is just one
 * more change: once the server no longer runs, the last word of a watcher
 * is its final status. A watcher is on Server.watchers (holding a reference)
 * until it ended, and the shutdown waits for that list as for Output streams.
 */

#include <errno.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "rpc/health.h"
#include "rpc/server-internal.h"
#include "shared/string-util.h"
#include "wire/codec.h"

static bool service_known(const char *name) {
        return strcmp(name, "") == 0 || strcmp(name, "jobworker.v1.JobWorker") == 0;
}

static int serving_status(Server *s) {
        return !s->draining && server_state(s) == SERVER_RUNNING
                ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static int watch_status(Server *s, RpcCall *c) {
        return c->watch_known ? serving_status(s) : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
}

/* The request's service name, or NULL having answered the call. */
static Grpc__Health__V1__HealthCheckRequest *decode(RpcCall *c) {
        Grpc__Health__V1__HealthCheckRequest *req = NULL;

        if (c->payload)
                req = (Grpc__Health__V1__HealthCheckRequest *) codec_unpack(
                        c->payload, &grpc__health__v1__health_check_request__descriptor);
        if (!req)
                call_finishf(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest");
        return req;
}

void health_check(RpcCall *c) {
        Grpc__Health__V1__HealthCheckRequest *req = decode(c);
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        char quoted[128];

        if (!req)
                return;
        if (service_known(req->service)) {
                resp.status = serving_status(c->server);
                call_finish(c, GRPC_STATUS_OK, NULL, &resp.base);
        } else {
                quote_printable(quoted, sizeof(quoted) - 4, req->service);
                call_finishf(c, GRPC_STATUS_NOT_FOUND, "unknown service '%s'", quoted);
        }
        protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* Watchers --------------------------------------------------------------------- */

/* Takes c off the list (dropping the list's reference: the caller holds one). */
static void watch_unlink(Server *s, RpcCall *c) {
        if (!c->by_watch.linked)
                return;
        list_unlink(&s->watchers, &c->by_watch);
        server_stream_gone(s);
        call_unref(c);
}

static void watch_send(Server *s, RpcCall *c, int status) {
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        grpc_op ops[2] = {}, *op = ops;

        if (!c->initial_md_sent) {
                op->op = GRPC_OP_SEND_INITIAL_METADATA;
                op++;
                c->initial_md_sent = true;
        }
        resp.status = status;
        c->send_buf = codec_pack(&resp.base);
        op->op = GRPC_OP_SEND_MESSAGE;
        op->data.send_message.send_message = c->send_buf;
        op++;

        c->send_in_flight = true;
        c->watch_sent = status;
        call_ref(c);
        if (grpc_call_start_batch(c->call, ops, op - ops, &c->tag_send, NULL) != GRPC_CALL_OK) {
                c->send_in_flight = false;
                call_unref(c);
                watch_unlink(s, c);
        }
}

/* What an idle watcher does next: nothing, an update, or (shutting down) its
 * last update with its status. */
static void watch_next(Server *s, RpcCall *c) {
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        int want = watch_status(s, c);

        if (c->send_in_flight)
                return;
        if (!call_may_send(c) || !c->by_watch.linked) {
                watch_unlink(s, c);
                return;
        }
        if (server_state(s) == SERVER_RUNNING) {
                if (want != c->watch_sent)
                        watch_send(s, c, want);
                return;
        }
        resp.status = want;
        call_finish(c, GRPC_STATUS_OK, "the server is shutting down", want != c->watch_sent ? &resp.base : NULL);
        watch_unlink(s, c);
}

void health_watch(RpcCall *c) {
        Grpc__Health__V1__HealthCheckRequest *req = decode(c);
        Server *s = c->server;

        if (!req)
                return;
        c->watch_known = service_known(req->service);
        protobuf_c_message_free_unpacked(&req->base, NULL);
        if (server_state(s) != SERVER_RUNNING) {
                call_finishf(c, GRPC_STATUS_UNAVAILABLE, "the server is shutting down");
                return;
        }
        if (s->watchers.n >= s->max_output_streams) {
                call_finishf(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many health watchers (at most %u)",
                             s->max_output_streams);
                return;
        }
        list_append(&s->watchers, &c->by_watch);
        call_ref(c); /* the list's */
        watch_send(s, c, watch_status(s, c));
}

/* Calls f on every watcher, each held by a reference while it runs. */
static void for_each_watcher(Server *s, void (*f)(Server *s, RpcCall *c)) {
        ListNode *n = s->watchers.first;

        /* f touches no watcher but c: the next one stays where it is. */
        while (n) {
                RpcCall *c = call_ref(list_entry(n, RpcCall, by_watch));

                n = n->next;
                f(s, c);
                call_unref(c);
        }
}

void health_serving_changed(Server *s) {
        for_each_watcher(s, watch_next);
}

static void watch_end_now(Server *s, RpcCall *c) {
        watch_next(s, c);
        watch_unlink(s, c);
}

void health_watch_end_all(Server *s, bool unlink) {
        for_each_watcher(s, unlink ? watch_end_now : watch_next);
}

void health_watch_sent_closure(Engine *e, void *userdata) {
        RpcCall *c = userdata;

        if (c->send_buf) {
                grpc_byte_buffer_destroy(c->send_buf);
                c->send_buf = NULL;
        }
        c->send_in_flight = false;
        if (e) { /* without the engine, the server may be gone too */
                if (!c->send_ok)
                        watch_unlink(c->server, c);
                else
                        watch_next(c->server, c);
        }
        call_unref(c);
}

void health_watch_cancel_closure(Engine *e, void *userdata) {
        RpcCall *c = userdata;

        if (e)
                watch_unlink(c->server, c);
        call_unref(c);
}
