/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The rules for what a user may call a job: its name, its labels and the
 * request id of a Start. The server checks every Start against them here
 * (rpc/request.c) and jwctl checks its flags with the same functions, so
 * the two can never disagree. Documented in jobworkerd(8) and jwctl(1),
 * "NAMES AND LABELS".
 *
 *   name        1..64 of [A-Za-z0-9._-], beginning with a letter or a
 *               digit (never read as an option), with at least one character that
 *               is neither a hex digit nor '-': a name is never a job id
 *               nor a prefix of one (jwctl reads an argument made only of
 *               hex digits and '-' as an id). So none of ':' '@' ',' '/'
 *               or blanks (jwctl's host lists use the first three).
 *   label key   1..63 of [A-Za-z0-9._-]
 *   label value 0..63 of [A-Za-z0-9._-]
 *   labels      at most 16, keys unique; kept as one string
 *               "KEY=VALUE,KEY=VALUE" in the order given (',' and '=' are
 *               in neither keys nor values, so the string splits back
 *               exactly), that string at most 511 bytes (so a status
 *               stays small: engine_list() copies one per job).
 *   request id  1..64 of [A-Za-z0-9._-]
 *
 * Errors: -EINVAL for a character or a shape outside the rules, -E2BIG for
 * a size or a count over its bound; *msg (when msg) gets one line naming
 * the value (quoted printable) and the rule or the bound.
 *
 * Pure functions, no allocation; thread-safe.
 */

#include <stdbool.h>
#include <stddef.h>

#define JOB_NAME_MAX 64u
#define JOB_LABELS_MAX 16u
#define JOB_LABEL_KEY_MAX 63u
#define JOB_LABEL_VALUE_MAX 63u
#define JOB_REQUEST_ID_MAX 64u
/* The labels' joined string, bytes. */
#define JOB_LABELS_TEXT_MAX 511u

/* A message buffer big enough for any message of this module. */
#define JOB_NAME_MSG_MAX 256u

int job_name_check(const char *name, char *msg, size_t msg_size);
int job_label_check(const char *key, const char *value, char *msg, size_t msg_size);
int job_request_id_check(const char *id, char *msg, size_t msg_size);

/* s is made only of hex digits and '-' (what jwctl reads as a job id or a
 * prefix of one); false for "". */
bool job_name_looks_like_id(const char *s);

/* Checks n labels (each rule, the count, unique keys) and writes them as
 * "KEY=VALUE,..." into buf (size at least JOB_LABELS_TEXT_MAX + 1). */
int job_labels_join(const char *const *keys, const char *const *values, size_t n, char *buf, size_t size,
                    char *msg, size_t msg_size);

/* Walks a joined string: *pos starts at 0; each call gives the next label
 * as spans into text (not terminated). false when there is none left. */
bool job_labels_next(const char *text, size_t *pos, const char **ret_key, size_t *ret_key_len,
                     const char **ret_value, size_t *ret_value_len);

/* The joined labels have key with exactly value. */
bool job_labels_has(const char *text, const char *key, const char *value);

/* "KEY=VALUE" (as people type a label or a selector) into key and value,
 * each checked; the buffers hold the bounds above plus one. */
int job_label_parse(const char *arg, char key[static JOB_LABEL_KEY_MAX + 1], char value[static JOB_LABEL_VALUE_MAX + 1],
                    char *msg, size_t msg_size);
