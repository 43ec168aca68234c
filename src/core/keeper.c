/* SPDX-License-Identifier: MIT */

/*
 * The keeper: a running job's pidfd and pipe read ends outlive the daemon.
 *
 * The one idea: the fds of many jobs travel together inside one socket.
 * Each job's three fds are sent, with a 64-byte record naming the job, as
 * one SCM_RIGHTS message into an AF_UNIX SOCK_SEQPACKET socketpair (a
 * "bundle"), and the receiving end of that pair is what goes into the
 * service manager's fd store (FDSTORE=1, FDNAME=jobs-N, FDPOLL=0). Queued
 * messages keep their fds open for as long as the socket lives, so while
 * systemd holds the bundle, no job's pipe loses its reader (no SIGPIPE,
 * output waits in the pipe) and no pidfd is closed (its exit status stays
 * readable on kernels with PIDFD_INFO_EXIT). Why not one stored fd per
 * job fd: systemd hands stored fds back as LISTEN_FDS with their names in
 * one environment string of at most 128 KiB, which 30,000 fds of 10,000
 * jobs with distinguishable names do not fit; 40 bundles do.
 *
 * A bundle takes up to KEEP_BUNDLE_JOBS records and is written by the daemon
 * that made it only; the next daemon reads it with MSG_PEEK (SO_PEEK_OFF
 * walks the queue, each peek gives fresh copies of the fds and leaves the
 * message queued), so that a crash during the load loses nothing. A bundle
 * leaves the store once none of its jobs runs: until then the fds of its
 * ended jobs stay queued in it (a pidfd and two pipe ends: about 2 KiB of
 * kernel memory each; a job that outlives 255 others of its bundle holds
 * theirs). The next serial continues after the highest one loaded.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/keeper.h"
#include "shared/macro.h"

#define KEEP_PREFIX "jobs-"
#define KEEP_BUNDLE_JOBS 256u
#define KEEP_MAGIC 0x504b574au /* "JWKP", little-endian */
#define KEEP_VERSION 1
#define KEEP_SNDBUF (4 * 1024 * 1024)

/* One message of a bundle: the job's record; fds in SCM_RIGHTS, in the
 * order pidfd, stdout, stderr. A newer daemon reads version 1; a record of
 * a version it does not know is skipped (its fds closed) and counted. */
typedef struct KeepRecord {
        uint32_t magic;
        uint16_t version;
        uint16_t n_fds;
        uint8_t id[16];
        int32_t pid;
        uint32_t flags;
        uint64_t pid_starttime;
        uint8_t reserved[24];
} KeepRecord;
_Static_assert(sizeof(KeepRecord) == 64, "a bundle record is 64 bytes");

typedef struct Bundle {
        struct Bundle *next;
        uint32_t serial;
        int read_fd;            /* the end in the store */
        int write_fd;           /* -1: sealed (a previous daemon's, or full) */
        unsigned records, live;
} Bundle;

typedef struct Kept {
        JobId id;
        KeptJob job;
        bool taken;
} Kept;

struct Keeper {
        atomic_uint refs;
        pthread_mutex_t lock;
        EngineFdStore ops;
        Bundle *bundles;
        Bundle *current;        /* the one being filled, or NULL */
        uint32_t next_serial;
        Kept *kept;
        size_t n_kept;
        unsigned loaded_jobs, failures;
        int last_error;
};

static void bundle_name(uint32_t serial, char buf[static 32]) {
        snprintf(buf, 32, KEEP_PREFIX "%u", serial);
}

static Bundle *bundle_find(Keeper *k, uint32_t serial) {
        for (Bundle *b = k->bundles; b; b = b->next)
                if (b->serial == serial)
                        return b;
        return NULL;
}

static void bundle_drop(Keeper *k, Bundle *b, bool from_store) {
        char name[32];

        for (Bundle **p = &k->bundles; *p; p = &(*p)->next)
                if (*p == b) {
                        *p = b->next;
                        break;
                }
        if (k->current == b)
                k->current = NULL;
        bundle_name(b->serial, name);
        if (from_store && b->serial != 0)
                (void) k->ops.remove(k->ops.userdata, name);
        safe_close(b->read_fd);
        safe_close(b->write_fd);
        free(b);
}

/* A new bundle, in the store before its first record. Under the lock. */
static int bundle_open(Keeper *k, Bundle **ret) {
        _cleanup_free_ Bundle *b = calloc(1, sizeof(Bundle));
        int sv[2], size = KEEP_SNDBUF, r;
        char name[32];

        if (!b)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        /* Room for a full bundle's records (each queued message costs about
         * a KiB of socket memory); without CAP_NET_ADMIN wmem_max caps it,
         * and a full socket simply starts the next bundle. */
        if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
                (void) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        b->write_fd = sv[0];
        b->read_fd = sv[1];
        b->serial = k->next_serial++;
        bundle_name(b->serial, name);
        r = k->ops.store(k->ops.userdata, b->read_fd, name);
        if (r < 0) {
                safe_close(sv[0]);
                safe_close(sv[1]);
                return r;
        }
        b->next = k->bundles;
        k->bundles = b;
        *ret = TAKE_PTR(b);
        return 0;
}

static int bundle_send(Bundle *b, const KeepRecord *rec, const int *fds, unsigned n) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(3 * sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = (void *) rec, .iov_len = sizeof(*rec) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = CMSG_SPACE(n * sizeof(int)),
        };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
        if (sendmsg(b->write_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
}

int keeper_add(Keeper *k, const JobId *id, pid_t pid, uint64_t pid_starttime, int pidfd, int out_fd, int err_fd,
               uint32_t *ret_bundle) {
        KeepRecord rec = {
                .magic = KEEP_MAGIC,
                .version = KEEP_VERSION,
                .n_fds = 3,
                .pid = pid,
                .pid_starttime = pid_starttime,
        };
        int fds[3] = { pidfd, out_fd, err_fd }, r = 0;

        if (!k)
                return -EOPNOTSUPP;
        if (pidfd < 0 || out_fd < 0 || err_fd < 0)
                return -EBADF;
        memcpy(rec.id, id->bytes, sizeof(rec.id));
        pthread_mutex_lock(&k->lock);
        for (int attempt = 0; attempt < 2; attempt++) {
                if (!k->current || k->current->records >= KEEP_BUNDLE_JOBS) {
                        Bundle *full = k->current;
                        k->current = NULL;
                        if (full && full->live == 0)
                                bundle_drop(k, full, true);
                        else if (full)
                                full->write_fd = safe_close(full->write_fd);
                        r = bundle_open(k, &k->current);
                        if (r < 0)
                                break;
                }
                r = bundle_send(k->current, &rec, fds, 3);
                if (r != -EAGAIN && r != -ENOBUFS)
                        break;
                /* The socket is full before KEEP_BUNDLE_JOBS: seal it. */
                k->current->records = KEEP_BUNDLE_JOBS;
        }
        if (r >= 0) {
                k->current->records++;
                k->current->live++;
                *ret_bundle = k->current->serial;
        } else {
                k->failures++;
                k->last_error = -r;
        }
        pthread_mutex_unlock(&k->lock);
        return r;
}

void keeper_release(Keeper *k, uint32_t serial) {
        Bundle *b;

        if (!k || serial == 0)
                return;
        pthread_mutex_lock(&k->lock);
        b = bundle_find(k, serial);
        if (b && b->live > 0 && --b->live == 0 && b != k->current)
                bundle_drop(k, b, true);
        pthread_mutex_unlock(&k->lock);
}

/* Loading ---------------------------------------------------------------- */

static void close_fds(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = safe_close(fds[i]);
}

/* The next record of a bundle, without taking it off the queue. 0: one
 * read (*ret_n fds in fds), 1: the end. */
static int peek_record(int fd, KeepRecord *rec, int fds[static 3], size_t *ret_n) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(8 * sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = rec, .iov_len = sizeof(*rec) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        size_t n = 0;
        ssize_t k;

        do
                k = recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return errno == EAGAIN ? 1 : -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t m = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int got[8];
                memcpy(got, CMSG_DATA(c), MIN(m, ELEMENTSOF(got)) * sizeof(int));
                for (size_t i = 0; i < MIN(m, ELEMENTSOF(got)); i++) {
                        if (n < 3)
                                fds[n++] = got[i];
                        else
                                safe_close(got[i]);
                }
        }
        *ret_n = n;
        if (k == 0 && n == 0)
                return 1; /* the writer is gone and the queue is empty */
        if ((size_t) k != sizeof(*rec) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
                return -EBADMSG;
        return 0;
}

static int kept_append(Keeper *k, const KeepRecord *rec, int fds[static 3], uint32_t serial) {
        Kept *v = realloc(k->kept, (k->n_kept + 1) * sizeof(Kept));

        if (!v)
                return -ENOMEM;
        k->kept = v;
        v[k->n_kept] = (Kept) {
                .job = { .pid = rec->pid, .pid_starttime = rec->pid_starttime, .bundle = serial,
                         .fds = { fds[0], fds[1], fds[2] } },
        };
        memcpy(v[k->n_kept].id.bytes, rec->id, sizeof(rec->id));
        k->n_kept++;
        k->loaded_jobs++;
        return 0;
}

/* Walks a bundle of a previous daemon with SO_PEEK_OFF: every record's fds
 * are copied to us, the queue stays as it is in the store. */
static int bundle_load(Keeper *k, Bundle *b) {
        int off = 0, r = 0;

        if (setsockopt(b->read_fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) < 0)
                return -errno;
        for (unsigned i = 0; i < KEEP_BUNDLE_JOBS * 4; i++) {
                KeepRecord rec;
                int fds[3] = { -1, -1, -1 };
                size_t n = 0;

                r = peek_record(b->read_fd, &rec, fds, &n);
                if (r == 1)
                        return 0;
                if (r < 0 && r != -EBADMSG)
                        return r;
                b->records++;
                if (r < 0 || rec.magic != KEEP_MAGIC || rec.version != KEEP_VERSION || n != 3) {
                        close_fds(fds, ELEMENTSOF(fds));
                        k->failures++;
                        k->last_error = EBADMSG;
                        continue;
                }
                r = kept_append(k, &rec, fds, b->serial);
                if (r < 0) {
                        close_fds(fds, ELEMENTSOF(fds));
                        return r;
                }
        }
        return -E2BIG;
}

static int keeper_load(Keeper *k, const EngineFdStore *config) {
        for (size_t i = 0; i < config->n; i++) {
                const char *name = config->names ? config->names[i] : NULL;
                char *end;
                unsigned long serial;
                Bundle *b;

                if (!name || strncmp(name, KEEP_PREFIX, strlen(KEEP_PREFIX)) != 0)
                        continue;
                errno = 0;
                serial = strtoul(name + strlen(KEEP_PREFIX), &end, 10);
                b = calloc(1, sizeof(Bundle));
                if (!b)
                        return -ENOMEM;
                *b = (Bundle) { .serial = (uint32_t) serial, .read_fd = fcntl(config->fds[i], F_DUPFD_CLOEXEC, 3),
                                .write_fd = -1, .next = k->bundles };
                if (b->read_fd < 0) {
                        free(b);
                        return -errno;
                }
                k->bundles = b;
                if (errno || *end || serial == 0 || serial >= UINT32_MAX) {
                        b->serial = 0; /* not ours to name: dropped at load_done */
                        continue;
                }
                if (b->serial >= k->next_serial)
                        k->next_serial = b->serial + 1;
                int r = bundle_load(k, b);
                if (r < 0) {
                        k->failures++;
                        k->last_error = -r;
                }
        }
        return 0;
}

int keeper_new(const EngineFdStore *config, Keeper **ret) {
        Keeper *k;
        int r;

        *ret = NULL;
        if (!config || !config->store || !config->remove)
                return 0;
        k = calloc(1, sizeof(Keeper));
        if (!k)
                return -ENOMEM;
        atomic_init(&k->refs, 1);
        pthread_mutex_init(&k->lock, NULL);
        k->ops = *config;
        k->ops.fds = NULL;
        k->ops.names = NULL;
        k->ops.n = 0;
        k->next_serial = 1;
        r = keeper_load(k, config);
        if (r < 0) {
                keeper_unref(k);
                return r;
        }
        *ret = k;
        return 0;
}

int keeper_take(Keeper *k, const JobId *id, KeptJob *ret) {
        if (!k)
                return -ENOENT;
        for (size_t i = 0; i < k->n_kept; i++) {
                Kept *p = &k->kept[i];
                if (p->taken || !job_id_equal(&p->id, id))
                        continue;
                p->taken = true;
                *ret = p->job;
                Bundle *b = bundle_find(k, p->job.bundle);
                if (b)
                        b->live++;
                return 0;
        }
        return -ENOENT;
}

void keeper_load_done(Keeper *k) {
        if (!k)
                return;
        for (size_t i = 0; i < k->n_kept; i++)
                if (!k->kept[i].taken)
                        close_fds(k->kept[i].job.fds, 3);
        free(k->kept);
        k->kept = NULL;
        k->n_kept = 0;
        for (Bundle *b = k->bundles, *next; b; b = next) {
                next = b->next;
                if (b->live == 0)
                        bundle_drop(k, b, true);
        }
}

int keeper_dup_bundles(Keeper *k, int **ret_fds, char ***ret_names, size_t *ret_n) {
        size_t n = 0, i = 0;
        int *fds;
        char **names;

        *ret_n = 0;
        *ret_fds = NULL;
        *ret_names = NULL;
        if (!k)
                return 0;
        pthread_mutex_lock(&k->lock);
        for (Bundle *b = k->bundles; b; b = b->next)
                n += b->serial != 0;
        fds = calloc(MAX(n, (size_t) 1), sizeof(int));
        names = calloc(MAX(n, (size_t) 1), sizeof(char *));
        for (Bundle *b = k->bundles; fds && names && b; b = b->next) {
                char name[32];
                if (b->serial == 0)
                        continue;
                bundle_name(b->serial, name);
                fds[i] = fcntl(b->read_fd, F_DUPFD_CLOEXEC, 3);
                names[i] = strdup(name);
                if (fds[i] < 0 || !names[i]) {
                        safe_close(fds[i]);
                        free(names[i]);
                        continue;
                }
                i++;
        }
        pthread_mutex_unlock(&k->lock);
        if (!fds || !names) {
                free(fds);
                free(names);
                return -ENOMEM;
        }
        *ret_fds = fds;
        *ret_names = names;
        *ret_n = i;
        return 0;
}

void keeper_get_counts(Keeper *k, KeeperCounts *ret) {
        *ret = (KeeperCounts) {};
        if (!k)
                return;
        pthread_mutex_lock(&k->lock);
        for (Bundle *b = k->bundles; b; b = b->next)
                ret->bundles++;
        ret->loaded_jobs = k->loaded_jobs;
        ret->failures = k->failures;
        ret->last_error = k->last_error;
        pthread_mutex_unlock(&k->lock);
}

Keeper *keeper_ref(Keeper *k) {
        if (k)
                atomic_fetch_add(&k->refs, 1);
        return k;
}

Keeper *keeper_unref(Keeper *k) {
        if (!k || atomic_fetch_sub(&k->refs, 1) > 1)
                return NULL;
        for (size_t i = 0; i < k->n_kept; i++)
                if (!k->kept[i].taken)
                        close_fds(k->kept[i].job.fds, 3);
        free(k->kept);
        while (k->bundles) {
                Bundle *b = k->bundles;
                k->bundles = b->next;
                safe_close(b->read_fd);
                safe_close(b->write_fd);
                free(b);
        }
        pthread_mutex_destroy(&k->lock);
        free(k);
        return NULL;
}
