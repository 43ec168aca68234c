/* SPDX-License-Identifier: MIT */
/*
 * The policy file: parsing, account resolution and permission lookups.
 *
 * The one idea: a Policy is immutable once built. A reload parses a new one
 * next to the old and swaps the pointer on the engine thread, so a broken
 * file never leaves a half-applied policy behind.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stddef.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"
#include "shared/parse-util.h"

const char *policy_entity_to_string(PolicyEntity e) {
        return e == POLICY_ENTITY_ALL ? "all" : "self";
}

const char *policy_role_to_string(PolicyRole r) {
        return r == POLICY_ROLE_ANALYST ? "analyst" : "task-manager";
}

static _printf_(2, 3) void set_error(char **ret_error, const char *fmt, ...) {
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

/* A token made printable for a message: at most 64 bytes, controls as '?'. */
static void quote_token(char out[static 70], const char *s, size_t n) {
        size_t i, k = 0;

        for (i = 0; i < n && k < 64; i++)
                out[k++] = (unsigned char) s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        if (i < n) {
                memcpy(out + k, "...", 3);
                k += 3;
        }
        out[k] = 0;
}

static void rule_done(PolicyRule *r) {
        free(r->user);
        free(r->run_as);
}

static void account_done(PolicyAccount *a) {
        free(a->name);
        free(a->home);
        free(a->groups);
}

Policy *policy_free(Policy *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_rules; i++)
                rule_done(&p->rules[i]);
        free(p->rules);
        for (size_t i = 0; i < p->n_accounts; i++)
                account_done(&p->accounts[i]);
        free(p->accounts);
        free(p);
        return NULL;
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

/* The KEY=VALUE words of a line: resource bounds and defaults. */
typedef enum BoundKind {
        BOUND_CPU,      /* CPUs, uint32 thousandths */
        BOUND_SIZE,     /* bytes or bytes/s, uint64 */
        BOUND_COUNT,    /* a plain number, uint64 */
} BoundKind;

static const struct {
        const char *key;
        BoundKind kind;
        size_t offset;
} bound_keys[] = {
        { "cpu", BOUND_CPU, offsetof(LimitsBounds, cpu_millis) },
        { "memory", BOUND_SIZE, offsetof(LimitsBounds, memory_max) },
        { "pids", BOUND_COUNT, offsetof(LimitsBounds, pids_max) },
        { "io-read-bps", BOUND_SIZE, offsetof(LimitsBounds, io_read_bps) },
        { "io-write-bps", BOUND_SIZE, offsetof(LimitsBounds, io_write_bps) },
        { "default-cpu", BOUND_CPU, offsetof(LimitsBounds, default_cpu_millis) },
        { "default-memory", BOUND_SIZE, offsetof(LimitsBounds, default_memory_max) },
        { "default-pids", BOUND_COUNT, offsetof(LimitsBounds, default_pids_max) },
};

static uint64_t bound_get(const LimitsBounds *b, size_t k) {
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

static void bound_set(LimitsBounds *b, size_t k, uint64_t v) {
        char *base = (char *) b + bound_keys[k].offset;
        uint32_t v32 = (uint32_t) v;

        if (bound_keys[k].kind == BOUND_CPU)
                memcpy(base, &v32, sizeof(v32));
        else
                memcpy(base, &v, sizeof(v));
}

/* The value of key k as the policy shows it, for messages. */
static const char *bound_format(size_t k, uint64_t v, char buf[static 32]) {
        switch (bound_keys[k].kind) {
        case BOUND_CPU:
                return limits_format_cpu((uint32_t) v, buf);
        case BOUND_SIZE:
                return limits_format_size(v, buf);
        default:
                snprintf(buf, 32, "%" PRIu64, v);
                return buf;
        }
}

static int parse_bound(const char *t, size_t n, PolicyRule *r, const char *origin, unsigned line, char **ret_error) {
        const char *eq = memchr(t, '=', n);
        char q[70], value[72];
        size_t klen = eq - t, vlen = n - klen - 1;
        uint64_t v = 0;
        uint32_t cpu;
        size_t k;
        int e;

        for (k = 0; k < ELEMENTSOF(bound_keys); k++)
                if (token_is(t, klen, bound_keys[k].key))
                        break;
        if (k == ELEMENTSOF(bound_keys)) {
                quote_token(q, t, klen);
                set_error(ret_error, "%s:%u: unknown bound '%s' (expected cpu, memory, pids, io-read-bps, io-write-bps, "
                          "default-cpu, default-memory or default-pids)", origin, line, q);
                return -EINVAL;
        }
        if (r->bounds_set & (1u << k)) {
                set_error(ret_error, "%s:%u: '%s' is given twice", origin, line, bound_keys[k].key);
                return -EINVAL;
        }
        quote_token(q, eq + 1, vlen);
        if (vlen == 0 || vlen >= sizeof(value)) {
                set_error(ret_error, "%s:%u: invalid value '%s' for '%s'", origin, line, q, bound_keys[k].key);
                return -EINVAL;
        }
        memcpy(value, eq + 1, vlen);
        value[vlen] = 0;

        switch (bound_keys[k].kind) {
        case BOUND_CPU:
                e = limits_parse_cpu(value, &cpu);
                if (e >= 0 && cpu < LIMITS_CPU_MILLIS_MIN)
                        e = -ERANGE;
                if (e < 0) {
                        set_error(ret_error, "%s:%u: invalid value '%s' for '%s': expected a number of CPUs from 0.01 to %u, "
                                  "like 1 or 0.5", origin, line, q, bound_keys[k].key, LIMITS_CPU_MILLIS_MAX / 1000);
                        return -EINVAL;
                }
                v = cpu;
                break;
        case BOUND_SIZE:
                e = limits_parse_size(value, &v);
                if (e < 0 || v == 0) {
                        set_error(ret_error, "%s:%u: invalid value '%s' for '%s': expected a size greater than 0, "
                                  "like 512M or 2G", origin, line, q, bound_keys[k].key);
                        return -EINVAL;
                }
                break;
        case BOUND_COUNT:
                e = parse_uint64(value, &v);
                if (e < 0 || v == 0 || v > LIMITS_PIDS_MAX) {
                        set_error(ret_error, "%s:%u: invalid value '%s' for '%s': expected a number from 1 to %u",
                                  origin, line, q, bound_keys[k].key, LIMITS_PIDS_MAX);
                        return -EINVAL;
                }
                break;
        }
        bound_set(&r->bounds, k, v);
        r->bounds_set |= 1u << k;
        return 0;
}

/* A user's lines must agree on each bound; a default must not exceed the
 * bound of the same resource. Checked when line r is added. */
static int check_bounds(const Policy *p, const PolicyRule *r, const char *origin, char **ret_error) {
        static const struct { size_t def, bound; } pairs[] = { { 5, 0 }, { 6, 1 }, { 7, 2 } };
        LimitsBounds merged = r->bounds;
        unsigned set = r->bounds_set;
        char a[32], b[32];

        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *o = &p->rules[i];

                if (strcmp(o->user, r->user) != 0)
                        continue;
                for (size_t k = 0; k < ELEMENTSOF(bound_keys); k++) {
                        if (!(o->bounds_set & (1u << k)))
                                continue;
                        if ((r->bounds_set & (1u << k)) && bound_get(&o->bounds, k) != bound_get(&r->bounds, k)) {
                                set_error(ret_error, "%s:%u: user '%s' has %s=%s on line %u and %s=%s here", origin, r->line,
                                          r->user, bound_keys[k].key, bound_format(k, bound_get(&o->bounds, k), a),
                                          o->line, bound_keys[k].key, bound_format(k, bound_get(&r->bounds, k), b));
                                return -EINVAL;
                        }
                        bound_set(&merged, k, bound_get(&o->bounds, k));
                        set |= 1u << k;
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                size_t d = pairs[i].def, m = pairs[i].bound;
                if ((set & (1u << d)) && (set & (1u << m)) && bound_get(&merged, d) > bound_get(&merged, m)) {
                        set_error(ret_error, "%s:%u: user '%s' has %s=%s above %s=%s", origin, r->line, r->user,
                                  bound_keys[d].key, bound_format(d, bound_get(&merged, d), a), bound_keys[m].key,
                                  bound_format(m, bound_get(&merged, m), b));
                        return -EINVAL;
                }
        }
        return 0;
}

#define MAX_TOKENS 16
#define SYNTAX "USER ENTITY ROLE [RUN-AS] [KEY=VALUE...]"

int policy_parse(const char *text, size_t size, const char *origin, Policy **ret, char **ret_error) {
        _cleanup_policy_ Policy *p = NULL;
        size_t allocated = 0;
        unsigned line = 0;
        const char *pos = text, *end = text + size;
        char q[70];

        if (!origin)
                origin = "policy";
        if (size > POLICY_FILE_MAX) {
                set_error(ret_error, "%s: file too large (more than %u bytes)", origin, POLICY_FILE_MAX);
                return -EFBIG;
        }

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;

        while (pos < end) {
                const char *eol = memchr(pos, '\n', end - pos);
                const char *le = eol ? eol : end;
                const char *tok[MAX_TOKENS];
                size_t tlen[MAX_TOKENS];
                unsigned n = 0, first_bound;
                bool has_run_as;
                PolicyRule r = {};

                line++;
                if (memchr(pos, 0, le - pos)) {
                        set_error(ret_error, "%s:%u: NUL byte in line", origin, line);
                        return -EINVAL;
                }

                for (const char *c = pos; c < le;) {
                        const char *t;

                        while (c < le && (*c == ' ' || *c == '\t' || *c == '\r'))
                                c++;
                        if (c >= le || *c == '#')
                                break;
                        t = c;
                        while (c < le && *c != ' ' && *c != '\t' && *c != '\r' && *c != '#')
                                c++;
                        if (n == MAX_TOKENS - 1) {
                                n++;
                                break;
                        }
                        tok[n] = t;
                        tlen[n] = c - t;
                        n++;
                }
                pos = eol ? eol + 1 : end;

                if (n == 0)
                        continue;
                if (n >= MAX_TOKENS) {
                        set_error(ret_error, "%s:%u: expected '" SYNTAX "', got more than %u fields",
                                  origin, line, MAX_TOKENS - 1);
                        return -EINVAL;
                }
                if (n < 3) {
                        set_error(ret_error, "%s:%u: expected '" SYNTAX "', got %u field%s",
                                  origin, line, n, n == 1 ? "" : "s");
                        return -EINVAL;
                }
                if (!valid_user(tok[0], tlen[0])) {
                        quote_token(q, tok[0], tlen[0]);
                        set_error(ret_error, "%s:%u: invalid user name '%s'", origin, line, q);
                        return -EINVAL;
                }
                if (token_is(tok[1], tlen[1], "self"))
                        r.entity = POLICY_ENTITY_SELF;
                else if (token_is(tok[1], tlen[1], "all"))
                        r.entity = POLICY_ENTITY_ALL;
                else {
                        quote_token(q, tok[1], tlen[1]);
                        set_error(ret_error, "%s:%u: unknown entity '%s' (expected self or all)", origin, line, q);
                        return -EINVAL;
                }
                if (token_is(tok[2], tlen[2], "task-manager"))
                        r.role = POLICY_ROLE_TASK_MANAGER;
                else if (token_is(tok[2], tlen[2], "analyst"))
                        r.role = POLICY_ROLE_ANALYST;
                else {
                        quote_token(q, tok[2], tlen[2]);
                        set_error(ret_error, "%s:%u: unknown role '%s' (expected task-manager or analyst)",
                                  origin, line, q);
                        return -EINVAL;
                }
                /* An account name never contains '=': a word with one is a bound. */
                has_run_as = n >= 4 && !memchr(tok[3], '=', tlen[3]);
                first_bound = has_run_as ? 4 : 3;
                if (has_run_as && !valid_account(tok[3], tlen[3])) {
                        quote_token(q, tok[3], tlen[3]);
                        set_error(ret_error, "%s:%u: invalid account name '%s'", origin, line, q);
                        return -EINVAL;
                }
                for (unsigned i = first_bound; i < n; i++) {
                        int e;

                        if (!memchr(tok[i], '=', tlen[i])) {
                                quote_token(q, tok[i], tlen[i]);
                                set_error(ret_error, "%s:%u: expected '" SYNTAX "', got '%s' where a KEY=VALUE bound "
                                          "belongs", origin, line, q);
                                return -EINVAL;
                        }
                        e = parse_bound(tok[i], tlen[i], &r, origin, line, ret_error);
                        if (e < 0)
                                return e;
                }

                /* A user's lines must agree on RUN-AS. */
                if (has_run_as)
                        for (size_t i = 0; i < p->n_rules; i++) {
                                const PolicyRule *o = &p->rules[i];
                                if (o->run_as && strlen(o->user) == tlen[0] &&
                                    memcmp(o->user, tok[0], tlen[0]) == 0 &&
                                    !token_is(tok[3], tlen[3], o->run_as)) {
                                        quote_token(q, tok[0], tlen[0]);
                                        set_error(ret_error, "%s:%u: user '%s' has RUN-AS '%s' on line %u and another one here",
                                                  origin, line, q, o->run_as, o->line);
                                        return -EINVAL;
                                }
                        }

                r.line = line;
                r.user = strndup(tok[0], tlen[0]);
                r.run_as = has_run_as ? strndup(tok[3], tlen[3]) : NULL;
                if (!r.user || (has_run_as && !r.run_as)) {
                        rule_done(&r);
                        return -ENOMEM;
                }
                if (r.bounds_set) {
                        int e = check_bounds(p, &r, origin, ret_error);
                        if (e < 0) {
                                rule_done(&r);
                                return e;
                        }
                }
                if (p->n_rules == allocated) {
                        size_t na = allocated ? allocated * 2 : 8;
                        PolicyRule *nr = reallocarray(p->rules, na, sizeof(*nr));
                        if (!nr) {
                                rule_done(&r);
                                return -ENOMEM;
                        }
                        p->rules = nr;
                        allocated = na;
                }
                p->rules[p->n_rules++] = r;
        }

        *ret = TAKE_PTR(p);
        return 0;
}

int policy_load(const char *path, Policy **ret, char **ret_error) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int r = negative_errno();
                set_error(ret_error, "policy file %s: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                int r = negative_errno();
                set_error(ret_error, "policy file %s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                set_error(ret_error, "policy file %s: not a regular file", path);
                return -EINVAL;
        }
        for (;;) {
                ssize_t k;

                if (size == allocated) {
                        size_t na = allocated ? allocated * 2 : 4096;
                        char *nb;
                        if (allocated > POLICY_FILE_MAX) {
                                set_error(ret_error, "policy file %s: too large (more than %u bytes)",
                                          path, POLICY_FILE_MAX);
                                return -EFBIG;
                        }
                        nb = realloc(buf, na);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        allocated = na;
                }
                k = read(fd, buf + size, allocated - size);
                if (k < 0) {
                        int r;
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        set_error(ret_error, "policy file %s: %s", path, strerror(-r));
                        return r;
                }
                if (k == 0)
                        break;
                size += k;
        }
        return policy_parse(buf, size, path, ret, ret_error);
}

static int resolve_one(const char *name, PolicyAccount *ret) {
        struct passwd pw, *res = NULL;
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ gid_t *groups = NULL;
        long bufsize = sysconf(_SC_GETPW_R_SIZE_MAX);
        int ngroups = 16, r;

        if (bufsize <= 0)
                bufsize = 4096;
        for (;;) {
                buf = malloc(bufsize);
                if (!buf)
                        return -ENOMEM;
                r = getpwnam_r(name, &pw, buf, bufsize, &res);
                if (r != ERANGE)
                        break;
                free(TAKE_PTR(buf));
                if (bufsize > 1024 * 1024)
                        return -ERANGE;
                bufsize *= 2;
        }
        if (r > 0)
                return -r;
        if (!res)
                return -ENOENT;

        for (;;) {
                int n = ngroups;
                gid_t *ng = reallocarray(groups, ngroups, sizeof(gid_t));
                if (!ng)
                        return -ENOMEM;
                groups = ng;
                if (getgrouplist(name, pw.pw_gid, groups, &n) >= 0) {
                        ngroups = n;
                        break;
                }
                if (n <= ngroups || n > 65536)
                        return -ERANGE;
                ngroups = n;
        }

        ret->name = strdup(name);
        ret->home = strdup(pw.pw_dir && pw.pw_dir[0] ? pw.pw_dir : "/");
        if (!ret->name || !ret->home) {
                account_done(ret);
                return -ENOMEM;
        }
        ret->uid = pw.pw_uid;
        ret->gid = pw.pw_gid;
        ret->n_groups = ngroups;
        ret->groups = TAKE_PTR(groups);
        return 0;
}

static const PolicyAccount *find_account(const Policy *p, const char *name) {
        for (size_t i = 0; i < p->n_accounts; i++)
                if (strcmp(p->accounts[i].name, name) == 0)
                        return &p->accounts[i];
        return NULL;
}

int policy_resolve_accounts(Policy *p, const char *origin, char **ret_error) {
        if (!origin)
                origin = "policy";

        for (size_t i = 0; i < p->n_rules; i++) {
                const char *name = policy_run_as(p, p->rules[i].user);
                PolicyAccount a = {};
                PolicyAccount *na;
                int r;

                if (find_account(p, name))
                        continue;
                r = resolve_one(name, &a);
                if (r < 0) {
                        if (r == -ENOENT)
                                set_error(ret_error, "%s:%u: account '%s' (RUN-AS of user '%s') does not exist",
                                          origin, p->rules[i].line, name, p->rules[i].user);
                        else
                                set_error(ret_error, "%s:%u: cannot look up account '%s': %s",
                                          origin, p->rules[i].line, name, strerror(-r));
                        return r;
                }
                na = reallocarray(p->accounts, p->n_accounts + 1, sizeof(*na));
                if (!na) {
                        account_done(&a);
                        return -ENOMEM;
                }
                p->accounts = na;
                p->accounts[p->n_accounts++] = a;
        }
        return 0;
}

bool policy_knows(const Policy *p, const char *user) {
        if (!p || !user)
                return false;
        for (size_t i = 0; i < p->n_rules; i++)
                if (strcmp(p->rules[i].user, user) == 0)
                        return true;
        return false;
}

static unsigned role_permissions(PolicyRole r) {
        switch (r) {
        case POLICY_ROLE_TASK_MANAGER:
                return POLICY_PERMISSION_START_STOP | POLICY_PERMISSION_STATUS_OUTPUT;
        case POLICY_ROLE_ANALYST:
                return POLICY_PERMISSION_STATUS_OUTPUT;
        }
        return 0;
}

unsigned policy_permissions(const Policy *p, const char *user, const char *job_owner) {
        unsigned perms = 0;
        bool own;

        if (!p || !user)
                return 0;
        own = !job_owner || strcmp(job_owner, user) == 0;
        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];
                if (strcmp(r->user, user) != 0)
                        continue;
                if (r->entity == POLICY_ENTITY_ALL || own)
                        perms |= role_permissions(r->role);
        }
        return perms;
}

const char *policy_run_as(const Policy *p, const char *user) {
        bool known = false;

        if (!p || !user)
                return NULL;
        for (size_t i = 0; i < p->n_rules; i++) {
                if (strcmp(p->rules[i].user, user) != 0)
                        continue;
                if (p->rules[i].run_as)
                        return p->rules[i].run_as;
                known = true;
        }
        return known ? POLICY_DEFAULT_RUN_AS : NULL;
}

int policy_bounds(const Policy *p, const char *user, LimitsBounds *ret) {
        LimitsBounds b = {};
        bool known = false;

        if (!p || !user)
                return -ENOENT;
        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];

                if (strcmp(r->user, user) != 0)
                        continue;
                known = true;
                /* Lines agree on every key (checked when parsing). */
                for (size_t k = 0; k < ELEMENTSOF(bound_keys); k++)
                        if (r->bounds_set & (1u << k))
                                bound_set(&b, k, bound_get(&r->bounds, k));
        }
        if (!known)
                return -ENOENT;
        *ret = b;
        return 0;
}

int policy_credentials(const Policy *p, const char *user, JobCredentials *ret) {
        const char *name = policy_run_as(p, user);
        const PolicyAccount *a;

        if (!name)
                return -ENOENT;
        a = find_account(p, name);
        if (!a)
                return -ENXIO;
        *ret = (JobCredentials) {
                .uid = a->uid,
                .gid = a->gid,
                .n_groups = a->n_groups,
                .groups = a->groups,
                .user = a->name,
                .home = a->home,
        };
        return 0;
}
