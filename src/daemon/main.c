/* SPDX-License-Identifier: MIT */
/*
 * jobworkerd: puts the job engine on the network.
 *
 * The one idea: the main thread becomes the engine thread and runs the
 * engine's loop; everything else (the TLS bridge thread, the gRPC
 * completion-queue thread, the signal thread) talks to it with
 * engine_post(). Shutdown therefore is a chain of closures on the engine
 * thread: SIGTERM -> stop all jobs with a grace period -> (last job exited)
 * -> shut gRPC down -> (gRPC done) -> leave the loop -> free in reverse.
 */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <systemd/sd-daemon.h>

#include "core/cgroup.h"
#include "core/engine.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/peer-ratelimit.h"
#include "rpc/policy.h"
#include "rpc/server.h"
#include "tls/bridge.h"
#include "tls/tls.h"

typedef struct Daemon {
        Config config;
        Engine *engine;
        Server *server;
        TlsBridge *bridge;
        Notifier *notifier;            /* engine thread */
        char *cgroup_root;             /* where job cgroups go, or NULL */

        int signal_fd;
        int stop_fd;                   /* eventfd: ends the signal thread */
        int wake_fd;                   /* eventfd: drain_deadline changed */
        _Atomic uint64_t drain_deadline; /* CLOCK_MONOTONIC usec, 0 = none */
        pthread_t signal_thread;
        bool signal_thread_started;

        /* engine thread */
        unsigned term_signals;
        bool server_stopping;

        LogRateLimit refused_rl;
        LogRateLimit accepted_rl;
        LogRateLimit denied_rl;
        LogRateLimit start_failed_rl;
        PeerRateLimit per_peer;        /* what one address or client may make us log */
} Daemon;

static void daemon_done(Daemon *d) {
        config_done(&d->config);
        peer_ratelimit_done(&d->per_peer);
        free(d->cgroup_root);
        safe_close(d->signal_fd);
        safe_close(d->stop_fd);
        safe_close(d->wake_fd);
}

/* How long clients following output get to receive their jobs' final
 * status at shutdown before the remaining streams are cut. */
#define DRAIN_TIMEOUT_USEC (5ull * 1000000)

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

/* Listeners -------------------------------------------------------------------- */

static void format_sockaddr(const struct sockaddr *sa, char *buf, size_t size) {
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;

        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                port = ntohs(in->sin_port);
                snprintf(buf, size, "%s:%u", host, port);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                port = ntohs(in6->sin6_port);
                snprintf(buf, size, "[%s]:%u", host, port);
        } else
                snprintf(buf, size, "(family %d)", sa->sa_family);
}

/* Opens listening sockets for "HOST:PORT", "[V6]:PORT" or "*:PORT" (all
 * addresses). Appends the fds to fds (at most max). */
static int listen_on(const char *address, int *fds, size_t *n_fds, size_t max) {
        _cleanup_free_ char *copy = strdup(address);
        struct addrinfo hints = {
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_ADDRCONFIG,
                .ai_socktype = SOCK_STREAM,
        };
        struct addrinfo *res = NULL;
        char *host, *port, *colon;
        bool any = false;
        int r, opened = 0;

        if (!copy)
                return -ENOMEM;
        if (copy[0] == '[') {
                char *close = strchr(copy, ']');
                if (!close || close[1] != ':') {
                        log_error("cannot listen on '%s': expected [IPV6]:PORT", address);
                        return -EINVAL;
                }
                *close = 0;
                host = copy + 1;
                port = close + 2;
        } else {
                colon = strrchr(copy, ':');
                if (!colon) {
                        log_error("cannot listen on '%s': expected ADDR:PORT", address);
                        return -EINVAL;
                }
                *colon = 0;
                host = copy;
                port = colon + 1;
        }
        if (!*port) {
                log_error("cannot listen on '%s': the port is missing", address);
                return -EINVAL;
        }
        if (strcmp(host, "*") == 0 || !*host) {
                host = NULL;
                any = true;
                hints.ai_family = AF_INET6;
                hints.ai_flags &= ~AI_ADDRCONFIG;
        }
        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0) {
                log_error("cannot listen on '%s': %s", address, gai_strerror(r));
                return -EADDRNOTAVAIL;
        }
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                _cleanup_close_ int fd = -1;
                struct sockaddr_storage bound;
                socklen_t len = sizeof(bound);
                char name[80];
                int one = 1, v6only = any ? 0 : 1;

                if (*n_fds >= max) {
                        log_error("cannot listen on '%s': too many listening sockets", address);
                        freeaddrinfo(res);
                        return -E2BIG;
                }
                fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0) {
                        r = negative_errno();
                        log_error("cannot listen on '%s': socket: %s", address, strerror(-r));
                        freeaddrinfo(res);
                        return r;
                }
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (ai->ai_family == AF_INET6)
                        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
                if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
                        r = negative_errno();
                        format_sockaddr(ai->ai_addr, name, sizeof(name));
                        log_error("cannot listen on '%s' (%s): %s", address, name, strerror(-r));
                        freeaddrinfo(res);
                        return r;
                }
                if (getsockname(fd, (struct sockaddr *) &bound, &len) == 0) {
                        format_sockaddr((struct sockaddr *) &bound, name, sizeof(name));
                        log_notice("listening on %s", name);
                }
                fds[(*n_fds)++] = TAKE_FD(fd);
                opened++;
                if (ai->ai_family == AF_INET6 && any)
                        break;
        }
        freeaddrinfo(res);
        return opened;
}

#define LISTEN_FDS_MAX 64

static int open_listeners(Daemon *d, int *fds, size_t *n_fds) {
        int n = sd_listen_fds(1), r;

        *n_fds = 0;
        if (n < 0) {
                log_error("socket activation: %s", strerror(-n));
                return n;
        }
        if (n > 0) {
                if (d->config.n_listen > 0)
                        log_notice("socket activation: ignoring the configured listen addresses");
                if (n > LISTEN_FDS_MAX) {
                        log_error("socket activation: too many sockets (%d, at most %d)", n, LISTEN_FDS_MAX);
                        return -E2BIG;
                }
                for (int i = 0; i < n; i++) {
                        int fd = SD_LISTEN_FDS_START + i;
                        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                                log_error("socket activation: fd %d is not a listening stream socket", fd);
                                return -EBADF;
                        }
                        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                        fds[(*n_fds)++] = fd;
                }
                log_notice("socket activation: %d listening socket%s", n, n == 1 ? "" : "s");
                return 0;
        }
        if (d->config.n_listen == 0) {
                log_error("nothing to listen on: give --listen ADDR:PORT (or start under socket activation)");
                return -EINVAL;
        }
        for (size_t i = 0; i < d->config.n_listen; i++) {
                r = listen_on(d->config.listen[i], fds, n_fds, LISTEN_FDS_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Engine thread: sd_notify STATUS= ------------------------------------------ */

static void status_text(void *userdata, char *buf, size_t size) {
        Daemon *d = userdata;
        EngineCounts c;

        engine_get_counts(d->engine, &c);
        snprintf(buf, size, "%u running, %u finished, %u connections, %u subscribers%s",
                 c.running, c.finished, d->bridge ? tls_bridge_connection_count(d->bridge) : 0, c.subscribers,
                 c.cgroups ? "" : " (no job cgroups)");
}

static void on_status_changed(Engine *e, void *userdata) {
        Daemon *d = userdata;
        if (e)
                notifier_status_changed(d->notifier);
}

/* Engine thread: shutdown chain ----------------------------------------------- */

static void on_server_down(void *userdata) {
        Daemon *d = userdata;

        log_notice("shutdown complete");
        engine_wake_stop(d->engine);
}

static void maybe_finish_shutdown(Daemon *d) {
        EngineCounts counts;

        if (d->term_signals == 0 || d->server_stopping)
                return;
        engine_get_counts(d->engine, &counts);
        if (counts.running > 0)
                return;
        d->server_stopping = true;
        /* The signal thread doubles as the timer of the drain deadline. */
        atomic_store(&d->drain_deadline, now_usec() + DRAIN_TIMEOUT_USEC);
        (void) !write(d->wake_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
        server_shutdown(d->server, on_server_down, d);
}

static void on_drain_timeout(Engine *e, void *userdata) {
        Daemon *d = userdata;

        if (!e)
                return;
        log_notice("shutting down: cutting the output streams still open");
        server_shutdown_now(d->server);
}

static void on_terminate(Engine *e, void *userdata) {
        Daemon *d = userdata;
        uint64_t grace;
        unsigned n;

        if (!e)
                return;
        d->term_signals++;
        if (d->server_stopping) {
                server_shutdown_now(d->server);
                return;
        }
        if (d->term_signals == 1) {
                notifier_stopping(d->notifier);
                grace = d->config.shutdown_grace_usec ? d->config.shutdown_grace_usec
                        : d->config.stop_grace_usec ? d->config.stop_grace_usec
                                                   : UINT64_MAX;
                server_set_draining(d->server, true);
                n = engine_stop_all(e, grace);
                log_notice("shutting down: stopping %u running job%s", n, n == 1 ? "" : "s");
        } else {
                n = engine_stop_all(e, 0);
                log_notice("shutting down: killing %u job%s now", n, n == 1 ? "" : "s");
        }
        maybe_finish_shutdown(d);
}

static void observer(Engine *e, EngineEvent ev, const JobStatus *st, void *userdata) {
        Daemon *d = userdata;
        char id[JOB_ID_STRING_MAX], idf[16 + JOB_ID_STRING_MAX], ownerf[16 + JOB_OWNER_MAX + 1];
        const char *fields[] = { idf, ownerf, NULL, NULL };

        job_id_to_string(&st->id, id);
        snprintf(idf, sizeof(idf), "JOB_ID=%s", id);
        snprintf(ownerf, sizeof(ownerf), "JOB_OWNER=%s", st->owner);

        switch (ev) {
        case ENGINE_EVENT_STARTED:
                fields[2] = LOG_MID_JOB_STARTED;
                notifier_status_changed(d->notifier);
                log_fields(LOG_INFO, fields, "job %s started by %s, pid %d: %s", id, st->owner, (int) st->pid, st->command);
                break;
        case ENGINE_EVENT_EXITED:
                fields[2] = LOG_MID_JOB_EXITED;
                notifier_status_changed(d->notifier);
                if (st->oom_killed)
                        log_fields(LOG_NOTICE, fields, "job %s of %s was killed by the OOM killer (memory limit)", id,
                                   st->owner);
                else if (st->state == JOB_STATE_EXITED)
                        log_fields(LOG_INFO, fields, "job %s of %s exited with code %d", id, st->owner, st->exit_code);
                else if (st->state == JOB_STATE_KILLED)
                        log_fields(LOG_INFO, fields, "job %s of %s was killed by signal %d (%s)", id, st->owner,
                                   st->signal, strsignal(st->signal));
                else
                        log_fields(LOG_INFO, fields, "job %s of %s ended (%s)", id, st->owner, job_state_to_string(st->state));
                maybe_finish_shutdown(d);
                break;
        case ENGINE_EVENT_REMOVED:
                notifier_status_changed(d->notifier);
                log_fields(LOG_DEBUG, fields, "job %s removed (retention)", id);
                break;
        case ENGINE_EVENT_SUBSCRIBERS:
                notifier_status_changed(d->notifier);
                break;
        }
}

typedef struct PolicySwap {
        Daemon *daemon;
        Policy *policy;
} PolicySwap;

static void on_policy_swap(Engine *e, void *userdata) {
        PolicySwap *ps = userdata;

        if (e) {
                size_t n = ps->policy->n_rules;
                const char *fields[] = { LOG_MID_POLICY_RELOADED, NULL };
                server_set_policy(ps->daemon->server, ps->policy);
                log_fields(LOG_NOTICE, fields, "policy reloaded: %zu rule%s", n, n == 1 ? "" : "s");
                notifier_reloaded(ps->daemon->notifier);
        } else
                policy_free(ps->policy);
        free(ps);
}

/* Policy and TLS loading ------------------------------------------------------- */

static int load_policy(const Config *c, Policy **ret) {
        _cleanup_policy_ Policy *p = NULL;
        _cleanup_free_ char *error = NULL;
        const char *path = c->policy ? c->policy : CONFIG_DEFAULT_POLICY;
        int r;

        r = policy_load(path, &p, &error);
        if (r >= 0)
                r = policy_resolve_accounts(p, path, &error);
        if (r < 0) {
                log_error("%s", error ? error : strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

static int load_tls(const Config *c, TlsContext **ret) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = tls_context_new(ret, TLS_ROLE_SERVER,
                            c->cert ? c->cert : CONFIG_DEFAULT_CERT,
                            c->key ? c->key : CONFIG_DEFAULT_KEY,
                            c->ca ? c->ca : CONFIG_DEFAULT_CA,
                            c->priority, &error);
        if (r == -ENOENT)
                /* The usual first-start problem: say how to fix it. */
                log_error("%s (the package's 'jobworker-certs init' creates the CA and server certificate; "
                          "for development, certs/generate)", error ? error : strerror(-r));
        else if (r < 0)
                log_error("%s", error ? error : strerror(-r));
        return r;
}

/* Signal thread ---------------------------------------------------------------- */

static void on_reload_failed(Engine *e, void *userdata) {
        Daemon *d = userdata;
        if (e)
                notifier_reloaded(d->notifier); /* READY=1 again, with the old policy */
}

static void reload(Daemon *d) {
        _cleanup_tls_context_ TlsContext *ctx = NULL;
        Policy *p = NULL;
        PolicySwap *ps;

        /* sd_notify is thread-safe and this reads nothing that changes. */
        notifier_reloading(d->notifier);
        log_notice("SIGHUP: reloading policy and certificates");
        if (load_tls(&d->config, &ctx) < 0)
                log_error("reload: keeping the previous certificates");
        else if (tls_bridge_set_context(d->bridge, ctx) < 0)
                log_error("reload: cannot switch certificates, keeping the previous ones");
        else
                log_notice("certificates reloaded");

        if (load_policy(&d->config, &p) < 0) {
                log_error("reload: keeping the previous policy");
                (void) engine_post(d->engine, on_reload_failed, d);
                return;
        }
        ps = malloc(sizeof(*ps));
        if (ps) {
                ps->daemon = d;
                ps->policy = p;
        }
        if (!ps || engine_post(d->engine, on_policy_swap, ps) < 0) {
                free(ps);
                policy_free(p);
                log_error("reload: out of memory, keeping the previous policy");
                (void) engine_post(d->engine, on_reload_failed, d);
        }
}

static void *signal_thread(void *userdata) {
        Daemon *d = userdata;

        for (;;) {
                struct pollfd pfd[3] = {
                        { .fd = d->signal_fd, .events = POLLIN },
                        { .fd = d->stop_fd, .events = POLLIN },
                        { .fd = d->wake_fd, .events = POLLIN },
                };
                struct signalfd_siginfo si;
                uint64_t deadline = atomic_load(&d->drain_deadline), v;
                int timeout = -1;

                if (deadline > 0) {
                        uint64_t now = now_usec();
                        if (now >= deadline) {
                                atomic_store(&d->drain_deadline, 0);
                                if (engine_post(d->engine, on_drain_timeout, d) < 0)
                                        log_error("cannot end the shutdown wait: out of memory");
                                continue;
                        }
                        timeout = (int) ((deadline - now + 999) / 1000);
                }
                if (poll(pfd, 3, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error("signal thread: poll: %m");
                        return NULL;
                }
                if (pfd[1].revents)
                        return NULL;
                if (pfd[2].revents)
                        (void) !read(d->wake_fd, &v, sizeof(v));
                if (!pfd[0].revents || read(d->signal_fd, &si, sizeof(si)) != sizeof(si))
                        continue;
                switch (si.ssi_signo) {
                case SIGTERM:
                case SIGINT:
                        log_notice("%s received", sigabbrev_np(si.ssi_signo));
                        if (engine_post(d->engine, on_terminate, d) < 0)
                                log_error("cannot start the shutdown: out of memory");
                        break;
                case SIGHUP:
                        reload(d);
                        break;
                }
        }
}

/* Bridge callbacks (bridge thread) ---------------------------------------------- */

/* Lines a remote party causes pass two limits: one per peer (so one noisy
 * client can neither flood the journal nor crowd out the others), then the
 * global one of their kind. key: the address without the port, or the
 * client identity. */
static bool peer_may_log(Daemon *d, const char *key, bool address, const char *what, const char *const *fields) {
        char k[PEER_RATELIMIT_KEY_MAX];
        unsigned suppressed;
        bool pass;

        snprintf(k, sizeof(k), "%s", key);
        if (!address)
                ;
        else if (k[0] != '[' && strchr(k, ':') == strrchr(k, ':') && strrchr(k, ':'))
                *strrchr(k, ':') = 0; /* "192.0.2.1:4711" -> "192.0.2.1" */
        else if (k[0] == '[' && strchr(k, ']'))
                strchr(k, ']')[1] = 0;   /* "[::1]:4711" -> "[::1]" */
        pass = peer_ratelimit_test(&d->per_peer, k, now_usec(), &suppressed);
        if (suppressed > 0)
                log_fields(LOG_NOTICE, fields, "%u more %s from %s were not logged", suppressed, what, k);
        return pass;
}

static void on_accepted(void *userdata, uint64_t conn_id, int grpc_fd, const char *identity, const char *peer_addr) {
        Daemon *d = userdata;
        char client[300], peer[300];
        const char *fields[] = { client, peer, LOG_MID_CONNECTION_ACCEPTED, NULL };
        int r;

        snprintf(client, sizeof(client), "CLIENT=%s", identity);
        snprintf(peer, sizeof(peer), "PEER_ADDR=%s", peer_addr);
        (void) engine_post(d->engine, on_status_changed, d);
        /* -1: on_connect_inner() connected it to gRPC already. */
        r = grpc_fd < 0 ? 0 : server_add_connection(d->server, conn_id, grpc_fd, identity, peer_addr);
        if (!peer_may_log(d, peer_addr, true, "connections", fields))
                return;
        if (r == -ESHUTDOWN)
                log_ratelimited(&d->accepted_rl, LOG_INFO, fields, "connection from %s (%s) closed: shutting down",
                                peer_addr, identity);
        else if (r < 0)
                log_ratelimited(&d->accepted_rl, LOG_WARNING, fields, "connection from %s (%s) dropped: %s",
                                peer_addr, identity, strerror(-r));
        else
                log_ratelimited(&d->accepted_rl, LOG_INFO, fields, "connection %llu from %s: client %s",
                                (unsigned long long) conn_id, peer_addr, identity);
}

/* A verified connection of the bridge: gRPC learns who it is, then gets it. */
static int on_connect_inner(void *userdata, uint64_t conn_id, const char *identity, const char *peer_addr) {
        Daemon *d = userdata;

        return server_connect_inner(d->server, conn_id, identity, peer_addr);
}

static void on_refused(void *userdata, const char *peer_addr, const char *reason) {
        Daemon *d = userdata;
        char peer[300];
        const char *fields[] = { peer, LOG_MID_CONNECTION_REFUSED, NULL };

        snprintf(peer, sizeof(peer), "PEER_ADDR=%s", peer_addr);
        if (!peer_may_log(d, peer_addr, true, "refused connections", fields))
                return;
        log_ratelimited(&d->refused_rl, LOG_NOTICE, fields, "refused connection from %s: %s", peer_addr, reason);
}

static void on_closed(void *userdata, uint64_t conn_id, int grpc_fd_number) {
        Daemon *d = userdata;

        server_remove_connection(d->server, conn_id, grpc_fd_number);
        (void) engine_post(d->engine, on_status_changed, d);
        log_debug("connection %llu closed", (unsigned long long) conn_id);
}

/* Said once by the bridge: whether client connections' TLS records go to the kernel. */
static void on_kernel_tls(void *userdata, int error) {
        if (error == 0)
                log_info("kernel TLS in use: after the handshake the kernel encrypts and decrypts client connections");
        else
                log_info("kernel TLS not available (%s): the daemon encrypts client connections itself",
                         error == -ENOENT ? "the kernel has no tls module" : strerror(-error));
}

/* The policy refused a request (engine thread). */
static void on_denied(void *userdata, const char *identity, const char *action, const char *job_id) {
        Daemon *d = userdata;
        char client[300], job[64];
        const char *fields[] = { client, LOG_MID_PERMISSION_DENIED, job_id ? job : NULL, NULL };

        snprintf(client, sizeof(client), "CLIENT=%s", identity);
        snprintf(job, sizeof(job), "JOB_ID=%s", job_id ? job_id : "");
        if (!peer_may_log(d, identity, false, "permission denials", fields))
                return;
        if (job_id)
                log_ratelimited(&d->denied_rl, LOG_NOTICE, fields, "permission denied: %s may not %s job %s", identity,
                                action, job_id);
        else
                log_ratelimited(&d->denied_rl, LOG_NOTICE, fields, "permission denied: %s may not %s", identity, action);
}

/* A Start failed for lack of resources (engine thread). */
static void on_start_failed(void *userdata, const char *identity, const char *reason) {
        Daemon *d = userdata;
        char client[300];
        const char *fields[] = { client, NULL };

        snprintf(client, sizeof(client), "CLIENT=%s", identity);
        log_ratelimited(&d->start_failed_rl, LOG_WARNING, fields,
                        "cannot start a job for %s: %s (see TasksMax=/LimitNOFILE= of jobworker.service)", identity,
                        reason);
}

/* Per-job cgroups: "off"; "auto" (default) uses the service's own cgroup when
 * systemd started us with Delegate=yes (the daemon moves itself into a
 * "supervisor" leaf, jobs go under "jobs"); anything else is the path of a
 * cgroup v2 directory to create job cgroups in. */
static void setup_cgroups(Daemon *d) {
        const char *mode = d->config.cgroup ? d->config.cgroup : "auto";
        _cleanup_free_ char *self = NULL;
        int r;

        if (strcmp(mode, "off") == 0)
                return;
        if (strcmp(mode, "auto") != 0) {
                if (mkdir(mode, 0755) < 0 && errno != EEXIST) {
                        log_warning("cgroup %s cannot be created (%m): jobs run without cgroups, stop reaches "
                                    "their process group only", mode);
                        return;
                }
                d->cgroup_root = strdup(mode);
                return;
        }
        if (!getenv("INVOCATION_ID")) {
                log_notice("not started by systemd and no cgroup configured: jobs run without cgroups, "
                           "stop reaches their process group only");
                return;
        }
        r = cgroup_self_path(&self);
        if (r >= 0)
                r = cgroup_prepare_delegated(self, &d->cgroup_root);
        if (r < 0)
                log_warning("cannot use the service's cgroup for jobs (%s; is Delegate=yes set?): jobs run without "
                            "cgroups, stop reaches their process group only", strerror(-r));
}

/* main --------------------------------------------------------------------------- */

static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning("cannot raise the file descriptor limit: %m");
}

static int run(Daemon *d, int argc, char **argv) {
        _cleanup_free_ char *error = NULL;
        _cleanup_tls_context_ TlsContext *tls = NULL;
        Policy *policy = NULL;
        int listen_fds[LISTEN_FDS_MAX];
        size_t n_listen_fds = 0;
        sigset_t mask;
        int r;

        log_open();

        /* Before any thread exists, so that all of them inherit the mask. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
                return -errno;
        signal(SIGPIPE, SIG_IGN);

        config_init(&d->config);
        r = config_parse_argv(&d->config, argc, argv, &error);
        if (r < 0) {
                log_error("%s", error ? error : strerror(-r));
                return 2;
        }
        if (r == CONFIG_EXIT)
                return 0;
        r = config_load_file(&d->config, &error);
        if (r < 0) {
                log_error("%s", error ? error : strerror(-r));
                return 2;
        }
        log_set_max_level(d->config.log_level);
        raise_nofile();

        if (load_tls(&d->config, &tls) < 0)
                return 1;
        if (load_policy(&d->config, &policy) < 0)
                return 1;
        r = open_listeners(d, listen_fds, &n_listen_fds);
        if (r < 0) {
                policy_free(policy);
                for (size_t i = 0; i < n_listen_fds; i++)
                        safe_close(listen_fds[i]);
                return 1;
        }

        setup_cgroups(d);
        EngineConfig ec = {
                .state_dir = d->config.state_dir ? d->config.state_dir : CONFIG_DEFAULT_STATE_DIR,
                .output_cap = d->config.output_cap,
                .retain_max_jobs = d->config.retain_jobs,
                .retain_max_age_usec = d->config.retain_age_usec,
                .default_grace_usec = d->config.stop_grace_usec,
                .cgroup_root = d->cgroup_root,
        };
        r = engine_new(&d->engine, &ec);
        if (r < 0 && d->cgroup_root) {
                log_warning("cannot use cgroup %s for jobs (%s): jobs run without cgroups", d->cgroup_root,
                            strerror(-r));
                ec.cgroup_root = NULL;
                r = engine_new(&d->engine, &ec);
        }
        if (r < 0) {
                log_error("cannot start the engine (state directory %s): %s", ec.state_dir, strerror(-r));
                policy_free(policy);
                for (size_t i = 0; i < n_listen_fds; i++)
                        safe_close(listen_fds[i]);
                return 1;
        }
        engine_set_observer(d->engine, observer, d);
        {
                EngineCounts c;
                engine_get_counts(d->engine, &c);
                if (c.cgroups_cleaned > 0)
                        log_notice("killed and removed %u job cgroup%s left by a previous daemon", c.cgroups_cleaned,
                                   c.cgroups_cleaned == 1 ? "" : "s");
                if (c.cgroups)
                        log_info("jobs get their own cgroup under %s", ec.cgroup_root);
        }
        r = notifier_new(&d->notifier, d->engine, status_text, d);
        if (r < 0) {
                log_error("cannot set up sd_notify: %s", strerror(-r));
                return 1;
        }

        grpc_init();
        ServerConfig sc = {
                .max_receive_message = d->config.max_message,
                .max_output_streams = d->config.max_output_streams,
                .denied = on_denied,
                .start_failed = on_start_failed,
                .userdata = d,
                .socket_dir = ec.state_dir,
        };
        r = server_new(&d->server, d->engine, policy, &sc);
        if (r >= 0)
                r = server_start(d->server);
        if (r < 0) {
                log_error("cannot start the gRPC server: %s", strerror(-r));
                for (size_t i = 0; i < n_listen_fds; i++)
                        safe_close(listen_fds[i]);
                return 1;
        }

        TlsBridgeConfig bc = {
                .max_connections = d->config.max_connections,
                .handshake_timeout_usec = d->config.handshake_timeout_usec,
                .no_kernel_tls = d->config.kernel_tls_off,
        };
        static const TlsBridgeOps ops = {
                .accepted = on_accepted,
                .refused = on_refused,
                .closed = on_closed,
                .kernel_tls = on_kernel_tls,
                .connect_inner = on_connect_inner,
        };
        r = tls_bridge_new(&d->bridge, tls, &bc, &ops, d);
        if (r < 0) {
                log_error("cannot create the TLS bridge: %s", strerror(-r));
                for (size_t i = 0; i < n_listen_fds; i++)
                        safe_close(listen_fds[i]);
                return 1;
        }
        for (size_t i = 0; i < n_listen_fds; i++) {
                r = tls_bridge_add_listener(d->bridge, listen_fds[i]);
                if (r < 0) {
                        log_error("cannot add a listening socket: %s", strerror(-r));
                        for (size_t j = i + 1; j < n_listen_fds; j++)
                                safe_close(listen_fds[j]);
                        return 1;
                }
        }
        r = tls_bridge_start(d->bridge);
        if (r < 0) {
                log_error("cannot start the TLS bridge: %s", strerror(-r));
                return 1;
        }

        d->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        d->stop_fd = eventfd(0, EFD_CLOEXEC);
        d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->signal_fd < 0 || d->stop_fd < 0 || d->wake_fd < 0) {
                log_error("cannot create signalfd/eventfd: %m");
                return 1;
        }
        r = -pthread_create(&d->signal_thread, NULL, signal_thread, d);
        if (r < 0) {
                log_error("cannot start the signal thread: %s", strerror(-r));
                return 1;
        }
        d->signal_thread_started = true;

        log_notice("ready: policy %s, state in %s", d->config.policy ? d->config.policy : CONFIG_DEFAULT_POLICY,
                   ec.state_dir);
        notifier_ready(d->notifier);
        r = engine_run(d->engine);
        if (r < 0) {
                log_error("engine loop failed: %s", strerror(-r));
                return 1;
        }
        return 0;
}

static void teardown(Daemon *d) {
        if (d->signal_thread_started) {
                uint64_t one = 1;
                (void) !write(d->stop_fd, &one, sizeof(one));
                pthread_join(d->signal_thread, NULL);
        }
        /* Before the server: the bridge thread calls into it. */
        d->bridge = tls_bridge_free(d->bridge);
        d->server = server_free(d->server);
        d->notifier = notifier_free(d->notifier);
        /* Runs closures still queued with engine == NULL: they release calls. */
        d->engine = engine_free(d->engine);
        daemon_done(d);
}

int main(int argc, char **argv) {
        Daemon d = {
                .signal_fd = -1,
                .stop_fd = -1,
                .wake_fd = -1,
                .refused_rl = LOG_RATELIMIT_INIT(100, 10 * 1000000ull),
                .accepted_rl = LOG_RATELIMIT_INIT(200, 10 * 1000000ull),
                .denied_rl = LOG_RATELIMIT_INIT(100, 10 * 1000000ull),
                .start_failed_rl = LOG_RATELIMIT_INIT(10, 10 * 1000000ull),
        };
        bool grpc_started;
        int r;

        /* Per peer 20 lines in 10 s; every kind allows more in total, so one
         * peer cannot use up the budget of the others. */
        peer_ratelimit_init(&d.per_peer, 20, 10 * 1000000ull);
        r = run(&d, argc, argv);
        grpc_started = d.server != NULL;
        teardown(&d);
        if (grpc_started)
                grpc_shutdown();
        return r;
}
