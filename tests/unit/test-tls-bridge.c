/* SPDX-License-Identifier: MIT */
/*
 * Tests of the TLS bridge (src/tls/bridge.c) driven by the client
 * (src/tls/client.c) over loopback TCP with the committed development
 * certificates: identity, byte-exact transfer of 64 MiB both ways, close in
 * either direction, handshake deadline, connection limit, refusal reasons on
 * both ends, context reload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <cmocka.h>

#include "../helpers/tls-certs.h"

#include "tls/bridge.h"
#include "tls/client.h"

#define MAX_EVENTS 64

typedef struct Events {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct {
                uint64_t id;
                int fd;
                char identity[64];
                char peer[64];
        } accepted[MAX_EVENTS];
        unsigned n_accepted;
        struct {
                char peer[64];
                char reason[128];
        } refused[MAX_EVENTS];
        unsigned n_refused;
        struct {
                uint64_t id;
                int fd;
                unsigned count; /* the bridge's connection count as closed() ran */
        } closed[MAX_EVENTS];
        TlsBridge *bridge; /* set once the bridge exists; read by on_closed */
        unsigned n_closed;
        unsigned n_kernel_tls;
        int kernel_tls_error;
        /* test_accept_retry: on_refused holds the bridge thread on "accept failed"
         * until the test sets release (bounded: 10 s). */
        bool hold_accept_failure, release;
        unsigned holding;
} Events;

static void on_accepted(void *userdata, uint64_t id, int fd, const char *identity, const char *peer) {
        Events *e = userdata;
        pthread_mutex_lock(&e->lock);
        if (e->n_accepted < MAX_EVENTS) {
                e->accepted[e->n_accepted].id = id;
                e->accepted[e->n_accepted].fd = fd;
                snprintf(e->accepted[e->n_accepted].identity, 64, "%s", identity);
                snprintf(e->accepted[e->n_accepted].peer, 64, "%s", peer);
                e->n_accepted++;
        } else
                close(fd);
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
}

static void on_refused(void *userdata, const char *peer, const char *reason) {
        Events *e = userdata;
        pthread_mutex_lock(&e->lock);
        if (e->n_refused < MAX_EVENTS) {
                snprintf(e->refused[e->n_refused].peer, 64, "%s", peer);
                snprintf(e->refused[e->n_refused].reason, 128, "%s", reason);
                e->n_refused++;
        }
        pthread_cond_broadcast(&e->cond);
        if (e->hold_accept_failure && strncmp(reason, "accept failed", 13) == 0) {
                struct timespec deadline;
                clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_sec += 10;
                e->hold_accept_failure = false;
                e->holding = 1;
                pthread_cond_broadcast(&e->cond);
                while (!e->release)
                        if (pthread_cond_timedwait(&e->cond, &e->lock, &deadline) == ETIMEDOUT)
                                break;
        }
        pthread_mutex_unlock(&e->lock);
}

static void on_closed(void *userdata, uint64_t id, int fd) {
        Events *e = userdata;
        pthread_mutex_lock(&e->lock);
        if (e->n_closed < MAX_EVENTS) {
                e->closed[e->n_closed].id = id;
                e->closed[e->n_closed].fd = fd;
                e->closed[e->n_closed].count = e->bridge ? tls_bridge_connection_count(e->bridge) : ~0u;
                e->n_closed++;
        }
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
}

static void on_kernel_tls(void *userdata, int error) {
        Events *e = userdata;
        pthread_mutex_lock(&e->lock);
        e->n_kernel_tls++;
        e->kernel_tls_error = error;
        pthread_mutex_unlock(&e->lock);
}

static const TlsBridgeOps ops = {
        .accepted = on_accepted,
        .refused = on_refused,
        .closed = on_closed,
        .kernel_tls = on_kernel_tls,
};

/* Waits until *counter >= n (under the lock) or 10 s pass. */
static bool wait_count(Events *e, unsigned *counter, unsigned n) {
        struct timespec deadline;
        bool ok;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        pthread_mutex_lock(&e->lock);
        while (*counter < n)
                if (pthread_cond_timedwait(&e->cond, &e->lock, &deadline) == ETIMEDOUT)
                        break;
        ok = *counter >= n;
        pthread_mutex_unlock(&e->lock);
        return ok;
}

static uint64_t now_msec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

typedef struct Fixture {
        Events events;
        TlsBridge *bridge;
        TlsContext *server_ctx;
        TlsContext *alice;
        char port[16];
        int listen_fd; /* with defer_listener: not yet handed to the bridge */
} Fixture;

/* A bridge on a loopback listener. With defer_listener the listener is left in
 * f->listen_fd for the test to hand over (tls_bridge_add_listener) when it likes. */
static Fixture *fixture_new_config(const TlsBridgeConfig *config, bool defer_listener) {
        Fixture *f = calloc(1, sizeof *f);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd;

        assert_non_null(f);
        f->listen_fd = -1;
        pthread_mutex_init(&f->events.lock, NULL);
        pthread_cond_init(&f->events.cond, NULL);
        f->server_ctx = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL);
        f->alice = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "ca.pem", NULL);

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(listen(fd, 64), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        snprintf(f->port, sizeof f->port, "%u", ntohs(sa.sin_port));

        assert_int_equal(tls_bridge_new(&f->bridge, f->server_ctx, config, &ops, &f->events), 0);
        pthread_mutex_lock(&f->events.lock);
        f->events.bridge = f->bridge;
        pthread_mutex_unlock(&f->events.lock);
        if (defer_listener)
                f->listen_fd = fd;
        else
                assert_int_equal(tls_bridge_add_listener(f->bridge, fd), 0);
        assert_int_equal(tls_bridge_start(f->bridge), 0);
        return f;
}

static Fixture *fixture_new(unsigned max_connections, uint64_t handshake_timeout_usec) {
        TlsBridgeConfig config = { .max_connections = max_connections,
                                   .handshake_timeout_usec = handshake_timeout_usec };
        return fixture_new_config(&config, false);
}

static void fixture_free(Fixture *f) {
        tls_bridge_free(f->bridge);
        if (f->listen_fd >= 0)
                close(f->listen_fd);
        for (unsigned i = 0; i < f->events.n_accepted; i++)
                if (f->events.accepted[i].fd >= 0)
                        close(f->events.accepted[i].fd);
        tls_context_unref(f->server_ctx);
        tls_context_unref(f->alice);
        free(f);
}

static int raw_connect(const char *port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                  .sin_port = htons((uint16_t) atoi(port)) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        return fd;
}

/* Reads until EOF or error within timeout_ms: returns 0 for EOF, -errno for an error, -ETIMEDOUT. */
static int wait_eof(int fd, int timeout_ms) {
        uint64_t end = now_msec() + (uint64_t) timeout_ms;
        char buf[4096];

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int left = (int) (end - MIN(end, now_msec()));
                if (poll(&p, 1, left) == 0)
                        return -ETIMEDOUT;
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n == 0)
                        return 0;
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return -errno;
        }
}

static void write_all(int fd, const void *data, size_t size) {
        const char *p = data;
        while (size > 0) {
                struct pollfd pf = { .fd = fd, .events = POLLOUT };
                ssize_t n = send(fd, p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        assert_int_equal(poll(&pf, 1, 10000), 1);
                        continue;
                }
                assert_true(n > 0);
                p += n;
                size -= (size_t) n;
        }
}

static void read_exact(int fd, void *data, size_t size) {
        char *p = data;
        while (size > 0) {
                struct pollfd pf = { .fd = fd, .events = POLLIN };
                ssize_t n = recv(fd, p, size, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        assert_int_equal(poll(&pf, 1, 10000), 1);
                        continue;
                }
                assert_true(n > 0);
                p += n;
                size -= (size_t) n;
        }
}

static void fill_random(uint8_t *buf, size_t size) {
        uint64_t x;
        assert_int_equal(getrandom(&x, sizeof x, 0), (ssize_t) sizeof x);
        x |= 1;
        for (size_t i = 0; i < size; i += 8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(buf + i, &x, MIN((size_t) 8, size - i));
        }
}

/* Connects alice; returns the client and sets *client_fd and *server_fd (the fd gRPC would get). */
static TlsClient *connect_alice(Fixture *f, const char *host, int *client_fd, int *server_fd, uint64_t *conn_id) {
        TlsClient *c = NULL;
        TlsClientFailure failure = TLS_CLIENT_HANDSHAKE;
        _cleanup_free_ char *msg = NULL;
        unsigned n = f->events.n_accepted;
        int r;

        r = tls_client_connect(f->alice, host, f->port, 5000000, 0, &c, client_fd, &failure, &msg);
        if (r < 0)
                fail_msg("connect: %s", msg ?: "?");
        assert_int_equal(failure, TLS_CLIENT_OK);
        assert_true(wait_count(&f->events, &f->events.n_accepted, n + 1));
        pthread_mutex_lock(&f->events.lock);
        *server_fd = f->events.accepted[n].fd;
        f->events.accepted[n].fd = -1; /* the test owns it now */
        if (conn_id)
                *conn_id = f->events.accepted[n].id;
        assert_string_equal(f->events.accepted[n].identity, "alice");
        pthread_mutex_unlock(&f->events.lock);
        return c;
}

static bool has_closed(Events *e, uint64_t id) {
        bool found = false;
        pthread_mutex_lock(&e->lock);
        for (unsigned i = 0; i < e->n_closed; i++)
                found = found || e->closed[i].id == id;
        pthread_mutex_unlock(&e->lock);
        return found;
}

static bool wait_closed(Events *e, uint64_t id) {
        uint64_t end = now_msec() + 10000;
        while (now_msec() < end) {
                if (has_closed(e, id))
                        return true;
                usleep(5000);
        }
        return false;
}

/* Waits (at most 10 s) until the bridge counts n connections (the count
 * drops on the bridge thread, the test reads it on its own). */
static unsigned wait_connection_count(TlsBridge *b, unsigned n) {
        uint64_t end = now_msec() + 10000;
        unsigned got;

        while ((got = tls_bridge_connection_count(b)) != n && now_msec() < end)
                usleep(2000);
        return got;
}

static bool has_refused(Events *e, const char *reason) {
        bool found = false;
        pthread_mutex_lock(&e->lock);
        for (unsigned i = 0; i < e->n_refused; i++)
                found = found || strcmp(e->refused[i].reason, reason) == 0;
        pthread_mutex_unlock(&e->lock);
        return found;
}

static void test_accept_identity_and_fds(void **state) {
        Fixture *f = fixture_new(0, 0);
        int cfd, sfd, flags;
        uint64_t id;
        struct rlimit rl;
        TlsClient *c = connect_alice(f, "localhost", &cfd, &sfd, &id);

        assert_true(id > 0);
        pthread_mutex_lock(&f->events.lock);
        assert_true(strncmp(f->events.accepted[0].peer, "127.0.0.1:", 10) == 0);
        pthread_mutex_unlock(&f->events.lock);
        /* the gRPC fd: non-blocking, close-on-exec, from the high range when the limit allows */
        flags = fcntl(sfd, F_GETFL);
        assert_true(flags & O_NONBLOCK);
        assert_true(fcntl(sfd, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur > 1100)
                assert_true(sfd >= 1000);
        assert_true(fcntl(cfd, F_GETFL) & O_NONBLOCK);
        assert_int_equal(tls_bridge_connection_count(f->bridge), 1);

        /* small exchange both ways */
        char buf[5];
        write_all(sfd, "hello", 5);
        read_exact(cfd, buf, 5);
        assert_memory_equal(buf, "hello", 5);
        write_all(cfd, "world", 5);
        read_exact(sfd, buf, 5);
        assert_memory_equal(buf, "world", 5);
        assert_null(tls_client_failure_message(c));

        /* Kernel TLS was tried and the outcome said once: in use (0), or this
         * kernel has no tls module (-ENOENT; the fd is then a socketpair). */
        pthread_mutex_lock(&f->events.lock);
        assert_int_equal(f->events.n_kernel_tls, 1);
        assert_true(f->events.kernel_tls_error == 0 || f->events.kernel_tls_error == -ENOENT);
        pthread_mutex_unlock(&f->events.lock);

        close(cfd);
        close(sfd);
        tls_client_free(c);
        fixture_free(f);
}

/* 64 MiB of random bytes each way at the same time, compared byte for byte. */
static void test_transfer_64mib_both_ways(void **state) {
        const size_t size = 64u * 1024 * 1024;
        Fixture *f = fixture_new(0, 0);
        int cfd, sfd;
        uint64_t id;
        TlsClient *c = connect_alice(f, "127.0.0.1", &cfd, &sfd, &id);
        uint8_t *down = malloc(size), *up = malloc(size), *rdown = malloc(size), *rup = malloc(size);
        size_t down_w = 0, down_r = 0, up_w = 0, up_r = 0;

        assert_non_null(down);
        assert_non_null(up);
        assert_non_null(rdown);
        assert_non_null(rup);
        fill_random(down, size);
        fill_random(up, size);

        /* sfd plays gRPC on the server, cfd gRPC on the client */
        while (down_r < size || up_r < size) {
                struct pollfd p[2] = {
                        { .fd = sfd, .events = (short) ((down_w < size ? POLLOUT : 0) | (up_r < size ? POLLIN : 0)) },
                        { .fd = cfd, .events = (short) ((up_w < size ? POLLOUT : 0) | (down_r < size ? POLLIN : 0)) },
                };
                assert_true(poll(p, 2, 20000) > 0);
                ssize_t n;
                if (p[0].revents & POLLOUT) {
                        n = send(sfd, down + down_w, MIN(size - down_w, (size_t) 1 << 20), MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (n > 0)
                                down_w += (size_t) n;
                }
                if (p[1].revents & POLLOUT) {
                        n = send(cfd, up + up_w, MIN(size - up_w, (size_t) 1 << 20), MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (n > 0)
                                up_w += (size_t) n;
                }
                if (p[0].revents & POLLIN) {
                        n = recv(sfd, rup + up_r, size - up_r, MSG_DONTWAIT);
                        assert_true(n > 0 || (n < 0 && errno == EAGAIN));
                        if (n > 0)
                                up_r += (size_t) n;
                }
                if (p[1].revents & POLLIN) {
                        n = recv(cfd, rdown + down_r, size - down_r, MSG_DONTWAIT);
                        assert_true(n > 0 || (n < 0 && errno == EAGAIN));
                        if (n > 0)
                                down_r += (size_t) n;
                }
        }
        assert_int_equal(down_r, size);
        assert_int_equal(up_r, size);
        assert_memory_equal(down, rdown, size);
        assert_memory_equal(up, rup, size);

        /* gRPC on the server closes: the bridge sends close_notify, the client side sees EOF */
        close(sfd);
        assert_true(wait_closed(&f->events, id));
        assert_int_equal(wait_eof(cfd, 5000), 0);
        assert_null(tls_client_failure_message(c));
        close(cfd);
        tls_client_free(c);
        fixture_free(f);
        free(down);
        free(up);
        free(rdown);
        free(rup);
}

/* The client side closes first: the bridge shuts the gRPC end for writing; when
 * gRPC closes its end the connection is gone and closed() fires. */
static void test_client_closes_first(void **state) {
        Fixture *f = fixture_new(0, 0);
        int cfd, sfd;
        uint64_t id;
        TlsClient *c = connect_alice(f, "localhost", &cfd, &sfd, &id);
        char buf[3];

        write_all(cfd, "bye", 3);
        close(cfd); /* the client's gRPC goes away: close_notify to the server */
        read_exact(sfd, buf, 3);
        assert_memory_equal(buf, "bye", 3);
        assert_int_equal(wait_eof(sfd, 5000), 0); /* SHUT_WR from the bridge */
        assert_false(has_closed(&f->events, id));
        close(sfd);
        assert_true(wait_closed(&f->events, id));
        /* Whoever hears of the close (the daemon recomputes STATUS) already
         * sees the connection gone from the count. */
        pthread_mutex_lock(&f->events.lock);
        assert_int_equal(f->events.closed[f->events.n_closed - 1].count, 0);
        pthread_mutex_unlock(&f->events.lock);
        tls_client_free(c);

        /* the TCP connection vanishing without close_notify is the same for gRPC */
        c = connect_alice(f, "localhost", &cfd, &sfd, &id);
        tls_client_free(c); /* closes the TCP socket, no close_notify */
        assert_int_equal(wait_eof(sfd, 5000), 0);
        close(sfd);
        close(cfd);
        assert_true(wait_closed(&f->events, id));
        assert_int_equal(wait_connection_count(f->bridge, 0), 0);
        fixture_free(f);
}

/* A connection that never says anything is dropped at the deadline; others are served meanwhile. */
static void test_handshake_timeout(void **state) {
        /* Long enough that alice's handshake ends well inside it on a loaded machine. */
        const uint64_t timeout_ms = 1000;
        Fixture *f = fixture_new(0, timeout_ms * 1000);
        uint64_t start = now_msec(), alice_in, id;
        int raw = raw_connect(f->port), cfd, sfd;
        TlsClient *c;
        char buf[2];

        c = connect_alice(f, "localhost", &cfd, &sfd, &id);
        alice_in = now_msec(); /* the bridge accepted her before this */
        /* served while the silent one still waits for its deadline */
        assert_false(has_refused(&f->events, "handshake timed out"));

        assert_int_equal(wait_eof(raw, 10000), 0);
        assert_true(now_msec() - start >= timeout_ms - 10);
        assert_true(has_refused(&f->events, "handshake timed out"));
        close(raw);

        /* the established one is not affected by the deadline: its own
         * deadline (at most alice_in + timeout) has passed after this */
        while (now_msec() < alice_in + timeout_ms + 100)
                usleep(10 * 1000);
        write_all(sfd, "ok", 2);
        read_exact(cfd, buf, 2);
        assert_memory_equal(buf, "ok", 2);
        assert_int_equal(tls_bridge_connection_count(f->bridge), 1);

        close(cfd);
        close(sfd);
        tls_client_free(c);
        fixture_free(f);
}

/* Connects to port and resets the connection at once (SO_LINGER 0): the bridge
 * accepts a socket whose first read fails with ECONNRESET. */
static void connect_and_reset(const char *port) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        int fd = raw_connect(port);
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
        close(fd);
}

/* Bug: the handshake deadline was queued pointing at a timespec inside the
 * connection and left unsubmitted; a client that reset before the handshake
 * ended had its connection freed in the same turn, and the submit that came
 * after made the kernel read the freed timespec (with the memory poisoned:
 * -EINVAL). The clients connect and reset before the bridge gets the listener,
 * so every accept finds a connection that is already reset. */
static void test_reset_mid_handshake(void **state) {
        TlsBridgeConfig config = { .debug_poison_freed = true };
        Fixture *f = fixture_new_config(&config, true);
        int cfd, sfd;
        TlsClient *c;

        for (int i = 0; i < 8; i++)
                connect_and_reset(f->port);
        assert_int_equal(tls_bridge_add_listener(f->bridge, f->listen_fd), 0);
        f->listen_fd = -1;
        assert_true(wait_count(&f->events, &f->events.n_refused, 8));
        /* The bridge is still sound, and serves a real client. */
        c = connect_alice(f, "localhost", &cfd, &sfd, NULL);
        write_all(sfd, "ok", 2);
        char buf[2];
        read_exact(cfd, buf, 2);
        assert_memory_equal(buf, "ok", 2);
        /* A timeout the kernel refuses completes inside the submit that carried
         * it, which came turns before alice was accepted: every completion of
         * the reset connections has been seen by now. */
        assert_int_equal(tls_bridge_ring_errors(f->bridge), 0);

        close(cfd);
        close(sfd);
        tls_client_free(c);
        fixture_free(f);
}

/* Lowers the soft RLIMIT_NOFILE to limit and opens /dev/null until no fd
 * below it is left; returns how many it opened (closed by fds_release). */
static unsigned fds_exhaust(rlim_t limit, int *fds, unsigned max, struct rlimit *saved) {
        struct rlimit rl;
        unsigned n = 0;
        int fd;

        assert_int_equal(getrlimit(RLIMIT_NOFILE, saved), 0);
        rl = *saved;
        rl.rlim_cur = limit;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
        while (n < max && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
                fds[n++] = fd;
        assert_true(n < max);
        return n;
}

static void fds_release(int *fds, unsigned n, const struct rlimit *saved) {
        for (unsigned i = 0; i < n; i++)
                close(fds[i]);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, saved), 0);
}

static bool wait_connections(TlsBridge *b, unsigned n) {
        uint64_t end = now_msec() + 10000;
        while (now_msec() < end) {
                if (tls_bridge_connection_count(b) == n)
                        return true;
                usleep(2000);
        }
        return false;
}

/* Bug: the accept back-off timer pointed at a timespec inside the listener
 * array, which grows with realloc() when a listener is added. Here accept
 * fails for want of fds; while the bridge thread is inside refused() for it,
 * a second listener is added, so the wake-up completes in the same batch and
 * the array moves (always, and poisoned, with debug_poison_freed) before the
 * timer is submitted. After the back-off the bridge accepts the waiting client. */
static void test_accept_retry(void **state) {
        TlsBridgeConfig config = { .debug_poison_freed = true };
        Fixture *f = fixture_new_config(&config, false);
        int fillers[1024], raw, second;
        struct rlimit saved;
        unsigned n;

        raw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        second = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(raw >= 0 && second >= 0);
        f->events.hold_accept_failure = true;
        n = fds_exhaust(64, fillers, ELEMENTSOF(fillers), &saved);
        {
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                          .sin_port = htons((uint16_t) atoi(f->port)) };
                assert_int_equal(connect(raw, (struct sockaddr *) &sa, sizeof sa), 0);
        }
        assert_true(wait_count(&f->events, &f->events.holding, 1));
        fds_release(fillers, n, &saved);
        assert_true(has_refused(&f->events, "accept failed: Too many open files"));

        assert_int_equal(tls_bridge_add_listener(f->bridge, second), 0); /* wakes the bridge */
        pthread_mutex_lock(&f->events.lock);
        f->events.release = true;
        pthread_cond_broadcast(&f->events.cond);
        pthread_mutex_unlock(&f->events.lock);

        assert_true(wait_connections(f->bridge, 1)); /* accepted after the back-off */
        assert_int_equal(tls_bridge_ring_errors(f->bridge), 0);
        close(raw);
        assert_true(wait_connections(f->bridge, 0));
        fixture_free(f);
}

/* Bug: when the gRPC fd could not be moved into the high range the bridge
 * handed gRPC the low number, the kind the kernel reuses at once. With
 * RLIMIT_NOFILE below the range F_DUPFD cannot go there: refused, not accepted. */
static void test_high_range_refused(void **state) {
        Fixture *f = fixture_new(0, 0);
        TlsClient *c = NULL;
        TlsClientFailure failure;
        _cleanup_free_ char *msg = NULL;
        struct rlimit saved, rl;
        int cfd = -1;

        assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
        rl = saved;
        rl.rlim_cur = 900; /* below BRIDGE_HIGH_FD_BASE */
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
        (void) tls_client_connect(f->alice, "localhost", f->port, 5000000, 0, &c, &cfd, &failure, &msg);
        assert_true(wait_count(&f->events, &f->events.n_refused, 1));
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
        assert_true(has_refused(&f->events, "cannot move the gRPC fd into the high range: Invalid argument"));
        assert_int_equal(f->events.n_accepted, 0);
        assert_true(wait_connections(f->bridge, 0));

        if (cfd >= 0)
                close(cfd);
        tls_client_free(c);
        fixture_free(f);
}

/* Bug (tests/system/survive): a daemon that took over 6,280 running jobs
 * holds their 18,840 fds at the lowest numbers, which fill the whole high
 * range; every new connection was then refused ("cannot move the gRPC fd
 * into the high range: Too many open files"). A number above the range is
 * still not one the kernel hands out first: accepted there. */
static void test_high_range_full(void **state) {
        Fixture *f = fixture_new(0, 0);
        struct rlimit saved, rl;
        static bool mine[16384];
        int cfd = -1, sfd = -1, devnull;
        uint64_t id;
        TlsClient *c;

        assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
        if (saved.rlim_max < 1000 + 16384 + 200) {
                fixture_free(f);
                skip();
        }
        rl = saved;
        rl.rlim_cur = saved.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(devnull >= 0);
        /* every free number of the range taken, as adopted jobs' fds do */
        for (int fd = 1000; fd < 1000 + 16384; fd++)
                mine[fd - 1000] = fcntl(fd, F_GETFD) < 0 && dup2(devnull, fd) == fd;
        c = connect_alice(f, "localhost", &cfd, &sfd, &id);
        assert_true(id > 0);
        assert_true(sfd >= 1000 + 16384);
        assert_int_equal(f->events.n_refused, 0);
        tls_client_free(c);
        close(cfd);
        close(sfd);
        assert_true(wait_connections(f->bridge, 0));
        for (int fd = 1000; fd < 1000 + 16384; fd++)
                if (mine[fd - 1000])
                        close(fd);
        close(devnull);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
        fixture_free(f);
}

/* Handshaking connections from one address stop at max_startups_per_source:
 * the one over it is closed at accept (no TLS work), and a TLS client so
 * refused is told the likely cause. */
static void test_startups_per_source(void **state) {
        TlsBridgeConfig config = { .max_startups_per_source = 2 };
        Fixture *f = fixture_new_config(&config, false);
        int a = raw_connect(f->port), b = raw_connect(f->port), extra, cfd = -1, sfd;
        TlsClient *c = NULL;
        TlsClientFailure failure;
        _cleanup_free_ char *msg = NULL;
        uint64_t id;

        assert_int_equal(wait_connection_count(f->bridge, 2), 2);

        extra = raw_connect(f->port);
        int r = wait_eof(extra, 5000);
        assert_true(r == 0 || r == -ECONNRESET);
        assert_true(has_refused(&f->events, "too many unauthenticated connections from this address (max-startups-per-source)"));
        assert_int_equal(tls_bridge_connection_count(f->bridge), 2);
        close(extra);

        r = tls_client_connect(f->alice, "127.0.0.1", f->port, 5000000, 0, &c, &cfd, &failure, &msg);
        assert_true(r < 0);
        assert_int_equal(failure, TLS_CLIENT_HANDSHAKE);
        assert_non_null(strstr(msg, "the server closed the connection during the handshake: it may be refusing "
                                    "connections from this address (too many unauthenticated connections)"));

        /* freeing a place lets the next client in */
        close(a);
        close(b);
        assert_int_equal(wait_connection_count(f->bridge, 0), 0);
        assert_true(has_refused(&f->events, "connection closed during the handshake"));
        c = connect_alice(f, "localhost", &cfd, &sfd, &id);
        assert_int_equal(tls_bridge_connection_count(f->bridge), 1);
        close(cfd);
        close(sfd);
        tls_client_free(c);
        fixture_free(f);
}

/* Established connections of one identity stop at max_per_identity: the one
 * over it completes its handshake, gets access_denied, and the client says
 * why; when one closes, the identity gets its place back. */
static void test_identity_bound(void **state) {
        TlsBridgeConfig config = { .max_per_identity = 1 };
        Fixture *f = fixture_new_config(&config, false);
        TlsClient *c1, *c2 = NULL;
        TlsClientFailure failure;
        _cleanup_free_ char *msg = NULL, *why = NULL;
        int cfd1, sfd1, cfd2 = -1, sfd2, r;
        uint64_t id1, id2;

        c1 = connect_alice(f, "localhost", &cfd1, &sfd1, &id1);
        r = tls_client_connect(f->alice, "localhost", f->port, 5000000, 0, &c2, &cfd2, &failure, &msg);
        if (r == 0) {
                (void) send(cfd2, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24, MSG_NOSIGNAL);
                r = wait_eof(cfd2, 5000);
                assert_true(r == 0 || r == -ECONNRESET);
                why = tls_client_failure_message(c2);
                assert_non_null(why);
                close(cfd2);
                tls_client_free(c2);
        } else
                why = TAKE_PTR(msg);
        assert_non_null(strstr(why, "the server refused the connection after authenticating us (access denied)"));
        assert_true(wait_count(&f->events, &f->events.n_refused, 1));
        assert_true(has_refused(&f->events, "client alice: too many connections of this identity (max-connections-per-identity)"));
        assert_int_equal(f->events.n_accepted, 1);

        /* alice's first connection goes: her next one is admitted */
        close(cfd1);
        close(sfd1);
        tls_client_free(c1);
        assert_true(wait_closed(&f->events, id1));
        c2 = connect_alice(f, "localhost", &cfd2, &sfd2, &id2);
        close(cfd2);
        close(sfd2);
        tls_client_free(c2);
        fixture_free(f);
}

/* TLS 1.3: the expired certificate is refused after the client's handshake finished. */
static void test_expired_certificate_refusal(void **state) {
        Fixture *f = fixture_new(0, 0);
        TlsContext *expired = load_context(TLS_ROLE_CLIENT, "bad/expired.pem", "bad/expired-key.pem", "ca.pem", NULL);
        TlsClient *c = NULL;
        TlsClientFailure failure;
        _cleanup_free_ char *msg = NULL, *why = NULL;
        int cfd = -1, r;

        r = tls_client_connect(expired, "localhost", f->port, 5000000, 0, &c, &cfd, &failure, &msg);
        if (r == 0) {
                /* what gRPC would do: write its preface, then read */
                (void) send(cfd, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24, MSG_NOSIGNAL);
                r = wait_eof(cfd, 5000);
                assert_true(r == 0 || r == -ECONNRESET);
                why = tls_client_failure_message(c);
                assert_non_null(why);
                assert_string_equal(why, "the server refused our certificate: certificate expired");
                close(cfd);
                tls_client_free(c);
        } else {
                /* should the refusal arrive during the handshake, it must say the same */
                assert_int_equal(failure, TLS_CLIENT_REJECTED_BY_SERVER);
                assert_non_null(strstr(msg, "the server refused our certificate: certificate expired"));
        }
        assert_true(wait_count(&f->events, &f->events.n_refused, 1));
        assert_true(has_refused(&f->events, "certificate expired"));
        assert_int_equal(f->events.n_accepted, 0);
        tls_context_unref(expired);
        fixture_free(f);
}

static void test_client_failures(void **state) {
        Fixture *f = fixture_new(0, 0);
        TlsContext *wrong_ca = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "bad/other-ca.pem", NULL);
        TlsClient *c = NULL;
        TlsClientFailure failure;
        _cleanup_free_ char *expect = NULL;
        char *msg = NULL;
        int cfd = -1, fd, r;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        char port[16];

        /* server certificate from a CA we do not trust */
        r = tls_client_connect(wrong_ca, "localhost", f->port, 5000000, 0, &c, &cfd, &failure, &msg);
        assert_true(r < 0);
        assert_null(c);
        assert_int_equal(failure, TLS_CLIENT_SERVER_CERT);
        assert_true(asprintf(&expect, "TLS handshake with localhost:%s failed: server certificate not trusted (unknown CA)",
                             f->port) > 0);
        assert_string_equal(msg, expect);
        free(msg);
        free(expect);

        /* nobody listening: a port that was just free */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        snprintf(port, sizeof port, "%u", ntohs(sa.sin_port));
        close(fd);
        r = tls_client_connect(f->alice, "127.0.0.1", port, 5000000, 0, &c, &cfd, &failure, &msg);
        assert_int_equal(r, -ECONNREFUSED);
        assert_int_equal(failure, TLS_CLIENT_CONNECT_REFUSED);
        assert_true(asprintf(&expect, "cannot connect to 127.0.0.1:%s: connection refused", port) > 0);
        assert_string_equal(msg, expect);
        free(msg);

        /* a port name that does not exist */
        r = tls_client_connect(f->alice, "127.0.0.1", "no-such-service", 5000000, 0, &c, &cfd, &failure, &msg);
        assert_true(r < 0);
        assert_int_equal(failure, TLS_CLIENT_RESOLVE);
        assert_non_null(strstr(msg, "cannot connect to 127.0.0.1:no-such-service: "));
        free(msg);

        tls_context_unref(wrong_ca);
        fixture_free(f);
}

/* set_context: new connections use the new context, open ones keep working. */
static void test_set_context(void **state) {
        Fixture *f = fixture_new(0, 0);
        TlsContext *next = load_context(TLS_ROLE_SERVER, "server.pem", "server-key.pem", "ca.pem", NULL);
        TlsContext *client_ctx = load_context(TLS_ROLE_CLIENT, "alice.pem", "alice-key.pem", "ca.pem", NULL);
        int cfd1, sfd1, cfd2, sfd2;
        uint64_t id1, id2;
        TlsClient *c1 = connect_alice(f, "localhost", &cfd1, &sfd1, &id1), *c2;
        char buf[2];

        assert_int_equal(tls_bridge_set_context(f->bridge, next), 0);
        tls_context_unref(next); /* the bridge holds its own reference */
        assert_int_equal(tls_bridge_set_context(f->bridge, client_ctx), -EINVAL); /* wrong role */
        c2 = connect_alice(f, "localhost", &cfd2, &sfd2, &id2);
        assert_true(id2 != id1);
        write_all(sfd1, "1!", 2);
        read_exact(cfd1, buf, 2);
        assert_memory_equal(buf, "1!", 2);
        write_all(sfd2, "2!", 2);
        read_exact(cfd2, buf, 2);
        assert_memory_equal(buf, "2!", 2);

        /* freeing the bridge closes what is open and reports it */
        close(sfd1);
        close(sfd2);
        tls_bridge_free(f->bridge);
        f->bridge = NULL;
        assert_true(has_closed(&f->events, id1));
        assert_true(has_closed(&f->events, id2));
        assert_int_equal(wait_eof(cfd1, 5000), 0);
        close(cfd1);
        close(cfd2);
        tls_client_free(c1);
        tls_client_free(c2);
        tls_context_unref(client_ctx);
        fixture_free(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_accept_identity_and_fds),
                cmocka_unit_test(test_transfer_64mib_both_ways),
                cmocka_unit_test(test_client_closes_first),
                cmocka_unit_test(test_handshake_timeout),
                cmocka_unit_test(test_reset_mid_handshake),
                cmocka_unit_test(test_accept_retry),
                cmocka_unit_test(test_high_range_refused),
                cmocka_unit_test(test_high_range_full),
                cmocka_unit_test(test_startups_per_source),
                cmocka_unit_test(test_identity_bound),
                cmocka_unit_test(test_expired_certificate_refusal),
                cmocka_unit_test(test_client_failures),
                cmocka_unit_test(test_set_context),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
