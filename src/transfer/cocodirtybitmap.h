/*
 * cocodirtybitmap.h: a dirty source fed by an explicit write log
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The writer side (a KVM_GET_DIRTY_LOG poller, or a test's writer thread)
 * marks pages with cocoDirtyBitmapSet() or ORs a whole log in with
 * cocoDirtyBitmapMerge(); collecting swaps each word with zero atomically,
 * so no mark is ever lost between the two.
 */

#pragma once

#include "transfer/cocodirtysource.h"

#include <stdbool.h>

CocoDirtySource *cocoDirtyBitmapNew(uint64_t npages);

/* A bitmap whose log is read on demand: @poll runs once before every scan
 * and marks what the log holds (KVM_GET_DIRTY_LOG, or the emulated
 * firmware's cocoEmuGetDirty()). */
typedef int (*CocoDirtyPollFunc)(CocoDirtySource *src, void *opaque,
                                 GError **error);
CocoDirtySource *cocoDirtyBitmapNewPolled(uint64_t npages,
                                          CocoDirtyPollFunc poll, void *opaque);
void cocoDirtyBitmapSet(CocoDirtySource *src, uint64_t gfn);
bool cocoDirtyBitmapTest(CocoDirtySource *src, uint64_t gfn);
/* OR @nwords words of a dirty log starting at word @first into the map. */
void cocoDirtyBitmapMerge(CocoDirtySource *src, const uint64_t *log,
                          size_t first, size_t nwords);
