/*
 * cocoagentpeer.h: the TCP connections between two hosts' agents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * For each migration the source agent opens 1 + N TCP connections to the
 * destination agent's port: one control connection, carrying the phase
 * engine's messages (cocophasemessage.h wire form), and N data streams
 * handed to the transfer engine. Each connection starts with a hello:
 *
 *   "CAG1" | u32 little-endian length | JSON object of that length
 *   {"kind": "control"|"stream", "session": "<16 hex>", "streams": N,
 *    "index": I (streams), "name": ..., "uuid": ..., "vcpus": V,
 *    "pages": P, "bundle": B (pages per bundle) (control)}
 *
 * A third kind, {"kind": "probe"}, asks the agent who it is (virt-coco's
 * preflight): the agent answers with one frame of the same form
 * ("CAG1" | length | JSON, the "probe" object of docs/virtcocod.rst) and
 * closes the connection. A fourth, {"kind": "status", "session": S},
 * asks for the agent's record of session S: one frame
 * {"type": "peer-status", "session": S, "record": {...} | null}.
 *
 * The payloads that cross hosts (the agents' key exchange, immutable
 * state, memory, vCPU state, tokens) are sealed by the firmware; the
 * agents only carry them.
 */

#pragma once

#include "internal.h"
#include "migration/cocophasemessage.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <stdint.h>

#define COCO_AGENT_PEER_MAGIC "CAG1"
#define COCO_AGENT_PEER_HELLO_MAX 4096
/* The one-frame answer to a probe or status request (a record). */
#define COCO_AGENT_PEER_ANSWER_MAX (1024 * 1024)

typedef enum {
    COCO_AGENT_PEER_CONTROL = 0,
    COCO_AGENT_PEER_STREAM,
    COCO_AGENT_PEER_PROBE,
    COCO_AGENT_PEER_STATUS,
} CocoAgentPeerKind;

typedef struct {
    CocoAgentPeerKind kind;
    uint64_t session_id;
    unsigned int streams;
    unsigned int index;
    char *name; /* borrowed when sending; owned after an accept */
    char *uuid;
    unsigned int nvcpus;
    uint64_t npages;
    unsigned int pages_per_bundle;
} CocoAgentPeerHello;

void cocoAgentPeerHelloClear(CocoAgentPeerHello *hello);

typedef struct _CocoAgentPeerConn CocoAgentPeerConn;

/* A whole message arrived (@msg), or the connection ended (@msg NULL,
 * @error NULL at a clean end of stream). */
typedef void (*CocoAgentPeerMessageFunc)(CocoAgentPeerConn *conn,
                                         const CocoPhaseMessage *msg,
                                         const GError *error, gpointer opaque);

/* "host:port" or "[v6]:port" -> host. */
int cocoAgentPeerParseHost(const char *peer, char **host, GError **error);

/* A listening TCP socket; *@bound gets the port. */
int cocoAgentPeerListen(const char *address, unsigned int port,
                        unsigned int *bound, GError **error);

CocoAgentPeerConn *cocoAgentPeerConnect(const char *host, unsigned int port,
                                        GMainContext *ctx, unsigned int timeout,
                                        GError **error);
GIOStream *cocoAgentPeerConnectStream(const char *host, unsigned int port,
                                      unsigned int timeout,
                                      const CocoAgentPeerHello *hello,
                                      GError **error);
int cocoAgentPeerConnSendHello(CocoAgentPeerConn *conn,
                               const CocoAgentPeerHello *hello, GError **error);

/* Read the hello of an accepted connection @fd (consumed): a control
 * or probe connection gives *@conn, a stream *@stream. */
int cocoAgentPeerAccept(int fd, GMainContext *ctx, CocoAgentPeerHello *hello,
                        CocoAgentPeerConn **conn, GIOStream **stream,
                        GError **error);

/* Send @obj as one "CAG1" frame (the answer to a probe). */
int cocoAgentPeerConnSendFrame(CocoAgentPeerConn *conn, JsonObject *obj,
                               GError **error);

/* Probe the agent at @host:@port: send {"kind": "probe"} and return the
 * JSON object of its one-frame answer. Connecting, sending and reading
 * each give up after @timeout seconds. */
JsonObject *cocoAgentPeerProbe(const char *host, unsigned int port,
                               unsigned int timeout, GError **error);

/* Ask the agent at @host:@port for its record of session @session_id:
 * the JSON object of its one-frame answer ("peer-status"). */
JsonObject *cocoAgentPeerStatus(const char *host, unsigned int port,
                                unsigned int timeout, uint64_t session_id,
                                GError **error);

void cocoAgentPeerConnStart(CocoAgentPeerConn *conn,
                            CocoAgentPeerMessageFunc func, gpointer opaque);
int cocoAgentPeerConnSendMessage(CocoAgentPeerConn *conn,
                                 const CocoPhaseMessage *msg, GError **error);
const char *cocoAgentPeerConnGetAddress(CocoAgentPeerConn *conn);
/* Stop reading and close the socket; safe inside the callback. */
void cocoAgentPeerConnClose(CocoAgentPeerConn *conn);
void cocoAgentPeerConnFree(CocoAgentPeerConn *conn);
