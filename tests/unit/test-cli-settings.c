/* SPDX-License-Identifier: MIT */
/* jwctl's settings (src/cli/settings.c): command line > environment > config file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/settings.h"

/* A fake environment: NULL-terminated "NAME=value" list. */
static const char *fake_getenv(const char *name, void *userdata) {
        const char *const *env = userdata;
        size_t n = strlen(name);

        for (; env && *env; env++)
                if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
                        return *env + n + 1;
        return NULL;
}

#define ENV(...) ((const char *const[]) { __VA_ARGS__, NULL })

static const char *const env_none[] = { NULL };

static void expect_error(const CliArgs *a, const char *const *env, const char *path, const char *text, const char *needle) {
        CliSettings s;
        char *e = NULL;

        assert_int_equal(cli_settings_resolve(a, fake_getenv, (void *) env, path, text, &s, &e), -EINVAL);
        assert_non_null(e);
        if (!strstr(e, needle))
                fail_msg("error '%s' does not contain '%s'", e, needle);
        assert_null(strchr(e, '\n'));
        free(e);
}

static void test_precedence(void **state) {
        CliArgs a = { .server = "cmd:1" };
        const char *const *env = ENV("JWCTL_SERVER=env:2", "JWCTL_CERT=/env/cert.pem", "JWCTL_KEY=/env/key.pem");
        const char *config = "# jwctl\n\nserver = conf:3\ncert=/conf/cert.pem\n  key = /conf/key.pem  \nca = ca.pem\ntimeout = 2.5\n";
        CliSettings s;
        char *e = NULL;

        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) env, "/home/u/.config/jwctl/config", config, &s, &e), 0);
        assert_string_equal(s.server, "cmd:1");
        assert_string_equal(s.host, "cmd");
        assert_string_equal(s.port, "1");
        assert_string_equal(s.cert, "/env/cert.pem");
        assert_string_equal(s.key, "/env/key.pem");
        /* relative names in the config file are relative to its directory */
        assert_string_equal(s.ca, "/home/u/.config/jwctl/ca.pem");
        assert_int_equal(s.timeout_usec, 2500000);
        cli_settings_done(&s);
        cli_settings_done(&s);

        /* without the command line: the environment; an empty variable counts as unset */
        CliArgs b = { .timeout_set = true, .timeout_usec = 7 };
        const char *const *env2 = ENV("JWCTL_SERVER=env:2", "JWCTL_CERT=", "JWCTL_CA=rel/ca.pem");
        assert_int_equal(cli_settings_resolve(&b, fake_getenv, (void *) env2, "/c/config", config, &s, &e), 0);
        assert_string_equal(s.server, "env:2");
        assert_string_equal(s.cert, "/conf/cert.pem");
        assert_string_equal(s.ca, "rel/ca.pem"); /* relative to the working directory, as given */
        assert_int_equal(s.timeout_usec, 7);
        cli_settings_done(&s);

        /* only the command line, no config file at all; default timeout */
        CliArgs c = { .server = "[::1]:7443", .cert = "c", .key = "k", .ca = "a" };
        assert_int_equal(cli_settings_resolve(&c, fake_getenv, (void *) env_none, NULL, NULL, &s, &e), 0);
        assert_string_equal(s.host, "::1");
        assert_string_equal(s.port, "7443");
        assert_int_equal(s.timeout_usec, CLI_DEFAULT_TIMEOUT_USEC);
        cli_settings_done(&s);

        /* quoted values */
        CliArgs d = {};
        assert_int_equal(cli_settings_resolve(&d, fake_getenv, (void *) env_none, "/c/config",
                                              "server=\"h:1\"\ncert = \" x.pem\"\nkey=/k\nca=/a\r\n", &s, &e), 0);
        assert_string_equal(s.server, "h:1");
        assert_string_equal(s.cert, "/c/ x.pem");
        assert_string_equal(s.ca, "/a");
        cli_settings_done(&s);
}

static void test_kernel_tls(void **state) {
        CliArgs a = { .server = "h:1", .cert = "c", .key = "k", .ca = "a" };
        CliSettings s;
        char *e = NULL;

        /* auto by default */
        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) env_none, NULL, NULL, &s, &e), 0);
        assert_false(s.kernel_tls_off);
        cli_settings_done(&s);
        /* the config file says off */
        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) env_none, "/c/config", "kernel-tls = off\n", &s, &e), 0);
        assert_true(s.kernel_tls_off);
        cli_settings_done(&s);
        /* the environment wins over the file */
        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) ENV("JWCTL_KERNEL_TLS=auto"), "/c/config",
                                              "kernel-tls = off\n", &s, &e), 0);
        assert_false(s.kernel_tls_off);
        cli_settings_done(&s);
        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) ENV("JWCTL_KERNEL_TLS=off"), NULL, NULL, &s, &e), 0);
        assert_true(s.kernel_tls_off);
        cli_settings_done(&s);

        expect_error(&a, ENV("JWCTL_KERNEL_TLS=no"), NULL, NULL, "JWCTL_KERNEL_TLS: invalid kernel-tls 'no': expected auto or off");
        expect_error(&a, env_none, "/c/config", "kernel-tls = yes\n", "/c/config: invalid kernel-tls 'yes'");
}

/* The bound of a follower's outage: command line > environment > config
 * file > 5 min; 0 (never reconnect) is a value like any other. */
static void test_reconnect_timeout(void **state) {
        CliArgs a = { .server = "h:1", .cert = "c", .key = "k", .ca = "a" };
        CliArgs b = { .server = "h:1", .cert = "c", .key = "k", .ca = "a", .reconnect_set = true, .reconnect_usec = 0 };
        CliSettings s;
        char *e = NULL;

        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) env_none, NULL, NULL, &s, &e), 0);
        assert_int_equal(s.reconnect_usec, CLI_RECONNECT_DEFAULT_USEC);
        assert_int_equal(CLI_RECONNECT_DEFAULT_USEC, 300000000);
        cli_settings_done(&s);
        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) env_none, "/c/config", "reconnect-timeout = 1min\n",
                                              &s, &e), 0);
        assert_int_equal(s.reconnect_usec, 60000000);
        cli_settings_done(&s);
        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) ENV("JWCTL_RECONNECT_TIMEOUT=1500ms"), "/c/config",
                                              "reconnect-timeout = 1min\n", &s, &e), 0);
        assert_int_equal(s.reconnect_usec, 1500000);
        cli_settings_done(&s);
        assert_int_equal(cli_settings_resolve(&b, fake_getenv, (void *) ENV("JWCTL_RECONNECT_TIMEOUT=10"), NULL, NULL, &s, &e), 0);
        assert_int_equal(s.reconnect_usec, 0);
        cli_settings_done(&s);
        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) ENV("JWCTL_RECONNECT_TIMEOUT=0"), NULL, NULL, &s, &e), 0);
        assert_int_equal(s.reconnect_usec, 0);
        cli_settings_done(&s);

        expect_error(&a, ENV("JWCTL_RECONNECT_TIMEOUT=later"), NULL, NULL,
                     "JWCTL_RECONNECT_TIMEOUT: invalid reconnect-timeout 'later'");
        expect_error(&a, env_none, "/c/config", "reconnect-timeout = -1\n", "/c/config: invalid reconnect-timeout '-1'");
}

/* The ping interval: command line > environment > config file > 30 s;
 * 0 (no pings) is a value like any other. */
static void test_keepalive(void **state) {
        CliArgs a = { .server = "h:1", .cert = "c", .key = "k", .ca = "a" };
        CliArgs b = { .server = "h:1", .cert = "c", .key = "k", .ca = "a", .keepalive_set = true, .keepalive_usec = 0 };
        CliSettings s;
        char *e = NULL;

        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) env_none, NULL, NULL, &s, &e), 0);
        assert_int_equal(s.keepalive_usec, 30000000);
        cli_settings_done(&s);
        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) env_none, "/c/config", "keepalive = 1min\n", &s, &e), 0);
        assert_int_equal(s.keepalive_usec, 60000000);
        cli_settings_done(&s);
        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) ENV("JWCTL_KEEPALIVE=500ms"), "/c/config",
                                              "keepalive = 1min\n", &s, &e), 0);
        assert_int_equal(s.keepalive_usec, 500000);
        cli_settings_done(&s);
        assert_int_equal(cli_settings_resolve(&b, fake_getenv, (void *) ENV("JWCTL_KEEPALIVE=10"), NULL, NULL, &s, &e), 0);
        assert_int_equal(s.keepalive_usec, 0);
        cli_settings_done(&s);

        expect_error(&a, ENV("JWCTL_KEEPALIVE=never"), NULL, NULL, "JWCTL_KEEPALIVE: invalid keepalive 'never'");
        expect_error(&a, env_none, "/c/config", "keepalive = x\n", "/c/config: invalid keepalive 'x'");
}

static void test_missing(void **state) {
        CliArgs a = {};
        CliArgs b = { .server = "h:1", .cert = "c", .key = "k" };

        expect_error(&a, env_none, "/h/.config/jwctl/config", NULL, "no server (HOST:PORT) given: use --server HOST:PORT, set JWCTL_SERVER, or put 'server = …' in /h/.config/jwctl/config");
        expect_error(&b, env_none, NULL, NULL, "no CA certificate given: use --ca FILE, set JWCTL_CA");
}

static void test_bad_config(void **state) {
        CliArgs a = { .server = "h:1", .cert = "c", .key = "k", .ca = "a" };

        expect_error(&a, env_none, "/c/config", "server = h:1\n\nthis line is junk\n", "/c/config:3: expected 'key = value'");
        expect_error(&a, env_none, "/c/config", "sever = h:1\n", "/c/config:1: unknown key 'sever'");
        expect_error(&a, env_none, "/c/config", "cert =\n", "/c/config:1: empty value for 'cert'");
        expect_error(&a, env_none, "/c/config", "timeout = soon\n", "invalid timeout 'soon'");
        expect_error(&a, env_none, "/c/config", "timeout = 0ms\n", "invalid timeout '0ms'");
}

/* The config file's timeout is a DURATION of the shared grammar. */
static void test_timeout_units(void **state) {
        CliArgs a = { .server = "h:1", .cert = "c", .key = "k", .ca = "a" };
        CliSettings s;
        char *e = NULL;

        assert_int_equal(cli_settings_resolve(&a, fake_getenv, (void *) env_none, "/c/config", "timeout = 500ms\n", &s, &e), 0);
        assert_int_equal(s.timeout_usec, 500000);
        cli_settings_done(&s);
}

static void test_host_port(void **state) {
        char *h, *p, *e = NULL;

        assert_int_equal(cli_split_host_port("localhost:7443", &h, &p, &e), 0);
        assert_string_equal(h, "localhost");
        assert_string_equal(p, "7443");
        free(h);
        free(p);
        assert_int_equal(cli_split_host_port("[fe80::1]:1", &h, &p, &e), 0);
        assert_string_equal(h, "fe80::1");
        assert_string_equal(p, "1");
        free(h);
        free(p);

        static const struct {
                const char *in, *needle;
        } bad[] = {
                { "localhost", "the port is missing" },
                { ":7443", "the host is missing" },
                { "::1:7443", "in brackets" },
                { "h:0", "from 1 to 65535" },
                { "h:65536", "from 1 to 65535" },
                { "h:http", "from 1 to 65535" },
                { "h:", "from 1 to 65535" },
                { "[::1]7443", "expected HOST:PORT" },
                { "[]:1", "expected HOST:PORT" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                e = NULL;
                assert_int_equal(cli_split_host_port(bad[i].in, &h, &p, &e), -EINVAL);
                if (!strstr(e, bad[i].needle))
                        fail_msg("'%s': error '%s' lacks '%s'", bad[i].in, e, bad[i].needle);
                free(e);
        }

        CliArgs a = { .server = "nohost", .cert = "c", .key = "k", .ca = "a" };
        expect_error(&a, env_none, NULL, NULL, "invalid server 'nohost'");
}

static void test_config_path(void **state) {
        char *p;

        p = cli_config_path(fake_getenv, (void *) ENV("XDG_CONFIG_HOME=/x", "HOME=/h"));
        assert_string_equal(p, "/x/jwctl/config");
        free(p);
        /* relative XDG_CONFIG_HOME is ignored (XDG spec) */
        p = cli_config_path(fake_getenv, (void *) ENV("XDG_CONFIG_HOME=rel", "HOME=/h"));
        assert_string_equal(p, "/h/.config/jwctl/config");
        free(p);
        assert_null(cli_config_path(fake_getenv, (void *) env_none));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_precedence),
                cmocka_unit_test(test_kernel_tls),
                cmocka_unit_test(test_reconnect_timeout),
                cmocka_unit_test(test_keepalive),
                cmocka_unit_test(test_missing),
                cmocka_unit_test(test_bad_config),
                cmocka_unit_test(test_timeout_units),
                cmocka_unit_test(test_host_port),
                cmocka_unit_test(test_config_path),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
