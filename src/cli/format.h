/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * How jwctl shows job statuses: aligned text for people, JSON for scripts
 * (field names documented in jwctl(1) and kept stable). JSON is written by
 * hand: strings are escaped, and bytes that are not valid UTF-8 become
 * U+FFFD so the output is always valid JSON.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "jobworker/v1/jobworker.pb-c.h"

typedef Jobworker__V1__JobStatus CliJobStatus;

/* Writes s (n bytes, may contain NUL or invalid UTF-8) as a JSON string,
 * with the quotes. */
void cli_json_write_string(FILE *f, const char *s, size_t n);

/* One JSON object (no newline). */
void cli_format_status_json(FILE *f, const CliJobStatus *st);
/* "[\n{...},\n{...}\n]\n", or "[]\n". */
void cli_format_list_json(FILE *f, CliJobStatus *const *jobs, size_t n);

/* "Key: value" lines. Times in the local time zone. */
void cli_format_status_text(FILE *f, const CliJobStatus *st);
/* A table with a header line, columns aligned. */
void cli_format_list_text(FILE *f, CliJobStatus *const *jobs, size_t n);
/* The job's labels as "KEY=VALUE" joined by sep, terminal-safe; malloc()ed,
 * NULL when out of memory. */
char *cli_labels_text(const CliJobStatus *st, const char *sep);

/* "running", "exited 3", "killed SIGKILL", "lost", ...: buf of at least 64. */
const char *cli_state_short(const CliJobStatus *st, char buf[static 64]);

/* Copies s into a malloc()ed string safe to print on a terminal: control
 * characters and invalid UTF-8 become '?'. NULL if out of memory. */
char *cli_terminal_safe(const char *s);

/* "512 B", "1.5 MiB", "2.0 GiB" (one decimal, rounded down): buf of at
 * least 32. */
const char *cli_format_bytes(uint64_t bytes, char *buf, size_t size);

/* "SIGKILL" for 9, "SIG37" for one without a name. buf of at least 16. */
const char *cli_signal_name(int sig, char buf[static 16]);
