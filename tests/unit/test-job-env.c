/* SPDX-License-Identifier: MIT */

/* job-env.c: spec validation, the job's environment, the command summary. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/job-env.h"

static int validate(const char *const *argv, const char *const *env, const char *cwd, JobStartError *err) {
        JobSpec spec = { .argv = argv, .env = env, .cwd = cwd, .owner = "t", .cgroup_fd = -1 };
        *err = (JobStartError) {};
        return job_env_validate(&spec, err);
}

static void test_validate(void **state) {
        const char *ok[] = { "/bin/true", NULL }, *empty[] = { NULL }, *noname[] = { "", NULL };
        const char *badenv[] = { "NOEQUALS", NULL }, *noKey[] = { "=v", NULL }, *goodenv[] = { "A=1", NULL };
        JobStartError err;

        assert_int_equal(validate(ok, goodenv, "/tmp", &err), 0);
        assert_int_equal(validate(empty, NULL, NULL, &err), -EINVAL);
        assert_string_equal(err.message, "the command is empty (argv has no program)");
        assert_int_equal(validate(noname, NULL, NULL, &err), -EINVAL);
        assert_int_equal(validate(ok, badenv, NULL, &err), -EINVAL);
        assert_string_equal(err.message, "environment entry 0 is not of the form KEY=VALUE");
        assert_int_equal(err.error, EINVAL);
        assert_int_equal(validate(ok, noKey, NULL, &err), -EINVAL);
        assert_int_equal(validate(ok, NULL, "relative", &err), -EINVAL);
        assert_string_equal(err.message, "working directory 'relative' is not an absolute path");

        char *big = malloc(JOB_STRING_MAX + 2);
        memset(big, 'x', JOB_STRING_MAX + 1);
        big[JOB_STRING_MAX + 1] = 0;
        const char *bigargv[] = { "/bin/true", big, NULL };
        assert_int_equal(validate(bigargv, NULL, NULL, &err), -E2BIG);
        assert_int_equal(err.error, E2BIG);
        assert_non_null(strstr(err.message, "argument 1"));
        free(big);
}

static void test_build_env(void **state) {
        const char *extra[] = { "HOME=/override", "FOO=bar", NULL };
        char **v = job_env_build("alice", "/home/alice", extra);

        assert_non_null(v);
        /* The base minus what extra sets, then extra in order. */
        assert_string_equal(v[0], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        assert_string_equal(v[1], "USER=alice");
        assert_string_equal(v[2], "LOGNAME=alice");
        assert_string_equal(v[3], "LANG=C.UTF-8");
        assert_string_equal(v[4], "HOME=/override");
        assert_string_equal(v[5], "FOO=bar");
        assert_null(v[6]);
        assert_string_equal(job_env_get((const char *const *) v, "HOME"), "/override");
        assert_null(job_env_get((const char *const *) v, "HOM"));
        free(v);

        /* Never the daemon's own environment. */
        setenv("NOTIFY_SOCKET", "/run/x", 1);
        v = job_env_build("bob", "/", NULL);
        for (char **p = v; *p; p++)
                assert_null(strstr(*p, "NOTIFY_SOCKET"));
        assert_string_equal(v[1], "HOME=/");
        assert_null(v[5]);
        free(v);

        const char *dup[] = { "A=1", "A=2", NULL };
        assert_string_equal(job_env_get(dup, "A"), "2");
}

static void test_command_summary(void **state) {
        const char *argv[] = { "echo", "hello", "world", NULL };
        char out[JOB_COMMAND_MAX + 1];
        char *long_arg = malloc(1000);

        job_env_command_summary(argv, out);
        assert_string_equal(out, "echo hello world");

        memset(long_arg, 'y', 999);
        long_arg[999] = 0;
        const char *argv2[] = { "x", long_arg, NULL };
        job_env_command_summary(argv2, out);
        assert_int_equal(strlen(out), JOB_COMMAND_MAX);
        assert_memory_equal(out, "x yyy", 5);
        free(long_arg);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_validate),
                cmocka_unit_test(test_build_env),
                cmocka_unit_test(test_command_summary),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
