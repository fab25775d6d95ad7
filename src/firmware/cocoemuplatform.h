/*
 * cocoemuplatform.h: the identity of an emulated confidential platform
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * API (stable; used by the emulated firmware, the host agent and tests):
 *
 *   CocoEmuPlatform *cocoEmuPlatformNew(GError **error);
 *       a fresh platform in memory (random identity, every SVN 0, agent
 *       hash all zero)
 *   CocoEmuPlatform *cocoEmuPlatformLoad(const char *path, bool create,
 *                                        GError **error);
 *       read a platform file; with @create, generate and write it (mode
 *       0600) when it does not exist
 *   int cocoEmuPlatformSave(CocoEmuPlatform *p, const char *path,
 *                           GError **error);
 *   CocoEmuPlatform *cocoEmuPlatformRef(CocoEmuPlatform *p);
 *   void cocoEmuPlatformUnref(CocoEmuPlatform *p);        (g_autoptr ok)
 *   const uint8_t *cocoEmuPlatformGetId(const CocoEmuPlatform *p);
 *       COCO_PLATFORM_ID_LEN bytes: SHA-256 of the Ed25519 public key
 *   const uint8_t *cocoEmuPlatformGetPublicKey(const CocoEmuPlatform *p);
 *   void cocoEmuPlatformSetSvn(CocoEmuPlatform *p, CocoTcbComponent c,
 *                              unsigned int svn);
 *   unsigned int cocoEmuPlatformGetSvn(const CocoEmuPlatform *p,
 *                                      CocoTcbComponent c);
 *   void cocoEmuPlatformSetAgentHash(CocoEmuPlatform *p, const uint8_t *h);
 *   const uint8_t *cocoEmuPlatformGetAgentHash(const CocoEmuPlatform *p);
 *       the migration agent (MigTD) this platform runs, COCO_AGENT_HASH_LEN
 *   int cocoEmuPlatformSign(const CocoEmuPlatform *p, const void *data,
 *                           size_t len, uint8_t *sig, GError **error);
 *
 * Platform file (GKeyFile):
 *   [platform]
 *   identity-key=<base64 of the 32-byte Ed25519 private seed>
 *   svn-module=N  svn-microcode=N  svn-loader=N  svn-agent=N   (0..65535)
 *   agent-hash=<96 hex digits>                                 (optional)
 *
 * Setters are not thread-safe: configure a platform before sharing it.
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-migration-def.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct _CocoEmuPlatform CocoEmuPlatform;

CocoEmuPlatform *cocoEmuPlatformNew(GError **error);
CocoEmuPlatform *cocoEmuPlatformLoad(const char *path, bool create,
                                     GError **error);
int cocoEmuPlatformSave(CocoEmuPlatform *p, const char *path, GError **error);
CocoEmuPlatform *cocoEmuPlatformRef(CocoEmuPlatform *p);
void cocoEmuPlatformUnref(CocoEmuPlatform *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoEmuPlatform, cocoEmuPlatformUnref)

const uint8_t *cocoEmuPlatformGetId(const CocoEmuPlatform *p);
const uint8_t *cocoEmuPlatformGetPublicKey(const CocoEmuPlatform *p);
void cocoEmuPlatformSetSvn(CocoEmuPlatform *p, CocoTcbComponent c,
                           unsigned int svn);
unsigned int cocoEmuPlatformGetSvn(const CocoEmuPlatform *p,
                                   CocoTcbComponent c);
void cocoEmuPlatformSetAgentHash(CocoEmuPlatform *p, const uint8_t *hash);
const uint8_t *cocoEmuPlatformGetAgentHash(const CocoEmuPlatform *p);
int cocoEmuPlatformSign(const CocoEmuPlatform *p, const void *data, size_t len,
                        uint8_t *sig, GError **error);
