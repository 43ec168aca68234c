/* SPDX-License-Identifier: MIT */
/*
 * The connection registry (see conn-registry.h).
 *
 * The one idea: a call is given an identity only when the key in gRPC's peer
 * string can name one connection and one only. Ids never repeat, so an id key
 * is exact. An fd number does repeat, and the registry alone cannot tell which
 * connection a call of "fd:N" came from. What makes fd keys sound is a fact of
 * gRPC C core (checked on Debian 12's 1.51 with a throwaway program: a call of
 * a transport whose client had already gone, held unmatched inside gRPC and
 * then by us, kept fd N open; N was closed only by the grpc_call_unref() of
 * the last call): gRPC closes a transport's fd only when the last call made
 * on it is destroyed. We hold a call from its arrival until we answer it and
 * resolve its identity in between, so while we resolve, N is still the old
 * transport's and cannot have been handed to a newer connection. What the
 * registry adds on top is the case that fact does not cover: a newer
 * connection registered N before the older one's close was reported to us.
 * Then both entries are kept (the older one marked superseded) and calls of
 * "fd:N" are refused (-EBUSY, the client may retry) until the older close is
 * seen. Not guaranteed: that fact of gRPC in later versions (it is behaviour,
 * not contract); the bridge's path (id keys) does not depend on it, and only
 * kernel TLS uses fd keys.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/conn-registry.h"
#include "shared/macro.h"
#include "shared/parse-util.h"

typedef struct ConnEntry {
        uint64_t id;
        int fd;            /* -1: keyed by id */
        bool superseded;   /* fd keys: a newer connection registered the same number */
        char *identity;
        char *peer_addr;
} ConnEntry;

struct ConnRegistry {
        pthread_mutex_t lock;
        char *id_prefix;   /* "unix:<dir>/c-", NULL without a unix_dir */
        ConnEntry *entries;
        size_t n_entries, allocated;
};

int conn_registry_new(ConnRegistry **ret, const char *unix_dir) {
        ConnRegistry *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        if (unix_dir && asprintf(&r->id_prefix, "unix:%s/" CONN_REGISTRY_NAME_PREFIX, unix_dir) < 0) {
                free(r);
                return -ENOMEM;
        }
        pthread_mutex_init(&r->lock, NULL);
        *ret = r;
        return 0;
}

static void entry_done(ConnEntry *e) {
        free(e->identity);
        free(e->peer_addr);
}

ConnRegistry *conn_registry_free(ConnRegistry *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_entries; i++)
                entry_done(&r->entries[i]);
        free(r->entries);
        free(r->id_prefix);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}

static ConnEntry *find_id(ConnRegistry *r, uint64_t id) {
        for (size_t i = 0; i < r->n_entries; i++)
                if (r->entries[i].id == id)
                        return &r->entries[i];
        return NULL;
}

static int grow(ConnRegistry *r) {
        size_t na;
        ConnEntry *ne;

        if (r->n_entries < r->allocated)
                return 0;
        na = r->allocated ? r->allocated * 2 : 64;
        ne = reallocarray(r->entries, na, sizeof(*ne));
        if (!ne)
                return -ENOMEM;
        r->entries = ne;
        r->allocated = na;
        return 0;
}

int conn_registry_add(ConnRegistry *r, uint64_t conn_id, int fd, const char *identity, const char *peer_addr) {
        ConnEntry e = { .id = conn_id, .fd = fd < 0 ? -1 : fd };
        int ret;

        e.identity = strdup(identity ? identity : "");
        e.peer_addr = strdup(peer_addr ? peer_addr : "");
        if (!e.identity || !e.peer_addr) {
                entry_done(&e);
                return -ENOMEM;
        }
        pthread_mutex_lock(&r->lock);
        ret = find_id(r, conn_id) ? -EEXIST : grow(r);
        if (ret == 0) {
                /* An entry with the same number is an older connection whose
                 * close was not reported yet: it stays, superseded, so that
                 * "fd:N" is known to be ambiguous until it goes. */
                for (size_t i = 0; e.fd >= 0 && i < r->n_entries; i++)
                        if (r->entries[i].fd == e.fd)
                                r->entries[i].superseded = true;
                r->entries[r->n_entries++] = e;
        }
        pthread_mutex_unlock(&r->lock);
        if (ret < 0)
                entry_done(&e);
        return ret;
}

void conn_registry_remove(ConnRegistry *r, uint64_t conn_id) {
        ConnEntry *e;

        pthread_mutex_lock(&r->lock);
        e = find_id(r, conn_id);
        if (e) {
                entry_done(e);
                *e = r->entries[--r->n_entries];
        }
        pthread_mutex_unlock(&r->lock);
}

/* Under the lock: the entry a peer string names, or an error. */
static int resolve(ConnRegistry *r, const char *peer, ConnEntry **ret) {
        ConnEntry *found = NULL;
        uint64_t key;
        bool ambiguous = false;

        if (r->id_prefix && strncmp(peer, r->id_prefix, strlen(r->id_prefix)) == 0) {
                if (parse_uint64(peer + strlen(r->id_prefix), &key) < 0)
                        return -EPROTO;
                found = find_id(r, key);
                if (!found || found->fd >= 0)
                        return -ENOENT;
                *ret = found;
                return 0;
        }
        if (strncmp(peer, "fd:", 3) != 0 || parse_uint64(peer + 3, &key) < 0 || key > INT32_MAX)
                return -EPROTO;
        for (size_t i = 0; i < r->n_entries; i++) {
                if (r->entries[i].fd != (int) key)
                        continue;
                if (r->entries[i].superseded)
                        ambiguous = true;
                else
                        found = &r->entries[i];
        }
        if (ambiguous)
                return -EBUSY;
        if (!found)
                return -ENOENT;
        *ret = found;
        return 0;
}

int conn_registry_lookup(ConnRegistry *r, const char *peer, char **ret_identity) {
        ConnEntry *e;
        char *identity = NULL;
        int ret;

        if (!peer)
                return -EPROTO;
        pthread_mutex_lock(&r->lock);
        ret = resolve(r, peer, &e);
        if (ret == 0) {
                identity = strdup(e->identity);
                if (!identity)
                        ret = -ENOMEM;
        }
        pthread_mutex_unlock(&r->lock);
        if (ret == 0)
                *ret_identity = identity;
        return ret;
}

size_t conn_registry_count(ConnRegistry *r) {
        size_t n;

        pthread_mutex_lock(&r->lock);
        n = r->n_entries;
        pthread_mutex_unlock(&r->lock);
        return n;
}

int conn_registry_socket_name(const char *unix_dir, uint64_t conn_id, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s/" CONN_REGISTRY_NAME_PREFIX "%llu", unix_dir, (unsigned long long) conn_id);

        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}
