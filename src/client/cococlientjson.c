/*
 * cococlientjson.c: typed reading of JSON that comes from outside
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "client/cococlientjson.h"
#include "proto/cocoproto.h"

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

guint64
cocoClientJsonU64(JsonObject *obj, const char *name, guint64 fallback)
{
    gint64 v;

    if (!cocoJsonInt(obj, name, &v) || v < 0)
        return fallback;
    return (guint64)v;
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
