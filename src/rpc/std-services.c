/* SPDX-License-Identifier: MIT */
/*
 * The standard services beside JobWorker: method table and routing (see
 * std-services.h).
 *
 * The one idea: server.c knows of these services only that their calls are
 * numbered from CALL_METHOD_STD_BASE; every question it has about one (path,
 * whether gRPC reads the request, what to run when it arrives, is sent or is
 * cancelled) is answered here, so health and reflection live in files of
 * their own and the JobWorker methods (RequestMethod) stay as they are.
 */

#include <errno.h>

#include "rpc/descriptor-set.h"
#include "rpc/health.h"
#include "rpc/reflection.h"
#include "rpc/server-internal.h"
#include "rpc/std-services.h"

static const struct {
        const char *path;
        bool reads_payload;
} methods[STD_METHOD_COUNT] = {
        [STD_HEALTH_CHECK - CALL_METHOD_STD_BASE] = { "/grpc.health.v1.Health/Check", true },
        [STD_HEALTH_WATCH - CALL_METHOD_STD_BASE] = { "/grpc.health.v1.Health/Watch", true },
        [STD_REFLECTION_V1 - CALL_METHOD_STD_BASE] = { "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", false },
        [STD_REFLECTION_V1ALPHA - CALL_METHOD_STD_BASE] = { "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", false },
};

const char *std_method_path(int method) {
        return std_method_is(method) ? methods[method - CALL_METHOD_STD_BASE].path : NULL;
}

bool std_method_reads_payload(int method) {
        return std_method_is(method) && methods[method - CALL_METHOD_STD_BASE].reads_payload;
}

int std_services_register(Server *s) {
        int r;

        r = descriptor_db_new(&s->descriptors, descriptor_set, descriptor_set_size);
        if (r < 0)
                return r;
        for (int m = CALL_METHOD_STD_BASE; m < _STD_METHOD_END; m++) {
                s->std_methods[m - CALL_METHOD_STD_BASE] = grpc_server_register_method(
                        s->grpc, std_method_path(m), NULL,
                        std_method_reads_payload(m) ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE,
                        0);
                if (!s->std_methods[m - CALL_METHOD_STD_BASE])
                        return -EINVAL;
        }
        return 0;
}

void std_services_request_closure(Engine *e, void *userdata) {
        RpcCall *c = userdata;

        if (e && server_state(c->server) != SERVER_CLOSED)
                switch ((StdMethod) c->method) {
                case STD_HEALTH_CHECK:
                        health_check(c);
                        break;
                case STD_HEALTH_WATCH:
                        health_watch(c);
                        break;
                case STD_REFLECTION_V1:
                case STD_REFLECTION_V1ALPHA:
                        reflection_start(c);
                        break;
                case _STD_METHOD_END:
                        break;
                }
        call_unref(c);
}

EngineClosure std_services_sent_closure(int method) {
        return method == STD_HEALTH_WATCH ? health_watch_sent_closure : NULL;
}

EngineClosure std_services_cancel_closure(int method) {
        return method == STD_HEALTH_WATCH ? health_watch_cancel_closure : NULL;
}
