/*
 * cocoqmpmessage.h: one QMP message, parsed with json-glib
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "internal.h"
#include "util/cocoenum.h"

#include <json-glib/json-glib.h>

typedef enum {
    COCO_QMP_KIND_GREETING, /* {"QMP": ...} */
    COCO_QMP_KIND_COMMAND, /* {"execute"|"exec-oob": ...} */
    COCO_QMP_KIND_REPLY, /* {"return"|"error": ...} */
    COCO_QMP_KIND_EVENT, /* {"event": ...} */
    COCO_QMP_KIND_OTHER, /* a JSON object QMP does not define */
    COCO_QMP_KIND_LAST
} CocoQmpKind;

COCO_ENUM_DECL(cocoQmpKind);

typedef struct {
    CocoQmpKind kind;
    JsonNode *root;
    JsonObject *obj; /* borrowed from root */
    const char *name; /* the command or the event name; NULL otherwise */
    JsonNode *id; /* borrowed; NULL when the message has no id */
} CocoQmpMessage;

void cocoQmpMessageFree(CocoQmpMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoQmpMessage, cocoQmpMessageFree);

/*
 * Parse one QMP message (one line, the line terminator may be included).
 * Fails with COCO_ERROR_QMP_PROTOCOL when the text is not one JSON object.
 */
CocoQmpMessage *cocoQmpMessageParse(const char *text, gsize len,
                                    GError **error);

/*
 * How many top-level JSON values @text holds (a quick scan, not a
 * validation). QMP allows one per message; json-glib would silently accept
 * "{...} {...}", so the parser rejects such text with this.
 */
guint cocoQmpTextCountValues(const char *text, gsize len);

/* The "arguments" (commands) or "data" (events) object, or NULL. */
JsonObject *cocoQmpMessageGetArguments(const CocoQmpMessage *msg);

/* A string member of the arguments, or NULL. */
const char *cocoQmpMessageGetArgString(const CocoQmpMessage *msg,
                                       const char *member);

/* The id serialised as compact JSON (the routing key), or NULL. */
char *cocoQmpMessageIdKey(const CocoQmpMessage *msg);

/* Whether a reply is an error reply. */
gboolean cocoQmpMessageIsError(const CocoQmpMessage *msg);

/* The "desc" of an error reply, or NULL. */
const char *cocoQmpMessageErrorDesc(const CocoQmpMessage *msg);

/*
 * Builders. Each returns one complete QMP line ending in "\r\n".
 * @args and @ret are consumed (they may be NULL); @id is copied.
 */
char *cocoQmpBuildCommand(const char *execute, JsonObject *args,
                          const char *id);
char *cocoQmpBuildReturn(JsonNode *ret, const JsonNode *id);
char *cocoQmpBuildError(const char *errclass, const char *desc,
                        const JsonNode *id);
char *cocoQmpBuildObjectLine(JsonObject *obj);
/* An event as QEMU sends it, with a "timestamp" of now; @data consumed. */
char *cocoQmpBuildEvent(const char *event, JsonObject *data);
