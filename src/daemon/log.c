/* SPDX-License-Identifier: MIT */
/*
 * Logging of jobworkerd (see log.h).
 *
 * The one idea: one place formats and writes every line with a single
 * write(2), so lines of different threads never interleave.
 *
 * The maximum level is the one file-scope mutable variable of the daemon:
 * every thread (engine, bridge callbacks, signals) logs, and threading a
 * context through every callback only to read one integer would buy
 * nothing. It is set once at start-up (atomically, to be safe on reload).
 * The same goes for the journal switch, decided once by log_open().
 */

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"

static atomic_int max_level = LOG_INFO; /* see the comment above */
static atomic_bool to_journal;           /* see the comment above */

void log_open(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) >= 0 &&
            (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino)
                atomic_store(&to_journal, true);
}

static void journal_send(int level, const char *const *fields, const char *msg) {
        struct iovec iov[16];
        char prio[16];
        _cleanup_free_ char *m = NULL;
        size_t n = 0;

        if (asprintf(&m, "MESSAGE=%s", msg) < 0)
                return;
        snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
        iov[n++] = (struct iovec) { m, strlen(m) };
        iov[n++] = (struct iovec) { prio, strlen(prio) };
        iov[n++] = (struct iovec) { (char *) "SYSLOG_IDENTIFIER=jobworkerd", strlen("SYSLOG_IDENTIFIER=jobworkerd") };
        for (size_t i = 0; fields && fields[i] && n < ELEMENTSOF(iov); i++)
                iov[n++] = (struct iovec) { (char *) fields[i], strlen(fields[i]) };
        (void) sd_journal_sendv(iov, (int) n);
}

void log_set_max_level(int level) {
        atomic_store(&max_level, level);
}

int log_get_max_level(void) {
        return atomic_load(&max_level);
}

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",  [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "error",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

const char *log_level_to_string(int level) {
        return level >= 0 && level <= LOG_DEBUG ? level_names[level] : "unknown";
}

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == 0)
                return s[0] - '0';
        if (strcasecmp(s, "err") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        for (int i = 0; i <= LOG_DEBUG; i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return i;
        return -EINVAL;
}

void log_fieldsv(int level, const char *const *fields, const char *fmt, va_list ap) {
        char buf[2048];
        int saved = errno, n, k;

        if (level > log_get_max_level())
                return;
        if (atomic_load(&to_journal)) {
                errno = saved;
                if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
                        return;
                journal_send(level, fields, buf);
                errno = saved;
                return;
        }
        if (isatty(STDERR_FILENO))
                n = snprintf(buf, sizeof(buf), "jobworkerd: %s%s",
                             level <= LOG_WARNING ? log_level_to_string(level) : "",
                             level <= LOG_WARNING ? ": " : "");
        else
                n = snprintf(buf, sizeof(buf), "<%d>", level);
        if (n < 0)
                n = 0;
        errno = saved;
        k = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
        if (k < 0)
                k = 0;
        n = MIN((size_t) n + (size_t) k, sizeof(buf) - 2);
        /* One line: a message cannot smuggle in a second one. */
        for (int i = 0; i < n; i++)
                if (buf[i] == '\n' || buf[i] == '\r')
                        buf[i] = ' ';
        buf[n++] = '\n';
        (void) !write(STDERR_FILENO, buf, n);
        errno = saved;
}

void log_fields(int level, const char *const *fields, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_fieldsv(level, fields, fmt, ap);
        va_end(ap);
}

static unsigned long long now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (unsigned long long) ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

void log_ratelimited(LogRateLimit *rl, int level, const char *const *fields, const char *fmt, ...) {
        unsigned long long now = now_usec();
        unsigned suppressed = 0;
        bool pass;
        va_list ap;

        if (level > log_get_max_level())
                return;

        while (__atomic_exchange_n(&rl->lock, 1, __ATOMIC_ACQUIRE))
                ;
        if (rl->begin_usec == 0 || now - rl->begin_usec >= rl->interval_usec) {
                suppressed = rl->suppressed;
                rl->begin_usec = now;
                rl->count = 0;
                rl->suppressed = 0;
        }
        pass = rl->count < rl->burst;
        if (pass)
                rl->count++;
        else
                rl->suppressed++;
        __atomic_store_n(&rl->lock, 0, __ATOMIC_RELEASE);

        if (suppressed > 0)
                log_fields(LOG_WARNING, NULL, "%u similar messages suppressed", suppressed);
        if (!pass)
                return;
        va_start(ap, fmt);
        log_fieldsv(level, fields, fmt, ap);
        va_end(ap);
}
