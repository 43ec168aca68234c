/* SPDX-License-Identifier: MIT */
/*
 * The quantities of per-job limits (see quantity.h).
 *
 * The one idea: one spelling of a CPU share and of a size, read and written
 * here for the policy file, the API's messages and jwctl alike, on top of
 * the one grammar of shared/parse-util.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "policy/quantity.h"
#include "shared/parse-util.h"

int limits_parse_cpu(const char *s, uint32_t *ret_millis) {
        uint64_t v;
        int r;

        r = parse_fixed(s, 3, &v);
        if (r < 0)
                return r;
        if (v > LIMITS_CPU_MILLIS_MAX)
                return -ERANGE;
        *ret_millis = (uint32_t) v;
        return 0;
}

int limits_parse_size(const char *s, uint64_t *ret) {
        return parse_size(s, ret);
}

const char *limits_format_cpu(uint32_t millis, char buf[static 32]) {
        uint32_t frac = millis % 1000;

        if (frac == 0)
                snprintf(buf, 32, "%" PRIu32, millis / 1000);
        else if (frac % 100 == 0)
                snprintf(buf, 32, "%" PRIu32 ".%" PRIu32, millis / 1000, frac / 100);
        else if (frac % 10 == 0)
                snprintf(buf, 32, "%" PRIu32 ".%02" PRIu32, millis / 1000, frac / 10);
        else
                snprintf(buf, 32, "%" PRIu32 ".%03" PRIu32, millis / 1000, frac);
        return buf;
}

const char *limits_format_size(uint64_t bytes, char buf[static 32]) {
        static const char units[] = "TGMK";

        for (unsigned i = 0; i < 4; i++) {
                uint64_t m = 1ULL << (10 * (4 - i));
                if (bytes >= m && bytes % m == 0) {
                        snprintf(buf, 32, "%" PRIu64 "%c", bytes / m, units[i]);
                        return buf;
                }
        }
        snprintf(buf, 32, "%" PRIu64, bytes);
        return buf;
}
