/* SPDX-License-Identifier: MIT */
/*
 * Engine data to response messages (see response.h). The one idea: every
 * string sent is valid UTF-8, whatever bytes a job's argv or a
 * certificate's CN contained.
 */

#include <string.h>

#include "rpc/response.h"
#include "shared/job-name.h"
#include "shared/utf8.h"

void response_utf8_sanitize(char *dst, size_t size, const char *src) {
        const unsigned char *s = (const unsigned char *) src;
        size_t n = strlen(src), i = 0, k = 0;

        if (size == 0)
                return;
        while (i < n && k + 1 < size) {
                size_t l = utf8_char_len(s + i, n - i);

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
        case JOB_STATE_ENDED:
                return JOBWORKER__V1__JOB_STATE__JOB_STATE_ENDED;
        }
        return JOBWORKER__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
}

/* The joined labels back into Label messages (copied and split in place:
 * ',' and '=' never occur in a key or a value). */
static void response_labels(const JobStatus *st, Jobworker__V1__JobStatus *out, ResponseStatusStrings *strings) {
        const char *k, *v;
        size_t pos = 0, kl, vl, n = 0;

        memcpy(strings->labels, st->labels, sizeof(strings->labels));
        strings->labels[sizeof(strings->labels) - 1] = 0;
        while (n < JOB_LABELS_MAX && job_labels_next(strings->labels, &pos, &k, &kl, &v, &vl)) {
                jobworker__v1__label__init(&strings->label[n]);
                ((char *) k)[kl] = 0;
                ((char *) v)[vl] = 0;
                strings->label[n].key = (char *) k;
                strings->label[n].value = (char *) v;
                strings->label_ptrs[n] = &strings->label[n];
                n++;
        }
        out->n_labels = n;
        out->labels = n ? strings->label_ptrs : NULL;
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
        out->process_alive = st->process_alive;
        out->files_removed = st->files_removed;
        out->max_runtime_ms = st->max_runtime_usec / 1000;
        out->timed_out = st->timed_out;
        response_utf8_sanitize(strings->name, sizeof(strings->name), st->name);
        out->name = strings->name;
        response_labels(st, out, strings);
        out->stdin_state = (Jobworker__V1__StdinState) st->stdin_state; /* the same numbers */
        out->tty = st->tty;
}
