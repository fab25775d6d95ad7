/*
 * cocoagent.h: virtcocod, the privileged host agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One agent per host (docs/virtcocod.rst). It
 *  - serves the QMP relays (qemu-coco) and the local clients on a unix
 *    socket (cocoagentrelay.c), and authenticates every relay;
 *  - accepts the peer agents' connections, mutual TLS with the host's
 *    libvirt PKI, and assembles incoming migrations by domain UUID and
 *    authenticated session (cocoagentincoming.c);
 *  - runs every migration on a worker thread of its own: the firmware
 *    session, the phase engine, the sealed multi-stream transfer and the
 *    deadlines (cocoagentmigration.c);
 *  - keeps a record of every migration (cocoagentrecord.c) and logs
 *    every phase event with the migration's fields (journald).
 *
 * The main thread only accepts, dispatches and answers; see
 * cocoagentpriv.h for the threads and who owns what.
 */

#pragma once

#include "internal.h"
#include "agent/cocoagentconfig.h"

#include <json-glib/json-glib.h>

typedef struct _CocoAgent CocoAgent;

/* Load the platform and the TLS credentials, read the records back, bind
 * the relay socket and the TCP port; serve in @ctx (NULL: the
 * thread-default context). */
CocoAgent *cocoAgentNew(const CocoAgentConfig *cfg, GMainContext *ctx,
                        GError **error);
/* Stops every migration's worker first (main thread). */
void cocoAgentFree(CocoAgent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoAgent, cocoAgentFree)

/* The TCP port actually bound (the configured one, or the kernel's choice
 * for port 0). */
unsigned int cocoAgentGetPort(CocoAgent *agent);
/* Port of the peer agents (tests run two agents on one address). */
void cocoAgentSetPeerPort(CocoAgent *agent, unsigned int port);

/* The agent's configuration. */
const CocoAgentConfig *cocoAgentGetConfig(CocoAgent *agent);

/* The records of the migrations this agent knows, oldest first. */
JsonArray *cocoAgentGetStatus(CocoAgent *agent);

/* The ids of the records this agent knows now (a set). */
GHashTable *cocoAgentGetRecordIds(CocoAgent *agent);

/* The newest record of domain @uuid in @role ("source", "destination")
 * whose id is not in @known, or NULL. */
JsonObject *cocoAgentFindRecord(CocoAgent *agent, const char *uuid,
                                const char *role, GHashTable *known);

/* Who this agent is (version, protocol, firmware backend, platform
 * identity and TCB, ports, TLS): the answer to "probe". */
JsonObject *cocoAgentGetProbe(CocoAgent *agent);

/* Migrations whose session is not final (an upgrade waits for 0). */
guint cocoAgentCountActive(CocoAgent *agent);

/* What the limits count now (tests, metrics). */
typedef struct {
    guint relay_connections; /* relays and local clients */
    guint peer_unauthenticated; /* peer connections before their hello */
    guint migrations; /* workers */
    guint records;
} CocoAgentCounts;
void cocoAgentGetCounts(CocoAgent *agent, CocoAgentCounts *counts);
