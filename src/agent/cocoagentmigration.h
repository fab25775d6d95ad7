/*
 * cocoagentmigration.h: one confidential migration on one host, on a
 * worker thread of its own
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A migration owns its firmware session (the emulated firmware over the
 * guest's RAM file, kept mapped until the session ends), its phase engine
 * (cocomigrationsession.h), its data path (the transfer engine's streams)
 * and its control connection to the peer agent, all on its worker thread.
 * Its deadlines are its own: the peer's liveness (heartbeats), the
 * switchover (always shorter than the relay's gate timeout), a held cont,
 * and the window in which a source whose peer was lost after the start
 * token keeps reconnecting to learn the token's fate.
 *
 * The main thread creates it, posts it what the relays report and the
 * peers send, and reads its published state; everything else happens on
 * the worker (cocoagentpriv.h, "Threads and who owns what").
 */

#pragma once

#include "internal.h"
#include "agent/cocoagentpeer.h"
#include "agent/cocoagentpriv.h"
#include "proto/cocoprotopeer.h"

/* A source's migration of @dom to the host of @peer (the relay's view of
 * libvirt's migration connection). Registers it with the agent and
 * starts its worker; NULL when no thread can be started. */
CocoAgentMigration *cocoAgentMigrationNewSource(CocoAgent *agent,
                                                const CocoAgentDomainInfo *dom,
                                                guint64 relay, const char *peer,
                                                GError **error);

/* A destination's migration of @dom, from the assembled incoming session
 * (all taken: the hello, the control connection, the @hello->streams data
 * streams). */
CocoAgentMigration *cocoAgentMigrationNewDestination(
    CocoAgent *agent, const CocoAgentDomainInfo *dom, guint64 relay,
    CocoPeerHello *hello, CocoAgentPeerConn *ctl, GIOStream **streams,
    GError **error);

CocoAgentMigration *cocoAgentMigrationRef(CocoAgentMigration *m);
void cocoAgentMigrationUnref(CocoAgentMigration *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoAgentMigration, cocoAgentMigrationUnref)

/* Immutable after creation: safe from any thread. */
const char *cocoAgentMigrationGetId(CocoAgentMigration *m);
CocoFirmwareRole cocoAgentMigrationGetRole(CocoAgentMigration *m);
guint64 cocoAgentMigrationGetSession(CocoAgentMigration *m);
const char *cocoAgentMigrationGetUuid(CocoAgentMigration *m);
const char *cocoAgentMigrationGetName(CocoAgentMigration *m);
pid_t cocoAgentMigrationGetPid(CocoAgentMigration *m);
const char *cocoAgentMigrationGetPeerIdentity(CocoAgentMigration *m);

/* Published by the worker (atomic). */
CocoPhaseState cocoAgentMigrationGetState(CocoAgentMigration *m);
bool cocoAgentMigrationIsFinal(CocoAgentMigration *m);

/* ---- from the main thread ------------------------------------------------ */

/* An event the relay reported (qemu-gone, cancel, migration-failed);
 * @why (may be NULL) says more. */
void cocoAgentMigrationPostEvent(CocoAgentMigration *m, CocoPhaseEvent event,
                                 const char *why);
/* The VFIO interposer in the domain's QEMU reported a leak (@reason): a
 * source before its start token fails with it; after the token the guest
 * has left and the leak stays with the domain. */
void cocoAgentMigrationPostVfioLeak(CocoAgentMigration *m, const char *reason);
/* The relay @relay holds a command (@event: migrate, pre-switchover,
 * cont) whose request id is @id. */
void cocoAgentMigrationPostGate(CocoAgentMigration *m, guint64 relay,
                                CocoPhaseEvent event, gint64 id);
/* The domain's relay is now @relay (0: none); what the old one held is
 * forgotten. */
void cocoAgentMigrationPostRelay(CocoAgentMigration *m, guint64 relay);
/* A source reconnected to this destination session (taken). */
void cocoAgentMigrationPostControl(CocoAgentMigration *m,
                                   CocoAgentPeerConn *ctl);
/* An operator asks a frozen source to try its peer again; the answer
 * (a "recover" reply) goes to the local client @client. */
void cocoAgentMigrationPostRecover(CocoAgentMigration *m, guint64 client);
/* libvirt's migration parameters as the relay saw them: the downtime
 * limit in ms and the bandwidth in bytes per second (0: unlimited); -1
 * leaves one as it is. The precopy policy reads the limit at every round
 * boundary; the bandwidth limits the sealed pipeline at once. */
void cocoAgentMigrationPostParameters(CocoAgentMigration *m, gint64 downtime_ms,
                                      gint64 bandwidth);
/* The guest stopped (@running false: virsh suspend, Nova's force-complete)
 * or runs again: a paused guest ends the precopy at the next round
 * boundary. */
void cocoAgentMigrationPostRunState(CocoAgentMigration *m, bool running);
/* The domain's QEMU is gone: once its session is final the worker ends. */
void cocoAgentMigrationPostDomainGone(CocoAgentMigration *m);

/* Stop the worker and return at once: it tears its session down on its
 * own thread (the transfer engine's threads joined, the firmware and the
 * RAM mapping freed) and then posts cocoAgentReapMigration() to the main
 * thread, which joins it. A final migration the agent forgets (its QEMU
 * ended, or a new migration of the domain replaces it). Main thread. */
void cocoAgentMigrationRetire(CocoAgentMigration *m);
/* Stop the worker now and wait for it (agent shutdown, or a retired
 * worker that said it ended). Main thread. */
void cocoAgentMigrationStop(CocoAgentMigration *m);
