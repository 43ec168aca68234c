/* SPDX-License-Identifier: MIT */
/*
 * Engine data to response messages (see response.h). The one idea: every
 * string sent is valid UTF-8, whatever bytes a job's argv or a
 * certificate's CN contained.
 */

#include <string.h>

#include "rpc/response.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
        size_t len;
        uint32_t cp;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
                cp = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                cp = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                cp = s[0] & 0x07;
        } else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

void response_utf8_sanitize(char *dst, size_t size, const char *src) {
        const unsigned char *s = (const unsigned char *) src;
        size_t n = strlen(src), i = 0, k = 0;

        if (size == 0)
                return;
        while (i < n && k + 1 < size) {
                size_t l = utf8_seq(s + i, n - i);

                if (l == 0 || (l == 1 && ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f))) {
                        dst[k++] = '?';
                        i++;
                        continue;
                }
                if (k + l >= size)
                        break;
                memcpy(dst + k, s + i, l);
                k += l;
                i += l;
        }
        dst[k] = 0;
}

Jobworker__V1__JobState response_job_state(JobState s) {
        switch (s) {
        case JOB_STATE_RUNNING:
                return JOBWORKER__V1__JOB_STATE__JOB_STATE_RUNNING;
        case JOB_STATE_EXITED:
                return JOBWORKER__V1__JOB_STATE__JOB_STATE_EXITED;
        case JOB_STATE_KILLED:
                return JOBWORKER__V1__JOB_STATE__JOB_STATE_KILLED;
        case JOB_STATE_LOST:
                return JOBWORKER__V1__JOB_STATE__JOB_STATE_LOST;
        }
        return JOBWORKER__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
}

void response_job_status(const JobStatus *st, Jobworker__V1__JobStatus *out, ResponseStatusStrings *strings) {
        job_id_to_string(&st->id, strings->job_id);
        response_utf8_sanitize(strings->owner, sizeof(strings->owner), st->owner);
        response_utf8_sanitize(strings->command, sizeof(strings->command), st->command);

        jobworker__v1__job_status__init(out);
        out->job_id = strings->job_id;
        out->state = response_job_state(st->state);
        out->exit_code = st->state == JOB_STATE_EXITED ? st->exit_code : 0;
        out->signal = st->state == JOB_STATE_KILLED ? st->signal : 0;
        out->stop_requested = st->stop_requested;
        out->pid = st->pid;
        out->owner = strings->owner;
        out->command = strings->command;
        out->start_time_us = st->start_usec;
        out->end_time_us = st->end_usec;
        out->stdout_bytes = st->stdout_bytes;
        out->stderr_bytes = st->stderr_bytes;
        out->output_truncated = st->truncated;
        out->dropped_bytes = st->dropped_bytes;
        out->has_cgroup = st->has_cgroup;
        out->cpu_usec = st->has_cgroup ? st->cpu_usec : 0;
        out->memory_peak_bytes = st->has_cgroup ? st->memory_peak : 0;
        out->oom_kills = st->has_cgroup ? st->oom_kills : 0;
        out->oom_killed = st->oom_killed;
}
