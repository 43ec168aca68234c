/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The committed development certificates (certs/, found through
 * JW_SOURCE_ROOT) for the TLS tests. Include after cmocka.h.
 */

#include <stdio.h>
#include <stdlib.h>

#include "shared/macro.h"
#include "tls/tls.h"

/* certs/NAME, malloc()ed. */
static inline char *cert_path(const char *name) {
        const char *root = getenv("JW_SOURCE_ROOT");
        char *p;

        assert_true(asprintf(&p, "%s/certs/%s", root ?: ".", name) > 0);
        return p;
}

/* A context from certs/ files; fails the test if it does not load. */
static inline TlsContext *load_context(TlsRole role, const char *cert, const char *key, const char *ca,
                                       const char *priority) {
        _cleanup_free_ char *c = cert_path(cert), *k = cert_path(key), *a = cert_path(ca), *err = NULL;
        TlsContext *ctx = NULL;

        if (tls_context_new(&ctx, role, c, k, a, priority, &err) < 0)
                fail_msg("loading %s: %s", cert, err ?: "(no message)");
        return ctx;
}
