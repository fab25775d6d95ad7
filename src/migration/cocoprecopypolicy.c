/*
 * cocoprecopypolicy.c: when the source's pre-copy rounds end, and how
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "migration/cocoprecopypolicy.h"

COCO_ENUM_IMPL(cocoPrecopyAction, COCO_PRECOPY_LAST, "continue", "switchover",
               "force", "pause", "abort");

uint64_t
cocoPrecopyTarget(const CocoPrecopyPolicy *p)
{
    if (p->max_blackout_ms && p->downtime_limit_ms)
        return MIN(p->max_blackout_ms, p->downtime_limit_ms);
    if (p->max_blackout_ms)
        return p->max_blackout_ms;
    if (p->downtime_limit_ms)
        return p->downtime_limit_ms;
    return COCO_PRECOPY_DEFAULT_DOWNTIME_MS;
}

uint64_t
cocoPrecopyPredict(const CocoPrecopyState *st)
{
    double dirty;

    if (!st->dirty_measured || !st->seal_rate)
        return G_MAXUINT64;
    dirty = (double)st->dirty_rate * (double)st->since_scan_ms / 1000.0;
    if (dirty > (double)st->total_bytes)
        dirty = (double)st->total_bytes;
    return (uint64_t)(dirty * 1000.0 / (double)st->seal_rate);
}

void
cocoPrecopyDecide(const CocoPrecopyPolicy *p, const CocoPrecopyState *st,
                  CocoPrecopyDecision *d)
{
    memset(d, 0, sizeof(*d));
    d->target_ms = cocoPrecopyTarget(p);
    d->predicted_ms = cocoPrecopyPredict(st);
    d->max_epochs = p->max_epochs
                        ? p->max_epochs
                        : MAX(COCO_PRECOPY_DEFAULT_MAX_EPOCHS, p->min_epochs);
    if (st->paused) {
        d->action = COCO_PRECOPY_FORCE;
        return;
    }
    if (st->epochs >= p->min_epochs && st->epochs > 0 &&
        d->predicted_ms <= d->target_ms) {
        d->action = COCO_PRECOPY_SWITCHOVER;
        return;
    }
    if (st->epochs >= d->max_epochs)
        d->limit = "maxEpochs";
    else if (p->max_time_ms && st->elapsed_ms >= p->max_time_ms)
        d->limit = "maxTime";
    if (d->limit && st->epochs > 0) {
        d->action = p->abort_on_non_convergence ? COCO_PRECOPY_ABORT
                                                : COCO_PRECOPY_PAUSE;
        return;
    }
    d->action = COCO_PRECOPY_CONTINUE;
}
