/* SPDX-License-Identifier: MIT */
#pragma once

/* Job ids: 128 random bits, written as a lower-case RFC 4122 UUID (v4). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct JobId {
        uint8_t bytes[16];
} JobId;

#define JOB_ID_STRING_MAX 37 /* 36 characters and the NUL */

/* Fills *ret with fresh random bits (getrandom). */
int job_id_generate(JobId *ret);
/* Writes the 36-character form into buf (at least JOB_ID_STRING_MAX). */
char *job_id_to_string(const JobId *id, char buf[static JOB_ID_STRING_MAX]);
/* Parses the 36-character form (either case). -EINVAL if malformed. */
int job_id_from_string(const char *s, JobId *ret);
bool job_id_equal(const JobId *a, const JobId *b);
/* True if s (lower or upper case hex with optional dashes as in the full
 * form) is a prefix of id's string form. */
bool job_id_has_prefix(const JobId *id, const char *s);
