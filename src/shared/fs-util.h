/* SPDX-License-Identifier: MIT */
#pragma once

/* Small file system helpers. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Opens a directory stream on a copy of dirfd (dirfd stays the caller's).
 * NULL with errno set on failure. closedir() the result. */
static inline DIR *opendir_dup(int dirfd) {
        int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        DIR *d;

        if (fd < 0)
                return NULL;
        d = fdopendir(fd);
        if (!d) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return d;
}
