/*
 * cocoprotopeer.h: the hello of every connection between two agents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The source agent opens, per migration, one control connection (mutual
 * TLS) and N data streams to the destination agent; a peer may also open
 * a connection to probe the agent or read a record. Each starts with one
 * hello frame:
 *
 *   "CAG2" | u32 little-endian length (1..COCO_PEER_HELLO_MAX) | JSON
 *
 * The JSON object is described by cocoPeerHelloDef (cocoprotopeer.c);
 * which members a kind needs is checked by cocoPeerHelloValidate(). The
 * control connection then carries the phase engine's messages
 * (cocophasemessage.h), the data streams the transfer engine's records.
 */

#pragma once

#include "internal.h"
#include "proto/cocoproto.h"
#include "util/cocoenum.h"

#include <stdint.h>

#define COCO_PEER_MAGIC "CAG2"
#define COCO_PEER_MAGIC_OLD "CAG1"
#define COCO_PEER_HEADER 8
#define COCO_PEER_HELLO_MAX 4096
/* The answer to a status request carries one record. */
#define COCO_PEER_ANSWER_MAX (4U * 1024U * 1024U)
/* Version 2: TLS, stream tokens, UUID matching, heartbeats; 3: switching
 * notices (cocophasemessage.h). */
#define COCO_PEER_PROTOCOL_VERSION 3
#define COCO_PEER_TOKEN_LEN 32

typedef enum {
    COCO_PEER_KIND_CONTROL = 0, /* a migration's phase messages */
    COCO_PEER_KIND_STREAM, /* one of its data streams */
    COCO_PEER_KIND_PROBE, /* who are you (one answer frame) */
    COCO_PEER_KIND_STATUS, /* your record of a migration (one frame) */
    COCO_PEER_KIND_LAST
} CocoPeerKind;
COCO_ENUM_DECL(cocoPeerKind);

typedef struct {
    int kind; /* CocoPeerKind */
    gint64 protocol;
    guint64 session;
    bool has_session;
    gint64 streams;
    bool has_streams;
    gint64 index;
    bool has_index;
    char *token; /* stream: 64 hex digits */
    char *name;
    char *uuid;
    gint64 vcpus;
    bool has_vcpus;
    gint64 pages;
    bool has_pages;
    gint64 bundle;
    bool has_bundle;
    bool resume; /* control: reconnect to an existing session */
    char *id; /* status: a migration id */
} CocoPeerHello;

extern const CocoProtoStruct cocoPeerHelloDef;

/* The members @hello's kind needs, and nothing contradictory. */
int cocoPeerHelloValidate(const CocoPeerHello *hello, GError **error);

/* Encode @hello (kind-appropriate members only) as a whole frame. */
GBytes *cocoPeerHelloEncode(const CocoPeerHello *hello);

/*
 * The 8-byte header of a frame: the JSON length that follows, at most
 * @max. A header with the previous magic is refused with a message that
 * names the protocol versions.
 */
int cocoPeerFrameHeader(const uint8_t head[COCO_PEER_HEADER], size_t max,
                        uint32_t *len, GError **error);

/* A whole frame ("CAG2" | length | the JSON of @obj). */
GBytes *cocoPeerFrameEncode(JsonObject *obj);

/* Parse and validate a hello's JSON text (after its header). */
CocoPeerHello *cocoPeerHelloParse(const char *text, size_t len, GError **error);
void cocoPeerHelloFree(CocoPeerHello *hello);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoPeerHello, cocoPeerHelloFree)

/* "host:port", "[v6]:port" or "host" -> host. */
int cocoPeerParseHost(const char *peer, char **host, GError **error);
