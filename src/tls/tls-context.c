/* SPDX-License-Identifier: MIT */
/*
 * A TlsContext: one end's loaded TLS configuration (certificate + key, the
 * CA to verify the peer against, the GnuTLS priority string), shared by
 * reference among the sessions that use it (see tls.h).
 *
 * The one idea: every mistake an operator can make in these files is found
 * here, at load time, and named with the file it is in — a context that
 * loads can make handshakes; a handshake never fails later for a reason that
 * was already visible in the files (a key that does not match, a key type
 * the priority string cannot sign with).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gnutls/x509.h>

#include "shared/string-util.h"
#include "tls/tls-internal.h"

int tls_read_small_file(const char *path, gnutls_datum_t *ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ unsigned char *buf = NULL;
        struct stat st;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (st.st_size > TLS_FILE_MAX)
                return -EFBIG;

        buf = malloc(TLS_FILE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, TLS_FILE_MAX + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > TLS_FILE_MAX)
                        return -EFBIG;
        }
        buf[n] = 0;
        ret->data = TAKE_PTR(buf);
        ret->size = (unsigned) n;
        return 0;
}

void tls_datum_clear(gnutls_datum_t *d) {
        if (d->data) {
                /* key material: do not leave it in freed memory */
                gnutls_memset(d->data, 0, d->size);
                free(d->data);
        }
        d->data = NULL;
        d->size = 0;
}

static bool has_pem_block(const gnutls_datum_t *d, const char *label) {
        char marker[64];

        snprintf(marker, sizeof marker, "-----BEGIN %s", label);
        return d->data && memmem(d->data, d->size, marker, strlen(marker));
}

TlsContext *tls_context_ref(TlsContext *ctx) {
        if (ctx)
                __atomic_add_fetch(&ctx->n_ref, 1, __ATOMIC_RELAXED);
        return ctx;
}

TlsContext *tls_context_unref(TlsContext *ctx) {
        if (!ctx)
                return NULL;
        if (__atomic_sub_fetch(&ctx->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        if (ctx->priority)
                gnutls_priority_deinit(ctx->priority);
        if (ctx->cred)
                gnutls_certificate_free_credentials(ctx->cred);
        free(ctx->ca_file);
        free(ctx);
        return NULL;
}

TlsRole tls_context_role(const TlsContext *ctx) {
        return ctx->role;
}

/* What tls_context_new() reads and parses before it builds anything. */
typedef struct ContextFiles {
        const char *cert_file, *key_file, *ca_file;
        gnutls_datum_t cert, key, ca;
        gnutls_x509_crt_t *crts;
        unsigned n_crts;
        gnutls_x509_privkey_t pkey;
} ContextFiles;

static void context_files_done(ContextFiles *f) {
        for (unsigned i = 0; i < f->n_crts; i++)
                gnutls_x509_crt_deinit(f->crts[i]);
        gnutls_free(f->crts);
        if (f->pkey)
                gnutls_x509_privkey_deinit(f->pkey);
        tls_datum_clear(&f->cert);
        tls_datum_clear(&f->key);
        tls_datum_clear(&f->ca);
}

/* Reads and parses each file on its own first, so the message names the culprit. */
static int context_files_load(ContextFiles *f, char **msg) {
        int r;

        r = tls_read_small_file(f->cert_file, &f->cert);
        if (r < 0) {
                *msg = strdup_printf("certificate file %s: %s", f->cert_file, strerror(-r));
                return r;
        }
        r = gnutls_x509_crt_list_import2(&f->crts, &f->n_crts, &f->cert, GNUTLS_X509_FMT_PEM, 0);
        if (r < 0 || f->n_crts == 0) {
                *msg = strdup_printf("certificate file %s: not a PEM certificate (%s)", f->cert_file,
                                     r < 0 ? gnutls_strerror(r) : "no certificate found");
                return -EBADMSG;
        }

        r = tls_read_small_file(f->key_file, &f->key);
        if (r < 0) {
                *msg = strdup_printf("key file %s: %s", f->key_file, strerror(-r));
                return r;
        }
        r = gnutls_x509_privkey_init(&f->pkey);
        if (r < 0)
                return -ENOMEM;
        r = gnutls_x509_privkey_import2(f->pkey, &f->key, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (r < 0) {
                if (has_pem_block(&f->key, "ENCRYPTED PRIVATE KEY"))
                        *msg = strdup_printf("key file %s: encrypted private keys are not supported", f->key_file);
                else
                        *msg = strdup_printf("key file %s: not a PEM private key (%s)", f->key_file,
                                             gnutls_strerror(r));
                return -EBADMSG;
        }

        r = tls_read_small_file(f->ca_file, &f->ca);
        if (r < 0) {
                *msg = strdup_printf("CA file %s: %s", f->ca_file, strerror(-r));
                return r;
        }
        return 0;
}

static int context_set_credentials(TlsContext *ctx, ContextFiles *f, char **msg) {
        int r;

        r = gnutls_certificate_allocate_credentials(&ctx->cred);
        if (r < 0)
                return -ENOMEM;
        /* Checks that the key belongs to the first certificate. */
        r = gnutls_certificate_set_x509_key_mem2(ctx->cred, &f->cert, &f->key, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
                *msg = strdup_printf("key file %s does not match certificate file %s", f->key_file, f->cert_file);
                return -EINVAL;
        }
        if (r < 0) {
                *msg = strdup_printf("certificate file %s / key file %s: %s", f->cert_file, f->key_file,
                                     gnutls_strerror(r));
                return -EINVAL;
        }

        r = gnutls_certificate_set_x509_trust_mem(ctx->cred, &f->ca, GNUTLS_X509_FMT_PEM);
        if (r <= 0) {
                *msg = strdup_printf("CA file %s: not a PEM certificate (%s)", f->ca_file,
                                     r < 0 ? gnutls_strerror(r) : "no certificate found");
                return -EBADMSG;
        }
        return 0;
}

static int context_set_priority(TlsContext *ctx, const char *priority, char **msg) {
        const char *errpos = NULL;
        int r;

        r = gnutls_priority_init(&ctx->priority, priority, &errpos);
        if (r < 0) {
                ctx->priority = NULL;
                if (errpos && errpos >= priority && errpos <= priority + strlen(priority))
                        *msg = strdup_printf("bad TLS priority string at position %zu: \"%s\"",
                                             (size_t) (errpos - priority), errpos);
                else
                        *msg = strdup_printf("bad TLS priority string: %s", gnutls_strerror(r));
                return -EINVAL;
        }
        return 0;
}

/* A key the policy cannot sign with makes every handshake fail later with a vague
 * error (typically an RSA key under the ECDSA-only default): say so now. */
static int context_check_key(TlsContext *ctx, const ContextFiles *f, char **msg) {
        const unsigned *signs = NULL;
        int n_signs = gnutls_priority_sign_list(ctx->priority, &signs);
        int pk = gnutls_x509_privkey_get_pk_algorithm(f->pkey);
        bool usable = n_signs <= 0 || pk <= 0;

        for (int i = 0; !usable && i < n_signs; i++)
                usable = gnutls_sign_supports_pk_algorithm((gnutls_sign_algorithm_t) signs[i],
                                                           (gnutls_pk_algorithm_t) pk);
        if (!usable) {
                *msg = strdup_printf("key file %s: its %s key cannot make any signature the TLS priority "
                                     "string allows (use an ECDSA P-384 key)",
                                     f->key_file, gnutls_pk_get_name((gnutls_pk_algorithm_t) pk) ?: "unknown");
                return -EINVAL;
        }
        return 0;
}

int tls_context_new(TlsContext **ret, TlsRole role, const char *cert_file, const char *key_file,
                    const char *ca_file, const char *priority, char **ret_error) {
        _cleanup_tls_context_ TlsContext *ctx = NULL;
        ContextFiles files = { .cert_file = cert_file, .key_file = key_file, .ca_file = ca_file };
        _cleanup_free_ char *msg = NULL;
        int r;

        if (!ret || !cert_file || !key_file || !ca_file || (role != TLS_ROLE_SERVER && role != TLS_ROLE_CLIENT))
                return -EINVAL;
        if (!priority)
                priority = TLS_DEFAULT_PRIORITY;

        ctx = calloc(1, sizeof *ctx);
        if (!ctx)
                return -ENOMEM;
        ctx->n_ref = 1;
        ctx->role = role;
        ctx->ca_file = strdup(ca_file);
        if (!ctx->ca_file)
                return -ENOMEM;

        r = context_files_load(&files, &msg);
        if (r >= 0)
                r = context_set_credentials(ctx, &files, &msg);
        if (r >= 0)
                r = context_set_priority(ctx, priority, &msg);
        if (r >= 0)
                r = context_check_key(ctx, &files, &msg);
        context_files_done(&files);
        if (r < 0) {
                if (ret_error)
                        *ret_error = msg ? TAKE_PTR(msg) : strdup_printf("TLS setup failed: %s", strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(ctx);
        return 0;
}
