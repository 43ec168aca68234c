/* SPDX-License-Identifier: MIT */
/*
 * One line of the policy file into a PolicyRule: fields, names, entity,
 * role, and the KEY=VALUE bounds with their shared size grammar.
 *
 * The one idea: a line is read on its own, knowing nothing of the others,
 * so it costs the same whatever its position in the file; whether a user's
 * lines agree with each other is checked in policy.c against a per-user
 * summary found by hash.
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy-internal.h"
#include "shared/parse-util.h"

void policy_set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        if (!ret_error)
                return;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        free(*ret_error);
        *ret_error = s;
}

void policy_quote_token(char out[static 70], const char *s, size_t n) {
        size_t i, k = 0;

        for (i = 0; i < n && k < 64; i++)
                out[k++] = (unsigned char) s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        if (i < n) {
                memcpy(out + k, "...", 3);
                k += 3;
        }
        out[k] = 0;
}

static bool valid_user(const char *s, size_t n) {
        if (n == 0 || n > POLICY_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x21 || s[i] == 0x7f)
                        return false;
        return true;
}

/* Portable user names, as useradd accepts them. */
static bool valid_account(const char *s, size_t n) {
        if (n == 0 || n > 32 || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!(isascii(c) && (isalnum(c) || c == '_' || c == '-' || c == '.')) &&
                    !(c == '$' && i == n - 1))
                        return false;
        }
        return true;
}

static bool token_is(const char *s, size_t n, const char *word) {
        return strlen(word) == n && memcmp(s, word, n) == 0;
}

typedef enum BoundKind {
        BOUND_CPU,      /* CPUs, uint32 thousandths */
        BOUND_SIZE,     /* bytes or bytes/s, uint64 */
        BOUND_COUNT,    /* a plain number, uint64 */
        BOUND_DURATION, /* usec, uint64 */
} BoundKind;

static const struct {
        const char *key;
        BoundKind kind;
        size_t offset;
} bound_keys[_POLICY_BOUND_N] = {
        [POLICY_BOUND_CPU] = { "cpu", BOUND_CPU, offsetof(LimitsBounds, cpu_millis) },
        [POLICY_BOUND_MEMORY] = { "memory", BOUND_SIZE, offsetof(LimitsBounds, memory_max) },
        [POLICY_BOUND_PIDS] = { "pids", BOUND_COUNT, offsetof(LimitsBounds, pids_max) },
        [POLICY_BOUND_IO_READ_BPS] = { "io-read-bps", BOUND_SIZE, offsetof(LimitsBounds, io_read_bps) },
        [POLICY_BOUND_IO_WRITE_BPS] = { "io-write-bps", BOUND_SIZE, offsetof(LimitsBounds, io_write_bps) },
        [POLICY_BOUND_DEFAULT_CPU] = { "default-cpu", BOUND_CPU, offsetof(LimitsBounds, default_cpu_millis) },
        [POLICY_BOUND_DEFAULT_MEMORY] = { "default-memory", BOUND_SIZE, offsetof(LimitsBounds, default_memory_max) },
        [POLICY_BOUND_DEFAULT_PIDS] = { "default-pids", BOUND_COUNT, offsetof(LimitsBounds, default_pids_max) },
        [POLICY_BOUND_MAX_JOBS] = { "max-jobs", BOUND_COUNT, offsetof(LimitsBounds, max_jobs) },
        [POLICY_BOUND_MAX_OUTPUT] = { "max-output", BOUND_SIZE, offsetof(LimitsBounds, max_output) },
        [POLICY_BOUND_MAX_RUNTIME] = { "max-runtime", BOUND_DURATION, offsetof(LimitsBounds, max_runtime) },
        [POLICY_BOUND_DEFAULT_MAX_RUNTIME] = { "default-max-runtime", BOUND_DURATION,
                                               offsetof(LimitsBounds, default_max_runtime) },
};

const char *policy_bound_key(size_t k) {
        return bound_keys[k].key;
}

uint64_t policy_bound_get(const LimitsBounds *b, size_t k) {
        const char *base = (const char *) b + bound_keys[k].offset;
        uint32_t v32;
        uint64_t v64;

        if (bound_keys[k].kind == BOUND_CPU) {
                memcpy(&v32, base, sizeof(v32));
                return v32;
        }
        memcpy(&v64, base, sizeof(v64));
        return v64;
}

void policy_bound_set(LimitsBounds *b, size_t k, uint64_t v) {
        char *base = (char *) b + bound_keys[k].offset;
        uint32_t v32 = (uint32_t) v;

        if (bound_keys[k].kind == BOUND_CPU)
                memcpy(base, &v32, sizeof(v32));
        else
                memcpy(base, &v, sizeof(v));
}

const char *policy_bound_format(size_t k, uint64_t v, char buf[static 32]) {
        switch (bound_keys[k].kind) {
        case BOUND_CPU:
                return limits_format_cpu((uint32_t) v, buf);
        case BOUND_SIZE:
                return limits_format_size(v, buf);
        case BOUND_DURATION:
                return format_duration(v, buf);
        default:
                snprintf(buf, 32, "%" PRIu64, v);
                return buf;
        }
}

/* The value of a bound of kind k, with a message naming key and line. */
static int parse_bound_value(size_t k, const char *value, const char *q, const char *origin, unsigned line,
                             uint64_t *ret, char **ret_error) {
        uint64_t v = 0;
        uint32_t cpu;
        int e;

        switch (bound_keys[k].kind) {
        case BOUND_CPU:
                e = limits_parse_cpu(value, &cpu);
                if (e >= 0 && cpu < LIMITS_CPU_MILLIS_MIN)
                        e = -ERANGE;
                if (e < 0) {
                        policy_set_error(ret_error, "%s:%u: invalid value '%s' for '%s': expected a number of CPUs from 0.01 "
                                         "to %u, like 1 or 0.5", origin, line, q, bound_keys[k].key, LIMITS_CPU_MILLIS_MAX / 1000);
                        return -EINVAL;
                }
                v = cpu;
                break;
        case BOUND_SIZE:
                e = limits_parse_size(value, &v);
                if (e < 0 || v == 0) {
                        policy_set_error(ret_error, "%s:%u: invalid value '%s' for '%s': expected a size greater than 0, "
                                         "like 512M or 2G", origin, line, q, bound_keys[k].key);
                        return -EINVAL;
                }
                break;
        case BOUND_COUNT:
                e = parse_uint64(value, &v);
                if (e < 0 || v == 0 || v > LIMITS_PIDS_MAX) {
                        policy_set_error(ret_error, "%s:%u: invalid value '%s' for '%s': expected a number from 1 to %u",
                                         origin, line, q, bound_keys[k].key, LIMITS_PIDS_MAX);
                        return -EINVAL;
                }
                break;
        case BOUND_DURATION:
                e = parse_duration(value, &v);
                if (e < 0 || v == 0 || v > LIMITS_RUNTIME_MAX_USEC) {
                        policy_set_error(ret_error, "%s:%u: invalid value '%s' for '%s': expected a duration greater "
                                         "than 0 and at most 3650d, like 30m or 2h", origin, line, q, bound_keys[k].key);
                        return -EINVAL;
                }
                break;
        }
        *ret = v;
        return 0;
}

static int parse_bound(const char *t, size_t n, PolicyRule *r, const char *origin, unsigned line, char **ret_error) {
        const char *eq = memchr(t, '=', n);
        char q[70], value[72];
        size_t klen = eq - t, vlen = n - klen - 1;
        uint64_t v;
        size_t k;
        int e;

        for (k = 0; k < _POLICY_BOUND_N; k++)
                if (token_is(t, klen, bound_keys[k].key))
                        break;
        if (k == _POLICY_BOUND_N) {
                policy_quote_token(q, t, klen);
                policy_set_error(ret_error, "%s:%u: unknown bound '%s' (expected cpu, memory, pids, io-read-bps, "
                                 "io-write-bps, default-cpu, default-memory, default-pids, max-jobs, max-output, "
                                 "max-runtime or default-max-runtime)",
                                 origin, line, q);
                return -EINVAL;
        }
        if (r->bounds_set & (1u << k)) {
                policy_set_error(ret_error, "%s:%u: '%s' is given twice", origin, line, bound_keys[k].key);
                return -EINVAL;
        }
        policy_quote_token(q, eq + 1, vlen);
        if (vlen == 0 || vlen >= sizeof(value)) {
                policy_set_error(ret_error, "%s:%u: invalid value '%s' for '%s'", origin, line, q, bound_keys[k].key);
                return -EINVAL;
        }
        memcpy(value, eq + 1, vlen);
        value[vlen] = 0;
        e = parse_bound_value(k, value, q, origin, line, &v, ret_error);
        if (e < 0)
                return e;
        policy_bound_set(&r->bounds, k, v);
        r->bounds_set |= 1u << k;
        return 0;
}

#define MAX_TOKENS 16
#define SYNTAX "USER ENTITY ROLE [RUN-AS] [KEY=VALUE...]"

/* Splits a line into at most MAX_TOKENS - 1 words before any '#'; returns
 * their number (MAX_TOKENS: too many). */
static unsigned tokenize(const char *c, const char *le, const char *tok[static MAX_TOKENS],
                         size_t tlen[static MAX_TOKENS]) {
        unsigned n = 0;

        while (c < le) {
                const char *t;

                while (c < le && (*c == ' ' || *c == '\t' || *c == '\r'))
                        c++;
                if (c >= le || *c == '#')
                        break;
                t = c;
                while (c < le && *c != ' ' && *c != '\t' && *c != '\r' && *c != '#')
                        c++;
                if (n == MAX_TOKENS - 1)
                        return MAX_TOKENS;
                tok[n] = t;
                tlen[n] = c - t;
                n++;
        }
        return n;
}

/* USER ENTITY ROLE into r (user not copied yet). */
static int parse_head(const char *const *tok, const size_t *tlen, const char *origin, unsigned line, PolicyRule *r,
                      char **ret_error) {
        char q[70];

        if (!valid_user(tok[0], tlen[0])) {
                policy_quote_token(q, tok[0], tlen[0]);
                policy_set_error(ret_error, "%s:%u: invalid user name '%s'", origin, line, q);
                return -EINVAL;
        }
        if (token_is(tok[1], tlen[1], "self"))
                r->entity = POLICY_ENTITY_SELF;
        else if (token_is(tok[1], tlen[1], "all"))
                r->entity = POLICY_ENTITY_ALL;
        else {
                policy_quote_token(q, tok[1], tlen[1]);
                policy_set_error(ret_error, "%s:%u: unknown entity '%s' (expected self or all)", origin, line, q);
                return -EINVAL;
        }
        if (token_is(tok[2], tlen[2], "task-manager"))
                r->role = POLICY_ROLE_TASK_MANAGER;
        else if (token_is(tok[2], tlen[2], "analyst"))
                r->role = POLICY_ROLE_ANALYST;
        else {
                policy_quote_token(q, tok[2], tlen[2]);
                policy_set_error(ret_error, "%s:%u: unknown role '%s' (expected task-manager or analyst)", origin, line, q);
                return -EINVAL;
        }
        return 0;
}

/* [RUN-AS] [KEY=VALUE...]: tok[3..n). *ret_has_run_as says whether tok[3]
 * is an account. */
static int parse_tail(const char *const *tok, const size_t *tlen, unsigned n, const char *origin, unsigned line,
                      PolicyRule *r, bool *ret_has_run_as, char **ret_error) {
        /* An account name never contains '=': a word with one is a bound. */
        bool has_run_as = n >= 4 && !memchr(tok[3], '=', tlen[3]);
        char q[70];

        if (has_run_as && !valid_account(tok[3], tlen[3])) {
                policy_quote_token(q, tok[3], tlen[3]);
                policy_set_error(ret_error, "%s:%u: invalid account name '%s'", origin, line, q);
                return -EINVAL;
        }
        for (unsigned i = has_run_as ? 4 : 3; i < n; i++) {
                int e;

                if (!memchr(tok[i], '=', tlen[i])) {
                        policy_quote_token(q, tok[i], tlen[i]);
                        policy_set_error(ret_error, "%s:%u: expected '" SYNTAX "', got '%s' where a KEY=VALUE bound "
                                         "belongs", origin, line, q);
                        return -EINVAL;
                }
                e = parse_bound(tok[i], tlen[i], r, origin, line, ret_error);
                if (e < 0)
                        return e;
        }
        *ret_has_run_as = has_run_as;
        return 0;
}

int policy_parse_line(const char *ls, const char *le, const char *origin, unsigned line, PolicyRule *ret,
                      char **ret_error) {
        const char *tok[MAX_TOKENS];
        size_t tlen[MAX_TOKENS];
        PolicyRule r = { .line = line };
        bool has_run_as;
        unsigned n;
        int e;

        if (memchr(ls, 0, le - ls)) {
                policy_set_error(ret_error, "%s:%u: NUL byte in line", origin, line);
                return -EINVAL;
        }
        n = tokenize(ls, le, tok, tlen);
        if (n == 0)
                return 1;
        if (n >= MAX_TOKENS) {
                policy_set_error(ret_error, "%s:%u: expected '" SYNTAX "', got more than %u fields", origin, line,
                                 MAX_TOKENS - 1);
                return -EINVAL;
        }
        if (n < 3) {
                policy_set_error(ret_error, "%s:%u: expected '" SYNTAX "', got %u field%s", origin, line, n,
                                 n == 1 ? "" : "s");
                return -EINVAL;
        }
        e = parse_head(tok, tlen, origin, line, &r, ret_error);
        if (e >= 0)
                e = parse_tail(tok, tlen, n, origin, line, &r, &has_run_as, ret_error);
        if (e < 0)
                return e;
        r.user = strndup(tok[0], tlen[0]);
        r.run_as = has_run_as ? strndup(tok[3], tlen[3]) : NULL;
        if (!r.user || (has_run_as && !r.run_as)) {
                free(r.user);
                free(r.run_as);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}
