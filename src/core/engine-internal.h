/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the core files share behind engine.h: the Engine, Job and Subscriber
 * structs, the ring operations, and the functions one file of the engine
 * calls in another. Not for other layers; unit tests include it to reach
 * the fault-injection counters (EngineFaults).
 *
 * Thread rules: as engine.h — everything here belongs to the engine thread,
 * except the posted-closure queue (post_lock) and the spawner pool, which
 * say otherwise where they are declared.
 */

#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/engine.h"
#include "core/keeper.h"
#include "core/outlog.h"
#include "core/spawn.h"
#include "shared/list.h"
#include "shared/ring.h"
#include "shared/strmap.h"
#include "shared/time-util.h"

#define ENGINE_BUFFER_SIZE (1024u * 1024u) /* pipe reads */
#define PIPE_SIZE_BIG (1024 * 1024)
#define DRAIN_BUDGET 16        /* reads per pipe per turn before yielding */
#define EXIT_DRAIN_BUDGET 256  /* reads after exit: what is left in the pipe */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The operation of a request: the top byte of its user_data (ring.h). */
enum {
        OP_NONE,
        OP_WAKE,        /* eventfd read completed */
        OP_PIDFD,       /* job process exited */
        OP_PIPE_OUT,    /* stdout readable */
        OP_PIPE_ERR,    /* stderr readable */
        OP_STOP_TIMER,  /* grace period over */
        OP_RETENTION,   /* retention timer */
        OP_CGROUP,      /* cgroup.events changed (POLLPRI) */
        OP_TIMER,       /* an EngineTimer fired; gen = the arming */
        OP_UNLINK,      /* one unlink of a job directory removal; slot = the Removal */
        OP_BATCH_OUT,   /* stdout's batching delay is over (capture.c) */
        OP_BATCH_ERR,   /* stderr's batching delay is over */
        OP_IGNORE,      /* cancellations and the like */
        OP_RUNTIME_TIMER, /* a job's time limit (job-runtime.c) */
        OP_PIPE_IN,     /* the job's stdin pipe has room (job-input.c) */
};

/* Requests of a job that could not be queued (the kernel refused a
 * submit): remembered in Job.rearm and queued again from the loop. */
enum {
        REARM_PIDFD = 1 << 0,
        REARM_OUT = 1 << 1,
        REARM_ERR = 1 << 2,
        REARM_CGROUP = 1 << 3,
        REARM_STOP = 1 << 4,
        REARM_RUNTIME = 1 << 5,
        REARM_IN = 1 << 6,
};

typedef struct Job Job;
typedef struct Subscriber Subscriber;
typedef struct Spawner Spawner;
typedef struct OwnerUsage OwnerUsage;
typedef struct Claim Claim;
typedef struct JobStart JobStart;
typedef struct JobInput JobInput;

struct Job {
        JobStatus st;
        uint32_t slot, gen;
        Job *hash_next;
        ListNode by_start;      /* e->jobs, in start order */
        ListNode by_end;        /* e->finished, in end order */
        ListNode drain;         /* e->drains: pipes with data left to read */
        ListNode rearm_node;    /* e->rearms: requests to queue again */
        unsigned rearm;         /* REARM_* */
        ListHead subs;

        int pidfd;
        int pipe_fd[2];         /* [0] stdout, [1] stderr read ends */
        bool poll_armed[2];
        bool pipe_big[2];
        bool batch_armed[2];    /* a batching delay runs instead of a poll */
        uint64_t last_tiny[2];  /* CLOCK_MONOTONIC usec of the last tiny read */
        bool pidfd_armed;

        int log_fd;             /* opened on first output or subscription; closed when
                                 * the job ended and nobody reads it */
        uint64_t log_size;      /* end of the last complete record */
        bool log_failed;        /* a write to the log failed: rest dropped */
        uint8_t log_version;    /* OUTLOG_V*, read from the file before the first append; 0 */
        uint64_t checkpoint_size;    /* log_size at the last checkpoint status write */
        uint64_t checkpoint_records; /* records appended since then */
        bool status_unsaved;    /* the last status write failed: retried (jobrecord.c) */

        /* The job's cgroup (st.has_cgroup) is opened only while it is being
         * emptied, so a running job holds three fds: pidfd and two pipes. */
        int cg_fd;
        int cg_events_fd;       /* its cgroup.events, watched while emptying */
        bool cg_emptying;       /* main process gone, waiting for populated 0 */
        siginfo_t exit_info;    /* how the main process ended */

        struct __kernel_timespec stop_ts;
        struct __kernel_timespec runtime_ts;
        bool runtime_armed;     /* its time limit's timeout is queued */

        OwnerUsage *usage;      /* its owner's tally (owner-usage.c), while in the hash */
        bool usage_running;     /* counted as running there */
        uint64_t owner_output_max; /* JobSpec.owner_output_max, 0: none */
        Claim *name_claim;      /* its name among its owner's running jobs (job-claims.c) */
        Claim *rid_claim;       /* its Start's request id */

        uint32_t keep_bundle;   /* keeper.c bundle holding its fds, 0: not kept */
        /* Not our child (adopted from a previous daemon) and gone: waiting
         * for the kernel's exit status (PIDFD_INFO_EXIT, after the reap). */
        ListNode exit_wait;
        uint64_t exit_wait_until; /* CLOCK_MONOTONIC usec: then ENDED */

        JobInput *input;        /* its stdin pipe (job-input.c), NULL: /dev/null or closed */
};

struct Subscriber {
        uint32_t slot, gen;
        Job *job;
        ListNode in_job;
        ListNode runnable;
        unsigned streams;
        bool follow;
        bool ready;             /* consumer wants data */
        OutlogCursor cur;
        uint64_t skip_to;       /* requested start offset, maybe past the end so far */
        SubscriberOps ops;
        void *userdata;
};

struct EngineTimer {
        uint32_t slot;
        uint32_t armed_gen;     /* which arming is current; odd = armed */
        EngineClosure fn;
        void *userdata;
        struct __kernel_timespec ts;
};

typedef struct Posted {
        struct Posted *next;
        EngineClosure fn;
        void *userdata;
        bool own;       /* the engine's own (engine_post_own()), in the poster's memory: not freed here */
} Posted;

/* Faults a unit test can ask for, to see the engine handle what the kernel
 * rarely does. All 0 outside tests. */
typedef struct EngineFaults {
        unsigned sqe_skip;      /* this many get_sqe calls succeed, then ... */
        unsigned sqe_fail;      /* ... this many return NULL (-EBUSY) */
        unsigned submit_fail;   /* this many submits return -EBUSY and submit
                                 * nothing, as a kernel refusing them does */
        unsigned sqe_failed;    /* count of injected get_sqe failures */
        bool no_exit_info;      /* the kernel has no PIDFD_INFO_EXIT (as 6.1) */
        int signal_procs_fail;  /* errno: signalling a frozen job's members fails (job-signal.c) */
        unsigned post_fail;     /* this many engine_post() calls fail with -ENOMEM (loop.c) */
        uint64_t spawn_delay_usec; /* each spawn waits this long first, as on a loaded machine (job-start.c) */
} EngineFaults;

struct Engine {
        struct io_uring ring;
        bool ring_ok;

        char *state_dir;
        uint64_t output_cap;
        unsigned retain_max_jobs;
        uint64_t retain_max_age_usec;
        uint64_t default_grace_usec;

        int state_fd, jobs_fd, devnull_fd;
        int cgroup_fd;          /* root for job cgroups, or -1 */
        unsigned cg_controllers;
        unsigned cgroups_cleaned;
        int wake_fd;
        uint64_t wake_value;
        atomic_bool stop;

        pthread_mutex_t post_lock;
        Posted *post_head, *post_tail;

        Spawner *spawner;       /* the threads that start processes */
        Keeper *keeper;         /* fds in the service manager's store, or NULL */
        bool leave_running;     /* engine_free() leaves running jobs to the next daemon */
        ListHead exit_waits;    /* Job.exit_wait */
        EngineTimer *exit_wait_timer;
        unsigned jobs_adopted;  /* running jobs taken over at start */
        unsigned exits_unknown; /* of them, ended with no status to read */
        unsigned n_starting;    /* starts handed to the spawner, not yet back */
        uint8_t *buf;
        bool splice;            /* capture with splice() (EngineConfig.capture_splice) */
        bool splice_failed;     /* the state directory's file system cannot splice */
        bool async_unlink;      /* the ring has IORING_OP_UNLINKAT (5.11) */

        RingSlotTable job_slots, sub_slots, timer_slots, removal_slots;
        uint32_t timer_seq;     /* keeps arming numbers of reused slots apart */
        Job **hash;
        size_t n_buckets;

        ListHead jobs;          /* all, by start */
        ListHead finished;      /* finished, by end */
        ListHead drains;
        ListHead runnable;
        ListHead rearms;        /* jobs with Job.rearm set */
        bool rearm_wake;        /* the eventfd read could not be queued */
        bool rearm_retention;   /* the retention timer could not be queued */
        unsigned n_running;
        unsigned n_subscribers;
        StrMap owners;          /* owner -> OwnerUsage */
        StrMap names;           /* "NAME/OWNER" -> Claim (job-claims.c) */
        StrMap request_ids;     /* "REQUEST-ID/OWNER" -> Claim */

        bool retention_armed;
        struct __kernel_timespec retention_ts;

        char *default_user, *default_home;

        EngineObserver observer;
        void *observer_userdata;

        bool freeing;           /* in engine_free() */
        EngineFaults faults;
        unsigned removal_errors; /* unlinks of a removal that failed (not ENOENT) */
        uint64_t log_bytes_scanned; /* log bytes walked by store_load() (tests) */
        uint64_t chunks_direct;     /* chunks a follower got straight from a pipe read (subscriber.c) */
        unsigned logs_cut;          /* logs whose torn end store_load() cut off */
        uint64_t log_bytes_cut;
        unsigned logs_finished;     /* logs whose provisional last record it made whole */
        unsigned newer_records;     /* records of a newer format than JOBFILE_VERSION */
        unsigned newer_version;     /* the newest of them */
        uint64_t batch_delays;      /* batching delays armed (capture.c; tests) */

        /* Status records the disk refused (jobrecord.c). */
        EngineTimer *save_timer;
        uint64_t save_backoff_usec;
        unsigned n_unsaved;      /* jobs with status_unsaved */
        unsigned save_failures;  /* failed status writes, ever */
        int save_last_error;     /* positive errno of the last one */
        unsigned dirs_cleaned;   /* job directories removed at start: no record */
};

/* Small helpers -------------------------------------------------------------- */

static inline int pidfd_signal(int pidfd, int sig) {
        return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

static inline struct __kernel_timespec usec_to_ts(uint64_t usec) {
        return (struct __kernel_timespec) {
                .tv_sec = (long long) (usec / 1000000),
                .tv_nsec = (long long) (usec % 1000000) * 1000,
        };
}

/* Moves fd to a number above 2 (closing the old one), or -1. */
int fd_above_2(int fd);

/* loop.c: the ring --------------------------------------------------------- */

/* ring_get_sqe() with the injected faults. NULL: the kernel refused a
 * submit; *ret_error (may be NULL) says why. */
struct io_uring_sqe *engine_get_sqe(Engine *e, int *ret_error);
/* io_uring_submit() with the injected faults; -EINTR retried. */
int engine_submit(Engine *e);
/* One-shot poll of fd for op of job j. -errno when it cannot be queued. */
int engine_arm_poll(Engine *e, int fd, unsigned mask, unsigned op, Job *j);
/* Cancels the request with user_data ud. Best effort, see loop.c. */
void engine_cancel(Engine *e, uint64_t ud);
/* Remembers that job j has a request (REARM_*) to queue again. */
void engine_rearm_later(Engine *e, Job *j, unsigned what);
int engine_arm_wake(Engine *e);
void engine_run_posted(Engine *e);
/* engine_post() of a closure of the engine's own (a start's result), which
 * needs the engine to undo what it did even while engine_free() runs. In
 * node, memory of the poster's that stays until fn has run: it cannot fail
 * (a start whose result could not be posted would hold its name and its
 * owner's count forever, and its caller would wait forever). */
void engine_post_own(Engine *e, Posted *node, EngineClosure fn, void *userdata);
/* engine_free(): runs what is posted, the engine's own closures with the
 * engine, the others with NULL (as engine_post() promises: their posters
 * may be gone), so that each frees its data. */
void engine_run_posted_freeing(Engine *e);
/* The same with NULL for all, once the engine is no longer whole. */
void engine_drop_posted(Engine *e);

/* job.c: job objects, the id hash, starting --------------------------------- */

Job *job_new(Engine *e);
void job_free(Engine *e, Job *j);
int job_hash_add(Engine *e, Job *j);
Job *job_find(Engine *e, const JobId *id);
void job_notify(Engine *e, EngineEvent ev, Job *j);
/* Queues the pidfd poll and both pipe polls of a new job; -errno if the
 * pidfd poll cannot be queued (then nothing would ever reap it). */
int job_arm_all(Engine *e, Job *j);
/* "job-<id>" */
void job_cgroup_name(const JobId *id, char buf[static JOB_ID_STRING_MAX + 8]);
int job_open_cgroup(Engine *e, Job *j);
void job_status_now(Engine *e, Job *j, JobStatus *ret);

/* job-exit.c: stop, exit, cgroup emptying ------------------------------------ */

void job_kill_all(Engine *e, Job *j);
/* SIGTERM now, the whole job killed after grace_usec (UINT64_MAX: the
 * default; 0: killed now), as a Stop does; the caller has said why
 * (st.stop_requested or st.timed_out). */
int job_stop_begin(Engine *e, Job *j, uint64_t grace_usec);
/* A stop or the time limit ended it: nothing of the job is left. */
static inline bool job_stopping(const Job *j) {
        return j->st.stop_requested || j->st.timed_out;
}
void job_on_pidfd(Engine *e, Job *j, int res);
void job_on_cgroup_event(Engine *e, Job *j, int res);
void job_on_stop_timer(Engine *e, Job *j, int res);
int job_arm_stop_timer(Engine *e, Job *j);
void job_cgroup_done(Engine *e, Job *j);
/* engine_free(): kill a job that still runs, wait for it, record its end. */
void job_kill_and_record(Engine *e, Job *j);
/* A job adopted from a previous daemon (not our child) ended: its status
 * from PIDFD_INFO_EXIT where the kernel has it, else JOB_STATE_ENDED. */
void job_exit_wait_run(Engine *e, void *userdata);

/* job-runtime.c: time limits ------------------------------------------------- */

/* Queues the timeout of j's st.runtime_deadline; -errno if it cannot be
 * queued (then engine_rearm_later(REARM_RUNTIME)). */
int job_arm_runtime_timer(Engine *e, Job *j);
void job_on_runtime_timer(Engine *e, Job *j, int res);
/* The job ended: a queued timeout of its limit is cancelled. */
void job_runtime_done(Engine *e, Job *j);

/* job-signal.c: signals on request ------------------------------------------- */

/* A job taken over from a previous daemon: its cgroup is thawed, in case
 * that daemon died between freezing it for a signal and thawing it. */
void job_thaw_adopted(Engine *e, Job *j);
/* job-input.c: the stdin pipe ------------------------------------------------ */

/* Gives a new job the write end of its stdin pipe (taken; non-blocking).
 * -ENOMEM: nothing taken. */
int job_input_attach(Job *j, int fd);
void job_input_on_poll(Engine *e, Job *j, int res);
/* REARM_IN: queue the POLLOUT wait again. */
int job_input_rearm(Engine *e, Job *j);
/* The job ended (or is freed): a pending write fails with -EPIPE
 * (-ECANCELED and e NULL to done at engine_free()), the pipe is closed. */
void job_input_end(Engine *e, Job *j);

/* capture.c: pipes into the output log --------------------------------------- */

enum { DRAIN_AGAIN, DRAIN_MORE, DRAIN_EOF };

/* Batching of tiny reads (capture.c). 5 ms: a terminal echo or a prompt is
 * not seen later than that even when it is batched (people notice some
 * 50 ms), while a pipe kept busy by a 1-byte writer is looked at no more
 * than ~200 times a second instead of once per byte. A writer fast enough
 * to fill a 64 KiB pipe in 5 ms (13 MB/s) gives reads far above BATCH_TINY
 * and is never delayed. */
#define BATCH_DELAY_USEC 5000u
#define BATCH_WINDOW_USEC 20000u /* two tiny reads closer than this: a busy pipe */
#define BATCH_TINY 4096u          /* bytes: a read smaller than a page is tiny */
/* The batching delay of pipe i is over: read what piled up. */
void job_on_batch_timer(Engine *e, Job *j, int i);
int job_open_log(Engine *e, Job *j);
int job_drain_pipe(Engine *e, Job *j, int i, unsigned budget, bool stop_short);
void job_pipe_service(Engine *e, Job *j, int i, unsigned budget);
void job_close_pipe(Engine *e, Job *j, int i);

/* subscriber.c ------------------------------------------------------------------ */

void sub_queue(Engine *e, Subscriber *s);
void sub_run(Engine *e, Subscriber *s);
void sub_free(Engine *e, Subscriber *s);
/* The direct path (subscriber.c): a follower that may take the next bytes
 * of stream as they are read, or NULL; then its buffer for at most want
 * bytes (what the pipe holds), NULL if it has none. */
Subscriber *sub_direct_candidate(Job *j, JobStream stream);
void *sub_direct_buffer(Subscriber *s, size_t want, size_t *ret_size);
void sub_direct_end(Engine *e, Subscriber *s, JobStream stream, const void *buf, size_t logged);
void job_wake_subscribers(Engine *e, Job *j);

/* owner-usage.c: the per-owner tally ----------------------------------------------- */

/* The tally of owner, made on first use; NULL on ENOMEM. */
OwnerUsage *owner_usage_ref(Engine *e, const char *owner);
OwnerUsage *owner_usage_unref(Engine *e, OwnerUsage *u);
/* A job enters the id hash (its output so far counts) / leaves it. */
int owner_usage_attach(Engine *e, Job *j);
void owner_usage_detach(Engine *e, Job *j);
/* The job started running / ended. */
void owner_usage_set_running(Job *j, bool running);
/* A start of the owner went to the spawner (+1) or came back (-1). */
void owner_usage_starting(OwnerUsage *u, int delta);
/* Of want bytes of new output, how many j may keep under its owner's
 * max-output (want if it has none). */
size_t owner_usage_room(const Job *j, size_t want);
/* j kept n more bytes of output. */
void owner_usage_output(Job *j, uint64_t n);
/* engine_free(): the tallies still referenced by abandoned starts. */
void owner_usage_free_all(Engine *e);

/* job-claims.c: names and request ids per owner --------------------------------- */

/* engine_start_job(), before anything is made: 1 when the request id is
 * known (done is answered with that job, or joins its start: nothing to
 * start), -EEXIST (*err filled) when the name is taken, 0 to go on,
 * -ENOMEM. */
int claims_check_start(Engine *e, const JobSpec *spec, JobStartError *err, EngineStartDone done, void *userdata);
/* The start (its id made) claims its name and request id. */
int claims_take_start(Engine *e, JobStart *js);
/* The registered job holds what its start claimed. */
void claims_start_to_job(JobStart *js, Job *j);
/* The start is undone or done (e NULL: the engine is gone). */
void claims_start_free(Engine *e, JobStart *js);
/* A job from the state directory claims its request id, and its name if
 * it runs. */
void claims_job_loaded(Engine *e, Job *j);
/* It stopped running: its name is free again. */
void claims_job_ended(Engine *e, Job *j);
void claims_job_free(Engine *e, Job *j);
/* engine_free(): the maps go (first: abandoned starts free their claims
 * on other threads). */
void claims_done(Engine *e);

/* store.c: the state directory --------------------------------------------------- */

int job_write_status(Engine *e, Job *j);
int store_load(Engine *e);
void store_remove_job_dir(Engine *e, const char *dir);
void store_on_unlink(Engine *e, uint64_t ud, int res);
/* engine_free(): waits (bounded) for removals in flight. */
void store_drain_removals(Engine *e);
void job_remove(Engine *e, Job *j);
void retention_run(Engine *e);
void retention_on_timer(Engine *e);
int mkdir_p(const char *path, mode_t mode);
