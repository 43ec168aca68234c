/* SPDX-License-Identifier: MIT */

/*
 * Jobs: the objects, the id -> job hash, and starting one.
 *
 * The one idea: a start is a line of small stages — validate, prepare (id,
 * directory, log, pipes, environment), io devices, cgroup, spawn, register —
 * that fill one JobStart, and every failure goes through one unwinding
 * function, job_start_free(), which undoes exactly what exists (a child that
 * was spawned is killed and reaped, the cgroup and the directory removed).
 * Only the last stage turns the JobStart into a Job the engine owns.
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/cgroup.h"
#include "core/engine-internal.h"
#include "core/job-env.h"
#include "core/job-start.h"
#include "shared/macro.h"

/* Job objects ---------------------------------------------------------------- */

Job *job_new(Engine *e) {
        Job *j = calloc(1, sizeof(Job));
        if (!j)
                return NULL;
        j->pidfd = j->log_fd = j->cg_fd = j->cg_events_fd = -1;
        j->pipe_fd[0] = j->pipe_fd[1] = -1;
        if (ring_slot_alloc(&e->job_slots, j, &j->slot, &j->gen) < 0) {
                free(j);
                return NULL;
        }
        return j;
}

static void job_hash_remove(Engine *e, Job *j);

void job_free(Engine *e, Job *j) {
        if (!j)
                return;
        assert(j->subs.n == 0);
        list_unlink(&e->jobs, &j->by_start);
        list_unlink(&e->finished, &j->by_end);
        list_unlink(&e->drains, &j->drain);
        list_unlink(&e->rearms, &j->rearm_node);
        list_unlink(&e->exit_waits, &j->exit_wait);
        job_hash_remove(e, j);
        owner_usage_detach(e, j);
        claims_job_free(e, j);
        if (j->status_unsaved)
                e->n_unsaved--;
        job_input_end(e, j);
        safe_close(j->pidfd);
        safe_close(j->pipe_fd[0]);
        safe_close(j->pipe_fd[1]);
        safe_close(j->log_fd);
        safe_close(j->cg_fd);
        safe_close(j->cg_events_fd);
        /* Left to the next daemon (engine_leave_running()): its fds stay
         * in the store. */
        if (!e->leave_running)
                keeper_release(e->keeper, j->keep_bundle);
        ring_slot_free(&e->job_slots, j->slot);
        free(j);
}

void job_notify(Engine *e, EngineEvent ev, Job *j) {
        if (e->observer)
                e->observer(e, ev, &j->st, e->observer_userdata);
}

void job_cgroup_name(const JobId *id, char buf[static JOB_ID_STRING_MAX + 8]) {
        char s[JOB_ID_STRING_MAX];
        snprintf(buf, JOB_ID_STRING_MAX + 8, "job-%s", job_id_to_string(id, s));
}

/* A new fd of the job's cgroup directory (caller closes), or -1. */
int job_open_cgroup(Engine *e, Job *j) {
        char name[JOB_ID_STRING_MAX + 8];

        if (!j->st.has_cgroup || e->cgroup_fd < 0)
                return -1;
        job_cgroup_name(&j->st.id, name);
        return openat(e->cgroup_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* A copy of the job's status; for a running job with a cgroup, with its
 * CPU time and memory so far. */
void job_status_now(Engine *e, Job *j, JobStatus *ret) {
        *ret = j->st;
        if (j->st.state == JOB_STATE_RUNNING && j->st.has_cgroup) {
                int fd = job_open_cgroup(e, j);
                if (fd >= 0) {
                        cgroup_read_stats(fd, ret);
                        safe_close(fd);
                }
        }
}

int job_arm_all(Engine *e, Job *j) {
        int r = engine_arm_poll(e, j->pidfd, POLLIN, OP_PIDFD, j);

        if (r < 0)
                return r;
        j->pidfd_armed = true;
        /* A pipe poll that cannot be queued only delays output: the loop
         * queues it again. */
        for (int i = 0; i < 2; i++) {
                if (engine_arm_poll(e, j->pipe_fd[i], POLLIN, i == 0 ? OP_PIPE_OUT : OP_PIPE_ERR, j) >= 0)
                        j->poll_armed[i] = true;
                else
                        engine_rearm_later(e, j, i == 0 ? REARM_OUT : REARM_ERR);
        }
        return 0;
}

/* The id -> job hash ---------------------------------------------------------
 * Job ids are random, so their first 8 bytes are the hash; chained buckets,
 * doubled when there are more jobs than buckets. */

static size_t id_hash(const JobId *id, size_t n_buckets) {
        uint64_t h;
        memcpy(&h, id->bytes, sizeof(h)); /* random bits already */
        return (size_t) (h & (n_buckets - 1));
}

static int hash_grow(Engine *e) {
        size_t nb = e->n_buckets ? e->n_buckets * 2 : 256;
        Job **h = calloc(nb, sizeof(Job *));
        if (!h)
                return -ENOMEM;
        for (size_t b = 0; b < e->n_buckets; b++)
                for (Job *j = e->hash[b], *next; j; j = next) {
                        next = j->hash_next;
                        size_t k = id_hash(&j->st.id, nb);
                        j->hash_next = h[k];
                        h[k] = j;
                }
        free(e->hash);
        e->hash = h;
        e->n_buckets = nb;
        return 0;
}

int job_hash_add(Engine *e, Job *j) {
        if (e->job_slots.n_used > e->n_buckets) {
                int r = hash_grow(e);
                if (r < 0)
                        return r;
        }
        if (owner_usage_attach(e, j) < 0)
                return -ENOMEM;
        size_t k = id_hash(&j->st.id, e->n_buckets);
        j->hash_next = e->hash[k];
        e->hash[k] = j;
        return 0;
}

static void job_hash_remove(Engine *e, Job *j) {
        if (!e->n_buckets)
                return;
        size_t k = id_hash(&j->st.id, e->n_buckets);
        for (Job **p = &e->hash[k]; *p; p = &(*p)->hash_next)
                if (*p == j) {
                        *p = j->hash_next;
                        return;
                }
}

Job *job_find(Engine *e, const JobId *id) {
        if (!e->n_buckets)
                return NULL;
        for (Job *j = e->hash[id_hash(id, e->n_buckets)]; j; j = j->hash_next)
                if (job_id_equal(&j->st.id, id))
                        return j;
        return NULL;
}
