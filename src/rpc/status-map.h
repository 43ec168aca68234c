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

typedef struct StatusMapping {
        grpc_status_code code;
        char message[STATUS_MAP_MESSAGE_MAX];
        /* The host ran out of something (processes, fds, memory, disk): the
         * operator must hear of it, not only the client. */
        bool exhausted;
} StatusMapping;

/* error: a negative errno. */
grpc_status_code status_map_errno(int error);

/* code from the table, message "<what>: <strerror>". */
void status_map_error(int error, const char *what, StatusMapping *ret);

/* A failed engine_start_job(): r its return value, err what it reported. */
void status_map_start_error(int r, const JobStartError *err, StatusMapping *ret);
