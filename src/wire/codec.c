/* SPDX-License-Identifier: MIT */

/*
 * Packing protobuf-c messages into gRPC byte buffers and back. The one idea:
 * one contiguous slice each way, so a message is copied exactly once.
 */

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "wire/codec.h"

grpc_byte_buffer *codec_pack(const ProtobufCMessage *m) {
        size_t n = protobuf_c_message_get_packed_size(m);
        grpc_slice s = grpc_slice_malloc(n);
        grpc_byte_buffer *bb;

        protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
        bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        return bb;
}

ProtobufCMessage *codec_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d) {
        grpc_byte_buffer_reader reader;
        ProtobufCMessage *m;
        grpc_slice s;

        if (!grpc_byte_buffer_reader_init(&reader, bb))
                return NULL;
        s = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
        grpc_slice_unref(s);
        return m;
}
