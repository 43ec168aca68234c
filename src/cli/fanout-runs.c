/* SPDX-License-Identifier: MIT */
/*
 * Saved runs of a fan-out (see fanout-runs.h).
 *
 * The one idea: a run is a small text file written to a temporary name and
 * renamed over the old one, so a reader (another jwctl following the run)
 * sees the old list or the new one, never half of one.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/fanout-runs.h"
#include "shared/macro.h"
#include "shared/string-util.h"

#define RUN_MAX_BYTES (4 * 1024 * 1024)

void fanout_run_done(FanoutRun *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++) {
                free(r->entries[i].host);
                free(r->entries[i].job_id);
        }
        free(r->entries);
        *r = (FanoutRun) {};
}

static char *state_dir(CliGetenvFn getenv_fn, void *userdata) {
        const char *xdg = getenv_fn("XDG_STATE_HOME", userdata);
        const char *home = getenv_fn("HOME", userdata);

        if (xdg && xdg[0] == '/')
                return strdup_printf("%s/jwctl/runs", xdg);
        if (home && home[0] == '/')
                return strdup_printf("%s/.local/state/jwctl/runs", home);
        return NULL;
}

char *fanout_run_path(CliGetenvFn getenv_fn, void *userdata, const char *name) {
        _cleanup_free_ char *dir = state_dir(getenv_fn, userdata);

        return dir ? strdup_printf("%s/%s", dir, name) : NULL;
}

int fanout_run_parse(const char *text, const char *path, FanoutRun *ret, char **ret_error) {
        _cleanup_free_ char *copy = strdup(text);
        FanoutRun run = {};
        unsigned lineno = 0;

        if (!copy)
                return -ENOMEM;
        for (char *line = copy, *next; line; line = next) {
                char *nl = strchr(line, '\n'), *sp;
                FanoutRunEntry *e;

                if (nl)
                        *nl = '\0';
                next = nl ? nl + 1 : NULL;
                lineno++;
                if (!*line || *line == '#')
                        continue;
                sp = strrchr(line, ' ');
                if (!sp || sp == line || !sp[1]) {
                        fanout_run_done(&run);
                        return replace_message(ret_error, -EINVAL, "%s:%u: expected 'HOST JOB-ID'", path, lineno);
                }
                *sp = '\0';
                e = reallocarray(run.entries, run.n + 1, sizeof(*e));
                if (!e) {
                        fanout_run_done(&run);
                        return -ENOMEM;
                }
                run.entries = e;
                e[run.n] = (FanoutRunEntry) { .host = strdup(line), .job_id = strdup(sp + 1) };
                run.n++;
                if (!e[run.n - 1].host || !e[run.n - 1].job_id) {
                        fanout_run_done(&run);
                        return -ENOMEM;
                }
        }
        *ret = run;
        return 0;
}

static const char *real_getenv(const char *name, void *userdata) {
        return getenv(name);
}

/* mkdir -p of path's directory. */
static int make_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

int fanout_run_save(const char *name, const char *const *hosts, const char *const *job_ids, size_t n, char **ret_error) {
        _cleanup_free_ char *path = fanout_run_path(real_getenv, NULL, name), *tmp = NULL;
        FILE *f;
        int r;

        if (!path)
                return replace_message(ret_error, -EINVAL, "cannot save run %s: neither XDG_STATE_HOME nor HOME is set", name);
        tmp = strdup_printf("%s.tmp.%d", path, (int) getpid());
        if (!tmp)
                return -ENOMEM;
        r = make_parents(path);
        if (r < 0)
                return replace_message(ret_error, r, "cannot save run %s in %s: %s", name, path, strerror(-r));
        f = fopen(tmp, "we");
        if (!f)
                return replace_message(ret_error, -errno, "cannot save run %s in %s: %s", name, tmp, strerror(errno));
        for (size_t i = 0; i < n; i++)
                if (job_ids[i])
                        fprintf(f, "%s %s\n", hosts[i], job_ids[i]);
        if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) < 0) {
                r = -(errno ?: EIO);
                fclose(f);
                unlink(tmp);
                return replace_message(ret_error, r, "cannot save run %s in %s: %s", name, tmp, strerror(-r));
        }
        fclose(f);
        if (rename(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
                return replace_message(ret_error, r, "cannot save run %s in %s: %s", name, path, strerror(-r));
        }
        return 0;
}

int fanout_run_load(const char *name, FanoutRun *ret, char **ret_error) {
        _cleanup_free_ char *path = fanout_run_path(real_getenv, NULL, name), *text = NULL;
        _cleanup_close_ int fd = -1;
        size_t len = 0;

        if (!path)
                return replace_message(ret_error, -EINVAL, "cannot read run @%s: neither XDG_STATE_HOME nor HOME is set", name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return replace_message(ret_error, -EINVAL, "no saved run @%s (no file %s; save one with 'jwctl run --save %s ...')",
                                       name, path, name);
        if (fd < 0)
                return replace_message(ret_error, -errno, "cannot read run @%s from %s: %s", name, path, strerror(errno));
        text = malloc(RUN_MAX_BYTES + 1);
        if (!text)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, text + len, RUN_MAX_BYTES + 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return replace_message(ret_error, -errno, "cannot read run @%s from %s: %s", name, path, strerror(errno));
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > RUN_MAX_BYTES)
                        return replace_message(ret_error, -EINVAL, "run file %s is too large", path);
        }
        text[len] = '\0';
        return fanout_run_parse(text, path, ret, ret_error);
}
