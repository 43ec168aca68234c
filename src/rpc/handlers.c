/* SPDX-License-Identifier: MIT */
/*
 * The unary handlers of the gRPC server: Start, Stop, Status, List, Signal.
 *
 * The one idea: every handler runs on the engine thread with a call whose
 * identity was resolved when it arrived; it authorizes first (a job the
 * caller may not see is NOT_FOUND, never PERMISSION_DENIED), then acts, and
 * answers exactly once through call_finish(). Errors become statuses only
 * through status-map.c.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobworker/v1/jobworker.pb-c.h"
#include "policy/authz.h"
#include "policy/limits.h"
#include "rpc/response.h"
#include "rpc/server-internal.h"
#include "rpc/status-map.h"
#include "shared/macro.h"
#include "shared/parse-util.h"
#include "shared/signal-name.h"

static void finish_not_found(RpcCall *c) {
        call_finishf(c, GRPC_STATUS_NOT_FOUND, "no job %s", c->request->job_id_string);
}

static void report_denied(Server *s, RpcCall *c, const char *action, const char *job_id) {
        if (s->denied)
                s->denied(s->denied_userdata, c->identity, action, job_id);
}

static void finish_unknown_identity(RpcCall *c) {
        report_denied(c->server, c, "call anything (not in the policy)", NULL);
        call_finishf(c, GRPC_STATUS_PERMISSION_DENIED, "client '%s' is not in the policy", c->identity);
}

void handlers_finish_error(RpcCall *c, int r, const char *what) {
        StatusMapping m;

        if (r == -ENOENT) {
                finish_not_found(c);
                return;
        }
        status_map_error(r, what, &m);
        call_finish(c, m.code, m.message, NULL);
}

/* The answer of Stop, Status and Signal: a message holding only the job's
 * status (its type after c's method). */
static void status_response(RpcCall *c, const JobStatus *st) {
        ResponseStatusStrings strings;
        Jobworker__V1__JobStatus js;

        response_job_status(st, &js, &strings);
        if (c->method == REQUEST_STOP) {
                Jobworker__V1__StopResponse resp = JOBWORKER__V1__STOP_RESPONSE__INIT;
                resp.status = &js;
                call_finish(c, GRPC_STATUS_OK, NULL, &resp.base);
        } else if (c->method == REQUEST_SIGNAL) {
                Jobworker__V1__SignalResponse resp = JOBWORKER__V1__SIGNAL_RESPONSE__INIT;
                resp.status = &js;
                call_finish(c, GRPC_STATUS_OK, NULL, &resp.base);
        } else {
                Jobworker__V1__StatusResponse resp = JOBWORKER__V1__STATUS_RESPONSE__INIT;
                resp.status = &js;
                call_finish(c, GRPC_STATUS_OK, NULL, &resp.base);
        }
}

/* A Start's answer, on the engine thread. e NULL: the engine is going away
 * (the server may be gone too): only let go of the call. */
static void on_started(Engine *e, int r, const JobId *id, const JobStartError *err, void *userdata) {
        RpcCall *c = userdata;
        char idbuf[JOB_ID_STRING_MAX];

        if (!e || !call_may_send(c)) {
                call_unref(c); /* the start's reference */
                return;
        }
        if (r < 0) {
                StatusMapping m;

                status_map_start_error(r, err, &m);
                /* The host ran out of something: the operator hears of it too. */
                if (m.exhausted && c->server->start_failed)
                        c->server->start_failed(c->server->denied_userdata, c->identity, m.resource, m.message);
                call_finish(c, m.code, m.message, NULL);
        } else {
                Jobworker__V1__StartResponse resp = JOBWORKER__V1__START_RESPONSE__INIT;
                resp.job_id = job_id_to_string(id, idbuf);
                call_finish(c, GRPC_STATUS_OK, NULL, &resp.base);
        }
        call_unref(c); /* the start's reference */
}

/* The policy's bounds and defaults for c's Start into *limits; the engine
 * resolves the io devices (as the job's account sees the paths). false: c
 * was answered. */
static bool start_limits(RpcCall *c, const LimitsBounds *bounds, JobLimits *limits,
                         LimitsIoRequest io_req[static LIMITS_IO_MAX], uint64_t *ret_max_runtime) {
        Server *s = c->server;
        _cleanup_free_ char *message = NULL;
        int r;

        r = limits_apply_bounds(bounds, c->identity, &c->request->limits, limits, io_req, &message);
        if (r >= 0)
                r = limits_apply_runtime(bounds, c->identity, c->request->max_runtime_usec, ret_max_runtime, &message);
        if (r == -EACCES) {
                report_denied(s, c, "start a job with these limits", NULL);
                call_finish(c, GRPC_STATUS_PERMISSION_DENIED, message, NULL);
                return false;
        }
        if (r < 0) {
                handlers_finish_error(c, r, "cannot apply the limits");
                return false;
        }
        limits->io_devices = io_req;
        limits->n_io_devices = limits->n_io;
        limits->n_io = 0;
        return true;
}

/* The identity's max-jobs= and max-output= against what its jobs use now
 * (the engine's per-owner tally). false: c was answered. */
static bool start_usage(Engine *e, RpcCall *c, const LimitsBounds *bounds) {
        _cleanup_free_ char *message = NULL;
        unsigned running;
        uint64_t output;
        int r;

        if (!bounds->max_jobs && !bounds->max_output)
                return true;
        engine_owner_usage(e, c->identity, &running, &output);
        r = limits_check_usage(bounds, c->identity, running, output, &message);
        if (r == -EDQUOT) {
                call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, message, NULL);
                return false;
        }
        if (r < 0) {
                handlers_finish_error(c, r, "cannot check the limits");
                return false;
        }
        return true;
}

/* Authorizes, applies the policy's bounds, and hands the start to the
 * engine, which answers through on_started(): the io device paths, HOME and
 * the cwd are looked at off the engine thread (a hung path stalls nothing). */
static void handle_start(Engine *e, RpcCall *c) {
        Server *s = c->server;
        const Request *req = c->request;
        JobCredentials creds;
        LimitsBounds bounds = {};
        LimitsIoRequest io_req[LIMITS_IO_MAX];
        JobLimits limits;
        uint64_t max_runtime = 0;
        JobSpec spec;
        int r;

        switch (authz_decide(s->policy, c->identity, AUTHZ_ACTION_START, NULL)) {
        case AUTHZ_ALLOW:
                break;
        case AUTHZ_DENY:
        case AUTHZ_HIDE:
                if (!policy_knows(s->policy, c->identity))
                        finish_unknown_identity(c);
                else {
                        report_denied(s, c, "start", NULL);
                        call_finishf(c, GRPC_STATUS_PERMISSION_DENIED, "'%s' may not start jobs", c->identity);
                }
                return;
        }
        if (s->draining) {
                call_finishf(c, GRPC_STATUS_UNAVAILABLE, "the server is shutting down");
                return;
        }
        r = policy_credentials(s->policy, c->identity, &creds);
        if (r < 0) {
                call_finishf(c, GRPC_STATUS_INTERNAL, "no account to run jobs of '%s' as", c->identity);
                return;
        }
        (void) policy_bounds(s->policy, c->identity, &bounds);
        if (!start_limits(c, &bounds, &limits, io_req, &max_runtime))
                return;
        /* A retry of a Start the engine knows starts nothing: not counted
         * against max-jobs= (the first one is). */
        if (!engine_request_id_known(e, c->identity, req->request_id) && !start_usage(e, c, &bounds))
                return;

        spec = (JobSpec) {
                .argv = req->argv,
                .env = req->env,
                .cwd = req->cwd,
                .owner = c->identity,
                .creds = &creds,
                .limits = &limits,
                .cgroup_fd = -1,
                .isolate = req->isolate,
                .owner_output_max = bounds.max_output,
                .max_runtime_usec = max_runtime,
                .name = req->name,
                .labels = req->labels,
                .request_id = req->request_id,
                .stdin_open = req->stdin_open,
                .tty = req->tty ? &req->terminal : NULL,
        };
        r = engine_start_job(e, &spec, on_started, call_ref(c));
        if (r < 0) {
                call_unref(c);
                handlers_finish_error(c, r, "cannot start job");
        }
}

/* Looks the job up and decides; answers and returns false unless allowed. */
bool handlers_authorize_job(Engine *e, RpcCall *c, AuthzAction action, JobStatus *ret_status) {
        Server *s = c->server;
        int r;

        if (!policy_knows(s->policy, c->identity)) {
                finish_unknown_identity(c);
                return false;
        }
        r = engine_get_status(e, &c->request->job_id, ret_status);
        if (r < 0 && r != -ENOENT) {
                handlers_finish_error(c, r, "cannot look up job");
                return false;
        }
        switch (authz_decide(s->policy, c->identity, action, r < 0 ? NULL : ret_status->owner)) {
        case AUTHZ_ALLOW:
                return true;
        case AUTHZ_HIDE:
                finish_not_found(c);
                return false;
        case AUTHZ_DENY:
                report_denied(s, c, authz_action_to_string(action), c->request->job_id_string);
                call_finishf(c, GRPC_STATUS_PERMISSION_DENIED, "'%s' may not %s job %s", c->identity,
                             authz_action_to_string(action), c->request->job_id_string);
                return false;
        }
        return false;
}

/* Tells the daemon's log who stopped or signalled which job. */
static void report_acted(RpcCall *c, AuthzAction action, const JobStatus *st, const char *fmt, ...) _printf_(4, 5);
static void report_acted(RpcCall *c, AuthzAction action, const JobStatus *st, const char *fmt, ...) {
        char what[128];
        va_list ap;

        if (!c->server->acted)
                return;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        c->server->acted(c->server->denied_userdata, c->identity, action, st, what);
}

static void handle_stop(Engine *e, RpcCall *c) {
        JobStatus st;
        int r;

        if (!handlers_authorize_job(e, c, AUTHZ_ACTION_STOP, &st))
                return;
        r = engine_stop_job(e, &c->request->job_id, c->request->grace_usec);
        if (r == -ESRCH) {
                call_finishf(c, GRPC_STATUS_FAILED_PRECONDITION, "job %s is not running (%s)",
                             c->request->job_id_string, job_state_to_string(st.state));
                return;
        }
        if (r < 0) {
                handlers_finish_error(c, r, "cannot stop job");
                return;
        }
        r = engine_get_status(e, &c->request->job_id, &st);
        if (r < 0) {
                handlers_finish_error(c, r, "cannot look up job");
                return;
        }
        if (c->request->grace_usec == UINT64_MAX)
                report_acted(c, AUTHZ_ACTION_STOP, &st, "stop requested with the default grace");
        else {
                char grace[PARSE_DURATION_STRING_MAX];
                report_acted(c, AUTHZ_ACTION_STOP, &st, "stop requested with a grace of %s",
                             format_duration(c->request->grace_usec, grace));
        }
        status_response(c, &st);
}

static void handle_signal(Engine *e, RpcCall *c) {
        const Request *req = c->request;
        JobStatus st;
        int r;

        if (!handlers_authorize_job(e, c, AUTHZ_ACTION_SIGNAL, &st))
                return;
        r = engine_signal_job(e, &req->job_id, req->signal, req->signal_all);
        if (r == -ESRCH) {
                call_finishf(c, GRPC_STATUS_FAILED_PRECONDITION, "job %s has ended (%s)", req->job_id_string,
                             job_state_to_string(st.state));
                return;
        }
        if (r < 0) {
                char what[96];

                snprintf(what, sizeof(what), "cannot send signal %d to job %s", req->signal, req->job_id_string);
                handlers_finish_error(c, r, what);
                return;
        }
        r = engine_get_status(e, &req->job_id, &st);
        if (r < 0) {
                handlers_finish_error(c, r, "cannot look up job");
                return;
        }
        char name[SIGNAL_NAME_MAX];
        report_acted(c, AUTHZ_ACTION_SIGNAL, &st, "signal %s (%d) sent to %s", signal_abbrev(req->signal, name) ?: "?",
                     req->signal, req->signal_all ? "all its processes" : "its main process");
        status_response(c, &st);
}

static void handle_status(Engine *e, RpcCall *c) {
        JobStatus st;

        if (!handlers_authorize_job(e, c, AUTHZ_ACTION_STATUS, &st))
                return;
        status_response(c, &st);
}

static bool list_visible(void *userdata, const char *owner) {
        RpcCall *c = userdata;
        return authz_can_see(c->server->policy, c->identity, owner);
}

static void handle_list(Engine *e, RpcCall *c) {
        Server *s = c->server;
        _cleanup_free_ JobStatus *all = NULL;
        _cleanup_free_ Jobworker__V1__JobStatus *msgs = NULL;
        _cleanup_free_ Jobworker__V1__JobStatus **ptrs = NULL;
        _cleanup_free_ ResponseStatusStrings *strings = NULL;
        Jobworker__V1__ListResponse resp = JOBWORKER__V1__LIST_RESPONSE__INIT;
        size_t n = 0, k = 0;
        int r;

        if (authz_decide(s->policy, c->identity, AUTHZ_ACTION_LIST, NULL) != AUTHZ_ALLOW) {
                finish_unknown_identity(c);
                return;
        }
        const Request *req = c->request;
        EngineListFilter filter = {
                .owner = req->list_owner,
                .states = req->running_only ? 1u << JOB_STATE_RUNNING : req->list_states,
                .name = req->list_name,
                .n_labels = req->n_list_labels,
                .label_keys = req->list_label_keys,
                .label_values = req->list_label_values,
                .visible = list_visible,
                .userdata = c,
        };
        /* running_only and states together: both must hold (a bit of no
         * state when they cannot). */
        if (req->running_only && req->list_states)
                filter.states = (req->list_states & (1u << JOB_STATE_RUNNING)) ?: 1u << 31;
        r = engine_list_filtered(e, &filter, &all, &n);
        if (r < 0) {
                handlers_finish_error(c, r, "cannot list jobs");
                return;
        }
        if (n > 0) {
                msgs = calloc(n, sizeof(*msgs));
                ptrs = calloc(n, sizeof(*ptrs));
                strings = calloc(n, sizeof(*strings));
                if (!msgs || !ptrs || !strings) {
                        call_finishf(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                        return;
                }
        }
        for (size_t i = 0; i < n; i++) {
                response_job_status(&all[i], &msgs[k], &strings[k]);
                ptrs[k] = &msgs[k];
                k++;
        }
        resp.n_jobs = k;
        resp.jobs = ptrs;
        call_finish(c, GRPC_STATUS_OK, NULL, &resp.base);
}

void handlers_dispatch(Engine *e, RpcCall *c) {
        switch (c->method) {
        case REQUEST_START:
                handle_start(e, c);
                break;
        case REQUEST_STOP:
                handle_stop(e, c);
                break;
        case REQUEST_STATUS:
                handle_status(e, c);
                break;
        case REQUEST_LIST:
                handle_list(e, c);
                break;
        case REQUEST_OUTPUT:
                output_stream_handle(e, c);
                break;
        case REQUEST_SIGNAL:
                handle_signal(e, c);
                break;
        case REQUEST_INPUT:
                input_stream_handle(e, c);
                break;
        }
}
