/* SPDX-License-Identifier: MIT */

/*
 * A job's spec checked, its environment and its command summary built.
 *
 * The one idea: a job never sees the daemon's environment (NOTIFY_SOCKET,
 * LISTEN_FDS, credentials directories): it gets a clean base that the caller
 * may override key by key, and nothing else. Everything here is pure, so it
 * is tested without processes (tests/unit/test-job-env.c).
 */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/job-env.h"
#include "shared/macro.h"

#define BASE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static _printf_(3, 4) int fail(JobStartError *err, int code, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        err->error = code;
        return -code;
}

static int validate_argv(const JobSpec *spec, JobStartError *err, size_t *total) {
        if (!spec->argv || !spec->argv[0])
                return fail(err, EINVAL, "the command is empty (argv has no program)");
        if (!spec->argv[0][0])
                return fail(err, EINVAL, "the program name (argv[0]) is empty");
        for (size_t n = 0; spec->argv[n]; n++) {
                size_t l = strlen(spec->argv[n]);
                if (n >= JOB_ARGV_MAX)
                        return fail(err, E2BIG, "too many arguments (limit %u)", JOB_ARGV_MAX);
                if (l > JOB_STRING_MAX)
                        return fail(err, E2BIG, "argument %zu is %zu bytes long (limit %u)", n, l, JOB_STRING_MAX);
                *total += l + 1;
        }
        return 0;
}

static int validate_env(const JobSpec *spec, JobStartError *err, size_t *total) {
        size_t n = 0;

        for (const char *const *v = spec->env; v && *v; v++, n++) {
                size_t l = strlen(*v);
                const char *eq = strchr(*v, '=');
                if (n >= JOB_ENV_MAX)
                        return fail(err, E2BIG, "too many environment entries (limit %u)", JOB_ENV_MAX);
                if (l > JOB_STRING_MAX)
                        return fail(err, E2BIG, "environment entry %zu is %zu bytes long (limit %u)", n, l,
                                    JOB_STRING_MAX);
                if (!eq || eq == *v)
                        return fail(err, EINVAL, "environment entry %zu is not of the form KEY=VALUE", n);
                *total += l + 1;
        }
        return 0;
}

int job_env_validate(const JobSpec *spec, JobStartError *err) {
        size_t total = 0;
        int r;

        r = validate_argv(spec, err, &total);
        if (r < 0)
                return r;
        r = validate_env(spec, err, &total);
        if (r < 0)
                return r;
        if (spec->cwd) {
                size_t l = strlen(spec->cwd);
                if (l > JOB_STRING_MAX)
                        return fail(err, E2BIG, "working directory is %zu bytes long (limit %u)", l, JOB_STRING_MAX);
                if (spec->cwd[0] != '/')
                        return fail(err, EINVAL, "working directory '%.300s' is not an absolute path", spec->cwd);
                total += l + 1;
        }
        if (total > JOB_ARGS_TOTAL_MAX)
                return fail(err, E2BIG, "arguments and environment are %zu bytes together (limit %u)", total,
                            JOB_ARGS_TOTAL_MAX);
        if (spec->owner && strlen(spec->owner) > JOB_OWNER_MAX)
                return fail(err, EINVAL, "owner name is longer than %u bytes", JOB_OWNER_MAX);
        return 0;
}

static bool env_has_key(const char *const *env, const char *key, size_t kl) {
        for (; env && *env; env++)
                if (strncmp(*env, key, kl) == 0 && (*env)[kl] == '=')
                        return true;
        return false;
}

const char *job_env_get(const char *const *env, const char *key) {
        size_t kl = strlen(key);
        const char *found = NULL;

        for (; env && *env; env++)
                if (strncmp(*env, key, kl) == 0 && (*env)[kl] == '=')
                        found = *env + kl + 1; /* the last one wins */
        return found;
}

char **job_env_build(const char *user, const char *home, const char *const *extra) {
        const char *keys[] = { "PATH", "HOME", "USER", "LOGNAME", "LANG" };
        const char *values[] = { BASE_PATH, home, user, user, "C.UTF-8" };
        size_t n_extra = 0, bytes = 0, k = 0;
        char **v, *s;

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                bytes += strlen(keys[i]) + 1 + strlen(values[i]) + 1;
        for (const char *const *p = extra; p && *p; p++, n_extra++)
                bytes += strlen(*p) + 1;

        v = malloc((ELEMENTSOF(keys) + n_extra + 1) * sizeof(char *) + bytes);
        if (!v)
                return NULL;
        s = (char *) (v + ELEMENTSOF(keys) + n_extra + 1);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (env_has_key(extra, keys[i], strlen(keys[i])))
                        continue;
                v[k++] = s;
                s = stpcpy(stpcpy(stpcpy(s, keys[i]), "="), values[i]) + 1;
        }
        for (const char *const *p = extra; p && *p; p++) {
                v[k++] = s;
                s = stpcpy(s, *p) + 1;
        }
        v[k] = NULL;
        return v;
}

void job_env_command_summary(const char *const *argv, char out[static JOB_COMMAND_MAX + 1]) {
        size_t n = 0;

        for (size_t i = 0; argv[i] && n < JOB_COMMAND_MAX; i++) {
                if (i > 0)
                        out[n++] = ' ';
                for (const char *p = argv[i]; *p && n < JOB_COMMAND_MAX; p++)
                        out[n++] = *p;
        }
        out[MIN(n, (size_t) JOB_COMMAND_MAX)] = 0;
}
