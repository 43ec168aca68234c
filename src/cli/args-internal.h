/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the two halves of jwctl's argument parser share: the parser state
 * (args.c walks argv) and the option table (args-options.c knows every
 * option and what its value means). Not for use outside src/cli/args*.c.
 */

#include <stdbool.h>
#include <stddef.h>

#include "cli/args.h"

typedef struct Parser {
        int argc;
        char *const *argv;
        int i;              /* index of the word being looked at */
        CliArgs *a;
        char *error;        /* malloc()ed message of the first usage error */
} Parser;

typedef struct OptDef OptDef;

/* Applies one option (shown: "--name" or "-x", for messages; value NULL
 * for an option without one). Returns 1 if parsing should stop (help), 0,
 * or -errno with p->error set for -EINVAL. */
typedef int (*OptApplyFn)(Parser *p, const OptDef *o, const char *shown, const char *value);

struct OptDef {
        const char *name;   /* long name without "--" */
        char short_name;    /* 0: none */
        bool has_arg;
        int id;             /* which option, for its apply function */
        unsigned commands;  /* bit mask of CliCommand; 0 = global */
        OptApplyFn apply;
};

/* The option of the current command named by the len bytes at name (a long
 * option) or by short_name (when name is NULL); NULL if there is none. */
const OptDef *args_option_find(const Parser *p, const char *name, size_t len, char short_name);

/* " (see 'jwctl CMD --help')" for the command being parsed. */
const char *args_see_help(const Parser *p);
/* The command's name, or "jwctl" before there is one. */
const char *args_command_label(const Parser *p);

/* The fan-out options (--hosts, --hosts-file, --parallel, --no-prefix,
 * --group-output, --fail-fast, --save), in args-fanout.c; ids from
 * ARGS_OPT_FANOUT_FIRST on. */
enum {
        ARGS_OPT_FANOUT_FIRST = 1000,
        ARGS_OPT_HOSTS = ARGS_OPT_FANOUT_FIRST,
        ARGS_OPT_HOSTS_FILE,
        ARGS_OPT_PARALLEL,
        ARGS_OPT_NO_PREFIX,
        ARGS_OPT_GROUP_OUTPUT,
        ARGS_OPT_FAIL_FAST,
        ARGS_OPT_SAVE,
};
int args_apply_fanout(Parser *p, const OptDef *o, const char *shown, const char *value);
/* "@RUN" or "HOST:ID" in place of a JOB. */
bool args_fanout_job_ref(const char *word);
