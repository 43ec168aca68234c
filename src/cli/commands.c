/* SPDX-License-Identifier: MIT */
/*
 * The jwctl commands (see commands.h). Each one is a short sequence of calls
 * (cli/client.h); what they share lives beside them: how a command ends
 * (context.c), streaming Output (stream.c) and Ctrl-C (signals.c).
 *
 * The one idea: a command resolves what the user named (a JOB prefix is
 * matched against List, so a unique prefix is enough), makes its calls and
 * returns an exit code with at most one line for main(); it never prints
 * the error itself.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/context.h"
#include "cli/fanout.h"
#include "cli/format.h"
#include "cli/jobref.h"
#include "cli/reconnect.h"
#include "cli/stream.h"
#include "shared/macro.h"
#include "shared/string-util.h"

static int resolve_job(Cli *cli, const char *arg, char **ret_id) {
        Jobworker__V1__ListRequest req = JOBWORKER__V1__LIST_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        _cleanup_free_ const char **ids = NULL;
        char *error = NULL;
        int r;

        if (cli_job_ref_is_full(arg)) {
                char *id = strdup(arg);
                if (!id)
                        return cli_oom(cli);
                for (char *c = id; *c; c++)
                        if (*c >= 'A' && *c <= 'F')
                                *c = (char) (*c - 'A' + 'a');
                *ret_id = id;
                return 0;
        }

        r = cli_client_unary(cli->client, CLI_METHOD("List"), &req.base, &jobworker__v1__list_response__descriptor, &resp, &st);
        if (r < 0)
                return cli_unary_failed(cli, r, &st, "list", NULL);
        Jobworker__V1__ListResponse *list = (Jobworker__V1__ListResponse *) resp;
        ids = calloc(list->n_jobs + 1, sizeof(char *));
        if (!ids) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return cli_oom(cli);
        }
        for (size_t i = 0; i < list->n_jobs; i++)
                ids[i] = list->jobs[i]->job_id;

        r = cli_job_ref_match(arg, ids, list->n_jobs, ret_id, &error);
        protobuf_c_message_free_unpacked(resp, NULL);
        if (r == -ENOENT) {
                const char *user = cli_client_identity(cli->client);
                return cli_set_message(cli, CLI_EXIT_FAILED, "job %s not found (no job of those user %s may see has an id starting with it)",
                                   arg, user ?: "(unknown)");
        }
        if (r == -EEXIST) {
                free(cli->message);
                cli->message = error;
                return CLI_EXIT_USAGE;
        }
        if (r < 0)
                return cli_oom(cli);
        return 0;
}

int cli_command_start_job(Cli *cli, char **ret_job_id) {
        const CliArgs *a = cli->args;
        Jobworker__V1__StartRequest req = JOBWORKER__V1__START_REQUEST__INIT;
        Jobworker__V1__Limits limits = JOBWORKER__V1__LIMITS__INIT;
        Jobworker__V1__IoLimit io[CLI_IO_MAX];
        Jobworker__V1__IoLimit *io_ptrs[CLI_IO_MAX];
        Jobworker__V1__Isolation isolate[3];
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r;

        req.n_argv = a->n_cmd;
        req.argv = (char **) a->cmd;
        req.n_env = a->n_env;
        req.env = (char **) a->env;
        req.cwd = (char *) (a->cwd ?: "");
        req.max_runtime_ms = a->max_runtime_ms;

        if (a->cpu_millis || a->memory_max || a->pids_max || a->n_io) {
                limits.cpu_millis = a->cpu_millis;
                limits.memory_max_bytes = a->memory_max;
                limits.pids_max = a->pids_max;
                for (size_t i = 0; i < a->n_io && i < CLI_IO_MAX; i++) {
                        jobworker__v1__io_limit__init(&io[i]);
                        io[i].device = a->io[i].device;
                        io[i].read_bps = a->io[i].read_bps;
                        io[i].write_bps = a->io[i].write_bps;
                        io_ptrs[i] = &io[i];
                }
                limits.n_io = MIN(a->n_io, (size_t) CLI_IO_MAX);
                limits.io = io_ptrs;
                req.limits = &limits;
        }
        if (a->isolate & CLI_ISOLATE_PID)
                isolate[req.n_isolate++] = JOBWORKER__V1__ISOLATION__ISOLATION_PID;
        if (a->isolate & CLI_ISOLATE_NET)
                isolate[req.n_isolate++] = JOBWORKER__V1__ISOLATION__ISOLATION_NET;
        if (a->isolate & CLI_ISOLATE_TMP)
                isolate[req.n_isolate++] = JOBWORKER__V1__ISOLATION__ISOLATION_TMP;
        req.isolate = isolate;

        r = cli_client_unary(cli->client, CLI_METHOD("Start"), &req.base, &jobworker__v1__start_response__descriptor, &resp, &st);
        if (r < 0)
                return cli_unary_failed(cli, r, &st, "start", NULL);
        Jobworker__V1__StartResponse *sr = (Jobworker__V1__StartResponse *) resp;
        if (!sr->job_id || !*sr->job_id) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return cli_set_message(cli, CLI_EXIT_FAILED, "the server started the job but sent no job id");
        }
        *ret_job_id = strdup(sr->job_id);
        protobuf_c_message_free_unpacked(resp, NULL);
        return *ret_job_id ? 0 : cli_oom(cli);
}

static int cmd_start(Cli *cli) {
        _cleanup_free_ char *id = NULL, *safe = NULL;
        int r = cli_command_start_job(cli, &id);

        if (r != 0)
                return r;
        safe = cli_terminal_safe(id);
        if (!safe)
                return cli_oom(cli);
        fprintf(cli->out, "%s\n", safe);
        return cli_flush_out(cli);
}

static int cmd_run(Cli *cli) {
        _cleanup_free_ char *id = NULL;
        int r;

        /* A Ctrl-C while Start is on its way must not leave the job running
         * unseen: count it, and stop the job once its id is known. */
        cli_signals_defer(&cli->signals);

        r = cli_command_start_job(cli, &id);
        if (r != 0)
                return cli_signals_count(&cli->signals) > 0 ? CLI_EXIT_INTERRUPTED : r;
        if (cli_signals_stop_job(&cli->signals, id) < 0)
                return cli_oom(cli);
        return cli_follow_to_end(cli, id, true, 0);
}

static int get_status(Cli *cli, const char *id, Jobworker__V1__StatusResponse **ret) {
        Jobworker__V1__StatusRequest req = JOBWORKER__V1__STATUS_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r;

        req.job_id = (char *) id;
        r = cli_client_unary(cli->client, CLI_METHOD("Status"), &req.base, &jobworker__v1__status_response__descriptor, &resp, &st);
        if (r < 0)
                return cli_unary_failed(cli, r, &st, "see", id);
        Jobworker__V1__StatusResponse *sr = (Jobworker__V1__StatusResponse *) resp;
        if (!sr->status) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return cli_set_message(cli, CLI_EXIT_FAILED, "the server sent no status for job %s", id);
        }
        *ret = sr;
        return 0;
}

static int cmd_status(Cli *cli) {
        _cleanup_free_ char *id = NULL;
        Jobworker__V1__StatusResponse *sr = NULL;
        int r;

        r = resolve_job(cli, cli->args->job, &id);
        if (r != 0)
                return r;
        r = get_status(cli, id, &sr);
        if (r != 0)
                return r;
        if (cli->args->json) {
                cli_format_status_json(cli->out, sr->status);
                fputc('\n', cli->out);
        } else
                cli_format_status_text(cli->out, sr->status);
        jobworker__v1__status_response__free_unpacked(sr, NULL);
        return cli_flush_out(cli);
}

static int cmd_list(Cli *cli) {
        Jobworker__V1__ListRequest req = JOBWORKER__V1__LIST_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r;

        req.running_only = cli->args->running;
        r = cli_client_unary(cli->client, CLI_METHOD("List"), &req.base, &jobworker__v1__list_response__descriptor, &resp, &st);
        if (r < 0)
                return cli_unary_failed(cli, r, &st, "list", NULL);
        Jobworker__V1__ListResponse *list = (Jobworker__V1__ListResponse *) resp;
        if (cli->args->json)
                cli_format_list_json(cli->out, list->jobs, list->n_jobs);
        else
                cli_format_list_text(cli->out, list->jobs, list->n_jobs);
        protobuf_c_message_free_unpacked(resp, NULL);
        return cli_flush_out(cli);
}

static int cmd_logs(Cli *cli) {
        _cleanup_free_ char *id = NULL;
        CliStreamResult res = {};
        int r;

        if (cli->args->follow)
                cli_signals_defer(&cli->signals);
        r = resolve_job(cli, cli->args->job, &id);
        if (r != 0)
                return r;
        if (cli->args->follow)
                r = cli_stream_follow(cli, id, cli->args->stream, cli->args->offset, true, &res);
        else
                r = cli_stream_output(cli, id, cli->args->stream, cli->args->offset, false, true, &res);
        if (r != 0)
                goto finish;
        if (cli_signals_count(&cli->signals) > 0) {
                r = CLI_EXIT_INTERRUPTED;
                goto finish;
        }
        if (res.status.code != GRPC_STATUS_OK) {
                r = cli_call_failed(cli, &res.status, "read the output of", id);
                if (r == CLI_EXIT_CONNECT && res.position > cli->args->offset)
                        r = cli_set_message(cli, CLI_EXIT_CONNECT, "%s (resume with 'jwctl logs --offset %" PRIu64 " ...')",
                                        cli->message ?: "connection lost", res.position);
                goto finish;
        }
        if (res.gap_bytes > 0 || (res.end && res.end->dropped_bytes > 0))
                cli_set_message(cli, 0, "warning: the server dropped %" PRIu64 " bytes of the output of job %s",
                            MAX(res.gap_bytes, res.end ? res.end->dropped_bytes : 0), id);
        r = CLI_EXIT_OK;
finish:
        cli_stream_result_done(&res);
        return r;
}

static int cmd_stop(Cli *cli) {
        Jobworker__V1__StopRequest req = JOBWORKER__V1__STOP_REQUEST__INIT;
        _cleanup_free_ char *id = NULL;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r;

        r = resolve_job(cli, cli->args->job, &id);
        if (r != 0)
                return r;
        req.job_id = id;
        req.use_grace = cli->args->grace_set;
        req.grace_ms = cli->args->grace_ms;
        r = cli_client_unary(cli->client, CLI_METHOD("Stop"), &req.base, &jobworker__v1__stop_response__descriptor, &resp, &st);
        if (r < 0)
                return cli_unary_failed(cli, r, &st, "stop", id);
        protobuf_c_message_free_unpacked(resp, NULL);
        return CLI_EXIT_OK;
}

static int cmd_wait(Cli *cli) {
        _cleanup_free_ char *id = NULL;
        Jobworker__V1__StatusResponse *sr = NULL;
        uint64_t seen;
        int r;

        cli_signals_defer(&cli->signals);
        r = resolve_job(cli, cli->args->job, &id);
        if (r != 0)
                return r;
        r = get_status(cli, id, &sr);
        if (r != 0)
                return r;
        if (sr->status->state != JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING) {
                r = cli_job_exit_code(cli, sr->status);
                jobworker__v1__status_response__free_unpacked(sr, NULL);
                return r;
        }
        /* Follow from the output already captured: only new bytes come over
         * the wire, and they are dropped. */
        seen = sr->status->stdout_bytes + sr->status->stderr_bytes;
        jobworker__v1__status_response__free_unpacked(sr, NULL);

        return cli_follow_to_end(cli, id, false, seen);
}

int cli_command_dispatch(Cli *cli) {
        static int (*const commands[])(Cli *) = {
                [CLI_COMMAND_START] = cmd_start, [CLI_COMMAND_RUN] = cmd_run,   [CLI_COMMAND_STATUS] = cmd_status,
                [CLI_COMMAND_LIST] = cmd_list,   [CLI_COMMAND_LOGS] = cmd_logs, [CLI_COMMAND_STOP] = cmd_stop,
                [CLI_COMMAND_WAIT] = cmd_wait,
        };
        CliCommand c = cli->args->command;

        if ((size_t) c < ELEMENTSOF(commands) && commands[c])
                return commands[c](cli);
        return cli_set_message(cli, CLI_EXIT_USAGE, "missing command (see 'jwctl --help')");
}

int cli_execute(const CliArgs *args, const CliSettings *settings, char **ret_message) {
        Cli cli = {
                .args = args,
                .settings = settings,
                .out_fd = STDOUT_FILENO,
                .err_fd = STDERR_FILENO,
                .out = stdout,
        };
        int exit_code, r;

        /* Several hosts, a saved run, HOST:ID: cli/fanout.c. */
        if (cli_args_fans_out(args))
                return cli_fanout_execute(args, settings, ret_message);

        r = cli_signals_start(&cli.signals);
        if (r < 0) {
                cli_signals_stop(&cli.signals);
                *ret_message = strdup("cannot set up signal handling");
                return CLI_EXIT_FAILED;
        }

        r = cli_client_connect(settings, &cli.client, &exit_code, &cli.message);
        if (r < 0) {
                if (!cli.message)
                        cli.message = strdup("cannot connect: out of memory");
                goto finish;
        }
        cli_signals_set_client(&cli.signals, cli.client);

        exit_code = cli_command_dispatch(&cli);
        /* wait, logs -f: a signal that came during the calls before the
         * stream still means "interrupted". */
        if (exit_code != CLI_EXIT_INTERRUPTED && cli_signals_count(&cli.signals) > 0 &&
            (args->command == CLI_COMMAND_WAIT || args->command == CLI_COMMAND_LOGS)) {
                exit_code = CLI_EXIT_INTERRUPTED;
                free(cli.message);
                cli.message = NULL;
        }

finish:
        /* The signal thread may use the client (Stop): end it first. */
        cli_signals_stop(&cli.signals);
        cli_client_free(cli.client);
        *ret_message = cli.message;
        return exit_code;
}
