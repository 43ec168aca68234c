/* SPDX-License-Identifier: MIT */
/*
 * Per-owner tally: how many jobs of each owner (identity) are starting or
 * running, and how many bytes of output all its jobs keep, running and
 * retained. The API checks an identity's max-jobs= and max-output= against
 * it at Start (engine_owner_usage()); capture stops keeping a job's output
 * once its owner's total reaches the bound the job was started with.
 *
 * The one idea: the tally is kept up to date at the few points where it
 * changes (a job enters or leaves the id hash, starts, ends, captures), so
 * a Start reads it in O(1) and nothing ever scans all jobs.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine-internal.h"
#include "shared/macro.h"

struct OwnerUsage {
        char *owner;            /* the map's key */
        unsigned refs;          /* jobs and starts pointing here */
        unsigned starting;      /* handed to the spawner, not back yet */
        unsigned running;
        uint64_t output;        /* bytes kept in the logs of its jobs */
};

OwnerUsage *owner_usage_ref(Engine *e, const char *owner) {
        OwnerUsage *u = strmap_get(&e->owners, owner);

        if (!u) {
                u = calloc(1, sizeof(*u));
                if (!u)
                        return NULL;
                u->owner = strdup(owner);
                if (!u->owner || strmap_put(&e->owners, u->owner, u) < 0) {
                        free(u->owner);
                        free(u);
                        return NULL;
                }
        }
        u->refs++;
        return u;
}

OwnerUsage *owner_usage_unref(Engine *e, OwnerUsage *u) {
        if (!u || --u->refs > 0)
                return NULL;
        (void) strmap_remove(&e->owners, u->owner);
        free(u->owner);
        free(u);
        return NULL;
}

int owner_usage_attach(Engine *e, Job *j) {
        j->usage = owner_usage_ref(e, j->st.owner);
        if (!j->usage)
                return -ENOMEM;
        j->usage->output += j->st.stdout_bytes + j->st.stderr_bytes;
        return 0;
}

void owner_usage_detach(Engine *e, Job *j) {
        if (!j->usage)
                return;
        j->usage->output -= MIN(j->usage->output, j->st.stdout_bytes + j->st.stderr_bytes);
        if (j->usage_running)
                j->usage->running--;
        j->usage_running = false;
        j->usage = owner_usage_unref(e, j->usage);
}

void owner_usage_set_running(Job *j, bool running) {
        if (!j->usage || j->usage_running == running)
                return;
        if (running)
                j->usage->running++;
        else
                j->usage->running--;
        j->usage_running = running;
}

void owner_usage_starting(OwnerUsage *u, int delta) {
        if (u)
                u->starting += delta;
}

size_t owner_usage_room(const Job *j, size_t want) {
        uint64_t used;

        if (!j->usage || !j->owner_output_max)
                return want;
        used = j->usage->output;
        if (used >= j->owner_output_max)
                return 0;
        return (size_t) MIN((uint64_t) want, j->owner_output_max - used);
}

void owner_usage_output(Job *j, uint64_t n) {
        if (j->usage)
                j->usage->output += n;
}

void engine_owner_usage(Engine *e, const char *owner, unsigned *ret_running, uint64_t *ret_output) {
        const OwnerUsage *u = owner ? strmap_get(&e->owners, owner) : NULL;

        *ret_running = u ? u->starting + u->running : 0;
        *ret_output = u ? u->output : 0;
}

void owner_usage_free_all(Engine *e) {
        /* What is left belongs to starts abandoned while the engine went
         * away (they never come back to unref). */
        for (size_t i = 0; i < e->owners.cap; i++) {
                OwnerUsage *u = e->owners.entries[i].value;
                if (e->owners.entries[i].key) {
                        free(u->owner);
                        free(u);
                }
        }
        strmap_done(&e->owners);
}
