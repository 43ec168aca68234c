/* SPDX-License-Identifier: MIT */

/*
 * Job status files (see jobfile.h). The one idea: one table of fields
 * drives both the writer and the parser, so they cannot disagree.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jobfile.h"
#include "shared/macro.h"

const char *job_state_to_string(JobState s) {
        switch (s) {
        case JOB_STATE_RUNNING:
                return "running";
        case JOB_STATE_EXITED:
                return "exited";
        case JOB_STATE_KILLED:
                return "killed";
        case JOB_STATE_LOST:
                return "lost";
        case JOB_STATE_ENDED:
                return "ended";
        }
        return "unknown";
}

typedef enum FieldType {
        F_ID,
        F_STATE,
        F_INT,
        F_BOOL,
        F_U64,
        F_STRING,
        F_LOG_SIZE, /* not part of JobStatus */
        F_VERSION,  /* of the record (jobrecord.h); read and ignored */
} FieldType;

typedef struct Field {
        const char *key;
        FieldType type;
        size_t offset;
        size_t size; /* F_STRING: buffer size */
} Field;

#define S(member) offsetof(JobStatus, member)
#define STR(member) offsetof(JobStatus, member), sizeof(((JobStatus *) 0)->member)

static const Field fields[] = {
        { "version", F_VERSION, 0, 0 },
        { "id", F_ID, S(id), 0 },
        { "state", F_STATE, S(state), 0 },
        { "exit_code", F_INT, S(exit_code), 0 },
        { "signal", F_INT, S(signal), 0 },
        { "stop_requested", F_BOOL, S(stop_requested), 0 },
        { "stop_deadline", F_U64, S(stop_deadline), 0 },
        { "max_runtime_usec", F_U64, S(max_runtime_usec), 0 },
        { "runtime_deadline", F_U64, S(runtime_deadline), 0 },
        { "timed_out", F_BOOL, S(timed_out), 0 },
        { "stdin_state", F_INT, S(stdin_state), 0 },
        { "tty", F_BOOL, S(tty), 0 },
        { "pid", F_INT, S(pid), 0 },
        { "pid_starttime", F_U64, S(pid_starttime), 0 },
        { "starting", F_BOOL, S(starting), 0 },
        { "start_usec", F_U64, S(start_usec), 0 },
        { "end_usec", F_U64, S(end_usec), 0 },
        { "stdout_bytes", F_U64, S(stdout_bytes), 0 },
        { "stderr_bytes", F_U64, S(stderr_bytes), 0 },
        { "truncated", F_BOOL, S(truncated), 0 },
        { "dropped_bytes", F_U64, S(dropped_bytes), 0 },
        { "log_size", F_LOG_SIZE, 0, 0 },
        { "has_cgroup", F_BOOL, S(has_cgroup), 0 },
        { "cpu_usec", F_U64, S(cpu_usec), 0 },
        { "memory_peak", F_U64, S(memory_peak), 0 },
        { "oom_kills", F_U64, S(oom_kills), 0 },
        { "oom_killed", F_BOOL, S(oom_killed), 0 },
        { "owner", F_STRING, STR(owner) },
        { "command", F_STRING, STR(command) },
        { "name", F_STRING, STR(name) },
        { "labels", F_STRING, STR(labels) },
        { "request_id", F_STRING, STR(request_id) },
};

_Static_assert(sizeof(pid_t) == sizeof(int), "pid is stored as int");

/* Appends with bounds; *n grows past size on overflow (checked at the end). */
static void put(char *buf, size_t size, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t size, size_t *n, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(*n < size ? buf + *n : NULL, *n < size ? size - *n : 0, fmt, ap);
        va_end(ap);
        if (k > 0)
                *n += (size_t) k;
}

int jobfile_format(const JobStatus *s, uint64_t log_size, char *buf, size_t size) {
        const char *base = (const char *) s;
        char id[JOB_ID_STRING_MAX];
        size_t n = 0;

        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                const Field *f = &fields[i];
                const void *p = base + f->offset;
                switch (f->type) {
                case F_ID:
                        put(buf, size, &n, "%s=%s\n", f->key, job_id_to_string(p, id));
                        break;
                case F_STATE:
                        put(buf, size, &n, "%s=%s\n", f->key, job_state_to_string(*(const JobState *) p));
                        break;
                case F_INT:
                        put(buf, size, &n, "%s=%d\n", f->key, *(const int *) p);
                        break;
                case F_BOOL:
                        put(buf, size, &n, "%s=%d\n", f->key, *(const bool *) p ? 1 : 0);
                        break;
                case F_U64:
                        put(buf, size, &n, "%s=%" PRIu64 "\n", f->key, *(const uint64_t *) p);
                        break;
                case F_LOG_SIZE:
                        put(buf, size, &n, "%s=%" PRIu64 "\n", f->key, log_size);
                        break;
                case F_VERSION:
                        put(buf, size, &n, "%s=%d\n", f->key, JOBFILE_VERSION);
                        break;
                case F_STRING:
                        /* \\ and control bytes escaped: one value, one line. */
                        put(buf, size, &n, "%s=", f->key);
                        for (const unsigned char *c = p; *c; c++) {
                                if (*c == '\\')
                                        put(buf, size, &n, "\\\\");
                                else if (*c < 0x20 || *c == 0x7f)
                                        put(buf, size, &n, "\\x%02x", *c);
                                else
                                        put(buf, size, &n, "%c", *c);
                        }
                        put(buf, size, &n, "\n");
                        break;
                }
        }
        if (n >= size)
                return -ENOBUFS;
        return (int) n;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static void unescape_into(const char *s, size_t len, char *out, size_t size) {
        size_t n = 0;
        for (size_t i = 0; i < len && n + 1 < size;) {
                if (s[i] == '\\' && i + 1 < len && s[i + 1] == '\\') {
                        out[n++] = '\\';
                        i += 2;
                } else if (s[i] == '\\' && i + 3 < len && s[i + 1] == 'x' && unhex(s[i + 2]) >= 0 &&
                           unhex(s[i + 3]) >= 0) {
                        out[n++] = (char) (unhex(s[i + 2]) << 4 | unhex(s[i + 3]));
                        i += 4;
                } else
                        out[n++] = s[i++];
        }
        out[n] = 0;
}

static int parse_state(const char *v, size_t len, JobState *ret) {
        for (JobState i = JOB_STATE_RUNNING; i <= JOB_STATE_ENDED; i++) {
                const char *name = job_state_to_string(i);
                if (strlen(name) == len && memcmp(name, v, len) == 0) {
                        *ret = i;
                        return 0;
                }
        }
        return -EINVAL;
}

unsigned jobfile_version(const char *text) {
        for (const char *line = text; line && *line;) {
                if (strncmp(line, "version=", 8) == 0)
                        return (unsigned) strtoul(line + 8, NULL, 10);
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return 1; /* the first release wrote none */
}

int jobfile_parse(const char *text, JobStatus *ret, uint64_t *ret_log_size) {
        JobStatus s = {};
        uint64_t log_size = 0;
        bool have_id = false, have_state = false;
        char *base = (char *) &s, tmp[64];

        for (const char *line = text; *line;) {
                const char *end = strchrnul(line, '\n'), *eq = memchr(line, '=', (size_t) (end - line));
                const char *next = *end ? end + 1 : end;
                if (!eq) {
                        line = next;
                        continue;
                }
                size_t klen = (size_t) (eq - line), vlen = (size_t) (end - eq - 1);
                const char *v = eq + 1;

                for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                        const Field *f = &fields[i];
                        if (strlen(f->key) != klen || memcmp(f->key, line, klen) != 0)
                                continue;
                        void *p = base + f->offset;
                        if (f->type == F_STRING) {
                                unescape_into(v, vlen, p, f->size);
                                break;
                        }
                        /* Numbers and names are short: copy to terminate. */
                        snprintf(tmp, sizeof(tmp), "%.*s", (int) MIN(vlen, sizeof(tmp) - 1), v);
                        switch (f->type) {
                        case F_ID:
                                have_id = job_id_from_string(tmp, p) >= 0;
                                break;
                        case F_STATE:
                                have_state = parse_state(v, vlen, p) >= 0;
                                break;
                        case F_INT:
                                *(int *) p = (int) strtol(tmp, NULL, 10);
                                break;
                        case F_BOOL:
                                *(bool *) p = strtol(tmp, NULL, 10) != 0;
                                break;
                        case F_U64:
                                *(uint64_t *) p = strtoull(tmp, NULL, 10);
                                break;
                        case F_LOG_SIZE:
                                log_size = strtoull(tmp, NULL, 10);
                                break;
                        case F_STRING:
                        case F_VERSION:
                                break;
                        }
                        break;
                }
                line = next;
        }
        if (!have_id || !have_state)
                return -EBADMSG;
        *ret = s;
        *ret_log_size = log_size;
        return 0;
}
