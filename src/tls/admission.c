/* SPDX-License-Identifier: MIT */
/*
 * The bridge's admission policy (see admission.h).
 *
 * The one idea: a refusal must cost less than what it refuses. A handshaking
 * connection is judged at accept from nothing but counters (overall, per
 * source) and one random number, so the bridge can close it before creating
 * a TLS session; an established one is judged once, right after the
 * handshake, by its identity. Counts live in one small hash table whose
 * entries exist only while they count something, so memory follows the
 * connections held, not the addresses ever seen.
 *
 * Random early drop as in OpenSSH's MaxStartups: below start nothing is
 * dropped; from start on a new handshake is refused with probability
 * rate% at start rising linearly to 100% at full. A flood then meets a
 * growing wall while a real client, arriving now and then, still has a
 * fair chance; the per-source bound keeps a single address from filling
 * even the room below start.
 */

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "tls/admission.h"

struct AdmissionEntry {
        AdmissionEntry *next;
        unsigned count;
        bool identity; /* key is name (an identity), else src */
        AdmissionSource src;
        char name[];
};

static uint32_t default_random(void *userdata) {
        Admission *a = userdata;

        /* xorshift64*: plenty for a drop decision, and never blocks */
        a->prng ^= a->prng >> 12;
        a->prng ^= a->prng << 25;
        a->prng ^= a->prng >> 27;
        return (uint32_t) ((a->prng * 0x2545F4914F6CDD1Dull) >> 32);
}

void admission_init(Admission *a, const AdmissionConfig *config, AdmissionRandom random, void *random_userdata) {
        uint64_t seed = 0;

        *a = (Admission) { .config = *config, .random = random, .random_userdata = random_userdata };
        if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t) sizeof seed)
                seed = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32) ^ (uintptr_t) a;
        a->prng = seed | 1; /* xorshift state must not be 0 */
        a->seed = (uint32_t) (seed >> 32);
        if (!a->random) {
                a->random = default_random;
                a->random_userdata = a;
        }
        if (a->config.startups_rate > 100)
                a->config.startups_rate = 100;
}

void admission_done(Admission *a) {
        for (unsigned i = 0; i < ADMISSION_BUCKETS; i++)
                while (a->buckets[i]) {
                        AdmissionEntry *e = a->buckets[i];
                        a->buckets[i] = e->next;
                        free(e);
                }
        a->n_handshaking = a->n_established = 0;
}

void admission_source_from_sockaddr(const struct sockaddr_storage *sa, AdmissionSource *ret) {
        *ret = (AdmissionSource) { .family = AF_UNSPEC };
        if (sa->ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                ret->family = AF_INET;
                memcpy(ret->addr, &in->sin_addr, 4);
        } else if (sa->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        ret->family = AF_INET;
                        memcpy(ret->addr, &in6->sin6_addr.s6_addr[12], 4);
                } else {
                        ret->family = AF_INET6;
                        memcpy(ret->addr, &in6->sin6_addr, 8); /* the /64 */
                }
        }
}

/* FNV-1a over the seed and the key. */
static unsigned bucket_of(const Admission *a, bool identity, const void *key, size_t len) {
        const uint8_t *p = key;
        uint32_t h = 2166136261u ^ a->seed ^ (identity ? 0x9e3779b9u : 0);

        for (size_t i = 0; i < len; i++)
                h = (h ^ p[i]) * 16777619u;
        return h % ADMISSION_BUCKETS;
}

/* The entry for a key, or NULL; *ret_bucket is its bucket either way. */
static AdmissionEntry *find(Admission *a, const AdmissionSource *src, const char *name, unsigned *ret_bucket) {
        unsigned b = name ? bucket_of(a, true, name, strlen(name)) : bucket_of(a, false, src, sizeof *src);

        *ret_bucket = b;
        for (AdmissionEntry *e = a->buckets[b]; e; e = e->next) {
                if (name && e->identity && strcmp(e->name, name) == 0)
                        return e;
                if (!name && !e->identity && memcmp(&e->src, src, sizeof *src) == 0)
                        return e;
        }
        return NULL;
}

static AdmissionEntry *entry_new(Admission *a, const AdmissionSource *src, const char *name, unsigned b) {
        size_t len = name ? strlen(name) + 1 : 0;
        AdmissionEntry *e = calloc(1, sizeof *e + len);

        if (!e)
                return NULL;
        e->identity = name;
        if (name)
                memcpy(e->name, name, len);
        else
                e->src = *src;
        e->next = a->buckets[b];
        a->buckets[b] = e;
        return e;
}

/* One less for the key; the entry goes when it counts nothing. */
static void entry_put(Admission *a, const AdmissionSource *src, const char *name) {
        unsigned b;
        AdmissionEntry *e = find(a, src, name, &b);

        if (!e || --e->count > 0)
                return;
        for (AdmissionEntry **p = &a->buckets[b]; *p; p = &(*p)->next)
                if (*p == e) {
                        *p = e->next;
                        free(e);
                        return;
                }
}

/* The MaxStartups decision for one more handshake with n already going. */
static bool early_drop(Admission *a, unsigned n) {
        const AdmissionConfig *c = &a->config;
        uint64_t p, span;

        if (c->startups_start == 0 || c->startups_start >= c->startups_full || n < c->startups_start)
                return false;
        /* rate% at start, 100% at full: in units of 1/(100 * span) */
        span = c->startups_full - c->startups_start;
        p = (uint64_t) c->startups_rate * span + (uint64_t) (100 - c->startups_rate) * (n - c->startups_start);
        return (uint64_t) a->random(a->random_userdata) % (100 * span) < p;
}

AdmissionVerdict admission_handshake_begin(Admission *a, const AdmissionSource *src) {
        unsigned b;
        AdmissionEntry *e;

        if (a->n_handshaking >= a->config.startups_full)
                return ADMISSION_STARTUPS_FULL;
        e = find(a, src, NULL, &b);
        if ((e ? e->count : 0) >= a->config.max_startups_per_source)
                return ADMISSION_SOURCE_FULL;
        if (early_drop(a, a->n_handshaking))
                return ADMISSION_EARLY_DROP;
        if (!e && !(e = entry_new(a, src, NULL, b)))
                return ADMISSION_NO_MEMORY;
        e->count++;
        a->n_handshaking++;
        return ADMISSION_OK;
}

void admission_handshake_end(Admission *a, const AdmissionSource *src) {
        if (a->n_handshaking > 0)
                a->n_handshaking--;
        entry_put(a, src, NULL);
}

AdmissionVerdict admission_established_begin(Admission *a, const char *identity) {
        unsigned b;
        AdmissionEntry *e;

        if (a->n_established >= a->config.max_established)
                return ADMISSION_ESTABLISHED_FULL;
        e = find(a, NULL, identity, &b);
        if ((e ? e->count : 0) >= a->config.max_per_identity)
                return ADMISSION_IDENTITY_FULL;
        if (!e && !(e = entry_new(a, NULL, identity, b)))
                return ADMISSION_NO_MEMORY;
        e->count++;
        a->n_established++;
        return ADMISSION_OK;
}

void admission_established_end(Admission *a, const char *identity) {
        if (a->n_established > 0)
                a->n_established--;
        entry_put(a, NULL, identity);
}

const char *admission_verdict_reason(AdmissionVerdict v) {
        switch (v) {
        case ADMISSION_OK:
                return "admitted";
        case ADMISSION_STARTUPS_FULL:
                return "too many unauthenticated connections (max-startups full)";
        case ADMISSION_EARLY_DROP:
                return "too many unauthenticated connections (max-startups: random early drop)";
        case ADMISSION_SOURCE_FULL:
                return "too many unauthenticated connections from this address (max-startups-per-source)";
        case ADMISSION_ESTABLISHED_FULL:
                return "too many connections (max-connections)";
        case ADMISSION_IDENTITY_FULL:
                return "too many connections of this identity (max-connections-per-identity)";
        case ADMISSION_NO_MEMORY:
                return "out of memory";
        }
        return "refused";
}
