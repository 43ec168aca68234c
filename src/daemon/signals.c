/* SPDX-License-Identifier: MIT */
/*
 * The signal thread (see signals.h).
 *
 * The one idea: the thread owns nothing but two fds; it turns each signal
 * into one callback and leaves everything else to its caller, which posts
 * to the engine thread. An eventfd tells it to end.
 */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/signals.h"
#include "shared/macro.h"

struct SignalThread {
        int signal_fd;
        int stop_fd;                   /* eventfd: ends the thread */
        SignalFn fn;
        void *userdata;
        pthread_t thread;
};

int signals_block(sigset_t *ret_mask) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        r = pthread_sigmask(SIG_BLOCK, &mask, NULL);
        if (r != 0)
                return -r;
        signal(SIGPIPE, SIG_IGN);
        *ret_mask = mask;
        return 0;
}

static void *signal_thread(void *userdata) {
        SignalThread *t = userdata;

        (void) prctl(PR_SET_NAME, "jw-signals"); /* top -H, bench/run's per-thread CPU */

        for (;;) {
                struct pollfd pfd[2] = {
                        { .fd = t->signal_fd, .events = POLLIN },
                        { .fd = t->stop_fd, .events = POLLIN },
                };
                struct signalfd_siginfo si;

                if (poll(pfd, ELEMENTSOF(pfd), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error("signal thread: poll: %m");
                        return NULL;
                }
                if (pfd[1].revents)
                        return NULL;
                if (!pfd[0].revents || read(t->signal_fd, &si, sizeof(si)) != sizeof(si))
                        continue;
                t->fn(t->userdata, (int) si.ssi_signo);
        }
}

static SignalThread *signal_thread_close(SignalThread *t) {
        safe_close(t->signal_fd);
        safe_close(t->stop_fd);
        free(t);
        return NULL;
}

int signal_thread_new(SignalThread **ret, const sigset_t *mask, SignalFn fn, void *userdata) {
        SignalThread *t = calloc(1, sizeof(*t));
        int r;

        if (!t)
                return -ENOMEM;
        t->fn = fn;
        t->userdata = userdata;
        t->signal_fd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
        t->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (t->signal_fd < 0 || t->stop_fd < 0) {
                r = negative_errno();
                log_error("cannot create signalfd/eventfd: %s", strerror(-r));
                signal_thread_close(t);
                return r;
        }
        r = -pthread_create(&t->thread, NULL, signal_thread, t);
        if (r < 0) {
                log_error("cannot start the signal thread: %s", strerror(-r));
                signal_thread_close(t);
                return r;
        }
        *ret = t;
        return 0;
}

SignalThread *signal_thread_free(SignalThread *t) {
        if (!t)
                return NULL;
        (void) !write(t->stop_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
        pthread_join(t->thread, NULL);
        return signal_thread_close(t);
}
