/* SPDX-License-Identifier: MIT */

/*
 * Engine benchmarks, each beside its floor in the same process:
 *   spawn    engine_start_job + exit of /bin/true, vs clone3(PIDFD)+exec+waitid
 *   capture  a job writing N bytes to stdout into its output log, vs a
 *            plain C reader of the same writer through a 1 MiB pipe; then
 *            warm (page cache written and freed just before) beside the
 *            file floor: the same reader writing what it reads to a file
 * Prints one line per figure: name value baseline ratio (min-max of runs).
 *
 * usage: bench-engine WRITER [capture-bytes] [spawn-count] [runs]
 * WRITER is tests' jw-testprog (its "zeros N" mode writes 1 MiB at a time).
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/engine.h"
#include "bench-util.h"

extern char **environ;

static double median(double *v, int n) {
        qsort(v, (size_t) n, sizeof(double), cmp_d);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Floors ------------------------------------------------------------------ */

static double floor_spawn(int count) {
        char *argv[] = { "/bin/true", NULL };
        double t0 = now();
        for (int i = 0; i < count; i++) {
                int pidfd = -1;
                struct clone_args a = { .flags = CLONE_PIDFD | CLONE_VFORK, .pidfd = (uint64_t) (uintptr_t) &pidfd, .exit_signal = SIGCHLD };
                long pid = syscall(SYS_clone3, &a, sizeof(a));
                if (pid == 0) {
                        execve(argv[0], argv, environ);
                        _exit(127);
                }
                siginfo_t si;
                waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED);
                close(pidfd);
        }
        return (double) count / (now() - t0); /* spawns per second */
}

/* out_fd >= 0: what is read is also written there (the file floor: the
 * least a reader that keeps the bytes in a file does). */
static double floor_pipe(const char *writer, uint64_t bytes, int out_fd) {
        static char buf[1 << 20];
        char n[32];
        int p[2];
        pid_t pid;
        posix_spawn_file_actions_t fa;
        uint64_t got = 0;

        snprintf(n, sizeof(n), "%llu", (unsigned long long) bytes);
        char *argv[] = { (char *) writer, "zeros", n, NULL };
        if (pipe2(p, O_CLOEXEC) < 0)
                abort();
        fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        double t0 = now();
        if (posix_spawn(&pid, writer, &fa, NULL, argv, environ) != 0)
                abort();
        close(p[1]);
        for (;;) {
                ssize_t k = read(p[0], buf, sizeof(buf));
                if (k <= 0)
                        break;
                if (out_fd >= 0 && write(out_fd, buf, (size_t) k) != k)
                        abort();
                got += (uint64_t) k;
        }
        waitpid(pid, NULL, 0);
        double dt = now() - t0;
        close(p[0]);
        posix_spawn_file_actions_destroy(&fa);
        if (got != bytes)
                fprintf(stderr, "floor_pipe: got %llu of %llu\n", (unsigned long long) got, (unsigned long long) bytes);
        return (double) bytes / dt; /* bytes per second */
}

/* The file floor in dir, warm (see warm_page_cache()). */
static double floor_file(const char *dir, const char *writer, uint64_t bytes) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/floor-file", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                abort();
        double rate = floor_pipe(writer, bytes, fd);
        close(fd);
        unlink(path);
        return rate;
}

/* Writes bytes of page cache in dir and frees it (unlink): the next
 * allocations reuse pages the host already backs. On this VM a page the
 * guest freed long ago is reported to the host and costs a host fault on
 * its next first touch (bench/README.md, "Capture"); a warm figure shows
 * what the code costs without that. */
static void warm_page_cache(const char *dir, uint64_t bytes) {
        static char buf[1 << 20];
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/warm", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                abort();
        for (uint64_t n = 0; n < bytes; n += sizeof(buf))
                if (write(fd, buf, sizeof(buf)) != (ssize_t) sizeof(buf))
                        abort();
        close(fd);
        unlink(path);
}

/* Engine ------------------------------------------------------------------- */

static Engine *engine(char *dir, bool use_splice) {
        Engine *e;
        EngineConfig c = { .state_dir = dir, .output_cap = UINT64_MAX / 2, .retain_max_jobs = 100000, .capture_splice = use_splice };
        if (engine_new(&e, &c) < 0)
                abort();
        return e;
}

static unsigned exits;
static void on_event(Engine *e, EngineEvent ev, const JobStatus *s, void *ud) {
        if (ev == ENGINE_EVENT_EXITED)
                exits++;
}

static double engine_spawn(char *dir, int count) {
        Engine *e = engine(dir, false);
        const char *argv[] = { "/bin/true", NULL };
        JobSpec spec = { .argv = argv, .cgroup_fd = -1 };
        JobId id;

        engine_set_observer(e, on_event, NULL);
        exits = 0;
        double t0 = now();
        for (int i = 0; i < count; i++) {
                if (engine_start_job_wait(e, &spec, &id, NULL) < 0)
                        abort();
                /* One at a time, as the floor does: start, then reap. */
                while (exits < (unsigned) i + 1)
                        engine_run_once(e, UINT64_MAX);
        }
        double rate = (double) count / (now() - t0);
        engine_free(e);
        return rate;
}

static double engine_capture(char *dir, const char *writer, uint64_t bytes, bool use_splice) {
        Engine *e = engine(dir, use_splice);
        char n[32];
        JobId id;
        JobStatus s;

        snprintf(n, sizeof(n), "%llu", (unsigned long long) bytes);
        const char *argv[] = { writer, "zeros", n, NULL };
        JobSpec spec = { .argv = argv, .cgroup_fd = -1 };
        double t0 = now();
        if (engine_start_job_wait(e, &spec, &id, NULL) < 0)
                abort();
        do {
                engine_run_once(e, UINT64_MAX);
                engine_get_status(e, &id, &s);
        } while (s.state == JOB_STATE_RUNNING);
        double dt = now() - t0;
        if (s.stdout_bytes != bytes)
                fprintf(stderr, "engine_capture: logged %llu of %llu\n", (unsigned long long) s.stdout_bytes,
                        (unsigned long long) bytes);
        engine_free(e);
        return (double) bytes / dt;
}

/* One GB/s line: the median of v (sorted by median()) against base, and v's range. */
static void print_rate(const char *name, double *v, int runs, double base) {
        double m = median(v, runs);

        printf("%-34s %8.2f GB/s %8.2f GB/s %8.2f  %.2f-%.2f\n", name, m / 1e9, base / 1e9, m / base, v[0] / 1e9,
               v[runs - 1] / 1e9);
}

int main(int argc, char **argv) {
        if (argc < 2) {
                fprintf(stderr, "usage: %s WRITER [capture-bytes] [spawn-count] [runs]\n", argv[0]);
                return 2;
        }
        char *writer = writer_path(argv[1]);
        if (!writer)
                return 2;
        uint64_t bytes = argc > 2 ? strtoull(argv[2], NULL, 10) : (4ull << 30);
        int count = argc > 3 ? atoi(argv[3]) : 2000;
        int runs = argc > 4 ? atoi(argv[4]) : 3;
        double fs[16], es[16], fp[16], ep[16], eq[16], ff[16], ew[16];
        if (runs > 16)
                runs = 16;

        for (int r = 0; r < runs; r++) {
                char dir[] = "/var/tmp/jw-bench-XXXXXX";
                if (!mkdtemp(dir))
                        abort();
                fs[r] = floor_spawn(count);
                es[r] = engine_spawn(dir, count);
                fp[r] = floor_pipe(writer, bytes, -1);
                ep[r] = engine_capture(dir, writer, bytes, false);
                rm_rf(dir);
                if (!mkdtemp(strcpy(dir, "/var/tmp/jw-bench-XXXXXX")))
                        abort();
                eq[r] = engine_capture(dir, writer, bytes, true);
                rm_rf(dir);
                if (!mkdtemp(strcpy(dir, "/var/tmp/jw-bench-XXXXXX")))
                        abort();
                warm_page_cache(dir, bytes);
                ff[r] = floor_file(dir, writer, bytes);
                warm_page_cache(dir, bytes);
                ew[r] = engine_capture(dir, writer, bytes, false);
                rm_rf(dir);
        }
        double mfs = median(fs, runs), mes = median(es, runs), mfp = median(fp, runs);
        printf("%-34s %12s %12s %8s  %s\n", "figure", "value", "baseline", "ratio", "value min-max");
        printf("%-34s %10.0f/s %10.0f/s %8.2f  %.0f-%.0f\n", "engine spawn+reap /bin/true", mes, mfs, mes / mfs, es[0],
               es[runs - 1]);
        print_rate("engine capture to log (read+pwritev)", ep, runs, mfp);
        print_rate("  same with splice()", eq, runs, mfp);
        print_rate("warm capture to log (read+pwritev)", ew, runs, mfp);
        print_rate("warm file floor (read+write)", ff, runs, mfp);
        return 0;
}
