/* SPDX-License-Identifier: MIT */
/*
 * Certificate revocation lists for a server TlsContext (see tls.h,
 * tls_context_set_crl()).
 *
 * The one idea: a CRL is checked once, when it is loaded — it must parse,
 * be signed by the context's CA and be current — and is then handed to
 * GnuTLS, which consults it in every handshake's certificate verification
 * (a revoked client certificate fails with GNUTLS_CERT_REVOKED). A CRL that
 * is wrong is never half-applied: the caller keeps the context it had.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gnutls/x509.h>

#include "shared/string-util.h"
#include "tls/tls-internal.h"

typedef struct CrlFiles {
        gnutls_datum_t crl_pem, ca_pem;
        gnutls_x509_crl_t *crls;
        unsigned n_crls;
        gnutls_x509_crt_t *cas;
        unsigned n_cas;
} CrlFiles;

static void crl_files_done(CrlFiles *f) {
        for (unsigned i = 0; i < f->n_crls; i++)
                gnutls_x509_crl_deinit(f->crls[i]);
        gnutls_free(f->crls);
        for (unsigned i = 0; i < f->n_cas; i++)
                gnutls_x509_crt_deinit(f->cas[i]);
        gnutls_free(f->cas);
        tls_datum_clear(&f->crl_pem);
        tls_datum_clear(&f->ca_pem);
}

static void format_utc(time_t t, char *buf, size_t size) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, size, "@%lld", (long long) t);
}

static int crl_files_load(CrlFiles *f, const char *crl_file, const char *ca_file, char **msg) {
        int r;

        r = tls_read_small_file(crl_file, &f->crl_pem);
        if (r < 0) {
                *msg = strdup_printf("CRL file %s: %s", crl_file, strerror(-r));
                return r;
        }
        r = gnutls_x509_crl_list_import2(&f->crls, &f->n_crls, &f->crl_pem, GNUTLS_X509_FMT_PEM, 0);
        if (r < 0 || f->n_crls == 0) {
                f->n_crls = 0;
                *msg = strdup_printf("CRL file %s: not a PEM certificate revocation list (%s)", crl_file,
                                     r < 0 ? gnutls_strerror(r) : "no CRL found");
                return -EBADMSG;
        }
        r = tls_read_small_file(ca_file, &f->ca_pem);
        if (r < 0) {
                *msg = strdup_printf("CA file %s: %s", ca_file, strerror(-r));
                return r;
        }
        r = gnutls_x509_crt_list_import2(&f->cas, &f->n_cas, &f->ca_pem, GNUTLS_X509_FMT_PEM, 0);
        if (r < 0) {
                f->n_cas = 0;
                *msg = strdup_printf("CA file %s: %s", ca_file, gnutls_strerror(r));
                return -EBADMSG;
        }
        return 0;
}

/* Each CRL must be signed by one of the CAs and be current now. */
static int crl_check(const CrlFiles *f, const char *crl_file, const char *ca_file, TlsCrlInfo *info,
                     char **msg) {
        time_t now = time(NULL);
        char when[64];

        *info = (TlsCrlInfo) { .next_update = (time_t) -1 };
        for (unsigned i = 0; i < f->n_crls; i++) {
                gnutls_x509_crl_t crl = f->crls[i];
                unsigned status = 0;
                time_t this_update = gnutls_x509_crl_get_this_update(crl);
                time_t next_update = gnutls_x509_crl_get_next_update(crl);
                int n;

                /* Any failure but the dates (checked below, in words) is a wrong signer. */
                if (gnutls_x509_crl_verify(crl, f->cas, f->n_cas, 0, &status) < 0 ||
                    (status & ~(unsigned) (GNUTLS_CERT_INVALID | GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED |
                                           GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE)) != 0) {
                        *msg = strdup_printf("CRL file %s: not signed by the CA in %s", crl_file, ca_file);
                        return -EBADMSG;
                }
                if (this_update != (time_t) -1 && this_update > now) {
                        format_utc(this_update, when, sizeof when);
                        *msg = strdup_printf("CRL file %s: issued in the future (%s); check the clock", crl_file,
                                             when);
                        return -EKEYEXPIRED;
                }
                if (next_update != (time_t) -1 && next_update <= now) {
                        format_utc(next_update, when, sizeof when);
                        *msg = strdup_printf("CRL file %s: out of date since %s (its next update); renew it "
                                             "with 'jobworker-certs crl'",
                                             crl_file, when);
                        return -EKEYEXPIRED;
                }
                n = gnutls_x509_crl_get_crt_count(crl);
                if (n > 0)
                        info->n_revoked += (unsigned) n;
                if (next_update != (time_t) -1 && (info->next_update == (time_t) -1 || next_update < info->next_update))
                        info->next_update = next_update;
        }
        return 0;
}

int tls_context_set_crl(TlsContext *ctx, const char *crl_file, TlsCrlInfo *ret_info, char **ret_error) {
        CrlFiles files = {};
        _cleanup_free_ char *msg = NULL;
        TlsCrlInfo info = {};
        int r;

        if (!ctx || !crl_file || ctx->role != TLS_ROLE_SERVER)
                return -EINVAL;

        r = crl_files_load(&files, crl_file, ctx->ca_file, &msg);
        if (r >= 0)
                r = crl_check(&files, crl_file, ctx->ca_file, &info, &msg);
        if (r >= 0) {
                /* GnuTLS copies the CRLs into the credentials' trust list. */
                r = gnutls_certificate_set_x509_crl(ctx->cred, files.crls, (int) files.n_crls);
                if (r < 0) {
                        msg = strdup_printf("CRL file %s: %s", crl_file, gnutls_strerror(r));
                        r = -EINVAL;
                }
        }
        crl_files_done(&files);
        if (r < 0) {
                if (ret_error)
                        *ret_error = msg ? TAKE_PTR(msg) : strdup_printf("CRL file %s: %s", crl_file, strerror(-r));
                return r;
        }
        if (ret_info)
                *ret_info = info;
        return 0;
}
