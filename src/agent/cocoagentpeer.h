/*
 * cocoagentpeer.h: connections between two hosts' agents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Per migration the source agent opens one control connection, mutual TLS
 * (cocoagenttls.h), and N data streams to the destination agent. Every
 * connection starts with a hello (cocoprotopeer.h); a data stream's hello
 * carries a token derived from the control connection's TLS session
 * (cocoAgentTlsStreamToken()), so that a stream cannot be spliced into
 * another session or replayed. The bundles on the streams are sealed by the
 * firmware; the streams themselves are plain TCP (the benchmark that
 * decided it: docs/performance.rst, "Authenticated pipeline").
 *
 * A control connection carries the phase engine's messages
 * (cocophasemessage.h) and heartbeats both ways: a peer that sends nothing
 * for the liveness deadline is lost ("the peer host ... stopped
 * answering"). Data streams get TCP keepalive and TCP_USER_TIMEOUT with the
 * same deadline.
 *
 * The connecting side's calls block the calling thread (a migration's
 * worker, or a thread of its own) within their deadlines; they never run
 * on the agent's main thread.
 */

#pragma once

#include "internal.h"
#include "agent/cocoagentpriv.h"
#include "migration/cocophasemessage.h"
#include "proto/cocoprotopeer.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>

typedef struct _CocoAgentPeerConn CocoAgentPeerConn;

/* A whole message arrived (@msg), or the connection ended (@msg NULL;
 * @error says why: closed, broken, silent past the deadline). */
typedef void (*CocoAgentPeerMessageFunc)(CocoAgentPeerConn *conn,
                                         const CocoPhaseMessage *msg,
                                         const GError *error, gpointer opaque);

/* A listening TCP socket on @address; *@bound gets the port. */
int cocoAgentPeerListen(const char *address, unsigned int port,
                        unsigned int *bound, GError **error);

/* Keepalive, TCP_USER_TIMEOUT (@deadline_s) and TCP_NODELAY on a data or
 * control socket. */
void cocoAgentPeerSocketOptions(int fd, unsigned int deadline_s);

/*
 * Connect to the agent at @host:@port, authenticate it (TLS: its
 * certificate must name @host) and send @hello. Blocks the calling thread
 * for at most the configured deadlines (connect: peer_timeout, TLS:
 * handshake_timeout).
 */
CocoAgentPeerConn *cocoAgentPeerConnect(CocoAgent *agent, const char *host,
                                        unsigned int port,
                                        const CocoPeerHello *hello,
                                        GError **error);

/* Data stream @hello->index of the session @binding belongs to: TCP, the
 * hello with its token. */
GIOStream *cocoAgentPeerConnectStream(CocoAgent *agent, const char *host,
                                      unsigned int port, CocoPeerHello *hello,
                                      const GByteArray *binding,
                                      GError **error);

/* A probe or status request: connect as above, send @hello, read the one
 * answer frame. */
JsonObject *cocoAgentPeerRequest(CocoAgent *agent, const char *host,
                                 unsigned int port, const CocoPeerHello *hello,
                                 GError **error);

/* The accepting side: an authenticated TLS @stream (taken) from @address,
 * whose certificate names @identity. */
CocoAgentPeerConn *cocoAgentPeerConnNew(GIOStream *stream, const char *address,
                                        const char *identity,
                                        GByteArray *binding);

/*
 * Read messages on @ctx (the owner's thread), send a heartbeat every
 * @heartbeat_s seconds and report the end when nothing arrived for
 * @deadline_s seconds. Safe to call once.
 */
void cocoAgentPeerConnStart(CocoAgentPeerConn *conn, GMainContext *ctx,
                            unsigned int heartbeat_s, unsigned int deadline_s,
                            CocoAgentPeerMessageFunc func, gpointer opaque);
/* Send one heartbeat now (an accepted connection whose owner has not
 * started it yet: the peer's liveness check waits for it meanwhile). */
void cocoAgentPeerConnHeartbeat(CocoAgentPeerConn *conn);
/* Send one message (blocks until written, at most the deadline). */
int cocoAgentPeerConnSendMessage(CocoAgentPeerConn *conn,
                                 const CocoPhaseMessage *msg, GError **error);
/* Send raw bytes (a whole frame). */
int cocoAgentPeerConnSendBytes(CocoAgentPeerConn *conn, GBytes *bytes,
                               GError **error);
const char *cocoAgentPeerConnGetAddress(CocoAgentPeerConn *conn);
/* The host part of the address ("10.97.0.2"). */
const char *cocoAgentPeerConnGetHost(CocoAgentPeerConn *conn);
const char *cocoAgentPeerConnGetIdentity(CocoAgentPeerConn *conn);
/* The TLS session's channel binding (the data streams' token key). */
const GByteArray *cocoAgentPeerConnGetBinding(CocoAgentPeerConn *conn);
/* Stop reading and close; safe inside the callback. */
void cocoAgentPeerConnClose(CocoAgentPeerConn *conn);
void cocoAgentPeerConnFree(CocoAgentPeerConn *conn);
