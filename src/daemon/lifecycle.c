/* SPDX-License-Identifier: MIT */
/*
 * The daemon's lifecycle: serving, reloading on SIGHUP, draining on
 * SIGTERM, stopped (the states are in daemon-internal.h).
 *
 * The one idea: the state belongs to the engine thread. The signal thread
 * only reads files (certificates, policy) and posts closures; every
 * transition happens in one closure on the engine thread, so no state is
 * written from two threads. Shutdown is a chain of such transitions:
 * SIGTERM -> stop all jobs with a grace period -> (last job exited) -> shut
 * gRPC down -> (gRPC done, or the drain deadline cut the last streams) ->
 * leave the loop; daemon_free() then frees in reverse.
 */

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon-internal.h"
#include "daemon/log.h"
#include "daemon/unit-job.h"

/* How long clients following output get to receive their jobs' final
 * status at shutdown before the remaining streams are cut. */
#define DRAIN_TIMEOUT_USEC (5ull * 1000000)

void daemon_status_changed(Engine *e, void *userdata) {
        Daemon *d = userdata;

        if (e)
                notifier_status_changed(d->notifier);
}

/* Serving ---------------------------------------------------------------------- */

void daemon_enter_serving(Daemon *d) {
        assert(d->state == DAEMON_STARTING);
        d->state = DAEMON_SERVING;
        log_notice("ready: policy %s, state in %s", d->config.policy ? d->config.policy : CONFIG_DEFAULT_POLICY,
                   daemon_state_dir(d));
        notifier_ready(d->notifier);
}

/* Reloading -------------------------------------------------------------------- */

static void on_reload_begin(Engine *e, void *userdata) {
        Daemon *d = userdata;

        if (!e || d->state != DAEMON_SERVING)
                return; /* shutting down (or reloading already): systemd hears STOPPING only */
        d->state = DAEMON_RELOADING;
        notifier_reloading(d->notifier);
}

/* The new policy is in place, or the old one stays: READY=1 again. */
static void leave_reloading(Daemon *d) {
        if (d->state != DAEMON_RELOADING)
                return;
        d->state = DAEMON_SERVING;
        notifier_reloaded(d->notifier);
}

static void on_reload_failed(Engine *e, void *userdata) {
        if (e)
                leave_reloading(userdata);
}

typedef struct PolicySwap {
        Daemon *daemon;
        Policy *policy;
} PolicySwap;

static void on_policy_swap(Engine *e, void *userdata) {
        PolicySwap *ps = userdata;

        if (e && ps->daemon->state != DAEMON_STOPPED) { /* STOPPED: the server may be gone */
                size_t n = ps->policy->n_rules;
                const char *fields[] = { LOG_MID_POLICY_RELOADED, NULL };
                server_set_policy(ps->daemon->server, ps->policy);
                log_fields(LOG_NOTICE, fields, "policy reloaded: %zu rule%s", n, n == 1 ? "" : "s");
                leave_reloading(ps->daemon);
        } else
                policy_free(ps->policy);
        free(ps);
}

/* Signal thread: reads the files, then hands the result to the engine thread. */
static void reload(Daemon *d) {
        _cleanup_tls_context_ TlsContext *ctx = NULL;
        Policy *p = NULL;
        PolicySwap *ps;

        if (engine_post(d->engine, on_reload_begin, d) < 0) {
                log_error("cannot reload: out of memory");
                return;
        }
        log_notice("SIGHUP: reloading policy and certificates");
        if (daemon_load_tls(&d->config, &ctx) < 0)
                log_error("reload: keeping the previous certificates");
        else if (tls_bridge_set_context(d->bridge, ctx) < 0)
                log_error("reload: cannot switch certificates, keeping the previous ones");
        else
                log_notice("certificates reloaded");

        if (daemon_load_policy(&d->config, &p) < 0) {
                log_error("reload: keeping the previous policy");
                (void) engine_post(d->engine, on_reload_failed, d);
                return;
        }
        ps = malloc(sizeof(*ps));
        if (ps)
                *ps = (PolicySwap) { .daemon = d, .policy = p };
        if (!ps || engine_post(d->engine, on_policy_swap, ps) < 0) {
                free(ps);
                policy_free(p);
                log_error("reload: out of memory, keeping the previous policy");
                (void) engine_post(d->engine, on_reload_failed, d);
        }
}

/* Draining and stopping ---------------------------------------------------------- */

static void on_server_down(void *userdata) {
        Daemon *d = userdata;

        assert(d->state == DAEMON_DRAINING_STREAMS);
        d->state = DAEMON_STOPPED;
        log_notice("shutdown complete");
        engine_wake_stop(d->engine);
}

void daemon_drain_timeout(Engine *e, void *userdata) {
        Daemon *d = userdata;

        if (!e || d->state != DAEMON_DRAINING_STREAMS)
                return;
        log_notice("shutting down: cutting the output streams still open");
        server_shutdown_now(d->server);
}

/* No job runs anymore: shut gRPC down, giving Output streams until the
 * deadline to deliver their jobs' final status. */
static void enter_draining_streams(Daemon *d) {
        assert(d->state == DAEMON_DRAINING_JOBS);
        d->state = DAEMON_DRAINING_STREAMS;
        if (engine_timer_arm(d->engine, d->drain_timer, DRAIN_TIMEOUT_USEC) < 0)
                log_error("cannot end the shutdown wait: out of memory");
        server_shutdown(d->server, on_server_down, d);
}

void daemon_job_exited(Daemon *d) {
        EngineCounts counts;

        if (d->state != DAEMON_DRAINING_JOBS)
                return;
        engine_get_counts(d->engine, &counts);
        if (counts.running == 0)
                enter_draining_streams(d);
}

static void enter_draining_jobs(Daemon *d) {
        uint64_t grace;
        unsigned n;

        assert(d->state <= DAEMON_RELOADING);
        d->state = DAEMON_DRAINING_JOBS;
        notifier_stopping(d->notifier);
        grace = d->config.shutdown_grace_usec ? d->config.shutdown_grace_usec
                : d->config.stop_grace_usec ? d->config.stop_grace_usec
                                            : UINT64_MAX;
        server_set_draining(d->server, true);
        n = engine_stop_all(d->engine, grace);
        log_notice("shutting down: stopping %u running job%s", n, n == 1 ? "" : "s");
}

/* SIGTERM/SIGINT: the first stops jobs gracefully, the next kills them, one
 * more once gRPC is shutting down cuts the streams still open. */
static void on_terminate(Engine *e, void *userdata) {
        Daemon *d = userdata;
        unsigned n;

        if (!e)
                return;
        switch (d->state) {
        case DAEMON_STARTING:
        case DAEMON_SERVING:
        case DAEMON_RELOADING:
                enter_draining_jobs(d);
                break;
        case DAEMON_DRAINING_JOBS:
                n = engine_stop_all(e, 0);
                log_notice("shutting down: killing %u job%s now", n, n == 1 ? "" : "s");
                break;
        case DAEMON_DRAINING_STREAMS:
                server_shutdown_now(d->server);
                return;
        case DAEMON_STOPPED: /* gRPC is done, and the server may be gone (daemon_free()) */
                return;
        }
        daemon_job_exited(d); /* perhaps none was running */
}

/* Leaving running jobs to the next daemon ------------------------------------------
 * A restart (systemd's restart job) or an upgrade: nothing is stopped. The
 * jobs' fds are in the store (core/keeper.c); Output streams are cut at
 * once, and jwctl's followers reconnect to the next daemon and resume from
 * their offset; Starts in flight are cancelled (the client sees
 * UNAVAILABLE, and nothing was started). */

typedef struct Leave {
        Daemon *daemon;
        char *upgrade_path;     /* NULL: a restart */
} Leave;

static void on_leave(Engine *e, void *userdata) {
        Leave *l = userdata;
        Daemon *d = l->daemon;
        _cleanup_free_ char *path = l->upgrade_path;
        EngineCounts c;

        free(l);
        if (!e || d->state > DAEMON_RELOADING)
                return; /* already shutting down */
        if (engine_leave_running(e) < 0) {
                enter_draining_jobs(d);
                daemon_job_exited(d);
                return;
        }
        engine_get_counts(e, &c);
        if (path) {
                /* systemd waits for READY=1, from the new image. */
                if (d->state != DAEMON_RELOADING)
                        notifier_reloading(d->notifier);
                d->upgrade_path = TAKE_PTR(path);
        } else
                notifier_stopping(d->notifier);
        d->state = DAEMON_DRAINING_JOBS;
        server_set_draining(d->server, true);
        log_notice("%s: %u running job%s keep%s running, for the next daemon to take over",
                   d->upgrade_path ? "upgrading" : "restarting", c.running, c.running == 1 ? "" : "s",
                   c.running == 1 ? "s" : "");
        enter_draining_streams(d);
        server_shutdown_now(d->server);
}

static void post_leave(Daemon *d, char *upgrade_path) {
        Leave *l = malloc(sizeof(Leave));

        if (l)
                *l = (Leave) { .daemon = d, .upgrade_path = upgrade_path };
        if (!l || engine_post(d->engine, on_leave, l) < 0) {
                free(l);
                free(upgrade_path);
                log_error("cannot leave the jobs running: out of memory; stopping them");
                (void) engine_post(d->engine, on_terminate, d);
        }
}

/* Signal thread: a SIGTERM from systemd's restart job leaves the jobs
 * running; from a stop job (systemctl stop, shutdown), or with no service
 * manager to ask, they are stopped. Asked over D-Bus (unit-job.c, at most
 * UNIT_JOB_TIMEOUT_USEC). */
static bool terminate_is_restart(Daemon *d) {
        _cleanup_free_ char *type = NULL;
        int r;

        if (!d->jobs_outlive)
                return false;
        r = unit_job_type(&type);
        if (r < 0) {
                log_notice("SIGTERM: stopping the running jobs (%s)",
                           r == UNIT_JOB_E_NO_SYSTEMD ? "not a systemd service"
                           : r == UNIT_JOB_E_NO_JOB   ? "systemd queued no job for the service"
                                                      : "cannot ask systemd which job is queued");
                return false;
        }
        if (strcmp(type, "restart") == 0 || strcmp(type, "try-restart") == 0)
                return true;
        log_notice("SIGTERM: systemd's %s job: stopping the running jobs", type);
        return false;
}

/* Signal thread: SIGHUP after the package replaced our binary is an
 * upgrade (reexec.c), else a reload. */
static void on_hangup(Daemon *d) {
        char *path = reexec_replaced_binary();

        if (path && d->jobs_outlive) {
                log_notice("SIGHUP: %s was replaced: upgrading in place, running jobs keep running", path);
                post_leave(d, path);
                return;
        }
        if (path)
                log_warning("SIGHUP: %s was replaced, but without a service manager's fd store running jobs "
                            "could not be kept: restart the daemon to run the new binary", path);
        free(path);
        reload(d);
}

void daemon_on_signal(void *userdata, int signo) {
        Daemon *d = userdata;

        switch (signo) {
        case SIGTERM:
        case SIGINT:
                log_notice("%s received", sigabbrev_np(signo));
                if (signo == SIGTERM && terminate_is_restart(d)) {
                        post_leave(d, NULL);
                        break;
                }
                if (engine_post(d->engine, on_terminate, d) < 0)
                        log_error("cannot start the shutdown: out of memory");
                break;
        case SIGHUP:
                on_hangup(d);
                break;
        }
}
