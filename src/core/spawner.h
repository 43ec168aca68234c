/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The spawner: a few threads that run the stages of a start that touch
 * client-chosen paths (spawner.c).
 *
 * Thread rules: spawner_new(), spawner_submit() and spawner_free() are
 * called on the engine thread; the work runs on the spawner's threads and
 * its result comes back to the engine thread with engine_post().
 */

#include "core/engine-internal.h"

typedef struct JobStart JobStart;

int spawner_new(Engine *e, Spawner **ret);
/* Hands js over; it comes back through job_start_finish() on the engine
 * thread. -ENOMEM (js stays the caller's). */
int spawner_submit(Spawner *sp, JobStart *js);
/* Stops the threads: starts not begun come back cancelled, a child stuck in
 * a hung path is killed. Waits at most SPAWNER_STOP_USEC for the threads;
 * one still stuck after that (in its own stat() of an io device path, or
 * waiting for a child whose path wait even SIGKILL does not end) is left
 * behind: it cleans up after itself when the path answers, and its start's
 * completion is never called. Results that did come back are posted to the engine:
 * the caller runs them (engine_run_posted) before it tears the engine down. */
Spawner *spawner_free(Spawner *sp);

#define SPAWNER_STOP_USEC (2u * 1000000u)
