/*
 * cococlientjson.c: typed reading of JSON that comes from outside
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "client/cococlientjson.h"
#include "util/cocoerror.h"

/* The member's node when it holds a plain value of @type. */
static JsonNode *
cocoClientJsonValue(JsonObject *obj, const char *name, GType type)
{
    JsonNode *node = obj ? json_object_get_member(obj, name) : NULL;

    if (!node || !JSON_NODE_HOLDS_VALUE(node) ||
        json_node_get_value_type(node) != type)
        return NULL;
    return node;
}

const char *
cocoClientJsonString(JsonObject *obj, const char *name)
{
    JsonNode *node = cocoClientJsonValue(obj, name, G_TYPE_STRING);

    return node ? json_node_get_string(node) : NULL;
}

bool
cocoClientJsonInt(JsonObject *obj, const char *name, gint64 *value)
{
    JsonNode *node = cocoClientJsonValue(obj, name, G_TYPE_INT64);

    if (!node)
        return false;
    *value = json_node_get_int(node);
    return true;
}

guint64
cocoClientJsonU64(JsonObject *obj, const char *name, guint64 fallback)
{
    gint64 v;

    if (!cocoClientJsonInt(obj, name, &v) || v < 0)
        return fallback;
    return (guint64)v;
}

bool
cocoClientJsonNumber(JsonObject *obj, const char *name, double *value)
{
    JsonNode *node;
    gint64 i;

    if (cocoClientJsonInt(obj, name, &i)) {
        *value = (double)i;
        return true;
    }
    if (!(node = cocoClientJsonValue(obj, name, G_TYPE_DOUBLE)))
        return false;
    *value = json_node_get_double(node);
    return true;
}

bool
cocoClientJsonBool(JsonObject *obj, const char *name, bool *value)
{
    JsonNode *node = cocoClientJsonValue(obj, name, G_TYPE_BOOLEAN);

    if (!node)
        return false;
    *value = json_node_get_boolean(node);
    return true;
}

JsonObject *
cocoClientJsonObject(JsonObject *obj, const char *name)
{
    JsonNode *node = obj ? json_object_get_member(obj, name) : NULL;

    return node && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node)
                                                : NULL;
}

JsonArray *
cocoClientJsonArray(JsonObject *obj, const char *name)
{
    JsonNode *node = obj ? json_object_get_member(obj, name) : NULL;

    return node && JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node)
                                               : NULL;
}

JsonObject *
cocoClientJsonArrayObject(JsonArray *arr, guint i)
{
    JsonNode *node;

    if (!arr || i >= json_array_get_length(arr))
        return NULL;
    node = json_array_get_element(arr, i);
    return node && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node)
                                                : NULL;
}

JsonObject *
cocoClientJsonParseObject(const char *text, gssize len, const char *what,
                          GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    JsonNode *root;

    if (!json_parser_load_from_data(parser, text, len, &err)) {
        cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL,
                     _("the data from '%1$s' is not valid JSON: %2$s"), what,
                     err->message);
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        cocoErrorSet(error, COCO_ERROR_QMP_PROTOCOL,
                     _("the data from '%1$s' is not a JSON object"), what);
        return NULL;
    }
    return json_object_ref(json_node_get_object(root));
}
