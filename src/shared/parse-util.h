/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one grammar for quantities written by people: sizes, durations,
 * plain counts and fixed-point numbers. jobworkerd.conf, its flags, the
 * policy file and jwctl all read them here, so "1.5G" or "2min" means the
 * same thing everywhere (documented once, in jobworkerd(8) "QUANTITIES").
 *
 *   NUMBER    = DIGITS [ "." DIGITS ]     at most 9 digits after the point
 *   SIZE      = NUMBER [ " "... SIZE-UNIT ]
 *   SIZE-UNIT = "B"
 *             | ( K | M | G | T ) [ "i" ] [ "B" ]   (either case for K M G T)
 *   DURATION  = NUMBER [ " "... TIME-UNIT ]
 *   TIME-UNIT = "us" | "ms" | "s" | "sec" | "m" | "min" | "h" | "d"
 *
 * - Size units are binary whichever way they are spelled: K = Ki = KB =
 *   KiB = 1024 bytes, M = 1024 K, G = 1024 M, T = 1024 G. A bare number is
 *   bytes.
 * - A bare duration is seconds; "m" is a minute (sizes and durations are
 *   never read by the same parser, so "1m" is never ambiguous).
 * - Spaces may separate the number from its unit; nothing else may come
 *   before, between or after (no sign, no leading ".", no exponent, no
 *   trailing blanks).
 * - The value is computed exactly and then rounded toward zero to a whole
 *   byte or microsecond: "0.1K" = 102 bytes, "1.5us" = 1 us.
 *
 * Errors: -EINVAL for anything outside the grammar (also NULL and ""),
 * -ERANGE for a value that does not fit in 64 bits. Syntax is checked before
 * range, so a malformed string is always -EINVAL. Callers that have tighter
 * bounds (0 refused, a maximum) check them and word their own message,
 * naming the option, line or key.
 *
 * Pure functions: no allocation, no locale, no errno; thread-safe.
 */

#include <stdint.h>

#define PARSE_FRACTION_DIGITS_MAX 9u

/* SIZE to bytes. */
int parse_size(const char *s, uint64_t *ret_bytes);

/* DURATION to microseconds. */
int parse_duration(const char *s, uint64_t *ret_usec);

/* DIGITS only (no point, no unit): a count, a port, an offset. */
int parse_uint64(const char *s, uint64_t *ret);

/* NUMBER without a unit, scaled by 10^decimals and returned as an integer:
 * parse_fixed("0.25", 3, &v) gives 250. More than `decimals` digits after
 * the point is -EINVAL (the value cannot be represented), as is
 * decimals > PARSE_FRACTION_DIGITS_MAX. Used for CPUs ("0.5"). */
int parse_fixed(const char *s, unsigned decimals, uint64_t *ret);

/* usec as a DURATION that parse_duration() reads back exactly, in the
 * largest unit that divides it: "30m", "90s", "1500ms", "2h", "3d", "0s".
 * buf of at least PARSE_DURATION_STRING_MAX bytes; returns buf. */
#define PARSE_DURATION_STRING_MAX 32u
const char *format_duration(uint64_t usec, char *buf);
