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

/* Writes out:"hello " err:"E1" out:"world" err:"E2" out:"!" */
static int sample(int dfd, uint64_t *end) {
        int fd;
        assert_int_equal(outlog_create(dfd, "log", &fd), 0);
        *end = OUTLOG_HEADER_SIZE;
        assert_int_equal(outlog_append(fd, end, JOB_STREAM_STDOUT, "hello ", 6), 0);
        assert_int_equal(outlog_append(fd, end, JOB_STREAM_STDERR, "E1", 2), 0);
        assert_int_equal(outlog_append(fd, end, JOB_STREAM_STDOUT, "world", 5), 0);
        assert_int_equal(outlog_append(fd, end, JOB_STREAM_STDOUT, "!", 1), 0);
        assert_int_equal(outlog_append(fd, end, JOB_STREAM_STDERR, "E2", 2), 0);
        return fd;
}

static void test_read_views(void **state) {
        char path[64], buf[64];
        int dfd = tmpdir_fd(path);
        uint64_t end;
        int fd = sample(dfd, &end);
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

static void test_scan_repairs_torn_tail(void **state) {
        char path[64];
        int dfd = tmpdir_fd(path);
        uint64_t end, e2, o, er;
        int fd = sample(dfd, &end);

        /* A record header promising more than was written (crash mid-write). */
        uint8_t torn[OUTLOG_RECORD_HEADER_SIZE + 3] = { 100, 0, 0, 0, 1, 0, 0, 0, 'a', 'b', 'c' };
        assert_int_equal(pwrite(fd, torn, sizeof(torn), (off_t) end), (ssize_t) sizeof(torn));
        assert_int_equal(outlog_scan(fd, true, &e2, &o, &er), 0);
        assert_int_equal(e2, end);
        assert_int_equal(o, 12);
        assert_int_equal(er, 4);
        assert_int_equal(lseek(fd, 0, SEEK_END), (off_t) end);

        /* Not a log at all. */
        assert_int_equal(pwrite(fd, "garbage!", 8, 0), 8);
        assert_int_equal(outlog_scan(fd, false, &e2, &o, &er), -EBADMSG);
        close(fd);
        cleanup(dfd, path);
}

static void test_append_rejects_bad_sizes(void **state) {
        char path[64];
        int dfd = tmpdir_fd(path), fd;
        uint64_t end = OUTLOG_HEADER_SIZE;
        assert_int_equal(outlog_create(dfd, "log", &fd), 0);
        assert_int_equal(outlog_append(fd, &end, JOB_STREAM_STDOUT, "", 0), -EINVAL);
        assert_int_equal(outlog_create(dfd, "log", &fd), -EEXIST);
        close(fd);
        cleanup(dfd, path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read_views),
                cmocka_unit_test(test_scan_repairs_torn_tail),
                cmocka_unit_test(test_append_rejects_bad_sizes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
