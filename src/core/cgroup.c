/* SPDX-License-Identifier: MIT */

/*
 * Per-job cgroups (cgroup v2).
 *
 * The one idea: a job's cgroup exists before its process does — limits are
 * written into an empty leaf and the child is born inside it with
 * CLONE_INTO_CGROUP — so there is no moment in which it runs unbounded, and
 * cgroup.kill reaches everything it ever started, however it detached.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cgroup.h"
#include "shared/fs-util.h"
#include "shared/macro.h"
#include "shared/time-util.h"

static int write_file_at(int dirfd, const char *name, const char *value) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        size_t n = strlen(value);

        if (fd < 0)
                return -errno;
        ssize_t k = write(fd, value, n);
        if (k < 0)
                return -errno;
        return (size_t) k == n ? 0 : -EIO;
}

/* Control files are small and read whole: fs-util's one-read helper. */
static int read_file_at(int dirfd, const char *name, char *buf, size_t size) {
        return (int) read_small_file_at(dirfd, name, O_NOFOLLOW, buf, size);
}

/* Value of `key` in a "key value" per line file such as cpu.stat. */
static int keyed_value(const char *text, const char *key, uint64_t *ret) {
        size_t kl = strlen(key);
        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
                        *ret = strtoull(p + kl + 1, NULL, 10);
                        return 0;
                }
        return -ENOENT;
}

int cgroup_v2_mount(char **ret) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                /* id parent maj:min root mountpoint options - fstype source ... */
                char root[1024], mnt[1024], fstype[64];
                const char *dash = strstr(line, " - ");
                if (!dash || sscanf(line, "%*s %*s %*s %1023s %1023s", root, mnt) != 2)
                        continue;
                if (sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
                        continue;
                *ret = strdup(mnt);
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

int cgroup_self_path(char **ret) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
        _cleanup_free_ char *mnt = NULL;
        char line[4096];
        int r;

        if (!f)
                return -errno;
        r = cgroup_v2_mount(&mnt);
        if (r < 0)
                return r;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                line[strcspn(line, "\n")] = 0;
                if (asprintf(ret, "%s%s", mnt, strcmp(line + 3, "/") == 0 ? "" : line + 3) < 0)
                        return -ENOMEM;
                return 0;
        }
        return -ENOENT;
}

int cgroup_child_controllers(int dirfd, unsigned *ret) {
        char buf[512];
        unsigned m = 0;
        int r = read_file_at(dirfd, "cgroup.subtree_control", buf, sizeof(buf));
        if (r < 0)
                return r;
        for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n")) {
                if (strcmp(t, "cpu") == 0)
                        m |= CGROUP_CTRL_CPU;
                else if (strcmp(t, "memory") == 0)
                        m |= CGROUP_CTRL_MEMORY;
                else if (strcmp(t, "io") == 0)
                        m |= CGROUP_CTRL_IO;
                else if (strcmp(t, "pids") == 0)
                        m |= CGROUP_CTRL_PIDS;
        }
        *ret = m;
        return 0;
}

/* Enables every controller of cgroup.controllers for the children. */
static void enable_all_controllers(int dirfd) {
        char buf[512], cmd[600];
        if (read_file_at(dirfd, "cgroup.controllers", buf, sizeof(buf)) <= 0)
                return;
        for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n")) {
                snprintf(cmd, sizeof(cmd), "+%s", t);
                (void) write_file_at(dirfd, "cgroup.subtree_control", cmd);
        }
}

/* Moves every process of the cgroup dirfd into its leaf sup. */
static int move_all_processes(int dirfd, int sup) {
        char buf[4096];
        ssize_t n = read_small_file_at(dirfd, "cgroup.procs", O_NOFOLLOW, buf, sizeof(buf));
        int r = 0;

        if (n < 0)
                return (int) n;
        for (char *t = strtok(buf, "\n"); t; t = strtok(NULL, "\n")) {
                int k = write_file_at(sup, "cgroup.procs", t);
                if (k < 0 && k != -ESRCH)
                        r = k;
        }
        return r;
}

int cgroup_prepare_delegated(const char *dir, bool self, char **ret_jobs) {
        _cleanup_close_ int fd = -1, sup = -1, jobs = -1;
        char pid[32];
        int r;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (mkdirat(fd, "supervisor", 0755) < 0 && errno != EEXIST)
                return -errno;
        sup = openat(fd, "supervisor", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sup < 0)
                return -errno;
        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        r = self ? write_file_at(sup, "cgroup.procs", pid) : move_all_processes(fd, sup);
        if (r < 0)
                return r;
        enable_all_controllers(fd);
        if (mkdirat(fd, "jobs", 0755) < 0 && errno != EEXIST)
                return -errno;
        jobs = openat(fd, "jobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (jobs < 0)
                return -errno;
        enable_all_controllers(jobs);
        if (asprintf(ret_jobs, "%s/jobs", dir) < 0)
                return -ENOMEM;
        return 0;
}

int cgroup_apply_limits(int cgfd, unsigned controllers, const JobLimits *l, char *err, size_t err_size) {
        char v[128];
        int r;

#define NEED(bit, name)                                                                                   \
        do {                                                                                              \
                if (!(controllers & (bit))) {                                                             \
                        snprintf(err, err_size, "the %s controller is not available for jobs on this host", \
                                 name);                                                                   \
                        return -EOPNOTSUPP;                                                               \
                }                                                                                         \
        } while (0)
#define WRITE(file, value)                                                                   \
        do {                                                                                 \
                r = write_file_at(cgfd, file, value);                                        \
                if (r == -ENOENT) { /* the controller went away under us */                 \
                        snprintf(err, err_size, "the %.*s controller is not available for jobs on this host", \
                                 (int) strcspn(file, "."), file);                            \
                        return -EOPNOTSUPP;                                                  \
                }                                                                            \
                if (r < 0) {                                                                 \
                        snprintf(err, err_size, "cannot set %s to '%s': %s", file, value,     \
                                 strerror(-r));                                              \
                        return r;                                                            \
                }                                                                            \
        } while (0)

        if (l->cpu_millis > 0) {
                NEED(CGROUP_CTRL_CPU, "cpu");
                /* quota per 100 ms period: 1000 millis = 100000 us */
                snprintf(v, sizeof(v), "%" PRIu64 " 100000", (uint64_t) l->cpu_millis * 100);
                WRITE("cpu.max", v);
        }
        if (l->memory_max > 0) {
                NEED(CGROUP_CTRL_MEMORY, "memory");
                snprintf(v, sizeof(v), "%" PRIu64, l->memory_max);
                WRITE("memory.max", v);
                /* Without swap 0 a memory limit would just move the job to swap. */
                r = write_file_at(cgfd, "memory.swap.max", "0");
                if (r < 0 && r != -ENOENT) {
                        snprintf(err, err_size, "cannot set memory.swap.max to 0: %s", strerror(-r));
                        return r;
                }
        }
        if (l->pids_max > 0) {
                NEED(CGROUP_CTRL_PIDS, "pids");
                snprintf(v, sizeof(v), "%" PRIu64, l->pids_max);
                WRITE("pids.max", v);
        }
        for (size_t i = 0; i < l->n_io; i++) {
                char rb[32] = "max", wb[32] = "max";
                NEED(CGROUP_CTRL_IO, "io");
                if (l->io[i].read_bps)
                        snprintf(rb, sizeof(rb), "%" PRIu64, l->io[i].read_bps);
                if (l->io[i].write_bps)
                        snprintf(wb, sizeof(wb), "%" PRIu64, l->io[i].write_bps);
                snprintf(v, sizeof(v), "%u:%u rbps=%s wbps=%s", l->io[i].major, l->io[i].minor, rb, wb);
                WRITE("io.max", v);
        }
#undef NEED
#undef WRITE
        return 0;
}

int cgroup_kill(int cgfd) {
        char buf[65536];
        int r = write_file_at(cgfd, "cgroup.kill", "1");
        if (r != -ENOENT)
                return r;
        /* Before 5.14: kill what is listed; a fork racing with us shows up
         * in the next cgroup.events change and is killed then. */
        r = read_file_at(cgfd, "cgroup.procs", buf, sizeof(buf));
        if (r < 0)
                return r;
        for (char *t = strtok(buf, "\n"); t; t = strtok(NULL, "\n"))
                (void) kill((pid_t) atoi(t), SIGKILL);
        return 0;
}

int cgroup_populated(int cgfd) {
        char buf[256];
        uint64_t v;
        int r = read_file_at(cgfd, "cgroup.events", buf, sizeof(buf));
        if (r < 0)
                return r;
        if (keyed_value(buf, "populated", &v) < 0)
                return -EBADMSG;
        return v != 0;
}

void cgroup_read_stats(int cgfd, JobStatus *st) {
        char buf[4096];
        uint64_t v;

        if (read_file_at(cgfd, "cpu.stat", buf, sizeof(buf)) > 0 && keyed_value(buf, "usage_usec", &v) >= 0)
                st->cpu_usec = v;
        if (read_file_at(cgfd, "memory.peak", buf, sizeof(buf)) > 0)
                st->memory_peak = strtoull(buf, NULL, 10);
        else if (read_file_at(cgfd, "memory.current", buf, sizeof(buf)) > 0)
                st->memory_peak = MAX(st->memory_peak, strtoull(buf, NULL, 10));
        if (read_file_at(cgfd, "memory.events", buf, sizeof(buf)) > 0 && keyed_value(buf, "oom_kill", &v) >= 0)
                st->oom_kills = v;
}

int cgroup_wait_empty(int cgfd, unsigned timeout_ms) {
        /* For teardown paths only (the engine waits through the ring):
         * SIGKILLed processes are gone within milliseconds. */
        for (unsigned waited = 0; waited < timeout_ms; waited += 5) {
                int r = cgroup_populated(cgfd);
                if (r <= 0)
                        return r;
                usleep(5000);
        }
        return -ETIMEDOUT;
}

int cgroup_cleanup_leftovers(int rootfd, bool (*keep)(void *userdata, const char *name), void *userdata,
                             unsigned *ret_n) {
        struct dirent *de;
        unsigned n = 0;
        DIR *d = opendir_dup(rootfd);

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, "job-", 4) != 0 || (keep && keep(userdata, de->d_name)))
                        continue;
                int cg = openat(rootfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (cg < 0)
                        continue;
                (void) cgroup_kill(cg);
                (void) cgroup_wait_empty(cg, 1000);
                safe_close(cg);
                if (unlinkat(rootfd, de->d_name, AT_REMOVEDIR) >= 0)
                        n++;
        }
        closedir(d);
        *ret_n = n;
        return 0;
}

int cgroup_events_populated(int events_fd) {
        char buf[256];
        uint64_t v;
        ssize_t k;

        /* Reading through the watched fd also re-arms its POLLPRI. */
        if (lseek(events_fd, 0, SEEK_SET) < 0)
                return -errno;
        k = read(events_fd, buf, sizeof(buf) - 1);
        if (k < 0)
                return -errno;
        buf[k] = 0;
        if (keyed_value(buf, "populated", &v) < 0)
                return -EBADMSG;
        return v != 0;
}

/* Freezing, for signalling every process of a job (job-signal.c) ------------- */

int cgroup_set_frozen(int cgfd, bool frozen) {
        return write_file_at(cgfd, "cgroup.freeze", frozen ? "1" : "0");
}

static int events_frozen(int events_fd) {
        char buf[256];
        uint64_t v;
        ssize_t k = pread(events_fd, buf, sizeof(buf) - 1, 0);

        if (k < 0)
                return -errno;
        buf[k] = 0;
        if (keyed_value(buf, "frozen", &v) < 0)
                return -EOPNOTSUPP; /* no freezer (before 5.2) */
        return v != 0;
}

int cgroup_frozen(int cgfd) {
        _cleanup_close_ int fd = openat(cgfd, "cgroup.events", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return -errno;
        return events_frozen(fd);
}

int cgroup_wait_frozen(int cgfd, unsigned timeout_ms) {
        _cleanup_close_ int fd = openat(cgfd, "cgroup.events", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        uint64_t until;

        if (fd < 0)
                return -errno;
        until = now_usec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * 1000;
        for (;;) {
                /* Read before polling: a change before the first poll is
                 * not lost, and the read re-arms POLLPRI. */
                int r = events_frozen(fd);
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                struct pollfd p = { .fd = fd, .events = POLLPRI };

                if (r != 0)
                        return r < 0 ? r : 0;
                if (now >= until)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) ((until - now + 999) / 1000)) < 0 && errno != EINTR)
                        return -errno;
        }
}

int cgroup_signal_procs(int cgfd, int sig, unsigned *ret_n) {
        _cleanup_close_ int fd = openat(cgfd, "cgroup.procs", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_fclose_ FILE *f = NULL;
        unsigned n = 0;
        int pid;

        if (fd < 0)
                return -errno;
        f = fdopen(fd, "re");
        if (!f)
                return -errno;
        (void) TAKE_FD(fd);
        /* One pid per line; the list may be longer than any fixed buffer. */
        while (fscanf(f, "%d", &pid) == 1)
                if (pid > 0 && kill(pid, sig) >= 0)
                        n++;
        if (ferror(f))
                return -EIO;
        if (ret_n)
                *ret_n = n;
        return 0;
}
