/*
 * cocodirtyfirmware.h: a dirty source that is the firmware's own dirty log
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Asks the firmware (cocoFirmwareDirtyLog(), the dirtyLog operation of
 * cocofirmware.h) which pages must go: pages the guest uses that were
 * never exported, and exported pages written since. It keeps nothing of
 * its own (no hashes, no mapping of guest memory) and, being exact for
 * the firmware, needs no dirty hook. Epoch 0 scans it too, so pages the
 * guest never used are never read or sent.
 */

#pragma once

#include "firmware/cocofirmware.h"
#include "transfer/cocodirtysource.h"

/* A dirty source over the @npages pages of @fw, which must outlive it and
 * have the dirtyLog operation (cocoFirmwareHasDirtyLog()). */
CocoDirtySource *cocoDirtyFirmwareNew(CocoFirmware *fw, uint64_t npages);
