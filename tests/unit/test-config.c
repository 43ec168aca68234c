/* SPDX-License-Identifier: MIT */
/* jobworkerd flags and configuration file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/config.h"
#include "daemon/log.h"

static void test_file_and_flags(void **state) {
        static const char text[] =
                "# example\n"
                "listen = 127.0.0.1:50051\n"
                "listen = [::1]:50051\n"
                "cert = \"/etc/x/server.pem\"\n"
                "  key=/etc/x/key.pem  \n"
                "ca = /etc/x/ca.pem\n"
                "crl = /etc/x/ca-crl.pem\n"
                "policy = /etc/x/policy.conf\n"
                "state-dir = /var/lib/x\n"
                "log-level = debug\n"
                "max-connections = 10\n"
                "max-connections-per-identity = 4\n"
                "max-startups = 10:30:60\n"
                "max-startups-per-source = 5\n"
                "handshake-timeout = 2500ms\n"
                "output-cap = 64M\n"
                "stop-grace = 3s\n";
        char *argv[] = { "jobworkerd", "--cert", "/flag/cert.pem", "--log-level=warning", "--listen", "0.0.0.0:1", NULL };
        char *error = NULL;
        Config c;

        config_init(&c);
        assert_int_equal(config_parse_argv(&c, 6, argv, &error), CONFIG_RUN);
        assert_int_equal(config_parse_text(&c, text, strlen(text), "x.conf", &error), 0);

        /* flags win */
        assert_string_equal(c.cert, "/flag/cert.pem");
        assert_int_equal(c.log_level, LOG_WARNING);
        assert_int_equal(c.n_listen, 1);
        assert_string_equal(c.listen[0], "0.0.0.0:1");
        /* the rest from the file */
        assert_string_equal(c.key, "/etc/x/key.pem");
        assert_string_equal(c.ca, "/etc/x/ca.pem");
        assert_string_equal(c.crl, "/etc/x/ca-crl.pem");
        assert_string_equal(c.policy, "/etc/x/policy.conf");
        assert_string_equal(c.state_dir, "/var/lib/x");
        assert_int_equal(c.max_connections, 10);
        assert_int_equal(c.max_connections_per_identity, 4);
        assert_int_equal(c.startups[0], 10);
        assert_int_equal(c.startups[1], 30);
        assert_int_equal(c.startups[2], 60);
        assert_int_equal(c.max_startups_per_source, 5);
        assert_true(c.handshake_timeout_usec == 2500000);
        assert_true(c.output_cap == 64ull * 1024 * 1024);
        assert_true(c.stop_grace_usec == 3000000);
        config_done(&c);

        /* without listen flags the file's list is used */
        config_init(&c);
        assert_int_equal(config_parse_text(&c, text, strlen(text), "x.conf", &error), 0);
        assert_int_equal(c.n_listen, 2);
        assert_string_equal(c.listen[1], "[::1]:50051");
        assert_int_equal(c.log_level, LOG_DEBUG);
        config_done(&c);
}

static void expect_file_error(const char *text, const char *want) {
        char *error = NULL;
        Config c;

        config_init(&c);
        assert_int_equal(config_parse_text(&c, text, strlen(text), "x.conf", &error), -EINVAL);
        if (!error || !strstr(error, want))
                fail_msg("message '%s' does not contain '%s'", error, want);
        free(error);
        config_done(&c);
}

static void test_file_errors(void **state) {
        expect_file_error("\nbogus = 1\n", "x.conf:2: unknown option 'bogus'");
        expect_file_error("cert\n", "x.conf:1: expected 'name = value'");
        expect_file_error("log-level = loud\n", "x.conf:1: unknown log level 'loud'");
        expect_file_error("handshake-timeout = soon\n", "is not a duration");
        expect_file_error("output-cap = 12Q\n", "is not a size");
        expect_file_error("max-connections = -1\n", "is not a number");
        expect_file_error("config = /x\n", "unknown option 'config'");
        expect_file_error("max-startups = 10:30\n", "is not START:RATE:FULL");
        expect_file_error("max-startups = 10:101:60\n", "is not START:RATE:FULL");
        expect_file_error("max-startups = 70:30:60\n", "is not START:RATE:FULL");
        expect_file_error("max-startups = 0\n", "is not START:RATE:FULL");
        expect_file_error("max-startups = 1:2:3:4\n", "is not START:RATE:FULL");
        expect_file_error("cert =\n", "cert needs a value");
}

static void test_startups(void **state) {
        unsigned v[3];

        assert_int_equal(config_parse_startups("64:30:256", v), 0);
        assert_true(v[0] == 64 && v[1] == 30 && v[2] == 256);
        assert_int_equal(config_parse_startups("100", v), 0); /* a hard bound */
        assert_true(v[0] == 100 && v[2] == 100);
        assert_int_equal(config_parse_startups("", v), -EINVAL);
        assert_int_equal(config_parse_startups("1::3", v), -EINVAL);
        assert_int_equal(config_parse_startups("a:b:c", v), -EINVAL);
}

static void test_flag_errors(void **state) {
        char *a1[] = { "jobworkerd", "--bogus", NULL };
        char *a2[] = { "jobworkerd", "--cert", NULL };
        char *a3[] = { "jobworkerd", "stray", NULL };
        char *error = NULL;
        Config c;

        config_init(&c);
        assert_int_equal(config_parse_argv(&c, 2, a1, &error), -EINVAL);
        assert_non_null(strstr(error, "unknown option --bogus"));
        free(error);
        error = NULL;
        config_done(&c);

        config_init(&c);
        assert_int_equal(config_parse_argv(&c, 2, a2, &error), -EINVAL);
        assert_non_null(strstr(error, "--cert needs a value"));
        free(error);
        error = NULL;
        config_done(&c);

        config_init(&c);
        assert_int_equal(config_parse_argv(&c, 2, a3, &error), -EINVAL);
        assert_non_null(strstr(error, "unexpected argument 'stray'"));
        free(error);
        config_done(&c);
}

static void test_kernel_tls(void **state) {
        char *off[] = { "jobworkerd", "--kernel-tls", "off", NULL };
        char *bad[] = { "jobworkerd", "--kernel-tls", "yes", NULL };
        const char *text = "kernel-tls = off\n";
        char *error = NULL;
        Config c;

        config_init(&c);
        assert_false(c.kernel_tls_off); /* auto by default */
        assert_int_equal(config_parse_argv(&c, 3, off, &error), CONFIG_RUN);
        assert_true(c.kernel_tls_off);
        config_done(&c);

        config_init(&c);
        assert_int_equal(config_parse_text(&c, text, strlen(text), "x.conf", &error), 0);
        assert_true(c.kernel_tls_off);
        config_done(&c);

        config_init(&c);
        assert_int_equal(config_parse_argv(&c, 3, bad, &error), -EINVAL);
        assert_non_null(strstr(error, "kernel-tls: 'yes' is neither auto nor off"));
        free(error);
        config_done(&c);
}

/* The ping settings: durations, flag over file, 0 until set (the server's
 * defaults apply). */
static void test_keepalive(void **state) {
        char *flags[] = { "jobworkerd", "--min-ping-interval", "800ms", "--keepalive=2min", NULL };
        char *bad[] = { "jobworkerd", "--min-ping-interval", "often", NULL };
        const char *text = "min-ping-interval = 10s\nkeepalive = 30s\n";
        char *error = NULL;
        Config c;

        config_init(&c);
        assert_true(c.min_ping_interval_usec == 0 && c.keepalive_usec == 0);
        assert_int_equal(config_parse_argv(&c, 4, flags, &error), CONFIG_RUN);
        assert_true(c.min_ping_interval_usec == 800000);
        assert_true(c.keepalive_usec == 120000000);
        assert_int_equal(config_parse_text(&c, text, strlen(text), "x.conf", &error), 0);
        assert_true(c.min_ping_interval_usec == 800000);
        config_done(&c);

        config_init(&c);
        assert_int_equal(config_parse_text(&c, text, strlen(text), "x.conf", &error), 0);
        assert_true(c.min_ping_interval_usec == 10000000);
        assert_true(c.keepalive_usec == 30000000);
        config_done(&c);

        config_init(&c);
        assert_int_equal(config_parse_argv(&c, 3, bad, &error), -EINVAL);
        assert_non_null(strstr(error, "often"));
        free(error);
        config_done(&c);
}

static void test_units(void **state) {
        uint64_t v;

        assert_int_equal(config_parse_duration("5", &v), 0);
        assert_true(v == 5000000);
        assert_int_equal(config_parse_duration("2min", &v), 0);
        assert_true(v == 120000000);
        assert_int_equal(config_parse_duration("1h", &v), 0);
        assert_true(v == 3600000000ull);
        assert_int_equal(config_parse_duration("7d", &v), 0);
        assert_int_equal(config_parse_duration("x", &v), -EINVAL);
        assert_int_equal(config_parse_duration("-1s", &v), -EINVAL);
        /* overflow is -ERANGE in the shared grammar (it was -EINVAL here) */
        assert_int_equal(config_parse_duration("99999999999999999999d", &v), -ERANGE);
        /* what the policy and jwctl always took now passes here too */
        assert_int_equal(config_parse_duration("2.5min", &v), 0);
        assert_true(v == 150000000);
        assert_int_equal(config_parse_size("1.5G", &v), 0);
        assert_true(v == 1536ull * 1024 * 1024);
        assert_int_equal(config_parse_size("1m", &v), 0);
        assert_true(v == 1024 * 1024);
        assert_int_equal(config_parse_size("1Ki", &v), 0);
        assert_true(v == 1024);
        assert_int_equal(config_parse_size("1G", &v), 0);
        assert_true(v == 1024ull * 1024 * 1024);
        assert_int_equal(config_parse_size("64KiB", &v), 0);
        assert_true(v == 65536);
        assert_int_equal(config_parse_size("1X", &v), -EINVAL);
        assert_int_equal(log_level_from_string("err"), LOG_ERR);
        assert_int_equal(log_level_from_string("7"), LOG_DEBUG);
        assert_int_equal(log_level_from_string("nope"), -EINVAL);
}

static void test_missing_file(void **state) {
        char *argv[] = { "jobworkerd", "--config", "/nonexistent/jobworkerd.conf", NULL };
        char *error = NULL;
        Config c;

        config_init(&c);
        assert_int_equal(config_parse_argv(&c, 3, argv, &error), CONFIG_RUN);
        assert_int_equal(config_load_file(&c, &error), -ENOENT);
        assert_string_equal(error, "configuration file /nonexistent/jobworkerd.conf: No such file or directory");
        free(error);
        config_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_file_and_flags),
                cmocka_unit_test(test_file_errors),
                cmocka_unit_test(test_startups),
                cmocka_unit_test(test_flag_errors),
                cmocka_unit_test(test_kernel_tls),
                cmocka_unit_test(test_keepalive),
                cmocka_unit_test(test_units),
                cmocka_unit_test(test_missing_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
