/* SPDX-License-Identifier: MIT */
/*
 * Request decoding and validation (see request.h).
 *
 * The one idea: the wire bytes are walked once before protobuf-c sees them.
 * protobuf-c silently truncates a string at an embedded NUL byte, which
 * would turn "ls\0-rf" into "ls", and it would happily allocate a million
 * empty strings for a 2 MiB message of repeated fields. The walk rejects
 * both (and anything structurally broken) before any allocation.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobworker/v1/jobworker.pb-c.h"
#include "rpc/request.h"
#include "shared/job-name.h"
#include "shared/string-util.h"

static const struct {
        const char *path;
        const char *name;
        const ProtobufCMessageDescriptor *descriptor;
        const char *type;
} methods[_REQUEST_METHOD_MAX] = {
        [REQUEST_START] = { "/jobworker.v1.JobWorker/Start", "Start", &jobworker__v1__start_request__descriptor, "StartRequest" },
        [REQUEST_STOP] = { "/jobworker.v1.JobWorker/Stop", "Stop", &jobworker__v1__stop_request__descriptor, "StopRequest" },
        [REQUEST_STATUS] = { "/jobworker.v1.JobWorker/Status", "Status", &jobworker__v1__status_request__descriptor, "StatusRequest" },
        [REQUEST_LIST] = { "/jobworker.v1.JobWorker/List", "List", &jobworker__v1__list_request__descriptor, "ListRequest" },
        [REQUEST_OUTPUT] = { "/jobworker.v1.JobWorker/Output", "Output", &jobworker__v1__output_request__descriptor, "OutputRequest" },
        [REQUEST_SIGNAL] = { "/jobworker.v1.JobWorker/Signal", "Signal", &jobworker__v1__signal_request__descriptor, "SignalRequest" },
        [REQUEST_INPUT] = { "/jobworker.v1.JobWorker/Input", "Input", &jobworker__v1__input_request__descriptor, "InputRequest" },
};

const char *request_method_path(RequestMethod m) {
        return m >= 0 && m < _REQUEST_METHOD_MAX ? methods[m].path : NULL;
}

const char *request_method_name(RequestMethod m) {
        return m >= 0 && m < _REQUEST_METHOD_MAX ? methods[m].name : NULL;
}

Request *request_free(Request *r) {
        if (!r)
                return NULL;
        free(r->argv);
        free(r->env);
        if (r->message)
                protobuf_c_message_free_unpacked(r->message, NULL);
        free(r);
        return NULL;
}

/* The wire walk. string_fields: bit mask of field numbers (< 32) holding
 * strings; counts[i] receives how often field i (< 32) occurs. */
#define WIRE_FIELDS 32

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64; shift += 7) {
                uint8_t b;

                if (*p >= end)
                        return -EINVAL;
                b = *(*p)++;
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EINVAL;
}

/* The next field at *p: its number, wire type and, for wire type 2, its
 * payload. -EINVAL if the bytes are not protobuf. */
static int wire_next(const uint8_t **p, const uint8_t *end, uint64_t *ret_field, unsigned *ret_type,
                     const uint8_t **ret_data, uint64_t *ret_len) {
        uint64_t key, v;

        if (read_varint(p, end, &key) < 0)
                return -EINVAL;
        *ret_field = key >> 3;
        *ret_type = key & 7;
        *ret_data = NULL;
        *ret_len = 0;
        if (*ret_field == 0 || *ret_field > 536870911u)
                return -EINVAL;
        switch (key & 7) {
        case 0:
                return read_varint(p, end, &v);
        case 1:
                if ((size_t) (end - *p) < 8)
                        return -EINVAL;
                *p += 8;
                return 0;
        case 5:
                if ((size_t) (end - *p) < 4)
                        return -EINVAL;
                *p += 4;
                return 0;
        case 2:
                if (read_varint(p, end, &v) < 0 || v > (uint64_t) (end - *p))
                        return -EINVAL;
                *ret_data = *p;
                *ret_len = v;
                *p += v;
                return 0;
        default: /* groups (3, 4) are not proto3; 6, 7 do not exist */
                return -EINVAL;
        }
}

/* Walks one message: *ret_nul_field is the first field of string_fields
 * that holds a NUL byte (0: none), counts[f] how often field f occurs
 * (counts NULL: not counted). -EINVAL if it is not valid protobuf. */
static int wire_walk(const uint8_t *p, size_t size, uint32_t string_fields, size_t *counts, unsigned *ret_nul_field) {
        const uint8_t *end = p + size;

        if (counts)
                memset(counts, 0, sizeof(size_t) * WIRE_FIELDS);
        *ret_nul_field = 0;
        while (p < end) {
                const uint8_t *data;
                uint64_t field, len;
                unsigned type;

                if (wire_next(&p, end, &field, &type, &data, &len) < 0)
                        return -EINVAL;
                if (type == 2 && field < WIRE_FIELDS && (string_fields & (1u << field)) &&
                    memchr(data, 0, len) && *ret_nul_field == 0)
                        *ret_nul_field = field;
                if (counts && field < WIRE_FIELDS)
                        counts[field]++;
        }
        return 0;
}

/* StartRequest's nested parts, before protobuf-c allocates them: the io
 * device strings (Limits.io = 4, IoLimit.device = 1), the labels' keys and
 * values (Label, field 11) and the terminal's TERM (Terminal, field 16)
 * must not hide a NUL byte, and the io entries (protobuf-c merges repeated
 * Limits messages) and isolate values (field 5, packed or not) are
 * bounded. */
#define START_FIELD_LIMITS 4
#define START_FIELD_ISOLATE 5
#define START_FIELD_LABELS 11
#define START_FIELD_TTY 16
#define LIMITS_FIELD_IO 4
#define IO_FIELD_DEVICE 1
#define LIST_FIELD_LABELS 5
#define START_ISOLATE_MAX 16

static const char *const label_field_names[3] = { NULL, "key", "value" };
#define LABEL_STRINGS ((1u << 1) | (1u << 2))
#define TERMINAL_STRINGS (1u << 3)

/* A nested message's first string field of mask that holds a NUL byte:
 * its number, 0 if none, -EINVAL if it is not valid protobuf. */
static int nested_nul_field(const uint8_t *p, size_t size, uint32_t mask) {
        unsigned f;

        return wire_walk(p, size, mask, NULL, &f) < 0 ? -EINVAL : (int) f;
}

/* Labels (Start's and List's): "labels[i].key contains a NUL byte". */
static int check_label_wire(const char *type, size_t i, const uint8_t *data, size_t len, char **ret_message) {
        int f = nested_nul_field(data, len, LABEL_STRINGS);

        if (f < 0)
                return replace_message(ret_message, -EINVAL, "malformed labels in %s (not valid protobuf)", type);
        if (f > 0)
                return replace_message(ret_message, -EINVAL, "labels[%zu].%s contains a NUL byte", i, label_field_names[f]);
        return 0;
}

static int check_list_wire(const uint8_t *p, size_t size, char **ret_message) {
        const uint8_t *end = p + size;
        size_t n_labels = 0;

        while (p < end) {
                const uint8_t *data;
                uint64_t field, len;
                unsigned type;
                int k;

                if (wire_next(&p, end, &field, &type, &data, &len) < 0)
                        return replace_message(ret_message, -EINVAL, "malformed ListRequest message (not valid protobuf)");
                if (field == LIST_FIELD_LABELS && type == 2 &&
                    (k = check_label_wire("ListRequest", n_labels++, data, len, ret_message)) < 0)
                        return k;
        }
        return 0;
}

static int check_start_wire(const uint8_t *p, size_t size, char **ret_message) {
        const uint8_t *end = p + size;
        size_t n_io = 0, n_isolate = 0, n_labels = 0;

        while (p < end) {
                const uint8_t *data, *lp, *lend;
                uint64_t field, len;
                unsigned type;
                int k;

                if (wire_next(&p, end, &field, &type, &data, &len) < 0)
                        return replace_message(ret_message, -EINVAL, "malformed StartRequest message (not valid protobuf)");
                if (field == START_FIELD_ISOLATE)
                        n_isolate += type == 2 ? len : 1; /* a packed varint has at least one byte */
                if (field == START_FIELD_LABELS && type == 2 &&
                    (k = check_label_wire("StartRequest", n_labels++, data, len, ret_message)) < 0)
                        return k;
                if (field == START_FIELD_TTY && type == 2) {
                        k = nested_nul_field(data, len, TERMINAL_STRINGS);
                        if (k < 0)
                                return replace_message(ret_message, -EINVAL, "malformed tty in StartRequest (not valid protobuf)");
                        if (k > 0)
                                return replace_message(ret_message, -EINVAL, "tty.term contains a NUL byte");
                }
                if (field != START_FIELD_LIMITS || type != 2)
                        continue;
                for (lp = data, lend = data + len; lp < lend;) {
                        const uint8_t *io;
                        uint64_t f, l;
                        unsigned t;

                        if (wire_next(&lp, lend, &f, &t, &io, &l) < 0)
                                return replace_message(ret_message, -EINVAL, "malformed limits in StartRequest (not valid protobuf)");
                        if (f != LIMITS_FIELD_IO || t != 2)
                                continue;
                        if (++n_io > LIMITS_IO_MAX)
                                return replace_message(ret_message, -E2BIG, "too many io limits (at most %u)", LIMITS_IO_MAX);
                        k = nested_nul_field(io, l, 1u << IO_FIELD_DEVICE);
                        if (k < 0)
                                return replace_message(ret_message, -EINVAL, "malformed io limit in StartRequest (not valid protobuf)");
                        if (k > 0)
                                return replace_message(ret_message, -EINVAL, "limits.io[%zu].device contains a NUL byte", n_io - 1);
                }
        }
        if (n_isolate > START_ISOLATE_MAX)
                return replace_message(ret_message, -E2BIG, "too many isolate values (at most %u)", START_ISOLATE_MAX);
        return 0;
}

static int parse_job_id(const char *s, Request *r, char **ret_message) {
        char q[70];

        if (!s || !*s)
                return replace_message(ret_message, -EINVAL, "job id is missing");
        if (job_id_from_string(s, &r->job_id) < 0) {
                quote_printable(q, 64, s);
                return replace_message(ret_message, -EINVAL, "malformed job id '%s' (expected a UUID like 01234567-89ab-4def-8123-456789abcdef)", q);
        }
        job_id_to_string(&r->job_id, r->job_id_string);
        return 0;
}

static int check_limits(const Jobworker__V1__Limits *l, Request *r, char **ret_message) {
        if (!l)
                return 0;
        if (l->cpu_millis && (l->cpu_millis < LIMITS_CPU_MILLIS_MIN || l->cpu_millis > LIMITS_CPU_MILLIS_MAX))
                return replace_message(ret_message, -EINVAL,
                            "limits.cpu_millis %u is out of range (thousandths of a CPU: 0 for none, or %u to %u)",
                            l->cpu_millis, LIMITS_CPU_MILLIS_MIN, LIMITS_CPU_MILLIS_MAX);
        if (l->pids_max > LIMITS_PIDS_MAX)
                return replace_message(ret_message, -EINVAL, "limits.pids_max %llu is out of range (0 for none, or 1 to %u)",
                            (unsigned long long) l->pids_max, LIMITS_PIDS_MAX);
        if (l->n_io > LIMITS_IO_MAX)
                return replace_message(ret_message, -E2BIG, "too many io limits: %zu (at most %u)", l->n_io, LIMITS_IO_MAX);
        for (size_t i = 0; i < l->n_io; i++) {
                const Jobworker__V1__IoLimit *io = l->io[i];
                size_t len = io->device ? strlen(io->device) : 0;
                char q[70];

                if (len == 0)
                        return replace_message(ret_message, -EINVAL, "limits.io[%zu].device is empty (a block device or a path on one)", i);
                if (len > LIMITS_DEVICE_PATH_MAX)
                        return replace_message(ret_message, -E2BIG, "limits.io[%zu].device is too long: %zu bytes (at most %u)",
                                    i, len, LIMITS_DEVICE_PATH_MAX);
                if (io->device[0] != '/') {
                        quote_printable(q, 64, io->device);
                        return replace_message(ret_message, -EINVAL, "limits.io[%zu].device '%s' is not an absolute path", i, q);
                }
                if (!io->read_bps && !io->write_bps) {
                        quote_printable(q, 64, io->device);
                        return replace_message(ret_message, -EINVAL, "limits.io[%zu] for '%s' sets neither read_bps nor write_bps", i, q);
                }
                r->limits.io[i] = (LimitsIoRequest) {
                        .device = io->device,
                        .read_bps = io->read_bps,
                        .write_bps = io->write_bps,
                };
        }
        r->limits.n_io = l->n_io;
        r->limits.cpu_millis = l->cpu_millis;
        r->limits.memory_max = l->memory_max_bytes;
        r->limits.pids_max = l->pids_max;
        return 0;
}

/* StartRequest.isolate into a JOB_ISOLATE_* mask. */
static int parse_isolation(Jobworker__V1__StartRequest *m, Request *r, char **ret_message) {
        for (size_t i = 0; i < m->n_isolate; i++)
                switch ((int) m->isolate[i]) {
                case JOBWORKER__V1__ISOLATION__ISOLATION_PID:
                        r->isolate |= JOB_ISOLATE_PID;
                        break;
                case JOBWORKER__V1__ISOLATION__ISOLATION_NET:
                        r->isolate |= JOB_ISOLATE_NET;
                        break;
                case JOBWORKER__V1__ISOLATION__ISOLATION_TMP:
                        r->isolate |= JOB_ISOLATE_TMP;
                        break;
                default:
                        return replace_message(ret_message, -EINVAL, "isolate[%zu]: unknown isolation %d (expected 1 pid, 2 net or 3 tmp)",
                                    i, (int) m->isolate[i]);
                }
        return 0;
}

/* Name, labels and request id of a Start: the rules of shared/job-name.h. */
static int check_start_names(Jobworker__V1__StartRequest *m, Request *r, char **ret_message) {
        const char *keys[JOB_LABELS_MAX], *values[JOB_LABELS_MAX];
        char msg[JOB_NAME_MSG_MAX];
        int k;

        if (m->name && m->name[0]) {
                k = job_name_check(m->name, msg, sizeof(msg));
                if (k < 0)
                        return replace_message(ret_message, k, "%s", msg);
                r->name = m->name;
        }
        if (m->request_id && m->request_id[0]) {
                k = job_request_id_check(m->request_id, msg, sizeof(msg));
                if (k < 0)
                        return replace_message(ret_message, k, "%s", msg);
                r->request_id = m->request_id;
        }
        if (m->n_labels > JOB_LABELS_MAX)
                return replace_message(ret_message, -E2BIG, "too many labels: %zu (at most %u)", m->n_labels, JOB_LABELS_MAX);
        for (size_t i = 0; i < m->n_labels; i++) {
                keys[i] = m->labels[i]->key ?: "";
                values[i] = m->labels[i]->value ?: "";
        }
        k = job_labels_join(keys, values, m->n_labels, r->labels, sizeof(r->labels), msg, sizeof(msg));
        if (k < 0)
                return replace_message(ret_message, k, "%s", msg);
        return 0;
}

/* A terminal's size and TERM (a name like xterm-256color: it is put in
 * the job's environment). */
static int check_terminal(const Jobworker__V1__Terminal *t, Request *r, char **ret_message) {
        size_t len;

        if (!t)
                return 0;
        if (t->rows == 0 || t->cols == 0 || t->rows > 0xffff || t->cols > 0xffff)
                return replace_message(ret_message, -EINVAL, "tty: window size %ux%u out of range (1..65535 rows and columns)",
                                       t->rows, t->cols);
        len = strlen(t->term ?: "");
        if (len > REQUEST_TERM_MAX || strspn(t->term ?: "", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-_") != len)
                return replace_message(ret_message, -EINVAL, "tty: invalid TERM (at most %u letters, digits and . + - _)",
                                       REQUEST_TERM_MAX);
        r->tty = true;
        r->terminal = (JobTerminal) { .rows = (uint16_t) t->rows, .cols = (uint16_t) t->cols, .term = t->term };
        return 0;
}

static int check_start(Jobworker__V1__StartRequest *m, Request *r, char **ret_message) {
        size_t total = 0;
        int k;

        if (m->n_argv == 0)
                return replace_message(ret_message, -EINVAL, "argv is empty: the program to run is missing");
        if (m->n_argv > JOB_ARGV_MAX)
                return replace_message(ret_message, -E2BIG, "too many arguments: %zu (at most %u)", m->n_argv, JOB_ARGV_MAX);
        if (m->n_env > JOB_ENV_MAX)
                return replace_message(ret_message, -E2BIG, "too many environment entries: %zu (at most %u)", m->n_env, JOB_ENV_MAX);
        if (!m->argv[0][0])
                return replace_message(ret_message, -EINVAL, "argv[0] (the program) is empty");

        for (size_t i = 0; i < m->n_argv; i++) {
                size_t l = strlen(m->argv[i]);
                if (l > JOB_STRING_MAX)
                        return replace_message(ret_message, -E2BIG, "argv[%zu] is too long: %zu bytes (at most %u)", i, l, JOB_STRING_MAX);
                total += l + 1;
        }
        for (size_t i = 0; i < m->n_env; i++) {
                const char *e = m->env[i], *eq = strchr(e, '=');
                size_t l = strlen(e);
                char q[70];

                if (l > JOB_STRING_MAX)
                        return replace_message(ret_message, -E2BIG, "env[%zu] is too long: %zu bytes (at most %u)", i, l, JOB_STRING_MAX);
                if (!eq || eq == e) {
                        quote_printable(q, 64, e);
                        return replace_message(ret_message, -EINVAL, "env[%zu] '%s' is not of the form KEY=VALUE", i, q);
                }
                total += l + 1;
        }
        if (m->cwd && m->cwd[0]) {
                size_t l = strlen(m->cwd);
                char q[70];

                if (l > JOB_STRING_MAX)
                        return replace_message(ret_message, -E2BIG, "cwd is too long: %zu bytes (at most %u)", l, JOB_STRING_MAX);
                if (m->cwd[0] != '/') {
                        quote_printable(q, 64, m->cwd);
                        return replace_message(ret_message, -EINVAL, "cwd '%s' is not an absolute path", q);
                }
                total += l + 1;
                r->cwd = m->cwd;
        }
        if (total > JOB_ARGS_TOTAL_MAX)
                return replace_message(ret_message, -E2BIG, "argv, env and cwd are too large together: %zu bytes (at most %u)",
                            total, JOB_ARGS_TOTAL_MAX);

        k = check_limits(m->limits, r, ret_message);
        if (k < 0)
                return k;
        if (m->max_runtime_ms > LIMITS_RUNTIME_MAX_USEC / 1000)
                return replace_message(ret_message, -EINVAL, "max_runtime_ms %llu is out of range (0 for the default, "
                                       "or 1 to %llu: ten years)", (unsigned long long) m->max_runtime_ms,
                                       (unsigned long long) (LIMITS_RUNTIME_MAX_USEC / 1000));
        r->max_runtime_usec = m->max_runtime_ms * 1000;
        k = check_start_names(m, r, ret_message);
        if (k < 0)
                return k;
        k = parse_isolation(m, r, ret_message);
        if (k < 0)
                return k;

        k = check_terminal(m->tty, r, ret_message);
        if (k < 0)
                return k;

        r->argv = calloc(m->n_argv + 1, sizeof(char *));
        if (!r->argv)
                return -ENOMEM;
        memcpy(r->argv, m->argv, m->n_argv * sizeof(char *));
        r->stdin_open = m->stdin_open;
        if (m->n_env > 0) {
                r->env = calloc(m->n_env + 1, sizeof(char *));
                if (!r->env)
                        return -ENOMEM;
                memcpy(r->env, m->env, m->n_env * sizeof(char *));
        }
        return 0;
}

/* The filters of a List. */
static int check_list(Jobworker__V1__ListRequest *m, Request *r, char **ret_message) {
        char msg[JOB_NAME_MSG_MAX];
        int k;

        r->running_only = m->running_only;
        for (size_t i = 0; i < m->n_states; i++) {
                int s = (int) m->states[i];
                if (s < JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING || s > JOBWORKER__V1__JOB_STATE__JOB_STATE_ENDED)
                        return replace_message(ret_message, -EINVAL, "states[%zu]: unknown job state %d (expected 1 to 5)", i, s);
                /* The API's numbers are the engine's plus one. */
                r->list_states |= 1u << (s - JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING + JOB_STATE_RUNNING);
        }
        if (m->owner && m->owner[0]) {
                if (strlen(m->owner) > JOB_OWNER_MAX)
                        return replace_message(ret_message, -E2BIG, "owner is too long: %zu bytes (at most %u)", strlen(m->owner),
                                               JOB_OWNER_MAX);
                r->list_owner = m->owner;
        }
        if (m->name && m->name[0]) {
                /* A name no job can have matches nothing: refused as such. */
                k = job_name_check(m->name, msg, sizeof(msg));
                if (k < 0)
                        return replace_message(ret_message, k, "%s", msg);
                r->list_name = m->name;
        }
        if (m->n_labels > JOB_LABELS_MAX)
                return replace_message(ret_message, -E2BIG, "too many label selectors: %zu (at most %u)", m->n_labels,
                                       JOB_LABELS_MAX);
        for (size_t i = 0; i < m->n_labels; i++) {
                const char *key = m->labels[i]->key ?: "", *value = m->labels[i]->value ?: "";
                k = job_label_check(key, value, msg, sizeof(msg));
                if (k < 0)
                        return replace_message(ret_message, k, "label selector %zu: %s", i, msg);
                r->list_label_keys[i] = key;
                r->list_label_values[i] = value;
        }
        r->n_list_labels = m->n_labels;
        return 0;
}

static int check_output(Jobworker__V1__OutputRequest *m, Request *r, char **ret_message) {
        int k = parse_job_id(m->job_id, r, ret_message);
        if (k < 0)
                return k;
        switch ((int) m->stream) {
        case JOBWORKER__V1__STREAM__STREAM_UNSPECIFIED:
        case JOBWORKER__V1__STREAM__STREAM_BOTH:
                r->streams = JOB_STREAMS_ALL;
                break;
        case JOBWORKER__V1__STREAM__STREAM_STDOUT:
                r->streams = JOB_STREAM_STDOUT;
                break;
        case JOBWORKER__V1__STREAM__STREAM_STDERR:
                r->streams = JOB_STREAM_STDERR;
                break;
        default:
                return replace_message(ret_message, -EINVAL, "unknown stream %d (expected 1 stdout, 2 stderr or 3 both)", (int) m->stream);
        }
        r->offset = m->offset;
        r->follow = m->follow;
        return 0;
}

static int check_stop(Jobworker__V1__StopRequest *m, Request *r, char **ret_message) {
        int k = parse_job_id(m->job_id, r, ret_message);
        if (k < 0 || !m->use_grace)
                return k;
        if (m->grace_ms > REQUEST_GRACE_MAX_MS)
                return replace_message(ret_message, -EINVAL, "grace period %llu ms is too long (at most %llu ms)",
                                       (unsigned long long) m->grace_ms, (unsigned long long) REQUEST_GRACE_MAX_MS);
        r->grace_usec = m->grace_ms * 1000;
        return 0;
}

static int check_signal(Jobworker__V1__SignalRequest *m, Request *r, char **ret_message) {
        int k = parse_job_id(m->job_id, r, ret_message);
        if (k < 0)
                return k;
        /* 0 would only check that the job runs, which Status says. */
        if (m->signal < 1 || m->signal > JOB_SIGNAL_MAX)
                return replace_message(ret_message, -EINVAL, "signal %d is out of range (1 to %d)", (int) m->signal,
                                       JOB_SIGNAL_MAX);
        r->signal = m->signal;
        r->signal_all = m->all;
        return 0;
}

/* Repeated fields counted by the walk, before protobuf-c allocates them. */
static int check_counts(RequestMethod method, const size_t counts[static WIRE_FIELDS], char **ret_message) {
        if (method == REQUEST_START) {
                if (counts[1] > JOB_ARGV_MAX)
                        return replace_message(ret_message, -E2BIG, "too many arguments: %zu (at most %u)", counts[1], JOB_ARGV_MAX);
                if (counts[2] > JOB_ENV_MAX)
                        return replace_message(ret_message, -E2BIG, "too many environment entries: %zu (at most %u)",
                                    counts[2], JOB_ENV_MAX);
                if (counts[11] > JOB_LABELS_MAX)
                        return replace_message(ret_message, -E2BIG, "too many labels: %zu (at most %u)", counts[11], JOB_LABELS_MAX);
        }
        if (method == REQUEST_LIST && counts[5] > JOB_LABELS_MAX)
                return replace_message(ret_message, -E2BIG, "too many label selectors: %zu (at most %u)", counts[5],
                                       JOB_LABELS_MAX);
        if (method == REQUEST_LIST && counts[2] > 16)
                return replace_message(ret_message, -E2BIG, "too many states: %zu (at most 16)", counts[2]);
        return 0;
}

/* The kind of an Input message; later messages need not name the job. */
static int check_input(Jobworker__V1__InputRequest *m, Request *r, bool first, char **ret_message) {
        int k = 0;

        if (first || (m->job_id && *m->job_id))
                k = parse_job_id(m->job_id, r, ret_message);
        if (k < 0)
                return k;
        switch (m->kind_case) {
        case JOBWORKER__V1__INPUT_REQUEST__KIND_DATA:
                r->input_kind = REQUEST_INPUT_DATA;
                r->input_data = m->data.data;
                r->input_size = m->data.len;
                break;
        case JOBWORKER__V1__INPUT_REQUEST__KIND_EOF:
                r->input_kind = m->eof ? REQUEST_INPUT_EOF : REQUEST_INPUT_NONE;
                break;
        case JOBWORKER__V1__INPUT_REQUEST__KIND_RESIZE:
                if (!m->resize || m->resize->rows == 0 || m->resize->cols == 0 || m->resize->rows > 0xffff ||
                    m->resize->cols > 0xffff)
                        return replace_message(ret_message, -EINVAL, "window size must be 1..65535 rows and columns");
                r->input_kind = REQUEST_INPUT_RESIZE;
                r->rows = m->resize->rows;
                r->cols = m->resize->cols;
                break;
        default:
                r->input_kind = REQUEST_INPUT_NONE;
                break;
        }
        return 0;
}

static int request_decode_full(RequestMethod method, bool first, const void *data, size_t size, Request **ret,
                               char **ret_message);

int request_decode(RequestMethod method, const void *data, size_t size, Request **ret, char **ret_message) {
        return request_decode_full(method, true, data, size, ret, ret_message);
}

int request_decode_input_more(const void *data, size_t size, Request **ret, char **ret_message) {
        return request_decode_full(REQUEST_INPUT, false, data, size, ret, ret_message);
}

static int request_decode_full(RequestMethod method, bool first, const void *data, size_t size, Request **ret,
                               char **ret_message) {
        static const uint32_t string_fields[_REQUEST_METHOD_MAX] = {
                [REQUEST_START] = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 10) | (1u << 12),
                [REQUEST_STOP] = 1u << 1,
                [REQUEST_STATUS] = 1u << 1,
                [REQUEST_LIST] = (1u << 3) | (1u << 4),
                [REQUEST_OUTPUT] = 1u << 1,
                [REQUEST_SIGNAL] = 1u << 1,
                [REQUEST_INPUT] = 1u << 1,
        };
        static const char *const string_names[_REQUEST_METHOD_MAX][13] = {
                [REQUEST_START] = { NULL, "argv", "env", "cwd", [10] = "name", [12] = "request_id" },
                [REQUEST_STOP] = { NULL, "job_id" },
                [REQUEST_STATUS] = { NULL, "job_id" },
                [REQUEST_LIST] = { NULL, NULL, NULL, "owner", "name" },
                [REQUEST_OUTPUT] = { NULL, "job_id" },
                [REQUEST_SIGNAL] = { NULL, "job_id" },
                [REQUEST_INPUT] = { NULL, "job_id" },
        };
        _cleanup_request_ Request *r = NULL;
        size_t counts[WIRE_FIELDS];
        unsigned nul_field;
        int k;

        if (method < 0 || method >= _REQUEST_METHOD_MAX)
                return replace_message(ret_message, -EINVAL, "unknown method");
        if (size > 0 && !data)
                return -EINVAL;

        if (wire_walk(data, size, string_fields[method], counts, &nul_field) < 0)
                return replace_message(ret_message, -EINVAL, "malformed %s message (not valid protobuf)", methods[method].type);
        if (nul_field > 0)
                return replace_message(ret_message, -EINVAL, "%s contains a NUL byte", string_names[method][nul_field]);
        k = check_counts(method, counts, ret_message);
        if (k < 0)
                return k;
        if (method == REQUEST_START || method == REQUEST_LIST) {
                k = method == REQUEST_START ? check_start_wire(data, size, ret_message)
                                            : check_list_wire(data, size, ret_message);
                if (k < 0)
                        return k;
        }

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->method = method;
        r->grace_usec = UINT64_MAX;

        r->message = protobuf_c_message_unpack(methods[method].descriptor, NULL, size, data);
        if (!r->message)
                return replace_message(ret_message, -EINVAL, "malformed %s message (not valid protobuf)", methods[method].type);

        switch (method) {
        case REQUEST_START:
                k = check_start(r->message, r, ret_message);
                break;
        case REQUEST_STOP:
                k = check_stop(r->message, r, ret_message);
                break;
        case REQUEST_STATUS:
                k = parse_job_id(((Jobworker__V1__StatusRequest *) r->message)->job_id, r, ret_message);
                break;
        case REQUEST_LIST:
                k = check_list(r->message, r, ret_message);
                break;
        case REQUEST_OUTPUT:
                k = check_output(r->message, r, ret_message);
                break;
        case REQUEST_SIGNAL:
                k = check_signal(r->message, r, ret_message);
                break;
        case REQUEST_INPUT:
                k = check_input(r->message, r, first, ret_message);
                break;
        default:
                k = -EINVAL;
        }
        if (k < 0)
                return k;

        *ret = TAKE_PTR(r);
        return 0;
}
