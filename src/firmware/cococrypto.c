/*
 * cococrypto.c: the cryptography of the emulated firmware
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "firmware/cococrypto.h"
#include "util/cocoerror.h"

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/abstract.h>
#include <nettle/curve25519.h>
#include <nettle/eddsa.h>

#define COCO_CRYPTO_KEY_ID_INFO "coco-emu key id"

G_STATIC_ASSERT(CURVE25519_SIZE == COCO_CRYPTO_X25519_LEN);
G_STATIC_ASSERT(ED25519_KEY_SIZE == COCO_CRYPTO_ED25519_KEY_LEN);
G_STATIC_ASSERT(ED25519_SIGNATURE_SIZE == COCO_CRYPTO_ED25519_SIG_LEN);

bool
cocoCryptoEqual(const void *a, const void *b, size_t len)
{
    const uint8_t *x = a;
    const uint8_t *y = b;
    uint8_t diff = 0;
    size_t i;

    for (i = 0; i < len; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}

int
cocoCryptoKeySet(CocoCryptoKey *k, const uint8_t *key, GError **error)
{
    gnutls_aead_cipher_hd_t hd = NULL;
    gnutls_datum_t d = {.data = (unsigned char *)key,
                        .size = COCO_CRYPTO_KEY_LEN};
    int rc;

    cocoCryptoKeyClear(k);
    if ((rc = gnutls_aead_cipher_init(&hd, GNUTLS_CIPHER_AES_256_GCM, &d)) <
        0) {
        return cocoErrorSet(error, COCO_ERROR_INTERNAL,
                            _("cannot set up AES-256-GCM: %1$s"),
                            gnutls_strerror(rc));
    }
    if (cocoCryptoHkdf(
            NULL, 0, key, COCO_CRYPTO_KEY_LEN, COCO_CRYPTO_KEY_ID_INFO,
            sizeof(COCO_CRYPTO_KEY_ID_INFO) - 1, k->id, sizeof(k->id)) < 0) {
        gnutls_aead_cipher_deinit(hd);
        return cocoErrorSet(error, COCO_ERROR_INTERNAL,
                            _("cannot derive the key check value"));
    }
    memcpy(k->key, key, COCO_CRYPTO_KEY_LEN);
    k->hd = hd;
    k->set = true;
    return 0;
}

void
cocoCryptoKeyClear(CocoCryptoKey *k)
{
    if (k->hd)
        gnutls_aead_cipher_deinit(k->hd);
    gnutls_memset(k, 0, sizeof(*k));
}

static int
cocoCryptoAead(CocoCryptoKey *k, bool seal, const uint8_t *iv, const void *aad1,
               size_t aad1len, const void *aad2, size_t aad2len, void *data,
               size_t len, uint8_t *tag)
{
    giovec_t aad[2];
    giovec_t iov = {.iov_base = data, .iov_len = len};
    int naad = 0;
    size_t taglen = COCO_CRYPTO_TAG_LEN;

    if (!k->set)
        return -1;
    if (aad1len) {
        aad[naad].iov_base = (void *)aad1;
        aad[naad++].iov_len = aad1len;
    }
    if (aad2len) {
        aad[naad].iov_base = (void *)aad2;
        aad[naad++].iov_len = aad2len;
    }
    if (seal) {
        if (gnutls_aead_cipher_encryptv2(k->hd, iv, COCO_CRYPTO_IV_LEN, aad,
                                         naad, &iov, len ? 1 : 0, tag,
                                         &taglen) < 0)
            return -1;
        return taglen == COCO_CRYPTO_TAG_LEN ? 0 : -1;
    }
    if (gnutls_aead_cipher_decryptv2(k->hd, iv, COCO_CRYPTO_IV_LEN, aad, naad,
                                     &iov, len ? 1 : 0, tag, taglen) < 0)
        return -1;
    return 0;
}

int
cocoCryptoSeal(CocoCryptoKey *k, const uint8_t *iv, const void *aad1,
               size_t aad1len, const void *aad2, size_t aad2len, void *data,
               size_t len, uint8_t *tag)
{
    return cocoCryptoAead(k, true, iv, aad1, aad1len, aad2, aad2len, data, len,
                          tag);
}

int
cocoCryptoSealTo(CocoCryptoKey *k, const uint8_t *iv, const void *aad,
                 size_t aadlen, void *in, size_t len, void *out, size_t outcap,
                 uint8_t *tag)
{
    size_t ctlen = outcap;

    if (outcap < len + COCO_CRYPTO_TAG_LEN) {
        if (cocoCryptoSeal(k, iv, aad, aadlen, NULL, 0, in, len, tag) < 0)
            return -1;
        memcpy(out, in, len);
        return 0;
    }
    if (!k->set ||
        gnutls_aead_cipher_encrypt(k->hd, iv, COCO_CRYPTO_IV_LEN, aad, aadlen,
                                   COCO_CRYPTO_TAG_LEN, in, len, out,
                                   &ctlen) < 0 ||
        ctlen != len + COCO_CRYPTO_TAG_LEN)
        return -1;
    memcpy(tag, (uint8_t *)out + len, COCO_CRYPTO_TAG_LEN);
    return 0;
}

int
cocoCryptoOpen(CocoCryptoKey *k, const uint8_t *iv, const void *aad1,
               size_t aad1len, const void *aad2, size_t aad2len, void *data,
               size_t len, const uint8_t *tag)
{
    return cocoCryptoAead(k, false, iv, aad1, aad1len, aad2, aad2len, data, len,
                          (uint8_t *)tag);
}

int
cocoCryptoOpenTo(CocoCryptoKey *k, const uint8_t *iv, const void *aad,
                 size_t aadlen, uint8_t *in, size_t len, size_t incap,
                 void *out, const uint8_t *tag)
{
    uint8_t saved[COCO_CRYPTO_TAG_LEN];
    size_t ptlen = len;
    int rc;

    if (incap < len + COCO_CRYPTO_TAG_LEN) {
        memcpy(out, in, len);
        return cocoCryptoOpen(k, iv, aad, aadlen, NULL, 0, out, len, tag);
    }
    if (!k->set)
        return -1;
    /* GnuTLS wants the tag after the ciphertext. */
    memcpy(saved, in + len, sizeof(saved));
    memcpy(in + len, tag, COCO_CRYPTO_TAG_LEN);
    rc = gnutls_aead_cipher_decrypt(k->hd, iv, COCO_CRYPTO_IV_LEN, aad, aadlen,
                                    COCO_CRYPTO_TAG_LEN, in,
                                    len + COCO_CRYPTO_TAG_LEN, out, &ptlen);
    memcpy(in + len, saved, sizeof(saved));
    return rc < 0 || ptlen != len ? -1 : 0;
}

int
cocoCryptoSha256(const void *data, size_t len, uint8_t *out)
{
    return gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, out) < 0 ? -1 : 0;
}

int
cocoCryptoHkdf(const uint8_t *salt, size_t saltlen, const uint8_t *ikm,
               size_t ikmlen, const void *info, size_t infolen, uint8_t *out,
               size_t outlen)
{
    uint8_t zero[COCO_CRYPTO_SHA256_LEN] = {0};
    uint8_t prk[COCO_CRYPTO_SHA256_LEN];
    gnutls_datum_t dkey = {.data = (unsigned char *)ikm, .size = ikmlen};
    gnutls_datum_t dsalt = {.data = salt ? (unsigned char *)salt : zero,
                            .size = salt ? saltlen : sizeof(zero)};
    gnutls_datum_t dprk = {.data = prk, .size = sizeof(prk)};
    gnutls_datum_t dinfo = {.data = (unsigned char *)info, .size = infolen};
    int ret = 0;

    if (gnutls_hkdf_extract(GNUTLS_MAC_SHA256, &dkey, &dsalt, prk) < 0 ||
        gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &dprk, &dinfo, out, outlen) < 0)
        ret = -1;
    gnutls_memset(prk, 0, sizeof(prk));
    return ret;
}

int
cocoCryptoRandom(void *buf, size_t len, GError **error)
{
    int rc;

    if ((rc = gnutls_rnd(GNUTLS_RND_KEY, buf, len)) < 0)
        return cocoErrorSet(error, COCO_ERROR_INTERNAL,
                            _("cannot get random bytes: %1$s"),
                            gnutls_strerror(rc));
    return 0;
}

int
cocoCryptoX25519Generate(uint8_t *priv, uint8_t *pub, GError **error)
{
    if (cocoCryptoRandom(priv, COCO_CRYPTO_X25519_LEN, error) < 0)
        return -1;
    curve25519_mul_g(pub, priv);
    return 0;
}

int
cocoCryptoX25519(const uint8_t *priv, const uint8_t *peer, uint8_t *out)
{
    static const uint8_t zero[COCO_CRYPTO_X25519_LEN] = {0};

    curve25519_mul(out, priv, peer);
    /* A low-order peer point gives all zeros: refuse it (RFC 7748 §6.1). */
    if (cocoCryptoEqual(out, zero, COCO_CRYPTO_X25519_LEN))
        return -1;
    return 0;
}

int
cocoCryptoEd25519Public(const uint8_t *seed, uint8_t *pub)
{
    ed25519_sha512_public_key(pub, seed);
    return 0;
}

int
cocoCryptoEd25519Sign(const uint8_t *seed, const uint8_t *pub, const void *data,
                      size_t len, uint8_t *sig, GError **error)
{
    gnutls_privkey_t key = NULL;
    gnutls_datum_t x = {.data = (unsigned char *)pub,
                        .size = COCO_CRYPTO_ED25519_KEY_LEN};
    gnutls_datum_t k = {.data = (unsigned char *)seed,
                        .size = COCO_CRYPTO_ED25519_KEY_LEN};
    gnutls_datum_t d = {.data = (unsigned char *)data, .size = len};
    gnutls_datum_t s = {NULL, 0};
    int rc;
    int ret = -1;

    if ((rc = gnutls_privkey_init(&key)) < 0 ||
        (rc = gnutls_privkey_import_ecc_raw(key, GNUTLS_ECC_CURVE_ED25519, &x,
                                            NULL, &k)) < 0 ||
        (rc = gnutls_privkey_sign_data2(key, GNUTLS_SIGN_EDDSA_ED25519, 0, &d,
                                        &s)) < 0) {
        cocoErrorSet(error, COCO_ERROR_INTERNAL,
                     _("cannot sign with the platform identity key: %1$s"),
                     gnutls_strerror(rc));
        goto cleanup;
    }
    if (s.size != COCO_CRYPTO_ED25519_SIG_LEN) {
        cocoErrorSet(error, COCO_ERROR_INTERNAL,
                     _("unexpected Ed25519 signature size '%1$u'"), s.size);
        goto cleanup;
    }
    memcpy(sig, s.data, COCO_CRYPTO_ED25519_SIG_LEN);
    ret = 0;

cleanup:
    gnutls_free(s.data);
    if (key)
        gnutls_privkey_deinit(key);
    return ret;
}

int
cocoCryptoEd25519Verify(const uint8_t *pub, const void *data, size_t len,
                        const uint8_t *sig)
{
    gnutls_pubkey_t key = NULL;
    gnutls_datum_t x = {.data = (unsigned char *)pub,
                        .size = COCO_CRYPTO_ED25519_KEY_LEN};
    gnutls_datum_t d = {.data = (unsigned char *)data, .size = len};
    gnutls_datum_t s = {.data = (unsigned char *)sig,
                        .size = COCO_CRYPTO_ED25519_SIG_LEN};
    int ret = -1;

    if (gnutls_pubkey_init(&key) < 0)
        return -1;
    if (gnutls_pubkey_import_ecc_raw(key, GNUTLS_ECC_CURVE_ED25519, &x, NULL) >=
            0 &&
        gnutls_pubkey_verify_data2(key, GNUTLS_SIGN_EDDSA_ED25519, 0, &d, &s) >=
            0)
        ret = 0;
    gnutls_pubkey_deinit(key);
    return ret;
}
