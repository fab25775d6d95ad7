/*
 * cocotransfersource.h: the export side of the transfer engine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * How the host agent drives it (source host):
 *
 *   PREPARE (key exchange) is done beforehand through the firmware seam.
 *   src = cocoTransferSourceNew(fw, dirty, &cfg, streams, &err);
 *   cocoTransferSourceStart(src)        HELLO on every stream, SETUP (the
 *                                       immutable state) on stream 0
 *   cocoTransferSourcePrecopy(src, &r)  epoch 0 = every page, then one
 *                                       epoch per dirty set, each closed
 *                                       by an epoch token, until the dirty
 *                                       set is small enough or a limit hits
 *   -- QEMU's switchover gate: pause the vCPUs --
 *   cocoTransferSourceSync(src)         collect the last writes and report
 *                                       them to the firmware (the emulated
 *                                       firmware refuses SOURCE_BLACKOUT
 *                                       while an exported page changed
 *                                       unreported)
 *   -- SOURCE_BLACKOUT --
 *   cocoTransferSourceFinish(src, nvcpus)  last dirty pages, vCPU states,
 *                                       start token, END on every stream
 *   cocoTransferSourceReadAbortToken()  only if the destination fails
 *                                       before FINISH: its abort token
 *                                       arrives on stream 0
 *
 * cocoTransferSourceGetStats() and cocoTransferSourceCancel() may be
 * called from any thread at any time; every other call from one thread.
 * After any failure the engine closes all its streams (so the peer sees
 * the end at once; after a cancellation from another thread, at the next
 * call or at free) and every later call fails with the first error.
 */

#pragma once

#include "firmware/cocofirmware.h"
#include "transfer/cocodirtysource.h"
#include "transfer/cocotransfer.h"
#include "transfer/cocotransferpriority.h"

#include <gio/gio.h>

typedef struct _CocoTransferSource CocoTransferSource;

/* Per-page status of an export that means "not tried because another page
 * of the call failed": such pages are submitted again at once. Any other
 * non-zero status puts the page into the next epoch. */
#define COCO_TRANSFER_GFN_SKIPPED 1

typedef enum {
    COCO_TRANSFER_PRECOPY_CONVERGED = 0, /* dirty set small enough */
    COCO_TRANSFER_PRECOPY_MAX_EPOCHS, /* epoch limit reached */
    COCO_TRANSFER_PRECOPY_MAX_TIME, /* time limit reached */
    COCO_TRANSFER_PRECOPY_LAST
} CocoTransferPrecopyEnd;
COCO_ENUM_DECL(cocoTransferPrecopyEnd);

typedef struct {
    CocoTransferPrecopyEnd end;
    uint32_t epochs; /* epochs sent, epoch 0 included */
    uint64_t pending; /* dirty pages left for the final epoch */
} CocoTransferPrecopyResult;

/* @streams: cfg->streams streams (stream i is forward stream i; stream 0
 * also carries state and tokens, and the abort token back). The engine
 * takes a reference on each. @fw and @dirty must outlive the engine. */
CocoTransferSource *cocoTransferSourceNew(CocoFirmware *fw,
                                          CocoDirtySource *dirty,
                                          const CocoTransferConfig *cfg,
                                          GIOStream **streams, GError **error);
/* Pages one dirty-log call of a scan covers for a guest of @npages pages
 * scanned by @nthreads stream threads: a few claims per thread, each at
 * least 512 pages and at most 16384 (64 MiB). The firmware's write log
 * costs one page-table walk a call, so calls of 512 pages would cost a
 * large guest thousands of walks while it is stopped. */
uint64_t cocoTransferSourceScanClaim(uint64_t npages, unsigned int nthreads);
void cocoTransferSourceSetProgress(CocoTransferSource *src,
                                   CocoTransferProgressFunc func, void *opaque);
/*
 * While an epoch runs (the driving thread waits for the stream threads),
 * call @func from the driving thread every @interval_ms with the progress
 * so far: a caller whose main loop drives the engine can still report
 * progress during a long epoch (the first one sends every page). 0 turns
 * it off.
 */
void cocoTransferSourceSetTick(CocoTransferSource *src,
                               unsigned int interval_ms,
                               CocoTransferProgressFunc func, void *opaque);
/*
 * Firmware that cannot see guest writes itself (the emulated backend)
 * must be told when an exported page changed (TDX's UNBLOCKW): @func is
 * called once for every page a scan finds dirty after epoch 0, from a
 * stream thread (e.g. a wrapper of cocoEmuMarkDirty()). Not needed for
 * KVM, whose write-protection faults do it.
 */
typedef int (*CocoTransferDirtyFunc)(void *opaque, uint64_t gfn,
                                     GError **error);
void cocoTransferSourceSetDirtyHook(CocoTransferSource *src,
                                    CocoTransferDirtyFunc func, void *opaque);
/*
 * The firmware's own record of exported pages that changed since their
 * export (the emulated backend's cocoEmuGetDirty(): it compares every
 * exported page with the hash of the snapshot it sealed). When set,
 * cocoTransferSourceSync() (the guest is stopped) takes the last epoch's
 * pages from it instead of the dirty source: exact, where a hash-diff
 * source misses a page that changed and changed back while the firmware
 * read it (a lock word, a seqcount), which SOURCE_BLACKOUT would then
 * refuse. @func returns the gfns (g_free()d by the caller).
 */
typedef int (*CocoTransferFirmwareDirtyFunc)(void *opaque, uint64_t **gfns,
                                             size_t *ngfns, GError **error);
void cocoTransferSourceSetFirmwareDirty(CocoTransferSource *src,
                                        CocoTransferFirmwareDirtyFunc func,
                                        void *opaque);
int cocoTransferSourceStart(CocoTransferSource *src, GError **error);
/* One precopy epoch over the pages dirtied since the previous one (every
 * page for epoch 0), closed by an epoch token. @dirty_pages (may be NULL)
 * gets the number of pages sent. */
int cocoTransferSourceRound(CocoTransferSource *src, uint64_t *dirty_pages,
                            GError **error);
int cocoTransferSourcePrecopy(CocoTransferSource *src,
                              CocoTransferPrecopyResult *result,
                              GError **error);
/* Once the vCPUs are paused, before SOURCE_BLACKOUT: collect the writes
 * made since the last scan (and report them through the dirty hook). */
int cocoTransferSourceSync(CocoTransferSource *src, GError **error);
/* After SOURCE_BLACKOUT (the guest cannot write any more). Rescans unless
 * cocoTransferSourceSync() ran. */
int cocoTransferSourceFinish(CocoTransferSource *src, unsigned int nvcpus,
                             GError **error);
int cocoTransferSourceReadAbortToken(CocoTransferSource *src, void *buf,
                                     size_t *buflen, GError **error);
void cocoTransferSourceCancel(CocoTransferSource *src);
/* libvirt's max-bandwidth: bytes per second on all streams together
 * until the final epoch (0 or >= COCO_RATE_LIMIT_UNLIMITED: no cap). Any
 * thread, any time; takes effect with the next record. */
void cocoTransferSourceSetMaxBandwidth(CocoTransferSource *src, uint64_t rate);
/* The host's precedence of switchovers (NULL: none): the bulk work of the
 * epochs before the final one waits while another migration sharing
 * @priority is in its downtime. Before cocoTransferSourceStart(). */
void cocoTransferSourceSetPriority(CocoTransferSource *src,
                                   CocoTransferPriority *priority);
/* This source's guest is down (its switchover, or paused during the
 * precopy): its own work never waits for other downtimes. Any thread. */
void cocoTransferSourceSetUrgent(CocoTransferSource *src, bool urgent);
void cocoTransferSourceGetStats(CocoTransferSource *src,
                                CocoTransferStats *stats);
void cocoTransferSourceFree(CocoTransferSource *src);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoTransferSource, cocoTransferSourceFree)
