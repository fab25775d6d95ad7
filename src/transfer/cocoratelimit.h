/*
 * cocoratelimit.h: one token bucket for all streams of a transfer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libvirt's max-bandwidth (virsh migrate --bandwidth, migrate-setspeed,
 * Nova's live_migration_bandwidth) caps the sealed pipeline as a whole:
 * every stream thread takes its record's bytes from the one bucket before
 * it writes, and waits when the bucket is in debt. The rate may change at
 * any time, from any thread.
 */

#pragma once

#include "internal.h"

#include <gio/gio.h>
#include <stdbool.h>
#include <stdint.h>

/* At most this much may be sent at once after an idle spell: 10 ms worth
 * at the current rate, but never less than one largest record. */
#define COCO_RATE_LIMIT_BURST_MS 10U
#define COCO_RATE_LIMIT_MIN_BURST (512U * 1024U)
/* Rates at or above this are "unlimited" (libvirt's default is
 * ~8 PiB/s). */
#define COCO_RATE_LIMIT_UNLIMITED (1ULL << 50)

typedef struct _CocoRateLimit CocoRateLimit;

/* Monotonic microseconds, and a sleep of @us: tests give their own. */
typedef int64_t (*CocoRateLimitClockFunc)(void *opaque);
typedef void (*CocoRateLimitSleepFunc)(void *opaque, int64_t us);

CocoRateLimit *cocoRateLimitNew(void);
void cocoRateLimitFree(CocoRateLimit *rl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoRateLimit, cocoRateLimitFree)

void cocoRateLimitSetClock(CocoRateLimit *rl, CocoRateLimitClockFunc clock,
                           CocoRateLimitSleepFunc sleep, void *opaque);

/* Bytes per second; 0 or COCO_RATE_LIMIT_UNLIMITED and above: no cap. */
void cocoRateLimitSetRate(CocoRateLimit *rl, uint64_t rate);
uint64_t cocoRateLimitGetRate(CocoRateLimit *rl);

/* Take @bytes, waiting until the bucket allows them (in slices of at
 * most 20 ms; a rate change to unlimited ends the wait). FALSE when
 * @cancel (may be NULL) was cancelled meanwhile. */
bool cocoRateLimitTake(CocoRateLimit *rl, uint64_t bytes, GCancellable *cancel);
