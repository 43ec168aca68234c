/* SPDX-License-Identifier: MIT */
/*
 * Per-job resource limits between the API and the engine (see limits.h).
 *
 * The one idea: a bound is checked against what a request asks for, a
 * default fills what it leaves out, and the engine then gets exactly that.
 * Nothing is ever silently lowered: a value above a bound is refused with
 * the bound in the message. (A bound without a default does not limit a job
 * that asks for nothing; the policy documentation says to give both where
 * every job must be limited. Bounds are not applied implicitly because a
 * host without controllers would then refuse every job of a bounded user.)
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "policy/limits.h"
#include "shared/macro.h"
#include "shared/parse-util.h"
#include "shared/string-util.h"

bool limits_bounds_empty(const LimitsBounds *b) {
        return !b->cpu_millis && !b->memory_max && !b->pids_max && !b->io_read_bps && !b->io_write_bps &&
               !b->default_cpu_millis && !b->default_memory_max && !b->default_pids_max && !b->max_jobs &&
               !b->max_output && !b->max_runtime && !b->default_max_runtime;
}

static uint64_t pick(uint64_t asked, uint64_t def) {
        return asked ? asked : def;
}

int limits_apply_bounds(const LimitsBounds *b, const char *user, const LimitsRequest *req, JobLimits *ret,
                        LimitsIoRequest ret_io[static LIMITS_IO_MAX], char **ret_message) {
        static const LimitsBounds none = {};
        char x[32], y[32];
        JobLimits l = {};

        if (!b)
                b = &none;
        l.cpu_millis = (uint32_t) pick(req->cpu_millis, b->default_cpu_millis);
        l.memory_max = pick(req->memory_max, b->default_memory_max);
        l.pids_max = pick(req->pids_max, b->default_pids_max);

        if (b->cpu_millis && l.cpu_millis > b->cpu_millis)
                return replace_message(ret_message, -EACCES, "%s may use at most %s CPU%s (asked %s)", user,
                            limits_format_cpu(b->cpu_millis, x), b->cpu_millis > 1000 ? "s" : "",
                            limits_format_cpu(l.cpu_millis, y));
        if (b->memory_max && l.memory_max > b->memory_max)
                return replace_message(ret_message, -EACCES, "%s may use at most %s bytes of memory (asked %s)", user,
                            limits_format_size(b->memory_max, x), limits_format_size(l.memory_max, y));
        if (b->pids_max && l.pids_max > b->pids_max)
                return replace_message(ret_message, -EACCES, "%s may use at most %" PRIu64 " processes (asked %" PRIu64 ")", user,
                            b->pids_max, l.pids_max);

        for (size_t i = 0; i < req->n_io; i++) {
                LimitsIoRequest io = req->io[i];
                char q[208];

                if (!io.read_bps)
                        io.read_bps = b->io_read_bps;
                if (!io.write_bps)
                        io.write_bps = b->io_write_bps;
                if (b->io_read_bps && io.read_bps > b->io_read_bps) {
                        quote_printable(q, 200, io.device);
                        return replace_message(ret_message, -EACCES, "%s may read at most %s bytes/s from a device (asked %s for %s)",
                                    user, limits_format_size(b->io_read_bps, x), limits_format_size(io.read_bps, y), q);
                }
                if (b->io_write_bps && io.write_bps > b->io_write_bps) {
                        quote_printable(q, 200, io.device);
                        return replace_message(ret_message, -EACCES, "%s may write at most %s bytes/s to a device (asked %s for %s)",
                                    user, limits_format_size(b->io_write_bps, x), limits_format_size(io.write_bps, y), q);
                }
                ret_io[i] = io;
        }
        l.n_io = req->n_io;
        l.io = NULL;
        *ret = l;
        return 0;
}

int limits_apply_runtime(const LimitsBounds *b, const char *user, uint64_t asked_usec, uint64_t *ret_usec,
                         char **ret_message) {
        char x[PARSE_DURATION_STRING_MAX], y[PARSE_DURATION_STRING_MAX];
        uint64_t v = pick(asked_usec, b ? b->default_max_runtime : 0);

        if (b && b->max_runtime && v > b->max_runtime)
                return replace_message(ret_message, -EACCES, "%s may run a job for at most %s (max-runtime=%s; asked %s)",
                                       user, format_duration(b->max_runtime, x), x, format_duration(v, y));
        *ret_usec = v;
        return 0;
}

int limits_check_usage(const LimitsBounds *b, const char *user, uint64_t running, uint64_t output, char **ret_message) {
        char x[32];

        if (b->max_jobs && running >= b->max_jobs)
                return replace_message(ret_message, -EDQUOT, "%s already runs %" PRIu64 " job%s (max-jobs=%" PRIu64 ")",
                                       user, running, running == 1 ? "" : "s", b->max_jobs);
        if (b->max_output && output >= b->max_output)
                return replace_message(ret_message, -EDQUOT, "the jobs of %s already keep %" PRIu64 " bytes of output "
                                       "(max-output=%s; finished jobs count until retention removes them)",
                                       user, output, limits_format_size(b->max_output, x));
        return 0;
}
