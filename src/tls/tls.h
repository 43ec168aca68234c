/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * TLS policy, credentials and sessions (GnuTLS), shared by the daemon's bridge
 * and by jwctl, so both ends run one crypto policy.
 *
 * A TlsContext is the loaded configuration of one end (certificate + key, the
 * CA to verify the peer against, the priority cache, the role). It is
 * reference counted: a reload builds a new context and swaps it in while
 * connections that started under the old one keep it until they end.
 *
 * A TlsSession is one connection's GnuTLS session plus what must live as long
 * as it (the verification data GnuTLS keeps pointers to, a reference on the
 * context) and what the handshake found out (peer identity, failure reason).
 */

#include <stdbool.h>
#include <time.h>
#include <gnutls/gnutls.h>

#include "shared/macro.h"

/* TLS 1.3 only, AES-256-GCM only, ECDHE over X25519/P-384/P-256, ECDSA P-384
 * with SHA-384, no session tickets. See DESIGN.md "Security". */
#define TLS_DEFAULT_PRIORITY                                                            \
        "NONE:+VERS-TLS1.3:+AES-256-GCM:+AEAD:+GROUP-X25519:+GROUP-SECP384R1:"        \
        "+GROUP-SECP256R1:+SIGN-ECDSA-SECP384R1-SHA384:%NO_TICKETS"

/* The only application protocol offered and accepted (gRPC runs over HTTP/2). */
#define TLS_ALPN_PROTOCOL "h2"

/* Largest plaintext of one TLS record. */
#define TLS_RECORD_MAX 16384

typedef enum TlsRole {
        TLS_ROLE_SERVER,
        TLS_ROLE_CLIENT,
} TlsRole;

typedef struct TlsContext TlsContext;
typedef struct TlsSession TlsSession;

/* Loads cert_file + key_file (PEM; the key must match the certificate) and the
 * CA trust file (PEM) and compiles the priority string (NULL = the default).
 * On failure returns -errno (-ENOENT, -EACCES, -EINVAL, -EBADMSG, -ENOMEM ...)
 * and, if ret_error is not NULL, a malloc()ed one-line message naming the file
 * and the reason, e.g. "certificate file /etc/x.pem: No such file or directory",
 * "key file k.pem does not match certificate file c.pem",
 * "bad TLS priority string at position 12: ...". */
int tls_context_new(TlsContext **ret, TlsRole role, const char *cert_file, const char *key_file,
                    const char *ca_file, const char *priority, char **ret_error);
/* What tls_context_set_crl() loaded. */
typedef struct TlsCrlInfo {
        unsigned n_revoked;  /* certificates the CRLs list */
        time_t next_update;  /* the earliest next update, (time_t) -1 if none */
} TlsCrlInfo;

/* Server contexts, before the first session is made from ctx (not
 * thread-safe): adds the certificate revocation list(s) in crl_file (PEM,
 * one or more CRLs) to the certificates handshakes verify, so that a client
 * certificate the CRL lists is refused (tls_session_failure_reason():
 * "client certificate of 'NAME' (serial HEX) is revoked"; alert
 * certificate_revoked). Every CRL must be signed by the context's CA and be
 * current: its next update not passed (-EKEYEXPIRED), not issued in the
 * future. On failure returns -errno with a one-line message naming the file
 * in *ret_error (if not NULL); ctx must then be dropped (it may hold part
 * of the file). */
int tls_context_set_crl(TlsContext *ctx, const char *crl_file, TlsCrlInfo *ret_info, char **ret_error);
TlsContext *tls_context_ref(TlsContext *ctx);   /* thread-safe; NULL ok */
TlsContext *tls_context_unref(TlsContext *ctx); /* thread-safe; NULL ok; returns NULL */
TlsRole tls_context_role(const TlsContext *ctx);
DEFINE_TRIVIAL_CLEANUP_FUNC(TlsContext *, tls_context_unref);
#define _cleanup_tls_context_ _cleanup_(tls_context_unrefp)

/* Creates a session of ctx's role doing I/O on fd (not owned: the caller closes
 * it after freeing the session). The session is non-blocking: handshake and
 * record calls return GNUTLS_E_AGAIN when fd is not ready.
 * Server: requires a client certificate that chains to the CA, is in its
 *   validity period and has the clientAuth key purpose; offers ALPN h2 (a
 *   client offering ALPN without h2 is refused, one offering none is served).
 * Client: server_host (required) is verified against the server certificate
 *   (DNS name, or an IP literal against the IP SANs) which must have the
 *   serverAuth key purpose; also sent as SNI when it is a name; offers ALPN h2
 *   and sends the context's certificate. */
int tls_session_new(TlsSession **ret, TlsContext *ctx, int fd, const char *server_host);
TlsSession *tls_session_free(TlsSession *s); /* does not send close_notify; NULL ok */
DEFINE_TRIVIAL_CLEANUP_FUNC(TlsSession *, tls_session_free);
#define _cleanup_tls_session_ _cleanup_(tls_session_freep)

gnutls_session_t tls_session_gnutls(TlsSession *s);
TlsContext *tls_session_context(TlsSession *s); /* no new reference */

/* Advances the handshake. Returns 0 when it completed and the peer was
 * accepted, -EAGAIN when fd must become ready first (which direction:
 * tls_session_wants_write()), or -EPROTO when the handshake failed or the
 * peer was refused: then an appropriate alert was sent (best effort) and
 * tls_session_failure_reason() tells why. */
int tls_session_handshake(TlsSession *s);
/* After -EAGAIN from a handshake/record call: true if GnuTLS waits to write. */
bool tls_session_wants_write(TlsSession *s);

/* Input already read from the socket and not yet consumed: decrypted data
 * GnuTLS holds plus the bytes in our read-ahead buffer. When it is not 0,
 * call GnuTLS again instead of waiting for the socket (poll() cannot see
 * it). GnuTLS returns GNUTLS_E_AGAIN after records without data, e.g. a
 * TLS 1.3 session ticket, even while more input is buffered. */
size_t tls_session_pending(TlsSession *s);

/* On: GnuTLS reads exactly the records it asks for, nothing is read ahead
 * (as during the handshake), so that the records after them stay in the
 * socket — for the kernel, when the session is about to move there. */
void tls_session_exact_reads(TlsSession *s, bool on);

/* Output batching, for the data pump. While on, the records GnuTLS writes
 * are collected in a send buffer of TLS_SEND_BUFFER_SIZE bytes (allocated
 * when first needed) instead of going out one send() per record; the caller
 * writes them with tls_session_flush() when the buffer has no room for
 * another record (tls_session_send_room()) and before it waits for anything
 * else. Off (the default, e.g. for the handshake), every record is written
 * at once, after what is still buffered. 8 records: 4 and 16 measured the
 * same (bridge CPU within noise on a 2 GiB stream). */
#define TLS_SEND_BUFFER_SIZE (8u * (TLS_RECORD_MAX + 256u))
void tls_session_batch_output(TlsSession *s, bool on);
/* Bytes of buffered output not yet written to the socket. */
size_t tls_session_unsent(TlsSession *s);
/* Room left in the send buffer (0 when batching is off). */
size_t tls_session_send_room(TlsSession *s);
/* Writes the buffered output. 0 when all of it went out, -EAGAIN when the
 * socket is full (wait for POLLOUT), -errno (-EPIPE, -ECONNRESET) when the
 * peer is gone (the buffered output is dropped then). */
int tls_session_flush(TlsSession *s);
/* Frees the read-ahead and send buffers if they hold nothing (an idle
 * connection keeps no large buffers). */
void tls_session_release_buffers(TlsSession *s);
/* Bytes of read-ahead and send buffer allocated now. */
size_t tls_session_buffer_memory(TlsSession *s);

/* Server, after a successful handshake: the subject CN of the verified client
 * certificate. Valid as long as the session. NULL before. */
const char *tls_session_identity(TlsSession *s);
/* Short human reason of the last failure ("certificate expired", ...); NULL if none. */
const char *tls_session_failure_reason(TlsSession *s);
/* The GnuTLS error code of the failed handshake, 0 if none. */
int tls_session_failure_error(TlsSession *s);

/* Turns a failed handshake (GnuTLS error code, the verification status when
 * that error was GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) into a short human
 * reason, seen from role: "no client certificate", "certificate expired",
 * "certificate not trusted (unknown CA)", "certificate not valid for client
 * authentication", "protocol/cipher not acceptable (...)". Never NULL. */
const char *tls_failure_reason(TlsRole role, int gnutls_error, unsigned verify_status);

/* A fatal alert a server sends about our certificate, in words ("certificate
 * expired" for 45, "not trusted (unknown CA)" for 48, ...); NULL if the alert is
 * not about the certificate. */
const char *tls_certificate_alert_reason(gnutls_alert_description_t alert);
