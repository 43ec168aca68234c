/* SPDX-License-Identifier: MIT */
/*
 * The client mirror image of the bridge (see client.h): one connection, so
 * one pump thread using poll(); the same pump (pump.c) and the same policy
 * (tls.c) as the server. With TLS_CLIENT_DIRECT (jwctl since issue 16)
 * there is no pump: the caller reads and writes records through
 * tls_client_recv_view()/tls_client_send(), GnuTLS's or the kernel's.
 *
 * The one idea: every failure the user can meet becomes one sentence naming
 * HOST:PORT and the reason in user words, and a TLS 1.3 refusal of our
 * certificate (which arrives as an alert after our handshake "succeeded") is
 * remembered by the pump so the caller can explain a failed call afterwards.
 *
 * Kernel TLS: where the kernel has the tls module, gRPC gets the TCP socket
 * itself and the kernel decrypts what it reads (no pump thread, no copy of
 * every byte through it). That refusal alert would then reach gRPC as a bare
 * read error, so before the hand-over the client waits for the server's first
 * record (the server's HTTP/2 settings, sent at once) and decrypts a copy of
 * it (ktls_peek_record_type()): application data stays in the socket for the
 * kernel; an alert is read by GnuTLS and explained as before; records of the
 * handshake type (session tickets of servers that send them) are consumed by
 * GnuTLS and the next record is looked at. The wait costs the first request
 * up to one round trip, only where the kernel can take over.
 */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>

#include "shared/string-util.h"
#include "tls/client.h"
#include "tls/ktls.h"
#include "tls/pump.h"
#include "shared/time-util.h"

#define CLIENT_DEFAULT_TIMEOUT_USEC (10ull * 1000 * 1000)
#define CLIENT_PUMP_BUDGET (4u * 1024 * 1024)
#define CLIENT_FIRST_RECORD_USEC (2ull * 1000 * 1000) /* kernel TLS: wait for the server's first record */

struct TlsClient {
        TlsSession *tls;
        bool kernel;    /* kernel TLS: gRPC (or, direct, our caller) has the TCP socket, no pump */
        bool direct;    /* TLS_CLIENT_DIRECT: no pump; the caller moves records through us */
        int alert;      /* direct: fatal alert received, -1 none (read it with __atomic) */
        gnutls_packet_t packet; /* direct: the record tls_client_recv_view() handed out */
        int tcp_fd;
        int plain_fd;
        int wake_fd;
        TlsPump pump;
        pthread_t thread;
        bool running;
        bool stop; /* __atomic */
};

static int remaining_msec(uint64_t deadline) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now >= deadline)
                return 0;
        return (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT32_MAX);
}

/* strerror() in lower case, to fit in a sentence. */
static void error_words(int err, char *buf, size_t size) {
        snprintf(buf, size, "%s", strerror(err));
        if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
                buf[0] = (char) (buf[0] - 'A' + 'a');
}

static int fail(TlsClientFailure failure, int r, TlsClientFailure *ret_failure, char **ret_message, char *msg) {
        if (ret_failure)
                *ret_failure = failure;
        if (ret_message)
                *ret_message = msg;
        else
                free(msg);
        return r;
}

/* Connects one address before the deadline. Returns the fd or -errno (-ETIMEDOUT). */
static int connect_one(const struct addrinfo *ai, uint64_t deadline) {
        _cleanup_close_ int fd = -1;
        int err = 0;
        socklen_t len = sizeof err;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                if (errno != EINPROGRESS)
                        return negative_errno();
                for (;;) {
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        int n = poll(&p, 1, remaining_msec(deadline));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return negative_errno();
                        if (n == 0)
                                return -ETIMEDOUT;
                        break;
                }
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        return negative_errno();
                if (err != 0)
                        return -err;
        }
        return TAKE_FD(fd);
}

static void *pump_thread(void *userdata) {
        TlsClient *c = userdata;

        while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
                unsigned mask = tls_pump_run(&c->pump, CLIENT_PUMP_BUDGET);
                if (mask & TLS_PUMP_FINISHED)
                        break;
                if (mask & TLS_PUMP_MORE)
                        continue;
                struct pollfd p[3] = {
                        { .fd = (mask & (TLS_PUMP_TCP_IN | TLS_PUMP_TCP_OUT)) ? c->tcp_fd : -1,
                          .events = (short) (((mask & TLS_PUMP_TCP_IN) ? POLLIN : 0) |
                                             ((mask & TLS_PUMP_TCP_OUT) ? POLLOUT : 0)) },
                        { .fd = (mask & (TLS_PUMP_PLAIN_IN | TLS_PUMP_PLAIN_OUT)) ? c->plain_fd : -1,
                          .events = (short) (((mask & TLS_PUMP_PLAIN_IN) ? POLLIN : 0) |
                                             ((mask & TLS_PUMP_PLAIN_OUT) ? POLLOUT : 0)) },
                        { .fd = c->wake_fd, .events = POLLIN },
                };
                if (poll(p, 3, -1) < 0 && errno != EINTR)
                        break;
        }
        /* Whatever ended it, gRPC must see the end of its stream. */
        (void) shutdown(c->plain_fd, SHUT_RDWR);
        return NULL;
}

/* What a fatal alert of the server means, in user words. */
static char *alert_words(gnutls_alert_description_t alert) {
        const char *why = tls_certificate_alert_reason(alert);

        if (why)
                return strdup_printf("the server refused our certificate: %s", why);
        if (alert == GNUTLS_A_ACCESS_DENIED) /* the bridge's only use of it: admission.c */
                return strdup_printf("the server refused the connection after authenticating us (access denied): "
                                     "this identity may hold too many connections, or the server is full");
        return strdup_printf("the server closed the connection with TLS alert: %s",
                             gnutls_alert_get_name(alert) ?: "unknown");
}

/* Waits (until the deadline) for at least n bytes in fd's receive queue and
 * copies them without taking them. 0, -ETIMEDOUT, -ECONNRESET (EOF), -errno. */
static int peek_bytes(int fd, uint8_t *buf, size_t n, uint64_t deadline) {
        int lowat = (int) n;

        (void) setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat)); /* poll() waits for n */
        for (;;) {
                ssize_t k = recv(fd, buf, n, MSG_PEEK | MSG_DONTWAIT);
                if (k == (ssize_t) n)
                        return 0;
                if (k == 0)
                        return -ECONNRESET;
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        return negative_errno();
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int m = poll(&p, 1, remaining_msec(deadline));
                if (m < 0 && errno != EINTR)
                        return negative_errno();
                if (m == 0)
                        return -ETIMEDOUT;
        }
}

/* See the opening comment. Returns 1: the session is in the kernel (fd is
 * for gRPC); 0: it stays in GnuTLS (pump); -EPROTO: the server refused us
 * with an alert, *ret_alert says which. */
static int client_kernel_tls(TlsClient *c, int fd, uint64_t deadline, int *ret_alert) {
        gnutls_session_t g = tls_session_gnutls(c->tls);
        uint8_t rec[5 + 16384 + 256], scratch[256];
        int lowat = 1, r = 0;
        bool broken;

        if (tls_session_pending(c->tls) > 0 || ktls_attach(fd) < 0)
                return 0;
        /* A server that says nothing for a while is served through the pump. */
        deadline = MIN(deadline, now_usec(CLOCK_MONOTONIC) + CLIENT_FIRST_RECORD_USEC);
        tls_session_exact_reads(c->tls, true);
        for (;;) {
                size_t len;
                int type;

                if (peek_bytes(fd, rec, 5, deadline) < 0)
                        goto out; /* no record in time, or the end: GnuTLS and gRPC will say */
                len = 5 + ((size_t) rec[3] << 8 | rec[4]);
                if (rec[0] != 23 || len > sizeof(rec) || peek_bytes(fd, rec, len, deadline) < 0)
                        goto out;
                type = ktls_peek_record_type(g, rec, len);
                if (type == 23)
                        break; /* application data: the kernel's from here on */
                if (type != 21 && type != 22)
                        goto out;
                /* An alert or a post-handshake message: GnuTLS takes it. */
                ssize_t n = gnutls_record_recv(g, scratch, sizeof(scratch));
                if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
                        *ret_alert = (int) gnutls_alert_get(g);
                        r = -EPROTO;
                        goto out;
                }
                if (n >= 0 || (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED && gnutls_error_is_fatal((int) n)))
                        goto out; /* data or the end after all: leave it to the pump */
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
        if (tls_session_pending(c->tls) > 0)
                goto out;
        r = ktls_enable(g, fd, &broken);
        if (r < 0) {
                r = broken ? -EIO : 0;
                goto out;
        }
        return 1;
out:
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
        tls_session_exact_reads(c->tls, false);
        return r;
}

/* Where a failure of tls_client_connect() is told: the caller's out
 * parameters, and the HOST:PORT every sentence names. */
typedef struct Report {
        const char *hostport;
        TlsClientFailure *ret_failure;
        char **ret_message;
} Report;

static int report(const Report *rep, TlsClientFailure failure, int r, char *msg) {
        return fail(failure, r, rep->ret_failure, rep->ret_message, msg);
}

/* A system error after the TCP connection was made. */
static int report_errno(const Report *rep, int r) {
        char words[128];

        error_words(-r, words, sizeof words);
        return report(rep, TLS_CLIENT_HANDSHAKE, r,
                      strdup_printf("TLS connection to %s failed: %s", rep->hostport, words));
}

static const char *resolve_words(int r) {
        switch (r) {
        case EAI_NONAME:
#ifdef EAI_NODATA
        case EAI_NODATA:
#endif
        case EAI_FAIL:
        case EAI_ADDRFAMILY:
                return "name not known";
        case EAI_AGAIN:
                return "temporary failure in name resolution";
        case EAI_SERVICE:
                return "invalid port";
        case EAI_SYSTEM:
                return strerror(errno);
        default:
                return gai_strerror(r);
        }
}

/* Resolves host and connects to every address in turn, within the one
 * deadline. The connected fd (caller owns it), or a reported -errno. */
static int client_resolve_connect(const char *host, const char *port, uint64_t deadline, const Report *rep) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
        struct addrinfo *ais = NULL;
        char words[128];
        int r, fd = -1;

        r = getaddrinfo(host, port, &hints, &ais);
        if (r != 0) {
                const char *why = resolve_words(r);
                return report(rep, TLS_CLIENT_RESOLVE, r == EAI_SYSTEM ? negative_errno() : -EHOSTUNREACH,
                              strdup_printf("cannot connect to %s: %s", rep->hostport, why));
        }

        r = -EHOSTUNREACH;
        for (struct addrinfo *ai = ais; ai; ai = ai->ai_next) {
                r = connect_one(ai, deadline);
                if (r >= 0) {
                        fd = r;
                        break;
                }
                if (r == -ETIMEDOUT)
                        break;
        }
        freeaddrinfo(ais);
        if (fd >= 0)
                return fd;
        if (r == -ECONNREFUSED)
                return report(rep, TLS_CLIENT_CONNECT_REFUSED, r,
                              strdup_printf("cannot connect to %s: connection refused", rep->hostport));
        if (r == -ETIMEDOUT)
                return report(rep, TLS_CLIENT_CONNECT_TIMEOUT, r,
                              strdup_printf("cannot connect to %s: timed out", rep->hostport));
        error_words(-r, words, sizeof words);
        return report(rep, TLS_CLIENT_CONNECT_OTHER, r, strdup_printf("cannot connect to %s: %s", rep->hostport, words));
}

/* The handshake failed with -EPROTO: say why, in the user's words. */
static int report_handshake_failure(TlsClient *c, const Report *rep) {
        int err = tls_session_failure_error(c->tls);
        gnutls_alert_description_t alert = gnutls_alert_get(tls_session_gnutls(c->tls));
        TlsClientFailure failure = TLS_CLIENT_HANDSHAKE;
        char *msg;

        if (err == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || err == GNUTLS_E_CERTIFICATE_ERROR ||
            err == GNUTLS_E_NO_CERTIFICATE_FOUND)
                failure = TLS_CLIENT_SERVER_CERT;
        if (err == GNUTLS_E_FATAL_ALERT_RECEIVED &&
            (tls_certificate_alert_reason(alert) || alert == GNUTLS_A_ACCESS_DENIED)) {
                _cleanup_free_ char *why = alert_words(alert);
                if (alert != GNUTLS_A_ACCESS_DENIED) /* that one is about the server's bounds, not our certificate */
                        failure = TLS_CLIENT_REJECTED_BY_SERVER;
                msg = strdup_printf("TLS handshake with %s failed: %s", rep->hostport, why ?: "");
        } else
                msg = strdup_printf("TLS handshake with %s failed: %s", rep->hostport,
                                    tls_session_failure_reason(c->tls) ?: "unknown error");
        return report(rep, failure, -EPROTO, msg);
}

/* The TLS handshake on c->tls (socket fd), before the deadline. 0, or a
 * reported -errno. */
static int client_handshake(TlsClient *c, int fd, uint64_t deadline, const Report *rep) {
        int r;

        while ((r = tls_session_handshake(c->tls)) == -EAGAIN) {
                if (!tls_session_wants_write(c->tls) && tls_session_pending(c->tls) > 0)
                        continue; /* input already buffered: no waiting */
                struct pollfd p = { .fd = fd, .events = tls_session_wants_write(c->tls) ? POLLOUT : POLLIN };
                int n = poll(&p, 1, remaining_msec(deadline));
                if (n < 0 && errno != EINTR)
                        return report_errno(rep, negative_errno());
                if (n == 0)
                        return report(rep, TLS_CLIENT_HANDSHAKE, -ETIMEDOUT,
                                      strdup_printf("TLS handshake with %s failed: timed out", rep->hostport));
        }
        if (r == -EPROTO)
                return report_handshake_failure(c, rep);
        if (r < 0)
                return report_errno(rep, r);
        return 0;
}

/* Kernel TLS where it can: 1 when the kernel took the session (gRPC gets
 * the TCP socket itself), 0 when it cannot, or a reported -errno. */
static int client_try_kernel(TlsClient *c, int fd, uint64_t deadline, const Report *rep) {
        int alert = -1, r;

        r = client_kernel_tls(c, fd, deadline, &alert);
        if (r == -EPROTO) {
                _cleanup_free_ char *why = alert_words((gnutls_alert_description_t) alert);
                bool cert = tls_certificate_alert_reason((gnutls_alert_description_t) alert);
                return report(rep, cert ? TLS_CLIENT_REJECTED_BY_SERVER : TLS_CLIENT_HANDSHAKE, -EPROTO,
                              strdup_printf("TLS handshake with %s failed: %s", rep->hostport, why ?: ""));
        }
        if (r < 0)
                return report_errno(rep, r);
        return r > 0;
}

/* The plaintext socketpair and the pump thread. Takes fd (the TCP socket)
 * also on failure. The fd for gRPC, or -errno. */
static int client_start_pump(TlsClient *c, int fd) {
        int r, sv[2];

        c->tcp_fd = fd;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
                return negative_errno();
        c->plain_fd = sv[0];
        c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->wake_fd < 0) {
                r = negative_errno();
                close(sv[1]);
                return r;
        }
        tls_pump_init(&c->pump, c->tls, c->tcp_fd, c->plain_fd);
        r = pthread_create(&c->thread, NULL, pump_thread, c);
        if (r != 0) {
                close(sv[1]);
                return -r;
        }
        c->running = true;
        return sv[1];
}

int tls_client_connect(TlsContext *ctx, const char *host, const char *port, uint64_t timeout_usec, unsigned flags,
                       TlsClient **ret, int *ret_grpc_fd, TlsClientFailure *ret_failure, char **ret_message) {
        return tls_client_connect_named(ctx, host, port, NULL, timeout_usec, flags, ret, ret_grpc_fd, ret_failure,
                                        ret_message);
}

int tls_client_connect_named(TlsContext *ctx, const char *host, const char *port, const char *server_name,
                             uint64_t timeout_usec, unsigned flags, TlsClient **ret, int *ret_grpc_fd,
                             TlsClientFailure *ret_failure, char **ret_message) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *hostport = NULL;
        TlsClient *c = NULL;
        uint64_t deadline;
        Report rep;
        int r, one = 1;

        if (!ctx || !host || !port || !ret || !ret_grpc_fd || tls_context_role(ctx) != TLS_ROLE_CLIENT)
                return -EINVAL;
        if (timeout_usec == 0)
                timeout_usec = CLIENT_DEFAULT_TIMEOUT_USEC;
        deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;
        hostport = strchr(host, ':') ? strdup_printf("[%s]:%s", host, port) : strdup_printf("%s:%s", host, port);
        if (!hostport)
                return -ENOMEM;
        rep = (Report) { .hostport = hostport, .ret_failure = ret_failure, .ret_message = ret_message };

        fd = client_resolve_connect(host, port, deadline, &rep);
        if (fd < 0)
                return fd;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->tcp_fd = c->plain_fd = c->wake_fd = -1;
        c->alert = -1;

        r = tls_session_new(&c->tls, ctx, fd, server_name ?: host);
        r = r < 0 ? report_errno(&rep, r) : client_handshake(c, fd, deadline, &rep);
        if (r >= 0 && !(flags & TLS_CLIENT_NO_KERNEL_TLS))
                r = client_try_kernel(c, fd, deadline, &rep);
        if (r >= 0 && (flags & TLS_CLIENT_DIRECT)) {
                c->kernel = r > 0;
                if (c->kernel)
                        c->tls = tls_session_free(c->tls);
                c->direct = true;
                c->tcp_fd = TAKE_FD(fd);
                *ret_grpc_fd = -1;
                r = 0;
        } else if (r > 0) {
                c->kernel = true;
                c->tls = tls_session_free(c->tls); /* the kernel has the state now */
                *ret_grpc_fd = TAKE_FD(fd);
        } else if (r == 0) {
                r = client_start_pump(c, TAKE_FD(fd));
                if (r < 0)
                        r = report_errno(&rep, r);
                else
                        *ret_grpc_fd = r;
        }
        if (r < 0) {
                tls_client_free(c);
                return r;
        }
        *ret = c;
        if (ret_failure)
                *ret_failure = TLS_CLIENT_OK;
        return 0;
}

int tls_client_fd(TlsClient *c) {
        return c->direct ? c->tcp_fd : -1;
}

size_t tls_client_pending(TlsClient *c) {
        return c->tls ? tls_session_pending(c->tls) : 0;
}

/* What a failed GnuTLS read means for tls_client_recv*(): 1 to call again,
 * or the value to return. */
static ssize_t recv_error(TlsClient *c, ssize_t n) {
        gnutls_session_t g = tls_session_gnutls(c->tls);

        if (n == GNUTLS_E_AGAIN) /* also after a record without data while more is buffered */
                return tls_session_pending(c->tls) > 0 ? 1 : -EAGAIN;
        if (n == GNUTLS_E_INTERRUPTED)
                return 1;
        if (n == GNUTLS_E_PREMATURE_TERMINATION || n == GNUTLS_E_PULL_ERROR)
                return 0;
        if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
                __atomic_store_n(&c->alert, (int) gnutls_alert_get(g), __ATOMIC_RELEASE);
                return -EPROTO;
        }
        if (!gnutls_error_is_fatal((int) n))
                return 1; /* a warning alert */
        return -EIO;
}

static ssize_t kernel_recv(TlsClient *c, void *buf, size_t size) {
        ssize_t n = recv(c->tcp_fd, buf, size, MSG_DONTWAIT);
        if (n >= 0)
                return n;
        if (errno == EAGAIN || errno == EINTR)
                return -EAGAIN;
        return errno == ECONNRESET ? 0 : -EIO; /* a record that is not data reads as EIO */
}

ssize_t tls_client_recv(TlsClient *c, void *buf, size_t size) {
        if (c->kernel)
                return kernel_recv(c, buf, size);
        for (;;) {
                ssize_t n = gnutls_record_recv(tls_session_gnutls(c->tls), buf, size);
                if (n >= 0)
                        return n;
                n = recv_error(c, n);
                if (n != 1)
                        return n;
        }
}

ssize_t tls_client_recv_view(TlsClient *c, void *buf, size_t size, const uint8_t **ret_data) {
        tls_client_recv_done(c);
        if (c->kernel) {
                *ret_data = buf;
                return kernel_recv(c, buf, size);
        }
        for (;;) {
                gnutls_packet_t pkt = NULL;
                ssize_t n = gnutls_record_recv_packet(tls_session_gnutls(c->tls), &pkt);
                if (n > 0) {
                        gnutls_datum_t d;
                        gnutls_packet_get(pkt, &d, NULL);
                        c->packet = pkt;
                        *ret_data = d.data;
                        return d.size;
                }
                if (pkt)
                        gnutls_packet_deinit(pkt);
                if (n == 0)
                        return 0;
                n = recv_error(c, n);
                if (n != 1)
                        return n;
        }
}

void tls_client_recv_done(TlsClient *c) {
        if (c->packet) {
                gnutls_packet_deinit(c->packet);
                c->packet = NULL;
        }
}

ssize_t tls_client_send(TlsClient *c, const void *buf, size_t size) {
        if (c->kernel) {
                ssize_t n = send(c->tcp_fd, buf, size, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n >= 0)
                        return n;
                return errno == EAGAIN || errno == EINTR ? -EAGAIN : -EPIPE;
        }
        for (;;) {
                ssize_t n = gnutls_record_send(tls_session_gnutls(c->tls), buf, MIN(size, (size_t) TLS_RECORD_MAX));
                if (n >= 0)
                        return n;
                if (n == GNUTLS_E_INTERRUPTED)
                        continue;
                return n == GNUTLS_E_AGAIN ? -EAGAIN : -EPIPE;
        }
}

char *tls_client_failure_message(TlsClient *c) {
        int alert;

        if (!c || c->kernel)
                return NULL;
        alert = __atomic_load_n(c->direct ? &c->alert : &c->pump.alert, __ATOMIC_ACQUIRE);
        return alert < 0 ? NULL : alert_words((gnutls_alert_description_t) alert);
}

TlsClient *tls_client_free(TlsClient *c) {
        if (!c)
                return NULL;
        if (c->running) {
                uint64_t one = 1;
                __atomic_store_n(&c->stop, true, __ATOMIC_RELEASE);
                (void) !write(c->wake_fd, &one, sizeof one);
                pthread_join(c->thread, NULL);
        }
        if (!c->kernel && !c->direct)
                tls_pump_done(&c->pump);
        tls_client_recv_done(c);
        tls_session_free(c->tls);
        safe_close(c->tcp_fd);
        safe_close(c->plain_fd);
        safe_close(c->wake_fd);
        free(c);
        return NULL;
}
