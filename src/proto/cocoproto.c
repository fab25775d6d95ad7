/*
 * cocoproto.c: typed, bounded JSON messages
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "proto/cocoproto.h"
#include "util/cocoerror.h"

#include <stdint.h>

#define FIELD(data, f, type) ((type *)(void *)((char *)(data) + (f)->offset))

int
cocoProtoCheckText(const char *text, size_t len, size_t max_bytes,
                   const char *what, GError **error)
{
    bool in_string = false;
    bool escape = false;
    unsigned int depth = 0;
    size_t i;

    if (len > max_bytes)
        return cocoErrorSet(
            error, COCO_ERROR_AGENT_PROTOCOL,
            _("the %1$s is '%2$zu' bytes long, more than the limit of '%3$zu'"),
            what, len, max_bytes);
    for (i = 0; i < len; i++) {
        char c = text[i];

        if (c == '\0')
            return cocoErrorSet(error, COCO_ERROR_AGENT_PROTOCOL,
                                _("the %1$s holds a NUL byte"), what);
        if (in_string) {
            if (escape)
                escape = false;
            else if (c == '\\')
                escape = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '{':
        case '[':
            if (++depth > COCO_PROTO_MAX_DEPTH)
                return cocoErrorSet(
                    error, COCO_ERROR_AGENT_PROTOCOL,
                    _("the %1$s nests objects and arrays deeper than '%2$d' levels"),
                    what, COCO_PROTO_MAX_DEPTH);
            break;
        case '}':
        case ']':
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
    }
    return 0;
}

#define COCO_PROTO_QUOTE_MAX 64

static char *
cocoProtoPrintableMax(const char *s, size_t max)
{
    g_autoptr(GString) out = NULL;
    const char *p;

    if (!s)
        return g_strdup("");
    if (!g_utf8_validate(s, -1, NULL))
        return g_strdup("?");
    out = g_string_new(NULL);
    for (p = s; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);

        if (out->len + 6 > max) {
            g_string_append(out, "...");
            break;
        }
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == 0x2028 ||
            c == 0x2029)
            g_string_append_c(out, ' ');
        else
            g_string_append_unichar(out, c);
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

char *
cocoProtoPrintable(const char *s)
{
    return cocoProtoPrintableMax(s, COCO_PROTO_QUOTE_MAX);
}

JsonObject *
cocoProtoParseJson(const char *text, size_t len, size_t max_bytes,
                   const char *what, GError **error)
{
    g_autoptr(JsonParser) parser = NULL;
    g_autoptr(GError) err = NULL;
    JsonNode *root;

    if (cocoProtoCheckText(text, len, max_bytes, what, error) < 0)
        return NULL;
    parser = json_parser_new();
    if (!json_parser_load_from_data(parser, text, (gssize)len, &err)) {
        g_autofree char *why = cocoProtoPrintableMax(err->message, 256);

        cocoErrorSet(error, COCO_ERROR_AGENT_PROTOCOL,
                     _("the %1$s is not valid JSON: %2$s"), what, why);
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        cocoErrorSet(error, COCO_ERROR_AGENT_PROTOCOL,
                     _("the %1$s is not a JSON object"), what);
        return NULL;
    }
    return json_object_ref(json_node_get_object(root));
}

static bool
cocoProtoNodeIs(JsonNode *node, GType type)
{
    return node && JSON_NODE_HOLDS_VALUE(node) &&
           json_node_get_value_type(node) == type;
}

static int
cocoProtoParseString(const CocoProtoStruct *def, const CocoProtoField *f,
                     JsonNode *node, const char **out, GError **error)
{
    const char *s;
    size_t len;
    size_t i;

    if (!cocoProtoNodeIs(node, G_TYPE_STRING))
        return cocoErrorSet(error, COCO_ERROR_AGENT_PROTOCOL,
                            _("message '%1$s': member '%2$s' is not a string"),
                            def->name, f->name);
    s = json_node_get_string(node);
    len = strlen(s);
    if (f->max > 0 && len > (size_t)f->max)
        return cocoErrorSet(
            error, COCO_ERROR_AGENT_PROTOCOL,
            _("message '%1$s': member '%2$s' is longer than '%3$lld' bytes"),
            def->name, f->name, (long long)f->max);
    if ((int64_t)len < f->min)
        return cocoErrorSet(
            error, COCO_ERROR_AGENT_PROTOCOL,
            _("message '%1$s': member '%2$s' is shorter than '%3$lld' bytes"),
            def->name, f->name, (long long)f->min);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (f->multiline && (c == '\n' || c == '\t'))
            continue;
        if (c < 0x20 || c == 0x7f)
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' holds a control character"),
                def->name, f->name);
    }
    *out = s;
    return 0;
}

static bool
cocoProtoIsUuid(const char *s)
{
    size_t i;

    if (strlen(s) != 36)
        return false;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!g_ascii_isxdigit(s[i])) {
            return false;
        }
    }
    return true;
}

static int cocoProtoParseInto(const CocoProtoStruct *def, JsonObject *obj,
                              void *data, GError **error);

static int
cocoProtoParseField(const CocoProtoStruct *def, const CocoProtoField *f,
                    JsonNode *node, void *data, GError **error)
{
    const char *s = NULL;

    switch (f->type) {
    case COCO_PROTO_STRING:
        if (cocoProtoParseString(def, f, node, &s, error) < 0)
            return -1;
        *FIELD(data, f, char *) = g_strdup(s);
        return 0;
    case COCO_PROTO_INT: {
        gint64 v;

        if (!cocoProtoNodeIs(node, G_TYPE_INT64))
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' is not an integer"), def->name,
                f->name);
        v = json_node_get_int(node);
        if (v < f->min || v > f->max)
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' is '%3$lld', not in '%4$lld'..'%5$lld'"),
                def->name, f->name, (long long)v, (long long)f->min,
                (long long)f->max);
        *FIELD(data, f, gint64) = v;
        return 0;
    }
    case COCO_PROTO_BOOL:
        if (!cocoProtoNodeIs(node, G_TYPE_BOOLEAN))
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' is not a boolean"), def->name,
                f->name);
        *FIELD(data, f, bool) = json_node_get_boolean(node);
        return 0;
    case COCO_PROTO_ENUM: {
        size_t i;

        if (!cocoProtoNodeIs(node, G_TYPE_STRING))
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' is not a string"), def->name,
                f->name);
        s = json_node_get_string(node);
        for (i = 0; i < f->nnames; i++) {
            if (STREQ(f->names[i], s)) {
                *FIELD(data, f, int) = (int)i;
                return 0;
            }
        }
        {
            g_autofree char *shown = cocoProtoPrintable(s);

            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' has an unknown value '%3$s'"),
                def->name, f->name, shown);
        }
    }
    case COCO_PROTO_HEX64: {
        guint64 v = 0;
        size_t i;

        if (!cocoProtoNodeIs(node, G_TYPE_STRING) ||
            strlen(s = json_node_get_string(node)) != 16)
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' is not 16 hexadecimal digits"),
                def->name, f->name);
        for (i = 0; i < 16; i++) {
            if (!g_ascii_isxdigit(s[i]))
                return cocoErrorSet(
                    error, COCO_ERROR_AGENT_PROTOCOL,
                    _("message '%1$s': member '%2$s' is not 16 hexadecimal digits"),
                    def->name, f->name);
            v = (v << 4) | (guint64)g_ascii_xdigit_value(s[i]);
        }
        *FIELD(data, f, guint64) = v;
        return 0;
    }
    case COCO_PROTO_UUID:
        if (!cocoProtoNodeIs(node, G_TYPE_STRING) ||
            !cocoProtoIsUuid(s = json_node_get_string(node)))
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' is not a UUID"), def->name,
                f->name);
        *FIELD(data, f, char *) = g_ascii_strdown(s, -1);
        return 0;
    case COCO_PROTO_OBJECT: {
        void *sub;

        if (!JSON_NODE_HOLDS_OBJECT(node))
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' is not an object"), def->name,
                f->name);
        if (!(sub = cocoProtoParseStruct(f->sub, json_node_get_object(node),
                                         error)))
            return -1;
        *FIELD(data, f, void *) = sub;
        return 0;
    }
    case COCO_PROTO_ARRAY: {
        JsonArray *arr;
        GPtrArray *out;
        guint i;

        if (!JSON_NODE_HOLDS_ARRAY(node))
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' is not an array"), def->name,
                f->name);
        arr = json_node_get_array(node);
        if (json_array_get_length(arr) > (guint)f->max)
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' has more than '%3$lld' elements"),
                def->name, f->name, (long long)f->max);
        out = g_ptr_array_new();
        *FIELD(data, f, GPtrArray *) = out;
        for (i = 0; i < json_array_get_length(arr); i++) {
            JsonNode *e = json_array_get_element(arr, i);
            void *sub;

            if (!JSON_NODE_HOLDS_OBJECT(e))
                return cocoErrorSet(
                    error, COCO_ERROR_AGENT_PROTOCOL,
                    _("message '%1$s': an element of member '%2$s' is not an object"),
                    def->name, f->name);
            if (!(sub = cocoProtoParseStruct(f->sub, json_node_get_object(e),
                                             error)))
                return -1;
            g_ptr_array_add(out, sub);
        }
        return 0;
    }
    case COCO_PROTO_JSON:
        if (!JSON_NODE_HOLDS_OBJECT(node))
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' is not an object"), def->name,
                f->name);
        *FIELD(data, f, JsonObject *) =
            json_object_ref(json_node_get_object(node));
        return 0;
    case COCO_PROTO_JSON_ARRAY:
        if (!JSON_NODE_HOLDS_ARRAY(node))
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' is not an array"), def->name,
                f->name);
        if (json_array_get_length(json_node_get_array(node)) > (guint)f->max)
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("message '%1$s': member '%2$s' has more than '%3$lld' elements"),
                def->name, f->name, (long long)f->max);
        *FIELD(data, f, JsonArray *) =
            json_array_ref(json_node_get_array(node));
        return 0;
    case COCO_PROTO_TYPE_LAST:
    default:
        break;
    }
    return cocoErrorSet(error, COCO_ERROR_INTERNAL,
                        _("message '%1$s': member '%2$s' has no known type"),
                        def->name, f->name);
}

static int
cocoProtoParseInto(const CocoProtoStruct *def, JsonObject *obj, void *data,
                   GError **error)
{
    size_t i;

    for (i = 0; i < def->nfields; i++) {
        const CocoProtoField *f = &def->fields[i];
        JsonNode *node = json_object_get_member(obj, f->name);

        if (!node || JSON_NODE_HOLDS_NULL(node)) {
            if (f->required)
                return cocoErrorSet(
                    error, COCO_ERROR_AGENT_PROTOCOL,
                    _("message '%1$s': member '%2$s' is missing"), def->name,
                    f->name);
            continue;
        }
        if (cocoProtoParseField(def, f, node, data, error) < 0)
            return -1;
        if (f->has_offset)
            *(bool *)(void *)((char *)data + f->has_offset) = true;
    }
    return 0;
}

void *
cocoProtoParseStruct(const CocoProtoStruct *def, JsonObject *obj,
                     GError **error)
{
    void *data = g_malloc0(def->size);

    if (cocoProtoParseInto(def, obj, data, error) < 0) {
        cocoProtoFree(def, data);
        return NULL;
    }
    return data;
}

void
cocoProtoFree(const CocoProtoStruct *def, void *data)
{
    size_t i;

    if (!data)
        return;
    for (i = 0; i < def->nfields; i++) {
        const CocoProtoField *f = &def->fields[i];

        switch (f->type) {
        case COCO_PROTO_STRING:
        case COCO_PROTO_UUID:
            g_free(*FIELD(data, f, char *));
            break;
        case COCO_PROTO_OBJECT:
            cocoProtoFree(f->sub, *FIELD(data, f, void *));
            break;
        case COCO_PROTO_ARRAY: {
            GPtrArray *arr = *FIELD(data, f, GPtrArray *);
            guint j;

            for (j = 0; arr && j < arr->len; j++)
                cocoProtoFree(f->sub, g_ptr_array_index(arr, j));
            if (arr)
                g_ptr_array_unref(arr);
            break;
        }
        case COCO_PROTO_JSON:
            if (*FIELD(data, f, JsonObject *))
                json_object_unref(*FIELD(data, f, JsonObject *));
            break;
        case COCO_PROTO_JSON_ARRAY:
            if (*FIELD(data, f, JsonArray *))
                json_array_unref(*FIELD(data, f, JsonArray *));
            break;
        case COCO_PROTO_INT:
        case COCO_PROTO_BOOL:
        case COCO_PROTO_ENUM:
        case COCO_PROTO_HEX64:
        case COCO_PROTO_TYPE_LAST:
        default:
            break;
        }
    }
    g_free(data);
}

JsonObject *
cocoProtoBuildStruct(const CocoProtoStruct *def, const void *data)
{
    JsonObject *obj = json_object_new();
    size_t i;

    for (i = 0; i < def->nfields; i++) {
        const CocoProtoField *f = &def->fields[i];
        void *d = (void *)data;

        if (f->has_offset && !*(bool *)(void *)((char *)d + f->has_offset))
            continue;
        switch (f->type) {
        case COCO_PROTO_STRING:
        case COCO_PROTO_UUID:
            if (*FIELD(d, f, char *))
                json_object_set_string_member(obj, f->name,
                                              *FIELD(d, f, char *));
            break;
        case COCO_PROTO_INT:
            json_object_set_int_member(obj, f->name, *FIELD(d, f, gint64));
            break;
        case COCO_PROTO_BOOL:
            json_object_set_boolean_member(obj, f->name, *FIELD(d, f, bool));
            break;
        case COCO_PROTO_ENUM: {
            int v = *FIELD(d, f, int);

            if (v >= 0 && (unsigned int)v < f->nnames)
                json_object_set_string_member(obj, f->name, f->names[v]);
            break;
        }
        case COCO_PROTO_HEX64: {
            g_autofree char *hex = g_strdup_printf("%016" G_GINT64_MODIFIER "x",
                                                   *FIELD(d, f, guint64));

            json_object_set_string_member(obj, f->name, hex);
            break;
        }
        case COCO_PROTO_OBJECT:
            if (*FIELD(d, f, void *))
                json_object_set_object_member(
                    obj, f->name,
                    cocoProtoBuildStruct(f->sub, *FIELD(d, f, void *)));
            break;
        case COCO_PROTO_ARRAY: {
            GPtrArray *arr = *FIELD(d, f, GPtrArray *);
            JsonArray *out;
            guint j;

            if (!arr)
                break;
            out = json_array_new();
            for (j = 0; j < arr->len; j++)
                json_array_add_object_element(
                    out,
                    cocoProtoBuildStruct(f->sub, g_ptr_array_index(arr, j)));
            json_object_set_array_member(obj, f->name, out);
            break;
        }
        case COCO_PROTO_JSON:
            if (*FIELD(d, f, JsonObject *))
                json_object_set_object_member(
                    obj, f->name, json_object_ref(*FIELD(d, f, JsonObject *)));
            break;
        case COCO_PROTO_JSON_ARRAY:
            if (*FIELD(d, f, JsonArray *))
                json_object_set_array_member(
                    obj, f->name, json_array_ref(*FIELD(d, f, JsonArray *)));
            break;
        case COCO_PROTO_TYPE_LAST:
        default:
            break;
        }
    }
    return obj;
}

const CocoProtoStruct *
cocoProtoSchemaLookup(const CocoProtoSchema *schema, int id)
{
    size_t i;

    for (i = 0; i < schema->nmessages; i++) {
        if (schema->messages[i].id == id)
            return schema->messages[i].def;
    }
    return NULL;
}

int
cocoProtoParseMessage(const CocoProtoSchema *schema, const char *text,
                      size_t len, int *id, void **data, GError **error)
{
    g_autoptr(JsonObject) obj = NULL;
    g_autofree char *what = g_strdup_printf(_("'%1$s' message"), schema->name);
    g_autofree char *shown = NULL;
    JsonNode *type;
    const char *name;
    size_t i;

    *data = NULL;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (!(obj = cocoProtoParseJson(text, len, schema->max_bytes, what, error)))
        return -1;
    type = json_object_get_member(obj, "type");
    if (!cocoProtoNodeIs(type, G_TYPE_STRING))
        return cocoErrorSet(error, COCO_ERROR_AGENT_PROTOCOL,
                            _("a '%1$s' message has no string member 'type'"),
                            schema->name);
    name = json_node_get_string(type);
    for (i = 0; i < schema->nmessages; i++) {
        const CocoProtoMessage *m = &schema->messages[i];

        if (STRNEQ(m->def->name, name))
            continue;
        if (!(*data = cocoProtoParseStruct(m->def, obj, error)))
            return -1;
        *id = m->id;
        return 0;
    }
    shown = cocoProtoPrintable(name);
    return cocoErrorSet(error, COCO_ERROR_AGENT_PROTOCOL,
                        _("unknown '%1$s' message type '%2$s'"), schema->name,
                        shown);
}

void
cocoProtoMessageFree(const CocoProtoSchema *schema, int id, void *data)
{
    const CocoProtoStruct *def = cocoProtoSchemaLookup(schema, id);

    if (def)
        cocoProtoFree(def, data);
}

char *
cocoProtoBuildMessage(const CocoProtoSchema *schema, int id, const void *data)
{
    const CocoProtoStruct *def = cocoProtoSchemaLookup(schema, id);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
    JsonObject *obj;
    g_autofree char *text = NULL;

    g_return_val_if_fail(def != NULL, NULL);
    obj = data ? cocoProtoBuildStruct(def, data) : json_object_new();
    json_object_set_string_member(obj, "type", def->name);
    json_node_take_object(root, obj);
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, NULL);
    return g_strconcat(text, "\n", NULL);
}

/* ---- safe accessors ---------------------------------------------------- */

const char *
cocoJsonString(JsonObject *obj, const char *name)
{
    JsonNode *n = obj ? json_object_get_member(obj, name) : NULL;

    return cocoProtoNodeIs(n, G_TYPE_STRING) ? json_node_get_string(n) : NULL;
}

const char *
cocoJsonStringDefault(JsonObject *obj, const char *name, const char *def)
{
    const char *s = cocoJsonString(obj, name);

    return s ? s : def;
}

bool
cocoJsonInt(JsonObject *obj, const char *name, gint64 *out)
{
    JsonNode *n = obj ? json_object_get_member(obj, name) : NULL;

    if (!cocoProtoNodeIs(n, G_TYPE_INT64))
        return false;
    *out = json_node_get_int(n);
    return true;
}

gint64
cocoJsonIntDefault(JsonObject *obj, const char *name, gint64 def)
{
    gint64 v;

    return cocoJsonInt(obj, name, &v) ? v : def;
}

bool
cocoJsonDouble(JsonObject *obj, const char *name, double *out)
{
    JsonNode *n = obj ? json_object_get_member(obj, name) : NULL;

    if (cocoProtoNodeIs(n, G_TYPE_INT64)) {
        *out = (double)json_node_get_int(n);
        return true;
    }
    if (cocoProtoNodeIs(n, G_TYPE_DOUBLE)) {
        *out = json_node_get_double(n);
        return true;
    }
    return false;
}

bool
cocoJsonBoolDefault(JsonObject *obj, const char *name, bool def)
{
    JsonNode *n = obj ? json_object_get_member(obj, name) : NULL;

    return cocoProtoNodeIs(n, G_TYPE_BOOLEAN) ? json_node_get_boolean(n) : def;
}

JsonObject *
cocoJsonObject(JsonObject *obj, const char *name)
{
    JsonNode *n = obj ? json_object_get_member(obj, name) : NULL;

    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

JsonArray *
cocoJsonArray(JsonObject *obj, const char *name)
{
    JsonNode *n = obj ? json_object_get_member(obj, name) : NULL;

    return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

JsonObject *
cocoJsonArrayObject(JsonArray *arr, guint i)
{
    JsonNode *n;

    if (!arr || i >= json_array_get_length(arr))
        return NULL;
    n = json_array_get_element(arr, i);
    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}
