/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the job status file parser (core/jobfile.c). What it
 * accepts must format and parse back to the same status.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jobfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size + 1), buf[JOBFILE_MAX];
        JobStatus a, b;
        uint64_t la, lb;
        int n;

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;
        if (jobfile_parse(text, &a, &la) < 0) {
                free(text);
                return 0;
        }
        n = jobfile_format(&a, la, buf, sizeof(buf));
        if (n < 0 || jobfile_parse(buf, &b, &lb) < 0 || la != lb)
                abort();
        if (memcmp(&a.id, &b.id, sizeof(a.id)) != 0 || a.state != b.state || a.exit_code != b.exit_code ||
            a.stdout_bytes != b.stdout_bytes || strcmp(a.owner, b.owner) != 0 || strcmp(a.command, b.command) != 0)
                abort();
        free(text);
        return 0;
}
