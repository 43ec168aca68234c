/* SPDX-License-Identifier: MIT */
/*
 * jwctl across many hosts (see fanout.h).
 *
 * The one idea: a host's worker runs the very command jwctl runs for one
 * host (commands.c, stream.c, reconnect.c), on a Cli of its own whose
 * stdout and stderr are pipes; the main thread reads the pipes of every
 * running host and is the only writer of jwctl's real stdout and stderr.
 * So one host's failure, slowness or reconnect is that host's alone, and
 * what reaches the user is attributed by which pipe it came from.
 *
 * A host's Cli, client and CliSignals live until the main thread has
 * joined its worker and no Ctrl-C delivery is using them (signal_users).
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/fanout-output.h"
#include "cli/fanout-runs.h"
#include "cli/fanout-summary.h"
#include "cli/fanout.h"
#include "cli/hosts.h"
#include "cli/stream.h"
#include "shared/macro.h"
#include "shared/string-util.h"
#include "shared/time-util.h"

#define HOSTS_FILE_MAX_BYTES (4 * 1024 * 1024)

typedef enum HostPhase {
        HOST_WAITING,
        HOST_RUNNING,
        HOST_DONE,
} HostPhase;

typedef struct Fanout Fanout;

typedef struct FanoutHost {
        Fanout *fanout;
        const char *name;           /* points into Fanout.list */
        CliSettings settings;
        CliArgs args;               /* the command's, with this host's JOB */
        char *job;                  /* this host's JOB, or NULL */
        Cli cli;
        pthread_t thread;
        int rd[_FANOUT_STREAM_MAX]; /* our ends of the worker's pipes, -1 at EOF */
        HostPhase phase;            /* under Fanout.lock */
        unsigned signal_users;      /* deliveries in progress (under Fanout.lock) */
        uint64_t started_usec;
        FanoutResult result;        /* written by the worker before it closes its pipes */
} FanoutHost;

struct Fanout {
        const CliArgs *args;
        const CliSettings *settings;
        CliHostConfig cfg;
        CliHostList list;
        FanoutHost *hosts;
        const char **names;
        size_t n;
        FanoutOutput *output;
        CliSignals signals;
        pthread_mutex_t lock;
        pthread_cond_t idle;
        bool stopping;              /* under lock: start no more hosts */
        bool interrupted;           /* under lock: Ctrl-C came */
        bool ids_changed;           /* under lock: a job id to save */
};

/* ---- the worker of one host ---- */

static void set_job_id(FanoutHost *h, const char *id) {
        char *copy = strdup(id);

        pthread_mutex_lock(&h->fanout->lock);
        free(h->result.job_id);
        h->result.job_id = copy;
        h->fanout->ids_changed = true;
        pthread_mutex_unlock(&h->fanout->lock);
}

/* run and start are told apart from the others: their job id is kept. */
static int run_command(FanoutHost *h) {
        Cli *cli = &h->cli;
        _cleanup_free_ char *id = NULL;
        int r;

        switch (h->args.command) {
        case CLI_COMMAND_RUN:
                cli_signals_defer(&cli->signals);
                r = cli_command_start_job(cli, &id);
                if (r != 0)
                        return cli_signals_count(&cli->signals) > 0 ? CLI_EXIT_INTERRUPTED : r;
                set_job_id(h, id);
                if (cli_signals_stop_job(&cli->signals, id) < 0)
                        return cli_oom(cli);
                return cli_follow_to_end(cli, id, true, 0);
        case CLI_COMMAND_START:
                r = cli_command_start_job(cli, &id);
                if (r == 0)
                        set_job_id(h, id);
                return r;
        default:
                /* status, list, logs, stop, wait, and any command added to
                 * the table of commands.c (kill, once the Signal call is
                 * there) fan out with no change here. */
                return cli_command_dispatch(cli);
        }
}

static void *worker(void *userdata) {
        FanoutHost *h = userdata;
        Cli *cli = &h->cli;
        char *error = NULL;
        int code = CLI_EXIT_INTERRUPTED, exit_code = CLI_EXIT_CONNECT;

        if (cli_signals_count(&cli->signals) == 0) {
                if (cli_client_connect(&h->settings, &cli->client, &exit_code, &error) < 0) {
                        code = exit_code;
                        cli->message = error ?: strdup("cannot connect: out of memory");
                } else {
                        cli_signals_set_client(&cli->signals, cli->client);
                        code = run_command(h);
                }
        }
        if (cli->out && fflush(cli->out) != 0 && code == 0)
                code = cli_write_failed(cli, -(errno ?: EIO), "the output pipe");

        h->result.code = code;
        h->result.state = fanout_classify(h->args.command, code, cli->message, cli_signals_count(&cli->signals) > 0);
        h->result.error = TAKE_PTR(cli->message);
        h->result.duration_usec = now_usec(CLOCK_MONOTONIC) - h->started_usec;
        /* Last: EOF on both pipes tells the main thread that we are done. */
        if (cli->out)
                fclose(cli->out);
        cli->out = NULL;
        cli->err_fd = safe_close(cli->err_fd);
        return NULL;
}

/* ---- Ctrl-C and --fail-fast: every running host is told ---- */

static void interrupt_all(Fanout *f, bool by_signal) {
        pthread_mutex_lock(&f->lock);
        f->stopping = true;
        f->interrupted = f->interrupted || by_signal;
        for (size_t i = 0; i < f->n; i++)
                if (f->hosts[i].phase == HOST_RUNNING)
                        f->hosts[i].signal_users++;
        pthread_mutex_unlock(&f->lock);

        for (size_t i = 0; i < f->n; i++) {
                FanoutHost *h = &f->hosts[i];
                bool mine;

                pthread_mutex_lock(&f->lock);
                mine = h->signal_users > 0 && h->phase == HOST_RUNNING;
                pthread_mutex_unlock(&f->lock);
                if (!mine)
                        continue;
                /* The first one stops the job (run), a second one cancels the stream. */
                cli_signals_deliver(&h->cli.signals);
                pthread_mutex_lock(&f->lock);
                h->signal_users--;
                pthread_cond_broadcast(&f->idle);
                pthread_mutex_unlock(&f->lock);
        }
}

static void on_signal(void *userdata) {
        interrupt_all(userdata, true);
}

/* ---- starting and ending hosts (main thread) ---- */

static int start_host(Fanout *f, FanoutHost *h) {
        int out[2] = { -1, -1 }, err[2] = { -1, -1 }, r;

        h->started_usec = now_usec(CLOCK_MONOTONIC);
        r = cli_signals_init(&h->cli.signals);
        if (r >= 0 && (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0))
                r = negative_errno();
        if (r >= 0) {
                h->cli.args = &h->args;
                h->cli.settings = &h->settings;
                h->cli.out_fd = out[1];
                h->cli.err_fd = err[1];
                h->cli.out = fdopen(out[1], "w");
                if (!h->cli.out)
                        r = -ENOMEM;
        }
        if (r < 0) {
                safe_close(out[0]);
                safe_close(out[1]);
                safe_close(err[0]);
                safe_close(err[1]);
                h->cli.err_fd = -1;
                h->rd[0] = h->rd[1] = -1;
                return r;
        }
        h->rd[FANOUT_STDOUT] = out[0];
        h->rd[FANOUT_STDERR] = err[0];
        pthread_mutex_lock(&f->lock);
        h->phase = HOST_RUNNING;
        pthread_mutex_unlock(&f->lock);
        r = pthread_create(&h->thread, NULL, worker, h);
        if (r != 0) {
                pthread_mutex_lock(&f->lock);
                h->phase = HOST_WAITING;
                pthread_mutex_unlock(&f->lock);
                fclose(h->cli.out);
                h->cli.out = NULL;
                h->cli.err_fd = safe_close(h->cli.err_fd);
                h->rd[0] = safe_close(h->rd[0]);
                h->rd[1] = safe_close(h->rd[1]);
                return -r;
        }
        return 0;
}

static int print_started(Fanout *f, FanoutHost *h) {
        _cleanup_free_ char *line = NULL;
        ssize_t k;

        if (f->args->command != CLI_COMMAND_START || !h->result.job_id || f->args->json)
                return 0;
        line = strdup_printf("%s %s\n", h->name, h->result.job_id);
        if (!line)
                return -ENOMEM;
        k = write(STDOUT_FILENO, line, strlen(line));
        return k < 0 ? -errno : 0;
}

/* The worker closed both pipes: join it, then free what it used once no
 * delivery of Ctrl-C is using it any more. */
static int end_host(Fanout *f, size_t i) {
        FanoutHost *h = &f->hosts[i];
        bool failed;
        int r;

        pthread_join(h->thread, NULL);
        pthread_mutex_lock(&f->lock);
        h->phase = HOST_DONE;
        while (h->signal_users > 0)
                pthread_cond_wait(&f->idle, &f->lock);
        pthread_mutex_unlock(&f->lock);
        h->cli.client = cli_client_free(h->cli.client);
        cli_signals_stop(&h->cli.signals);

        r = fanout_output_host_end(f->output, i);
        if (r >= 0)
                r = print_started(f, h);
        failed = h->result.state != FANOUT_STATE_OK;
        if (failed && f->args->fanout.fail_fast)
                interrupt_all(f, false);
        return r;
}

/* After a failure of our own (stdout closed): stop every host, close our
 * ends of the pipes (a worker's next write fails) and join them all. */
static void abort_hosts(Fanout *f) {
        interrupt_all(f, false);
        for (size_t i = 0; i < f->n; i++) {
                FanoutHost *h = &f->hosts[i];
                if (h->phase != HOST_RUNNING)
                        continue;
                h->rd[0] = safe_close(h->rd[0]);
                h->rd[1] = safe_close(h->rd[1]);
                pthread_join(h->thread, NULL);
                pthread_mutex_lock(&f->lock);
                h->phase = HOST_DONE;
                while (h->signal_users > 0)
                        pthread_cond_wait(&f->idle, &f->lock);
                pthread_mutex_unlock(&f->lock);
                h->cli.client = cli_client_free(h->cli.client);
                cli_signals_stop(&h->cli.signals);
        }
}

/* ---- the main loop ---- */

static int save_run(Fanout *f, char **ret_error) {
        _cleanup_free_ const char **ids = calloc(f->n ?: 1, sizeof(char *));
        int r;

        if (!ids)
                return -ENOMEM;
        pthread_mutex_lock(&f->lock);
        f->ids_changed = false;
        for (size_t i = 0; i < f->n; i++)
                ids[i] = f->hosts[i].result.job_id ? strdup(f->hosts[i].result.job_id) : NULL;
        pthread_mutex_unlock(&f->lock);
        r = fanout_run_save(f->args->fanout.save, f->names, ids, f->n, ret_error);
        for (size_t i = 0; i < f->n; i++)
                free((char *) ids[i]);
        return r;
}

/* Reads what is there from every running host's pipes. */
static int pump(Fanout *f, struct pollfd *p, size_t *who, size_t k) {
        uint8_t buf[64 * 1024];

        if (poll(p, k, -1) < 0)
                return errno == EINTR ? 0 : -errno;
        for (size_t j = 0; j < k; j++) {
                FanoutHost *h = &f->hosts[who[j] / 2];
                FanoutStream s = (FanoutStream) (who[j] % 2);
                ssize_t n;

                if (!p[j].revents)
                        continue;
                n = read(h->rd[s], buf, sizeof buf);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0) {
                        h->rd[s] = safe_close(h->rd[s]);
                        continue;
                }
                int r = fanout_output_data(f->output, who[j] / 2, s, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int run_hosts(Fanout *f, char **ret_error) {
        unsigned parallel = f->args->fanout.parallel ?: CLI_FANOUT_PARALLEL_DEFAULT;
        _cleanup_free_ struct pollfd *p = calloc(2 * (size_t) parallel, sizeof(*p));
        _cleanup_free_ size_t *who = calloc(2 * (size_t) parallel, sizeof(*who));
        size_t next = 0, active = 0;
        int r;

        if (!p || !who)
                return -ENOMEM;
        for (;;) {
                size_t k = 0;
                bool stopping, save;

                pthread_mutex_lock(&f->lock);
                stopping = f->stopping;
                save = f->ids_changed && f->args->fanout.save;
                pthread_mutex_unlock(&f->lock);
                if (save && (r = save_run(f, ret_error)) < 0)
                        return r;
                while (!stopping && active < parallel && next < f->n) {
                        FanoutHost *h = &f->hosts[next++];
                        r = start_host(f, h);
                        if (r < 0) {
                                h->result.state = FANOUT_STATE_FAILED;
                                h->result.code = CLI_EXIT_FAILED;
                                h->result.error = strdup_printf("cannot start a worker for this host: %s", strerror(-r));
                                continue;
                        }
                        active++;
                }
                if (active == 0)
                        return 0;
                for (size_t i = 0; i < f->n; i++) {
                        FanoutHost *h = &f->hosts[i];
                        if (h->phase != HOST_RUNNING)
                                continue;
                        if (h->rd[0] < 0 && h->rd[1] < 0) {
                                r = end_host(f, i);
                                active--;
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        for (int s = 0; s < _FANOUT_STREAM_MAX; s++)
                                if (h->rd[s] >= 0) {
                                        p[k] = (struct pollfd) { .fd = h->rd[s], .events = POLLIN };
                                        who[k++] = 2 * i + (size_t) s;
                                }
                }
                if (k > 0 && (r = pump(f, p, who, k)) < 0)
                        return r;
        }
}

/* ---- which hosts, and which job on each ---- */

static int read_hosts_file(const char *path, char **ret_text, char **ret_error) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;

        if (fd < 0)
                return replace_message(ret_error, -EINVAL, "cannot read hosts file %s: %s", path, strerror(errno));
        text = malloc(HOSTS_FILE_MAX_BYTES + 1);
        if (!text)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, text + len, HOSTS_FILE_MAX_BYTES + 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return replace_message(ret_error, -EINVAL, "cannot read hosts file %s: %s", path, strerror(errno));
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > HOSTS_FILE_MAX_BYTES)
                        return replace_message(ret_error, -EINVAL, "hosts file %s is too large", path);
        }
        text[len] = '\0';
        *ret_text = TAKE_PTR(text);
        return 0;
}

/* The hosts named, and jobs[i] for each (NULL: the command's JOB). */
static int resolve_targets(Fanout *f, char ***ret_jobs, char **ret_error) {
        const CliArgs *a = f->args;
        char **jobs = NULL;
        int r = 0;

        if (a->job && a->job[0] == '@') {
                FanoutRun run = {};
                r = fanout_run_load(a->job + 1, &run, ret_error);
                for (size_t i = 0; r >= 0 && i < run.n; i++)
                        r = cli_hosts_add_list(&f->cfg, run.entries[i].host, &f->list, ret_error);
                if (r >= 0 && !(jobs = calloc(f->list.n ?: 1, sizeof(char *))))
                        r = -ENOMEM;
                /* Each host its job, by name (a host listed twice keeps its first). */
                for (size_t i = 0; r >= 0 && i < f->list.n; i++)
                        for (size_t j = 0; j < run.n; j++)
                                if (strcmp(run.entries[j].host, f->list.hosts[i].name) == 0) {
                                        if (!(jobs[i] = strdup(run.entries[j].job_id)))
                                                r = -ENOMEM;
                                        break;
                                }
                fanout_run_done(&run);
        } else if (a->job && strchr(a->job, ':')) {
                const char *colon = strrchr(a->job, ':');
                _cleanup_free_ char *host = strndup(a->job, (size_t) (colon - a->job));
                r = host ? cli_hosts_add_list(&f->cfg, host, &f->list, ret_error) : -ENOMEM;
                if (r >= 0 && (!(jobs = calloc(1, sizeof(char *))) || !(jobs[0] = strdup(colon + 1))))
                        r = -ENOMEM;
        } else {
                for (size_t i = 0; r >= 0 && i < a->fanout.n_hosts; i++)
                        r = cli_hosts_add_list(&f->cfg, a->fanout.hosts[i], &f->list, ret_error);
                if (r >= 0 && a->fanout.hosts_file) {
                        _cleanup_free_ char *text = NULL;
                        r = read_hosts_file(a->fanout.hosts_file, &text, ret_error);
                        if (r >= 0)
                                r = cli_hosts_add_file_text(&f->cfg, text, a->fanout.hosts_file, &f->list, ret_error);
                }
                /* No hosts named: the one server, as without a fan-out. */
                if (r >= 0 && !cli_args_names_hosts(a) && f->settings->server)
                        r = cli_hosts_add_list(&f->cfg, f->settings->server, &f->list, ret_error);
                if (r >= 0 && f->list.n == 0)
                        r = replace_message(ret_error, -EINVAL, "no hosts to run on (the host list is empty)");
        }
        if (r < 0) {
                for (size_t i = 0; jobs && i < f->list.n; i++)
                        free(jobs[i]);
                free(jobs);
                return r;
        }
        *ret_jobs = jobs;
        return 0;
}

/* What each host's stream may hold unread (fanout.h): the whole client's at
 * most FANOUT_WINDOWS_TOTAL over the hosts served at once, within [1 MiB, 4 MiB]
 * (jwctl's own default for one host). A host's window is what the client
 * holds for it while output flows: measured 9 MiB of RSS per host with 4 MiB
 * windows (bench/README.md, "Fan-out"); 1 MiB still covers a 50 ms path at
 * 20 MB/s per host. */
#define FANOUT_WINDOWS_TOTAL (64u * 1024 * 1024)
uint32_t cli_fanout_stream_window(unsigned at_once) {
        uint32_t w = FANOUT_WINDOWS_TOTAL / MAX(at_once, 1u);
        return MIN(MAX(w, 1024u * 1024), 4u * 1024 * 1024);
}

static int setup_hosts(Fanout *f, char **ret_error) {
        char **jobs = NULL;
        int r;

        r = cli_hosts_config_parse(f->settings->config_path, f->settings->config_text, &f->cfg, ret_error);
        if (r >= 0)
                r = resolve_targets(f, &jobs, ret_error);
        if (r < 0)
                return r;
        f->n = f->list.n;
        f->hosts = calloc(f->n, sizeof(FanoutHost));
        f->names = calloc(f->n, sizeof(char *));
        if (!f->hosts || !f->names)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < f->n; i++) {
                FanoutHost *h = &f->hosts[i];

                *h = (FanoutHost) { .fanout = f, .name = f->list.hosts[i].name, .args = *f->args,
                                    .rd = { -1, -1 }, .job = jobs ? jobs[i] : NULL };
                h->cli.err_fd = -1;
                if (jobs)
                        jobs[i] = NULL;
                if (h->job)
                        h->args.job = h->job;
                f->names[i] = h->name;
                r = cli_host_settings(f->settings, &f->list.hosts[i], &h->settings, ret_error);
                if (r >= 0)
                        h->settings.stream_window = cli_fanout_stream_window(
                                (unsigned) MIN((size_t) (f->args->fanout.parallel ?: CLI_FANOUT_PARALLEL_DEFAULT), f->n));
        }
        for (size_t i = 0; jobs && i < f->n; i++)
                free(jobs[i]);
        free(jobs);
        return r;
}

static void fanout_free(Fanout *f) {
        for (size_t i = 0; f->hosts && i < f->n; i++) {
                cli_settings_done(&f->hosts[i].settings);
                fanout_result_done(&f->hosts[i].result);
                free(f->hosts[i].job);
        }
        free(f->hosts);
        free(f->names);
        fanout_output_free(f->output);
        cli_host_list_done(&f->list);
        cli_host_config_done(&f->cfg);
        pthread_cond_destroy(&f->idle);
        pthread_mutex_destroy(&f->lock);
}

static FanoutMode output_mode(const CliArgs *a) {
        /* status, list --json: their JSON text is the data of each object. */
        if (a->json)
                return FANOUT_MODE_JSON;
        if (a->fanout.group_output)
                return FANOUT_MODE_GROUP;
        return a->fanout.no_prefix ? FANOUT_MODE_RAW : FANOUT_MODE_PREFIX;
}

static unsigned color_mask(void) {
        const char *no = getenv("NO_COLOR");
        unsigned m = 0;

        if (no && *no)
                return 0;
        if (isatty(STDOUT_FILENO))
                m |= 1u << FANOUT_STDOUT;
        if (isatty(STDERR_FILENO))
                m |= 1u << FANOUT_STDERR;
        return m;
}

/* Many hosts at once need many fds: 2 pipes and a socket per host (5 fds;
 * bench/README.md measures it). Take what the hard limit allows. */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* Summary, saved run, exit code. */
static int finish(Fanout *f, char **ret_message) {
        _cleanup_free_ FanoutResult *results = calloc(f->n ?: 1, sizeof(*results));
        bool interrupted;
        int r;

        if (!results)
                return CLI_EXIT_FAILED;
        for (size_t i = 0; i < f->n; i++)
                results[i] = f->hosts[i].result;
        pthread_mutex_lock(&f->lock);
        interrupted = f->interrupted;
        pthread_mutex_unlock(&f->lock);
        if (f->args->json) {
                fanout_summary_json(stdout, f->names, results, f->n);
                fflush(stdout);
        } else
                fanout_summary_text(stderr, f->names, results, f->n);
        if (f->args->fanout.save) {
                r = save_run(f, ret_message);
                if (r < 0)
                        return CLI_EXIT_FAILED;
        }
        return fanout_exit_code(results, f->n, interrupted);
}

int cli_fanout_execute(const CliArgs *args, const CliSettings *settings, char **ret_message) {
        Fanout f = { .args = args, .settings = settings };
        int r, code;

        *ret_message = NULL;
        /* One terminal cannot be typed into on many hosts at once; and a
         * fan-out never forwards our stdin (as pdsh). */
        if (args->tty) {
                *ret_message = strdup("run -t/--tty works with one host only, not across hosts");
                return CLI_EXIT_USAGE;
        }
        pthread_mutex_init(&f.lock, NULL);
        pthread_cond_init(&f.idle, NULL);
        r = setup_hosts(&f, ret_message);
        if (r >= 0)
                r = fanout_output_new(output_mode(args), f.names, f.n, STDOUT_FILENO, STDERR_FILENO, color_mask(), &f.output);
        /* logs --offset N: the JSON offsets count from N. */
        for (size_t i = 0; r >= 0 && args->command == CLI_COMMAND_LOGS && i < f.n; i++)
                fanout_output_set_offset(f.output, i, args->offset);
        if (r < 0) {
                fanout_free(&f);
                if (r == -ENOMEM && !*ret_message)
                        *ret_message = strdup("out of memory");
                return r == -ENOMEM ? CLI_EXIT_FAILED : CLI_EXIT_USAGE;
        }
        raise_fd_limit();

        r = cli_signals_start(&f.signals);
        if (r >= 0) {
                cli_signals_set_handler(&f.signals, on_signal, &f);
                r = run_hosts(&f, ret_message);
                if (r < 0)
                        abort_hosts(&f);
                else
                        r = fanout_output_finish(f.output);
        }
        /* The signal thread may deliver to hosts: end it before they go. */
        cli_signals_stop(&f.signals);
        if (r == -EPIPE)
                code = CLI_EXIT_BROKEN_PIPE;
        else if (r < 0) {
                if (!*ret_message)
                        *ret_message = strdup_printf("fan-out failed: %s", strerror(-r));
                code = CLI_EXIT_FAILED;
        } else
                code = finish(&f, ret_message);
        fanout_free(&f);
        return code;
}
