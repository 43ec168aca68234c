/* SPDX-License-Identifier: MIT */
/*
 * jwctl's options: the table of every option (which commands take it,
 * whether it has a value) and what each value means (see args-internal.h).
 *
 * The one idea: each table row names the function that applies it, one per
 * group of options (global, job limits and environment, what status/logs/
 * stop/kill show or do), so adding an option is a row plus a case, and every
 * message names the option as the user wrote it. Quantities use the one
 * grammar of shared/parse-util.h, the one the server's policy and
 * jobworkerd.conf use.
 */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args-internal.h"
#include "cli/signame.h"
#include "cli/usage.h"
#include "policy/quantity.h" /* LIMITS_* bounds and the CPU syntax, shared with the policy file */
#include "shared/job-name.h"
#include "shared/macro.h"
#include "shared/parse-util.h"
#include "shared/string-util.h"

typedef enum OptId {
        OPT_HELP,
        OPT_VERSION,
        OPT_SERVER,
        OPT_CERT,
        OPT_KEY,
        OPT_CA,
        OPT_TIMEOUT,
        OPT_RECONNECT_TIMEOUT,
        OPT_KEEPALIVE,
        OPT_ENV,
        OPT_CWD,
        OPT_JSON,
        OPT_RUNNING,
        OPT_FOLLOW,
        OPT_STDOUT,
        OPT_STDERR,
        OPT_OFFSET,
        OPT_GRACE,
        OPT_CPU,
        OPT_MEMORY,
        OPT_PIDS,
        OPT_IO_READ,
        OPT_IO_WRITE,
        OPT_ISOLATE,
        OPT_MAX_RUNTIME,
        OPT_SIGNAL,
        OPT_ALL,
        OPT_LIST_SIGNALS,
        OPT_NAME,
        OPT_LABEL,
        OPT_STATE,
        OPT_OWNER,
        OPT_NO_STDIN,
        OPT_TTY,
} OptId;

static int apply_global(Parser *p, const OptDef *o, const char *shown, const char *value);
static int apply_job(Parser *p, const OptDef *o, const char *shown, const char *value);
static int apply_view(Parser *p, const OptDef *o, const char *shown, const char *value);
static int apply_names(Parser *p, const OptDef *o, const char *shown, const char *value);

#define CMD_BIT(c) (1u << (c))
#define START_RUN (CMD_BIT(CLI_COMMAND_START) | CMD_BIT(CLI_COMMAND_RUN))
#define FANOUT_CMDS 0 /* every command, before or after its name */

static const OptDef options[] = {
        { "help", 'h', false, OPT_HELP, 0, apply_global },
        { "version", 0, false, OPT_VERSION, 0, apply_global },
        { "server", 0, true, OPT_SERVER, 0, apply_global },
        { "cert", 0, true, OPT_CERT, 0, apply_global },
        { "key", 0, true, OPT_KEY, 0, apply_global },
        { "ca", 0, true, OPT_CA, 0, apply_global },
        { "timeout", 0, true, OPT_TIMEOUT, 0, apply_global },
        { "reconnect-timeout", 0, true, OPT_RECONNECT_TIMEOUT, 0, apply_global },
        { "keepalive", 0, true, OPT_KEEPALIVE, 0, apply_global },
        { "env", 0, true, OPT_ENV, START_RUN, apply_job },
        { "cwd", 0, true, OPT_CWD, START_RUN, apply_job },
        { "json", 0, false, OPT_JSON, CMD_BIT(CLI_COMMAND_STATUS) | CMD_BIT(CLI_COMMAND_LIST) |
                CMD_BIT(CLI_COMMAND_RUN) | CMD_BIT(CLI_COMMAND_LOGS), apply_view }, /* run, logs: fan-out output as JSON */
        { "running", 0, false, OPT_RUNNING, CMD_BIT(CLI_COMMAND_LIST), apply_view },
        { "follow", 'f', false, OPT_FOLLOW, CMD_BIT(CLI_COMMAND_LOGS), apply_view },
        { "stdout", 0, false, OPT_STDOUT, CMD_BIT(CLI_COMMAND_LOGS), apply_view },
        { "stderr", 0, false, OPT_STDERR, CMD_BIT(CLI_COMMAND_LOGS), apply_view },
        { "offset", 0, true, OPT_OFFSET, CMD_BIT(CLI_COMMAND_LOGS), apply_view },
        { "grace", 0, true, OPT_GRACE, CMD_BIT(CLI_COMMAND_STOP), apply_view },
        { "cpu", 0, true, OPT_CPU, START_RUN, apply_job },
        { "memory", 0, true, OPT_MEMORY, START_RUN, apply_job },
        { "pids", 0, true, OPT_PIDS, START_RUN, apply_job },
        { "io-read-bps", 0, true, OPT_IO_READ, START_RUN, apply_job },
        { "io-write-bps", 0, true, OPT_IO_WRITE, START_RUN, apply_job },
        { "isolate", 0, true, OPT_ISOLATE, START_RUN, apply_job },
        { "max-runtime", 0, true, OPT_MAX_RUNTIME, START_RUN, apply_job },
        { "signal", 's', true, OPT_SIGNAL, CMD_BIT(CLI_COMMAND_KILL), apply_view },
        { "all", 0, false, OPT_ALL, CMD_BIT(CLI_COMMAND_KILL), apply_view },
        { "list", 'l', false, OPT_LIST_SIGNALS, CMD_BIT(CLI_COMMAND_KILL), apply_view },
        { "name", 0, true, OPT_NAME, START_RUN | CMD_BIT(CLI_COMMAND_LIST), apply_names },
        { "label", 0, true, OPT_LABEL, START_RUN | CMD_BIT(CLI_COMMAND_LIST), apply_names },
        { "state", 0, true, OPT_STATE, CMD_BIT(CLI_COMMAND_LIST), apply_names },
        { "owner", 0, true, OPT_OWNER, CMD_BIT(CLI_COMMAND_LIST), apply_names },
        { "no-stdin", 'n', false, OPT_NO_STDIN, CMD_BIT(CLI_COMMAND_RUN), apply_job },
        { "tty", 't', false, OPT_TTY, CMD_BIT(CLI_COMMAND_RUN), apply_job },
        /* Fan-out (args-fanout.c). */
        { "hosts", 0, true, ARGS_OPT_HOSTS, FANOUT_CMDS, args_apply_fanout },
        { "hosts-file", 0, true, ARGS_OPT_HOSTS_FILE, FANOUT_CMDS, args_apply_fanout },
        { "parallel", 0, true, ARGS_OPT_PARALLEL, FANOUT_CMDS, args_apply_fanout },
        { "no-prefix", 0, false, ARGS_OPT_NO_PREFIX, FANOUT_CMDS, args_apply_fanout },
        { "group-output", 0, false, ARGS_OPT_GROUP_OUTPUT, FANOUT_CMDS, args_apply_fanout },
        { "fail-fast", 0, false, ARGS_OPT_FAIL_FAST, FANOUT_CMDS, args_apply_fanout },
        { "save", 0, true, ARGS_OPT_SAVE, START_RUN, args_apply_fanout },
};

static bool option_applies(const Parser *p, const OptDef *o) {
        return o->commands == 0 || (o->commands & CMD_BIT(p->a->command));
}

const OptDef *args_option_find(const Parser *p, const char *name, size_t len, char short_name) {
        for (size_t k = 0; k < ELEMENTSOF(options); k++) {
                const OptDef *o = &options[k];

                if (name) {
                        /* Long names are unique: a match that does not
                         * apply to this command is an unknown option. */
                        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                                return option_applies(p, o) ? o : NULL;
                } else if (o->short_name == short_name && option_applies(p, o))
                        return o;
        }
        return NULL;
}

const char *args_see_help(const Parser *p) {
        switch (p->a->command) {
        case CLI_COMMAND_START: return " (see 'jwctl start --help')";
        case CLI_COMMAND_RUN: return " (see 'jwctl run --help')";
        case CLI_COMMAND_STATUS: return " (see 'jwctl status --help')";
        case CLI_COMMAND_LIST: return " (see 'jwctl list --help')";
        case CLI_COMMAND_LOGS: return " (see 'jwctl logs --help')";
        case CLI_COMMAND_STOP: return " (see 'jwctl stop --help')";
        case CLI_COMMAND_WAIT: return " (see 'jwctl wait --help')";
        case CLI_COMMAND_KILL: return " (see 'jwctl kill --help')";
        default: return " (see 'jwctl --help')";
        }
}

const char *args_command_label(const Parser *p) {
        return p->a->command == CLI_COMMAND_NONE ? "jwctl" : cli_command_to_string(p->a->command);
}

/* --io-read-bps / --io-write-bps DEV=RATE. DEV is everything before the
 * last '=', so a path may contain '='. */
static int add_io(Parser *p, const char *shown, const char *value, bool write) {
        CliArgs *a = p->a;
        const char *eq = strrchr(value, '=');
        uint64_t rate;
        size_t dlen;
        CliIoLimit *io = NULL;
        int r;

        if (!eq || eq == value || !eq[1])
                return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected DEV=RATE, like /dev/sda=50M", value, shown);
        dlen = (size_t) (eq - value);
        if (value[0] != '/')
                return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': DEV must be an absolute path (a block device or a file "
                            "on one, on the server)", value, shown);
        r = parse_size(eq + 1, &rate);
        if (r < 0 || rate == 0)
                return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a rate in bytes per second greater than 0, "
                            "like 50M", eq + 1, shown);
        for (size_t i = 0; i < a->n_io; i++)
                if (strlen(a->io[i].device) == dlen && strncmp(a->io[i].device, value, dlen) == 0)
                        io = &a->io[i];
        if (!io) {
                CliIoLimit *n;

                if (a->n_io >= CLI_IO_MAX)
                        return replace_message(&p->error, -EINVAL, "too many devices for io limits (at most %u)", CLI_IO_MAX);
                n = reallocarray(a->io, a->n_io + 1, sizeof(*a->io));
                if (!n)
                        return -ENOMEM;
                a->io = n;
                io = &a->io[a->n_io];
                *io = (CliIoLimit) { .device = strndup(value, dlen) };
                if (!io->device)
                        return -ENOMEM;
                a->n_io++;
        }
        if ((write ? io->write_bps : io->read_bps) != 0)
                return replace_message(&p->error, -EINVAL, "option '%s' is given twice for '%s'", shown, io->device);
        if (write)
                io->write_bps = rate;
        else
                io->read_bps = rate;
        return 0;
}

static int add_isolate(Parser *p, const char *shown, const char *value) {
        const char *w = value;

        for (;;) {
                size_t n = strcspn(w, ",");

                if (n == 3 && strncmp(w, "pid", 3) == 0)
                        p->a->isolate |= CLI_ISOLATE_PID;
                else if (n == 3 && strncmp(w, "net", 3) == 0)
                        p->a->isolate |= CLI_ISOLATE_NET;
                else if (n == 3 && strncmp(w, "tmp", 3) == 0)
                        p->a->isolate |= CLI_ISOLATE_TMP;
                else if (n == 3 && strncmp(w, "all", 3) == 0)
                        p->a->isolate |= CLI_ISOLATE_PID | CLI_ISOLATE_NET | CLI_ISOLATE_TMP;
                else
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a comma-separated list of pid, net, tmp "
                                    "(or all)", value, shown);
                if (!w[n])
                        return 0;
                w += n + 1;
        }
}


/* Options every command takes: help, version, where and how to connect. */
static int apply_global(Parser *p, const OptDef *o, const char *shown, const char *value) {
        CliArgs *a = p->a;
        uint64_t u;

        switch (o->id) {
        case OPT_HELP:
                a->help = true;
                return 1;
        case OPT_VERSION:
                a->version = true;
                return 0;
        case OPT_SERVER:
                if (!*value)
                        return replace_message(&p->error, -EINVAL, "option '%s' needs HOST:PORT, not an empty string", shown);
                a->server = value;
                return 0;
        case OPT_CERT:
        case OPT_KEY:
        case OPT_CA:
                if (!*value)
                        return replace_message(&p->error, -EINVAL, "option '%s' needs a file name, not an empty string", shown);
                if (o->id == OPT_CERT)
                        a->cert = value;
                else if (o->id == OPT_KEY)
                        a->key = value;
                else
                        a->ca = value;
                return 0;
        case OPT_TIMEOUT:
                if (cli_parse_duration(value, &u) < 0 || u == 0)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a duration greater than 0, like 10, 2.5 or 500ms",
                                    value, shown);
                a->timeout_set = true;
                a->timeout_usec = u;
                return 0;
        case OPT_RECONNECT_TIMEOUT:
                if (cli_parse_duration(value, &u) < 0)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a duration, like 5min, 30 or 0 (never reconnect)",
                                    value, shown);
                a->reconnect_set = true;
                a->reconnect_usec = u;
                return 0;
        case OPT_KEEPALIVE:
                if (cli_parse_duration(value, &u) < 0)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a duration, like 30s, or 0 (no pings)",
                                    value, shown);
                a->keepalive_set = true;
                a->keepalive_usec = u;
                return 0;
        }
        assert(!"unhandled global option");
        return -EINVAL;
}

/* What start and run ask of the job: environment, directory, limits. */
static int apply_job(Parser *p, const OptDef *o, const char *shown, const char *value) {
        CliArgs *a = p->a;
        uint32_t m;
        uint64_t u;

        switch (o->id) {
        case OPT_ENV: {
                const char *eq = strchr(value, '=');
                const char **n;

                if (!eq || eq == value)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected KEY=VALUE", value, shown);
                n = reallocarray(a->env, a->n_env + 1, sizeof(*a->env));
                if (!n)
                        return -ENOMEM;
                a->env = n;
                a->env[a->n_env++] = value;
                return 0;
        }
        case OPT_CWD:
                if (!*value)
                        return replace_message(&p->error, -EINVAL, "option '%s' needs a directory, not an empty string", shown);
                a->cwd = value;
                return 0;
        case OPT_CPU:
                if (limits_parse_cpu(value, &m) < 0 || m < LIMITS_CPU_MILLIS_MIN)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a number of CPUs from 0.01 to %u, like 0.5 or 2",
                                    value, shown, LIMITS_CPU_MILLIS_MAX / 1000);
                a->cpu_millis = m;
                return 0;
        case OPT_MEMORY:
                if (parse_size(value, &u) < 0 || u == 0)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a size greater than 0, like 256M or 2G",
                                    value, shown);
                a->memory_max = u;
                return 0;
        case OPT_PIDS:
                if (parse_uint64(value, &u) < 0 || u == 0 || u > LIMITS_PIDS_MAX)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a number of processes from 1 to %u",
                                    value, shown, LIMITS_PIDS_MAX);
                a->pids_max = u;
                return 0;
        case OPT_IO_READ:
        case OPT_IO_WRITE:
                return add_io(p, shown, value, o->id == OPT_IO_WRITE);
        case OPT_ISOLATE:
                return add_isolate(p, shown, value);
        case OPT_MAX_RUNTIME:
                /* Whole milliseconds (the API's unit), rounded up: never to
                 * "no limit". */
                if (parse_duration(value, &u) < 0 || u == 0 || u > LIMITS_RUNTIME_MAX_USEC)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a duration "
                                    "greater than 0 and at most 3650d, like 30m, 2h or 90 (seconds)", value, shown);
                a->max_runtime_ms = (u + 999) / 1000;
                return 0;
        case OPT_NO_STDIN:
                a->no_stdin = true;
                return 0;
        case OPT_TTY:
                a->tty = true;
                return 0;
        }
        assert(!"unhandled job option");
        return -EINVAL;
}

/* What status, list, logs, stop and kill show or do. */
static int apply_view(Parser *p, const OptDef *o, const char *shown, const char *value) {
        CliArgs *a = p->a;
        uint64_t u;
        int r;

        switch (o->id) {
        case OPT_JSON:
                a->json = true;
                return 0;
        case OPT_RUNNING:
                a->running = true;
                return 0;
        case OPT_FOLLOW:
                a->follow = true;
                return 0;
        case OPT_STDOUT:
        case OPT_STDERR: {
                CliStream s = o->id == OPT_STDOUT ? CLI_STREAM_STDOUT : CLI_STREAM_STDERR;

                if (a->stream != CLI_STREAM_BOTH && a->stream != s)
                        return replace_message(&p->error, -EINVAL, "options '--stdout' and '--stderr' exclude each other (give neither for both streams)");
                a->stream = s;
                return 0;
        }
        case OPT_OFFSET:
                r = parse_uint64(value, &u);
                if (r == -ERANGE)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': too large", value, shown);
                if (r < 0)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a number of bytes (0 or more)", value, shown);
                a->offset = u;
                return 0;
        case OPT_GRACE:
                if (cli_parse_duration(value, &u) < 0)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a number of seconds (0 or more) or a "
                                    "duration, like 5, 0.5 or 1min", value, shown);
                a->grace_set = true;
                a->grace_ms = (u + 999) / 1000; /* rounded up: never to "no grace" */
                return 0;
        case OPT_SIGNAL:
                if (cli_signal_parse(value, &a->signal) < 0)
                        return replace_message(&p->error, -EINVAL, "unknown signal '%s' for '%s': expected " CLI_SIGNAL_EXPECTED,
                                               value, shown);
                return 0;
        case OPT_ALL:
                a->signal_all = true;
                return 0;
        case OPT_LIST_SIGNALS:
                a->signal_list = true;
                return 0;
        }
        assert(!"unhandled view option");
        return -EINVAL;
}

/* --state WORD[,WORD...]: a state of the API, or "finished". */
static int add_states(Parser *p, const char *shown, const char *value) {
        static const char *const words[] = { "running", "exited", "killed", "lost", "ended" };
        const char *w = value;

        for (;;) {
                size_t n = strcspn(w, ",");
                unsigned bit = 0;

                for (size_t k = 0; k < ELEMENTSOF(words); k++)
                        if (strlen(words[k]) == n && strncmp(w, words[k], n) == 0)
                                bit = 1u << (k + 1);
                if (n == 8 && strncmp(w, "finished", 8) == 0)
                        bit = CLI_STATE_FINISHED;
                if (!bit)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected running, exited, "
                                               "killed, lost, ended or finished (any but running), or several with ','",
                                               value, shown);
                p->a->states |= bit;
                if (!w[n])
                        return 0;
                w += n + 1;
        }
}

/* Names and labels (start, run: the job's; list: filters), checked by the
 * rules the server applies (shared/job-name.h), and list's other filters. */
static int apply_names(Parser *p, const OptDef *o, const char *shown, const char *value) {
        CliArgs *a = p->a;
        char msg[JOB_NAME_MSG_MAX], key[JOB_LABEL_KEY_MAX + 1], val[JOB_LABEL_VALUE_MAX + 1];

        switch (o->id) {
        case OPT_NAME:
                if (job_name_check(value, msg, sizeof(msg)) < 0)
                        return replace_message(&p->error, -EINVAL, "invalid value for '%s': %s", shown, msg);
                a->name = value;
                return 0;
        case OPT_LABEL: {
                const char **n;

                if (job_label_parse(value, key, val, msg, sizeof(msg)) < 0)
                        return replace_message(&p->error, -EINVAL, "invalid value for '%s': %s", shown, msg);
                if (a->n_labels >= JOB_LABELS_MAX)
                        return replace_message(&p->error, -EINVAL, "too many '%s' (at most %u)", shown, JOB_LABELS_MAX);
                for (size_t i = 0; i < a->n_labels; i++)
                        if (strncmp(a->labels[i], value, strlen(key) + 1) == 0)
                                return replace_message(&p->error, -EINVAL, "label key '%s' is given twice", key);
                n = reallocarray(a->labels, a->n_labels + 1, sizeof(*a->labels));
                if (!n)
                        return -ENOMEM;
                a->labels = n;
                a->labels[a->n_labels++] = value;
                return 0;
        }
        case OPT_STATE:
                return add_states(p, shown, value);
        case OPT_OWNER:
                if (!*value)
                        return replace_message(&p->error, -EINVAL, "option '%s' needs a user name, not an empty string", shown);
                a->owner = value;
                return 0;
        }
        assert(!"unhandled names option");
        return -EINVAL;
}
