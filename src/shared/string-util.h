/* SPDX-License-Identifier: MIT */
#pragma once

/* String helpers. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/macro.h"

/* A malloc()ed formatted string, or NULL when out of memory. */
static inline _printf_(1, 0) char *strdup_vprintf(const char *fmt, va_list ap) {
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0)
                return NULL;
        return s;
}

static inline _printf_(1, 2) char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        s = strdup_vprintf(fmt, ap);
        va_end(ap);
        return s;
}

/* Replaces *ret_message (if ret_message) with a formatted message and
 * returns error: for "return replace_message(ret, -EINVAL, ...)" one-liners. */
static inline _printf_(3, 4) int replace_message(char **ret_message, int error, const char *fmt, ...) {
        va_list ap;

        if (ret_message) {
                va_start(ap, fmt);
                char *s = strdup_vprintf(fmt, ap);
                va_end(ap);
                free(*ret_message);
                *ret_message = s;
        }
        return error;
}

/* s made safe to quote in a message: at most max bytes, bytes that are not
 * printable ASCII as '?', "..." when cut. out must hold max + 4 bytes. */
static inline void quote_printable(char *out, size_t max, const char *s) {
        size_t k = 0;

        for (; *s && k < max; s++)
                out[k++] = (unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f ? '?' : *s;
        if (*s) {
                memcpy(out + k, "...", 3);
                k += 3;
        }
        out[k] = 0;
}
