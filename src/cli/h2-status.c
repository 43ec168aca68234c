/* SPDX-License-Identifier: MIT */
/*
 * A gRPC call's status from its HTTP/2 answer (see h2-status.h). The one
 * idea: grpc-status wins whenever the server sent it; only an answer
 * without it (a proxy, a server that is not gRPC, a reset stream) is mapped
 * from the HTTP status or the RST_STREAM code, as gRPC's own clients do.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/h2-status.h"

void h2_status_done(H2Status *st) {
        if (!st)
                return;
        free(st->message);
        st->message = NULL;
}

static bool name_is(const char *name, size_t n, const char *want) {
        return n == strlen(want) && memcmp(name, want, n) == 0;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

char *h2_percent_decode(const char *s, size_t n) {
        char *out = malloc(n + 1), *w = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;
                if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
                        *w++ = (char) (hi << 4 | lo);
                        i += 2;
                } else
                        *w++ = s[i]; /* a malformed escape stays as it is */
        }
        *w = '\0';
        return out;
}

int h2_status_header(H2Status *st, const char *name, size_t namelen, const char *value, size_t valuelen) {
        if (st->code_set)
                return 0;
        if (name_is(name, namelen, ":status")) {
                st->http_status = 0;
                for (size_t i = 0; i < valuelen && value[i] >= '0' && value[i] <= '9' && i < 3; i++)
                        st->http_status = st->http_status * 10 + (value[i] - '0');
        } else if (name_is(name, namelen, "grpc-status")) {
                unsigned code = 0;
                size_t i;
                for (i = 0; i < valuelen && i < 4 && value[i] >= '0' && value[i] <= '9'; i++)
                        code = code * 10 + (unsigned) (value[i] - '0');
                st->code = i == valuelen && i > 0 && code <= GRPC_STATUS_UNAUTHENTICATED ? (grpc_status_code) code
                                                                                        : GRPC_STATUS_UNKNOWN;
                st->grpc_status_seen = true;
        } else if (name_is(name, namelen, "grpc-message")) {
                free(st->message);
                st->message = h2_percent_decode(value, valuelen);
                if (!st->message)
                        return -ENOMEM;
        }
        return 0;
}

static grpc_status_code from_http(int http) {
        switch (http) {
        case 400:
                return GRPC_STATUS_INTERNAL;
        case 401:
                return GRPC_STATUS_UNAUTHENTICATED;
        case 403:
                return GRPC_STATUS_PERMISSION_DENIED;
        case 404:
                return GRPC_STATUS_UNIMPLEMENTED;
        case 429:
        case 502:
        case 503:
        case 504:
                return GRPC_STATUS_UNAVAILABLE;
        default:
                return GRPC_STATUS_UNKNOWN;
        }
}

/* RST_STREAM codes (RFC 9113 section 7) as gRPC maps them. */
static grpc_status_code from_rst(uint32_t error_code) {
        switch (error_code) {
        case 0x7: /* REFUSED_STREAM: never processed, safe to retry */
                return GRPC_STATUS_UNAVAILABLE;
        case 0x8: /* CANCEL */
                return GRPC_STATUS_CANCELLED;
        case 0xb: /* ENHANCE_YOUR_CALM */
                return GRPC_STATUS_RESOURCE_EXHAUSTED;
        case 0xc: /* INADEQUATE_SECURITY */
                return GRPC_STATUS_PERMISSION_DENIED;
        default:
                return GRPC_STATUS_INTERNAL;
        }
}

static void set_message(H2Status *st, const char *fmt, unsigned v) {
        char buf[96];
        snprintf(buf, sizeof buf, fmt, v);
        free(st->message);
        st->message = strdup(buf);
}

void h2_status_finish(H2Status *st, uint32_t error_code) {
        if (st->code_set)
                return;
        st->code_set = true;
        if (st->grpc_status_seen)
                return;
        if (st->http_status != 0 && st->http_status != 200) {
                st->code = from_http(st->http_status);
                set_message(st, "the server answered with HTTP status %u", (unsigned) st->http_status);
        } else if (error_code != 0) {
                st->code = from_rst(error_code);
                set_message(st, "the server reset the stream (HTTP/2 error %u)", error_code);
        } else {
                st->code = GRPC_STATUS_UNKNOWN;
                free(st->message);
                st->message = strdup("the server ended the call without a status");
        }
}

void h2_timeout_header(uint64_t usec, char *buf, size_t size) {
        static const struct { char unit; uint64_t usec; } units[] = {
                { 'u', 1 }, { 'm', 1000 }, { 'S', 1000000 }, { 'M', 60000000 }, { 'H', 3600000000 },
        };
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
                uint64_t v = usec / units[i].usec + (usec % units[i].usec != 0); /* up, without overflow */
                if (v < 100000000 || i == sizeof units / sizeof units[0] - 1) {
                        snprintf(buf, size, "%" PRIu64 "%c", v < 100000000 ? v : 99999999, units[i].unit);
                        return;
                }
        }
}
