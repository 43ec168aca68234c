/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * gRPC server reflection, grpc.reflection.v1 and v1alpha (the same messages
 * field for field, so one codec serves both): list_services,
 * file_by_filename, file_containing_symbol (the file that defines the
 * symbol and every file it imports, as grpcurl expects),
 * file_containing_extension (NOT_FOUND: no served file declares an
 * extension) and all_extension_numbers_of_type (an empty list for a message
 * we serve, NOT_FOUND otherwise), answered from the descriptor set embedded
 * at build time (descriptor-db.h). Internal to src/rpc; engine thread only.
 */

#include "core/engine.h"
#include "rpc/call.h"

/* A new ServerReflectionInfo stream: authorizes it and starts reading. */
void reflection_start(RpcCall *c);

/* Closure for engine_post() on TAG_RECV: the last batch (answer sent, next
 * request read) completed; releases the reference it was given. */
void reflection_recv_closure(Engine *e, void *userdata);
