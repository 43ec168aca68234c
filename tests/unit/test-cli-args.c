/* SPDX-License-Identifier: MIT */
/* jwctl's argument parser (src/cli/args.c): argv in, CliArgs or a message out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/args.h"
#include "cli/usage.h"

#define JOB "0123abcd-4567-4890-8abc-def012345678"

/* Parses a NULL-terminated list of words (argv[0] = "jwctl" is added). */
static int parse_words(CliArgs *a, char **error, const char *const *words) {
        char *argv[64] = { (char *) "jwctl" };
        int argc = 1;

        for (; words[argc - 1]; argc++) {
                assert_true(argc < 63);
                argv[argc] = (char *) words[argc - 1];
        }
        argv[argc] = NULL;
        *error = NULL;
        memset(a, 0x5a, sizeof *a); /* ret must be fully written on success */
        return cli_args_parse(argc, argv, a, error);
}
#define PARSE(a, err, ...) parse_words((a), (err), (const char *const[]) { __VA_ARGS__, NULL })

/* Expects a usage error whose message contains `needle`. */
#define EXPECT_ERROR(needle, ...)                                                       \
        do {                                                                            \
                CliArgs _a;                                                             \
                char *_e = NULL;                                                        \
                assert_int_equal(PARSE(&_a, &_e, __VA_ARGS__), -EINVAL);                \
                assert_non_null(_e);                                                    \
                if (!strstr(_e, (needle)))                                              \
                        fail_msg("error '%s' does not contain '%s'", _e, (needle));    \
                assert_null(strchr(_e, '\n'));                                          \
                free(_e);                                                               \
        } while (0)

static void test_no_arguments(void **state) {
        CliArgs a;
        char *e = NULL;
        char *argv[] = { (char *) "jwctl", NULL };

        assert_int_equal(cli_args_parse(1, argv, &a, &e), -EINVAL);
        assert_non_null(strstr(e, "missing command"));
        free(e);
}

static void test_help_and_version(void **state) {
        CliArgs a;
        char *e;

        assert_int_equal(PARSE(&a, &e, "--help"), 0);
        assert_true(a.help);
        assert_int_equal(a.command, CLI_COMMAND_NONE);
        cli_args_done(&a);

        assert_int_equal(PARSE(&a, &e, "-h"), 0);
        assert_true(a.help);
        cli_args_done(&a);

        assert_int_equal(PARSE(&a, &e, "--version"), 0);
        assert_true(a.version);
        assert_false(a.help);
        cli_args_done(&a);

        assert_int_equal(PARSE(&a, &e, "help"), 0);
        assert_true(a.help);
        assert_int_equal(a.command, CLI_COMMAND_NONE);
        cli_args_done(&a);

        assert_int_equal(PARSE(&a, &e, "help", "logs"), 0);
        assert_true(a.help);
        assert_int_equal(a.command, CLI_COMMAND_LOGS);
        cli_args_done(&a);

        /* help of each command, even without its required arguments */
        for (CliCommand c = CLI_COMMAND_START; c < _CLI_COMMAND_MAX; c++) {
                assert_int_equal(PARSE(&a, &e, cli_command_to_string(c), "--help"), 0);
                assert_true(a.help);
                assert_int_equal(a.command, c);
                assert_non_null(strstr(cli_usage(c), cli_command_to_string(c)));
                cli_args_done(&a);
                assert_int_equal(PARSE(&a, &e, cli_command_to_string(c), "-h"), 0);
                assert_true(a.help);
                cli_args_done(&a);
        }
        /* -h wins over a missing JOB and over later junk */
        assert_int_equal(PARSE(&a, &e, "stop", "-h", "--bogus"), 0);
        assert_true(a.help);
        cli_args_done(&a);
        /* short flags cluster: -fh */
        assert_int_equal(PARSE(&a, &e, "logs", "-fh"), 0);
        assert_true(a.help);
        assert_true(a.follow);
        cli_args_done(&a);

        EXPECT_ERROR("unknown command 'frob'", "help", "frob");
        assert_non_null(strstr(cli_usage(CLI_COMMAND_NONE), "Usage: jwctl"));
}

static void test_start_dashdash(void **state) {
        CliArgs a;
        char *e;

        assert_int_equal(PARSE(&a, &e, "start", "--", "ls", "-l", "/tmp"), 0);
        assert_int_equal(a.command, CLI_COMMAND_START);
        assert_int_equal(a.n_cmd, 3);
        assert_string_equal(a.cmd[0], "ls");
        assert_string_equal(a.cmd[1], "-l");
        assert_string_equal(a.cmd[2], "/tmp");
        assert_null(a.cmd[3]);
        assert_int_equal(a.n_env, 0);
        assert_null(a.cwd);
        cli_args_done(&a);
        cli_args_done(&a); /* twice is fine */

        /* after "--" everything belongs to the command, even options of ours */
        assert_int_equal(PARSE(&a, &e, "run", "--env", "A=1", "--", "-weird", "--env", "B=2", "-h", "--", "--help"), 0);
        assert_int_equal(a.command, CLI_COMMAND_RUN);
        assert_false(a.help);
        assert_int_equal(a.n_env, 1);
        assert_string_equal(a.env[0], "A=1");
        assert_int_equal(a.n_cmd, 6);
        assert_string_equal(a.cmd[0], "-weird");
        assert_string_equal(a.cmd[1], "--env");
        assert_string_equal(a.cmd[2], "B=2");
        assert_string_equal(a.cmd[3], "-h");
        assert_string_equal(a.cmd[4], "--");
        assert_string_equal(a.cmd[5], "--help");
        cli_args_done(&a);

        /* without "--" the first non-option word starts the command */
        assert_int_equal(PARSE(&a, &e, "start", "--cwd", "/srv", "sh", "-c", "echo --env x", "--cwd", "y"), 0);
        assert_string_equal(a.cwd, "/srv");
        assert_int_equal(a.n_cmd, 5);
        assert_string_equal(a.cmd[0], "sh");
        assert_string_equal(a.cmd[3], "--cwd");
        cli_args_done(&a);

        /* a single "-" is an argument, not an option */
        assert_int_equal(PARSE(&a, &e, "start", "--", "cat", "-"), 0);
        assert_int_equal(a.n_cmd, 2);
        assert_string_equal(a.cmd[1], "-");
        cli_args_done(&a);

        EXPECT_ERROR("missing the command to run", "start");
        EXPECT_ERROR("missing the command to run", "run", "--env", "A=1", "--");
        EXPECT_ERROR("missing the command to run", "start", "--", "");
        EXPECT_ERROR("missing command before '--'", "--", "start", "ls");
}

static void test_env_and_cwd(void **state) {
        CliArgs a;
        char *e;

        assert_int_equal(PARSE(&a, &e, "start", "--env", "A=1", "--env=B=x=y", "--env", "C=", "--cwd=/tmp", "--", "env"), 0);
        assert_int_equal(a.n_env, 3);
        assert_string_equal(a.env[0], "A=1");
        assert_string_equal(a.env[1], "B=x=y");
        assert_string_equal(a.env[2], "C=");
        assert_string_equal(a.cwd, "/tmp");
        cli_args_done(&a);

        /* the last --cwd wins */
        assert_int_equal(PARSE(&a, &e, "run", "--cwd", "/a", "--cwd", "/b", "true"), 0);
        assert_string_equal(a.cwd, "/b");
        cli_args_done(&a);

        EXPECT_ERROR("expected KEY=VALUE", "start", "--env", "NOEQUALS", "--", "x");
        EXPECT_ERROR("expected KEY=VALUE", "start", "--env", "=value", "--", "x");
        EXPECT_ERROR("needs a value", "start", "--env");
        EXPECT_ERROR("needs a directory", "start", "--cwd", "", "x");
        EXPECT_ERROR("unknown option '--env' for 'status'", "status", "--env", "A=1", JOB);
}

static void test_limits(void **state) {
        CliArgs a;
        char *e;

        assert_int_equal(PARSE(&a, &e, "start", "--cpu", "0.5", "--memory", "256M", "--pids", "64",
                               "--io-read-bps", "/dev/sda=50M", "--io-write-bps=/dev/sda=20M",
                               "--io-write-bps", "/srv/a=b=1G", "--isolate", "pid,net", "--isolate=tmp",
                               "--", "sh", "-c", "true"), 0);
        assert_int_equal(a.command, CLI_COMMAND_START);
        assert_int_equal(a.cpu_millis, 500);
        assert_int_equal(a.memory_max, 256ULL << 20);
        assert_int_equal(a.pids_max, 64);
        /* both options for /dev/sda make one entry; DEV ends at the last '=' */
        assert_int_equal(a.n_io, 2);
        assert_string_equal(a.io[0].device, "/dev/sda");
        assert_int_equal(a.io[0].read_bps, 50ULL << 20);
        assert_int_equal(a.io[0].write_bps, 20ULL << 20);
        assert_string_equal(a.io[1].device, "/srv/a=b");
        assert_int_equal(a.io[1].read_bps, 0);
        assert_int_equal(a.io[1].write_bps, 1ULL << 30);
        assert_int_equal(a.isolate, CLI_ISOLATE_PID | CLI_ISOLATE_NET | CLI_ISOLATE_TMP);
        assert_int_equal(a.n_cmd, 3);
        assert_string_equal(a.cmd[0], "sh");
        cli_args_done(&a);
        cli_args_done(&a); /* twice is safe */

        /* run takes them too; words after the command are the command's */
        assert_int_equal(PARSE(&a, &e, "run", "--isolate", "all", "--cpu=2", "prog", "--cpu", "3"), 0);
        assert_int_equal(a.isolate, CLI_ISOLATE_PID | CLI_ISOLATE_NET | CLI_ISOLATE_TMP);
        assert_int_equal(a.cpu_millis, 2000);
        assert_int_equal(a.n_cmd, 3);
        assert_string_equal(a.cmd[1], "--cpu");
        assert_int_equal(a.memory_max, 0);
        assert_int_equal(a.n_io, 0);
        cli_args_done(&a);

        /* none given: zero */
        assert_int_equal(PARSE(&a, &e, "start", "true"), 0);
        assert_int_equal(a.cpu_millis, 0);
        assert_int_equal(a.pids_max, 0);
        assert_int_equal(a.isolate, 0);
        assert_null(a.io);
        cli_args_done(&a);

        /* --max-runtime: the one duration grammar, whole ms rounded up */
        assert_int_equal(PARSE(&a, &e, "run", "--max-runtime", "30m", "true"), 0);
        assert_int_equal(a.max_runtime_ms, 30ull * 60 * 1000);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "start", "--max-runtime=90", "--", "true"), 0);
        assert_int_equal(a.max_runtime_ms, 90000);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "start", "--max-runtime", "1.5us", "true"), 0);
        assert_int_equal(a.max_runtime_ms, 1);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "start", "true"), 0);
        assert_int_equal(a.max_runtime_ms, 0);
        cli_args_done(&a);
        EXPECT_ERROR("invalid value '0' for '--max-runtime': expected a duration greater than 0", "start",
                     "--max-runtime", "0", "true");
        EXPECT_ERROR("invalid value '5x' for '--max-runtime'", "run", "--max-runtime", "5x", "true");
        EXPECT_ERROR("invalid value '3651d' for '--max-runtime'", "run", "--max-runtime", "3651d", "true");
        EXPECT_ERROR("unknown option '--max-runtime' for 'stop'", "stop", "--max-runtime", "1", JOB);

        /* run -n / --no-stdin: the job's stdin is /dev/null; start never forwards */
        assert_int_equal(PARSE(&a, &e, "run", "-n", "--", "cat"), 0);
        assert_true(a.no_stdin);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "run", "--no-stdin", "cat", "-n"), 0);
        assert_true(a.no_stdin);
        assert_string_equal(a.cmd[1], "-n"); /* the command's own -n */
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "run", "cat"), 0);
        assert_false(a.no_stdin);
        cli_args_done(&a);
        EXPECT_ERROR("'-n'", "start", "-n", "true");
        assert_int_equal(PARSE(&a, &e, "run", "-t", "--", "bash"), 0);
        assert_true(a.tty);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "run", "--tty", "bash"), 0);
        assert_true(a.tty);
        assert_false(a.no_stdin);
        cli_args_done(&a);
        EXPECT_ERROR("'-t'", "start", "-t", "bash");

        EXPECT_ERROR("invalid value '0' for '--cpu': expected a number of CPUs from 0.01 to 1024, like 0.5 or 2",
                     "start", "--cpu", "0", "true");
        EXPECT_ERROR("invalid value '50%' for '--cpu'", "start", "--cpu", "50%", "true");
        EXPECT_ERROR("invalid value '2000' for '--cpu'", "start", "--cpu", "2000", "true");
        EXPECT_ERROR("invalid value '0.001' for '--cpu'", "start", "--cpu", "0.001", "true");
        EXPECT_ERROR("invalid value '12Q' for '--memory': expected a size greater than 0, like 256M or 2G",
                     "run", "--memory", "12Q", "true");
        EXPECT_ERROR("invalid value '0' for '--memory'", "run", "--memory", "0", "true");
        EXPECT_ERROR("invalid value '0' for '--pids': expected a number of processes from 1 to 4194304",
                     "start", "--pids", "0", "true");
        EXPECT_ERROR("invalid value '1K' for '--pids'", "start", "--pids", "1K", "true");
        EXPECT_ERROR("invalid value '/dev/sda' for '--io-read-bps': expected DEV=RATE, like /dev/sda=50M",
                     "start", "--io-read-bps", "/dev/sda", "true");
        EXPECT_ERROR("expected DEV=RATE", "start", "--io-read-bps", "=5M", "true");
        EXPECT_ERROR("expected DEV=RATE", "start", "--io-read-bps", "/dev/sda=", "true");
        EXPECT_ERROR("invalid value 'sda=5M' for '--io-write-bps': DEV must be an absolute path",
                     "start", "--io-write-bps", "sda=5M", "true");
        EXPECT_ERROR("invalid value 'fast' for '--io-read-bps': expected a rate in bytes per second greater than 0",
                     "start", "--io-read-bps", "/dev/sda=fast", "true");
        EXPECT_ERROR("invalid value '0' for '--io-read-bps'", "start", "--io-read-bps", "/dev/sda=0", "true");
        EXPECT_ERROR("option '--io-read-bps' is given twice for '/dev/sda'",
                     "start", "--io-read-bps", "/dev/sda=1M", "--io-read-bps", "/dev/sda=2M", "true");
        EXPECT_ERROR("invalid value 'pid,mount' for '--isolate': expected a comma-separated list of pid, net, tmp",
                     "start", "--isolate", "pid,mount", "true");
        EXPECT_ERROR("invalid value '' for '--isolate'", "start", "--isolate=", "true");
        EXPECT_ERROR("invalid value 'pid,' for '--isolate'", "start", "--isolate", "pid,", "true");
        EXPECT_ERROR("unknown option '--cpu' for 'status'", "status", "--cpu", "1", JOB);
        EXPECT_ERROR("option '--memory' needs a value", "start", "--memory");

        /* at most CLI_IO_MAX devices */
        {
                const char *w[2 + 2 * (CLI_IO_MAX + 1) + 2];
                char dev[CLI_IO_MAX + 1][32];
                size_t n = 0;
                CliArgs b;
                char *err = NULL;

                w[n++] = "start";
                for (unsigned i = 0; i <= CLI_IO_MAX; i++) {
                        snprintf(dev[i], sizeof dev[i], "/dev/d%u=1M", i);
                        w[n++] = "--io-read-bps";
                        w[n++] = dev[i];
                }
                w[n++] = "true";
                w[n] = NULL;
                assert_int_equal(parse_words(&b, &err, w), -EINVAL);
                assert_non_null(strstr(err, "too many devices for io limits (at most 16)"));
                free(err);
        }
}

static void test_job_argument(void **state) {
        CliArgs a;
        char *e;

        assert_int_equal(PARSE(&a, &e, "status", JOB), 0);
        assert_int_equal(a.command, CLI_COMMAND_STATUS);
        assert_string_equal(a.job, JOB);
        assert_false(a.json);
        cli_args_done(&a);

        /* options after the JOB, and "--" before it */
        assert_int_equal(PARSE(&a, &e, "status", "0123abcd", "--json"), 0);
        assert_string_equal(a.job, "0123abcd");
        assert_true(a.json);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "wait", "--", "0123ABCD-45"), 0);
        assert_int_equal(a.command, CLI_COMMAND_WAIT);
        assert_string_equal(a.job, "0123ABCD-45");
        cli_args_done(&a);

        EXPECT_ERROR("missing JOB", "status");
        EXPECT_ERROR("missing JOB", "logs", "--follow");
        EXPECT_ERROR("missing JOB", "stop", "--grace", "1");
        EXPECT_ERROR("missing JOB", "wait", "--");
        EXPECT_ERROR("too short", "status", "0123abc");
        EXPECT_ERROR("neither a job id", "status", "hello/world"); /* hello:world is HOST:ID */
        EXPECT_ERROR("not a job id", "stop", JOB "0");
        EXPECT_ERROR("unexpected argument '0123abce'", "status", "0123abcd", "0123abce");
        EXPECT_ERROR("'list' takes no arguments", "list", "0123abcd");
        /* after "--" a dash-word is the JOB, and is checked as one */
        EXPECT_ERROR("neither a job id", "status", "--", "--json");
        /* a word with a character that is not hex nor '-' is a name */
        assert_int_equal(PARSE(&a, &e, "stop", "hello-world"), 0);
        assert_string_equal(a.job, "hello-world");
        cli_args_done(&a);
}

/* --name, --label (start, run, list), --state and --owner (list). */
static void test_names_and_filters(void **state) {
        CliArgs a;
        char *e;

        assert_int_equal(PARSE(&a, &e, "start", "--name", "web-1", "--label", "team=web", "--label", "tier=", "--", "true"), 0);
        assert_string_equal(a.name, "web-1");
        assert_int_equal(a.n_labels, 2);
        assert_string_equal(a.labels[0], "team=web");
        assert_string_equal(a.labels[1], "tier=");
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "list", "--state", "running,finished", "--owner", "alice", "--name", "web-1",
                               "--label", "team=web"), 0);
        assert_int_equal(a.states, CLI_STATE_RUNNING | CLI_STATE_FINISHED);
        assert_string_equal(a.owner, "alice");
        assert_string_equal(a.name, "web-1");
        assert_int_equal(a.n_labels, 1);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "list", "--state", "exited", "--state", "ended"), 0);
        assert_int_equal(a.states, (1u << 2) | (1u << 5));
        cli_args_done(&a);

        EXPECT_ERROR("could be read as a job id", "start", "--name", "deadbeef", "--", "true");
        EXPECT_ERROR("not allowed", "run", "--name", "web:1", "--", "true");
        EXPECT_ERROR("KEY=VALUE", "start", "--label", "team", "--", "true");
        EXPECT_ERROR("label key 'team' is given twice", "start", "--label", "team=a", "--label", "team=b", "--", "true");
        EXPECT_ERROR("at most 63", "list", "--label", "team=0123456789012345678901234567890123456789012345678901234567890123");
        EXPECT_ERROR("expected running, exited", "list", "--state", "sleeping");
        EXPECT_ERROR("needs a user name", "list", "--owner", "");
        EXPECT_ERROR("unknown option", "status", "--name", "web", JOB);
        EXPECT_ERROR("unknown option", "start", "--state", "running", "--", "true");
}

static void test_list_logs_stop(void **state) {
        CliArgs a;
        char *e;

        assert_int_equal(PARSE(&a, &e, "list"), 0);
        assert_int_equal(a.command, CLI_COMMAND_LIST);
        assert_false(a.running);
        assert_false(a.json);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "list", "--running", "--json"), 0);
        assert_true(a.running);
        assert_true(a.json);
        cli_args_done(&a);

        assert_int_equal(PARSE(&a, &e, "logs", JOB), 0);
        assert_int_equal(a.stream, CLI_STREAM_BOTH);
        assert_false(a.follow);
        assert_int_equal(a.offset, 0);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "logs", "-f", "--stdout", "--offset", "12345", JOB), 0);
        assert_true(a.follow);
        assert_int_equal(a.stream, CLI_STREAM_STDOUT);
        assert_int_equal(a.offset, 12345);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "logs", "--follow", "--stderr", "--offset=18446744073709551615", JOB), 0);
        assert_int_equal(a.stream, CLI_STREAM_STDERR);
        assert_true(a.offset == UINT64_MAX);
        cli_args_done(&a);
        /* the same stream twice is fine */
        assert_int_equal(PARSE(&a, &e, "logs", "--stderr", "--stderr", JOB), 0);
        assert_int_equal(a.stream, CLI_STREAM_STDERR);
        cli_args_done(&a);

        EXPECT_ERROR("exclude each other", "logs", "--stdout", "--stderr", JOB);
        EXPECT_ERROR("expected a number of bytes", "logs", "--offset", "-1", JOB);
        EXPECT_ERROR("expected a number of bytes", "logs", "--offset", "12k", JOB);
        EXPECT_ERROR("expected a number of bytes", "logs", "--offset", "", JOB);
        EXPECT_ERROR("expected a number of bytes", "logs", "--offset", "+5", JOB);
        EXPECT_ERROR("expected a number of bytes", "logs", "--offset", " 5", JOB);
        EXPECT_ERROR("too large", "logs", "--offset", "18446744073709551616", JOB);
        EXPECT_ERROR("takes no value", "logs", "--follow=yes", JOB);
        EXPECT_ERROR("unknown option '-x' for 'logs'", "logs", "-x", JOB);
        EXPECT_ERROR("unknown option '-f' for 'status'", "status", "-f", JOB);

        assert_int_equal(PARSE(&a, &e, "stop", JOB), 0);
        assert_false(a.grace_set);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "stop", "--grace", "1.5", JOB), 0);
        assert_true(a.grace_set);
        assert_int_equal(a.grace_ms, 1500);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "stop", "--grace=0", JOB), 0);
        assert_true(a.grace_set);
        assert_int_equal(a.grace_ms, 0);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "stop", "--grace", "0.0001", JOB), 0);
        assert_int_equal(a.grace_ms, 1); /* rounded up, never to "no grace" */
        cli_args_done(&a);

        EXPECT_ERROR("expected a number of seconds", "stop", "--grace", "-1", JOB);
        EXPECT_ERROR("expected a number of seconds", "stop", "--grace", "1.2345678901", JOB);
        /* the shared duration grammar: 7 fraction digits and units (both
         * refused before) */
        assert_int_equal(PARSE(&a, &e, "stop", "--grace", "1.2345678", JOB), 0);
        assert_int_equal(a.grace_ms, 1235);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "stop", "--grace", "2min", JOB), 0);
        assert_int_equal(a.grace_ms, 120000);
        cli_args_done(&a);
        EXPECT_ERROR("expected a number of seconds", "stop", "--grace", "1.", JOB);
        EXPECT_ERROR("expected a number of seconds", "stop", "--grace", "five", JOB);
        EXPECT_ERROR("expected a number of seconds", "stop", "--grace", "99999999999999999999", JOB);
}

static void test_kill(void **state) {
        CliArgs a;
        char *e;

        /* Default: TERM, the main process only (cmd_kill sends 15 for 0). */
        assert_int_equal(PARSE(&a, &e, "kill", JOB), 0);
        assert_int_equal(a.command, CLI_COMMAND_KILL);
        assert_int_equal(a.signal, 0);
        assert_false(a.signal_all);
        assert_string_equal(a.job, JOB);
        cli_args_done(&a);

        assert_int_equal(PARSE(&a, &e, "kill", "-s", "USR1", "--all", JOB), 0);
        assert_int_equal(a.signal, 10);
        assert_true(a.signal_all);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "kill", "-sHUP", JOB), 0);
        assert_int_equal(a.signal, 1);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "kill", "--signal=sigint", JOB), 0);
        assert_int_equal(a.signal, 2);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "kill", JOB, "--signal", "9"), 0);
        assert_int_equal(a.signal, 9);
        cli_args_done(&a);

        EXPECT_ERROR("unknown signal 'FOO' for '-s'", "kill", "-s", "FOO", JOB);
        EXPECT_ERROR("unknown signal '65' for '--signal'", "kill", "--signal", "65", JOB);
        EXPECT_ERROR("unknown signal '0' for '-s'", "kill", "-s", "0", JOB);
        EXPECT_ERROR("option '-s' needs a value", "kill", JOB, "-s");
        EXPECT_ERROR("missing JOB", "kill", "-s", "TERM");
        EXPECT_ERROR("unknown option '--all' for 'stop'", "stop", "--all", JOB);
        EXPECT_ERROR("unknown option '-s' for 'stop'", "stop", "-s", "TERM", JOB);
        EXPECT_ERROR("takes one JOB", "kill", JOB, JOB);

        /* kill -l [SIGNAL]: no job needed; the word after it is a signal, not a job */
        assert_int_equal(PARSE(&a, &e, "kill", "-l"), 0);
        assert_true(a.signal_list);
        assert_null(a.job);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "kill", "--list", "15"), 0);
        assert_true(a.signal_list);
        assert_string_equal(a.job, "15");
        cli_args_done(&a);
        EXPECT_ERROR("unknown option '-l' for 'stop'", "stop", "-l", JOB);
        assert_non_null(strstr(cli_usage(CLI_COMMAND_KILL), "jwctl kill -l [SIGNAL]"));
        assert_non_null(strstr(cli_usage(CLI_COMMAND_KILL), "kill [-s SIGNAL] [--all] JOB"));
        assert_non_null(strstr(cli_usage(CLI_COMMAND_NONE), "kill [-s SIGNAL] [--all] JOB"));
}

static void test_global_options(void **state) {
        CliArgs a;
        char *e;

        assert_int_equal(PARSE(&a, &e, "--server", "h:1", "--cert=c.pem", "--key", "k.pem", "--ca", "ca.pem",
                               "--timeout", "2.5", "list"), 0);
        assert_string_equal(a.server, "h:1");
        assert_string_equal(a.cert, "c.pem");
        assert_string_equal(a.key, "k.pem");
        assert_string_equal(a.ca, "ca.pem");
        assert_true(a.timeout_set);
        assert_int_equal(a.timeout_usec, 2500000);
        cli_args_done(&a);

        /* global options after the command, too */
        assert_int_equal(PARSE(&a, &e, "status", JOB, "--server=[::1]:9", "--version"), 0);
        assert_string_equal(a.server, "[::1]:9");
        assert_true(a.version);
        cli_args_done(&a);

        /* ... but not after the remote command of start/run */
        assert_int_equal(PARSE(&a, &e, "start", "--server", "a:1", "echo", "--server", "b:2"), 0);
        assert_string_equal(a.server, "a:1");
        assert_int_equal(a.n_cmd, 3);
        cli_args_done(&a);

        /* unset ones stay NULL */
        assert_int_equal(PARSE(&a, &e, "list"), 0);
        assert_null(a.server);
        assert_null(a.cert);
        assert_false(a.timeout_set);
        cli_args_done(&a);

        EXPECT_ERROR("greater than 0", "--timeout", "0", "list");
        EXPECT_ERROR("greater than 0", "--timeout", "-3", "list");
        EXPECT_ERROR("greater than 0", "--timeout", "1x", "list");
        /* the shared duration grammar: units (this was refused before) */
        assert_int_equal(PARSE(&a, &e, "--timeout", "1s", "list"), 0);
        assert_int_equal(a.timeout_usec, 1000000);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "--timeout=500ms", "list"), 0);
        assert_int_equal(a.timeout_usec, 500000);
        cli_args_done(&a);
        /* --reconnect-timeout: a duration; 0 turns reconnecting off */
        assert_int_equal(PARSE(&a, &e, "--reconnect-timeout", "0", "wait", JOB), 0);
        assert_true(a.reconnect_set);
        assert_int_equal(a.reconnect_usec, 0);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "logs", "-f", "--reconnect-timeout=2min", JOB), 0);
        assert_int_equal(a.reconnect_usec, 120000000);
        cli_args_done(&a);
        EXPECT_ERROR("invalid value 'soon' for '--reconnect-timeout'", "--reconnect-timeout", "soon", "list");
        /* --keepalive: a duration; 0 turns pings off */
        assert_int_equal(PARSE(&a, &e, "--keepalive", "15s", "logs", "-f", JOB), 0);
        assert_true(a.keepalive_set);
        assert_int_equal(a.keepalive_usec, 15000000);
        cli_args_done(&a);
        assert_int_equal(PARSE(&a, &e, "run", "--keepalive=0", "--", "true"), 0);
        assert_true(a.keepalive_set);
        assert_int_equal(a.keepalive_usec, 0);
        cli_args_done(&a);
        EXPECT_ERROR("invalid value 'often' for '--keepalive'", "--keepalive", "often", "list");
        EXPECT_ERROR("needs a value", "list", "--server");
        EXPECT_ERROR("empty string", "--server", "", "list");
        EXPECT_ERROR("empty string", "--cert=", "list");
        EXPECT_ERROR("unknown option '--frob'", "--frob", "list");
        EXPECT_ERROR("unknown option '--frob' for 'list'", "list", "--frob");
        EXPECT_ERROR("unknown option '--jsonx' for 'list'", "list", "--jsonx");
        EXPECT_ERROR("unknown option '--json' for 'stop'", "stop", "--json=1", JOB);
        EXPECT_ERROR("unknown command 'lst'", "lst");
        EXPECT_ERROR("see 'jwctl list --help'", "list", "--frob");
}

static void test_numbers(void **state) {
        uint64_t v;

        assert_int_equal(cli_parse_duration("3", &v), 0);
        assert_int_equal(v, 3000000);
        assert_int_equal(cli_parse_duration("0.000001", &v), 0);
        assert_int_equal(v, 1);
        assert_int_equal(cli_parse_duration("10.25", &v), 0);
        assert_int_equal(v, 10250000);
        assert_int_equal(cli_parse_duration(".5", &v), -EINVAL);
        assert_int_equal(cli_parse_duration("1e3", &v), -EINVAL);
        assert_int_equal(cli_parse_duration("", &v), -EINVAL);
        /* up to 9 fraction digits, cut to a microsecond (6 were the limit) */
        assert_int_equal(cli_parse_duration("1.0000001", &v), 0);
        assert_int_equal(v, 1000000);
        assert_int_equal(cli_parse_duration("1.0000000001", &v), -EINVAL);
        assert_int_equal(cli_parse_duration("2min", &v), 0);
        assert_int_equal(v, 120000000);
        assert_int_equal(cli_parse_duration("99999999999", &v), -ERANGE);
        assert_int_equal(cli_parse_duration("36600d", &v), 0);  /* 100 years of 366 days */
        assert_int_equal(cli_parse_duration("36601d", &v), -ERANGE);
}

static void test_commands_table(void **state) {
        for (CliCommand c = CLI_COMMAND_START; c < _CLI_COMMAND_MAX; c++)
                assert_int_equal(cli_command_from_string(cli_command_to_string(c)), c);
        assert_int_equal(cli_command_from_string("help"), CLI_COMMAND_NONE);
        assert_int_equal(cli_command_from_string(""), CLI_COMMAND_NONE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_arguments),
                cmocka_unit_test(test_help_and_version),
                cmocka_unit_test(test_start_dashdash),
                cmocka_unit_test(test_env_and_cwd),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_job_argument),
                cmocka_unit_test(test_names_and_filters),
                cmocka_unit_test(test_list_logs_stop),
                cmocka_unit_test(test_kill),
                cmocka_unit_test(test_global_options),
                cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_commands_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
