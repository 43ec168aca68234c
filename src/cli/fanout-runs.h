/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Saved runs: `jwctl run|start --save NAME` records which job each host
 * started, so that `jwctl status|logs|stop|wait @NAME` acts on all of them.
 * A run is a text file $XDG_STATE_HOME/jwctl/runs/NAME (else
 * ~/.local/state/jwctl/runs/NAME), one "HOST JOB-ID" per line, HOST as the
 * fan-out named it (a config name or HOST:PORT). Replaced atomically.
 */

#include <stddef.h>

#include "cli/settings.h"

typedef struct FanoutRunEntry {
        char *host;
        char *job_id;
} FanoutRunEntry;

typedef struct FanoutRun {
        FanoutRunEntry *entries;
        size_t n;
} FanoutRun;

void fanout_run_done(FanoutRun *r);

/* The file of run name, malloc()ed; NULL when neither XDG_STATE_HOME nor
 * HOME is set (or out of memory). */
char *fanout_run_path(CliGetenvFn getenv_fn, void *userdata, const char *name);

/* Parses a run file's text. -EINVAL with a message on a malformed line. */
int fanout_run_parse(const char *text, const char *path, FanoutRun *ret, char **ret_error);

/* Writes entries (hosts without a job are left out) to the run's file,
 * creating its directory. -errno with a message. */
int fanout_run_save(const char *name, const char *const *hosts, const char *const *job_ids, size_t n, char **ret_error);
/* Reads run name. -ENOENT/-EINVAL with a message naming it. */
int fanout_run_load(const char *name, FanoutRun *ret, char **ret_error);
