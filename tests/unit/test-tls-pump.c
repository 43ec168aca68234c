/* SPDX-License-Identifier: MIT */
/*
 * Tests of src/tls/pump.c (and the output batching and read-ahead of
 * src/tls/tls.c it relies on), without the bridge: a server and a client
 * session over a socketpair, each with a pump to its own plaintext
 * socketpair, driven by one poll() loop that waits only for what the pumps
 * say they wait for, so a wrong wait mask shows up as a hang (a failure
 * here, not a stuck test). Checked: streams arrive byte-exact both ways
 * through tiny socket buffers (partial writes of the send buffer) and a slow
 * plaintext reader (back-pressure); idle pumps hold no buffers; records
 * without data (a TLS 1.3 key update) followed by data already read ahead
 * are delivered without waiting for the socket; closing either plaintext
 * side ends the stream cleanly; records that overflow the send buffer keep
 * their order on the wire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "../helpers/tls-certs.h"

#include "tls/pump.h"
#include "tls/tls.h"

#define HANG_MS 10000
#define BUDGET (256u * 1024u)

typedef struct Pair {
        TlsContext *sctx, *cctx;
        TlsSession *ss, *cs;
        int tls[2];    /* the TLS transport: [0] server, [1] client */
        int splain[2]; /* server plaintext: [0] the pump's end, [1] the application's ("gRPC") */
        int cplain[2]; /* client plaintext, the same */
        TlsPump sp, cp;
        unsigned smask, cmask; /* what each pump waits for; TLS_PUMP_MORE to run it */
        bool sdone, cdone;     /* TLS_PUMP_FINISHED seen */
} Pair;

static void make_socketpair(int sv[2], int sndbuf) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        if (sndbuf > 0)
                for (int i = 0; i < 2; i++)
                        assert_int_equal(setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
}

/* Both handshakes in one thread: non-blocking, so step each until both are done. */
static void pair_new(Pair *p, int tls_sndbuf, bool with_pumps) {
        int rs = -EAGAIN, rc = -EAGAIN;

        *p = (Pair) { .smask = TLS_PUMP_MORE, .cmask = TLS_PUMP_MORE };
        p->sctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL);
        p->cctx = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "ca.pem", NULL);
        make_socketpair(p->tls, tls_sndbuf);
        assert_int_equal(tls_session_new(&p->ss, p->sctx, p->tls[0], NULL), 0);
        assert_int_equal(tls_session_new(&p->cs, p->cctx, p->tls[1], "localhost"), 0);
        while (rs == -EAGAIN || rc == -EAGAIN) {
                if (rs == -EAGAIN)
                        rs = tls_session_handshake(p->ss);
                if (rc == -EAGAIN)
                        rc = tls_session_handshake(p->cs);
                if (rs == -EAGAIN && rc == -EAGAIN) {
                        struct pollfd pf[2] = {
                                { p->tls[0], tls_session_wants_write(p->ss) ? POLLOUT : POLLIN },
                                { p->tls[1], tls_session_wants_write(p->cs) ? POLLOUT : POLLIN },
                        };
                        if (tls_session_pending(p->ss) == 0 && tls_session_pending(p->cs) == 0)
                                assert_true(poll(pf, 2, HANG_MS) > 0);
                }
        }
        assert_int_equal(rs, 0);
        assert_int_equal(rc, 0);
        make_socketpair(p->splain, 0);
        make_socketpair(p->cplain, 0);
        if (with_pumps)
                tls_pump_init(&p->sp, p->ss, p->tls[0], p->splain[0]);
        tls_pump_init(&p->cp, p->cs, p->tls[1], p->cplain[0]);
}

static void pair_free(Pair *p) {
        tls_pump_done(&p->sp);
        tls_pump_done(&p->cp);
        tls_session_free(p->ss);
        tls_session_free(p->cs);
        for (int i = 0; i < 2; i++) {
                close(p->tls[i]);
                safe_close(p->splain[i]);
                safe_close(p->cplain[i]);
        }
        tls_context_unref(p->sctx);
        tls_context_unref(p->cctx);
}

static short events(unsigned mask, unsigned in, unsigned out) {
        return (short) (((mask & in) ? POLLIN : 0) | ((mask & out) ? POLLOUT : 0));
}

/* Runs a pump when what it waits for happened (or it asked to run again). */
static void run_pump(TlsPump *pump, unsigned *mask, bool *done, const struct pollfd *tcp, const struct pollfd *plain) {
        if (*done)
                return;
        if (!(*mask & TLS_PUMP_MORE) && !tcp->revents && !plain->revents)
                return;
        *mask = tls_pump_run(pump, BUDGET);
        if (*mask & TLS_PUMP_FINISHED)
                *done = true;
}

/* One round: poll the pumps' wait sets plus the application fds (app_events),
 * run the pumps whose readiness came. Returns poll()'s count (0 = nothing
 * happened within timeout_ms). */
static int pair_step(Pair *p, short sapp_events, short capp_events, struct pollfd app[2], int timeout_ms) {
        bool more = (!p->sdone && (p->smask & TLS_PUMP_MORE)) || (!p->cdone && (p->cmask & TLS_PUMP_MORE));
        struct pollfd pf[6] = {
                { p->sdone ? -1 : p->tls[0], events(p->smask, TLS_PUMP_TCP_IN, TLS_PUMP_TCP_OUT) },
                { p->sdone ? -1 : p->splain[0], events(p->smask, TLS_PUMP_PLAIN_IN, TLS_PUMP_PLAIN_OUT) },
                { p->cdone ? -1 : p->tls[1], events(p->cmask, TLS_PUMP_TCP_IN, TLS_PUMP_TCP_OUT) },
                { p->cdone ? -1 : p->cplain[0], events(p->cmask, TLS_PUMP_PLAIN_IN, TLS_PUMP_PLAIN_OUT) },
                { p->splain[1], sapp_events },
                { p->cplain[1], capp_events },
        };
        int n = poll(pf, 6, more ? 0 : timeout_ms);

        assert_true(n >= 0);
        run_pump(&p->sp, &p->smask, &p->sdone, &pf[0], &pf[1]);
        run_pump(&p->cp, &p->cmask, &p->cdone, &pf[2], &pf[3]);
        app[0] = pf[4];
        app[1] = pf[5];
        return more ? 1 : n;
}

static void fill_random(uint8_t *buf, size_t size) {
        uint64_t x = 0x9e3779b97f4a7c15ull ^ size;

        for (size_t i = 0; i < size; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf[i] = (uint8_t) x;
        }
}

/* Waits until nothing happens for a while: both pumps idle. */
static void pair_settle(Pair *p) {
        struct pollfd app[2];

        for (int i = 0; i < 1000; i++)
                if (pair_step(p, 0, 0, app, 100) == 0)
                        return;
        fail_msg("the pumps never went idle");
}

/* Reads until EOF on fd (non-blocking), driving the pumps. */
static void pair_expect_eof(Pair *p, int fd) {
        struct pollfd app[2];
        char buf[256];

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n == 0)
                        return;
                assert_true(n < 0 && errno == EAGAIN); /* no stray data */
                if (pair_step(p, fd == p->splain[1] ? POLLIN : 0, fd == p->cplain[1] ? POLLIN : 0, app, HANG_MS) == 0)
                        fail_msg("no EOF: hang");
        }
}

/* 24 MiB down (server -> client, the `logs -f` direction) and 3 MiB up at
 * the same time, through 4 KiB TLS socket buffers, with the client
 * application reading slowly at first. */
static void test_stream_exact_both_ways(void **state) {
        const size_t dsize = 24u << 20, usize = 3u << 20;
        uint8_t *down = malloc(dsize), *up = malloc(usize), *rdown = malloc(dsize), *rup = malloc(usize);
        size_t down_w = 0, down_r = 0, up_w = 0, up_r = 0;
        unsigned steps = 0;
        Pair p;

        assert_non_null(down);
        assert_non_null(up);
        assert_non_null(rdown);
        assert_non_null(rup);
        fill_random(down, dsize);
        fill_random(up, usize);
        pair_new(&p, 4096, true);

        while (down_r < dsize || up_r < usize) {
                struct pollfd app[2];
                short se = (short) ((down_w < dsize ? POLLOUT : 0) | (up_r < usize ? POLLIN : 0));
                short ce = (short) ((up_w < usize ? POLLOUT : 0) | (down_r < dsize ? POLLIN : 0));
                ssize_t n;

                if (pair_step(&p, se, ce, app, HANG_MS) == 0)
                        fail_msg("hang: down %zu/%zu up %zu/%zu, server waits 0x%x, client waits 0x%x", down_r, dsize,
                                 up_r, usize, p.smask, p.cmask);
                steps++;
                if (app[0].revents & POLLOUT) {
                        n = send(p.splain[1], down + down_w, MIN(dsize - down_w, (size_t) 1 << 20), MSG_DONTWAIT);
                        if (n > 0)
                                down_w += (size_t) n;
                }
                if (app[1].revents & POLLOUT) {
                        n = send(p.cplain[1], up + up_w, MIN(usize - up_w, (size_t) 100000), MSG_DONTWAIT);
                        if (n > 0)
                                up_w += (size_t) n;
                }
                if (app[0].revents & POLLIN) {
                        n = recv(p.splain[1], rup + up_r, usize - up_r, MSG_DONTWAIT);
                        assert_true(n > 0 || (n < 0 && errno == EAGAIN));
                        if (n > 0)
                                up_r += (size_t) n;
                }
                if (app[1].revents & POLLIN) {
                        /* slow reader for the first 4 MiB: the pumps must hold back */
                        size_t want = down_r < (4u << 20) ? 3000 + steps % 5000 : dsize - down_r;
                        n = recv(p.cplain[1], rdown + down_r, MIN(want, dsize - down_r), MSG_DONTWAIT);
                        assert_true(n > 0 || (n < 0 && errno == EAGAIN));
                        if (n > 0)
                                down_r += (size_t) n;
                }
        }
        assert_memory_equal(down, rdown, dsize);
        assert_memory_equal(up, rup, usize);

        /* idle: no buffers held on either side */
        pair_settle(&p);
        assert_int_equal(tls_pump_buffer_memory(&p.sp), 0);
        assert_int_equal(tls_pump_buffer_memory(&p.cp), 0);
        assert_int_equal(tls_session_unsent(p.ss), 0);
        assert_int_equal(tls_session_unsent(p.cs), 0);

        /* the server application closes: close_notify, the client application sees EOF */
        close(TAKE_FD(p.splain[1]));
        pair_expect_eof(&p, p.cplain[1]);
        /* then the client application closes: both pumps finish */
        close(TAKE_FD(p.cplain[1]));
        for (int i = 0; i < 1000 && !(p.sdone && p.cdone); i++) {
                struct pollfd app[2];
                assert_true(pair_step(&p, 0, 0, app, HANG_MS) > 0);
        }
        assert_true(p.sdone);
        assert_true(p.cdone);
        assert_int_equal(p.cp.error, 0);
        assert_int_equal(p.sp.error, 0);

        pair_free(&p);
        free(down);
        free(up);
        free(rdown);
        free(rup);
}

/* The server sends a key update (a record without application data, asking
 * the client to update too) and data right behind it: the client's read-ahead
 * takes both in one recv(), GnuTLS says AGAIN after the key update, and the
 * pump must go on with the buffered data instead of waiting for the socket
 * (which shows nothing more). The client's own key update must reach the
 * server before the data it sends afterwards. */
static void test_record_without_data_then_buffered_data(void **state) {
        gnutls_session_t g;
        char msg[4000], buf[sizeof msg], reply[64];
        size_t got = 0, rgot = 0;
        ssize_t n;
        Pair p;

        pair_new(&p, 0, false); /* the server side is driven by hand */
        p.sdone = true;
        g = tls_session_gnutls(p.ss);
        for (size_t i = 0; i < sizeof msg; i++)
                msg[i] = (char) ('a' + i % 26);

        /* one flight: KeyUpdate(update_requested), then data */
        assert_int_equal(gnutls_session_key_update(g, GNUTLS_KU_PEER), 0);
        assert_int_equal(gnutls_record_send(g, msg, sizeof msg), (ssize_t) sizeof msg);

        while (got < sizeof msg) {
                struct pollfd app[2];
                if (pair_step(&p, 0, POLLIN, app, HANG_MS) == 0)
                        fail_msg("hang after a record without data: %zu/%zu bytes delivered", got, sizeof msg);
                if (app[1].revents & POLLIN) {
                        n = recv(p.cplain[1], buf + got, sizeof buf - got, MSG_DONTWAIT);
                        assert_true(n > 0 || (n < 0 && errno == EAGAIN));
                        if (n > 0)
                                got += (size_t) n;
                }
        }
        assert_memory_equal(msg, buf, sizeof msg);

        /* the client answers after its key update: the server decrypts it with the new keys */
        assert_int_equal(send(p.cplain[1], "after key update", 16, 0), 16);
        for (int i = 0; rgot < 16; i++) {
                struct pollfd app[2];
                if (i > HANG_MS / 10)
                        fail_msg("the server never got the client's data after the key update");
                assert_true(pair_step(&p, 0, 0, app, 10) >= 0);
                n = gnutls_record_recv(g, reply + rgot, sizeof reply - rgot);
                if (n == GNUTLS_E_AGAIN)
                        continue;
                assert_true(n > 0);
                rgot += (size_t) n;
        }
        assert_memory_equal(reply, "after key update", 16);

        pair_free(&p);
}

/* Reads what the client session can decrypt now (non-blocking) into buf. */
static void drain_client(TlsSession *cs, uint8_t *buf, size_t size, size_t *got) {
        while (*got < size) {
                ssize_t n = gnutls_record_recv(tls_session_gnutls(cs), buf + *got, size - *got);
                if (n == GNUTLS_E_AGAIN && tls_session_pending(cs) > 0)
                        continue;
                if (n == GNUTLS_E_AGAIN)
                        return;
                if (n <= 0)
                        fail_msg("client record_recv: %s (%zd), %zu bytes received", gnutls_strerror((int) n), n, *got);
                *got += (size_t) n;
        }
}

/* Batching used without the pump's discipline (no flush when the buffer is
 * full): records that do not fit go straight to the socket behind what is
 * buffered, partial writes and a full socket included, and the stream still
 * arrives in order. */
static void test_batching_overflow_keeps_order(void **state) {
        const size_t size = 40u * TLS_RECORD_MAX + 1234;
        uint8_t *data = malloc(size), *got_data = malloc(size);
        gnutls_session_t g;
        size_t off = 0, got = 0;
        Pair p;

        assert_non_null(data);
        assert_non_null(got_data);
        fill_random(data, size);
        pair_new(&p, 4096, false);
        g = tls_session_gnutls(p.ss);
        tls_session_batch_output(p.ss, true);

        while (off < size) {
                ssize_t n = gnutls_record_send(g, data + off, MIN(size - off, (size_t) TLS_RECORD_MAX));
                if (n == GNUTLS_E_AGAIN) {
                        /* the same record again once the reader made room */
                        drain_client(p.cs, got_data, size, &got);
                        int f = tls_session_flush(p.ss);
                        assert_true(f == 0 || f == -EAGAIN);
                        continue;
                }
                assert_true(n > 0);
                off += (size_t) n;
        }
        for (int i = 0; got < size; i++) {
                struct pollfd pf = { p.tls[1], POLLIN };
                int f = tls_session_flush(p.ss);
                assert_true(f == 0 || f == -EAGAIN);
                drain_client(p.cs, got_data, size, &got);
                if (got < size && f == 0 && tls_session_pending(p.cs) == 0)
                        assert_true(poll(&pf, 1, HANG_MS) > 0);
                assert_true(i < 100000);
        }
        assert_int_equal(tls_session_unsent(p.ss), 0);
        assert_memory_equal(data, got_data, size);

        pair_free(&p);
        free(data);
        free(got_data);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stream_exact_both_ways),
                cmocka_unit_test(test_record_without_data_then_buffered_data),
                cmocka_unit_test(test_batching_overflow_keeps_order),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
