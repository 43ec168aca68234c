/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Decoding and validation of requests, from the serialized protobuf bytes
 * of one gRPC message to a checked Request the server can act on without
 * further checks. Everything a client sends passes through here first
 * (this is what the libFuzzer target tests/fuzz/fuzz-request.c drives).
 *
 * Rejections are -EINVAL (malformed protobuf, empty argv, NUL byte in a
 * string, bad env entry, relative cwd, malformed job id, bad stream, grace
 * out of range, resource limits out of range, unknown isolation, signal
 * number outside 1..64) or -E2BIG
 * (over the limits in core/engine.h and rpc/limits.h), each with a one-line
 * message for the INVALID_ARGUMENT status. Policy bounds and io devices are
 * not looked at here (that needs the caller and the file system): see
 * rpc/limits.h.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/engine.h"
#include "core/job-id.h"
#include "policy/limits.h"
#include "shared/macro.h"

typedef enum RequestMethod {
        REQUEST_START,
        REQUEST_STOP,
        REQUEST_STATUS,
        REQUEST_LIST,
        REQUEST_OUTPUT,
        REQUEST_SIGNAL,
        REQUEST_INPUT,          /* client streaming: the first message */
        _REQUEST_METHOD_MAX,
} RequestMethod;

/* Longest TERM value of a Start's terminal. */
#define REQUEST_TERM_MAX 64u

/* Largest grace period a Stop may ask for. */
#define REQUEST_GRACE_MAX_MS (24ull * 3600 * 1000)

typedef enum RequestInputKind {
        REQUEST_INPUT_NONE,     /* nothing but (in the first message) the job id */
        REQUEST_INPUT_DATA,
        REQUEST_INPUT_EOF,
        REQUEST_INPUT_RESIZE,
} RequestInputKind;

typedef struct Request {
        RequestMethod method;

        /* START: NULL-terminated, pointing into the decoded message */
        const char **argv;
        const char **env;       /* NULL if none */
        const char *cwd;        /* NULL: default */
        LimitsRequest limits;   /* io device strings point into the message */
        unsigned isolate;       /* JOB_ISOLATE_* mask */
        uint64_t max_runtime_usec; /* 0: not asked for (the policy's default) */
        const char *name;       /* NULL: none; checked (shared/job-name.h) */
        char labels[JOB_LABELS_TEXT_MAX + 1]; /* joined, "" for none */
        const char *request_id; /* NULL: none */
        bool stdin_open;        /* the job's stdin is a pipe for Input */
        bool tty;               /* run it on a terminal of this size (term in the message) */
        JobTerminal terminal;

        /* STOP, STATUS, OUTPUT, SIGNAL, INPUT (its first message) */
        JobId job_id;
        char job_id_string[JOB_ID_STRING_MAX]; /* normalized, lower case */

        /* STOP */
        uint64_t grace_usec;    /* UINT64_MAX: the engine's default */

        /* SIGNAL */
        int signal;             /* 1..JOB_SIGNAL_MAX */
        bool signal_all;        /* every process of the job */

        /* LIST: filters, each checked; label selectors point into the
         * message */
        bool running_only;
        unsigned list_states;   /* mask of 1u << JobState, 0: any */
        const char *list_owner; /* NULL: any */
        const char *list_name;  /* NULL: any */
        size_t n_list_labels;
        const char *list_label_keys[JOB_LABELS_MAX];
        const char *list_label_values[JOB_LABELS_MAX];

        /* OUTPUT */
        unsigned streams;       /* JobStream mask, non-zero */
        uint64_t offset;
        bool follow;

        /* INPUT: what one message asks for; data points into the message */
        RequestInputKind input_kind;
        const uint8_t *input_data;
        size_t input_size;
        uint32_t rows, cols;    /* REQUEST_INPUT_RESIZE */

        void *message;          /* the protobuf-c message, owned */
} Request;

/* The full gRPC method path ("/jobworker.v1.JobWorker/Start") and its name. */
const char *request_method_path(RequestMethod m);
const char *request_method_name(RequestMethod m);

/* Decodes size bytes of data as the request of method m and validates it.
 * On success *ret is a new Request (free with request_free()). On -EINVAL or
 * -E2BIG, *ret_message (if not NULL) is a malloc()ed human message.
 * -ENOMEM may also be returned (then possibly without a message). */
int request_decode(RequestMethod m, const void *data, size_t size, Request **ret, char **ret_message);

/* An Input message after the first: as request_decode(REQUEST_INPUT), but
 * the job id may be left out (it is not looked at). */
int request_decode_input_more(const void *data, size_t size, Request **ret, char **ret_message);

Request *request_free(Request *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Request *, request_free);
#define _cleanup_request_ _cleanup_(request_freep)
