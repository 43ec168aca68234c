/* SPDX-License-Identifier: MIT */

/*
 * Jobs on a pseudo-terminal (JobSpec.tty): the terminal pair a start makes,
 * and the window size a writer sets.
 *
 * The one idea: the master is the job's stdout (the capture reads it as it
 * reads a pipe, with read(): a tty cannot splice, and EIO once the last
 * slave is closed is its EOF) and, through a dup of its own, the job's stdin
 * (job-input.c writes to it). The slave is the job's 0, 1 and 2 and its
 * controlling terminal (spawn.c: setsid, TIOCSCTTY); ours is closed right
 * after the spawn, so that the job's end is the terminal's end.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "core/engine-internal.h"
#include "core/job-tty.h"
#include "shared/macro.h"

int job_tty_open(const JobTerminal *t, int *ret_master, int *ret_input, int *ret_slave) {
        struct winsize ws = { .ws_row = t->rows, .ws_col = t->cols };
        _cleanup_close_ int m = -1, in = -1, s = -1;
        char name[64];
        int r;

        m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0)
                return -errno;
        m = fd_above_2(m);
        if (m < 0)
                return -EMFILE;
        if (grantpt(m) < 0 || unlockpt(m) < 0)
                return -errno;
        r = ptsname_r(m, name, sizeof(name));
        if (r != 0)
                return -r;
        s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s < 0)
                return -errno;
        s = fd_above_2(s);
        if (s < 0)
                return -EMFILE;
        if (ioctl(m, TIOCSWINSZ, &ws) < 0)
                return -errno;
        /* Ours is non-blocking: the capture and the writer never wait. */
        if (fcntl(m, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        in = fcntl(m, F_DUPFD_CLOEXEC, 3);
        if (in < 0)
                return -errno;
        *ret_master = TAKE_FD(m);
        *ret_input = TAKE_FD(in);
        *ret_slave = TAKE_FD(s);
        return 0;
}

char **job_tty_env(const char *const *env, const char *term) {
        size_t n = 0, bytes;
        char **v;

        for (; env && env[n]; n++)
                ;
        bytes = strlen("TERM=") + strlen(term && *term ? term : "dumb") + 1;
        v = malloc((n + 2) * sizeof(char *) + bytes);
        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++)
                v[i] = (char *) env[i];
        v[n] = (char *) (v + n + 2);
        snprintf(v[n], bytes, "TERM=%s", term && *term ? term : "dumb");
        v[n + 1] = NULL;
        return v;
}

int job_tty_resize(int fd, unsigned rows, unsigned cols) {
        struct winsize ws = { .ws_row = (unsigned short) rows, .ws_col = (unsigned short) cols };

        if (rows == 0 || cols == 0 || rows > 0xffff || cols > 0xffff)
                return -EINVAL;
        return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}
