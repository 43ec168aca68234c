/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's side of sd_notify(3): READY, a live STATUS= line, the
 * watchdog, RELOADING and STOPPING. Without NOTIFY_SOCKET every call is a
 * cheap no-op. All functions run on the engine thread (they use its timers).
 */

#include <stddef.h>

#include "core/engine.h"

typedef struct Notifier Notifier;

/* Fills buf with the current status text ("3 running, 10 finished, ..."). */
typedef void (*NotifierStatusFn)(void *userdata, char *buf, size_t size);

/* Starts the watchdog pings (from an engine timer, at half of
 * WATCHDOG_USEC) when systemd asked for them. */
int notifier_new(Notifier **ret, Engine *e, NotifierStatusFn status, void *userdata);
Notifier *notifier_free(Notifier *n);

void notifier_ready(Notifier *n);
/* Something the status text shows changed: sent at most once a second,
 * and only when the text differs from the last one sent. */
void notifier_status_changed(Notifier *n);
void notifier_reloading(Notifier *n);   /* RELOADING=1 + MONOTONIC_USEC */
void notifier_reloaded(Notifier *n);    /* READY=1 again, with the status */
void notifier_stopping(Notifier *n);
