/*
 * cococlientmigrate.h: the one driver of a confidential migration through
 * libvirt, for "virt-coco migrate --confidential" and the agent's D-Bus
 * Migrate()
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A migration is built from libvirt's flags (VIR_MIGRATE_*) and typed
 * parameters (VIR_MIGRATE_PARAM_*); what a confidential migration cannot
 * honour is refused when it is given, naming the mode, virsh's option and
 * the alternative. cocoClientMigrateStart() then runs, in a worker thread:
 *
 *  1. the preflight (docs/virt-coco.rst, "Before anything starts"): the
 *     domain's element, the destination XMLs, the stream count, the
 *     emulator, this host's agent and its firmware, the domain's relay
 *     (connected and authenticated to this host's agent), the destination
 *     agent (probed by this host's agent), its firmware and the domain's
 *     policy;
 *  2. with <coco:hostdev action='detach'>, the domain's VFIO host devices
 *     detached and their teardown confirmed (cococlienthostdev.h);
 *  3. the libvirt call, virDomainMigrate3() or, with
 *     VIR_MIGRATE_PEER2PEER, virDomainMigrateToURI3(); meanwhile libvirt's
 *     job statistics (progress, the timeout's action, post-copy after
 *     the first pass) and the source agent's record of the migration
 *     (phase events) are read by threads of their own;
 *  4. the host devices attached on the destination (or, when libvirt
 *     failed, on the source again);
 *  5. the check of the result: the source agent's record must have
 *     succeeded and the agents must have sealed the guest's memory;
 *     otherwise the migration fails with COCO_ERROR_MIGRATION_UNSEALED,
 *     naming the numbers (the agents' and libvirt's completed job's).
 *
 * Every callback runs in the GMainContext given to cocoClientMigrateStart()
 * and every getter is for that context.
 */

#pragma once

#include "internal.h"
#include "client/cococlientrecord.h"
#include "util/cocoenum.h"

#include <libvirt/libvirt.h>
#include <stdbool.h>

typedef enum {
    COCO_CLIENT_MIGRATE_PREFLIGHT, /* the checks before libvirt is called */
    COCO_CLIENT_MIGRATE_RUNNING, /* libvirt migrates */
    COCO_CLIENT_MIGRATE_COMPLETED, /* the guest runs on the destination */
    COCO_CLIENT_MIGRATE_FAILED, /* refused or failed; see the error */
    COCO_CLIENT_MIGRATE_CANCELLED, /* aborted on request */

    COCO_CLIENT_MIGRATE_LAST
} CocoClientMigrateState;
COCO_ENUM_DECL(cocoClientMigrateState);

/* What virsh's --timeout does when it expires. */
typedef enum {
    COCO_CLIENT_TIMEOUT_SUSPEND = 0, /* virDomainSuspend() */
    COCO_CLIENT_TIMEOUT_POSTCOPY, /* virDomainMigrateStartPostCopy() */
} CocoClientTimeoutAction;

/* libvirt's view of the running job (virDomainGetJobStats()). */
typedef struct {
    unsigned int percent; /* 0..99 while the call runs */
    guint64 data_total;
    guint64 data_remaining;
    guint64 memory_iteration;
} CocoClientMigrateProgress;

/* The numbers of a migration that ended (each with its "have_"). */
typedef struct {
    bool have_record; /* the source agent's record was found */
    guint64 sealed_bytes; /* what the agents sealed and sent */
    guint64 sealed_pages;
    guint64 guest_memory; /* bytes, libvirt's maximum memory */
    bool have_libvirt; /* libvirt's completed job */
    guint64 memory_processed;
    guint64 data_processed;
    bool have_libvirt_downtime;
    guint64 libvirt_downtime_ms;
    bool have_agent_downtime;
    guint64 agent_downtime_ms;
    bool have_total;
    guint64 total_ms; /* wall time of the libvirt call */
    /* <coco:hostdev action='detach'> (cococlienthostdev.h): host devices
     * detached from the source, attached on the destination */
    guint hostdevs_detached;
    guint hostdevs_attached;
} CocoClientMigrateResult;

typedef struct _CocoClientMigrate CocoClientMigrate;

typedef struct {
    /* The preflight ended: @error NULL means libvirt is being called. */
    void (*started)(CocoClientMigrate *m, const GError *error, gpointer opaque);
    /* libvirt's job statistics were read. */
    void (*progress)(CocoClientMigrate *m, const CocoClientMigrateProgress *p,
                     gpointer opaque);
    /* The source agent's record gained timeline entry @index (each entry
     * once, in order), before record() of the same copy. */
    void (*entry)(CocoClientMigrate *m, const CocoClientRecord *rec,
                  guint index, gpointer opaque);
    /* A new copy of the source agent's record of the migration. */
    void (*record)(CocoClientMigrate *m, const CocoClientRecord *rec,
                   gpointer opaque);
    /* Something the user should know that does not end the migration
     * (a timeout's action that failed, lost access to the record). */
    void (*warning)(CocoClientMigrate *m, const char *message, gpointer opaque);
    /* <coco:hostdev action='detach'>: host device @device passed @step
     * (CocoClientHostdevStep, cococlienthostdev.h). */
    void (*hostdev)(CocoClientMigrate *m, const char *device, int step,
                    gpointer opaque);
    /* The migration is over (completed, failed or cancelled). */
    void (*finished)(CocoClientMigrate *m, gpointer opaque);
} CocoClientMigrateCallbacks;

/*
 * cocoClientMigrateNew:
 * A migration of @domain (name, UUID or id) of the libvirt at @uri (NULL:
 * libvirt's default) to @desturi.
 */
CocoClientMigrate *cocoClientMigrateNew(const char *uri, const char *domain,
                                        const char *desturi, GError **error);

/*
 * cocoClientMigrateSetFlags:
 * libvirt's migration flags. A mode a confidential migration cannot
 * honour is refused (COCO_ERROR_NOT_SUPPORTED) with the mode, virsh's
 * option and the alternative; an unknown flag is refused too.
 */
int cocoClientMigrateSetFlags(CocoClientMigrate *m, unsigned int flags,
                              GError **error);
unsigned int cocoClientMigrateGetFlags(CocoClientMigrate *m);

/*
 * cocoClientMigrateAddParam:
 * A libvirt migration parameter @name (VIR_MIGRATE_PARAM_*) with the
 * GVariant (D-Bus) type of its libvirt type: "s" strings, "t" unsigned
 * long long, "i" int, "as" for the parameters libvirt takes several times
 * (compression). Unknown, refused, mistyped, empty and repeated ones are
 * refused (COCO_ERROR_INVALID_ARG, or COCO_ERROR_NOT_SUPPORTED with the
 * reason). "parallel.connections" states the agents' stream count: it
 * must equal the domain's <coco:streams forward> and is passed to libvirt
 * only with VIR_MIGRATE_PARALLEL.
 */
int cocoClientMigrateAddParam(CocoClientMigrate *m, const char *name,
                              GVariant *value, GError **error);

/* The source agent's socket (NULL: cocoClientAgentSocketPath(NULL)). */
void cocoClientMigrateSetAgentSocket(CocoClientMigrate *m, const char *path);

/* virsh's --timeout: @seconds after libvirt is called, @action. */
void cocoClientMigrateSetTimeout(CocoClientMigrate *m, unsigned int seconds,
                                 CocoClientTimeoutAction action);

/* virsh's --postcopy-after-precopy: switch to post-copy once the first
 * pass is over (libvirt's memory iteration 2). */
void cocoClientMigrateSetPostcopyAfterPrecopy(CocoClientMigrate *m);

/* Read libvirt's job statistics for progress() (every 250 ms). */
void cocoClientMigrateSetProgress(CocoClientMigrate *m);

/*
 * cocoClientMigrateStart:
 * Run the migration; @cb's functions get @opaque and run in @ctx. A
 * migration started once cannot be started again.
 */
void cocoClientMigrateStart(CocoClientMigrate *m, GMainContext *ctx,
                            const CocoClientMigrateCallbacks *cb,
                            gpointer opaque);

/* No more callbacks (their receiver is going away); the migration goes
 * on. */
void cocoClientMigrateDetach(CocoClientMigrate *m);

/*
 * cocoClientMigrateAbort:
 * Abort the migration (from any thread; it blocks while libvirt answers):
 * before libvirt is called, libvirt is not called; while it migrates,
 * virDomainAbortJob() once (later calls do nothing). Fails when the
 * migration is over.
 */
int cocoClientMigrateAbort(CocoClientMigrate *m, GError **error);

CocoClientMigrate *cocoClientMigrateRef(CocoClientMigrate *m);
void cocoClientMigrateUnref(CocoClientMigrate *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoClientMigrate, cocoClientMigrateUnref)

/* The source agent's record @rec proves the guest's memory moved sealed:
 * the record succeeded and the agents sealed something. */
bool cocoClientMigrateSealed(const CocoClientRecord *rec);

/*
 * cocoClientMigrateCheckResult:
 * After libvirt reported that @domain migrated: fail
 * (COCO_ERROR_MIGRATION_UNSEALED, naming the agents' and libvirt's
 * numbers) unless cocoClientMigrateSealed(@rec). @res holds libvirt's
 * completed job (when known) and the guest's memory: a completed job that
 * moved more than an eighth of it while the agents sealed nothing is
 * named as memory that went through QEMU's stream.
 */
int cocoClientMigrateCheckResult(const char *domain,
                                 const CocoClientRecord *rec,
                                 const CocoClientMigrateResult *res,
                                 GError **error);

/* Getters, for the context of the callbacks. */
CocoClientMigrateState cocoClientMigrateGetState(CocoClientMigrate *m);
/* libvirt's call returned (the record may still be settling). */
bool cocoClientMigrateGetLibvirtDone(CocoClientMigrate *m);
const char *cocoClientMigrateGetDomain(CocoClientMigrate *m);
const char *cocoClientMigrateGetDestUri(CocoClientMigrate *m);
/* The source agent's newest record of the migration, or NULL. */
const CocoClientRecord *cocoClientMigrateGetRecord(CocoClientMigrate *m);
/* The numbers, once finished. */
const CocoClientMigrateResult *cocoClientMigrateGetResult(CocoClientMigrate *m);
/* Why it failed or was cancelled, or NULL. */
const GError *cocoClientMigrateGetError(CocoClientMigrate *m);
