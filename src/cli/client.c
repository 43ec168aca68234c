/* SPDX-License-Identifier: MIT */
/*
 * jwctl's side of the wire: the mirror image of the daemon's bridge. src/tls
 * connects and handshakes (client certificate, server verified against the
 * CA and the host name, ALPN h2) and pumps records between the socket and a
 * socketpair; gRPC C core gets the plaintext end via
 * grpc_channel_create_from_fd() with insecure credentials (TLS is already
 * done underneath). Each call owns a pluck completion queue, so a second
 * thread may start a call (Stop on Ctrl-C) or cancel one at any time.
 */

#include <assert.h>
#include <errno.h>
#include <gnutls/x509.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "wire/codec.h"
#include "wire/wire.h"
#include "shared/macro.h"
#include "tls/client.h"
#include "tls/tls.h"

struct CliClient {
        TlsContext *tls_ctx;
        TlsClient *tls;
        grpc_channel *channel;
        char *server;
        uint64_t timeout_usec;
        char *cert_file;
        char *identity;
        bool identity_loaded;
};

struct CliOutputCall {
        grpc_call *call;
        grpc_completion_queue *cq;
        grpc_byte_buffer *send;
        grpc_metadata_array initial_md;
        grpc_metadata_array trailing_md;
        grpc_status_code status;
        grpc_slice details;
        bool start_pending;   /* the send batch (tag 1) not plucked yet */
        bool status_pending;  /* the status batch (tag 2) not plucked yet */
        bool finished;
        uint8_t *rbuf;        /* the last message, contiguous; reused */
        size_t rbuf_size;
};

enum { TAG_SEND = 1, TAG_STATUS = 2, TAG_RECV = 3 };
#define TAG(n) ((void *) (uintptr_t) (n))

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

static gpr_timespec deadline_after(uint64_t usec) {
        return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_micros((int64_t) usec, GPR_TIMESPAN));
}

static char *slice_to_string(grpc_slice s) {
        size_t n = GRPC_SLICE_LENGTH(s);
        char *m = malloc(n + 1);

        if (!m)
                return NULL;
        memcpy(m, GRPC_SLICE_START_PTR(s), n);
        m[n] = '\0';
        return m;
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
                                     s->kernel_tls_off ? TLS_CLIENT_NO_KERNEL_TLS : 0, &c->tls, &fd, &failure, &message);
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

        /* Keepalive: pings only while a call is open, unlimited in number
         * between data frames (a quiet follow sends none), answered within
         * MIN(interval, 20 s) or the connection is dead. INT_MAX: off. */
        uint64_t ka = s->keepalive_usec;
        int ka_ms = ka ? (int) MIN(MAX(ka / 1000, (uint64_t) 1), (uint64_t) INT32_MAX) : INT32_MAX;
        int ka_timeout_ms = (int) MIN(MAX(MIN(ka, CLI_KEEPALIVE_TIMEOUT_MAX_USEC) / 1000, (uint64_t) 1), (uint64_t) INT32_MAX);
        grpc_arg args[] = {
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1 },
                { .type = GRPC_ARG_STRING, .key = (char *) GRPC_ARG_DEFAULT_AUTHORITY, .value.string = s->server },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = ka_ms },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = ka_timeout_ms },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, .value.integer = 0 },
                { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, .value.integer = 0 },
        };
        grpc_channel_args channel_args = { .num_args = ELEMENTSOF(args), .args = args };
        grpc_channel_credentials *creds = grpc_insecure_credentials_create();

        /* gRPC owns fd from here on, even on failure. */
        c->channel = grpc_channel_create_from_fd(s->server, fd, creds, &channel_args);
        grpc_channel_credentials_release(creds);
        if (!c->channel) {
                *ret_exit = CLI_EXIT_CONNECT;
                if (asprintf(ret_error, "cannot set up a gRPC channel to %s", s->server) < 0)
                        *ret_error = NULL;
                cli_client_free(c);
                return -EIO;
        }
        *ret = c;
        return 0;
}

CliClient *cli_client_free(CliClient *c) {
        if (!c)
                return NULL;
        if (c->channel)
                grpc_channel_destroy(c->channel);
        tls_client_free(c->tls);
        tls_context_unref(c->tls_ctx);
        free(c->server);
        free(c->cert_file);
        free(c->identity);
        free(c);
        return NULL;
}

grpc_channel *cli_client_channel(CliClient *c) {
        return c->channel;
}

const char *cli_client_server(const CliClient *c) {
        return c->server;
}

uint64_t cli_client_timeout_usec(const CliClient *c) {
        return c->timeout_usec;
}

char *cli_client_tls_failure(CliClient *c) {
        return c->tls ? tls_client_failure_message(c->tls) : NULL;
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

/* Waits for tag on cq; true if the batch succeeded. */
static bool pluck(grpc_completion_queue *cq, void *tag) {
        grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static void destroy_cq(grpc_completion_queue *cq) {
        if (!cq)
                return;
        grpc_completion_queue_shutdown(cq);
        while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(cq);
}

static int set_status(CliCallStatus *ret, grpc_status_code code, const char *message) {
        ret->code = code;
        ret->message = message ? strdup(message) : NULL;
        if (message && !ret->message)
                return -ENOMEM;
        return 0;
}

int cli_client_unary(CliClient *c, const char *method, const ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *response_descriptor,
                     ProtobufCMessage **ret_response, CliCallStatus *ret_status) {
        grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
        grpc_slice method_slice = grpc_slice_from_static_string(method);
        grpc_metadata_array initial_md, trailing_md;
        grpc_byte_buffer *send = NULL, *recv = NULL;
        grpc_status_code status = GRPC_STATUS_UNKNOWN;
        grpc_slice details = grpc_empty_slice();
        grpc_call *call;
        int r;

        grpc_metadata_array_init(&initial_md);
        grpc_metadata_array_init(&trailing_md);

        call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method_slice, NULL,
                                        deadline_after(c->timeout_usec), NULL);
        send = codec_pack(request);

        grpc_op ops[5] = {
                { .op = GRPC_OP_SEND_INITIAL_METADATA },
                { .op = GRPC_OP_SEND_MESSAGE, .data.send_message.send_message = send },
                { .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT },
                { .op = GRPC_OP_RECV_INITIAL_METADATA, .data.recv_initial_metadata.recv_initial_metadata = &initial_md },
                { .op = GRPC_OP_RECV_MESSAGE, .data.recv_message.recv_message = &recv },
        };
        grpc_op status_op = {
                .op = GRPC_OP_RECV_STATUS_ON_CLIENT,
                .data.recv_status_on_client = { .trailing_metadata = &trailing_md, .status = &status, .status_details = &details },
        };
        grpc_call_error e1 = grpc_call_start_batch(call, ops, ELEMENTSOF(ops), TAG(TAG_SEND), NULL);
        grpc_call_error e2 = grpc_call_start_batch(call, &status_op, 1, TAG(TAG_STATUS), NULL);
        assert(e1 == GRPC_CALL_OK && e2 == GRPC_CALL_OK);
        (void) e1;
        (void) e2;

        (void) pluck(cq, TAG(TAG_SEND));
        (void) pluck(cq, TAG(TAG_STATUS));

        if (status != GRPC_STATUS_OK) {
                _cleanup_free_ char *m = slice_to_string(details);
                r = set_status(ret_status, status, m);
                if (r == 0)
                        r = -EREMOTEIO;
        } else if (!recv) {
                r = set_status(ret_status, GRPC_STATUS_INTERNAL, "the server answered without a message");
                if (r == 0)
                        r = -EREMOTEIO;
        } else {
                ProtobufCMessage *m = codec_unpack(recv, response_descriptor);
                if (!m) {
                        r = set_status(ret_status, GRPC_STATUS_INTERNAL, "the server's answer does not parse");
                        if (r == 0)
                                r = -EREMOTEIO;
                } else {
                        *ret_response = m;
                        r = 0;
                }
        }

        if (recv)
                grpc_byte_buffer_destroy(recv);
        grpc_byte_buffer_destroy(send);
        grpc_slice_unref(details);
        grpc_metadata_array_destroy(&initial_md);
        grpc_metadata_array_destroy(&trailing_md);
        grpc_call_unref(call);
        destroy_cq(cq);
        return r;
}

int cli_client_output_start(CliClient *c, const Jobworker__V1__OutputRequest *request, CliOutputCall **ret) {
        CliOutputCall *o = calloc(1, sizeof(*o));

        if (!o)
                return -ENOMEM;
        o->cq = grpc_completion_queue_create_for_pluck(NULL);
        o->details = grpc_empty_slice();
        o->status = GRPC_STATUS_UNKNOWN;
        grpc_metadata_array_init(&o->initial_md);
        grpc_metadata_array_init(&o->trailing_md);
        o->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, o->cq,
                                           grpc_slice_from_static_string("/jobworker.v1.JobWorker/Output"), NULL,
                                           gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        o->send = codec_pack(&request->base);

        grpc_op ops[4] = {
                { .op = GRPC_OP_SEND_INITIAL_METADATA },
                { .op = GRPC_OP_SEND_MESSAGE, .data.send_message.send_message = o->send },
                { .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT },
                { .op = GRPC_OP_RECV_INITIAL_METADATA, .data.recv_initial_metadata.recv_initial_metadata = &o->initial_md },
        };
        grpc_op status_op = {
                .op = GRPC_OP_RECV_STATUS_ON_CLIENT,
                .data.recv_status_on_client = { .trailing_metadata = &o->trailing_md, .status = &o->status,
                                                .status_details = &o->details },
        };
        grpc_call_error e1 = grpc_call_start_batch(o->call, ops, ELEMENTSOF(ops), TAG(TAG_SEND), NULL);
        grpc_call_error e2 = grpc_call_start_batch(o->call, &status_op, 1, TAG(TAG_STATUS), NULL);
        assert(e1 == GRPC_CALL_OK && e2 == GRPC_CALL_OK);
        (void) e1;
        (void) e2;
        o->start_pending = o->status_pending = true;
        *ret = o;
        return 0;
}

static void finish(CliOutputCall *o) {
        if (o->start_pending) {
                (void) pluck(o->cq, TAG(TAG_SEND));
                o->start_pending = false;
        }
        if (o->status_pending) {
                (void) pluck(o->cq, TAG(TAG_STATUS));
                o->status_pending = false;
        }
        o->finished = true;
}

/* Copies a received message into o->rbuf (grown, never shrunk): the one
 * copy of its bytes, instead of readall() and protobuf-c each allocating
 * and copying a chunk-sized buffer per message. */
static ssize_t take_message(CliOutputCall *o, grpc_byte_buffer *bb) {
        size_t need = grpc_byte_buffer_length(bb), n = 0;
        grpc_byte_buffer_reader reader;
        grpc_slice s;

        if (need > o->rbuf_size) {
                uint8_t *p = realloc(o->rbuf, need);
                if (!p)
                        return -ENOMEM;
                o->rbuf = p;
                o->rbuf_size = need;
        }
        if (!grpc_byte_buffer_reader_init(&reader, bb))
                return -EBADMSG;
        while (grpc_byte_buffer_reader_next(&reader, &s)) {
                size_t k = GRPC_SLICE_LENGTH(s);
                if (n + k > o->rbuf_size) { /* a compressed message grew: fall back */
                        grpc_slice_unref(s);
                        grpc_byte_buffer_reader_destroy(&reader);
                        return -E2BIG;
                }
                memcpy(o->rbuf + n, GRPC_SLICE_START_PTR(s), k);
                n += k;
                grpc_slice_unref(s);
        }
        grpc_byte_buffer_reader_destroy(&reader);
        return (ssize_t) n;
}

int cli_output_call_next(CliOutputCall *o, CliOutputItem *ret) {
        grpc_byte_buffer *recv = NULL;
        ProtobufCMessage *m = NULL;
        WireChunk w;
        ssize_t n;

        if (o->finished)
                return 0;
        if (o->start_pending) {
                (void) pluck(o->cq, TAG(TAG_SEND));
                o->start_pending = false;
        }

        grpc_op op = { .op = GRPC_OP_RECV_MESSAGE, .data.recv_message.recv_message = &recv };
        if (grpc_call_start_batch(o->call, &op, 1, TAG(TAG_RECV), NULL) != GRPC_CALL_OK) {
                finish(o);
                return 0;
        }
        (void) pluck(o->cq, TAG(TAG_RECV));
        if (!recv) {
                finish(o);
                return 0;
        }
        n = take_message(o, recv);
        if (n >= 0 && wire_chunk_parse(o->rbuf, (size_t) n, &w)) {
                grpc_byte_buffer_destroy(recv);
                *ret = (CliOutputItem) { .stream = w.stream, .offset = w.offset, .data = w.data, .len = w.len };
                return 1;
        }
        m = codec_unpack(recv, &jobworker__v1__output_response__descriptor);
        grpc_byte_buffer_destroy(recv);
        if (!m) {
                grpc_call_cancel_with_status(o->call, GRPC_STATUS_INTERNAL, "unparsable message", NULL);
                finish(o);
                o->status = GRPC_STATUS_INTERNAL;
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

        if (!o->finished)
                finish(o);
        m = slice_to_string(o->details);
        return set_status(ret, o->status, m && *m ? m : NULL);
}

void cli_output_call_cancel(CliOutputCall *o) {
        grpc_call_cancel(o->call, NULL);
}

CliOutputCall *cli_output_call_free(CliOutputCall *o) {
        if (!o)
                return NULL;
        if (!o->finished) {
                grpc_call_cancel(o->call, NULL);
                finish(o);
        }
        grpc_call_unref(o->call);
        grpc_byte_buffer_destroy(o->send);
        grpc_slice_unref(o->details);
        grpc_metadata_array_destroy(&o->initial_md);
        grpc_metadata_array_destroy(&o->trailing_md);
        destroy_cq(o->cq);
        free(o->rbuf);
        free(o);
        return NULL;
}
