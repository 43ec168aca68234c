/* SPDX-License-Identifier: MIT */

/*
 * The spawner: the part of starting a job that looks at paths a client
 * chose runs here, on a small pool of threads, never on the engine thread.
 *
 * The one idea: a client-chosen path can block for as long as its file
 * system wants (a hung NFS server, a FUSE daemon that never answers), and
 * the engine thread serves every job and every stream. So the io device
 * stat()s (iodev.c), the chdir() into the cwd or HOME and the PATH walk of
 * exec (both in the vfork child, which suspends only the thread that called
 * clone3()) happen on a spawner thread, and the result is posted back to
 * the engine, which registers the job. While a start hangs, everything
 * else goes on.
 *
 * How many threads: SPAWNER_THREADS = 4. One hung path holds one thread
 * until its file system answers; with four, three starts may hang on bad
 * paths while others still go through one thread. More would only buy
 * concurrency the spawn itself does not need (a spawn costs ~0.5 ms, and
 * the kernel serialises much of clone+exec per process). The queue is
 * unbounded: the RPC layer bounds what a client may ask for at once.
 *
 * Stopping: a child stuck in chdir() or execve() on a hung path is sent
 * SIGKILL through its pidfd (published by the child, spawn.h). Where the
 * wait is killable (an NFS server that does not answer, a FUSE request not
 * yet read by its server) the child dies, its thread comes back and the
 * start fails with -EINTR. Where it is not (a FUSE request its server has
 * read and never answers: checked with tests/helpers/jw-fuse-stall), the
 * SIGKILL stays pending, and after SPAWNER_STOP_USEC the thread is left
 * behind, as one stuck in its own stat() of an io device is: the engine
 * goes; when the file system answers or its connection is aborted the
 * child dies, clone3() returns, and the thread undoes the start itself
 * (job_start_abandon) and ends. The daemon can exit meanwhile (a thread
 * waiting for a vfork child is killable), leaving only that child, which
 * dies as soon as the path answers.
 */

#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "core/job-start.h"
#include "core/spawner.h"
#include "shared/macro.h"

#define SPAWNER_THREADS 4

typedef struct SpawnWorker {
        Spawner *sp;
        SpawnStack stack;
        int child_pidfd;        /* pidfd + 1 of a child in clone3(), or 0 */
} SpawnWorker;

struct Spawner {
        pthread_mutex_t lock;
        pthread_cond_t cond;     /* work queued, or stopping */
        pthread_cond_t exited;   /* a thread ended */
        Engine *e;               /* NULL once abandoned */
        JobStart *head, *tail;   /* not begun */
        bool stopping;
        unsigned alive;          /* threads running */
        unsigned refs;           /* alive threads + the engine's */
        SpawnWorker workers[SPAWNER_THREADS];
};

static void spawner_unref_locked(Spawner *sp) {
        bool last = --sp->refs == 0;

        pthread_mutex_unlock(&sp->lock);
        if (!last)
                return;
        pthread_mutex_destroy(&sp->lock);
        pthread_cond_destroy(&sp->cond);
        pthread_cond_destroy(&sp->exited);
        free(sp);
}

static void post_result(Spawner *sp, JobStart *js) {
        /* Under sp->lock: the engine is alive until spawner_free() has
         * abandoned us, which takes the lock. */
        if (sp->e) {
                engine_post_own(sp->e, &js->finished, job_start_finish, js);
                return;
        }
        job_start_abandon(js);
}

static void *worker_main(void *p) {
        SpawnWorker *w = p;
        Spawner *sp = w->sp;

        (void) prctl(PR_SET_NAME, "jw-spawn"); /* top -H, bench/run's per-thread CPU */

        pthread_mutex_lock(&sp->lock);
        for (;;) {
                while (!sp->head && !sp->stopping)
                        pthread_cond_wait(&sp->cond, &sp->lock);
                JobStart *js = sp->head;
                if (!js)
                        break; /* stopping, nothing left */
                sp->head = js->next;
                if (!sp->head)
                        sp->tail = NULL;
                if (sp->stopping)
                        js->r = job_start_cancel(js);
                else {
                        pthread_mutex_unlock(&sp->lock);
                        js->r = job_start_spawn_stage(js, &w->stack, &w->child_pidfd, &sp->stopping);
                        pthread_mutex_lock(&sp->lock);
                }
                post_result(sp, js);
        }
        spawn_stack_done(&w->stack);
        sp->alive--;
        pthread_cond_broadcast(&sp->exited);
        spawner_unref_locked(sp);
        return NULL;
}

int spawner_new(Engine *e, Spawner **ret) {
        Spawner *sp = calloc(1, sizeof(Spawner));
        pthread_condattr_t ca;
        int r = 0;

        if (!sp)
                return -ENOMEM;
        pthread_mutex_init(&sp->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&sp->cond, NULL);
        pthread_cond_init(&sp->exited, &ca);
        pthread_condattr_destroy(&ca);
        sp->e = e;
        sp->refs = 1;
        pthread_mutex_lock(&sp->lock);
        for (unsigned i = 0; i < SPAWNER_THREADS && r >= 0; i++) {
                SpawnWorker *w = &sp->workers[i];
                pthread_t t;

                w->sp = sp;
                r = spawn_stack_init(&w->stack);
                if (r < 0)
                        break;
                r = -pthread_create(&t, NULL, worker_main, w);
                if (r < 0) {
                        spawn_stack_done(&w->stack);
                        break;
                }
                pthread_detach(t);
                sp->alive++;
                sp->refs++;
        }
        pthread_mutex_unlock(&sp->lock);
        if (r < 0) {
                spawner_free(sp);
                return r;
        }
        *ret = sp;
        return 0;
}

int spawner_submit(Spawner *sp, JobStart *js) {
        pthread_mutex_lock(&sp->lock);
        js->next = NULL;
        if (sp->tail)
                sp->tail->next = js;
        else
                sp->head = js;
        sp->tail = js;
        pthread_cond_signal(&sp->cond);
        pthread_mutex_unlock(&sp->lock);
        return 0;
}

/* SIGKILL to every child that sits in clone3() now. Under sp->lock. */
static void kill_children(Spawner *sp) {
        for (unsigned i = 0; i < SPAWNER_THREADS; i++) {
                int v = __atomic_exchange_n(&sp->workers[i].child_pidfd, 0, __ATOMIC_SEQ_CST);
                if (v > 0)
                        (void) pidfd_signal(v - 1, SIGKILL);
        }
}

Spawner *spawner_free(Spawner *sp) {
        struct timespec until;

        if (!sp)
                return NULL;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += SPAWNER_STOP_USEC / 1000000u;
        pthread_mutex_lock(&sp->lock);
        __atomic_store_n(&sp->stopping, true, __ATOMIC_SEQ_CST);
        pthread_cond_broadcast(&sp->cond);
        while (sp->alive > 0) {
                /* Again every 100 ms: a thread may have begun a clone3()
                 * after the last round. */
                kill_children(sp);
                struct timespec now, step;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
                        break;
                step = now;
                step.tv_nsec += 100 * 1000000L;
                if (step.tv_nsec >= 1000000000L) {
                        step.tv_sec++;
                        step.tv_nsec -= 1000000000L;
                }
                (void) pthread_cond_timedwait(&sp->exited, &sp->lock, &step);
        }
        sp->e = NULL; /* abandoned: what comes back now cleans up itself */
        spawner_unref_locked(sp);
        return NULL;
}
