/* SPDX-License-Identifier: MIT */

/*
 * The job engine: one thread, one io_uring, all job and subscriber state.
 *
 * The one idea: every event that changes job state is a completion on the
 * ring — a pidfd becoming readable (the job exited), a pipe becoming
 * readable, a timer (stop grace, retention), the eventfd through which other
 * threads post closures. Nothing polls on a clock; an idle engine sleeps in
 * io_uring_enter(). user_data of every request encodes (operation, slot,
 * generation), so a completion for an object that is gone, or whose slot was
 * reused, is recognised and dropped.
 *
 * Memory does not grow with output: pipe data is read into one engine-wide
 * buffer and appended to the job's output log file; subscribers are cursors
 * into that file and read from it (page cache) when they are ready.
 *
 * Pipes are watched with one-shot POLL_ADD and read with plain non-blocking
 * read(): no buffer is committed to a pipe that has nothing to say, so ten
 * thousand idle jobs cost no buffer memory (a posted IORING_OP_READ would pin
 * one buffer per pipe). Log appends are synchronous pwritev() into the page
 * cache: on 6.1 a buffered ext4 write submitted to the ring is punted to an
 * io-wq worker thread anyway, which would cost a thread hop and a buffer per
 * write in flight for the same copy.
 */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cgroup.h"
#include "core/engine.h"
#include "core/jobfile.h"
#include "core/outlog.h"
#include "core/spawn.h"
#include "shared/fs-util.h"
#include "shared/list.h"
#include "shared/macro.h"

#define ENGINE_BUFFER_SIZE (1024u * 1024u) /* pipe reads */
#define PIPE_SIZE_BIG (1024 * 1024)
#define DRAIN_BUDGET 16        /* reads per pipe per turn before yielding */
#define EXIT_DRAIN_BUDGET 256  /* reads after exit: what is left in the pipe */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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
        OP_IGNORE,      /* cancellations and the like */
};

static inline uint64_t ud_make(unsigned op, uint32_t slot, uint32_t gen) {
        return (uint64_t) op << 56 | (uint64_t) (slot & 0xffffffu) << 32 | gen;
}
static inline unsigned ud_op(uint64_t ud) {
        return (unsigned) (ud >> 56);
}
static inline uint32_t ud_slot(uint64_t ud) {
        return (uint32_t) (ud >> 32) & 0xffffffu;
}
static inline uint32_t ud_gen(uint64_t ud) {
        return (uint32_t) ud;
}

typedef struct Job Job;
typedef struct Subscriber Subscriber;

struct Job {
        JobStatus st;
        uint32_t slot, gen;
        Job *hash_next;
        ListNode by_start;      /* e->jobs, in start order */
        ListNode by_end;        /* e->finished, in end order */
        ListNode drain;         /* e->drains: pipes with data left to read */
        ListHead subs;

        int pidfd;
        int pipe_fd[2];         /* [0] stdout, [1] stderr read ends */
        bool poll_armed[2];
        bool pipe_big[2];
        bool pidfd_armed;

        int log_fd;             /* opened on first output or subscription; closed when
                                 * the job ended and nobody reads it */
        uint64_t log_size;      /* end of the last complete record */
        bool log_failed;        /* a write to the log failed: rest dropped */

        /* The job's cgroup (st.has_cgroup) is opened only while it is being
         * emptied, so a running job holds three fds: pidfd and two pipes. */
        int cg_fd;
        int cg_events_fd;       /* its cgroup.events, watched while emptying */
        bool cg_emptying;       /* main process gone, waiting for populated 0 */
        siginfo_t exit_info;    /* how the main process ended */

        uint64_t stop_deadline; /* CLOCK_MONOTONIC usec of the armed kill timer, 0 */
        struct __kernel_timespec stop_ts;
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

typedef struct Slot {
        void *ptr;
        uint32_t gen;
        uint32_t next_free;
} Slot;

typedef struct SlotTable {
        Slot *slots;
        uint32_t n, allocated;
        uint32_t free_head; /* index + 1, 0 = none */
} SlotTable;

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
} Posted;

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

        SpawnStack stack;
        uint8_t *buf;
        bool splice;            /* capture with splice() (EngineConfig.capture_splice) */
        bool async_unlink;      /* the ring has IORING_OP_UNLINKAT (5.11) */

        SlotTable job_slots, sub_slots, timer_slots;
        uint32_t timer_seq;     /* keeps arming numbers of reused slots apart */
        Job **hash;
        size_t n_buckets;

        ListHead jobs;          /* all, by start */
        ListHead finished;      /* finished, by end */
        ListHead drains;
        ListHead runnable;
        unsigned n_running;
        unsigned n_subscribers;

        bool retention_armed;
        struct __kernel_timespec retention_ts;

        char *default_user, *default_home;

        EngineObserver observer;
        void *observer_userdata;
};

/* Small helpers ------------------------------------------------------------ */

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int pidfd_signal(int pidfd, int sig) {
        return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}



/* Slot tables: index + generation handles for jobs and subscribers. */
static int slot_alloc(SlotTable *t, void *ptr, uint32_t *ret_slot, uint32_t *ret_gen) {
        uint32_t i;

        if (t->free_head) {
                i = t->free_head - 1;
                t->free_head = t->slots[i].next_free;
        } else {
                if (t->n >= 0xffffffu)
                        return -EMFILE;
                if (t->n == t->allocated) {
                        uint32_t na = t->allocated ? t->allocated * 2 : 64;
                        Slot *s = realloc(t->slots, na * sizeof(Slot));
                        if (!s)
                                return -ENOMEM;
                        t->slots = s;
                        t->allocated = na;
                }
                i = t->n++;
                t->slots[i] = (Slot) { .gen = 1 };
        }
        t->slots[i].ptr = ptr;
        *ret_slot = i;
        *ret_gen = t->slots[i].gen;
        return 0;
}

static void slot_free(SlotTable *t, uint32_t i) {
        t->slots[i].ptr = NULL;
        t->slots[i].gen++;
        t->slots[i].next_free = t->free_head;
        t->free_head = i + 1;
}

static void *slot_get(SlotTable *t, uint32_t i, uint32_t gen) {
        if (i >= t->n || t->slots[i].gen != gen)
                return NULL;
        return t->slots[i].ptr;
}

static struct io_uring_sqe *get_sqe(Engine *e) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
        if (!sqe) {
                /* SQ full: hand what we have to the kernel and retry. */
                io_uring_submit(&e->ring);
                sqe = io_uring_get_sqe(&e->ring);
        }
        return sqe;
}

/* The id -> job hash --------------------------------------------------------- */

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

static int hash_add(Engine *e, Job *j) {
        if (e->jobs.n + 1 > e->n_buckets) {
                int r = hash_grow(e);
                if (r < 0)
                        return r;
        }
        size_t k = id_hash(&j->st.id, e->n_buckets);
        j->hash_next = e->hash[k];
        e->hash[k] = j;
        return 0;
}

static void hash_remove(Engine *e, Job *j) {
        size_t k = id_hash(&j->st.id, e->n_buckets);
        for (Job **p = &e->hash[k]; *p; p = &(*p)->hash_next)
                if (*p == j) {
                        *p = j->hash_next;
                        return;
                }
}

static Job *job_find(Engine *e, const JobId *id) {
        if (!e->n_buckets)
                return NULL;
        for (Job *j = e->hash[id_hash(id, e->n_buckets)]; j; j = j->hash_next)
                if (job_id_equal(&j->st.id, id))
                        return j;
        return NULL;
}

/* Status files ------------------------------------------------------------- */

static void job_dir_name(const Job *j, char buf[static JOB_ID_STRING_MAX]) {
        job_id_to_string(&j->st.id, buf);
}

/* Written to status.tmp and renamed over status: a crash leaves the old or
 * the new file, never half of one. */
static int job_write_status(Engine *e, Job *j) {
        char dir[JOB_ID_STRING_MAX], tmp[JOB_ID_STRING_MAX + 16], final[JOB_ID_STRING_MAX + 16];
        char buf[JOBFILE_MAX];
        _cleanup_close_ int fd = -1;
        int n;

        n = jobfile_format(&j->st, j->log_size, buf, sizeof(buf));
        if (n < 0)
                return n;
        job_dir_name(j, dir);
        snprintf(tmp, sizeof(tmp), "%s/status.tmp", dir);
        snprintf(final, sizeof(final), "%s/status", dir);
        fd = openat(e->jobs_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (write(fd, buf, (size_t) n) != n)
                return errno > 0 ? -errno : -EIO;
        if (renameat(e->jobs_fd, tmp, e->jobs_fd, final) < 0)
                return -errno;
        return 0;
}

static int job_read_status(Engine *e, const char *dir, JobStatus *s, uint64_t *ret_log_size) {
        char path[JOB_ID_STRING_MAX + 16], buf[JOBFILE_MAX + 1], check[JOB_ID_STRING_MAX];
        _cleanup_close_ int fd = -1;
        ssize_t n;
        int r;

        snprintf(path, sizeof(path), "%s/status", dir);
        fd = openat(e->jobs_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        r = jobfile_parse(buf, s, ret_log_size);
        if (r < 0)
                return r;
        /* The file must describe the job whose directory it is in. */
        if (strcmp(job_id_to_string(&s->id, check), dir) != 0)
                return -EBADMSG;
        return 0;
}

/* Job objects ---------------------------------------------------------------- */

static Job *job_new(Engine *e) {
        Job *j = calloc(1, sizeof(Job));
        if (!j)
                return NULL;
        j->pidfd = j->log_fd = j->cg_fd = j->cg_events_fd = -1;
        j->pipe_fd[0] = j->pipe_fd[1] = -1;
        if (slot_alloc(&e->job_slots, j, &j->slot, &j->gen) < 0) {
                free(j);
                return NULL;
        }
        return j;
}

static void job_free(Engine *e, Job *j) {
        if (!j)
                return;
        assert(j->subs.n == 0);
        list_unlink(&e->jobs, &j->by_start);
        list_unlink(&e->finished, &j->by_end);
        list_unlink(&e->drains, &j->drain);
        hash_remove(e, j);
        safe_close(j->pidfd);
        safe_close(j->pipe_fd[0]);
        safe_close(j->pipe_fd[1]);
        safe_close(j->log_fd);
        safe_close(j->cg_fd);
        safe_close(j->cg_events_fd);
        slot_free(&e->job_slots, j->slot);
        free(j);
}

static void notify(Engine *e, EngineEvent ev, Job *j) {
        if (e->observer)
                e->observer(e, ev, &j->st, e->observer_userdata);
}

static int arm_poll_mask(Engine *e, int fd, unsigned mask, unsigned op, Job *j) {
        struct io_uring_sqe *sqe = get_sqe(e);
        if (!sqe)
                return -EBUSY;
        io_uring_prep_poll_add(sqe, fd, mask);
        io_uring_sqe_set_data64(sqe, ud_make(op, j->slot, j->gen));
        return 0;
}

static int arm_poll(Engine *e, int fd, unsigned op, Job *j) {
        struct io_uring_sqe *sqe = get_sqe(e);
        if (!sqe)
                return -EBUSY;
        io_uring_prep_poll_add(sqe, fd, POLLIN);
        io_uring_sqe_set_data64(sqe, ud_make(op, j->slot, j->gen));
        return 0;
}

static void cancel_op(Engine *e, unsigned op, Job *j) {
        struct io_uring_sqe *sqe = get_sqe(e);
        if (!sqe)
                return;
        io_uring_prep_cancel64(sqe, ud_make(op, j->slot, j->gen), 0);
        io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
}

static void sub_queue(Engine *e, Subscriber *s) {
        if (!s->runnable.linked)
                list_append(&e->runnable, &s->runnable);
}

/* Wake subscribers that are waiting for more data or for the end. */
static void job_wake_subscribers(Engine *e, Job *j) {
        for (ListNode *n = j->subs.first; n; n = n->next) {
                Subscriber *s = list_entry(n, Subscriber, in_job);
                if (s->ready)
                        sub_queue(e, s);
        }
}

static int job_open_log(Engine *e, Job *j) {
        char path[JOB_ID_STRING_MAX + 16], dir[JOB_ID_STRING_MAX];

        if (j->log_fd >= 0)
                return 0;
        job_dir_name(j, dir);
        snprintf(path, sizeof(path), "%s/output", dir);
        j->log_fd = openat(e->jobs_fd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        return j->log_fd < 0 ? -errno : 0;
}

static void cgroup_name(const Job *j, char buf[static JOB_ID_STRING_MAX + 8]);

/* A new fd of the job's cgroup directory (caller closes), or -1. */
static int job_open_cgroup(Engine *e, Job *j) {
        char name[JOB_ID_STRING_MAX + 8];

        if (!j->st.has_cgroup || e->cgroup_fd < 0)
                return -1;
        cgroup_name(j, name);
        return openat(e->cgroup_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Appends what a pipe gave us, honouring the output cap. */
static void job_capture(Engine *e, Job *j, JobStream stream, const uint8_t *data, size_t n) {
        uint64_t kept = j->st.stdout_bytes + j->st.stderr_bytes;
        size_t take = n;

        if (j->log_failed)
                take = 0;
        else if (kept + n > e->output_cap)
                take = kept >= e->output_cap ? 0 : (size_t) (e->output_cap - kept);

        if (take > 0) {
                int r = job_open_log(e, j);
                if (r >= 0)
                        r = outlog_append(j->log_fd, &j->log_size, stream, data, take);
                if (r < 0) {
                        /* Disk full or similar: keep the job running, drop the
                         * rest, and say so in the status. */
                        j->log_failed = true;
                        take = 0;
                } else if (stream == JOB_STREAM_STDOUT)
                        j->st.stdout_bytes += take;
                else
                        j->st.stderr_bytes += take;
        }
        if (take < n) {
                j->st.truncated = true;
                j->st.dropped_bytes += n - take;
        }
        if (take > 0)
                job_wake_subscribers(e, j);
}

/* Pipe -> log with splice(): one copy (pipe pages into the page cache)
 * instead of two through e->buf. Returns bytes moved, 0 at EOF, -errno. */
static ssize_t job_capture_splice(Engine *e, Job *j, int i) {
        JobStream stream = i == 0 ? JOB_STREAM_STDOUT : JOB_STREAM_STDERR;
        uint64_t kept = j->st.stdout_bytes + j->st.stderr_bytes;
        size_t want = (size_t) MIN((uint64_t) ENGINE_BUFFER_SIZE, e->output_cap - kept);
        int r = job_open_log(e, j);
        if (r < 0)
                return r;
        ssize_t n = outlog_append_splice(j->log_fd, &j->log_size, stream, j->pipe_fd[i], want);

        if (n > 0) {
                if (stream == JOB_STREAM_STDOUT)
                        j->st.stdout_bytes += (uint64_t) n;
                else
                        j->st.stderr_bytes += (uint64_t) n;
                job_wake_subscribers(e, j);
        }
        return n;
}

static void job_close_pipe(Engine *e, Job *j, int i) {
        if (j->pipe_fd[i] < 0)
                return;
        if (j->poll_armed[i]) {
                cancel_op(e, i == 0 ? OP_PIPE_OUT : OP_PIPE_ERR, j);
                j->poll_armed[i] = false;
        }
        j->pipe_fd[i] = safe_close(j->pipe_fd[i]);
}

enum { DRAIN_AGAIN, DRAIN_MORE, DRAIN_EOF };

/* A read that emptied a full default-sized pipe means a fast writer: give
 * it a bigger pipe (once; the kernel may refuse when the user is over
 * pipe-user-pages-soft, that is fine). */
static void job_grow_pipe(Job *j, int i, size_t got) {
        if (!j->pipe_big[i] && got >= 65536) {
                j->pipe_big[i] = true;
                (void) fcntl(j->pipe_fd[i], F_SETPIPE_SZ, PIPE_SIZE_BIG);
        }
}

static int job_drain_pipe(Engine *e, Job *j, int i, unsigned budget) {
        JobStream stream = i == 0 ? JOB_STREAM_STDOUT : JOB_STREAM_STDERR;

        while (budget-- > 0) {
                ssize_t n;

                if (e->splice && !j->log_failed && j->st.stdout_bytes + j->st.stderr_bytes < e->output_cap) {
                        n = job_capture_splice(e, j, i);
                        if (n == -EINVAL) {
                                e->splice = false; /* the file system cannot: read() for good */
                                continue;
                        }
                        if (n < 0 && n != -EAGAIN && n != -EINTR) {
                                j->log_failed = true; /* disk full...: the read path drops */
                                continue;
                        }
                        if (n < 0) {
                                if (n == -EINTR)
                                        continue;
                                return DRAIN_AGAIN;
                        }
                        if (n == 0) {
                                job_close_pipe(e, j, i);
                                return DRAIN_EOF;
                        }
                        job_grow_pipe(j, i, (size_t) n);
                        continue;
                }

                n = read(j->pipe_fd[i], e->buf, ENGINE_BUFFER_SIZE);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return DRAIN_AGAIN;
                        n = 0; /* treat as EOF */
                }
                if (n == 0) {
                        job_close_pipe(e, j, i);
                        return DRAIN_EOF;
                }
                job_grow_pipe(j, i, (size_t) n);
                job_capture(e, j, stream, e->buf, (size_t) n);
        }
        return DRAIN_MORE;
}

static void job_pipe_service(Engine *e, Job *j, int i, unsigned budget) {
        if (j->pipe_fd[i] < 0 || j->poll_armed[i])
                return;
        switch (job_drain_pipe(e, j, i, budget)) {
        case DRAIN_AGAIN:
                if (arm_poll(e, j->pipe_fd[i], i == 0 ? OP_PIPE_OUT : OP_PIPE_ERR, j) >= 0)
                        j->poll_armed[i] = true;
                break;
        case DRAIN_MORE:
                if (!j->drain.linked)
                        list_append(&e->drains, &j->drain);
                break;
        case DRAIN_EOF:
                break;
        }
}

static void job_kill_all(Engine *e, Job *j) {
        /* cgroup.kill reaches every process of the job, including ones that
         * left the process group; without a cgroup the process group is
         * what we can reach. */
        if (j->cg_fd >= 0)
                (void) cgroup_kill(j->cg_fd);
        else if (j->st.has_cgroup) {
                int fd = job_open_cgroup(e, j);
                if (fd >= 0) {
                        (void) cgroup_kill(fd);
                        safe_close(fd);
                }
        }
        if (j->st.pid > 0)
                (void) kill(-j->st.pid, SIGKILL);
        if (j->pidfd >= 0)
                (void) pidfd_signal(j->pidfd, SIGKILL);
}

static void retention_run(Engine *e);

static void job_complete(Engine *e, Job *j);

static void cgroup_name(const Job *j, char buf[static JOB_ID_STRING_MAX + 8]) {
        char id[JOB_ID_STRING_MAX];
        snprintf(buf, JOB_ID_STRING_MAX + 8, "job-%s", job_id_to_string(&j->st.id, id));
}

/* The job's cgroup is empty (or we give up waiting): final numbers, remove it. */
static void job_cgroup_done(Engine *e, Job *j) {
        char name[JOB_ID_STRING_MAX + 8];

        cgroup_read_stats(j->cg_fd, &j->st);
        j->st.oom_killed = j->st.state == JOB_STATE_KILLED && j->st.signal == SIGKILL && j->st.oom_kills > 0 &&
                           !j->st.stop_requested;
        j->cg_fd = safe_close(j->cg_fd);
        j->cg_events_fd = safe_close(j->cg_events_fd);
        j->cg_emptying = false;
        cgroup_name(j, name);
        (void) unlinkat(e->cgroup_fd, name, AT_REMOVEDIR);
}

static void on_cgroup_event(Engine *e, Job *j, int res) {
        if (!j->cg_emptying)
                return;
        int r = cgroup_events_populated(j->cg_events_fd);
        if (r > 0 && res >= 0) {
                /* Still someone in there (a fork raced with cgroup.kill). */
                (void) cgroup_kill(j->cg_fd);
                if (arm_poll_mask(e, j->cg_events_fd, POLLPRI, OP_CGROUP, j) >= 0)
                        return;
        }
        job_cgroup_done(e, j);
        job_complete(e, j);
}

/* The process is gone: collect what is left in the pipes, record the end. */
static void job_finish(Engine *e, Job *j, const siginfo_t *si) {
        j->exit_info = *si;
        if (si->si_code == CLD_EXITED) {
                j->st.state = JOB_STATE_EXITED;
                j->st.exit_code = si->si_status;
        } else {
                j->st.state = JOB_STATE_KILLED;
                j->st.signal = si->si_status;
        }
        j->st.end_usec = now_usec(CLOCK_REALTIME);

        /* Everything the process wrote before it exited is in the pipes now. */
        for (int i = 0; i < 2; i++)
                if (j->pipe_fd[i] >= 0)
                        (void) job_drain_pipe(e, j, i, EXIT_DRAIN_BUDGET);

        /* A stopped job leaves nothing behind in its group; with a cgroup
         * no job leaves anything behind: what the main process left
         * running is killed when it exits (documented). */
        if (j->st.has_cgroup && j->cg_fd < 0) {
                j->cg_fd = job_open_cgroup(e, j);
                if (j->cg_fd >= 0)
                        j->cg_events_fd = openat(j->cg_fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
                if (j->cg_events_fd < 0)
                        j->cg_fd = safe_close(j->cg_fd); /* gone already: nothing to empty */
        }
        if (j->st.stop_requested || j->cg_fd >= 0)
                job_kill_all(e, j);

        /* Leftover processes that still hold the pipes (a daemonised
         * grandchild) do not keep the job alive: output after the main
         * process exited is not captured (documented). */
        job_close_pipe(e, j, 0);
        job_close_pipe(e, j, 1);
        list_unlink(&e->drains, &j->drain);
        j->pidfd = safe_close(j->pidfd);

        if (j->cg_fd >= 0) {
                /* Finish once cgroup.events says populated 0, so the numbers
                 * are final and the directory can go. */
                j->cg_emptying = true;
                if (cgroup_events_populated(j->cg_events_fd) > 0 &&
                    arm_poll_mask(e, j->cg_events_fd, POLLPRI, OP_CGROUP, j) >= 0)
                        return;
                job_cgroup_done(e, j);
        }
        job_complete(e, j);
}

static void job_complete(Engine *e, Job *j) {
        if (j->subs.n == 0)
                j->log_fd = safe_close(j->log_fd);

        e->n_running--;
        list_append(&e->finished, &j->by_end);
        (void) job_write_status(e, j);
        notify(e, ENGINE_EVENT_EXITED, j);

        /* Followers that were waiting now get the rest and the end. */
        for (ListNode *n = j->subs.first; n; n = n->next)
                sub_queue(e, list_entry(n, Subscriber, in_job));

        retention_run(e);
}

static void on_pidfd(Engine *e, Job *j, int res) {
        siginfo_t si = {};

        j->pidfd_armed = false;
        if (j->st.state != JOB_STATE_RUNNING || j->pidfd < 0)
                return;
        if (waitid(P_PIDFD, (id_t) j->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0) {
                if (errno == ECHILD) {
                        /* Someone else reaped it; we cannot know how it ended. */
                        si.si_code = CLD_KILLED;
                        si.si_status = 0;
                        job_finish(e, j, &si);
                        return;
                }
                if (arm_poll(e, j->pidfd, OP_PIDFD, j) >= 0)
                        j->pidfd_armed = true;
                return;
        }
        job_finish(e, j, &si);
}

/* Retention ------------------------------------------------------------------ */

/* Removes a job's directory and what may be in it. */
static void remove_job_dir(Engine *e, const char *dir) {
        static const char *const files[] = { "output", "status", "status.tmp" };
        char path[JOB_ID_STRING_MAX + 16];

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                (void) unlinkat(e->jobs_fd, path, 0);
        }
        (void) unlinkat(e->jobs_fd, dir, AT_REMOVEDIR);
}

/* remove_job_dir() without blocking the engine: the unlinks run in the
 * ring's kernel workers (IORING_OP_UNLINKAT never completes inline), hard-
 * linked so the directory goes last whatever its files' fate. Unlinking a
 * multi-GiB log frees its page cache synchronously: measured, a retention
 * removal of a 2 GiB log in the middle of a followed stream cut that stream
 * from 1.21-1.36 to 0.96-1.17 GB/s. The kernel copies the paths when the
 * requests are submitted, so they are submitted here, before the strings go.
 * Falls back to remove_job_dir() where the ring cannot. */
static void remove_job_dir_async(Engine *e, const char *dir) {
        static const char *const files[] = { "output", "status", "status.tmp" };
        char paths[ELEMENTSOF(files)][JOB_ID_STRING_MAX + 16];
        struct io_uring_sqe *sqe;

        if (!e->async_unlink || io_uring_sq_space_left(&e->ring) < ELEMENTSOF(files) + 1) {
                remove_job_dir(e, dir);
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(paths[i], sizeof(paths[i]), "%s/%s", dir, files[i]);
                sqe = io_uring_get_sqe(&e->ring);
                io_uring_prep_unlinkat(sqe, e->jobs_fd, paths[i], 0);
                io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
                sqe->flags |= IOSQE_IO_HARDLINK;
        }
        sqe = io_uring_get_sqe(&e->ring);
        io_uring_prep_unlinkat(sqe, e->jobs_fd, dir, AT_REMOVEDIR);
        io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
        if (io_uring_submit(&e->ring) < 0) /* then nothing went in: do it here */
                remove_job_dir(e, dir);
}

static void job_remove(Engine *e, Job *j) {
        char dir[JOB_ID_STRING_MAX];

        notify(e, ENGINE_EVENT_REMOVED, j);
        job_dir_name(j, dir);
        remove_job_dir_async(e, dir);
        job_free(e, j);
}

/*
 * Finished jobs are kept until there are more than retain_max_jobs of them
 * or they ended more than retain_max_age ago; then the oldest-ended go first.
 * A job somebody is reading is kept until the reader is done.
 */
static void retention_run(Engine *e) {
        uint64_t now = now_usec(CLOCK_REALTIME);
        size_t excess = e->finished.n > e->retain_max_jobs ? e->finished.n - e->retain_max_jobs : 0;

        for (ListNode *n = e->finished.first, *next; n; n = next) {
                Job *j = list_entry(n, Job, by_end);
                next = n->next;
                bool old = j->st.end_usec + e->retain_max_age_usec <= now;
                if (!old && excess == 0)
                        break;
                if (j->subs.n > 0)
                        continue;
                job_remove(e, j);
                if (excess > 0)
                        excess--;
        }

        /* One timer for the next job to age out. */
        if (!e->retention_armed && e->finished.first) {
                Job *j = list_entry(e->finished.first, Job, by_end);
                uint64_t due = j->st.end_usec + e->retain_max_age_usec;
                uint64_t wait = due > now ? due - now : 0;
                struct io_uring_sqe *sqe;

                /* At least a second apart: a reader holding an old job must
                 * not turn this into a busy loop. */
                if (wait < 1000000)
                        wait = 1000000;
                e->retention_ts.tv_sec = (long long) (wait / 1000000);
                e->retention_ts.tv_nsec = (long long) (wait % 1000000) * 1000;
                sqe = get_sqe(e);
                if (sqe) {
                        io_uring_prep_timeout(sqe, &e->retention_ts, 0, 0);
                        io_uring_sqe_set_data64(sqe, ud_make(OP_RETENTION, 0, 0));
                        io_uring_submit(&e->ring); /* the timespec is read now */
                        e->retention_armed = true;
                }
        }
}

/* Subscribers ---------------------------------------------------------------- */

static Subscriber *sub_get(Engine *e, SubscriberId id) {
        if (id.value == 0)
                return NULL;
        return slot_get(&e->sub_slots, (uint32_t) (id.value & 0xffffffffu) - 1, (uint32_t) (id.value >> 32));
}

static void sub_free(Engine *e, Subscriber *s) {
        Job *j = s->job;

        list_unlink(&e->runnable, &s->runnable);
        list_unlink(&j->subs, &s->in_job);
        slot_free(&e->sub_slots, s->slot);
        e->n_subscribers--;
        free(s);
        if (j->subs.n == 0 && j->st.state != JOB_STATE_RUNNING)
                j->log_fd = safe_close(j->log_fd);
        notify(e, ENGINE_EVENT_SUBSCRIBERS, j);
}

/* Delivers one chunk, or the end, to a ready subscriber. */
static void sub_run(Engine *e, Subscriber *s) {
        Job *j = s->job;
        JobStream stream = JOB_STREAM_STDOUT;
        ssize_t n = 0;

        if (!s->ready)
                return;

        if (j->log_fd >= 0 && s->cur.view < s->skip_to)
                (void) outlog_seek(j->log_fd, j->log_size, &s->cur, s->streams, s->skip_to);
        if (j->log_fd >= 0 && s->cur.view >= s->skip_to && s->cur.pos < j->log_size) {
                /* The file bytes left bound the data bytes left: a small
                 * chunk gets a small buffer. */
                size_t want = (size_t) MIN((uint64_t) ENGINE_CHUNK_MAX, j->log_size - s->cur.pos);
                uint8_t *buf = s->ops.buffer ? s->ops.buffer(s->userdata, want) : NULL;

                n = outlog_read(j->log_fd, j->log_size, &s->cur, s->streams, buf ?: e->buf, buf ? want : ENGINE_CHUNK_MAX,
                                &stream);
                if (n > 0) {
                        s->ready = false;
                        s->ops.chunk(s->userdata, stream, s->cur.view - (uint64_t) n, buf ?: e->buf, (size_t) n);
                        return; /* s may be gone now */
                }
                if (buf)
                        (void) s->ops.buffer(s->userdata, 0);
        }

        /* At the end of what exists (or the log cannot be read). */
        if (n == 0 && s->follow && j->st.state == JOB_STATE_RUNNING)
                return; /* job_capture()/job_finish() queue us again */

        JobStatus st = j->st;
        SubscriberOps ops = s->ops;
        void *ud = s->userdata;
        sub_free(e, s);
        if (ops.end)
                ops.end(ud, &st);
        retention_run(e);
}

/* Posted closures -------------------------------------------------------------- */

static int arm_wake(Engine *e) {
        struct io_uring_sqe *sqe = get_sqe(e);
        if (!sqe)
                return -EBUSY;
        io_uring_prep_read(sqe, e->wake_fd, &e->wake_value, sizeof(e->wake_value), 0);
        io_uring_sqe_set_data64(sqe, ud_make(OP_WAKE, 0, 0));
        return 0;
}

static void run_posted(Engine *e) {
        Posted *p;

        pthread_mutex_lock(&e->post_lock);
        p = e->post_head;
        e->post_head = e->post_tail = NULL;
        pthread_mutex_unlock(&e->post_lock);

        while (p) {
                Posted *next = p->next;
                p->fn(e, p->userdata);
                free(p);
                p = next;
        }
}

int engine_post(Engine *e, EngineClosure fn, void *userdata) {
        Posted *p = malloc(sizeof(Posted));
        uint64_t one = 1;

        if (!p)
                return -ENOMEM;
        *p = (Posted) { .fn = fn, .userdata = userdata };
        pthread_mutex_lock(&e->post_lock);
        if (e->post_tail)
                e->post_tail->next = p;
        else
                e->post_head = p;
        e->post_tail = p;
        pthread_mutex_unlock(&e->post_lock);
        (void) !write(e->wake_fd, &one, sizeof(one));
        return 0;
}

void engine_wake_stop(Engine *e) {
        uint64_t one = 1;
        atomic_store(&e->stop, true);
        (void) !write(e->wake_fd, &one, sizeof(one));
}

/* The loop ------------------------------------------------------------------- */

static void dispatch(Engine *e, struct io_uring_cqe *cqe) {
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        unsigned op = ud_op(ud);
        Job *j;

        switch (op) {
        case OP_WAKE:
                if (arm_wake(e) < 0)
                        abort(); /* cannot happen: we just consumed a CQE slot */
                run_posted(e);
                return;
        case OP_RETENTION:
                e->retention_armed = false;
                retention_run(e);
                return;
        case OP_TIMER: {
                EngineTimer *t = ud_slot(ud) < e->timer_slots.n ? e->timer_slots.slots[ud_slot(ud)].ptr : NULL;
                if (!t || t->armed_gen != ud_gen(ud) || cqe->res != -ETIME)
                        return; /* re-armed, disarmed or freed since */
                t->armed_gen++;
                t->fn(e, t->userdata);
                return;
        }
        case OP_IGNORE:
        case OP_NONE:
                return;
        }

        j = slot_get(&e->job_slots, ud_slot(ud), ud_gen(ud));
        if (!j)
                return; /* stale: the job is gone */

        switch (op) {
        case OP_PIDFD:
                on_pidfd(e, j, cqe->res);
                break;
        case OP_PIPE_OUT:
        case OP_PIPE_ERR: {
                int i = op == OP_PIPE_OUT ? 0 : 1;
                if (cqe->res == -ECANCELED)
                        break;
                j->poll_armed[i] = false;
                job_pipe_service(e, j, i, DRAIN_BUDGET);
                break;
        }
        case OP_CGROUP:
                on_cgroup_event(e, j, cqe->res);
                break;
        case OP_STOP_TIMER:
                if (cqe->res == -ETIME && j->st.state == JOB_STATE_RUNNING &&
                    j->stop_deadline && now_usec(CLOCK_MONOTONIC) + 1000 >= j->stop_deadline)
                        job_kill_all(e, j);
                break;
        }
}

int engine_run_once(Engine *e, uint64_t timeout_usec) {
        struct io_uring_cqe *cqe;
        unsigned head, count = 0;
        int r;

        /* Work that is ready without waiting: subscribers that may send, and
         * pipes that still had data after their read budget. */
        for (size_t k = e->runnable.n; k > 0 && e->runnable.first; k--) {
                Subscriber *s = list_entry(e->runnable.first, Subscriber, runnable);
                list_unlink(&e->runnable, &s->runnable);
                sub_run(e, s);
        }
        for (size_t k = e->drains.n; k > 0 && e->drains.first; k--) {
                Job *j = list_entry(e->drains.first, Job, drain);
                list_unlink(&e->drains, &j->drain);
                job_pipe_service(e, j, 0, DRAIN_BUDGET);
                job_pipe_service(e, j, 1, DRAIN_BUDGET);
        }

        if (e->runnable.n > 0 || e->drains.n > 0 || timeout_usec == 0)
                r = io_uring_submit(&e->ring);
        else if (timeout_usec == UINT64_MAX)
                r = io_uring_submit_and_wait(&e->ring, 1);
        else {
                struct __kernel_timespec ts = {
                        .tv_sec = (long long) (timeout_usec / 1000000),
                        .tv_nsec = (long long) (timeout_usec % 1000000) * 1000,
                };
                r = io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
                if (r == -ETIME)
                        r = 0;
        }
        if (r < 0 && r != -EINTR && r != -EBUSY)
                return r;

        io_uring_for_each_cqe(&e->ring, head, cqe) {
                dispatch(e, cqe);
                count++;
        }
        io_uring_cq_advance(&e->ring, count);
        return 0;
}

int engine_run(Engine *e) {
        while (!atomic_load(&e->stop)) {
                int r = engine_run_once(e, UINT64_MAX);
                if (r < 0)
                        return r;
        }
        atomic_store(&e->stop, false);
        return 0;
}

/* Starting jobs ---------------------------------------------------------------- */

static int validate_spec(const JobSpec *spec, JobStartError *err) {
        size_t total = 0, n = 0;

#define FAIL(code, ...)                                                        \
        do {                                                                   \
                snprintf(err->message, sizeof(err->message), __VA_ARGS__);    \
                err->error = code;                                             \
                return -(code);                                                \
        } while (0)

        if (!spec->argv || !spec->argv[0])
                FAIL(EINVAL, "the command is empty (argv has no program)");
        if (!spec->argv[0][0])
                FAIL(EINVAL, "the program name (argv[0]) is empty");
        for (; spec->argv[n]; n++) {
                size_t l = strlen(spec->argv[n]);
                if (n >= JOB_ARGV_MAX)
                        FAIL(E2BIG, "too many arguments (limit %u)", JOB_ARGV_MAX);
                if (l > JOB_STRING_MAX)
                        FAIL(E2BIG, "argument %zu is %zu bytes long (limit %u)", n, l, JOB_STRING_MAX);
                total += l + 1;
        }
        n = 0;
        for (const char *const *v = spec->env; v && *v; v++, n++) {
                size_t l = strlen(*v);
                const char *eq = strchr(*v, '=');
                if (n >= JOB_ENV_MAX)
                        FAIL(E2BIG, "too many environment entries (limit %u)", JOB_ENV_MAX);
                if (l > JOB_STRING_MAX)
                        FAIL(E2BIG, "environment entry %zu is %zu bytes long (limit %u)", n, l, JOB_STRING_MAX);
                if (!eq || eq == *v)
                        FAIL(EINVAL, "environment entry %zu is not of the form KEY=VALUE", n);
                total += l + 1;
        }
        if (spec->cwd) {
                size_t l = strlen(spec->cwd);
                if (l > JOB_STRING_MAX)
                        FAIL(E2BIG, "working directory is %zu bytes long (limit %u)", l, JOB_STRING_MAX);
                if (spec->cwd[0] != '/')
                        FAIL(EINVAL, "working directory '%.300s' is not an absolute path", spec->cwd);
                total += l + 1;
        }
        if (total > JOB_ARGS_TOTAL_MAX)
                FAIL(E2BIG, "arguments and environment are %zu bytes together (limit %u)", total, JOB_ARGS_TOTAL_MAX);
        if (spec->owner && strlen(spec->owner) > JOB_OWNER_MAX)
                FAIL(EINVAL, "owner name is longer than %u bytes", JOB_OWNER_MAX);
#undef FAIL
        return 0;
}

static bool env_has_key(const char *const *env, const char *key) {
        size_t kl = strlen(key);
        for (; env && *env; env++)
                if (strncmp(*env, key, kl) == 0 && (*env)[kl] == '=')
                        return true;
        return false;
}

static const char *env_get(const char *const *env, const char *key) {
        size_t kl = strlen(key);
        const char *found = NULL;
        for (; env && *env; env++)
                if (strncmp(*env, key, kl) == 0 && (*env)[kl] == '=')
                        found = *env + kl + 1; /* the last one wins */
        return found;
}

/* The environment a job sees: a clean base plus what the caller asked for;
 * never the daemon's own. One allocation; free() it. */
static char **build_env(const char *user, const char *home, const char *const *extra) {
        char *base[5];
        size_t n_extra = 0, bytes = 0, k = 0;
        char **v;

        if (asprintf(&base[0], "PATH=%s", DEFAULT_PATH) < 0)
                return NULL;
        if (asprintf(&base[1], "HOME=%s", home) < 0)
                return free(base[0]), NULL;
        if (asprintf(&base[2], "USER=%s", user) < 0)
                return free(base[0]), free(base[1]), NULL;
        if (asprintf(&base[3], "LOGNAME=%s", user) < 0)
                return free(base[0]), free(base[1]), free(base[2]), NULL;
        base[4] = strdup("LANG=C.UTF-8");

        for (size_t i = 0; i < 5; i++)
                bytes += base[i] ? strlen(base[i]) + 1 : 0;
        for (const char *const *p = extra; p && *p; p++, n_extra++)
                bytes += strlen(*p) + 1;

        v = malloc((5 + n_extra + 1) * sizeof(char *) + bytes);
        if (v) {
                char *s = (char *) (v + 5 + n_extra + 1);
                for (size_t i = 0; i < 5; i++) {
                        if (!base[i])
                                continue;
                        size_t kl = strcspn(base[i], "=");
                        char key[16];
                        snprintf(key, sizeof(key), "%.*s", (int) kl, base[i]);
                        if (env_has_key(extra, key))
                                continue;
                        v[k++] = s;
                        s = stpcpy(s, base[i]) + 1;
                }
                for (const char *const *p = extra; p && *p; p++) {
                        v[k++] = s;
                        s = stpcpy(s, *p) + 1;
                }
                v[k] = NULL;
        }
        for (size_t i = 0; i < 5; i++)
                free(base[i]);
        return v;
}

static void command_summary(const char *const *argv, char out[static JOB_COMMAND_MAX + 1]) {
        size_t n = 0;
        out[0] = 0;
        for (size_t i = 0; argv[i] && n < JOB_COMMAND_MAX; i++) {
                if (i > 0)
                        out[n++] = ' ';
                for (const char *p = argv[i]; *p && n < JOB_COMMAND_MAX; p++)
                        out[n++] = *p;
        }
        out[MIN(n, (size_t) JOB_COMMAND_MAX)] = 0;
}

static int fd_above_2(int fd) {
        if (fd > 2)
                return fd;
        int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        safe_close(fd);
        return n;
}

int engine_start_job(Engine *e, const JobSpec *spec, JobId *ret_id, JobStartError *ret_error) {
        JobStartError err_local, *err = ret_error ? ret_error : &err_local;
        _cleanup_free_ char **envp = NULL, **candidates = NULL;
        _cleanup_close_ int out_r = -1, out_w = -1, err_r = -1, err_w = -1, log_fd = -1, pidfd = -1;
        _cleanup_close_ int cg_fd = -1;
        char cg_name[JOB_ID_STRING_MAX + 8] = "";
        char dir[JOB_ID_STRING_MAX], path[JOB_ID_STRING_MAX + 16];
        const char *user, *home, *cwd;
        JobStartStage stage;
        struct stat st;
        JobId id;
        pid_t pid;
        int r, p[2];
        Job *j;

        *err = (JobStartError) {};
        r = validate_spec(spec, err);
        if (r < 0)
                return r;
        bool want_limits = spec->limits && (spec->limits->cpu_millis || spec->limits->memory_max ||
                                            spec->limits->pids_max || spec->limits->n_io);
        if (spec->isolate & ~(unsigned) JOB_ISOLATE_ALL) {
                err->stage = JOB_START_STAGE_ISOLATION;
                err->error = EINVAL;
                snprintf(err->message, sizeof(err->message), "unknown isolation flags 0x%x", spec->isolate);
                return -EINVAL;
        }
        if (want_limits && e->cgroup_fd < 0) {
                err->stage = JOB_START_STAGE_LIMITS;
                err->error = EOPNOTSUPP;
                snprintf(err->message, sizeof(err->message),
                         "resource limits need cgroup v2, and no cgroup is set up for jobs on this host");
                return -EOPNOTSUPP;
        }

        user = spec->creds ? spec->creds->user : e->default_user;
        home = spec->creds ? spec->creds->home : e->default_home;
        if (!user)
                user = "nobody";
        if (!home)
                home = "/";
        cwd = spec->cwd;
        if (!cwd)
                cwd = stat(home, &st) >= 0 && S_ISDIR(st.st_mode) ? home : "/";

        envp = build_env(user, home, spec->env);
        if (!envp)
                return -ENOMEM;
        const char *path_env = env_get((const char *const *) envp, "PATH");
        candidates = spawn_exec_candidates(spec->argv[0], path_env ? path_env : DEFAULT_PATH);
        if (!candidates)
                return -ENOMEM;

        r = job_id_generate(&id);
        if (r < 0)
                return r;
        job_id_to_string(&id, dir);
        if (mkdirat(e->jobs_fd, dir, 0700) < 0)
                return -errno;
        snprintf(path, sizeof(path), "%s/output", dir);
        r = outlog_create(e->jobs_fd, path, &log_fd);
        if (r < 0)
                goto fail_dir;

        if (pipe2(p, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail_dir;
        }
        out_r = fd_above_2(p[0]);
        out_w = fd_above_2(p[1]);
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail_dir;
        }
        err_r = fd_above_2(p[0]);
        err_w = fd_above_2(p[1]);
        if (out_r < 0 || out_w < 0 || err_r < 0 || err_w < 0) {
                r = -EMFILE;
                goto fail_dir;
        }
        if (fcntl(out_r, F_SETFL, O_NONBLOCK) < 0 || fcntl(err_r, F_SETFL, O_NONBLOCK) < 0) {
                r = -errno;
                goto fail_dir;
        }

        if (e->cgroup_fd >= 0) {
                snprintf(cg_name, sizeof(cg_name), "job-%s", dir);
                if (mkdirat(e->cgroup_fd, cg_name, 0755) < 0) {
                        r = -errno;
                        cg_name[0] = 0;
                        snprintf(err->message, sizeof(err->message), "cannot create the job's cgroup: %s", strerror(-r));
                        err->stage = JOB_START_STAGE_LIMITS;
                        err->error = -r;
                        goto fail_dir;
                }
                cg_fd = openat(e->cgroup_fd, cg_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (cg_fd < 0) {
                        r = -errno;
                        goto fail_dir;
                }
                if (want_limits) {
                        /* Read again: an operator may have changed what is
                         * delegated since we started (one small read). */
                        (void) cgroup_child_controllers(e->cgroup_fd, &e->cg_controllers);
                        r = cgroup_apply_limits(cg_fd, e->cg_controllers, spec->limits, err->message, sizeof(err->message));
                        if (r < 0) {
                                err->stage = JOB_START_STAGE_LIMITS;
                                err->error = -r;
                                goto fail_dir;
                        }
                }
        }

        SpawnRequest req = {
                .argv = spec->argv,
                .envp = (const char *const *) envp,
                .exec_paths = (const char *const *) candidates,
                .cwd = cwd,
                .creds = spec->creds,
                .stdin_fd = e->devnull_fd,
                .stdout_fd = out_w,
                .stderr_fd = err_w,
                .cgroup_fd = cg_fd,
                .isolate = spec->isolate,
        };
        uint64_t start = now_usec(CLOCK_REALTIME);
        r = spawn_process(&req, &e->stack, &pid, &pidfd, &stage);
        if (r < 0) {
                err->stage = stage;
                err->error = -r;
                switch (stage) {
                case JOB_START_STAGE_EXEC:
                        snprintf(err->message, sizeof(err->message), "cannot execute '%s': %s%s", spec->argv[0],
                                 strerror(-r), strchr(spec->argv[0], '/') ? "" : " (searched PATH)");
                        break;
                case JOB_START_STAGE_CHDIR:
                        snprintf(err->message, sizeof(err->message), "cannot change to working directory '%s': %s",
                                 cwd, strerror(-r));
                        break;
                case JOB_START_STAGE_CREDENTIALS:
                        snprintf(err->message, sizeof(err->message), "cannot switch to user '%s': %s", user, strerror(-r));
                        break;
                case JOB_START_STAGE_ISOLATION:
                        snprintf(err->message, sizeof(err->message), "isolation (%s%s%s%s%s) refused by this host: %s",
                                 spec->isolate & JOB_ISOLATE_PID ? "pid" : "",
                                 (spec->isolate & JOB_ISOLATE_PID) && (spec->isolate & ~JOB_ISOLATE_PID) ? "," : "",
                                 spec->isolate & JOB_ISOLATE_NET ? "net" : "",
                                 (spec->isolate & JOB_ISOLATE_NET) && (spec->isolate & JOB_ISOLATE_TMP) ? "," : "",
                                 spec->isolate & JOB_ISOLATE_TMP ? "tmp" : "", strerror(-r));
                        break;
                default:
                        snprintf(err->message, sizeof(err->message), "cannot create the process: %s", strerror(-r));
                        break;
                }
                goto fail_dir;
        }
        /* The child has its copies; ours would keep the pipes open forever. */
        out_w = safe_close(out_w);
        err_w = safe_close(err_w);

        j = job_new(e);
        if (!j) {
                /* Out of memory after the process exists: do not leave it. */
                (void) pidfd_signal(pidfd, SIGKILL);
                (void) kill(-pid, SIGKILL);
                siginfo_t si;
                (void) waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED);
                r = -ENOMEM;
                goto fail_dir;
        }
        j->st.id = id;
        j->st.state = JOB_STATE_RUNNING;
        j->st.pid = pid;
        j->st.start_usec = start;
        snprintf(j->st.owner, sizeof(j->st.owner), "%s", spec->owner ? spec->owner : "");
        command_summary(spec->argv, j->st.command);
        j->pidfd = TAKE_FD(pidfd);
        j->pipe_fd[0] = TAKE_FD(out_r);
        j->pipe_fd[1] = TAKE_FD(err_r);
        /* The log and the cgroup stay closed until needed (fds per job). */
        j->log_size = OUTLOG_HEADER_SIZE;
        j->st.has_cgroup = cg_fd >= 0;
        if (hash_add(e, j) < 0) {
                /* Cannot be found by id: kill it rather than run it blind. */
                job_kill_all(e, j);
                siginfo_t si;
                (void) waitid(P_PIDFD, (id_t) j->pidfd, &si, WEXITED);
                slot_free(&e->job_slots, j->slot);
                safe_close(j->pidfd);
                safe_close(j->pipe_fd[0]);
                safe_close(j->pipe_fd[1]);
                free(j);
                r = -ENOMEM;
                goto fail_dir;
        }
        list_append(&e->jobs, &j->by_start);
        e->n_running++;

        (void) job_write_status(e, j);
        if (arm_poll(e, j->pidfd, OP_PIDFD, j) >= 0)
                j->pidfd_armed = true;
        for (int i = 0; i < 2; i++)
                if (arm_poll(e, j->pipe_fd[i], i == 0 ? OP_PIPE_OUT : OP_PIPE_ERR, j) >= 0)
                        j->poll_armed[i] = true;

        notify(e, ENGINE_EVENT_STARTED, j);
        *ret_id = id;
        return 0;

fail_dir:
        log_fd = safe_close(log_fd);
        remove_job_dir(e, dir);
        if (cg_name[0])
                (void) unlinkat(e->cgroup_fd, cg_name, AT_REMOVEDIR);
        return r;
}

/* Stop, status, list ----------------------------------------------------------- */

int engine_stop_job(Engine *e, const JobId *id, uint64_t grace_usec) {
        Job *j = job_find(e, id);
        uint64_t deadline;
        int r;

        if (!j)
                return -ENOENT;
        if (j->st.state != JOB_STATE_RUNNING)
                return -ESRCH;
        if (grace_usec == UINT64_MAX)
                grace_usec = e->default_grace_usec;

        j->st.stop_requested = true;
        if (grace_usec == 0) {
                job_kill_all(e, j);
                return 0;
        }
        r = pidfd_signal(j->pidfd, SIGTERM);
        if (r < 0 && r != -ESRCH)
                return r;

        deadline = now_usec(CLOCK_MONOTONIC) + grace_usec;
        if (j->stop_deadline && j->stop_deadline <= deadline)
                return 0; /* an earlier kill is already armed */
        j->stop_deadline = deadline;
        j->stop_ts.tv_sec = (long long) (grace_usec / 1000000);
        j->stop_ts.tv_nsec = (long long) (grace_usec % 1000000) * 1000;
        struct io_uring_sqe *sqe = get_sqe(e);
        if (!sqe)
                return -EBUSY;
        io_uring_prep_timeout(sqe, &j->stop_ts, 0, 0);
        io_uring_sqe_set_data64(sqe, ud_make(OP_STOP_TIMER, j->slot, j->gen));
        io_uring_submit(&e->ring); /* the timespec is read at submission */
        return 0;
}

unsigned engine_stop_all(Engine *e, uint64_t grace_usec) {
        unsigned n = 0;
        for (ListNode *p = e->jobs.first; p; p = p->next) {
                Job *j = list_entry(p, Job, by_start);
                if (j->st.state == JOB_STATE_RUNNING && engine_stop_job(e, &j->st.id, grace_usec) >= 0)
                        n++;
        }
        return n;
}

/* A copy of the job's status; for a running job with a cgroup, with its
 * CPU time and memory so far. */
static void job_status_now(Engine *e, Job *j, JobStatus *ret) {
        *ret = j->st;
        if (j->st.state == JOB_STATE_RUNNING && j->st.has_cgroup) {
                int fd = job_open_cgroup(e, j);
                if (fd >= 0) {
                        cgroup_read_stats(fd, ret);
                        safe_close(fd);
                }
        }
}

int engine_get_status(Engine *e, const JobId *id, JobStatus *ret) {
        Job *j = job_find(e, id);
        if (!j)
                return -ENOENT;
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

void engine_get_counts(Engine *e, EngineCounts *ret) {
        *ret = (EngineCounts) {
                .running = e->n_running,
                .finished = (unsigned) e->finished.n,
                .subscribers = e->n_subscribers,
                .cgroups = e->cgroup_fd >= 0,
                .cgroup_controllers = e->cg_controllers,
                .cgroups_cleaned = e->cgroups_cleaned,
        };
}

void engine_set_observer(Engine *e, EngineObserver fn, void *userdata) {
        e->observer = fn;
        e->observer_userdata = userdata;
}

int engine_subscribe(Engine *e, const JobId *id, unsigned streams, uint64_t offset, bool follow,
                     const SubscriberOps *ops, void *userdata, SubscriberId *ret) {
        Job *j = job_find(e, id);
        Subscriber *s;
        int r;

        if (!j)
                return -ENOENT;
        if (streams == 0 || (streams & ~(unsigned) JOB_STREAMS_ALL) || !ops || !ops->chunk)
                return -EINVAL;

        r = job_open_log(e, j);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(Subscriber));
        if (!s)
                return -ENOMEM;
        r = slot_alloc(&e->sub_slots, s, &s->slot, &s->gen);
        if (r < 0) {
                free(s);
                return r;
        }
        s->job = j;
        s->streams = streams;
        s->follow = follow;
        s->ready = true;
        s->ops = *ops;
        s->userdata = userdata;
        outlog_cursor_init(&s->cur);
        /* An offset past the current end is kept and skipped to as the
         * output arrives (sub_run()). */
        s->skip_to = offset;
        list_append(&j->subs, &s->in_job);
        e->n_subscribers++;
        sub_queue(e, s);
        notify(e, ENGINE_EVENT_SUBSCRIBERS, j);
        *ret = (SubscriberId) { .value = (uint64_t) s->gen << 32 | (uint64_t) (s->slot + 1) };
        return 0;
}

int engine_subscriber_ready(Engine *e, SubscriberId id) {
        Subscriber *s = sub_get(e, id);
        if (!s)
                return -ENOENT;
        s->ready = true;
        sub_queue(e, s);
        return 0;
}

int engine_unsubscribe(Engine *e, SubscriberId id) {
        Subscriber *s = sub_get(e, id);
        if (!s)
                return -ENOENT;
        sub_free(e, s);
        return 0;
}

/* Timers ----------------------------------------------------------------------- */

int engine_timer_new(Engine *e, EngineClosure fn, void *userdata, EngineTimer **ret) {
        EngineTimer *t = calloc(1, sizeof(EngineTimer));
        uint32_t gen;
        int r;

        if (!t)
                return -ENOMEM;
        r = slot_alloc(&e->timer_slots, t, &t->slot, &gen);
        if (r < 0) {
                free(t);
                return r;
        }
        t->fn = fn;
        t->userdata = userdata;
        e->timer_seq += 0x10000;
        t->armed_gen = e->timer_seq & ~1u;
        *ret = t;
        return 0;
}

void engine_timer_disarm(Engine *e, EngineTimer *t) {
        if (t && (t->armed_gen & 1)) {
                struct io_uring_sqe *sqe = get_sqe(e);
                if (sqe) {
                        io_uring_prep_timeout_remove(sqe, ud_make(OP_TIMER, t->slot, t->armed_gen), 0);
                        io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
                }
                t->armed_gen++;
        }
}

int engine_timer_arm(Engine *e, EngineTimer *t, uint64_t after_usec) {
        struct io_uring_sqe *sqe;

        engine_timer_disarm(e, t);
        sqe = get_sqe(e);
        if (!sqe)
                return -EBUSY;
        t->armed_gen++; /* now odd: armed */
        t->ts.tv_sec = (long long) (after_usec / 1000000);
        t->ts.tv_nsec = (long long) (after_usec % 1000000) * 1000;
        io_uring_prep_timeout(sqe, &t->ts, 0, 0);
        io_uring_sqe_set_data64(sqe, ud_make(OP_TIMER, t->slot, t->armed_gen));
        io_uring_submit(&e->ring); /* the timespec is read now */
        return 0;
}

bool engine_timer_armed(Engine *e, EngineTimer *t) {
        return t && (t->armed_gen & 1);
}

EngineTimer *engine_timer_free(Engine *e, EngineTimer *t) {
        if (!t)
                return NULL;
        engine_timer_disarm(e, t);
        slot_free(&e->timer_slots, t->slot);
        free(t);
        return NULL;
}

/* Creation, loading, teardown ------------------------------------------------- */

static int load_job(Engine *e, const char *dir) {
        JobStatus st;
        uint64_t log_size = 0;
        Job *j;
        int r;

        r = job_read_status(e, dir, &st, &log_size);
        if (r < 0)
                return r;
        if (job_find(e, &st.id))
                return -EEXIST;

        j = job_new(e);
        if (!j)
                return -ENOMEM;
        j->st = st;
        j->log_size = log_size;

        if (st.state == JOB_STATE_RUNNING || log_size < OUTLOG_HEADER_SIZE) {
                /* It was running when the previous engine died (or the status
                 * predates the log size): trust the log itself. */
                char path[JOB_ID_STRING_MAX + 16];
                _cleanup_close_ int fd = -1;
                struct stat sb;
                snprintf(path, sizeof(path), "%s/output", dir);
                fd = openat(e->jobs_fd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
                if (fd >= 0 && outlog_scan(fd, true, &j->log_size, &j->st.stdout_bytes, &j->st.stderr_bytes) >= 0) {
                        if (st.state == JOB_STATE_RUNNING && fstat(fd, &sb) >= 0)
                                j->st.end_usec = (uint64_t) sb.st_mtim.tv_sec * 1000000u + (uint64_t) sb.st_mtim.tv_nsec / 1000u;
                } else
                        j->log_size = OUTLOG_HEADER_SIZE;
                if (st.state == JOB_STATE_RUNNING) {
                        j->st.state = JOB_STATE_LOST;
                        if (j->st.end_usec < j->st.start_usec)
                                j->st.end_usec = j->st.start_usec;
                }
                (void) job_write_status(e, j);
        }

        r = hash_add(e, j);
        if (r < 0) {
                slot_free(&e->job_slots, j->slot);
                free(j);
                return r;
        }
        return 0;
}

static int cmp_start(const void *a, const void *b) {
        const Job *x = *(Job *const *) a, *y = *(Job *const *) b;
        return x->st.start_usec < y->st.start_usec ? -1 : x->st.start_usec > y->st.start_usec;
}

static int cmp_end(const void *a, const void *b) {
        const Job *x = *(Job *const *) a, *y = *(Job *const *) b;
        return x->st.end_usec < y->st.end_usec ? -1 : x->st.end_usec > y->st.end_usec;
}

static int load_state(Engine *e) {
        _cleanup_free_ Job **v = NULL;
        DIR *d = opendir_dup(e->jobs_fd);
        struct dirent *de;
        size_t n = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                JobId id;
                if (job_id_from_string(de->d_name, &id) < 0)
                        continue;
                /* A job directory we cannot read is left alone (and not
                 * shown); it does not stop the engine. */
                (void) load_job(e, de->d_name);
        }
        closedir(d);

        /* Order: all jobs by start, finished ones by end. */
        v = malloc(MAX(e->job_slots.n, 1u) * sizeof(Job *));
        if (!v)
                return -ENOMEM;
        for (uint32_t i = 0; i < e->job_slots.n; i++)
                if (e->job_slots.slots[i].ptr)
                        v[n++] = e->job_slots.slots[i].ptr;
        qsort(v, n, sizeof(Job *), cmp_start);
        for (size_t i = 0; i < n; i++)
                list_append(&e->jobs, &v[i]->by_start);
        qsort(v, n, sizeof(Job *), cmp_end);
        for (size_t i = 0; i < n; i++)
                list_append(&e->finished, &v[i]->by_end);
        return 0;
}

static int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int engine_new(Engine **ret, const EngineConfig *config) {
        Engine *e;
        struct io_uring_params params = {};
        int r;

        if (!config || !config->state_dir || !config->state_dir[0])
                return -EINVAL;

        e = calloc(1, sizeof(Engine));
        if (!e)
                return -ENOMEM;
        e->state_fd = e->jobs_fd = e->devnull_fd = e->wake_fd = e->cgroup_fd = -1;
        pthread_mutex_init(&e->post_lock, NULL);
        e->output_cap = config->output_cap ? config->output_cap : ENGINE_DEFAULT_OUTPUT_CAP;
        e->retain_max_jobs = config->retain_max_jobs ? config->retain_max_jobs : ENGINE_DEFAULT_RETAIN_JOBS;
        e->retain_max_age_usec = config->retain_max_age_usec ? config->retain_max_age_usec : ENGINE_DEFAULT_RETAIN_AGE_USEC;
        e->default_grace_usec = config->default_grace_usec ? config->default_grace_usec : ENGINE_DEFAULT_GRACE_USEC;
        e->splice = config->capture_splice;

        e->state_dir = strdup(config->state_dir);
        if (!e->state_dir) {
                r = -ENOMEM;
                goto fail;
        }
        r = mkdir_p(e->state_dir, 0700);
        if (r < 0)
                goto fail;
        e->state_fd = open(e->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (e->state_fd < 0) {
                r = -errno;
                goto fail;
        }
        if (mkdirat(e->state_fd, "jobs", 0700) < 0 && errno != EEXIST) {
                r = -errno;
                goto fail;
        }
        e->jobs_fd = openat(e->state_fd, "jobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        e->devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (e->jobs_fd < 0 || e->devnull_fd < 0 || e->wake_fd < 0) {
                r = -errno;
                goto fail;
        }
        e->jobs_fd = fd_above_2(e->jobs_fd);
        e->devnull_fd = fd_above_2(e->devnull_fd);

        e->buf = malloc(ENGINE_BUFFER_SIZE);
        if (!e->buf) {
                r = -ENOMEM;
                goto fail;
        }
        r = spawn_stack_init(&e->stack);
        if (r < 0)
                goto fail;

        if (config->cgroup_root) {
                e->cgroup_fd = open(config->cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (e->cgroup_fd < 0) {
                        r = -errno;
                        goto fail;
                }
                e->cgroup_fd = fd_above_2(e->cgroup_fd);
                r = cgroup_child_controllers(e->cgroup_fd, &e->cg_controllers);
                if (r < 0)
                        goto fail; /* not a cgroup v2 directory */
                (void) cgroup_cleanup_leftovers(e->cgroup_fd, &e->cgroups_cleaned);
        }

        {
                struct passwd *pw = getpwuid(geteuid());
                e->default_user = strdup(pw ? pw->pw_name : "root");
                e->default_home = strdup(pw && pw->pw_dir ? pw->pw_dir : "/");
                if (!e->default_user || !e->default_home) {
                        r = -ENOMEM;
                        goto fail;
                }
        }

        /* Completions never get lost: IORING_FEAT_NODROP (5.5+) keeps an
         * overflow list when many pidfds/pipes fire at once. */
        r = io_uring_queue_init_params(config->ring_entries ? config->ring_entries : 1024, &e->ring, &params);
        if (r < 0)
                goto fail;
        e->ring_ok = true;
        {
                struct io_uring_probe *probe = io_uring_get_probe_ring(&e->ring);
                e->async_unlink = probe && io_uring_opcode_supported(probe, IORING_OP_UNLINKAT);
                if (probe)
                        io_uring_free_probe(probe);
        }
        r = arm_wake(e);
        if (r < 0)
                goto fail;

        r = load_state(e);
        if (r < 0)
                goto fail;
        retention_run(e);
        io_uring_submit(&e->ring);

        *ret = e;
        return 0;
fail:
        engine_free(e);
        return r;
}

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;

        e->observer = NULL;

        /* No job outlives its engine: kill what still runs and record it. */
        for (ListNode *p = e->jobs.first; p; p = p->next) {
                Job *j = list_entry(p, Job, by_start);
                if (j->st.state != JOB_STATE_RUNNING || j->pidfd < 0)
                        continue;
                siginfo_t si = {};
                job_kill_all(e, j);
                while (waitid(P_PIDFD, (id_t) j->pidfd, &si, WEXITED) < 0 && errno == EINTR)
                        ;
                if (si.si_pid == 0) {
                        si.si_code = CLD_KILLED;
                        si.si_status = SIGKILL;
                }
                j->st.state = si.si_code == CLD_EXITED ? JOB_STATE_EXITED : JOB_STATE_KILLED;
                j->st.exit_code = si.si_code == CLD_EXITED ? si.si_status : 0;
                j->st.signal = si.si_code == CLD_EXITED ? 0 : si.si_status;
                j->st.end_usec = now_usec(CLOCK_REALTIME);
                for (int i = 0; i < 2; i++)
                        if (j->pipe_fd[i] >= 0 && e->buf)
                                (void) job_drain_pipe(e, j, i, EXIT_DRAIN_BUDGET);
                if (j->cg_fd < 0)
                        j->cg_fd = job_open_cgroup(e, j);
                if (j->cg_fd >= 0) {
                        (void) cgroup_wait_empty(j->cg_fd, 2000);
                        job_cgroup_done(e, j);
                }
                (void) job_write_status(e, j);
        }
        /* Jobs whose main process ended but whose cgroup was emptying. */
        for (ListNode *p = e->jobs.first; p; p = p->next) {
                Job *j = list_entry(p, Job, by_start);
                if (!j->cg_emptying)
                        continue;
                (void) cgroup_wait_empty(j->cg_fd, 2000);
                job_cgroup_done(e, j);
                j->st.state = j->exit_info.si_code == CLD_EXITED ? JOB_STATE_EXITED : JOB_STATE_KILLED;
                (void) job_write_status(e, j);
        }

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

        /* Closures nobody will run on the engine: let them free their data. */
        for (Posted *p = e->post_head, *next; p; p = next) {
                next = p->next;
                p->fn(NULL, p->userdata);
                free(p);
        }

        if (e->ring_ok)
                io_uring_queue_exit(&e->ring);
        spawn_stack_done(&e->stack);
        safe_close(e->state_fd);
        safe_close(e->jobs_fd);
        safe_close(e->devnull_fd);
        safe_close(e->wake_fd);
        safe_close(e->cgroup_fd);
        pthread_mutex_destroy(&e->post_lock);
        for (uint32_t i = 0; i < e->timer_slots.n; i++)
                free(e->timer_slots.slots[i].ptr);
        free(e->timer_slots.slots);
        free(e->job_slots.slots);
        free(e->sub_slots.slots);
        free(e->hash);
        free(e->buf);
        free(e->state_dir);
        free(e->default_user);
        free(e->default_home);
        free(e);
        return NULL;
}
