/* SPDX-License-Identifier: MIT */

/* The job engine, end to end: real processes, real pipes, real log files. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/engine.h"
#include "../helpers/engine-test-util.h"
#include "../helpers/testdata.h"

#define MiB (1024ull * 1024)

/* AddressSanitizer keeps freed memory in quarantine: RSS says nothing there
 * (the leak checker covers that build instead). */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_CHECKS 0
#else
#define RSS_CHECKS 1
#endif
#define MIN(a, b) ((a) < (b) ? (a) : (b))

static const char *testprog;

/* Helpers --------------------------------------------------------------------- */

static Engine *engine_at(const char *dir, uint64_t cap, unsigned retain) {
        return engine_new_ok(&(EngineConfig){ .state_dir = dir, .output_cap = cap, .retain_max_jobs = retain });
}

static JobStatus status_of(Engine *e, const JobId *id) {
        JobStatus s;
        assert_int_equal(engine_get_status(e, id, &s), 0);
        return s;
}

static unsigned count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static long rss_kib(void) {
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        long v = -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld", &v) == 1)
                        break;
        fclose(f);
        return v;
}

/* A subscriber that checks content against testdata and hashes the sequence. */
typedef struct Reader {
        Engine *e;
        SubscriberId id;
        uint64_t seed;
        uint64_t got[3];        /* per stream */
        uint64_t view;          /* next expected view offset */
        uint64_t hash;
        unsigned chunks;
        bool ended;
        bool bad;
        bool stall;             /* never ask for more */
        bool check_data;
        bool buffered;          /* gives the engine its buffers (SubscriberOps.buffer) */
        uint8_t *buf;           /* the one handed out, until its chunk or its return */
        unsigned buffers_used, buffers_returned;
        size_t buffer_max;      /* the largest buffer asked for */
        char *text;             /* non-NULL: the bytes are kept here (text_size bytes, NUL-terminated), not checked */
        size_t text_size;
        JobStream last_stream;
        uint64_t base_out;      /* stdout offset of the first byte (for offset tests) */
        JobStatus end;
} Reader;

static void reader_chunk(void *ud, JobStream stream, uint64_t offset, const void *data, size_t size) {
        Reader *r = ud;
        const uint8_t *p = data;

        if (offset != r->view || size == 0 || size > ENGINE_CHUNK_MAX)
                r->bad = true;
        if (r->text) {
                size_t have = strlen(r->text);
                if (have + size >= r->text_size)
                        r->bad = true;
                else {
                        memcpy(r->text + have, p, size);
                        r->text[have + size] = 0;
                }
        } else if (r->check_data) {
                uint64_t seed = stream == JOB_STREAM_STDOUT ? r->seed : r->seed + 1;
                uint64_t at = r->got[stream] + (stream == JOB_STREAM_STDOUT ? r->base_out : 0);
                if (!testdata_check(seed, at, p, size))
                        r->bad = true;
        } else {
                for (size_t i = 0; i < size; i++)
                        if (p[i] != 0) {
                                r->bad = true;
                                break;
                        }
        }
        /* FNV-1a over the bytes and every change of stream: the
         * interleaving is part of the hash, the chunking is not. */
        if (stream != r->last_stream)
                r->hash = (r->hash ^ (0x100u + (uint64_t) stream)) * 0x100000001b3ull;
        r->last_stream = stream;
        for (size_t i = 0; i < size; i++)
                r->hash = (r->hash ^ p[i]) * 0x100000001b3ull;
        r->got[stream] += size;
        r->view += size;
        r->chunks++;
        if (r->buf && p == r->buf) { /* read into our buffer: ours again */
                r->buffers_used++;
                free(r->buf);
                r->buf = NULL;
        } else if (r->buf)
                r->bad = true; /* a buffer asked for and then neither used nor returned */
        if (!r->stall)
                assert_int_equal(engine_subscriber_ready(r->e, r->id), 0);
}

static void reader_end(void *ud, const JobStatus *st) {
        Reader *r = ud;
        r->ended = true;
        r->end = *st;
}

static void *reader_buffer(void *ud, size_t size) {
        Reader *r = ud;

        if (size == 0) {
                if (!r->buf)
                        r->bad = true;
                r->buffers_returned++;
                free(r->buf);
                r->buf = NULL;
                return NULL;
        }
        if (r->buf)
                r->bad = true; /* asked twice without a chunk or a return between */
        if (size > r->buffer_max)
                r->buffer_max = size;
        free(r->buf);
        r->buf = malloc(size);
        assert_non_null(r->buf);
        memset(r->buf, 0xa5, size); /* a byte the engine did not write shows */
        return r->buf;
}

static const SubscriberOps reader_ops = { .chunk = reader_chunk, .end = reader_end };
static const SubscriberOps reader_buffered_ops = { .chunk = reader_chunk, .end = reader_end, .buffer = reader_buffer };

static void reader_subscribe(Engine *e, Reader *r, const JobId *id, unsigned streams, uint64_t offset, bool follow) {
        r->e = e;
        r->hash = 0xcbf29ce484222325ull;
        r->view = offset;
        assert_int_equal(engine_subscribe(e, id, streams, offset, follow, r->buffered ? &reader_buffered_ops : &reader_ops,
                                          r, &r->id),
                         0);
}

static void run_until_ended(Engine *e, Reader *r, unsigned timeout_ms) {
        uint64_t until = mono_ms() + timeout_ms;
        while (!r->ended) {
                if (mono_ms() > until)
                        fail_msg("subscriber did not end within %u ms", timeout_ms);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
}

/* Tests ----------------------------------------------------------------------- */

static void test_exact_bytes_three_subscribers(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        const uint64_t n_out = 256 * MiB, n_err = 8 * MiB, seed = 42;
        char a_out[32], a_err[32], a_seed[32];
        Reader a = { .seed = seed, .check_data = true }, b = a, c = a, d = a;

        snprintf(a_out, sizeof(a_out), "%llu", (unsigned long long) n_out);
        snprintf(a_err, sizeof(a_err), "%llu", (unsigned long long) n_err);
        snprintf(a_seed, sizeof(a_seed), "%llu", (unsigned long long) seed);
        const char *argv[] = { testprog, "write", a_out, a_err, a_seed, NULL };
        JobId id = start_job_ok(e, argv);

        /* a: from the start, subscribed before any output was read. */
        reader_subscribe(e, &a, &id, JOB_STREAMS_ALL, 0, true);
        /* d: stdout only, from an offset. */
        d.base_out = 12345;
        reader_subscribe(e, &d, &id, JOB_STREAM_STDOUT, 12345, true);

        /* b: joins when about 100 MiB have been captured. */
        uint64_t until = mono_ms() + 120000;
        while (status_of(e, &id).stdout_bytes < 100 * MiB) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        assert_int_equal(status_of(e, &id).state, JOB_STATE_RUNNING);
        reader_subscribe(e, &b, &id, JOB_STREAMS_ALL, 0, true);

        JobStatus s = wait_job(e, &id, 120000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 0);
        assert_int_equal(s.stdout_bytes, n_out);
        assert_int_equal(s.stderr_bytes, n_err);
        assert_false(s.truncated);

        /* c: after the exit. */
        reader_subscribe(e, &c, &id, JOB_STREAMS_ALL, 0, true);

        run_until_ended(e, &a, 120000);
        run_until_ended(e, &b, 120000);
        run_until_ended(e, &c, 120000);
        run_until_ended(e, &d, 120000);

        Reader *all[] = { &a, &b, &c };
        for (size_t i = 0; i < 3; i++) {
                assert_false(all[i]->bad);
                assert_int_equal(all[i]->got[JOB_STREAM_STDOUT], n_out);
                assert_int_equal(all[i]->got[JOB_STREAM_STDERR], n_err);
                assert_int_equal(all[i]->end.state, JOB_STATE_EXITED);
                assert_int_equal(all[i]->end.exit_code, 0);
                assert_int_equal(all[i]->hash, a.hash);
                /* Coalesced: far fewer chunks than 1 MiB pieces would allow. */
                assert_true(all[i]->chunks < (n_out + n_err) / 4096);
        }
        assert_false(d.bad);
        assert_int_equal(d.got[JOB_STREAM_STDOUT], n_out - 12345);
        assert_int_equal(d.got[JOB_STREAM_STDERR], 0);

        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_stalled_subscriber_holds_nothing(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 2048 * MiB, 0);
        Reader stalled = { .stall = true }, reader = {};
        const char *argv[] = { testprog, "zeros", "1073741824", NULL };

        JobId id = start_job_ok(e, argv);
        reader_subscribe(e, &stalled, &id, JOB_STREAMS_ALL, 0, true);
        reader_subscribe(e, &reader, &id, JOB_STREAMS_ALL, 0, true);

        /* Let the first chunks flow, then take the baseline. */
        uint64_t until = mono_ms() + 60000;
        while (reader.view < 16 * MiB) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        long rss0 = rss_kib();

        JobStatus s = wait_job(e, &id, 180000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 0);
        assert_int_equal(s.stdout_bytes, 1024 * MiB);
        run_until_ended(e, &reader, 180000);
        long rss1 = rss_kib();

        assert_false(reader.bad);
        assert_int_equal(reader.got[JOB_STREAM_STDOUT], 1024 * MiB);
        assert_int_equal(stalled.chunks, 1);
        assert_false(stalled.ended);
        /* Memory stayed flat while 1 GiB went through the engine. */
        print_message("RSS %ld KiB -> %ld KiB\n", rss0, rss1);
        if (RSS_CHECKS)
                assert_true(rss1 - rss0 < 16 * 1024);

        assert_int_equal(engine_unsubscribe(e, stalled.id), 0);
        assert_int_equal(engine_unsubscribe(e, stalled.id), -ENOENT);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_exit_codes_and_signals(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        const char *codes[] = { "0", "1", "255" };

        for (size_t i = 0; i < 3; i++) {
                const char *argv[] = { testprog, "exit", codes[i], NULL };
                JobId id = start_job_ok(e, argv);
                JobStatus s = wait_job(e, &id, 10000);
                assert_int_equal(s.state, JOB_STATE_EXITED);
                assert_int_equal(s.exit_code, atoi(codes[i]));
                assert_false(s.stop_requested);
                assert_true(s.end_usec >= s.start_usec);
                assert_true(s.pid > 0);
                assert_string_equal(s.owner, "tester");
        }
        const char *sigs[] = { "9", "15", "11" };
        for (size_t i = 0; i < 3; i++) {
                const char *argv[] = { testprog, "signal", sigs[i], NULL };
                JobId id = start_job_ok(e, argv);
                JobStatus s = wait_job(e, &id, 10000);
                assert_int_equal(s.state, JOB_STATE_KILLED);
                assert_int_equal(s.signal, atoi(sigs[i]));
        }
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_start_errors(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        JobStartError err;
        JobId id;

        const char *missing[] = { "/nonexistent/program", NULL };
        JobSpec spec = { .argv = missing, .cgroup_fd = -1 };
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -ENOENT);
        assert_int_equal(err.stage, JOB_START_STAGE_EXEC);
        assert_non_null(strstr(err.message, "/nonexistent/program"));

        const char *nopath[] = { "no-such-command-jw", NULL };
        spec.argv = nopath;
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -ENOENT);
        assert_non_null(strstr(err.message, "searched PATH"));

        /* A file without x bits, and one with x bits that is not a program. */
        char plain[600], garbage[600];
        snprintf(plain, sizeof(plain), "%s/plain", dir);
        snprintf(garbage, sizeof(garbage), "%s/garbage", dir);
        FILE *f = fopen(plain, "w");
        fputs("hello\n", f);
        fclose(f);
        f = fopen(garbage, "w");
        fputs("\x01\x02\x03 not an executable\n", f);
        fclose(f);
        chmod(plain, 0644);
        chmod(garbage, 0755);
        const char *noexec[] = { plain, NULL };
        spec.argv = noexec;
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -EACCES);
        assert_int_equal(err.stage, JOB_START_STAGE_EXEC);
        assert_non_null(strstr(err.message, "Permission denied"));
        const char *badformat[] = { garbage, NULL };
        spec.argv = badformat;
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -ENOEXEC);
        assert_non_null(strstr(err.message, garbage));

        const char *ok[] = { "true", NULL };
        spec.argv = ok;
        spec.cwd = "/nonexistent-dir";
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -ENOENT);
        assert_int_equal(err.stage, JOB_START_STAGE_CHDIR);
        assert_non_null(strstr(err.message, "/nonexistent-dir"));
        spec.cwd = "relative";
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -EINVAL);
        spec.cwd = NULL;

        const char *empty[] = { NULL };
        spec.argv = empty;
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -EINVAL);
        const char *empty0[] = { "", NULL };
        spec.argv = empty0;
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -EINVAL);

        const char *env_bad[] = { "NOEQUALS", NULL };
        spec.argv = ok;
        spec.env = env_bad;
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -EINVAL);
        spec.env = NULL;

        /* Over the argument count limit. */
        const char **many = calloc(JOB_ARGV_MAX + 2, sizeof(char *));
        for (unsigned i = 0; i <= JOB_ARGV_MAX; i++)
                many[i] = "x";
        spec.argv = many;
        assert_int_equal(engine_start_job_wait(e, &spec, &id, &err), -E2BIG);
        assert_non_null(strstr(err.message, "limit"));
        free(many);

        /* Nothing was left behind. */
        size_t n;
        JobStatus *v;
        assert_int_equal(engine_list(e, NULL, &v, &n), 0);
        assert_int_equal(n, 0);
        free(v);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_stop_kills_stubborn_group(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        const char *argv[] = { testprog, "stubborn", NULL };
        char out[GRAB_MAX + 1] = "";
        SubscriberOps ops = { .chunk = grab_chunk };
        SubscriberId sid;

        JobId id = start_job_ok(e, argv);
        assert_int_equal(engine_subscribe(e, &id, JOB_STREAM_STDOUT, 0, true, &ops, out, &sid), 0);
        uint64_t until = mono_ms() + 10000;
        while (!strchr(out, '\n')) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        pid_t child = (pid_t) atoi(out);
        assert_true(child > 0);
        assert_false(pid_gone(child));

        uint64_t t0 = mono_ms();
        assert_int_equal(engine_stop_job(e, &id, 300000), 0);
        JobStatus s = wait_job(e, &id, 10000);
        uint64_t took = mono_ms() - t0;
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_int_equal(s.signal, SIGKILL);
        assert_true(s.stop_requested);
        assert_true(took >= 250); /* it ignored SIGTERM: the grace ran out */

        until = mono_ms() + 5000;
        while (!pid_gone(child)) {
                assert_true(mono_ms() < until);
                usleep(10000);
        }
        assert_int_equal(engine_stop_job(e, &id, 0), -ESRCH);
        JobId unknown;
        assert_int_equal(job_id_generate(&unknown), 0);
        assert_int_equal(engine_stop_job(e, &unknown, 0), -ENOENT);
        assert_int_equal(engine_get_status(e, &unknown, &s), -ENOENT);
        engine_unsubscribe(e, sid);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_stop_polite_job(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        const char *argv[] = { "sleep", "60", NULL };

        JobId id = start_job_ok(e, argv);
        assert_int_equal(engine_stop_job(e, &id, 10 * 1000000), 0);
        JobStatus s = wait_job(e, &id, 5000);
        assert_int_equal(s.state, JOB_STATE_KILLED);
        assert_int_equal(s.signal, SIGTERM);
        assert_true(s.stop_requested);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_output_cap(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 1 * MiB, 0);
        const char *argv[] = { testprog, "zeros", "10485760", NULL };
        Reader r = {};

        JobId id = start_job_ok(e, argv);
        JobStatus s = wait_job(e, &id, 30000);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 0); /* not blocked, not killed */
        assert_true(s.truncated);
        assert_int_equal(s.stdout_bytes, 1 * MiB);
        assert_int_equal(s.dropped_bytes, 9 * MiB);

        reader_subscribe(e, &r, &id, JOB_STREAMS_ALL, 0, false);
        run_until_ended(e, &r, 10000);
        assert_false(r.bad);
        assert_int_equal(r.got[JOB_STREAM_STDOUT], 1 * MiB);
        assert_true(r.end.truncated);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static unsigned exited_events;
static void count_exits(Engine *e, EngineEvent ev, const JobStatus *s, void *ud) {
        if (ev == ENGINE_EVENT_EXITED)
                exited_events++;
}

static unsigned count_dir(const char *path) {
        DIR *d = opendir(path);
        unsigned n = 0;
        struct dirent *de;
        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* Retention removes job directories in the ring's kernel workers: wait
 * (bounded, turning the engine) until `path` holds `want` entries. */
static unsigned wait_dir_count(Engine *e, const char *path, unsigned want) {
        uint64_t until = mono_ms() + 10000;
        unsigned n;

        while ((n = count_dir(path)) != want && mono_ms() < until)
                assert_int_equal(engine_run_once(e, 10000), 0);
        return n;
}

static void test_thousand_jobs_no_leak(void **state) {
        char *dir = make_state_dir("engine"), jobs[512];
        Engine *e = engine_at(dir, 0, 100);
        const char *argv[] = { testprog, "exit", "3", NULL };
        JobId ids[1000];

        /* Warm up allocator and ring so the baseline is fair. */
        JobId w = start_job_ok(e, argv);
        wait_job(e, &w, 10000);
        unsigned fds0 = count_fds();
        long rss0 = rss_kib();

        exited_events = 0;
        engine_set_observer(e, count_exits, NULL);
        for (int i = 0; i < 1000; i++)
                ids[i] = start_job_ok(e, argv);
        uint64_t until = mono_ms() + 120000;
        while (exited_events < 1000) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        EngineCounts c;
        engine_get_counts(e, &c);
        assert_int_equal(c.running, 0);
        assert_int_equal(c.finished, 100);
        /* The last ones are kept (retention drops the oldest). */
        JobStatus s;
        assert_int_equal(engine_get_status(e, &ids[999], &s), 0);
        assert_int_equal(s.exit_code, 3);
        assert_int_equal(engine_get_status(e, &ids[0], &s), -ENOENT);

        snprintf(jobs, sizeof(jobs), "%s/jobs", dir);
        assert_int_equal(wait_dir_count(e, jobs, 100), 100);
        assert_int_equal(count_fds(), fds0);
        long rss1 = rss_kib();
        print_message("RSS %ld KiB -> %ld KiB after 1000 jobs\n", rss0, rss1);
        if (RSS_CHECKS)
                assert_true(rss1 - rss0 < 4 * 1024);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* The direct path (subscriber.c): a caught-up follower with a buffer gets
 * the job's pipe read straight into it. Beside each other, all byte-exact
 * and in the same order: stdout only, stderr only, both, both but lagging
 * (it asks for more only once per loop turn, so it falls behind and reads
 * the log back), and one without a buffer (always the log). Every buffer
 * handed out comes back in a chunk or is returned; the direct path was
 * taken. Then an output cap: a direct chunk carries only what the log
 * kept. */
static void test_direct_path_followers_exact(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        const uint64_t n_out = 48 * MiB, n_err = 3 * MiB, seed = 9;
        Reader out = { .seed = seed, .check_data = true, .buffered = true }, err = out, both = out, lag = out, plain = out;
        const char *argv[] = { testprog, "write", "50331648", "3145728", "9", NULL };
        EngineCounts c;

        lag.stall = true;
        plain.buffered = false;
        JobId id = start_job_ok(e, argv);
        reader_subscribe(e, &out, &id, JOB_STREAM_STDOUT, 0, true);
        reader_subscribe(e, &err, &id, JOB_STREAM_STDERR, 0, true);
        reader_subscribe(e, &both, &id, JOB_STREAMS_ALL, 0, true);
        reader_subscribe(e, &lag, &id, JOB_STREAMS_ALL, 0, true);
        reader_subscribe(e, &plain, &id, JOB_STREAMS_ALL, 0, true);

        uint64_t until = mono_ms() + 120000;
        while (!out.ended || !err.ended || !both.ended || !lag.ended || !plain.ended) {
                if (mono_ms() > until)
                        fail_msg("followers did not end within 120 s");
                assert_int_equal(engine_run_once(e, 100000), 0);
                if (!lag.ended)
                        (void) engine_subscriber_ready(e, lag.id);
        }
        Reader *all[] = { &out, &err, &both, &lag, &plain };
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                assert_false(all[i]->bad);
                assert_null(all[i]->buf);
                assert_int_equal(all[i]->end.state, JOB_STATE_EXITED);
        }
        assert_int_equal(out.got[JOB_STREAM_STDOUT], n_out);
        assert_int_equal(out.got[JOB_STREAM_STDERR], 0);
        assert_int_equal(err.got[JOB_STREAM_STDERR], n_err);
        assert_int_equal(err.got[JOB_STREAM_STDOUT], 0);
        assert_int_equal(both.got[JOB_STREAM_STDOUT], n_out);
        assert_int_equal(both.got[JOB_STREAM_STDERR], n_err);
        assert_int_equal(lag.got[JOB_STREAM_STDOUT] + lag.got[JOB_STREAM_STDERR], n_out + n_err);
        assert_int_equal(plain.got[JOB_STREAM_STDOUT] + plain.got[JOB_STREAM_STDERR], n_out + n_err);
        /* The interleaving too: the same sequence of stream changes and bytes. */
        assert_true(both.hash == plain.hash);
        assert_true(lag.hash == plain.hash);
        assert_int_equal(plain.buffers_used + plain.buffers_returned, 0);
        engine_get_counts(e, &c);
        assert_true(c.chunks_direct > 0);
        assert_true(out.buffers_used > 0);
        engine_free(e);

        /* A cap of 5 MiB + 1: the job writes on, the log and every follower stop at the cap. */
        const uint64_t cap = 5 * MiB + 1;
        Reader capped = { .seed = seed, .check_data = true, .buffered = true };
        e = engine_at(dir, cap, 0);
        id = start_job_ok(e, argv);
        reader_subscribe(e, &capped, &id, JOB_STREAMS_ALL, 0, true);
        run_until_ended(e, &capped, 120000);
        assert_false(capped.bad);
        assert_null(capped.buf);
        assert_true(capped.end.truncated);
        assert_int_equal(capped.got[JOB_STREAM_STDOUT] + capped.got[JOB_STREAM_STDERR], cap);
        assert_int_equal(capped.end.stdout_bytes + capped.end.stderr_bytes, cap);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A job printing a line now and then to a caught-up follower: each line
 * comes by the direct path in a buffer the size of what the pipe held, not
 * a whole chunk's (256 KiB held per line otherwise). */
static void test_direct_path_lines_get_small_buffers(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        const char *argv[] = { "/bin/sh", "-c", "for i in 1 2 3 4 5 6; do echo line$i; sleep 0.05; done", NULL };
        char got[256] = "", out[GRAB_MAX + 1] = "";
        Reader r = { .buffered = true, .text = got, .text_size = sizeof(got) };

        JobId id = start_job_ok(e, argv);
        r.e = e;
        r.hash = 0xcbf29ce484222325ull;
        assert_int_equal(engine_subscribe(e, &id, JOB_STREAM_STDOUT, 0, true, &reader_buffered_ops, &r, &r.id), 0);
        run_until_ended(e, &r, 20000);
        assert_false(r.bad);
        assert_null(r.buf);
        assert_string_equal(got, "line1\nline2\nline3\nline4\nline5\nline6\n");
        assert_true(r.buffers_used > 0);       /* lines came by the direct path */
        assert_true(r.buffer_max <= 4096);     /* sized by what the pipe held */
        grab_finished_stdout(e, &id, out); /* and the log holds the same */
        assert_string_equal(out, got);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_restart_keeps_finished_jobs(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        const char *argv[] = { testprog, "write", "3000000", "50000", "7", NULL };
        Reader r1 = { .seed = 7, .check_data = true }, r2 = r1;

        JobId id = start_job_ok(e, argv);
        wait_job(e, &id, 30000);
        reader_subscribe(e, &r1, &id, JOB_STREAMS_ALL, 0, false);
        run_until_ended(e, &r1, 10000);
        engine_free(e);

        e = engine_at(dir, 0, 0);
        JobStatus s = status_of(e, &id);
        assert_int_equal(s.state, JOB_STATE_EXITED);
        assert_int_equal(s.exit_code, 0);
        assert_int_equal(s.stdout_bytes, 3000000);
        assert_int_equal(s.stderr_bytes, 50000);
        assert_string_equal(s.owner, "tester");
        assert_non_null(strstr(s.command, "write 3000000"));
        reader_subscribe(e, &r2, &id, JOB_STREAMS_ALL, 0, true);
        run_until_ended(e, &r2, 10000);
        assert_false(r2.bad);
        assert_int_equal(r2.hash, r1.hash);
        assert_int_equal(r2.got[JOB_STREAM_STDOUT], 3000000);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_running_job_of_dead_engine_is_lost(void **state) {
        char *dir = make_state_dir("engine");
        const char *argv[] = { "sleep", "30", NULL };
        /* A daemon that dies with a job running. */
        pid_t job_pid = start_job_and_die(&(EngineConfig){ .state_dir = dir }, argv, 0, NULL);

        Engine *e = engine_at(dir, 0, 0);
        JobStatus *v;
        size_t n;
        assert_int_equal(engine_list(e, "ghost", &v, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(v[0].state, JOB_STATE_LOST);
        assert_int_equal(v[0].pid, job_pid);
        /* Its process outlived the daemon (no cgroup): still stoppable
         * (issue 13, item 10; it was -ESRCH, the process unreachable). */
        assert_true(v[0].process_alive);
        assert_int_equal(engine_stop_job(e, &v[0].id, 0), 0);
        uint64_t until = mono_ms() + 10000;
        while (!pid_gone(job_pid)) {
                if (mono_ms() > until)
                        fail_msg("the lost job's process did not end within 10 s");
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        free(v);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_job_hygiene(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        char out[GRAB_MAX + 1];
        sigset_t block, old;

        /* Things of the daemon's that must not reach a job. */
        setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
        signal(SIGPIPE, SIG_IGN);
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigprocmask(SIG_BLOCK, &block, &old);
        int leak = open("/dev/null", O_RDONLY); /* no CLOEXEC on purpose */
        assert_true(leak > 2);

        struct { const char *mode; } runs[] = { { "env" }, { "fds" }, { "sigmask" } };
        for (size_t i = 0; i < 3; i++) {
                const char *argv[] = { testprog, runs[i].mode, NULL };
                const char *env[] = { "FOO=bar baz", "LANG=de_DE.UTF-8", NULL };
                JobSpec spec = { .argv = argv, .env = env, .cgroup_fd = -1 };
                JobId id;
                assert_int_equal(engine_start_job_wait(e, &spec, &id, NULL), 0);
                wait_job(e, &id, 10000);
                grab_finished_stdout(e, &id, out);
                if (i == 0) {
                        assert_non_null(strstr(out, "FOO=bar baz\n"));
                        assert_non_null(strstr(out, "PATH=/usr/local/sbin"));
                        assert_non_null(strstr(out, "LANG=de_DE.UTF-8\n"));
                        assert_null(strstr(out, "LANG=C.UTF-8"));
                        assert_null(strstr(out, "NOTIFY_SOCKET"));
                } else if (i == 1)
                        assert_string_equal(out, "0\n1\n2\n");
                else {
                        assert_non_null(strstr(out, "SigBlk:\t0000000000000000"));
                        assert_non_null(strstr(out, "SigIgn:\t0000000000000000"));
                }
        }
        close(leak);
        sigprocmask(SIG_SETMASK, &old, NULL);
        signal(SIGPIPE, SIG_DFL);
        unsetenv("NOTIFY_SOCKET");
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_offset_past_end_and_nonfollow(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        const char *argv[] = { testprog, "write", "5000000", "0", "9", NULL };
        Reader late = { .seed = 9, .check_data = true, .base_out = 4000000 };

        JobId id = start_job_ok(e, argv);
        /* Subscribe from 4 MB before (probably) any of it exists. */
        reader_subscribe(e, &late, &id, JOB_STREAM_STDOUT, 4000000, true);
        run_until_ended(e, &late, 30000);
        assert_false(late.bad);
        assert_int_equal(late.got[JOB_STREAM_STDOUT], 1000000);

        /* A non-follow read of a finished job stops at the end. */
        Reader once = { .seed = 9, .check_data = true };
        reader_subscribe(e, &once, &id, JOB_STREAMS_ALL, 0, false);
        run_until_ended(e, &once, 30000);
        assert_int_equal(once.got[JOB_STREAM_STDOUT], 5000000);
        /* Beyond the end: ends at once with nothing. */
        Reader past = {};
        reader_subscribe(e, &past, &id, JOB_STREAMS_ALL, 9999999, false);
        run_until_ended(e, &past, 30000);
        assert_int_equal(past.chunks, 0);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void test_retention_by_age(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = NULL;
        EngineConfig c = { .state_dir = dir, .retain_max_age_usec = 1 };
        const char *argv[] = { "true", NULL };
        JobStatus s;

        assert_int_equal(engine_new(&e, &c), 0);
        JobId id = start_job_ok(e, argv);
        /* It goes once it has ended and aged (here at once). */
        uint64_t until = mono_ms() + 5000;
        while (engine_get_status(e, &id, &s) == 0) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 100000), 0);
        }
        char jobs[512];
        snprintf(jobs, sizeof(jobs), "%s/jobs", dir);
        assert_int_equal(wait_dir_count(e, jobs, 0), 0);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

typedef struct PostCtx {
        int ran;
} PostCtx;

static void posted(Engine *e, void *ud) {
        PostCtx *p = ud;
        p->ran++;
}

static void *poster(void *ud) {
        Engine *e = ((void **) ud)[0];
        PostCtx *p = ((void **) ud)[1];
        for (int i = 0; i < 1000; i++)
                assert_int_equal(engine_post(e, posted, p), 0);
        engine_wake_stop(e);
        return NULL;
}

static void test_post_from_other_thread(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        PostCtx p = {};
        void *args[2] = { e, &p };
        pthread_t t;

        assert_int_equal(pthread_create(&t, NULL, poster, args), 0);
        assert_int_equal(engine_run(e), 0);
        pthread_join(t, NULL);
        /* engine_run() may return before the last posts were run. */
        uint64_t until = mono_ms() + 10000;
        while (p.ran < 1000) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 10000), 0);
        }
        assert_int_equal(p.ran, 1000);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A closure posted to an engine that is freed before it runs is told NULL
 * (engine_post()'s promise): its owner may be gone by then. The daemon
 * frees its gRPC server before its engine, and an Output stream's "chunk
 * sent" closure posted by the server's last completions used to run in
 * engine_free() with the engine, reading the freed server. */
typedef struct LateCtx {
        int with_engine, without;
} LateCtx;

static void late_posted(Engine *e, void *ud) {
        LateCtx *l = ud;
        if (e)
                l->with_engine++;
        else
                l->without++;
}

static void test_post_after_loop_told_null_at_free(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        LateCtx l = {};

        /* The loop has ended (engine_run() returned), then posts come. */
        assert_int_equal(engine_post(e, late_posted, &l), 0);
        assert_int_equal(engine_post(e, late_posted, &l), 0);
        engine_free(e);
        assert_int_equal(l.with_engine, 0);
        assert_int_equal(l.without, 2);
        rm_rf(dir);
        free(dir);
}

/* A start whose result was posted back before engine_free() (the spawn
 * done, the loop no longer running) is still the engine's to undo: its
 * done is told once, with NULL and an error, and its process is killed. */
typedef struct FreeStart {
        int calls, r;
        bool with_engine;
} FreeStart;

static void free_start_done(Engine *e, int r, const JobId *id, const JobStartError *error, void *ud) {
        FreeStart *f = ud;
        f->calls++;
        f->r = r;
        f->with_engine = e != NULL;
}

static void test_start_posted_before_free_is_undone(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        char marker[512];
        const char *argv[] = { "sh", "-c", "sleep 0.5; touch \"$0\"", marker, NULL };
        JobSpec spec = { .argv = argv, .cgroup_fd = -1 };
        FreeStart f = {};
        struct stat st;

        snprintf(marker, sizeof(marker), "%s/ran", dir);
        assert_int_equal(engine_start_job(e, &spec, free_start_done, &f), 0);
        /* The spawn thread finishes and posts its result; nobody runs it. */
        usleep(200 * 1000);
        engine_free(e);
        assert_int_equal(f.calls, 1);
        assert_false(f.with_engine);
        assert_true(f.r < 0);
        /* Killed: it never got to touch its file. */
        usleep(700 * 1000);
        assert_int_equal(stat(marker, &st), -1);
        rm_rf(dir);
        free(dir);
}

static void run_capture(Engine *e, const char *const *argv, unsigned isolate, char *out, JobStatus *ret) {
        JobSpec spec = { .argv = argv, .cgroup_fd = -1, .isolate = isolate };
        JobStartError err;
        JobId id;
        int r = engine_start_job_wait(e, &spec, &id, &err);
        if (r < 0)
                fail_msg("start: %s", err.message);
        *ret = wait_job(e, &id, 10000);
        grab_finished_stdout(e, &id, out);
}

static void test_isolation(void **state) {
        if (geteuid() != 0) {
                print_message("namespaces need root here; skipped\n");
                skip();
        }
        char *dir = make_state_dir("engine"), out[GRAB_MAX + 1], host[GRAB_MAX + 1], path[64];
        Engine *e = engine_at(dir, 0, 0);
        const char *who[] = { testprog, "whoami", NULL };
        JobStatus s;

        run_capture(e, who, 0, host, &s);
        run_capture(e, who, JOB_ISOLATE_PID, out, &s);
        assert_int_equal(s.exit_code, 0);
        assert_non_null(strstr(out, "pid=1 "));
        assert_true(s.pid > 1); /* the host's view of it */

        run_capture(e, who, JOB_ISOLATE_NET, out, &s);
        assert_non_null(strstr(out, "netdevs=1\n")); /* only lo */
        const char *sysnet[] = { "ls", "/sys/class/net", NULL };
        run_capture(e, sysnet, JOB_ISOLATE_NET, out, &s);
        assert_string_equal(out, "lo\n"); /* sysfs of its own namespace */
        assert_non_null(strstr(host, "netdevs=")); /* (the host has whatever it has) */

        snprintf(path, sizeof(path), "/tmp/jw-isolated-%d", (int) getpid());
        /* Not jw-testprog: it may itself live under the /tmp being hidden. */
        char script[128];
        snprintf(script, sizeof(script), ": > %s && echo ok", path);
        const char *touch[] = { "/bin/sh", "-c", script, NULL };
        run_capture(e, touch, JOB_ISOLATE_TMP, out, &s);
        assert_string_equal(out, "ok\n");
        assert_int_equal(access(path, F_OK), -1); /* it went to the private /tmp */
        run_capture(e, touch, 0, out, &s);
        assert_int_equal(access(path, F_OK), 0);
        unlink(path);

        JobSpec bad = { .argv = who, .cgroup_fd = -1, .isolate = 1u << 7 };
        JobStartError err;
        JobId id;
        assert_int_equal(engine_start_job_wait(e, &bad, &id, &err), -EINVAL);
        assert_int_equal(err.stage, JOB_START_STAGE_ISOLATION);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* The splice() capture path (not the default) keeps the bytes exact too. */
static void test_splice_capture(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = NULL;
        EngineConfig c = { .state_dir = dir, .capture_splice = true };
        const char *argv[] = { testprog, "write", "20000000", "1000000", "5", NULL };
        Reader r = { .seed = 5, .check_data = true };

        assert_int_equal(engine_new(&e, &c), 0);
        JobId id = start_job_ok(e, argv);
        reader_subscribe(e, &r, &id, JOB_STREAMS_ALL, 0, true);
        run_until_ended(e, &r, 60000);
        assert_false(r.bad);
        assert_int_equal(r.got[JOB_STREAM_STDOUT], 20000000);
        assert_int_equal(r.got[JOB_STREAM_STDERR], 1000000);
        assert_int_equal(r.end.exit_code, 0);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

/* A quiet running job costs the engine three fds: its pidfd and two pipes
 * (the log is opened on first output). */
static void test_fds_per_running_job(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        const char *argv[] = { "sleep", "30", NULL };
        JobId ids[10];

        unsigned before = count_fds();
        for (int i = 0; i < 10; i++)
                ids[i] = start_job_ok(e, argv);
        assert_int_equal(count_fds() - before, 30);
        assert_int_equal(engine_stop_all(e, 0), 10);
        for (int i = 0; i < 10; i++)
                assert_int_equal(wait_job(e, &ids[i], 5000).signal, SIGKILL);
        assert_int_equal(count_fds(), before);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

static void tick(Engine *e, void *ud) {
        (*(int *) ud)++;
}

/* Turns the engine until *counter is at least 1 (bounded). */
static void run_until_ticked(Engine *e, const int *counter) {
        uint64_t until = mono_ms() + 10000;
        while (*counter < 1) {
                assert_true(mono_ms() < until);
                assert_int_equal(engine_run_once(e, 20000), 0);
        }
}

/* What must not fire is checked once a later sentinel timer fired: timers
 * fire in the order they expire, so by then the earlier one would have.
 * (A stretch of wall time instead fails when the test is descheduled.) */
static void test_timers(void **state) {
        char *dir = make_state_dir("engine");
        Engine *e = engine_at(dir, 0, 0);
        EngineTimer *a, *b, *sentinel;
        int na = 0, nb = 0, ns = 0;

        assert_int_equal(engine_timer_new(e, tick, &na, &a), 0);
        assert_int_equal(engine_timer_new(e, tick, &nb, &b), 0);
        assert_int_equal(engine_timer_new(e, tick, &ns, &sentinel), 0);
        assert_int_equal(engine_timer_arm(e, a, 20000), 0);
        assert_int_equal(engine_timer_arm(e, a, 60000), 0); /* replaces the 20 ms one */
        assert_int_equal(engine_timer_arm(e, b, 30000), 0);
        engine_timer_disarm(e, b);
        assert_true(engine_timer_armed(e, a));
        assert_false(engine_timer_armed(e, b));
        assert_int_equal(engine_timer_arm(e, sentinel, 100000), 0);
        run_until_ticked(e, &ns);
        assert_int_equal(na, 1);
        assert_int_equal(nb, 0);
        assert_false(engine_timer_armed(e, a));
        /* Freed while armed: never fires. */
        assert_int_equal(engine_timer_arm(e, b, 10000), 0);
        b = engine_timer_free(e, b);
        ns = 0;
        assert_int_equal(engine_timer_arm(e, sentinel, 40000), 0);
        run_until_ticked(e, &ns);
        assert_int_equal(nb, 0);
        engine_timer_free(e, sentinel);
        engine_timer_free(e, a);
        engine_free(e);
        rm_rf(dir);
        free(dir);
}

int main(void) {
        testprog = getenv("JW_TESTPROG");
        if (!testprog) {
                fprintf(stderr, "JW_TESTPROG is not set (run through meson test)\n");
                return 77;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exit_codes_and_signals),
                cmocka_unit_test(test_start_errors),
                cmocka_unit_test(test_job_hygiene),
                cmocka_unit_test(test_stop_polite_job),
                cmocka_unit_test(test_stop_kills_stubborn_group),
                cmocka_unit_test(test_output_cap),
                cmocka_unit_test(test_offset_past_end_and_nonfollow),
                cmocka_unit_test(test_restart_keeps_finished_jobs),
                cmocka_unit_test(test_running_job_of_dead_engine_is_lost),
                cmocka_unit_test(test_retention_by_age),
                cmocka_unit_test(test_post_from_other_thread),
                cmocka_unit_test(test_timers),
                cmocka_unit_test(test_splice_capture),
                cmocka_unit_test(test_fds_per_running_job),
                cmocka_unit_test(test_isolation),
                cmocka_unit_test(test_thousand_jobs_no_leak),
                cmocka_unit_test(test_post_after_loop_told_null_at_free),
                cmocka_unit_test(test_start_posted_before_free_is_undone),
                cmocka_unit_test(test_exact_bytes_three_subscribers),
                cmocka_unit_test(test_direct_path_followers_exact),
                cmocka_unit_test(test_direct_path_lines_get_small_buffers),
                cmocka_unit_test(test_stalled_subscriber_holds_nothing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
