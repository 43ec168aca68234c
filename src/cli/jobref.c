/* SPDX-License-Identifier: MIT */
/*
 * Resolution of job id prefixes for jwctl: full ids are used as they are,
 * shorter ones are matched (ignoring case) against the ids the server lists
 * for the caller. Ambiguity is an error naming the candidates, so the user
 * can pick one.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/jobref.h"
#include "shared/job-name.h"
#include "shared/macro.h"

bool cli_job_ref_is_full(const char *arg) {
        if (strlen(arg) != CLI_JOB_ID_LENGTH)
                return false;
        for (size_t i = 0; i < CLI_JOB_ID_LENGTH; i++) {
                char c = arg[i];
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;

                if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                        return false;
        }
        return true;
}

int cli_job_ref_match(const char *prefix, const char *const *ids, size_t n_ids, char **ret_id, char **ret_error) {
        size_t len = strlen(prefix), n_match = 0, first = 0;

        for (size_t i = 0; i < n_ids; i++)
                if (strncasecmp(ids[i], prefix, len) == 0 && strlen(ids[i]) >= len) {
                        if (n_match == 0)
                                first = i;
                        n_match++;
                }
        if (n_match == 0)
                return -ENOENT;
        if (n_match == 1) {
                char *id = strdup(ids[first]);
                if (!id)
                        return -ENOMEM;
                *ret_id = id;
                return 0;
        }

        /* Ambiguous: list the candidates. */
        char *m = NULL;
        size_t size = 0, shown = 0;
        FILE *f = open_memstream(&m, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "job id prefix '%s' is ambiguous: it matches %zu jobs: ", prefix, n_match);
        for (size_t i = 0; i < n_ids && shown < 10; i++)
                if (strncasecmp(ids[i], prefix, len) == 0 && strlen(ids[i]) >= len) {
                        fputs(shown++ ? ", " : "", f);
                        /* Ids come from the server: no control characters to the terminal. */
                        for (const char *c = ids[i]; *c; c++)
                                fputc((unsigned char) *c < 0x20 || *c == 0x7f ? '?' : *c, f);
                }
        if (n_match > shown)
                fprintf(f, ", … (%zu more)", n_match - shown);
        if (fclose(f) != 0 || !m) {
                free(m);
                return -ENOMEM;
        }
        *ret_error = m;
        return -EEXIST;
}

bool cli_job_ref_is_name(const char *arg) {
        return *arg && !job_name_looks_like_id(arg);
}

/* Server strings in a message: no control characters to the terminal. */
static void put_safe(FILE *f, const char *s) {
        for (const char *c = s ?: ""; *c; c++)
                fputc((unsigned char) *c < 0x20 || *c == 0x7f ? '?' : *c, f);
}

int cli_job_name_pick(const char *name, const CliNamedJob *jobs, size_t n, char **ret_id, char **ret_error) {
        size_t newest = 0;
        bool owners = false;

        if (n == 0)
                return -ENOENT;
        for (size_t i = 1; i < n; i++) {
                if (strcmp(jobs[i].owner ?: "", jobs[0].owner ?: "") != 0)
                        owners = true;
                /* Later in List's order wins a tie: it started later. */
                if (jobs[i].start_time_us >= jobs[newest].start_time_us)
                        newest = i;
        }
        if (!owners) {
                char *id = strdup(jobs[newest].id);
                if (!id)
                        return -ENOMEM;
                *ret_id = id;
                return 0;
        }

        char *m = NULL;
        size_t size = 0, shown = 0;
        FILE *f = open_memstream(&m, &size);
        if (!f)
                return -ENOMEM;
        fputs("job name '", f);
        put_safe(f, name);
        fprintf(f, "' is ambiguous: jobs of several owners have it (give the id): ");
        for (size_t i = n; i > 0 && shown < 10; i--, shown++) {
                fputs(shown ? ", " : "", f);
                put_safe(f, jobs[i - 1].owner);
                fputc(' ', f);
                put_safe(f, jobs[i - 1].id);
        }
        if (n > shown)
                fprintf(f, ", … (%zu more)", n - shown);
        if (fclose(f) != 0 || !m) {
                free(m);
                return -ENOMEM;
        }
        *ret_error = m;
        return -EEXIST;
}
