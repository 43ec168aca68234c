/* SPDX-License-Identifier: MIT */

/*
 * Kernel TLS after a GnuTLS handshake (tls/ktls.c), over a real loopback TCP
 * connection: the server moves its session into the kernel and from then on
 * uses plain write()/read(); the client stays in GnuTLS and must see the
 * same bytes, both ways. Where the kernel has no "tls" ULP those tests are
 * skipped (the system test covers them in its VM, on Debian 12's kernel);
 * ktls_peek_record_type(), which needs no kernel support, is tested anyway.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../helpers/tls-certs.h"

#include "../helpers/testdata.h"
#include "tls/ktls.h"
#include "tls/tls.h"

#define DOWN_BYTES (8u * 1024u * 1024u + 12345u) /* server -> client, many records */
#define UP_BYTES (1u * 1024u * 1024u + 777u)     /* client -> server */
#define EARLY_BYTES 3000u                          /* client -> server right after its handshake */

static bool have_ulp;

static void wait_fd(int fd, short events) {
        struct pollfd p = { .fd = fd, .events = events };
        assert_int_equal(poll(&p, 1, 10000), 1);
}

/* A connected loopback TCP pair, both ends non-blocking. */
static void tcp_pair(int *ret_server, int *ret_client) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int l, c, s, one = 1;

        l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(l >= 0);
        assert_int_equal(bind(l, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(l, 1), 0);
        assert_int_equal(getsockname(l, (struct sockaddr *) &a, &len), 0);
        c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c >= 0);
        assert_int_equal(connect(c, (struct sockaddr *) &a, sizeof(a)), 0);
        s = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        assert_true(s >= 0);
        close(l);
        assert_int_equal(fcntl(c, F_SETFL, O_NONBLOCK), 0);
        (void) setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        *ret_server = s;
        *ret_client = c;
}

typedef struct Server {
        TlsContext *ctx;
        int fd;
        int handshake_r, ktls_r;
        bool broken;
        char identity[64];
        bool early_ok, up_ok;
        size_t up_got;
        int end_errno; /* what read() said after the client's close_notify */
} Server;

static void *server_thread(void *p) {
        Server *sv = p;
        TlsSession *s = NULL;
        uint8_t *buf = malloc(65536);
        size_t off = 0;

        assert_non_null(buf);
        assert_int_equal(tls_session_new(&s, sv->ctx, sv->fd, NULL), 0);
        while ((sv->handshake_r = tls_session_handshake(s)) == -EAGAIN)
                wait_fd(sv->fd, tls_session_wants_write(s) ? POLLOUT : POLLIN);
        if (sv->handshake_r < 0)
                goto out;
        snprintf(sv->identity, sizeof(sv->identity), "%s", tls_session_identity(s) ?: "");
        /* Let the client's early data arrive before the switch (the hard case). */
        wait_fd(sv->fd, POLLIN);
        sv->ktls_r = tls_session_pending(s) > 0 ? -EBUSY : ktls_enable(tls_session_gnutls(s), sv->fd, &sv->broken);
        if (sv->ktls_r < 0)
                goto out;
        /* GnuTLS is done with this connection: the kernel has its state. */
        s = tls_session_free(s);

        /* What the client sent right behind its Finished (as gRPC does) was
         * left in the socket by the handshake: the kernel decrypts it. */
        while (off < EARLY_BYTES) {
                ssize_t k = read(sv->fd, buf + off, EARLY_BYTES - off);
                if (k < 0 && errno == EAGAIN) {
                        wait_fd(sv->fd, POLLIN);
                        continue;
                }
                if (k <= 0)
                        break;
                off += (size_t) k;
        }
        sv->early_ok = off == EARLY_BYTES && testdata_check(9, 0, buf, EARLY_BYTES);
        off = 0;

        /* Down: plain write()s of the test stream, in odd-sized pieces. */
        while (off < DOWN_BYTES) {
                size_t n = MIN((size_t) 50001, DOWN_BYTES - off);
                testdata_fill(7, off, buf, n);
                ssize_t k = write(sv->fd, buf, n);
                if (k < 0 && errno == EAGAIN) {
                        wait_fd(sv->fd, POLLOUT);
                        continue;
                }
                assert_true(k > 0);
                off += (size_t) k;
        }

        /* Up: plain read()s, checked against the client's stream. */
        sv->up_ok = true;
        while (sv->up_got < UP_BYTES) {
                ssize_t k = read(sv->fd, buf, 65536);
                if (k < 0 && errno == EAGAIN) {
                        wait_fd(sv->fd, POLLIN);
                        continue;
                }
                if (k <= 0)
                        break;
                if (!testdata_check(8, sv->up_got, buf, (size_t) k))
                        sv->up_ok = false;
                sv->up_got += (size_t) k;
        }

        /* The client's close_notify is not data: the kernel does not hand
         * it to read() as bytes. */
        for (;;) {
                ssize_t k = read(sv->fd, buf, 65536);
                if (k < 0 && errno == EAGAIN) {
                        wait_fd(sv->fd, POLLIN);
                        continue;
                }
                sv->end_errno = k < 0 ? errno : 0;
                assert_true(k <= 0);
                break;
        }
        (void) shutdown(sv->fd, SHUT_RDWR);
out:
        tls_session_free(s);
        free(buf);
        return NULL;
}

static void test_ktls_both_ways(void **state) {
        if (!have_ulp)
                skip();
        Server sv = { .ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL) };
        TlsContext *cctx = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "ca.pem", NULL);
        TlsSession *c = NULL;
        uint8_t *buf = malloc(65536);
        size_t got = 0, off = 0;
        bool down_ok = true;
        pthread_t t;
        int cfd, r;

        assert_non_null(buf);
        tcp_pair(&sv.fd, &cfd);
        assert_int_equal(pthread_create(&t, NULL, server_thread, &sv), 0);
        assert_int_equal(tls_session_new(&c, cctx, cfd, "localhost"), 0);
        while ((r = tls_session_handshake(c)) == -EAGAIN)
                wait_fd(cfd, tls_session_wants_write(c) ? POLLOUT : POLLIN);
        assert_int_equal(r, 0);

        gnutls_session_t g = tls_session_gnutls(c);
        testdata_fill(9, 0, buf, EARLY_BYTES);
        while ((r = (int) gnutls_record_send(g, buf, EARLY_BYTES)) == GNUTLS_E_AGAIN)
                wait_fd(cfd, POLLOUT);
        assert_int_equal(r, EARLY_BYTES);
        while (got < DOWN_BYTES) {
                ssize_t n = gnutls_record_recv(g, buf, 65536);
                if (n == GNUTLS_E_AGAIN) {
                        if (tls_session_pending(c) == 0)
                                wait_fd(cfd, POLLIN);
                        continue;
                }
                if (n <= 0) {
                        print_error("client: gnutls_record_recv: %s (server handshake %d, ktls %d)\n",
                                    gnutls_strerror((int) n), sv.handshake_r, sv.ktls_r);
                        break;
                }
                if (!testdata_check(7, got, buf, (size_t) n))
                        down_ok = false;
                got += (size_t) n;
        }
        assert_int_equal(sv.handshake_r, 0);
        assert_int_equal(sv.ktls_r, 0);
        assert_string_equal(sv.identity, "alice");
        assert_true(sv.early_ok);
        assert_int_equal(got, DOWN_BYTES);
        assert_true(down_ok);

        while (off < UP_BYTES) {
                size_t n = MIN((size_t) 30000, UP_BYTES - off);
                testdata_fill(8, off, buf, n);
                ssize_t k = gnutls_record_send(g, buf, n);
                if (k == GNUTLS_E_AGAIN) {
                        wait_fd(cfd, POLLOUT);
                        continue;
                }
                assert_true(k > 0);
                off += (size_t) k;
        }
        while ((r = gnutls_bye(g, GNUTLS_SHUT_WR)) == GNUTLS_E_AGAIN)
                wait_fd(cfd, POLLOUT);
        assert_int_equal(r, 0);

        /* The server shuts the socket without a close_notify of its own
         * (gRPC does that on a kTLS socket): the client sees the end. */
        for (;;) {
                ssize_t n = gnutls_record_recv(g, buf, 65536);
                if (n == GNUTLS_E_AGAIN) {
                        wait_fd(cfd, POLLIN);
                        continue;
                }
                assert_true(n == GNUTLS_E_PREMATURE_TERMINATION || n == 0 || n == GNUTLS_E_PULL_ERROR);
                break;
        }
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(sv.up_ok);
        assert_int_equal(sv.up_got, UP_BYTES);

        tls_session_free(c);
        close(cfd);
        close(sv.fd);
        tls_context_unref(cctx);
        tls_context_unref(sv.ctx);
        free(buf);
}

/* A session that did not finish its handshake is refused, nothing changes. */
static void test_ktls_refuses_without_handshake(void **state) {
        if (!have_ulp)
                skip();
        TlsContext *ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL);
        TlsSession *s = NULL;
        bool broken = true;
        int sfd, cfd;

        tcp_pair(&sfd, &cfd);
        assert_int_equal(tls_session_new(&s, ctx, sfd, NULL), 0);
        assert_int_equal(ktls_enable(tls_session_gnutls(s), sfd, &broken), -EOPNOTSUPP);
        assert_false(broken);
        tls_session_free(s);
        close(sfd);
        close(cfd);
        tls_context_unref(ctx);
}

/* The type of a record is read from a decrypted copy; the session reads
 * the record afterwards as if nothing happened. */
static void test_peek_record_type(void **state) {
        TlsContext *sctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL);
        TlsContext *cctx = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "ca.pem", NULL);
        TlsSession *srv = NULL, *cli = NULL;
        uint8_t rec[5 + 16384 + 256], buf[64];
        int sv[2], rs = -EAGAIN, rc = -EAGAIN;
        ssize_t n;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(tls_session_new(&srv, sctx, sv[0], NULL), 0);
        assert_int_equal(tls_session_new(&cli, cctx, sv[1], "localhost"), 0);
        for (int i = 0; i < 1000 && (rs == -EAGAIN || rc == -EAGAIN); i++) {
                if (rc == -EAGAIN)
                        rc = tls_session_handshake(cli);
                if (rs == -EAGAIN)
                        rs = tls_session_handshake(srv);
        }
        assert_int_equal(rc, 0);
        assert_int_equal(rs, 0);
        tls_session_exact_reads(cli, true);

        /* application data */
        assert_int_equal(gnutls_record_send(tls_session_gnutls(srv), "settings", 8), 8);
        n = recv(sv[1], rec, sizeof(rec), MSG_PEEK);
        assert_true(n > 5 + 16);
        assert_int_equal(ktls_peek_record_type(tls_session_gnutls(cli), rec, (size_t) n), 23);
        /* a copy with one bit flipped does not decrypt */
        rec[n - 1] ^= 1;
        assert_int_equal(ktls_peek_record_type(tls_session_gnutls(cli), rec, (size_t) n), -EBADMSG);
        /* the session's state did not move: it reads the record normally */
        n = gnutls_record_recv(tls_session_gnutls(cli), buf, sizeof(buf));
        assert_int_equal(n, 8);
        assert_memory_equal(buf, "settings", 8);

        /* a post-handshake message (here a key update; session tickets look
         * the same): GnuTLS takes it, and the next record decrypts with the
         * new keys */
        assert_int_equal(gnutls_session_key_update(tls_session_gnutls(srv), 0), 0);
        n = recv(sv[1], rec, sizeof(rec), MSG_PEEK);
        assert_true(n > 5 + 16);
        assert_int_equal(ktls_peek_record_type(tls_session_gnutls(cli), rec, (size_t) n), 22);
        n = gnutls_record_recv(tls_session_gnutls(cli), buf, sizeof(buf));
        assert_true(n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
        assert_int_equal(gnutls_record_send(tls_session_gnutls(srv), "after", 5), 5);
        n = recv(sv[1], rec, sizeof(rec), MSG_PEEK);
        assert_int_equal(ktls_peek_record_type(tls_session_gnutls(cli), rec, (size_t) n), 23);
        assert_int_equal(gnutls_record_recv(tls_session_gnutls(cli), buf, sizeof(buf)), 5);

        /* an alert (what a server refusing our certificate sends) */
        assert_int_equal(gnutls_alert_send(tls_session_gnutls(srv), GNUTLS_AL_FATAL, GNUTLS_A_UNKNOWN_CA), 0);
        n = recv(sv[1], rec, sizeof(rec), MSG_PEEK);
        assert_true(n > 5 + 16);
        assert_int_equal(ktls_peek_record_type(tls_session_gnutls(cli), rec, (size_t) n), 21);
        assert_int_equal(gnutls_record_recv(tls_session_gnutls(cli), buf, sizeof(buf)), GNUTLS_E_FATAL_ALERT_RECEIVED);
        assert_int_equal(gnutls_alert_get(tls_session_gnutls(cli)), GNUTLS_A_UNKNOWN_CA);

        /* nonsense */
        assert_int_equal(ktls_peek_record_type(tls_session_gnutls(cli), rec, 5), -EBADMSG);

        tls_session_free(cli);
        tls_session_free(srv);
        close(sv[0]);
        close(sv[1]);
        tls_context_unref(cctx);
        tls_context_unref(sctx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_peek_record_type),
                cmocka_unit_test(test_ktls_refuses_without_handshake),
                cmocka_unit_test(test_ktls_both_ways),
        };
        int s, c;

        /* Probe: can this kernel attach the tls ULP to a TCP socket? */
        tcp_pair(&s, &c);
        int r = ktls_attach(s);
        have_ulp = r >= 0;
        if (!have_ulp)
                printf("this kernel has no \"tls\" TCP ULP (%s): two tests are skipped here "
                       "(the system test covers kernel TLS end to end in its VM)\n", strerror(-r));
        close(s);
        close(c);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
