/* SPDX-License-Identifier: MIT */
/*
 * How a jwctl command ends (see context.h): one line and an exit code.
 *
 * The one idea: a failed call is told in the user's words, by what was
 * being done and the gRPC status, never as a bare status name when a
 * better sentence exists; the exit code says what kind of failure it was
 * (the server refused, or it could not be reached).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/format.h"
#include "shared/parse-util.h"
#include "shared/string-util.h"

int cli_set_message(Cli *cli, int code, const char *fmt, ...) {
        va_list ap;
        char *m;

        va_start(ap, fmt);
        m = strdup_vprintf(fmt, ap);
        va_end(ap);
        free(cli->message);
        cli->message = m;
        return code;
}

int cli_oom(Cli *cli) {
        return cli_set_message(cli, CLI_EXIT_FAILED, "out of memory");
}

int cli_call_failed(Cli *cli, const CliCallStatus *st, const char *action, const char *job) {
        _cleanup_free_ char *details = cli_terminal_safe(st->message && *st->message ? st->message : NULL);
        const char *server = cli_client_server(cli->client);
        const char *user = cli_client_identity(cli->client);
        _cleanup_free_ char *tls = NULL;
        char what[200];

        if (job)
                snprintf(what, sizeof what, "%s job %s", action, job);
        else
                snprintf(what, sizeof what, "%s jobs", action);

        switch (st->code) {
        case GRPC_STATUS_UNAVAILABLE:
                tls = cli_client_tls_failure(cli->client);
                if (tls)
                        return cli_set_message(cli, CLI_EXIT_CONNECT, "%s", tls);
                return cli_set_message(cli, CLI_EXIT_CONNECT, "lost the connection to %s%s%s", server,
                                   details && *details ? ": " : "", details ?: "");
        case GRPC_STATUS_DEADLINE_EXCEEDED: {
                uint64_t t = cli_client_timeout_usec(cli->client);
                return cli_set_message(cli, CLI_EXIT_CONNECT,
                                   "%s did not answer within %" PRIu64 ".%03" PRIu64 " s (see --timeout)", server,
                                   t / 1000000, (t / 1000) % 1000);
        }
        case GRPC_STATUS_PERMISSION_DENIED:
                /* Start: the reason may be a policy bound ("alice may use at most 1 CPU (asked 2)"). */
                if (!job && details && *details)
                        return cli_set_message(cli, CLI_EXIT_FAILED, "permission denied for user %s to %s: %s",
                                           user ?: "(unknown)", what, details);
                return cli_set_message(cli, CLI_EXIT_FAILED, "permission denied for user %s to %s", user ?: "(unknown)", what);
        case GRPC_STATUS_UNAUTHENTICATED:
                return cli_set_message(cli, CLI_EXIT_FAILED, "the server did not accept user %s%s%s", user ?: "(unknown)",
                                   details && *details ? ": " : "", details ?: "");
        case GRPC_STATUS_NOT_FOUND:
                return cli_set_message(cli, CLI_EXIT_FAILED, "job %s not found", job ?: "");
        case GRPC_STATUS_FAILED_PRECONDITION:
                if (job)
                        return cli_set_message(cli, CLI_EXIT_FAILED, "job %s is not running", job);
                /* Start: a limit or isolation this host cannot provide. */
                if (details && *details)
                        return cli_set_message(cli, CLI_EXIT_FAILED, "cannot %s: %s", what, details);
                break;
        case GRPC_STATUS_INVALID_ARGUMENT:
        case GRPC_STATUS_OUT_OF_RANGE:
                if (details && *details)
                        return cli_set_message(cli, CLI_EXIT_FAILED, "%s", details);
                break;
        case GRPC_STATUS_UNIMPLEMENTED:
                return cli_set_message(cli, CLI_EXIT_FAILED, "the server at %s does not support this request (is it jobworkerd?)",
                                   server);
        case GRPC_STATUS_RESOURCE_EXHAUSTED:
                return cli_set_message(cli, CLI_EXIT_FAILED, "the server is out of resources, cannot %s%s%s", what,
                                   details && *details ? ": " : "", details ?: "");
        case GRPC_STATUS_CANCELLED:
                return cli_set_message(cli, CLI_EXIT_INTERRUPTED, "interrupted");
        default:
                break;
        }
        return cli_set_message(cli, CLI_EXIT_FAILED, "cannot %s: %s%s%s", what, cli_grpc_status_name(st->code),
                           details && *details ? ": " : "", details ?: "");
}

int cli_unary_failed(Cli *cli, int r, CliCallStatus *st, const char *action, const char *job) {
        r = r == -ENOMEM ? cli_oom(cli) : cli_call_failed(cli, st, action, job);
        cli_call_status_done(st);
        return r;
}

int cli_write_failed(Cli *cli, int r, const char *what) {
        if (r == -EPIPE)
                return CLI_EXIT_BROKEN_PIPE; /* quietly, like a tool killed by SIGPIPE */
        return cli_set_message(cli, CLI_EXIT_FAILED, "cannot write to %s: %s", what, strerror(-r));
}

int cli_flush_out(Cli *cli) {
        if (fflush(cli->out) != 0 || ferror(cli->out))
                return cli_write_failed(cli, -(errno ?: EIO), "standard output");
        return CLI_EXIT_OK;
}

int cli_job_exit_code(Cli *cli, const Jobworker__V1__JobStatus *st) {
        switch (st->state) {
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_EXITED:
                return st->exit_code & 0xff;
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_KILLED:
                if (st->timed_out) {
                        char d[PARSE_DURATION_STRING_MAX], sig[16];
                        return cli_set_message(cli, 128 + (st->signal & 0x7f), "job %s timed out after %s (its "
                                               "max runtime) and was killed by %s", st->job_id,
                                               format_duration(st->max_runtime_ms * 1000, d),
                                               cli_signal_name(st->signal, sig));
                }
                return 128 + (st->signal & 0x7f);
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_LOST:
                return cli_set_message(cli, CLI_EXIT_FAILED, "job %s was lost: the server stopped while it ran", st->job_id);
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_ENDED:
                return cli_set_message(cli, CLI_EXIT_FAILED,
                                       "job %s ended while the server was restarted; its exit code is not known%s",
                                       st->job_id, st->timed_out ? " (it had timed out)" : "");
        default:
                return cli_set_message(cli, CLI_EXIT_FAILED, "job %s has not ended", st->job_id);
        }
}
