/* SPDX-License-Identifier: MIT */
/*
 * Signal names to numbers for `jwctl kill` (see signame.h).
 *
 * The one idea: the C library's own abbreviations (sigabbrev_np) are the
 * table of the classic signals, so no list of 31 names is kept here; only
 * the few aliases kill(1) also takes, and the real-time signals, counted
 * from SIGRTMIN and SIGRTMAX as the C library numbers them (34 and 64 with
 * glibc, which keeps 32 and 33 for itself), are spelled out.
 */

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "cli/signame.h"
#include "shared/macro.h"
#include "shared/parse-util.h"

static const struct {
        const char *name;
        int sig;
} aliases[] = {
        { "IOT", SIGABRT },
        { "CLD", SIGCHLD },
        { "POLL", SIGIO },
};

/* "RTMIN", "RTMIN+n", "RTMAX", "RTMAX-n" (s without "SIG"). */
static int parse_realtime(const char *s, int *ret) {
        bool min = strncasecmp(s, "RTMIN", 5) == 0;
        uint64_t n = 0;
        int sig;

        if (!min && strncasecmp(s, "RTMAX", 5) != 0)
                return -EINVAL;
        s += 5;
        if (*s) {
                if (*s != (min ? '+' : '-') || parse_uint64(s + 1, &n) < 0 || n > (uint64_t) (SIGRTMAX - SIGRTMIN))
                        return -EINVAL;
        }
        sig = min ? SIGRTMIN + (int) n : SIGRTMAX - (int) n;
        if (sig < 1 || sig > CLI_SIGNAL_MAX)
                return -EINVAL;
        *ret = sig;
        return 0;
}

int cli_signal_parse(const char *s, int *ret) {
        uint64_t n;

        if (!s || !*s)
                return -EINVAL;
        if (s[0] >= '0' && s[0] <= '9') {
                if (parse_uint64(s, &n) < 0 || n < 1 || n > CLI_SIGNAL_MAX)
                        return -EINVAL;
                *ret = (int) n;
                return 0;
        }
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        if (parse_realtime(s, ret) == 0)
                return 0;
        for (int sig = 1; sig < SIGRTMIN && sig <= CLI_SIGNAL_MAX; sig++) {
                const char *a = sigabbrev_np(sig);
                if (a && strcasecmp(a, s) == 0) {
                        *ret = sig;
                        return 0;
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(aliases); i++)
                if (strcasecmp(aliases[i].name, s) == 0) {
                        *ret = aliases[i].sig;
                        return 0;
                }
        return -EINVAL;
}
