/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Signal names and numbers as `jwctl kill -s SIGNAL` takes them: a name in
 * any case, with or without "SIG" (TERM, sigterm, SIGUSR1, RTMIN+3,
 * RTMAX-1), or a number from 1 to CLI_SIGNAL_MAX. Linux numbering, that of
 * the server. Pure functions, no I/O.
 */

#define CLI_SIGNAL_MAX 64

/* 0 and *ret set, or -EINVAL for an unknown name or a number out of range. */
int cli_signal_parse(const char *s, int *ret);

/* sig's name without "SIG", as cli_signal_parse() reads it back ("TERM",
 * "RTMIN+2", "RTMAX-1"), in buf (CLI_SIGNAL_NAME_MAX bytes); NULL for a
 * number without a name (0, above CLI_SIGNAL_MAX, or 32 and 33, which the
 * C library keeps for itself). */
#define CLI_SIGNAL_NAME_MAX 16
const char *cli_signal_abbrev(int sig, char buf[static CLI_SIGNAL_NAME_MAX]);
