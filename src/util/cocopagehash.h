/*
 * cocopagehash.h: a keyed, fast, non-cryptographic 64-bit page hash
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Shared by the transfer layer's hash-diff dirty source and the emulated
 * firmware's unreported-write check. 64 bits of one 4096-byte page under a
 * 64-bit key (seed); never 0, so 0 can mean "no hash". Uses AVX2 when the
 * CPU has it; cocoPageHashGeneric() is the portable code computing the same
 * value. It detects changes, it does not authenticate: whoever knows the
 * key can construct collisions, and even without it a change goes unseen
 * with probability about 2^-64 per comparison (see docs/performance.rst).
 */

#pragma once

#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

#define COCO_PAGE_HASH_SIZE 4096U

uint64_t cocoPageHash(const void *page, uint64_t seed);
uint64_t cocoPageHashGeneric(const void *page, uint64_t seed);
/* Copy @page to @copy and return the hash of the copy, in one pass: the
 * hash is of exactly the bytes copied, even if @page changes meanwhile. */
uint64_t cocoPageHashCopy(void *copy, const void *page, uint64_t seed);
