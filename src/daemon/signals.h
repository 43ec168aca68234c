/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's signals (SIGTERM, SIGINT, SIGHUP) read from a signalfd by a
 * thread of their own, so that a reload (reading certificates and the
 * policy, resolving accounts) never blocks the engine thread.
 */

#include <signal.h>

typedef struct SignalThread SignalThread;

/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and ignores
 * SIGPIPE. Call before any thread exists, so that all of them inherit the
 * mask (the signals then only reach the signalfd). */
int signals_block(sigset_t *ret_mask);

/* Called on the signal thread for every signal of mask that arrives. */
typedef void (*SignalFn)(void *userdata, int signo);

/* Starts the thread. Logs and returns -errno on failure. */
int signal_thread_new(SignalThread **ret, const sigset_t *mask, SignalFn fn, void *userdata);
/* Ends and joins the thread (it finishes the callback it is in). NULL is fine. */
SignalThread *signal_thread_free(SignalThread *t);
