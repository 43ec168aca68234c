/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * jwctl's command line, parsed by a pure function: argv in, a CliArgs (or a
 * one-line error message) out. No getopt (it keeps global state), no I/O, no
 * environment: what the environment and the config file add is resolved
 * later (settings.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum CliCommand {
        CLI_COMMAND_NONE,    /* only global options (--help / --version) */
        CLI_COMMAND_START,
        CLI_COMMAND_RUN,
        CLI_COMMAND_STATUS,
        CLI_COMMAND_LIST,
        CLI_COMMAND_LOGS,
        CLI_COMMAND_STOP,
        CLI_COMMAND_WAIT,
        CLI_COMMAND_KILL,
        _CLI_COMMAND_MAX,
} CliCommand;

typedef enum CliStream {
        CLI_STREAM_BOTH,
        CLI_STREAM_STDOUT,
        CLI_STREAM_STDERR,
} CliStream;

/* --isolate values, a bit mask. */
enum {
        CLI_ISOLATE_PID = 1 << 0,
        CLI_ISOLATE_NET = 1 << 1,
        CLI_ISOLATE_TMP = 1 << 2,
};

/* One device of --io-read-bps / --io-write-bps (both options for the same
 * DEV make one entry). */
typedef struct CliIoLimit {
        char *device;              /* owned */
        uint64_t read_bps;         /* 0: not given */
        uint64_t write_bps;
} CliIoLimit;

#define CLI_IO_MAX 16

/* Default for --timeout (connect + handshake, and every unary call). */
#define CLI_DEFAULT_TIMEOUT_USEC (10ULL * 1000 * 1000)
/* Default for --reconnect-timeout (JWCTL_RECONNECT_TIMEOUT, config
 * reconnect-timeout): how long a follower tries to get its connection back. */
#define CLI_RECONNECT_DEFAULT_USEC (5ULL * 60 * 1000 * 1000)
/* Default for --keepalive (JWCTL_KEEPALIVE, config keepalive): HTTP/2 pings
 * this often while a call is open, so a quiet follow survives NATs and load
 * balancers and a dead server is noticed. */
#define CLI_KEEPALIVE_DEFAULT_USEC (30ULL * 1000 * 1000)
/* Longest wait for a ping's answer (less with a shorter --keepalive). */
#define CLI_KEEPALIVE_TIMEOUT_MAX_USEC (20ULL * 1000 * 1000)

typedef struct CliArgs {
        CliCommand command;
        bool help;                 /* -h/--help/help: show help for `command` */
        bool version;              /* --version */

        /* Global options; NULL/false when not given on the command line. */
        const char *server;
        const char *cert;
        const char *key;
        const char *ca;
        bool timeout_set;
        uint64_t timeout_usec;
        bool reconnect_set;        /* --reconnect-timeout: bound of one outage of a follower, 0 = off */
        uint64_t reconnect_usec;
        bool keepalive_set;        /* --keepalive: ping interval while a call is open, 0 = no pings */
        uint64_t keepalive_usec;

        /* start, run */
        const char **env;          /* "KEY=VALUE", n_env entries (array owned, strings point into argv) */
        size_t n_env;
        const char *cwd;
        const char **cmd;          /* CMD ARG..., n_cmd entries, NULL-terminated (array owned, strings in argv) */
        size_t n_cmd;
        uint32_t cpu_millis;       /* --cpu, thousandths of a CPU; 0: not given */
        uint64_t memory_max;       /* --memory, bytes; 0: not given */
        uint64_t pids_max;         /* --pids; 0: not given */
        CliIoLimit *io;            /* --io-read-bps / --io-write-bps (array owned) */
        size_t n_io;
        unsigned isolate;          /* --isolate, CLI_ISOLATE_* */
        uint64_t max_runtime_ms;   /* --max-runtime; 0: not given */
        bool no_stdin;             /* run -n/--no-stdin: the job's stdin is /dev/null */
        bool tty;                  /* run -t/--tty: the job on a terminal, ours in raw mode */

        /* start, run: the job's name and labels; list: filters on them.
         * Checked with shared/job-name.h. */
        const char *name;          /* --name; NULL: not given */
        const char **labels;       /* --label KEY=VALUE, n_labels (array owned, strings in argv) */
        size_t n_labels;

        /* list */
        unsigned states;           /* --state: bit N = the API's JobState N; 0: any */
        const char *owner;         /* --owner; NULL: any */

        /* status, list */
        bool json;
        bool running;              /* list --running */

        /* logs */
        bool follow;
        CliStream stream;
        uint64_t offset;

        /* stop */
        bool grace_set;
        uint64_t grace_ms;

        /* kill */
        int signal;                /* -s/--signal, 1..64; 0: not given (TERM) */
        bool signal_all;           /* --all: every process of the job */
        bool signal_list;          /* kill -l/--list: names and numbers; job: the one to translate, if any */

        /* status, logs, stop, wait, kill */
        const char *job;

        /* Fan-out over several hosts (cli/fanout.h): --hosts, --hosts-file,
         * --parallel, --no-prefix, --group-output, --fail-fast, --save. */
        struct {
                const char **hosts;        /* --hosts values (array owned, strings in argv) */
                size_t n_hosts;
                const char *hosts_file;
                unsigned parallel;         /* 0: CLI_FANOUT_PARALLEL_DEFAULT */
                bool no_prefix;
                bool group_output;
                bool fail_fast;
                const char *save;          /* run/start --save NAME */
        } fanout;
} CliArgs;

/* --state words: the API's states, and "finished" for every state but
 * running. Bit N of CliArgs.states is the API's JobState N. */
#define CLI_STATE_RUNNING (1u << 1)
#define CLI_STATE_FINISHED ((1u << 2) | (1u << 3) | (1u << 4) | (1u << 5))

/* Whether a command line asks for a fan-out: hosts named, a saved run or a
 * HOST:ID job, or a fan-out-only option. */
bool cli_args_fans_out(const CliArgs *a);
/* Whether it names its hosts itself (--hosts, --hosts-file, @RUN, HOST:ID):
 * then no default server is needed. */
bool cli_args_names_hosts(const CliArgs *a);

/* Parses argv[1..argc-1]. On success fills *ret (strings point into argv,
 * which must outlive it; release with cli_args_done()) and returns 0. On a
 * usage error returns -EINVAL and sets *ret_error to a malloc()ed one-line
 * message without the "jwctl: " prefix (e.g. "unknown option '--foo' for
 * 'status'"); -ENOMEM if out of memory. */
int cli_args_parse(int argc, char *const *argv, CliArgs *ret, char **ret_error);

/* Frees the arrays of a parsed CliArgs; safe to call twice. */
void cli_args_done(CliArgs *a);

/* A --timeout or --grace: the DURATION of shared/parse-util.h (a bare
 * number is seconds: "2", "0.5", "500ms", "2min"), to microseconds; -ERANGE
 * above 100 years, which no deadline needs. */
int cli_parse_duration(const char *s, uint64_t *ret_usec);
