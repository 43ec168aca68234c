/* SPDX-License-Identifier: MIT */

/*
 * The keeper (core/keeper.c): jobs' fds in bundles that a fake service
 * manager stores, handed back to a new keeper as after a restart.
 */

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/keeper.h"
#include "shared/macro.h"

#define MAX_STORED 16

/* What a service manager would keep: fds by name, in store order. */
typedef struct Store {
        int fds[MAX_STORED];
        char names[MAX_STORED][32];
        size_t n;
        unsigned removals;
} Store;

static int store_fd(void *userdata, int fd, const char *name) {
        Store *s = userdata;

        if (s->n >= MAX_STORED)
                return -ENOSPC;
        s->fds[s->n] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        snprintf(s->names[s->n], sizeof(s->names[s->n]), "%s", name);
        s->n++;
        return 0;
}

static int remove_fd(void *userdata, const char *name) {
        Store *s = userdata;

        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->names[i], name) == 0) {
                        safe_close(s->fds[i]);
                        s->fds[i] = s->fds[s->n - 1];
                        memcpy(s->names[i], s->names[s->n - 1], sizeof(s->names[i]));
                        s->n--;
                        s->removals++;
                        return 0;
                }
        return -ENOENT;
}

static void store_done(Store *s) {
        for (size_t i = 0; i < s->n; i++)
                safe_close(s->fds[i]);
        s->n = 0;
}

/* The config a restarted daemon would pass: what s holds. */
static EngineFdStore handback(Store *s, const char **names) {
        for (size_t i = 0; i < s->n; i++)
                names[i] = s->names[i];
        return (EngineFdStore) { .store = store_fd, .remove = remove_fd, .userdata = s, .fds = s->fds,
                                 .names = names, .n = s->n };
}

typedef struct FakeJob {
        JobId id;
        int pidfd, out[2], err[2];
        uint32_t bundle;
} FakeJob;

static void fake_job(FakeJob *j, unsigned i) {
        memset(j, 0, sizeof(*j));
        memcpy(j->id.bytes, &i, sizeof(i));
        j->id.bytes[15] = 0x4b;
        j->pidfd = (int) syscall(SYS_pidfd_open, getpid(), 0);
        assert_true(j->pidfd >= 0);
        assert_int_equal(pipe2(j->out, O_CLOEXEC), 0);
        assert_int_equal(pipe2(j->err, O_CLOEXEC), 0);
}

static void fake_job_done(FakeJob *j) {
        safe_close(j->pidfd);
        for (int i = 0; i < 2; i++) {
                safe_close(j->out[i]);
                safe_close(j->err[i]);
        }
}

/* 300 jobs fill one bundle (256) and start a second; a new keeper given the
 * stored bundles finds every job, with fds that are the same pipes. */
static void test_keep_and_take(void **state) {
        enum { N = 300 };
        Store s = {};
        EngineFdStore cfg = { .store = store_fd, .remove = remove_fd, .userdata = &s };
        const char *names[MAX_STORED];
        FakeJob *jobs = calloc(N, sizeof(FakeJob));
        Keeper *k = NULL, *k2 = NULL;
        KeeperCounts c;

        assert_int_equal(keeper_new(&cfg, &k), 0);
        assert_non_null(k);
        for (unsigned i = 0; i < N; i++) {
                fake_job(&jobs[i], i);
                assert_int_equal(keeper_add(k, &jobs[i].id, 1000 + (pid_t) i, 77 + i, jobs[i].pidfd, jobs[i].out[0],
                                            jobs[i].err[0], &jobs[i].bundle), 0);
        }
        assert_int_equal(s.n, 2);
        assert_string_equal(s.names[0], "jobs-1");
        assert_string_equal(s.names[1], "jobs-2");
        assert_int_equal(jobs[0].bundle, 1);
        assert_int_equal(jobs[N - 1].bundle, 2);
        /* The daemon dies: only the store's copies remain. */
        k = keeper_unref(k);

        cfg = handback(&s, names);
        assert_int_equal(keeper_new(&cfg, &k2), 0);
        keeper_get_counts(k2, &c);
        assert_int_equal(c.loaded_jobs, N);
        assert_int_equal(c.failures, 0);
        for (unsigned i = 0; i < N; i++) {
                KeptJob kj;
                char buf[8];
                assert_int_equal(keeper_take(k2, &jobs[i].id, &kj), 0);
                assert_int_equal(kj.pid, 1000 + (pid_t) i);
                assert_int_equal(kj.pid_starttime, 77 + i);
                assert_int_equal(kj.bundle, jobs[i].bundle);
                /* The kept read end is the job's pipe. */
                assert_int_equal(write(jobs[i].out[1], "x", 1), 1);
                assert_int_equal(read(kj.fds[1], buf, sizeof(buf)), 1);
                for (int f = 0; f < 3; f++)
                        safe_close(kj.fds[f]);
        }
        keeper_load_done(k2);
        /* A job of a bundle of the previous daemon ends: once all of them
         * did, the bundle leaves the store. */
        for (unsigned i = 0; i < 256; i++)
                keeper_release(k2, 1);
        assert_int_equal(s.removals, 1);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.names[0], "jobs-2");
        /* New jobs go to a new bundle, numbered after the loaded ones. */
        FakeJob extra;
        fake_job(&extra, 9999);
        assert_int_equal(keeper_add(k2, &extra.id, 1, 1, extra.pidfd, extra.out[0], extra.err[0], &extra.bundle), 0);
        assert_int_equal(extra.bundle, 3);
        fake_job_done(&extra);
        keeper_unref(k2);
        for (unsigned i = 0; i < N; i++)
                fake_job_done(&jobs[i]);
        free(jobs);
        store_done(&s);
}

/* Reading a bundle leaves it as it was: a daemon that dies while loading
 * loses nothing (the next one reads the same records). */
static void test_load_does_not_consume(void **state) {
        Store s = {};
        EngineFdStore cfg = { .store = store_fd, .remove = remove_fd, .userdata = &s };
        const char *names[MAX_STORED];
        FakeJob j;
        Keeper *k = NULL;

        fake_job(&j, 1);
        assert_int_equal(keeper_new(&cfg, &k), 0);
        assert_int_equal(keeper_add(k, &j.id, 5, 6, j.pidfd, j.out[0], j.err[0], &j.bundle), 0);
        k = keeper_unref(k);
        for (int round = 0; round < 3; round++) {
                KeeperCounts c;
                KeptJob kj;
                cfg = handback(&s, names);
                assert_int_equal(keeper_new(&cfg, &k), 0);
                keeper_get_counts(k, &c);
                assert_int_equal(c.loaded_jobs, 1);
                assert_int_equal(keeper_take(k, &j.id, &kj), 0);
                for (int f = 0; f < 3; f++)
                        safe_close(kj.fds[f]);
                /* Dies before its load is done. */
                k = keeper_unref(k);
        }
        fake_job_done(&j);
        store_done(&s);
}

/* A record of a version this keeper does not know (a newer daemon's) is
 * skipped and counted; the others load. */
static void test_unknown_version_skipped(void **state) {
        Store s = {};
        EngineFdStore cfg = { .store = store_fd, .remove = remove_fd, .userdata = &s };
        const char *names[MAX_STORED];
        uint8_t rec[64] = { 'J', 'W', 'K', 'P', 99, 0, 3, 0 };
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(3 * sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = rec, .iov_len = sizeof(rec) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        FakeJob j;
        Keeper *k = NULL;
        KeeperCounts c;
        KeptJob kj;
        int sv[2];

        fake_job(&j, 2);
        assert_int_equal(keeper_new(&cfg, &k), 0);
        assert_int_equal(keeper_add(k, &j.id, 5, 6, j.pidfd, j.out[0], j.err[0], &j.bundle), 0);
        k = keeper_unref(k);
        /* A second bundle, by hand, with one record of version 99. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
        memcpy(CMSG_DATA(cm), (int[]) { j.pidfd, j.out[0], j.err[0] }, 3 * sizeof(int));
        assert_int_equal(sendmsg(sv[0], &mh, 0), (ssize_t) sizeof(rec));
        safe_close(sv[0]);
        assert_int_equal(store_fd(&s, sv[1], "jobs-7"), 0);
        safe_close(sv[1]);

        cfg = handback(&s, names);
        assert_int_equal(keeper_new(&cfg, &k), 0);
        keeper_get_counts(k, &c);
        assert_int_equal(c.loaded_jobs, 1);
        assert_int_equal(c.failures, 1);
        assert_int_equal(keeper_take(k, &j.id, &kj), 0);
        for (int f = 0; f < 3; f++)
                safe_close(kj.fds[f]);
        keeper_load_done(k);
        /* jobs-7 had no job to keep: gone from the store. */
        assert_int_equal(s.n, 1);
        assert_string_equal(s.names[0], "jobs-1");
        keeper_unref(k);
        fake_job_done(&j);
        store_done(&s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keep_and_take),
                cmocka_unit_test(test_load_does_not_consume),
                cmocka_unit_test(test_unknown_version_skipped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
