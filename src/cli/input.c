/* SPDX-License-Identifier: MIT */
/*
 * Forwarding our standard input to a job (see input.h).
 *
 * The one idea: the sender reads a block only once the previous message was
 * taken by gRPC, and gRPC takes it only as HTTP/2 flow control allows; the
 * server asks for the next message only when the job's pipe took the last
 * one. So a job that does not read stops our reads: nothing piles up on
 * either side, and `jwctl run -- sort < big` needs no more memory than a
 * block. A stop request (the job ended, or jwctl is going) wakes the thread
 * through an eventfd when it waits for our stdin and cancels the call when it
 * waits for gRPC.
 */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/support/time.h>

#include "cli/input.h"
#include "jobworker/v1/jobworker.pb-c.h"
#include "shared/macro.h"
#include "wire/codec.h"

/* Bytes per message: big enough that a fast pipe costs few messages, far
 * below the server's 2 MiB message limit. */
#define INPUT_BLOCK (128u * 1024u)

enum { TAG_SEND = 1, TAG_STATUS = 2, TAG_END = 3 };
#define TAG(n) ((void *) (uintptr_t) (n))

struct CliInput {
        grpc_call *call;
        grpc_completion_queue *cq;
        grpc_metadata_array initial_md, trailing_md, resp_md;
        grpc_status_code status;
        grpc_slice details;
        char *job_id;
        int fd;                 /* ours to read, borrowed */
        int stop_fd;            /* eventfd: stop */
        int winch_fd;           /* tty: signalfd of SIGWINCH, else -1 */
        pthread_t thread;
        bool thread_started;
        bool md_sent;
        uint8_t *buf;
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

static bool pluck(grpc_completion_queue *cq, void *tag) {
        grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Sends one message (with the initial metadata, the first time); false
 * when the call is over (the server ended it, or we were stopped). */
static bool send_message(CliInput *in, Jobworker__V1__InputRequest *req) {
        grpc_op ops[2] = {}, *op = ops;
        grpc_byte_buffer *bb;
        bool ok;

        if (!in->md_sent) {
                req->job_id = in->job_id; /* the first message names the job */
                op->op = GRPC_OP_SEND_INITIAL_METADATA;
                op++;
                in->md_sent = true;
        }
        bb = codec_pack(&req->base);
        if (!bb)
                return false;
        op->op = GRPC_OP_SEND_MESSAGE;
        op->data.send_message.send_message = bb;
        op++;
        ok = grpc_call_start_batch(in->call, ops, (size_t) (op - ops), TAG(TAG_SEND), NULL) == GRPC_CALL_OK &&
             pluck(in->cq, TAG(TAG_SEND));
        grpc_byte_buffer_destroy(bb);
        return ok;
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
        grpc_byte_buffer *resp = NULL;

        req.kind_case = JOBWORKER__V1__INPUT_REQUEST__KIND_EOF;
        req.eof = true;
        if (!send_message(in, &req))
                return;
        grpc_op ops[3] = {
                { .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT },
                { .op = GRPC_OP_RECV_INITIAL_METADATA, .data.recv_initial_metadata.recv_initial_metadata = &in->resp_md },
                { .op = GRPC_OP_RECV_MESSAGE, .data.recv_message.recv_message = &resp },
        };
        if (grpc_call_start_batch(in->call, ops, ELEMENTSOF(ops), TAG(TAG_END), NULL) == GRPC_CALL_OK)
                (void) pluck(in->cq, TAG(TAG_END));
        if (resp)
                grpc_byte_buffer_destroy(resp);
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
                        grpc_call_cancel(in->call, NULL);
                        break;
                }
                req.kind_case = JOBWORKER__V1__INPUT_REQUEST__KIND_DATA;
                req.data.data = in->buf;
                req.data.len = (size_t) n;
                if (!send_message(in, &req))
                        break; /* the server ended the call: its status says why */
        }
        (void) pluck(in->cq, TAG(TAG_STATUS));
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
        in->details = grpc_empty_slice();
        grpc_metadata_array_init(&in->initial_md);
        grpc_metadata_array_init(&in->trailing_md);
        grpc_metadata_array_init(&in->resp_md);
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
        in->cq = grpc_completion_queue_create_for_pluck(NULL);
        if (in->stop_fd < 0 || !in->job_id || !in->buf || !in->cq) {
                cli_input_free(in);
                return -ENOMEM;
        }
        in->call = grpc_channel_create_call(cli_client_channel(c), NULL, GRPC_PROPAGATE_DEFAULTS, in->cq,
                                            grpc_slice_from_static_string(CLI_METHOD("Input")), NULL,
                                            gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        grpc_op status_op = {
                .op = GRPC_OP_RECV_STATUS_ON_CLIENT,
                .data.recv_status_on_client = { .trailing_metadata = &in->trailing_md, .status = &in->status,
                                                .status_details = &in->details },
        };
        if (!in->call || grpc_call_start_batch(in->call, &status_op, 1, TAG(TAG_STATUS), NULL) != GRPC_CALL_OK) {
                cli_input_free(in);
                return -EIO;
        }
        r = -pthread_create(&in->thread, NULL, input_thread, in);
        if (r < 0) {
                grpc_call_cancel(in->call, NULL);
                (void) pluck(in->cq, TAG(TAG_STATUS));
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
                grpc_call_cancel(in->call, NULL);
                pthread_join(in->thread, NULL);
                in->thread_started = false;
        }
        if (ret_code)
                *ret_code = in->status;
}

CliInput *cli_input_free(CliInput *in) {
        if (!in)
                return NULL;
        cli_input_stop(in, NULL);
        if (in->call)
                grpc_call_unref(in->call);
        if (in->cq) {
                grpc_completion_queue_shutdown(in->cq);
                while (grpc_completion_queue_pluck(in->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
                       GRPC_QUEUE_SHUTDOWN)
                        ;
                grpc_completion_queue_destroy(in->cq);
        }
        grpc_slice_unref(in->details);
        grpc_metadata_array_destroy(&in->initial_md);
        grpc_metadata_array_destroy(&in->trailing_md);
        grpc_metadata_array_destroy(&in->resp_md);
        safe_close(in->stop_fd);
        safe_close(in->winch_fd);
        free(in->job_id);
        free(in->buf);
        free(in);
        return NULL;
}
