/* SPDX-License-Identifier: MIT */
/*
 * The jwctl commands. Each one is a short sequence of calls (cli/client.h);
 * the common parts are resolving a JOB prefix, streaming Output to our
 * stdout/stderr byte for byte, mapping a failed call to a sentence and an
 * exit code, and Ctrl-C.
 *
 * Ctrl-C: main() blocks SIGINT/SIGTERM/SIGHUP in all threads; a signal
 * thread waits for them (signalfd) next to an eventfd that tells it to end.
 * With nothing registered it dies by the signal (what the user expects of a
 * short call). While a stream runs it cancels it; during `run` the first
 * signal sends Stop for the job instead (the stream then ends with the job,
 * so its last output still arrives), a second one cancels the stream.
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/jobref.h"
#include "shared/macro.h"
#include "shared/string-util.h"

#define METHOD(name) "/jobworker.v1.JobWorker/" name

typedef struct Signals {
        pthread_mutex_t lock;
        pthread_t thread;
        bool started;
        int signal_fd;
        int quit_fd;             /* eventfd: end the thread */
        CliClient *client;
        CliOutputCall *call;     /* cancelled on a signal */
        char *stop_job;          /* run: job to stop on the first signal */
        bool defer;              /* run, before the job id is known: only count */
        unsigned count;          /* signals received */
        bool stop_failed;
        char *stop_error;
} Signals;

typedef struct Cli {
        const CliArgs *args;
        const CliSettings *settings;
        CliClient *client;
        int out_fd;
        int err_fd;
        FILE *out;
        Signals signals;
        char *message;
} Cli;

_printf_(3, 4) static int set_message(Cli *cli, int code, const char *fmt, ...) {
        va_list ap;
        char *m;

        va_start(ap, fmt);
        m = strdup_vprintf(fmt, ap);
        va_end(ap);
        free(cli->message);
        cli->message = m;
        return code;
}

static char *mfree_str(char *p) {
        free(p);
        return NULL;
}

static int oom(Cli *cli) {
        return set_message(cli, CLI_EXIT_FAILED, "out of memory");
}

/* ---- signals ---------------------------------------------------------- */

static void die_by_signal(int sig) {
        sigset_t s;

        signal(sig, SIG_DFL);
        sigemptyset(&s);
        sigaddset(&s, sig);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
        /* SIGHUP/SIGINT/SIGTERM terminate the process: no return. */
        raise(sig);
}

static void send_stop(Signals *s, const char *job_id) {
        Jobworker__V1__StopRequest req = JOBWORKER__V1__STOP_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r;

        req.job_id = (char *) job_id;
        r = cli_client_unary(s->client, METHOD("Stop"), &req.base, &jobworker__v1__stop_response__descriptor, &resp, &st);
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        /* FAILED_PRECONDITION: the job ended by itself meanwhile; the stream ends too. */
        if (r < 0 && st.code != GRPC_STATUS_FAILED_PRECONDITION) {
                pthread_mutex_lock(&s->lock);
                s->stop_failed = true;
                free(s->stop_error);
                s->stop_error = NULL;
                if (asprintf(&s->stop_error, "could not stop job %s: %s", job_id,
                             st.message && *st.message ? st.message : cli_grpc_status_name(st.code)) < 0)
                        s->stop_error = NULL;
                if (s->call)
                        cli_output_call_cancel(s->call);
                pthread_mutex_unlock(&s->lock);
        }
        cli_call_status_done(&st);
}

static void *signal_thread(void *userdata) {
        Signals *s = userdata;

        for (;;) {
                struct pollfd p[2] = { { .fd = s->signal_fd, .events = POLLIN }, { .fd = s->quit_fd, .events = POLLIN } };
                struct signalfd_siginfo si;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return NULL;
                }
                if (p[1].revents)
                        return NULL;
                if (read(s->signal_fd, &si, sizeof si) != (ssize_t) sizeof si)
                        continue;

                pthread_mutex_lock(&s->lock);
                s->count++;
                if (!s->call && !s->stop_job && !s->defer) {
                        pthread_mutex_unlock(&s->lock);
                        die_by_signal((int) si.ssi_signo);
                }
                if (s->stop_job && s->count == 1) {
                        _cleanup_free_ char *id = strdup(s->stop_job);
                        pthread_mutex_unlock(&s->lock);
                        if (id)
                                send_stop(s, id);
                        continue;
                }
                if (s->call)
                        cli_output_call_cancel(s->call);
                pthread_mutex_unlock(&s->lock);
        }
}

static int signals_start(Signals *s) {
        sigset_t set;

        pthread_mutex_init(&s->lock, NULL);
        s->signal_fd = s->quit_fd = -1;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        s->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (s->signal_fd < 0)
                return negative_errno();
        s->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->quit_fd < 0)
                return negative_errno();
        int r = pthread_create(&s->thread, NULL, signal_thread, s);
        if (r != 0)
                return -r;
        s->started = true;
        return 0;
}

static void signals_stop(Signals *s) {
        if (s->started) {
                uint64_t one = 1;
                if (write(s->quit_fd, &one, sizeof one) < 0) {
                        /* An eventfd write only fails on overflow; cannot happen with one write. */
                }
                pthread_join(s->thread, NULL);
                s->started = false;
        }
        s->signal_fd = safe_close(s->signal_fd);
        s->quit_fd = safe_close(s->quit_fd);
        free(s->stop_job);
        s->stop_job = NULL;
        free(s->stop_error);
        s->stop_error = NULL;
        pthread_mutex_destroy(&s->lock);
}

/* From now on signals are only counted (and cancel the stream once there is
 * one) instead of killing the process: wait, logs -f, and run before the job
 * id is known. */
static void signals_defer(Signals *s) {
        pthread_mutex_lock(&s->lock);
        s->defer = true;
        pthread_mutex_unlock(&s->lock);
}

static void signals_set_call(Signals *s, CliOutputCall *call) {
        pthread_mutex_lock(&s->lock);
        s->call = call;
        /* A signal that came before the stream existed still counts. */
        if (call && s->count > 0 && (!s->stop_job || s->stop_failed))
                cli_output_call_cancel(call);
        pthread_mutex_unlock(&s->lock);
}

static unsigned signals_count(Signals *s) {
        pthread_mutex_lock(&s->lock);
        unsigned n = s->count;
        pthread_mutex_unlock(&s->lock);
        return n;
}

/* ---- errors ----------------------------------------------------------- */

/* What was being done, for messages: "stop job X", "list jobs". */
static int call_failed(Cli *cli, const CliCallStatus *st, const char *action, const char *job) {
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
                        return set_message(cli, CLI_EXIT_CONNECT, "%s", tls);
                return set_message(cli, CLI_EXIT_CONNECT, "lost the connection to %s%s%s", server,
                                   details && *details ? ": " : "", details ?: "");
        case GRPC_STATUS_DEADLINE_EXCEEDED: {
                uint64_t t = cli_client_timeout_usec(cli->client);
                return set_message(cli, CLI_EXIT_CONNECT,
                                   "%s did not answer within %" PRIu64 ".%03" PRIu64 " s (see --timeout)", server,
                                   t / 1000000, (t / 1000) % 1000);
        }
        case GRPC_STATUS_PERMISSION_DENIED:
                /* Start: the reason may be a policy bound ("alice may use at most 1 CPU (asked 2)"). */
                if (!job && details && *details)
                        return set_message(cli, CLI_EXIT_FAILED, "permission denied for user %s to %s: %s",
                                           user ?: "(unknown)", what, details);
                return set_message(cli, CLI_EXIT_FAILED, "permission denied for user %s to %s", user ?: "(unknown)", what);
        case GRPC_STATUS_UNAUTHENTICATED:
                return set_message(cli, CLI_EXIT_FAILED, "the server did not accept user %s%s%s", user ?: "(unknown)",
                                   details && *details ? ": " : "", details ?: "");
        case GRPC_STATUS_NOT_FOUND:
                return set_message(cli, CLI_EXIT_FAILED, "job %s not found", job ?: "");
        case GRPC_STATUS_FAILED_PRECONDITION:
                if (job)
                        return set_message(cli, CLI_EXIT_FAILED, "job %s is not running", job);
                /* Start: a limit or isolation this host cannot provide. */
                if (details && *details)
                        return set_message(cli, CLI_EXIT_FAILED, "cannot %s: %s", what, details);
                break;
        case GRPC_STATUS_INVALID_ARGUMENT:
        case GRPC_STATUS_OUT_OF_RANGE:
                if (details && *details)
                        return set_message(cli, CLI_EXIT_FAILED, "%s", details);
                break;
        case GRPC_STATUS_UNIMPLEMENTED:
                return set_message(cli, CLI_EXIT_FAILED, "the server at %s does not support this request (is it jobworkerd?)",
                                   server);
        case GRPC_STATUS_RESOURCE_EXHAUSTED:
                return set_message(cli, CLI_EXIT_FAILED, "the server is out of resources, cannot %s%s%s", what,
                                   details && *details ? ": " : "", details ?: "");
        case GRPC_STATUS_CANCELLED:
                return set_message(cli, CLI_EXIT_INTERRUPTED, "interrupted");
        default:
                break;
        }
        return set_message(cli, CLI_EXIT_FAILED, "cannot %s: %s%s%s", what, cli_grpc_status_name(st->code),
                           details && *details ? ": " : "", details ?: "");
}

/* ---- output ----------------------------------------------------------- */

/* Writes all of buf to fd; copes with a non-blocking fd we inherited. */
static int write_all(int fd, const uint8_t *buf, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, buf, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = fd, .events = POLLOUT };
                                (void) poll(&p, 1, -1);
                                continue;
                        }
                        return -errno;
                }
                buf += k;
                n -= (size_t) k;
        }
        return 0;
}

static int write_failed(Cli *cli, int r, const char *what) {
        if (r == -EPIPE)
                return CLI_EXIT_BROKEN_PIPE; /* quietly, like a tool killed by SIGPIPE */
        return set_message(cli, CLI_EXIT_FAILED, "cannot write to %s: %s", what, strerror(-r));
}

static int flush_out(Cli *cli) {
        if (fflush(cli->out) != 0 || ferror(cli->out))
                return write_failed(cli, -(errno ?: EIO), "standard output");
        return CLI_EXIT_OK;
}

/* The exit code of a job that ended (as a shell reports it). */
static int job_exit_code(Cli *cli, const Jobworker__V1__JobStatus *st) {
        switch (st->state) {
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_EXITED:
                return st->exit_code & 0xff;
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_KILLED:
                return 128 + (st->signal & 0x7f);
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_LOST:
                return set_message(cli, CLI_EXIT_FAILED, "job %s was lost: the server stopped while it ran", st->job_id);
        default:
                return set_message(cli, CLI_EXIT_FAILED, "job %s has not ended", st->job_id);
        }
}

static Jobworker__V1__Stream to_proto_stream(CliStream s) {
        switch (s) {
        case CLI_STREAM_STDOUT:
                return JOBWORKER__V1__STREAM__STREAM_STDOUT;
        case CLI_STREAM_STDERR:
                return JOBWORKER__V1__STREAM__STREAM_STDERR;
        default:
                return JOBWORKER__V1__STREAM__STREAM_BOTH;
        }
}

typedef struct StreamResult {
        Jobworker__V1__JobStatus *end;   /* owned by end_message */
        Jobworker__V1__OutputResponse *end_message;
        uint64_t position;                /* offset after the last byte written */
        uint64_t gap_bytes;               /* bytes the server skipped */
        CliCallStatus status;
} StreamResult;

static void stream_result_done(StreamResult *r) {
        if (r->end_message)
                jobworker__v1__output_response__free_unpacked(r->end_message, NULL);
        r->end_message = NULL;
        r->end = NULL;
        cli_call_status_done(&r->status);
}

/* Streams the Output of job_id from offset; writes the data to our stdout /
 * stderr by stream if write_data. Returns 0 when the call ended (see
 * result->status) or a CLI exit code > 0 (write error). */
static int stream_output(Cli *cli, const char *job_id, CliStream stream, uint64_t offset, bool follow, bool write_data,
                         StreamResult *result) {
        Jobworker__V1__OutputRequest req = JOBWORKER__V1__OUTPUT_REQUEST__INIT;
        CliOutputCall *call = NULL;
        int r, ret = 0;

        req.job_id = (char *) job_id;
        req.stream = to_proto_stream(stream);
        req.offset = offset;
        req.follow = follow;
        result->position = offset;

        r = cli_client_output_start(cli->client, &req, &call);
        if (r < 0)
                return oom(cli);
        signals_set_call(&cli->signals, call);

        for (;;) {
                CliOutputItem item;

                r = cli_output_call_next(call, &item);
                if (r <= 0)
                        break;
                Jobworker__V1__OutputResponse *m = item.message;
                if (m && m->kind_case == JOBWORKER__V1__OUTPUT_RESPONSE__KIND_END) {
                        if (result->end_message)
                                jobworker__v1__output_response__free_unpacked(result->end_message, NULL);
                        result->end_message = m;
                        result->end = m->end;
                        continue;
                }
                if (m && (m->kind_case != JOBWORKER__V1__OUTPUT_RESPONSE__KIND_CHUNK || !m->chunk)) {
                        jobworker__v1__output_response__free_unpacked(m, NULL);
                        continue;
                }

                const uint8_t *data = item.data;
                size_t len = item.len;
                uint64_t at = item.offset;

                if (at < result->position) {
                        /* Overlap with what we already wrote: skip it. */
                        uint64_t skip = MIN((uint64_t) len, result->position - at);
                        data += skip;
                        len -= (size_t) skip;
                        at += skip;
                } else if (at > result->position) {
                        result->gap_bytes += at - result->position;
                }
                if (len > 0 && write_data) {
                        bool err = item.stream == JOBWORKER__V1__STREAM__STREAM_STDERR;
                        r = write_all(err ? cli->err_fd : cli->out_fd, data, len);
                        if (r < 0) {
                                if (m)
                                        jobworker__v1__output_response__free_unpacked(m, NULL);
                                ret = write_failed(cli, r, err ? "standard error" : "standard output");
                                cli_output_call_cancel(call);
                                break;
                        }
                }
                if (len > 0)
                        result->position = at + len;
                if (m)
                        jobworker__v1__output_response__free_unpacked(m, NULL);
        }

        pthread_mutex_lock(&cli->signals.lock);
        cli->signals.call = NULL;
        pthread_mutex_unlock(&cli->signals.lock);

        if (cli_output_call_status(call, &result->status) < 0 && ret == 0)
                ret = oom(cli);
        if (r == -EBADMSG && ret == 0)
                ret = set_message(cli, CLI_EXIT_FAILED, "the server sent a message that does not parse");
        cli_output_call_free(call);
        return ret;
}

/* ---- job references ---------------------------------------------------- */

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
                        return oom(cli);
                for (char *c = id; *c; c++)
                        if (*c >= 'A' && *c <= 'F')
                                *c = (char) (*c - 'A' + 'a');
                *ret_id = id;
                return 0;
        }

        r = cli_client_unary(cli->client, METHOD("List"), &req.base, &jobworker__v1__list_response__descriptor, &resp, &st);
        if (r < 0) {
                r = r == -ENOMEM ? oom(cli) : call_failed(cli, &st, "list", NULL);
                cli_call_status_done(&st);
                return r;
        }
        Jobworker__V1__ListResponse *list = (Jobworker__V1__ListResponse *) resp;
        ids = calloc(list->n_jobs + 1, sizeof(char *));
        if (!ids) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return oom(cli);
        }
        for (size_t i = 0; i < list->n_jobs; i++)
                ids[i] = list->jobs[i]->job_id;

        r = cli_job_ref_match(arg, ids, list->n_jobs, ret_id, &error);
        protobuf_c_message_free_unpacked(resp, NULL);
        if (r == -ENOENT) {
                const char *user = cli_client_identity(cli->client);
                return set_message(cli, CLI_EXIT_FAILED, "job %s not found (no job of those user %s may see has an id starting with it)",
                                   arg, user ?: "(unknown)");
        }
        if (r == -EEXIST) {
                free(cli->message);
                cli->message = error;
                return CLI_EXIT_USAGE;
        }
        if (r < 0)
                return oom(cli);
        return 0;
}

/* ---- commands ---------------------------------------------------------- */

static int do_start(Cli *cli, char **ret_job_id) {
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

        r = cli_client_unary(cli->client, METHOD("Start"), &req.base, &jobworker__v1__start_response__descriptor, &resp, &st);
        if (r < 0) {
                r = r == -ENOMEM ? oom(cli) : call_failed(cli, &st, "start", NULL);
                cli_call_status_done(&st);
                return r;
        }
        Jobworker__V1__StartResponse *sr = (Jobworker__V1__StartResponse *) resp;
        if (!sr->job_id || !*sr->job_id) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return set_message(cli, CLI_EXIT_FAILED, "the server started the job but sent no job id");
        }
        *ret_job_id = strdup(sr->job_id);
        protobuf_c_message_free_unpacked(resp, NULL);
        return *ret_job_id ? 0 : oom(cli);
}

static int cmd_start(Cli *cli) {
        _cleanup_free_ char *id = NULL, *safe = NULL;
        int r = do_start(cli, &id);

        if (r != 0)
                return r;
        safe = cli_terminal_safe(id);
        if (!safe)
                return oom(cli);
        fprintf(cli->out, "%s\n", safe);
        return flush_out(cli);
}

/* Follows a job's output until it ends and returns its exit code (run). */
static int follow_to_end(Cli *cli, const char *id, bool write_data, uint64_t offset) {
        StreamResult res = {};
        int r;

        r = stream_output(cli, id, CLI_STREAM_BOTH, offset, true, write_data, &res);
        if (r != 0)
                goto finish;

        if (signals_count(&cli->signals) > 0) {
                pthread_mutex_lock(&cli->signals.lock);
                if (cli->signals.stop_failed && cli->signals.stop_error)
                        r = set_message(cli, CLI_EXIT_INTERRUPTED, "%s", cli->signals.stop_error);
                else
                        r = CLI_EXIT_INTERRUPTED;
                pthread_mutex_unlock(&cli->signals.lock);
                goto finish;
        }
        if (!write_data && offset > 0 &&
            (res.status.code == GRPC_STATUS_OUT_OF_RANGE || res.status.code == GRPC_STATUS_INVALID_ARGUMENT)) {
                /* wait: the server did not take the offset of the output
                 * seen so far (e.g. truncated output): follow from the start. */
                stream_result_done(&res);
                return follow_to_end(cli, id, write_data, 0);
        }
        if (res.status.code != GRPC_STATUS_OK) {
                r = call_failed(cli, &res.status, write_data ? "read the output of" : "wait for", id);
                if (r == CLI_EXIT_CONNECT && write_data)
                        r = set_message(cli, CLI_EXIT_CONNECT,
                                        "%s; job %s may still be running (resume with 'jwctl logs -f --offset %" PRIu64 " %s')",
                                        cli->message ?: "connection lost", id, res.position, id);
                goto finish;
        }
        if (!res.end) {
                r = set_message(cli, CLI_EXIT_FAILED, "the server ended the output of job %s without its status", id);
                goto finish;
        }
        r = job_exit_code(cli, res.end);
        if (r == 0 && write_data && (res.gap_bytes > 0 || res.end->dropped_bytes > 0))
                set_message(cli, 0, "warning: the server dropped %" PRIu64 " bytes of the output of job %s",
                            MAX(res.gap_bytes, res.end->dropped_bytes), id);
finish:
        stream_result_done(&res);
        return r;
}

static int cmd_run(Cli *cli) {
        _cleanup_free_ char *id = NULL;
        int r;

        /* A Ctrl-C while Start is on its way must not leave the job running
         * unseen: count it, and stop the job once its id is known. */
        signals_defer(&cli->signals);

        r = do_start(cli, &id);
        if (r != 0)
                return signals_count(&cli->signals) > 0 ? CLI_EXIT_INTERRUPTED : r;
        pthread_mutex_lock(&cli->signals.lock);
        cli->signals.stop_job = strdup(id);
        bool early = cli->signals.count > 0;
        pthread_mutex_unlock(&cli->signals.lock);
        if (!cli->signals.stop_job)
                return oom(cli);
        /* Ctrl-C while Start was on its way: stop the job now. */
        if (early)
                send_stop(&cli->signals, id);
        return follow_to_end(cli, id, true, 0);
}

static int get_status(Cli *cli, const char *id, Jobworker__V1__StatusResponse **ret) {
        Jobworker__V1__StatusRequest req = JOBWORKER__V1__STATUS_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r;

        req.job_id = (char *) id;
        r = cli_client_unary(cli->client, METHOD("Status"), &req.base, &jobworker__v1__status_response__descriptor, &resp, &st);
        if (r < 0) {
                r = r == -ENOMEM ? oom(cli) : call_failed(cli, &st, "see", id);
                cli_call_status_done(&st);
                return r;
        }
        Jobworker__V1__StatusResponse *sr = (Jobworker__V1__StatusResponse *) resp;
        if (!sr->status) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return set_message(cli, CLI_EXIT_FAILED, "the server sent no status for job %s", id);
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
        return flush_out(cli);
}

static int cmd_list(Cli *cli) {
        Jobworker__V1__ListRequest req = JOBWORKER__V1__LIST_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r;

        req.running_only = cli->args->running;
        r = cli_client_unary(cli->client, METHOD("List"), &req.base, &jobworker__v1__list_response__descriptor, &resp, &st);
        if (r < 0) {
                r = r == -ENOMEM ? oom(cli) : call_failed(cli, &st, "list", NULL);
                cli_call_status_done(&st);
                return r;
        }
        Jobworker__V1__ListResponse *list = (Jobworker__V1__ListResponse *) resp;
        if (cli->args->json)
                cli_format_list_json(cli->out, list->jobs, list->n_jobs);
        else
                cli_format_list_text(cli->out, list->jobs, list->n_jobs);
        protobuf_c_message_free_unpacked(resp, NULL);
        return flush_out(cli);
}

static int cmd_logs(Cli *cli) {
        _cleanup_free_ char *id = NULL;
        StreamResult res = {};
        int r;

        if (cli->args->follow)
                signals_defer(&cli->signals);
        r = resolve_job(cli, cli->args->job, &id);
        if (r != 0)
                return r;
        r = stream_output(cli, id, cli->args->stream, cli->args->offset, cli->args->follow, true, &res);
        if (r != 0)
                goto finish;
        if (signals_count(&cli->signals) > 0) {
                r = CLI_EXIT_INTERRUPTED;
                goto finish;
        }
        if (res.status.code != GRPC_STATUS_OK) {
                r = call_failed(cli, &res.status, "read the output of", id);
                if (r == CLI_EXIT_CONNECT && res.position > cli->args->offset)
                        r = set_message(cli, CLI_EXIT_CONNECT, "%s (resume with 'jwctl logs --offset %" PRIu64 " ...')",
                                        cli->message ?: "connection lost", res.position);
                goto finish;
        }
        if (res.gap_bytes > 0 || (res.end && res.end->dropped_bytes > 0))
                set_message(cli, 0, "warning: the server dropped %" PRIu64 " bytes of the output of job %s",
                            MAX(res.gap_bytes, res.end ? res.end->dropped_bytes : 0), id);
        r = CLI_EXIT_OK;
finish:
        stream_result_done(&res);
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
        r = cli_client_unary(cli->client, METHOD("Stop"), &req.base, &jobworker__v1__stop_response__descriptor, &resp, &st);
        if (r < 0) {
                r = r == -ENOMEM ? oom(cli) : call_failed(cli, &st, "stop", id);
                cli_call_status_done(&st);
                return r;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
        return CLI_EXIT_OK;
}

static int cmd_wait(Cli *cli) {
        _cleanup_free_ char *id = NULL;
        Jobworker__V1__StatusResponse *sr = NULL;
        uint64_t seen;
        int r;

        signals_defer(&cli->signals);
        r = resolve_job(cli, cli->args->job, &id);
        if (r != 0)
                return r;
        r = get_status(cli, id, &sr);
        if (r != 0)
                return r;
        if (sr->status->state != JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING) {
                r = job_exit_code(cli, sr->status);
                jobworker__v1__status_response__free_unpacked(sr, NULL);
                return r;
        }
        /* Follow from the output already captured: only new bytes come over
         * the wire, and they are dropped. */
        seen = sr->status->stdout_bytes + sr->status->stderr_bytes;
        jobworker__v1__status_response__free_unpacked(sr, NULL);

        return follow_to_end(cli, id, false, seen);
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

        r = signals_start(&cli.signals);
        if (r < 0) {
                signals_stop(&cli.signals);
                *ret_message = strdup("cannot set up signal handling");
                return CLI_EXIT_FAILED;
        }

        r = cli_client_connect(settings, &cli.client, &exit_code, &cli.message);
        if (r < 0) {
                if (!cli.message)
                        cli.message = strdup("cannot connect: out of memory");
                goto finish;
        }
        pthread_mutex_lock(&cli.signals.lock);
        cli.signals.client = cli.client;
        pthread_mutex_unlock(&cli.signals.lock);

        static int (*const commands[])(Cli *) = {
                [CLI_COMMAND_START] = cmd_start, [CLI_COMMAND_RUN] = cmd_run,   [CLI_COMMAND_STATUS] = cmd_status,
                [CLI_COMMAND_LIST] = cmd_list,   [CLI_COMMAND_LOGS] = cmd_logs, [CLI_COMMAND_STOP] = cmd_stop,
                [CLI_COMMAND_WAIT] = cmd_wait,
        };
        if ((size_t) args->command < ELEMENTSOF(commands) && commands[args->command])
                exit_code = commands[args->command](&cli);
        else
                exit_code = set_message(&cli, CLI_EXIT_USAGE, "missing command (see 'jwctl --help')");
        /* wait, logs -f: a signal that came during the calls before the
         * stream still means "interrupted". */
        if (exit_code != CLI_EXIT_INTERRUPTED && signals_count(&cli.signals) > 0 &&
            (args->command == CLI_COMMAND_WAIT || args->command == CLI_COMMAND_LOGS)) {
                exit_code = CLI_EXIT_INTERRUPTED;
                cli.message = mfree_str(cli.message);
        }

finish:
        /* The signal thread may use the client (Stop): end it first. */
        signals_stop(&cli.signals);
        cli_client_free(cli.client);
        *ret_message = cli.message;
        return exit_code;
}
