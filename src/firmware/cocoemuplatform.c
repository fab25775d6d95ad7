/*
 * cocoemuplatform.c: the identity of an emulated confidential platform
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "firmware/cocoemuplatform.h"
#include "firmware/cococrypto.h"
#include "util/cocoerror.h"
#include "util/cocokeyfile.h"

#include <errno.h>
#include <gnutls/gnutls.h>

#define COCO_EMU_PLATFORM_GROUP "platform"
#define COCO_EMU_SVN_MAX 65535

struct _CocoEmuPlatform {
    gatomicrefcount ref;
    uint8_t seed[COCO_CRYPTO_ED25519_KEY_LEN];
    uint8_t pub[COCO_CRYPTO_ED25519_KEY_LEN];
    uint8_t id[COCO_PLATFORM_ID_LEN];
    unsigned int svn[COCO_TCB_COMPONENT_LAST];
    uint8_t agent_hash[COCO_AGENT_HASH_LEN];
};

G_STATIC_ASSERT(COCO_PLATFORM_ID_LEN == COCO_CRYPTO_SHA256_LEN);

/* Key names of the SVNs in the platform file, by CocoTcbComponent. */
static const char *const cocoEmuSvnKeys[] = {
    "svn-module",
    "svn-microcode",
    "svn-loader",
    "svn-agent",
};
G_STATIC_ASSERT(G_N_ELEMENTS(cocoEmuSvnKeys) == COCO_TCB_COMPONENT_LAST);

static CocoEmuPlatform *
cocoEmuPlatformFromSeed(const uint8_t *seed, GError **error)
{
    g_autoptr(CocoEmuPlatform) p = g_new0(CocoEmuPlatform, 1);

    g_atomic_ref_count_init(&p->ref);
    memcpy(p->seed, seed, sizeof(p->seed));
    cocoCryptoEd25519Public(p->seed, p->pub);
    if (cocoCryptoSha256(p->pub, sizeof(p->pub), p->id) < 0) {
        cocoErrorSet(error, COCO_ERROR_INTERNAL,
                     _("cannot hash the platform public key"));
        return NULL;
    }
    return g_steal_pointer(&p);
}

CocoEmuPlatform *
cocoEmuPlatformNew(GError **error)
{
    uint8_t seed[COCO_CRYPTO_ED25519_KEY_LEN];
    CocoEmuPlatform *p;

    if (cocoCryptoRandom(seed, sizeof(seed), error) < 0)
        return NULL;
    p = cocoEmuPlatformFromSeed(seed, error);
    gnutls_memset(seed, 0, sizeof(seed));
    return p;
}

int
cocoEmuPlatformSave(CocoEmuPlatform *p, const char *path, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *seed = g_base64_encode(p->seed, sizeof(p->seed));
    g_autofree char *hash = NULL;
    g_autofree char *data = NULL;
    GError *err = NULL;
    size_t i;
    gsize len;

    g_key_file_set_string(kf, COCO_EMU_PLATFORM_GROUP, "identity-key", seed);
    for (i = 0; i < COCO_TCB_COMPONENT_LAST; i++)
        g_key_file_set_uint64(kf, COCO_EMU_PLATFORM_GROUP, cocoEmuSvnKeys[i],
                              p->svn[i]);
    hash = g_malloc0(COCO_AGENT_HASH_LEN * 2 + 1);
    for (i = 0; i < COCO_AGENT_HASH_LEN; i++)
        g_snprintf(hash + 2 * i, 3, "%02x", p->agent_hash[i]);
    g_key_file_set_string(kf, COCO_EMU_PLATFORM_GROUP, "agent-hash", hash);
    data = g_key_file_to_data(kf, &len, NULL);
    if (!g_file_set_contents_full(path, data, len,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600, &err)) {
        cocoErrorSet(error, COCO_ERROR_SYSTEM,
                     _("cannot write the platform file '%1$s': %2$s"), path,
                     err->message);
        g_error_free(err);
        gnutls_memset(seed, 0, strlen(seed));
        return -1;
    }
    gnutls_memset(seed, 0, strlen(seed));
    gnutls_memset(data, 0, len);
    return 0;
}

static int
cocoEmuPlatformParseHex(const char *hex, uint8_t *out, size_t len)
{
    size_t i;

    if (strlen(hex) != len * 2)
        return -1;
    for (i = 0; i < len; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

CocoEmuPlatform *
cocoEmuPlatformLoad(const char *path, bool create, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(CocoEmuPlatform) p = NULL;
    g_autofree char *seed64 = NULL;
    g_autofree char *hash = NULL;
    g_autofree uint8_t *seed = NULL;
    GError *err = NULL;
    gsize seedlen = 0;
    size_t i;

    if (!cocoKeyFileLoad(kf, path, &err)) {
        if (create && g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            g_autofree char *dir = g_path_get_dirname(path);

            g_error_free(err);
            /* Its directory too (/var/lib/libvirt-coco by default), as
             * the agent makes its state_dir: systemd's StateDirectory=
             * is not there when the agent runs without the unit. */
            if (g_mkdir_with_parents(dir, 0700) < 0) {
                cocoErrorSetSystem(error, errno,
                                   _("cannot create directory '%1$s'"), dir);
                return NULL;
            }
            if (!(p = cocoEmuPlatformNew(error)) ||
                cocoEmuPlatformSave(p, path, error) < 0)
                return NULL;
            return g_steal_pointer(&p);
        }
        cocoErrorSet(error, COCO_ERROR_SYSTEM,
                     _("cannot read the platform file '%1$s': %2$s"), path,
                     err->message);
        g_error_free(err);
        return NULL;
    }

    seed64 = g_key_file_get_string(kf, COCO_EMU_PLATFORM_GROUP, "identity-key",
                                   NULL);
    if (seed64)
        seed = g_base64_decode(seed64, &seedlen);
    if (!seed || seedlen != COCO_CRYPTO_ED25519_KEY_LEN) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("platform file '%1$s' has no valid 'identity-key' (base64 of 32 bytes)"),
            path);
        return NULL;
    }
    p = cocoEmuPlatformFromSeed(seed, error);
    gnutls_memset(seed, 0, seedlen);
    if (!p)
        return NULL;

    for (i = 0; i < COCO_TCB_COMPONENT_LAST; i++) {
        guint64 v;

        if (!g_key_file_has_key(kf, COCO_EMU_PLATFORM_GROUP, cocoEmuSvnKeys[i],
                                NULL))
            continue;
        v = g_key_file_get_uint64(kf, COCO_EMU_PLATFORM_GROUP,
                                  cocoEmuSvnKeys[i], &err);
        if (err || v > COCO_EMU_SVN_MAX) {
            g_clear_error(&err);
            cocoErrorSet(
                error, COCO_ERROR_INVALID_ARG,
                _("platform file '%1$s': '%2$s' must be a number from 0 to 65535"),
                path, cocoEmuSvnKeys[i]);
            return NULL;
        }
        p->svn[i] = v;
    }

    hash =
        g_key_file_get_string(kf, COCO_EMU_PLATFORM_GROUP, "agent-hash", NULL);
    if (hash &&
        cocoEmuPlatformParseHex(hash, p->agent_hash, COCO_AGENT_HASH_LEN) < 0) {
        cocoErrorSet(
            error, COCO_ERROR_INVALID_ARG,
            _("platform file '%1$s': 'agent-hash' must be 96 hex digits"),
            path);
        return NULL;
    }
    return g_steal_pointer(&p);
}

CocoEmuPlatform *
cocoEmuPlatformRef(CocoEmuPlatform *p)
{
    g_atomic_ref_count_inc(&p->ref);
    return p;
}

void
cocoEmuPlatformUnref(CocoEmuPlatform *p)
{
    if (!p || !g_atomic_ref_count_dec(&p->ref))
        return;
    gnutls_memset(p, 0, sizeof(*p));
    g_free(p);
}

const uint8_t *
cocoEmuPlatformGetId(const CocoEmuPlatform *p)
{
    return p->id;
}

const uint8_t *
cocoEmuPlatformGetPublicKey(const CocoEmuPlatform *p)
{
    return p->pub;
}

void
cocoEmuPlatformSetSvn(CocoEmuPlatform *p, CocoTcbComponent c, unsigned int svn)
{
    if ((unsigned int)c < COCO_TCB_COMPONENT_LAST)
        p->svn[c] = MIN(svn, COCO_EMU_SVN_MAX);
}

unsigned int
cocoEmuPlatformGetSvn(const CocoEmuPlatform *p, CocoTcbComponent c)
{
    if ((unsigned int)c >= COCO_TCB_COMPONENT_LAST)
        return 0;
    return p->svn[c];
}

void
cocoEmuPlatformSetAgentHash(CocoEmuPlatform *p, const uint8_t *hash)
{
    memcpy(p->agent_hash, hash, COCO_AGENT_HASH_LEN);
}

const uint8_t *
cocoEmuPlatformGetAgentHash(const CocoEmuPlatform *p)
{
    return p->agent_hash;
}

int
cocoEmuPlatformSign(const CocoEmuPlatform *p, const void *data, size_t len,
                    uint8_t *sig, GError **error)
{
    return cocoCryptoEd25519Sign(p->seed, p->pub, data, len, sig, error);
}
