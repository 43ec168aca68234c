/* SPDX-License-Identifier: MIT */
/*
 * jwctl's side of the wire. src/tls connects and handshakes (client
 * certificate, server verified against the CA and the host name, ALPN h2)
 * and hands the session over whole (TLS_CLIENT_DIRECT); cli/h2.c speaks
 * HTTP/2 and gRPC's framing on it. This file is the part that knows the
 * JobWorker API: protobuf-c in and out, the Output stream's chunks read in
 * place (wire/wire.h), and the words of a failure.
 *
 * The one idea: a transport failure is a status like any other
 * (UNAVAILABLE, DEADLINE_EXCEEDED), so every command has one error path.
 */

#include <errno.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "jwctl-version.h"
#include "wire/wire.h"
#include "shared/macro.h"
#include "tls/client.h"
#include "tls/tls.h"

struct CliClient {
        TlsContext *tls_ctx;
        H2Conn *conn;
        char *server;
        uint64_t timeout_usec;
        char *cert_file;
        char *identity;
        bool identity_loaded;
};

struct CliOutputCall {
        H2Call *call;
        bool finished;
        bool failed;          /* we ended it: the message did not parse */
};

void cli_call_status_done(CliCallStatus *s) {
        if (!s)
                return;
        free(s->message);
        s->message = NULL;
}

const char *cli_grpc_status_name(grpc_status_code code) {
        static const char *const names[] = {
                "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                "UNAUTHENTICATED",
        };
        if ((unsigned) code < ELEMENTSOF(names))
                return names[code];
        return "UNKNOWN";
}

static int error_from_tls(int r, const char *message, int *ret_exit, char **ret_error) {
        /* A file we cannot find or read is the user's setup: usage error. */
        *ret_exit = (r == -ENOENT || r == -EACCES || r == -EISDIR || r == -ENOTDIR) ? CLI_EXIT_USAGE : CLI_EXIT_CONNECT;
        if (message)
                *ret_error = strdup(message);
        else if (asprintf(ret_error, "cannot set up TLS: %s", strerror(-r)) < 0)
                *ret_error = NULL;
        return r < 0 ? r : -EIO;
}

int cli_client_connect(const CliSettings *s, CliClient **ret, int *ret_exit, char **ret_error) {
        return cli_client_connect_full(s, ret, ret_exit, ret_error, NULL);
}

int cli_client_connect_full(const CliSettings *s, CliClient **ret, int *ret_exit, char **ret_error,
                            TlsClientFailure *ret_failure) {
        _cleanup_free_ char *tls_error = NULL, *message = NULL;
        CliClient *c;
        TlsClientFailure failure = TLS_CLIENT_OK;
        TlsClient *tls = NULL;
        int fd = -1, r;

        if (ret_failure)
                *ret_failure = TLS_CLIENT_OK;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->timeout_usec = s->timeout_usec;
        c->server = strdup(s->server);
        c->cert_file = strdup(s->cert);
        if (!c->server || !c->cert_file) {
                cli_client_free(c);
                return -ENOMEM;
        }

        r = tls_context_new(&c->tls_ctx, TLS_ROLE_CLIENT, s->cert, s->key, s->ca, NULL, &tls_error);
        if (r < 0) {
                error_from_tls(r, tls_error, ret_exit, ret_error);
                cli_client_free(c);
                return r;
        }

        r = tls_client_connect_named(c->tls_ctx, s->host, s->port, s->tls_name, s->timeout_usec,
                                     TLS_CLIENT_DIRECT | (s->kernel_tls_off ? TLS_CLIENT_NO_KERNEL_TLS : 0), &tls, &fd,
                                     &failure, &message);
        if (r < 0) {
                if (ret_failure)
                        *ret_failure = failure;
                *ret_exit = CLI_EXIT_CONNECT;
                if (message)
                        *ret_error = TAKE_PTR(message);
                else if (asprintf(ret_error, "cannot connect to %s: %s", s->server, strerror(-r)) < 0)
                        *ret_error = NULL;
                cli_client_free(c);
                return r;
        }

        /* Keepalive: pings only while a call is open, answered within
         * MIN(interval, 20 s) or the connection is dead. 0: off. */
        H2Options opt = {
                .authority = s->server,
                .user_agent = "jwctl/" JWCTL_VERSION,
                .keepalive_usec = s->keepalive_usec,
                .keepalive_timeout_usec = MIN(s->keepalive_usec, CLI_KEEPALIVE_TIMEOUT_MAX_USEC),
                .stream_window = s->stream_window,
        };
        r = h2_conn_new(tls, &opt, &c->conn); /* takes tls */
        if (r < 0) {
                *ret_exit = CLI_EXIT_CONNECT;
                if (asprintf(ret_error, "cannot set up HTTP/2 to %s: %s", s->server, strerror(-r)) < 0)
                        *ret_error = NULL;
                cli_client_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

CliClient *cli_client_free(CliClient *c) {
        if (!c)
                return NULL;
        h2_conn_free(c->conn);
        tls_context_unref(c->tls_ctx);
        free(c->server);
        free(c->cert_file);
        free(c->identity);
        free(c);
        return NULL;
}

const char *cli_client_server(const CliClient *c) {
        return c->server;
}

uint64_t cli_client_timeout_usec(const CliClient *c) {
        return c->timeout_usec;
}

char *cli_client_tls_failure(CliClient *c) {
        return c->conn ? tls_client_failure_message(h2_conn_tls(c->conn)) : NULL;
}

const char *cli_client_identity(CliClient *c) {
        gnutls_datum_t data = {};
        gnutls_x509_crt_t crt = NULL;
        char buf[256];
        size_t size = sizeof buf;

        if (c->identity_loaded)
                return c->identity;
        c->identity_loaded = true;

        if (gnutls_load_file(c->cert_file, &data) < 0)
                return NULL;
        if (gnutls_x509_crt_init(&crt) >= 0 &&
            gnutls_x509_crt_import(crt, &data, GNUTLS_X509_FMT_PEM) >= 0 &&
            gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size) >= 0)
                c->identity = strndup(buf, size);
        gnutls_x509_crt_deinit(crt);
        gnutls_free(data.data);
        return c->identity;
}

static int set_status(CliCallStatus *ret, grpc_status_code code, const char *message) {
        ret->code = code;
        ret->message = message ? strdup(message) : NULL;
        if (message && !ret->message)
                return -ENOMEM;
        return 0;
}

/* Packs m and sends it as the call's only message, then half-closes. */
static int send_only(H2Call *k, const ProtobufCMessage *m) {
        size_t size = protobuf_c_message_get_packed_size(m);
        _cleanup_free_ uint8_t *buf = malloc(size ?: 1);

        if (!buf)
                return -ENOMEM;
        protobuf_c_message_pack(m, buf);
        (void) h2_call_send(k, buf, size); /* a call that already ended says so in its status */
        (void) h2_call_close_send(k);
        return 0;
}

int cli_client_call(CliClient *c, const char *method, uint64_t timeout_usec, H2Call **ret) {
        return h2_call_start(c->conn, method, timeout_usec, ret);
}

int cli_client_unary(CliClient *c, const char *method, const ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *response_descriptor,
                     ProtobufCMessage **ret_response, CliCallStatus *ret_status) {
        _cleanup_free_ char *details = NULL;
        ProtobufCMessage *m = NULL;
        grpc_status_code code;
        const uint8_t *msg;
        size_t len;
        H2Call *k;
        int r, got;

        r = h2_call_start(c->conn, method, c->timeout_usec, &k);
        if (r < 0)
                return r;
        r = send_only(k, request);
        if (r < 0) {
                h2_call_free(k);
                return r;
        }
        got = h2_call_recv(k, &msg, &len);
        if (got == 1)
                m = protobuf_c_message_unpack(response_descriptor, NULL, len, msg);
        r = h2_call_status(k, &code, &details);
        h2_call_free(k);
        if (r < 0) {
                protobuf_c_message_free_unpacked(m, NULL);
                return r;
        }
        if (code == GRPC_STATUS_OK && m) {
                *ret_response = m;
                return 0;
        }
        protobuf_c_message_free_unpacked(m, NULL);
        if (code != GRPC_STATUS_OK)
                r = set_status(ret_status, code, details);
        else if (got != 1)
                r = set_status(ret_status, GRPC_STATUS_INTERNAL, "the server answered without a message");
        else
                r = set_status(ret_status, GRPC_STATUS_INTERNAL, "the server's answer does not parse");
        return r < 0 ? r : -EREMOTEIO;
}

int cli_client_output_start(CliClient *c, const Jobworker__V1__OutputRequest *request, CliOutputCall **ret) {
        CliOutputCall *o = calloc(1, sizeof(*o));
        int r;

        if (!o)
                return -ENOMEM;
        r = h2_call_start(c->conn, CLI_METHOD("Output"), 0, &o->call);
        if (r >= 0)
                r = send_only(o->call, &request->base);
        if (r < 0) {
                cli_output_call_free(o);
                return r;
        }
        *ret = o;
        return 0;
}

int cli_output_call_next(CliOutputCall *o, CliOutputItem *ret) {
        ProtobufCMessage *m;
        const uint8_t *msg;
        WireChunk w;
        size_t len;
        int r;

        if (o->finished)
                return 0;
        r = h2_call_recv(o->call, &msg, &len);
        if (r <= 0) {
                o->finished = true;
                return r;
        }
        if (wire_chunk_parse(msg, len, &w)) {
                *ret = (CliOutputItem) { .stream = w.stream, .offset = w.offset, .data = w.data, .len = w.len };
                return 1;
        }
        m = protobuf_c_message_unpack(&jobworker__v1__output_response__descriptor, NULL, len, msg);
        if (!m) {
                h2_call_cancel(o->call);
                o->finished = o->failed = true;
                return -EBADMSG;
        }
        *ret = (CliOutputItem) { .message = (Jobworker__V1__OutputResponse *) m };
        /* A chunk that took the slow path (unusual encoding) reads the same. */
        if (ret->message->kind_case == JOBWORKER__V1__OUTPUT_RESPONSE__KIND_CHUNK && ret->message->chunk) {
                ret->stream = ret->message->chunk->stream;
                ret->offset = ret->message->chunk->offset;
                ret->data = ret->message->chunk->data.data;
                ret->len = ret->message->chunk->data.len;
        }
        return 1;
}

int cli_output_call_status(CliOutputCall *o, CliCallStatus *ret) {
        _cleanup_free_ char *m = NULL;
        grpc_status_code code;
        int r;

        if (o->failed)
                return set_status(ret, GRPC_STATUS_INTERNAL, "unparsable message");
        r = h2_call_status(o->call, &code, &m);
        if (r < 0)
                return r;
        return set_status(ret, code, m && *m ? m : NULL);
}

void cli_output_call_cancel(CliOutputCall *o) {
        h2_call_cancel(o->call);
}

CliOutputCall *cli_output_call_free(CliOutputCall *o) {
        if (!o)
                return NULL;
        h2_call_free(o->call);
        free(o);
        return NULL;
}
