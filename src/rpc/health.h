/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * grpc.health.v1.Health: Check and Watch for the services "" (the server as
 * a whole) and "jobworker.v1.JobWorker". SERVING while the server serves,
 * NOT_SERVING from the moment it drains for shutdown (server_set_draining()
 * or server_shutdown()). Check of another name: NOT_FOUND; Watch of another
 * name: one SERVICE_UNKNOWN, and the stream stays open (the health protocol).
 * Open Watch streams are ended (status OK, after their last update) when
 * the server shuts down; they hold the shutdown back no longer than its
 * Output streams do. Internal to src/rpc; engine thread only.
 */

#include "core/engine.h"
#include "rpc/call.h"

typedef struct Server Server;

void health_check(RpcCall *c);
void health_watch(RpcCall *c);

/* The server's serving status may have changed: tell every watcher. */
void health_serving_changed(Server *s);
/* Shutting down: every watcher gets its last update and its status now or
 * when its send completes; unlink: also take them off Server.watchers at
 * once (gRPC is being shut down: nothing waits for them anymore). */
void health_watch_end_all(Server *s, bool unlink);

/* Closures for engine_post(), each releasing the reference it was given. */
void health_watch_sent_closure(Engine *e, void *userdata);
void health_watch_cancel_closure(Engine *e, void *userdata);
