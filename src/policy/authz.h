/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Authorization decisions: given the policy, the caller's identity, the
 * action and (for job actions) the job's owner, allow, deny, or hide.
 *
 * A job the caller may not see at all is "hidden" and must be answered
 * exactly like a job that does not exist (NOT_FOUND), so ids of other
 * users' jobs are not revealed. An identity the policy does not know is
 * denied everything (PERMISSION_DENIED), before any job is looked at.
 */

#include <stdbool.h>

#include "policy/policy.h"

typedef enum AuthzAction {
        AUTHZ_ACTION_START,
        AUTHZ_ACTION_STOP,
        AUTHZ_ACTION_STATUS,
        AUTHZ_ACTION_OUTPUT,
        AUTHZ_ACTION_LIST,
        AUTHZ_ACTION_SIGNAL, /* decided as STOP: task-manager of the job */
        AUTHZ_ACTION_INPUT,     /* write a job's stdin: as STOP */
} AuthzAction;

typedef enum AuthzDecision {
        AUTHZ_ALLOW,
        AUTHZ_DENY, /* PERMISSION_DENIED */
        AUTHZ_HIDE, /* NOT_FOUND, indistinguishable from a missing job */
} AuthzDecision;

/* job_owner: the owner of the job acted on; NULL when no such job exists
 * (then the answer is AUTHZ_HIDE for a known identity). Ignored for START
 * and LIST. */
AuthzDecision authz_decide(const Policy *p, const char *identity, AuthzAction action, const char *job_owner);

/* Whether identity may see (status/output) a job owned by job_owner; used to
 * filter List. */
bool authz_can_see(const Policy *p, const char *identity, const char *job_owner);

const char *authz_action_to_string(AuthzAction a);
