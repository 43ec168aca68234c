/* SPDX-License-Identifier: MIT */

/*
 * The job engine: one thread, one io_uring, all job and subscriber state.
 * This file builds and tears down an Engine and answers the queries of
 * engine.h; the loop is in loop.c, jobs in job*.c, output in capture.c and
 * subscriber.c, the state directory in store.c.
 *
 * The one idea: no job outlives its engine. engine_free() kills what still
 * runs, waits for it, and records how it ended, so the state directory
 * never says "running" for a job nobody watches (a crashed daemon leaves
 * such jobs; the next engine marks them LOST).
 */

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "core/cgroup.h"
#include "core/engine-internal.h"
#include "core/jobfile.h"
#include "core/jobrecord.h"
#include "core/spawner.h"
#include "shared/macro.h"

int fd_above_2(int fd) {
        if (fd < 0 || fd > 2)
                return fd;
        int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        safe_close(fd);
        return n;
}

/* state_dir, its jobs/ directory, /dev/null, the wake-up eventfd. */
static int engine_open_dirs(Engine *e, const char *state_dir) {
        int r;

        e->state_dir = strdup(state_dir);
        if (!e->state_dir)
                return -ENOMEM;
        r = mkdir_p(e->state_dir, 0700);
        if (r < 0)
                return r;
        e->state_fd = open(e->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (e->state_fd < 0)
                return -errno;
        if (mkdirat(e->state_fd, "jobs", 0700) < 0 && errno != EEXIST)
                return -errno;
        e->jobs_fd = fd_above_2(openat(e->state_fd, "jobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
        if (e->jobs_fd < 0)
                return -errno;
        /* A state directory the engine cannot write would take jobs it can
         * never record: refused here, with EROFS or EACCES, rather than
         * failing every start later (jobworkerd(8), "State directory"). */
        if (faccessat(e->jobs_fd, ".", W_OK, AT_EACCESS) < 0)
                return -errno;
        e->devnull_fd = fd_above_2(open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (e->devnull_fd < 0)
                return -errno;
        e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (e->wake_fd < 0)
                return -errno;
        return 0;
}

static int engine_open_cgroup(Engine *e, const char *cgroup_root) {
        int r;

        if (!cgroup_root)
                return 0;
        e->cgroup_fd = fd_above_2(open(cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (e->cgroup_fd < 0)
                return -errno;
        r = cgroup_child_controllers(e->cgroup_fd, &e->cg_controllers);
        if (r < 0)
                return r; /* not a cgroup v2 directory */
        return 0;
}

/* A job cgroup at start belongs to a job taken over from the previous
 * daemon, or to nothing: then it is killed and removed. */
static bool cgroup_is_adopted(void *userdata, const char *name) {
        Engine *e = userdata;
        JobId id;
        Job *j;

        if (strncmp(name, "job-", 4) != 0 || job_id_from_string(name + 4, &id) < 0)
                return false;
        j = job_find(e, &id);
        return j && (j->st.state == JOB_STATE_RUNNING || j->st.process_alive);
}

/* The jobs the previous daemon left: adopted from its kept fds where it
 * kept them (keeper.c), loaded from the state directory in any case. */
static int engine_load(Engine *e, const EngineConfig *config) {
        int r = keeper_new(config->fdstore, &e->keeper);

        if (r >= 0)
                r = engine_timer_new(e, job_exit_wait_run, NULL, &e->exit_wait_timer);
        if (r >= 0)
                r = store_load(e);
        keeper_load_done(e->keeper);
        if (r >= 0 && e->cgroup_fd >= 0)
                (void) cgroup_cleanup_leftovers(e->cgroup_fd, cgroup_is_adopted, e, &e->cgroups_cleaned);
        return r;
}

static int engine_open_ring(Engine *e, unsigned entries) {
        struct io_uring_params params = {};
        struct io_uring_probe *probe;
        int r;

        /* Completions never get lost: IORING_FEAT_NODROP (5.5+) keeps an
         * overflow list when many pidfds/pipes fire at once. */
        r = io_uring_queue_init_params(entries ? entries : 1024, &e->ring, &params);
        if (r < 0)
                return r;
        e->ring_ok = true;
        probe = io_uring_get_probe_ring(&e->ring);
        e->async_unlink = probe && io_uring_opcode_supported(probe, IORING_OP_UNLINKAT);
        if (probe)
                io_uring_free_probe(probe);
        return engine_arm_wake(e);
}

static int engine_default_user(Engine *e) {
        struct passwd *pw = getpwuid(geteuid());

        e->default_user = strdup(pw ? pw->pw_name : "root");
        e->default_home = strdup(pw && pw->pw_dir ? pw->pw_dir : "/");
        return e->default_user && e->default_home ? 0 : -ENOMEM;
}

int engine_new(Engine **ret, const EngineConfig *config) {
        Engine *e;
        int r;

        if (!config || !config->state_dir || !config->state_dir[0])
                return -EINVAL;

        e = calloc(1, sizeof(Engine));
        if (!e)
                return -ENOMEM;
        e->state_fd = e->jobs_fd = e->devnull_fd = e->wake_fd = e->cgroup_fd = -1;
        pthread_mutex_init(&e->post_lock, NULL);
        e->output_cap = config->output_cap ?: ENGINE_DEFAULT_OUTPUT_CAP;
        e->retain_max_jobs = config->retain_max_jobs ?: ENGINE_DEFAULT_RETAIN_JOBS;
        e->retain_max_age_usec = config->retain_max_age_usec ?: ENGINE_DEFAULT_RETAIN_AGE_USEC;
        e->default_grace_usec = config->default_grace_usec ?: ENGINE_DEFAULT_GRACE_USEC;
        e->splice = config->capture_splice;

        r = engine_open_dirs(e, config->state_dir);
        if (r >= 0)
                r = (e->buf = malloc(ENGINE_BUFFER_SIZE)) ? 0 : -ENOMEM;
        if (r >= 0)
                r = spawner_new(e, &e->spawner);
        if (r >= 0)
                r = engine_open_cgroup(e, config->cgroup_root);
        if (r >= 0)
                r = engine_default_user(e);
        if (r >= 0)
                r = engine_open_ring(e, config->ring_entries);
        if (r >= 0)
                r = engine_load(e, config);
        if (r < 0) {
                engine_free(e);
                return r;
        }
        retention_run(e);
        (void) engine_submit(e);
        *ret = e;
        return 0;
}

int engine_leave_running(Engine *e) {
        if (!e->keeper)
                return -EOPNOTSUPP;
        e->leave_running = true;
        return 0;
}

int engine_kept_fds(Engine *e, int **ret_fds, char ***ret_names, size_t *ret_n) {
        return keeper_dup_bundles(e->keeper, ret_fds, ret_names, ret_n);
}

/* Kills what still runs and records it (or, left to the next daemon, only
 * records how far it got); finishes cgroups being emptied. */
static void engine_end_jobs(Engine *e) {
        for (ListNode *p = e->jobs.first; p; p = p->next) {
                Job *j = list_entry(p, Job, by_start);
                /* Left as it is: its record says running, and the next
                 * daemon scans its log from the last checkpoint (store.c;
                 * one is written every few MiB of output). Not written
                 * again here: a write and rename per job cost 1 ms each,
                 * 10 s of a restart with 10,000 jobs (measured with 200:
                 * 170-390 ms from SIGHUP to the exec, 55 ms without). */
                if (e->leave_running && (j->st.state == JOB_STATE_RUNNING || j->st.process_alive))
                        continue;
                if (j->st.state == JOB_STATE_RUNNING && j->pidfd >= 0)
                        job_kill_and_record(e, j);
                else if (j->st.process_alive) {
                        /* A LOST job's process: stopped with the rest (not
                         * our child: nothing to reap or record). */
                        job_kill_all(e, j);
                        j->st.process_alive = false;
                }
        }
        /* Jobs whose main process ended but whose cgroup was emptying. */
        for (ListNode *p = e->jobs.first; p; p = p->next) {
                Job *j = list_entry(p, Job, by_start);
                if (!j->cg_emptying)
                        continue;
                (void) cgroup_wait_empty(j->cg_fd, 2000);
                job_cgroup_done(e, j);
                if (j->exit_info.si_code != 0)
                        j->st.state = j->exit_info.si_code == CLD_EXITED ? JOB_STATE_EXITED : JOB_STATE_KILLED;
                (void) job_write_status(e, j);
        }
        /* Records the disk refused so far: one more try before going. */
        jobrecord_retry_all(e);
}

static void engine_free_objects(Engine *e) {
        while (e->runnable.first)
                list_unlink(&e->runnable, e->runnable.first);
        for (uint32_t i = 0; i < e->sub_slots.n; i++) {
                Subscriber *s = e->sub_slots.slots[i].ptr;
                if (s)
                        sub_free(e, s);
        }
        for (uint32_t i = 0; i < e->job_slots.n; i++) {
                Job *j = e->job_slots.slots[i].ptr;
                if (j)
                        job_free(e, j);
        }
        for (uint32_t i = 0; i < e->timer_slots.n; i++)
                free(e->timer_slots.slots[i].ptr);
        ring_slot_table_done(&e->timer_slots);
        ring_slot_table_done(&e->job_slots);
        ring_slot_table_done(&e->sub_slots);

        engine_drop_posted(e);
        owner_usage_free_all(e);
}

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;

        e->observer = NULL;
        e->freeing = true;
        claims_done(e);
        /* What others posted for the running engine is told NULL, as
         * engine_post() promises: its poster may be gone already (the
         * daemon frees its server first, whose last completions post
         * closures that would read it). Starts in flight come back as
         * closures of our own, run while the engine is whole: each is
         * undone (a spawned child killed) and its done told -ECANCELED. */
        engine_run_posted_freeing(e);
        e->spawner = spawner_free(e->spawner);
        if (e->ring_ok)
                engine_run_posted_freeing(e);
        engine_end_jobs(e);
        engine_free_objects(e);
        e->keeper = keeper_unref(e->keeper);
        if (e->ring_ok) {
                store_drain_removals(e);
                io_uring_queue_exit(&e->ring);
        }
        ring_slot_table_done(&e->removal_slots);
        safe_close(e->state_fd);
        safe_close(e->jobs_fd);
        safe_close(e->devnull_fd);
        safe_close(e->wake_fd);
        safe_close(e->cgroup_fd);
        pthread_mutex_destroy(&e->post_lock);
        free(e->hash);
        free(e->buf);
        free(e->state_dir);
        free(e->default_user);
        free(e->default_home);
        free(e);
        return NULL;
}

/* Queries -------------------------------------------------------------------- */

int engine_get_status(Engine *e, const JobId *id, JobStatus *ret) {
        Job *j = job_find(e, id);
        if (!j)
                return -ENOENT;
        /* One lookup per query of a running job: a directory deleted
         * under it is said in the status (and logged once). */
        if (j->st.state == JOB_STATE_RUNNING)
                (void) jobrecord_check_dir(e, j);
        job_status_now(e, j, ret);
        return 0;
}

int engine_list(Engine *e, const char *owner, JobStatus **ret, size_t *ret_n) {
        JobStatus *v = malloc(MAX(e->jobs.n, (size_t) 1) * sizeof(JobStatus));
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        for (ListNode *p = e->jobs.first; p; p = p->next) {
                Job *j = list_entry(p, Job, by_start);
                if (owner && strcmp(owner, j->st.owner) != 0)
                        continue;
                job_status_now(e, j, &v[n++]);
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static bool list_match(const Job *j, const EngineListFilter *f) {
        if (f->owner && strcmp(f->owner, j->st.owner) != 0)
                return false;
        if (f->states && !(f->states & (1u << j->st.state)))
                return false;
        if (f->name && f->name[0] && strcmp(f->name, j->st.name) != 0)
                return false;
        for (size_t i = 0; i < f->n_labels; i++)
                if (!job_labels_has(j->st.labels, f->label_keys[i], f->label_values[i]))
                        return false;
        return !f->visible || f->visible(f->userdata, j->st.owner);
}

int engine_list_filtered(Engine *e, const EngineListFilter *f, JobStatus **ret, size_t *ret_n) {
        JobStatus *v = NULL;
        size_t n = 0, cap = 0;

        /* Grown as matches come: a filter that finds one job of 10,000
         * copies one status, not 10,000. */
        for (ListNode *p = e->jobs.first; p; p = p->next) {
                Job *j = list_entry(p, Job, by_start);
                if (!list_match(j, f))
                        continue;
                if (n == cap) {
                        size_t c = cap ? cap * 2 : 16;
                        JobStatus *nv = realloc(v, MIN(c, MAX(e->jobs.n, (size_t) 1)) * sizeof(JobStatus));
                        if (!nv) {
                                free(v);
                                return -ENOMEM;
                        }
                        v = nv;
                        cap = MIN(c, MAX(e->jobs.n, (size_t) 1));
                }
                job_status_now(e, j, &v[n++]);
        }
        if (!v && !(v = malloc(sizeof(JobStatus))))
                return -ENOMEM;
        *ret = v;
        *ret_n = n;
        return 0;
}

void engine_get_counts(Engine *e, EngineCounts *ret) {
        KeeperCounts kc;

        keeper_get_counts(e->keeper, &kc);
        *ret = (EngineCounts) {
                .newer_records = e->newer_records,
                .newer_version = e->newer_version,
                .record_version = JOBFILE_VERSION,
                .logs_cut = e->logs_cut,
                .log_bytes_cut = e->log_bytes_cut,
                .logs_finished = e->logs_finished,
                .fdstore = e->keeper != NULL,
                .jobs_adopted = e->jobs_adopted,
                .exits_unknown = e->exits_unknown,
                .keep_bundles = kc.bundles,
                .keep_failures = kc.failures,
                .keep_error = kc.last_error,
                .chunks_direct = e->chunks_direct,
                .running = e->n_running,
                .finished = (unsigned) e->finished.n,
                .subscribers = e->n_subscribers,
                .cgroups = e->cgroup_fd >= 0,
                .cgroup_controllers = e->cg_controllers,
                .cgroups_cleaned = e->cgroups_cleaned,
                .dirs_cleaned = e->dirs_cleaned,
                .status_unsaved = e->n_unsaved,
                .status_save_failures = e->save_failures,
                .status_save_error = e->save_last_error,
        };
}

void engine_set_observer(Engine *e, EngineObserver fn, void *userdata) {
        e->observer = fn;
        e->observer_userdata = userdata;
}
