/* SPDX-License-Identifier: MIT */
/*
 * Errors to gRPC statuses (see status-map.h).
 *
 * The one idea: a client learns from the code whether to fix its request
 * (INVALID_ARGUMENT), wait for the host (RESOURCE_EXHAUSTED), fix the host
 * (FAILED_PRECONDITION) or report a bug (INTERNAL); the errno table below is
 * the only place that decides which errno is which, and a failed job start
 * adds only what its stage says on top of it.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rpc/status-map.h"
#include "shared/macro.h"

static const struct {
        int error;
        grpc_status_code code;
} errno_table[] = {
        { ENOENT, GRPC_STATUS_NOT_FOUND },
        { EINVAL, GRPC_STATUS_INVALID_ARGUMENT },
        { E2BIG, GRPC_STATUS_INVALID_ARGUMENT },
        { ENAMETOOLONG, GRPC_STATUS_INVALID_ARGUMENT },
        /* The host out of processes (TasksMax, RLIMIT_NPROC), fds, memory or disk. */
        { EAGAIN, GRPC_STATUS_RESOURCE_EXHAUSTED },
        { EMFILE, GRPC_STATUS_RESOURCE_EXHAUSTED },
        { ENFILE, GRPC_STATUS_RESOURCE_EXHAUSTED },
        { ENOMEM, GRPC_STATUS_RESOURCE_EXHAUSTED },
        { ENOSPC, GRPC_STATUS_RESOURCE_EXHAUSTED },
        { EDQUOT, GRPC_STATUS_RESOURCE_EXHAUSTED },
        { EUSERS, GRPC_STATUS_RESOURCE_EXHAUSTED },
};

grpc_status_code status_map_errno(int error) {
        for (size_t i = 0; i < ELEMENTSOF(errno_table); i++)
                if (-error == errno_table[i].error)
                        return errno_table[i].code;
        return GRPC_STATUS_INTERNAL;
}

void status_map_error(int error, const char *what, StatusMapping *ret) {
        ret->code = status_map_errno(error);
        ret->exhausted = ret->code == GRPC_STATUS_RESOURCE_EXHAUSTED;
        snprintf(ret->message, sizeof(ret->message), "%s: %s", what, strerror(-error));
}

void status_map_start_error(int r, const JobStartError *err, StatusMapping *ret) {
        status_map_error(r, "cannot start job", ret);
        /* The engine gave up a start in flight because it is going away. */
        if (r == -ECANCELED) {
                ret->code = GRPC_STATUS_UNAVAILABLE;
                snprintf(ret->message, sizeof(ret->message), "the server is shutting down");
                return;
        }
        /* A path the client named as an io device: its fault whatever the
         * errno (ENOENT is no job that was not found), unless we ran out. */
        if (err->stage == JOB_START_STAGE_IO_DEVICE && r != -ENOMEM) {
                ret->code = GRPC_STATUS_INVALID_ARGUMENT;
                ret->exhausted = false;
                snprintf(ret->message, sizeof(ret->message), "%s", err->message[0] ? err->message : "invalid io device");
                return;
        }
        /* No stage and no words from the engine: the errno says it all. */
        if (!err->message[0] || (err->stage == JOB_START_STAGE_NONE && !ret->exhausted))
                return;
        snprintf(ret->message, sizeof(ret->message), "%s", err->message);
        if (ret->exhausted)
                return;
        switch (err->stage) {
        case JOB_START_STAGE_ISOLATION:
                /* What the host cannot provide (a controller, cgroup v2, a
                 * namespace) is a precondition of the host, not a bad request. */
                ret->code = GRPC_STATUS_FAILED_PRECONDITION;
                return;
        case JOB_START_STAGE_STATE:
                /* The state directory refused the record (read-only, say):
                 * the host's to fix. */
                ret->code = GRPC_STATUS_FAILED_PRECONDITION;
                return;
        case JOB_START_STAGE_LIMITS:
                /* ... except a value the kernel refused as such. */
                ret->code = r == -EINVAL || r == -ERANGE ? GRPC_STATUS_INVALID_ARGUMENT
                                                         : GRPC_STATUS_FAILED_PRECONDITION;
                return;
        default:
                ret->code = GRPC_STATUS_INVALID_ARGUMENT;
                return;
        }
}
