/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What tls-context.c (loading a context) and tls.c (sessions made from it)
 * share. Not for other modules.
 */

#include "tls/tls.h"

struct TlsContext {
        unsigned n_ref;
        TlsRole role;
        gnutls_certificate_credentials_t cred;
        gnutls_priority_t priority;
};
