/* SPDX-License-Identifier: MIT */
/* Signal names (see signal-name.h). */

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "shared/signal-name.h"

const char *signal_abbrev(int sig, char buf[static SIGNAL_NAME_MAX]) {
        const char *a;

        if (sig < 1 || sig > SIGNAL_NUMBER_MAX)
                return NULL;
        if (sig < SIGRTMIN) {
                a = sigabbrev_np(sig);
                if (!a)
                        return NULL;
                snprintf(buf, SIGNAL_NAME_MAX, "%s", a);
                return buf;
        }
        if (sig > SIGRTMAX)
                return NULL;
        /* From RTMIN up to the middle, then down from RTMAX. */
        if (sig - SIGRTMIN <= (SIGRTMAX - SIGRTMIN) / 2)
                snprintf(buf, SIGNAL_NAME_MAX, sig == SIGRTMIN ? "RTMIN" : "RTMIN+%d", sig - SIGRTMIN);
        else
                snprintf(buf, SIGNAL_NAME_MAX, sig == SIGRTMAX ? "RTMAX" : "RTMAX-%d", SIGRTMAX - sig);
        return buf;
}
