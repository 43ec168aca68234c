/* SPDX-License-Identifier: MIT */
/*
 * The connection registry: a call never gets the identity of a connection
 * other than its own, whatever the order of connects, closes and calls.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rpc/conn-registry.h"

#define DIR "/run/jw/rpc"

static void assert_identity(ConnRegistry *r, const char *peer, const char *want) {
        char *id = NULL;

        assert_int_equal(conn_registry_lookup(r, peer, &id), 0);
        assert_string_equal(id, want);
        free(id);
}

static void assert_refused(ConnRegistry *r, const char *peer, int error) {
        char *id = NULL;

        assert_int_equal(conn_registry_lookup(r, peer, &id), error);
        assert_null(id);
}

/* Bridge path: the peer names the connection id, which is never reused. */
static void test_by_id(void **state) {
        ConnRegistry *r;

        assert_int_equal(conn_registry_new(&r, DIR), 0);
        assert_int_equal(conn_registry_add(r, 7, -1, "alice", "192.0.2.1:4000"), 0);
        assert_int_equal(conn_registry_add(r, 8, -1, "bob", "192.0.2.2:4000"), 0);
        assert_int_equal(conn_registry_add(r, 8, -1, "mallory", "192.0.2.3:4000"), -EEXIST);
        assert_identity(r, "unix:" DIR "/c-7", "alice");
        assert_identity(r, "unix:" DIR "/c-8", "bob");

        /* alice's connection closes; a new one (charlie) comes; a late call
         * of alice's finds nothing rather than charlie. */
        conn_registry_remove(r, 7);
        assert_int_equal(conn_registry_add(r, 9, -1, "charlie", "192.0.2.4:4000"), 0);
        assert_refused(r, "unix:" DIR "/c-7", -ENOENT);
        assert_identity(r, "unix:" DIR "/c-9", "charlie");
        assert_int_equal(conn_registry_count(r), 2);
        conn_registry_free(r);
}

/* Peer strings this registry never hands out name nobody. */
static void test_foreign_peers(void **state) {
        ConnRegistry *r;

        assert_int_equal(conn_registry_new(&r, DIR), 0);
        assert_int_equal(conn_registry_add(r, 1, -1, "alice", "-"), 0);
        assert_int_equal(conn_registry_add(r, 2, 12, "bob", "-"), 0);
        assert_refused(r, "unix:", -EPROTO);                 /* an unbound client socket */
        assert_refused(r, "unix:/elsewhere/c-1", -EPROTO);    /* another directory */
        assert_refused(r, "unix:" DIR "/c-", -EPROTO);
        assert_refused(r, "unix:" DIR "/c-1x", -EPROTO);
        assert_refused(r, "unix:" DIR "/c-99999999999999999999", -EPROTO);
        assert_refused(r, "ipv4:127.0.0.1:5", -EPROTO);
        assert_refused(r, "fd:", -EPROTO);
        assert_refused(r, "fd:-1", -EPROTO);
        assert_refused(r, NULL, -EPROTO);
        /* An id key never matches an fd entry and the other way round. */
        assert_refused(r, "unix:" DIR "/c-2", -ENOENT);
        assert_refused(r, "fd:1", -ENOENT);
        assert_identity(r, "fd:12", "bob");
        conn_registry_free(r);
}

/* Kernel-TLS path: number N closed, N reused before the close was seen, a
 * call of the old connection arrives late. It must not run as the new
 * connection's client: while both may own N, fd:N is refused. */
static void test_fd_reused_before_close_seen(void **state) {
        ConnRegistry *r;

        assert_int_equal(conn_registry_new(&r, NULL), 0);
        assert_int_equal(conn_registry_add(r, 1, 600, "bob", "192.0.2.2:1"), 0);
        assert_identity(r, "fd:600", "bob");

        /* bob's connection ends, the kernel gives 600 to charlie's before
         * the bridge reported bob's close; bob's late call arrives. */
        assert_int_equal(conn_registry_add(r, 2, 600, "charlie", "192.0.2.3:1"), 0);
        assert_refused(r, "fd:600", -EBUSY);

        /* Once bob's close is seen, 600 is charlie's alone. */
        conn_registry_remove(r, 1);
        assert_identity(r, "fd:600", "charlie");

        /* Closed and not reused: nobody. */
        conn_registry_remove(r, 2);
        assert_refused(r, "fd:600", -ENOENT);
        conn_registry_free(r);
}

/* The same with three generations of one number, closes seen out of order. */
static void test_fd_three_generations(void **state) {
        ConnRegistry *r;

        assert_int_equal(conn_registry_new(&r, NULL), 0);
        assert_int_equal(conn_registry_add(r, 1, 5, "a", "-"), 0);
        assert_int_equal(conn_registry_add(r, 2, 5, "b", "-"), 0);
        assert_int_equal(conn_registry_add(r, 3, 5, "c", "-"), 0);
        assert_int_equal(conn_registry_add(r, 4, 6, "d", "-"), 0);
        assert_refused(r, "fd:5", -EBUSY);
        assert_identity(r, "fd:6", "d");
        conn_registry_remove(r, 2);
        assert_refused(r, "fd:5", -EBUSY);
        conn_registry_remove(r, 1);
        assert_identity(r, "fd:5", "c");
        conn_registry_free(r);
}

static void test_socket_name(void **state) {
        char buf[108];

        assert_int_equal(conn_registry_socket_name(DIR, 42, buf, sizeof(buf)), 0);
        assert_string_equal(buf, DIR "/c-42");
        assert_int_equal(conn_registry_socket_name(DIR, UINT64_MAX, buf, 20), -ENAMETOOLONG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_by_id),
                cmocka_unit_test(test_foreign_peers),
                cmocka_unit_test(test_fd_reused_before_close_seen),
                cmocka_unit_test(test_fd_three_generations),
                cmocka_unit_test(test_socket_name),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
