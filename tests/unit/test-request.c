/* SPDX-License-Identifier: MIT */
/* Request decoding and validation, from wire bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jobworker/v1/jobworker.pb-c.h"
#include "rpc/request.h"
#include "rpc/response.h"

#define ID "0123abcd-89ab-4def-8123-456789abcdef"

static uint8_t *pack(const ProtobufCMessage *m, size_t *ret_size) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(n + 1);
        assert_non_null(buf);
        assert_int_equal(protobuf_c_message_pack(m, buf), n);
        *ret_size = n;
        return buf;
}

static Request *decode_ok(RequestMethod m, const ProtobufCMessage *msg) {
        size_t n;
        uint8_t *buf = pack(msg, &n);
        Request *r = NULL;
        char *error = NULL;
        int k = request_decode(m, buf, n, &r, &error);
        if (k < 0)
                fail_msg("decode failed: %d %s", k, error);
        free(buf);
        return r;
}

static void decode_fails_raw(RequestMethod m, const void *data, size_t n, int want_r, const char *want) {
        Request *r = NULL;
        char *error = NULL;
        int k = request_decode(m, data, n, &r, &error);

        assert_int_equal(k, want_r);
        assert_null(r);
        assert_non_null(error);
        if (!strstr(error, want))
                fail_msg("message '%s' does not contain '%s'", error, want);
        free(error);
}

static void decode_fails(RequestMethod m, const ProtobufCMessage *msg, int want_r, const char *want) {
        size_t n;
        uint8_t *buf = pack(msg, &n);
        decode_fails_raw(m, buf, n, want_r, want);
        free(buf);
}

static void test_start(void **state) {
        char *argv[] = { "/bin/echo", "hello", "world" };
        char *env[] = { "A=1", "EMPTY=" };
        Jobworker__V1__StartRequest m = JOBWORKER__V1__START_REQUEST__INIT;
        Request *r;

        m.n_argv = 3;
        m.argv = argv;
        m.n_env = 2;
        m.env = env;
        m.cwd = "/tmp";
        r = decode_ok(REQUEST_START, &m.base);
        assert_int_equal(r->method, REQUEST_START);
        assert_string_equal(r->argv[0], "/bin/echo");
        assert_string_equal(r->argv[2], "world");
        assert_null(r->argv[3]);
        assert_string_equal(r->env[1], "EMPTY=");
        assert_null(r->env[2]);
        assert_string_equal(r->cwd, "/tmp");
        request_free(r);

        /* no env, no cwd */
        m.n_env = 0;
        m.cwd = "";
        r = decode_ok(REQUEST_START, &m.base);
        assert_null(r->env);
        assert_null(r->cwd);
        request_free(r);
}

static void test_start_errors(void **state) {
        char *argv[] = { "/bin/echo", "x" };
        char *empty[] = { "" };
        char *badenv[] = { "NOEQUALS" };
        char *badenv2[] = { "=value" };
        Jobworker__V1__StartRequest m = JOBWORKER__V1__START_REQUEST__INIT;

        decode_fails(REQUEST_START, &m.base, -EINVAL, "argv is empty");
        decode_fails_raw(REQUEST_START, "", 0, -EINVAL, "argv is empty");

        m.n_argv = 1;
        m.argv = empty;
        decode_fails(REQUEST_START, &m.base, -EINVAL, "argv[0] (the program) is empty");

        m.n_argv = 2;
        m.argv = argv;
        m.n_env = 1;
        m.env = badenv;
        decode_fails(REQUEST_START, &m.base, -EINVAL, "env[0] 'NOEQUALS' is not of the form KEY=VALUE");
        m.env = badenv2;
        decode_fails(REQUEST_START, &m.base, -EINVAL, "is not of the form KEY=VALUE");
        m.n_env = 0;

        m.cwd = "relative/dir";
        decode_fails(REQUEST_START, &m.base, -EINVAL, "cwd 'relative/dir' is not an absolute path");
        m.cwd = "";
}

static void test_start_limits(void **state) {
        Jobworker__V1__StartRequest m = JOBWORKER__V1__START_REQUEST__INIT;
        size_t n = JOB_ARGV_MAX + 1;
        char **argv = calloc(n, sizeof(char *));
        char *big = malloc(JOB_STRING_MAX + 2);
        Request *r;

        assert_non_null(argv);
        assert_non_null(big);
        for (size_t i = 0; i < n; i++)
                argv[i] = "a";
        m.argv = argv;

        /* exactly at the limit: fine */
        m.n_argv = JOB_ARGV_MAX;
        r = decode_ok(REQUEST_START, &m.base);
        request_free(r);

        m.n_argv = n;
        decode_fails(REQUEST_START, &m.base, -E2BIG, "too many arguments: 4097 (at most 4096)");

        memset(big, 'x', JOB_STRING_MAX + 1);
        big[JOB_STRING_MAX + 1] = 0;
        argv[1] = big;
        m.n_argv = 2;
        decode_fails(REQUEST_START, &m.base, -E2BIG, "argv[1] is too long");

        /* the total: 20 arguments of 64 KiB */
        big[JOB_STRING_MAX] = 0;
        for (size_t i = 1; i <= 20; i++)
                argv[i] = big;
        m.n_argv = 21;
        decode_fails(REQUEST_START, &m.base, -E2BIG, "too large together");

        /* env count */
        {
                size_t ne = JOB_ENV_MAX + 1;
                char **env = calloc(ne, sizeof(char *));
                for (size_t i = 0; i < ne; i++)
                        env[i] = "A=b";
                argv[1] = "x";
                m.n_argv = 2;
                m.n_env = ne;
                m.env = env;
                decode_fails(REQUEST_START, &m.base, -E2BIG, "too many environment entries");
                free(env);
        }
        free(argv);
        free(big);
}

static void test_max_runtime(void **state) {
        char *argv[] = { "/bin/true" };
        Jobworker__V1__StartRequest m = JOBWORKER__V1__START_REQUEST__INIT;
        Request *r;

        m.n_argv = 1;
        m.argv = argv;
        r = decode_ok(REQUEST_START, &m.base);
        assert_int_equal(r->max_runtime_usec, 0);
        request_free(r);
        m.max_runtime_ms = 1800000;
        r = decode_ok(REQUEST_START, &m.base);
        assert_int_equal(r->max_runtime_usec, 1800000000ull);
        request_free(r);
        m.max_runtime_ms = LIMITS_RUNTIME_MAX_USEC / 1000;
        r = decode_ok(REQUEST_START, &m.base);
        assert_int_equal(r->max_runtime_usec, LIMITS_RUNTIME_MAX_USEC);
        request_free(r);
        /* Beyond ten years (and so never an overflow to usec). */
        m.max_runtime_ms = LIMITS_RUNTIME_MAX_USEC / 1000 + 1;
        decode_fails(REQUEST_START, &m.base, -EINVAL, "max_runtime_ms 315360000001 is out of range");
        m.max_runtime_ms = UINT64_MAX;
        decode_fails(REQUEST_START, &m.base, -EINVAL, "max_runtime_ms 18446744073709551615 is out of range");
}

static void test_names(void **state) {
        char *argv[] = { "/bin/true" };
        Jobworker__V1__StartRequest m = JOBWORKER__V1__START_REQUEST__INIT;
        Jobworker__V1__Label l[17], *lp[17];
        char keys[17][8];
        Request *r;

        for (int i = 0; i < 17; i++) {
                jobworker__v1__label__init(&l[i]);
                snprintf(keys[i], sizeof(keys[i]), "k%d", i);
                l[i].key = keys[i];
                l[i].value = "v";
                lp[i] = &l[i];
        }
        m.n_argv = 1;
        m.argv = argv;
        r = decode_ok(REQUEST_START, &m.base);
        assert_null(r->name);
        assert_null(r->request_id);
        assert_string_equal(r->labels, "");
        request_free(r);

        m.name = "web-1";
        m.request_id = "req-1";
        m.n_labels = 2;
        m.labels = lp;
        l[1].value = "";
        r = decode_ok(REQUEST_START, &m.base);
        assert_string_equal(r->name, "web-1");
        assert_string_equal(r->request_id, "req-1");
        assert_string_equal(r->labels, "k0=v,k1=");
        request_free(r);

        m.name = "deadbeef";
        decode_fails(REQUEST_START, &m.base, -EINVAL, "job name 'deadbeef' could be read as a job id");
        m.name = "web:1";
        decode_fails(REQUEST_START, &m.base, -EINVAL, "job name 'web:1' has a character that is not allowed");
        m.name = "web";
        m.request_id = "a b";
        decode_fails(REQUEST_START, &m.base, -EINVAL, "request id 'a b'");
        m.request_id = "";
        m.n_labels = 17;
        decode_fails(REQUEST_START, &m.base, -E2BIG, "too many labels: 17 (at most 16)");
        m.n_labels = 2;
        l[1].key = "k0";
        decode_fails(REQUEST_START, &m.base, -EINVAL, "label key 'k0' is given twice");
}

static void test_list_filters(void **state) {
        Jobworker__V1__ListRequest m = JOBWORKER__V1__LIST_REQUEST__INIT;
        Jobworker__V1__JobState states[] = { JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING,
                                             JOBWORKER__V1__JOB_STATE__JOB_STATE_ENDED };
        Jobworker__V1__Label l = JOBWORKER__V1__LABEL__INIT, *lp = &l;
        Request *r;

        r = decode_ok(REQUEST_LIST, &m.base);
        assert_int_equal(r->list_states, 0);
        assert_null(r->list_owner);
        assert_null(r->list_name);
        assert_int_equal(r->n_list_labels, 0);
        request_free(r);

        m.n_states = 2;
        m.states = states;
        m.owner = "alice";
        m.name = "web";
        l.key = "team";
        l.value = "web";
        m.n_labels = 1;
        m.labels = &lp;
        r = decode_ok(REQUEST_LIST, &m.base);
        assert_int_equal(r->list_states, (1u << JOB_STATE_RUNNING) | (1u << JOB_STATE_ENDED));
        assert_string_equal(r->list_owner, "alice");
        assert_string_equal(r->list_name, "web");
        assert_int_equal(r->n_list_labels, 1);
        assert_string_equal(r->list_label_keys[0], "team");
        assert_string_equal(r->list_label_values[0], "web");
        request_free(r);

        states[1] = 9;
        decode_fails(REQUEST_LIST, &m.base, -EINVAL, "states[1]: unknown job state 9");
        states[1] = JOBWORKER__V1__JOB_STATE__JOB_STATE_ENDED;
        m.name = "cafe";
        decode_fails(REQUEST_LIST, &m.base, -EINVAL, "could be read as a job id");
        m.name = "";
        l.key = "";
        decode_fails(REQUEST_LIST, &m.base, -EINVAL, "label selector 0: label key is empty");
}

static void test_resource_limits(void **state) {
        char *argv[] = { "/bin/true" };
        Jobworker__V1__StartRequest m = JOBWORKER__V1__START_REQUEST__INIT;
        Jobworker__V1__Limits l = JOBWORKER__V1__LIMITS__INIT;
        Jobworker__V1__IoLimit io[LIMITS_IO_MAX + 1], *iop[LIMITS_IO_MAX + 1];
        Jobworker__V1__Isolation iso[4];
        Request *r;

        for (size_t i = 0; i <= LIMITS_IO_MAX; i++) {
                jobworker__v1__io_limit__init(&io[i]);
                io[i].device = "/dev/vda";
                io[i].read_bps = 1000;
                iop[i] = &io[i];
        }
        m.n_argv = 1;
        m.argv = argv;

        /* none: all zero */
        r = decode_ok(REQUEST_START, &m.base);
        assert_int_equal(r->limits.cpu_millis, 0);
        assert_int_equal(r->limits.memory_max, 0);
        assert_int_equal(r->limits.pids_max, 0);
        assert_int_equal(r->limits.n_io, 0);
        assert_int_equal(r->isolate, 0);
        request_free(r);

        l.cpu_millis = 500;
        l.memory_max_bytes = 256ULL << 20;
        l.pids_max = 64;
        l.n_io = 2;
        l.io = iop;
        io[1].device = "/srv/data";
        io[1].read_bps = 0;
        io[1].write_bps = 20ULL << 20;
        m.limits = &l;
        iso[0] = JOBWORKER__V1__ISOLATION__ISOLATION_PID;
        iso[1] = JOBWORKER__V1__ISOLATION__ISOLATION_TMP;
        iso[2] = JOBWORKER__V1__ISOLATION__ISOLATION_PID; /* duplicates are fine */
        m.n_isolate = 3;
        m.isolate = iso;
        r = decode_ok(REQUEST_START, &m.base);
        assert_int_equal(r->limits.cpu_millis, 500);
        assert_int_equal(r->limits.memory_max, 256ULL << 20);
        assert_int_equal(r->limits.pids_max, 64);
        assert_int_equal(r->limits.n_io, 2);
        assert_string_equal(r->limits.io[0].device, "/dev/vda");
        assert_int_equal(r->limits.io[0].read_bps, 1000);
        assert_int_equal(r->limits.io[0].write_bps, 0);
        assert_string_equal(r->limits.io[1].device, "/srv/data");
        assert_int_equal(r->limits.io[1].write_bps, 20ULL << 20);
        assert_int_equal(r->isolate, JOB_ISOLATE_PID | JOB_ISOLATE_TMP);
        request_free(r);

        iso[2] = JOBWORKER__V1__ISOLATION__ISOLATION_NET;
        r = decode_ok(REQUEST_START, &m.base);
        assert_int_equal(r->isolate, JOB_ISOLATE_ALL);
        request_free(r);

        /* the range edges */
        l.cpu_millis = LIMITS_CPU_MILLIS_MIN;
        l.pids_max = LIMITS_PIDS_MAX;
        l.n_io = LIMITS_IO_MAX;
        io[1].device = "/dev/vda";
        r = decode_ok(REQUEST_START, &m.base);
        assert_int_equal(r->limits.cpu_millis, 10);
        assert_int_equal(r->limits.n_io, LIMITS_IO_MAX);
        request_free(r);
        l.cpu_millis = LIMITS_CPU_MILLIS_MAX;
        r = decode_ok(REQUEST_START, &m.base);
        request_free(r);

        /* out of range */
        l.n_io = 1;
        l.cpu_millis = 9;
        decode_fails(REQUEST_START, &m.base, -EINVAL,
                     "limits.cpu_millis 9 is out of range (thousandths of a CPU: 0 for none, or 10 to 1024000)");
        l.cpu_millis = LIMITS_CPU_MILLIS_MAX + 1;
        decode_fails(REQUEST_START, &m.base, -EINVAL, "limits.cpu_millis 1024001 is out of range");
        l.cpu_millis = 1000;
        l.pids_max = LIMITS_PIDS_MAX + 1;
        decode_fails(REQUEST_START, &m.base, -EINVAL, "limits.pids_max 4194305 is out of range (0 for none, or 1 to 4194304)");
        l.pids_max = 0;
        l.n_io = LIMITS_IO_MAX + 1;
        decode_fails(REQUEST_START, &m.base, -E2BIG, "too many io limits");
        l.n_io = 1;
        io[0].device = "";
        decode_fails(REQUEST_START, &m.base, -EINVAL, "limits.io[0].device is empty");
        io[0].device = "dev/vda";
        decode_fails(REQUEST_START, &m.base, -EINVAL, "limits.io[0].device 'dev/vda' is not an absolute path");
        io[0].device = "/dev/vda";
        io[0].read_bps = 0;
        decode_fails(REQUEST_START, &m.base, -EINVAL, "limits.io[0] for '/dev/vda' sets neither read_bps nor write_bps");
        io[0].read_bps = 1;
        {
                char *long_path = malloc(LIMITS_DEVICE_PATH_MAX + 2);
                assert_non_null(long_path);
                memset(long_path, 'a', LIMITS_DEVICE_PATH_MAX + 1);
                long_path[0] = '/';
                long_path[LIMITS_DEVICE_PATH_MAX + 1] = 0;
                io[0].device = long_path;
                decode_fails(REQUEST_START, &m.base, -E2BIG, "limits.io[0].device is too long: 4096 bytes (at most 4095)");
                io[0].device = "/dev/vda";
                free(long_path);
        }

        iso[0] = JOBWORKER__V1__ISOLATION__ISOLATION_UNSPECIFIED;
        m.n_isolate = 1;
        decode_fails(REQUEST_START, &m.base, -EINVAL, "isolate[0]: unknown isolation 0 (expected 1 pid, 2 net or 3 tmp)");
        iso[0] = JOBWORKER__V1__ISOLATION__ISOLATION_NET;
        iso[1] = (Jobworker__V1__Isolation) 7;
        m.n_isolate = 2;
        decode_fails(REQUEST_START, &m.base, -EINVAL, "isolate[1]: unknown isolation 7");
}

static void test_resource_limits_wire(void **state) {
        /* StartRequest { argv: "ls", limits { io { device: "/dev/sda\0x", read_bps: 1 } } } */
        static const uint8_t nul_device[] = {
                0x0a, 0x02, 'l', 's',
                0x22, 0x0f,                                     /* field 4 (limits), 15 bytes */
                0x22, 0x0d,                                     /* Limits.io, 13 bytes */
                0x0a, 0x09, '/', 'd', 'e', 'v', '/', 's', 'd', 0, 'x', /* IoLimit.device */
                0x10, 0x01,                                     /* read_bps 1 */
        };
        /* the same with a broken nested message */
        static const uint8_t bad_nested[] = { 0x0a, 0x02, 'l', 's', 0x22, 0x02, 0x22, 0x05 };
        /* isolate, packed: 17 values */
        uint8_t many_isolate[4 + 2 + 17] = { 0x0a, 0x02, 'l', 's', 0x2a, 17 };
        /* 17 Limits messages with one io entry each (protobuf-c merges them) */
        uint8_t many_io[4 + 17 * 9];
        size_t k = 4;
        /* isolate unpacked: field 5 varint 1, twice */
        static const uint8_t unpacked[] = { 0x0a, 0x02, 'l', 's', 0x28, 0x01, 0x28, 0x02 };
        Request *r = NULL;
        char *error = NULL;

        decode_fails_raw(REQUEST_START, nul_device, sizeof(nul_device), -EINVAL, "limits.io[0].device contains a NUL byte");
        decode_fails_raw(REQUEST_START, bad_nested, sizeof(bad_nested), -EINVAL, "malformed limits in StartRequest");

        memset(many_isolate + 6, 1, 17);
        decode_fails_raw(REQUEST_START, many_isolate, sizeof(many_isolate), -E2BIG, "too many isolate values (at most 16)");

        memcpy(many_io, nul_device, 4);
        for (unsigned i = 0; i < 17; i++) {
                static const uint8_t one[] = { 0x22, 0x07, 0x22, 0x05, 0x0a, 0x01, '/', 0x10, 0x01 };
                memcpy(many_io + k, one, sizeof(one));
                k += sizeof(one);
        }
        decode_fails_raw(REQUEST_START, many_io, k, -E2BIG, "too many io limits (at most 16)");
        /* 16 of them are fine and merged into one Limits */
        assert_int_equal(request_decode(REQUEST_START, many_io, k - 9, &r, &error), 0);
        assert_int_equal(r->limits.n_io, 16);
        assert_string_equal(r->limits.io[15].device, "/");
        request_free(r);

        assert_int_equal(request_decode(REQUEST_START, unpacked, sizeof(unpacked), &r, &error), 0);
        assert_int_equal(r->isolate, JOB_ISOLATE_PID | JOB_ISOLATE_NET);
        request_free(r);
}

static void test_status_resources(void **state) {
        JobStatus st = { .state = JOB_STATE_KILLED, .signal = 9, .has_cgroup = true, .cpu_usec = 1234567,
                         .memory_peak = 1ULL << 30, .oom_kills = 2, .oom_killed = true };
        ResponseStatusStrings strings;
        Jobworker__V1__JobStatus js;

        response_job_status(&st, &js, &strings);
        assert_true(js.has_cgroup);
        assert_int_equal(js.cpu_usec, 1234567);
        assert_int_equal(js.memory_peak_bytes, 1ULL << 30);
        assert_int_equal(js.oom_kills, 2);
        assert_true(js.oom_killed);
        assert_int_equal(js.signal, 9);

        /* without a cgroup nothing was measured: zeros, whatever the engine had */
        st.has_cgroup = false;
        st.oom_killed = false;
        response_job_status(&st, &js, &strings);
        assert_false(js.has_cgroup);
        assert_int_equal(js.cpu_usec, 0);
        assert_int_equal(js.memory_peak_bytes, 0);
        assert_int_equal(js.oom_kills, 0);
        assert_false(js.oom_killed);
}

static void test_nul_bytes(void **state) {
        /* StartRequest { argv: "ls\0-rf" }: field 1, wire type 2 */
        static const uint8_t nul_argv[] = { 0x0a, 0x06, 'l', 's', 0, '-', 'r', 'f' };
        /* StartRequest { argv: "ls", env: "A=\0" } */
        static const uint8_t nul_env[] = { 0x0a, 0x02, 'l', 's', 0x12, 0x03, 'A', '=', 0 };
        /* StatusRequest { job_id: ID "\0junk" } */
        uint8_t status[2 + 36 + 5] = { 0x0a, 36 + 5 };

        decode_fails_raw(REQUEST_START, nul_argv, sizeof(nul_argv), -EINVAL, "argv contains a NUL byte");
        decode_fails_raw(REQUEST_START, nul_env, sizeof(nul_env), -EINVAL, "env contains a NUL byte");
        memcpy(status + 2, ID, 36);
        memcpy(status + 38, "\0junk", 5);
        decode_fails_raw(REQUEST_STATUS, status, sizeof(status), -EINVAL, "job_id contains a NUL byte");

        /* Nested strings, which protobuf-c would cut at the NUL as well
         * (a label "team\0x" became "team"): StartRequest { argv: "ls",
         * labels: [{ key: "a", value: "1" }, { key: "team\0x", value: "w" }] } */
        static const uint8_t nul_label_key[] = { 0x0a, 0x02, 'l', 's', 0x5a, 0x06, 0x0a, 0x01, 'a', 0x12, 0x01, '1',
                                                 0x5a, 0x0b, 0x0a, 0x06, 't', 'e', 'a', 'm', 0, 'x', 0x12, 0x01, 'w' };
        /* { argv: "ls", labels: [{ key: "k", value: "v\0" }] } */
        static const uint8_t nul_label_value[] = { 0x0a, 0x02, 'l', 's', 0x5a, 0x07, 0x0a, 0x01, 'k', 0x12, 0x02, 'v', 0 };
        /* { argv: "ls", tty: { rows: 24, cols: 80, term: "xterm\0" } } */
        static const uint8_t nul_term[] = { 0x0a, 0x02, 'l', 's', 0x82, 0x01, 0x0c, 0x08, 24, 0x10, 80,
                                            0x1a, 0x06, 'x', 't', 'e', 'r', 'm', 0 };
        /* ListRequest { labels: [{ key: "team", value: "w\0b" }] } */
        static const uint8_t nul_selector[] = { 0x2a, 0x0b, 0x0a, 0x04, 't', 'e', 'a', 'm', 0x12, 0x03, 'w', 0, 'b' };
        /* ListRequest { labels: [ broken ] } */
        static const uint8_t bad_selector[] = { 0x2a, 0x02, 0x0a, 0x05 };
        /* the same without the NULs decode */
        static const uint8_t ok_selector[] = { 0x2a, 0x0a, 0x0a, 0x04, 't', 'e', 'a', 'm', 0x12, 0x02, 'w', 'b' };
        Request *r = NULL;
        char *error = NULL;

        decode_fails_raw(REQUEST_START, nul_label_key, sizeof(nul_label_key), -EINVAL, "labels[1].key contains a NUL byte");
        decode_fails_raw(REQUEST_START, nul_label_value, sizeof(nul_label_value), -EINVAL,
                         "labels[0].value contains a NUL byte");
        decode_fails_raw(REQUEST_START, nul_term, sizeof(nul_term), -EINVAL, "tty.term contains a NUL byte");
        decode_fails_raw(REQUEST_LIST, nul_selector, sizeof(nul_selector), -EINVAL, "labels[0].value contains a NUL byte");
        decode_fails_raw(REQUEST_LIST, bad_selector, sizeof(bad_selector), -EINVAL, "malformed labels in ListRequest");
        assert_int_equal(request_decode(REQUEST_LIST, ok_selector, sizeof(ok_selector), &r, &error), 0);
        assert_int_equal(r->n_list_labels, 1);
        request_free(r);
}

static void test_malformed(void **state) {
        static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        static const uint8_t truncated[] = { 0x0a, 0x10, 'a', 'b' };          /* length past the end */
        static const uint8_t group[] = { 0x0b, 0x0c };                         /* start group */
        static const uint8_t field0[] = { 0x00, 0x01 };                        /* field number 0 */
        static const uint8_t wrongtype[] = { 0x08, 0x01 };                     /* argv as a varint */
        static const uint8_t fixed_short[] = { 0x09, 1, 2, 3 };                /* 64-bit field cut */

        decode_fails_raw(REQUEST_START, garbage, sizeof(garbage), -EINVAL, "malformed StartRequest message");
        decode_fails_raw(REQUEST_START, truncated, sizeof(truncated), -EINVAL, "malformed");
        decode_fails_raw(REQUEST_STOP, group, sizeof(group), -EINVAL, "malformed StopRequest");
        decode_fails_raw(REQUEST_STATUS, field0, sizeof(field0), -EINVAL, "malformed");
        decode_fails_raw(REQUEST_START, wrongtype, sizeof(wrongtype), -EINVAL, "malformed");
        decode_fails_raw(REQUEST_LIST, fixed_short, sizeof(fixed_short), -EINVAL, "malformed ListRequest");
        decode_fails_raw(REQUEST_OUTPUT, "hello world", 11, -EINVAL, "malformed OutputRequest");
}

static void test_unknown_fields_ignored(void **state) {
        /* ListRequest { running_only: true, field 15: "future" } */
        static const uint8_t m[] = { 0x08, 0x01, 0x7a, 0x06, 'f', 'u', 't', 'u', 'r', 'e' };
        Request *r = NULL;
        char *error = NULL;

        assert_int_equal(request_decode(REQUEST_LIST, m, sizeof(m), &r, &error), 0);
        assert_true(r->running_only);
        request_free(r);
}

static void test_job_ids(void **state) {
        Jobworker__V1__StatusRequest s = JOBWORKER__V1__STATUS_REQUEST__INIT;
        Jobworker__V1__StopRequest st = JOBWORKER__V1__STOP_REQUEST__INIT;
        Request *r;

        decode_fails(REQUEST_STATUS, &s.base, -EINVAL, "job id is missing");
        s.job_id = "not-a-job";
        decode_fails(REQUEST_STATUS, &s.base, -EINVAL, "malformed job id 'not-a-job'");
        s.job_id = "0123ABCD-89AB-4DEF-8123-456789ABCDEF";
        r = decode_ok(REQUEST_STATUS, &s.base);
        assert_string_equal(r->job_id_string, ID);
        request_free(r);
        s.job_id = "\x1b[31mred";
        decode_fails(REQUEST_STATUS, &s.base, -EINVAL, "malformed job id '?[31mred'");

        st.job_id = ID;
        r = decode_ok(REQUEST_STOP, &st.base);
        assert_true(r->grace_usec == UINT64_MAX);
        request_free(r);
        st.use_grace = true;
        st.grace_ms = 1500;
        r = decode_ok(REQUEST_STOP, &st.base);
        assert_true(r->grace_usec == 1500000);
        request_free(r);
        st.grace_ms = 0;
        r = decode_ok(REQUEST_STOP, &st.base);
        assert_true(r->grace_usec == 0);
        request_free(r);
        st.grace_ms = UINT64_MAX;
        decode_fails(REQUEST_STOP, &st.base, -EINVAL, "is too long");
}

static void test_output(void **state) {
        Jobworker__V1__OutputRequest o = JOBWORKER__V1__OUTPUT_REQUEST__INIT;
        Request *r;

        o.job_id = ID;
        r = decode_ok(REQUEST_OUTPUT, &o.base);
        assert_int_equal(r->streams, JOB_STREAMS_ALL);
        assert_false(r->follow);
        request_free(r);

        o.stream = JOBWORKER__V1__STREAM__STREAM_STDERR;
        o.offset = 12345;
        o.follow = true;
        r = decode_ok(REQUEST_OUTPUT, &o.base);
        assert_int_equal(r->streams, JOB_STREAM_STDERR);
        assert_true(r->offset == 12345);
        assert_true(r->follow);
        request_free(r);

        o.stream = JOBWORKER__V1__STREAM__STREAM_BOTH;
        r = decode_ok(REQUEST_OUTPUT, &o.base);
        assert_int_equal(r->streams, JOB_STREAMS_ALL);
        request_free(r);

        o.stream = 7;
        decode_fails(REQUEST_OUTPUT, &o.base, -EINVAL, "unknown stream 7");
}

static void test_signal(void **state) {
        Jobworker__V1__SignalRequest m = JOBWORKER__V1__SIGNAL_REQUEST__INIT;
        Request *r;

        m.job_id = ID;
        m.signal = 10;
        r = decode_ok(REQUEST_SIGNAL, &m.base);
        assert_int_equal(r->signal, 10);
        assert_false(r->signal_all);
        assert_string_equal(r->job_id_string, ID);
        request_free(r);

        m.signal = 64;
        m.all = true;
        r = decode_ok(REQUEST_SIGNAL, &m.base);
        assert_int_equal(r->signal, 64);
        assert_true(r->signal_all);
        request_free(r);

        m.signal = 0;
        decode_fails(REQUEST_SIGNAL, &m.base, -EINVAL, "signal 0 is out of range (1 to 64)");
        m.signal = 65;
        decode_fails(REQUEST_SIGNAL, &m.base, -EINVAL, "signal 65 is out of range");
        m.signal = -9;
        decode_fails(REQUEST_SIGNAL, &m.base, -EINVAL, "signal -9 is out of range");
        m.signal = 15;
        m.job_id = "nope";
        decode_fails(REQUEST_SIGNAL, &m.base, -EINVAL, "malformed job id 'nope'");
        assert_string_equal(request_method_path(REQUEST_SIGNAL), "/jobworker.v1.JobWorker/Signal");
}

/* Input: the first message names the job; later ones need not; data
 * points into the message (bytes, so a NUL is data). */
static void test_input(void **state) {
        Jobworker__V1__InputRequest m = JOBWORKER__V1__INPUT_REQUEST__INIT;
        Jobworker__V1__WindowSize ws = JOBWORKER__V1__WINDOW_SIZE__INIT;
        static const uint8_t bytes[] = { 'a', 0, 'b' };
        Request *r = NULL;
        char *error = NULL;
        uint8_t *buf;
        size_t n;

        m.job_id = ID;
        m.kind_case = JOBWORKER__V1__INPUT_REQUEST__KIND_DATA;
        m.data.data = (uint8_t *) bytes;
        m.data.len = sizeof(bytes);
        r = decode_ok(REQUEST_INPUT, &m.base);
        assert_int_equal(r->input_kind, REQUEST_INPUT_DATA);
        assert_int_equal(r->input_size, 3);
        assert_memory_equal(r->input_data, bytes, 3);
        assert_string_equal(r->job_id_string, ID);
        request_free(r);

        m.job_id = "";
        decode_fails(REQUEST_INPUT, &m.base, -EINVAL, "job id is missing");
        buf = pack(&m.base, &n);
        assert_int_equal(request_decode_input_more(buf, n, &r, &error), 0);
        assert_int_equal(r->input_kind, REQUEST_INPUT_DATA);
        request_free(r);
        free(buf);

        m.kind_case = JOBWORKER__V1__INPUT_REQUEST__KIND_EOF;
        m.eof = true;
        m.job_id = ID;
        r = decode_ok(REQUEST_INPUT, &m.base);
        assert_int_equal(r->input_kind, REQUEST_INPUT_EOF);
        request_free(r);

        m.kind_case = JOBWORKER__V1__INPUT_REQUEST__KIND_RESIZE;
        m.resize = &ws;
        ws.rows = 24;
        ws.cols = 80;
        r = decode_ok(REQUEST_INPUT, &m.base);
        assert_int_equal(r->input_kind, REQUEST_INPUT_RESIZE);
        assert_int_equal(r->rows, 24);
        assert_int_equal(r->cols, 80);
        request_free(r);
        ws.rows = 0;
        decode_fails(REQUEST_INPUT, &m.base, -EINVAL, "window size");

        m.kind_case = JOBWORKER__V1__INPUT_REQUEST__KIND__NOT_SET;
        r = decode_ok(REQUEST_INPUT, &m.base);
        assert_int_equal(r->input_kind, REQUEST_INPUT_NONE);
        request_free(r);
}

static void test_method_names(void **state) {
        assert_string_equal(request_method_path(REQUEST_START), "/jobworker.v1.JobWorker/Start");
        assert_string_equal(request_method_path(REQUEST_OUTPUT), "/jobworker.v1.JobWorker/Output");
        assert_null(request_method_path(_REQUEST_METHOD_MAX));
}

static void test_utf8_sanitize(void **state) {
        char buf[16];

        response_utf8_sanitize(buf, sizeof(buf), "plain");
        assert_string_equal(buf, "plain");
        response_utf8_sanitize(buf, sizeof(buf), "caf\xc3\xa9");
        assert_string_equal(buf, "caf\xc3\xa9");
        response_utf8_sanitize(buf, sizeof(buf), "a\xff" "b\xc3");
        assert_string_equal(buf, "a?b?");
        response_utf8_sanitize(buf, sizeof(buf), "tab\tnl\n");
        assert_string_equal(buf, "tab\tnl?");
        /* a multi-byte character that does not fit is dropped whole */
        response_utf8_sanitize(buf, 5, "abc\xc3\xa9");
        assert_string_equal(buf, "abc");
        /* surrogates and overlong forms are invalid */
        response_utf8_sanitize(buf, sizeof(buf), "\xed\xa0\x80" "\xc0\xaf");
        assert_string_equal(buf, "?????");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_start),
                cmocka_unit_test(test_start_errors),
                cmocka_unit_test(test_start_limits),
                cmocka_unit_test(test_resource_limits),
                cmocka_unit_test(test_max_runtime),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_list_filters),
                cmocka_unit_test(test_resource_limits_wire),
                cmocka_unit_test(test_status_resources),
                cmocka_unit_test(test_nul_bytes),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_unknown_fields_ignored),
                cmocka_unit_test(test_job_ids),
                cmocka_unit_test(test_output),
                cmocka_unit_test(test_signal),
                cmocka_unit_test(test_input),
                cmocka_unit_test(test_method_names),
                cmocka_unit_test(test_utf8_sanitize),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
