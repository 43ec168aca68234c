/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Thread rules: any thread; the calling thread (only) is suspended until the
 * child has exec()ed or died, so the engine calls this from its spawner
 * threads (spawner.c), never from its own.
 *
 * Process creation for jobs: clone3(CLONE_PIDFD | CLONE_VM | CLONE_VFORK)
 * on a private stack, the way posix_spawn() does it, so the cost does not
 * grow with the daemon's memory, and we still get a pidfd and (optionally)
 * CLONE_INTO_CGROUP.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/engine.h"

typedef struct SpawnStack {
        void *base;     /* mmap()ed, with a guard page at the bottom */
        size_t size;
} SpawnStack;

int spawn_stack_init(SpawnStack *s);
void spawn_stack_done(SpawnStack *s);

typedef struct SpawnRequest {
        const char *const *argv;       /* passed to execve as is */
        const char *const *envp;       /* the complete environment */
        const char *const *exec_paths; /* candidates tried in order (PATH search done) */
        const char *cwd;               /* NULL: do not change directory */
        bool cwd_or_root;              /* cwd missing or not a directory: use / */
        const JobCredentials *creds;   /* NULL: keep the caller's identity */
        int stdin_fd, stdout_fd, stderr_fd; /* borrowed; must be >= 3 */
        bool tty;                      /* stdin_fd is a terminal's slave: it becomes the
                                        * controlling terminal of a new session */
        int cgroup_fd;                 /* -1: none */
        unsigned isolate;              /* JOB_ISOLATE_* */
        /* NULL, or where the child stores, as it starts, the number + 1 of
         * the pidfd the caller will get (CLONE_PIDFD wrote it into our
         * shared memory before the child ran), so that another thread can
         * SIGKILL a child stuck in a hung path (chdir, the PATH walk) while
         * this one waits in clone3(). spawn_process() takes it back (atomic
         * exchange with 0) before it uses or closes the pidfd: whoever gets
         * it out first may signal it, and the fd is not closed before.
         * (A pid would not do: in a new PID namespace the child is 1.) */
        int *child_pidfd;
} SpawnRequest;

/*
 * Starts the process. On success it has exec()ed: *ret_pid and *ret_pidfd
 * (owned by the caller, CLOEXEC) are set. On failure returns -errno; if the
 * child got as far as running, it has been reaped, and *ret_stage says what
 * failed (chdir, credentials, exec) with the errno as return value. A child
 * killed before it reached exec() is -EINTR at JOB_START_STAGE_SPAWN.
 *
 * The child gets: fds 0/1/2 from the request and no other fd, an empty signal
 * mask and default dispositions, its own process group, RLIMIT_NOFILE soft
 * limit at most 1024, the credentials of the request.
 */
int spawn_process(const SpawnRequest *req, SpawnStack *stack, pid_t *ret_pid, int *ret_pidfd, JobStartStage *ret_stage);

/*
 * Builds the list of executable candidates for argv0 given a PATH value
 * (execvp rules: argv0 with a '/' is used as is; an empty PATH entry means
 * the current directory). Returns a NULL-terminated array allocated as one
 * block (free() it), or NULL on ENOMEM.
 */
char **spawn_exec_candidates(const char *argv0, const char *path);
