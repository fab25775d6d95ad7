/*
 * cocophasemessage.h: the messages two hosts' agents exchange for one
 * migration session, and their wire encoding
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A message is one of the "peer-*" events of cocophase.h, a 32-bit
 * argument (stream index, vCPU index) and an opaque payload (a firmware
 * blob: key-exchange message, bundle, token). The engine hands messages to
 * a CocoPhaseSendFunc; the agent carries them to the peer (TCP) and feeds
 * them to the peer's cocoMigrationSessionReceive().
 *
 * Wire form (all little endian), 16 bytes then the payload:
 *   magic "CPM1" | u16 type (CocoPhaseEvent) | u16 reserved (0) |
 *   u32 arg | u32 payload length
 */

#pragma once

#include "internal.h"
#include "migration/cocophase.h"

#include <stddef.h>
#include <stdint.h>

#define COCO_PHASE_MESSAGE_HEADER 16
#define COCO_PHASE_MESSAGE_MAX (64U * 1024U * 1024U) /* payload bytes */

typedef struct {
    CocoPhaseEvent type; /* a peer event */
    uint32_t arg;
    const void *data; /* payload, borrowed */
    size_t len;
} CocoPhaseMessage;

/* The transport to the peer agent: queue or send @msg (the payload is only
 * valid during the call). Returns 0, or -1 with @error when the peer can
 * no longer be reached. */
typedef int (*CocoPhaseSendFunc)(void *opaque, const CocoPhaseMessage *msg,
                                 GError **error);

/* Encode @msg for the wire. */
GBytes *cocoPhaseMessageEncode(const CocoPhaseMessage *msg, GError **error);

/* Length of the whole message whose header is in @buf (@len >= 16), or -1
 * with @error when the header is malformed. */
gssize cocoPhaseMessagePeekLength(const void *buf, size_t len, GError **error);

/* Decode one whole message; @msg->data points into @buf. */
int cocoPhaseMessageDecode(const void *buf, size_t len, CocoPhaseMessage *msg,
                           GError **error);
