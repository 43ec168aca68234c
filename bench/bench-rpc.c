/* SPDX-License-Identifier: MIT */

/*
 * The gRPC side of the benchmarks, driven by bench/run: a client built on
 * jwctl's own connection code (src/cli/client.c: GnuTLS mTLS + the pump +
 * gRPC C core), so that what it measures is the daemon, not a slow client.
 * One idea: every figure is timed on connections that are already
 * established, and the "empty" call (an unregistered method, answered
 * UNIMPLEMENTED by the daemon's gRPC layer without reaching the engine) is
 * measured with the same client on the same connection as the baseline.
 *
 * usage: bench-rpc --server H:P --cert F --key F --ca F MODE ARGS...
 *   latency N CMD...            N empty calls and N Start(CMD) on one connection, and
 *                               N local spawns of /bin/true (the spawn floor), interleaved:
 *                               p50/p99/min/max of each, in ms
 *   throughput C N CMD...       C connections (one thread each) start N jobs each; the
 *                               spawn floor's rate (one at a time) before and after
 *   follow C F JOB [HASH]       C connections x F followers read JOB's stdout to its
 *                               end; aggregate and slowest rate, hash check
 *   hold C F JOB...             C connections with F idle followers each (round-robin
 *                               over the JOBs; F = 0: idle connections), "ready" on
 *                               stdout, then hold until stdin closes; then check each
 *                               connection still answers; print errors
 *   start C N CMD...            as throughput, and print the job ids, one a line
 *   hash                        hash stdin (the sink for `jwctl logs`), print it
 *   crypto SECONDS              the crypto floor: GnuTLS AES-256-GCM encryption of
 *                               16 KiB records (one TLS record each), one core
 * Output is "key=value" words on one line, for bench/run to parse.
 */

#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/settings.h"
#include "jobworker/v1/jobworker.pb-c.h"
#include "bench-util.h"

#define EMPTY_METHOD "/jobworker.v1.JobWorker/BenchEmpty"
#define START_METHOD "/jobworker.v1.JobWorker/Start"

/* v must be sorted */
static double pct(const double *v, int n, double p) {
        int i = (int) (p * (n - 1) + 0.5);
        return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* A streaming 64-bit hash, independent of how the bytes are split: 8-byte words
 * (a carry keeps a partial word), multiply-xor-rotate. Several GB/s. */
typedef struct Hash {
        uint64_t h, bytes;
        uint8_t carry[8];
        unsigned ncarry;
} Hash;

static inline uint64_t mix(uint64_t h, uint64_t w) {
        h ^= w * 0x9E3779B97F4A7C15ull;
        h = (h << 27 | h >> 37) * 0xBF58476D1CE4E5B9ull;
        return h;
}

static void hash_init(Hash *s) {
        memset(s, 0, sizeof(*s));
        s->h = 0x243F6A8885A308D3ull;
}

static void hash_add(Hash *s, const uint8_t *p, size_t n) {
        uint64_t w, h = s->h;
        s->bytes += n;
        while (s->ncarry && n) {
                s->carry[s->ncarry++ & 7] = *p++;
                n--;
                if (s->ncarry == 8) {
                        memcpy(&w, s->carry, 8);
                        h = mix(h, w);
                        s->ncarry = 0;
                }
        }
        for (; n >= 8; p += 8, n -= 8) {
                memcpy(&w, p, 8);
                h = mix(h, w);
        }
        while (n--)
                s->carry[s->ncarry++ & 7] = *p++;
        s->h = h;
}

static uint64_t hash_final(Hash *s) {
        uint64_t w = 0, h = s->h;
        memcpy(&w, s->carry, s->ncarry);
        h = mix(h, w ^ ((uint64_t) s->ncarry << 56));
        return mix(h, s->bytes);
}

typedef struct Conn {
        CliSettings *settings;
        CliClient *client;
} Conn;

static int conn_open(CliSettings *s, CliClient **ret) {
        int exit_code = 0;
        char *error = NULL;
        int r = cli_client_connect(s, ret, &exit_code, &error);
        if (r < 0) {
                fprintf(stderr, "bench-rpc: %s\n", error ? error : strerror(-r));
                free(error);
        }
        return r;
}

/* Returns 0 when the daemon answered UNIMPLEMENTED (the expected answer). */
static int call_empty(CliClient *c) {
        Jobworker__V1__StatusRequest req = JOBWORKER__V1__STATUS_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        int r = cli_client_unary(c, EMPTY_METHOD, &req.base, &jobworker__v1__status_response__descriptor, &resp, &st);
        if (r == 0) {
                protobuf_c_message_free_unpacked(resp, NULL);
                return 0;
        }
        r = st.code == GRPC_STATUS_UNIMPLEMENTED ? 0 : -EIO;
        if (r < 0)
                fprintf(stderr, "bench-rpc: empty call: %s %s\n", cli_grpc_status_name(st.code), st.message ? st.message : "");
        cli_call_status_done(&st);
        return r;
}

static int call_start(CliClient *c, char **cmd, int ncmd, char *ret_id, size_t idlen) {
        Jobworker__V1__StartRequest req = JOBWORKER__V1__START_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        req.argv = cmd;
        req.n_argv = (size_t) ncmd;
        int r = cli_client_unary(c, START_METHOD, &req.base, &jobworker__v1__start_response__descriptor, &resp, &st);
        if (r < 0) {
                fprintf(stderr, "bench-rpc: Start: %s %s\n", cli_grpc_status_name(st.code), st.message ? st.message : "");
                cli_call_status_done(&st);
                return -EIO;
        }
        if (ret_id)
                snprintf(ret_id, idlen, "%s", ((Jobworker__V1__StartResponse *) resp)->job_id);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

/* The spawn floor, measured beside the calls (the same as bench-engine's):
 * clone3(CLONE_PIDFD|CLONE_VFORK) + exec + waitid of /bin/true. Returns seconds. */
extern char **environ;
static double spawn_floor_once(void) {
        char *argv[] = { "/bin/true", NULL };
        int pidfd = -1;
        struct clone_args a = { .flags = CLONE_PIDFD | CLONE_VFORK, .pidfd = (uint64_t) (uintptr_t) &pidfd, .exit_signal = SIGCHLD };
        double t0 = now();
        long pid = syscall(SYS_clone3, &a, sizeof(a));
        if (pid == 0) {
                execve(argv[0], argv, environ);
                _exit(127);
        }
        if (pid < 0)
                return 0;
        siginfo_t si;
        waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED);
        close(pidfd);
        return now() - t0;
}

/* latency --------------------------------------------------------------------- */

static int mode_latency(CliSettings *s, int n, char **cmd, int ncmd) {
        CliClient *c;
        double *te = calloc((size_t) n, sizeof(double)), *ts = calloc((size_t) n, sizeof(double));
        double *tf = calloc((size_t) n, sizeof(double)), *tb = calloc((size_t) n, sizeof(double));
        if (!te || !ts || !tf || !tb || conn_open(s, &c) < 0)
                return 1;
        for (int i = 0; i < 50; i++) /* warm up the connection and both paths */
                if (call_empty(c) < 0 || (i % 10 == 0 && call_start(c, cmd, ncmd, NULL, 0) < 0))
                        return 1;
        /* Interleave, so that load changes hit both the same way. */
        for (int i = 0; i < n; i++) {
                double t0 = now();
                if (call_empty(c) < 0)
                        return 1;
                double t1 = now();
                if (call_start(c, cmd, ncmd, NULL, 0) < 0)
                        return 1;
                double t2 = now();
                te[i] = (t1 - t0) * 1e3;
                ts[i] = (t2 - t1) * 1e3;
                tf[i] = spawn_floor_once() * 1e3;
                tb[i] = te[i] + tf[i]; /* the floor of a Start: an empty call plus a spawn */
        }
        qsort(te, (size_t) n, sizeof(double), cmp_d);
        qsort(ts, (size_t) n, sizeof(double), cmp_d);
        qsort(tf, (size_t) n, sizeof(double), cmp_d);
        qsort(tb, (size_t) n, sizeof(double), cmp_d);
        printf("empty_p50=%.4f empty_p99=%.4f empty_min=%.4f empty_max=%.4f "
               "start_p50=%.4f start_p99=%.4f start_min=%.4f start_max=%.4f "
               "spawn_p50=%.4f spawn_p99=%.4f floor_p50=%.4f floor_p99=%.4f\n",
               pct(te, n, .5), pct(te, n, .99), te[0], te[n - 1], pct(ts, n, .5), pct(ts, n, .99), ts[0], ts[n - 1],
               pct(tf, n, .5), pct(tf, n, .99), pct(tb, n, .5), pct(tb, n, .99));
        cli_client_free(c);
        return 0;
}

/* throughput ------------------------------------------------------------------ */

typedef struct Worker {
        CliSettings *s;
        pthread_barrier_t *barrier;
        char **cmd;
        int ncmd, n, errors;
        char (*ids)[64];
        CliClient *c;
        double t_end;
} Worker;

static void *throughput_thread(void *p) {
        Worker *w = p;
        pthread_barrier_wait(w->barrier);
        for (int i = 0; i < w->n; i++)
                if (call_start(w->c, w->cmd, w->ncmd, w->ids ? w->ids[i] : NULL, 64) < 0)
                        w->errors++;
        w->t_end = now();
        return NULL;
}

static int mode_throughput(CliSettings *s, int nc, int n, char **cmd, int ncmd, bool print_ids) {
        Worker *w = calloc((size_t) nc, sizeof(Worker));
        pthread_t *th = calloc((size_t) nc, sizeof(pthread_t));
        pthread_barrier_t b;
        int errors = 0;
        double t_end = 0;

        /* The spawn floor's rate, one at a time, right before and after the run. */
        int nfloor = print_ids ? 0 : nc * n < 2000 ? nc * n : 2000;
        double floor_t = 0;
        for (int i = 0; i < nfloor / 2; i++)
                floor_t += spawn_floor_once();

        pthread_barrier_init(&b, NULL, (unsigned) nc + 1);
        for (int i = 0; i < nc; i++) {
                w[i] = (Worker) { .s = s, .barrier = &b, .cmd = cmd, .ncmd = ncmd, .n = n };
                if (print_ids && !(w[i].ids = calloc((size_t) n, 64)))
                        return 1;
                if (conn_open(s, &w[i].c) < 0 || call_empty(w[i].c) < 0)
                        return 1;
                pthread_create(&th[i], NULL, throughput_thread, &w[i]);
        }
        double t0 = now();
        pthread_barrier_wait(&b);
        for (int i = 0; i < nc; i++) {
                pthread_join(th[i], NULL);
                errors += w[i].errors;
                for (int j = 0; print_ids && j < n; j++)
                        if (w[i].ids[j][0])
                                printf("%s\n", w[i].ids[j]);
                if (w[i].t_end > t_end)
                        t_end = w[i].t_end;
                cli_client_free(w[i].c);
        }
        for (int i = nfloor / 2; i < nfloor; i++)
                floor_t += spawn_floor_once();
        fprintf(print_ids ? stderr : stdout, "rate=%.1f starts=%d errors=%d seconds=%.3f floor_rate=%.1f\n",
                (double) nc * n / (t_end - t0), nc * n, errors, t_end - t0, nfloor ? nfloor / floor_t : 0.0);
        return errors ? 1 : 0;
}

/* follow / hold ------------------------------------------------------------------ */

typedef struct Follower {
        CliClient *c;
        const char *job;
        pthread_barrier_t *barrier;
        atomic_int *started;
        int hold_fd;             /* hold mode: wait for EOF here instead of reading to the end */
        Hash hash;
        double t0, t1;
        int error;
        int ended_early;         /* hold mode: the stream ended while it should be idle */
        CliOutputCall *call;
} Follower;

static void *follow_thread(void *p) {
        Follower *f = p;
        Jobworker__V1__OutputRequest req = JOBWORKER__V1__OUTPUT_REQUEST__INIT;
        CliOutputItem item;
        CliCallStatus st = {};
        int r;

        hash_init(&f->hash);
        req.job_id = (char *) f->job;
        req.stream = JOBWORKER__V1__STREAM__STREAM_STDOUT;
        req.follow = 1;
        pthread_barrier_wait(f->barrier);
        f->t0 = now();
        if (cli_client_output_start(f->c, &req, &f->call) < 0) {
                f->error = 1;
                return NULL;
        }
        atomic_fetch_add(f->started, 1);
        while ((r = cli_output_call_next(f->call, &item)) > 0) {
                if (item.len > 0)
                        hash_add(&f->hash, item.data, item.len);
                if (item.message)
                        jobworker__v1__output_response__free_unpacked(item.message, NULL);
        }
        f->t1 = now();
        cli_output_call_status(f->call, &st);
        if (f->hold_fd >= 0) {
                /* Cancelled by the holder at the end: fine; anything else ended early. */
                if (st.code != GRPC_STATUS_CANCELLED)
                        f->ended_early = 1;
        } else if (r < 0 || st.code != GRPC_STATUS_OK) {
                fprintf(stderr, "bench-rpc: follower: %s %s\n", cli_grpc_status_name(st.code), st.message ? st.message : "");
                f->error = 1;
        }
        cli_call_status_done(&st);
        return NULL;
}

static int mode_follow(CliSettings *s, int nc, int nf, const char *job, const char *expect) {
        int total = nc * nf, errors = 0, mismatches = 0;
        CliClient **cs = calloc((size_t) nc, sizeof(CliClient *));
        Follower *f = calloc((size_t) total, sizeof(Follower));
        pthread_t *th = calloc((size_t) total, sizeof(pthread_t));
        pthread_barrier_t b;
        atomic_int started = 0;
        uint64_t bytes = 0, first_hash = 0;
        double t_first = 1e300, t_last = 0, slowest = 1e300;

        pthread_barrier_init(&b, NULL, (unsigned) total + 1);
        for (int i = 0; i < nc; i++)
                if (conn_open(s, &cs[i]) < 0 || call_empty(cs[i]) < 0)
                        return 1;
        for (int i = 0; i < total; i++) {
                f[i] = (Follower) { .c = cs[i % nc], .job = job, .barrier = &b, .started = &started, .hold_fd = -1 };
                pthread_attr_t a;
                pthread_attr_init(&a);
                pthread_attr_setstacksize(&a, 256 << 10);
                if (pthread_create(&th[i], &a, follow_thread, &f[i]) != 0)
                        return 1;
                pthread_attr_destroy(&a);
        }
        pthread_barrier_wait(&b);
        for (int i = 0; i < total; i++) {
                pthread_join(th[i], NULL);
                uint64_t h = hash_final(&f[i].hash);
                if (i == 0)
                        first_hash = h;
                if (f[i].error)
                        errors++;
                char hex[17];
                snprintf(hex, sizeof(hex), "%016llx", (unsigned long long) h);
                if (expect ? strcmp(hex, expect) != 0 : h != first_hash)
                        mismatches++;
                bytes += f[i].hash.bytes;
                if (f[i].t0 < t_first)
                        t_first = f[i].t0;
                if (f[i].t1 > t_last)
                        t_last = f[i].t1;
                double rate = (double) f[i].hash.bytes / (f[i].t1 - f[i].t0);
                if (rate < slowest)
                        slowest = rate;
        }
        printf("bytes=%llu seconds=%.3f aggregate=%.0f slowest=%.0f errors=%d mismatches=%d hash=%016llx\n",
               (unsigned long long) bytes, t_last - t_first, (double) bytes / (t_last - t_first), slowest, errors,
               mismatches, (unsigned long long) first_hash);
        for (int i = 0; i < nc; i++)
                cli_client_free(cs[i]);
        return errors || mismatches ? 1 : 0;
}

static int mode_hold(CliSettings *s, int nc, int nf, char **jobs, int njobs) {
        int total = nc * nf, errors = 0, early = 0;
        CliClient **cs = calloc((size_t) nc, sizeof(CliClient *));
        Follower *f = calloc((size_t) (total ? total : 1), sizeof(Follower));
        pthread_t *th = calloc((size_t) (total ? total : 1), sizeof(pthread_t));
        pthread_barrier_t b;
        atomic_int started = 0;
        char buf[64];

        for (int i = 0; i < nc; i++)
                if (conn_open(s, &cs[i]) < 0 || call_empty(cs[i]) < 0) {
                        fprintf(stderr, "bench-rpc: hold: connection %d of %d failed\n", i + 1, nc);
                        return 1;
                }
        pthread_barrier_init(&b, NULL, (unsigned) total + 1);
        for (int i = 0; i < total; i++) {
                f[i] = (Follower) { .c = cs[i % nc], .job = jobs[i % njobs], .barrier = &b, .started = &started,
                                    .hold_fd = 0 };
                pthread_attr_t a;
                pthread_attr_init(&a);
                pthread_attr_setstacksize(&a, 256 << 10);
                if (pthread_create(&th[i], &a, follow_thread, &f[i]) != 0) {
                        fprintf(stderr, "bench-rpc: hold: cannot create thread %d\n", i);
                        return 1;
                }
                pthread_attr_destroy(&a);
        }
        pthread_barrier_wait(&b);
        while (atomic_load(&started) < total)
                usleep(1000);
        /* Give the streams time to reach the daemon, then check on the connections. */
        usleep(200000);
        for (int i = 0; i < nc; i++)
                if (call_empty(cs[i]) < 0)
                        errors++;
        printf("ready connections=%d followers=%d errors=%d\n", nc, total, errors);
        fflush(stdout);
        while (read(0, buf, sizeof(buf)) > 0)
                ;
        /* Still alive? Each connection answers, no stream ended by itself. */
        for (int i = 0; i < total; i++)
                if (f[i].t1 != 0)
                        early++;
        for (int i = 0; i < nc; i++)
                if (call_empty(cs[i]) < 0)
                        errors++;
        for (int i = 0; i < total; i++)
                if (f[i].call)
                        cli_output_call_cancel(f[i].call);
        for (int i = 0; i < total; i++) {
                pthread_join(th[i], NULL);
                if (f[i].error)
                        errors++;
        }
        printf("done connections=%d followers=%d errors=%d ended_early=%d\n", nc, total, errors, early);
        for (int i = 0; i < nc; i++)
                cli_client_free(cs[i]);
        return errors || early ? 1 : 0;
}

static int mode_hash(void) {
        static uint8_t buf[1 << 20];
        Hash h;
        ssize_t k;
        hash_init(&h);
        double t0 = now();
        while ((k = read(0, buf, sizeof(buf))) > 0)
                hash_add(&h, buf, (size_t) k);
        double dt = now() - t0;
        printf("bytes=%llu hash=%016llx rate=%.0f\n", (unsigned long long) h.bytes, (unsigned long long) hash_final(&h),
               (double) h.bytes / dt);
        return k < 0;
}

static int mode_crypto(double seconds) {
        static uint8_t key_data[32], nonce[12], in[16384], out[16384 + 16];
        gnutls_datum_t key = { key_data, sizeof(key_data) };
        gnutls_aead_cipher_hd_t h;
        uint64_t bytes = 0;

        if (gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &key) < 0)
                return 1;
        double t0 = now(), t;
        do {
                for (int i = 0; i < 256; i++) {
                        size_t len = sizeof(out);
                        nonce[0]++;
                        if (gnutls_aead_cipher_encrypt(h, nonce, sizeof(nonce), NULL, 0, 16, in, sizeof(in), out, &len) < 0)
                                return 1;
                        bytes += sizeof(in);
                }
                t = now();
        } while (t - t0 < seconds);
        gnutls_aead_cipher_deinit(h);
        printf("rate=%.0f\n", (double) bytes / (t - t0));
        return 0;
}

static int usage(void) {
        fprintf(stderr, "usage: bench-rpc --server H:P --cert F --key F --ca F latency|throughput|start|follow|hold|hash|crypto ARGS...\n");
        return 2;
}

int main(int argc, char **argv) {
        CliSettings s = { .timeout_usec = 60 * 1000000ull };
        int i = 1;

        for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
                if (strcmp(argv[i], "--server") == 0)
                        s.server = argv[i + 1];
                else if (strcmp(argv[i], "--cert") == 0)
                        s.cert = argv[i + 1];
                else if (strcmp(argv[i], "--key") == 0)
                        s.key = argv[i + 1];
                else if (strcmp(argv[i], "--ca") == 0)
                        s.ca = argv[i + 1];
                else
                        return usage();
        }
        if (i >= argc)
                return usage();
        const char *mode = argv[i++];
        if (strcmp(mode, "hash") == 0)
                return mode_hash();
        if (strcmp(mode, "crypto") == 0)
                return mode_crypto(i < argc ? atof(argv[i]) : 1.0);
        if (!s.server || !s.cert || !s.key || !s.ca)
                return usage();
        char *error = NULL;
        if (cli_split_host_port(s.server, &s.host, &s.port, &error) < 0) {
                fprintf(stderr, "bench-rpc: %s\n", error);
                return 2;
        }
        /* Many connections and followers: raise the soft fd limit to the hard one. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        grpc_init();
        int r = 2;
        if (strcmp(mode, "latency") == 0 && argc - i >= 2)
                r = mode_latency(&s, atoi(argv[i]), argv + i + 1, argc - i - 1);
        else if (strcmp(mode, "throughput") == 0 && argc - i >= 3)
                r = mode_throughput(&s, atoi(argv[i]), atoi(argv[i + 1]), argv + i + 2, argc - i - 2, false);
        else if (strcmp(mode, "start") == 0 && argc - i >= 3)
                r = mode_throughput(&s, atoi(argv[i]), atoi(argv[i + 1]), argv + i + 2, argc - i - 2, true);
        else if (strcmp(mode, "follow") == 0 && argc - i >= 3)
                r = mode_follow(&s, atoi(argv[i]), atoi(argv[i + 1]), argv[i + 2], argc - i > 3 ? argv[i + 3] : NULL);
        else if (strcmp(mode, "hold") == 0 && argc - i >= 2)
                r = mode_hold(&s, atoi(argv[i]), atoi(argv[i + 1]), argv + i + 2, argc - i - 2);
        else
                return usage();
        fflush(stdout);
        /* Skip grpc_shutdown(): with many channels it can take long; the process ends here. */
        _exit(r);
}
