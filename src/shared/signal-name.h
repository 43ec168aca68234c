/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Signal numbers as names, one spelling for the daemon's log and jwctl's
 * output: the C library's abbreviations (sigabbrev_np) for the classic
 * signals, and RTMIN, RTMIN+n, RTMAX-n, RTMAX for the real-time ones, as
 * kill -l and bash count them. Linux numbering. Pure, no I/O.
 */

#define SIGNAL_NUMBER_MAX 64
#define SIGNAL_NAME_MAX 16

/* sig's name without "SIG" ("TERM", "RTMIN+2", "RTMAX-1") in buf; NULL for
 * a number without a name (0, above SIGNAL_NUMBER_MAX, or 32 and 33, which
 * the C library keeps for itself). */
const char *signal_abbrev(int sig, char buf[static SIGNAL_NAME_MAX]);
