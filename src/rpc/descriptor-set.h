/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The FileDescriptorSet of every proto file the daemon serves (jobworker's,
 * grpc.health.v1, grpc.reflection v1 and v1alpha), with imports, as protoc
 * wrote it at build time: the bytes of the generated descriptor-set.c
 * (proto/meson.build, proto/embed-bytes.py). Static, never freed.
 */

#include <stddef.h>

extern const unsigned char descriptor_set[];
extern const size_t descriptor_set_size;
