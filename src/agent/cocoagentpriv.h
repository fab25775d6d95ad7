/*
 * cocoagentpriv.h: what the files of the host agent share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The agent is split by concern, one file each:
 *
 *   cocoagent.c          the agent: configuration, platform, listeners,
 *                        the registries below, its public API
 *   cocoagentrelay.c     the relay server: the unix socket, relays and
 *                        local clients, their authentication and limits,
 *                        the domains they identify
 *   cocoagentincoming.c  the peer agents' connections: accept, TLS, hello,
 *                        limits; incoming migrations assembled by domain
 *                        UUID and authenticated session
 *   cocoagentpeer.c      one connection to a peer agent: connect, TLS,
 *                        frames, heartbeats and liveness
 *   cocoagentmigration.c one migration: its worker thread, firmware
 *                        session, phase engine, data path and deadlines
 *   cocoagentrecord.c    the records: atomic writes, retention, restart
 *   cocoagentmetrics.c   the counters the metrics endpoint exports
 *   cocoagentmetricshttp.c the metrics endpoint (libsoup, main thread)
 *
 * Threads and who owns what:
 *  - the main thread runs the agent's GMainContext: it accepts, reads the
 *    relays' and peers' requests, dispatches them and answers. It owns the
 *    relays, the domains, the registry of migrations and the incoming
 *    assemblies. It never blocks: no firmware call, no data transfer, no
 *    blocking socket operation runs there.
 *  - every migration has a worker thread with a GMainContext of its own.
 *    It owns the migration's firmware session, phase engine, data path and
 *    control connection; the main thread talks to it only through
 *    cocoAgentMigrationPost*() (closures queued on the worker's context),
 *    and it talks back only through cocoAgentRelayPost() and
 *    cocoAgentPostMain() (closures queued on the main context). The state
 *    it publishes for the main thread (cocoAgentMigrationGetState()) is an
 *    atomic.
 *  - the records are shared: CocoAgentRecords has its own lock.
 *  - the transfer engine has threads of its own (per stream), driven by
 *    the worker.
 */

#pragma once

#include "internal.h"
#include "agent/cocoagent.h"
#include "agent/cocoagentconfig.h"
#include "agent/cocoagentrecord.h"
#include "migration/cocophase.h"
#include "proto/cocoprotorelay.h"
#include "transfer/cocotransferpriority.h"

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct _CocoAgentRelayServer CocoAgentRelayServer;
typedef struct _CocoAgentIncoming CocoAgentIncoming;
typedef struct _CocoAgentMigration CocoAgentMigration;
typedef struct _CocoAgentTlsCreds CocoAgentTlsCreds;
typedef struct _CocoAgentMetrics CocoAgentMetrics;
typedef struct _CocoAgentPeerSlots CocoAgentPeerSlots;

/* What an authenticated relay told about its QEMU (a copy: a migration
 * keeps its own). */
typedef struct {
    pid_t pid;
    char *name;
    char *uuid;
    char *ram_path; /* NULL: none usable, see ram_error */
    char *ram_error;
    unsigned int vcpus; /* 0: unknown */
    char *vfio_leak; /* the VFIO interposer's last leak report, or NULL:
                        the domain's migrations fail with it */
} CocoAgentDomainInfo;

void cocoAgentDomainInfoClear(CocoAgentDomainInfo *info);
void cocoAgentDomainInfoCopy(CocoAgentDomainInfo *dst,
                             const CocoAgentDomainInfo *src);

/* ---- the agent (cocoagent.c) ------------------------------------------- */

const CocoAgentConfig *cocoAgentConfig(CocoAgent *agent);
GMainContext *cocoAgentContext(CocoAgent *agent);
CocoAgentRecords *cocoAgentRecords(CocoAgent *agent);
CocoAgentTlsCreds *cocoAgentTls(CocoAgent *agent);
struct _CocoEmuPlatform *cocoAgentPlatform(CocoAgent *agent);
CocoAgentRelayServer *cocoAgentRelayServerOf(CocoAgent *agent);
CocoAgentIncoming *cocoAgentIncomingOf(CocoAgent *agent);
/* The counters of cocoagentmetrics.h (thread-safe). */
CocoAgentMetrics *cocoAgentMetricsOf(CocoAgent *agent);
/* Each peer host's set-up slot (cocoagentpeerslots.h; thread-safe). */
CocoAgentPeerSlots *cocoAgentPeerSlotsOf(CocoAgent *agent);
/* The host's precedence of switchovers over bulk pre-copy
 * (transfer/cocotransferpriority.h; thread-safe). */
CocoTransferPriority *cocoAgentPriorityOf(CocoAgent *agent);

/* Run @func(@data) on the main thread (from any thread). */
void cocoAgentPostMain(CocoAgent *agent, GSourceFunc func, gpointer data,
                       GDestroyNotify destroy);

/* A structured log line of the agent (journald fields MIGRATION_ID,
 * DOMAIN, DOMAIN_UUID, ROLE, PHASE when @m is set); thread-safe. */
void cocoAgentLog(CocoAgent *agent, CocoAgentMigration *m, GLogLevelFlags level,
                  const char *fmt, ...) G_GNUC_PRINTF(4, 5);

/* The migration registry (main thread). Removing a migration never waits
 * for its worker: the worker is retired (cocoAgentMigrationRetire()) and
 * joined by cocoAgentReapMigration() once it has ended, or at the
 * agent's end. */
void cocoAgentAddMigration(CocoAgent *agent, CocoAgentMigration *m);
void cocoAgentRemoveMigration(CocoAgent *agent, CocoAgentMigration *m);
void cocoAgentReapMigration(CocoAgent *agent, CocoAgentMigration *m);
/* Workers removed from the registry that have not ended yet. */
guint cocoAgentRetiringCount(CocoAgent *agent);
CocoAgentMigration *cocoAgentFindMigrationBySession(CocoAgent *agent,
                                                    guint64 session,
                                                    CocoFirmwareRole role);
guint cocoAgentMigrationCount(CocoAgent *agent);

/* The answer to "probe" (public facts). */
JsonObject *cocoAgentProbeObject(CocoAgent *agent);

/* ---- the relay server (cocoagentrelay.c) ------------------------------- */

CocoAgentRelayServer *cocoAgentRelayServerNew(CocoAgent *agent, GError **error);
void cocoAgentRelayServerFree(CocoAgentRelayServer *srv);

/*
 * Send message @type of cocoRelayReplySchema to the relay whose id is
 * @relay (from any thread: the line is queued on the main thread; a relay
 * that is gone is skipped). @data is copied into the line at once.
 */
void cocoAgentRelayPost(CocoAgent *agent, guint64 relay, int type,
                        const void *data);

/* The domain of QEMU @pid ended (the pidfd): its migration learns it. */
guint cocoAgentRelayServerDomainCount(CocoAgentRelayServer *srv);

/* A domain whose relay announced an incoming migration, by UUID: its
 * info (copied) and its relay, or false. Marks the announcement used. */
bool cocoAgentRelayServerTakeIncoming(CocoAgentRelayServer *srv,
                                      const char *uuid,
                                      CocoAgentDomainInfo *info,
                                      guint64 *relay);
/* The destination migration @m belongs to the domain of QEMU @pid. */
void cocoAgentRelayServerAttach(CocoAgentRelayServer *srv, pid_t pid,
                                CocoAgentMigration *m);
/* Retry the incoming assemblies that waited for @uuid's announcement. */
void cocoAgentIncomingAnnounced(CocoAgentIncoming *inc, const char *uuid);
/* The QEMU that announced an incoming migration of @uuid ended: refuse the
 * incoming assemblies of that domain at once, telling their sources why. */
void cocoAgentIncomingDomainGone(CocoAgentIncoming *inc, const char *uuid);

/* ---- the peers (cocoagentincoming.c) ----------------------------------- */

CocoAgentIncoming *cocoAgentIncomingNew(CocoAgent *agent, GError **error);
void cocoAgentIncomingFree(CocoAgentIncoming *inc);
unsigned int cocoAgentIncomingGetPort(CocoAgentIncoming *inc);

/* A destination session that ended but may still be asked by its source
 * (a reconnect after a cut): what it answers. Main thread. */
void cocoAgentIncomingRemember(CocoAgentIncoming *inc, guint64 session,
                               const char *peer_identity, CocoPhaseEvent answer,
                               GBytes *payload, uint32_t arg);
