/* SPDX-License-Identifier: MIT */
#pragma once

/* protobuf-c messages <-> gRPC C core byte buffers, for the server and jwctl. */

#include <grpc/byte_buffer.h>
#include <protobuf-c/protobuf-c.h>

/* A new byte buffer holding m packed (one slice). Caller destroys it. */
grpc_byte_buffer *codec_pack(const ProtobufCMessage *m);

/* The message in bb, or NULL if it does not parse. Caller frees it with
 * protobuf_c_message_free_unpacked(). */
ProtobufCMessage *codec_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d);
