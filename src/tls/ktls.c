/* SPDX-License-Identifier: MIT */

/*
 * Installing a GnuTLS session's record state into the kernel (see ktls.h).
 * Facts used (linux/tls.h, Documentation/networking/tls.rst): attach the ULP
 * with setsockopt(SOL_TCP, TCP_ULP, "tls"), then give each direction a
 * tls12_crypto_info_* with SOL_TLS/TLS_TX or TLS_RX. For TLS 1.3 the 12-byte
 * IV GnuTLS reports splits into a 4-byte salt and an 8-byte iv (ChaCha20
 * takes all 12 as iv); rec_seq is the next record's sequence number, big
 * endian, as GnuTLS reports it. Attaching the ULP alone changes nothing
 * about the socket; it is installing a direction that commits it.
 */

#include <errno.h>
#include <stddef.h>
#include <gnutls/crypto.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tls/ktls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

typedef union KtlsInfo {
        struct tls_crypto_info base;
        struct tls12_crypto_info_aes_gcm_128 gcm128;
        struct tls12_crypto_info_aes_gcm_256 gcm256;
        struct tls12_crypto_info_chacha20_poly1305 chacha;
} KtlsInfo;

/* Where a cipher's key, salt, iv and sequence number go in its
 * tls12_crypto_info_* (ChaCha20's salt is empty: its iv takes all 12 bytes). */
typedef struct CipherLayout {
        gnutls_cipher_algorithm_t cipher;
        uint16_t type;
        socklen_t size;
        size_t key_off, key_len, salt_off, salt_len, iv_off, iv_len, seq_off;
} CipherLayout;

#define LAYOUT(alg, st, NAME)                                                                                  \
        {                                                                                                      \
                alg, NAME, sizeof(struct st), offsetof(struct st, key), NAME##_KEY_SIZE, offsetof(struct st, salt), \
                        NAME##_SALT_SIZE, offsetof(struct st, iv), NAME##_IV_SIZE, offsetof(struct st, rec_seq)   \
        }

static const CipherLayout layouts[] = {
        LAYOUT(GNUTLS_CIPHER_AES_128_GCM, tls12_crypto_info_aes_gcm_128, TLS_CIPHER_AES_GCM_128),
        LAYOUT(GNUTLS_CIPHER_AES_256_GCM, tls12_crypto_info_aes_gcm_256, TLS_CIPHER_AES_GCM_256),
        LAYOUT(GNUTLS_CIPHER_CHACHA20_POLY1305, tls12_crypto_info_chacha20_poly1305, TLS_CIPHER_CHACHA20_POLY1305),
};

static const CipherLayout *layout_of(gnutls_cipher_algorithm_t cipher) {
        for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
                if (layouts[i].cipher == cipher)
                        return &layouts[i];
        return NULL;
}

/* Fills *info for one direction (read: the peer's records). */
static int crypto_info(gnutls_session_t g, const CipherLayout *l, unsigned read, KtlsInfo *info, socklen_t *ret_size) {
        gnutls_datum_t mac_key, iv, key;
        unsigned char seq[8];
        uint8_t *p = (uint8_t *) info;

        if (gnutls_record_get_state(g, read, &mac_key, &iv, &key, seq) < 0 || key.size != l->key_len ||
            iv.size != l->salt_len + l->iv_len)
                return -EINVAL;
        memset(info, 0, sizeof(*info));
        info->base.version = TLS_1_3_VERSION;
        info->base.cipher_type = l->type;
        memcpy(p + l->key_off, key.data, l->key_len);
        memcpy(p + l->salt_off, iv.data, l->salt_len);
        memcpy(p + l->iv_off, iv.data + l->salt_len, l->iv_len);
        memcpy(p + l->seq_off, seq, sizeof(seq));
        *ret_size = l->size;
        return 0;
}

int ktls_attach(int fd) {
        /* ENOENT: no such ULP (module missing); EEXIST: attached already */
        if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int ktls_peek_record_type(gnutls_session_t g, const uint8_t *rec, size_t len) {
        gnutls_cipher_algorithm_t cipher = gnutls_cipher_get(g);
        gnutls_aead_cipher_hd_t h = NULL;
        gnutls_datum_t mac_key, iv, key;
        unsigned char seq[8], nonce[12];
        uint8_t *plain = NULL;
        size_t plain_len;
        int r = -EBADMSG;

        if (gnutls_protocol_get_version(g) != GNUTLS_TLS1_3 || !layout_of(cipher))
                return -EOPNOTSUPP;
        if (len < 5 + 16 + 1 || len > 5 + 16384 + 256 || gnutls_record_get_state(g, 1, &mac_key, &iv, &key, seq) < 0 ||
            iv.size != sizeof(nonce))
                return -EBADMSG;
        /* TLS 1.3 (RFC 8446, 5.3): nonce = IV xor the 64-bit sequence number, right-aligned */
        memcpy(nonce, iv.data, sizeof(nonce));
        for (size_t i = 0; i < sizeof(seq); i++)
                nonce[4 + i] ^= seq[i];
        plain_len = len - 5;
        plain = malloc(plain_len);
        if (!plain || gnutls_aead_cipher_init(&h, cipher, &key) < 0)
                goto out;
        /* the record header is the additional data; the tag (16 bytes) ends the record */
        if (gnutls_aead_cipher_decrypt(h, nonce, sizeof(nonce), rec, 5, 16, rec + 5, len - 5, plain, &plain_len) < 0)
                goto out;
        /* TLSInnerPlaintext: content, the type byte, zero padding */
        while (plain_len > 0 && plain[plain_len - 1] == 0)
                plain_len--;
        if (plain_len > 0)
                r = plain[plain_len - 1];
out:
        if (h)
                gnutls_aead_cipher_deinit(h);
        if (plain) {
                explicit_bzero(plain, len - 5);
                free(plain);
        }
        explicit_bzero(nonce, sizeof(nonce));
        return r;
}

int ktls_enable(gnutls_session_t g, int fd, bool *ret_broken) {
        const CipherLayout *l = layout_of(gnutls_cipher_get(g));
        KtlsInfo rx, tx;
        socklen_t rx_size = 0, tx_size = 0;
        int r;

        *ret_broken = false;
        if (gnutls_protocol_get_version(g) != GNUTLS_TLS1_3 || !l)
                return -EOPNOTSUPP;
        if (gnutls_record_check_pending(g) > 0)
                return -EBUSY;
        r = crypto_info(g, l, 1, &rx, &rx_size);
        if (r >= 0)
                r = crypto_info(g, l, 0, &tx, &tx_size);
        if (r < 0)
                goto out;

        r = ktls_attach(fd);
        if (r < 0)
                goto out;
        if (setsockopt(fd, SOL_TLS, TLS_RX, &rx, rx_size) < 0) {
                r = -errno;
                goto out;
        }
        if (setsockopt(fd, SOL_TLS, TLS_TX, &tx, tx_size) < 0) {
                r = -errno;
                *ret_broken = true; /* the kernel reads records now, GnuTLS cannot */
                goto out;
        }
        r = 0;
out:
        explicit_bzero(&rx, sizeof(rx));
        explicit_bzero(&tx, sizeof(tx));
        return r;
}

bool ktls_error_is_permanent(int r) {
        /* Not -EOPNOTSUPP: that is about one session's version or cipher (a
         * tls-priority that allows TLS 1.2 must not turn it off for all). */
        return r == -ENOENT || r == -ENOPROTOOPT;
}
