/*
 * cocotransfermockfw.h: a plain-text firmware double for transfer tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Keeps the ordering rules the engine must respect (per-stream bundle
 * counters, epochs, total bundle count in tokens, vCPUs before the start
 * token) but copies pages in clear, so engine logic can be tested apart
 * from the emulated backend's cryptography.
 */

#pragma once

#include "firmware/cocofirmware.h"

/* @mem: npages pages (source: read; destination: written). */
CocoFirmware *mockFwNew(CocoFirmwareRole role, uint8_t *mem, uint64_t npages,
                        unsigned int nstreams);
/* Make every export of @gfn refuse with per-page status 4 until cleared. */
void mockFwRefuse(CocoFirmware *fw, uint64_t gfn, bool refuse);
uint32_t mockFwEpoch(CocoFirmware *fw);
bool mockFwStarted(CocoFirmware *fw); /* start token handled */
