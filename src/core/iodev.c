/* SPDX-License-Identifier: MIT */

/*
 * io device paths of a Start resolved to the whole disk's major:minor that
 * io.max wants (moved here from rpc/limits.c).
 *
 * The one idea: the path is the client's, so looking at it may block for as
 * long as the file system it is on wants (a hung NFS or FUSE mount): this
 * runs on a spawner thread (spawner.c), never on the engine thread, and it
 * looks with the job's account's file system ids, so a caller learns
 * nothing about paths its jobs could not see.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/iodev.h"
#include "shared/fs-util.h"
#include "shared/macro.h"
#include "shared/string-util.h"

/* Reads "MAJ:MIN\n" from a sysfs dev file. */
static int read_devnum(const char *path, uint32_t *ret_major, uint32_t *ret_minor) {
        char buf[64];
        unsigned ma, mi;
        ssize_t n;

        n = read_small_file_at(AT_FDCWD, path, O_NOCTTY, buf, sizeof(buf));
        if (n < 0)
                return (int) n;
        if (sscanf(buf, "%u:%u", &ma, &mi) != 2)
                return -EIO;
        *ret_major = ma;
        *ret_minor = mi;
        return 0;
}

int iodev_resolve_device(const char *path, const JobCredentials *creds, uint32_t *ret_major, uint32_t *ret_minor,
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

int iodev_resolve(const JobIoDevice *req, size_t n, const JobCredentials *creds,
                      JobIoLimit io[static JOB_IO_MAX], size_t *ret_n, char **ret_message) {
        size_t k = 0;

        if (n > JOB_IO_MAX)
                return replace_message(ret_message, -E2BIG, "too many io entries: %zu (at most %u)", n, JOB_IO_MAX);
        for (size_t i = 0; i < n; i++) {
                uint32_t ma, mi;
                size_t j;
                int r;

                r = iodev_resolve_device(req[i].device, creds, &ma, &mi, ret_message);
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
