/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's logging: every log line of jobworkerd goes through here, so
 * that the journal gets every line with its structured fields. Under
 * systemd lines go to the journal with sd_journal_send(); otherwise to
 * stderr, prefixed with the syslog level as "<N>" when stderr is not a
 * terminal, and with "error: "-style words when it is.
 *
 * Every message and every field value is escaped here, once, on its way
 * out (log_escape()): call sites pass client-chosen strings (CNs, argvs,
 * job ids, peer addresses, paths) as they are.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>
#include <syslog.h>

#include "shared/macro.h"

/* MESSAGE_ID= of the events an operator may want to find with journalctl. */
#define LOG_MID_JOB_STARTED "MESSAGE_ID=40619265a4624148a0cb6c2a1ebcbb35"
#define LOG_MID_JOB_EXITED "MESSAGE_ID=52ca947aa3194e0e82f6739aaca7977d"
#define LOG_MID_JOB_STOP "MESSAGE_ID=9b3ef9d581af489b9dafd8123f7eb2f1"
#define LOG_MID_JOB_SIGNAL "MESSAGE_ID=65efa9970a6b475f8e9d03a2cee46aee"
#define LOG_MID_CONNECTION_ACCEPTED "MESSAGE_ID=fedfff9d7b9b44589fcf539ec03db6ed"
#define LOG_MID_CONNECTION_REFUSED "MESSAGE_ID=0a1cc5e98a28415a9b09388af6a3b4be"
#define LOG_MID_PERMISSION_DENIED "MESSAGE_ID=52192d01552441679d863242383c196a"
#define LOG_MID_POLICY_RELOADED "MESSAGE_ID=03df9e1956454acc85177a55fda7cbae"

/* Decides once, at start, where lines go: the journal (sd_journal_send,
 * with the structured fields) when stderr is connected to it
 * (JOURNAL_STREAM names stderr's device and inode), else stderr. */
void log_open(void);

/* Levels are syslog's: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG. */
void log_set_max_level(int level);
int log_get_max_level(void);
/* "err"/"error", "warning", "notice", "info", "debug", or a digit 0..7; -EINVAL otherwise. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* fields: NULL or a NULL-terminated list of "KEY=value" journal fields
 * (JOB_ID=, JOB_OWNER=, CLIENT=, PEER_ADDR=, ...). On stderr they are not
 * printed; the message must make sense without them. Keeps errno. */
void log_fields(int level, const char *const *fields, const char *fmt, ...) _printf_(3, 4);
void log_fieldsv(int level, const char *const *fields, const char *fmt, va_list ap) _printf_(3, 0);

#define log_error(...) log_fields(LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...) log_fields(LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...) log_fields(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...) log_fields(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_fields(LOG_DEBUG, NULL, __VA_ARGS__)

/* A token bucket so that clients cannot make the daemon log without bound.
 * Thread-safe. */
typedef struct LogRateLimit {
        unsigned burst;          /* lines per interval */
        unsigned long long interval_usec;
        /* internal */
        unsigned long long begin_usec;
        unsigned count;
        unsigned suppressed;
        int lock;                /* spin lock word */
} LogRateLimit;

#define LOG_RATELIMIT_INIT(b, i) { .burst = (b), .interval_usec = (i) }

/* Like log_fields(), unless more than burst lines were logged through rl
 * in this interval (then counted, and reported once the interval is over). */
void log_ratelimited(LogRateLimit *rl, int level, const char *const *fields, const char *fmt, ...) _printf_(4, 5);

/* Formatting, used by log_fields() and exposed for tests. ---------------- */

/* The longest message, before escaping; longer ones are cut. */
#define LOG_LINE_MAX 2048

/* The n bytes at src made fit for one log line, into dst (size >= 1,
 * NUL-terminated): CR and LF become spaces; every other C0 control byte
 * (tab too), DEL, each byte of a C1 control (U+0080..U+009F) and each byte
 * that is not part of valid UTF-8 becomes "\xNN" (lowercase hex); valid
 * UTF-8 text stays as it is. A backslash is not doubled, so text that was
 * escaped before (status files, '?'-quoted reasons) reads the same. Cut to
 * fit size at a whole character or escape, never inside one. Returns the
 * length written without the NUL. */
size_t log_escape(char *dst, size_t size, const char *src, size_t n);

/* The stderr line of a message: "<N>message\n", or on a terminal
 * "jobworkerd: message\n" with "error: "/"warning: " before the message at
 * those levels. The message is escaped by log_escape(); the line is cut to
 * fit size (>= 2) with its newline, and NUL-terminated. Returns its length
 * without the NUL. fmt may use %m (errno is kept). */
size_t log_format_stderr(char *buf, size_t size, bool tty, int level, const char *fmt, va_list ap) _printf_(5, 0);

/* A journal entry: MESSAGE=, PRIORITY=, SYSLOG_IDENTIFIER=jobworkerd, then
 * the fields (as many as fit in iov); the message and the fields escaped by
 * log_escape(). iov points into the entry and into the caller's fields
 * (valid as long as they are): do not copy it. -ENOMEM, or 0; free with
 * log_journal_entry_done(). */
typedef struct LogJournalEntry {
        char *message;
        char priority[16];
        struct iovec iov[16];
        char *copies[16];        /* escaped copies of fields, by iov index, or NULL */
        size_t n_iov;
} LogJournalEntry;

int log_journal_entry(LogJournalEntry *ret, int level, const char *const *fields, const char *msg);
void log_journal_entry_done(LogJournalEntry *e);
