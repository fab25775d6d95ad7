/*
 * cocodirtyhash.h: a dirty source that compares page hashes between rounds
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * For guest memory the host can read but whose writer it cannot watch
 * (the emulated firmware over a VM's RAM file). It keeps one 64-bit hash
 * per page (8 bytes per 4 KiB page, 0.2% of guest memory). A page is
 * dirty when its hash differs from the hash of the copy last exported.
 * That hash is taken just before and just after the firmware reads the
 * page; if the two differ the page changed while it was read and is
 * exported again next epoch. The hash is not cryptographic; it is keyed
 * with a per-session random seed.
 */

#pragma once

#include "transfer/cocodirtysource.h"
#include "util/cocopagehash.h" /* cocoPageHash() */

/* @mem: npages * 4096 readable bytes that stay mapped while the source
 * lives. */
CocoDirtySource *cocoDirtyHashNew(const void *mem, uint64_t npages,
                                  uint64_t seed);
