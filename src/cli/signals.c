/* SPDX-License-Identifier: MIT */
/*
 * Ctrl-C for jwctl's commands (see signals.h).
 *
 * The one idea: signals never interrupt a call in the main thread; a thread
 * of their own waits on a signalfd next to an eventfd that tells it to end,
 * and decides under one lock: die by the signal, cancel the stream, or (the
 * first one during `run`) send Stop for the job through the client, which
 * is safe from a second thread. Every signal also wakes a follower waiting
 * out a lost connection (cli_signals_wait), and a Stop in flight holds the
 * client so that a reconnect swaps it only once the Stop is done.
 */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/signals.h"
#include "shared/macro.h"
#include "shared/time-util.h"

static void die_by_signal(int sig) {
        sigset_t s;

        signal(sig, SIG_DFL);
        sigemptyset(&s);
        sigaddset(&s, sig);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
        /* SIGHUP/SIGINT/SIGTERM terminate the process: no return. */
        raise(sig);
}

/* Tells cli_signals_wait() that a signal came. */
static void wake(CliSignals *s) {
        uint64_t one = 1;

        if (write(s->wake_fd, &one, sizeof one) < 0) {
                /* Only an overflow fails, after 2^64 signals. */
        }
}

static void send_stop(CliSignals *s, const char *job_id) {
        Jobworker__V1__StopRequest req = JOBWORKER__V1__STOP_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        CliCallStatus st = {};
        CliClient *client;
        int r;

        /* The client may be swapped after a reconnect: hold it meanwhile. */
        pthread_mutex_lock(&s->lock);
        client = s->client;
        s->stop_users++;
        pthread_mutex_unlock(&s->lock);

        req.job_id = (char *) job_id;
        r = cli_client_unary(client, CLI_METHOD("Stop"), &req.base, &jobworker__v1__stop_response__descriptor, &resp, &st);
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        pthread_mutex_lock(&s->lock);
        if (--s->stop_users == 0)
                pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->lock);
        /* FAILED_PRECONDITION: the job ended by itself meanwhile; the stream ends too. */
        if (r < 0 && st.code != GRPC_STATUS_FAILED_PRECONDITION) {
                pthread_mutex_lock(&s->lock);
                s->stop_failed = true;
                free(s->stop_error);
                s->stop_error = NULL;
                if (asprintf(&s->stop_error, "could not stop job %s: %s", job_id,
                             st.message && *st.message ? st.message : cli_grpc_status_name(st.code)) < 0)
                        s->stop_error = NULL;
                if (s->call)
                        cli_output_call_cancel(s->call);
                pthread_mutex_unlock(&s->lock);
        }
        cli_call_status_done(&st);
}

/* What one signal does (see signals.h). may_die: a real signal, which
 * ends jwctl when nothing is registered; a delivered one never does. */
static void on_signal(CliSignals *s, int signo, bool may_die) {
        pthread_mutex_lock(&s->lock);
        s->count++;
        wake(s);
        if (s->handler) {
                void (*fn)(void *) = s->handler;
                void *userdata = s->handler_userdata;

                pthread_mutex_unlock(&s->lock);
                fn(userdata);
                return;
        }
        if (may_die && !s->call && !s->stop_job && !s->defer) {
                if (s->tty)
                        cli_tty_restore(s->tty);
                pthread_mutex_unlock(&s->lock);
                die_by_signal(signo);
        }
        if (s->stop_job && s->count == 1) {
                _cleanup_free_ char *id = strdup(s->stop_job);
                pthread_mutex_unlock(&s->lock);
                if (id)
                        send_stop(s, id);
                return;
        }
        if (s->call)
                cli_output_call_cancel(s->call);
        pthread_mutex_unlock(&s->lock);
}

static void *signal_thread(void *userdata) {
        CliSignals *s = userdata;

        for (;;) {
                struct pollfd p[2] = { { .fd = s->signal_fd, .events = POLLIN }, { .fd = s->quit_fd, .events = POLLIN } };
                struct signalfd_siginfo si;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return NULL;
                }
                if (p[1].revents)
                        return NULL;
                if (read(s->signal_fd, &si, sizeof si) != (ssize_t) sizeof si)
                        continue;
                on_signal(s, (int) si.ssi_signo, true);
        }
}

int cli_signals_init(CliSignals *s) {
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->idle, NULL);
        s->signal_fd = s->quit_fd = -1;
        s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        return s->wake_fd < 0 ? negative_errno() : 0;
}

void cli_signals_deliver(CliSignals *s) {
        on_signal(s, 0, false);
}

void cli_signals_set_handler(CliSignals *s, void (*fn)(void *userdata), void *userdata) {
        pthread_mutex_lock(&s->lock);
        s->handler = fn;
        s->handler_userdata = userdata;
        pthread_mutex_unlock(&s->lock);
}

int cli_signals_start(CliSignals *s) {
        sigset_t set;

        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->idle, NULL);
        s->signal_fd = s->quit_fd = s->wake_fd = -1;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        s->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (s->signal_fd < 0)
                return negative_errno();
        s->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->quit_fd < 0)
                return negative_errno();
        s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->wake_fd < 0)
                return negative_errno();
        int r = pthread_create(&s->thread, NULL, signal_thread, s);
        if (r != 0)
                return -r;
        s->started = true;
        return 0;
}

void cli_signals_stop(CliSignals *s) {
        if (s->started) {
                uint64_t one = 1;
                if (write(s->quit_fd, &one, sizeof one) < 0) {
                        /* An eventfd write only fails on overflow; cannot happen with one write. */
                }
                pthread_join(s->thread, NULL);
                s->started = false;
        }
        s->signal_fd = safe_close(s->signal_fd);
        s->quit_fd = safe_close(s->quit_fd);
        s->wake_fd = safe_close(s->wake_fd);
        free(s->stop_job);
        s->stop_job = NULL;
        free(s->stop_error);
        s->stop_error = NULL;
        pthread_cond_destroy(&s->idle);
        pthread_mutex_destroy(&s->lock);
}

void cli_signals_set_tty(CliSignals *s, CliTty *tty) {
        pthread_mutex_lock(&s->lock);
        s->tty = tty;
        pthread_mutex_unlock(&s->lock);
}

void cli_signals_defer(CliSignals *s) {
        pthread_mutex_lock(&s->lock);
        s->defer = true;
        pthread_mutex_unlock(&s->lock);
}

void cli_signals_set_call(CliSignals *s, CliOutputCall *call) {
        pthread_mutex_lock(&s->lock);
        s->call = call;
        /* A signal that came before the stream existed still counts. */
        if (call && s->count > 0 && (!s->stop_job || s->stop_failed))
                cli_output_call_cancel(call);
        pthread_mutex_unlock(&s->lock);
}

unsigned cli_signals_count(CliSignals *s) {
        pthread_mutex_lock(&s->lock);
        unsigned n = s->count;
        pthread_mutex_unlock(&s->lock);
        return n;
}

void cli_signals_set_client(CliSignals *s, CliClient *client) {
        pthread_mutex_lock(&s->lock);
        s->client = client;
        pthread_mutex_unlock(&s->lock);
}

CliClient *cli_signals_swap_client(CliSignals *s, CliClient *client) {
        CliClient *old;

        pthread_mutex_lock(&s->lock);
        while (s->stop_users > 0)
                pthread_cond_wait(&s->idle, &s->lock);
        old = s->client;
        s->client = client;
        pthread_mutex_unlock(&s->lock);
        return old;
}

int cli_signals_wait(CliSignals *s, uint64_t usec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + usec;

        for (;;) {
                uint64_t now = now_usec(CLOCK_MONOTONIC), left;
                struct pollfd p = { .fd = s->wake_fd, .events = POLLIN };

                if (cli_signals_count(s) > 0)
                        return 1;
                if (now >= deadline)
                        return 0;
                left = deadline - now;
                /* Rounded up: never wake before the deadline and spin. */
                if (poll(&p, 1, (int) MIN((left + 999) / 1000, (uint64_t) INT32_MAX)) < 0 && errno != EINTR)
                        return negative_errno();
                if (p.revents & POLLIN) {
                        uint64_t n;
                        if (read(s->wake_fd, &n, sizeof n) < 0) {
                                /* EAGAIN: another reader took it; the count decides. */
                        }
                }
        }
}

int cli_signals_stop_job(CliSignals *s, const char *job_id) {
        char *id = strdup(job_id);
        bool early;

        if (!id)
                return -ENOMEM;
        pthread_mutex_lock(&s->lock);
        free(s->stop_job);
        s->stop_job = id;
        early = s->count > 0;
        pthread_mutex_unlock(&s->lock);
        /* A signal while Start was on its way: stop the job now. */
        if (early)
                send_stop(s, job_id);
        return 0;
}

char *cli_signals_stop_error(CliSignals *s) {
        char *m = NULL;

        pthread_mutex_lock(&s->lock);
        if (s->stop_failed && s->stop_error)
                m = strdup(s->stop_error);
        pthread_mutex_unlock(&s->lock);
        return m;
}
