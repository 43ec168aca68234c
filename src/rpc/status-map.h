/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a failure looks like to a gRPC client: errno values and failed job
 * starts mapped to a status code and a message, from one table.
 *
 * Pure functions, any thread.
 */

#include <stdbool.h>
#include <stddef.h>

#include <grpc/status.h>

#include "core/engine.h"

#define STATUS_MAP_MESSAGE_MAX 640
/* Room for status_map_resource_hint() with a state directory of PATH_MAX. */
#define STATUS_MAP_HINT_MAX (128 + 4096)

/* What the host ran out of, when a call failed RESOURCE_EXHAUSTED. */
typedef enum StatusResource {
        STATUS_RESOURCE_NONE,
        STATUS_RESOURCE_PROCESSES,  /* EAGAIN, EUSERS: TasksMax=, RLIMIT_NPROC */
        STATUS_RESOURCE_FDS,        /* EMFILE: the daemon's LimitNOFILE= */
        STATUS_RESOURCE_HOST_FDS,   /* ENFILE: the host's file table */
        STATUS_RESOURCE_MEMORY,     /* ENOMEM */
        STATUS_RESOURCE_DISK,       /* ENOSPC: the state directory's file system */
        STATUS_RESOURCE_QUOTA,      /* EDQUOT: the same, a quota */
        STATUS_RESOURCE_NAMESPACES, /* ENOSPC/EUSERS creating a job's namespace */
        _STATUS_RESOURCE_MAX,
} StatusResource;

typedef struct StatusMapping {
        grpc_status_code code;
        char message[STATUS_MAP_MESSAGE_MAX];
        /* The host ran out of something (processes, fds, memory, disk): the
         * operator must hear of it, not only the client. */
        bool exhausted;
        StatusResource resource; /* which, when exhausted */
} StatusMapping;

/* error: a negative errno. */
grpc_status_code status_map_errno(int error);

/* code from the table, message "<what>: <strerror>". */
void status_map_error(int error, const char *what, StatusMapping *ret);

/* A failed engine_start_job(): r its return value, err what it reported. */
void status_map_start_error(int r, const JobStartError *err, StatusMapping *ret);

/* For the operator's log: where to look when the host ran out of resource
 * ("out of disk space on the state directory /var/lib/jobworker", "out of
 * processes: see TasksMax= ..."), NUL-terminated into buf (cut to size;
 * STATUS_MAP_HINT_MAX is enough). state_dir is named for DISK and QUOTA.
 * "" for STATUS_RESOURCE_NONE. */
void status_map_resource_hint(StatusResource resource, const char *state_dir, char *buf, size_t size);
