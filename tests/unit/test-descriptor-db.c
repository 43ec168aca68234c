/* SPDX-License-Identifier: MIT */
/* The index of served proto files: the embedded set, hand-made sets with
 * imports, and sets that must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rpc/descriptor-db.h"
#include "rpc/descriptor-set.h"

/* A growing protobuf message, written by hand. */
typedef struct Buf {
        uint8_t data[4096];
        size_t n;
} Buf;

static void put_varint(Buf *b, uint64_t v) {
        do {
                assert_true(b->n < sizeof(b->data));
                b->data[b->n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
        } while (v);
}

static void put_bytes(Buf *b, unsigned field, const void *data, size_t n) {
        put_varint(b, (uint64_t) field << 3 | 2);
        put_varint(b, n);
        assert_true(b->n + n <= sizeof(b->data));
        memcpy(b->data + b->n, data, n);
        b->n += n;
}

static void put_string(Buf *b, unsigned field, const char *s) {
        put_bytes(b, field, s, strlen(s));
}

static void put_message(Buf *b, unsigned field, const Buf *m) {
        put_bytes(b, field, m->data, m->n);
}

/* A file with one message and the given imports. */
static void put_file(Buf *set, const char *name, const char *package, const char *message, const char *imports[]) {
        Buf f = {}, m = {};

        put_string(&f, 1, name);
        put_string(&f, 2, package);
        for (size_t i = 0; imports && imports[i]; i++)
                put_string(&f, 3, imports[i]);
        put_string(&m, 1, message);
        put_message(&f, 4, &m);
        put_message(set, 1, &f);
}

static void test_embedded(void **state) {
        DescriptorDb *db = NULL;
        const char *want[] = { "jobworker.v1.JobWorker", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                               "grpc.reflection.v1alpha.ServerReflection" };
        int i;

        (void) state;
        assert_int_equal(descriptor_db_new(&db, descriptor_set, descriptor_set_size), 0);
        assert_int_equal(descriptor_db_n_files(db), 4);
        assert_int_equal(descriptor_db_n_services(db), 4);
        for (size_t k = 0; k < 4; k++)
                assert_string_equal(descriptor_db_service(db, k), want[k]);
        assert_null(descriptor_db_service(db, 4));

        i = descriptor_db_find_file(db, "grpc/health/v1/health.proto");
        assert_true(i >= 0);
        assert_string_equal(descriptor_db_file(db, i)->package, "grpc.health.v1");
        assert_int_equal(descriptor_db_find_symbol(db, "grpc.health.v1.HealthCheckResponse.ServingStatus"), i);
        assert_int_equal(descriptor_db_find_symbol(db, "grpc.health.v1.Health.Watch"), i);
        assert_int_equal(descriptor_db_find_symbol(db, ".grpc.health.v1.Health"), i);

        i = descriptor_db_find_file(db, "jobworker/v1/jobworker.proto");
        assert_true(i >= 0);
        assert_int_equal(descriptor_db_find_symbol(db, "jobworker.v1.JobWorker"), i);
        assert_int_equal(descriptor_db_find_symbol(db, "jobworker.v1.JobWorker.Output"), i);
        assert_int_equal(descriptor_db_find_symbol(db, "jobworker.v1.StartRequest"), i);
        assert_int_equal(descriptor_db_find_symbol(db, "jobworker.v1.JobState"), i);

        assert_int_equal(descriptor_db_find_symbol(db, "jobworker.v1"), -ENOENT);
        assert_int_equal(descriptor_db_find_symbol(db, "jobworker.v1.JobWorker.Nope"), -ENOENT);
        assert_int_equal(descriptor_db_find_symbol(db, "JobWorker"), -ENOENT);
        assert_int_equal(descriptor_db_find_file(db, "jobworker.proto"), -ENOENT);
        descriptor_db_free(db);
}

static void test_imports(void **state) {
        Buf set = {};
        const char *a_imports[] = { "b.proto", "c.proto", NULL };
        const char *b_imports[] = { "c.proto", NULL };
        const char *c_imports[] = { "a.proto", NULL }; /* a cycle: each file still once */
        DescriptorDb *db = NULL;
        size_t idx[3];
        int a, b, c;

        (void) state;
        put_file(&set, "a.proto", "pa", "A", a_imports);
        put_file(&set, "b.proto", "pb", "B", b_imports);
        put_file(&set, "c.proto", "", "C", c_imports);
        assert_int_equal(descriptor_db_new(&db, set.data, set.n), 0);
        a = descriptor_db_find_symbol(db, "pa.A");
        b = descriptor_db_find_symbol(db, "pb.B");
        c = descriptor_db_find_symbol(db, "C"); /* no package */
        assert_true(a >= 0 && b >= 0 && c >= 0);

        assert_int_equal(descriptor_db_with_imports(db, a, idx), 3);
        assert_int_equal(idx[0], a);
        assert_int_equal(idx[1], b);
        assert_int_equal(idx[2], c);
        assert_int_equal(descriptor_db_with_imports(db, b, idx), 3);
        assert_int_equal(idx[0], b);
        assert_int_equal(idx[1], c);
        assert_int_equal(idx[2], a);
        assert_int_equal(descriptor_db_with_imports(db, 7, idx), 0);
        /* each file is its own bytes, cut from the set */
        assert_true(descriptor_db_file(db, a)->data > set.data);
        assert_true(descriptor_db_file(db, c)->data + descriptor_db_file(db, c)->size == set.data + set.n);
        descriptor_db_free(db);
}

static void test_refused(void **state) {
        const char *missing[] = { "nowhere.proto", NULL };
        DescriptorDb *db = NULL;
        Buf set = {}, deep = {}, f = {};

        (void) state;
        /* a cut-off set */
        put_file(&set, "a.proto", "p", "A", NULL);
        assert_int_equal(descriptor_db_new(&db, set.data, set.n - 1), -EINVAL);
        /* an import the set lacks */
        set.n = 0;
        put_file(&set, "a.proto", "p", "A", missing);
        assert_int_equal(descriptor_db_new(&db, set.data, set.n), -EINVAL);
        /* a file without a name */
        set.n = 0;
        put_file(&set, "", "p", "A", NULL);
        assert_int_equal(descriptor_db_new(&db, set.data, set.n), -EINVAL);
        /* messages nested beyond any reason */
        put_string(&deep, 1, "M");
        for (int i = 0; i < 40; i++) {
                Buf outer = {};
                put_string(&outer, 1, "M");
                put_message(&outer, 3, &deep);
                deep = outer;
        }
        put_string(&f, 1, "deep.proto");
        put_message(&f, 4, &deep);
        set.n = 0;
        put_message(&set, 1, &f);
        assert_int_equal(descriptor_db_new(&db, set.data, set.n), -EINVAL);
        assert_null(db);
        /* nothing at all is an empty set */
        assert_int_equal(descriptor_db_new(&db, "", 0), 0);
        assert_int_equal(descriptor_db_n_files(db), 0);
        descriptor_db_free(db);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_embedded),
                cmocka_unit_test(test_imports),
                cmocka_unit_test(test_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
