/* SPDX-License-Identifier: MIT */
/*
 * The words jwctl shows the user about its own command line: the command
 * names and the help texts (see usage.h).
 *
 * The one idea: the texts are static strings, one per command, so help is
 * printed without allocating and a test can compare them whole.
 */

#include <string.h>

#include "cli/usage.h"

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
        "  --max-runtime DURATION\n" \
        "                    stop the job when it has run this long, like 30m or 2h\n" \
        "                    (SIGTERM, then SIGKILL after the server's grace)\n" \
        "  --name NAME       name the job: 1-64 of A-Z a-z 0-9 . _ -, beginning with a\n" \
        "                    letter or digit, not only hex digits and '-'; unique among\n" \
        "                    your running jobs; other commands take it as JOB\n" \
        "  --label KEY=VALUE label the job (repeatable, at most 16; KEY 1-63 and VALUE\n" \
        "                    0-63 of A-Z a-z 0-9 . _ -)\n" \
        "  -h, --help        show this help\n" \
        "\n" \
        "Sizes and rates take K, M, G, T (powers of 1024) and fractions, like 1.5G.\n" \
        "Without a limit the server's policy default applies; above your bound is\n" \
        "'permission denied'.\n"

/* The fan-out options every command takes (cli/fanout.h). */
#define FANOUT_OPTIONS_HELP \
        "\n" \
        "Across hosts (see FAN-OUT in jwctl(1)):\n" \
        "  --hosts LIST      names from the config, HOST:PORT, @GROUP, ranges like\n" \
        "                    web[01-20], comma-separated (repeatable)\n" \
        "  --hosts-file FILE one LIST per line\n" \
        "  --parallel N      at most N hosts at once (default 64)\n" \
        "  --no-prefix       no host name before each line\n" \
        "  --group-output    each host's output together at the end, identical\n" \
        "                    outputs folded\n" \
        "  --fail-fast       stop every host at the first failure\n" \
        "JOB may also be HOST:ID (one host) or @RUN (a run saved with --save).\n"

static const char *const command_names[_CLI_COMMAND_MAX] = {
        [CLI_COMMAND_NONE] = "",
        [CLI_COMMAND_START] = "start",
        [CLI_COMMAND_RUN] = "run",
        [CLI_COMMAND_STATUS] = "status",
        [CLI_COMMAND_LIST] = "list",
        [CLI_COMMAND_LOGS] = "logs",
        [CLI_COMMAND_STOP] = "stop",
        [CLI_COMMAND_WAIT] = "wait",
        [CLI_COMMAND_KILL] = "kill",
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

static const char usage_global[] =
        "Usage: jwctl [OPTIONS] COMMAND [ARGS...]\n"
        "\n"
        "Run and control jobs on a jobworkerd server.\n"
        "\n"
        "Commands:\n"
        "  start [--env K=V]... [--cwd DIR] [LIMITS] -- CMD [ARG...]\n"
        "                        start a job, print its id\n"
        "  run [-n|-t] [--env K=V]... [--cwd DIR] [LIMITS] -- CMD [ARG...]\n"
        "                        start a job, copy its output, exit with its code\n"
        "                        (and our stdin to its stdin, unless -n)\n"
        "                        (LIMITS: --cpu --memory --pids --io-read-bps\n"
        "                        --io-write-bps --isolate --max-runtime;\n"
        "                        see 'jwctl start --help')\n"
        "  status [--json] JOB   show a job's status\n"
        "  list [--json] [--running] [--state S] [--owner U] [--name N] [--label K=V]...\n"
        "                        list the jobs you may see\n"
        "  logs [-f|--follow] [--stdout|--stderr] [--offset N] JOB\n"
        "                        write a job's output\n"
        "  stop [--grace DURATION] JOB\n"
        "                        stop a running job\n"
        "  wait JOB              wait for a job to end, exit with its code\n"
        "  kill [-s SIGNAL] [--all] JOB\n"
        "                        send a signal (default TERM) to a running job\n"
        "\n"
        "Options (before or after the command):\n"
        "  --server HOST:PORT    the server (env JWCTL_SERVER, config 'server')\n"
        "  --cert FILE           client certificate (env JWCTL_CERT, config 'cert')\n"
        "  --key FILE            client private key (env JWCTL_KEY, config 'key')\n"
        "  --ca FILE             CA of the server (env JWCTL_CA, config 'ca')\n"
        "  --timeout DURATION    connect and unary-call timeout (default 10s)\n"
        "  --reconnect-timeout DURATION\n"
        "                        how long run, wait and logs -f try to get a lost\n"
        "                        connection back (default 5min; 0: never; env\n"
        "                        JWCTL_RECONNECT_TIMEOUT, config 'reconnect-timeout')\n"
        "  --keepalive DURATION  HTTP/2 ping interval while a call is open, so a quiet\n"
        "                        follow survives NATs and a dead server is noticed\n"
        "                        (default 30s; 0: no pings; env JWCTL_KEEPALIVE,\n"
        "                        config 'keepalive')\n"
        "  -h, --help            show help (also 'jwctl help COMMAND')\n"
        "  --version             show the version\n"
        "\n"
        "Across hosts (before or after the command; see FAN-OUT in jwctl(1)):\n"
        "  --hosts LIST          config names, HOST:PORT, @GROUP, web[01-20]\n"
        "  --hosts-file FILE     --parallel N   --no-prefix   --group-output\n"
        "  --fail-fast           run|start --save NAME, then JOB = @NAME or HOST:ID\n"
        "                        exit status: 0 all succeeded, 3 a host unreachable,\n"
        "                        1 otherwise; a summary table on standard error\n"
        "\n"
        "JOB is a job id, a unique prefix of one (at least 8 characters), or a job\n"
        "name (your newest job of that name).\n"
        "Config file: $XDG_CONFIG_HOME/jwctl/config (default ~/.config/jwctl/config),\n"
        "lines 'key = value'. Exit status: 0 success, 1 the server refused or failed\n"
        "the request, 2 usage error, 3 could not connect or TLS failed; run and wait\n"
        "exit with the job's exit code (128+N if killed by signal N). DURATION is a\n"
        "number with an optional unit us ms s m h d (seconds without), like 2.5 or\n"
        "500ms. See jwctl(1).\n";

static const char *const usage_command[_CLI_COMMAND_MAX] = {
        [CLI_COMMAND_START] =
                "Usage: jwctl [OPTIONS] start [--env KEY=VALUE]... [--cwd DIR] [LIMITS] [--] CMD [ARG...]\n"
                "\n"
                "Start CMD on the server and print the new job's id on standard output.\n"
                "The first word that is not an option starts the command; words after it,\n"
                "even those starting with '-', are its arguments. PATH is searched.\n"
                "\n"
                JOB_OPTIONS_HELP
                "  --save NAME       remember which job each host started, for @NAME\n"
                FANOUT_OPTIONS_HELP,
        [CLI_COMMAND_RUN] =
                "Usage: jwctl [OPTIONS] run [-n|-t] [--env KEY=VALUE]... [--cwd DIR] [LIMITS] [--] CMD [ARG...]\n"
                "\n"
                "Start CMD, copy its standard output and error to ours while it runs and\n"
                "exit with its exit code (128+N if it was killed by signal N).\n"
                "Our standard input is copied to the job's, and closed at its end, unless\n"
                "it is a terminal or /dev/null (then the job's stdin is /dev/null).\n"
                "Ctrl-C stops the job (SIGTERM, then SIGKILL after the server's grace\n"
                "period) and exits with 130.\n"
                "\n"
                "  -n, --no-stdin    give the job /dev/null as stdin (ssh's -n): what\n"
                "                    'jwctl run' in a script with a pipe on stdin did before\n"
                "  -t, --tty         run the job on a terminal (jwctl run -t -- bash): our\n"
                "                    terminal in raw mode, Ctrl-C goes to the job as a key,\n"
                "                    window sizes follow; stdin must be a terminal\n"
                JOB_OPTIONS_HELP
                "  --save NAME       remember which job each host started, for @NAME\n"
                "  --json            across hosts: one JSON object per output line\n"
                FANOUT_OPTIONS_HELP,
        [CLI_COMMAND_STATUS] =
                "Usage: jwctl [OPTIONS] status [--json] JOB\n"
                "\n"
                "Show the state of a job: running, exited (with its code), killed (with the\n"
                "signal) or lost; its command, owner, pid, times and output sizes.\n"
                "\n"
                "  --json       print one JSON object (field names in jwctl(1))\n"
                "  -h, --help   show this help\n"
                FANOUT_OPTIONS_HELP,
        [CLI_COMMAND_LIST] =
                "Usage: jwctl [OPTIONS] list [--json] [--running] [--state STATES] [--owner USER]\n"
                "                           [--name NAME] [--label KEY=VALUE]...\n"
                "\n"
                "List the jobs you may see, oldest first. The server applies the filters;\n"
                "a job must pass all of them.\n"
                "\n"
                "  --json              print a JSON array of objects (as status --json)\n"
                "  --running           only running jobs (as --state running)\n"
                "  --state STATES      only jobs in one of these states, comma-separated:\n"
                "                      running exited killed lost ended, or finished (any\n"
                "                      but running)\n"
                "  --owner USER        only jobs USER started\n"
                "  --name NAME         only jobs named NAME\n"
                "  --label KEY=VALUE   only jobs with this label (repeatable: all of them)\n"
                "  -h, --help          show this help\n"
                FANOUT_OPTIONS_HELP,
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
                "  --json         across hosts: one JSON object per output line\n"
                "  -h, --help     show this help\n"
                FANOUT_OPTIONS_HELP,
        [CLI_COMMAND_STOP] =
                "Usage: jwctl [OPTIONS] stop [--grace DURATION] JOB\n"
                "\n"
                "Stop a running job: SIGTERM, then SIGKILL to all its processes after the\n"
                "grace period.\n"
                "\n"
                "  --grace DURATION  time between SIGTERM and SIGKILL (default: the server's)\n"
                "  -h, --help        show this help\n"
                FANOUT_OPTIONS_HELP,
        [CLI_COMMAND_WAIT] =
                "Usage: jwctl [OPTIONS] wait JOB\n"
                "\n"
                "Wait until the job ends and exit with its exit code (128+N if it was\n"
                "killed by signal N). Ctrl-C stops waiting (the job keeps running).\n"
                "\n"
                "  -h, --help   show this help\n"
                FANOUT_OPTIONS_HELP,
        [CLI_COMMAND_KILL] =
                "Usage: jwctl [OPTIONS] kill [-s SIGNAL] [--all] JOB\n"
                "       jwctl kill -l [SIGNAL]\n"
                "\n"
                "Send a signal to a running job's main process and print nothing, as\n"
                "kill(1) does. Unlike stop, nothing follows: the job ends, or not, as its\n"
                "processes make of the signal.\n"
                "\n"
                "  -s, --signal SIGNAL  a name in any case, with or without SIG (TERM,\n"
                "                       SIGUSR1, hup, RTMIN+2) or a number from 1 to 64\n"
                "                       (default TERM)\n"
                "  --all                every process of the job (its cgroup frozen while\n"
                "                       they are signalled, so none escapes by forking;\n"
                "                       without a cgroup its process group)\n"
                "  -l, --list           print every signal's number and name (with\n"
                "                       SIGNAL: its number, or a number's name); no server\n"
                "  -h, --help           show this help\n"
                FANOUT_OPTIONS_HELP,
};

const char *cli_usage(CliCommand c) {
        if (c <= CLI_COMMAND_NONE || c >= _CLI_COMMAND_MAX)
                return usage_global;
        return usage_command[c];
}
