/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the daemon logs about events of the other layers: the engine's
 * observer (jobs started, exited, removed), the TLS bridge's callbacks
 * (connections accepted, refused, closed; kernel TLS), and the server's
 * (permission denied, Start failed). Everything a remote party can cause
 * is rate-limited, per peer and per kind.
 *
 * The callbacks take the Daemon as userdata; each says its thread.
 */

#include "core/engine.h"
#include "daemon/log.h"
#include "daemon/peer-ratelimit.h"
#include "policy/authz.h"
#include "rpc/status-map.h"
#include "tls/bridge.h"

/* The budgets of log lines that clients cause. */
typedef struct EventLimits {
        LogRateLimit refused;
        LogRateLimit accepted;
        LogRateLimit denied;
        LogRateLimit start_failed;
        LogRateLimit acted;
        PeerRateLimit per_peer;        /* what one address or client may make us log */
} EventLimits;

void event_limits_init(EventLimits *l);
void event_limits_done(EventLimits *l);

/* The bridge's ops table: every TlsBridgeOps callback of the daemon is
 * named here, in one place. */
extern const TlsBridgeOps daemon_bridge_ops;

/* Engine thread. */
void daemon_observer(Engine *e, EngineEvent ev, const JobStatus *st, void *userdata);
void daemon_on_denied(void *userdata, const char *identity, const char *action, const char *job_id);
void daemon_on_start_failed(void *userdata, const char *identity, StatusResource resource, const char *reason);
void daemon_on_acted(void *userdata, const char *identity, AuthzAction action, const JobStatus *st, const char *what);
