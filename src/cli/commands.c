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
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/context.h"
#include "cli/fanout.h"
#include "cli/format.h"
#include "cli/input.h"
#include "cli/reconnect.h"
#include "cli/resolve.h"
#include "cli/signame.h"
#include "cli/stream.h"
#include "shared/job-name.h"
#include "cli/tty.h"
#include "shared/macro.h"
#include "shared/string-util.h"

/* A request id for a Start (a random UUID, version 4): a retry of that
 * Start with it gets the same job (fan-out and reconnects reuse it). */
static void new_request_id(char buf[static 37]) {
        uint8_t b[16] = {};

        /* Without randomness the id would collide with another Start's: then send none. */
        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b)) {
                buf[0] = 0;
                return;
        }
        b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80);
        snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Splits each "KEY=VALUE" of args (checked by the parser) into labels
 * pointing into buf. */
static void fill_labels(const CliArgs *a, Jobworker__V1__Label *labels, Jobworker__V1__Label **ptrs,
                        char buf[static JOB_LABELS_MAX * (JOB_LABEL_KEY_MAX + JOB_LABEL_VALUE_MAX + 2)]) {
        char *p = buf;

        for (size_t i = 0; i < a->n_labels && i < JOB_LABELS_MAX; i++) {
                const char *eq = strchr(a->labels[i], '=');
                size_t kl = eq ? (size_t) (eq - a->labels[i]) : strlen(a->labels[i]);

                jobworker__v1__label__init(&labels[i]);
                labels[i].key = p;
                memcpy(p, a->labels[i], kl);
                p += kl;
                *p++ = 0;
                labels[i].value = p;
                p = stpcpy(p, eq ? eq + 1 : "") + 1;
                ptrs[i] = &labels[i];
        }
}

/* stdin_open: the job's stdin is a pipe for Input (run only); tty: or a
 * terminal of that size (run -t). */
static int do_start(Cli *cli, bool stdin_open, const Jobworker__V1__Terminal *tty, char **ret_job_id) {
        const CliArgs *a = cli->args;
        Jobworker__V1__StartRequest req = JOBWORKER__V1__START_REQUEST__INIT;
        Jobworker__V1__Limits limits = JOBWORKER__V1__LIMITS__INIT;
        Jobworker__V1__IoLimit io[CLI_IO_MAX];
        Jobworker__V1__IoLimit *io_ptrs[CLI_IO_MAX];
        Jobworker__V1__Isolation isolate[3];
        Jobworker__V1__Label labels[JOB_LABELS_MAX], *label_ptrs[JOB_LABELS_MAX];
        char label_buf[JOB_LABELS_MAX * (JOB_LABEL_KEY_MAX + JOB_LABEL_VALUE_MAX + 2)], request_id[37];
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r;

        req.n_argv = a->n_cmd;
        req.argv = (char **) a->cmd;
        req.n_env = a->n_env;
        req.env = (char **) a->env;
        req.cwd = (char *) (a->cwd ?: "");
        req.max_runtime_ms = a->max_runtime_ms;
        req.name = (char *) (a->name ?: "");
        fill_labels(a, labels, label_ptrs, label_buf);
        req.n_labels = MIN(a->n_labels, (size_t) JOB_LABELS_MAX);
        req.labels = label_ptrs;
        new_request_id(request_id);
        req.request_id = request_id;
        req.stdin_open = stdin_open;
        req.tty = (Jobworker__V1__Terminal *) tty;

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

        /* Repeated on a new connection when this one is lost: the request
         * id makes the server answer a repeat with the first one's job. */
        r = req.request_id[0] ? cli_unary_reconnecting(cli, CLI_METHOD("Start"), &req.base,
                                                        &jobworker__v1__start_response__descriptor, &resp, &st)
                              : cli_client_unary(cli->client, CLI_METHOD("Start"), &req.base,
                                                 &jobworker__v1__start_response__descriptor, &resp, &st);
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

int cli_command_start_job(Cli *cli, char **ret_job_id) {
        return do_start(cli, false, NULL, ret_job_id); /* a fan-out forwards no stdin */
}

static int cmd_start(Cli *cli) {
        _cleanup_free_ char *id = NULL, *safe = NULL;
        int r = do_start(cli, false, NULL, &id); /* start never forwards our stdin */

        if (r != 0)
                return r;
        safe = cli_terminal_safe(id);
        if (!safe)
                return cli_oom(cli);
        fprintf(cli->out, "%s\n", safe);
        return cli_flush_out(cli);
}

/* run -t: the job's terminal as big as ours, TERM as ours. */
static int tty_request(Cli *cli, Jobworker__V1__Terminal *t) {
        unsigned rows, cols;

        if (cli->args->no_stdin)
                return cli_set_message(cli, CLI_EXIT_USAGE, "-n and -t cannot be used together (a terminal's input is its keys)");
        if (!isatty(STDIN_FILENO))
                return cli_set_message(cli, CLI_EXIT_USAGE, "-t needs a terminal on standard input, and it is not one "
                                       "(run without -t to pass a pipe or file on)");
        cli_tty_size(STDIN_FILENO, &rows, &cols);
        t->rows = rows;
        t->cols = cols;
        t->term = (char *) cli_tty_term();
        return 0;
}

/* A job whose stdin was cut short read EOF early, and its output may look
 * complete: say so (the exit code stays the job's, as documented). */
static void input_warn_cut(const CliInput *in, const char *id) {
        _cleanup_free_ char *why = NULL;
        uint64_t sent;

        if (in && cli_input_cut(in, &sent, &why))
                fprintf(stderr, "jwctl: warning: standard input to job %s was cut after at most %" PRIu64
                        " bytes (%s); the job read end-of-file there\n", id, sent, why ?: "out of memory");
}

static int cmd_run(Cli *cli) {
        Jobworker__V1__Terminal term = JOBWORKER__V1__TERMINAL__INIT;
        _cleanup_free_ char *id = NULL;
        bool tty = cli->args->tty;
        bool forward = tty || cli_input_wanted(cli->args, STDIN_FILENO);
        CliTty saved = CLI_TTY_NULL;
        CliInput *in = NULL;
        int r;

        if (tty && (r = tty_request(cli, &term)) != 0)
                return r;
        /* A Ctrl-C while Start is on its way must not leave the job running
         * unseen: count it, and stop the job once its id is known. */
        cli_signals_defer(&cli->signals);

        r = do_start(cli, forward, tty ? &term : NULL, &id);
        if (r != 0)
                return cli_signals_count(&cli->signals) > 0 ? CLI_EXIT_INTERRUPTED : r;
        if (cli_signals_stop_job(&cli->signals, id) < 0)
                return cli_oom(cli);
        /* With -t our keys go to the job as they are typed, Ctrl-C too: it
         * is the job's terminal that makes a signal of it (as ssh -t). */
        if (tty && cli_tty_raw(&saved, STDIN_FILENO) >= 0)
                cli_signals_set_tty(&cli->signals, &saved);
        /* Our stdin goes to the job beside the output we follow. */
        if (forward && cli_input_start(cli->client, id, STDIN_FILENO, tty, &in) < 0) {
                in = NULL;
                fprintf(stderr, "jwctl: warning: cannot forward standard input to job %s (out of memory)%s", id,
                        tty ? "\r\n" : "\n");
        }
        r = cli_follow_to_end(cli, id, true, 0);
        /* The job has ended (or we are going): what it did not read is moot. */
        if (in)
                cli_input_stop(in, NULL);
        cli_signals_set_tty(&cli->signals, NULL);
        cli_tty_restore(&saved);
        input_warn_cut(in, id);
        cli_input_free(in);
        return r;
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

        r = cli_resolve_job(cli, cli->args->job, &id);
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

        Jobworker__V1__Label labels[JOB_LABELS_MAX], *label_ptrs[JOB_LABELS_MAX];
        char label_buf[JOB_LABELS_MAX * (JOB_LABEL_KEY_MAX + JOB_LABEL_VALUE_MAX + 2)];
        Jobworker__V1__JobState states[5];
        const CliArgs *a = cli->args;

        req.running_only = a->running;
        for (int s = 1; s <= 5; s++)
                if (a->states & (1u << s))
                        states[req.n_states++] = (Jobworker__V1__JobState) s;
        req.states = states;
        req.owner = (char *) (a->owner ?: "");
        req.name = (char *) (a->name ?: "");
        fill_labels(a, labels, label_ptrs, label_buf);
        req.n_labels = MIN(a->n_labels, (size_t) JOB_LABELS_MAX);
        req.labels = label_ptrs;
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
        r = cli_resolve_job(cli, cli->args->job, &id);
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

        r = cli_resolve_job(cli, cli->args->job, &id);
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

/* Prints nothing on success, as kill(1). */
static int cmd_kill(Cli *cli) {
        Jobworker__V1__SignalRequest req = JOBWORKER__V1__SIGNAL_REQUEST__INIT;
        _cleanup_free_ char *id = NULL;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r;

        r = cli_resolve_job(cli, cli->args->job, &id);
        if (r != 0)
                return r;
        req.job_id = id;
        req.signal = cli->args->signal ?: SIGTERM;
        req.all = cli->args->signal_all;
        r = cli_client_unary(cli->client, CLI_METHOD("Signal"), &req.base, &jobworker__v1__signal_response__descriptor, &resp, &st);
        if (r < 0)
                return cli_unary_failed(cli, r, &st, "signal", id);
        protobuf_c_message_free_unpacked(resp, NULL);
        return CLI_EXIT_OK;
}

static int cmd_wait(Cli *cli) {
        _cleanup_free_ char *id = NULL;
        Jobworker__V1__StatusResponse *sr = NULL;
        uint64_t seen;
        int r;

        cli_signals_defer(&cli->signals);
        r = cli_resolve_job(cli, cli->args->job, &id);
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
                [CLI_COMMAND_WAIT] = cmd_wait,   [CLI_COMMAND_KILL] = cmd_kill,
        };
        CliCommand c = cli->args->command;

        if ((size_t) c < ELEMENTSOF(commands) && commands[c])
                return commands[c](cli);
        return cli_set_message(cli, CLI_EXIT_USAGE, "missing command (see 'jwctl --help')");
}

/* kill -l: every signal's number and name, one per line; kill -l SIGNAL:
 * the name of a number, the number of a name. Nothing asks the server
 * (Linux numbering is the server's too). */
int cli_list_signals(const CliArgs *args, char **ret_message) {
        char name[SIGNAL_NAME_MAX];
        int sig;

        if (args->signal_all || args->signal) {
                *ret_message = strdup("kill -l/--list takes no -s/--signal or --all");
                return CLI_EXIT_USAGE;
        }
        if (args->job) {
                if (cli_signal_parse(args->job, &sig) < 0) {
                        if (asprintf(ret_message, "unknown signal '%s': expected " CLI_SIGNAL_EXPECTED, args->job) < 0)
                                *ret_message = NULL;
                        return CLI_EXIT_USAGE;
                }
                if (args->job[0] < '0' || args->job[0] > '9')
                        printf("%d\n", sig);
                else if (signal_abbrev(sig, name))
                        printf("%s\n", name);
                else {
                        if (asprintf(ret_message, "signal %d has no name (the C library keeps it for itself)", sig) < 0)
                                *ret_message = NULL;
                        return CLI_EXIT_FAILED;
                }
        } else
                for (sig = 1; sig <= CLI_SIGNAL_MAX; sig++)
                        if (signal_abbrev(sig, name))
                                printf("%2d %s\n", sig, name);
        if (fflush(stdout) != 0 || ferror(stdout)) {
                if (asprintf(ret_message, "cannot write to standard output: %s", strerror(errno)) < 0)
                        *ret_message = NULL;
                return CLI_EXIT_FAILED;
        }
        return CLI_EXIT_OK;
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
