/* SPDX-License-Identifier: MIT */
/*
 * The output of many hosts on one stdout and stderr (see fanout-output.h).
 *
 * The one idea: a host's bytes are cut into whole lines per (host, stream)
 * before anything is written, and each line goes out in one write() with
 * its prefix, so lines of different hosts never mix; only a line longer
 * than FANOUT_LINE_MAX, or a last line without its newline, is written
 * unfinished. --group-output holds each host's bytes instead (memory up to
 * a bound, then an unlinked temporary file) and folds identical outputs.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/fanout-output.h"
#include "cli/format.h"
#include "shared/macro.h"
#include "shared/utf8.h"

typedef struct Pending {
        uint8_t *buf;         /* FANOUT_LINE_MAX bytes, allocated on first use */
        size_t len;
        uint64_t offset;      /* of buf[0] in the host's output */
} Pending;

typedef struct Held {
        uint8_t *mem;
        size_t mem_len;
        int spill_fd;         /* -1 until memory is full */
        uint64_t total;
        uint64_t hash;        /* FNV-1a of every byte */
} Held;

typedef struct HostOut {
        const char *name;
        uint64_t received;    /* bytes of both streams so far */
        Pending pending[_FANOUT_STREAM_MAX];
        Held held[_FANOUT_STREAM_MAX];
        bool printed;
} HostOut;

/* Lines of one call are gathered and written together: one write() per
 * read of a host's pipe rather than one per line. */
#define BATCH_MAX (256 * 1024)

typedef struct Batch {
        uint8_t *buf;
        size_t len, size;
} Batch;

struct FanoutOutput {
        FanoutMode mode;
        Batch batch[_FANOUT_STREAM_MAX];
        int fd[_FANOUT_STREAM_MAX];
        unsigned color;      /* bit per stream */
        size_t width;
        HostOut *hosts;
        size_t n;
};

static int write_all(int fd, const void *p, size_t n) {
        const uint8_t *b = p;

        while (n > 0) {
                ssize_t k = write(fd, b, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                b += k;
                n -= (size_t) k;
        }
        return 0;
}

static int flush(FanoutOutput *o) {
        int r = 0;

        for (int s = 0; s < _FANOUT_STREAM_MAX; s++) {
                Batch *b = &o->batch[s];
                if (b->len > 0 && r >= 0)
                        r = write_all(o->fd[s], b->buf, b->len);
                b->len = 0;
        }
        return r;
}

/* Adds to stream s's batch (flushed by the caller, or here when full). */
static int emit(FanoutOutput *o, FanoutStream s, const void *p, size_t n) {
        Batch *b = &o->batch[s];

        if (b->len + n > BATCH_MAX) {
                int r = flush(o);
                if (r < 0)
                        return r;
                if (n > BATCH_MAX)
                        return write_all(o->fd[s], p, n);
        }
        if (b->len + n > b->size) {
                size_t size = MAX(b->len + n, MIN((size_t) BATCH_MAX, MAX(b->size * 2, (size_t) 4096)));
                uint8_t *m = realloc(b->buf, size);
                if (!m)
                        return -ENOMEM;
                b->buf = m;
                b->size = size;
        }
        memcpy(b->buf + b->len, p, n);
        b->len += n;
        return 0;
}

int fanout_output_new(FanoutMode mode, const char *const *names, size_t n, int out_fd, int err_fd, unsigned color,
                      FanoutOutput **ret) {
        FanoutOutput *o = calloc(1, sizeof(*o));

        if (!o)
                return -ENOMEM;
        o->hosts = calloc(n ?: 1, sizeof(HostOut));
        if (!o->hosts) {
                free(o);
                return -ENOMEM;
        }
        o->mode = mode;
        o->fd[FANOUT_STDOUT] = out_fd;
        o->fd[FANOUT_STDERR] = err_fd;
        o->color = color;
        o->n = n;
        for (size_t i = 0; i < n; i++) {
                o->hosts[i].name = names[i];
                o->width = MAX(o->width, strlen(names[i]));
                for (int s = 0; s < _FANOUT_STREAM_MAX; s++) {
                        o->hosts[i].held[s].spill_fd = -1;
                        o->hosts[i].held[s].hash = 0xcbf29ce484222325ULL;
                }
        }
        *ret = o;
        return 0;
}

FanoutOutput *fanout_output_free(FanoutOutput *o) {
        if (!o)
                return NULL;
        for (size_t i = 0; i < o->n; i++)
                for (int s = 0; s < _FANOUT_STREAM_MAX; s++) {
                        free(o->hosts[i].pending[s].buf);
                        free(o->hosts[i].held[s].mem);
                        safe_close(o->hosts[i].held[s].spill_fd);
                }
        free(o->hosts);
        free(o->batch[0].buf);
        free(o->batch[1].buf);
        free(o);
        return NULL;
}

static void base64_write(FILE *f, const uint8_t *d, size_t n) {
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) d[i] << 16 | (i + 1 < n ? (uint32_t) d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
                fputc(t[(v >> 18) & 63], f);
                fputc(t[(v >> 12) & 63], f);
                fputc(i + 1 < n ? t[(v >> 6) & 63] : '=', f);
                fputc(i + 2 < n ? t[v & 63] : '=', f);
        }
}

static bool valid_utf8(const uint8_t *d, size_t n) {
        for (size_t i = 0; i < n;) {
                size_t k = utf8_char_len(d + i, n - i);
                if (k == 0)
                        return false;
                i += k;
        }
        return true;
}

/* {"host":…,"stream":…,"offset":…,"data":…} or "data_base64". */
static int write_json(FanoutOutput *o, HostOut *h, FanoutStream s, uint64_t offset, const uint8_t *d, size_t n) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        int r;

        if (!f)
                return -ENOMEM;
        fputs("{\"host\":", f);
        cli_json_write_string(f, h->name, strlen(h->name));
        fprintf(f, ",\"stream\":\"%s\",\"offset\":%llu,", s == FANOUT_STDOUT ? "stdout" : "stderr", (unsigned long long) offset);
        if (valid_utf8(d, n)) {
                fputs("\"data\":", f);
                cli_json_write_string(f, (const char *) d, n);
        } else {
                fputs("\"data_base64\":\"", f);
                base64_write(f, d, n);
                fputc('"', f);
        }
        fputs("}\n", f);
        if (fclose(f) != 0)
                return -ENOMEM;
        r = emit(o, FANOUT_STDOUT, buf, len);
        return r;
}

/* One line (or piece of one) of host h, with its prefix, into the batch. */
static int write_line(FanoutOutput *o, HostOut *h, FanoutStream s, uint64_t offset, const uint8_t *d, size_t n,
                      bool add_newline) {
        char prefix[640];
        int k, pad = (int) (o->width - strlen(h->name)), r;

        if (o->mode == FANOUT_MODE_JSON)
                return write_json(o, h, s, offset, d, n);
        if (o->mode == FANOUT_MODE_RAW)
                return emit(o, s, d, n);
        if (o->color & (1u << s))
                k = snprintf(prefix, sizeof prefix, "\033[%dm%s\033[0m:%*s ", 31 + (int) ((size_t) (h - o->hosts) % 6),
                             h->name, pad, "");
        else
                k = snprintf(prefix, sizeof prefix, "%s:%*s ", h->name, pad, "");
        r = emit(o, s, prefix, (size_t) MIN(MAX(k, 0), (int) sizeof prefix - 1));
        if (r >= 0)
                r = emit(o, s, d, n);
        if (r >= 0 && add_newline)
                r = emit(o, s, "\n", 1);
        return r;
}

static int hold(Held *held, const uint8_t *d, size_t n) {
        for (size_t i = 0; i < n; i++)
                held->hash = (held->hash ^ d[i]) * 0x100000001b3ULL;
        held->total += n;
        if (held->spill_fd < 0 && held->mem_len + n <= FANOUT_GROUP_MEMORY_MAX) {
                uint8_t *m = realloc(held->mem, held->mem_len + n);
                if (!m)
                        return -ENOMEM;
                memcpy(m + held->mem_len, d, n);
                held->mem = m;
                held->mem_len += n;
                return 0;
        }
        if (held->spill_fd < 0) {
                const char *dir = getenv("TMPDIR");
                held->spill_fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
                if (held->spill_fd < 0)
                        return -errno;
        }
        return write_all(held->spill_fd, d, n);
}

void fanout_output_set_offset(FanoutOutput *o, size_t host, uint64_t offset) {
        o->hosts[host].received = offset;
}

int fanout_output_data(FanoutOutput *o, size_t host, FanoutStream s, const uint8_t *d, size_t n) {
        HostOut *h = &o->hosts[host];
        Pending *p = &h->pending[s];
        int r;

        if (o->mode == FANOUT_MODE_GROUP) {
                h->received += n;
                return hold(&h->held[s], d, n);
        }
        if (!p->buf && !(p->buf = malloc(FANOUT_LINE_MAX)))
                return -ENOMEM;
        while (n > 0) {
                const uint8_t *nl = memchr(d, '\n', n);
                size_t take = nl ? (size_t) (nl - d) + 1 : n;

                if (p->len == 0)
                        p->offset = h->received;
                take = MIN(take, FANOUT_LINE_MAX - p->len);
                memcpy(p->buf + p->len, d, take);
                p->len += take;
                h->received += take;
                d += take;
                n -= take;
                if (p->buf[p->len - 1] == '\n' || p->len == FANOUT_LINE_MAX) {
                        bool whole = p->buf[p->len - 1] == '\n';
                        /* The prefix modes show the newline themselves; a cut line gets one. */
                        if (o->mode == FANOUT_MODE_PREFIX)
                                r = write_line(o, h, s, p->offset, p->buf, p->len - whole, true);
                        else
                                r = write_line(o, h, s, p->offset, p->buf, p->len, false);
                        p->len = 0;
                        if (r < 0)
                                return r;
                }
        }
        return flush(o);
}

int fanout_output_host_end(FanoutOutput *o, size_t host) {
        HostOut *h = &o->hosts[host];

        for (int s = 0; s < _FANOUT_STREAM_MAX; s++) {
                Pending *p = &h->pending[s];
                int r;

                if (p->len == 0)
                        continue;
                r = write_line(o, h, (FanoutStream) s, p->offset, p->buf, p->len, o->mode == FANOUT_MODE_PREFIX);
                p->len = 0;
                if (r < 0)
                        return r;
        }
        return flush(o);
}

static int print_held(FanoutOutput *o, Held *held, int fd) {
        uint8_t buf[64 * 1024];
        uint64_t at = 0;
        int r = write_all(fd, held->mem, held->mem_len);

        if (r < 0 || held->spill_fd < 0)
                return r;
        for (;;) {
                ssize_t k = pread(held->spill_fd, buf, sizeof buf, (off_t) at);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                r = write_all(fd, buf, (size_t) k);
                if (r < 0)
                        return r;
                at += (uint64_t) k;
        }
}

static bool same_output(const HostOut *a, const HostOut *b) {
        for (int s = 0; s < _FANOUT_STREAM_MAX; s++)
                if (a->held[s].total != b->held[s].total || a->held[s].hash != b->held[s].hash)
                        return false;
        return true;
}

/* One group of hosts with the same output: "==> web01, web02 <==" and the
 * output, stdout to stdout and stderr to stderr (each under the header). */
static int print_group(FanoutOutput *o, size_t first) {
        _cleanup_free_ char *header = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&header, &len);
        HostOut *h = &o->hosts[first];
        int r = 0;

        if (!f)
                return -ENOMEM;
        fputs("==> ", f);
        for (size_t i = first; i < o->n; i++)
                if (!o->hosts[i].printed && same_output(h, &o->hosts[i])) {
                        fprintf(f, "%s%s", i == first ? "" : ", ", o->hosts[i].name);
                        o->hosts[i].printed = true;
                }
        fputs(" <==\n", f);
        if (fclose(f) != 0)
                return -ENOMEM;
        for (int s = 0; s < _FANOUT_STREAM_MAX && r >= 0; s++) {
                if (h->held[s].total == 0)
                        continue; /* hosts without output get no header */
                r = write_all(o->fd[s], header, len);
                if (r >= 0)
                        r = print_held(o, &h->held[s], o->fd[s]);
        }
        return r;
}

int fanout_output_finish(FanoutOutput *o) {
        if (o->mode != FANOUT_MODE_GROUP)
                return 0;
        for (size_t i = 0; i < o->n; i++)
                if (!o->hosts[i].printed) {
                        int r = print_group(o, i);
                        if (r < 0)
                                return r;
                }
        return 0;
}
