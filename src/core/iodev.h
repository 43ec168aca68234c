/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * io device paths resolved to the disk io.max wants (iodev.c).
 *
 * Thread rules: any thread; may block as long as the path's file system
 * does — never call it on the engine thread.
 */

#include <stdint.h>

#include "core/engine.h"

/*
 * Resolves path to the block device whose io.max entry governs it: a block
 * device node stands for itself, any other file for the device of its file
 * system; a partition is replaced by its whole disk (io.max refuses
 * partitions). When the daemon runs as root and creds names another
 * account, the path is looked at with that account's file system uid and
 * gid (this thread only). Errors (with a malloc()ed *ret_message naming the
 * path): the stat() errno, -EINVAL for a path that is not on a block device.
 */
int iodev_resolve_device(const char *path, const JobCredentials *creds, uint32_t *ret_major, uint32_t *ret_minor,
                         char **ret_message);

/* Resolves every entry and merges entries that name the same disk (a rate
 * set in both must agree: -EINVAL otherwise). Fills io[] and *ret_n. */
int iodev_resolve(const JobIoDevice *req, size_t n, const JobCredentials *creds, JobIoLimit io[static JOB_IO_MAX],
                  size_t *ret_n, char **ret_message);
