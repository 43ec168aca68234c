/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the policy parser (rpc/policy.c) and the permission
 * lookups on whatever it accepted.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/authz.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Policy *p = NULL;
        char *error = NULL;
        int r;

        r = policy_parse((const char *) data, size, "fuzz.conf", &p, &error);
        if (r < 0) {
                if (p || (r == -EINVAL && !error))
                        abort();
                free(error);
                return 0;
        }
        if (error)
                abort();
        for (size_t i = 0; i < p->n_rules; i++) {
                const char *u = p->rules[i].user;
                if (!policy_knows(p, u) || !policy_run_as(p, u))
                        abort();
                if (policy_permissions(p, u, u) == 0)
                        abort(); /* every role grants something on own jobs */
                (void) authz_decide(p, u, AUTHZ_ACTION_STOP, "someone-else");
                (void) authz_decide(p, u, AUTHZ_ACTION_START, NULL);
        }
        policy_free(p);
        return 0;
}
