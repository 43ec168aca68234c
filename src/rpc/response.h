/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Building response messages from engine data: JobStatus -> the protobuf
 * JobStatus, with strings made valid UTF-8 (proto3 clients refuse
 * anything else, and the engine cuts the command summary at a byte limit,
 * possibly inside a character).
 */

#include "core/engine.h"
#include "jobworker/v1/jobworker.pb-c.h"

/* The strings a converted status points to; must outlive the message. */
typedef struct ResponseStatusStrings {
        char job_id[JOB_ID_STRING_MAX];
        char owner[JOB_OWNER_MAX + 1];
        char command[JOB_COMMAND_MAX + 1];
        char name[JOB_NAME_MAX + 1];
        char labels[JOB_LABELS_TEXT_MAX + 1]; /* split in place */
        Jobworker__V1__Label label[JOB_LABELS_MAX];
        Jobworker__V1__Label *label_ptrs[JOB_LABELS_MAX];
} ResponseStatusStrings;

/* Fills *out (initialized here) from st; strings are copied to *strings. */
void response_job_status(const JobStatus *st, Jobworker__V1__JobStatus *out, ResponseStatusStrings *strings);

/* Copies src to dst (size bytes incl. NUL), replacing every byte that is not
 * part of a valid UTF-8 sequence (and every control byte but \t) by '?'. */
void response_utf8_sanitize(char *dst, size_t size, const char *src);

Jobworker__V1__JobState response_job_state(JobState s);
