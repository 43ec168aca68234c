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

#include "policy/policy-internal.h"
#include "policy/policy.h"
#include "shared/parse-util.h"

const char *policy_entity_to_string(PolicyEntity e) {
        return e == POLICY_ENTITY_ALL ? "all" : "self";
}

const char *policy_role_to_string(PolicyRole r) {
        return r == POLICY_ROLE_ANALYST ? "analyst" : "task-manager";
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
        for (size_t i = 0; i < p->n_users; i++)
                free(p->users[i].name);
        free(p->users);
        strmap_done(&p->by_user);
        for (size_t i = 0; i < p->n_accounts; i++)
                account_done(&p->accounts[i]);
        free(p->accounts);
        strmap_done(&p->by_account);
        free(p);
        return NULL;
}

_Static_assert(_POLICY_BOUND_N <= ELEMENTSOF(((PolicyUser *) NULL)->bound_line), "PolicyUser.bound_line too small");

/* Index + 1 of a name in a map, 0 if absent. */
static size_t map_index(const StrMap *m, const char *name) {
        return (size_t) (uintptr_t) strmap_get(m, name);
}

static const PolicyUser *find_user(const Policy *p, const char *name) {
        size_t i = p && name ? map_index(&p->by_user, name) : 0;
        return i ? &p->users[i - 1] : NULL;
}

/* Doubles *array (of *allocated elements of size) when n reached it. */
static int grow_array(void **array, size_t *allocated, size_t n, size_t size) {
        size_t na;
        void *a;

        if (n < *allocated)
                return 0;
        na = *allocated ? *allocated * 2 : 8;
        a = reallocarray(*array, na, size);
        if (!a)
                return -ENOMEM;
        *array = a;
        *allocated = na;
        return 0;
}

/* The summary of user name, made on its first line. */
static int user_get(Policy *p, size_t *allocated, const PolicyRule *r, PolicyUser **ret) {
        size_t i = map_index(&p->by_user, r->user);
        PolicyUser *u;
        int e;

        if (i) {
                *ret = &p->users[i - 1];
                return 0;
        }
        e = grow_array((void **) &p->users, allocated, p->n_users, sizeof(PolicyUser));
        if (e < 0)
                return e;
        u = &p->users[p->n_users];
        *u = (PolicyUser) { .first_line = r->line, .account = SIZE_MAX };
        u->name = strdup(r->user);
        if (!u->name)
                return -ENOMEM;
        e = strmap_put(&p->by_user, u->name, (void *) (uintptr_t) (p->n_users + 1));
        if (e < 0) {
                free(u->name);
                return e;
        }
        p->n_users++;
        *ret = u;
        return 0;
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

/* A default must not exceed the bound of the same resource. */
static int check_defaults(const PolicyUser *u, const PolicyRule *r, const char *origin, char **ret_error) {
        static const struct { size_t def, bound; } pairs[] = {
                { POLICY_BOUND_DEFAULT_CPU, POLICY_BOUND_CPU },
                { POLICY_BOUND_DEFAULT_MEMORY, POLICY_BOUND_MEMORY },
                { POLICY_BOUND_DEFAULT_PIDS, POLICY_BOUND_PIDS },
                { POLICY_BOUND_DEFAULT_MAX_RUNTIME, POLICY_BOUND_MAX_RUNTIME },
        };
        char a[32], b[32];

        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                size_t d = pairs[i].def, m = pairs[i].bound;
                uint64_t dv = policy_bound_get(&u->bounds, d), mv = policy_bound_get(&u->bounds, m);

                if ((u->bounds_set & (1u << d)) && (u->bounds_set & (1u << m)) && dv > mv) {
                        policy_set_error(ret_error, "%s:%u: user '%s' has %s=%s above %s=%s", origin, r->line, r->user,
                                         policy_bound_key(d), policy_bound_format(d, dv, a), policy_bound_key(m),
                                         policy_bound_format(m, mv, b));
                        return -EINVAL;
                }
        }
        return 0;
}

/* Merges rule r into its user's summary u: a user's lines must agree on
 * RUN-AS and on each bound, whatever their order. */
static int user_merge(PolicyUser *u, const PolicyRule *r, const char *origin, char **ret_error) {
        char a[32], b[32], q[70];

        if (r->run_as && u->run_as && strcmp(r->run_as, u->run_as) != 0) {
                policy_quote_token(q, r->user, strlen(r->user));
                policy_set_error(ret_error, "%s:%u: user '%s' has RUN-AS '%s' on line %u and another one here",
                                 origin, r->line, q, u->run_as, u->run_as_line);
                return -EINVAL;
        }
        for (size_t k = 0; k < _POLICY_BOUND_N; k++) {
                uint64_t was = policy_bound_get(&u->bounds, k), now = policy_bound_get(&r->bounds, k);

                if (!(r->bounds_set & (1u << k)) || !(u->bounds_set & (1u << k)) || was == now)
                        continue;
                policy_set_error(ret_error, "%s:%u: user '%s' has %s=%s on line %u and %s=%s here", origin, r->line,
                                 r->user, policy_bound_key(k), policy_bound_format(k, was, a), u->bound_line[k],
                                 policy_bound_key(k), policy_bound_format(k, now, b));
                return -EINVAL;
        }
        if (r->run_as && !u->run_as) {
                u->run_as = r->run_as;
                u->run_as_line = r->line;
        }
        for (size_t k = 0; k < _POLICY_BOUND_N; k++)
                if ((r->bounds_set & (1u << k)) && !(u->bounds_set & (1u << k))) {
                        policy_bound_set(&u->bounds, k, policy_bound_get(&r->bounds, k));
                        u->bound_line[k] = r->line;
                }
        u->bounds_set |= r->bounds_set;
        if (r->entity == POLICY_ENTITY_ALL)
                u->perms_all |= role_permissions(r->role);
        else
                u->perms_own |= role_permissions(r->role);
        return check_defaults(u, r, origin, ret_error);
}

/* Adds rule r (taken over, also on failure) to p. */
static int policy_add_rule(Policy *p, size_t *allocated_rules, size_t *allocated_users, PolicyRule *r,
                           const char *origin, char **ret_error) {
        PolicyUser *u;
        int e;

        if (p->n_rules >= POLICY_RULES_MAX) {
                policy_set_error(ret_error, "%s:%u: too many rules (the limit is %u lines with a rule)", origin, r->line,
                                 POLICY_RULES_MAX);
                e = -E2BIG;
                goto fail;
        }
        e = grow_array((void **) &p->rules, allocated_rules, p->n_rules, sizeof(PolicyRule));
        if (e < 0)
                goto fail;
        e = user_get(p, allocated_users, r, &u);
        if (e < 0)
                goto fail;
        /* The user borrows the rule's heap strings, not the rule: the
         * array may move, the strings do not. */
        p->rules[p->n_rules++] = *r;
        return user_merge(u, &p->rules[p->n_rules - 1], origin, ret_error);
fail:
        rule_done(r);
        return e;
}

int policy_parse(const char *text, size_t size, const char *origin, Policy **ret, char **ret_error) {
        _cleanup_policy_ Policy *p = NULL;
        size_t allocated_rules = 0, allocated_users = 0;
        const char *pos = text, *end = text + size;
        unsigned line = 0;

        if (!origin)
                origin = "policy";
        if (size > POLICY_FILE_MAX) {
                policy_set_error(ret_error, "%s: file too large (more than %u bytes)", origin, POLICY_FILE_MAX);
                return -EFBIG;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;

        while (pos < end) {
                const char *eol = memchr(pos, '\n', end - pos);
                const char *le = eol ? eol : end;
                PolicyRule r;
                int e;

                e = policy_parse_line(pos, le, origin, ++line, &r, ret_error);
                pos = eol ? eol + 1 : end;
                if (e < 0)
                        return e;
                if (e > 0)
                        continue;
                e = policy_add_rule(p, &allocated_rules, &allocated_users, &r, origin, ret_error);
                if (e < 0)
                        return e;
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
                policy_set_error(ret_error, "policy file %s: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                int r = negative_errno();
                policy_set_error(ret_error, "policy file %s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                policy_set_error(ret_error, "policy file %s: not a regular file", path);
                return -EINVAL;
        }
        for (;;) {
                ssize_t k;

                if (size == allocated) {
                        size_t na = allocated ? allocated * 2 : 4096;
                        char *nb;
                        if (allocated > POLICY_FILE_MAX) {
                                policy_set_error(ret_error, "policy file %s: too large (more than %u bytes)",
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
                        policy_set_error(ret_error, "policy file %s: %s", path, strerror(-r));
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

static const char *user_run_as(const PolicyUser *u) {
        return u->run_as ?: POLICY_DEFAULT_RUN_AS;
}

/* Looks up the account of user u (once per distinct account) and links
 * u to it. */
static int resolve_user(Policy *p, PolicyUser *u, size_t *allocated, const char *origin, char **ret_error) {
        const char *name = user_run_as(u);
        unsigned line = u->run_as ? u->run_as_line : u->first_line;
        size_t i = map_index(&p->by_account, name);
        PolicyAccount a = {};
        int r;

        if (i) {
                u->account = i - 1;
                return 0;
        }
        if (p->n_accounts >= POLICY_ACCOUNTS_MAX) {
                policy_set_error(ret_error, "%s:%u: too many RUN-AS accounts (the limit is %u distinct accounts)",
                                 origin, line, POLICY_ACCOUNTS_MAX);
                return -E2BIG;
        }
        r = resolve_one(name, &a);
        if (r == -ENOENT)
                policy_set_error(ret_error, "%s:%u: account '%s' (RUN-AS of user '%s') does not exist",
                                 origin, line, name, u->name);
        else if (r < 0)
                policy_set_error(ret_error, "%s:%u: cannot look up account '%s': %s", origin, line, name, strerror(-r));
        if (r >= 0)
                r = grow_array((void **) &p->accounts, allocated, p->n_accounts, sizeof(PolicyAccount));
        if (r >= 0)
                r = strmap_put(&p->by_account, a.name, (void *) (uintptr_t) (p->n_accounts + 1));
        if (r < 0) {
                account_done(&a);
                return r;
        }
        p->accounts[p->n_accounts] = a;
        u->account = p->n_accounts++;
        return 0;
}

int policy_resolve_accounts(Policy *p, const char *origin, char **ret_error) {
        size_t allocated = p->n_accounts;

        if (!origin)
                origin = "policy";
        for (size_t i = 0; i < p->n_users; i++) {
                int r = resolve_user(p, &p->users[i], &allocated, origin, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

bool policy_knows(const Policy *p, const char *user) {
        return find_user(p, user) != NULL;
}

unsigned policy_permissions(const Policy *p, const char *user, const char *job_owner) {
        const PolicyUser *u = find_user(p, user);

        if (!u)
                return 0;
        if (!job_owner || strcmp(job_owner, user) == 0)
                return u->perms_own | u->perms_all;
        return u->perms_all;
}

const char *policy_run_as(const Policy *p, const char *user) {
        const PolicyUser *u = find_user(p, user);
        return u ? user_run_as(u) : NULL;
}

int policy_bounds(const Policy *p, const char *user, LimitsBounds *ret) {
        const PolicyUser *u = find_user(p, user);

        if (!u)
                return -ENOENT;
        *ret = u->bounds;
        return 0;
}

int policy_credentials(const Policy *p, const char *user, JobCredentials *ret) {
        const PolicyUser *u = find_user(p, user);
        const PolicyAccount *a;

        if (!u)
                return -ENOENT;
        if (u->account == SIZE_MAX)
                return -ENXIO;
        a = &p->accounts[u->account];
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
