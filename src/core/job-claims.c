/* SPDX-License-Identifier: MIT */
/*
 * What a job claims among its owner's jobs: its name, while it is starting
 * or running (two running jobs of one owner never share a name; a lost job
 * whose process still runs counts as running: job_holds_name()), and its
 * Start's request id, for as long as its record exists (a retried Start
 * with that id gets the same job, also while the first is still starting).
 *
 * The one idea: a claim is one small object in one of two maps keyed
 * "WORD/OWNER" (a name or a request id holds no '/', so the key splits
 * back), owned first by the start (JobStart) and handed to the job when it
 * registers; whoever owns it gives it back at the one point its life ends,
 * so a lookup at Start is O(1) and nothing scans the jobs. Starts without
 * a name or a request id touch neither map.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine-internal.h"
#include "core/job-start.h"
#include "shared/macro.h"

struct Claim {
        Job *job;               /* the job that holds it, or */
        JobStart *start;        /* the start that does (exactly one set) */
        char key[];             /* "WORD/OWNER": the map's key */
};

static Claim *claim_new(const char *word, const char *owner) {
        size_t wl = strlen(word), ol = strlen(owner);
        Claim *c = malloc(sizeof(Claim) + wl + 1 + ol + 1);

        if (!c)
                return NULL;
        *c = (Claim) {};
        memcpy(c->key, word, wl);
        c->key[wl] = '/';
        memcpy(c->key + wl + 1, owner, ol + 1);
        return c;
}

/* The claim of word by owner in m, or NULL; the lookup key on the stack
 * (words are short; owners at most JOB_OWNER_MAX). */
static Claim *claim_find(StrMap *m, const char *word, const char *owner) {
        char key[JOB_REQUEST_ID_MAX + JOB_NAME_MAX + JOB_OWNER_MAX + 2];
        size_t wl = strlen(word), ol = strlen(owner);

        if (m->n == 0 || wl + ol + 2 > sizeof(key))
                return NULL;
        memcpy(key, word, wl);
        key[wl] = '/';
        memcpy(key + wl + 1, owner, ol + 1);
        return strmap_get(m, key);
}

/* Gives c back: out of its map (if it is the one there) and freed. */
static Claim *claim_release(StrMap *m, Claim *c) {
        if (!c)
                return NULL;
        if (strmap_get(m, c->key) == c)
                (void) strmap_remove(m, c->key);
        free(c);
        return NULL;
}

static int claim_put(StrMap *m, const char *word, const char *owner, Job *j, JobStart *js, Claim **ret) {
        Claim *c = claim_new(word, owner);
        int r;

        if (!c)
                return -ENOMEM;
        c->job = j;
        c->start = js;
        r = strmap_put(m, c->key, c);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* Answers a retried Start with the job its request id started, from the
 * loop as every start is answered. */
typedef struct Replay {
        EngineStartDone done;
        void *userdata;
        JobId id;
} Replay;

static void replay_run(Engine *e, void *userdata) {
        Replay *rp = userdata;
        JobStartError err = {};

        rp->done(e, e ? 0 : -ECANCELED, e ? &rp->id : NULL, &err, rp->userdata);
        free(rp);
}

int claims_check_start(Engine *e, const JobSpec *spec, JobStartError *err, EngineStartDone done, void *userdata) {
        const char *owner = spec->owner ?: "";
        Claim *c;

        if (spec->request_id && spec->request_id[0] && (c = claim_find(&e->request_ids, spec->request_id, owner))) {
                if (c->start) {
                        StartWaiter *w = malloc(sizeof(*w));
                        if (!w)
                                return -ENOMEM;
                        *w = (StartWaiter) { .next = c->start->waiters, .done = done, .userdata = userdata };
                        c->start->waiters = w;
                        return 1;
                }
                Replay *rp = malloc(sizeof(*rp));
                if (!rp)
                        return -ENOMEM;
                *rp = (Replay) { .done = done, .userdata = userdata, .id = c->job->st.id };
                if (engine_post(e, replay_run, rp) < 0) {
                        free(rp);
                        return -ENOMEM;
                }
                return 1;
        }
        if (spec->name && spec->name[0] && (c = claim_find(&e->names, spec->name, owner))) {
                char id[JOB_ID_STRING_MAX];
                err->stage = JOB_START_STAGE_NAME;
                err->error = EEXIST;
                job_id_to_string(c->job ? &c->job->st.id : &c->start->id, id);
                snprintf(err->message, sizeof(err->message), "a job of %s named '%s' is %s: %s (a name is unique among "
                         "running jobs of an owner)", owner, spec->name,
                         !c->job                               ? "starting"
                         : c->job->st.state == JOB_STATE_LOST ? "lost, and its process still runs"
                                                               : "running",
                         id);
                return -EEXIST;
        }
        return 0;
}

int claims_take_start(Engine *e, JobStart *js) {
        const JobSpec *spec = &js->spec;
        const char *owner = spec->owner ?: "";
        int r;

        if (spec->request_id && spec->request_id[0]) {
                r = claim_put(&e->request_ids, spec->request_id, owner, NULL, js, &js->rid_claim);
                if (r < 0)
                        return r;
        }
        if (spec->name && spec->name[0]) {
                r = claim_put(&e->names, spec->name, owner, NULL, js, &js->name_claim);
                if (r < 0)
                        return r;
        }
        return 0;
}

void claims_start_to_job(JobStart *js, Job *j) {
        if ((j->rid_claim = TAKE_PTR(js->rid_claim))) {
                j->rid_claim->job = j;
                j->rid_claim->start = NULL;
        }
        if ((j->name_claim = TAKE_PTR(js->name_claim))) {
                j->name_claim->job = j;
                j->name_claim->start = NULL;
        }
}

void claims_start_free(Engine *e, JobStart *js) {
        if (e) {
                js->rid_claim = claim_release(&e->request_ids, js->rid_claim);
                js->name_claim = claim_release(&e->names, js->name_claim);
        } else {
                /* The engine is gone with its maps (claims_done()). */
                free(TAKE_PTR(js->rid_claim));
                free(TAKE_PTR(js->name_claim));
        }
}

/* A job holds its name while its work may still be going on: running, or
 * lost (a previous daemon died without keeping it) with its process alive,
 * so that a second `--name nightly` does not run beside the first. Its
 * claim goes at its end either way (claims_job_ended()). */
static bool job_holds_name(const Job *j) {
        return j->st.state == JOB_STATE_RUNNING || (j->st.state == JOB_STATE_LOST && j->st.process_alive);
}

void claims_job_loaded(Engine *e, Job *j) {
        /* An old record has neither; a name two records both claim (no
         * daemon wrote that) stays with the first. */
        if (j->st.request_id[0])
                (void) claim_put(&e->request_ids, j->st.request_id, j->st.owner, j, NULL, &j->rid_claim);
        if (j->st.name[0] && job_holds_name(j))
                (void) claim_put(&e->names, j->st.name, j->st.owner, j, NULL, &j->name_claim);
}

void claims_job_ended(Engine *e, Job *j) {
        j->name_claim = claim_release(&e->names, j->name_claim);
}

void claims_job_free(Engine *e, Job *j) {
        j->name_claim = claim_release(&e->names, j->name_claim);
        j->rid_claim = claim_release(&e->request_ids, j->rid_claim);
}

void claims_done(Engine *e) {
        /* The claims stay with their jobs and starts, which free them. */
        strmap_done(&e->names);
        strmap_done(&e->request_ids);
}

bool engine_request_id_known(Engine *e, const char *owner, const char *request_id) {
        return request_id && request_id[0] && claim_find(&e->request_ids, request_id, owner ?: "");
}
