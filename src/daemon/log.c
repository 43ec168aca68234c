/* SPDX-License-Identifier: MIT */
/*
 * Logging of jobworkerd (see log.h).
 *
 * The one idea: one place formats and writes every line with a single
 * write(2), so lines of different threads never interleave; and that place
 * escapes what it writes (log_escape()), so no client-chosen string (a CN,
 * an argv, a job id, a peer address) brings control bytes or broken UTF-8
 * into the log, whichever call site quoted it.
 *
 * The maximum level is the one file-scope mutable variable of the daemon:
 * every thread (engine, bridge callbacks, signals) logs, and threading a
 * context through every callback only to read one integer would buy
 * nothing. It is set once at start-up (atomically, to be safe on reload).
 * The same goes for the journal switch, decided once by log_open().
 */

#include <assert.h>
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
#include "shared/utf8.h"
#include "shared/time-util.h"

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

/* Whether the unit of len bytes at c goes to the log as it is. */
static bool log_byte_plain(const unsigned char *c, size_t len) {
        if (len == 0)
                return false;                   /* not valid UTF-8 */
        if (len == 1)
                return c[0] >= 0x20 && c[0] != 0x7f; /* C0 controls, DEL */
        return !(len == 2 && c[0] == 0xc2 && c[1] < 0xa0); /* C1 controls */
}

size_t log_escape(char *dst, size_t size, const char *src, size_t n) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *s = (const unsigned char *) src;
        size_t i = 0, k = 0;

        assert(size >= 1);
        while (i < n) {
                size_t len = utf8_char_len(s + i, n - i), want;

                if (s[i] == '\n' || s[i] == '\r') {
                        if (k + 1 >= size)
                                break;
                        dst[k++] = ' '; /* one line: a message cannot forge a second */
                        i++;
                } else if (log_byte_plain(s + i, len)) {
                        if (k + len >= size)
                                break;
                        memcpy(dst + k, s + i, len);
                        k += len;
                        i += len;
                } else {
                        want = len == 0 ? 1 : len; /* escape every byte of the unit */
                        if (k + 4 * want >= size)
                                break;
                        for (size_t j = 0; j < want; j++, i++) {
                                dst[k++] = '\\';
                                dst[k++] = 'x';
                                dst[k++] = hex[s[i] >> 4];
                                dst[k++] = hex[s[i] & 0xf];
                        }
                }
        }
        dst[k] = 0;
        return k;
}

/* "KEY=" and the escaped value of field f, malloc()ed; NULL when f needs
 * no escaping (or memory ran out: then f goes as it is, which journald
 * stores safely as binary). */
static char *journal_field_escaped(const char *f) {
        size_t n = strlen(f), cap = 4 * n + 1;
        bool plain = true;
        char *copy;

        for (size_t i = 0; i < n && plain; i++)
                plain = (unsigned char) f[i] >= 0x20 && (unsigned char) f[i] < 0x7f;
        if (plain)
                return NULL;
        copy = malloc(cap);
        if (copy)
                log_escape(copy, cap, f, n);
        return copy;
}

int log_journal_entry(LogJournalEntry *ret, int level, const char *const *fields, const char *msg) {
        LogJournalEntry *e = ret;
        static const char ident[] = "SYSLOG_IDENTIFIER=jobworkerd";

        *e = (LogJournalEntry) {};
        size_t n = strlen(msg), cap = sizeof("MESSAGE=") - 1 + 4 * n + 1;
        e->message = malloc(cap);
        if (!e->message)
                return -ENOMEM;
        memcpy(e->message, "MESSAGE=", sizeof("MESSAGE=") - 1);
        log_escape(e->message + sizeof("MESSAGE=") - 1, cap - (sizeof("MESSAGE=") - 1), msg, n);
        snprintf(e->priority, sizeof(e->priority), "PRIORITY=%d", level);
        e->iov[e->n_iov++] = (struct iovec) { e->message, strlen(e->message) };
        e->iov[e->n_iov++] = (struct iovec) { e->priority, strlen(e->priority) };
        e->iov[e->n_iov++] = (struct iovec) { (char *) ident, strlen(ident) };
        for (size_t i = 0; fields && fields[i] && e->n_iov < ELEMENTSOF(e->iov); i++) {
                char *copy = journal_field_escaped(fields[i]);
                const char *f = copy ?: fields[i];

                e->copies[e->n_iov] = copy;
                e->iov[e->n_iov++] = (struct iovec) { (char *) f, strlen(f) };
        }
        return 0;
}

void log_journal_entry_done(LogJournalEntry *e) {
        free(e->message);
        e->message = NULL;
        for (size_t i = 0; i < e->n_iov; i++) {
                free(e->copies[i]);
                e->copies[i] = NULL;
        }
        e->n_iov = 0;
}

static void journal_send(int level, const char *const *fields, const char *msg) {
        LogJournalEntry e;

        if (log_journal_entry(&e, level, fields, msg) < 0)
                return;
        (void) sd_journal_sendv(e.iov, (int) e.n_iov);
        log_journal_entry_done(&e);
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

size_t log_format_stderr(char *buf, size_t size, bool tty, int level, const char *fmt, va_list ap) {
        char raw[LOG_LINE_MAX];
        int saved = errno, n, k;

        assert(size >= 2);
        if (tty)
                n = snprintf(buf, size, "jobworkerd: %s%s", level <= LOG_WARNING ? log_level_to_string(level) : "",
                             level <= LOG_WARNING ? ": " : "");
        else
                n = snprintf(buf, size, "<%d>", level);
        n = MIN((size_t) MAX(n, 0), size - 2);
        errno = saved; /* for %m */
        k = vsnprintf(raw, sizeof(raw), fmt, ap);
        if (k < 0)
                k = 0;
        n += (int) log_escape(buf + n, size - n - 1, raw, MIN((size_t) k, sizeof(raw) - 1));
        buf[n++] = '\n';
        buf[n] = 0;
        return (size_t) n;
}

void log_fieldsv(int level, const char *const *fields, const char *fmt, va_list ap) {
        char buf[2 * LOG_LINE_MAX]; /* room for escapes */
        int saved = errno;
        bool tty;
        size_t n;

        if (level > log_get_max_level())
                return;
        if (atomic_load(&to_journal)) {
                if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
                        return;
                journal_send(level, fields, buf);
                errno = saved;
                return;
        }
        tty = isatty(STDERR_FILENO);
        errno = saved; /* isatty() sets it; the message may use %m */
        n = log_format_stderr(buf, sizeof(buf), tty, level, fmt, ap);
        (void) !write(STDERR_FILENO, buf, n);
        errno = saved;
}

void log_fields(int level, const char *const *fields, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_fieldsv(level, fields, fmt, ap);
        va_end(ap);
}

void log_ratelimited(LogRateLimit *rl, int level, const char *const *fields, const char *fmt, ...) {
        unsigned long long now = now_usec(CLOCK_MONOTONIC);
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
