/* SPDX-License-Identifier: MIT */

/*
 * Starting a job: validate -> prepare (engine thread) -> io devices ->
 * cgroup -> spawn (a spawner thread: these touch client-chosen paths, see
 * spawner.c) -> register (engine thread again).
 *
 * The one idea: each stage fills one JobStart, and every failure goes
 * through one unwinding function, job_start_free(), which undoes exactly
 * what exists (a spawned child is killed and reaped, the cgroup and the job
 * directory removed). Only the register stage turns the JobStart into a Job
 * the engine owns; after it nothing can fail but the ring (see job_arm_all).
 *
 * The record comes first: a "starting" status is written (and renamed in
 * place) before the spawn, and completed with the pid and its start time
 * right after it, so that a crash at any point leaves either no process or
 * a record naming it; a start whose record the disk refuses fails.
 */

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cgroup.h"
#include "core/iodev.h"
#include "core/job-env.h"
#include "core/job-start.h"
#include "core/job-tty.h"
#include "core/jobrecord.h"
#include "core/spawner.h"
#include "shared/macro.h"

static _printf_(4, 5) int start_fail(JobStart *js, JobStartStage stage, int r, const char *fmt, ...) {
        va_list ap;

        js->err.stage = stage;
        js->err.error = -r;
        va_start(ap, fmt);
        vsnprintf(js->err.message, sizeof(js->err.message), fmt, ap);
        va_end(ap);
        return r;
}

/* The name, labels and request id (shared/job-name.h); labels come
 * joined, so their parts were checked by whoever joined them and only the
 * size is left. */
static int start_validate_names(JobStart *js, const JobSpec *spec) {
        int r;

        if (spec->name && spec->name[0]) {
                r = job_name_check(spec->name, js->err.message, sizeof(js->err.message));
                if (r < 0)
                        return start_fail(js, JOB_START_STAGE_NAME, r, "%s", js->err.message);
        }
        if (spec->request_id && spec->request_id[0]) {
                r = job_request_id_check(spec->request_id, js->err.message, sizeof(js->err.message));
                if (r < 0)
                        return start_fail(js, JOB_START_STAGE_NAME, r, "%s", js->err.message);
        }
        if (spec->labels && strlen(spec->labels) > JOB_LABELS_TEXT_MAX)
                return start_fail(js, JOB_START_STAGE_NAME, -E2BIG, "labels are too long together (at most %u bytes)",
                                  JOB_LABELS_TEXT_MAX);
        return 0;
}

/* Stage 1: the spec alone, and what this engine can do. */
static int start_validate(Engine *e, JobStart *js, const JobSpec *spec) {
        const JobLimits *l = spec->limits;
        int r;

        r = job_env_validate(spec, &js->err);
        if (r < 0)
                return r;
        if (spec->isolate & ~(unsigned) JOB_ISOLATE_ALL)
                return start_fail(js, JOB_START_STAGE_ISOLATION, -EINVAL, "unknown isolation flags 0x%x", spec->isolate);
        if (l && l->n_io && l->n_io_devices)
                return start_fail(js, JOB_START_STAGE_LIMITS, -EINVAL, "io limits given both by device number and by path");
        if (l && (l->n_io > JOB_IO_MAX || l->n_io_devices > JOB_IO_MAX))
                return start_fail(js, JOB_START_STAGE_IO_DEVICE, -E2BIG, "too many io entries (at most %u)", JOB_IO_MAX);
        r = start_validate_names(js, spec);
        if (r < 0)
                return r;
        if (spec->tty && (spec->tty->rows == 0 || spec->tty->cols == 0))
                return start_fail(js, JOB_START_STAGE_SPAWN, -EINVAL, "a terminal needs a size of at least 1x1");
        js->want_limits = l && (l->cpu_millis || l->memory_max || l->pids_max || l->n_io || l->n_io_devices);
        return 0;
}

/* Both ends non-blocking on ours, above 2 on both. */
static int start_pipe(int *ret_r, int *ret_w) {
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        *ret_r = fd_above_2(p[0]);
        *ret_w = fd_above_2(p[1]);
        if (*ret_r < 0 || *ret_w < 0)
                return -EMFILE;
        if (fcntl(*ret_r, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

/* The stdin pipe of a job started with stdin_open: the child's read end
 * blocking, as a program expects its stdin; ours non-blocking (job-input.c);
 * both above 2. */
static int start_stdin_pipe(JobStart *js) {
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        js->in_r = fd_above_2(p[0]);
        js->in_w = fd_above_2(p[1]);
        if (js->in_r < 0 || js->in_w < 0)
                return -EMFILE;
        if (fcntl(js->in_w, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

/* The job's record as the start knows it: before the spawn ("starting",
 * no pid) or after it. */
static void start_status(JobStart *js, bool starting, JobStatus *ret) {
        *ret = (JobStatus) {
                .id = js->id,
                .state = JOB_STATE_RUNNING,
                .starting = starting,
                .pid = starting ? 0 : js->pid,
                .pid_starttime = starting ? 0 : js->pid_starttime,
                .start_usec = js->start_usec,
                .has_cgroup = js->cg_fd >= 0,
                .max_runtime_usec = js->spec.max_runtime_usec,
                .runtime_deadline = js->runtime_deadline,
                .stdin_state = js->spec.stdin_open || js->spec.tty ? JOB_STDIN_OPEN : JOB_STDIN_NULL,
                .tty = js->spec.tty != NULL,
        };
        snprintf(ret->owner, sizeof(ret->owner), "%s", js->spec.owner ?: "");
        snprintf(ret->name, sizeof(ret->name), "%s", js->spec.name ?: "");
        snprintf(ret->labels, sizeof(ret->labels), "%s", js->spec.labels ?: "");
        snprintf(ret->request_id, sizeof(ret->request_id), "%s", js->spec.request_id ?: "");
        job_env_command_summary(js->spec.argv, ret->command);
}

/* Writes the record (any thread: js's own fds only). A start that cannot be
 * recorded fails: after a crash nothing would name its process. Only the
 * pid record leaves status.tmp reserved (for the job's final status): the
 * "starting" record's reservation would be truncated away by the pid
 * record's write right after it, an open + fallocate per Start for nothing. */
static int start_record(JobStart *js, bool starting) {
        JobStatus st;
        int r;

        start_status(js, starting, &st);
        r = jobrecord_write(js->jobs_fd, &st, OUTLOG_HEADER_SIZE, !starting);
        if (r < 0)
                return start_fail(js, JOB_START_STAGE_STATE, r, "cannot record the job in the state directory: %s",
                                  strerror(-r));
        return 0;
}

/* Stage 2: environment, id, directory, record, log, pipes. */
static int start_prepare(Engine *e, JobStart *js) {
        const JobSpec *spec = &js->spec;
        char path[JOB_ID_STRING_MAX + 16];
        int r;

        js->user = (spec->creds ? spec->creds->user : e->default_user) ?: "nobody";
        js->home = (spec->creds ? spec->creds->home : e->default_home) ?: "/";
        /* HOME is not looked at here (it may hang): the child tries it and
         * falls back to / (SpawnRequest.cwd_or_root). */
        js->cwd = spec->cwd ?: js->home;
        js->cwd_or_root = !spec->cwd;

        if (spec->tty) {
                js->tty_env = job_tty_env(spec->env, spec->tty->term);
                if (!js->tty_env)
                        return -ENOMEM;
        }
        js->envp = job_env_build(js->user, js->home, js->tty_env ? (const char *const *) js->tty_env : spec->env);
        if (!js->envp)
                return -ENOMEM;
        const char *path_env = job_env_get((const char *const *) js->envp, "PATH");
        js->candidates = spawn_exec_candidates(spec->argv[0], path_env ?: DEFAULT_PATH);
        if (!js->candidates)
                return -ENOMEM;

        r = job_id_generate(&js->id);
        if (r < 0)
                return r;
        job_id_to_string(&js->id, js->dir);
        if (mkdirat(e->jobs_fd, js->dir, 0700) < 0)
                return -errno;
        js->dir_made = true;
        js->jobs_fd = fcntl(e->jobs_fd, F_DUPFD_CLOEXEC, 3);
        if (js->jobs_fd < 0)
                return -errno;
        js->start_usec = now_usec(CLOCK_REALTIME);
        /* On record from the first record on (a job adopted from it keeps
         * its limit); counted again from the spawn (start_spawn()). */
        if (spec->max_runtime_usec)
                js->runtime_deadline = now_usec(CLOCK_MONOTONIC) + MIN(spec->max_runtime_usec, UINT64_MAX / 2);
        snprintf(path, sizeof(path), "%s/output", js->dir);
        r = outlog_create(e->jobs_fd, path, &js->log_fd);
        if (r < 0)
                return r;
        r = start_record(js, true);
        if (r < 0)
                return r;
        if (spec->tty)
                r = job_tty_open(spec->tty, &js->out_r, &js->in_w, &js->tty_slave);
        else
                r = start_pipe(&js->out_r, &js->out_w);
        if (r < 0)
                return r;
        if (spec->stdin_open && !spec->tty) {
                r = start_stdin_pipe(js);
                if (r < 0)
                        return r;
        }
        return start_pipe(&js->err_r, &js->err_w);
}

/* Stage 4: the job's cgroup and its limits. */
static int start_cgroup(JobStart *js) {
        int r;

        /* Checked here, after the io devices, so that a bad device path is
         * reported as such on any host. */
        if (js->want_limits && js->cgroup_root_fd < 0)
                return start_fail(js, JOB_START_STAGE_LIMITS, -EOPNOTSUPP,
                                  "resource limits need cgroup v2, and no cgroup is set up for jobs on this host");
        if (js->cgroup_root_fd < 0)
                return 0;
        job_cgroup_name(&js->id, js->cg_name);
        if (mkdirat(js->cgroup_root_fd, js->cg_name, 0755) < 0) {
                r = -errno;
                js->cg_name[0] = 0;
                return start_fail(js, JOB_START_STAGE_LIMITS, r, "cannot create the job's cgroup: %s", strerror(-r));
        }
        js->cg_fd = openat(js->cgroup_root_fd, js->cg_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (js->cg_fd < 0)
                return -errno;
        if (!js->want_limits)
                return 0;
        /* Read again: an operator may have changed what is delegated since
         * we started (one small read). */
        (void) cgroup_child_controllers(js->cgroup_root_fd, &js->cg_controllers);
        r = cgroup_apply_limits(js->cg_fd, js->cg_controllers, &js->limits, js->err.message,
                                sizeof(js->err.message));
        if (r < 0) {
                js->err.stage = JOB_START_STAGE_LIMITS;
                js->err.error = -r;
        }
        return r;
}

static void spawn_error_message(JobStart *js, JobStartStage stage, int r) {
        const char *argv0 = js->spec.argv[0];
        unsigned iso = js->spec.isolate;

        switch (stage) {
        case JOB_START_STAGE_EXEC:
                start_fail(js, stage, r, "cannot execute '%s': %s%s", argv0, strerror(-r),
                           strchr(argv0, '/') ? "" : " (searched PATH)");
                break;
        case JOB_START_STAGE_CHDIR:
                start_fail(js, stage, r, "cannot change to working directory '%s': %s", js->cwd, strerror(-r));
                break;
        case JOB_START_STAGE_CREDENTIALS:
                start_fail(js, stage, r, "cannot switch to user '%s': %s", js->user, strerror(-r));
                break;
        case JOB_START_STAGE_ISOLATION:
                start_fail(js, stage, r, "isolation (%s%s%s%s%s) refused by this host: %s",
                           iso & JOB_ISOLATE_PID ? "pid" : "",
                           (iso & JOB_ISOLATE_PID) && (iso & ~JOB_ISOLATE_PID) ? "," : "",
                           iso & JOB_ISOLATE_NET ? "net" : "",
                           (iso & JOB_ISOLATE_NET) && (iso & JOB_ISOLATE_TMP) ? "," : "",
                           iso & JOB_ISOLATE_TMP ? "tmp" : "", strerror(-r));
                break;
        default:
                start_fail(js, stage, r, "cannot create the process: %s", strerror(-r));
                break;
        }
}

/* Stage 5: the process. */
static int start_spawn(JobStart *js, SpawnStack *stack, int *child_pidfd) {
        JobStartStage stage;
        SpawnRequest req = {
                .argv = js->spec.argv,
                .envp = (const char *const *) js->envp,
                .exec_paths = (const char *const *) js->candidates,
                .cwd = js->cwd,
                .cwd_or_root = js->cwd_or_root,
                .child_pidfd = child_pidfd,
                .creds = js->spec.creds,
                .stdin_fd = js->tty_slave >= 0 ? js->tty_slave : js->in_r >= 0 ? js->in_r : js->devnull_fd,
                .stdout_fd = js->tty_slave >= 0 ? js->tty_slave : js->out_w,
                .stderr_fd = js->tty_slave >= 0 ? js->tty_slave : js->err_w,
                .tty = js->tty_slave >= 0,
                .cgroup_fd = js->cg_fd,
                .isolate = js->spec.isolate,
        };
        int r;

        if (js->spawn_delay_usec)
                (void) usleep((useconds_t) js->spawn_delay_usec);
        js->start_usec = now_usec(CLOCK_REALTIME);
        /* The time limit counts from here, as the job's start and end times
         * do: counted from the Start call (start_prepare()) it cut a job
         * short by however long its spawn waited (measured: 0.36 s run of
         * a 0.5 s limit on a loaded machine). */
        if (js->spec.max_runtime_usec)
                js->runtime_deadline = now_usec(CLOCK_MONOTONIC) + MIN(js->spec.max_runtime_usec, UINT64_MAX / 2);
        r = spawn_process(&req, stack, &js->pid, &js->pidfd, &stage);
        if (r < 0) {
                spawn_error_message(js, stage, r);
                return r;
        }
        /* The child has its copies; ours would keep the pipes open forever. */
        js->out_w = safe_close(js->out_w);
        js->err_w = safe_close(js->err_w);
        js->in_r = safe_close(js->in_r);
        js->tty_slave = safe_close(js->tty_slave); /* the job's end is the terminal's */
        /* Now the record names the process (a zombie still has its stat). */
        js->pid_starttime = jobrecord_pid_starttime(js->pid);
        /* Its fds go into the store before the record names it: a crash
         * from here on leaves a process the next daemon can adopt (with
         * only the "starting" record, the kept pid completes it). A store
         * that refuses them is counted; the job runs, it just would not
         * outlive a crash of the daemon. */
        if (js->keeper)
                (void) keeper_add(js->keeper, &js->id, js->pid, js->pid_starttime, js->pidfd, js->out_r, js->err_r,
                                  &js->keep_bundle);
        return start_record(js, false);
}

/* Stage 3: io device paths to disks, as the job's account sees them. */
static int start_iodev(JobStart *js) {
        _cleanup_free_ char *message = NULL;
        size_t n = 0;
        int r;

        if (js->limits.n_io_devices == 0)
                return 0;
        r = iodev_resolve(js->io_devices, js->limits.n_io_devices, js->spec.creds, js->io, &n, &message);
        if (r < 0)
                return start_fail(js, JOB_START_STAGE_IO_DEVICE, r, "%s", message ?: "invalid io device");
        js->limits.io = js->io;
        js->limits.n_io = n;
        js->limits.n_io_devices = 0;
        return 0;
}

int job_start_cancel(JobStart *js) {
        return start_fail(js, JOB_START_STAGE_SPAWN, -ECANCELED, "the server is shutting down");
}

int job_start_spawn_stage(JobStart *js, SpawnStack *stack, int *child_pidfd, const bool *stopping) {
        int r = start_iodev(js);
        /* After a wait on a hung path the engine may be going: then the
         * cgroup root fd is no longer ours to use. */
        if (r >= 0 && __atomic_load_n(stopping, __ATOMIC_SEQ_CST))
                r = job_start_cancel(js);
        if (r >= 0)
                r = start_cgroup(js);
        if (r >= 0 && __atomic_load_n(stopping, __ATOMIC_SEQ_CST))
                r = job_start_cancel(js);
        if (r >= 0)
                r = start_spawn(js, stack, child_pidfd);
        return r;
}

/* Stage 6: the JobStart becomes a Job the engine owns. */
static int start_register(Engine *e, JobStart *js) {
        Job *j = job_new(e);
        int r;

        if (!j)
                return -ENOMEM;
        /* As the spawn stage recorded it. */
        start_status(js, false, &j->st);
        /* The log and the cgroup stay closed until needed (fds per job). */
        j->log_size = OUTLOG_HEADER_SIZE;
        j->pidfd = js->pidfd;
        j->pipe_fd[0] = js->out_r;
        j->pipe_fd[1] = js->err_r;
        j->owner_output_max = js->spec.owner_output_max;
        j->keep_bundle = js->keep_bundle;
        claims_start_to_job(js, j);
        j->pipe_big[0] = j->st.tty; /* a terminal has no pipe size to grow */
        r = 0;
        if (js->in_w >= 0) {
                r = job_input_attach(j, js->in_w);
                if (r >= 0)
                        js->in_w = -1; /* the job's now */
        }
        if (r >= 0)
                r = job_hash_add(e, j);
        if (r >= 0)
                r = job_arm_all(e, j);
        if (r < 0) {
                /* Nothing can find or reap it: js kills it (it still holds
                 * the fds, so the job gives them back). */
                j->pidfd = j->pipe_fd[0] = j->pipe_fd[1] = -1;
                j->keep_bundle = 0; /* still js's to release */
                job_free(e, j);
                if (r != -ENOMEM)
                        start_fail(js, JOB_START_STAGE_SPAWN, r, "cannot watch the new process: the kernel refused "
                                   "to queue a request (%s)", strerror(-r));
                return r;
        }
        if (j->st.runtime_deadline && job_arm_runtime_timer(e, j) < 0)
                engine_rearm_later(e, j, REARM_RUNTIME);
        js->pidfd = js->out_r = js->err_r = -1; /* the job's now */
        js->keep_bundle = 0;
        if (e->cgroup_fd >= 0 && js->want_limits)
                e->cg_controllers = js->cg_controllers;
        list_append(&e->jobs, &j->by_start);
        e->n_running++;
        owner_usage_set_running(j, true);
        job_notify(e, ENGINE_EVENT_STARTED, j);
        return 0;
}

/* The one unwinding path: undoes what js still owns; on failure also what
 * it made (directory, cgroup). e NULL: the engine is gone, leave the
 * directory. Frees js. */
static void job_start_free(Engine *e, JobStart *js, bool failed) {
        if (js->pidfd >= 0) {
                /* A process nobody will watch: do not leave it. */
                siginfo_t si;
                (void) pidfd_signal(js->pidfd, SIGKILL);
                (void) kill(-js->pid, SIGKILL);
                while (waitid(P_PIDFD, (id_t) js->pidfd, &si, WEXITED) < 0 && errno == EINTR)
                        ;
        }
        safe_close(js->pidfd);
        /* Killed above: its kept fds need not stay in the store. */
        keeper_release(js->keeper, js->keep_bundle);
        keeper_unref(js->keeper);
        safe_close(js->log_fd);
        safe_close(js->out_r);
        safe_close(js->out_w);
        safe_close(js->err_r);
        safe_close(js->err_w);
        safe_close(js->in_r);
        safe_close(js->in_w);
        safe_close(js->tty_slave);
        safe_close(js->cg_fd);
        safe_close(js->jobs_fd);
        if (failed && e && js->dir_made)
                store_remove_job_dir(e, js->dir);
        /* Without the engine its cgroup root fd is gone: the next engine
         * removes the leftover cgroup (cgroup_cleanup_leftovers). */
        if (failed && e && js->cg_name[0])
                (void) unlinkat(js->cgroup_root_fd, js->cg_name, AT_REMOVEDIR);
        free(js->envp);
        free(js->tty_env);
        free((char *) js->tty.term);
        free(js->candidates);
        free(js->argv);
        free(js->env);
        free(js->cwd_copy);
        free(js->owner);
        free(js->name);
        free(js->labels);
        free(js->request_id);
        claims_start_free(e, js);
        free((char *) js->creds.user);
        free((char *) js->creds.home);
        free(js->creds.groups);
        /* Not up to limits.n_io_devices: start_iodev() sets that to 0 once
         * the paths are resolved, and the copies are still ours. */
        for (size_t i = 0; i < JOB_IO_MAX; i++)
                free((char *) js->io_devices[i].device);
        free(js);
}

void job_start_abandon(JobStart *js) {
        job_start_free(NULL, js, true);
}

/* The start no longer counts as starting, nor against its owner (the
 * counts engine_start_job() took). */
static void start_uncount(Engine *e, JobStart *js) {
        e->n_starting--;
        owner_usage_starting(js->usage, -1);
        js->usage = owner_usage_unref(e, js->usage);
}

void job_start_finish(Engine *e, void *userdata) {
        JobStart *js = userdata;
        EngineStartDone done = js->done;
        void *ud = js->userdata;
        JobStartError err;
        JobId id = js->id;
        StartWaiter *waiters;
        int r = js->r;

        if (!e) { /* cannot happen: engine_free() runs its own closures with itself */
                job_start_abandon(js);
                return;
        }
        start_uncount(e, js);
        if (e->freeing && r >= 0)
                r = job_start_cancel(js);
        if (r >= 0)
                r = start_register(e, js);
        err = js->err;
        waiters = TAKE_PTR(js->waiters);
        job_start_free(e, js, r < 0);
        if (done)
                done(e->freeing ? NULL : e, r, r >= 0 ? &id : NULL, &err, ud);
        /* Retries of the same request (job-claims.c): the same answer. */
        while (waiters) {
                StartWaiter *w = waiters;
                waiters = w->next;
                w->done(e->freeing ? NULL : e, r, r >= 0 ? &id : NULL, &err, w->userdata);
                free(w);
        }
}

/* NULL-terminated copy in one allocation. */
static char **strv_copy(const char *const *v) {
        size_t n = 0, bytes = 0;
        char **c, *s;

        for (; v && v[n]; n++)
                bytes += strlen(v[n]) + 1;
        c = malloc((n + 1) * sizeof(char *) + bytes);
        if (!c)
                return NULL;
        s = (char *) (c + n + 1);
        for (size_t i = 0; i < n; i++) {
                c[i] = s;
                s = stpcpy(s, v[i]) + 1;
        }
        c[n] = NULL;
        return c;
}

static int copy_limits(JobStart *js, const JobLimits *l) {
        js->limits = *l;
        js->limits.n_io_devices = 0;
        if (l->n_io) {
                memcpy(js->io, l->io, l->n_io * sizeof(JobIoLimit));
                js->limits.io = js->io;
        }
        for (size_t i = 0; i < l->n_io_devices; i++) {
                js->io_devices[i] = l->io_devices[i];
                js->io_devices[i].device = strdup(l->io_devices[i].device ?: "");
                if (!js->io_devices[i].device)
                        return -ENOMEM;
                js->limits.n_io_devices = i + 1;
        }
        js->limits.io_devices = js->io_devices;
        js->spec.limits = &js->limits;
        return 0;
}

/* The spec (already validated) into memory js owns. */
static int copy_spec(JobStart *js, const JobSpec *spec) {
        js->spec = *spec;
        js->spec.argv = (const char *const *) (js->argv = strv_copy(spec->argv));
        js->spec.env = spec->env ? (const char *const *) (js->env = strv_copy(spec->env)) : NULL;
        if (!js->argv || (spec->env && !js->env))
                return -ENOMEM;
        if ((spec->cwd && !(js->cwd_copy = strdup(spec->cwd))) || (spec->owner && !(js->owner = strdup(spec->owner))))
                return -ENOMEM;
        js->spec.cwd = js->cwd_copy;
        js->spec.owner = js->owner;
        if ((spec->name && spec->name[0] && !(js->name = strdup(spec->name))) ||
            (spec->labels && spec->labels[0] && !(js->labels = strdup(spec->labels))) ||
            (spec->request_id && spec->request_id[0] && !(js->request_id = strdup(spec->request_id))))
                return -ENOMEM;
        js->spec.name = js->name;
        js->spec.labels = js->labels;
        js->spec.request_id = js->request_id;
        if (spec->creds) {
                const JobCredentials *c = spec->creds;
                js->creds = (JobCredentials) { .uid = c->uid, .gid = c->gid, .n_groups = c->n_groups };
                js->creds.user = c->user ? strdup(c->user) : NULL;
                js->creds.home = c->home ? strdup(c->home) : NULL;
                js->creds.groups = c->n_groups ? malloc(c->n_groups * sizeof(gid_t)) : NULL;
                if ((c->user && !js->creds.user) || (c->home && !js->creds.home) || (c->n_groups && !js->creds.groups))
                        return -ENOMEM;
                if (c->n_groups)
                        memcpy(js->creds.groups, c->groups, c->n_groups * sizeof(gid_t));
                js->spec.creds = &js->creds;
        }
        if (spec->tty) {
                js->tty = *spec->tty;
                js->tty.term = strdup(spec->tty->term ?: "");
                if (!js->tty.term)
                        return -ENOMEM;
                js->spec.tty = &js->tty;
        }
        return spec->limits ? copy_limits(js, spec->limits) : 0;
}

int engine_start_job(Engine *e, const JobSpec *spec, EngineStartDone done, void *userdata) {
        JobStart *js = calloc(1, sizeof(JobStart));
        int r;

        if (!js)
                return -ENOMEM;
        *js = (JobStart) {
                .done = done,
                .userdata = userdata,
                .cgroup_root_fd = e->cgroup_fd,
                .devnull_fd = e->devnull_fd,
                .cg_controllers = e->cg_controllers,
                .jobs_fd = -1, .log_fd = -1, .out_r = -1, .out_w = -1, .err_r = -1, .err_w = -1, .cg_fd = -1, .pidfd = -1,
                .in_r = -1, .in_w = -1, .tty_slave = -1,
                .keeper = keeper_ref(e->keeper),
                .spawn_delay_usec = e->faults.spawn_delay_usec,
        };
        r = start_validate(e, js, spec);
        if (r >= 0 && (spec->name || spec->request_id)) {
                r = claims_check_start(e, spec, &js->err, done, userdata);
                if (r > 0) { /* a retry: answered with the first start's job */
                        js->done = NULL;
                        job_start_free(e, js, false);
                        return 0;
                }
        }
        if (r >= 0)
                r = copy_spec(js, spec);
        if (r >= 0)
                r = start_prepare(e, js);
        if (r >= 0)
                r = claims_take_start(e, js);
        e->n_starting++;
        /* Counted against its owner's max-jobs= from now on (NULL on
         * ENOMEM: then it is not counted). */
        js->usage = owner_usage_ref(e, js->spec.owner ?: "");
        owner_usage_starting(js->usage, +1);
        if (r >= 0)
                r = spawner_submit(e->spawner, js);
        if (r < 0) {
                /* Answered from the loop like every start, never from here. */
                js->r = r;
                engine_post_own(e, &js->finished, job_start_finish, js);
        }
        return 0;
}

typedef struct StartWait {
        bool done;
        int r;
        JobId id;
        JobStartError err;
} StartWait;

static void start_wait_done(Engine *e, int r, const JobId *id, const JobStartError *err, void *userdata) {
        StartWait *w = userdata;
        w->done = true;
        w->r = r;
        if (id)
                w->id = *id;
        w->err = *err;
}

int engine_start_job_wait(Engine *e, const JobSpec *spec, JobId *ret_id, JobStartError *ret_error) {
        StartWait w = {};
        int r = engine_start_job(e, spec, start_wait_done, &w);

        if (r < 0)
                return r;
        while (!w.done) {
                r = engine_run_once(e, UINT64_MAX);
                if (r < 0)
                        return r; /* w is still referenced: cannot happen but for a broken ring */
        }
        if (ret_error)
                *ret_error = w.err;
        if (w.r >= 0)
                *ret_id = w.id;
        return w.r;
}
