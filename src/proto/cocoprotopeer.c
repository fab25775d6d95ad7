/*
 * cocoprotopeer.c: the hello of every connection between two agents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "proto/cocoprotopeer.h"
#include "util/cocoerror.h"

COCO_ENUM_IMPL(cocoPeerKind, COCO_PEER_KIND_LAST, "control", "stream", "probe",
               "status");

#define H(m, json, ty, lo, hi)                                                 \
 COCO_PROTO_F(CocoPeerHello, m, json, ty, false, lo, hi)
#define HH(m, json, ty, lo, hi)                                                \
 COCO_PROTO_F_HAS(CocoPeerHello, m, has_##m, json, ty, lo, hi)

static const CocoProtoField cocoPeerHelloFields[] = {
    COCO_PROTO_F_ENUM(CocoPeerHello, kind, "kind", true, cocoPeerKindTypeList),
    COCO_PROTO_F(CocoPeerHello, protocol, "protocol", COCO_PROTO_INT, true, 1,
                 1000),
    HH(session, "session", COCO_PROTO_HEX64, 0, 0),
    HH(streams, "streams", COCO_PROTO_INT, 1, 512),
    HH(index, "index", COCO_PROTO_INT, 0, 511),
    H(token, "token", COCO_PROTO_STRING, 2 * COCO_PEER_TOKEN_LEN,
      2 * COCO_PEER_TOKEN_LEN),
    H(name, "name", COCO_PROTO_STRING, 1, 1024),
    H(uuid, "uuid", COCO_PROTO_UUID, 0, 0),
    HH(vcpus, "vcpus", COCO_PROTO_INT, 1, 4096),
    HH(pages, "pages", COCO_PROTO_INT, 1, (gint64)1 << 40),
    HH(bundle, "bundle", COCO_PROTO_INT, 1, 512),
    H(resume, "resume", COCO_PROTO_BOOL, 0, 0),
    H(id, "id", COCO_PROTO_STRING, 1, 1024),
};
const CocoProtoStruct cocoPeerHelloDef = {"hello", sizeof(CocoPeerHello),
                                          cocoPeerHelloFields,
                                          G_N_ELEMENTS(cocoPeerHelloFields)};

int
cocoPeerHelloValidate(const CocoPeerHello *h, GError **error)
{
    const char *kind = cocoPeerKindTypeToString(h->kind);

    if (h->protocol != COCO_PEER_PROTOCOL_VERSION)
        return cocoErrorSet(
            error, COCO_ERROR_AGENT_PROTOCOL,
            _("the peer agent speaks protocol version '%1$lld', this agent version '%2$d'; upgrade both hosts to the same release"),
            (long long)h->protocol, COCO_PEER_PROTOCOL_VERSION);
    switch ((CocoPeerKind)h->kind) {
    case COCO_PEER_KIND_CONTROL:
        if (!h->has_session || !h->has_streams || !h->uuid || !h->name ||
            !h->has_vcpus || !h->has_pages || !h->has_bundle)
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("the peer's '%1$s' hello lacks one of session, streams, uuid, name, vcpus, pages, bundle"),
                kind);
        return 0;
    case COCO_PEER_KIND_STREAM:
        if (!h->has_session || !h->has_streams || !h->has_index || !h->token)
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("the peer's '%1$s' hello lacks one of session, streams, index, token"),
                kind);
        if (h->index >= h->streams)
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("the peer's hello names stream '%1$lld' of '%2$lld'"),
                (long long)h->index, (long long)h->streams);
        return 0;
    case COCO_PEER_KIND_STATUS:
        if (!h->id && !h->has_session)
            return cocoErrorSet(
                error, COCO_ERROR_AGENT_PROTOCOL,
                _("the peer's '%1$s' hello names no migration id or session"),
                kind);
        return 0;
    case COCO_PEER_KIND_PROBE:
        return 0;
    case COCO_PEER_KIND_LAST:
    default:
        break;
    }
    return cocoErrorSet(error, COCO_ERROR_AGENT_PROTOCOL, "%s",
                        _("the peer's hello has no valid kind"));
}

GBytes *
cocoPeerFrameEncode(JsonObject *obj)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
    g_autofree char *text = NULL;
    GByteArray *out = g_byte_array_new();
    gsize len = 0;
    uint32_t le;

    json_node_set_object(root, obj);
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, &len);
    le = GUINT32_TO_LE((uint32_t)len);
    g_byte_array_append(out, (const guint8 *)COCO_PEER_MAGIC, 4);
    g_byte_array_append(out, (const guint8 *)&le, 4);
    g_byte_array_append(out, (const guint8 *)text, (guint)len);
    return g_byte_array_free_to_bytes(out);
}

GBytes *
cocoPeerHelloEncode(const CocoPeerHello *hello)
{
    g_autoptr(JsonObject) obj = cocoProtoBuildStruct(&cocoPeerHelloDef, hello);

    if (!hello->resume)
        json_object_remove_member(obj, "resume");
    return cocoPeerFrameEncode(obj);
}

int
cocoPeerFrameHeader(const uint8_t head[COCO_PEER_HEADER], size_t max,
                    uint32_t *len, GError **error)
{
    uint32_t le;

    if (memcmp(head, COCO_PEER_MAGIC_OLD, 4) == 0)
        return cocoErrorSet(
            error, COCO_ERROR_AGENT_PROTOCOL,
            _("the peer agent speaks protocol version '%1$d', this agent version '%2$d'; upgrade both hosts to the same release"),
            1, COCO_PEER_PROTOCOL_VERSION);
    if (memcmp(head, COCO_PEER_MAGIC, 4) != 0)
        return cocoErrorSet(error, COCO_ERROR_AGENT_PROTOCOL, "%s",
                            _("the peer did not start with an agent hello"));
    memcpy(&le, head + 4, 4);
    *len = GUINT32_FROM_LE(le);
    if (*len == 0 || *len > max)
        return cocoErrorSet(
            error, COCO_ERROR_AGENT_PROTOCOL,
            _("the peer's frame announces '%1$u' bytes, not 1 to '%2$zu'"),
            *len, max);
    return 0;
}

CocoPeerHello *
cocoPeerHelloParse(const char *text, size_t len, GError **error)
{
    g_autoptr(JsonObject) obj = NULL;
    CocoPeerHello *hello;

    if (!(obj = cocoProtoParseJson(text, len, COCO_PEER_HELLO_MAX,
                                   _("peer's hello"), error)))
        return NULL;
    if (!(hello = cocoProtoParseStruct(&cocoPeerHelloDef, obj, error)))
        return NULL;
    if (cocoPeerHelloValidate(hello, error) < 0) {
        cocoPeerHelloFree(hello);
        return NULL;
    }
    return hello;
}

void
cocoPeerHelloFree(CocoPeerHello *hello)
{
    cocoProtoFree(&cocoPeerHelloDef, hello);
}

int
cocoPeerParseHost(const char *peer, char **host, GError **error)
{
    g_autofree char *shown = cocoProtoPrintable(peer);
    const char *colon;

    if (!peer || !*peer)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG, "%s",
                            _("the peer address is empty"));
    if (peer[0] == '[') {
        const char *end = strchr(peer, ']');

        if (!end || end == peer + 1)
            return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                                _("malformed peer address '%1$s'"), shown);
        *host = g_strndup(peer + 1, end - peer - 1);
        return 0;
    }
    colon = strrchr(peer, ':');
    if (colon == peer)
        return cocoErrorSet(error, COCO_ERROR_INVALID_ARG,
                            _("malformed peer address '%1$s'"), shown);
    *host = colon ? g_strndup(peer, colon - peer) : g_strdup(peer);
    return 0;
}
