/* SPDX-License-Identifier: MIT */
/*
 * The fan-out options of jwctl's command line (see args-internal.h): which
 * hosts, how many at once, how their output is shown, --save NAME.
 *
 * The one idea: the parser only records what was asked; host names,
 * groups and saved runs are resolved later against the config file
 * (cli/hosts.c, cli/fanout.c), where an unknown one can be named.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args-internal.h"
#include "cli/fanout.h"
#include "shared/parse-util.h"
#include "shared/string-util.h"

static bool run_name_ok(const char *s) {
        if (!*s || strlen(s) > 64 || s[0] == '.')
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
                      *s == '-' || *s == '_'))
                        return false;
        return true;
}

bool args_fanout_job_ref(const char *word) {
        const char *colon = strrchr(word, ':');

        if (word[0] == '@')
                return run_name_ok(word + 1);
        return colon && colon != word && colon[1];
}

int args_apply_fanout(Parser *p, const OptDef *o, const char *shown, const char *value) {
        CliArgs *a = p->a;
        uint64_t u;

        switch (o->id) {
        case ARGS_OPT_HOSTS: {
                const char **n;

                if (!*value)
                        return replace_message(&p->error, -EINVAL, "option '%s' needs a list of hosts, like web01,web02 or @web", shown);
                n = reallocarray(a->fanout.hosts, a->fanout.n_hosts + 1, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                a->fanout.hosts = n;
                n[a->fanout.n_hosts++] = value;
                return 0;
        }
        case ARGS_OPT_HOSTS_FILE:
                if (!*value)
                        return replace_message(&p->error, -EINVAL, "option '%s' needs a file name, not an empty string", shown);
                a->fanout.hosts_file = value;
                return 0;
        case ARGS_OPT_PARALLEL:
                if (parse_uint64(value, &u) < 0 || u == 0 || u > CLI_FANOUT_PARALLEL_MAX)
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': expected a number of hosts from 1 to %d",
                                               value, shown, CLI_FANOUT_PARALLEL_MAX);
                a->fanout.parallel = (unsigned) u;
                return 0;
        case ARGS_OPT_NO_PREFIX:
                a->fanout.no_prefix = true;
                return 0;
        case ARGS_OPT_GROUP_OUTPUT:
                a->fanout.group_output = true;
                return 0;
        case ARGS_OPT_FAIL_FAST:
                a->fanout.fail_fast = true;
                return 0;
        case ARGS_OPT_SAVE:
                if (!run_name_ok(value))
                        return replace_message(&p->error, -EINVAL, "invalid value '%s' for '%s': a run name is up to 64 letters, "
                                               "digits, '.', '-', '_' (not starting with '.')", value, shown);
                a->fanout.save = value;
                return 0;
        }
        return -EINVAL;
}

bool cli_args_names_hosts(const CliArgs *a) {
        return a->fanout.n_hosts > 0 || a->fanout.hosts_file || (a->job && args_fanout_job_ref(a->job));
}

bool cli_args_fans_out(const CliArgs *a) {
        return cli_args_names_hosts(a) || a->fanout.no_prefix || a->fanout.group_output || a->fanout.fail_fast ||
               a->fanout.save || a->fanout.parallel ||
               (a->json && (a->command == CLI_COMMAND_RUN || a->command == CLI_COMMAND_LOGS));
}
