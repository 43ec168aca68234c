/* SPDX-License-Identifier: MIT */
/*
 * Authorization decisions on top of the policy's permission sets.
 *
 * The one idea: visibility is the status/output permission. Without it a
 * job is hidden (NOT_FOUND) whatever the action; with it but without
 * start/stop, Stop and Signal are denied (PERMISSION_DENIED).
 */

#include <stddef.h>

#include "policy/authz.h"

const char *authz_action_to_string(AuthzAction a) {
        switch (a) {
        case AUTHZ_ACTION_START:
                return "start";
        case AUTHZ_ACTION_STOP:
                return "stop";
        case AUTHZ_ACTION_STATUS:
                return "status";
        case AUTHZ_ACTION_OUTPUT:
                return "output";
        case AUTHZ_ACTION_LIST:
                return "list";
        case AUTHZ_ACTION_SIGNAL:
                return "signal";
        case AUTHZ_ACTION_INPUT:
                return "write the input of";
        }
        return "unknown";
}

bool authz_can_see(const Policy *p, const char *identity, const char *job_owner) {
        if (!job_owner)
                return false;
        return policy_permissions(p, identity, job_owner) & POLICY_PERMISSION_STATUS_OUTPUT;
}

AuthzDecision authz_decide(const Policy *p, const char *identity, AuthzAction action, const char *job_owner) {
        unsigned perms;

        if (!identity || !policy_knows(p, identity))
                return AUTHZ_DENY;

        switch (action) {
        case AUTHZ_ACTION_START:
                perms = policy_permissions(p, identity, NULL);
                return perms & POLICY_PERMISSION_START_STOP ? AUTHZ_ALLOW : AUTHZ_DENY;

        case AUTHZ_ACTION_LIST:
                return AUTHZ_ALLOW;

        case AUTHZ_ACTION_STATUS:
        case AUTHZ_ACTION_OUTPUT:
                return authz_can_see(p, identity, job_owner) ? AUTHZ_ALLOW : AUTHZ_HIDE;

        case AUTHZ_ACTION_STOP:
        case AUTHZ_ACTION_SIGNAL: /* a signal can end a job: the same right as a stop */
        case AUTHZ_ACTION_INPUT:
                if (!authz_can_see(p, identity, job_owner))
                        return AUTHZ_HIDE;
                perms = policy_permissions(p, identity, job_owner);
                return perms & POLICY_PERMISSION_START_STOP ? AUTHZ_ALLOW : AUTHZ_DENY;
        }
        return AUTHZ_DENY;
}
