/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The job engine: the public API of libjobworker's core.
 *
 * One Engine owns one io_uring and all job and subscriber state. Every
 * function below except engine_post() and engine_wake_stop() must be called
 * on the engine thread, i.e. the thread running engine_run() (or, in tests,
 * the thread calling engine_run_once()). Other threads hand work to the
 * engine with engine_post(), which runs a closure on the engine thread.
 * Because of that, job state has no locks.
 *
 * Callbacks (subscriber chunk/end, job exit observers) are invoked on the
 * engine thread; they may call back into the engine.
 *
 * Errors are negative errno values; expected conditions have named codes:
 *   -ENOENT   no such job (or subscriber)
 *   -ESRCH    the job is not running (stop of a finished job)
 *   -EINVAL   invalid argument (empty argv, NUL byte, bad env entry, ...)
 *   -E2BIG    argv/env over the limits below
 *   -EMFILE/-ENFILE/-EAGAIN  out of resources
 * A failed exec is reported by engine_start_job()'s completion with the
 * errno of the exec (or of chdir/setuid...) and the stage that failed, see
 * JobStartError.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/job-id.h"
#include "shared/job-name.h"

typedef struct Engine Engine;

/* Limits on what a caller may ask for. Documented in jobworkerd(8). */
#define JOB_ARGV_MAX 4096u           /* arguments per job */
#define JOB_ENV_MAX 1024u            /* extra environment entries */
#define JOB_STRING_MAX (64u * 1024u) /* one argument / env entry / cwd, bytes */
#define JOB_ARGS_TOTAL_MAX (1024u * 1024u) /* argv + env + cwd together, bytes */
#define JOB_OWNER_MAX 255u           /* owner string, bytes */
#define JOB_COMMAND_MAX 255u         /* the command line summary kept in status */

/* Largest chunk handed to a subscriber in one callback. */
#define ENGINE_CHUNK_MAX (256u * 1024u)

typedef enum JobStream {
        JOB_STREAM_STDOUT = 1,
        JOB_STREAM_STDERR = 2,
} JobStream;

/* Bit mask of JobStream values. */
#define JOB_STREAMS_ALL (JOB_STREAM_STDOUT | JOB_STREAM_STDERR)

typedef enum JobState {
        JOB_STATE_RUNNING,
        JOB_STATE_EXITED, /* exit_code is valid */
        JOB_STATE_KILLED, /* signal is valid */
        JOB_STATE_LOST,   /* was running when a previous daemon died */
        /* Ended while a previous daemon was gone, and how is not known: the
         * kernel cannot say (no PIDFD_INFO_EXIT before Linux 6.15) and the
         * job was not our child. Never a made-up exit code. */
        JOB_STATE_ENDED,
} JobState;

const char *job_state_to_string(JobState s);

/* What a job's standard input is (job-input.c). */
typedef enum JobStdin {
        JOB_STDIN_NULL,         /* /dev/null: started without stdin_open */
        JOB_STDIN_OPEN,         /* a pipe, no writer attached yet */
        JOB_STDIN_WRITING,      /* a pipe with a writer attached */
        JOB_STDIN_CLOSED,       /* the pipe was closed: the job reads EOF */
} JobStdin;

typedef struct JobStatus {
        JobId id;
        JobState state;
        int exit_code;          /* JOB_STATE_EXITED */
        int signal;             /* JOB_STATE_KILLED */
        bool stop_requested;    /* a stop was asked for before it ended */
        pid_t pid;
        uint64_t start_usec;    /* CLOCK_REALTIME, microseconds */
        uint64_t end_usec;      /* 0 while running */
        uint64_t stdout_bytes;  /* bytes kept in the output log */
        uint64_t stderr_bytes;
        bool truncated;         /* output cap reached */
        uint64_t dropped_bytes; /* bytes discarded past the cap */
        /* With a per-job cgroup (has_cgroup); final once the job ended. */
        bool has_cgroup;
        uint64_t cpu_usec;      /* CPU time used by all its processes */
        uint64_t memory_peak;   /* bytes; 0 if the memory controller is off */
        uint64_t oom_kills;     /* processes killed by the OOM killer */
        bool oom_killed;        /* it ended because of an OOM kill */
        char owner[JOB_OWNER_MAX + 1];
        char command[JOB_COMMAND_MAX + 1]; /* argv joined by spaces, cut */
        /* The main process's start time (clock ticks since boot, from
         * /proc/PID/stat): tells the job's process from a later one that
         * got the same pid. 0: not known (records of version 1). */
        uint64_t pid_starttime;
        /* Only in the record written before the spawn: a crash left it, and
         * its process (if any) has no pid on record. */
        bool starting;
        /* JOB_STATE_LOST: its main process (pid, pid_starttime) still runs
         * (jobs without a cgroup outlive a killed daemon). Such a job stays
         * listed, retention keeps it, and engine_stop_job() stops it (its
         * process group); cleared when the process is seen to end. */
        bool process_alive;
        /* Its directory in the state directory was deleted while the job
         * was known (by hand): output from then on is not kept, and the
         * job is not known to the next engine. Found on a status query, a
         * subscription or a status write (ENGINE_EVENT_FILES_REMOVED). */
        bool files_removed;
        /* A stop is pending: CLOCK_MONOTONIC usec at which the job is
         * killed (0: none). Monotonic time is the host's, not the
         * process's, so the next daemon of the same boot keeps the promise. */
        uint64_t stop_deadline;
        /* Its time limit (JobSpec.max_runtime_usec), 0: none; and the
         * CLOCK_MONOTONIC usec at which it is stopped for it (as
         * stop_deadline, kept by the next daemon of the same boot). */
        uint64_t max_runtime_usec;
        uint64_t runtime_deadline;
        /* It reached its time limit and was stopped for it (not by a
         * stop: stop_requested is false unless one came first). */
        bool timed_out;
        /* Given at Start (shared/job-name.h), "" when not: its name, its
         * labels joined ("KEY=VALUE,..."), its Start's request id. */
        char name[JOB_NAME_MAX + 1];
        char labels[JOB_LABELS_TEXT_MAX + 1];
        char request_id[JOB_REQUEST_ID_MAX + 1];
        JobStdin stdin_state;   /* not OPEN/WRITING after a restart: CLOSED */
        bool tty;               /* it runs on a pseudo-terminal (JobSpec.tty) */
} JobStatus;

/* Identity to run a job as. NULL in JobSpec: run as the engine's own user. */
typedef struct JobCredentials {
        uid_t uid;
        gid_t gid;
        size_t n_groups;
        gid_t *groups;          /* supplementary groups, borrowed */
        const char *user;       /* for USER= */
        const char *home;       /* for HOME= and the default cwd */
} JobCredentials;

/* Resource limits of one job (cgroup v2). 0 / empty = no limit. */
typedef struct JobIoLimit {
        uint32_t major, minor;  /* block device */
        uint64_t read_bps;      /* 0 = unlimited */
        uint64_t write_bps;
} JobIoLimit;

/* An io limit on the disk a path is on (a block device node stands for
 * itself, a partition for its whole disk), resolved by the engine off its
 * thread (core/iodev.h) with the job's account's file system ids. */
#define JOB_IO_MAX 16u
typedef struct JobIoDevice {
        const char *device;     /* absolute path */
        uint64_t read_bps;      /* 0: not asked for */
        uint64_t write_bps;
} JobIoDevice;

typedef struct JobLimits {
        uint32_t cpu_millis;    /* 1000 = one CPU (cpu.max) */
        uint64_t memory_max;    /* bytes (memory.max; swap then 0) */
        uint64_t pids_max;      /* pids.max */
        size_t n_io;
        const JobIoLimit *io;   /* io.max entries, borrowed */
        size_t n_io_devices;    /* or io entries by path, resolved by the */
        const JobIoDevice *io_devices; /* engine (not with n_io), borrowed */
} JobLimits;

typedef struct JobSpec {
        const char *const *argv; /* NULL-terminated, argv[0] is the program */
        const char *const *env;  /* NULL-terminated "KEY=VALUE" extras, or NULL */
        const char *cwd;         /* NULL: HOME of the account, or / */
        const char *owner;       /* who started it (identity), stored in status */
        const JobCredentials *creds; /* NULL: as the engine's user */
        const JobLimits *limits; /* NULL: none. Needs EngineConfig.cgroup_root */
        int cgroup_fd;           /* unused, keep -1 (the engine makes the job's cgroup) */
        unsigned isolate;        /* JOB_ISOLATE_* mask, 0: none */
        /* 0: none. Output of this job is dropped (and the job marked
         * truncated, as at output_cap) while all jobs of its owner, running
         * and retained, keep this many bytes or more (max-output=). */
        uint64_t owner_output_max;
        /* 0: none. The job is stopped as by engine_stop_job() with the
         * default grace this long after the start is accepted, and its
         * status says timed_out. */
        uint64_t max_runtime_usec;
        /* NULL or "": none. Checked against shared/job-name.h. A name is
         * unique per owner among starting and running jobs: a start with
         * the name of one fails -EEXIST (JOB_START_STAGE_NAME, the message
         * names the other job). A start with the request id of an earlier
         * start of the same owner whose job's record still exists (or
         * that is still starting) starts nothing: its done gets that job's
         * id (or the starting one's result). */
        const char *name;
        const char *labels;     /* joined: "KEY=VALUE,..." (job_labels_join) */
        const char *request_id;
        /* The job's stdin is a pipe written with engine_input_*(); false:
         * /dev/null, as always (no extra system call on that path). */
        bool stdin_open;
        /* NULL, or run it on a pseudo-terminal of this size (job-tty.c):
         * stdin, stdout and stderr are the terminal, its output is stdout,
         * stdin_open is implied. */
        const struct JobTerminal *tty;
} JobSpec;

typedef struct JobTerminal {
        uint16_t rows, cols;    /* 1..65535 */
        const char *term;       /* TERM=; NULL or "": dumb */
} JobTerminal;

/*
 * Opt-in isolation, each a new namespace for the job:
 *   PID  the job is PID 1 of its own PID namespace, with /proc remounted
 *        (implies MOUNT). As an init process it gets only the signals it has
 *        handlers for, so a stop's SIGTERM is ignored unless the program
 *        handles it; the SIGKILL after the grace period always works. When
 *        it exits, everything else in the namespace is killed.
 *   NET  a network namespace with only the loopback interface (up), and a
 *        /sys of its own (implies MOUNT).
 *   TMP  a mount namespace with a private, empty tmpfs on /tmp.
 */
enum {
        JOB_ISOLATE_PID = 1 << 0,
        JOB_ISOLATE_NET = 1 << 1,
        JOB_ISOLATE_TMP = 1 << 2,
};
#define JOB_ISOLATE_ALL (JOB_ISOLATE_PID | JOB_ISOLATE_NET | JOB_ISOLATE_TMP)

/* What failed when engine_start_job() says the job could not be started. */
typedef enum JobStartStage {
        JOB_START_STAGE_NONE,
        JOB_START_STAGE_SPAWN,  /* clone3 / pipes */
        JOB_START_STAGE_CHDIR,
        JOB_START_STAGE_CREDENTIALS,
        JOB_START_STAGE_EXEC,
        JOB_START_STAGE_LIMITS, /* a limit cannot be applied (-EOPNOTSUPP: controller missing) */
        JOB_START_STAGE_ISOLATION, /* a namespace or its set-up was refused */
        JOB_START_STAGE_IO_DEVICE, /* an io device path cannot be resolved (names it) */
        JOB_START_STAGE_STATE,  /* the job cannot be recorded in the state directory */
        JOB_START_STAGE_NAME,   /* -EEXIST: a starting or running job of the owner has the name */
} JobStartStage;

typedef struct JobStartError {
        JobStartStage stage;
        int error;              /* positive errno */
        char message[512];      /* human readable, names the path */
} JobStartError;

/*
 * The service manager's file-descriptor store (systemd's FDSTORE=1), where
 * the engine keeps its running jobs' fds so that they outlive a crash or a
 * restart of the daemon (core/keeper.c). The callbacks run on any engine or
 * spawner thread.
 */
typedef struct EngineFdStore {
        /* Stores (a copy of) fd under name, polling for hang-ups off
         * (FDPOLL=0). The engine keeps its own fd. 0 or -errno. */
        int (*store)(void *userdata, int fd, const char *name);
        /* Drops every fd stored under name. */
        int (*remove)(void *userdata, const char *name);
        void *userdata;
        /* What the store handed back at this start (LISTEN_FDS after the
         * sockets, LISTEN_FDNAMES): the engine reads copies of the fds
         * named "jobs-*"; the caller keeps (and closes) all of them. */
        const int *fds;
        const char *const *names;
        size_t n;
} EngineFdStore;

typedef struct EngineConfig {
        const char *state_dir;       /* required; created if missing */
        uint64_t output_cap;         /* bytes per job; 0 = default (1 GiB) */
        unsigned retain_max_jobs;    /* finished jobs kept; 0 = default (1000) */
        uint64_t retain_max_age_usec;/* 0 = default (7 days) */
        uint64_t default_grace_usec; /* stop grace; 0 = default (5 s) */
        unsigned ring_entries;       /* 0 = default */
        /* A cgroup v2 directory the engine may create job cgroups in (see
         * cgroup_prepare_delegated()); NULL: no cgroups, stop reaches the
         * process group only. */
        const char *cgroup_root;
        /* Capture with splice() instead of read()+pwritev(). Off by default:
         * splice into a file still copies into the page cache, and does it
         * while holding the pipe's lock, so the job's writes wait; measured
         * slower in most runs (bench/README.md). Kept for the benchmark;
         * the engine splices anyway where jobs outlive it (crash-exact,
         * capture.c). */
        bool capture_splice;
        /* NULL: running jobs do not outlive the engine's process. */
        const EngineFdStore *fdstore;
} EngineConfig;

#define ENGINE_DEFAULT_OUTPUT_CAP (1024ull * 1024 * 1024)
#define ENGINE_DEFAULT_RETAIN_JOBS 1000u
#define ENGINE_DEFAULT_RETAIN_AGE_USEC (7ull * 24 * 3600 * 1000000)
#define ENGINE_DEFAULT_GRACE_USEC (5ull * 1000000)

/*
 * Creates the engine: opens the ring, creates/loads state_dir. Finished
 * jobs found there are loaded (jobs that were running are marked LOST).
 * The calling thread becomes the engine thread.
 */
int engine_new(Engine **ret, const EngineConfig *config);
Engine *engine_free(Engine *e);
/* From now on engine_free() leaves running jobs running (a restart or an
 * upgrade of the daemon): their fds stay in the store for the next daemon
 * to adopt. -EOPNOTSUPP without a store (EngineConfig.fdstore): they would
 * lose their pipes' reader, so they are stopped as before. */
int engine_leave_running(Engine *e);
/* Copies of the fds the store keeps for the running jobs, with their names
 * ("jobs-N"), for a new binary exec'd in place that must find them as a
 * restart would (the caller owns fds, strings and arrays). */
int engine_kept_fds(Engine *e, int **ret_fds, char ***ret_names, size_t *ret_n);

/* Runs the loop until engine_wake_stop(); returns 0 or -errno. */
int engine_run(Engine *e);
/* One iteration: wait up to timeout_usec (or forever if UINT64_MAX) for
 * events and dispatch them. Returns 0, or -errno. For tests and embedding. */
int engine_run_once(Engine *e, uint64_t timeout_usec);

/* Thread-safe: run fn(userdata) on the engine thread soon. Never fails
 * except -ENOMEM. If the engine is freed first, fn is called with
 * engine == NULL so that userdata can be released. */
typedef void (*EngineClosure)(Engine *e, void *userdata);
int engine_post(Engine *e, EngineClosure fn, void *userdata);
/* Thread-safe: make engine_run() return. */
void engine_wake_stop(Engine *e);

/* Timers for the embedding program (watchdog, rate limits): one-shot,
 * re-armable, run on the engine thread. Re-arming replaces the previous
 * deadline. */
typedef struct EngineTimer EngineTimer;
int engine_timer_new(Engine *e, EngineClosure fn, void *userdata, EngineTimer **ret);
int engine_timer_arm(Engine *e, EngineTimer *t, uint64_t after_usec);
void engine_timer_disarm(Engine *e, EngineTimer *t);
bool engine_timer_armed(Engine *e, EngineTimer *t);
EngineTimer *engine_timer_free(Engine *e, EngineTimer *t);

/* Jobs ------------------------------------------------------------------ */

/*
 * Starts a job, asynchronously: the stages that look at paths the client
 * chose (io devices, cwd or HOME, the PATH walk of exec) run on a spawner
 * thread, so a hung file system never stalls the engine. done is called
 * exactly once, on the engine thread, from the loop (never from within
 * engine_start_job()): r = 0 and *id, or r < 0 (-errno) and *error with
 * stage and message (id NULL then). The spec and everything it points to
 * are copied: the caller may free them on return.
 *
 * Returns 0 (done will be called) or -ENOMEM (it will not). When the
 * engine is freed with starts in flight, engine_free() undoes them (a child
 * stuck in a hung cwd is SIGKILLed) and calls their done with e == NULL and
 * r = -ECANCELED, only so that userdata can be released. A start still stuck
 * after 2 s on a path no signal frees (a stat() of an io device, or a chdir
 * into a FUSE mount whose server read the request and never answers) is
 * abandoned: its done is never called (see spawner.c).
 */
typedef void (*EngineStartDone)(Engine *e, int r, const JobId *id, const JobStartError *error, void *userdata);
int engine_start_job(Engine *e, const JobSpec *spec, EngineStartDone done, void *userdata);

/* engine_start_job() that runs the loop until the start is done: for tests,
 * benchmarks and programs that own the loop. Not from an engine callback
 * (the loop is not re-entrant). *ret_id on success; *ret_error (if not
 * NULL) always. */
int engine_start_job_wait(Engine *e, const JobSpec *spec, JobId *ret_id, JobStartError *ret_error);

/* SIGTERM now, then SIGKILL to the whole job after grace_usec
 * (UINT64_MAX = the engine's default). -ENOENT unknown, -ESRCH not running
 * (a LOST job whose process_alive is set counts as running here). */
int engine_stop_job(Engine *e, const JobId *id, uint64_t grace_usec);

/* Sends signal sig (1..JOB_SIGNAL_MAX) to the job's main process, through
 * its pidfd, or with all to every process of the job: with a cgroup, the
 * cgroup frozen, each member signalled, the cgroup thawed (SIGKILL: its
 * cgroup.kill); without one, the job's process group. Not a stop: the
 * job's status is not marked stop_requested. -ENOENT unknown, -ESRCH not
 * running (as for engine_stop_job()), -EINVAL sig out of range. Signal 0
 * (a check) is refused: engine_get_status() says whether a job runs. */
#define JOB_SIGNAL_MAX 64
int engine_signal_job(Engine *e, const JobId *id, int sig, bool all);

/* Stops every running job (as engine_stop_job with the given grace).
 * Returns the number of jobs that were asked to stop. */
unsigned engine_stop_all(Engine *e, uint64_t grace_usec);

int engine_get_status(Engine *e, const JobId *id, JobStatus *ret);

/* Standard input (job-input.c) -------------------------------------------- */

/*
 * A job started with JobSpec.stdin_open has a pipe as its stdin; the engine
 * holds the write end (non-blocking, CLOEXEC) until one writer has come and
 * gone. The writer is who called engine_input_open(); it writes with
 * engine_input_write(), one write at a time, and lets go with
 * engine_input_close(), which closes the pipe (the job reads EOF): a stdin
 * has one writer in its life. The write end is not kept for the next
 * daemon: after a restart the job reads EOF.
 *
 * engine_input_open(): -ENOENT no such job; -ESRCH it is not running;
 * -ENOTTY it was started without stdin (reads /dev/null); -EBUSY another
 * writer has it; -EPIPE its stdin was closed already.
 */
typedef struct InputWriterId {
        uint64_t value;
} InputWriterId;

int engine_input_open(Engine *e, const JobId *id, InputWriterId *ret);

/* done(e, r, userdata): r = 0 when all `size` bytes are in the pipe; -EPIPE
 * when the job closed its stdin or ended first. Called on the engine thread,
 * from within engine_input_write() itself when the pipe took everything at
 * once; at engine_free() with e NULL and -ECANCELED. data is borrowed until done is called (or the writer
 * closed). A job that does not read leaves the write pending: that is the
 * backpressure (the caller asks for more only after done). -EBUSY: a write
 * of this writer is pending; -ENOENT: no such writer (closed, job gone). */
typedef void (*EngineInputDone)(Engine *e, int r, void *userdata);
int engine_input_write(Engine *e, InputWriterId w, const void *data, size_t size, EngineInputDone done,
                       void *userdata);

/* Lets go of the stdin and closes it (the job reads EOF once its pipe is
 * empty). A pending write is dropped: its done is not called. -ENOENT: no
 * such writer. */
int engine_input_close(Engine *e, InputWriterId w);

/* A job on a terminal (JobSpec.tty): its window size (it gets SIGWINCH).
 * -ENOTTY: the job has no terminal; -ENOENT: no such writer. */
int engine_input_resize(Engine *e, InputWriterId w, unsigned rows, unsigned cols);

/* All jobs, oldest first, optionally only those whose owner equals owner.
 * *ret is malloc()ed, caller frees. */
int engine_list(Engine *e, const char *owner, JobStatus **ret, size_t *ret_n);

/* Which jobs engine_list_filtered() gives: all conditions hold (AND);
 * an unset one matches every job. */
typedef struct EngineListFilter {
        const char *owner;      /* NULL: any */
        unsigned states;        /* mask of 1u << JobState; 0: any */
        const char *name;       /* NULL or "": any */
        size_t n_labels;        /* the job has every label_keys[i]=label_values[i] */
        const char *const *label_keys;
        const char *const *label_values;
        /* NULL: all owners. Otherwise only jobs whose owner it accepts
         * (the caller's authorization), asked once per matching job. */
        bool (*visible)(void *userdata, const char *owner);
        void *userdata;
} EngineListFilter;
int engine_list_filtered(Engine *e, const EngineListFilter *f, JobStatus **ret, size_t *ret_n);

/* owner has a start with request_id that engine_start_job() would answer
 * with the job it started (JobSpec.request_id): O(1). */
bool engine_request_id_known(Engine *e, const char *owner, const char *request_id);

/* Counts for status reporting. */
typedef struct EngineCounts {
        unsigned running;
        unsigned finished;
        unsigned subscribers;
        bool cgroups;            /* jobs get their own cgroup */
        unsigned cgroup_controllers; /* CGROUP_CTRL_* mask usable for limits */
        unsigned cgroups_cleaned;    /* leftover job cgroups removed at start */
        unsigned dirs_cleaned;       /* job directories without a record (or with
                                      * only the one written before the spawn)
                                      * removed at start */
        unsigned status_unsaved;     /* jobs whose status the disk refused (retried) */
        unsigned status_save_failures; /* failed status writes since start */
        int status_save_error;       /* positive errno of the last failure */
        unsigned logs_cut;           /* logs whose torn end was cut off at start */
        uint64_t log_bytes_cut;      /* ... bytes cut */
        unsigned logs_finished;      /* logs whose last record, cut short by a crash, was kept whole */
        unsigned newer_records;      /* job records of a newer format than this engine's */
        unsigned newer_version;      /* the newest such format */
        unsigned record_version;     /* this engine's format of job records */
        bool fdstore;                /* running jobs outlive the daemon (keeper.c) */
        unsigned jobs_adopted;       /* running jobs taken over at start */
        unsigned exits_unknown;      /* of them, ended with no status to read */
        unsigned keep_bundles;       /* fd bundles in the store now */
        unsigned keep_failures;      /* jobs whose fds could not be kept */
        int keep_error;              /* positive errno of the last such failure */
        uint64_t chunks_direct;      /* chunks a caught-up follower got straight from a pipe read */
} EngineCounts;
void engine_get_counts(Engine *e, EngineCounts *ret);

/* The tally of owner's jobs, O(1): *ret_running jobs starting or running,
 * *ret_output bytes of output kept by all its jobs, running and retained
 * (what the policy's max-jobs= and max-output= bound). 0 and 0 for an
 * owner without jobs. */
void engine_owner_usage(Engine *e, const char *owner, unsigned *ret_running, uint64_t *ret_output);

/* Observer of job state changes (e.g. for logging and sd_notify STATUS=).
 * Called on the engine thread after the change. One observer per engine. */
typedef enum EngineEvent {
        ENGINE_EVENT_STARTED,
        ENGINE_EVENT_EXITED,    /* status is final */
        ENGINE_EVENT_REMOVED,   /* retention removed it */
        ENGINE_EVENT_SUBSCRIBERS, /* a subscriber of the job came or went */
        /* Its status could not be written to the state directory (the
         * errno is EngineCounts.status_save_error): the engine retries with
         * backoff (1 s .. 60 s) and at engine_free(). Once per failure. */
        ENGINE_EVENT_SAVE_FAILED,
        ENGINE_EVENT_SAVED,     /* written after all, after SAVE_FAILED */
        ENGINE_EVENT_FILES_REMOVED, /* its directory was found deleted (once) */
} EngineEvent;
typedef void (*EngineObserver)(Engine *e, EngineEvent ev, const JobStatus *status, void *userdata);
void engine_set_observer(Engine *e, EngineObserver fn, void *userdata);

/* Subscribers ----------------------------------------------------------- */

/*
 * A subscriber reads one job's output log from a starting offset. Offsets
 * count bytes of the *selected* streams in the order they were captured (the
 * "view"): with streams = STDOUT, offset N skips the first N bytes of stdout;
 * with both, the first N bytes of the interleaved output. A chunk carries the
 * view offset of its first byte, so a client that received K bytes resumes
 * exactly with offset K.
 *
 * Flow control: after a chunk callback the subscriber is paused until
 * engine_subscriber_ready() is called (from the callback or later). A paused
 * subscriber costs nothing but its cursor.
 *
 * When follow is false the subscription ends at the end of the output that
 * exists when it reaches it; otherwise it ends after the job ended and all
 * output was delivered. In both cases end() is called exactly once, with the
 * job's status at that moment, and the subscription is then gone (its id is
 * invalid; engine_unsubscribe() on it returns -ENOENT).
 */
typedef struct SubscriberId {
        uint64_t value;
} SubscriberId;

typedef struct SubscriberOps {
        /* data is valid only during the call, unless it is in a buffer the
         * consumer gave with buffer(). */
        void (*chunk)(void *userdata, JobStream stream, uint64_t offset, const void *data, size_t size);
        /* status->state may be RUNNING when follow was false. */
        void (*end)(void *userdata, const JobStatus *status);
        /* Optional: memory of at least `size` bytes to read the next chunk
         * into, so that the consumer can send it without copying it again
         * (NULL: the engine uses its own). Asked only when the log has more
         * bytes for this subscriber, or, when it follows and has everything
         * logged so far, just before its job's pipe is read (straight into
         * it). If nothing was read into it after all (only unselected
         * streams were there, or the pipe had nothing), buffer(userdata, 0)
         * gives it back; its return value is then ignored. */
        void *(*buffer)(void *userdata, size_t size);
        /* Optional: the most bytes of log the consumer takes in its next
         * chunk (a chunk it holds while its client is slow costs memory);
         * 0 or absent: ENGINE_CHUNK_MAX. */
        size_t (*chunk_max)(void *userdata);
} SubscriberOps;

int engine_subscribe(
                Engine *e,
                const JobId *id,
                unsigned streams,       /* mask of JobStream, non-zero */
                uint64_t offset,
                bool follow,
                const SubscriberOps *ops,
                void *userdata,
                SubscriberId *ret);

/* The consumer is ready for the next chunk. -ENOENT if gone. */
int engine_subscriber_ready(Engine *e, SubscriberId id);

/* Cancels a subscription; no callback is invoked afterwards. */
int engine_unsubscribe(Engine *e, SubscriberId id);
