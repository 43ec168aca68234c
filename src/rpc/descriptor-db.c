/* SPDX-License-Identifier: MIT */
/*
 * The index of the served proto files (see descriptor-db.h).
 *
 * The one idea: the FileDescriptorSet is walked on the wire, without a
 * generated descriptor.proto: only a handful of field numbers matter
 * (FileDescriptorSet.file = 1; FileDescriptorProto name = 1, package = 2,
 * dependency = 3, message_type = 4, enum_type = 5, service = 6;
 * DescriptorProto name = 1, nested_type = 3, enum_type = 4;
 * ServiceDescriptorProto name = 1, method = 2; every other name = 1), and
 * a file is answered with its own bytes, cut out of the set unchanged.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/descriptor-db.h"

/* How deep messages may nest in the set before it is refused. */
#define NESTING_MAX 32

typedef struct Symbol {
        char *name;
        size_t file;
} Symbol;

struct DescriptorDb {
        DescriptorFile *files;
        size_t n_files;
        Symbol *symbols;
        size_t n_symbols;
        char **services;
        size_t n_services;
};

/* The wire ------------------------------------------------------------------ */

typedef struct Field {
        uint64_t number;
        unsigned type;
        const uint8_t *data;          /* wire type 2 */
        size_t size;
} Field;

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (*p >= end)
                        return -EINVAL;
                v |= (uint64_t) (**p & 0x7f) << shift;
                if (!(*(*p)++ & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EINVAL;
}

/* The next field from *p; 0 at the end, 1 with a field, -EINVAL. */
static int next_field(const uint8_t **p, const uint8_t *end, Field *ret) {
        uint64_t key, v;

        if (*p >= end)
                return 0;
        if (read_varint(p, end, &key) < 0)
                return -EINVAL;
        *ret = (Field) { .number = key >> 3, .type = key & 7 };
        switch (ret->type) {
        case 0:
                return read_varint(p, end, &v) < 0 ? -EINVAL : 1;
        case 1:
        case 5: {
                size_t n = ret->type == 1 ? 8 : 4;
                if ((size_t) (end - *p) < n)
                        return -EINVAL;
                *p += n;
                return 1;
        }
        case 2:
                if (read_varint(p, end, &v) < 0 || v > (uint64_t) (end - *p))
                        return -EINVAL;
                ret->data = *p;
                ret->size = v;
                *p += v;
                return 1;
        default:
                return -EINVAL;
        }
}

static char *field_string(const Field *f) {
        if (memchr(f->data, 0, f->size))
                return NULL;
        return strndup((const char *) f->data, f->size);
}

/* The string in field number `number` of the message in data (the last one
 * wins, as protobuf reads it); "" when absent, NULL on error. */
static char *message_string(const uint8_t *data, size_t size, uint64_t number) {
        const uint8_t *p = data, *end = data + size;
        Field f, found = { .data = (const uint8_t *) "", .size = 0 };
        int r;

        while ((r = next_field(&p, end, &f)) > 0)
                if (f.number == number && f.type == 2)
                        found = f;
        return r < 0 ? NULL : field_string(&found);
}

/* Indexing ------------------------------------------------------------------- */

static int add_symbol(DescriptorDb *db, size_t file, const char *scope, const uint8_t *data, size_t size,
                      char **ret_name) {
        _cleanup_free_ char *name = message_string(data, size, 1), *full = NULL;
        Symbol *s;

        if (!name || !*name)
                return -EINVAL;
        if (asprintf(&full, "%s%s%s", scope, *scope ? "." : "", name) < 0)
                return -ENOMEM;
        s = reallocarray(db->symbols, db->n_symbols + 1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        db->symbols = s;
        if (ret_name && !(*ret_name = strdup(full)))
                return -ENOMEM;
        s[db->n_symbols++] = (Symbol) { .name = TAKE_PTR(full), .file = file };
        return 0;
}

/* A DescriptorProto (message) or EnumDescriptorProto (is_enum) in scope. */
static int index_type(DescriptorDb *db, size_t file, const char *scope, const uint8_t *data, size_t size,
                      bool is_enum, unsigned depth) {
        _cleanup_free_ char *name = NULL;
        const uint8_t *p = data, *end = data + size;
        Field f;
        int r;

        if (depth > NESTING_MAX)
                return -EINVAL;
        r = add_symbol(db, file, scope, data, size, &name);
        if (r < 0 || is_enum)
                return r;
        while ((r = next_field(&p, end, &f)) > 0)
                if (f.type == 2 && (f.number == 3 || f.number == 4)) {
                        r = index_type(db, file, name, f.data, f.size, f.number == 4, depth + 1);
                        if (r < 0)
                                return r;
                }
        return r;
}

static int index_service(DescriptorDb *db, size_t file, const char *scope, const uint8_t *data, size_t size) {
        _cleanup_free_ char *name = NULL;
        const uint8_t *p = data, *end = data + size;
        char **v;
        Field f;
        int r;

        r = add_symbol(db, file, scope, data, size, &name);
        if (r < 0)
                return r;
        while ((r = next_field(&p, end, &f)) > 0)
                if (f.type == 2 && f.number == 2) {
                        r = add_symbol(db, file, name, f.data, f.size, NULL);
                        if (r < 0)
                                return r;
                }
        if (r < 0)
                return r;
        v = reallocarray(db->services, db->n_services + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        db->services = v;
        v[db->n_services++] = TAKE_PTR(name);
        return 0;
}

static int add_dependency(DescriptorFile *df, const Field *f) {
        char **v = reallocarray(df->dependencies, df->n_dependencies + 1, sizeof(*v));

        if (!v)
                return -ENOMEM;
        df->dependencies = v;
        v[df->n_dependencies] = field_string(f);
        if (!v[df->n_dependencies])
                return -EINVAL;
        df->n_dependencies++;
        return 0;
}

static int index_file(DescriptorDb *db, size_t i) {
        DescriptorFile *df = &db->files[i];
        const uint8_t *p = df->data, *end = df->data + df->size;
        Field f;
        int r;

        df->name = message_string(df->data, df->size, 1);
        df->package = message_string(df->data, df->size, 2);
        if (!df->name || !df->package || !*df->name)
                return -EINVAL;
        while ((r = next_field(&p, end, &f)) > 0) {
                if (f.type != 2)
                        continue;
                if (f.number == 3)
                        r = add_dependency(df, &f);
                else if (f.number == 4 || f.number == 5)
                        r = index_type(db, i, df->package, f.data, f.size, f.number == 5, 0);
                else if (f.number == 6)
                        r = index_service(db, i, df->package, f.data, f.size);
                if (r < 0)
                        return r;
        }
        return r;
}

int descriptor_db_new(DescriptorDb **ret, const void *data, size_t size) {
        _cleanup_descriptor_db_ DescriptorDb *db = calloc(1, sizeof(*db));
        const uint8_t *p = data, *end = p + size;
        Field f;
        int r;

        if (!db)
                return -ENOMEM;
        while ((r = next_field(&p, end, &f)) > 0) {
                DescriptorFile *v;

                if (f.number != 1 || f.type != 2)
                        continue;
                v = reallocarray(db->files, db->n_files + 1, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                db->files = v;
                v[db->n_files++] = (DescriptorFile) { .data = f.data, .size = f.size };
        }
        if (r < 0)
                return r;
        for (size_t i = 0; i < db->n_files; i++) {
                r = index_file(db, i);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < db->n_files; i++)
                for (size_t k = 0; k < db->files[i].n_dependencies; k++)
                        if (descriptor_db_find_file(db, db->files[i].dependencies[k]) < 0)
                                return -EINVAL;
        *ret = TAKE_PTR(db);
        return 0;
}

DescriptorDb *descriptor_db_free(DescriptorDb *db) {
        if (!db)
                return NULL;
        for (size_t i = 0; i < db->n_files; i++) {
                free(db->files[i].name);
                free(db->files[i].package);
                for (size_t k = 0; k < db->files[i].n_dependencies; k++)
                        free(db->files[i].dependencies[k]);
                free(db->files[i].dependencies);
        }
        for (size_t i = 0; i < db->n_symbols; i++)
                free(db->symbols[i].name);
        for (size_t i = 0; i < db->n_services; i++)
                free(db->services[i]);
        free(db->files);
        free(db->symbols);
        free(db->services);
        free(db);
        return NULL;
}

/* Queries --------------------------------------------------------------------- */

size_t descriptor_db_n_files(const DescriptorDb *db) {
        return db->n_files;
}

const DescriptorFile *descriptor_db_file(const DescriptorDb *db, size_t i) {
        return i < db->n_files ? &db->files[i] : NULL;
}

int descriptor_db_find_file(const DescriptorDb *db, const char *name) {
        for (size_t i = 0; i < db->n_files; i++)
                if (strcmp(db->files[i].name, name) == 0)
                        return (int) i;
        return -ENOENT;
}

int descriptor_db_find_symbol(const DescriptorDb *db, const char *symbol) {
        if (symbol[0] == '.')
                symbol++;
        for (size_t i = 0; i < db->n_symbols; i++)
                if (strcmp(db->symbols[i].name, symbol) == 0)
                        return (int) db->symbols[i].file;
        return -ENOENT;
}

size_t descriptor_db_with_imports(const DescriptorDb *db, size_t i, size_t *ret) {
        size_t n = 0;

        if (i >= db->n_files)
                return 0;
        ret[n++] = i;
        /* Breadth first over ret itself: each file is added once. */
        for (size_t k = 0; k < n; k++) {
                const DescriptorFile *df = &db->files[ret[k]];

                for (size_t d = 0; d < df->n_dependencies; d++) {
                        int j = descriptor_db_find_file(db, df->dependencies[d]);
                        bool seen = false;

                        for (size_t m = 0; m < n && !seen; m++)
                                seen = ret[m] == (size_t) j;
                        if (j >= 0 && !seen)
                                ret[n++] = (size_t) j;
                }
        }
        return n;
}

size_t descriptor_db_n_services(const DescriptorDb *db) {
        return db->n_services;
}

const char *descriptor_db_service(const DescriptorDb *db, size_t i) {
        return i < db->n_services ? db->services[i] : NULL;
}
