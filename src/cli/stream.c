/* SPDX-License-Identifier: MIT */
/*
 * Streaming a job's Output to our stdout/stderr (see stream.h).
 *
 * The one idea: the position in the selected output is ours to keep. Each
 * chunk carries its offset, so a chunk that overlaps what was written is
 * trimmed and a jump forward is counted as bytes the server dropped; the
 * position at a lost connection is what `logs --offset` resumes from.
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/reconnect.h"
#include "cli/stream.h"

/* Writes all of buf to fd; copes with a non-blocking fd we inherited. */
static int write_all(int fd, const uint8_t *buf, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, buf, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = fd, .events = POLLOUT };
                                (void) poll(&p, 1, -1);
                                continue;
                        }
                        return -errno;
                }
                buf += k;
                n -= (size_t) k;
        }
        return 0;
}

static Jobworker__V1__Stream to_proto_stream(CliStream s) {
        switch (s) {
        case CLI_STREAM_STDOUT:
                return JOBWORKER__V1__STREAM__STREAM_STDOUT;
        case CLI_STREAM_STDERR:
                return JOBWORKER__V1__STREAM__STREAM_STDERR;
        default:
                return JOBWORKER__V1__STREAM__STREAM_BOTH;
        }
}

void cli_stream_result_done(CliStreamResult *r) {
        if (r->end_message)
                jobworker__v1__output_response__free_unpacked(r->end_message, NULL);
        r->end_message = NULL;
        r->end = NULL;
        cli_call_status_done(&r->status);
}

/* One chunk at its offset: what overlaps the bytes already written is
 * trimmed, a jump forward counts as dropped, the rest is written if
 * write_data. Returns 0 or the exit code of a failed write. */
static int take_chunk(Cli *cli, CliStreamResult *result, const CliOutputItem *item, bool write_data) {
        const uint8_t *data = item->data;
        size_t len = item->len;
        uint64_t at = item->offset;

        if (at < result->position) {
                uint64_t skip = MIN((uint64_t) len, result->position - at);
                data += skip;
                len -= (size_t) skip;
                at += skip;
        } else if (at > result->position)
                result->gap_bytes += at - result->position;
        if (len == 0)
                return 0;
        if (write_data) {
                bool err = item->stream == JOBWORKER__V1__STREAM__STREAM_STDERR;
                int r = write_all(err ? cli->err_fd : cli->out_fd, data, len);

                if (r < 0)
                        return cli_write_failed(cli, r, err ? "standard error" : "standard output");
        }
        result->position = at + len;
        return 0;
}

int cli_stream_output(Cli *cli, const char *job_id, CliStream stream, uint64_t offset, bool follow, bool write_data,
                      CliStreamResult *result) {
        Jobworker__V1__OutputRequest req = JOBWORKER__V1__OUTPUT_REQUEST__INIT;
        CliOutputCall *call = NULL;
        int r, ret = 0;

        req.job_id = (char *) job_id;
        req.stream = to_proto_stream(stream);
        req.offset = offset;
        req.follow = follow;
        result->position = offset;

        r = cli_client_output_start(cli->client, &req, &call);
        if (r < 0)
                return cli_oom(cli);
        cli_signals_set_call(&cli->signals, call);

        for (;;) {
                CliOutputItem item;

                r = cli_output_call_next(call, &item);
                if (r <= 0)
                        break;
                Jobworker__V1__OutputResponse *m = item.message;
                if (m && m->kind_case == JOBWORKER__V1__OUTPUT_RESPONSE__KIND_END) {
                        if (result->end_message)
                                jobworker__v1__output_response__free_unpacked(result->end_message, NULL);
                        result->end_message = m;
                        result->end = m->end;
                        continue;
                }
                if (!m || (m->kind_case == JOBWORKER__V1__OUTPUT_RESPONSE__KIND_CHUNK && m->chunk))
                        ret = take_chunk(cli, result, &item, write_data);
                if (m)
                        jobworker__v1__output_response__free_unpacked(m, NULL);
                if (ret != 0) {
                        cli_output_call_cancel(call);
                        break;
                }
        }

        cli_signals_set_call(&cli->signals, NULL);

        if (cli_output_call_status(call, &result->status) < 0 && ret == 0)
                ret = cli_oom(cli);
        if (r == -EBADMSG && ret == 0)
                ret = cli_set_message(cli, CLI_EXIT_FAILED, "the server sent a message that does not parse");
        cli_output_call_free(call);
        return ret;
}

int cli_follow_to_end(Cli *cli, const char *id, bool write_data, uint64_t offset) {
        CliStreamResult res = {};
        int r;

        /* A lost connection is taken back by reconnect.c: the stream goes on
         * from the position reached, also after a daemon restart. */
        r = cli_stream_follow(cli, id, CLI_STREAM_BOTH, offset, write_data, &res);
        if (r != 0)
                goto finish;

        if (cli_signals_count(&cli->signals) > 0) {
                _cleanup_free_ char *stop_error = cli_signals_stop_error(&cli->signals);

                r = stop_error ? cli_set_message(cli, CLI_EXIT_INTERRUPTED, "%s", stop_error) : CLI_EXIT_INTERRUPTED;
                goto finish;
        }
        if (!write_data && offset > 0 &&
            (res.status.code == GRPC_STATUS_OUT_OF_RANGE || res.status.code == GRPC_STATUS_INVALID_ARGUMENT)) {
                /* wait: the server did not take the offset of the output
                 * seen so far (e.g. truncated output): follow from the start. */
                cli_stream_result_done(&res);
                return cli_follow_to_end(cli, id, write_data, 0);
        }
        if (res.status.code != GRPC_STATUS_OK) {
                r = cli_call_failed(cli, &res.status, write_data ? "read the output of" : "wait for", id);
                if (r == CLI_EXIT_CONNECT && write_data)
                        r = cli_set_message(cli, CLI_EXIT_CONNECT,
                                        "%s; job %s may still be running (resume with 'jwctl logs -f --offset %" PRIu64 " %s')",
                                        cli->message ?: "connection lost", id, res.position, id);
                goto finish;
        }
        if (!res.end) {
                r = cli_set_message(cli, CLI_EXIT_FAILED, "the server ended the output of job %s without its status", id);
                goto finish;
        }
        r = cli_job_exit_code(cli, res.end);
        if (r == 0 && write_data && (res.gap_bytes > 0 || res.end->dropped_bytes > 0))
                cli_set_message(cli, 0, "warning: the server dropped %" PRIu64 " bytes of the output of job %s",
                            MAX(res.gap_bytes, res.end->dropped_bytes), id);
finish:
        cli_stream_result_done(&res);
        return r;
}
