/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The standard gRPC services the server answers beside jobworker.v1.JobWorker:
 * grpc.health.v1.Health (health.c) and server reflection, v1 and v1alpha
 * (reflection.c). Here: their method table, their registration with gRPC,
 * and the routing of their calls from server.c. Internal to src/rpc.
 *
 * Who may call them (both come only over an mTLS connection with a verified
 * client certificate, like everything else): Health, any verified client,
 * also one the policy does not know (a load balancer's probe needs no
 * role); reflection, any identity the policy knows, whatever its roles
 * (unknown identities: PERMISSION_DENIED).
 *
 * Threads: std_services_register() on the main thread before gRPC starts;
 * the closures on the engine thread (engine_post()).
 */

#include <stdbool.h>

#include "core/engine.h"
#include "rpc/call.h"

typedef enum StdMethod {
        STD_HEALTH_CHECK = CALL_METHOD_STD_BASE,
        STD_HEALTH_WATCH,
        STD_REFLECTION_V1,
        STD_REFLECTION_V1ALPHA,
        _STD_METHOD_END,
} StdMethod;

#define STD_METHOD_COUNT (_STD_METHOD_END - CALL_METHOD_STD_BASE)

static inline bool std_method_is(int method) {
        return method >= CALL_METHOD_STD_BASE && method < _STD_METHOD_END;
}

/* "/grpc.health.v1.Health/Check", …; NULL for another method. */
const char *std_method_path(int method);
/* Whether gRPC reads the (only) request message before the call arrives
 * (Check, Watch); reflection streams read theirs one by one. */
bool std_method_reads_payload(int method);

/* Registers the methods with s's gRPC server (into s->std_methods) and reads
 * the embedded descriptor set; -EINVAL, -ENOMEM. */
int std_services_register(Server *s);

/* Closures for engine_post(), each taking over the reference it is given. */
void std_services_request_closure(Engine *e, void *userdata); /* a new call, identified */
EngineClosure std_services_sent_closure(int method);          /* TAG_SEND of method */
EngineClosure std_services_cancel_closure(int method);        /* a cancelled call; NULL: nothing to do */
