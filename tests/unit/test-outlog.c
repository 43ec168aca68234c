/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/outlog.h"

static int tmpdir_fd(char *path) {
        strcpy(path, "/tmp/jw-test-outlog-XXXXXX");
        assert_non_null(mkdtemp(path));
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void cleanup(int dfd, const char *path) {
        unlinkat(dfd, "log", 0);
        close(dfd);
        rmdir(path);
}

/* The bytes the previous release (format 1) wrote for the sample below:
 * written out by hand, so that no encoder of today takes part. */
static const uint8_t v1_sample[] = {
        'J', 'W', 'L', 'O', 'G', 0, 0, 1,
        6, 0, 0, 0, 1, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', ' ',
        2, 0, 0, 0, 2, 0, 0, 0, 'E', '1',
        5, 0, 0, 0, 1, 0, 0, 0, 'w', 'o', 'r', 'l', 'd',
        1, 0, 0, 0, 1, 0, 0, 0, '!',
        2, 0, 0, 0, 2, 0, 0, 0, 'E', '2',
};

/* Writes out:"hello " err:"E1" out:"world" err:"E2" out:"!", in format 2
 * through outlog_append(), or format 1 as the previous release wrote it. */
static int sample(int dfd, unsigned version, uint64_t *end) {
        int fd;
        if (version == OUTLOG_V1) {
                fd = openat(dfd, "log", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                assert_int_equal(write(fd, v1_sample, sizeof(v1_sample)), (ssize_t) sizeof(v1_sample));
                *end = sizeof(v1_sample);
                return fd;
        }
        assert_int_equal(outlog_create(dfd, "log", &fd), 0);
        *end = OUTLOG_HEADER_SIZE;
        assert_int_equal(outlog_append(fd, version, end, JOB_STREAM_STDOUT, "hello ", 6), 0);
        assert_int_equal(outlog_append(fd, version, end, JOB_STREAM_STDERR, "E1", 2), 0);
        assert_int_equal(outlog_append(fd, version, end, JOB_STREAM_STDOUT, "world", 5), 0);
        assert_int_equal(outlog_append(fd, version, end, JOB_STREAM_STDOUT, "!", 1), 0);
        assert_int_equal(outlog_append(fd, version, end, JOB_STREAM_STDERR, "E2", 2), 0);
        /* One byte of header per record: 8 + 5 + 16 bytes of data. */
        assert_int_equal(*end, 8 + 5 + 16);
        return fd;
}

static void check_read_views(unsigned version) {
        char path[64], buf[64];
        int dfd = tmpdir_fd(path);
        uint64_t end;
        int fd = sample(dfd, version, &end);
        OutlogCursor c;
        JobStream s;
        ssize_t n;

        /* Both streams: a change of stream ends a chunk; same-stream records coalesce. */
        outlog_cursor_init(&c);
        n = outlog_read(fd, end, &c, JOB_STREAMS_ALL, buf, sizeof(buf), &s);
        assert_int_equal(n, 6);
        assert_int_equal(s, JOB_STREAM_STDOUT);
        assert_memory_equal(buf, "hello ", 6);
        n = outlog_read(fd, end, &c, JOB_STREAMS_ALL, buf, sizeof(buf), &s);
        assert_int_equal(n, 2);
        assert_int_equal(s, JOB_STREAM_STDERR);
        n = outlog_read(fd, end, &c, JOB_STREAMS_ALL, buf, sizeof(buf), &s);
        assert_int_equal(n, 6);
        assert_memory_equal(buf, "world!", 6);
        assert_int_equal(c.view, 14);
        n = outlog_read(fd, end, &c, JOB_STREAMS_ALL, buf, sizeof(buf), &s);
        assert_int_equal(n, 2);
        assert_int_equal(outlog_read(fd, end, &c, JOB_STREAMS_ALL, buf, sizeof(buf), &s), 0);

        /* stdout only: one chunk across the skipped stderr record. */
        outlog_cursor_init(&c);
        n = outlog_read(fd, end, &c, JOB_STREAM_STDOUT, buf, sizeof(buf), &s);
        assert_int_equal(n, 12);
        assert_memory_equal(buf, "hello world!", 12);

        /* Bounded chunk size, then resume. */
        outlog_cursor_init(&c);
        n = outlog_read(fd, end, &c, JOB_STREAM_STDOUT, buf, 4, &s);
        assert_int_equal(n, 4);
        n = outlog_read(fd, end, &c, JOB_STREAM_STDOUT, buf, sizeof(buf), &s);
        assert_int_equal(n, 8);
        assert_memory_equal(buf, "o world!", 8);

        /* Seek in the stderr view. */
        outlog_cursor_init(&c);
        assert_int_equal(outlog_seek(fd, end, &c, JOB_STREAM_STDERR, 3), 0);
        assert_int_equal(c.view, 3);
        n = outlog_read(fd, end, &c, JOB_STREAM_STDERR, buf, sizeof(buf), &s);
        assert_int_equal(n, 1);
        assert_memory_equal(buf, "2", 1);

        /* Seek past the end stops at the end. */
        outlog_cursor_init(&c);
        assert_int_equal(outlog_seek(fd, end, &c, JOB_STREAMS_ALL, 1000), 0);
        assert_int_equal(c.view, 16);
        close(fd);
        cleanup(dfd, path);
}

static void test_read_views(void **state) {
        check_read_views(OUTLOG_VERSION);
}

/* A log of the previous release (a job running across the upgrade) reads
 * byte-exact, scans, and is appended to in its own format. */
static void test_reads_previous_format(void **state) {
        char path[64], buf[64];
        int dfd = tmpdir_fd(path);
        uint64_t end, e2, o, er;
        OutlogCursor c;
        JobStream s;

        check_read_views(OUTLOG_V1);
        int fd = sample(dfd, OUTLOG_V1, &end);
        assert_int_equal(outlog_version(fd), OUTLOG_V1);
        assert_int_equal(outlog_scan(fd, false, &e2, &o, &er), 0);
        assert_int_equal(e2, sizeof(v1_sample));
        assert_int_equal(o, 12);
        assert_int_equal(er, 4);
        assert_int_equal(outlog_append(fd, OUTLOG_V1, &end, JOB_STREAM_STDOUT, "+", 1), 0);
        assert_int_equal(end, sizeof(v1_sample) + 9);
        outlog_cursor_init(&c);
        assert_int_equal(outlog_read(fd, end, &c, JOB_STREAM_STDOUT, buf, sizeof(buf), &s), 13);
        assert_memory_equal(buf, "hello world!+", 13);
        close(fd);
        cleanup(dfd, path);
}

/* Format 2 keys across the LEB128 byte boundaries, and the padded form the
 * splice path writes, read back byte-exact. */
static void test_record_sizes_round_trip(void **state) {
        static const uint32_t sizes[] = { 1, 63, 64, 8191, 8192, 1048575, 1048576, OUTLOG_RECORD_MAX };
        static const uint64_t hlen[] = { 1, 1, 2, 2, 3, 3, 4, 4 };
        static uint8_t data[OUTLOG_RECORD_MAX], back[OUTLOG_RECORD_MAX];
        char path[64];
        int dfd = tmpdir_fd(path), fd, p[2];
        uint64_t end = OUTLOG_HEADER_SIZE, want = OUTLOG_HEADER_SIZE;
        OutlogCursor c;
        JobStream s;

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (i * 131 + 7);
        assert_int_equal(outlog_create(dfd, "log", &fd), 0);
        assert_int_equal(outlog_version(fd), OUTLOG_V2);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                JobStream st = i % 2 ? JOB_STREAM_STDERR : JOB_STREAM_STDOUT;
                assert_int_equal(outlog_append(fd, OUTLOG_V2, &end, st, data, sizes[i]), 0);
                want += hlen[i] + sizes[i];
                assert_int_equal(end, want);
        }
        /* Spliced: 5 bytes behind the padded 4-byte key. */
        assert_int_equal(pipe(p), 0);
        assert_int_equal(write(p[1], "tail!", 5), 5);
        assert_int_equal(outlog_append_splice(fd, OUTLOG_V2, &end, JOB_STREAM_STDERR, p[0], 1024), 5);
        assert_int_equal(end, want + 4 + 5);
        close(p[0]);
        close(p[1]);

        outlog_cursor_init(&c);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                size_t got = 0;
                while (got < sizes[i]) {
                        ssize_t n = outlog_read(fd, end, &c, JOB_STREAMS_ALL, back + got, sizes[i] - got, &s);
                        assert_true(n > 0);
                        assert_int_equal(s, i % 2 ? JOB_STREAM_STDERR : JOB_STREAM_STDOUT);
                        got += (size_t) n;
                }
                assert_memory_equal(back, data, sizes[i]);
        }
        assert_int_equal(outlog_read(fd, end, &c, JOB_STREAMS_ALL, back, sizeof(back), &s), 5);
        assert_int_equal(s, JOB_STREAM_STDERR);
        assert_memory_equal(back, "tail!", 5);
        close(fd);
        cleanup(dfd, path);
}

static void test_scan_repairs_torn_tail(void **state) {
        char path[64];
        int dfd = tmpdir_fd(path);
        uint64_t end, e2, o, er;
        int fd = sample(dfd, OUTLOG_VERSION, &end);

        /* A record header promising more than was written (crash mid-write):
         * 100 bytes of stdout, key 200 = 0xc8 0x01. */
        uint8_t torn[] = { 0xc8, 0x01, 'a', 'b', 'c' };
        assert_int_equal(pwrite(fd, torn, sizeof(torn), (off_t) end), (ssize_t) sizeof(torn));
        assert_int_equal(outlog_scan(fd, true, &e2, &o, &er), 0);
        assert_int_equal(e2, end);
        assert_int_equal(o, 12);
        assert_int_equal(er, 4);
        assert_int_equal(lseek(fd, 0, SEEK_END), (off_t) end);

        /* A key torn after its first byte, and a key longer than 4 bytes. */
        assert_int_equal(pwrite(fd, "\xc8", 1, (off_t) end), 1);
        assert_int_equal(outlog_scan(fd, true, &e2, &o, &er), 0);
        assert_int_equal(e2, end);
        assert_int_equal(pwrite(fd, "\x82\x80\x80\x80\x00x", 6, (off_t) end), 6);
        assert_int_equal(outlog_scan(fd, true, &e2, &o, &er), 0);
        assert_int_equal(e2, end);
        assert_int_equal(lseek(fd, 0, SEEK_END), (off_t) end);

        /* Not a log at all. */
        assert_int_equal(pwrite(fd, "garbage!", 8, 0), 8);
        assert_int_equal(outlog_scan(fd, false, &e2, &o, &er), -EBADMSG);
        close(fd);
        cleanup(dfd, path);
}

/* A daemon that died between the provisional header of a spliced record
 * and the real one (outlog_append_splice()): the data that reached the file
 * is the job's, and the scan keeps it as the last record. */
static void test_scan_finishes_provisional_record(void **state) {
        char path[64], back[16];
        int dfd = tmpdir_fd(path);
        uint64_t end, e2, o, er;
        int fd = sample(dfd, OUTLOG_VERSION, &end);
        OutlogScan got;
        OutlogCursor c;
        JobStream s;
        uint64_t at;

        /* Provisional stderr header (size 0, padded), then 5 bytes. */
        assert_int_equal(pwrite(fd, "\x81\x80\x80\x00late!", 9, (off_t) end), 9);
        assert_int_equal(outlog_scan_from(fd, true, NULL, &got), 0);
        assert_int_equal(got.end, end + 9);
        assert_int_equal(got.finished, 1);
        assert_int_equal(got.cut, 0);
        assert_int_equal(got.stderr_bytes, 4 + 5);
        /* Made whole on disk: a plain scan agrees, a reader reads it. */
        assert_int_equal(outlog_scan(fd, false, &e2, &o, &er), 0);
        assert_int_equal(e2, end + 9);
        outlog_cursor_init(&c);
        at = 0;
        for (int i = 0; i < 8 && at < sizeof(back); i++) {
                ssize_t n = outlog_read(fd, e2, &c, JOB_STREAM_STDERR, back + at, sizeof(back) - at, &s);
                if (n <= 0)
                        break;
                at += (uint64_t) n;
        }
        assert_int_equal(at, 9);
        assert_memory_equal(back, "E1E2late!", 9);

        /* A provisional header with nothing after it: cut, and counted. */
        assert_int_equal(pwrite(fd, "\x80\x80\x80\x00", 4, (off_t) (end + 9)), 4);
        assert_int_equal(outlog_scan_from(fd, true, NULL, &got), 0);
        assert_int_equal(got.end, end + 9);
        assert_int_equal(got.finished, 0);
        assert_int_equal(got.cut, 4);
        assert_int_equal(lseek(fd, 0, SEEK_END), (off_t) (end + 9));
        close(fd);
        cleanup(dfd, path);
}

static void test_append_rejects_bad_sizes(void **state) {
        char path[64];
        int dfd = tmpdir_fd(path), fd;
        uint64_t end = OUTLOG_HEADER_SIZE;
        assert_int_equal(outlog_create(dfd, "log", &fd), 0);
        assert_int_equal(outlog_append(fd, OUTLOG_VERSION, &end, JOB_STREAM_STDOUT, "", 0), -EINVAL);
        assert_int_equal(outlog_create(dfd, "log", &fd), -EEXIST);
        close(fd);
        cleanup(dfd, path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read_views),
                cmocka_unit_test(test_reads_previous_format),
                cmocka_unit_test(test_record_sizes_round_trip),
                cmocka_unit_test(test_scan_repairs_torn_tail),
                cmocka_unit_test(test_scan_finishes_provisional_record),
                cmocka_unit_test(test_append_rejects_bad_sizes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
