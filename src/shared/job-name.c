/* SPDX-License-Identifier: MIT */
/*
 * Names, labels and request ids of jobs: the rules of job-name.h, checked
 * in one place for the server and for jwctl.
 *
 * The one idea: every value is a word of one small alphabet
 * ([A-Za-z0-9._-]) with a length bound, so a name or a label can be shown,
 * stored in a record line, joined with ',' and '=' and put in a host list
 * without any quoting, and a name can always be told from a job id.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shared/job-name.h"
#include "shared/macro.h"

static bool word_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
}

static bool id_char(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-';
}

static _printf_(4, 5) int fail(char *msg, size_t msg_size, int r, const char *fmt, ...) {
        va_list ap;

        if (msg && msg_size > 0) {
                va_start(ap, fmt);
                vsnprintf(msg, msg_size, fmt, ap);
                va_end(ap);
        }
        return r;
}

/* At most 70 bytes of s for a message, non-printable bytes as '?'. */
static const char *shown(const char *s, char out[static 75]) {
        size_t k = 0;

        for (; s[k] && k < 70; k++)
                out[k] = (unsigned char) s[k] < 0x20 || (unsigned char) s[k] >= 0x7f ? '?' : s[k];
        strcpy(out + k, s[k] ? "..." : "");
        return out;
}

/* A word of 'what': min..max bytes of word_char. */
static int check_word(const char *what, const char *s, size_t min, size_t max, char *msg, size_t msg_size) {
        size_t len = strlen(s);
        char q[75];

        if (len < min)
                return fail(msg, msg_size, -EINVAL, "%s is empty", what);
        if (len > max)
                return fail(msg, msg_size, -E2BIG, "%s '%s' is too long: %zu bytes (at most %zu)", what, shown(s, q), len,
                            max);
        for (size_t i = 0; i < len; i++)
                if (!word_char(s[i]))
                        return fail(msg, msg_size, -EINVAL,
                                    "%s '%s' has a character that is not allowed at position %zu (allowed: A-Z a-z 0-9 . _ -)",
                                    what, shown(s, q), i + 1);
        return 0;
}

bool job_name_looks_like_id(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!id_char(*s))
                        return false;
        return true;
}

int job_name_check(const char *name, char *msg, size_t msg_size) {
        char q[75];
        int r = check_word("job name", name, 1, JOB_NAME_MAX, msg, msg_size);

        if (r < 0)
                return r;
        /* Never mistaken for an option on a command line. */
        if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= '0' && name[0] <= '9')))
                return fail(msg, msg_size, -EINVAL, "job name '%s' must begin with a letter or a digit", shown(name, q));
        if (job_name_looks_like_id(name))
                return fail(msg, msg_size, -EINVAL,
                            "job name '%s' could be read as a job id: a name needs a character other than 0-9, a-f and '-'",
                            shown(name, q));
        return 0;
}

int job_label_check(const char *key, const char *value, char *msg, size_t msg_size) {
        int r = check_word("label key", key, 1, JOB_LABEL_KEY_MAX, msg, msg_size);

        if (r < 0)
                return r;
        return check_word("label value", value, 0, JOB_LABEL_VALUE_MAX, msg, msg_size);
}

int job_request_id_check(const char *id, char *msg, size_t msg_size) {
        return check_word("request id", id, 1, JOB_REQUEST_ID_MAX, msg, msg_size);
}

int job_labels_join(const char *const *keys, const char *const *values, size_t n, char *buf, size_t size,
                    char *msg, size_t msg_size) {
        size_t len = 0;
        char q[75];
        int r;

        if (n > JOB_LABELS_MAX)
                return fail(msg, msg_size, -E2BIG, "too many labels: %zu (at most %u)", n, JOB_LABELS_MAX);
        for (size_t i = 0; i < n; i++) {
                r = job_label_check(keys[i], values[i], msg, msg_size);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (strcmp(keys[k], keys[i]) == 0)
                                return fail(msg, msg_size, -EINVAL, "label key '%s' is given twice", shown(keys[i], q));
                len += (i ? 1 : 0) + strlen(keys[i]) + 1 + strlen(values[i]);
        }
        if (len > JOB_LABELS_TEXT_MAX)
                return fail(msg, msg_size, -E2BIG, "labels are too long together: %zu bytes as KEY=VALUE,... (at most %u)",
                            len, JOB_LABELS_TEXT_MAX);
        if (len >= size)
                return fail(msg, msg_size, -ENOBUFS, "labels do not fit");
        len = 0;
        for (size_t i = 0; i < n; i++)
                len += (size_t) snprintf(buf + len, size - len, "%s%s=%s", i ? "," : "", keys[i], values[i]);
        if (n == 0)
                buf[0] = 0;
        return 0;
}

bool job_labels_next(const char *text, size_t *pos, const char **ret_key, size_t *ret_key_len,
                     const char **ret_value, size_t *ret_value_len) {
        const char *p = text + *pos, *end, *eq;

        if (!*p)
                return false;
        end = strchrnul(p, ',');
        eq = memchr(p, '=', (size_t) (end - p));
        *ret_key = p;
        *ret_key_len = eq ? (size_t) (eq - p) : (size_t) (end - p);
        *ret_value = eq ? eq + 1 : end;
        *ret_value_len = eq ? (size_t) (end - eq - 1) : 0;
        *pos = (size_t) (end - text) + (*end ? 1 : 0);
        return true;
}

bool job_labels_has(const char *text, const char *key, const char *value) {
        size_t pos = 0, kl, vl, want_kl = strlen(key), want_vl = strlen(value);
        const char *k, *v;

        while (job_labels_next(text, &pos, &k, &kl, &v, &vl))
                if (kl == want_kl && memcmp(k, key, kl) == 0)
                        return vl == want_vl && memcmp(v, value, vl) == 0;
        return false;
}

int job_label_parse(const char *arg, char key[static JOB_LABEL_KEY_MAX + 1], char value[static JOB_LABEL_VALUE_MAX + 1],
                    char *msg, size_t msg_size) {
        const char *eq = strchr(arg, '=');
        size_t kl;
        char q[75];
        int r;

        if (!eq)
                return fail(msg, msg_size, -EINVAL, "label '%s' is not of the form KEY=VALUE", shown(arg, q));
        kl = (size_t) (eq - arg);
        if (kl > JOB_LABEL_KEY_MAX)
                return fail(msg, msg_size, -E2BIG, "label key of '%s' is too long: %zu bytes (at most %u)", shown(arg, q),
                            kl, JOB_LABEL_KEY_MAX);
        if (strlen(eq + 1) > JOB_LABEL_VALUE_MAX)
                return fail(msg, msg_size, -E2BIG, "label value of '%s' is too long: %zu bytes (at most %u)",
                            shown(arg, q), strlen(eq + 1), JOB_LABEL_VALUE_MAX);
        memcpy(key, arg, kl);
        key[kl] = 0;
        strcpy(value, eq + 1);
        r = job_label_check(key, value, msg, msg_size);
        return r < 0 ? r : 0;
}
