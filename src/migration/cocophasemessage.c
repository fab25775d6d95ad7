/*
 * cocophasemessage.c: agent-to-agent phase messages
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "migration/cocophasemessage.h"
#include "util/cocoerror.h"

#define COCO_PHASE_MESSAGE_MAGIC "CPM1"

/* Which side sends a message, and how large it may be: the one definition
 * both ends use (the sender refuses to encode what the receiver would
 * refuse to decode). */
typedef enum {
    COCO_PHASE_DIR_S2D = 1 << COCO_FIRMWARE_ROLE_DESTINATION,
    COCO_PHASE_DIR_D2S = 1 << COCO_FIRMWARE_ROLE_SOURCE,
    COCO_PHASE_DIR_BOTH = COCO_PHASE_DIR_S2D | COCO_PHASE_DIR_D2S,
} CocoPhaseDir;

typedef struct {
    unsigned int type;
    unsigned int to; /* CocoPhaseDir: the roles that may receive it */
    size_t max; /* payload bytes */
    const char *name; /* the transport's own frames (not phase events) */
} CocoPhaseMessageDef;

#define KIB 1024U
#define MIB (1024U * 1024U)
static const CocoPhaseMessageDef cocoPhaseMessageDefs[] = {
    {COCO_PHASE_EVENT_PEER_AGENT, COCO_PHASE_DIR_BOTH, 64 * KIB},
    {COCO_PHASE_EVENT_PEER_PREPARED, COCO_PHASE_DIR_BOTH, 0},
    {COCO_PHASE_EVENT_PEER_SETUP, COCO_PHASE_DIR_S2D, 1 * MIB},
    {COCO_PHASE_EVENT_PEER_MEMORY, COCO_PHASE_DIR_S2D, COCO_PHASE_MESSAGE_MAX},
    {COCO_PHASE_EVENT_PEER_TOKEN, COCO_PHASE_DIR_S2D, 4 * KIB},
    {COCO_PHASE_EVENT_PEER_VCPU, COCO_PHASE_DIR_S2D, 1 * MIB},
    {COCO_PHASE_EVENT_PEER_START_TOKEN, COCO_PHASE_DIR_S2D, 4 * KIB},
    {COCO_PHASE_EVENT_PEER_SETUP_DONE, COCO_PHASE_DIR_D2S, 0},
    {COCO_PHASE_EVENT_PEER_ROUND_DONE, COCO_PHASE_DIR_D2S, 0},
    {COCO_PHASE_EVENT_PEER_SWITCHOVER_DONE, COCO_PHASE_DIR_D2S, 0},
    {COCO_PHASE_EVENT_PEER_COMMITTED, COCO_PHASE_DIR_D2S, 0},
    {COCO_PHASE_EVENT_PEER_ABORT_REQUEST, COCO_PHASE_DIR_S2D, 0},
    /* the token, then the reason (at most 512 bytes) */
    {COCO_PHASE_EVENT_PEER_ABORT_TOKEN, COCO_PHASE_DIR_D2S, 4 * KIB + 512},
    {COCO_PHASE_EVENT_PEER_ABORTED, COCO_PHASE_DIR_BOTH, 512},
    {COCO_PHASE_MESSAGE_HEARTBEAT, COCO_PHASE_DIR_BOTH,
     COCO_PHASE_MESSAGE_HEARTBEAT_LEN, "heartbeat"},
    {COCO_PHASE_MESSAGE_SWITCHING, COCO_PHASE_DIR_S2D, 0, "switching"},
};

static const CocoPhaseMessageDef *
cocoPhaseMessageDefLookup(unsigned int type)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cocoPhaseMessageDefs); i++) {
        if (cocoPhaseMessageDefs[i].type == type)
            return &cocoPhaseMessageDefs[i];
    }
    return NULL;
}

const char *
cocoPhaseMessageTypeName(unsigned int type)
{
    const CocoPhaseMessageDef *d = cocoPhaseMessageDefLookup(type);

    if (d && d->name)
        return d->name;
    return NULLSTR(cocoPhaseEventTypeToString((int)type));
}

size_t
cocoPhaseMessageLimit(unsigned int type)
{
    const CocoPhaseMessageDef *d = cocoPhaseMessageDefLookup(type);

    return d ? d->max : 0;
}

bool
cocoPhaseMessageIsTransport(unsigned int type)
{
    const CocoPhaseMessageDef *d = cocoPhaseMessageDefLookup(type);

    return d && d->name;
}

bool
cocoPhaseMessageAllowed(unsigned int type, CocoFirmwareRole role)
{
    const CocoPhaseMessageDef *d = cocoPhaseMessageDefLookup(type);

    return d && (unsigned int)role < COCO_FIRMWARE_ROLE_LAST &&
           (d->to & (1U << role));
}

static uint16_t
cocoPhaseGetU16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
cocoPhaseGetU32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void
cocoPhasePutU16(uint8_t *p, uint16_t v)
{
    p[0] = v & 0xff;
    p[1] = v >> 8;
}

static void
cocoPhasePutU32(uint8_t *p, uint32_t v)
{
    p[0] = v & 0xff;
    p[1] = (v >> 8) & 0xff;
    p[2] = (v >> 16) & 0xff;
    p[3] = v >> 24;
}

/* A whole frame: the 16-byte header, then @len bytes of @payload. */
static GBytes *
cocoPhaseMessageFrame(uint16_t type, uint32_t arg, const void *payload,
                      size_t len)
{
    uint8_t *out = g_malloc(COCO_PHASE_MESSAGE_HEADER + len);

    memcpy(out, COCO_PHASE_MESSAGE_MAGIC, 4);
    cocoPhasePutU16(out + 4, type);
    cocoPhasePutU16(out + 6, 0);
    cocoPhasePutU32(out + 8, arg);
    cocoPhasePutU32(out + 12, (uint32_t)len);
    if (len)
        memcpy(out + COCO_PHASE_MESSAGE_HEADER, payload, len);
    return g_bytes_new_take(out, COCO_PHASE_MESSAGE_HEADER + len);
}

GBytes *
cocoPhaseMessageEncode(const CocoPhaseMessage *msg, GError **error)
{
    if (!cocoPhaseEventIsPeer(msg->type)) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("event '%1$s' is not a message between agents"),
                     NULLSTR(cocoPhaseEventTypeToString(msg->type)));
        return NULL;
    }
    if (msg->len > cocoPhaseMessageLimit(msg->type) ||
        (msg->len && !msg->data)) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("message '%1$s' has an invalid payload of %2$zu bytes"),
                     cocoPhaseEventTypeToString(msg->type), msg->len);
        return NULL;
    }
    return cocoPhaseMessageFrame((uint16_t)msg->type, msg->arg, msg->data,
                                 msg->len);
}

gssize
cocoPhaseMessagePeekLength(const void *buf, size_t len, GError **error)
{
    const uint8_t *p = buf;
    unsigned int type;
    uint32_t plen;

    if (len < COCO_PHASE_MESSAGE_HEADER) {
        cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL,
                     _("phase message header truncated at %1$zu bytes"), len);
        return -1;
    }
    if (memcmp(p, COCO_PHASE_MESSAGE_MAGIC, 4) != 0) {
        cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL, "%s",
                     _("phase message without the 'CPM1' magic"));
        return -1;
    }
    type = cocoPhaseGetU16(p + 4);
    if (!cocoPhaseMessageDefLookup(type) || cocoPhaseGetU16(p + 6) != 0) {
        cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL,
                     _("phase message of unknown type '%1$u'"), type);
        return -1;
    }
    plen = cocoPhaseGetU32(p + 12);
    if (plen > cocoPhaseMessageLimit(type)) {
        cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("phase message '%1$s' carries '%2$u' bytes, more than its limit of '%3$zu'"),
            cocoPhaseMessageTypeName(type), plen, cocoPhaseMessageLimit(type));
        return -1;
    }
    if (type == COCO_PHASE_MESSAGE_HEARTBEAT &&
        plen != COCO_PHASE_MESSAGE_HEARTBEAT_LEN) {
        cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL, "%s",
                     _("a heartbeat of the wrong size"));
        return -1;
    }
    if (type == COCO_PHASE_MESSAGE_SWITCHING && cocoPhaseGetU32(p + 8) > 1) {
        cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL,
                     _("a switching notice with the argument '%1$u' (0 or 1)"),
                     cocoPhaseGetU32(p + 8));
        return -1;
    }
    return COCO_PHASE_MESSAGE_HEADER + (gssize)plen;
}

int
cocoPhaseMessageDecode(const void *buf, size_t len, CocoPhaseMessage *msg,
                       GError **error)
{
    const uint8_t *p = buf;
    gssize whole;

    if ((whole = cocoPhaseMessagePeekLength(buf, len, error)) < 0)
        return -1;
    if ((size_t)whole != len)
        return cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL,
                            _("phase message of %1$zu bytes announces %2$zd"),
                            len, whole);
    msg->type = cocoPhaseGetU16(p + 4);
    msg->arg = cocoPhaseGetU32(p + 8);
    msg->len = len - COCO_PHASE_MESSAGE_HEADER;
    msg->data = msg->len ? p + COCO_PHASE_MESSAGE_HEADER : NULL;
    return 0;
}

GBytes *
cocoPhaseMessageEncodeHeartbeat(uint64_t seq)
{
    uint8_t payload[COCO_PHASE_MESSAGE_HEARTBEAT_LEN];

    cocoPhasePutU32(payload, (uint32_t)(seq & 0xffffffffU));
    cocoPhasePutU32(payload + 4, (uint32_t)(seq >> 32));
    return cocoPhaseMessageFrame(COCO_PHASE_MESSAGE_HEARTBEAT, 0, payload,
                                 sizeof(payload));
}

GBytes *
cocoPhaseMessageEncodeSwitching(bool on)
{
    return cocoPhaseMessageFrame(COCO_PHASE_MESSAGE_SWITCHING, on ? 1 : 0, NULL,
                                 0);
}
