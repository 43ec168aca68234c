/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * How a process ended, read through its pidfd by a process that is not its
 * parent (Linux 6.15+: PIDFD_GET_INFO with PIDFD_INFO_EXIT). Any thread.
 */

#include <signal.h>

/* 1: *ret filled (si_code CLD_EXITED/CLD_KILLED/CLD_DUMPED, si_status);
 * 0: not known yet (the process has not been reaped by its parent: the
 * kernel keeps the status only from the reap on); -EOPNOTSUPP: this kernel
 * cannot tell (before 6.15); other -errno as the ioctl says. */
int pidfd_exit_status(int pidfd, siginfo_t *ret);
