/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What Ctrl-C (SIGINT, SIGTERM, SIGHUP) does to a running jwctl command.
 * main() blocks these signals in every thread; a signal thread started here
 * reads them from a signalfd. With nothing registered it dies by the signal
 * (what a user expects of a short call). While an Output stream runs, a
 * signal cancels it; during `run` the first signal sends Stop for the job
 * (the stream then ends with the job, so its last output still arrives) and
 * a second cancels the stream.
 *
 * Threads: every function is called by the command's (main) thread; the
 * fields are shared with the signal thread under `lock` and are private to
 * signals.c.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/client.h"
#include "cli/tty.h"

typedef struct CliSignals {
        pthread_mutex_t lock;
        pthread_t thread;
        bool started;
        int signal_fd;
        int quit_fd;             /* eventfd: end the thread */
        int wake_fd;             /* eventfd: written on every signal (cli_signals_wait) */
        pthread_cond_t idle;     /* broadcast when stop_users drops to 0 */
        unsigned stop_users;     /* Stops in flight through client */
        CliClient *client;       /* borrowed: Stop is sent through it */
        CliOutputCall *call;     /* borrowed: cancelled on a signal */
        char *stop_job;          /* run: job to stop on the first signal */
        bool defer;              /* run, before the job id is known: only count */
        unsigned count;          /* signals received */
        bool stop_failed;
        char *stop_error;
        CliTty *tty;             /* run -t: put back before a death by signal */
        void (*handler)(void *userdata); /* fan-out: replaces all of the above */
        void *handler_userdata;
} CliSignals;

/* run -t: the terminal to restore before dying of a signal (borrowed,
 * NULL: none). */
void cli_signals_set_tty(CliSignals *s, CliTty *tty);

/* Starts the signal thread. On failure call cli_signals_stop() all the same. */
int cli_signals_start(CliSignals *s);
/* Ends the thread (before the client it may use is freed) and frees all. */
void cli_signals_stop(CliSignals *s);

/* Fan-out (cli/fanout.c). One host's CliSignals has no thread: init sets
 * it up (release with cli_signals_stop()) and deliver acts as a signal
 * would, without ever ending the process. The one real signal thread
 * calls handler(userdata) on every signal instead of acting itself
 * (after counting it); the handler delivers to every host. */
int cli_signals_init(CliSignals *s);
void cli_signals_deliver(CliSignals *s);
void cli_signals_set_handler(CliSignals *s, void (*fn)(void *userdata), void *userdata);

/* The client Stop is sent through (borrowed; outlives the thread). */
void cli_signals_set_client(CliSignals *s, CliClient *client);
/* Replaces the client after a reconnect: waits until no Stop is using the
 * old one any more (a Stop is bounded by the client's timeout) and returns
 * it; the caller frees it. */
CliClient *cli_signals_swap_client(CliSignals *s, CliClient *client);

/* Waits up to usec for a signal. 1 if any signal came (also before the
 * call), 0 when the time passed, -errno if poll() failed. */
int cli_signals_wait(CliSignals *s, uint64_t usec);

/* From now on signals are only counted (and cancel the stream once there is
 * one) instead of killing the process: wait, logs -f, and run before the
 * job id is known. */
void cli_signals_defer(CliSignals *s);

/* The stream a signal cancels (borrowed until it is set to NULL again). A
 * signal that came before the stream existed cancels it at once. */
void cli_signals_set_call(CliSignals *s, CliOutputCall *call);

/* How many signals came so far. */
unsigned cli_signals_count(CliSignals *s);

/* run: the first signal stops job_id (copied). If one already came while
 * Start was on its way, Stop is sent now. -ENOMEM. */
int cli_signals_stop_job(CliSignals *s, const char *job_id);

/* The message of a Stop sent on a signal that failed, malloc()ed; NULL if
 * none failed. */
char *cli_signals_stop_error(CliSignals *s);
