/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * jwctl's own terminal for `run -t`: its size, and raw mode put back on
 * every way out (the command's return, and a death by signal: signals.c
 * restores it before it dies).
 *
 * Threads: the main thread sets and restores; cli_tty_restore() may also
 * run on the signal thread (tcsetattr is async-signal-safe and idempotent).
 */

#include <stdbool.h>
#include <termios.h>

typedef struct CliTty {
        int fd;                 /* -1: nothing to restore */
        struct termios saved;
} CliTty;

#define CLI_TTY_NULL ((CliTty) { .fd = -1 })

/* Our TERM for the job's terminal, or "" (the server's default, dumb) when
 * unset or not a plain name of at most 64 letters, digits and . + - _ (what
 * the server accepts). */
const char *cli_tty_term(void);

/* Our window size (24x80 when the terminal does not say). */
void cli_tty_size(int fd, unsigned *ret_rows, unsigned *ret_cols);

/* fd into raw mode (cfmakeraw): keys reach the job as bytes, Ctrl-C too.
 * -errno if fd is not a terminal. */
int cli_tty_raw(CliTty *t, int fd);

/* Back as it was; safe to call twice, and with CLI_TTY_NULL. */
void cli_tty_restore(CliTty *t);
