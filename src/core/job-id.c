/* SPDX-License-Identifier: MIT */

/*
 * Job ids. The one idea: an id is 128 bits from the kernel's CSPRNG, shown as
 * a version-4 UUID, so ids are unguessable and never reused.
 */

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "core/job-id.h"

int job_id_generate(JobId *ret) {
        JobId id;
        size_t done = 0;

        while (done < sizeof(id.bytes)) {
                ssize_t n = getrandom(id.bytes + done, sizeof(id.bytes) - done, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) n;
        }
        id.bytes[6] = (id.bytes[6] & 0x0f) | 0x40; /* version 4 */
        id.bytes[8] = (id.bytes[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        *ret = id;
        return 0;
}

char *job_id_to_string(const JobId *id, char buf[static JOB_ID_STRING_MAX]) {
        static const char hex[] = "0123456789abcdef";
        char *p = buf;

        for (size_t i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        *p++ = '-';
                *p++ = hex[id->bytes[i] >> 4];
                *p++ = hex[id->bytes[i] & 15];
        }
        *p = 0;
        return buf;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) tolower((unsigned char) c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

int job_id_from_string(const char *s, JobId *ret) {
        JobId id;
        size_t k = 0;

        if (!s || strlen(s) != 36)
                return -EINVAL;
        for (size_t i = 0; i < 36;) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return -EINVAL;
                        i++;
                        continue;
                }
                int hi = unhex(s[i]), lo = unhex(s[i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                id.bytes[k++] = (uint8_t) (hi << 4 | lo);
                i += 2;
        }
        *ret = id;
        return 0;
}

bool job_id_equal(const JobId *a, const JobId *b) {
        return memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

bool job_id_has_prefix(const JobId *id, const char *s) {
        char buf[JOB_ID_STRING_MAX];

        job_id_to_string(id, buf);
        for (size_t i = 0; s[i]; i++)
                if (i >= 36 || tolower((unsigned char) s[i]) != buf[i])
                        return false;
        return true;
}
