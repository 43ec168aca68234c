/* SPDX-License-Identifier: MIT */
/*
 * jwctl's argument parser: a pure function from argv to a CliArgs or to a
 * one-line usage error, so that every rule here is unit-tested (cmocka,
 * tests/unit/test-cli-args.c). This file walks the words; what each option
 * means is in args-options.c.
 *
 * The one idea: global options are accepted before and after the command
 * name; for start/run the first non-option word (or the word after "--")
 * begins the remote command and everything after it belongs to that command,
 * even words starting with "-" (like ssh or env). For the other commands
 * options and the JOB may come in any order, and "--" ends the options.
 */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args-internal.h"
#include "cli/usage.h"
#include "shared/job-name.h"
#include "shared/macro.h"
#include "shared/parse-util.h"
#include "shared/string-util.h"

int cli_parse_duration(const char *s, uint64_t *ret_usec) {
        const uint64_t max_usec = 100ULL * 366 * 24 * 3600 * 1000000;
        uint64_t v;
        int r;

        r = parse_duration(s, &v);
        if (r < 0)
                return r;
        if (v > max_usec)
                return -ERANGE;
        *ret_usec = v;
        return 0;
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
        free(a->labels);
        a->labels = NULL;
        a->n_labels = 0;
        free(a->fanout.hosts);
        a->fanout.hosts = NULL;
        a->fanout.n_hosts = 0;
        a->n_io = 0;
}

static int parse_long(Parser *p) {
        const char *word = p->argv[p->i];
        const char *name = word + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t) (eq - name) : strlen(name);
        const OptDef *o = args_option_find(p, name, len, 0);
        const char *value = NULL;

        if (o) {
                char shown[64];

                if (o->has_arg) {
                        if (eq)
                                value = eq + 1;
                        else if (p->i + 1 < p->argc)
                                value = p->argv[++p->i];
                        else
                                return replace_message(&p->error, -EINVAL, "option '--%s' needs a value%s", o->name, args_see_help(p));
                } else if (eq)
                        return replace_message(&p->error, -EINVAL, "option '--%s' takes no value", o->name);

                snprintf(shown, sizeof shown, "--%s", o->name);
                return o->apply(p, o, shown, value);
        }
        if (p->a->command == CLI_COMMAND_NONE)
                return replace_message(&p->error, -EINVAL, "unknown option '%.*s'%s", (int) (len + 2), word, args_see_help(p));
        return replace_message(&p->error, -EINVAL, "unknown option '%.*s' for '%s'%s", (int) (len + 2), word, args_command_label(p), args_see_help(p));
}

static int parse_short(Parser *p) {
        const char *word = p->argv[p->i];

        for (const char *c = word + 1; *c; c++) {
                const OptDef *o = args_option_find(p, NULL, 0, *c);
                if (!o) {
                        if (p->a->command == CLI_COMMAND_NONE)
                                return replace_message(&p->error, -EINVAL, "unknown option '-%c'%s", *c, args_see_help(p));
                        return replace_message(&p->error, -EINVAL, "unknown option '-%c' for '%s'%s", *c, args_command_label(p), args_see_help(p));
                }
                char shown[3] = { '-', *c, 0 };
                const char *value = NULL;

                /* A value is the rest of the word (-sUSR1) or the next one. */
                if (o->has_arg) {
                        if (c[1])
                                value = c + 1;
                        else if (p->i + 1 < p->argc)
                                value = p->argv[++p->i];
                        else
                                return replace_message(&p->error, -EINVAL, "option '-%c' needs a value%s", *c, args_see_help(p));
                }
                int r = o->apply(p, o, shown, value);
                if (r != 0 || value)
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
                return replace_message(&p->error, -EINVAL, "unexpected argument '%s': '%s' takes one JOB%s", word, args_command_label(p), args_see_help(p));
        if (a->signal_list) { /* kill -l SIGNAL: a signal, checked when it is listed */
                a->job = word;
                return 0;
        }
        /* @RUN and HOST:ID name jobs of a fan-out (cli/fanout.c checks them). */
        if (args_fanout_job_ref(word)) {
                a->job = word;
                return 0;
        }
        if (word[0] == '@')
                return replace_message(&p->error, -EINVAL, "'%s' is not a saved run: a run name (run --save NAME) is up to 64 "
                                       "letters, digits, '.', '-', '_' (not starting with '.')", word);
        for (const char *c = word; *c; c++)
                if (!is_job_char(*c)) {
                        /* A name then (cli/resolve.h), if it keeps the rules. */
                        char msg[JOB_NAME_MSG_MAX];
                        if (job_name_check(word, msg, sizeof(msg)) < 0)
                                return replace_message(&p->error, -EINVAL, "'%s' is neither a job id (hexadecimal with dashes, "
                                                       "like 0b5f3a1c-…) nor a job name: %s", word, msg);
                        a->job = word;
                        return 0;
                }
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
                                return replace_message(&p->error, -EINVAL, "missing command before '--'%s", args_see_help(p));
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
                                                return replace_message(&p->error, -EINVAL, "unknown command '%s'%s", w, args_see_help(p));
                                }
                                return 1;
                        }
                        a->command = cli_command_from_string(word);
                        if (a->command == CLI_COMMAND_NONE)
                                return replace_message(&p->error, -EINVAL, "unknown command '%s'%s", word, args_see_help(p));
                        continue;
                }
                switch (a->command) {
                case CLI_COMMAND_START:
                case CLI_COMMAND_RUN:
                        return take_command(p, p->i);
                case CLI_COMMAND_LIST:
                        return replace_message(&p->error, -EINVAL, "unexpected argument '%s': 'list' takes no arguments%s", word, args_see_help(p));
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
                return replace_message(&p->error, -EINVAL, "missing command%s", args_see_help(p));
        case CLI_COMMAND_START:
        case CLI_COMMAND_RUN:
                if (a->n_cmd == 0 || !a->cmd[0][0])
                        return replace_message(&p->error, -EINVAL, "missing the command to run, as in 'jwctl %s -- CMD [ARG...]'", args_command_label(p));
                return 0;
        case CLI_COMMAND_STATUS:
        case CLI_COMMAND_LOGS:
        case CLI_COMMAND_STOP:
        case CLI_COMMAND_WAIT:
        case CLI_COMMAND_KILL:
                if (a->signal_list)
                        return 0; /* kill -l [SIGNAL]: no job, no server */
                if (!a->job)
                        return replace_message(&p->error, -EINVAL, "missing JOB: 'jwctl %s' needs a job id%s", args_command_label(p), args_see_help(p));
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
