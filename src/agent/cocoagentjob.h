/*
 * cocoagentjob.h: a confidential migration the agent starts through
 * libvirt for a client (the D-Bus Migrate() call)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A job is the D-Bus face of the one migration driver
 * (client/cococlientmigrate.h), which "virt-coco migrate --confidential"
 * uses too: the same refusals, preflight (the domain's element and relay,
 * both agents, firmware, policy, emulator), libvirt call and check of the
 * result. A job always adds VIR_MIGRATE_PEER2PEER, so libvirtd drives the
 * migration and the agent's own loop keeps serving the relays; the driver
 * reads this agent's record of the migration through the agent's own
 * socket. Its phase, progress, bytes, epochs and downtime come from that
 * record. Every callback runs in the main context the job was created
 * in. The agent owns every job: a client that goes away never ends or
 * orphans one.
 */

#pragma once

#include "internal.h"
#include "agent/cocoagent.h"
#include "util/cocoenum.h"

#include <gio/gio.h>

typedef enum {
    COCO_AGENT_JOB_STATE_PREFLIGHT, /* the checks before libvirt is called */
    COCO_AGENT_JOB_STATE_RUNNING, /* libvirt migrates */
    COCO_AGENT_JOB_STATE_COMPLETED, /* the guest runs on the destination */
    COCO_AGENT_JOB_STATE_FAILED, /* refused or failed; see the error */
    COCO_AGENT_JOB_STATE_CANCELLED, /* aborted on request */

    COCO_AGENT_JOB_STATE_LAST
} CocoAgentJobState;
COCO_ENUM_DECL(cocoAgentJobState);

typedef struct _CocoAgentJob CocoAgentJob;

typedef struct {
    /* The checks ended: @error NULL means libvirt is being called. */
    void (*started)(CocoAgentJob *job, const GError *error, gpointer opaque);
    /* Phase, progress, bytes, epoch or downtime changed; @phase tells
     * whether the phase did. */
    void (*changed)(CocoAgentJob *job, bool phase, gpointer opaque);
    /* The job is over (completed, failed or cancelled). */
    void (*finished)(CocoAgentJob *job, gpointer opaque);
} CocoAgentJobCallbacks;

/*
 * cocoAgentJobNew:
 * A job migrating @domain (name or UUID) of the libvirt at @uri to
 * @desturi with libvirt migration @flags (VIR_MIGRATE_*; PEER2PEER is
 * added). Flags a confidential migration cannot honour are refused.
 */
CocoAgentJob *cocoAgentJobNew(CocoAgent *agent, const char *uri,
                              const char *domain, const char *desturi,
                              unsigned int flags, GError **error);

/*
 * cocoAgentJobAddParam:
 * A libvirt migration parameter (VIR_MIGRATE_PARAM_*) with the GVariant
 * type its libvirt type has (cocoClientMigrateAddParam()).
 */
int cocoAgentJobAddParam(CocoAgentJob *job, const char *name, GVariant *value,
                         GError **error);

/*
 * cocoAgentJobStart:
 * Run the job; @cb's functions get @opaque. A job started once cannot be
 * started again.
 */
void cocoAgentJobStart(CocoAgentJob *job, const CocoAgentJobCallbacks *cb,
                       gpointer opaque);

/*
 * cocoAgentJobDetach:
 * No more callbacks (their receiver is going away); the job runs on.
 */
void cocoAgentJobDetach(CocoAgentJob *job);

/*
 * cocoAgentJobAbort:
 * Ask libvirt to abort the migration (virDomainAbortJob(), in a thread);
 * the relay turns it into the right failure path. @callback gets the
 * answer; cocoAgentJobAbortFinish() says whether libvirt accepted.
 */
void cocoAgentJobAbort(CocoAgentJob *job, GAsyncReadyCallback callback,
                       gpointer opaque);
int cocoAgentJobAbortFinish(CocoAgentJob *job, GAsyncResult *res,
                            GError **error);

CocoAgentJob *cocoAgentJobRef(CocoAgentJob *job);
void cocoAgentJobUnref(CocoAgentJob *job);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoAgentJob, cocoAgentJobUnref)

/* Getters, for the main context. */
CocoAgentJobState cocoAgentJobGetState(CocoAgentJob *job);
const char *cocoAgentJobGetDomain(CocoAgentJob *job);
const char *cocoAgentJobGetDestUri(CocoAgentJob *job);
/* The source agent's phase ("preflight", "begin" until the agent's record
 * appears, then its state: "preparing", "precopy", ..., "finished"). */
const char *cocoAgentJobGetPhase(CocoAgentJob *job);
/* The agent's record id, or "" before it exists. */
const char *cocoAgentJobGetMigrationId(CocoAgentJob *job);
/* The agent's newest record of the migration (a new reference), or NULL. */
JsonObject *cocoAgentJobGetRecord(CocoAgentJob *job);
/* Percent of the guest's private pages sent at least once (100 when
 * completed). */
unsigned int cocoAgentJobGetProgress(CocoAgentJob *job);
guint64 cocoAgentJobGetDataTotal(CocoAgentJob *job);
guint64 cocoAgentJobGetDataProcessed(CocoAgentJob *job);
unsigned int cocoAgentJobGetEpoch(CocoAgentJob *job);
/* The agents' downtime in ms (SOURCE_BLACKOUT to the start token). */
guint64 cocoAgentJobGetDowntime(CocoAgentJob *job);
/* Why the job failed or was cancelled, or NULL. */
const GError *cocoAgentJobGetError(CocoAgentJob *job);
