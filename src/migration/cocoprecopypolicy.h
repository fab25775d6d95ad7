/*
 * cocoprecopypolicy.h: when the source's pre-copy rounds end, and how
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One pure function decides, after every precopy round, whether the
 * agents run another one, switch over, or abort. Its inputs are the
 * domain's <coco:precopy> (docs/formatcoco.rst), libvirt's downtime
 * limit as the relay saw it (migrate-set-parameters downtime-limit,
 * virDomainMigrateSetMaxDowntime), the host's precopy_rounds, and what
 * the transfer engine measured. The agent's worker calls it
 * (cocoagentmigration.c); docs/virtcocod.rst ("Precopy policy") describes
 * the rules.
 */

#pragma once

#include "internal.h"
#include "util/cocoenum.h"

#include <stdbool.h>
#include <stdint.h>

/* QEMU's default downtime-limit: the target when nothing sets one. */
#define COCO_PRECOPY_DEFAULT_DOWNTIME_MS 300U
/* The epoch limit when neither the domain nor the host sets one. */
#define COCO_PRECOPY_DEFAULT_MAX_EPOCHS 30U

typedef enum {
    COCO_PRECOPY_CONTINUE = 0, /* run another round */
    COCO_PRECOPY_SWITCHOVER, /* the predicted blackout fits the target */
    COCO_PRECOPY_FORCE, /* the guest is paused: switch over at once */
    COCO_PRECOPY_PAUSE, /* a limit hit, onNonConvergence="pause" */
    COCO_PRECOPY_ABORT, /* a limit hit, onNonConvergence="abort" */
    COCO_PRECOPY_LAST
} CocoPrecopyAction;
COCO_ENUM_DECL(cocoPrecopyAction);

/* The limits, fixed for one migration except downtime_limit_ms. */
typedef struct {
    uint32_t min_epochs; /* host: precopy_rounds (0: none) */
    uint32_t max_epochs; /* <coco:precopy maxEpochs>, 0: default */
    uint64_t max_time_ms; /* maxTime, 0: none */
    uint64_t max_blackout_ms; /* maxBlackout, 0: none */
    bool abort_on_non_convergence; /* onNonConvergence="abort" */
    uint64_t downtime_limit_ms; /* libvirt's, 0: not set; may change */
} CocoPrecopyPolicy;

/* What the source measured when a round ended. */
typedef struct {
    uint32_t epochs; /* rounds sent, epoch 0 included */
    uint64_t elapsed_ms; /* since the first round started */
    uint64_t total_bytes; /* guest RAM */
    uint64_t dirty_rate; /* bytes dirtied per second (0: not measured) */
    bool dirty_measured; /* dirty_rate is a measurement */
    uint64_t since_scan_ms; /* since the dirty set was last collected */
    uint64_t seal_rate; /* bytes sealed and sent per second */
    bool paused; /* the guest is paused (virsh suspend, force-complete) */
} CocoPrecopyState;

typedef struct {
    CocoPrecopyAction action;
    uint64_t target_ms; /* the downtime target */
    uint64_t predicted_ms; /* the predicted blackout (G_MAXUINT64: unknown) */
    uint32_t max_epochs; /* the epoch limit in force */
    const char *limit; /* PAUSE/ABORT: "maxEpochs" or "maxTime" */
} CocoPrecopyDecision;

/* The downtime target: the smaller of maxBlackout and libvirt's limit
 * where set, else COCO_PRECOPY_DEFAULT_DOWNTIME_MS. */
uint64_t cocoPrecopyTarget(const CocoPrecopyPolicy *p);

/* The blackout predicted for @st: what is dirtied since the last scan at
 * the measured dirty rate (at most all RAM), sent at the seal rate.
 * G_MAXUINT64 while no rate is measured. */
uint64_t cocoPrecopyPredict(const CocoPrecopyState *st);

/*
 * The decision after a round (or before the first, @st->epochs 0):
 *  - a paused guest switches over at once (FORCE);
 *  - fewer than min_epochs rounds, or no dirty rate measured yet:
 *    CONTINUE (unless a limit is hit);
 *  - the predicted blackout fits the target: SWITCHOVER;
 *  - maxEpochs (default: the larger of 30 and min_epochs) or maxTime
 *    reached: PAUSE, or ABORT with onNonConvergence="abort";
 *  - otherwise CONTINUE.
 */
void cocoPrecopyDecide(const CocoPrecopyPolicy *p, const CocoPrecopyState *st,
                       CocoPrecopyDecision *d);
