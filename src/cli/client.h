/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * jwctl's connection to jobworkerd: TLS by src/tls (GnuTLS, the same policy
 * as the daemon), HTTP/2 by nghttp2 directly on the TLS session and gRPC's
 * wire protocol by hand (cli/h2.h), messages by protobuf-c. No gRPC C core:
 * only its header-only <grpc/status.h> for the status codes.
 *
 * Calls are thread-safe in the way jwctl needs: the main thread may sit in a
 * streaming call while the signal thread makes a unary call (Stop) or cancels
 * the stream; the connection's I/O thread serves them all.
 */

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/h2.h"
#include "cli/settings.h"
#include "jobworker/v1/jobworker.pb-c.h"
#include "tls/client.h"

/* The gRPC method path of a JobWorker method: CLI_METHOD("Start"). */
#define CLI_METHOD(name) "/jobworker.v1.JobWorker/" name

/* Exit codes of jwctl (documented in jwctl(1)). */
enum {
        CLI_EXIT_OK = 0,
        CLI_EXIT_FAILED = 1,   /* the server refused or failed the request */
        CLI_EXIT_USAGE = 2,
        CLI_EXIT_CONNECT = 3,  /* could not connect, TLS failed, no answer */
        CLI_EXIT_INTERRUPTED = 130,
};

typedef struct CliClient CliClient;

/* The final status of a call. message is malloc()ed (may be NULL). */
typedef struct CliCallStatus {
        grpc_status_code code;
        char *message;
} CliCallStatus;

void cli_call_status_done(CliCallStatus *s);

/* Loads the TLS credentials, connects and handshakes within the settings'
 * timeout, and starts HTTP/2 on top. On failure returns < 0 with *ret_exit (CLI_EXIT_USAGE for a
 * missing/unreadable file, CLI_EXIT_CONNECT otherwise) and a malloc()ed
 * one-line *ret_error ("cannot connect to HOST:PORT: connection refused"). */
int cli_client_connect(const CliSettings *s, CliClient **ret, int *ret_exit, char **ret_error);
/* The same, and on failure *ret_failure (may be NULL) says which stage of
 * tls_client_connect() failed: TLS_CLIENT_OK when it was not the network
 * or TLS (a file, memory). */
int cli_client_connect_full(const CliSettings *s, CliClient **ret, int *ret_exit, char **ret_error,
                            TlsClientFailure *ret_failure);
CliClient *cli_client_free(CliClient *c);

const char *cli_client_server(const CliClient *c);
uint64_t cli_client_timeout_usec(const CliClient *c);

/* After a call failed with UNAVAILABLE: why the server closed TLS ("the
 * server refused our certificate: certificate expired"), malloc()ed, or NULL. */
char *cli_client_tls_failure(CliClient *c);

/* Our identity: the subject CN of our certificate, or NULL if unknown. */
const char *cli_client_identity(CliClient *c);

/* A unary call with the client's timeout. method: "/jobworker.v1.JobWorker/Start".
 * Returns 0 with *ret_response (free with protobuf_c_message_free_unpacked)
 * when the server answered OK; otherwise -EREMOTEIO with *ret_status set
 * (transport failures are statuses too: UNAVAILABLE, DEADLINE_EXCEEDED), or
 * -ENOMEM. */
int cli_client_unary(CliClient *c, const char *method, const ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *response_descriptor,
                     ProtobufCMessage **ret_response, CliCallStatus *ret_status);

/* The generic call under the two shapes below (cli/h2.h): any gRPC method,
 * any number of messages each way. timeout_usec: 0 for none. The call is
 * the caller's (h2_call_free() it before cli_client_free()). A
 * client-streaming call such as Input is: cli_client_call(c,
 * CLI_METHOD("Input"), 0, &k); h2_call_send() of each packed request (it
 * blocks while the server's flow control holds us back); h2_call_close_send()
 * at the end of input; h2_call_recv() of the one response; h2_call_status().
 * Cancelling it from the signal thread is h2_call_cancel(). 0 or -ENOMEM. */
int cli_client_call(CliClient *c, const char *method, uint64_t timeout_usec, H2Call **ret);

/* A server-streaming Output call, without deadline. */
typedef struct CliOutputCall CliOutputCall;

int cli_client_output_start(CliClient *c, const Jobworker__V1__OutputRequest *request, CliOutputCall **ret);
/* One received message: a chunk (message == NULL; data points into the
 * call's receive buffer and is valid until the next call of next()), or any
 * other message (the end status), unpacked: free it with
 * jobworker__v1__output_response__free_unpacked(). */
typedef struct CliOutputItem {
        Jobworker__V1__OutputResponse *message;
        Jobworker__V1__Stream stream;
        uint64_t offset;
        const uint8_t *data;
        size_t len;
} CliOutputItem;

/* Waits for the next message. 1 and *ret, or 0 at the end of the stream,
 * then cli_output_call_status() tells how it ended; -EBADMSG if the server
 * sent something that does not parse (the call is cancelled). Chunks are
 * parsed in place from one reused buffer: no allocation per message. */
int cli_output_call_next(CliOutputCall *o, CliOutputItem *ret);
/* After next() returned 0 or < 0: the final status (copied into *ret). */
int cli_output_call_status(CliOutputCall *o, CliCallStatus *ret);
/* Thread-safe; the pending next() returns 0 with status CANCELLED. */
void cli_output_call_cancel(CliOutputCall *o);
CliOutputCall *cli_output_call_free(CliOutputCall *o);

/* "NOT_FOUND" etc. */
const char *cli_grpc_status_name(grpc_status_code code);
