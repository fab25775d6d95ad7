/*
 * cocotransfer.h: configuration, memory bound and progress of a transfer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The transfer engine moves a confidential VM's memory and state from the
 * source firmware to the destination firmware over N forward byte streams,
 * one thread per stream on each side (cocotransfersource.h,
 * cocotransferdest.h). This header holds what both sides share.
 */

#pragma once

#include "internal.h"
#include "firmware/cocofirmware.h"
#include "util/cocoenum.h"
#include "util/cocoerror.h"
#include "libvirt-coco/coco-migration-def.h"

#include <stdbool.h>
#include <stdint.h>

#define COCO_TRANSFER_MAX_STREAMS 512U
#define COCO_TRANSFER_MAX_PAGES_PER_BUNDLE 512U
/* Whatever the guest size, one side's bundle and state buffers together
 * never exceed this; configurations that would are refused. */
#define COCO_TRANSFER_BUFFER_LIMIT (64U * 1024U * 1024U)

#define COCO_TRANSFER_DEFAULT_STREAMS 4U
#define COCO_TRANSFER_DEFAULT_PAGES_PER_BUNDLE 64U
#define COCO_TRANSFER_DEFAULT_MAX_EPOCHS 30U
#define COCO_TRANSFER_DEFAULT_DIRTY_TARGET 256U

typedef struct {
    unsigned int streams; /* forward streams, 1..512 */
    unsigned int pages_per_bundle; /* 1..512 */
    uint64_t session_id; /* both sides must agree (HELLO); 0 = unchecked */
    uint64_t npages; /* destination: expected guest pages, 0 = any */

    /* Source precopy limits. */
    uint32_t max_epochs; /* precopy epochs, epoch 0 included; 0 = default */
    uint64_t max_time_ms; /* 0 = no limit */
    uint64_t dirty_target; /* converged at or below this many dirty pages */
    uint32_t max_blackout_ms; /* converged too when the dirty pages can be
                                 sent in this time at the measured rate */
} CocoTransferConfig;

/* Defaults, overridden by what @def sets (forward_streams,
 * pages_per_bundle, max_epochs, max_time, max_blackout). @def may be NULL. */
void cocoTransferConfigInit(CocoTransferConfig *cfg,
                            const CocoMigrationDef *def);

/* Bytes of bundle and state buffers one side allocates for @cfg. */
uint64_t cocoTransferBufferBytes(const CocoTransferConfig *cfg);

/* Check ranges, the firmware's limits (@max_gfns: pages per call, 0 =
 * unknown) and the 64 MiB buffer bound. */
int cocoTransferConfigValidate(const CocoTransferConfig *cfg,
                               unsigned int max_gfns, GError **error);

/*
 * cocoTransferCheckFirmware:
 * Check that @fw is a firmware session of @role whose capabilities can
 * carry @cfg (pages per bundle, forward streams plus the backward one).
 */
int cocoTransferCheckFirmware(CocoFirmware *fw, CocoFirmwareRole role,
                              const CocoTransferConfig *cfg, GError **error);

typedef enum {
    COCO_TRANSFER_PHASE_IDLE = 0,
    COCO_TRANSFER_PHASE_SETUP, /* HELLO, immutable state */
    COCO_TRANSFER_PHASE_PRECOPY, /* epochs while the guest runs */
    COCO_TRANSFER_PHASE_FINAL, /* blackout: last pages, vCPUs, start token */
    COCO_TRANSFER_PHASE_DONE, /* start token imported / sent */
    COCO_TRANSFER_PHASE_FAILED,
    COCO_TRANSFER_PHASE_LAST
} CocoTransferPhase;
COCO_ENUM_DECL(cocoTransferPhase);

/* A snapshot of a transfer's progress. */
typedef struct {
    CocoTransferPhase phase;
    uint32_t epoch; /* epoch being sent / imported */
    uint64_t bytes; /* record bytes on all streams (headers included) */
    uint64_t pages; /* pages exported (source; 0 on the destination) */
    uint64_t bundles; /* memory bundles */
    uint64_t dirty_pages; /* size of the current epoch's page set */
    uint64_t remaining; /* pages of that set not exported yet */
    uint64_t retried; /* pages the firmware refused, sent again later */
    uint64_t elapsed_ms; /* since the transfer started */
    uint64_t rate; /* bytes per second since the start */
    uint64_t epoch_rate; /* bytes per second during the last full epoch */
    uint64_t dirty_rate; /* source: pages dirtied per second, measured
                            between the last two dirty scans */
    bool dirty_measured; /* dirty_rate is a measurement (two scans) */
    uint64_t since_scan_ms; /* source: since the last dirty scan began */
    uint64_t yielded_ms; /* source: bulk work waited for other migrations'
                            downtime (all streams together) */
} CocoTransferStats;

/* Called after each epoch and phase change: on the source from the thread
 * driving it, on the destination from stream 0's reader thread. */
typedef void (*CocoTransferProgressFunc)(const CocoTransferStats *stats,
                                         void *opaque);

/* Counters shared by the engine's threads; read from any thread. */
typedef struct {
    int phase;
    uint32_t epoch;
    uint64_t bytes;
    uint64_t pages;
    uint64_t bundles;
    uint64_t dirty_pages;
    uint64_t remaining;
    uint64_t retried;
    uint64_t epoch_rate;
    uint64_t dirty_rate;
    int dirty_measured;
    int64_t scan_us; /* monotonic time the last dirty scan began */
    int64_t start_us;
    int64_t yielded_us;
} CocoTransferCounters;

void cocoTransferCountersStart(CocoTransferCounters *c);
void cocoTransferCountersRead(CocoTransferCounters *c,
                              CocoTransferStats *stats);

#define COCO_COUNTER_ADD(field, n)                                             \
 __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)
#define COCO_COUNTER_SUB(field, n)                                             \
 __atomic_fetch_sub(&(field), (n), __ATOMIC_RELAXED)
#define COCO_COUNTER_SET(field, n)                                             \
 __atomic_store_n(&(field), (n), __ATOMIC_RELAXED)
#define COCO_COUNTER_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
