/* SPDX-License-Identifier: MIT */
/*
 * Raw mode for `jwctl run -t` (see tty.h).
 *
 * The one idea: the settings are saved once before they change and written
 * back with TCSADRAIN by whoever ends the command: the command itself on
 * every return, or the signal thread right before a death by signal, so
 * that no way out leaves the user's shell on a raw terminal.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/tty.h"

const char *cli_tty_term(void) {
        const char *t = getenv("TERM");
        size_t n = t ? strlen(t) : 0;

        if (!t || n > 64 || strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-_") != n)
                return "";
        return t;
}

void cli_tty_size(int fd, unsigned *ret_rows, unsigned *ret_cols) {
        struct winsize ws = {};

        if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0) {
                ws.ws_row = 24;
                ws.ws_col = 80;
        }
        *ret_rows = ws.ws_row;
        *ret_cols = ws.ws_col;
}

int cli_tty_raw(CliTty *t, int fd) {
        struct termios raw;

        if (tcgetattr(fd, &t->saved) < 0)
                return -errno;
        raw = t->saved;
        cfmakeraw(&raw);
        if (tcsetattr(fd, TCSADRAIN, &raw) < 0)
                return -errno;
        t->fd = fd;
        return 0;
}

void cli_tty_restore(CliTty *t) {
        if (t->fd < 0)
                return;
        (void) tcsetattr(t->fd, TCSADRAIN, &t->saved);
        t->fd = -1;
}
