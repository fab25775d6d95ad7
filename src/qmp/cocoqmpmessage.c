/*
 * cocoqmpmessage.c: one QMP message, parsed with json-glib
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "qmp/cocoqmpmessage.h"
#include "util/cocoerror.h"

COCO_ENUM_IMPL(cocoQmpKind, COCO_QMP_KIND_LAST, "greeting", "command", "reply",
               "event", "other");

void
cocoQmpMessageFree(CocoQmpMessage *msg)
{
    if (!msg)
        return;
    if (msg->root)
        json_node_unref(msg->root);
    g_free(msg);
}

guint
cocoQmpTextCountValues(const char *text, gsize len)
{
    gboolean inString = FALSE;
    gboolean escaped = FALSE;
    gboolean inValue = FALSE;
    guint depth = 0;
    guint count = 0;
    gsize i;

    for (i = 0; i < len; i++) {
        char c = text[i];

        if (inString) {
            if (escaped)
                escaped = FALSE;
            else if (c == '\\')
                escaped = TRUE;
            else if (c == '"')
                inString = FALSE;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            if (depth == 0)
                inValue = FALSE;
            continue;
        }
        if (depth == 0 && !inValue) {
            count++;
            inValue = TRUE;
        }
        if (c == '"') {
            inString = TRUE;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
            if (depth == 0)
                inValue = FALSE;
        }
    }
    return count;
}

CocoQmpMessage *
cocoQmpMessageParse(const char *text, gsize len, GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new_immutable();
    g_autoptr(CocoQmpMessage) msg = g_new0(CocoQmpMessage, 1);
    g_autoptr(GError) perr = NULL;
    JsonNode *root;

    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len == 0) {
        cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL, _("empty QMP message"));
        return NULL;
    }
    if (cocoQmpTextCountValues(text, len) > 1) {
        cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL,
                     _("QMP message holds more than one JSON value"));
        return NULL;
    }
    if (len > G_MAXSSIZE ||
        !json_parser_load_from_data(parser, text, (gssize)len, &perr)) {
        cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL,
                     _("QMP message is not valid JSON: %1$s"),
                     perr ? perr->message : "");
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL,
                     _("QMP message is not a JSON object"));
        return NULL;
    }
    msg->root = json_node_ref(root);
    msg->obj = json_node_get_object(msg->root);
    msg->id = json_object_get_member(msg->obj, "id");

    if (json_object_has_member(msg->obj, "execute") ||
        json_object_has_member(msg->obj, "exec-oob")) {
        JsonNode *n = json_object_get_member(msg->obj, "execute");

        if (!n)
            n = json_object_get_member(msg->obj, "exec-oob");
        msg->kind = COCO_QMP_KIND_COMMAND;
        if (JSON_NODE_HOLDS_VALUE(n) &&
            json_node_get_value_type(n) == G_TYPE_STRING)
            msg->name = json_node_get_string(n);
    } else if (json_object_has_member(msg->obj, "return") ||
               json_object_has_member(msg->obj, "error")) {
        msg->kind = COCO_QMP_KIND_REPLY;
    } else if (json_object_has_member(msg->obj, "event")) {
        JsonNode *n = json_object_get_member(msg->obj, "event");

        msg->kind = COCO_QMP_KIND_EVENT;
        if (JSON_NODE_HOLDS_VALUE(n) &&
            json_node_get_value_type(n) == G_TYPE_STRING)
            msg->name = json_node_get_string(n);
    } else if (json_object_has_member(msg->obj, "QMP")) {
        msg->kind = COCO_QMP_KIND_GREETING;
    } else {
        msg->kind = COCO_QMP_KIND_OTHER;
    }
    return g_steal_pointer(&msg);
}

JsonObject *
cocoQmpMessageGetArguments(const CocoQmpMessage *msg)
{
    const char *member =
        msg->kind == COCO_QMP_KIND_EVENT ? "data" : "arguments";
    JsonNode *n = json_object_get_member(msg->obj, member);

    if (!n || !JSON_NODE_HOLDS_OBJECT(n))
        return NULL;
    return json_node_get_object(n);
}

const char *
cocoQmpMessageGetArgString(const CocoQmpMessage *msg, const char *member)
{
    JsonObject *args = cocoQmpMessageGetArguments(msg);
    JsonNode *n;

    if (!args)
        return NULL;
    n = json_object_get_member(args, member);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
        json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

char *
cocoQmpMessageIdKey(const CocoQmpMessage *msg)
{
    if (!msg->id)
        return NULL;
    return json_to_string(msg->id, FALSE);
}

gboolean
cocoQmpMessageIsError(const CocoQmpMessage *msg)
{
    return msg->kind == COCO_QMP_KIND_REPLY &&
           json_object_has_member(msg->obj, "error");
}

const char *
cocoQmpMessageErrorDesc(const CocoQmpMessage *msg)
{
    JsonNode *n = json_object_get_member(msg->obj, "error");
    JsonObject *err;

    if (!n || !JSON_NODE_HOLDS_OBJECT(n))
        return NULL;
    err = json_node_get_object(n);
    n = json_object_get_member(err, "desc");
    if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
        json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

char *
cocoQmpBuildObjectLine(JsonObject *obj)
{
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
    g_autofree char *text = NULL;

    json_node_take_object(node, obj);
    text = json_to_string(node, FALSE);
    return g_strconcat(text, "\r\n", NULL);
}

char *
cocoQmpBuildCommand(const char *execute, JsonObject *args, const char *id)
{
    JsonObject *obj = json_object_new();

    json_object_set_string_member(obj, "execute", execute);
    if (args)
        json_object_set_object_member(obj, "arguments", args);
    if (id)
        json_object_set_string_member(obj, "id", id);
    return cocoQmpBuildObjectLine(obj);
}

char *
cocoQmpBuildReturn(JsonNode *ret, const JsonNode *id)
{
    JsonObject *obj = json_object_new();

    if (!ret) {
        ret = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(ret, json_object_new());
    }
    json_object_set_member(obj, "return", ret);
    if (id)
        json_object_set_member(obj, "id", json_node_copy((JsonNode *)id));
    return cocoQmpBuildObjectLine(obj);
}

char *
cocoQmpBuildError(const char *errclass, const char *desc, const JsonNode *id)
{
    JsonObject *obj = json_object_new();
    JsonObject *err = json_object_new();

    json_object_set_string_member(err, "class", errclass);
    json_object_set_string_member(err, "desc", desc);
    json_object_set_object_member(obj, "error", err);
    if (id)
        json_object_set_member(obj, "id", json_node_copy((JsonNode *)id));
    return cocoQmpBuildObjectLine(obj);
}

char *
cocoQmpBuildEvent(const char *event, JsonObject *data)
{
    JsonObject *obj = json_object_new();
    JsonObject *ts = json_object_new();
    gint64 now = g_get_real_time();

    json_object_set_string_member(obj, "event", event);
    if (data)
        json_object_set_object_member(obj, "data", data);
    json_object_set_int_member(ts, "seconds", now / G_USEC_PER_SEC);
    json_object_set_int_member(ts, "microseconds", now % G_USEC_PER_SEC);
    json_object_set_object_member(obj, "timestamp", ts);
    return cocoQmpBuildObjectLine(obj);
}
