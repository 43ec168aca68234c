/* SPDX-License-Identifier: MIT */
/* A fan-out's hosts (src/cli/hosts.c): config lines, lists, ranges, groups,
 * hosts files, duplicates, unknown names, per-host settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/args.h"
#include "cli/hosts.h"
#include "cli/settings.h"

static const char config[] =
        "server = ignored:1\n"
        "# a comment\n"
        "host web01 = web01.example:50051\n"
        "host web02 = 10.0.0.2\n"
        "host web03 = [::1]:7000\n"
        "host web03 tls-name = web03.internal\n"
        "host web03 ca = ca-web03.pem\n"
        "host web03 cert = /abs/cert.pem\n"
        "host db1 = db1:1\n"
        "group web = web01 web02, web03\n"
        "group all = @web db1\n"
        "group loop = @loop\n";

static CliHostConfig load(void) {
        CliHostConfig c = {};
        char *e = NULL;

        assert_int_equal(cli_hosts_config_parse("/etc/x/config", config, &c, &e), 0);
        assert_null(e);
        return c;
}

/* The hosts of list, "a b c", or the error message. */
static char *expand(const CliHostConfig *c, const char *list, int expect) {
        CliHostList l = {};
        char *e = NULL, *out = NULL;
        size_t len = 0;
        FILE *f;

        assert_int_equal(cli_hosts_add_list(c, list, &l, &e), expect);
        if (expect < 0) {
                assert_non_null(e);
                cli_host_list_done(&l);
                return e;
        }
        f = open_memstream(&out, &len);
        for (size_t i = 0; i < l.n; i++)
                fprintf(f, "%s%s", i ? " " : "", l.hosts[i].name);
        fclose(f);
        cli_host_list_done(&l);
        free(e);
        return out;
}

#define EXPECT_HOSTS(c, list, want) do { char *_s = expand(c, list, 0); assert_string_equal(_s, want); free(_s); } while (0)
#define EXPECT_ERROR(c, list, needle) do { char *_s = expand(c, list, -EINVAL); \
        if (!strstr(_s, needle)) \
                fail_msg("message '%s' lacks '%s'", _s, needle); \
        free(_s); } while (0)

static void test_config(void **state) {
        CliHostConfig c = load();

        assert_int_equal(c.n_hosts, 4);
        assert_string_equal(c.hosts[0].name, "web01");
        assert_string_equal(c.hosts[0].addr, "web01.example:50051");
        assert_null(c.hosts[0].tls_name);
        assert_string_equal(c.hosts[2].tls_name, "web03.internal");
        /* Relative files: from the config file's directory. */
        assert_string_equal(c.hosts[2].ca, "/etc/x/ca-web03.pem");
        assert_string_equal(c.hosts[2].cert, "/abs/cert.pem");
        assert_int_equal(c.n_groups, 3);
        assert_string_equal(c.groups[0].items, "web01 web02, web03");
        cli_host_config_done(&c);
        cli_host_config_done(&c); /* twice is fine */
}

static void test_config_errors(void **state) {
        static const struct { const char *text, *needle; } cases[] = {
                { "host web01 colour = red\n", "config:1: unknown host setting 'colour'" },
                { "\nhost bad/name = x:1\n", "config:2: invalid host name 'bad/name'" },
                { "host web01 tls-name = x\n", "host web01 has settings but no address" },
                { "group a/b = x\n", "invalid group name 'a/b'" },
                { "host web01 =\n", "empty value for 'host web01'" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                CliHostConfig c = {};
                char *e = NULL;

                assert_int_equal(cli_hosts_config_parse("config", cases[i].text, &c, &e), -EINVAL);
                assert_non_null(e);
                if (!strstr(e, cases[i].needle))
                        fail_msg("'%s': message '%s' lacks '%s'", cases[i].text, e, cases[i].needle);
                free(e);
        }
}

static void test_lists(void **state) {
        CliHostConfig c = load();

        EXPECT_HOSTS(&c, "web01,web02", "web01 web02");
        EXPECT_HOSTS(&c, "@web", "web01 web02 web03");
        EXPECT_HOSTS(&c, "@all", "web01 web02 web03 db1");
        /* Duplicates dropped, first place kept. */
        EXPECT_HOSTS(&c, "db1,@all,web01", "db1 web01 web02 web03");
        EXPECT_HOSTS(&c, "web[01-03]", "web01 web02 web03");
        EXPECT_HOSTS(&c, "web[02-03],web[1-1]x:5", "web02 web03 web1x:5");
        /* Addresses need no config entry. */
        EXPECT_HOSTS(&c, "10.1.1.1:5000,[::1]:7,h[8-10]:9", "10.1.1.1:5000 [::1]:7 h8:9 h9:9 h10:9");
        EXPECT_HOSTS(&c, "  web01 , , web02 ", "web01 web02");
        cli_host_config_done(&c);
}

static void test_unknown(void **state) {
        CliHostConfig c = load();

        EXPECT_ERROR(&c, "web09", "unknown host: web09");
        EXPECT_ERROR(&c, "@nope", "unknown group: @nope");
        /* Every unknown one named at once. */
        EXPECT_ERROR(&c, "web01,x,@y,web[04-05]", "unknown hosts or groups: x, @y, web04, web05");
        EXPECT_ERROR(&c, "@loop", "groups nest more than 8 deep");
        EXPECT_ERROR(&c, "bad:port", "the port must be a number");
        cli_host_config_done(&c);
}

static void test_ranges(void **state) {
        static const struct { const char *item, *want; } ok[] = {
                { "web[01-03]", "web01 web02 web03" },
                { "web[8-11]", "web8 web9 web10 web11" },
                { "web[098-100]", "web098 web099 web100" },
                { "n[1-2,5]", "n1 n2 n5" },
                { "r[1-2]c[1-2]", "r1c1 r1c2 r2c1 r2c2" },
                { "plain", "plain" },
        };
        static const struct { const char *item, *needle; } bad[] = {
                { "web[3-1]", "expected numbers" },
                { "web[a-b]", "expected numbers" },
                { "web[]", "expected PREFIX[LO-HI]SUFFIX" },
                { "web[1-2", "expected PREFIX[LO-HI]SUFFIX" },
                { "web1]", "']' without '['" },
                { "web[1-10001]", "too large (at most 10000 hosts)" },
                { "a[1-200]b[1-200]", "too large" },
                { "web[1-99999999999999999999]", "expected numbers" },
        };

        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
                char **names = NULL, *e = NULL, *out = NULL;
                size_t n = 0, len = 0;
                FILE *f;

                assert_int_equal(cli_hosts_expand_range(ok[i].item, &names, &n, &e), 0);
                f = open_memstream(&out, &len);
                for (size_t j = 0; j < n; j++) {
                        fprintf(f, "%s%s", j ? " " : "", names[j]);
                        free(names[j]);
                }
                fclose(f);
                assert_string_equal(out, ok[i].want);
                free(out);
                free(names);
        }
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                char **names = NULL, *e = NULL;
                size_t n = 0;

                assert_int_equal(cli_hosts_expand_range(bad[i].item, &names, &n, &e), -EINVAL);
                if (!e || !strstr(e, bad[i].needle))
                        fail_msg("'%s': message '%s' lacks '%s'", bad[i].item, e ?: "(none)", bad[i].needle);
                for (size_t j = 0; j < n; j++)
                        free(names[j]);
                free(names);
                free(e);
        }
}

static void test_file(void **state) {
        CliHostConfig c = load();
        CliHostList l = {};
        char *e = NULL;

        assert_int_equal(cli_hosts_add_file_text(&c, "# hosts\nweb02\n\n  @web  \ndb1,web01\n", "f", &l, &e), 0);
        assert_int_equal(l.n, 4);
        assert_string_equal(l.hosts[0].name, "web02");
        assert_string_equal(l.hosts[1].name, "web01");
        assert_string_equal(l.hosts[2].name, "web03");
        assert_string_equal(l.hosts[3].name, "db1");
        cli_host_list_done(&l);
        assert_int_equal(cli_hosts_add_file_text(&c, "web01\n\nnope\n", "hosts.txt", &l, &e), -EINVAL);
        assert_non_null(strstr(e, "hosts.txt:3: unknown host: nope"));
        free(e);
        cli_host_list_done(&l);
        cli_host_config_done(&c);
}

static void test_settings(void **state) {
        CliHostConfig c = load();
        CliHostList l = {};
        CliSettings base = { .cert = (char *) "/g/cert.pem", .key = (char *) "/g/key.pem", .ca = (char *) "/g/ca.pem",
                             .timeout_usec = 1234 };
        CliSettings s;
        char *e = NULL;

        assert_int_equal(cli_hosts_add_list(&c, "web02,web03,1.2.3.4:9", &l, &e), 0);
        /* No port: the default one. */
        assert_int_equal(cli_host_settings(&base, &l.hosts[0], &s, &e), 0);
        assert_string_equal(s.server, "10.0.0.2:" CLI_HOSTS_DEFAULT_PORT);
        assert_string_equal(s.host, "10.0.0.2");
        assert_null(s.tls_name);
        assert_string_equal(s.ca, "/g/ca.pem");
        assert_int_equal(s.timeout_usec, 1234);
        cli_settings_done(&s);
        /* Overrides. */
        assert_int_equal(cli_host_settings(&base, &l.hosts[1], &s, &e), 0);
        assert_string_equal(s.host, "::1");
        assert_string_equal(s.port, "7000");
        assert_string_equal(s.tls_name, "web03.internal");
        assert_string_equal(s.ca, "/etc/x/ca-web03.pem");
        assert_string_equal(s.cert, "/abs/cert.pem");
        assert_string_equal(s.key, "/g/key.pem");
        cli_settings_done(&s);
        assert_int_equal(cli_host_settings(&base, &l.hosts[2], &s, &e), 0);
        assert_string_equal(s.server, "1.2.3.4:9");
        assert_null(s.config_text);
        cli_settings_done(&s);
        cli_host_list_done(&l);
        cli_host_config_done(&c);
}

static const char *no_env(const char *name, void *userdata) {
        return NULL;
}

static void test_settings_file(void **state) {
        /* settings.c leaves host and group lines to hosts.c, keeps the text,
         * and needs no server when the command names hosts. */
        const char *argv[] = { "jwctl", "list", "--hosts", "web01", NULL };
        CliArgs a;
        CliSettings s;
        char *e = NULL;

        assert_int_equal(cli_args_parse(4, (char **) argv, &a, &e), 0);
        assert_true(cli_args_fans_out(&a));
        assert_int_equal(cli_settings_resolve(&a, no_env, NULL, "/c/config",
                                              "ca = ca.pem\ncert = c.pem\nkey = k.pem\nhost web01 = h:1\ngroup g = web01\n", &s, &e), 0);
        assert_null(s.server);
        assert_non_null(strstr(s.config_text, "host web01 = h:1"));
        assert_string_equal(s.config_path, "/c/config");
        cli_settings_done(&s);
        cli_args_done(&a);
}

#define ARGV(...) ((const char *[]) { "jwctl", __VA_ARGS__, NULL })
static int parse(const char **argv, CliArgs *a, char **e) {
        int n = 0;
        while (argv[n])
                n++;
        return cli_args_parse(n, (char **) argv, a, e);
}

static void test_args(void **state) {
        CliArgs a;
        char *e = NULL;

        assert_int_equal(parse(ARGV("--hosts", "a,b", "run", "--hosts", "@g", "--parallel", "3", "--no-prefix",
                                    "--fail-fast", "--save", "r-1.x", "--json", "--", "true"), &a, &e), 0);
        assert_int_equal(a.fanout.n_hosts, 2);
        assert_string_equal(a.fanout.hosts[1], "@g");
        assert_int_equal(a.fanout.parallel, 3);
        assert_true(a.fanout.no_prefix && a.fanout.fail_fast && a.json);
        assert_string_equal(a.fanout.save, "r-1.x");
        assert_true(cli_args_names_hosts(&a));
        cli_args_done(&a);
        cli_args_done(&a);

        /* @RUN and HOST:ID stand for a JOB and name hosts. */
        assert_int_equal(parse(ARGV("status", "@deploy"), &a, &e), 0);
        assert_string_equal(a.job, "@deploy");
        assert_true(cli_args_names_hosts(&a));
        cli_args_done(&a);
        assert_int_equal(parse(ARGV("stop", "[::1]:7:0123abcd"), &a, &e), 0);
        assert_true(cli_args_fans_out(&a));
        cli_args_done(&a);
        /* Without them, one server as before; --json alone fans out run only. */
        assert_int_equal(parse(ARGV("status", "--json", "0123abcd"), &a, &e), 0);
        assert_false(cli_args_fans_out(&a));
        cli_args_done(&a);
        assert_int_equal(parse(ARGV("run", "--json", "true"), &a, &e), 0);
        assert_true(cli_args_fans_out(&a));
        assert_false(cli_args_names_hosts(&a));
        cli_args_done(&a);

        static const struct { const char *argv[6]; const char *needle; } bad[] = {
                { { "jwctl", "run", "--parallel", "0", "true", NULL }, "expected a number of hosts from 1 to 4096" },
                { { "jwctl", "run", "--parallel", "4097", "true", NULL }, "from 1 to 4096" },
                { { "jwctl", "run", "--save", ".x", "true", NULL }, "a run name is up to 64" },
                { { "jwctl", "run", "--save", "a/b", "true", NULL }, "a run name is up to 64" },
                { { "jwctl", "list", "--hosts", "", NULL }, "needs a list of hosts" },
                { { "jwctl", "list", "--save", "x", NULL }, "unknown option '--save'" },
                { { "jwctl", "status", "@a/b", NULL }, "'@a/b' is not a saved run: a run name" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                assert_int_equal(parse((const char **) bad[i].argv, &a, &e), -EINVAL);
                if (!e || !strstr(e, bad[i].needle))
                        fail_msg("%s: message '%s' lacks '%s'", bad[i].argv[2], e ?: "(none)", bad[i].needle);
                free(e);
                e = NULL;
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config),   cmocka_unit_test(test_config_errors), cmocka_unit_test(test_lists),
                cmocka_unit_test(test_unknown),  cmocka_unit_test(test_ranges),        cmocka_unit_test(test_file),
                cmocka_unit_test(test_settings), cmocka_unit_test(test_settings_file), cmocka_unit_test(test_args),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
