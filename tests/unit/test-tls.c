/* SPDX-License-Identifier: MIT */
/*
 * Tests of src/tls/tls.c: contexts load the committed development
 * certificates and explain bad files; a server and a client session shake
 * hands over a socketpair (one thread each) with the intended algorithms, and
 * the certificates in certs/bad are refused with the right reason on the
 * server and the right alert on the client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "../helpers/tls-certs.h"

#include "tls/tls.h"

typedef struct Side {
        TlsContext *ctx;
        int fd;
        const char *host;      /* client: the name to verify */
        int r;                 /* handshake result */
        char reason[128];
        char identity[128];
        char cipher[64];
        char alpn_selected[16];
        gnutls_protocol_t version;
        int alert;             /* client: fatal alert received after the handshake, -1 none */
        char received[16];     /* client: application data received after the handshake */
} Side;

static int wait_fd(TlsSession *s, int fd) {
        struct pollfd p = { .fd = fd, .events = tls_session_wants_write(s) ? POLLOUT : POLLIN };
        int n = poll(&p, 1, 10000);
        return n > 0 ? 0 : -ETIMEDOUT;
}

static void run_side(Side *side) {
        _cleanup_tls_session_ TlsSession *s = NULL;
        gnutls_datum_t proto;
        int r;

        side->alert = -1;
        r = tls_session_new(&s, side->ctx, side->fd, side->host);
        assert_int_equal(r, 0);
        while ((r = tls_session_handshake(s)) == -EAGAIN)
                if (wait_fd(s, side->fd) < 0) {
                        r = -ETIMEDOUT;
                        break;
                }
        side->r = r;
        if (r < 0) {
                snprintf(side->reason, sizeof side->reason, "%s", tls_session_failure_reason(s) ?: "?");
                if (getenv("TEST_DEBUG"))
                        fprintf(stderr, "%s: %s (%d)\n", side->host ? "client" : "server", side->reason,
                                tls_session_failure_error(s));
                shutdown(side->fd, SHUT_RDWR);
                return;
        }

        gnutls_session_t g = tls_session_gnutls(s);
        side->version = gnutls_protocol_get_version(g);
        snprintf(side->cipher, sizeof side->cipher, "%s",
                 gnutls_ciphersuite_get(g) ?: "");
        if (gnutls_alpn_get_selected_protocol(g, &proto) == 0)
                snprintf(side->alpn_selected, sizeof side->alpn_selected, "%.*s", (int) proto.size, proto.data);
        if (tls_session_identity(s))
                snprintf(side->identity, sizeof side->identity, "%s", tls_session_identity(s));

        if (tls_context_role(side->ctx) == TLS_ROLE_SERVER) {
                /* say something so the client sees the connection works */
                while ((r = gnutls_record_send(g, "ok", 2)) == GNUTLS_E_AGAIN)
                        assert_int_equal(wait_fd(s, side->fd), 0);
                assert_int_equal(r, 2);
                while (gnutls_bye(g, GNUTLS_SHUT_WR) == GNUTLS_E_AGAIN)
                        assert_int_equal(wait_fd(s, side->fd), 0);
        } else {
                /* TLS 1.3: a refused client certificate shows up here, as an alert */
                char buf[16];
                size_t have = 0;
                for (;;) {
                        ssize_t n = gnutls_record_recv(g, buf, sizeof buf);
                        if (n == GNUTLS_E_AGAIN) {
                                if (wait_fd(s, side->fd) < 0)
                                        break;
                                continue;
                        }
                        if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
                                side->alert = gnutls_alert_get(g);
                                break;
                        }
                        if (n <= 0)
                                break;
                        memcpy(side->received + have, buf, MIN((size_t) n, sizeof side->received - 1 - have));
                        have += MIN((size_t) n, sizeof side->received - 1 - have);
                }
        }
}

static void *server_thread(void *p) {
        run_side(p);
        return NULL;
}

/* Runs a handshake between a server and a client context over a socketpair. */
static void handshake(Side *server, Side *client) {
        int sv[2];
        pthread_t t;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        server->fd = sv[0];
        client->fd = sv[1];
        assert_int_equal(pthread_create(&t, NULL, server_thread, server), 0);
        run_side(client);
        assert_int_equal(pthread_join(t, NULL), 0);
        close(sv[0]);
        close(sv[1]);
}

static void test_default_priority_parses(void **state) {
        gnutls_priority_t p;
        const char *err = NULL;

        assert_int_equal(gnutls_priority_init(&p, TLS_DEFAULT_PRIORITY, &err), 0);
        gnutls_priority_deinit(p);
}

static void test_load_committed_certs(void **state) {
        const char *clients[] = { "alice", "bob", "charlie" };
        TlsContext *ctx;

        ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL);
        assert_non_null(ctx);
        assert_int_equal(tls_context_role(ctx), TLS_ROLE_SERVER);
        /* refcount: one extra ref, two unrefs */
        assert_ptr_equal(tls_context_ref(ctx), ctx);
        assert_null(tls_context_unref(ctx));
        assert_null(tls_context_unref(ctx));

        for (size_t i = 0; i < ELEMENTSOF(clients); i++) {
                _cleanup_free_ char *c = NULL, *k = NULL;
                assert_true(asprintf(&c, "%s.pem", clients[i]) > 0);
                assert_true(asprintf(&k, "%s-key.pem", clients[i]) > 0);
                ctx = load_context(TLS_ROLE_CLIENT, c, k, "ca.pem", NULL);
                assert_non_null(ctx);
                tls_context_unref(ctx);
        }
        assert_null(tls_context_unref(NULL));
}

static void expect_error(TlsRole role, const char *cert, const char *key, const char *ca, const char *priority,
                         int expected_r, const char *expected_msg) {
        _cleanup_free_ char *c = cert_path(cert), *k = cert_path(key), *a = cert_path(ca), *err = NULL;
        TlsContext *ctx = NULL;
        int r;

        r = tls_context_new(&ctx, role, c, k, a, priority, &err);
        assert_int_equal(r, expected_r);
        assert_null(ctx);
        assert_non_null(err);
        if (!strstr(err, expected_msg))
                fail_msg("message \"%s\" does not contain \"%s\"", err, expected_msg);
        assert_null(strchr(err, '\n'));
}

static void test_load_errors(void **state) {
        _cleanup_free_ char *missing = cert_path("does-not-exist.pem");
        _cleanup_free_ char *msg = NULL;

        assert_true(asprintf(&msg, "certificate file %s: No such file or directory", missing) > 0);
        expect_error(TLS_ROLE_SERVER, "does-not-exist.pem", "server-key.pem", "ca.pem", NULL, -ENOENT, msg);
        expect_error(TLS_ROLE_SERVER, "server.pem", "nope-key.pem", "ca.pem", NULL, -ENOENT, "key file ");
        expect_error(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "nope-ca.pem", NULL, -ENOENT, "CA file ");
        expect_error(TLS_ROLE_CLIENT, "alice.pem", "bob-key.pem", "ca.pem", NULL, -EINVAL,
                     "bob-key.pem does not match certificate file ");
        expect_error(TLS_ROLE_CLIENT, "README", "alice-key.pem", "ca.pem", NULL, -EBADMSG,
                     "README: not a PEM certificate");
        expect_error(TLS_ROLE_CLIENT, "alice.pem", "alice.pem", "ca.pem", NULL, -EBADMSG,
                     "alice.pem: not a PEM private key");
        expect_error(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "README", NULL, -EBADMSG,
                     "README: not a PEM certificate");
        expect_error(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "bad", NULL, -EISDIR, "CA file ");
        expect_error(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", "NONE:+VERS-TLS1.3:+BOGUS", -EINVAL,
                     "bad TLS priority string at position 18");
        expect_error(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem",
                     "NONE:+VERS-TLS1.3:+AES-256-GCM:+AEAD:+GROUP-X25519:+SIGN-RSA-PSS-RSAE-SHA384", -EINVAL,
                     "server-key.pem: its EC/ECDSA key cannot make any signature the TLS priority string allows");
}

static void test_handshake_ok(void **state) {
        const char *hosts[] = { "localhost", "127.0.0.1", "::1" };

        for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
                Side server = { .ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL) };
                Side client = { .ctx = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "ca.pem", NULL),
                                .host = hosts[i] };

                handshake(&server, &client);
                assert_int_equal(server.r, 0);
                assert_int_equal(client.r, 0);
                assert_string_equal(server.identity, "alice");
                assert_int_equal(server.version, GNUTLS_TLS1_3);
                assert_int_equal(client.version, GNUTLS_TLS1_3);
                assert_string_equal(client.cipher, "TLS_AES_256_GCM_SHA384");
                assert_string_equal(server.cipher, "TLS_AES_256_GCM_SHA384");
                assert_string_equal(server.alpn_selected, "h2");
                assert_string_equal(client.alpn_selected, "h2");
                assert_string_equal(client.received, "ok");
                assert_int_equal(client.alert, -1);
                tls_context_unref(server.ctx);
                tls_context_unref(client.ctx);
        }
}

/* A client certificate the server must refuse: the server's reason and the alert the client sees. */
static void refused(const char *cert, const char *key, const char *client_ca, const char *reason, int alert) {
        Side server = { .ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL) };
        Side client = { .ctx = load_context(TLS_ROLE_CLIENT, cert, key, client_ca, NULL), .host = "localhost" };

        handshake(&server, &client);
        assert_int_equal(server.r, -EPROTO);
        assert_string_equal(server.reason, reason);
        assert_string_equal(server.identity, "");
        /* TLS 1.3: the client finished its part; the refusal arrives as an alert */
        assert_string_equal(client.received, "");
        if (client.r == 0)
                assert_int_equal(client.alert, alert);
        else
                assert_int_equal(client.r, -EPROTO);
        if (alert >= 0 && client.alert >= 0)
                assert_non_null(tls_certificate_alert_reason(client.alert));
        tls_context_unref(server.ctx);
        tls_context_unref(client.ctx);
}

static void test_refused_untrusted(void **state) {
        refused("bad/untrusted.pem", "bad/untrusted-key.pem", "ca.pem", "certificate not trusted (unknown CA)",
                GNUTLS_A_UNKNOWN_CA);
}

static void test_refused_expired(void **state) {
        refused("bad/expired.pem", "bad/expired-key.pem", "ca.pem", "certificate expired", GNUTLS_A_CERTIFICATE_EXPIRED);
        assert_string_equal(tls_certificate_alert_reason(GNUTLS_A_CERTIFICATE_EXPIRED), "certificate expired");
}

static void test_refused_server_as_client(void **state) {
        refused("bad/server-as-client.pem", "bad/server-as-client-key.pem", "ca.pem",
                "certificate not valid for client authentication", GNUTLS_A_UNSUPPORTED_CERTIFICATE);
}

/* A client session whose credentials hold no certificate at all. */
static void test_refused_no_client_certificate(void **state) {
        Side server = { .ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL) };
        Side client = { .ctx = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "ca.pem", NULL), .host = "localhost" };
        gnutls_certificate_credentials_t bare;
        _cleanup_free_ char *ca = cert_path("ca.pem");
        int sv[2];
        pthread_t t;

        /* same as handshake(), but the client session's credentials are swapped for CA-only ones */
        assert_int_equal(gnutls_certificate_allocate_credentials(&bare), 0);
        assert_true(gnutls_certificate_set_x509_trust_file(bare, ca, GNUTLS_X509_FMT_PEM) > 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        server.fd = sv[0];
        assert_int_equal(pthread_create(&t, NULL, server_thread, &server), 0);
        {
                _cleanup_tls_session_ TlsSession *s = NULL;
                int r;
                char buf[16];

                assert_int_equal(tls_session_new(&s, client.ctx, sv[1], "localhost"), 0);
                assert_int_equal(gnutls_credentials_set(tls_session_gnutls(s), GNUTLS_CRD_CERTIFICATE, bare), 0);
                while ((r = tls_session_handshake(s)) == -EAGAIN)
                        assert_int_equal(wait_fd(s, sv[1]), 0);
                assert_int_equal(r, 0); /* TLS 1.3: the client thinks it is connected */
                while ((r = gnutls_record_recv(tls_session_gnutls(s), buf, sizeof buf)) == GNUTLS_E_AGAIN)
                        assert_int_equal(wait_fd(s, sv[1]), 0);
                assert_int_equal(r, GNUTLS_E_FATAL_ALERT_RECEIVED);
                assert_int_equal(gnutls_alert_get(tls_session_gnutls(s)), GNUTLS_A_CERTIFICATE_REQUIRED);
        }
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(server.r, -EPROTO);
        assert_string_equal(server.reason, "no client certificate");
        close(sv[0]);
        close(sv[1]);
        gnutls_certificate_free_credentials(bare);
        tls_context_unref(server.ctx);
        tls_context_unref(client.ctx);
}

static void test_refused_tls12(void **state) {
        Side server = { .ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL) };
        Side client = { .ctx = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "ca.pem",
                                    "NORMAL:-VERS-ALL:+VERS-TLS1.2"),
                        .host = "localhost" };

        handshake(&server, &client);
        assert_int_equal(server.r, -EPROTO);
        assert_string_equal(server.reason, "protocol/cipher not acceptable (TLS 1.2 / other cipher offered)");
        assert_int_equal(client.r, -EPROTO);
        tls_context_unref(server.ctx);
        tls_context_unref(client.ctx);
}

static void test_refused_other_cipher(void **state) {
        Side server = { .ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL) };
        Side client = { .ctx = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "ca.pem",
                                    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305"),
                        .host = "localhost" };

        handshake(&server, &client);
        assert_int_equal(server.r, -EPROTO);
        assert_string_equal(server.reason, "protocol/cipher not acceptable (TLS 1.2 / other cipher offered)");
        assert_int_equal(client.r, -EPROTO);
        tls_context_unref(server.ctx);
        tls_context_unref(client.ctx);
}

/* A client offering ALPN but not h2 (a plain GnuTLS session: ours always offers h2). */
static void test_refused_alpn(void **state) {
        Side server = { .ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL) };
        _cleanup_free_ char *ca = cert_path("ca.pem"), *cert = cert_path("alice.pem"), *key = cert_path("alice-key.pem");
        gnutls_datum_t http11 = { (unsigned char *) "http/1.1", 8 };
        gnutls_certificate_credentials_t cred;
        gnutls_session_t g;
        int sv[2], r;
        pthread_t t;

        assert_int_equal(gnutls_certificate_allocate_credentials(&cred), 0);
        assert_true(gnutls_certificate_set_x509_trust_file(cred, ca, GNUTLS_X509_FMT_PEM) > 0);
        assert_int_equal(gnutls_certificate_set_x509_key_file(cred, cert, key, GNUTLS_X509_FMT_PEM), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        server.fd = sv[0];
        assert_int_equal(pthread_create(&t, NULL, server_thread, &server), 0);

        assert_int_equal(gnutls_init(&g, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
        assert_int_equal(gnutls_priority_set_direct(g, TLS_DEFAULT_PRIORITY, NULL), 0);
        assert_int_equal(gnutls_credentials_set(g, GNUTLS_CRD_CERTIFICATE, cred), 0);
        assert_int_equal(gnutls_alpn_set_protocols(g, &http11, 1, 0), 0);
        gnutls_transport_set_int(g, sv[1]);
        while ((r = gnutls_handshake(g)) == GNUTLS_E_AGAIN) {
                struct pollfd p = { .fd = sv[1], .events = gnutls_record_get_direction(g) ? POLLOUT : POLLIN };
                assert_int_equal(poll(&p, 1, 10000), 1);
        }
        assert_int_equal(r, GNUTLS_E_FATAL_ALERT_RECEIVED);
        assert_int_equal(gnutls_alert_get(g), GNUTLS_A_NO_APPLICATION_PROTOCOL);

        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(server.r, -EPROTO);
        assert_string_equal(server.reason, "no common application protocol (ALPN h2 required)");
        gnutls_deinit(g);
        gnutls_certificate_free_credentials(cred);
        close(sv[0]);
        close(sv[1]);
        tls_context_unref(server.ctx);
}

/* The client side: the server's certificate must match the name dialled and chain to our CA. */
static void test_client_verifies_server(void **state) {
        const struct {
                const char *host, *ca, *reason;
        } cases[] = {
                { "127.0.0.2", "ca.pem", "server certificate does not match the host name" },
                { "example.com", "ca.pem", "server certificate does not match the host name" },
                { "localhost", "bad/other-ca.pem", "server certificate not trusted (unknown CA)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Side server = { .ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL) };
                Side client = { .ctx = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", cases[i].ca, NULL),
                                .host = cases[i].host };

                handshake(&server, &client);
                assert_int_equal(client.r, -EPROTO);
                assert_string_equal(client.reason, cases[i].reason);
                assert_int_equal(server.r, -EPROTO);
                tls_context_unref(server.ctx);
                tls_context_unref(client.ctx);
        }

        /* a server presenting a client-only certificate is refused too */
        Side server = { .ctx = load_context(TLS_ROLE_SERVER, "bob.pem", "bob-key.pem", "ca.pem", NULL) };
        Side client = { .ctx = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "ca.pem", NULL), .host = "bob" };
        handshake(&server, &client);
        assert_int_equal(client.r, -EPROTO);
        assert_string_equal(client.reason, "server certificate not valid for server authentication");
        tls_context_unref(server.ctx);
        tls_context_unref(client.ctx);
}

static void test_failure_reasons(void **state) {
        assert_string_equal(tls_failure_reason(TLS_ROLE_SERVER, GNUTLS_E_CERTIFICATE_REQUIRED, 0),
                            "no client certificate");
        assert_string_equal(tls_failure_reason(TLS_ROLE_SERVER, GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR,
                                               GNUTLS_CERT_INVALID | GNUTLS_CERT_EXPIRED),
                            "certificate expired");
        assert_string_equal(tls_failure_reason(TLS_ROLE_SERVER, GNUTLS_E_TIMEDOUT, 0), "handshake timed out");
        assert_string_equal(tls_certificate_alert_reason(GNUTLS_A_UNKNOWN_CA), "not trusted (unknown CA)");
        assert_string_equal(tls_certificate_alert_reason(GNUTLS_A_CERTIFICATE_REQUIRED), "certificate required");
        assert_null(tls_certificate_alert_reason(GNUTLS_A_HANDSHAKE_FAILURE));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_default_priority_parses),
                cmocka_unit_test(test_load_committed_certs),
                cmocka_unit_test(test_load_errors),
                cmocka_unit_test(test_handshake_ok),
                cmocka_unit_test(test_refused_untrusted),
                cmocka_unit_test(test_refused_expired),
                cmocka_unit_test(test_refused_server_as_client),
                cmocka_unit_test(test_refused_no_client_certificate),
                cmocka_unit_test(test_refused_tls12),
                cmocka_unit_test(test_refused_other_cipher),
                cmocka_unit_test(test_refused_alpn),
                cmocka_unit_test(test_client_verifies_server),
                cmocka_unit_test(test_failure_reasons),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
