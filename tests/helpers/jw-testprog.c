/* SPDX-License-Identifier: MIT */

/*
 * A job for the tests to run, with behaviours that are awkward to get from a
 * shell reliably:
 *   write N_OUT N_ERR SEED   N_OUT bytes to stdout and N_ERR to stderr,
 *                            interleaved in uneven writes, both from
 *                            testdata_byte() (tests/helpers/testdata.h)
 *   zeros N                  N zero bytes to stdout in 1 MiB writes
 *   drip N SEED [GAP_MS]     N bytes of testdata_byte(SEED) to stdout, one
 *                            write() per byte, GAP_MS apart (default: flat out)
 *   stamp N GAP_US           N CLOCK_MONOTONIC stamps (8 bytes, usec) to
 *                            stdout, one write each, GAP_US apart
 *   exit CODE                exit with CODE
 *   signal SIG               kill itself with SIG
 *   stubborn                 ignore SIGTERM, fork a child (same process
 *                            group) that ignores it too, print the child's
 *                            pid on stdout, sleep
 *   escape                   double-fork a setsid()ed grandchild that ignores
 *                            SIGTERM and SIGHUP, print its pid, then exit 0
 *                            (or, with "escape stay", stay and ignore SIGTERM)
 *   burn MS                  spin until it used MS milliseconds of CPU time
 *   whoami                   print "pid=P netdevs=N" (interfaces in /proc/net/dev)
 *   touch PATH               create PATH, print "ok"
 *   env                      print the environment, one entry per line
 *   fds                      print the open fds (from /proc/self/fd)
 *   sigmask                  print SigBlk and SigIgn from /proc/self/status
 */

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testdata.h"

extern char **environ;

static void write_all(int fd, const void *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k <= 0)
                        exit(99);
                p = (const char *) p + k;
                n -= (size_t) k;
        }
}

int main(int argc, char **argv) {
        if (argc >= 5 && strcmp(argv[1], "write") == 0) {
                uint64_t n_out = strtoull(argv[2], NULL, 10), n_err = strtoull(argv[3], NULL, 10);
                uint64_t seed = strtoull(argv[4], NULL, 10), o = 0, e = 0, rnd = seed * 7919 + 1;
                static uint8_t buf[300000];
                while (o < n_out || e < n_err) {
                        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
                        size_t len = 1 + (size_t) ((rnd >> 33) % sizeof(buf));
                        bool to_err = e < n_err && (o >= n_out || ((rnd >> 20) & 15) == 0);
                        if (to_err) {
                                len = len % 4096 + 1;
                                if (len > n_err - e)
                                        len = (size_t) (n_err - e);
                                testdata_fill(seed + 1, e, buf, len);
                                write_all(2, buf, len);
                                e += len;
                        } else {
                                if (len > n_out - o)
                                        len = (size_t) (n_out - o);
                                testdata_fill(seed, o, buf, len);
                                write_all(1, buf, len);
                                o += len;
                        }
                }
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "zeros") == 0) {
                static uint8_t buf[1 << 20];
                uint64_t n = strtoull(argv[2], NULL, 10);
                while (n > 0) {
                        size_t k = n < sizeof(buf) ? (size_t) n : sizeof(buf);
                        write_all(1, buf, k);
                        n -= k;
                }
                return 0;
        }
        if (argc >= 4 && strcmp(argv[1], "drip") == 0) {
                uint64_t n = strtoull(argv[2], NULL, 10), seed = strtoull(argv[3], NULL, 10);
                unsigned gap_ms = argc >= 5 ? (unsigned) atoi(argv[4]) : 0;
                for (uint64_t i = 0; i < n; i++) {
                        uint8_t b;
                        testdata_fill(seed, i, &b, 1);
                        write_all(1, &b, 1);
                        if (gap_ms > 0)
                                nanosleep(&(struct timespec) { gap_ms / 1000, (long) (gap_ms % 1000) * 1000000 }, NULL);
                }
                return 0;
        }
        if (argc >= 4 && strcmp(argv[1], "stamp") == 0) {
                uint64_t n = strtoull(argv[2], NULL, 10), gap_us = strtoull(argv[3], NULL, 10);
                for (uint64_t i = 0; i < n; i++) {
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        uint64_t us = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
                        write_all(1, &us, sizeof(us));
                        if (gap_us > 0)
                                nanosleep(&(struct timespec) { (time_t) (gap_us / 1000000), (long) (gap_us % 1000000) * 1000 }, NULL);
                }
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "exit") == 0)
                return atoi(argv[2]);
        if (argc >= 3 && strcmp(argv[1], "signal") == 0) {
                int sig = atoi(argv[2]);
                signal(sig, SIG_DFL);
                raise(sig);
                return 98;
        }
        if (argc >= 2 && strcmp(argv[1], "stubborn") == 0) {
                signal(SIGTERM, SIG_IGN);
                pid_t pid = fork();
                if (pid == 0) {
                        for (;;)
                                pause();
                }
                printf("%d\n", (int) pid);
                fflush(stdout);
                for (;;)
                        pause();
        }
        if (argc >= 2 && strcmp(argv[1], "escape") == 0) {
                int p[2];
                if (pipe(p) < 0)
                        return 97;
                signal(SIGTERM, SIG_IGN);
                if (fork() == 0) {
                        setsid();
                        if (fork() == 0) {
                                signal(SIGHUP, SIG_IGN);
                                pid_t me = getpid();
                                (void) !write(p[1], &me, sizeof(me));
                                close(p[1]);
                                close(1);
                                close(2);
                                for (;;)
                                        pause();
                        }
                        _exit(0);
                }
                pid_t gc;
                if (read(p[0], &gc, sizeof(gc)) != sizeof(gc))
                        return 96;
                printf("%d\n", (int) gc);
                fflush(stdout);
                if (argc >= 3 && strcmp(argv[2], "stay") == 0)
                        for (;;)
                                pause();
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "burn") == 0) {
                struct timespec a, b;
                long ms = atol(argv[2]);
                /* CPU time, not wall time: the same work however loaded the machine is. */
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
                do
                        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
                while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
                return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "whoami") == 0) {
                FILE *f = fopen("/proc/net/dev", "r");
                char line[512];
                int n = -2; /* two header lines */
                while (f && fgets(line, sizeof(line), f))
                        n++;
                if (f)
                        fclose(f);
                printf("pid=%d netdevs=%d\n", (int) getpid(), n);
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "touch") == 0) {
                FILE *f = fopen(argv[2], "w");
                if (!f)
                        return 1;
                fclose(f);
                printf("ok\n");
                return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "env") == 0) {
                for (char **e = environ; *e; e++)
                        printf("%s\n", *e);
                return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "fds") == 0) {
                DIR *d = opendir("/proc/self/fd");
                struct dirent *de;
                int own = dirfd(d);
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.' && atoi(de->d_name) != own)
                                printf("%s\n", de->d_name);
                closedir(d);
                return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "sigmask") == 0) {
                FILE *f = fopen("/proc/self/status", "r");
                char line[256];
                while (fgets(line, sizeof(line), f))
                        if (strncmp(line, "SigBlk:", 7) == 0 || strncmp(line, "SigIgn:", 7) == 0)
                                fputs(line, stdout);
                fclose(f);
                return 0;
        }
        fprintf(stderr, "usage: jw-testprog write|zeros|exit|signal|stubborn|env|fds|sigmask ...\n");
        return 2;
}
