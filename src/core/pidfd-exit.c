/* SPDX-License-Identifier: MIT */

/*
 * The exit status of a process we did not start, through its pidfd.
 *
 * The one idea: after a crash or a restart the daemon is no longer its
 * jobs' parent (their statuses go to PID 1), but the pidfds it kept in the
 * store (keeper.c) were open when the jobs ended, and from Linux 6.15 the
 * kernel stores the exit status with such a pidfd when the process is
 * reaped. Older kernels (Debian 12's 6.1) have no such ioctl (ENOTTY): then
 * the status is unknown, and the job says so (JOB_STATE_ENDED) instead of
 * inventing a code. The struct and numbers are those of the kernel's uapi
 * linux/pidfd.h, written out here because Debian 12's headers predate them;
 * the first 64 bytes (PIDFD_INFO_SIZE_VER0) are all we ask for.
 */

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "core/pidfd-exit.h"

#define JW_PIDFD_INFO_EXIT (1ull << 3)

struct jw_pidfd_info {
        uint64_t mask;
        uint64_t cgroupid;
        uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
        int32_t exit_code;      /* a wait status, as waitpid() gives it */
};
_Static_assert(sizeof(struct jw_pidfd_info) == 64, "PIDFD_INFO_SIZE_VER0");

#define JW_PIDFD_GET_INFO _IOWR(0xFF, 11, struct jw_pidfd_info)

int pidfd_exit_status(int pidfd, siginfo_t *ret) {
        struct jw_pidfd_info info = { .mask = JW_PIDFD_INFO_EXIT };

        if (ioctl(pidfd, JW_PIDFD_GET_INFO, &info) < 0) {
                /* ENOTTY (and EINVAL on some): no such ioctl before 6.13. */
                if (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP)
                        return -EOPNOTSUPP;
                /* ESRCH: reaped, and the kernel kept no status (6.13/6.14). */
                return errno == ESRCH ? -EOPNOTSUPP : -errno;
        }
        if (!(info.mask & JW_PIDFD_INFO_EXIT))
                return 0;
        memset(ret, 0, sizeof(*ret));
        if (WIFEXITED(info.exit_code)) {
                ret->si_code = CLD_EXITED;
                ret->si_status = WEXITSTATUS(info.exit_code);
        } else {
                ret->si_code = WCOREDUMP(info.exit_code) ? CLD_DUMPED : CLD_KILLED;
                ret->si_status = WTERMSIG(info.exit_code);
        }
        return 1;
}
