/* SPDX-License-Identifier: MIT */

/*
 * Starting a job: validate -> prepare -> cgroup -> spawn -> register.
 *
 * The one idea: each stage fills one JobStart, and every failure goes
 * through one unwinding function, job_start_done(), which undoes exactly
 * what exists (a spawned child is killed and reaped, the cgroup and the job
 * directory removed). Only the register stage turns the JobStart into a Job
 * the engine owns; after it nothing can fail but the ring (see job_arm_all).
 */

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/cgroup.h"
#include "core/job-env.h"
#include "core/job-start.h"
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

/* Stage 1: the spec alone, and what this engine can do. */
static int start_validate(Engine *e, JobStart *js) {
        const JobSpec *spec = js->spec;
        const JobLimits *l = spec->limits;
        int r;

        r = job_env_validate(spec, &js->err);
        if (r < 0)
                return r;
        if (spec->isolate & ~(unsigned) JOB_ISOLATE_ALL)
                return start_fail(js, JOB_START_STAGE_ISOLATION, -EINVAL, "unknown isolation flags 0x%x", spec->isolate);
        js->want_limits = l && (l->cpu_millis || l->memory_max || l->pids_max || l->n_io);
        if (js->want_limits && e->cgroup_fd < 0)
                return start_fail(js, JOB_START_STAGE_LIMITS, -EOPNOTSUPP,
                                  "resource limits need cgroup v2, and no cgroup is set up for jobs on this host");
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

/* Stage 2: environment, id, directory, log, pipes. */
static int start_prepare(Engine *e, JobStart *js) {
        const JobSpec *spec = js->spec;
        char path[JOB_ID_STRING_MAX + 16];
        struct stat st;
        int r;

        js->user = (spec->creds ? spec->creds->user : e->default_user) ?: "nobody";
        js->home = (spec->creds ? spec->creds->home : e->default_home) ?: "/";
        js->cwd = spec->cwd;
        if (!js->cwd)
                js->cwd = stat(js->home, &st) >= 0 && S_ISDIR(st.st_mode) ? js->home : "/";

        js->envp = job_env_build(js->user, js->home, spec->env);
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
        snprintf(path, sizeof(path), "%s/output", js->dir);
        r = outlog_create(e->jobs_fd, path, &js->log_fd);
        if (r < 0)
                return r;
        r = start_pipe(&js->out_r, &js->out_w);
        if (r < 0)
                return r;
        return start_pipe(&js->err_r, &js->err_w);
}

/* Stage 3: the job's cgroup and its limits. */
static int start_cgroup(JobStart *js) {
        int r;

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
        r = cgroup_apply_limits(js->cg_fd, js->cg_controllers, js->spec->limits, js->err.message,
                                sizeof(js->err.message));
        if (r < 0) {
                js->err.stage = JOB_START_STAGE_LIMITS;
                js->err.error = -r;
        }
        return r;
}

static void spawn_error_message(JobStart *js, JobStartStage stage, int r) {
        const char *argv0 = js->spec->argv[0];
        unsigned iso = js->spec->isolate;

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

/* Stage 4: the process. */
static int start_spawn(JobStart *js, SpawnStack *stack) {
        JobStartStage stage;
        SpawnRequest req = {
                .argv = js->spec->argv,
                .envp = (const char *const *) js->envp,
                .exec_paths = (const char *const *) js->candidates,
                .cwd = js->cwd,
                .creds = js->spec->creds,
                .stdin_fd = js->devnull_fd,
                .stdout_fd = js->out_w,
                .stderr_fd = js->err_w,
                .cgroup_fd = js->cg_fd,
                .isolate = js->spec->isolate,
        };
        int r;

        js->start_usec = now_usec(CLOCK_REALTIME);
        r = spawn_process(&req, stack, &js->pid, &js->pidfd, &stage);
        if (r < 0) {
                spawn_error_message(js, stage, r);
                return r;
        }
        /* The child has its copies; ours would keep the pipes open forever. */
        js->out_w = safe_close(js->out_w);
        js->err_w = safe_close(js->err_w);
        return 0;
}

int job_start_spawn_stage(JobStart *js, SpawnStack *stack) {
        int r = start_cgroup(js);
        if (r < 0)
                return r;
        return start_spawn(js, stack);
}

/* Stage 5: the JobStart becomes a Job the engine owns. */
static int start_register(Engine *e, JobStart *js) {
        Job *j = job_new(e);
        int r;

        if (!j)
                return -ENOMEM;
        j->st.id = js->id;
        j->st.state = JOB_STATE_RUNNING;
        j->st.pid = js->pid;
        j->st.start_usec = js->start_usec;
        snprintf(j->st.owner, sizeof(j->st.owner), "%s", js->spec->owner ?: "");
        job_env_command_summary(js->spec->argv, j->st.command);
        j->st.has_cgroup = js->cg_fd >= 0;
        /* The log and the cgroup stay closed until needed (fds per job). */
        j->log_size = OUTLOG_HEADER_SIZE;
        j->pidfd = js->pidfd;
        j->pipe_fd[0] = js->out_r;
        j->pipe_fd[1] = js->err_r;
        r = job_hash_add(e, j);
        if (r >= 0)
                r = job_arm_all(e, j);
        if (r < 0) {
                /* Nothing can find or reap it: js kills it (it still holds
                 * the fds, so the job gives them back). */
                j->pidfd = j->pipe_fd[0] = j->pipe_fd[1] = -1;
                job_free(e, j);
                if (r != -ENOMEM)
                        start_fail(js, JOB_START_STAGE_SPAWN, r, "cannot watch the new process: the kernel refused "
                                   "to queue a request (%s)", strerror(-r));
                return r;
        }
        js->pidfd = js->out_r = js->err_r = -1; /* the job's now */
        if (e->cgroup_fd >= 0 && js->want_limits)
                e->cg_controllers = js->cg_controllers;
        list_append(&e->jobs, &j->by_start);
        e->n_running++;
        (void) job_write_status(e, j);
        job_notify(e, ENGINE_EVENT_STARTED, j);
        return 0;
}

/* The one unwinding path: undoes what js still owns; on failure also
 * what it made (directory, cgroup). */
static void job_start_done(Engine *e, JobStart *js, bool failed) {
        if (js->pidfd >= 0) {
                /* A process nobody will watch: do not leave it. */
                siginfo_t si;
                (void) pidfd_signal(js->pidfd, SIGKILL);
                (void) kill(-js->pid, SIGKILL);
                while (waitid(P_PIDFD, (id_t) js->pidfd, &si, WEXITED) < 0 && errno == EINTR)
                        ;
        }
        safe_close(js->pidfd);
        safe_close(js->log_fd);
        safe_close(js->out_r);
        safe_close(js->out_w);
        safe_close(js->err_r);
        safe_close(js->err_w);
        safe_close(js->cg_fd);
        if (failed && js->dir_made)
                store_remove_job_dir(e, js->dir);
        if (failed && js->cg_name[0])
                (void) unlinkat(js->cgroup_root_fd, js->cg_name, AT_REMOVEDIR);
        free(js->envp);
        free(js->candidates);
}

int engine_start_job(Engine *e, const JobSpec *spec, JobId *ret_id, JobStartError *ret_error) {
        JobStart js = {
                .spec = spec,
                .cgroup_root_fd = e->cgroup_fd,
                .devnull_fd = e->devnull_fd,
                .cg_controllers = e->cg_controllers,
                .log_fd = -1, .out_r = -1, .out_w = -1, .err_r = -1, .err_w = -1, .cg_fd = -1, .pidfd = -1,
        };
        int r;

        r = start_validate(e, &js);
        if (r >= 0)
                r = start_prepare(e, &js);
        if (r >= 0)
                r = job_start_spawn_stage(&js, &e->stack);
        if (r >= 0)
                r = start_register(e, &js);
        if (r >= 0)
                *ret_id = js.id;
        job_start_done(e, &js, r < 0);
        if (ret_error)
                *ret_error = js.err;
        return r;
}
