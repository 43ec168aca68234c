/* SPDX-License-Identifier: MIT */
/*
 * How each host of a fan-out ended, and the summary (see fanout-summary.h).
 *
 * The one idea: a host's result is told apart by what kind of failure it
 * was, not by its number alone: a job that exited 3 and a host that could
 * not be reached (jwctl's own 3) look alike as numbers, but only the second
 * comes with a message, so the message decides.
 */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/fanout-summary.h"
#include "cli/format.h"
#include "shared/macro.h"

void fanout_result_done(FanoutResult *r) {
        if (!r)
                return;
        free(r->error);
        free(r->job_id);
        r->error = r->job_id = NULL;
}

const char *fanout_state_name(FanoutState s) {
        static const char *const names[] = {
                [FANOUT_STATE_SKIPPED] = "skipped",         [FANOUT_STATE_OK] = "ok",
                [FANOUT_STATE_EXITED] = "exited",           [FANOUT_STATE_KILLED] = "killed",
                [FANOUT_STATE_FAILED] = "failed",           [FANOUT_STATE_UNREACHABLE] = "unreachable",
                [FANOUT_STATE_INTERRUPTED] = "interrupted",
        };
        return (size_t) s < ELEMENTSOF(names) ? names[s] : "unknown";
}

FanoutState fanout_classify(CliCommand command, int code, const char *message, bool interrupted) {
        bool job_code = command == CLI_COMMAND_RUN || command == CLI_COMMAND_WAIT;

        if (interrupted && code == CLI_EXIT_INTERRUPTED)
                return FANOUT_STATE_INTERRUPTED;
        if (code == 0)
                return FANOUT_STATE_OK;
        if (job_code && !message)
                return code >= 128 ? FANOUT_STATE_KILLED : FANOUT_STATE_EXITED;
        /* A job killed at its max runtime comes with a message too. */
        if (job_code && code > 128 && code < 128 + 65 && code != CLI_EXIT_INTERRUPTED)
                return FANOUT_STATE_KILLED;
        if (code == CLI_EXIT_CONNECT)
                return FANOUT_STATE_UNREACHABLE;
        if (code == CLI_EXIT_INTERRUPTED)
                return FANOUT_STATE_INTERRUPTED;
        return FANOUT_STATE_FAILED;
}

int fanout_exit_code(const FanoutResult *results, size_t n, bool interrupted) {
        bool all_ok = true, unreachable = false;

        for (size_t i = 0; i < n; i++) {
                all_ok = all_ok && results[i].state == FANOUT_STATE_OK;
                unreachable = unreachable || results[i].state == FANOUT_STATE_UNREACHABLE;
        }
        if (interrupted)
                return CLI_EXIT_INTERRUPTED;
        if (unreachable)
                return CLI_EXIT_CONNECT;
        return all_ok ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

static void format_code(const FanoutResult *r, char buf[static 16]) {
        if (r->state == FANOUT_STATE_OK || r->state == FANOUT_STATE_EXITED)
                snprintf(buf, 16, "%d", r->code);
        else if (r->state == FANOUT_STATE_KILLED)
                cli_signal_name(r->code - 128, buf);
        else
                snprintf(buf, 16, "-");
}

void fanout_summary_text(FILE *f, const char *const *names, const FanoutResult *results, size_t n) {
        int width = 4;

        for (size_t i = 0; i < n; i++)
                width = MAX(width, (int) strlen(names[i]));
        fprintf(f, "%-*s  %-11s  %-7s  %9s  %s\n", width, "HOST", "STATE", "CODE", "TIME", "ERROR");
        for (size_t i = 0; i < n; i++) {
                const FanoutResult *r = &results[i];
                _cleanup_free_ char *error = r->error && *r->error ? cli_terminal_safe(r->error) : NULL;
                char code[16];

                format_code(r, code);
                fprintf(f, "%-*s  %-11s  %-7s  %8.3fs%s%s\n", width, names[i], fanout_state_name(r->state), code,
                        (double) r->duration_usec / 1e6, error ? "  " : "", error ?: "");
        }
}

void fanout_summary_json(FILE *f, const char *const *names, const FanoutResult *results, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const FanoutResult *r = &results[i];

                fputs("{\"host\":", f);
                cli_json_write_string(f, names[i], strlen(names[i]));
                fprintf(f, ",\"state\":\"%s\"", fanout_state_name(r->state));
                if (r->state == FANOUT_STATE_OK || r->state == FANOUT_STATE_EXITED || r->state == FANOUT_STATE_KILLED)
                        fprintf(f, ",\"exit_code\":%d", r->code);
                if (r->error) {
                        fputs(",\"error\":", f);
                        cli_json_write_string(f, r->error, strlen(r->error));
                }
                if (r->job_id) {
                        fputs(",\"job_id\":", f);
                        cli_json_write_string(f, r->job_id, strlen(r->job_id));
                }
                fprintf(f, ",\"duration_ms\":%" PRIu64 "}\n", r->duration_usec / 1000);
        }
}
