/* SPDX-License-Identifier: MIT */
/*
 * jwctl: the command-line client of jobworkerd. main() parses the command
 * line (cli/args.h), resolves settings (cli/settings.h), runs the command
 * (cli/commands.h) and is the only place that prints errors and exits.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "jwctl-version.h" /* generated into this folder of the build */
#include "cli/settings.h"
#include "cli/usage.h"
#include "shared/macro.h"

/* One line on stderr, whatever the message holds (it may quote the user's
 * arguments or the server's words): control characters become '?'. */
static void print_error(const char *message) {
        fputs("jwctl: ", stderr);
        for (const char *c = message; *c; c++)
                fputc((unsigned char) *c < 0x20 || *c == 0x7f ? '?' : *c, stderr);
        fputc('\n', stderr);
}

int main(int argc, char **argv) {
        _cleanup_free_ char *error = NULL, *message = NULL;
        CliArgs args;
        CliSettings settings = {};
        sigset_t set;
        int r, code;

        r = cli_args_parse(argc, argv, &args, &error);
        if (r < 0) {
                print_error(error ?: strerror(-r));
                return r == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
        }
        if (args.help) {
                fputs(cli_usage(args.command), stdout);
                cli_args_done(&args);
                return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
        }
        if (args.version) {
                printf("jwctl %s\n", JWCTL_VERSION);
                cli_args_done(&args);
                return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
        }

        if (args.command == CLI_COMMAND_KILL && args.signal_list) { /* no server, no settings */
                code = cli_list_signals(&args, &message);
                if (message)
                        print_error(message);
                cli_args_done(&args);
                return code;
        }

        r = cli_settings_load(&args, &settings, &error);
        if (r < 0) {
                print_error(error ?: strerror(-r));
                cli_args_done(&args);
                return r == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
        }

        /* Before any thread exists (the connections' I/O threads): the signal
         * thread of cli_execute() is the only one to receive these. A closed
         * stdout shows up as EPIPE from write(), not as a signal. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGWINCH); /* run -t: a signalfd of the input thread (its default is to ignore it) */
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        code = cli_execute(&args, &settings, &message);

        if (message)
                print_error(message);
        cli_settings_done(&settings);
        cli_args_done(&args);
        return code;
}
