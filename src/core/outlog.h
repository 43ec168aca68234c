/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The output log: one file per job holding everything the job wrote, in the
 * order it was read, as records that keep the stream of each chunk.
 *
 *   file      := "JWLOG\0\0" version:u8 record*
 *   version 2 (written since issue 13):
 *   record    := key data[size]
 *   key       := (size << 1 | is_stderr) as LEB128: 7 bits a byte, low
 *                bits first, top bit set on every byte but the last; 1-4
 *                bytes (a padded form, 0x80 bytes of no value, is valid)
 *   version 1 (the release before; still read, and appended to in kind):
 *   record    := size:u32le stream:u8 0:u8 0:u16 data[size]
 *
 * A record of 63 bytes or less costs one byte of header in version 2 (eight
 * in version 1); a spliced record, whose size is known only after the data
 * is in place, takes the padded 4-byte form.
 *
 * The file is the buffer between the job and its subscribers: the writer
 * only appends, readers keep a cursor. Nothing about a log lives in memory
 * but its size.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/engine.h"

#define OUTLOG_HEADER_SIZE 8u
#define OUTLOG_V1 1u
#define OUTLOG_V2 2u
#define OUTLOG_VERSION OUTLOG_V2 /* what outlog_create() writes */
#define OUTLOG_V1_RECORD_HEADER_SIZE 8u
#define OUTLOG_V2_RECORD_HEADER_MAX 4u
#define OUTLOG_RECORD_MAX (16u * 1024u * 1024u)

/* Creates (O_EXCL) the log `name` in dirfd and writes the file header of
 * OUTLOG_VERSION. *ret_fd is O_RDWR|O_CLOEXEC, owned by the caller. */
int outlog_create(int dirfd, const char *name, int *ret_fd);

/* The version of the log open at fd (OUTLOG_V1 or OUTLOG_V2); -EBADMSG
 * if it is not a log. */
int outlog_version(int fd);

/* Appends one record in format `version` (the file's: outlog_version())
 * at *pos (the current end), advancing *pos. size must be
 * 1..OUTLOG_RECORD_MAX. */
int outlog_append(int fd, unsigned version, uint64_t *pos, JobStream stream, const void *data, size_t size);

/* Moves up to max bytes from a pipe into a new record at *pos without
 * copying through user space (splice). Returns the bytes moved, 0 at the
 * pipe's end, -EAGAIN when it is empty, -EINVAL when the file system cannot
 * splice (then use outlog_append()). Crash-exact for version 2: a byte is
 * in the pipe or in the log, whenever the process dies (a scan with repair
 * finishes the last record). A provisional header may be left after *pos
 * when nothing came: the next append overwrites it. */
ssize_t outlog_append_splice(int fd, unsigned version, uint64_t *pos, JobStream stream, int pipe_fd, size_t max);

/* Validates a log: walks the record headers, returns the end of the last
 * complete record in *ret_end and per-stream byte counts. A torn record at
 * the end (crash while writing) is cut off by truncating the file when
 * `repair` is set. -EBADMSG if the file header is wrong. */
int outlog_scan(int fd, bool repair, uint64_t *ret_end, uint64_t *ret_stdout, uint64_t *ret_stderr);

/* Where a scan stands: a record boundary and what lies before it. */
typedef struct OutlogScan {
        uint64_t end;           /* end of the last complete record */
        uint64_t stdout_bytes, stderr_bytes;
        uint64_t records;       /* records walked by this scan */
        uint64_t scanned;       /* bytes walked by this scan */
        uint64_t cut;           /* bytes of a torn end cut off (repair) */
        uint64_t finished;      /* provisional last records made whole (0 or 1) */
} OutlogScan;

/* outlog_scan() that starts at from->end, a record boundary known from
 * before (a checkpoint) with the byte counts before it, instead of at the
 * start; from->end below OUTLOG_HEADER_SIZE means from the start.
 * -ERANGE when from->end lies past the end of the file (then the
 * checkpoint is not of this file: scan from the start). */
int outlog_scan_from(int fd, bool repair, const OutlogScan *from, OutlogScan *ret);

/* A reader's position: the next byte to read. */
typedef struct OutlogCursor {
        uint64_t pos;          /* file offset of the next record header, or of data inside rec */
        uint32_t rec_left;     /* data bytes left in the current record */
        JobStream rec_stream;  /* stream of the current record (when rec_left > 0) */
        uint64_t view;         /* bytes of the selected streams before the cursor */
        uint8_t version;       /* the log's, read at the first load; 0 = not yet */
} OutlogCursor;

void outlog_cursor_init(OutlogCursor *c);

/* Skips forward until c->view == view or the end (end = file size to
 * consider). Returns 0; the cursor may stop short at the end. */
int outlog_seek(int fd, uint64_t end, OutlogCursor *c, unsigned streams, uint64_t view);

/* Reads up to max bytes of one stream from consecutive selected records
 * (records of unselected streams are skipped; a change of stream ends the
 * chunk). Returns the number of bytes (0 at the end) and the stream. */
ssize_t outlog_read(int fd, uint64_t end, OutlogCursor *c, unsigned streams, void *buf, size_t max, JobStream *ret_stream);
