/* SPDX-License-Identifier: MIT */
/* Errors as a gRPC client sees them: code and message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rpc/status-map.h"

static void test_errno_table(void **state) {
        assert_int_equal(status_map_errno(-ENOENT), GRPC_STATUS_NOT_FOUND);
        assert_int_equal(status_map_errno(-EINVAL), GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(status_map_errno(-E2BIG), GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(status_map_errno(-ENAMETOOLONG), GRPC_STATUS_INVALID_ARGUMENT);
        for (int e = 0, list[] = { EAGAIN, EMFILE, ENFILE, ENOMEM, ENOSPC, EDQUOT, EUSERS };
             e < (int) (sizeof(list) / sizeof(list[0])); e++)
                assert_int_equal(status_map_errno(-list[e]), GRPC_STATUS_RESOURCE_EXHAUSTED);
        assert_int_equal(status_map_errno(-EIO), GRPC_STATUS_INTERNAL);
        assert_int_equal(status_map_errno(-EPERM), GRPC_STATUS_INTERNAL);
}

static void test_error_message(void **state) {
        StatusMapping m;

        status_map_error(-EMFILE, "cannot list jobs", &m);
        assert_int_equal(m.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
        assert_true(m.exhausted);
        assert_string_equal(m.message, "cannot list jobs: Too many open files");
        status_map_error(-EIO, "cannot stop job", &m);
        assert_int_equal(m.code, GRPC_STATUS_INTERNAL);
        assert_false(m.exhausted);
}

static void start(int r, JobStartStage stage, const char *msg, grpc_status_code code, const char *want,
                  bool exhausted) {
        JobStartError err = { .stage = stage, .error = -r };
        StatusMapping m;

        strcpy(err.message, msg);
        status_map_start_error(r, &err, &m);
        assert_int_equal(m.code, code);
        assert_string_equal(m.message, want);
        assert_int_equal(m.exhausted, exhausted);
}

static void test_start_errors(void **state) {
        /* Out of something: RESOURCE_EXHAUSTED with the engine's words, whatever the stage. */
        start(-EAGAIN, JOB_START_STAGE_SPAWN, "too many processes", GRPC_STATUS_RESOURCE_EXHAUSTED,
              "too many processes", true);
        start(-ENOMEM, JOB_START_STAGE_NONE, "", GRPC_STATUS_RESOURCE_EXHAUSTED,
              "cannot start job: Cannot allocate memory", true);
        /* What the host lacks is a precondition. */
        start(-EOPNOTSUPP, JOB_START_STAGE_ISOLATION, "no user namespaces", GRPC_STATUS_FAILED_PRECONDITION,
              "no user namespaces", false);
        start(-EOPNOTSUPP, JOB_START_STAGE_LIMITS, "no io controller", GRPC_STATUS_FAILED_PRECONDITION,
              "no io controller", false);
        /* ... unless the kernel refused the value itself. */
        start(-EINVAL, JOB_START_STAGE_LIMITS, "memory.max refused", GRPC_STATUS_INVALID_ARGUMENT,
              "memory.max refused", false);
        start(-ERANGE, JOB_START_STAGE_LIMITS, "cpu.max out of range", GRPC_STATUS_INVALID_ARGUMENT,
              "cpu.max out of range", false);
        /* The caller's command, cwd or account: a bad request. */
        start(-ENOENT, JOB_START_STAGE_EXEC, "no such file: /bin/nope", GRPC_STATUS_INVALID_ARGUMENT,
              "no such file: /bin/nope", false);
        start(-EACCES, JOB_START_STAGE_CHDIR, "cannot enter /root", GRPC_STATUS_INVALID_ARGUMENT,
              "cannot enter /root", false);
        /* An io device path the client named: its fault whatever the errno, unless memory ran out. */
        start(-ENOENT, JOB_START_STAGE_IO_DEVICE, "io device '/x': No such file or directory",
              GRPC_STATUS_INVALID_ARGUMENT, "io device '/x': No such file or directory", false);
        start(-EAGAIN, JOB_START_STAGE_IO_DEVICE, "", GRPC_STATUS_INVALID_ARGUMENT, "invalid io device", false);
        start(-ENOMEM, JOB_START_STAGE_IO_DEVICE, "", GRPC_STATUS_RESOURCE_EXHAUSTED,
              "cannot start job: Cannot allocate memory", true);
        /* A start the engine gave up because it is going away. */
        start(-ECANCELED, JOB_START_STAGE_NONE, "", GRPC_STATUS_UNAVAILABLE, "the server is shutting down", false);
        /* No stage: the errno's code and message. */
        start(-EIO, JOB_START_STAGE_NONE, "ignored", GRPC_STATUS_INTERNAL, "cannot start job: Input/output error",
              false);
        start(-EINVAL, JOB_START_STAGE_NONE, "", GRPC_STATUS_INVALID_ARGUMENT, "cannot start job: Invalid argument",
              false);
}

/* The operator's hint after a failed Start: what r at stage ran out of. */
static const char *start_hint(int r, JobStartStage stage, char *buf, size_t size) {
        JobStartError err = { .stage = stage, .error = -r };
        StatusMapping m;

        status_map_start_error(r, &err, &m);
        assert_true(m.exhausted);
        status_map_resource_hint(m.resource, "/srv/jw-state", buf, size);
        return buf;
}

static void test_resource_hints(void **state) {
        char buf[STATUS_MAP_HINT_MAX];

        /* A full disk names the disk of the state directory, not the process limits. */
        assert_string_equal(start_hint(-ENOSPC, JOB_START_STAGE_NONE, buf, sizeof(buf)),
                            "out of disk space on the state directory /srv/jw-state");
        assert_string_equal(start_hint(-EDQUOT, JOB_START_STAGE_NONE, buf, sizeof(buf)),
                            "over the disk quota on the state directory /srv/jw-state");
        /* Processes: TasksMax= and RLIMIT_NPROC, not the fds. */
        start_hint(-EAGAIN, JOB_START_STAGE_SPAWN, buf, sizeof(buf));
        assert_non_null(strstr(buf, "out of processes"));
        assert_non_null(strstr(buf, "TasksMax="));
        assert_non_null(strstr(buf, "RLIMIT_NPROC"));
        assert_null(strstr(buf, "LimitNOFILE"));
        assert_string_equal(start_hint(-EUSERS, JOB_START_STAGE_SPAWN, buf, sizeof(buf)),
                            start_hint(-EAGAIN, JOB_START_STAGE_SPAWN, (char[STATUS_MAP_HINT_MAX]) {}, STATUS_MAP_HINT_MAX));
        /* File descriptors: the daemon's LimitNOFILE=, or the host's table. */
        start_hint(-EMFILE, JOB_START_STAGE_SPAWN, buf, sizeof(buf));
        assert_non_null(strstr(buf, "out of file descriptors: see LimitNOFILE="));
        assert_null(strstr(buf, "TasksMax"));
        start_hint(-ENFILE, JOB_START_STAGE_SPAWN, buf, sizeof(buf));
        assert_non_null(strstr(buf, "fs.file-max"));
        /* Memory. */
        start_hint(-ENOMEM, JOB_START_STAGE_NONE, buf, sizeof(buf));
        assert_non_null(strstr(buf, "out of memory"));
        assert_null(strstr(buf, "TasksMax"));
        /* Creating a job's namespace: ENOSPC and EUSERS are namespace limits. */
        start_hint(-ENOSPC, JOB_START_STAGE_ISOLATION, buf, sizeof(buf));
        assert_non_null(strstr(buf, "out of namespaces"));
        assert_null(strstr(buf, "disk"));
        start_hint(-EUSERS, JOB_START_STAGE_ISOLATION, buf, sizeof(buf));
        assert_non_null(strstr(buf, "out of namespaces"));
        /* Not exhausted: nothing to say; a short buffer is cut, NUL-terminated. */
        status_map_resource_hint(STATUS_RESOURCE_NONE, "/x", buf, sizeof(buf));
        assert_string_equal(buf, "");
        status_map_resource_hint(STATUS_RESOURCE_DISK, "/srv/jw-state", buf, 8);
        assert_string_equal(buf, "out of ");
}

static void test_error_resource(void **state) {
        StatusMapping m;

        status_map_error(-ENOSPC, "cannot write", &m);
        assert_int_equal(m.resource, STATUS_RESOURCE_DISK);
        status_map_error(-EMFILE, "cannot list jobs", &m);
        assert_int_equal(m.resource, STATUS_RESOURCE_FDS);
        status_map_error(-EIO, "cannot stop job", &m);
        assert_int_equal(m.resource, STATUS_RESOURCE_NONE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_errno_table),
                cmocka_unit_test(test_error_message),
                cmocka_unit_test(test_start_errors),
                cmocka_unit_test(test_resource_hints),
                cmocka_unit_test(test_error_resource),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
