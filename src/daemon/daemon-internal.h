/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Daemon object's inside, shared by daemon.c (building and freeing),
 * lifecycle.c (the state machine) and events.c (what gets logged).
 */

#include <signal.h>
#include <stddef.h>

#include "core/engine.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/fdstore.h"
#include "daemon/listen.h"
#include "daemon/notify.h"
#include "daemon/reexec.h"
#include "daemon/signals.h"
#include "policy/policy.h"
#include "rpc/server.h"
#include "tls/bridge.h"
#include "tls/tls.h"

/* The lifecycle. Owned by the engine thread (the main thread, which is the
 * engine thread before daemon_run() too); every change goes through one of
 * the named transitions in lifecycle.c.
 *
 *   STARTING --run--> SERVING --SIGHUP--> RELOADING --policy in place--> SERVING
 *   SERVING/RELOADING --SIGTERM--> DRAINING_JOBS --last job exited--> DRAINING_STREAMS
 *   DRAINING_STREAMS --gRPC done--> STOPPED (the engine loop ends)
 */
typedef enum DaemonState {
        DAEMON_STARTING,          /* being built: nothing is served yet */
        DAEMON_SERVING,
        DAEMON_RELOADING,         /* SIGHUP: new certificates/policy on their way */
        DAEMON_DRAINING_JOBS,     /* SIGTERM: Start refused, running jobs being stopped */
        DAEMON_DRAINING_STREAMS,  /* no job runs: gRPC shuts down once the Output streams end */
        DAEMON_STOPPED,           /* gRPC is done: the engine loop ends */
} DaemonState;

struct Daemon {
        Config config;
        DaemonState state;             /* engine thread */

        TlsContext *tls;               /* until the bridge takes its own reference */
        Policy *policy;                /* until server_new() takes it */
        int listen_fds[LISTEN_FDS_MAX]; /* -1 once handed to the bridge */
        size_t n_listen_fds;
        char *cgroup_root;             /* where job cgroups go, or NULL */
        int listen_keep[LISTEN_FDS_MAX]; /* copies of the listening sockets, for an upgrade's exec */
        size_t n_listen_keep;
        bool jobs_outlive;             /* the engine keeps jobs' fds in the store */
        char *upgrade_path;            /* engine thread: the new binary to exec once the loop ends */
        FdStoreHandback handback;      /* stored fds systemd gave back, until the engine read them */
        EngineFdStore fdstore;         /* the engine's keeper talks to systemd through this */

        Engine *engine;
        Notifier *notifier;            /* engine thread */
        EngineTimer *drain_timer;      /* ends the wait for Output streams */
        bool grpc_initialized;
        Server *server;
        TlsBridge *bridge;
        sigset_t signal_mask;
        SignalThread *signals;

        EventLimits limits;
};

/* Loading, with errors logged (daemon.c). Also used by reload. */
int daemon_load_tls(const Config *c, TlsContext **ret);
int daemon_load_policy(const Config *c, Policy **ret);
const char *daemon_state_dir(const Daemon *d);

/* Lifecycle (lifecycle.c). */
void daemon_enter_serving(Daemon *d);                       /* engine thread */
void daemon_job_exited(Daemon *d);                          /* engine thread */
void daemon_on_signal(void *userdata, int signo);           /* signal thread */
/* Engine closures (userdata: the Daemon): the drain deadline passed; the
 * STATUS= text may have changed. */
void daemon_drain_timeout(Engine *e, void *userdata);
void daemon_status_changed(Engine *e, void *userdata);
