/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Who is calling: the registry of verified connections, resolving the peer
 * string gRPC gives a call into the identity of the connection it came in on.
 *
 * Two kinds of keys, one per way a connection reaches gRPC:
 *  - by id (the bridge's path): the connection reached gRPC's private unix
 *    socket from a socket bound to CONN_REGISTRY_NAME_PREFIX<conn_id> inside
 *    the server's socket directory; gRPC says "unix:<dir>/c-<conn_id>".
 *    conn_id is never reused, so a late call of a closed connection finds no
 *    entry and can never find another connection's.
 *  - by fd number (kernel TLS: gRPC got the TCP socket, says "fd:N"). See
 *    conn-registry.c for what is guaranteed there and why.
 *
 * Threads: every function may be called from any thread (one mutex).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ConnRegistry ConnRegistry;

/* The file name a connection's socket is bound to: "c-" + decimal conn_id. */
#define CONN_REGISTRY_NAME_PREFIX "c-"

/* unix_dir: the directory the per-connection names live in (as in gRPC's
 * peer strings, no trailing '/'); NULL if only fd-number entries are used. */
int conn_registry_new(ConnRegistry **ret, const char *unix_dir);
ConnRegistry *conn_registry_free(ConnRegistry *r);

/* Records connection conn_id (unique for the process lifetime) as identity.
 * fd: the number gRPC knows it by ("fd:N"), or -1 for a connection known by
 * its id. -EEXIST if conn_id is registered already. */
int conn_registry_add(ConnRegistry *r, uint64_t conn_id, int fd, const char *identity, const char *peer_addr);

/* Connection conn_id is gone. Unknown ids are ignored. */
void conn_registry_remove(ConnRegistry *r, uint64_t conn_id);

/* The identity (malloc()ed, in *ret_identity) of the connection gRPC names
 * by peer. Errors, each a refusal of the call:
 *  -ENOENT     no connection (it closed, or was never verified)
 *  -EBUSY      fd:N while two connections may own N (an earlier one with that
 *              number was not yet seen closed): which one is not knowable
 *  -EPROTO     a peer string of a shape this registry does not give out
 *  -ENOMEM */
int conn_registry_lookup(ConnRegistry *r, const char *peer, char **ret_identity);

/* Connections registered. */
size_t conn_registry_count(ConnRegistry *r);

/* The name (in buf) a connection's socket binds to; -ENAMETOOLONG if it
 * does not fit size. */
int conn_registry_socket_name(const char *unix_dir, uint64_t conn_id, char *buf, size_t size);
