/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * jobworkerd as one object: the engine, the policy, the TLS context, the
 * gRPC server, the TLS bridge, the signal thread and sd_notify, built by
 * daemon_new(), run by daemon_run(), torn down by daemon_free().
 *
 * Threads: all three on the main thread, which becomes the engine thread
 * (daemon_new() creates the engine).
 */

#include <stdbool.h>

#include "daemon/config.h"
#include "shared/macro.h"

typedef struct Daemon Daemon;

/* Builds everything and starts the threads; errors are logged. config is
 * moved into the daemon (*config is left empty, config_done() on it is
 * harmless). Blocks the daemon's signals first (see signals.h): call it
 * before any thread exists. */
int daemon_new(Daemon **ret, Config *config);

/* Serves until shut down (SIGTERM, SIGINT): READY=1, then the engine loop.
 * 0 after a clean shutdown, -errno if the loop failed. */
int daemon_run(Daemon *d);

/* Stops the threads and frees in reverse order of building; safe on a
 * daemon that daemon_new() left half-built. NULL is fine. */
Daemon *daemon_free(Daemon *d);

/* After daemon_run(): the binary was replaced and the daemon asked to
 * upgrade (SIGHUP, reexec.c): daemon_reexec() frees *d and execs the new
 * one. Returns only on failure (-errno, logged; *d is freed either way). */
bool daemon_upgrading(const Daemon *d);
int daemon_reexec(Daemon **d, char *const *argv);

DEFINE_TRIVIAL_CLEANUP_FUNC(Daemon *, daemon_free);
#define _cleanup_daemon_ _cleanup_(daemon_freep)
