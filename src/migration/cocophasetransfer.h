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
