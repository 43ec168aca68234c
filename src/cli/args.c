/* SPDX-License-Identifier: MIT */
/*
 * jwctl's argument parser: a pure function from argv to a CliArgs or to a
 * one-line usage error, so that every rule here is unit-tested (cmocka,
 * tests/unit/test-cli-args.c).
 *
 * The one idea: global options are accepted before and after the command
 * name; for start/run the first non-option word (or the word after "--")
 * begins the remote command and everything after it belongs to that command,
 * even words starting with "-" (like ssh or env). For the other commands
 * options and the JOB may come in any order, and "--" ends the options.
 *
 * Quantities (--cpu 0.5, --memory 256M, rates like 50M) are read by the
 * parsers of rpc/limits.h, the same ones the server's policy file uses.
 */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "rpc/limits.h" /* the quantity syntax, shared with the policy file */
#include "shared/macro.h"
#include "shared/string-util.h"

/* The options start and run share. */
#define JOB_OPTIONS_HELP \
        "  --env KEY=VALUE   add to the job's environment (repeatable)\n" \
        "  --cwd DIR         working directory (default: the run-as account's home)\n" \
        "  --cpu CPUS        CPU bandwidth, in CPUs: 0.5 = half of one (cpu.max)\n" \
        "  --memory SIZE     memory limit, like 256M or 2G (memory.max, no swap)\n" \
        "  --pids N          at most N processes and threads (pids.max)\n" \
        "  --io-read-bps DEV=RATE\n" \
        "                    read at most RATE bytes/s, like 50M, from DEV: a block\n" \
        "                    device or any path on one, on the server (repeatable)\n" \
        "  --io-write-bps DEV=RATE\n" \
        "                    the same for writes\n" \
        "  --isolate LIST    any of pid,net,tmp (or all): own PID namespace, network\n" \
        "                    with only loopback, private /tmp\n" \
        "  -h, --help        show this help\n" \
        "\n" \
        "Sizes and rates take K, M, G, T (powers of 1024). Without a limit the\n" \
        "server's policy default applies; above your bound is 'permission denied'.\n"

static const char *const command_names[_CLI_COMMAND_MAX] = {
        [CLI_COMMAND_NONE] = "",
        [CLI_COMMAND_START] = "start",
        [CLI_COMMAND_RUN] = "run",
        [CLI_COMMAND_STATUS] = "status",
        [CLI_COMMAND_LIST] = "list",
        [CLI_COMMAND_LOGS] = "logs",
        [CLI_COMMAND_STOP] = "stop",
        [CLI_COMMAND_WAIT] = "wait",
};

const char *cli_command_to_string(CliCommand c) {
        if (c < 0 || c >= _CLI_COMMAND_MAX)
                return NULL;
        return command_names[c];
}

CliCommand cli_command_from_string(const char *s) {
        for (CliCommand c = CLI_COMMAND_START; c < _CLI_COMMAND_MAX; c++)
                if (strcmp(s, command_names[c]) == 0)
                        return c;
        return CLI_COMMAND_NONE;
}

int cli_parse_uint64(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        *ret = v;
        return 0;
}

int cli_parse_seconds(const char *s, uint64_t *ret_usec) {
        const uint64_t max_seconds = 100ULL * 366 * 24 * 3600;
        uint64_t sec = 0, frac = 0;
        const char *p = s;
        unsigned n_int = 0, n_frac = 0;

        if (!s)
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++, n_int++) {
                sec = sec * 10 + (uint64_t) (*p - '0');
                if (sec > max_seconds)
                        return -ERANGE;
        }
        if (*p == '.') {
                p++;
                for (; *p >= '0' && *p <= '9'; p++, n_frac++) {
                        if (n_frac >= 6)
                                return -EINVAL;
                        frac = frac * 10 + (uint64_t) (*p - '0');
                }
                if (n_frac == 0)
                        return -EINVAL;
        }
        if (*p != '\0' || n_int == 0)
                return -EINVAL;
        for (unsigned i = n_frac; i < 6; i++)
                frac *= 10;
        *ret_usec = sec * 1000000 + frac;
        return 0;
}

static const char usage_global[] =
        "Usage: jwctl [OPTIONS] COMMAND [ARGS...]\n"
        "\n"
        "Run and control jobs on a jobworkerd server.\n"
        "\n"
        "Commands:\n"
        "  start [--env K=V]... [--cwd DIR] [LIMITS] -- CMD [ARG...]\n"
        "                        start a job, print its id\n"
        "  run [--env K=V]... [--cwd DIR] [LIMITS] -- CMD [ARG...]\n"
        "                        start a job, copy its output, exit with its code\n"
        "                        (LIMITS: --cpu --memory --pids --io-read-bps\n"
        "                        --io-write-bps --isolate; see 'jwctl start --help')\n"
        "  status [--json] JOB   show a job's status\n"
        "  list [--json] [--running]\n"
        "                        list the jobs you may see\n"
        "  logs [-f|--follow] [--stdout|--stderr] [--offset N] JOB\n"
        "                        write a job's output\n"
        "  stop [--grace SECONDS] JOB\n"
        "                        stop a running job\n"
        "  wait JOB              wait for a job to end, exit with its code\n"
        "\n"
        "Options (before or after the command):\n"
        "  --server HOST:PORT    the server (env JWCTL_SERVER, config 'server')\n"
        "  --cert FILE           client certificate (env JWCTL_CERT, config 'cert')\n"
        "  --key FILE            client private key (env JWCTL_KEY, config 'key')\n"
        "  --ca FILE             CA of the server (env JWCTL_CA, config 'ca')\n"
        "  --timeout SECONDS     connect and unary-call timeout (default 10)\n"
        "  -h, --help            show help (also 'jwctl help COMMAND')\n"
        "  --version             show the version\n"
        "\n"
        "JOB is a job id or a unique prefix of one (at least 8 characters).\n"
        "Config file: $XDG_CONFIG_HOME/jwctl/config (default ~/.config/jwctl/config),\n"
        "lines 'key = value'. Exit status: 0 success, 1 the server refused or failed\n"
        "the request, 2 usage error, 3 could not connect or TLS failed; run and wait\n"
        "exit with the job's exit code (128+N if killed by signal N). See jwctl(1).\n";

static const char *const usage_command[_CLI_COMMAND_MAX] = {
        [CLI_COMMAND_START] =
                "Usage: jwctl [OPTIONS] start [--env KEY=VALUE]... [--cwd DIR] [LIMITS] [--] CMD [ARG...]\n"
                "\n"
                "Start CMD on the server and print the new job's id on standard output.\n"
                "The first word that is not an option starts the command; words after it,\n"
                "even those starting with '-', are its arguments. PATH is searched.\n"
                "\n"
                JOB_OPTIONS_HELP,
        [CLI_COMMAND_RUN] =
                "Usage: jwctl [OPTIONS] run [--env KEY=VALUE]... [--cwd DIR] [LIMITS] [--] CMD [ARG...]\n"
                "\n"
                "Start CMD, copy its standard output and error to ours while it runs and\n"
                "exit with its exit code (128+N if it was killed by signal N).\n"
                "Ctrl-C stops the job (SIGTERM, then SIGKILL after the server's grace\n"
                "period) and exits with 130.\n"
                "\n"
                JOB_OPTIONS_HELP,
        [CLI_COMMAND_STATUS] =
                "Usage: jwctl [OPTIONS] status [--json] JOB\n"
                "\n"
                "Show the state of a job: running, exited (with its code), killed (with the\n"
                "signal) or lost; its command, owner, pid, times and output sizes.\n"
                "\n"
                "  --json       print one JSON object (field names in jwctl(1))\n"
                "  -h, --help   show this help\n",
        [CLI_COMMAND_LIST] =
                "Usage: jwctl [OPTIONS] list [--json] [--running]\n"
                "\n"
                "List the jobs you may see, oldest first.\n"
                "\n"
                "  --json       print a JSON array of objects (as status --json)\n"
                "  --running    only running jobs\n"
                "  -h, --help   show this help\n",
        [CLI_COMMAND_LOGS] =
                "Usage: jwctl [OPTIONS] logs [-f|--follow] [--stdout|--stderr] [--offset N] JOB\n"
                "\n"
                "Write the job's standard output to ours and its standard error to ours,\n"
                "byte for byte.\n"
                "\n"
                "  -f, --follow   keep streaming until the job ends\n"
                "  --stdout       only the job's standard output\n"
                "  --stderr       only the job's standard error\n"
                "  --offset N     skip the first N bytes of the selected output (in the\n"
                "                 order it was captured), to resume an earlier transfer\n"
                "  -h, --help     show this help\n",
        [CLI_COMMAND_STOP] =
                "Usage: jwctl [OPTIONS] stop [--grace SECONDS] JOB\n"
                "\n"
                "Stop a running job: SIGTERM, then SIGKILL to all its processes after the\n"
                "grace period.\n"
                "\n"
                "  --grace SECONDS   time between SIGTERM and SIGKILL (default: the server's)\n"
                "  -h, --help        show this help\n",
        [CLI_COMMAND_WAIT] =
                "Usage: jwctl [OPTIONS] wait JOB\n"
                "\n"
                "Wait until the job ends and exit with its exit code (128+N if it was\n"
                "killed by signal N). Ctrl-C stops waiting (the job keeps running).\n"
                "\n"
                "  -h, --help   show this help\n",
};

const char *cli_usage(CliCommand c) {
        if (c <= CLI_COMMAND_NONE || c >= _CLI_COMMAND_MAX)
                return usage_global;
        return usage_command[c];
}

void cli_args_done(CliArgs *a) {
        if (!a)
                return;
        free(a->env);
        a->env = NULL;
        a->n_env = 0;
        free(a->cmd);
        a->cmd = NULL;
        a->n_cmd = 0;
        for (size_t i = 0; i < a->n_io; i++)
                free(a->io[i].device);
        free(a->io);
        a->io = NULL;
        a->n_io = 0;
}

typedef struct Parser {
        int argc;
        char *const *argv;
        int i;              /* index of the word being looked at */
        CliArgs *a;
        char *error;
} Parser;

static const char *see_help(const Parser *p) {
        switch (p->a->command) {
        case CLI_COMMAND_START: return " (see 'jwctl start --help')";
        case CLI_COMMAND_RUN: return " (see 'jwctl run --help')";
        case CLI_COMMAND_STATUS: return " (see 'jwctl status --help')";
        case CLI_COMMAND_LIST: return " (see 'jwctl list --help')";
        case CLI_COMMAND_LOGS: return " (see 'jwctl logs --help')";
        case CLI_COMMAND_STOP: return " (see 'jwctl stop --help')";
        case CLI_COMMAND_WAIT: return " (see 'jwctl wait --help')";
        default: return " (see 'jwctl --help')";
        }
}

typedef enum OptId {
        OPT_HELP,
        OPT_VERSION,
        OPT_SERVER,
        OPT_CERT,
        OPT_KEY,
        OPT_CA,
        OPT_TIMEOUT,
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
} OptId;

typedef struct OptDef {
        const char *name;   /* long name without "--" */
        char short_name;    /* 0: none */
        bool has_arg;
        OptId id;
        unsigned commands;  /* bit mask of CliCommand; 0 = global */
} OptDef;

#define CMD_BIT(c) (1u << (c))

static const OptDef options[] = {
        { "help", 'h', false, OPT_HELP, 0 },
        { "version", 0, false, OPT_VERSION, 0 },
        { "server", 0, true, OPT_SERVER, 0 },
        { "cert", 0, true, OPT_CERT, 0 },
        { "key", 0, true, OPT_KEY, 0 },
        { "ca", 0, true, OPT_CA, 0 },
        { "timeout", 0, true, OPT_TIMEOUT, 0 },
        { "env", 0, true, OPT_ENV, CMD_BIT(CLI_COMMAND_START) | CMD_BIT(CLI_COMMAND_RUN) },
        { "cwd", 0, true, OPT_CWD, CMD_BIT(CLI_COMMAND_START) | CMD_BIT(CLI_COMMAND_RUN) },
        { "json", 0, false, OPT_JSON, CMD_BIT(CLI_COMMAND_STATUS) | CMD_BIT(CLI_COMMAND_LIST) },
        { "running", 0, false, OPT_RUNNING, CMD_BIT(CLI_COMMAND_LIST) },
        { "follow", 'f', false, OPT_FOLLOW, CMD_BIT(CLI_COMMAND_LOGS) },
        { "stdout", 0, false, OPT_STDOUT, CMD_BIT(CLI_COMMAND_LOGS) },
        { "stderr", 0, false, OPT_STDERR, CMD_BIT(CLI_COMMAND_LOGS) },
        { "offset", 0, true, OPT_OFFSET, CMD_BIT(CLI_COMMAND_LOGS) },
        { "grace", 0, true, OPT_GRACE, CMD_BIT(CLI_COMMAND_STOP) },
        { "cpu", 0, true, OPT_CPU, CMD_BIT(CLI_COMMAND_START) | CMD_BIT(CLI_COMMAND_RUN) },
        { "memory", 0, true, OPT_MEMORY, CMD_BIT(CLI_COMMAND_START) | CMD_BIT(CLI_COMMAND_RUN) },
        { "pids", 0, true, OPT_PIDS, CMD_BIT(CLI_COMMAND_START) | CMD_BIT(CLI_COMMAND_RUN) },
        { "io-read-bps", 0, true, OPT_IO_READ, CMD_BIT(CLI_COMMAND_START) | CMD_BIT(CLI_COMMAND_RUN) },
        { "io-write-bps", 0, true, OPT_IO_WRITE, CMD_BIT(CLI_COMMAND_START) | CMD_BIT(CLI_COMMAND_RUN) },
        { "isolate", 0, true, OPT_ISOLATE, CMD_BIT(CLI_COMMAND_START) | CMD_BIT(CLI_COMMAND_RUN) },
};

static bool option_applies(const Parser *p, const OptDef *o) {
        return o->commands == 0 || (o->commands & CMD_BIT(p->a->command));
}

static const char *command_label(const Parser *p) {
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
        r = limits_parse_size(eq + 1, &rate);
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

/* Applies one option. Returns 1 if parsing should stop (help), 0, or < 0. */
static int apply_option(Parser *p, const OptDef *o, const char *shown, const char *value) {
        CliArgs *a = p->a;
        uint64_t u;
        int r;

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
                r = cli_parse_seconds(value, &u);
                if (r < 0 || u == 0)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a number of seconds greater than 0, like 10 or 2.5",
                                    value, shown);
                a->timeout_set = true;
                a->timeout_usec = u;
                return 0;
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
                r = cli_parse_uint64(value, &u);
                if (r == -ERANGE)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': too large", value, shown);
                if (r < 0)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a number of bytes (0 or more)", value, shown);
                a->offset = u;
                return 0;
        case OPT_GRACE:
                r = cli_parse_seconds(value, &u);
                if (r < 0)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a number of seconds (0 or more), like 5 or 0.5",
                                    value, shown);
                a->grace_set = true;
                a->grace_ms = (u + 999) / 1000;
                return 0;
        case OPT_CPU: {
                uint32_t m;

                r = limits_parse_cpu(value, &m);
                if (r < 0 || m < LIMITS_CPU_MILLIS_MIN)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a number of CPUs from 0.01 to %u, like 0.5 or 2",
                                    value, shown, LIMITS_CPU_MILLIS_MAX / 1000);
                a->cpu_millis = m;
                return 0;
        }
        case OPT_MEMORY:
                r = limits_parse_size(value, &u);
                if (r < 0 || u == 0)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a size greater than 0, like 256M or 2G",
                                    value, shown);
                a->memory_max = u;
                return 0;
        case OPT_PIDS:
                r = cli_parse_uint64(value, &u);
                if (r < 0 || u == 0 || u > LIMITS_PIDS_MAX)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a number of processes from 1 to %u",
                                    value, shown, LIMITS_PIDS_MAX);
                a->pids_max = u;
                return 0;
        case OPT_IO_READ:
        case OPT_IO_WRITE:
                return add_io(p, shown, value, o->id == OPT_IO_WRITE);
        case OPT_ISOLATE:
                return add_isolate(p, shown, value);
        }
        assert(!"unhandled option");
        return -EINVAL;
}

static int parse_long(Parser *p) {
        const char *word = p->argv[p->i];
        const char *name = word + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t) (eq - name) : strlen(name);
        const char *value = NULL;

        for (size_t k = 0; k < ELEMENTSOF(options); k++) {
                const OptDef *o = &options[k];

                if (strlen(o->name) != len || strncmp(o->name, name, len) != 0)
                        continue;
                if (!option_applies(p, o))
                        break;

                if (o->has_arg) {
                        if (eq)
                                value = eq + 1;
                        else if (p->i + 1 < p->argc)
                                value = p->argv[++p->i];
                        else
                                return replace_message(&p->error, -EINVAL, "option '--%s' needs a value%s", o->name, see_help(p));
                } else if (eq)
                        return replace_message(&p->error, -EINVAL, "option '--%s' takes no value", o->name);

                char shown[64];
                snprintf(shown, sizeof shown, "--%s", o->name);
                return apply_option(p, o, shown, value);
        }

        if (p->a->command == CLI_COMMAND_NONE)
                return replace_message(&p->error, -EINVAL, "unknown option '%.*s'%s", (int) (len + 2), word, see_help(p));
        return replace_message(&p->error, -EINVAL, "unknown option '%.*s' for '%s'%s", (int) (len + 2), word, command_label(p), see_help(p));
}

static int parse_short(Parser *p) {
        const char *word = p->argv[p->i];

        for (const char *c = word + 1; *c; c++) {
                const OptDef *o = NULL;

                for (size_t k = 0; k < ELEMENTSOF(options); k++)
                        if (options[k].short_name == *c && option_applies(p, &options[k])) {
                                o = &options[k];
                                break;
                        }
                if (!o) {
                        if (p->a->command == CLI_COMMAND_NONE)
                                return replace_message(&p->error, -EINVAL, "unknown option '-%c'%s", *c, see_help(p));
                        return replace_message(&p->error, -EINVAL, "unknown option '-%c' for '%s'%s", *c, command_label(p), see_help(p));
                }
                /* No short option takes a value today. */
                assert(!o->has_arg);

                char shown[3] = { '-', *c, 0 };
                int r = apply_option(p, o, shown, NULL);
                if (r != 0)
                        return r;
        }
        return 0;
}

static bool is_job_char(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-';
}

static int set_job(Parser *p, const char *word) {
        CliArgs *a = p->a;
        size_t n = strlen(word);

        if (a->job)
                return replace_message(&p->error, -EINVAL, "unexpected argument '%s': '%s' takes one JOB%s", word, command_label(p), see_help(p));
        for (const char *c = word; *c; c++)
                if (!is_job_char(*c))
                        return replace_message(&p->error, -EINVAL, "'%s' is not a job id: job ids are hexadecimal with dashes, like 0b5f3a1c-…", word);
        if (n < 8)
                return replace_message(&p->error, -EINVAL, "job id prefix '%s' is too short: give at least 8 characters", word);
        if (n > 36)
                return replace_message(&p->error, -EINVAL, "'%s' is not a job id: too long", word);
        a->job = word;
        return 0;
}

static int take_command(Parser *p, int from) {
        CliArgs *a = p->a;
        size_t n = (size_t) (p->argc - from);

        a->cmd = calloc(n + 1, sizeof(*a->cmd));
        if (!a->cmd)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++)
                a->cmd[k] = p->argv[from + (int) k];
        a->n_cmd = n;
        return 0;
}

static int parse(Parser *p) {
        CliArgs *a = p->a;
        bool dashdash = false;
        int r;

        for (p->i = 1; p->i < p->argc; p->i++) {
                const char *word = p->argv[p->i];

                if (!dashdash && strcmp(word, "--") == 0) {
                        if (a->command == CLI_COMMAND_NONE)
                                return replace_message(&p->error, -EINVAL, "missing command before '--'%s", see_help(p));
                        if (a->command == CLI_COMMAND_START || a->command == CLI_COMMAND_RUN)
                                return take_command(p, p->i + 1);
                        dashdash = true;
                        continue;
                }
                if (!dashdash && word[0] == '-' && word[1] == '-') {
                        r = parse_long(p);
                        if (r != 0)
                                return r;
                        continue;
                }
                if (!dashdash && word[0] == '-' && word[1] != '\0') {
                        r = parse_short(p);
                        if (r != 0)
                                return r;
                        continue;
                }

                /* A word that is not an option. */
                if (a->command == CLI_COMMAND_NONE) {
                        if (strcmp(word, "help") == 0) {
                                a->help = true;
                                if (p->i + 1 < p->argc) {
                                        const char *w = p->argv[p->i + 1];
                                        a->command = cli_command_from_string(w);
                                        if (a->command == CLI_COMMAND_NONE)
                                                return replace_message(&p->error, -EINVAL, "unknown command '%s'%s", w, see_help(p));
                                }
                                return 1;
                        }
                        a->command = cli_command_from_string(word);
                        if (a->command == CLI_COMMAND_NONE)
                                return replace_message(&p->error, -EINVAL, "unknown command '%s'%s", word, see_help(p));
                        continue;
                }
                switch (a->command) {
                case CLI_COMMAND_START:
                case CLI_COMMAND_RUN:
                        return take_command(p, p->i);
                case CLI_COMMAND_LIST:
                        return replace_message(&p->error, -EINVAL, "unexpected argument '%s': 'list' takes no arguments%s", word, see_help(p));
                default:
                        r = set_job(p, word);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int validate(Parser *p) {
        CliArgs *a = p->a;

        if (a->help || a->version)
                return 0;
        switch (a->command) {
        case CLI_COMMAND_NONE:
                return replace_message(&p->error, -EINVAL, "missing command%s", see_help(p));
        case CLI_COMMAND_START:
        case CLI_COMMAND_RUN:
                if (a->n_cmd == 0 || !a->cmd[0][0])
                        return replace_message(&p->error, -EINVAL, "missing the command to run, as in 'jwctl %s -- CMD [ARG...]'", command_label(p));
                return 0;
        case CLI_COMMAND_STATUS:
        case CLI_COMMAND_LOGS:
        case CLI_COMMAND_STOP:
        case CLI_COMMAND_WAIT:
                if (!a->job)
                        return replace_message(&p->error, -EINVAL, "missing JOB: 'jwctl %s' needs a job id%s", command_label(p), see_help(p));
                return 0;
        default:
                return 0;
        }
}

int cli_args_parse(int argc, char *const *argv, CliArgs *ret, char **ret_error) {
        CliArgs a = { .stream = CLI_STREAM_BOTH };
        Parser p = { .argc = argc, .argv = argv, .a = &a };
        int r;

        assert(argc >= 0);
        assert(ret);
        assert(ret_error);

        r = parse(&p);
        if (r >= 0)
                r = validate(&p);
        if (r < 0) {
                cli_args_done(&a);
                if (r == -EINVAL)
                        *ret_error = TAKE_PTR(p.error);
                free(p.error);
                return r;
        }
        *ret = a;
        return 0;
}
