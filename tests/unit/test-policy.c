/* SPDX-License-Identifier: MIT */
/* Policy parsing, permission lookups and authorization decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/authz.h"
#include "policy/policy.h"

static const char example[] =
        "# the example policy\n"
        "alice   self task-manager\n"
        "bob     all  analyst      # reads everything\n"
        "\n"
        "charlie all  task-manager\n";

static Policy *parse_ok(const char *text) {
        Policy *p = NULL;
        char *error = NULL;
        int r = policy_parse(text, strlen(text), "test.conf", &p, &error);
        if (r < 0)
                fail_msg("parse failed: %s", error);
        free(error);
        return p;
}

/* Parses text, expects -EINVAL and a message containing want. */
static void parse_fails(const char *text, const char *want) {
        Policy *p = NULL;
        char *error = NULL;
        int r = policy_parse(text, strlen(text), "test.conf", &p, &error);

        assert_int_equal(r, -EINVAL);
        assert_null(p);
        assert_non_null(error);
        if (!strstr(error, want))
                fail_msg("message '%s' does not contain '%s'", error, want);
        free(error);
}

static void test_example(void **state) {
        Policy *p = parse_ok(example);

        assert_int_equal(p->n_rules, 3);
        assert_string_equal(p->rules[0].user, "alice");
        assert_int_equal(p->rules[0].entity, POLICY_ENTITY_SELF);
        assert_int_equal(p->rules[0].role, POLICY_ROLE_TASK_MANAGER);
        assert_int_equal(p->rules[0].line, 2);
        assert_null(p->rules[0].run_as);
        assert_string_equal(p->rules[1].user, "bob");
        assert_int_equal(p->rules[1].entity, POLICY_ENTITY_ALL);
        assert_int_equal(p->rules[1].role, POLICY_ROLE_ANALYST);
        assert_int_equal(p->rules[2].line, 5);

        assert_true(policy_knows(p, "alice"));
        assert_false(policy_knows(p, "mallory"));
        assert_false(policy_knows(p, "ALICE"));
        assert_string_equal(policy_run_as(p, "alice"), POLICY_DEFAULT_RUN_AS);
        assert_null(policy_run_as(p, "mallory"));

        /* alice: self task-manager */
        assert_int_equal(policy_permissions(p, "alice", "alice"),
                         POLICY_PERMISSION_START_STOP | POLICY_PERMISSION_STATUS_OUTPUT);
        assert_int_equal(policy_permissions(p, "alice", NULL),
                         POLICY_PERMISSION_START_STOP | POLICY_PERMISSION_STATUS_OUTPUT);
        assert_int_equal(policy_permissions(p, "alice", "bob"), 0);
        /* bob: all analyst */
        assert_int_equal(policy_permissions(p, "bob", "alice"), POLICY_PERMISSION_STATUS_OUTPUT);
        assert_int_equal(policy_permissions(p, "bob", NULL), POLICY_PERMISSION_STATUS_OUTPUT);
        /* charlie: all task-manager */
        assert_int_equal(policy_permissions(p, "charlie", "alice"),
                         POLICY_PERMISSION_START_STOP | POLICY_PERMISSION_STATUS_OUTPUT);
        assert_int_equal(policy_permissions(p, "mallory", "mallory"), 0);
        policy_free(p);
}

static void test_authz_matrix(void **state) {
        Policy *p = parse_ok(example);

        /* start */
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_START, NULL), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "bob", AUTHZ_ACTION_START, NULL), AUTHZ_DENY);
        assert_int_equal(authz_decide(p, "charlie", AUTHZ_ACTION_START, NULL), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "mallory", AUTHZ_ACTION_START, NULL), AUTHZ_DENY);

        /* alice: own job yes, others' hidden */
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_STOP, "alice"), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_STATUS, "alice"), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_OUTPUT, "alice"), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_STOP, "charlie"), AUTHZ_HIDE);
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_STATUS, "charlie"), AUTHZ_HIDE);
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_OUTPUT, "charlie"), AUTHZ_HIDE);
        assert_true(authz_can_see(p, "alice", "alice"));
        assert_false(authz_can_see(p, "alice", "charlie"));

        /* bob: sees all, stops none */
        assert_int_equal(authz_decide(p, "bob", AUTHZ_ACTION_STOP, "alice"), AUTHZ_DENY);
        assert_int_equal(authz_decide(p, "bob", AUTHZ_ACTION_STOP, "bob"), AUTHZ_DENY);
        assert_int_equal(authz_decide(p, "bob", AUTHZ_ACTION_STATUS, "alice"), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "bob", AUTHZ_ACTION_OUTPUT, "charlie"), AUTHZ_ALLOW);
        assert_true(authz_can_see(p, "bob", "alice"));

        /* charlie: everything */
        assert_int_equal(authz_decide(p, "charlie", AUTHZ_ACTION_STOP, "alice"), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "charlie", AUTHZ_ACTION_STATUS, "alice"), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "charlie", AUTHZ_ACTION_OUTPUT, "charlie"), AUTHZ_ALLOW);

        /* no such job: hidden for known users, denied for unknown ones */
        assert_int_equal(authz_decide(p, "charlie", AUTHZ_ACTION_STATUS, NULL), AUTHZ_HIDE);
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_STOP, NULL), AUTHZ_HIDE);
        assert_int_equal(authz_decide(p, "mallory", AUTHZ_ACTION_STATUS, NULL), AUTHZ_DENY);
        assert_int_equal(authz_decide(p, "mallory", AUTHZ_ACTION_STATUS, "mallory"), AUTHZ_DENY);
        assert_int_equal(authz_decide(p, "mallory", AUTHZ_ACTION_LIST, NULL), AUTHZ_DENY);
        assert_int_equal(authz_decide(p, "bob", AUTHZ_ACTION_LIST, NULL), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, NULL, AUTHZ_ACTION_LIST, NULL), AUTHZ_DENY);

        /* writing a job's stdin: the rules of stop */
        assert_int_equal(authz_decide(p, "bob", AUTHZ_ACTION_INPUT, "alice"), AUTHZ_DENY);
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_INPUT, "alice"), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_INPUT, "charlie"), AUTHZ_HIDE);
        assert_int_equal(authz_decide(p, "charlie", AUTHZ_ACTION_INPUT, "alice"), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "mallory", AUTHZ_ACTION_INPUT, "mallory"), AUTHZ_DENY);
        policy_free(p);
}

/* Signal is decided exactly as Stop: the task-manager role over the job;
 * a job the caller may not see is hidden; an analyst is denied. */
static void test_authz_signal(void **state) {
        Policy *p = parse_ok(example);
        const char *users[] = { "alice", "bob", "charlie", "mallory", NULL };
        const char *owners[] = { "alice", "bob", "charlie", NULL };

        assert_string_equal(authz_action_to_string(AUTHZ_ACTION_SIGNAL), "signal");
        for (size_t u = 0; u < ELEMENTSOF(users); u++)
                for (size_t o = 0; o < ELEMENTSOF(owners); o++)
                        assert_int_equal(authz_decide(p, users[u], AUTHZ_ACTION_SIGNAL, owners[o]),
                                         authz_decide(p, users[u], AUTHZ_ACTION_STOP, owners[o]));
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_SIGNAL, "alice"), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_SIGNAL, "charlie"), AUTHZ_HIDE);
        assert_int_equal(authz_decide(p, "bob", AUTHZ_ACTION_SIGNAL, "alice"), AUTHZ_DENY);
        assert_int_equal(authz_decide(p, "bob", AUTHZ_ACTION_SIGNAL, "bob"), AUTHZ_DENY);
        assert_int_equal(authz_decide(p, "charlie", AUTHZ_ACTION_SIGNAL, "alice"), AUTHZ_ALLOW);
        assert_int_equal(authz_decide(p, "mallory", AUTHZ_ACTION_SIGNAL, "mallory"), AUTHZ_DENY);
        assert_int_equal(authz_decide(p, "alice", AUTHZ_ACTION_SIGNAL, NULL), AUTHZ_HIDE);
        policy_free(p);
}

static void test_multiple_lines(void **state) {
        Policy *p = parse_ok("dave self task-manager daemon\n"
                             "dave all analyst\n"
                             "erin all analyst root\n");

        assert_int_equal(policy_permissions(p, "dave", "dave"),
                         POLICY_PERMISSION_START_STOP | POLICY_PERMISSION_STATUS_OUTPUT);
        assert_int_equal(policy_permissions(p, "dave", "erin"), POLICY_PERMISSION_STATUS_OUTPUT);
        assert_int_equal(authz_decide(p, "dave", AUTHZ_ACTION_STOP, "erin"), AUTHZ_DENY);
        assert_string_equal(policy_run_as(p, "dave"), "daemon");
        assert_string_equal(policy_run_as(p, "erin"), "root");
        policy_free(p);
}

static void test_empty_and_edge(void **state) {
        Policy *p = parse_ok("");
        assert_int_equal(p->n_rules, 0);
        assert_false(policy_knows(p, "alice"));
        policy_free(p);

        p = parse_ok("   # only a comment\n\t\n\r\n");
        assert_int_equal(p->n_rules, 0);
        policy_free(p);

        /* CRLF line ends, tabs, no final newline, comment glued to a field */
        p = parse_ok("alice\tself\ttask-manager\r\nbob all analyst#c");
        assert_int_equal(p->n_rules, 2);
        assert_int_equal(p->rules[1].role, POLICY_ROLE_ANALYST);
        policy_free(p);

        /* identities may be any printable non-space bytes */
        p = parse_ok("svc.backup@example.org all analyst\n");
        assert_true(policy_knows(p, "svc.backup@example.org"));
        policy_free(p);
}

static void test_errors(void **state) {
        parse_fails("alice self\n", "test.conf:1: expected 'USER ENTITY ROLE [RUN-AS] [KEY=VALUE...]', got 2 fields");
        parse_fails("alice\n", "got 1 field");
        parse_fails("# ok\nalice self task-manager nobody extra\n", "test.conf:2: expected");
        parse_fails("alice self task-manager nobody extra\n", "got 'extra' where a KEY=VALUE bound belongs");
        parse_fails("alice self task-manager a b c d e f g h i j k l m\n", "got more than 15 fields");
        parse_fails("alice some task-manager\n", "test.conf:1: unknown entity 'some' (expected self or all)");
        parse_fails("alice self admin\n", "test.conf:1: unknown role 'admin' (expected task-manager or analyst)");
        parse_fails("\n\nalice self analyst -rf\n", "test.conf:3: invalid account name '-rf'");
        parse_fails("alice self analyst a/b\n", "invalid account name 'a/b'");
        parse_fails("alice self task-manager daemon\nalice all analyst nobody\n",
                    "test.conf:2: user 'alice' has RUN-AS 'daemon' on line 1 and another one here");
        parse_fails("alice self Task-Manager\n", "unknown role");
        parse_fails("alice SELF analyst\n", "unknown entity");

        /* a NUL byte names its line */
        {
                static const char text[] = "alice self analyst\nbob all\0 analyst\n";
                Policy *p = NULL;
                char *error = NULL;
                assert_int_equal(policy_parse(text, sizeof(text) - 1, "t", &p, &error), -EINVAL);
                assert_string_equal(error, "t:2: NUL byte in line");
                free(error);
        }
        /* a control byte in a user name */
        parse_fails("al\001ice self analyst\n", "invalid user name 'al?ice'");
}

static void test_load(void **state) {
        char path[] = "/tmp/test-policy-XXXXXX";
        int fd = mkstemp(path);
        Policy *p = NULL;
        char *error = NULL;

        assert_true(fd >= 0);
        assert_int_equal(write(fd, example, strlen(example)), (ssize_t) strlen(example));
        close(fd);
        assert_int_equal(policy_load(path, &p, &error), 0);
        assert_int_equal(p->n_rules, 3);
        policy_free(p);
        p = NULL;
        unlink(path);

        assert_int_equal(policy_load(path, &p, &error), -ENOENT);
        assert_non_null(strstr(error, path));
        assert_non_null(strstr(error, "No such file or directory"));
        free(error);
        error = NULL;

        assert_int_equal(policy_load("/tmp", &p, &error), -EINVAL);
        assert_non_null(strstr(error, "not a regular file"));
        free(error);
}

static void test_resolve(void **state) {
        Policy *p = parse_ok("alice self task-manager\nroot-user all task-manager root\n");
        char *error = NULL;
        JobCredentials c;

        /* before resolution, no credentials */
        assert_int_equal(policy_credentials(p, "alice", &c), -ENXIO);
        assert_int_equal(policy_resolve_accounts(p, "test.conf", &error), 0);
        assert_int_equal(policy_credentials(p, "root-user", &c), 0);
        assert_int_equal(c.uid, 0);
        assert_int_equal(c.gid, 0);
        assert_string_equal(c.user, "root");
        assert_true(c.n_groups >= 1);
        assert_int_equal(policy_credentials(p, "alice", &c), 0);
        assert_string_equal(c.user, "nobody");
        assert_true(c.uid != 0);
        assert_int_equal(policy_credentials(p, "mallory", &c), -ENOENT);
        policy_free(p);

        p = parse_ok("alice self task-manager no-such-account-xyz\n");
        assert_int_equal(policy_resolve_accounts(p, "test.conf", &error), -ENOENT);
        assert_string_equal(error, "test.conf:1: account 'no-such-account-xyz' (RUN-AS of user 'alice') does not exist");
        free(error);
        policy_free(p);
}

static LimitsBounds bounds_of(const Policy *p, const char *user) {
        LimitsBounds b;
        assert_int_equal(policy_bounds(p, user, &b), 0);
        return b;
}

static void test_bounds(void **state) {
        Policy *p = parse_ok(
                "alice   self task-manager        cpu=1 memory=1G pids=256 io-read-bps=50M io-write-bps=20MiB\n"
                "bob     all  analyst\n"
                "charlie all  task-manager\n"
                "dave    self task-manager daemon cpu=0.5 default-cpu=0.25 default-memory=1.5G memory=2G default-pids=10\n"
                "dave    all  analyst             cpu=0.5   # the same bound again is fine\n"
                "erin    self task-manager        default-memory=64M\n");
        LimitsBounds b;

        b = bounds_of(p, "alice");
        assert_int_equal(b.cpu_millis, 1000);
        assert_int_equal(b.memory_max, 1ULL << 30);
        assert_int_equal(b.pids_max, 256);
        assert_int_equal(b.io_read_bps, 50ULL << 20);
        assert_int_equal(b.io_write_bps, 20ULL << 20);
        assert_int_equal(b.default_cpu_millis, 0);
        assert_false(limits_bounds_empty(&b));

        b = bounds_of(p, "charlie");
        assert_true(limits_bounds_empty(&b));
        b = bounds_of(p, "bob");
        assert_true(limits_bounds_empty(&b));

        b = bounds_of(p, "dave");
        assert_int_equal(b.cpu_millis, 500);
        assert_int_equal(b.default_cpu_millis, 250);
        assert_int_equal(b.memory_max, 2ULL << 30);
        assert_int_equal(b.default_memory_max, 3ULL << 29);
        assert_int_equal(b.default_pids_max, 10);
        assert_int_equal(b.pids_max, 0);
        assert_string_equal(policy_run_as(p, "dave"), "daemon");

        /* defaults without bounds */
        b = bounds_of(p, "erin");
        assert_int_equal(b.default_memory_max, 64ULL << 20);
        assert_int_equal(b.memory_max, 0);
        assert_string_equal(policy_run_as(p, "erin"), POLICY_DEFAULT_RUN_AS);

        assert_int_equal(policy_bounds(p, "mallory", &b), -ENOENT);
        /* bounds do not change permissions */
        assert_int_equal(policy_permissions(p, "alice", NULL),
                         POLICY_PERMISSION_START_STOP | POLICY_PERMISSION_STATUS_OUTPUT);
        policy_free(p);

        /* a user's bounds may be spread over lines: merged */
        p = parse_ok("alice self task-manager cpu=2\nalice all analyst memory=1G\n");
        b = bounds_of(p, "alice");
        assert_int_equal(b.cpu_millis, 2000);
        assert_int_equal(b.memory_max, 1ULL << 30);
        policy_free(p);
}

static void test_bounds_errors(void **state) {
        parse_fails("alice self task-manager cpu=1 memory=1G\nalice all analyst cpu=2\n",
                    "test.conf:2: user 'alice' has cpu=1 on line 1 and cpu=2 here");
        parse_fails("alice self task-manager memory=1G\n\nalice all analyst memory=1024M memory=2G\n",
                    "test.conf:3: 'memory' is given twice");
        parse_fails("alice self task-manager memory=1G\nalice all analyst memory=2G\n",
                    "test.conf:2: user 'alice' has memory=1G on line 1 and memory=2G here");
        parse_fails("alice self task-manager cpu=1 default-cpu=2\n",
                    "test.conf:1: user 'alice' has default-cpu=2 above cpu=1");
        parse_fails("alice self task-manager default-pids=300\nalice all analyst pids=256\n",
                    "test.conf:2: user 'alice' has default-pids=300 above pids=256");
        parse_fails("alice self task-manager cpus=1\n", "test.conf:1: unknown bound 'cpus' (expected cpu, memory");
        parse_fails("alice self task-manager cpu=0\n", "invalid value '0' for 'cpu': expected a number of CPUs from 0.01");
        parse_fails("alice self task-manager cpu=0.001\n", "invalid value '0.001' for 'cpu'");
        parse_fails("alice self task-manager cpu=1.2345\n", "invalid value '1.2345' for 'cpu'");
        parse_fails("alice self task-manager cpu=abc\n", "invalid value 'abc' for 'cpu'");
        parse_fails("alice self task-manager cpu=\n", "invalid value '' for 'cpu'");
        parse_fails("alice self task-manager memory=12X\n", "invalid value '12X' for 'memory': expected a size");
        parse_fails("alice self task-manager memory=0\n", "invalid value '0' for 'memory'");
        parse_fails("alice self task-manager memory=99999999999999999999\n", "invalid value");
        parse_fails("alice self task-manager pids=1K\n", "invalid value '1K' for 'pids': expected a number from 1 to 4194304");
        parse_fails("alice self task-manager pids=4194305\n", "invalid value '4194305' for 'pids'");
        parse_fails("alice self task-manager io-read-bps=-5\n", "invalid value '-5' for 'io-read-bps'");
        /* RUN-AS comes before the bounds */
        parse_fails("alice self task-manager cpu=1 daemon\n", "got 'daemon' where a KEY=VALUE bound belongs");
        parse_fails("alice self task-manager =1\n", "unknown bound ''");
}

/* Builds a policy of n users "uNNNNNNN self task-manager", one line each,
 * plus tail; malloc()ed. */
static char *many_users(unsigned n, const char *tail, size_t *ret_size) {
        size_t cap = (size_t) n * 40 + strlen(tail) + 1, k = 0;
        char *s = malloc(cap);

        assert_non_null(s);
        for (unsigned i = 0; i < n; i++)
                k += (size_t) snprintf(s + k, cap - k, "u%07u self task-manager\n", i);
        k += (size_t) snprintf(s + k, cap - k, "%s", tail);
        *ret_size = k;
        return s;
}

/* 50,000 users parse and resolve, and every lookup still answers right
 * (no timing here: the load time is bench-policy's figure). */
static void test_scale(void **state) {
        size_t size;
        char *text = many_users(50000, "u0049999 all analyst root max-jobs=3\n", &size);
        Policy *p = NULL;
        char *error = NULL;
        JobCredentials c;
        LimitsBounds b;

        assert_int_equal(policy_parse(text, size, "big.conf", &p, &error), 0);
        assert_int_equal(p->n_rules, 50001);
        assert_int_equal(p->n_users, 50000);
        assert_int_equal(policy_resolve_accounts(p, "big.conf", &error), 0);
        assert_int_equal(p->n_accounts, 2); /* nobody and root: one lookup each */
        /* the last user: both lines merged */
        assert_int_equal(policy_permissions(p, "u0049999", NULL),
                         POLICY_PERMISSION_START_STOP | POLICY_PERMISSION_STATUS_OUTPUT);
        assert_int_equal(policy_permissions(p, "u0049999", "u0000001"), POLICY_PERMISSION_STATUS_OUTPUT);
        assert_string_equal(policy_run_as(p, "u0049999"), "root");
        assert_int_equal(policy_credentials(p, "u0049999", &c), 0);
        assert_int_equal(c.uid, 0);
        assert_int_equal(policy_bounds(p, "u0049999", &b), 0);
        assert_int_equal(b.max_jobs, 3);
        /* the first and one in the middle */
        assert_int_equal(policy_permissions(p, "u0000000", "u0000001"), 0);
        assert_int_equal(policy_permissions(p, "u0025000", NULL),
                         POLICY_PERMISSION_START_STOP | POLICY_PERMISSION_STATUS_OUTPUT);
        assert_string_equal(policy_run_as(p, "u0025000"), POLICY_DEFAULT_RUN_AS);
        assert_true(policy_knows(p, "u0000000"));
        assert_false(policy_knows(p, "u0050000"));
        assert_false(policy_knows(p, "u004999"));
        policy_free(p);
        free(text);

        /* a conflict on the last line still names the first one */
        text = many_users(50000, "u0000000 all analyst root\nu0000000 self analyst daemon\n", &size);
        assert_int_equal(policy_parse(text, size, "big.conf", &p, &error), -EINVAL);
        assert_string_equal(error, "big.conf:50002: user 'u0000000' has RUN-AS 'root' on line 50001 and another one here");
        free(error);
        free(text);
}

/* More rules than POLICY_RULES_MAX: refused, naming the limit. */
static void test_rules_max(void **state) {
        size_t size;
        char *text = many_users(POLICY_RULES_MAX, "x self analyst\n", &size);
        Policy *p = NULL;
        char *error = NULL;

        assert_int_equal(policy_parse(text, size, "big.conf", &p, &error), -E2BIG);
        assert_null(p);
        assert_string_equal(error, "big.conf:100001: too many rules (the limit is 100000 lines with a rule)");
        free(error);
        /* exactly the limit is fine */
        assert_int_equal(policy_parse(text, size - strlen("x self analyst\n"), "big.conf", &p, &error), 0);
        assert_int_equal(p->n_rules, POLICY_RULES_MAX);
        policy_free(p);
        free(text);
}

/* max-jobs= and max-output=: per identity, the shared grammars. */
static void test_identity_bounds(void **state) {
        Policy *p = parse_ok("alice self task-manager max-jobs=8 max-output=1G\n"
                             "alice all analyst max-jobs=8\n"
                             "bob all analyst max-output=512K\n");
        LimitsBounds b = bounds_of(p, "alice");

        assert_int_equal(b.max_jobs, 8);
        assert_int_equal(b.max_output, 1ULL << 30);
        b = bounds_of(p, "bob");
        assert_int_equal(b.max_jobs, 0);
        assert_int_equal(b.max_output, 512ULL << 10);
        policy_free(p);

        parse_fails("alice self task-manager max-jobs=0\n",
                    "test.conf:1: invalid value '0' for 'max-jobs': expected a number from 1 to 4194304");
        parse_fails("alice self task-manager max-jobs=2G\n", "invalid value '2G' for 'max-jobs'");
        parse_fails("alice self task-manager max-output=10X\n",
                    "invalid value '10X' for 'max-output': expected a size greater than 0");
        parse_fails("alice self task-manager max-output=1M\nalice all analyst max-output=2M\n",
                    "test.conf:2: user 'alice' has max-output=1M on line 1 and max-output=2M here");
        parse_fails("alice self task-manager max-job=1\n", "default-pids, max-jobs, max-output, max-runtime or "
                    "default-max-runtime)");
}

/* max-runtime= and default-max-runtime=: the one duration grammar. */
static void test_runtime_bounds(void **state) {
        Policy *p = parse_ok("alice self task-manager max-runtime=2h default-max-runtime=30m\n"
                             "alice all analyst max-runtime=7200\n"
                             "bob all analyst default-max-runtime=1.5s\n");
        LimitsBounds b = bounds_of(p, "alice");

        assert_int_equal(b.max_runtime, 2ull * 3600 * 1000000);
        assert_int_equal(b.default_max_runtime, 30ull * 60 * 1000000);
        b = bounds_of(p, "bob");
        assert_int_equal(b.max_runtime, 0);
        assert_int_equal(b.default_max_runtime, 1500000);
        policy_free(p);

        parse_fails("alice self task-manager max-runtime=0\n",
                    "test.conf:1: invalid value '0' for 'max-runtime': expected a duration greater than 0");
        parse_fails("alice self task-manager max-runtime=10G\n", "invalid value '10G' for 'max-runtime'");
        parse_fails("alice self task-manager max-runtime=3651d\n", "invalid value '3651d' for 'max-runtime'");
        parse_fails("alice self task-manager max-runtime=1h default-max-runtime=2h\n",
                    "test.conf:1: user 'alice' has default-max-runtime=2h above max-runtime=1h");
        parse_fails("alice self task-manager max-runtime=1h\nalice all analyst max-runtime=90m\n",
                    "test.conf:2: user 'alice' has max-runtime=1h on line 1 and max-runtime=90m here");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_example),
                cmocka_unit_test(test_authz_matrix),
                cmocka_unit_test(test_authz_signal),
                cmocka_unit_test(test_multiple_lines),
                cmocka_unit_test(test_empty_and_edge),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_load),
                cmocka_unit_test(test_resolve),
                cmocka_unit_test(test_bounds),
                cmocka_unit_test(test_bounds_errors),
                cmocka_unit_test(test_scale),
                cmocka_unit_test(test_rules_max),
                cmocka_unit_test(test_identity_bounds),
                cmocka_unit_test(test_runtime_bounds),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
