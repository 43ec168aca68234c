/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the size/duration/count grammar (shared/parse-util.c),
 * which reads config values, policy bounds and jwctl options. Checks the
 * contract besides memory safety: only 0, -EINVAL or -ERANGE; nothing
 * written on failure; the parsers agree where their grammars overlap. */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/parse-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define UNTOUCHED 0x5a5a5a5a5a5a5a5aULL

static int run(int (*parse)(const char *, uint64_t *), const char *s, uint64_t *ret) {
        uint64_t v = UNTOUCHED;
        int r = parse(s, &v);

        if (r != 0 && r != -EINVAL && r != -ERANGE)
                abort();
        if (r < 0 && v != UNTOUCHED)
                abort();
        *ret = v;
        return r;
}

static int fixed6(const char *s, uint64_t *ret) {
        return parse_fixed(s, 6, ret);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint64_t count, bytes, usec, micro;
        int rc, rb, rd, rf;
        char *s;

        if (size > 256)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;

        rc = run(parse_uint64, s, &count);
        rb = run(parse_size, s, &bytes);
        rd = run(parse_duration, s, &usec);
        rf = run(fixed6, s, &micro);

        /* Plain digits: a count, a number of bytes, of seconds, of millionths. */
        if (rc == 0 && (rb != 0 || bytes != count))
                abort();
        if (rc == -ERANGE && rb != -ERANGE)
                abort();
        /* A bare number of seconds is parse_fixed with 6 decimals. */
        if (rf == 0 && (rd != 0 || usec != micro))
                abort();
        free(s);
        return 0;
}
