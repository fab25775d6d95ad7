/*
 * cococrypto.h: the cryptography of the emulated firmware
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Thin, checked wrappers: AES-256-GCM (GnuTLS AEAD, detached 16-byte tags),
 * SHA-256 and HKDF-SHA-256 (GnuTLS), X25519 (nettle's curve25519_mul, the
 * backend GnuTLS itself uses), Ed25519 signatures (GnuTLS abstract keys,
 * public key derived with nettle) and the random generator (gnutls_rnd).
 * Every function returns 0 on success and -1 on failure; only those taking
 * a GError report why.
 */

#pragma once

#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

#define COCO_CRYPTO_KEY_LEN 32
#define COCO_CRYPTO_KEY_ID_LEN 8
#define COCO_CRYPTO_IV_LEN 12
#define COCO_CRYPTO_TAG_LEN 16
#define COCO_CRYPTO_SHA256_LEN 32
#define COCO_CRYPTO_X25519_LEN 32
#define COCO_CRYPTO_ED25519_KEY_LEN 32
#define COCO_CRYPTO_ED25519_SIG_LEN 64

/* An installed AES-256-GCM key, with its public key check value. */
typedef struct {
    bool set;
    uint8_t key[COCO_CRYPTO_KEY_LEN];
    uint8_t id[COCO_CRYPTO_KEY_ID_LEN]; /* HKDF(key, "coco-emu key id") */
    void *hd; /* gnutls_aead_cipher_hd_t */
} CocoCryptoKey;

int cocoCryptoKeySet(CocoCryptoKey *k, const uint8_t *key, GError **error);
void cocoCryptoKeyClear(CocoCryptoKey *k);

/* Encrypt @len bytes of @data in place (may be 0: a pure MAC over @aad). */
int cocoCryptoSeal(CocoCryptoKey *k, const uint8_t *iv, const void *aad1,
                   size_t aad1len, const void *aad2, size_t aad2len, void *data,
                   size_t len, uint8_t *tag);
/* Encrypt @len bytes of @in into @out (never in place), the tag to @tag.
 * With @outcap >= @len + COCO_CRYPTO_TAG_LEN the cipher writes straight
 * into @out and the COCO_CRYPTO_TAG_LEN bytes after it are clobbered (the
 * caller fills them later); otherwise @in is encrypted in place and
 * copied. */
int cocoCryptoSealTo(CocoCryptoKey *k, const uint8_t *iv, const void *aad,
                     size_t aadlen, void *in, size_t len, void *out,
                     size_t outcap, uint8_t *tag);
/* Decrypt in place; -1 when the tag does not match (then @data is garbage). */
int cocoCryptoOpen(CocoCryptoKey *k, const uint8_t *iv, const void *aad1,
                   size_t aad1len, const void *aad2, size_t aad2len, void *data,
                   size_t len, const uint8_t *tag);

/* Decrypt @len bytes of @in into @out (never in place); -1 when the tag
 * does not match (then @out is garbage). With @incap >= @len +
 * COCO_CRYPTO_TAG_LEN the COCO_CRYPTO_TAG_LEN bytes after @in are used as
 * scratch and restored before the return; otherwise @in is copied to @out
 * and decrypted there. */
int cocoCryptoOpenTo(CocoCryptoKey *k, const uint8_t *iv, const void *aad,
                     size_t aadlen, uint8_t *in, size_t len, size_t incap,
                     void *out, const uint8_t *tag);

int cocoCryptoSha256(const void *data, size_t len, uint8_t *out);
/* HKDF-SHA-256 (RFC 5869): extract with @salt (NULL: zeros), expand with
 * the @infolen bytes of @info into @outlen bytes. */
int cocoCryptoHkdf(const uint8_t *salt, size_t saltlen, const uint8_t *ikm,
                   size_t ikmlen, const void *info, size_t infolen,
                   uint8_t *out, size_t outlen);
int cocoCryptoRandom(void *buf, size_t len, GError **error);

/* X25519: a fresh key pair, and the shared secret (-1 if all zero). */
int cocoCryptoX25519Generate(uint8_t *priv, uint8_t *pub, GError **error);
int cocoCryptoX25519(const uint8_t *priv, const uint8_t *peer, uint8_t *out);

/* Ed25519 with a 32-byte private seed. */
int cocoCryptoEd25519Public(const uint8_t *seed, uint8_t *pub);
int cocoCryptoEd25519Sign(const uint8_t *seed, const uint8_t *pub,
                          const void *data, size_t len, uint8_t *sig,
                          GError **error);
/* 0 when @sig is @pub's valid signature of @data, -1 otherwise. */
int cocoCryptoEd25519Verify(const uint8_t *pub, const void *data, size_t len,
                            const uint8_t *sig);

/* Constant-time comparison: true when equal. */
bool cocoCryptoEqual(const void *a, const void *b, size_t len);
