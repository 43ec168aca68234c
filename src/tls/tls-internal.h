/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What tls-context.c (loading a context) and tls.c (sessions made from it)
 * share. Not for other modules.
 */

#include "tls/tls.h"

/* Files larger than this are not certificates, keys or CRLs we want to parse. */
#define TLS_FILE_MAX (1024 * 1024)

struct TlsContext {
        unsigned n_ref;
        TlsRole role;
        gnutls_certificate_credentials_t cred;
        gnutls_priority_t priority;
        char *ca_file;          /* what CRLs must be issued by (tls-crl.c) */
};

/* Reads a whole file of at most TLS_FILE_MAX bytes (NUL-terminated beyond
 * ret->size) into a malloc()ed datum. -errno (-EISDIR, -EFBIG, ...). */
int tls_read_small_file(const char *path, gnutls_datum_t *ret);
/* Wipes and frees the datum's data (it may be key material). */
void tls_datum_clear(gnutls_datum_t *d);
