/* SPDX-License-Identifier: MIT */
#pragma once

/* String helpers. */

#include <stdarg.h>
#include <stdio.h>

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
