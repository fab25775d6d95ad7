/*
 * cocorelaylinefuzz.c: libFuzzer target for the lines of virtcocod's unix
 * socket (cocoprotorelay.h): what a relay (any local user can connect) or
 * a client sends the agent, what the agent sends a relay, and the line
 * framing with its limit.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true
 * Run:   build-fuzz/tests/fuzz/cocorelaylinefuzz -max_total_time=600 \
 *            tests/fuzz/cocorelaylinecorpus
 *
 * Checks beyond ASan and UBSan: a refusal is COCO_ERROR_AGENT_PROTOCOL
 * (the line) or COCO_ERROR_QMP_PROTOCOL (the framing) with one line; a
 * parsed message rebuilds into a line that parses again into the same
 * message type.
 */

#include "internal.h"
#include "proto/cocoprotorelay.h"
#include "qmp/cocoqmplinebuf.h"
#include "util/cocoerror.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
checkSchema(const CocoProtoSchema *schema, const char *text, size_t len)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) err2 = NULL;
    g_autofree char *line = NULL;
    void *msg = NULL;
    void *again = NULL;
    int type = -1;
    int type2 = -1;

    if (cocoProtoParseMessage(schema, text, len, &type, &msg, &err) < 0) {
        if (!err || err->code != COCO_ERROR_AGENT_PROTOCOL ||
            strchr(err->message, '\n'))
            abort();
        return;
    }
    line = cocoProtoBuildMessage(schema, type, msg);
    if (!line ||
        cocoProtoParseMessage(schema, line, strlen(line), &type2, &again,
                              &err2) < 0 ||
        type2 != type)
        abort();
    cocoProtoMessageFree(schema, type, msg);
    cocoProtoMessageFree(schema, type2, again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *copy = g_malloc(size ? size : 1);
    g_autoptr(CocoQmpLineBuf) lb = cocoQmpLineBufNew(COCO_RELAY_LINE_MAX);
    g_autoptr(GError) err = NULL;
    CocoQmpLine *l;

    memcpy(copy, data, size);
    checkSchema(&cocoRelayRequestSchema, copy, size);
    checkSchema(&cocoRelayReplySchema, copy, size);
    /* The framing the agent reads them with, line by line. */
    if (cocoQmpLineBufFeed(lb, copy, size, NULL, 0, &err) < 0) {
        if (err->code != COCO_ERROR_QMP_PROTOCOL || strchr(err->message, '\n'))
            abort();
        return 0;
    }
    while ((l = cocoQmpLineBufPop(lb))) {
        checkSchema(&cocoRelayRequestSchema, l->data, l->len);
        cocoQmpLineFree(l);
    }
    return 0;
}
