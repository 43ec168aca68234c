/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the jobworkerd configuration file parser (daemon/config.c). */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *error = NULL;
        Config c;
        int r;

        config_init(&c);
        r = config_parse_text(&c, (const char *) data, size, "fuzz.conf", &error);
        if (r == -22 /* EINVAL */ && !error)
                abort(); /* every rejection explains itself */
        if (c.n_listen > CONFIG_LISTEN_MAX)
                abort();
        free(error);
        config_done(&c);
        return 0;
}
