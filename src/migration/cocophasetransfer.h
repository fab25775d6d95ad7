/*
 * cocophasetransfer.h: the session's data path over the multi-stream
 * transfer engine (src/transfer/)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Source host: the session drives a CocoTransferSource (SETUP, one epoch
 * per round, the final epoch after SOURCE_BLACKOUT) through
 * cocoPhaseDataNewTransferSource().
 * Destination host: the CocoTransferDest imports on its own threads; its
 * data path refuses data messages. The agent polls the destination's
 * progress (cocoTransferDestGetStats(), any thread) from its main loop and
 * hands every event cocoPhaseTransferTrackerNext() returns to
 * cocoMigrationSessionHandleEvent().
 * Both: the data path takes the engine and frees it; when the session
 * ends it cancels the engine (its streams close).
 */

#pragma once

#include "internal.h"
#include "migration/cocophasedata.h"
#include "transfer/cocotransferdest.h"
#include "transfer/cocotransfersource.h"

CocoPhaseData *cocoPhaseDataNewTransferSource(CocoTransferSource *src);
CocoPhaseData *cocoPhaseDataNewTransferDest(CocoTransferDest *dst);

/* A precopy round ended on its thread and nothing waited for it: @error
 * NULL when it succeeded, else why it failed (called in the main context
 * given to cocoPhaseDataSetAsyncRounds()). */
typedef void (*CocoPhaseRoundEndFunc)(const GError *error, void *opaque);

/*
 * cocoPhaseDataSetAsyncRounds:
 * Run the source's precopy rounds on a thread of their own, so that the
 * caller's main loop (relays, D-Bus, a cancel) goes on during a round: the
 * session's ROUND step only starts it. The next step of the data path
 * (another round, sync, final) first waits for it and fails with its
 * error, and so does the session before it releases QEMU's migration;
 * stop cancels and waits for it (the session stops the data path before
 * the firmware's ABORT). A round that ends while nothing waits for it
 * calls @ended in @ctx: the caller reports the epoch, or fails the session
 * (cocoMigrationSessionFail()) with the round's error. Set it before the
 * first round.
 */
void cocoPhaseDataSetAsyncRounds(CocoPhaseData *d, GMainContext *ctx,
                                 CocoPhaseRoundEndFunc ended, void *opaque);

/* What of a destination transfer's progress was already reported. */
typedef struct {
    bool setup;
    uint32_t epochs;
    bool start;
} CocoPhaseTransferTracker;

/* The next DATA_* event @stats implies that @t has not reported yet
 * (marked reported now), or COCO_PHASE_EVENT_LAST. */
CocoPhaseEvent cocoPhaseTransferTrackerNext(CocoPhaseTransferTracker *t,
                                            const CocoTransferStats *stats);
