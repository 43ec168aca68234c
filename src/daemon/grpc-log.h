/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * gRPC C core's own messages (gpr_log) through the daemon's log: escaped
 * like every other line (a peer's bytes in a gRPC message cannot forge a
 * journal entry or drive a terminal), at our levels, and rate-limited,
 * since a client can make gRPC complain at will.
 */

/* Before grpc_init(); any thread may log afterwards. */
void grpc_log_install(void);
