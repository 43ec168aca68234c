/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The authorization policy: who may do what, as which local account their
 * jobs run, and within which resource bounds. Parsed from a text file, one
 * assignment per line:
 *
 *     USER ENTITY ROLE [RUN-AS] [KEY=VALUE...]     # comment
 *
 * USER is a client identity (certificate subject CN), ENTITY `self` (jobs the
 * user started) or `all` (every job), ROLE `task-manager` (start/stop and
 * status/output) or `analyst` (status/output), RUN-AS the local account the
 * user's jobs run as. A user may have several lines; all of a user's lines
 * that name a RUN-AS must name the same one. Without one, jobs run as
 * POLICY_DEFAULT_RUN_AS; root only when written explicitly.
 *
 * KEY=VALUE words are the user's resource bounds and defaults (keys in
 * policy.c's table: cpu, memory, pids, io-read-bps, io-write-bps,
 * default-cpu, default-memory, default-pids, max-jobs, max-output,
 * max-runtime, default-max-runtime). max-jobs and max-output bound an
 * identity's jobs together (running at once; bytes of output kept), the
 * others each job (max-runtime: how long it may run). They hold per user, like
 * RUN-AS: a key may be written on several of a user's lines only with the
 * same value, so the order of lines never matters. Account names cannot
 * contain '=', so the grammar is unambiguous.
 *
 * Loading costs time linear in the file: each line is checked against its
 * user's summary (PolicyUser), found by hash, never against earlier lines.
 * The size, rule and account counts are bounded (POLICY_*_MAX) so that a
 * reload's cost is too.
 *
 * Parsing is pure (no lookups, no I/O except policy_load() reading the file),
 * so the parser can be fuzzed; policy_resolve_accounts() then looks the
 * RUN-AS accounts up in the user database.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/engine.h"
#include "policy/limits.h"
#include "shared/macro.h"
#include "shared/strmap.h"

#define POLICY_DEFAULT_RUN_AS "nobody"
#define POLICY_FILE_MAX (16u * 1024u * 1024u) /* bytes */
#define POLICY_NAME_MAX 255u                   /* USER / RUN-AS, bytes */
#define POLICY_RULES_MAX 100000u               /* lines with a rule */
#define POLICY_ACCOUNTS_MAX 1024u              /* distinct RUN-AS accounts (one user database lookup each) */

typedef enum PolicyEntity {
        POLICY_ENTITY_SELF,
        POLICY_ENTITY_ALL,
} PolicyEntity;

typedef enum PolicyRole {
        POLICY_ROLE_TASK_MANAGER,
        POLICY_ROLE_ANALYST,
} PolicyRole;

/* Permissions, a bit mask. */
typedef enum PolicyPermission {
        POLICY_PERMISSION_START_STOP = 1u << 0,
        POLICY_PERMISSION_STATUS_OUTPUT = 1u << 1,
} PolicyPermission;

typedef struct PolicyRule {
        char *user;
        PolicyEntity entity;
        PolicyRole role;
        char *run_as;           /* NULL: not given on this line */
        LimitsBounds bounds;    /* the KEY=VALUE words of this line */
        unsigned bounds_set;    /* which keys this line gives (bit per key) */
        unsigned line;
} PolicyRule;

/* All lines of one user merged: what lookups read. */
typedef struct PolicyUser {
        char *name;
        unsigned perms_own;     /* permissions on the user's own jobs */
        unsigned perms_all;     /* on every job */
        const char *run_as;     /* borrowed from the first rule naming it, NULL: default */
        unsigned run_as_line;
        unsigned first_line;
        LimitsBounds bounds;
        unsigned bounds_set;    /* bit per key, as PolicyRule */
        unsigned bound_line[16];/* where each set key was first given */
        size_t account;         /* index in Policy.accounts once resolved */
} PolicyUser;

/* A resolved RUN-AS account. */
typedef struct PolicyAccount {
        char *name;
        uid_t uid;
        gid_t gid;
        char *home;
        gid_t *groups;
        size_t n_groups;
} PolicyAccount;

typedef struct Policy {
        PolicyRule *rules;
        size_t n_rules;
        PolicyUser *users;         /* one per distinct USER, in order of first line */
        size_t n_users;
        StrMap by_user;            /* name -> index + 1 in users */
        PolicyAccount *accounts;   /* filled by policy_resolve_accounts() */
        size_t n_accounts;
        StrMap by_account;         /* name -> index + 1 in accounts */
} Policy;

/* Parses text (size bytes, need not be NUL-terminated). origin names the
 * source in messages (a file name). On -EINVAL (syntax) or -ENOMEM returns
 * the error and, if ret_error, a malloc()ed one-line message like
 * "policy.conf:3: unknown role 'admin' (expected task-manager or analyst)".
 * More than POLICY_RULES_MAX rules: -E2BIG, with a message naming the limit. */
int policy_parse(const char *text, size_t size, const char *origin, Policy **ret, char **ret_error);

/* Reads and parses path (not resolving accounts). Errors as above plus the
 * errno of open/read, with a message naming the file. */
int policy_load(const char *path, Policy **ret, char **ret_error);

/* Looks every RUN-AS account (and the default, when some user needs it) up:
 * uid, gid, home, supplementary groups. -ENOENT with a message naming the
 * account and the line if one does not exist; -E2BIG (message naming the
 * limit) if the users need more than POLICY_ACCOUNTS_MAX accounts. */
int policy_resolve_accounts(Policy *p, const char *origin, char **ret_error);

Policy *policy_free(Policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);
#define _cleanup_policy_ _cleanup_(policy_freep)

/* True if the policy has at least one line for user. */
bool policy_knows(const Policy *p, const char *user);

/* Permissions user holds on a job whose owner is job_owner (NULL: a job
 * nobody owns yet, i.e. the one about to be started by user, which counts
 * as the user's own). */
unsigned policy_permissions(const Policy *p, const char *user, const char *job_owner);

/* The RUN-AS account name for user (the default if none given), NULL if the
 * user is unknown. */
const char *policy_run_as(const Policy *p, const char *user);

/* The resource bounds and defaults of user (all its lines merged); all
 * zero if there are none. -ENOENT if the user is unknown. */
int policy_bounds(const Policy *p, const char *user, LimitsBounds *ret);

/* Credentials to run user's jobs with; the pointers in *ret borrow from p
 * and stay valid until p is freed. -ENOENT if the user is unknown, -ENXIO if
 * the accounts were not resolved. */
int policy_credentials(const Policy *p, const char *user, JobCredentials *ret);

const char *policy_entity_to_string(PolicyEntity e);
const char *policy_role_to_string(PolicyRole r);
