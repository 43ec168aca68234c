/* SPDX-License-Identifier: MIT */
/*
 * Followers that outlive their connection (see reconnect.h).
 *
 * The one idea: a follower's output is one sequence of bytes and the
 * position in it is ours (stream.c keeps it); a connection is only a way to
 * read the rest. When one fails for a transport reason, a new connection
 * (the daemon may be a new process at the same address) asks for the rest
 * from that position, so no byte is skipped or written twice. An outage is
 * one state — when it began, the backoff, what stderr was told — from the
 * first failure until a resumed stream proves itself by delivering a byte
 * or by staying up; its length is bounded by the reconnect setting.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cli/format.h"
#include "cli/reconnect.h"
#include "shared/macro.h"
#include "shared/string-util.h"
#include "shared/time-util.h"

/* Where an outage is, by what stderr has been told. */
typedef enum OutageState {
        OUTAGE_NONE,             /* connected; no outage */
        OUTAGE_QUIET,            /* lost, for less than CLI_OUTAGE_QUIET_USEC: nothing said */
        OUTAGE_TOLD,             /* "lost the connection" written */
        OUTAGE_BACK,             /* "reconnected" written; over once the stream proves itself */
} OutageState;

typedef struct Outage {
        OutageState state;
        uint64_t started;        /* CLOCK_MONOTONIC usec of the failure that began it */
        CliBackoff backoff;
        char *reason;            /* why the connection was lost; terminal-safe */
        char *last_error;        /* the last failed attempt, in the user's words */
} Outage;

uint64_t cli_backoff_next(CliBackoff *b, uint32_t random) {
        uint64_t base = CLI_BACKOFF_FIRST_USEC, span;

        for (unsigned i = 0; i < b->attempt && base < CLI_BACKOFF_MAX_USEC; i++)
                base *= 2;
        base = MIN(base, CLI_BACKOFF_MAX_USEC);
        if (b->attempt < UINT32_MAX)
                b->attempt++;
        span = base / 4;
        return base - span + (uint64_t) random % (span + 1);
}

void cli_backoff_reset(CliBackoff *b) {
        b->attempt = 0;
}

CliFailure cli_failure_of_status(grpc_status_code code, bool tls_refused) {
        /* The daemon going away mid-call, a reset connection, a GOAWAY and
         * "the server is shutting down" all end a call UNAVAILABLE. */
        return code == GRPC_STATUS_UNAVAILABLE && !tls_refused ? CLI_FAILURE_TRANSPORT : CLI_FAILURE_FINAL;
}

CliFailure cli_failure_of_connect(TlsClientFailure failure) {
        switch (failure) {
        case TLS_CLIENT_RESOLVE:
        case TLS_CLIENT_CONNECT_REFUSED: /* nobody listens yet: the daemon is starting */
        case TLS_CLIENT_CONNECT_TIMEOUT:
        case TLS_CLIENT_CONNECT_OTHER:
        case TLS_CLIENT_HANDSHAKE:       /* e.g. a daemon going down mid-handshake */
                return CLI_FAILURE_TRANSPORT;
        case TLS_CLIENT_SERVER_CERT:
        case TLS_CLIENT_REJECTED_BY_SERVER:
        case TLS_CLIENT_OK:
        default:
                /* A retry would get the same answer. */
                return CLI_FAILURE_FINAL;
        }
}

static uint32_t random_u32(void) {
        uint32_t v;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t) sizeof v)
                return v;
        return (uint32_t) (now_usec(CLOCK_MONOTONIC) ^ ((uint64_t) getpid() << 16));
}

/* One line on our stderr, "jwctl: " first, as main() writes the last one. */
_printf_(2, 3) static void say(Cli *cli, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL, *line = NULL;
        va_list ap;

        va_start(ap, fmt);
        m = strdup_vprintf(fmt, ap);
        va_end(ap);
        line = m ? strdup_printf("jwctl: %s\n", m) : NULL;
        if (!line)
                return;
        for (size_t n = strlen(line), done = 0; done < n;) {
                ssize_t k = write(cli->err_fd, line + done, n - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return; /* stderr is gone: nothing to tell anyone */
                done += (size_t) k;
        }
}

static void outage_end(Outage *o) {
        free(o->reason);
        free(o->last_error);
        *o = (Outage) {};
}

static int outage_begin(Outage *o, const CliCallStatus *st) {
        const char *why = st->message && *st->message ? st->message : cli_grpc_status_name(st->code);

        outage_end(o);
        o->reason = cli_terminal_safe(why);
        if (!o->reason)
                return -ENOMEM;
        o->state = OUTAGE_QUIET;
        o->started = now_usec(CLOCK_MONOTONIC);
        return 0;
}

/* Whether the stream that ended with result is worth a new connection. */
static bool worth_reconnecting(Cli *cli, const CliStreamResult *result) {
        _cleanup_free_ char *tls = NULL;

        if (cli->settings->reconnect_usec == 0 || result->end)
                return false;
        if (cli_signals_count(&cli->signals) > 0)
                return false; /* Ctrl-C: the user is done with it */
        if (result->status.code != GRPC_STATUS_UNAVAILABLE)
                return false;
        tls = cli_client_tls_failure(cli->client);
        return cli_failure_of_status(result->status.code, tls != NULL) == CLI_FAILURE_TRANSPORT;
}

/* One attempt. 1: connected (cli->client is the new client); 0: a transport
 * failure (o->last_error says it); or a CLI exit code > 1 with cli->message:
 * the new connection was refused for good. Each attempt is bounded by the
 * connect timeout of the settings. */
static int try_connect(Cli *cli, Outage *o) {
        CliClient *c = NULL, *old;
        TlsClientFailure failure = TLS_CLIENT_OK;
        char *error = NULL;
        int exit_code = CLI_EXIT_CONNECT, r;

        r = cli_client_connect_full(cli->settings, &c, &exit_code, &error, &failure);
        if (r < 0) {
                if (cli_failure_of_connect(failure) == CLI_FAILURE_FINAL) {
                        free(cli->message);
                        cli->message = error ?: strdup("cannot connect: out of memory");
                        return exit_code > 1 ? exit_code : CLI_EXIT_CONNECT;
                }
                free(o->last_error);
                o->last_error = error;
                return 0;
        }
        /* The signal thread may be sending Stop through the old client. */
        old = cli_signals_swap_client(&cli->signals, c);
        cli->client = c;
        cli_client_free(old);
        if (o->state == OUTAGE_TOLD) {
                say(cli, "reconnected to %s after %" PRIu64 " s", cli->settings->server,
                    (now_usec(CLOCK_MONOTONIC) - o->started + 500000) / 1000000);
                o->state = OUTAGE_BACK;
        }
        return 1;
}

/* Gets a new connection within the bound of the outage. 0, -EINTR on a
 * signal, or a CLI exit code with cli->message. */
static int reconnect(Cli *cli, Outage *o) {
        const CliSettings *set = cli->settings;

        for (;;) {
                uint64_t elapsed = now_usec(CLOCK_MONOTONIC) - o->started, delay;
                int r;

                if (o->state == OUTAGE_QUIET && elapsed >= CLI_OUTAGE_QUIET_USEC) {
                        say(cli, "lost the connection to %s (%s); reconnecting…", set->server, o->reason);
                        o->state = OUTAGE_TOLD;
                }
                if (elapsed >= set->reconnect_usec)
                        return cli_set_message(cli, CLI_EXIT_CONNECT,
                                               "gave up reconnecting to %s after %" PRIu64 " s (lost: %s; last attempt: %s)",
                                               set->server, elapsed / 1000000, o->reason,
                                               o->last_error ?: "none");
                delay = cli_backoff_next(&o->backoff, random_u32());
                if (o->state == OUTAGE_QUIET) /* wake in time to say it */
                        delay = MIN(delay, CLI_OUTAGE_QUIET_USEC - elapsed);
                delay = MIN(delay, set->reconnect_usec - elapsed);
                r = cli_signals_wait(&cli->signals, delay);
                if (r > 0)
                        return -EINTR;
                if (r < 0)
                        return cli_set_message(cli, CLI_EXIT_FAILED, "cannot wait for a signal: %s", strerror(-r));
                r = try_connect(cli, o);
                if (r == 1)
                        return 0;
                if (r > 1)
                        return r;
        }
}

/* After giving up: where a user resumes by hand (logs, run). */
static int gave_up(Cli *cli, int code, const char *job_id, CliStream stream, uint64_t position, bool write_data) {
        const char *opt = stream == CLI_STREAM_STDOUT ? "--stdout " : stream == CLI_STREAM_STDERR ? "--stderr " : "";

        if (code != CLI_EXIT_CONNECT)
                return code;
        if (!write_data)
                return cli_set_message(cli, code, "%s; job %s may still be running", cli->message ?: "connection lost", job_id);
        return cli_set_message(cli, code, "%s; job %s may still be running (resume with 'jwctl logs -f %s--offset %" PRIu64 " %s')",
                               cli->message ?: "connection lost", job_id, opt, position, job_id);
}

int cli_stream_follow(Cli *cli, const char *job_id, CliStream stream, uint64_t offset, bool write_data,
                      CliStreamResult *result) {
        Outage o = {};
        uint64_t gaps = 0;
        int r;

        for (;;) {
                uint64_t began = now_usec(CLOCK_MONOTONIC);

                r = cli_stream_output(cli, job_id, stream, offset, true, write_data, result);
                gaps += result->gap_bytes;
                if (r != 0 || !worth_reconnecting(cli, result))
                        break;
                /* The resumed stream proved itself: that outage is over. */
                if (o.state != OUTAGE_NONE && (result->position > offset || now_usec(CLOCK_MONOTONIC) - began >= CLI_STREAM_STABLE_USEC))
                        outage_end(&o);
                if (o.state == OUTAGE_NONE && outage_begin(&o, &result->status) < 0) {
                        r = cli_oom(cli);
                        break;
                }
                offset = result->position;
                r = reconnect(cli, &o);
                if (r == -EINTR) {
                        r = 0; /* the caller sees the signal and the failed stream */
                        break;
                }
                if (r != 0) {
                        r = gave_up(cli, r, job_id, stream, offset, write_data);
                        break;
                }
                cli_stream_result_done(result);
                *result = (CliStreamResult) {};
        }
        outage_end(&o);
        result->gap_bytes = gaps;
        return r;
}

int cli_unary_reconnecting(Cli *cli, const char *method, const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *response_descriptor, ProtobufCMessage **ret_response,
                           CliCallStatus *ret_status) {
        Outage o = {};
        int r, k;

        for (;;) {
                _cleanup_free_ char *tls = NULL;

                r = cli_client_unary(cli->client, method, request, response_descriptor, ret_response, ret_status);
                if (r != -EREMOTEIO || ret_status->code != GRPC_STATUS_UNAVAILABLE || cli->settings->reconnect_usec == 0 ||
                    cli_signals_count(&cli->signals) > 0)
                        break;
                tls = cli_client_tls_failure(cli->client);
                if (cli_failure_of_status(ret_status->code, tls != NULL) != CLI_FAILURE_TRANSPORT)
                        break;
                if (o.state == OUTAGE_NONE && outage_begin(&o, ret_status) < 0)
                        break;
                k = reconnect(cli, &o);
                if (k != 0) {
                        /* Gave up: the call's failure, with why. */
                        if (k > 0 && cli->message) {
                                free(ret_status->message);
                                ret_status->message = TAKE_PTR(cli->message);
                        }
                        break;
                }
                cli_call_status_done(ret_status);
        }
        outage_end(&o);
        return r;
}
