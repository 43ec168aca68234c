/* SPDX-License-Identifier: MIT */
/*
 * The daemon's listening sockets: address forms listen_on() accepts and
 * refuses, the sockets it opens (listening, CLOEXEC, on the address asked
 * for), the limit on their number, and sockaddr_format().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/listen.h"
#include "shared/macro.h"

static void assert_listening(int fd, int family) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int v = 0;
        socklen_t vlen = sizeof(v);

        assert_int_equal(getsockname(fd, (struct sockaddr *) &ss, &len), 0);
        assert_int_equal(ss.ss_family, family);
        assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen), 0);
        assert_int_equal(v, 1);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void test_ipv4(void **state) {
        int fds[4];
        size_t n = 0;

        assert_int_equal(listen_on("127.0.0.1:0", fds, &n, ELEMENTSOF(fds)), 1);
        assert_int_equal(n, 1);
        assert_listening(fds[0], AF_INET);
        close(fds[0]);
}

static void test_ipv6_and_any(void **state) {
        int fds[4];
        size_t n = 0;
        int r = listen_on("[::1]:0", fds, &n, ELEMENTSOF(fds));

        if (r == -EADDRNOTAVAIL)
                skip(); /* no IPv6 loopback here */
        assert_int_equal(r, 1);
        assert_listening(fds[0], AF_INET6);
        /* "*:PORT": one dual-stack socket for every address. */
        assert_int_equal(listen_on("*:0", fds, &n, ELEMENTSOF(fds)), 1);
        assert_int_equal(n, 2);
        assert_listening(fds[1], AF_INET6);
        close(fds[0]);
        close(fds[1]);
}

static void test_bad_addresses(void **state) {
        int fds[4];
        size_t n = 0;

        assert_int_equal(listen_on("nope", fds, &n, ELEMENTSOF(fds)), -EINVAL);
        assert_int_equal(listen_on("127.0.0.1:", fds, &n, ELEMENTSOF(fds)), -EINVAL);
        assert_int_equal(listen_on("[::1", fds, &n, ELEMENTSOF(fds)), -EINVAL);
        assert_int_equal(listen_on("[::1]0", fds, &n, ELEMENTSOF(fds)), -EINVAL);
        /* Ports are numbers: no service lookup. */
        assert_int_equal(listen_on("127.0.0.1:http", fds, &n, ELEMENTSOF(fds)), -EADDRNOTAVAIL);
        assert_int_equal(n, 0);
}

static void test_limit(void **state) {
        int fds[1];
        size_t n = 0;

        assert_int_equal(listen_on("127.0.0.1:0", fds, &n, 1), 1);
        assert_int_equal(listen_on("127.0.0.1:0", fds, &n, 1), -E2BIG);
        assert_int_equal(n, 1);
        close(fds[0]);
}

static void test_port_in_use(void **state) {
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        char addr[64];
        int fds[2];
        size_t n = 0;

        assert_int_equal(listen_on("127.0.0.1:0", fds, &n, ELEMENTSOF(fds)), 1);
        assert_int_equal(getsockname(fds[0], (struct sockaddr *) &sa, &len), 0);
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned) ntohs(sa.sin_port));
        assert_int_equal(listen_on(addr, fds, &n, ELEMENTSOF(fds)), -EADDRINUSE);
        assert_int_equal(n, 1);
        close(fds[0]);
}

static void test_format(void **state) {
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(4711) };
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
        struct sockaddr un = { .sa_family = AF_UNIX };
        char buf[80];

        inet_pton(AF_INET, "192.0.2.1", &in.sin_addr);
        inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
        sockaddr_format((struct sockaddr *) &in, buf, sizeof(buf));
        assert_string_equal(buf, "192.0.2.1:4711");
        sockaddr_format((struct sockaddr *) &in6, buf, sizeof(buf));
        assert_string_equal(buf, "[2001:db8::1]:443");
        sockaddr_format(&un, buf, sizeof(buf));
        assert_string_equal(buf, "(family 1)");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ipv4),
                cmocka_unit_test(test_ipv6_and_any),
                cmocka_unit_test(test_bad_addresses),
                cmocka_unit_test(test_limit),
                cmocka_unit_test(test_port_in_use),
                cmocka_unit_test(test_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
