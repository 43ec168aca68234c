/* SPDX-License-Identifier: MIT */

/*
 * Output log files (format in outlog.h). The one idea: readers never share
 * state with the writer but the file and its size, so any number of them
 * can follow one job, each at its own pace, with only a cursor in memory.
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/outlog.h"
#include "shared/macro.h"

/* The file header without its last byte, the version. */
static const char outlog_magic[OUTLOG_HEADER_SIZE - 1] = { 'J', 'W', 'L', 'O', 'G', 0, 0 };

/* Room for the longest record header of any version. */
#define RECORD_HEADER_MAX OUTLOG_V1_RECORD_HEADER_SIZE

static int pwrite_all(int fd, const struct iovec *iov_in, int n, uint64_t pos) {
        struct iovec iov[4];
        size_t total = 0;

        assert(n <= 4);
        memcpy(iov, iov_in, sizeof(struct iovec) * (size_t) n);
        for (int i = 0; i < n; i++)
                total += iov[i].iov_len;

        while (total > 0) {
                ssize_t k = pwritev(fd, iov, n, (off_t) pos);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                total -= (size_t) k;
                pos += (uint64_t) k;
                /* Advance the vector past what was written. */
                while (k > 0 && n > 0) {
                        if ((size_t) k >= iov[0].iov_len) {
                                k -= (ssize_t) iov[0].iov_len;
                                memmove(iov, iov + 1, sizeof(struct iovec) * (size_t) (n - 1));
                                n--;
                        } else {
                                iov[0].iov_base = (char *) iov[0].iov_base + k;
                                iov[0].iov_len -= (size_t) k;
                                k = 0;
                        }
                }
        }
        return 0;
}

static int pread_all(int fd, void *buf, size_t size, uint64_t pos) {
        size_t done = 0;

        while (done < size) {
                ssize_t k = pread(fd, (char *) buf + done, size - done, (off_t) (pos + done));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -ENODATA;
                done += (size_t) k;
        }
        return 0;
}

int outlog_create(int dirfd, const char *name, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        char header[OUTLOG_HEADER_SIZE];
        struct iovec iov = { header, sizeof(header) };
        int r;

        memcpy(header, outlog_magic, sizeof(outlog_magic));
        header[OUTLOG_HEADER_SIZE - 1] = OUTLOG_VERSION;

        fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        r = pwrite_all(fd, &iov, 1, 0);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int outlog_version(int fd) {
        uint8_t h[OUTLOG_HEADER_SIZE];
        int r = pread_all(fd, h, sizeof(h), 0);

        if (r == -ENODATA)
                return -EBADMSG;
        if (r < 0)
                return r;
        if (memcmp(h, outlog_magic, sizeof(outlog_magic)) != 0)
                return -EBADMSG;
        if (h[OUTLOG_HEADER_SIZE - 1] != OUTLOG_V1 && h[OUTLOG_HEADER_SIZE - 1] != OUTLOG_V2)
                return -EBADMSG;
        return h[OUTLOG_HEADER_SIZE - 1];
}

/* Writes a record header into h, returns its length. `padded`: the 4-byte
 * form of version 2 (for splice, where the size comes after the space). */
static size_t header_encode(unsigned version, uint8_t h[RECORD_HEADER_MAX], uint32_t size, JobStream stream,
                            bool padded) {
        uint32_t key = size << 1 | (stream == JOB_STREAM_STDERR ? 1u : 0u);
        size_t n = 0;

        if (version == OUTLOG_V1) {
                h[0] = (uint8_t) size;
                h[1] = (uint8_t) (size >> 8);
                h[2] = (uint8_t) (size >> 16);
                h[3] = (uint8_t) (size >> 24);
                h[4] = (uint8_t) stream;
                h[5] = h[6] = h[7] = 0;
                return OUTLOG_V1_RECORD_HEADER_SIZE;
        }
        do {
                h[n] = key & 0x7f;
                key >>= 7;
                if (key > 0 || (padded && n + 1 < OUTLOG_V2_RECORD_HEADER_MAX))
                        h[n] |= 0x80;
        } while (h[n++] & 0x80);
        return n;
}

/* Reads a record header from the avail bytes at h. Returns its length, 0
 * when avail is too short to hold it (the end of what is written), or
 * -EBADMSG. */
static int header_decode(unsigned version, const uint8_t *h, size_t avail, uint32_t *ret_size, JobStream *ret_stream) {
        uint32_t size, key = 0;
        JobStream stream;
        int len = 0;

        if (version == OUTLOG_V1) {
                if (avail < OUTLOG_V1_RECORD_HEADER_SIZE)
                        return 0;
                size = (uint32_t) h[0] | (uint32_t) h[1] << 8 | (uint32_t) h[2] << 16 | (uint32_t) h[3] << 24;
                if ((h[4] != JOB_STREAM_STDOUT && h[4] != JOB_STREAM_STDERR) || h[5] || h[6] || h[7])
                        return -EBADMSG;
                stream = (JobStream) h[4];
                len = OUTLOG_V1_RECORD_HEADER_SIZE;
        } else {
                for (;;) {
                        if (len == OUTLOG_V2_RECORD_HEADER_MAX)
                                return -EBADMSG;
                        if ((size_t) len >= avail)
                                return 0;
                        key |= (uint32_t) (h[len] & 0x7f) << (7 * len);
                        if (!(h[len++] & 0x80))
                                break;
                }
                size = key >> 1;
                stream = key & 1 ? JOB_STREAM_STDERR : JOB_STREAM_STDOUT;
        }
        if (size == 0 || size > OUTLOG_RECORD_MAX)
                return -EBADMSG;
        *ret_size = size;
        *ret_stream = stream;
        return len;
}

/* Reads and decodes the record header at pos of a file whose data ends at
 * end: as header_decode(). */
static int header_read(int fd, unsigned version, uint64_t pos, uint64_t end, uint32_t *ret_size, JobStream *ret_stream) {
        uint8_t h[RECORD_HEADER_MAX];
        size_t want = version == OUTLOG_V1 ? OUTLOG_V1_RECORD_HEADER_SIZE : OUTLOG_V2_RECORD_HEADER_MAX;
        int r;

        if (pos >= end)
                return 0;
        want = (size_t) MIN((uint64_t) want, end - pos);
        r = pread_all(fd, h, want, pos);
        if (r < 0)
                return r;
        return header_decode(version, h, want, ret_size, ret_stream);
}

int outlog_append(int fd, unsigned version, uint64_t *pos, JobStream stream, const void *data, size_t size) {
        uint8_t h[RECORD_HEADER_MAX];
        struct iovec iov[2];
        size_t hlen;
        int r;

        if (size == 0 || size > OUTLOG_RECORD_MAX)
                return -EINVAL;
        hlen = header_encode(version, h, (uint32_t) size, stream, false);
        iov[0] = (struct iovec) { h, hlen };
        iov[1] = (struct iovec) { (void *) data, size };
        r = pwrite_all(fd, iov, 2, *pos);
        if (r < 0)
                return r;
        *pos += hlen + size;
        return 0;
}

ssize_t outlog_append_splice(int fd, unsigned version, uint64_t *pos, JobStream stream, int pipe_fd, size_t max) {
        uint8_t h[RECORD_HEADER_MAX];
        size_t hlen = version == OUTLOG_V1 ? OUTLOG_V1_RECORD_HEADER_SIZE : OUTLOG_V2_RECORD_HEADER_MAX;
        struct iovec iov;
        loff_t data_pos = (loff_t) (*pos + hlen);
        ssize_t n;
        int r;

        if (max == 0 || max > OUTLOG_RECORD_MAX)
                return -EINVAL;
        /* Version 2: a provisional header first (size 0: "the data runs to
         * the end of the file"), then the data, then the real header.
         * splice() takes from the pipe exactly what reached the file, so
         * whenever the daemon dies, each byte is either still in the pipe
         * (for the next daemon to read) or in the log, and a scan finishes
         * a provisional last record (outlog_scan_from()): nothing is lost,
         * nothing written twice. Readers stop at *pos either way. */
        if (version == OUTLOG_V2) {
                if (header_encode(version, h, 0, stream, true) != hlen)
                        return -EINVAL;
                iov = (struct iovec) { h, hlen };
                r = pwrite_all(fd, &iov, 1, *pos);
                if (r < 0)
                        return r;
        }
        n = splice(pipe_fd, NULL, fd, &data_pos, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0)
                return -errno;
        if (n == 0)
                return 0;
        if (header_encode(version, h, (uint32_t) n, stream, true) != hlen)
                return -EINVAL; /* not reached: the padded form has a fixed size */
        iov = (struct iovec) { h, hlen };
        r = pwrite_all(fd, &iov, 1, *pos);
        if (r < 0)
                return r;
        *pos += hlen + (uint64_t) n;
        return n;
}

/* The last record of a log whose writer died between the provisional
 * header and the real one (outlog_append_splice()): its data runs to the
 * end of the file. Returns the header's length with *ret_size set (the
 * header made real when repair), 0 when it is not such a record or has
 * no data (then the scan ends there). */
static int provisional_finish(int fd, bool repair, uint64_t pos, uint64_t end, uint32_t *ret_size,
                              JobStream *ret_stream) {
        uint8_t h[OUTLOG_V2_RECORD_HEADER_MAX], want[RECORD_HEADER_MAX];
        struct iovec iov = { want, sizeof(h) };
        uint64_t size;

        if (end < pos + sizeof(h) || pread_all(fd, h, sizeof(h), pos) < 0)
                return 0;
        *ret_stream = h[0] & 1 ? JOB_STREAM_STDERR : JOB_STREAM_STDOUT;
        if (header_encode(OUTLOG_V2, want, 0, *ret_stream, true) != sizeof(h) || memcmp(h, want, sizeof(h)) != 0)
                return 0;
        size = end - pos - sizeof(h);
        if (size == 0 || size > OUTLOG_RECORD_MAX)
                return 0;
        if (repair) {
                (void) header_encode(OUTLOG_V2, want, (uint32_t) size, *ret_stream, true);
                if (pwrite_all(fd, &iov, 1, pos) < 0)
                        return 0;
        }
        *ret_size = (uint32_t) size;
        return (int) sizeof(h);
}

int outlog_scan_from(int fd, bool repair, const OutlogScan *from, OutlogScan *ret) {
        OutlogScan at = { .end = OUTLOG_HEADER_SIZE };
        struct stat st;
        int version;

        if (fstat(fd, &st) < 0)
                return -errno;
        version = outlog_version(fd);
        if (version < 0)
                return version;
        if (from && from->end >= OUTLOG_HEADER_SIZE) {
                if (from->end > (uint64_t) st.st_size)
                        return -ERANGE;
                at.end = from->end;
                at.stdout_bytes = from->stdout_bytes;
                at.stderr_bytes = from->stderr_bytes;
        }

        for (uint64_t pos = at.end;;) {
                uint32_t size;
                JobStream s;
                int hlen = header_read(fd, (unsigned) version, pos, (uint64_t) st.st_size, &size, &s);

                if (hlen == -EBADMSG && version == OUTLOG_V2) {
                        hlen = provisional_finish(fd, repair, pos, (uint64_t) st.st_size, &size, &s);
                        if (hlen > 0)
                                at.finished++;
                }
                /* A torn or unreadable header ends the log here. */
                if (hlen <= 0 || pos + (uint64_t) hlen + size > (uint64_t) st.st_size)
                        break;
                pos += (uint64_t) hlen + size;
                at.scanned += (uint64_t) hlen + size;
                at.end = pos;
                at.records++;
                if (s == JOB_STREAM_STDOUT)
                        at.stdout_bytes += size;
                else
                        at.stderr_bytes += size;
        }

        if (repair && at.end < (uint64_t) st.st_size) {
                if (ftruncate(fd, (off_t) at.end) < 0)
                        return -errno;
                at.cut = (uint64_t) st.st_size - at.end;
        }
        *ret = at;
        return 0;
}

int outlog_scan(int fd, bool repair, uint64_t *ret_end, uint64_t *ret_stdout, uint64_t *ret_stderr) {
        OutlogScan got;
        int r = outlog_scan_from(fd, repair, NULL, &got);

        if (r < 0)
                return r;
        *ret_end = got.end;
        *ret_stdout = got.stdout_bytes;
        *ret_stderr = got.stderr_bytes;
        return 0;
}

void outlog_cursor_init(OutlogCursor *c) {
        *c = (OutlogCursor) { .pos = OUTLOG_HEADER_SIZE };
}

/* Makes sure the cursor is inside a record with data, or returns 0 at the end. */
static int cursor_load(int fd, uint64_t end, OutlogCursor *c) {
        uint32_t size;
        JobStream s;
        int r;

        if (c->rec_left > 0)
                return 1;
        if (c->version == 0) {
                r = outlog_version(fd);
                if (r < 0)
                        return r;
                c->version = (uint8_t) r;
        }
        r = header_read(fd, c->version, c->pos, end, &size, &s);
        if (r <= 0)
                return r;
        if (c->pos + (uint64_t) r + size > end)
                return 0;
        c->pos += (uint64_t) r;
        c->rec_left = size;
        c->rec_stream = s;
        return 1;
}

int outlog_seek(int fd, uint64_t end, OutlogCursor *c, unsigned streams, uint64_t view) {
        while (c->view < view) {
                int r = cursor_load(fd, end, c);
                if (r <= 0)
                        return r;
                uint32_t step = c->rec_left;
                if (c->rec_stream & streams) {
                        if (step > view - c->view)
                                step = (uint32_t) (view - c->view);
                        c->view += step;
                }
                c->pos += step;
                c->rec_left -= step;
        }
        return 0;
}

ssize_t outlog_read(int fd, uint64_t end, OutlogCursor *c, unsigned streams, void *buf, size_t max, JobStream *ret_stream) {
        JobStream stream = 0;
        size_t n = 0;

        while (n < max) {
                int r = cursor_load(fd, end, c);
                if (r < 0)
                        return n > 0 ? (ssize_t) n : r;
                if (r == 0)
                        break;
                if (!(c->rec_stream & streams)) {
                        c->pos += c->rec_left;
                        c->rec_left = 0;
                        continue;
                }
                if (n > 0 && c->rec_stream != stream)
                        break;
                stream = c->rec_stream;

                size_t k = MIN((size_t) c->rec_left, max - n);
                r = pread_all(fd, (char *) buf + n, k, c->pos);
                if (r < 0)
                        return n > 0 ? (ssize_t) n : r;
                n += k;
                c->pos += k;
                c->rec_left -= (uint32_t) k;
                c->view += k;
        }

        if (n > 0)
                *ret_stream = stream;
        return (ssize_t) n;
}
