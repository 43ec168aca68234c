/* SPDX-License-Identifier: MIT */

/*
 * The grammar of parse-util.h: sizes, durations, counts, fixed-point.
 *
 * The one idea: every quantity is a NUMBER (integer part, up to nine
 * fraction digits) times a unit's multiplier, computed exactly in 64-bit
 * integers and cut toward zero; the parsers differ only in their unit
 * tables. Overflow is remembered while reading and reported only once the
 * whole string has proved well-formed, so garbage is always -EINVAL.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "shared/macro.h"
#include "shared/parse-util.h"

typedef struct Decimal {
        uint64_t integer;
        uint64_t frac;          /* the digits after the point, as an integer */
        unsigned n_frac;        /* how many of them */
        bool overflow;          /* the integer part did not fit */
} Decimal;

static const uint64_t pow10_table[PARSE_FRACTION_DIGITS_MAX + 1] = {
        1ULL,          10ULL,          100ULL,          1000ULL,          10000ULL,
        100000ULL,     1000000ULL,     10000000ULL,     100000000ULL,     1000000000ULL,
};

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Reads NUMBER at *p and moves *p past it. */
static int read_decimal(const char **p, Decimal *ret) {
        const char *s = *p;
        Decimal d = {};

        if (!is_digit(*s))
                return -EINVAL;
        for (; is_digit(*s); s++) {
                uint64_t digit = (uint64_t) (*s - '0');

                if (d.overflow || d.integer > (UINT64_MAX - digit) / 10)
                        d.overflow = true;
                else
                        d.integer = d.integer * 10 + digit;
        }
        if (*s == '.') {
                s++;
                if (!is_digit(*s))
                        return -EINVAL;
                for (; is_digit(*s); s++) {
                        if (d.n_frac >= PARSE_FRACTION_DIGITS_MAX)
                                return -EINVAL;
                        d.frac = d.frac * 10 + (uint64_t) (*s - '0');
                        d.n_frac++;
                }
        }
        *p = s;
        *ret = d;
        return 0;
}

/* integer * mult + floor(frac * mult / 10^n_frac), without overflowing on
 * the way: with mult = q * 10^n + r, frac * mult / 10^n = frac * q +
 * frac * r / 10^n exactly, where frac * r < 10^18 and frac * q < mult. */
static int scale(const Decimal *d, uint64_t mult, uint64_t *ret) {
        uint64_t div = pow10_table[d->n_frac], v, add;

        if (d->overflow || (mult > 0 && d->integer > UINT64_MAX / mult))
                return -ERANGE;
        v = d->integer * mult;
        add = d->frac * (mult / div) + d->frac * (mult % div) / div;
        if (v > UINT64_MAX - add)
                return -ERANGE;
        *ret = v + add;
        return 0;
}

/* After the number: spaces, then the unit, which must end the string.
 * Returns the unit ("" when there is none) or NULL for spaces with no unit. */
static const char *unit_of(const char *p) {
        const char *u = p + strspn(p, " ");

        if (u != p && *u == 0)
                return NULL;
        return u;
}

static int size_multiplier(const char *u, uint64_t *ret) {
        static const char letters[] = "KMGT";
        const char *l;
        char c;

        if (u[0] == 0 || strcmp(u, "B") == 0) {
                *ret = 1;
                return 0;
        }
        c = u[0] >= 'a' && u[0] <= 'z' ? (char) (u[0] - 'a' + 'A') : u[0];
        l = strchr(letters, c);
        if (!l)
                return -EINVAL;
        u++;
        if (*u == 'i')
                u++;
        if (*u == 'B')
                u++;
        if (*u)
                return -EINVAL;
        *ret = 1ULL << (10 * (unsigned) (l - letters + 1));
        return 0;
}

static int duration_multiplier(const char *u, uint64_t *ret) {
        static const struct {
                const char *name;
                uint64_t usec;
        } units[] = {
                { "", 1000000ULL },       { "us", 1ULL },          { "ms", 1000ULL },
                { "s", 1000000ULL },      { "sec", 1000000ULL },   { "m", 60000000ULL },
                { "min", 60000000ULL },   { "h", 3600000000ULL },  { "d", 86400000000ULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcmp(u, units[i].name) == 0) {
                        *ret = units[i].usec;
                        return 0;
                }
        return -EINVAL;
}

/* NUMBER [ " "... UNIT ] with the unit table given by multiplier(). */
static int parse_quantity(const char *s, int (*multiplier)(const char *u, uint64_t *ret), uint64_t *ret) {
        const char *p = s, *u;
        uint64_t mult;
        Decimal d;
        int r;

        if (!s)
                return -EINVAL;
        r = read_decimal(&p, &d);
        if (r < 0)
                return r;
        u = unit_of(p);
        if (!u)
                return -EINVAL;
        r = multiplier(u, &mult);
        if (r < 0)
                return r;
        return scale(&d, mult, ret);
}

int parse_size(const char *s, uint64_t *ret_bytes) {
        return parse_quantity(s, size_multiplier, ret_bytes);
}

int parse_duration(const char *s, uint64_t *ret_usec) {
        return parse_quantity(s, duration_multiplier, ret_usec);
}

int parse_uint64(const char *s, uint64_t *ret) {
        if (!s || strspn(s, "0123456789") != strlen(s))
                return -EINVAL;
        return parse_fixed(s, 0, ret);
}

int parse_fixed(const char *s, unsigned decimals, uint64_t *ret) {
        const char *p = s;
        Decimal d;
        int r;

        if (!s || decimals > PARSE_FRACTION_DIGITS_MAX)
                return -EINVAL;
        r = read_decimal(&p, &d);
        if (r < 0)
                return r;
        if (*p || d.n_frac > decimals)
                return -EINVAL;
        return scale(&d, pow10_table[decimals], ret);
}

const char *format_duration(uint64_t usec, char *buf) {
        static const struct {
                uint64_t usec;
                const char *unit;
        } units[] = {
                { 86400000000ull, "d" }, { 3600000000ull, "h" }, { 60000000ull, "m" },
                { 1000000ull, "s" },     { 1000ull, "ms" },
        };

        if (usec == 0) {
                snprintf(buf, PARSE_DURATION_STRING_MAX, "0s");
                return buf;
        }
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (usec % units[i].usec == 0) {
                        snprintf(buf, PARSE_DURATION_STRING_MAX, "%" PRIu64 "%s", usec / units[i].usec, units[i].unit);
                        return buf;
                }
        snprintf(buf, PARSE_DURATION_STRING_MAX, "%" PRIu64 "us", usec);
        return buf;
}
