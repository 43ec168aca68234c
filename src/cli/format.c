/* SPDX-License-Identifier: MIT */
/*
 * Rendering of job statuses for jwctl status/list: text for terminals and
 * JSON for scripts. Everything coming from the server is untrusted text: the
 * text forms replace control characters and invalid UTF-8 by '?' (no
 * terminal escape sequences reach the user's terminal), the JSON form escapes
 * them and maps invalid UTF-8 bytes to U+FFFD.
 */

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/format.h"
#include "cli/signame.h"
#include "shared/macro.h"
#include "shared/parse-util.h"
#include "shared/utf8.h"

void cli_json_write_string(FILE *f, const char *str, size_t n) {
        const unsigned char *s = (const unsigned char *) str;

        fputc('"', f);
        for (size_t i = 0; i < n;) {
                unsigned char c = s[i];

                if (c == '"' || c == '\\') {
                        fputc('\\', f);
                        fputc(c, f);
                        i++;
                } else if (c == '\n') {
                        fputs("\\n", f);
                        i++;
                } else if (c == '\t') {
                        fputs("\\t", f);
                        i++;
                } else if (c == '\r') {
                        fputs("\\r", f);
                        i++;
                } else if (c < 0x20 || c == 0x7f) {
                        fprintf(f, "\\u%04x", c);
                        i++;
                } else {
                        size_t k = utf8_char_len(s + i, n - i);
                        if (k == 0) {
                                fputs("\\ufffd", f);
                                i++;
                        } else {
                                fwrite(s + i, 1, k, f);
                                i += k;
                        }
                }
        }
        fputc('"', f);
}

static void json_cstring(FILE *f, const char *s) {
        s = s ?: "";
        cli_json_write_string(f, s, strlen(s));
}

const char *cli_signal_name(int sig, char buf[static 16]) {
        char abbrev[SIGNAL_NAME_MAX];

        if (signal_abbrev(sig, abbrev)) /* real-time ones too: SIGRTMIN+6 */
                snprintf(buf, 16, "SIG%.12s", abbrev);
        else
                snprintf(buf, 16, "SIG%d", sig);
        return buf;
}

/* A job's stdin, in a word or three. */
static const char *format_stdin_state(Jobworker__V1__StdinState s, bool json) {
        switch (s) {
        case JOBWORKER__V1__STDIN_STATE__STDIN_STATE_OPEN:
                return "open";
        case JOBWORKER__V1__STDIN_STATE__STDIN_STATE_WRITING:
                return json ? "writing" : "open, being written";
        case JOBWORKER__V1__STDIN_STATE__STDIN_STATE_CLOSED:
                return "closed";
        default:
                return "/dev/null";
        }
}

static const char *state_word(const CliJobStatus *st) {
        switch (st->state) {
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING:
                return "running";
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_EXITED:
                return "exited";
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_KILLED:
                return "killed";
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_LOST:
                return "lost";
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_ENDED:
                return "ended";
        default:
                return "unknown";
        }
}

const char *cli_state_short(const CliJobStatus *st, char buf[static 64]) {
        char sig[16];

        switch (st->state) {
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING:
                snprintf(buf, 64, "%s", st->timed_out ? "timing out" : st->stop_requested ? "stopping" : "running");
                break;
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_EXITED:
                snprintf(buf, 64, "exited %d", st->exit_code);
                break;
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_KILLED:
                snprintf(buf, 64, "killed %s%s", cli_signal_name(st->signal, sig),
                         st->oom_killed ? " (OOM)" : st->timed_out ? " (timed out)" : "");
                break;
        default:
                snprintf(buf, 64, "%s", state_word(st));
        }
        return buf;
}

/* RFC 3339 UTC with microseconds: 2026-11-27T21:34:10.123456Z */
static void json_time(FILE *f, uint64_t us) {
        time_t t = (time_t) (us / 1000000);
        struct tm tm;
        char b[32];

        if (!gmtime_r(&t, &tm) || strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
                fputs("null", f);
                return;
        }
        fprintf(f, "\"%s.%06uZ\"", b, (unsigned) (us % 1000000));
}

/* "name" and "labels" (an object, in the order given), only when set. */
static void status_json_names(FILE *f, const CliJobStatus *st) {
        if (st->name && st->name[0]) {
                fputs(",\"name\":", f);
                json_cstring(f, st->name);
        }
        if (st->n_labels) {
                fputs(",\"labels\":{", f);
                for (size_t i = 0; i < st->n_labels; i++) {
                        fputs(i ? "," : "", f);
                        json_cstring(f, st->labels[i]->key);
                        fputc(':', f);
                        json_cstring(f, st->labels[i]->value);
                }
                fputc('}', f);
        }
}

void cli_format_status_json(FILE *f, const CliJobStatus *st) {
        char sig[16];
        bool exited = st->state == JOBWORKER__V1__JOB_STATE__JOB_STATE_EXITED;
        bool killed = st->state == JOBWORKER__V1__JOB_STATE__JOB_STATE_KILLED;

        fputs("{\"job_id\":", f);
        json_cstring(f, st->job_id);
        fprintf(f, ",\"state\":\"%s\"", state_word(st));
        if (exited)
                fprintf(f, ",\"exit_code\":%d", st->exit_code);
        else
                fputs(",\"exit_code\":null", f);
        if (killed)
                fprintf(f, ",\"signal\":%d,\"signal_name\":\"%s\"", st->signal, cli_signal_name(st->signal, sig));
        else
                fputs(",\"signal\":null,\"signal_name\":null", f);
        fprintf(f, ",\"stop_requested\":%s", st->stop_requested ? "true" : "false");
        fprintf(f, ",\"pid\":%d", st->pid);
        fputs(",\"owner\":", f);
        json_cstring(f, st->owner);
        fputs(",\"command\":", f);
        json_cstring(f, st->command);
        fputs(",\"start_time\":", f);
        json_time(f, st->start_time_us);
        fputs(",\"end_time\":", f);
        if (st->end_time_us)
                json_time(f, st->end_time_us);
        else
                fputs("null", f);
        fprintf(f, ",\"start_time_us\":%" PRIu64, st->start_time_us);
        if (st->end_time_us)
                fprintf(f, ",\"end_time_us\":%" PRIu64, st->end_time_us);
        else
                fputs(",\"end_time_us\":null", f);
        fprintf(f, ",\"stdout_bytes\":%" PRIu64 ",\"stderr_bytes\":%" PRIu64, st->stdout_bytes, st->stderr_bytes);
        fprintf(f, ",\"output_truncated\":%s,\"dropped_bytes\":%" PRIu64,
                st->output_truncated ? "true" : "false", st->dropped_bytes);
        /* Resource use: null where the job has no cgroup (or, for memory,
         * no memory controller) to measure it. */
        fprintf(f, ",\"has_cgroup\":%s", st->has_cgroup ? "true" : "false");
        if (st->has_cgroup)
                fprintf(f, ",\"cpu_usec\":%" PRIu64, st->cpu_usec);
        else
                fputs(",\"cpu_usec\":null", f);
        if (st->has_cgroup && st->memory_peak_bytes)
                fprintf(f, ",\"memory_peak_bytes\":%" PRIu64, st->memory_peak_bytes);
        else
                fputs(",\"memory_peak_bytes\":null", f);
        if (st->has_cgroup)
                fprintf(f, ",\"oom_kills\":%" PRIu64, st->oom_kills);
        else
                fputs(",\"oom_kills\":null", f);
        fprintf(f, ",\"oom_killed\":%s", st->oom_killed ? "true" : "false");
        /* Only when set: older servers never send them. */
        if (st->process_alive)
                fputs(",\"process_alive\":true", f);
        if (st->files_removed)
                fputs(",\"files_removed\":true", f);
        if (st->max_runtime_ms)
                fprintf(f, ",\"max_runtime_ms\":%" PRIu64, st->max_runtime_ms);
        if (st->timed_out)
                fputs(",\"timed_out\":true", f);
        status_json_names(f, st);
        if (st->stdin_state != JOBWORKER__V1__STDIN_STATE__STDIN_STATE_NULL)
                fprintf(f, ",\"stdin\":\"%s\"", format_stdin_state(st->stdin_state, true));
        if (st->tty)
                fputs(",\"tty\":true", f);
        fputc('}', f);
}

void cli_format_list_json(FILE *f, CliJobStatus *const *jobs, size_t n) {
        if (n == 0) {
                fputs("[]\n", f);
                return;
        }
        fputs("[\n", f);
        for (size_t i = 0; i < n; i++) {
                cli_format_status_json(f, jobs[i]);
                fputs(i + 1 < n ? ",\n" : "\n", f);
        }
        fputs("]\n", f);
}

char *cli_terminal_safe(const char *str) {
        const unsigned char *s = (const unsigned char *) (str ?: "");
        size_t n = strlen((const char *) s);
        char *out = malloc(n + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n;) {
                if (s[i] < 0x20 || s[i] == 0x7f) {
                        *o++ = '?';
                        i++;
                        continue;
                }
                size_t k = utf8_char_len(s + i, n - i);
                /* C1 control characters (U+0080..U+009F) can also drive terminals. */
                if (k == 0 || (k == 2 && s[i] == 0xc2 && s[i + 1] < 0xa0)) {
                        *o++ = '?';
                        i += k ? k : 1;
                        continue;
                }
                memcpy(o, s + i, k);
                o += k;
                i += k;
        }
        *o = '\0';
        return out;
}

/* Display width of a terminal-safe string: one column per code point (good
 * enough for names and ids; wide CJK characters are rare in user names). */
static size_t text_width(const char *s) {
        size_t w = 0;
        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        w++;
        return w;
}

static void local_time(uint64_t us, char *buf, size_t size, bool zone) {
        time_t t = (time_t) (us / 1000000);
        struct tm tm;

        if (!localtime_r(&t, &tm) ||
            strftime(buf, size, zone ? "%Y-%m-%d %H:%M:%S %Z" : "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "-");
}

static void duration(uint64_t us, char *buf, size_t size) {
        uint64_t s = us / 1000000;

        if (s < 60)
                snprintf(buf, size, "%" PRIu64 ".%03" PRIu64 "s", s, (us / 1000) % 1000);
        else if (s < 3600)
                snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
        else
                snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s", s / 3600, (s / 60) % 60, s % 60);
}

/* CPU time: "0.012s", "1.500s", "2m05s". */
static void cpu_time(uint64_t us, char *buf, size_t size) {
        duration(us, buf, size);
}

const char *cli_format_bytes(uint64_t bytes, char *buf, size_t size) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };

        if (bytes < 1024) {
                snprintf(buf, size, "%" PRIu64 " B", bytes);
                return buf;
        }
        unsigned u = 0;
        uint64_t div = 1024;
        while (u + 1 < ELEMENTSOF(units) && bytes >= div * 1024) {
                div *= 1024;
                u++;
        }
        /* one decimal, rounded down so a peak is never overstated */
        snprintf(buf, size, "%" PRIu64 ".%" PRIu64 " %s", bytes / div, (bytes % div) * 10 / div, units[u]);
        return buf;
}

/* Name: and Labels:, only when the job has them. */
static void status_text_names(FILE *f, const CliJobStatus *st) {
        if (st->name && st->name[0]) {
                _cleanup_free_ char *name = cli_terminal_safe(st->name);
                fprintf(f, "Name:     %s\n", name ?: "?");
        }
        if (st->n_labels) {
                _cleanup_free_ char *labels = cli_labels_text(st, ", ");
                fprintf(f, "Labels:   %s\n", labels ?: "?");
        }
}

void cli_format_status_text(FILE *f, const CliJobStatus *st) {
        _cleanup_free_ char *id = cli_terminal_safe(st->job_id);
        _cleanup_free_ char *owner = cli_terminal_safe(st->owner);
        _cleanup_free_ char *command = cli_terminal_safe(st->command);
        char t[64], d[32], sig[16];

        if (!id || !owner || !command)
                return;
        fprintf(f, "Job:      %s\n", id);
        status_text_names(f, st);
        switch (st->state) {
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING:
                fprintf(f, "State:    running%s\n", st->timed_out        ? " (timed out, being stopped)"
                                                       : st->stop_requested ? " (stop requested)"
                                                                            : "");
                break;
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_EXITED:
                fprintf(f, "State:    exited with code %d%s\n", st->exit_code,
                        st->stop_requested ? " (after a stop request)" : "");
                break;
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_KILLED:
                fprintf(f, "State:    killed by signal %d (%s)%s\n", st->signal, cli_signal_name(st->signal, sig),
                        st->oom_killed       ? " (out of memory: the OOM killer)"
                        : st->timed_out      ? " (timed out: its max runtime passed)"
                        : st->stop_requested ? " (stopped)"
                                             : "");
                break;
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_LOST:
                fputs(st->process_alive ? "State:    lost (the server stopped while it ran), its process still runs "
                                          "(stop stops it)\n"
                                        : "State:    lost (the server stopped while it ran)\n", f);
                break;
        case JOBWORKER__V1__JOB_STATE__JOB_STATE_ENDED:
                fputs("State:    ended, exit code unknown (the server was restarted while it ran, and this kernel "
                      "cannot tell how it ended)\n", f);
                break;
        default:
                fputs("State:    unknown\n", f);
        }
        fprintf(f, "Command:  %s\n", command);
        fprintf(f, "Owner:    %s\n", owner);
        fprintf(f, "PID:      %d\n", st->pid);
        local_time(st->start_time_us, t, sizeof t, true);
        fprintf(f, "Started:  %s\n", t);
        if (st->end_time_us) {
                local_time(st->end_time_us, t, sizeof t, true);
                duration(st->end_time_us >= st->start_time_us ? st->end_time_us - st->start_time_us : 0, d, sizeof d);
                fprintf(f, "Ended:    %s (after %s)\n", t, d);
        }
        fprintf(f, "Output:   %" PRIu64 " bytes on stdout, %" PRIu64 " bytes on stderr", st->stdout_bytes,
                st->stderr_bytes);
        if (st->output_truncated || st->dropped_bytes)
                fprintf(f, " (%" PRIu64 " bytes dropped by the server)", st->dropped_bytes);
        fputc('\n', f);
        if (st->max_runtime_ms) {
                char m[PARSE_DURATION_STRING_MAX];
                fprintf(f, "Limit:    %s %s\n", st->timed_out ? "timed out after" : "runs at most",
                        format_duration(st->max_runtime_ms * 1000, m));
        }
        if (st->stdin_state != JOBWORKER__V1__STDIN_STATE__STDIN_STATE_NULL)
                fprintf(f, "Stdin:    %s%s\n", st->tty ? "a terminal, " : "", format_stdin_state(st->stdin_state, false));
        if (st->files_removed)
                fputs("Files:    deleted from the server's state directory while the job was known: later output "
                      "is not kept, and a server restart forgets the job\n", f);
        if (!st->has_cgroup) {
                fputs("Cgroup:   none (CPU time, memory and OOM kills are not measured)\n", f);
                return;
        }
        cpu_time(st->cpu_usec, d, sizeof d);
        fprintf(f, "CPU time: %s\n", d);
        if (st->memory_peak_bytes) {
                cli_format_bytes(st->memory_peak_bytes, t, sizeof t);
                fprintf(f, "Memory:   %s peak\n", t);
        } else
                fputs("Memory:   not measured (no memory controller)\n", f);
        if (st->oom_kills || st->oom_killed)
                fprintf(f, "OOM:      %" PRIu64 " process%s killed by the OOM killer%s\n", st->oom_kills,
                        st->oom_kills == 1 ? "" : "es", st->oom_killed ? "; the job ended because of it" : "");
}

char *cli_labels_text(const CliJobStatus *st, const char *sep) {
        char *m = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&m, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < st->n_labels; i++)
                fprintf(f, "%s%s=%s", i ? sep : "", st->labels[i]->key ?: "", st->labels[i]->value ?: "");
        if (fclose(f) != 0) {
                free(m);
                return NULL;
        }
        /* From the server: no control characters to the terminal. */
        char *safe = m ? cli_terminal_safe(m) : NULL;
        free(m);
        return safe;
}

/* The NAME and LABELS columns are there only when a listed job has a name
 * or labels: without them the table is the one of before. */
enum { COL_ID, COL_NAME, COL_STATE, COL_OWNER, COL_STARTED, COL_CPU, COL_MEMORY, COL_LABELS, COL_COMMAND, N_COLS };

void cli_format_list_text(FILE *f, CliJobStatus *const *jobs, size_t n) {
        static const char *const header[N_COLS] = { "JOB ID", "NAME", "STATE", "OWNER", "STARTED", "CPU", "MEMORY", "LABELS", "COMMAND" };
        char **cells = calloc(n * N_COLS + 1, sizeof(char *));
        size_t width[N_COLS];
        bool shown[N_COLS];

        if (!cells)
                return;
        for (size_t c = 0; c < N_COLS; c++)
                shown[c] = c != COL_NAME && c != COL_LABELS;
        for (size_t i = 0; i < n; i++) {
                shown[COL_NAME] |= jobs[i]->name && jobs[i]->name[0];
                shown[COL_LABELS] |= jobs[i]->n_labels > 0;
        }
        for (size_t c = 0; c < N_COLS; c++)
                width[c] = strlen(header[c]);
        for (size_t i = 0; i < n; i++) {
                char state[64], t[64], cpu[32] = "-", mem[32] = "-";

                local_time(jobs[i]->start_time_us, t, sizeof t, false);
                if (jobs[i]->has_cgroup) {
                        cpu_time(jobs[i]->cpu_usec, cpu, sizeof cpu);
                        if (jobs[i]->memory_peak_bytes)
                                cli_format_bytes(jobs[i]->memory_peak_bytes, mem, sizeof mem);
                }
                char **row = cells + i * N_COLS;
                row[COL_ID] = cli_terminal_safe(jobs[i]->job_id);
                row[COL_NAME] = cli_terminal_safe(jobs[i]->name && jobs[i]->name[0] ? jobs[i]->name : "-");
                row[COL_STATE] = strdup(cli_state_short(jobs[i], state));
                row[COL_OWNER] = cli_terminal_safe(jobs[i]->owner);
                row[COL_STARTED] = strdup(t);
                row[COL_CPU] = strdup(cpu);
                row[COL_MEMORY] = strdup(mem);
                row[COL_LABELS] = jobs[i]->n_labels ? cli_labels_text(jobs[i], ",") : strdup("-");
                row[COL_COMMAND] = cli_terminal_safe(jobs[i]->command);
                for (size_t c = 0; c < N_COLS; c++) {
                        if (!cells[i * N_COLS + c])
                                goto finish;
                        width[c] = MAX(width[c], text_width(cells[i * N_COLS + c]));
                }
        }
        for (size_t i = 0; i <= n; i++)
                for (size_t c = 0; c < N_COLS; c++) {
                        const char *s = i == 0 ? header[c] : cells[(i - 1) * N_COLS + c];
                        if (!shown[c])
                                continue;
                        if (c + 1 == N_COLS)
                                fprintf(f, "%s\n", s);
                        else
                                fprintf(f, "%s%*s", s, (int) (width[c] - text_width(s) + 2), "");
                }
finish:
        for (size_t i = 0; i < n * N_COLS; i++)
                free(cells[i]);
        free(cells);
}
