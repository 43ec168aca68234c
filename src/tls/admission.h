/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Who may take a place in the TLS bridge: the admission policy, kept apart
 * from the sockets so its decisions can be tested alone. Two populations are
 * bounded separately, so that neither can lock the other out:
 *  - handshaking (unauthenticated) connections: a hard bound overall, a bound
 *    per source address (IPv4 /32, IPv6 /64), and between two bounds a random
 *    early drop whose probability grows linearly (OpenSSH's MaxStartups
 *    start:rate:full); decided at accept, before any TLS work;
 *  - established (authenticated) connections: a bound overall and one per
 *    identity (the client certificate's CN), decided right after the
 *    handshake, when the identity is known.
 *
 * Not thread-safe: the bridge thread owns one. Memory is one entry per
 * distinct source or identity that holds a connection right now.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct AdmissionConfig {
        unsigned max_established;         /* authenticated connections overall; 0 = none admitted */
        unsigned max_per_identity;        /* authenticated connections of one identity */
        unsigned startups_start;          /* handshaking connections before random early drop begins */
        unsigned startups_rate;           /* percent refused at startups_start (0..100) */
        unsigned startups_full;           /* handshaking connections: at this many, every new one is refused */
        unsigned max_startups_per_source; /* handshaking connections from one source address */
} AdmissionConfig;

typedef enum AdmissionVerdict {
        ADMISSION_OK = 0,
        ADMISSION_STARTUPS_FULL,    /* startups_full handshaking connections */
        ADMISSION_EARLY_DROP,       /* between start and full, the random drop hit */
        ADMISSION_SOURCE_FULL,      /* this source's handshaking connections at the bound */
        ADMISSION_ESTABLISHED_FULL, /* max_established authenticated connections */
        ADMISSION_IDENTITY_FULL,    /* this identity's authenticated connections at the bound */
        ADMISSION_NO_MEMORY,
} AdmissionVerdict;

/* A source address as bounded: IPv4 whole, IPv6 by its /64 (one host's
 * share of most networks). IPv4-mapped IPv6 counts as IPv4. */
typedef struct AdmissionSource {
        uint8_t family; /* AF_INET, AF_INET6, or AF_UNSPEC (anything else: one shared source) */
        uint8_t addr[8];
} AdmissionSource;

/* Uniform 32-bit random numbers; injected by tests. */
typedef uint32_t (*AdmissionRandom)(void *userdata);

typedef struct AdmissionEntry AdmissionEntry;

#define ADMISSION_BUCKETS 256u

typedef struct Admission {
        AdmissionConfig config;
        AdmissionRandom random;
        void *random_userdata;
        uint64_t prng;  /* the default random source's state (xorshift64*) */
        uint32_t seed;  /* keys the hash, so a client cannot choose colliding sources */
        unsigned n_handshaking;
        unsigned n_established;
        AdmissionEntry *buckets[ADMISSION_BUCKETS];
} Admission;

/* random NULL: a generator seeded from getrandom(). */
void admission_init(Admission *a, const AdmissionConfig *config, AdmissionRandom random, void *random_userdata);
/* Frees every entry; safe to call twice. */
void admission_done(Admission *a);

void admission_source_from_sockaddr(const struct sockaddr_storage *sa, AdmissionSource *ret);

/* A new TCP connection from src: ADMISSION_OK counts it as handshaking (end
 * it with admission_handshake_end()); anything else refuses it, nothing counted. */
AdmissionVerdict admission_handshake_begin(Admission *a, const AdmissionSource *src);
void admission_handshake_end(Admission *a, const AdmissionSource *src);

/* The handshake verified identity: ADMISSION_OK counts it as established
 * (end it with admission_established_end()); anything else refuses it. */
AdmissionVerdict admission_established_begin(Admission *a, const char *identity);
void admission_established_end(Admission *a, const char *identity);

/* For logs: the reason in words ("too many unauthenticated connections from this address"). */
const char *admission_verdict_reason(AdmissionVerdict v);
