/*
 * cocophasemessage.c: agent-to-agent phase messages
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "migration/cocophasemessage.h"
#include "util/cocoerror.h"

#define COCO_PHASE_MESSAGE_MAGIC "CPM1"

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

GBytes *
cocoPhaseMessageEncode(const CocoPhaseMessage *msg, GError **error)
{
    uint8_t *out;

    if (!cocoPhaseEventIsPeer(msg->type)) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("event '%1$s' is not a message between agents"),
                     NULLSTR(cocoPhaseEventTypeToString(msg->type)));
        return NULL;
    }
    if (msg->len > COCO_PHASE_MESSAGE_MAX || (msg->len && !msg->data)) {
        cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                     _("message '%1$s' has an invalid payload of %2$zu bytes"),
                     cocoPhaseEventTypeToString(msg->type), msg->len);
        return NULL;
    }
    out = g_malloc(COCO_PHASE_MESSAGE_HEADER + msg->len);
    memcpy(out, COCO_PHASE_MESSAGE_MAGIC, 4);
    cocoPhasePutU16(out + 4, (uint16_t)msg->type);
    cocoPhasePutU16(out + 6, 0);
    cocoPhasePutU32(out + 8, msg->arg);
    cocoPhasePutU32(out + 12, (uint32_t)msg->len);
    if (msg->len)
        memcpy(out + COCO_PHASE_MESSAGE_HEADER, msg->data, msg->len);
    return g_bytes_new_take(out, COCO_PHASE_MESSAGE_HEADER + msg->len);
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
    if (!cocoPhaseEventIsPeer(type) || cocoPhaseGetU16(p + 6) != 0) {
        cocoErrorSet(error, COCO_ERROR_TRANSFER_PROTOCOL,
                     _("phase message of unknown type '%1$u'"), type);
        return -1;
    }
    plen = cocoPhaseGetU32(p + 12);
    if (plen > COCO_PHASE_MESSAGE_MAX) {
        cocoErrorSet(
            error, COCO_ERROR_TRANSFER_PROTOCOL,
            _("phase message payload of '%1$u' bytes exceeds the limit"), plen);
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
