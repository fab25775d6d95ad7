/*
 * cocoagent.h: virtcocod, the privileged host agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One agent per host. It
 *  - serves the QMP relays (qemu-coco) on a local unix socket, line-based
 *    JSON (docs/qemu-coco.rst "Agent protocol", docs/virtcocod.rst), and
 *    authenticates each relay (cocoagentauth.h);
 *  - owns the firmware sessions: the emulated firmware attached to the
 *    guest's RAM file, kept mapped until the session ends so libvirt
 *    deleting the file cannot lose the guest;
 *  - runs one phase engine (cocomigrationsession.h) per migration, and
 *    the encrypted multi-stream transfer to the peer host's agent over
 *    TCP (one control connection carrying the phase messages, N data
 *    streams for the transfer engine);
 *  - logs every phase event and keeps a JSON record per migration, in
 *    the state directory and through the "status" request.
 *
 * Threading: everything runs in @ctx (one thread); the transfer engine
 * has threads of its own. A source's SETUP and final transfer run inside
 * the event that triggers them and block this agent's loop meanwhile.
 */

#pragma once

#include "internal.h"
#include "agent/cocoagentconfig.h"

#include <json-glib/json-glib.h>

typedef struct _CocoAgent CocoAgent;

/* Load the platform, create the state directory, bind the relay socket
 * and the TCP port; serve in @ctx (NULL: the thread-default context). */
CocoAgent *cocoAgentNew(const CocoAgentConfig *cfg, GMainContext *ctx,
                        GError **error);
void cocoAgentFree(CocoAgent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoAgent, cocoAgentFree)

/* The TCP port actually bound (the configured one, or the kernel's choice
 * for port 0). */
unsigned int cocoAgentGetPort(CocoAgent *agent);
/* Port of the peer agents (tests run two agents on one address). */
void cocoAgentSetPeerPort(CocoAgent *agent, unsigned int port);

/* The agent's configuration. */
const CocoAgentConfig *cocoAgentGetConfig(CocoAgent *agent);

/* The records of the migrations this agent knows, newest last. */
JsonArray *cocoAgentGetStatus(CocoAgent *agent);

/* The ids of the records this agent knows now (a set). */
GHashTable *cocoAgentGetRecordIds(CocoAgent *agent);

/* The newest record of domain @uuid in @role ("source", "destination")
 * whose id is not in @known, fresh for a live migration (nothing is
 * written), or NULL. */
JsonObject *cocoAgentFindRecord(CocoAgent *agent, const char *uuid,
                                const char *role, GHashTable *known);

/* How many migrations are in flight: sessions that are not final (a
 * frozen source counts) and incoming sessions that wait for their
 * domain. Call it in the agent's context. */
guint cocoAgentCountActive(CocoAgent *agent);

/* Who this agent is (version, firmware backend, platform identity and TCB,
 * ports): the answer to "probe". */
JsonObject *cocoAgentGetProbe(CocoAgent *agent);
