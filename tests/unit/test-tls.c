/* SPDX-License-Identifier: MIT */
/*
 * Tests of src/tls/tls.c: contexts load the committed development
 * certificates and explain bad files; a server and a client session shake
 * hands over a socketpair (one thread each) with the intended algorithms, and
 * the certificates in certs/bad are refused with the right reason on the
 * server and the right alert on the client; a CRL refuses the certificates
 * it lists, by name and serial, and only those.
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
#include <time.h>
#include <unistd.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <cmocka.h>

#include "../helpers/tls-certs.h"

#include "tls/tls.h"

typedef struct Side {
        TlsContext *ctx;
        int fd;
        const char *host;      /* client: the name to verify */
        int r;                 /* handshake result */
        char reason[192];
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

/* Revocation --------------------------------------------------------------------- */

/* Imports certs/NAME (PEM) into crt or key (whichever is not NULL). */
static void import_cert_file(const char *name, gnutls_x509_crt_t crt, gnutls_x509_privkey_t key) {
        _cleanup_free_ char *p = cert_path(name);
        gnutls_datum_t d = {};

        assert_int_equal(gnutls_load_file(p, &d), 0);
        if (crt)
                assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
        else
                assert_int_equal(gnutls_x509_privkey_import(key, &d, GNUTLS_X509_FMT_PEM), 0);
        gnutls_free(d.data);
}

/* Writes to path a CRL signed by certs/CA.pem (+ CA-key.pem) that lists the
 * certificates certs/NAME.pem of revoked[] (NULL-terminated), current from
 * this_update to next_update. */
static void make_crl(const char *path, const char *ca, const char *const *revoked, time_t this_update,
                     time_t next_update) {
        _cleanup_free_ char *ca_pem = NULL, *ca_key = NULL;
        gnutls_datum_t out = {};
        gnutls_x509_crt_t issuer;
        gnutls_x509_privkey_t x509_key;
        gnutls_privkey_t key;
        gnutls_x509_crl_t crl;
        FILE *f;

        assert_true(asprintf(&ca_pem, "%s.pem", ca) > 0);
        assert_true(asprintf(&ca_key, "%s-key.pem", ca) > 0);
        assert_int_equal(gnutls_x509_crl_init(&crl), 0);
        assert_int_equal(gnutls_x509_crt_init(&issuer), 0);
        assert_int_equal(gnutls_x509_privkey_init(&x509_key), 0);
        assert_int_equal(gnutls_privkey_init(&key), 0);
        import_cert_file(ca_pem, issuer, NULL);
        import_cert_file(ca_key, NULL, x509_key);
        assert_int_equal(gnutls_privkey_import_x509(key, x509_key, 0), 0);
        for (size_t i = 0; revoked && revoked[i]; i++) {
                _cleanup_free_ char *name = NULL;
                gnutls_x509_crt_t crt;
                assert_true(asprintf(&name, "%s.pem", revoked[i]) > 0);
                assert_int_equal(gnutls_x509_crt_init(&crt), 0);
                import_cert_file(name, crt, NULL);
                assert_int_equal(gnutls_x509_crl_set_crt(crl, crt, this_update), 0);
                gnutls_x509_crt_deinit(crt);
        }
        assert_int_equal(gnutls_x509_crl_set_version(crl, 2), 0);
        assert_int_equal(gnutls_x509_crl_set_this_update(crl, this_update), 0);
        assert_int_equal(gnutls_x509_crl_set_next_update(crl, next_update), 0);
        assert_int_equal(gnutls_x509_crl_privkey_sign(crl, issuer, key, GNUTLS_DIG_SHA384, 0), 0);
        assert_int_equal(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &out), 0);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(out.data, 1, out.size, f), out.size);
        assert_int_equal(fclose(f), 0);
        gnutls_free(out.data);
        gnutls_x509_crl_deinit(crl);
        gnutls_privkey_deinit(key);
        gnutls_x509_privkey_deinit(x509_key);
        gnutls_x509_crt_deinit(issuer);
}

/* A server context with the CRL at path; fails the test if it does not load. */
static TlsContext *server_with_crl(const char *path) {
        _cleanup_free_ char *err = NULL;
        TlsContext *ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL);
        TlsCrlInfo info;

        if (tls_context_set_crl(ctx, path, &info, &err) < 0)
                fail_msg("loading CRL %s: %s", path, err ?: "(no message)");
        return ctx;
}

/* One handshake of client NAME against server: the server's reason ("" when accepted). */
static void connect_as(TlsContext *server_ctx, const char *name, Side *server, Side *client) {
        _cleanup_free_ char *c = NULL, *k = NULL;

        assert_true(asprintf(&c, "%s.pem", name) > 0);
        assert_true(asprintf(&k, "%s-key.pem", name) > 0);
        *server = (Side) { .ctx = server_ctx };
        *client = (Side) { .ctx = load_context(TLS_ROLE_CLIENT, c, k, "ca.pem", NULL), .host = "localhost" };
        handshake(server, client);
        tls_context_unref(client->ctx);
}

/* The serial of certs/NAME.pem in lowercase hex, as the refusal names it. */
static void serial_hex(const char *name, char *buf, size_t size) {
        unsigned char serial[32];
        size_t n = sizeof serial;
        gnutls_x509_crt_t crt;

        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        import_cert_file(name, crt, NULL);
        assert_int_equal(gnutls_x509_crt_get_serial(crt, serial, &n), 0);
        gnutls_x509_crt_deinit(crt);
        assert_true(2 * n < size);
        for (size_t i = 0; i < n; i++)
                snprintf(buf + 2 * i, 3, "%02x", serial[i]);
}

/* alice revoked: refused with its own reason and alert; bob still served;
 * a new context with a CRL that adds bob (what a reload builds) refuses bob. */
static void test_revoked_client(void **state) {
        char dir[] = "/tmp/test-tls-crl.XXXXXX", crl1[64], crl2[64], alice_serial[80], expected[192];
        const char *only_alice[] = { "alice", NULL }, *alice_bob[] = { "alice", "bob", NULL };
        time_t now = time(NULL);
        TlsContext *ctx;
        Side server, client;

        assert_non_null(mkdtemp(dir));
        snprintf(crl1, sizeof crl1, "%s/crl1.pem", dir);
        snprintf(crl2, sizeof crl2, "%s/crl2.pem", dir);
        make_crl(crl1, "ca", only_alice, now - 60, now + 86400);
        make_crl(crl2, "ca", alice_bob, now - 60, now + 86400);
        serial_hex("alice.pem", alice_serial, sizeof alice_serial);
        snprintf(expected, sizeof expected, "client certificate of 'alice' (serial %s) is revoked", alice_serial);

        ctx = server_with_crl(crl1);
        connect_as(ctx, "alice", &server, &client);
        assert_int_equal(server.r, -EPROTO);
        assert_string_equal(server.reason, expected);
        assert_string_equal(server.identity, "");
        assert_string_equal(client.received, "");
        if (client.r == 0) /* TLS 1.3: the refusal arrives after the client's part */
                assert_int_equal(client.alert, GNUTLS_A_CERTIFICATE_REVOKED);
        connect_as(ctx, "bob", &server, &client);
        assert_int_equal(server.r, 0);
        assert_string_equal(server.identity, "bob");
        assert_string_equal(client.received, "ok");
        tls_context_unref(ctx);

        ctx = server_with_crl(crl2);
        connect_as(ctx, "bob", &server, &client);
        assert_int_equal(server.r, -EPROTO);
        assert_non_null(strstr(server.reason, "client certificate of 'bob' (serial "));
        assert_non_null(strstr(server.reason, ") is revoked"));
        connect_as(ctx, "charlie", &server, &client);
        assert_int_equal(server.r, 0);
        assert_string_equal(server.identity, "charlie");
        tls_context_unref(ctx);

        assert_string_equal(tls_certificate_alert_reason(GNUTLS_A_CERTIFICATE_REVOKED),
                            "certificate revoked (the server's operator must issue a new one)");
        assert_int_equal(unlink(crl1), 0);
        assert_int_equal(unlink(crl2), 0);
        assert_int_equal(rmdir(dir), 0);
}

/* A CRL that is out of date, not yet valid, from another CA, or no CRL at all is refused at load. */
static void expect_crl_error(const char *path, int expected_r, const char *expected_msg) {
        _cleanup_free_ char *err = NULL;
        TlsContext *ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL);
        int r = tls_context_set_crl(ctx, path, NULL, &err);

        assert_int_equal(r, expected_r);
        assert_non_null(err);
        if (!strstr(err, expected_msg))
                fail_msg("message \"%s\" does not contain \"%s\"", err, expected_msg);
        tls_context_unref(ctx);
}

static void test_crl_load_errors(void **state) {
        char dir[] = "/tmp/test-tls-crl.XXXXXX", path[64];
        _cleanup_free_ char *readme = cert_path("README");
        const char *alice[] = { "alice", NULL };
        time_t now = time(NULL);

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/crl.pem", dir);
        expect_crl_error(path, -ENOENT, "crl.pem: No such file or directory");
        expect_crl_error(readme, -EBADMSG, "README: not a PEM certificate revocation list");
        make_crl(path, "ca", alice, now - 2 * 86400, now - 86400);
        expect_crl_error(path, -EKEYEXPIRED, "out of date since ");
        make_crl(path, "ca", alice, now + 86400, now + 2 * 86400);
        expect_crl_error(path, -EKEYEXPIRED, "issued in the future");
        make_crl(path, "bad/other-ca", alice, now - 60, now + 86400);
        expect_crl_error(path, -EBADMSG, "not signed by the CA in ");
        make_crl(path, "ca", NULL, now - 60, now + 86400); /* an empty CRL is fine */
        tls_context_unref(server_with_crl(path));
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
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
                cmocka_unit_test(test_revoked_client),
                cmocka_unit_test(test_crl_load_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
