/* SPDX-License-Identifier: MIT */

/*
 * A FUSE filesystem that hangs on purpose, so tests can show that nothing in
 * the daemon's engine thread waits on a path a client chose (issue 11 point
 * 4). It speaks the FUSE protocol on /dev/fuse itself (no libfuse).
 *
 * The one idea: a LOOKUP that is read from /dev/fuse and never answered holds
 * its caller in an uninterruptible wait (not even SIGKILL frees it), exactly
 * like a dead hard-mounted NFS server. So every path walk through the mount
 * below its root (stat, open, chdir, execvp searching PATH) hangs until this
 * program answers the lookup or the connection is aborted.
 *
 * Usage:  jw-fuse-stall MOUNTPOINT        (MOUNTPOINT: an existing directory)
 *   stdout  "ready\n" once the mount answers requests; nothing else.
 *   SIGUSR1 release: every stalled lookup, and every later one, fails ENOENT
 *           (the filesystem then looks like an empty directory).
 *   SIGTERM (also SIGINT, SIGHUP) abort the connection by closing /dev/fuse,
 *           so every stalled caller gets an error (ECONNABORTED/ENOTCONN),
 *           detach the mount (umount2 MNT_DETACH), exit 0.
 *   Parent death delivers SIGTERM (PR_SET_PDEATHSIG), so a crashed test does
 *           not leave callers hung. Note the "parent" is the thread that
 *           forked this program.
 *   Exit 77 with a message on stderr when FUSE cannot be used here (no
 *   /dev/fuse, no fuse filesystem type, not allowed to mount); 2 on a usage
 *   error; 1 on any other failure.
 * The root directory answers GETATTR, ACCESS, STATFS, OPENDIR/READDIR (empty)
 * and RELEASEDIR; other operations fail ENOSYS. FUSE_INTERRUPT is ignored,
 * which is what keeps a stalled lookup stalled when its caller gets a signal.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXIT_SKIP 77
#define READ_BUFFER_SIZE (64u * 1024u) /* >= FUSE_MIN_READ_BUFFER and 4 KiB max_write */

typedef struct Stall {
        const char *mountpoint;
        int fuse_fd;
        bool released;
        uint64_t *stalled; /* unique ids of the lookups not yet answered */
        size_t n_stalled, cap_stalled;
} Stall;

/* Sends one reply; an error of -ENOENT from the kernel means the caller gave up. */
static int reply(Stall *s, uint64_t unique, int error, const void *arg, size_t len) {
        struct fuse_out_header out = {
                .len = (uint32_t) (sizeof(out) + (error ? 0 : len)),
                .error = error,
                .unique = unique,
        };
        struct iovec iov[2] = { { &out, sizeof(out) }, { (void *) arg, error ? 0 : len } };
        ssize_t n = writev(s->fuse_fd, iov, iov[1].iov_len ? 2 : 1);
        if (n < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static void root_attr(struct fuse_attr *a) {
        memset(a, 0, sizeof(*a));
        a->ino = FUSE_ROOT_ID;
        a->mode = S_IFDIR | 0755;
        a->nlink = 2;
        a->uid = getuid();
        a->gid = getgid();
        a->blksize = 4096;
}

static int do_init(Stall *s, uint64_t unique, const struct fuse_init_in *in) {
        struct fuse_init_out out = {
                .major = FUSE_KERNEL_VERSION,
                .minor = in->minor < FUSE_KERNEL_MINOR_VERSION ? in->minor : FUSE_KERNEL_MINOR_VERSION,
                .max_readahead = in->max_readahead,
                .max_write = 4096,
        };
        if (in->major != FUSE_KERNEL_VERSION) {
                fprintf(stderr, "jw-fuse-stall: kernel speaks FUSE %u, not %u\n", in->major, FUSE_KERNEL_VERSION);
                return -EPROTO;
        }
        int r = reply(s, unique, 0, &out, sizeof(out));
        if (r < 0)
                return r;
        if (write(STDOUT_FILENO, "ready\n", 6) != 6)
                return -EIO;
        return 0;
}

static int do_lookup(Stall *s, uint64_t unique) {
        if (s->released)
                return reply(s, unique, -ENOENT, NULL, 0);
        if (s->n_stalled == s->cap_stalled) {
                size_t cap = s->cap_stalled ? 2 * s->cap_stalled : 64;
                uint64_t *p = realloc(s->stalled, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                s->stalled = p;
                s->cap_stalled = cap;
        }
        s->stalled[s->n_stalled++] = unique;
        return 0;
}

static int release_all(Stall *s) {
        s->released = true;
        for (size_t i = 0; i < s->n_stalled; i++) {
                int r = reply(s, s->stalled[i], -ENOENT, NULL, 0);
                if (r < 0)
                        return r;
        }
        s->n_stalled = 0;
        return 0;
}

/* Answers one request read from /dev/fuse; returns -errno only on a fatal error. */
static int handle(Stall *s, const uint8_t *buf, size_t n) {
        const struct fuse_in_header *in = (const void *) buf;
        const void *arg = buf + sizeof(*in);
        if (n < sizeof(*in))
                return -EPROTO;

        switch (in->opcode) {
        case FUSE_INIT:
                return do_init(s, in->unique, arg);
        case FUSE_LOOKUP:
                return do_lookup(s, in->unique);
        case FUSE_GETATTR: {
                struct fuse_attr_out out = { .attr_valid = 1 };
                if (in->nodeid != FUSE_ROOT_ID)
                        return reply(s, in->unique, -ENOENT, NULL, 0);
                root_attr(&out.attr);
                return reply(s, in->unique, 0, &out, sizeof(out));
        }
        case FUSE_STATFS: {
                struct fuse_statfs_out out = { .st = { .bsize = 4096, .frsize = 4096, .namelen = 255 } };
                return reply(s, in->unique, 0, &out, sizeof(out));
        }
        case FUSE_OPENDIR: {
                struct fuse_open_out out = { 0 };
                return reply(s, in->unique, 0, &out, sizeof(out));
        }
        case FUSE_ACCESS:
        case FUSE_READDIR:     /* an empty reply: no entries */
        case FUSE_RELEASEDIR:
        case FUSE_FLUSH:
                return reply(s, in->unique, 0, NULL, 0);
        case FUSE_FORGET:
        case FUSE_BATCH_FORGET:
        case FUSE_INTERRUPT:   /* no reply: a stalled lookup stays stalled */
                return 0;
        default:
                return reply(s, in->unique, -ENOSYS, NULL, 0);
        }
}

/* Opens /dev/fuse and mounts it; returns an exit code when it cannot. */
static int mount_fuse(Stall *s) {
        char opts[128];

        s->fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
        if (s->fuse_fd < 0) {
                fprintf(stderr, "jw-fuse-stall: SKIP: cannot open /dev/fuse: %m\n");
                return EXIT_SKIP;
        }
        snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u,allow_other",
                 s->fuse_fd, (unsigned) getuid(), (unsigned) getgid());
        if (mount("jw-fuse-stall", s->mountpoint, "fuse", MS_NOSUID | MS_NODEV, opts) < 0) {
                bool skip = errno == EPERM || errno == EACCES || errno == ENODEV;
                fprintf(stderr, "jw-fuse-stall: %scannot mount fuse on %s: %m\n",
                        skip ? "SKIP: " : "", s->mountpoint);
                return skip ? EXIT_SKIP : EXIT_FAILURE;
        }
        return 0;
}

/* Aborts the connection (stalled callers get errors) and detaches the mount. */
static int teardown(Stall *s) {
        if (s->fuse_fd >= 0)
                close(s->fuse_fd); /* the last close of /dev/fuse aborts the connection */
        s->fuse_fd = -1;
        if (umount2(s->mountpoint, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
                fprintf(stderr, "jw-fuse-stall: cannot unmount %s: %m\n", s->mountpoint);
                return EXIT_FAILURE;
        }
        return 0;
}

/* Serves requests until a stop signal; returns 0 on a clean stop, -errno on failure. */
static int serve(Stall *s, int sig_fd) {
        uint8_t *buf = malloc(READ_BUFFER_SIZE);
        int r = 0;
        if (!buf)
                return -ENOMEM;
        while (r >= 0) {
                struct pollfd p[2] = { { .fd = sig_fd, .events = POLLIN }, { .fd = s->fuse_fd, .events = POLLIN } };
                if (poll(p, 2, -1) < 0) {
                        r = errno == EINTR ? 0 : -errno;
                        continue;
                }
                if (p[0].revents) {
                        struct signalfd_siginfo si;
                        if (read(sig_fd, &si, sizeof(si)) != sizeof(si))
                                continue;
                        if (si.ssi_signo != SIGUSR1)
                                break;
                        r = release_all(s);
                        continue;
                }
                if (!p[1].revents)
                        continue;
                ssize_t n = read(s->fuse_fd, buf, READ_BUFFER_SIZE);
                if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == ENOENT))
                        continue;
                if (n < 0 && errno == ENODEV) /* unmounted or aborted from outside */
                        break;
                r = n < 0 ? -errno : handle(s, buf, (size_t) n);
        }
        free(buf);
        return r;
}

int main(int argc, char **argv) {
        Stall s = { .fuse_fd = -1 };
        sigset_t mask;
        int sig_fd, r;

        if (argc != 2) {
                fprintf(stderr, "usage: %s MOUNTPOINT\n", argv[0]);
                return 2;
        }
        s.mountpoint = argv[1];

        /* Signals are blocked before PDEATHSIG is armed, so a parent that dies
         * right away still reaches the signalfd. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        pid_t parent = getppid();
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                return EXIT_FAILURE;
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sig_fd < 0) {
                fprintf(stderr, "jw-fuse-stall: signalfd: %m\n");
                return EXIT_FAILURE;
        }

        r = mount_fuse(&s);
        if (r != 0)
                return r;
        r = serve(&s, sig_fd);
        if (r < 0)
                fprintf(stderr, "jw-fuse-stall: %s\n", strerror(-r));
        int t = teardown(&s);
        free(s.stalled);
        close(sig_fd);
        return r < 0 ? EXIT_FAILURE : t;
}
