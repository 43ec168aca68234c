/* SPDX-License-Identifier: MIT */
#pragma once

#include "shared/signal-name.h"

/*
 * Signal names and numbers as `jwctl kill -s SIGNAL` takes them: a name in
 * any case, with or without "SIG" (TERM, sigterm, SIGUSR1, RTMIN+3,
 * RTMAX-1), or a number from 1 to CLI_SIGNAL_MAX. Linux numbering, that of
 * the server. Pure functions, no I/O.
 */

#define CLI_SIGNAL_MAX SIGNAL_NUMBER_MAX /* names: shared/signal-name.h */

/* 0 and *ret set, or -EINVAL for an unknown name or a number out of range. */
int cli_signal_parse(const char *s, int *ret);

/* What cli_signal_parse() takes, for error messages (64: CLI_SIGNAL_MAX). */
#define CLI_SIGNAL_EXPECTED "a name like TERM, SIGUSR1, hup or RTMIN+2, or a number from 1 to 64"
_Static_assert(CLI_SIGNAL_MAX == 64, "CLI_SIGNAL_EXPECTED names the bound");
