/* SPDX-License-Identifier: MIT */
/*
 * gRPC's log into ours (see grpc-log.h).
 *
 * gRPC's default writes "E1203 05:30:00.123 file:line] message" to stderr
 * as it is: a message quoting what a peer sent (a header, a path) could
 * hold a line feed and a fake "<0>..." line of its own. Here each message
 * is one line of ours, escaped by log_fields(). gRPC's ERROR becomes a
 * warning: most are about a peer's mistakes, not the daemon's; its source
 * file and line go into a field (GRPC_SOURCE=), not into the text.
 * GRPC_VERBOSITY still decides what gRPC hands us; --log-level what of it
 * is written.
 */

#include <stdio.h>
#include <grpc/support/log.h>

#include "daemon/grpc-log.h"
#include "daemon/log.h"

static LogRateLimit grpc_limit = LOG_RATELIMIT_INIT(50, 10ull * 1000000);

static void grpc_log(gpr_log_func_args *a) {
        char source[128];
        const char *fields[] = { source, NULL };
        int level = a->severity == GPR_LOG_SEVERITY_ERROR  ? LOG_WARNING
                    : a->severity == GPR_LOG_SEVERITY_INFO ? LOG_INFO
                                                           : LOG_DEBUG;

        snprintf(source, sizeof(source), "GRPC_SOURCE=%s:%d", a->file ? a->file : "?", a->line);
        log_ratelimited(&grpc_limit, level, fields, "gRPC: %s", a->message ? a->message : "");
}

void grpc_log_install(void) {
        gpr_set_log_function(grpc_log);
}
