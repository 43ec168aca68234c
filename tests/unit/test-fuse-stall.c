/* SPDX-License-Identifier: MIT */

/*
 * Tests of the test tool jw-fuse-stall (tests/helpers/jw-fuse-stall.c): that
 * a path walk under its mount really hangs, that SIGUSR1 turns the hang into
 * ENOENT, and that SIGTERM frees every hung caller and leaves no mount.
 *
 * The one idea: every caller that may hang runs in a forked child that
 * reports its errno through a pipe, so the test only ever waits on pipes and
 * pidfds with a deadline; a child still hung when the test fails is freed by
 * the tool's own parent-death cleanup.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../helpers/test-util.h"

#define STALL_MS 300     /* a caller still blocked after this long is hung */
#define BOUND_MS 3000    /* anything that should happen happens within this */

typedef struct Fixture {
        char dir[64];    /* the mountpoint */
        pid_t tool;      /* jw-fuse-stall, or -1 once reaped */
} Fixture;

enum { OP_STAT, OP_CHDIR, OP_EXECVP };

typedef struct Caller {
        pid_t pid;
        int fd;          /* read end of the pipe the child reports its errno on */
} Caller;

/* Forks a child that runs op on dir/name (name NULL: dir) and writes its errno
 * (0: success) to the caller's pipe. OP_EXECVP searches PATH=dir for a program. */
static Caller spawn_caller(int op, const char *dir, const char *name) {
        char path[128];
        int p[2];

        snprintf(path, sizeof(path), "%s%s%s", dir, name ? "/" : "", name ? name : "");
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct stat st;
                int r = 0;
                if (op == OP_STAT)
                        r = stat(path, &st);
                else if (op == OP_CHDIR)
                        r = chdir(path);
                else {
                        setenv("PATH", path, 1);
                        execvp("jw-no-such-program", (char *[]) { "x", NULL });
                        r = -1;
                }
                int err = r < 0 ? errno : 0;
                _exit(write(p[1], &err, sizeof(err)) == sizeof(err) ? 0 : 1);
        }
        close(p[1]);
        return (Caller) { .pid = pid, .fd = p[0] };
}

/* The errno a caller reported within timeout_ms, or -ETIMEDOUT if it is still
 * blocked. Once it reported, the child is reaped. */
static int caller_result(Caller *c, int timeout_ms) {
        int err;
        if (!wait_readable(c->fd, timeout_ms))
                return -ETIMEDOUT;
        assert_int_equal(read(c->fd, &err, sizeof(err)), sizeof(err));
        close(c->fd);
        assert_true(wait_exit(c->pid, BOUND_MS) >= 0);
        return err;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/jw-fuse-stall-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(fuse_stall_start(f->dir, BOUND_MS, &f->tool), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        if (f->tool > 0) {
                kill(f->tool, SIGTERM);
                wait_exit(f->tool, BOUND_MS);
        }
        rmdir(f->dir);
        free(f);
        return 0;
}

static void test_lookup_stalls_until_release(void **state) {
        Fixture *f = *state;
        struct stat st;

        /* The root itself answers: the mount works, it is a directory. */
        assert_int_equal(stat(f->dir, &st), 0);
        assert_true(S_ISDIR(st.st_mode));

        Caller c_stat = spawn_caller(OP_STAT, f->dir, "anything");
        Caller c_chdir = spawn_caller(OP_CHDIR, f->dir, "dir");
        Caller c_exec = spawn_caller(OP_EXECVP, f->dir, NULL);
        assert_int_equal(caller_result(&c_stat, STALL_MS), -ETIMEDOUT);
        assert_int_equal(caller_result(&c_chdir, 0), -ETIMEDOUT);
        assert_int_equal(caller_result(&c_exec, 0), -ETIMEDOUT);

        assert_int_equal(kill(f->tool, SIGUSR1), 0);
        assert_int_equal(caller_result(&c_stat, BOUND_MS), ENOENT);
        assert_int_equal(caller_result(&c_chdir, BOUND_MS), ENOENT);
        assert_int_equal(caller_result(&c_exec, BOUND_MS), ENOENT);

        /* After the release, new lookups fail at once. */
        Caller c_late = spawn_caller(OP_STAT, f->dir, "later");
        assert_int_equal(caller_result(&c_late, BOUND_MS), ENOENT);
}

static bool mounted(const char *dir) {
        char line[4096], needle[128];
        bool found = false;
        FILE *m = fopen("/proc/self/mountinfo", "re");
        assert_non_null(m);
        snprintf(needle, sizeof(needle), " %s ", dir);
        while (!found && fgets(line, sizeof(line), m))
                found = strstr(line, needle) != NULL;
        fclose(m);
        return found;
}

static void test_term_frees_callers_and_unmounts(void **state) {
        Fixture *f = *state;

        assert_true(mounted(f->dir));
        Caller c_stat = spawn_caller(OP_STAT, f->dir, "anything");
        assert_int_equal(caller_result(&c_stat, STALL_MS), -ETIMEDOUT);

        assert_int_equal(kill(f->tool, SIGTERM), 0);
        int err = caller_result(&c_stat, BOUND_MS);
        assert_true(err == ECONNABORTED || err == ENOTCONN);
        int status = wait_exit(f->tool, BOUND_MS);
        f->tool = -1;
        assert_true(status >= 0 && WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_false(mounted(f->dir));
}

int main(void) {
        char dir[] = "/tmp/jw-fuse-stall-probe-XXXXXX";
        pid_t pid;

        if (!getenv("JW_FUSE_STALL")) {
                fprintf(stderr, "JW_FUSE_STALL is not set (run through meson test)\n");
                return 77;
        }
        if (!mkdtemp(dir))
                return 1;
        int r = fuse_stall_start(dir, BOUND_MS, &pid);
        if (r == 0) {
                kill(pid, SIGTERM);
                r = wait_exit(pid, BOUND_MS) == 0 ? 0 : 1;
        }
        rmdir(dir);
        if (r == 77) {
                fprintf(stderr, "SKIP: jw-fuse-stall cannot mount FUSE here (see its message)\n");
                return 77;
        }
        if (r != 0) {
                fprintf(stderr, "jw-fuse-stall did not start (%d)\n", r);
                return 1;
        }

        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_lookup_stalls_until_release, setup, teardown),
                cmocka_unit_test_setup_teardown(test_term_frees_callers_and_unmounts, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
