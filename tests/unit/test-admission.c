/* SPDX-License-Identifier: MIT */
/* The bridge's admission decisions (src/tls/admission.c), with the random
 * source injected so that every early drop is decided by the test. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tls/admission.h"

typedef struct Dice {
        uint32_t value; /* what the next roll returns */
        unsigned rolls;
} Dice;

static uint32_t roll(void *userdata) {
        Dice *d = userdata;
        d->rolls++;
        return d->value;
}

static AdmissionSource v4(const char *addr) {
        struct sockaddr_storage ss = {};
        struct sockaddr_in *in = (struct sockaddr_in *) &ss;
        AdmissionSource s;

        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
        admission_source_from_sockaddr(&ss, &s);
        return s;
}

static AdmissionSource v6(const char *addr) {
        struct sockaddr_storage ss = {};
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
        AdmissionSource s;

        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
        admission_source_from_sockaddr(&ss, &s);
        return s;
}

static const AdmissionConfig config = {
        .max_established = 6,
        .max_per_identity = 3,
        .startups_start = 10,
        .startups_rate = 30,
        .startups_full = 20,
        .max_startups_per_source = 4,
};

/* A source's handshakes stop at its bound; others' are not affected, and a
 * place comes back when one of its handshakes ends. */
static void test_per_source_bound(void **state) {
        Dice dice = { .value = 0 };
        Admission a;
        AdmissionSource one = v4("192.0.2.1"), two = v4("192.0.2.2");

        admission_init(&a, &config, roll, &dice);
        for (int i = 0; i < 4; i++)
                assert_int_equal(admission_handshake_begin(&a, &one), ADMISSION_OK);
        assert_int_equal(admission_handshake_begin(&a, &one), ADMISSION_SOURCE_FULL);
        assert_int_equal(admission_handshake_begin(&a, &two), ADMISSION_OK);
        assert_int_equal(a.n_handshaking, 5);
        admission_handshake_end(&a, &one);
        assert_int_equal(admission_handshake_begin(&a, &one), ADMISSION_OK);
        assert_int_equal(admission_handshake_begin(&a, &one), ADMISSION_SOURCE_FULL);
        assert_int_equal(dice.rolls, 0); /* below start: no roll at all */
        admission_done(&a);
}

/* IPv6 sources are one per /64; an IPv4-mapped address is its IPv4 address. */
static void test_ipv6_by_64(void **state) {
        AdmissionConfig c = config;
        Admission a;
        AdmissionSource x = v6("2001:db8:1:2::1"), y = v6("2001:db8:1:2:ffff::7"), z = v6("2001:db8:1:3::1");
        AdmissionSource mapped = v6("::ffff:192.0.2.1"), plain = v4("192.0.2.1");

        c.max_startups_per_source = 1;
        admission_init(&a, &c, NULL, NULL);
        assert_memory_equal(&mapped, &plain, sizeof plain);
        assert_int_equal(admission_handshake_begin(&a, &x), ADMISSION_OK);
        assert_int_equal(admission_handshake_begin(&a, &y), ADMISSION_SOURCE_FULL); /* same /64 */
        assert_int_equal(admission_handshake_begin(&a, &z), ADMISSION_OK);          /* the next /64 */
        assert_int_equal(admission_handshake_begin(&a, &plain), ADMISSION_OK);
        assert_int_equal(admission_handshake_begin(&a, &mapped), ADMISSION_SOURCE_FULL);
        admission_done(&a);
}

/* Fills the handshaking population to n from distinct sources, with rolls
 * that never drop (dice NULL: the admission's own generator, below start). */
static void fill(Admission *a, Dice *dice, unsigned n) {
        char addr[32];

        if (dice)
                dice->value = 999;
        for (unsigned i = a->n_handshaking; i < n; i++) {
                AdmissionSource s;
                snprintf(addr, sizeof addr, "198.51.100.%u", i);
                s = v4(addr);
                assert_int_equal(admission_handshake_begin(a, &s), ADMISSION_OK);
        }
        assert_int_equal(a->n_handshaking, n);
}

/* MaxStartups 10:30:20: at 10 handshaking, 30% are dropped; at 15, 65%;
 * at 20, all. The drop probability is compared against the roll modulo
 * 100 * (full - start) = 1000. */
static void test_random_early_drop(void **state) {
        Dice dice = {};
        Admission a;
        AdmissionSource s = v4("203.0.113.9");

        admission_init(&a, &config, roll, &dice);
        fill(&a, &dice, 10);
        dice.value = 299; /* just under 30%: dropped */
        assert_int_equal(admission_handshake_begin(&a, &s), ADMISSION_EARLY_DROP);
        dice.value = 300; /* 30%: admitted */
        assert_int_equal(admission_handshake_begin(&a, &s), ADMISSION_OK);
        admission_handshake_end(&a, &s);
        fill(&a, &dice, 15);
        dice.value = 649; /* 30 + 70 * 5/10 = 65% */
        assert_int_equal(admission_handshake_begin(&a, &s), ADMISSION_EARLY_DROP);
        dice.value = 650 + 1000 * 7; /* taken modulo 1000 */
        assert_int_equal(admission_handshake_begin(&a, &s), ADMISSION_OK);
        fill(&a, &dice, 20);
        dice.value = 999;
        assert_int_equal(admission_handshake_begin(&a, &s), ADMISSION_STARTUPS_FULL);
        admission_done(&a);
}

/* start = full: a hard bound, never a roll. */
static void test_hard_bound_without_drop(void **state) {
        AdmissionConfig c = config;
        Dice dice = {};
        Admission a;
        AdmissionSource s = v4("203.0.113.9");

        c.startups_start = c.startups_full = 12;
        admission_init(&a, &c, roll, &dice);
        fill(&a, &dice, 12);
        assert_int_equal(admission_handshake_begin(&a, &s), ADMISSION_STARTUPS_FULL);
        assert_int_equal(dice.rolls, 0);
        admission_done(&a);
}

/* Established connections: per identity, then overall; the handshaking
 * population is not consulted (it is bounded apart). */
static void test_identity_bound(void **state) {
        Dice dice = {};
        Admission a;

        admission_init(&a, &config, roll, &dice);
        fill(&a, &dice, 20); /* handshakes full: established ones still come in */
        for (int i = 0; i < 3; i++)
                assert_int_equal(admission_established_begin(&a, "alice"), ADMISSION_OK);
        assert_int_equal(admission_established_begin(&a, "alice"), ADMISSION_IDENTITY_FULL);
        assert_int_equal(admission_established_begin(&a, "bob"), ADMISSION_OK);
        assert_int_equal(admission_established_begin(&a, "charlie"), ADMISSION_OK);
        assert_int_equal(admission_established_begin(&a, "charlie"), ADMISSION_OK);
        assert_int_equal(a.n_established, 6);
        assert_int_equal(admission_established_begin(&a, "dave"), ADMISSION_ESTABLISHED_FULL);
        admission_established_end(&a, "alice");
        assert_int_equal(admission_established_begin(&a, "dave"), ADMISSION_OK);
        assert_int_equal(admission_established_begin(&a, "alice"), ADMISSION_ESTABLISHED_FULL);
        admission_established_end(&a, "dave");
        assert_int_equal(admission_established_begin(&a, "alice"), ADMISSION_OK);
        admission_established_end(&a, "bob"); /* room overall, none for alice */
        assert_int_equal(admission_established_begin(&a, "alice"), ADMISSION_IDENTITY_FULL);
        admission_done(&a);
}

/* Entries go when they count nothing: many sources coming and going leave
 * an empty table behind. */
static void test_entries_freed(void **state) {
        AdmissionConfig c = config;
        Admission a;
        char addr[64];

        c.startups_full = c.startups_start = 100000;
        admission_init(&a, &c, NULL, NULL);
        for (unsigned round = 0; round < 3; round++) {
                for (unsigned i = 0; i < 5000; i++) {
                        AdmissionSource s;
                        snprintf(addr, sizeof addr, "2001:db8:%x:%x::1", round, i);
                        s = v6(addr);
                        assert_int_equal(admission_handshake_begin(&a, &s), ADMISSION_OK);
                        admission_handshake_end(&a, &s);
                }
        }
        assert_int_equal(a.n_handshaking, 0);
        for (unsigned i = 0; i < ADMISSION_BUCKETS; i++)
                assert_null(a.buckets[i]);
        admission_done(&a);
        admission_done(&a); /* twice is fine */
}

static void test_default_random_spreads(void **state) {
        AdmissionConfig c = config;
        Admission a;
        AdmissionSource s = v4("203.0.113.9");
        unsigned dropped = 0;

        c.max_startups_per_source = 1000;
        admission_init(&a, &c, NULL, NULL);
        fill(&a, NULL, 10);
        for (int i = 0; i < 1000; i++) {
                AdmissionVerdict v = admission_handshake_begin(&a, &s);
                if (v == ADMISSION_EARLY_DROP)
                        dropped++;
                else {
                        assert_int_equal(v, ADMISSION_OK);
                        admission_handshake_end(&a, &s);
                }
        }
        /* 30% expected; a sound generator lands far inside this */
        assert_in_range(dropped, 200, 400);
        admission_done(&a);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_per_source_bound),
                cmocka_unit_test(test_ipv6_by_64),
                cmocka_unit_test(test_random_early_drop),
                cmocka_unit_test(test_hard_bound_without_drop),
                cmocka_unit_test(test_identity_bound),
                cmocka_unit_test(test_entries_freed),
                cmocka_unit_test(test_default_random_spreads),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
