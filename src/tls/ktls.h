/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Kernel TLS: after GnuTLS finished a TLS 1.3 handshake on a TCP socket, the
 * record keys and sequence numbers move into the kernel (the "tls" TCP ULP,
 * Linux 4.13+, TLS 1.3 since 5.1, in Debian 12's kernel as a module). From
 * then on plain read()/write() on the socket carry application data, the
 * kernel encrypting and decrypting: gRPC can be given the TCP socket itself,
 * with no userspace copy of every byte through a socketpair and GnuTLS.
 *
 * What the kernel will not do for us: post-handshake messages (key updates,
 * session tickets — our policy sends none, %NO_TICKETS) and close_notify
 * (the peer sees a TCP FIN, which HTTP/2's own framing makes safe). A record
 * of another type than application data makes read() fail with EIO, which
 * ends the connection.
 */

#include <stdbool.h>

#include <gnutls/gnutls.h>

/* Moves the session's state for both directions into the kernel on fd.
 * The session must have completed its handshake and must not hold received
 * bytes (gnutls_record_check_pending() == 0; a caller with its own read-ahead
 * checks that too). Returns 0, or -errno with *ret_broken telling whether fd
 * can still be used with GnuTLS (false: nothing changed, fall back to
 * userspace TLS) or must be closed (true: one direction was installed):
 *   -EOPNOTSUPP  not TLS 1.3, or a cipher the kernel's TLS does not have
 *   -ENOENT      the kernel has no "tls" ULP (not built, module not loadable)
 *   -EBUSY       GnuTLS holds received data
 *   other        from setsockopt(). */
int ktls_enable(gnutls_session_t g, int fd, bool *ret_broken);

/* Whether an error of ktls_enable() means "this kernel cannot, do not try
 * again" (no tls ULP), as opposed to something about this one session. */
bool ktls_error_is_permanent(int r);

/* Attaches the "tls" ULP to the TCP socket fd and nothing more: the socket
 * stays plain TCP until ktls_enable(). A cheap way to learn whether the
 * kernel can (-ENOENT: it cannot). */
int ktls_attach(int fd);

/* The inner content type (21 alert, 22 handshake, 23 application data) of
 * the complete TLS 1.3 record rec[0..len) (5-byte header included), found
 * by decrypting a copy with the session's read state, which is left as it
 * is. -EBADMSG when it does not decrypt, -EOPNOTSUPP for other versions or
 * ciphers. Used by a client to look at the server's first record before
 * the kernel gets the session. */
int ktls_peek_record_type(gnutls_session_t g, const uint8_t *rec, size_t len);
