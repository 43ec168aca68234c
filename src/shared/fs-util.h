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

/* Reads up to size - 1 bytes of path (relative to dirfd, or AT_FDCWD) with
 * one read() and NUL-terminates them in buf, which stays the caller's.
 * flags are added to O_RDONLY | O_CLOEXEC (O_NOFOLLOW, O_NOCTTY, ...).
 * For small files read whole at once (status files, sysfs attributes).
 * Returns the length read, or -errno. */
static inline ssize_t read_small_file_at(int dirfd, const char *path, int flags, char *buf, size_t size) {
        ssize_t n;
        int fd, saved;

        if (size == 0)
                return -EINVAL;
        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | flags);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        saved = errno;
        close(fd);
        if (n < 0)
                return -saved;
        buf[n] = 0;
        return n;
}
