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

#include "rpc/limits.h"
#include "shared/macro.h"
#include "shared/parse-util.h"
#include "shared/string-util.h"

int limits_parse_cpu(const char *s, uint32_t *ret_millis) {
        uint64_t v;
        int r;

        r = parse_fixed(s, 3, &v);
        if (r < 0)
                return r;
        if (v > LIMITS_CPU_MILLIS_MAX)
                return -ERANGE;
        *ret_millis = (uint32_t) v;
        return 0;
}

int limits_parse_size(const char *s, uint64_t *ret) {
        return parse_size(s, ret);
}

const char *limits_format_cpu(uint32_t millis, char buf[static 32]) {
        uint32_t frac = millis % 1000;

        if (frac == 0)
                snprintf(buf, 32, "%" PRIu32, millis / 1000);
        else if (frac % 100 == 0)
                snprintf(buf, 32, "%" PRIu32 ".%" PRIu32, millis / 1000, frac / 100);
        else if (frac % 10 == 0)
                snprintf(buf, 32, "%" PRIu32 ".%02" PRIu32, millis / 1000, frac / 10);
        else
                snprintf(buf, 32, "%" PRIu32 ".%03" PRIu32, millis / 1000, frac);
        return buf;
}

const char *limits_format_size(uint64_t bytes, char buf[static 32]) {
        static const char units[] = "TGMK";

        for (unsigned i = 0; i < 4; i++) {
                uint64_t m = 1ULL << (10 * (4 - i));
                if (bytes >= m && bytes % m == 0) {
                        snprintf(buf, 32, "%" PRIu64 "%c", bytes / m, units[i]);
                        return buf;
                }
        }
        snprintf(buf, 32, "%" PRIu64, bytes);
        return buf;
}

bool limits_bounds_empty(const LimitsBounds *b) {
        return !b->cpu_millis && !b->memory_max && !b->pids_max && !b->io_read_bps && !b->io_write_bps &&
               !b->default_cpu_millis && !b->default_memory_max && !b->default_pids_max;
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

/* Reads "MAJ:MIN\n" from a sysfs dev file. */
static int read_devnum(const char *path, uint32_t *ret_major, uint32_t *ret_minor) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        char buf[64];
        unsigned ma, mi;
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        if (sscanf(buf, "%u:%u", &ma, &mi) != 2)
                return -EIO;
        *ret_major = ma;
        *ret_minor = mi;
        return 0;
}

int limits_resolve_device(const char *path, const JobCredentials *creds, uint32_t *ret_major, uint32_t *ret_minor,
                          char **ret_message) {
        char q[208], sys[128];
        bool switched = false;
        uid_t old_uid = 0;
        gid_t old_gid = 0;
        struct stat st;
        uint32_t ma, mi;
        dev_t dev;
        int r;

        quote_printable(q, 200, path);
        if (!path || path[0] != '/')
                return replace_message(ret_message, -EINVAL, "io device '%s' is not an absolute path", q);

        /* setfsuid()/setfsgid() are per thread: only this lookup is affected. */
        if (creds && geteuid() == 0 && creds->uid != 0) {
                old_gid = (gid_t) setfsgid(creds->gid);
                old_uid = (uid_t) setfsuid(creds->uid);
                switched = true;
        }
        /* setfs[ug]id() report failure only by returning the old value:
         * ask again. Without CAP_SETUID, refuse rather than look as root. */
        if (switched && ((uid_t) setfsuid(creds->uid) != creds->uid || (gid_t) setfsgid(creds->gid) != creds->gid))
                r = -EPERM;
        else
                r = stat(path, &st) < 0 ? -errno : 0;
        if (switched) {
                (void) setfsuid(old_uid);
                (void) setfsgid(old_gid);
        }
        if (r < 0)
                return replace_message(ret_message, r, "io device '%s': %s", q, strerror(-r));

        if (S_ISBLK(st.st_mode))
                dev = st.st_rdev;
        else if (S_ISCHR(st.st_mode))
                return replace_message(ret_message, -EINVAL, "io device '%s' is a character device, not a block device", q);
        else
                dev = st.st_dev;
        ma = major(dev);
        mi = minor(dev);
        if (ma == 0)
                return replace_message(ret_message, -EINVAL,
                            "io device '%s' is on a file system without a block device (like tmpfs, overlay or NFS): "
                            "io limits need a disk", q);

        snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", ma, mi);
        if (access(sys, F_OK) < 0)
                return replace_message(ret_message, -EINVAL, "io device '%s' (%u:%u) is not a block device known to this host", q, ma, mi);
        /* A partition: io.max wants its whole disk, the parent in sysfs. */
        snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/partition", ma, mi);
        if (access(sys, F_OK) >= 0) {
                uint32_t pma = 0, pmi = 0;

                snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/../dev", ma, mi);
                r = read_devnum(sys, &pma, &pmi);
                if (r < 0)
                        return replace_message(ret_message, -EINVAL, "io device '%s' is partition %u:%u and its disk cannot be found: %s",
                                    q, ma, mi, strerror(-r));
                ma = pma;
                mi = pmi;
        }
        *ret_major = ma;
        *ret_minor = mi;
        return 0;
}

int limits_resolve_io(const LimitsIoRequest *req, size_t n, const JobCredentials *creds,
                      JobIoLimit io[static LIMITS_IO_MAX], size_t *ret_n, char **ret_message) {
        size_t k = 0;

        if (n > LIMITS_IO_MAX)
                return replace_message(ret_message, -E2BIG, "too many io entries: %zu (at most %u)", n, LIMITS_IO_MAX);
        for (size_t i = 0; i < n; i++) {
                uint32_t ma, mi;
                size_t j;
                int r;

                r = limits_resolve_device(req[i].device, creds, &ma, &mi, ret_message);
                if (r < 0)
                        return r;
                for (j = 0; j < k; j++)
                        if (io[j].major == ma && io[j].minor == mi)
                                break;
                if (j == k) {
                        io[k++] = (JobIoLimit) { .major = ma, .minor = mi, .read_bps = req[i].read_bps,
                                                 .write_bps = req[i].write_bps };
                        continue;
                }
                /* Same disk named twice (e.g. --io-read-bps and --io-write-bps). */
                if ((req[i].read_bps && io[j].read_bps && req[i].read_bps != io[j].read_bps) ||
                    (req[i].write_bps && io[j].write_bps && req[i].write_bps != io[j].write_bps)) {
                        char q[208];
                        quote_printable(q, 200, req[i].device);
                        return replace_message(ret_message, -EINVAL, "io device '%s' is disk %u:%u, which an earlier entry already "
                                    "limits to a different rate", q, ma, mi);
                }
                if (req[i].read_bps)
                        io[j].read_bps = req[i].read_bps;
                if (req[i].write_bps)
                        io[j].write_bps = req[i].write_bps;
        }
        *ret_n = k;
        return 0;
}
