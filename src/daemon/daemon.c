/* SPDX-License-Identifier: MIT */
/*
 * jobworkerd as one object (see daemon.h).
 *
 * The one idea: daemon_new() builds in a fixed order, one step per
 * function, and stops at the first failure; daemon_free() undoes whatever
 * was built, in reverse, so no step unwinds by hand. The main thread
 * becomes the engine thread; everything else (the TLS bridge thread, the
 * gRPC completion-queue thread, the signal thread) talks to it with
 * engine_post().
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "core/cgroup.h"
#include "daemon/daemon-internal.h"
#include "daemon/grpc-log.h"
#include "daemon/log.h"
#include "shared/string-util.h"

/* Loading ------------------------------------------------------------------------ */

/* A CRL this close to its next update is worth a warning at load. */
#define CRL_RENEW_WARNING_SEC (30 * 24 * 3600)

int daemon_load_policy(const Config *c, Policy **ret) {
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

/* The CRL to load: the configured one, else ca-crl.pem in the CA file's
 * directory when it exists (NULL then: no revocation list). */
static int crl_path(const Config *c, const char *ca, char **ret) {
        const char *slash = strrchr(ca, '/');
        char *p;

        if (c->crl) {
                p = strdup(c->crl);
        } else {
                p = strdup_printf("%.*s" CONFIG_DEFAULT_CRL_NAME, slash ? (int) (slash - ca + 1) : 0, ca);
                if (p && access(p, F_OK) < 0 && errno == ENOENT) {
                        free(p);
                        *ret = NULL;
                        return 0;
                }
        }
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* Adds the CRL, if there is one, to a new server context. A configured CRL
 * that is missing, unreadable, not the CA's or out of date is an error: the
 * daemon does not start (or a reload keeps its previous certificates). */
static int load_crl(const Config *c, const char *ca, TlsContext *ctx) {
        _cleanup_free_ char *path = NULL, *error = NULL;
        TlsCrlInfo info;
        char when[64] = "none";
        int r;

        r = crl_path(c, ca, &path);
        if (r < 0 || !path)
                return r;
        r = tls_context_set_crl(ctx, path, &info, &error);
        if (r < 0) {
                log_error("%s", error ? error : strerror(-r));
                return r;
        }
        if (info.next_update != (time_t) -1) {
                struct tm tm;
                if (gmtime_r(&info.next_update, &tm))
                        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
        }
        log_info("certificate revocation list %s: %u revoked certificate%s, next update %s", path, info.n_revoked,
                 info.n_revoked == 1 ? "" : "s", when);
        if (info.next_update != (time_t) -1 && info.next_update - time(NULL) < CRL_RENEW_WARNING_SEC)
                log_warning("certificate revocation list %s is out of date on %s: renew it with "
                            "'jobworker-certs crl' and reload, or the daemon will not start with it",
                            path, when);
        return 0;
}

int daemon_load_tls(const Config *c, TlsContext **ret) {
        _cleanup_tls_context_ TlsContext *ctx = NULL;
        _cleanup_free_ char *error = NULL;
        const char *ca = c->ca ? c->ca : CONFIG_DEFAULT_CA;
        int r;

        r = tls_context_new(&ctx, TLS_ROLE_SERVER,
                            c->cert ? c->cert : CONFIG_DEFAULT_CERT,
                            c->key ? c->key : CONFIG_DEFAULT_KEY,
                            ca, c->priority, &error);
        if (r == -ENOENT)
                /* The usual first-start problem: say how to fix it. */
                log_error("%s (the package's 'jobworker-certs init' creates the CA and server certificate; "
                          "for development, certs/generate)", error ? error : strerror(-r));
        else if (r < 0)
                log_error("%s", error ? error : strerror(-r));
        if (r >= 0)
                r = load_crl(c, ca, ctx);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ctx);
        return 0;
}

const char *daemon_state_dir(const Daemon *d) {
        return d->config.state_dir ? d->config.state_dir : CONFIG_DEFAULT_STATE_DIR;
}

static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning("cannot raise the file descriptor limit: %m");
}

/* The engine --------------------------------------------------------------------- */

/* The cgroup of the unit that holds the jobs: "X-jobs.service" beside our
 * own "X.service" (units/jobworker-jobs.service), or NULL. Why a second
 * unit: systemd 252 starts a service's new main process in the root of
 * the unit's cgroup, which it cannot do while that cgroup has controllers
 * enabled and populated children (cgroup v2's "no internal processes";
 * checked in the Debian 12 VM: status=219/CGROUP, EBUSY, after kill -9
 * with KillMode=process). So jobs that outlive the daemon live in a unit
 * of their own, which is not restarted with it (DelegateSubgroup=, which
 * would solve it in one unit, came with systemd 254). */
static char *jobs_unit_cgroup(const char *self) {
        const char *base = strrchr(self, '/');
        size_t len;
        char *p = NULL;
        struct stat st;

        if (!base || strlen(base) <= strlen(".service") ||
            strcmp(base + strlen(base) - strlen(".service"), ".service") != 0)
                return NULL;
        len = strlen(self) - strlen(".service");
        if (asprintf(&p, "%.*s-jobs.service", (int) len, self) < 0)
                return NULL;
        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
                free(p);
                return NULL;
        }
        return p;
}

/* Per-job cgroups: "off"; "auto" (default) uses the cgroup of
 * jobworker-jobs.service where it runs beside us (jobs_unit_cgroup()), else
 * the service's own cgroup when systemd started us with Delegate=yes (the
 * daemon moves itself into a "supervisor" leaf); jobs go under "jobs";
 * anything else is the path of a cgroup v2 directory to create job cgroups
 * in. */
static void setup_cgroups(Daemon *d) {
        const char *mode = d->config.cgroup ? d->config.cgroup : "auto";
        _cleanup_free_ char *self = NULL, *holder = NULL;
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
        if (r >= 0 && (holder = jobs_unit_cgroup(self))) {
                r = cgroup_prepare_delegated(holder, false, &d->cgroup_root);
                if (r >= 0)
                        return;
                log_warning("cannot use %s for jobs (%s): trying the service's own cgroup", holder, strerror(-r));
        }
        if (r >= 0)
                r = cgroup_prepare_delegated(self, true, &d->cgroup_root);
        if (r < 0)
                log_warning("cannot use the service's cgroup for jobs (%s; is Delegate=yes set?): jobs run without "
                            "cgroups, stop reaches their process group only", strerror(-r));
}

/* The engine refuses a state directory it cannot write: tell that apart
 * from a cgroup it cannot use (both may say EACCES). */
static bool state_dir_writable(const char *dir) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/jobs", dir);
        return faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0 || errno == ENOENT;
}

static int daemon_new_engine(Daemon *d) {
        EngineConfig ec = {
                .state_dir = daemon_state_dir(d),
                .output_cap = d->config.output_cap,
                .retain_max_jobs = d->config.retain_jobs,
                .retain_max_age_usec = d->config.retain_age_usec,
                .default_grace_usec = d->config.stop_grace_usec,
                .cgroup_root = d->cgroup_root,
        };
        EngineCounts c;
        int r;

        /* Under a service manager, running jobs outlive the daemon: their
         * fds go into its store (core/keeper.c, jobworkerd(8) "Restarts"). */
        if (fdstore_available()) {
                d->fdstore = (EngineFdStore) {
                        .store = fdstore_store,
                        .remove = fdstore_remove,
                        .fds = d->handback.fds,
                        .names = (const char *const *) d->handback.names,
                        .n = d->handback.n,
                };
                ec.fdstore = &d->fdstore;
                d->jobs_outlive = true;
        }

        r = engine_new(&d->engine, &ec);
        if ((r == -EROFS || r == -EACCES) && !state_dir_writable(ec.state_dir)) {
                log_error("the state directory %s is %s: refusing to start (jobs could not be recorded; "
                          "see jobworkerd(8), \"State directory\")", ec.state_dir,
                          r == -EROFS ? "read-only" : "not writable by the daemon");
                return r;
        }
        if (r < 0 && d->cgroup_root) {
                log_warning("cannot use cgroup %s for jobs (%s): jobs run without cgroups", d->cgroup_root,
                            strerror(-r));
                ec.cgroup_root = NULL;
                r = engine_new(&d->engine, &ec);
        }
        if (r < 0) {
                log_error("cannot start the engine (state directory %s): %s", ec.state_dir, strerror(-r));
                return r;
        }
        engine_set_observer(d->engine, daemon_observer, d);
        /* The engine read its copies: the store keeps the bundles. */
        fdstore_handback_done(&d->handback);
        d->fdstore.fds = NULL;
        d->fdstore.names = NULL;
        d->fdstore.n = 0;
        engine_get_counts(d->engine, &c);
        if (c.jobs_adopted > 0)
                log_notice("took over %u running job%s from the previous daemon", c.jobs_adopted,
                           c.jobs_adopted == 1 ? "" : "s");
        if (c.newer_records > 0)
                log_warning("%u job record%s of a newer format (version %u) than this daemon's (%u): loaded "
                            "what this daemon understands; was a newer jobworker installed before?",
                            c.newer_records, c.newer_records == 1 ? " is" : "s are", c.newer_version,
                            c.record_version);
        if (c.logs_cut > 0)
                log_notice("cut the torn end (%" PRIu64 " bytes in all) off %u output log%s, left by a daemon that "
                           "died while appending", c.log_bytes_cut, c.logs_cut, c.logs_cut == 1 ? "" : "s");
        if (c.logs_finished > 0)
                log_info("completed the last record of %u output log%s, cut short by a daemon that died while "
                         "appending", c.logs_finished, c.logs_finished == 1 ? "" : "s");
        if (c.keep_failures > 0)
                log_warning("%u kept job record%s could not be read (%s)", c.keep_failures,
                            c.keep_failures == 1 ? "" : "s", strerror(c.keep_error));
        if (c.dirs_cleaned > 0)
                log_notice("removed %u job director%s without a record, left by a daemon that died while "
                           "starting them", c.dirs_cleaned, c.dirs_cleaned == 1 ? "y" : "ies");
        if (c.cgroups_cleaned > 0)
                log_notice("killed and removed %u job cgroup%s left by a previous daemon", c.cgroups_cleaned,
                           c.cgroups_cleaned == 1 ? "" : "s");
        if (c.cgroups)
                log_info("jobs get their own cgroup under %s", ec.cgroup_root);
        return 0;
}

/* Engine thread: the text of sd_notify STATUS=. */
static void status_text(void *userdata, char *buf, size_t size) {
        Daemon *d = userdata;
        EngineCounts c;

        engine_get_counts(d->engine, &c);
        snprintf(buf, size, "%u running, %u finished, %u connections, %u subscribers%s",
                 c.running, c.finished, d->bridge ? tls_bridge_connection_count(d->bridge) : 0, c.subscribers,
                 c.cgroups ? "" : " (no job cgroups)");
}

static int daemon_new_notifier(Daemon *d) {
        int r;

        r = notifier_new(&d->notifier, d->engine, status_text, d);
        if (r >= 0)
                r = engine_timer_new(d->engine, daemon_drain_timeout, d, &d->drain_timer);
        if (r < 0)
                log_error("cannot set up sd_notify: %s", strerror(-r));
        return r;
}

/* The network -------------------------------------------------------------------- */

static int daemon_new_server(Daemon *d) {
        ServerConfig sc = {
                .max_receive_message = d->config.max_message,
                .max_output_streams = d->config.max_output_streams,
                .output_memory = (size_t) d->config.output_memory,
                .min_ping_interval_usec = d->config.min_ping_interval_usec,
                .keepalive_usec = d->config.keepalive_usec,
                .denied = daemon_on_denied,
                .start_failed = daemon_on_start_failed,
                .acted = daemon_on_acted,
                .userdata = d,
                .socket_dir = daemon_state_dir(d),
        };
        int r;

        grpc_log_install();
        grpc_init();
        d->grpc_initialized = true;
        r = server_new(&d->server, d->engine, TAKE_PTR(d->policy), &sc);
        if (r >= 0)
                r = server_start(d->server);
        if (r < 0)
                log_error("cannot start the gRPC server: %s", strerror(-r));
        return r;
}

static int daemon_new_bridge(Daemon *d) {
        TlsBridgeConfig bc = {
                .max_connections = d->config.max_connections,
                .max_per_identity = d->config.max_connections_per_identity,
                .startups_start = d->config.startups[0],
                .startups_rate = d->config.startups[1],
                .startups_full = d->config.startups[2],
                .max_startups_per_source = d->config.max_startups_per_source,
                .handshake_timeout_usec = d->config.handshake_timeout_usec,
                .no_kernel_tls = d->config.kernel_tls_off,
        };
        int r;

        r = tls_bridge_new(&d->bridge, d->tls, &bc, &daemon_bridge_ops, d);
        if (r < 0) {
                log_error("cannot create the TLS bridge: %s", strerror(-r));
                return r;
        }
        d->tls = tls_context_unref(d->tls);
        for (size_t i = 0; i < d->n_listen_fds; i++) {
                /* A copy for an upgrade in place (reexec.c): the new image
                 * listens on the same sockets, no connection is refused. */
                d->listen_keep[d->n_listen_keep] = fcntl(d->listen_fds[i], F_DUPFD_CLOEXEC, 3);
                if (d->listen_keep[d->n_listen_keep] >= 0)
                        d->n_listen_keep++;
                /* The bridge owns the fd from here on, even if adding it fails. */
                r = tls_bridge_add_listener(d->bridge, TAKE_FD(d->listen_fds[i]));
                if (r < 0) {
                        log_error("cannot add a listening socket: %s", strerror(-r));
                        return r;
                }
        }
        r = tls_bridge_start(d->bridge);
        if (r < 0)
                log_error("cannot start the TLS bridge: %s", strerror(-r));
        return r;
}

/* new / run / free --------------------------------------------------------------- */

static int daemon_build(Daemon *d) {
        int r;

        raise_nofile();
        r = daemon_load_tls(&d->config, &d->tls);
        if (r >= 0)
                r = daemon_load_policy(&d->config, &d->policy);
        if (r >= 0)
                r = listen_open_all(&d->config, d->listen_fds, &d->n_listen_fds, &d->handback);
        if (r < 0)
                return r;
        setup_cgroups(d);
        r = daemon_new_engine(d);
        if (r >= 0)
                r = daemon_new_notifier(d);
        if (r >= 0)
                r = daemon_new_server(d);
        if (r >= 0)
                r = daemon_new_bridge(d);
        if (r >= 0)
                r = signal_thread_new(&d->signals, &d->signal_mask, daemon_on_signal, d);
        return r;
}

int daemon_new(Daemon **ret, Config *config) {
        _cleanup_daemon_ Daemon *d = NULL;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->config = *config;
        config_init(config);
        d->state = DAEMON_STARTING;
        event_limits_init(&d->limits);
        for (size_t i = 0; i < ELEMENTSOF(d->listen_fds); i++)
                d->listen_fds[i] = -1;

        /* Before any thread exists, so that all of them inherit the mask. */
        r = signals_block(&d->signal_mask);
        if (r < 0) {
                log_error("cannot block signals: %s", strerror(-r));
                return r;
        }
        r = daemon_build(d);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

int daemon_reexec(Daemon **dp, char *const *argv) {
        Daemon *d = *dp;
        FdStoreHandback kept = {};
        int listen[LISTEN_FDS_MAX];
        size_t n_listen = d->n_listen_keep;
        _cleanup_free_ char *path = TAKE_PTR(d->upgrade_path);
        int r;

        /* What the new image needs, taken before everything else goes:
         * the sockets, and the bundles of the jobs left running. */
        r = engine_kept_fds(d->engine, &kept.fds, &kept.names, &kept.n);
        memcpy(listen, d->listen_keep, n_listen * sizeof(int));
        d->n_listen_keep = 0;
        *dp = daemon_free(d);
        if (r >= 0) {
                log_notice("upgrading in place: executing %s", path);
                r = reexec_exec(path, argv, listen, n_listen, &kept);
        }
        log_error("cannot execute the new binary %s (%s): exiting; the service manager starts it, and it "
                  "takes the running jobs over", path, strerror(-r));
        for (size_t i = 0; i < n_listen; i++)
                safe_close(listen[i]);
        fdstore_handback_done(&kept);
        return r;
}

bool daemon_upgrading(const Daemon *d) {
        return d->upgrade_path != NULL;
}

int daemon_run(Daemon *d) {
        int r;

        daemon_enter_serving(d);
        r = engine_run(d->engine);
        if (r < 0)
                log_error("engine loop failed: %s", strerror(-r));
        return r;
}

Daemon *daemon_free(Daemon *d) {
        if (!d)
                return NULL;
        d->signals = signal_thread_free(d->signals);
        /* Closures posted late (the signal thread's, the server's last
         * completions) run in engine_free() with engine NULL, after the
         * server below is gone; STOPPED also tells any that runs earlier. */
        d->state = DAEMON_STOPPED;
        /* Before the server: the bridge thread calls into it. */
        d->bridge = tls_bridge_free(d->bridge);
        d->server = server_free(d->server);
        d->drain_timer = engine_timer_free(d->engine, d->drain_timer);
        d->notifier = notifier_free(d->notifier);
        /* Runs closures still queued with engine NULL: they release calls,
         * so gRPC must still be up. */
        d->engine = engine_free(d->engine);
        if (d->grpc_initialized)
                grpc_shutdown();
        for (size_t i = 0; i < d->n_listen_fds; i++)
                safe_close(d->listen_fds[i]);
        for (size_t i = 0; i < d->n_listen_keep; i++)
                safe_close(d->listen_keep[i]);
        free(d->upgrade_path);
        policy_free(d->policy);
        tls_context_unref(d->tls);
        free(d->cgroup_root);
        fdstore_handback_done(&d->handback);
        event_limits_done(&d->limits);
        config_done(&d->config);
        free(d);
        return NULL;
}
