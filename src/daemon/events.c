/* SPDX-License-Identifier: MIT */
/*
 * The daemon's log of what happens in the other layers (see events.h).
 *
 * The one idea: a line a remote party can cause passes two limits, first
 * one per peer (its address without the port, or its client identity), so
 * that one noisy client can neither flood the journal nor crowd out the
 * others, then the global one of its kind. Lines about jobs are not
 * limited: only an authorized caller starts jobs, and each job is bounded;
 * but a Stop or a Signal can be repeated at will, so those lines are.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/daemon-internal.h"
#include "daemon/events.h"
#include "shared/time-util.h"

#define RATELIMIT_INTERVAL_USEC (10 * 1000000ull)

void event_limits_init(EventLimits *l) {
        *l = (EventLimits) {
                .refused = LOG_RATELIMIT_INIT(100, RATELIMIT_INTERVAL_USEC),
                .accepted = LOG_RATELIMIT_INIT(200, RATELIMIT_INTERVAL_USEC),
                .denied = LOG_RATELIMIT_INIT(100, RATELIMIT_INTERVAL_USEC),
                .start_failed = LOG_RATELIMIT_INIT(10, RATELIMIT_INTERVAL_USEC),
                .acted = LOG_RATELIMIT_INIT(200, RATELIMIT_INTERVAL_USEC),
        };
        /* Per peer 20 lines in 10 s; every kind allows more in total, so one
         * peer cannot use up the budget of the others. */
        peer_ratelimit_init(&l->per_peer, 20, RATELIMIT_INTERVAL_USEC);
}

void event_limits_done(EventLimits *l) {
        peer_ratelimit_done(&l->per_peer);
}

/* Engine observer (engine thread) --------------------------------------------- */

static void log_exited(const JobStatus *st, const char *id, const char *const *fields) {
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
}

void daemon_observer(Engine *e, EngineEvent ev, const JobStatus *st, void *userdata) {
        Daemon *d = userdata;
        char id[JOB_ID_STRING_MAX], idf[16 + JOB_ID_STRING_MAX], ownerf[16 + JOB_OWNER_MAX + 1];
        char namef[16 + JOB_NAME_MAX + 1];
        const char *fields[] = { idf, ownerf, NULL, NULL, NULL };
        size_t mid = 2; /* where MESSAGE_ID= goes */

        job_id_to_string(&st->id, id);
        snprintf(idf, sizeof(idf), "JOB_ID=%s", id);
        snprintf(ownerf, sizeof(ownerf), "JOB_OWNER=%s", st->owner);
        /* journalctl -u jobworker JOB_NAME=nightly */
        if (st->name[0]) {
                snprintf(namef, sizeof(namef), "JOB_NAME=%s", st->name);
                fields[mid++] = namef;
        }

        notifier_status_changed(d->notifier);
        switch (ev) {
        case ENGINE_EVENT_STARTED:
                fields[mid] = LOG_MID_JOB_STARTED;
                log_fields(LOG_INFO, fields, "job %s started by %s, pid %d: %s", id, st->owner, (int) st->pid,
                           st->command);
                break;
        case ENGINE_EVENT_EXITED:
                fields[mid] = LOG_MID_JOB_EXITED;
                log_exited(st, id, fields);
                daemon_job_exited(d);
                break;
        case ENGINE_EVENT_REMOVED:
                log_fields(LOG_DEBUG, fields, "job %s removed (retention)", id);
                break;
        case ENGINE_EVENT_SUBSCRIBERS:
                break;
        case ENGINE_EVENT_SAVE_FAILED: {
                EngineCounts c;
                engine_get_counts(e, &c);
                log_fields(LOG_ERR, fields,
                           "cannot write the status of job %s (%s) to the state directory: %s; retrying "
                           "(until it is written, a restart would show it as it was last written)",
                           id, job_state_to_string(st->state), strerror(c.status_save_error));
                break;
        }
        case ENGINE_EVENT_FILES_REMOVED:
                log_fields(LOG_WARNING, fields,
                           "the directory of job %s (%s) was deleted from the state directory: its output from now "
                           "on is not kept, and a restart will not know the job", id, job_state_to_string(st->state));
                break;
        case ENGINE_EVENT_SAVED:
                log_fields(LOG_NOTICE, fields, "status of job %s written to the state directory after all", id);
                break;
        }
}

/* Rate limits per peer (any thread) ------------------------------------------- */

/* key: an address ("192.0.2.1:4711", "[::1]:4711": the port is dropped) or,
 * with address false, a client identity. */
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
        pass = peer_ratelimit_test(&d->limits.per_peer, k, now_usec(CLOCK_MONOTONIC), &suppressed);
        if (suppressed > 0)
                log_fields(LOG_NOTICE, fields, "%u more %s from %s were not logged", suppressed, what, k);
        return pass;
}

/* Server callbacks (engine thread) -------------------------------------------- */

/* The policy refused a request. */
void daemon_on_denied(void *userdata, const char *identity, const char *action, const char *job_id) {
        Daemon *d = userdata;
        char client[300], job[64];
        const char *fields[] = { client, LOG_MID_PERMISSION_DENIED, job_id ? job : NULL, NULL };

        snprintf(client, sizeof(client), "CLIENT=%s", identity);
        snprintf(job, sizeof(job), "JOB_ID=%s", job_id ? job_id : "");
        if (!peer_may_log(d, identity, false, "permission denials", fields))
                return;
        if (job_id)
                log_ratelimited(&d->limits.denied, LOG_NOTICE, fields, "permission denied: %s may not %s job %s",
                                identity, action, job_id);
        else
                log_ratelimited(&d->limits.denied, LOG_NOTICE, fields, "permission denied: %s may not %s", identity,
                                action);
}

/* A Stop or a Signal was carried out: journalctl JOB_ID=... tells who. */
void daemon_on_acted(void *userdata, const char *identity, AuthzAction action, const JobStatus *st, const char *what) {
        Daemon *d = userdata;
        char id[JOB_ID_STRING_MAX], client[300], idf[16 + JOB_ID_STRING_MAX], ownerf[16 + JOB_OWNER_MAX + 1];
        const char *fields[] = { client, idf, ownerf,
                                 action == AUTHZ_ACTION_STOP ? LOG_MID_JOB_STOP : LOG_MID_JOB_SIGNAL, NULL };

        job_id_to_string(&st->id, id);
        snprintf(client, sizeof(client), "CLIENT=%s", identity);
        snprintf(idf, sizeof(idf), "JOB_ID=%s", id);
        snprintf(ownerf, sizeof(ownerf), "JOB_OWNER=%s", st->owner);
        if (!peer_may_log(d, identity, false, "stop and signal lines", fields))
                return;
        log_ratelimited(&d->limits.acted, LOG_INFO, fields, "job %s of %s: %s, by %s", id, st->owner, what, identity);
}

/* A Start failed for lack of resources. */
void daemon_on_start_failed(void *userdata, const char *identity, StatusResource resource, const char *reason) {
        Daemon *d = userdata;
        char client[300], hint[STATUS_MAP_HINT_MAX];
        const char *fields[] = { client, NULL };

        snprintf(client, sizeof(client), "CLIENT=%s", identity);
        status_map_resource_hint(resource, daemon_state_dir(d), hint, sizeof(hint));
        log_ratelimited(&d->limits.start_failed, LOG_WARNING, fields, "cannot start a job for %s: %s (%s)", identity,
                        reason, hint);
}

/* Bridge callbacks (bridge thread) -------------------------------------------- */

static void on_accepted(void *userdata, uint64_t conn_id, int grpc_fd, const char *identity, const char *peer_addr) {
        Daemon *d = userdata;
        char client[300], peer[300];
        const char *fields[] = { client, peer, LOG_MID_CONNECTION_ACCEPTED, NULL };
        int r;

        snprintf(client, sizeof(client), "CLIENT=%s", identity);
        snprintf(peer, sizeof(peer), "PEER_ADDR=%s", peer_addr);
        (void) engine_post(d->engine, daemon_status_changed, d);
        /* -1: on_connect_inner() connected it to gRPC already. */
        r = grpc_fd < 0 ? 0 : server_add_connection(d->server, conn_id, grpc_fd, identity, peer_addr);
        if (!peer_may_log(d, peer_addr, true, "connections", fields))
                return;
        if (r == -ESHUTDOWN)
                log_ratelimited(&d->limits.accepted, LOG_INFO, fields,
                                "connection from %s (%s) closed: shutting down", peer_addr, identity);
        else if (r < 0)
                log_ratelimited(&d->limits.accepted, LOG_WARNING, fields, "connection from %s (%s) dropped: %s",
                                peer_addr, identity, strerror(-r));
        else
                log_ratelimited(&d->limits.accepted, LOG_INFO, fields, "connection %llu from %s: client %s",
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
        log_ratelimited(&d->limits.refused, LOG_NOTICE, fields, "refused connection from %s: %s", peer_addr,
                        reason);
}

static void on_closed(void *userdata, uint64_t conn_id, int grpc_fd_number) {
        Daemon *d = userdata;

        server_remove_connection(d->server, conn_id, grpc_fd_number);
        (void) engine_post(d->engine, daemon_status_changed, d);
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

const TlsBridgeOps daemon_bridge_ops = {
        .accepted = on_accepted,
        .refused = on_refused,
        .closed = on_closed,
        .kernel_tls = on_kernel_tls,
        .connect_inner = on_connect_inner,
};
