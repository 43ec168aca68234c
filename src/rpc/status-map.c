/* SPDX-License-Identifier: MIT */
/*
 * Errors to gRPC statuses (see status-map.h).
 *
 * The one idea: a client learns from the code whether to fix its request
 * (INVALID_ARGUMENT), wait for the host (RESOURCE_EXHAUSTED), fix the host
 * (FAILED_PRECONDITION) or report a bug (INTERNAL); the errno table below is
 * the only place that decides which errno is which (and which resource of
 * the host it means, for the operator's hint), and a failed job start adds
 * only what its stage says on top of it.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rpc/status-map.h"
#include "shared/macro.h"

static const struct {
        int error;
        grpc_status_code code;
        StatusResource resource; /* what the host ran out of, for RESOURCE_EXHAUSTED */
} errno_table[] = {
        { ENOENT, GRPC_STATUS_NOT_FOUND, STATUS_RESOURCE_NONE },
        { EINVAL, GRPC_STATUS_INVALID_ARGUMENT, STATUS_RESOURCE_NONE },
        { E2BIG, GRPC_STATUS_INVALID_ARGUMENT, STATUS_RESOURCE_NONE },
        { ENAMETOOLONG, GRPC_STATUS_INVALID_ARGUMENT, STATUS_RESOURCE_NONE },
        /* The host out of processes (TasksMax, RLIMIT_NPROC), fds, memory or disk. */
        { EAGAIN, GRPC_STATUS_RESOURCE_EXHAUSTED, STATUS_RESOURCE_PROCESSES },
        { EUSERS, GRPC_STATUS_RESOURCE_EXHAUSTED, STATUS_RESOURCE_PROCESSES },
        { EMFILE, GRPC_STATUS_RESOURCE_EXHAUSTED, STATUS_RESOURCE_FDS },
        { ENFILE, GRPC_STATUS_RESOURCE_EXHAUSTED, STATUS_RESOURCE_HOST_FDS },
        { ENOMEM, GRPC_STATUS_RESOURCE_EXHAUSTED, STATUS_RESOURCE_MEMORY },
        { ENOSPC, GRPC_STATUS_RESOURCE_EXHAUSTED, STATUS_RESOURCE_DISK },
        { EDQUOT, GRPC_STATUS_RESOURCE_EXHAUSTED, STATUS_RESOURCE_QUOTA },
};

/* Where an operator looks for each resource: said after the failure in the
 * daemon's log. The disk ones are followed by the state directory. */
static const char *const resource_hints[_STATUS_RESOURCE_MAX] = {
        [STATUS_RESOURCE_NONE] = "",
        [STATUS_RESOURCE_PROCESSES] = "out of processes: see TasksMax= of jobworker.service and the RLIMIT_NPROC "
                                      "of the job's account",
        [STATUS_RESOURCE_FDS] = "out of file descriptors: see LimitNOFILE= of jobworker.service",
        [STATUS_RESOURCE_HOST_FDS] = "the host is out of file descriptors: see the sysctl fs.file-max",
        [STATUS_RESOURCE_MEMORY] = "out of memory: see MemoryMax= of jobworker.service and the host's memory",
        [STATUS_RESOURCE_DISK] = "out of disk space on the state directory",
        [STATUS_RESOURCE_QUOTA] = "over the disk quota on the state directory",
        [STATUS_RESOURCE_NAMESPACES] = "out of namespaces: see the sysctls user.max_*_namespaces",
};

static size_t errno_row(int error) {
        for (size_t i = 0; i < ELEMENTSOF(errno_table); i++)
                if (-error == errno_table[i].error)
                        return i;
        return SIZE_MAX;
}

grpc_status_code status_map_errno(int error) {
        size_t i = errno_row(error);

        return i == SIZE_MAX ? GRPC_STATUS_INTERNAL : errno_table[i].code;
}

void status_map_resource_hint(StatusResource resource, const char *state_dir, char *buf, size_t size) {
        const char *hint = resource >= 0 && resource < _STATUS_RESOURCE_MAX ? resource_hints[resource] : "";

        if (resource == STATUS_RESOURCE_DISK || resource == STATUS_RESOURCE_QUOTA)
                snprintf(buf, size, "%s %s", hint, state_dir);
        else
                snprintf(buf, size, "%s", hint);
}

void status_map_error(int error, const char *what, StatusMapping *ret) {
        size_t i = errno_row(error);

        ret->code = i == SIZE_MAX ? GRPC_STATUS_INTERNAL : errno_table[i].code;
        ret->exhausted = ret->code == GRPC_STATUS_RESOURCE_EXHAUSTED;
        ret->resource = i == SIZE_MAX ? STATUS_RESOURCE_NONE : errno_table[i].resource;
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
                ret->resource = STATUS_RESOURCE_NONE;
                snprintf(ret->message, sizeof(ret->message), "%s", err->message[0] ? err->message : "invalid io device");
                return;
        }
        /* Creating a namespace: ENOSPC and EUSERS are its count and depth
         * limits, not the disk or processes. */
        if (err->stage == JOB_START_STAGE_ISOLATION && (r == -ENOSPC || r == -EUSERS))
                ret->resource = STATUS_RESOURCE_NAMESPACES;
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
        case JOB_START_STAGE_NAME:
                /* A running job of the caller has the name (named in the
                 * message); a bad name is the request's fault. */
                ret->code = r == -EEXIST ? GRPC_STATUS_ALREADY_EXISTS : GRPC_STATUS_INVALID_ARGUMENT;
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
