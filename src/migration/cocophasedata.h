/*
 * cocophasedata.h: how guest memory and state cross from the source
 * firmware to the destination firmware (the session's data path)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The session decides *when* (phases); a data path does the moving. Two
 * implementations plug in here:
 *  - "direct" (this file): firmware export calls on the source, every
 *    bundle carried as a phase message (cocophasemessage.h) and imported
 *    by the destination session's data path. Simple and fully ordered.
 *  - the transfer engine (src/transfer/, N streams): the agent wraps
 *    cocoTransferSource* in the source ops; on the destination the
 *    transfer engine imports on its own and the agent reports progress
 *    with cocoMigrationSessionHandleEvent(DATA_SETUP/DATA_ROUND/DATA_START).
 *
 * Contract of the source ops: each returns once its bundles are handed to
 * the transport in order (the destination acknowledges through the
 * session's peer-*-done messages, not through the data path).
 */

#pragma once

#include "internal.h"
#include "firmware/cocofirmware.h"
#include "migration/cocophase.h"
#include "migration/cocophasemessage.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct _CocoPhaseData CocoPhaseData;

typedef struct {
    uint64_t pages; /* pages exported (source) or imported */
    uint64_t bundles; /* memory bundles */
    uint64_t bytes; /* bundle and token bytes moved */
    uint64_t epochs; /* epoch tokens */
    uint64_t vcpus; /* vCPU bundles */
} CocoPhaseDataStats;

typedef struct {
    /* Source: SETUP and carry the immutable state to the destination. */
    int (*setup)(CocoPhaseData *d, CocoFirmware *fw, CocoPhaseDataStats *st,
                 GError **error);
    /* Source, guest running: one epoch (the dirty pages, every page the
     * first time) closed by an epoch token. */
    int (*round)(CocoPhaseData *d, CocoFirmware *fw, CocoPhaseDataStats *st,
                 GError **error);
    /* Source, after SOURCE_BLACKOUT: last pages, EXPORT_VCPU for each of
     * @nvcpus, TOKEN(START). *@start_token tells whether the firmware
     * emitted the start token, also on failure. */
    /* Source, optional: the vCPUs are paused, SOURCE_BLACKOUT is next:
     * collect the last writes (and report them to the firmware). */
    int (*sync)(CocoPhaseData *d, CocoFirmware *fw, GError **error);
    int (*final)(CocoPhaseData *d, CocoFirmware *fw, unsigned int nvcpus,
                 bool *start_token, CocoPhaseDataStats *st, GError **error);
    /* Destination: import one data message (peer-setup, peer-memory,
     * peer-token, peer-vcpu, peer-start-token); *@progress receives the
     * DATA_* event it completed, or COCO_PHASE_EVENT_LAST. */
    int (*import)(CocoPhaseData *d, CocoFirmware *fw,
                  const CocoPhaseMessage *msg, CocoPhaseEvent *progress,
                  CocoPhaseDataStats *st, GError **error);
    /* Optional: wait for data work still in flight (a precopy round on a
     * thread of its own) before the migration goes on without a round;
     * -1 with its error when it failed. */
    int (*wait)(CocoPhaseData *d, GError **error);
    /* Optional: the session ended (aborted, frozen or done): stop moving
     * data and close what the data path holds open. */
    void (*stop)(CocoPhaseData *d);
    void (*free)(CocoPhaseData *d);
} CocoPhaseDataOps;

struct _CocoPhaseData {
    const CocoPhaseDataOps *ops;
    void *priv;
    /* Set by the session: its transport to the peer agent. */
    CocoPhaseSendFunc send;
    void *send_opaque;
};

void cocoPhaseDataFree(CocoPhaseData *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoPhaseData, cocoPhaseDataFree)

/* Pages the guest wrote since the previous call: append their gfns to
 * @gfns (a GArray of guint64). Return 0 or -1 with @error. */
typedef int (*CocoPhaseDirtyFunc)(void *opaque, GArray *gfns, GError **error);

/* The direct data path for a guest of @npages private pages, memory on
 * @nstreams forward streams (round robin). @dirty (may be NULL: the guest
 * is not written during the migration) must outlive the data path. */
CocoPhaseData *cocoPhaseDataNewDirect(uint64_t npages, unsigned int nstreams,
                                      CocoPhaseDirtyFunc dirty,
                                      void *dirty_opaque);
