/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: request decoding and validation (rpc/request.c), the
 * first thing every byte a client sends goes through. The first input byte
 * picks the method, the rest is the message.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Request *r = NULL;
        char *message = NULL;
        RequestMethod m;
        int k;

        if (size < 1)
                return 0;
        m = data[0] % _REQUEST_METHOD_MAX;
        k = request_decode(m, data + 1, size - 1, &r, &message);
        if (k >= 0) {
                /* What the server relies on after a successful decode. */
                if (!r || r->method != m)
                        abort();
                if (m == REQUEST_START) {
                        size_t n = 0, total = 0;
                        if (!r->argv || !r->argv[0] || !r->argv[0][0])
                                abort();
                        for (; r->argv[n]; n++)
                                total += strlen(r->argv[n]) + 1;
                        if (n > JOB_ARGV_MAX || total > JOB_ARGS_TOTAL_MAX)
                                abort();
                        for (size_t i = 0; r->env && r->env[i]; i++)
                                if (!strchr(r->env[i], '=') || r->env[i][0] == '=')
                                        abort();
                        if (r->cwd && r->cwd[0] != '/')
                                abort();
                }
                if ((m == REQUEST_STOP || m == REQUEST_STATUS || m == REQUEST_OUTPUT || m == REQUEST_SIGNAL) &&
                    strlen(r->job_id_string) != 36)
                        abort();
                if (m == REQUEST_SIGNAL && (r->signal < 1 || r->signal > JOB_SIGNAL_MAX))
                        abort();
                if (m == REQUEST_OUTPUT && (r->streams == 0 || (r->streams & ~JOB_STREAMS_ALL)))
                        abort();
                if (message)
                        abort();
        } else if (k != -ENOMEM && !message)
                abort(); /* every rejection explains itself */
        request_free(r);
        free(message);
        return 0;
}
