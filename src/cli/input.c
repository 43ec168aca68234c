/* SPDX-License-Identifier: MIT */
/*
 * Forwarding our standard input to a job (see input.h).
 *
 * The one idea: the sender reads a block only once the HTTP/2 stack took
 * the previous message (h2_call_send() blocks while more than
 * H2_SEND_QUEUE_MAX bytes wait), and those bytes leave only as the server's
 * flow control allows; the server asks for the next message only when the
 * job's pipe took the last one. So a job that does not read stops our
 * reads: nothing piles up on either side, and `jwctl run -- sort < big`
 * needs no more memory than the send queue. A stop request (the job ended,
 * or jwctl is going) wakes the thread through an eventfd when it waits for
 * our stdin and cancels the call when it waits for the network.
 */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli/format.h"
#include "cli/h2.h"
#include "cli/input.h"
#include "cli/reconnect.h"
#include "jobworker/v1/jobworker.pb-c.h"
#include "shared/macro.h"

/* Bytes per message: big enough that a fast pipe costs few messages, far
 * below the server's 2 MiB message limit. */
#define INPUT_BLOCK (128u * 1024u)

struct CliInput {
        H2Call *call;
        grpc_status_code status;
        char *job_id;
        int fd;                 /* ours to read, borrowed */
        int stop_fd;            /* eventfd: stop */
        int winch_fd;           /* tty: signalfd of SIGWINCH, else -1 */
        pthread_t thread;
        bool thread_started;
        bool named;             /* the first message (naming the job) went out */
        int read_errno;         /* reading fd failed: why */
        uint64_t sent;          /* data bytes handed to the call */
        char *message;          /* the call's final message, if any */
        uint8_t *buf;           /* a block read from fd */
        uint8_t *packed;        /* the message carrying it */
};

bool cli_input_wanted(const CliArgs *a, int fd) {
        struct stat st;

        if (a->no_stdin || isatty(fd))
                return false;
        if (fstat(fd, &st) < 0)
                return false; /* closed: nothing to forward */
        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
                return false; /* /dev/null, as `< /dev/null` or systemd gives */
        return true;
}

/* Sends one message (naming the job the first time); false when the call
 * is over (the server ended it, or we were stopped). */
static bool send_message(CliInput *in, Jobworker__V1__InputRequest *req) {
        size_t size;

        if (!in->named)
                req->job_id = in->job_id;
        size = protobuf_c_message_get_packed_size(&req->base);
        if (size > INPUT_BLOCK + 64 + strlen(in->job_id))
                return false; /* cannot be: a block, a tag and the id */
        protobuf_c_message_pack(&req->base, in->packed);
        if (h2_call_send(in->call, in->packed, size) < 0)
                return false;
        in->named = true;
        return true;
}

/* Our terminal's size changed: tell the job's. */
static bool send_resize(CliInput *in) {
        Jobworker__V1__InputRequest req = JOBWORKER__V1__INPUT_REQUEST__INIT;
        Jobworker__V1__WindowSize ws = JOBWORKER__V1__WINDOW_SIZE__INIT;
        struct signalfd_siginfo si;
        struct winsize w;

        while (read(in->winch_fd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                ;
        if (ioctl(in->fd, TIOCGWINSZ, &w) < 0 || w.ws_row == 0 || w.ws_col == 0)
                return true;
        ws.rows = w.ws_row;
        ws.cols = w.ws_col;
        req.kind_case = JOBWORKER__V1__INPUT_REQUEST__KIND_RESIZE;
        req.resize = &ws;
        return send_message(in, &req);
}

/* Waits until fd is readable, sending window sizes meanwhile: false when a
 * stop came first (or the call ended). */
static bool wait_readable(CliInput *in) {
        struct pollfd p[3] = { { .fd = in->fd, .events = POLLIN }, { .fd = in->stop_fd, .events = POLLIN },
                               { .fd = in->winch_fd, .events = POLLIN } };

        for (;;) {
                if (poll(p, in->winch_fd >= 0 ? 3 : 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return true; /* let read() say what is wrong */
                }
                if (p[1].revents)
                        return false;
                if (p[2].revents && !send_resize(in))
                        return false;
                if (p[0].revents)
                        return true;
        }
}

/* eof, half-close, and the server's answer. */
static void send_eof(CliInput *in) {
        Jobworker__V1__InputRequest req = JOBWORKER__V1__INPUT_REQUEST__INIT;
        const uint8_t *msg;
        size_t len;

        req.kind_case = JOBWORKER__V1__INPUT_REQUEST__KIND_EOF;
        req.eof = true;
        if (!send_message(in, &req) || h2_call_close_send(in->call) < 0)
                return;
        (void) h2_call_recv(in->call, &msg, &len); /* the byte count, unused */
}

static void *input_thread(void *userdata) {
        CliInput *in = userdata;

        for (;;) {
                Jobworker__V1__InputRequest req = JOBWORKER__V1__INPUT_REQUEST__INIT;
                ssize_t n;

                if (!wait_readable(in))
                        break; /* stopped: the job has ended */
                n = read(in->fd, in->buf, INPUT_BLOCK);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n == 0) {
                        send_eof(in);
                        break;
                }
                if (n < 0) {
                        /* A read error: the job gets EOF as from a writer that went away. */
                        in->read_errno = errno;
                        h2_call_cancel(in->call);
                        break;
                }
                req.kind_case = JOBWORKER__V1__INPUT_REQUEST__KIND_DATA;
                req.data.data = in->buf;
                req.data.len = (size_t) n;
                if (!send_message(in, &req))
                        break; /* the server ended the call: its status says why */
                in->sent += (uint64_t) n;
        }
        if (h2_call_status(in->call, &in->status, &in->message) < 0)
                in->status = GRPC_STATUS_UNKNOWN;
        return NULL;
}

int cli_input_start(CliClient *c, const char *job_id, int fd, bool tty, CliInput **ret) {
        CliInput *in = calloc(1, sizeof(*in));
        int r;

        if (!in)
                return -ENOMEM;
        in->fd = fd;
        in->winch_fd = in->stop_fd = -1;
        in->status = GRPC_STATUS_UNKNOWN;
        if (tty) {
                sigset_t set;
                sigemptyset(&set);
                sigaddset(&set, SIGWINCH); /* blocked in every thread by main() */
                in->winch_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
                if (in->winch_fd < 0) {
                        r = -errno;
                        cli_input_free(in);
                        return r;
                }
        }
        in->stop_fd = eventfd(0, EFD_CLOEXEC);
        in->job_id = strdup(job_id);
        in->buf = malloc(INPUT_BLOCK);
        if (in->job_id)
                in->packed = malloc(INPUT_BLOCK + 64 + strlen(in->job_id));
        if (in->stop_fd < 0 || !in->job_id || !in->buf || !in->packed) {
                cli_input_free(in);
                return -ENOMEM;
        }
        /* No deadline: stdin lasts as long as the job reads it. */
        r = cli_client_call(c, CLI_METHOD("Input"), 0, &in->call);
        if (r < 0) {
                cli_input_free(in);
                return r;
        }
        r = -pthread_create(&in->thread, NULL, input_thread, in);
        if (r < 0) {
                cli_input_free(in);
                return r;
        }
        in->thread_started = true;
        *ret = in;
        return 0;
}

void cli_input_stop(CliInput *in, grpc_status_code *ret_code) {
        uint64_t one = 1;

        if (in->thread_started) {
                (void) !write(in->stop_fd, &one, sizeof(one));
                h2_call_cancel(in->call);
                pthread_join(in->thread, NULL);
                in->thread_started = false;
        }
        if (ret_code)
                *ret_code = in->status;
}

bool cli_input_cut(const CliInput *in, uint64_t *ret_sent, char **ret_why) {
        char *why = NULL;

        if (in->read_errno != 0) {
                if (asprintf(&why, "cannot read standard input: %s", strerror(in->read_errno)) < 0)
                        why = NULL;
        } else if (cli_failure_of_status(in->status, false) != CLI_FAILURE_TRANSPORT)
                return false; /* forwarded whole, cancelled by us (CANCELLED) or ended by the job */
        else
                why = cli_terminal_safe(in->message ?: "the connection was lost");
        *ret_sent = in->sent;
        *ret_why = why;
        return true;
}

CliInput *cli_input_free(CliInput *in) {
        if (!in)
                return NULL;
        cli_input_stop(in, NULL);
        h2_call_free(in->call);
        safe_close(in->stop_fd);
        safe_close(in->winch_fd);
        free(in->job_id);
        free(in->buf);
        free(in->packed);
        free(in->message);
        free(in);
        return NULL;
}
