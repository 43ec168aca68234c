/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The status of a gRPC call as HTTP/2 tells it (the gRPC HTTP/2 protocol
 * and its HTTP-to-gRPC status mapping), without the I/O: the headers and
 * trailers as they come, the RST_STREAM code, the grpc-timeout header.
 * Plain functions on plain data, so tests/unit/test-cli-h2-status.c can
 * check every case.
 */

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct H2Status {
        grpc_status_code code;
        bool code_set;       /* final: code (and message) are the call's status */
        char *message;       /* malloc()ed, decoded; NULL if none */
        int http_status;     /* :status, 0 until seen */
        bool grpc_status_seen;
} H2Status;

void h2_status_done(H2Status *st);

/* One header of the answer (response headers or trailers). 0 or -ENOMEM. */
int h2_status_header(H2Status *st, const char *name, size_t namelen, const char *value, size_t valuelen);

/* The stream closed with HTTP/2 error_code (0: NO_ERROR): fixes code and
 * message from what was seen, in gRPC's order: grpc-status, then an HTTP
 * status that is not 200, then the RST_STREAM code. */
void h2_status_finish(H2Status *st, uint32_t error_code);

/* The grpc-timeout value for usec (at most 8 digits and a unit), rounded up. */
void h2_timeout_header(uint64_t usec, char *buf, size_t size);

/* Decodes grpc-message's percent-encoding; malloc()ed, NULL on ENOMEM. */
char *h2_percent_decode(const char *s, size_t n);
