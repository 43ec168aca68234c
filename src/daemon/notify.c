/* SPDX-License-Identifier: MIT */

/*
 * sd_notify for jobworkerd (see notify.h). The one idea: the watchdog is
 * pinged from a timer of the engine's own ring, so a stuck engine thread
 * stops the pings and systemd restarts the service — a separate thread
 * would keep pinging for a dead engine.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "daemon/notify.h"
#include "shared/time-util.h"

#define STATUS_INTERVAL_USEC 1000000ull

struct Notifier {
        Engine *engine;
        bool enabled;                   /* NOTIFY_SOCKET is set */
        NotifierStatusFn status;
        void *userdata;
        EngineTimer *status_timer;
        EngineTimer *watchdog_timer;
        uint64_t watchdog_usec;
        uint64_t last_status_usec;
        char last_status[256];
};

static void send_status(Notifier *n, bool force) {
        char text[256], msg[300];

        n->status(n->userdata, text, sizeof(text));
        n->last_status_usec = now_usec(CLOCK_MONOTONIC);
        if (!force && strcmp(text, n->last_status) == 0)
                return;
        snprintf(n->last_status, sizeof(n->last_status), "%s", text);
        snprintf(msg, sizeof(msg), "STATUS=%s", text);
        (void) sd_notify(0, msg);
}

static void on_status_timer(Engine *e, void *userdata) {
        send_status(userdata, false);
}

static void on_watchdog(Engine *e, void *userdata) {
        Notifier *n = userdata;
        (void) sd_notify(0, "WATCHDOG=1");
        (void) engine_timer_arm(n->engine, n->watchdog_timer, n->watchdog_usec / 2);
}

int notifier_new(Notifier **ret, Engine *e, NotifierStatusFn status, void *userdata) {
        Notifier *n = calloc(1, sizeof(Notifier));
        uint64_t usec = 0;
        int r;

        if (!n)
                return -ENOMEM;
        n->engine = e;
        n->status = status;
        n->userdata = userdata;
        n->enabled = getenv("NOTIFY_SOCKET") != NULL;

        r = engine_timer_new(e, on_status_timer, n, &n->status_timer);
        if (r < 0)
                goto fail;
        if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
                n->watchdog_usec = usec;
                r = engine_timer_new(e, on_watchdog, n, &n->watchdog_timer);
                if (r < 0)
                        goto fail;
                r = engine_timer_arm(e, n->watchdog_timer, usec / 2);
                if (r < 0)
                        goto fail;
        }
        *ret = n;
        return 0;
fail:
        notifier_free(n);
        return r;
}

Notifier *notifier_free(Notifier *n) {
        if (!n)
                return NULL;
        engine_timer_free(n->engine, n->status_timer);
        engine_timer_free(n->engine, n->watchdog_timer);
        free(n);
        return NULL;
}

void notifier_status_changed(Notifier *n) {
        if (!n || !n->enabled)
                return;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now - n->last_status_usec >= STATUS_INTERVAL_USEC) {
                send_status(n, false);
                return;
        }
        if (!engine_timer_armed(n->engine, n->status_timer))
                (void) engine_timer_arm(n->engine, n->status_timer, n->last_status_usec + STATUS_INTERVAL_USEC - now);
}

void notifier_ready(Notifier *n) {
        char text[256], msg[300];

        if (!n || !n->enabled)
                return;
        n->status(n->userdata, text, sizeof(text));
        snprintf(n->last_status, sizeof(n->last_status), "%s", text);
        n->last_status_usec = now_usec(CLOCK_MONOTONIC);
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", text);
        (void) sd_notify(0, msg);
}

void notifier_reloading(Notifier *n) {
        if (!n || !n->enabled)
                return;
        /* systemd 253+ wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload);
         * older ones ignore it. */
        (void) sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading policy and certificates",
                          (unsigned long long) now_usec(CLOCK_MONOTONIC));
}

void notifier_reloaded(Notifier *n) {
        notifier_ready(n);
}

void notifier_stopping(Notifier *n) {
        if (!n || !n->enabled)
                return;
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Stopping: running jobs are being stopped");
}
