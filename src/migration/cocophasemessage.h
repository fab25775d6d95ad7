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
/* The largest payload of any type (a memory bundle of 512 pages); each
 * type has its own, smaller or equal, limit (cocoPhaseMessageLimit()). */
#define COCO_PHASE_MESSAGE_MAX (4U * 1024U * 1024U)
/* A frame of the transport, not of the phase engine: the sender is alive
 * (8 bytes: a sequence number). */
#define COCO_PHASE_MESSAGE_HEARTBEAT 0x100
#define COCO_PHASE_MESSAGE_HEARTBEAT_LEN 8
/* A frame of the transport, source to destination: the source's guest
 * entered (arg 1) or left (arg 0) its switchover's downtime, so the
 * destination's host holds its own bulk pre-copy work meanwhile
 * (transfer/cocotransferpriority.h). No payload. */
#define COCO_PHASE_MESSAGE_SWITCHING 0x101

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

/* Decode one whole message; @msg->data points into @buf. A heartbeat
 * decodes with @msg->type COCO_PHASE_MESSAGE_HEARTBEAT, a switching notice
 * with COCO_PHASE_MESSAGE_SWITCHING (@msg->arg 0 or 1). */
int cocoPhaseMessageDecode(const void *buf, size_t len, CocoPhaseMessage *msg,
                           GError **error);

/* The largest payload a message of @type may carry (0 for an unknown
 * type and for the types that carry none). */
size_t cocoPhaseMessageLimit(unsigned int type);

/* A phase event's name, or the transport frame's own ("heartbeat",
 * "switching"); "<null>" for an unknown type. */
const char *cocoPhaseMessageTypeName(unsigned int type);

/* Whether @type is a frame of the transport (a heartbeat, a switching
 * notice): the agents handle it, never the phase engine. */
bool cocoPhaseMessageIsTransport(unsigned int type);

/* Whether a side of @role may receive a message of @type (the engine would
 * refuse it anyway; this refuses it before it reaches the engine). */
bool cocoPhaseMessageAllowed(unsigned int type, CocoFirmwareRole role);

/* A heartbeat frame with sequence number @seq. */
GBytes *cocoPhaseMessageEncodeHeartbeat(uint64_t seq);

/* A switching notice: the source's guest entered (@on) or left its
 * switchover's downtime. */
GBytes *cocoPhaseMessageEncodeSwitching(bool on);
