/*
 * cocovfioshadow.h: the shadow map of the DMA mappings a container created
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * type1 has no ioctl to list mappings, so the module records every mapping
 * it makes: a balanced tree (GTree) keyed by the first IOVA, holding
 * non-overlapping inclusive ranges. Lookups are O(log n); walking the k
 * mappings of a range is O(log n + k).
 */

#pragma once

#include "internal.h"
#include "libvirt-coco/coco-vfio.h"

typedef struct {
    uint64_t first;
    uint64_t last; /* inclusive */
    uint64_t vaddr;
} CocoVfioMapping;

typedef struct _CocoVfioShadow CocoVfioShadow;

CocoVfioShadow *cocoVfioShadowNew(void);
void cocoVfioShadowFree(CocoVfioShadow *shadow);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CocoVfioShadow, cocoVfioShadowFree)

size_t cocoVfioShadowCount(CocoVfioShadow *shadow);

/* Returns false (and records nothing) when [first, last] overlaps a
 * recorded mapping or first > last. */
bool cocoVfioShadowInsert(CocoVfioShadow *shadow, uint64_t first, uint64_t last,
                          uint64_t vaddr);

/* The first recorded mapping overlapping [first, last], or NULL. */
const CocoVfioMapping *cocoVfioShadowFindOverlap(CocoVfioShadow *shadow,
                                                 uint64_t first, uint64_t last);

/* The mapping containing @iova, or NULL. */
const CocoVfioMapping *cocoVfioShadowLookup(CocoVfioShadow *shadow,
                                            uint64_t iova);

/* A mapping that overlaps [first, last] without lying inside it (the
 * range would split it), or NULL. */
const CocoVfioMapping *cocoVfioShadowFindSplit(CocoVfioShadow *shadow,
                                               uint64_t first, uint64_t last);

/* Bytes of the mappings lying fully inside [first, last]. Returns false
 * when the sum does not fit in 64 bits (the whole space is mapped). */
bool cocoVfioShadowBytesIn(CocoVfioShadow *shadow, uint64_t first,
                           uint64_t last, uint64_t *bytes);

/* Copies of the mappings lying fully inside [first, last], ascending. */
GArray *cocoVfioShadowListIn(CocoVfioShadow *shadow, uint64_t first,
                             uint64_t last);

/* Removes the mappings lying fully inside [first, last]; returns how many. */
size_t cocoVfioShadowRemoveIn(CocoVfioShadow *shadow, uint64_t first,
                              uint64_t last);

/* Removes the mapping that starts at @first; false if there is none. */
bool cocoVfioShadowRemove(CocoVfioShadow *shadow, uint64_t first);
