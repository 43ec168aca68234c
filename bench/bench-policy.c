/* SPDX-License-Identifier: MIT */

/*
 * Policy load time against the file's size (issue 13, item 9): a policy of
 * N users, two lines each (a role with bounds, then a second role), parsed
 * and its accounts resolved, for N*2 = 4k, 16k and 64k lines. Prints one
 * line per size and the ratio of the per-line cost at the largest size to
 * that at the smallest: about 1 when loading is linear (it was about 2 per
 * doubling, quadratic, before).
 *
 * usage: bench-policy [runs]      (default 3)
 * Each size is loaded runs * 65536 / lines times (at least runs) and the
 * best time kept, so that the small sizes, which take milliseconds, are not
 * at the mercy of one scheduling hiccup on a shared machine.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "bench-util.h"

static char *make_policy(unsigned lines, size_t *ret_size) {
        size_t cap = (size_t) lines * 64 + 1, n = 0;
        char *s = malloc(cap);

        if (!s)
                abort();
        for (unsigned i = 0; i < lines / 2; i++)
                n += (size_t) snprintf(s + n, cap - n,
                                       "user%07u self task-manager memory=1G max-jobs=8\n"
                                       "user%07u all analyst\n", i, i);
        *ret_size = n;
        return s;
}

/* Seconds for one parse + resolve of text, or a negative value on error. */
static double load_once(const char *text, size_t size) {
        Policy *p = NULL;
        char *error = NULL;
        double t0 = now();
        int r = policy_parse(text, size, "bench", &p, &error);

        if (r >= 0)
                r = policy_resolve_accounts(p, "bench", &error);
        t0 = now() - t0;
        if (r < 0) {
                fprintf(stderr, "bench-policy: %s\n", error ?: "failed");
                t0 = -1;
        }
        policy_free(p);
        free(error);
        return t0;
}

int main(int argc, char **argv) {
        static const unsigned sizes[] = { 4096, 16384, 65536 };
        int runs = argc > 1 ? atoi(argv[1]) : 3;
        double per_line[3];

        if (runs < 1)
                runs = 1;
        for (size_t k = 0; k < 3; k++) {
                size_t size;
                char *text = make_policy(sizes[k], &size);
                double best = 1e9;

                int reps = runs * (int) (sizes[2] / sizes[k]);

                (void) load_once(text, size); /* warm the allocator */
                for (int i = 0; i < reps; i++) {
                        double t = load_once(text, size);
                        if (t < 0)
                                return 1;
                        if (t < best)
                                best = t;
                }
                free(text);
                per_line[k] = best / sizes[k] * 1e9;
                printf("policy load %u lines %.3f ms %.1f ns/line\n", sizes[k], best * 1e3, per_line[k]);
        }
        printf("policy per-line cost 65536 vs 4096 lines %.3f\n", per_line[2] / per_line[0]);
        return 0;
}
