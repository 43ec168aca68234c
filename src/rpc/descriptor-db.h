/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The proto files the daemon serves by reflection: a FileDescriptorSet
 * (built by protoc-c at build time and embedded, see proto/meson.build)
 * read once into an index of files, their imports, their services and the
 * symbols they define.
 *
 * Symbols known (fully qualified, a leading '.' is ignored): messages and
 * enums at any nesting depth (pkg.Msg, pkg.Msg.Inner, pkg.Msg.Enum),
 * services (pkg.Service) and methods (pkg.Service.Method). Not indexed:
 * fields, enum values and extensions (no file served declares one).
 *
 * Threads: immutable after descriptor_db_new(); any thread may read it.
 * The serialized files point into the bytes given to descriptor_db_new(),
 * which must outlive the db (the embedded set is static).
 */

#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"

typedef struct DescriptorFile {
        const uint8_t *data;          /* the serialized FileDescriptorProto */
        size_t size;
        char *name;                   /* "jobworker/v1/jobworker.proto" */
        char *package;                /* "jobworker.v1", "" if none */
        char **dependencies;          /* imported file names */
        size_t n_dependencies;
} DescriptorFile;

typedef struct DescriptorDb DescriptorDb;

/* Reads a serialized FileDescriptorSet. -EINVAL when it is not one (or a file
 * imports one the set lacks), -ENOMEM. */
int descriptor_db_new(DescriptorDb **ret, const void *data, size_t size);
DescriptorDb *descriptor_db_free(DescriptorDb *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(DescriptorDb *, descriptor_db_free);
#define _cleanup_descriptor_db_ _cleanup_(descriptor_db_freep)

size_t descriptor_db_n_files(const DescriptorDb *db);
const DescriptorFile *descriptor_db_file(const DescriptorDb *db, size_t i);

/* The index of the file named name, or of the file that defines symbol;
 * -ENOENT when there is none. */
int descriptor_db_find_file(const DescriptorDb *db, const char *name);
int descriptor_db_find_symbol(const DescriptorDb *db, const char *symbol);

/* The file i and every file it imports, directly or not, each once, i first:
 * writes their indices to ret (room for descriptor_db_n_files()) and returns
 * how many. */
size_t descriptor_db_with_imports(const DescriptorDb *db, size_t i, size_t *ret);

/* The services of every file, fully qualified ("jobworker.v1.JobWorker"). */
size_t descriptor_db_n_services(const DescriptorDb *db);
const char *descriptor_db_service(const DescriptorDb *db, size_t i);
