/* SPDX-License-Identifier: MIT */

/*
 * A job that writes one byte at a time (issue 13, item 4), in-process:
 *   cpu      the engine's CPU seconds (this process, all threads; the writer
 *            is a child and not counted) per MiB captured from a job doing
 *            1-byte writes flat out, and the log's size over the data's
 *   latency  how late a follower sees 8-byte writes: made 50 ms apart (a
 *            prompt, an echo: never batched) and flat out (batched)
 * The one idea: the figures a noisy job costs everybody else, measured on the
 * engine alone, so they do not depend on TLS or gRPC.
 *
 * usage: bench-tiny WRITER [bytes] [stamps]
 * WRITER is tests' jw-testprog ("drip N SEED", "stamp N GAP_US").
 * Prints key=value lines for bench/run.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/engine.h"
#include "core/job-id.h"
#include "bench-util.h"

static double cpu_self(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec +
               (double) ru.ru_stime.tv_usec / 1e6;
}

static Engine *engine(const char *dir) {
        Engine *e;
        EngineConfig c = { .state_dir = dir, .output_cap = UINT64_MAX / 2, .retain_max_jobs = 100000, .capture_splice = true };
        if (engine_new(&e, &c) < 0)
                abort();
        return e;
}

static JobId start(Engine *e, const char *const *argv) {
        JobSpec spec = { .argv = argv, .cgroup_fd = -1 };
        JobId id;
        if (engine_start_job_wait(e, &spec, &id, NULL) < 0)
                abort();
        return id;
}

static JobStatus run_until_exit(Engine *e, const JobId *id) {
        JobStatus s;
        do {
                engine_run_once(e, UINT64_MAX);
                engine_get_status(e, id, &s);
        } while (s.state == JOB_STATE_RUNNING);
        return s;
}

static void drip(const char *dir, const char *writer, uint64_t bytes) {
        Engine *e = engine(dir);
        char n[32], path[512], sid[JOB_ID_STRING_MAX];
        struct stat st;

        snprintf(n, sizeof(n), "%llu", (unsigned long long) bytes);
        const char *argv[] = { writer, "drip", n, "1", NULL };
        double c0 = cpu_self(), t0 = now();
        JobId id = start(e, argv);
        JobStatus s = run_until_exit(e, &id);
        double cpu = cpu_self() - c0, wall = now() - t0;
        snprintf(path, sizeof(path), "%s/jobs/%s/output", dir, job_id_to_string(&id, sid));
        if (stat(path, &st) < 0)
                abort();
        printf("drip_bytes=%llu logged=%llu\n", (unsigned long long) bytes, (unsigned long long) s.stdout_bytes);
        printf("drip_cpu_per_mib=%.4f\n", cpu / ((double) bytes / 1048576.0));
        printf("drip_cpu_share=%.3f\n", cpu / wall); /* of one core, while the job ran */
        printf("drip_log_ratio=%.4f\n", (double) st.st_size / (double) bytes);
        engine_free(e);
}

/* A follower that takes every stamp's age when it arrives. */
typedef struct Follow {
        Engine *e;
        SubscriberId id;
        uint8_t carry[8];
        size_t n_carry;
        double *lat;
        size_t n, max;
        bool ended;
} Follow;

static void on_chunk(void *ud, JobStream stream, uint64_t offset, const void *data, size_t size) {
        Follow *f = ud;
        const uint8_t *p = data;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now_us = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;

        for (size_t i = 0; i < size; i++) {
                f->carry[f->n_carry++] = p[i];
                if (f->n_carry < 8)
                        continue;
                uint64_t stamp;
                memcpy(&stamp, f->carry, 8);
                f->n_carry = 0;
                if (f->n < f->max)
                        f->lat[f->n++] = (double) (now_us - stamp) / 1000.0;
        }
        engine_subscriber_ready(f->e, f->id);
}

static void on_end(void *ud, const JobStatus *st) {
        ((Follow *) ud)->ended = true;
}

static void latency(const char *dir, const char *writer, const char *name, unsigned stamps, unsigned gap_us) {
        static const SubscriberOps ops = { .chunk = on_chunk, .end = on_end };
        Engine *e = engine(dir);
        char n[32], g[32];
        Follow f = { .e = e, .max = stamps };

        f.lat = calloc(stamps, sizeof(double));
        snprintf(n, sizeof(n), "%u", stamps);
        snprintf(g, sizeof(g), "%u", gap_us);
        const char *argv[] = { writer, "stamp", n, g, NULL };
        JobId id = start(e, argv);
        if (!f.lat || engine_subscribe(e, &id, JOB_STREAM_STDOUT, 0, true, &ops, &f, &f.id) < 0)
                abort();
        /* A timeout, not UINT64_MAX: the end is delivered at the start of a
         * turn (run_ready), which then waits for the ring. */
        while (!f.ended)
                engine_run_once(e, 100000);
        qsort(f.lat, f.n, sizeof(double), cmp_d);
        printf("%s_stamps=%zu\n", name, f.n);
        if (f.n > 0)
                printf("%s_ms_median=%.3f %s_ms_p99=%.3f %s_ms_max=%.3f\n", name, f.lat[f.n / 2], name,
                       f.lat[f.n * 99 / 100], name, f.lat[f.n - 1]);
        free(f.lat);
        engine_free(e);
}

int main(int argc, char **argv) {
        if (argc < 2) {
                fprintf(stderr, "usage: %s WRITER [bytes] [stamps]\n", argv[0]);
                return 2;
        }
        char *writer = writer_path(argv[1]);
        if (!writer)
                return 2;
        uint64_t bytes = argc > 2 ? strtoull(argv[2], NULL, 10) : (16ull << 20);
        unsigned stamps = argc > 3 ? (unsigned) atoi(argv[3]) : 100;
        setvbuf(stdout, NULL, _IOLBF, 0);
        char dir[] = "/var/tmp/jw-bench-tiny-XXXXXX";
        if (!mkdtemp(dir))
                abort();
        drip(dir, writer, bytes);
        latency(dir, writer, "quiet", stamps, 50000);
        latency(dir, writer, "busy", stamps * 1000, 0);
        rm_rf(dir);
        free(writer);
        return 0;
}
