/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Followers (logs -f, run, wait) that survive the loss of their connection:
 * the daemon restarted, crashed, or the network dropped. The stream is
 * resumed on a new connection from the byte offset already written, with a
 * bounded backoff between attempts and a bounded total outage.
 *
 * The pure parts (backoff schedule, which failures are worth a new
 * connection) are separate functions so they are unit-tested without a
 * server. Main thread only; the client is swapped under cli->signals so the
 * signal thread never uses a freed one.
 */

#include <grpc/status.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/context.h"
#include "cli/stream.h"
#include "tls/client.h"

/* The bound of one outage is the setting reconnect_usec (cli/settings.h,
 * default CLI_RECONNECT_DEFAULT_USEC of cli/args.h); 0 turns reconnecting off. */
/* The first delay and the largest one of the backoff schedule. */
#define CLI_BACKOFF_FIRST_USEC (100ULL * 1000)
#define CLI_BACKOFF_MAX_USEC (2ULL * 1000 * 1000)
/* Outages shorter than this say nothing on stderr. */
#define CLI_OUTAGE_QUIET_USEC (3ULL * 1000 * 1000)
/* A resumed stream that delivered nothing ends the outage only once it has
 * stayed up this long (a server that accepts and fails at once cannot make
 * a follower retry for ever). */
#define CLI_STREAM_STABLE_USEC (5ULL * 1000 * 1000)

typedef struct CliBackoff {
        unsigned attempt;        /* attempts made in this outage */
} CliBackoff;

/* The delay before the next attempt, and counts it: the base is
 * CLI_BACKOFF_FIRST_USEC doubled per attempt up to CLI_BACKOFF_MAX_USEC,
 * and the delay is drawn from [3/4 base, base] by random (any 32-bit value),
 * so that many followers of one restarted daemon do not come back in step. */
uint64_t cli_backoff_next(CliBackoff *b, uint32_t random);
void cli_backoff_reset(CliBackoff *b);

typedef enum CliFailure {
        CLI_FAILURE_FINAL,       /* report it: the server answered, or we are refused */
        CLI_FAILURE_TRANSPORT,   /* the connection went away: a new one may work */
} CliFailure;

/* How a stream that ended with code failed. tls_refused: the server closed
 * TLS with an alert about us (cli_client_tls_failure() said so): final.
 * Only UNAVAILABLE is a transport failure; CANCELLED is the user's Ctrl-C. */
CliFailure cli_failure_of_status(grpc_status_code code, bool tls_refused);
/* How a failed cli_client_connect_full() failed, by the stage it reports:
 * name lookup, TCP connect, and a handshake that broke off (reset, closed,
 * timed out, "access denied" for a server that is full) are transport
 * failures: a restarting daemon shows each of them. The server's
 * certificate not trusted, ours refused by the server, and failures
 * before the network (a file that does not load, memory) are final. */
CliFailure cli_failure_of_connect(TlsClientFailure failure);

/* One Output stream followed to its end across lost connections (see the
 * top). Like cli_stream_output() with follow: returns 0 when a stream ended
 * (result->status says how: never a transport failure while reconnecting
 * is on, unless a signal came) or a CLI exit code with cli->message set:
 * a write error, CLI_EXIT_CONNECT when the outage outlasted the bound or a
 * new connection was refused, CLI_EXIT_INTERRUPTED on a signal during an
 * outage. result->gap_bytes counts over every stream. */
int cli_stream_follow(Cli *cli, const char *job_id, CliStream stream, uint64_t offset, bool write_data,
                      CliStreamResult *result);

/* cli_client_unary() on cli->client, made again on a new connection after
 * a transport failure (UNAVAILABLE), within the same bound as a follower's
 * outage. Only for calls that are safe to repeat: a Start with a request id
 * (the server answers a repeat with the first one's job). Returns as
 * cli_client_unary(); when it gave up (the bound, a refused connection, a
 * signal) the last failure's status, its message saying why. */
int cli_unary_reconnecting(Cli *cli, const char *method, const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *response_descriptor, ProtobufCMessage **ret_response,
                           CliCallStatus *ret_status);
