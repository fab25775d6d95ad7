/*
 * cocoratelimit.c: one token bucket for all streams of a transfer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "transfer/cocoratelimit.h"

#define COCO_RATE_LIMIT_SLICE_US 20000

struct _CocoRateLimit {
    GMutex lock;
    uint64_t rate; /* 0: unlimited */
    double tokens; /* bytes; negative: debt the takers wait off */
    int64_t last_us;
    CocoRateLimitClockFunc clock;
    CocoRateLimitSleepFunc sleep;
    void *opaque;
};

static int64_t
cocoRateLimitRealClock(void *opaque G_GNUC_UNUSED)
{
    return g_get_monotonic_time();
}

static void
cocoRateLimitRealSleep(void *opaque G_GNUC_UNUSED, int64_t us)
{
    g_usleep((gulong)us);
}

CocoRateLimit *
cocoRateLimitNew(void)
{
    CocoRateLimit *rl = g_new0(CocoRateLimit, 1);

    g_mutex_init(&rl->lock);
    rl->clock = cocoRateLimitRealClock;
    rl->sleep = cocoRateLimitRealSleep;
    return rl;
}

void
cocoRateLimitFree(CocoRateLimit *rl)
{
    if (!rl)
        return;
    g_mutex_clear(&rl->lock);
    g_free(rl);
}

void
cocoRateLimitSetClock(CocoRateLimit *rl, CocoRateLimitClockFunc clock,
                      CocoRateLimitSleepFunc sleep, void *opaque)
{
    rl->clock = clock;
    rl->sleep = sleep;
    rl->opaque = opaque;
}

static double
cocoRateLimitBurst(uint64_t rate)
{
    return MAX((double)rate * COCO_RATE_LIMIT_BURST_MS / 1000.0,
               (double)COCO_RATE_LIMIT_MIN_BURST);
}

/* Add what accrued since the last refill (under lock). */
static void
cocoRateLimitRefill(CocoRateLimit *rl, int64_t now)
{
    if (rl->rate && now > rl->last_us) {
        rl->tokens += (double)rl->rate * (double)(now - rl->last_us) / 1e6;
        rl->tokens = MIN(rl->tokens, cocoRateLimitBurst(rl->rate));
    }
    rl->last_us = now;
}

void
cocoRateLimitSetRate(CocoRateLimit *rl, uint64_t rate)
{
    if (rate >= COCO_RATE_LIMIT_UNLIMITED)
        rate = 0;
    g_mutex_lock(&rl->lock);
    cocoRateLimitRefill(rl, rl->clock(rl->opaque));
    if (!rl->rate && rate)
        rl->tokens = 0; /* a new cap starts without credit */
    rl->rate = rate;
    if (!rate)
        rl->tokens = 0;
    g_mutex_unlock(&rl->lock);
}

uint64_t
cocoRateLimitGetRate(CocoRateLimit *rl)
{
    uint64_t rate;

    g_mutex_lock(&rl->lock);
    rate = rl->rate;
    g_mutex_unlock(&rl->lock);
    return rate;
}

bool
cocoRateLimitTake(CocoRateLimit *rl, uint64_t bytes, GCancellable *cancel)
{
    int64_t now;
    int64_t until;

    g_mutex_lock(&rl->lock);
    if (!rl->rate) {
        g_mutex_unlock(&rl->lock);
        return true;
    }
    now = rl->clock(rl->opaque);
    cocoRateLimitRefill(rl, now);
    rl->tokens -= (double)bytes;
    /* In debt: wait until what this taker owes has accrued. */
    until = rl->tokens >= 0
                ? now
                : now + (int64_t)(-rl->tokens * 1e6 / (double)rl->rate);
    g_mutex_unlock(&rl->lock);

    for (;;) {
        if (cancel && g_cancellable_is_cancelled(cancel))
            return false;
        now = rl->clock(rl->opaque);
        if (now >= until || !cocoRateLimitGetRate(rl))
            return true;
        rl->sleep(rl->opaque, MIN(until - now, COCO_RATE_LIMIT_SLICE_US));
    }
}
